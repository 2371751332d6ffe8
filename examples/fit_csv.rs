//! Fit a neural SDE to your own time series from a CSV file, and forecast it.
//!
//! ```text
//! cargo run --release --example fit_csv -- --help
//! cargo run --release --example fit_csv -- examples/data/nile.csv --out target/nile
//! cargo run --release --example fit_csv -- examples/data/co2.csv --horizon 104
//! ```
//!
//! **Input.** A CSV file: a time column, then one or two value columns (the format is in
//! `docs/csv-format.md`: optional header, `#` comments, times as numbers, ISO-8601 dates or
//! date-times, strictly increasing; an empty cell or `NA` is a missing value). With one value
//! column a one-dimensional model is fitted, with two a two-dimensional one.
//!
//! **Scaling.** Times are read as `f64` and mapped to the model's `f32` time by
//! `tau = (t - t0) / unit`, where `unit` is the whole span for up to 100 intervals and 100
//! median intervals for longer series (so `f32` keeps the spacing exact to about one part in
//! 10^5 however long the series is). Each value column is standardized by the mean and
//! standard deviation of its observed values. The scaling is written to `fit_csv.json` next
//! to the weights (documented in `docs/weights-format.md`).
//!
//! **Outputs** (in `--out DIR`, default `target/fit_csv`; all files appear together, or none
//! if anything fails): `fit_csv.weights`, `fit_csv.json`, `fit_csv_fit.png` (data, model
//! mean and 5-95 % band), `fit_csv_loss.png`, and `forecast.csv` with columns
//! `time,mean,q05,q50,q95`: one row per data time in the file's own time format, then
//! `--horizon` rows spaced by the median interval.
//!
//! Exit codes: 0 success, 1 a problem with the data or the run (one-line message on stderr,
//! nothing written), 2 a problem with the command line.

#[path = "common/mod.rs"]
pub mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use common::csv::{self as table_csv, Table, TimeFormat};
use common::fit::{self, History, Method, Model, Schedule};
use common::plot::{self, Chart, Item, Legend};
use tinysde::solve::Solver;
use tinysde::train::{GrowingWindow, MeanSquaredError};

/// Fit a neural SDE to a time series in a CSV file; write the weights, plots and a forecast.
///
/// The CSV has a time column (numbers, ISO-8601 dates or date-times) and one or two value
/// columns; empty cells and NA are missing values. See docs/csv-format.md.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(name = "fit_csv", version)]
#[command(
    after_help = "Example:\n  cargo run --release --example fit_csv -- examples/data/nile.csv --out target/nile\n\n\
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
    #[arg(short, long, value_name = "N", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
    /// Sampled paths per training iteration.
    #[arg(short, long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub trajectories: u32,
    /// Sampled paths for the band, the forecast and the scores.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(20..=100_000))]
    pub eval_trajectories: u32,
    /// The training loss.
    #[arg(short, long, value_enum, default_value_t = LossKind::Mse)]
    pub loss: LossKind,
    /// Forecast this many median intervals past the last time.
    #[arg(long, value_name = "STEPS", default_value_t = 0)]
    pub horizon: u32,
    /// Adam's learning rate.
    #[arg(long, value_name = "RATE", default_value_t = 0.01)]
    pub lr: f32,
    /// Seed of the initial weights and the training noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The CSV field separator (one character, e.g. ';' or '\t' written as a real tab).
    #[arg(short, long, value_name = "CHAR", default_value_t = ',')]
    pub delimiter: char,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The training loss.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Mean squared error between the data and the mean of the sampled paths (the seed
    /// article's loss; it fits the mean, not the scatter).
    Mse,
}

/// How a run is sized.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Training iterations in all (exactly this many run).
    pub iterations: u32,
    /// Adam's learning rate.
    pub lr: f32,
    /// Paths per loss evaluation.
    pub trajectories: usize,
    /// Paths for the final score, the band and the forecast.
    pub eval_trajectories: usize,
    /// The loss.
    pub loss: LossKind,
    /// Forecast rows past the last time, spaced by the median interval.
    pub horizon: u32,
    /// Largest number of solver steps.
    pub max_steps: u32,
    /// Seeds: initial weights, training noise.
    pub seeds: (u64, u64),
    /// The CSV reader's options.
    pub csv: table_csv::Options,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            iterations: 600,
            lr: 0.01,
            trajectories: 16,
            eval_trajectories: 1000,
            loss: LossKind::Mse,
            horizon: 0,
            max_steps: 4000,
            seeds: (1, 7),
            csv: table_csv::Options::default(),
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
        Ok(Self {
            iterations: cli.iterations,
            lr: cli.lr,
            trajectories: cli.trajectories as usize,
            eval_trajectories: cli.eval_trajectories as usize,
            loss: cli.loss,
            horizon: cli.horizon,
            seeds: (cli.seed, cli.seed.wrapping_add(6)),
            csv: table_csv::Options { delimiter },
            ..Self::default()
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
    /// Solver steps.
    pub steps: u32,
    /// The largest distance (in the file's time unit) a time was moved onto the grid.
    pub max_shift: f64,
    /// Training history.
    pub history: History,
    /// Mean squared error (scaled units) of the mean of `eval_trajectories` paths, for the
    /// initial model.
    pub initial_score: f32,
    /// The same for the trained model.
    pub score: f32,
    /// Per value column: the fraction of observed values (after the first row) inside the
    /// model's 5-95 % band.
    pub coverage: Vec<f64>,
    /// Per value column: the mean CRPS of the ensemble at the observed values (file units).
    pub crps: Vec<f64>,
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
    /// Per value column: name, mean and standard deviation of the observed values.
    pub columns: Vec<(String, f64, f64)>,
}

impl Scaling {
    /// Scaling from the table.
    pub fn of(table: &Table) -> Self {
        let t0 = table.times[0];
        let last = table.times[table.times.len() - 1];
        let gaps = table.times.len() - 1;
        let time_unit = if gaps <= 100 {
            last - t0
        } else {
            100.0 * median_gap(&table.times)
        };
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
        Self {
            time_format: table.time_format,
            t0,
            time_unit,
            columns,
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
    /// Model value of column `c`'s value `x`.
    pub fn z(&self, c: usize, x: f64) -> f32 {
        ((x - self.columns[c].1) / self.columns[c].2) as f32
    }
    /// Column `c`'s value of model value `z`.
    pub fn x(&self, c: usize, z: f32) -> f64 {
        self.columns[c].1 + f64::from(z) * self.columns[c].2
    }

    /// The scaling as the JSON document `fit_csv.json` (see `docs/weights-format.md`).
    pub fn to_json(&self, time_name: &str, extra: &[(&str, String)]) -> String {
        let format = match self.time_format {
            TimeFormat::Number => "number",
            TimeFormat::Date => "date",
            TimeFormat::DateTime => "datetime",
        };
        let mut s = String::from("{\n  \"format\": \"tinysde-scaling\",\n  \"version\": 1,\n");
        let _ = writeln!(s, "  \"time\": {{");
        let _ = writeln!(s, "    \"name\": {},", json_string(time_name));
        let _ = writeln!(s, "    \"format\": \"{format}\",");
        let _ = writeln!(s, "    \"t0\": {},", json_number(self.t0));
        let _ = writeln!(s, "    \"unit\": {}", json_number(self.time_unit));
        let _ = writeln!(s, "  }},");
        let _ = writeln!(s, "  \"values\": [");
        for (i, (name, m, sd)) in self.columns.iter().enumerate() {
            let comma = if i + 1 < self.columns.len() { "," } else { "" };
            let _ = writeln!(
                s,
                "    {{ \"name\": {}, \"mean\": {}, \"std\": {} }}{comma}",
                json_string(name),
                json_number(*m),
                json_number(*sd)
            );
        }
        let _ = write!(s, "  ]");
        for (k, v) in extra {
            let _ = write!(s, ",\n  {}: {v}", json_string(k));
        }
        s.push_str("\n}\n");
        s
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number that reads back as the same `f64`.
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "null".into()
    }
}

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
    match table.value_columns() {
        1 => fit_table::<1, 61>(&file, &table, settings, out, progress),
        2 => fit_table::<2, 68>(&file, &table, settings, out, progress),
        n => Err(format!(
            "{file}: has {n} value columns; fit_csv fits 1 or 2 (a one- or two-dimensional model): keep only the time column and the columns to fit"
        )),
    }
}

/// The growing-window schedule for `rows` points and exactly `iterations` iterations:
/// up to six stages (two points, then about a fifth of the rest per stage).
fn schedule(rows: usize, iterations: u32, lr: f32, trajectories: usize) -> Schedule {
    let add = rows.saturating_sub(2).div_ceil(5).max(1);
    let stages = (1 + rows.saturating_sub(2).div_ceil(add)).min(iterations as usize);
    let add = rows
        .saturating_sub(2)
        .div_ceil(stages.saturating_sub(1).max(1))
        .max(1);
    let window = GrowingWindow {
        start: if stages == 1 { rows.max(2) } else { 2 },
        add,
        iters_per_stage: iterations.div_ceil(stages.max(1) as u32),
    };
    Schedule::Growing {
        window,
        lr,
        trajectories,
        limit: Some(iterations),
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
    let rows = table.times.len();
    let gap = median_gap(&table.times);
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
        .map(|r| core::array::from_fn(|c| r[c].map_or(0.0, |x| scaling.z(c, x))))
        .collect();
    if let Some((i, c)) = data
        .iter()
        .enumerate()
        .find_map(|(i, z)| z.iter().position(|v| !v.is_finite()).map(|c| (i, c)))
    {
        return Err(format!(
            "{file}:{}: column {}: the value is too far from the others to standardize in f32",
            table.lines[i],
            c + 2
        ));
    }
    let mask: Vec<[bool; D]> = table
        .rows
        .iter()
        .map(|r| core::array::from_fn(|c| r[c].is_some()))
        .collect();
    let min_steps = (2 * (taus.len() as u32 - 1))
        .max(20)
        .min(settings.max_steps);
    let (grid, save_all, shift_tau) = fit::grid_through(&taus, min_steps, settings.max_steps)
        .map_err(|e| {
            format!(
                "{file}: cannot put the {} times on a solver grid of at most {} steps ({e}); the series is too long or too unevenly spaced for this version",
                taus.len(),
                settings.max_steps
            )
        })?;
    let save_times = &save_all[..rows];
    let max_shift = f64::from(shift_tau) * scaling.time_unit;
    let solver = Solver::new(Method::default(), grid);
    // Start at the first observed value of each column (its mean where it is missing).
    let u0: [f32; D] = data[0];
    let loss = MeanSquaredError::masked(&data, &mask).map_err(|e| format!("{file}: {e}"))?;
    let schedule = schedule(
        rows,
        settings.iterations,
        settings.lr,
        settings.trajectories,
    );
    let mut model: Model<D> = fit::new_model(settings.seeds.0).map_err(|e| e.to_string())?;
    let outputs = common::output::Outputs::new(out)?;
    let initial_score = fit::evaluate(
        &model,
        solver,
        u0,
        save_times,
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
        save_times,
        loss,
        &schedule,
        settings.seeds.1,
        &bar,
    )
    .map_err(|e| format!("{file}: training failed: {e}"))?;
    bar.finish_and_clear();
    let score = fit::evaluate(
        &model,
        solver,
        u0,
        save_times,
        &loss,
        settings.eval_trajectories,
        0xC5F,
    )
    .map_err(|e| format!("{file}: evaluation failed: {e}"))?;
    let dense = grid.steps() as usize <= 4000;
    let plot_times: Vec<f32> = if dense {
        (0..=grid.steps()).map(|k| grid.time(k)).collect()
    } else {
        save_all.clone()
    };
    let samples = fit::sample_at(
        &model,
        solver,
        u0,
        &plot_times,
        settings.eval_trajectories,
        0xC5F,
    )
    .map_err(|e| format!("{file}: sampling failed: {e}"))?;
    // The sample index of every data and forecast time.
    let at: Vec<usize> = save_all
        .iter()
        .map(|&t| {
            if dense {
                grid.index_of(t).unwrap_or(0) as usize
            } else {
                plot_times.iter().position(|&p| p == t).unwrap_or(0)
            }
        })
        .collect();
    let bands: Vec<Band> = (0..D)
        .map(|c| Band::of(&samples, c, &scaling, &at))
        .collect();
    let (mut coverage, mut crps) = (Vec::new(), Vec::new());
    for (c, band) in bands.iter().enumerate() {
        // The first row is the initial condition, not a prediction: it is not scored.
        let observed: Vec<(usize, f64)> = table
            .rows
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(i, r)| r[c].map(|x| (i, x)))
            .collect();
        let inside = observed
            .iter()
            .filter(|&&(i, x)| band.q05[i] <= x && x <= band.q95[i])
            .count();
        coverage.push(inside as f64 / observed.len().max(1) as f64);
        let total: f64 = observed
            .iter()
            .map(|&(i, x)| {
                let mut ens: Vec<f64> = samples
                    .paths
                    .iter()
                    .map(|p| scaling.x(c, p[at[i]][c]))
                    .collect();
                common::metrics::crps_ensemble(&mut ens, x)
            })
            .sum();
        crps.push(total / observed.len().max(1) as f64);
    }

    let mut outputs = outputs;
    outputs.add(
        "fit_csv_fit.png",
        &fit_plot(table, &scaling, &samples, settings.horizon)?,
    )?;
    outputs.add("fit_csv_loss.png", &loss_plot(&history, settings)?)?;
    let mut blob = vec![0u8; tinysde::weights::encoded_len::<Model<D>>()];
    tinysde::weights::write(&model, &mut blob).map_err(|e| format!("weights: {e}"))?;
    outputs.add("fit_csv.weights", &blob)?;
    outputs.add(
        "forecast.csv",
        forecast_csv(table, &all_times, &bands).as_bytes(),
    )?;
    let extra = [
        (
            "model",
            json_string(&format!("fit_csv.weights: {}", description::<Model<D>>())),
        ),
        (
            "u0",
            format!(
                "[{}]",
                u0.iter()
                    .map(|&v| json_number(f64::from(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "solver",
            json_string(&format!(
                "SOSRI, {} steps from tau = 0 to {}",
                grid.steps(),
                grid.t1()
            )),
        ),
        ("rows", rows.to_string()),
        ("missing", table.missing().to_string()),
        ("iterations", history.losses.len().to_string()),
        (
            "coverage_90",
            format!(
                "[{}]",
                coverage
                    .iter()
                    .map(|&c| json_number(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "crps",
            format!(
                "[{}]",
                crps.iter()
                    .map(|&c| json_number(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    ];
    outputs.add(
        "fit_csv.json",
        scaling.to_json(&table.names[0], &extra).as_bytes(),
    )?;
    let files = outputs.commit()?;
    Ok(Summary {
        dims: D,
        rows,
        missing: table.missing(),
        steps: grid.steps(),
        max_shift,
        history,
        initial_score,
        score,
        coverage,
        crps,
        files,
    })
}

/// One column's ensemble mean and quantiles at the data and forecast times, in file units.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Mean.
    pub mean: Vec<f64>,
    /// 5 % quantile.
    pub q05: Vec<f64>,
    /// Median.
    pub q50: Vec<f64>,
    /// 95 % quantile.
    pub q95: Vec<f64>,
}

impl Band {
    fn of<const D: usize>(s: &fit::Samples<D>, c: usize, scaling: &Scaling, at: &[usize]) -> Self {
        let mut band = Band {
            mean: Vec::new(),
            q05: Vec::new(),
            q50: Vec::new(),
            q95: Vec::new(),
        };
        for &i in at {
            let mut v: Vec<f32> = s.paths.iter().map(|p| p[i][c]).collect();
            v.sort_by(f32::total_cmp);
            let q = |p: f64| scaling.x(c, common::metrics::quantile_sorted(&v, p));
            band.mean.push(scaling.x(c, s.mean[i][c]));
            band.q05.push(q(0.05));
            band.q50.push(q(0.5));
            band.q95.push(q(0.95));
        }
        band
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
                let _ = write!(s, ",{}", significant(v));
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

fn fit_plot<const D: usize>(
    table: &Table,
    scaling: &Scaling,
    s: &fit::Samples<D>,
    horizon: u32,
) -> Result<Vec<u8>, String> {
    let fmt = table.time_format;
    let x_label = match fmt {
        TimeFormat::Number => table.names[0].clone(),
        _ => format!("{} (year)", table.names[0]),
    };
    let last = plot_time(fmt, table.times[table.times.len() - 1]);
    let charts: Vec<Chart> = (0..D)
        .map(|c| {
            let back = |ys: Vec<f32>| -> Vec<(f32, f32)> {
                s.times
                    .iter()
                    .zip(ys)
                    .map(|(&tau, z)| (plot_time(fmt, scaling.time(tau)), scaling.x(c, z) as f32))
                    .collect()
            };
            let mut items = vec![
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
                    2,
                    "model mean",
                ),
                Item::points(
                    table
                        .times
                        .iter()
                        .zip(&table.rows)
                        .filter_map(|(&t, r)| r[c].map(|x| (plot_time(fmt, t), x as f32)))
                        .collect(),
                    plot::RED,
                    if table.times.len() > 400 { 1 } else { 3 },
                    "data",
                ),
            ];
            if horizon > 0 {
                items.push(Item::VLine {
                    x: last,
                    color: plot::GREY,
                });
            }
            Chart {
                title: format!("{} ({} sampled paths)", table.names[c + 1], s.paths.len()),
                x_label: x_label.clone(),
                y_label: table.names[c + 1].clone(),
                log_y: false,
                legend: Legend::Auto,
                items,
            }
        })
        .collect();
    plot::render_png(&charts, D, (800 * D as u32, 480))
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
                "{}: {} rows ({} missing values), {} value column(s), {} solver steps{}",
                cli.csv.display(),
                s.rows,
                s.missing,
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
            for (c, (cov, crps)) in s.coverage.iter().zip(&s.crps).enumerate() {
                println!(
                    "column {}: {:.1} % of the observations inside the 5-95 % band; mean CRPS {:.4}",
                    c + 2,
                    100.0 * cov,
                    crps
                );
            }
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
