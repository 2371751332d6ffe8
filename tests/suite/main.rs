//! tinysde's integration tests, in one binary (`cargo test --features std`; one module's
//! tests: `cargo test --features std --test suite contract::`).
//!
//! One binary instead of one per file: the solvers, ensembles and gradients are generic, so
//! every test binary compiled its own optimized copy of them and linked it; one binary
//! compiles and links them once.

mod alloc_counter;

/// The examples' shared code, once for all three examples that tests/suite/examples.rs
/// includes (each example uses this copy when compiled into the suite).
#[path = "../../examples/common/mod.rs"]
mod common;

mod activation;
mod adaptive;
mod adjoint_binomial;
mod adjoint_milstein;
mod baseline;
mod calibration;
mod contract;
mod convergence;
mod docs_figures;
mod examples;
mod filter_training;
mod firmware_parity;
mod forecast;
mod forecast_parts;
mod gradient;
mod grid;
mod lanes;
mod model_file;
mod nn;
mod nn_alloc;
mod noise;
mod observation_noise;
mod reverse;
mod reverse_grids;
mod reverse_lanes;
mod reverse_training;
mod reversible_heun;
mod seasonal;
mod seasonal_difference;
mod seed_calibration;
mod series_alloc;
mod series_reverse;
mod solver_alloc;
mod solvers;
mod threads;
mod train_alloc;
mod training;
mod trend;
mod weights;
