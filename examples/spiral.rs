//! The neural SDE tutorial of DiffEqFlux ("method of moments"): learn a stochastic spiral
//! from the mean and variance of 10,000 simulated paths.
//!
//! ```text
//! cargo run --release --features examples --example spiral [OUT_DIR] [--threads N]    (default OUT_DIR: target/spiral)
//! ```
//!
//! True system (Itô, diagonal multiplicative noise) on `t in [0, 1]` from `u0 = [2, 0]`:
//! `du = ((u.^3)' A)' dt + 0.2 u .* dW` with `A = [-0.1 2.0; -2.0 -0.1]`. Data: the mean and
//! variance of 10,000 paths at 30 equally spaced times (SOSRI, 10 steps between saves).
//!
//! Model: drift `u -> u.^3 -> Dense(2, 50, quick tanh) -> Dense(50, 2)`, diffusion `Dense(2, 2)`
//! (linear), diagonal noise, SOSRI with [`Settings::steps_per_save`] steps between save
//! times. Loss: sum of squared errors of the means plus sum of squared errors of the
//! variances, over `n` sampled paths. Training, as in the tutorial: Adam(0.025) with n = 10
//! for 100 iterations, then Adam(0.01) with n = 100 for 200 iterations (each phase starts
//! Adam afresh; see [`Settings::full`] for what this example runs by default and why).
//! The model ends at the best parameters seen; its final loss is evaluated with n = 1000 on
//! a path not used in training. Gradients in reverse mode on all cores (`--threads N` for
//! N threads; the results do not depend on N).
//!
//! Writes into OUT_DIR (all together, or nothing on failure): `spiral.png` (means,
//! variances, the phase plane and the training loss) and `spiral.weights`.

#[path = "common/mod.rs"]
// The test suite compiles this file as a module beside the other examples and gives them one
// copy of `common` (tests/suite/main.rs): three copies cost the suite 8 % more CPU to build.
#[cfg(not(test))]
pub mod common;
#[cfg(test)]
pub(crate) use crate::common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::fit::{self, History, Method, Phase, Schedule};
use common::plot::{self, Chart, Item, Legend};
use tinysde::nn::{Cube, Dense, Identity, QuickTanh};
use tinysde::sde::NeuralSde;
use tinysde::solve::{Solver, TimeGrid};
use tinysde::train::MomentMatching;

/// The tutorial's drift network (its tanh units `QuickTanh`, new models' default).
pub type Drift = (Cube<2>, Dense<2, 50, QuickTanh>, Dense<50, 2, Identity>);
/// The tutorial's diffusion network (linear).
pub type Diffusion = Dense<2, 2, Identity>;
/// The model.
pub type SpiralModel = NeuralSde<Drift, Diffusion>;

/// Everything that sets the size of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Number of save times in `[0, 1]`.
    pub saves: usize,
    /// Paths of the true system behind the data.
    pub data_trajectories: usize,
    /// Solver steps between save times for the data.
    pub data_steps_per_save: u32,
    /// Solver steps between save times for the model.
    pub steps_per_save: u32,
    /// The training phases.
    pub phases: Vec<Phase>,
    /// Paths for the final loss and the plots.
    pub eval_trajectories: usize,
    /// Seeds: data noise, initial weights, training noise.
    pub seeds: (u64, u64, u64),
    /// Threads for the gradients (0: all cores; the results do not depend on it).
    pub threads: usize,
}

impl Settings {
    /// The tutorial's settings.
    pub fn tutorial() -> Self {
        Self {
            saves: 30,
            data_trajectories: 10_000,
            data_steps_per_save: 10,
            steps_per_save: 1,
            phases: vec![
                Phase {
                    lr: 0.025,
                    trajectories: 10,
                    iterations: 100,
                },
                Phase {
                    lr: 0.01,
                    trajectories: 100,
                    iterations: 200,
                },
            ],
            eval_trajectories: 1000,
            seeds: (11, 3, 5),
            threads: 0,
        }
    }

    /// What `cargo run --release --features examples --example spiral` runs: the tutorial's settings.
    pub fn full() -> Self {
        Self::tutorial()
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Summary {
    /// Save times.
    pub times: Vec<f32>,
    /// Training history.
    pub history: History,
    /// The loss of the initial model with `eval_trajectories` paths.
    pub initial_loss: f32,
    /// The loss of the trained model with `eval_trajectories` paths.
    pub final_loss: f32,
    /// Seconds spent generating the data.
    pub data_seconds: f64,
    /// Files written.
    pub files: Vec<PathBuf>,
}

const EVAL_SEED: u64 = 0x5EED;

/// Generates the data, trains, evaluates, writes the plot and the weights into `out`.
pub fn run(settings: &Settings, out: &Path, progress: bool) -> Result<Summary, String> {
    let t = std::time::Instant::now();
    let common::data::SpiralData { times, mean, var } = common::data::spiral(
        settings.saves,
        settings.data_trajectories,
        settings.data_steps_per_save,
        settings.seeds.0,
    )
    .map_err(|e| format!("data: {e}"))?;
    let data_seconds = t.elapsed().as_secs_f64();
    let intervals = (settings.saves - 1) as u32;
    let grid = TimeGrid::new(0.0, 1.0, intervals * settings.steps_per_save)
        .map_err(|e| format!("time grid: {e}"))?;
    let solver = Solver::new(Method::default(), grid);
    let u0 = common::data::SPIRAL_U0;
    let loss = MomentMatching::new(&mean, &var).map_err(|e| format!("data: {e}"))?;
    let mut model: SpiralModel = fit::new_model(settings.seeds.1).map_err(|e| e.to_string())?;
    let outputs = common::output::Outputs::new(out)?;

    let eval = |m: &SpiralModel| {
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
    let initial_loss = eval(&model)?;
    let schedule = Schedule::Phases(settings.phases.clone());
    let bar = fit::progress_bar(
        schedule.total_iterations(times.len()) as u64,
        "spiral",
        progress,
    );
    let history = fit::train(
        &mut model,
        solver,
        u0,
        &times,
        loss,
        &schedule,
        settings.seeds.2,
        settings.threads,
        &bar,
    )
    .map_err(|e| format!("training: {e}"))?;
    bar.finish();
    let final_loss = eval(&model)?;

    let mut outputs = outputs;
    let png = spiral_plot(&model, solver, &times, &mean, &var, &history, settings)?;
    outputs.add("spiral.png", &png)?;
    let mut blob = vec![0u8; tinysde::weights::encoded_len::<SpiralModel>()];
    tinysde::weights::write(&model, &mut blob).map_err(|e| format!("weights: {e}"))?;
    outputs.add("spiral.weights", &blob)?;
    let files = outputs.commit()?;
    Ok(Summary {
        times,
        history,
        initial_loss,
        final_loss,
        data_seconds,
        files,
    })
}

fn spiral_plot(
    model: &SpiralModel,
    solver: Solver<Method>,
    times: &[f32],
    mean: &[[f32; 2]],
    var: &[[f32; 2]],
    history: &History,
    settings: &Settings,
) -> Result<Vec<u8>, String> {
    let s = fit::sample(
        model,
        solver,
        common::data::SPIRAL_U0,
        settings.eval_trajectories,
        EVAL_SEED,
    )
    .map_err(|e| format!("sampling: {e}"))?;
    let colors = [plot::BLUE, plot::ORANGE];
    let mut mean_items = Vec::new();
    let mut var_items = Vec::new();
    for d in 0..2 {
        let name = ["u1", "u2"][d];
        mean_items.push(Item::line(
            s.times
                .iter()
                .zip(&s.mean)
                .map(|(&t, m)| (t, m[d]))
                .collect(),
            colors[d],
            2,
            &format!("model {name}"),
        ));
        mean_items.push(Item::points(
            times.iter().zip(mean).map(|(&t, m)| (t, m[d])).collect(),
            colors[d],
            4,
            &format!("data {name}"),
        ));
        var_items.push(Item::line(
            s.times
                .iter()
                .zip(&s.var)
                .map(|(&t, v)| (t, v[d]))
                .collect(),
            colors[d],
            2,
            &format!("model {name}"),
        ));
        var_items.push(Item::points(
            times.iter().zip(var).map(|(&t, v)| (t, v[d])).collect(),
            colors[d],
            4,
            &format!("data {name}"),
        ));
    }
    let mut phase_items: Vec<Item> = s
        .paths
        .iter()
        .take(20)
        .map(|p| Item::Line {
            points: p.iter().map(|u| (u[0], u[1])).collect(),
            color: plot::GREY,
            alpha: 0.25,
            width: 1,
            label: None,
        })
        .collect();
    phase_items.push(Item::line(
        s.mean.iter().map(|m| (m[0], m[1])).collect(),
        plot::BLUE,
        2,
        "model mean",
    ));
    phase_items.push(Item::points(
        mean.iter().map(|m| (m[0], m[1])).collect(),
        plot::RED,
        4,
        "data mean",
    ));
    let mut loss_items: Vec<Item> = Vec::new();
    let mut start = 0usize;
    for (k, ph) in settings.phases.iter().enumerate() {
        let end = (start + ph.iterations as usize).min(history.losses.len());
        if k > 0 {
            loss_items.push(Item::VLine {
                x: start as f32,
                color: plot::GREY,
            });
        }
        loss_items.push(Item::line(
            (start..end)
                .map(|i| (i as f32, history.losses[i]))
                .collect(),
            [plot::PURPLE, plot::GREEN, plot::BLUE][k % 3],
            1,
            &format!("Adam({}), n = {}", ph.lr, ph.trajectories),
        ));
        start = end;
    }
    let n = settings.eval_trajectories;
    let charts = [
        Chart {
            title: format!("Means: data (10,000 paths) vs model ({n} paths)"),
            x_label: "t".into(),
            y_label: "mean".into(),
            log_y: false,
            legend: Legend::Auto,
            items: mean_items,
        },
        Chart {
            title: "Variances".into(),
            x_label: "t".into(),
            y_label: "variance".into(),
            log_y: false,
            legend: Legend::Auto,
            items: var_items,
        },
        Chart {
            title: "Phase plane: model paths and means".into(),
            x_label: "u1".into(),
            y_label: "u2".into(),
            log_y: false,
            legend: Legend::Auto,
            items: phase_items,
        },
        Chart {
            title: "Training loss (moments of n paths)".into(),
            x_label: "iteration".into(),
            y_label: "loss".into(),
            log_y: true,
            legend: Legend::Auto,
            items: loss_items,
        },
    ];
    plot::render_png(&charts, 2, (1100, 820))
}

/// The DiffEqFlux neural SDE tutorial: learn a stochastic spiral from the mean and variance
/// of simulated paths.
#[derive(clap::Parser, Debug)]
#[command(name = "spiral", version)]
#[command(
    after_help = "Writes spiral.png and spiral.weights into the output directory \
(all together, or nothing on failure). Exit codes: 0 success; 1 failed run; 2 bad command line."
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
    let out = cli.output.dir("spiral");
    let settings = Settings {
        threads: cli.threads,
        ..Settings::full()
    };
    let start = std::time::Instant::now();
    match run(&settings, &out, cli.output.progress()) {
        Ok(s) => {
            println!(
                "data: {} paths of the true SDE at {} times in {:.2} s",
                settings.data_trajectories, settings.saves, s.data_seconds
            );
            for (k, ph) in settings.phases.iter().enumerate() {
                println!(
                    "phase {}: Adam({}), n = {}, {} iterations",
                    k + 1,
                    ph.lr,
                    ph.trajectories,
                    ph.iterations
                );
            }
            println!(
                "training: {} iterations in {:.1} s, {} solver steps per save interval",
                s.history.losses.len(),
                s.history.seconds,
                settings.steps_per_save
            );
            println!(
                "loss with n = {} (fixed evaluation path): initial {:.4}, final {:.4}",
                settings.eval_trajectories, s.initial_loss, s.final_loss
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
