//! The classical fourth-order Runge–Kutta method for the drift alone (neural ODEs).

use super::{Calculus, Method, Step};
use crate::error::NoiseKind;
use crate::nn::ParamSeed;
use crate::noise::Increment;
use crate::real::Real;
use crate::sde::Sde;

/// Classical Runge–Kutta of order 4 for the **ODE** `du = f(t, u) dt`: the diffusion is
/// never evaluated and no noise is drawn ([`Method::USES_NOISE`] is false, the increments
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
/// solve the SDE when `g` is nonzero. [`Calculus::Both`]: without noise the calculi agree.
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rk4;

impl Method for Rk4 {
    const NAME: &'static str = "RK4";
    const CALCULUS: Calculus = Calculus::Both;
    const STRONG_ORDER: f32 = 4.0;
    const WEAK_ORDER: f32 = 4.0;
    const NEEDS_DZ: bool = false;
    const USES_NOISE: bool = false;
    fn supports(_noise: NoiseKind) -> bool {
        true
    }
}

impl<T: Real, S: Sde<T, D>, const D: usize> Step<T, S, D> for Rk4 {
    #[inline]
    fn step(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        _inc: &Increment<D, T::Value>,
        seed: ParamSeed,
    ) -> [T; D] {
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
}

/// `u + a k`, element-wise.
#[inline]
fn axpy<T: Real, const D: usize>(u: &[T; D], k: &[T; D], a: f32) -> [T; D] {
    let mut out = *u;
    for (o, &ki) in out.iter_mut().zip(k) {
        *o += ki * a;
    }
    out
}
