//! An owned training state (feature `std`): the model, the optimizer and every buffer in
//! one value, for host programs that do not place their own buffers.

use core::ops::ControlFlow;
use std::vec::Vec;

use super::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use super::schedule::GrowingWindow;
use super::trainer::{
    check_config, forward_is_cheaper, GradientMode, Parts, Progress, Record, Report, TrainConfig,
};
use crate::dual::Dual;
use crate::error::Error;
use crate::grad::reverse::REVERSE_LANES;
use crate::grad::{loss_and_gradient, loss_and_gradient_parallel, reverse, Loss, Problem};
use crate::lanes::F32x;
use crate::nn::Parameters;
use crate::noise::Brownian;
use crate::real::Real;
use crate::sde::{Sde, SdeVjp};
use crate::solve::{Checkpoints, Step, StepVjp};

/// Tangent lanes of a [`Training`]'s forward-mode passes (and of the loss's derivatives in
/// the statistics in reverse mode). Lanes never interact: the bits do not depend on it.
pub const TRAINING_LANES: usize = 8;

/// What becomes an [`Optimizer`] for `params` parameters: a configuration ([`AdamConfig`],
/// [`SgdConfig`]: the state is allocated), or an optimizer already built (its size is checked).
pub trait IntoOptimizer {
    /// The optimizer it becomes.
    type Optimizer: Optimizer;
    /// The optimizer for `params` parameters (errors: an invalid configuration, a wrong size).
    fn into_optimizer(self, params: usize) -> Result<Self::Optimizer, Error>;
}

impl IntoOptimizer for AdamConfig {
    type Optimizer = Adam<Vec<f32>>;
    fn into_optimizer(self, params: usize) -> Result<Self::Optimizer, Error> {
        Adam::new(self, std::vec![0.0; params], std::vec![0.0; params])
    }
}

impl IntoOptimizer for SgdConfig {
    type Optimizer = Sgd<Vec<f32>>;
    fn into_optimizer(self, params: usize) -> Result<Self::Optimizer, Error> {
        Sgd::new(self, std::vec![0.0; params])
    }
}

impl<O: Optimizer> IntoOptimizer for O {
    type Optimizer = O;
    fn into_optimizer(self, params: usize) -> Result<O, Error> {
        crate::error::check_len("optimizer state", params, self.num_params())?;
        Ok(self)
    }
}

/// The buffers a [`Training`] computes gradients in.
struct Scratch<const D: usize> {
    stats: Vec<[Dual<TRAINING_LANES>; D]>,
    mode: GradientMode,
    threads: Option<usize>,
}

/// One gradient of a [`Training`] (instantiated where its mode's bounds hold).
type GradientFn<S, M, L, const D: usize> =
    fn(&Problem<'_, M, D>, &S, &Brownian, &L, &mut Scratch<D>, &mut [f32]) -> Result<f32, Error>;

/// Forward mode, on the calling thread or on `scratch.threads` threads.
fn forward_gradient<S, M, L, const D: usize>(
    problem: &Problem<'_, M, D>,
    model: &S,
    noise: &Brownian,
    loss: &L,
    scratch: &mut Scratch<D>,
    grad: &mut [f32],
) -> Result<f32, Error>
where
    S: Sde<Dual<TRAINING_LANES>, D> + Parameters + Sync,
    M: Step<Dual<TRAINING_LANES>, S, D> + Sync,
    L: Loss<D> + Sync,
{
    let stats = &mut scratch.stats;
    match scratch.threads {
        None => loss_and_gradient(problem, model, noise, loss, stats, grad),
        Some(t) => loss_and_gradient_parallel(problem, model, noise, loss, stats, grad, t),
    }
}

/// Reverse mode on `scratch.threads` threads (the calling thread alone by default): the
/// threaded function runs `REVERSE_LANES` trajectories per pass on lanes, so it is the
/// faster one even on one thread, and its bits do not depend on the thread count.
fn reverse_gradient<S, M, L, const D: usize>(
    problem: &Problem<'_, M, D>,
    model: &S,
    noise: &Brownian,
    loss: &L,
    scratch: &mut Scratch<D>,
    grad: &mut [f32],
) -> Result<f32, Error>
where
    S: SdeVjp<D> + SdeVjp<D, F32x<REVERSE_LANES>> + Parameters + Sync,
    M: StepVjp<S, D> + StepVjp<S, D, F32x<REVERSE_LANES>> + Sync,
    L: Loss<D> + Sync,
{
    let checkpoints = match scratch.mode {
        GradientMode::Reverse(c) => c,
        GradientMode::Forward => Checkpoints::All,
    };
    let threads = scratch.threads.unwrap_or(1);
    reverse::loss_and_gradient_parallel(problem, model, noise, loss, checkpoints, grad, threads)
}

/// An owned training state (feature `std`): the model, the problem, the loss, the
/// optimizer (its state allocated to the model's size) and every buffer (parameters,
/// gradient, best parameters, statistics scratch), so that training is
/// `Training::new(model, problem, loss, AdamConfig::lr(0.05))?.run(300, callback)`.
///
/// It trains exactly as the slice-based [`Trainer`](super::Trainer) does (the same loop,
/// the same bits for the same settings, reverse mode being always the threaded, lane form,
/// as [`Trainer::with_threads`](super::Trainer::with_threads); the `Trainer` stays for
/// firmware that places its own buffers): each iteration computes the loss and gradient on that iteration's noise,
/// reports [`Progress`] to the callback (which may stop training), records the best
/// parameters and updates. [`Training::new`] chooses the cheaper gradient mode (reverse
/// mode keeping every state unless forward mode's estimate is lower; see
/// [`Trainer::with_cheaper_mode`](super::Trainer::with_cheaper_mode));
/// [`with_gradient_mode`](Training::with_gradient_mode) sets one,
/// [`with_threads`](Training::with_threads) spreads the trajectories over threads.
/// Methods without an adjoint (RK4) train with [`Training::forward`].
///
/// The best parameters are kept apart: [`best_model`](Training::best_model) is a copy of
/// the model with them, to evaluate without disturbing training;
/// [`restore_best`](Training::restore_best) puts them into the model.
///
/// Errors and what they leave: as [`Trainer`](super::Trainer)'s.
///
/// ```
/// use core::ops::ControlFlow;
/// use tinysde::grad::{loss_value, Problem};
/// use tinysde::nn::{Dense, Identity, Tanh};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{Sosri, Solver, TimeGrid};
/// use tinysde::train::{AdamConfig, MeanSquaredError, Training};
///
/// type Model = NeuralSde<(Dense<1, 8, Tanh>, Dense<8, 1, Identity>), Dense<1, 1, Identity>>;
/// let mut model = Model::default();
/// model.init(&mut tinysde::noise::rng_from_seed(1), tinysde::nn::InitScheme::GlorotUniform)?;
/// let times = [0.5, 1.0, 1.5, 2.0];
/// let data = [[1.4], [1.2], [1.1], [1.05]];
/// let problem = Problem::new(Solver::new(Sosri, TimeGrid::new(0.0, 2.0, 20)?), [2.0], 16, &times)?;
/// let loss = MeanSquaredError::new(&data)?;
///
/// let mut training = Training::new(model, problem, loss, AdamConfig::lr(0.05))?.with_threads(0);
/// let mut first = None;
/// let report = training.run(100, |p| {
///     first.get_or_insert(p.loss);
///     ControlFlow::Continue(())
/// })?;
/// assert!(report.best_loss < first.unwrap());
///
/// // Evaluate the best parameters on 1000 fresh paths, without restoring them.
/// let best = training.best_model();
/// let eval = Problem::new(Solver::new(Sosri, TimeGrid::new(0.0, 2.0, 20)?), [2.0], 1000, &times)?;
/// let mut stats = [[0.0f32; 1]; 8];
/// let score = loss_value(&eval, &best, &Brownian::new(99), &loss, &mut stats)?;
/// assert!(score.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
pub struct Training<'a, S, M, L, O, const D: usize> {
    model: S,
    optimizer: O,
    problem: Problem<'a, M, D>,
    loss: L,
    config: TrainConfig,
    params: Vec<f32>,
    grad: Vec<f32>,
    best: Vec<f32>,
    record: Record,
    scratch: Scratch<D>,
    forward: GradientFn<S, M, L, D>,
    reverse: Option<GradientFn<S, M, L, D>>,
}

impl<'a, S, M, L, O, const D: usize> Training<'a, S, M, L, O, D>
where
    S: Sde<Dual<TRAINING_LANES>, D>
        + SdeVjp<D>
        + SdeVjp<D, F32x<REVERSE_LANES>>
        + Parameters
        + Sync,
    M: Step<Dual<TRAINING_LANES>, S, D> + StepVjp<S, D> + StepVjp<S, D, F32x<REVERSE_LANES>> + Sync,
    L: Loss<D> + Sync,
    O: Optimizer,
{
    /// A training state for `model` on `problem` and `loss`, with `optimizer` (a
    /// configuration such as [`AdamConfig`], or an optimizer of the right size), default
    /// [`TrainConfig`], the cheaper gradient mode, on the calling thread.
    ///
    /// Errors (checked before anything is allocated beyond the optimizer): the loss rejects
    /// the problem's save times, the method does not support the model's noise kind, an
    /// invalid optimizer configuration or size.
    pub fn new<B: IntoOptimizer<Optimizer = O>>(
        model: S,
        problem: Problem<'a, M, D>,
        loss: L,
        optimizer: B,
    ) -> Result<Self, Error> {
        let n = problem.gradient_len(S::PARAMS);
        let mode = if forward_is_cheaper(n, TRAINING_LANES) {
            GradientMode::Forward
        } else {
            GradientMode::Reverse(Checkpoints::All)
        };
        Self::build(
            model,
            problem,
            loss,
            optimizer.into_optimizer(n)?,
            mode,
            Some(reverse_gradient::<S, M, L, D>),
        )
    }

    /// Computes gradients in `mode` from now on: [`GradientMode::Forward`], or reverse mode
    /// with the given checkpoints (kept for every trajectory up to 64 MiB, in memory the
    /// gradient allocates; see [`reverse::loss_and_gradient_parallel`]).
    #[must_use]
    pub fn with_gradient_mode(mut self, mode: GradientMode) -> Self {
        self.scratch.mode = mode;
        self
    }
}

impl<'a, S, M, L, O, const D: usize> Training<'a, S, M, L, O, D>
where
    S: Sde<Dual<TRAINING_LANES>, D> + Parameters + Sync,
    M: Step<Dual<TRAINING_LANES>, S, D> + Sync,
    L: Loss<D> + Sync,
    O: Optimizer,
{
    /// [`Training::new`] in forward mode only, for methods without an adjoint (RK4; every
    /// other fixed-step method, Milstein included, has one);
    /// [`with_gradient_mode`](Training::with_gradient_mode) is then not available.
    pub fn forward<B: IntoOptimizer<Optimizer = O>>(
        model: S,
        problem: Problem<'a, M, D>,
        loss: L,
        optimizer: B,
    ) -> Result<Self, Error> {
        let n = problem.gradient_len(S::PARAMS);
        Self::build(
            model,
            problem,
            loss,
            optimizer.into_optimizer(n)?,
            GradientMode::Forward,
            None,
        )
    }

    fn build(
        model: S,
        problem: Problem<'a, M, D>,
        loss: L,
        optimizer: O,
        mode: GradientMode,
        reverse: Option<GradientFn<S, M, L, D>>,
    ) -> Result<Self, Error> {
        loss.check(problem.save_times().len())?;
        let noise = <S as Sde<Dual<TRAINING_LANES>, D>>::NOISE;
        if !M::supports(noise) {
            return Err(Error::UnsupportedNoise {
                method: M::NAME,
                noise,
            });
        }
        let n = problem.gradient_len(S::PARAMS);
        let mut training = Self {
            model,
            optimizer,
            record: Record::new(problem.window()),
            scratch: Scratch {
                stats: std::vec![[Dual::ZERO; D]; problem.stats_len()],
                mode,
                threads: None,
            },
            problem,
            loss,
            config: TrainConfig::default(),
            params: std::vec![0.0; n],
            grad: std::vec![0.0; n],
            best: std::vec![0.0; n],
            forward: forward_gradient::<S, M, L, D>,
            reverse,
        };
        training.parts().0.read_model();
        training.best.clone_from(&training.params);
        Ok(training)
    }

    /// Uses `config` (noise per iteration, gradient clipping); errors as
    /// [`Trainer::new`](super::Trainer::new)'s for a bad clipping norm, the state unchanged.
    pub fn with_config(mut self, config: TrainConfig) -> Result<Self, Error> {
        check_config(&config)?;
        self.config = config;
        Ok(self)
    }

    /// Computes every gradient on `threads` threads (0: as many as
    /// [`std::thread::available_parallelism`] reports), as
    /// [`Trainer::with_threads`](super::Trainer::with_threads) does: bits that do not depend
    /// on `threads` (in forward mode, those of the calling thread alone).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.scratch.threads = Some(threads);
        self
    }

    /// The loop's parts and the gradient function of the current mode.
    #[allow(clippy::type_complexity)]
    fn parts(
        &mut self,
    ) -> (
        Parts<'_, 'a, S, M, L, O, D>,
        impl FnMut(&Problem<'_, M, D>, &S, &Brownian, &L, &mut [f32]) -> Result<f32, Error>
            + use<'_, 'a, S, M, L, O, D>,
    ) {
        let parts = Parts {
            model: &mut self.model,
            optimizer: &mut self.optimizer,
            problem: &mut self.problem,
            loss: &self.loss,
            config: &self.config,
            params: &mut self.params,
            grad: &mut self.grad,
            best: &mut self.best,
            record: &mut self.record,
        };
        let scratch = &mut self.scratch;
        let gradient = match (scratch.mode, self.reverse) {
            (GradientMode::Reverse(_), Some(reverse)) => reverse,
            _ => self.forward,
        };
        let run = move |problem: &Problem<'_, M, D>,
                        model: &S,
                        noise: &Brownian,
                        loss: &L,
                        grad: &mut [f32]| {
            gradient(problem, model, noise, loss, scratch, grad)
        };
        (parts, run)
    }

    /// Runs `iterations` iterations on all save times; calls continue the iteration count
    /// (and so the noise sequence) where the previous one stopped. See
    /// [`Trainer::run`](super::Trainer::run).
    pub fn run<F>(&mut self, iterations: u32, callback: F) -> Result<Report, Error>
    where
        F: FnMut(&Progress) -> ControlFlow<()>,
    {
        let (mut parts, gradient) = self.parts();
        parts.run(iterations, callback, gradient)
    }

    /// Runs a growing-window schedule; see [`Trainer::run_schedule`](super::Trainer::run_schedule).
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

    /// A copy of the model with the best parameters seen written in (the initial state of
    /// the best parameters, if trained, is in [`best`](Training::best)); training is not
    /// disturbed.
    pub fn best_model(&self) -> S
    where
        S: Clone,
    {
        let mut model = self.model.clone();
        let (p, _) = crate::nn::split_at_most(&self.best, S::PARAMS);
        model.write_unchecked(p);
        model
    }

    /// The best parameters seen (flat, model then initial state) and their loss
    /// (`f32::INFINITY` before any iteration, when they are the starting parameters).
    pub fn best(&self) -> (&[f32], f32) {
        (&self.best, self.record.best_loss())
    }

    /// Puts the best parameters into the model (and the initial state, if trained).
    pub fn restore_best(&mut self) {
        self.parts().0.restore_best();
    }

    /// The model (at the current parameters).
    pub fn model(&self) -> &S {
        &self.model
    }

    /// The model, with the best parameters seen written in (and the training state dropped).
    pub fn into_best_model(mut self) -> S {
        let (p, _) = crate::nn::split_at_most(&self.best, S::PARAMS);
        self.model.write_unchecked(p);
        self.model
    }

    /// The current flat parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The last gradient computed.
    pub fn gradient(&self) -> &[f32] {
        &self.grad
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

    /// The number of iterations run so far (the next iteration's number).
    pub fn iteration(&self) -> u32 {
        self.record.iteration()
    }

    /// How gradients are computed.
    pub fn gradient_mode(&self) -> GradientMode {
        match self.reverse {
            Some(_) => self.scratch.mode,
            None => GradientMode::Forward,
        }
    }

    /// The number of threads set by [`with_threads`](Training::with_threads) (`None`: the
    /// calling thread only).
    pub fn threads(&self) -> Option<usize> {
        self.scratch.threads
    }
}
