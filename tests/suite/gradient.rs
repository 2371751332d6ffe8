//! Forward-mode gradients through the solver: against finite differences on the same noise,
//! against the closed-form pathwise gradient of geometric Brownian motion, bit-identical
//! for every lane count, and input checking.

use tinysde::grad::Forward;
use tinysde::grad::{loss_and_gradient, loss_value, Loss, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::nn::{Dense, Identity, InitScheme, ParamSeed, Parameters, Sigmoid, Tanh};
use tinysde::noise::{Brownian, Coarsened, NoiseSource};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{EulerMaruyama, Method, Solver, Sosri, Step, TimeGrid};
use tinysde::train::{MeanSquaredError, MomentMatching};
use tinysde::{Dual, Error, NoiseKind, Real};

type Small = NeuralSde<
    (Dense<1, 4, Tanh>, Dense<4, 1, Identity>),
    (Dense<1, 4, Sigmoid>, Dense<4, 1, Identity>),
>;
const SMALL_P: usize = Small::PARAMS;

fn small_model(seed: u64) -> Small {
    let mut m = Small::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::Uniform { limit: 0.8 },
    )
    .unwrap();
    // Non-zero biases so every parameter matters.
    let mut p = [0.0f32; SMALL_P];
    m.read_params(&mut p).unwrap();
    for (i, x) in p.iter_mut().enumerate() {
        if *x == 0.0 {
            *x = 0.1 * ((i % 5) as f32 - 2.0) + 0.05;
        }
    }
    m.write_params(&p).unwrap();
    m
}

const TIMES: [f32; 4] = [0.25, 0.5, 0.75, 1.0];
const DATA: [[f32; 1]; 4] = [[1.2], [1.5], [1.4], [1.9]];
const VAR_DATA: [[f32; 1]; 4] = [[0.01], [0.03], [0.05], [0.08]];

fn small_problem(times: &[f32]) -> Problem<'_, EulerMaruyama, 1> {
    small_problem_with(EulerMaruyama, times)
}

fn small_problem_with<M: Method>(method: M, times: &[f32]) -> Problem<'_, M, 1> {
    let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 40).unwrap());
    Problem::new(solver, [1.0], 16, times).unwrap()
}

/// The loss of `model` with flat parameters `p` (and u0 from the tail of `p`, if any).
fn f32_loss<M: Method + Step<f32, Small, 1> + Copy, L: Loss<1>>(
    problem: &Problem<'_, M, 1>,
    p: &[f32],
    noise: &Brownian,
    loss: &L,
) -> f64 {
    let mut m = Small::default();
    m.write_params(&p[..SMALL_P]).unwrap();
    let mut problem = *problem;
    if p.len() > SMALL_P {
        problem = problem.with_u0([p[SMALL_P]]).unwrap();
    }
    let mut stats = [[0.0f32; 1]; 8];
    loss_value(&problem, &m, noise, loss, &mut stats).unwrap() as f64
}

/// Checks the forward-mode gradient against a fourth-order central difference of the `f32`
/// loss on the same noise (common random numbers).
///
/// Error budget, in f32: the loss is evaluated with a relative rounding error of roughly
/// 1e-6 (40 steps x 16 trajectories of O(1) arithmetic), so with step `d = 2e-2` the
/// difference quotient carries ~1e-6 * |L| / d ~ 5e-5 |L| of rounding noise; the truncation
/// error of the 4th-order formula is d^4 |L^(5)| / 30 ~ 5e-9 |L^(5)|. (Observed: relative
/// agreement ~1e-5 on the large entries, absolute <= 1e-5 * max|g| on the small ones.) The
/// tolerance `2e-4 * max|g| + 2e-3 * |g_i|` leaves a 10x margin and is still broken by a
/// wrong derivative rule (an error of order |g_i|) or a swapped index (order max|g|).
fn check_against_fd<M, L>(method: M, loss: &L, with_u0: bool)
where
    M: Method + Step<f32, Small, 1> + Step<Dual<8>, Small, 1> + Copy,
    L: Loss<1>,
{
    let model = small_model(3);
    let problem = small_problem_with(method, &TIMES).with_u0_gradient(with_u0);
    let noise = Brownian::new(11);
    let n = problem.gradient_len(SMALL_P);
    let mut grad = vec![0.0f32; n];
    let mut stats = [[Dual::<8>::ZERO; 1]; 8];
    let value = loss_and_gradient(
        &Ensemble::new(&problem, loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut grad,
    )
    .unwrap();

    let mut p = vec![0.0f32; n];
    model.read_params(&mut p[..SMALL_P]).unwrap();
    if with_u0 {
        p[SMALL_P] = problem.u0()[0];
    }
    // The dual value is the f32 loss, bit for bit.
    let plain = f32_loss(&problem, &p, &noise, loss);
    assert_eq!(value as f64, plain, "dual value differs from the f32 loss");

    let gmax = grad.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    assert!(gmax > 1e-3, "degenerate test: gradient is ~0");
    let d = 2e-2f32;
    for i in 0..n {
        let at = |s: f32| {
            let mut q = p.clone();
            q[i] += s * d;
            f32_loss(&problem, &q, &noise, loss)
        };
        let fd = (8.0 * (at(1.0) - at(-1.0)) - (at(2.0) - at(-2.0))) / (12.0 * d as f64);
        let g = grad[i] as f64;
        let tol = 2e-4 * gmax as f64 + 2e-3 * g.abs();
        assert!(
            (fd - g).abs() <= tol,
            "param {i}: forward mode {g}, finite difference {fd}, tol {tol}"
        );
    }
}

#[test]
fn gradient_matches_finite_differences_mse() {
    check_against_fd(EulerMaruyama, &MeanSquaredError::new(&DATA).unwrap(), false);
}

#[test]
fn gradient_matches_finite_differences_moments_and_u0() {
    check_against_fd(
        EulerMaruyama,
        &MomentMatching::new(&DATA, &VAR_DATA).unwrap(),
        true,
    );
}

/// Through the four-stage SOSRI step (the seed task's method) as well.
#[test]
fn gradient_matches_finite_differences_sosri() {
    check_against_fd(Sosri, &MomentMatching::new(&DATA, &VAR_DATA).unwrap(), true);
}

#[test]
fn gradient_matches_finite_differences_masked() {
    let data = [[1.2], [f32::NAN], [1.4], [1.9]];
    let mask = [[true], [false], [true], [true]];
    check_against_fd(
        EulerMaruyama,
        &MeanSquaredError::masked(&data, &mask).unwrap(),
        false,
    );
}

/// The gradient is bit-identical whatever the number of lanes per pass.
#[test]
fn gradient_bits_do_not_depend_on_lanes() {
    let model = small_model(5);
    let problem = small_problem(&TIMES).with_u0_gradient(true);
    let loss = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let noise = Brownian::new(2);
    let n = problem.gradient_len(SMALL_P);
    fn run<const K: usize>(
        problem: &Problem<'_, EulerMaruyama, 1>,
        model: &Small,
        noise: &Brownian,
        loss: &MomentMatching<'_, 1>,
        n: usize,
    ) -> (u32, Vec<u32>) {
        let mut grad = vec![0.0f32; n];
        let mut stats = vec![[Dual::<K>::ZERO; 1]; problem.stats_len()];
        let v = loss_and_gradient(
            &Ensemble::new(problem, loss, noise),
            model,
            Forward,
            &mut Scratch::new(&mut stats, &mut []),
            &mut grad,
        )
        .unwrap();
        (v.to_bits(), grad.iter().map(|g| g.to_bits()).collect())
    }
    let one = run::<1>(&problem, &model, &noise, &loss, n);
    assert!(one.1.iter().any(|&b| b != 0));
    assert_eq!(one, run::<4>(&problem, &model, &noise, &loss, n));
    assert_eq!(one, run::<8>(&problem, &model, &noise, &loss, n));
    assert_eq!(one, run::<5>(&problem, &model, &noise, &loss, n)); // K not dividing n
    assert_eq!(one, run::<32>(&problem, &model, &noise, &loss, n)); // K > n
}

/// Geometric Brownian motion du = p1 u dt + p2 u dW with both rates trainable.
#[derive(Clone, Copy)]
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
    fn drift(&self, _t: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(self.p[0], 0)]
    }
    fn diffusion(&self, _t: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * seed.lift::<T>(self.p[1], 1)]
    }
}

/// L = sum over save times of u(t)^2 / 2 (one trajectory: the mean is the path).
struct HalfSquares;
impl Loss<1> for HalfSquares {
    fn eval<T: Real>(&self, mean: &[[T; 1]], _var: &[[T; 1]]) -> T {
        mean.iter().fold(T::ZERO, |acc, m| acc + m[0] * m[0] * 0.5)
    }
}

/// Mean relative error of the discrete gradient against the closed form
/// (docs/numerics.md) over `paths` Brownian paths, with `2^k` steps on
/// [0, 1], every path sampled on a fine grid of 2^12 steps and coarsened.
fn gbm_gradient_error<M>(method: M, k: u32, paths: u64) -> f64
where
    M: Method + Step<Dual<2>, Gbm, 1> + Copy,
{
    const FINE: u32 = 12;
    let (p1, p2, u0) = (1.01f32, 0.87f32, 0.5f32);
    let model = Gbm { p: [p1, p2] };
    let times = [0.25f32, 0.5, 0.75, 1.0];
    let mut total = 0.0;
    for path in 0..paths {
        let fine = Brownian::new(1000 + path);
        let noise = Coarsened::new(fine, 1 << (FINE - k)).unwrap();
        let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 1 << k).unwrap());
        let problem = Problem::new(solver, [u0], 1, &times).unwrap();
        let mut stats = [[Dual::<2>::ZERO; 1]; 8];
        let mut grad = [0.0f32; 2];
        loss_and_gradient(
            &Ensemble::new(&problem, &HalfSquares, &noise),
            &model,
            Forward,
            &mut Scratch::new(&mut stats, &mut []),
            &mut grad,
        )
        .unwrap();

        // Closed form along the realized path W (summed in f64 from the fine increments).
        let (p1, p2, u0) = (p1 as f64, p2 as f64, u0 as f64);
        let hf = 1.0 / (1u64 << FINE) as f64;
        let mut w = 0.0f64;
        let (mut g1, mut g2) = (0.0, 0.0);
        let mut next = 0;
        for step in 0..(1u32 << FINE) {
            w += fine.increment::<1>(0, step, hf as f32, false).unwrap().dw[0] as f64;
            let t = (step + 1) as f64 * hf;
            if next < times.len() && (t - times[next] as f64).abs() < 1e-9 {
                let e = u0 * u0 * (2.0 * (p1 - p2 * p2 / 2.0) * t + 2.0 * p2 * w).exp();
                g1 += t * e;
                g2 += (w - p2 * t) * e;
                next += 1;
            }
        }
        assert_eq!(next, times.len());
        let err = ((grad[0] as f64 - g1).powi(2) + (grad[1] as f64 - g2).powi(2)).sqrt();
        total += err / (g1 * g1 + g2 * g2).sqrt();
    }
    total / paths as f64
}

/// Euler-Maruyama's pathwise gradient converges to the closed form (strong order 0.5 for
/// multiplicative noise): the error shrinks as the step shrinks and is small at the finest.
#[test]
fn gbm_gradient_converges_to_closed_form_euler_maruyama() {
    let errs: Vec<f64> = (4..=10)
        .step_by(2)
        .map(|k| gbm_gradient_error(EulerMaruyama, k, 16))
        .collect();
    for w in errs.windows(2) {
        assert!(w[1] < w[0], "error did not decrease: {errs:?}");
    }
    // Fitted slope against h (h quarters each time).
    let slope = (errs[0] / errs[errs.len() - 1]).ln() / (4f64.ln() * (errs.len() - 1) as f64);
    assert!(slope > 0.35, "order {slope} from {errs:?}");
    assert!(errs[errs.len() - 1] < 0.05, "finest error {errs:?}");
}

/// SOSRI (strong order 1.5): the pathwise gradient error falls much faster (observed
/// 0.12, 0.016, 0.0034, 0.0005 for 4, 16, 64, 256 steps: slope ~1.3).
#[test]
fn gbm_gradient_converges_to_closed_form_sosri() {
    let errs: Vec<f64> = (2..=8)
        .step_by(2)
        .map(|k| gbm_gradient_error(Sosri, k, 16))
        .collect();
    for w in errs.windows(2) {
        assert!(w[1] < w[0], "error did not decrease: {errs:?}");
    }
    let slope = (errs[0] / errs[errs.len() - 1]).ln() / (4f64.ln() * (errs.len() - 1) as f64);
    assert!(slope > 1.0, "order {slope} from {errs:?}");
    assert!(errs[errs.len() - 1] < 1e-3, "finest error {errs:?}");
}

#[test]
fn bad_inputs_are_errors_and_touch_nothing() {
    let model = small_model(1);
    let problem = small_problem(&TIMES);
    let noise = Brownian::new(0);
    let loss = MeanSquaredError::new(&DATA).unwrap();
    let mut stats = [[Dual::<4>::constant(7.0); 1]; 8];
    let sentinel = [1.25f32; SMALL_P + 1];

    // gradient buffer of the wrong length
    let mut grad = sentinel;
    let e = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut grad[..],
    );
    assert!(
        matches!(
            e,
            Err(Error::Length {
                what: "gradient",
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(grad, sentinel);
    assert!(stats.iter().all(|s| s[0] == Dual::constant(7.0)));

    // statistics scratch too short
    let mut grad = [1.25f32; SMALL_P];
    let mut short = [[Dual::<4>::constant(7.0); 1]; 7];
    let e = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut short, &mut []),
        &mut grad,
    );
    assert!(
        matches!(
            e,
            Err(Error::Length {
                expected: 8,
                found: 7,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(grad.iter().all(|&g| g == 1.25));

    // data length not matching the save times
    let loss3 = MeanSquaredError::new(&DATA[..3]).unwrap();
    let e = loss_and_gradient(
        &Ensemble::new(&problem, &loss3, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut grad,
    );
    assert!(
        matches!(
            e,
            Err(Error::Length {
                what: "data",
                expected: 4,
                found: 3
            })
        ),
        "{e:?}"
    );
    assert!(grad.iter().all(|&g| g == 1.25));
    assert!(stats.iter().all(|s| s[0] == Dual::constant(7.0)));

    // non-finite data, zero trajectories, non-finite u0, bad window
    assert!(matches!(
        MeanSquaredError::new(&[[1.0], [f32::INFINITY]]),
        Err(Error::NonFinite {
            what: "data",
            index: 1
        })
    ));
    assert!(MeanSquaredError::masked(&DATA, &[[true]; 3]).is_err());
    let solver = *problem.solver();
    assert!(Problem::new(solver, [1.0], 0, &TIMES).is_err());
    assert!(Problem::new(solver, [f32::NAN], 4, &TIMES).is_err());
    assert!(Problem::new(solver, [1.0], 4, &[]).is_err());
    assert!(Problem::new(solver, [1.0], 4, &[0.5, 0.25]).is_err());
    assert!(problem.with_window(0).is_err());
    assert!(problem.with_window(5).is_err());
}

/// The growing window: the windowed loss and gradient equal those of a problem that has
/// only the first `w` save times and data points.
#[test]
fn window_equals_truncated_problem() {
    let model = small_model(9);
    let noise = Brownian::new(4);
    let full = small_problem(&TIMES).with_window(2).unwrap();
    let short = small_problem(&TIMES[..2]);
    let mut stats = [[Dual::<8>::ZERO; 1]; 8];
    let mut g_full = [0.0f32; SMALL_P];
    let mut g_short = [0.0f32; SMALL_P];
    let l_full = MeanSquaredError::new(&DATA).unwrap();
    let l_short = MeanSquaredError::new(&DATA[..2]).unwrap();
    let a = loss_and_gradient(
        &Ensemble::new(&full, &l_full, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut g_full,
    )
    .unwrap();
    let b = loss_and_gradient(
        &Ensemble::new(&short, &l_short, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut g_short,
    )
    .unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    assert_eq!(g_full, g_short);
    let c = loss_and_gradient(
        &Ensemble::new(&small_problem(&TIMES), &l_full, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut g_short,
    )
    .unwrap();
    assert_ne!(a, c);
}

/// The fast activations take a one-step chain rule on `Dual` (value and derivative in
/// `f32`) and go operation by operation on `Directional`: both give the f32 value bits,
/// and derivatives that agree to rounding, including at and beyond the clamps. (Near
/// saturation both derivative formulas cancel terms much larger than the result, so their
/// rounding error is absolute, up to ~1e-7: hence the floor in the tolerance.)
#[test]
fn fast_activation_chain_rule_matches_operation_by_operation() {
    use tinysde::nn::{fast_sigmoid, fast_tanh};
    use tinysde::Directional;
    let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.005).collect();
    xs.extend([
        7.905_311f32,
        -7.905_311,
        7.9053,
        7.906,
        -7.906,
        30.0,
        -30.0,
        0.0,
        -0.0,
    ]);
    for &x in &xs {
        for (name, f_dual, f_dir, f_plain) in [
            (
                "fast_tanh",
                fast_tanh::<Dual<3>> as fn(Dual<3>) -> Dual<3>,
                fast_tanh::<Directional<f32>> as fn(Directional<f32>) -> Directional<f32>,
                fast_tanh::<f32> as fn(f32) -> f32,
            ),
            (
                "fast_sigmoid",
                fast_sigmoid::<Dual<3>>,
                fast_sigmoid::<Directional<f32>>,
                fast_sigmoid::<f32>,
            ),
        ] {
            let a = f_dual(Dual::variable(x, 1));
            let b = f_dir(Directional::variable(x));
            let v = f_plain(x);
            assert_eq!(a.v.to_bits(), v.to_bits(), "{name}({x}) value");
            assert_eq!(b.v.to_bits(), v.to_bits(), "{name}({x}) value");
            assert_eq!(a.t[0], 0.0);
            assert!(
                (a.t[1] - b.d).abs() <= 2e-6 * b.d.abs() + 5e-7,
                "{name}'({x}): chain {} vs ops {}",
                a.t[1],
                b.d
            );
        }
    }
}
