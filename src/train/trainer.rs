//! The trainer: iterations of gradient and update, a callback, best-parameter tracking,
//! per-iteration noise and the growing-window schedule.

use core::ops::ControlFlow;

use super::optim::{clip_global_norm, Optimizer};
use super::schedule::{GrowingWindow, NoiseMode};
use crate::dual::Dual;
use crate::error::{check_len, Error};
#[cfg(feature = "std")]
use crate::grad::reverse::REVERSE_LANES;
use crate::grad::{forward_gradient, reverse, Loss, Problem};
#[cfg(feature = "std")]
use crate::lanes::F32x;
use crate::nn::Parameters;
use crate::noise::Brownian;
use crate::sde::{Sde, SdeVjp};
use crate::solve::{Checkpoints, Method, Step, StepVjp};

/// Training options.
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

/// The buffers a [`Trainer`] works in, all provided by the caller. With `N` the flat
/// parameter count ([`Problem::gradient_len`] of the model's `PARAMS`: the model's
/// parameters, then the initial state if it is trained):
///
/// - `params`, `grad`, `best`: `N` entries each;
/// - `stats`: at least [`Problem::stats_len`] rows; its element type `Dual<K>` sets how
///   many parameters each gradient pass differentiates.
#[derive(Debug)]
pub struct Workspace<'a, const K: usize, const D: usize> {
    /// The current flat parameters (the model is kept equal to them).
    pub params: &'a mut [f32],
    /// The last gradient.
    pub grad: &'a mut [f32],
    /// The best parameters seen (see [`Trainer::best`]).
    pub best: &'a mut [f32],
    /// Scratch for the dual ensemble statistics.
    pub stats: &'a mut [[Dual<K>; D]],
}

/// What the callback sees after each loss evaluation.
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

/// Trains a model: each iteration computes the loss and its gradient by forward-mode
/// sensitivity ([`loss_and_gradient`](crate::grad::loss_and_gradient)) on that iteration's noise, reports
/// [`Progress`] to a callback (which may stop training), records the best parameters, and
/// updates the parameters with the optimizer (after optional clipping).
///
/// Nothing is allocated (except on threads: `Trainer::with_threads`, feature `std`); the
/// model and the optimizer are borrowed or owned (pass `&mut optimizer` to keep yours), the
/// buffers come in a [`Workspace`]. `Training` (feature `std`) is the same loop on a state
/// that owns everything.
///
/// **Best parameters.** The trainer keeps a copy of the parameters with the lowest loss
/// evaluated so far. Losses on different windows are not comparable, so when the window
/// changes the record restarts: after a growing-window schedule the best parameters are the
/// best ones on the full data.
///
/// **Errors.** [`Trainer::new`] and the `run` methods check all inputs first and change
/// nothing on error. A loss or gradient that becomes non-finite stops training with
/// [`Error::NonFiniteGradient`] naming the iteration; a solve that blows up stops it with
/// [`Error::Diverged`]; an optimizer update that would overflow stops it with
/// [`Error::UpdateOverflow`] (the model and `params` keep the last finite parameters).
/// In every case the best parameters so far remain in the workspace and
/// [`Trainer::restore_best`] puts them back into the model; `workspace.grad` then holds
/// what [`loss_and_gradient`](crate::grad::loss_and_gradient) documents for its errors.
///
/// ```
/// use core::ops::ControlFlow;
/// use tinysde::grad::Problem;
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// use tinysde::train::{Adam, AdamConfig, MeanSquaredError, TrainConfig, Trainer, Workspace};
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
/// let loss = MeanSquaredError::new(&data)?;
/// let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; P], [0.0; P])?;
/// let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
/// let mut stats = [[Dual::<4>::ZERO; 1]; 8];
/// let ws = Workspace { params: &mut params, grad: &mut grad, best: &mut best, stats: &mut stats };
/// let mut trainer = Trainer::new(&mut model, &mut adam, problem, loss, TrainConfig::default(), ws)?;
/// let mut first = None;
/// let report = trainer.run(200, |p| {
///     first.get_or_insert(p.loss);
///     ControlFlow::Continue(())
/// })?;
/// assert!(report.best_loss < first.unwrap() / 10.0);
/// trainer.restore_best();
/// # Ok::<(), tinysde::Error>(())
/// ```
pub struct Trainer<'a, S, M, L, O, const K: usize, const D: usize> {
    model: &'a mut S,
    optimizer: O,
    problem: Problem<'a, M, D>,
    loss: L,
    config: TrainConfig,
    ws: Workspace<'a, K, D>,
    record: Record,
    reverse: Option<ReverseMode<'a, S, M, L, K, D>>,
    #[cfg(feature = "std")]
    threaded: Option<Threaded<S, M, L, K, D>>,
}

/// The iteration count and the best loss so far, with the window it was evaluated on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Record {
    iteration: u32,
    best_loss: f32,
    best_window: usize,
}

impl Record {
    /// Before the first iteration, on `window` save times.
    pub(super) fn new(window: usize) -> Self {
        Self {
            iteration: 0,
            best_loss: f32::INFINITY,
            best_window: window,
        }
    }

    /// The next iteration's number.
    pub(super) fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The best loss so far.
    pub(super) fn best_loss(&self) -> f32 {
        self.best_loss
    }
}

/// Which way a [`Trainer`] computes its gradients (see [`Trainer::with_reverse_mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GradientMode {
    /// Forward-mode sensitivity ([`loss_and_gradient`](crate::grad::loss_and_gradient)): constant memory, cost about
    /// `ceil(N / K)` solves carrying K tangents, N the gradient's length.
    Forward,
    /// The discrete adjoint ([`Reverse`](crate::grad::Reverse)) with these checkpoints: cost
    /// about four `f32` solves whatever N, memory [`reverse::tape_len`] rows.
    Reverse(Checkpoints),
}

/// [`Reverse`](crate::grad::Reverse) for one model, method and loss, as a plain function
/// pointer: it is instantiated where the reverse-mode bounds hold
/// ([`Trainer::with_reverse_mode`]), so the trainer itself needs none of them.
type ReverseFn<S, M, L, const K: usize, const D: usize> = fn(
    &Problem<'_, M, D>,
    &S,
    &Brownian,
    &L,
    Checkpoints,
    &mut [[Dual<K>; D]],
    &mut [[f32; D]],
    &mut [f32],
) -> Result<f32, Error>;

/// The reverse-mode state of a trainer: the tape, the checkpoints and the gradient function.
struct ReverseMode<'a, S, M, L, const K: usize, const D: usize> {
    tape: &'a mut [[f32; D]],
    checkpoints: Checkpoints,
    gradient: ReverseFn<S, M, L, K, D>,
}

/// [`Threads`](crate::grad::Threads)`(`[`Forward`](crate::grad::Forward)`)` for one model,
/// method and loss (see [`ReverseFn`]).
#[cfg(feature = "std")]
type ForwardParallelFn<S, M, L, const K: usize, const D: usize> = fn(
    &Problem<'_, M, D>,
    &S,
    &Brownian,
    &L,
    &mut [[Dual<K>; D]],
    &mut [f32],
    usize,
) -> Result<f32, Error>;

/// [`Threads`](crate::grad::Threads)`(`[`Reverse`](crate::grad::Reverse)`)` for one model, method and loss.
#[cfg(feature = "std")]
type ReverseParallelFn<S, M, L, const D: usize> =
    fn(&Problem<'_, M, D>, &S, &Brownian, &L, Checkpoints, &mut [f32], usize) -> Result<f32, Error>;

/// The threaded gradient functions of a trainer and its number of threads.
#[cfg(feature = "std")]
struct Threaded<S, M, L, const K: usize, const D: usize> {
    threads: usize,
    forward: ForwardParallelFn<S, M, L, K, D>,
    reverse: ReverseParallelFn<S, M, L, D>,
}

/// What the training loop works on, borrowed from a [`Trainer`] or a
/// [`Training`](super::Training): the model, the optimizer, the problem, the loss, the
/// options, the flat parameters, gradient and best parameters, and the record.
pub(super) struct Parts<'p, 'a, S, M, L, O, const D: usize> {
    pub(super) model: &'p mut S,
    pub(super) optimizer: &'p mut O,
    pub(super) problem: &'p mut Problem<'a, M, D>,
    pub(super) loss: &'p L,
    pub(super) config: &'p TrainConfig,
    pub(super) params: &'p mut [f32],
    pub(super) grad: &'p mut [f32],
    pub(super) best: &'p mut [f32],
    pub(super) record: &'p mut Record,
}

impl<S, M, L, O, const D: usize> Parts<'_, '_, S, M, L, O, D>
where
    S: Parameters,
    M: Method,
    L: Loss<D>,
    O: Optimizer,
{
    /// Copies the model's parameters and the initial state into `params`.
    pub(super) fn read_model(&mut self) {
        let (p, u) = crate::nn::split_at_most_mut(self.params, S::PARAMS);
        self.model.read_unchecked(p);
        for (dst, src) in u.iter_mut().zip(self.problem.u0()) {
            *dst = src;
        }
    }

    /// Puts the best parameters into `params`, the model and the initial state.
    pub(super) fn restore_best(&mut self) {
        copy(self.params, self.best);
        write_model(self.model, self.problem, self.best);
    }

    /// [`Trainer::run`] with `gradient(problem, model, noise, loss, grad)`.
    pub(super) fn run<F, G>(
        &mut self,
        iterations: u32,
        mut callback: F,
        mut gradient: G,
    ) -> Result<Report, Error>
    where
        F: FnMut(&Progress) -> ControlFlow<()>,
        G: FnMut(&Problem<'_, M, D>, &S, &Brownian, &L, &mut [f32]) -> Result<f32, Error>,
    {
        let window = self.problem.save_times().len();
        let mut report = self.empty_report();
        self.read_model();
        self.run_stage(
            0,
            window,
            iterations,
            &mut callback,
            &mut gradient,
            &mut report,
        )?;
        report.best_loss = self.record.best_loss;
        Ok(report)
    }

    /// [`Trainer::run_schedule`] with `gradient` as in [`Parts::run`].
    pub(super) fn run_schedule<F, G>(
        &mut self,
        schedule: &GrowingWindow,
        mut callback: F,
        mut gradient: G,
    ) -> Result<Report, Error>
    where
        F: FnMut(&Progress) -> ControlFlow<()>,
        G: FnMut(&Problem<'_, M, D>, &S, &Brownian, &L, &mut [f32]) -> Result<f32, Error>,
    {
        let windows = schedule.windows(self.problem.save_times().len())?;
        let mut report = self.empty_report();
        self.read_model();
        for (stage, window) in windows.enumerate() {
            let stage = u32::try_from(stage).unwrap_or(u32::MAX);
            let stopped = self.run_stage(
                stage,
                window,
                schedule.iters_per_stage,
                &mut callback,
                &mut gradient,
                &mut report,
            )?;
            if stopped {
                break;
            }
        }
        report.best_loss = self.record.best_loss;
        Ok(report)
    }

    fn empty_report(&self) -> Report {
        Report {
            iterations: 0,
            last_loss: f32::NAN,
            best_loss: self.record.best_loss,
            stopped: false,
        }
    }

    /// One stage; returns whether the callback stopped training.
    fn run_stage<F, G>(
        &mut self,
        stage: u32,
        window: usize,
        iterations: u32,
        callback: &mut F,
        gradient: &mut G,
        report: &mut Report,
    ) -> Result<bool, Error>
    where
        F: FnMut(&Progress) -> ControlFlow<()>,
        G: FnMut(&Problem<'_, M, D>, &S, &Brownian, &L, &mut [f32]) -> Result<f32, Error>,
    {
        for _ in 0..iterations {
            let iteration = self.record.iteration;
            self.problem.set_window(window)?;
            let noise = self.config.noise.brownian(iteration);
            let result = gradient(self.problem, self.model, &noise, self.loss, self.grad);
            let value = match result {
                Ok(v) => v,
                Err(Error::NonFiniteLoss | Error::NonFiniteGradientEntry { .. }) => {
                    return Err(Error::NonFiniteGradient { iteration });
                }
                Err(e) => return Err(e),
            };
            let record = &mut *self.record;
            if record.best_window != window || value < record.best_loss {
                record.best_loss = value;
                record.best_window = window;
                copy(self.best, self.params);
            }
            record.iteration = record.iteration.saturating_add(1);
            report.iterations = report.iterations.saturating_add(1);
            report.last_loss = value;
            report.best_loss = record.best_loss;
            let progress = Progress {
                iteration,
                loss: value,
                stage,
                window,
            };
            if callback(&progress).is_break() {
                report.stopped = true;
                return Ok(true);
            }
            if let Some(c) = self.config.clip_norm {
                clip_global_norm(self.grad, c)?;
            }
            self.optimizer.step(self.params, self.grad)?;
            if self.params.iter().any(|p| !p.is_finite()) {
                // Only an absurd learning rate gets here; keep the model (and `params`)
                // at the last finite parameters.
                self.read_model();
                return Err(Error::NonFiniteGradient { iteration });
            }
            write_model(self.model, self.problem, self.params);
        }
        Ok(false)
    }
}

/// Writes `src` (a flat parameter vector of the right length) into the model and u0.
pub(super) fn write_model<S: Parameters, M: Method, const D: usize>(
    model: &mut S,
    problem: &mut Problem<'_, M, D>,
    src: &[f32],
) {
    let (p, u) = crate::nn::split_at_most(src, S::PARAMS);
    model.write_unchecked(p);
    if problem.u0_gradient() {
        problem.set_u0_unchecked(u);
    }
}

/// Checks a [`TrainConfig`]: the clipping norm, if any, is finite, normal and `> 0`.
pub(super) fn check_config(config: &TrainConfig) -> Result<(), Error> {
    config.clip_norm.map_or(Ok(()), super::optim::check_clip_norm)
}

impl<'a, S, M, L, O, const K: usize, const D: usize> Trainer<'a, S, M, L, O, K, D>
where
    S: Sde<Dual<K>, D> + Parameters,
    M: Step<Dual<K>, S, D>,
    L: Loss<D>,
    O: Optimizer,
{
    /// A trainer for `model` on `problem` and `loss`.
    ///
    /// Checks, before changing anything: the loss accepts the problem's save times (for
    /// the built-in losses: one data row per save time), the buffer lengths, the optimizer's
    /// size, the method's support for the model's noise kind, `K >= 1` and the clipping
    /// norm. Then copies the model's parameters (and the initial state, if trained) into
    /// `workspace.params` and `workspace.best`.
    pub fn new(
        model: &'a mut S,
        optimizer: O,
        problem: Problem<'a, M, D>,
        loss: L,
        config: TrainConfig,
        ws: Workspace<'a, K, D>,
    ) -> Result<Self, Error> {
        if K == 0 {
            return Err(Error::OutOfRange {
                what: "Dual<K> needs K >= 1 lanes",
            });
        }
        let n = problem.gradient_len(S::PARAMS);
        check_len("parameters", n, ws.params.len())?;
        check_len("gradient", n, ws.grad.len())?;
        check_len("best parameters", n, ws.best.len())?;
        check_len("optimizer state", n, optimizer.num_params())?;
        let needed = problem.stats_len();
        if ws.stats.len() < needed {
            return Err(Error::Length {
                what: "statistics scratch (2 rows per save time)",
                expected: needed,
                found: ws.stats.len(),
            });
        }
        loss.check(problem.save_times().len())?;
        let noise = <S as Sde<Dual<K>, D>>::NOISE;
        if !M::supports(noise) {
            return Err(Error::UnsupportedNoise {
                method: M::NAME,
                noise,
            });
        }
        check_config(&config)?;
        let record = Record::new(problem.window());
        let mut trainer = Self {
            model,
            optimizer,
            problem,
            loss,
            config,
            ws,
            record,
            reverse: None,
            #[cfg(feature = "std")]
            threaded: None,
        };
        trainer.parts().0.read_model();
        copy(trainer.ws.best, trainer.ws.params);
        trainer.ws.grad.fill(0.0);
        Ok(trainer)
    }

    /// The loop's parts, and a gradient function that computes in this trainer's mode.
    #[allow(clippy::type_complexity)]
    fn parts(
        &mut self,
    ) -> (
        Parts<'_, 'a, S, M, L, O, D>,
        impl FnMut(&Problem<'_, M, D>, &S, &Brownian, &L, &mut [f32]) -> Result<f32, Error>
            + use<'_, 'a, S, M, L, O, K, D>,
    ) {
        let Workspace {
            params,
            grad,
            best,
            stats,
        } = &mut self.ws;
        let parts = Parts {
            model: &mut *self.model,
            optimizer: &mut self.optimizer,
            problem: &mut self.problem,
            loss: &self.loss,
            config: &self.config,
            params,
            grad,
            best,
            record: &mut self.record,
        };
        let reverse = &mut self.reverse;
        #[cfg(feature = "std")]
        let threaded = &self.threaded;
        let gradient = move |problem: &Problem<'_, M, D>,
                             model: &S,
                             noise: &Brownian,
                             loss: &L,
                             grad: &mut [f32]| {
            #[cfg(feature = "std")]
            if let Some(t) = threaded {
                return match reverse {
                    None => (t.forward)(problem, model, noise, loss, stats, grad, t.threads),
                    Some(r) => {
                        (t.reverse)(problem, model, noise, loss, r.checkpoints, grad, t.threads)
                    }
                };
            }
            match reverse {
                None => forward_gradient(problem, model, noise, loss, stats, grad),
                Some(r) => (r.gradient)(
                    problem,
                    model,
                    noise,
                    loss,
                    r.checkpoints,
                    stats,
                    r.tape,
                    grad,
                ),
            }
        };
        (parts, gradient)
    }

    /// Runs `iterations` iterations on all save times (window = all). Calls continue the
    /// iteration count (and so the noise sequence) where the previous one stopped.
    pub fn run<F>(&mut self, iterations: u32, callback: F) -> Result<Report, Error>
    where
        F: FnMut(&Progress) -> ControlFlow<()>,
    {
        let (mut parts, gradient) = self.parts();
        parts.run(iterations, callback, gradient)
    }

    /// Runs a growing-window schedule: for each window of [`GrowingWindow::windows`],
    /// `iters_per_stage` iterations on the first `window` save times. The schedule is
    /// validated before anything runs.
    pub fn run_schedule<F>(
        &mut self,
        schedule: &GrowingWindow,
        callback: F,
    ) -> Result<Report, Error>
    where
        F: FnMut(&Progress) -> ControlFlow<()>,
    {
        let (mut parts, gradient) = self.parts();
        parts.run_schedule(schedule, callback, gradient)
    }

    /// The best parameters seen (flat, model then initial state) and their loss
    /// (`f32::INFINITY` before any iteration, when they are the starting parameters).
    pub fn best(&self) -> (&[f32], f32) {
        (self.ws.best, self.record.best_loss())
    }

    /// Puts the best parameters into the model (and the initial state, if trained).
    pub fn restore_best(&mut self) {
        self.parts().0.restore_best();
    }

    /// The current flat parameters.
    pub fn params(&self) -> &[f32] {
        self.ws.params
    }

    /// The last gradient computed.
    pub fn gradient(&self) -> &[f32] {
        self.ws.grad
    }

    /// The model.
    pub fn model(&self) -> &S {
        self.model
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The optimizer, for changing its learning rate or resetting it between phases.
    pub fn optimizer_mut(&mut self) -> &mut O {
        &mut self.optimizer
    }

    /// The problem (its initial state follows training when it is trained).
    pub fn problem(&self) -> &Problem<'a, M, D> {
        &self.problem
    }

    /// Changes the number of trajectories per iteration (`>= 1`; unchanged on error).
    pub fn set_trajectories(&mut self, trajectories: usize) -> Result<(), Error> {
        self.problem.set_trajectories(trajectories)
    }

    /// Changes how noise is drawn per iteration.
    pub fn set_noise(&mut self, noise: NoiseMode) {
        self.config.noise = noise;
    }

    /// The number of iterations run so far (the next iteration's number).
    pub fn iteration(&self) -> u32 {
        self.record.iteration()
    }

    /// How gradients are computed.
    pub fn gradient_mode(&self) -> GradientMode {
        match &self.reverse {
            None => GradientMode::Forward,
            Some(r) => GradientMode::Reverse(r.checkpoints),
        }
    }

    /// Gives back the workspace (the model and optimizer borrows end with the trainer).
    pub fn into_workspace(self) -> Workspace<'a, K, D> {
        self.ws
    }
}

impl<'a, S, M, L, O, const K: usize, const D: usize> Trainer<'a, S, M, L, O, K, D>
where
    S: Sde<Dual<K>, D> + SdeVjp<D> + Parameters,
    M: Step<Dual<K>, S, D> + StepVjp<S, D>,
    L: Loss<D>,
    O: Optimizer,
{
    /// Computes gradients in reverse mode from now on ([`Reverse`](crate::grad::Reverse)):
    /// the same losses, masks, windows, optimizer, schedule, `u0` gradient and noise, and
    /// the same loss bits; gradients equal forward mode's up to rounding. `tape` is scratch
    /// of at least [`reverse::tape_len`]`(problem, checkpoints)` rows for the trainer's
    /// problem (all save times, so every window of a schedule fits); the workspace's
    /// `stats` serve for the loss's derivatives in the statistics.
    ///
    /// Errors (the trainer is dropped, nothing else changes): a short `tape`.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use tinysde::grad::{reverse, Problem};
    /// use tinysde::nn::{Dense, Identity, Parameters};
    /// use tinysde::sde::NeuralSde;
    /// use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
    /// use tinysde::train::{Adam, AdamConfig, GradientMode, MeanSquaredError, TrainConfig, Trainer, Workspace};
    /// use tinysde::{Dual, Real};
    ///
    /// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    /// const P: usize = Model::PARAMS;
    /// let mut model = Model::default();
    /// let times = [0.5, 1.0, 1.5, 2.0];
    /// let data = [[1.4], [1.2], [1.1], [1.05]];
    /// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 2.0, 40)?);
    /// let problem = Problem::new(solver, [2.0], 8, &times)?;
    /// let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; P], [0.0; P])?;
    /// let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
    /// let mut stats = [[Dual::<4>::ZERO; 1]; 8];
    /// let mut tape = [[0.0f32; 1]; 32];
    /// assert!(tape.len() >= reverse::tape_len(&problem, Checkpoints::Sqrt));
    /// let ws = Workspace { params: &mut params, grad: &mut grad, best: &mut best, stats: &mut stats };
    /// let loss = MeanSquaredError::new(&data)?;
    /// let mut trainer = Trainer::new(&mut model, &mut adam, problem, loss, TrainConfig::default(), ws)?
    ///     .with_reverse_mode(&mut tape, Checkpoints::Sqrt)?;
    /// assert_eq!(trainer.gradient_mode(), GradientMode::Reverse(Checkpoints::Sqrt));
    /// let mut first = None;
    /// let report = trainer.run(200, |p| {
    ///     first.get_or_insert(p.loss);
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert!(report.best_loss < first.unwrap() / 10.0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_reverse_mode(
        mut self,
        tape: &'a mut [[f32; D]],
        checkpoints: Checkpoints,
    ) -> Result<Self, Error> {
        let needed = reverse::tape_len(&self.problem, checkpoints);
        if tape.len() < needed {
            return Err(Error::Length {
                what: "reverse-mode tape (reverse::tape_len rows)",
                expected: needed,
                found: tape.len(),
            });
        }
        self.reverse = Some(ReverseMode {
            tape,
            checkpoints,
            gradient: reverse::checkpoint_gradient::<K, S, M, Brownian, L, D>,
        });
        Ok(self)
    }

    /// Chooses the cheaper gradient mode for this model, `K` and problem: reverse mode
    /// (with `tape` and `checkpoints`) unless forward mode's estimated cost is lower.
    ///
    /// The estimate, in units of one `f32` ensemble solve (from `benches/gradient.rs`):
    /// forward mode `ceil(N / K) * (2 + K) / 2` (a pass with K tangents costs about
    /// `1 + K / 2` plain solves), reverse mode 5 (statistics, forward, recomputation and a
    /// backward pass of about two). So forward mode wins only when the whole gradient fits
    /// in one or two narrow passes (for example N <= K <= 6), on every grid spacing. Errors as
    /// [`with_reverse_mode`](Trainer::with_reverse_mode), and only when reverse mode is chosen.
    pub fn with_cheaper_mode(
        self,
        tape: &'a mut [[f32; D]],
        checkpoints: Checkpoints,
    ) -> Result<Self, Error> {
        if forward_is_cheaper(self.problem.gradient_len(S::PARAMS), K) {
            Ok(self)
        } else {
            self.with_reverse_mode(tape, checkpoints)
        }
    }
}

#[cfg(feature = "std")]
impl<'a, S, M, L, O, const K: usize, const D: usize> Trainer<'a, S, M, L, O, K, D>
where
    S: Sde<Dual<K>, D> + SdeVjp<D> + SdeVjp<D, F32x<REVERSE_LANES>> + Parameters + Sync,
    M: Step<Dual<K>, S, D> + StepVjp<S, D> + StepVjp<S, D, F32x<REVERSE_LANES>> + Sync,
    L: Loss<D> + Sync,
    O: Optimizer,
{
    /// Computes every gradient on `threads` threads from now on (0: as many as
    /// [`std::thread::available_parallelism`] reports), in either gradient mode (feature
    /// `std`): [`Threads`](crate::grad::Threads)`(`[`Forward`](crate::grad::Forward)`)` in
    /// forward mode, [`Threads`](crate::grad::Threads)`(`[`Reverse`](crate::grad::Reverse)`)` in reverse mode (which then
    /// allocates its own tape; the one given to
    /// [`with_reverse_mode`](Trainer::with_reverse_mode) is not used).
    ///
    /// The iterations have bits that do not depend on `threads`: forward mode's are those
    /// of the trainer without threads; reverse mode's gradients differ from the trainer
    /// without threads in the order the trajectories' parameter cotangents are summed (to
    /// rounding), so its later iterations do too. The gradient buffer is written only by a
    /// successful iteration.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use tinysde::grad::{reverse, Problem};
    /// use tinysde::nn::{Dense, Identity, Parameters, Tanh};
    /// use tinysde::sde::NeuralSde;
    /// use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
    /// use tinysde::train::{Adam, AdamConfig, MeanSquaredError, TrainConfig, Trainer, Workspace};
    /// use tinysde::{Dual, Real};
    ///
    /// type Model = NeuralSde<(Dense<1, 8, Tanh>, Dense<8, 1, Identity>), Dense<1, 1, Identity>>;
    /// const P: usize = Model::PARAMS;
    /// let times = [0.5, 1.0, 1.5, 2.0];
    /// let data = [[1.4], [1.2], [1.1], [1.05]];
    /// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 2.0, 40)?);
    /// let problem = Problem::new(solver, [2.0], 9, &times)?;
    /// let losses = |threads: usize| -> Result<Vec<f32>, tinysde::Error> {
    ///     let mut model = Model::default();
    ///     model.init(&mut tinysde::noise::rng_from_seed(3), tinysde::nn::InitScheme::GlorotUniform)?;
    ///     let adam = Adam::new(AdamConfig::lr(0.05), [0.0; P], [0.0; P])?;
    ///     let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
    ///     let mut stats = [[Dual::<4>::ZERO; 1]; 8];
    ///     let mut tape = [[0.0f32; 1]; 64];
    ///     let ws = Workspace { params: &mut params, grad: &mut grad, best: &mut best, stats: &mut stats };
    ///     let loss = MeanSquaredError::new(&data)?;
    ///     let mut trainer = Trainer::new(&mut model, adam, problem, loss, TrainConfig::default(), ws)?
    ///         .with_reverse_mode(&mut tape, Checkpoints::Sqrt)?
    ///         .with_threads(threads);
    ///     let mut losses = Vec::new();
    ///     trainer.run(20, |p| {
    ///         losses.push(p.loss);
    ///         ControlFlow::Continue(())
    ///     })?;
    ///     Ok(losses)
    /// };
    /// assert_eq!(losses(1)?, losses(2)?); // bit for bit
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threaded = Some(Threaded {
            threads,
            forward: crate::grad::forward_gradient_parallel::<K, S, M, Brownian, L, D>,
            reverse: crate::grad::reverse_gradient_parallel::<S, M, Brownian, L, D>,
        });
        self
    }

    /// The number of threads set by [`with_threads`](Trainer::with_threads) (`None`: the
    /// calling thread only, no allocation).
    pub fn threads(&self) -> Option<usize> {
        self.threaded.as_ref().map(|t| t.threads)
    }
}

/// Whether forward mode's estimated cost (see [`Trainer::with_cheaper_mode`]) is below
/// reverse mode's for a gradient of `n` entries computed `k` lanes at a time.
pub fn forward_is_cheaper(n: usize, k: usize) -> bool {
    let passes = n.div_ceil(k.max(1));
    passes.saturating_mul(2 + k) < 2 * 5
}

/// Copies `src` into `dst` (equal lengths, checked by [`Trainer::new`]); element-wise
/// rather than `copy_from_slice`, so that no length-mismatch panic path is left in the
/// trainer (the no-panic build checks it).
fn copy(dst: &mut [f32], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s;
    }
}
