//! What a [`Trainer`](super::Trainer) fits, as a value: [`EnsembleFit`] (an ensemble
//! [`Problem`] and a [`Loss`] of its statistics) or [`SeriesFit`] (windows of one observed
//! series). Both implement [`Fit`] (sizes, the flat parameter vector, the window) and
//! [`FitGradient`] (one iteration's loss and gradient in a [`Mode`]), so the one training
//! loop drives either.

use crate::error::{Error, NoiseKind};
use crate::grad::{Ensemble, Loss, Mode, Problem, Scratch, SeriesWindows};
use crate::nn::Parameters;
use crate::noise::Brownian;
use crate::solve::{Checkpoints, Method};

use super::schedule::iteration_seed;
use super::series::{check_method, Batch, SeriesProblem};

/// One training iteration as a fit sees it: its number (counting from 0 over the trainer's
/// life) and its Brownian path (from [`NoiseMode`](super::NoiseMode)).
///
/// ```
/// use tinysde::noise::Brownian;
/// use tinysde::train::{iteration_seed, Iteration, NoiseMode};
/// // What the trainer passes for iteration 3 with fresh noise from seed 0:
/// let it = Iteration { number: 3, noise: NoiseMode::Fresh { seed: 0 }.brownian(3) };
/// assert_eq!(it.noise, Brownian::new(iteration_seed(0, 3)));
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iteration {
    /// The iteration's number.
    pub number: u32,
    /// The noise every pass of this iteration replays.
    pub noise: Brownian,
}

/// What a [`Trainer`](super::Trainer) fits for a model `S`: the length of the flat
/// parameter vector it trains (the model's parameters, then anything else trained, such as
/// an ensemble's initial state), the scratch its gradients need, and the window in use.
/// Implemented by [`EnsembleFit`] and [`SeriesFit`].
///
/// ```
/// use tinysde::grad::Problem;
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// use tinysde::train::{EnsembleFit, Fit, MeanSquaredError};
///
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// let problem = Problem::new(solver, [1.5], 8, &times)?.with_u0_gradient(true);
/// let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
/// assert_eq!(Fit::<Model, 1>::params_len(&fit), Model::PARAMS + 1); // and u0
/// assert_eq!(Fit::<Model, 1>::window(&fit), 2);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait Fit<S, const D: usize> {
    /// The flat parameter vector's length.
    fn params_len(&self) -> usize;
    /// The rows of statistics scratch every gradient needs.
    fn stats_len(&self) -> usize;
    /// The rows of tape reverse mode needs with `checkpoints`.
    fn tape_len(&self, checkpoints: Checkpoints) -> usize;
    /// All the save times (ensemble) or observations per window (series): the window of
    /// plain training.
    fn window(&self) -> usize;
    /// Uses the first `window` save times (a growing-window stage; errors for a window out
    /// of range, nothing changed).
    fn set_window(&mut self, window: usize) -> Result<(), Error>;
    /// [`Error::UnsupportedNoise`] unless the fit's method supports `noise`.
    fn check_noise(&self, noise: NoiseKind) -> Result<(), Error>;
    /// Copies the model's parameters (and anything else trained) into `params`
    /// (of [`params_len`](Fit::params_len) entries).
    fn read_params(&self, model: &S, params: &mut [f32]);
    /// Writes `params` (of [`params_len`](Fit::params_len) entries) into the model (and
    /// anything else trained).
    fn write_params(&mut self, model: &mut S, params: &[f32]);
}

/// A [`Fit`] whose loss and gradient the mode `Md` computes with `Dual<K>` scratch.
///
/// ```
/// # use tinysde::grad::Problem;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::{EnsembleFit, MeanSquaredError};
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// use tinysde::grad::{Forward, Scratch};
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::train::{FitGradient, Iteration};
/// use tinysde::{Dual, Real};
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
/// let mut stats = [[Dual::<4>::ZERO; 1]; 4];
/// let mut grad = [0.0f32; Model::PARAMS];
/// let it = Iteration { number: 0, noise: Brownian::new(1) };
/// let loss = fit.loss_and_gradient(&Model::default(), Forward, it, &mut Scratch::new(&mut stats, &mut []), &mut grad)?;
/// assert!(loss.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait FitGradient<S, Md, const K: usize, const D: usize>: Fit<S, D> {
    /// The loss of `model` at `iteration` and its gradient into `grad`
    /// ([`Fit::params_len`] entries), as [`loss_and_gradient`](crate::grad::loss_and_gradient).
    fn loss_and_gradient(
        &self,
        model: &S,
        mode: Md,
        iteration: Iteration,
        scratch: &mut Scratch<'_, K, D>,
        grad: &mut [f32],
    ) -> Result<f32, Error>;
}

/// An ensemble fit: `loss` of the statistics of `problem`'s ensemble, each iteration on its
/// own noise; with [`Problem::with_u0_gradient`] the initial state is trained too (after
/// the model's parameters in the flat vector). A growing-window schedule
/// ([`Trainer::run_schedule`](super::Trainer::run_schedule)) uses the first save times.
///
/// ```
/// use tinysde::grad::Problem;
/// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// use tinysde::train::{EnsembleFit, MeanSquaredError};
///
/// let times = [0.5, 1.0];
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// let problem = Problem::new(solver, [1.5], 8, &times)?;
/// let data = [[1.0], [0.8], [0.7]]; // one row too many
/// assert!(EnsembleFit::new(problem, MeanSquaredError::new(&data)?).is_err());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct EnsembleFit<'a, M, L, const D: usize> {
    problem: Problem<'a, M, D>,
    loss: L,
}

impl<'a, M: Method, L: Loss<D>, const D: usize> EnsembleFit<'a, M, L, D> {
    /// `loss` of `problem`'s ensemble (errors: the loss rejects the save times, for the
    /// built-in losses one data row per save time).
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{EnsembleFit, MeanSquaredError};
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// assert_eq!(fit.problem().save_times(), &times);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(problem: Problem<'a, M, D>, loss: L) -> Result<Self, Error> {
        loss.check(problem.save_times().len())?;
        Ok(Self { problem, loss })
    }
}

impl<'a, M: Method, L, const D: usize> EnsembleFit<'a, M, L, D> {
    /// The problem (its initial state follows training when it is trained).
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{EnsembleFit, MeanSquaredError};
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// let fit = EnsembleFit::new(problem.with_u0_gradient(true), MeanSquaredError::new(&data)?)?;
    /// assert!(fit.problem().u0_gradient());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn problem(&self) -> &Problem<'a, M, D> {
        &self.problem
    }
    /// The loss.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{EnsembleFit, MeanSquaredError};
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// assert_eq!(fit.loss().data(), &data);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn loss(&self) -> &L {
        &self.loss
    }
    /// Changes the number of trajectories per iteration (`>= 1`; unchanged on error).
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{EnsembleFit, MeanSquaredError};
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// let mut fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// assert!(fit.set_trajectories(0).is_err());
    /// fit.set_trajectories(32)?;
    /// assert_eq!(fit.problem().trajectories(), 32);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn set_trajectories(&mut self, trajectories: usize) -> Result<(), Error> {
        self.problem.set_trajectories(trajectories)
    }
}

impl<M: Method, L, S: Parameters, const D: usize> Fit<S, D> for EnsembleFit<'_, M, L, D> {
    fn params_len(&self) -> usize {
        self.problem.gradient_len(S::PARAMS)
    }
    fn stats_len(&self) -> usize {
        self.problem.stats_len()
    }
    fn tape_len(&self, checkpoints: Checkpoints) -> usize {
        crate::grad::reverse::tape_len(&self.problem, checkpoints)
    }
    fn window(&self) -> usize {
        self.problem.save_times().len()
    }
    fn set_window(&mut self, window: usize) -> Result<(), Error> {
        self.problem.set_window(window)
    }
    fn check_noise(&self, noise: NoiseKind) -> Result<(), Error> {
        check_method::<M>(noise)
    }
    fn read_params(&self, model: &S, params: &mut [f32]) {
        let (p, u) = crate::nn::split_at_most_mut(params, S::PARAMS);
        model.read_unchecked(p);
        for (dst, src) in u.iter_mut().zip(self.problem.u0()) {
            *dst = src;
        }
    }
    fn write_params(&mut self, model: &mut S, params: &[f32]) {
        let (p, u) = crate::nn::split_at_most(params, S::PARAMS);
        model.write_unchecked(p);
        if self.problem.u0_gradient() {
            self.problem.set_u0_unchecked(u);
        }
    }
}

impl<M, L, S, Md, const K: usize, const D: usize> FitGradient<S, Md, K, D>
    for EnsembleFit<'_, M, L, D>
where
    M: Method,
    S: Parameters,
    Md: for<'x> Mode<Ensemble<'x, M, L, Brownian, D>, S, K, D>,
{
    fn loss_and_gradient(
        &self,
        model: &S,
        mode: Md,
        iteration: Iteration,
        scratch: &mut Scratch<'_, K, D>,
        grad: &mut [f32],
    ) -> Result<f32, Error> {
        let objective = Ensemble::new(&self.problem, &self.loss, &iteration.noise);
        mode.loss_and_gradient(&objective, model, scratch, grad)
    }
}

/// A series fit: each iteration a batch of the [`SeriesProblem`]'s windows, chosen by
/// [`SeriesProblem::batch`] from seed [`iteration_seed`]`(window_seed, iteration)`, on the
/// iteration's noise. The flat parameters are the model's only. With a batch smaller than
/// the series, the trainer's "best" compares losses of different batches (a noisy record):
/// score the final model on [`SeriesProblem::all_windows`].
///
/// ```
/// use tinysde::solve::EulerMaruyama;
/// use tinysde::train::{Series, SeriesFit, SeriesProblem};
///
/// let times = [0.0, 0.5, 1.0, 1.5];
/// let values = [[1.0], [0.8], [0.7], [0.65]];
/// let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 16)?;
/// let fit = SeriesFit::new(problem).with_window_seed(7);
/// assert_eq!(fit.window_seed(), 7);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesFit<'a, M, const D: usize> {
    problem: SeriesProblem<'a, M, D>,
    window_seed: u64,
}

impl<'a, M, const D: usize> SeriesFit<'a, M, D> {
    /// The windows of `problem`, window seed 0.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesFit, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5];
    /// # let values = [[1.0], [0.8], [0.7], [0.65]];
    /// # let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 16)?;
    /// let fit = SeriesFit::new(problem);
    /// assert_eq!(fit.window_seed(), 0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(problem: SeriesProblem<'a, M, D>) -> Self {
        Self {
            problem,
            window_seed: 0,
        }
    }
    /// Chooses each iteration's windows from `seed` instead.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesFit, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5];
    /// # let values = [[1.0], [0.8], [0.7], [0.65]];
    /// # let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 16)?;
    /// assert_ne!(problem.batch(1).count(), 0);
    /// let fit = SeriesFit::new(problem.with_batch(1)?).with_window_seed(42);
    /// assert_eq!(fit.window_seed(), 42);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[must_use]
    pub fn with_window_seed(self, seed: u64) -> Self {
        Self {
            window_seed: seed,
            ..self
        }
    }
    /// The problem.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesFit, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5];
    /// # let values = [[1.0], [0.8], [0.7], [0.65]];
    /// # let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 16)?;
    /// let fit = SeriesFit::new(problem);
    /// assert_eq!(fit.problem().trajectories(), 16);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn problem(&self) -> &SeriesProblem<'a, M, D> {
        &self.problem
    }
    /// The seed of the window choice.
    ///
    /// ```
    /// # use tinysde::solve::EulerMaruyama;
    /// # use tinysde::train::{Series, SeriesFit, SeriesProblem};
    /// # let times = [0.0, 0.5, 1.0, 1.5];
    /// # let values = [[1.0], [0.8], [0.7], [0.65]];
    /// # let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 16)?;
    /// assert_eq!(SeriesFit::new(problem).with_window_seed(9).window_seed(), 9);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn window_seed(&self) -> u64 {
        self.window_seed
    }
}

impl<M: Method + Copy, S: Parameters, const D: usize> Fit<S, D> for SeriesFit<'_, M, D> {
    fn params_len(&self) -> usize {
        S::PARAMS + self.problem.noise_params()
    }
    fn stats_len(&self) -> usize {
        self.problem.stats_len()
    }
    fn tape_len(&self, checkpoints: Checkpoints) -> usize {
        self.problem.reverse_tape_len(S::PARAMS, checkpoints)
    }
    fn window(&self) -> usize {
        self.problem.window()
    }
    fn set_window(&mut self, window: usize) -> Result<(), Error> {
        if window == self.problem.window() {
            Ok(())
        } else {
            Err(Error::OutOfRange {
                what: "a series fit keeps its window length",
            })
        }
    }
    fn check_noise(&self, noise: NoiseKind) -> Result<(), Error> {
        check_method::<M>(noise)
    }
    fn read_params(&self, model: &S, params: &mut [f32]) {
        model.read_unchecked(params);
        // A learned observation noise's ln sd after the model's (none otherwise).
        let noise = self.problem.log_noise();
        let extra = params.get_mut(S::PARAMS..).unwrap_or(&mut []);
        for (p, &l) in extra.iter_mut().zip(&noise) {
            *p = l;
        }
    }
    fn write_params(&mut self, model: &mut S, params: &[f32]) {
        model.write_unchecked(params);
        self.problem
            .set_log_noise(params.get(S::PARAMS..).unwrap_or(&[]));
    }
}

impl<M, S, Md, const K: usize, const D: usize> FitGradient<S, Md, K, D> for SeriesFit<'_, M, D>
where
    M: Method + Copy,
    S: Parameters,
    Md: for<'x> Mode<SeriesWindows<'x, M, Brownian, Batch<'x, D>, D>, S, K, D>,
{
    fn loss_and_gradient(
        &self,
        model: &S,
        mode: Md,
        iteration: Iteration,
        scratch: &mut Scratch<'_, K, D>,
        grad: &mut [f32],
    ) -> Result<f32, Error> {
        let seed = iteration_seed(self.window_seed, iteration.number);
        let objective =
            SeriesWindows::new(&self.problem, &iteration.noise, self.problem.batch(seed));
        mode.loss_and_gradient(&objective, model, scratch, grad)
    }
}
