//! Stochastic solvers with fixed steps on a [`TimeGrid`] or adaptive steps ([`Adaptive`]),
//! saving at requested times, ensembles, and the adjoints reverse mode differentiates through.
//!
//! A method is a unit struct implementing [`Method`] (its name, calculus, orders and the
//! noise kinds it accepts) and [`Step`] (one step of size `h` over any scalar). A
//! [`Solver`] pairs a method with a [`TimeGrid`] and integrates one trajectory
//! ([`Solver::solve`]) or many ([`Solver::ensemble`]), writing only into buffers the caller
//! provides. Every solve walks a [`StepPlan`] of its grid: steps are counted by an integer
//! `k` from `t0` and each step's time comes from `k` (never from accumulated floats), on a
//! uniform grid `t0 + k h`, on a grid [`TimeGrid::through`] the save times the equal steps
//! of each segment between them.
//!
//! ```
//! use tinysde::noise::Brownian;
//! use tinysde::nn::ParamSeed;
//! use tinysde::sde::Sde;
//! use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
//! use tinysde::{NoiseKind, Real};
//!
//! struct Bm; // pure Brownian motion: f = 0, g = 1
//! impl<T: Real> Sde<T, 1> for Bm {
//!     const NOISE: NoiseKind = NoiseKind::Diagonal;
//!     fn drift(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] { [T::ZERO] }
//!     fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] { [T::ONE] }
//! }
//! let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 100).unwrap());
//! let mut out = [[0.0f32; 1]; 2];
//! solver.solve(&Bm, &Brownian::new(1), 0, &[0.0], &[0.5, 1.0], &mut out, ParamSeed::NONE).unwrap();
//! assert!(out[1][0].is_finite());
//! ```

mod adaptive;
mod ensemble;
// The adjoints index their stage and state arrays in loops over const sizes, like the
// methods they differentiate.
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod adjoint;
// The methods index their tableaus and state arrays in loops over const sizes: in bounds
// by construction, and checked in the compiled code by the no-panic proofs (boards/no-panic).
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod euler_heun;
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod euler_maruyama;
mod grid;
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod milstein;
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod reversible_heun;
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod rk4;
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod sra;
#[allow(
    clippy::indexing_slicing,
    reason = "const-size loops over tableaus and states"
)]
mod sri;

pub use adaptive::{Adaptive, AdaptiveOptions, AdaptiveStats, Embedded};
pub(crate) use adjoint::LaneGroup;
pub use adjoint::{Checkpoints, StepVjp, MAX_BINOMIAL_SNAPSHOTS};
#[cfg(feature = "std")]
pub use ensemble::Ensemble;
pub use ensemble::{EnsembleBuffers, EnsembleRequest};
pub use euler_heun::EulerHeun;
pub use euler_maruyama::EulerMaruyama;
pub use grid::{PlanCursor, PlanEvent, PlannedStep, Spacing, StepPlan, TimeGrid};
pub use milstein::Milstein;
pub use reversible_heun::ReversibleHeun;
pub use rk4::Rk4;
pub use sra::{Sosra, Sra1, SraTableau, SOSRA, SRA1};
pub use sri::{Sosri, SriTableau, Sriw1, SOSRI, SRIW1};

use crate::error::{check_len, Error, NoiseKind};
use crate::lanes::{Lanes, Mask};
use crate::nn::ParamSeed;
use crate::noise::{Increment, NoiseSource, StepSize};
use crate::real::{Real, Widen};
use crate::sde::Sde;

/// Which stochastic calculus a method's solution converges to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Calculus {
    /// Itô.
    Ito,
    /// Stratonovich.
    Stratonovich,
    /// Either: the method is only valid for additive noise, where the two agree.
    Both,
}

/// What a method is: name, calculus, orders and the noise kinds it accepts.
pub trait Method {
    /// The method's usual name (as in StochasticDiffEq.jl where it has one).
    const NAME: &'static str;
    /// The calculus the method solves in.
    const CALCULUS: Calculus;
    /// Strong order on the noise kinds it accepts.
    const STRONG_ORDER: f32;
    /// Weak order on the noise kinds it accepts.
    const WEAK_ORDER: f32;
    /// Whether the method uses the second increment `dZ` (order-1.5 methods do).
    const NEEDS_DZ: bool;
    /// Whether the method uses the Brownian increments at all. A method that does not
    /// (the drift-only [`Rk4`]) is given zero increments and the solver draws no noise.
    const USES_NOISE: bool = true;
    /// Whether the method accepts an SDE with this noise kind.
    fn supports(noise: NoiseKind) -> bool;
}

/// One step of a method for the SDE `S` over the scalar `T`.
pub trait Step<T: Real, S: Sde<T, D>, const D: usize>: Method {
    /// Advances `u` from `t` to `t + h` with the increments `inc` (for scalar noise every
    /// channel of `inc` holds the same shared increment).
    fn step(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T::Value>,
        seed: ParamSeed,
    ) -> [T; D];
}

/// A method on a time grid: the object that integrates SDEs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Solver<M> {
    /// The stepping method.
    pub method: M,
    /// The time grid.
    pub grid: TimeGrid,
}

impl<M: Method> Solver<M> {
    /// A solver for `method` on `grid`.
    pub const fn new(method: M, grid: TimeGrid) -> Self {
        Self { method, grid }
    }

    /// Validates a solve's inputs without touching anything.
    fn check<T: Real, const D: usize>(
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

    /// Integrates the trajectories `first..first + count` of the noise source from `u0`,
    /// one per lane of `X` (`count` at most the lane width; lanes beyond `count` repeat
    /// the last trajectory and are ignored), calling `on_save(i, u)` at each save time
    /// `save_times[i]`. Inputs must already be checked; the grid's plan ends at the last
    /// save time by itself.
    ///
    /// The state is checked for finiteness at each save time, before `on_save` sees it (a
    /// non-finite state stays non-finite: every method adds its update to the state). On
    /// failure the error names the lowest non-finite lane's trajectory and the last step
    /// taken; with one lane that is the serial path's error.
    #[allow(clippy::too_many_arguments)]
    fn run<X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        first: usize,
        count: usize,
        u0: &[X; D],
        save_times: &[f32],
        seed: ParamSeed,
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

    /// Solves one trajectory (number `trajectory` of the noise source) from `u0`, writing the
    /// state at each of `save_times` into `out` (same length). Save times must be strictly
    /// increasing and fit the grid (see [`TimeGrid::check_save_times`]); the integration
    /// stops at the last one.
    ///
    /// Bad input (unsupported noise kind, non-finite `u0`, bad save times, wrong `out`
    /// length) returns an error before anything is written. The state is checked at every
    /// save time: if it is not finite the solve stops with [`Error::Diverged`], naming the
    /// last step taken (the state became non-finite in the save interval ending there).
    /// `out` is written only on success, so after any error it is bit-identical to what the
    /// caller passed in. (Up to [`BACKUP_ROWS`] save times this costs a stack copy of
    /// `out`; beyond that a first pass checks that the trajectory stays finite before a
    /// second one writes, so the noise source must be pure, as the [`NoiseSource`]
    /// contract requires.)
    #[allow(clippy::too_many_arguments)]
    pub fn solve<T, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        trajectory: usize,
        u0: &[T; D],
        save_times: &[f32],
        out: &mut [[T; D]],
        seed: ParamSeed,
    ) -> Result<(), Error>
    where
        T: Real,
        S: Sde<T, D>,
        M: Step<T, S, D>,
        N: NoiseSource,
    {
        self.check(S::NOISE, u0, save_times)?;
        check_len("saved states", save_times.len(), out.len())?;
        let mut write = |i: usize, u: &[T; D]| {
            // `i < out.len()` (checked above); `get_mut` keeps this path panic-free.
            if let Some(slot) = out.get_mut(i) {
                *slot = *u;
            }
        };
        if save_times.len() <= BACKUP_ROWS {
            // Solve into a stack copy, then commit.
            let mut rows = [[T::ZERO; D]; BACKUP_ROWS];
            self.run(sde, noise, trajectory, 1, u0, save_times, seed, |i, u| {
                if let Some(slot) = rows.get_mut(i) {
                    *slot = *u;
                }
            })?;
            for (i, u) in rows.iter().take(save_times.len()).enumerate() {
                write(i, u);
            }
            Ok(())
        } else {
            self.run(sde, noise, trajectory, 1, u0, save_times, seed, |_, _| {})?;
            self.run(sde, noise, trajectory, 1, u0, save_times, seed, write)
        }
    }

    /// Solves trajectories `0..trajectories` from `u0` and writes, at each save time, the
    /// sample mean and the sample variance (divisor `n - 1`; 0 for one trajectory) of every
    /// component into `mean` and `var` (each as long as `save_times`). With `paths` (length
    /// `trajectories * save_times.len()`), trajectory `m`'s state at save time `i` is also
    /// written at `paths[m * save_times.len() + i]`.
    ///
    /// Statistics are accumulated with Welford's update in trajectory order, so they are
    /// stable and reproducible. Over `Dual` scalars they carry the exact derivative of that
    /// computation. Errors as [`Solver::solve`]; zero trajectories is an error too.
    ///
    /// `mean`, `var` and `paths` are written only on success: after any error, a diverging
    /// trajectory included, they are bit-identical to what the caller passed in. (Without
    /// `paths` and up to [`BACKUP_ROWS`] save times this costs a stack copy of `mean` and
    /// `var`; otherwise a first pass checks that every trajectory stays finite before a
    /// second one writes, which doubles the cost, and needs a pure noise source, as the
    /// [`NoiseSource`] contract requires.)
    ///
    /// This computes one trajectory at a time, the smallest code for a microcontroller;
    /// [`Solver::ensemble_lanes`] computes several at once with the same results.
    #[allow(clippy::too_many_arguments)]
    pub fn ensemble<T, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Step<T, S, D>,
        N: NoiseSource,
    {
        let lanes = Chunks::one_lane(u0);
        self.ensemble_checked(
            sde,
            noise,
            u0,
            &lanes,
            trajectories,
            save_times,
            mean,
            var,
            paths,
            seed,
        )
    }

    /// [`Solver::ensemble`] computing `L` trajectories at once, one per lane of
    /// [`F32x<L>`](crate::lanes::F32x) (with `Dual<K>` scalars, `Dual<K, F32x<L>>`), so
    /// that the compiler vectorizes across trajectories. The results, errors included, are
    /// bit-identical to [`Solver::ensemble`]'s: each lane performs exactly the operations
    /// of the one-trajectory computation, its increments come from the same pure function
    /// of (trajectory, step), and the statistics take the trajectories in the same order.
    /// The number of trajectories need not be a multiple of `L`.
    ///
    /// `S` must be an SDE over the wide scalar too (an SDE written for any `T: Real`, as
    /// every model of this crate is).
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{Sosri, Solver, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Gbm; // du = u dt + 0.5 u dW
    /// impl<T: Real> Sde<T, 1> for Gbm {
    ///     const NOISE: NoiseKind = NoiseKind::Diagonal;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0]] }
    ///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 0.5] }
    /// }
    /// let solver = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, 50).unwrap());
    /// let (times, noise) = ([0.5, 1.0], Brownian::new(3));
    /// let (mut m1, mut v1, mut m8, mut v8) = ([[0.0f32; 1]; 2], [[0.0; 1]; 2], [[0.0; 1]; 2], [[0.0; 1]; 2]);
    /// solver.ensemble(&Gbm, &noise, &[1.0], 21, &times, &mut m1, &mut v1, None, ParamSeed::NONE).unwrap();
    /// solver
    ///     .ensemble_lanes::<8, _, _, _, 1>(&Gbm, &noise, &[1.0], 21, &times, &mut m8, &mut v8, None, ParamSeed::NONE)
    ///     .unwrap();
    /// assert_eq!((m1, v1), (m8, v8)); // bit for bit
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn ensemble_lanes<const L: usize, T, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
    ) -> Result<(), Error>
    where
        T: Widen<L>,
        S: Sde<T, D> + Sde<T::Wide, D>,
        M: Step<T, S, D> + Step<T::Wide, S, D>,
        N: NoiseSource,
    {
        let lanes = lane_chunks::<L, T, D>(u0);
        self.ensemble_checked(
            sde,
            noise,
            u0,
            &lanes,
            trajectories,
            save_times,
            mean,
            var,
            paths,
            seed,
        )
    }

    /// The body of [`Solver::ensemble`] and [`Solver::ensemble_lanes`]: checks, then
    /// writes only on success.
    #[allow(clippy::too_many_arguments)]
    fn ensemble_checked<T, X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        lanes: &Chunks<T, X, D>,
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        X: Real,
        S: Sde<T, D> + Sde<X, D>,
        M: Step<T, S, D> + Step<X, S, D>,
        N: NoiseSource,
    {
        self.check_ensemble(
            <S as Sde<T, D>>::NOISE,
            u0,
            trajectories,
            save_times,
            mean.len(),
            var.len(),
            paths.as_deref().map(<[_]>::len),
        )?;
        let n_save = save_times.len();
        if paths.is_none() && n_save <= BACKUP_ROWS {
            return restore_on_error(mean, var, |mean, var| {
                self.ensemble_into(
                    sde,
                    noise,
                    u0,
                    lanes,
                    trajectories,
                    save_times,
                    mean,
                    var,
                    None,
                    seed,
                )
            });
        }
        // Too much to copy on the stack: a first pass checks every trajectory (and bounds
        // the states, so that the statistics provably fit in f32) before the second writes.
        let mut value_bound = 0.0f32;
        let mut tangent_bound = 0.0f32;
        self.for_each_state(
            sde,
            noise,
            u0,
            lanes,
            0..trajectories,
            save_times,
            seed,
            |_, _, u| {
                for x in u {
                    value_bound = value_bound.max(x.value().abs());
                    for k in 0..T::TANGENTS {
                        tangent_bound = tangent_bound.max(x.tangent(k).abs());
                    }
                }
            },
        )?;
        if !statistics_fit(value_bound, tangent_bound, trajectories) {
            // Rare (states beyond about 1e18): check the statistics exactly, a block of
            // save times at a time on the stack.
            self.check_statistics(sde, noise, u0, lanes, trajectories, save_times, seed)?;
        }
        self.ensemble_into(
            sde,
            noise,
            u0,
            lanes,
            trajectories,
            save_times,
            mean,
            var,
            paths,
            seed,
        )
    }

    /// Integrates the trajectories in `range`, a lane chunk at a time, calling
    /// `visit(m, i, u)` with trajectory `m`'s state at save time `i`: for each chunk, save
    /// time by save time, its trajectories in order. (So each save time sees the
    /// trajectories in increasing order, as the one-lane ensemble gives them.)
    ///
    /// On error the chunk's trajectories are run again one at a time, so the error is the
    /// one the one-lane ensemble returns (the lowest diverging trajectory and its step).
    #[allow(clippy::too_many_arguments)]
    fn for_each_state<T, X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        lanes: &Chunks<T, X, D>,
        range: core::ops::Range<usize>,
        save_times: &[f32],
        seed: ParamSeed,
        mut visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        X: Real,
        S: Sde<T, D> + Sde<X, D>,
        M: Step<T, S, D> + Step<X, S, D>,
        N: NoiseSource,
    {
        let width = <X::Value as Lanes>::WIDTH;
        let mut first = range.start;
        while first < range.end {
            let count = width.min(range.end - first);
            let result = self.run(
                sde,
                noise,
                first,
                count,
                &lanes.wide_u0,
                save_times,
                seed,
                |i, u| {
                    for j in 0..count {
                        visit(first + j, i, &(lanes.extract)(u, j));
                    }
                },
            );
            if let Err(e) = result {
                if width > 1 {
                    for m in first..first + count {
                        self.run(sde, noise, m, 1, u0, save_times, seed, |_, _| {})?;
                    }
                }
                return Err(e);
            }
            first += count;
        }
        Ok(())
    }

    /// Computes the ensemble statistics `BACKUP_ROWS` save times at a time on the stack
    /// and returns [`Error::StatisticsOverflow`] for the first that is not finite.
    #[allow(clippy::too_many_arguments)]
    fn check_statistics<T, X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        lanes: &Chunks<T, X, D>,
        trajectories: usize,
        save_times: &[f32],
        seed: ParamSeed,
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        X: Real,
        S: Sde<T, D> + Sde<X, D>,
        M: Step<T, S, D> + Step<X, S, D>,
        N: NoiseSource,
    {
        let mut first = 0;
        while first < save_times.len() {
            let mut mean = [[T::ZERO; D]; BACKUP_ROWS];
            let mut var = [[T::ZERO; D]; BACKUP_ROWS];
            self.for_each_state(
                sde,
                noise,
                u0,
                lanes,
                0..trajectories,
                save_times,
                seed,
                |m, i, u| {
                    let row = i.wrapping_sub(first);
                    if let (Some(mean), Some(var)) = (mean.get_mut(row), var.get_mut(row)) {
                        welford_update(mean, var, u, m.saturating_add(1) as f32);
                    }
                },
            )?;
            let rows = save_times.len().saturating_sub(first).min(BACKUP_ROWS);
            let mean = mean.get(..rows).unwrap_or(&[]);
            let var = var.get_mut(..rows).unwrap_or(&mut []);
            finish_variance(var, trajectories);
            check_statistics_finite(mean, var).map_err(|e| match e {
                Error::StatisticsOverflow { index } => Error::StatisticsOverflow {
                    index: index.saturating_add(first),
                },
                e => e,
            })?;
            first = first.saturating_add(BACKUP_ROWS);
        }
        Ok(())
    }

    /// The ensemble of [`Solver::ensemble`] on checked inputs, accumulated directly into
    /// `mean`, `var` and `paths`: after an error they hold partial results.
    #[allow(clippy::too_many_arguments)]
    fn ensemble_into<T, X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        lanes: &Chunks<T, X, D>,
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        mut paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        X: Real,
        S: Sde<T, D> + Sde<X, D>,
        M: Step<T, S, D> + Step<X, S, D>,
        N: NoiseSource,
    {
        let n_save = save_times.len();
        mean.fill([T::ZERO; D]);
        var.fill([T::ZERO; D]); // holds Welford's sum of squared deviations until the end
        self.for_each_state(
            sde,
            noise,
            u0,
            lanes,
            0..trajectories,
            save_times,
            seed,
            |m, i, u| {
                // The lengths were checked, so every `get_mut` succeeds; it keeps the
                // inference path free of panics (the firmware's no-panic build checks that).
                if let (Some(mean), Some(var)) = (mean.get_mut(i), var.get_mut(i)) {
                    welford_update(mean, var, u, m.saturating_add(1) as f32);
                }
                let slot = paths
                    .as_deref_mut()
                    .and_then(|p| p.get_mut(m.saturating_mul(n_save).saturating_add(i)));
                if let Some(slot) = slot {
                    *slot = *u;
                }
            },
        )?;
        finish_variance(var, trajectories);
        check_statistics_finite(mean, var)
    }

    /// Validates inputs for the gradient passes (as [`Solver::ensemble`] does) and
    /// accumulates the statistics directly into their scratch (partial after an error).
    #[allow(clippy::too_many_arguments)]
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
        self.check_ensemble(
            S::NOISE,
            u0,
            trajectories,
            save_times,
            mean.len(),
            var.len(),
            None,
        )?;
        let lanes = Chunks::one_lane(u0);
        self.ensemble_into(
            sde,
            noise,
            u0,
            &lanes,
            trajectories,
            save_times,
            mean,
            var,
            None,
            seed,
        )
    }

    /// Validates an ensemble's inputs without touching anything; returns the last save index.
    #[allow(clippy::too_many_arguments)]
    fn check_ensemble<T: Real, const D: usize>(
        &self,
        noise: NoiseKind,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean_len: usize,
        var_len: usize,
        paths_len: Option<usize>,
    ) -> Result<u32, Error> {
        let last = self.check(noise, u0, save_times)?;
        if trajectories == 0 {
            return Err(Error::OutOfRange {
                what: "number of trajectories must be >= 1",
            });
        }
        let n_save = save_times.len();
        check_len("ensemble mean", n_save, mean_len)?;
        check_len("ensemble variance", n_save, var_len)?;
        if let Some(len) = paths_len {
            check_len("ensemble paths", trajectories.saturating_mul(n_save), len)?;
        }
        Ok(last)
    }
}

/// Whether the statistics of `trajectories` states bounded by `value_bound` in value and
/// `tangent_bound` in every tangent provably fit in `f32`: the Welford sums are at most
/// `4 n B^2` in value and `8 n B T` in tangent (the mean lies within the bound, deviations
/// within twice it), kept below a quarter of `f32::MAX` for rounding. Computed in `f64`
/// (IEEE on every target, so the decision is the same everywhere).
fn statistics_fit(value_bound: f32, tangent_bound: f32, trajectories: usize) -> bool {
    let (b, t, n) = (
        f64::from(value_bound),
        f64::from(tangent_bound),
        trajectories as f64,
    );
    let limit = f64::from(f32::MAX) / 4.0;
    4.0 * n * b * b <= limit && 8.0 * n * b * t <= limit
}

/// [`Error::StatisticsOverflow`] for the first save time whose mean or variance is not finite.
fn check_statistics_finite<T: Real, const D: usize>(
    mean: &[[T; D]],
    var: &[[T; D]],
) -> Result<(), Error> {
    let bad = |row: &[T; D]| row.iter().any(|x| !x.is_finite().all());
    match mean.iter().zip(var).position(|(m, v)| bad(m) || bad(v)) {
        Some(index) => Err(Error::StatisticsOverflow { index }),
        None => Ok(()),
    }
}

/// Turns Welford's sums of squared deviations into sample variances (divisor `n - 1`).
pub(crate) fn finish_variance<T: Real, const D: usize>(var: &mut [[T; D]], trajectories: usize) {
    let divisor = if trajectories > 1 {
        (trajectories - 1) as f32
    } else {
        1.0
    };
    for row in var.iter_mut() {
        for v in row.iter_mut() {
            *v = *v / divisor;
        }
    }
}

/// Up to this many save times, [`Solver::solve`] and [`Solver::ensemble`] keep their
/// results on the stack (a copy of the caller's buffers, restored on error) instead of
/// solving twice to write only on success.
pub const BACKUP_ROWS: usize = 32;

/// Runs `f` on `mean` and `var` (at most [`BACKUP_ROWS`] rows each) and, if it fails,
/// puts their previous contents back from a copy on the stack: written only on success.
pub(crate) fn restore_on_error<T: Real, R, const D: usize>(
    mean: &mut [[T; D]],
    var: &mut [[T; D]],
    f: impl FnOnce(&mut [[T; D]], &mut [[T; D]]) -> Result<R, Error>,
) -> Result<R, Error> {
    let mut saved_mean = [[T::ZERO; D]; BACKUP_ROWS];
    let mut saved_var = [[T::ZERO; D]; BACKUP_ROWS];
    for ((sm, sv), (m, v)) in saved_mean
        .iter_mut()
        .zip(&mut saved_var)
        .zip(mean.iter().zip(var.iter()))
    {
        (*sm, *sv) = (*m, *v);
    }
    let result = f(mean, var);
    if result.is_err() {
        for ((sm, sv), (m, v)) in saved_mean
            .iter()
            .zip(&saved_var)
            .zip(mean.iter_mut().zip(var.iter_mut()))
        {
            (*m, *v) = (*sm, *sv);
        }
    }
    result
}

/// Bytes of saved states a threaded ensemble computes between two Welford passes.
#[cfg(feature = "std")]
const PARALLEL_BLOCK_BYTES: usize = 4 << 20;

/// Lanes per pass of the threaded ensemble ([`Solver::ensemble_parallel`]):
/// [`WIDE_LANES`](crate::lanes::WIDE_LANES), 16 with AVX-512 (faster there: the README's
/// benchmarks), else 8.
#[cfg(feature = "std")]
pub const PARALLEL_LANES: usize = crate::lanes::WIDE_LANES;

#[cfg(feature = "std")]
impl<M: Method + Sync> Solver<M> {
    /// [`Solver::ensemble`] on several threads, each computing [`PARALLEL_LANES`]
    /// trajectories per pass as [`Solver::ensemble_lanes`] does, with bit-identical results
    /// (feature `std`).
    ///
    /// `threads` is the number of threads (0: as many as
    /// [`std::thread::available_parallelism`] reports). Trajectories are computed in
    /// blocks: each thread integrates a contiguous run of the block's trajectories into a
    /// scratch buffer of saved states, then the calling thread folds them into the Welford
    /// statistics (and `paths`) in trajectory order. Every trajectory is the same pure
    /// function of its index as in the serial ensemble, and the statistics see the same
    /// values in the same order, so `mean`, `var` and `paths` are bit-identical to
    /// [`Solver::ensemble`]'s, whatever the number of threads. On error too: the error is
    /// the one the serial ensemble would return (the lowest diverging trajectory), and the
    /// buffers are bit-identical to what the caller passed in. It allocates (a scratch
    /// buffer of at most about 4 MiB, and a copy of `mean`, `var` and `paths` to restore on
    /// error), as [`Solver::simulate`] does; the other ensembles do not.
    ///
    /// ```
    /// use tinysde::nn::ParamSeed;
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::Sde;
    /// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// use tinysde::{NoiseKind, Real};
    ///
    /// struct Ou; // du = -u dt + 0.5 dW
    /// impl<T: Real> Sde<T, 1> for Ou {
    ///     const NOISE: NoiseKind = NoiseKind::Additive;
    ///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [-u[0]] }
    ///     fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] { [T::cst(0.5)] }
    /// }
    /// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 50).unwrap());
    /// let times = [0.5, 1.0];
    /// let (mut m1, mut v1, mut m2, mut v2) = ([[0.0f32; 1]; 2], [[0.0; 1]; 2], [[0.0; 1]; 2], [[0.0; 1]; 2]);
    /// let noise = Brownian::new(9);
    /// solver.ensemble(&Ou, &noise, &[1.0], 101, &times, &mut m1, &mut v1, None, ParamSeed::NONE).unwrap();
    /// solver
    ///     .ensemble_parallel(&Ou, &noise, &[1.0], 101, &times, &mut m2, &mut v2, None, ParamSeed::NONE, 2)
    ///     .unwrap();
    /// assert_eq!((m1, v1), (m2, v2));
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn ensemble_parallel<T, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        mut paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
        threads: usize,
    ) -> Result<(), Error>
    where
        T: Widen<PARALLEL_LANES> + Send + Sync,
        T::Wide: Send + Sync,
        S: Sde<T, D> + Sde<T::Wide, D> + Sync,
        M: Step<T, S, D> + Step<T::Wide, S, D>,
        N: NoiseSource + Sync,
    {
        self.check_ensemble(
            <S as Sde<T, D>>::NOISE,
            u0,
            trajectories,
            save_times,
            mean.len(),
            var.len(),
            paths.as_deref().map(<[_]>::len),
        )?;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(trajectories.div_ceil(PARALLEL_LANES));
        let n_save = save_times.len();
        if threads <= 1 || n_save == 0 {
            return self.ensemble_lanes::<PARALLEL_LANES, T, S, N, D>(
                sde,
                noise,
                u0,
                trajectories,
                save_times,
                mean,
                var,
                paths,
                seed,
            );
        }
        let lanes = lane_chunks::<PARALLEL_LANES, T, D>(u0);
        let state_bytes = core::mem::size_of::<[T; D]>().max(1);
        let block = (PARALLEL_BLOCK_BYTES / state_bytes / n_save)
            .max(threads * PARALLEL_LANES)
            .min(trajectories);
        let mut states = std::vec![[T::ZERO; D]; block * n_save];
        let mut outcomes: std::vec::Vec<Result<(), Error>> = std::vec![Ok(()); threads];
        // Written only on success: keep a copy of what the caller passed in to put back.
        let saved_mean = mean.to_vec();
        let saved_var = var.to_vec();
        let saved_paths = paths.as_deref().map(<[_]>::to_vec);
        mean.fill([T::ZERO; D]);
        var.fill([T::ZERO; D]);
        let mut start = 0;
        let mut failure = None;
        while start < trajectories && failure.is_none() {
            let len = block.min(trajectories - start);
            // Whole lane chunks per thread, so that only the last chunk can be partial.
            let per = len.div_ceil(threads).div_ceil(PARALLEL_LANES) * PARALLEL_LANES;
            std::thread::scope(|scope| {
                // len <= block: the prefix exists (`get` keeps the lints' promise).
                let states = states.get_mut(..len * n_save).unwrap_or(&mut []);
                let mut parts = states
                    .chunks_mut(per * n_save)
                    .zip(outcomes.iter_mut())
                    .enumerate();
                let own = parts.next();
                let lanes = &lanes;
                for (c, (rows, outcome)) in parts {
                    let first = start + c * per;
                    scope.spawn(move || {
                        *outcome =
                            self.run_rows(sde, noise, u0, lanes, first, save_times, seed, rows);
                    });
                }
                if let Some((_, (rows, outcome))) = own {
                    *outcome = self.run_rows(sde, noise, u0, lanes, start, save_times, seed, rows);
                }
            });
            // Fold in trajectory order; the first failing part holds the lowest failing
            // trajectory, and its error is the serial one.
            let parts = states.chunks(per * n_save).zip(outcomes.iter());
            for (c, (rows, outcome)) in parts.take(len.div_ceil(per)).enumerate() {
                if let Err(e) = outcome {
                    failure = Some(*e);
                    break;
                }
                for (j, row) in rows.chunks(n_save).enumerate() {
                    let m = start + c * per + j;
                    // As in `ensemble`: lengths are checked, `get_mut` keeps this panic-free.
                    let stats = mean.iter_mut().zip(var.iter_mut());
                    for (i, (u, (mean, var))) in row.iter().zip(stats).enumerate() {
                        welford_update(mean, var, u, (m + 1) as f32);
                        if let Some(slot) =
                            paths.as_deref_mut().and_then(|p| p.get_mut(m * n_save + i))
                        {
                            *slot = *u;
                        }
                    }
                }
            }
            start += len;
        }
        if failure.is_none() {
            finish_variance(var, trajectories);
            failure = check_statistics_finite(mean, var).err();
        }
        if let Some(e) = failure {
            mean.copy_from_slice(&saved_mean);
            var.copy_from_slice(&saved_var);
            if let (Some(p), Some(saved)) = (paths, saved_paths) {
                p.copy_from_slice(&saved);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Integrates the trajectories from `first` on, one per row of `save_times.len()`
    /// states in `rows`, stopping at the first error (the serial path's).
    #[allow(clippy::too_many_arguments)]
    fn run_rows<T, X, S, N, const D: usize>(
        &self,
        sde: &S,
        noise: &N,
        u0: &[T; D],
        lanes: &Chunks<T, X, D>,
        first: usize,
        save_times: &[f32],
        seed: ParamSeed,
        rows: &mut [[T; D]],
    ) -> Result<(), Error>
    where
        T: Real<Value = f32>,
        X: Real,
        S: Sde<T, D> + Sde<X, D>,
        M: Step<T, S, D> + Step<X, S, D>,
        N: NoiseSource,
    {
        let n_save = save_times.len().max(1);
        let count = rows.len() / n_save;
        self.for_each_state(
            sde,
            noise,
            u0,
            lanes,
            first..first + count,
            save_times,
            seed,
            |m, i, u| {
                if let Some(slot) = rows.get_mut((m - first) * n_save + i) {
                    *slot = *u;
                }
            },
        )
    }
}

/// Welford's update of a running mean and sum of squared deviations with the `count`-th sample.
#[inline]
pub(crate) fn welford_update<T: Real, const D: usize>(
    mean: &mut [T; D],
    m2: &mut [T; D],
    x: &[T; D],
    count: f32,
) {
    for ((m, s), &x) in mean.iter_mut().zip(m2.iter_mut()).zip(x) {
        let delta = x - *m;
        *m += delta / count;
        *s += delta * (x - *m);
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
fn increment<N: NoiseSource, S: Sde<T, D>, T: Real, const D: usize>(
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
fn lane_increment<N: NoiseSource, S: Sde<X, D>, X: Real, const D: usize, V: Lanes>(
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
