//! Calibration scores of an ensemble forecast against observations.

/// The `p`-quantile (`0..=1`) of sorted samples, by linear interpolation between order
/// statistics (type 7 of Hyndman and Fan, 1996, as in R and NumPy). `NaN` for no samples.
pub fn quantile_sorted(sorted: &[f32], p: f64) -> f32 {
    match sorted.len() {
        0 => f32::NAN,
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let w = (h - lo as f64) as f32;
            sorted[lo] + w * (sorted[hi] - sorted[lo])
        }
    }
}

/// The continuous ranked probability score of the empirical distribution of `ensemble` at
/// observation `y`: `E|X - y| - E|X - X'| / 2` (Gneiting and Raftery, 2007, eq. 21), with
/// `E|X - X'|` from the sorted samples in O(n log n). Sorts `ensemble`. Lower is better; for
/// a single sample it is the absolute error. `NaN` for an empty ensemble.
pub fn crps_ensemble(ensemble: &mut [f64], y: f64) -> f64 {
    let n = ensemble.len();
    if n == 0 {
        return f64::NAN;
    }
    ensemble.sort_by(f64::total_cmp);
    let nf = n as f64;
    let abs_err = ensemble.iter().map(|x| (x - y).abs()).sum::<f64>() / nf;
    // sum_{i,j} |x_i - x_j| = 2 sum_i (2i - n + 1) x_(i) for 0-based sorted x.
    let spread = ensemble
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * i as f64 - nf + 1.0) * x)
        .sum::<f64>()
        * 2.0
        / (nf * nf);
    abs_err - 0.5 * spread
}
