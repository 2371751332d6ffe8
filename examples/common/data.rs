//! Training data: the seed task's noisy exponential and the DiffEqFlux spiral.

use rand_core::Rng;
use tinysde::noise::Brownian;
use tinysde::sde::FixedSde;
use tinysde::solve::{self, EnsembleRequest, Solver, TimeGrid, PARALLEL_LANES};
use tinysde::{NoiseKind, Real};

use super::fit::Method;

/// A uniform number in `[0, 1)` from the top 24 bits of one `u32`.
fn unit_uniform<R: Rng>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The seed task's data: `y = exp(x) + U[0, 2)` at `x = -3, -2, ..., 3`, with the uniform
/// noise drawn from a generator seeded by `seed`. Returns the times (the `x`) and the
/// one-dimensional data rows. `exp` is the library's (libm), so the data is the same on
/// every machine.
pub fn seed_task(seed: u64) -> (Vec<f32>, Vec<[f32; 1]>) {
    let mut rng = tinysde::noise::rng_from_seed(seed);
    let times: Vec<f32> = (-3..=3).map(|x| x as f32).collect();
    let data = times
        .iter()
        .map(|&x| [tinysde::math::exp(x) + 2.0 * unit_uniform(&mut rng)])
        .collect();
    (times, data)
}

/// The DiffEqFlux tutorial's true system (Itô, diagonal multiplicative noise):
/// `du_i = sum_k u_k^3 A_ki dt + 0.2 u_i dW_i`, `A = [-0.1 2.0; -2.0 -0.1]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrueSpiral;

/// `A` of [`TrueSpiral`], row-major.
pub const SPIRAL_A: [[f32; 2]; 2] = [[-0.1, 2.0], [-2.0, -0.1]];
/// The noise scale of [`TrueSpiral`].
pub const SPIRAL_NOISE: [f32; 2] = [0.2, 0.2];
/// The initial state of the spiral.
pub const SPIRAL_U0: [f32; 2] = [2.0, 0.0];

impl FixedSde<2> for TrueSpiral {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift<T: Real>(&self, _t: f32, u: &[T; 2]) -> [T; 2] {
        let c = [u[0] * u[0] * u[0], u[1] * u[1] * u[1]];
        [
            c[0] * SPIRAL_A[0][0] + c[1] * SPIRAL_A[1][0],
            c[0] * SPIRAL_A[0][1] + c[1] * SPIRAL_A[1][1],
        ]
    }
    fn diffusion<T: Real>(&self, _t: f32, u: &[T; 2]) -> [T; 2] {
        [u[0] * SPIRAL_NOISE[0], u[1] * SPIRAL_NOISE[1]]
    }
}

/// The spiral's training data: save times and the moments of the true system there.
#[derive(Clone, Debug, PartialEq)]
pub struct SpiralData {
    /// `saves` equally spaced times in `[0, 1]`.
    pub times: Vec<f32>,
    /// The mean over the paths at each time.
    pub mean: Vec<[f32; 2]>,
    /// The variance over the paths at each time.
    pub var: Vec<[f32; 2]>,
}

/// The spiral's training data: `saves` equally spaced save times in `[0, 1]`, and the mean
/// and variance over `trajectories` paths of [`TrueSpiral`] there, solved by the examples'
/// method with `steps_per_save` steps between save times, noise from `Brownian::new(seed)`.
pub fn spiral(
    saves: usize,
    trajectories: usize,
    steps_per_save: u32,
    seed: u64,
) -> Result<SpiralData, tinysde::Error> {
    let intervals = saves.saturating_sub(1).max(1) as u32;
    let grid = TimeGrid::new(0.0, 1.0, intervals * steps_per_save)?;
    let times: Vec<f32> = (0..saves as u32)
        .map(|i| grid.time(i * steps_per_save))
        .collect();
    let solver = Solver::new(Method::default(), grid);
    // Lane groups on every core (the bits of one trajectory at a time).
    let request = EnsembleRequest::new(SPIRAL_U0, trajectories, &times)
        .in_lanes::<PARALLEL_LANES>()
        .on_threads(0);
    let ensemble = solve::simulate(&solver, &TrueSpiral, &Brownian::new(seed), &request)?;
    Ok(SpiralData {
        mean: ensemble.mean,
        var: ensemble.variance,
        times,
    })
}
