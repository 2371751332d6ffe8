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

    /// One planned step from `u` (finiteness is checked at the save times, by the forward
    /// pass).
    #[inline]
    pub(super) fn adjoint_step<S, N, X, const D: usize>(
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
                        crate::solve::welford_update(mean, var, u, count);
                    }
                },
            )?;
            if let Some(slot) = tail.first_mut() {
                *slot = final_state;
            }
        }
        crate::solve::finish_variance(var, trajectories);
        Ok(())
    }
}

/// A backward walk over one pass's steps: what every checkpoint schedule shares.
pub(super) struct Walk<'a, M, S, N, F, X, const D: usize> {
    pub(super) solver: &'a Solver<M>,
    pub(super) sde: &'a S,
    pub(super) noise: &'a N,
    pub(super) group: LaneGroup,
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

    /// Step `k` forward from `x`.
    #[inline]
    pub(super) fn advance(&mut self, k: u32, x: &[X; D]) -> Result<[X; D], Error> {
        let step = self.plan.step(k).ok_or(off_plan(k))?;
        self.solver
            .adjoint_step(self.sde, self.noise, self.group, step, x)
    }

    /// Undoes step `k` from its start state `uk`: the step's vector–Jacobian product, then
    /// the save cotangent of `uk`.
    #[inline]
    pub(super) fn undo(&mut self, k: u32, uk: &[X; D], params_bar: &mut [X]) -> Result<(), Error> {
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
    pub(super) fn by_segments(
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
    pub(super) fn binomial(
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
