//! The forecasts to beat: persistence and AR(1), one step ahead, as Gaussian predictive
//! distributions; their CRPS and 5-95 % band coverage.
//!
//! A model is worth deploying only if its forecasts beat what a forecaster tries first.
//! This module fits the two obvious baselines to the training part of a series and scores
//! them one step ahead with the same scores `fit_csv` reports for its model (the CRPS and
//! the coverage of the 5-95 % band), so the numbers can stand side by side.
//!
//! # Definitions
//!
//! A series is `times` (finite, strictly increasing) with `values` (`None`: missing) and a
//! time `unit`, the typical interval (`fit_csv` uses the median interval). An *observed pair*
//! is two consecutive observed values `y_j`, `y_i` (`j < i`, every row between them
//! missing), `k = (t_i - t_j) / unit` intervals apart: a missing value or a longer interval
//! is a gap of `k > 1` intervals.
//!
//! - **Persistence** ([`Persistence`]): the next value is the last one plus noise whose
//!   variance grows with the gap, `N(y, k s_d^2)` (a random walk); `s_d^2` is the mean over
//!   the training pairs of `(y_i - y_j)^2 / k` (its maximum-likelihood estimate).
//! - **AR(1)** ([`Ar1`]): `y_{n+1} = c + phi y_n + e`, `e ~ N(0, s^2)`, fitted by least
//!   squares on the training pairs one interval apart (`0.5 <= k <= 1.5`; their gap is
//!   counted as one interval); `s^2` is the mean squared residual. Over a gap of `k`
//!   intervals the predictive is the `k`-step one: mean `mu + phi^k (y - mu)` and variance
//!   `s^2 (1 - phi^(2k)) / (1 - phi^2)`, `mu = c / (1 - phi)`, computed as
//!   `phi^k y + c (1 - phi^k) / (1 - phi)` so that `phi = 1` (a random walk with drift,
//!   where the sums become `k`) and `|phi| > 1` need no special case. For `phi > 0` a
//!   fractional `k` is used as is (the AR(1) seen as a sampled Ornstein-Uhlenbeck process);
//!   for `phi <= 0` `k` is rounded to the nearest whole number of intervals, at least 1.
//! - **Scores** ([`Gaussian::crps`], [`Gaussian::covers`]): the closed-form CRPS of a
//!   Gaussian (Gneiting and Raftery, 2007) `sd (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))`,
//!   `z = (y - mean) / sd` (the absolute error for `sd = 0`), and whether `y` lies in the
//!   central 90 % interval `mean -+ 1.6449 sd` (bounds included).
//!   [`OneStepScore`] accumulates them; [`score_one_step`] scores every observed row of a
//!   range from the last observed row before it.
//!
//! Everything is `f64`, allocation-free and needs the math backend of feature `libm` (the
//! default). Bad input gives a typed [`Error`]: mismatched lengths, non-finite times or
//! values, times that do not increase, a unit that is not positive, too few training pairs,
//! a training series that does not vary (AR(1)).
//!
//! ```
//! use tinysde::forecast::baseline::{score_one_step, Ar1, OneStep, Persistence};
//!
//! // A yearly series with one missing year.
//! let times = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
//! let values = [Some(1.0), Some(3.0), Some(2.0), None, Some(4.0), Some(3.0), Some(5.0),
//!               Some(4.0), Some(6.0), Some(5.0)];
//! // Fit on the first 7 rows, score the last 3 (each from the row before it).
//! let walk = Persistence::fit(&times[..7], &values[..7], 1.0)?;
//! let ar1 = Ar1::fit(&times[..7], &values[..7], 1.0)?;
//! let p = score_one_step(&walk, &times, &values, 1.0, 7..10)?;
//! let a = score_one_step(&ar1, &times, &values, 1.0, 7..10)?;
//! assert_eq!(p.count(), 3);
//! assert!(p.mean_crps() > 0.0 && a.mean_crps() > 0.0);
//! // The gap: row 4 (index 4) is two years after row 2, so persistence's variance doubles.
//! let one = walk.predict(2.0, 1.0)?;
//! let two = walk.predict(2.0, 2.0)?;
//! assert!((two.sd * two.sd - 2.0 * one.sd * one.sd).abs() < 1e-12);
//! # Ok::<(), tinysde::Error>(())
//! ```

use core::ops::Range;

use crate::error::Error;

/// The 95 % quantile of the standard normal: the 5-95 % band is `mean -+ Z95 sd`.
pub const Z95: f64 = 1.644_853_626_951_472_2;

/// The fewest observed training pairs [`Persistence::fit`] accepts.
pub const MIN_PERSISTENCE_PAIRS: usize = 2;
/// The fewest one-interval training pairs [`Ar1::fit`] accepts (two coefficients and a
/// variance).
pub const MIN_AR1_PAIRS: usize = 3;

/// A Gaussian predictive distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gaussian {
    /// The mean.
    pub mean: f64,
    /// The standard deviation (`>= 0`).
    pub sd: f64,
}

impl Gaussian {
    /// A Gaussian; an error unless `mean` is finite and `sd` finite and `>= 0`.
    ///
    /// ```
    /// use tinysde::forecast::baseline::Gaussian;
    /// let g = Gaussian::new(1.0, 2.0)?;
    /// assert!(g.covers(4.0) && !g.covers(4.5));
    /// assert!(Gaussian::new(1.0, -1.0).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(mean: f64, sd: f64) -> Result<Self, Error> {
        if !mean.is_finite() {
            return Err(Error::NonFinite {
                what: "predictive mean",
                index: 0,
            });
        }
        if !sd.is_finite() {
            return Err(Error::NonFinite {
                what: "predictive standard deviation",
                index: 0,
            });
        }
        if sd < 0.0 {
            return Err(Error::OutOfRange {
                what: "predictive standard deviation must be >= 0",
            });
        }
        Ok(Self { mean, sd })
    }

    /// The CRPS of this distribution at observation `y` (closed form; the absolute error
    /// when `sd = 0`). Lower is better; in the units of `y`. NaN if `y` is NaN.
    ///
    /// ```
    /// use tinysde::forecast::baseline::Gaussian;
    /// // At the mean of a standard normal: 2 phi(0) - 1/sqrt(pi) = (sqrt(2) - 1) / sqrt(pi).
    /// let c = Gaussian::new(0.0, 1.0)?.crps(0.0);
    /// assert!((c - 0.233_694_977).abs() < 1e-9);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn crps(&self, y: f64) -> f64 {
        if self.sd == 0.0 {
            return (y - self.mean).abs();
        }
        let z = (y - self.mean) / self.sd;
        use core::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};
        let inv_sqrt_pi = 0.5 * FRAC_2_SQRT_PI;
        let cdf = 0.5 * libm::erfc(-z * FRAC_1_SQRT_2);
        let pdf = libm::exp(-0.5 * z * z) * inv_sqrt_pi * FRAC_1_SQRT_2;
        self.sd * (z * (2.0 * cdf - 1.0) + 2.0 * pdf - inv_sqrt_pi)
    }

    /// The 5 % and 95 % quantiles.
    ///
    /// ```
    /// let (lo, hi) = tinysde::forecast::baseline::Gaussian::new(0.0, 1.0)?.band();
    /// assert!((hi - 1.644_853_6).abs() < 1e-6 && lo == -hi);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn band(&self) -> (f64, f64) {
        (self.mean - Z95 * self.sd, self.mean + Z95 * self.sd)
    }

    /// Whether `y` lies in the 5-95 % band (bounds included).
    ///
    /// ```
    /// let g = tinysde::forecast::baseline::Gaussian::new(10.0, 1.0)?;
    /// assert!(g.covers(11.5) && !g.covers(12.0));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn covers(&self, y: f64) -> bool {
        let (lo, hi) = self.band();
        lo <= y && y <= hi
    }
}

/// The CRPS of `N(mean, sd^2)` at `y`: [`Gaussian::new`] then [`Gaussian::crps`], with an
/// error for a non-finite `y` too.
///
/// ```
/// use tinysde::forecast::baseline::crps_gaussian;
/// assert!((crps_gaussian(3.0, 0.0, 1.0)? - 2.0).abs() < 1e-15);
/// assert!(crps_gaussian(0.0, 1.0, f64::NAN).is_err());
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn crps_gaussian(mean: f64, sd: f64, y: f64) -> Result<f64, Error> {
    let g = Gaussian::new(mean, sd)?;
    if !y.is_finite() {
        return Err(Error::NonFinite {
            what: "observation",
            index: 0,
        });
    }
    Ok(g.crps(y))
}

/// A forecast of the next value from the last observed one.
pub trait OneStep {
    /// The predictive distribution of a value `gap` time units (in intervals, `> 0`) after
    /// the observed value `last`. An error for a non-finite `last` or a `gap` that is not
    /// finite and positive.
    fn predict(&self, last: f64, gap: f64) -> Result<Gaussian, Error>;
}

/// Persistence: the next value is the last one, with variance `k s_d^2` over `k`
/// intervals (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Persistence {
    /// `s_d^2`: the variance of the change over one interval.
    pub var: f64,
    /// The training pairs it was fitted on.
    pub pairs: usize,
}

/// An AR(1) model `y_{n+1} = intercept + phi y_n + e`, `e ~ N(0, var)` (see the
/// [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ar1 {
    /// `c`.
    pub intercept: f64,
    /// `phi`.
    pub phi: f64,
    /// `s^2`: the innovation variance (mean squared residual).
    pub var: f64,
    /// The one-interval training pairs it was fitted on.
    pub pairs: usize,
}

/// Checks a series and calls `f(k, y_j, y_i)` for each observed pair in order.
fn for_each_pair(
    times: &[f64],
    values: &[Option<f64>],
    unit: f64,
    mut f: impl FnMut(f64, f64, f64),
) -> Result<(), Error> {
    check_series(times, values, unit)?;
    let mut last: Option<(f64, f64)> = None;
    for (&t, v) in times.iter().zip(values) {
        if let Some(y) = *v {
            if let Some((tj, yj)) = last {
                f((t - tj) / unit, yj, y);
            }
            last = Some((t, y));
        }
    }
    Ok(())
}

/// The input checks every function here makes.
fn check_series(times: &[f64], values: &[Option<f64>], unit: f64) -> Result<(), Error> {
    if values.len() != times.len() {
        return Err(Error::Length {
            what: "values (one per time)",
            expected: times.len(),
            found: values.len(),
        });
    }
    if !(unit.is_finite() && unit > 0.0) {
        return Err(Error::OutOfRange {
            what: "time unit must be finite and > 0",
        });
    }
    if let Some(i) = times.iter().position(|t| !t.is_finite()) {
        return Err(Error::NonFinite {
            what: "times",
            index: i,
        });
    }
    if times.windows(2).any(|w| matches!(w, [a, b] if b <= a)) {
        return Err(Error::OutOfRange {
            what: "times must increase strictly",
        });
    }
    if let Some(i) = values
        .iter()
        .position(|v| v.is_some_and(|y| !y.is_finite()))
    {
        return Err(Error::NonFinite {
            what: "values",
            index: i,
        });
    }
    Ok(())
}

/// Checks the arguments of a prediction.
fn check_predict(last: f64, gap: f64) -> Result<(), Error> {
    if !last.is_finite() {
        return Err(Error::NonFinite {
            what: "last value",
            index: 0,
        });
    }
    if !(gap.is_finite() && gap > 0.0) {
        return Err(Error::OutOfRange {
            what: "gap must be finite and > 0",
        });
    }
    Ok(())
}

impl Persistence {
    /// Fits `s_d^2` to the observed pairs of a training series (`unit`: the time of one
    /// interval). Errors: see the [module docs](self); fewer than
    /// [`MIN_PERSISTENCE_PAIRS`] pairs is an [`Error::Length`].
    ///
    /// ```
    /// use tinysde::forecast::baseline::{OneStep, Persistence};
    /// let (times, values) = ([0.0, 1.0, 2.0, 3.0], [Some(1.0), Some(2.0), None, Some(3.0)]);
    /// let p = Persistence::fit(&times, &values, 1.0)?; // pairs (0, 1) and (1, 3), gaps 1 and 2
    /// assert_eq!((p.pairs, p.var), (2, 0.75)); // (1^2 / 1 + 1^2 / 2) / 2
    /// assert_eq!(p.predict(3.0, 2.0)?.mean, 3.0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn fit(times: &[f64], values: &[Option<f64>], unit: f64) -> Result<Self, Error> {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for_each_pair(times, values, unit, |k, yj, yi| {
            let d = yi - yj;
            sum += d * d / k;
            n += 1;
        })?;
        if n < MIN_PERSISTENCE_PAIRS {
            return Err(Error::Length {
                what: "observed training pairs for persistence (at least)",
                expected: MIN_PERSISTENCE_PAIRS,
                found: n,
            });
        }
        let var = sum / n as f64;
        if !var.is_finite() {
            return Err(Error::NonFinite {
                what: "persistence variance",
                index: 0,
            });
        }
        Ok(Self { var, pairs: n })
    }
}

impl OneStep for Persistence {
    fn predict(&self, last: f64, gap: f64) -> Result<Gaussian, Error> {
        check_predict(last, gap)?;
        Gaussian::new(last, libm::sqrt(gap * self.var))
    }
}

impl Ar1 {
    /// Fits `c`, `phi` and `s^2` by least squares to the training pairs one interval apart
    /// (`unit`: the time of one interval). Errors: see the [module docs](self); fewer than
    /// [`MIN_AR1_PAIRS`] such pairs is an [`Error::Length`], predecessors that do not vary
    /// an [`Error::OutOfRange`].
    ///
    /// ```
    /// use tinysde::forecast::baseline::Ar1;
    /// // y_{n+1} = 1 + 0.5 y_n exactly: the fit recovers it with no residual.
    /// let mut y = [Some(0.0); 6];
    /// for n in 1..6 {
    ///     y[n] = Some(1.0 + 0.5 * y[n - 1].unwrap());
    /// }
    /// let ar = Ar1::fit(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &y, 1.0)?;
    /// assert!((ar.phi - 0.5).abs() < 1e-12 && (ar.intercept - 1.0).abs() < 1e-12);
    /// assert!((ar.mean().unwrap() - 2.0).abs() < 1e-12);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn fit(times: &[f64], values: &[Option<f64>], unit: f64) -> Result<Self, Error> {
        let one_step = |k: f64| (0.5..=1.5).contains(&k);
        // Two passes: the means, then the centred sums (numerically stable).
        let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0usize);
        for_each_pair(times, values, unit, |k, x, y| {
            if one_step(k) {
                sx += x;
                sy += y;
                n += 1;
            }
        })?;
        if n < MIN_AR1_PAIRS {
            return Err(Error::Length {
                what: "one-interval training pairs for AR(1) (at least)",
                expected: MIN_AR1_PAIRS,
                found: n,
            });
        }
        let nf = n as f64;
        let (mx, my) = (sx / nf, sy / nf);
        let (mut sxx, mut sxy) = (0.0f64, 0.0f64);
        for_each_pair(times, values, unit, |k, x, y| {
            if one_step(k) {
                sxx += (x - mx) * (x - mx);
                sxy += (x - mx) * (y - my);
            }
        })?;
        if !(sxx > 0.0 && sxx.is_finite()) {
            return Err(Error::OutOfRange {
                what: "AR(1) fit: the training values do not vary",
            });
        }
        let phi = sxy / sxx;
        let intercept = my - phi * mx;
        let mut sse = 0.0f64;
        for_each_pair(times, values, unit, |k, x, y| {
            if one_step(k) {
                let r = y - intercept - phi * x;
                sse += r * r;
            }
        })?;
        let var = sse / nf;
        if !(phi.is_finite() && intercept.is_finite() && var.is_finite()) {
            return Err(Error::NonFinite {
                what: "AR(1) coefficients",
                index: 0,
            });
        }
        Ok(Self {
            intercept,
            phi,
            var,
            pairs: n,
        })
    }

    /// The stationary mean `c / (1 - phi)`, for `|phi| < 1`.
    pub fn mean(&self) -> Option<f64> {
        (self.phi.abs() < 1.0).then(|| self.intercept / (1.0 - self.phi))
    }
}

impl OneStep for Ar1 {
    fn predict(&self, last: f64, gap: f64) -> Result<Gaussian, Error> {
        check_predict(last, gap)?;
        let phi = self.phi;
        // The number of steps: fractional for phi > 0, whole otherwise.
        let (k, p) = if gap == 1.0 {
            (1.0, phi)
        } else if phi > 0.0 {
            (gap, libm::pow(phi, gap))
        } else {
            let k = libm::round(gap).max(1.0);
            (k, libm::pow(phi, k))
        };
        // sum_{j < k} phi^j and sum_{j < k} phi^(2j), in closed form.
        const TINY: f64 = 1e-12;
        let g1 = if (1.0 - phi).abs() > TINY {
            (1.0 - p) / (1.0 - phi)
        } else {
            k
        };
        let g2 = if (1.0 - phi * phi).abs() > TINY {
            (1.0 - p * p) / (1.0 - phi * phi)
        } else {
            k
        };
        let var = self.var * g2;
        if var.is_nan() || var < 0.0 {
            return Err(Error::NonFinite {
                what: "AR(1) predictive variance",
                index: 0,
            });
        }
        Gaussian::new(p * last + self.intercept * g1, libm::sqrt(var))
    }
}

/// Running one-step-ahead scores: the count, the mean CRPS and the coverage of the 5-95 %
/// band.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OneStepScore {
    count: usize,
    crps_sum: f64,
    inside: usize,
}

impl OneStepScore {
    /// No observations yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Scores `prediction` at observation `y` (an error, nothing added, for a non-finite
    /// `y`).
    pub fn add(&mut self, prediction: &Gaussian, y: f64) -> Result<(), Error> {
        if !y.is_finite() {
            return Err(Error::NonFinite {
                what: "observation",
                index: self.count,
            });
        }
        self.crps_sum += prediction.crps(y);
        self.inside += usize::from(prediction.covers(y));
        self.count += 1;
        Ok(())
    }
    /// Observations scored.
    pub fn count(&self) -> usize {
        self.count
    }
    /// The mean CRPS (NaN if none).
    pub fn mean_crps(&self) -> f64 {
        self.crps_sum / self.count as f64
    }
    /// The fraction inside their 5-95 % band (NaN if none).
    pub fn coverage(&self) -> f64 {
        self.inside as f64 / self.count as f64
    }
}

/// Scores `model` one step ahead on the observed rows `rows` of a series: row `i` is
/// predicted from the last observed row before it (which may lie before `rows.start`), at
/// the gap `(t_i - t_j) / unit`; a row with no observed row before it is not scored.
/// Errors: the series' checks (see the [module docs](self)), `rows` out of the series, or a
/// prediction's error.
pub fn score_one_step<M: OneStep>(
    model: &M,
    times: &[f64],
    values: &[Option<f64>],
    unit: f64,
    rows: Range<usize>,
) -> Result<OneStepScore, Error> {
    check_series(times, values, unit)?;
    if rows.start > rows.end || rows.end > times.len() {
        return Err(Error::OutOfRange {
            what: "rows to score must lie in the series",
        });
    }
    let mut score = OneStepScore::new();
    let mut last = None;
    for (i, (&t, v)) in times.iter().zip(values).enumerate().take(rows.end) {
        if let Some(y) = *v {
            if i >= rows.start {
                if let Some((tj, yj)) = last {
                    let g = model.predict(yj, (t - tj) / unit)?;
                    score.add(&g, y)?;
                }
            }
            last = Some((t, y));
        }
    }
    Ok(score)
}
