//! Training in reverse mode: the trainer's two gradient modes agree, the choice by cost,
//! the seed task trains in reverse mode, and a model with 4,000+ parameters trains.

use std::ops::ControlFlow;
use std::time::Instant;

use rand_core::Rng;
use tinysde::grad::Scratch;
use tinysde::grad::{loss_value, reverse, Cheaper, Loss, Problem, Reverse};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::{NeuralSde, Sde, SdeVjp};
use tinysde::solve::{Checkpoints, EulerMaruyama, Method, Solver, Sosri, Step, StepVjp, TimeGrid};
use tinysde::train::EnsembleFit;
use tinysde::train::{
    forward_is_cheaper, Adam, AdamConfig, GradientMode, MeanSquaredError, MomentMatching,
    NoiseMode, Optimizer, Sgd, SgdConfig, TrainConfig, Trainer, Workspace,
};
use tinysde::{Dual, Real};

type SeedModel = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
const SP: usize = SeedModel::PARAMS;
const SEED_TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

fn seed_data() -> [[f32; 1]; 7] {
    let mut rng = tinysde::noise::rng_from_seed(2021);
    SEED_TIMES.map(|x| [x.exp() + 2.0 * ((rng.next_u32() >> 8) as f32 / 16_777_216.0)])
}

/// As in tests/suite/training.rs: Glorot, except the first drift layer (its input is u^3).
fn seed_model() -> SeedModel {
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

/// `iterations` of training with SGD on fixed noise, in forward mode or reverse mode;
/// returns the losses and the final parameters (model, then u0).
fn train<S, M, L, const P: usize>(
    model: &S,
    problem: Problem<'_, M, 1>,
    loss: &L,
    reverse_mode: bool,
    iterations: u32,
) -> (Vec<f32>, Vec<f32>)
where
    S: Sde<Dual<8>, 1> + SdeVjp<1> + Parameters + Clone,
    M: Step<Dual<8>, S, 1> + StepVjp<S, 1>,
    L: Loss<1>,
{
    let mut model = model.clone();
    let mut sgd = Sgd::new(
        SgdConfig {
            lr: 0.02,
            momentum: 0.5,
        },
        [0.0f32; P],
    )
    .unwrap();
    let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
    let mut stats = vec![[Dual::<8>::ZERO; 1]; problem.stats_len()];
    let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, Checkpoints::Sqrt)];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let config = TrainConfig {
        noise: NoiseMode::Fixed { seed: 4 },
        clip_norm: Some(10.0),
    };
    let mode = if reverse_mode {
        GradientMode::Reverse(Checkpoints::Sqrt)
    } else {
        GradientMode::Forward
    };
    let mut t = EnsembleFit::new(problem, loss)
        .and_then(|fit| Trainer::new(&mut model, &mut sgd, fit, config, ws))
        .and_then(|t| t.with_mode(mode))
        .unwrap();
    assert_eq!(*t.mode(), mode);
    let mut losses = Vec::new();
    t.run(iterations, |p| {
        losses.push(p.loss);
        ControlFlow::Continue(())
    })
    .unwrap();
    (losses, t.params().to_vec())
}

/// The two modes train the same way: the first loss has the same bits, later ones and the
/// parameters after a few SGD steps agree to the rounding of the gradients (~1e-6
/// relative, amplified by a few steps of a smooth objective: tolerance 1e-4).
#[test]
fn both_modes_train_alike_with_masks_windows_and_u0() {
    let model = seed_model();
    let data = seed_data();
    let var = [[0.5f32]; 7];
    let mask = [[true], [true], [false], [true], [true], [true], [true]];
    let loss = MomentMatching::masked(&data, &var, &mask).unwrap();
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 30).unwrap());
    let problem = Problem::new(solver, data[0], 12, &SEED_TIMES)
        .unwrap()
        .with_u0_gradient(true)
        .with_window(5)
        .unwrap();
    let (lf, pf) = train::<_, _, _, { SP + 1 }>(&model, problem, &loss, false, 6);
    let (lr, pr) = train::<_, _, _, { SP + 1 }>(&model, problem, &loss, true, 6);
    assert_eq!(lf[0].to_bits(), lr[0].to_bits());
    for (a, b) in lf.iter().zip(&lr) {
        assert!((a - b).abs() <= 1e-4 * a.abs(), "losses {lf:?} vs {lr:?}");
    }
    assert!(lf[5] < lf[0], "no progress: {lf:?}");
    for (i, (a, b)) in pf.iter().zip(&pr).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
            "param {i}: {a} vs {b}"
        );
    }
    let mse = MeanSquaredError::new(&data).unwrap();
    let em = Problem::new(
        Solver::new(EulerMaruyama, TimeGrid::new(-3.0, 3.0, 60).unwrap()),
        data[0],
        8,
        &SEED_TIMES,
    )
    .unwrap();
    let (lf, pf) = train::<_, _, _, SP>(&model, em, &mse, false, 4);
    let (lr, pr) = train::<_, _, _, SP>(&model, em, &mse, true, 4);
    assert_eq!(lf[0].to_bits(), lr[0].to_bits());
    for (i, (a, b)) in pf.iter().zip(&pr).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
            "EM param {i}: {a} vs {b}"
        );
    }
}

#[test]
fn the_cheaper_mode_is_chosen_by_size_and_lanes() {
    assert!(forward_is_cheaper(4, 4));
    assert!(forward_is_cheaper(5, 6));
    assert!(!forward_is_cheaper(8, 8));
    assert!(!forward_is_cheaper(122, 16));
    assert!(!forward_is_cheaper(122, 32));

    type Tiny = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    let mut tiny = Tiny::default();
    let times = [0.5f32, 1.0];
    let data = [[1.0f32], [0.9]];
    let loss = MeanSquaredError::new(&data).unwrap();
    let problem = Problem::new(
        Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 10).unwrap()),
        [1.0],
        4,
        &times,
    )
    .unwrap();
    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; 4], [0.0; 4]).unwrap();
    let (mut p, mut g, mut b) = ([0.0; 4], [0.0; 4], [0.0; 4]);
    let mut stats = [[Dual::<4>::ZERO; 1]; 4];
    let mut tape = [[0.0f32; 1]; 32];
    let ws = Workspace {
        params: &mut p,
        grad: &mut g,
        best: &mut b,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let t = EnsembleFit::new(problem, &loss)
        .and_then(|fit| Trainer::new(&mut tiny, &mut adam, fit, TrainConfig::default(), ws))
        .unwrap()
        .with_mode(Cheaper(Checkpoints::Sqrt))
        .unwrap();
    assert!(forward_is_cheaper(4, 4)); // so forward mode: the tape is not needed
    assert_eq!(*t.mode(), Cheaper(Checkpoints::Sqrt));

    let mut model = seed_model();
    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; SP], [0.0; SP]).unwrap();
    let (mut p, mut g, mut b) = ([0.0; SP], [0.0; SP], [0.0; SP]);
    let mut stats = [[Dual::<16>::ZERO; 1]; 4];
    let mut tape = [[0.0f32; 1]; 7];
    let ws = Workspace {
        params: &mut p,
        grad: &mut g,
        best: &mut b,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let r = EnsembleFit::new(problem, &loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
        .unwrap()
        .with_mode(Cheaper(Checkpoints::Sqrt));
    // Reverse mode is chosen, and a short tape is an error.
    assert!(matches!(r, Err(tinysde::Error::Length { .. })));
}

/// The loss on a large fixed ensemble (256 trajectories, its own noise).
fn eval<S: Sde<f32, 1> + Parameters, M: Method + Step<f32, S, 1> + Copy>(
    model: &S,
    problem: &Problem<'_, M, 1>,
    loss: &MeanSquaredError<'_, 1>,
) -> f32 {
    let p = problem.with_trajectories(256).unwrap();
    let mut stats = vec![[0.0f32; 1]; p.stats_len()];
    loss_value(&p, model, &Brownian::new(99), loss, &mut stats).unwrap()
}

/// The seed task's recipe (tests/suite/training.rs) in reverse mode cuts the loss tenfold too.
#[test]
fn seed_task_trains_in_reverse_mode() {
    let start = Instant::now();
    let data = seed_data();
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 30).unwrap());
    let problem = Problem::new(solver, data[0], 16, &SEED_TIMES).unwrap();
    let mut model = seed_model();
    let before = eval(&model, &problem, &loss);
    let mut adam = Adam::new(AdamConfig::lr(0.005), [0.0; SP], [0.0; SP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; SP], [0.0; SP], [0.0; SP]);
    let mut stats = [[Dual::<8>::ZERO; 1]; 14];
    let mut tape = [[0.0f32; 1]; 64];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let config = TrainConfig {
        noise: NoiseMode::Fresh { seed: 1 },
        clip_norm: None,
    };
    let mut t = EnsembleFit::new(problem, &loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, config, ws))
        .unwrap()
        .with_mode(Reverse(Checkpoints::Sqrt))
        .unwrap();
    t.run(300, |_| ControlFlow::Continue(())).unwrap();
    t.restore_best();
    let after = eval(t.model(), &problem, &loss);
    eprintln!(
        "seed task, reverse mode: loss {before} -> {after} ({:.1}x) in {:.2} s",
        before / after,
        start.elapsed().as_secs_f64()
    );
    assert!(after * 10.0 <= before, "{before} -> {after}");
}

/// Two hidden layers of 64 units in the drift: 4,000+ parameters.
type Wide = NeuralSde<
    (
        Dense<1, 64, FastTanh>,
        Dense<64, 64, FastTanh>,
        Dense<64, 1, Identity>,
    ),
    (Dense<1, 16, FastSigmoid>, Dense<16, 1, Identity>),
>;
const WP: usize = Wide::PARAMS;

/// A model with 4,000+ parameters trains on the host in reverse mode (the case reverse mode
/// is for: forward mode would need 138 passes of 32 lanes per gradient; the two modes' cost
/// is measured by `cargo bench --features benches --bench gradient -- wide`).
#[test]
fn a_model_with_4000_parameters_trains() {
    const { assert!(WP > 4000) };
    let times = [0.25f32, 0.5, 0.75, 1.0];
    let data = [[0.8f32], [0.65], [0.55], [0.5]];
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 40).unwrap());
    let problem = Problem::new(solver, [1.0], 16, &times).unwrap();
    let mut model = Wide::default();
    model
        .init(
            &mut tinysde::noise::rng_from_seed(3),
            InitScheme::GlorotUniform,
        )
        .unwrap();
    let before = eval(&model, &problem, &loss);
    let mut adam = Adam::new(AdamConfig::lr(0.002), vec![0.0; WP], vec![0.0; WP]).unwrap();
    let (mut p, mut g, mut b) = (vec![0.0; WP], vec![0.0; WP], vec![0.0; WP]);
    let mut stats = [[Dual::<32>::ZERO; 1]; 8];
    let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, Checkpoints::Sqrt)];
    let ws = Workspace {
        params: &mut p,
        grad: &mut g,
        best: &mut b,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let mut t = EnsembleFit::new(problem, &loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
        .and_then(|t| t.with_mode(GradientMode::Reverse(Checkpoints::Sqrt)))
        .unwrap();
    t.run(100, |_| ControlFlow::Continue(())).unwrap();
    t.restore_best();
    assert_eq!(t.optimizer().num_params(), WP);
    drop(t);
    let after = eval(&model, &problem, &loss);
    assert!(
        after < 0.5 * before,
        "{before} -> {after} in 100 reverse iterations"
    );
}
