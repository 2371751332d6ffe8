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

/// Whether to draw progress bars: on unless `TINYSDE_NO_PROGRESS` is set.
pub fn show_progress() -> bool {
    std::env::var_os("TINYSDE_NO_PROGRESS").is_none()
}
