//! No panic path in `Solver::solve`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::noise::Brownian;
use tinysde::solve::{self, EulerMaruyama, SolveRequest, Solver, TimeGrid};
use tinysde_no_panic::{keep, opaque, seed::Model};

#[entry]
fn main() -> ! {
    let model: Model = opaque(Model::default());
    let times = opaque([0.0f32; 40]);
    let mut out = [[0.0f32; 1]; 40];
    if let Ok(grid) = TimeGrid::new(opaque(-3.0), opaque(3.0), opaque(60)) {
        let r = solve::solve(&Solver::new(EulerMaruyama, grid), &model, &Brownian::new(opaque(1)), &SolveRequest::new(opaque([1.0f32]), opaque(&times[..])).trajectory(opaque(5)), opaque(&mut out[..]));
        keep(r);
    }
    keep(&out);
    loop {}
}
