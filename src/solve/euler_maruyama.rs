//! Euler–Maruyama: `u + f(t, u) h + g(t, u) dW`.

#![allow(clippy::indexing_slicing, reason = "const-size loops")]

use super::method::builtin_method;
use crate::nn::ParamSeed;
use crate::real::Real;
use crate::sde::Sde;

builtin_method!(
    /// Euler–Maruyama (Itô): one drift and one diffusion evaluation per step.
    ///
    /// Strong order 0.5 (1.0 for additive noise), weak order 1.0; any noise kind.
    ///
    /// ```
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::FixedSde;
    /// use tinysde::solve::{self, EulerMaruyama, SolveRequest, Solver, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Decay; // du = -u dt, no noise: Euler's method, u_k = (1 - h)^k
    /// impl FixedSde<1> for Decay {
    ///     const NOISE: NoiseKind = NoiseKind::Additive;
    ///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
    ///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
    /// }
    /// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 4)?);
    /// let mut out = [[0.0f32; 1]];
    /// solve::solve(&solver, &Decay, &Brownian::new(1), &SolveRequest::new([1.0], &[1.0]), &mut out)?;
    /// assert_eq!(out[0][0], 0.75f32 * 0.75 * 0.75 * 0.75);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub struct EulerMaruyama: "EulerMaruyama", Ito, strong 0.5, weak 1.0, dz false, supports _,
    step(sde, t, h, u, inc, seed) {
        let f = sde.drift(t, u, seed);
        let g = sde.diffusion(t, u, seed);
        euler_update(u, &f, &g, h, &inc.dw)
    }
);

/// One Euler–Maruyama step from `(t, u)` with the Brownian increments `dw`, and the drift
/// and the diffusion at `(t, u)` it used: `(f, g, u + f h + g dW)` (Euler–Heun's predictor).
#[inline]
pub(super) fn euler_step<T: Real, S: Sde<T, D>, const D: usize>(
    sde: &S,
    t: f32,
    h: f32,
    u: &[T; D],
    dw: &[T::Value; D],
    seed: ParamSeed,
) -> ([T; D], [T; D], [T; D]) {
    let f = sde.drift(t, u, seed);
    let g = sde.diffusion(t, u, seed);
    let next = euler_update(u, &f, &g, h, dw);
    (f, g, next)
}

/// `u + f h + g dW`, element-wise: the Euler–Maruyama update from the drift `f` and the
/// diffusion `g` (the first part of Milstein's step).
#[inline]
pub(super) fn euler_update<T: Real, const D: usize>(
    u: &[T; D],
    f: &[T; D],
    g: &[T; D],
    h: f32,
    dw: &[T::Value; D],
) -> [T; D] {
    let mut next = *u;
    for i in 0..D {
        next[i] += f[i] * h + g[i].scale(dw[i]);
    }
    next
}
