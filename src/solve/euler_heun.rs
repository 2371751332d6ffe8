//! Euler–Heun: the Stratonovich predictor–corrector (trapezoidal) method.

use super::{Calculus, Method, Step};
use crate::error::NoiseKind;
use crate::nn::ParamSeed;
use crate::noise::Increment;
use crate::real::Real;
use crate::sde::Sde;

/// Euler–Heun (Stratonovich): an Euler predictor, then the trapezoidal average of the
/// drift and the diffusion at both ends of the step.
///
/// ```text
/// u~     = u + f(t, u) h + g(t, u) dW
/// u_next = u + (f(t, u) + f(t + h, u~)) h/2 + (g(t, u) + g(t + h, u~)) dW / 2
/// ```
///
/// Two drift and two diffusion evaluations per step; any noise kind. It converges to the
/// **Stratonovich** solution. Strong order 0.5 in general and 1.0 where the noise is
/// commutative: scalar and additive noise, and diagonal noise whose `g_i` depends on `u_i`
/// only. Weak order 1.0.
///
/// ```
/// use tinysde::nn::ParamSeed;
/// use tinysde::noise::Brownian;
/// use tinysde::sde::Sde;
/// use tinysde::solve::{self, EulerHeun, Solver, SolveRequest, TimeGrid};
/// use tinysde::{NoiseKind, Real};
///
/// /// du = a u dt + b u o dW (Stratonovich): u(t) = u0 exp(a t + b W(t)).
/// struct Gbm;
/// impl<T: Real> Sde<T, 1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 1.01] }
///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 0.87] }
/// }
/// let solver = Solver::new(EulerHeun, TimeGrid::new(0.0, 1.0, 1000).unwrap());
/// let mut out = [[0.0f32; 1]];
/// solve::solve(&solver, &Gbm, &Brownian::new(3), &SolveRequest::new([0.5], &[1.0]), &mut out).unwrap();
/// assert!(out[0][0] > 0.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EulerHeun;

impl Method for EulerHeun {
    const NAME: &'static str = "EulerHeun";
    const CALCULUS: Calculus = Calculus::Stratonovich;
    const STRONG_ORDER: f32 = 0.5;
    const WEAK_ORDER: f32 = 1.0;
    const NEEDS_DZ: bool = false;
    fn supports(_noise: NoiseKind) -> bool {
        true
    }
}

impl<T: Real, S: Sde<T, D>, const D: usize> Step<T, S, D> for EulerHeun {
    #[inline]
    fn step(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T::Value>,
        seed: ParamSeed,
    ) -> [T; D] {
        let f0 = sde.drift(t, u, seed);
        let g0 = sde.diffusion(t, u, seed);
        let mut predictor = *u;
        for i in 0..D {
            predictor[i] += f0[i] * h + g0[i].scale(inc.dw[i]);
        }
        let t1 = t + h;
        let f1 = sde.drift(t1, &predictor, seed);
        let g1 = sde.diffusion(t1, &predictor, seed);
        let half_h = h * 0.5;
        let mut next = *u;
        for i in 0..D {
            // Equal end values give exactly f h and g dW (a constant g reproduces W).
            next[i] += (f0[i] + f1[i]) * half_h + ((g0[i] + g1[i]) * 0.5).scale(inc.dw[i]);
        }
        next
    }
}
