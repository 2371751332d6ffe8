//! Writes the weights the firmware links in: `boards/app/model/seed-quick.tsw`.
//!
//! The seed model (drift `u -> u^3 -> 20 quick-tanh -> 1`, diffusion `u -> 20 quick-sigmoid
//! -> 1`) is initialized from a fixed seed (Glorot uniform), then trained on the host on the
//! seed task's data (`exp(x)` plus uniform noise in `[0, 2)` at `x = -3, ..., 3`) with
//! Euler–Maruyama, 16 trajectories, the mean squared error of the ensemble mean and Adam.
//! Everything is seeded, so the file is reproducible bit for bit:
//!
//! ```text
//! cargo run --release --features examples --example firmware_weights              # 300 iterations
//! cargo run --release --features examples --example firmware_weights -- 0         # the initialized model only
//! cargo run --release --features examples --example firmware_weights -- 300 out.tsw
//! ```
//!
//! The data set, save times and step count are the firmware's (`boards/app/src/seed.rs`);
//! `tests/suite/firmware_parity.rs` recomputes the firmware's forecast from the written file.
//!
//! `boards/app/model/seed.tsw` is the seed model the firmware linked before, with
//! `FastTanh`/`FastSigmoid`, written by an earlier version of this example: kept as an old
//! file that must keep loading with its old bits (the model generator's and the model file
//! tests read it).

use core::ops::ControlFlow;

use tinysde::grad::Problem;
use tinysde::grad::Scratch;
use tinysde::nn::{Cube, Dense, Identity, InitScheme, Parameters, QuickSigmoid, QuickTanh};
use tinysde::noise::rng_from_seed;
use tinysde::sde::NeuralSde;
use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
use tinysde::train::EnsembleFit;
use tinysde::train::{
    Adam, AdamConfig, MeanSquaredError, NoiseMode, TrainConfig, Trainer, Workspace,
};
use tinysde::{weights, Dual, Real};

type Drift = (Cube<1>, Dense<1, 20, QuickTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, QuickSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<Drift, Diffusion>;
const P: usize = SeedModel::PARAMS;

const SAVE_TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
const DATA_SEED: u64 = 7;
const INIT_SEED: u64 = 2021;

/// The firmware's data set (`boards/app/src/seed.rs`, `data()`).
fn data() -> [f32; 7] {
    use rand_core::Rng;
    let mut rng = rng_from_seed(DATA_SEED);
    let mut out = [0.0f32; 7];
    for (y, &x) in out.iter_mut().zip(SAVE_TIMES.iter()) {
        let u = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
        *y = tinysde::math::exp(x) + u * 2.0;
    }
    out
}

/// Train the firmware's seed model on the host and write the weights file it links in.
#[derive(clap::Parser, Debug)]
#[command(name = "firmware_weights", version)]
#[command(after_help = "Exit codes: 0 success; 1 failed run or write; 2 bad command line.")]
struct Cli {
    /// Training iterations (0: write the initialized model only)
    #[arg(value_name = "ITERATIONS", default_value_t = 300)]
    iterations: u32,
    /// The weights file to write [default: boards/app/model/seed-quick.tsw]
    #[arg(value_name = "PATH")]
    path: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = <Cli as clap::Parser>::parse();
    let iterations = cli.iterations;
    let path = cli.path.unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/boards/app/model/seed-quick.tsw"
        )
        .to_string()
    });

    let mut model = SeedModel::default();
    model.init(&mut rng_from_seed(INIT_SEED), InitScheme::GlorotUniform)?;

    if iterations > 0 {
        let y = data();
        let rows = y.map(|v| [v]);
        let loss = MeanSquaredError::new(&rows)?;
        let solver = Solver::new(EulerMaruyama, TimeGrid::new(-3.0, 3.0, 60)?);
        let problem = Problem::new(solver, [y[0]], 16, &SAVE_TIMES)?;
        let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; P], [0.0; P])?;
        let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
        let mut stats = [[Dual::<8>::ZERO; 1]; 14];
        let ws = Workspace {
            params: &mut params,
            grad: &mut grad,
            best: &mut best,
            scratch: Scratch::new(&mut stats, &mut []),
        };
        let config = TrainConfig {
            noise: NoiseMode::Fresh { seed: 1 },
            clip_norm: Some(100.0),
        };
        let mut trainer = EnsembleFit::new(problem, loss)
            .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, config, ws))?;
        let report = trainer.run(iterations, |p| {
            if p.iteration % 50 == 0 {
                println!("iteration {:4}: loss {:.4}", p.iteration, p.loss);
            }
            ControlFlow::Continue(())
        })?;
        trainer.restore_best();
        println!(
            "{} iterations, best loss {:.4} (kept)",
            report.iterations, report.best_loss
        );
    }

    let mut bytes = vec![0u8; weights::encoded_len::<SeedModel>()];
    let n = weights::write(&model, &mut bytes)?;
    bytes.truncate(n);
    std::fs::write(&path, &bytes)?;
    println!(
        "wrote {path}: {} bytes, {P} parameters, crc32 {:08x}",
        bytes.len(),
        weights::crc32(&bytes[..n - 4])
    );
    Ok(())
}
