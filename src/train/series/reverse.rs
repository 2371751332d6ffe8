//! Reverse-mode gradients of the series loss: the discrete adjoint, window by window.
//!
//! The series loss is `L = (sum over windows w of S_w) / n`, where `S_w` is window `w`'s
//! objective summed over its present observations and `n` counts them all. Each `S_w`
//! depends only on its own window's ensemble, so the gradient is the sum of independent
//! per-window adjoints, divided by `n` at the end. Per window, in passes over its
//! ensemble of `M` trajectories (the scheme of [`crate::grad::reverse`]):
//!
//! 1. **Statistics** (1 `f32` solve): the window's ensemble from its observed start, the
//!    same statistics bit for bit as [`series_loss_value`](super::series_loss_value)
//!    computes, so the loss value has the bits of forward mode's.
//! 2. **Cotangents of the statistics** (no solve): `S_w` is evaluated on [`Dual<K>`] over
//!    the window's mean and variance, `K` of their `2 × window × D` entries at a time.
//! 3. **Per trajectory, backward** (about 2 solves, plus the forward pass and the
//!    recomputation of [`Checkpoints::forward_steps`], less one solve when the tape keeps
//!    every trajectory's checkpoints, none at all with [`Checkpoints::All`] then): the
//!    discrete adjoint of the solver ([`StepVjp`]) from the cotangents of the saved states.
//!
//! So about three to five `f32` solves per window whatever the number of parameters `P`,
//! where forward mode needs `ceil(P / K)` solves carrying `K` tangents each.
//!
//! Every window's parameter cotangent is summed into a partial gradient of its own, and the
//! partials are added to the gradient in window order: the threaded variant computes the
//! same partials on any number of threads and adds them in the same order, so its bits do
//! not depend on the thread count and equal the serial function's.

use super::forward::check_noise_gradient;
use super::{bad_start, check_method, finite_loss, split_stats, SeriesProblem, Shifted};
use crate::dual::Dual;
use crate::error::{check_len, Error};
use crate::grad::reverse::{statistics_cotangents, SaveCotangent};
use crate::nn::{ParamSeed, Parameters};
use crate::noise::NoiseSource;
#[cfg(feature = "std")]
use crate::real::Real;
use crate::sde::{Sde, SdeVjp};
use crate::solve::{kept_rows, AdjointPass, Checkpoints, LaneGroup, Method, Solver, StepVjp, Tape};

/// The sizes of one window's reverse pass.
#[derive(Clone, Copy)]
struct WindowPlan {
    /// Grid index of the window's last save time.
    last: u32,
    /// Which states the forward pass keeps.
    checkpoints: Checkpoints,
}

impl WindowPlan {
    fn new(last: u32, checkpoints: Checkpoints) -> Self {
        Self { last, checkpoints }
    }
    /// Checkpoints and final state kept per trajectory when every trajectory keeps them.
    fn per_trajectory(self) -> usize {
        self.checkpoints.kept(self.last).saturating_add(1)
    }
    /// The backward pass's scratch rows besides the kept ones.
    fn scratch(self) -> usize {
        self.checkpoints.scratch(self.last)
    }
    /// State rows for one trajectory at a time.
    fn one_at_a_time(self) -> usize {
        self.checkpoints.states(self.last)
    }
    /// State rows for every trajectory's checkpoints kept from the statistics pass.
    fn keep_all(self, trajectories: usize) -> usize {
        trajectories
            .saturating_mul(self.per_trajectory())
            .saturating_add(self.scratch())
    }
}

/// Rows of `[f32; D]` that hold a partial gradient of `params` entries.
fn gradient_rows<const D: usize>(params: usize) -> usize {
    params.div_ceil(D.max(1))
}

impl<M: Method + Copy, const D: usize> SeriesProblem<'_, M, D> {
    /// The plan of the window starting at `start`.
    fn window_plan(&self, start: usize, checkpoints: Checkpoints) -> Result<WindowPlan, Error> {
        let (solver, saves) = self.window_solver(start)?;
        let last = solver.grid.check_save_times(saves)?;
        Ok(WindowPlan::new(last, checkpoints))
    }

    /// Fixed rows of a reverse-mode tape: a partial gradient and four per observation.
    fn tape_fixed_rows(&self, params: usize) -> usize {
        gradient_rows::<D>(params).saturating_add(self.window.saturating_mul(4))
    }

    /// The largest `rows(plan)` over every usable window (0 if none).
    fn widest(&self, checkpoints: Checkpoints, rows: impl Fn(WindowPlan) -> usize) -> usize {
        self.all_windows()
            .filter_map(|s| self.window_plan(s, checkpoints).ok())
            .map(rows)
            .max()
            .unwrap_or(0)
    }

    /// The number of rows (`[f32; D]`) the `tape` of
    /// [`Reverse`](crate::grad::Reverse) needs for a model of `params` parameters, so
    /// that every usable window of the series fits: a partial gradient
    /// (`ceil(params / D)` rows), four rows per window observation (mean, variance and
    /// their cotangents), and one trajectory's checkpoints and segment
    /// ([`Checkpoints::states`]) for the window with the most steps. Scans every window
    /// once (the windows' steps differ on an uneven series).
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// use tinysde::solve::Checkpoints;
    /// let all = problem.reverse_tape_len(4, Checkpoints::All);
    /// assert!(problem.reverse_tape_len(4, Checkpoints::Binomial(2)) <= all);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn reverse_tape_len(&self, params: usize, checkpoints: Checkpoints) -> usize {
        self.tape_fixed_rows(params)
            .saturating_add(self.widest(checkpoints, WindowPlan::one_at_a_time))
    }

    /// A tape length (rows of `[f32; D]`) with which
    /// [`Reverse`](crate::grad::Reverse) keeps every trajectory's checkpoints from a
    /// window's statistics pass and so skips the per-trajectory forward pass (the same
    /// bits, one solve fewer per window): [`reverse_tape_len`](Self::reverse_tape_len)
    /// with `trajectories × (kept + 1)` state rows instead of one trajectory's (`kept`:
    /// the checkpoints a trajectory keeps, `ceil(steps / interval)`, or the snapshots of
    /// [`Checkpoints::Binomial`]). With [`Checkpoints::All`] and short windows (the one-step-ahead fit
    /// takes a few steps per window) this is small and the cheapest setting: no
    /// recomputation at all.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// use tinysde::solve::Checkpoints;
    /// let c = Checkpoints::Sqrt;
    /// assert!(problem.reverse_tape_len_keep_all(4, c) >= problem.reverse_tape_len(4, c));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn reverse_tape_len_keep_all(&self, params: usize, checkpoints: Checkpoints) -> usize {
        let m = self.trajectories;
        self.tape_fixed_rows(params)
            .saturating_add(self.widest(checkpoints, |p| p.keep_all(m)))
    }

    /// Checks the starts (as [`SeriesProblem::check_starts`]) and returns the tape rows the
    /// widest of their windows needs one trajectory at a time and keeping every
    /// trajectory's checkpoints.
    fn reverse_needs<I: Iterator<Item = usize>>(
        &self,
        starts: I,
        params: usize,
        checkpoints: Checkpoints,
    ) -> Result<(usize, usize), Error> {
        let (mut one, mut all) = (0usize, 0usize);
        for s in starts {
            if !self.is_start(s) {
                return Err(bad_start());
            }
            let plan = self.window_plan(s, checkpoints)?;
            one = one.max(plan.one_at_a_time());
            all = all.max(plan.keep_all(self.trajectories));
        }
        let fixed = self.tape_fixed_rows(params);
        Ok((fixed.saturating_add(one), fixed.saturating_add(all)))
    }
}

/// The series loss over the windows starting at `starts` and its gradient with respect to
/// the model's parameters, by the discrete adjoint (reverse mode).
///
/// The same loss as [`Forward`](crate::grad::Forward)(super::series_forward) (the
/// same bits) and the same gradient up to rounding, at a cost that does not grow with the
/// number of parameters: about three to five `f32` solves per window instead of
/// `ceil(PARAMS / K)` solves carrying `K` tangents. Per window: its ensemble's statistics
/// on `f32` (the loss bits of forward mode), the window objective's derivatives in them by
/// [`Dual<K>`], then every trajectory's discrete adjoint from the cotangents of its saved
/// states (the scheme of [`crate::grad::reverse`]). Each window's parameter cotangent is
/// summed on its own and added to `grad` in window order, which lets the threaded
/// variant, `series_reverse_parallel` (feature `std`), give the same
/// bits on any number of threads.
///
/// `stats` (`Dual<K>` rows, at least [`SeriesProblem::stats_len`]) is scratch for the
/// objective's derivatives in a window's statistics, `K` entries at a time; `tape` is
/// scratch of at least [`SeriesProblem::reverse_tape_len`] rows (with
/// [`SeriesProblem::reverse_tape_len_keep_all`] rows, every window skips its
/// per-trajectory forward pass); `grad` has `S::PARAMS` entries. Nothing allocates.
///
/// Errors before anything is written: wrong `grad`, `stats` or `tape` length, `K = 0`, a
/// start that is not usable, an unsupported noise kind, a window grid with too many steps.
/// Every method with a [`StepVjp`] works (Milstein too, for models with
/// [`MilsteinVjp`](crate::sde::MilsteinVjp)), with every [`Checkpoints`] choice (the
/// gradient's bits do not depend on it). A diverging window returns
/// [`Error::Diverged`] (the trajectory's number within its window), a non-finite loss
/// [`Error::NonFiniteLoss`], a non-finite gradient entry [`Error::NonFiniteGradientEntry`]
/// (the lowest index); `grad`, `stats` and `tape` then hold partial results.
///
/// Public through [`loss_and_gradient`](crate::grad::loss_and_gradient) with
/// [`Reverse`](crate::grad::Reverse) on [`SeriesWindows`](crate::grad::SeriesWindows)
/// (its example compares the two modes).
#[allow(
    clippy::too_many_arguments,
    reason = "crate-internal kernel behind loss_and_gradient(Reverse) on SeriesWindows"
)]
pub(crate) fn series_reverse<const K: usize, S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    checkpoints: Checkpoints,
    stats: &mut [[Dual<K>; D]],
    tape: &mut [[f32; D]],
    grad: &mut [f32],
) -> Result<f32, Error>
where
    S: SdeVjp<D> + Parameters,
    M: StepVjp<S, D> + Copy,
    N: NoiseSource,
    I: Iterator<Item = usize> + Clone,
{
    const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
    let params = S::PARAMS;
    check_len("gradient", params + problem.noise_params(), grad.len())?;
    check_method::<M>(<S as Sde<f32, D>>::NOISE)?;
    let (mean_d, var_d) = split_stats(stats, problem.window)?;
    let (needed, _) = problem.reverse_needs(starts.clone(), params, checkpoints)?;
    let short = short_tape(needed, tape.len());
    if tape.len() < needed {
        return Err(short);
    }
    let (partial_rows, rest) = tape
        .split_at_mut_checked(gradient_rows::<D>(params))
        .ok_or(short)?;
    let partial = partial_rows
        .as_flattened_mut()
        .get_mut(..params)
        .ok_or(short)?;
    grad.fill(0.0);
    let (grad, noise_grad) = grad.split_at_mut(params);
    let (mut total, mut count, mut bar) = (0.0f32, 0usize, [0.0f32; D]);
    for s in starts {
        let (sum, c, b) = window_adjoint(
            problem,
            model,
            noise,
            s,
            checkpoints,
            mean_d,
            var_d,
            rest,
            partial,
        )?;
        total += sum;
        count += c;
        add_noise_cotangent(&mut bar, b);
        for (g, &p) in grad.iter_mut().zip(partial.iter()) {
            *g += p;
        }
    }
    let value = finish(total, count, grad)?;
    problem.write_noise_gradient(&bar, count, noise_grad);
    check_noise_gradient(noise_grad, params)?;
    Ok(value)
}

/// Adds a window's noise cotangents to the running sum.
fn add_noise_cotangent<const D: usize>(bar: &mut [f32; D], window: [f32; D]) {
    for (x, y) in bar.iter_mut().zip(window) {
        *x += y;
    }
}

/// The loss from the windows' sums, and the gradient from the sum of their partials:
/// both divided by the number of observations, as forward mode divides its dual sum.
fn finish(total: f32, count: usize, grad: &mut [f32]) -> Result<f32, Error> {
    let value = finite_loss(if count == 0 {
        0.0
    } else {
        total / count as f32
    })?;
    if count > 0 {
        let n = count as f32;
        for g in grad.iter_mut() {
            *g /= n;
        }
    }
    if let Some(index) = grad.iter().position(|g| !g.is_finite()) {
        return Err(Error::NonFiniteGradientEntry { index });
    }
    Ok(value)
}

fn short_tape(expected: usize, found: usize) -> Error {
    Error::Length {
        what: "series reverse-mode tape (SeriesProblem::reverse_tape_len rows)",
        expected,
        found,
    }
}

/// One window's adjoint: its loss sum, observation count and noise cotangents (zeros
/// unless the noise is learned), and its parameter cotangent written (not added) into
/// `partial`. `tape` holds the window's statistics, their
/// cotangents and the states; its length was checked for this window.
#[allow(
    clippy::too_many_arguments,
    reason = "private per-window step of series_reverse: each argument is a distinct buffer or input"
)]
fn window_adjoint<const K: usize, S, M, N, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    start: usize,
    checkpoints: Checkpoints,
    mean_d: &mut [[Dual<K>; D]],
    var_d: &mut [[Dual<K>; D]],
    tape: &mut [[f32; D]],
    partial: &mut [f32],
) -> Result<(f32, usize, [f32; D]), Error>
where
    S: SdeVjp<D> + Parameters,
    M: StepVjp<S, D> + Copy,
    N: NoiseSource,
{
    let n = problem.window;
    let (solver, saves) = problem.window_solver(start)?;
    let last = solver.grid.check_save_times(saves)?;
    let plan = WindowPlan::new(last, checkpoints);
    let trajectories = problem.trajectories;
    let u0 = problem.start_value(start);
    let shifted = Shifted {
        inner: noise,
        offset: start.wrapping_mul(trajectories),
    };
    let short = short_tape(4 * n + plan.one_at_a_time(), tape.len());
    let (mean, rest) = tape.split_at_mut_checked(n).ok_or(short)?;
    let (var, rest) = rest.split_at_mut_checked(n).ok_or(short)?;
    let (mean_bar, rest) = rest.split_at_mut_checked(n).ok_or(short)?;
    let (var_bar, states) = rest.split_at_mut_checked(n).ok_or(short)?;
    let keep_all = states.len() >= plan.keep_all(trajectories);
    let pass = AdjointPass {
        solver: &solver,
        sde: model,
        noise: &shifted,
        group: LaneGroup {
            first: 0,
            count: trajectories,
        },
        u0: &u0,
        save_times: saves,
        last,
        checkpoints,
    };

    // 1. The window's statistics and loss sum, exactly as `series_loss_value` has them.
    if keep_all {
        pass.ensemble(mean, var, states).map_err(|e| match e {
            // It checks every step; report as the ensembles do (the save interval's
            // last step), so the error does not depend on the tape's length.
            Error::Diverged { trajectory, step } => Error::Diverged {
                trajectory,
                step: interval_end(&solver, saves, step),
            },
            e => e,
        })?;
    } else {
        solver.ensemble_scratch(
            model,
            &shifted,
            &u0,
            trajectories,
            saves,
            mean,
            var,
            ParamSeed::NONE,
        )?;
    }
    let (sum, count) = problem.window_sum::<f32>(start, mean, var);
    let noise_bar = if problem.noise.learned {
        problem.window_noise_cotangent::<f32>(start, mean, var)
    } else {
        [0.0; D]
    };

    // 2. d(sum)/d(mean) and d(sum)/d(var) by forward mode over the statistics.
    let eval = |mean: &_, var: &_| problem.window_sum::<Dual<K>>(start, mean, var).0;
    statistics_cotangents(eval, mean, var, mean_d, var_d, mean_bar, var_bar);

    // 3. Every trajectory backward from the cotangents of its saved states.
    partial.fill(0.0);
    let save_cotangent = SaveCotangent::new(mean, mean_bar, var_bar, trajectories);
    let save_bar = |i: usize, u: &[f32; D]| save_cotangent.at(i, u);
    let mut u0_bar = [0.0f32; D]; // the start is observed, not trained
    for m in 0..trajectories {
        let tape = if keep_all {
            let short = short_tape(plan.keep_all(trajectories), states.len());
            kept_rows(states, trajectories, plan.per_trajectory(), m, short)?
        } else {
            Tape::Recompute(states)
        };
        pass.one(m).adjoint(tape, save_bar, &mut u0_bar, partial)?;
    }
    Ok((sum, count, noise_bar))
}

/// The last step of the save interval containing step `k` (the step after which the
/// state is saved next).
fn interval_end<M: Method>(solver: &Solver<M>, saves: &[f32], k: u32) -> u32 {
    match solver.grid.cursor(saves) {
        Ok(mut cursor) => (k.saturating_add(1)..=cursor.last())
            .find(|&j| cursor.save_at(j).is_some())
            .map_or(k, |j| j - 1),
        Err(_) => k,
    }
}

/// Bytes of per-window partial gradients a threaded call keeps between two reductions.
#[cfg(feature = "std")]
const ROUND_BYTES: usize = 4 << 20;

/// State rows above which a threaded call's tapes keep one trajectory's checkpoints at a
/// time instead of every trajectory's.
#[cfg(feature = "std")]
const KEEP_ALL_ROWS: usize = 1 << 20;

/// [`Reverse`](crate::grad::Reverse) on several threads (feature `std`), bit-identical
/// to it whatever the number of threads.
///
/// The windows are independent: each thread computes the partial gradients of a share of
/// them, each window in scratch of its thread (allocated here: a tape with room for every
/// trajectory's checkpoints of the widest window unless that exceeds a million rows, and
/// `2 × window` rows of `Dual<K>`), and the partials are added to the gradient in window
/// order, as the serial function adds them. Worth it when a batch has at least as many
/// windows as threads. `threads`: 0 for as many as the machine has. Errors as
/// [`Reverse`](crate::grad::Reverse) (the lowest failing window's error, which is the
/// serial function's).
#[cfg(feature = "std")]
pub(crate) fn series_reverse_parallel<const K: usize, S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    checkpoints: Checkpoints,
    grad: &mut [f32],
    threads: usize,
) -> Result<f32, Error>
where
    S: SdeVjp<D> + Parameters + Sync,
    M: StepVjp<S, D> + Copy + Sync,
    N: NoiseSource + Sync,
    I: Iterator<Item = usize>,
{
    use std::vec;
    use std::vec::Vec;

    const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
    let params = S::PARAMS;
    check_len("gradient", params + problem.noise_params(), grad.len())?;
    check_method::<M>(<S as Sde<f32, D>>::NOISE)?;
    let starts: Vec<usize> = starts.collect();
    let (one, all) = problem.reverse_needs(starts.iter().copied(), params, checkpoints)?;
    let tape_rows = if all.saturating_sub(one) <= KEEP_ALL_ROWS {
        all
    } else {
        one
    };
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, starts.len().max(1));
    let width = params.max(1);
    let round = (ROUND_BYTES / (4 * width))
        .max(threads)
        .min(starts.len().max(1));
    let mut tapes: Vec<Vec<[f32; D]>> = (0..threads).map(|_| vec![[0.0; D]; tape_rows]).collect();
    let mut stats: Vec<Vec<[Dual<K>; D]>> = (0..threads)
        .map(|_| vec![[Dual::<K>::ZERO; D]; problem.stats_len()])
        .collect();
    let mut partials = vec![0.0f32; round * width];
    // A round's windows: each one's loss, count and noise cotangents, or its error.
    type WindowOutcome<const D: usize> = Result<(f32, usize, [f32; D]), Error>;
    let mut outcomes: Vec<WindowOutcome<D>> = vec![Ok((0.0, 0, [0.0; D])); round];
    grad.fill(0.0);
    let (grad, noise_grad) = grad.split_at_mut(params);
    let (mut total, mut count, mut bar) = (0.0f32, 0usize, [0.0f32; D]);
    for windows in starts.chunks(round) {
        let per = windows.len().div_ceil(threads);
        let partials = partials.get_mut(..windows.len() * width).unwrap_or(&mut []);
        let outcomes = outcomes.get_mut(..windows.len()).unwrap_or(&mut []);
        std::thread::scope(|scope| {
            let work = windows
                .chunks(per)
                .zip(partials.chunks_mut(per * width))
                .zip(outcomes.chunks_mut(per))
                .zip(tapes.iter_mut().zip(stats.iter_mut()));
            for (((windows, partials), outcomes), (tape, stats)) in work {
                scope.spawn(move || {
                    let (mean_d, var_d) = stats.split_at_mut(problem.window);
                    let (_, rest) = tape.split_at_mut(gradient_rows::<D>(params));
                    let slots = partials.chunks_mut(width).zip(outcomes.iter_mut());
                    for (&s, (partial, outcome)) in windows.iter().zip(slots) {
                        *outcome = window_adjoint(
                            problem,
                            model,
                            noise,
                            s,
                            checkpoints,
                            mean_d,
                            var_d,
                            rest,
                            partial.get_mut(..params).unwrap_or(&mut []),
                        );
                        if outcome.is_err() {
                            // The windows after it are never read: the reduction stops here.
                            break;
                        }
                    }
                });
            }
        });
        for (outcome, partial) in outcomes.iter().zip(partials.chunks(width)) {
            let (sum, c, b) = (*outcome)?;
            total += sum;
            count += c;
            add_noise_cotangent(&mut bar, b);
            for (g, &p) in grad.iter_mut().zip(partial) {
                *g += p;
            }
        }
    }
    let value = finish(total, count, grad)?;
    problem.write_noise_gradient(&bar, count, noise_grad);
    check_noise_gradient(noise_grad, params)?;
    Ok(value)
}
