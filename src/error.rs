//! The crate's one error type.

use core::fmt;

/// The kinds of noise an SDE can declare; solvers accept some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NoiseKind {
    /// One independent Wiener process per state component, `g_i` may depend on all of `u`.
    Diagonal,
    /// One Wiener process shared by every component.
    Scalar,
    /// Diagonal noise whose diffusion depends on time only, not on the state.
    Additive,
}

/// Everything that can go wrong in tinysde. Every variant names what was wrong.
///
/// The contract: a function that returns an `Error` has not modified what the caller
/// passed in (buffers, models, optimizers), bit for bit. The few documented exceptions are
/// buffers the caller hands over as *scratch* (for example the statistics scratch of
/// [`loss_and_gradient`](crate::grad::loss_and_gradient)), whose contents are unspecified
/// after any call.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A slice or buffer had the wrong length.
    Length {
        /// What the slice is (for example `"parameters"`).
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A number that must be finite was NaN or infinite.
    NonFinite {
        /// What the number is (for example `"initial state"`).
        what: &'static str,
        /// Its index, where it came from a sequence (0 otherwise).
        index: usize,
    },
    /// An argument was outside its allowed range.
    OutOfRange {
        /// What the argument is and the range it must lie in.
        what: &'static str,
    },
    /// The time span `t0..t1` is empty, reversed or not finite.
    TimeSpan {
        /// Start of the span.
        t0: f32,
        /// End of the span.
        t1: f32,
    },
    /// A save time is out of the span, not on the step grid, or not after the one before.
    SaveTime {
        /// Index of the offending save time.
        index: usize,
    },
    /// A solver was given an SDE whose noise kind it does not support.
    UnsupportedNoise {
        /// The solver's name.
        method: &'static str,
        /// The SDE's noise kind.
        noise: NoiseKind,
    },
    /// The state became non-finite during a solve.
    Diverged {
        /// Trajectory index within the ensemble.
        trajectory: usize,
        /// Step index: the last step of the save interval in which the state became
        /// non-finite (solvers check the state at every save time, not after every step).
        step: u32,
    },
    /// A gradient became non-finite during training.
    NonFiniteGradient {
        /// The training iteration.
        iteration: u32,
    },
    /// A noise source could not supply an increment.
    NoiseExhausted {
        /// Trajectory index.
        trajectory: usize,
        /// Step index.
        step: u32,
    },
    /// A weights blob was malformed, truncated, corrupted or describes another model.
    Weights(WeightsError),
    /// The loss evaluated to NaN or an infinity.
    NonFiniteLoss,
    /// A computed gradient entry was NaN or infinite (the solve itself stayed finite).
    NonFiniteGradientEntry {
        /// The flat parameter index of the entry.
        index: usize,
    },
    /// An optimizer update would have made a parameter or the optimizer's own state
    /// non-finite (for example an extreme learning rate or gradient); nothing was updated.
    UpdateOverflow {
        /// The flat parameter index where it would have happened first.
        index: usize,
    },
    /// Every state stayed finite, but the ensemble mean or variance at a save time does
    /// not fit in `f32` (states too far apart); nothing was written.
    StatisticsOverflow {
        /// The index of the save time.
        index: usize,
    },
    /// An adaptive solve used up its step budget (accepted plus rejected steps).
    MaxSteps {
        /// Trajectory index.
        trajectory: usize,
        /// Time reached when the budget ran out.
        t: f32,
    },
    /// An adaptive solve rejected a step at its minimum step size: the error tolerance
    /// cannot be met there.
    StepSizeTooSmall {
        /// Trajectory index.
        trajectory: usize,
        /// Time at the start of the rejected step.
        t: f32,
    },
    /// A streaming forecaster refused a reading or a request (its state is unchanged).
    Forecast(ForecastError),
}

/// What was wrong with a weights blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WeightsError {
    /// The blob does not start with the tinysde magic bytes.
    BadMagic,
    /// The format version is not one this build reads.
    UnsupportedVersion(u16),
    /// The blob ends before its declared contents.
    Truncated,
    /// The model description differs from the model being loaded into.
    ShapeMismatch,
    /// The checksum does not match the contents.
    Checksum,
    /// The parameter count differs from the model's.
    ParamCount {
        /// The model's parameter count.
        expected: u32,
        /// The blob's.
        found: u32,
    },
    /// A model file (format version 2) lacks a section the reader needs (its tag).
    MissingSection([u8; 4]),
    /// A model file section is malformed: a wrong length, a value out of its range, or a
    /// section twice (its tag).
    BadSection([u8; 4]),
    /// A model file holds a section this reader does not know and may not skip (a tag
    /// starting with an upper-case letter).
    UnknownSection([u8; 4]),
}

impl fmt::Display for NoiseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoiseKind::Diagonal => "diagonal",
            NoiseKind::Scalar => "scalar",
            NoiseKind::Additive => "additive",
        })
    }
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightsError::BadMagic => f.write_str("not a tinysde weights file (bad magic)"),
            WeightsError::UnsupportedVersion(2) => f.write_str(
                "format version 2 (a deployable model file): read it with forecast::file::ModelFile",
            ),
            WeightsError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            WeightsError::Truncated => f.write_str("truncated"),
            WeightsError::ShapeMismatch => f.write_str("written for a different model shape"),
            WeightsError::Checksum => f.write_str("checksum mismatch (corrupted)"),
            WeightsError::ParamCount { expected, found } => {
                write!(f, "has {found} parameters, the model has {expected}")
            }
            WeightsError::MissingSection(tag) => {
                write!(f, "no section {}", TagText(tag))
            }
            WeightsError::BadSection(tag) => write!(f, "malformed section {}", TagText(tag)),
            WeightsError::UnknownSection(tag) => {
                write!(f, "unknown required section {}", TagText(tag))
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length {
                what,
                expected,
                found,
            } => {
                write!(f, "{what}: expected length {expected}, got {found}")
            }
            Error::NonFinite { what, index } => write!(f, "{what}[{index}] is not finite"),
            Error::OutOfRange { what } => write!(f, "out of range: {what}"),
            Error::TimeSpan { t0, t1 } => write!(f, "invalid time span {t0}..{t1}"),
            Error::SaveTime { index } => write!(
                f,
                "save time {index} is outside the span, off the step grid, or not increasing"
            ),
            Error::UnsupportedNoise { method, noise } => {
                write!(f, "{method} does not support {noise} noise")
            }
            Error::Diverged { trajectory, step } => {
                write!(
                    f,
                    "trajectory {trajectory} became non-finite at step {step}"
                )
            }
            Error::NonFiniteGradient { iteration } => {
                write!(f, "gradient became non-finite at iteration {iteration}")
            }
            Error::NoiseExhausted { trajectory, step } => {
                write!(
                    f,
                    "noise source has no increment for trajectory {trajectory}, step {step}"
                )
            }
            Error::Weights(w) => write!(f, "weights: {w}"),
            Error::NonFiniteLoss => f.write_str("the loss is not finite"),
            Error::NonFiniteGradientEntry { index } => {
                write!(f, "gradient entry {index} is not finite")
            }
            Error::UpdateOverflow { index } => write!(
                f,
                "the optimizer update of parameter {index} would not be finite (nothing updated)"
            ),
            Error::StatisticsOverflow { index } => write!(
                f,
                "the ensemble statistics at save time {index} overflow f32 (nothing written)"
            ),
            Error::MaxSteps { trajectory, t } => {
                write!(
                    f,
                    "trajectory {trajectory} used up its step budget at t = {t}"
                )
            }
            Error::StepSizeTooSmall { trajectory, t } => {
                write!(
                    f,
                    "trajectory {trajectory} cannot meet the tolerance at t = {t} with the minimum step size"
                )
            }
            Error::Forecast(e) => write!(f, "forecaster: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// Why a streaming forecaster ([`crate::forecast`]) refused a reading or a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ForecastError {
    /// A reading's time is not after the previous reading's (repeated or out of order).
    TimeOrder,
    /// A time is not finite, or maps to a model time that is not finite or not after the
    /// previous one in `f32`.
    BadTime,
    /// A reading's value is NaN or infinite (or not finite after its transform, e.g. the
    /// logarithm of a value `<= 0`): column index.
    BadValue(usize),
    /// No reading has set the ensemble yet: nothing to forecast from.
    NoState,
    /// More times than the forecaster's fixed time buffer holds (readings since the last
    /// update plus the requested horizons).
    Capacity {
        /// The buffer's capacity.
        capacity: usize,
        /// The times needed.
        needed: usize,
    },
    /// The output buffer's length does not match the request.
    Output,
}

impl fmt::Display for ForecastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForecastError::TimeOrder => f.write_str("reading time is not after the previous one"),
            ForecastError::BadTime => {
                f.write_str("time is not finite or not increasing in the model's f32 time")
            }
            ForecastError::BadValue(c) => write!(
                f,
                "reading column {c} is not a finite value of its transform"
            ),
            ForecastError::NoState => f.write_str("no reading yet to forecast from"),
            ForecastError::Capacity { capacity, needed } => {
                write!(f, "needs {needed} times, the fixed buffer holds {capacity}")
            }
            ForecastError::Output => f.write_str("output buffer length does not match the request"),
        }
    }
}

impl From<ForecastError> for Error {
    fn from(e: ForecastError) -> Self {
        Error::Forecast(e)
    }
}

/// A section tag shown as text (its bytes if printable ASCII, else escaped).
struct TagText<'a>(&'a [u8; 4]);

impl fmt::Display for TagText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl From<WeightsError> for Error {
    fn from(e: WeightsError) -> Self {
        Error::Weights(e)
    }
}

/// Returns [`Error::NonFinite`] (`what`, index 0) unless the setting or input `x` is finite.
#[inline]
pub(crate) fn check_finite_value(x: f32, what: &'static str) -> Result<(), Error> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite { what, index: 0 })
    }
}

/// [`check_finite_value`], then [`Error::OutOfRange`] (`range`, e.g. "learning rate must be
/// > 0") unless `x > 0`.
pub(crate) fn check_positive(x: f32, what: &'static str, range: &'static str) -> Result<(), Error> {
    check_finite_value(x, what)?;
    if x <= 0.0 {
        return Err(Error::OutOfRange { what: range });
    }
    Ok(())
}

/// [`check_finite_value`], then [`Error::OutOfRange`] (`range`) unless `x >= 0`.
pub(crate) fn check_non_negative(
    x: f32,
    what: &'static str,
    range: &'static str,
) -> Result<(), Error> {
    check_finite_value(x, what)?;
    if x < 0.0 {
        return Err(Error::OutOfRange { what: range });
    }
    Ok(())
}

/// Returns an [`Error::Length`] unless `found == expected`.
#[inline]
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            found,
        })
    }
}
