//! Learned observation noise in the series likelihood (`SeriesProblem::with_learned_noise`):
//! the gradient in `ln sd` against finite differences on common random numbers in every
//! mode, zero noise keeping the loss's bits, the learned scale recovering a known noise
//! level (and, with noisy window starts, telling the noise from diffusion on a random walk),
//! the trainer training it, and bad input as typed errors.

use core::ops::ControlFlow;

use tinysde::grad::{loss_and_gradient, Forward, Reverse, Scratch, SeriesWindows, Threads};
use tinysde::nn::{Dense, Identity, InitScheme, Parameters, Sigmoid, Tanh};
use tinysde::noise::{normal_from_bits, splitmix64, Brownian};
use tinysde::sde::NeuralSde;
use tinysde::solve::{Checkpoints, EulerMaruyama};
use tinysde::train::{
    series_loss_value, Adam, AdamConfig, GaussianNll, Series, SeriesFit, SeriesProblem,
    TrainConfig, Trainer, Workspace,
};
use tinysde::{Dual, Error, Real};

/// A small neural SDE (4 units per network); shared with `filter_training`.
pub(crate) type Small = NeuralSde<
    (Dense<1, 4, Tanh>, Dense<4, 1, Identity>),
    (Dense<1, 4, Sigmoid>, Dense<4, 1, Identity>),
>;
pub(crate) const P: usize = Small::PARAMS;

/// `du = (b + a u) dt + (c + e u) dW`.
type Linear = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;

pub(crate) fn small_model(seed: u64) -> Small {
    let mut m = Small::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::Uniform { limit: 0.8 },
    )
    .unwrap();
    m
}

pub(crate) fn normals(seed: u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| normal_from_bits(splitmix64(seed ^ splitmix64(i as u64)) as u32))
        .collect()
}

/// A wavy series with some scatter, steps of 0.3 and 0.5.
pub(crate) fn series_data() -> (Vec<f32>, Vec<[f32; 1]>) {
    let z = normals(11, 14);
    let mut t = 0.0f32;
    let mut times = Vec::new();
    let mut values = Vec::new();
    for (i, e) in z.iter().enumerate() {
        times.push(t);
        values.push([0.6 + 0.4 * (1.3 * t).sin() + 0.2 * e]);
        t += if i % 2 == 0 { 0.3 } else { 0.5 };
    }
    (times, values)
}

/// The gradient's `ln sd` entry in each mode against a fourth-order central difference of
/// the loss on the same noise; the model's entries equal those of a fixed noise of the same
/// scale, bit for bit.
#[test]
fn noise_gradient_matches_finite_differences_in_every_mode() {
    let (times, values) = series_data();
    let series = Series::new(&times, &values).unwrap();
    let model = small_model(5);
    let noise = Brownian::new(9);
    let sd = 0.8f32;
    for (window, noisy_start) in [(1, false), (3, false), (1, true), (3, true)] {
        let base = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)
            .unwrap()
            .with_window(window)
            .unwrap()
            .with_noisy_start(noisy_start);
        let learned = base.with_learned_noise([sd]).unwrap();
        assert_eq!(learned.noisy_start(), noisy_start);
        assert_eq!(learned.noise_params(), 1);
        let loss_at = |log_sd: f32| -> f64 {
            let p = base.with_observation_noise([log_sd.exp()]).unwrap();
            let mut stats = vec![[0.0f32; 1]; p.stats_len()];
            f64::from(series_loss_value(&p, &model, &noise, p.all_windows(), &mut stats).unwrap())
        };
        let h = 2e-2f32;
        let l = sd.ln();
        let fd = (8.0 * (loss_at(l + h) - loss_at(l - h))
            - (loss_at(l + 2.0 * h) - loss_at(l - 2.0 * h)))
            / (12.0 * f64::from(h));
        assert!(fd.abs() > 1e-2, "degenerate: d loss / d ln sd = {fd}");

        let windows = SeriesWindows::new(&learned, &noise, learned.all_windows());
        let fixed_problem = base.with_observation_noise([sd]).unwrap();
        let fixed = SeriesWindows::new(&fixed_problem, &noise, fixed_problem.all_windows());
        let mut scratch = Scratch::<8, 1>::owned();
        let mut g_fixed = [0.0f32; P];
        let l_fixed = loss_and_gradient(
            &fixed,
            &model,
            Reverse(Checkpoints::All),
            &mut scratch,
            &mut g_fixed,
        )
        .unwrap();
        let mut results = Vec::new();
        for mode in 0..4 {
            let mut g = [f32::NAN; P + 1];
            let value = match mode {
                0 => loss_and_gradient(&windows, &model, Forward, &mut scratch, &mut g),
                1 => loss_and_gradient(
                    &windows,
                    &model,
                    Reverse(Checkpoints::All),
                    &mut scratch,
                    &mut g,
                ),
                2 => loss_and_gradient(&windows, &model, Threads(Forward, 3), &mut scratch, &mut g),
                _ => loss_and_gradient(
                    &windows,
                    &model,
                    Threads(Reverse(Checkpoints::Sqrt), 3),
                    &mut scratch,
                    &mut g,
                ),
            }
            .unwrap();
            let g_noise = f64::from(g[P]);
            assert!(
                (g_noise - fd).abs() <= 1e-3 * fd.abs() + 1e-5,
                "mode {mode}, window {window}, noisy start {noisy_start}: d loss / d ln sd {g_noise} vs finite difference {fd}"
            );
            results.push((value, g));
        }
        // Reverse mode: the same loss and model gradient bits as with the noise fixed.
        let (value, g) = &results[1];
        assert_eq!(value.to_bits(), l_fixed.to_bits());
        assert_eq!(&g[..P], &g_fixed[..]);
        // Every mode: the same loss and the same noise entry (all from the f32 statistics).
        for (v, g) in &results {
            assert_eq!(v.to_bits(), results[0].0.to_bits());
            assert_eq!(g[P].to_bits(), results[0].1[P].to_bits());
        }
    }
}

/// Zero noise is no noise: the loss's bits are those without it.
#[test]
fn zero_noise_keeps_the_loss_bits() {
    let (times, values) = series_data();
    let series = Series::new(&times, &values).unwrap();
    let model = small_model(2);
    let noise = Brownian::new(4);
    let plain = SeriesProblem::new(EulerMaruyama, series, 0.1, 16).unwrap();
    let zero = plain.with_observation_noise([0.0]).unwrap();
    assert_eq!(zero.observation_noise(), [0.0]);
    let mut stats = vec![[0.0f32; 1]; plain.stats_len()];
    let a = series_loss_value(&plain, &model, &noise, plain.all_windows(), &mut stats).unwrap();
    let b = series_loss_value(&zero, &model, &noise, zero.all_windows(), &mut stats).unwrap();
    assert_eq!(a.to_bits(), b.to_bits());

    use tinysde::grad::Loss;
    let data = [[1.0f32], [2.0]];
    let nll = GaussianNll::new(&data).unwrap();
    let mean = [[0.5f32], [2.5]];
    let var = [[0.1f32], [0.3]];
    let x: f32 = nll.eval(&mean, &var);
    let y: f32 = nll.with_noise([0.0]).unwrap().eval(&mean, &var);
    assert_eq!(x.to_bits(), y.to_bits());
    // Noise adds to the variance: sd^2 = 0.2 on top of 0.1 is a variance of 0.3.
    let noisy: f32 = nll
        .with_noise([0.2f32.sqrt()])
        .unwrap()
        .eval(&mean, &[[0.1], [0.1]]);
    let direct: f32 = nll.eval(&mean, &[[0.3], [0.3]]);
    assert!((noisy - direct).abs() < 1e-6, "{noisy} vs {direct}");
}

/// A constant level plus N(0, s^2) noise, and a model that forgets its (noisy) start within
/// the first step (`du = -10 (u - c) dt`, no diffusion; Euler with step 0.1 lands on `c`):
/// each one-step-ahead error is exactly the observation's noise, so the likelihood's best
/// scale is the errors' root mean square. Gradient steps on the `ln sd` entry alone reach
/// it to 1e-3, and it is the true `s` within 10 % (400 observations: the estimate's
/// standard error is ~3.5 %).
#[test]
fn learned_noise_recovers_a_known_level() {
    let (c, s, n) = (2.0f32, 0.3f32, 401);
    let z = normals(77, n);
    let times: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let values: Vec<[f32; 1]> = z.iter().map(|e| [c + s * e]).collect();
    let series = Series::new(&times, &values).unwrap();
    let mut model = Linear::default();
    model.write_params(&[-10.0, 10.0 * c, 0.0, 0.0]).unwrap();
    let rms = (values[1..]
        .iter()
        .map(|v| f64::from(v[0] - c).powi(2))
        .sum::<f64>()
        / (n - 1) as f64)
        .sqrt();
    let mut sd = 1.0f32;
    let noise = Brownian::new(1);
    let mut scratch = Scratch::<4, 1>::owned();
    for _ in 0..200 {
        let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 4)
            .unwrap()
            .with_learned_noise([sd])
            .unwrap();
        let windows = SeriesWindows::new(&problem, &noise, problem.all_windows());
        let mut g = [0.0f32; Linear::PARAMS + 1];
        loss_and_gradient(
            &windows,
            &model,
            Reverse(Checkpoints::All),
            &mut scratch,
            &mut g,
        )
        .unwrap();
        // The loss is 1/2 (2 ln sd + rms^2 / sd^2) + const: curvature 2 rms^2/sd^2 in ln sd.
        sd = (sd.ln() - 0.4 * g[Linear::PARAMS]).exp();
    }
    let sd = f64::from(sd);
    assert!((sd - rms).abs() < 1e-3, "learned {sd}, best {rms}");
    assert!(
        (sd - f64::from(s)).abs() < 0.1 * f64::from(s),
        "learned {sd}, true {s}"
    );
}

/// A noisy start adds the start's variance `sd^2` once more: the loss equals that without
/// noisy starts at the scale `sd * sqrt(2)` (to rounding), and it is no change without noise.
#[test]
fn a_noisy_start_doubles_the_noise_variance() {
    let (times, values) = series_data();
    let series = Series::new(&times, &values).unwrap();
    let model = small_model(3);
    let noise = Brownian::new(6);
    let base = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)
        .unwrap()
        .with_window(3)
        .unwrap();
    let mut stats = vec![[0.0f32; 1]; base.stats_len()];
    let mut loss = |p: &SeriesProblem<'_, EulerMaruyama, 1>| {
        series_loss_value(p, &model, &noise, p.all_windows(), &mut stats).unwrap()
    };
    let sd = 0.3f32;
    let noisy = loss(
        &base
            .with_noisy_start(true)
            .with_learned_noise([sd])
            .unwrap(),
    );
    let wider = loss(&base.with_observation_noise([sd * 2f32.sqrt()]).unwrap());
    assert!(
        (noisy - wider).abs() <= 1e-5 * wider.abs(),
        "{noisy} vs {wider}"
    );
    // The flag survives setting the noise after it, and is nothing without noise.
    let plain = loss(&base);
    assert_eq!(
        loss(&base.with_noisy_start(true)).to_bits(),
        plain.to_bits()
    );
    let off = loss(&base.with_learned_noise([sd]).unwrap());
    assert_ne!(off.to_bits(), noisy.to_bits(), "the flag changed nothing");
}

/// A random walk seen through noise (`x_k+1 = x_k + sqrt(q) eta`, `y_k = x_k + s e_k`) and
/// the model that knows its diffusion (`du = sqrt(q) dW`): windows of 4 steps predict
/// `y_start+j` with variance `j q + 2 s^2`. With noisy starts the learned scale is the true
/// `s` (within 12 %); with exact starts the likelihood's best scale carries the start's noise
/// too, `s * sqrt(2)`, which a forecaster filtering with it would trust its readings too little
/// with. Gradient steps on the `ln sd` entry alone.
#[test]
fn noisy_starts_tell_measurement_noise_from_diffusion() {
    let (q, s, n) = (0.25f32, 0.4f32, 401);
    let (eta, e) = (normals(21, n), normals(22, n));
    let times: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let mut x = 0.0f32;
    let values: Vec<[f32; 1]> = (0..n)
        .map(|i| {
            if i > 0 {
                x += q.sqrt() * eta[i];
            }
            [x + s * e[i]]
        })
        .collect();
    let series = Series::new(&times, &values).unwrap();
    let mut model = Linear::default();
    model.write_params(&[0.0, 0.0, 0.0, q.sqrt()]).unwrap();
    let noise = Brownian::new(3);
    let mut scratch = Scratch::<4, 1>::owned();
    let learn = |noisy_start: bool, scratch: &mut Scratch<4, 1>| {
        let mut sd = 1.0f32;
        for _ in 0..120 {
            let problem = SeriesProblem::new(EulerMaruyama, series, 1.0, 64)
                .unwrap()
                .with_window(4)
                .unwrap()
                .with_noisy_start(noisy_start)
                .with_learned_noise([sd])
                .unwrap();
            let windows = SeriesWindows::new(&problem, &noise, problem.all_windows());
            let mut g = [0.0f32; Linear::PARAMS + 1];
            loss_and_gradient(&windows, &model, Reverse(Checkpoints::All), scratch, &mut g)
                .unwrap();
            sd = (sd.ln() - 0.5 * g[Linear::PARAMS]).exp();
        }
        f64::from(sd)
    };
    let (with, without) = (learn(true, &mut scratch), learn(false, &mut scratch));
    let s = f64::from(s);
    assert!(
        (with - s).abs() < 0.12 * s,
        "noisy starts: learned {with}, true {s}"
    );
    assert!(
        without > 1.25 * s,
        "exact starts: learned {without}, expected about {}",
        s * 2f64.sqrt()
    );
}

/// The trainer trains the noise with the model (its flat vector has one more entry, after
/// the model's): from sd = 1 on data scattered by ~0.1 it ends well below, and the best
/// parameters it restores include the noise.
#[test]
fn the_trainer_trains_the_noise_with_the_model() {
    let n = 60;
    let z = normals(3, n);
    let times: Vec<f32> = (0..n).map(|i| 0.25 * i as f32).collect();
    let values: Vec<[f32; 1]> = times
        .iter()
        .zip(&z)
        .map(|(&t, e)| [1.0 + 0.5 * (0.8 * t).sin() + 0.1 * e])
        .collect();
    let series = Series::new(&times, &values).unwrap();
    let problem = SeriesProblem::new(EulerMaruyama, series, 0.125, 16)
        .unwrap()
        .with_learned_noise([1.0])
        .unwrap();
    let mut model = small_model(8);
    let fit = SeriesFit::new(problem);
    assert_eq!(tinysde::train::Fit::<Small, 1>::params_len(&fit), P + 1);
    let mut adam = Adam::new(AdamConfig::lr(0.05), vec![0.0; P + 1], vec![0.0; P + 1]).unwrap();
    let (mut params, mut grad, mut best) = (vec![0.0; P + 1], vec![0.0; P + 1], vec![0.0; P + 1]);
    let mut stats = vec![[Dual::<8>::ZERO; 1]; problem.stats_len()];
    let mut tape = vec![[0.0f32; 1]; problem.reverse_tape_len_keep_all(P, Checkpoints::All)];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let mut trainer = Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws)
        .unwrap()
        .with_mode(Reverse(Checkpoints::All))
        .unwrap();
    let mut first = None;
    trainer
        .run(150, |p| {
            first.get_or_insert(p.loss);
            ControlFlow::Continue(())
        })
        .unwrap();
    trainer.restore_best();
    let sd = trainer.fit().problem().observation_noise()[0];
    assert!(
        sd < 0.5,
        "learned noise {sd} did not move from 1 towards the data's ~0.1 scatter"
    );
    assert!(sd > 0.01, "learned noise {sd} collapsed");
}

/// Bad input: typed errors, nothing written.
#[test]
fn bad_noise_is_a_typed_error() {
    let (times, values) = series_data();
    let series = Series::new(&times, &values).unwrap();
    let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 8).unwrap();
    for bad in [0.0, -0.5, f32::NAN, f32::INFINITY] {
        assert!(
            problem.with_learned_noise([bad]).is_err(),
            "learned sd {bad}"
        );
    }
    assert!(matches!(
        problem.with_learned_noise([0.0]),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        problem.with_learned_noise([f32::NAN]),
        Err(Error::NonFinite { .. })
    ));
    for bad in [-0.5, f32::NAN, f32::NEG_INFINITY] {
        assert!(
            problem.with_observation_noise([bad]).is_err(),
            "fixed sd {bad}"
        );
    }
    let data = [[1.0f32]];
    assert!(GaussianNll::new(&data).unwrap().with_noise([-1.0]).is_err());
    assert!(GaussianNll::new(&data)
        .unwrap()
        .with_noise([f32::INFINITY])
        .is_err());

    // A gradient without room for the noise entry: a length error, the buffer untouched.
    let learned = problem.with_learned_noise([0.2]).unwrap();
    let model = small_model(1);
    let noise = Brownian::new(1);
    let windows = SeriesWindows::new(&learned, &noise, learned.all_windows());
    let mut scratch = Scratch::<8, 1>::owned();
    for reverse in [false, true] {
        let mut g = [7.0f32; P];
        let r = if reverse {
            loss_and_gradient(
                &windows,
                &model,
                Reverse(Checkpoints::All),
                &mut scratch,
                &mut g,
            )
        } else {
            loss_and_gradient(&windows, &model, Forward, &mut scratch, &mut g)
        };
        assert!(matches!(r, Err(Error::Length { .. })), "{r:?}");
        assert!(g.iter().all(|&x| x == 7.0));
    }
}

/// fit_csv: the learned noise reaches the model file and its JSON; `--noise none` and
/// `--transform auto`'s rule; bad values are command-line errors.
mod fit_csv_defaults {
    use crate::examples::{fit_csv, fit_csv_settings as settings_of, temp_dir};
    use tinysde::forecast::file::{ModelFile, Transform};

    #[test]
    fn noise_and_transform_options_parse_and_bad_ones_are_refused() {
        let s = settings_of(&[]).unwrap();
        assert_eq!(s.noise, fit_csv::NoiseKind::None);
        assert_eq!(s.transform, fit_csv::TransformKind::Auto);
        assert_eq!(
            settings_of(&["--noise", "learned"]).unwrap().noise,
            fit_csv::NoiseKind::Learned
        );
        assert_eq!(
            settings_of(&["--noise", "learned-start"]).unwrap().noise,
            fit_csv::NoiseKind::LearnedStart
        );
        assert_eq!(
            settings_of(&["--transform", "affine"]).unwrap().transform,
            fit_csv::TransformKind::Affine
        );
        assert!(settings_of(&["--noise", "0.3"]).is_err());
        assert!(settings_of(&["--transform", "sqrt"]).is_err());
    }

    fn table_of(values: &[f64]) -> fit_csv::common::csv::Table {
        let dir = temp_dir("grows");
        let path = dir.join("s.csv");
        let mut text = String::from("t,y\n");
        for (i, v) in values.iter().enumerate() {
            text.push_str(&format!("{i},{v}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let t = fit_csv::common::csv::read(&path, Default::default()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        t
    }

    /// The rule of `--transform auto`, on the training rows only.
    #[test]
    fn the_log_transform_is_chosen_for_positive_growing_series_only() {
        let growing: Vec<f64> = (0..40).map(|i| 100.0 * 1.04f64.powi(i)).collect();
        assert!(fit_csv::grows(&table_of(&growing), 40));
        // Flat, shrinking, or with a non-positive value: no.
        let flat: Vec<f64> = (0..40).map(|i| 50.0 + (i as f64).sin()).collect();
        assert!(!fit_csv::grows(&table_of(&flat), 40));
        let shrinking: Vec<f64> = growing.iter().rev().copied().collect();
        assert!(!fit_csv::grows(&table_of(&shrinking), 40));
        let mut zero = growing.clone();
        zero[3] = 0.0;
        assert!(!fit_csv::grows(&table_of(&zero), 40));
        // Growth only in the held-out rows does not count; too few rows do not either.
        let late: Vec<f64> = (0..40).map(|i| if i < 30 { 10.0 } else { 100.0 }).collect();
        assert!(fit_csv::grows(&table_of(&late), 40));
        assert!(!fit_csv::grows(&table_of(&late), 30));
        assert!(!fit_csv::grows(&table_of(&growing[..7]), 7));
    }

    /// A noisy curve: the learned noise is in the summary, the model file's column and the
    /// JSON; with `--noise none` none is learned and the column's noise is 0. A growing
    /// positive series gets the log transform by default.
    #[test]
    fn fit_csv_writes_the_learned_noise_into_the_model_file() {
        let dir = temp_dir("fit_csv_noise");
        let z = super::normals(5, 60);
        let mut text = String::from("t,y\n");
        for (i, e) in z.iter().enumerate() {
            let t = i as f64;
            text.push_str(&format!(
                "{t},{}\n",
                20.0 + 4.0 * (0.3 * t).sin() + f64::from(*e)
            ));
        }
        let path = dir.join("noisy.csv");
        std::fs::write(&path, text).unwrap();
        let base = fit_csv::Settings {
            iterations: 30,
            trajectories: 8,
            eval_trajectories: 40,
            detect_period: false,
            noise: fit_csv::NoiseKind::Learned,
            ..fit_csv::Settings::default()
        };
        let out = dir.join("learned");
        let s = fit_csv::run(&path, &base, &out, false).unwrap();
        assert_eq!(s.transforms, [Transform::Affine]); // not growing
        assert_eq!(s.history.noise.len(), 1);
        let sd = s.history.noise[0];
        assert!(
            sd > 0.0 && sd.is_finite() && sd != 0.1,
            "learned noise {sd}"
        );
        let bytes = std::fs::read(out.join("fit_csv.tsm")).unwrap();
        let file = ModelFile::parse(&bytes).unwrap();
        assert_eq!(file.column(0).unwrap().noise.to_bits(), sd.to_bits());
        let json = std::fs::read_to_string(out.join("fit_csv.json")).unwrap();
        assert!(json.contains("\"noise\": ["), "{json}");

        let none = fit_csv::Settings {
            noise: fit_csv::NoiseKind::None,
            ..base.clone()
        };
        let out = dir.join("none");
        let s = fit_csv::run(&path, &none, &out, false).unwrap();
        assert!(s.history.noise.is_empty());
        let bytes = std::fs::read(out.join("fit_csv.tsm")).unwrap();
        assert_eq!(
            ModelFile::parse(&bytes).unwrap().column(0).unwrap().noise,
            0.0
        );

        // Positive and growing: the logarithm by default.
        let mut text = String::from("t,y\n");
        for (i, e) in z.iter().enumerate() {
            text.push_str(&format!(
                "{i},{}\n",
                10.0 * 1.05f64.powi(i as i32) * (1.0 + 0.05 * f64::from(*e))
            ));
        }
        let path = dir.join("growing.csv");
        std::fs::write(&path, text).unwrap();
        let s = fit_csv::run(&path, &base, &dir.join("growing"), false).unwrap();
        assert_eq!(s.transforms, [Transform::Log]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `--noise auto`: three candidates validated on the last 20 % of the training rows (the
    /// first scores 1 by definition), the best one then fitted on all training rows: the
    /// same bits as running that candidate directly. Too few rows: no validation, no noise.
    #[test]
    fn noise_auto_fits_the_candidate_that_validates_best() {
        assert_eq!(fit_csv::validation_rows_of(60), 12);
        assert_eq!(fit_csv::validation_rows_of(2000), 200);
        assert_eq!(fit_csv::validation_rows_of(11), 0);
        assert_eq!(
            fit_csv::auto_candidates(1),
            [
                (fit_csv::NoiseKind::None, 1),
                (fit_csv::NoiseKind::LearnedStart, 1),
                (fit_csv::NoiseKind::None, 2)
            ]
        );
        let dir = temp_dir("fit_csv_auto");
        let z = super::normals(9, 70);
        let mut text = String::from("t,y\n");
        let mut x = 0.0f64;
        for (i, e) in z.iter().enumerate() {
            x = 0.8 * x + f64::from(*e);
            text.push_str(&format!("{i},{}\n", x + 0.5 * f64::from(z[69 - i])));
        }
        let path = dir.join("ar.csv");
        std::fs::write(&path, text).unwrap();
        let auto = fit_csv::Settings {
            iterations: 20,
            trajectories: 8,
            eval_trajectories: 40,
            detect_period: false,
            holdout: 10,
            noise: fit_csv::NoiseKind::Auto,
            ..fit_csv::Settings::default()
        };
        let a = fit_csv::run(&path, &auto, &dir.join("auto"), false).unwrap();
        assert_eq!(a.validation_rows, 12);
        assert_eq!(a.validation.len(), 3);
        assert_eq!(a.validation[0].1, 1.0);
        assert!(a.validation.iter().all(|v| v.1.is_finite() && v.1 > 0.0));
        let best = a
            .validation
            .iter()
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .unwrap()
            .0;
        let direct = fit_csv::Settings {
            noise: best.0,
            window: best.1,
            ..auto.clone()
        };
        let d = fit_csv::run(&path, &direct, &dir.join("direct"), false).unwrap();
        assert!(d.validation.is_empty());
        assert_eq!(a.holdout_crps[0].to_bits(), d.holdout_crps[0].to_bits());
        assert_eq!(a.history.noise, d.history.noise);
        assert_eq!(
            a.history.noise.is_empty(),
            best.0 == fit_csv::NoiseKind::None
        );
        // No temporary directories left behind.
        let leftovers = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("fit_csv-validation-{}-", std::process::id()))
            })
            .count();
        assert_eq!(leftovers, 0);
        // A short series: nothing to validate on, no noise.
        let short = dir.join("short.csv");
        std::fs::write(&short, "t,y\n0,1\n1,2\n2,1.5\n3,2.5\n4,2\n5,3\n").unwrap();
        let whole = fit_csv::Settings {
            holdout: 0,
            ..auto.clone()
        };
        let s = fit_csv::run(&short, &whole, &dir.join("short"), false).unwrap();
        assert!(s.validation.is_empty() && s.history.noise.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
