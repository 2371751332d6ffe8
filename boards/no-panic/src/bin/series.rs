//! No panic path in the grids through any save times (`TimeGrid::through`,
//! `TimeGrid::with_max_step`) and the windowed series fit (`loss_and_gradient` on `SeriesWindows`,
//! `series_loss_value`, `score_series`, `Trainer` on a `SeriesFit`, the Gaussian likelihood).
#![no_std]
#![no_main]

use core::ops::ControlFlow;
use cortex_m_rt::entry;
use tinysde::grad::{loss_and_gradient, Forward, Scratch, SeriesWindows};
use tinysde::grad::{loss_value, Problem};
use tinysde::nn::Parameters;
use tinysde::noise::Brownian;
use tinysde::solve::{self, EulerMaruyama, SolveRequest, Solver, TimeGrid};
use tinysde::train::{
    score_series, series_loss_value, Adam, AdamConfig, CalibrationScore, GaussianNll, Series,
    SeriesFit, SeriesProblem, TrainConfig, Trainer, Workspace,
};
use tinysde::{Dual, Real};
use tinysde_no_panic::{keep, opaque, seed::Model};

const P: usize = <Model as Parameters>::PARAMS;

#[entry]
fn main() -> ! {
    let mut model: Model = opaque(Model::default());
    let times = opaque([0.0f32; 40]);
    let values = opaque([[0.0f32; 1]; 40]);
    let mask = opaque([[true; 1]; 40]);
    let mut out = [[0.0f32; 1]; 40];
    let noise = Brownian::new(opaque(3));
    // Solves on both spacings through arbitrary save times.
    for grid in [
        TimeGrid::through(opaque(0.0), opaque(1.0), opaque(100)),
        TimeGrid::with_max_step(opaque(0.0), opaque(1.0), opaque(0.01)),
    ]
    .into_iter()
    .flatten()
    {
        keep(solve::solve(&Solver::new(EulerMaruyama, grid), &model, &noise, &SolveRequest::new(opaque([1.0f32]), opaque(&times[..])).trajectory(opaque(1)), opaque(&mut out[..])));
        // The Gaussian likelihood as a plain loss.
        if let (Ok(loss), Ok(problem)) = (
            GaussianNll::masked(opaque(&values[..]), opaque(&mask[..])),
            Problem::new(
                Solver::new(EulerMaruyama, grid),
                opaque([1.0f32]),
                opaque(4),
                opaque(&times[..]),
            ),
        ) {
            let mut stats = [[0.0f32; 1]; 80];
            keep(loss_value(
                &problem,
                &model,
                &noise,
                &loss,
                opaque(&mut stats[..]),
            ));
        }
    }
    // The windowed fit.
    let mut grad = [0.0f32; P];
    let mut stats = [[Dual::<8>::ZERO; 1]; 4];
    let mut stats32 = [[0.0f32; 1]; 4];
    let mut paths = [[0.0f32; 1]; 16];
    let mut samples = [0.0f32; 8];
    let mut score = CalibrationScore::new(opaque(0.9)).unwrap_or_else(|_| loop {});
    if let Ok(series) = Series::masked(opaque(&times[..]), opaque(&values[..]), opaque(&mask[..])) {
        if let Ok(problem) = SeriesProblem::new(EulerMaruyama, series, opaque(0.1), opaque(8))
            .and_then(|p| p.with_window(opaque(2)))
            .and_then(|p| p.with_batch(opaque(4)))
        {
            let batch = problem.batch(opaque(5));
            keep(loss_and_gradient(
                &SeriesWindows::new(&problem, &noise, batch),
                &model,
                Forward,
                &mut Scratch::new(opaque(&mut stats[..]), &mut []),
                opaque(&mut grad[..]),
            ));
            keep(series_loss_value(
                &problem,
                &model,
                &noise,
                batch,
                opaque(&mut stats32[..]),
            ));
            keep(score_series(
                &SeriesWindows::new(&problem, &noise, problem.all_windows()),
                &model,
                opaque(&mut paths[..]),
                opaque(&mut samples[..]),
                &mut score,
            ));
            let (mut params, mut best) = ([0.0f32; P], [0.0f32; P]);
            let ws = Workspace {
                params: opaque(&mut params[..]),
                grad: opaque(&mut grad[..]),
                best: opaque(&mut best[..]),
                scratch: Scratch::new(opaque(&mut stats[..]), &mut []),
            };
            if let Ok(adam) = Adam::new(
                AdamConfig::lr(opaque(5e-4)),
                opaque([0.0f32; P]),
                opaque([0.0f32; P]),
            ) {
                let config = opaque(TrainConfig::default());
                let fit = SeriesFit::new(problem).with_window_seed(opaque(0));
                if let Ok(mut trainer) = Trainer::new(&mut model, adam, fit, config, ws) {
                    keep(trainer.run(opaque(3), |p| {
                        keep(p.loss);
                        ControlFlow::Continue(())
                    }));
                    trainer.restore_best();
                }
            }
        }
    }
    keep((&out, &grad, &stats, &stats32, &score));
    loop {}
}
