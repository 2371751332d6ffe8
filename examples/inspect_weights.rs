//! Prints what a tinysde weights file (version 1) or deployable model file (version 2)
//! holds: its model description, parameter count, the first parameters and a version 2
//! file's sections, after checking its magic, version, length and checksum.
//!
//! ```text
//! cargo run --features examples --example inspect_weights -- target/fit_exp/fit_exp.weights
//! ```
//!
//! Exits with a non-zero code and a one-line message if the file is missing, truncated,
//! corrupted or not a weights file.

use std::process::ExitCode;

/// Print what tinysde weights files hold, after checking magic, version, length and CRC-32.
#[derive(clap::Parser, Debug)]
#[command(name = "inspect_weights", version)]
#[command(
    after_help = "Exit codes: 0 every file is valid; 1 a file is missing or invalid; 2 bad command line."
)]
struct Cli {
    /// Weights files (as written by fit_exp, fit_csv, spiral or firmware_weights)
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let mut ok = true;
    for path in &cli.files {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {path}: cannot read: {e}");
                ok = false;
                continue;
            }
        };
        // Version 1 (weights) or version 2 (a deployable model file, whose model part is
        // the same blob and whose sections are listed).
        let parsed = match tinysde::weights::inspect(&bytes) {
            Ok(blob) => Ok((tinysde::weights::VERSION, blob, None)),
            Err(e) => tinysde::forecast::file::ModelFile::parse(&bytes)
                .map(|f| (f.version(), f.model(), Some(f)))
                .map_err(|_| e),
        };
        match parsed {
            Ok((version, blob, file)) => {
                let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap_or([0; 4]));
                println!("{path}: tinysde weights, format version {version}");
                println!(
                    "  size:        {} bytes, CRC-32 {crc:08x} (valid)",
                    bytes.len()
                );
                println!(
                    "  model:       {}",
                    blob.description_str()
                        .unwrap_or("(description is not UTF-8)")
                );
                println!("  parameters:  {}", blob.param_count());
                let head: Vec<String> = blob.params().take(6).map(|p| format!("{p:e}")).collect();
                let more = if blob.param_count() > 6 { ", ..." } else { "" };
                println!("  values:      [{}{more}]", head.join(", "));
                if let Some(file) = file {
                    let tags: Vec<String> = file
                        .sections()
                        .map(|(tag, payload)| {
                            format!("{} ({} B)", String::from_utf8_lossy(&tag), payload.len())
                        })
                        .collect();
                    println!("  sections:    {}", tags.join(", "));
                }
            }
            Err(e) => {
                eprintln!("error: {path}: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
