//! Euler–Maruyama: `u + f(t, u) h + g(t, u) dW`.

use super::{Calculus, Method, Step};
use crate::error::NoiseKind;
use crate::nn::ParamSeed;
use crate::noise::Increment;
use crate::real::Real;
use crate::sde::Sde;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EulerMaruyama;

impl Method for EulerMaruyama {
    const NAME: &'static str = "EulerMaruyama";
    const CALCULUS: Calculus = Calculus::Ito;
    const STRONG_ORDER: f32 = 0.5;
    const WEAK_ORDER: f32 = 1.0;
    const NEEDS_DZ: bool = false;
    fn supports(_noise: NoiseKind) -> bool {
        true
    }
}

impl<T: Real, S: Sde<T, D>, const D: usize> Step<T, S, D> for EulerMaruyama {
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
        let f = sde.drift(t, u, seed);
        let g = sde.diffusion(t, u, seed);
        let mut next = *u;
        for i in 0..D {
            next[i] += f[i] * h + g[i].scale(inc.dw[i]);
        }
        next
    }
}
