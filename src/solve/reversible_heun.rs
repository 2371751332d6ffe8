//! Reversible Heun (Kidger, Foster, Li and Lyons 2021, "Efficient and Accurate Gradients for
//! Neural SDEs"): an algebraically reversible Stratonovich method, so a backward pass can
//! rebuild every state from the last one and gradients need O(1) memory in the steps.

#![allow(clippy::indexing_slicing, reason = "const-size loops")]
#![allow(clippy::needless_range_loop)] // the step formulas index several arrays by component

use super::adjoint::off_plan;
use super::integrator::Job;
use super::method::builtin_method;
use super::{increment, PlanCursor, PlanEvent, PlannedStep, Solver};
use crate::error::Error;
use crate::lanes::Mask;
use crate::nn::ParamSeed;
use crate::noise::{Increment, NoiseSource};
use crate::real::Real;
use crate::sde::{Sde, SdeVjp};

builtin_method!(
    /// Reversible Heun (Stratonovich). It carries the solution `y` and an auxiliary state `z`
    /// (both start at `u0`), and the drift and diffusion at `z`:
    ///
    /// ```text
    /// z' = 2 y - z + f(t, z) h + g(t, z) dW
    /// y' = y + (f(t, z) + f(t + h, z')) h/2 + (g(t, z) + g(t + h, z')) dW/2
    /// ```
    ///
    /// One drift and one diffusion evaluation per step (those at `z'` are reused by the next
    /// step). The step can be undone exactly in exact arithmetic,
    /// `z = 2 y' - z' - f(t + h, z') h - g(t + h, z') dW`, then `y` from the second line, which
    /// is what the backward pass of [`Reversible`](crate::grad::Reversible)
    /// does instead of keeping states: in `f32` the rebuilt states differ from the forward
    /// ones by rounding only. Strong order 0.5 in general, 1.0 for additive noise (and for
    /// commutative noise in the tests of this crate); weak order 1. Any noise kind.
    ///
    /// The solution is saved at the save times. It is not a [`Step`](super::Step) method (its
    /// state is twice the SDE's): `Solver<ReversibleHeun>` is an [`Integrator`](super::Integrator)
    /// of its own, run by [`solve`](super::solve()), [`simulate_into`](super::simulate_into())
    /// and [`simulate`](super::simulate()) one trajectory at a time or on threads (not in lanes).
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{self, ReversibleHeun, SolveRequest, Solver, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// /// du = u o dW (Stratonovich): u(t) = u0 exp(W(t)).
    /// struct Gbm;
    /// impl<T: Real> Sde<T, 1> for Gbm {
    ///     const NOISE: NoiseKind = NoiseKind::Diagonal;
    ///     fn drift(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] { [T::ZERO] }
    ///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0]] }
    /// }
    /// let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 1000)?);
    /// let mut out = [[0.0f32; 1]];
    /// solve::solve(&solver, &Gbm, &Brownian::new(3), &SolveRequest::new([1.0], &[1.0]), &mut out)?;
    /// assert!(out[0][0] > 0.0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub struct ReversibleHeun: "ReversibleHeun", Stratonovich, strong 0.5, weak 1.0, dz false, supports _
);

/// The state of a reversible Heun solve: the solution, the auxiliary state, and the drift
/// and diffusion at the auxiliary state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RevState<T, const D: usize> {
    pub(crate) y: [T; D],
    pub(crate) z: [T; D],
    pub(crate) f: [T; D],
    pub(crate) g: [T; D],
}

impl<T: Real, const D: usize> RevState<T, D> {
    /// The state at the start, `y = z = u0`.
    pub(crate) fn start<S: Sde<T, D>>(sde: &S, t: f32, u0: &[T; D], seed: ParamSeed) -> Self {
        Self {
            y: *u0,
            z: *u0,
            f: sde.drift(t, u0, seed),
            g: sde.diffusion(t, u0, seed),
        }
    }

    /// One step from `t` of size `h` with increments `inc`.
    #[inline]
    pub(crate) fn step<S: Sde<T, D>>(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        inc: &Increment<D>,
        seed: ParamSeed,
    ) -> Self {
        let mut z = self.z;
        for i in 0..D {
            z[i] = self.y[i] * 2.0 - self.z[i] + self.f[i] * h + self.g[i] * inc.dw[i];
        }
        let f = sde.drift(t + h, &z, seed);
        let g = sde.diffusion(t + h, &z, seed);
        let mut y = self.y;
        let half_h = h * 0.5;
        for i in 0..D {
            y[i] += (self.f[i] + f[i]) * half_h + (self.g[i] + g[i]) * 0.5 * inc.dw[i];
        }
        Self { y, z, f, g }
    }

    fn is_finite(&self) -> bool {
        self.y.iter().chain(&self.z).all(|x| x.is_finite().all())
    }
}

impl<const D: usize> RevState<f32, D> {
    /// The state one step earlier: the step from `t` of size `h` undone algebraically.
    #[inline]
    pub(crate) fn unstep<S: Sde<f32, D>>(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        inc: &Increment<D>,
    ) -> Self {
        let mut z = self.z;
        for i in 0..D {
            z[i] = self.y[i] * 2.0 - self.z[i] - self.f[i] * h - self.g[i] * inc.dw[i];
        }
        let f = sde.drift(t, &z, ParamSeed::NONE);
        let g = sde.diffusion(t, &z, ParamSeed::NONE);
        let mut y = self.y;
        let half_h = h * 0.5;
        for i in 0..D {
            y[i] -= (f[i] + self.f[i]) * half_h + (g[i] + self.g[i]) * 0.5 * inc.dw[i];
        }
        Self { y, z, f, g }
    }

    /// The vector–Jacobian product of the step from `(y, z)` = `self` at `t`: given the
    /// cotangents of the next `y` and `z`, returns those of `self.y` and `self.z` and adds
    /// the parameter cotangent into `params_bar`. `next` is the step's result.
    #[allow(
        clippy::too_many_arguments,
        reason = "the step's inputs and its three cotangent outputs"
    )]
    #[inline]
    pub(crate) fn step_vjp<S: SdeVjp<D>>(
        &self,
        next: &Self,
        sde: &S,
        t: f32,
        h: f32,
        inc: &Increment<D>,
        y_bar: &mut [f32; D],
        z_bar: &mut [f32; D],
        params_bar: &mut [f32],
    ) {
        let half_h = h * 0.5;
        // z' enters y' through f(z') and g(z'), and is an output itself.
        let mut zn_bar = *z_bar;
        let f1_bar = y_bar.map(|x| x * half_h);
        let mut g1_bar = *y_bar;
        for (gb, &dw) in g1_bar.iter_mut().zip(&inc.dw) {
            *gb *= dw * 0.5;
        }
        sde.drift_vjp(t + h, &next.z, &f1_bar, &mut zn_bar, params_bar);
        sde.diffusion_vjp(t + h, &next.z, &g1_bar, &mut zn_bar, params_bar);
        // f(z) and g(z) enter both z' and y'.
        let mut f0_bar = f1_bar;
        let mut g0_bar = g1_bar;
        for i in 0..D {
            f0_bar[i] += zn_bar[i] * h;
            g0_bar[i] += zn_bar[i] * inc.dw[i];
        }
        let mut new_z_bar = zn_bar.map(|x| -x);
        sde.drift_vjp(t, &self.z, &f0_bar, &mut new_z_bar, params_bar);
        sde.diffusion_vjp(t, &self.z, &g0_bar, &mut new_z_bar, params_bar);
        for (yb, &zb) in y_bar.iter_mut().zip(&zn_bar) {
            *yb += 2.0 * zb;
        }
        *z_bar = new_z_bar;
    }
}

/// The increments of step `k` for reversible Heun (it uses `dW` only).
#[inline]
pub(crate) fn rev_increment<N: NoiseSource, S: Sde<T, D>, T: Real, const D: usize>(
    noise: &N,
    trajectory: usize,
    k: u32,
    h: f32,
) -> Result<Increment<D>, Error> {
    increment::<N, S, T, D>(noise, trajectory, k, h, false)
}

impl Solver<ReversibleHeun> {
    /// Integrates trajectory `trajectory` of the job, calling `on_save(i, y)` at each save
    /// time. Inputs must already be checked. The state is checked after every step.
    pub(crate) fn run_reversible<T, S, N, const D: usize>(
        &self,
        job: &Job<'_, T, S, N, D>,
        trajectory: usize,
        mut on_save: impl FnMut(usize, &[T; D]),
    ) -> Result<(), Error>
    where
        T: Real,
        S: Sde<T, D>,
        N: NoiseSource,
    {
        let (sde, seed) = (job.sde, job.seed);
        let mut state = RevState::start(sde, self.grid.t0(), &job.u0, seed);
        for event in self.grid.plan_unchecked(job.save_times) {
            let PlannedStep { k, t, h, .. } = match event {
                PlanEvent::Save(i) => {
                    on_save(i, &state.y);
                    continue;
                }
                PlanEvent::Step(step) => step,
            };
            let inc = rev_increment::<N, S, T, D>(job.noise, trajectory, k, h)?;
            state = state.step(sde, t, h, &inc, seed);
            if !state.is_finite() {
                return Err(Error::Diverged {
                    trajectory,
                    step: k,
                });
            }
        }
        Ok(())
    }

    /// One trajectory's gradient in O(1) memory: integrates to grid index `last` keeping
    /// only the final state, then walks back, rebuilding each earlier state by
    /// [`RevState::unstep`] and applying the step's vector–Jacobian product; adds
    /// `save_bar(i, y)` at save time `i`. Inputs must be checked by the caller.
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-internal gradient pass: a solve's inputs and its two cotangent outputs"
    )]
    pub(crate) fn reversible_adjoint_trajectory<S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        trajectory: usize,
        u0: &[f32; D],
        save_times: &[f32],
        last: u32,
        mut save_bar: impl FnMut(usize, &[f32; D]) -> [f32; D],
        u0_bar: &mut [f32; D],
        params_bar: &mut [f32],
    ) -> Result<(), Error>
    where
        S: SdeVjp<D>,
        N: NoiseSource,
    {
        let mut plan = self.grid.cursor_unchecked(save_times, last);
        let mut state = RevState::start(sde, self.grid.t0(), u0, ParamSeed::NONE);
        for k in 0..last {
            let PlannedStep { t, h, .. } = plan.step(k).ok_or(off_plan(k))?;
            let inc = rev_increment::<N, S, f32, D>(noise, trajectory, k, h)?;
            state = state.step(sde, t, h, &inc, ParamSeed::NONE);
            if !state.is_finite() {
                return Err(Error::Diverged {
                    trajectory,
                    step: k,
                });
            }
        }
        let mut y_bar = [0.0f32; D];
        let mut z_bar = [0.0f32; D];
        let mut add_saves =
            |plan: &mut PlanCursor<'_>, k: u32, y: &[f32; D], y_bar: &mut [f32; D]| {
                if let Some(i) = plan.save_at(k) {
                    for (yb, b) in y_bar.iter_mut().zip(save_bar(i, y)) {
                        *yb += b;
                    }
                }
            };
        add_saves(&mut plan, last, &state.y, &mut y_bar);
        for k in (0..last).rev() {
            let PlannedStep { t, h, .. } = plan.step(k).ok_or(off_plan(k))?;
            let inc = rev_increment::<N, S, f32, D>(noise, trajectory, k, h)?;
            let previous = state.unstep(sde, t, h, &inc);
            previous.step_vjp(&state, sde, t, h, &inc, &mut y_bar, &mut z_bar, params_bar);
            state = previous;
            add_saves(&mut plan, k, &state.y, &mut y_bar);
        }
        // y0 = z0 = u0, and f0, g0 are evaluated at z0: their cotangents were folded into
        // z_bar by the first step's VJP.
        for ((ub, &yb), &zb) in u0_bar.iter_mut().zip(&y_bar).zip(&z_bar) {
            *ub += yb + zb;
        }
        Ok(())
    }
}
