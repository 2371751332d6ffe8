//! Windowed training on a long series allocates nothing: memory does not grow with the
//! series' length (counted by a global allocator on a 100,000-row series).

use std::ops::ControlFlow;

use tinysde::grad::{loss_and_gradient, Forward};
use tinysde::grad::{Scratch, SeriesWindows};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::Sosri;
use tinysde::train::{
    score_series, Adam, AdamConfig, CalibrationScore, Series, SeriesProblem, Workspace,
};
use tinysde::train::{SeriesFit, TrainConfig, Trainer};
use tinysde::{Dual, Real};

use crate::alloc_counter;
use alloc_counter::allocations;

type Model = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
const P: usize = Model::PARAMS;

#[test]
fn windowed_training_on_a_long_series_allocates_nothing() {
    let n = 100_000;
    let times: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
    let values: Vec<[f32; 1]> = (0..n).map(|i| [(i as f32 * 0.003).sin()]).collect();
    let mut mask = vec![[true]; n];
    for gap in mask.iter_mut().skip(7).step_by(13) {
        *gap = [false];
    }
    let series = Series::masked(&times, &values, &mask).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.01, 8)
        .unwrap()
        .with_window(3)
        .unwrap()
        .with_batch(16)
        .unwrap();
    let mut model = Model::default();
    model
        .init(
            &mut tinysde::noise::rng_from_seed(1),
            InitScheme::GlorotUniform,
        )
        .unwrap();
    let mut grad = [0.0f32; P];
    let mut stats = [[Dual::<32>::ZERO; 1]; 6];
    let (count, value) = allocations(|| {
        loss_and_gradient(
            &SeriesWindows::new(&problem, &Brownian::new(2), problem.batch(3)),
            &model,
            Forward,
            &mut Scratch::new(&mut stats, &mut []),
            &mut grad,
        )
    });
    assert_eq!(count, 0, "series gradient allocated");
    assert!(value.unwrap().is_finite() && grad.iter().any(|&g| g != 0.0));

    let mut paths = [[0.0f32; 1]; 24];
    let mut samples = [0.0f32; 8];
    let mut score = CalibrationScore::new(0.9).unwrap();
    let (count, result) = allocations(|| {
        score_series(
            &SeriesWindows::new(&problem, &Brownian::new(4), problem.batch(5)),
            &model,
            &mut paths,
            &mut samples,
            &mut score,
        )
    });
    assert_eq!(count, 0, "scoring allocated");
    result.unwrap();
    assert!(score.count() > 0);

    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; P], [0.0; P]).unwrap();
    let (mut params, mut best) = ([0.0; P], [0.0; P]);
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let mut trainer = Trainer::new(
        &mut model,
        &mut adam,
        SeriesFit::new(problem),
        TrainConfig::default(),
        ws,
    )
    .unwrap();
    let (count, report) = allocations(|| trainer.run(3, |_| ControlFlow::Continue(())));
    assert_eq!(count, 0, "training iterations allocated");
    assert_eq!(report.unwrap().iterations, 3);
}
