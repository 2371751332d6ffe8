//! The ensemble engine, written once for every integrator and every way of running it:
//! input checks, Welford statistics in trajectory order, and the written-only-on-success
//! guarantee (a stack copy restored on error, or a checking pass before the writing one).
//!
//! The engine sees an integration as a [`Runner`]: something that integrates a range of
//! trajectories, a lane group at a time, and shows every saved state in a fixed order. The
//! fixed-step solver on one lane or `L`, the adaptive solver and reversible Heun are runners;
//! the threaded engine ([`super::threads`]) splits the trajectories between runners on
//! several threads and folds their states here, in the same order.

use super::ensemble::EnsembleBuffers;
use crate::error::{check_len, Error};
use crate::lanes::Mask;
use crate::real::Real;

/// What an integrator reports besides the states, summed over an ensemble's trajectories:
/// `()` for fixed steps, [`AdaptiveStats`](super::AdaptiveStats) for adaptive ones.
///
/// ```
/// use tinysde::solve::{AdaptiveStats, Tally};
/// let mut total = AdaptiveStats { accepted: 10, rejected: 1 };
/// total.add(AdaptiveStats { accepted: 5, rejected: 2 });
/// assert_eq!(total, AdaptiveStats { accepted: 15, rejected: 3 });
/// ```
pub trait Tally: Copy + Default + core::fmt::Debug + PartialEq + Send {
    /// Adds another trajectory's (or run of trajectories') report.
    fn add(&mut self, other: Self);
}

impl Tally for () {
    #[inline]
    fn add(&mut self, _: Self) {}
}

/// An integration with its inputs bound (checked before the engine sees it): it integrates
/// the trajectories of a range and calls `visit(m, i, u)` with trajectory `m`'s state at
/// save time `i`: a lane group of [`Runner::width`] trajectories at a time, for each group
/// save time by save time, its trajectories in increasing order (so each save time sees the
/// trajectories in increasing order). It stops at the first error, which is the error the
/// one-at-a-time integration returns (the lowest failing trajectory's).
pub(crate) trait Runner<T, const D: usize> {
    /// What the integration reports besides the states.
    type Stats: Tally;
    /// Trajectories per lane group (1: one at a time); the threaded engine splits work by it.
    #[cfg_attr(
        not(feature = "std"),
        allow(dead_code, reason = "only the threaded engine (feature std) asks")
    )]
    fn width(&self) -> usize;
    /// The number of save times.
    fn saves(&self) -> usize;
    /// Integrates `range`, showing every saved state to `visit` (see the trait).
    fn for_each_state(
        &self,
        range: core::ops::Range<usize>,
        visit: impl FnMut(usize, usize, &[T; D]),
    ) -> Result<Self::Stats, Error>;
}

/// Up to this many save times, a solve or an ensemble keeps its results on the stack (a
/// copy of the caller's buffers, restored on error) instead of integrating twice to write
/// only on success.
pub const BACKUP_ROWS: usize = 32;

/// Validates an ensemble's sizes (the integrator checked the rest) without touching anything.
pub(crate) fn check_ensemble<T, const D: usize>(
    trajectories: usize,
    saves: usize,
    out: &EnsembleBuffers<'_, T, D>,
) -> Result<(), Error> {
    if trajectories == 0 {
        return Err(Error::OutOfRange {
            what: "number of trajectories must be >= 1",
        });
    }
    check_len("ensemble mean", saves, out.mean.len())?;
    check_len("ensemble variance", saves, out.variance.len())?;
    if let Some(paths) = out.paths.as_deref() {
        check_len(
            "ensemble paths",
            trajectories.saturating_mul(saves),
            paths.len(),
        )?;
    }
    Ok(())
}

/// One trajectory, number `trajectory`, into `out` (one row per save time, its length
/// checked here), written only on success. (Up to [`BACKUP_ROWS`] save times the states
/// wait in a stack buffer; beyond that a first pass checks that the integration succeeds
/// before a second one, identical, writes.)
pub(crate) fn solve<T: Real, R: Runner<T, D>, const D: usize>(
    runner: &R,
    trajectory: usize,
    out: &mut [[T; D]],
) -> Result<R::Stats, Error> {
    let saves = runner.saves();
    check_len("saved states", saves, out.len())?;
    let range = trajectory..trajectory.saturating_add(1);
    if saves <= BACKUP_ROWS {
        let mut rows = [[T::ZERO; D]; BACKUP_ROWS];
        let stats = runner.for_each_state(range, |_, i, u| {
            if let Some(slot) = rows.get_mut(i) {
                *slot = *u;
            }
        })?;
        for (slot, row) in out.iter_mut().zip(&rows) {
            *slot = *row;
        }
        Ok(stats)
    } else {
        runner.for_each_state(range.clone(), |_, _, _| {})?;
        // `i < out.len()` (checked above); `get_mut` keeps this path panic-free.
        runner.for_each_state(range, |_, i, u| {
            if let Some(slot) = out.get_mut(i) {
                *slot = *u;
            }
        })
    }
}

/// The ensemble of trajectories `0..trajectories` on checked inputs, written only on
/// success: mean and sample variance at each save time (and the paths if given).
///
/// Without paths and up to [`BACKUP_ROWS`] save times the caller's buffers are copied on
/// the stack and restored on error. Otherwise a first pass checks that every trajectory
/// stays finite and bounds the states, so that the statistics provably fit in `f32`, before
/// the second writes (rarely, for states beyond about 1e18, the statistics are checked
/// exactly in between, a block of save times at a time on the stack).
pub(crate) fn ensemble<T, R, const D: usize>(
    runner: &R,
    trajectories: usize,
    out: EnsembleBuffers<'_, T, D>,
) -> Result<R::Stats, Error>
where
    T: Real<Value = f32>,
    R: Runner<T, D>,
{
    let EnsembleBuffers {
        mean,
        variance,
        paths,
    } = out;
    if paths.is_none() && runner.saves() <= BACKUP_ROWS {
        return restore_on_error(mean, variance, |mean, var| {
            accumulate(runner, trajectories, mean, var, None)
        });
    }
    let mut value_bound = 0.0f32;
    let mut tangent_bound = 0.0f32;
    runner.for_each_state(0..trajectories, |_, _, u| {
        for x in u {
            value_bound = value_bound.max(x.value().abs());
            for k in 0..T::TANGENTS {
                tangent_bound = tangent_bound.max(x.tangent(k).abs());
            }
        }
    })?;
    if !statistics_fit(value_bound, tangent_bound, trajectories) {
        check_statistics(runner, trajectories)?;
    }
    accumulate(runner, trajectories, mean, variance, paths)
}

/// The ensemble accumulated directly into `mean`, `var` and `paths` (checked lengths):
/// after an error they hold partial results. The gradient passes use it on their scratch.
pub(crate) fn accumulate<T, R, const D: usize>(
    runner: &R,
    trajectories: usize,
    mean: &mut [[T; D]],
    var: &mut [[T; D]],
    mut paths: Option<&mut [[T; D]]>,
) -> Result<R::Stats, Error>
where
    T: Real<Value = f32>,
    R: Runner<T, D>,
{
    let saves = runner.saves();
    mean.fill([T::ZERO; D]);
    var.fill([T::ZERO; D]); // holds Welford's sum of squared deviations until the end
    let stats = runner.for_each_state(0..trajectories, |m, i, u| {
        // The lengths were checked, so every `get_mut` succeeds; it keeps the inference
        // path free of panics (the firmware's no-panic build checks that).
        if let (Some(mean), Some(var)) = (mean.get_mut(i), var.get_mut(i)) {
            welford_update(mean, var, u, m.saturating_add(1) as f32);
        }
        let slot = paths
            .as_deref_mut()
            .and_then(|p| p.get_mut(m.saturating_mul(saves).saturating_add(i)));
        if let Some(slot) = slot {
            *slot = *u;
        }
    })?;
    finish_variance(var, trajectories);
    check_statistics_finite(mean, var)?;
    Ok(stats)
}

/// Computes the ensemble statistics [`BACKUP_ROWS`] save times at a time on the stack and
/// returns [`Error::StatisticsOverflow`] for the first that is not finite.
fn check_statistics<T, R, const D: usize>(runner: &R, trajectories: usize) -> Result<(), Error>
where
    T: Real<Value = f32>,
    R: Runner<T, D>,
{
    let saves = runner.saves();
    let mut first = 0;
    while first < saves {
        let mut mean = [[T::ZERO; D]; BACKUP_ROWS];
        let mut var = [[T::ZERO; D]; BACKUP_ROWS];
        runner.for_each_state(0..trajectories, |m, i, u| {
            let row = i.wrapping_sub(first);
            if let (Some(mean), Some(var)) = (mean.get_mut(row), var.get_mut(row)) {
                welford_update(mean, var, u, m.saturating_add(1) as f32);
            }
        })?;
        let rows = saves.saturating_sub(first).min(BACKUP_ROWS);
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

/// [`Error::StatisticsOverflow`] for the first save time whose mean or variance is not finite.
pub(crate) fn check_statistics_finite<T: Real, const D: usize>(
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
