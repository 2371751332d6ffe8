//! The discrete adjoint of the fixed-step methods: vector–Jacobian products of one step,
//! and one trajectory's backward pass from checkpoints.
//!
//! A step `u_{k+1} = Φ(t_k, h, u_k, ΔW_k; θ)` is differentiated by hand, stage by stage, in
//! reverse: given `ū_{k+1}`, [`StepVjp::step_vjp`] recomputes the stages of the step (with
//! the same increments) and returns `ū_k = (∂Φ/∂u)ᵀ ū_{k+1}`, adding
//! `(∂Φ/∂θ)ᵀ ū_{k+1}` into the parameter cotangent. Chained over every step this is the
//! exact gradient of the discrete solution (up to rounding), the same quantity forward mode
//! computes. It runs on `f32` for one trajectory or on [`F32x<L>`](crate::lanes::F32x) for L
//! trajectories at once, each lane with the bits of the `f32` computation.

use super::{
    check_finite, lane_increment, EulerHeun, EulerMaruyama, Method, Milstein, PlanCursor,
    PlanEvent, PlannedStep, Solver, Sosra, Sosri, Sra1, SraTableau, SriTableau, Sriw1, Step, SOSRA,
    SOSRI, SRA1, SRIW1,
};
use crate::error::Error;
use crate::error::NoiseKind;
use crate::math;
use crate::nn::ParamSeed;
use crate::noise::{Increment, NoiseSource, StepSize, SQRT_3};
use crate::real::{PlainReal, Real};
use crate::sde::{MilsteinVjp, Sde, SdeVjp};

/// One step of a method, differentiated in reverse.
///
/// `T` is `f32` (the default) or [`F32x<L>`](crate::lanes::F32x) (L trajectories, one per
/// lane, each with the bits of the `f32` computation).
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
fn axpy<T: PlainReal, const D: usize>(y: &mut [T; D], a: f32, x: &[T; D]) {
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
    pub fn step_vjp<T: PlainReal, S: SdeVjp<D, T>, const D: usize>(
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
        let sqrt_h = if h > 0.0 { math::sqrt(h) } else { 0.0 };
        let zero = <T as Real>::ZERO;
        let mut chi1 = [zero; D];
        let mut chi2 = [zero; D];
        let mut chi3 = [zero; D];
        for k in 0..D {
            let dw = inc.dw[k];
            chi2[k] = (dw + inc.dz[k] / SQRT_3) * 0.5;
            if sqrt_h > 0.0 {
                chi1[k] = (dw * dw - h) / (2.0 * sqrt_h);
                chi3[k] = (dw * dw * dw - dw * (3.0 * h)) / (6.0 * h);
            }
        }
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
    /// The vector–Jacobian product of [`SraTableau::step`] (see [`StepVjp::step_vjp`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "one step's vector-Jacobian product: step inputs (t, h, state, noise) and the cotangent buffers are distinct by nature"
    )]
    pub fn step_vjp<T: PlainReal, S: SdeVjp<D, T>, const D: usize>(
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

/// How a trajectory's backward pass gets back the states of the forward pass.
///
/// The backward pass needs the state before every step, in reverse order. The forward pass
/// keeps some of them (checkpoints); the backward pass recomputes the others from an
/// earlier checkpoint, replaying the same noise. The choice trades memory,
/// [`states`](Checkpoints::states) rows of `D` floats per trajectory (plus the statistics
/// rows, see [`tape_len`](crate::grad::reverse::tape_len)), against time,
/// [`forward_steps`](Checkpoints::forward_steps) steps per trajectory for the forward pass
/// and the recomputation together (the backward pass itself costs about two steps' worth
/// per step on top). The gradient does not depend on the choice, bit for bit. For a solve
/// of `N` steps:
///
/// | | states | forward steps |
/// |---|---|---|
/// | `All` | `N + 1` | `N` |
/// | `Every(s)` | `ceil(N / s) + s` | `2N - ceil(N / s)` |
/// | `Sqrt` | about `2 sqrt(N)` | about `2N - sqrt(N)` |
/// | `Binomial(s)` | `s` | `N + r N - C(s + r + 1, r - 1) - d` (below) |
///
/// ```
/// use tinysde::solve::Checkpoints;
/// // 600 steps: every state, sqrt(N) checkpoints, or 8 snapshots placed binomially.
/// assert_eq!(Checkpoints::All.states(600), 601);
/// assert_eq!(Checkpoints::Sqrt.states(600), 49);
/// assert_eq!(Checkpoints::Binomial(8).states(600), 8);
/// assert_eq!(Checkpoints::All.forward_steps(600), 600);
/// assert_eq!(Checkpoints::Sqrt.forward_steps(600), 1176);
/// assert!(Checkpoints::Binomial(8).forward_steps(600) < 5 * 600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Checkpoints {
    /// Keep every state: `steps` states of memory, no recomputation.
    All,
    /// A checkpoint every `ceil(sqrt(steps))` steps: about `2 sqrt(steps)` states of
    /// memory, one recomputation pass.
    Sqrt,
    /// A checkpoint every given number of steps (`>= 1`; 0 is taken as 1), and one segment
    /// between two checkpoints recomputed at a time: one recomputation pass.
    Every(u32),
    /// Binomial checkpointing (Griewank's optimal schedule for a fixed number of snapshots,
    /// as in "revolve"): at most this many states are kept per trajectory (never more than
    /// [`MAX_BINOMIAL_SNAPSHOTS`] or `steps - 1`, which already keep every state).
    ///
    /// From the state at step `a` and `c` free snapshots, `n` steps are reversed by
    /// advancing to a split point `a + m`, storing that state, reversing the last `n - m`
    /// steps with `c - 1` snapshots, then the first `m` with `c` (the snapshot is free
    /// again). With `s` snapshots and `r` the smallest integer with
    /// `C(s + 1 + r, r) >= N`, the split points chosen make every step advance at most `r`
    /// times and the whole reversal advance `R = r N - C(s + r + 1, r - 1)` steps, the
    /// fewest any schedule with `s` snapshots can. The forward pass stores the schedule's
    /// first sweep of snapshots on its way, which saves the `d` steps up to the last of
    /// them: [`forward_steps`](Checkpoints::forward_steps) is `N + R - d`. Memory `O(s)`,
    /// time `O(r N)`, where `r` grows like `log N / log s`: for `N = 600`, `r = 7` with 4
    /// snapshots, 4 with 8, 3 with 16.
    Binomial(u32),
}

/// The most snapshots [`Checkpoints::Binomial`] uses: with 64 snapshots, two repetitions
/// already reverse 2,211 steps and three 50,116 (`C(65 + r, r)`), so more would save
/// little; and the schedule's stack of snapshot positions lives on the call stack, so it
/// is bounded.
pub const MAX_BINOMIAL_SNAPSHOTS: u32 = 64;

/// `C(c + r, r)`, saturating at `u64::MAX`.
fn beta(c: u32, r: u32) -> u64 {
    let mut b: u64 = 1;
    for i in 1..=u64::from(r) {
        // C(c + i - 1, i - 1) (c + i) / i = C(c + i, i), exactly.
        let next = u128::from(b) * (u128::from(c) + u128::from(i)) / u128::from(i).max(1);
        match u64::try_from(next) {
            Ok(v) => b = v,
            Err(_) => return u64::MAX,
        }
    }
    b
}

/// The smallest `r` with `C(c + 1 + r, r) >= n`: the repetition number of reversing `n`
/// steps with `c` free snapshots.
fn repetitions(n: u32, c: u32) -> u32 {
    let (mut r, mut b) = (0u32, 1u64);
    while b < u64::from(n) {
        r += 1;
        // C(c + 1 + r - 1, r - 1) (c + 1 + r) / r = C(c + 1 + r, r).
        let next = u128::from(b) * (u128::from(c) + 1 + u128::from(r)) / u128::from(r).max(1);
        b = u64::try_from(next).unwrap_or(u64::MAX);
    }
    r
}

/// The number of steps the optimal schedule advances to reverse `n` steps with `c` free
/// snapshots: `r n - C(c + r + 1, r - 1)` (the first sweep included).
fn binomial_advances(n: u32, c: u32) -> u64 {
    let r = repetitions(n, c);
    if r == 0 {
        return 0;
    }
    (u64::from(r) * u64::from(n)).saturating_sub(beta(c + 2, r - 1))
}

/// Where to split `n >= 2` steps with `c >= 1` free snapshots: the state `m` steps on is
/// stored. Any `m` with the first `m` steps reversible with `c` snapshots in `r - 1`
/// repetitions and the other `n - m` with `c - 1` in `r` is optimal; the largest is taken,
/// so the first sweep (stored by the forward pass) reaches as far as it can.
fn binomial_split(n: u32, c: u32) -> u32 {
    let r = repetitions(n, c).max(1);
    let head = beta(c + 1, r - 1).min(u64::from(n).saturating_sub(beta(c, r - 1)));
    // head <= n - 1 since C(c + r - 1, r - 1) >= 1; min and max only keep this total.
    u32::try_from(head)
        .unwrap_or(1)
        .min(n.saturating_sub(1))
        .max(1)
}

/// The next snapshot of the binomial schedule from the state at `a`, with `end - a` steps
/// to reverse and `free` snapshots: `None` when the rest is reversed from `a` itself.
fn next_snapshot(a: u32, end: u32, free: u32) -> Option<u32> {
    let n = end.saturating_sub(a);
    (n >= 2 && free >= 1).then(|| a.saturating_add(binomial_split(n, free)))
}

impl Checkpoints {
    /// The checkpoint interval for a solve of `steps` steps (`>= 1`). Binomial snapshots
    /// are not evenly spaced; for them this is 1.
    pub fn interval(self, steps: u32) -> u32 {
        match self {
            Checkpoints::All | Checkpoints::Binomial(_) => 1,
            Checkpoints::Sqrt => {
                let mut s = math::sqrt(steps as f32) as u32;
                while s.saturating_mul(s) < steps {
                    s += 1;
                }
                s.max(1)
            }
            Checkpoints::Every(n) => n.max(1),
        }
    }

    /// The number of snapshots [`Checkpoints::Binomial`] uses for `steps` steps.
    fn snapshots(s: u32, steps: u32) -> u32 {
        s.min(MAX_BINOMIAL_SNAPSHOTS).min(steps.saturating_sub(1))
    }

    /// The rows the forward pass keeps for a solve of `steps` steps.
    pub(crate) fn kept(self, steps: u32) -> usize {
        match self {
            Checkpoints::Binomial(s) => Self::snapshots(s, steps) as usize,
            _ => steps.div_ceil(self.interval(steps)) as usize,
        }
    }

    /// The rows of scratch the backward pass needs besides the kept ones (one segment
    /// between two checkpoints; none for binomial snapshots, which are reused in place).
    pub(crate) fn scratch(self, steps: u32) -> usize {
        match self {
            Checkpoints::Binomial(_) => 0,
            _ => self.interval(steps).min(steps.max(1)) as usize,
        }
    }

    /// The number of states (rows of `D` floats) a trajectory's backward pass needs for a
    /// solve of `steps` steps: checkpoints plus one segment, or the binomial snapshots.
    pub fn states(self, steps: u32) -> usize {
        self.kept(steps).saturating_add(self.scratch(steps))
    }

    /// The number of steps one trajectory's forward pass and the backward pass's
    /// recomputation take together, for a solve of `steps` steps (see the table above; the
    /// tests count them). With every trajectory's checkpoints kept by the statistics pass
    /// ([`tape_len_keep_all`](crate::grad::reverse::tape_len_keep_all)) the forward pass is
    /// that pass, and the per-trajectory cost is `forward_steps - steps`.
    pub fn forward_steps(self, steps: u32) -> u64 {
        let n = u64::from(steps);
        match self {
            Checkpoints::Binomial(s) => {
                let s = Self::snapshots(s, steps);
                let (mut a, mut free) = (0, s);
                while let Some(next) = next_snapshot(a, steps, free) {
                    a = next;
                    free -= 1;
                }
                n + binomial_advances(steps, s).saturating_sub(u64::from(a))
            }
            _ => (2 * n).saturating_sub(self.kept(steps) as u64),
        }
    }
}

/// A step index past the plan of checked save times: cannot happen for inputs the callers
/// checked; an error rather than a panic if it ever does.
pub(crate) fn off_plan(_k: u32) -> Error {
    Error::OutOfRange {
        what: "step index past the last save time",
    }
}

/// A snapshot row or position the binomial schedule does not have: cannot happen for
/// buffers sized by [`Checkpoints::states`]; an error rather than a panic if it ever does.
fn off_schedule() -> Error {
    Error::OutOfRange {
        what: "binomial checkpoint schedule",
    }
}

/// Which row, if any, the forward pass stores the state before step `k` in.
#[derive(Clone, Copy)]
enum Keeper {
    /// Every `interval`-th state, in row `k / interval`.
    Interval(u32),
    /// The binomial schedule's first sweep: the next snapshot's position and row, the
    /// snapshots left, and the last step index.
    Sweep {
        next: Option<u32>,
        row: usize,
        free: u32,
        last: u32,
    },
}

impl Keeper {
    fn new(checkpoints: Checkpoints, last: u32) -> Self {
        match checkpoints {
            Checkpoints::Binomial(s) => {
                let free = Checkpoints::snapshots(s, last);
                Keeper::Sweep {
                    next: next_snapshot(0, last, free),
                    row: 0,
                    free,
                    last,
                }
            }
            c => Keeper::Interval(c.interval(last)),
        }
    }

    #[inline]
    fn row(&mut self, k: u32) -> Option<usize> {
        match self {
            Keeper::Interval(interval) => {
                // `interval >= 1` by construction; `max` lets the compiler see it too.
                let interval = (*interval).max(1);
                (k % interval == 0).then_some((k / interval) as usize)
            }
            Keeper::Sweep {
                next,
                row,
                free,
                last,
            } => {
                if *next != Some(k) {
                    return None;
                }
                let this = *row;
                *row += 1;
                *free = free.saturating_sub(1);
                *next = next_snapshot(k, *last, *free);
                Some(this)
            }
        }
    }
}

/// The trajectories one pass of an adjoint runs, one per lane of its scalar:
/// `first .. first + count` (lanes beyond `count` repeat the last one, as in the ensembles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaneGroup {
    /// The trajectory in lane 0.
    pub(crate) first: usize,
    /// How many lanes hold trajectories of their own (at least 1).
    pub(crate) count: usize,
}

impl LaneGroup {
    /// One trajectory, in an `f32` pass.
    pub(crate) const fn one(trajectory: usize) -> Self {
        Self {
            first: trajectory,
            count: 1,
        }
    }
}

impl<M: Method> Solver<M> {
    /// The increments of a planned step for the trajectories of `group` (zero for a method
    /// that uses no noise).
    #[inline]
    fn adjoint_increment<S, N, X, const D: usize>(
        noise: &N,
        group: LaneGroup,
        step: PlannedStep,
    ) -> Result<Increment<D, X>, Error>
    where
        X: PlainReal,
        S: SdeVjp<D, X>,
        M: StepVjp<S, D, X>,
        N: NoiseSource,
    {
        if M::USES_NOISE {
            let size = StepSize::planned(step.h, step.sqrt_h);
            lane_increment::<N, S, X, D, X>(
                noise,
                group.first,
                group.count,
                step.k,
                size,
                M::NEEDS_DZ,
            )
        } else {
            let zero = <X as Real>::ZERO;
            Ok(Increment {
                dw: [zero; D],
                dz: [zero; D],
            })
        }
    }

    /// One planned step from `u` (finiteness is checked at the save times, by the forward
    /// pass).
    #[inline]
    fn adjoint_step<S, N, X, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        group: LaneGroup,
        step: PlannedStep,
        u: &[X; D],
    ) -> Result<[X; D], Error>
    where
        X: PlainReal,
        S: SdeVjp<D, X>,
        M: StepVjp<S, D, X>,
        N: NoiseSource,
    {
        let inc = Self::adjoint_increment::<S, N, X, D>(noise, group, step)?;
        Ok(self
            .method
            .step(sde, step.t, step.h, u, &inc, ParamSeed::NONE))
    }

    /// A pass's forward solve to grid index `last`: calls `on_save(i, u)` at the save times
    /// exactly as [`Solver::ensemble`] does (so statistics folded from it have its bits),
    /// keeps the states `checkpoints` asks for in `kept` ([`Checkpoints::kept`] rows) and
    /// returns the final state. Like the ensembles it checks finiteness at the save times:
    /// [`Error::Diverged`] names the group's first non-finite lane and the last step before
    /// that save time (every state is followed by a save, so the backward pass, which
    /// recomputes the same states, meets only finite ones).
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-internal adjoint driver: each argument is a distinct buffer or input"
    )]
    pub(crate) fn forward_with_checkpoints<S, N, X, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        group: LaneGroup,
        u0: &[X; D],
        save_times: &[f32],
        last: u32,
        checkpoints: Checkpoints,
        kept: &mut [[X; D]],
        mut on_save: impl FnMut(usize, &[X; D]),
    ) -> Result<[X; D], Error>
    where
        X: PlainReal,
        S: SdeVjp<D, X>,
        M: StepVjp<S, D, X>,
        N: NoiseSource,
    {
        let mut keeper = Keeper::new(checkpoints, last);
        let mut u = *u0;
        let mut last_step = 0;
        for event in self.grid.plan_unchecked(save_times) {
            match event {
                PlanEvent::Save(i) => {
                    check_finite(&u, group.first, group.count, last_step)?;
                    on_save(i, &u);
                }
                PlanEvent::Step(step) => {
                    if let Some(slot) = keeper.row(step.k).and_then(|row| kept.get_mut(row)) {
                        *slot = u;
                    }
                    u = self.adjoint_step(sde, noise, group, step, &u)?;
                    last_step = step.k;
                }
            }
        }
        Ok(u)
    }

    /// A pass's backward solve from the checkpoints `kept` by its forward pass (with the
    /// same `checkpoints` and `last`) and its final state: recomputes the states it needs
    /// (into `scratch`, [`Checkpoints::scratch`] rows, or for binomial snapshots in `kept`
    /// itself) with the same noise, adds at every save time `save_times[i]` the cotangent
    /// `save_bar(i, u)` of the state saved there and applies every step's [`StepVjp`] in
    /// reverse. Adds the parameter cotangent into `params_bar` and the cotangent of `u0`
    /// into `u0_bar` (each lane its trajectory's).
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-internal adjoint driver: each argument is a distinct buffer or input"
    )]
    pub(crate) fn backward_from_checkpoints<S, N, X, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        group: LaneGroup,
        u0: &[X; D],
        save_times: &[f32],
        last: u32,
        checkpoints: Checkpoints,
        kept: &mut [[X; D]],
        final_state: &[X; D],
        scratch: &mut [[X; D]],
        save_bar: impl FnMut(usize, &[X; D]) -> [X; D],
        u0_bar: &mut [X; D],
        params_bar: &mut [X],
    ) -> Result<(), Error>
    where
        X: PlainReal,
        S: SdeVjp<D, X>,
        M: StepVjp<S, D, X>,
        N: NoiseSource,
    {
        let walk = Walk {
            solver: self,
            sde,
            noise,
            group,
            plan: self.grid.cursor_unchecked(save_times, last),
            save_bar,
            u_bar: [<X as Real>::ZERO; D],
        };
        let u_bar = if let Checkpoints::Binomial(_) = checkpoints {
            let snapshots = kept
                .get_mut(..checkpoints.kept(last))
                .ok_or(off_schedule())?;
            walk.binomial(u0, last, snapshots, final_state, params_bar)?
        } else {
            walk.by_segments(
                u0,
                last,
                checkpoints.interval(last),
                kept,
                final_state,
                scratch,
                params_bar,
            )?
        };
        axpy(u0_bar, 1.0, &u_bar);
        Ok(())
    }

    /// One pass's discrete adjoint in [`Checkpoints::states`]`(last)` rows of `states`:
    /// [`Solver::forward_with_checkpoints`], then [`Solver::backward_from_checkpoints`].
    /// Inputs must be checked by the caller (noise kind, save times); a short `states` is
    /// [`Error::Length`].
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-internal adjoint driver: each argument is a distinct buffer or input"
    )]
    pub(crate) fn adjoint_trajectory<S, N, X, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        group: LaneGroup,
        u0: &[X; D],
        save_times: &[f32],
        last: u32,
        checkpoints: Checkpoints,
        states: &mut [[X; D]],
        save_bar: impl FnMut(usize, &[X; D]) -> [X; D],
        u0_bar: &mut [X; D],
        params_bar: &mut [X],
    ) -> Result<(), Error>
    where
        X: PlainReal,
        S: SdeVjp<D, X>,
        M: StepVjp<S, D, X>,
        N: NoiseSource,
    {
        let short = Error::Length {
            what: "adjoint states (checkpoints plus one segment)",
            expected: checkpoints.states(last),
            found: states.len(),
        };
        let (kept, rest) = states
            .split_at_mut_checked(checkpoints.kept(last))
            .ok_or(short)?;
        let scratch = rest.get_mut(..checkpoints.scratch(last)).ok_or(short)?;
        let final_state = self.forward_with_checkpoints(
            sde,
            noise,
            group,
            u0,
            save_times,
            last,
            checkpoints,
            kept,
            |_, _| {},
        )?;
        self.backward_from_checkpoints(
            sde,
            noise,
            group,
            u0,
            save_times,
            last,
            checkpoints,
            kept,
            &final_state,
            scratch,
            save_bar,
            u0_bar,
            params_bar,
        )
    }

    /// [`Solver::ensemble`] on `f32` (the same statistics, bit for bit) that also keeps
    /// every trajectory's checkpoints and final state: trajectory `m` uses rows
    /// `m * (c + 1) .. (m + 1) * (c + 1)` of `states`, `c =`
    /// [`Checkpoints::kept`]`(last)`, the final state last. Inputs must be checked by the
    /// caller.
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-internal adjoint driver: each argument is a distinct buffer or input"
    )]
    pub(crate) fn ensemble_with_checkpoints<S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[f32; D],
        trajectories: usize,
        save_times: &[f32],
        last: u32,
        checkpoints: Checkpoints,
        mean: &mut [[f32; D]],
        var: &mut [[f32; D]],
        states: &mut [[f32; D]],
    ) -> Result<(), Error>
    where
        S: SdeVjp<D>,
        M: StepVjp<S, D>,
        N: NoiseSource,
    {
        let per = checkpoints.kept(last).saturating_add(1);
        mean.fill([0.0; D]);
        var.fill([0.0; D]);
        for (m, rows) in states.chunks_exact_mut(per).take(trajectories).enumerate() {
            let count = (m + 1) as f32;
            let (ckpt, tail) = rows.split_at_mut(per - 1);
            let final_state = self.forward_with_checkpoints(
                sde,
                noise,
                LaneGroup::one(m),
                u0,
                save_times,
                last,
                checkpoints,
                ckpt,
                |i, u| {
                    if let (Some(mean), Some(var)) = (mean.get_mut(i), var.get_mut(i)) {
                        super::welford_update(mean, var, u, count);
                    }
                },
            )?;
            if let Some(slot) = tail.first_mut() {
                *slot = final_state;
            }
        }
        super::finish_variance(var, trajectories);
        Ok(())
    }
}

/// A backward walk over one pass's steps: what every checkpoint schedule shares.
struct Walk<'a, M, S, N, F, X, const D: usize> {
    solver: &'a Solver<M>,
    sde: &'a S,
    noise: &'a N,
    group: LaneGroup,
    plan: PlanCursor<'a>,
    /// The cotangent of a state saved at save time `i`.
    save_bar: F,
    /// The cotangent of the state the walk has reached.
    u_bar: [X; D],
}

impl<M, S, N, F, X, const D: usize> Walk<'_, M, S, N, F, X, D>
where
    X: PlainReal,
    S: SdeVjp<D, X>,
    M: Method + StepVjp<S, D, X>,
    N: NoiseSource,
    F: FnMut(usize, &[X; D]) -> [X; D],
{
    /// Adds the cotangent of the state `u` reached after `k` steps if it is saved.
    #[inline]
    fn add_save(&mut self, k: u32, u: &[X; D]) {
        if let Some(i) = self.plan.save_at(k) {
            let bar = (self.save_bar)(i, u);
            axpy(&mut self.u_bar, 1.0, &bar);
        }
    }

    /// Step `k` forward from `x`.
    #[inline]
    fn advance(&mut self, k: u32, x: &[X; D]) -> Result<[X; D], Error> {
        let step = self.plan.step(k).ok_or(off_plan(k))?;
        self.solver
            .adjoint_step(self.sde, self.noise, self.group, step, x)
    }

    /// Undoes step `k` from its start state `uk`: the step's vector–Jacobian product, then
    /// the save cotangent of `uk`.
    #[inline]
    fn undo(&mut self, k: u32, uk: &[X; D], params_bar: &mut [X]) -> Result<(), Error> {
        let step = self.plan.step(k).ok_or(off_plan(k))?;
        let inc = Solver::<M>::adjoint_increment::<S, N, X, D>(self.noise, self.group, step)?;
        self.solver.method.step_vjp(
            self.sde,
            step.t,
            step.h,
            uk,
            &inc,
            &mut self.u_bar,
            params_bar,
        );
        self.add_save(k, uk);
        Ok(())
    }

    /// Evenly spaced checkpoints: walks back segment by segment, each recomputed from its
    /// checkpoint into `segment` (`min(interval, last)` rows). Returns the cotangent of `u0`.
    #[allow(
        clippy::too_many_arguments,
        reason = "private checkpoint-schedule driver: each argument is a distinct buffer or input"
    )]
    fn by_segments(
        mut self,
        u0: &[X; D],
        last: u32,
        interval: u32,
        checkpoints: &[[X; D]],
        final_state: &[X; D],
        segment: &mut [[X; D]],
        params_bar: &mut [X],
    ) -> Result<[X; D], Error> {
        let n_ckpt = last.div_ceil(interval) as usize;
        // The save cotangent at step index k is added once `u_bar` is the cotangent of the
        // state at k, before the step that produced it is undone.
        self.add_save(last, final_state);
        for seg in (0..n_ckpt).rev() {
            let k0 = seg as u32 * interval;
            let k1 = (k0 + interval).min(last);
            let mut x = checkpoints.get(seg).copied().unwrap_or(*u0);
            for (j, slot) in segment.iter_mut().enumerate().take((k1 - k0) as usize) {
                if j > 0 {
                    x = self.advance(k0 + j as u32 - 1, &x)?;
                }
                *slot = x;
            }
            for k in (k0..k1).rev() {
                let uk = segment.get((k - k0) as usize).copied().unwrap_or(*u0);
                self.undo(k, &uk, params_bar)?;
            }
        }
        Ok(self.u_bar)
    }

    /// Binomial snapshots: the schedule of [`Checkpoints::Binomial`] without recursion.
    /// `positions[l]` is the step index of the state held at level `l` (level 0: `u0`; level
    /// `l >= 1`: `snapshots[l - 1]`); the current range `positions[level] .. end` is split
    /// while snapshots are free, reversed step by step from its start otherwise, and then
    /// the level below resumes with the range up to the position just reversed. The
    /// snapshots of the first descent were stored by the forward pass. Returns the
    /// cotangent of `u0`.
    fn binomial(
        mut self,
        u0: &[X; D],
        last: u32,
        snapshots: &mut [[X; D]],
        final_state: &[X; D],
        params_bar: &mut [X],
    ) -> Result<[X; D], Error> {
        let snapshot_count = snapshots.len().min(MAX_BINOMIAL_SNAPSHOTS as usize);
        let mut positions = [0u32; MAX_BINOMIAL_SNAPSHOTS as usize + 1];
        self.add_save(last, final_state);
        let (mut level, mut end, mut first_descent) = (0usize, last, true);
        loop {
            let a = *positions.get(level).ok_or(off_schedule())?;
            let free = (snapshot_count - level.min(snapshot_count)) as u32;
            let held = match level {
                0 => *u0,
                l => *snapshots.get(l - 1).ok_or(off_schedule())?,
            };
            if let Some(split) = next_snapshot(a, end, free) {
                if !first_descent {
                    let mut x = held;
                    for k in a..split {
                        x = self.advance(k, &x)?;
                    }
                    *snapshots.get_mut(level).ok_or(off_schedule())? = x;
                }
                level += 1;
                *positions.get_mut(level).ok_or(off_schedule())? = split;
                continue;
            }
            first_descent = false;
            // No snapshot to spare: every step of the range from its start.
            for k in (a..end).rev() {
                let mut x = held;
                for j in a..k {
                    x = self.advance(j, &x)?;
                }
                self.undo(k, &x, params_bar)?;
            }
            end = a;
            if level == 0 {
                break;
            }
            level -= 1;
        }
        Ok(self.u_bar)
    }
}
