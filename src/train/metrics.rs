//! Calibration metrics: does a forecast's spread match the data's scatter?
//!
//! - **Coverage** of a central band: the fraction of observations inside the band that
//!   should hold `level` of the probability (a calibrated 90 % band covers about 90 %).
//! - **CRPS**, the continuous ranked probability score `integral (F(x) - 1{x >= y})^2 dx`
//!   of a forecast distribution `F` against an observation `y` (Gneiting & Raftery, "Strictly
//!   proper scoring rules, prediction, and estimation", JASA 2007): in the data's units,
//!   lower is better, it rewards a sharp forecast only where it is also right, and for a
//!   point forecast it is the absolute error.
//!
//! Both for a Gaussian forecast (mean and variance, as an ensemble's statistics give) and for
//! an ensemble of samples (its empirical distribution). [`CalibrationScore`] accumulates
//! them over many observations without storing them. Nothing allocates; ensemble functions
//! sort the caller's sample buffer in place.

use crate::error::{check_finite_value, check_non_negative, Error};
use crate::math;

/// `1 / sqrt(pi)`.
const FRAC_1_SQRT_PI: f32 = 0.564_189_6;
/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// The standard normal CDF `Phi(z)`, to about `1e-7` absolute, from the complementary error
/// function of Abramowitz & Stegun 7.1.26 (only `exp` and basic operations: the same bits
/// on every target).
///
/// ```
/// use tinysde::train::normal_cdf;
/// assert_eq!(normal_cdf(0.0), 0.5);
/// assert!((normal_cdf(1.644_853_6) - 0.95).abs() < 1e-6);
/// ```
pub fn normal_cdf(z: f32) -> f32 {
    if z.is_nan() {
        return f32::NAN;
    }
    // erf(x) = 1 - (a1 t + a2 t^2 + ... + a5 t^5) exp(-x^2), t = 1 / (1 + p x), x >= 0.
    let x = z.abs() * core::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let half_erfc = 0.5 * poly * math::exp(-x * x);
    if z >= 0.0 {
        1.0 - half_erfc
    } else {
        half_erfc
    }
}

/// The standard normal quantile `z` with `Phi(z) = p`, for `p` in `(0, 1)`, by bisection of
/// [`normal_cdf`] (so the two agree to its accuracy).
///
/// ```
/// use tinysde::train::normal_quantile;
/// assert!((normal_quantile(0.95)? - 1.644_853_6).abs() < 1e-4);
/// assert!(normal_quantile(1.0).is_err());
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn normal_quantile(p: f32) -> Result<f32, Error> {
    if !(p > 0.0 && p < 1.0) {
        return Err(Error::OutOfRange {
            what: "probability must be strictly between 0 and 1",
        });
    }
    let (mut lo, mut hi) = (-9.0f32, 9.0f32);
    for _ in 0..48 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

fn check_level(level: f32) -> Result<(), Error> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            what: "band level must be strictly between 0 and 1",
        })
    }
}

fn check_gaussian(mean: f32, var: f32) -> Result<(), Error> {
    check_finite_value(mean, "forecast mean")?;
    check_non_negative(var, "forecast variance", "forecast variance must be >= 0")
}

/// The central band `(lower, upper)` holding probability `level` (in `(0, 1)`) of a normal
/// distribution with this mean and variance: `mean -+ z sqrt(var)`, `z = Phi^-1((1 + level) / 2)`.
///
/// ```
/// let (lo, hi) = tinysde::train::gaussian_band(1.0, 4.0, 0.9)?;
/// assert!((hi - 1.0 - 2.0 * 1.644_853_6).abs() < 1e-3 && (1.0 - lo - (hi - 1.0)).abs() < 1e-6);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn gaussian_band(mean: f32, var: f32, level: f32) -> Result<(f32, f32), Error> {
    check_level(level)?;
    check_gaussian(mean, var)?;
    let half = normal_quantile(0.5 + 0.5 * level)? * math::sqrt(var);
    Ok((mean - half, mean + half))
}

/// The CRPS of a normal forecast `N(mean, var)` against `y`, in closed form
/// (Gneiting & Raftery 2007): `sd (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`,
/// `z = (y - mean) / sd`; `|y - mean|` for `var = 0`.
///
/// ```
/// use tinysde::train::crps_gaussian;
/// // At the mean: sd (sqrt 2 - 1) / sqrt pi.
/// let c = crps_gaussian(0.0, 0.0, 4.0)?;
/// assert!((c - 2.0 * (2f32.sqrt() - 1.0) / core::f32::consts::PI.sqrt()).abs() < 1e-6);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn crps_gaussian(y: f32, mean: f32, var: f32) -> Result<f32, Error> {
    check_gaussian(mean, var)?;
    check_finite_value(y, "observation")?;
    if var == 0.0 {
        return Ok((y - mean).abs());
    }
    let sd = math::sqrt(var);
    let z = (y - mean) / sd;
    let pdf = FRAC_1_SQRT_2PI * math::exp(-0.5 * z * z);
    Ok(sd * (z * (2.0 * normal_cdf(z) - 1.0) + 2.0 * pdf - FRAC_1_SQRT_PI))
}

/// Sorts `samples` ascending in place after checking they are finite and non-empty.
fn sort_samples(samples: &mut [f32]) -> Result<(), Error> {
    if samples.is_empty() {
        return Err(Error::OutOfRange {
            what: "at least one ensemble sample is needed",
        });
    }
    if let Some(index) = samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: "ensemble sample",
            index,
        });
    }
    heap_sort(samples);
    Ok(())
}

/// Sorts ascending in place by heapsort: `O(m log m)`, no allocation, and (unlike the
/// standard library's sorts, which keep a panic for inconsistent orderings) no panic path
/// in the compiled code, which the firmware's no-panic proofs check.
fn heap_sort(v: &mut [f32]) {
    let n = v.len();
    let mut start = n / 2;
    while start > 0 {
        start -= 1;
        sift_down(v, start, n);
    }
    let mut end = n;
    while end > 1 {
        end -= 1;
        if end < v.len() {
            v.swap(0, end);
        }
        sift_down(v, 0, end);
    }
}

/// Restores the max-heap property below `root` within `v[..end]`.
fn sift_down(v: &mut [f32], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if let (Some(&left), Some(&right)) = (v.get(child), v.get(child + 1)) {
            if child + 1 < end && left < right {
                child += 1;
            }
        }
        match (v.get(root), v.get(child)) {
            (Some(&parent), Some(&larger)) if parent < larger => {
                v.swap(root, child);
                root = child;
            }
            _ => return,
        }
    }
}

/// The `p`-quantile (`p` in `[0, 1]`) of ascending `sorted` samples, interpolating linearly
/// between order statistics (the usual "type 7" definition: `p = 0` the minimum, `p = 1`
/// the maximum).
fn quantile_of_sorted(sorted: &[f32], p: f32) -> f32 {
    let last = sorted.len().saturating_sub(1);
    let pos = p * last as f32;
    let i = (pos as usize).min(last); // pos >= 0: the floor
    let frac = pos - i as f32;
    let a = sorted.get(i).copied().unwrap_or(f32::NAN);
    let b = sorted.get(i + 1).copied().unwrap_or(a);
    a + (b - a) * frac
}

/// The `p`-quantile (`p` in `[0, 1]`) of an ensemble's samples (linear interpolation between
/// order statistics). Sorts `samples` in place.
///
/// ```
/// let mut s = [3.0, 1.0, 2.0, 4.0];
/// assert_eq!(tinysde::train::ensemble_quantile(&mut s, 0.5)?, 2.5);
/// assert_eq!(s, [1.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn ensemble_quantile(samples: &mut [f32], p: f32) -> Result<f32, Error> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::OutOfRange {
            what: "quantile probability must be in [0, 1]",
        });
    }
    sort_samples(samples)?;
    Ok(quantile_of_sorted(samples, p))
}

/// The central band `(lower, upper)` holding `level` of an ensemble: its `(1 - level) / 2`
/// and `(1 + level) / 2` quantiles. Sorts `samples` in place.
pub fn ensemble_band(samples: &mut [f32], level: f32) -> Result<(f32, f32), Error> {
    check_level(level)?;
    sort_samples(samples)?;
    Ok((
        quantile_of_sorted(samples, 0.5 - 0.5 * level),
        quantile_of_sorted(samples, 0.5 + 0.5 * level),
    ))
}

/// The CRPS of an ensemble's empirical distribution against `y`:
/// `mean |X - y| - mean |X - X'| / 2` over the samples (computed in `O(m log m)` from the
/// sorted samples). Sorts `samples` in place.
///
/// ```
/// use tinysde::train::crps_ensemble;
/// assert_eq!(crps_ensemble(1.5, &mut [2.0])?, 0.5); // one sample: the absolute error
/// // {0, 1} against 0: (0 + 1) / 2 - (0 + 1 + 1 + 0) / 4 / 2 = 0.25
/// assert_eq!(crps_ensemble(0.0, &mut [1.0, 0.0])?, 0.25);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn crps_ensemble(y: f32, samples: &mut [f32]) -> Result<f32, Error> {
    check_finite_value(y, "observation")?;
    sort_samples(samples)?;
    let m = samples.len() as f64;
    let (mut abs_err, mut spread) = (0.0f64, 0.0f64);
    for (i, &x) in samples.iter().enumerate() {
        abs_err += (f64::from(x) - f64::from(y)).abs();
        // sum over pairs |x_i - x_j| = 2 sum_i (2 i - m + 1) x_(i) for sorted samples.
        spread += (2.0 * i as f64 - m + 1.0) * f64::from(x);
    }
    Ok((abs_err / m - spread / (m * m)) as f32)
}

/// Running coverage and mean CRPS over many observations.
///
/// ```
/// use tinysde::train::CalibrationScore;
/// let mut score = CalibrationScore::new(0.9)?;
/// score.add_gaussian(0.5, 0.0, 1.0)?; // inside the 90 % band
/// score.add_gaussian(3.0, 0.0, 1.0)?; // outside
/// assert_eq!((score.count(), score.inside()), (2, 1));
/// assert_eq!(score.coverage(), 0.5);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CalibrationScore {
    level: f32,
    count: usize,
    inside: usize,
    crps_sum: f64,
}

impl CalibrationScore {
    /// An empty score for central bands holding `level` (in `(0, 1)`, e.g. `0.9`).
    pub fn new(level: f32) -> Result<Self, Error> {
        check_level(level)?;
        Ok(Self {
            level,
            count: 0,
            inside: 0,
            crps_sum: 0.0,
        })
    }

    /// Adds observation `y` of a normal forecast `N(mean, var)`. Unchanged on error.
    pub fn add_gaussian(&mut self, y: f32, mean: f32, var: f32) -> Result<(), Error> {
        let crps = crps_gaussian(y, mean, var)?;
        let (lo, hi) = gaussian_band(mean, var, self.level)?;
        self.record(y, lo, hi, crps);
        Ok(())
    }

    /// Adds observation `y` of an ensemble forecast (sorts `samples` in place). Unchanged on
    /// error.
    pub fn add_ensemble(&mut self, y: f32, samples: &mut [f32]) -> Result<(), Error> {
        let crps = crps_ensemble(y, samples)?;
        let (lo, hi) = ensemble_band(samples, self.level)?;
        self.record(y, lo, hi, crps);
        Ok(())
    }

    fn record(&mut self, y: f32, lo: f32, hi: f32, crps: f32) {
        self.count += 1;
        if lo <= y && y <= hi {
            self.inside += 1;
        }
        self.crps_sum += f64::from(crps);
    }

    /// The band level.
    pub fn level(&self) -> f32 {
        self.level
    }
    /// Observations added.
    pub fn count(&self) -> usize {
        self.count
    }
    /// Observations inside their band.
    pub fn inside(&self) -> usize {
        self.inside
    }
    /// The fraction of observations inside their band (NaN if none).
    pub fn coverage(&self) -> f32 {
        if self.count == 0 {
            f32::NAN
        } else {
            self.inside as f32 / self.count as f32
        }
    }
    /// The mean CRPS (NaN if none).
    pub fn mean_crps(&self) -> f32 {
        if self.count == 0 {
            f32::NAN
        } else {
            (self.crps_sum / self.count as f64) as f32
        }
    }
}
