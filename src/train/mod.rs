//! Losses, optimizers, the trainer and the growing-window schedule.
//!
//! # API summary
//!
//! - Gradients come from [`crate::grad`]: a [`Problem`](crate::grad::Problem) (solver,
//!   `u0`, trajectories, save times, window) and
//!   [`loss_and_gradient`](crate::grad::loss_and_gradient) (forward-mode, `K` lanes per pass,
//!   `K` chosen by the type of the `Dual<K>` statistics scratch).
//! - Losses implement [`Loss`] (`eval<T: Real>(mean, var) -> T`, so one piece of code gives
//!   value and derivatives): [`MeanSquaredError`] (ensemble mean vs data, the seed task),
//!   [`MomentMatching`] (mean and variance, the DiffEqFlux tutorial), [`GaussianNll`] (the
//!   Gaussian likelihood of the data under the ensemble's mean and variance: fits the noise
//!   too). Missing data: pass a mask (`[bool; D]` per row, `true` = present).
//! - One observed series: [`Series`] (times, values, mask) and [`SeriesProblem`] (windows of
//!   consecutive observations, each simulated from its observed start: the one-step-ahead
//!   likelihood for `window = 1`); its gradient through
//!   [`SeriesWindows`](crate::grad::SeriesWindows) in any mode; mini-batches of windows
//!   chosen from a seed; memory independent of the length.
//! - Calibration: [`CalibrationScore`] (coverage of a central band, mean CRPS),
//!   [`crps_gaussian`], [`crps_ensemble`], [`gaussian_band`], [`ensemble_band`],
//!   [`ensemble_quantile`], [`score_series`].
//! - Optimizers implement [`Optimizer`]: [`Adam`] ([`AdamConfig`]) and [`Sgd`]
//!   ([`SgdConfig`]), with state in caller-provided buffers (`[f32; P]`, `&mut [f32]`, ...);
//!   [`clip_global_norm`] / [`global_norm`].
//! - One [`Trainer`] for everything: it fits a [`Fit`] ([`EnsembleFit`]: a problem and a
//!   loss, the initial state optionally trained; [`SeriesFit`]: a series' windows), in a
//!   gradient mode given as a value ([`Trainer::with_mode`]: `Forward`, `Reverse(..)`,
//!   `Cheaper(..)`, [`GradientMode`], `Threads(..)`), its state in the caller's buffers
//!   ([`Trainer::new`] with a [`Workspace`]) or owned (`Trainer::owned(model, fit,
//!   AdamConfig::lr(0.01))`, feature `std`). Iterations of gradient, callback
//!   ([`Progress`] -> `ControlFlow`), best parameters, update; noise per iteration by
//!   [`NoiseMode`] (fresh path from [`iteration_seed`], or fixed); [`Trainer::run`], and
//!   [`Trainer::run_schedule`] for a [`GrowingWindow`]. The loop is written once.
//!
//! Nothing here but the owned trainer and the threaded modes allocates or needs `std`;
//! every size is checked and every bad input is a typed [`Error`](crate::Error) that leaves
//! the caller's data unchanged.
//!
//! Hyperparameters that fit the seed task (`tests/suite/training.rs`, both cut the loss more than
//! tenfold): SOSRI with 5 steps per unit time on `[-3, 3]`, 16 trajectories per iteration,
//! fresh noise per iteration, Adam with `lr = 0.005` (default betas and eps); plain
//! training for 300 iterations, or the growing window `{start: 2, add: 1,
//! iters_per_stage: 200}`. The first drift layer sees `u^3` (up to ~8000 on that data), so
//! it is initialized with `Uniform { limit: 0.01 }` instead of Glorot: Glorot weights
//! saturate every tanh unit for `u > 2` and training stalls on a straight-line fit.

mod fit;
mod loss;
mod metrics;
mod optim;
mod schedule;
mod series;
mod trainer;
#[cfg(feature = "std")]
mod training;

pub use crate::grad::GradientMode;
pub use crate::grad::Loss;
pub use fit::{EnsembleFit, Fit, FitGradient, Iteration, SeriesFit};
pub use loss::{GaussianNll, MeanSquaredError, MomentMatching};
pub use metrics::{
    crps_ensemble, crps_gaussian, ensemble_band, ensemble_quantile, gaussian_band, normal_cdf,
    normal_quantile, CalibrationScore,
};
pub use optim::{clip_global_norm, global_norm, Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
pub use schedule::{iteration_seed, GrowingWindow, NoiseMode, Windows};
pub use series::{score_series, series_loss_value, Batch, Series, SeriesObjective, SeriesProblem};
pub(crate) use series::{series_forward, series_reverse};
#[cfg(feature = "std")]
pub(crate) use series::{series_forward_parallel, series_reverse_parallel};
#[cfg(feature = "std")]
pub use trainer::Owned;
pub use trainer::{
    forward_is_cheaper, Borrowed, Held, Progress, Report, Storage, TrainConfig, Trainer, Workspace,
};
#[cfg(feature = "std")]
pub use training::{IntoOptimizer, TRAINING_LANES};
