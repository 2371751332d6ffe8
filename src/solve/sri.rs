//! Rößler's SRI family (strong order 1.5 for diagonal and scalar Itô noise): one generic
//! step driven by a tableau, and the methods SRIW1 and SOSRI as data.

#![allow(clippy::indexing_slicing, reason = "const-size loops")]

use super::method::builtin_method;
use crate::error::NoiseKind;
use crate::lanes::Lanes;
use crate::math;
use crate::nn::ParamSeed;
use crate::noise::{Increment, SQRT_3};
use crate::real::Real;
use crate::sde::Sde;

/// The coefficients of an explicit `N`-stage stochastic Runge–Kutta method of Rößler's SRI
/// type (Rößler 2010, "Runge–Kutta methods for the strong approximation of solutions of
/// stochastic differential equations", SIAM J. Numer. Anal. 48(3)).
///
/// Matrices are indexed `[row i][column j]` and are strictly lower triangular (explicit
/// methods: stage `i` uses stages `j < i`). With `chi1 = (dW^2 - h) / (2 sqrt h)`,
/// `chi2 = (dW + dZ / sqrt 3) / 2` and `chi3 = (dW^3 - 3 h dW) / (6 h)`, element-wise:
///
/// ```text
/// H0_i = u + h sum_j a0[i][j] f(t + c0[j] h, H0_j) + chi2    sum_j b0[i][j] g(t + c1[j] h, H1_j)
/// H1_i = u + h sum_j a1[i][j] f(t + c0[j] h, H0_j) + sqrt(h) sum_j b1[i][j] g(t + c1[j] h, H1_j)
/// u_next = u + h sum_i alpha[i] f_i + sum_i (beta1[i] dW + beta2[i] chi1 + beta3[i] chi2 + beta4[i] chi3) g_i
/// ```
///
/// The step evaluates the quadrature in difference form,
/// `sum_i beta[i] g_i = (sum_i beta[i]) g_0 + sum_{i>0} beta[i] (g_i - g_0)`, using the
/// consistency conditions `sum alpha = sum beta1 = 1` and `sum beta2 = sum beta3 =
/// sum beta4 = 0` (checked, with the other order conditions, by this module's tests).
/// Equal stage values therefore cancel exactly: a constant diffusion gives exactly
/// `u + g dW` and pure Brownian motion is reproduced bit for bit. A stage whose drift or
/// diffusion no later formula uses is not evaluated, and a drift stage whose input is
/// exactly `(t, u)` reuses the first one (so SRIW1 costs 2 drift and 4 diffusion
/// evaluations, as StochasticDiffEq's hand-written SRIW1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SriTableau<const N: usize> {
    /// Time nodes of the drift stages.
    pub c0: [f32; N],
    /// Time nodes of the diffusion stages.
    pub c1: [f32; N],
    /// Drift coefficients of the drift stages `H0`.
    pub a0: [[f32; N]; N],
    /// Drift coefficients of the diffusion stages `H1`.
    pub a1: [[f32; N]; N],
    /// Diffusion coefficients (times `chi2`) of the drift stages `H0`.
    pub b0: [[f32; N]; N],
    /// Diffusion coefficients (times `sqrt h`) of the diffusion stages `H1`.
    pub b1: [[f32; N]; N],
    /// Drift weights.
    pub alpha: [f32; N],
    /// Weights of `g dW`.
    pub beta1: [f32; N],
    /// Weights of `g chi1`.
    pub beta2: [f32; N],
    /// Weights of `g chi2`.
    pub beta3: [f32; N],
    /// Weights of `g chi3`.
    pub beta4: [f32; N],
}

/// SRIW1 (Rößler 2010): the weak-order-2 member of the SRI family.
pub const SRIW1: SriTableau<4> = SriTableau {
    c0: [0.0, 0.75, 0.0, 0.0],
    c1: [0.0, 0.25, 1.0, 0.25],
    a0: [
        [0.0, 0.0, 0.0, 0.0],
        [0.75, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ],
    a1: [
        [0.0, 0.0, 0.0, 0.0],
        [0.25, 0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.25, 0.0],
    ],
    b0: [
        [0.0, 0.0, 0.0, 0.0],
        [1.5, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ],
    b1: [
        [0.0, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0, 0.0],
        [-5.0, 3.0, 0.5, 0.0],
    ],
    alpha: [1.0 / 3.0, 2.0 / 3.0, 0.0, 0.0],
    beta1: [-1.0, 4.0 / 3.0, 2.0 / 3.0, 0.0],
    beta2: [-1.0, 4.0 / 3.0, -1.0 / 3.0, 0.0],
    beta3: [2.0, -4.0 / 3.0, -2.0 / 3.0, 0.0],
    beta4: [-2.0, 5.0 / 3.0, -2.0 / 3.0, 1.0],
};

/// SOSRI (Rackauckas & Nie 2018, "Stability-optimized high order methods and stiffness
/// detection for pathwise stiff stochastic differential equations"): an SRI method with a
/// larger stability region, StochasticDiffEq's default for diagonal noise.
#[allow(clippy::excessive_precision)]
pub const SOSRI: SriTableau<4> = SriTableau {
    c0: [
        0.0,
        -0.04199224421316468,
        0.7898405466170333,
        3.7504010171562823,
    ],
    c1: [
        0.0,
        0.26204282091330466,
        0.05879875232001766,
        0.758661169101175,
    ],
    a0: [
        [0.0, 0.0, 0.0, 0.0],
        [-0.04199224421316468, 0.0, 0.0, 0.0],
        [2.842612915017106, -2.0527723684000727, 0.0, 0.0],
        [
            4.338237071435815,
            -2.8895936137439793,
            2.3017575594644466,
            0.0,
        ],
    ],
    a1: [
        [0.0, 0.0, 0.0, 0.0],
        [0.26204282091330466, 0.0, 0.0, 0.0],
        [0.20903646383505375, -0.1502377115150361, 0.0, 0.0],
        [
            0.05836595312746999,
            0.6149440396332373,
            0.08535117634046772,
            0.0,
        ],
    ],
    b0: [
        [0.0, 0.0, 0.0, 0.0],
        [-0.21641093549612528, 0.0, 0.0, 0.0],
        [1.5336352863679572, 0.26066223492647056, 0.0, 0.0],
        [
            -1.0536037558179159,
            1.7015284721089472,
            -0.20725685784180017,
            0.0,
        ],
    ],
    b1: [
        [0.0, 0.0, 0.0, 0.0],
        [-0.5119011827621657, 0.0, 0.0, 0.0],
        [2.67767339866713, -4.9395031322250995, 0.0, 0.0],
        [
            0.15580956238299215,
            3.2361551006624674,
            -1.4223118283355949,
            0.0,
        ],
    ],
    alpha: [
        1.140099274172029,
        -0.6401334255743456,
        0.4736296532772559,
        0.026404498125060714,
    ],
    beta1: [
        -1.8453464565104432,
        2.688764531100726,
        -0.2523866501071323,
        0.40896857551684956,
    ],
    beta2: [
        0.4969658141589478,
        -0.5771202869753592,
        -0.12919702470322217,
        0.2093514975196336,
    ],
    beta3: [
        2.8453464565104425,
        -2.688764531100725,
        0.2523866501071322,
        -0.40896857551684945,
    ],
    beta4: [
        0.11522663875443433,
        -0.57877086147738,
        0.2857851028163886,
        0.17775911990655704,
    ],
};

/// Which stages of an SRI tableau need evaluating, derived from the coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StagePlan<const N: usize> {
    /// Stage `i`'s drift value is used by a later stage or by the update.
    drift_used: [bool; N],
    /// Drift stage `i` is evaluated at exactly `(t + c0[0] h, u)`, like stage 0.
    drift_is_first: [bool; N],
    /// Stage `i`'s diffusion value is used by a later stage or by the update.
    diffusion_used: [bool; N],
}

impl<const N: usize> SriTableau<N> {
    /// The stage plan (a `const fn`, so the built-in methods have theirs at compile time).
    pub(super) const fn plan(&self) -> StagePlan<N> {
        let mut plan = StagePlan {
            drift_used: [false; N],
            drift_is_first: [false; N],
            diffusion_used: [false; N],
        };
        let mut i = 0;
        while i < N {
            let mut f_used = i == 0 || self.alpha[i] != 0.0;
            let mut g_used = i == 0
                || self.beta1[i] != 0.0
                || self.beta2[i] != 0.0
                || self.beta3[i] != 0.0
                || self.beta4[i] != 0.0;
            let mut k = i + 1;
            while k < N {
                f_used |= self.a0[k][i] != 0.0 || self.a1[k][i] != 0.0;
                g_used |= self.b0[k][i] != 0.0 || self.b1[k][i] != 0.0;
                k += 1;
            }
            let mut first = i > 0 && self.c0[i] == self.c0[0];
            let mut j = 0;
            while j < i {
                first &= self.a0[i][j] == 0.0 && self.b0[i][j] == 0.0;
                j += 1;
            }
            plan.drift_used[i] = f_used;
            plan.diffusion_used[i] = g_used;
            plan.drift_is_first[i] = first;
            i += 1;
        }
        plan
    }

    /// One step of the method from `(t, u)` of size `h` with increments `inc` (for scalar
    /// noise every channel holds the shared increment; the formula is then Rößler's
    /// scalar-noise scheme, of strong order 1.5 for any diffusion), with the stage plan
    /// given (a constant for the built-in methods). With `h <= 0` the terms `chi1` and `chi3`
    /// (which divide by `sqrt h` and `h`) are taken as zero instead of producing NaN.
    ///
    /// With `estimate`, also writes the embedded error estimate of each component (values
    /// only): `|h sum_i alpha_i (f_i - f_0)|`, the drift quadrature's departure from Euler's,
    /// plus `|sum_i (beta3_i chi2 + beta4_i chi3) g_i|`, the order-1.5 stochastic terms an
    /// order-1 scheme lacks (Rackauckas & Nie 2017's natural embedding).
    #[allow(
        clippy::too_many_arguments,
        reason = "Step::step's arguments, the stage plan and the estimate's output"
    )]
    #[inline]
    pub(super) fn step_planned<T: Real, S: Sde<T, D>, const D: usize>(
        &self,
        plan: &StagePlan<N>,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T::Value>,
        seed: ParamSeed,
        mut estimate: Option<&mut [T::Value; D]>,
    ) -> [T; D] {
        let (sqrt_h, chi1, chi2, chi3) = random_variables(h, inc);

        let mut f = [[T::ZERO; D]; N];
        let mut g = [[T::ZERO; D]; N];
        for i in 0..N {
            if plan.drift_used[i] {
                f[i] = if plan.drift_is_first[i] {
                    f[0]
                } else {
                    let mut x = *u;
                    for k in 0..D {
                        let mut a = T::ZERO;
                        let mut b = T::ZERO;
                        for j in 0..i {
                            a += f[j][k] * self.a0[i][j];
                            b += g[j][k] * self.b0[i][j];
                        }
                        if i > 0 {
                            x[k] += a * h + b.scale(chi2[k]);
                        }
                    }
                    sde.drift(t + self.c0[i] * h, &x, seed)
                };
            }
            if plan.diffusion_used[i] {
                let mut x = *u;
                for k in 0..D {
                    let mut a = T::ZERO;
                    let mut b = T::ZERO;
                    for j in 0..i {
                        a += f[j][k] * self.a1[i][j];
                        b += g[j][k] * self.b1[i][j];
                    }
                    if i > 0 {
                        x[k] += a * h + b * sqrt_h;
                    }
                }
                g[i] = sde.diffusion(t + self.c1[i] * h, &x, seed);
            }
        }

        let mut next = *u;
        for k in 0..D {
            let mut fa = f[0][k];
            let mut b1 = g[0][k];
            let mut b2 = T::ZERO;
            let mut b3 = T::ZERO;
            let mut b4 = T::ZERO;
            for i in 1..N {
                fa += (f[i][k] - f[0][k]) * self.alpha[i];
                let dg = g[i][k] - g[0][k];
                b1 += dg * self.beta1[i];
                b2 += dg * self.beta2[i];
                b3 += dg * self.beta3[i];
                b4 += dg * self.beta4[i];
            }
            next[k] += fa * h
                + b1.scale(inc.dw[k])
                + b2.scale(chi1[k])
                + b3.scale(chi2[k])
                + b4.scale(chi3[k]);
            if let Some(e) = estimate.as_deref_mut() {
                let drift = (fa - f[0][k]).value() * h;
                let high = (b3.scale(chi2[k]) + b4.scale(chi3[k])).value();
                e[k] = drift.abs() + high.abs();
            }
        }
        next
    }
}

/// The random variables of an SRI step from its increments, element-wise (the forward
/// step's and its adjoint's): `(sqrt h, chi1, chi2, chi3)` with
/// `chi1 = (dW^2 - h) / (2 sqrt h)`, `chi2 = (dW + dZ / sqrt 3) / 2` and
/// `chi3 = (dW^3 - 3 h dW) / (6 h)`; for `h <= 0`, `sqrt h`, `chi1` and `chi3` are zero.
#[allow(
    clippy::type_complexity,
    reason = "the four named variables of the scheme"
)]
#[inline]
pub(super) fn random_variables<V: Lanes, const D: usize>(
    h: f32,
    inc: &Increment<D, V>,
) -> (f32, [V; D], [V; D], [V; D]) {
    let sqrt_h = if h > 0.0 { math::sqrt(h) } else { 0.0 };
    let (mut chi1, mut chi2, mut chi3) = ([V::ZERO; D], [V::ZERO; D], [V::ZERO; D]);
    for k in 0..D {
        let dw = inc.dw[k];
        chi2[k] = (dw + inc.dz[k] / SQRT_3) * 0.5;
        if sqrt_h > 0.0 {
            chi1[k] = (dw * dw - h) / (2.0 * sqrt_h);
            chi3[k] = (dw * dw * dw - dw * (3.0 * h)) / (6.0 * h);
        }
    }
    (sqrt_h, chi1, chi2, chi3)
}

macro_rules! sri_method {
    ($(#[$doc:meta])* $name:ident, $label:literal, $tableau:ident) => {
        builtin_method!(
            $(#[$doc])*
            pub struct $name: $label, Ito, strong 1.5, weak 2.0, dz true,
            supports NoiseKind::Diagonal | NoiseKind::Scalar | NoiseKind::Additive,
            step_estimating(sde, t, h, u, inc, seed, estimate) {
                const PLAN: StagePlan<4> = $tableau.plan();
                $tableau.step_planned(&PLAN, sde, t, h, u, inc, seed, estimate)
            }
        );
    };
}

sri_method!(
    /// SRIW1 (Itô; Rößler 2010): the [`SriTableau`] step with [`SRIW1`]'s coefficients.
    ///
    /// Strong order 1.5 and weak order 2 for diagonal noise whose `g_i` depends on `u_i`
    /// only, for scalar noise (any `g`) and for additive noise. 2 drift and 4 diffusion
    /// evaluations per step, and the second increment `dZ`.
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{self, Solver, Sriw1, SolveRequest, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Gbm; // du = 1.01 u dt + 0.87 u dW (Itô)
    /// impl<T: Real> Sde<T, 1> for Gbm {
    ///     const NOISE: NoiseKind = NoiseKind::Diagonal;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 1.01] }
    ///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 0.87] }
    /// }
    /// let solver = Solver::new(Sriw1, TimeGrid::new(0.0, 1.0, 64).unwrap());
    /// let mut out = [[0.0f32; 1]];
    /// solve::solve(&solver, &Gbm, &Brownian::new(5), &SolveRequest::new([0.5], &[1.0]), &mut out).unwrap();
    /// assert!(out[0][0] > 0.0);
    /// ```
    Sriw1,
    "SRIW1",
    SRIW1
);

sri_method!(
    /// SOSRI (Itô; Rackauckas & Nie 2018): the [`SriTableau`] step with [`SOSRI`]'s
    /// stability-optimized coefficients. The seed model of tinysde was trained with it.
    ///
    /// Strong order 1.5 and weak order 2 for diagonal noise whose `g_i` depends on `u_i`
    /// only, for scalar noise (any `g`) and for additive noise. 4 drift and 4 diffusion
    /// evaluations per step, and the second increment `dZ`.
    ///
    /// ```
    /// use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme};
    /// use tinysde::noise::{rng_from_seed, Brownian};
    /// use tinysde::sde::NeuralSde;
    /// use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, Solver, Sosri, TimeGrid};
    ///
    /// type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
    /// type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
    /// let mut model = NeuralSde::<Drift, Diffusion>::default();
    /// model.init(&mut rng_from_seed(0), InitScheme::GlorotUniform).unwrap();
    /// let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 60).unwrap());
    /// let times = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
    /// let (mut mean, mut var) = ([[0.0f32; 1]; 7], [[0.0f32; 1]; 7]);
    /// let request = EnsembleRequest::new([0.05], 16, &times);
    /// solve::simulate_into(&solver, &model, &Brownian::new(1), &request, EnsembleBuffers::new(&mut mean, &mut var))
    ///     .unwrap();
    /// assert_eq!(mean[0], [0.05]);
    /// assert!(var[6][0] >= 0.0);
    /// ```
    Sosri,
    "SOSRI",
    SOSRI
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Rößler's 25 order conditions for strong order 1.5 of SRI methods (as checked by
    /// StochasticDiffEq's `checkSRIOrder`), in f64 from the f32 coefficients.
    fn order_conditions(tab: &SriTableau<4>) -> [(f64, f64); 25] {
        let v = |x: [f32; 4]| x.map(f64::from);
        let m = |x: [[f32; 4]; 4]| x.map(v);
        let (a0, a1, b0, b1) = (m(tab.a0), m(tab.a1), m(tab.b0), m(tab.b1));
        let (al, be1, be2, be3, be4) = (
            v(tab.alpha),
            v(tab.beta1),
            v(tab.beta2),
            v(tab.beta3),
            v(tab.beta4),
        );
        let dot = |x: [f64; 4], y: [f64; 4]| (0..4).map(|i| x[i] * y[i]).sum::<f64>();
        let mul = |a: [[f64; 4]; 4], x: [f64; 4]| a.map(|row| dot(row, x));
        let e = [1.0; 4];
        let sq = |x: [f64; 4]| x.map(|y| y * y);
        let (a1e, b0e, b1e) = (mul(a1, e), mul(b0, e), mul(b1, e));
        let (a0e, b1b1e, a1b0e) = (mul(a0, e), mul(b1, b1e), mul(a1, b0e));
        [
            (dot(al, e), 1.0),
            (dot(be1, e), 1.0),
            (dot(be2, e), 0.0),
            (dot(be3, e), 0.0),
            (dot(be4, e), 0.0),
            (dot(be1, b1e), 0.0),
            (dot(be2, b1e), 1.0),
            (dot(be3, b1e), 0.0),
            (dot(be4, b1e), 0.0),
            (dot(al, a0e), 0.5),
            (dot(al, b0e), 1.0),
            (dot(al, sq(b0e)), 1.5),
            (dot(be1, a1e), 1.0),
            (dot(be2, a1e), 0.0),
            (dot(be3, a1e), -1.0),
            (dot(be4, a1e), 0.0),
            (dot(be1, sq(b1e)), 1.0),
            (dot(be2, sq(b1e)), 0.0),
            (dot(be3, sq(b1e)), -1.0),
            (dot(be4, sq(b1e)), 2.0),
            (dot(be1, b1b1e), 0.0),
            (dot(be2, b1b1e), 0.0),
            (dot(be3, b1b1e), 0.0),
            (dot(be4, b1b1e), 1.0),
            (0.5 * dot(be1, a1b0e) + dot(be3, a1b0e) / 3.0, 0.0),
        ]
    }

    #[test]
    fn tableaus_satisfy_the_order_conditions() {
        for (name, tab) in [("SRIW1", &SRIW1), ("SOSRI", &SOSRI)] {
            for (n, (got, want)) in order_conditions(tab).into_iter().enumerate() {
                assert!(
                    (got - want).abs() < 2e-6,
                    "{name}: condition {} gives {got}, expected {want}",
                    n + 1
                );
            }
            // The nodes are the row sums (c0 = A0 e, c1 = A1 e).
            for i in 0..4 {
                let a0: f32 = tab.a0[i].iter().sum();
                let a1: f32 = tab.a1[i].iter().sum();
                assert!((a0 - tab.c0[i]).abs() < 1e-6, "{name}: c0[{i}]");
                assert!((a1 - tab.c1[i]).abs() < 1e-6, "{name}: c1[{i}]");
            }
        }
    }

    #[test]
    fn sriw1_skips_unused_stages() {
        let plan = SRIW1.plan();
        // f is needed at stages 0, 1 (alpha) and 2 (a1[3][2]); stage 2's input is (t, u).
        assert_eq!(plan.drift_used, [true, true, true, false]);
        assert_eq!(plan.drift_is_first, [false, false, true, true]);
        assert_eq!(plan.diffusion_used, [true; 4]);
        let plan = SOSRI.plan();
        assert_eq!(plan.drift_used, [true; 4]);
        assert_eq!(plan.drift_is_first, [false; 4]);
        assert_eq!(plan.diffusion_used, [true; 4]);
    }
}
