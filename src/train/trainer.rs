//! The one trainer: iterations of gradient and update, a callback, best-parameter
//! tracking, per-iteration noise and the growing-window schedule, for either fit
//! ([`EnsembleFit`], [`SeriesFit`](super::SeriesFit)), in any gradient mode, its state in
//! the caller's slices ([`Trainer::new`]) or owned ([`Trainer::owned`], feature `std`).

use core::ops::ControlFlow;

use super::fit::{EnsembleFit, Fit, FitGradient, Iteration};
use super::optim::{check_clip_norm, clip_global_norm, Optimizer};
use super::schedule::{GrowingWindow, NoiseMode};
use crate::error::{check_len, Error};
#[cfg(feature = "std")]
use crate::grad::Threads;
use crate::grad::{Forward, Scratch, TapeNeed};
use crate::nn::Parameters;
use crate::sde::Sde;

#[cfg(feature = "std")]
use super::training::{IntoOptimizer, TRAINING_LANES};

/// Training options.
///
/// ```
/// use tinysde::train::{NoiseMode, TrainConfig};
/// let config = TrainConfig { noise: NoiseMode::Fixed { seed: 1 }, clip_norm: Some(10.0) };
/// assert_eq!(TrainConfig::default().clip_norm, None);
/// # let _ = config;
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrainConfig {
    /// Which Brownian path each iteration uses (default: a fresh one per iteration, from
    /// base seed 0).
    pub noise: NoiseMode,
    /// If set, gradients are scaled to at most this global norm (finite, normal, `> 0`) before
    /// each update.
    pub clip_norm: Option<f32>,
}

/// The caller's buffers of a [`Trainer::new`]. With `N` the flat parameter count
/// ([`Fit::params_len`]: the model's parameters, then the initial state if it is trained):
///
/// - `params`, `grad`, `best`: `N` entries each;
/// - `scratch`: the gradient's [`Scratch`]: statistics rows of `Dual<K>` (its `K` sets how
///   many parameters each forward pass differentiates) and, for a serial reverse mode, a
///   tape ([`Fit::stats_len`], [`Fit::tape_len`]).
///
/// ```
/// use tinysde::grad::Scratch;
/// use tinysde::train::Workspace;
/// use tinysde::{Dual, Real};
/// let (mut params, mut grad, mut best) = ([0.0f32; 4], [0.0f32; 4], [0.0f32; 4]);
/// let (mut stats, mut tape) = ([[Dual::<4>::ZERO; 1]; 4], [[0.0f32; 1]; 40]);
/// let ws = Workspace {
///     params: &mut params,
///     grad: &mut grad,
///     best: &mut best,
///     scratch: Scratch::new(&mut stats, &mut tape), // `&mut []` for forward mode
/// };
/// # let _ = ws;
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Debug)]
pub struct Workspace<'a, const K: usize, const D: usize> {
    /// The current flat parameters (the model is kept equal to them).
    pub params: &'a mut [f32],
    /// The last gradient.
    pub grad: &'a mut [f32],
    /// The best parameters seen (see [`Trainer::best`]).
    pub best: &'a mut [f32],
    /// The gradient's scratch.
    pub scratch: Scratch<'a, K, D>,
}

mod sealed {
    /// Only the crate's storages are [`Storage`](super::Storage)s.
    pub trait Sealed {}
}

/// Where a [`Trainer`]'s model and flat vectors live: [`Borrowed`] (the caller's, from a
/// [`Workspace`]) or [`Owned`] (feature `std`). Sealed.
///
/// ```
/// # use core::ops::ControlFlow;
/// # use tinysde::grad::Problem;
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
/// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
/// use tinysde::train::Storage;
/// fn parameter_count<St: Storage>(state: &St) -> usize {
///     state.params().len()
/// }
/// # let _ = parameter_count::<tinysde::train::Owned<Model>>;
/// assert_eq!(trainer.params().len(), Model::PARAMS);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait Storage: sealed::Sealed {
    /// The model trained.
    type Model;
    /// The model.
    fn model(&self) -> &Self::Model;
    /// The current flat parameters.
    fn params(&self) -> &[f32];
    /// The last gradient.
    fn grad(&self) -> &[f32];
    /// The best parameters seen.
    fn best(&self) -> &[f32];
    /// All four, mutably.
    fn parts(&mut self) -> Held<'_, Self::Model>;
}

/// A [`Storage`]'s model and flat vectors, borrowed mutably at once.
///
/// ```
/// use tinysde::train::{Held, Owned, Storage};
/// fn zero_gradient<S>(held: Held<'_, S>) {
///     held.grad.fill(0.0);
/// }
/// # let _ = zero_gradient::<f32>;
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Debug)]
pub struct Held<'s, S> {
    /// The model.
    pub model: &'s mut S,
    /// The current flat parameters.
    pub params: &'s mut [f32],
    /// The last gradient.
    pub grad: &'s mut [f32],
    /// The best parameters seen.
    pub best: &'s mut [f32],
}

/// The caller's model and slices ([`Trainer::new`]).
///
/// ```
/// # use tinysde::grad::{Problem, Scratch};
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::{Adam, AdamConfig, EnsembleFit, MeanSquaredError, TrainConfig, Trainer, Workspace};
/// # use tinysde::{Dual, Real};
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let fit = EnsembleFit::new(Problem::new(solver, [1.5], 8, &times)?, MeanSquaredError::new(&data)?)?;
/// let mut model = Model::default();
/// let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; 4], [0.0; 4])?;
/// let (mut params, mut grad, mut best) = ([7.0; 4], [7.0; 4], [7.0; 4]);
/// use tinysde::grad::Forward;
/// use tinysde::train::Borrowed;
/// let mut stats = [[Dual::<4>::ZERO; 1]; 4];
/// let ws = Workspace { params: &mut params, grad: &mut grad, best: &mut best, scratch: Scratch::new(&mut stats, &mut []) };
/// let trainer: Trainer<'_, _, _, Forward, Borrowed<'_, Model>, 4, 1> =
///     Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws)?;
/// # let _ = trainer;
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Debug)]
pub struct Borrowed<'a, S> {
    model: &'a mut S,
    params: &'a mut [f32],
    grad: &'a mut [f32],
    best: &'a mut [f32],
}

impl<S> sealed::Sealed for Borrowed<'_, S> {}

impl<S> Storage for Borrowed<'_, S> {
    type Model = S;
    fn model(&self) -> &S {
        self.model
    }
    fn params(&self) -> &[f32] {
        self.params
    }
    fn grad(&self) -> &[f32] {
        self.grad
    }
    fn best(&self) -> &[f32] {
        self.best
    }
    fn parts(&mut self) -> Held<'_, S> {
        Held {
            model: self.model,
            params: self.params,
            grad: self.grad,
            best: self.best,
        }
    }
}

/// An owned model and vectors ([`Trainer::owned`], feature `std`).
///
/// ```
/// # use core::ops::ControlFlow;
/// # use tinysde::grad::Problem;
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
/// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
/// use tinysde::train::Owned;
/// let trainer: Trainer<'_, _, _, _, Owned<Model>, 8, 1> = trainer;
/// # let _ = trainer;
/// # Ok::<(), tinysde::Error>(())
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct Owned<S> {
    model: S,
    params: std::vec::Vec<f32>,
    grad: std::vec::Vec<f32>,
    best: std::vec::Vec<f32>,
}

#[cfg(feature = "std")]
impl<S> sealed::Sealed for Owned<S> {}

#[cfg(feature = "std")]
impl<S> Storage for Owned<S> {
    type Model = S;
    fn model(&self) -> &S {
        &self.model
    }
    fn params(&self) -> &[f32] {
        &self.params
    }
    fn grad(&self) -> &[f32] {
        &self.grad
    }
    fn best(&self) -> &[f32] {
        &self.best
    }
    fn parts(&mut self) -> Held<'_, S> {
        Held {
            model: &mut self.model,
            params: &mut self.params,
            grad: &mut self.grad,
            best: &mut self.best,
        }
    }
}

#[cfg(feature = "std")]
impl<S> Owned<S> {
    /// `model` and zeroed vectors of `n` entries.
    pub(super) fn new(model: S, n: usize) -> Self {
        Self {
            model,
            params: std::vec![0.0; n],
            grad: std::vec![0.0; n],
            best: std::vec![0.0; n],
        }
    }
    /// The model.
    pub(super) fn into_model(self) -> S {
        self.model
    }
}

/// What the callback sees after each loss evaluation.
///
/// ```
/// # use core::ops::ControlFlow;
/// # use tinysde::grad::Problem;
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
/// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
/// let mut seen = Vec::new();
/// trainer.run(3, |p| {
///     seen.push((p.iteration, p.stage, p.window));
///     ControlFlow::Continue(())
/// })?;
/// assert_eq!(seen, [(0, 0, 2), (1, 0, 2), (2, 0, 2)]);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Progress {
    /// The iteration number (counting from 0 over the trainer's whole life).
    pub iteration: u32,
    /// The loss at the parameters before this iteration's update.
    pub loss: f32,
    /// The stage of a growing-window schedule (0 for plain training).
    pub stage: u32,
    /// The number of save times in use.
    pub window: usize,
}

/// The outcome of [`Trainer::run`] or [`Trainer::run_schedule`].
///
/// ```
/// # use core::ops::ControlFlow;
/// # use tinysde::grad::Problem;
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
/// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
/// let report = trainer.run(3, |_| ControlFlow::Continue(()))?;
/// assert_eq!(report.iterations, 3);
/// assert!(!report.stopped && report.best_loss <= report.last_loss);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Report {
    /// Loss evaluations made by this call.
    pub iterations: u32,
    /// The last loss evaluated (NaN if none).
    pub last_loss: f32,
    /// The best loss on the final window (see [`Trainer::best`]).
    pub best_loss: f32,
    /// Whether the callback stopped training.
    pub stopped: bool,
}

/// Trains a model: each iteration computes the loss of the [`Fit`] and its gradient in the
/// trainer's mode ([`loss_and_gradient`](crate::grad::loss_and_gradient): [`Forward`],
/// [`Reverse`](crate::grad::Reverse), [`Cheaper`](crate::grad::Cheaper),
/// [`GradientMode`](crate::grad::GradientMode), `Threads(..)`) on that iteration's noise,
/// reports [`Progress`] to a callback (which may stop training), records the best
/// parameters, and updates the parameters with the optimizer (after optional clipping).
/// The one loop for every fit, mode and storage.
///
/// Its state lives in the caller's buffers ([`Trainer::new`] with a [`Workspace`]: no
/// allocation, `no_std`) or is owned ([`Trainer::owned`], feature `std`: the model, the
/// optimizer from a configuration, every buffer); the accessors are the same.
///
/// **Best parameters.** The trainer keeps a copy of the parameters with the lowest loss
/// evaluated so far. Losses on different windows are not comparable, so when the window
/// changes the record restarts: after a growing-window schedule the best parameters are the
/// best ones on the full data.
///
/// **Errors.** The constructors, [`with_mode`](Trainer::with_mode),
/// [`with_config`](Trainer::with_config) and the `run` methods check all inputs first and
/// change nothing on error. A loss or gradient that becomes non-finite stops training with
/// [`Error::NonFiniteGradient`] naming the iteration; a solve that blows up stops it with
/// [`Error::Diverged`]; an optimizer update that would overflow stops it with
/// [`Error::UpdateOverflow`] (the model and `params` keep the last finite parameters).
/// In every case the best parameters so far remain and [`Trainer::restore_best`] puts
/// them back into the model; the gradient then holds what
/// [`loss_and_gradient`](crate::grad::loss_and_gradient) documents for its errors.
///
/// ```
/// use core::ops::ControlFlow;
/// use tinysde::grad::{Problem, Reverse, Scratch};
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// use tinysde::train::{Adam, AdamConfig, EnsembleFit, MeanSquaredError, TrainConfig, Trainer, Workspace};
/// use tinysde::{Dual, Real};
///
/// // du = (a u + b) dt + (c u + d) dW, fitted to a decay toward 1
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// const P: usize = Model::PARAMS;
/// let mut model = Model::default();
/// let times = [0.5, 1.0, 1.5, 2.0];
/// let data = [[1.4], [1.2], [1.1], [1.05]];
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 2.0, 40)?);
/// let problem = Problem::new(solver, [2.0], 8, &times)?;
/// let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
/// let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; P], [0.0; P])?;
/// let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
/// let (mut stats, mut tape) = ([[Dual::<4>::ZERO; 1]; 8], [[0.0f32; 1]; 32]);
/// let scratch = Scratch::new(&mut stats, &mut tape);
/// let ws = Workspace { params: &mut params, grad: &mut grad, best: &mut best, scratch };
/// let mut trainer = Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws)?
///     .with_mode(Reverse(Checkpoints::Sqrt))?; // forward mode without this line
/// let mut first = None;
/// let report = trainer.run(200, |p| {
///     first.get_or_insert(p.loss);
///     ControlFlow::Continue(())
/// })?;
/// assert!(report.best_loss < first.unwrap() / 10.0);
/// trainer.restore_best();
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Debug)]
pub struct Trainer<'a, F, O, Md, St, const K: usize, const D: usize> {
    fit: F,
    optimizer: O,
    mode: Md,
    config: TrainConfig,
    state: St,
    scratch: Scratch<'a, K, D>,
    record: Record,
}

/// The iteration count and the best loss so far, with the window it was evaluated on.
#[derive(Clone, Copy, Debug)]
struct Record {
    iteration: u32,
    best_loss: f32,
    best_window: usize,
}

impl<'a, S, F, O, const K: usize, const D: usize> Trainer<'a, F, O, Forward, Borrowed<'a, S>, K, D>
where
    S: Sde<f32, D> + Parameters,
    F: Fit<S, D>,
    O: Optimizer,
{
    /// A trainer for `model` on `fit` with options `config`, in forward mode (change it
    /// with [`with_mode`](Trainer::with_mode)), its buffers the caller's.
    ///
    /// Checks, before changing anything: the buffer lengths ([`Fit::params_len`]; the
    /// scratch's statistics rows, [`Fit::stats_len`]), the optimizer's size, the method's
    /// support for the model's noise kind and the clipping norm (`K = 0` is refused at
    /// compile time). Then copies the model's parameters (and the initial state, if
    /// trained) into `params` and `best`.
    ///
    /// ```
    /// # use tinysde::grad::{Problem, Scratch};
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{Adam, AdamConfig, EnsembleFit, MeanSquaredError, TrainConfig, Trainer, Workspace};
    /// # use tinysde::{Dual, Real};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let fit = EnsembleFit::new(Problem::new(solver, [1.5], 8, &times)?, MeanSquaredError::new(&data)?)?;
    /// let mut model = Model::default();
    /// let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; 4], [0.0; 4])?;
    /// let (mut params, mut grad, mut best) = ([7.0; 4], [7.0; 4], [7.0; 4]);
    /// let mut stats = [[Dual::<4>::ZERO; 1]; 3]; // 2 rows per save time: 4 needed
    /// let ws = Workspace { params: &mut params, grad: &mut grad, best: &mut best, scratch: Scratch::new(&mut stats, &mut []) };
    /// assert!(Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws).is_err());
    /// assert_eq!(params, [7.0; 4]); // untouched
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(
        model: &'a mut S,
        optimizer: O,
        fit: F,
        config: TrainConfig,
        ws: Workspace<'a, K, D>,
    ) -> Result<Self, Error> {
        const { assert!(K > 0, "the scratch's Dual<K> needs K >= 1 lanes") };
        check_config(&config)?;
        let n = fit.params_len();
        check_len("parameters", n, ws.params.len())?;
        check_len("gradient", n, ws.grad.len())?;
        check_len("best parameters", n, ws.best.len())?;
        check_len("optimizer state", n, optimizer.num_params())?;
        ws.scratch.check(fit.stats_len(), 0)?;
        fit.check_noise(<S as Sde<f32, D>>::NOISE)?;
        let state = Borrowed {
            model,
            params: ws.params,
            grad: ws.grad,
            best: ws.best,
        };
        let mut trainer = Self::start(fit, optimizer, Forward, state, ws.scratch);
        trainer.config = config;
        Ok(trainer)
    }

    /// Gives back the workspace (the model and optimizer borrows end with the trainer).
    ///
    /// ```
    /// # use tinysde::grad::{Problem, Scratch};
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{Adam, AdamConfig, EnsembleFit, MeanSquaredError, TrainConfig, Trainer, Workspace};
    /// # use tinysde::{Dual, Real};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let fit = EnsembleFit::new(Problem::new(solver, [1.5], 8, &times)?, MeanSquaredError::new(&data)?)?;
    /// let mut model = Model::default();
    /// let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; 4], [0.0; 4])?;
    /// let (mut params, mut grad, mut best) = ([7.0; 4], [7.0; 4], [7.0; 4]);
    /// let mut stats = [[Dual::<4>::ZERO; 1]; 4];
    /// let ws = Workspace { params: &mut params, grad: &mut grad, best: &mut best, scratch: Scratch::new(&mut stats, &mut []) };
    /// let trainer = Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws)?;
    /// let ws = trainer.into_workspace();
    /// assert_eq!(ws.params, &[0.0; 4]); // the default model's parameters, read in
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn into_workspace(self) -> Workspace<'a, K, D> {
        let Borrowed {
            params, grad, best, ..
        } = self.state;
        Workspace {
            params,
            grad,
            best,
            scratch: self.scratch,
        }
    }
}

impl<'a, F, O, Md, St, const K: usize, const D: usize> Trainer<'a, F, O, Md, St, K, D>
where
    St: Storage,
    F: Fit<St::Model, D>,
{
    /// The trainer before its first iteration: the model read into `params` and `best`,
    /// the gradient zeroed.
    fn start(fit: F, optimizer: O, mode: Md, mut state: St, scratch: Scratch<'a, K, D>) -> Self {
        let held = state.parts();
        fit.read_params(held.model, held.params);
        copy(held.best, held.params);
        held.grad.fill(0.0);
        Self {
            record: Record {
                iteration: 0,
                best_loss: f32::INFINITY,
                best_window: fit.window(),
            },
            fit,
            optimizer,
            mode,
            config: TrainConfig::default(),
            state,
            scratch,
        }
    }

    /// Computes gradients in `mode` from now on: [`Forward`],
    /// [`Reverse`](crate::grad::Reverse)`(checkpoints)`, [`Cheaper`](crate::grad::Cheaper),
    /// [`GradientMode`](crate::grad::GradientMode) (chosen at run time), or any of them on
    /// threads (`Threads(mode, threads)`, feature `std`: bits independent of the thread
    /// count; forward mode's are those of the calling thread alone, reverse mode's sum the
    /// trajectories' cotangents in another order than the serial reverse mode).
    ///
    /// Errors (the trainer is dropped, nothing else changes): the caller's scratch is
    /// shorter than the mode needs ([`Fit::tape_len`] rows of tape for a serial reverse
    /// mode, on all save times, so every window of a schedule fits).
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// use tinysde::grad::Forward;
    /// let trainer = trainer.with_mode(Forward)?;
    /// assert_eq!(*trainer.mode(), Forward);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_mode<Md2: TapeNeed>(
        self,
        mode: Md2,
    ) -> Result<Trainer<'a, F, O, Md2, St, K, D>, Error> {
        let cheaper = forward_is_cheaper(self.fit.params_len(), K);
        let tape = mode
            .tape_checkpoints(cheaper)
            .map_or(0, |c| self.fit.tape_len(c));
        self.scratch.check(self.fit.stats_len(), tape)?;
        Ok(Trainer {
            fit: self.fit,
            optimizer: self.optimizer,
            mode,
            config: self.config,
            state: self.state,
            scratch: self.scratch,
            record: self.record,
        })
    }

    /// Uses `config` (noise per iteration, gradient clipping). Errors (the trainer is
    /// dropped): a clipping norm that is not finite, normal and `> 0`.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// use tinysde::train::TrainConfig;
    /// let subnormal = TrainConfig { clip_norm: Some(f32::MIN_POSITIVE / 2.0), ..TrainConfig::default() };
    /// assert!(trainer.with_config(subnormal).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_config(mut self, config: TrainConfig) -> Result<Self, Error> {
        check_config(&config)?;
        self.config = config;
        Ok(self)
    }

    /// The best parameters seen (flat, model then initial state) and their loss
    /// (`f32::INFINITY` before any iteration, when they are the starting parameters).
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// assert_eq!(trainer.best().1, f32::INFINITY); // before any iteration
    /// trainer.run(5, |_| ControlFlow::Continue(()))?;
    /// let (best, loss) = trainer.best();
    /// assert!(loss.is_finite() && best.len() == Model::PARAMS);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn best(&self) -> (&[f32], f32) {
        (self.state.best(), self.record.best_loss)
    }

    /// Puts the best parameters into `params`, the model (and the initial state, if
    /// trained).
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.run(5, |_| ControlFlow::Continue(()))?;
    /// trainer.restore_best();
    /// assert_eq!(trainer.params(), trainer.best().0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn restore_best(&mut self) {
        let held = self.state.parts();
        copy(held.params, held.best);
        self.fit.write_params(held.model, held.best);
    }

    /// A copy of the model with the best parameters seen written in (the initial state of
    /// the best parameters, if trained, is in [`best`](Trainer::best)); training is not
    /// disturbed.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.run(5, |_| ControlFlow::Continue(()))?;
    /// let best = trainer.best_model();
    /// let mut p = [0.0; Model::PARAMS];
    /// best.read_params(&mut p)?;
    /// assert_eq!(&p[..], trainer.best().0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn best_model(&self) -> St::Model
    where
        St::Model: Clone + Parameters,
    {
        let mut model = self.state.model().clone();
        let (p, _) = crate::nn::split_at_most(self.state.best(), St::Model::PARAMS);
        model.write_unchecked(p);
        model
    }

    /// The current flat parameters.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// assert_eq!(trainer.params(), &[0.0; Model::PARAMS][..]); // the default model's
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn params(&self) -> &[f32] {
        self.state.params()
    }

    /// The last gradient computed.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.run(1, |_| ControlFlow::Continue(()))?;
    /// assert!(trainer.gradient().iter().any(|g| *g != 0.0));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn gradient(&self) -> &[f32] {
        self.state.grad()
    }

    /// The model (at the current parameters).
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.run(5, |_| ControlFlow::Continue(()))?;
    /// let mut p = [1.0; Model::PARAMS];
    /// trainer.model().read_params(&mut p)?;
    /// assert_eq!(&p[..], trainer.params()); // the model follows the parameters
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn model(&self) -> &St::Model {
        self.state.model()
    }

    /// The optimizer.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// use tinysde::train::Optimizer;
    /// assert_eq!(trainer.optimizer().num_params(), Model::PARAMS);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The optimizer, for changing its learning rate or resetting it between phases.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.optimizer_mut().set_lr(0.01)?;
    /// assert_eq!(trainer.optimizer().config().lr, 0.01);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn optimizer_mut(&mut self) -> &mut O {
        &mut self.optimizer
    }

    /// The fit (an [`EnsembleFit`]'s problem has the trained initial state).
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// assert_eq!(trainer.fit().problem().trajectories(), 8);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn fit(&self) -> &F {
        &self.fit
    }

    /// The fit, for example to change an [`EnsembleFit`]'s number of trajectories.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.fit_mut().set_trajectories(16)?;
    /// assert_eq!(trainer.fit().problem().trajectories(), 16);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn fit_mut(&mut self) -> &mut F {
        &mut self.fit
    }

    /// The options.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// assert_eq!(*trainer.config(), tinysde::train::TrainConfig::default());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Changes how noise is drawn per iteration.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// use tinysde::train::NoiseMode;
    /// trainer.set_noise(NoiseMode::Fixed { seed: 7 });
    /// assert_eq!(trainer.config().noise, NoiseMode::Fixed { seed: 7 });
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn set_noise(&mut self, noise: NoiseMode) {
        self.config.noise = noise;
    }

    /// The number of iterations run so far (the next iteration's number).
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.run(4, |_| ControlFlow::Continue(()))?;
    /// trainer.run(2, |_| ControlFlow::Continue(()))?;
    /// assert_eq!(trainer.iteration(), 6);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn iteration(&self) -> u32 {
        self.record.iteration
    }

    /// How gradients are computed.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// use tinysde::grad::{Cheaper, Threads};
    /// use tinysde::solve::Checkpoints;
    /// assert_eq!(*trainer.mode(), Threads(Cheaper(Checkpoints::All), 1)); // the owned default
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn mode(&self) -> &Md {
        &self.mode
    }
}

impl<'a, F, O, Md, St, const K: usize, const D: usize> Trainer<'a, F, O, Md, St, K, D>
where
    St: Storage,
    F: FitGradient<St::Model, Md, K, D>,
    O: Optimizer,
    Md: Copy,
{
    /// Runs `iterations` iterations on the whole fit (all save times, or every window's
    /// observations). Calls continue the iteration count (and so the noise and window
    /// sequences) where the previous one stopped.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// let report = trainer.run(10, |p| {
    ///     if p.iteration == 4 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    /// })?;
    /// assert!(report.stopped);
    /// assert_eq!(report.iterations, 5);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn run<C>(&mut self, iterations: u32, mut callback: C) -> Result<Report, Error>
    where
        C: FnMut(&Progress) -> ControlFlow<()>,
    {
        let window = self.fit.window();
        let mut report = self.empty_report();
        self.read_model();
        let stage = Stage {
            number: 0,
            window,
            iterations,
        };
        self.run_stage(stage, &mut callback, &mut report)?;
        report.best_loss = self.record.best_loss;
        Ok(report)
    }

    /// Copies the model (and the initial state) into `params`.
    fn read_model(&mut self) {
        let held = self.state.parts();
        self.fit.read_params(held.model, held.params);
    }

    fn empty_report(&self) -> Report {
        Report {
            iterations: 0,
            last_loss: f32::NAN,
            best_loss: self.record.best_loss,
            stopped: false,
        }
    }

    /// The training loop (written once): one stage; returns whether the callback stopped
    /// training.
    fn run_stage<C>(
        &mut self,
        stage: Stage,
        callback: &mut C,
        report: &mut Report,
    ) -> Result<bool, Error>
    where
        C: FnMut(&Progress) -> ControlFlow<()>,
    {
        for _ in 0..stage.iterations {
            let number = self.record.iteration;
            self.fit.set_window(stage.window)?;
            let iteration = Iteration {
                number,
                noise: self.config.noise.brownian(number),
            };
            let held = self.state.parts();
            let result = self.fit.loss_and_gradient(
                held.model,
                self.mode,
                iteration,
                &mut self.scratch,
                held.grad,
            );
            let value = match result {
                Ok(v) => v,
                Err(Error::NonFiniteLoss | Error::NonFiniteGradientEntry { .. }) => {
                    return Err(Error::NonFiniteGradient { iteration: number });
                }
                Err(e) => return Err(e),
            };
            let record = &mut self.record;
            if record.best_window != stage.window || value < record.best_loss {
                record.best_loss = value;
                record.best_window = stage.window;
                copy(held.best, held.params);
            }
            record.iteration = record.iteration.saturating_add(1);
            report.iterations = report.iterations.saturating_add(1);
            report.last_loss = value;
            report.best_loss = record.best_loss;
            let progress = Progress {
                iteration: number,
                loss: value,
                stage: stage.number,
                window: stage.window,
            };
            if callback(&progress).is_break() {
                report.stopped = true;
                return Ok(true);
            }
            if let Some(c) = self.config.clip_norm {
                clip_global_norm(held.grad, c)?;
            }
            self.optimizer.step(held.params, held.grad)?;
            if held.params.iter().any(|p| !p.is_finite()) {
                // Only an absurd learning rate gets here; keep the model (and `params`)
                // at the last finite parameters.
                self.fit.read_params(held.model, held.params);
                return Err(Error::NonFiniteGradient { iteration: number });
            }
            self.fit.write_params(held.model, held.params);
        }
        Ok(false)
    }
}

/// One stage of training: its number, its window and its iterations.
#[derive(Clone, Copy, Debug)]
struct Stage {
    number: u32,
    window: usize,
    iterations: u32,
}

impl<'a, 'p, M, L, O, Md, St, const K: usize, const D: usize>
    Trainer<'a, EnsembleFit<'p, M, L, D>, O, Md, St, K, D>
where
    St: Storage,
    M: crate::solve::Method,
    EnsembleFit<'p, M, L, D>: FitGradient<St::Model, Md, K, D>,
    O: Optimizer,
    Md: Copy,
{
    /// Runs a growing-window schedule: for each window of [`GrowingWindow::windows`],
    /// `iters_per_stage` iterations on the first `window` save times. The schedule is
    /// validated before anything runs.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// use tinysde::train::GrowingWindow;
    /// let mut windows = Vec::new();
    /// let schedule = GrowingWindow { start: 1, add: 1, iters_per_stage: 2 };
    /// trainer.run_schedule(&schedule, |p| {
    ///     windows.push(p.window);
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!(windows, [1, 1, 2, 2]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn run_schedule<C>(
        &mut self,
        schedule: &GrowingWindow,
        mut callback: C,
    ) -> Result<Report, Error>
    where
        C: FnMut(&Progress) -> ControlFlow<()>,
    {
        let windows = schedule.windows(self.fit.problem().save_times().len())?;
        let mut report = self.empty_report();
        self.read_model();
        for (number, window) in windows.enumerate() {
            let stage = Stage {
                number: u32::try_from(number).unwrap_or(u32::MAX),
                window,
                iterations: schedule.iters_per_stage,
            };
            if self.run_stage(stage, &mut callback, &mut report)? {
                break;
            }
        }
        report.best_loss = self.record.best_loss;
        Ok(report)
    }
}

#[cfg(feature = "std")]
impl<'a, S, F, O, const D: usize>
    Trainer<'a, F, O, Threads<crate::grad::Cheaper>, Owned<S>, TRAINING_LANES, D>
where
    S: Sde<f32, D> + Parameters,
    F: Fit<S, D>,
    O: Optimizer,
{
    /// A trainer that owns everything (feature `std`): `model`, the optimizer made from
    /// `optimizer` (a configuration such as [`AdamConfig`](super::AdamConfig), its state
    /// allocated to the fit's size, or an optimizer of the right size), every buffer, the
    /// cheaper gradient mode (`Threads(Cheaper(Checkpoints::All), 1)`: reverse mode on
    /// lanes unless forward mode's estimate is lower, see [`forward_is_cheaper`]) and
    /// default [`TrainConfig`]; `Dual<`[`TRAINING_LANES`]`>` scratch, sized on first use.
    ///
    /// Errors: the method does not support the model's noise kind, an invalid optimizer
    /// configuration or size.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use tinysde::grad::{loss_value, Problem};
    /// use tinysde::nn::{Dense, Identity, Tanh};
    /// use tinysde::noise::Brownian;
    /// use tinysde::sde::NeuralSde;
    /// use tinysde::solve::{Sosri, Solver, TimeGrid};
    /// use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    ///
    /// type Model = NeuralSde<(Dense<1, 8, Tanh>, Dense<8, 1, Identity>), Dense<1, 1, Identity>>;
    /// let mut model = Model::default();
    /// model.init(&mut tinysde::noise::rng_from_seed(1), tinysde::nn::InitScheme::GlorotUniform)?;
    /// let times = [0.5, 1.0, 1.5, 2.0];
    /// let data = [[1.4], [1.2], [1.1], [1.05]];
    /// let problem = Problem::new(Solver::new(Sosri, TimeGrid::new(0.0, 2.0, 20)?), [2.0], 16, &times)?;
    /// let loss = MeanSquaredError::new(&data)?;
    /// let fit = EnsembleFit::new(problem, loss)?;
    ///
    /// let mut trainer = Trainer::owned(model, fit, AdamConfig::lr(0.05))?.with_threads(0);
    /// let mut first = None;
    /// let report = trainer.run(100, |p| {
    ///     first.get_or_insert(p.loss);
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert!(report.best_loss < first.unwrap());
    ///
    /// // Evaluate the best parameters on 1000 fresh paths, without restoring them.
    /// let best = trainer.best_model();
    /// let eval = Problem::new(Solver::new(Sosri, TimeGrid::new(0.0, 2.0, 20)?), [2.0], 1000, &times)?;
    /// let mut stats = [[0.0f32; 1]; 8];
    /// let score = loss_value(&eval, &best, &Brownian::new(99), &loss, &mut stats)?;
    /// assert!(score.is_finite());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn owned<B: IntoOptimizer<Optimizer = O>>(
        model: S,
        fit: F,
        optimizer: B,
    ) -> Result<Self, Error> {
        let n = fit.params_len();
        fit.check_noise(<S as Sde<f32, D>>::NOISE)?;
        let optimizer = optimizer.into_optimizer(n)?;
        let mode = Threads(crate::grad::Cheaper(crate::solve::Checkpoints::All), 1);
        Ok(Self::start(
            fit,
            optimizer,
            mode,
            Owned::new(model, n),
            Scratch::owned(),
        ))
    }
}

#[cfg(feature = "std")]
impl<'a, S, F, O, Md, const K: usize, const D: usize> Trainer<'a, F, O, Md, Owned<S>, K, D>
where
    S: Parameters,
{
    /// The model, with the best parameters seen written in (and the training state
    /// dropped).
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// trainer.run(5, |_| ControlFlow::Continue(()))?;
    /// let best = trainer.best().0.to_vec();
    /// let model = trainer.into_best_model();
    /// let mut p = [0.0; Model::PARAMS];
    /// model.read_params(&mut p)?;
    /// assert_eq!(&p[..], &best[..]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn into_best_model(self) -> S {
        let mut state = self.state;
        let held = state.parts();
        let (p, _) = crate::nn::split_at_most(held.best, S::PARAMS);
        held.model.write_unchecked(p);
        state.into_model()
    }
}

#[cfg(feature = "std")]
impl<'a, F, O, Md, St, const K: usize, const D: usize> Trainer<'a, F, O, Threads<Md>, St, K, D> {
    /// Spreads each gradient over `threads` threads (0: as many as
    /// [`std::thread::available_parallelism`] reports; feature `std`): the bits do not
    /// depend on it.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// let trainer = trainer.with_threads(2);
    /// assert_eq!(trainer.threads(), 2);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.mode.1 = threads;
        self
    }

    /// The number of threads of the mode.
    ///
    /// ```
    /// # use core::ops::ControlFlow;
    /// # use tinysde::grad::Problem;
    /// # use tinysde::nn::{Dense, Identity, Parameters};
    /// # use tinysde::sde::NeuralSde;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::{AdamConfig, EnsembleFit, MeanSquaredError, Trainer};
    /// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let fit = EnsembleFit::new(problem, MeanSquaredError::new(&data)?)?;
    /// # let mut trainer = Trainer::owned(Model::default(), fit, AdamConfig::lr(0.05))?;
    /// assert_eq!(trainer.threads(), 1); // the owned default
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn threads(&self) -> usize {
        self.mode.1
    }
}

/// Checks a [`TrainConfig`]: the clipping norm, if any, is finite, normal and `> 0`.
fn check_config(config: &TrainConfig) -> Result<(), Error> {
    config.clip_norm.map_or(Ok(()), check_clip_norm)
}

/// Whether forward mode's estimated cost is below reverse mode's for a gradient of `n`
/// entries computed `k` lanes at a time ([`Cheaper`](crate::grad::Cheaper) decides by it).
///
/// The estimate, in units of one `f32` ensemble solve (from `benches/gradient.rs`):
/// forward mode `ceil(N / K) * (2 + K) / 2` (a pass with K tangents costs about
/// `1 + K / 2` plain solves), reverse mode 5 (statistics, forward, recomputation and a
/// backward pass of about two). So forward mode wins only when the whole gradient fits
/// in one or two narrow passes (for example N <= K <= 6), on every grid spacing.
///
/// ```
/// use tinysde::train::forward_is_cheaper;
/// assert!(forward_is_cheaper(4, 4));
/// assert!(!forward_is_cheaper(122, 8));
/// ```
pub fn forward_is_cheaper(n: usize, k: usize) -> bool {
    let passes = n.div_ceil(k.max(1));
    passes.saturating_mul(2 + k) < 2 * 5
}

/// Copies `src` into `dst` (equal lengths, checked by the constructors); element-wise
/// rather than `copy_from_slice`, so that no length-mismatch panic path is left in the
/// trainer (the no-panic build checks it).
fn copy(dst: &mut [f32], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s;
    }
}
