//! What integrates ([`Integrator`]: the fixed-step [`Solver`], [`Adaptive`], reversible Heun)
//! and how an ensemble runs ([`Execution`]: [`OneAtATime`], [`InLanes`], [`Threads`]), both
//! values given to the same three calls ([`solve`](super::solve()),
//! [`simulate_into`](super::simulate_into()), [`simulate`](super::simulate())).
//!
//! How an ensemble runs is a type, not a run-time flag: the firmware's one-at-a-time form
//! then never instantiates lane or thread code (its flash budget is checked by
//! `boards/ci.sh`), and each form states exactly the bounds it needs (lanes need an SDE and
//! a method over the wide scalar; threads need `Sync`). A combination that means nothing is
//! a compile error rather than a silent fallback: [`InLanes`] runs only the fixed-step
//! [`Solver`] with a [`Step`] method (adaptive steps differ between trajectories, and
//! reversible Heun's state is not a lane state); [`Threads`] runs every integrator, each
//! thread one trajectory at a time or in lane groups, as its [`Threads::each`] says.

use super::adaptive::{Adaptive, AdaptiveStats, Embedded};
use super::engine::{self, Runner, Tally};
use super::ensemble::EnsembleBuffers;
use super::fixed::{lane_run, FixedRun, Solver};
use super::method::{Method, Step};
use super::reversible_heun::ReversibleHeun;
use super::{EulerHeun, EulerMaruyama, Milstein, Rk4, Sosra, Sosri, Sra1, Sriw1};
use crate::error::Error;
use crate::nn::ParamSeed;
use crate::noise::{BrownianTree, NoiseSource};
use crate::real::{Real, Widen};
use crate::sde::Sde;
use core::ops::Range;

/// An integration's inputs: the SDE, the noise, the initial state and the save times (and,
/// inside the crate, the parameter tangents a gradient pass seeds). Built by the public
/// calls from their requests; integrators and executions receive it (hidden: only the
/// crate builds one).
#[doc(hidden)]
#[derive(Debug)]
pub struct Job<'a, T, S, N, const D: usize> {
    pub(crate) sde: &'a S,
    pub(crate) noise: &'a N,
    pub(crate) u0: [T; D],
    pub(crate) save_times: &'a [f32],
    pub(crate) seed: ParamSeed,
}

impl<'a, T, S, N, const D: usize> Job<'a, T, S, N, D> {
    /// The job without parameter tangents.
    pub(crate) const fn new(sde: &'a S, noise: &'a N, u0: [T; D], save_times: &'a [f32]) -> Self {
        Self {
            sde,
            noise,
            u0,
            save_times,
            seed: ParamSeed::NONE,
        }
    }

    /// The job with parameter tangents seeded by `seed` (the gradient passes').
    pub(crate) const fn seeded(mut self, seed: ParamSeed) -> Self {
        self.seed = seed;
        self
    }
}

/// Something that integrates the SDE `S` over the scalar `T` with the noise `N`: the
/// fixed-step [`Solver`] (any [`Step`] method of this crate, and [`ReversibleHeun`] with
/// its auxiliary state, on any noise source), or [`Adaptive`] (embedded methods, on a
/// [`BrownianTree`] only: the noise it takes is the `N` it is implemented for).
///
/// Its [`Stats`](Integrator::Stats) say what a solve reports besides the states: `()`
/// for fixed steps, [`AdaptiveStats`] (steps accepted and rejected) for adaptive ones.
/// The calls that use it are [`solve`](super::solve()), [`simulate_into`](super::simulate_into())
/// and [`simulate`](super::simulate()); the methods below are theirs (hidden).
///
/// ```
/// use tinysde::noise::{Brownian, BrownianTree};
/// use tinysde::sde::FixedSde;
/// use tinysde::solve::{self, Adaptive, SolveRequest, Solver, Sosri, TimeGrid};
/// use tinysde::{NoiseKind, Real};
///
/// struct Gbm; // du = u dt / 2 + u / 2 dW
/// impl FixedSde<1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0] * 0.5] }
///     fn diffusion<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0] * 0.5] }
/// }
/// let request = SolveRequest::new([1.0f32], &[0.5, 1.0]);
/// let mut out = [[0.0f32; 1]; 2];
/// // Fixed steps: nothing to report.
/// let fixed = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, 64)?);
/// let () = solve::solve(&fixed, &Gbm, &Brownian::new(3), &request, &mut out)?;
/// // Adaptive steps, on a Brownian tree: the steps taken.
/// let adaptive = Adaptive::new(Sosri, 1e-3, 1e-3)?;
/// let tree = BrownianTree::new(3, 0.0, 1.0, 16)?;
/// let stats = solve::solve(&adaptive, &Gbm, &tree, &request, &mut out)?;
/// assert!(stats.accepted > 0 && out[1][0] > 0.0);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait Integrator<T: Real, S: Sde<T, D>, N, const D: usize> {
    /// What a solve reports besides the states, summed over an ensemble's trajectories.
    type Stats: Tally;

    /// Validates the inputs (method and noise kind, initial state, save times) without
    /// touching anything.
    #[doc(hidden)]
    fn check_inputs(&self, noise: &N, u0: &[T; D], save_times: &[f32]) -> Result<(), Error>;

    /// Integrates the trajectories of `range` one at a time on checked inputs, calling
    /// `visit(m, i, u)` with trajectory `m`'s state at save time `i`; stops at the first
    /// error.
    #[doc(hidden)]
    fn run_trajectories(
        &self,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<Self::Stats, Error>;
}

/// An [`Integrator`] that also runs `L` trajectories at once, one per lane of `T`'s wide
/// form, with the bits of one at a time: the fixed-step [`Solver`] with a [`Step`] method.
/// What [`InLanes`] needs.
///
/// Generic code over the method states it as a bound on the solver (the fixed-step solver
/// is an integrator for each method of this crate; with a generic `M` the compiler needs
/// to be told):
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::sde::Sde;
/// use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, LaneIntegrator, Method, Solver, Sosri, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// /// The ensemble's mean at `t = 1`, 8 trajectories per pass.
/// fn mean_at_one<M: Method, S: Sde<f32, 1>>(method: M, sde: &S) -> Result<f32, tinysde::Error>
/// where
///     Solver<M>: LaneIntegrator<8, f32, S, Brownian, 1, Stats = ()>,
/// {
///     let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 50)?);
///     let request = EnsembleRequest::new([1.0f32], 100, &[1.0]).in_lanes::<8>();
///     let (mut mean, mut var) = ([[0.0f32; 1]], [[0.0f32; 1]]);
///     solve::simulate_into(&solver, sde, &Brownian::new(1), &request, EnsembleBuffers::new(&mut mean, &mut var))?;
///     Ok(mean[0][0])
/// }
/// assert!((mean_at_one(Sosri, &Ou)? - (-1.0f32).exp()).abs() < 0.05);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait LaneIntegrator<const L: usize, T: Widen<L>, S: Sde<T, D>, N, const D: usize>:
    Integrator<T, S, N, D>
{
    /// [`Integrator::run_trajectories`] a lane group at a time, in the order of the groups
    /// (for each group save time by save time), with the one-at-a-time error.
    #[doc(hidden)]
    fn run_lanes(
        &self,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<Self::Stats, Error>;
}

macro_rules! fixed_step_integrator {
    ($($method:ident),*) => {$(
        impl<T, S, N, const D: usize> Integrator<T, S, N, D> for Solver<$method>
        where
            T: Real,
            S: Sde<T, D>,
            N: NoiseSource,
            $method: Step<T, S, D>,
        {
            type Stats = ();
            fn check_inputs(&self, _: &N, u0: &[T; D], save_times: &[f32]) -> Result<(), Error> {
                self.check(S::NOISE, u0, save_times).map(drop)
            }
            #[inline]
            fn run_trajectories(
                &self,
                job: &Job<'_, T, S, N, D>,
                range: Range<usize>,
                visit: impl FnMut(usize, usize, &[T; D]),
            ) -> Result<(), Error> {
                FixedRun::one_lane(self, job).for_each_state(range, visit)
            }
        }
    )*};
}

// One impl per method rather than one for every `M: Step`: reversible Heun is a `Solver`
// too, with its own integration (coherence cannot tell it is not a `Step` method).
fixed_step_integrator!(
    EulerMaruyama,
    EulerHeun,
    Milstein,
    Rk4,
    Sosri,
    Sriw1,
    Sosra,
    Sra1
);

impl<const L: usize, M, T, S, N, const D: usize> LaneIntegrator<L, T, S, N, D> for Solver<M>
where
    T: Widen<L>,
    S: Sde<T, D> + Sde<T::Wide, D>,
    N: NoiseSource,
    M: Method + Step<T, S, D> + Step<T::Wide, S, D>,
    Solver<M>: Integrator<T, S, N, D, Stats = ()>,
{
    #[inline]
    fn run_lanes(
        &self,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<(), Error> {
        lane_run::<L, M, T, S, N, D>(self, job).for_each_state(range, visit)
    }
}

impl<T, S, N, const D: usize> Integrator<T, S, N, D> for Solver<ReversibleHeun>
where
    T: Real,
    S: Sde<T, D>,
    N: NoiseSource,
{
    type Stats = ();
    fn check_inputs(&self, _: &N, u0: &[T; D], save_times: &[f32]) -> Result<(), Error> {
        self.check(S::NOISE, u0, save_times).map(drop)
    }
    fn run_trajectories(
        &self,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        mut visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<(), Error> {
        for m in range {
            self.run_reversible(job, m, |i, y| visit(m, i, y))?;
        }
        Ok(())
    }
}

impl<T, S, M, const D: usize> Integrator<T, S, BrownianTree, D> for Adaptive<M>
where
    T: Real<Value = f32>,
    S: Sde<T, D>,
    M: Embedded<T, S, D>,
{
    type Stats = AdaptiveStats;
    fn check_inputs(
        &self,
        tree: &BrownianTree,
        u0: &[T; D],
        save_times: &[f32],
    ) -> Result<(), Error> {
        self.check(S::NOISE, tree, u0, save_times).map(drop)
    }
    fn run_trajectories(
        &self,
        job: &Job<'_, T, S, BrownianTree, D>,
        range: Range<usize>,
        mut visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<AdaptiveStats, Error> {
        // Checked inputs: the last save time is on the tree's grid.
        let last = job
            .save_times
            .last()
            .and_then(|&t| job.noise.index_of(t))
            .unwrap_or(0);
        let mut stats = AdaptiveStats::default();
        for m in range {
            stats.add(self.run(job, m, last, |i, u| visit(m, i, u))?);
        }
        Ok(stats)
    }
}

/// One trajectory at a time (the default): the smallest code, no allocation, the
/// firmware's form. Runs every [`Integrator`].
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, OneAtATime, Solver, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 20)?);
/// let request = EnsembleRequest::new([1.0f32], 10, &[1.0]);
/// assert_eq!(request.execution, OneAtATime); // the default
/// let (mut mean, mut var) = ([[0.0f32; 1]], [[0.0f32; 1]]);
/// solve::simulate_into(&solver, &Ou, &Brownian::new(1), &request, EnsembleBuffers::new(&mut mean, &mut var))?;
/// assert!(var[0][0] > 0.0);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OneAtATime;

/// `L` trajectories at once, one per lane of [`F32x<L>`](crate::lanes::F32x) (with `Dual<K>`
/// scalars, `Dual<K, F32x<L>>`), so that the compiler vectorizes across trajectories; no
/// allocation. The results, errors included, are bit-identical to [`OneAtATime`]'s: each
/// lane performs exactly the operations of the one-trajectory computation, its increments
/// come from the same pure function of (trajectory, step), and the statistics take the
/// trajectories in the same order. The number of trajectories need not be a multiple of
/// `L`. Runs a [`LaneIntegrator`] (the fixed-step [`Solver`] with a [`Step`] method, on an
/// SDE written for any `T: Real`); with [`Adaptive`] or reversible Heun it does not compile.
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleRequest, Milstein, Solver, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// let solver = Solver::new(Milstein, TimeGrid::new(0.0, 1.0, 20)?);
/// let request = EnsembleRequest::new([1.0f32], 13, &[0.5, 1.0]).with_paths();
/// let one = solve::simulate(&solver, &Ou, &Brownian::new(1), &request)?;
/// let lanes = solve::simulate(&solver, &Ou, &Brownian::new(1), &request.in_lanes::<4>())?;
/// assert_eq!(one, lanes); // 13 trajectories: 3 groups of 4 and 1 left over, the same bits
/// # Ok::<(), tinysde::Error>(())
/// ```
///
/// Adaptive steps on lanes do not compile:
///
/// ```compile_fail
/// use tinysde::noise::BrownianTree;
/// use tinysde::solve::{self, Adaptive, EnsembleRequest, Sosri};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// let adaptive = Adaptive::new(Sosri, 1e-3, 1e-3)?;
/// let tree = BrownianTree::new(1, 0.0, 1.0, 12)?;
/// let request = EnsembleRequest::new([1.0f32], 16, &[1.0]).in_lanes::<4>();
/// solve::simulate(&adaptive, &Ou, &tree, &request)?;
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InLanes<const L: usize>;

/// Several threads (feature `std`), each integrating a contiguous run of trajectories as
/// `each` says ([`OneAtATime`] or [`InLanes`]), folded into the statistics in trajectory
/// order by the calling thread: bit-identical to one thread, whatever the number, errors
/// included. It allocates (a scratch buffer of at most about 4 MiB, and a copy of the
/// caller's buffers to restore on error).
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleRequest, ReversibleHeun, Solver, Threads, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 20)?);
/// let request = EnsembleRequest::new([1.0f32], 50, &[1.0]);
/// let threaded = request.on_threads(3);
/// assert_eq!(threaded.execution, Threads { threads: 3, each: Default::default() });
/// let noise = Brownian::new(1);
/// assert_eq!(solve::simulate(&solver, &Ou, &noise, &request)?, solve::simulate(&solver, &Ou, &noise, &threaded)?);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Threads<E = OneAtATime> {
    /// The number of threads (0: as many as [`std::thread::available_parallelism`] reports).
    pub threads: usize,
    /// How each thread runs its trajectories.
    pub each: E,
}

/// How an ensemble runs: [`OneAtATime`], [`InLanes`] or [`Threads`], the `E` of an
/// [`EnsembleRequest`](super::EnsembleRequest). Implemented for the combinations that make
/// sense (see [`InLanes`] and [`Threads`]); results never depend on it.
///
/// Code generic over how an ensemble runs takes `E: Execution<...>`:
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Execution, Solver, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// type Em = Solver<EulerMaruyama>;
/// fn variance<E: Execution<Em, f32, Ou, Brownian, 1>>(solver: &Em, request: &EnsembleRequest<'_, f32, 1, E>) -> f32 {
///     let (mut mean, mut var) = ([[0.0f32; 1]], [[0.0f32; 1]]);
///     let out = EnsembleBuffers::new(&mut mean, &mut var);
///     solve::simulate_into(solver, &Ou, &Brownian::new(1), request, out).map_or(f32::NAN, |()| var[0][0])
/// }
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 20)?);
/// let request = EnsembleRequest::new([1.0f32], 30, &[1.0]);
/// assert_eq!(variance(&solver, &request).to_bits(), variance(&solver, &request.in_lanes::<8>()).to_bits());
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait Execution<I, T, S, N, const D: usize>: Copy
where
    T: Real<Value = f32>,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
{
    /// The ensemble of trajectories `0..trajectories` on checked inputs, written only on
    /// success.
    #[doc(hidden)]
    fn ensemble(
        &self,
        integrator: &I,
        job: &Job<'_, T, S, N, D>,
        trajectories: usize,
        out: EnsembleBuffers<'_, T, D>,
    ) -> Result<I::Stats, Error>;
}

/// How one thread integrates a run of trajectories: [`OneAtATime`] or [`InLanes`] (what a
/// [`Threads`] runs on each thread).
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleRequest, InLanes, Sosri, Solver, Threads, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// let solver = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, 20)?);
/// let request = EnsembleRequest::new([1.0f32], 40, &[1.0]);
/// let noise = Brownian::new(1);
/// // Two threads, each 8 trajectories per pass: the bits of one at a time.
/// let both = request.run_as(Threads { threads: 2, each: InLanes::<8> });
/// assert_eq!(solve::simulate(&solver, &Ou, &noise, &both)?, solve::simulate(&solver, &Ou, &noise, &request)?);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait Sweep<I, T, S, N, const D: usize>: Copy
where
    T: Real,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
{
    /// Trajectories per group.
    #[doc(hidden)]
    fn width(&self) -> usize;
    /// Integrates the trajectories of `range` (the order of [`Integrator::run_trajectories`]
    /// within a group, groups in order).
    #[doc(hidden)]
    fn sweep(
        &self,
        integrator: &I,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<I::Stats, Error>;
}

impl<I, T, S, N, const D: usize> Sweep<I, T, S, N, D> for OneAtATime
where
    T: Real,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
{
    fn width(&self) -> usize {
        1
    }
    #[inline]
    fn sweep(
        &self,
        integrator: &I,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<I::Stats, Error> {
        integrator.run_trajectories(job, range, visit)
    }
}

impl<const L: usize, I, T, S, N, const D: usize> Sweep<I, T, S, N, D> for InLanes<L>
where
    T: Widen<L>,
    S: Sde<T, D>,
    I: LaneIntegrator<L, T, S, N, D>,
{
    fn width(&self) -> usize {
        L
    }
    #[inline]
    fn sweep(
        &self,
        integrator: &I,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<I::Stats, Error> {
        integrator.run_lanes(job, range, visit)
    }
}

/// A sweep bound to its integrator and job: what the engine runs.
pub(super) struct Bound<'a, E, I, T, S, N, const D: usize> {
    /// How the trajectories are integrated.
    pub(super) sweep: &'a E,
    /// The integrator.
    pub(super) integrator: &'a I,
    /// The job.
    pub(super) job: &'a Job<'a, T, S, N, D>,
}

impl<E, I, T, S, N, const D: usize> Runner<T, D> for Bound<'_, E, I, T, S, N, D>
where
    T: Real,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
    E: Sweep<I, T, S, N, D>,
{
    type Stats = I::Stats;
    fn width(&self) -> usize {
        self.sweep.width()
    }
    fn saves(&self) -> usize {
        self.job.save_times.len()
    }
    #[inline]
    fn for_each_state(
        &self,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<I::Stats, Error> {
        self.sweep.sweep(self.integrator, self.job, range, visit)
    }
}

impl<I, T, S, N, const D: usize> Execution<I, T, S, N, D> for OneAtATime
where
    T: Real<Value = f32>,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
{
    fn ensemble(
        &self,
        integrator: &I,
        job: &Job<'_, T, S, N, D>,
        trajectories: usize,
        out: EnsembleBuffers<'_, T, D>,
    ) -> Result<I::Stats, Error> {
        let runner = Bound {
            sweep: self,
            integrator,
            job,
        };
        engine::ensemble(&runner, trajectories, out)
    }
}

impl<const L: usize, I, T, S, N, const D: usize> Execution<I, T, S, N, D> for InLanes<L>
where
    T: Real<Value = f32> + Widen<L>,
    S: Sde<T, D>,
    I: LaneIntegrator<L, T, S, N, D>,
{
    fn ensemble(
        &self,
        integrator: &I,
        job: &Job<'_, T, S, N, D>,
        trajectories: usize,
        out: EnsembleBuffers<'_, T, D>,
    ) -> Result<I::Stats, Error> {
        let runner = Bound {
            sweep: self,
            integrator,
            job,
        };
        engine::ensemble(&runner, trajectories, out)
    }
}

#[cfg(feature = "std")]
impl<E, I, T, S, N, const D: usize> Execution<I, T, S, N, D> for Threads<E>
where
    T: Real<Value = f32> + Send + Sync,
    S: Sde<T, D> + Sync,
    N: Sync,
    I: Integrator<T, S, N, D> + Sync,
    E: Sweep<I, T, S, N, D> + Sync,
{
    fn ensemble(
        &self,
        integrator: &I,
        job: &Job<'_, T, S, N, D>,
        trajectories: usize,
        out: EnsembleBuffers<'_, T, D>,
    ) -> Result<I::Stats, Error> {
        let runner = Bound {
            sweep: &self.each,
            integrator,
            job,
        };
        super::threads::ensemble(&runner, self.threads, trajectories, out)
    }
}

/// An SDE with its parameters' tangents seeded: `Seeded { sde, seed }` evaluates `sde` with
/// `seed` whatever seed it is given, so that a solve or an ensemble over
/// [`Dual`](crate::Dual) scalars carries the derivatives in the parameters `seed` selects
/// (forward mode; see [`ParamSeed`]). Inference does not need it.
///
/// ```
/// use tinysde::nn::{Dense, Identity, ParamSeed, Parameters};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{self, EulerMaruyama, Seeded, SolveRequest, Solver, TimeGrid};
/// use tinysde::{Dual, Real};
///
/// let model = NeuralSde { drift: Dense::<1, 1, Identity>::default(), diffusion: Dense::<1, 1, Identity>::default() };
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 10)?);
/// let seeded = Seeded { sde: &model, seed: ParamSeed::window(0) };
/// let mut out = [[Dual::<2>::ZERO; 1]];
/// let request = SolveRequest::new([Dual::constant(1.0)], &[1.0]);
/// solve::solve(&solver, &seeded, &Brownian::new(1), &request, &mut out)?;
/// assert!(out[0][0].value().is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Debug)]
pub struct Seeded<'a, S> {
    /// The SDE.
    pub sde: &'a S,
    /// Which parameters carry tangents.
    pub seed: ParamSeed,
}

impl<S> Clone for Seeded<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Seeded<'_, S> {}

impl<T: Real, S: Sde<T, D>, const D: usize> Sde<T, D> for Seeded<'_, S> {
    const NOISE: crate::error::NoiseKind = S::NOISE;
    #[inline]
    fn drift(&self, t: f32, u: &[T; D], _: ParamSeed) -> [T; D] {
        self.sde.drift(t, u, self.seed)
    }
    #[inline]
    fn diffusion(&self, t: f32, u: &[T; D], _: ParamSeed) -> [T; D] {
        self.sde.diffusion(t, u, self.seed)
    }
}

impl<I, T, S, N, const D: usize> Integrator<T, S, N, D> for &I
where
    T: Real,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D> + ?Sized,
{
    type Stats = I::Stats;
    fn check_inputs(&self, noise: &N, u0: &[T; D], save_times: &[f32]) -> Result<(), Error> {
        (**self).check_inputs(noise, u0, save_times)
    }
    #[inline]
    fn run_trajectories(
        &self,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<Self::Stats, Error> {
        (**self).run_trajectories(job, range, visit)
    }
}

impl<const L: usize, I, T, S, N, const D: usize> LaneIntegrator<L, T, S, N, D> for &I
where
    T: Widen<L>,
    S: Sde<T, D>,
    I: LaneIntegrator<L, T, S, N, D> + ?Sized,
{
    #[inline]
    fn run_lanes(
        &self,
        job: &Job<'_, T, S, N, D>,
        range: Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<Self::Stats, Error> {
        (**self).run_lanes(job, range, visit)
    }
}
