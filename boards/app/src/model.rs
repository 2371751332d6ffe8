//! The model the firmware was built with, chosen at build time.
//!
//! `build.rs` reads the model file named by the environment variable `TINYSDE_MODEL`
//! (default: the seed model, `boards/app/model/seed.tsw`) and generates this module's items
//! from the file's own model description, so nothing is kept in sync by hand:
//!
//! - [`Model`] (with [`Drift`] and [`Diffusion`]): the `NeuralSde` type of the description;
//! - [`D`] (state dimension), [`PARAMS`], [`DESCRIPTION`], [`FILE_VERSION`];
//! - [`MODEL_FILE`]: the file's bytes, linked into flash with `include_bytes!`.
//!
//! ```sh
//! TINYSDE_MODEL=target/nile/fit_csv.weights cargo build --release   # in boards/qemu
//! ```
//!
//! A description the generator does not know (an unknown layer or activation, layers that
//! do not fit together, a parameter count that does not match) fails the build with a
//! message naming what it found.

use tinysde::Error;

include!(concat!(env!("OUT_DIR"), "/model.rs"));

/// Checks [`MODEL_FILE`] (or another blob) and loads it into a fresh [`Model`].
///
/// Errors (nothing is loaded): bad magic, unsupported version, truncated, checksum
/// mismatch, a description or parameter count other than [`Model`]'s, non-finite
/// parameters.
pub fn load(bytes: &[u8]) -> Result<Model, Error> {
    let mut model = Model::default();
    tinysde::weights::read_into(&mut model, bytes)?;
    Ok(model)
}
