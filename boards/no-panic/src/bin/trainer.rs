//! No panic path in `Trainer::new` and `Trainer::run` (forward-mode gradient, Adam,
//! clipping, best-parameter tracking).
#![no_std]
#![no_main]

use core::ops::ControlFlow;
use cortex_m_rt::entry;
use tinysde::grad::{Problem, Scratch};
use tinysde::nn::Parameters;
use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
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
    let (mut params, mut grad, mut best) = ([0.0f32; P], [0.0f32; P], [0.0f32; P]);
    let mut stats = [[Dual::<8>::ZERO; 1]; 14];
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
                scratch: Scratch::new(opaque(&mut stats[..]), &mut []),
            };
            if let Ok(mut trainer) = EnsembleFit::new(problem, loss)
                .and_then(|fit| Trainer::new(&mut model, adam, fit, config, ws))
            {
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
