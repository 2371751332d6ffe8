//! Stochastic differential equations `du = f(t, u) dt + g(t, u) dW`.
//!
//! An [`Sde`] gives the drift `f` and the diffusion `g` over any scalar [`Real`], and
//! declares its [`NoiseKind`]. The diffusion is returned as one value per state component:
//! for diagonal and additive noise component `i` is multiplied by its own `dW_i`, for scalar
//! noise every component is multiplied by the one shared `dW`.
//!
//! ```
//! use tinysde::nn::ParamSeed;
//! use tinysde::sde::Sde;
//! use tinysde::{NoiseKind, Real};
//!
//! /// Geometric Brownian motion du = a u dt + b u dW (Itô).
//! struct Gbm { a: f32, b: f32 }
//! impl<T: Real> Sde<T, 1> for Gbm {
//!     const NOISE: NoiseKind = NoiseKind::Diagonal;
//!     fn drift(&self, _t: f32, u: &[T; 1], _seed: ParamSeed) -> [T; 1] { [u[0] * self.a] }
//!     fn diffusion(&self, _t: f32, u: &[T; 1], _seed: ParamSeed) -> [T; 1] { [u[0] * self.b] }
//! }
//! let f = <Gbm as Sde<f32, 1>>::drift(&Gbm { a: 1.01, b: 0.87 }, 0.0, &[0.5], ParamSeed::NONE);
//! assert_eq!(f, [0.505]);
//! ```

mod vjp;

use rand_core::Rng;

use crate::nn::{Init, InitScheme, Layer, ParamSeed, Parameters};
use crate::real::Real;

pub use crate::error::NoiseKind;
pub use vjp::{MilsteinVjp, SdeVjp};

/// An SDE on a `D`-dimensional state, evaluated over the scalar `T`.
///
/// `seed` tells a parameterized SDE which of its parameters carry tangents (see
/// [`ParamSeed`]); an SDE without trainable parameters ignores it.
pub trait Sde<T: Real, const D: usize> {
    /// The structure of the noise.
    const NOISE: NoiseKind;
    /// The drift `f(t, u)`.
    fn drift(&self, t: f32, u: &[T; D], seed: ParamSeed) -> [T; D];
    /// The diffusion `g(t, u)`, one value per state component.
    fn diffusion(&self, t: f32, u: &[T; D], seed: ParamSeed) -> [T; D];
}

/// A neural SDE with diagonal noise: `du = F(u) dt + G(u) .* dW` for two networks mapping
/// `[T; D]` to `[T; D]` (DiffEqFlux's `NeuralDSDE`). Autonomous: time is not an input.
///
/// Parameters, in flat order: the drift network's, then the diffusion network's.
///
/// ```
/// use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, Parameters};
/// use tinysde::sde::NeuralSde;
/// // The seed task's model.
/// type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
/// type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
/// type Model = NeuralSde<Drift, Diffusion>;
/// assert_eq!(Model::PARAMS, 61 + 61);
/// let params = [0.0f32; Model::PARAMS]; // sized by the model's own constant
/// # let _ = params;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NeuralSde<F, G> {
    /// The drift network `F`.
    pub drift: F,
    /// The diffusion network `G`.
    pub diffusion: G,
}

impl<F, G> NeuralSde<F, G> {
    /// A neural SDE from its two networks.
    pub const fn new(drift: F, diffusion: G) -> Self {
        Self { drift, diffusion }
    }
}

impl<F: Init, G: Init> NeuralSde<F, G> {
    /// Initializes both networks by `scheme`, drift first. See [`crate::nn::init`].
    pub fn init<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        scheme: InitScheme,
    ) -> Result<(), crate::Error> {
        crate::nn::init(self, rng, scheme)
    }
}

impl<F: Init, G: Init> Init for NeuralSde<F, G> {
    fn init_unchecked<R: Rng + ?Sized>(&mut self, rng: &mut R, scheme: InitScheme) {
        self.drift.init_unchecked(rng, scheme);
        self.diffusion.init_unchecked(rng, scheme);
    }
}

impl<F: Parameters, G: Parameters> Parameters for NeuralSde<F, G> {
    const PARAMS: usize = F::PARAMS + G::PARAMS;
    fn read_unchecked(&self, out: &mut [f32]) {
        let (f, g) = crate::nn::split_at_most_mut(out, F::PARAMS);
        self.drift.read_unchecked(f);
        self.diffusion.read_unchecked(g);
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        let (f, g) = crate::nn::split_at_most(src, F::PARAMS);
        self.drift.write_unchecked(f);
        self.diffusion.write_unchecked(g);
    }
}

impl<T, F, G, const D: usize> Sde<T, D> for NeuralSde<F, G>
where
    T: Real,
    F: Layer<T, Input = [T; D], Output = [T; D]>,
    G: Layer<T, Input = [T; D], Output = [T; D]>,
{
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    #[inline]
    fn drift(&self, _t: f32, u: &[T; D], seed: ParamSeed) -> [T; D] {
        self.drift.forward(u, seed)
    }
    #[inline]
    fn diffusion(&self, _t: f32, u: &[T; D], seed: ParamSeed) -> [T; D] {
        self.diffusion.forward(u, seed.shifted(F::PARAMS))
    }
}
