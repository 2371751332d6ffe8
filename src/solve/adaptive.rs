//! Adaptive time stepping with error control (see [`Adaptive`]).

use super::{
    check_statistics_finite, finish_variance, restore_on_error, statistics_fit, welford_update,
    BACKUP_ROWS,
};
use super::{sri::StagePlan, SOSRA, SOSRI, SRA1, SRIW1};
use super::{Method, Sosra, Sosri, Sra1, Sriw1, Step};
use crate::error::{check_len, Error, NoiseKind};
use crate::math;
use crate::nn::ParamSeed;
use crate::noise::{BrownianTree, Increment, TreeCache};
use crate::real::Real;
use crate::sde::Sde;

/// A method with an embedded error estimate: one step that also reports, per component,
/// an estimate of its local error (from values only, so a solve over
/// [`Dual`](crate::Dual)s takes exactly the steps the `f32` solve takes).
pub trait Embedded<T: Real<Value = f32>, S: Sde<T, D>, const D: usize>: Step<T, S, D> {
    /// The order in `h` the estimate is controlled with (the step-size exponents are
    /// `0.7 / ORDER` and `0.4 / ORDER`).
    const ESTIMATE_ORDER: f32 = 1.5;

    /// [`Step::step`], writing the non-negative error estimate of each component into
    /// `estimate`.
    #[allow(clippy::too_many_arguments)]
    fn step_with_estimate(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D>,
        seed: ParamSeed,
        estimate: &mut [f32; D],
    ) -> [T; D];
}

macro_rules! embedded_sri {
    ($name:ident, $tableau:ident) => {
        impl<T: Real<Value = f32>, S: Sde<T, D>, const D: usize> Embedded<T, S, D> for $name {
            #[inline]
            fn step_with_estimate(
                &self,
                sde: &S,
                t: f32,
                h: f32,
                u: &[T; D],
                inc: &Increment<D>,
                seed: ParamSeed,
                estimate: &mut [f32; D],
            ) -> [T; D] {
                const PLAN: StagePlan<4> = $tableau.plan();
                $tableau.step_planned(&PLAN, sde, t, h, u, inc, seed, Some(estimate))
            }
        }
    };
}

macro_rules! embedded_sra {
    ($name:ident, $tableau:ident) => {
        impl<T: Real<Value = f32>, S: Sde<T, D>, const D: usize> Embedded<T, S, D> for $name {
            #[inline]
            fn step_with_estimate(
                &self,
                sde: &S,
                t: f32,
                h: f32,
                u: &[T; D],
                inc: &Increment<D>,
                seed: ParamSeed,
                estimate: &mut [f32; D],
            ) -> [T; D] {
                $tableau.step_estimating(sde, t, h, u, inc, seed, Some(estimate))
            }
        }
    };
}

embedded_sri!(Sosri, SOSRI);
embedded_sri!(Sriw1, SRIW1);
embedded_sra!(Sosra, SOSRA);
embedded_sra!(Sra1, SRA1);

/// Tolerances and step-size controller settings of an adaptive solve.
///
/// A step of size `h` is accepted when the root mean square over components of
/// `estimate_k / (abstol + reltol * max(|u_k|, |u_next_k|))` is at most 1. The next step is
/// `h * safety * err^(-0.7 / p) * err_prev^(0.4 / p)` (a PI controller; `p` is the
/// method's [`Embedded::ESTIMATE_ORDER`]), the factor clamped to
/// `[min_factor, max_factor]`, and not above 1 right after a rejection. A rejected step is
/// retried with `h * max(min_factor, safety * err^(-1 / p))`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptiveOptions {
    /// Absolute tolerance (`>= 0`).
    pub abstol: f32,
    /// Relative tolerance (`>= 0`; not both zero).
    pub reltol: f32,
    /// First step size tried; `None` for a hundredth of the span.
    pub initial_step: Option<f32>,
    /// Smallest step size (rounded up to whole grid intervals, at least one): a step
    /// rejected at this size ends the solve with [`Error::StepSizeTooSmall`].
    pub min_step: f32,
    /// Largest step size (`f32::INFINITY`: the span).
    pub max_step: f32,
    /// Most steps, accepted plus rejected, per trajectory; past it the solve ends with
    /// [`Error::MaxSteps`].
    pub max_steps: u32,
    /// Safety factor in `(0, 1]`.
    pub safety: f32,
    /// Smallest step-size factor, in `(0, 1)`.
    pub min_factor: f32,
    /// Largest step-size factor, `> 1`.
    pub max_factor: f32,
}

impl Default for AdaptiveOptions {
    /// StochasticDiffEq's default tolerances (`1e-2` both), safety 0.9, factors
    /// `[0.2, 5]`, no minimum step beyond one grid interval, 100 000 steps.
    fn default() -> Self {
        Self {
            abstol: 1e-2,
            reltol: 1e-2,
            initial_step: None,
            min_step: 0.0,
            max_step: f32::INFINITY,
            max_steps: 100_000,
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 5.0,
        }
    }
}

impl AdaptiveOptions {
    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what| Err(Error::OutOfRange { what });
        if !(self.abstol >= 0.0 && self.abstol.is_finite()) {
            return bad("absolute tolerance must be finite and >= 0");
        }
        if !(self.reltol >= 0.0 && self.reltol.is_finite()) {
            return bad("relative tolerance must be finite and >= 0");
        }
        if self.abstol == 0.0 && self.reltol == 0.0 {
            return bad("absolute and relative tolerance must not both be 0");
        }
        if let Some(h) = self.initial_step {
            if !(h > 0.0 && h.is_finite()) {
                return bad("initial step must be positive and finite");
            }
        }
        if !(self.min_step >= 0.0 && self.min_step.is_finite()) {
            return bad("minimum step must be finite and >= 0");
        }
        if !(self.max_step > 0.0 && self.max_step >= self.min_step) {
            return bad("maximum step must be positive and >= the minimum step");
        }
        if self.max_steps == 0 {
            return bad("maximum number of steps must be >= 1");
        }
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return bad("safety factor must be in (0, 1]");
        }
        if !(self.min_factor > 0.0 && self.min_factor < 1.0) {
            return bad("minimum step factor must be in (0, 1)");
        }
        if !(self.max_factor > 1.0 && self.max_factor.is_finite()) {
            return bad("maximum step factor must be finite and > 1");
        }
        Ok(())
    }
}

/// What an adaptive solve did: steps accepted and rejected (summed over an ensemble's
/// trajectories).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptiveStats {
    /// Accepted steps.
    pub accepted: u64,
    /// Rejected steps.
    pub rejected: u64,
}

impl AdaptiveStats {
    fn add(&mut self, other: AdaptiveStats) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
    }
}

/// Adaptive time stepping with error control, on a [`BrownianTree`].
///
/// [`Adaptive`] pairs an embedded method (SOSRI, SRIW1, SOSRA, SRA1: their error estimate
/// comes from stages the step computes anyway) with a PI step-size controller and absolute
/// and relative tolerances. Steps start and end on the tree's dyadic grid, so time is
/// `t0 + j * spacing` from an integer `j`, a step's noise is the exact Brownian increment
/// between two grid points, and a rejected step is retried on the same path: rejection
/// cannot bias the statistics, and no rejected-noise memory is needed. Save times are
/// stepped to exactly (at the grid point nearest each one, within half a grid spacing); no
/// interpolation.
///
/// ```
/// use tinysde::nn::ParamSeed;
/// use tinysde::noise::BrownianTree;
/// use tinysde::sde::Sde;
/// use tinysde::solve::{Adaptive, Sosri};
/// use tinysde::{NoiseKind, Real};
///
/// struct Gbm; // du = 1.01 u dt + 0.87 u dW (Itô)
/// impl<T: Real> Sde<T, 1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 1.01] }
///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 0.87] }
/// }
/// let solver = Adaptive::new(Sosri, 1e-3, 1e-3)?;
/// let tree = BrownianTree::new(5, 0.0, 1.0, 20)?;
/// let mut out = [[0.0f32; 1]; 2];
/// let stats = solver.solve(&Gbm, &tree, 0, &[0.5], &[0.5, 1.0], &mut out, ParamSeed::NONE)?;
/// // The exact solution on the same path.
/// let w1 = tree.increment::<1>(0, 0, tree.intervals())?.dw[0];
/// let exact = 0.5 * (1.01f32 - 0.87 * 0.87 / 2.0 + 0.87 * w1).exp();
/// assert!((out[1][0] - exact).abs() < 0.05 * exact);
/// assert!(stats.accepted > 0);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptive<M> {
    /// The stepping method.
    pub method: M,
    /// Tolerances and controller settings.
    pub options: AdaptiveOptions,
}

/// Smallest error norm the PI controller remembers (keeps `err^-b` finite).
const MIN_NORM: f32 = 1e-4;

impl<M: Method> Adaptive<M> {
    /// `method` with tolerances `abstol` and `reltol` and default controller settings.
    /// Errors for a negative or non-finite tolerance, or both zero.
    pub fn new(method: M, abstol: f32, reltol: f32) -> Result<Self, Error> {
        Self::with_options(
            method,
            AdaptiveOptions {
                abstol,
                reltol,
                ..AdaptiveOptions::default()
            },
        )
    }

    /// `method` with the given options, checked by [`AdaptiveOptions::validate`].
    pub fn with_options(method: M, options: AdaptiveOptions) -> Result<Self, Error> {
        options.validate()?;
        Ok(Self { method, options })
    }

    /// Validates a solve's inputs without touching anything; returns the grid index of
    /// the last save time (0 for none).
    fn check<T: Real<Value = f32>, const D: usize>(
        &self,
        noise: NoiseKind,
        tree: &BrownianTree,
        u0: &[T; D],
        save_times: &[f32],
    ) -> Result<u32, Error> {
        self.options.validate()?; // the fields are public
        if !M::supports(noise) {
            return Err(Error::UnsupportedNoise {
                method: M::NAME,
                noise,
            });
        }
        if let Some(index) = u0.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "initial state",
                index,
            });
        }
        let mut last = None;
        for (index, &t) in save_times.iter().enumerate() {
            let j = tree.index_of(t).ok_or(Error::SaveTime { index })?;
            if last.is_some_and(|prev| j <= prev) {
                return Err(Error::SaveTime { index });
            }
            last = Some(j);
        }
        Ok(last.unwrap_or(0))
    }

    /// Integrates trajectory `trajectory` from `u0` to grid point `last`, calling
    /// `on_save(i, u)` at each save time. Inputs must already be checked.
    #[allow(clippy::too_many_arguments)]
    fn run<T, S, const D: usize>(
        &self,
        sde: &S,
        tree: &BrownianTree,
        trajectory: usize,
        u0: &[T; D],
        save_times: &[f32],
        last: u32,
        seed: ParamSeed,
        mut on_save: impl FnMut(usize, &[T; D]),
    ) -> Result<AdaptiveStats, Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Embedded<T, S, D>,
    {
        let opt = &self.options;
        let spacing = tree.spacing();
        let intervals = tree.intervals();
        // Step bounds in grid intervals (f32 -> u32 casts saturate).
        let min_n = ((opt.min_step / spacing) as u32).max(1).min(intervals);
        let min_n = if (min_n as f32) * spacing < opt.min_step {
            (min_n + 1).min(intervals)
        } else {
            min_n
        };
        let max_n = ((opt.max_step / spacing) as u32).clamp(min_n, intervals);
        let order = <M as Embedded<T, S, D>>::ESTIMATE_ORDER;
        let (beta1, beta2) = (0.7 / order, 0.4 / order);

        let mut h_wanted = opt.initial_step.unwrap_or((tree.t1() - tree.t0()) / 100.0);
        let mut prev_norm = 1.0f32;
        let mut after_reject = false;
        let mut stats = AdaptiveStats::default();
        let mut attempts = 0u32;

        // The tree splits around the current point, and around a candidate step's end.
        // (Two slots and an index: swapping the slots would copy them.)
        let mut caches = [TreeCache::<D>::EMPTY; 2];
        let mut start_slot = 0;
        let mut u = *u0;
        let mut j = 0u32;
        let mut next = 0usize;
        let mut next_j = save_times.first().and_then(|&t| tree.index_of(t));
        loop {
            while next_j == Some(j) {
                on_save(next, &u);
                next += 1;
                next_j = save_times.get(next).and_then(|&t| tree.index_of(t));
            }
            if j >= last {
                return Ok(stats);
            }
            if attempts >= opt.max_steps {
                return Err(Error::MaxSteps {
                    trajectory,
                    t: tree.time(j),
                });
            }
            attempts += 1;
            let wanted = ((h_wanted / spacing) as u32).clamp(min_n, max_n);
            // Save times are checked to be increasing grid points after j, up to `last`.
            let stop = next_j.unwrap_or(last);
            let mut n = wanted.min(stop - j);
            let clipped = n < wanted;
            if !clipped {
                // End the step on a multiple of a power of two near n / 8 (shortening it by
                // at most an eighth): the tree walk to its end then stops a few levels
                // below the node spanning the step instead of going down to the grid.
                let quantum = 1u32 << (n / 8).max(1).ilog2();
                let end = (j + n) / quantum * quantum;
                if end > j && end - j >= min_n {
                    n = end - j;
                }
            }
            let t = tree.time(j);
            let h = n as f32 * spacing;
            let inc = if S::NOISE == NoiseKind::Scalar {
                let one = tree.increment::<1>(trajectory, j, j + n)?;
                Increment {
                    dw: [one.dw[0]; D],
                    dz: [one.dz[0]; D],
                }
            } else {
                let [a, b] = &mut caches;
                let (at_start, at_candidate) = if start_slot == 0 { (&*a, b) } else { (&*b, a) };
                tree.increment_cached::<D>(trajectory, j, j + n, at_start, at_candidate)?
            };
            let mut estimate = [0.0f32; D];
            let candidate =
                self.method
                    .step_with_estimate(sde, t, h, &u, &inc, seed, &mut estimate);
            let norm = error_norm(opt, &u, &candidate, &estimate);
            if norm <= 1.0 {
                u = candidate;
                j += n;
                start_slot = 1 - start_slot;
                stats.accepted += 1;
                let mut factor = if norm > 0.0 {
                    opt.safety * pow(norm, -beta1) * pow(prev_norm, beta2)
                } else {
                    opt.max_factor
                };
                let ceiling = if after_reject { 1.0 } else { opt.max_factor };
                factor = factor.clamp(opt.min_factor, ceiling);
                prev_norm = norm.max(MIN_NORM);
                after_reject = false;
                let proposal = h * factor;
                // A step cut short by a save time says little about the step wanted.
                h_wanted = if clipped {
                    proposal.max(h_wanted)
                } else {
                    proposal
                };
            } else {
                stats.rejected += 1;
                if n <= min_n {
                    return Err(if norm.is_finite() {
                        Error::StepSizeTooSmall { trajectory, t }
                    } else {
                        Error::Diverged {
                            trajectory,
                            step: stats.accepted.min(u32::MAX as u64) as u32,
                        }
                    });
                }
                let factor = if norm.is_finite() {
                    (opt.safety * pow(norm, -1.0 / order)).clamp(opt.min_factor, 1.0)
                } else {
                    opt.min_factor
                };
                h_wanted = h * factor;
                after_reject = true;
            }
        }
    }

    /// Solves one trajectory (number `trajectory` of the tree) from `u0` over the tree's
    /// span, writing the state at each of `save_times` into `out` (same length). Save times
    /// must be strictly increasing, in the span, and on distinct grid points of the tree
    /// (each is reached at its nearest grid point); the integration stops at the last one.
    ///
    /// Bad input (options, noise kind, non-finite `u0`, save times, `out` length) is an
    /// error before anything runs. [`Error::MaxSteps`], [`Error::StepSizeTooSmall`] and
    /// [`Error::Diverged`] (non-finite state even at the minimum step) stop the solve.
    /// `out` is written only on success: after any error it is what the caller passed in.
    /// (Up to 32 save times the states wait in a stack buffer; beyond that a first pass
    /// checks that the solve succeeds before a second one, identical, writes.)
    #[allow(clippy::too_many_arguments)]
    pub fn solve<T, S, const D: usize>(
        &self,
        sde: &S,
        tree: &BrownianTree,
        trajectory: usize,
        u0: &[T; D],
        save_times: &[f32],
        out: &mut [[T; D]],
        seed: ParamSeed,
    ) -> Result<AdaptiveStats, Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Embedded<T, S, D>,
    {
        let last = self.check(S::NOISE, tree, u0, save_times)?;
        check_len("saved states", save_times.len(), out.len())?;
        let run = |on_save: &mut dyn FnMut(usize, &[T; D])| {
            self.run(sde, tree, trajectory, u0, save_times, last, seed, on_save)
        };
        if save_times.len() <= BACKUP_ROWS {
            let mut rows = [[T::ZERO; D]; BACKUP_ROWS];
            let stats = run(&mut |i, u| {
                if let Some(slot) = rows.get_mut(i) {
                    *slot = *u;
                }
            })?;
            for (slot, row) in out.iter_mut().zip(&rows) {
                *slot = *row;
            }
            Ok(stats)
        } else {
            run(&mut |_, _| {})?;
            run(&mut |i, u| {
                if let Some(slot) = out.get_mut(i) {
                    *slot = *u;
                }
            })
        }
    }

    /// Solves trajectories `0..trajectories` of the tree from `u0` and writes the sample
    /// mean and variance (divisor `n - 1`) at each save time, and optionally every path,
    /// as [`Solver::ensemble`](super::Solver::ensemble) does. Returns the steps summed
    /// over trajectories. Over [`Dual`](crate::Dual)s the statistics carry the derivative
    /// through the accepted steps (step sizes are decided from values only).
    ///
    /// Errors as [`Adaptive::solve`] (the first failing trajectory's), zero trajectories,
    /// and [`Error::StatisticsOverflow`]. `mean`, `var` and `paths` are written
    /// only on success. (Without `paths` and up to 32 save times a stack copy of `mean`
    /// and `var` is restored on error; otherwise a first pass checks every trajectory, and
    /// bounds the states so that the statistics provably fit, before a second one writes.)
    #[allow(clippy::too_many_arguments)]
    pub fn ensemble<T, S, const D: usize>(
        &self,
        sde: &S,
        tree: &BrownianTree,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
    ) -> Result<AdaptiveStats, Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Embedded<T, S, D>,
    {
        let last = self.check_ensemble(
            S::NOISE,
            tree,
            u0,
            trajectories,
            save_times,
            mean.len(),
            var.len(),
            paths.as_deref().map(<[_]>::len),
        )?;
        if paths.is_none() && save_times.len() <= BACKUP_ROWS {
            return restore_on_error(mean, var, |mean, var| {
                self.ensemble_into(
                    sde,
                    tree,
                    u0,
                    trajectories,
                    save_times,
                    last,
                    mean,
                    var,
                    None,
                    seed,
                )
            });
        }
        let (mut value_bound, mut tangent_bound) = (0.0f32, 0.0f32);
        for m in 0..trajectories {
            self.run(sde, tree, m, u0, save_times, last, seed, |_, u| {
                for x in u {
                    value_bound = value_bound.max(x.value().abs());
                    for lane in 0..T::TANGENTS {
                        tangent_bound = tangent_bound.max(x.tangent(lane).abs());
                    }
                }
            })?;
        }
        if !statistics_fit(value_bound, tangent_bound, trajectories) {
            // Rare (states beyond about 1e18): compute the statistics exactly, a block of
            // save times at a time on the stack, and name the first that overflows.
            let mut first = 0;
            while first < save_times.len() {
                let mut block_mean = [[T::ZERO; D]; BACKUP_ROWS];
                let mut block_var = [[T::ZERO; D]; BACKUP_ROWS];
                for m in 0..trajectories {
                    let count = (m + 1) as f32;
                    self.run(sde, tree, m, u0, save_times, last, seed, |i, u| {
                        let row = i.wrapping_sub(first);
                        if let (Some(mean), Some(var)) =
                            (block_mean.get_mut(row), block_var.get_mut(row))
                        {
                            welford_update(mean, var, u, count);
                        }
                    })?;
                }
                let rows = (save_times.len() - first).min(BACKUP_ROWS);
                let mean_rows = block_mean.get(..rows).unwrap_or(&[]);
                let var_rows = block_var.get_mut(..rows).unwrap_or(&mut []);
                finish_variance(var_rows, trajectories);
                check_statistics_finite(mean_rows, var_rows).map_err(|e| match e {
                    Error::StatisticsOverflow { index } => Error::StatisticsOverflow {
                        index: index + first,
                    },
                    e => e,
                })?;
                first += BACKUP_ROWS;
            }
        }
        self.ensemble_into(
            sde,
            tree,
            u0,
            trajectories,
            save_times,
            last,
            mean,
            var,
            paths,
            seed,
        )
    }

    /// The ensemble on checked inputs, accumulated directly into the buffers (which hold
    /// partial results after an error).
    #[allow(clippy::too_many_arguments)]
    fn ensemble_into<T, S, const D: usize>(
        &self,
        sde: &S,
        tree: &BrownianTree,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        last: u32,
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        mut paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
    ) -> Result<AdaptiveStats, Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Embedded<T, S, D>,
    {
        let n_save = save_times.len();
        mean.fill([T::ZERO; D]);
        var.fill([T::ZERO; D]);
        let mut stats = AdaptiveStats::default();
        for m in 0..trajectories {
            let count = (m + 1) as f32;
            let one = self.run(sde, tree, m, u0, save_times, last, seed, |i, u| {
                if let (Some(mean), Some(var)) = (mean.get_mut(i), var.get_mut(i)) {
                    welford_update(mean, var, u, count);
                }
                if let Some(slot) = paths.as_deref_mut().and_then(|p| p.get_mut(m * n_save + i)) {
                    *slot = *u;
                }
            })?;
            stats.add(one);
        }
        finish_variance(var, trajectories);
        check_statistics_finite(mean, var)?;
        Ok(stats)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_ensemble<T: Real<Value = f32>, const D: usize>(
        &self,
        noise: NoiseKind,
        tree: &BrownianTree,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean_len: usize,
        var_len: usize,
        paths_len: Option<usize>,
    ) -> Result<u32, Error> {
        let last = self.check(noise, tree, u0, save_times)?;
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

#[cfg(feature = "std")]
impl<M: Method + Sync> Adaptive<M> {
    /// [`Adaptive::ensemble`] on `threads` threads (0: all available), bit-identical to it
    /// whatever the number of threads, errors included (feature `std`). Each thread
    /// integrates a contiguous run of trajectories into a scratch buffer (this allocates);
    /// the calling thread folds them into the statistics in trajectory order.
    #[allow(clippy::too_many_arguments)]
    pub fn ensemble_parallel<T, S, const D: usize>(
        &self,
        sde: &S,
        tree: &BrownianTree,
        u0: &[T; D],
        trajectories: usize,
        save_times: &[f32],
        mean: &mut [[T; D]],
        var: &mut [[T; D]],
        mut paths: Option<&mut [[T; D]]>,
        seed: ParamSeed,
        threads: usize,
    ) -> Result<AdaptiveStats, Error>
    where
        T: Real<Value = f32> + Send + Sync,
        S: Sde<T, D> + Sync,
        M: Embedded<T, S, D>,
    {
        let last = self.check_ensemble(
            S::NOISE,
            tree,
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
        .min(trajectories);
        let n_save = save_times.len();
        if threads <= 1 || n_save == 0 {
            return self.ensemble(
                sde,
                tree,
                u0,
                trajectories,
                save_times,
                mean,
                var,
                paths,
                seed,
            );
        }
        type Outcome = (usize, Result<AdaptiveStats, Error>);
        let block = (super::PARALLEL_BLOCK_BYTES / core::mem::size_of::<[T; D]>().max(1) / n_save)
            .max(threads)
            .min(trajectories);
        let mut states = std::vec![[T::ZERO; D]; block * n_save];
        let mut outcomes: std::vec::Vec<Outcome> =
            std::vec![(0, Ok(AdaptiveStats::default())); block];
        // Restored on error: the buffers are written only on success.
        let (saved_mean, saved_var) = (mean.to_vec(), var.to_vec());
        let saved_paths = paths.as_deref().map(<[_]>::to_vec);
        mean.fill([T::ZERO; D]);
        var.fill([T::ZERO; D]);
        let mut stats = AdaptiveStats::default();
        let mut failure = None;
        let mut start = 0;
        while start < trajectories && failure.is_none() {
            let len = block.min(trajectories - start);
            let per = len.div_ceil(threads);
            std::thread::scope(|scope| {
                let chunks = states
                    .chunks_mut(per * n_save)
                    .zip(outcomes.chunks_mut(per))
                    .take(len.div_ceil(per))
                    .enumerate();
                for (c, (rows, outs)) in chunks {
                    let first = start + c * per;
                    // The last chunk of the block may run past the trajectories left.
                    let count = per.min(len - c * per);
                    scope.spawn(move || {
                        let rows = rows.chunks_mut(n_save).zip(outs).take(count);
                        for (k, (row, out)) in rows.enumerate() {
                            let mut saved = 0;
                            let result = self.run(
                                sde,
                                tree,
                                first + k,
                                u0,
                                save_times,
                                last,
                                seed,
                                |i, u| {
                                    if let Some(slot) = row.get_mut(i) {
                                        *slot = *u;
                                        saved = i + 1;
                                    }
                                },
                            );
                            let failed = result.is_err();
                            *out = (saved, result);
                            if failed {
                                break;
                            }
                        }
                    });
                }
            });
            for (k, ((saved, result), rows)) in outcomes
                .iter()
                .zip(states.chunks(n_save))
                .take(len)
                .enumerate()
            {
                let m = start + k;
                let count = (m + 1) as f32;
                let stat_rows = mean.iter_mut().zip(var.iter_mut());
                for (i, (u, (mean, var))) in rows.iter().zip(stat_rows).enumerate().take(*saved) {
                    welford_update(mean, var, u, count);
                    if let Some(slot) = paths.as_deref_mut().and_then(|p| p.get_mut(m * n_save + i))
                    {
                        *slot = *u;
                    }
                }
                match result {
                    Ok(one) => stats.add(*one),
                    Err(e) => {
                        failure = Some(*e);
                        break;
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
        Ok(stats)
    }
}

/// The root mean square of the scaled estimates; infinite for a non-finite candidate.
fn error_norm<T: Real<Value = f32>, const D: usize>(
    opt: &AdaptiveOptions,
    u: &[T; D],
    next: &[T; D],
    estimate: &[f32; D],
) -> f32 {
    if D == 0 {
        return 0.0;
    }
    let mut sum = 0.0f32;
    for ((now, next), &e) in u.iter().zip(next).zip(estimate) {
        if !(next.is_finite() && e.is_finite()) {
            return f32::INFINITY;
        }
        let scale = opt.abstol + opt.reltol * now.value().abs().max(next.value().abs());
        // A zero estimate meets any tolerance, even a zero scale.
        let r = if e == 0.0 { 0.0 } else { e / scale };
        sum += r * r;
    }
    let norm = math::sqrt(sum / D as f32);
    if norm.is_nan() {
        f32::INFINITY
    } else {
        norm
    }
}

/// `x^y` for `x > 0` through `exp` and `ln` (the same bits on every target).
#[inline]
fn pow(x: f32, y: f32) -> f32 {
    math::exp(y * math::ln(x))
}
