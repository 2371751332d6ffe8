//! No panic path in `reverse::loss_and_gradient` (the discrete adjoint of Euler–Maruyama
//! and Milstein, 8 lanes for the loss's derivatives, any checkpoints, a tape of any length) and in `Trainer::run` with
//! `Trainer::with_mode(Reverse(..))` (the firmware's on-device training).
#![no_std]
#![no_main]

use core::ops::ControlFlow;
use cortex_m_rt::entry;
use tinysde::grad::{loss_and_gradient, Ensemble, Reverse, Scratch};
use tinysde::grad::{reverse, Problem};
use tinysde::nn::Parameters;
use tinysde::noise::Brownian;
use tinysde::solve::{Checkpoints, EulerMaruyama, Milstein, Solver, TimeGrid};
use tinysde::train::{
    Adam, AdamConfig, EnsembleFit, MeanSquaredError, TrainConfig, Trainer, Workspace,
};
use tinysde::{Dual, Real};
use tinysde_no_panic::{keep, opaque, seed::Model};

const P: usize = <Model as Parameters>::PARAMS;

#[entry]
fn main() -> ! {
    let mut model: Model = opaque(Model::default());
    let times = opaque([0.0f32; 7]);
    let data = opaque([[0.0f32; 1]; 7]);
    let mut grad = [0.0f32; 64];
    let mut stats = [[Dual::<8>::ZERO; 1]; 14];
    // Long enough for the keep-all path with every checkpoint; the opaque slices below
    // make the optimizer assume any length, so both paths (and the short-tape error) stay.
    let mut tape = [[0.0f32; 1]; 520];
    let noise = Brownian::new(opaque(11));
    // Every kind of checkpoints, chosen at run time.
    let checkpoints = match opaque(0u8) {
        0 => Checkpoints::All,
        1 => Checkpoints::Sqrt,
        2 => Checkpoints::Binomial(opaque(5)),
        _ => Checkpoints::Every(opaque(7)),
    };
    if let (Ok(grid), Ok(loss)) = (
        TimeGrid::new(opaque(-3.0), opaque(3.0), opaque(60)),
        MeanSquaredError::new(opaque(&data[..])),
    ) {
        let solver = Solver::new(EulerMaruyama, grid);
        if let Ok(problem) = Problem::new(solver, opaque([1.0f32]), opaque(8), opaque(&times[..])) {
            let problem = problem.with_u0_gradient(opaque(true));
            keep(reverse::tape_len(&problem, checkpoints));
            keep(reverse::tape_len_keep_all(&problem, checkpoints));
            let r = loss_and_gradient(
                &Ensemble::new(&problem, &loss, &noise),
                &model,
                Reverse(checkpoints),
                &mut Scratch::new(opaque(&mut stats[..]), opaque(&mut tape[..])),
                opaque(&mut grad[..]),
            );
            keep(r);
        }
    }
    keep((&grad, &stats, &tape));

    // Milstein's adjoint (second derivatives of the diffusion network).
    if let (Ok(grid), Ok(loss)) = (
        TimeGrid::new(opaque(-3.0), opaque(3.0), opaque(60)),
        MeanSquaredError::new(opaque(&data[..])),
    ) {
        let solver = Solver::new(Milstein, grid);
        if let Ok(problem) = Problem::new(solver, opaque([1.0f32]), opaque(8), opaque(&times[..])) {
            let r = loss_and_gradient(
                &Ensemble::new(&problem, &loss, &noise),
                &model,
                Reverse(checkpoints),
                &mut Scratch::new(opaque(&mut stats[..]), opaque(&mut tape[..])),
                opaque(&mut grad[..]),
            );
            keep(r);
        }
    }
    keep((&grad, &stats, &tape));

    // The firmware's training loop in reverse mode.
    let (mut params, mut grad, mut best) = ([0.0f32; P], [0.0f32; P], [0.0f32; P]);
    let config = TrainConfig {
        clip_norm: opaque(Some(1.0)),
        ..TrainConfig::default()
    };
    if let (Ok(grid), Ok(loss), Ok(adam)) = (
        TimeGrid::new(opaque(-3.0), opaque(3.0), opaque(60)),
        MeanSquaredError::new(opaque(&data[..])),
        Adam::new(
            AdamConfig::lr(opaque(5e-4)),
            opaque([0.0f32; P]),
            opaque([0.0f32; P]),
        ),
    ) {
        let solver = Solver::new(EulerMaruyama, grid);
        if let Ok(problem) = Problem::new(solver, opaque([1.0f32]), opaque(8), opaque(&times[..])) {
            let ws = Workspace {
                params: opaque(&mut params[..]),
                grad: opaque(&mut grad[..]),
                best: opaque(&mut best[..]),
                scratch: Scratch::new(opaque(&mut stats[..]), opaque(&mut tape[..])),
            };
            let trainer = EnsembleFit::new(problem, loss)
                .and_then(|fit| Trainer::new(&mut model, adam, fit, config, ws))
                .and_then(|t| t.with_mode(Reverse(checkpoints)));
            if let Ok(mut trainer) = trainer {
                keep(trainer.run(opaque(5), |p| {
                    keep(p.loss);
                    ControlFlow::Continue(())
                }));
                trainer.restore_best();
            }
        }
    }
    keep((&params, &grad, &best));
    loop {}
}
