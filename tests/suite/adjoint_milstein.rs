//! Milstein's discrete adjoint: the tangent vector–Jacobian products of the layers (second
//! derivatives) against forward mode, the neural SDE's Milstein VJP against forward mode,
//! reverse = forward for Milstein on neural, scalar-noise and GBM models on uniform and
//! uneven grids, GBM's closed-form gradient of the discrete solution and its convergence to
//! the pathwise gradient of the exact solution, finite differences with common random
//! numbers, and no allocation.

use tinysde::grad::{loss_and_gradient, loss_value, reverse, Loss, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::grad::{Forward, Reverse};
use tinysde::nn::{
    Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Layer, ParamSeed, Parameters, Relu,
    Sigmoid, Softplus, TangentBackward, Tanh,
};
use tinysde::noise::{Brownian, Coarsened, NoiseSource};
use tinysde::sde::{MilsteinVjp, NeuralSde, Sde, SdeVjp};
use tinysde::solve::{Checkpoints, Milstein, Solver, StepVjp, TimeGrid};
use tinysde::train::EnsembleFit;
use tinysde::train::{MeanSquaredError, MomentMatching};
use tinysde::{Directional, Dual, NoiseKind, Real};

use crate::alloc_counter::allocations;

/// Deterministic pseudo-random values in [-1, 1).
fn values(seed: u64, out: &mut [f32]) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for x in out.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *x = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
    }
}

fn init_params<L: Parameters>(layer: &mut L, seed: u64, scale: f32) {
    let mut p = vec![0.0f32; L::PARAMS];
    values(seed, &mut p);
    for x in &mut p {
        *x *= scale;
    }
    layer.write_params(&p).unwrap();
}

fn close(a: f32, b: f32, rel: f32, what: &str) {
    assert!(
        (a - b).abs() <= rel * (1.0 + a.abs().max(b.abs())),
        "{what}: reverse {a} vs forward {b}"
    );
}

type Dd1 = Directional<Dual<1>>;

/// The tangent VJP of a layer against forward mode on `Directional<Dual<1>>`: the scalar
/// `φ = ȳ·y + ẏ̄·ẏ` differentiated in every parameter, input and direction component.
fn check_tangent_vjp<L, const I: usize, const O: usize>(layer: &L, seed: u64)
where
    L: TangentBackward + Layer<f32, Input = [f32; I], Output = [f32; O]>,
    L: Layer<Directional<f32>, Input = [Directional<f32>; I], Output = [Directional<f32>; O]>,
    L: Layer<Dd1, Input = [Dd1; I], Output = [Dd1; O]>,
{
    let mut buf = vec![0.0f32; 2 * I + 2 * O];
    values(seed, &mut buf);
    let x: [f32; I] = core::array::from_fn(|i| buf[i]);
    let x_dot: [f32; I] = core::array::from_fn(|i| buf[I + i]);
    let y_bar: [f32; O] = core::array::from_fn(|o| buf[2 * I + o]);
    let y_dot_bar: [f32; O] = core::array::from_fn(|o| buf[2 * I + O + o]);

    let (y, y_dot, cache) = layer.forward_tangent_cached(&x, &x_dot);
    let xd: [Directional<f32>; I] = core::array::from_fn(|i| Directional {
        v: x[i],
        d: x_dot[i],
    });
    let yd = Layer::<Directional<f32>>::forward(layer, &xd, ParamSeed::NONE);
    for o in 0..O {
        close(y[o], yd[o].v, 1e-6, "value");
        close(y_dot[o], yd[o].d, 1e-5, "derivative");
    }
    let mut p_bar = vec![0.0f32; L::PARAMS];
    let (x_bar, x_dot_bar) =
        layer.backward_tangent(&x, &x_dot, &cache, &y_bar, &y_dot_bar, &mut p_bar);
    let phi = |input: &[Dd1; I], seed: ParamSeed| -> f32 {
        let out = Layer::<Dd1>::forward(layer, input, seed);
        (0..O).fold(0.0, |a, o| {
            a + out[o].v.t[0] * y_bar[o] + out[o].d.t[0] * y_dot_bar[o]
        })
    };
    let plain: [Dd1; I] = core::array::from_fn(|i| Directional {
        v: Dual::constant(x[i]),
        d: Dual::constant(x_dot[i]),
    });
    for (j, &pb) in p_bar.iter().enumerate() {
        close(
            pb,
            phi(&plain, ParamSeed::window(j)),
            1e-5,
            &format!("parameter {j}"),
        );
    }
    for i in 0..I {
        let mut input = plain;
        input[i].v = Dual::variable(x[i], 0);
        close(
            x_bar[i],
            phi(&input, ParamSeed::NONE),
            1e-5,
            &format!("input {i}"),
        );
        let mut input = plain;
        input[i].d = Dual::variable(x_dot[i], 0);
        close(
            x_dot_bar[i],
            phi(&input, ParamSeed::NONE),
            1e-5,
            &format!("direction {i}"),
        );
    }
}

/// Every activation, the feature map and chains of two to five members.
#[test]
fn tangent_vjps_match_forward_mode() {
    macro_rules! dense {
        ($($act:ty),+) => {$({
            let mut l = Dense::<3, 5, $act>::default();
            init_params(&mut l, 3, 1.0);
            check_tangent_vjp(&l, 1);
        })+};
    }
    dense!(
        Identity,
        Tanh,
        Sigmoid,
        Relu,
        Softplus,
        FastTanh,
        FastSigmoid
    );
    check_tangent_vjp(&Cube::<3>::default(), 2);
    let mut two = (
        Dense::<3, 4, Tanh>::default(),
        Dense::<4, 5, Identity>::default(),
    );
    init_params(&mut two, 4, 0.8);
    check_tangent_vjp(&two, 5);
    let mut three = (
        Cube::<3>::default(),
        Dense::<3, 6, FastTanh>::default(),
        Dense::<6, 5, Identity>::default(),
    );
    init_params(&mut three, 5, 0.8);
    check_tangent_vjp(&three, 6);
    let mut four = (
        Dense::<3, 6, Softplus>::default(),
        Dense::<6, 6, FastSigmoid>::default(),
        Dense::<6, 7, Sigmoid>::default(),
        Dense::<7, 5, Identity>::default(),
    );
    init_params(&mut four, 6, 0.8);
    check_tangent_vjp(&four, 7);
    let mut five = (
        Cube::<3>::default(),
        Dense::<3, 6, Tanh>::default(),
        Dense::<6, 6, Sigmoid>::default(),
        Dense::<6, 4, FastTanh>::default(),
        Dense::<4, 5, Identity>::default(),
    );
    init_params(&mut five, 8, 0.8);
    check_tangent_vjp(&five, 9);
}

type Small = NeuralSde<
    (Cube<1>, Dense<1, 6, FastTanh>, Dense<6, 1, Identity>),
    (Dense<1, 6, FastSigmoid>, Dense<6, 1, Identity>),
>;

fn small_model(seed: u64) -> Small {
    let mut m = Small::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::Uniform { limit: 0.8 },
    )
    .unwrap();
    let mut p = [0.0f32; Small::PARAMS];
    m.read_params(&mut p).unwrap();
    for (i, x) in p.iter_mut().enumerate() {
        if *x == 0.0 {
            *x = 0.1 * ((i % 5) as f32 - 2.0) + 0.05;
        }
    }
    m.write_params(&p).unwrap();
    m
}

/// A 2-D neural SDE whose diffusion depends on both components (the Milstein step keeps
/// only the diagonal of its Jacobian; the adjoint differentiates that same step).
type Wide2 = NeuralSde<
    (Dense<2, 8, Tanh>, Dense<8, 2, Identity>),
    (Dense<2, 8, Sigmoid>, Dense<8, 2, Tanh>),
>;

fn wide_model(seed: u64) -> Wide2 {
    let mut m = Wide2::default();
    init_params(&mut m, seed, 0.9);
    m
}

/// The neural SDE's Milstein VJP against forward mode: `φ = ḡ·g + q̄·q` with
/// `q_i = g_i ∂g_i/∂u_i` evaluated on `Directional<Dual<1>>`.
#[test]
fn neural_milstein_vjp_matches_forward_mode() {
    let model = wide_model(11);
    let u = [0.4f32, -0.3];
    let g_bar = [0.7f32, -1.3];
    let q_bar = [-0.6f32, 0.9];
    let mut u_bar = [0.25f32, -0.5]; // added into, not overwritten
    let mut p_bar = vec![0.0f32; Wide2::PARAMS];
    model.milstein_vjp(0.0, &u, &g_bar, &q_bar, &mut u_bar, &mut p_bar);
    u_bar[0] -= 0.25;
    u_bar[1] += 0.5;
    assert!(
        p_bar[..Wide2::PARAMS - 42].iter().all(|&p| p == 0.0),
        "drift part touched"
    );
    let phi = |ud: [Dual<1>; 2], seed: ParamSeed| -> f32 {
        let mut total = 0.0;
        for i in 0..2 {
            let mut x = ud.map(Directional::constant);
            x[i].d = Dual::ONE;
            let y = Sde::<Dd1, 2>::diffusion(&model, 0.0, &x, seed);
            if i == 0 {
                total += y[0].v.t[0] * g_bar[0] + y[1].v.t[0] * g_bar[1];
            }
            total += (y[i].v * y[i].d).t[0] * q_bar[i];
        }
        total
    };
    let plain = u.map(Dual::constant);
    for (j, &pb) in p_bar.iter().enumerate() {
        close(
            pb,
            phi(plain, ParamSeed::window(j)),
            1e-5,
            &format!("parameter {j}"),
        );
    }
    for i in 0..2 {
        let mut ud = plain;
        ud[i] = Dual::variable(u[i], 0);
        close(
            u_bar[i],
            phi(ud, ParamSeed::NONE),
            1e-5,
            &format!("state {i}"),
        );
    }
}

/// GBM du = a u dt + b u dW (Itô) with trainable a, b: `q = g g' = b² u`.
struct Gbm {
    p: [f32; 2],
}
impl Parameters for Gbm {
    const PARAMS: usize = 2;
    fn read_unchecked(&self, out: &mut [f32]) {
        out.copy_from_slice(&self.p);
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        self.p.copy_from_slice(src);
    }
}
impl<T: Real> Sde<T, 1> for Gbm {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(self.p[0], 0)]
    }
    fn diffusion(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(self.p[1], 1)]
    }
}
impl SdeVjp<1> for Gbm {
    fn drift_vjp(
        &self,
        _: f32,
        u: &[f32; 1],
        f_bar: &[f32; 1],
        u_bar: &mut [f32; 1],
        p: &mut [f32],
    ) {
        u_bar[0] += self.p[0] * f_bar[0];
        p[0] += u[0] * f_bar[0];
    }
    fn diffusion_vjp(
        &self,
        _: f32,
        u: &[f32; 1],
        g_bar: &[f32; 1],
        u_bar: &mut [f32; 1],
        p: &mut [f32],
    ) {
        u_bar[0] += self.p[1] * g_bar[0];
        p[1] += u[0] * g_bar[0];
    }
}
impl MilsteinVjp<1> for Gbm {
    fn milstein_vjp(
        &self,
        t: f32,
        u: &[f32; 1],
        g_bar: &[f32; 1],
        q_bar: &[f32; 1],
        u_bar: &mut [f32; 1],
        p: &mut [f32],
    ) {
        self.diffusion_vjp(t, u, g_bar, u_bar, p);
        let b = self.p[1];
        u_bar[0] += b * b * q_bar[0];
        p[1] += 2.0 * b * u[0] * q_bar[0];
    }
}

/// Scalar noise on a 2-D state with a diffusion that mixes the components:
/// `f = (p0 u1, -p0 u0 - u1 / 10)`, `g = (p1 sin u1, p2 u0)`, so
/// `q = (∂g/∂u) g = (p1 p2 u0 cos u1, p1 p2 sin u1)`.
struct ScalarNoise {
    p: [f32; 3],
}
impl Parameters for ScalarNoise {
    const PARAMS: usize = 3;
    fn read_unchecked(&self, out: &mut [f32]) {
        out.copy_from_slice(&self.p);
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        self.p.copy_from_slice(src);
    }
}
impl<T: Real> Sde<T, 2> for ScalarNoise {
    const NOISE: NoiseKind = NoiseKind::Scalar;
    fn drift(&self, _: f32, u: &[T; 2], seed: ParamSeed) -> [T; 2] {
        let a = seed.lift::<T>(self.p[0], 0);
        [a * u[1], -(a * u[0]) - u[1] * 0.1]
    }
    fn diffusion(&self, _: f32, u: &[T; 2], seed: ParamSeed) -> [T; 2] {
        [
            seed.lift::<T>(self.p[1], 1) * u[1].sin(),
            seed.lift::<T>(self.p[2], 2) * u[0],
        ]
    }
}
impl SdeVjp<2> for ScalarNoise {
    fn drift_vjp(&self, _: f32, u: &[f32; 2], fb: &[f32; 2], ub: &mut [f32; 2], p: &mut [f32]) {
        let a = self.p[0];
        ub[1] += a * fb[0] - 0.1 * fb[1];
        ub[0] -= a * fb[1];
        p[0] += u[1] * fb[0] - u[0] * fb[1];
    }
    fn diffusion_vjp(&self, _: f32, u: &[f32; 2], gb: &[f32; 2], ub: &mut [f32; 2], p: &mut [f32]) {
        let (b, c) = (self.p[1], self.p[2]);
        ub[1] += b * Real::cos(u[1]) * gb[0];
        ub[0] += c * gb[1];
        p[1] += Real::sin(u[1]) * gb[0];
        p[2] += u[0] * gb[1];
    }
}
impl MilsteinVjp<2> for ScalarNoise {
    fn milstein_vjp(
        &self,
        t: f32,
        u: &[f32; 2],
        gb: &[f32; 2],
        qb: &[f32; 2],
        ub: &mut [f32; 2],
        p: &mut [f32],
    ) {
        self.diffusion_vjp(t, u, gb, ub, p);
        let (b, c) = (self.p[1], self.p[2]);
        let (s, co) = (Real::sin(u[1]), Real::cos(u[1]));
        ub[0] += qb[0] * b * c * co;
        ub[1] += -qb[0] * b * c * u[0] * s + qb[1] * b * c * co;
        p[1] += qb[0] * c * u[0] * co + qb[1] * c * s;
        p[2] += qb[0] * b * u[0] * co + qb[1] * b * s;
    }
}

fn reverse_gradient<S, L, const D: usize>(
    problem: &Problem<'_, Milstein, D>,
    model: &S,
    noise: &Brownian,
    loss: &L,
    checkpoints: Checkpoints,
    tape_len: usize,
) -> (f32, Vec<f32>)
where
    S: MilsteinVjp<D> + Parameters,
    L: Loss<D>,
{
    let mut stats = vec![[Dual::<3>::ZERO; D]; problem.stats_len()];
    let mut tape = vec![[0.0f32; D]; tape_len];
    let mut grad = vec![0.0f32; problem.gradient_len(S::PARAMS)];
    let l = loss_and_gradient(
        &Ensemble::new(problem, loss, noise),
        model,
        Reverse(checkpoints),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    )
    .unwrap();
    (l, grad)
}

/// Reverse = forward for Milstein: the same loss bits, every entry within `2e-5 max|g| +
/// 1e-4 |g_i|` (the margin of tests/suite/reverse.rs), with sqrt(N) checkpoints, and the
/// same bits with every trajectory's checkpoints kept.
fn assert_modes_agree<S, L, const D: usize>(
    problem: &Problem<'_, Milstein, D>,
    model: &S,
    loss: &L,
    what: &str,
) where
    S: MilsteinVjp<D> + Sde<Dual<8>, D> + Sde<Directional<Dual<8>>, D> + Parameters,
    L: Loss<D>,
{
    let noise = Brownian::new(17);
    let mut stats = vec![[Dual::<8>::ZERO; D]; problem.stats_len()];
    let mut gf = vec![0.0f32; problem.gradient_len(S::PARAMS)];
    let lf = loss_and_gradient(
        &Ensemble::new(problem, loss, &noise),
        model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut gf,
    )
    .unwrap();
    let c = Checkpoints::Sqrt;
    let (lr, gr) = reverse_gradient(
        problem,
        model,
        &noise,
        loss,
        c,
        reverse::tape_len(problem, c),
    );
    assert_eq!(lr.to_bits(), lf.to_bits(), "{what}: loss bits");
    let long = reverse::tape_len_keep_all(problem, c);
    let (lk, gk) = reverse_gradient(problem, model, &noise, loss, c, long);
    assert_eq!(lk.to_bits(), lf.to_bits(), "{what}: loss bits, keeping all");
    assert_eq!(
        gk, gr,
        "{what}: keeping every checkpoint changed the gradient"
    );
    let scale = gf.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    assert!(scale > 0.0, "{what}: zero gradient");
    for (i, (r, f)) in gr.iter().zip(&gf).enumerate() {
        assert!(
            (r - f).abs() <= 2e-5 * scale + 1e-4 * f.abs(),
            "{what}: entry {i}: reverse {r} forward {f} (max {scale})"
        );
    }
}

const TIMES: [f32; 4] = [0.25, 0.5, 0.75, 1.0];
const UNEVEN: [f32; 4] = [0.13, 0.3, 0.317, 1.0];
const DATA: [[f32; 1]; 4] = [[1.2], [1.5], [1.4], [1.9]];
const VAR_DATA: [[f32; 1]; 4] = [[0.01], [0.03], [0.05], [0.08]];
const DATA2: [[f32; 2]; 4] = [[0.9, 0.1], [0.7, 0.3], [0.4, 0.2], [0.2, -0.1]];

fn grids() -> [(TimeGrid, &'static [f32; 4]); 3] {
    [
        (TimeGrid::new(0.0, 1.0, 40).unwrap(), &TIMES),
        (TimeGrid::through(0.0, 1.0, 40).unwrap(), &UNEVEN),
        (TimeGrid::with_max_step(0.0, 1.0, 0.03).unwrap(), &UNEVEN),
    ]
}

#[test]
fn milstein_reverse_equals_forward_on_neural_models() {
    let small = small_model(3);
    let wide = wide_model(12);
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let moments = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let mse2 = MeanSquaredError::new(&DATA2).unwrap();
    for (grid, times) in grids() {
        let what = |m: &str| format!("{m} on {:?}", grid.spacing());
        for u0_gradient in [false, true] {
            let solver = Solver::new(Milstein, grid);
            let p = Problem::new(solver, [1.0], 16, times)
                .unwrap()
                .with_u0_gradient(u0_gradient);
            assert_modes_agree(&p, &small, &mse, &what("1-D mse"));
            assert_modes_agree(&p, &small, &moments, &what("1-D moments"));
            assert_modes_agree(
                &p.with_window(2).unwrap(),
                &small,
                &moments,
                &what("window"),
            );
            let p2 = Problem::new(solver, [0.5, -0.2], 16, times)
                .unwrap()
                .with_u0_gradient(u0_gradient);
            assert_modes_agree(&p2, &wide, &mse2, &what("2-D diagonal"));
        }
    }
}

#[test]
fn milstein_reverse_equals_forward_for_scalar_noise_and_gbm() {
    let scalar = ScalarNoise {
        p: [1.3, 0.6, -0.8],
    };
    let gbm = Gbm { p: [1.01, 0.87] };
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let mse2 = MeanSquaredError::new(&DATA2).unwrap();
    for (grid, times) in grids() {
        let what = |m: &str| format!("{m} on {:?}", grid.spacing());
        let solver = Solver::new(Milstein, grid);
        let p2 = Problem::new(solver, [0.5, -0.4], 16, times)
            .unwrap()
            .with_u0_gradient(true);
        assert_modes_agree(&p2, &scalar, &mse2, &what("scalar noise"));
        let p = Problem::new(solver, [0.5], 16, times)
            .unwrap()
            .with_u0_gradient(true);
        assert_modes_agree(&p, &gbm, &mse, &what("GBM"));
    }
}

/// L = sum over save times of u(t)^2 / 2 (one trajectory: the mean is the path).
struct HalfSquares;
impl Loss<1> for HalfSquares {
    fn eval<T: Real>(&self, mean: &[[T; 1]], _var: &[[T; 1]]) -> T {
        mean.iter().fold(T::ZERO, |acc, m| acc + m[0] * m[0] * 0.5)
    }
}

/// GBM's Milstein solution is a product, `u_N = u0 Π (1 + a h + b ΔW + ½ b² (ΔW² − h))`,
/// so the gradient of the discrete solution has a closed form: `∂u_N/∂a = u_N Σ h / φ_k`,
/// `∂u_N/∂b = u_N Σ (ΔW_k + b (ΔW_k² − h)) / φ_k`. Reverse mode must equal it (computed
/// here in f64 from the same increments) to f32 rounding; and as the step shrinks it must
/// converge, at Milstein's strong order 1, to the pathwise gradient of the exact solution
/// `u0 exp((a − b²/2) t + b W)`.
#[test]
fn gbm_milstein_gradient_is_the_closed_form_and_converges() {
    const FINE: u32 = 12;
    let (a, b, u0) = (1.01f32, 0.87f32, 0.5f32);
    let model = Gbm { p: [a, b] };
    let times = [0.25f32, 0.5, 0.75, 1.0];
    let mut errors = Vec::new();
    for k in [3u32, 5, 7, 9] {
        let mut total = 0.0;
        for path in 0..16u64 {
            let fine = Brownian::new(2000 + path);
            let noise = Coarsened::new(fine, 1 << (FINE - k)).unwrap();
            let solver = Solver::new(Milstein, TimeGrid::new(0.0, 1.0, 1 << k).unwrap());
            let problem = Problem::new(solver, [u0], 1, &times).unwrap();
            let mut stats = [[Dual::<2>::ZERO; 1]; 8];
            let c = Checkpoints::Binomial(3);
            let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, c)];
            let mut grad = [0.0f32; 2];
            loss_and_gradient(
                &Ensemble::new(&problem, &HalfSquares, &noise),
                &model,
                Reverse(c),
                &mut Scratch::new(&mut stats, &mut tape),
                &mut grad,
            )
            .unwrap();
            // The discrete solution's gradient, in f64.
            let (af, bf) = (a as f64, b as f64);
            let h = 1.0 / (1u64 << k) as f64;
            let (mut u, mut su, mut sb) = (u0 as f64, 0.0f64, 0.0f64);
            let (mut d1, mut d2) = (0.0, 0.0);
            let per_save = (1u32 << k) / 4;
            for step in 0..(1u32 << k) {
                let dw = noise.increment::<1>(0, step, h as f32, false).unwrap().dw[0] as f64;
                let phi = 1.0 + af * h + bf * dw + 0.5 * bf * bf * (dw * dw - h);
                u *= phi;
                su += h / phi;
                sb += (dw + bf * (dw * dw - h)) / phi;
                if (step + 1) % per_save == 0 {
                    d1 += u * u * su;
                    d2 += u * u * sb;
                }
            }
            let rel = 1e-4 * (d1.abs() + d2.abs());
            assert!(
                (grad[0] as f64 - d1).abs() <= rel && (grad[1] as f64 - d2).abs() <= rel,
                "2^{k} steps, path {path}: reverse {grad:?}, closed form [{d1}, {d2}]"
            );
            // The exact solution's pathwise gradient, on the fine path.
            let hf = 1.0 / (1u64 << FINE) as f64;
            let (mut w, mut g1, mut g2) = (0.0f64, 0.0, 0.0);
            for step in 0..(1u32 << FINE) {
                w += fine.increment::<1>(0, step, hf as f32, false).unwrap().dw[0] as f64;
                if (step + 1) % (1 << (FINE - 2)) == 0 {
                    let t = (step + 1) as f64 * hf;
                    let e =
                        (u0 as f64).powi(2) * (2.0 * (af - bf * bf / 2.0) * t + 2.0 * bf * w).exp();
                    g1 += t * e;
                    g2 += (w - bf * t) * e;
                }
            }
            let err = ((grad[0] as f64 - g1).powi(2) + (grad[1] as f64 - g2).powi(2)).sqrt();
            total += err / (g1 * g1 + g2 * g2).sqrt();
        }
        errors.push(total / 16.0);
    }
    for w in errors.windows(2) {
        assert!(w[1] < w[0], "error did not decrease: {errors:?}");
    }
    // Two halvings of the step per entry: order 1 divides the error by 4.
    let slope =
        (errors[0] / errors[errors.len() - 1]).ln() / (4f64.ln() * (errors.len() - 1) as f64);
    assert!(
        slope > 0.8,
        "Milstein gradient order {slope} from {errors:?}"
    );
}

/// Against a fourth-order central difference of the f32 loss on the same noise (the error
/// budget of tests/suite/reverse.rs).
#[test]
fn milstein_reverse_matches_finite_differences() {
    let model = small_model(6);
    let moments = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let solver = Solver::new(Milstein, TimeGrid::new(0.0, 1.0, 40).unwrap());
    let p = Problem::new(solver, [1.0], 16, &TIMES)
        .unwrap()
        .with_u0_gradient(true);
    let noise = Brownian::new(8);
    let c = Checkpoints::Binomial(4);
    let (_, g) = reverse_gradient(&p, &model, &noise, &moments, c, reverse::tape_len(&p, c));
    let mut params = [0.0f32; Small::PARAMS];
    model.read_params(&mut params).unwrap();
    let loss_at = |i: usize, delta: f32| -> f64 {
        let mut q = params;
        let mut pr = p;
        if i < Small::PARAMS {
            q[i] += delta;
        } else {
            pr = pr.with_u0([1.0 + delta]).unwrap();
        }
        let mut m = Small::default();
        m.write_params(&q).unwrap();
        let mut stats = [[0.0f32; 1]; 8];
        loss_value(&pr, &m, &noise, &moments, &mut stats).unwrap() as f64
    };
    let d = 2e-2f32;
    let scale = g.iter().fold(0.0f32, |a, x| a.max(x.abs())) as f64;
    for (i, &gi) in g.iter().enumerate() {
        let fd = (8.0 * (loss_at(i, d) - loss_at(i, -d))
            - (loss_at(i, 2.0 * d) - loss_at(i, -2.0 * d)))
            / (12.0 * d as f64);
        assert!(
            (gi as f64 - fd).abs() <= 2e-4 * scale + 2e-3 * fd.abs(),
            "entry {i}: reverse {gi} finite difference {fd}"
        );
    }
}

#[test]
fn milstein_reverse_allocates_nothing() {
    let model = small_model(2);
    let solver = Solver::new(Milstein, TimeGrid::new(0.0, 1.0, 40).unwrap());
    let p = Problem::new(solver, [1.0], 16, &TIMES)
        .unwrap()
        .with_u0_gradient(true);
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let noise = Brownian::new(1);
    let mut stats = [[Dual::<4>::ZERO; 1]; 8];
    let mut tape = [[0.0f32; 1]; 64];
    for c in [Checkpoints::Sqrt, Checkpoints::Binomial(3)] {
        assert!(reverse::tape_len(&p, c) <= 64);
        let mut grad = [0.0f32; Small::PARAMS + 1];
        let (count, result) = allocations(|| {
            loss_and_gradient(
                &Ensemble::new(&p, &mse, &noise),
                &model,
                Reverse(c),
                &mut Scratch::new(&mut stats, &mut tape),
                &mut grad,
            )
        });
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(count, 0, "{c:?}: reverse mode allocated");
    }
}

/// Milstein's adjoint is a [`StepVjp`]: generic code bounded by it accepts the method.
#[test]
fn milstein_is_a_step_vjp() {
    fn takes<M: StepVjp<S, 1>, S: SdeVjp<1>>(_: M, _: &S) {}
    takes(Milstein, &small_model(1));
    takes(Milstein, &Gbm { p: [1.0, 0.5] });
}

/// The trainer runs Milstein in reverse mode (here with binomial checkpoints) and trains
/// as forward mode does: the same first loss bits, the same losses to 1e-3 over 30
/// iterations, and the loss falls.
#[test]
fn trainer_trains_milstein_in_reverse_mode() {
    use core::ops::ControlFlow;
    use tinysde::train::{Adam, AdamConfig, GradientMode, TrainConfig, Trainer, Workspace};
    const P: usize = Small::PARAMS;
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let c = Checkpoints::Binomial(3);
    let mut losses: Vec<Vec<f32>> = Vec::new();
    for reverse_mode in [false, true] {
        let solver = Solver::new(Milstein, TimeGrid::through(0.0, 1.0, 40).unwrap());
        let problem = Problem::new(solver, [1.0], 16, &UNEVEN).unwrap();
        let mut model = small_model(9);
        let mut adam = Adam::new(AdamConfig::lr(0.02), [0.0; P], [0.0; P]).unwrap();
        let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
        let mut stats = vec![[Dual::<4>::ZERO; 1]; problem.stats_len()];
        let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, c)];
        let ws = Workspace {
            params: &mut params,
            grad: &mut grad,
            best: &mut best,
            scratch: Scratch::new(&mut stats, &mut tape),
        };
        let mode = if reverse_mode {
            GradientMode::Reverse(c)
        } else {
            GradientMode::Forward
        };
        let mut trainer = EnsembleFit::new(problem, mse)
            .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
            .and_then(|t| t.with_mode(mode))
            .unwrap();
        assert_eq!(*trainer.mode(), mode);
        let mut run = Vec::new();
        trainer
            .run(30, |p| {
                run.push(p.loss);
                ControlFlow::Continue(())
            })
            .unwrap();
        losses.push(run);
    }
    let (fwd, rev) = (&losses[0], &losses[1]);
    assert_eq!(fwd[0].to_bits(), rev[0].to_bits(), "first loss");
    assert!(fwd.last().unwrap() < &(0.8 * fwd[0]), "{fwd:?}");
    for (i, (f, r)) in fwd.iter().zip(rev).enumerate() {
        assert!((f - r).abs() <= 1e-3 * f.abs(), "iteration {i}: {f} vs {r}");
    }
}
