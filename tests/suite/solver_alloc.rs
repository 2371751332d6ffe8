//! Solving and ensembles allocate nothing: counted by a global allocator, on the measuring
//! thread only. One test in this file.

use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, ParamSeed};
use tinysde::noise::{rng_from_seed, Brownian, Coarsened};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{
    self, EnsembleBuffers, EnsembleRequest, EulerHeun, EulerMaruyama, Integrator, Method, Milstein,
    Rk4, Seeded, SolveRequest, Solver, Sosra, Sosri, Sra1, Sriw1, TimeGrid,
};
use tinysde::{Dual, NoiseKind, Real};

use crate::alloc_counter;
use alloc_counter::allocations;

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type Model = NeuralSde<Drift, Diffusion>;

/// `du = -u dt + 0.5 dW`.
struct Ou;
impl<T: Real> Sde<T, 1> for Ou {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [-u[0]]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::cst(0.5)]
    }
}

const TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

/// Allocations of one solve and one 8-trajectory ensemble (with paths), in f32 and in
/// `Dual<4>`, from noise sources fine and coarsened.
fn solve_and_ensemble<M, S>(method: M, sde: &S) -> usize
where
    M: Method + Copy,
    S: Sde<f32, 1> + Sde<Dual<4>, 1>,
    Solver<M>: Integrator<f32, S, Brownian, 1>
        + Integrator<f32, S, Coarsened<Brownian>, 1>
        + for<'a> Integrator<Dual<4>, Seeded<'a, S>, Brownian, 1>,
{
    let solver = Solver::new(method, TimeGrid::new(-3.0, 3.0, 60).unwrap());
    let fine = Brownian::new(1);
    let coarse = Coarsened::new(fine, 3).unwrap();
    allocations(|| {
        let mut out = [[0.0f32; 1]; 7];
        solve::solve(
            &solver,
            sde,
            &fine,
            &SolveRequest::new([0.05], &TIMES),
            &mut out,
        )
        .unwrap();
        solve::solve(
            &solver,
            sde,
            &coarse,
            &SolveRequest::new([0.05], &TIMES),
            &mut out,
        )
        .unwrap();
        let (mut mean, mut var, mut paths) =
            ([[0.0f32; 1]; 7], [[0.0f32; 1]; 7], [[0.0f32; 1]; 56]);
        solve::simulate_into(
            &solver,
            sde,
            &fine,
            &EnsembleRequest::new([0.05], 8, &TIMES),
            EnsembleBuffers {
                mean: &mut mean,
                variance: &mut var,
                paths: Some(&mut paths),
            },
        )
        .unwrap();
        let zero = [Dual::<4>::constant(0.0)];
        let (mut mean, mut var) = ([zero; 7], [zero; 7]);
        let u0 = [Dual::<4>::constant(0.05)];
        solve::simulate_into(
            &solver,
            &Seeded {
                sde,
                seed: ParamSeed::window(3),
            },
            &fine,
            &EnsembleRequest::new(u0, 8, &TIMES),
            EnsembleBuffers::new(&mut mean, &mut var),
        )
        .unwrap();
        std::hint::black_box((&out, &mean, &var, &paths));
    })
    .0
}

#[test]
fn solving_and_ensembles_allocate_nothing() {
    // The counter counts: a vector allocates once.
    assert_eq!(
        allocations(|| drop(std::hint::black_box(vec![1u8; 16]))).0,
        1
    );

    let mut model = Model::default();
    model
        .init(&mut rng_from_seed(0), InitScheme::GlorotUniform)
        .unwrap();
    assert_eq!(
        solve_and_ensemble(EulerMaruyama, &model),
        0,
        "EulerMaruyama"
    );
    assert_eq!(solve_and_ensemble(EulerHeun, &model), 0, "EulerHeun");
    assert_eq!(solve_and_ensemble(Milstein, &model), 0, "Milstein");
    assert_eq!(solve_and_ensemble(Sriw1, &model), 0, "SRIW1");
    assert_eq!(solve_and_ensemble(Sosri, &model), 0, "SOSRI");
    assert_eq!(solve_and_ensemble(Rk4, &model), 0, "RK4");
    assert_eq!(solve_and_ensemble(Sra1, &Ou), 0, "SRA1");
    assert_eq!(solve_and_ensemble(Sosra, &Ou), 0, "SOSRA");
}
