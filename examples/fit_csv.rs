//! Fit a neural SDE to your own time series from a CSV file, and forecast it.
//!
//! ```text
//! cargo run --release --features examples --example fit_csv -- --help
//! cargo run --release --features examples --example fit_csv -- examples/data/nile.csv --out target/nile
//! cargo run --release --features examples --example fit_csv -- examples/data/co2.csv --horizon 104
//! ```
//!
//! **Input.** A CSV file: a time column, then one or two value columns (the format is in
//! `docs/csv-format.md`: optional header, `#` comments, times as numbers, ISO-8601 dates or
//! date-times, strictly increasing; an empty cell or `NA` is a missing value). With one value
//! column a one-dimensional model is fitted, with two a two-dimensional one.
//!
//! **Scaling.** Times are read as `f64` and mapped to the model's `f32` time by
//! `tau = (t - t0) / unit`, one model time unit per median interval. Each value column is
//! standardized by the mean and standard deviation of its observed values. The scaling is
//! written to `fit_csv.json` next to the weights (documented in `docs/weights-format.md`).
//!
//! **Model and training.** The seed task's network on a D-dimensional state (drift `u ->
//! u^3 -> Dense(D, 20, quick tanh) -> Dense(20, D)`, diffusion `u -> Dense(D, 20, quick
//! sigmoid) -> Dense(20, D)`), SOSRI with steps of at most half a median interval. The
//! series is cut into windows (`--window` observations after an observed start row); each
//! iteration draws `--batch` windows, starts `--trajectories` paths at each window's observed
//! value, and scores the observations that follow by the Gaussian likelihood of the paths'
//! mean and variance (`--loss calibrated`, the default: the band learns the data's scatter)
//! or by the squared error of their mean (`--loss mse`, the seed article's loss). Memory
//! does not grow with the series' length; missing values are left out.
//!
//! **Observation noise** (`--noise learned`, calibrated loss; not the default): the
//! values are read as `y = u + e`, `e ~ N(0, s_c^2)` with a scale `s_c` per column learned
//! with the model (log-parameterised, from 0.1 standardized units), so measurement scatter
//! need not be explained as diffusion; the likelihood's variance is the paths' plus
//! `s_c^2`, the model file's columns carry `s_c`, and the forecaster's bands are paths plus
//! noise, its update the ensemble Kalman one. `--noise learned-start`: as `learned`, and each
//! training window's start is a noisy reading too (`SeriesProblem::with_noisy_start`: its
//! variance `s_c^2` is added to every prediction of the window), so that with `--window` of
//! 2 or more the likelihood tells measurement scatter from diffusion. `--noise auto`: chosen
//! by validation among `none` and `learned-start` at `--window W` and `none` at `2 W`: each
//! is fitted on the training rows but the last 20 % (at most 200) and predicts those one step
//! ahead as the held-out rows are; the lowest CRPS is then fitted on all training rows (about
//! 4x the training time; it is printed with each candidate's score). `--noise none` (the
//! default): no observation noise (on benches/forecast learned noise let the filter lag
//! CO2's and unemployment's movements: 2-4x worse there; see benches/forecast/README.md).
//! `--noise filter`: trained through the forecaster's filter (`train_filtered`): half the
//! iterations as `none`, then twice the noise and a scale of the diffusion are chosen by the
//! CRPS of the ensemble Kalman filter's one-step predictions of the last 300 training rows
//! (noise 0, or 1/8 to 1 of the series' one-step scatter, with the diffusion taking the rest
//! of the one-step variance), and if a noise is chosen a quarter of the iterations train
//! windows started from the filter's analysis (its mean; its variance added to the
//! likelihood's with the noise's); the last choice, for the final model, is the file's.
//!
//! **Time features** (`--period P`, up to two): a seasonal model
//! (`tinysde::sde::Seasonal`) whose drift and diffusion also see `sin` and `cos` of
//! `2 pi t / P`, `P` in the file's time units (seconds for dates, or with a suffix `h`, `d`,
//! `w`, `y`: `--period 1y`), networks `[u, features] -> Dense(20, quick tanh) -> Dense(D)`
//! and `-> Dense(20, quick sigmoid) -> Dense(D)`. The periods are stored in the model file.
//!
//! **Deterministic mean** (`--mean auto`, the default): the model values of a column are
//! read as `z(tau) = m(tau) + u(tau)`, `m` fitted by least squares on the training rows
//! (`common::mean`, in `f64`) and the SDE trained on the residuals `u`, computed in `f32` by
//! `tinysde::forecast::file::Trend::at` as the forecaster computes them. `auto` fits a level
//! and `--harmonics` (default 3) harmonics of the period when the period is a calendar one
//! (given with `--period`, or detected as a whole number of rows or, for dates, a year;
//! `is_calendar`), nothing otherwise (a cycle of a fractional number of rows, as sunspots',
//! drifts in phase); `season` does so for any period, `trend` fits a line, `full` both,
//! `none` nothing. The model file carries the mean (its `TRND` section); the forecaster
//! subtracts it from each reading and adds it to each prediction. On benches/forecast it
//! lowered the held-out CRPS of CO2, AirPassengers, nottem, UKgas and El Nino (5-18 %) and
//! raised USAccDeaths' by 5 %; a trend line made the random-walk-like series worse (Nile,
//! LakeHuron, USAccDeaths), so `auto` fits none.
//!
//! **Seasonal difference** (`--difference auto`, the default): with a period of a whole
//! number `s` of rows (within 0.25: weekly data with a yearly period of 52.18 weeks get 52;
//! `seasonal_lag`), the SDE may model `u_i = z_i - z_(i - s)`, the change of the model value
//! over one period, instead of `z`: each prediction is then the value one period back plus
//! the SDE's prediction of `u`, so a season whose shape or amplitude changes over the years
//! is carried forward from the last period (what a seasonal ARIMA's `D = 1` does). The
//! column's standard deviation is then that of its differences on the training rows, and
//! `--mean auto` fits a level only (the mean change over a period). `auto` fits both on the
//! training rows but the last 20 % (at most 200), scores them one step ahead, and keeps
//! the lower CRPS (a calendar period and `--noise none` only; else no difference);
//! `seasonal` forces it, `none` turns it off. The model file carries the lag (its `SDIF`
//! section); the forecaster keeps the last `s` readings and forecasts at most `s` rows past
//! the last one (`--horizon` is limited to `s`). On benches/forecast `auto` chose the
//! difference for UKgas, AirPassengers and USAccDeaths (held-out CRPS 98.3 -> 24.8, 14.7 ->
//! 10.3, 254 -> 237) and none for nottem, El Nino and CO2, where it would have been worse.
//!
//! **Transform** (`--transform auto`, the default): a new model fits the logarithm of the
//! values (standardized) when every value of the training rows is positive and the level
//! grows (the mean of the last quarter of the training rows at least 1.5 times the first
//! quarter's, every column; `grows`): growing seasons become constant ones and bands stay
//! positive. Otherwise, or with `--transform affine`, the values themselves.
//!
//! **Without `--period`** a new model detects at most one period from the training rows
//! only (never the held-out ones; `detect_period`): the highest peak `L >= 2` rows,
//! `L <= m/3`, of the autocorrelation of the first differences (`m` of them) if it is at
//! least `max(0.3, 4/sqrt(m))`, reduced to its fundamental (a peak at two years whose half
//! is also a peak is a year; within 0.1 rows of a whole number of rows, that number), times
//! the median interval; for dates a period within 3 % of a year is a year. A trend, a
//! random walk or white noise detect none. The summary and `fit_csv.json` (`periods`)
//! give the period used; `--period none` turns detection off.
//!
//! **Predictions and scores.** Every row is predicted from the last fully observed row
//! before it (`--eval-trajectories` paths): the band in the plot, the rows of
//! `forecast.csv`, and the printed coverage of the 5-95 % band and mean CRPS. `--horizon`
//! adds forecast rows past the end; `--holdout N` trains without the last N rows and scores
//! them apart.
//!
//! **Outputs** (in `--out DIR`, default `target/fit_csv`; all files appear together, or none
//! if anything fails): `fit_csv.tsm` (the deployable model file: the model with its scaling,
//! solver and forecast defaults, `docs/weights-format.md` version 2), `fit_csv.weights`,
//! `fit_csv.json`, `fit_csv_fit.png` (data, model mean and 5-95 % band), `fit_csv_loss.png`,
//! and `forecast.csv` with columns `time,mean,q05,q50,q95`: one row per data time in the
//! file's own time format, then `--horizon` rows spaced by the median interval.
//!
//! **Predictions are the streaming forecaster's** (`tinysde::forecast::Forecaster`, made from
//! `fit_csv.tsm`): the rows are observed one by one and each is predicted before it is
//! observed, so a device running the same file on the same readings computes the same bits.
//!
//! **Saved models.** `--model FILE.tsm` forecasts the CSV (the same series, or its
//! continuation) with a saved model file instead of training: its scaling, solver and paths,
//! then `--horizon` rows; it writes `forecast.csv` and `fit_csv_fit.png`. `--resume
//! FILE.tsm` starts training from the file's parameters, with its scaling and solver step.
//!
//! Exit codes: 0 success, 1 a problem with the data or the run (one-line message on stderr,
//! nothing written), 2 a problem with the command line.

#[path = "common/mod.rs"]
// The test suite compiles this file as a module beside the other examples and gives them one
// copy of `common` (tests/suite/main.rs): three copies cost the suite 8 % more CPU to build.
#[cfg(not(test))]
pub mod common;
#[cfg(test)]
pub(crate) use crate::common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use common::csv::{self as table_csv, Table, TimeFormat};
use common::fit::{self, History, Model};
use common::plot::{self, Chart, Item, Legend};
use serde_json::{json, Value};
use std::ops::ControlFlow;
use tinysde::forecast::baseline::{Ar1, OneStep, OneStepScore, Persistence};
use tinysde::forecast::file::{
    self as model_file, Column, Defaults, Deployment, ModelFile, SolverSpec, TimeAxis, Transform,
    Trend,
};
use tinysde::forecast::{Forecaster, Vecs};
use tinysde::nn::Parameters;
use tinysde::nn::{Dense, Identity, InitScheme, QuickSigmoid, QuickTanh};
use tinysde::sde::{Sde, SdeVjp, Seasonal};
use tinysde::solve::Checkpoints;
use tinysde::solve::{Step, StepVjp};
use tinysde::train::{
    AdamConfig, CalibrationScore, GradientMode, NoiseMode, Progress, Series, SeriesObjective,
    SeriesProblem, TrainConfig, Trainer, TRAINING_LANES,
};
use tinysde::weights::Describe;
use tinysde::Dual;

/// Fit a neural SDE to a time series in a CSV file; write the weights, plots and a forecast.
///
/// The CSV has a time column (numbers, ISO-8601 dates or date-times) and one or two value
/// columns; empty cells and NA are missing values. See docs/csv-format.md.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(name = "fit_csv", version, allow_negative_numbers = true)]
#[command(
    after_help = "Example:\n  cargo run --release --features examples --example fit_csv -- examples/data/nile.csv --out target/nile\n\n\
Exit codes: 0 success; 1 bad data or failed run (nothing is written); 2 bad command line.\n\
Progress bars go to stderr; --quiet (or the environment variable TINYSDE_NO_PROGRESS) turns them off."
)]
pub struct Cli {
    /// The CSV file to fit.
    pub csv: PathBuf,
    /// Output directory (created if missing).
    #[arg(short, long, value_name = "DIR", default_value = "target/fit_csv")]
    pub out: PathBuf,
    /// Training iterations, exactly.
    #[arg(short, long, value_name = "N", default_value_t = 400,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
    /// Sampled paths per window and training iteration.
    #[arg(short, long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub trajectories: u32,
    /// Windows per training iteration (all of them if the series has fewer).
    #[arg(short, long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Observations per window after its observed start (1: one step ahead).
    #[arg(short, long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Sampled paths per prediction, for the band, the forecast and the scores.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(20..=100_000))]
    pub eval_trajectories: u32,
    /// The training loss.
    #[arg(short, long, value_enum, default_value_t = LossKind::Calibrated)]
    pub loss: LossKind,
    /// Observation noise (calibrated loss): `learned` fits a per-column measurement noise
    /// `y = u + e`, `e ~ N(0, s^2)`, with the model (the band is paths plus noise; the model
    /// file's columns carry `s`, and the forecaster updates its ensemble by the Kalman gain
    /// instead of resetting it to each reading); `learned-start` also treats each training
    /// window's start as a noisy reading (with `--window` >= 2 this tells scatter from
    /// diffusion); `auto` chooses among `none` and `learned-start` at `--window W` and `none`
    /// at `2 W` by the CRPS on the last 20 % of the training rows; `filter` trains through
    /// the forecaster's filter: the noise (and the diffusion's scale) that predicts the last
    /// training rows best through the ensemble Kalman filter, and windows started from the
    /// filter's analysis (about 2x the training time); `none` (the default: on the forecast
    /// benchmark learned noise made the filter lag CO2's trend and unemployment's turns,
    /// 2-4x worse) explains all scatter as diffusion.
    #[arg(long, value_enum, default_value_t = NoiseKind::None)]
    pub noise: NoiseKind,
    /// The calibrated loss's variance floor, in standardized units squared (keep it well
    /// below the squared one-step scatter of the standardized data).
    #[arg(long, value_name = "VAR", default_value_t = 1e-5)]
    pub var_floor: f32,
    /// Train on all rows but the last N, and score those N separately (held out).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub holdout: usize,
    /// Forecast this many median intervals past the last time.
    #[arg(long, value_name = "STEPS", default_value_t = 0)]
    pub horizon: u32,
    /// Adam's learning rate.
    #[arg(long, value_name = "RATE", default_value_t = 0.01)]
    pub lr: f32,
    /// Seed of the initial weights and the training noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How training gradients are computed (the same loss either way; reverse is faster).
    #[arg(long, value_enum, default_value_t = GradientKind::Reverse)]
    pub gradient: GradientKind,
    /// The CSV field separator (one character, e.g. ';' or '\t' written as a real tab).
    #[arg(short, long, value_name = "CHAR", default_value_t = ',')]
    pub delimiter: char,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
    /// Forecast with this saved model file (fit_csv.tsm) instead of training: its scaling,
    /// solver, paths and noise seed (--eval-trajectories is not used).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub model: Option<PathBuf>,
    /// Continue training from this saved model file (fit_csv.tsm): its parameters, scaling
    /// and solver step.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// A cycle the drift and diffusion see as sin/cos of the time (up to 2, e.g. a year and
    /// a day): in the file's time units (the numbers; seconds for dates), or for dates and
    /// date-times with a suffix h, d, w or y (365.2425 days), e.g. `--period 1y`. Without
    /// it, one period is detected from the training rows (the autocorrelation of the
    /// differences: a peak of at least 0.3); `--period none` turns that off.
    #[arg(long, value_name = "P", conflicts_with_all = ["model", "resume"])]
    pub period: Vec<String>,
    /// How values map to the model: `log` fits the logarithm of positive values (bands
    /// stay positive; CRPS and coverage are still scored on the values); `auto` (the
    /// default) takes `log` when every value of the training rows is positive and the level
    /// grows (the mean of the last quarter of the training rows at least 1.5 times that of
    /// the first quarter, in every column), else `affine`.
    #[arg(long, value_enum, default_value_t = TransformKind::Auto,
          conflicts_with_all = ["model", "resume"])]
    pub transform: TransformKind,
    /// A deterministic mean under the SDE, fitted by least squares on the training rows
    /// (in model units, after the transform): `trend` a line, `season` a constant and
    /// `--harmonics` harmonics of the (given or detected) period, `full` both, `none`
    /// nothing; `auto` (the default) `season` for a calendar period (given, a whole number
    /// of rows, or a year), else `none`. The SDE is trained on the residuals and the model
    /// file carries the mean (its `TRND` section).
    #[arg(long, value_enum, default_value_t = MeanKind::Auto,
          conflicts_with_all = ["model", "resume"])]
    pub mean: MeanKind,
    /// Harmonics of the period in the deterministic mean (`--mean season`, `full`, `auto`).
    #[arg(long, value_name = "K", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(1..=4))]
    pub harmonics: u8,
    /// A seasonal difference: `seasonal` makes the SDE model `u_i = z_i - z_(i - s)`, `z`
    /// the model value and `s` the period in rows (rounded; it must be within 0.25 of a
    /// whole number of at least 2 rows), and predicts `z_(i - s)` plus `u`; the deterministic
    /// mean of `--mean auto` is then a level (the change over one period); `none` models
    /// `z`; `auto` (the default) chooses between them by the CRPS on the last 20 % of the
    /// training rows, for a calendar period with `--noise none` only (else `none`).
    #[arg(long, value_enum, default_value_t = DifferenceKind::Auto,
          conflicts_with_all = ["model", "resume"])]
    pub difference: DifferenceKind,
}

/// Whether a new model differences each column by its value one period back
/// ([`seasonal_lag`]).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DifferenceKind {
    /// No difference: the SDE models the model values themselves.
    None,
    /// The value one period (a whole number of rows) back is subtracted.
    Seasonal,
    /// Chosen by validation between `none` and `seasonal` (a calendar period of a whole
    /// number of rows only): each is fitted on the training rows but the last
    /// [`validation_rows_of`], which it then predicts one step ahead; the lower mean CRPS
    /// wins and is fitted on all training rows.
    #[default]
    Auto,
}

/// The lag of a seasonal difference for `period` (file time units) with `unit` file time
/// units per row: the period in rows, rounded, if it is at least 2 and within 0.25 of a
/// whole number (weekly data with a yearly period, 52.18 weeks, get 52); `None` otherwise.
pub fn seasonal_lag(period: f64, unit: f64) -> Option<usize> {
    let rows = period / unit;
    let lag = rows.round();
    (rows.is_finite() && lag >= 2.0 && (rows - lag).abs() <= 0.25 && lag <= 10_000.0)
        .then_some(lag as usize)
}

/// Which deterministic mean a new model has under its SDE ([`common::mean`]).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MeanKind {
    /// None: the SDE models the values themselves.
    None,
    /// A line: level and slope.
    Trend,
    /// A level and harmonics of the period (none without a period).
    Season,
    /// A level only (what `auto` becomes under a seasonal difference: the mean change over
    /// one period).
    Level,
    /// A line and harmonics of the period (a line without a period).
    Full,
    /// `season` for a calendar period: one given with `--period`, or detected as a whole
    /// number of rows or (dates) a year ([`is_calendar`]); else `none`.
    #[default]
    Auto,
}

impl MeanKind {
    /// The terms of the mean with `period` (model time units, if any) and `harmonics`;
    /// `None` for no mean.
    pub fn terms(self, period: Option<f32>, harmonics: usize) -> Option<common::mean::Terms> {
        let season = period.map(|p| (p, harmonics));
        match self {
            MeanKind::None | MeanKind::Auto => None,
            MeanKind::Trend => Some(common::mean::Terms {
                slope: true,
                season: None,
            }),
            MeanKind::Season => season.map(|s| common::mean::Terms {
                slope: false,
                season: Some(s),
            }),
            MeanKind::Level => Some(common::mean::Terms {
                slope: false,
                season: None,
            }),
            MeanKind::Full => Some(common::mean::Terms {
                slope: true,
                season,
            }),
        }
    }
}

/// How values map to the model's state.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TransformKind {
    /// `log` for positive series whose level grows ([`grows`]), else `affine`.
    #[default]
    Auto,
    /// Standardized values.
    Affine,
    /// Standardized logarithms (positive values only).
    Log,
}

impl TransformKind {
    /// The model file's transform (`auto` unresolved: affine).
    pub fn transform(self) -> Transform {
        match self {
            TransformKind::Auto | TransformKind::Affine => Transform::Affine,
            TransformKind::Log => Transform::Log,
        }
    }
}

/// The ratio of the last quarter's mean to the first quarter's above which `--transform
/// auto` takes the logarithm.
pub const GROWTH_RATIO: f64 = 1.5;

/// Whether the first `train` rows of `table` are positive and growing (`--transform auto`
/// takes the logarithm then): every present value `> 0`, and in every column the mean of
/// the present values among the last quarter of those rows at least [`GROWTH_RATIO`] times
/// the mean among the first quarter (at least 8 rows; each quarter needs a value).
pub fn grows(table: &Table, train: usize) -> bool {
    let rows = &table.rows[..train.min(table.rows.len())];
    if rows.len() < 8 {
        return false;
    }
    let q = rows.len() / 4;
    (0..table.value_columns()).all(|c| {
        let values = |part: &[Vec<Option<f64>>]| -> Vec<f64> {
            part.iter()
                .filter_map(|r| r.get(c).copied().flatten())
                .collect()
        };
        let all = values(rows);
        let (first, last) = (values(&rows[..q]), values(&rows[rows.len() - q..]));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        all.iter().all(|&x| x > 0.0)
            && !first.is_empty()
            && !last.is_empty()
            && mean(&last) >= GROWTH_RATIO * mean(&first)
    })
}

/// The training loss.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Gaussian likelihood of each window's observations given its start (multiple
    /// shooting): fits the noise to the data's scatter, so the band is calibrated.
    Calibrated,
    /// Mean squared error between the observations and the mean of the sampled paths (the
    /// seed article's loss): fits the mean only; the band is not fitted.
    Mse,
}

/// Observation noise of the calibrated fit.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseKind {
    /// A per-column noise scale learned with the model (`SeriesProblem::with_learned_noise`).
    Learned,
    /// As `learned`, and each training window starts from a noisy reading as the
    /// forecaster's ensemble does (`SeriesProblem::with_noisy_start`).
    LearnedStart,
    /// Chosen by validation ([`auto_candidates`]): each candidate is fitted on the training
    /// rows but the last [`validation_rows`], which it then predicts one step ahead as the
    /// held-out rows are; the lowest mean CRPS (relative to the first candidate's, per
    /// column) wins and is fitted on all training rows.
    Auto,
    /// No observation noise.
    None,
    /// Trained through the forecaster's filter ([`train_filtered`]): the noise scale that
    /// predicts the training rows best through the ensemble Kalman filter, and windows
    /// started from the filter's analysis.
    Filter,
}

/// The learned observation noise's initial scale, in standardized units.
pub const INITIAL_NOISE: f32 = 0.1;

/// How training gradients are computed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradientKind {
    /// Reverse mode (the discrete adjoint): about five solves per window whatever the
    /// number of parameters.
    Reverse,
    /// Forward mode: one solve carrying K tangents per K parameters.
    Forward,
}

impl GradientKind {
    /// The library's gradient mode (reverse mode keeps every state of a window's paths).
    pub fn mode(self) -> GradientMode {
        match self {
            GradientKind::Reverse => GradientMode::Reverse(Checkpoints::All),
            GradientKind::Forward => GradientMode::Forward,
        }
    }
}

impl LossKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Calibrated => "calibrated",
            LossKind::Mse => "mse",
        }
    }
}

/// How a run is sized.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Training iterations in all (exactly this many run).
    pub iterations: u32,
    /// Adam's learning rate.
    pub lr: f32,
    /// Paths per window and iteration.
    pub trajectories: usize,
    /// Windows per iteration.
    pub batch: usize,
    /// Observations per window.
    pub window: usize,
    /// Paths per prediction (band, forecast, scores).
    pub eval_trajectories: usize,
    /// The loss.
    pub loss: LossKind,
    /// How training gradients are computed.
    pub gradient: GradientKind,
    /// The Gaussian likelihood's variance floor (standardized units squared).
    pub var_floor: f32,
    /// Observation noise of the calibrated loss.
    pub noise: NoiseKind,
    /// Forecast rows past the last time, spaced by the median interval.
    pub horizon: u32,
    /// Rows at the end left out of training and scored separately.
    pub holdout: usize,
    /// Seeds: initial weights, training noise.
    pub seeds: (u64, u64),
    /// The CSV reader's options.
    pub csv: table_csv::Options,
    /// What the run starts from: a new model, or a saved model file to forecast with or to
    /// continue training.
    pub start: Start,
    /// The periods of the time features (file time units, seconds for dates), each with
    /// whether it was written with a unit suffix (dates only); at most [`MAX_PERIODS`].
    pub periods: Vec<(f64, bool)>,
    /// The value transform of a new model.
    pub transform: TransformKind,
    /// The deterministic mean of a new model.
    pub mean: MeanKind,
    /// Its harmonics.
    pub harmonics: usize,
    /// Without `periods`: whether a new model detects a period from the training rows
    /// ([`detect_period`]); `--period none` turns it off.
    pub detect_period: bool,
    /// The seasonal difference of a new model.
    pub difference: DifferenceKind,
}

/// The most periods `--period` takes.
pub const MAX_PERIODS: usize = 2;

/// Parses a `--period` value: a positive finite number of file time units, or for date
/// times a number with a suffix `h`, `d`, `w` or `y` (365.2425 days), in seconds.
pub fn parse_period(text: &str) -> Result<(f64, bool), String> {
    let bad = || {
        format!(
            "--period {text}: must be a positive number of the file's time units (seconds for dates), or a number with h, d, w or y"
        )
    };
    let (number, scale) = match text.char_indices().last() {
        Some((i, 'h')) => (&text[..i], 3_600.0),
        Some((i, 'd')) => (&text[..i], 86_400.0),
        Some((i, 'w')) => (&text[..i], 7.0 * 86_400.0),
        Some((i, 'y')) => (&text[..i], 365.2425 * 86_400.0),
        _ => (text, 1.0),
    };
    let p: f64 = number.trim().parse().map_err(|_| bad())?;
    let p = p * scale;
    if p.is_finite() && p > 0.0 {
        Ok((p, scale != 1.0))
    } else {
        Err(bad())
    }
}

/// What a run starts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// A new model, trained on the CSV.
    #[default]
    Fresh,
    /// A saved model file (`fit_csv.tsm`): forecast only, no training.
    Forecast(PathBuf),
    /// A saved model file: training continues from its parameters, with its scaling.
    Resume(PathBuf),
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            iterations: 400,
            lr: 0.01,
            trajectories: 16,
            batch: 32,
            window: 1,
            eval_trajectories: 500,
            loss: LossKind::Calibrated,
            gradient: GradientKind::Reverse,
            var_floor: 1e-5,
            noise: NoiseKind::None,
            horizon: 0,
            holdout: 0,
            seeds: (1, 7),
            csv: table_csv::Options::default(),
            start: Start::Fresh,
            periods: Vec::new(),
            transform: TransformKind::Auto,
            mean: MeanKind::Auto,
            harmonics: 3,
            detect_period: true,
            difference: DifferenceKind::Auto,
        }
    }
}

impl Settings {
    /// The settings a command line asks for.
    pub fn from_cli(cli: &Cli) -> Result<Self, String> {
        let delimiter = u8::try_from(cli.delimiter)
            .ok()
            .filter(|d| d.is_ascii() && !matches!(d, b'"' | b'#' | b'\n' | b'\r'))
            .ok_or(format!(
                "--delimiter {:?}: the separator must be one ASCII character other than a quote, # or a line break",
                cli.delimiter
            ))?;
        if !(cli.lr.is_finite() && cli.lr > 0.0) {
            return Err(format!("--lr {}: must be a positive number", cli.lr));
        }
        if cli.period.len() > MAX_PERIODS {
            return Err(format!(
                "--period given {} times; fit_csv takes at most {MAX_PERIODS}",
                cli.period.len()
            ));
        }
        let none = cli.period.iter().any(|p| p == "none");
        if none && cli.period.len() > 1 {
            return Err("--period none: give it alone (no other --period)".into());
        }
        let periods = cli
            .period
            .iter()
            .filter(|p| *p != "none")
            .map(|p| parse_period(p))
            .collect::<Result<Vec<_>, String>>()?;
        if none && cli.difference == DifferenceKind::Seasonal {
            return Err("--difference seasonal needs a period: not with --period none".into());
        }
        if cli.difference == DifferenceKind::Seasonal && !matches!(cli.noise, NoiseKind::None) {
            return Err("--difference seasonal: only with --noise none (the default)".into());
        }
        if !(cli.var_floor.is_finite() && cli.var_floor > 0.0) {
            return Err(format!(
                "--var-floor {}: must be a positive number",
                cli.var_floor
            ));
        }
        Ok(Self {
            iterations: cli.iterations,
            var_floor: cli.var_floor,
            noise: cli.noise,
            lr: cli.lr,
            trajectories: cli.trajectories as usize,
            batch: cli.batch as usize,
            window: cli.window as usize,
            eval_trajectories: cli.eval_trajectories as usize,
            loss: cli.loss,
            gradient: cli.gradient,
            horizon: cli.horizon,
            holdout: cli.holdout,
            seeds: (cli.seed, cli.seed.wrapping_add(6)),
            csv: table_csv::Options { delimiter },
            start: match (&cli.model, &cli.resume) {
                (Some(m), _) => Start::Forecast(m.clone()),
                (None, Some(r)) => Start::Resume(r.clone()),
                (None, None) => Start::Fresh,
            },
            periods,
            transform: cli.transform,
            mean: cli.mean,
            harmonics: usize::from(cli.harmonics),
            detect_period: !none,
            difference: cli.difference,
        })
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Summary {
    /// Value columns fitted.
    pub dims: usize,
    /// Rows.
    pub rows: usize,
    /// Missing values.
    pub missing: usize,
    /// The largest solver step, in the file's time unit (seconds for dates).
    pub max_step: f64,
    /// The name of that unit.
    pub time_unit: &'static str,
    /// Training history.
    pub history: History,
    /// Per value column: the fraction of observed values (after the first row) inside the
    /// model's 5-95 % band.
    pub coverage: Vec<f64>,
    /// Per value column: the mean CRPS of the ensemble at the observed values (file units).
    pub crps: Vec<f64>,
    /// The same two scores on the held-out rows (empty without `holdout`).
    pub holdout_coverage: Vec<f64>,
    /// See `holdout_coverage`.
    pub holdout_crps: Vec<f64>,
    /// The periods of the time features (file time units, seconds for dates): the given
    /// ones, or the detected one, or none.
    pub periods: Vec<f64>,
    /// The period detected from the training rows (without `--period`), if any.
    pub detected: Option<Detected>,
    /// Each column's value transform (`--transform auto` resolved).
    pub transforms: Vec<Transform>,
    /// Each column's deterministic mean under the SDE (model units; empty for none).
    pub trends: Vec<Trend>,
    /// `--noise auto`: each candidate (noise, window) with its validation score (mean CRPS
    /// relative to the first candidate's), in [`auto_candidates`]' order, and the number of
    /// validation rows; empty otherwise (or when the training rows are too few to validate).
    pub validation: Validation,
    /// See `validation`.
    pub validation_rows: usize,
    /// The seasonal difference's lag in rows (0: none).
    pub lag: usize,
    /// `--difference auto`: each candidate's mean CRPS on the validation rows (empty
    /// otherwise, or when it did not validate).
    pub difference_scores: Vec<(DifferenceKind, f64)>,
    /// Persistence's and AR(1)'s scores on the same rows (or why there are none).
    pub baselines: Result<Baselines, String>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// The affine maps between the file's units and the model's, computed in `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    /// How the file writes times.
    pub time_format: TimeFormat,
    /// First time (Unix seconds for dates).
    pub t0: f64,
    /// File time units per model time unit.
    pub time_unit: f64,
    /// Per value column: name, mean and standard deviation of the observed values (of
    /// their logarithms for a log column).
    pub columns: Vec<(String, f64, f64)>,
    /// Per value column: the transform (affine, or log then affine).
    pub transforms: Vec<Transform>,
}

impl Scaling {
    /// Scaling from the table, every column with `transform`; the log transform needs
    /// positive values (an error naming the first other one).
    pub fn with_transform(table: &Table, transform: Transform, file: &str) -> Result<Self, String> {
        if transform == Transform::Log {
            for (row, line) in table.rows.iter().zip(&table.lines) {
                if let Some((c, x)) = row
                    .iter()
                    .enumerate()
                    .find_map(|(c, x)| x.filter(|&x| x <= 0.0).map(|x| (c, x)))
                {
                    return Err(format!(
                        "{file}:{line}: column {}: {} is not positive; --transform log needs positive values",
                        c + 2,
                        table_csv::format_number(x)
                    ));
                }
            }
        }
        let mut s = Self::of(&Table {
            rows: table
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|x| match transform {
                            Transform::Affine => *x,
                            Transform::Log => x.map(|x| f64::from(tinysde::math::ln(x as f32))),
                        })
                        .collect()
                })
                .collect(),
            ..table.clone()
        });
        s.transforms = vec![transform; s.columns.len()];
        Ok(s)
    }

    /// Scaling from the table (affine columns).
    pub fn of(table: &Table) -> Self {
        let t0 = table.times[0];
        let last = table.times[table.times.len() - 1];
        // One model time unit per typical interval: the drift and the noise over one
        // interval are then of order one, the scale the networks start at.
        let time_unit = median_gap(&table.times);
        let _ = last;
        let columns = (0..table.value_columns())
            .map(|c| {
                let seen: Vec<f64> = table.rows.iter().filter_map(|r| r[c]).collect();
                let n = seen.len().max(1) as f64;
                let m = seen.iter().sum::<f64>() / n;
                let v = seen.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
                let s = v.sqrt();
                let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
                (table.names[c + 1].clone(), m, s)
            })
            .collect();
        let transforms = vec![Transform::Affine; table.value_columns()];
        Self {
            time_format: table.time_format,
            t0,
            time_unit,
            columns,
            transforms,
        }
    }
    /// The scaling a saved model file carries (`path` names it in errors), for `table`:
    /// the same time format and as many value columns, each an affine map of its state
    /// coordinate.
    pub fn of_file(file: &ModelFile<'_>, table: &Table, path: &str) -> Result<Self, String> {
        let not_ours = |what: &str| {
            format!("{path}: {what}: not a model file of fit_csv (format version 2, fit_csv.tsm)")
        };
        let time = file.time().ok_or_else(|| not_ours("no time axis"))?;
        let time_format = match time.format {
            model_file::TimeFormat::Number => TimeFormat::Number,
            model_file::TimeFormat::Date => TimeFormat::Date,
            model_file::TimeFormat::DateTime => TimeFormat::DateTime,
        };
        if time_format != table.time_format {
            return Err(format!(
                "{path}: the model's times are {}, the CSV's are {}",
                format_name(time_format),
                format_name(table.time_format)
            ));
        }
        let n = file.column_count().ok_or_else(|| not_ours("no columns"))?;
        if n != table.value_columns() {
            return Err(format!(
                "{path}: the model observes {n} value column(s), the CSV has {}",
                table.value_columns()
            ));
        }
        let columns = (0..n)
            .map(|c| {
                let col = file.column(c).ok_or_else(|| not_ours("no column scaling"))?;
                if usize::from(col.state_index) != c {
                    return Err(format!(
                        "{path}: column {} does not observe state coordinate {c} (fit_csv reads those only)",
                        c + 2
                    ));
                }
                Ok((table.names[c + 1].clone(), col.mean, col.std))
            })
            .collect::<Result<_, String>>()?;
        let transforms = (0..n)
            .map(|c| {
                file.column(c)
                    .map_or(Transform::Affine, |col| col.transform)
            })
            .collect();
        Ok(Self {
            time_format,
            t0: time.t0,
            time_unit: time.unit,
            columns,
            transforms,
        })
    }

    /// Sets each column's standard deviation to that of the differences of its
    /// transformed values `lag` rows apart among the first `train` rows (unchanged where
    /// fewer than 2 such pairs or no spread), so that a seasonal difference's model values
    /// are standardized.
    pub fn scale_for_difference(&mut self, table: &Table, train: usize, lag: usize) {
        for c in 0..self.columns.len() {
            let value = |x: f64| match self.transforms[c] {
                Transform::Affine => x,
                Transform::Log => f64::from(tinysde::math::ln(x as f32)),
            };
            let rows = &table.rows[..train.min(table.rows.len())];
            let d: Vec<f64> = (lag..rows.len())
                .filter_map(|i| Some(value(rows[i][c]?) - value(rows[i - lag][c]?)))
                .collect();
            if d.len() < 2 {
                continue;
            }
            let n = d.len() as f64;
            let m = d.iter().sum::<f64>() / n;
            let sd = (d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
            if sd > 0.0 && sd.is_finite() {
                self.columns[c].2 = sd;
            }
        }
    }

    /// Model time of file time `t`.
    pub fn tau(&self, t: f64) -> f32 {
        ((t - self.t0) / self.time_unit) as f32
    }
    /// File time of model time `tau`.
    pub fn time(&self, tau: f32) -> f64 {
        self.t0 + f64::from(tau) * self.time_unit
    }
    /// Column `c` as the model file's column (the forecaster's map).
    pub fn column(&self, c: usize) -> Column<'_> {
        Column {
            name: &self.columns[c].0,
            transform: self.transforms[c],
            mean: self.columns[c].1,
            std: self.columns[c].2,
            state_index: c as u16,
            noise: 0.0,
        }
    }
    /// Model value of column `c`'s value `x` (NaN where there is none).
    pub fn z(&self, c: usize, x: f64) -> f32 {
        self.column(c).model_value(x).unwrap_or(f32::NAN)
    }
    /// Column `c`'s value of model value `z`.
    pub fn x(&self, c: usize, z: f32) -> f64 {
        self.column(c).user_value(z)
    }

    /// The scaling as the JSON document `fit_csv.json` (see `docs/weights-format.md`), the
    /// `extra` keys after it (a non-finite number is written as `null`).
    pub fn to_json(&self, time_name: &str, extra: Vec<(&str, Value)>) -> String {
        let mut doc = json!({
            "format": "tinysde-scaling",
            "version": 1,
            "time": {
                "name": time_name,
                "format": format_name(self.time_format),
                "t0": self.t0,
                "unit": self.time_unit,
            },
            "values": self
                .columns
                .iter()
                .map(|(name, mean, std)| json!({ "name": name, "mean": mean, "std": std }))
                .collect::<Vec<_>>(),
        });
        if let Some(keys) = doc.as_object_mut() {
            for (k, v) in extra {
                keys.insert(k.to_string(), v);
            }
        }
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// The name of a time format in `fit_csv.json`.
fn format_name(format: TimeFormat) -> &'static str {
    match format {
        TimeFormat::Number => "number",
        TimeFormat::Date => "date",
        TimeFormat::DateTime => "datetime",
    }
}

/// The noise seed of the predictions (the model file's forecast default).
pub const FORECAST_SEED: u64 = 0xC5F;
/// The quantile levels of the predictions (5 %, median, 95 %).
pub const LEVELS: [f32; 3] = [0.05, 0.5, 0.95];

/// The median interval between consecutive times.
pub fn median_gap(times: &[f64]) -> f64 {
    let mut gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    gaps.get(gaps.len() / 2).copied().unwrap_or(1.0)
}

/// Reads `csv`, fits, and writes the outputs into `out`.
pub fn run(csv: &Path, settings: &Settings, out: &Path, progress: bool) -> Result<Summary, String> {
    let table = table_csv::read(csv, settings.csv)?;
    let file = csv.display().to_string();
    let saved = match &settings.start {
        Start::Fresh => None,
        Start::Forecast(p) | Start::Resume(p) => Some((
            p.display().to_string(),
            std::fs::read(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?,
        )),
    };
    let saved = saved.as_ref().map(|(p, b)| (p.as_str(), b.as_slice()));
    // Without --period, a new model's period is detected from the training rows only.
    let mut detected = None;
    let detecting;
    let settings = if saved.is_none() && settings.periods.is_empty() && settings.detect_period {
        let train = table.times.len().saturating_sub(settings.holdout);
        detected = detect_table_period(&table, train);
        detecting = Settings {
            periods: detected.iter().map(|d| (d.period, false)).collect(),
            ..settings.clone()
        };
        &detecting
    } else {
        settings
    };
    // `--mean auto`: a season in the mean for a calendar period only.
    let calendar = saved.is_none()
        && match (&detected, settings.periods.first()) {
            (Some(d), _) => is_calendar(d, table.time_format),
            (None, Some(_)) => true,
            (None, None) => false,
        };
    let mean_auto = settings.mean == MeanKind::Auto;
    let mean_resolved;
    let settings = if settings.mean == MeanKind::Auto {
        mean_resolved = Settings {
            mean: if calendar {
                MeanKind::Season
            } else {
                MeanKind::None
            },
            ..settings.clone()
        };
        &mean_resolved
    } else {
        settings
    };
    // `--transform auto`: the logarithm for positive, growing training rows.
    let resolved;
    let settings = if settings.transform == TransformKind::Auto {
        let train = table.times.len().saturating_sub(settings.holdout);
        resolved = Settings {
            transform: if saved.is_none() && grows(&table, train) {
                TransformKind::Log
            } else {
                TransformKind::Affine
            },
            ..settings.clone()
        };
        &resolved
    } else {
        settings
    };
    // The number of periods: the command line's, or the saved model's.
    let periods = match saved {
        Some((path, bytes)) => saved_periods(path, bytes)?,
        None => settings.periods.len(),
    };
    // `--noise auto`: the candidate that predicts the last training rows best.
    let mut validation = Vec::new();
    let mut validation_rows = 0;
    let chosen;
    let settings = if settings.noise == NoiseKind::Auto {
        let (noise, window) = if saved.is_none() && settings.loss == LossKind::Calibrated {
            let train = table.times.len().saturating_sub(settings.holdout);
            validation_rows = validation_rows_of(train);
            if validation_rows > 0 {
                validation = validate(&file, &table, train, validation_rows, settings, periods)?;
            }
            validation
                .iter()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or((NoiseKind::None, settings.window), |c| c.0)
        } else {
            (NoiseKind::None, settings.window)
        };
        chosen = Settings {
            noise,
            window,
            ..settings.clone()
        };
        &chosen
    } else {
        settings
    };
    // `--difference`: the lag, and `auto`'s choice by validation.
    let lag = settings
        .periods
        .first()
        .and_then(|&(p, _)| seasonal_lag(p, median_gap(&table.times)));
    let with_difference = |d: DifferenceKind| Settings {
        difference: d,
        mean: if d == DifferenceKind::Seasonal && mean_auto {
            MeanKind::Level
        } else {
            settings.mean
        },
        ..settings.clone()
    };
    let mut difference_scores = Vec::new();
    let differenced = match settings.difference {
        DifferenceKind::None => with_difference(DifferenceKind::None),
        DifferenceKind::Seasonal => {
            if saved.is_none() && lag.is_none() {
                return Err(match settings.periods.first() {
                    None => format!("{file}: --difference seasonal: no period (none was given with --period, none detected in the training rows)"),
                    Some(&(p, _)) => format!(
                        "{file}: --difference seasonal: the period is {} rows; it must be within 0.25 of a whole number of at least 2 rows",
                        table_csv::format_number(p / median_gap(&table.times))
                    ),
                });
            }
            with_difference(DifferenceKind::Seasonal)
        }
        DifferenceKind::Auto => {
            let train = table.times.len().saturating_sub(settings.holdout);
            let rows = validation_rows_of(train);
            let choice = if saved.is_none()
                && calendar
                && lag.is_some_and(|l| l + rows + 8 <= train)
                && settings.noise == NoiseKind::None
                && settings.loss == LossKind::Calibrated
                && rows > 0
            {
                let sub = table.head(train);
                let mut best = (DifferenceKind::None, f64::INFINITY);
                for (k, d) in [DifferenceKind::None, DifferenceKind::Seasonal]
                    .into_iter()
                    .enumerate()
                {
                    let s = Settings {
                        holdout: rows,
                        horizon: 0,
                        ..with_difference(d)
                    };
                    // Unique within the process too (runs may be concurrent in one process).
                    static RUNS: std::sync::atomic::AtomicUsize =
                        std::sync::atomic::AtomicUsize::new(0);
                    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let dir = std::env::temp_dir().join(format!(
                        "fit_csv-difference-{}-{run}-{k}",
                        std::process::id()
                    ));
                    let summary = fit_any(&file, &sub, &s, None, periods, &dir, false);
                    let _ = std::fs::remove_dir_all(&dir);
                    let crps = summary?.holdout_crps;
                    let score = crps.iter().sum::<f64>() / crps.len().max(1) as f64;
                    difference_scores.push((d, score));
                    if score < best.1 {
                        best = (d, score);
                    }
                }
                best.0
            } else {
                DifferenceKind::None
            };
            with_difference(choice)
        }
    };
    let summary = fit_any(&file, &table, &differenced, saved, periods, out, progress);
    summary.map(|mut s| {
        s.detected = detected;
        s.validation = validation;
        s.validation_rows = validation_rows;
        s.difference_scores = difference_scores;
        s
    })
}

/// `--noise auto`'s candidates `(noise, window)` with their validation scores.
pub type Validation = Vec<((NoiseKind, usize), f64)>;

/// `--noise auto`'s candidates (noise, window) for `--window W`: no noise at `W`, learned
/// noise with noisy window starts at `W`, no noise at `2 W`.
pub fn auto_candidates(window: usize) -> [(NoiseKind, usize); 3] {
    [
        (NoiseKind::None, window),
        (NoiseKind::LearnedStart, window),
        (NoiseKind::None, window.saturating_mul(2)),
    ]
}

/// `--noise auto`'s validation rows for `train` training rows: 20 % of them, rounded, at
/// most 200; 0 (no validation: no noise) if that leaves fewer than 8 rows to fit or
/// validates fewer than 4.
pub fn validation_rows_of(train: usize) -> usize {
    let v = ((train as f64 * 0.2).round() as usize).min(200);
    if v < 4 || train < v + 8 {
        0
    } else {
        v
    }
}

/// Fits each of [`auto_candidates`] on the first `train - rows` of `table`'s rows and scores
/// it on the next `rows` (one step ahead, as the held-out rows are scored), into a temporary
/// directory removed afterwards. Scores: the mean over columns of the candidate's CRPS over
/// the first candidate's.
fn validate(
    file: &str,
    table: &Table,
    train: usize,
    rows: usize,
    settings: &Settings,
    periods: usize,
) -> Result<Validation, String> {
    let sub = table.head(train);
    let mut first: Option<Vec<f64>> = None;
    let mut scores = Vec::new();
    for (k, (noise, window)) in auto_candidates(settings.window).into_iter().enumerate() {
        let s = Settings {
            noise,
            window,
            holdout: rows,
            horizon: 0,
            ..settings.clone()
        };
        // Unique within the process too (runs may be concurrent in one process).
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "fit_csv-validation-{}-{run}-{k}",
            std::process::id()
        ));
        let summary = fit_any(file, &sub, &s, None, periods, &dir, false);
        let _ = std::fs::remove_dir_all(&dir);
        let crps = summary?.holdout_crps;
        let base = first.get_or_insert_with(|| crps.clone());
        let ratios: Vec<f64> = crps
            .iter()
            .zip(base.iter())
            .map(|(&c, &b)| if b > 0.0 { c / b } else { 1.0 })
            .collect();
        let score = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
        scores.push((
            (noise, window),
            if score.is_finite() {
                score
            } else {
                f64::INFINITY
            },
        ));
    }
    Ok(scores)
}

/// The fit for the table's columns and the number of periods.
fn fit_any(
    file: &str,
    table: &Table,
    s: &Settings,
    saved: Option<(&str, &[u8])>,
    periods: usize,
    out: &Path,
    progress: bool,
) -> Result<Summary, String> {
    let file = file.to_string();
    match (table.value_columns(), periods) {
        (1, 0) => fit_table::<SeedModel<1>, 1, 61>(&file, table, s, saved, out, progress),
        (2, 0) => fit_table::<SeedModel<2>, 2, 68>(&file, table, s, saved, out, progress),
        (1, 1) => fit_table::<SeasonalModel<1, 3, 1>, 1, 41>(&file, table, s, saved, out, progress),
        (1, 2) => fit_table::<SeasonalModel<2, 5, 1>, 1, 41>(&file, table, s, saved, out, progress),
        (2, 1) => fit_table::<SeasonalModel<1, 4, 2>, 2, 44>(&file, table, s, saved, out, progress),
        (2, 2) => fit_table::<SeasonalModel<2, 6, 2>, 2, 44>(&file, table, s, saved, out, progress),
        (1 | 2, h) => Err(format!("the model has {h} periods; fit_csv handles at most {MAX_PERIODS}")),
        (n, _) => Err(format!(
            "{file}: has {n} value columns; fit_csv fits 1 or 2 (a one- or two-dimensional model): keep only the time column and the columns to fit"
        )),
    }
}

/// Whether a detected period is a calendar one, whose season `--mean auto` puts in the
/// mean: a whole number of rows, or (dates and date-times) a year. A cycle of a fractional
/// number of rows (sunspots' 10.5 years, lynx's 9.5) is left to the SDE: its phase drifts.
pub fn is_calendar(d: &Detected, format: TimeFormat) -> bool {
    d.lags.fract() == 0.0 || (format != TimeFormat::Number && d.period == 365.2425 * 86_400.0)
}

/// A period found in a series by [`detect_period`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detected {
    /// The period in the times' units (seconds for dates).
    pub period: f64,
    /// The period in rows (median intervals).
    pub lags: f64,
    /// The autocorrelation of the differenced series at the highest peak.
    pub acf: f64,
}

/// The least autocorrelation peak [`detect_period`] accepts (and at least `3 / sqrt(m)`
/// for `m` differences: three standard errors of white noise).
pub const PERIOD_ACF_THRESHOLD: f64 = 0.3;

/// Detects the period of the first `train` rows of a table (the training rows only: never
/// the held-out ones): [`detect_period`] on each value column, the stronger peak wins; for
/// dates a period within 3 % of a year (365.2425 days) is taken as one year.
pub fn detect_table_period(table: &Table, train: usize) -> Option<Detected> {
    let train = train.min(table.times.len());
    let times = &table.times[..train];
    let best = (0..table.value_columns())
        .filter_map(|c| {
            let values: Vec<Option<f64>> = table.rows[..train].iter().map(|r| r[c]).collect();
            detect_period(times, &values)
        })
        .max_by(|a, b| a.acf.total_cmp(&b.acf))?;
    let year = 365.2425 * 86_400.0;
    if table.time_format != TimeFormat::Number && (best.period / year - 1.0).abs() < 0.03 {
        return Some(Detected {
            period: year,
            ..best
        });
    }
    Some(best)
}

/// Detects a period in a (nearly) regularly sampled series, deterministically, from the
/// autocorrelation `r(L)` of its first differences (a trend or a random walk leaves none):
///
/// 1. `r(L)` for lags `1..=m/3 + 1`: the sum over the pairs of observed differences (`m`
///    of them) of the centred products, over `m` times their variance.
/// 2. The highest local maximum `L* >= 2` (`r(L*) > r(L*-1)`, `r(L*) >= r(L*+1)`,
///    `L* <= m/3`); none if `r(L*)` is below `max(`[`PERIOD_ACF_THRESHOLD`]`, 4/sqrt(m))`.
///    `L*` is refined by a parabola through `r(L*-1), r(L*), r(L*+1)`.
/// 3. The fundamental: the largest `k >= 2` such that every `j L*/k`, `j < k`, has a
///    local maximum at least `0.8 r(L*)` within one lag (a peak at two or four years is
///    one at a year); the period is `L*/k` rows (`L*` if none; rounded to a whole number
///    of rows if within 0.1 of one), times the median interval.
///
/// `values` are the rows' values (`None`: missing). Fewer than 12 observed differences, or
/// fewer than 3 distinct values, detect nothing.
pub fn detect_period(times: &[f64], values: &[Option<f64>]) -> Option<Detected> {
    let diffs: Vec<Option<f64>> = values
        .windows(2)
        .map(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) if (b - a).is_finite() => Some(b - a),
            _ => None,
        })
        .collect();
    let observed: Vec<f64> = diffs.iter().flatten().copied().collect();
    let m = observed.len();
    if m < 12 {
        return None;
    }
    let mean = observed.iter().sum::<f64>() / m as f64;
    let var = observed
        .iter()
        .map(|d| (d - mean) * (d - mean))
        .sum::<f64>()
        / m as f64;
    if !(var > 0.0 && var.is_finite()) {
        return None;
    }
    let max_lag = m / 3;
    let r: Vec<f64> = (0..=max_lag + 1)
        .map(|lag| {
            let mut sum = 0.0;
            for (a, b) in diffs.iter().zip(diffs.iter().skip(lag)) {
                if let (Some(a), Some(b)) = (a, b) {
                    sum += (a - mean) * (b - mean);
                }
            }
            // The usual (biased) estimator: divided by all m, so that the long lags' few
            // pairs do not make peaks out of noise.
            sum / m as f64 / var
        })
        .collect();
    let peak = |l: usize| l >= 2 && l + 1 < r.len() && r[l] > r[l - 1] && r[l] >= r[l + 1];
    let top = (2..=max_lag)
        .filter(|&l| peak(l))
        .max_by(|&a, &b| r[a].total_cmp(&r[b]).then(b.cmp(&a)))?;
    if r[top] < PERIOD_ACF_THRESHOLD.max(4.0 / (m as f64).sqrt()) {
        return None;
    }
    let (a, b, c) = (r[top - 1], r[top], r[top + 1]);
    let curvature = a - 2.0 * b + c;
    let shift = if curvature < 0.0 {
        (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    let lags = top as f64 + shift;
    let near_peak = |x: f64| {
        let l = x.round() as usize;
        (l.saturating_sub(1)..=l + 1).any(|l| peak(l) && r[l] >= 0.8 * r[top])
    };
    let k = (2..=(lags / 2.0) as usize)
        .rev()
        .find(|&k| (1..k).all(|j| near_peak(j as f64 * lags / k as f64)))
        .unwrap_or(1);
    let lags = lags / k as f64;
    // Within a tenth of a row of a whole number of rows: that number (a month's year is
    // 12 rows, not 11.98: over decades the difference shifts the season's phase).
    let lags = if (lags - lags.round()).abs() < 0.1 {
        lags.round()
    } else {
        lags
    };
    Some(Detected {
        period: lags * median_gap(times),
        lags,
        acf: r[top],
    })
}

/// The number of periods of a saved model file's model (0 for the seed network).
fn saved_periods(path: &str, bytes: &[u8]) -> Result<usize, String> {
    let file = ModelFile::parse(bytes).map_err(|e| format!("{path}: {e}"))?;
    let description = file.model().description_str().unwrap_or("");
    match description.strip_prefix("seasonal(") {
        None => Ok(0),
        Some(rest) => rest
            .split(',')
            .next()
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| format!("{path}: model {description:?}: no period count")),
    }
}

/// The drift network of fit_csv's seasonal model: the state and `2 H` time features (`E`
/// inputs) -> 20 quick-tanh units -> `D` outputs.
pub type SeasonalDrift<const E: usize, const D: usize> =
    (Dense<E, 20, QuickTanh>, Dense<20, D, Identity>);
/// The diffusion network of fit_csv's seasonal model: `E` inputs -> 20 quick-sigmoid units
/// -> `D` outputs.
pub type SeasonalDiffusion<const E: usize, const D: usize> =
    (Dense<E, 20, QuickSigmoid>, Dense<20, D, Identity>);
/// fit_csv's model with `H` periods on a `D`-dimensional state (`E = D + 2 H`).
pub type SeasonalModel<const H: usize, const E: usize, const D: usize> =
    Seasonal<H, SeasonalDrift<E, D>, SeasonalDiffusion<E, D>>;

/// A model fit_csv trains: the seed network or the seasonal one.
pub trait CsvModel: Default + Describe + Clone {
    /// A new model for `periods` (model time units), weights drawn from `seed`: Glorot
    /// uniform, the output layers shrunk to `U(-0.01, 0.01)` (close to pure noise).
    fn fresh(seed: u64, periods: &[f32]) -> Result<Self, String>;
    /// The model's periods (model time units).
    fn model_periods(&self) -> Vec<f32>;
    /// Multiplies coordinate `c` of the diffusion by `factor[c]` (the diffusion network's
    /// output layer's weights and bias of output `c`: its output is linear).
    fn scale_diffusion(&mut self, factor: &[f32]);
}

/// Multiplies output `o` of `layer` (weights and bias) by `factor[o]`.
fn scale_outputs<const I: usize, const O: usize>(
    layer: &mut Dense<I, O, Identity>,
    factor: &[f32],
) {
    for ((w, b), &f) in layer.weight.iter_mut().zip(&mut layer.bias).zip(factor) {
        for x in w.iter_mut() {
            *x *= f;
        }
        *b *= f;
    }
}

/// fit_csv's model without periods: the seed task's network with the quick activations.
pub type SeedModel<const D: usize> = Model<D, QuickTanh, QuickSigmoid>;

impl<const D: usize> CsvModel for SeedModel<D>
where
    SeedModel<D>: Default + Describe + tinysde::nn::Init,
    Dense<20, D, Identity>: tinysde::nn::Init,
{
    fn fresh(seed: u64, periods: &[f32]) -> Result<Self, String> {
        if !periods.is_empty() {
            return Err("the seed network has no time features".into());
        }
        fit::new_seed_model(seed).map_err(|e| e.to_string())
    }
    fn model_periods(&self) -> Vec<f32> {
        Vec::new()
    }
    fn scale_diffusion(&mut self, factor: &[f32]) {
        scale_outputs(&mut self.diffusion.1, factor);
    }
}

impl<const H: usize, const E: usize, const D: usize> CsvModel for SeasonalModel<H, E, D>
where
    SeasonalModel<H, E, D>: Default + Describe + tinysde::nn::Init,
    Dense<20, D, Identity>: tinysde::nn::Init,
{
    fn fresh(seed: u64, periods: &[f32]) -> Result<Self, String> {
        let periods: [f32; H] = periods
            .try_into()
            .map_err(|_| format!("{} periods for a model of {H}", periods.len()))?;
        let mut m = Self::default();
        m.set_periods(periods).map_err(|e| e.to_string())?;
        let mut rng = tinysde::noise::rng_from_seed(seed);
        let e = |e: tinysde::Error| e.to_string();
        tinysde::nn::init(&mut m, &mut rng, InitScheme::GlorotUniform).map_err(e)?;
        let limit = InitScheme::Uniform { limit: 0.01 };
        tinysde::nn::init(&mut m.drift.1, &mut rng, limit).map_err(e)?;
        tinysde::nn::init(&mut m.diffusion.1, &mut rng, limit).map_err(e)?;
        Ok(m)
    }
    fn model_periods(&self) -> Vec<f32> {
        self.periods().to_vec()
    }
    fn scale_diffusion(&mut self, factor: &[f32]) {
        scale_outputs(&mut self.diffusion.1, factor);
    }
}

fn fit_table<M, const D: usize, const K: usize>(
    file: &str,
    table: &Table,
    settings: &Settings,
    saved: Option<(&str, &[u8])>,
    out: &Path,
    progress: bool,
) -> Result<Summary, String>
where
    M: CsvModel + Sde<f32, D> + Sde<Dual<K>, D> + Sde<Dual<TRAINING_LANES>, D> + SdeVjp<D>,
    fit::Method:
        Step<f32, M, D> + Step<Dual<K>, M, D> + Step<Dual<TRAINING_LANES>, M, D> + StepVjp<M, D>,
{
    let saved = match saved {
        Some((path, bytes)) => Some((
            path,
            bytes,
            ModelFile::parse(bytes).map_err(|e| format!("{path}: {e}"))?,
        )),
        None => None,
    };
    let forecast_only = matches!(settings.start, Start::Forecast(_));
    // The seasonal difference's lag in rows (0: none).
    let lag = match (&saved, settings.difference) {
        // A saved model's: its file's.
        (Some((_, _, f)), _) => usize::from(f.seasonal_lag()),
        (None, DifferenceKind::Seasonal) => settings
            .periods
            .first()
            .and_then(|&(p, _)| seasonal_lag(p, median_gap(&table.times)))
            .ok_or_else(|| {
                format!("{file}: --difference seasonal: no period of a whole number of rows")
            })?,
        _ => 0,
    };
    if lag > 0 && !forecast_only && settings.noise != NoiseKind::None {
        return Err(format!(
            "{file}: a seasonal difference trains with --noise none only"
        ));
    }
    let scaling = match &saved {
        Some((path, _, f)) => Scaling::of_file(f, table, path)?,
        None => {
            let mut s = Scaling::with_transform(table, settings.transform.transform(), file)?;
            if lag > 0 {
                // Standardized by the scatter of the differences (training rows).
                let train = table.times.len().saturating_sub(settings.holdout);
                s.scale_for_difference(table, train, lag);
            }
            s
        }
    };
    // The paths of the predictions: the saved file's when forecasting with it.
    let paths = match (&saved, forecast_only) {
        (Some((path, _, f)), true) => {
            let d = f
                .defaults()
                .ok_or_else(|| format!("{path}: no forecast defaults"))?;
            if d.levels() != LEVELS {
                return Err(format!(
                    "{path}: quantile levels {:?}; fit_csv reports 0.05, 0.5 and 0.95",
                    d.levels()
                ));
            }
            d.paths as usize
        }
        _ => settings.eval_trajectories,
    };
    let rows = table.times.len();
    let gap = median_gap(&table.times);
    // Guards against runs that would take hours or exhaust memory: each step is at most half
    // a median interval, and the forecast keeps every path at every horizon time.
    if let Some(i) = table
        .times
        .windows(2)
        .position(|w| w[1] - w[0] > MAX_GAP_RATIO * gap)
    {
        return Err(format!(
            "{file}:{}: time {} comes {} median intervals after the previous one (at most {MAX_GAP_RATIO} are allowed); split the series at the gap",
            table.lines[i + 1],
            table.time_format.format(table.times[i + 1]),
            table_csv::format_number(((table.times[i + 1] - table.times[i]) / gap).round())
        ));
    }
    if (settings.horizon as usize).saturating_mul(paths) > MAX_FORECAST_SAMPLES {
        return Err(format!(
            "--horizon {} with {} paths would keep {} samples; keep horizon x eval-trajectories at most {MAX_FORECAST_SAMPLES}",
            settings.horizon,
            paths,
            settings.horizon as usize * paths
        ));
    }
    if lag > 0 && settings.horizon as usize > lag {
        return Err(format!(
            "--horizon {}: with the seasonal difference of {lag} rows the forecast reaches at most {lag} rows past the last one",
            settings.horizon
        ));
    }
    let mut all_times = table.times.clone();
    all_times.extend((1..=settings.horizon).map(|k| table.times[rows - 1] + f64::from(k) * gap));
    let taus: Vec<f32> = all_times.iter().map(|&t| scaling.tau(t)).collect();
    if let Some(w) = taus.windows(2).position(|w| w[1] <= w[0]) {
        return Err(format!(
            "{file}:{}: time {} is too close to the previous one for the model's f32 time (scaled times {} and {})",
            table.lines.get(w + 1).copied().unwrap_or(0),
            table.time_format.format(all_times[w + 1]),
            taus[w],
            taus[w + 1]
        ));
    }
    let data: Vec<[f32; D]> = table
        .rows
        .iter()
        .map(|r| core::array::from_fn(|c| r[c].map_or(f32::NAN, |x| scaling.z(c, x))))
        .collect();
    let mask: Vec<[bool; D]> = table
        .rows
        .iter()
        .map(|r| core::array::from_fn(|c| r[c].is_some()))
        .collect();
    if let Some((i, c)) = data
        .iter()
        .zip(&mask)
        .enumerate()
        .find_map(|(i, (z, m))| (0..D).find(|&c| m[c] && !z[c].is_finite()).map(|c| (i, c)))
    {
        return Err(format!(
            "{file}:{}: column {}: the value is too far from the others to standardize in f32",
            table.lines[i],
            c + 2
        ));
    }
    if settings.holdout + 2 > rows {
        return Err(format!(
            "{file}: --holdout {} leaves fewer than 2 of the {rows} rows for training",
            settings.holdout
        ));
    }
    let train_rows = rows - settings.holdout;
    let data_taus = &taus[..train_rows];
    // With a seasonal difference the SDE (and its mean) model `u_i = z_i - z_(i - lag)`,
    // missing where either is (as the forecaster computes it).
    let (model_data, model_mask): (Vec<[f32; D]>, Vec<[bool; D]>) = if lag > 0 {
        (0..rows)
            .map(|i| {
                let known: [bool; D] =
                    core::array::from_fn(|c| i >= lag && mask[i][c] && mask[i - lag][c]);
                let u = core::array::from_fn(|c| {
                    if known[c] {
                        data[i][c] - data[i - lag][c]
                    } else {
                        f32::NAN
                    }
                });
                (u, known)
            })
            .unzip()
    } else {
        (data.clone(), mask.clone())
    };
    // The deterministic mean under the SDE: the saved file's, or fitted on the training
    // rows; the SDE trains on the residuals.
    let trends: Vec<Trend> = match &saved {
        Some((_, _, f)) if f.has_trend() => {
            (0..D).map(|c| f.trend(c).unwrap_or(Trend::NONE)).collect()
        }
        Some(_) => Vec::new(),
        None => {
            let period = settings
                .periods
                .first()
                .map(|&(p, _)| (p / scaling.time_unit) as f32);
            match settings.mean.terms(period, settings.harmonics) {
                None => Vec::new(),
                Some(terms) => (0..D)
                    .map(|c| {
                        let values: Vec<f32> =
                            model_data[..train_rows].iter().map(|z| z[c]).collect();
                        common::mean::fit(&terms, data_taus, &values).ok_or_else(|| {
                            format!("{file}: column {}: cannot fit the mean ({terms:?})", c + 2)
                        })
                    })
                    .collect::<Result<_, String>>()?,
            }
        }
    };
    let train_data: Vec<[f32; D]> = model_data[..train_rows]
        .iter()
        .zip(data_taus)
        .map(|(z, &tau)| {
            core::array::from_fn(|c| match trends.get(c) {
                Some(t) => z[c] - t.at(tau),
                None => z[c],
            })
        })
        .collect();
    let max_step = match &saved {
        Some((path, _, f)) => {
            f.solver()
                .ok_or_else(|| format!("{path}: no solver section"))?
                .max_step
        }
        None => 0.5 * (gap / scaling.time_unit) as f32,
    };
    let objective = match settings.loss {
        LossKind::Calibrated => SeriesObjective::GaussianNll {
            var_floor: settings.var_floor,
        },
        LossKind::Mse => SeriesObjective::MeanSquaredError,
    };
    let how = fit::SeriesFit {
        objective,
        window: settings.window.min(rows - 1).max(1),
        batch: settings.batch,
        trajectories: settings.trajectories,
        max_step,
        lr: settings.lr,
        iterations: settings.iterations,
        seed: settings.seeds.1,
        gradient: settings.gradient.mode(),
        noise: match (settings.loss, settings.noise) {
            (LossKind::Calibrated, NoiseKind::Learned | NoiseKind::LearnedStart) => Some(
                // Resuming: from the saved file's noise where it has one.
                saved
                    .as_ref()
                    .and_then(|(_, _, f)| f.column(0))
                    .map(|c| c.noise)
                    .filter(|&n| n > 0.0)
                    .unwrap_or(INITIAL_NOISE),
            ),
            _ => None,
        },
        noisy_start: settings.noise == NoiseKind::LearnedStart,
    };
    let mut model: M = match &saved {
        Some((path, _, f)) => {
            let mut m = M::default();
            f.load_into(&mut m).map_err(|e| format!("{path}: {e}"))?;
            m
        }
        None => {
            // The periods in model time units.
            let mut periods = Vec::new();
            for &(p, suffix) in &settings.periods {
                if suffix && table.time_format == TimeFormat::Number {
                    return Err(format!(
                        "{file}: the times are plain numbers: give --period in their units, without a suffix"
                    ));
                }
                let model_p = (p / scaling.time_unit) as f32;
                if !(model_p.is_finite() && model_p > 0.0) {
                    return Err(format!(
                        "{file}: --period {p} is {model_p} median intervals: out of range"
                    ));
                }
                periods.push(model_p);
            }
            M::fresh(settings.seeds.0, &periods).map_err(|e| format!("{file}: {e}"))?
        }
    };
    let outputs = common::output::Outputs::new(out)?;
    let history = if forecast_only {
        History::default()
    } else {
        let bar = fit::progress_bar(u64::from(settings.iterations), "fit_csv", progress);
        let history =
            if settings.loss == LossKind::Calibrated && settings.noise == NoiseKind::Filter {
                let filter = FilterRun {
                    scaling: &scaling,
                    table,
                    train_rows,
                    max_step,
                    members: FILTER_MEMBERS,
                    trends: &trends,
                };
                train_filtered::<M, D>(
                    &mut model,
                    data_taus,
                    &train_data,
                    &model_mask[..train_rows],
                    &how,
                    &filter,
                    &bar,
                )
            } else {
                fit::train_series::<K, M, D>(
                    &mut model,
                    data_taus,
                    &train_data,
                    &model_mask[..train_rows],
                    &how,
                    &bar,
                )
            }
            .map_err(|e| format!("{file}: training failed: {e}"))?;
        bar.finish_and_clear();
        history
    };

    // The deployable model file: the model with its scaling, solver and forecast defaults
    // (when forecasting with a saved file: that file).
    let columns: Vec<Column<'_>> = scaling
        .columns
        .iter()
        .enumerate()
        .map(|(c, (name, mean, std))| Column {
            name,
            transform: scaling.transforms[c],
            mean: *mean,
            std: *std,
            state_index: c as u16,
            // The learned observation noise (model units), none without it.
            noise: history.noise.get(c).copied().unwrap_or(0.0),
        })
        .collect();
    let deployment = Deployment {
        state_dim: D as u16,
        columns: &columns,
        time: TimeAxis {
            name: &table.names[0],
            format: match scaling.time_format {
                TimeFormat::Number => model_file::TimeFormat::Number,
                TimeFormat::Date => model_file::TimeFormat::Date,
                TimeFormat::DateTime => model_file::TimeFormat::DateTime,
            },
            t0: scaling.t0,
            unit: scaling.time_unit,
        },
        solver: SolverSpec {
            method: <fit::Method as tinysde::solve::Method>::NAME,
            max_step,
        },
        defaults: Defaults::new(paths as u32, FORECAST_SEED, &LEVELS).map_err(|e| e.to_string())?,
        trends: &trends,
        seasonal_lag: u16::try_from(lag)
            .map_err(|_| format!("{file}: seasonal lag {lag} rows: at most 65535"))?,
    };
    let tsm = match &saved {
        Some((_, bytes, _)) if forecast_only => bytes.to_vec(),
        _ => model_file::to_vec(&model, &deployment).map_err(|e| format!("model file: {e}"))?,
    };

    // Every row predicted before it is observed, by the streaming forecaster of the model
    // file: from the last fully observed row before it, then the horizon; scores on the data.
    let mut bands: Vec<Band> = (0..D).map(|_| Band::empty(all_times.len())).collect();
    let mut scores: Vec<CalibrationScore> = (0..D)
        .map(|_| CalibrationScore::new(0.9))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut held_out = scores.clone();
    let mut column = vec![0.0f32; paths];
    let mut failure = None;
    let mut record = |i: usize, c: usize, samples: &[f32], summary: &[f64]| {
        if failure.is_some() {
            return;
        }
        if let [mean, q05, q50, q95] = *summary {
            bands[c].mean[i] = Some(mean);
            bands[c].q05[i] = Some(q05);
            bands[c].q50[i] = Some(q50);
            bands[c].q95[i] = Some(q95);
        }
        if i < rows && mask[i][c] {
            let score = if i < train_rows {
                &mut scores[c]
            } else {
                &mut held_out[c]
            };
            // Log columns are scored on the values themselves (the CRPS of the samples mapped
            // back), affine ones in model units (the CRPS scales back by the std).
            let observed = if scaling.transforms[c] == Transform::Log {
                for (o, &z) in column.iter_mut().zip(samples) {
                    *o = scaling.x(c, z) as f32;
                }
                table.rows[i][c].map_or(f32::NAN, |x| x as f32)
            } else {
                column.copy_from_slice(samples);
                data[i][c]
            };
            if let Err(e) = score.add_ensemble(observed, &mut column) {
                failure = Some(format!("{file}: row {i}: {e}"));
            }
        }
    };
    let parsed = ModelFile::parse(&tsm).map_err(|e| format!("model file: {e}"))?;
    let mut forecaster: Forecaster<M, fit::Method, D, D, Vecs<D>> = Forecaster::new(
        M::default(),
        fit::Method::default(),
        &parsed,
        Vecs::new(paths, all_times.len()).with_history(usize::from(parsed.seasonal_lag()) * D),
    )
    .map_err(|e| format!("model file: {e}"))?;
    let eval_bar = fit::progress_bar(all_times.len() as u64, "forecast", progress);
    for (i, (&t, row)) in table.times.iter().zip(&table.rows).enumerate() {
        eval_bar.set_position(i as u64);
        let values: [Option<f64>; D] = core::array::from_fn(|c| row[c]);
        forecaster
            .observe_with(t, &values, &mut [], |c, samples, summary| {
                record(i, c, samples, summary)
            })
            .map_err(|e| format!("{file}:{}: prediction of this row: {e}", table.lines[i]))?;
    }
    if all_times.len() > rows && forecaster.member_states().is_some() {
        forecaster
            .forecast_with(&all_times[rows..], |j, c, samples, summary| {
                record(rows + j, c, samples, summary)
            })
            .map_err(|e| format!("{file}: forecast past the last row: {e}"))?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    eval_bar.finish_and_clear();
    let coverage_of = |scores: &[CalibrationScore]| -> Vec<f64> {
        scores
            .iter()
            .filter(|s| s.count() > 0)
            .map(|s| f64::from(s.coverage()))
            .collect()
    };
    // CRPS is in the units of the values: scale back from the standardized ones.
    let crps_of = |scores: &[CalibrationScore]| -> Vec<f64> {
        scores
            .iter()
            .zip(scaling.columns.iter().zip(&scaling.transforms))
            .filter(|(s, _)| s.count() > 0)
            .map(|(s, (col, t))| {
                let unit = if *t == Transform::Log { 1.0 } else { col.2 };
                f64::from(s.mean_crps()) * unit
            })
            .collect()
    };
    let (coverage, crps) = (coverage_of(&scores), crps_of(&scores));
    let (holdout_coverage, holdout_crps) = (coverage_of(&held_out), crps_of(&held_out));
    let baselines = baseline_scores(table, train_rows, gap);

    let mut outputs = outputs;
    outputs.add(
        "fit_csv_fit.png",
        &fit_plot(table, &scaling, &all_times, &bands, settings.horizon)?,
    )?;
    outputs.add(
        "forecast.csv",
        forecast_csv(table, &all_times, &bands).as_bytes(),
    )?;
    if forecast_only {
        let files = outputs.commit()?;
        return Ok(Summary {
            dims: D,
            rows,
            missing: table.missing(),
            max_step: f64::from(max_step) * scaling.time_unit,
            time_unit: table.time_format.unit(),
            history,
            coverage,
            crps,
            holdout_coverage,
            holdout_crps,
            periods: model
                .model_periods()
                .iter()
                .map(|&p| f64::from(p) * scaling.time_unit)
                .collect(),
            detected: None,
            transforms: scaling.transforms.clone(),
            trends: trends.clone(),
            validation: Vec::new(),
            validation_rows: 0,
            lag,
            difference_scores: Vec::new(),
            baselines,
            files,
        });
    }
    outputs.add("fit_csv_loss.png", &loss_plot(&history, settings)?)?;
    let periods_used: Vec<f64> = model
        .model_periods()
        .iter()
        .map(|&p| f64::from(p) * scaling.time_unit)
        .collect();
    let mut blob = vec![0u8; tinysde::weights::encoded_len::<M>()];
    tinysde::weights::write(&model, &mut blob).map_err(|e| format!("weights: {e}"))?;
    outputs.add("fit_csv.weights", &blob)?;
    outputs.add("fit_csv.tsm", &tsm)?;
    let extra = [
        (
            "model",
            json!(format!("fit_csv.weights: {}", description::<M>())),
        ),
        (
            "solver",
            json!(format!("SOSRI, steps of at most {max_step} (model time)")),
        ),
        (
            "training",
            json!(format!(
                "{} iterations, {} loss, window {}, batch {}, {} paths per window, Adam({})",
                history.losses.len(),
                settings.loss.name(),
                how.window,
                how.batch,
                how.trajectories,
                how.lr
            )),
        ),
        ("rows", json!(rows)),
        ("missing", json!(table.missing())),
        ("coverage_90", json!(coverage)),
        ("crps", json!(crps)),
        ("holdout_rows", json!(settings.holdout)),
        ("holdout_coverage_90", json!(holdout_coverage)),
        ("holdout_crps", json!(holdout_crps)),
        ("periods", json!(periods_used)),
        ("seasonal_lag", json!(lag)),
        (
            "mean",
            json!(trends
                .iter()
                .map(|t| json!({
                    "level": t.level,
                    "slope": t.slope,
                    "period": t.period,
                    "harmonics": t.coefficients[..usize::from(t.harmonics)],
                }))
                .collect::<Vec<_>>()),
        ),
        (
            "noise",
            json!((0..D)
                .map(|c| f64::from(history.noise.get(c).copied().unwrap_or(0.0)))
                .collect::<Vec<_>>()),
        ),
    ];
    let extra: Vec<(&str, Value)> = extra.into_iter().chain(baseline_json(&baselines)).collect();
    outputs.add(
        "fit_csv.json",
        scaling.to_json(&table.names[0], extra).as_bytes(),
    )?;
    let files = outputs.commit()?;
    Ok(Summary {
        dims: D,
        rows,
        missing: table.missing(),
        max_step: f64::from(max_step) * scaling.time_unit,
        time_unit: table.time_format.unit(),
        history,
        coverage,
        crps,
        holdout_coverage,
        holdout_crps,
        periods: periods_used,
        detected: None,
        transforms: scaling.transforms.clone(),
        trends: trends.clone(),
        validation: Vec::new(),
        validation_rows: 0,
        lag,
        difference_scores: Vec::new(),
        baselines,
        files,
    })
}

/// Ensemble members of the filter runs inside [`train_filtered`].
pub const FILTER_MEMBERS: usize = 64;
/// At most this many of the last training rows score a noise candidate in [`train_filtered`].
pub const FILTER_SCORED_ROWS: usize = 300;
/// Rows the filter takes before the scored ones when it scores a candidate (the filter
/// forgets its start within a few rows).
pub const FILTER_BURN_IN: usize = 50;
/// The observation-noise candidates of [`train_filtered`], as fractions of each column's
/// one-step scatter `sqrt(mean squared difference / 2)` (standardized units): 0 (no noise)
/// and steps of `sqrt 2` from 1/8 to 1.
pub const NOISE_FRACTIONS: [f32; 8] = [0.0, 0.125, 0.177, 0.25, 0.354, 0.5, 0.707, 1.0];

/// What [`filter_run`] needs besides the model: the scaling, the table and its training
/// rows, the solver step and the ensemble size.
pub struct FilterRun<'a> {
    /// The model's scaling.
    pub scaling: &'a Scaling,
    /// The series.
    pub table: &'a Table,
    /// The training rows (the first ones).
    pub train_rows: usize,
    /// The solver's largest step (model time).
    pub max_step: f32,
    /// Ensemble members.
    pub members: usize,
    /// The deterministic mean under the SDE per column (empty: none), as in the model file.
    pub trends: &'a [Trend],
}

/// Where [`filter_run`] writes each row's analysis: its mean and variance.
pub type Analysis<'a, const D: usize> = (&'a mut [[f32; D]], &'a mut [[f32; D]]);

/// Runs the forecaster's filter (`Forecaster`, the ensemble Kalman update with observation
/// noise `noise` per column, model units) with `model` over the training rows: returns the
/// mean CRPS (model units, summed over columns) of its one-step predictions of the rows from
/// `scored_from` on (starting [`FILTER_BURN_IN`] rows before them unless the analysis is
/// asked for), and writes each row's analysis (the ensemble after the row's update:
/// mean and variance per coordinate) into `analysis` if given (rows without an update get
/// the observed values, or 0, with variance 0).
pub fn filter_run<M, const D: usize>(
    model: &M,
    run: &FilterRun<'_>,
    noise: [f32; D],
    scored_from: usize,
    seed: u64,
    analysis: Option<Analysis<'_, D>>,
) -> Result<f64, tinysde::Error>
where
    M: Sde<f32, D> + Describe + Clone,
    fit::Method: Step<f32, M, D>,
{
    let columns: Vec<Column<'_>> = (0..D)
        .map(|c| Column {
            noise: noise[c],
            ..run.scaling.column(c)
        })
        .collect();
    let deployment = Deployment {
        state_dim: D as u16,
        columns: &columns,
        time: TimeAxis {
            name: "t",
            format: model_file::TimeFormat::Number,
            t0: run.scaling.t0,
            unit: run.scaling.time_unit,
        },
        solver: SolverSpec {
            method: <fit::Method as tinysde::solve::Method>::NAME,
            max_step: run.max_step,
        },
        defaults: Defaults::new(run.members as u32, seed, &LEVELS)?,
        trends: run.trends,
        // `--noise filter` is refused with a seasonal difference.
        seasonal_lag: 0,
    };
    let rows = run.train_rows;
    let mut forecaster: Forecaster<M, fit::Method, D, D, Vecs<D>> = Forecaster::from_parts(
        model.clone(),
        fit::Method::default(),
        &deployment,
        Vecs::new(run.members, rows.max(1)),
    )?;
    let mut scores: Vec<CalibrationScore> = (0..D)
        .map(|_| CalibrationScore::new(0.9))
        .collect::<Result<_, _>>()?;
    let mut column = vec![0.0f32; run.members];
    let mut failure = None;
    // Without the analysis only the scored rows and a burn-in before them are filtered.
    let from = if analysis.is_some() {
        0
    } else {
        scored_from.saturating_sub(FILTER_BURN_IN)
    };
    let mut analysis = analysis;
    for (i, (&t, row)) in run.table.times[..rows]
        .iter()
        .zip(&run.table.rows[..rows])
        .enumerate()
        .skip(from)
    {
        let values: [Option<f64>; D] = core::array::from_fn(|c| row[c]);
        let outcome = forecaster.observe_with(t, &values, &mut [], |c, samples, _| {
            if i < scored_from || failure.is_some() {
                return;
            }
            let Some(x) = values[c] else { return };
            let Some(y) = run.scaling.column(c).model_value(x) else {
                return;
            };
            column.copy_from_slice(samples);
            if let Err(e) = scores[c].add_ensemble(y, &mut column) {
                failure = Some(e);
            }
        })?;
        if let Some((mean, var)) = analysis.as_mut() {
            let (m, v) = match (outcome.updated, forecaster.member_states()) {
                (true, Some(members)) => ensemble_moments(members),
                _ => (
                    core::array::from_fn(|c| {
                        values[c]
                            .and_then(|x| run.scaling.column(c).model_value(x))
                            .filter(|z| z.is_finite())
                            .unwrap_or(0.0)
                    }),
                    [0.0; D],
                ),
            };
            mean[i] = m;
            var[i] = v;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(scores
        .iter()
        .filter(|s| s.count() > 0)
        .map(|s| f64::from(s.mean_crps()))
        .sum())
}

/// Mean and variance (divisor `n`) of each coordinate of an ensemble, in `f64`.
fn ensemble_moments<const D: usize>(members: &[[f32; D]]) -> ([f32; D], [f32; D]) {
    let n = members.len().max(1) as f64;
    let mean: [f64; D] =
        core::array::from_fn(|c| members.iter().map(|u| f64::from(u[c])).sum::<f64>() / n);
    let var: [f64; D] = core::array::from_fn(|c| {
        members
            .iter()
            .map(|u| (f64::from(u[c]) - mean[c]).powi(2))
            .sum::<f64>()
            / n
    });
    (mean.map(|x| x as f32), var.map(|x| x as f32))
}

/// Each column's one-step scatter of the standardized training values: the root of half the
/// mean squared difference between consecutive present values (1 if there is none).
pub fn one_step_scatter<const D: usize>(values: &[[f32; D]], mask: &[[bool; D]]) -> [f32; D] {
    core::array::from_fn(|c| {
        let present: Vec<f64> = values
            .iter()
            .zip(mask)
            .filter(|(_, m)| m[c])
            .map(|(v, _)| f64::from(v[c]))
            .collect();
        let n = present.len().saturating_sub(1);
        if n == 0 {
            return 1.0;
        }
        let ms = present
            .windows(2)
            .map(|w| (w[1] - w[0]).powi(2))
            .sum::<f64>()
            / n as f64;
        let s = (ms / 2.0).sqrt() as f32;
        if s > 0.0 && s.is_finite() {
            s
        } else {
            1.0
        }
    })
}

/// The scales of the one-step variance [`choose_noise`] tries with each nonzero noise.
pub const VARIANCE_SCALES: [f32; 5] = [1.0, 0.8, 1.25, 0.64, 1.56];
/// The steps (noise factor, variance factor) [`choose_noise`] tries around the best nonzero
/// candidate of its grid.
pub const REFINE_STEPS: [(f32, f32); 8] = [
    (0.84, 1.0),
    (1.19, 1.0),
    (1.0, 0.9),
    (1.0, 1.11),
    (0.84, 0.9),
    (0.84, 1.11),
    (1.19, 0.9),
    (1.19, 1.11),
];

/// Each column's mean one-step diffusion variance of `model` over the training rows: the
/// mean over fully observed rows `i` (but the last) of `g(tau_i, y_i)^2 (tau_(i+1) - tau_i)`.
fn diffusion_variance<M: Sde<f32, D>, const D: usize>(
    model: &M,
    times: &[f32],
    values: &[[f32; D]],
    mask: &[[bool; D]],
) -> [f32; D] {
    let mut sum = [0.0f64; D];
    let mut n = 0usize;
    for i in 0..times.len().saturating_sub(1) {
        if mask[i].iter().all(|&p| p) {
            let g = model.diffusion(times[i], &values[i], tinysde::nn::ParamSeed::NONE);
            let h = f64::from(times[i + 1] - times[i]);
            for (s, x) in sum.iter_mut().zip(g) {
                *s += f64::from(x) * f64::from(x) * h;
            }
            n += 1;
        }
    }
    sum.map(|s| (s / n.max(1) as f64) as f32)
}

/// The observation noise and diffusion factors (per column) whose filter predicts the last
/// [`FILTER_SCORED_ROWS`] training rows best (lowest mean CRPS; [`filter_run`] with the
/// same random numbers for every candidate), and its score. The candidates: no noise with
/// the model as it is, and each nonzero noise `r` of [`NOISE_FRACTIONS`] times `scatter`
/// with the diffusion scaled so that the one-step variance the model explains without the
/// noise, `V = g^2 + 2 current^2` (paths from a reading that is itself noisy, to a noisy
/// reading; `g^2` from [`diffusion_variance`], `current` the noise the model was trained
/// with), times each of [`VARIANCE_SCALES`], is shared between paths and noise:
/// `g'^2 = max(s V - 2 r^2, s V / 100)`.
#[allow(clippy::too_many_arguments, reason = "the pieces of one search")]
fn choose_noise<M, const D: usize>(
    model: &M,
    run: &FilterRun<'_>,
    scatter: [f32; D],
    current: [f32; D],
    series: (&[f32], &[[f32; D]], &[[bool; D]]),
    seed: u64,
) -> Result<([f32; D], [f32; D], f64), tinysde::Error>
where
    M: CsvModel + Sde<f32, D>,
    fit::Method: Step<f32, M, D>,
{
    let scored_from = run.train_rows.saturating_sub(FILTER_SCORED_ROWS);
    let g2 = diffusion_variance(model, series.0, series.1, series.2);
    let v: [f32; D] = core::array::from_fn(|c| g2[c] + 2.0 * current[c] * current[c]);
    let candidate = |f: f32, scale: f32| -> ([f32; D], [f32; D], f64) {
        let noise = scatter.map(|s| f * s);
        let factor: [f32; D] = core::array::from_fn(|c| {
            if scale == 0.0 || g2[c].is_nan() || g2[c] <= 0.0 {
                return 1.0;
            }
            let target = (scale * v[c] - 2.0 * noise[c] * noise[c]).max(scale * v[c] / 100.0);
            (target / g2[c]).sqrt()
        });
        let mut scaled = model.clone();
        scaled.scale_diffusion(&factor);
        // A candidate whose filter fails (diverges) is not chosen.
        let score =
            filter_run(&scaled, run, noise, scored_from, seed, None).unwrap_or(f64::INFINITY);
        (noise, factor, score)
    };
    let mut best = ([0.0f32; D], [1.0f32; D], f64::INFINITY);
    let mut at = (0.0f32, 0.0f32);
    for &f in &NOISE_FRACTIONS {
        let scales: &[f32] = if f == 0.0 { &[0.0] } else { &VARIANCE_SCALES };
        for &scale in scales {
            let c = candidate(f, scale);
            if c.2 < best.2 {
                best = c;
                at = (f, scale);
            }
        }
    }
    // A finer step around a nonzero best: noise by 2^(1/4), variance by 10 %.
    if at.0 > 0.0 {
        let (f0, s0) = at;
        for (df, ds) in REFINE_STEPS {
            let c = candidate(f0 * df, s0 * ds);
            if c.2 < best.2 {
                best = c;
            }
        }
    }
    Ok(best)
}

/// Training through the forecaster's filter (`--noise filter`). Half the iterations as the
/// plain fit (one-step windows from the observed rows, no observation noise); then, twice:
/// the observation noise and a factor of the diffusion are chosen by the filter's one-step
/// predictions of the last training rows ([`choose_noise`]: noise among [`NOISE_FRACTIONS`]
/// of each column's one-step scatter, [`one_step_scatter`]; factor among
/// [`DIFFUSION_FACTORS`]); if the noise is not 0, the diffusion is scaled, the filter is
/// run with the noise over every training row ([`filter_run`]), and a quarter of the
/// iterations train windows started from its analysis (`SeriesProblem::with_start_states`:
/// the analysis mean, its variance added to the likelihood's with the noise's): the
/// one-step predictions the forecaster makes, from where the filter is. The choice is made
/// once more for the final model; the model file carries that noise. Until a noise is
/// chosen the fit is the plain one bit for bit (`--noise none`; one trainer); Adam's state
/// carries over into the filtered phases.
pub fn train_filtered<S, const D: usize>(
    model: &mut S,
    times: &[f32],
    values: &[[f32; D]],
    mask: &[[bool; D]],
    how: &fit::SeriesFit,
    run: &FilterRun<'_>,
    bar: &indicatif::ProgressBar,
) -> Result<History, tinysde::Error>
where
    S: CsvModel + Sde<Dual<TRAINING_LANES>, D> + Sde<f32, D> + SdeVjp<D> + Parameters,
    fit::Method: Step<Dual<TRAINING_LANES>, S, D> + Step<f32, S, D> + StepVjp<S, D>,
{
    let start = std::time::Instant::now();
    let series = Series::masked(times, values, mask)?;
    let base = SeriesProblem::new(
        fit::Method::default(),
        series,
        how.max_step,
        how.trajectories,
    )?
    .with_window(how.window)?
    .with_batch(how.batch)?
    .with_objective(how.objective)?;
    let full_batch = base.all_windows().count() <= how.batch;
    let scatter = one_step_scatter(values, mask);
    let rows = values.len();
    // Each filtered phase's analysis (its windows borrow them).
    let (mut mean1, mut var1) = (vec![[0.0f32; D]; rows], vec![[0.0f32; D]; rows]);
    let (mut mean2, mut var2) = (vec![[0.0f32; D]; rows], vec![[0.0f32; D]; rows]);
    let mut history = History::default();
    let window_seed = how.seed ^ 0x5EED;
    let first = how.iterations / 2;
    let second = (how.iterations - first) / 2;
    let third = how.iterations - first - second;
    let mut noisy = false;
    let mut trained_noise = [0.0f32; D];
    let series = (times, values, mask);
    let mut train = |trainer: &mut Trainer<'_, _, _, _, _, TRAINING_LANES, D>,
                     iterations: u32|
     -> Result<(), tinysde::Error> {
        if iterations > 0 {
            let report = trainer.run(iterations, |p: &Progress| {
                history.record(p, bar);
                ControlFlow::Continue(())
            })?;
            history.best_loss = report.best_loss;
        }
        Ok(())
    };
    let config = |seed: u64| TrainConfig {
        noise: NoiseMode::Fresh { seed },
        clip_norm: Some(100.0),
    };
    let fit = tinysde::train::SeriesFit::new(base).with_window_seed(window_seed);
    let mut trainer = Trainer::owned(model.clone(), fit, AdamConfig::lr(how.lr))?
        .with_config(config(how.seed))?
        .with_mode(how.gradient)?;
    train(&mut trainer, first)?;
    // A filtered phase: the noise and diffusion factor the filter predicts best with; if
    // the noise is not 0, a new trainer (Adam's state kept) on windows from the analysis.
    macro_rules! phase {
        ($n:expr, $mean:ident, $var:ident, $iterations:expr) => {
            let seed = FORECAST_SEED ^ $n;
            let current = trainer.model().clone();
            let (noise, factor, _) =
                choose_noise(&current, run, scatter, trained_noise, series, seed)?;
            if noise.iter().any(|&n| n > 0.0) {
                noisy = true;
                trained_noise = noise;
                let adam = trainer.optimizer().clone();
                let mut scaled = current;
                scaled.scale_diffusion(&factor);
                filter_run(
                    &scaled,
                    run,
                    noise,
                    rows,
                    seed,
                    Some((&mut $mean, &mut $var)),
                )?;
                let problem = base
                    .with_observation_noise(noise)?
                    .with_start_states(&$mean, &$var)?;
                let fit = tinysde::train::SeriesFit::new(problem)
                    .with_window_seed(window_seed.wrapping_add($n));
                let noise_seed = how
                    .seed
                    .wrapping_add(0x9E37_79B9_7F4A_7C15_u64.wrapping_mul($n));
                trainer = Trainer::owned(scaled, fit, adam)?
                    .with_config(config(noise_seed))?
                    .with_mode(how.gradient)?;
            }
            train(&mut trainer, $iterations)?;
        };
    }
    phase!(1, mean1, var1, second);
    phase!(2, mean2, var2, third);
    // The best parameters of a full batch compare like with like only in the plain fit.
    if full_batch && !noisy {
        trainer.restore_best();
    }
    *model = trainer.model().clone();
    drop(trainer);
    let (noise, factor, _) = choose_noise(
        &*model,
        run,
        scatter,
        trained_noise,
        series,
        FORECAST_SEED ^ 3,
    )?;
    model.scale_diffusion(&factor);
    history.noise = noise.to_vec();
    history.seconds = start.elapsed().as_secs_f64();
    Ok(history)
}

/// The longest interval between two times, in median intervals.
pub const MAX_GAP_RATIO: f64 = 100_000.0;
/// The most samples the forecast past the data may keep (horizon x paths).
pub const MAX_FORECAST_SAMPLES: usize = 20_000_000;

/// One column's prediction at every data and forecast time, in file units (`None` where
/// there is none: before the first fully observed row).
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Mean.
    pub mean: Vec<Option<f64>>,
    /// 5 % quantile.
    pub q05: Vec<Option<f64>>,
    /// Median.
    pub q50: Vec<Option<f64>>,
    /// 95 % quantile.
    pub q95: Vec<Option<f64>>,
}

impl Band {
    fn empty(n: usize) -> Self {
        Band {
            mean: vec![None; n],
            q05: vec![None; n],
            q50: vec![None; n],
            q95: vec![None; n],
        }
    }
}

/// `forecast.csv`: `time,mean,q05,q50,q95` (one value column) or `time,NAME_mean,...` per
/// column, one row per data time then per forecast time.
fn forecast_csv(table: &Table, times: &[f64], bands: &[Band]) -> String {
    let mut s = String::from(&table.names[0]);
    if bands.len() == 1 {
        s.push_str(",mean,q05,q50,q95");
    } else {
        for name in &table.names[1..] {
            let _ = write!(s, ",{name}_mean,{name}_q05,{name}_q50,{name}_q95");
        }
    }
    s.push('\n');
    for (i, &t) in times.iter().enumerate() {
        s.push_str(&table.time_format.format(t));
        for b in bands {
            for v in [b.mean[i], b.q05[i], b.q50[i], b.q95[i]] {
                s.push(',');
                if let Some(v) = v {
                    s.push_str(&significant(v));
                }
            }
        }
        s.push('\n');
    }
    s
}

/// `x` rounded to 7 significant digits (the model computes in `f32`), written briefly.
fn significant(x: f64) -> String {
    format!("{x:.6e}")
        .parse::<f64>()
        .map_or(x.to_string(), |r| r.to_string())
}

fn description<M: tinysde::weights::Describe>() -> String {
    let mut v = Vec::new();
    M::describe(&mut |b| v.extend_from_slice(b));
    String::from_utf8_lossy(&v).into_owned()
}

/// A file time as a plot coordinate: the number itself, or the decimal year of a date.
fn plot_time(format: TimeFormat, t: f64) -> f32 {
    match format {
        TimeFormat::Number => t as f32,
        TimeFormat::Date | TimeFormat::DateTime => (1970.0 + t / (365.2425 * 86_400.0)) as f32,
    }
}

fn fit_plot(
    table: &Table,
    scaling: &Scaling,
    times: &[f64],
    bands: &[Band],
    horizon: u32,
) -> Result<Vec<u8>, String> {
    let fmt = table.time_format;
    let x_label = match fmt {
        TimeFormat::Number => table.names[0].clone(),
        _ => format!("{} (year)", table.names[0]),
    };
    let last = plot_time(fmt, table.times[table.times.len() - 1]);
    let dense = table.times.len() > 400;
    let charts: Vec<Chart> = bands
        .iter()
        .enumerate()
        .map(|(c, band)| {
            let curve = |v: &[Option<f64>]| -> Vec<(f32, f32)> {
                times
                    .iter()
                    .zip(v)
                    .filter_map(|(&t, y)| y.map(|y| (plot_time(fmt, t), y as f32)))
                    .collect()
            };
            let mut items = vec![
                Item::Band {
                    lower: curve(&band.q05),
                    upper: curve(&band.q95),
                    color: plot::BLUE,
                    alpha: 0.2,
                    label: Some("5-95 % band".into()),
                },
                Item::Line {
                    points: curve(&band.mean),
                    color: plot::BLUE,
                    alpha: 0.8,
                    width: if dense { 1 } else { 2 },
                    label: Some("predicted mean".into()),
                },
                Item::points(
                    table
                        .times
                        .iter()
                        .zip(&table.rows)
                        .filter_map(|(&t, r)| r[c].map(|x| (plot_time(fmt, t), x as f32)))
                        .collect(),
                    plot::RED,
                    if dense { 1 } else { 3 },
                    "data",
                ),
            ];
            if horizon > 0 {
                items.push(Item::VLine {
                    x: last,
                    color: plot::GREY,
                });
            }
            let _ = scaling;
            Chart {
                title: format!(
                    "{}: each point predicted from the previous observation{}",
                    table.names[c + 1],
                    if horizon > 0 {
                        "; then the forecast"
                    } else {
                        ""
                    }
                ),
                x_label: x_label.clone(),
                y_label: table.names[c + 1].clone(),
                log_y: false,
                legend: Legend::Auto,
                items,
            }
        })
        .collect();
    let d = bands.len() as u32;
    plot::render_png(&charts, bands.len(), (900 * d, 480))
}

fn loss_plot(history: &History, settings: &Settings) -> Result<Vec<u8>, String> {
    let mut items: Vec<Item> = history
        .stage_starts()
        .into_iter()
        .map(|i| Item::VLine {
            x: i as f32,
            color: plot::GREY,
        })
        .collect();
    items.push(Item::line(
        history
            .losses
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as f32, l))
            .collect(),
        plot::BLUE,
        1,
        "loss of the iteration's batch of windows",
    ));
    let chart = Chart {
        title: match settings.loss {
            LossKind::Calibrated => format!(
                "Training loss: Gaussian NLL per observation ({} paths per window)",
                settings.trajectories
            ),
            LossKind::Mse => format!(
                "Training loss: MSE of the {}-path mean (standardized units)",
                settings.trajectories
            ),
        },
        x_label: "iteration".into(),
        y_label: "loss".into(),
        log_y: settings.loss == LossKind::Mse,
        legend: Legend::Auto,
        items,
    };
    plot::render_png(&[chart], 1, (900, 480))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_cli(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let start = std::time::Instant::now();
    let progress = !cli.quiet && common::show_progress();
    match run(&cli.csv, &settings, &cli.out, progress) {
        Ok(s) => {
            println!(
                "{}: {} rows ({} missing values), {} value column(s), solver steps of at most {} ({})",
                cli.csv.display(),
                s.rows,
                s.missing,
                s.dims,
                table_csv::format_number(s.max_step),
                s.time_unit,
            );
            match &settings.start {
                Start::Forecast(m) => println!("forecast with {} (no training)", m.display()),
                start => println!(
                    "training{}: {} iterations ({} loss, {} mode) in {:.1} s, last loss {:.4}",
                    match start {
                        Start::Resume(m) => format!(" from {}", m.display()),
                        _ => String::new(),
                    },
                    s.history.losses.len(),
                    settings.loss.name(),
                    match settings.gradient {
                        GradientKind::Reverse => "reverse",
                        GradientKind::Forward => "forward",
                    },
                    s.history.seconds,
                    s.history.losses.last().copied().unwrap_or(f32::NAN),
                ),
            }
            let periods: Vec<String> = s.periods.iter().map(|&p| significant(p)).collect();
            match (&s.detected, periods.is_empty()) {
                (Some(d), _) => println!(
                    "time features: period {} ({}; {:.2} rows), detected from the training rows (autocorrelation {:.2} of the differences); --period none turns it off",
                    periods.join(", "),
                    s.time_unit,
                    d.lags,
                    d.acf
                ),
                (None, false) => println!("time features: period(s) {} ({})", periods.join(", "), s.time_unit),
                (None, true) if settings.detect_period && settings.start == Start::Fresh => {
                    println!("time features: none (no period detected in the training rows)")
                }
                (None, true) => println!("time features: none"),
            }
            if let Some(t) = s.trends.first() {
                let what = match (t.slope != 0.0, t.harmonics) {
                    (true, 0) => "a line".to_string(),
                    (false, 0) => "a level".to_string(),
                    (false, h) => format!("a level and {h} harmonic(s) of the period"),
                    (true, h) => format!("a line and {h} harmonic(s) of the period"),
                };
                println!(
                    "mean: {what}, fitted on the training rows (the SDE models the rest){}",
                    if settings.mean == MeanKind::Auto {
                        " (--mean auto: a calendar period; --mean none turns it off)"
                    } else {
                        ""
                    }
                );
            }
            if s.lag > 0 || !s.difference_scores.is_empty() {
                let scores: Vec<String> = s
                    .difference_scores
                    .iter()
                    .map(|(d, c)| format!("{d:?} {c:.4}").to_lowercase())
                    .collect();
                println!(
                    "seasonal difference: {}{}",
                    if s.lag > 0 {
                        format!(
                            "the value {} rows back (the SDE models the change over one period)",
                            s.lag
                        )
                    } else {
                        "none".to_string()
                    },
                    if scores.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (--difference auto, CRPS on the last training rows: {})",
                            scores.join(", ")
                        )
                    }
                );
            }
            if s.transforms.contains(&Transform::Log) {
                println!(
                    "values: logarithm{}",
                    if settings.transform == TransformKind::Auto {
                        " (--transform auto: positive values with a growing level; --transform affine turns it off)"
                    } else {
                        ""
                    }
                );
            }
            if let Some(best) = s.validation.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
                let name = |(noise, window): (NoiseKind, usize)| {
                    let n = clap::ValueEnum::to_possible_value(&noise)
                        .map_or_else(String::new, |v| v.get_name().to_string());
                    format!("--noise {n} --window {window}")
                };
                let list: Vec<String> = s
                    .validation
                    .iter()
                    .map(|&(c, score)| format!("{} {score:.3}", name(c)))
                    .collect();
                println!(
                    "--noise auto: chose {} by the CRPS on the last {} training rows (relative to the first): {}",
                    name(best.0),
                    s.validation_rows,
                    list.join(", ")
                );
            }
            if !s.history.noise.is_empty() {
                let sd: Vec<String> = s.history.noise.iter().map(|&n| format!("{n:.4}")).collect();
                println!(
                    "observation noise (learned, standardized units): {}; --noise none turns it off",
                    sd.join(", ")
                );
            }
            for (c, (cov, crps)) in s.coverage.iter().zip(&s.crps).enumerate() {
                println!(
                    "column {}: {:.1} % of the observations inside their predicted 5-95 % band (one step ahead); mean CRPS {:.4}",
                    c + 2,
                    100.0 * cov,
                    crps
                );
            }
            for (c, (cov, crps)) in s.holdout_coverage.iter().zip(&s.holdout_crps).enumerate() {
                println!(
                    "column {}, {} held-out rows: {:.1} % inside their band; mean CRPS {:.4}",
                    c + 2,
                    settings.holdout,
                    100.0 * cov,
                    crps
                );
            }
            print_baselines(&s, settings.holdout);
            for f in &s.files {
                println!("wrote {}", f.display());
            }
            println!("total {:.1} s", start.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Persistence's and AR(1)'s one-step-ahead scores on one value column (file units).
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineScores {
    /// The fitted persistence model.
    pub persistence_fit: Persistence,
    /// The fitted AR(1) model.
    pub ar1_fit: Ar1,
    /// Persistence on the training rows (all rows without a holdout), the rows tinysde's
    /// in-sample scores cover.
    pub persistence: OneStepScore,
    /// AR(1) on the same rows.
    pub ar1: OneStepScore,
    /// Persistence on the held-out rows (empty without a holdout).
    pub holdout_persistence: OneStepScore,
    /// AR(1) on the held-out rows.
    pub holdout_ar1: OneStepScore,
}

/// The baselines of every value column.
pub type Baselines = Vec<BaselineScores>;

/// Fits persistence and AR(1) (`tinysde::forecast::baseline`) to each value column's
/// training rows (the first `train_rows`), time unit `gap` (the median interval), and
/// scores them one step ahead on the rows fit_csv's model is scored on: every observed
/// value after the first fully observed row, predicted from the last fully observed row
/// before it (the streaming forecaster's anchor).
pub fn baseline_scores(table: &Table, train_rows: usize, gap: f64) -> Result<Baselines, String> {
    let train_times = table.times.get(..train_rows).ok_or("no training rows")?;
    (0..table.value_columns())
        .map(|c| {
            let values: Vec<Option<f64>> = table.rows.iter().map(|r| r[c]).collect();
            let name = &table.names[c + 1];
            let persistence_fit = Persistence::fit(train_times, &values[..train_rows], gap)
                .map_err(|e| format!("{name}: persistence: {e}"))?;
            let ar1_fit = Ar1::fit(train_times, &values[..train_rows], gap)
                .map_err(|e| format!("{name}: AR(1): {e}"))?;
            let mut scores = [OneStepScore::new(); 4];
            let mut anchor: Option<(f64, f64)> = None;
            for (i, (&t, row)) in table.times.iter().zip(&table.rows).enumerate() {
                if let (Some(y), Some((ta, ya))) = (row[c], anchor) {
                    let held = usize::from(i >= train_rows) * 2;
                    let models: [&dyn OneStep; 2] = [&persistence_fit, &ar1_fit];
                    for (m, model) in models.into_iter().enumerate() {
                        let g = model
                            .predict(ya, (t - ta) / gap)
                            .map_err(|e| format!("{name}: row {i}: baseline: {e}"))?;
                        scores[held + m]
                            .add(&g, y)
                            .map_err(|e| format!("{name}: row {i}: baseline: {e}"))?;
                    }
                }
                if row.iter().all(Option::is_some) {
                    anchor = row[c].map(|y| (t, y));
                }
            }
            let [persistence, ar1, holdout_persistence, holdout_ar1] = scores;
            Ok(BaselineScores {
                persistence_fit,
                ar1_fit,
                persistence,
                ar1,
                holdout_persistence,
                holdout_ar1,
            })
        })
        .collect()
}

/// The baselines' entries of `fit_csv.json`: per column, like `crps` and `coverage_90`.
fn baseline_json(baselines: &Result<Baselines, String>) -> Vec<(&'static str, Value)> {
    let Ok(b) = baselines else {
        return vec![("baselines", json!(baselines.as_ref().err()))];
    };
    let list = |f: &dyn Fn(&BaselineScores) -> f64| json!(b.iter().map(f).collect::<Vec<_>>());
    vec![
        ("persistence_crps", list(&|s| s.persistence.mean_crps())),
        (
            "persistence_coverage_90",
            list(&|s| s.persistence.coverage()),
        ),
        ("ar1_crps", list(&|s| s.ar1.mean_crps())),
        ("ar1_coverage_90", list(&|s| s.ar1.coverage())),
        ("ar1_phi", list(&|s| s.ar1_fit.phi)),
        (
            "holdout_persistence_crps",
            list(&|s| s.holdout_persistence.mean_crps()),
        ),
        (
            "holdout_persistence_coverage_90",
            list(&|s| s.holdout_persistence.coverage()),
        ),
        ("holdout_ar1_crps", list(&|s| s.holdout_ar1.mean_crps())),
        (
            "holdout_ar1_coverage_90",
            list(&|s| s.holdout_ar1.coverage()),
        ),
    ]
}

/// Prints the baselines beside the model's scores: on the held-out rows with a holdout,
/// else on all predicted rows (in-sample).
fn print_baselines(s: &Summary, holdout: usize) {
    let b = match &s.baselines {
        Ok(b) => b,
        Err(e) => {
            println!("baselines (persistence, AR(1)): none: {e}");
            return;
        }
    };
    let sets = if holdout > 0 {
        (
            &s.holdout_crps,
            &s.holdout_coverage,
            format!("{holdout} held-out rows"),
        )
    } else {
        (
            &s.crps,
            &s.coverage,
            "all predicted rows, in-sample".to_string(),
        )
    };
    let (crps, coverage, rows) = sets;
    for (c, ((base, &model_crps), &model_cov)) in b.iter().zip(crps).zip(coverage).enumerate() {
        let (p, a) = if holdout > 0 {
            (&base.holdout_persistence, &base.holdout_ar1)
        } else {
            (&base.persistence, &base.ar1)
        };
        println!(
            "column {}, {rows}: mean CRPS tinysde {:.4}, persistence {:.4}, AR(1) {:.4} (phi {:.3}); inside the 5-95 % band {:.1} %, {:.1} %, {:.1} %; tinysde / better baseline {:.3}",
            c + 2,
            model_crps,
            p.mean_crps(),
            a.mean_crps(),
            base.ar1_fit.phi,
            100.0 * model_cov,
            100.0 * p.coverage(),
            100.0 * a.coverage(),
            model_crps / p.mean_crps().min(a.mean_crps()),
        );
    }
}
