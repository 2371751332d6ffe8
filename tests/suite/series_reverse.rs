//! Reverse-mode gradients of the series loss (`series_loss_and_gradient_reverse`): the same
//! loss bits as forward mode, the same gradient to ~1e-5 relative, for several methods,
//! windows, objectives, masks, uneven grids and checkpoint choices; the threaded variant's
//! bits do not depend on the thread count; nothing allocates; the trainer trains the same.

use std::ops::ControlFlow;

use tinysde::grad::{loss_and_gradient, Cheaper, Forward, Reverse, Threads};
use tinysde::grad::{Scratch, SeriesWindows};
use tinysde::nn::{
    Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters, Sigmoid, Tanh,
};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{
    Checkpoints, EulerHeun, EulerMaruyama, Method, Milstein, Sosri, Sriw1, StepVjp,
};
use tinysde::train::{
    forward_is_cheaper, series_loss_value, Adam, AdamConfig, GradientMode, Series, SeriesObjective,
    SeriesProblem, Workspace,
};
use tinysde::train::{SeriesFit, TrainConfig, Trainer};
use tinysde::{Dual, Error, Real};

use crate::alloc_counter::allocations;

/// A model on a 2-dimensional state, so masks can hide one entry of a row.
type Model2 = NeuralSde<
    (Dense<2, 6, Tanh>, Dense<6, 2, Identity>),
    (Dense<2, 5, Sigmoid>, Dense<5, 2, Identity>),
>;
const P2: usize = Model2::PARAMS;

/// The examples' seed model (122 parameters).
type Seed = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
const SEED_P: usize = Seed::PARAMS;

fn init<M: Parameters + tinysde::nn::Init + Default>(seed: u64, limit: f32) -> M {
    let mut m = M::default();
    tinysde::nn::init(
        &mut m,
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::Uniform { limit },
    )
    .unwrap();
    m
}

/// An uneven 2-d series: steps of 0.2 to 0.5, a row missing entirely (no window starts
/// there) and rows with one entry missing (windows start elsewhere, their other entry
/// still scores).
fn uneven_series_2d() -> (Vec<f32>, Vec<[f32; 2]>, Vec<[bool; 2]>) {
    let n = 16;
    let mut t = 0.0f32;
    let mut times = Vec::new();
    for i in 0..n {
        times.push(t);
        t += [0.2, 0.5, 0.3][i % 3];
    }
    let mut values: Vec<[f32; 2]> = times
        .iter()
        .map(|&t| [0.8 + 0.4 * (1.7 * t).sin(), -0.3 + 0.5 * (0.9 * t).cos()])
        .collect();
    let mut mask = vec![[true, true]; n];
    values[5] = [f32::NAN, f32::NAN];
    mask[5] = [false, false];
    values[9][1] = f32::NAN;
    mask[9] = [true, false];
    values[12][0] = f32::NAN;
    mask[12] = [false, true];
    (times, values, mask)
}

/// `|a - b| <= rel * (|b| + max |g|)`: rounding of a ~1e-6 relative size in either mode,
/// summed over steps and windows; a wrong derivative is off by O(|g|).
fn assert_gradients_close(reverse: &[f32], forward: &[f32], rel: f32, what: &str) {
    let scale = forward.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    assert!(scale > 1e-3, "{what}: degenerate test, gradient ~0");
    for (i, (&r, &f)) in reverse.iter().zip(forward).enumerate() {
        assert!(
            (r - f).abs() <= rel * (f.abs() + scale),
            "{what}: entry {i}: reverse {r}, forward {f}"
        );
    }
}

/// Reverse = forward (loss bits, gradient to 1e-5) on `problem`, with one trajectory's
/// checkpoints at a time and with every trajectory's, which agree bit for bit; the
/// threaded variant agrees bit for bit on 1, 2 and 3 threads.
fn check_reverse_matches_forward<M>(problem: &SeriesProblem<'_, M, 2>, what: &str)
where
    M: Method + StepVjp<Model2, 2> + tinysde::solve::Step<Dual<8>, Model2, 2> + Copy + Sync,
{
    let model: Model2 = init(7, 0.7);
    let noise = Brownian::new(21);
    let batch = problem.batch(5);
    let mut stats = vec![[Dual::<8>::ZERO; 2]; problem.stats_len()];
    let mut g_fwd = [0.0f32; P2];
    let l_fwd = loss_and_gradient(
        &SeriesWindows::new(problem, &noise, batch),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut g_fwd,
    )
    .unwrap();
    let mut plain = vec![[0.0f32; 2]; problem.stats_len()];
    let l_value = series_loss_value(problem, &model, &noise, batch, &mut plain).unwrap();
    assert_eq!(l_fwd.to_bits(), l_value.to_bits(), "{what}: forward value");

    let mut first: Option<[f32; P2]> = None;
    let choices = [
        Checkpoints::All,
        Checkpoints::Sqrt,
        Checkpoints::Every(2),
        Checkpoints::Binomial(2),
    ];
    for checkpoints in choices {
        for keep_all in [false, true] {
            let rows = if keep_all {
                problem.reverse_tape_len_keep_all(P2, checkpoints)
            } else {
                problem.reverse_tape_len(P2, checkpoints)
            };
            let mut tape = vec![[0.0f32; 2]; rows];
            let mut g_rev = [0.0f32; P2];
            let l_rev = loss_and_gradient(
                &SeriesWindows::new(problem, &noise, batch),
                &model,
                Reverse(checkpoints),
                &mut Scratch::new(&mut stats, &mut tape),
                &mut g_rev,
            )
            .unwrap();
            let case = format!("{what}, {checkpoints:?}, keep all {keep_all}");
            assert_eq!(l_rev.to_bits(), l_fwd.to_bits(), "{case}: loss bits");
            assert_gradients_close(&g_rev, &g_fwd, 1e-5, &case);
            // Checkpoints change only what is recomputed, never the arithmetic.
            match &first {
                None => first = Some(g_rev),
                Some(g) => assert_eq!(g, &g_rev, "{case}: bits differ from Checkpoints::All"),
            }
            if keep_all && checkpoints == Checkpoints::Sqrt {
                for threads in [1, 2, 3] {
                    let mut g_par = [0.0f32; P2];
                    let l_par = loss_and_gradient(
                        &SeriesWindows::new(problem, &noise, batch),
                        &model,
                        Threads(Reverse(checkpoints), threads),
                        &mut Scratch::<8, 2>::owned(),
                        &mut g_par,
                    )
                    .unwrap();
                    assert_eq!(
                        l_par.to_bits(),
                        l_rev.to_bits(),
                        "{case}: {threads} threads"
                    );
                    assert_eq!(g_par, g_rev, "{case}: {threads} threads");
                }
            }
        }
    }
}

#[test]
fn reverse_mode_equals_forward_mode_on_masked_uneven_series() {
    let (times, values, mask) = uneven_series_2d();
    let series = Series::masked(&times, &values, &mask).unwrap();
    let likelihood = SeriesObjective::GaussianNll { var_floor: 1e-3 };
    // One step ahead, every window, SOSRI in steps of at most 0.07 (uneven steps).
    let problem = SeriesProblem::new(Sosri, series, 0.07, 8)
        .unwrap()
        .with_objective(likelihood)
        .unwrap();
    check_reverse_matches_forward(&problem, "SOSRI, window 1, likelihood");
    // Longer windows over the gap, a random batch, Euler-Maruyama.
    let problem = SeriesProblem::new(EulerMaruyama, series, 0.05, 6)
        .unwrap()
        .with_window(3)
        .unwrap()
        .with_batch(5)
        .unwrap()
        .with_objective(likelihood)
        .unwrap();
    check_reverse_matches_forward(&problem, "EM, window 3, likelihood");
    // The mean's squared error, Euler-Heun (Stratonovich), window 2.
    let problem = SeriesProblem::new(EulerHeun, series, 0.1, 5)
        .unwrap()
        .with_window(2)
        .unwrap()
        .with_objective(SeriesObjective::MeanSquaredError)
        .unwrap();
    check_reverse_matches_forward(&problem, "Euler-Heun, window 2, MSE");
    // SRIW1, one trajectory per window (variance 0: only the floor), window 4.
    let problem = SeriesProblem::new(Sriw1, series, 0.1, 1)
        .unwrap()
        .with_window(4)
        .unwrap()
        .with_batch(3)
        .unwrap()
        .with_objective(likelihood)
        .unwrap();
    check_reverse_matches_forward(&problem, "SRIW1, one trajectory, window 4");
    // Milstein (its adjoint needs the diffusion's second derivatives), window 2.
    let problem = SeriesProblem::new(Milstein, series, 0.05, 6)
        .unwrap()
        .with_window(2)
        .unwrap()
        .with_objective(likelihood)
        .unwrap();
    check_reverse_matches_forward(&problem, "Milstein, window 2, likelihood");
}

#[test]
fn reverse_gradient_matches_finite_differences() {
    // Independent of forward mode: a central difference of the f32 loss on the same noise.
    let (times, values, mask) = uneven_series_2d();
    let series = Series::masked(&times, &values, &mask).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.1, 8)
        .unwrap()
        .with_window(2)
        .unwrap()
        .with_objective(SeriesObjective::GaussianNll { var_floor: 1e-3 })
        .unwrap();
    let model: Model2 = init(3, 0.7);
    let noise = Brownian::new(4);
    let mut stats = vec![[Dual::<4>::ZERO; 2]; problem.stats_len()];
    let mut tape = vec![[0.0f32; 2]; problem.reverse_tape_len(P2, Checkpoints::Sqrt)];
    let mut grad = [0.0f32; P2];
    loss_and_gradient(
        &SeriesWindows::new(&problem, &noise, problem.all_windows()),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    )
    .unwrap();
    let mut p = [0.0f32; P2];
    model.read_params(&mut p).unwrap();
    let loss_at = |q: &[f32]| {
        let mut m = Model2::default();
        m.write_params(q).unwrap();
        let mut s = vec![[0.0f32; 2]; problem.stats_len()];
        series_loss_value(&problem, &m, &noise, problem.all_windows(), &mut s).unwrap() as f64
    };
    let gmax = grad.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    let d = 2e-2f32;
    for i in 0..P2 {
        let at = |s: f32| {
            let mut q = p;
            q[i] += s * d;
            loss_at(&q)
        };
        let fd = (8.0 * (at(1.0) - at(-1.0)) - (at(2.0) - at(-2.0))) / (12.0 * d as f64);
        let g = grad[i] as f64;
        let tol = 2e-4 * gmax as f64 + 2e-3 * g.abs();
        assert!((fd - g).abs() <= tol, "param {i}: reverse {g}, fd {fd}");
    }
}

/// A 100,000-row series with gaps, the seed model, SOSRI: the fit_csv setting at scale.
fn long_problem<'a>(
    times: &'a [f32],
    values: &'a [[f32; 1]],
    mask: &'a [[bool; 1]],
) -> SeriesProblem<'a, Sosri, 1> {
    let series = Series::masked(times, values, mask).unwrap();
    SeriesProblem::new(Sosri, series, 0.005, 8)
        .unwrap()
        .with_window(2)
        .unwrap()
        .with_batch(16)
        .unwrap()
}

fn long_series() -> (Vec<f32>, Vec<[f32; 1]>, Vec<[bool; 1]>) {
    let n = 100_000;
    let times: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
    let values: Vec<[f32; 1]> = (0..n).map(|i| [(i as f32 * 0.003).sin()]).collect();
    let mut mask = vec![[true]; n];
    for gap in mask.iter_mut().skip(7).step_by(13) {
        *gap = [false];
    }
    (times, values, mask)
}

#[test]
fn reverse_mode_on_a_long_series_allocates_nothing() {
    let (times, values, mask) = long_series();
    let problem = long_problem(&times, &values, &mask);
    let model: Seed = init(1, 0.3);
    let mut grad = [0.0f32; SEED_P];
    let mut stats = [[Dual::<4>::ZERO; 1]; 4];
    for checkpoints in [Checkpoints::Sqrt, Checkpoints::All] {
        let mut tape = vec![[0.0f32; 1]; problem.reverse_tape_len(SEED_P, checkpoints)];
        let (count, value) = allocations(|| {
            loss_and_gradient(
                &SeriesWindows::new(&problem, &Brownian::new(2), problem.batch(3)),
                &model,
                Reverse(checkpoints),
                &mut Scratch::new(&mut stats, &mut tape),
                &mut grad,
            )
        });
        assert_eq!(
            count, 0,
            "{checkpoints:?}: reverse series gradient allocated"
        );
        assert!(value.unwrap().is_finite() && grad.iter().any(|&g| g != 0.0));
    }

    let mut tape = vec![[0.0f32; 1]; problem.reverse_tape_len_keep_all(SEED_P, Checkpoints::All)];
    let mut model = model;
    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; SEED_P], [0.0; SEED_P]).unwrap();
    let (mut params, mut best) = ([0.0; SEED_P], [0.0; SEED_P]);
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let mut trainer = Trainer::new(
        &mut model,
        &mut adam,
        SeriesFit::new(problem),
        TrainConfig::default(),
        ws,
    )
    .unwrap()
    .with_mode(Reverse(Checkpoints::All))
    .unwrap();
    let (count, report) = allocations(|| trainer.run(3, |_| ControlFlow::Continue(())));
    assert_eq!(count, 0, "reverse-mode training iterations allocated");
    assert_eq!(report.unwrap().iterations, 3);
}

/// Trains the seed model on a sine with noise for `iterations` iterations, forward or
/// reverse (serial or on `threads`); returns every loss and the final parameters.
fn train_seed(
    mode: Option<Checkpoints>,
    threads: Option<usize>,
    iterations: u32,
) -> (Vec<f32>, Vec<f32>) {
    let n = 120;
    let times: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
    let values: Vec<[f32; 1]> = (0..n)
        .map(|i| [(i as f32 * 0.4).sin() + 0.1 * ((i * 7919 % 13) as f32 / 6.0 - 1.0)])
        .collect();
    let series = Series::new(&times, &values).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.125, 8)
        .unwrap()
        .with_batch(24)
        .unwrap();
    let mut model: Seed = init(2, 0.3);
    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; SEED_P], [0.0; SEED_P]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; SEED_P], [0.0; SEED_P], [0.0; SEED_P]);
    let mut stats = [[Dual::<16>::ZERO; 1]; 2];
    let mut tape = vec![[0.0f32; 1]; problem.reverse_tape_len_keep_all(SEED_P, Checkpoints::All)];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let trainer = Trainer::new(
        &mut model,
        &mut adam,
        SeriesFit::new(problem),
        TrainConfig::default(),
        ws,
    )
    .unwrap();
    let mode = match mode {
        None => GradientMode::Forward,
        Some(c) => GradientMode::Reverse(c),
    };
    let mut losses = Vec::new();
    let record = |p: &tinysde::train::Progress| {
        losses.push(p.loss);
        ControlFlow::Continue(())
    };
    let params = match threads {
        None => {
            let mut t = trainer.with_mode(mode).unwrap();
            t.run(iterations, record).unwrap();
            t.params().to_vec()
        }
        Some(n) => {
            let mut t = trainer.with_mode(Threads(mode, n)).unwrap();
            t.run(iterations, record).unwrap();
            t.params().to_vec()
        }
    };
    (losses, params)
}

#[test]
fn the_trainer_trains_the_same_in_reverse_mode() {
    let (fwd_losses, fwd_params) = train_seed(None, None, 30);
    let (rev_losses, rev_params) = train_seed(Some(Checkpoints::All), None, 30);
    // The first loss is evaluated at the same parameters: the same bits.
    assert_eq!(fwd_losses[0].to_bits(), rev_losses[0].to_bits());
    assert!(
        rev_losses[29] < rev_losses[0],
        "reverse-mode training did not learn"
    );
    // After 30 updates from gradients equal to rounding, the runs stay together.
    for (i, (f, r)) in fwd_losses.iter().zip(&rev_losses).enumerate() {
        assert!(
            (f - r).abs() <= 1e-3 * (1.0 + f.abs()),
            "iteration {i}: {f} vs {r}"
        );
    }
    for (f, r) in fwd_params.iter().zip(&rev_params) {
        assert!(
            (f - r).abs() <= 1e-3 * (1.0 + f.abs()),
            "parameters {f} vs {r}"
        );
    }
    // On threads: the serial run's bits, on any number of threads.
    for threads in [1, 2, 3] {
        let (par_losses, par_params) = train_seed(Some(Checkpoints::All), Some(threads), 30);
        assert_eq!(par_losses, rev_losses, "{threads} threads");
        assert_eq!(par_params, rev_params, "{threads} threads");
    }
}

#[test]
fn gradient_modes_are_chosen_and_bad_tapes_are_refused() {
    let (times, values, mask) = uneven_series_2d();
    let series = Series::masked(&times, &values, &mask).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.1, 4)
        .unwrap()
        .with_window(2)
        .unwrap();
    let model: Model2 = init(5, 0.5);
    let noise = Brownian::new(1);
    let needed = problem.reverse_tape_len(P2, Checkpoints::Sqrt);
    assert!(problem.reverse_tape_len_keep_all(P2, Checkpoints::Sqrt) > needed);

    // A short tape: Length, before anything is written.
    let mut stats = vec![[Dual::<4>::ZERO; 2]; problem.stats_len()];
    let mut tape = vec![[7.0f32; 2]; needed - 1];
    let mut grad = [3.0f32; P2];
    let err = loss_and_gradient(
        &SeriesWindows::new(&problem, &noise, problem.all_windows()),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Length { expected, .. } if expected == needed),
        "{err:?}"
    );
    assert!(grad.iter().all(|&g| g == 3.0) && tape.iter().all(|r| *r == [7.0; 2]));
    // A start that cannot start a window (row 5 is missing): refused, nothing written.
    let mut tape = vec![[7.0f32; 2]; needed];
    let err = loss_and_gradient(
        &SeriesWindows::new(&problem, &noise, [0, 5].into_iter()),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    )
    .unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }), "{err:?}");
    assert!(grad.iter().all(|&g| g == 3.0));
    // Wrong gradient length.
    let mut short_grad = [0.0f32; P2 - 1];
    assert!(matches!(
        loss_and_gradient(
            &SeriesWindows::new(&problem, &noise, problem.all_windows()),
            &model,
            Reverse(Checkpoints::Sqrt),
            &mut Scratch::new(&mut stats, &mut tape),
            &mut short_grad
        ),
        Err(Error::Length { .. })
    ));
    // The same errors on threads.
    assert!(matches!(
        loss_and_gradient(
            &SeriesWindows::new(&problem, &noise, [0, 5].into_iter()),
            &model,
            Threads(Reverse(Checkpoints::Sqrt), 2),
            &mut Scratch::<4, 2>::owned(),
            &mut grad
        ),
        Err(Error::OutOfRange { .. })
    ));

    // The trainer: a short tape is refused; the cheaper mode is reverse for 59
    // parameters at K = 4, forward for a 4-parameter model at K = 4.
    let mut model = model;
    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; P2], [0.0; P2]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; P2], [0.0; P2], [0.0; P2]);
    let mut short = vec![[0.0f32; 2]; needed - 1];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut short),
    };
    let result = Trainer::new(
        &mut model,
        &mut adam,
        SeriesFit::new(problem),
        TrainConfig::default(),
        ws,
    )
    .unwrap()
    .with_mode(Reverse(Checkpoints::Sqrt));
    assert!(matches!(result, Err(Error::Length { .. })));

    let mut model: Model2 = init(5, 0.5);
    let (mut params, mut grad, mut best) = ([0.0; P2], [0.0; P2], [0.0; P2]);
    let mut tape = vec![[0.0f32; 2]; needed];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let trainer = Trainer::new(
        &mut model,
        &mut adam,
        SeriesFit::new(problem),
        TrainConfig::default(),
        ws,
    )
    .unwrap();
    assert_eq!(*trainer.mode(), Forward);
    // The cheaper mode is reverse mode here: the tape must be long enough.
    assert!(!forward_is_cheaper(P2, 4));
    let trainer = trainer.with_mode(Cheaper(Checkpoints::Sqrt)).unwrap();
    assert_eq!(*trainer.mode(), Cheaper(Checkpoints::Sqrt));

    type Linear = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    const LP: usize = Linear::PARAMS; // 4 parameters, K = 4: one pass
    let times = [0.0f32, 0.5, 1.0, 1.5];
    let values = [[1.0f32], [0.9], [0.7], [0.8]];
    let problem = SeriesProblem::new(Sosri, Series::new(&times, &values).unwrap(), 0.1, 4).unwrap();
    let mut linear = Linear::default();
    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; LP], [0.0; LP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; LP], [0.0; LP], [0.0; LP]);
    let mut stats4 = [[Dual::<4>::ZERO; 1]; 2];
    let mut tape = vec![[0.0f32; 1]; problem.reverse_tape_len(LP, Checkpoints::Sqrt)];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats4, &mut tape),
    };
    let trainer = Trainer::new(
        &mut linear,
        &mut adam,
        SeriesFit::new(problem),
        TrainConfig::default(),
        ws,
    )
    .unwrap()
    .with_mode(Cheaper(Checkpoints::Sqrt))
    .unwrap();
    assert!(forward_is_cheaper(LP, 4)); // forward mode: no tape needed
    assert_eq!(*trainer.mode(), Cheaper(Checkpoints::Sqrt));
}

#[test]
fn a_diverging_window_is_the_same_error_serially_and_on_threads() {
    // du = 1000 u dt + 0.1 dW: a gap of 0.01 grows u by e^10, the gap of 0.48 overflows.
    type Linear = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    let mut model = Linear::default();
    model.write_params(&[1000.0, 0.0, 0.0, 0.1]).unwrap();
    let times = [0.0f32, 0.01, 0.02, 0.5, 0.51];
    let values = [[1.0f32], [1.1], [0.9], [1.0], [1.2]];
    let series = Series::new(&times, &values).unwrap();
    let problem = SeriesProblem::new(EulerMaruyama, series, 0.005, 4).unwrap();
    let noise = Brownian::new(9);
    let mut stats = [[Dual::<4>::ZERO; 1]; 2];
    let mut tape = vec![[0.0f32; 1]; problem.reverse_tape_len(4, Checkpoints::Sqrt)];
    let mut grad = [0.0f32; 4];
    let serial = loss_and_gradient(
        &SeriesWindows::new(&problem, &noise, problem.all_windows()),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    )
    .unwrap_err();
    assert!(matches!(serial, Error::Diverged { .. }), "{serial:?}");
    for threads in [1, 2, 4] {
        let threaded = loss_and_gradient(
            &SeriesWindows::new(&problem, &noise, problem.all_windows()),
            &model,
            Threads(Reverse(Checkpoints::Sqrt), threads),
            &mut Scratch::<4, 1>::owned(),
            &mut grad,
        )
        .unwrap_err();
        assert_eq!(threaded, serial, "{threads} threads");
    }
    // Forward mode reports the same trajectory and save interval.
    let forward = loss_and_gradient(
        &SeriesWindows::new(&problem, &noise, problem.all_windows()),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut grad,
    );
    assert!(
        matches!(forward, Err(Error::Diverged { .. })),
        "{forward:?}"
    );
}
