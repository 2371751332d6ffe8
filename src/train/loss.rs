//! Built-in losses over the ensemble statistics: mean squared error against data, and
//! mean-plus-variance matching (method of moments), both with optional missing points.
//!
//! Missing data is marked by a **mask**: a slice of `[bool; D]` rows as long as the data,
//! `true` where the data point is present. Entries where the mask is `false` are ignored
//! entirely and may hold anything, NaN included (so data read with NaN for "missing" can be
//! passed unchanged together with a mask built from `is_finite`). Without a mask every
//! entry must be finite.

use crate::error::{check_len, check_non_negative, check_positive, Error};
use crate::grad::Loss;
use crate::real::Real;

/// Checks that every present entry of `data` is finite.
fn check_data<const D: usize>(
    what: &'static str,
    data: &[[f32; D]],
    mask: Option<&[[bool; D]]>,
) -> Result<(), Error> {
    if let Some(m) = mask {
        check_len("data mask", data.len(), m.len())?;
    }
    for (index, row) in data.iter().enumerate() {
        let present = mask.and_then(|m| m.get(index)).copied();
        for (d, x) in row.iter().enumerate() {
            let used = present.is_none_or(|p| p.get(d).copied().unwrap_or(false));
            if used && !x.is_finite() {
                return Err(Error::NonFinite { what, index });
            }
        }
    }
    Ok(())
}

/// Whether entry `(i, d)` is present.
#[inline]
fn present<const D: usize>(mask: Option<&[[bool; D]]>, i: usize, d: usize) -> bool {
    match mask {
        None => true,
        Some(m) => m.get(i).and_then(|r| r.get(d)).copied().unwrap_or(false),
    }
}

/// Sum of `(x - y)^2` over present entries of the first `x.len()` rows, and their count.
#[inline]
fn sum_squares<T: Real, const D: usize>(
    x: &[[T; D]],
    y: &[[f32; D]],
    mask: Option<&[[bool; D]]>,
) -> (T, usize) {
    let mut sum = T::ZERO;
    let mut count = 0;
    for (i, (xr, yr)) in x.iter().zip(y).enumerate() {
        for (d, (&xv, &yv)) in xr.iter().zip(yr).enumerate() {
            if present(mask, i, d) {
                let e = xv - yv;
                sum += e * e;
                count += 1;
            }
        }
    }
    (sum, count)
}

/// Mean squared error between the ensemble mean and data at the save times (the seed
/// task's loss):
///
/// ```text
/// L = (1 / n) * sum over present (i, d) of (mean[i][d] - data[i][d])^2
/// ```
///
/// where `n` counts the present entries among the save times in use (0 if none: then
/// `L = 0`). The data must have one row per save time.
///
/// ```
/// use tinysde::grad::Loss;
/// use tinysde::train::MeanSquaredError;
/// let data = [[1.0], [f32::NAN], [3.0]];
/// let mask = [[true], [false], [true]]; // the middle point is missing
/// let mse = MeanSquaredError::masked(&data, &mask).unwrap();
/// let l: f32 = mse.eval(&[[2.0], [100.0], [3.0]], &[[0.0]; 3]);
/// assert_eq!(l, 0.5); // ((2-1)^2 + 0) / 2 present points
/// assert!(MeanSquaredError::new(&data).is_err()); // NaN without a mask
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanSquaredError<'a, const D: usize> {
    data: &'a [[f32; D]],
    mask: Option<&'a [[bool; D]]>,
}

impl<'a, const D: usize> MeanSquaredError<'a, D> {
    /// The loss against `data` (one row per save time, all finite).
    pub fn new(data: &'a [[f32; D]]) -> Result<Self, Error> {
        check_data("data", data, None)?;
        Ok(Self { data, mask: None })
    }

    /// The loss against the entries of `data` where `mask` is `true` (same length as
    /// `data`; present entries must be finite, missing ones are ignored).
    pub fn masked(data: &'a [[f32; D]], mask: &'a [[bool; D]]) -> Result<Self, Error> {
        check_data("data", data, Some(mask))?;
        Ok(Self {
            data,
            mask: Some(mask),
        })
    }

    /// The data.
    pub fn data(&self) -> &'a [[f32; D]] {
        self.data
    }
}

impl<const D: usize> Loss<D> for MeanSquaredError<'_, D> {
    fn check(&self, saves: usize) -> Result<(), Error> {
        check_len("data", saves, self.data.len())
    }

    fn eval<T: Real>(&self, mean: &[[T; D]], _var: &[[T; D]]) -> T {
        let (sum, count) = sum_squares(mean, self.data, self.mask);
        if count == 0 {
            T::ZERO
        } else {
            sum / count as f32
        }
    }
}

/// Mean and variance matching (the DiffEqFlux neural SDE tutorial's loss):
///
/// ```text
/// L = sum over present (i, d) of (mean[i][d] - m[i][d])^2
///   + w * sum over present (i, d) of (var[i][d] - v[i][d])^2
/// ```
///
/// with target means `m`, target variances `v` (one row per save time each) and a
/// variance weight `w` (1 by default). Sums, not averages, as in the tutorial. Matching
/// the variance keeps the learned noise from collapsing to zero.
///
/// ```
/// use tinysde::grad::Loss;
/// use tinysde::train::MomentMatching;
/// let m = [[1.0f32, 0.0]];
/// let v = [[0.5f32, 0.5]];
/// let loss = MomentMatching::new(&m, &v).unwrap();
/// let l: f32 = loss.eval(&[[2.0, 0.0]], &[[0.5, 1.5]]);
/// assert_eq!(l, 2.0); // 1 from the mean, 1 from the variance
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MomentMatching<'a, const D: usize> {
    mean: &'a [[f32; D]],
    var: &'a [[f32; D]],
    mask: Option<&'a [[bool; D]]>,
    var_weight: f32,
}

impl<'a, const D: usize> MomentMatching<'a, D> {
    /// The loss against target means and variances (same length, finite).
    pub fn new(mean: &'a [[f32; D]], var: &'a [[f32; D]]) -> Result<Self, Error> {
        check_len("target variances", mean.len(), var.len())?;
        check_data("target means", mean, None)?;
        check_data("target variances", var, None)?;
        Ok(Self {
            mean,
            var,
            mask: None,
            var_weight: 1.0,
        })
    }

    /// The loss against the entries where `mask` is `true` (one mask for both moments,
    /// same length; present entries finite).
    pub fn masked(
        mean: &'a [[f32; D]],
        var: &'a [[f32; D]],
        mask: &'a [[bool; D]],
    ) -> Result<Self, Error> {
        check_len("target variances", mean.len(), var.len())?;
        check_data("target means", mean, Some(mask))?;
        check_data("target variances", var, Some(mask))?;
        Ok(Self {
            mean,
            var,
            mask: Some(mask),
            var_weight: 1.0,
        })
    }

    /// Weights the variance term by `w` (finite, `>= 0`).
    pub fn with_var_weight(mut self, w: f32) -> Result<Self, Error> {
        check_non_negative(w, "variance weight", "variance weight must be >= 0")?;
        self.var_weight = w;
        Ok(self)
    }
}

impl<const D: usize> Loss<D> for MomentMatching<'_, D> {
    fn check(&self, saves: usize) -> Result<(), Error> {
        check_len("target means", saves, self.mean.len())
    }

    fn eval<T: Real>(&self, mean: &[[T; D]], var: &[[T; D]]) -> T {
        let (m, _) = sum_squares(mean, self.mean, self.mask);
        let (v, _) = sum_squares(var, self.var, self.mask);
        m + v * self.var_weight
    }
}

/// Gaussian negative log-likelihood of the data under the ensemble's mean and variance:
///
/// ```text
/// L = (1 / n) * sum over present (i, d) of
///     1/2 * ( ln(2 pi s) + (data[i][d] - mean[i][d])^2 / s ),   s = var[i][d] + floor
/// ```
///
/// with `n` the number of present entries (0 if none: then `L = 0`). Unlike the squared
/// error of the mean, it is minimized only when the ensemble's spread matches the data's
/// scatter: too little variance is punished by the squared-error term, too much by the
/// log term. This is the Gaussian ("probabilistic") loss used to train neural SDEs on
/// observed paths, the likelihood of a moment-matched normal approximation of the
/// transition density (see e.g. Särkkä & Solin, *Applied Stochastic Differential
/// Equations*, 2019, ch. 9 on Gaussian approximations); applied to one step ahead from each
/// observed value (windows of length 1, see [`SeriesProblem`](crate::train::SeriesProblem))
/// it is the multiple-shooting likelihood of the series.
///
/// The variance floor `floor > 0` keeps the loss and its gradient finite when the ensemble
/// has no spread (one trajectory, or a diffusion at zero); choose it well below the data's
/// scatter (default `1e-6`, for data of order one).
///
/// ```
/// use tinysde::grad::Loss;
/// use tinysde::train::GaussianNll;
/// let data = [[1.0f32]];
/// let nll = GaussianNll::new(&data).unwrap();
/// // A unit-variance prediction one standard deviation off.
/// let l: f32 = nll.eval(&[[0.0]], &[[1.0]]);
/// let expected = 0.5 * ((2.0 * core::f32::consts::PI).ln() + 1.0);
/// assert!((l - expected).abs() < 1e-5);
/// // The variance that fits the error best is the squared error itself.
/// let at = |v: f32| -> f32 { nll.eval(&[[0.0f32]], &[[v]]) };
/// assert!(at(1.0) < at(0.5) && at(1.0) < at(2.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianNll<'a, const D: usize> {
    data: &'a [[f32; D]],
    mask: Option<&'a [[bool; D]]>,
    var_floor: f32,
    noise_var: [f32; D],
}

/// `ln(2 pi)`.
const LN_2PI: f32 = 1.837_877_1;

impl<'a, const D: usize> GaussianNll<'a, D> {
    /// The loss against `data` (one row per save time, all finite), variance floor `1e-6`.
    pub fn new(data: &'a [[f32; D]]) -> Result<Self, Error> {
        check_data("data", data, None)?;
        Ok(Self::unchecked(data, None, DEFAULT_VAR_FLOOR))
    }

    /// The loss against the entries of `data` where `mask` is `true` (same length as
    /// `data`; present entries finite, missing ones ignored).
    pub fn masked(data: &'a [[f32; D]], mask: &'a [[bool; D]]) -> Result<Self, Error> {
        check_data("data", data, Some(mask))?;
        Ok(Self::unchecked(data, Some(mask), DEFAULT_VAR_FLOOR))
    }

    /// Replaces the variance floor (finite, `> 0`).
    pub fn with_var_floor(mut self, floor: f32) -> Result<Self, Error> {
        check_var_floor(floor)?;
        self.var_floor = floor;
        Ok(self)
    }

    /// The variance floor.
    pub fn var_floor(&self) -> f32 {
        self.var_floor
    }

    /// Adds observation noise: the data are `y = u + e` with `e ~ N(0, sd[d]^2)` in column
    /// `d` (finite, `>= 0`), so the predictive variance of column `d` is the ensemble's
    /// variance plus `sd[d]^2` (plus the floor). With all zeros (the default) the loss is
    /// the one without noise, bit for bit.
    ///
    /// ```
    /// use tinysde::grad::Loss;
    /// use tinysde::train::GaussianNll;
    /// let data = [[1.0f32]];
    /// let plain = GaussianNll::new(&data)?.with_var_floor(1.0)?;
    /// let noisy = GaussianNll::new(&data)?.with_var_floor(0.5)?.with_noise([0.5f32.sqrt()])?;
    /// // floor 0.5 + noise variance 0.5 = floor 1 (up to rounding).
    /// let (a, b): (f32, f32) = (plain.eval(&[[0.0]], &[[0.0]]), noisy.eval(&[[0.0]], &[[0.0]]));
    /// assert!((a - b).abs() < 1e-6);
    /// assert!(GaussianNll::new(&data)?.with_noise([-1.0]).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_noise(mut self, sd: [f32; D]) -> Result<Self, Error> {
        self.noise_var = noise_variances(sd)?;
        Ok(self)
    }

    /// The observation noise's variance per column (`sd^2`, zeros by default).
    pub fn noise_var(&self) -> [f32; D] {
        self.noise_var
    }

    /// The same loss with the noise variances `noise_var` (already checked).
    pub(crate) fn with_noise_var(self, noise_var: [f32; D]) -> Self {
        Self { noise_var, ..self }
    }

    /// `floor + noise_var[d]` per column: the variance added to the ensemble's (the floor
    /// alone, bit for bit, where the noise is zero).
    fn added(&self) -> [f32; D] {
        let mut added = [self.var_floor; D];
        for (a, &n) in added.iter_mut().zip(&self.noise_var) {
            *a += n;
        }
        added
    }

    /// The derivative of [`sum`](Self::sum) with respect to each column's noise variance
    /// (the same as with respect to the floor of that column alone):
    /// `sum over present (i, d) of 1/2 (1/s - (y - mean)^2 / s^2)`, from the values of the
    /// statistics (their tangents, if any, are ignored).
    pub(crate) fn noise_cotangent<T: Real<Value = f32>>(
        &self,
        mean: &[[T; D]],
        var: &[[T; D]],
    ) -> [f32; D] {
        let added = self.added();
        let mut bar = [0.0f32; D];
        for (i, ((mr, vr), yr)) in mean.iter().zip(var).zip(self.data).enumerate() {
            for (d, ((&m, &v), &y)) in mr.iter().zip(vr).zip(yr).enumerate() {
                if present(self.mask, i, d) {
                    let s = v.value() + added.get(d).copied().unwrap_or(self.var_floor);
                    let e = m.value() - y;
                    if let Some(b) = bar.get_mut(d) {
                        *b += (1.0 / s - e * e / (s * s)) * 0.5;
                    }
                }
            }
        }
        bar
    }

    /// A loss on data already checked (windows of a checked series).
    pub(crate) fn unchecked(
        data: &'a [[f32; D]],
        mask: Option<&'a [[bool; D]]>,
        var_floor: f32,
    ) -> Self {
        Self {
            data,
            mask,
            var_floor,
            noise_var: [0.0; D],
        }
    }

    /// The sum of the per-entry terms over present entries, and their number.
    pub(crate) fn sum<T: Real>(&self, mean: &[[T; D]], var: &[[T; D]]) -> (T, usize) {
        let added = self.added();
        let mut sum = T::ZERO;
        let mut count = 0;
        for (i, ((mr, vr), yr)) in mean.iter().zip(var).zip(self.data).enumerate() {
            for (d, ((&m, &v), &y)) in mr.iter().zip(vr).zip(yr).enumerate() {
                if present(self.mask, i, d) {
                    let s = v + added.get(d).copied().unwrap_or(self.var_floor);
                    let e = m - y;
                    sum += (s.ln() + e * e / s + LN_2PI) * 0.5;
                    count += 1;
                }
            }
        }
        (sum, count)
    }
}

/// The default variance floor of [`GaussianNll`].
pub(crate) const DEFAULT_VAR_FLOOR: f32 = 1e-6;

/// The variances `sd^2` of observation noise scales `sd` (each finite and `>= 0`).
pub(crate) fn noise_variances<const D: usize>(sd: [f32; D]) -> Result<[f32; D], Error> {
    let mut var = [0.0f32; D];
    for (v, &s) in var.iter_mut().zip(&sd) {
        check_non_negative(s, "observation noise", "observation noise must be >= 0")?;
        *v = s * s;
    }
    Ok(var)
}

/// Checks a variance floor: finite and `> 0`.
pub(crate) fn check_var_floor(floor: f32) -> Result<(), Error> {
    check_positive(floor, "variance floor", "variance floor must be > 0")
}

impl<const D: usize> Loss<D> for GaussianNll<'_, D> {
    fn check(&self, saves: usize) -> Result<(), Error> {
        check_len("data", saves, self.data.len())
    }

    fn eval<T: Real>(&self, mean: &[[T; D]], var: &[[T; D]]) -> T {
        let (sum, count) = self.sum(mean, var);
        if count == 0 {
            T::ZERO
        } else {
            sum / count as f32
        }
    }
}

impl<'a, const D: usize> MeanSquaredError<'a, D> {
    /// A loss on data already checked (windows of a checked series).
    pub(crate) fn unchecked(data: &'a [[f32; D]], mask: Option<&'a [[bool; D]]>) -> Self {
        Self { data, mask }
    }

    /// The sum of squared errors over present entries, and their number.
    pub(crate) fn sum<T: Real>(&self, mean: &[[T; D]]) -> (T, usize) {
        sum_squares(mean, self.data, self.mask)
    }
}

/// Checks series data: present entries finite, mask as long as the data.
pub(crate) fn check_series_data<const D: usize>(
    data: &[[f32; D]],
    mask: Option<&[[bool; D]]>,
) -> Result<(), Error> {
    check_data("series values", data, mask)
}
