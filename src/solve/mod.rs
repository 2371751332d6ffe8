//! Stochastic solvers with fixed steps on a [`TimeGrid`] or adaptive steps ([`Adaptive`]),
//! saving at requested times, ensembles, and the adjoints reverse mode differentiates through.
//!
//! A method is a unit struct implementing [`Method`] (its name, calculus, orders and the
//! noise kinds it accepts) and [`Step`] (one step of size `h` over any scalar). An
//! [`Integrator`] is what integrates: a [`Solver`] (a method on a [`TimeGrid`]; reversible
//! Heun too), or [`Adaptive`] (an embedded method with error control on a
//! [`BrownianTree`](crate::noise::BrownianTree)). Three calls use any of them: [`solve()`]
//! (one trajectory), [`simulate_into`] (an ensemble into the caller's buffers: no
//! allocation, the firmware's call) and [`simulate`] (owned results, feature `std`). How an
//! ensemble runs is a value of its request: [`OneAtATime`] (the default), [`InLanes`] or
//! [`Threads`], with the same bits. Every fixed-step solve walks a [`StepPlan`] of its
//! grid: steps are counted by an integer `k` from `t0` and each step's time comes from `k`
//! (never from accumulated floats).
//!
//! How an ensemble runs is a type, not a run-time flag: the firmware's one-at-a-time form
//! then never instantiates lane or thread code (its flash budget is checked by
//! `boards/ci.sh`), and each form states exactly the bounds it needs (lanes need an SDE and
//! a method over the wide scalar; threads need `Sync`). A combination that means nothing is
//! a compile error rather than a silent fallback: [`InLanes`] runs only the fixed-step
//! [`Solver`] with a [`Step`] method (adaptive steps differ between trajectories, and
//! reversible Heun's state is not a lane state); [`Threads`] runs every integrator, each
//! thread one trajectory at a time or in lane groups.
//!
//! `Solver<M>` is an [`Integrator`] for each method of this crate (one impl per method, as
//! reversible Heun's `Solver<ReversibleHeun>` integrates differently); code generic over
//! the method states the integrator it needs as a bound, e.g.
//! `Solver<M>: Integrator<f32, S, Brownian, 1>` or, for lanes,
//! `Solver<M>: LaneIntegrator<8, f32, S, Brownian, 1>` (see [`LaneIntegrator`]).
//!
//! Files: `method.rs` (what a method is), `fixed.rs` (the fixed-step solver), `adaptive.rs`,
//! `reversible_heun.rs`, `integrator.rs` (the integrator and execution abstractions),
//! `engine.rs` (checks, statistics and written-only-on-success, once), `threads.rs` (the
//! threaded engine), `ensemble.rs` (requests and the three calls), one file per method.
//!
//! ```
//! use tinysde::noise::Brownian;
//! use tinysde::sde::FixedSde;
//! use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Solver, TimeGrid};
//! use tinysde::{NoiseKind, Real};
//!
//! struct Bm; // pure Brownian motion: f = 0, g = 1
//! impl FixedSde<1> for Bm {
//!     const NOISE: NoiseKind = NoiseKind::Diagonal;
//!     fn drift<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
//!     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ONE] }
//! }
//! let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 100)?);
//! let (mut mean, mut var) = ([[0.0f32; 1]; 2], [[0.0f32; 1]; 2]);
//! let request = EnsembleRequest::new([0.0], 400, &[0.5, 1.0]);
//! solve::simulate_into(&solver, &Bm, &Brownian::new(1), &request, EnsembleBuffers::new(&mut mean, &mut var))?;
//! assert!((var[1][0] - 1.0).abs() < 0.2); // Var W(1) = 1
//! # Ok::<(), tinysde::Error>(())
//! ```

mod adaptive;
mod ensemble;
// The methods and their adjoints index their tableaus and state arrays in loops over const
// sizes (each file allows `clippy::indexing_slicing` for it): in bounds by construction, and
// checked in the compiled code by the no-panic proofs (boards/no-panic).
mod adjoint;
mod euler_heun;
mod euler_maruyama;
mod grid;
mod milstein;
mod reversible_heun;
mod rk4;
mod sra;
mod sri;

mod engine;
mod fixed;
mod integrator;
mod method;
#[cfg(feature = "std")]
mod threads;

pub use adaptive::{Adaptive, AdaptiveOptions, AdaptiveStats, Embedded};
pub(crate) use adjoint::{kept_rows, AdjointPass, LaneGroup, Tape};
pub use adjoint::{Checkpoints, StepVjp, MAX_BINOMIAL_SNAPSHOTS};
pub(crate) use engine::{finish_variance, welford_update};
pub use engine::{Tally, BACKUP_ROWS};
#[cfg(feature = "std")]
pub use ensemble::{simulate, Ensemble};
pub use ensemble::{simulate_into, solve, EnsembleBuffers, EnsembleRequest, SolveRequest};
pub use euler_heun::EulerHeun;
pub use euler_maruyama::EulerMaruyama;
pub use fixed::Solver;
pub(crate) use fixed::{check_finite, increment, lane_increment};
pub use grid::{PlanCursor, PlanEvent, PlannedStep, Spacing, StepPlan, TimeGrid};
#[cfg(feature = "std")]
pub use integrator::Threads;
pub use integrator::{
    Execution, InLanes, Integrator, Job, LaneIntegrator, OneAtATime, Seeded, Sweep,
};
pub use method::{Calculus, Method, Step};
pub use milstein::Milstein;
pub use reversible_heun::ReversibleHeun;
pub use rk4::Rk4;
pub use sra::{Sosra, Sra1, SraTableau, SOSRA, SRA1};
pub use sri::{Sosri, SriTableau, Sriw1, SOSRI, SRIW1};
#[cfg(feature = "std")]
pub use threads::PARALLEL_LANES;
