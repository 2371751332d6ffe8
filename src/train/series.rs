//! Fitting one observed series: windows of consecutive observations, each simulated from
//! its observed first value (multiple shooting), scored by the Gaussian likelihood of the
//! rest (calibrated noise) or the squared error of the mean.
//!
//! A series of `n` rows (times, values, optional mask of present entries) is cut into
//! windows: the window starting at row `s` starts an ensemble at the observed `values[s]`
//! at `times[s]`, saves it at the next `window` times, and compares the ensemble's mean and
//! variance there with the observations. With `window = 1` and [`SeriesObjective::GaussianNll`]
//! this is the one-step-ahead likelihood of the series (multiple shooting: every transition
//! is fitted from where the data actually was), which makes the diffusion learn the data's
//! scatter instead of collapsing; longer windows also train multi-step forecasts.
//!
//! Each iteration uses a batch of windows chosen deterministically from a seed; memory does
//! not depend on the series' length (only on `window` and the parameter count), so a
//! 100,000-row series trains like a 100-row one. Missing entries (mask `false`) are skipped
//! in the loss; a window can only start at a row whose every entry is present. Each
//! window is integrated on a grid [`TimeGrid::with_max_step`] through its times, so uneven
//! series need no tiny steps, and window `s` draws the noise of trajectories
//! `s * trajectories ..`, so windows are independent and every draw is a pure function of
//! (seed, window, trajectory, step).
//!
//! Gradients come in two modes with the same loss bits: forward mode
//! ([`Forward`](crate::grad::Forward), `ceil(PARAMS / K)` solves per window carrying `K`
//! tangents) and reverse mode ([`Reverse`](crate::grad::Reverse), the discrete adjoint:
//! about three to five `f32` solves per window whatever the parameter count, in a
//! caller-provided tape of [`SeriesProblem::reverse_tape_len`] rows). For the seed model
//! (122 parameters) reverse mode is about ten times faster; [`SeriesTrainer`] takes either
//! ([`SeriesTrainer::with_reverse_mode`], [`SeriesTrainer::with_cheaper_mode`]).
//!
//! ```
//! use tinysde::nn::{Dense, Identity, Parameters};
//! use tinysde::noise::Brownian;
//! use tinysde::sde::NeuralSde;
//! use tinysde::solve::EulerMaruyama;
//! use tinysde::train::{series_forward, Series, SeriesProblem};
//! use tinysde::{Dual, Real};
//!
//! type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
//! let mut model = Model::default();
//! model.write_params(&[-0.5, 0.0, 0.0, 0.3])?; // du = -0.5 u dt + 0.3 dW
//! let times = [0.0, 0.5, 1.5, 2.0, 3.0];
//! let values = [[1.0], [0.8], [f32::NAN], [0.3], [0.2]];
//! let mask = [[true], [true], [false], [true], [true]];
//! let series = Series::masked(&times, &values, &mask)?;
//! let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 32)?; // one step ahead
//! let mut stats = [[Dual::<4>::ZERO; 1]; 2];
//! let mut grad = [0.0f32; Model::PARAMS];
//! let batch = problem.batch(7); // all usable windows: rows 0, 1 and 3 (row 2 is missing)
//! assert_eq!(batch.clone().collect::<Vec<_>>(), [0, 1, 3]);
//! let nll = series_forward(&problem, &model, &Brownian::new(1), batch, &mut stats, &mut grad)?;
//! assert!(nll.is_finite() && grad.iter().all(|g| g.is_finite()));
//! # Ok::<(), tinysde::Error>(())
//! ```

mod reverse;
pub(crate) use reverse::series_reverse;
#[cfg(feature = "std")]
pub(crate) use reverse::series_reverse_parallel;

use super::loss::{check_series_data, check_var_floor, GaussianNll, MeanSquaredError};
use super::metrics::CalibrationScore;
use crate::dual::Dual;
use crate::error::{check_len, Error, NoiseKind};
use crate::lanes::Lanes;
use crate::nn::{ParamSeed, Parameters};
use crate::noise::{lane_by_lane, splitmix64, Increment, NoiseSource, StepSize};
use crate::real::Real;
use crate::sde::Sde;
use crate::solve::{Method, Solver, Step, TimeGrid};

/// One observed series: strictly increasing finite times, one row of values per time, and
/// optionally a mask of present entries (missing entries may hold anything, NaN included).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Series<'a, const D: usize> {
    times: &'a [f32],
    values: &'a [[f32; D]],
    mask: Option<&'a [[bool; D]]>,
}

impl<'a, const D: usize> Series<'a, D> {
    /// A fully observed series (at least two rows, every value finite).
    pub fn new(times: &'a [f32], values: &'a [[f32; D]]) -> Result<Self, Error> {
        Self::build(times, values, None)
    }

    /// A series with missing entries where `mask` is `false` (`mask` as long as `values`).
    pub fn masked(
        times: &'a [f32],
        values: &'a [[f32; D]],
        mask: &'a [[bool; D]],
    ) -> Result<Self, Error> {
        Self::build(times, values, Some(mask))
    }

    fn build(
        times: &'a [f32],
        values: &'a [[f32; D]],
        mask: Option<&'a [[bool; D]]>,
    ) -> Result<Self, Error> {
        check_len("series values", times.len(), values.len())?;
        if times.len() < 2 {
            return Err(Error::OutOfRange {
                what: "a series needs at least two rows",
            });
        }
        if let Some(index) = times.iter().position(|t| !t.is_finite()) {
            return Err(Error::NonFinite {
                what: "series time",
                index,
            });
        }
        if let Some(i) = times.windows(2).position(|w| matches!(w, [a, b] if b <= a)) {
            return Err(Error::SaveTime { index: i + 1 });
        }
        check_series_data(values, mask)?;
        Ok(Self {
            times,
            values,
            mask,
        })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.times.len()
    }
    /// Always `false`: a series has at least two rows.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
    /// The times.
    pub fn times(&self) -> &'a [f32] {
        self.times
    }
    /// The values.
    pub fn values(&self) -> &'a [[f32; D]] {
        self.values
    }
    /// The mask, if any.
    pub fn mask(&self) -> Option<&'a [[bool; D]]> {
        self.mask
    }
    /// Whether every entry of row `row` is present.
    pub fn row_present(&self, row: usize) -> bool {
        match self.mask {
            None => row < self.times.len(),
            Some(m) => m.get(row).is_some_and(|r| r.iter().all(|&p| p)),
        }
    }
}

/// What a window's ensemble is scored by.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SeriesObjective {
    /// The Gaussian negative log-likelihood of the observations ([`GaussianNll`]), with a
    /// variance floor (finite, `> 0`): fits the noise to the data's scatter.
    GaussianNll {
        /// Added to every ensemble variance.
        var_floor: f32,
    },
    /// The squared error of the ensemble mean ([`MeanSquaredError`], the seed article's
    /// loss): fits the mean only; the noise is not constrained.
    MeanSquaredError,
}

/// Windows of a [`Series`] to fit: the method, the maximum step, trajectories per window,
/// the window length, the batch size and the objective. Built validated by
/// [`SeriesProblem::new`]; builders validate too and leave the problem unchanged on error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesProblem<'a, M, const D: usize> {
    method: M,
    series: Series<'a, D>,
    max_step: f32,
    trajectories: usize,
    window: usize,
    batch: usize,
    objective: SeriesObjective,
}

impl<'a, M: Method + Copy, const D: usize> SeriesProblem<'a, M, D> {
    /// One-step-ahead windows (`window = 1`) of `series`, all of them per batch, scored by
    /// the Gaussian likelihood with variance floor `1e-6`, each integrated by `method` in
    /// steps of at most `max_step` (finite, `> 0`) with `trajectories >= 1` trajectories.
    /// Errors also if no row can start a window.
    pub fn new(
        method: M,
        series: Series<'a, D>,
        max_step: f32,
        trajectories: usize,
    ) -> Result<Self, Error> {
        if !(max_step > 0.0 && max_step.is_finite()) {
            return Err(Error::OutOfRange {
                what: "maximum step must be positive and finite",
            });
        }
        if trajectories == 0 {
            return Err(Error::OutOfRange {
                what: "number of trajectories must be >= 1",
            });
        }
        let problem = Self {
            method,
            series,
            max_step,
            trajectories,
            window: 1,
            batch: usize::MAX,
            objective: SeriesObjective::GaussianNll {
                var_floor: super::loss::DEFAULT_VAR_FLOOR,
            },
        };
        problem.check_some_start()?;
        Ok(problem)
    }

    fn check_some_start(&self) -> Result<(), Error> {
        if (0..self.positions()).any(|s| self.series.row_present(s)) {
            Ok(())
        } else {
            Err(Error::OutOfRange {
                what: "no fully observed row has a full window after it",
            })
        }
    }

    /// Windows of `window >= 1` observations after the start (the series must have a
    /// fully observed row with `window` rows after it).
    pub fn with_window(self, window: usize) -> Result<Self, Error> {
        if window == 0 || window >= self.series.len() {
            return Err(Error::OutOfRange {
                what: "window must be between 1 and the number of rows - 1",
            });
        }
        let changed = Self { window, ..self };
        changed.check_some_start()?;
        Ok(changed)
    }

    /// `batch >= 1` windows per loss evaluation (all usable windows if there are not more).
    pub fn with_batch(self, batch: usize) -> Result<Self, Error> {
        if batch == 0 {
            return Err(Error::OutOfRange {
                what: "batch must be >= 1 window",
            });
        }
        Ok(Self { batch, ..self })
    }

    /// The objective (a Gaussian likelihood's floor must be finite and `> 0`).
    pub fn with_objective(self, objective: SeriesObjective) -> Result<Self, Error> {
        if let SeriesObjective::GaussianNll { var_floor } = objective {
            check_var_floor(var_floor)?;
        }
        Ok(Self { objective, ..self })
    }

    /// Changes the number of trajectories per window (`>= 1`).
    pub fn with_trajectories(self, trajectories: usize) -> Result<Self, Error> {
        if trajectories == 0 {
            return Err(Error::OutOfRange {
                what: "number of trajectories must be >= 1",
            });
        }
        Ok(Self {
            trajectories,
            ..self
        })
    }

    /// The series.
    pub fn series(&self) -> &Series<'a, D> {
        &self.series
    }
    /// The window length (observations after each start).
    pub fn window(&self) -> usize {
        self.window
    }
    /// Trajectories per window.
    pub fn trajectories(&self) -> usize {
        self.trajectories
    }
    /// The maximum step.
    pub fn max_step(&self) -> f32 {
        self.max_step
    }
    /// The objective.
    pub fn objective(&self) -> SeriesObjective {
        self.objective
    }
    /// Statistics scratch rows needed: `2 * window`.
    pub fn stats_len(&self) -> usize {
        2 * self.window
    }

    /// The number of rows a window could start at (`len - window`), usable or not.
    fn positions(&self) -> usize {
        self.series.len().saturating_sub(self.window)
    }

    /// Whether a window can start at row `start`: the row is fully observed and `window`
    /// rows follow it.
    pub fn is_start(&self, start: usize) -> bool {
        start < self.positions() && self.series.row_present(start)
    }

    /// The windows of one loss evaluation, chosen by `seed`: every usable start in order if
    /// the batch is at least the number of rows that could start one, otherwise `batch`
    /// starts each drawn uniformly from the possible rows (by SplitMix64 of the seed and
    /// the draw's index), moved forward to the next usable row if that one is not.
    pub fn batch(&self, seed: u64) -> Batch<'a, D> {
        let positions = self.positions();
        Batch {
            series: self.series,
            positions,
            all: self.batch >= positions,
            remaining: self.batch.min(positions),
            next: 0,
            key: splitmix64(seed),
        }
    }

    /// Every usable window start, in order (for scoring the whole series).
    pub fn all_windows(&self) -> Batch<'a, D> {
        let positions = self.positions();
        Batch {
            series: self.series,
            positions,
            all: true,
            remaining: positions,
            next: 0,
            key: 0,
        }
    }

    /// The solver, grid and save times of the window starting at `start` (unchecked).
    fn window_solver(&self, start: usize) -> Result<(Solver<M>, &'a [f32]), Error> {
        let times = self.series.times;
        let (t0, saves) = match (times.get(start), times.get(start + 1..=start + self.window)) {
            (Some(&t0), Some(saves)) => (t0, saves),
            _ => return Err(bad_start()),
        };
        let t1 = saves.last().copied().unwrap_or(t0);
        let grid = TimeGrid::with_max_step(t0, t1, self.max_step)?;
        Ok((Solver::new(self.method, grid), saves))
    }

    /// The observations (and mask) a window's ensemble is compared with.
    fn targets(&self, start: usize) -> (&'a [[f32; D]], Option<&'a [[bool; D]]>) {
        let range = start + 1..=start + self.window;
        let data = self.series.values.get(range.clone()).unwrap_or(&[]);
        let mask = self.series.mask.map(|m| m.get(range).unwrap_or(&[]));
        (data, mask)
    }

    /// A window's loss sum and number of present observations.
    fn window_sum<T: Real>(&self, start: usize, mean: &[[T; D]], var: &[[T; D]]) -> (T, usize) {
        let (data, mask) = self.targets(start);
        match self.objective {
            SeriesObjective::GaussianNll { var_floor } => {
                GaussianNll::unchecked(data, mask, var_floor).sum(mean, var)
            }
            SeriesObjective::MeanSquaredError => MeanSquaredError::unchecked(data, mask).sum(mean),
        }
    }

    /// Checks every start of `starts` before anything runs; returns how many there are.
    fn check_starts<I: Iterator<Item = usize>>(&self, starts: I) -> Result<usize, Error> {
        let mut n = 0;
        for s in starts {
            if !self.is_start(s) {
                return Err(bad_start());
            }
            // Validates the window's grid (e.g. too many steps) before anything is written.
            let (solver, saves) = self.window_solver(s)?;
            solver.grid.check_save_times(saves)?;
            n += 1;
        }
        Ok(n)
    }
}

fn bad_start() -> Error {
    Error::OutOfRange {
        what: "window start must be a fully observed row with a full window after it",
    }
}

/// The window starts of one loss evaluation: an iterator made by [`SeriesProblem::batch`]
/// or [`SeriesProblem::all_windows`]. Cloning it replays the same starts.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, const D: usize> {
    series: Series<'a, D>,
    positions: usize,
    all: bool,
    remaining: usize,
    next: usize,
    key: u64,
}

impl<const D: usize> Iterator for Batch<'_, D> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.all {
            while self.next < self.positions {
                let s = self.next;
                self.next += 1;
                if self.series.row_present(s) {
                    return Some(s);
                }
            }
            return None;
        }
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let draw = splitmix64(self.key ^ splitmix64(self.next as u64));
        self.next += 1;
        // Multiply-shift maps 64 random bits to 0..positions without modulo bias worth
        // mentioning and without a division (same bits on 32- and 64-bit targets).
        let first = ((u128::from(draw) * self.positions as u128) >> 64) as usize;
        (0..self.positions)
            .map(|i| (first + i) % self.positions)
            .find(|&s| self.series.row_present(s))
    }
}

/// A noise source's trajectories `offset ..` as trajectories `0 ..`: each window draws its
/// own part of one Brownian family.
struct Shifted<'n, N> {
    inner: &'n N,
    offset: usize,
}

impl<N: NoiseSource> NoiseSource for Shifted<'_, N> {
    #[inline]
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        h: f32,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        self.inner
            .increment(self.offset.wrapping_add(trajectory), step, h, with_dz)
    }

    #[inline]
    fn increment_sized<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        size: StepSize,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        self.inner
            .increment_sized(self.offset.wrapping_add(trajectory), step, size, with_dz)
    }

    #[inline]
    fn increment_lanes<const C: usize, V: Lanes>(
        &self,
        first: usize,
        count: usize,
        step: u32,
        size: StepSize,
        with_dz: bool,
    ) -> Result<Increment<C, V>, Error> {
        // The inner source's lanes are the shifted ones unless the shift wraps around
        // inside the group; then lane by lane, each lane shifted on its own.
        match self.offset.checked_add(first) {
            Some(start) if start.checked_add(count).is_some() => self
                .inner
                .increment_lanes(start, count, step, size, with_dz),
            _ => lane_by_lane(self, first, count, step, size, with_dz),
        }
    }
}

pub(super) fn check_method<M: Method>(noise: NoiseKind) -> Result<(), Error> {
    if M::supports(noise) {
        Ok(())
    } else {
        Err(Error::UnsupportedNoise {
            method: M::NAME,
            noise,
        })
    }
}

/// The mean and variance halves of a statistics scratch.
type MeanVar<'s, T, const D: usize> = (&'s mut [[T; D]], &'s mut [[T; D]]);

/// The mean and variance halves of a statistics scratch of at least `2 n` rows.
fn split_stats<T, const D: usize>(
    stats: &mut [[T; D]],
    n: usize,
) -> Result<MeanVar<'_, T, D>, Error> {
    let short = Error::Length {
        what: "statistics scratch (2 rows per window observation)",
        expected: 2 * n,
        found: stats.len(),
    };
    let (mean, rest) = stats.split_at_mut_checked(n).ok_or(short)?;
    let (var, _) = rest.split_at_mut_checked(n).ok_or(short)?;
    Ok((mean, var))
}

/// The series loss over the windows starting at `starts`, and its exact gradient with
/// respect to the model's parameters, by forward-mode sensitivity (as
/// [`loss_and_gradient`](crate::grad::loss_and_gradient), `K` lanes per pass chosen by the
/// type of `stats`).
///
/// The loss is the objective's per-observation average over all present observations of
/// all the windows (0 if there are none): for the Gaussian likelihood,
/// `sum over windows and observations of 1/2 (ln(2 pi s) + (y - mean)^2 / s) / n`.
/// `starts` is iterated once per pass (clone-replayed), so it must yield the same starts
/// each time; [`SeriesProblem::batch`] does.
///
/// `stats`: at least [`SeriesProblem::stats_len`] rows; `grad`: `S::PARAMS` entries.
/// Errors before anything is written: wrong lengths, a start that is not usable, an
/// unsupported noise kind. A diverging window returns [`Error::Diverged`] (with the
/// trajectory's number within its window), a non-finite loss [`Error::NonFiniteLoss`], a
/// non-finite gradient entry [`Error::NonFiniteGradientEntry`]; `grad` then holds the
/// chunks of the passes before the failing one.
///
/// Cost: `ceil(PARAMS / K)` passes, each one ensemble of `trajectories` per window.
pub(crate) fn series_forward<const K: usize, S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    stats: &mut [[Dual<K>; D]],
    grad: &mut [f32],
) -> Result<f32, Error>
where
    S: Sde<Dual<K>, D> + Parameters,
    M: Step<Dual<K>, S, D> + Copy,
    N: NoiseSource,
    I: Iterator<Item = usize> + Clone,
{
    const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
    check_len("gradient", S::PARAMS, grad.len())?;
    check_method::<M>(<S as Sde<Dual<K>, D>>::NOISE)?;
    let (mean, var) = split_stats(stats, problem.window)?;
    problem.check_starts(starts.clone())?;
    let mut value = f32::NAN;
    let mut start = 0;
    loop {
        let l = series_pass(problem, model, noise, starts.clone(), mean, var, start)?;
        if start == 0 {
            value = finite_loss(l.v)?;
        }
        let end = grad.len().min(start + K);
        let chunk = grad.get_mut(start..end).unwrap_or(&mut []);
        write_lanes(&l, chunk, start)?;
        start += K;
        if start >= grad.len() {
            break;
        }
    }
    Ok(value)
}

/// One forward-mode pass: the series loss with tangents for parameters `start..start + K`.
fn series_pass<const K: usize, S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    mean: &mut [[Dual<K>; D]],
    var: &mut [[Dual<K>; D]],
    start: usize,
) -> Result<Dual<K>, Error>
where
    S: Sde<Dual<K>, D> + Parameters,
    M: Step<Dual<K>, S, D> + Copy,
    N: NoiseSource,
    I: Iterator<Item = usize>,
{
    let mut total = Dual::<K>::ZERO;
    let mut count = 0usize;
    for s in starts {
        let (solver, saves) = problem.window_solver(s)?;
        let mut u0 = [Dual::<K>::ZERO; D];
        if let Some(row) = problem.series.values.get(s) {
            for (x, &v) in u0.iter_mut().zip(row) {
                *x = Dual::constant(v);
            }
        }
        let shifted = Shifted {
            inner: noise,
            offset: s.wrapping_mul(problem.trajectories),
        };
        solver.ensemble_scratch(
            model,
            &shifted,
            &u0,
            problem.trajectories,
            saves,
            mean,
            var,
            ParamSeed::window(start),
        )?;
        let (sum, c) = problem.window_sum(s, mean, var);
        total += sum;
        count += c;
    }
    Ok(if count == 0 {
        Dual::ZERO
    } else {
        total / count as f32
    })
}

fn finite_loss(value: f32) -> Result<f32, Error> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteLoss)
    }
}

/// Writes the tangents of `l` into the gradient entries `start..start + chunk.len()`,
/// after checking all of them (nothing is written if one is not finite).
fn write_lanes<const K: usize>(l: &Dual<K>, chunk: &mut [f32], start: usize) -> Result<(), Error> {
    if let Some(lane) = (0..chunk.len()).find(|&lane| !l.tangent(lane).is_finite()) {
        return Err(Error::NonFiniteGradientEntry {
            index: start.saturating_add(lane),
        });
    }
    for (lane, g) in chunk.iter_mut().enumerate() {
        *g = l.tangent(lane);
    }
    Ok(())
}

/// [`Forward`](crate::grad::Forward) on several threads (feature `std`), bit-identical to it.
///
/// The forward-mode passes (one per `K` parameters) are independent, so they are shared
/// among `threads` threads (0: as many as the machine has), each with its own statistics
/// scratch (allocated here, `2 * window` rows per thread); every pass computes exactly
/// what it computes serially. Worth it when there are several passes (`PARAMS > K`). On
/// error, the error of the lowest failing pass is returned (the serial function's error).
#[cfg(feature = "std")]
pub(crate) fn series_forward_parallel<const K: usize, S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    grad: &mut [f32],
    threads: usize,
) -> Result<f32, Error>
where
    S: Sde<Dual<K>, D> + Parameters + Sync,
    M: Step<Dual<K>, S, D> + Copy + Sync,
    N: NoiseSource + Sync,
    I: Iterator<Item = usize> + Clone + Send + Sync,
{
    const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
    check_len("gradient", S::PARAMS, grad.len())?;
    check_method::<M>(<S as Sde<Dual<K>, D>>::NOISE)?;
    problem.check_starts(starts.clone())?;
    let passes = grad.len().div_ceil(K).max(1);
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, passes);
    let rows = problem.window;
    // Pass p's result (the loss value of pass 0, or the error) at index p.
    let mut outcomes: std::vec::Vec<Result<f32, Error>> = std::vec![Ok(0.0); passes];
    let mut chunks: std::vec::Vec<&mut [f32]> = grad.chunks_mut(K).collect();
    if chunks.is_empty() {
        chunks.push(&mut []);
    }
    let per = passes.div_ceil(threads);
    std::thread::scope(|scope| {
        for (group, (grads, results)) in chunks
            .chunks_mut(per)
            .zip(outcomes.chunks_mut(per))
            .enumerate()
        {
            let starts = starts.clone();
            scope.spawn(move || {
                let mut stats = std::vec![[Dual::<K>::ZERO; D]; 2 * rows];
                let (mean, var) = stats.split_at_mut(rows);
                for (j, (chunk, result)) in grads.iter_mut().zip(results.iter_mut()).enumerate() {
                    let pass_start = (group * per + j) * K;
                    *result =
                        series_pass(problem, model, noise, starts.clone(), mean, var, pass_start)
                            .and_then(|l| {
                                if pass_start == 0 {
                                    finite_loss(l.v)?; // checked before the lanes, as serially
                                }
                                write_lanes(&l, chunk, pass_start)?;
                                Ok(l.v)
                            });
                }
            });
        }
    });
    let mut value = f32::NAN;
    for (p, outcome) in outcomes.into_iter().enumerate() {
        let v = outcome?;
        if p == 0 {
            value = finite_loss(v)?;
        }
    }
    Ok(value)
}

/// The series loss over the windows starting at `starts`, without derivatives (one
/// ensemble per window on `f32`; bit-identical to the value
/// [`Forward`](crate::grad::Forward) returns). `stats`: at least [`SeriesProblem::stats_len`]
/// rows. Errors as [`Forward`](crate::grad::Forward).
pub fn series_loss_value<S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    stats: &mut [[f32; D]],
) -> Result<f32, Error>
where
    S: Sde<f32, D>,
    M: Step<f32, S, D> + Copy,
    N: NoiseSource,
    I: Iterator<Item = usize> + Clone,
{
    check_method::<M>(<S as Sde<f32, D>>::NOISE)?;
    let (mean, var) = split_stats(stats, problem.window)?;
    problem.check_starts(starts.clone())?;
    let (mut total, mut count) = (0.0f32, 0usize);
    for s in starts {
        let (solver, saves) = problem.window_solver(s)?;
        let u0 = problem.series.values.get(s).copied().unwrap_or([0.0; D]);
        let shifted = Shifted {
            inner: noise,
            offset: s.wrapping_mul(problem.trajectories),
        };
        solver.ensemble_scratch(
            model,
            &shifted,
            &u0,
            problem.trajectories,
            saves,
            mean,
            var,
            ParamSeed::NONE,
        )?;
        let (sum, c) = problem.window_sum(s, mean, var);
        total += sum;
        count += c;
    }
    finite_loss(if count == 0 {
        0.0
    } else {
        total / count as f32
    })
}

/// Scores the model's window forecasts against the observations: for every window of
/// `starts`, an ensemble of [`SeriesProblem::trajectories`] from the observed start, and
/// for every present observation of the window the coverage of the central band and the
/// CRPS of the ensemble's samples, added to `score` (see [`CalibrationScore`]). With
/// `window = 1` this scores the one-step-ahead forecasts.
///
/// Scratch: `paths` of `trajectories * window` rows, `samples` of `trajectories` entries.
/// `score` is updated only if every window succeeds.
#[allow(clippy::too_many_arguments)]
pub fn score_series<S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    paths: &mut [[f32; D]],
    samples: &mut [f32],
    score: &mut CalibrationScore,
) -> Result<(), Error>
where
    S: Sde<f32, D>,
    M: Step<f32, S, D> + Copy,
    N: NoiseSource,
    I: Iterator<Item = usize> + Clone,
{
    check_method::<M>(<S as Sde<f32, D>>::NOISE)?;
    let m = problem.trajectories;
    let l = problem.window;
    check_len(
        "paths scratch (trajectories * window)",
        m.saturating_mul(l),
        paths.len(),
    )?;
    check_len("samples scratch (trajectories)", m, samples.len())?;
    problem.check_starts(starts.clone())?;
    let mut local = *score;
    for s in starts {
        let (solver, saves) = problem.window_solver(s)?;
        let u0 = problem.series.values.get(s).copied().unwrap_or([0.0; D]);
        let shifted = Shifted {
            inner: noise,
            offset: s.wrapping_mul(m),
        };
        // Trajectory j of the window is the same draw as in the loss's ensemble.
        for (j, row) in paths.chunks_mut(l).enumerate().take(m) {
            solver.solve(model, &shifted, j, &u0, saves, row, ParamSeed::NONE)?;
        }
        let (data, mask) = problem.targets(s);
        for (i, y) in data.iter().enumerate() {
            for (d, &yd) in y.iter().enumerate() {
                let present = mask
                    .and_then(|mk| mk.get(i))
                    .is_none_or(|r| r.get(d).copied().unwrap_or(false));
                if !present {
                    continue;
                }
                for (j, x) in samples.iter_mut().enumerate() {
                    *x = paths
                        .get(j * l + i)
                        .and_then(|r| r.get(d))
                        .copied()
                        .unwrap_or(f32::NAN);
                }
                local.add_ensemble(yd, samples)?;
            }
        }
    }
    *score = local;
    Ok(())
}
