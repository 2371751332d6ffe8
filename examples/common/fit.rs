//! Training, evaluation and sampling shared by the examples.

use std::ops::ControlFlow;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tinysde::grad::reverse::REVERSE_LANES;
use tinysde::grad::{loss_value, Loss, Problem, Scratch};
use tinysde::nn::{
    Activation, Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters,
};
use tinysde::noise::Brownian;
use tinysde::sde::{NeuralSde, Sde, SdeVjp};
use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, Solver, Step, StepVjp};
use tinysde::train::{
    Adam, AdamConfig, EnsembleFit, GradientMode, GrowingWindow, NoiseMode, Optimizer, Progress,
    Series, SeriesObjective, SeriesProblem, TrainConfig, Trainer, Workspace, TRAINING_LANES,
};
use tinysde::{Dual, Error, F32x, Real};

/// The solver every example uses: SOSRI (strong order 1.5 for diagonal noise), as in the
/// seed article and DiffEqFlux.
pub type Method = tinysde::solve::Sosri;

/// The seed task's drift network on a `D`-dimensional state: `u -> u^3 -> 20 tanh units
/// (`A`, by default `FastTanh`) -> D outputs`.
pub type Drift<const D: usize, A = FastTanh> = (Cube<D>, Dense<D, 20, A>, Dense<20, D, Identity>);
/// The seed task's diffusion network: `u -> 20 sigmoid units (`S`, by default
/// `FastSigmoid`) -> D outputs`.
pub type Diffusion<const D: usize, S = FastSigmoid> = (Dense<D, 20, S>, Dense<20, D, Identity>);
/// The seed task's neural SDE (diagonal noise), with the activations `A` (drift) and `S`
/// (diffusion).
pub type Model<const D: usize, A = FastTanh, S = FastSigmoid> =
    NeuralSde<Drift<D, A>, Diffusion<D, S>>;

/// A model with Glorot-uniform weights drawn from `seed` and zero biases.
pub fn new_model<M: tinysde::nn::Init + Default>(seed: u64) -> Result<M, Error> {
    let mut m = M::default();
    tinysde::nn::init(
        &mut m,
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::GlorotUniform,
    )?;
    Ok(m)
}

/// A seed-task model ([`Model`]) with Glorot-uniform weights drawn from `seed`, zero
/// biases, and the drift's hidden-to-output weights shrunk to `U(-0.01, 0.01)`: the model
/// starts close to pure noise, so fitting a series' scatter does not first have to undo a
/// large random drift.
pub fn new_seed_model<const D: usize, A: Activation, S: Activation>(
    seed: u64,
) -> Result<Model<D, A, S>, Error>
where
    Model<D, A, S>: tinysde::nn::Init + Default,
    Dense<20, D, Identity>: tinysde::nn::Init,
{
    let mut m = Model::<D, A, S>::default();
    let mut rng = tinysde::noise::rng_from_seed(seed);
    tinysde::nn::init(&mut m, &mut rng, InitScheme::GlorotUniform)?;
    tinysde::nn::init(
        &mut m.drift.2,
        &mut rng,
        InitScheme::Uniform { limit: 0.01 },
    )?;
    tinysde::nn::init(
        &mut m.diffusion.1,
        &mut rng,
        InitScheme::Uniform { limit: 0.01 },
    )?;
    Ok(m)
}

/// A progress bar for `total` iterations showing the current loss, drawn on stderr only
/// when `visible` (and stderr is a terminal).
pub fn progress_bar(total: u64, prefix: &str, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    let style = ProgressStyle::with_template(
        "{prefix:>14} [{bar:32}] {pos:>4}/{len} loss {msg:<10} {elapsed_precise}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix.to_string());
    bar
}

/// One phase of plain training: `iterations` Adam steps at learning rate `lr` with
/// `trajectories` sampled paths per loss. The optimizer's state starts afresh each phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    /// Adam's learning rate.
    pub lr: f32,
    /// Trajectories per loss evaluation.
    pub trajectories: usize,
    /// Iterations.
    pub iterations: u32,
}

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Phases of plain training on all points, one after the other.
    Phases(Vec<Phase>),
    /// The growing-window schedule with Adam at `lr` and `trajectories` paths.
    Growing {
        /// The windows and iterations per stage.
        window: GrowingWindow,
        /// Adam's learning rate.
        lr: f32,
        /// Trajectories per loss evaluation.
        trajectories: usize,
        /// Stop after this many iterations in all (the last stage is cut short).
        limit: Option<u32>,
    },
}

impl Schedule {
    /// The total number of iterations for `saves` save times.
    pub fn total_iterations(&self, saves: usize) -> u32 {
        match self {
            Schedule::Phases(p) => p.iter().map(|p| p.iterations).sum(),
            Schedule::Growing { window, limit, .. } => {
                let all = window.total_iterations(saves).unwrap_or(0);
                limit.map_or(all, |l| l.min(all))
            }
        }
    }
}

/// The loss after each iteration and what it was computed on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The loss at each iteration (on the points in use at that iteration).
    pub losses: Vec<f32>,
    /// The number of points in use at each iteration.
    pub windows: Vec<usize>,
    /// The best loss on the final points (the parameters the model ends with).
    pub best_loss: f32,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The learned observation noise's scale per column (empty if none was learned).
    pub noise: Vec<f32>,
}

impl History {
    /// Records one training iteration's loss and window, and shows the loss on the bar.
    pub fn record(&mut self, p: &Progress, bar: &ProgressBar) {
        self.losses.push(p.loss);
        self.windows.push(p.window);
        bar.set_message(format!("{:.4}", p.loss));
        bar.inc(1);
    }
}

impl History {
    /// Iterations at which a growing-window stage began (after the first).
    pub fn stage_starts(&self) -> Vec<usize> {
        (1..self.windows.len())
            .filter(|&i| self.windows[i] != self.windows[i - 1])
            .collect()
    }
}

/// Trains `model` on `loss` over `times` from `u0` with `solver`, reports every iteration
/// to `bar`, and leaves the model at the best parameters seen on the full data.
/// Noise: a fresh Brownian path per iteration from `noise_seed`. Gradients: the cheaper
/// mode `tinysde::train::Training` chooses, which for these models is reverse mode keeping
/// every state (one `f32` statistics pass and a backward pass instead of
/// `ceil(PARAMS / K)` passes on `K` lanes), on `threads` threads (0: all cores).
#[allow(clippy::too_many_arguments)]
pub fn train<S, L, const D: usize>(
    model: &mut S,
    solver: Solver<Method>,
    u0: [f32; D],
    times: &[f32],
    loss: L,
    schedule: &Schedule,
    noise_seed: u64,
    threads: usize,
    bar: &ProgressBar,
) -> Result<History, Error>
where
    S: Sde<Dual<TRAINING_LANES>, D>
        + SdeVjp<D>
        + SdeVjp<D, F32x<REVERSE_LANES>>
        + Parameters
        + Clone
        + Sync,
    Method: Step<Dual<TRAINING_LANES>, S, D> + StepVjp<S, D> + StepVjp<S, D, F32x<REVERSE_LANES>>,
    L: Loss<D> + Sync,
{
    let start = Instant::now();
    let (lr, trajectories) = match schedule {
        Schedule::Phases(phases) => phases
            .first()
            .map_or((1e-3, 1), |ph| (ph.lr, ph.trajectories)),
        Schedule::Growing {
            lr, trajectories, ..
        } => (*lr, *trajectories),
    };
    let problem = Problem::new(solver, u0, trajectories, times)?;
    let config = TrainConfig {
        noise: NoiseMode::Fresh { seed: noise_seed },
        clip_norm: None,
    };
    let fit = EnsembleFit::new(problem, loss)?;
    let mut training = Trainer::owned(model.clone(), fit, AdamConfig::lr(lr))?
        .with_config(config)?
        .with_threads(threads);
    let mut history = History::default();
    let limit = match schedule {
        Schedule::Growing { limit, .. } => limit.map_or(usize::MAX, |l| l as usize),
        Schedule::Phases(_) => usize::MAX,
    };
    let mut record = |p: &Progress| {
        history.record(p, bar);
        if history.losses.len() >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let report = match schedule {
        Schedule::Phases(phases) => {
            let mut report = None;
            for ph in phases {
                training.optimizer_mut().reset();
                training.optimizer_mut().set_lr(ph.lr)?;
                training.fit_mut().set_trajectories(ph.trajectories)?;
                report = Some(training.run(ph.iterations, &mut record)?);
            }
            report
        }
        Schedule::Growing { window, .. } => Some(training.run_schedule(window, &mut record)?),
    };
    *model = training.into_best_model();
    history.best_loss = report.map_or(f32::NAN, |r| r.best_loss);
    history.seconds = start.elapsed().as_secs_f64();
    Ok(history)
}

/// The loss of `model` with `trajectories` paths from `Brownian::new(seed)` (no gradient).
#[allow(clippy::too_many_arguments)]
pub fn evaluate<S, L, const D: usize>(
    model: &S,
    solver: Solver<Method>,
    u0: [f32; D],
    times: &[f32],
    loss: &L,
    trajectories: usize,
    seed: u64,
) -> Result<f32, Error>
where
    S: Sde<f32, D> + Parameters,
    Method: Step<f32, S, D>,
    L: Loss<D>,
{
    let problem = Problem::new(solver, u0, trajectories, times)?;
    let mut stats = vec![[0.0f32; D]; problem.stats_len()];
    loss_value(&problem, model, &Brownian::new(seed), loss, &mut stats)
}

/// Sampled trajectories of a model at every point of the solver's grid.
#[derive(Clone, Debug)]
pub struct Samples<const D: usize> {
    /// The grid times.
    pub times: Vec<f32>,
    /// The ensemble mean at each time.
    pub mean: Vec<[f32; D]>,
    /// The ensemble variance at each time.
    pub var: Vec<[f32; D]>,
    /// `paths[m][i]`: trajectory `m` at time `i`.
    pub paths: Vec<Vec<[f32; D]>>,
}

impl<const D: usize> Samples<D> {
    /// The predictive samples of observations `y = u + e`, `e ~ N(0, sd[d]^2)`: path `m`
    /// plus `sd[d]` times the standard normal quantile at `(m + 1/2) / M` (the paths are
    /// independent draws, so pairing them with evenly spread normal quantiles samples the
    /// sum; deterministic). Without noise (`sd` empty or zero) the samples are unchanged.
    pub fn with_noise(mut self, sd: &[f32]) -> Self {
        if sd.iter().all(|&s| s == 0.0) {
            return self;
        }
        let m = self.paths.len();
        for (j, path) in self.paths.iter_mut().enumerate() {
            let z = tinysde::train::normal_quantile((j as f32 + 0.5) / m as f32).unwrap_or(0.0);
            for row in path.iter_mut() {
                for (x, &s) in row.iter_mut().zip(sd) {
                    *x += s * z;
                }
            }
        }
        for v in self.var.iter_mut() {
            for (x, &s) in v.iter_mut().zip(sd) {
                *x += s * s;
            }
        }
        self
    }

    /// The `q`-quantile (0..=1) of component `d` over the trajectories at each time.
    pub fn quantile(&self, d: usize, q: f32) -> Vec<f32> {
        (0..self.times.len())
            .map(|i| {
                let mut v: Vec<f32> = self.paths.iter().map(|p| p[i][d]).collect();
                v.sort_by(f32::total_cmp);
                super::metrics::quantile_sorted(&v, f64::from(q))
            })
            .collect()
    }
}

/// Solves `trajectories` paths of `model` from `u0`, saving at `times` (grid points of the
/// solver's grid, strictly increasing).
pub fn sample_at<S, const D: usize>(
    model: &S,
    solver: Solver<Method>,
    u0: [f32; D],
    times: &[f32],
    trajectories: usize,
    seed: u64,
) -> Result<Samples<D>, Error>
where
    S: Sde<f32, D>,
    Method: Step<f32, S, D>,
{
    let n = times.len();
    let mut mean = vec![[0.0; D]; n];
    let mut var = vec![[0.0; D]; n];
    let mut flat = vec![[0.0; D]; n * trajectories];
    solve::simulate_into(
        &solver,
        model,
        &Brownian::new(seed),
        &EnsembleRequest::new(u0, trajectories, times),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut flat),
        },
    )?;
    let paths = flat.chunks(n).map(<[[f32; D]]>::to_vec).collect();
    Ok(Samples {
        times: times.to_vec(),
        mean,
        var,
        paths,
    })
}

/// Solves `trajectories` paths of `model` from `u0`, saving at every grid point.
pub fn sample<S, const D: usize>(
    model: &S,
    solver: Solver<Method>,
    u0: [f32; D],
    trajectories: usize,
    seed: u64,
) -> Result<Samples<D>, Error>
where
    S: Sde<f32, D>,
    Method: Step<f32, S, D>,
{
    let grid = solver.grid;
    let times: Vec<f32> = (0..=grid.steps()).map(|k| grid.time(k)).collect();
    let n = times.len();
    let mut mean = vec![[0.0; D]; n];
    let mut var = vec![[0.0; D]; n];
    let mut flat = vec![[0.0; D]; n * trajectories];
    solve::simulate_into(
        &solver,
        model,
        &Brownian::new(seed),
        &EnsembleRequest::new(u0, trajectories, &times),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut flat),
        },
    )?;
    let paths = flat.chunks(n).map(<[[f32; D]]>::to_vec).collect();
    Ok(Samples {
        times,
        mean,
        var,
        paths,
    })
}

/// How to fit one observed series by windows ([`tinysde::train::SeriesFit`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesFit {
    /// The objective: the Gaussian likelihood (calibrated noise) or the MSE of the mean.
    pub objective: SeriesObjective,
    /// Observations per window after its (observed) start.
    pub window: usize,
    /// Windows per iteration (all usable windows if there are not more).
    pub batch: usize,
    /// Trajectories per window.
    pub trajectories: usize,
    /// The largest solver step (model time).
    pub max_step: f32,
    /// Adam's learning rate.
    pub lr: f32,
    /// Iterations, exactly.
    pub iterations: u32,
    /// Seed of the training noise and of the window choice.
    pub seed: u64,
    /// How gradients are computed: reverse mode (the tape keeps every trajectory's
    /// checkpoints of a window) or forward mode.
    pub gradient: GradientMode,
    /// Learned observation noise (Gaussian likelihood only): its initial scale in every
    /// column, trained with the model (`SeriesProblem::with_learned_noise`); `None`: no
    /// observation noise.
    pub noise: Option<f32>,
    /// Each window's start is a noisy observation too
    /// (`SeriesProblem::with_noisy_start`; only with `noise`).
    pub noisy_start: bool,
}

/// Fits `model` to the series (`times`, `values`, `mask`) as `how` says, reporting every
/// iteration to `bar`. With every window in each batch the model ends at the best
/// parameters seen; with smaller batches (whose losses are not comparable) at the last.
pub fn train_series<const K: usize, S, const D: usize>(
    model: &mut S,
    times: &[f32],
    values: &[[f32; D]],
    mask: &[[bool; D]],
    how: &SeriesFit,
    bar: &ProgressBar,
) -> Result<History, Error>
where
    S: Sde<Dual<K>, D> + SdeVjp<D> + Parameters,
    Method: Step<Dual<K>, S, D> + StepVjp<S, D>,
{
    let start = Instant::now();
    let series = Series::masked(times, values, mask)?;
    let mut problem =
        SeriesProblem::new(Method::default(), series, how.max_step, how.trajectories)?
            .with_window(how.window)?
            .with_batch(how.batch)?
            .with_objective(how.objective)?;
    if let Some(sd) = how.noise {
        problem = problem
            .with_learned_noise([sd; D])?
            .with_noisy_start(how.noisy_start);
    }
    let full_batch = problem.all_windows().count() <= how.batch;
    let p = S::PARAMS + problem.noise_params();
    let adam = Adam::new(AdamConfig::lr(how.lr), vec![0.0; p], vec![0.0; p])?;
    let (mut params, mut grad, mut best) = (vec![0.0; p], vec![0.0; p], vec![0.0; p]);
    let mut stats = vec![[Dual::<K>::ZERO; D]; problem.stats_len()];
    let mut tape = match how.gradient {
        GradientMode::Reverse(c) => vec![[0.0; D]; problem.reverse_tape_len_keep_all(S::PARAMS, c)],
        GradientMode::Forward => Vec::new(),
    };
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let config = TrainConfig {
        noise: NoiseMode::Fresh { seed: how.seed },
        clip_norm: Some(100.0),
    };
    let fit = tinysde::train::SeriesFit::new(problem).with_window_seed(how.seed ^ 0x5EED);
    let mut trainer = Trainer::new(model, adam, fit, config, ws)?.with_mode(how.gradient)?;
    let mut history = History::default();
    let report = trainer.run(how.iterations, |p: &Progress| {
        history.record(p, bar);
        ControlFlow::Continue(())
    })?;
    if full_batch {
        trainer.restore_best();
    }
    if how.noise.is_some() {
        history.noise = trainer.fit().problem().observation_noise().to_vec();
    }
    history.best_loss = report.best_loss;
    history.seconds = start.elapsed().as_secs_f64();
    Ok(history)
}
