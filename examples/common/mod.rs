//! Code shared by the examples (and by `tests/suite/examples.rs`, which includes it with
//! `#[path]`): data, CSV reading, training and sampling, plots, and output files that
//! appear all at once or not at all.
//!
//! It is ordinary host code built on tinysde's public API; nothing here is needed on a
//! microcontroller.
#![allow(dead_code)]

pub mod csv;
pub mod data;
pub mod fit;
pub mod mean;
pub mod metrics;
pub mod output;
pub mod plot;

use std::path::PathBuf;

/// Options every training example takes: where to write, and whether to draw progress bars.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputArgs {
    /// Output directory (created if missing) [default: target/<example>]
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Output directory, as a positional argument (same as --out)
    #[arg(value_name = "OUT_DIR", conflicts_with = "out")]
    pub out_dir: Option<PathBuf>,
    /// No progress bars (the environment variable TINYSDE_NO_PROGRESS does the same)
    #[arg(short, long)]
    pub quiet: bool,
}

impl OutputArgs {
    /// The output directory: `--out` or `OUT_DIR` if given, else `target/<example>`.
    pub fn dir(&self, example: &str) -> PathBuf {
        self.out
            .clone()
            .or_else(|| self.out_dir.clone())
            .unwrap_or_else(|| PathBuf::from("target").join(example))
    }

    /// Whether to draw progress bars: not with `--quiet` or `TINYSDE_NO_PROGRESS` set.
    pub fn progress(&self) -> bool {
        !self.quiet && show_progress()
    }
}

/// Whether to draw progress bars: on unless `TINYSDE_NO_PROGRESS` is set.
pub fn show_progress() -> bool {
    std::env::var_os("TINYSDE_NO_PROGRESS").is_none()
}
