//! Stochastic differential equations `du = f(t, u) dt + g(t, u) dW`.
//!
//! An [`Sde`] gives the drift `f` and the diffusion `g` over any scalar [`Real`], and
//! declares its [`NoiseKind`]. The diffusion is returned as one value per state component:
//! for diagonal and additive noise component `i` is multiplied by its own `dW_i`, for scalar
//! noise every component is multiplied by the one shared `dW`.
//!
//! An SDE whose coefficients are not trained implements [`FixedSde`]: drift and diffusion
//! of `(t, u)` alone. Every `FixedSde` is an `Sde`, so it runs with every solver:
//!
//! ```
//! use tinysde::noise::Brownian;
//! use tinysde::sde::FixedSde;
//! use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Solver, TimeGrid};
//! use tinysde::{NoiseKind, Real};
//!
//! /// Geometric Brownian motion du = a u dt + b u dW (Itô).
//! struct Gbm { a: f32, b: f32 }
//! impl FixedSde<1> for Gbm {
//!     const NOISE: NoiseKind = NoiseKind::Diagonal;
//!     fn drift<T: Real>(&self, _t: f32, u: &[T; 1]) -> [T; 1] { [u[0] * self.a] }
//!     fn diffusion<T: Real>(&self, _t: f32, u: &[T; 1]) -> [T; 1] { [u[0] * self.b] }
//! }
//! let gbm = Gbm { a: 0.5, b: 0.2 };
//! assert_eq!(gbm.drift(0.0, &[2.0f32]), [1.0]);
//!
//! let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 100)?);
//! let times = [0.5, 1.0];
//! let (mut mean, mut variance) = ([[0.0f32; 1]; 2], [[0.0f32; 1]; 2]);
//! let out = EnsembleBuffers { mean: &mut mean, variance: &mut variance, paths: None };
//! solve::simulate_into(&solver, &gbm, &Brownian::new(1), &EnsembleRequest::new([1.0], 400, &times), out)?;
//! // E u(1) = e^0.5 = 1.65
//! assert!((mean[1][0] - 0.5f32.exp()).abs() < 0.05);
//! # Ok::<(), tinysde::Error>(())
//! ```
//!
//! A model with trainable parameters implements [`Sde`] itself: its `seed` argument says
//! which parameters carry tangents in forward mode (see [`ParamSeed`]), as
//! [`NeuralSde`] does.

mod seasonal;
mod vjp;

use rand_core::Rng;

use crate::nn::{Init, InitScheme, Layer, ParamSeed, Parameters};
use crate::real::Real;

pub use crate::error::NoiseKind;
pub use seasonal::Seasonal;
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

/// An SDE whose coefficients are not trained: drift and diffusion of `(t, u)` alone, for
/// every scalar (no [`ParamSeed`], no parameters). Every `FixedSde` is an [`Sde`] (a
/// blanket implementation), so it runs with every solver, ensemble and noise kind; see the
/// [module documentation](self) for an example. Generic over the scalar so that the same
/// code runs on `f32`, on lanes of trajectories and on the scalars of the derivative-based
/// methods (Milstein differentiates the diffusion on [`Directional`](crate::Directional)).
/// Where [`Sde`] is in scope too, name the trait to call these: `FixedSde::drift(&sde, t, &u)`.
pub trait FixedSde<const D: usize> {
    /// The structure of the noise.
    const NOISE: NoiseKind;
    /// The drift `f(t, u)`.
    fn drift<T: Real>(&self, t: f32, u: &[T; D]) -> [T; D];
    /// The diffusion `g(t, u)`, one value per state component.
    fn diffusion<T: Real>(&self, t: f32, u: &[T; D]) -> [T; D];
}

impl<S: FixedSde<D>, T: Real, const D: usize> Sde<T, D> for S {
    const NOISE: NoiseKind = <S as FixedSde<D>>::NOISE;
    #[inline]
    fn drift(&self, t: f32, u: &[T; D], _seed: ParamSeed) -> [T; D] {
        FixedSde::drift(self, t, u)
    }
    #[inline]
    fn diffusion(&self, t: f32, u: &[T; D], _seed: ParamSeed) -> [T; D] {
        FixedSde::diffusion(self, t, u)
    }
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
