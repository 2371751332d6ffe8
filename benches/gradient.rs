//! One loss-and-gradient evaluation on the two training tasks, in both gradient modes:
//! forward-mode sensitivity for K = 4, 8, 16 and 32 lanes per pass, and reverse mode (the
//! discrete adjoint) with every state kept, with sqrt(N) checkpoints and (seed task) with
//! binomial checkpointing of 4 to 32 snapshots, for one trajectory at a time or for all of
//! them (`_kept`). Each reverse configuration prints its tape length in rows and bytes.
//!
//! - seed task: 1-D model (Cube, Dense<1,20,FastTanh>, Dense<20,1>) + (Dense<1,20,FastSigmoid>,
//!   Dense<20,1>), 122 parameters, 100 trajectories, 600 Euler-Maruyama steps on [-3, 3],
//!   MSE of the mean at 7 save times.
//! - spiral: 2-D model (Cube, Dense<2,50,FastTanh>, Dense<50,2>) + Dense<2,2>, 258
//!   parameters, 100 trajectories, 30 save times on [0, 1], 116 Euler-Maruyama steps
//!   (4 per save interval), mean + variance matching.
//!
//! - wide: a 4,402-parameter model (drift Dense<1,64,FastTanh>, Dense<64,64,FastTanh>,
//!   Dense<64,1>; diffusion Dense<1,16,FastSigmoid>, Dense<16,1>), 16 trajectories, 40
//!   Euler-Maruyama steps on [0, 1], MSE of the mean at 4 save times: forward mode (K = 32,
//!   138 passes) against reverse mode (sqrt(N) checkpoints), the case reverse mode is for.
//!
//! Both gradients also on 1 and 2 threads (`_threads/.../T=`), and one training iteration of
//! the spiral's second phase (the owned `Trainer`, SOSRI, 29 steps) on 1 and 2 threads.
//!
//! - seed task, quick: the seed task as its example (`examples/fit_exp.rs`) runs it, with
//!   `QuickTanh`/`QuickSigmoid` instead of `FastTanh`/`FastSigmoid` (group
//!   `gradient/seed_task_quick_M100_EM600`): reverse mode on lanes keeping every state
//!   (`reverse_threads/all/T=1`, the protocol of the diffrax pair `seed_task_quick` in
//!   benches/peers/run.sh) and the loss alone (`value`).
//!
//! Run: `cargo bench --features benches --bench gradient` (short criterion settings); one mode only:
//! `cargo bench --features benches --bench gradient -- reverse`; threads only: `cargo bench --features benches --bench gradient -- T=`.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tinysde::grad::{loss_and_gradient, loss_value, reverse, Problem};
use tinysde::grad::{Ensemble, Forward, Reverse, Scratch, Threads};
use tinysde::nn::{
    Cube, Dense, FastSigmoid, FastTanh, Identity, Init, InitScheme, Parameters, QuickSigmoid,
    QuickTanh,
};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{Checkpoints, EulerMaruyama, Milstein, Solver, Sosri, TimeGrid};
use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, MomentMatching, Trainer};
use tinysde::{Dual, Real};

type SeedModel = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
/// The seed model with the activations of the seed task's example (`examples/fit_exp.rs`).
type QuickSeedModel = NeuralSde<
    (Cube<1>, Dense<1, 20, QuickTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, QuickSigmoid>, Dense<20, 1, Identity>),
>;
type SpiralModel =
    NeuralSde<(Cube<2>, Dense<2, 50, FastTanh>, Dense<50, 2, Identity>), Dense<2, 2, Identity>>;

/// A seed model of type `S` (Glorot-uniform weights, seed 1), the seed task's save times
/// t = -3, ..., 3 and its data `e^t + 1` there.
fn seed_setup<S: Init + Default>() -> (S, Vec<f32>, Vec<[f32; 1]>) {
    let mut model = S::default();
    tinysde::nn::init(
        &mut model,
        &mut tinysde::noise::rng_from_seed(1),
        InitScheme::GlorotUniform,
    )
    .unwrap();
    let times: Vec<f32> = (-3..=3).map(|x| x as f32).collect();
    let data: Vec<[f32; 1]> = times.iter().map(|&x| [x.exp() + 1.0]).collect();
    (model, times, data)
}

fn seed_task(c: &mut Criterion) {
    let (model, times, data) = seed_setup::<SeedModel>();
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(-3.0, 3.0, 600).unwrap());
    let problem = Problem::new(solver, data[0], 100, &times).unwrap();
    let noise = Brownian::new(3);
    let mut grad = vec![0.0f32; SeedModel::PARAMS];
    const DIM: usize = 1;
    let mut group = c.benchmark_group("gradient/seed_task_M100_EM600");
    macro_rules! lanes {
        ($($k:literal),*) => {$(
            let mut stats = vec![[Dual::<$k>::ZERO; 1]; problem.stats_len()];
            group.bench_function(concat!("forward/K=", $k), |b| {
                b.iter(|| {
                    black_box(
                        loss_and_gradient(&Ensemble::new(&problem, &loss, &noise), &model, Forward, &mut Scratch::new(&mut stats, &mut []), &mut grad)
                            .unwrap(),
                    )
                })
            });
        )*};
    }
    lanes!(4, 8, 16, 32);
    macro_rules! checkpoints {
        ($($name:literal => $c:expr, $len:path);*) => {$(
            let mut stats = vec![[Dual::<8>::ZERO; DIM]; problem.stats_len()];
            let mut tape = vec![[0.0f32; DIM]; $len(&problem, $c)];
            eprintln!(
                "{}: tape {} rows, {} bytes",
                $name,
                tape.len(),
                core::mem::size_of_val(tape.as_slice())
            );
            group.bench_function(concat!("reverse/", $name), |b| {
                b.iter(|| {
                    black_box(
                        loss_and_gradient(&Ensemble::new(&problem, &loss, &noise), &model, Reverse($c), &mut Scratch::new(&mut stats, &mut tape), &mut grad)
                        .unwrap(),
                    )
                })
            });
        )*};
    }
    // One trajectory's checkpoints at a time (the minimum tape), or every trajectory's
    // (the statistics pass keeps them: one solve fewer).
    checkpoints!(
        "all" => Checkpoints::All, reverse::tape_len;
        "sqrt" => Checkpoints::Sqrt, reverse::tape_len;
        "all_kept" => Checkpoints::All, reverse::tape_len_keep_all;
        "sqrt_kept" => Checkpoints::Sqrt, reverse::tape_len_keep_all;
        "binomial_4" => Checkpoints::Binomial(4), reverse::tape_len;
        "binomial_8" => Checkpoints::Binomial(8), reverse::tape_len;
        "binomial_16" => Checkpoints::Binomial(16), reverse::tape_len;
        "binomial_32" => Checkpoints::Binomial(32), reverse::tape_len;
        "binomial_8_kept" => Checkpoints::Binomial(8), reverse::tape_len_keep_all
    );
    // On threads (bits independent of the thread count): reverse mode keeping every
    // state, and forward mode with K = 16, on 1 and 2 threads.
    for threads in [1, 2] {
        group.bench_function(format!("reverse_threads/all/T={threads}"), |b| {
            b.iter(|| {
                black_box(
                    loss_and_gradient(
                        &Ensemble::new(&problem, &loss, &noise),
                        &model,
                        Threads(Reverse(Checkpoints::All), threads),
                        &mut Scratch::<8, 1>::owned(),
                        &mut grad,
                    )
                    .unwrap(),
                )
            })
        });
        let mut stats = vec![[Dual::<16>::ZERO; DIM]; problem.stats_len()];
        group.bench_function(format!("forward_threads/K=16/T={threads}"), |b| {
            b.iter(|| {
                black_box(
                    loss_and_gradient(
                        &Ensemble::new(&problem, &loss, &noise),
                        &model,
                        Threads(Forward, threads),
                        &mut Scratch::new(&mut stats, &mut []),
                        &mut grad,
                    )
                    .unwrap(),
                )
            })
        });
    }
    // The loss alone (one ensemble solve on f32): the unit of the cost model.
    let mut plain = vec![[0.0f32; DIM]; problem.stats_len()];
    group.bench_function("value", |b| {
        b.iter(|| black_box(loss_value(&problem, &model, &noise, &loss, &mut plain).unwrap()))
    });
    // The same task with Milstein: its adjoint differentiates the diffusion's derivative
    // (second derivatives of the diffusion network).
    let milstein = Problem::new(
        Solver::new(Milstein, TimeGrid::new(-3.0, 3.0, 600).unwrap()),
        data[0],
        100,
        &times,
    )
    .unwrap();
    let mut stats = vec![[Dual::<8>::ZERO; DIM]; milstein.stats_len()];
    let mut tape = vec![[0.0f32; DIM]; reverse::tape_len_keep_all(&milstein, Checkpoints::All)];
    group.bench_function("reverse/milstein_all_kept", |b| {
        b.iter(|| {
            black_box(
                loss_and_gradient(
                    &Ensemble::new(&milstein, &loss, &noise),
                    &model,
                    Reverse(Checkpoints::All),
                    &mut Scratch::new(&mut stats, &mut tape),
                    &mut grad,
                )
                .unwrap(),
            )
        })
    });
    group.bench_function("milstein_value", |b| {
        b.iter(|| black_box(loss_value(&milstein, &model, &noise, &loss, &mut plain).unwrap()))
    });
    group.finish();
}

/// The seed task with the example's quick activations: reverse mode on lanes keeping every
/// state on one thread (the diffrax pair's protocol), and the loss alone.
fn seed_task_quick(c: &mut Criterion) {
    let (model, times, data) = seed_setup::<QuickSeedModel>();
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(-3.0, 3.0, 600).unwrap());
    let problem = Problem::new(solver, data[0], 100, &times).unwrap();
    let noise = Brownian::new(3);
    let mut grad = vec![0.0f32; QuickSeedModel::PARAMS];
    let mut group = c.benchmark_group("gradient/seed_task_quick_M100_EM600");
    group.bench_function("reverse_threads/all/T=1", |b| {
        b.iter(|| {
            black_box(
                loss_and_gradient(
                    &Ensemble::new(&problem, &loss, &noise),
                    &model,
                    Threads(Reverse(Checkpoints::All), 1),
                    &mut Scratch::<8, 1>::owned(),
                    &mut grad,
                )
                .unwrap(),
            )
        })
    });
    let mut plain = vec![[0.0f32; 1]; problem.stats_len()];
    group.bench_function("value", |b| {
        b.iter(|| black_box(loss_value(&problem, &model, &noise, &loss, &mut plain).unwrap()))
    });
    group.finish();
}

fn spiral(c: &mut Criterion) {
    let mut model = SpiralModel::default();
    model
        .init(
            &mut tinysde::noise::rng_from_seed(2),
            InitScheme::GlorotUniform,
        )
        .unwrap();
    let times: Vec<f32> = (0..30).map(|i| i as f32 / 29.0).collect();
    // Targets shaped like the spiral's moments (values only matter for the loss value).
    let mean: Vec<[f32; 2]> = times
        .iter()
        .map(|&t| [2.0 * (1.0 - t) + 0.5 * t, 1.5 * t])
        .collect();
    let var: Vec<[f32; 2]> = times.iter().map(|&t| [0.1 * t, 0.1 * t]).collect();
    let loss = MomentMatching::new(&mean, &var).unwrap();
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 116).unwrap());
    let problem = Problem::new(solver, [2.0, 0.0], 100, &times).unwrap();
    let noise = Brownian::new(5);
    let mut grad = vec![0.0f32; SpiralModel::PARAMS];
    const DIM: usize = 2;
    let mut group = c.benchmark_group("gradient/spiral_M100_EM116");
    macro_rules! lanes {
        ($($k:literal),*) => {$(
            let mut stats = vec![[Dual::<$k>::ZERO; 2]; problem.stats_len()];
            group.bench_function(concat!("forward/K=", $k), |b| {
                b.iter(|| {
                    black_box(
                        loss_and_gradient(&Ensemble::new(&problem, &loss, &noise), &model, Forward, &mut Scratch::new(&mut stats, &mut []), &mut grad)
                            .unwrap(),
                    )
                })
            });
        )*};
    }
    lanes!(4, 8, 16, 32);
    macro_rules! checkpoints {
        ($($name:literal => $c:expr, $len:path);*) => {$(
            let mut stats = vec![[Dual::<8>::ZERO; DIM]; problem.stats_len()];
            let mut tape = vec![[0.0f32; DIM]; $len(&problem, $c)];
            eprintln!(
                "{}: tape {} rows, {} bytes",
                $name,
                tape.len(),
                core::mem::size_of_val(tape.as_slice())
            );
            group.bench_function(concat!("reverse/", $name), |b| {
                b.iter(|| {
                    black_box(
                        loss_and_gradient(&Ensemble::new(&problem, &loss, &noise), &model, Reverse($c), &mut Scratch::new(&mut stats, &mut tape), &mut grad)
                        .unwrap(),
                    )
                })
            });
        )*};
    }
    // One trajectory's checkpoints at a time (the minimum tape), or every trajectory's
    // (the statistics pass keeps them: one solve fewer).
    checkpoints!(
        "all" => Checkpoints::All, reverse::tape_len;
        "sqrt" => Checkpoints::Sqrt, reverse::tape_len;
        "all_kept" => Checkpoints::All, reverse::tape_len_keep_all;
        "sqrt_kept" => Checkpoints::Sqrt, reverse::tape_len_keep_all
    );
    // On threads (bits independent of the thread count): reverse mode keeping every
    // state, and forward mode with K = 16, on 1 and 2 threads.
    for threads in [1, 2] {
        group.bench_function(format!("reverse_threads/all/T={threads}"), |b| {
            b.iter(|| {
                black_box(
                    loss_and_gradient(
                        &Ensemble::new(&problem, &loss, &noise),
                        &model,
                        Threads(Reverse(Checkpoints::All), threads),
                        &mut Scratch::<8, 2>::owned(),
                        &mut grad,
                    )
                    .unwrap(),
                )
            })
        });
        let mut stats = vec![[Dual::<16>::ZERO; DIM]; problem.stats_len()];
        group.bench_function(format!("forward_threads/K=16/T={threads}"), |b| {
            b.iter(|| {
                black_box(
                    loss_and_gradient(
                        &Ensemble::new(&problem, &loss, &noise),
                        &model,
                        Threads(Forward, threads),
                        &mut Scratch::new(&mut stats, &mut []),
                        &mut grad,
                    )
                    .unwrap(),
                )
            })
        });
    }
    // The loss alone (one ensemble solve on f32): the unit of the cost model.
    let mut plain = vec![[0.0f32; DIM]; problem.stats_len()];
    group.bench_function("value", |b| {
        b.iter(|| black_box(loss_value(&problem, &model, &noise, &loss, &mut plain).unwrap()))
    });
    group.finish();
}

/// One training iteration of the spiral tutorial's second phase (SOSRI, 29 steps, 100
/// trajectories, Adam): the owned `Trainer` in reverse mode on 1 and 2 threads.
fn spiral_iteration(c: &mut Criterion) {
    let mut model = SpiralModel::default();
    model
        .init(
            &mut tinysde::noise::rng_from_seed(2),
            InitScheme::GlorotUniform,
        )
        .unwrap();
    let times: Vec<f32> = (0..30).map(|i| i as f32 / 29.0).collect();
    let mean: Vec<[f32; 2]> = times
        .iter()
        .map(|&t| [2.0 * (1.0 - t) + 0.5 * t, 1.5 * t])
        .collect();
    let var: Vec<[f32; 2]> = times.iter().map(|&t| [0.1 * t, 0.1 * t]).collect();
    let loss = MomentMatching::new(&mean, &var).unwrap();
    let solver = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, 29).unwrap());
    let problem = Problem::new(solver, [2.0, 0.0], 100, &times).unwrap();
    let mut group = c.benchmark_group("training_iteration/spiral_M100_SOSRI29");
    for threads in [1, 2] {
        let mut training = EnsembleFit::new(problem, &loss)
            .and_then(|fit| Trainer::owned(model, fit, AdamConfig::lr(1e-4)))
            .unwrap()
            .with_threads(threads);
        group.bench_function(format!("reverse/T={threads}"), |b| {
            b.iter(|| black_box(training.run(1, |_| ControlFlow::Continue(())).unwrap()))
        });
    }
    group.finish();
}

type WideModel = NeuralSde<
    (
        Dense<1, 64, FastTanh>,
        Dense<64, 64, FastTanh>,
        Dense<64, 1, Identity>,
    ),
    (Dense<1, 16, FastSigmoid>, Dense<16, 1, Identity>),
>;

fn wide(c: &mut Criterion) {
    let mut model = WideModel::default();
    model
        .init(
            &mut tinysde::noise::rng_from_seed(3),
            InitScheme::GlorotUniform,
        )
        .unwrap();
    let times = [0.25f32, 0.5, 0.75, 1.0];
    let data = [[0.8f32], [0.65], [0.55], [0.5]];
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 40).unwrap());
    let problem = Problem::new(solver, [1.0], 16, &times).unwrap();
    let noise = Brownian::new(3);
    let mut grad = vec![0.0f32; WideModel::PARAMS];
    let mut group = c.benchmark_group(format!("gradient/wide_P{}_M16_EM40", WideModel::PARAMS));
    let mut stats = vec![[Dual::<32>::ZERO; 1]; problem.stats_len()];
    group.bench_function("forward/K=32", |b| {
        b.iter(|| {
            black_box(
                loss_and_gradient(
                    &Ensemble::new(&problem, &loss, &noise),
                    &model,
                    Forward,
                    &mut Scratch::new(&mut stats, &mut []),
                    &mut grad,
                )
                .unwrap(),
            )
        })
    });
    let mut stats = vec![[Dual::<8>::ZERO; 1]; problem.stats_len()];
    let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, Checkpoints::Sqrt)];
    group.bench_function("reverse/sqrt", |b| {
        b.iter(|| {
            black_box(
                loss_and_gradient(
                    &Ensemble::new(&problem, &loss, &noise),
                    &model,
                    Reverse(Checkpoints::Sqrt),
                    &mut Scratch::new(&mut stats, &mut tape),
                    &mut grad,
                )
                .unwrap(),
            )
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = seed_task, seed_task_quick, spiral, spiral_iteration, wide
}
criterion_main!(benches);
