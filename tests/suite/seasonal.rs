//! The seasonal neural SDE (`tinysde::sde::Seasonal`): its series-loss gradient against
//! finite differences with common random numbers and reverse = forward; the periods are
//! carried but not trained; the model file round trip; the streaming forecaster on it bit for
//! bit the direct ensemble at absolute model times; fit_csv's `--period` (a seasonal series
//! is forecast better with it; bad periods refused).

use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile, SolverSpec};
use tinysde::forecast::file::{TimeAxis, TimeFormat, Transform};
use tinysde::forecast::{Arrays, Forecaster};
use tinysde::grad::{loss_and_gradient, Forward, Reverse, Scratch, SeriesWindows};
use tinysde::nn::{Dense, Identity, InitScheme, Parameters, QuickSigmoid, QuickTanh};
use tinysde::noise::Brownian;
use tinysde::sde::{NeuralSde, Sde, Seasonal};
use tinysde::solve::TimeGrid;
use tinysde::solve::{self, Checkpoints, EnsembleBuffers, EnsembleRequest, Solver, Sosri};
use tinysde::train::{series_loss_value, Series, SeriesObjective, SeriesProblem};
use tinysde::{Dual, Error, Real, WeightsError};

/// One state coordinate, one period: networks on 1 + 2 inputs.
type Model = Seasonal<
    1,
    (Dense<3, 6, QuickTanh>, Dense<6, 1, Identity>),
    (Dense<3, 5, QuickSigmoid>, Dense<5, 1, Identity>),
>;
const P: usize = Model::PARAMS;

fn model(seed: u64, period: f32) -> Model {
    let mut m = Model::default();
    m.set_periods([period]).unwrap();
    tinysde::nn::init(
        &mut m,
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::Uniform { limit: 0.7 },
    )
    .unwrap();
    m
}

/// A seasonal series at model times 40, 40.5, ... (not starting at 0: the features must
/// see the absolute time).
fn series() -> (Vec<f32>, Vec<[f32; 1]>) {
    let times: Vec<f32> = (0..24).map(|i| 40.0 + 0.5 * i as f32).collect();
    let values = times
        .iter()
        .map(|&t| [(core::f32::consts::TAU * t / 6.0).sin() + 0.1 * (t * 3.1).cos()])
        .collect();
    (times, values)
}

#[test]
fn the_gradient_matches_finite_differences_and_reverse_equals_forward() {
    let (times, values) = series();
    let series = Series::new(&times, &values).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.25, 8)
        .unwrap()
        .with_window(3)
        .unwrap()
        .with_objective(SeriesObjective::GaussianNll { var_floor: 1e-4 })
        .unwrap();
    let m = model(3, 6.0);
    let noise = Brownian::new(11);
    let batch = problem.batch(4);
    let mut stats = vec![[Dual::<8>::ZERO; 1]; problem.stats_len()];
    let mut g_fwd = [0.0f32; P];
    let l_fwd = loss_and_gradient(
        &SeriesWindows::new(&problem, &noise, batch),
        &m,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut g_fwd,
    )
    .unwrap();
    let mut tape = vec![[0.0f32; 1]; problem.reverse_tape_len_keep_all(P, Checkpoints::All)];
    let mut g_rev = [0.0f32; P];
    let l_rev = loss_and_gradient(
        &SeriesWindows::new(&problem, &noise, batch),
        &m,
        Reverse(Checkpoints::All),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut g_rev,
    )
    .unwrap();
    assert_eq!(l_rev.to_bits(), l_fwd.to_bits(), "the same loss bits");
    let scale = g_fwd.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    assert!(scale > 1e-2, "degenerate: gradient ~0");
    for (i, (r, f)) in g_rev.iter().zip(&g_fwd).enumerate() {
        assert!((r - f).abs() <= 1e-5 * (f.abs() + scale), "{i}: {r} vs {f}");
    }
    // The period is carried, not trained: zero gradient in both modes.
    assert_eq!((g_fwd[0], g_rev[0]), (0.0, 0.0));

    // Central differences of the loss with the same noise and windows (common random
    // numbers), in f64 around the f32 loss, for a spread of parameters.
    let mut plain = vec![[0.0f32; 1]; problem.stats_len()];
    let mut params = [0.0f32; P];
    m.read_params(&mut params).unwrap();
    let loss_at = |p: &[f32; P], plain: &mut Vec<[f32; 1]>| {
        let mut q = Model::default();
        q.write_params(p).unwrap();
        f64::from(series_loss_value(&problem, &q, &noise, batch, plain).unwrap())
    };
    let mut checked = 0;
    for j in (1..P).step_by(5) {
        let h = 2e-3f32;
        let (mut up, mut down) = (params, params);
        up[j] += h;
        down[j] -= h;
        let fd =
            (loss_at(&up, &mut plain) - loss_at(&down, &mut plain)) / f64::from(up[j] - down[j]);
        let g = f64::from(g_rev[j]);
        assert!(
            (fd - g).abs() <= 2e-2 * (g.abs() + f64::from(scale)),
            "parameter {j}: finite difference {fd}, reverse {g}"
        );
        checked += 1;
    }
    assert!(checked >= 8);
}

#[test]
fn the_features_are_sin_and_cos_of_the_absolute_phase() {
    let m = model(1, 12.0);
    let [[s, c]] = m.features(3.0);
    assert!((s - 1.0).abs() < 1e-6 && c.abs() < 1e-6);
    // One cycle later: the same bits (the phase is reduced to one cycle first).
    assert_eq!(m.features(15.0), m.features(3.0));
    assert_eq!(m.features(1203.0), m.features(3.0));
    // The drift differs across the cycle at the same state.
    let u = [0.3f32];
    let a = m.drift(0.0, &u, tinysde::nn::ParamSeed::NONE);
    let b = m.drift(6.0, &u, tinysde::nn::ParamSeed::NONE);
    assert_ne!(a, b);
    // Bad periods are refused and change nothing.
    let mut n = m;
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            n.set_periods([bad]),
            Err(Error::OutOfRange { .. })
        ));
        assert!(Model::new([bad], m.drift, m.diffusion).is_err());
    }
    assert_eq!(n, m);
}

fn deployment<'a>(columns: &'a [Column<'a>]) -> Deployment<'a> {
    Deployment {
        state_dim: 1,
        columns,
        time: TimeAxis {
            name: "month",
            format: TimeFormat::Number,
            t0: 100.0,
            unit: 2.0,
        },
        solver: SolverSpec {
            method: "SOSRI",
            max_step: 0.5,
        },
        defaults: Defaults::new(16, 0xC5F, &[0.05, 0.5, 0.95]).unwrap(),
        trends: &[],
        seasonal_lag: 0,
    }
}

const COLUMN: Column<'static> = Column {
    name: "x",
    transform: Transform::Affine,
    mean: 5.0,
    std: 2.0,
    state_index: 0,
    noise: 0.0,
};

#[test]
fn a_model_file_carries_the_periods_and_round_trips() {
    let m = model(5, 7.25);
    let bytes = file::to_vec(&m, &deployment(&[COLUMN])).unwrap();
    let view = ModelFile::parse(&bytes).unwrap();
    assert_eq!(
        view.model().description_str(),
        Some("seasonal(1,chain(dense(3,6,quick_tanh),dense(6,1,identity)),chain(dense(3,5,quick_sigmoid),dense(5,1,identity)))")
    );
    let mut back = Model::default();
    view.load_into(&mut back).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.periods(), &[7.25]);
    // The period is the first parameter of the MODL section (little-endian f32).
    let at = bytes
        .windows(4)
        .position(|w| w == 7.25f32.to_le_bytes())
        .unwrap();
    assert!(at > 16);
    // A plain neural SDE of the same networks' sizes refuses the file.
    type Plain = NeuralSde<
        (Dense<1, 6, QuickTanh>, Dense<6, 1, Identity>),
        (Dense<1, 5, QuickSigmoid>, Dense<5, 1, Identity>),
    >;
    let mut plain = Plain::default();
    assert_eq!(
        view.load_into(&mut plain),
        Err(Error::Weights(WeightsError::ShapeMismatch))
    );
}

#[test]
fn the_forecaster_equals_the_direct_ensemble_at_absolute_times_bit_for_bit() {
    const N: usize = 16;
    let m = model(9, 5.0);
    let bytes = file::to_vec(&m, &deployment(&[COLUMN])).unwrap();
    let view = ModelFile::parse(&bytes).unwrap();
    let mut f: Forecaster<Model, Sosri, 1, 1, Arrays<1, N, 4>> =
        Forecaster::new(Model::default(), Sosri, &view, Arrays::new()).unwrap();
    // User times 110, 113 -> model times 5, 6.5; the forecast to 116 -> 8.
    f.observe(110.0, &[Some(6.0)]).unwrap();
    let z0 = COLUMN.model_value(6.0).unwrap();
    let mut out = [0.0f64; 4];
    let mut samples_seen = Vec::new();
    f.forecast_with(&[116.0], |_, _, samples, _| {
        samples_seen = samples.to_vec();
    })
    .unwrap();
    f.forecast(&[116.0], &mut out).unwrap();
    // Direct: the ensemble from model time 5 to 8, noise of reading 0.
    let direct = |t0: f32, t1: f32| {
        let solver = Solver::new(Sosri, TimeGrid::with_max_step(t0, t1, 0.5).unwrap());
        let (mut mean, mut var, mut flat) = ([[0.0f32; 1]], [[0.0f32; 1]], vec![[0.0f32; 1]; N]);
        solve::simulate_into(
            &solver,
            &m,
            &Brownian::new(0xC5F),
            &EnsembleRequest::new([z0], N, &[t1]),
            EnsembleBuffers {
                mean: &mut mean,
                variance: &mut var,
                paths: Some(&mut flat),
            },
        )
        .unwrap();
        let mut v: Vec<f32> = flat.iter().map(|u| u[0]).collect();
        v.sort_by(f32::total_cmp);
        v
    };
    let expected = direct(5.0, 8.0);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&samples_seen), bits(&expected));
    let mean = expected.iter().map(|&v| f64::from(v)).sum::<f64>() / N as f64;
    assert_eq!(out[0].to_bits(), COLUMN.user_value(mean as f32).to_bits());
    // The same ensemble started at model time 0 (a window-relative clock) differs: the
    // forecaster's time is absolute.
    assert_ne!(bits(&direct(0.0, 3.0)), bits(&expected));
}

mod fit_csv_period {
    use crate::examples::{fit_csv, fit_csv_settings as settings_of, temp_dir};

    #[test]
    fn bad_periods_are_command_line_errors() {
        for bad in ["0", "-3", "nan", "inf", "1e400", "12x", "", "0y", "-1d"] {
            let e = settings_of(&[&format!("--period={bad}")]).unwrap_err();
            assert!(e.starts_with(&format!("--period {bad}:")), "{bad}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        // A negative number after a space is the option's value, not an unknown flag.
        for (flag, value) in [("--period", "-3"), ("--lr", "-1"), ("--var-floor", "-1")] {
            let e = settings_of(&[flag, value]).unwrap_err();
            assert!(
                e.starts_with(&format!("{flag} {value}:")),
                "{flag} {value}: {e}"
            );
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let e = settings_of(&["--period", "1", "--period", "2", "--period", "3"]).unwrap_err();
        assert!(e.contains("at most 2"), "{e}");
        let s = settings_of(&["--period", "12", "--period", "1w"]).unwrap();
        assert_eq!(s.periods, [(12.0, false), (604_800.0, true)]);
        // With a saved model the periods are the file's.
        assert!(settings_of(&["--period", "12", "--model", "m.tsm"]).is_err());
    }

    /// A monthly-like series with a 12-step season and a little scatter.
    fn seasonal_csv(rows: usize) -> String {
        let mut s = String::from("t,x\n");
        let mut r = 12345u64;
        for i in 0..rows {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let e = ((r >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
            let x = 10.0 + 3.0 * (std::f64::consts::TAU * i as f64 / 12.0).sin() + 0.6 * e;
            s.push_str(&format!("{i},{x:.4}\n"));
        }
        s
    }

    #[test]
    fn a_period_improves_the_held_out_forecast_of_a_seasonal_series() {
        let dir = temp_dir("seasonal");
        let path = dir.join("season.csv");
        std::fs::write(&path, seasonal_csv(180)).unwrap();
        let plain = fit_csv::Settings {
            iterations: 150,
            eval_trajectories: 100,
            holdout: 36,
            detect_period: false,
            ..fit_csv::Settings::default()
        };
        let seasonal = fit_csv::Settings {
            periods: vec![(12.0, false)],
            ..plain.clone()
        };
        let a = fit_csv::run(&path, &plain, &dir.join("plain"), false).unwrap();
        let b = fit_csv::run(&path, &seasonal, &dir.join("seasonal"), false).unwrap();
        assert!(
            b.holdout_crps[0] < 0.8 * a.holdout_crps[0],
            "with the period {:?}, without {:?}",
            b.holdout_crps,
            a.holdout_crps
        );
        // The saved seasonal model forecasts the same bits without training.
        let again = fit_csv::Settings {
            start: fit_csv::Start::Forecast(dir.join("seasonal/fit_csv.tsm")),
            ..plain.clone()
        };
        let c = fit_csv::run(&path, &again, &dir.join("again"), false).unwrap();
        assert_eq!(c.holdout_crps, b.holdout_crps);
        // A unit suffix needs dates: a data error, nothing written.
        let suffix = fit_csv::Settings {
            periods: vec![(86_400.0, true)],
            ..plain.clone()
        };
        let e = fit_csv::run(&path, &suffix, &dir.join("none"), false).unwrap_err();
        assert!(e.contains("without a suffix"), "{e}");
        assert!(!dir.join("none").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `n` values of a pseudo-random generator, uniform in [-0.5, 0.5).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut r = seed;
        (0..n)
            .map(|_| {
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((r >> 33) as f64 / (1u64 << 31) as f64) - 0.5
            })
            .collect()
    }

    fn detect(values: &[f64]) -> Option<fit_csv::Detected> {
        let times: Vec<f64> = (0..values.len()).map(|i| 2.0 * i as f64).collect();
        let values: Vec<Option<f64>> = values.iter().map(|&x| Some(x)).collect();
        fit_csv::detect_period(&times, &values)
    }

    #[test]
    fn detection_finds_the_period_of_a_season_and_none_in_noise_or_a_random_walk() {
        // A 12-row season with scatter and a trend (times spaced by 2: period 24).
        let e = noise(240, 3);
        let season: Vec<f64> = (0..240)
            .map(|i| {
                let phase = std::f64::consts::TAU * i as f64 / 12.0;
                0.05 * i as f64 + 3.0 * phase.sin() + 0.6 * e[i]
            })
            .collect();
        let d = detect(&season).expect("a period");
        assert!((d.lags - 12.0).abs() < 0.2, "{d:?}");
        assert!((d.period - 24.0).abs() < 0.4, "{d:?}");
        // A 7.5-row cycle: not a whole number of rows.
        let cycle: Vec<f64> = (0..300)
            .map(|i| (std::f64::consts::TAU * i as f64 / 7.5).sin() + 0.3 * e[i % 240])
            .collect();
        let d = detect(&cycle).expect("a period");
        assert!((d.lags - 7.5).abs() < 0.3, "{d:?}");
        // White noise and random walks of several seeds and lengths: none.
        for seed in 1..=20 {
            for n in [40, 100, 400] {
                let white = noise(n, seed);
                assert_eq!(detect(&white), None, "white noise, seed {seed}, {n} rows");
                let walk: Vec<f64> = white
                    .iter()
                    .scan(0.0, |s, x| {
                        *s += x;
                        Some(*s)
                    })
                    .collect();
                assert_eq!(detect(&walk), None, "random walk, seed {seed}, {n} rows");
            }
        }
        // Too short, or constant: none.
        assert_eq!(detect(&season[..10]), None);
        assert_eq!(detect(&[1.0; 50]), None);
    }

    #[test]
    fn fit_csv_detects_a_period_from_the_training_rows_only_unless_told_not_to() {
        let dir = temp_dir("detect");
        // 120 rows of noise, then 120 rows with a 12-row season: with the last 120 rows held
        // out nothing is detected (they are never looked at); with 12 held out, 12 is.
        let e = noise(240, 5);
        let mut text = String::from("t,x\n");
        for (i, e) in e.iter().enumerate() {
            let season = if i >= 120 {
                3.0 * (std::f64::consts::TAU * i as f64 / 12.0).sin()
            } else {
                0.0
            };
            text.push_str(&format!("{i},{:.4}\n", 10.0 + season + e));
        }
        let path = dir.join("late.csv");
        std::fs::write(&path, text).unwrap();
        let settings = fit_csv::Settings {
            iterations: 2,
            trajectories: 2,
            eval_trajectories: 20,
            holdout: 120,
            ..fit_csv::Settings::default()
        };
        assert!(settings.detect_period, "on by default");
        let s = fit_csv::run(&path, &settings, &dir.join("a"), false).unwrap();
        assert_eq!((s.detected, s.periods.len()), (None, 0));
        let table = fit_exp_csv(&path);
        assert_eq!(fit_csv::detect_table_period(&table, 120), None);
        let d = fit_csv::detect_table_period(&table, 228).expect("a period");
        let short = fit_csv::Settings {
            holdout: 12,
            ..settings.clone()
        };
        let s = fit_csv::run(&path, &short, &dir.join("b"), false).unwrap();
        assert_eq!(s.detected, Some(d));
        assert!((d.period - 12.0).abs() < 0.3, "{d:?}");
        // The model file carries the detected period (in model time: one unit per row).
        let tsm = std::fs::read(dir.join("b/fit_csv.tsm")).unwrap();
        let file = tinysde::forecast::file::ModelFile::parse(&tsm).unwrap();
        let description = file.model().description_str().unwrap();
        assert!(description.starts_with("seasonal(1,"), "{description}");
        assert_eq!(s.periods.len(), 1);
        assert!(
            (s.periods[0] - d.period).abs() < 1e-4 * d.period,
            "{:?}",
            s.periods
        );
        let json = std::fs::read_to_string(dir.join("b/fit_csv.json")).unwrap();
        assert!(json.contains("\"periods\": ["), "{json}");
        // --period none: no detection, the seed network.
        let none = settings_of(&["--period", "none"]).unwrap();
        assert!(!none.detect_period && none.periods.is_empty());
        assert!(settings_of(&["--period", "none", "--period", "12"]).is_err());
        let off = fit_csv::Settings {
            detect_period: false,
            ..short.clone()
        };
        let s = fit_csv::run(&path, &off, &dir.join("c"), false).unwrap();
        assert_eq!((s.detected, s.periods.len()), (None, 0));
        // A given period is used as given, not detected.
        let given = fit_csv::Settings {
            periods: vec![(6.0, false)],
            ..short
        };
        let s = fit_csv::run(&path, &given, &dir.join("d"), false).unwrap();
        assert_eq!(s.detected, None);
        assert!((s.periods[0] - 6.0).abs() < 1e-5, "{:?}", s.periods);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn fit_exp_csv(path: &std::path::Path) -> fit_csv::common::csv::Table {
        fit_csv::common::csv::read(path, fit_csv::common::csv::Options::default()).unwrap()
    }

    #[test]
    fn a_log_transform_fits_positive_data_and_refuses_the_rest() {
        let dir = temp_dir("log");
        let s = settings_of(&["--transform", "log"]).unwrap();
        assert_eq!(s.transform, fit_csv::TransformKind::Log);
        assert!(settings_of(&["--transform", "sqrt"]).is_err());
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "t,x\n0,3\n1,2\n2,0\n3,4\n").unwrap();
        let log = fit_csv::Settings {
            iterations: 20,
            eval_trajectories: 50,
            transform: fit_csv::TransformKind::Log,
            ..fit_csv::Settings::default()
        };
        let e = fit_csv::run(&bad, &log, &dir.join("none"), false).unwrap_err();
        assert!(
            e.ends_with(
                "bad.csv:4: column 2: 0 is not positive; --transform log needs positive values"
            ),
            "{e}"
        );
        assert!(!e.contains('\n') && !dir.join("none").exists());
        // Counts that grow by a factor: every band stays positive.
        let good = dir.join("counts.csv");
        let text: String = std::iter::once("t,n\n".to_string())
            .chain((0..60).map(|i| {
                format!(
                    "{i},{}\n",
                    2.0 * 1.05f64.powi(i) * (1.0 + 0.3 * (i as f64).sin())
                )
            }))
            .collect();
        std::fs::write(&good, text).unwrap();
        let held = fit_csv::Settings {
            holdout: 10,
            horizon: 20,
            ..log.clone()
        };
        let r = fit_csv::run(&good, &held, &dir.join("log"), false).unwrap();
        assert!(r.holdout_crps[0] > 0.0);
        let bytes = std::fs::read(dir.join("log/fit_csv.tsm")).unwrap();
        let file = tinysde::forecast::file::ModelFile::parse(&bytes).unwrap();
        assert_eq!(file.column(0).unwrap().transform, super::Transform::Log);
        let forecast = std::fs::read_to_string(dir.join("log/forecast.csv")).unwrap();
        for line in forecast.lines().skip(2) {
            let q05: f64 = line.split(',').nth(2).unwrap().parse().unwrap();
            assert!(q05 > 0.0, "{line}");
        }
        // The saved log model forecasts the same scores without training.
        let again = fit_csv::Settings {
            start: fit_csv::Start::Forecast(dir.join("log/fit_csv.tsm")),
            holdout: 10,
            ..fit_csv::Settings::default()
        };
        let c = fit_csv::run(&good, &again, &dir.join("again"), false).unwrap();
        assert_eq!(c.holdout_crps, r.holdout_crps);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
