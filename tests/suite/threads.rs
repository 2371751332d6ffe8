//! Gradients and training on several threads: the bits do not depend on the number of
//! threads (forward mode: they are the serial function's), errors are the serial path's
//! and leave the caller's gradient untouched.

use rand_core::Rng;
use tinysde::grad::{loss_and_gradient, loss_and_gradient_parallel, reverse, Problem};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, Sosri, TimeGrid};
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
    let l = loss_and_gradient(&problem, &model, &noise, &loss, &mut stats, &mut serial).unwrap();
    assert!(serial.iter().all(|g| *g != 0.0));
    for threads in THREADS {
        let mut grad = [0.0f32; SeedModel::PARAMS + 1];
        let lt = loss_and_gradient_parallel(
            &problem, &model, &noise, &loss, &mut stats, &mut grad, threads,
        )
        .unwrap();
        assert_eq!(lt.to_bits(), l.to_bits(), "{threads} threads");
        assert_eq!(bits(&grad), bits(&serial), "{threads} threads");
    }
    // Other lane counts too (lanes never interact).
    let mut grad = [0.0f32; SeedModel::PARAMS + 1];
    let mut stats5 = [[Dual::<5>::ZERO; 1]; 14];
    let lt = loss_and_gradient_parallel(&problem, &model, &noise, &loss, &mut stats5, &mut grad, 3)
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
            for checkpoints in [Checkpoints::All, Checkpoints::Sqrt] {
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
        reverse::loss_and_gradient_parallel(&problem, &model, &noise, &mse, c, grad, threads)
            .unwrap()
    });
    let (lm_bits, gm_bits) = run(&|grad, threads, c| {
        reverse::loss_and_gradient_parallel(&problem, &model, &noise, &moments, c, grad, threads)
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
            reverse::loss_and_gradient(
                &problem,
                &model,
                &noise,
                &mse,
                Checkpoints::All,
                &mut stats,
                &mut tape,
                &mut serial,
            )
        } else {
            reverse::loss_and_gradient(
                &problem,
                &model,
                &noise,
                &moments,
                Checkpoints::All,
                &mut stats,
                &mut tape,
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
    let serial = loss_and_gradient(&problem, &model, &noise, &loss, &mut stats, &mut grad);
    let Err(Error::Diverged { trajectory, .. }) = serial else {
        panic!("the model should diverge: {serial:?}");
    };
    assert!(
        trajectory > 0,
        "a later trajectory diverges first: {trajectory}"
    );
    let mut tape = vec![[0.0f32; 1]; reverse::tape_len_keep_all(&problem, Checkpoints::All)];
    let serial_rev = reverse::loss_and_gradient(
        &problem,
        &model,
        &noise,
        &loss,
        Checkpoints::All,
        &mut stats,
        &mut tape,
        &mut grad,
    );
    assert_eq!(serial_rev, serial);
    for threads in THREADS {
        let mut grad = sentinel;
        let fwd = loss_and_gradient_parallel(
            &problem, &model, &noise, &loss, &mut stats, &mut grad, threads,
        );
        assert_eq!(fwd, serial, "{threads} threads");
        assert_eq!(bits(&grad), bits(&sentinel));
        let rev = reverse::loss_and_gradient_parallel(
            &problem,
            &model,
            &noise,
            &loss,
            Checkpoints::Sqrt,
            &mut grad,
            threads,
        );
        assert_eq!(rev, serial, "{threads} threads");
        assert_eq!(bits(&grad), bits(&sentinel));
    }

    // Input errors: as serially, before anything runs.
    let mut short = [7.25f32; 3];
    let fwd =
        loss_and_gradient_parallel(&problem, &model, &noise, &loss, &mut stats, &mut short, 2);
    let rev = reverse::loss_and_gradient_parallel(
        &problem,
        &model,
        &noise,
        &loss,
        Checkpoints::All,
        &mut short,
        2,
    );
    let expected = loss_and_gradient(&problem, &model, &noise, &loss, &mut stats, &mut short);
    assert!(matches!(expected, Err(Error::Length { .. })));
    assert_eq!(fwd, expected);
    assert_eq!(rev, expected);
    assert_eq!(bits(&short), bits(&[7.25; 3]));
}
