//! Reversible Heun: strong convergence (Stratonovich), the rebuilt backward states against
//! the forward ones, and its O(1)-memory gradient against forward mode on the same solve.

use tinysde::grad::{loss_and_gradient, Reversible};
use tinysde::grad::{reverse, Loss, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::nn::{
    Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, ParamSeed, Parameters,
};
use tinysde::noise::{Brownian, Coarsened, NoiseSource};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{
    self, EnsembleBuffers, EnsembleRequest, ReversibleHeun, Seeded, SolveRequest, Solver, TimeGrid,
};
use tinysde::train::{MeanSquaredError, MomentMatching};
use tinysde::{Dual, Error, NoiseKind, Real};

/// `du = 1.01 u dt + 0.87 u o dW` (Stratonovich): `u(1) = u0 exp(1.01 + 0.87 W(1))`.
struct Linear;
impl<T: Real> Sde<T, 1> for Linear {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * 1.01]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * 0.87]
    }
}

/// `du = -u dt + 0.5 dW` (additive): `u(1) = u0 e^-1 + 0.5 int_0^1 e^-(1-s) dW(s)`,
/// computed on the fine path.
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

const FINE: u32 = 12;
const PATHS: usize = 64;

/// Mean strong error at t = 1 for 2^k steps, every path sampled at 2^FINE steps.
fn strong_error<S: Sde<f32, 1>>(sde: &S, k: u32, exact: impl Fn(&[f64]) -> f64) -> f64 {
    let hf = 1.0 / (1u64 << FINE) as f32;
    let mut total = 0.0;
    for path in 0..PATHS {
        let fine = Brownian::new(500);
        let dw: Vec<f64> = (0..1u32 << FINE)
            .map(|s| fine.increment::<1>(path, s, hf, false).unwrap().dw[0] as f64)
            .collect();
        let noise = Coarsened::new(fine, 1 << (FINE - k)).unwrap();
        let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 1 << k).unwrap());
        let mut out = [[0.0f32; 1]];
        solve::solve(
            &solver,
            sde,
            &noise,
            &SolveRequest::new([0.5], &[1.0]).trajectory(path),
            &mut out,
        )
        .unwrap();
        total += (out[0][0] as f64 - exact(&dw)).abs();
    }
    total / PATHS as f64
}

fn order(errors: &[(f64, f64)]) -> f64 {
    let n = errors.len() as f64;
    let (sx, sy) = errors
        .iter()
        .fold((0.0, 0.0), |(a, b), (h, e)| (a + h.ln(), b + e.ln()));
    let (mx, my) = (sx / n, sy / n);
    let num: f64 = errors
        .iter()
        .map(|(h, e)| (h.ln() - mx) * (e.ln() - my))
        .sum();
    let den: f64 = errors.iter().map(|(h, _)| (h.ln() - mx).powi(2)).sum();
    num / den
}

/// Stratonovich GBM: strong order 1 (its noise is commutative; 0.5 is the general bound).
/// The error is against the Stratonovich solution, so an Itô method would not converge.
#[test]
fn strong_order_for_stratonovich_gbm() {
    let errors: Vec<(f64, f64)> = (3..=8)
        .map(|k| {
            let e = strong_error(&Linear, k, |dw| {
                0.5 * (1.01 + 0.87 * dw.iter().sum::<f64>()).exp()
            });
            (1.0 / (1u64 << k) as f64, e)
        })
        .collect();
    let p = order(&errors);
    assert!(p > 0.8 && p < 1.3, "order {p}: {errors:?}");
    assert!(errors[errors.len() - 1].1 < 0.02, "{errors:?}");
}

/// Additive noise: strong order 1.
#[test]
fn strong_order_one_for_additive_noise() {
    let hf = 1.0 / (1u64 << FINE) as f64;
    let errors: Vec<(f64, f64)> = (3..=8)
        .map(|k| {
            let e = strong_error(&Ou, k, |dw| {
                let stoch: f64 = dw
                    .iter()
                    .enumerate()
                    .map(|(s, w)| (-(1.0 - (s as f64 + 0.5) * hf)).exp() * w)
                    .sum();
                0.5 * (-1.0f64).exp() + 0.5 * stoch
            });
            (1.0 / (1u64 << k) as f64, e)
        })
        .collect();
    let p = order(&errors);
    assert!(p > 0.8 && p < 1.3, "order {p}: {errors:?}");
}

type Model = NeuralSde<
    (Cube<1>, Dense<1, 8, FastTanh>, Dense<8, 1, Identity>),
    (Dense<1, 8, FastSigmoid>, Dense<8, 1, Identity>),
>;

fn model() -> Model {
    let mut m = Model::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(4),
        InitScheme::Uniform { limit: 0.7 },
    )
    .unwrap();
    m
}

/// Undoing the steps from the last state (the algebra of the backward pass, written out
/// here on f32) rebuilds the forward states to f32 rounding over 200 steps of a neural
/// SDE. (The library's own backward pass is checked through its gradient, below: a wrong
/// rebuild would put every vector–Jacobian product at the wrong state.)
#[test]
fn rebuilt_states_match_the_forward_ones() {
    let m = model();
    let steps = 200u32;
    let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 2.0, steps).unwrap());
    let times: Vec<f32> = (1..=steps).map(|k| solver.grid.time(k)).collect();
    let mut forward = vec![[0.0f32; 1]; times.len()];
    let noise = Brownian::new(9);
    solve::solve(
        &solver,
        &m,
        &noise,
        &SolveRequest::new([0.7], &times),
        &mut forward,
    )
    .unwrap();
    let rebuilt = rebuild(&m, &solver, &noise, 0, 0.7);
    assert_eq!(rebuilt.len(), times.len() + 1);
    let mut worst = 0.0f32;
    for (k, (f, r)) in forward.iter().zip(&rebuilt[1..]).enumerate() {
        let err = (f[0] - r).abs() / (1.0 + f[0].abs());
        worst = worst.max(err);
        assert!(err < 1e-4, "state {k}: forward {} rebuilt {r}", f[0]);
    }
    assert!(
        (rebuilt[0] - 0.7).abs() < 1e-4,
        "u0 rebuilt as {}",
        rebuilt[0]
    );
    eprintln!("reversible Heun: worst relative rebuild error over {steps} steps: {worst:e}");
}

/// Forward to the end, then undo every step with the method's own formulas (the ones the
/// backward pass uses), returning y_0, ..., y_N as rebuilt.
fn rebuild(
    m: &Model,
    solver: &Solver<ReversibleHeun>,
    noise: &Brownian,
    traj: usize,
    u0: f32,
) -> Vec<f32> {
    let steps = solver.grid.steps();
    let h = solver.grid.h();
    let f = |z: f32, t: f32| <Model as Sde<f32, 1>>::drift(m, t, &[z], ParamSeed::NONE)[0];
    let g = |z: f32, t: f32| <Model as Sde<f32, 1>>::diffusion(m, t, &[z], ParamSeed::NONE)[0];
    let dw: Vec<f32> = (0..steps)
        .map(|k| noise.increment::<1>(traj, k, h, false).unwrap().dw[0])
        .collect();
    let (mut y, mut z) = (u0, u0);
    let (mut fz, mut gz) = (f(z, 0.0), g(z, 0.0));
    for k in 0..steps {
        let t = solver.grid.time(k);
        let z1 = y * 2.0 - z + fz * h + gz * dw[k as usize];
        let (f1, g1) = (f(z1, t + h), g(z1, t + h));
        y += (fz + f1) * (h * 0.5) + (gz + g1) * 0.5 * dw[k as usize];
        (z, fz, gz) = (z1, f1, g1);
    }
    let mut ys = vec![y];
    for k in (0..steps).rev() {
        let t = solver.grid.time(k);
        let z0 = y * 2.0 - z - fz * h - gz * dw[k as usize];
        let (f0, g0) = (f(z0, t), g(z0, t));
        y -= (f0 + fz) * (h * 0.5) + (g0 + gz) * 0.5 * dw[k as usize];
        (z, fz, gz) = (z0, f0, g0);
        ys.push(y);
    }
    ys.reverse();
    ys
}

/// The O(1)-memory gradient equals forward mode's on the same discrete solve (forward mode
/// here: the ensemble on Dual lanes, one per parameter window), to the rounding of the
/// rebuilt states; and the loss value has the f32 ensemble's bits.
#[test]
fn gradient_matches_forward_mode() {
    let uniform = [0.25f32, 0.5, 0.75, 1.0];
    gradient_matches_forward_mode_on(TimeGrid::new(0.0, 1.0, 40).unwrap(), &uniform);
}

/// The same on grids through save times off the nominal grid: the backward pass walks the
/// plan's uneven steps in reverse.
#[test]
fn gradient_matches_forward_mode_on_uneven_grids() {
    let uneven = [0.13f32, 0.3, 0.317, 1.0];
    gradient_matches_forward_mode_on(TimeGrid::through(0.0, 1.0, 40).unwrap(), &uneven);
    gradient_matches_forward_mode_on(TimeGrid::with_max_step(0.0, 1.0, 0.03).unwrap(), &uneven);
}

fn gradient_matches_forward_mode_on(grid: TimeGrid, times: &[f32; 4]) {
    let m = model();
    let data = [[0.9f32], [1.0], [1.1], [1.2]];
    let var = [[0.02f32], [0.04], [0.06], [0.08]];
    let loss = MomentMatching::new(&data, &var).unwrap();
    let solver = Solver::new(ReversibleHeun, grid);
    let problem = Problem::new(solver, [0.8], 16, times)
        .unwrap()
        .with_u0_gradient(true);
    let noise = Brownian::new(12);
    let mut stats = vec![[Dual::<8>::ZERO; 1]; problem.stats_len()];
    let mut tape = vec![[0.0f32; 1]; reverse::reversible_heun_tape_len(&problem)];
    let mut grad = vec![0.0f32; Model::PARAMS + 1];
    let value = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &m,
        Reversible,
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    )
    .unwrap();

    // Forward mode over the same solver entry point, 8 lanes at a time.
    let n = Model::PARAMS + 1;
    let mut fwd = vec![0.0f32; n];
    let mut start = 0;
    while start < n {
        let mut u0 = [Dual::<8>::constant(0.8)];
        if (Model::PARAMS >= start) && Model::PARAMS - start < 8 {
            u0[0].add_param_tangent(Model::PARAMS - start, Dual::ONE);
        }
        let (mut mean, mut v) = ([[Dual::<8>::ZERO; 1]; 4], [[Dual::<8>::ZERO; 1]; 4]);
        solve::simulate_into(
            &solver,
            &Seeded {
                sde: &m,
                seed: ParamSeed::window(start),
            },
            &noise,
            &EnsembleRequest::new(u0, 16, times),
            EnsembleBuffers::new(&mut mean, &mut v),
        )
        .unwrap();
        let l = loss.eval(&mean, &v);
        if start == 0 {
            assert_eq!(l.v.to_bits(), value.to_bits(), "loss bits");
        }
        for lane in 0..8 {
            if start + lane < n {
                fwd[start + lane] = l.t[lane];
            }
        }
        start += 8;
    }
    let scale = fwd.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    for (i, (r, f)) in grad.iter().zip(&fwd).enumerate() {
        assert!(
            (r - f).abs() <= 1e-4 * scale + 1e-3 * f.abs(),
            "entry {i}: reversible {r} forward {f} (max {scale})"
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    let m = model();
    let times = [0.5f32, 1.0];
    let data = [[1.0f32], [1.0]];
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 10).unwrap());
    let problem = Problem::new(solver, [0.8], 4, &times).unwrap();
    let mut stats = [[Dual::<4>::ZERO; 1]; 4];
    let mut tape = [[3.0f32; 1]; 7];
    let mut grad = [9.0f32; Model::PARAMS];
    let e = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &Brownian::new(1)),
        &m,
        Reversible,
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    );
    assert!(matches!(e, Err(Error::Length { expected: 8, .. })), "{e:?}");
    assert!(grad.iter().all(|&g| g == 9.0) && tape.iter().all(|t| t[0] == 3.0));
    let mut out = [[0.0f32; 1]; 1];
    let bad = solve::solve(
        &solver,
        &m,
        &Brownian::new(1),
        &SolveRequest::new([0.5], &[0.33]),
        &mut out,
    );
    assert!(matches!(bad, Err(Error::SaveTime { index: 0 })), "{bad:?}");
}

/// On the grids through the save times, save times that are nominal grid points give the
/// uniform grid's bits (the plan steps them identically); uneven save times, which the
/// uniform grid refuses, are accepted.
#[test]
fn solves_on_grids_through_the_save_times() {
    let noise = Brownian::new(21);
    let on_grid = [0.25f32, 0.5, 0.75, 1.0];
    let uniform = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 40).unwrap());
    let mut expected = [[0.0f32; 1]; 4];
    solve::solve(
        &uniform,
        &Linear,
        &noise,
        &SolveRequest::new([0.5], &on_grid).trajectory(3),
        &mut expected,
    )
    .unwrap();
    for grid in [
        TimeGrid::through(0.0, 1.0, 40).unwrap(),
        TimeGrid::with_max_step(0.0, 1.0, 0.025).unwrap(),
    ] {
        let solver = Solver::new(ReversibleHeun, grid);
        let mut out = [[0.0f32; 1]; 4];
        solve::solve(
            &solver,
            &Linear,
            &noise,
            &SolveRequest::new([0.5], &on_grid).trajectory(3),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.map(|u| u[0].to_bits()),
            expected.map(|u| u[0].to_bits())
        );
        // Off-grid save times: accepted (the uniform grid refuses them).
        let mut one = [[0.0f32; 1]; 2];
        let uneven = [0.33f32, 1.0];
        solve::solve(
            &solver,
            &Linear,
            &noise,
            &SolveRequest::new([0.5], &uneven).trajectory(3),
            &mut one,
        )
        .unwrap();
        assert!(one.iter().all(|u| u[0].is_finite() && u[0] > 0.0));
        let e = solve::solve(
            &uniform,
            &Linear,
            &noise,
            &SolveRequest::new([0.5], &uneven).trajectory(3),
            &mut one,
        );
        assert!(matches!(e, Err(Error::SaveTime { index: 0 })), "{e:?}");
    }
}

/// `du = u^3 dt + dW`: a path that wanders far enough from 0 blows up in finite time.
struct Explosive;
impl<T: Real> Sde<T, 1> for Explosive {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * u[0] * u[0]]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::ONE]
    }
}

/// An ensemble whose later trajectory diverges, after earlier ones have been folded into
/// the statistics, returns the error of the one-trajectory solve and leaves the mean, the
/// variance and the paths as they were: one at a time and on threads, few save times (the
/// stack copy) and many (the checking pass). Reversible Heun's ensemble once returned the
/// error with the statistics half-written.
#[test]
fn a_diverging_ensemble_writes_nothing() {
    const SENTINEL: f32 = -1234.5678;
    let trajectories = 16;
    let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 4.0, 512).unwrap());
    let few: Vec<f32> = (1..=8).map(|k| k as f32 * 0.5).collect();
    let many: Vec<f32> = (1..=64).map(|k| k as f32 / 16.0).collect();
    let solve_one = |noise: &Brownian, m: usize| {
        let mut out = [[0.0f32; 1]; 8];
        let request = SolveRequest::new([0.0f32], &few).trajectory(m);
        solve::solve(&solver, &Explosive, noise, &request, &mut out)
    };
    // A seed whose trajectory 0 survives and a later one diverges.
    let noise = (0..64)
        .map(Brownian::new)
        .find(|noise| {
            solve_one(noise, 0).is_ok() && (1..trajectories).any(|m| solve_one(noise, m).is_err())
        })
        .expect("a seed with trajectory 0 finite and a later one diverging");
    let first_error = (0..trajectories)
        .map(|m| solve_one(&noise, m))
        .find(Result::is_err)
        .unwrap();
    assert!(
        matches!(first_error, Err(Error::Diverged { .. })),
        "{first_error:?}"
    );
    for times in [&few, &many] {
        let n = times.len();
        let request = EnsembleRequest::new([0.0f32], trajectories, times);
        for with_paths in [false, true] {
            for threads in [None, Some(1), Some(3)] {
                let (mut mean, mut var) = (vec![[SENTINEL]; n], vec![[SENTINEL]; n]);
                let mut paths = vec![[SENTINEL]; n * trajectories];
                let mut out = EnsembleBuffers::new(&mut mean, &mut var);
                if with_paths {
                    out = out.with_paths(&mut paths);
                }
                let got = match threads {
                    None => solve::simulate_into(&solver, &Explosive, &noise, &request, out),
                    Some(t) => {
                        let request = request.on_threads(t);
                        solve::simulate_into(&solver, &Explosive, &noise, &request, out)
                    }
                };
                assert_eq!(
                    got, first_error,
                    "{n} save times, paths {with_paths}, {threads:?}"
                );
                let untouched =
                    |rows: &[[f32; 1]]| rows.iter().all(|x| x[0].to_bits() == SENTINEL.to_bits());
                assert!(untouched(&mean) && untouched(&var) && untouched(&paths));
            }
        }
    }
}
