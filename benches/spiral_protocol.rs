//! The DiffEqFlux neural SDE tutorial's training protocol ("spiral"), timed once: data from
//! 10,000 paths of the true system, the tutorial's model (258 parameters), SOSRI (the
//! tutorial's method; `em`: Euler–Maruyama, as benches/peers/spiral_diffrax.py) with one
//! step per save interval (29 steps on [0, 1]), Adam(0.025) with n = 10 for 100
//! iterations, then Adam(0.01) with n = 100 for 200, fresh noise per iteration; the final
//! loss of the best parameters with n = 1000 on held-out noise.
//!
//! Run: `cargo bench --features benches --bench spiral_protocol -- [reverse|forward] [sosri|em]` (default
//! reverse, sosri). Prints one line: `tinysde spiral mode=<mode> method=<method>
//! seconds=<training wall time> cpu_seconds=<its time on the CPU, 64-bit Linux>
//! final_loss=<n = 1000> initial_loss=<n = 1000>`. Training is
//! single-threaded (in reverse mode its trajectories run 8 per pass, on lanes).

/// The examples' method, which the shared data generator uses (as `super::fit::Method`).
mod fit {
    pub type Method = tinysde::solve::Sosri;
}
#[path = "common/cpu_time.rs"]
mod cpu_time;
#[path = "../examples/common/data.rs"]
#[allow(dead_code)]
mod data;

use std::ops::ControlFlow;
use std::time::Instant;

use tinysde::grad::reverse::REVERSE_LANES;
use tinysde::grad::{loss_value, reverse, Forward, Problem, Reverse, Scratch, Threads};
use tinysde::nn::{Cube, Dense, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{Checkpoints, EulerMaruyama, Method, Solver, Sosri, Step, StepVjp, TimeGrid};
use tinysde::train::EnsembleFit;
use tinysde::train::{
    Adam, AdamConfig, MomentMatching, NoiseMode, Optimizer, TrainConfig, Trainer, Workspace,
};
use tinysde::F32x;
use tinysde::{Dual, Real};

/// The tutorial's model with tanh as [`FastTanh`] (Eigen's rational tanh, within 5e-7 of
/// tanh): libm's `tanhf` is a scalar routine and would take half the time.
type SpiralModel =
    NeuralSde<(Cube<2>, Dense<2, 50, FastTanh>, Dense<50, 2, Identity>), Dense<2, 2, Identity>>;
const P: usize = SpiralModel::PARAMS;
/// Forward mode: 258 parameters in 2 passes of 129 lanes (as the example).
const LANES: usize = 129;
const PHASES: [(f32, usize, u32); 2] = [(0.025, 10, 100), (0.01, 100, 200)];

fn main() -> Result<(), tinysde::Error> {
    if std::env::args().any(|a| a == "em") {
        protocol(EulerMaruyama, "em")
    } else {
        protocol(Sosri, "sosri")
    }
}

fn protocol<M>(method: M, name: &str) -> Result<(), tinysde::Error>
where
    M: Method
        + Copy
        + Step<f32, SpiralModel, 2>
        + Step<Dual<LANES>, SpiralModel, 2>
        + StepVjp<SpiralModel, 2>
        + StepVjp<SpiralModel, 2, F32x<REVERSE_LANES>>
        + Sync,
{
    let reverse_mode = !std::env::args().any(|a| a == "forward");
    let data = data::spiral(30, 10_000, 10, 11)?;
    let loss = MomentMatching::new(&data.mean, &data.var)?;
    let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 29)?);
    let u0 = data::SPIRAL_U0;
    let mut model = SpiralModel::default();
    model.init(
        &mut tinysde::noise::rng_from_seed(3),
        InitScheme::GlorotUniform,
    )?;
    let eval = |m: &SpiralModel| -> Result<f32, tinysde::Error> {
        let problem = Problem::new(solver, u0, 1000, &data.times)?;
        let mut stats = vec![[0.0f32; 2]; problem.stats_len()];
        loss_value(&problem, m, &Brownian::new(0x5EED), &loss, &mut stats)
    };
    let initial = eval(&model)?;

    let problem = Problem::new(solver, u0, PHASES[0].1, &data.times)?;
    let biggest = problem.with_trajectories(100)?;
    let mut tape = vec![[0.0f32; 2]; reverse::tape_len_keep_all(&biggest, Checkpoints::All)];
    let adam = Adam::new(AdamConfig::lr(PHASES[0].0), vec![0.0; P], vec![0.0; P])?;
    let (mut params, mut grad, mut best) = (vec![0.0; P], vec![0.0; P], vec![0.0; P]);
    let mut stats = vec![[Dual::<LANES>::ZERO; 2]; problem.stats_len()];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let config = TrainConfig {
        noise: NoiseMode::Fresh { seed: 5 },
        clip_norm: None,
    };
    let (start, start_cpu) = (Instant::now(), cpu_time::thread_cpu_seconds());
    let trainer = Trainer::new(
        &mut model,
        adam,
        EnsembleFit::new(problem, &loss)?,
        config,
        ws,
    )?;
    // The protocol's phases, in either gradient mode.
    macro_rules! phases {
        ($trainer:expr) => {{
            let mut trainer = $trainer;
            for (lr, n, iterations) in PHASES {
                trainer.optimizer_mut().reset();
                trainer.optimizer_mut().set_lr(lr)?;
                trainer.fit_mut().set_trajectories(n)?;
                trainer.run(iterations, |_| ControlFlow::Continue(()))?;
            }
            trainer.restore_best();
        }};
    }
    if reverse_mode {
        // One thread: the reverse mode then runs its trajectories 8 per pass, on lanes.
        phases!(trainer.with_mode(Threads(Reverse(Checkpoints::All), 1))?);
    } else {
        phases!(trainer.with_mode(Forward)?);
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = match (start_cpu, cpu_time::thread_cpu_seconds()) {
        (Some(a), Some(b)) => format!(" cpu_seconds={:.3}", b - a),
        _ => String::new(),
    };
    let last = eval(&model)?;
    println!(
        "tinysde spiral mode={} method={name} seconds={seconds:.3}{cpu} final_loss={last:.4} \
         initial_loss={initial:.4}",
        if reverse_mode { "reverse" } else { "forward" }
    );
    Ok(())
}
