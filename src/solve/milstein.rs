//! Milstein (Itô) for diagonal and scalar noise, with the diffusion's derivative taken by
//! forward mode.

#![allow(clippy::indexing_slicing, reason = "const-size loops")]

use super::euler_maruyama::euler_update;
use super::method::builtin_method;
use crate::directional::Directional;
use crate::error::NoiseKind;
use crate::sde::Sde;

builtin_method!(
    /// Milstein (Itô): Euler–Maruyama plus the correction `1/2 g g' (dW^2 - h)`.
    ///
    /// ```text
    /// u_next_i = u_i + f_i h + g_i dW_i + 1/2 (g' g)_i (dW_i^2 - h)
    /// ```
    ///
    /// The derivative of the diffusion is exact, not a finite difference: the SDE is also
    /// evaluated on [`Directional<T>`] (so `S` must implement `Sde<Directional<T>, D>` as well;
    /// [`NeuralSde`](crate::sde::NeuralSde) and any SDE written generically over `Real` do).
    /// Over `Dual` scalars the parameter tangents flow through the correction exactly.
    ///
    /// - Diagonal noise: `(g' g)_i = g_i dg_i/du_i`, the diagonal of the Jacobian, one
    ///   directional pass per component with direction `e_i` (the pass also yields `g`, so
    ///   there is no separate diffusion evaluation). Strong order 1.0 when `g_i` depends on
    ///   `u_i` only (the usual meaning of diagonal noise); cross-dependencies of `g_i` on other
    ///   components would need the Lévy areas and are ignored.
    /// - Scalar noise: `(g' g) = J_g g`, the Jacobian of the diffusion along `g` itself, one
    ///   plain and one directional pass. Strong order 1.0 for any `g`.
    /// - Additive noise: `g' = 0`, so the step is exactly Euler–Maruyama (no extra pass).
    ///
    /// Weak order 1.0. One drift evaluation per step.
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{self, Milstein, Solver, SolveRequest, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Gbm; // du = 1.01 u dt + 0.87 u dW (Itô)
    /// impl<T: Real> Sde<T, 1> for Gbm {
    ///     const NOISE: NoiseKind = NoiseKind::Diagonal;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 1.01] }
    ///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 0.87] }
    /// }
    /// let solver = Solver::new(Milstein, TimeGrid::new(0.0, 1.0, 100).unwrap());
    /// let mut out = [[0.0f32; 1]];
    /// solve::solve(&solver, &Gbm, &Brownian::new(5), &SolveRequest::new([0.5], &[1.0]), &mut out).unwrap();
    /// assert!(out[0][0] > 0.0);
    /// ```
    pub struct Milstein: "Milstein", Ito, strong 1.0, weak 1.0, dz false,
    supports NoiseKind::Diagonal | NoiseKind::Scalar | NoiseKind::Additive,
    step(sde, t, h, u, inc, seed) where S: Sde<Directional<T>, D> {
        let f = <S as Sde<T, D>>::drift(sde, t, u, seed);
        // g and (g' g), the latter already multiplied by 1/2.
        let (g, gg) = match <S as Sde<T, D>>::NOISE {
            NoiseKind::Additive => (<S as Sde<T, D>>::diffusion(sde, t, u, seed), [T::ZERO; D]),
            NoiseKind::Scalar => {
                let g = <S as Sde<T, D>>::diffusion(sde, t, u, seed);
                let mut x = [Directional::constant(T::ZERO); D];
                for ((xk, &uk), &gk) in x.iter_mut().zip(u).zip(&g) {
                    *xk = Directional { v: uk, d: gk };
                }
                let jg = <S as Sde<Directional<T>, D>>::diffusion(sde, t, &x, seed);
                (g, jg.map(|y| y.d * 0.5))
            }
            NoiseKind::Diagonal => {
                let mut g = [T::ZERO; D];
                let mut gg = [T::ZERO; D];
                for i in 0..D {
                    let mut x = u.map(Directional::constant);
                    x[i].d = T::ONE;
                    let y = <S as Sde<Directional<T>, D>>::diffusion(sde, t, &x, seed);
                    if i == 0 {
                        g = y.map(|yk| yk.v);
                    }
                    gg[i] = y[i].v * y[i].d * 0.5;
                }
                (g, gg)
            }
        };
        let mut next = euler_update(u, &f, &g, h, &inc.dw);
        if <S as Sde<T, D>>::NOISE != NoiseKind::Additive {
            for i in 0..D {
                let dw = inc.dw[i];
                next[i] += gg[i].scale(dw * dw - h);
            }
        }
        next
    }
);
