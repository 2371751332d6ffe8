//! Rößler's SRA family (strong order 1.5 for additive noise): one generic step driven by a
//! tableau, and the methods SRA1 and SOSRA as data.

#![allow(clippy::indexing_slicing, reason = "const-size loops")]

use super::method::builtin_method;
use crate::error::NoiseKind;
use crate::lanes::Lanes;
use crate::nn::ParamSeed;
use crate::noise::{Increment, SQRT_3};
use crate::real::Real;
use crate::sde::Sde;

/// The coefficients of an explicit `N`-stage stochastic Runge–Kutta method of Rößler's SRA
/// type for additive noise `du = f(t, u) dt + g(t) dW` (Rößler 2010).
///
/// Matrices are indexed `[row i][column j]`, strictly lower triangular. With
/// `chi2 = (dW + dZ / sqrt 3) / 2`, element-wise:
///
/// ```text
/// H0_i   = u + h sum_j a0[i][j] f(t + c0[j] h, H0_j) + chi2 sum_j b0[i][j] g(t + c1[j] h)
/// u_next = u + h sum_i alpha[i] f(t + c0[i] h, H0_i) + sum_i (beta1[i] dW + beta2[i] chi2) g(t + c1[i] h)
/// ```
///
/// As for [`SriTableau`](super::SriTableau) the quadrature is evaluated in difference form
/// using `sum alpha = sum beta1 = 1` and `sum beta2 = 0` (checked by this module's tests),
/// so equal stage values cancel exactly and pure Brownian motion is reproduced bit for
/// bit. The diffusion is evaluated at the step's starting state `u` (an additive SDE's
/// diffusion must not depend on it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SraTableau<const N: usize> {
    /// Time nodes of the drift stages.
    pub c0: [f32; N],
    /// Time nodes of the diffusion evaluations.
    pub c1: [f32; N],
    /// Drift coefficients of the stages.
    pub a0: [[f32; N]; N],
    /// Diffusion coefficients (times `chi2`) of the stages.
    pub b0: [[f32; N]; N],
    /// Drift weights.
    pub alpha: [f32; N],
    /// Weights of `g dW`.
    pub beta1: [f32; N],
    /// Weights of `g chi2`.
    pub beta2: [f32; N],
}

/// SRA1 (Rößler 2010): two stages.
pub const SRA1: SraTableau<2> = SraTableau {
    c0: [0.0, 0.75],
    c1: [1.0, 0.0],
    a0: [[0.0, 0.0], [0.75, 0.0]],
    b0: [[0.0, 0.0], [1.5, 0.0]],
    alpha: [1.0 / 3.0, 2.0 / 3.0],
    beta1: [1.0, 0.0],
    beta2: [-1.0, 1.0],
};

/// SOSRA (Rackauckas & Nie 2018): a three-stage, stability-optimized SRA method.
#[allow(clippy::excessive_precision)]
pub const SOSRA: SraTableau<3> = SraTableau {
    c0: [0.0, 0.6923962376159507, 1.0],
    c1: [0.0, 0.041248171110700504, 1.0],
    a0: [
        [0.0, 0.0, 0.0],
        [0.6923962376159507, 0.0, 0.0],
        [-3.1609142252828395, 4.1609142252828395, 0.0],
    ],
    b0: [
        [0.0, 0.0, 0.0],
        [1.3371632704399763, 0.0, 0.0],
        [1.442371048468624, 1.8632741501139225, 0.0],
    ],
    alpha: [0.2889874966892885, 0.6859880440839937, 0.025024459226717772],
    beta1: [-16.792534242221663, 17.514995785380226, 0.27753845684143835],
    beta2: [0.4237535769069274, 0.6010381474428539, -1.0247917243497813],
};

impl<const N: usize> SraTableau<N> {
    /// One step of the method from `(t, u)` of size `h` with increments `inc` (only valid
    /// for additive noise: the solver checks the SDE's declared noise kind), also writing
    /// with `estimate` the embedded error estimate of each component (values only): `|h sum_i alpha_i (f_i - f_0)|` plus
    /// `|sum_i beta2_i chi2 g_i|`, the order-1.5 term an order-1 scheme lacks.
    #[allow(
        clippy::too_many_arguments,
        reason = "Step::step's arguments and the estimate's output"
    )]
    #[inline]
    pub(super) fn step_estimating<T: Real, S: Sde<T, D>, const D: usize>(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T::Value>,
        seed: ParamSeed,
        mut estimate: Option<&mut [T::Value; D]>,
    ) -> [T; D] {
        let mut chi2 = [<T::Value as Lanes>::ZERO; D];
        for ((c, &dw), &dz) in chi2.iter_mut().zip(&inc.dw).zip(&inc.dz) {
            *c = (dw + dz / SQRT_3) * 0.5;
        }
        let mut g = [[T::ZERO; D]; N];
        for (gi, &c1) in g.iter_mut().zip(&self.c1) {
            *gi = sde.diffusion(t + c1 * h, u, seed);
        }
        let mut f = [[T::ZERO; D]; N];
        for i in 0..N {
            let mut x = *u;
            if i > 0 {
                for k in 0..D {
                    let mut a = T::ZERO;
                    let mut b = T::ZERO;
                    for j in 0..i {
                        a += f[j][k] * self.a0[i][j];
                        b += g[j][k] * self.b0[i][j];
                    }
                    x[k] += a * h + b.scale(chi2[k]);
                }
            }
            f[i] = sde.drift(t + self.c0[i] * h, &x, seed);
        }
        let mut next = *u;
        for k in 0..D {
            let mut fa = f[0][k];
            let mut b1 = g[0][k];
            let mut b2 = T::ZERO;
            for i in 1..N {
                fa += (f[i][k] - f[0][k]) * self.alpha[i];
                let dg = g[i][k] - g[0][k];
                b1 += dg * self.beta1[i];
                b2 += dg * self.beta2[i];
            }
            next[k] += fa * h + b1.scale(inc.dw[k]) + b2.scale(chi2[k]);
            if let Some(e) = estimate.as_deref_mut() {
                let drift = (fa - f[0][k]).value() * h;
                e[k] = drift.abs() + b2.scale(chi2[k]).value().abs();
            }
        }
        next
    }
}

macro_rules! sra_method {
    ($(#[$doc:meta])* $name:ident, $label:literal, $tableau:ident) => {
        builtin_method!(
            $(#[$doc])*
            pub struct $name: $label, Both, strong 1.5, weak 2.0, dz true, supports NoiseKind::Additive,
            step_estimating(sde, t, h, u, inc, seed, estimate) {
                $tableau.step_estimating(sde, t, h, u, inc, seed, estimate)
            }
        );
    };
}

sra_method!(
    /// SRA1 (Rößler 2010): the [`SraTableau`] step with [`SRA1`]'s coefficients.
    ///
    /// Additive noise only (Itô and Stratonovich agree there). Strong order 1.5, weak
    /// order 2; 2 drift and 2 diffusion evaluations per step, and the second increment `dZ`.
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{self, Solver, Sra1, SolveRequest, TimeGrid};
    /// use tinysde::{Error, NoiseKind, Real};
    ///
    /// /// Ornstein–Uhlenbeck: du = -u dt + 0.3 dW.
    /// struct Ou;
    /// impl<T: Real> Sde<T, 1> for Ou {
    ///     const NOISE: NoiseKind = NoiseKind::Additive;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [-u[0]] }
    ///     fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] { [T::cst(0.3)] }
    /// }
    /// let solver = Solver::new(Sra1, TimeGrid::new(0.0, 1.0, 32).unwrap());
    /// let mut out = [[0.0f32; 1]];
    /// solve::solve(&solver, &Ou, &Brownian::new(2), &SolveRequest::new([1.0], &[1.0]), &mut out).unwrap();
    /// assert!(out[0][0].is_finite());
    /// ```
    Sra1,
    "SRA1",
    SRA1
);

sra_method!(
    /// SOSRA (Rackauckas & Nie 2018): the [`SraTableau`] step with [`SOSRA`]'s
    /// stability-optimized coefficients.
    ///
    /// Additive noise only. Strong order 1.5, weak order 2; 3 drift and 3 diffusion
    /// evaluations per step, and the second increment `dZ`. An SDE declaring any other
    /// noise kind is refused:
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{self, Solver, Sosra, SolveRequest, TimeGrid};
    /// use tinysde::{Error, NoiseKind, Real};
    ///
    /// struct Gbm; // multiplicative noise: not additive
    /// impl<T: Real> Sde<T, 1> for Gbm {
    ///     const NOISE: NoiseKind = NoiseKind::Diagonal;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0]] }
    ///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0]] }
    /// }
    /// let solver = Solver::new(Sosra, TimeGrid::new(0.0, 1.0, 32).unwrap());
    /// let mut out = [[7.0f32; 1]];
    /// let err = solve::solve(&solver, &Gbm, &Brownian::new(2), &SolveRequest::new([1.0], &[1.0]), &mut out);
    /// assert_eq!(err, Err(Error::UnsupportedNoise { method: "SOSRA", noise: NoiseKind::Diagonal }));
    /// assert_eq!(out, [[7.0]]);
    /// ```
    Sosra,
    "SOSRA",
    SOSRA
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Rößler's 8 order conditions for strong order 1.5 of SRA methods (as checked by
    /// StochasticDiffEq's `checkSRAOrder`), in f64 from the f32 coefficients.
    fn order_conditions<const N: usize>(tab: &SraTableau<N>) -> [(f64, f64); 8] {
        let v = |x: [f32; N]| x.map(f64::from);
        let (a0, b0) = (tab.a0.map(v), tab.b0.map(v));
        let (al, be1, be2, c1) = (v(tab.alpha), v(tab.beta1), v(tab.beta2), v(tab.c1));
        let dot = |x: [f64; N], y: [f64; N]| (0..N).map(|i| x[i] * y[i]).sum::<f64>();
        let e = [1.0; N];
        let a0e = a0.map(|row| dot(row, e));
        let b0e = b0.map(|row| dot(row, e));
        [
            (dot(al, e), 1.0),
            (dot(be1, e), 1.0),
            (dot(be2, e), 0.0),
            (dot(al, b0e), 1.0),
            (dot(al, a0e), 0.5),
            (dot(al, b0e.map(|x| x * x)), 1.5),
            (dot(be1, c1), 1.0),
            (dot(be2, c1), -1.0),
        ]
    }

    fn check<const N: usize>(name: &str, tab: &SraTableau<N>) {
        for (n, (got, want)) in order_conditions(tab).into_iter().enumerate() {
            assert!(
                (got - want).abs() < 4e-6,
                "{name}: condition {} gives {got}, expected {want}",
                n + 1
            );
        }
        for i in 0..N {
            let a0: f32 = tab.a0[i].iter().sum();
            assert!((a0 - tab.c0[i]).abs() < 1e-6, "{name}: c0[{i}]");
        }
    }

    #[test]
    fn tableaus_satisfy_the_order_conditions() {
        check("SRA1", &SRA1);
        check("SOSRA", &SOSRA);
    }
}
