//! No panic path in `loss_and_gradient` (forward mode, 8 lanes) and `loss_value`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::grad::{loss_and_gradient, loss_value, Problem};
use tinysde::grad::{Ensemble, Forward, Scratch};
use tinysde::noise::Brownian;
use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
use tinysde::train::MeanSquaredError;
use tinysde::{Dual, Real};
use tinysde_no_panic::{keep, opaque, seed::Model};

#[entry]
fn main() -> ! {
    let model: Model = opaque(Model::default());
    let times = opaque([0.0f32; 7]);
    let data = opaque([[0.0f32; 1]; 7]);
    let mut grad = [0.0f32; 64];
    let mut stats = [[Dual::<8>::ZERO; 1]; 14];
    let mut stats32 = [[0.0f32; 1]; 14];
    let noise = Brownian::new(opaque(11));
    if let (Ok(grid), Ok(loss)) = (
        TimeGrid::new(opaque(-3.0), opaque(3.0), opaque(60)),
        MeanSquaredError::new(opaque(&data[..])),
    ) {
        let solver = Solver::new(EulerMaruyama, grid);
        if let Ok(problem) = Problem::new(solver, opaque([1.0f32]), opaque(8), opaque(&times[..])) {
            let problem = problem.with_u0_gradient(opaque(true));
            let r = loss_and_gradient(
                &Ensemble::new(&problem, &loss, &noise),
                &model,
                Forward,
                &mut Scratch::new(opaque(&mut stats[..]), &mut []),
                opaque(&mut grad[..]),
            );
            keep(r);
            keep(loss_value(
                &problem,
                &model,
                &noise,
                &loss,
                opaque(&mut stats32[..]),
            ));
        }
    }
    keep((&grad, &stats, &stats32));
    loop {}
}
