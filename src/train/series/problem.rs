//! Windows of a series to fit ([`SeriesProblem`]), the batches of starts each iteration uses
//! ([`Batch`]), and the per-window pieces the gradient passes share.

use crate::error::{check_positive, Error, NoiseKind};
use crate::lanes::Lanes;
use crate::noise::{lane_by_lane, splitmix64, Increment, NoiseSource, StepSize};
use crate::real::Real;
use crate::solve::{Method, Solver, TimeGrid};
use crate::train::loss::{check_var_floor, GaussianNll, MeanSquaredError};

#[allow(
    clippy::wildcard_imports,
    reason = "the sibling pieces of the series module"
)]
use super::*;

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
///
/// ```
/// # use tinysde::solve::EulerMaruyama;
/// # use tinysde::train::{Series, SeriesProblem};
/// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
/// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
/// # let series = Series::new(&times, &values)?;
/// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
/// let problem = problem.with_window(2)?.with_batch(2)?;
/// assert_eq!((problem.window(), problem.stats_len()), (2, 4));
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesProblem<'a, M, const D: usize> {
    pub(super) method: M,
    pub(super) series: Series<'a, D>,
    pub(super) max_step: f32,
    pub(super) trajectories: usize,
    pub(super) window: usize,
    pub(super) batch: usize,
    pub(super) objective: SeriesObjective,
    pub(super) noise: ObservationNoise<D>,
    /// Whether each window's start is an observation too (`u_start ~ N(y_start, sd^2)`,
    /// the forecaster's start from a reading): its variance `sd^2` is added to every
    /// prediction of the window (the start carried unchanged to the window's times).
    pub(super) noisy_start: bool,
    /// Where each window's ensemble starts instead of the observed row: a filter's
    /// analysis mean and variance per row ([`SeriesProblem::with_start_states`]).
    pub(super) start_states: Option<StartStates<'a, D>>,
}

/// The start distribution of every row's window: mean and variance per row and column (one
/// row per series row, all finite, variances `>= 0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct StartStates<'a, const D: usize> {
    pub(super) mean: &'a [[f32; D]],
    pub(super) var: &'a [[f32; D]],
}

/// Observation noise of a series fit: `y = u + e`, `e ~ N(0, sd[d]^2)` per column, fixed or
/// learned (log-parameterised: the trained entries are `ln sd[d]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct ObservationNoise<const D: usize> {
    /// `ln sd` per column (`-inf` for no noise).
    pub(super) log_sd: [f32; D],
    /// `sd^2` per column.
    pub(super) var: [f32; D],
    /// Whether the trainer trains `log_sd`.
    pub(super) learned: bool,
}

impl<const D: usize> ObservationNoise<D> {
    const NONE: Self = Self {
        log_sd: [f32::NEG_INFINITY; D],
        var: [0.0; D],
        learned: false,
    };

    /// The noise with `ln sd = log_sd` (finite).
    fn from_log_sd(log_sd: [f32; D], learned: bool) -> Self {
        let mut var = [0.0f32; D];
        for (v, &l) in var.iter_mut().zip(&log_sd) {
            let sd = crate::math::exp(l);
            *v = sd * sd;
        }
        Self {
            log_sd,
            var,
            learned,
        }
    }

    /// The variance the likelihood adds to each prediction: `sd^2`, twice that with a
    /// noisy start.
    pub(super) fn loss_var(&self, noisy_start: bool) -> [f32; D] {
        let mut v = self.var;
        if noisy_start {
            for x in v.iter_mut() {
                *x += *x;
            }
        }
        v
    }
}

impl<'a, M: Method + Copy, const D: usize> SeriesProblem<'a, M, D> {
    /// One-step-ahead windows (`window = 1`) of `series`, all of them per batch, scored by
    /// the Gaussian likelihood with variance floor `1e-6`, each integrated by `method` in
    /// steps of at most `max_step` (finite, `> 0`) with `trajectories >= 1` trajectories.
    /// Errors also if no row can start a window.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// assert!(SeriesProblem::new(EulerMaruyama, series, 0.0, 16).is_err()); // step must be > 0
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.window(), 1); // one step ahead
    /// # Ok::<(), tinysde::Error>(())
    /// ```
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
                var_floor: crate::train::loss::DEFAULT_VAR_FLOOR,
            },
            noise: ObservationNoise::NONE,
            noisy_start: false,
            start_states: None,
        };
        problem.check_some_start()?;
        Ok(problem)
    }

    pub(super) fn check_some_start(&self) -> Result<(), Error> {
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
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert!(problem.with_window(5).is_err()); // at most rows - 1
    /// assert_eq!(problem.with_window(3)?.all_windows().count(), 2);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// let problem = problem.with_batch(2)?;
    /// assert_eq!(problem.batch(0).count(), 2);
    /// assert!(problem.with_batch(0).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_batch(self, batch: usize) -> Result<Self, Error> {
        if batch == 0 {
            return Err(Error::OutOfRange {
                what: "batch must be >= 1 window",
            });
        }
        Ok(Self { batch, ..self })
    }

    /// The objective (a Gaussian likelihood's floor must be finite and `> 0`).
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// use tinysde::train::SeriesObjective;
    /// assert!(problem.with_objective(SeriesObjective::GaussianNll { var_floor: 0.0 }).is_err());
    /// let mse = problem.with_objective(SeriesObjective::MeanSquaredError)?;
    /// assert_eq!(mse.objective(), SeriesObjective::MeanSquaredError);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_objective(self, objective: SeriesObjective) -> Result<Self, Error> {
        if let SeriesObjective::GaussianNll { var_floor } = objective {
            check_var_floor(var_floor)?;
        }
        Ok(Self { objective, ..self })
    }

    /// Fixed observation noise: the Gaussian likelihood's predictive variance of column `d`
    /// is the ensemble's plus `sd[d]^2` (each finite, `>= 0`; zeros, the default, leave
    /// the loss as without noise, bit for bit). Not trained.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// let noisy = problem.with_observation_noise([0.1])?;
    /// assert!((noisy.observation_noise()[0] - 0.1).abs() < 1e-7);
    /// assert_eq!(noisy.noise_params(), 0); // not trained
    /// assert!(problem.with_observation_noise([f32::NAN]).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_observation_noise(self, sd: [f32; D]) -> Result<Self, Error> {
        crate::train::loss::noise_variances(sd)?;
        let mut log_sd = [0.0f32; D];
        for (l, &s) in log_sd.iter_mut().zip(&sd) {
            *l = crate::math::ln(s);
        }
        let mut noise = ObservationNoise::from_log_sd(log_sd, false);
        noise.var = crate::train::loss::noise_variances(sd)?;
        Ok(Self { noise, ..self })
    }

    /// Learned observation noise, starting from `sd` per column (each finite, `> 0`): as
    /// [`with_observation_noise`](Self::with_observation_noise), and the gradient (and a
    /// [`SeriesFit`](crate::train::SeriesFit)'s flat parameter vector) gets `D` more
    /// entries after the model's, `ln sd[d]`: the noise is fitted with the model, so the
    /// data's measurement scatter need not be explained as diffusion. The loss's gradient
    /// in `ln sd[d]` is `2 sd[d]^2` times the sum over column `d`'s observations of
    /// `d loss / d variance`.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// let learned = problem.with_learned_noise([0.1])?;
    /// assert_eq!(learned.noise_params(), 1); // ln sd, after the model's parameters
    /// assert!(problem.with_learned_noise([0.0]).is_err()); // log-parameterised: > 0
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_learned_noise(self, sd: [f32; D]) -> Result<Self, Error> {
        for &s in &sd {
            check_positive(
                s,
                "observation noise",
                "learned observation noise must be > 0",
            )?;
        }
        let mut log_sd = [0.0f32; D];
        for (l, &s) in log_sd.iter_mut().zip(&sd) {
            *l = crate::math::ln(s);
        }
        Ok(Self {
            noise: ObservationNoise::from_log_sd(log_sd, true),
            ..self
        })
    }

    /// Treats each window's start as a noisy observation too (with
    /// [`with_learned_noise`](Self::with_learned_noise) or
    /// [`with_observation_noise`](Self::with_observation_noise)): the start state is
    /// `y_start + e`, `e ~ N(0, sd^2)`, as the forecaster's ensemble starts from a reading,
    /// and the likelihood of each of the window's observations adds that variance, carried
    /// unchanged (a first-order approximation: exact for a random walk), to the paths'
    /// and the observation's own: `2 sd^2` in all. Without it a window's start is exact and
    /// one-step windows cannot tell measurement scatter from diffusion (both add to the
    /// step's variance once); with it and windows of more than one step they can (the
    /// scatter's share does not grow with the horizon), so the noise the forecaster's
    /// Kalman update uses is the one in the data. No effect without observation noise.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?.with_window(2)?;
    /// let learned = problem.with_learned_noise([0.1])?.with_noisy_start(true);
    /// assert!(learned.noisy_start());
    /// assert_eq!(learned.noise_params(), 1);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_noisy_start(mut self, noisy: bool) -> Self {
        self.noisy_start = noisy;
        self
    }

    /// Whether each window's start is a noisy observation ([`with_noisy_start`](Self::with_noisy_start)).
    pub fn noisy_start(&self) -> bool {
        self.noisy_start
    }

    /// Starts each window from a distribution over the state instead of the observed row,
    /// as a filter does: the window starting at row `s` starts every trajectory at
    /// `mean[s]`, and the Gaussian likelihood of each of its observations adds `var[s]`
    /// (per column) to the predictive variance, carried unchanged to the window's times (a
    /// first-order approximation, exact for a random walk), beside the observation noise.
    /// Meant for the analysis (the updated ensemble's mean and variance) of an ensemble
    /// Kalman filter run over the series with the current model and observation noise
    /// (`fit_csv` takes them from [`Forecaster::member_states`](crate::forecast::Forecaster::member_states)
    /// after each reading): training then scores the one-step predictions the filter makes,
    /// from where the filter is, not from the noisy reading. They are data here (constant
    /// with respect to the parameters). With `mean` the observed values and `var` zero it
    /// is the fit without them, bit for bit.
    ///
    /// Errors, the problem unchanged: `mean` or `var` not one row per series row
    /// ([`Error::Length`]), an entry not finite ([`Error::NonFinite`]), a negative variance
    /// ([`Error::OutOfRange`]).
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// let mean = [[0.95], [0.82], [0.7], [0.66], [0.6]];
    /// let var = [[0.01]; 5];
    /// let filtered = problem.with_start_states(&mean, &var)?;
    /// assert_eq!(filtered.start_state(1), Some(([0.82], [0.01])));
    /// assert!(problem.with_start_states(&mean[..4], &var[..4]).is_err()); // one per row
    /// assert!(problem.with_start_states(&mean, &[[-0.01]; 5]).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_start_states(
        self,
        mean: &'a [[f32; D]],
        var: &'a [[f32; D]],
    ) -> Result<Self, Error> {
        let rows = self.series.len();
        crate::error::check_len("start state means", rows, mean.len())?;
        crate::error::check_len("start state variances", rows, var.len())?;
        for (index, (m, v)) in mean.iter().zip(var).enumerate() {
            if m.iter().chain(v).any(|x| !x.is_finite()) {
                return Err(Error::NonFinite {
                    what: "start state",
                    index,
                });
            }
            if v.iter().any(|&x| x < 0.0) {
                return Err(Error::OutOfRange {
                    what: "start state variances must be >= 0",
                });
            }
        }
        Ok(Self {
            start_states: Some(StartStates { mean, var }),
            ..self
        })
    }

    /// The start distribution (mean, variance) of the window at row `row`, if the problem
    /// has start states ([`with_start_states`](Self::with_start_states)) and the row exists.
    pub fn start_state(&self, row: usize) -> Option<([f32; D], [f32; D])> {
        let s = self.start_states?;
        Some((*s.mean.get(row)?, *s.var.get(row)?))
    }

    /// Where the window at row `start` starts: its start state's mean, else the observed
    /// row (zeros for a row that does not exist).
    pub(super) fn start_value(&self, start: usize) -> [f32; D] {
        match self.start_states {
            Some(s) => s.mean.get(start).copied(),
            None => self.series.values.get(start).copied(),
        }
        .unwrap_or([0.0; D])
    }

    /// The variance the likelihood adds to every prediction of the window at `start`: the
    /// observation noise's ([`ObservationNoise::loss_var`]) plus the start state's.
    fn window_added_var(&self, start: usize) -> [f32; D] {
        let mut v = self.noise.loss_var(self.noisy_start);
        if let Some((_, var)) = self.start_state(start) {
            for (x, s) in v.iter_mut().zip(var) {
                *x += s;
            }
        }
        v
    }

    /// The observation noise's scale per column (zeros without noise).
    pub fn observation_noise(&self) -> [f32; D] {
        let mut sd = [0.0f32; D];
        for (s, &v) in sd.iter_mut().zip(&self.noise.var) {
            *s = crate::math::sqrt(v);
        }
        sd
    }

    /// Entries the learned noise adds to the gradient: `D` with
    /// [`with_learned_noise`](Self::with_learned_noise), else 0.
    pub fn noise_params(&self) -> usize {
        if self.noise.learned {
            D
        } else {
            0
        }
    }

    /// `ln sd` per column (the learned entries).
    pub(crate) fn log_noise(&self) -> [f32; D] {
        self.noise.log_sd
    }

    /// Sets the learned noise's `ln sd` from `log_sd` (its first `D` entries; finite values
    /// as a trainer writes them). No effect unless the noise is learned.
    pub(crate) fn set_log_noise(&mut self, log_sd: &[f32]) {
        if self.noise.learned {
            let mut l = self.noise.log_sd;
            for (x, &v) in l.iter_mut().zip(log_sd) {
                *x = v;
            }
            self.noise = ObservationNoise::from_log_sd(l, true);
        }
    }

    /// Changes the number of trajectories per window (`>= 1`).
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.with_trajectories(64)?.trajectories(), 64);
    /// assert!(problem.with_trajectories(0).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.series().len(), 5);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn series(&self) -> &Series<'a, D> {
        &self.series
    }
    /// The window length (observations after each start).
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.with_window(2)?.window(), 2);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn window(&self) -> usize {
        self.window
    }
    /// Trajectories per window.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.trajectories(), 16);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn trajectories(&self) -> usize {
        self.trajectories
    }
    /// The maximum step.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.max_step(), 0.1);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn max_step(&self) -> f32 {
        self.max_step
    }
    /// The objective.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// use tinysde::train::SeriesObjective;
    /// assert!(matches!(problem.objective(), SeriesObjective::GaussianNll { .. })); // the default
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn objective(&self) -> SeriesObjective {
        self.objective
    }
    /// Statistics scratch rows needed: `2 * window`.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.with_window(3)?.stats_len(), 6);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn stats_len(&self) -> usize {
        2 * self.window
    }

    /// The number of rows a window could start at (`len - window`), usable or not.
    pub(super) fn positions(&self) -> usize {
        self.series.len().saturating_sub(self.window)
    }

    /// Whether a window can start at row `start`: the row is fully observed and `window`
    /// rows follow it.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert!(problem.is_start(0) && problem.is_start(3));
    /// assert!(!problem.is_start(4)); // no observation after the last row
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn is_start(&self, start: usize) -> bool {
        start < self.positions() && self.series.row_present(start)
    }

    /// The windows of one loss evaluation, chosen by `seed`: every usable start in order if
    /// the batch is at least the number of rows that could start one, otherwise `batch`
    /// starts each drawn uniformly from the possible rows (by SplitMix64 of the seed and
    /// the draw's index), moved forward to the next usable row if that one is not.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// let problem = problem.with_batch(3)?;
    /// let a: Vec<usize> = problem.batch(7).collect();
    /// assert_eq!(a, problem.batch(7).collect::<Vec<_>>()); // a pure function of the seed
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
    /// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
    /// # let series = Series::new(&times, &values)?;
    /// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
    /// assert_eq!(problem.all_windows().collect::<Vec<_>>(), [0, 1, 2, 3]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
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
    pub(super) fn window_solver(&self, start: usize) -> Result<(Solver<M>, &'a [f32]), Error> {
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
    pub(super) fn targets(&self, start: usize) -> (&'a [[f32; D]], Option<&'a [[bool; D]]>) {
        let range = start + 1..=start + self.window;
        let data = self.series.values.get(range.clone()).unwrap_or(&[]);
        let mask = self.series.mask.map(|m| m.get(range).unwrap_or(&[]));
        (data, mask)
    }

    /// A window's loss sum and number of present observations.
    pub(super) fn window_sum<T: Real>(
        &self,
        start: usize,
        mean: &[[T; D]],
        var: &[[T; D]],
    ) -> (T, usize) {
        let (data, mask) = self.targets(start);
        match self.objective {
            SeriesObjective::GaussianNll { var_floor } => {
                GaussianNll::unchecked(data, mask, var_floor)
                    .with_noise_var(self.window_added_var(start))
                    .sum(mean, var)
            }
            SeriesObjective::MeanSquaredError => MeanSquaredError::unchecked(data, mask).sum(mean),
        }
    }

    /// A window's derivative of its loss sum in each column's noise variance (zeros for the
    /// squared error), from the values of its statistics.
    pub(super) fn window_noise_cotangent<T: Real<Value = f32>>(
        &self,
        start: usize,
        mean: &[[T; D]],
        var: &[[T; D]],
    ) -> [f32; D] {
        let (data, mask) = self.targets(start);
        match self.objective {
            SeriesObjective::GaussianNll { var_floor } => {
                GaussianNll::unchecked(data, mask, var_floor)
                    .with_noise_var(self.window_added_var(start))
                    .noise_cotangent(mean, var)
            }
            SeriesObjective::MeanSquaredError => [0.0; D],
        }
    }

    /// Writes the learned noise's gradient entries (`d loss / d ln sd`) from the windows'
    /// summed noise cotangents and the observation count, into `noise_grad` (its first
    /// [`noise_params`](Self::noise_params) entries).
    pub(super) fn write_noise_gradient(
        &self,
        bar: &[f32; D],
        count: usize,
        noise_grad: &mut [f32],
    ) {
        let n = count.max(1) as f32;
        for ((g, &b), &v) in noise_grad
            .iter_mut()
            .zip(bar)
            .zip(&self.noise.loss_var(self.noisy_start))
        {
            *g = b / n * (2.0 * v);
        }
    }

    /// Checks every start of `starts` before anything runs; returns how many there are.
    pub(super) fn check_starts<I: Iterator<Item = usize>>(
        &self,
        starts: I,
    ) -> Result<usize, Error> {
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

pub(super) fn bad_start() -> Error {
    Error::OutOfRange {
        what: "window start must be a fully observed row with a full window after it",
    }
}

/// The window starts of one loss evaluation: an iterator made by [`SeriesProblem::batch`]
/// or [`SeriesProblem::all_windows`]. Cloning it replays the same starts.
///
/// ```
/// # use tinysde::solve::EulerMaruyama;
/// # use tinysde::train::{Series, SeriesProblem};
/// # let times = [0.0, 0.5, 1.0, 1.5, 2.0];
/// # let values = [[1.0], [0.8], [0.7], [0.65], [0.6]];
/// # let series = Series::new(&times, &values)?;
/// let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 16)?;
/// let batch = problem.all_windows();
/// assert_eq!(batch.clone().count(), batch.count()); // cloning replays the starts
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, const D: usize> {
    pub(super) series: Series<'a, D>,
    pub(super) positions: usize,
    pub(super) all: bool,
    pub(super) remaining: usize,
    pub(super) next: usize,
    pub(super) key: u64,
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
pub(super) struct Shifted<'n, N> {
    pub(super) inner: &'n N,
    pub(super) offset: usize,
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

pub(crate) fn check_method<M: Method>(noise: NoiseKind) -> Result<(), Error> {
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
pub(super) type MeanVar<'s, T, const D: usize> = (&'s mut [[T; D]], &'s mut [[T; D]]);

/// The mean and variance halves of a statistics scratch of at least `2 n` rows.
pub(super) fn split_stats<T, const D: usize>(
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
