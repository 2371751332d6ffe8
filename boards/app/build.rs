//! Generates the model type from the model file chosen at build time.
//!
//! `TINYSDE_MODEL=<file>` names the model file (absolute, or relative to the repository
//! root; default `boards/app/model/seed.tsw`), `TINYSDE_READINGS=<csv>` the series the QEMU
//! firmware replays (default: `examples/data/seed.csv` for the seed model, none otherwise).
//! `tinysde-modelgen` parses the file's model description and writes `model.rs` (the
//! `Model` type, `D`, `PARAMS`, the file's bytes) and `readings.rs` into `OUT_DIR`;
//! `src/model.rs` and `src/sensor.rs` include them. A file or description it cannot read
//! fails the build with a message that says what it found.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // boards/app -> the repository root.
    let root = manifest.join("../..");
    let root = root.canonicalize().unwrap_or(root);
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = tinysde_modelgen::generate(&root, &out) {
        eprintln!("error: tinysde-app: cannot build the firmware's model: {e}");
        std::process::exit(1);
    }
}
