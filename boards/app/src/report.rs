//! What the app tells the outside world, and how.
//!
//! The app emits typed [`Event`]s to a [`Report`] the board provides. Real boards use
//! [`DefmtReport`] (feature `defmt`): compact binary logs over RTT, decoded on the host by
//! probe-rs. The QEMU board prints plain text lines over semihosting instead, with every
//! `f32` as its bit pattern in hex, so `boards/ci.sh` can compare them byte for byte with
//! the host's numbers without any decoder.

use tinysde::{Error, ForecastError, WeightsError};

/// The stage of the run an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Checking and loading the weights blob.
    Load,
    /// The ensemble forecast.
    Forecast,
    /// The cost measurements.
    Bench,
    /// On-device training.
    Train,
    /// The adaptive forecast (full firmware only).
    #[cfg(not(feature = "inference-only"))]
    Adaptive,
}

impl Stage {
    /// A short lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Forecast => "forecast",
            Stage::Bench => "bench",
            Stage::Train => "train",
            #[cfg(not(feature = "inference-only"))]
            Stage::Adaptive => "adaptive",
        }
    }

    /// The number of blinks of the error pattern, and the QEMU exit status.
    pub const fn code(self) -> u8 {
        match self {
            Stage::Load => 2,
            Stage::Forecast => 3,
            Stage::Bench => 4,
            Stage::Train => 5,
            #[cfg(not(feature = "inference-only"))]
            Stage::Adaptive => 7,
        }
    }
}

/// A typed failure of the run: which stage, and tinysde's error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppError {
    /// Where it happened.
    pub stage: Stage,
    /// What happened.
    pub error: Error,
}

/// Something the app reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// The configuration of the forecast (printed first, compared by CI).
    Config {
        /// Number of model parameters.
        params: u32,
        /// Number of trajectories.
        trajectories: u32,
        /// Steps over the span.
        steps: u32,
        /// Number of save times.
        saves: u32,
        /// Start of the span.
        t0: f32,
        /// End of the span.
        t1: f32,
        /// Initial state.
        u0: f32,
        /// Seed of the Brownian paths.
        noise_seed: u64,
        /// CRC-32 of the weights blob without its last 4 bytes (for a valid blob: the
        /// checksum it stores).
        weights_crc: u32,
    },
    /// One row of the forecast: ensemble mean and standard deviation at a save time.
    Forecast {
        /// Index of the save time.
        index: u32,
        /// The save time.
        t: f32,
        /// Ensemble mean.
        mean: f32,
        /// Ensemble standard deviation (sample, divisor n - 1).
        std: f32,
    },
    /// One row of the adaptive forecast: ensemble mean and variance at a save time. (Not
    /// in the inference-only build, which has no adaptive forecast: its reports then
    /// carry no code for these records.)
    #[cfg(not(feature = "inference-only"))]
    Adaptive {
        /// Index of the save time.
        index: u32,
        /// The save time.
        t: f32,
        /// Ensemble mean.
        mean: f32,
        /// Ensemble variance (sample, divisor n - 1).
        var: f32,
    },
    /// The configuration and step counts of the adaptive forecast (after its rows).
    #[cfg(not(feature = "inference-only"))]
    AdaptiveSteps {
        /// Number of trajectories.
        trajectories: u32,
        /// Depth of the Brownian tree.
        depth: u32,
        /// Absolute and relative tolerance.
        tolerance: f32,
        /// Accepted steps, summed over the trajectories.
        accepted: u32,
        /// Rejected steps, summed over the trajectories.
        rejected: u32,
    },
    /// A measured cost: `total` units of the board's clock for `count` repetitions of `what`.
    Cost {
        /// What was measured.
        what: &'static str,
        /// How many repetitions.
        count: u32,
        /// Total measured units.
        total: u32,
    },
    /// One on-device training iteration: the loss before the update and the clock units
    /// the loss-and-gradient evaluation took.
    Train {
        /// Iteration number, from 0.
        iteration: u32,
        /// Loss at the parameters before this iteration's update.
        loss: f32,
        /// Clock units of the gradient evaluation.
        cost: u32,
    },
    /// Peak stack use so far, in bytes, from the painted stack.
    Stack {
        /// Bytes of stack touched since boot.
        peak_bytes: u32,
    },
    /// The run failed.
    Failed(AppError),
    /// The run finished.
    Done,
}

/// Where events go. Boards implement it (or use [`DefmtReport`]).
pub trait Report {
    /// Emits one event.
    fn event(&mut self, event: &Event);
}

/// A short stable name for an error and up to two numbers that qualify it, without
/// `core::fmt` (which would cost kilobytes of flash and bring panic paths).
pub fn error_code(e: &Error) -> (&'static str, u32, u32) {
    match *e {
        Error::Length {
            expected, found, ..
        } => ("length", expected as u32, found as u32),
        Error::NonFinite { index, .. } => ("non_finite", index as u32, 0),
        Error::OutOfRange { .. } => ("out_of_range", 0, 0),
        Error::TimeSpan { t0, t1 } => ("time_span", t0.to_bits(), t1.to_bits()),
        Error::SaveTime { index } => ("save_time", index as u32, 0),
        Error::UnsupportedNoise { .. } => ("unsupported_noise", 0, 0),
        Error::Diverged { trajectory, step } => ("diverged", trajectory as u32, step),
        Error::NonFiniteGradient { iteration } => ("non_finite_gradient", iteration, 0),
        Error::NoiseExhausted { trajectory, step } => ("noise_exhausted", trajectory as u32, step),
        // Only the adaptive solver (not in the inference-only build) reports these two.
        #[cfg(not(feature = "inference-only"))]
        Error::MaxSteps { trajectory, t } => ("max_steps", trajectory as u32, t.to_bits()),
        #[cfg(not(feature = "inference-only"))]
        Error::StepSizeTooSmall { trajectory, t } => {
            ("step_size_too_small", trajectory as u32, t.to_bits())
        }
        Error::Weights(w) => match w {
            WeightsError::BadMagic => ("weights_bad_magic", 0, 0),
            WeightsError::UnsupportedVersion(v) => ("weights_version", v as u32, 0),
            WeightsError::Truncated => ("weights_truncated", 0, 0),
            WeightsError::ShapeMismatch => ("weights_shape_mismatch", 0, 0),
            WeightsError::Checksum => ("weights_checksum", 0, 0),
            WeightsError::ParamCount { expected, found } => {
                ("weights_param_count", expected, found)
            }
            // Version-2 model files: the section's tag as a little-endian word.
            WeightsError::MissingSection(tag) => {
                ("model_missing_section", u32::from_le_bytes(tag), 0)
            }
            WeightsError::BadSection(tag) => ("model_bad_section", u32::from_le_bytes(tag), 0),
            WeightsError::UnknownSection(tag) => {
                ("model_unknown_section", u32::from_le_bytes(tag), 0)
            }
        },
        Error::Forecast(f) => match f {
            ForecastError::TimeOrder => ("forecast_time_order", 0, 0),
            ForecastError::BadTime => ("forecast_bad_time", 0, 0),
            ForecastError::BadValue(c) => ("forecast_bad_value", c as u32, 0),
            ForecastError::NoState => ("forecast_no_state", 0, 0),
            ForecastError::Capacity { capacity, needed } => {
                ("forecast_capacity", capacity as u32, needed as u32)
            }
            ForecastError::Output => ("forecast_output", 0, 0),
        },
        _ => ("other", 0, 0),
    }
}

/// Reports through defmt: human-readable values, decoded on the host.
#[cfg(feature = "defmt")]
#[derive(Clone, Copy, Debug, Default)]
pub struct DefmtReport {
    /// Name of the board's clock unit ("cycles", "instructions", ...).
    pub unit: &'static str,
}

#[cfg(feature = "defmt")]
impl Report for DefmtReport {
    fn event(&mut self, event: &Event) {
        match *event {
            Event::Config {
                params,
                trajectories,
                steps,
                saves,
                t0,
                t1,
                u0,
                noise_seed,
                weights_crc,
            } => defmt::info!(
                "seed model: {=u32} parameters (weights crc32 {=u32:#010x}); forecast of {=u32} trajectories, {=u32} Euler-Maruyama steps on [{=f32}, {=f32}], {=u32} save times, u0 = {=f32}, noise seed {=u64:#x}",
                params, weights_crc, trajectories, steps, t0, t1, saves, u0, noise_seed
            ),
            Event::Forecast {
                index,
                t,
                mean,
                std,
            } => defmt::info!(
                "forecast[{=u32}] t = {=f32}: mean {=f32} std {=f32}",
                index,
                t,
                mean,
                std
            ),
            #[cfg(not(feature = "inference-only"))]
            Event::Adaptive {
                index,
                t,
                mean,
                var,
            } => defmt::info!(
                "adaptive[{=u32}] t = {=f32}: mean {=f32} variance {=f32}",
                index,
                t,
                mean,
                var
            ),
            #[cfg(not(feature = "inference-only"))]
            Event::AdaptiveSteps {
                trajectories,
                depth,
                tolerance,
                accepted,
                rejected,
            } => defmt::info!(
                "adaptive SOSRI, tolerance {=f32}, Brownian tree depth {=u32}, {=u32} trajectories: {=u32} steps accepted, {=u32} rejected",
                tolerance,
                depth,
                trajectories,
                accepted,
                rejected
            ),
            Event::Cost { what, count, total } => defmt::info!(
                "cost: {=str}: {=u32} {=str} per item ({=u32} for {=u32})",
                what,
                total / count.max(1),
                self.unit,
                total,
                count
            ),
            Event::Train {
                iteration,
                loss,
                cost,
            } => defmt::info!(
                "train[{=u32}] loss {=f32} (gradient: {=u32} {=str})",
                iteration,
                loss,
                cost,
                self.unit
            ),
            Event::Stack { peak_bytes } => {
                defmt::info!("peak stack: {=u32} bytes", peak_bytes)
            }
            Event::Failed(e) => defmt::error!(
                "failed in stage {=str}: {}",
                e.stage.name(),
                e.error
            ),
            Event::Done => defmt::info!("done"),
        }
    }
}
