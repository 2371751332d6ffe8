//! Fit a neural SDE to your own time series from a CSV file.
//!
//! ```text
//! cargo run --release --example fit_csv -- DATA.csv [OUT_DIR] [--iterations N]
//! cargo run --release --example fit_csv -- examples/data/seed.csv          # try it
//! cargo run --release --example fit_csv -- examples/data/spiral2d.csv      # two columns
//! ```
//!
//! **Input.** A comma-separated file: the first column is time, the others are values (see
//! `common/csv.rs` for the exact rules: optional header row, `#` comments, every cell a
//! finite number, times strictly increasing, at least two rows). With **one** value column a
//! one-dimensional model is fitted, with **two** a two-dimensional one (the columns are the
//! state's components and are fitted jointly); more columns are refused (cut the file to
//! the columns you want). Any problem stops the program with a one-line message naming the
//! file and line, a non-zero exit code and no output files.
//!
//! **Scaling.** Time is mapped linearly onto `[0, 1]` (`tau = (t - t0) / (t_last - t0)`)
//! and every value column is standardized (`z = (x - mean) / std`), so the same settings
//! work whatever the units. Plots are drawn in the original units; the weights are those of
//! the scaled model, and `fit_csv.txt` records the scaling needed to use them.
//!
//! **Unequal spacing.** The solver uses a fixed step. The step count is the smallest number
//! of at least `2 x (rows - 1)` (and at least 20) steps whose grid passes through every
//! time (within 1/1000 of a step), so the data times are exactly solver save points. If no
//! grid of at most 1000 steps does, the 1000-step grid is used and each time is moved to
//! the nearest grid point; the largest move is printed and recorded in `fit_csv.txt`. Times
//! closer together than 1/1000 of the span are refused. The run time grows with the number
//! of steps (about 0.25 s per 100 iterations and 10 steps for one value column, 0.6 s for two,
//! on one core of a 2-core laptop), so long or irregular series take minutes.
//!
//! **Model and training.** The seed task's model on a D-dimensional state (drift `u ->
//! u^3 -> Dense(D, 20, fast tanh) -> Dense(20, D)`, diffusion `u -> Dense(D, 20, fast
//! sigmoid) -> Dense(20, D)`), SOSRI, `u0` = the first row, mean squared error of the mean
//! of 16 paths, Adam(0.01), the growing-window schedule (2 points, then about a fifth of the
//! rest per stage), `--iterations` in all (default 600).
//!
//! **Output** (in OUT_DIR, default `target/fit_csv`): `fit_csv_fit.png`, `fit_csv_loss.png`,
//! `fit_csv.weights`, `fit_csv.txt`.

#[path = "common/mod.rs"]
pub mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::csv::Table;
use common::fit::{self, History, Method, Model, Schedule};
use common::plot::{self, Chart, Item, Legend};
use tinysde::solve::Solver;
use tinysde::train::{GrowingWindow, MeanSquaredError};

/// How a run is sized.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Training iterations in all.
    pub iterations: u32,
    /// Adam's learning rate.
    pub lr: f32,
    /// Paths per loss evaluation.
    pub trajectories: usize,
    /// Paths for the final score and the plots.
    pub eval_trajectories: usize,
    /// Largest number of solver steps.
    pub max_steps: u32,
    /// Seeds: initial weights, training noise.
    pub seeds: (u64, u64),
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            iterations: 600,
            lr: 0.01,
            trajectories: 16,
            eval_trajectories: 1000,
            max_steps: 1000,
            seeds: (1, 7),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Summary {
    /// Value columns fitted.
    pub dims: usize,
    /// Rows.
    pub rows: usize,
    /// Solver steps.
    pub steps: u32,
    /// The largest distance (in the file's time unit) a time was moved onto the grid.
    pub max_shift: f32,
    /// Training history.
    pub history: History,
    /// Mean squared error (scaled units) of the mean of `eval_trajectories` paths, for the
    /// initial model.
    pub initial_score: f32,
    /// The same for the trained model.
    pub score: f32,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// The affine maps between the file's units and the model's.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    /// First time.
    pub t0: f32,
    /// Last time minus first time.
    pub span: f32,
    /// Per value column: mean and standard deviation.
    pub columns: Vec<(f32, f32)>,
}

impl Scaling {
    /// Scaling from the table.
    pub fn of(table: &Table) -> Self {
        let t0 = table.times[0];
        let span = table.times[table.times.len() - 1] - t0;
        let n = table.rows.len() as f64;
        let columns = (0..table.value_columns())
            .map(|c| {
                let m = table.rows.iter().map(|r| r[c] as f64).sum::<f64>() / n;
                let v = table
                    .rows
                    .iter()
                    .map(|r| (r[c] as f64 - m).powi(2))
                    .sum::<f64>()
                    / n;
                let s = v.sqrt();
                (
                    m as f32,
                    if s > 0.0 && s.is_finite() {
                        s as f32
                    } else {
                        1.0
                    },
                )
            })
            .collect();
        Self { t0, span, columns }
    }
    fn tau(&self, t: f32) -> f32 {
        (t - self.t0) / self.span
    }
    fn time(&self, tau: f32) -> f32 {
        self.t0 + tau * self.span
    }
    fn z(&self, c: usize, x: f32) -> f32 {
        (x - self.columns[c].0) / self.columns[c].1
    }
    fn x(&self, c: usize, z: f32) -> f32 {
        self.columns[c].0 + z * self.columns[c].1
    }
}

/// Reads `csv`, fits, and writes the outputs into `out`.
pub fn run(csv: &Path, settings: &Settings, out: &Path, progress: bool) -> Result<Summary, String> {
    let table = common::csv::read(csv)?;
    let file = csv.display().to_string();
    match table.value_columns() {
        1 => fit_table::<1, 61>(&file, &table, settings, out, progress),
        2 => fit_table::<2, 68>(&file, &table, settings, out, progress),
        n => Err(format!(
            "{file}: has {n} value columns; fit_csv fits 1 or 2 (a one- or two-dimensional model): keep only the time column and the columns to fit"
        )),
    }
}

fn fit_table<const D: usize, const K: usize>(
    file: &str,
    table: &Table,
    settings: &Settings,
    out: &Path,
    progress: bool,
) -> Result<Summary, String> {
    let scaling = Scaling::of(table);
    let taus: Vec<f32> = table.times.iter().map(|&t| scaling.tau(t)).collect();
    let data: Vec<[f32; D]> = table
        .rows
        .iter()
        .map(|r| core::array::from_fn(|c| scaling.z(c, r[c])))
        .collect();
    let rows = taus.len();
    let min_steps = (2 * (rows as u32 - 1)).max(20).min(settings.max_steps);
    let (grid, save_times, shift_tau) = fit::grid_through(&taus, min_steps, settings.max_steps)
        .map_err(|e| {
            format!(
                "{file}: cannot put the {rows} times on a solver grid of at most {} steps ({e}); use fewer or more evenly spaced rows",
                settings.max_steps
            )
        })?;
    let max_shift = shift_tau * scaling.span;
    let solver = Solver::new(Method::default(), grid);
    let u0 = data[0];
    let loss = MeanSquaredError::new(&data).map_err(|e| format!("{file}: {e}"))?;

    let stages_after_first = 5usize;
    let add = (rows.saturating_sub(2)).div_ceil(stages_after_first).max(1);
    let stages = 1 + rows.saturating_sub(2).div_ceil(add);
    let window = GrowingWindow {
        start: 2,
        add,
        iters_per_stage: (settings.iterations / stages as u32).max(1),
    };
    let schedule = Schedule::Growing {
        window,
        lr: settings.lr,
        trajectories: settings.trajectories,
    };
    let mut model: Model<D> = fit::new_model(settings.seeds.0).map_err(|e| e.to_string())?;
    let outputs = common::output::Outputs::new(out)?;
    let initial_score = fit::evaluate(
        &model,
        solver,
        u0,
        &save_times,
        &loss,
        settings.eval_trajectories,
        0xC5F,
    )
    .map_err(|e| format!("{file}: evaluation failed: {e}"))?;
    let bar = fit::progress_bar(schedule.total_iterations(rows) as u64, "fit_csv", progress);
    let history = fit::train::<K, _, _, D>(
        &mut model,
        solver,
        u0,
        &save_times,
        loss,
        &schedule,
        settings.seeds.1,
        &bar,
    )
    .map_err(|e| format!("{file}: training failed: {e}"))?;
    bar.finish();
    let score = fit::evaluate(
        &model,
        solver,
        u0,
        &save_times,
        &loss,
        settings.eval_trajectories,
        0xC5F,
    )
    .map_err(|e| format!("{file}: evaluation failed: {e}"))?;
    let samples = fit::sample(&model, solver, u0, settings.eval_trajectories, 0xC5F)
        .map_err(|e| format!("{file}: sampling failed: {e}"))?;

    let mut outputs = outputs;
    outputs.add("fit_csv_fit.png", &fit_plot(table, &scaling, &samples)?)?;
    outputs.add("fit_csv_loss.png", &loss_plot(&history, settings)?)?;
    let mut blob = vec![0u8; tinysde::weights::encoded_len::<Model<D>>()];
    tinysde::weights::write(&model, &mut blob).map_err(|e| format!("weights: {e}"))?;
    outputs.add("fit_csv.weights", &blob)?;
    let mut text = String::new();
    let _ = writeln!(text, "source: {file}");
    let _ = writeln!(
        text,
        "rows: {rows}, value columns: {D} ({})",
        table.names[1..].join(", ")
    );
    let _ = writeln!(
        text,
        "model: tinysde::weights file fit_csv.weights, {}",
        description::<Model<D>>()
    );
    let _ = writeln!(
        text,
        "time: tau = ({} - {}) / {}",
        table.names[0], scaling.t0, scaling.span
    );
    for (c, (m, s)) in scaling.columns.iter().enumerate() {
        let _ = writeln!(text, "state[{c}]: z = ({} - {m}) / {s}", table.names[c + 1]);
    }
    let _ = writeln!(text, "u0 (scaled): {u0:?}");
    let _ = writeln!(
        text,
        "solver: SOSRI, {} steps on tau in [0, 1] (h = {})",
        grid.steps(),
        grid.h()
    );
    let _ = writeln!(
        text,
        "largest move of a time onto the grid: {max_shift} (file units)"
    );
    let _ = writeln!(
        text,
        "training: {} iterations, growing window start 2 add {} x {} iterations, Adam({}), {} paths",
        history.losses.len(),
        window.add,
        window.iters_per_stage,
        settings.lr,
        settings.trajectories
    );
    let _ = writeln!(
        text,
        "score (scaled MSE of the mean of {} paths): {score}",
        settings.eval_trajectories
    );
    outputs.add("fit_csv.txt", text.as_bytes())?;
    let files = outputs.commit()?;
    Ok(Summary {
        dims: D,
        rows,
        steps: grid.steps(),
        max_shift,
        history,
        initial_score,
        score,
        files,
    })
}

fn description<M: tinysde::weights::Describe>() -> String {
    let mut v = Vec::new();
    M::describe(&mut |b| v.extend_from_slice(b));
    String::from_utf8_lossy(&v).into_owned()
}

fn fit_plot<const D: usize>(
    table: &Table,
    scaling: &Scaling,
    s: &fit::Samples<D>,
) -> Result<Vec<u8>, String> {
    let charts: Vec<Chart> = (0..D)
        .map(|c| {
            let back = |ys: Vec<f32>| -> Vec<(f32, f32)> {
                s.times
                    .iter()
                    .zip(ys)
                    .map(|(&tau, z)| (scaling.time(tau), scaling.x(c, z)))
                    .collect()
            };
            Chart {
                title: format!("{} ({} sampled paths)", table.names[c + 1], s.paths.len()),
                x_label: table.names[0].clone(),
                y_label: table.names[c + 1].clone(),
                log_y: false,
                legend: Legend::Auto,
                items: vec![
                    Item::Band {
                        lower: back(s.quantile(c, 0.05)),
                        upper: back(s.quantile(c, 0.95)),
                        color: plot::BLUE,
                        alpha: 0.18,
                        label: Some("5-95 % of paths".into()),
                    },
                    Item::line(
                        back(s.mean.iter().map(|m| m[c]).collect()),
                        plot::BLUE,
                        3,
                        "model mean",
                    ),
                    Item::points(
                        table
                            .times
                            .iter()
                            .zip(&table.rows)
                            .map(|(&t, r)| (t, r[c]))
                            .collect(),
                        plot::RED,
                        4,
                        "data",
                    ),
                ],
            }
        })
        .collect();
    plot::render_png(&charts, D, (700 * D as u32, 480))
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
        "loss on the points in use (dashed: one more stage)",
    ));
    let chart = Chart {
        title: format!(
            "Training loss: MSE of the {}-path mean (scaled units)",
            settings.trajectories
        ),
        x_label: "iteration".into(),
        y_label: "loss".into(),
        log_y: true,
        legend: Legend::Auto,
        items,
    };
    plot::render_png(&[chart], 1, (900, 480))
}

/// Parses the command line: `DATA.csv [OUT_DIR] [--iterations N]`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<(PathBuf, PathBuf, Settings), String> {
    let usage = "usage: fit_csv DATA.csv [OUT_DIR] [--iterations N]";
    let mut settings = Settings::default();
    let mut positional = Vec::new();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        if a == "--iterations" {
            let v = args
                .next()
                .ok_or(format!("--iterations needs a number; {usage}"))?;
            settings.iterations = v
                .parse()
                .ok()
                .filter(|&n: &u32| n > 0)
                .ok_or(format!("--iterations: {v:?} is not a positive integer"))?;
        } else if a.starts_with("--") {
            return Err(format!("unknown option {a}; {usage}"));
        } else {
            positional.push(a);
        }
    }
    match positional.len() {
        1 | 2 => {
            let csv = PathBuf::from(&positional[0]);
            let out = common::out_dir(positional.get(1).cloned(), "fit_csv");
            Ok((csv, out, settings))
        }
        0 => Err(format!("no CSV file given; {usage}")),
        _ => Err(format!("too many arguments; {usage}")),
    }
}

fn main() -> ExitCode {
    let (csv, out, settings) = match parse_args(std::env::args().skip(1)) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let start = std::time::Instant::now();
    match run(&csv, &settings, &out, common::show_progress()) {
        Ok(s) => {
            println!(
                "{}: {} rows, {} value column(s), {} solver steps{}",
                csv.display(),
                s.rows,
                s.dims,
                s.steps,
                if s.max_shift > 0.0 {
                    format!(" (times moved onto the grid by up to {})", s.max_shift)
                } else {
                    String::new()
                }
            );
            println!(
                "training: {} iterations in {:.1} s, last loss {:.4}; score {:.4} (initially {:.4}; scaled MSE of the mean of {} paths)",
                s.history.losses.len(),
                s.history.seconds,
                s.history.losses.last().copied().unwrap_or(f32::NAN),
                s.score,
                s.initial_score,
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
