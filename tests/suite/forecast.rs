//! The streaming forecaster (`tinysde::forecast`): bit for bit the direct computation
//! (ensemble reset at each fully observed reading, then propagated with the solver), bad
//! readings and requests refused with the state unchanged, band and anomaly properties,
//! observation noise and latent state.

use crate::model_file::{nile_deployment, seeded_model, Seed, NILE};
use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile, Transform};
use tinysde::forecast::{Arrays, Check, Forecaster, Vecs};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{
    self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Solver, Sosri, TimeGrid,
};
use tinysde::train::ensemble_quantile;
use tinysde::{Error, ForecastError, WeightsError};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

type Seed2 = NeuralSde<
    (Cube<2>, Dense<2, 20, FastTanh>, Dense<20, 2, Identity>),
    (Dense<2, 20, FastSigmoid>, Dense<20, 2, Identity>),
>;

fn seeded_model2(seed: u64) -> Seed2 {
    let mut m = Seed2::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::GlorotUniform,
    )
    .unwrap();
    m
}

/// A Nile-like series at irregular times, with missing values.
fn series() -> Vec<(f64, Option<f64>)> {
    let mut out = Vec::new();
    let mut t = 1871.0;
    for i in 0..40u32 {
        let x = 900.0 + 150.0 * ((i as f64) * 0.7).sin() + 10.0 * (i % 3) as f64;
        let missing = i % 7 == 3 || i % 11 == 5 || i == 39;
        out.push((t, (!missing).then_some(x)));
        t += [1.0, 0.5, 2.0, 1.25][i as usize % 4];
    }
    out
}

/// The model file of the seed model on the Nile scaling, with `paths` and `levels`.
fn nile_file(paths: u32, levels: &[f32], noise: f32) -> Vec<u8> {
    let columns: &'static [Column<'static>] = Box::leak(Box::new([Column { noise, ..NILE[0] }]));
    let mut d = nile_deployment(columns);
    d.defaults = Defaults::new(paths, 0xC5F, levels).unwrap();
    file::to_vec(&seeded_model(7), &d).unwrap()
}

type F1<const N: usize, const T: usize> = Forecaster<Seed, Sosri, 1, 1, Arrays<1, N, T>>;

fn forecaster<const N: usize, const T: usize>(bytes: &[u8]) -> F1<N, T> {
    let f = ModelFile::parse(bytes).unwrap();
    Forecaster::new(Seed::default(), Sosri, &f, Arrays::new()).unwrap()
}

/// `[mean, q(levels)...]` of `samples` as the forecaster documents it (user units).
fn summary(col: &Column<'_>, levels: &[f32], samples: &mut [f32]) -> Vec<f64> {
    let q: Vec<f64> = levels
        .iter()
        .map(|&p| col.user_value(ensemble_quantile(samples, p).unwrap()))
        .collect();
    let m = samples.iter().map(|&v| f64::from(v)).sum::<f64>() / samples.len() as f64;
    let mut out = vec![col.user_value(m as f32)];
    out.extend(q);
    out
}

/// The direct computation (fit_csv's `predict_rows`): from each fully observed reading
/// `from`, an ensemble of `paths` started at its value, SOSRI through the following times up
/// to the next fully observed one (or the end), noise `Brownian(seed ^ from * φ)`. Returns
/// per time index its summary (mean then quantiles at `levels`), `None` before the first.
fn direct(
    times: &[f64],
    values: &[Option<f64>],
    paths: usize,
    levels: &[f32],
) -> Vec<Option<Vec<f64>>> {
    let col = NILE[0];
    let model = seeded_model(7);
    let taus: Vec<f32> = times.iter().map(|&t| ((t - 1871.0) / 1.0) as f32).collect();
    let mut out = vec![None; times.len()];
    let Some(mut from) = values.iter().position(Option::is_some) else {
        return out;
    };
    while from + 1 < times.len() {
        let mut to = from + 1;
        while to < values.len() && values[to].is_none() {
            to += 1;
        }
        let to = to.min(times.len() - 1);
        let saves = &taus[from + 1..=to];
        let n = saves.len();
        let grid = TimeGrid::with_max_step(taus[from], taus[to], 0.5).unwrap();
        let solver = Solver::new(Sosri, grid);
        let (mut mean, mut var, mut flat) = (
            vec![[0.0; 1]; n],
            vec![[0.0; 1]; n],
            vec![[0.0; 1]; n * paths],
        );
        let noise = Brownian::new(0xC5F ^ (from as u64).wrapping_mul(GOLDEN));
        let u0 = [col.model_value(values[from].unwrap()).unwrap()];
        solve::simulate_into(
            &solver,
            &model,
            &noise,
            &EnsembleRequest::new(u0, paths, saves),
            EnsembleBuffers {
                mean: &mut mean,
                variance: &mut var,
                paths: Some(&mut flat),
            },
        )
        .unwrap();
        for i in 0..n {
            let mut samples: Vec<f32> = (0..paths).map(|m| flat[m * n + i][0]).collect();
            out[from + 1 + i] = Some(summary(&col, levels, &mut samples));
        }
        from = to;
    }
    out
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn readings_and_forecasts_equal_the_direct_ensemble_computation_bit_for_bit() {
    const N: usize = 32;
    let levels = [0.05, 0.5, 0.95];
    let bytes = nile_file(N as u32, &levels, 0.0);
    let mut f: F1<N, 16> = forecaster(&bytes);
    let data = series();
    let horizons = [data[39].0 + 0.5, data[39].0 + 1.0, data[39].0 + 3.0];
    let mut times: Vec<f64> = data.iter().map(|r| r.0).collect();
    let mut values: Vec<Option<f64>> = data.iter().map(|r| r.1).collect();
    times.extend(horizons);
    values.extend([None; 3]);
    let expected = direct(&times, &values, N, &[0.05, 0.95]);
    let expected_forecast = direct(&times, &values, N, &levels);
    let mut checked = 0;
    for (i, &(t, x)) in data.iter().enumerate() {
        let mut checks = [Check::default()];
        let outcome = f.observe_checked(t, &[x], &mut checks).unwrap();
        assert_eq!(outcome.updated, x.is_some(), "reading {i}");
        match (&expected[i], x) {
            (Some(e), Some(x)) => {
                assert_eq!(outcome.checked, 1, "reading {i}");
                let c = checks[0];
                assert_eq!(bits(&[c.mean, c.lower, c.upper]), bits(e), "reading {i}");
                assert_eq!(c.outside, x < c.lower || x > c.upper);
                assert_eq!(outcome.outside, c.outside as u32);
                checked += 1;
            }
            _ => assert_eq!(outcome.checked, 0, "reading {i}"),
        }
        assert_eq!(f.readings(), i as u64 + 1);
        assert_eq!(f.last_time(), Some(t));
    }
    assert!(checked > 25);
    // The data end with a missing reading: the forecast continues that segment.
    assert!(data[39].1.is_none());
    let mut out = [0.0f64; 3 * 4];
    f.forecast(&horizons, &mut out).unwrap();
    for j in 0..3 {
        let e = expected_forecast[40 + j].as_ref().unwrap();
        assert_eq!(bits(&out[j * 4..(j + 1) * 4]), bits(e), "horizon {j}");
        assert!(out[j * 4 + 1] <= out[j * 4 + 2] && out[j * 4 + 2] <= out[j * 4 + 3]);
    }
    // Forecasting changes nothing: the same request gives the same bits.
    let mut again = [0.0f64; 12];
    f.forecast(&horizons, &mut again).unwrap();
    assert_eq!(bits(&out), bits(&again));
    // A replay from the same file and readings gives the same bits (the ensemble at the
    // anchor included).
    let mut g: F1<N, 16> = forecaster(&bytes);
    for &(t, x) in &data {
        g.observe(t, &[x]).unwrap();
    }
    assert_eq!(f.ensemble(), g.ensemble());
    g.forecast(&horizons, &mut again).unwrap();
    assert_eq!(bits(&out), bits(&again));
}

#[test]
fn a_fully_observed_exact_reading_resets_every_member() {
    let bytes = nile_file(16, &[0.05, 0.5, 0.95], 0.0);
    let mut f: F1<16, 4> = forecaster(&bytes);
    assert!(f.ensemble().is_none());
    assert_eq!(
        f.forecast(&[1872.0], &mut [0.0; 4]).unwrap_err(),
        Error::Forecast(ForecastError::NoState)
    );
    // A missing first reading sets nothing.
    assert!(!f.observe(1870.0, &[None]).unwrap().updated);
    assert!(f.ensemble().is_none());
    f.observe(1871.0, &[Some(1000.0)]).unwrap();
    let z = NILE[0].model_value(1000.0).unwrap();
    assert!(f.ensemble().unwrap().iter().all(|u| u[0] == z));
    f.observe(1872.5, &[Some(800.0)]).unwrap();
    let z = NILE[0].model_value(800.0).unwrap();
    assert!(f.ensemble().unwrap().iter().all(|u| u[0] == z));
}

/// What a forecaster's state determines, as bits: its ensemble at the anchor, its reading
/// count and last time, and the forecast it gives (from a clone: a forecast changes no
/// state) two and ten time units after its last reading, which also depends on the
/// readings pending since the anchor. (The working buffers are scratch space.)
fn state<M, Meth, const D: usize, const C: usize, B>(
    f: &Forecaster<M, Meth, D, C, B>,
) -> (Vec<[u32; D]>, u64, Option<u64>, Vec<u64>)
where
    Forecaster<M, Meth, D, C, B>: Clone,
    M: tinysde::sde::Sde<f32, D> + tinysde::weights::Describe,
    Meth: tinysde::solve::Step<f32, M, D>,
    B: tinysde::forecast::Buffers<D>,
{
    let ensemble = f
        .ensemble()
        .map(|e| e.iter().map(|u| u.map(f32::to_bits)).collect())
        .unwrap_or_default();
    let last = f.last_time();
    let mut probe = f.clone();
    let mut out = vec![0.0f64; 2 * C * probe.values_per_column()];
    let forecast = match last {
        Some(t) if probe.forecast(&[t + 2.0, t + 10.0], &mut out).is_ok() => bits(&out),
        _ => Vec::new(),
    };
    (ensemble, f.readings(), last.map(f64::to_bits), forecast)
}

#[test]
fn bad_readings_and_requests_leave_the_state_bit_identical() {
    let bytes = nile_file(16, &[0.05, 0.5, 0.95], 0.0);
    let mut f: F1<16, 3> = forecaster(&bytes);
    f.observe(1871.0, &[Some(1000.0)]).unwrap();
    f.observe(1872.0, &[None]).unwrap();
    f.observe(1873.0, &[Some(950.0)]).unwrap();
    f.observe(1874.0, &[None]).unwrap();
    let before = state(&f);
    let reference = f.clone();
    let bad: &[(f64, Option<f64>, ForecastError)] = &[
        (1875.0, Some(f64::NAN), ForecastError::BadValue(0)),
        (1875.0, Some(f64::INFINITY), ForecastError::BadValue(0)),
        (1875.0, Some(f64::NEG_INFINITY), ForecastError::BadValue(0)),
        (1875.0, Some(1e300 * 1e10), ForecastError::BadValue(0)),
        // Finite in f64, not in f32 once scaled.
        (1875.0, Some(1e300), ForecastError::BadValue(0)),
        (1874.0, Some(900.0), ForecastError::TimeOrder),
        (1873.5, Some(900.0), ForecastError::TimeOrder),
        (1800.0, None, ForecastError::TimeOrder),
        (f64::NAN, Some(900.0), ForecastError::BadTime),
        (f64::INFINITY, Some(900.0), ForecastError::BadTime),
        // After the last reading in f64, the same model time in f32.
        (1874.0 + 1e-9, Some(900.0), ForecastError::BadTime),
        // Beyond f32's range in model time.
        (1e300, Some(900.0), ForecastError::BadTime),
    ];
    for &(t, x, e) in bad {
        let mut checks = [Check {
            mean: -1.0,
            ..Check::default()
        }];
        assert_eq!(
            f.observe_checked(t, &[x], &mut checks).unwrap_err(),
            Error::Forecast(e),
            "t = {t}, x = {x:?}"
        );
        assert_eq!(checks[0].mean, -1.0);
        assert_eq!(state(&f), before, "t = {t}, x = {x:?}");
    }
    // A checks buffer of the wrong length.
    assert_eq!(
        f.observe_checked(1875.0, &[Some(900.0)], &mut [Check::default(); 2])
            .unwrap_err(),
        Error::Forecast(ForecastError::Output)
    );
    assert_eq!(state(&f), before);
    // Forecast requests beyond the memory or malformed: typed errors, `out` untouched.
    let sentinel = -7.5f64;
    let cases: &[(&[f64], usize, Error)] = &[
        // 1 pending reading + 3 horizons > 3 times.
        (
            &[1875.0, 1876.0, 1877.0],
            12,
            Error::Forecast(ForecastError::Capacity {
                capacity: 3,
                needed: 4,
            }),
        ),
        (&[1875.0], 3, Error::Forecast(ForecastError::Output)),
        (&[1874.0], 4, Error::Forecast(ForecastError::TimeOrder)),
        (
            &[1876.0, 1875.0],
            8,
            Error::Forecast(ForecastError::TimeOrder),
        ),
        (&[f64::NAN], 4, Error::Forecast(ForecastError::BadTime)),
        (
            &[1875.0, f64::INFINITY],
            8,
            Error::Forecast(ForecastError::BadTime),
        ),
    ];
    for (horizons, len, e) in cases {
        let mut out = vec![sentinel; *len];
        assert_eq!(
            &f.forecast(horizons, &mut out).unwrap_err(),
            e,
            "{horizons:?}"
        );
        assert!(out.iter().all(|&v| v == sentinel));
        assert_eq!(state(&f), before);
    }
    // Afterwards it behaves as if nothing had happened, bit for bit.
    let mut g = reference;
    for (t, x) in [(1875.0, Some(990.0)), (1876.5, None), (1877.0, Some(700.0))] {
        assert_eq!(f.observe(t, &[x]).unwrap(), g.observe(t, &[x]).unwrap());
    }
    let (mut a, mut b) = ([0.0f64; 8], [0.0f64; 8]);
    f.forecast(&[1878.0, 1880.0], &mut a).unwrap();
    g.forecast(&[1878.0, 1880.0], &mut b).unwrap();
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn a_diverging_ensemble_is_an_error_and_changes_nothing() {
    // A drift near f32::MAX: the state overflows within a few steps.
    let mut model = seeded_model(7);
    model.drift.2.bias[0] = 1.7e38;
    let d = nile_deployment(&NILE);
    let bytes = file::to_vec(&model, &d).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let mut f: F1<8, 4> = Forecaster::new(Seed::default(), Sosri, &file, Arrays::new()).unwrap();
    f.observe(1871.0, &[Some(1000.0)]).unwrap();
    let before = state(&f);
    let e = f.observe(1881.0, &[Some(900.0)]).unwrap_err();
    assert!(matches!(e, Error::Diverged { .. }), "{e:?}");
    assert_eq!(state(&f), before);
    let mut out = [1.0f64; 4];
    assert!(matches!(
        f.forecast(&[1890.0], &mut out).unwrap_err(),
        Error::Diverged { .. }
    ));
    assert_eq!(out, [1.0; 4]);
}

#[test]
fn missing_readings_fill_the_time_buffer_then_move_the_anchor() {
    let bytes = nile_file(8, &[0.05, 0.5, 0.95], 0.0);
    let mut f: F1<8, 2> = forecaster(&bytes);
    f.observe(1871.0, &[Some(1000.0)]).unwrap();
    let first = f.ensemble().unwrap().to_vec();
    f.observe(1872.0, &[None]).unwrap();
    // One pending time; with the buffer of 2, one horizon fits, two do not.
    f.forecast(&[1873.0], &mut [0.0; 4]).unwrap();
    assert!(matches!(
        f.forecast(&[1873.0, 1874.0], &mut [0.0; 8]).unwrap_err(),
        Error::Forecast(ForecastError::Capacity { .. })
    ));
    assert_eq!(f.ensemble().unwrap(), &first[..]);
    // The second missing reading fills the buffer: the ensemble there becomes the anchor.
    f.observe(1873.0, &[None]).unwrap();
    let moved = f.ensemble().unwrap().to_vec();
    assert_ne!(moved, first);
    assert!(moved.iter().all(|u| u[0].is_finite()));
    f.forecast(&[1874.0, 1875.0], &mut [0.0; 8]).unwrap();
}

#[test]
fn bands_are_ordered_and_a_surprise_is_flagged() {
    let levels = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
    let bytes = nile_file(64, &levels, 0.0);
    let mut f: F1<64, 8> = forecaster(&bytes);
    let v = f.values_per_column();
    assert_eq!(v, 8);
    for &(t, x) in series().iter().take(10) {
        f.observe(t, &[x]).unwrap();
    }
    let t = f.last_time().unwrap();
    let horizons = [t + 0.5, t + 1.0, t + 2.0, t + 4.0, t + 8.0];
    let mut out = vec![0.0f64; horizons.len() * v];
    f.forecast(&horizons, &mut out).unwrap();
    let mut visited = 0;
    f.forecast_with(&horizons, |j, c, samples, summary| {
        assert_eq!(c, 0);
        assert_eq!(bits(summary), bits(&out[j * v..(j + 1) * v]));
        // Quantiles increase, each is a quantile of the (sorted) samples, and the mean
        // lies within their range.
        assert!(summary.iter().all(|x| x.is_finite()));
        assert!(summary[1..].windows(2).all(|w| w[0] <= w[1]), "{summary:?}");
        assert!(samples.windows(2).all(|w| w[0] <= w[1]));
        let (lo, hi) = (samples[0], samples[samples.len() - 1]);
        assert!(NILE[0].user_value(lo) <= summary[0] && summary[0] <= NILE[0].user_value(hi));
        for (k, &p) in levels.iter().enumerate() {
            let mut copy = samples.to_vec();
            let q = NILE[0].user_value(ensemble_quantile(&mut copy, p).unwrap());
            assert_eq!(q.to_bits(), summary[1 + k].to_bits());
        }
        visited += 1;
    })
    .unwrap();
    assert_eq!(visited, horizons.len());
    // The band widens with the horizon here (diffusion, no mean reversion that fast).
    assert!(out[4 * v + 7] - out[4 * v + 1] > out[7] - out[1]);
    // The predicted band of the next reading: a value at the median is inside, a value far
    // away is flagged with a large z.
    let t_next = t + 1.0;
    let mut probe = f.clone();
    let mut med = [0.0f64; 8];
    probe.forecast(&[t_next], &mut med).unwrap();
    let mut checks = [Check::default()];
    let o = probe
        .observe_checked(t_next, &[Some(med[4])], &mut checks)
        .unwrap();
    assert_eq!((o.checked, o.outside), (1, 0));
    assert!(!checks[0].outside && checks[0].z.abs() < 1.0);
    assert_eq!(checks[0].lower.to_bits(), med[1].to_bits());
    assert_eq!(checks[0].upper.to_bits(), med[7].to_bits());
    let far = med[7] + 10.0 * (med[7] - med[1]) + 1.0;
    let o = f
        .observe_checked(t_next, &[Some(far)], &mut checks)
        .unwrap();
    assert_eq!((o.checked, o.outside), (1, 1));
    assert!(checks[0].outside && checks[0].z > 5.0);
    assert!(o.updated);
}

#[test]
fn observation_noise_widens_the_band_and_keeps_a_spread_after_an_update() {
    let levels = [0.05, 0.5, 0.95];
    let exact = nile_file(200, &levels, 0.0);
    let noisy = nile_file(200, &levels, 0.5);
    let mut e: F1<200, 4> = forecaster(&exact);
    let mut n: F1<200, 4> = forecaster(&noisy);
    for (t, x) in [(1871.0, Some(1000.0)), (1872.0, Some(950.0))] {
        e.observe(t, &[x]).unwrap();
        n.observe(t, &[x]).unwrap();
    }
    // Exact observation: every member at the reading. Noisy: a spread about it.
    assert!(e
        .ensemble()
        .unwrap()
        .iter()
        .all(|u| u[0] == e.ensemble().unwrap()[0][0]));
    let members: Vec<f32> = n.ensemble().unwrap().iter().map(|u| u[0]).collect();
    let mean = members.iter().sum::<f32>() / 200.0;
    let sd = (members.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / 200.0).sqrt();
    assert!(sd > 0.05 && sd < 0.5, "posterior sd {sd}");
    // The posterior sits between the prior and the reading: closer to the reading than
    // the observation noise alone would allow.
    let z = NILE[0].model_value(950.0).unwrap();
    assert!((mean - z).abs() < 0.5, "{mean} vs {z}");
    let (mut a, mut b) = ([0.0f64; 4], [0.0f64; 4]);
    e.forecast(&[1873.0], &mut a).unwrap();
    n.forecast(&[1873.0], &mut b).unwrap();
    assert!(b[3] - b[1] > a[3] - a[1], "noisy band {b:?} vs exact {a:?}");
}

#[test]
fn a_latent_coordinate_moves_with_its_regression_on_the_observed_one() {
    // A 2-D state of which coordinate 1 is observed, exactly; coordinate 0 is latent.
    let columns = [Column {
        name: "y",
        transform: Transform::Affine,
        mean: 0.0,
        std: 1.0,
        state_index: 1,
        noise: 0.0,
    }];
    let d = Deployment {
        state_dim: 2,
        columns: &columns,
        ..nile_deployment(&NILE)
    };
    let model = seeded_model2(3);
    let bytes = file::to_vec(&model, &d).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let mut f: Forecaster<Seed2, Sosri, 2, 1, Vecs<2>> =
        Forecaster::new(Seed2::default(), Sosri, &file, Vecs::new(300, 4)).unwrap();
    f.observe(1871.0, &[Some(0.3)]).unwrap();
    // The first reading: observed coordinate set, latent one at 0.
    assert!(f.ensemble().unwrap().iter().all(|u| u == &[0.0, 0.3]));
    f.observe(1873.0, &[Some(0.8)]).unwrap();
    let post = f.ensemble().unwrap();
    assert!(post.iter().all(|u| u[1] == 0.8));
    assert!(post.iter().all(|u| u[0].is_finite()));
    // The latent coordinate kept a spread (it was not reset), and varies across members.
    let first = post[0][0];
    assert!(post.iter().any(|u| u[0] != first));
}

#[test]
fn a_log_column_stays_positive() {
    let columns = [Column {
        name: "count",
        transform: Transform::Log,
        mean: 2.0,
        std: 1.5,
        state_index: 0,
        noise: 0.0,
    }];
    let d = Deployment {
        columns: &columns,
        ..nile_deployment(&NILE)
    };
    let bytes = file::to_vec(&seeded_model(2), &d).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let mut f: F1<64, 8> = Forecaster::new(Seed::default(), Sosri, &file, Arrays::new()).unwrap();
    for (t, x) in [(1871.0, 3.0), (1872.0, 0.5), (1873.0, 12.0)] {
        f.observe(t, &[Some(x)]).unwrap();
    }
    let before = state(&f);
    for x in [0.0, -1.0] {
        assert_eq!(
            f.observe(1874.0, &[Some(x)]).unwrap_err(),
            Error::Forecast(ForecastError::BadValue(0))
        );
    }
    assert_eq!(state(&f), before);
    let mut out = [0.0f64; 4 * 4];
    f.forecast(&[1874.0, 1876.0, 1880.0, 1890.0], &mut out)
        .unwrap();
    for row in out.chunks(4) {
        assert!(row.iter().all(|&x| x > 0.0 && x.is_finite()), "{row:?}");
        assert!(row[1] <= row[2] && row[2] <= row[3]);
    }
}

#[test]
fn the_file_must_describe_the_forecasters_type() {
    let bytes = nile_file(16, &[0.05, 0.5, 0.95], 0.0);
    let file = ModelFile::parse(&bytes).unwrap();
    // Another method than the file's.
    let e = Forecaster::<Seed, EulerMaruyama, 1, 1, Arrays<1, 4, 4>>::new(
        Seed::default(),
        EulerMaruyama,
        &file,
        Arrays::new(),
    )
    .unwrap_err();
    assert_eq!(e, Error::Weights(WeightsError::ShapeMismatch));
    // Another model type (2-D): description and dimension differ.
    let e = Forecaster::<Seed2, Sosri, 2, 1, Arrays<2, 4, 4>>::new(
        Seed2::default(),
        Sosri,
        &file,
        Arrays::new(),
    )
    .unwrap_err();
    assert_eq!(e, Error::Weights(WeightsError::ShapeMismatch));
    // A version 1 file has no scaling.
    let v1 = tinysde::weights::to_vec(&seeded_model(7)).unwrap();
    let e = Forecaster::<Seed, Sosri, 1, 1, Arrays<1, 4, 4>>::new(
        Seed::default(),
        Sosri,
        &ModelFile::parse(&v1).unwrap(),
        Arrays::new(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::Weights(WeightsError::MissingSection(file::tag::STATE))
    );
    // Buffers without members or times.
    let e = Forecaster::<Seed, Sosri, 1, 1, Arrays<1, 0, 4>>::new(
        Seed::default(),
        Sosri,
        &file,
        Arrays::new(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Length { .. }));
    let e = Forecaster::<Seed, Sosri, 1, 1, Vecs<1>>::new(
        Seed::default(),
        Sosri,
        &file,
        Vecs::new(4, 0),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Length { .. }));
}

#[test]
fn a_seed_sized_forecaster_with_32_paths_fits_in_a_few_kilobytes() {
    // The firmware's configuration: seed model, SOSRI, 32 paths, 4 times.
    let size = core::mem::size_of::<F1<32, 4>>();
    println!("size_of Forecaster<Seed, Sosri, 1, 1, Arrays<1, 32, 4>> = {size} bytes");
    let model = core::mem::size_of::<Seed>();
    // The model's parameters, 3 x 32 floats of buffers, 4 times, and a few words.
    assert!(size >= model + 4 * (3 * 32 + 4));
    assert!(size <= model + 4 * (3 * 32 + 4) + 600, "{size}");
}
