//! On-device training: a few Adam iterations on the seed data, gradients by reverse mode
//! (the discrete adjoint), which costs a few `f32` solves whatever the number of parameters;
//! forward mode needed `PARAMS / LANES` solves carrying `LANES` tangents.

use core::ops::ControlFlow;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use tinysde::grad::{Problem, Reverse, Scratch};
use tinysde::solve::{Checkpoints, Solver, TimeGrid};
use tinysde::train::{
    Adam, AdamConfig, EnsembleFit, MeanSquaredError, NoiseMode, TrainConfig, Trainer, Workspace,
};
use tinysde::{Dual, Error, Real};

use crate::report::Event;
use crate::seed::{self, SeedModel, LANES, PARAMS, SAVES, STEPS, TRAIN_TRAJECTORIES};
use crate::{Board, Cycles, Report};

/// Checkpoints of on-device reverse-mode training: every state (60 steps of one `f32` per
/// trajectory is little), so the backward pass recomputes nothing.
pub const TRAIN_CHECKPOINTS: Checkpoints = Checkpoints::All;

/// Rows of the reverse-mode tape: [`tinysde::grad::reverse::tape_len_keep_all`] for the training problem
/// with [`TRAIN_CHECKPOINTS`] (4 per save time, `STEPS + 1` per trajectory, one segment),
/// so the statistics pass keeps every trajectory's states and no per-trajectory forward
/// pass is needed. (A shorter tape, down to [`tinysde::grad::reverse::tape_len`], costs one more solve
/// per iteration with the same bits.)
pub const TAPE_ROWS: usize = 4 * SAVES + TRAIN_TRAJECTORIES * (STEPS as usize + 1) + 1;

/// Trains `model` for `iterations` Adam iterations on [`seed::data`] (mean squared error of
/// the ensemble mean, [`seed::TRAIN_TRAJECTORIES`] trajectories on the fixed Brownian path
/// of [`seed::TRAIN_NOISE_SEED`]), reporting each iteration's loss and the clock units the
/// iteration (loss, gradient and update) took.
///
/// Gradients come from reverse mode with [`TRAIN_CHECKPOINTS`] and a tape of
/// [`TAPE_ROWS`] rows, enough to keep every trajectory's states from the statistics
/// pass (so no state is solved twice). All state lives on the stack: the model (122 `f32`),
/// Adam's two moments, the flat parameters, the gradient, the best parameters, `2 * SAVES`
/// rows of `Dual<LANES>` (the loss's derivatives in the ensemble statistics) and the tape
/// (about 2 KB).
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
    let mut tape = [[0.0f32; 1]; TAPE_ROWS];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let config = TrainConfig {
        noise: NoiseMode::Fixed {
            seed: seed::TRAIN_NOISE_SEED,
        },
        clip_norm: None,
    };
    {
        let fit = EnsembleFit::new(problem, loss)?;
        let mut trainer = Trainer::new(&mut model, &mut adam, fit, config, ws)?
            .with_mode(Reverse(TRAIN_CHECKPOINTS))?;
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
