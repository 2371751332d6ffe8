//! Adaptive SOSRI against fixed-step SOSRI at equal error, on a problem with a sharp
//! transient: steps and time per trajectory.
//!
//! Problem: a stiff drift switching regime, `du = a(t) u dt + 0.5 u dW` (Itô) on `[0, 1]`,
//! `u0 = 1`, with `a(t) = -20 (1 + tanh((t - 1/2) / 0.01))`: the rate switches from 0 to
//! -40 within a few hundredths around `t = 1/2`. Exact solution along the path:
//! `u0 exp(int_0^t a - t / 8 + W(t) / 2)`, `int_0^t a` in closed form.
//! Error: mean absolute error at `t = 0.6` (shortly after the switch) and at `t = 1`, the
//! larger of the two, over 400 trajectories (the tolerances are absolute and relative).
//!
//! For each tolerance the adaptive solver's error and mean steps tried per trajectory
//! (accepted plus rejected) are printed, then the smallest number of fixed steps (searched
//! by bisection) whose error is no larger, and the ratio. Criterion then times 100
//! trajectories of each at the middle tolerance.
//!
//! Run: `cargo bench --features benches --bench adaptive -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tinysde::nn::ParamSeed;
use tinysde::noise::{Brownian, BrownianTree, NoiseSource};
use tinysde::sde::Sde;
use tinysde::solve::{self, Adaptive, SolveRequest, Solver, Sosri, TimeGrid};
use tinysde::{NoiseKind, Real};

const K: f64 = 40.0;
const EPS: f64 = 0.01;
const SIGMA: f32 = 0.5;
const TIMES: [f32; 2] = [0.6, 1.0];
const TRAJECTORIES: usize = 400;
/// Tree depth: grid spacing 2^-16 = 1.5e-5, below the smallest step the solver takes here.
const DEPTH: u32 = 16;

/// The switching regime.
struct Switch;
impl<T: Real> Sde<T, 1> for Switch {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, t: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        let rate = -(K as f32 / 2.0) * (1.0 + tinysde::math::tanh((t - 0.5) / EPS as f32));
        [u[0] * rate]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * SIGMA]
    }
}

fn log_cosh(x: f64) -> f64 {
    x.abs() + (-2.0 * x.abs()).exp().ln_1p() - 2f64.ln()
}

fn exact(t: f64, w: f64) -> f64 {
    let s = SIGMA as f64;
    let drift = -(K / 2.0) * (t + EPS * (log_cosh((t - 0.5) / EPS) - log_cosh(0.5 / EPS)));
    (drift - s * s * t / 2.0 + s * w).exp()
}

/// The larger over save times of the mean absolute error.
fn worst(errors: [f64; 2]) -> f64 {
    errors[0].max(errors[1]) / TRAJECTORIES as f64
}

/// Error and mean steps tried of adaptive SOSRI at tolerance `tol`.
fn adaptive_error(tree: &BrownianTree, tol: f32) -> (f64, f64) {
    let solver = Adaptive::new(Sosri, tol, tol).unwrap();
    let (mut errors, mut steps) = ([0.0; 2], 0u64);
    for m in 0..TRAJECTORIES {
        let mut out = [[0.0f32; 1]; 2];
        let stats = solve::solve(
            &solver,
            &Switch,
            tree,
            &SolveRequest::new([1.0], &TIMES).trajectory(m),
            &mut out,
        )
        .unwrap();
        steps += stats.accepted + stats.rejected;
        for (i, &t) in TIMES.iter().enumerate() {
            let j = tree.index_of(t).unwrap();
            let w = tree.increment::<1>(m, 0, j).unwrap().dw[0] as f64;
            errors[i] += (out[i][0] as f64 - exact(tree.time(j) as f64, w)).abs();
        }
    }
    (worst(errors), steps as f64 / TRAJECTORIES as f64)
}

/// Error of fixed-step SOSRI with `steps` steps (a multiple of 5, so 0.6 is a grid point);
/// infinite if a trajectory diverges.
fn fixed_error(noise: &Brownian, steps: u32) -> f64 {
    let solver = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, steps).unwrap());
    let h = solver.grid.h();
    let mut errors = [0.0; 2];
    for m in 0..TRAJECTORIES {
        let mut out = [[0.0f32; 1]; 2];
        if solve::solve(
            &solver,
            &Switch,
            noise,
            &SolveRequest::new([1.0], &TIMES).trajectory(m),
            &mut out,
        )
        .is_err()
        {
            return f64::INFINITY;
        }
        let mut w = 0.0f64;
        for k in 0..steps {
            if k == steps / 5 * 3 {
                errors[0] += (out[0][0] as f64 - exact(0.6, w)).abs();
            }
            w += noise.increment::<1>(m, k, h, false).unwrap().dw[0] as f64;
        }
        errors[1] += (out[1][0] as f64 - exact(1.0, w)).abs();
    }
    worst(errors)
}

/// The smallest multiple of 5 steps whose fixed-step error is at most `target` (the error
/// falls with the steps, up to sampling noise; bisection between doublings).
fn fixed_steps_for(noise: &Brownian, target: f64) -> (u32, f64) {
    let mut hi = 5u32;
    while fixed_error(noise, hi) > target {
        hi *= 2;
        assert!(hi < 1 << 22, "fixed steps never reach {target}");
    }
    let mut lo = hi / 2;
    while hi - lo > 5 {
        let mid = (lo + hi) / 2 / 5 * 5;
        if mid <= lo {
            break;
        }
        if fixed_error(noise, mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (hi, fixed_error(noise, hi))
}

fn adaptive_vs_fixed(c: &mut Criterion) {
    let tree = BrownianTree::new(2026, 0.0, 1.0, DEPTH).unwrap();
    let noise = Brownian::new(2026);
    println!("switching regime, SOSRI, {TRAJECTORIES} trajectories, worst mean absolute error at t = 0.6, 1");
    println!("| tolerance | adaptive error | adaptive steps (acc + rej) | fixed steps at equal error | fixed error | ratio |");
    println!("|---|---|---|---|---|---|");
    let mut middle = None;
    for tol in [1e-2f32, 1e-3, 1e-4] {
        let (err, steps) = adaptive_error(&tree, tol);
        let (fixed, fixed_err) = fixed_steps_for(&noise, err);
        println!(
            "| {tol:e} | {err:.2e} | {steps:.1} | {fixed} | {fixed_err:.2e} | {:.1}x |",
            fixed as f64 / steps
        );
        if tol == 1e-3 {
            middle = Some(fixed);
        }
    }
    let fixed_steps = middle.unwrap();

    let mut group = c.benchmark_group("adaptive/switch, 100 trajectories");
    let adaptive = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    group.bench_function("adaptive SOSRI tol 1e-3", |b| {
        b.iter(|| {
            let mut out = [[0.0f32; 1]; 2];
            for m in 0..100 {
                solve::solve(
                    &adaptive,
                    &Switch,
                    &tree,
                    &SolveRequest::new([1.0], &TIMES).trajectory(m),
                    &mut out,
                )
                .unwrap();
            }
            black_box(out)
        })
    });
    let fixed = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, fixed_steps).unwrap());
    group.bench_function(
        format!("fixed SOSRI {fixed_steps} steps (equal error)"),
        |b| {
            b.iter(|| {
                let mut out = [[0.0f32; 1]; 2];
                for m in 0..100 {
                    solve::solve(
                        &fixed,
                        &Switch,
                        &noise,
                        &SolveRequest::new([1.0], &TIMES).trajectory(m),
                        &mut out,
                    )
                    .unwrap();
                }
                black_box(out)
            })
        },
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = adaptive_vs_fixed
}
criterion_main!(benches);
