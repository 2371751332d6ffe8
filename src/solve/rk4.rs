//! The classical fourth-order Runge–Kutta method for the drift alone (neural ODEs).

#![allow(clippy::indexing_slicing, reason = "const-size loops")]

use super::method::builtin_method;
use crate::real::Real;

builtin_method!(
    /// Classical Runge–Kutta of order 4 for the **ODE** `du = f(t, u) dt`: the diffusion is
    /// never evaluated and no noise is drawn ([`Method::USES_NOISE`](super::Method::USES_NOISE) is false, the increments
    /// it is handed are zero and ignored).
    ///
    /// ```text
    /// k1 = f(t, u)              k2 = f(t + h/2, u + h/2 k1)
    /// k3 = f(t + h/2, u + h/2 k2)   k4 = f(t + h, u + h k3)
    /// u_next = u + h/6 (k1 + 2 k2 + 2 k3 + k4)
    /// ```
    ///
    /// Use it for a neural ODE (an SDE whose diffusion is meant to be zero), or to integrate
    /// the drift of a neural SDE on its own. It accepts every noise kind because it ignores
    /// the noise; its orders (4 strong and weak) are those of the ODE, and it does **not**
    /// solve the SDE when `g` is nonzero. [`Calculus::Both`](super::Calculus::Both): without noise the calculi agree.
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{self, Rk4, Solver, SolveRequest, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Growth; // du = u dt: u(1) = e
    /// impl<T: Real> Sde<T, 1> for Growth {
    ///     const NOISE: NoiseKind = NoiseKind::Diagonal;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0]] }
    ///     fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] { [T::ONE] }
    /// }
    /// let solver = Solver::new(Rk4, TimeGrid::new(0.0, 1.0, 20).unwrap());
    /// let mut out = [[0.0f32; 1]];
    /// solve::solve(&solver, &Growth, &Brownian::new(1), &SolveRequest::new([1.0], &[1.0]), &mut out).unwrap();
    /// assert!((out[0][0] - core::f32::consts::E).abs() < 1e-5);
    /// ```
    pub struct Rk4: "RK4", Both, strong 4.0, weak 4.0, dz false, noise false, supports _,
    step(sde, t, h, u, _inc, seed) {
        let half_h = h * 0.5;
        let t_mid = t + half_h;
        let k1 = sde.drift(t, u, seed);
        let k2 = sde.drift(t_mid, &axpy(u, &k1, half_h), seed);
        let k3 = sde.drift(t_mid, &axpy(u, &k2, half_h), seed);
        let k4 = sde.drift(t + h, &axpy(u, &k3, h), seed);
        let sixth_h = h / 6.0;
        let mut next = *u;
        for i in 0..D {
            next[i] += (k1[i] + (k2[i] + k3[i]) * 2.0 + k4[i]) * sixth_h;
        }
        next
    }
);

/// `u + a k`, element-wise.
#[inline]
fn axpy<T: Real, const D: usize>(u: &[T; D], k: &[T; D], a: f32) -> [T; D] {
    let mut out = *u;
    for (o, &ki) in out.iter_mut().zip(k) {
        *o += ki * a;
    }
    out
}
