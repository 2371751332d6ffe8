//! The Brownian tree and the adaptive solver: the tree's law and consistency, error against
//! tolerance, strong errors against exact solutions, weak moments under heavy rejection,
//! forward-mode gradients through the accepted steps, determinism, and bad input.

use tinysde::nn::ParamSeed;
use tinysde::noise::{BrownianTree, Increment, MAX_TREE_DEPTH};
use tinysde::sde::Sde;
use tinysde::solve::{
    self, Adaptive, AdaptiveOptions, EnsembleBuffers, EnsembleRequest, Seeded, SolveRequest,
    Solver, Sosra, Sosri, Sra1, Sriw1, TimeGrid,
};
use tinysde::{Dual, Error, NoiseKind, Real};

// ---------------------------------------------------------------- test SDEs

/// Itô GBM `du = a u dt + b u dW`, `a` and `b` trainable parameters 0 and 1.
struct Gbm;
const A: f32 = 1.01;
const B: f32 = 0.87;
impl<T: Real> Sde<T, 1> for Gbm {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(A, 0)]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(B, 1)]
    }
}

/// The additive test problem of the reference suites: exact solution
/// `u0 / sqrt(1+t) + b (t + a W) / sqrt(1+t)`.
struct AdditiveProblem;
const AA: f32 = 0.1;
const AB: f32 = 0.05;
impl<T: Real> Sde<T, 1> for AdditiveProblem {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, t: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        let s = (1.0 + t).sqrt();
        [T::cst(AB / s) - u[0] / (2.0 * (1.0 + t))]
    }
    fn diffusion(&self, t: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::cst(AA * AB / (1.0 + t).sqrt())]
    }
}

/// Scalar noise shared by a GBM (component 0, which drives the step sizes) and a pure
/// Brownian motion (component 1, `du = dW`): the step choice depends on the very noise
/// component 1 integrates, the case where re-drawing rejected noise would bias it.
struct GbmAndWitness;
impl<T: Real> Sde<T, 2> for GbmAndWitness {
    const NOISE: NoiseKind = NoiseKind::Scalar;
    fn drift(&self, _: f32, u: &[T; 2], _: ParamSeed) -> [T; 2] {
        [u[0] * A, T::ZERO]
    }
    fn diffusion(&self, _: f32, u: &[T; 2], _: ParamSeed) -> [T; 2] {
        [u[0] * B, T::ONE]
    }
}

/// Pure Brownian motion.
struct Bm;
impl<T: Real> Sde<T, 1> for Bm {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::ZERO]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::ONE]
    }
}

/// A stiff drift switching regime: GBM whose rate switches from 0 to `-K` within a few
/// `EPS` around `t = 1/2`, `a(t) = -(K / 2) (1 + tanh((t - 1/2) / EPS))`. Exact:
/// `u0 exp(int_0^t a - s^2 t / 2 + s W(t))` with
/// `int_0^t a = -(K / 2) (t + EPS (log cosh((t - 1/2) / EPS) - log cosh(1 / (2 EPS))))`.
struct Switch;
const K: f64 = 40.0;
const EPS: f64 = 0.01;
const SIGMA: f32 = 0.5;
impl<T: Real> Sde<T, 1> for Switch {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, t: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        let rate = -(K as f32 / 2.0) * (1.0 + ((t - 0.5) / EPS as f32).tanh());
        [u[0] * rate]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * SIGMA]
    }
}

/// `log cosh x` without overflow.
fn log_cosh(x: f64) -> f64 {
    x.abs() + (-2.0 * x.abs()).exp().ln_1p() - 2f64.ln()
}

fn switch_exact(u0: f64, t: f64, w: f64) -> f64 {
    let s = SIGMA as f64;
    let drift = -(K / 2.0) * (t + EPS * (log_cosh((t - 0.5) / EPS) - log_cosh(0.5 / EPS)));
    u0 * (drift - s * s * t / 2.0 + s * w).exp()
}

fn gbm_exact(u0: f64, t: f64, w: f64) -> f64 {
    let (a, b) = (A as f64, B as f64);
    u0 * ((a - b * b / 2.0) * t + b * w).exp()
}

/// `W(t)` of trajectory `m` at grid point `j` (`W(t0) = 0`).
fn w_at(tree: &BrownianTree, m: usize, j: u32) -> f64 {
    if j == 0 {
        0.0
    } else {
        tree.increment::<1>(m, 0, j).unwrap().dw[0] as f64
    }
}

/// Least-squares slope of `log y` against `log x`.
fn slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

// ---------------------------------------------------------------- the tree

#[test]
fn tree_increments_have_the_law_of_brownian_motion() {
    // An interval straddling the root's midpoint and a nested one, off every dyadic
    // boundary above the leaves: dW ~ N(0, h), dZ ~ N(0, h), independent, and increments
    // of disjoint intervals uncorrelated.
    let tree = BrownianTree::new(11, 0.0, 2.0, 12).unwrap();
    let (j0, j1, j2) = (1000u32, 2100u32, 3333u32);
    let (h1, h2) = (
        (j1 - j0) as f64 * tree.spacing() as f64,
        (j2 - j1) as f64 * tree.spacing() as f64,
    );
    let n = 40_000;
    let (mut s_w, mut s_ww, mut s_zz, mut s_wz, mut s_12) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut s_22 = 0.0;
    for m in 0..n {
        let a = tree.increment::<1>(m, j0, j1).unwrap();
        let b = tree.increment::<1>(m, j1, j2).unwrap();
        let (w, z, w2) = (a.dw[0] as f64, a.dz[0] as f64, b.dw[0] as f64);
        s_w += w;
        s_ww += w * w;
        s_zz += z * z;
        s_wz += w * z;
        s_12 += w * w2;
        s_22 += w2 * w2;
    }
    let n = n as f64;
    // Standard errors: mean sqrt(h/n), variance h sqrt(2/n), covariance h sqrt(1/n).
    let se = (1.0 / n).sqrt();
    assert!((s_w / n).abs() < 4.0 * (h1 / n).sqrt(), "mean {}", s_w / n);
    assert!((s_ww / n / h1 - 1.0).abs() < 4.0 * (2.0f64).sqrt() * se);
    assert!((s_zz / n / h1 - 1.0).abs() < 4.0 * (2.0f64).sqrt() * se);
    assert!((s_22 / n / h2 - 1.0).abs() < 4.0 * (2.0f64).sqrt() * se);
    assert!((s_wz / n / h1).abs() < 4.0 * se, "cov(dW, dZ) {}", s_wz / n);
    assert!(
        (s_12 / n / (h1 * h2).sqrt()).abs() < 4.0 * se,
        "cov(dW1, dW2)"
    );
}

#[test]
fn tree_increments_compose_exactly() {
    // Over [j0, j2] the increment is the sum of [j0, j1] and [j1, j2], and the time
    // integral of W - W(j0) composes as I02 = I01 + I12 + h12 dW01.
    let tree = BrownianTree::new(3, -1.0, 3.0, 16).unwrap();
    let integral = |inc: &Increment<2>, c: usize, h: f64| {
        h * (inc.dw[c] as f64 + inc.dz[c] as f64 / 3f64.sqrt()) / 2.0
    };
    for m in 0..50 {
        for &(j0, j1, j2) in &[(0u32, 1u32, 65536u32), (777, 32768, 40000), (5, 9, 13)] {
            let h = |a: u32, b: u32| (b - a) as f64 * tree.spacing() as f64;
            let a = tree.increment::<2>(m, j0, j1).unwrap();
            let b = tree.increment::<2>(m, j1, j2).unwrap();
            let whole = tree.increment::<2>(m, j0, j2).unwrap();
            for c in 0..2 {
                let dw = a.dw[c] as f64 + b.dw[c] as f64;
                let scale = h(j0, j2).sqrt();
                assert!((whole.dw[c] as f64 - dw).abs() < 2e-6 * scale.max(1.0));
                let i = integral(&a, c, h(j0, j1))
                    + integral(&b, c, h(j1, j2))
                    + h(j1, j2) * a.dw[c] as f64;
                let direct = integral(&whole, c, h(j0, j2));
                assert!(
                    (direct - i).abs() < 2e-6 * h(j0, j2).powf(1.5).max(1e-3) + 1e-9,
                    "m {m}, {j0}..{j1}..{j2}, channel {c}: {direct} vs {i}"
                );
            }
        }
    }
}

#[test]
fn tree_integral_matches_the_leaf_path() {
    // The I_(1,0) of a query equals the integral of the grid path it refines to: summing
    // the leaf increments and leaf integrals over the interval gives the same number.
    let tree = BrownianTree::new(8, 0.0, 1.0, 9).unwrap();
    let dt = tree.spacing() as f64;
    for m in 0..20 {
        let (j0, j1) = (37u32, 300u32);
        let q = tree.increment::<1>(m, j0, j1).unwrap();
        let h = (j1 - j0) as f64 * dt;
        let (mut w, mut integral) = (0.0f64, 0.0f64);
        for j in j0..j1 {
            let leaf = tree.increment::<1>(m, j, j + 1).unwrap();
            let leaf_integral = dt * (leaf.dw[0] as f64 + leaf.dz[0] as f64 / 3f64.sqrt()) / 2.0;
            integral += dt * w + leaf_integral;
            w += leaf.dw[0] as f64;
        }
        assert!((q.dw[0] as f64 - w).abs() < 1e-5, "dW");
        let from_query = h * (q.dw[0] as f64 + q.dz[0] as f64 / 3f64.sqrt()) / 2.0;
        assert!(
            (from_query - integral).abs() < 1e-5,
            "{from_query} vs {integral}"
        );
    }
}

#[test]
fn tree_is_a_pure_function_with_independent_prefix_channels() {
    let tree = BrownianTree::new(42, 0.0, 1.0, 20).unwrap();
    let a = tree.increment::<3>(5, 123, 456_789).unwrap();
    let b = tree.increment::<3>(5, 123, 456_789).unwrap();
    assert_eq!(a, b);
    let one = tree.increment::<1>(5, 123, 456_789).unwrap();
    assert_eq!((one.dw[0], one.dz[0]), (a.dw[0], a.dz[0]));
    assert_ne!(a.dw[0], a.dw[1]);
    let other = tree.increment::<1>(6, 123, 456_789).unwrap();
    assert_ne!(other.dw[0], one.dw[0]);
    let reseeded = BrownianTree::new(43, 0.0, 1.0, 20).unwrap();
    assert_ne!(
        reseeded.increment::<1>(5, 123, 456_789).unwrap().dw[0],
        one.dw[0]
    );
}

#[test]
fn tree_rejects_bad_arguments() {
    assert_eq!(
        BrownianTree::new(0, 1.0, 1.0, 4),
        Err(Error::TimeSpan { t0: 1.0, t1: 1.0 })
    );
    assert!(matches!(
        BrownianTree::new(0, 0.0, f32::NAN, 4),
        Err(Error::TimeSpan { .. })
    ));
    for depth in [0, MAX_TREE_DEPTH + 1] {
        assert!(matches!(
            BrownianTree::new(0, 0.0, 1.0, depth),
            Err(Error::OutOfRange { .. })
        ));
    }
    for r in [0.0, -1.0, f32::NAN, 1e-12] {
        assert!(
            BrownianTree::with_resolution(0, 0.0, 1.0, r).is_err(),
            "{r}"
        );
    }
    let tree = BrownianTree::new(0, 0.0, 1.0, 4).unwrap();
    for (a, b) in [(3, 3), (4, 2), (0, 17)] {
        assert!(matches!(
            tree.increment::<1>(0, a, b),
            Err(Error::OutOfRange { .. })
        ));
    }
    assert_eq!(tree.index_of(1.5), None);
    assert_eq!(tree.index_of(1.0), Some(16));
    assert_eq!(tree.time(16), 1.0);
}

// ---------------------------------------------------------------- the adaptive solver

/// Mean absolute error at `t = 1` over `n` trajectories, and mean steps (accepted,
/// rejected) per trajectory, for tolerance `tol` (absolute and relative).
fn gbm_error<M>(method: M, tol: f32, n: usize) -> (f64, f64, f64)
where
    M: tinysde::solve::Embedded<f32, Gbm, 1>,
{
    let solver = Adaptive::new(method, tol, tol).unwrap();
    let tree = BrownianTree::new(2024, 0.0, 1.0, 22).unwrap();
    let (mut err, mut acc, mut rej) = (0.0, 0.0, 0.0);
    for m in 0..n {
        let mut out = [[0.0f32; 1]];
        let stats = solve::solve(
            &solver,
            &Gbm,
            &tree,
            &SolveRequest::new([0.5], &[1.0]).trajectory(m),
            &mut out,
        )
        .unwrap();
        let exact = gbm_exact(0.5, 1.0, w_at(&tree, m, tree.intervals()));
        err += (out[0][0] as f64 - exact).abs();
        acc += stats.accepted as f64;
        rej += stats.rejected as f64;
    }
    let n = n as f64;
    (err / n, acc / n, rej / n)
}

#[test]
fn gbm_error_falls_with_the_tolerance() {
    // The estimate of SRI methods scales like h^2 on GBM and the strong error like h^1.5,
    // so the error at t = 1 should fall like tol^0.75 and the steps grow like tol^-0.5.
    let tols = [1e-1f32, 3e-2, 1e-2, 3e-3, 1e-3];
    let x: Vec<f64> = tols.iter().map(|&t| t as f64).collect();
    for (name, run) in [
        (
            "SOSRI",
            (|t| gbm_error(Sosri, t, 300)) as fn(f32) -> (f64, f64, f64),
        ),
        ("SRIW1", |t| gbm_error(Sriw1, t, 300)),
    ] {
        let results: Vec<_> = tols.iter().map(|&t| run(t)).collect();
        for (t, r) in tols.iter().zip(&results) {
            eprintln!(
                "{name} tol {t:e}: error {:.3e}, accepted {:.1}, rejected {:.1}",
                r.0, r.1, r.2
            );
        }
        let errors: Vec<f64> = results.iter().map(|r| r.0).collect();
        let steps: Vec<f64> = results.iter().map(|r| r.1).collect();
        assert!(errors.windows(2).all(|w| w[1] < w[0]), "{name}: {errors:?}");
        assert!(steps.windows(2).all(|w| w[1] > w[0]), "{name}: {steps:?}");
        let (es, ss) = (slope(&x, &errors), slope(&x, &steps));
        eprintln!("{name}: slope of error against tolerance {es:.2}, of steps {ss:.2}");
        assert!((0.5..1.0).contains(&es), "{name}: error slope {es}");
        assert!((-0.7..-0.35).contains(&ss), "{name}: steps slope {ss}");
        // Rejections happen, but are a minority of the steps tried.
        for (t, r) in tols.iter().zip(&results).skip(2) {
            let ratio = r.2 / r.1;
            assert!(
                (0.05..0.5).contains(&ratio),
                "{name}: tol {t}, {ratio} rejected per accepted step"
            );
        }
        // The tolerance is honoured: the mean error is below it (relative to u ~ 1).
        for (t, e) in tols.iter().zip(&errors) {
            assert!(*e < 3.0 * *t as f64, "{name}: tol {t}, error {e}");
        }
    }
}

/// Mean absolute error at `t = 1` and mean accepted steps of the additive problem.
fn additive_error<M>(method: M, tol: f32, n: usize) -> (f64, f64)
where
    M: tinysde::solve::Embedded<f32, AdditiveProblem, 1>,
{
    let solver = Adaptive::new(method, tol, tol).unwrap();
    let tree = BrownianTree::new(77, 0.0, 1.0, 22).unwrap();
    let (mut err, mut acc) = (0.0, 0.0);
    for m in 0..n {
        let mut out = [[0.0f32; 1]];
        let stats = solve::solve(
            &solver,
            &AdditiveProblem,
            &tree,
            &SolveRequest::new([1.0], &[1.0]).trajectory(m),
            &mut out,
        )
        .unwrap();
        let w = w_at(&tree, m, tree.intervals());
        let (a, b, s) = (AA as f64, AB as f64, 2f64.sqrt());
        let exact = 1.0 / s + b * (1.0 + a * w) / s;
        err += (out[0][0] as f64 - exact).abs();
        acc += stats.accepted as f64;
    }
    (err / n as f64, acc / n as f64)
}

#[test]
fn additive_error_falls_with_the_tolerance() {
    let tols = [1e-3f32, 3e-4, 1e-4, 3e-5];
    let x: Vec<f64> = tols.iter().map(|&t| t as f64).collect();
    for (name, run) in [
        (
            "SOSRA",
            (|t| additive_error(Sosra, t, 200)) as fn(f32) -> (f64, f64),
        ),
        ("SRA1", |t| additive_error(Sra1, t, 200)),
        ("SOSRI", |t| additive_error(Sosri, t, 200)),
    ] {
        let results: Vec<_> = tols.iter().map(|&t| run(t)).collect();
        for (t, r) in tols.iter().zip(&results) {
            eprintln!("{name} tol {t:e}: error {:.3e}, accepted {:.1}", r.0, r.1);
        }
        let errors: Vec<f64> = results.iter().map(|r| r.0).collect();
        let es = slope(&x, &errors);
        eprintln!("{name}: slope of error against tolerance {es:.2}");
        assert!(errors.windows(2).all(|w| w[1] < w[0]), "{name}: {errors:?}");
        assert!(es > 0.5, "{name}: error slope {es}");
        for (t, e) in tols.iter().zip(&errors) {
            assert!(*e < 3.0 * *t as f64, "{name}: tol {t}, error {e}");
        }
    }
}

/// Itô cubic `du = -0.25 u (1 - u^2) dt + 0.5 (1 - u^2) dW`; the diffusion depends on u.
struct Cubic;
impl<T: Real> Sde<T, 1> for Cubic {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * (T::ONE - u[0] * u[0]) * -0.25]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [(T::ONE - u[0] * u[0]) * 0.5]
    }
}

/// Itô wave `du = -0.01 sin u cos^3 u dt + 0.1 cos^2 u dW`, as scalar noise.
struct Wave;
impl<T: Real> Sde<T, 1> for Wave {
    const NOISE: NoiseKind = NoiseKind::Scalar;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        let c = u[0].cos();
        [u[0].sin() * c * c * c * -0.01]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        let c = u[0].cos();
        [c * c * 0.1]
    }
}

#[test]
fn strong_errors_against_exact_solutions_fall_with_the_tolerance() {
    // Mean over trajectories of the largest error over the save times.
    fn strong<S: Sde<f32, 1>>(sde: &S, u0: f32, exact: fn(f64, f64) -> f64, tol: f32) -> f64 {
        let tree = BrownianTree::new(606, 0.0, 1.0, 20).unwrap();
        let solver = Adaptive::new(Sosri, tol, tol).unwrap();
        let times = [0.25f32, 0.5, 0.75, 1.0];
        let n = 100;
        let mut total = 0.0;
        for m in 0..n {
            let mut out = [[0.0f32; 1]; 4];
            solve::solve(
                &solver,
                sde,
                &tree,
                &SolveRequest::new([u0], &times).trajectory(m),
                &mut out,
            )
            .unwrap();
            let mut worst = 0.0f64;
            for (t, u) in times.iter().zip(&out) {
                let w = w_at(&tree, m, tree.index_of(*t).unwrap());
                worst = worst.max((u[0] as f64 - exact(u0 as f64, w)).abs());
            }
            total += worst;
        }
        total / n as f64
    }
    let cubic = |u0: f64, w: f64| {
        let e = w.exp();
        ((1.0 + u0) * e + u0 - 1.0) / ((1.0 + u0) * e + 1.0 - u0)
    };
    let wave = |u0: f64, w: f64| (0.1 * w + u0.tan()).atan();
    let errors = [1e-2f32, 1e-3, 1e-4].map(|t| strong(&Cubic, 0.5, cubic, t));
    eprintln!("cubic: errors at tol 1e-2, 1e-3, 1e-4: {errors:?}");
    assert!(
        errors[1] < 0.5 * errors[0] && errors[2] < 0.5 * errors[1],
        "{errors:?}"
    );
    // Local control: the global error is a small multiple of the tolerance.
    assert!(errors[2] < 5e-4, "{errors:?}");
    // The wave (scalar noise) is so gentle that every tolerance reaches f32 round-off.
    let errors = [1e-2f32, 1e-4].map(|t| strong(&Wave, 1.0, wave, t));
    eprintln!("wave: errors at tol 1e-2, 1e-4: {errors:?}");
    assert!(errors.iter().all(|&e| e < 1e-5), "{errors:?}");
}

#[test]
fn pure_brownian_motion_is_reproduced_at_every_save_time() {
    let tree = BrownianTree::new(9, 0.0, 1.0, 20).unwrap();
    let times = [0.1, 0.3, 0.5, 0.7, 0.9, 1.0];
    let solver = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    for m in 0..20 {
        let mut out = [[f32::NAN; 1]; 6];
        let stats = solve::solve(
            &solver,
            &Bm,
            &tree,
            &SolveRequest::new([0.0], &times).trajectory(m),
            &mut out,
        )
        .unwrap();
        // A constant diffusion makes the estimate exactly zero: no rejection, and steps
        // grow up to the save times.
        assert_eq!(stats.rejected, 0);
        for (t, u) in times.iter().zip(&out) {
            let w = w_at(&tree, m, tree.index_of(*t).unwrap());
            assert!((u[0] as f64 - w).abs() < 1e-5, "t {t}: {} vs {w}", u[0]);
        }
    }
}

#[test]
fn weak_moments_are_unbiased_under_heavy_rejection() {
    // Steps far too large at first, no safety margin, fast growth: many rejections, and
    // the steps depend on the very noise the witness component integrates.
    let options = AdaptiveOptions {
        abstol: 1e-2,
        reltol: 1e-2,
        initial_step: Some(1.0),
        safety: 1.0,
        max_factor: 10.0,
        ..AdaptiveOptions::default()
    };
    let solver = Adaptive::with_options(Sosri, options).unwrap();
    let tree = BrownianTree::new(31337, 0.0, 1.0, 20).unwrap();
    let times = [0.5, 1.0];
    let n = 20_000;
    let (mut mean, mut var) = ([[0.0f32; 2]; 2], [[0.0f32; 2]; 2]);
    let stats = solve::simulate_into(
        &solver,
        &GbmAndWitness,
        &tree,
        &EnsembleRequest::new([0.5, 0.0], n, &times),
        EnsembleBuffers::new(&mut mean, &mut var),
    )
    .unwrap();
    let ratio = stats.rejected as f64 / stats.accepted as f64;
    eprintln!(
        "accepted {} rejected {} ({ratio:.2} per accepted step)",
        stats.accepted, stats.rejected
    );
    assert!(ratio > 0.25, "not heavy rejection: {ratio}");
    let nf = n as f64;
    for (i, &t) in times.iter().enumerate() {
        let t = t as f64;
        // The witness is W itself: mean 0, variance t.
        let (m_w, v_w) = (mean[i][1] as f64, var[i][1] as f64);
        assert!(m_w.abs() < 4.0 * (t / nf).sqrt(), "E W({t}) = {m_w}");
        assert!(
            (v_w / t - 1.0).abs() < 4.0 * (2.0 / nf).sqrt(),
            "Var W({t}) = {v_w}"
        );
        // GBM: E u = u0 e^(a t), Var u = u0^2 e^(2 a t) (e^(b^2 t) - 1).
        let (a, b) = (A as f64, B as f64);
        let m_exact = 0.5 * (a * t).exp();
        let v_exact = 0.25 * (2.0 * a * t).exp() * ((b * b * t).exp() - 1.0);
        let se = (v_exact / nf).sqrt();
        let m_u = mean[i][0] as f64;
        assert!(
            (m_u - m_exact).abs() < 4.0 * se + 0.01 * m_exact,
            "E u({t}) = {m_u} vs {m_exact}"
        );
        let v_u = var[i][0] as f64;
        assert!(
            (v_u / v_exact - 1.0).abs() < 0.15,
            "Var u({t}) = {v_u} vs {v_exact}"
        );
    }
}

#[test]
fn forward_mode_gradients_follow_the_accepted_steps() {
    // L = sum over save times of u^2 / 2 along the realized path; the exact pathwise
    // gradient in (a, b) is known in closed form.
    let tree = BrownianTree::new(5, 0.0, 1.0, 22).unwrap();
    let times = [0.25f32, 0.5, 0.75, 1.0];
    let solver = Adaptive::new(Sosri, 1e-4, 1e-4).unwrap();
    for m in 0..10 {
        let mut plain = [[0.0f32; 1]; 4];
        let s_plain = solve::solve(
            &solver,
            &Gbm,
            &tree,
            &SolveRequest::new([0.5], &times).trajectory(m),
            &mut plain,
        )
        .unwrap();
        let mut dual = [[Dual::<2>::ZERO; 1]; 4];
        let s_dual = solve::solve(
            &solver,
            &Seeded {
                sde: &Gbm,
                seed: ParamSeed::window(0),
            },
            &tree,
            &SolveRequest::new([Dual::constant(0.5)], &times).trajectory(m),
            &mut dual,
        )
        .unwrap();
        // The same steps, the same values, bit for bit.
        assert_eq!(s_plain, s_dual);
        for (p, d) in plain.iter().zip(&dual) {
            assert_eq!(p[0], d[0].value());
        }
        // One lane at a time gives the same tangents.
        let mut lane1 = [[Dual::<1>::ZERO; 1]; 4];
        solve::solve(
            &solver,
            &Seeded {
                sde: &Gbm,
                seed: ParamSeed::window(1),
            },
            &tree,
            &SolveRequest::new([Dual::constant(0.5)], &times).trajectory(m),
            &mut lane1,
        )
        .unwrap();
        let (mut g_a, mut g_b, mut e_a, mut e_b) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (i, &t) in times.iter().enumerate() {
            assert_eq!(lane1[i][0].tangent(0), dual[i][0].tangent(1));
            let u = dual[i][0];
            g_a += (u.value() * u.tangent(0)) as f64;
            g_b += (u.value() * u.tangent(1)) as f64;
            let t = t as f64;
            let w = w_at(&tree, m, tree.index_of(t as f32).unwrap());
            let (a, b) = (A as f64, B as f64);
            let sq = 0.25 * (2.0 * (a - b * b / 2.0) * t + 2.0 * b * w).exp();
            e_a += t * sq;
            e_b += (w - b * t) * sq;
        }
        assert!(
            (g_a - e_a).abs() < 1e-2 * e_a.abs().max(0.1),
            "dL/da {g_a} vs {e_a}"
        );
        assert!(
            (g_b - e_b).abs() < 1e-2 * e_b.abs().max(0.1),
            "dL/db {g_b} vs {e_b}"
        );
    }
}

#[test]
fn ensemble_statistics_carry_the_gradient_training_needs() {
    // The mean and variance of an ensemble over duals differentiate the statistics of the
    // exact pathwise derivatives du/da = t u and du/db = (W - b t) u.
    let tree = BrownianTree::new(21, 0.0, 1.0, 20).unwrap();
    let times = [0.5f32, 1.0];
    let n = 32;
    let solver = Adaptive::new(Sosri, 1e-4, 1e-4).unwrap();
    let zero = [Dual::<2>::ZERO];
    let (mut mean, mut var) = ([zero; 2], [zero; 2]);
    solve::simulate_into(
        &solver,
        &Seeded {
            sde: &Gbm,
            seed: ParamSeed::window(0),
        },
        &tree,
        &EnsembleRequest::new([Dual::constant(0.5)], n, &times),
        EnsembleBuffers::new(&mut mean, &mut var),
    )
    .unwrap();
    let b = B as f64;
    for (i, &t) in times.iter().enumerate() {
        let j = tree.index_of(t).unwrap();
        let t = t as f64;
        let paths: Vec<(f64, [f64; 2])> = (0..n)
            .map(|m| {
                let w = w_at(&tree, m, j);
                let u = gbm_exact(0.5, t, w);
                (u, [t * u, (w - b * t) * u])
            })
            .collect();
        let nf = n as f64;
        let u_bar = paths.iter().map(|p| p.0).sum::<f64>() / nf;
        for lane in 0..2 {
            let d_bar = paths.iter().map(|p| p.1[lane]).sum::<f64>() / nf;
            let d_var = 2.0 / (nf - 1.0)
                * paths
                    .iter()
                    .map(|p| (p.0 - u_bar) * (p.1[lane] - d_bar))
                    .sum::<f64>();
            let (gm, gv) = (
                mean[i][0].tangent(lane) as f64,
                var[i][0].tangent(lane) as f64,
            );
            assert!(
                (gm - d_bar).abs() < 1e-2 * d_bar.abs().max(0.1),
                "t {t} lane {lane}: mean {gm} vs {d_bar}"
            );
            assert!(
                (gv - d_var).abs() < 2e-2 * d_var.abs().max(0.1),
                "t {t} lane {lane}: var {gv} vs {d_var}"
            );
        }
    }
}

#[test]
fn parallel_ensembles_are_bit_identical_to_serial() {
    let tree = BrownianTree::new(12, 0.0, 1.0, 18).unwrap();
    let times = [0.2, 0.6, 1.0];
    let solver = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    let n = 37;
    let (mut mean, mut var, mut paths) =
        ([[0.0f32; 1]; 3], [[0.0f32; 1]; 3], vec![[0.0f32; 1]; n * 3]);
    let stats = solve::simulate_into(
        &solver,
        &Gbm,
        &tree,
        &EnsembleRequest::new([0.5], n, &times),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    )
    .unwrap();
    for threads in [1, 2, 3, 0] {
        let (mut m2, mut v2, mut p2) =
            ([[0.0f32; 1]; 3], [[0.0f32; 1]; 3], vec![[0.0f32; 1]; n * 3]);
        let s2 = solve::simulate_into(
            &solver,
            &Gbm,
            &tree,
            &EnsembleRequest::new([0.5], n, &times).on_threads(threads),
            EnsembleBuffers {
                mean: &mut m2,
                variance: &mut v2,
                paths: Some(&mut p2),
            },
        )
        .unwrap();
        assert_eq!(
            (mean, var, &paths, stats),
            (m2, v2, &p2, s2),
            "{threads} threads"
        );
    }
    // Each path is the single-trajectory solve.
    let mut out = [[0.0f32; 1]; 3];
    solve::solve(
        &solver,
        &Gbm,
        &tree,
        &SolveRequest::new([0.5], &times).trajectory(17),
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..], &paths[17 * 3..18 * 3]);
}

#[test]
fn adaptive_takes_fewer_steps_than_fixed_on_a_sharp_transient() {
    // Relative error at t = 0.6, shortly after the switch.
    let n = 200;
    let tree = BrownianTree::new(4, 0.0, 1.0, 22).unwrap();
    let solver = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    let (mut err, mut steps) = (0.0f64, 0u64);
    for m in 0..n {
        let mut out = [[0.0f32; 1]];
        let s = solve::solve(
            &solver,
            &Switch,
            &tree,
            &SolveRequest::new([1.0], &[0.6]).trajectory(m),
            &mut out,
        )
        .unwrap();
        steps += s.accepted + s.rejected;
        let exact = switch_exact(1.0, 0.6, w_at(&tree, m, tree.index_of(0.6).unwrap()));
        err += (out[0][0] as f64 / exact - 1.0).abs();
    }
    let (err, steps) = (err / n as f64, steps as f64 / n as f64);
    // Fixed steps, twice as many as the adaptive solver tried (rejections included).
    let fixed_steps = (2.0 * steps).ceil() as u32;
    let fixed = Solver::new(Sosri, TimeGrid::new(0.0, 0.6, fixed_steps).unwrap());
    let noise = tinysde::noise::Brownian::new(4);
    let mut fixed_err = 0.0f64;
    for m in 0..n {
        let mut out = [[0.0f32; 1]];
        solve::solve(
            &fixed,
            &Switch,
            &noise,
            &SolveRequest::new([1.0], &[0.6]).trajectory(m),
            &mut out,
        )
        .unwrap();
        let w: f64 = (0..fixed_steps)
            .map(|k| {
                use tinysde::noise::NoiseSource;
                noise
                    .increment::<1>(m, k, fixed.grid.h(), false)
                    .unwrap()
                    .dw[0] as f64
            })
            .sum();
        fixed_err += (out[0][0] as f64 / switch_exact(1.0, 0.6, w) - 1.0).abs();
    }
    let fixed_err = fixed_err / n as f64;
    eprintln!("adaptive: {steps:.1} steps, error {err:.2e}; fixed: {fixed_steps} steps, error {fixed_err:.2e}");
    assert!(fixed_err > 2.0 * err, "fixed {fixed_err} vs adaptive {err}");
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_tolerances_and_options_are_typed_errors() {
    let bad = [
        (-1e-3, 1e-3),
        (1e-3, -1e-3),
        (f32::NAN, 1e-3),
        (1e-3, f32::INFINITY),
        (0.0, 0.0),
    ];
    for (abstol, reltol) in bad {
        assert!(
            matches!(
                Adaptive::new(Sosri, abstol, reltol),
                Err(Error::OutOfRange { .. })
            ),
            "{abstol} {reltol}"
        );
    }
    assert!(Adaptive::new(Sosri, 0.0, 1e-3).is_ok());
    let base = AdaptiveOptions::default();
    let cases = [
        AdaptiveOptions {
            initial_step: Some(0.0),
            ..base
        },
        AdaptiveOptions {
            initial_step: Some(f32::NAN),
            ..base
        },
        AdaptiveOptions {
            min_step: -1.0,
            ..base
        },
        AdaptiveOptions {
            max_step: 0.0,
            ..base
        },
        AdaptiveOptions {
            min_step: 0.5,
            max_step: 0.1,
            ..base
        },
        AdaptiveOptions {
            max_steps: 0,
            ..base
        },
        AdaptiveOptions {
            safety: 1.5,
            ..base
        },
        AdaptiveOptions {
            min_factor: 1.0,
            ..base
        },
        AdaptiveOptions {
            max_factor: 1.0,
            ..base
        },
    ];
    for options in cases {
        assert!(
            matches!(
                Adaptive::with_options(Sosri, options),
                Err(Error::OutOfRange { .. })
            ),
            "{options:?}"
        );
    }
    // Options are public fields: a solve re-checks them and touches nothing.
    let mut solver = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    solver.options.abstol = f32::NAN;
    let tree = BrownianTree::new(0, 0.0, 1.0, 10).unwrap();
    let mut out = [[7.0f32; 1]];
    assert!(solve::solve(
        &solver,
        &Gbm,
        &tree,
        &SolveRequest::new([0.5], &[1.0]),
        &mut out
    )
    .is_err());
    assert_eq!(out, [[7.0]]);
}

#[test]
fn bad_solve_inputs_are_typed_errors_and_touch_nothing() {
    let solver = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    let tree = BrownianTree::new(0, 0.0, 1.0, 10).unwrap();
    let mut out = [[7.0f32; 1]; 2];
    let run = |times: &[f32], u0: f32, out: &mut [[f32; 1]]| {
        solve::solve(&solver, &Gbm, &tree, &SolveRequest::new([u0], times), out)
    };
    assert_eq!(
        run(&[0.5, 1.5], 0.5, &mut out),
        Err(Error::SaveTime { index: 1 })
    );
    assert_eq!(
        run(&[0.5, 0.4], 0.5, &mut out),
        Err(Error::SaveTime { index: 1 })
    );
    // Two save times on the same grid point (spacing 2^-10).
    assert_eq!(
        run(&[0.5, 0.5 + 1e-5], 0.5, &mut out),
        Err(Error::SaveTime { index: 1 })
    );
    assert_eq!(
        run(&[-0.1, 0.5], 0.5, &mut out),
        Err(Error::SaveTime { index: 0 })
    );
    assert_eq!(
        run(&[0.5, 1.0], f32::NAN, &mut out),
        Err(Error::NonFinite {
            what: "initial state",
            index: 0
        })
    );
    assert!(matches!(
        run(&[0.5], 0.5, &mut out),
        Err(Error::Length { .. })
    ));
    assert_eq!(out, [[7.0]; 2]);
    // SOSRA needs additive noise.
    let sosra = Adaptive::new(Sosra, 1e-3, 1e-3).unwrap();
    assert_eq!(
        solve::solve(
            &sosra,
            &Gbm,
            &tree,
            &SolveRequest::new([0.5], &[1.0]),
            &mut out[..1]
        ),
        Err(Error::UnsupportedNoise {
            method: "SOSRA",
            noise: NoiseKind::Diagonal
        })
    );
    assert_eq!(out, [[7.0]; 2]);
    let (mut mean, mut var) = ([[7.0f32; 1]; 2], [[7.0f32; 1]; 2]);
    assert!(matches!(
        solve::simulate_into(
            &solver,
            &Gbm,
            &tree,
            &EnsembleRequest::new([0.5], 0, &[0.5, 1.0]),
            EnsembleBuffers::new(&mut mean, &mut var)
        ),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!((mean, var), ([[7.0]; 2], [[7.0]; 2]));
}

#[test]
fn step_budget_and_minimum_step_are_typed_errors() {
    let tree = BrownianTree::new(0, 0.0, 1.0, 16).unwrap();
    let times = [0.001, 1.0];
    let few = Adaptive::with_options(
        Sosri,
        AdaptiveOptions {
            abstol: 1e-4,
            reltol: 1e-4,
            max_steps: 5,
            ..AdaptiveOptions::default()
        },
    )
    .unwrap();
    let mut out = [[7.0f32; 1]; 2];
    let e = solve::solve(
        &few,
        &Gbm,
        &tree,
        &SolveRequest::new([0.5], &times),
        &mut out,
    );
    assert!(
        matches!(e, Err(Error::MaxSteps { trajectory: 0, t }) if t > 0.0 && t < 1.0),
        "{e:?}"
    );
    // Nothing is written on error, though the first save time was reached.
    assert_eq!(out, [[7.0]; 2]);
    // Ensembles too: with the statistics kept on the stack, with paths (two passes), and
    // threaded. Trajectory 0 reaches the first save time before failing.
    let (mut mean, mut var, mut paths) = ([[7.0f32; 1]; 2], [[7.0f32; 1]; 2], [[7.0f32; 1]; 8]);
    let e = solve::simulate_into(
        &few,
        &Gbm,
        &tree,
        &EnsembleRequest::new([0.5], 4, &times),
        EnsembleBuffers::new(&mut mean, &mut var),
    );
    assert!(
        matches!(e, Err(Error::MaxSteps { trajectory: 0, .. })),
        "{e:?}"
    );
    let e = solve::simulate_into(
        &few,
        &Gbm,
        &tree,
        &EnsembleRequest::new([0.5], 4, &times),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    );
    assert!(
        matches!(e, Err(Error::MaxSteps { trajectory: 0, .. })),
        "{e:?}"
    );
    let e = solve::simulate_into(
        &few,
        &Gbm,
        &tree,
        &EnsembleRequest::new([0.5], 4, &times).on_threads(2),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    );
    assert!(
        matches!(e, Err(Error::MaxSteps { trajectory: 0, .. })),
        "{e:?}"
    );
    assert_eq!((mean, var, paths), ([[7.0]; 2], [[7.0]; 2], [[7.0]; 8]));
    // A solve with more save times than fit on the stack solves twice; same result.
    let many: Vec<f32> = (1..=40).map(|k| k as f32 / 40.0).collect();
    let ok = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    let mut long = vec![[0.0f32; 1]; 40];
    solve::solve(
        &ok,
        &Gbm,
        &tree,
        &SolveRequest::new([0.5], &many).trajectory(1),
        &mut long,
    )
    .unwrap();
    let mut short = [[0.0f32; 1]; 2];
    solve::solve(
        &ok,
        &Gbm,
        &tree,
        &SolveRequest::new([0.5], &[many[19], many[39]]).trajectory(1),
        &mut short,
    )
    .unwrap();
    assert!((short[1][0] - long[39][0]).abs() < 1e-3 * long[39][0].abs());
    assert!(long.iter().all(|u| u[0].is_finite() && u[0] > 0.0));

    let coarse = Adaptive::with_options(
        Sosri,
        AdaptiveOptions {
            abstol: 1e-6,
            reltol: 1e-6,
            min_step: 0.25,
            ..AdaptiveOptions::default()
        },
    )
    .unwrap();
    let mut out = [[7.0f32; 1]];
    let e = solve::solve(
        &coarse,
        &Gbm,
        &tree,
        &SolveRequest::new([0.5], &[1.0]).trajectory(3),
        &mut out,
    );
    assert!(
        matches!(e, Err(Error::StepSizeTooSmall { trajectory: 3, .. })),
        "{e:?}"
    );
    assert_eq!(out, [[7.0]]);
}

// ---------------------------------------------------------------- no allocation

use crate::alloc_counter;

#[test]
fn adaptive_solves_and_ensembles_allocate_nothing() {
    assert_eq!(
        alloc_counter::allocations(|| drop(std::hint::black_box(vec![1u8; 16]))).0,
        1
    );
    let tree = BrownianTree::new(1, 0.0, 1.0, 20).unwrap();
    let times = [0.25, 0.5, 1.0];
    let sosri = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    let sra1 = Adaptive::new(Sra1, 1e-4, 1e-4).unwrap();
    let (count, ()) = alloc_counter::allocations(|| {
        let mut out = [[0.0f32; 1]; 3];
        solve::solve(
            &sosri,
            &Gbm,
            &tree,
            &SolveRequest::new([0.5], &times),
            &mut out,
        )
        .unwrap();
        solve::solve(
            &sra1,
            &AdditiveProblem,
            &tree,
            &SolveRequest::new([1.0], &times),
            &mut out,
        )
        .unwrap();
        let (mut mean, mut var, mut paths) =
            ([[0.0f32; 1]; 3], [[0.0f32; 1]; 3], [[0.0f32; 1]; 24]);
        solve::simulate_into(
            &sosri,
            &Gbm,
            &tree,
            &EnsembleRequest::new([0.5], 8, &times),
            EnsembleBuffers {
                mean: &mut mean,
                variance: &mut var,
                paths: Some(&mut paths),
            },
        )
        .unwrap();
        let zero = [Dual::<2>::ZERO];
        let (mut mean, mut var) = ([zero; 3], [zero; 3]);
        solve::simulate_into(
            &sosri,
            &Seeded {
                sde: &Gbm,
                seed: ParamSeed::window(0),
            },
            &tree,
            &EnsembleRequest::new([Dual::constant(0.5)], 8, &times),
            EnsembleBuffers::new(&mut mean, &mut var),
        )
        .unwrap();
        std::hint::black_box((&out, &mean, &var, &paths));
    });
    assert_eq!(count, 0);
}

// ---------------------------------------------------------------- training

/// GBM with its rates as trainable parameters.
struct GbmParams([f32; 2]);
impl<T: Real> Sde<T, 1> for GbmParams {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(self.0[0], 0)]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(self.0[1], 1)]
    }
}

#[test]
fn training_through_adaptive_ensembles_recovers_gbm_rates() {
    use tinysde::train::{Adam, AdamConfig, Optimizer};
    // Method of moments: the exact mean and variance of GBM(1.01, 0.87) at four times,
    // fitted from (0.3, 0.3) with Adam on gradients of adaptive ensembles over duals.
    let times = [0.25f32, 0.5, 0.75, 1.0];
    let u0 = 0.5f64;
    let (a, b) = (A as f64, B as f64);
    let target: Vec<(f64, f64)> = times
        .iter()
        .map(|&t| {
            let t = t as f64;
            let m = u0 * (a * t).exp();
            (m, m * m * ((b * b * t).exp() - 1.0))
        })
        .collect();
    let tree = BrownianTree::new(808, 0.0, 1.0, 18).unwrap();
    let solver = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    let mut model = GbmParams([0.3, 0.3]);
    let mut adam = Adam::new(AdamConfig::lr(0.1), [0.0f32; 2], [0.0f32; 2]).unwrap();
    let mut losses = Vec::new();
    for _ in 0..120 {
        let zero = [Dual::<2>::ZERO];
        let (mut mean, mut var) = ([zero; 4], [zero; 4]);
        solve::simulate_into(
            &solver,
            &Seeded {
                sde: &model,
                seed: ParamSeed::window(0),
            },
            &tree,
            &EnsembleRequest::new([Dual::constant(u0 as f32)], 128, &times),
            EnsembleBuffers::new(&mut mean, &mut var),
        )
        .unwrap();
        let mut loss = Dual::<2>::ZERO;
        for (i, &(m, v)) in target.iter().enumerate() {
            let dm = mean[i][0] - m as f32;
            let dv = var[i][0] - v as f32;
            loss += dm * dm + dv * dv;
        }
        losses.push(loss.value());
        let grad = [loss.tangent(0), loss.tangent(1)];
        adam.step(&mut model.0, &grad).unwrap();
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    eprintln!("loss {first:.3e} -> {last:.3e}, rates {:?}", model.0);
    // 128 lognormal samples estimate the variance loosely: the fitted noise rate sits
    // within sampling error of the truth, the drift rate closer.
    assert!(last < 0.05 * first, "loss {first} -> {last}");
    assert!((model.0[0] - A).abs() < 0.1, "a = {}", model.0[0]);
    assert!((model.0[1] - B).abs() < 0.25, "b = {}", model.0[1]);
}

/// `du = 1e25 dW`: finite states whose variance does not fit in `f32`.
struct Huge;
impl<T: Real> Sde<T, 1> for Huge {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::ZERO]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::cst(1e25)]
    }
}

#[test]
fn overflowing_statistics_are_typed_errors_and_touch_nothing() {
    let tree = BrownianTree::new(2, 0.0, 1.0, 12).unwrap();
    let solver = Adaptive::new(Sosra, 1e-3, 1e-3).unwrap();
    let times = [0.5, 1.0];
    let (mut mean, mut var, mut paths) = ([[7.0f32; 1]; 2], [[7.0f32; 1]; 2], [[7.0f32; 1]; 8]);
    // The variance at t = 0.5 (index 0) is already about 1e50.
    let e = solve::simulate_into(
        &solver,
        &Huge,
        &tree,
        &EnsembleRequest::new([0.0], 4, &times),
        EnsembleBuffers::new(&mut mean, &mut var),
    );
    assert_eq!(e, Err(Error::StatisticsOverflow { index: 0 }));
    let e = solve::simulate_into(
        &solver,
        &Huge,
        &tree,
        &EnsembleRequest::new([0.0], 4, &times),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    );
    assert_eq!(e, Err(Error::StatisticsOverflow { index: 0 }));
    let e = solve::simulate_into(
        &solver,
        &Huge,
        &tree,
        &EnsembleRequest::new([0.0], 4, &times).on_threads(2),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    );
    assert_eq!(e, Err(Error::StatisticsOverflow { index: 0 }));
    assert_eq!((mean, var, paths), ([[7.0]; 2], [[7.0]; 2], [[7.0]; 8]));
}

/// The request form computes the positional ensemble bit for bit (statistics, paths and
/// step counts), on any number of threads, and writes nothing on error.
#[test]
fn adaptive_requests_compute_the_same_ensemble() {
    use tinysde::solve::{EnsembleBuffers, EnsembleRequest};
    let tree = BrownianTree::new(3, 0.0, 1.0, 12).unwrap();
    let solver = Adaptive::new(Sosri, 1e-3, 1e-3).unwrap();
    let times = [0.25, 0.5, 1.0];
    let (m, n) = (13, times.len());
    let (mut mean, mut var, mut paths) = (
        vec![[0.0f32; 1]; n],
        vec![[0.0f32; 1]; n],
        vec![[0.0f32; 1]; m * n],
    );
    let stats = solve::simulate_into(
        &solver,
        &Gbm,
        &tree,
        &EnsembleRequest::new([1.0], m, &times),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    )
    .unwrap();
    for threads in [1, 3] {
        let request = EnsembleRequest::new([1.0f32], m, &times)
            .with_paths()
            .on_threads(threads);
        let ensemble = solve::simulate(&solver, &Gbm, &tree, &request).unwrap();
        let s = ensemble.stats;
        assert_eq!(
            (ensemble.mean.clone(), ensemble.variance.clone()),
            (mean.clone(), var.clone())
        );
        assert_eq!(ensemble.paths.as_deref(), Some(paths.as_slice()));
        assert_eq!((s.accepted, s.rejected), (stats.accepted, stats.rejected));
    }
    let (mut mean2, mut var2, mut paths2) = (
        vec![[0.0f32; 1]; n],
        vec![[0.0f32; 1]; n],
        vec![[0.0f32; 1]; m * n],
    );
    let out = EnsembleBuffers {
        mean: &mut mean2,
        variance: &mut var2,
        paths: Some(&mut paths2),
    };
    let request = EnsembleRequest::new([1.0f32], m, &times);
    solve::simulate_into(&solver, &Gbm, &tree, &request, out).unwrap();
    assert_eq!((mean2, var2, paths2), (mean, var, paths));
    // A save time off the tree's range: an error, and the buffers as they were.
    let (mut mean3, mut var3) = (vec![[7.0f32; 1]; 2], vec![[7.0f32; 1]; 2]);
    let out = EnsembleBuffers {
        mean: &mut mean3,
        variance: &mut var3,
        paths: None,
    };
    let bad = EnsembleRequest::new([1.0f32], m, &[0.5, 2.0]);
    assert!(solve::simulate_into(&solver, &Gbm, &tree, &bad, out).is_err());
    assert_eq!((mean3, var3), (vec![[7.0f32; 1]; 2], vec![[7.0f32; 1]; 2]));
    assert!(solve::simulate(&solver, &Gbm, &tree, &bad).is_err());
}
