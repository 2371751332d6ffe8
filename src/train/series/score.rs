//! Calibration scores of a series' window forecasts.

use crate::error::{check_len, Error};
use crate::grad::SeriesWindows;
use crate::noise::NoiseSource;
use crate::sde::Sde;
use crate::solve::Step;
use crate::train::metrics::CalibrationScore;

#[allow(
    clippy::wildcard_imports,
    reason = "the sibling pieces of the series module"
)]
use super::*;

/// Scores the model's window forecasts against the observations: for every window of
/// `windows` (a [`SeriesWindows`]: the problem, the noise and the starts), an ensemble of
/// [`SeriesProblem::trajectories`] from the window's start (the observed row, or its start
/// state's mean with [`SeriesProblem::with_start_states`]), and
/// for every present observation of the window the coverage of the central band and the
/// CRPS of the ensemble's samples, added to `score` (see [`CalibrationScore`]). With
/// `window = 1` this scores the one-step-ahead forecasts.
///
/// Scratch: `paths` of `trajectories * window` rows, `samples` of `trajectories` entries.
/// `score` is updated only if every window succeeds.
///
/// ```
/// use tinysde::grad::SeriesWindows;
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::EulerMaruyama;
/// use tinysde::train::{score_series, CalibrationScore, Series, SeriesProblem};
///
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let mut model = Model::default();
/// model.write_params(&[-0.5, 0.0, 0.0, 0.3])?; // du = -0.5 u dt + 0.3 dW
/// let times = [0.0, 0.5, 1.0, 1.5];
/// let values = [[1.0], [0.8], [0.6], [0.5]];
/// let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 64)?;
/// let noise = Brownian::new(1);
/// let windows = SeriesWindows::new(&problem, &noise, problem.all_windows());
/// let (mut paths, mut samples) = ([[0.0f32; 1]; 64], [0.0f32; 64]);
/// let mut score = CalibrationScore::new(0.9)?;
/// score_series(&windows, &model, &mut paths, &mut samples, &mut score)?;
/// assert_eq!(score.count(), 3); // three one-step-ahead forecasts
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn score_series<S, M, N, I, const D: usize>(
    windows: &SeriesWindows<'_, M, N, I, D>,
    model: &S,
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
    let (problem, noise, starts) = (windows.problem, windows.noise, windows.starts.clone());
    check_method::<M>(<S as Sde<f32, D>>::NOISE)?;
    let m = problem.trajectories;
    // `window >= 1` by construction; `max` lets the compiler see it too (no panic path in
    // `chunks_mut`).
    let l = problem.window.max(1);
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
        let u0 = problem.start_value(s);
        let shifted = Shifted {
            inner: noise,
            offset: s.wrapping_mul(m),
        };
        // Trajectory j of the window is the same draw as in the loss's ensemble.
        for (j, row) in paths.chunks_mut(l).enumerate().take(m) {
            solver.solve_job(&crate::solve::Job::new(model, &shifted, u0, saves), j, row)?;
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
