//! The baselines of `tinysde::forecast::baseline`: the Gaussian CRPS against numerical
//! integration, AR(1) and persistence fits on simulated series, gaps and missing values,
//! typed errors.

use tinysde::forecast::baseline::{
    crps_gaussian, score_one_step, Ar1, Gaussian, OneStep, OneStepScore, Persistence, Z95,
};
use tinysde::Error;

/// A deterministic stream of standard normals (splitmix64 and Box-Muller).
struct Normals(u64);

impl Normals {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn next(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `y_{n+1} = c + phi y_n + s e_n` from the stationary mean, `n` values at times 0, 1, ...
fn ar1_series(n: usize, c: f64, phi: f64, s: f64, seed: u64) -> (Vec<f64>, Vec<Option<f64>>) {
    let mut e = Normals(seed);
    let mut y = c / (1.0 - phi);
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        values.push(Some(y));
        y = c + phi * y + s * e.next();
    }
    ((0..n).map(|i| i as f64).collect(), values)
}

/// A random walk with steps of standard deviation `s`.
fn random_walk(n: usize, s: f64, seed: u64) -> (Vec<f64>, Vec<Option<f64>>) {
    let mut e = Normals(seed);
    let mut y = 10.0;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        values.push(Some(y));
        y += s * e.next();
    }
    ((0..n).map(|i| i as f64).collect(), values)
}

/// CRPS = integral of (F(x) - 1{x >= y})^2, with F itself the trapezoid integral of the
/// density (no erf), on a fine grid over mean -+ 12 sd.
fn crps_by_integration(mean: f64, sd: f64, y: f64) -> f64 {
    let lo = (mean - 12.0 * sd).min(y - 1.0);
    let hi = (mean + 12.0 * sd).max(y + 1.0);
    let n = 400_000;
    let h = (hi - lo) / n as f64;
    let pdf = |x: f64| {
        let z = (x - mean) / sd;
        (-0.5 * z * z).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
    };
    let (mut cdf, mut total) = (0.0f64, 0.0f64);
    let mut prev_f = 0.0f64;
    let sq = |x: f64, f: f64| {
        let step = if x >= y { 1.0 } else { 0.0 };
        (f - step) * (f - step)
    };
    let mut prev_g = sq(lo, 0.0);
    for i in 1..=n {
        let x = lo + i as f64 * h;
        cdf += 0.5 * h * (pdf(x - h) + pdf(x));
        let g = sq(x, cdf);
        // The indicator jumps inside this cell: split it there.
        if x - h < y && y <= x {
            let w = (y - (x - h)) / h;
            let f_y = prev_f + w * (cdf - prev_f);
            total += 0.5 * (y - (x - h)) * (prev_g + f_y * f_y);
            total += 0.5 * (x - y) * ((f_y - 1.0) * (f_y - 1.0) + g);
        } else {
            total += 0.5 * h * (prev_g + g);
        }
        prev_f = cdf;
        prev_g = g;
    }
    total
}

#[test]
fn gaussian_crps_matches_numerical_integration() {
    for &(mean, sd, y) in &[
        (0.0, 1.0, 0.0),
        (0.0, 1.0, 0.7),
        (2.0, 0.5, 1.1),
        (-3.0, 4.0, 9.0),
        (100.0, 10.0, 40.0),
        (0.0, 1.0, 5.0),
    ] {
        let closed = crps_gaussian(mean, sd, y).unwrap();
        let numeric = crps_by_integration(mean, sd, y);
        assert!(
            (closed - numeric).abs() <= 1e-6 * sd.max(closed),
            "N({mean}, {sd}^2) at {y}: closed form {closed}, integral {numeric}"
        );
    }
    // Scale and shift: CRPS(a + b X, a + b y) = b CRPS(X, y).
    let base = crps_gaussian(0.0, 1.0, 0.3).unwrap();
    let moved = crps_gaussian(5.0, 3.0, 5.9).unwrap();
    assert!((moved - 3.0 * base).abs() < 1e-12);
    // sd = 0: the absolute error.
    assert_eq!(crps_gaussian(1.5, 0.0, -1.0).unwrap(), 2.5);
}

#[test]
fn band_is_the_5_95_interval() {
    let g = Gaussian::new(10.0, 2.0).unwrap();
    let (lo, hi) = g.band();
    assert_eq!((lo, hi), (10.0 - 2.0 * Z95, 10.0 + 2.0 * Z95));
    assert!(g.covers(lo) && g.covers(hi) && g.covers(10.0));
    assert!(!g.covers(lo - 1e-9) && !g.covers(hi + 1e-9));
}

/// phi within 0.04 (about 4 standard errors for n = 5000: sqrt((1 - phi^2) / n) <= 0.014),
/// the innovation variance within 8 % (4 standard errors: sqrt(2 / n) = 2 %).
#[test]
fn ar1_fit_recovers_phi_on_a_simulated_ar1() {
    for &(c, phi, s, seed) in &[
        (2.0, 0.7, 0.5, 11u64),
        (-1.0, -0.5, 2.0, 12),
        (0.0, 0.95, 1.0, 13),
    ] {
        let (t, y) = ar1_series(5000, c, phi, s, seed);
        let fit = Ar1::fit(&t, &y, 1.0).unwrap();
        assert_eq!(fit.pairs, 4999);
        assert!(
            (fit.phi - phi).abs() < 0.04,
            "phi {phi}: fitted {}",
            fit.phi
        );
        assert!(
            (fit.var / (s * s) - 1.0).abs() < 0.08,
            "s^2 {}: fitted {}",
            s * s,
            fit.var
        );
        let mu = c / (1.0 - phi);
        let sd_y = s / (1.0 - phi * phi).sqrt();
        assert!((fit.mean().unwrap() - mu).abs() < 0.25 * sd_y);
        // Well specified: one-step coverage near 90 % and mean CRPS near s / sqrt(pi).
        let score = score_one_step(&fit, &t, &y, 1.0, 1..5000).unwrap();
        assert_eq!(score.count(), 4999);
        assert!(
            (score.coverage() - 0.9).abs() < 0.02,
            "{}",
            score.coverage()
        );
        let expected = s / std::f64::consts::PI.sqrt();
        assert!((score.mean_crps() / expected - 1.0).abs() < 0.05);
    }
}

#[test]
fn persistence_on_a_random_walk() {
    let (t, y) = random_walk(5000, 2.0, 21);
    let walk = Persistence::fit(&t, &y, 1.0).unwrap();
    assert_eq!(walk.pairs, 4999);
    assert!((walk.var / 4.0 - 1.0).abs() < 0.08, "{}", walk.var);
    let g = walk.predict(7.5, 1.0).unwrap();
    assert_eq!(g.mean, 7.5);
    assert_eq!(g.sd, walk.var.sqrt());
    // Held-out half, fitted on the first: calibrated, and CRPS near s / sqrt(pi).
    let first = Persistence::fit(&t[..2500], &y[..2500], 1.0).unwrap();
    let score = score_one_step(&first, &t, &y, 1.0, 2500..5000).unwrap();
    assert_eq!(score.count(), 2500);
    assert!(
        (score.coverage() - 0.9).abs() < 0.025,
        "{}",
        score.coverage()
    );
    assert!((score.mean_crps() / (2.0 / std::f64::consts::PI.sqrt()) - 1.0).abs() < 0.06);
    // On a random walk the AR(1) fit finds phi near 1 and scores no better than persistence
    // by more than the noise.
    let ar1 = Ar1::fit(&t[..2500], &y[..2500], 1.0).unwrap();
    assert!((ar1.phi - 1.0).abs() < 0.02, "{}", ar1.phi);
    let a = score_one_step(&ar1, &t, &y, 1.0, 2500..5000).unwrap();
    assert!(a.mean_crps() > 0.97 * score.mean_crps());
}

#[test]
fn gaps_scale_the_predictive() {
    // Persistence: the mean over pairs of d^2 / k, k the gap in units.
    let t = [0.0, 10.0, 20.0, 40.0, 50.0, 80.0];
    let y = [Some(1.0), Some(2.0), None, Some(4.0), Some(3.0), Some(6.0)];
    // Pairs: (1 -> 2, k 1), (2 -> 4, k 3: rows 1 to 3), (4 -> 3, k 1), (3 -> 6, k 3).
    let walk = Persistence::fit(&t, &y, 10.0).unwrap();
    assert_eq!(walk.pairs, 4);
    let expected = (1.0 + 4.0 / 3.0 + 1.0 + 9.0 / 3.0) / 4.0;
    assert!((walk.var - expected).abs() < 1e-14);
    let g = walk.predict(3.0, 2.5).unwrap();
    assert!((g.sd * g.sd - 2.5 * walk.var).abs() < 1e-14);

    // AR(1) over k intervals: the k-step recursion of mean and variance.
    let ar = Ar1 {
        intercept: 0.4,
        phi: 0.8,
        var: 0.25,
        pairs: 10,
    };
    let (mut m, mut v) = (3.0f64, 0.0f64);
    for k in 1..=5 {
        m = ar.intercept + ar.phi * m;
        v = ar.phi * ar.phi * v + ar.var;
        let g = ar.predict(3.0, f64::from(k)).unwrap();
        assert!((g.mean - m).abs() < 1e-12, "k {k}: {} vs {m}", g.mean);
        assert!(
            (g.sd * g.sd - v).abs() < 1e-12,
            "k {k}: {} vs {v}",
            g.sd * g.sd
        );
    }
    // The stationary form mu + phi^k (y - mu), variance s^2 (1 - phi^(2k)) / (1 - phi^2).
    let g = ar.predict(3.0, 2.5).unwrap();
    let mu = ar.mean().unwrap();
    let p = 0.8f64.powf(2.5);
    assert!((g.mean - (mu + p * (3.0 - mu))).abs() < 1e-12);
    assert!((g.sd * g.sd - 0.25 * (1.0 - p * p) / (1.0 - 0.64)).abs() < 1e-12);
    // phi = 1: a random walk with drift (mean y + k c, variance k s^2).
    let drift = Ar1 { phi: 1.0, ..ar };
    let g = drift.predict(3.0, 4.0).unwrap();
    assert!((g.mean - (3.0 + 4.0 * 0.4)).abs() < 1e-12);
    assert!((g.sd * g.sd - 4.0 * 0.25).abs() < 1e-12);
    // phi <= 0: whole steps (2.4 intervals are 2).
    let neg = Ar1 { phi: -0.5, ..ar };
    assert_eq!(
        neg.predict(3.0, 2.4).unwrap(),
        neg.predict(3.0, 2.0).unwrap()
    );
    assert_eq!(
        neg.predict(3.0, 0.2).unwrap(),
        neg.predict(3.0, 1.0).unwrap()
    );

    // The AR(1) fit uses only pairs one interval apart: the series above has two.
    let long_t: Vec<f64> = (0..8).map(|i| f64::from(i) * 10.0).collect();
    let long_y = [
        Some(1.0),
        Some(2.0),
        None,
        Some(4.0),
        Some(3.0),
        Some(5.0),
        None,
        Some(2.0),
    ];
    let fit = Ar1::fit(&long_t, &long_y, 10.0).unwrap();
    // Pairs: 1->2, 4->3 and 3->5 one interval apart; 2->4 and 5->2 two apart, left out.
    assert_eq!(fit.pairs, 3);
    let (x, z) = ([1.0, 4.0, 3.0], [2.0, 3.0, 5.0]);
    let (mx, mz) = (8.0 / 3.0, 10.0 / 3.0);
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let sxz: f64 = x.iter().zip(&z).map(|(a, b)| (a - mx) * (b - mz)).sum();
    let phi = sxz / sxx;
    assert!((fit.phi - phi).abs() < 1e-14);
    assert!((fit.intercept - (mz - phi * mx)).abs() < 1e-14);
}

#[test]
fn scoring_follows_missing_values() {
    // Row 3 is missing: row 4 is predicted from row 2, two intervals back.
    let t = [0.0, 1.0, 2.0, 3.0, 4.0];
    let y = [Some(0.0), Some(1.0), Some(0.0), None, Some(2.0)];
    let walk = Persistence { var: 1.0, pairs: 3 };
    let score = score_one_step(&walk, &t, &y, 1.0, 3..5).unwrap();
    assert_eq!(score.count(), 1);
    let g = Gaussian::new(0.0, 2f64.sqrt()).unwrap();
    assert_eq!(score.mean_crps(), g.crps(2.0));
    assert_eq!(score.coverage(), 1.0);
    // A row with nothing observed before it is not scored.
    let lone = score_one_step(&walk, &t, &y, 1.0, 0..1).unwrap();
    assert_eq!(lone.count(), 0);
    assert!(lone.mean_crps().is_nan());
}

#[test]
fn bad_input_gives_typed_errors() {
    let t = [0.0, 1.0, 2.0, 3.0, 4.0];
    let y = [Some(1.0), Some(2.0), Some(1.5), Some(3.0), Some(2.0)];
    // Too few pairs.
    assert!(matches!(
        Persistence::fit(&t[..2], &y[..2], 1.0),
        Err(Error::Length {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        Ar1::fit(&t[..3], &y[..3], 1.0),
        Err(Error::Length {
            expected: 3,
            found: 2,
            ..
        })
    ));
    let sparse = [Some(1.0), None, Some(2.0), None, Some(3.0)];
    assert!(matches!(
        Ar1::fit(&t, &sparse, 1.0),
        Err(Error::Length { found: 0, .. })
    ));
    // Non-finite values and times, times out of order, a bad unit, mismatched lengths.
    let nan = [Some(1.0), Some(2.0), Some(f64::NAN), Some(3.0), Some(2.0)];
    assert_eq!(
        Ar1::fit(&t, &nan, 1.0),
        Err(Error::NonFinite {
            what: "values",
            index: 2
        })
    );
    assert!(matches!(
        Persistence::fit(&t, &[Some(f64::INFINITY), None, None, None, None], 1.0),
        Err(Error::NonFinite { index: 0, .. })
    ));
    let bad_t = [0.0, 1.0, f64::NAN, 3.0, 4.0];
    assert!(matches!(
        Persistence::fit(&bad_t, &y, 1.0),
        Err(Error::NonFinite {
            what: "times",
            index: 2
        })
    ));
    let back = [0.0, 1.0, 1.0, 3.0, 4.0];
    assert!(matches!(
        Ar1::fit(&back, &y, 1.0),
        Err(Error::OutOfRange { .. })
    ));
    for unit in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            Ar1::fit(&t, &y, unit),
            Err(Error::OutOfRange { .. })
        ));
    }
    assert!(matches!(
        Persistence::fit(&t, &y[..4], 1.0),
        Err(Error::Length {
            expected: 5,
            found: 4,
            ..
        })
    ));
    // A series that does not vary: no AR(1) (persistence is exact: variance 0).
    let flat = [Some(2.0); 5];
    assert!(matches!(
        Ar1::fit(&t, &flat, 1.0),
        Err(Error::OutOfRange { .. })
    ));
    let still = Persistence::fit(&t, &flat, 1.0).unwrap();
    assert_eq!(still.var, 0.0);
    assert_eq!(still.predict(2.0, 1.0).unwrap().crps(2.5), 0.5);
    // Predictions and scores.
    let walk = Persistence::fit(&t, &y, 1.0).unwrap();
    assert!(matches!(
        walk.predict(f64::NAN, 1.0),
        Err(Error::NonFinite { .. })
    ));
    for gap in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            walk.predict(1.0, gap),
            Err(Error::OutOfRange { .. })
        ));
    }
    assert!(Gaussian::new(f64::NAN, 1.0).is_err());
    assert!(Gaussian::new(0.0, f64::INFINITY).is_err());
    assert!(matches!(
        Gaussian::new(0.0, -0.1),
        Err(Error::OutOfRange { .. })
    ));
    assert!(crps_gaussian(0.0, 1.0, f64::INFINITY).is_err());
    let mut score = OneStepScore::new();
    let g = Gaussian::new(0.0, 1.0).unwrap();
    score.add(&g, 0.5).unwrap();
    let before = score;
    assert!(score.add(&g, f64::NAN).is_err());
    assert_eq!(score, before);
    assert!(matches!(
        score_one_step(&walk, &t, &y, 1.0, 2..6),
        Err(Error::OutOfRange { .. })
    ));
}
