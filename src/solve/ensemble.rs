//! The three calls that integrate, for every [`Integrator`] and every [`Execution`]:
//! [`solve`] (one trajectory into the caller's rows), [`simulate_into`] (an ensemble into
//! the caller's [`EnsembleBuffers`]: no allocation, no_std) and [`simulate`] (an owned
//! [`Ensemble`], feature `std`); what to compute is a request with defaults.

use super::engine;
#[cfg(feature = "std")]
use super::integrator::Threads;
use super::integrator::{Bound, Execution, Integrator, Job, OneAtATime};
use super::InLanes;
use crate::error::Error;
use crate::real::Real;
use crate::sde::Sde;

/// One trajectory to [`solve`]: number `trajectory` of the noise source (default 0) from
/// `u0`, saved at `save_times` (strictly increasing, on the integrator's grid).
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EulerMaruyama, SolveRequest, Solver, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Bm; // pure Brownian motion: u(t) = u0 + W(t)
/// impl FixedSde<1> for Bm {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ONE] }
/// }
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 8)?);
/// let noise = Brownian::new(1);
/// let request = SolveRequest::new([2.0f32], &[1.0]);
/// assert_eq!(request.trajectory, 0);
/// let (mut first, mut third) = ([[0.0f32; 1]], [[0.0f32; 1]]);
/// solve::solve(&solver, &Bm, &noise, &request, &mut first)?;
/// solve::solve(&solver, &Bm, &noise, &request.trajectory(2), &mut third)?;
/// assert_ne!(first, third); // another path of the same noise source
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolveRequest<'a, T, const D: usize> {
    /// The initial state.
    pub u0: [T; D],
    /// Strictly increasing save times; the integration stops at the last one.
    pub save_times: &'a [f32],
    /// Which trajectory of the noise source (default 0).
    pub trajectory: usize,
}

impl<'a, T, const D: usize> SolveRequest<'a, T, D> {
    /// Trajectory 0 from `u0`, saved at `save_times`.
    ///
    /// ```
    /// let request = tinysde::solve::SolveRequest::new([1.0f32, 2.0], &[0.5, 1.0]);
    /// assert_eq!((request.u0, request.save_times, request.trajectory), ([1.0, 2.0], &[0.5, 1.0][..], 0));
    /// ```
    pub const fn new(u0: [T; D], save_times: &'a [f32]) -> Self {
        Self {
            u0,
            save_times,
            trajectory: 0,
        }
    }
    /// Trajectory number `trajectory` of the noise source instead.
    ///
    /// ```
    /// let request = tinysde::solve::SolveRequest::new([1.0f32], &[1.0]).trajectory(7);
    /// assert_eq!(request.trajectory, 7);
    /// ```
    pub const fn trajectory(mut self, trajectory: usize) -> Self {
        self.trajectory = trajectory;
        self
    }
}

/// What an ensemble computes: `trajectories` trajectories of the noise source from `u0`,
/// saved at `save_times`, and how it runs (`execution`: [`OneAtATime`] by default,
/// [`InLanes`] or [`Threads`]; results never depend on it). Built with
/// [`EnsembleRequest::new`]; the rest has defaults.
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Solver, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Bm; // pure Brownian motion: u(t) = u0 + W(t)
/// impl FixedSde<1> for Bm {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ONE] }
/// }
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 10)?);
/// let request = EnsembleRequest::new([0.0f32], 1000, &[1.0]);
/// let (mut mean, mut var) = ([[9.0f32; 1]], [[9.0f32; 1]]);
/// solve::simulate_into(&solver, &Bm, &Brownian::new(2), &request, EnsembleBuffers::new(&mut mean, &mut var))?;
/// assert!(mean[0][0].abs() < 0.1 && (var[0][0] - 1.0).abs() < 0.1); // W(1) ~ N(0, 1)
/// // Zero trajectories: a typed error, the buffers untouched.
/// let none = EnsembleRequest::new([0.0f32], 0, &[1.0]);
/// let (mut m0, mut v0) = ([[9.0f32; 1]], [[9.0f32; 1]]);
/// assert!(solve::simulate_into(&solver, &Bm, &Brownian::new(2), &none, EnsembleBuffers::new(&mut m0, &mut v0)).is_err());
/// assert_eq!((m0, v0), ([[9.0]], [[9.0]]));
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnsembleRequest<'a, T, const D: usize, E = OneAtATime> {
    /// The initial state.
    pub u0: [T; D],
    /// The number of trajectories (at least 1).
    pub trajectories: usize,
    /// Strictly increasing save times on the integrator's grid.
    pub save_times: &'a [f32],
    /// Whether [`simulate`] keeps every trajectory's states (default: no; [`simulate_into`]
    /// writes them when its buffers have room for them).
    pub paths: bool,
    /// How the ensemble runs.
    pub execution: E,
}

impl<'a, T, const D: usize> EnsembleRequest<'a, T, D> {
    /// `trajectories` trajectories from `u0`, saved at `save_times`; no paths, one
    /// trajectory at a time.
    ///
    /// ```
    /// use tinysde::solve::{EnsembleRequest, OneAtATime};
    /// let request = EnsembleRequest::new([1.0f32], 64, &[0.5, 1.0]);
    /// assert_eq!((request.trajectories, request.paths, request.execution), (64, false, OneAtATime));
    /// ```
    pub const fn new(u0: [T; D], trajectories: usize, save_times: &'a [f32]) -> Self {
        Self {
            u0,
            trajectories,
            save_times,
            paths: false,
            execution: OneAtATime,
        }
    }
}

impl<'a, T, const D: usize, E> EnsembleRequest<'a, T, D, E> {
    /// Keeps every trajectory's saved states too (for [`simulate`]).
    ///
    /// ```
    /// let request = tinysde::solve::EnsembleRequest::new([1.0f32], 64, &[1.0]).with_paths();
    /// assert!(request.paths);
    /// ```
    pub fn with_paths(mut self) -> Self {
        self.paths = true;
        self
    }
    /// Runs as `execution` says instead.
    ///
    /// ```
    /// use tinysde::solve::{EnsembleRequest, InLanes, OneAtATime};
    /// let lanes = EnsembleRequest::new([1.0f32], 64, &[1.0]).run_as(InLanes::<4>);
    /// assert_eq!(lanes.execution, InLanes::<4>);
    /// assert_eq!(lanes.run_as(OneAtATime), EnsembleRequest::new([1.0f32], 64, &[1.0]));
    /// ```
    pub fn run_as<F>(self, execution: F) -> EnsembleRequest<'a, T, D, F> {
        EnsembleRequest {
            u0: self.u0,
            trajectories: self.trajectories,
            save_times: self.save_times,
            paths: self.paths,
            execution,
        }
    }
    /// Computes `L` trajectories at once ([`InLanes`]).
    ///
    /// ```
    /// use tinysde::solve::{EnsembleRequest, InLanes};
    /// let request = EnsembleRequest::new([1.0f32], 64, &[1.0]).in_lanes::<8>();
    /// assert_eq!(request.execution, InLanes::<8>);
    /// ```
    pub fn in_lanes<const L: usize>(self) -> EnsembleRequest<'a, T, D, InLanes<L>> {
        self.run_as(InLanes::<L>)
    }
    /// Runs on `threads` threads (0: every core), each as this request ran so far
    /// ([`Threads`], feature `std`).
    ///
    /// ```
    /// use tinysde::solve::{EnsembleRequest, InLanes, Threads};
    /// let request = EnsembleRequest::new([1.0f32], 64, &[1.0]).in_lanes::<8>().on_threads(2);
    /// assert_eq!(request.execution, Threads { threads: 2, each: InLanes::<8> });
    /// ```
    #[cfg(feature = "std")]
    pub fn on_threads(self, threads: usize) -> EnsembleRequest<'a, T, D, Threads<E>> {
        EnsembleRequest {
            u0: self.u0,
            trajectories: self.trajectories,
            save_times: self.save_times,
            paths: self.paths,
            execution: Threads {
                threads,
                each: self.execution,
            },
        }
    }
}

/// The caller's buffers [`simulate_into`] writes: one row per save time for the mean and
/// the variance, and optionally `trajectories` × save times rows of paths (trajectory
/// `m`'s state at save time `i` in row `m * save_times.len() + i`).
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, SolveRequest, Solver, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Bm; // pure Brownian motion: u(t) = u0 + W(t)
/// impl FixedSde<1> for Bm {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ONE] }
/// }
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 4)?);
/// let (times, noise) = ([0.5, 1.0], Brownian::new(3));
/// let (mut mean, mut var, mut paths) = ([[0.0f32; 1]; 2], [[0.0f32; 1]; 2], [[0.0f32; 1]; 6]);
/// let out = EnsembleBuffers::new(&mut mean, &mut var).with_paths(&mut paths);
/// solve::simulate_into(&solver, &Bm, &noise, &EnsembleRequest::new([0.0], 3, &times), out)?;
/// // Trajectory 2's states are rows 4 and 5: the solve of trajectory 2.
/// let mut two = [[0.0f32; 1]; 2];
/// solve::solve(&solver, &Bm, &noise, &SolveRequest::new([0.0], &times).trajectory(2), &mut two)?;
/// assert_eq!(&paths[4..], &two);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Debug)]
pub struct EnsembleBuffers<'b, T, const D: usize> {
    /// Sample mean at each save time.
    pub mean: &'b mut [[T; D]],
    /// Sample variance (divisor `n - 1`; 0 for one trajectory) at each save time.
    pub variance: &'b mut [[T; D]],
    /// Every trajectory's states, if wanted.
    pub paths: Option<&'b mut [[T; D]]>,
}

impl<'b, T, const D: usize> EnsembleBuffers<'b, T, D> {
    /// Buffers for the mean and the variance, no paths.
    ///
    /// ```
    /// let (mut mean, mut var) = ([[0.0f32; 2]; 3], [[0.0f32; 2]; 3]);
    /// let out = tinysde::solve::EnsembleBuffers::new(&mut mean, &mut var);
    /// assert!(out.paths.is_none() && out.mean.len() == 3);
    /// ```
    pub fn new(mean: &'b mut [[T; D]], variance: &'b mut [[T; D]]) -> Self {
        Self {
            mean,
            variance,
            paths: None,
        }
    }
    /// Writes every trajectory's states into `paths` too.
    ///
    /// ```
    /// let (mut mean, mut var, mut paths) = ([[0.0f32; 1]; 2], [[0.0f32; 1]; 2], [[0.0f32; 1]; 20]);
    /// let out = tinysde::solve::EnsembleBuffers::new(&mut mean, &mut var).with_paths(&mut paths);
    /// assert_eq!(out.paths.map(|p| p.len()), Some(20)); // room for 10 trajectories
    /// ```
    pub fn with_paths(mut self, paths: &'b mut [[T; D]]) -> Self {
        self.paths = Some(paths);
        self
    }
}

/// Solves one trajectory (number `request.trajectory` of the noise source) from
/// `request.u0`, writing the state at each of `request.save_times` into `out` (same
/// length), and returns the integrator's report ([`Integrator::Stats`]).
///
/// Bad input (unsupported noise kind, non-finite `u0`, bad save times, wrong `out` length)
/// returns an error before anything is written. A state that is no longer finite stops the
/// solve with [`Error::Diverged`] (the fixed-step solver checks at the save times and names
/// the last step taken, reversible Heun checks every step, the adaptive solver rejects such
/// a step down to its minimum size); the adaptive solver also stops with
/// [`Error::MaxSteps`] or [`Error::StepSizeTooSmall`]. `out` is written only on success:
/// after any error it is bit-identical to what the caller passed in. (Up to
/// [`BACKUP_ROWS`](super::BACKUP_ROWS) save times this costs a stack copy; beyond that a
/// first pass checks that the trajectory succeeds before a second one writes, so the noise
/// source must be pure, as the [`NoiseSource`](crate::noise::NoiseSource) contract requires.)
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::sde::FixedSde;
/// use tinysde::solve::{self, ReversibleHeun, SolveRequest, Solver, TimeGrid};
/// use tinysde::{NoiseKind, Real};
///
/// /// du = u o dW (Stratonovich): u(t) = u0 exp(W(t)).
/// struct Gbm;
/// impl FixedSde<1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
///     fn diffusion<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0]] }
/// }
/// let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 1000)?);
/// let mut out = [[0.0f32; 1]];
/// let request = SolveRequest::new([1.0], &[1.0]).trajectory(3);
/// solve::solve(&solver, &Gbm, &Brownian::new(3), &request, &mut out)?;
/// assert!(out[0][0] > 0.0);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn solve<I, T, S, N, const D: usize>(
    integrator: &I,
    sde: &S,
    noise: &N,
    request: &SolveRequest<'_, T, D>,
    out: &mut [[T; D]],
) -> Result<I::Stats, Error>
where
    T: Real,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
{
    integrator.check_inputs(noise, &request.u0, request.save_times)?;
    let job = Job::new(sde, noise, request.u0, request.save_times);
    // One trajectory at a time (which needs no `Real<Value = f32>`).
    let runner = Bound {
        sweep: &OneAtATime,
        integrator,
        job: &job,
    };
    engine::solve(&runner, request.trajectory, out)
}

/// Solves trajectories `0..request.trajectories` from `request.u0` and writes, at each save
/// time, the sample mean and the sample variance (divisor `n - 1`; 0 for one trajectory) of
/// every component into `out`, and trajectory `m`'s state at save time `i` at
/// `out.paths[m * save_times.len() + i]` when `out.paths` is given; returns the
/// integrator's report summed over the trajectories. No allocation except on
/// [`Threads`]: the firmware's call.
///
/// The statistics are accumulated with Welford's update in trajectory order, so they are
/// stable and reproducible, and the same bits however the request runs
/// ([`EnsembleRequest::execution`]). Over `Dual` scalars they carry the exact derivative of
/// that computation. Errors as [`solve`] (the lowest failing trajectory's), zero
/// trajectories, wrong buffer lengths, and [`Error::StatisticsOverflow`].
///
/// `out` is written only on success: after any error, a diverging trajectory included,
/// it is bit-identical to what the caller passed in. (Without paths and up to
/// [`BACKUP_ROWS`](super::BACKUP_ROWS) save times this costs a stack copy of the mean and
/// variance; otherwise a first pass checks that every trajectory stays finite before a
/// second one writes, which doubles the cost, and needs a pure noise source.)
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::sde::FixedSde;
/// use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, Sosri, Solver, TimeGrid};
/// use tinysde::{NoiseKind, Real};
///
/// struct Gbm; // du = u dt + 0.5 u dW
/// impl FixedSde<1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0] * 0.5] }
/// }
/// let solver = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, 50)?);
/// let (times, noise) = ([0.5, 1.0], Brownian::new(3));
/// let (mut m1, mut v1, mut m8, mut v8) = ([[0.0f32; 1]; 2], [[0.0; 1]; 2], [[0.0; 1]; 2], [[0.0; 1]; 2]);
/// let request = EnsembleRequest::new([1.0], 21, &times);
/// solve::simulate_into(&solver, &Gbm, &noise, &request, EnsembleBuffers::new(&mut m1, &mut v1))?;
/// let lanes = request.in_lanes::<8>();
/// solve::simulate_into(&solver, &Gbm, &noise, &lanes, EnsembleBuffers::new(&mut m8, &mut v8))?;
/// assert_eq!((m1, v1), (m8, v8)); // bit for bit
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn simulate_into<I, E, T, S, N, const D: usize>(
    integrator: &I,
    sde: &S,
    noise: &N,
    request: &EnsembleRequest<'_, T, D, E>,
    out: EnsembleBuffers<'_, T, D>,
) -> Result<I::Stats, Error>
where
    T: Real<Value = f32>,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
    E: Execution<I, T, S, N, D>,
{
    integrator.check_inputs(noise, &request.u0, request.save_times)?;
    engine::check_ensemble(request.trajectories, request.save_times.len(), &out)?;
    let job = Job::new(sde, noise, request.u0, request.save_times);
    request
        .execution
        .ensemble(integrator, &job, request.trajectories, out)
}

/// An ensemble's results (feature `std`), from [`simulate`].
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{self, EnsembleRequest, EulerMaruyama, Solver, TimeGrid};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Bm; // pure Brownian motion: u(t) = u0 + W(t)
/// impl FixedSde<1> for Bm {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ZERO] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::ONE] }
/// }
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 4)?);
/// let request = EnsembleRequest::new([1.0f32], 2, &[0.5, 1.0]).with_paths();
/// let result = solve::simulate(&solver, &Bm, &Brownian::new(4), &request)?;
/// let (a, b) = (result.path(0).unwrap(), result.path(1).unwrap());
/// assert!((result.mean[1][0] - (a[1][0] + b[1][0]) / 2.0).abs() < 1e-6);
/// assert_eq!(result.stats, ()); // fixed steps report nothing
/// # Ok::<(), tinysde::Error>(())
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq)]
pub struct Ensemble<T, const D: usize, Stats = ()> {
    /// Sample mean at each save time.
    pub mean: std::vec::Vec<[T; D]>,
    /// Sample variance (divisor `n - 1`; 0 for one trajectory) at each save time.
    pub variance: std::vec::Vec<[T; D]>,
    /// Every trajectory's states (trajectory-major: `save_times.len()` rows each), if the
    /// request asked for them.
    pub paths: Option<std::vec::Vec<[T; D]>>,
    /// The integrator's report summed over the trajectories ([`Integrator::Stats`]: `()`
    /// for fixed steps, [`AdaptiveStats`](super::AdaptiveStats) for adaptive ones).
    pub stats: Stats,
}

#[cfg(feature = "std")]
impl<T, const D: usize, Stats> Ensemble<T, D, Stats> {
    /// Trajectory `m`'s saved states, if paths were kept and `m` is in range.
    ///
    /// ```
    /// use tinysde::solve::Ensemble;
    /// let result = Ensemble { mean: vec![[0.0f32]], variance: vec![[0.0]], paths: Some(vec![[1.0], [2.0]]), stats: () };
    /// assert_eq!(result.path(1), Some(&[[2.0f32]][..]));
    /// assert_eq!(result.path(2), None);
    /// ```
    pub fn path(&self, m: usize) -> Option<&[[T; D]]> {
        let rows = self.mean.len();
        let paths = self.paths.as_deref()?;
        paths.get(m.checked_mul(rows)?..m.checked_add(1)?.checked_mul(rows)?)
    }
}

/// [`simulate_into`] into buffers it allocates, the results by name (feature `std`): the
/// paths too if `request.paths`. The same bits as [`simulate_into`], errors included (and
/// an error rather than an abort when the paths do not fit in memory).
///
/// ```
/// use tinysde::noise::{Brownian, BrownianTree};
/// use tinysde::sde::FixedSde;
/// use tinysde::solve::{self, Adaptive, EnsembleRequest, Sosri, Solver, TimeGrid, PARALLEL_LANES};
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// let solver = Solver::new(Sosri, TimeGrid::new(0.0, 2.0, 200)?);
/// let times = [1.0, 2.0];
/// // Lane groups on every core; the same bits as one trajectory at a time.
/// let request = EnsembleRequest::new([1.0f32], 1000, &times).with_paths();
/// let fast = request.in_lanes::<PARALLEL_LANES>().on_threads(0);
/// let result = solve::simulate(&solver, &Ou, &Brownian::new(7), &fast)?;
/// assert_eq!(result, solve::simulate(&solver, &Ou, &Brownian::new(7), &request)?);
/// // E u(2) = e^-2, Var u(2) = (1 - e^-4) / 8
/// assert!((result.mean[1][0] - (-2.0f32).exp()).abs() < 0.03);
/// assert!((result.variance[1][0] - 0.1229).abs() < 0.015);
/// assert_eq!(result.path(999).map(<[_]>::len), Some(2));
/// // Adaptive steps on a Brownian tree report the steps they took.
/// let adaptive = Adaptive::new(Sosri, 1e-3, 1e-3)?;
/// let tree = BrownianTree::new(42, 0.0, 2.0, 16)?;
/// let request = EnsembleRequest::new([1.0f32], 100, &times).on_threads(2);
/// let result = solve::simulate(&adaptive, &Ou, &tree, &request)?;
/// assert!(result.stats.accepted > 0);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[cfg(feature = "std")]
pub fn simulate<I, E, T, S, N, const D: usize>(
    integrator: &I,
    sde: &S,
    noise: &N,
    request: &EnsembleRequest<'_, T, D, E>,
) -> Result<Ensemble<T, D, I::Stats>, Error>
where
    T: Real<Value = f32>,
    S: Sde<T, D>,
    I: Integrator<T, S, N, D>,
    E: Execution<I, T, S, N, D>,
{
    let rows = request.save_times.len();
    let mut mean = std::vec![[T::ZERO; D]; rows];
    let mut variance = std::vec![[T::ZERO; D]; rows];
    let mut paths = if request.paths {
        let too_many = Error::OutOfRange {
            what: "paths of trajectories x save times states do not fit in memory",
        };
        let len = request.trajectories.checked_mul(rows).ok_or(too_many)?;
        let mut paths = std::vec::Vec::new();
        paths.try_reserve_exact(len).map_err(|_| too_many)?;
        paths.resize(len, [T::ZERO; D]);
        Some(paths)
    } else {
        None
    };
    let out = EnsembleBuffers {
        mean: &mut mean,
        variance: &mut variance,
        paths: paths.as_deref_mut(),
    };
    let stats = simulate_into(integrator, sde, noise, request, out)?;
    Ok(Ensemble {
        mean,
        variance,
        paths,
        stats,
    })
}
