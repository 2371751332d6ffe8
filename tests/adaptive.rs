//! The Brownian tree and the adaptive solver: the tree's law and consistency, error against
//! tolerance, strong errors against exact solutions, weak moments under heavy rejection,
//! forward-mode gradients through the accepted steps, determinism, and bad input.

use tinysde::nn::ParamSeed;
use tinysde::noise::{BrownianTree, Increment, MAX_TREE_DEPTH};
use tinysde::sde::Sde;
use tinysde::solve::{Adaptive, AdaptiveOptions, Solver, Sosra, Sosri, Sra1, Sriw1, TimeGrid};
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

/// A sharp transient: GBM whose rate has a pulse of width `EPS` at `t = 1/2`,
/// `a(t) = -(P / EPS) sech^2((t - 1/2) / EPS)`, so `log u` drops by about `2 P` within a
/// few `EPS`. Exact: `u0 exp(-P (tanh((t - 1/2)/EPS) + tanh(1/(2 EPS))) - s^2 t / 2 + s W)`.
struct Pulse;
const P: f64 = 1.0;
const EPS: f64 = 0.01;
const SIGMA: f32 = 0.5;
impl<T: Real> Sde<T, 1> for Pulse {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, t: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        let x = (t - 0.5) / EPS as f32;
        let c = cosh(x);
        [u[0] * (-(P as f32) / EPS as f32 / (c * c))]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * SIGMA]
    }
}

/// `cosh`; it overflows to infinity far from the pulse, where `sech^2` is 0 anyway.
fn cosh(x: f32) -> f32 {
    let e = x.abs().exp();
    0.5 * (e + 1.0 / e)
}

fn pulse_exact(u0: f64, t: f64, w: f64) -> f64 {
    let s = SIGMA as f64;
    u0 * (-P * (((t - 0.5) / EPS).tanh() + (0.5 / EPS).tanh()) - s * s * t / 2.0 + s * w).exp()
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
    assert!((s_12 / n / (h1 * h2).sqrt()).abs() < 4.0 * se, "cov(dW1, dW2)");
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
                let i = integral(&a, c, h(j0, j1)) + integral(&b, c, h(j1, j2)) + h(j1, j2) * a.dw[c] as f64;
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
        assert!((from_query - integral).abs() < 1e-5, "{from_query} vs {integral}");
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
    assert_ne!(reseeded.increment::<1>(5, 123, 456_789).unwrap().dw[0], one.dw[0]);
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
        assert!(BrownianTree::with_resolution(0, 0.0, 1.0, r).is_err(), "{r}");
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
