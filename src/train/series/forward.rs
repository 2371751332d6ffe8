//! The series objective's value and forward-mode gradient, serial and on threads.

use crate::dual::Dual;
use crate::error::{check_len, Error};
use crate::nn::{ParamSeed, Parameters};
use crate::noise::NoiseSource;
use crate::real::Real;
use crate::sde::Sde;
use crate::solve::Step;

#[allow(
    clippy::wildcard_imports,
    reason = "the sibling pieces of the series module"
)]
use super::*;

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
/// `stats`: at least [`SeriesProblem::stats_len`] rows; `grad`: `S::PARAMS` entries (and
/// then the learned noise's, [`SeriesProblem::noise_params`]).
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
    check_len("gradient", S::PARAMS + problem.noise_params(), grad.len())?;
    check_method::<M>(<S as Sde<Dual<K>, D>>::NOISE)?;
    let (mean, var) = split_stats(stats, problem.window)?;
    problem.check_starts(starts.clone())?;
    let (grad, noise_grad) = grad.split_at_mut(S::PARAMS);
    let mut value = f32::NAN;
    let mut start = 0;
    loop {
        let (l, bar, count) = series_pass(problem, model, noise, starts.clone(), mean, var, start)?;
        if start == 0 {
            value = finite_loss(l.v)?;
            problem.write_noise_gradient(&bar, count, noise_grad);
        }
        let end = grad.len().min(start + K);
        let chunk = grad.get_mut(start..end).unwrap_or(&mut []);
        write_lanes(&l, chunk, start)?;
        start += K;
        if start >= grad.len() {
            break;
        }
    }
    check_noise_gradient(noise_grad, S::PARAMS)?;
    Ok(value)
}

/// [`Error::NonFiniteGradientEntry`] for the first non-finite learned-noise entry
/// (`offset`: the model's parameter count).
pub(super) fn check_noise_gradient(noise_grad: &[f32], offset: usize) -> Result<(), Error> {
    match noise_grad.iter().position(|g| !g.is_finite()) {
        Some(i) => Err(Error::NonFiniteGradientEntry {
            index: offset.saturating_add(i),
        }),
        None => Ok(()),
    }
}

/// One forward-mode pass: the series loss with tangents for parameters `start..start + K`,
/// the windows' summed noise cotangents (see [`SeriesProblem::window_noise_cotangent`]) and
/// the number of observations.
pub(super) fn series_pass<const K: usize, S, M, N, I, const D: usize>(
    problem: &SeriesProblem<'_, M, D>,
    model: &S,
    noise: &N,
    starts: I,
    mean: &mut [[Dual<K>; D]],
    var: &mut [[Dual<K>; D]],
    start: usize,
) -> Result<(Dual<K>, [f32; D], usize), Error>
where
    S: Sde<Dual<K>, D> + Parameters,
    M: Step<Dual<K>, S, D> + Copy,
    N: NoiseSource,
    I: Iterator<Item = usize>,
{
    let mut total = Dual::<K>::ZERO;
    let mut count = 0usize;
    let mut bar = [0.0f32; D];
    for s in starts {
        let (solver, saves) = problem.window_solver(s)?;
        let mut u0 = [Dual::<K>::ZERO; D];
        for (x, v) in u0.iter_mut().zip(problem.start_value(s)) {
            *x = Dual::constant(v);
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
        if problem.noise.learned {
            let b = problem.window_noise_cotangent(s, mean, var);
            for (x, y) in bar.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
    let value = if count == 0 {
        Dual::ZERO
    } else {
        total / count as f32
    };
    Ok((value, bar, count))
}

pub(super) fn finite_loss(value: f32) -> Result<f32, Error> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteLoss)
    }
}

/// Writes the tangents of `l` into the gradient entries `start..start + chunk.len()`,
/// after checking all of them (nothing is written if one is not finite).
pub(super) fn write_lanes<const K: usize>(
    l: &Dual<K>,
    chunk: &mut [f32],
    start: usize,
) -> Result<(), Error> {
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
    check_len("gradient", S::PARAMS + problem.noise_params(), grad.len())?;
    check_method::<M>(<S as Sde<Dual<K>, D>>::NOISE)?;
    problem.check_starts(starts.clone())?;
    let (grad, noise_grad) = grad.split_at_mut(S::PARAMS);
    let passes = grad.len().div_ceil(K).max(1);
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, passes);
    let rows = problem.window;
    // Pass p's result (the loss value, noise cotangents and count of pass 0, or the error)
    // at index p.
    type PassOutcome<const D: usize> = Result<(f32, [f32; D], usize), Error>;
    let mut outcomes: std::vec::Vec<PassOutcome<D>> = std::vec![Ok((0.0, [0.0; D], 0)); passes];
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
                            .and_then(|(l, bar, count)| {
                                if pass_start == 0 {
                                    finite_loss(l.v)?; // checked before the lanes, as serially
                                }
                                write_lanes(&l, chunk, pass_start)?;
                                Ok((l.v, bar, count))
                            });
                }
            });
        }
    });
    let mut value = f32::NAN;
    for (p, outcome) in outcomes.into_iter().enumerate() {
        let (v, bar, count) = outcome?;
        if p == 0 {
            value = finite_loss(v)?;
            problem.write_noise_gradient(&bar, count, noise_grad);
        }
    }
    check_noise_gradient(noise_grad, S::PARAMS)?;
    Ok(value)
}

/// The series loss over the windows starting at `starts`, without derivatives (one
/// ensemble per window on `f32`; bit-identical to the value
/// [`Forward`](crate::grad::Forward) returns). `stats`: at least [`SeriesProblem::stats_len`]
/// rows. Errors as [`Forward`](crate::grad::Forward).
///
/// ```
/// # use tinysde::solve::EulerMaruyama;
/// # use tinysde::train::{Series, SeriesProblem};
/// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
/// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
/// # let series = Series::new(&times, &values)?;
/// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::train::series_loss_value;
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let mut model = Model::default();
/// model.write_params(&[-0.5, 0.0, 0.0, 0.2])?;
/// let mut stats = [[0.0f32; 1]; 2];
/// let nll = series_loss_value(&problem, &model, &Brownian::new(1), problem.all_windows(), &mut stats)?;
/// assert!(nll.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
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
        let u0 = problem.start_value(s);
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
