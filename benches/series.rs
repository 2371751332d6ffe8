//! One windowed loss-and-gradient evaluation on a long series (the calibrated fit's unit of
//! work): the seed model (122 parameters), one-step-ahead Gaussian likelihood, a batch of 64
//! windows of a 100,000-row series, 32 trajectories per window, SOSRI with steps of at most
//! 0.5 (two steps per window); forward mode (K = 32 lanes) and reverse mode (every state of
//! a window kept), each on one thread and on two. The cost does not depend on the length.
//!
//! Run: `cargo bench --features benches --bench series` (the two-thread cases need `std`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tinysde::grad::{loss_and_gradient, Forward, Reverse, Scratch, SeriesWindows, Threads};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{Checkpoints, Sosri};
use tinysde::train::{Series, SeriesProblem};
use tinysde::{Dual, Real};

type SeedModel = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;

fn long_series(c: &mut Criterion) {
    let mut model = SeedModel::default();
    model
        .init(
            &mut tinysde::noise::rng_from_seed(1),
            InitScheme::GlorotUniform,
        )
        .unwrap();
    let n = 100_000;
    let times: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let values: Vec<[f32; 1]> = (0..n).map(|i| [(i as f32 * 0.01).sin()]).collect();
    let series = Series::new(&times, &values).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.5, 32)
        .unwrap()
        .with_batch(64)
        .unwrap();
    let noise = Brownian::new(3);
    let mut grad = vec![0.0f32; SeedModel::PARAMS];
    let mut stats = vec![[Dual::<32>::ZERO; 1]; problem.stats_len()];
    c.bench_function("series/seed_model_100k_rows_batch64_M32_window1", |b| {
        b.iter(|| {
            loss_and_gradient(
                &SeriesWindows::new(&problem, &noise, problem.batch(5)),
                &model,
                Forward,
                &mut Scratch::new(&mut stats, &mut []),
                &mut grad,
            )
            .map(black_box)
        })
    });
    // The four passes (122 parameters, 32 lanes) on two threads: same bits.
    #[cfg(feature = "std")]
    c.bench_function(
        "series/seed_model_100k_rows_batch64_M32_window1_2threads",
        |b| {
            b.iter(|| {
                loss_and_gradient(
                    &SeriesWindows::new(&problem, &noise, problem.batch(5)),
                    &model,
                    Threads(Forward, 2),
                    &mut Scratch::<32, 1>::owned(),
                    &mut grad,
                )
                .map(black_box)
            })
        },
    );
    // Reverse mode: statistics, cotangents and one backward pass per trajectory, every
    // state kept (two steps per window), whatever the number of parameters.
    let mut tape =
        vec![[0.0f32; 1]; problem.reverse_tape_len_keep_all(SeedModel::PARAMS, Checkpoints::All)];
    c.bench_function(
        "series/seed_model_100k_rows_batch64_M32_window1_reverse",
        |b| {
            b.iter(|| {
                loss_and_gradient(
                    &SeriesWindows::new(&problem, &noise, problem.batch(5)),
                    &model,
                    Reverse(Checkpoints::All),
                    &mut Scratch::new(&mut stats, &mut tape),
                    &mut grad,
                )
                .map(black_box)
            })
        },
    );
    // The 64 windows on two threads: same bits.
    #[cfg(feature = "std")]
    c.bench_function(
        "series/seed_model_100k_rows_batch64_M32_window1_reverse_2threads",
        |b| {
            b.iter(|| {
                loss_and_gradient(
                    &SeriesWindows::new(&problem, &noise, problem.batch(5)),
                    &model,
                    Threads(Reverse(Checkpoints::All), 2),
                    &mut Scratch::<32, 1>::owned(),
                    &mut grad,
                )
                .map(black_box)
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = long_series
}
criterion_main!(benches);
