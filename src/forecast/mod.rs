//! Streaming forecasts from a deployable model file: a filter over an ensemble of states.
//!
//! A [`Forecaster`] holds a fixed ensemble of `N` model states (fixed memory, no
//! allocation). [`Forecaster::observe`] takes readings as they arrive, at irregular times,
//! in the user's units, with missing columns marked `None`: it moves the ensemble with the
//! SDE to the reading's time, checks each observed value against its predicted band (the
//! anomaly check), and updates the ensemble with the reading through the observation model.
//! [`Forecaster::forecast`] gives the mean and the quantiles of the ensemble at any later
//! times, in the user's units. The model, its scaling, its solver and the forecast defaults
//! come from one file ([`mod@file`]). [`Forecaster::observe_with`] and
//! [`Forecaster::forecast_with`] also hand out the predictive samples (for scores such as the
//! CRPS); `fit_csv` computes its host forecast with them.
//!
//! # What it computes
//!
//! - **Times.** A reading at user time `t` is at model time `tau = ((t - t0) / unit) as f32`
//!   (the file's time axis). Readings must come in strictly increasing times.
//! - **Propagation.** The ensemble moves from the time of its last update (the *anchor*)
//!   through every later reading time to the target with the file's method, in steps of at
//!   most the file's `max_step` ([`TimeGrid::with_max_step`] through those times). Member
//!   `m` draws the increments of step `k` from `Brownian::new(seed ^ (a * 0x9E3779B97F4A7C15))`
//!   for trajectory `m` and step `k`, `a` the index of the reading that made the anchor
//!   (readings count from 0) and `k` counted from the anchor: the noise is a pure function
//!   of (seed, reading index, member, step), so a replay gives the same bits.
//! - **Update.** A reading with every column present updates the ensemble (and becomes the
//!   new anchor), column by column: with observation noise `0` each member's observed
//!   coordinate is set to the reading and any other coordinate moves by the ensemble's
//!   regression on it (for a fully observed state: every member is reset to the reading);
//!   with noise `r > 0`, the ensemble Kalman update with perturbed observations. The first
//!   such reading sets the ensemble (unobserved coordinates start at 0). A reading with a
//!   missing column is checked but does not update (as `fit_csv`'s windows start only at
//!   fully observed rows); the ensemble keeps moving through its time. If the fixed time
//!   buffer fills up with such readings, the ensemble at the last one becomes the anchor.
//! - **Deterministic mean.** A column with a [`file::Trend`] (the file's `TRND` section,
//!   [`file::Deployment::trends`]) is read as its mean `m(tau)` plus the state: the update
//!   uses the reading's model value minus `m(tau)` at the reading, and every predictive
//!   sample below gets `m(tau)` at its time added back (as `x - (0 - m)`). Without one `m`
//!   is `+0.0` and no bit changes.
//! - **Statistics.** For a column the predictive samples are the members' observed
//!   coordinate plus `r` times a standard normal (a pure function of the seed, the reading or
//!   forecast index, the member and the column); the quantiles are
//!   [`ensemble_quantile`](crate::train::ensemble_quantile) of them, the mean their `f64`
//!   mean (in sorted order), both mapped to the user's units ([`file::Column::user_value`]).
//!   This is `fit_csv`'s host forecast, bit for bit.
//!
//! Every error leaves the forecaster as it was: NaN or infinite readings, times out of
//! order, more times than the fixed buffer holds, a diverging ensemble.
//!
//! ```
//! use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile, SolverSpec,
//!     TimeAxis, TimeFormat, Transform};
//! use tinysde::forecast::{Arrays, Forecaster};
//! use tinysde::nn::{Dense, FastSigmoid, FastTanh, Identity, InitScheme};
//! use tinysde::sde::NeuralSde;
//! use tinysde::solve::Sosri;
//!
//! type Model = NeuralSde<(Dense<1, 8, FastTanh>, Dense<8, 1, Identity>),
//!                        (Dense<1, 8, FastSigmoid>, Dense<8, 1, Identity>)>;
//! let mut model = Model::default();
//! model.init(&mut tinysde::noise::rng_from_seed(1), InitScheme::GlorotUniform)?;
//!
//! // The file a training run writes (fit_csv does this for a CSV).
//! let columns = [Column { name: "temp", transform: Transform::Affine, mean: 20.0, std: 2.0,
//!     state_index: 0, noise: 0.0 }];
//! let deployment = Deployment {
//!     state_dim: 1,
//!     columns: &columns,
//!     time: TimeAxis { name: "s", format: TimeFormat::Number, t0: 0.0, unit: 60.0 },
//!     solver: SolverSpec { method: "SOSRI", max_step: 0.5 },
//!     defaults: Defaults::new(32, 7, &[0.05, 0.5, 0.95])?,
//!     trends: &[],
//!     seasonal_lag: 0,
//! };
//! let bytes = file::to_vec(&model, &deployment)?;
//!
//! // On the device: 32 members, up to 4 pending or forecast times, 1 observed column.
//! let file = ModelFile::parse(&bytes)?;
//! let mut f: Forecaster<Model, Sosri, 1, 1, Arrays<1, 32, 4>> =
//!     Forecaster::new(Model::default(), Sosri, &file, Arrays::new())?;
//! f.observe(0.0, &[Some(20.5)])?;
//! let outcome = f.observe(60.0, &[Some(21.0)])?;   // checked against its band, then used
//! assert!(outcome.updated);
//! let mut out = [0.0f64; 2 * 4]; // 2 horizons x 1 column x (mean + 3 quantiles)
//! f.forecast(&[90.0, 120.0], &mut out)?;
//! assert!(out[1] <= out[2] && out[2] <= out[3]); // 5 % <= 50 % <= 95 %
//! // Bad readings are refused and change nothing.
//! assert!(f.observe(30.0, &[Some(1.0)]).is_err());      // before the last reading
//! assert!(f.observe(150.0, &[Some(f64::NAN)]).is_err());
//! # Ok::<(), tinysde::Error>(())
//! ```

pub mod adapt;
#[cfg(feature = "libm")]
pub mod baseline;
pub mod file;

use crate::error::{Error, ForecastError, NoiseKind, WeightsError};
use crate::nn::ParamSeed;
use crate::noise::{normal_from_bits, splitmix64, Brownian, Increment, NoiseSource, StepSize};
use crate::sde::Sde;
use crate::solve::{PlanEvent, Step, TimeGrid};
use crate::weights::Describe;
use file::{Column, Deployment, ModelFile, Transform, Trend};

/// The constant by which reading indices and columns are spread over the noise keys.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Salt of the observation-noise stream (distinct from the propagation noise).
const OBS_SALT: u64 = 0x0B5E_7A71_0000_0001;

/// Where a forecast's observation-noise stream starts (readings use indices below it).
const FORECAST_STREAM: u64 = 1 << 62;

/// The forecaster's working memory: the ensemble at its anchor, a working copy, one column
/// of samples, and the time buffer. All four are fixed once made; the ensemble size is
/// `anchor().len()` (the working copy and the column have the same length), the time
/// capacity `times().len()`.
///
/// [`Arrays`] holds them inline (const-generic sizes, for firmware); with feature `std`,
/// [`Vecs`] holds them in vectors sized at run time (for host tools).
pub trait Buffers<const D: usize> {
    /// The most model values the buffers keep of past readings for a seasonal difference
    /// ([`Forecaster::with_seasonal_lag`]): `lag x columns` of them are needed. `0` (the
    /// default, and [`Arrays`]' without its `H`): no history; the forecaster's difference
    /// code is then compiled away.
    const HISTORY: usize = 0;
    /// The four parts.
    fn parts(&mut self) -> Parts<'_, D>;
    /// The anchor ensemble.
    fn anchor(&self) -> &[[f32; D]];
}

/// The parts of [`Buffers`], borrowed together.
#[derive(Debug)]
pub struct Parts<'a, const D: usize> {
    /// The ensemble at the anchor (the forecaster's state).
    pub anchor: &'a mut [[f32; D]],
    /// A working copy of the ensemble (same length).
    pub work: &'a mut [[f32; D]],
    /// One column of samples (same length).
    pub column: &'a mut [f32],
    /// The model times of the readings since the anchor and of a forecast's horizons.
    pub times: &'a mut [f32],
    /// Past readings' model values for a seasonal difference (at most
    /// [`Buffers::HISTORY`]; empty without).
    pub history: &'a mut [f32],
}

/// [`Buffers`] inline: `N` members of dimension `D`, `T` times, and `H` past model values
/// for a seasonal difference (default 0: none, and the forecaster's difference code is
/// compiled away; a lag `L` over `C` columns needs `H >= L x C`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arrays<const D: usize, const N: usize, const T: usize, const H: usize = 0> {
    anchor: [[f32; D]; N],
    work: [[f32; D]; N],
    column: [f32; N],
    times: [f32; T],
    history: [f32; H],
}

impl<const D: usize, const N: usize, const T: usize, const H: usize> Arrays<D, N, T, H> {
    /// Zeroed buffers (the history unknown: NaN).
    pub const fn new() -> Self {
        Self {
            anchor: [[0.0; D]; N],
            work: [[0.0; D]; N],
            column: [0.0; N],
            times: [0.0; T],
            history: [f32::NAN; H],
        }
    }
}

impl<const D: usize, const N: usize, const T: usize, const H: usize> Default
    for Arrays<D, N, T, H>
{
    fn default() -> Self {
        Self::new()
    }
}

/// [`Buffers`] of a type with the fields `anchor`, `work`, `column`, `times` and the named history.
macro_rules! buffers_from_fields {
    ($history:ident) => {
        fn parts(&mut self) -> Parts<'_, D> {
            Parts {
                anchor: &mut self.anchor,
                work: &mut self.work,
                column: &mut self.column,
                times: &mut self.times,
                history: &mut self.$history,
            }
        }
        fn anchor(&self) -> &[[f32; D]] {
            &self.anchor
        }
    };
}

impl<const D: usize, const N: usize, const T: usize, const H: usize> Buffers<D>
    for Arrays<D, N, T, H>
{
    const HISTORY: usize = H;
    buffers_from_fields!(history);
}

/// [`Buffers`] in vectors sized at run time (feature `std`).
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq)]
pub struct Vecs<const D: usize> {
    anchor: std::vec::Vec<[f32; D]>,
    work: std::vec::Vec<[f32; D]>,
    column: std::vec::Vec<f32>,
    times: std::vec::Vec<f32>,
    history: std::vec::Vec<f32>,
}

#[cfg(feature = "std")]
impl<const D: usize> Vecs<D> {
    /// Buffers for `members` ensemble members and `times` times.
    pub fn new(members: usize, times: usize) -> Self {
        Self {
            anchor: std::vec![[0.0; D]; members],
            work: std::vec![[0.0; D]; members],
            column: std::vec![0.0; members],
            times: std::vec![0.0; times],
            history: std::vec::Vec::new(),
        }
    }

    /// The same buffers with room for `values` past readings' model values (a seasonal
    /// difference of lag `L` over `C` columns needs `L x C`; see
    /// [`Forecaster::with_seasonal_lag`]).
    pub fn with_history(mut self, values: usize) -> Self {
        self.history = std::vec![f32::NAN; values];
        self
    }
}

#[cfg(feature = "std")]
impl<const D: usize> Buffers<D> for Vecs<D> {
    const HISTORY: usize = usize::MAX;
    buffers_from_fields!(history);
}

/// One observed column as the forecaster uses it (the file's [`Column`] without its name).
#[derive(Clone, Copy, Debug, PartialEq)]
struct ColumnMap {
    transform: Transform,
    mean: f64,
    std: f64,
    index: usize,
    noise: f32,
    /// The deterministic mean under the SDE ([`Trend::NONE`] without one: then it adds
    /// and subtracts `+0.0`, which leaves every value's bits as they are).
    trend: Trend,
}

impl ColumnMap {
    fn column(&self) -> Column<'static> {
        Column {
            name: "",
            transform: self.transform,
            mean: self.mean,
            std: self.std,
            state_index: self.index as u16,
            noise: self.noise,
        }
    }
}

/// The check of one reading's value against its predicted distribution (user units).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Check {
    /// The predicted mean.
    pub mean: f64,
    /// The band's lower end: the quantile at the first level of the file's defaults.
    pub lower: f64,
    /// The band's upper end: the quantile at the last level.
    pub upper: f64,
    /// Whether the reading lies outside `[lower, upper]`.
    pub outside: bool,
    /// The reading's distance from the predicted mean in predicted standard deviations
    /// (model units; `±f32::MAX` if the prediction has no spread and the reading differs).
    pub z: f32,
}

/// What [`Forecaster::observe`] did with a reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outcome {
    /// The ensemble was updated with the reading (every column present).
    pub updated: bool,
    /// Bit `c` set: column `c` was checked against its predicted band (present, and the
    /// forecaster had a state to predict from).
    pub checked: u32,
    /// Bit `c` set: column `c`'s value was outside its band (an anomaly).
    pub outside: u32,
    /// Bit `c` set: with a seasonal difference ([`Forecaster::with_seasonal_lag`]), column
    /// `c`'s reading one lag back is unknown (missing, or before the first `lag` readings):
    /// the column was neither predicted nor checked, and the reading does not update the
    /// ensemble. Always `0` without a difference.
    pub unlagged: u32,
}

/// A streaming forecaster: an ensemble filter over model `M` (state dimension `D`, `C`
/// observed columns) stepped by `Meth`, in the memory of `B` (see the module docs).
#[derive(Clone, Debug)]
pub struct Forecaster<M, Meth, const D: usize, const C: usize, B> {
    model: M,
    method: Meth,
    columns: [ColumnMap; C],
    t0: f64,
    unit: f64,
    max_step: f32,
    /// The most solver steps one propagation may take (see `with_step_limit`).
    step_limit: u32,
    defaults: file::Defaults,
    buffers: B,
    /// Readings accepted so far.
    readings: u64,
    /// The last reading's user time and model time.
    last: Option<(f64, f32)>,
    /// The anchor's model time and the index of the reading that made it; `None` before
    /// the first fully observed reading.
    anchor: Option<(f32, u64)>,
    /// Readings since the anchor (their model times are `times[..pending]`).
    pending: usize,
    /// The seasonal difference's lag in readings (`0`: none; see `with_seasonal_lag`).
    lag: u16,
    /// The history slot of the next reading (`readings mod lag`, kept without a division).
    slot: u16,
}

/// The most solver steps per member one [`Forecaster::observe`] or
/// [`Forecaster::forecast`] takes unless [`Forecaster::with_step_limit`] says otherwise:
/// 65,536 (a reading 16,384 time units ahead with four steps per unit).
pub const DEFAULT_STEP_LIMIT: u32 = 1 << 16;

/// What `Forecaster::propagate` calls at each save time: the save's index and model time,
/// the members there, a scratch column and the buffers' history.
type AtSave<'a, const D: usize> =
    dyn FnMut(usize, f32, &[[f32; D]], &mut [f32], &[f32]) -> Result<(), Error> + 'a;

/// The increments of step `k` for member `m` (scalar noise: one shared channel).
#[inline]
fn increment<M: Sde<f32, D>, const D: usize>(
    noise: &Brownian,
    m: usize,
    k: u32,
    size: StepSize,
    with_dz: bool,
) -> Result<Increment<D>, Error> {
    if M::NOISE == NoiseKind::Scalar {
        let Increment { dw: [w], dz: [z] } = noise.increment_sized::<1>(m, k, size, with_dz)?;
        Ok(Increment {
            dw: [w; D],
            dz: [if with_dz { z } else { 0.0 }; D],
        })
    } else {
        let mut inc = noise.increment_sized::<D>(m, k, size, with_dz)?;
        if !with_dz {
            inc.dz = [0.0; D];
        }
        Ok(inc)
    }
}

/// A standard normal for the observation noise of `(stream, member, column)`.
fn obs_normal(seed: u64, stream: u64, m: usize, c: usize) -> f32 {
    let key = mix(mix(mix(seed ^ OBS_SALT) ^ stream) ^ m as u64);
    normal_from_bits(mix(key.wrapping_add((c as u64).wrapping_mul(GOLDEN))) as u32)
}

/// [`splitmix64`] out of line: [`obs_normal`] chains four, and each inlined copy of its two
/// 64-bit multiplies costs a 32-bit core about 100 bytes of flash (the streaming firmware's
/// budget) for a function called once per member and column.
#[inline(never)]
fn mix(x: u64) -> u64 {
    splitmix64(x)
}

/// Fills `samples` with column `col`'s predictive samples from `members`, plus `mean` (the
/// column's deterministic mean at the time; computed as `x - (0 - mean)`, which is `x + mean`
/// and for a mean of `+0.0` exactly `x`, a `-0.0` sample included).
#[allow(
    clippy::too_many_arguments,
    reason = "a private helper of observe and forecast: the noise key parts (seed, stream, column) and the mean are separate values there"
)]
fn column_samples<const D: usize>(
    members: &[[f32; D]],
    col: &ColumnMap,
    seed: u64,
    stream: u64,
    c: usize,
    mean: f32,
    samples: &mut [f32],
) {
    let neg = 0.0 - mean;
    for (m, (s, u)) in samples.iter_mut().zip(members).enumerate() {
        let x = u.get(col.index).copied().unwrap_or(f32::NAN);
        let x = if col.noise > 0.0 {
            x + col.noise * obs_normal(seed, stream, m, c)
        } else {
            x
        };
        *s = x - neg;
    }
}

/// Checks a seasonal lag against the buffers' history (at least 1; the history holds
/// `lag x C` values) and marks the history unknown (NaN) if it does. Not inlined: firmware
/// without a history only calls it to get the error.
#[inline(never)]
fn check_lag<const C: usize>(lag: usize, history: &mut [f32]) -> Result<(), Error> {
    if lag == 0 {
        return Err(Error::OutOfRange {
            what: "seasonal lag: must be at least 1 reading",
        });
    }
    if lag.checked_mul(C).is_none_or(|n| n > history.len()) {
        return Err(Error::OutOfRange {
            what: "seasonal lag: the buffers' history must hold lag x columns values",
        });
    }
    for v in history.iter_mut() {
        *v = f32::NAN;
    }
    Ok(())
}

/// The history slot of the reading `ahead` after the one in `slot` (`ahead < lag`: without
/// a division; a larger `ahead` wraps once only).
fn lagged_slot(slot: usize, ahead: usize, lag: usize) -> usize {
    let s = slot.saturating_add(ahead);
    if s >= lag {
        s - lag
    } else {
        s
    }
}

/// Adds a seasonal difference's lagged model value `l` to every sample (last, after the
/// column's mean).
fn add_lagged(samples: &mut [f32], l: f32) {
    for s in samples.iter_mut() {
        *s += l;
    }
}

/// `[mean, quantiles...]` of `samples` (sorted in place) in the user's units.
fn summarize(
    col: &ColumnMap,
    levels: &[f32],
    samples: &mut [f32],
    out: &mut [f64],
) -> Result<(), Error> {
    let column = col.column();
    let (mean, quantiles) = out.split_first_mut().ok_or(ForecastError::Output)?;
    for (q, &p) in quantiles.iter_mut().zip(levels) {
        *q = column.user_value(crate::train::ensemble_quantile(samples, p)?);
    }
    // After the sort: the mean sums in sorted order (as fit_csv always has).
    let n = samples.len() as f64;
    *mean = match col.transform {
        Transform::Affine => {
            let z = (samples.iter().map(|&v| f64::from(v)).sum::<f64>() / n) as f32;
            column.user_value(z)
        }
        Transform::Log => samples.iter().map(|&v| column.user_value(v)).sum::<f64>() / n,
    };
    Ok(())
}

/// Mean and standard deviation (`f32`, divisor `n`) of sorted-or-not samples.
fn mean_sd(samples: &[f32]) -> (f32, f32) {
    let n = samples.len().max(1) as f32;
    let mean = samples.iter().sum::<f32>() / n;
    let var = samples
        .iter()
        .map(|&v| (v - mean) * (v - mean))
        .sum::<f32>()
        / n;
    (mean, crate::math::sqrt(var))
}

impl<M, Meth, const D: usize, const C: usize, B> Forecaster<M, Meth, D, C, B>
where
    M: Sde<f32, D> + Describe,
    Meth: Step<f32, M, D>,
    B: Buffers<D>,
{
    /// A forecaster for the model file `file`: loads its parameters into `model` and takes
    /// its scaling, solver and defaults.
    ///
    /// Errors: the file's model is not `M` ([`WeightsError::ShapeMismatch`] and the other
    /// errors of [`ModelFile::load_into`]), its state dimension is not `D`, it observes not
    /// `C` columns, or its method is not `Meth` ([`WeightsError::ShapeMismatch`]); a section
    /// the forecaster needs is absent ([`WeightsError::MissingSection`]: a version 1 file
    /// has no scaling); `Meth` does not support `M`'s noise ([`Error::UnsupportedNoise`]);
    /// the buffers hold no member or no time, or their parts differ in length
    /// ([`Error::Length`]).
    pub fn new(model: M, method: Meth, file: &ModelFile<'_>, buffers: B) -> Result<Self, Error> {
        let need = |tag| Error::Weights(WeightsError::MissingSection(tag));
        let dim = file.state_dim().ok_or(need(file::tag::STATE))?;
        let count = file.column_count().ok_or(need(file::tag::STATE))?;
        let time = file.time().ok_or(need(file::tag::TIME))?;
        let solver = file.solver().ok_or(need(file::tag::SOLVER))?;
        let defaults = file.defaults().ok_or(need(file::tag::FORECAST))?;
        let first = file.column(0).ok_or(need(file::tag::COLUMNS))?;
        if dim as usize != D || count != C || solver.method != Meth::NAME {
            return Err(WeightsError::ShapeMismatch.into());
        }
        let mut columns = [first; C];
        let mut trends = [Trend::NONE; C];
        for (i, (slot, trend)) in columns.iter_mut().zip(trends.iter_mut()).enumerate() {
            *slot = file.column(i).ok_or(need(file::tag::COLUMNS))?;
            *trend = file.trend(i).ok_or(need(file::tag::TREND))?;
        }
        let deployment = Deployment {
            state_dim: dim,
            columns: &columns,
            time,
            solver,
            defaults,
            trends: if file.has_trend() { &trends } else { &[] },
            seasonal_lag: file.seasonal_lag(),
        };
        let mut f = Self::from_parts(model, method, &deployment, buffers)?;
        file.load_into(&mut f.model)?;
        Ok(f)
    }

    /// A forecaster for `model` (its parameters already set) with the scaling, time axis,
    /// solver and forecast defaults of `deployment`: what [`Forecaster::new`] takes from a
    /// model file, given directly. Firmware built for one model file makes `deployment`
    /// from constants generated at build time and does not link the file reader; the
    /// forecasts are bit for bit those of [`Forecaster::new`] from the file that
    /// [`file::write`] makes of the same model and deployment.
    ///
    /// Errors, as [`Forecaster::new`]'s: a deployment [`file::write`] would refuse
    /// ([`Error::OutOfRange`]: no column or more than the state dimension, a state index
    /// out of range or observed twice, a scale, origin, unit, step or noise not finite or
    /// not positive, bad quantile levels); a state dimension other than `D`, a column count
    /// other than `C` or a method other than `Meth` ([`WeightsError::ShapeMismatch`]);
    /// `Meth` does not support `M`'s noise ([`Error::UnsupportedNoise`]); buffers without a
    /// member or a time, or parts of different lengths ([`Error::Length`]). `model` is taken
    /// as it is (the ways to set its parameters, [`Parameters::write_params`] and the
    /// weights readers, refuse values that are not finite; a model that diverges anyway is
    /// [`Error::Diverged`] at the reading).
    ///
    /// [`Parameters::write_params`]: crate::nn::Parameters::write_params
    ///
    /// ```
    /// use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile, SolverSpec,
    ///     TimeAxis, TimeFormat, Transform};
    /// use tinysde::forecast::{Arrays, Forecaster};
    /// use tinysde::nn::{Dense, FastSigmoid, FastTanh, Identity, InitScheme};
    /// use tinysde::sde::NeuralSde;
    /// use tinysde::solve::Sosri;
    ///
    /// type Model = NeuralSde<(Dense<1, 8, FastTanh>, Dense<8, 1, Identity>),
    ///                        (Dense<1, 8, FastSigmoid>, Dense<8, 1, Identity>)>;
    /// type F = Forecaster<Model, Sosri, 1, 1, Arrays<1, 32, 4>>;
    /// let mut model = Model::default();
    /// model.init(&mut tinysde::noise::rng_from_seed(1), InitScheme::GlorotUniform)?;
    /// const COLUMNS: [Column<'static>; 1] = [Column { name: "temp", transform: Transform::Affine,
    ///     mean: 20.0, std: 2.0, state_index: 0, noise: 0.0 }];
    /// let deployment = Deployment {
    ///     state_dim: 1,
    ///     columns: &COLUMNS,
    ///     time: TimeAxis { name: "s", format: TimeFormat::Number, t0: 0.0, unit: 60.0 },
    ///     solver: SolverSpec { method: "SOSRI", max_step: 0.5 },
    ///     defaults: Defaults::new(32, 7, &[0.05, 0.5, 0.95])?,
    ///     trends: &[],
    ///     seasonal_lag: 0,
    /// };
    /// // On the device: no file to read, the parts are constants.
    /// let mut device = F::from_parts(model.clone(), Sosri, &deployment, Arrays::new())?;
    /// // On the host: the file of the same model and deployment.
    /// let bytes = file::to_vec(&model, &deployment)?;
    /// let mut host = F::new(Model::default(), Sosri, &ModelFile::parse(&bytes)?, Arrays::new())?;
    /// let (mut a, mut b) = ([0.0; 8], [0.0; 8]);
    /// for (f, out) in [(&mut device, &mut a), (&mut host, &mut b)] {
    ///     f.observe(0.0, &[Some(20.5)])?;
    ///     f.observe(60.0, &[Some(21.0)])?;
    ///     f.forecast(&[90.0, 120.0], out)?;
    /// }
    /// assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits)); // bit for bit
    /// // What the file format refuses is refused here too.
    /// let bad = Deployment { solver: SolverSpec { method: "SOSRI", max_step: 0.0 }, ..deployment };
    /// assert!(F::from_parts(model.clone(), Sosri, &bad, Arrays::new()).is_err());
    /// let other = Deployment { solver: SolverSpec { method: "EM", max_step: 0.5 }, ..deployment };
    /// assert!(F::from_parts(model, Sosri, &other, Arrays::new()).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn from_parts(
        model: M,
        method: Meth,
        deployment: &Deployment<'_>,
        mut buffers: B,
    ) -> Result<Self, Error> {
        let d = deployment;
        // (A seasonal difference needs buffers with a history: checked with the rest.)
        file::check_deployment(d, B::HISTORY > 0)?;
        if d.state_dim as usize != D || d.columns.len() != C || d.solver.method != Meth::NAME {
            return Err(WeightsError::ShapeMismatch.into());
        }
        if !Meth::supports(M::NOISE) {
            return Err(Error::UnsupportedNoise {
                method: Meth::NAME,
                noise: M::NOISE,
            });
        }
        let mut columns = [ColumnMap {
            transform: Transform::Affine,
            mean: 0.0,
            std: 1.0,
            index: 0,
            noise: 0.0,
            trend: Trend::NONE,
        }; C];
        for (i, (slot, c)) in columns.iter_mut().zip(d.columns).enumerate() {
            *slot = ColumnMap {
                transform: c.transform,
                mean: c.mean,
                std: c.std,
                index: c.state_index as usize,
                noise: c.noise,
                trend: d.trends.get(i).copied().unwrap_or(Trend::NONE),
            };
        }
        {
            let Parts {
                anchor,
                work,
                column,
                times,
                history,
            } = buffers.parts();
            if B::HISTORY > 0 && d.seasonal_lag > 0 {
                check_lag::<C>(usize::from(d.seasonal_lag), history)?;
            }
            let n = anchor.len();
            if n == 0 || times.is_empty() {
                return Err(Error::Length {
                    what: "forecaster buffers (members, times)",
                    expected: 1,
                    found: 0,
                });
            }
            for len in [work.len(), column.len()] {
                if len != n {
                    return Err(Error::Length {
                        what: "forecaster buffers (work, column)",
                        expected: n,
                        found: len,
                    });
                }
            }
        }
        Ok(Self {
            model,
            method,
            columns,
            t0: d.time.t0,
            unit: d.time.unit,
            max_step: d.solver.max_step,
            step_limit: DEFAULT_STEP_LIMIT,
            defaults: d.defaults,
            buffers,
            readings: 0,
            last: None,
            anchor: None,
            pending: 0,
            lag: d.seasonal_lag,
            slot: 0,
        })
    }

    /// The same forecaster with a seasonal difference of `lag` readings: each column's
    /// model value `z` is read as `z_i = z_(i - lag) + u_i`, the SDE (with the column's
    /// deterministic mean, if any) modelling `u`. A reading updates the ensemble with
    /// `u_i = z_i - z_(i - lag)` (model units; then minus the mean as without a difference),
    /// and every predictive sample of reading or horizon `i` is the sample of `u` plus
    /// `z_(i - lag)`, added last (`(u + m) + z_(i - lag)`, in `f32`). The forecaster keeps the
    /// last `lag` readings' model values of every column in its buffers' history
    /// ([`Parts::history`]; fixed memory, `lag x C` values). Readings count as rows: the
    /// lag is a number of readings, not a time, so a series read at regular times with
    /// missing values passed as `None` is what it is meant for.
    ///
    /// A reading whose value `lag` readings back is unknown (missing, or one of the first
    /// `lag` readings) is neither predicted nor checked in that column and does not update
    /// the ensemble ([`Outcome::unlagged`]); the ensemble starts at the first full reading
    /// with known lagged values. [`Forecaster::forecast`] reaches at most `lag` readings past
    /// the last one: horizon `j` (counting from 0) is taken to be reading `readings + j`, and
    /// `j >= lag` is [`Error::OutOfRange`] (its lagged value is itself a forecast); a horizon
    /// whose lagged reading is unknown is [`Error::NonFinite`] (`what`: the lagged reading,
    /// `index`: the column).
    ///
    /// Errors, with nothing changed: `lag` is 0, or the buffers' history holds fewer than
    /// `lag x C` values ([`Error::OutOfRange`]), or readings were already taken
    /// ([`Error::OutOfRange`]: the difference starts with the series).
    pub fn with_seasonal_lag(mut self, lag: usize) -> Result<Self, Error> {
        if self.readings > 0 {
            return Err(Error::OutOfRange {
                what: "seasonal lag: must be set before the first reading",
            });
        }
        let short = u16::try_from(lag).map_err(|_| Error::OutOfRange {
            what: "seasonal lag: at most 65535 readings",
        })?;
        check_lag::<C>(lag, self.buffers.parts().history)?;
        self.lag = short;
        self.slot = 0;
        Ok(self)
    }

    /// The seasonal difference's lag in readings (`0`: none).
    pub fn seasonal_lag(&self) -> usize {
        if B::HISTORY == 0 {
            0
        } else {
            usize::from(self.lag)
        }
    }

    /// Keeps the current reading's model values `z` (NaN where not `present`) in the
    /// history and moves to the next slot, with a seasonal difference.
    fn remember(&mut self, z: &[f32; C], present: &[bool; C]) {
        let lag = self.seasonal_lag();
        if lag == 0 {
            return;
        }
        let slot = usize::from(self.slot);
        let history = self.buffers.parts().history;
        for (c, (&v, &p)) in z.iter().zip(present).enumerate() {
            if let Some(h) = history.get_mut(slot * C + c) {
                *h = if p { v } else { f32::NAN };
            }
        }
        // `slot + 1 <= lag <= u16::MAX`.
        self.slot = if slot + 1 >= lag {
            0
        } else {
            (slot + 1) as u16
        };
    }

    /// Each column's model value `lag` readings before reading `readings + ahead` (NaN:
    /// unknown; `ahead < lag`), or `None` without a difference.
    fn lagged(&mut self, ahead: usize) -> Option<[f32; C]> {
        let lag = self.seasonal_lag();
        if lag == 0 {
            return None;
        }
        if self.readings.saturating_add(ahead as u64) < lag as u64 {
            return Some([f32::NAN; C]);
        }
        let slot = lagged_slot(usize::from(self.slot), ahead, lag);
        let history = self.buffers.parts().history;
        Some(core::array::from_fn(|c| {
            history.get(slot * C + c).copied().unwrap_or(f32::NAN)
        }))
    }

    /// The same forecaster with the noise seed `seed` in place of the file's (the
    /// forecast defaults' `seed`): a board seeds its forecasts from its hardware random
    /// number generator this way. Everything else, including the forecaster's state, stays
    /// as it is; the noise of every later propagation, update and forecast is keyed by the
    /// new seed (see the module docs), so a forecaster with the file's own seed gives the
    /// host's numbers and one with another seed independent ones.
    ///
    /// ```
    /// # use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile,
    /// #     SolverSpec, TimeAxis, TimeFormat, Transform};
    /// # use tinysde::forecast::{Arrays, Forecaster};
    /// # use tinysde::nn::{Dense, FastSigmoid, FastTanh, Identity, InitScheme};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::Sosri;
    /// # type Model = NeuralSde<(Dense<1, 8, FastTanh>, Dense<8, 1, Identity>),
    /// #                        (Dense<1, 8, FastSigmoid>, Dense<8, 1, Identity>)>;
    /// # let mut model = Model::default();
    /// # model.init(&mut tinysde::noise::rng_from_seed(1), InitScheme::GlorotUniform)?;
    /// # let columns = [Column { name: "temp", transform: Transform::Affine, mean: 20.0,
    /// #     std: 2.0, state_index: 0, noise: 0.0 }];
    /// # let deployment = Deployment { state_dim: 1, columns: &columns,
    /// #     time: TimeAxis { name: "s", format: TimeFormat::Number, t0: 0.0, unit: 60.0 },
    /// #     solver: SolverSpec { method: "SOSRI", max_step: 0.5 },
    /// #     defaults: Defaults::new(32, 7, &[0.05, 0.5, 0.95])?, trends: &[], seasonal_lag: 0 };
    /// # let bytes = file::to_vec(&model, &deployment)?;
    /// type F = Forecaster<Model, Sosri, 1, 1, Arrays<1, 32, 4>>;
    /// let file = ModelFile::parse(&bytes)?; // a file whose forecast seed is 7
    /// let mut host = F::new(Model::default(), Sosri, &file, Arrays::new())?;
    /// let mut same = F::new(Model::default(), Sosri, &file, Arrays::new())?.with_seed(7);
    /// let mut board = F::new(Model::default(), Sosri, &file, Arrays::new())?
    ///     .with_seed(0x5EED_0F_B0A2D); // e.g. from the board's random number generator
    /// assert_eq!(board.defaults().seed, 0x5EED_0F_B0A2D);
    /// let (mut a, mut b, mut c) = ([0.0; 4], [0.0; 4], [0.0; 4]);
    /// for (f, out) in [(&mut host, &mut a), (&mut same, &mut b), (&mut board, &mut c)] {
    ///     f.observe(0.0, &[Some(20.5)])?;
    ///     f.forecast(&[60.0], out)?;
    /// }
    /// assert_eq!(a, b); // the file's own seed: the host's numbers
    /// assert_ne!(a, c); // another seed: other Brownian paths
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.defaults.seed = seed;
        self
    }

    /// The same forecaster taking at most `steps` solver steps per member in one
    /// [`observe`](Forecaster::observe) or [`forecast`](Forecaster::forecast) (default
    /// [`DEFAULT_STEP_LIMIT`]). The steps a call takes follow from the data: from the last
    /// fully observed reading to the latest time asked for, in steps of the file's
    /// `max_step`; a reading or horizon further ahead is refused with
    /// [`Error::OutOfRange`], the forecaster unchanged, so one reading with a wrong clock
    /// cannot stall a device (or a host) for hours.
    ///
    /// ```
    /// # use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile,
    /// #     SolverSpec, TimeAxis, TimeFormat, Transform};
    /// # use tinysde::forecast::{Arrays, Forecaster};
    /// # use tinysde::nn::{Dense, FastSigmoid, FastTanh, Identity};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::Error;
    /// # type Model = NeuralSde<(Dense<1, 8, FastTanh>, Dense<8, 1, Identity>),
    /// #                        (Dense<1, 8, FastSigmoid>, Dense<8, 1, Identity>)>;
    /// # let columns = [Column { name: "x", transform: Transform::Affine, mean: 0.0,
    /// #     std: 1.0, state_index: 0, noise: 0.0 }];
    /// # let deployment = Deployment { state_dim: 1, columns: &columns,
    /// #     time: TimeAxis { name: "t", format: TimeFormat::Number, t0: 0.0, unit: 1.0 },
    /// #     solver: SolverSpec { method: "EulerMaruyama", max_step: 0.5 },
    /// #     defaults: Defaults::new(4, 1, &[0.05, 0.5, 0.95])?, trends: &[], seasonal_lag: 0 };
    /// # let bytes = file::to_vec(&Model::default(), &deployment)?;
    /// let file = ModelFile::parse(&bytes)?; // steps of at most 0.5 time units
    /// let mut f: Forecaster<Model, EulerMaruyama, 1, 1, Arrays<1, 4, 2>> =
    ///     Forecaster::new(Model::default(), EulerMaruyama, &file, Arrays::new())?
    ///         .with_step_limit(10);
    /// f.observe(0.0, &[Some(1.0)])?;
    /// let mut out = [0.0; 4];
    /// f.forecast(&[5.0], &mut out)?; // 10 steps of 0.5: allowed
    /// assert!(matches!(f.forecast(&[5.5], &mut out), Err(Error::OutOfRange { .. })));
    /// assert!(matches!(f.observe(6.0, &[Some(1.0)]), Err(Error::OutOfRange { .. })));
    /// assert_eq!(f.readings(), 1);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[must_use]
    pub fn with_step_limit(mut self, steps: u32) -> Self {
        self.step_limit = steps;
        self
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The forecast defaults of the file (quantile levels, seed).
    pub fn defaults(&self) -> &file::Defaults {
        &self.defaults
    }

    /// The ensemble size.
    pub fn members(&self) -> usize {
        self.buffers.anchor().len()
    }

    /// The ensemble at its anchor (model units), if a reading has set it.
    pub fn member_states(&self) -> Option<&[[f32; D]]> {
        self.anchor.map(|_| self.buffers.anchor())
    }

    /// Readings accepted so far.
    pub fn readings(&self) -> u64 {
        self.readings
    }

    /// The last reading's time (user units).
    pub fn last_time(&self) -> Option<f64> {
        self.last.map(|(t, _)| t)
    }

    /// Values per (horizon, column) in [`Forecaster::forecast`]'s output: the mean and one
    /// per quantile level.
    pub fn values_per_column(&self) -> usize {
        1 + self.defaults.levels().len()
    }

    /// Model time of user time `t`.
    fn tau(&self, t: f64) -> f32 {
        ((t - self.t0) / self.unit) as f32
    }

    /// Moves the anchor ensemble into the working one through `times[..saves]`, calling
    /// `at_save(i, tau, members, column)` at each (after checking that every member is finite).
    /// `at_save` is a `dyn` closure and the function not inlined: one copy of the
    /// ensemble's step loop serves `observe` and `forecast` (firmware flash).
    #[inline(never)]
    fn propagate(&mut self, saves: usize, at_save: &mut AtSave<'_, D>) -> Result<(), Error> {
        let Some((t_anchor, segment)) = self.anchor else {
            return Err(ForecastError::NoState.into());
        };
        let Parts {
            anchor,
            work,
            column,
            times,
            history,
        } = self.buffers.parts();
        for (w, a) in work.iter_mut().zip(anchor.iter()) {
            *w = *a;
        }
        let saves = times.get(..saves).ok_or(ForecastError::Output)?;
        let Some(&last) = saves.last() else {
            return Ok(());
        };
        let noise = Brownian::new(self.defaults.seed ^ segment.wrapping_mul(GOLDEN));
        let grid = TimeGrid::with_max_step(t_anchor, last, self.max_step)?;
        if grid.steps() > self.step_limit {
            return Err(Error::OutOfRange {
                what: "time too far ahead: the steps to it exceed the forecaster's step limit",
            });
        }
        let mut last_step = 0;
        for event in grid.plan(saves)? {
            match event {
                PlanEvent::Save(i) => {
                    if let Some(m) = work.iter().position(|u| u.iter().any(|x| !x.is_finite())) {
                        return Err(Error::Diverged {
                            trajectory: m,
                            step: last_step,
                        });
                    }
                    let tau = saves.get(i).copied().unwrap_or(f32::NAN);
                    at_save(i, tau, work, column, history)?;
                }
                PlanEvent::Step(s) => {
                    let size = StepSize::planned(s.h, s.sqrt_h);
                    for (m, u) in work.iter_mut().enumerate() {
                        let inc = if Meth::USES_NOISE {
                            increment::<M, D>(&noise, m, s.k, size, Meth::NEEDS_DZ)?
                        } else {
                            Increment {
                                dw: [0.0; D],
                                dz: [0.0; D],
                            }
                        };
                        *u = self
                            .method
                            .step(&self.model, s.t, s.h, u, &inc, ParamSeed::NONE);
                    }
                    last_step = s.k;
                }
            }
        }
        Ok(())
    }

    /// Takes the reading `values` (user units, one per observed column, `None` where
    /// missing) at user time `t`: checks each present value against its predicted band, and
    /// updates the ensemble if every column is present (see the module docs).
    ///
    /// Errors, with the forecaster unchanged: `t` not finite or its model time not after
    /// the previous reading's in `f32` ([`ForecastError::BadTime`]), `t` not after the
    /// previous reading ([`ForecastError::TimeOrder`]), a value NaN, infinite or outside
    /// its transform's domain ([`ForecastError::BadValue`]), the ensemble diverging
    /// ([`Error::Diverged`]), a time so far ahead that the steps to it overflow a `u32`
    /// ([`Error::OutOfRange`]).
    pub fn observe(&mut self, t: f64, values: &[Option<f64>; C]) -> Result<Outcome, Error> {
        self.observe_checked(t, values, &mut [])
    }

    /// [`Forecaster::observe`], also writing each checked column's [`Check`] into
    /// `checks[c]` (`checks` empty, or `C` long: [`ForecastError::Output`] otherwise; it is
    /// written only on success).
    pub fn observe_checked(
        &mut self,
        t: f64,
        values: &[Option<f64>; C],
        checks: &mut [Check],
    ) -> Result<Outcome, Error> {
        self.observe_with(t, values, checks, |_, _, _| {})
    }

    /// [`Forecaster::observe_checked`], also handing the prediction of the reading to
    /// `visit(c, samples, summary)` for every column `c`, present or missing, once the
    /// forecaster has a state to predict from: the column's predictive samples in model
    /// units, sorted, and `[mean, quantiles...]` in the user's units, the numbers
    /// [`Forecaster::forecast`] gives for the reading's time. (For scores that need the
    /// samples, as `fit_csv`'s CRPS.) `visit` may have been called when an error is
    /// returned after the prediction (a diverging update); the forecaster is unchanged then.
    pub fn observe_with(
        &mut self,
        t: f64,
        values: &[Option<f64>; C],
        checks: &mut [Check],
        mut visit: impl FnMut(usize, &[f32], &[f64]),
    ) -> Result<Outcome, Error> {
        if !(checks.is_empty() || checks.len() == C) {
            return Err(ForecastError::Output.into());
        }
        if !t.is_finite() {
            return Err(ForecastError::BadTime.into());
        }
        let tau = self.tau(t);
        if let Some((last_t, last_tau)) = self.last {
            if t.partial_cmp(&last_t) != Some(core::cmp::Ordering::Greater) {
                return Err(ForecastError::TimeOrder.into());
            }
            if tau.partial_cmp(&last_tau) != Some(core::cmp::Ordering::Greater) {
                return Err(ForecastError::BadTime.into());
            }
        }
        if !tau.is_finite() {
            return Err(ForecastError::BadTime.into());
        }
        let mut z = [0.0f32; C];
        let mut present = [false; C];
        for (c, (col, v)) in self.columns.iter().zip(values).enumerate() {
            if let Some(x) = *v {
                let value = col
                    .column()
                    .model_value(x)
                    .ok_or(ForecastError::BadValue(c))?;
                if let (Some(zc), Some(p)) = (z.get_mut(c), present.get_mut(c)) {
                    *zc = value;
                    *p = true;
                }
            }
        }
        let index = self.readings;
        // With a seasonal difference: the SDE sees `diff = z - z_(index - lag)`; a column whose
        // lagged value is unknown is neither predicted nor used.
        let lagged = self.lagged(0);
        let mut diff = z;
        let mut unlagged = 0u32;
        if let Some(lz) = lagged {
            for (c, (uc, &l)) in diff.iter_mut().zip(lz.iter()).enumerate() {
                if l.is_finite() {
                    *uc -= l;
                } else {
                    unlagged |= 1 << c;
                }
            }
        }
        let full = present.iter().all(|&p| p) && unlagged == 0;
        // Each column's deterministic mean at the reading (`+0.0` without one).
        let means: [f32; C] =
            core::array::from_fn(|c| self.columns.get(c).map_or(0.0, |col| col.trend.at(tau)));
        let seed = self.defaults.seed;
        let mut outcome = Outcome {
            unlagged,
            ..Outcome::default()
        };
        let mut local = [Check::default(); C];

        let Some((_, _)) = self.anchor else {
            // No state yet: a full reading sets it.
            if full {
                let columns = self.columns;
                let anchor = self.buffers.parts().anchor;
                for (m, u) in anchor.iter_mut().enumerate() {
                    *u = [0.0; D];
                    for (c, col) in columns.iter().enumerate() {
                        let y = diff.get(c).copied().unwrap_or(0.0)
                            - means.get(c).copied().unwrap_or(0.0);
                        let x = if col.noise > 0.0 {
                            y + col.noise * obs_normal(seed, index, m, c)
                        } else {
                            y
                        };
                        if let Some(slot) = u.get_mut(col.index) {
                            *slot = x;
                        }
                    }
                }
                self.anchor = Some((tau, index));
                self.pending = 0;
                outcome.updated = true;
            }
            self.remember(&z, &present);
            self.last = Some((t, tau));
            self.readings = index + 1;
            return Ok(outcome);
        };

        // The prior at `tau`, through the pending readings' times.
        let pending = self.pending;
        {
            let times = self.buffers.parts().times;
            match times.get_mut(pending) {
                Some(slot) => *slot = tau,
                None => {
                    return Err(ForecastError::Capacity {
                        capacity: times.len(),
                        needed: pending + 1,
                    }
                    .into())
                }
            }
        }
        self.propagate(pending + 1, &mut |_, _, _, _, _| Ok(()))?;

        // Predict each column; check each present one against its predicted band (from
        // the first level to the last).
        let levels = self.defaults.levels();
        let v = 1 + levels.len();
        let columns = self.columns;
        let Parts { work, column, .. } = self.buffers.parts();
        let mut summary = [0.0f64; 1 + file::MAX_LEVELS];
        for (c, col) in columns.iter().enumerate() {
            let mean = means.get(c).copied().unwrap_or(0.0);
            column_samples(work, col, seed, index, c, mean, column);
            if let Some(lz) = lagged {
                match lz.get(c) {
                    Some(&l) if l.is_finite() => add_lagged(column, l),
                    _ => continue,
                }
            }
            let (mean, sd) = mean_sd(column);
            let s = summary.get_mut(..v).ok_or(ForecastError::Output)?;
            summarize(col, levels, column, s)?;
            visit(c, column, s);
            let (Some(&true), Some(&y), Some(&x), Some(check)) = (
                present.get(c),
                z.get(c),
                values.get(c).and_then(|v| v.as_ref()),
                local.get_mut(c),
            ) else {
                continue;
            };
            let (m, lower, upper) = match s {
                [m, lower, .., upper] => (*m, *lower, *upper),
                [m, q] => (*m, *q, *q),
                _ => continue,
            };
            let d = y - mean;
            check.mean = m;
            check.lower = lower;
            check.upper = upper;
            check.outside = x < lower || x > upper;
            check.z = if sd > 0.0 {
                d / sd
            } else if d == 0.0 {
                0.0
            } else {
                f32::MAX.copysign(d)
            };
            outcome.checked |= 1 << c;
            if check.outside {
                outcome.outside |= 1 << c;
            }
        }

        if full {
            // The ensemble update, column by column, in the working copy.
            for (c, col) in columns.iter().enumerate() {
                // The SDE's state is the reading (differenced) minus the column's mean.
                let y = diff.get(c).copied().unwrap_or(0.0) - means.get(c).copied().unwrap_or(0.0);
                update_column(work, column, col, y, seed, index, c);
            }
            if let Some(m) = work.iter().position(|u| u.iter().any(|x| !x.is_finite())) {
                return Err(Error::Diverged {
                    trajectory: m,
                    step: 0,
                });
            }
        }
        let capacity = self.buffers.parts().times.len();
        if full || pending + 1 >= capacity {
            let Parts { anchor, work, .. } = self.buffers.parts();
            for (a, w) in anchor.iter_mut().zip(work.iter()) {
                *a = *w;
            }
            self.anchor = Some((tau, index));
            self.pending = 0;
        } else {
            self.pending = pending + 1;
        }
        outcome.updated = full;
        self.remember(&z, &present);
        self.last = Some((t, tau));
        self.readings = index + 1;
        if checks.len() == C {
            for (dst, (src, c)) in checks.iter_mut().zip(local.iter().zip(0..)) {
                if outcome.checked & (1 << c) != 0 {
                    *dst = *src;
                }
            }
        }
        Ok(outcome)
    }

    /// The forecast at user times `horizons` (strictly increasing, after the last reading):
    /// for horizon `j` and column `c`, `out[(j * C + c) * V ..][..V]` is the mean and then
    /// the quantile at each of the file's levels, in the user's units, `V =
    /// values_per_column()`. `out` must be exactly `horizons.len() * C * V` long and is
    /// written only on success; the forecaster's state does not change.
    ///
    /// Errors: no reading has set the ensemble ([`ForecastError::NoState`]), a horizon not
    /// after the last reading or the previous horizon ([`ForecastError::TimeOrder`] /
    /// [`ForecastError::BadTime`]), more times than the buffer holds with the readings
    /// since the last update ([`ForecastError::Capacity`]), a wrong `out` length
    /// ([`ForecastError::Output`]), the ensemble diverging ([`Error::Diverged`]), a horizon
    /// so far ahead that the steps to it overflow a `u32` ([`Error::OutOfRange`]).
    pub fn forecast(&mut self, horizons: &[f64], out: &mut [f64]) -> Result<(), Error> {
        let v = self.values_per_column();
        if Some(out.len()) != horizons.len().checked_mul(C * v) {
            return Err(ForecastError::Output.into());
        }
        if horizons.len() > 1 {
            // A first pass without writing: `out` stays untouched if a later horizon fails.
            self.forecast_with(horizons, |_, _, _, _| {})?;
        }
        self.forecast_with(horizons, |j, c, _, summary| {
            if let Some(dst) = out.get_mut((j * C + c) * v..(j * C + c + 1) * v) {
                for (d, s) in dst.iter_mut().zip(summary) {
                    *d = *s;
                }
            }
        })
    }

    /// The forecast at `horizons` as [`Forecaster::forecast`] computes it, handed to
    /// `visit(j, c, samples, summary)` for each horizon `j` and column `c`: the column's
    /// predictive samples in model units, sorted, and `[mean, quantiles...]` in the user's
    /// units. (For scores that need the samples, as `fit_csv`'s CRPS.) `visit` may have
    /// been called for earlier horizons when an error is returned.
    pub fn forecast_with(
        &mut self,
        horizons: &[f64],
        mut visit: impl FnMut(usize, usize, &[f32], &[f64]),
    ) -> Result<(), Error> {
        if self.anchor.is_none() {
            return Err(ForecastError::NoState.into());
        }
        let pending = self.pending;
        let capacity = self.buffers.parts().times.len();
        let needed = pending.saturating_add(horizons.len());
        if needed > capacity {
            return Err(ForecastError::Capacity { capacity, needed }.into());
        }
        let lag = self.seasonal_lag();
        if lag > 0 && horizons.len() > lag {
            return Err(Error::OutOfRange {
                what: "forecast horizon: with a seasonal difference at most `lag` readings ahead",
            });
        }
        let (mut prev_t, mut prev_tau) =
            self.last.unwrap_or((f64::NEG_INFINITY, f32::NEG_INFINITY));
        for (j, &h) in horizons.iter().enumerate() {
            if !h.is_finite() {
                return Err(ForecastError::BadTime.into());
            }
            if h.partial_cmp(&prev_t) != Some(core::cmp::Ordering::Greater) {
                return Err(ForecastError::TimeOrder.into());
            }
            let tau = self.tau(h);
            if !(tau.is_finite() && tau > prev_tau) {
                return Err(ForecastError::BadTime.into());
            }
            let times = self.buffers.parts().times;
            if let Some(slot) = times.get_mut(pending + j) {
                *slot = tau;
            }
            (prev_t, prev_tau) = (h, tau);
        }
        let columns = self.columns;
        let defaults = self.defaults;
        let readings = self.readings;
        // With a seasonal difference: every horizon's lagged values must be known.
        if lag > 0 {
            for j in 0..horizons.len() {
                let known = self.lagged(j).unwrap_or([0.0; C]);
                if let Some(c) = known.iter().position(|l| !l.is_finite()) {
                    return Err(Error::NonFinite {
                        what: "forecast: the reading one seasonal lag before the horizon (missing)",
                        index: c,
                    });
                }
            }
        }
        let mut summary = [0.0f64; 1 + file::MAX_LEVELS];
        let v = 1 + defaults.levels().len();
        let slot = usize::from(self.slot);
        self.propagate(needed, &mut |i, tau, work, column, history| {
            let Some(j) = i.checked_sub(pending) else {
                return Ok(());
            };
            let stream = FORECAST_STREAM | (readings << 20) | j as u64;
            for (c, col) in columns.iter().enumerate() {
                let mean = col.trend.at(tau);
                column_samples(work, col, defaults.seed, stream, c, mean, column);
                // (`B::HISTORY`: a constant, so that without a history this is compiled away
                // in this `dyn` closure too.)
                if B::HISTORY > 0 && lag > 0 {
                    // Horizon j is reading `readings + j`; its lagged value is in the
                    // history's slot of that reading (checked above).
                    let s = lagged_slot(slot, j, lag);
                    if let Some(&l) = history.get(s * C + c) {
                        add_lagged(column, l);
                    }
                }
                let s = summary.get_mut(..v).ok_or(ForecastError::Output)?;
                summarize(col, defaults.levels(), column, s)?;
                visit(j, c, column, s);
            }
            Ok(())
        })
    }
}

/// The ensemble update of one column with model value `y` (see the module docs).
fn update_column<const D: usize>(
    work: &mut [[f32; D]],
    scratch: &mut [f32],
    col: &ColumnMap,
    y: f32,
    seed: u64,
    index: u64,
    c: usize,
) {
    let o = col.index;
    let n = work.len().max(1) as f32;
    // Predicted observations (with their noise) into `scratch`, and their innovations.
    column_samples(work, col, seed, index, c, 0.0, scratch);
    let mean_o = work
        .iter()
        .map(|u| u.get(o).copied().unwrap_or(0.0))
        .sum::<f32>()
        / n;
    let var_o = work
        .iter()
        .map(|u| {
            let d = u.get(o).copied().unwrap_or(0.0) - mean_o;
            d * d
        })
        .sum::<f32>()
        / n;
    let denom = var_o + col.noise * col.noise;
    // All gains first (from the prior ensemble), then the update.
    let mut gains = [0.0f32; D];
    for (j, gain) in gains.iter_mut().enumerate() {
        if (col.noise == 0.0 && j == o) || denom <= 0.0 {
            continue;
        }
        let coord = |u: &[f32; D]| u.get(j).copied().unwrap_or(0.0);
        let mean_j = work.iter().map(coord).sum::<f32>() / n;
        let cov = work
            .iter()
            .map(|u| (coord(u) - mean_j) * (u.get(o).copied().unwrap_or(0.0) - mean_o))
            .sum::<f32>()
            / n;
        *gain = cov / denom;
    }
    for (u, &pred) in work.iter_mut().zip(scratch.iter()) {
        for (x, &gain) in u.iter_mut().zip(&gains) {
            if gain != 0.0 {
                *x += gain * (y - pred);
            }
        }
    }
    if col.noise == 0.0 {
        for u in work.iter_mut() {
            if let Some(x) = u.get_mut(o) {
                *x = y;
            }
        }
    }
}
