//! # tinysde
//!
//! Neural stochastic differential equations that train on a laptop and run on a
//! microcontroller: `no_std`, no allocator, `f32`, fixed-step and adaptive stochastic
//! solvers, and exact gradients of the discrete solver, by forward-mode sensitivity in
//! constant memory or by reverse mode (a discrete adjoint with checkpoints) at a cost that
//! does not grow with the number of parameters.
//!
//! The modules follow the pipeline: [`nn`] (networks) -> [`sde`] (drift and diffusion) ->
//! [`noise`] (Brownian increments and trees) -> [`solve`] (fixed-step and adaptive methods,
//! ensembles, adjoints) -> [`grad`] (forward and reverse mode) -> [`train`] (losses,
//! calibration scores, optimizers, schedules, series training) -> [`weights`]
//! (a byte format firmware can `include_bytes!`). Everything is generic over the scalar
//! [`Real`]: `f32` for values, [`Dual<K>`] for values with K tangents.
//!
//! ```
//! use tinysde::nn::{init, Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme};
//! use tinysde::noise::{rng_from_seed, Brownian};
//! use tinysde::sde::NeuralSde;
//! use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Solver, TimeGrid};
//!
//! // The seed task's model: a 1-D neural SDE with diagonal noise.
//! type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
//! type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
//! let mut model = NeuralSde::<Drift, Diffusion>::default();
//! init(&mut model, &mut rng_from_seed(0), InitScheme::GlorotUniform)?;
//!
//! // 64 trajectories on [-3, 3] with 60 steps; mean and variance at the 7 integer times.
//! let solver = Solver::new(EulerMaruyama, TimeGrid::new(-3.0, 3.0, 60)?);
//! let save_times = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
//! let (mut mean, mut var) = ([[0.0f32; 1]; 7], [[0.0f32; 1]; 7]);
//! let noise = Brownian::new(42);
//! let request = EnsembleRequest::new([1.0], 64, &save_times);
//! solve::simulate_into(&solver, &model, &noise, &request, EnsembleBuffers::new(&mut mean, &mut var))?;
//! assert_eq!(mean[0], [1.0]); // the first save time is the initial state
//! assert!(var[6][0] > 0.0);
//! # Ok::<(), tinysde::Error>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// The error contract, held by lints (CI denies warnings): no indexing or slicing that can
// panic, no unwrap/expect/panic in library code. A module that indexes in a hot loop
// proven in bounds says so with `#[allow(clippy::indexing_slicing, reason = "...")]`;
// the no-panic proofs in boards/no-panic check the compiled result either way.
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod directional;
pub mod dual;
pub mod error;
pub mod forecast;
pub mod grad;
// Lane loops index fixed-size arrays by `0..L`: in bounds by construction, and the form
// the compiler turns into vector instructions most reliably.
#[allow(
    clippy::indexing_slicing,
    clippy::needless_range_loop,
    reason = "0..L loops over [_; L] arrays vectorize"
)]
pub mod lanes;
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
pub use error::{Error, ForecastError, NoiseKind, WeightsError};
pub use lanes::{F32x, Lanes, Mask};
pub use real::{MaskOf, PlainReal, Real, Widen};

/// The README's examples, compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
