//! An ensemble solve of the seed model, timed, for the side-by-side with diffrax
//! (benches/peers/ensemble_diffrax.py, paired in benches/peers/run.sh).
//!
//! Model: drift `u -> u^3 -> Dense(1, 20, FastTanh) -> Dense(20, 1)`, diffusion
//! `u -> Dense(1, 20, FastSigmoid) -> Dense(20, 1)` (the seed task's, `examples/fit_exp.rs`),
//! Glorot-uniform weights (seed 1), `u0 = e^-3 + 1`, `steps` steps on [-3, 3], M trajectories
//! (noise seed 3), mean and sample variance saved at t = -3, -2, ..., 3. One thread.
//!
//! Timing: warm-up calls for at least 0.2 s, then 21 samples, each timing enough solves to
//! last at least 20 ms; prints the median of the samples, in seconds per solve: wall-clock
//! (`seconds`) and, on 64-bit Linux, this thread's time on the CPU (`cpu_seconds`,
//! `CLOCK_THREAD_CPUTIME_ID`), which leaves out the time other processes held the core.
//!
//! Run: `cargo bench --features benches --bench ensemble -- [em|sosri] [M] [steps] [lanes] [calls]` (defaults
//! em, 100, 600, 1, 0). With `TINYSDE_BENCH_ACTIVATIONS=quick` in the environment the model's
//! activations are `QuickTanh` and `QuickSigmoid` instead (the line then says
//! `activations=quick`). Lanes: 1 runs `Solver::ensemble` (one trajectory at a time), 4, 8 or
//! 16 runs `Solver::ensemble_lanes` with that many trajectories per pass.
//!
//! With `calls` > 0 nothing is timed: the solve runs exactly `calls` times and the line says
//! `calls=<calls>` instead of the timings. That is the form for counting instructions, e.g.
//! `valgrind --tool=callgrind target/release/deps/ensemble-<hash> em 100 600 8 5`: the
//! instructions per trajectory-step are the total divided by `calls * M * steps` (the
//! set-up outside the calls is a few thousand instructions).
//! Prints one line: `tinysde ensemble method=<em|sosri> M=<M> steps=<steps> lanes=<L>
//! seconds=<median> cpu_seconds=<median> min_seconds=<fastest sample>
//! ns_per_trajectory_step=<from seconds> samples=21 solves_per_sample=<k> mean_at_t1=<...>`.

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu_seconds;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tinysde::nn::{
    Cube, Dense, FastSigmoid, FastTanh, Identity, Init, InitScheme, QuickSigmoid, QuickTanh,
};
use tinysde::noise::{rng_from_seed, Brownian};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{
    self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, LaneIntegrator, Method, Solver, Sosri,
    TimeGrid,
};

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<Drift, Diffusion>;
/// The seed model with the quick activations.
type QuickModel = NeuralSde<
    (Cube<1>, Dense<1, 20, QuickTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, QuickSigmoid>, Dense<20, 1, Identity>),
>;

const TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
const SAMPLES: usize = 21;
const MIN_SAMPLE: Duration = Duration::from_millis(20);
const WARM_UP: Duration = Duration::from_millis(200);
/// Trajectories per pass when the command line does not say: 1 is `Solver::ensemble`.
const DEFAULT_LANES: usize = 1;

/// The timed call: the seed model's ensemble of `trajectories` paths, mean and variance at
/// `TIMES`, one trajectory at a time (`Solver::ensemble`, `L = 1`) or `L` trajectories per
/// pass as SIMD lanes (`Solver::ensemble_lanes`). Kept to this one function so that
/// switching the benchmark to another ensemble entry point is a one-line change.
#[allow(clippy::too_many_arguments)]
fn run_ensemble<const L: usize, Mt, S>(
    solver: &Solver<Mt>,
    model: &S,
    noise: &Brownian,
    u0: &[f32; 1],
    trajectories: usize,
    mean: &mut [[f32; 1]; 7],
    var: &mut [[f32; 1]; 7],
) -> Result<(), tinysde::Error>
where
    S: Sde<f32, 1>,
    Mt: Method,
    Solver<Mt>: LaneIntegrator<L, f32, S, Brownian, 1, Stats = ()>,
{
    if L == 1 {
        solve::simulate_into(
            &solver,
            model,
            noise,
            &EnsembleRequest::new(*u0, trajectories, &TIMES),
            EnsembleBuffers::new(mean, var),
        )
    } else {
        solve::simulate_into(
            &solver,
            model,
            noise,
            &EnsembleRequest::new(*u0, trajectories, &TIMES).in_lanes::<L>(),
            EnsembleBuffers::new(mean, var),
        )
    }
}

fn measure<const L: usize, Mt>(
    method: Mt,
    name: &str,
    trajectories: usize,
    steps: u32,
    calls: usize,
) -> Result<(), String>
where
    Mt: Method,
    Solver<Mt>: LaneIntegrator<L, f32, SeedModel, Brownian, 1, Stats = ()>,
    Solver<Mt>: LaneIntegrator<L, f32, QuickModel, Brownian, 1, Stats = ()>,
{
    if std::env::var("TINYSDE_BENCH_ACTIVATIONS").is_ok_and(|v| v == "quick") {
        measure_model::<L, Mt, QuickModel>(
            method,
            name,
            trajectories,
            steps,
            calls,
            " activations=quick",
        )
    } else {
        measure_model::<L, Mt, SeedModel>(method, name, trajectories, steps, calls, "")
    }
}

fn measure_model<const L: usize, Mt, S>(
    method: Mt,
    name: &str,
    trajectories: usize,
    steps: u32,
    calls: usize,
    label: &str,
) -> Result<(), String>
where
    S: Sde<f32, 1> + Init + Default,
    Mt: Method,
    Solver<Mt>: LaneIntegrator<L, f32, S, Brownian, 1, Stats = ()>,
{
    let mut model = S::default();
    tinysde::nn::init(&mut model, &mut rng_from_seed(1), InitScheme::GlorotUniform)
        .map_err(|e| format!("init: {e}"))?;
    let grid = TimeGrid::new(-3.0, 3.0, steps).map_err(|e| format!("time grid: {e}"))?;
    let solver = Solver::new(method, grid);
    let noise = Brownian::new(3);
    let u0 = [tinysde::math::exp(-3.0) + 1.0];
    let (mut mean, mut var) = ([[0.0f32; 1]; 7], [[0.0f32; 1]; 7]);
    let mut solve = || -> Result<(), String> {
        run_ensemble::<L, _, _>(
            &solver,
            black_box(&model),
            &noise,
            black_box(&u0),
            trajectories,
            &mut mean,
            &mut var,
        )
        .map_err(|e| format!("ensemble: {e}"))?;
        black_box((&mean, &var));
        Ok(())
    };

    if calls > 0 {
        for _ in 0..calls {
            solve()?;
        }
        println!(
            "tinysde ensemble method={name} M={trajectories} steps={steps} lanes={L}{label} \
             calls={calls} mean_at_t1={:.4}",
            mean[6][0]
        );
        return Ok(());
    }

    // Warm up (caches, branch predictors, clock) and size the samples.
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < WARM_UP || calls < 3 {
        solve()?;
        calls += 1;
    }
    let per_call = start.elapsed() / calls;
    let per_sample = (MIN_SAMPLE.as_nanos() / per_call.as_nanos().max(1)).max(1) as u32 + 1;

    let (mut wall, mut cpu) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        let (start, start_cpu) = (Instant::now(), thread_cpu_seconds());
        for _ in 0..per_sample {
            solve()?;
        }
        wall.push(start.elapsed().as_secs_f64() / f64::from(per_sample));
        if let (Some(a), Some(b)) = (start_cpu, thread_cpu_seconds()) {
            cpu.push((b - a) / f64::from(per_sample));
        }
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let seconds = wall[SAMPLES / 2];
    let cpu_seconds = cpu
        .get(cpu.len() / 2)
        .map_or("n/a".to_string(), |s| format!("{s:.9}"));
    let ns_per_step = seconds * 1e9 / (trajectories as f64 * f64::from(steps));
    println!(
        "tinysde ensemble method={name} M={trajectories} steps={steps} lanes={L}{label} seconds={seconds:.9} \
         cpu_seconds={cpu_seconds} min_seconds={:.9} ns_per_trajectory_step={ns_per_step:.1} \
         samples={SAMPLES} solves_per_sample={per_sample} mean_at_t1={:.4}",
        wall[0], mean[6][0]
    );
    Ok(())
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and filters may follow); the positional arguments are
    // the method, M, the step count, the lanes and the untimed call count.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let method = args.first().map_or("em", String::as_str);
    let parse = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|_| format!("not a count: {s:?}"))
        })
    };
    let result = (|| {
        let m = parse(1, 100)?;
        let steps = u32::try_from(parse(2, 600)?).map_err(|_| "too many steps".to_string())?;
        let calls = parse(4, 0)?;
        match (method, parse(3, DEFAULT_LANES)?) {
            ("em", 1) => measure::<1, _>(EulerMaruyama, "em", m, steps, calls),
            ("em", 4) => measure::<4, _>(EulerMaruyama, "em", m, steps, calls),
            ("em", 8) => measure::<8, _>(EulerMaruyama, "em", m, steps, calls),
            ("em", 16) => measure::<16, _>(EulerMaruyama, "em", m, steps, calls),
            ("sosri", 1) => measure::<1, _>(Sosri, "sosri", m, steps, calls),
            ("sosri", 4) => measure::<4, _>(Sosri, "sosri", m, steps, calls),
            ("sosri", 8) => measure::<8, _>(Sosri, "sosri", m, steps, calls),
            ("sosri", 16) => measure::<16, _>(Sosri, "sosri", m, steps, calls),
            (other, lanes) => Err(format!(
                "unknown method {other:?} (em or sosri) or lanes {lanes} (1, 4, 8 or 16)"
            )),
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ensemble bench: {e}");
            ExitCode::FAILURE
        }
    }
}
