//! The seed model, its weights and the fixed configuration of the firmware run.
//!
//! Everything the forecast depends on is a constant here, so that the host test
//! `tests/suite/firmware_parity.rs` in the tinysde crate can compute the very same numbers. The
//! firmware prints a `CONFIG` record with these values (as bit patterns) and the host test
//! prints the same record from its own copy: `boards/ci.sh` compares the two, so the copies
//! cannot drift apart unnoticed.

use tinysde::nn::{Cube, Dense, Identity, Parameters, QuickSigmoid, QuickTanh};
use tinysde::sde::NeuralSde;
use tinysde::solve::EulerMaruyama;

/// The seed task's drift: `u -> u^3 -> 20 quick-tanh units -> 1`.
pub type Drift = (Cube<1>, Dense<1, 20, QuickTanh>, Dense<20, 1, Identity>);
/// The seed task's diffusion: `u -> 20 quick-sigmoid units -> 1`.
pub type Diffusion = (Dense<1, 20, QuickSigmoid>, Dense<20, 1, Identity>);
/// The seed model: a one-dimensional neural SDE with diagonal noise.
pub type SeedModel = NeuralSde<Drift, Diffusion>;

/// Number of parameters of the seed model.
pub const PARAMS: usize = SeedModel::PARAMS;

/// The method used for forecasts and on-device training.
pub type Method = EulerMaruyama;

/// The host-trained weights, linked into flash (written by the tinysde crate's example
/// `firmware_weights`).
pub static WEIGHTS: &[u8] = include_bytes!("../model/seed-quick.tsw");

/// Start of the time span (the first data point).
pub const T0: f32 = -3.0;
/// End of the time span (the last data point).
pub const T1: f32 = 3.0;
/// Euler–Maruyama steps over the span (h = 0.1).
pub const STEPS: u32 = 60;
/// Number of save times (the data points `x = -3, -2, ..., 3`).
pub const SAVES: usize = 7;
/// The save times.
pub const SAVE_TIMES: [f32; SAVES] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
/// Trajectories in the forecast ensemble.
pub const TRAJECTORIES: usize = 32;
/// Seed of the Brownian paths of the forecast.
pub const NOISE_SEED: u64 = 0x5EED_2021;

/// Seed of the uniform noise added to the data set.
pub const DATA_SEED: u64 = 7;
/// Seed of the Brownian paths used by on-device training (fixed, so that the loss is a
/// deterministic function of the parameters and falls smoothly).
pub const TRAIN_NOISE_SEED: u64 = 11;
/// Trajectories per ensemble during on-device training.
pub const TRAIN_TRAJECTORIES: usize = 8;
/// Adam step size of on-device training.
pub const TRAIN_LEARNING_RATE: f32 = 5e-4;
/// On-device training iterations.
pub const TRAIN_ITERATIONS: u32 = 5;
/// Tangent lanes per forward-mode pass during training (gradient in `PARAMS / LANES` passes).
pub const LANES: usize = 8;

/// Trajectories of the adaptive forecast (the same on every core: about 1100 accepted
/// SOSRI steps in all, 1e9 instructions of soft float on the Cortex-M0).
pub const ADAPTIVE_TRAJECTORIES: usize = 32;
/// Depth of the Brownian tree of the adaptive forecast over `[T0, T1]`: `2^16` grid
/// intervals (spacing 9.2e-5, the smallest step and the resolution of the save times).
pub const ADAPTIVE_DEPTH: u32 = 16;
/// Absolute and relative tolerance of the adaptive forecast (StochasticDiffEq's default).
pub const ADAPTIVE_TOLERANCE: f32 = 1e-2;

/// The seed task's data: `exp(x) + n` for `x = -3, ..., 3`, `n` uniform in `[0, 2)` drawn
/// from xoshiro128++ seeded with [`DATA_SEED`] (top 24 bits of each `u32`).
pub fn data() -> [f32; SAVES] {
    let mut rng = tinysde::noise::rng_from_seed(DATA_SEED);
    let mut out = [0.0f32; SAVES];
    for (y, &x) in out.iter_mut().zip(SAVE_TIMES.iter()) {
        let u = (rand_core::Rng::next_u32(&mut rng) >> 8) as f32 * (1.0 / 16_777_216.0);
        *y = tinysde::math::exp(x) + u * 2.0;
    }
    out
}

/// The initial state of forecasts and training: the first data point.
pub fn u0() -> [f32; 1] {
    [data()[0]]
}
