//! Fitting one observed series: windows of consecutive observations, each simulated from
//! its observed first value (multiple shooting), scored by the Gaussian likelihood of the
//! rest (calibrated noise) or the squared error of the mean.
//!
//! A series of `n` rows (times, values, optional mask of present entries) is cut into
//! windows: the window starting at row `s` starts an ensemble at the observed `values[s]`
//! at `times[s]`, saves it at the next `window` times, and compares the ensemble's mean and
//! variance there with the observations. With `window = 1` and [`SeriesObjective::GaussianNll`]
//! this is the one-step-ahead likelihood of the series (multiple shooting: every transition
//! is fitted from where the data actually was), which makes the diffusion learn the data's
//! scatter instead of collapsing; longer windows also train multi-step forecasts.
//!
//! Each iteration uses a batch of windows chosen deterministically from a seed; memory does
//! not depend on the series' length (only on `window` and the parameter count), so a
//! 100,000-row series trains like a 100-row one. Missing entries (mask `false`) are skipped
//! in the loss; a window can only start at a row whose every entry is present. Each
//! window is integrated on a grid [`TimeGrid::with_max_step`] through its times, so uneven
//! series need no tiny steps, and window `s` draws the noise of trajectories
//! `s * trajectories ..`, so windows are independent and every draw is a pure function of
//! (seed, window, trajectory, step).
//!
//! Gradients come in two modes with the same loss bits: forward mode
//! ([`Forward`](crate::grad::Forward), `ceil(PARAMS / K)` solves per window carrying `K`
//! tangents) and reverse mode ([`Reverse`](crate::grad::Reverse), the discrete adjoint:
//! about three to five `f32` solves per window whatever the parameter count, in a
//! caller-provided tape of [`SeriesProblem::reverse_tape_len`] rows). For the seed model
//! (122 parameters) reverse mode is about ten times faster. The
//! [`Trainer`](super::Trainer) fits a series through [`SeriesFit`](super::SeriesFit), in
//! either mode ([`Trainer::with_mode`](super::Trainer::with_mode)).
//!
//! ```
//! use tinysde::nn::{Dense, Identity, Parameters};
//! use tinysde::noise::Brownian;
//! use tinysde::sde::NeuralSde;
//! use tinysde::solve::EulerMaruyama;
//! use tinysde::grad::{loss_and_gradient, Forward, Scratch, SeriesWindows};
//! use tinysde::train::{Series, SeriesProblem};
//! use tinysde::{Dual, Real};
//!
//! type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
//! let mut model = Model::default();
//! model.write_params(&[-0.5, 0.0, 0.0, 0.3])?; // du = -0.5 u dt + 0.3 dW
//! let times = [0.0, 0.5, 1.5, 2.0, 3.0];
//! let values = [[1.0], [0.8], [f32::NAN], [0.3], [0.2]];
//! let mask = [[true], [true], [false], [true], [true]];
//! let series = Series::masked(&times, &values, &mask)?;
//! let problem = SeriesProblem::new(EulerMaruyama, series, 0.1, 32)?; // one step ahead
//! let mut stats = [[Dual::<4>::ZERO; 1]; 2];
//! let mut grad = [0.0f32; Model::PARAMS];
//! let batch = problem.batch(7); // all usable windows: rows 0, 1 and 3 (row 2 is missing)
//! assert_eq!(batch.clone().collect::<Vec<_>>(), [0, 1, 3]);
//! let noise = Brownian::new(1);
//! let windows = SeriesWindows::new(&problem, &noise, batch);
//! let nll = loss_and_gradient(&windows, &model, Forward, &mut Scratch::new(&mut stats, &mut []), &mut grad)?;
//! assert!(nll.is_finite() && grad.iter().all(|g| g.is_finite()));
//! # Ok::<(), tinysde::Error>(())
//! ```

mod data;
mod forward;
mod problem;
mod reverse;
mod score;

pub use data::Series;
pub(crate) use forward::series_forward;
#[cfg(feature = "std")]
pub(crate) use forward::series_forward_parallel;
pub use forward::series_loss_value;
pub(crate) use problem::check_method;
pub use problem::{Batch, SeriesObjective, SeriesProblem};
pub(crate) use reverse::series_reverse;
#[cfg(feature = "std")]
pub(crate) use reverse::series_reverse_parallel;
pub use score::score_series;

// The pieces the passes share, for the submodules (`super::name`).
use forward::finite_loss;
use problem::{bad_start, split_stats, Shifted};
