//! The seed task: fit a one-dimensional neural SDE to seven noisy points of `exp(x)`.
//!
//! ```text
//! cargo run --release --features examples --example fit_exp [--out DIR] [--quiet] [--threads N]    (default DIR: target/fit_exp)
//! ```
//!
//! Data: `y = exp(x) + U[0, 2)` at `x = -3, -2, ..., 3` (x plays the role of time; fixed
//! seed). Model: drift `u -> u^3 -> Dense(1, 20, quick tanh) -> Dense(20, 1)`, diffusion
//! `u -> Dense(1, 20, quick sigmoid) -> Dense(20, 1)` (`QuickTanh`, `QuickSigmoid`), solved by SOSRI with 5 steps per unit
//! of time from `u0 = data[0]`. Loss: mean squared error between the mean of 16 sampled
//! trajectories (a fresh Brownian path every iteration) and the data; Adam, learning rate
//! 0.002, gradients in reverse mode (the discrete adjoint) on all cores (`--threads N` for
//! N threads; the results do not depend on N).
//!
//! The same initial model is trained two ways: plainly on all seven points for 500
//! iterations, and by the growing-window schedule (the first 2 points for 300 iterations,
//! then one more point per stage, 300 iterations each: 1800 in all). Each ends at the best
//! parameters seen on all points; both are then scored with 1000 trajectories on a fixed
//! path.
//!
//! A third model, from the same kind of initial weights, is fitted by the Gaussian
//! likelihood with learned observation noise (`tinysde::train::SeriesProblem` with one
//! window of all six points after the first, `with_learned_noise`, 3000 iterations, 32
//! paths, Adam(0.005)): the predictive distribution of each point is the paths from the
//! first point plus the observation noise, and the loss rewards a spread that matches the
//! points' scatter, so its band covers the data where the two mean-only fits have a band of
//! almost no width. The window is the whole path because the band is scored as a forecast
//! from the first point (one-step windows teach a diffusion that, summed over six steps,
//! makes the band several times too wide). The program prints each model's coverage of the
//! six points after the first by its 5-95 % band, and their CRPS.
//!
//! The training itself is `common::fit::train` (shared with the other examples): a
//! `tinysde::grad::Problem` (solver, `u0`, trajectories, save times), the
//! `tinysde::train::MeanSquaredError` loss, and a `tinysde::train::Training` (the owned
//! training state: model, Adam and every buffer) whose `run` / `run_schedule` report every
//! iteration to the progress bar.
//!
//! Writes into OUT_DIR (all files appear together, or none if anything fails):
//! - `fit_exp_fit.png`: the data, the mean of 1000 sampled trajectories of each model, and
//!   the 5-95 % bands of the growing-window and the calibrated models;
//! - `fit_exp_loss.png`: the training loss per iteration of the two MSE schedules, and the
//!   calibrated model's likelihood;
//! - `fit_exp.weights`: the growing-window model in tinysde's weights format
//!   (`tinysde::weights`; load it with `weights::read_into`, also on a microcontroller);
//! - `fit_exp_calibrated.weights`: the calibrated model.

#[path = "common/mod.rs"]
// The test suite compiles this file as a module beside the other examples and gives them one
// copy of `common` (tests/suite/main.rs): three copies cost the suite 8 % more CPU to build.
#[cfg(not(test))]
pub mod common;
#[cfg(test)]
pub(crate) use crate::common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::fit::{self, History, Method, Model, Schedule};
use common::plot::{self, Chart, Item, Legend};
use tinysde::nn::{QuickSigmoid, QuickTanh};
use tinysde::solve::{Solver, TimeGrid};
use tinysde::train::{CalibrationScore, GrowingWindow, MeanSquaredError, SeriesObjective};

/// The seed task's model with the quick activations (new models' default).
pub type ExpModel = Model<1, QuickTanh, QuickSigmoid>;

/// Everything that sets the size of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Iterations of plain training.
    pub plain_iterations: u32,
    /// The growing-window schedule.
    pub window: GrowingWindow,
    /// Adam's learning rate.
    pub lr: f32,
    /// Trajectories per loss evaluation during training.
    pub trajectories: usize,
    /// Solver steps per unit of time.
    pub steps_per_unit: u32,
    /// Trajectories for the final score and the plotted mean and band.
    pub eval_trajectories: usize,
    /// Seed of the data's noise.
    pub data_seed: u64,
    /// Seed of the initial weights.
    pub init_seed: u64,
    /// Base seed of the training noise.
    pub noise_seed: u64,
    /// The calibrated model's training: iterations (Gaussian likelihood of each window).
    pub calibrated_iterations: u32,
    /// The calibrated model's trajectories per window.
    pub calibrated_trajectories: usize,
    /// The calibrated model's learning rate.
    pub calibrated_lr: f32,
    /// The calibrated model's window: observations per window after its (observed) start
    /// (6: the whole path from the first point, as the band is scored; 1: one step ahead).
    pub calibrated_window: usize,
    /// The Gaussian likelihood's variance floor.
    pub var_floor: f32,
    /// The calibrated model's learned observation noise: its initial scale (`None`: no
    /// observation noise, the data's scatter is explained by diffusion alone).
    pub observation_noise: Option<f32>,
    /// Threads for the mean-only fits' gradients (0: all cores; the results do not depend
    /// on it).
    pub threads: usize,
}

impl Settings {
    /// The seed article's settings.
    pub fn full() -> Self {
        Self {
            plain_iterations: 500,
            window: GrowingWindow::SEED_ARTICLE,
            lr: 0.002,
            trajectories: 16,
            steps_per_unit: 5,
            eval_trajectories: 1000,
            data_seed: 2024,
            init_seed: 1,
            noise_seed: 7,
            calibrated_iterations: 3000,
            calibrated_trajectories: 32,
            calibrated_lr: 0.005,
            calibrated_window: 6,
            var_floor: 1e-3,
            observation_noise: Some(0.5),
            threads: 0,
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Summary {
    /// The data times.
    pub times: Vec<f32>,
    /// The data.
    pub data: Vec<[f32; 1]>,
    /// Plain training.
    pub plain: History,
    /// Growing-window training.
    pub window: History,
    /// The score (MSE of the mean of `eval_trajectories` paths) of the initial model.
    pub initial_score: f32,
    /// The final score of each model.
    pub plain_score: f32,
    /// See `plain_score`.
    pub window_score: f32,
    /// The trained (growing-window) model.
    pub model: ExpModel,
    /// Calibrated training (Gaussian likelihood with learned observation noise).
    pub calibrated: History,
    /// The calibrated model.
    pub calibrated_model: ExpModel,
    /// Per model (plain, growing window, calibrated): the fraction of the six data points
    /// after the first inside the model's 5-95 % band, and their mean CRPS, from
    /// `eval_trajectories` paths started at the first point.
    pub calibration: [(f32, f32); 3],
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Tangent lanes per forward-mode pass of the calibrated fit: the model's 122 parameters
/// in 2 passes of 61.
const LANES: usize = 61;

/// The evaluation path's seed (never used in training).
const EVAL_SEED: u64 = 0xE7A1;

/// Generates the data, trains both ways, writes the plots and the weights into `out`.
pub fn run(settings: &Settings, out: &Path, progress: bool) -> Result<Summary, String> {
    let (times, data) = common::data::seed_task(settings.data_seed);
    let (t0, t1) = (times[0], times[times.len() - 1]);
    let steps = settings.steps_per_unit * (t1 - t0) as u32;
    let grid = TimeGrid::new(t0, t1, steps).map_err(|e| format!("time grid: {e}"))?;
    let solver = Solver::new(Method::default(), grid);
    let u0 = data[0];
    let loss = MeanSquaredError::new(&data).map_err(|e| format!("data: {e}"))?;
    let initial: ExpModel = fit::new_model(settings.init_seed).map_err(|e| e.to_string())?;
    let outputs = common::output::Outputs::new(out)?;

    let plain_schedule = Schedule::Phases(vec![fit::Phase {
        lr: settings.lr,
        trajectories: settings.trajectories,
        iterations: settings.plain_iterations,
    }]);
    let window_schedule = Schedule::Growing {
        window: settings.window,
        lr: settings.lr,
        trajectories: settings.trajectories,
        limit: None,
    };

    let mut plain = initial;
    let bar = fit::progress_bar(
        plain_schedule.total_iterations(times.len()) as u64,
        "plain",
        progress,
    );
    let plain_hist = fit::train(
        &mut plain,
        solver,
        u0,
        &times,
        loss,
        &plain_schedule,
        settings.noise_seed,
        settings.threads,
        &bar,
    )
    .map_err(|e| format!("plain training: {e}"))?;
    bar.finish();

    let mut model = initial;
    let bar = fit::progress_bar(
        window_schedule.total_iterations(times.len()) as u64,
        "growing window",
        progress,
    );
    let window_hist = fit::train(
        &mut model,
        solver,
        u0,
        &times,
        loss,
        &window_schedule,
        settings.noise_seed,
        settings.threads,
        &bar,
    )
    .map_err(|e| format!("growing-window training: {e}"))?;
    bar.finish();

    let score = |m: &ExpModel| {
        fit::evaluate(
            m,
            solver,
            u0,
            &times,
            &loss,
            settings.eval_trajectories,
            EVAL_SEED,
        )
        .map_err(|e| format!("evaluation: {e}"))
    };
    let initial_score = score(&initial)?;
    let plain_score = score(&plain)?;
    let window_score = score(&model)?;

    // The calibrated model: the likelihood of the points of each window given its first
    // point, with learned observation noise. With the whole path as the window (the default)
    // training scores the same forecast the band is scored on, so the diffusion is not
    // rewarded for absorbing the scatter of single steps (one-step windows: diffusion sd
    // learned from step-to-step scatter, which then accumulates over six steps: CRPS 2.71).
    let mut calibrated: ExpModel =
        fit::new_seed_model(settings.init_seed).map_err(|e| e.to_string())?;
    let bar = fit::progress_bar(
        u64::from(settings.calibrated_iterations),
        "calibrated",
        progress,
    );
    let how = fit::SeriesFit {
        objective: SeriesObjective::GaussianNll {
            var_floor: settings.var_floor,
        },
        window: settings.calibrated_window,
        batch: times.len(),
        trajectories: settings.calibrated_trajectories,
        max_step: 1.0 / settings.steps_per_unit as f32,
        lr: settings.calibrated_lr,
        iterations: settings.calibrated_iterations,
        seed: settings.noise_seed,
        gradient: tinysde::train::GradientMode::Reverse(tinysde::solve::Checkpoints::All),
        noise: settings.observation_noise,
        noisy_start: false,
    };
    let mask = vec![[true]; data.len()];
    let calibrated_hist =
        fit::train_series::<LANES, _, 1>(&mut calibrated, &times, &data, &mask, &how, &bar)
            .map_err(|e| format!("calibrated training: {e}"))?;
    bar.finish();

    let mut calibration = [(0.0, 0.0); 3];
    let no_noise: &[f32] = &[];
    let noises = [no_noise, no_noise, &calibrated_hist.noise];
    for (k, m) in [&plain, &model, &calibrated].into_iter().enumerate() {
        // The predictive samples: paths plus the learned observation noise (calibrated).
        let s = fit::sample(m, solver, u0, settings.eval_trajectories, EVAL_SEED)
            .map_err(|e| format!("sampling: {e}"))?
            .with_noise(noises[k]);
        let mut score = CalibrationScore::new(0.9).map_err(|e| e.to_string())?;
        for (&t, y) in times.iter().zip(&data).skip(1) {
            let i = solver.grid.index_of(t).unwrap_or(0) as usize;
            let mut ens: Vec<f32> = s.paths.iter().map(|p| p[i][0]).collect();
            score
                .add_ensemble(y[0], &mut ens)
                .map_err(|e| format!("scoring: {e}"))?;
        }
        calibration[k] = (score.coverage(), score.mean_crps());
    }

    let mut outputs = outputs;
    let fit_png = fit_plot(
        &times,
        &data,
        [&plain, &model, &calibrated],
        &calibrated_hist.noise,
        solver,
        u0,
        settings.eval_trajectories,
    )?;
    outputs.add("fit_exp_fit.png", &fit_png)?;
    let loss_png = loss_plot(&plain_hist, &window_hist, &calibrated_hist, settings)?;
    outputs.add("fit_exp_loss.png", &loss_png)?;
    for (name, m) in [
        ("fit_exp.weights", &model),
        ("fit_exp_calibrated.weights", &calibrated),
    ] {
        let mut blob = vec![0u8; tinysde::weights::encoded_len::<ExpModel>()];
        tinysde::weights::write(m, &mut blob).map_err(|e| format!("weights: {e}"))?;
        outputs.add(name, &blob)?;
    }
    let files = outputs.commit()?;

    Ok(Summary {
        times,
        data,
        plain: plain_hist,
        window: window_hist,
        initial_score,
        plain_score,
        window_score,
        model,
        calibrated: calibrated_hist,
        calibrated_model: calibrated,
        calibration,
        files,
    })
}

/// The fit: data points, each model's mean, and the bands of the growing-window and the
/// calibrated models.
fn fit_plot(
    times: &[f32],
    data: &[[f32; 1]],
    [plain, window, calibrated]: [&ExpModel; 3],
    calibrated_noise: &[f32],
    solver: Solver<Method>,
    u0: [f32; 1],
    trajectories: usize,
) -> Result<Vec<u8>, String> {
    let sample = |m: &ExpModel| {
        fit::sample(m, solver, u0, trajectories, EVAL_SEED).map_err(|e| format!("sampling: {e}"))
    };
    let (p, s) = (sample(plain)?, sample(window)?);
    // The calibrated band: quantiles of the paths plus the learned observation noise.
    let c = sample(calibrated)?.with_noise(calibrated_noise);
    let at = |ys: &[f32]| -> Vec<(f32, f32)> {
        s.times.iter().copied().zip(ys.iter().copied()).collect()
    };
    let mean = |x: &fit::Samples<1>| at(&x.mean.iter().map(|u| u[0]).collect::<Vec<_>>());
    let items = vec![
        Item::Band {
            lower: at(&c.quantile(0, 0.05)),
            upper: at(&c.quantile(0, 0.95)),
            color: plot::GREEN,
            alpha: 0.2,
            label: Some("5-95 % band, calibrated".into()),
        },
        Item::Band {
            lower: at(&s.quantile(0, 0.05)),
            upper: at(&s.quantile(0, 0.95)),
            color: plot::BLUE,
            alpha: 0.3,
            label: Some("5-95 % band, growing window".into()),
        },
        Item::line(mean(&p), plot::ORANGE, 2, "mean, plain (MSE of the mean)"),
        Item::line(
            mean(&s),
            plot::BLUE,
            3,
            "mean, growing window (MSE of the mean)",
        ),
        Item::line(
            mean(&c),
            plot::GREEN,
            3,
            "mean, calibrated (likelihood, learned noise)",
        ),
        Item::points(
            times.iter().zip(data).map(|(&t, d)| (t, d[0])).collect(),
            plot::RED,
            5,
            "data: exp(x) + U[0, 2)",
        ),
    ];
    let chart = Chart {
        title: format!("Neural SDE fits to exp(x) + noise ({trajectories} sampled paths each)"),
        x_label: "x (time)".into(),
        y_label: "u".into(),
        log_y: false,
        legend: Legend::UpperLeft,
        items,
    };
    plot::render_png(&[chart], 1, (900, 560))
}

/// Training loss per iteration of both schedules, log scale.
fn loss_plot(
    plain: &History,
    window: &History,
    calibrated: &History,
    settings: &Settings,
) -> Result<Vec<u8>, String> {
    let series = |h: &History| -> Vec<(f32, f32)> {
        h.losses
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as f32, l))
            .collect()
    };
    let mut items: Vec<Item> = window
        .stage_starts()
        .into_iter()
        .map(|i| Item::VLine {
            x: i as f32,
            color: plot::GREY,
        })
        .collect();
    items.push(Item::line(
        series(plain),
        plot::ORANGE,
        1,
        "plain, all 7 points",
    ));
    items.push(Item::line(
        series(window),
        plot::BLUE,
        1,
        &format!(
            "growing window ({} points, +{} every {} it.; dashed: new stage)",
            settings.window.start, settings.window.add, settings.window.iters_per_stage
        ),
    ));
    let chart = Chart {
        title: format!(
            "Training loss: MSE of the {}-path mean on the points in use",
            settings.trajectories
        ),
        x_label: "iteration".into(),
        y_label: "loss".into(),
        log_y: true,
        legend: Legend::Auto,
        items,
    };
    let nll = Chart {
        title: "Calibrated model: Gaussian NLL per point, paths from x = -3 plus learned noise"
            .into(),
        x_label: "iteration".into(),
        y_label: "loss".into(),
        log_y: false,
        legend: Legend::Auto,
        items: vec![Item::line(
            series(calibrated),
            plot::GREEN,
            1,
            &format!("{} paths per point", settings.calibrated_trajectories),
        )],
    };
    plot::render_png(&[chart, nll], 2, (1500, 480))
}

/// The seed task: fit a neural SDE to seven noisy points of exp(x), three ways, and plot it.
#[derive(clap::Parser, Debug)]
#[command(name = "fit_exp", version)]
#[command(
    after_help = "Writes fit_exp_fit.png, fit_exp_loss.png, fit_exp.weights and fit_exp_calibrated.weights into \
the output directory (all together, or nothing on failure). Exit codes: 0 success; 1 failed run; 2 bad command line."
)]
struct Cli {
    #[command(flatten)]
    output: common::OutputArgs,
    /// Threads for the training gradients (0: all cores); the results do not depend on it
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let out = cli.output.dir("fit_exp");
    let settings = Settings {
        threads: cli.threads,
        ..Settings::full()
    };

    let start = std::time::Instant::now();
    match run(&settings, &out, cli.output.progress()) {
        Ok(s) => {
            println!(
                "data (x, y): {}",
                s.times
                    .iter()
                    .zip(&s.data)
                    .map(|(t, d)| format!("({t}, {:.3})", d[0]))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            println!("initial model: score {:.4}", s.initial_score);
            let last = |h: &History| h.losses.last().copied().unwrap_or(f32::NAN);
            println!(
                "plain:          {:>4} iterations in {:5.1} s, last training loss {:8.4}, score {:.4}",
                s.plain.losses.len(),
                s.plain.seconds,
                last(&s.plain),
                s.plain_score
            );
            println!(
                "growing window: {:>4} iterations in {:5.1} s, last training loss {:8.4}, score {:.4}",
                s.window.losses.len(),
                s.window.seconds,
                last(&s.window),
                s.window_score
            );
            println!(
                "calibrated:     {:>4} iterations in {:5.1} s, last training loss {:8.4} (Gaussian NLL of the path from x = -3){}",
                s.calibrated.losses.len(),
                s.calibrated.seconds,
                last(&s.calibrated),
                s.calibrated
                    .noise
                    .first()
                    .map_or(String::new(), |sd| format!(", learned observation noise sd {sd:.3}"))
            );
            for (name, (coverage, crps)) in ["plain", "growing window", "calibrated"]
                .iter()
                .zip(s.calibration)
            {
                println!(
                    "{name:>14}: {:5.1} % of the 6 points after x = -3 inside the 5-95 % band, mean CRPS {crps:.3}",
                    100.0 * coverage
                );
            }
            println!(
                "score = MSE between the data and the mean of {} paths on a fixed evaluation path",
                settings.eval_trajectories
            );
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
