//! Gradients and training iterations allocate nothing: counted by a global allocator.

use std::ops::ControlFlow;

use tinysde::grad::Forward;
use tinysde::grad::{loss_and_gradient, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{Solver, Sosri, TimeGrid};
use tinysde::train::EnsembleFit;
use tinysde::train::{
    Adam, AdamConfig, GrowingWindow, MeanSquaredError, TrainConfig, Trainer, Workspace,
};
use tinysde::{Dual, Real};

use crate::alloc_counter;
use alloc_counter::allocations;

type Model = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
const P: usize = Model::PARAMS;

#[test]
fn gradient_and_training_iterations_allocate_nothing() {
    let mut model = Model::default();
    model
        .init(
            &mut tinysde::noise::rng_from_seed(1),
            InitScheme::GlorotUniform,
        )
        .unwrap();
    let times = [-3.0f32, -2.0, -1.0, 0.0];
    let data = [[0.5f32], [0.7], [1.0], [1.6]];
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 0.0, 12).unwrap());
    let problem = Problem::new(solver, data[0], 3, &times).unwrap();
    let loss = MeanSquaredError::new(&data).unwrap();
    let mut grad = [0.0f32; P];
    let mut stats = [[Dual::<32>::ZERO; 1]; 8];

    let (count, value) = allocations(|| {
        loss_and_gradient(
            &Ensemble::new(&problem, &loss, &Brownian::new(2)),
            &model,
            Forward,
            &mut Scratch::new(&mut stats, &mut []),
            &mut grad,
        )
    });
    assert_eq!(count, 0, "gradient allocated");
    let value = value.unwrap();
    assert!(value.is_finite() && grad.iter().any(|&g| g != 0.0));

    let mut adam = Adam::new(AdamConfig::lr(0.01), [0.0; P], [0.0; P]).unwrap();
    let (mut params, mut best) = ([0.0; P], [0.0; P]);
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let config = TrainConfig {
        clip_norm: Some(5.0),
        ..TrainConfig::default()
    };
    let (count, total) = allocations(|| {
        let mut trainer = EnsembleFit::new(problem, loss)
            .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, config, ws))
            .unwrap();
        let mut total = 0.0f32;
        trainer
            .run(3, |p| {
                total += p.loss;
                ControlFlow::Continue(())
            })
            .unwrap();
        let schedule = GrowingWindow {
            start: 2,
            add: 1,
            iters_per_stage: 1,
        };
        trainer
            .run_schedule(&schedule, |p| {
                total += p.loss;
                ControlFlow::Continue(())
            })
            .unwrap();
        trainer.restore_best();
        total
    });
    assert!(total.is_finite());
    assert_eq!(count, 0, "training allocated");
}
