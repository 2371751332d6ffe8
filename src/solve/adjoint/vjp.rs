//! Vector–Jacobian products of one step of each method ([`StepVjp`]).

#[allow(
    clippy::wildcard_imports,
    reason = "the adjoint's shared imports and sibling pieces"
)]
use super::*;

/// One step of a method, differentiated in reverse.
///
/// `T` is `f32` (the default) or [`F32x<L>`](crate::lanes::F32x) (L trajectories, one per
/// lane, each with the bits of the `f32` computation).
///
/// ```
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::noise::Increment;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{EulerMaruyama, StepVjp};
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let mut model = Model::default();
/// model.write_params(&[-0.5, 0.0, 0.0, 0.2])?; // du = -0.5 u dt + 0.2 dW
/// let inc = Increment::<1> { dw: [0.1], dz: [0.0] };
/// let (mut u_bar, mut p_bar) = ([1.0f32], [0.0f32; Model::PARAMS]);
/// EulerMaruyama.step_vjp(&model, 0.0, 0.1, &[2.0], &inc, &mut u_bar, &mut p_bar);
/// assert!((u_bar[0] - 0.95).abs() < 1e-6); // d(u + h a u)/du = 1 + h a
/// assert!((p_bar[0] - 0.2).abs() < 1e-6); // d/da = h u
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait StepVjp<S: SdeVjp<D, T>, const D: usize, T: PlainReal = f32>: Step<T, S, D> {
    /// For the step from `(t, u)` of size `h` with increments `inc`: replaces `u_bar` (the
    /// cotangent of the step's result) by the cotangent of `u`, and adds the cotangent of
    /// the SDE's parameters into `params_bar` (length `S::PARAMS`).
    #[allow(
        clippy::too_many_arguments,
        reason = "one step's vector-Jacobian product: step inputs (t, h, state, noise) and the cotangent buffers are distinct by nature"
    )]
    fn step_vjp(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T>,
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    );
}

#[inline]
pub(super) fn axpy<T: PlainReal, const D: usize>(y: &mut [T; D], a: f32, x: &[T; D]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += xi * a;
    }
}

impl<T: PlainReal, S: SdeVjp<D, T>, const D: usize> StepVjp<S, D, T> for EulerMaruyama {
    #[inline]
    fn step_vjp(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T>,
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        // u' = u + f(u) h + g(u) dW
        let next_bar = *u_bar;
        let f_bar = next_bar.map(|x| x * h);
        let mut g_bar = next_bar;
        for (gb, &dw) in g_bar.iter_mut().zip(&inc.dw) {
            *gb *= dw;
        }
        sde.drift_vjp(t, u, &f_bar, u_bar, params_bar);
        sde.diffusion_vjp(t, u, &g_bar, u_bar, params_bar);
    }
}

impl<T: PlainReal, S: SdeVjp<D, T>, const D: usize> StepVjp<S, D, T> for EulerHeun {
    #[inline]
    fn step_vjp(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T>,
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        // p = u + f(u) h + g(u) dW;  u' = u + (f(u) + f(p)) h/2 + (g(u) + g(p)) dW/2
        let f0 = sde.drift(t, u, ParamSeed::NONE);
        let g0 = sde.diffusion(t, u, ParamSeed::NONE);
        let mut predictor = *u;
        for i in 0..D {
            predictor[i] += f0[i] * h + g0[i] * inc.dw[i];
        }
        let next_bar = *u_bar;
        let half_h = h * 0.5;
        let f1_bar = next_bar.map(|x| x * half_h);
        let mut g1_bar = next_bar;
        for (gb, &dw) in g1_bar.iter_mut().zip(&inc.dw) {
            *gb *= dw * 0.5;
        }
        let mut p_bar = [<T as Real>::ZERO; D];
        sde.drift_vjp(t + h, &predictor, &f1_bar, &mut p_bar, params_bar);
        sde.diffusion_vjp(t + h, &predictor, &g1_bar, &mut p_bar, params_bar);
        let mut f0_bar = f1_bar;
        axpy(&mut f0_bar, h, &p_bar);
        let mut g0_bar = g1_bar;
        for ((gb, &pb), &dw) in g0_bar.iter_mut().zip(&p_bar).zip(&inc.dw) {
            *gb += pb * dw;
        }
        axpy(u_bar, 1.0, &p_bar);
        sde.drift_vjp(t, u, &f0_bar, u_bar, params_bar);
        sde.diffusion_vjp(t, u, &g0_bar, u_bar, params_bar);
    }
}

/// Milstein's adjoint needs the vector–Jacobian product of its correction `½ q (ΔW² − h)`,
/// where `q` is the diffusion times its derivative in the state (second derivatives of the
/// diffusion): the model implements [`MilsteinVjp`] ([`NeuralSde`](crate::sde::NeuralSde)
/// does). With additive noise the step is Euler–Maruyama's, and so is its adjoint.
impl<T: PlainReal, S: MilsteinVjp<D, T>, const D: usize> StepVjp<S, D, T> for Milstein {
    #[inline]
    fn step_vjp(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T>,
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        // u' = u + f(u) h + g(u) dW + ½ q(u) (dW² − h)
        let next_bar = *u_bar;
        let f_bar = next_bar.map(|x| x * h);
        let mut g_bar = next_bar;
        let mut q_bar = next_bar;
        for ((gb, qb), &dw) in g_bar.iter_mut().zip(&mut q_bar).zip(&inc.dw) {
            *gb *= dw;
            *qb *= (dw * dw - h) * 0.5;
        }
        sde.drift_vjp(t, u, &f_bar, u_bar, params_bar);
        if <S as Sde<T, D>>::NOISE == NoiseKind::Additive {
            sde.diffusion_vjp(t, u, &g_bar, u_bar, params_bar);
        } else {
            sde.milstein_vjp(t, u, &g_bar, &q_bar, u_bar, params_bar);
        }
    }
}

impl<const N: usize> SriTableau<N> {
    /// The vector–Jacobian product of [`SriTableau::step`] (see [`StepVjp::step_vjp`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "one step's vector-Jacobian product: step inputs (t, h, state, noise) and the cotangent buffers are distinct by nature"
    )]
    pub(crate) fn step_vjp<T: PlainReal, S: SdeVjp<D, T>, const D: usize>(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T>,
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        let none = ParamSeed::NONE;
        let zero = <T as Real>::ZERO;
        let (sqrt_h, chi1, chi2, chi3) = super::super::sri::random_variables(h, inc);
        // Which stages the forward step evaluates (as its stage plan does).
        let mut f_used = [false; N];
        let mut g_used = [false; N];
        let mut f_first = [false; N];
        for i in 0..N {
            f_used[i] = i == 0 || self.alpha[i] != 0.0;
            g_used[i] = i == 0
                || self.beta1[i] != 0.0
                || self.beta2[i] != 0.0
                || self.beta3[i] != 0.0
                || self.beta4[i] != 0.0;
            for k in i + 1..N {
                f_used[i] |= self.a0[k][i] != 0.0 || self.a1[k][i] != 0.0;
                g_used[i] |= self.b0[k][i] != 0.0 || self.b1[k][i] != 0.0;
            }
            f_first[i] = i > 0
                && self.c0[i] == self.c0[0]
                && (0..i).all(|j| self.a0[i][j] == 0.0 && self.b0[i][j] == 0.0);
        }

        // Forward: the stage inputs and values.
        let mut h0 = [*u; N];
        let mut h1 = [*u; N];
        let mut f = [[zero; D]; N];
        let mut g = [[zero; D]; N];
        for i in 0..N {
            if f_used[i] {
                if f_first[i] {
                    f[i] = f[0];
                } else {
                    for k in 0..D {
                        let (mut a, mut b) = (zero, zero);
                        for j in 0..i {
                            a += f[j][k] * self.a0[i][j];
                            b += g[j][k] * self.b0[i][j];
                        }
                        if i > 0 {
                            h0[i][k] += a * h + b * chi2[k];
                        }
                    }
                    f[i] = sde.drift(t + self.c0[i] * h, &h0[i], none);
                }
            }
            if g_used[i] {
                for k in 0..D {
                    let (mut a, mut b) = (zero, zero);
                    for j in 0..i {
                        a += f[j][k] * self.a1[i][j];
                        b += g[j][k] * self.b1[i][j];
                    }
                    if i > 0 {
                        h1[i][k] += a * h + b * sqrt_h;
                    }
                }
                g[i] = sde.diffusion(t + self.c1[i] * h, &h1[i], none);
            }
        }

        // Reverse: the update's weights on each stage value, then the stages last to first.
        let next_bar = *u_bar;
        let mut f_bar = [[zero; D]; N];
        let mut g_bar = [[zero; D]; N];
        for k in 0..D {
            let mut f0_weight = h;
            let mut g0_weight = inc.dw[k];
            for i in 1..N {
                let fw = self.alpha[i] * h;
                let gw = inc.dw[k] * self.beta1[i]
                    + chi1[k] * self.beta2[i]
                    + chi2[k] * self.beta3[i]
                    + chi3[k] * self.beta4[i];
                f_bar[i][k] = next_bar[k] * fw;
                g_bar[i][k] = next_bar[k] * gw;
                f0_weight -= fw;
                g0_weight -= gw;
            }
            f_bar[0][k] = next_bar[k] * f0_weight;
            g_bar[0][k] = next_bar[k] * g0_weight;
        }
        for i in (0..N).rev() {
            if g_used[i] {
                let mut x_bar = [zero; D];
                sde.diffusion_vjp(
                    t + self.c1[i] * h,
                    &h1[i],
                    &g_bar[i],
                    &mut x_bar,
                    params_bar,
                );
                axpy(u_bar, 1.0, &x_bar);
                for j in 0..i {
                    axpy(&mut f_bar[j], self.a1[i][j] * h, &x_bar);
                    axpy(&mut g_bar[j], self.b1[i][j] * sqrt_h, &x_bar);
                }
            }
            if f_used[i] {
                if f_first[i] {
                    let fb = f_bar[i];
                    axpy(&mut f_bar[0], 1.0, &fb);
                } else {
                    let mut x_bar = [zero; D];
                    sde.drift_vjp(
                        t + self.c0[i] * h,
                        &h0[i],
                        &f_bar[i],
                        &mut x_bar,
                        params_bar,
                    );
                    axpy(u_bar, 1.0, &x_bar);
                    for j in 0..i {
                        axpy(&mut f_bar[j], self.a0[i][j] * h, &x_bar);
                        let b0 = self.b0[i][j];
                        for ((gb, &xb), &c) in g_bar[j].iter_mut().zip(&x_bar).zip(&chi2) {
                            *gb += c * b0 * xb;
                        }
                    }
                }
            }
        }
    }
}

impl<const N: usize> SraTableau<N> {
    /// The vector–Jacobian product of [`SraTableau::step_estimating`] (see [`StepVjp::step_vjp`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "one step's vector-Jacobian product: step inputs (t, h, state, noise) and the cotangent buffers are distinct by nature"
    )]
    pub(crate) fn step_vjp<T: PlainReal, S: SdeVjp<D, T>, const D: usize>(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T>,
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        let none = ParamSeed::NONE;
        let zero = <T as Real>::ZERO;
        let mut chi2 = [zero; D];
        for ((c, &dw), &dz) in chi2.iter_mut().zip(&inc.dw).zip(&inc.dz) {
            *c = (dw + dz / SQRT_3) * 0.5;
        }
        let mut g = [[zero; D]; N];
        for (gi, &c1) in g.iter_mut().zip(&self.c1) {
            *gi = sde.diffusion(t + c1 * h, u, none);
        }
        let mut h0 = [*u; N];
        let mut f = [[zero; D]; N];
        for i in 0..N {
            if i > 0 {
                for k in 0..D {
                    let (mut a, mut b) = (zero, zero);
                    for j in 0..i {
                        a += f[j][k] * self.a0[i][j];
                        b += g[j][k] * self.b0[i][j];
                    }
                    h0[i][k] += a * h + b * chi2[k];
                }
            }
            f[i] = sde.drift(t + self.c0[i] * h, &h0[i], none);
        }

        let next_bar = *u_bar;
        let mut f_bar = [[zero; D]; N];
        let mut g_bar = [[zero; D]; N];
        for k in 0..D {
            let mut f0_weight = h;
            let mut g0_weight = inc.dw[k];
            for i in 1..N {
                let fw = self.alpha[i] * h;
                let gw = inc.dw[k] * self.beta1[i] + chi2[k] * self.beta2[i];
                f_bar[i][k] = next_bar[k] * fw;
                g_bar[i][k] = next_bar[k] * gw;
                f0_weight -= fw;
                g0_weight -= gw;
            }
            f_bar[0][k] = next_bar[k] * f0_weight;
            g_bar[0][k] = next_bar[k] * g0_weight;
        }
        for i in (0..N).rev() {
            let mut x_bar = [zero; D];
            sde.drift_vjp(
                t + self.c0[i] * h,
                &h0[i],
                &f_bar[i],
                &mut x_bar,
                params_bar,
            );
            axpy(u_bar, 1.0, &x_bar);
            for j in 0..i {
                axpy(&mut f_bar[j], self.a0[i][j] * h, &x_bar);
                let b0 = self.b0[i][j];
                for ((gb, &xb), &c) in g_bar[j].iter_mut().zip(&x_bar).zip(&chi2) {
                    *gb += c * b0 * xb;
                }
            }
        }
        for (gb, &c1) in g_bar.iter().zip(&self.c1) {
            sde.diffusion_vjp(t + c1 * h, u, gb, u_bar, params_bar);
        }
    }
}

macro_rules! tableau_vjp {
    ($($name:ident => $tableau:ident),+) => {$(
        impl<T: PlainReal, S: SdeVjp<D, T>, const D: usize> StepVjp<S, D, T> for $name {
            #[inline]
            fn step_vjp(
                &self,
                sde: &S,
                t: f32,
                h: f32,
                u: &[T; D],
                inc: &Increment<D, T>,
                u_bar: &mut [T; D],
                params_bar: &mut [T],
            ) {
                $tableau.step_vjp(sde, t, h, u, inc, u_bar, params_bar)
            }
        }
    )+};
}
tableau_vjp!(Sriw1 => SRIW1, Sosri => SOSRI, Sra1 => SRA1, Sosra => SOSRA);
