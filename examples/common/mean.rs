//! A deterministic mean under the SDE (trend and season), fitted by least squares.
//!
//! `fit_csv` reads a column's model values as `z(tau) = m(tau) + u(tau)`: `m` a line and a
//! few harmonics of the season ([`tinysde::forecast::file::Trend`]), `u` the SDE's state. The
//! mean is fitted here on the training rows only, in `f64`, by ordinary least squares (a
//! QR decomposition by modified Gram-Schmidt that drops a regressor indistinguishable from
//! the earlier ones, e.g. the sine at the Nyquist frequency of a quarterly season); the SDE
//! is then trained on the residuals `z - m`, computed with `Trend::at` in `f32` as the
//! forecaster computes them.

use tinysde::forecast::file::{Trend, MAX_HARMONICS};

/// Which terms a mean has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Terms {
    /// A slope (the level is always fitted).
    pub slope: bool,
    /// The season's period in model time units and its number of harmonics (`None`: no
    /// season).
    pub season: Option<(f32, usize)>,
}

/// The regressors of `terms` at model time `tau`: `1`, then `tau` (with a slope), then per
/// harmonic `sin`, `cos` (computed as [`Trend::at`] computes them, in `f32`).
fn regressors(terms: &Terms, tau: f32) -> Vec<f64> {
    let mut x = vec![1.0, f64::from(tau)];
    if !terms.slope {
        x.pop();
    }
    if let Some((period, k)) = terms.season {
        for h in 0..k {
            // The basis functions through Trend::at itself: the same f32 arithmetic.
            let mut t = Trend {
                period,
                harmonics: (h + 1) as u8,
                ..Trend::NONE
            };
            t.coefficients[h] = [1.0, 0.0];
            x.push(f64::from(t.at(tau)));
            t.coefficients[h] = [0.0, 1.0];
            x.push(f64::from(t.at(tau)));
        }
    }
    x
}

/// Fits the mean of `terms` to the observed `values` (NaN: missing) at model times `taus`
/// by least squares. A regressor whose part not explained by the earlier ones has less
/// than `1e-9` of its norm gets coefficient 0. `None` if there are fewer observed values
/// than regressors, more than [`MAX_HARMONICS`] harmonics, a period not finite and `> 0`,
/// or a coefficient does not fit an `f32`.
pub fn fit(terms: &Terms, taus: &[f32], values: &[f32]) -> Option<Trend> {
    let harmonics = terms.season.map_or(0, |(_, k)| k);
    if harmonics > MAX_HARMONICS {
        return None;
    }
    if let Some((p, _)) = terms.season {
        if !(p.is_finite() && p > 0.0) {
            return None;
        }
    }
    let rows: Vec<(Vec<f64>, f64)> = taus
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_finite())
        .map(|(&t, &v)| (regressors(terms, t), f64::from(v)))
        .collect();
    let p = regressors(terms, 0.0).len();
    if rows.len() < p + 2 {
        return None;
    }
    // Columns of the design matrix and the response, orthogonalized in turn.
    let mut q: Vec<Vec<f64>> = (0..p)
        .map(|j| rows.iter().map(|(x, _)| x[j]).collect())
        .collect();
    let mut y: Vec<f64> = rows.iter().map(|(_, v)| *v).collect();
    let mut r = vec![vec![0.0f64; p]; p];
    let mut kept = vec![false; p];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for j in 0..p {
        let norm0 = dot(&q[j], &q[j]).sqrt();
        for i in 0..j {
            if kept[i] {
                let (head, tail) = q.split_at_mut(j);
                let rij = dot(&head[i], &tail[0]);
                r[i][j] = rij;
                for (a, b) in tail[0].iter_mut().zip(&head[i]) {
                    *a -= rij * b;
                }
            }
        }
        let norm = dot(&q[j], &q[j]).sqrt();
        if norm > 1e-9 * norm0 && norm > 0.0 {
            r[j][j] = norm;
            for a in q[j].iter_mut() {
                *a /= norm;
            }
            kept[j] = true;
        }
    }
    // Q' y, then back substitution.
    let mut qty = vec![0.0; p];
    for j in 0..p {
        if kept[j] {
            qty[j] = dot(&q[j], &y);
            for (a, b) in y.iter_mut().zip(&q[j]) {
                *a -= qty[j] * b;
            }
        }
    }
    let mut beta = vec![0.0f64; p];
    for j in (0..p).rev() {
        if !kept[j] {
            continue;
        }
        let s: f64 = (j + 1..p).map(|k| r[j][k] * beta[k]).sum();
        beta[j] = (qty[j] - s) / r[j][j];
    }
    let f = |x: f64| {
        let v = x as f32;
        v.is_finite().then_some(v)
    };
    let mut trend = Trend {
        level: f(beta[0])?,
        ..Trend::NONE
    };
    let mut next = 1;
    if terms.slope {
        trend.slope = f(beta[1])?;
        next = 2;
    }
    if let Some((period, k)) = terms.season {
        trend.period = period;
        trend.harmonics = k as u8;
        for h in 0..k {
            trend.coefficients[h] = [f(beta[next + 2 * h])?, f(beta[next + 2 * h + 1])?];
        }
    }
    trend.check().ok()?;
    Some(trend)
}

/// The residuals `values - m(tau)` in `f32` (as the forecaster computes them; NaN stays).
pub fn residuals(trend: &Trend, taus: &[f32], values: &[f32]) -> Vec<f32> {
    taus.iter()
        .zip(values)
        .map(|(&t, &v)| v - trend.at(t))
        .collect()
}
