//! Ensembles by request: what to compute in one struct with defaults, the results under
//! their names.
//!
//! [`Solver::simulate`] (feature `std`) returns an owned [`Ensemble`] and uses every lane
//! and core; [`Solver::simulate_into`] writes into [`EnsembleBuffers`] the caller placed
//! (no allocation, one trajectory at a time: the firmware's form). Both compute exactly
//! what [`Solver::ensemble`] computes, bit for bit.

use super::{Adaptive, AdaptiveStats, Embedded, Method, Solver, Step};
use crate::error::Error;
use crate::nn::ParamSeed;
use crate::noise::BrownianTree;
use crate::noise::NoiseSource;
use crate::real::Real;
use crate::sde::Sde;

/// What an ensemble computes: `trajectories` trajectories of the noise source from `u0`,
/// saved at `save_times`. Built with [`EnsembleRequest::new`]; the rest has defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnsembleRequest<'a, T, const D: usize> {
    /// The initial state.
    pub u0: [T; D],
    /// The number of trajectories (at least 1).
    pub trajectories: usize,
    /// Strictly increasing save times on the solver's grid.
    pub save_times: &'a [f32],
    /// Whether [`Solver::simulate`] keeps every trajectory's states (default: no).
    pub paths: bool,
    /// Threads for [`Solver::simulate`]: 0 (the default) for every core; results do not
    /// depend on it.
    pub threads: usize,
    /// Which parameters carry tangents, for forward-mode differentiation (default:
    /// none; inference never sets it).
    pub seed: ParamSeed,
}

impl<'a, T, const D: usize> EnsembleRequest<'a, T, D> {
    /// `trajectories` trajectories from `u0`, saved at `save_times`; no paths, every
    /// core, no parameter tangents.
    pub const fn new(u0: [T; D], trajectories: usize, save_times: &'a [f32]) -> Self {
        Self {
            u0,
            trajectories,
            save_times,
            paths: false,
            threads: 0,
            seed: ParamSeed::NONE,
        }
    }
    /// Keeps every trajectory's saved states too.
    pub const fn with_paths(mut self) -> Self {
        self.paths = true;
        self
    }
    /// Uses `threads` threads (0: every core).
    pub const fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
    /// Seeds parameter tangents (forward mode; see [`ParamSeed`]).
    pub const fn with_seed(mut self, seed: ParamSeed) -> Self {
        self.seed = seed;
        self
    }
}

/// The caller's buffers [`Solver::simulate_into`] writes: one row per save time for the
/// mean and the variance, and optionally `trajectories` × save times rows of paths
/// (trajectory `m`'s state at save time `i` in row `m * save_times.len() + i`).
#[derive(Debug)]
pub struct EnsembleBuffers<'b, T, const D: usize> {
    /// Sample mean at each save time.
    pub mean: &'b mut [[T; D]],
    /// Sample variance (divisor `n - 1`; 0 for one trajectory) at each save time.
    pub variance: &'b mut [[T; D]],
    /// Every trajectory's states, if wanted.
    pub paths: Option<&'b mut [[T; D]]>,
}

/// An ensemble's results (feature `std`), from [`Solver::simulate`].
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq)]
pub struct Ensemble<T, const D: usize> {
    /// Sample mean at each save time.
    pub mean: std::vec::Vec<[T; D]>,
    /// Sample variance (divisor `n - 1`; 0 for one trajectory) at each save time.
    pub variance: std::vec::Vec<[T; D]>,
    /// Every trajectory's states (trajectory-major: `save_times.len()` rows each), if the
    /// request asked for them.
    pub paths: Option<std::vec::Vec<[T; D]>>,
}

/// Rows of states (feature `std`).
#[cfg(feature = "std")]
type Rows<T, const D: usize> = std::vec::Vec<[T; D]>;

#[cfg(feature = "std")]
impl<T: Real, const D: usize> Ensemble<T, D> {
    /// Zeroed statistics for `request`, and zeroed paths apart if it asks for them (an
    /// error rather than an abort when they do not fit in memory).
    fn for_request(
        request: &EnsembleRequest<'_, T, D>,
    ) -> Result<(Self, Option<Rows<T, D>>), Error> {
        let rows = request.save_times.len();
        let result = Ensemble {
            mean: std::vec![[T::ZERO; D]; rows],
            variance: std::vec![[T::ZERO; D]; rows],
            paths: None,
        };
        if !request.paths {
            return Ok((result, None));
        }
        let too_many = Error::OutOfRange {
            what: "paths of trajectories x save times states do not fit in memory",
        };
        let len = request.trajectories.checked_mul(rows).ok_or(too_many)?;
        let mut paths = std::vec::Vec::new();
        paths.try_reserve_exact(len).map_err(|_| too_many)?;
        paths.resize(len, [T::ZERO; D]);
        Ok((result, Some(paths)))
    }
}

#[cfg(feature = "std")]
impl<T, const D: usize> Ensemble<T, D> {
    /// Trajectory `m`'s saved states, if paths were kept and `m` is in range.
    pub fn path(&self, m: usize) -> Option<&[[T; D]]> {
        let rows = self.mean.len();
        let paths = self.paths.as_deref()?;
        paths.get(m.checked_mul(rows)?..m.checked_add(1)?.checked_mul(rows)?)
    }
}

impl<M: Method> Solver<M> {
    /// [`Solver::ensemble`] for a request, into the caller's buffers: one trajectory at a
    /// time, no allocation (`request.paths` and `request.threads` are not used: the paths
    /// are written when `out.paths` is given). Errors and the written-only-on-success
    /// guarantee as [`Solver::ensemble`].
    pub fn simulate_into<T, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        request: &EnsembleRequest<'_, T, D>,
        out: EnsembleBuffers<'_, T, D>,
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Step<T, S, D>,
        N: NoiseSource,
    {
        self.ensemble(
            sde,
            noise,
            &request.u0,
            request.trajectories,
            request.save_times,
            out.mean,
            out.variance,
            out.paths,
            request.seed,
        )
    }
}

#[cfg(feature = "std")]
impl<M: Method + Sync> Solver<M> {
    /// Computes an ensemble and returns its results by name (feature `std`):
    /// [`PARALLEL_LANES`](super::PARALLEL_LANES) trajectories per pass on each of
    /// `request.threads` threads, bit-identical to [`Solver::ensemble`] one trajectory at
    /// a time. Errors as [`Solver::ensemble`].
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{EnsembleRequest, Sosri, Solver, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Ou; // du = -u dt + 0.5 dW
    /// impl<T: Real> Sde<T, 1> for Ou {
    ///     const NOISE: NoiseKind = NoiseKind::Additive;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [-u[0]] }
    ///     fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] { [T::cst(0.5)] }
    /// }
    /// let solver = Solver::new(Sosri, TimeGrid::new(0.0, 2.0, 200)?);
    /// let times = [1.0, 2.0];
    /// let request = EnsembleRequest::new([1.0f32], 1000, &times).with_paths();
    /// let result = solver.simulate(&Ou, &Brownian::new(7), &request)?;
    /// // E u(2) = e^-2, Var u(2) = (1 - e^-4) / 8
    /// assert!((result.mean[1][0] - (-2.0f32).exp()).abs() < 0.03);
    /// assert!((result.variance[1][0] - 0.1229).abs() < 0.015);
    /// assert_eq!(result.path(999).map(<[_]>::len), Some(2));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn simulate<T, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        request: &EnsembleRequest<'_, T, D>,
    ) -> Result<Ensemble<T, D>, Error>
    where
        T: crate::real::Widen<{ super::PARALLEL_LANES }> + Send + Sync,
        T::Wide: Send + Sync,
        S: Sde<T, D> + Sde<T::Wide, D> + Sync,
        M: Step<T, S, D> + Step<T::Wide, S, D>,
        N: NoiseSource + Sync,
    {
        let (mut result, mut paths) = Ensemble::for_request(request)?;
        self.ensemble_parallel(
            sde,
            noise,
            &request.u0,
            request.trajectories,
            request.save_times,
            &mut result.mean,
            &mut result.variance,
            paths.as_deref_mut(),
            request.seed,
            request.threads,
        )?;
        result.paths = paths;
        Ok(result)
    }
}

impl<M: Method> Adaptive<M> {
    /// [`Adaptive::ensemble`] for a request, into the caller's buffers (no allocation;
    /// `request.paths` and `request.threads` are not used: the paths are written when
    /// `out.paths` is given). Errors as [`Adaptive::ensemble`].
    pub fn simulate_into<T, S, const D: usize>(
        &self,
        sde: &S,
        tree: &BrownianTree,
        request: &EnsembleRequest<'_, T, D>,
        out: EnsembleBuffers<'_, T, D>,
    ) -> Result<AdaptiveStats, Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Embedded<T, S, D>,
    {
        self.ensemble(
            sde,
            tree,
            &request.u0,
            request.trajectories,
            request.save_times,
            out.mean,
            out.variance,
            out.paths,
            request.seed,
        )
    }
}

#[cfg(feature = "std")]
impl<M: Method + Sync> Adaptive<M> {
    /// An adaptive ensemble by request, its results by name (feature `std`), on
    /// `request.threads` threads, bit-identical to [`Adaptive::ensemble`]; with the step
    /// counts. Errors as [`Adaptive::ensemble`].
    ///
    /// ```
    /// use tinysde::noise::BrownianTree;
    /// use tinysde::sde::FixedSde;
    /// use tinysde::solve::{Adaptive, EnsembleRequest, Sosri};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Gbm; // du = u dt / 2 + u / 2 dW
    /// impl FixedSde<1> for Gbm {
    ///     const NOISE: NoiseKind = NoiseKind::Diagonal;
    ///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0] * 0.5] }
    ///     fn diffusion<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0] * 0.5] }
    /// }
    /// let tree = BrownianTree::new(42, 0.0, 1.0, 16)?;
    /// let solver = Adaptive::new(Sosri, 1e-3, 1e-3)?;
    /// let request = EnsembleRequest::new([1.0f32], 100, &[0.5, 1.0]);
    /// let (ensemble, stats) = solver.simulate(&Gbm, &tree, &request)?;
    /// assert!(stats.accepted > 0 && (ensemble.mean[1][0] - 0.5f32.exp()).abs() < 0.3);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn simulate<T, S, const D: usize>(
        &self,
        sde: &S,
        tree: &BrownianTree,
        request: &EnsembleRequest<'_, T, D>,
    ) -> Result<(Ensemble<T, D>, AdaptiveStats), Error>
    where
        T: Real<Value = f32> + Send + Sync,
        S: Sde<T, D> + Sync,
        M: Embedded<T, S, D>,
    {
        let (mut result, mut paths) = Ensemble::for_request(request)?;
        let stats = self.ensemble_parallel(
            sde,
            tree,
            &request.u0,
            request.trajectories,
            request.save_times,
            &mut result.mean,
            &mut result.variance,
            paths.as_deref_mut(),
            request.seed,
            request.threads,
        )?;
        result.paths = paths;
        Ok((result, stats))
    }
}
