//! The fixed-step solver: a [`Method`] on a [`TimeGrid`], one trajectory or a lane group
//! of trajectories at a time.

use super::engine::{self, Runner};
use super::ensemble::EnsembleBuffers;
use super::grid::{PlanEvent, TimeGrid};
use super::integrator::Job;
use super::method::{Method, Step};
use crate::error::{Error, NoiseKind};
use crate::lanes::{Lanes, Mask};
use crate::nn::ParamSeed;
use crate::noise::{Increment, NoiseSource, StepSize};
use crate::real::{Real, Widen};
use crate::sde::Sde;

/// A method on a time grid: the fixed-step [`Integrator`](super::Integrator).
///
/// It integrates with [`solve`](super::solve()), [`simulate_into`](super::simulate_into()) and
/// [`simulate`](super::simulate()), one trajectory at a time, in lane groups or on threads.
/// Steps are counted by an integer `k` from `t0` and each step's time comes from `k`.
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::sde::FixedSde;
/// use tinysde::solve::{self, EulerMaruyama, SolveRequest, Solver, TimeGrid};
/// use tinysde::{NoiseKind, Real};
///
/// struct Bm; // pure Brownian motion: f = 0, g = 1
/// impl FixedSde<1> for Bm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ONE] }
/// }
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 100)?);
/// let mut out = [[0.0f32; 1]; 2];
/// solve::solve(&solver, &Bm, &Brownian::new(1), &SolveRequest::new([0.0], &[0.5, 1.0]), &mut out)?;
/// assert!(out[1][0].is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Solver<M> {
    /// The stepping method.
    pub method: M,
    /// The time grid.
    pub grid: TimeGrid,
}

impl<M: Method> Solver<M> {
    /// A solver for `method` on `grid`.
    ///
    /// ```
    /// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 2.0, 40)?);
    /// assert_eq!((solver.grid.steps(), solver.grid.h()), (40, 0.05));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub const fn new(method: M, grid: TimeGrid) -> Self {
        Self { method, grid }
    }

    /// Validates a solve's inputs without touching anything.
    pub(crate) fn check<T: Real, const D: usize>(
        &self,
        noise: NoiseKind,
        u0: &[T; D],
        save_times: &[f32],
    ) -> Result<u32, Error> {
        if !M::supports(noise) {
            return Err(Error::UnsupportedNoise {
                method: M::NAME,
                noise,
            });
        }
        if let Some(index) = u0.iter().position(|x| !x.is_finite().all()) {
            return Err(Error::NonFinite {
                what: "initial state",
                index,
            });
        }
        self.grid.check_save_times(save_times)
    }

    /// Integrates the trajectories `first..first + count` of the noise source from `u0` (the job's initial state in every lane),
    /// one per lane of `X` (`count` at most the lane width; lanes beyond `count` repeat
    /// the last trajectory and are ignored), calling `on_save(i, u)` at each save time
    /// `job.save_times[i]`. Inputs must already be checked; the grid's plan ends at the last
    /// save time by itself.
    ///
    /// The state is checked for finiteness at each save time, before `on_save` sees it (a
    /// non-finite state stays non-finite: every method adds its update to the state). On
    /// failure the error names the lowest non-finite lane's trajectory and the last step
    /// taken; with one lane that is the serial path's error.
    ///
    /// The SDE and the noise are separate reference arguments, not the job's fields: as
    /// arguments they are known not to alias the caller's buffers that `on_save` writes, so
    /// the optimizer keeps what it derives from them (a model's weights packed for the
    /// step) out of the step loop (measured: 7 % fewer instructions for the seed model's
    /// Euler–Maruyama ensemble than through the job's fields).
    #[allow(
        clippy::too_many_arguments,
        reason = "the SDE and the noise as reference arguments (see above)"
    )]
    #[inline]
    fn run<X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        seed: ParamSeed,
        save_times: &[f32],
        first: usize,
        count: usize,
        u0: &[X; D],
        mut on_save: impl FnMut(usize, &[X; D]),
    ) -> Result<(), Error>
    where
        X: Real,
        S: Sde<X, D>,
        M: Step<X, S, D>,
        N: NoiseSource,
    {
        let mut u = *u0;
        let mut last_step = 0;
        for event in self.grid.plan_unchecked(save_times) {
            match event {
                PlanEvent::Save(i) => {
                    check_finite(&u, first, count, last_step)?;
                    on_save(i, &u);
                }
                PlanEvent::Step(step) => {
                    let inc = if M::USES_NOISE {
                        lane_increment::<N, S, X, D, X::Value>(
                            noise,
                            first,
                            count,
                            step.k,
                            StepSize::planned(step.h, step.sqrt_h),
                            M::NEEDS_DZ,
                        )?
                    } else {
                        Increment {
                            dw: [<X::Value as Lanes>::ZERO; D],
                            dz: [<X::Value as Lanes>::ZERO; D],
                        }
                    };
                    u = self.method.step(sde, step.t, step.h, &u, &inc, seed);
                    last_step = step.k;
                }
            }
        }
        Ok(())
    }

    /// Integrates the trajectories in `range`, a lane group of `X` at a time, showing every
    /// saved state to `visit(m, i, u)` (the order of [`Runner::for_each_state`]).
    ///
    /// On error the group's trajectories are run again one at a time, so the error is the
    /// one the one-lane integration returns (the lowest diverging trajectory and its step).
    /// `sde` and `noise` are the job's, as reference arguments (see [`Solver::run`]).
    fn for_each_state<T, X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        job: &Job<'_, T, S, N, D>,
        lanes: &Chunks<T, X, D>,
        range: core::ops::Range<usize>,
        mut visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<(), Error>
    where
        T: Real,
        X: Real,
        S: Sde<T, D> + Sde<X, D>,
        M: Step<T, S, D> + Step<X, S, D>,
        N: NoiseSource,
    {
        let width = <X::Value as Lanes>::WIDTH;
        let mut first = range.start;
        while first < range.end {
            let count = width.min(range.end - first);
            let (seed, times) = (job.seed, job.save_times);
            let result = self.run(
                sde,
                noise,
                seed,
                times,
                first,
                count,
                &lanes.wide_u0,
                |i, u| {
                    for j in 0..count {
                        visit(first + j, i, &(lanes.extract)(u, j));
                    }
                },
            );
            if let Err(e) = result {
                if width > 1 {
                    for m in first..first + count {
                        self.run(sde, noise, seed, times, m, 1, &job.u0, |_, _| {})?;
                    }
                }
                return Err(e);
            }
            first += count;
        }
        Ok(())
    }

    /// Validates inputs for the gradient passes (as an ensemble does) and accumulates the
    /// statistics of trajectories `0..trajectories`, one at a time, directly into their
    /// scratch `mean` and `var` (partial after an error). `seed` seeds parameter tangents.
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-internal; the gradient passes call it with their scratch as they are"
    )]
    pub(crate) fn ensemble_scratch<T, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        seed: ParamSeed,
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Step<T, S, D>,
        N: NoiseSource,
    {
        let job = Job::new(sde, noise, *u0, save_times).seeded(seed);
        let out = EnsembleBuffers::new(mean, var);
        self.check(S::NOISE, u0, save_times)?;
        engine::check_ensemble(trajectories, save_times.len(), &out)?;
        let runner = FixedRun::one_lane(self, &job);
        engine::accumulate(&runner, trajectories, out.mean, out.variance, None)
    }

    /// The ensemble of a job, one trajectory at a time, written only on success (the
    /// public [`simulate_into`](super::simulate_into()) with [`OneAtATime`](super::OneAtATime)
    /// for any [`Step`] method, with the job's seed).
    pub(crate) fn ensemble_job<T, S, N, const D: usize>(
        &self,
        job: &Job<'_, T, S, N, D>,
        trajectories: usize,
        out: EnsembleBuffers<'_, T, D>,
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Step<T, S, D>,
        N: NoiseSource,
    {
        self.check(S::NOISE, &job.u0, job.save_times)?;
        engine::check_ensemble(trajectories, job.save_times.len(), &out)?;
        engine::ensemble(&FixedRun::one_lane(self, job), trajectories, out)
    }

    /// One trajectory of a job into `out`, written only on success (the public
    /// [`solve`](super::solve()) for any [`Step`] method, with the job's seed).
    pub(crate) fn solve_job<T, S, N, const D: usize>(
        &self,
        job: &Job<'_, T, S, N, D>,
        trajectory: usize,
        out: &mut [[T; D]],
    ) -> Result<(), Error>
    where
        T: Real,
        S: Sde<T, D>,
        M: Step<T, S, D>,
        N: NoiseSource,
    {
        self.check(S::NOISE, &job.u0, job.save_times)?;
        engine::solve(&FixedRun::one_lane(self, job), trajectory, out)
    }
}

/// A fixed-step integration bound to its job, in lane groups of `X` (one lane: `X = T`).
pub(crate) struct FixedRun<'a, M, T, X, S, N, const D: usize> {
    solver: &'a Solver<M>,
    job: &'a Job<'a, T, S, N, D>,
    lanes: Chunks<T, X, D>,
}

impl<'a, M, T: Real, S, N, const D: usize> FixedRun<'a, M, T, T, S, N, D> {
    /// One trajectory at a time.
    pub(crate) fn one_lane(solver: &'a Solver<M>, job: &'a Job<'a, T, S, N, D>) -> Self {
        Self {
            solver,
            job,
            lanes: Chunks::one_lane(&job.u0),
        }
    }
}

/// A fixed-step integration of `L` trajectories at a time, one per lane of `T`'s wide form.
pub(crate) fn lane_run<'a, const L: usize, M, T: Widen<L>, S, N, const D: usize>(
    solver: &'a Solver<M>,
    job: &'a Job<'a, T, S, N, D>,
) -> FixedRun<'a, M, T, T::Wide, S, N, D> {
    FixedRun {
        solver,
        job,
        lanes: lane_chunks::<L, T, D>(&job.u0),
    }
}

impl<M, T, X, S, N, const D: usize> Runner<T, D> for FixedRun<'_, M, T, X, S, N, D>
where
    T: Real,
    X: Real,
    S: Sde<T, D> + Sde<X, D>,
    M: Method + Step<T, S, D> + Step<X, S, D>,
    N: NoiseSource,
{
    type Stats = ();
    fn width(&self) -> usize {
        <X::Value as Lanes>::WIDTH
    }
    fn saves(&self) -> usize {
        self.job.save_times.len()
    }
    #[inline]
    fn for_each_state(
        &self,
        range: core::ops::Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<(), Error> {
        let job = self.job;
        self.solver
            .for_each_state(job.sde, job.noise, job, &self.lanes, range, visit)
    }
}

/// How an ensemble computes its trajectories: in the scalar `X`, whose lanes hold one
/// trajectory each (`X = T` for one at a time), starting from `wide_u0` (the initial state
/// in every lane), with `extract(u, j)` giving lane `j` of a state as a one-lane state.
struct Chunks<T, X, const D: usize> {
    wide_u0: [X; D],
    extract: fn(&[X; D], usize) -> [T; D],
}

impl<T: Real, const D: usize> Chunks<T, T, D> {
    /// One trajectory at a time, in `T` itself.
    fn one_lane(u0: &[T; D]) -> Self {
        Self {
            wide_u0: *u0,
            extract: |u, _| *u,
        }
    }
}

/// `L` trajectories at a time, one per lane of `T`'s wide form.
fn lane_chunks<const L: usize, T: Widen<L>, const D: usize>(u0: &[T; D]) -> Chunks<T, T::Wide, D> {
    Chunks {
        wide_u0: u0.map(T::splat),
        extract: |u, j| u.map(|x| T::extract(&x, j)),
    }
}

/// `Ok` if every lane of `u` is finite; otherwise [`Error::Diverged`] for the first
/// non-finite lane of the `count` trajectories from `first`, at `step` (the last step of
/// the save interval: finiteness is checked at the save times).
#[inline]
pub(crate) fn check_finite<X: Real, const D: usize>(
    u: &[X; D],
    first: usize,
    count: usize,
    step: u32,
) -> Result<(), Error> {
    let finite = u
        .iter()
        .fold(X::ZERO.is_finite(), |m, x| m.and(x.is_finite()));
    if finite.all() {
        return Ok(());
    }
    let lane = (0..count).find(|&j| !finite.test(j)).unwrap_or(0);
    Err(Error::Diverged {
        trajectory: first.saturating_add(lane),
        step,
    })
}

/// The increments of one step of one trajectory, broadcasting the single channel for
/// scalar noise. Errors for a step size that is not finite and positive.
#[inline]
pub(crate) fn increment<N: NoiseSource, S: Sde<T, D>, T: Real, const D: usize>(
    noise: &N,
    trajectory: usize,
    k: u32,
    h: f32,
    with_dz: bool,
) -> Result<Increment<D>, Error> {
    let size = StepSize::new(h)?;
    lane_increment::<N, S, T, D, f32>(noise, trajectory, 1, k, size, with_dz)
}

/// The increments of one step for trajectories `first..first + count`, one per lane of
/// `V` (lanes beyond `count` repeat the last trajectory), broadcasting the single channel
/// for scalar noise. `dz` is left zero unless `with_dz`.
///
/// `size` comes from the step plan, with `sqrt(h)` computed once per grid segment; a
/// source that cannot fail ([`Brownian`](crate::noise::Brownian)) returns `Ok` always, and
/// once inlined no `Result` is left. All lanes are drawn by one
/// [`NoiseSource::increment_lanes`] call (vectorized for `Brownian`).
#[inline(always)]
pub(crate) fn lane_increment<N: NoiseSource, S: Sde<X, D>, X: Real, const D: usize, V: Lanes>(
    noise: &N,
    first: usize,
    count: usize,
    k: u32,
    size: StepSize,
    with_dz: bool,
) -> Result<Increment<D, V>, Error> {
    if S::NOISE == NoiseKind::Scalar {
        let Increment { dw: [w], dz: [z] } =
            noise.increment_lanes::<1, V>(first, count, k, size, with_dz)?;
        Ok(Increment {
            dw: [w; D],
            dz: [if with_dz { z } else { V::ZERO }; D],
        })
    } else {
        let mut inc = noise.increment_lanes::<D, V>(first, count, k, size, with_dz)?;
        if !with_dz {
            // A caller's source may fill `dz` anyway: the solvers rely on zero.
            inc.dz = [V::ZERO; D];
        }
        Ok(inc)
    }
}
