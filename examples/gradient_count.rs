//! The seed task's loss and gradient (reverse mode on lanes, one thread, every state kept),
//! evaluated a given number of times, for counting instructions with and without the quick
//! activations:
//!
//!     cargo build --release --features examples --example gradient_count
//!     valgrind --tool=callgrind target/release/examples/gradient_count fast 3
//!     valgrind --tool=callgrind target/release/examples/gradient_count quick 3
//!
//! The instructions per evaluation are the difference of two counts (e.g. 3 and 1
//! evaluations) divided by their difference. The task is `benches/gradient.rs`'s seed task
//! (`reverse_threads/all/T=1`): the seed model (Glorot-uniform weights, seed 1), 100
//! trajectories, 600 Euler–Maruyama steps on [-3, 3], mean squared error of the mean at
//! t = -3, ..., 3 against `e^t + 1`. Prints the loss and the gradient's first entry.

use std::process::ExitCode;

use tinysde::grad::{loss_and_gradient, reverse, Ensemble, Problem, Reverse, Scratch, Threads};
use tinysde::nn::{
    Cube, Dense, FastSigmoid, FastTanh, Identity, Init, InitScheme, Parameters, QuickSigmoid,
    QuickTanh,
};
use tinysde::noise::{rng_from_seed, Brownian};
use tinysde::sde::{NeuralSde, SdeVjp};
use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, StepVjp, TimeGrid};
use tinysde::train::MeanSquaredError;

type FastModel = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
type QuickModel = NeuralSde<
    (Cube<1>, Dense<1, 20, QuickTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, QuickSigmoid>, Dense<20, 1, Identity>),
>;

/// `evaluations` loss-and-gradient evaluations of the seed task for model type `S`.
fn run<S>(evaluations: usize) -> Result<(f32, f32), tinysde::Error>
where
    S: SdeVjp<1> + SdeVjp<1, tinysde::F32x<{ reverse::REVERSE_LANES }>> + Parameters,
    S: Init + Default + Sync,
    EulerMaruyama: StepVjp<S, 1> + StepVjp<S, 1, tinysde::F32x<{ reverse::REVERSE_LANES }>>,
{
    let mut model = S::default();
    tinysde::nn::init(&mut model, &mut rng_from_seed(1), InitScheme::GlorotUniform)?;
    let times: Vec<f32> = (-3..=3).map(|x| x as f32).collect();
    let data: Vec<[f32; 1]> = times.iter().map(|&x| [x.exp() + 1.0]).collect();
    let loss = MeanSquaredError::new(&data)?;
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(-3.0, 3.0, 600)?);
    let problem = Problem::new(solver, data[0], 100, &times)?;
    let noise = Brownian::new(3);
    let mut grad = vec![0.0f32; S::PARAMS];
    let mut value = 0.0;
    for _ in 0..evaluations {
        value = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            std::hint::black_box(&model),
            Threads(Reverse(Checkpoints::All), 1),
            &mut Scratch::<8, 1>::owned(),
            &mut grad,
        )?;
    }
    Ok((value, grad[0]))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("fast", String::as_str);
    let evaluations = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let result = match which {
        "fast" => run::<FastModel>(evaluations),
        "quick" => run::<QuickModel>(evaluations),
        other => {
            eprintln!("gradient_count: unknown activations {other:?} (fast or quick)");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok((loss, g0)) => {
            println!("activations={which} evaluations={evaluations} loss={loss} grad0={g0}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gradient_count: {e}");
            ExitCode::FAILURE
        }
    }
}
