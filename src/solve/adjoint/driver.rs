//! The drivers: one trajectory's forward pass with checkpoints and backward pass from
//! them, and the ensemble statistics of an adjoint.

#[allow(
    clippy::wildcard_imports,
    reason = "the adjoint's shared imports and sibling pieces"
)]
use super::*;

impl<M: Method> Solver<M> {
    /// The increments of a planned step for the trajectories of `group` (zero for a method
    /// that uses no noise).
    #[inline]
    pub(super) fn adjoint_increment<S, N, X, const D: usize>(
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
}

/// What one adjoint pass runs: the solver, the SDE and its noise, the trajectories (lanes of
/// `X`), their start state, the save times with the grid index `last` of the last one, and
/// the checkpoint schedule.
pub(crate) struct AdjointPass<'a, M, S, N, X, const D: usize> {
    /// The solver (method and grid).
    pub(crate) solver: &'a Solver<M>,
    /// The SDE (with its parameters).
    pub(crate) sde: &'a S,
    /// The noise the forward solve used.
    pub(crate) noise: &'a N,
    /// The trajectories of the pass.
    pub(crate) group: LaneGroup,
    /// The start state.
    pub(crate) u0: &'a [X; D],
    /// The save times (checked by the caller).
    pub(crate) save_times: &'a [f32],
    /// The grid index of the last save time.
    pub(crate) last: u32,
    /// Which states the forward pass keeps.
    pub(crate) checkpoints: Checkpoints,
}

impl<M, S, N, X, const D: usize> AdjointPass<'_, M, S, N, X, D> {
    /// The same pass for the trajectories of `group`.
    pub(crate) const fn with(&self, group: LaneGroup) -> Self {
        Self { group, ..*self }
    }

    /// The same pass for trajectory `m` alone.
    pub(crate) const fn one(&self, m: usize) -> Self {
        self.with(LaneGroup::one(m))
    }
}

impl<M, S, N, X, const D: usize> AdjointPass<'_, M, S, N, X, D>
where
    X: PlainReal,
    S: SdeVjp<D, X>,
    M: Method + StepVjp<S, D, X>,
    N: NoiseSource,
{
    /// One planned step from `u` (finiteness is checked at the save times, by the forward
    /// pass), with the pass's SDE and noise given as `sde` and `noise`: the loops that call
    /// it take them as reference arguments (see [`forward`](Self::forward)).
    #[inline]
    fn step(&self, sde: &S, noise: &N, step: PlannedStep, u: &[X; D]) -> Result<[X; D], Error> {
        let inc = Solver::<M>::adjoint_increment::<S, N, X, D>(noise, self.group, step)?;
        Ok(self
            .solver
            .method
            .step(sde, step.t, step.h, u, &inc, ParamSeed::NONE))
    }

    /// The pass's forward solve to grid index `last`: calls `on_save(i, u)` at the save times
    /// exactly as [`simulate_into`](crate::solve::simulate_into) does (so statistics folded from it have its bits),
    /// keeps the states `checkpoints` asks for in `kept` ([`Checkpoints::kept`] rows) and
    /// returns the final state. Like the ensembles it checks finiteness at the save times:
    /// [`Error::Diverged`] names the group's first non-finite lane and the last step before
    /// that save time (every state is followed by a save, so the backward pass, which
    /// recomputes the same states, meets only finite ones).
    pub(crate) fn forward(
        &self,
        kept: &mut [[X; D]],
        on_save: impl FnMut(usize, &[X; D]),
    ) -> Result<[X; D], Error> {
        self.forward_with(self.sde, self.noise, kept, on_save)
    }

    /// [`forward`](Self::forward) with the pass's SDE and noise as reference arguments: as
    /// arguments they are known not to alias the rows and statistics the loop writes, so the
    /// optimizer keeps what it derives from them out of the step loop (as in the ensembles'
    /// `Solver::run`; measured on the seed task's reverse mode: the noise's per-trajectory
    /// keys were recomputed every step through the pass's fields).
    #[inline]
    fn forward_with(
        &self,
        sde: &S,
        noise: &N,
        kept: &mut [[X; D]],
        mut on_save: impl FnMut(usize, &[X; D]),
    ) -> Result<[X; D], Error> {
        let group = self.group;
        let mut keeper = Keeper::new(self.checkpoints, self.last);
        let mut u = *self.u0;
        let mut last_step = 0;
        for event in self.solver.grid.plan_unchecked(self.save_times) {
            match event {
                PlanEvent::Save(i) => {
                    check_finite(&u, group.first, group.count, last_step)?;
                    on_save(i, &u);
                }
                PlanEvent::Step(step) => {
                    if let Some(slot) = keeper.row(step.k).and_then(|row| kept.get_mut(row)) {
                        *slot = u;
                    }
                    u = self.step(sde, noise, step, &u)?;
                    last_step = step.k;
                }
            }
        }
        Ok(u)
    }

    /// The pass's discrete adjoint, backward from the save cotangents `save_bar(i, u)` (of
    /// the state `u` saved at save time `i`) through every step's [`StepVjp`] in reverse.
    /// Adds the parameter cotangent into `params_bar` and the cotangent of `u0` into
    /// `u0_bar` (each lane its trajectory's).
    ///
    /// The states it needs come from `tape`: [`Tape::Kept`], the rows its forward pass kept
    /// ([`Checkpoints::kept`]`(last)` checkpoints, then the final state) and a scratch
    /// segment ([`Checkpoints::scratch`] rows); or [`Tape::Recompute`], room for the forward
    /// pass first ([`Checkpoints::states`] rows). Inputs must be checked by the caller (noise
    /// kind, save times); a short tape is [`Error::Length`].
    pub(crate) fn adjoint(
        &self,
        tape: Tape<'_, X, D>,
        save_bar: impl FnMut(usize, &[X; D]) -> [X; D],
        u0_bar: &mut [X; D],
        params_bar: &mut [X],
    ) -> Result<(), Error> {
        let (checkpoints, last) = (self.checkpoints, self.last);
        let (kept, final_state, scratch) = match tape {
            Tape::Kept { rows, scratch } => {
                let short = Error::Length {
                    what: "adjoint tape (checkpoints and the final state)",
                    expected: checkpoints.kept(last).saturating_add(1),
                    found: rows.len(),
                };
                let (kept, tail) = rows
                    .split_at_mut_checked(checkpoints.kept(last))
                    .ok_or(short)?;
                (kept, *tail.first().ok_or(short)?, scratch)
            }
            Tape::Recompute(states) => {
                let short = Error::Length {
                    what: "adjoint states (checkpoints plus one segment)",
                    expected: checkpoints.states(last),
                    found: states.len(),
                };
                let (kept, rest) = states
                    .split_at_mut_checked(checkpoints.kept(last))
                    .ok_or(short)?;
                let scratch = rest.get_mut(..checkpoints.scratch(last)).ok_or(short)?;
                let final_state = self.forward(kept, |_, _| {})?;
                (kept, final_state, scratch)
            }
        };
        let walk = Walk {
            pass: self,
            plan: self.solver.grid.cursor_unchecked(self.save_times, last),
            save_bar,
            u_bar: [<X as Real>::ZERO; D],
        };
        let u_bar = if let Checkpoints::Binomial(_) = checkpoints {
            let snapshots = kept
                .get_mut(..checkpoints.kept(last))
                .ok_or(off_schedule())?;
            walk.binomial(
                self.sde,
                self.noise,
                self.u0,
                last,
                snapshots,
                &final_state,
                params_bar,
            )?
        } else {
            walk.by_segments(
                self.sde,
                self.noise,
                self.u0,
                last,
                checkpoints.interval(last),
                kept,
                &final_state,
                scratch,
                params_bar,
            )?
        };
        axpy(u0_bar, 1.0, &u_bar);
        Ok(())
    }
}

impl<M, S, N, const D: usize> AdjointPass<'_, M, S, N, f32, D>
where
    S: SdeVjp<D>,
    M: Method + StepVjp<S, D>,
    N: NoiseSource,
{
    /// [`simulate_into`](crate::solve::simulate_into) on `f32` (the same statistics, bit for
    /// bit) of the `group.count` trajectories from `group.first` that also keeps every
    /// trajectory's checkpoints and final state: trajectory `m` uses rows
    /// `m * (c + 1) .. (m + 1) * (c + 1)` of `states` (see [`kept_rows`]), `c =`
    /// [`Checkpoints::kept`]`(last)`, the final state last. Inputs must be checked by the
    /// caller.
    pub(crate) fn ensemble(
        &self,
        mean: &mut [[f32; D]],
        var: &mut [[f32; D]],
        states: &mut [[f32; D]],
    ) -> Result<(), Error> {
        let trajectories = self.group.count;
        let per = self.checkpoints.kept(self.last).saturating_add(1);
        mean.fill([0.0; D]);
        var.fill([0.0; D]);
        for (m, rows) in states.chunks_exact_mut(per).take(trajectories).enumerate() {
            let count = (m + 1) as f32;
            let (ckpt, tail) = rows.split_at_mut(per - 1);
            let final_state = self.one(m).forward(ckpt, |i, u| {
                if let (Some(mean), Some(var)) = (mean.get_mut(i), var.get_mut(i)) {
                    crate::solve::welford_update(mean, var, u, count);
                }
            })?;
            if let Some(slot) = tail.first_mut() {
                *slot = final_state;
            }
        }
        crate::solve::finish_variance(var, trajectories);
        Ok(())
    }
}

/// Where [`AdjointPass::adjoint`] finds the states of its pass.
pub(crate) enum Tape<'t, X, const D: usize> {
    /// The rows the forward pass kept (checkpoints, then the final state) and a scratch
    /// segment.
    Kept {
        /// [`Checkpoints::kept`]`(last) + 1` rows.
        rows: &'t mut [[X; D]],
        /// [`Checkpoints::scratch`]`(last)` rows.
        scratch: &'t mut [[X; D]],
    },
    /// Room to rerun the forward pass: [`Checkpoints::states`]`(last)` rows.
    Recompute(&'t mut [[X; D]]),
}

/// Trajectory `m`'s rows in a tape that keeps `trajectories` trajectories' checkpoints and
/// final states (`per` rows each, as [`AdjointPass::ensemble`] writes them), then a scratch
/// segment: its [`Tape::Kept`]. A short tape is `short`.
pub(crate) fn kept_rows<X, const D: usize>(
    states: &mut [[X; D]],
    trajectories: usize,
    per: usize,
    m: usize,
    short: Error,
) -> Result<Tape<'_, X, D>, Error> {
    let (kept, scratch) = states
        .split_at_mut_checked(trajectories.saturating_mul(per))
        .ok_or(short)?;
    let rows = kept
        .get_mut(m.saturating_mul(per)..m.saturating_add(1).saturating_mul(per))
        .ok_or(short)?;
    Ok(Tape::Kept { rows, scratch })
}

/// A backward walk over one pass's steps: what every checkpoint schedule shares.
pub(super) struct Walk<'a, M, S, N, F, X, const D: usize> {
    /// The pass it reverses.
    pub(super) pass: &'a AdjointPass<'a, M, S, N, X, D>,
    /// The save times and steps of the pass.
    pub(super) plan: PlanCursor<'a>,
    /// The cotangent of a state saved at save time `i`.
    pub(super) save_bar: F,
    /// The cotangent of the state the walk has reached.
    pub(super) u_bar: [X; D],
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
    pub(super) fn add_save(&mut self, k: u32, u: &[X; D]) {
        if let Some(i) = self.plan.save_at(k) {
            let bar = (self.save_bar)(i, u);
            axpy(&mut self.u_bar, 1.0, &bar);
        }
    }

    /// Step `k` forward from `x` (the pass's SDE and noise given, see
    /// [`by_segments`](Self::by_segments)).
    #[inline]
    pub(super) fn advance(
        &mut self,
        sde: &S,
        noise: &N,
        k: u32,
        x: &[X; D],
    ) -> Result<[X; D], Error> {
        let step = self.plan.step(k).ok_or(off_plan(k))?;
        self.pass.step(sde, noise, step, x)
    }

    /// Undoes step `k` from its start state `uk`: the step's vector–Jacobian product, then
    /// the save cotangent of `uk`.
    #[inline(always)]
    pub(super) fn undo(
        &mut self,
        sde: &S,
        noise: &N,
        k: u32,
        uk: &[X; D],
        params_bar: &mut [X],
    ) -> Result<(), Error> {
        let step = self.plan.step(k).ok_or(off_plan(k))?;
        let pass = self.pass;
        let inc = Solver::<M>::adjoint_increment::<S, N, X, D>(noise, pass.group, step)?;
        pass.solver
            .method
            .step_vjp(sde, step.t, step.h, uk, &inc, &mut self.u_bar, params_bar);
        self.add_save(k, uk);
        Ok(())
    }

    /// Evenly spaced checkpoints: walks back segment by segment, each recomputed from its
    /// checkpoint into `segment` (`min(interval, last)` rows). Returns the cotangent of `u0`.
    /// `sde` and `noise` are the pass's, as reference arguments (see
    /// [`AdjointPass::forward_with`]): what the steps derive from them stays out of the loop.
    #[allow(
        clippy::too_many_arguments,
        reason = "private checkpoint-schedule driver: each argument is a distinct buffer or input"
    )]
    pub(super) fn by_segments(
        mut self,
        sde: &S,
        noise: &N,
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
                    x = self.advance(sde, noise, k0 + j as u32 - 1, &x)?;
                }
                *slot = x;
            }
            for k in (k0..k1).rev() {
                let uk = segment.get((k - k0) as usize).copied().unwrap_or(*u0);
                self.undo(sde, noise, k, &uk, params_bar)?;
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
    /// cotangent of `u0`. `sde` and `noise` are the pass's (see
    /// [`by_segments`](Self::by_segments)).
    #[allow(
        clippy::too_many_arguments,
        reason = "private checkpoint-schedule driver: each argument is a distinct buffer or input"
    )]
    pub(super) fn binomial(
        mut self,
        sde: &S,
        noise: &N,
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
                        x = self.advance(sde, noise, k, &x)?;
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
                    x = self.advance(sde, noise, j, &x)?;
                }
                self.undo(sde, noise, k, &x, params_bar)?;
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
