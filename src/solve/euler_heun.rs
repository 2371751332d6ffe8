//! Euler–Heun: the Stratonovich predictor–corrector (trapezoidal) method.

#![allow(clippy::indexing_slicing, reason = "const-size loops")]

use super::euler_maruyama::euler_step;
use super::method::builtin_method;

builtin_method!(
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
    pub struct EulerHeun: "EulerHeun", Stratonovich, strong 0.5, weak 1.0, dz false, supports _,
    step(sde, t, h, u, inc, seed) {
        let (f0, g0, predictor) = euler_step(sde, t, h, u, &inc.dw, seed);
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
);
