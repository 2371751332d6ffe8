//! Code shared by the examples (and by `tests/examples.rs`, which includes it with
//! `#[path]`): data, CSV reading, training and sampling, plots, and output files that
//! appear all at once or not at all.
//!
//! It is ordinary host code built on tinysde's public API; nothing here is needed on a
//! microcontroller.
#![allow(dead_code)]

pub mod csv;
pub mod data;
pub mod fit;
pub mod output;
pub mod plot;

use std::path::PathBuf;

/// The output directory: the first free command-line argument if given, else
/// `target/<example>` under the current directory.
pub fn out_dir(arg: Option<String>, example: &str) -> PathBuf {
    arg.map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target").join(example))
}

/// The output directory of an example whose only argument is an optional `OUT_DIR`
/// ([`out_dir`]); an extra argument is an error that shows the usage.
pub fn out_dir_from_args(example: &str) -> Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    let out = out_dir(args.next(), example);
    match args.next() {
        Some(extra) => Err(format!(
            "unexpected argument {extra:?}; usage: {example} [OUT_DIR]"
        )),
        None => Ok(out),
    }
}

/// Whether to draw progress bars: on unless `TINYSDE_NO_PROGRESS` is set.
pub fn show_progress() -> bool {
    std::env::var_os("TINYSDE_NO_PROGRESS").is_none()
}
