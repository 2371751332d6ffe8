//! # tinysde
//!
//! Neural stochastic differential equations that train on a laptop and run on a
//! microcontroller: `no_std`, no allocator, `f32`, fixed-step stochastic solvers, and exact
//! gradients of the discrete solver by forward-mode sensitivity in constant memory.
//!
//! The modules follow the pipeline: [`nn`] (networks) -> [`sde`] (drift and diffusion) ->
//! [`noise`] (Brownian increments) -> [`solve`] (fixed-step methods, ensembles) -> `grad`
//! (forward-mode sensitivities) -> `train` (losses, optimizers, schedules) -> `weights`.
//! Everything is generic over the scalar [`Real`]: `f32` for values, [`Dual<K>`] for
//! values with K tangents.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod directional;
pub mod dual;
pub mod error;
pub mod grad;
pub mod math;
pub mod nn;
pub mod noise;
pub mod real;
pub mod sde;
pub mod solve;
pub mod train;
pub mod weights;

pub use directional::Directional;
pub use dual::Dual;
pub use error::{Error, NoiseKind, WeightsError};
pub use real::Real;
