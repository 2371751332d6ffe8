//! The deployable model file: format version 2 of the weights file.
//!
//! One file carries everything a forecast needs: the model's description and parameters
//! (the `MODL` section, the same bytes as a version 1 body), the state and observation model
//! (`STAT`), each observed column's name and transform (`COLS`), the time axis (`TIME`), the
//! solver (`SOLV`) and the forecast defaults (`FCST`). Sections carry a tag and a length, so a
//! reader skips the optional sections it does not know; the whole file is CRC-32 checked.
//! The layout is documented byte by byte in `docs/weights-format.md`.
//!
//! [`ModelFile::parse`] reads version 1 and version 2 files without allocating and returns
//! a view borrowing the bytes (every section is validated once, so the accessors cannot
//! fail); [`write()`] writes a version 2 file into a caller's buffer.
//!
//! ```
//! use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile, SolverSpec,
//!     TimeAxis, TimeFormat, Transform};
//! use tinysde::nn::{Dense, Identity};
//!
//! let model = Dense::<1, 1, Identity>::new([[2.0]], [0.5]);
//! let columns = [Column { name: "flow", transform: Transform::Affine, mean: 919.35,
//!     std: 168.2, state_index: 0, noise: 0.0 }];
//! let deployment = Deployment {
//!     state_dim: 1,
//!     columns: &columns,
//!     time: TimeAxis { name: "year", format: TimeFormat::Number, t0: 1871.0, unit: 1.0 },
//!     solver: SolverSpec { method: "SOSRI", max_step: 0.5 },
//!     defaults: Defaults::new(32, 0xC5F, &[0.05, 0.5, 0.95])?,
//!     trends: &[], // no deterministic mean under the SDE
//!     seasonal_lag: 0, // no seasonal difference
//! };
//! let mut buf = [0u8; 256];
//! let n = file::write(&model, &deployment, &mut buf)?;
//! assert_eq!(n, file::encoded_len::<Dense<1, 1, Identity>>(&deployment));
//!
//! // Reading it back: a view over the bytes, no allocation.
//! let view = ModelFile::parse(&buf[..n])?;
//! assert_eq!(view.version(), 2);
//! assert_eq!(view.model().description_str(), Some("dense(1,1,identity)"));
//! assert_eq!(view.column(0), Some(columns[0]));
//! assert_eq!(view.time().map(|t| t.tau(1873.0)), Some(2.0));
//! assert_eq!(view.solver().map(|s| s.method), Some("SOSRI"));
//! assert_eq!(view.defaults().map(|d| d.paths), Some(32));
//! let mut loaded = Dense::<1, 1, Identity>::zeros();
//! view.load_into(&mut loaded)?;
//! assert_eq!(loaded, model);
//! # Ok::<(), tinysde::Error>(())
//! ```

use crate::error::{Error, WeightsError};
use crate::math;
use crate::weights::{self, Blob, Describe, MAGIC};

/// The format version of a deployable model file.
pub const VERSION: u16 = 2;

/// Bytes before the first section: magic (8), version (2), reserved flags (2), total
/// length (4).
pub const HEADER_LEN: usize = 16;

/// Bytes of a section's tag and length field.
pub const SECTION_HEADER_LEN: usize = 8;

/// The most observed columns a file may have.
pub const MAX_COLUMNS: usize = 16;

/// The most quantile levels in the forecast defaults.
pub const MAX_LEVELS: usize = 16;

/// Section tags. A tag whose first byte is an upper-case ASCII letter is *critical*: a
/// reader that does not know it refuses the file ([`WeightsError::UnknownSection`]); any
/// other tag is optional and skipped when unknown.
pub mod tag {
    /// The model: description and parameters (required).
    pub const MODEL: [u8; 4] = *b"MODL";
    /// The state dimension and the observation model.
    pub const STATE: [u8; 4] = *b"STAT";
    /// Per observed column: transform and name.
    pub const COLUMNS: [u8; 4] = *b"COLS";
    /// The time axis: origin, unit, format, name.
    pub const TIME: [u8; 4] = *b"TIME";
    /// The solver: method name and maximum step.
    pub const SOLVER: [u8; 4] = *b"SOLV";
    /// The forecast defaults: paths, noise seed, quantile levels.
    pub const FORECAST: [u8; 4] = *b"FCST";
    /// Per observed column: a deterministic mean (trend and season) under the SDE
    /// (optional, critical: a reader that does not know it refuses the file).
    pub const TREND: [u8; 4] = *b"TRND";
    /// A seasonal difference: the lag in readings (optional, critical).
    pub const DIFFERENCE: [u8; 4] = *b"SDIF";
}

/// How a column's values map to the model's state coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Transform {
    /// `z = (x - mean) / std` (byte `0`).
    Affine,
    /// `z = (ln x - mean) / std`, for positive data (byte `1`); `ln` in `f32`.
    Log,
}

/// One observed column: its name, its transform to the model's units and which state
/// coordinate it observes, with what observation noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column<'a> {
    /// The column's name (UTF-8, at most 65535 bytes).
    pub name: &'a str,
    /// The transform.
    pub transform: Transform,
    /// The affine map's offset (finite).
    pub mean: f64,
    /// The affine map's scale (finite, `> 0`).
    pub std: f64,
    /// The state coordinate this column observes (`< state_dim`, one column per coordinate).
    pub state_index: u16,
    /// The standard deviation of the observation noise in model units (finite, `>= 0`;
    /// `0`: the column observes its coordinate exactly).
    pub noise: f32,
}

impl Column<'_> {
    /// The model value of the reading `x` (`None` if `x` or the result is not finite, or
    /// `x <= 0` for [`Transform::Log`]). Computed as `((g(x) - mean) / std) as f32` in
    /// `f64`, `g` the identity or `ln` (in `f32`).
    ///
    /// ```
    /// use tinysde::forecast::file::{Column, Transform};
    /// let c = Column { name: "x", transform: Transform::Affine, mean: 10.0, std: 2.0,
    ///     state_index: 0, noise: 0.0 };
    /// assert_eq!(c.model_value(13.0), Some(1.5));
    /// assert_eq!(c.user_value(1.5), 13.0);
    /// assert_eq!(c.model_value(f64::NAN), None);
    /// ```
    pub fn model_value(&self, x: f64) -> Option<f32> {
        if !x.is_finite() {
            return None;
        }
        let g = match self.transform {
            Transform::Affine => x,
            Transform::Log => {
                if x <= 0.0 {
                    return None;
                }
                f64::from(math::ln(x as f32))
            }
        };
        let z = ((g - self.mean) / self.std) as f32;
        z.is_finite().then_some(z)
    }

    /// The reading of model value `z`: `mean + std * z` in `f64`, then `exp` (in `f32`)
    /// for [`Transform::Log`].
    ///
    /// ```
    /// use tinysde::forecast::file::{Column, Transform};
    /// // Log-scaled counts: model values map back to positive readings only.
    /// let c = Column { name: "n", transform: Transform::Log, mean: 2.0, std: 0.5,
    ///     state_index: 0, noise: 0.0 };
    /// assert!(c.user_value(-40.0) > 0.0);
    /// let z = c.model_value(20.0).unwrap();
    /// assert!((c.user_value(z) - 20.0).abs() < 1e-4);
    /// assert_eq!(c.model_value(0.0), None); // log of a non-positive reading
    /// ```
    pub fn user_value(&self, z: f32) -> f64 {
        let y = self.mean + self.std * f64::from(z);
        match self.transform {
            Transform::Affine => y,
            Transform::Log => f64::from(math::exp(y as f32)),
        }
    }
}

/// The most harmonics of a [`Trend`]'s season.
pub const MAX_HARMONICS: usize = 4;

/// A column's deterministic mean under the SDE, in model units: the model value of a
/// reading at model time `tau` is `m(tau) + u`, `u` the state coordinate the column
/// observes, with
///
/// `m(tau) = level + slope * tau + sum_k (s_k sin(2 pi k tau / period) + c_k cos(2 pi k tau / period))`
///
/// for `k = 1 ..= harmonics`, `[s_k, c_k] = coefficients[k - 1]`. [`Trend::at`] defines the
/// `f32` arithmetic (libm's `sinf`/`cosf`), so host and device compute the same bits.
/// [`Trend::NONE`] (all zero) is no mean: a file without the `TRND` section, and the
/// forecaster then computes exactly what it computed before the section existed.
///
/// ```
/// use tinysde::forecast::file::Trend;
/// // A line and one yearly harmonic on monthly data (period 12 model time units).
/// let mut t = Trend { level: 1.0, slope: 0.5, period: 12.0, harmonics: 1, ..Trend::NONE };
/// t.coefficients[0] = [2.0, 0.0];
/// assert!(t.check().is_ok());
/// assert_eq!(t.at(0.0), 1.0);
/// assert!((t.at(3.0) - (1.0 + 1.5 + 2.0)).abs() < 1e-6); // a quarter period: sin = 1
/// // A season needs a period.
/// assert!(Trend { period: 0.0, ..t }.check().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trend {
    /// The constant (finite).
    pub level: f32,
    /// The slope per model time unit (finite).
    pub slope: f32,
    /// The season's period in model time units (finite; `> 0` if `harmonics > 0`).
    pub period: f32,
    /// The harmonics used, `0 ..= MAX_HARMONICS`.
    pub harmonics: u8,
    /// `[sin, cos]` coefficients of harmonic `k + 1` (finite; zero past `harmonics`).
    pub coefficients: [[f32; 2]; MAX_HARMONICS],
}

impl Trend {
    /// No mean: every field zero.
    pub const NONE: Trend = Trend {
        level: 0.0,
        slope: 0.0,
        period: 0.0,
        harmonics: 0,
        coefficients: [[0.0; 2]; MAX_HARMONICS],
    };

    /// Whether this is [`Trend::NONE`] (every field zero, either sign).
    pub fn is_none(&self) -> bool {
        self.level == 0.0
            && self.slope == 0.0
            && self.period == 0.0
            && self.harmonics == 0
            && self.coefficients.iter().flatten().all(|&x| x == 0.0)
    }

    /// Checks the fields: every number finite, `harmonics <= MAX_HARMONICS`, a period
    /// `> 0` if there are harmonics (`>= 0` otherwise), the coefficients past `harmonics`
    /// zero. [`Error::OutOfRange`] otherwise.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |what| Err(Error::OutOfRange { what });
        let h = self.harmonics as usize;
        if h > MAX_HARMONICS {
            return bad("trend: at most 4 harmonics");
        }
        if !(self.level.is_finite()
            && self.slope.is_finite()
            && self.coefficients.iter().flatten().all(|x| x.is_finite()))
        {
            return bad("trend: level, slope and coefficients finite");
        }
        let period_ok = if h > 0 {
            self.period.is_finite() && self.period > 0.0
        } else {
            self.period.is_finite() && self.period >= 0.0
        };
        if !period_ok {
            return bad("trend: a season needs a finite period > 0 (0 or more without one)");
        }
        if self
            .coefficients
            .iter()
            .skip(h)
            .flatten()
            .any(|&x| x != 0.0)
        {
            return bad("trend: coefficients past the harmonics used must be zero");
        }
        Ok(())
    }

    /// `m(tau)` in `f32`: `level + slope * tau`, then for each harmonic `k` in order
    /// `+ s_k * sin(2 pi r_k)` and `+ c_k * cos(2 pi r_k)`, where `r_k = frac(k * q)`, `q =
    /// frac(tau / period)`, `frac(x) = x - trunc(x)` (as [`crate::sde::Seasonal`]'s phase;
    /// past `2^24` nothing is left to reduce). The sine and cosine of a fraction of a turn
    /// are computed with `+ - *` only (the quadrant, then Taylor polynomials of degree 7
    /// and 8 on at most an eighth of a turn, error below `4e-7`), not libm's `sinf`/`cosf`:
    /// the same bits on every target, and a firmware whose model has no mean still fits
    /// its flash budget (libm's argument reduction alone is 2.5 KB on a Cortex-M4F).
    #[inline(never)]
    pub fn at(&self, tau: f32) -> f32 {
        let mut m = self.level + self.slope * tau;
        let h = (self.harmonics as usize).min(MAX_HARMONICS);
        if h > 0 {
            let q = frac(tau / self.period);
            for (k, &[s, c]) in self.coefficients.iter().take(h).enumerate() {
                let (sin, cos) = sin_cos_turns(frac(q * (k + 1) as f32));
                m += s * sin;
                m += c * cos;
            }
        }
        m
    }
}

/// `(sin 2 pi q, cos 2 pi q)` for a fraction of a turn `q` (`|q| < 2^22`), with `+ - *`
/// only: `q = n / 4 + r`, `n` the nearest quarter, `|r| <= 1/8`; Taylor polynomials in
/// `x = 2 pi r` (`|x| <= pi / 4`), then the quadrant's rotation.
fn sin_cos_turns(q: f32) -> (f32, f32) {
    let k = q * 4.0;
    let n = (k + if k >= 0.0 { 0.5 } else { -0.5 }) as i32;
    let x = core::f32::consts::TAU * (q - n as f32 * 0.25);
    let x2 = x * x;
    let s = x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0)));
    let c = 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0)));
    match n & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// `x` minus its integer part (truncated toward zero; `x` itself past `2^24`).
fn frac(x: f32) -> f32 {
    let whole = if x.abs() < 16_777_216.0 {
        x as i32 as f32
    } else {
        x
    };
    x - whole
}

/// How the user's times are written (informational for the forecaster: times are numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TimeFormat {
    /// Plain numbers (byte `0`).
    Number,
    /// ISO-8601 dates; times are Unix seconds of midnight UTC (byte `1`).
    Date,
    /// ISO-8601 date-times; times are Unix seconds (byte `2`).
    DateTime,
}

/// The time axis: model time `tau = ((t - t0) / unit) as f32`, computed in `f64`.
///
/// ```
/// use tinysde::forecast::file::{TimeAxis, TimeFormat};
/// // Daily readings as Unix seconds, one model time unit per day from 2026-01-01.
/// let axis = TimeAxis { name: "date", format: TimeFormat::Date, t0: 1_767_225_600.0, unit: 86_400.0 };
/// assert_eq!(axis.tau(1_767_225_600.0 + 3.0 * 86_400.0), 3.0);
/// assert_eq!(axis.time(3.0), 1_767_225_600.0 + 3.0 * 86_400.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeAxis<'a> {
    /// The time column's name.
    pub name: &'a str,
    /// How the times are written.
    pub format: TimeFormat,
    /// The origin, in the user's time (finite).
    pub t0: f64,
    /// User time units per model time unit (finite, `> 0`).
    pub unit: f64,
}

impl TimeAxis<'_> {
    /// Model time of user time `t`.
    pub fn tau(&self, t: f64) -> f32 {
        ((t - self.t0) / self.unit) as f32
    }
    /// User time of model time `tau`.
    pub fn time(&self, tau: f32) -> f64 {
        self.t0 + f64::from(tau) * self.unit
    }
}

/// The solver: a fixed-step method by name, stepping through the reading and forecast
/// times with steps of at most `max_step` ([`crate::solve::TimeGrid::with_max_step`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolverSpec<'a> {
    /// The method's name, as its [`crate::solve::Method::NAME`] (e.g. `"SOSRI"`).
    pub method: &'a str,
    /// The largest step, in model time (finite, `> 0`).
    pub max_step: f32,
}

/// The forecast defaults: ensemble size, noise seed and quantile levels.
///
/// ```
/// use tinysde::forecast::file::Defaults;
/// let d = Defaults::new(32, 0xC5F, &[0.05, 0.5, 0.95])?;
/// assert_eq!((d.paths, d.levels()), (32, &[0.05, 0.5, 0.95][..]));
/// assert!(Defaults::new(32, 1, &[0.5, 0.5]).is_err()); // levels must increase strictly
/// assert!(Defaults::new(0, 1, &[0.5]).is_err()); // at least one path
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Defaults {
    /// Ensemble members (paths), `>= 1`.
    pub paths: u32,
    /// The noise seed.
    pub seed: u64,
    levels: [f32; MAX_LEVELS],
    count: u8,
}

impl Defaults {
    /// Defaults with quantile `levels` (1 to [`MAX_LEVELS`], strictly increasing, each in
    /// `(0, 1)`); the anomaly band of a reading runs from the first level to the last.
    /// Errors ([`Error::OutOfRange`]) otherwise, or for `paths == 0`.
    pub fn new(paths: u32, seed: u64, levels: &[f32]) -> Result<Self, Error> {
        let bad = |what| Err(Error::OutOfRange { what });
        if paths == 0 {
            return bad("forecast paths must be >= 1");
        }
        if levels.is_empty() || levels.len() > MAX_LEVELS {
            return bad("1 to 16 quantile levels");
        }
        let mut prev = 0.0f32;
        for &p in levels {
            if !(p > prev && p < 1.0) {
                return bad("quantile levels must increase strictly within (0, 1)");
            }
            prev = p;
        }
        let mut out = [0.0; MAX_LEVELS];
        for (o, &p) in out.iter_mut().zip(levels) {
            *o = p;
        }
        Ok(Self {
            paths,
            seed,
            levels: out,
            count: levels.len() as u8,
        })
    }

    /// The quantile levels, increasing.
    pub fn levels(&self) -> &[f32] {
        self.levels.get(..self.count as usize).unwrap_or(&[])
    }
}

/// Everything besides the model that a deployable file carries (for [`write()`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deployment<'a> {
    /// The state dimension `D` of the model (`>= columns.len()`; more is latent state).
    pub state_dim: u16,
    /// The observed columns, in the order readings list them.
    pub columns: &'a [Column<'a>],
    /// The time axis.
    pub time: TimeAxis<'a>,
    /// The solver.
    pub solver: SolverSpec<'a>,
    /// The forecast defaults.
    pub defaults: Defaults,
    /// Each column's deterministic mean ([`Trend`]), in the order of `columns`; empty for
    /// none (no `TRND` section: the file of a model without one is unchanged).
    pub trends: &'a [Trend],
    /// A seasonal difference of this many readings (`0`: none, and no `SDIF` section: the
    /// file of a model without one is unchanged): each column's model value is read as its
    /// value `seasonal_lag` readings back plus the column's mean plus the state (see
    /// [`Forecaster::with_seasonal_lag`](crate::forecast::Forecaster::with_seasonal_lag)).
    pub seasonal_lag: u16,
}

/// The payload length of the `SDIF` section: the lag (`u16`) and two reserved zero bytes.
const DIFFERENCE_LEN: usize = 4;

fn state_len(columns: usize) -> usize {
    4 + 8 * columns
}

fn columns_len(columns: &[Column<'_>]) -> usize {
    columns
        .iter()
        .fold(2usize, |n, c| n.saturating_add(20 + c.name.len()))
}

fn time_len(time: &TimeAxis<'_>) -> usize {
    20 + time.name.len()
}

fn solver_len(solver: &SolverSpec<'_>) -> usize {
    8 + solver.method.len()
}

fn forecast_len(levels: usize) -> usize {
    13 + 4 * levels
}

fn trends_len(trends: &[Trend]) -> usize {
    trends.iter().fold(2usize, |n, t| {
        n.saturating_add(14 + 8 * t.harmonics as usize)
    })
}

/// The size in bytes of the model file of `M` with `deployment` (what [`write()`] writes).
pub fn encoded_len<M: Describe + ?Sized>(deployment: &Deployment<'_>) -> usize {
    let d = deployment;
    let model = 8 + weights::description_len::<M>() + 4 * M::PARAMS;
    [
        model,
        state_len(d.columns.len()),
        columns_len(d.columns),
        time_len(&d.time),
        solver_len(&d.solver),
        forecast_len(d.defaults.levels().len()),
    ]
    .iter()
    .chain((!d.trends.is_empty()).then(|| trends_len(d.trends)).iter())
    .chain((d.seasonal_lag > 0).then_some(DIFFERENCE_LEN).iter())
    .fold(HEADER_LEN + 4, |n, &s| {
        n.saturating_add(SECTION_HEADER_LEN).saturating_add(s)
    })
}

/// Checks a deployment as [`write()`] does; `history`: whether the forecaster's buffers
/// keep a history (a seasonal difference needs one).
pub(crate) fn check_deployment(d: &Deployment<'_>, history: bool) -> Result<(), Error> {
    let bad = |what| Err(Error::OutOfRange { what });
    if d.seasonal_lag > 0 && !history {
        return bad("seasonal lag: no history buffer");
    }
    let cols = d.columns.len();
    if cols == 0 || cols > MAX_COLUMNS || cols > d.state_dim as usize {
        return bad("1 to 16 observed columns, at most the state dimension");
    }
    for (i, c) in d.columns.iter().enumerate() {
        if c.state_index >= d.state_dim
            || d.columns
                .iter()
                .take(i)
                .any(|o| o.state_index == c.state_index)
        {
            return bad("each column observes its own state coordinate below the state dimension");
        }
        if !(c.mean.is_finite() && c.std.is_finite() && c.std > 0.0) {
            return bad("column mean finite and std finite and > 0");
        }
        if !(c.noise.is_finite() && c.noise >= 0.0) {
            return bad("observation noise finite and >= 0");
        }
        if c.name.len() > u16::MAX as usize {
            return bad("column name longer than 65535 bytes");
        }
    }
    let t = &d.time;
    if !(t.t0.is_finite() && t.unit.is_finite() && t.unit > 0.0) || t.name.len() > u16::MAX as usize
    {
        return bad("time origin finite, unit finite and > 0, name at most 65535 bytes");
    }
    let s = &d.solver;
    if !(s.max_step.is_finite() && s.max_step > 0.0) || s.method.len() > u16::MAX as usize {
        return bad("solver step finite and > 0, name at most 65535 bytes");
    }
    if !(d.trends.is_empty() || d.trends.len() == cols) {
        return bad("trends: none, or one per observed column");
    }
    for t in d.trends {
        t.check()?;
    }
    // Revalidates the levels (a `Defaults` is only made by `new`, but cheaply so).
    Defaults::new(d.defaults.paths, d.defaults.seed, d.defaults.levels())?;
    Ok(())
}

/// A writer of bytes into a buffer, keeping the CRC; never panics (writes past the end
/// are dropped and noticed by the caller through `pos`).
struct Cursor<'o> {
    out: &'o mut [u8],
    pos: usize,
    crc: u32,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos.checked_add(bytes.len());
        if let Some(dst) = end.and_then(|end| self.out.get_mut(self.pos..end)) {
            dst.copy_from_slice(bytes);
            self.crc = weights::crc32_update(self.crc, bytes);
        }
        self.pos = end.unwrap_or(usize::MAX);
    }
    fn section(&mut self, tag: [u8; 4], len: usize) {
        self.put(&tag);
        self.put(&(len as u32).to_le_bytes());
    }
    fn name(&mut self, s: &str) {
        self.put(&(s.len() as u16).to_le_bytes());
        self.put(s.as_bytes());
    }
}

/// Writes `model` with `deployment` as a version 2 model file at the start of `out` and
/// returns its length ([`encoded_len`]); the rest of `out` is left as it was.
///
/// Errors, with `out` untouched: [`Error::Length`] if `out` is too short,
/// [`Error::OutOfRange`] for an invalid deployment (see the fields of [`Deployment`] and
/// [`Column`]) or sizes beyond `u32`, [`Error::NonFinite`] for a non-finite parameter.
pub fn write<M: Describe + ?Sized>(
    model: &M,
    deployment: &Deployment<'_>,
    out: &mut [u8],
) -> Result<usize, Error> {
    check_deployment(deployment, true)?;
    let total = encoded_len::<M>(deployment);
    if u32::try_from(total).is_err() {
        return Err(Error::OutOfRange {
            what: "model file larger than u32",
        });
    }
    if out.len() < total {
        return Err(Error::Length {
            what: "model file buffer",
            expected: total,
            found: out.len(),
        });
    }
    // The model part: a version 1 blob's body, written by the v1 writer into the tail of
    // `out` first would disturb it on error; write the v1 blob to check the parameters,
    // then copy its body. Parameters are checked by visiting them.
    weights::check_params(model)?;
    let d = deployment;
    let desc_len = weights::description_len::<M>();
    let mut w = Cursor {
        out,
        pos: 0,
        crc: weights::CRC_INIT,
    };
    w.put(&MAGIC);
    w.put(&VERSION.to_le_bytes());
    w.put(&0u16.to_le_bytes());
    w.put(&(total as u32).to_le_bytes());

    w.section(tag::MODEL, 8 + desc_len + 4 * M::PARAMS);
    w.put(&(desc_len as u32).to_le_bytes());
    M::describe(&mut |b| w.put(b));
    w.put(&(M::PARAMS as u32).to_le_bytes());
    model.visit_params(&mut |x| w.put(&x.to_bits().to_le_bytes()));

    w.section(tag::STATE, state_len(d.columns.len()));
    w.put(&d.state_dim.to_le_bytes());
    w.put(&(d.columns.len() as u16).to_le_bytes());
    for c in d.columns {
        w.put(&c.state_index.to_le_bytes());
        w.put(&0u16.to_le_bytes());
        w.put(&c.noise.to_bits().to_le_bytes());
    }

    w.section(tag::COLUMNS, columns_len(d.columns));
    w.put(&(d.columns.len() as u16).to_le_bytes());
    for c in d.columns {
        w.put(&[transform_byte(c.transform), 0]);
        w.put(&c.mean.to_bits().to_le_bytes());
        w.put(&c.std.to_bits().to_le_bytes());
        w.name(c.name);
    }

    let t = &d.time;
    w.section(tag::TIME, time_len(t));
    w.put(&[time_format_byte(t.format), 0]);
    w.put(&t.t0.to_bits().to_le_bytes());
    w.put(&t.unit.to_bits().to_le_bytes());
    w.name(t.name);

    let s = &d.solver;
    w.section(tag::SOLVER, solver_len(s));
    w.put(&[0, 0]);
    w.put(&s.max_step.to_bits().to_le_bytes());
    w.name(s.method);

    let f = &d.defaults;
    w.section(tag::FORECAST, forecast_len(f.levels().len()));
    w.put(&f.paths.to_le_bytes());
    w.put(&f.seed.to_le_bytes());
    w.put(&[f.count]);
    for &p in f.levels() {
        w.put(&p.to_bits().to_le_bytes());
    }

    if !d.trends.is_empty() {
        w.section(tag::TREND, trends_len(d.trends));
        w.put(&(d.trends.len() as u16).to_le_bytes());
        for t in d.trends {
            w.put(&[t.harmonics, 0]);
            for x in [t.period, t.level, t.slope] {
                w.put(&x.to_bits().to_le_bytes());
            }
            for x in t.coefficients.iter().take(t.harmonics as usize).flatten() {
                w.put(&x.to_bits().to_le_bytes());
            }
        }
    }

    if d.seasonal_lag > 0 {
        w.section(tag::DIFFERENCE, DIFFERENCE_LEN);
        w.put(&d.seasonal_lag.to_le_bytes());
        w.put(&[0, 0]);
    }

    let (end, crc) = (w.pos, weights::crc32_finish(w.crc));
    let out = w.out;
    match (end == total - 4, out.get_mut(total - 4..total)) {
        (true, Some(dst)) => {
            dst.copy_from_slice(&crc.to_le_bytes());
            Ok(total)
        }
        // Only a `Describe` whose description changes between calls gets here.
        _ => Err(Error::Length {
            what: "model file",
            expected: total - 4,
            found: end,
        }),
    }
}

/// The model file of `model` and `deployment` in a new vector (feature `std`).
#[cfg(feature = "std")]
pub fn to_vec<M: Describe + ?Sized>(
    model: &M,
    deployment: &Deployment<'_>,
) -> Result<std::vec::Vec<u8>, Error> {
    let mut out = std::vec![0u8; encoded_len::<M>(deployment)];
    let n = write(model, deployment, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn transform_byte(t: Transform) -> u8 {
    match t {
        Transform::Affine => 0,
        Transform::Log => 1,
    }
}

fn time_format_byte(f: TimeFormat) -> u8 {
    match f {
        TimeFormat::Number => 0,
        TimeFormat::Date => 1,
        TimeFormat::DateTime => 2,
    }
}

/// A little-endian reader over a section's payload; every read is bounds-checked.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.bytes.get(..n)?, self.bytes.get(n..)?);
        self.bytes = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
    fn f32(&mut self) -> Option<f32> {
        self.u32().map(f32::from_bits)
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
    fn name(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        core::str::from_utf8(self.take(n)?).ok()
    }
}

/// A parsed model file (version 1 or 2): a view borrowing the file's bytes, every section
/// validated (so the accessors cannot fail). Made by [`ModelFile::parse`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelFile<'a> {
    version: u16,
    model: Blob<'a>,
    state: Option<&'a [u8]>,
    columns: Option<&'a [u8]>,
    time: Option<&'a [u8]>,
    solver: Option<&'a [u8]>,
    forecast: Option<&'a [u8]>,
    trend: Option<&'a [u8]>,
    difference: Option<&'a [u8]>,
    /// The sections (version 2), for [`ModelFile::sections`].
    body: &'a [u8],
}

impl<'a> ModelFile<'a> {
    /// Parses and checks a version 1 or version 2 file, without allocating.
    ///
    /// Checks, in order: the magic ([`WeightsError::BadMagic`]), the version
    /// ([`WeightsError::UnsupportedVersion`]), the declared length
    /// ([`WeightsError::Truncated`]), the checksum ([`WeightsError::Checksum`]), no bytes
    /// after the checksum ([`Error::Length`]); then (version 2) the sections: well formed
    /// and each known one valid ([`WeightsError::BadSection`]), no unknown critical one
    /// ([`WeightsError::UnknownSection`]), the model present
    /// ([`WeightsError::MissingSection`]), and `COLS` only with `STAT` and with as many
    /// columns. Any byte flipped or any truncation gives an error, never a panic.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let head = bytes.len().min(MAGIC.len());
        if bytes.get(..head) != MAGIC.get(..head) {
            return Err(WeightsError::BadMagic.into());
        }
        let version = match bytes.get(8..10) {
            Some(&[a, b]) => u16::from_le_bytes([a, b]),
            _ => return Err(WeightsError::Truncated.into()),
        };
        if version == weights::VERSION {
            let model = weights::inspect(bytes)?;
            return Ok(Self {
                version,
                model,
                state: None,
                columns: None,
                time: None,
                solver: None,
                forecast: None,
                trend: None,
                difference: None,
                body: &[],
            });
        }
        if version != VERSION {
            return Err(WeightsError::UnsupportedVersion(version).into());
        }
        let total = match bytes.get(12..16) {
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
            _ => return Err(WeightsError::Truncated.into()),
        };
        if total < HEADER_LEN + 4 {
            return Err(WeightsError::BadSection(*b"\0\0\0\0").into());
        }
        if bytes.len() < total {
            return Err(WeightsError::Truncated.into());
        }
        let body_end = total - 4;
        let (Some(content), Some(stored)) = (bytes.get(..body_end), bytes.get(body_end..total))
        else {
            return Err(WeightsError::Truncated.into());
        };
        let stored = Reader { bytes: stored }.u32().unwrap_or(0);
        if weights::crc32(content) != stored {
            return Err(WeightsError::Checksum.into());
        }
        if bytes.len() > total {
            return Err(Error::Length {
                what: "model file",
                expected: total,
                found: bytes.len(),
            });
        }
        let body = content.get(HEADER_LEN..).unwrap_or(&[]);
        let mut file = Self {
            version,
            model: Blob::from_parts(&[], &[]),
            state: None,
            columns: None,
            time: None,
            solver: None,
            forecast: None,
            trend: None,
            difference: None,
            body,
        };
        let mut model = None;
        for item in (Sections { rest: body }) {
            let (tag, payload) = item?;
            let slot = match tag {
                tag::MODEL => &mut model,
                tag::STATE => &mut file.state,
                tag::COLUMNS => &mut file.columns,
                tag::TIME => &mut file.time,
                tag::SOLVER => &mut file.solver,
                tag::FORECAST => &mut file.forecast,
                tag::TREND => &mut file.trend,
                tag::DIFFERENCE => &mut file.difference,
                t if t[0].is_ascii_uppercase() => {
                    return Err(WeightsError::UnknownSection(t).into())
                }
                _ => continue,
            };
            if slot.is_some() {
                return Err(WeightsError::BadSection(tag).into());
            }
            *slot = Some(payload);
        }
        let model = model.ok_or(WeightsError::MissingSection(tag::MODEL))?;
        file.model = parse_model(model).ok_or(WeightsError::BadSection(tag::MODEL))?;
        let observed = match file.state {
            Some(s) => Some(check_state(s).ok_or(WeightsError::BadSection(tag::STATE))?),
            None => None,
        };
        if let Some(c) = file.columns {
            let Some((_, count)) = observed else {
                return Err(WeightsError::MissingSection(tag::STATE).into());
            };
            if !check_columns(c, count) {
                return Err(WeightsError::BadSection(tag::COLUMNS).into());
            }
        }
        if let Some(t) = file.time {
            parse_time(t).ok_or(WeightsError::BadSection(tag::TIME))?;
        }
        if let Some(s) = file.solver {
            parse_solver(s).ok_or(WeightsError::BadSection(tag::SOLVER))?;
        }
        if let Some(f) = file.forecast {
            parse_defaults(f).ok_or(WeightsError::BadSection(tag::FORECAST))?;
        }
        if let Some(t) = file.trend {
            let Some((_, count)) = observed else {
                return Err(WeightsError::MissingSection(tag::STATE).into());
            };
            if !check_trends(t, count) {
                return Err(WeightsError::BadSection(tag::TREND).into());
            }
        }
        if let Some(d) = file.difference {
            if observed.is_none() {
                return Err(WeightsError::MissingSection(tag::STATE).into());
            }
            if !matches!(d, [a, b, 0, 0] if u16::from_le_bytes([*a, *b]) > 0) {
                return Err(WeightsError::BadSection(tag::DIFFERENCE).into());
            }
        }
        Ok(file)
    }

    /// The format version (1 or 2).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The model's description and parameters.
    pub fn model(&self) -> Blob<'a> {
        self.model
    }

    /// Loads the parameters into `model`, with the checks of [`weights::read_into`]
    /// (description, count, finiteness); on error `model` is untouched.
    pub fn load_into<M: Describe + ?Sized>(&self, model: &mut M) -> Result<(), Error> {
        weights::load_blob(model, &self.model)
    }

    /// The state dimension `D` (from `STAT`).
    pub fn state_dim(&self) -> Option<u16> {
        Reader { bytes: self.state? }.u16()
    }

    /// The number of observed columns (from `STAT`).
    pub fn column_count(&self) -> Option<usize> {
        let mut r = Reader { bytes: self.state? };
        r.u16()?;
        r.u16().map(usize::from)
    }

    /// Observed column `i`: `STAT`'s observation entry with `COLS`' transform and name
    /// (`None` without both sections or past the last column).
    pub fn column(&self, i: usize) -> Option<Column<'a>> {
        let mut s = Reader { bytes: self.state? };
        s.take(4 + 8 * i)?;
        let state_index = s.u16()?;
        s.u16()?;
        let noise = s.f32()?;
        let mut c = Reader {
            bytes: self.columns?,
        };
        let count = c.u16()? as usize;
        if i >= count {
            return None;
        }
        for _ in 0..i {
            c.take(18)?;
            c.name()?;
        }
        let transform = match c.u8()? {
            0 => Transform::Affine,
            1 => Transform::Log,
            _ => return None,
        };
        c.u8()?;
        let (mean, std) = (c.f64()?, c.f64()?);
        Some(Column {
            name: c.name()?,
            transform,
            mean,
            std,
            state_index,
            noise,
        })
    }

    /// The time axis (from `TIME`).
    pub fn time(&self) -> Option<TimeAxis<'a>> {
        parse_time(self.time?)
    }

    /// The solver (from `SOLV`).
    pub fn solver(&self) -> Option<SolverSpec<'a>> {
        parse_solver(self.solver?)
    }

    /// The forecast defaults (from `FCST`).
    pub fn defaults(&self) -> Option<Defaults> {
        parse_defaults(self.forecast?)
    }

    /// Observed column `i`'s deterministic mean (from `TRND`): [`Trend::NONE`] for a file
    /// without the section (a model without one), `None` past the last column or without
    /// `STAT`.
    pub fn trend(&self, i: usize) -> Option<Trend> {
        if i >= self.column_count()? {
            return None;
        }
        let Some(bytes) = self.trend else {
            return Some(Trend::NONE);
        };
        let mut r = Reader { bytes };
        r.u16()?;
        for _ in 0..i {
            let h = r.u8()? as usize;
            r.take(13 + 8 * h)?;
        }
        read_trend(&mut r)
    }

    /// Whether the file has a `TRND` section (a deterministic mean under the SDE).
    pub fn has_trend(&self) -> bool {
        self.trend.is_some()
    }

    /// The seasonal difference's lag in readings (from `SDIF`; `0` without the section,
    /// as [`Deployment::seasonal_lag`]).
    pub fn seasonal_lag(&self) -> u16 {
        match self.difference {
            Some(&[a, b, ..]) => u16::from_le_bytes([a, b]),
            _ => 0,
        }
    }

    /// Every section of a version 2 file in order, as `(tag, payload)`, unknown optional
    /// ones included (none for version 1).
    pub fn sections(&self) -> impl Iterator<Item = ([u8; 4], &'a [u8])> + 'a {
        Sections { rest: self.body }.map_while(Result::ok)
    }

    /// The payload of the first section tagged `tag`, if any.
    pub fn section(&self, tag: [u8; 4]) -> Option<&'a [u8]> {
        self.sections().find(|(t, _)| *t == tag).map(|(_, p)| p)
    }
}

/// The sections of a body, in order; an error for one that overruns the body.
struct Sections<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Sections<'a> {
    type Item = Result<([u8; 4], &'a [u8]), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let mut r = Reader { bytes: self.rest };
        let tag = r.array::<4>().unwrap_or(*b"\0\0\0\0");
        let payload = r.u32().and_then(|n| r.take(n as usize));
        match payload {
            Some(p) => {
                self.rest = r.bytes;
                Some(Ok((tag, p)))
            }
            None => {
                self.rest = &[];
                Some(Err(WeightsError::BadSection(tag).into()))
            }
        }
    }
}

fn parse_model(p: &[u8]) -> Option<Blob<'_>> {
    let mut r = Reader { bytes: p };
    let l = r.u32()? as usize;
    let description = r.take(l)?;
    let n = r.u32()? as usize;
    let params = r.take(n.checked_mul(4)?)?;
    r.bytes
        .is_empty()
        .then(|| Blob::from_parts(description, params))
}

/// Checks `STAT`; returns (state dimension, observed columns).
fn check_state(p: &[u8]) -> Option<(usize, usize)> {
    let mut r = Reader { bytes: p };
    let d = r.u16()? as usize;
    let c = r.u16()? as usize;
    if d == 0 || c == 0 || c > d || c > MAX_COLUMNS || p.len() != state_len(c) {
        return None;
    }
    let mut indices = [u16::MAX; MAX_COLUMNS];
    for slot in indices.iter_mut().take(c) {
        let i = r.u16()?;
        let reserved = r.u16()?;
        let noise = r.f32()?;
        if i as usize >= d || reserved != 0 || !(noise.is_finite() && noise >= 0.0) {
            return None;
        }
        *slot = i;
    }
    for (k, &i) in indices.iter().enumerate().take(c) {
        if indices.iter().take(k).any(|&j| j == i) {
            return None;
        }
    }
    Some((d, c))
}

fn check_columns(p: &[u8], count: usize) -> bool {
    let mut r = Reader { bytes: p };
    let ok = (|| {
        if r.u16()? as usize != count {
            return None;
        }
        for _ in 0..count {
            let transform = r.u8()?;
            let reserved = r.u8()?;
            let mean = r.f64()?;
            let std = r.f64()?;
            r.name()?;
            if transform > 1
                || reserved != 0
                || !mean.is_finite()
                || !(std.is_finite() && std > 0.0)
            {
                return None;
            }
        }
        Some(())
    })();
    ok.is_some() && r.bytes.is_empty()
}

/// One column's entry of `TRND` (not checked).
fn read_trend(r: &mut Reader<'_>) -> Option<Trend> {
    let harmonics = r.u8()?;
    let reserved = r.u8()?;
    if reserved != 0 || harmonics as usize > MAX_HARMONICS {
        return None;
    }
    let period = r.f32()?;
    let level = r.f32()?;
    let slope = r.f32()?;
    let mut coefficients = [[0.0f32; 2]; MAX_HARMONICS];
    for pair in coefficients.iter_mut().take(harmonics as usize) {
        *pair = [r.f32()?, r.f32()?];
    }
    Some(Trend {
        level,
        slope,
        period,
        harmonics,
        coefficients,
    })
}

fn check_trends(p: &[u8], count: usize) -> bool {
    let mut r = Reader { bytes: p };
    let ok = (|| {
        if r.u16()? as usize != count {
            return None;
        }
        for _ in 0..count {
            read_trend(&mut r)?.check().ok()?;
        }
        Some(())
    })();
    ok.is_some() && r.bytes.is_empty()
}

fn parse_time(p: &[u8]) -> Option<TimeAxis<'_>> {
    let mut r = Reader { bytes: p };
    let format = match r.u8()? {
        0 => TimeFormat::Number,
        1 => TimeFormat::Date,
        2 => TimeFormat::DateTime,
        _ => return None,
    };
    let reserved = r.u8()?;
    let t0 = r.f64()?;
    let unit = r.f64()?;
    let name = r.name()?;
    let ok =
        reserved == 0 && t0.is_finite() && unit.is_finite() && unit > 0.0 && r.bytes.is_empty();
    ok.then_some(TimeAxis {
        name,
        format,
        t0,
        unit,
    })
}

fn parse_solver(p: &[u8]) -> Option<SolverSpec<'_>> {
    let mut r = Reader { bytes: p };
    let kind = r.u8()?;
    let reserved = r.u8()?;
    let max_step = r.f32()?;
    let method = r.name()?;
    let ok =
        kind == 0 && reserved == 0 && max_step.is_finite() && max_step > 0.0 && r.bytes.is_empty();
    ok.then_some(SolverSpec { method, max_step })
}

fn parse_defaults(p: &[u8]) -> Option<Defaults> {
    let mut r = Reader { bytes: p };
    let paths = r.u32()?;
    let seed = r.u64()?;
    let q = r.u8()? as usize;
    if q > MAX_LEVELS {
        return None;
    }
    let mut levels = [0.0f32; MAX_LEVELS];
    for l in levels.iter_mut().take(q) {
        *l = r.f32()?;
    }
    if !r.bytes.is_empty() {
        return None;
    }
    Defaults::new(paths, seed, levels.get(..q)?).ok()
}
