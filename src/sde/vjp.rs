//! Vector–Jacobian products of an SDE's drift and diffusion, for reverse-mode gradients.

use super::{NeuralSde, Sde};
use crate::directional::Directional;
use crate::nn::{Backward, Layer, Parameters, TangentBackward};
use crate::real::{PlainReal, Real};

/// An SDE whose drift and diffusion have vector–Jacobian products: what the discrete
/// adjoint ([`crate::grad::reverse`]) needs of a model.
///
/// `T` is `f32` (the default) for one trajectory, or [`F32x<L>`](crate::lanes::F32x) for
/// the backward passes of L trajectories at once (what the threaded reverse mode runs on);
/// an SDE written by hand for `f32` only works with the one-trajectory functions. Each
/// lane must get the bits of the `f32` computation, which generic code over [`PlainReal`]
/// does.
///
/// Both methods *add* into `u_bar` the cotangent of the state, `(∂f/∂u)ᵀ f̄` (or
/// `(∂g/∂u)ᵀ ḡ`), and into `params_bar` (length [`Parameters::PARAMS`], flat parameter
/// order) the cotangent of the parameters. [`NeuralSde`] implements it from its networks'
/// [`Backward`]; a hand-written SDE implements it by hand, as here:
///
/// ```
/// use tinysde::nn::{ParamSeed, Parameters};
/// use tinysde::sde::{Sde, SdeVjp};
/// use tinysde::{Error, NoiseKind, Real};
///
/// /// Geometric Brownian motion du = a u dt + b u dW with trainable a and b.
/// struct Gbm { a: f32, b: f32 }
/// impl Parameters for Gbm {
///     const PARAMS: usize = 2;
///     fn read_unchecked(&self, out: &mut [f32]) { out.copy_from_slice(&[self.a, self.b]) }
///     fn write_unchecked(&mut self, src: &[f32]) { (self.a, self.b) = (src[0], src[1]) }
/// }
/// impl<T: Real> Sde<T, 1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
///         [u[0] * seed.lift::<T>(self.a, 0)]
///     }
///     fn diffusion(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
///         [u[0] * seed.lift::<T>(self.b, 1)]
///     }
/// }
/// impl SdeVjp<1> for Gbm {
///     fn drift_vjp(&self, _: f32, u: &[f32; 1], f_bar: &[f32; 1], u_bar: &mut [f32; 1], p_bar: &mut [f32]) {
///         u_bar[0] += self.a * f_bar[0];
///         if let Some(p) = p_bar.get_mut(0) { *p += u[0] * f_bar[0]; }
///     }
///     fn diffusion_vjp(&self, _: f32, u: &[f32; 1], g_bar: &[f32; 1], u_bar: &mut [f32; 1], p_bar: &mut [f32]) {
///         u_bar[0] += self.b * g_bar[0];
///         if let Some(p) = p_bar.get_mut(1) { *p += u[0] * g_bar[0]; }
///     }
/// }
/// let (mut u_bar, mut p_bar) = ([0.0f32], [0.0f32; 2]);
/// Gbm { a: 2.0, b: 0.5 }.drift_vjp(0.0, &[3.0], &[1.0], &mut u_bar, &mut p_bar);
/// assert_eq!((u_bar, p_bar), ([2.0], [3.0, 0.0]));
/// ```
pub trait SdeVjp<const D: usize, T: PlainReal = f32>: Sde<T, D> + Parameters {
    /// Adds `(∂f/∂u)ᵀ f_bar` into `u_bar` and `(∂f/∂θ)ᵀ f_bar` into `params_bar`, at `(t, u)`.
    fn drift_vjp(
        &self,
        t: f32,
        u: &[T; D],
        f_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    );
    /// Adds `(∂g/∂u)ᵀ g_bar` into `u_bar` and `(∂g/∂θ)ᵀ g_bar` into `params_bar`, at `(t, u)`.
    fn diffusion_vjp(
        &self,
        t: f32,
        u: &[T; D],
        g_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    );
}

/// One network's vector-Jacobian product at input `x`: adds the parameters' cotangents into
/// `params_bar` and the cotangents of the first `D` inputs (the state) into `u_bar`; inputs
/// past the state (a [`Seasonal`](super::Seasonal) model's time features) are constants.
#[inline]
pub(crate) fn network_vjp<T, L, const D: usize, const E: usize>(
    network: &L,
    x: &[T; E],
    out_bar: &[T; D],
    u_bar: &mut [T; D],
    params_bar: &mut [T],
) where
    T: PlainReal,
    L: Backward<T> + Layer<T, Input = [T; E], Output = [T; D]>,
{
    let x_bar = network.vjp(x, out_bar, params_bar);
    for (ub, xb) in u_bar.iter_mut().zip(x_bar) {
        *ub += xb;
    }
}

impl<T: PlainReal, F, G, const D: usize> SdeVjp<D, T> for NeuralSde<F, G>
where
    F: Backward<T> + Layer<T, Input = [T; D], Output = [T; D]>,
    G: Backward<T> + Layer<T, Input = [T; D], Output = [T; D]>,
{
    #[inline]
    fn drift_vjp(
        &self,
        _t: f32,
        u: &[T; D],
        f_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        network_vjp(&self.drift, u, f_bar, u_bar, params_bar);
    }

    #[inline]
    fn diffusion_vjp(
        &self,
        _t: f32,
        u: &[T; D],
        g_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        let rest = params_bar.get_mut(F::PARAMS..).unwrap_or(&mut []);
        network_vjp(&self.diffusion, u, g_bar, u_bar, rest);
    }
}

/// An [`SdeVjp`] whose Milstein correction also has a vector–Jacobian product: what the
/// discrete adjoint of [`Milstein`](crate::solve::Milstein) needs of a model.
///
/// The Milstein step uses, besides `g`, the product `q` of the diffusion and its derivative
/// in the state, `q_i = g_i ∂g_i/∂u_i` for diagonal noise and `q = (∂g/∂u) g` for scalar
/// noise (see [`Milstein`](crate::solve::Milstein); additive noise has none and never calls
/// this). [`milstein_vjp`](MilsteinVjp::milstein_vjp) differentiates `(g, q)` together, so
/// it needs second derivatives of the diffusion. [`NeuralSde`] implements it from its
/// diffusion network's [`TangentBackward`], one pass per state component; a hand-written
/// SDE implements it by hand, as here (`q = g g' = b² u`):
///
/// ```
/// use tinysde::nn::{ParamSeed, Parameters};
/// use tinysde::sde::{MilsteinVjp, Sde, SdeVjp};
/// use tinysde::{NoiseKind, Real};
///
/// /// du = a u dt + b u dW (Itô) with trainable a and b.
/// struct Gbm { a: f32, b: f32 }
/// impl Parameters for Gbm {
///     const PARAMS: usize = 2;
///     fn read_unchecked(&self, out: &mut [f32]) { out.copy_from_slice(&[self.a, self.b]) }
///     fn write_unchecked(&mut self, src: &[f32]) { (self.a, self.b) = (src[0], src[1]) }
/// }
/// impl<T: Real> Sde<T, 1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
///         [u[0] * seed.lift::<T>(self.a, 0)]
///     }
///     fn diffusion(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
///         [u[0] * seed.lift::<T>(self.b, 1)]
///     }
/// }
/// impl SdeVjp<1> for Gbm {
///     fn drift_vjp(&self, _: f32, u: &[f32; 1], f_bar: &[f32; 1], u_bar: &mut [f32; 1], p_bar: &mut [f32]) {
///         u_bar[0] += self.a * f_bar[0];
///         p_bar[0] += u[0] * f_bar[0];
///     }
///     fn diffusion_vjp(&self, _: f32, u: &[f32; 1], g_bar: &[f32; 1], u_bar: &mut [f32; 1], p_bar: &mut [f32]) {
///         u_bar[0] += self.b * g_bar[0];
///         p_bar[1] += u[0] * g_bar[0];
///     }
/// }
/// impl MilsteinVjp<1> for Gbm {
///     fn milstein_vjp(
///         &self, t: f32, u: &[f32; 1], g_bar: &[f32; 1], q_bar: &[f32; 1],
///         u_bar: &mut [f32; 1], p_bar: &mut [f32],
///     ) {
///         self.diffusion_vjp(t, u, g_bar, u_bar, p_bar);
///         u_bar[0] += self.b * self.b * q_bar[0]; // q = b² u
///         p_bar[1] += 2.0 * self.b * u[0] * q_bar[0];
///     }
/// }
/// let (mut u_bar, mut p_bar) = ([0.0f32], [0.0f32; 2]);
/// Gbm { a: 1.0, b: 0.5 }.milstein_vjp(0.0, &[2.0], &[0.0], &[1.0], &mut u_bar, &mut p_bar);
/// assert_eq!((u_bar, p_bar), ([0.25], [0.0, 2.0]));
/// ```
pub trait MilsteinVjp<const D: usize, T: PlainReal = f32>:
    SdeVjp<D, T> + Sde<Directional<T>, D>
{
    /// Adds `(∂g/∂u)ᵀ g_bar + (∂q/∂u)ᵀ q_bar` into `u_bar` and the same with `∂θ` into
    /// `params_bar`, at `(t, u)`, for the Milstein product `q` of the SDE's noise kind.
    fn milstein_vjp(
        &self,
        t: f32,
        u: &[T; D],
        g_bar: &[T; D],
        q_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    );
}

impl<T: PlainReal, F, G, const D: usize> MilsteinVjp<D, T> for NeuralSde<F, G>
where
    F: Backward<T>
        + Layer<T, Input = [T; D], Output = [T; D]>
        + Layer<Directional<T>, Input = [Directional<T>; D], Output = [Directional<T>; D]>,
    G: TangentBackward<T>
        + Layer<T, Input = [T; D], Output = [T; D]>
        + Layer<Directional<T>, Input = [Directional<T>; D], Output = [Directional<T>; D]>,
{
    /// Diagonal noise: `q_i = g_i ∂g_i/∂u_i`. One tangent pass of the diffusion network per
    /// component `i` (direction `e_i`) gives `g` and `∂g_i/∂u_i`; its reverse takes the
    /// cotangents `ȳ_i = q̄_i ∂g_i/∂u_i` and `ẏ̄_i = q̄_i g_i` (plus `ḡ` in the first pass).
    #[inline]
    fn milstein_vjp(
        &self,
        _t: f32,
        u: &[T; D],
        g_bar: &[T; D],
        q_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        let rest = params_bar.get_mut(F::PARAMS..).unwrap_or(&mut []);
        for i in 0..D {
            let mut direction = [<T as Real>::ZERO; D];
            if let Some(e) = direction.get_mut(i) {
                *e = <T as Real>::ONE;
            }
            let (y, y_dot, cache) = self.diffusion.forward_tangent_cached(u, &direction);
            let mut y_bar = if i == 0 {
                *g_bar
            } else {
                [<T as Real>::ZERO; D]
            };
            let mut y_dot_bar = [<T as Real>::ZERO; D];
            if let (Some(yb), Some(ydb), Some(&yi), Some(&ydi), Some(&qb)) = (
                y_bar.get_mut(i),
                y_dot_bar.get_mut(i),
                y.get(i),
                y_dot.get(i),
                q_bar.get(i),
            ) {
                *yb += qb * ydi;
                *ydb = qb * yi;
            }
            let (x_bar, _) = self
                .diffusion
                .backward_tangent(u, &direction, &cache, &y_bar, &y_dot_bar, rest);
            for (ub, xb) in u_bar.iter_mut().zip(x_bar) {
                *ub += xb;
            }
        }
    }
}
