//! Cost of the fixed-step solvers on the seed task's network, in time per trajectory-step.
//!
//! Model: drift = (Cube<1>, Dense<1,20,FastTanh>, Dense<20,1,Identity>), diffusion =
//! (Dense<1,20,FastSigmoid>, Dense<20,1,Identity>), Glorot-uniform init (seed 1), u0 =
//! e^-3 + 1 (the first data point of the seed task with its mean noise), t in [-3, 3] with
//! 600 steps, saved at the 7 data times. SRA1 and SOSRA need additive noise: for them the
//! diffusion network takes the time as its input (g = G(t)), the same amount of work.
//!
//! For each method: one trajectory (`solve`, M = 1), and ensembles of M = 100 trajectories,
//! serial (`ensemble`) and threaded (`ensemble_parallel`, all cores; feature `std`).
//! Throughput is reported in trajectory-steps ("elem"): ns per trajectory-step =
//! 1000 / (Melem/s).
//!
//! Run: `cargo bench --features benches --bench solvers` (short criterion settings, under 3
//! minutes; without `--features std` the threaded ensembles are left out).
//! Filter: `cargo bench --features benches --bench solvers -- EulerMaruyama`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Layer, ParamSeed};
use tinysde::noise::{rng_from_seed, Brownian};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{
    self, EnsembleBuffers, EnsembleRequest, EulerHeun, EulerMaruyama, LaneIntegrator, Method,
    Milstein, Rk4, SolveRequest, Solver, Sosra, Sosri, Sra1, Sriw1, TimeGrid, PARALLEL_LANES,
};
use tinysde::{NoiseKind, Real};

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<Drift, Diffusion>;

/// The seed model with a time-dependent additive diffusion `G(t)`.
struct AdditiveSeedModel(SeedModel);
impl<T: Real> Sde<T, 1> for AdditiveSeedModel {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, t: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        <SeedModel as Sde<T, 1>>::drift(&self.0, t, u, seed)
    }
    fn diffusion(&self, t: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
        self.0.diffusion.forward(&[T::cst(t)], seed)
    }
}

const STEPS: u32 = 600;
const M: usize = 100;
const TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

fn bench_method<Mt, S>(c: &mut Criterion, method: Mt, sde: &S)
where
    Mt: Method + Copy + Sync,
    S: Sde<f32, 1> + Sync,
    Solver<Mt>: LaneIntegrator<PARALLEL_LANES, f32, S, Brownian, 1, Stats = ()>,
{
    let solver = Solver::new(method, TimeGrid::new(-3.0, 3.0, STEPS).unwrap());
    let noise = Brownian::new(3);
    let u0 = [tinysde::math::exp(-3.0) + 1.0];
    let mut group = c.benchmark_group(format!("solvers/{}", Mt::NAME));
    group.throughput(Throughput::Elements(u64::from(STEPS)));
    let mut out = [[0.0f32; 1]; 7];
    group.bench_function("M=1", |b| {
        b.iter(|| {
            solve::solve(
                &solver,
                sde,
                &noise,
                &SolveRequest::new(u0, &TIMES),
                &mut out,
            )
            .unwrap();
            black_box(&out);
        })
    });
    group.throughput(Throughput::Elements(u64::from(STEPS) * M as u64));
    let (mut mean, mut var) = ([[0.0f32; 1]; 7], [[0.0f32; 1]; 7]);
    group.bench_function("M=100 serial", |b| {
        b.iter(|| {
            solve::simulate_into(
                &solver,
                sde,
                &noise,
                &EnsembleRequest::new(u0, M, &TIMES),
                EnsembleBuffers::new(&mut mean, &mut var),
            )
            .unwrap();
            black_box((&mean, &var));
        })
    });
    #[cfg(feature = "std")]
    group.bench_function("M=100 threaded", |b| {
        b.iter(|| {
            solve::simulate_into(
                &solver,
                sde,
                &noise,
                &EnsembleRequest::new(u0, M, &TIMES)
                    .in_lanes::<PARALLEL_LANES>()
                    .on_threads(0),
                EnsembleBuffers::new(&mut mean, &mut var),
            )
            .unwrap();
            black_box((&mean, &var));
        })
    });
    group.finish();
}

fn solvers(c: &mut Criterion) {
    let mut model = SeedModel::default();
    model
        .init(&mut rng_from_seed(1), InitScheme::GlorotUniform)
        .unwrap();
    bench_method(c, EulerMaruyama, &model);
    bench_method(c, EulerHeun, &model);
    bench_method(c, Milstein, &model);
    bench_method(c, Sriw1, &model);
    bench_method(c, Sosri, &model);
    bench_method(c, Rk4, &model);
    let additive = AdditiveSeedModel(model);
    bench_method(c, Sra1, &additive);
    bench_method(c, Sosra, &additive);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = solvers
}
criterion_main!(benches);
