//! No panic path in `Solver::ensemble` (Euler–Maruyama and Milstein) and `TimeGrid::new`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::noise::Brownian;
use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Milstein, Solver, TimeGrid};
use tinysde_no_panic::{keep, opaque, seed::Model};

#[entry]
fn main() -> ! {
    let model: Model = opaque(Model::default());
    let noise = Brownian::new(opaque(1));
    let times = opaque([0.0f32; 40]);
    let (mut mean, mut var, mut paths) = ([[0.0f32; 1]; 40], [[0.0f32; 1]; 40], [[0.0f32; 1]; 128]);
    if let Ok(grid) = TimeGrid::new(opaque(-3.0), opaque(3.0), opaque(60)) {
        let r = solve::simulate_into(&Solver::new(EulerMaruyama, grid), &model, &noise, &EnsembleRequest::new(opaque([1.0f32]), opaque(32), opaque(&times[..])), EnsembleBuffers { mean: opaque(&mut mean[..]), variance: opaque(&mut var[..]), paths: opaque(Some(&mut paths[..])) });
        keep(r);
        let r = solve::simulate_into(&Solver::new(Milstein, grid), &model, &noise, &EnsembleRequest::new(opaque([1.0f32]), opaque(32), opaque(&times[..])), EnsembleBuffers::new(opaque(&mut mean[..]), opaque(&mut var[..])));
        keep(r);
    }
    keep((&mean, &var, &paths));
    loop {}
}
