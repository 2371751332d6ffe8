//! The discrete adjoint of the fixed-step methods: vector–Jacobian products of one step,
//! and one trajectory's backward pass from checkpoints.
//!
//! A step `u_{k+1} = Φ(t_k, h, u_k, ΔW_k; θ)` is differentiated by hand, stage by stage, in
//! reverse: given `ū_{k+1}`, [`StepVjp::step_vjp`] recomputes the stages of the step (with
//! the same increments) and returns `ū_k = (∂Φ/∂u)ᵀ ū_{k+1}`, adding
//! `(∂Φ/∂θ)ᵀ ū_{k+1}` into the parameter cotangent. Chained over every step this is the
//! exact gradient of the discrete solution (up to rounding), the same quantity forward mode
//! computes. It runs on `f32` for one trajectory or on [`F32x<L>`](crate::lanes::F32x) for L
//! trajectories at once, each lane with the bits of the `f32` computation.

#![allow(clippy::indexing_slicing, reason = "const-size loops")]

use super::{
    check_finite, lane_increment, EulerHeun, EulerMaruyama, Method, Milstein, PlanCursor,
    PlanEvent, PlannedStep, Solver, Sosra, Sosri, Sra1, SraTableau, SriTableau, Sriw1, Step, SOSRA,
    SOSRI, SRA1, SRIW1,
};
use crate::error::Error;
use crate::error::NoiseKind;
use crate::math;
use crate::nn::ParamSeed;
use crate::noise::{Increment, NoiseSource, StepSize, SQRT_3};
use crate::real::{PlainReal, Real};
use crate::sde::{MilsteinVjp, Sde, SdeVjp};

mod checkpoints;
mod driver;
mod vjp;

pub(crate) use checkpoints::{off_plan, LaneGroup};
pub use checkpoints::{Checkpoints, MAX_BINOMIAL_SNAPSHOTS};
pub(crate) use driver::{kept_rows, AdjointPass, Tape};
pub use vjp::StepVjp;

// The pieces the submodules share (`use super::*`).
use checkpoints::{next_snapshot, off_schedule, Keeper};
use vjp::axpy;
