//! Vector–Jacobian products of an SDE's drift and diffusion, for reverse-mode gradients.

use super::{NeuralSde, Sde};
use crate::nn::{Backward, Layer, Parameters};

/// An SDE on `f32` whose drift and diffusion have vector–Jacobian products: what the
/// discrete adjoint ([`crate::grad::reverse`]) needs of a model.
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
pub trait SdeVjp<const D: usize>: Sde<f32, D> + Parameters {
    /// Adds `(∂f/∂u)ᵀ f_bar` into `u_bar` and `(∂f/∂θ)ᵀ f_bar` into `params_bar`, at `(t, u)`.
    fn drift_vjp(
        &self,
        t: f32,
        u: &[f32; D],
        f_bar: &[f32; D],
        u_bar: &mut [f32; D],
        params_bar: &mut [f32],
    );
    /// Adds `(∂g/∂u)ᵀ g_bar` into `u_bar` and `(∂g/∂θ)ᵀ g_bar` into `params_bar`, at `(t, u)`.
    fn diffusion_vjp(
        &self,
        t: f32,
        u: &[f32; D],
        g_bar: &[f32; D],
        u_bar: &mut [f32; D],
        params_bar: &mut [f32],
    );
}

impl<F, G, const D: usize> SdeVjp<D> for NeuralSde<F, G>
where
    F: Backward + Layer<f32, Input = [f32; D], Output = [f32; D]>,
    G: Backward + Layer<f32, Input = [f32; D], Output = [f32; D]>,
{
    #[inline]
    fn drift_vjp(
        &self,
        _t: f32,
        u: &[f32; D],
        f_bar: &[f32; D],
        u_bar: &mut [f32; D],
        params_bar: &mut [f32],
    ) {
        let (_, cache) = self.drift.forward_cached(u);
        let x_bar = self.drift.backward(u, &cache, f_bar, params_bar);
        for (ub, xb) in u_bar.iter_mut().zip(x_bar) {
            *ub += xb;
        }
    }

    #[inline]
    fn diffusion_vjp(
        &self,
        _t: f32,
        u: &[f32; D],
        g_bar: &[f32; D],
        u_bar: &mut [f32; D],
        params_bar: &mut [f32],
    ) {
        let (_, cache) = self.diffusion.forward_cached(u);
        let rest = params_bar.get_mut(F::PARAMS..).unwrap_or(&mut []);
        let x_bar = self.diffusion.backward(u, &cache, g_bar, rest);
        for (ub, xb) in u_bar.iter_mut().zip(x_bar) {
            *ub += xb;
        }
    }
}
