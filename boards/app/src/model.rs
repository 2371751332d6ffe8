//! The model the firmware was built with, chosen at build time.
//!
//! `build.rs` reads the model file named by the environment variable `TINYSDE_MODEL`
//! (default: the seed model, `boards/app/model/seed.tsw`) and generates this module's items
//! from the file's own model description, so nothing is kept in sync by hand:
//!
//! - [`Model`] (with [`Drift`] and [`Diffusion`]): the `NeuralSde` type of the description;
//! - [`D`] (state dimension), [`PARAMS`], [`DESCRIPTION`], [`FILE_VERSION`];
//! - the data scaling ([`TIME_ORIGIN`], [`TIME_UNIT`], [`COLUMN_MEAN`], [`COLUMN_STD`]),
//!   the solver step ([`MAX_STEP`]) and the forecast defaults ([`PATHS`], [`NOISE_SEED`],
//!   [`QUANTILES`]): from a version-2 file's own sections; for a version-1 file from the
//!   `fit_csv.json` beside it (else none: the seed model works in the data's units), with
//!   32 paths, seed `0xC5F` and the 5, 50 and 95 % quantiles;
//! - [`MODEL_FILE`]: the file's bytes, linked into flash with `include_bytes!`.
//!
//! ```sh
//! TINYSDE_MODEL=target/nile/fit_csv.weights cargo build --release   # in boards/qemu
//! TINYSDE_MODEL=target/nile/model.tsm cargo build --release          # a version-2 file
//! ```
//!
//! A description the generator does not know (an unknown layer or activation, layers that
//! do not fit together, a parameter count that does not match) fails the build with a
//! message naming what it found.

use tinysde::forecast::file::{Defaults, Deployment};
use tinysde::nn::Parameters;
use tinysde::{Error, WeightsError};

include!(concat!(env!("OUT_DIR"), "/model.rs"));

/// Checks [`MODEL_FILE`] (or another blob) and loads it into a fresh [`Model`].
///
/// Errors (nothing is loaded): bad magic, unsupported version, truncated, checksum
/// mismatch, a description or parameter count other than [`Model`]'s, non-finite
/// parameters; for a version-2 file also a missing, malformed or unknown critical section.
pub fn load(bytes: &[u8]) -> Result<Model, Error> {
    let mut model = Model::default();
    if FILE_VERSION == 2 {
        // The deployable model file: every section checked, then its model part loaded.
        tinysde::forecast::file::ModelFile::parse(bytes)?.load_into(&mut model)?;
    } else {
        // Version 1 (a build for a version-1 file need not link the version-2 reader).
        tinysde::weights::read_into(&mut model, bytes)?;
    }
    Ok(model)
}

/// Checks that `bytes` are the model file the firmware was built from ([`FILE_LEN`] bytes
/// whose CRC-32 is [`FILE_CRC`], the checksum they store) and loads their parameters
/// (from [`PARAMS_AT`]) into a fresh [`Model`]; with [`deployment`], what
/// `tinysde::forecast::Forecaster::from_parts` takes. No file reader is linked: the model
/// type, the scaling and the defaults were generated from this file at build time, so its
/// length and checksum prove which file it is.
///
/// Errors (nothing is loaded): fewer bytes ([`WeightsError::Truncated`]), more bytes
/// ([`Error::Length`]), another checksum ([`WeightsError::Checksum`]), a parameter not
/// finite ([`Error::NonFinite`]).
pub fn load_built(bytes: &[u8]) -> Result<Model, Error> {
    if bytes.len() < FILE_LEN {
        return Err(WeightsError::Truncated.into());
    }
    if bytes.len() > FILE_LEN {
        return Err(Error::Length {
            what: "model file",
            expected: FILE_LEN,
            found: bytes.len(),
        });
    }
    let body = FILE_LEN.saturating_sub(4);
    let (Some(content), Some(stored)) = (bytes.get(..body), bytes.get(body..)) else {
        return Err(WeightsError::Truncated.into());
    };
    if tinysde::weights::crc32(content) != FILE_CRC || stored != FILE_CRC.to_le_bytes() {
        return Err(WeightsError::Checksum.into());
    }
    let mut params = [0.0f32; PARAMS];
    let src = bytes.get(PARAMS_AT..).ok_or(WeightsError::Truncated)?;
    for (p, b) in params.iter_mut().zip(src.chunks_exact(4)) {
        if let Ok(b) = b.try_into() {
            *p = f32::from_le_bytes(b);
        }
    }
    let mut model = Model::default();
    model.write_params(&params)?;
    Ok(model)
}

/// The deployment generated from the model file ([`COLUMNS`], [`TIME`], [`SOLVER`], the
/// deterministic means [`TRENDS`] (empty for a model without one), the seasonal difference
/// [`SEASONAL_LAG`] (0: none) and the forecast defaults
/// [`PATHS`], [`NOISE_SEED`], [`QUANTILES`]).
///
/// Errors ([`Error::OutOfRange`]): forecast defaults the library refuses (the generator
/// checked them: not expected).
pub fn deployment() -> Result<Deployment<'static>, Error> {
    Ok(Deployment {
        state_dim: D as u16,
        columns: &COLUMNS,
        time: TIME,
        solver: SOLVER,
        defaults: Defaults::new(PATHS as u32, NOISE_SEED, &QUANTILES)?,
        trends: &TRENDS,
        seasonal_lag: SEASONAL_LAG,
    })
}
