//! Gradients and training on several threads: the bits do not depend on the number of
//! threads (forward mode: they are the serial function's), errors are the serial path's
//! and leave the caller's gradient untouched.

use rand_core::Rng;
use tinysde::grad::{loss_and_gradient, reverse, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::grad::{Forward, Reverse, Threads};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, Sosri, TimeGrid};
use tinysde::train::EnsembleFit;
use tinysde::train::{MeanSquaredError, MomentMatching};
use tinysde::{Dual, Error, Real};

pub type SeedModel = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
pub const SEED_TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

pub fn seed_data() -> [[f32; 1]; 7] {
    let mut rng = tinysde::noise::rng_from_seed(2021);
    SEED_TIMES.map(|x| [x.exp() + 2.0 * ((rng.next_u32() >> 8) as f32 / 16_777_216.0)])
}

/// Glorot, except the first drift layer (its input is u^3).
pub fn seed_model() -> SeedModel {
    let mut model = SeedModel::default();
    let mut rng = tinysde::noise::rng_from_seed(7);
    model.init(&mut rng, InitScheme::GlorotUniform).unwrap();
    tinysde::nn::init(
        &mut model.drift.1,
        &mut rng,
        InitScheme::Uniform { limit: 0.01 },
    )
    .unwrap();
    model
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|g| g.to_bits()).collect()
}

/// The seed task with 13 trajectories (a multiple of none of the thread counts), SOSRI,
/// 30 steps, and the u0 gradient.
fn seed_problem(times: &[f32]) -> Problem<'_, Sosri, 1> {
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 30).unwrap());
    Problem::new(solver, [1.2], 13, times)
        .unwrap()
        .with_u0_gradient(true)
}

const THREADS: [usize; 4] = [1, 2, 3, 7];

#[test]
fn forward_mode_on_threads_has_the_serial_bits() {
    let model = seed_model();
    let data = seed_data();
    let loss = MeanSquaredError::new(&data).unwrap();
    let problem = seed_problem(&SEED_TIMES);
    let noise = Brownian::new(11);
    let mut stats = [[Dual::<16>::ZERO; 1]; 14];
    let mut serial = [0.0f32; SeedModel::PARAMS + 1];
    let l = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut serial,
    )
    .unwrap();
    assert!(serial.iter().all(|g| *g != 0.0));
    for threads in THREADS {
        let mut grad = [0.0f32; SeedModel::PARAMS + 1];
        let lt = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            &model,
            Threads(Forward, threads),
            &mut Scratch::new(&mut stats, &mut []),
            &mut grad,
        )
        .unwrap();
        assert_eq!(lt.to_bits(), l.to_bits(), "{threads} threads");
        assert_eq!(bits(&grad), bits(&serial), "{threads} threads");
    }
    // Other lane counts too (lanes never interact).
    let mut grad = [0.0f32; SeedModel::PARAMS + 1];
    let mut stats5 = [[Dual::<5>::ZERO; 1]; 14];
    let lt = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Threads(Forward, 3),
        &mut Scratch::new(&mut stats5, &mut []),
        &mut grad,
    )
    .unwrap();
    assert_eq!((lt.to_bits(), bits(&grad)), (l.to_bits(), bits(&serial)));
}

#[test]
fn reverse_mode_on_threads_has_bits_independent_of_the_thread_count() {
    let model = seed_model();
    let data = seed_data();
    let noise = Brownian::new(12);
    let problem = seed_problem(&SEED_TIMES);
    // Two losses: the mean alone, and mean + variance (the variance's cotangent path).
    let mse = MeanSquaredError::new(&data).unwrap();
    let var_data = [[0.5f32]; 7];
    let moments = MomentMatching::new(&data, &var_data).unwrap();
    let run = |loss: &dyn Fn(&mut [f32], usize, Checkpoints) -> f32| {
        let mut reference = None;
        for threads in THREADS {
            for checkpoints in [
                Checkpoints::All,
                Checkpoints::Sqrt,
                Checkpoints::Binomial(4),
            ] {
                let mut grad = [0.0f32; SeedModel::PARAMS + 1];
                let l = loss(&mut grad, threads, checkpoints);
                let got = (l.to_bits(), bits(&grad));
                match &reference {
                    None => reference = Some(got),
                    Some(r) => assert_eq!(&got, r, "{threads} threads, {checkpoints:?}"),
                }
            }
        }
        reference.unwrap()
    };
    let (l_bits, g_bits) = run(&|grad, threads, c| {
        loss_and_gradient(
            &Ensemble::new(&problem, &mse, &noise),
            &model,
            Threads(Reverse(c), threads),
            &mut Scratch::<8, 1>::owned(),
            grad,
        )
        .unwrap()
    });
    let (lm_bits, gm_bits) = run(&|grad, threads, c| {
        loss_and_gradient(
            &Ensemble::new(&problem, &moments, &noise),
            &model,
            Threads(Reverse(c), threads),
            &mut Scratch::<8, 1>::owned(),
            grad,
        )
        .unwrap()
    });
    assert_ne!(g_bits, gm_bits);

    // Against the serial function: the same loss bits, the same u0 entry, the parameter
    // entries to rounding (they are summed per trajectory first).
    let mut stats = [[Dual::<8>::ZERO; 1]; 14];
    let mut tape = vec![[0.0f32; 1]; reverse::tape_len_keep_all(&problem, Checkpoints::All)];
    for (loss_bits, grad_bits, mean_only) in [(l_bits, &g_bits, true), (lm_bits, &gm_bits, false)] {
        let mut serial = [0.0f32; SeedModel::PARAMS + 1];
        let l = if mean_only {
            loss_and_gradient(
                &Ensemble::new(&problem, &mse, &noise),
                &model,
                Reverse(Checkpoints::All),
                &mut Scratch::new(&mut stats, &mut tape),
                &mut serial,
            )
        } else {
            loss_and_gradient(
                &Ensemble::new(&problem, &moments, &noise),
                &model,
                Reverse(Checkpoints::All),
                &mut Scratch::new(&mut stats, &mut tape),
                &mut serial,
            )
        }
        .unwrap();
        assert_eq!(l.to_bits(), loss_bits);
        let threaded: Vec<f32> = grad_bits.iter().map(|&b| f32::from_bits(b)).collect();
        assert_eq!(
            threaded[SeedModel::PARAMS].to_bits(),
            serial[SeedModel::PARAMS].to_bits()
        );
        let scale = serial.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        for (i, (t, s)) in threaded.iter().zip(&serial).enumerate() {
            assert!((t - s).abs() <= 1e-5 * scale, "entry {i}: {t} vs {s}");
        }
    }
}

/// A model that blows up on some trajectories: du = u^3 dt + 0.6 dW from 0. Returns the
/// problem's save times' owner and the model.
fn exploding() -> NeuralSde<(Cube<1>, Dense<1, 1, Identity>), Dense<1, 1, Identity>> {
    let mut model = NeuralSde::<(Cube<1>, Dense<1, 1, Identity>), Dense<1, 1, Identity>>::default();
    model.write_params(&[1.0, 0.0, 0.0, 0.6]).unwrap();
    model
}

#[test]
fn errors_are_the_serial_ones_and_leave_the_gradient_untouched() {
    let model = exploding();
    let times = [1.0, 2.0, 4.0];
    let data = [[0.0f32]; 3];
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 4.0, 40).unwrap());
    let problem = Problem::new(solver, [0.0], 23, &times).unwrap();
    let noise = Brownian::new(5);
    let sentinel = [7.25f32; 4];

    let mut stats = [[Dual::<2>::ZERO; 1]; 6];
    let mut grad = sentinel;
    let serial = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut grad,
    );
    let Err(Error::Diverged { trajectory, .. }) = serial else {
        panic!("the model should diverge: {serial:?}");
    };
    assert!(
        trajectory > 0,
        "a later trajectory diverges first: {trajectory}"
    );
    let mut tape = vec![[0.0f32; 1]; reverse::tape_len_keep_all(&problem, Checkpoints::All)];
    let serial_rev = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Reverse(Checkpoints::All),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    );
    // The same trajectory; forward mode checks finiteness once per save interval, so the
    // step it names may be later than the step-by-step check of reverse mode's.
    assert!(matches!(serial_rev, Err(Error::Diverged { trajectory: t, .. }) if t == trajectory));
    for threads in THREADS {
        let mut grad = sentinel;
        let fwd = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            &model,
            Threads(Forward, threads),
            &mut Scratch::new(&mut stats, &mut []),
            &mut grad,
        );
        assert_eq!(fwd, serial, "{threads} threads");
        assert_eq!(bits(&grad), bits(&sentinel));
        let rev = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            &model,
            Threads(Reverse(Checkpoints::Sqrt), threads),
            &mut Scratch::<8, 1>::owned(),
            &mut grad,
        );
        assert_eq!(rev, serial_rev, "{threads} threads");
        assert_eq!(bits(&grad), bits(&sentinel));
    }

    // Input errors: as serially, before anything runs.
    let mut short = [7.25f32; 3];
    let fwd = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Threads(Forward, 2),
        &mut Scratch::new(&mut stats, &mut []),
        &mut short,
    );
    let rev = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Threads(Reverse(Checkpoints::All), 2),
        &mut Scratch::<8, 1>::owned(),
        &mut short,
    );
    let expected = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut short,
    );
    assert!(matches!(expected, Err(Error::Length { .. })));
    assert_eq!(fwd, expected);
    assert_eq!(rev, expected);
    assert_eq!(bits(&short), bits(&[7.25; 3]));
}

mod training {
    use super::*;
    use std::ops::ControlFlow;
    use tinysde::train::{
        Adam, AdamConfig, GradientMode, NoiseMode, TrainConfig, Trainer, Workspace,
    };

    const P: usize = SeedModel::PARAMS;

    fn config() -> TrainConfig {
        TrainConfig {
            noise: NoiseMode::Fresh { seed: 3 },
            clip_norm: None,
        }
    }

    /// Losses of `iterations` iterations of the slice-based trainer on the seed task
    /// (SOSRI, 30 steps, 13 trajectories, Adam 0.005), and the final parameters.
    fn slice_trainer(
        reverse: bool,
        threads: Option<usize>,
        iterations: u32,
    ) -> (Vec<u32>, Vec<u32>) {
        let data = seed_data();
        let loss = MeanSquaredError::new(&data).unwrap();
        let problem = seed_problem(&SEED_TIMES).with_u0_gradient(false);
        let mut model = seed_model();
        let adam = Adam::new(AdamConfig::lr(0.005), [0.0; P], [0.0; P]).unwrap();
        let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
        let mut stats = [[Dual::<8>::ZERO; 1]; 14];
        let mut tape = vec![[0.0f32; 1]; reverse::tape_len_keep_all(&problem, Checkpoints::All)];
        let ws = Workspace {
            params: &mut params,
            grad: &mut grad,
            best: &mut best,
            scratch: Scratch::new(&mut stats, &mut tape),
        };
        let trainer = EnsembleFit::new(problem, loss)
            .and_then(|fit| Trainer::new(&mut model, adam, fit, config(), ws))
            .unwrap();
        let mode = if reverse {
            GradientMode::Reverse(Checkpoints::All)
        } else {
            GradientMode::Forward
        };
        let mut losses = Vec::new();
        let record = |p: &tinysde::train::Progress| {
            losses.push(p.loss.to_bits());
            ControlFlow::Continue(())
        };
        let params = match threads {
            None => {
                let mut trainer = trainer.with_mode(mode).unwrap();
                trainer.run(iterations, record).unwrap();
                bits(trainer.params())
            }
            Some(t) => {
                let mut trainer = trainer.with_mode(Threads(mode, t)).unwrap();
                assert_eq!(trainer.threads(), t);
                trainer.run(iterations, record).unwrap();
                bits(trainer.params())
            }
        };
        (losses, params)
    }

    #[test]
    fn trainer_iterations_do_not_depend_on_the_thread_count() {
        for reverse in [false, true] {
            let iterations = if reverse { 12 } else { 4 };
            let serial = slice_trainer(reverse, None, iterations);
            let one = slice_trainer(reverse, Some(1), iterations);
            for threads in [2, 3, 7] {
                assert_eq!(
                    slice_trainer(reverse, Some(threads), iterations),
                    one,
                    "reverse {reverse}, {threads} threads"
                );
            }
            if reverse {
                // The first loss is computed before any update: the same bits.
                assert_eq!(one.0[0], serial.0[0]);
            } else {
                // Forward mode on threads is the serial computation, bit for bit.
                assert_eq!(one, serial);
            }
        }
    }

    /// The owned state's losses and final parameters.
    fn owned(threads: Option<usize>, iterations: u32) -> (Vec<u32>, Vec<u32>) {
        let data = seed_data();
        let loss = MeanSquaredError::new(&data).unwrap();
        let problem = seed_problem(&SEED_TIMES).with_u0_gradient(false);
        let mut training = EnsembleFit::new(problem, loss)
            .and_then(|fit| Trainer::owned(seed_model(), fit, AdamConfig::lr(0.005)))
            .unwrap()
            .with_config(config())
            .unwrap();
        assert_eq!(
            *training.mode(),
            Threads(tinysde::grad::Cheaper(Checkpoints::All), 1)
        );
        assert!(!tinysde::train::forward_is_cheaper(
            P,
            tinysde::train::TRAINING_LANES
        ));
        if let Some(t) = threads {
            training = training.with_threads(t);
        }
        let mut losses = Vec::new();
        training
            .run(iterations, |p| {
                losses.push(p.loss.to_bits());
                ControlFlow::Continue(())
            })
            .unwrap();
        (losses, bits(training.params()))
    }

    #[test]
    fn the_owned_state_trains_with_the_bits_of_the_slice_trainer() {
        let iterations = 30;
        // Its reverse mode is always the threaded (lane) form, whose bits do not depend on
        // the thread count: those of the slice trainer on threads.
        let slice = slice_trainer(true, Some(1), iterations);
        assert_eq!(owned(None, iterations), slice);
        assert_eq!(owned(Some(2), iterations), slice);
        assert_eq!(slice_trainer(true, Some(2), iterations), slice);
        // And it trains: the last loss is below the first.
        let (losses, _) = slice;
        let (first, last) = (
            f32::from_bits(losses[0]),
            f32::from_bits(losses[losses.len() - 1]),
        );
        assert!(last < first, "{first} -> {last}");
    }

    #[test]
    fn the_best_model_is_a_copy_that_leaves_training_alone() {
        let data = seed_data();
        let loss = MeanSquaredError::new(&data).unwrap();
        let problem = seed_problem(&SEED_TIMES).with_u0_gradient(false);
        let new = || {
            EnsembleFit::new(problem, loss)
                .and_then(|fit| Trainer::owned(seed_model(), fit, AdamConfig::lr(0.01)))
                .unwrap()
                .with_config(config())
                .unwrap()
        };
        let mut a = new();
        let mut b = new();
        fn go<F, O, Md, St, const K: usize>(t: &mut Trainer<'_, F, O, Md, St, K, 1>) -> Vec<u32>
        where
            St: tinysde::train::Storage,
            F: tinysde::train::FitGradient<St::Model, Md, K, 1>,
            O: tinysde::train::Optimizer,
            Md: Copy,
        {
            let mut losses = Vec::new();
            t.run(15, |p| {
                losses.push(p.loss.to_bits());
                ControlFlow::Continue(())
            })
            .unwrap();
            losses
        }
        assert_eq!(go(&mut a), go(&mut b));
        let best = a.best_model();
        // The copy has the best parameters; the state is still at the current ones.
        let mut best_params = [0.0f32; P];
        best.read_params(&mut best_params).unwrap();
        assert_eq!(bits(&best_params), bits(a.best().0));
        assert_ne!(
            bits(a.params()),
            bits(a.best().0),
            "the last update moved on"
        );
        let mut current = [0.0f32; P];
        a.model().read_params(&mut current).unwrap();
        assert_eq!(bits(&current), bits(a.params()));
        // Training continues exactly as if the copy had not been taken.
        assert_eq!(go(&mut a), go(&mut b));
        // into_best_model and restore_best agree with it.
        b.restore_best();
        let mut restored = [0.0f32; P];
        b.model().read_params(&mut restored).unwrap();
        assert_eq!(bits(&restored), bits(b.best().0));
        let (best_b, _) = (b.best().0.to_vec(), ());
        let model_b = b.into_best_model();
        let mut into = [0.0f32; P];
        model_b.read_params(&mut into).unwrap();
        assert_eq!(bits(&into), bits(&best_b));
    }

    #[test]
    fn the_owned_state_rejects_bad_settings() {
        let data = seed_data();
        let loss = MeanSquaredError::new(&data).unwrap();
        let problem = seed_problem(&SEED_TIMES).with_u0_gradient(false);
        // An optimizer of the wrong size.
        let small = Adam::new(AdamConfig::lr(0.01), vec![0.0; 3], vec![0.0; 3]).unwrap();
        assert!(matches!(
            EnsembleFit::new(problem, loss).and_then(|fit| Trainer::owned(
                seed_model(),
                fit,
                small
            )),
            Err(Error::Length {
                expected: P,
                found: 3,
                ..
            })
        ));
        // An invalid learning rate.
        assert!(EnsembleFit::new(problem, loss)
            .and_then(|fit| Trainer::owned(seed_model(), fit, AdamConfig::lr(f32::NAN)))
            .is_err());
        // A bad clipping norm.
        let t = EnsembleFit::new(problem, loss)
            .and_then(|fit| Trainer::owned(seed_model(), fit, AdamConfig::lr(0.01)))
            .unwrap();
        let bad = TrainConfig {
            clip_norm: Some(-1.0),
            ..config()
        };
        assert!(matches!(t.with_config(bad), Err(Error::OutOfRange { .. })));
        // Data of the wrong length.
        let short = MeanSquaredError::new(&data[..3]).unwrap();
        assert!(EnsembleFit::new(problem, short)
            .and_then(|fit| Trainer::owned(seed_model(), fit, AdamConfig::lr(0.01)))
            .is_err());
    }
}
