//! Reverse mode: hand-written vector–Jacobian products against forward mode, the discrete
//! adjoint against forward mode for every method, loss, mask, window and u0, against
//! finite differences with common random numbers and against GBM's closed-form pathwise
//! gradient; checkpoint independence; input checking; no allocation.

use tinysde::grad::{loss_and_gradient, loss_value, reverse, Loss, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::grad::{Forward, Reverse, Threads};
use tinysde::nn::{
    Backward, Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Layer, ParamSeed,
    Parameters, Relu, Sigmoid, Softplus, Tanh,
};
use tinysde::noise::{Brownian, Coarsened, NoiseSource};
use tinysde::sde::{NeuralSde, Sde, SdeVjp};
use tinysde::solve::{
    Checkpoints, EulerHeun, EulerMaruyama, Method, Solver, Sosra, Sosri, Spacing, Sra1, Sriw1,
    Step, StepVjp, TimeGrid,
};
use tinysde::train::EnsembleFit;
use tinysde::train::{MeanSquaredError, MomentMatching};
use tinysde::{Dual, Error, NoiseKind, PlainReal, Real};

use crate::alloc_counter;
use alloc_counter::allocations;

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

/// `ȳᵀ J` of a layer by forward mode: one lane per parameter, then one per input.
fn check_layer_vjp<L, const I: usize, const O: usize>(layer: &L, x: &[f32; I], y_bar: &[f32; O])
where
    L: Backward + Layer<f32, Input = [f32; I], Output = [f32; O]>,
    L: Layer<Dual<1>, Input = [Dual<1>; I], Output = [Dual<1>; O]>,
{
    let (y, cache) = layer.forward_cached(x);
    let y_plain: [f32; O] = Layer::<f32>::forward(layer, x, ParamSeed::NONE);
    assert_eq!(y, y_plain, "forward_cached must give the forward's values");
    let mut p_bar = vec![0.0f32; L::PARAMS];
    let x_bar = layer.backward(x, &cache, y_bar, &mut p_bar);
    let xd = x.map(Dual::<1>::constant);
    for (j, &pb) in p_bar.iter().enumerate() {
        let yd = Layer::<Dual<1>>::forward(layer, &xd, ParamSeed::window(j));
        let fwd = yd.iter().zip(y_bar).fold(0.0, |a, (y, b)| a + y.t[0] * b);
        close(pb, fwd, 1e-5, &format!("parameter {j}"));
    }
    for (i, &xb) in x_bar.iter().enumerate() {
        let mut xd = x.map(Dual::<1>::constant);
        xd[i] = Dual::variable(x[i], 0);
        let yd = Layer::<Dual<1>>::forward(layer, &xd, ParamSeed::NONE);
        let fwd = yd.iter().zip(y_bar).fold(0.0, |a, (y, b)| a + y.t[0] * b);
        close(xb, fwd, 1e-5, &format!("input {i}"));
    }
}

/// Every layer, activation, feature map and chain length: VJP = forward-mode Jacobian.
#[test]
fn layer_vjps_match_forward_mode() {
    let mut x3 = [0.0f32; 3];
    values(1, &mut x3);
    let mut y5 = [0.0f32; 5];
    values(2, &mut y5);
    macro_rules! dense {
        ($($act:ty),+) => {$({
            let mut l = Dense::<3, 5, $act>::default();
            init_params(&mut l, 3, 1.0);
            check_layer_vjp(&l, &x3, &y5);
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
    check_layer_vjp(&Cube::<3>::default(), &x3, &[0.3, -0.7, 1.1]);

    let mut two = (
        Dense::<3, 4, Tanh>::default(),
        Dense::<4, 5, Identity>::default(),
    );
    init_params(&mut two, 4, 0.8);
    check_layer_vjp(&two, &x3, &y5);
    let mut three = (
        Cube::<3>::default(),
        Dense::<3, 6, FastTanh>::default(),
        Dense::<6, 5, Identity>::default(),
    );
    init_params(&mut three, 5, 0.8);
    check_layer_vjp(&three, &x3, &y5);
    let mut four = (
        Dense::<3, 6, Softplus>::default(),
        Dense::<6, 6, FastSigmoid>::default(),
        Dense::<6, 7, Relu>::default(),
        Dense::<7, 5, Identity>::default(),
    );
    init_params(&mut four, 6, 0.8);
    check_layer_vjp(&four, &x3, &y5);
    let mut five = (
        Cube::<3>::default(),
        Dense::<3, 6, Tanh>::default(),
        Dense::<6, 6, Sigmoid>::default(),
        Dense::<6, 4, FastTanh>::default(),
        Dense::<4, 5, Identity>::default(),
    );
    init_params(&mut five, 7, 0.8);
    check_layer_vjp(&five, &x3, &y5);
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

type Wide2 = NeuralSde<
    (Dense<2, 8, Tanh>, Dense<8, 2, Identity>),
    (Dense<2, 8, Sigmoid>, Dense<8, 2, Identity>),
>;

/// The neural SDE's drift and diffusion VJPs against forward mode, on a 2-D state.
#[test]
fn neural_sde_vjps_match_forward_mode() {
    let mut model = Wide2::default();
    init_params(&mut model, 11, 0.9);
    let u = [0.4f32, -0.3];
    let bar = [0.7f32, -1.3];
    for diffusion in [false, true] {
        let mut u_bar = [0.0f32; 2];
        let mut p_bar = vec![0.0f32; Wide2::PARAMS];
        if diffusion {
            model.diffusion_vjp(0.0, &u, &bar, &mut u_bar, &mut p_bar);
        } else {
            model.drift_vjp(0.0, &u, &bar, &mut u_bar, &mut p_bar);
        }
        let eval = |ud: &[Dual<1>; 2], seed| -> f32 {
            let y = if diffusion {
                Sde::<Dual<1>, 2>::diffusion(&model, 0.0, ud, seed)
            } else {
                Sde::<Dual<1>, 2>::drift(&model, 0.0, ud, seed)
            };
            y[0].t[0] * bar[0] + y[1].t[0] * bar[1]
        };
        for (j, &pb) in p_bar.iter().enumerate() {
            let fwd = eval(&u.map(Dual::constant), ParamSeed::window(j));
            close(pb, fwd, 1e-5, &format!("parameter {j}"));
        }
        for (i, &ub) in u_bar.iter().enumerate() {
            let mut ud = u.map(Dual::constant);
            ud[i] = Dual::variable(u[i], 0);
            close(ub, eval(&ud, ParamSeed::NONE), 1e-5, &format!("state {i}"));
        }
    }
}

/// An additive-noise SDE with a network drift and trainable constant noise scales, with a
/// hand-written VJP: du = F(u) dt + s dW.
#[derive(Default)]
struct Additive {
    drift: (Dense<1, 6, Tanh>, Dense<6, 1, Identity>),
    scale: f32,
}
impl Parameters for Additive {
    const PARAMS: usize = 13 + 6 + 1;
    fn read_unchecked(&self, out: &mut [f32]) {
        self.drift.read_unchecked(&mut out[..19]);
        out[19] = self.scale;
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        self.drift.write_unchecked(&src[..19]);
        self.scale = src[19];
    }
}
impl<T: Real> Sde<T, 1> for Additive {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        self.drift.forward(u, seed)
    }
    fn diffusion(&self, t: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
        // Time-dependent, so the SRA stages at different nodes differ.
        [seed.lift::<T>(self.scale, 19) * (1.0 + 0.5 * t)]
    }
}
impl<T: PlainReal> SdeVjp<1, T> for Additive {
    fn drift_vjp(&self, _: f32, u: &[T; 1], f_bar: &[T; 1], u_bar: &mut [T; 1], p: &mut [T]) {
        let (_, cache) = self.drift.forward_cached(u);
        let x_bar = self.drift.backward(u, &cache, f_bar, p);
        u_bar[0] += x_bar[0];
    }
    fn diffusion_vjp(&self, t: f32, _: &[T; 1], g_bar: &[T; 1], _: &mut [T; 1], p: &mut [T]) {
        p[19] += g_bar[0] * (1.0 + 0.5 * t);
    }
}

fn additive_model() -> Additive {
    let mut m = Additive::default();
    let mut p = [0.0f32; Additive::PARAMS];
    values(21, &mut p);
    p[19] = 0.4;
    m.write_params(&p).unwrap();
    m
}

const TIMES: [f32; 4] = [0.25, 0.5, 0.75, 1.0];
const DATA: [[f32; 1]; 4] = [[1.2], [1.5], [1.4], [1.9]];
const VAR_DATA: [[f32; 1]; 4] = [[0.01], [0.03], [0.05], [0.08]];

/// Reverse-mode loss and gradient with a heap tape of the minimum length.
fn reverse_gradient<S, M, L>(
    problem: &Problem<'_, M, 1>,
    model: &S,
    noise: &Brownian,
    loss: &L,
    checkpoints: Checkpoints,
) -> (f32, Vec<f32>)
where
    S: SdeVjp<1> + Parameters,
    M: StepVjp<S, 1>,
    L: Loss<1>,
{
    let len = reverse::tape_len(problem, checkpoints);
    reverse_gradient_with_tape(problem, model, noise, loss, checkpoints, len)
}

/// Reverse-mode loss and gradient with a heap tape of `len` rows.
fn reverse_gradient_with_tape<S, M, L>(
    problem: &Problem<'_, M, 1>,
    model: &S,
    noise: &Brownian,
    loss: &L,
    checkpoints: Checkpoints,
    len: usize,
) -> (f32, Vec<f32>)
where
    S: SdeVjp<1> + Parameters,
    M: StepVjp<S, 1>,
    L: Loss<1>,
{
    let mut stats = vec![[Dual::<3>::ZERO; 1]; problem.stats_len()];
    let mut tape = vec![[0.0f32; 1]; len];
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

fn forward_gradient<S, M, L>(
    problem: &Problem<'_, M, 1>,
    model: &S,
    noise: &Brownian,
    loss: &L,
) -> (f32, Vec<f32>)
where
    S: Sde<Dual<8>, 1> + Parameters,
    M: Step<Dual<8>, S, 1>,
    L: Loss<1>,
{
    let mut stats = vec![[Dual::<8>::ZERO; 1]; problem.stats_len()];
    let mut grad = vec![0.0f32; problem.gradient_len(S::PARAMS)];
    let l = loss_and_gradient(
        &Ensemble::new(problem, loss, noise),
        model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut grad,
    )
    .unwrap();
    (l, grad)
}

/// Reverse = forward: the same loss bits; every gradient entry within 2e-5 of the largest
/// entry plus 1e-4 of its own size (both modes differentiate the same computation; they
/// differ only in the order of f32 roundings, which over 40 steps × 16 trajectories sum to
/// about 1e-6 relative, so this is a 10x margin; a wrong derivative rule is off by O(|g|)).
fn assert_modes_agree<S, M, L>(problem: &Problem<'_, M, 1>, model: &S, loss: &L, what: &str)
where
    S: SdeVjp<1> + Sde<Dual<8>, 1> + Parameters,
    M: StepVjp<S, 1> + Step<Dual<8>, S, 1>,
    L: Loss<1>,
{
    let noise = Brownian::new(17);
    let (lf, gf) = forward_gradient(problem, model, &noise, loss);
    let (lr, gr) = reverse_gradient(problem, model, &noise, loss, Checkpoints::Sqrt);
    assert_eq!(lr.to_bits(), lf.to_bits(), "{what}: loss bits");
    let long = reverse::tape_len_keep_all(problem, Checkpoints::Every(3));
    let kept =
        reverse_gradient_with_tape(problem, model, &noise, loss, Checkpoints::Every(3), long);
    assert_eq!(
        kept.0.to_bits(),
        lf.to_bits(),
        "{what}: loss bits, keeping all"
    );
    assert_eq!(
        kept.1, gr,
        "{what}: keeping all checkpoints changed the gradient"
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

fn problem<M: Method>(method: M, u0: f32) -> Problem<'static, M, 1> {
    let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 40).unwrap());
    Problem::new(solver, [u0], 16, &TIMES).unwrap()
}

#[test]
fn reverse_equals_forward_for_every_method() {
    let model = small_model(3);
    let mse = MeanSquaredError::new(&DATA).unwrap();
    assert_modes_agree(&problem(EulerMaruyama, 1.0), &model, &mse, "EulerMaruyama");
    assert_modes_agree(&problem(EulerHeun, 1.0), &model, &mse, "EulerHeun");
    assert_modes_agree(&problem(Sriw1, 1.0), &model, &mse, "SRIW1");
    assert_modes_agree(&problem(Sosri, 1.0), &model, &mse, "SOSRI");
    let additive = additive_model();
    assert_modes_agree(&problem(Sra1, 1.0), &additive, &mse, "SRA1");
    assert_modes_agree(&problem(Sosra, 1.0), &additive, &mse, "SOSRA");
    assert_modes_agree(&problem(EulerMaruyama, 1.0), &additive, &mse, "EM additive");
}

#[test]
fn reverse_equals_forward_for_losses_masks_windows_and_u0() {
    let model = small_model(4);
    let moments = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let mask = [[true], [false], [true], [true]];
    let masked = MeanSquaredError::masked(&DATA, &mask).unwrap();
    let masked_moments = MomentMatching::masked(&DATA, &VAR_DATA, &mask).unwrap();
    for u0_gradient in [false, true] {
        let p = problem(Sosri, 0.8).with_u0_gradient(u0_gradient);
        assert_modes_agree(&p, &model, &moments, "moments");
        assert_modes_agree(&p, &model, &masked, "masked mse");
        assert_modes_agree(&p, &model, &masked_moments, "masked moments");
        let w = p.with_window(2).unwrap();
        assert_modes_agree(&w, &model, &moments, "window 2");
        let e = problem(EulerMaruyama, 0.8).with_u0_gradient(u0_gradient);
        assert_modes_agree(&e, &model, &masked_moments, "EM masked moments");
    }
    // One trajectory (variance identically 0) and a save at t0.
    let times = [0.0f32, 0.5, 1.0];
    let data = [[0.8f32], [1.0], [1.1]];
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 40).unwrap());
    let one = Problem::new(solver, [0.8], 1, &times)
        .unwrap()
        .with_u0_gradient(true);
    let mse = MeanSquaredError::new(&data).unwrap();
    assert_modes_agree(&one, &model, &mse, "one trajectory");
}

/// Save times off the nominal grid (uneven gaps, one shorter than a nominal step).
const UNEVEN: [f32; 4] = [0.13, 0.3, 0.317, 1.0];

/// The grids that are not uniform: through the save times with a step budget, and with a
/// maximum step (one segment with several steps, one with a single short step).
fn uneven_grids() -> [TimeGrid; 3] {
    [
        TimeGrid::through(0.0, 1.0, 40).unwrap(),
        TimeGrid::with_max_step(0.0, 1.0, 0.03).unwrap(),
        TimeGrid::with_max_step(0.0, 1.0, 0.1).unwrap(),
    ]
}

fn problem_on<M: Method>(method: M, grid: TimeGrid, u0: f32) -> Problem<'static, M, 1> {
    Problem::new(Solver::new(method, grid), [u0], 16, &UNEVEN).unwrap()
}

/// Reverse = forward on grids through the save times: every method with a VJP, every
/// loss, masks, windows and the `u0` gradient (the backward pass walks each grid's plan in
/// reverse; a wrong step time, size or save placement breaks the agreement).
#[test]
fn reverse_equals_forward_on_grids_through_the_save_times() {
    let model = small_model(7);
    let additive = additive_model();
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let moments = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let mask = [[true], [false], [true], [true]];
    let masked_moments = MomentMatching::masked(&DATA, &VAR_DATA, &mask).unwrap();
    for grid in uneven_grids() {
        let last = grid.check_save_times(&UNEVEN).unwrap();
        assert_ne!(grid.spacing(), Spacing::Uniform);
        let what = |m: &str| format!("{m} on {:?} ({last} steps)", grid.spacing());
        assert_modes_agree(
            &problem_on(EulerMaruyama, grid, 1.0),
            &model,
            &mse,
            &what("EM"),
        );
        assert_modes_agree(
            &problem_on(EulerHeun, grid, 1.0),
            &model,
            &mse,
            &what("EulerHeun"),
        );
        assert_modes_agree(&problem_on(Sriw1, grid, 1.0), &model, &mse, &what("SRIW1"));
        assert_modes_agree(&problem_on(Sosri, grid, 1.0), &model, &mse, &what("SOSRI"));
        assert_modes_agree(&problem_on(Sra1, grid, 1.0), &additive, &mse, &what("SRA1"));
        assert_modes_agree(
            &problem_on(Sosra, grid, 1.0),
            &additive,
            &mse,
            &what("SOSRA"),
        );
        for u0_gradient in [false, true] {
            let p = problem_on(Sosri, grid, 0.8).with_u0_gradient(u0_gradient);
            assert_modes_agree(&p, &model, &moments, &what("moments"));
            assert_modes_agree(&p, &model, &masked_moments, &what("masked moments"));
            let w = p.with_window(2).unwrap();
            assert_modes_agree(&w, &model, &moments, &what("window 2"));
            let w = p.with_window(3).unwrap();
            assert_modes_agree(&w, &model, &masked_moments, &what("masked window 3"));
        }
        // A save at t0 and one trajectory.
        let times = [0.0f32, 0.41, 1.0];
        let data = [[0.8f32], [1.0], [1.1]];
        let one = Problem::new(Solver::new(EulerHeun, grid), [0.8], 1, &times)
            .unwrap()
            .with_u0_gradient(true);
        let loss = MeanSquaredError::new(&data).unwrap();
        assert_modes_agree(&one, &model, &loss, &what("save at t0"));
    }
}

/// On grids through the save times, too, checkpointing changes memory, not results.
#[test]
fn checkpoints_do_not_change_the_bits_on_uneven_grids() {
    let model = small_model(8);
    let moments = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let noise = Brownian::new(4);
    let bits = |g: &[f32]| g.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for grid in uneven_grids() {
        let p = problem_on(Sriw1, grid, 1.0).with_u0_gradient(true);
        let reference = reverse_gradient(&p, &model, &noise, &moments, Checkpoints::All);
        for c in [
            Checkpoints::Sqrt,
            Checkpoints::Every(3),
            Checkpoints::Every(1000),
        ] {
            let r = reverse_gradient(&p, &model, &noise, &moments, c);
            assert_eq!(bits(&r.1), bits(&reference.1), "{c:?} {grid:?}");
            let long = reverse::tape_len_keep_all(&p, c);
            let r = reverse_gradient_with_tape(&p, &model, &noise, &moments, c, long);
            assert_eq!(r.0.to_bits(), reference.0.to_bits(), "{c:?} {grid:?}");
            assert_eq!(bits(&r.1), bits(&reference.1), "{c:?} {grid:?} keeping all");
        }
    }
}

/// The tape lengths count the steps the plan actually takes (more than the nominal grid's
/// index of the last save time when save times crowd together).
#[test]
fn tape_lengths_follow_the_plan() {
    let times = [0.001f32, 0.002, 0.003, 0.004];
    let grid = TimeGrid::through(0.0, 1.0, 1000).unwrap();
    let last = grid.check_save_times(&times).unwrap();
    assert_eq!(last, 4);
    let p = Problem::new(Solver::new(EulerMaruyama, grid), [1.0], 3, &times).unwrap();
    assert_eq!(reverse::tape_len(&p, Checkpoints::All), 16 + 4 + 1);
    let crowded = [0.0004f32, 0.0005, 0.0006, 0.0007];
    let last = grid.check_save_times(&crowded).unwrap();
    assert_eq!(last, 4); // one step each, although all round to index 0 or 1
    let p = Problem::new(Solver::new(EulerMaruyama, grid), [1.0], 3, &crowded).unwrap();
    assert_eq!(reverse::tape_len(&p, Checkpoints::All), 16 + 4 + 1);
    assert_eq!(
        reverse::tape_len_keep_all(&p, Checkpoints::All),
        16 + 3 * 5 + 1
    );
}

/// Checkpointing changes memory, not results: every interval gives the same bits.
#[test]
fn checkpoints_do_not_change_the_bits() {
    let model = small_model(5);
    let moments = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let p = problem(Sosri, 1.0).with_u0_gradient(true);
    let noise = Brownian::new(2);
    let reference = reverse_gradient(&p, &model, &noise, &moments, Checkpoints::All);
    for c in [
        Checkpoints::Sqrt,
        Checkpoints::Every(1),
        Checkpoints::Every(3),
        Checkpoints::Every(7),
        Checkpoints::Every(40),
        Checkpoints::Every(1000),
    ] {
        let bits = |g: &[f32]| g.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let r = reverse_gradient(&p, &model, &noise, &moments, c);
        assert_eq!(r.0.to_bits(), reference.0.to_bits(), "{c:?}");
        assert_eq!(bits(&r.1), bits(&reference.1), "{c:?}");
        // Keeping every trajectory's checkpoints (a longer tape) skips a pass, same bits.
        let long = reverse::tape_len_keep_all(&p, c);
        assert!(long > reverse::tape_len(&p, c));
        let r = reverse_gradient_with_tape(&p, &model, &noise, &moments, c, long);
        assert_eq!(r.0.to_bits(), reference.0.to_bits(), "{c:?} keeping all");
        assert_eq!(bits(&r.1), bits(&reference.1), "{c:?} keeping all");
    }
    assert_eq!(Checkpoints::All.states(40), 41);
    assert_eq!(Checkpoints::Sqrt.interval(40), 7);
    assert_eq!(Checkpoints::Sqrt.states(40), 6 + 7);
    assert_eq!(Checkpoints::Sqrt.states(600), 24 + 25);
    assert_eq!(Checkpoints::Every(1000).states(40), 1 + 40);
}

/// Against a fourth-order central difference of the f32 loss on the same noise. Error
/// budget as in tests/suite/gradient.rs: ~5e-5 |L| of rounding noise in the quotient at step
/// 2e-2, so the tolerance is `2e-4 max|g| + 2e-3 |g_i|`.
#[test]
fn reverse_matches_finite_differences() {
    let model = small_model(6);
    let moments = MomentMatching::new(&DATA, &VAR_DATA).unwrap();
    let p = problem(Sriw1, 1.0).with_u0_gradient(true);
    let noise = Brownian::new(8);
    let (_, g) = reverse_gradient(&p, &model, &noise, &moments, Checkpoints::Sqrt);
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

/// Geometric Brownian motion du = a u dt + b u dW with trainable a, b and a hand-written VJP.
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

/// L = sum over save times of u(t)^2 / 2 (one trajectory: the mean is the path).
struct HalfSquares;
impl Loss<1> for HalfSquares {
    fn eval<T: Real>(&self, mean: &[[T; 1]], _var: &[[T; 1]]) -> T {
        mean.iter().fold(T::ZERO, |acc, m| acc + m[0] * m[0] * 0.5)
    }
}

/// Mean relative error of the reverse-mode gradient against the closed-form pathwise
/// gradient of GBM (Itô: u = u0 exp((a - b²/2) t + b W)) over `paths` paths, with `2^k`
/// steps on [0, 1], each path sampled on 2^12 fine steps and coarsened.
fn gbm_gradient_error<M>(method: M, k: u32, paths: u64) -> f64
where
    M: Method + StepVjp<Gbm, 1> + Copy,
{
    const FINE: u32 = 12;
    let (a, b, u0) = (1.01f32, 0.87f32, 0.5f32);
    let model = Gbm { p: [a, b] };
    let times = [0.25f32, 0.5, 0.75, 1.0];
    let mut total = 0.0;
    for path in 0..paths {
        let fine = Brownian::new(1000 + path);
        let noise = Coarsened::new(fine, 1 << (FINE - k)).unwrap();
        let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 1 << k).unwrap());
        let problem = Problem::new(solver, [u0], 1, &times).unwrap();
        let mut stats = [[Dual::<2>::ZERO; 1]; 8];
        let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, Checkpoints::Sqrt)];
        let mut grad = [0.0f32; 2];
        loss_and_gradient(
            &Ensemble::new(&problem, &HalfSquares, &noise),
            &model,
            Reverse(Checkpoints::Sqrt),
            &mut Scratch::new(&mut stats, &mut tape),
            &mut grad,
        )
        .unwrap();
        let (a, b, u0) = (a as f64, b as f64, u0 as f64);
        let hf = 1.0 / (1u64 << FINE) as f64;
        let mut w = 0.0f64;
        let (mut g1, mut g2) = (0.0, 0.0);
        let mut next = 0;
        for step in 0..(1u32 << FINE) {
            w += fine.increment::<1>(0, step, hf as f32, false).unwrap().dw[0] as f64;
            let t = (step + 1) as f64 * hf;
            if next < times.len() && (t - times[next] as f64).abs() < 1e-9 {
                let e = u0 * u0 * (2.0 * (a - b * b / 2.0) * t + 2.0 * b * w).exp();
                g1 += t * e;
                g2 += (w - b * t) * e;
                next += 1;
            }
        }
        let err = ((grad[0] as f64 - g1).powi(2) + (grad[1] as f64 - g2).powi(2)).sqrt();
        total += err / (g1 * g1 + g2 * g2).sqrt();
    }
    total / paths as f64
}

#[test]
fn gbm_reverse_gradient_converges_to_closed_form() {
    let em: Vec<f64> = (4..=10)
        .step_by(2)
        .map(|k| gbm_gradient_error(EulerMaruyama, k, 16))
        .collect();
    for w in em.windows(2) {
        assert!(w[1] < w[0], "EM error did not decrease: {em:?}");
    }
    assert!(em[em.len() - 1] < 0.05, "EM finest error {em:?}");
    let sosri: Vec<f64> = (2..=8)
        .step_by(2)
        .map(|k| gbm_gradient_error(Sosri, k, 16))
        .collect();
    for w in sosri.windows(2) {
        assert!(w[1] < w[0], "SOSRI error did not decrease: {sosri:?}");
    }
    let slope = (sosri[0] / sosri[sosri.len() - 1]).ln() / (4f64.ln() * (sosri.len() - 1) as f64);
    assert!(slope > 1.0, "SOSRI order {slope} from {sosri:?}");
    assert!(
        sosri[sosri.len() - 1] < 1e-3,
        "SOSRI finest error {sosri:?}"
    );
}

#[test]
fn bad_inputs_are_errors_and_touch_nothing() {
    let model = small_model(1);
    let p = problem(EulerMaruyama, 1.0);
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let noise = Brownian::new(1);
    let need = reverse::tape_len(&p, Checkpoints::Sqrt);
    let mut stats = vec![[Dual::<4>::ZERO; 1]; 8];
    let mut grad = vec![7.0f32; Small::PARAMS];
    let mut tape = vec![[5.0f32; 1]; need - 1];
    let e = loss_and_gradient(
        &Ensemble::new(&p, &mse, &noise),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    );
    assert!(
        matches!(e, Err(Error::Length { expected, .. }) if expected == need),
        "{e:?}"
    );
    assert!(grad.iter().all(|&g| g == 7.0) && tape.iter().all(|t| t[0] == 5.0));
    let mut tape = vec![[5.0f32; 1]; need];
    let mut short = vec![7.0f32; Small::PARAMS - 1];
    let e = loss_and_gradient(
        &Ensemble::new(&p, &mse, &noise),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut short,
    );
    assert!(matches!(e, Err(Error::Length { .. })), "{e:?}");
    let mut few = vec![[Dual::<4>::ZERO; 1]; 7];
    let e = loss_and_gradient(
        &Ensemble::new(&p, &mse, &noise),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut few, &mut tape),
        &mut grad,
    );
    assert!(matches!(e, Err(Error::Length { .. })), "{e:?}");
    let short_data = [[1.0f32]; 3];
    let bad_loss = MeanSquaredError::new(&short_data).unwrap();
    let e = loss_and_gradient(
        &Ensemble::new(&p, &bad_loss, &noise),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    );
    assert!(e.is_err());
    assert!(grad.iter().all(|&g| g == 7.0) && tape.iter().all(|t| t[0] == 5.0));
    // SRA on a diagonal-noise model: unsupported noise.
    let sra = problem(Sra1, 1.0);
    let e = loss_and_gradient(
        &Ensemble::new(&sra, &mse, &noise),
        &model,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    );
    assert!(matches!(e, Err(Error::UnsupportedNoise { .. })), "{e:?}");
    assert!(grad.iter().all(|&g| g == 7.0));
    // A grid through the save times takes any time in the span, but not one outside it:
    // a typed error, nothing written.
    let through = Solver::new(EulerMaruyama, TimeGrid::through(0.0, 1.0, 40).unwrap());
    let outside = [0.25f32, 0.5, 0.75, 1.5];
    let tp = Problem::new(through, [1.0], 16, &outside);
    match tp {
        Err(e) => assert!(matches!(e, Error::SaveTime { index: 3 }), "{e:?}"),
        Ok(tp) => {
            let e = loss_and_gradient(
                &Ensemble::new(&tp, &mse, &noise),
                &model,
                Reverse(Checkpoints::Sqrt),
                &mut Scratch::new(&mut stats, &mut tape),
                &mut grad,
            );
            assert!(matches!(e, Err(Error::SaveTime { index: 3 })), "{e:?}");
            assert!(grad.iter().all(|&g| g == 7.0));
        }
    }
    // A diverging model is reported as such, not returned as numbers.
    let wild = Gbm { p: [1e30, 0.5] };
    let mut g2 = [7.0f32; 2];
    let e = loss_and_gradient(
        &Ensemble::new(&p, &mse, &noise),
        &wild,
        Reverse(Checkpoints::Sqrt),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut g2,
    );
    assert!(
        matches!(e, Err(Error::Diverged { trajectory: 0, .. })),
        "{e:?}"
    );
}

#[test]
fn reverse_gradient_allocates_nothing() {
    let model = small_model(2);
    let p = problem(Sosri, 1.0).with_u0_gradient(true);
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let noise = Brownian::new(1);
    let mut stats = [[Dual::<4>::ZERO; 1]; 8];
    let mut tape = [[0.0f32; 1]; 64];
    assert!(reverse::tape_len(&p, Checkpoints::Sqrt) <= 64);
    let mut grad = [0.0f32; Small::PARAMS + 1];
    let (count, result) = allocations(|| {
        loss_and_gradient(
            &Ensemble::new(&p, &mse, &noise),
            &model,
            Reverse(Checkpoints::Sqrt),
            &mut Scratch::new(&mut stats, &mut tape),
            &mut grad,
        )
    });
    assert!(result.is_ok());
    assert_eq!(count, 0, "reverse mode allocated");
}

/// The trainer's cheaper mode is reverse mode on grids through the save times too, and it
/// trains the same problem as forward mode: the first loss has the same bits, and both
/// runs reduce the loss alike.
#[test]
fn cheaper_mode_trains_in_reverse_on_uneven_grids() {
    use core::ops::ControlFlow;
    use tinysde::train::{Adam, AdamConfig, GradientMode, TrainConfig, Trainer, Workspace};
    const P: usize = Small::PARAMS;
    let mse = MeanSquaredError::new(&DATA).unwrap();
    let mut losses: Vec<Vec<f32>> = Vec::new();
    for reverse_mode in [false, true] {
        let grid = TimeGrid::through(0.0, 1.0, 40).unwrap();
        let problem = problem_on(EulerHeun, grid, 1.0);
        let mut model = small_model(9);
        let mut adam = Adam::new(AdamConfig::lr(0.02), [0.0; P], [0.0; P]).unwrap();
        let (mut params, mut grad, mut best) = ([0.0; P], [0.0; P], [0.0; P]);
        let mut stats = vec![[Dual::<4>::ZERO; 1]; problem.stats_len()];
        let mut tape = vec![[0.0f32; 1]; reverse::tape_len_keep_all(&problem, Checkpoints::All)];
        let ws = Workspace {
            params: &mut params,
            grad: &mut grad,
            best: &mut best,
            scratch: Scratch::new(&mut stats, &mut tape),
        };
        // The cheaper mode for this model is reverse mode.
        assert!(!tinysde::train::forward_is_cheaper(P, 4));
        let mode = if reverse_mode {
            GradientMode::Reverse(Checkpoints::All)
        } else {
            GradientMode::Forward
        };
        let mut trainer = EnsembleFit::new(problem, mse)
            .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
            .and_then(|t| t.with_mode(mode))
            .unwrap();
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

/// A loss whose value overflows (`mean^2 * 1e38 * 1e38`) or, with `spike`, whose value is
/// finite and whose derivative is not (`(m - m.value) * 1e38 * 1e38` adds 0 to the value).
struct Overflowing {
    spike: bool,
}
impl Loss<1> for Overflowing {
    fn eval<T: Real>(&self, mean: &[[T; 1]], _var: &[[T; 1]]) -> T {
        let m = mean[0][0];
        if self.spike {
            m * 0.0 + (m - T::from_value(m.value())) * 1e38 * 1e38
        } else {
            m * m * 1e38 * 1e38
        }
    }
}

#[test]
fn non_finite_losses_and_gradients_are_the_same_typed_errors_in_both_modes() {
    let model = additive_model();
    let problem = problem(EulerMaruyama, 0.5);
    let noise = Brownian::new(3);
    for (spike, expected) in [
        (false, Error::NonFiniteLoss),
        (true, Error::NonFiniteGradientEntry { index: 0 }),
    ] {
        let loss = Overflowing { spike };
        let mut stats = vec![[Dual::<4>::ZERO; 1]; problem.stats_len()];
        let mut grad = vec![0.0f32; Additive::PARAMS];
        let forward = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            &model,
            Forward,
            &mut Scratch::new(&mut stats, &mut []),
            &mut grad,
        );
        let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, Checkpoints::All)];
        let mut grad = vec![0.0f32; Additive::PARAMS];
        let serial = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            &model,
            Reverse(Checkpoints::All),
            &mut Scratch::new(&mut stats, &mut tape),
            &mut grad,
        );
        let sentinel = vec![1.25f32; Additive::PARAMS];
        let mut grad = sentinel.clone();
        let threaded = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            &model,
            Threads(Reverse(Checkpoints::All), 2),
            &mut Scratch::<8, 1>::owned(),
            &mut grad,
        );
        assert_eq!(forward, Err(expected), "forward, spike {spike}");
        assert_eq!(serial, Err(expected), "reverse, spike {spike}");
        assert_eq!(threaded, Err(expected), "threaded reverse, spike {spike}");
        assert_eq!(grad, sentinel, "the threaded form writes only on success");
    }
}
