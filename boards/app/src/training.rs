//! On-device training: a few Adam iterations on the seed data, gradients by forward mode.

use core::ops::ControlFlow;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use tinysde::grad::Problem;
use tinysde::solve::{Solver, TimeGrid};
use tinysde::train::{
    Adam, AdamConfig, MeanSquaredError, NoiseMode, TrainConfig, Trainer, Workspace,
};
use tinysde::{Dual, Error, Real};

use crate::report::Event;
use crate::seed::{self, SeedModel, LANES, PARAMS, SAVES};
use crate::{Board, Cycles, Report};

/// Trains `model` for `iterations` Adam iterations on [`seed::data`] (mean squared error of
/// the ensemble mean, [`seed::TRAIN_TRAJECTORIES`] trajectories on the fixed Brownian path
/// of [`seed::TRAIN_NOISE_SEED`]), reporting each iteration's loss and the clock units the
/// iteration (loss, gradient and update) took.
///
/// All state lives on the stack: the model (122 `f32`), Adam's two moments, the flat
/// parameters, the gradient, the best parameters, and `2 * SAVES` rows of `Dual<LANES>`.
#[inline(never)] // its buffers stay off the stack of inference
pub fn train<P, D, C, R>(
    board: &mut Board<P, D, C, R>,
    mut model: SeedModel,
    u0: [f32; 1],
    iterations: u32,
) -> Result<SeedModel, Error>
where
    P: OutputPin,
    D: DelayNs,
    C: Cycles,
    R: Report,
{
    let data = seed::data();
    let rows: [[f32; 1]; SAVES] = data.map(|y| [y]);
    let loss = MeanSquaredError::new(&rows)?;
    let solver = Solver::new(
        seed::Method::default(),
        TimeGrid::new(seed::T0, seed::T1, seed::STEPS)?,
    );
    let problem = Problem::new(solver, u0, seed::TRAIN_TRAJECTORIES, &seed::SAVE_TIMES)?;
    let mut adam = Adam::new(
        AdamConfig::lr(seed::TRAIN_LEARNING_RATE),
        [0.0f32; PARAMS],
        [0.0f32; PARAMS],
    )?;
    let mut params = [0.0f32; PARAMS];
    let mut grad = [0.0f32; PARAMS];
    let mut best = [0.0f32; PARAMS];
    let mut stats = [[Dual::<LANES>::ZERO; 1]; 2 * SAVES];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        stats: &mut stats,
    };
    let config = TrainConfig {
        noise: NoiseMode::Fixed {
            seed: seed::TRAIN_NOISE_SEED,
        },
        clip_norm: None,
    };
    {
        let mut trainer = Trainer::new(&mut model, &mut adam, problem, loss, config, ws)?;
        let mut last = board.clock.now();
        let report = &mut board.report;
        let clock = &mut board.clock;
        let led = &mut board.led;
        let active_high = board.led_active_high;
        trainer.run(iterations, |p| {
            let now = clock.now();
            report.event(&Event::Train {
                iteration: p.iteration,
                loss: p.loss,
                cost: now.wrapping_sub(last),
            });
            crate::led_set(led, (p.iteration % 2 == 0) == active_high);
            last = now;
            ControlFlow::Continue(())
        })?;
    } // the trainer borrows the model until here
    Ok(model)
}
