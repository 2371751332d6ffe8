//! The error contract under adversarial input, through the public API only.
//!
//! Every public entry point is called with inputs drawn to hurt: NaN, ±inf, subnormals,
//! ±f32::MAX, zeros, wrong lengths, unsorted and off-grid save times, huge step indices.
//! Each call must return either a typed error, with everything the caller passed in
//! (buffers, model, optimizer) bit-identical to before, or a finite result that is correct
//! by an independent check. The first test replays, one by one, the cases of the
//! adversarial report that this suite was written for.

use proptest::prelude::*;
use tinysde::grad::Forward;
use tinysde::grad::{loss_and_gradient, loss_value, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::nn::{Cube, Dense, Identity, Layer, ParamSeed, Parameters, Relu};
use tinysde::noise::{Brownian, Coarsened, NoiseSource};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{
    self, EnsembleBuffers, EnsembleRequest, EulerMaruyama, Milstein, SolveRequest, Solver,
    TimeGrid, BACKUP_ROWS, PARALLEL_LANES,
};
use tinysde::train::EnsembleFit;
use tinysde::train::{
    clip_global_norm, Adam, AdamConfig, MeanSquaredError, Optimizer, Sgd, SgdConfig,
};
use tinysde::{weights, Dual, Error, NoiseKind, Real};

/// du = (a u^3 + b) dt + (c u + d) dW: diverges for a > 0 and a large state.
type Model = NeuralSde<(Cube<1>, Dense<1, 1, Identity>), Dense<1, 1, Identity>>;
const P: usize = <Model as Parameters>::PARAMS;

/// Sentinel bits no computation produces, to see whether a buffer was touched.
const SENTINEL: f32 = -1234.5678;

fn bits<const D: usize>(rows: &[[f32; D]]) -> Vec<[u32; D]> {
    rows.iter().map(|r| r.map(f32::to_bits)).collect()
}

fn model(params: [f32; P]) -> Option<Model> {
    let mut m = Model::default();
    m.write_params(&params).ok()?;
    Some(m)
}

/// Pure cubic drift `du = u^3 dt + dW`, the report's diverging ensemble.
struct Cubic;
impl<T: Real> Sde<T, 1> for Cubic {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * u[0] * u[0]]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::ONE]
    }
}

#[test]
fn each_case_of_the_adversarial_report_returns_a_typed_error_or_the_right_answer() {
    // 1. A diverging ensemble leaves mean and var as they were.
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 10).unwrap());
    let (mut mean, mut var) = ([[SENTINEL]; 2], [[SENTINEL]; 2]);
    let r = solve::simulate_into(
        &solver,
        &Cubic,
        &Brownian::new(0),
        &EnsembleRequest::new([100.0], 4, &[0.0, 1.0]),
        EnsembleBuffers::new(&mut mean, &mut var),
    );
    assert!(
        matches!(r, Err(Error::Diverged { trajectory: 0, .. })),
        "{r:?}"
    );
    assert_eq!((mean, var), ([[SENTINEL]; 2], [[SENTINEL]; 2]));

    // ... and a diverging gradient leaves `grad` as it was.
    let m = model([1.0, 0.0, 0.0, 1.0]).unwrap();
    let times = [0.5, 1.0];
    let data = [[1.0], [1.0]];
    let problem = Problem::new(solver, [100.0], 4, &times).unwrap();
    let loss = MeanSquaredError::new(&data).unwrap();
    let mut grad = [SENTINEL; P];
    let mut stats = [[Dual::<1>::ZERO; 1]; 4];
    let r = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &Brownian::new(0)),
        &m,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut grad,
    );
    assert!(matches!(r, Err(Error::Diverged { .. })), "{r:?}");
    assert_eq!(grad.map(f32::to_bits), [SENTINEL; P].map(f32::to_bits));

    // 2. A coarse step whose fine steps run past u32::MAX is refused, not wrapped.
    let coarse = Coarsened::new(Brownian::new(1), 3).unwrap();
    assert_eq!(
        coarse.increment::<1>(0, 1_431_655_765, 0.3, false),
        Err(Error::NoiseExhausted {
            trajectory: 0,
            step: 1_431_655_765
        })
    );

    // 3. Non-finite or non-positive step sizes are refused.
    let noise = Brownian::new(1);
    assert!(matches!(
        noise.increment::<1>(0, 0, f32::NAN, false),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        noise.increment::<1>(0, 0, -1.0, false),
        Err(Error::OutOfRange { .. })
    ));

    // 4. Clipping a gradient whose norm overflows f32 scales it correctly.
    let mut g = [3e38f32, 3e38];
    assert_eq!(clip_global_norm(&mut g, 1.0), Ok(f32::MAX));
    for x in g {
        assert!((x - core::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6, "{g:?}");
    }

    // 5. Adam refuses a gradient whose square overflows, instead of freezing for good.
    let mut adam = Adam::new(AdamConfig::lr(0.1), [0.0f32; 1], [0.0f32; 1]).unwrap();
    let mut p = [1.0f32];
    let before = adam.clone();
    assert_eq!(
        adam.step(&mut p, &[1e20]),
        Err(Error::UpdateOverflow { index: 0 })
    );
    assert_eq!((adam.clone(), p), (before, [1.0]));
    adam.step(&mut p, &[1.0]).unwrap();
    assert!(p[0] < 1.0, "the parameter still moves: {p:?}");

    // 6. SGD refuses an update that would make a parameter infinite.
    let mut sgd = Sgd::new(
        SgdConfig {
            lr: 1e30,
            momentum: 0.0,
        },
        [0.0f32; 1],
    )
    .unwrap();
    let mut p = [0.5f32];
    assert_eq!(
        sgd.step(&mut p, &[1e30]),
        Err(Error::UpdateOverflow { index: 0 })
    );
    assert_eq!((p, sgd.velocity()), ([0.5], &[0.0f32][..]));

    // 7. A window past isize::MAX seeds nothing (it used to wrap to parameters 0..3).
    assert_eq!(ParamSeed::window(usize::MAX), ParamSeed::NONE);
    assert_eq!(ParamSeed::window(usize::MAX).lane(0, 4), None);
    assert_eq!(ParamSeed::window(usize::MAX).seeded(4, 4).count(), 0);

    // 9. abs, max, min and ReLU propagate NaN.
    let nan = f32::NAN;
    assert!(Real::abs(nan).is_nan());
    assert!(Real::max(nan, 1.0).is_nan() && Real::max(1.0, nan).is_nan());
    assert!(Real::min(nan, 1.0).is_nan() && Real::min(1.0, nan).is_nan());
    let relu = Dense::<1, 1, Relu>::new([[1.0]], [0.0]);
    let y: [f32; 1] = relu.forward(&[nan], ParamSeed::NONE);
    assert!(y[0].is_nan());
    let d = Dual::<1>::variable(nan, 0);
    assert!(d.abs().v.is_nan() && d.max(Dual::ONE).v.is_nan());

    // 11. The unchecked parameter copies do not panic on short slices; powi(i32::MIN)
    //     does not overflow.
    let dense = Dense::<2, 2, Identity>::new([[1.0, 2.0], [3.0, 4.0]], [5.0, 6.0]);
    let mut short = [0.0f32; 3];
    dense.read_unchecked(&mut short);
    assert_eq!(short, [1.0, 2.0, 3.0]);
    let mut copy = dense;
    copy.write_unchecked(&[9.0]);
    assert_eq!(copy.weight, [[9.0, 2.0], [3.0, 4.0]]);
    let one = Dual::<1>::variable(1.0, 0).powi(i32::MIN);
    assert_eq!((one.v, one.t[0]), (1.0, i32::MIN as f32));
    let two = Dual::<1>::variable(2.0, 0).powi(i32::MIN);
    assert_eq!((two.v, two.t[0]), (0.0, 0.0));
}

/// Floats that break code: NaN, infinities, zeros, subnormals, extremes, ordinary values.
fn nasty() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(0.0f32),
        Just(-0.0f32),
        Just(f32::MAX),
        Just(f32::MIN),
        Just(f32::MIN_POSITIVE),
        Just(1e-40f32),
        Just(-1e-45f32),
        Just(1e20f32),
        Just(-3e38f32),
        -10.0f32..10.0,
        -1.0f32..1.0,
        any::<f32>(),
    ]
}

/// Mostly ordinary values, sometimes nasty ones.
fn mostly_tame() -> impl Strategy<Value = f32> {
    prop_oneof![8 => -2.0f32..2.0, 1 => nasty()]
}

/// Save times on the grid of [0, 1] with 8 steps, sometimes perturbed, unsorted or nasty.
fn save_times() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        4 => proptest::collection::btree_set(0u32..=8, 1..6)
            .prop_map(|s| s.into_iter().map(|k| k as f32 / 8.0).collect()),
        1 => proptest::collection::vec(0u32..=8, 0..6)
            .prop_map(|v| v.into_iter().map(|k| k as f32 / 8.0).collect()),
        1 => proptest::collection::vec(mostly_tame(), 0..6),
    ]
}

/// Cases per property: 300, or `CONTRACT_CASES` (CI runs many more).
fn cases() -> u32 {
    std::env::var("CONTRACT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn nan_propagates_through_abs_max_min_and_agrees_with_f32_otherwise(a in nasty(), b in nasty()) {
        prop_assert_eq!(Real::max(a, b).is_nan(), a.is_nan() || b.is_nan());
        prop_assert_eq!(Real::min(a, b).is_nan(), a.is_nan() || b.is_nan());
        prop_assert_eq!(Real::abs(a).is_nan(), a.is_nan());
        if !(a.is_nan() || b.is_nan()) {
            prop_assert_eq!(Real::max(a, b), a.max(b));
            prop_assert_eq!(Real::min(a, b), a.min(b));
            prop_assert_eq!(Real::abs(a), a.abs());
        }
    }

    #[test]
    fn noise_increments_are_a_typed_error_or_finite(
        h in nasty(), step in any::<u32>(), trajectory in any::<usize>(), factor in 0u32..8,
        with_dz in any::<bool>(),
    ) {
        let fine = Brownian::new(5);
        match fine.increment::<2>(trajectory, step, h, with_dz) {
            Ok(inc) => {
                prop_assert!(h.is_finite() && h > 0.0);
                prop_assert!(inc.dw.iter().chain(&inc.dz).all(|x| x.is_finite()));
            }
            Err(e) => prop_assert!(!(h.is_finite() && h > 0.0), "{e:?}"),
        }
        match Coarsened::new(fine, factor) {
            Err(_) => prop_assert_eq!(factor, 0),
            Ok(coarse) => match coarse.increment::<2>(trajectory, step, h, with_dz) {
                Ok(inc) => {
                    // The exact fine steps exist: no index wrapped.
                    let last = u64::from(step) * u64::from(factor) + u64::from(factor) - 1;
                    prop_assert!(last <= u64::from(u32::MAX));
                    prop_assert!(inc.dw.iter().chain(&inc.dz).all(|x| x.is_finite()));
                }
                Err(Error::NoiseExhausted { .. }) => {
                    let last = u64::from(step) * u64::from(factor) + u64::from(factor) - 1;
                    prop_assert!(last > u64::from(u32::MAX));
                }
                // Only a bad step size, or one that underflows to 0 when divided.
                Err(_) => prop_assert!(!(h.is_finite() && h > 0.0) || h / factor as f32 == 0.0),
            },
        }
    }

    #[test]
    fn clipping_is_a_typed_error_leaving_the_gradient_or_a_correct_finite_clip(
        g in proptest::collection::vec(nasty(), 0..6), max_norm in nasty(),
    ) {
        let mut clipped = g.clone();
        match clip_global_norm(&mut clipped, max_norm) {
            Err(_) => prop_assert_eq!(
                clipped.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                g.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            ),
            Ok(norm) => {
                prop_assert!(norm.is_finite() && norm >= 0.0);
                prop_assert!(clipped.iter().all(|x| x.is_finite()));
                // The norm in f64 (cannot overflow), then the clip: at most max_norm, same
                // direction.
                let exact = g.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
                prop_assert!((f64::from(norm) - exact.min(f64::from(f32::MAX))).abs() <= 1e-5 * exact + 1e-44);
                // In f64: the clipped norm may round to just above f32::MAX.
                let after = clipped.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
                prop_assert!(after <= f64::from(max_norm) * (1.0 + 1e-5));
                if exact > f64::from(max_norm) && exact.is_finite() {
                    for (&c, &x) in clipped.iter().zip(&g) {
                        let want = f64::from(x) * f64::from(max_norm) / exact;
                        prop_assert!((f64::from(c) - want).abs() <= 1e-5 * f64::from(max_norm) + 1e-37);
                    }
                } else {
                    prop_assert_eq!(&clipped, &g);
                }
            }
        }
    }

    #[test]
    fn optimizer_steps_are_a_typed_error_leaving_everything_or_finite(
        lr in nasty(), momentum in nasty(),
        p0 in proptest::collection::vec(mostly_tame(), 3),
        grads in proptest::collection::vec(proptest::collection::vec(nasty(), 3), 1..4),
        short in any::<bool>(),
    ) {
        if let Ok(mut adam) = Adam::new(AdamConfig::lr(lr), vec![0.0f32; 3], vec![0.0f32; 3]) {
            let mut p = p0.clone();
            for g in &grads {
                let g = if short { &g[..2] } else { &g[..] };
                let (state, before) = (adam.clone(), p.clone());
                match adam.step(&mut p, g) {
                    Ok(()) => {
                        let (m, v) = adam.moments();
                        prop_assert!(p.iter().chain(m).chain(v).all(|x| x.is_finite()));
                    }
                    Err(_) => {
                        prop_assert_eq!(&adam, &state);
                        prop_assert_eq!(bits1(&p), bits1(&before));
                    }
                }
            }
        }
        if let Ok(mut sgd) = Sgd::new(SgdConfig { lr, momentum }, vec![0.0f32; 3]) {
            let mut p = p0.clone();
            for g in &grads {
                let (state, before) = (sgd.clone(), p.clone());
                match sgd.step(&mut p, g) {
                    Ok(()) => prop_assert!(p.iter().chain(sgd.velocity()).all(|x| x.is_finite())),
                    Err(_) => {
                        prop_assert_eq!(&sgd, &state);
                        prop_assert_eq!(bits1(&p), bits1(&before));
                    }
                }
            }
        }
    }

    #[test]
    fn solve_and_ensemble_are_a_typed_error_leaving_the_buffers_or_finite_and_consistent(
        params in proptest::collection::vec(mostly_tame(), P),
        u0 in mostly_tame(),
        times in save_times(),
        trajectories in 0usize..4,
        len_delta in prop_oneof![6 => Just(0isize), 1 => -1isize..=1],
        with_paths in any::<bool>(),
        milstein in any::<bool>(),
    ) {
        let Some(m) = model(params.clone().try_into().unwrap()) else {
            // Non-finite parameters are refused by write_params; that is tested below.
            return Ok(());
        };
        let grid = TimeGrid::new(0.0, 1.0, 8).unwrap();
        let noise = Brownian::new(3);
        let n = (times.len() as isize + len_delta).max(0) as usize;
        let mut mean = vec![[SENTINEL]; n];
        let mut var = vec![[SENTINEL]; n];
        let mut paths = vec![[SENTINEL]; trajectories * n];
        let r = if milstein {
            solve::simulate_into(&Solver::new(Milstein, grid), &m, &noise, &EnsembleRequest::new([u0], trajectories, &times), EnsembleBuffers { mean: &mut mean, variance: &mut var, paths: with_paths.then_some(&mut paths[..]) })
        } else {
            solve::simulate_into(&Solver::new(EulerMaruyama, grid), &m, &noise, &EnsembleRequest::new([u0], trajectories, &times), EnsembleBuffers { mean: &mut mean, variance: &mut var, paths: with_paths.then_some(&mut paths[..]) })
        };
        match r {
            Err(_) => {
                prop_assert!(mean.iter().chain(&var).chain(&paths).all(|x| x[0].to_bits() == SENTINEL.to_bits()));
            }
            Ok(()) => {
                prop_assert!(mean.iter().chain(&var).all(|x| x[0].is_finite()));
                // Each trajectory on its own agrees with the ensemble: its mean is theirs.
                let mut sum = vec![0.0f64; n];
                for t in 0..trajectories {
                    let mut out = vec![[SENTINEL]; n];
                    let solver = Solver::new(EulerMaruyama, grid);
                    if milstein {
                        solve::solve(&Solver::new(Milstein, grid), &m, &noise, &SolveRequest::new([u0], &times).trajectory(t), &mut out)
                    } else {
                        solve::solve(&solver, &m, &noise, &SolveRequest::new([u0], &times).trajectory(t), &mut out)
                    }
                    .unwrap();
                    for (s, o) in sum.iter_mut().zip(&out) {
                        *s += f64::from(o[0]);
                    }
                    if with_paths {
                        prop_assert_eq!(bits(&out), bits(&paths[t * n..(t + 1) * n]));
                    }
                }
                for (s, mu) in sum.iter().zip(&mean) {
                    let avg = s / trajectories as f64;
                    prop_assert!((avg - f64::from(mu[0])).abs() <= 1e-4 * (1.0 + avg.abs()));
                }
            }
        }
        // One trajectory: the same contract.
        let mut out = vec![[SENTINEL]; n];
        match solve::solve(&Solver::new(EulerMaruyama, grid), &m, &noise, &SolveRequest::new([u0], &times), &mut out) {
            Err(_) => prop_assert!(out.iter().all(|x| x[0].to_bits() == SENTINEL.to_bits())),
            Ok(()) => prop_assert!(out.iter().all(|x| x[0].is_finite())),
        }
    }

    #[test]
    fn loss_and_gradient_is_a_typed_error_leaving_grad_or_finite(
        params in proptest::collection::vec(mostly_tame(), P),
        u0 in mostly_tame(),
        data in proptest::collection::vec(mostly_tame(), 2),
        grad_len in prop_oneof![6 => Just(P + 1), 1 => 0usize..7],
    ) {
        let Some(m) = model(params.clone().try_into().unwrap()) else { return Ok(()) };
        let times = [0.5, 1.0];
        let data = [[data[0]], [data[1]]];
        let Ok(loss) = MeanSquaredError::new(&data) else {
            prop_assert!(data.iter().any(|d| !d[0].is_finite()));
            return Ok(());
        };
        let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 8).unwrap());
        let Ok(problem) = Problem::new(solver, [u0], 3, &times) else {
            prop_assert!(!u0.is_finite());
            return Ok(());
        };
        let problem = problem.with_u0_gradient(true);
        let noise = Brownian::new(11);
        // One pass of K = P + 1 lanes: every error happens in the first pass, so `grad`
        // must be untouched after any error.
        let mut grad = vec![SENTINEL; grad_len];
        let mut stats = [[Dual::<{ P + 1 }>::ZERO; 1]; 4];
        let r = loss_and_gradient(&Ensemble::new(&problem, &loss, &noise), &m, Forward, &mut Scratch::new(&mut stats, &mut []), &mut grad);
        let mut stats32 = [[0.0f32; 1]; 4];
        let value = loss_value(&problem, &m, &noise, &loss, &mut stats32);
        match r {
            Err(_) => prop_assert!(grad.iter().all(|g| g.to_bits() == SENTINEL.to_bits())),
            Ok(l) => {
                prop_assert!(l.is_finite() && grad.iter().all(|g| g.is_finite()));
                prop_assert_eq!(value, Ok(l));
                // K = 1 lane per pass gives the same bits.
                let mut g1 = vec![SENTINEL; grad_len];
                let mut stats1 = [[Dual::<1>::ZERO; 1]; 4];
                match loss_and_gradient(&Ensemble::new(&problem, &loss, &noise), &m, Forward, &mut Scratch::new(&mut stats1, &mut []), &mut g1) {
                    Ok(l1) => {
                        prop_assert_eq!(l1, l);
                        prop_assert_eq!(bits1(&g1), bits1(&grad));
                    }
                    // Only a tangent overflow in a later pass: a finished prefix, the rest
                    // untouched.
                    Err(e) => prop_assert!(false, "{e:?}"),
                }
            }
        }
    }

    #[test]
    fn parameters_and_weights_are_a_typed_error_leaving_the_model_or_finite(
        params in proptest::collection::vec(nasty(), 0..6),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        truncate in any::<prop::sample::Index>(),
        out_len in 0usize..80,
    ) {
        let reference = model([0.5, -0.25, 0.125, 2.0]).unwrap();
        let mut m = reference;
        match m.write_params(&params) {
            Ok(()) => {
                prop_assert!(params.len() == P && params.iter().all(|x| x.is_finite()));
                let mut back = [0.0f32; P];
                m.read_params(&mut back).unwrap();
                prop_assert_eq!(bits1(&back), bits1(&params));
            }
            Err(_) => prop_assert_eq!(m, reference),
        }
        let mut read_buf = vec![SENTINEL; params.len()];
        if m.read_params(&mut read_buf).is_err() {
            prop_assert!(read_buf.iter().all(|x| x.to_bits() == SENTINEL.to_bits()));
        }

        // Writing into a buffer too short: refused, buffer untouched.
        let mut out = vec![0xA5u8; out_len];
        match weights::write(&reference, &mut out) {
            Ok(n) => prop_assert_eq!(n, weights::encoded_len::<Model>()),
            Err(_) => prop_assert!(out.iter().all(|&b| b == 0xA5)),
        }
        // Reading a corrupted or truncated blob: refused, model untouched.
        let mut blob = weights::to_vec(&reference).unwrap();
        for (at, x) in &flips {
            let i = at.index(blob.len());
            blob[i] ^= x;
        }
        let cut = if flips.is_empty() { truncate.index(blob.len() + 1) } else { blob.len() };
        let blob = &blob[..cut];
        let mut target = model([9.0, 9.0, 9.0, 9.0]).unwrap();
        let untouched = target;
        match weights::read_into(&mut target, blob) {
            Ok(()) => {
                let mut p = [0.0f32; P];
                target.read_params(&mut p).unwrap();
                prop_assert!(p.iter().all(|x| x.is_finite()));
            }
            Err(_) => prop_assert_eq!(target, untouched),
        }
    }

    #[test]
    fn time_grids_are_a_typed_error_or_positive_and_finite(t0 in nasty(), t1 in nasty(), steps in any::<u32>(), h in nasty()) {
        if let Ok(grid) = TimeGrid::new(t0, t1, steps) {
            prop_assert!(grid.h() > 0.0 && grid.h().is_finite() && grid.t1() > grid.t0());
        }
        if let Ok(grid) = TimeGrid::with_step(t0, t1, h) {
            prop_assert!(grid.h() > 0.0 && grid.h().is_finite() && grid.steps() >= 1);
        }
    }

    #[test]
    fn param_seeds_never_wrap(start in any::<usize>(), offset in any::<usize>(), j in any::<usize>(), lanes in 0usize..64) {
        let seed = ParamSeed::window(start).shifted(offset);
        // Parameter j of the sub-layer is global parameter offset + j; its lane is that minus start.
        let global = (offset as u128) + (j as u128);
        let expected = global
            .checked_sub(start as u128)
            .filter(|&l| l < lanes as u128)
            .map(|l| l as usize);
        let expected = if start > isize::MAX as usize { None } else { expected };
        prop_assert_eq!(seed.lane(j, lanes), expected);
        for (jj, lane) in seed.seeded(lanes.min(8), lanes) {
            prop_assert_eq!(seed.lane(jj, lanes), Some(lane));
        }
    }
}

fn bits1(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Longer outputs than the stack copy holds go through the checking pass: same contract.
#[test]
fn long_save_lists_and_paths_are_still_written_only_on_success() {
    let steps = (BACKUP_ROWS as u32 + 8) * 2;
    let grid = TimeGrid::new(0.0, 1.0, steps).unwrap();
    let times: Vec<f32> = (1..=steps).map(|k| grid.time(k)).collect();
    let solver = Solver::new(EulerMaruyama, grid);
    let n = times.len();
    for u0 in [0.0f32, 100.0] {
        let (mut mean, mut var, mut out) = (
            vec![[SENTINEL]; n],
            vec![[SENTINEL]; n],
            vec![[SENTINEL]; n],
        );
        let mut paths = vec![[SENTINEL]; 3 * n];
        let r = solve::simulate_into(
            &solver,
            &Cubic,
            &Brownian::new(2),
            &EnsembleRequest::new([u0], 3, &times),
            EnsembleBuffers {
                mean: &mut mean,
                variance: &mut var,
                paths: Some(&mut paths),
            },
        );
        let s = solve::solve(
            &solver,
            &Cubic,
            &Brownian::new(2),
            &SolveRequest::new([u0], &times).trajectory(1),
            &mut out,
        );
        if u0 == 100.0 {
            assert!(
                matches!(r, Err(Error::Diverged { .. })) && s.is_err(),
                "{r:?} {s:?}"
            );
            assert!(mean
                .iter()
                .chain(&var)
                .chain(&paths)
                .chain(&out)
                .all(|x| x[0] == SENTINEL));
        } else {
            r.unwrap();
            s.unwrap();
            assert_eq!(bits(&out), bits(&paths[n..2 * n]));
        }
    }
}

/// `f = a + b * 1e30 * 1e30`, `g = 0.1`: at `b = 0` the state stays finite, but its
/// derivative in `b` is infinite. A gradient of one lane per pass fails in the second pass.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stiff {
    p: [f32; 2],
}

impl Parameters for Stiff {
    const PARAMS: usize = 2;
    fn read_unchecked(&self, out: &mut [f32]) {
        for (o, &p) in out.iter_mut().zip(&self.p) {
            *o = p;
        }
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        for (p, &s) in self.p.iter_mut().zip(src) {
            *p = s;
        }
    }
}

impl<T: Real> Sde<T, 1> for Stiff {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
        let a: T = seed.lift(self.p[0], 0);
        let b: T = seed.lift(self.p[1], 1);
        [a + b * 1e30 * 1e30]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::cst(0.1)]
    }
}

#[test]
fn a_gradient_keeps_only_finished_passes_when_a_later_derivative_overflows() {
    let model = Stiff { p: [0.5, 0.0] };
    let times = [0.5, 1.0];
    let data = [[1.0], [1.0]];
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 8).unwrap());
    let problem = Problem::new(solver, [1.0], 3, &times).unwrap();
    let loss = MeanSquaredError::new(&data).unwrap();
    let noise = Brownian::new(4);

    // Both parameters in one pass: the error comes from the first pass, grad is untouched.
    let mut grad = [SENTINEL; 2];
    let r = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut [[Dual::<2>::ZERO; 1]; 4], &mut []),
        &mut grad,
    );
    assert!(matches!(r, Err(Error::Diverged { .. })), "{r:?}");
    assert_eq!(grad.map(f32::to_bits), [SENTINEL.to_bits(); 2]);

    // One parameter per pass: pass 0 (parameter a) finishes and is written, pass 1 fails and
    // leaves entry 1 untouched, exactly as documented.
    let mut grad = [SENTINEL; 2];
    let r = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut [[Dual::<1>::ZERO; 1]; 4], &mut []),
        &mut grad,
    );
    assert!(matches!(r, Err(Error::Diverged { .. })), "{r:?}");
    // Entry 0 is the derivative in a alone: the same as for a model without the stiff term.
    struct Plain;
    impl<T: Real> Sde<T, 1> for Plain {
        const NOISE: NoiseKind = NoiseKind::Diagonal;
        fn drift(&self, _: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
            [seed.lift(0.5, 0)]
        }
        fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
            [T::cst(0.1)]
        }
    }
    impl Parameters for Plain {
        const PARAMS: usize = 2;
        fn read_unchecked(&self, _: &mut [f32]) {}
        fn write_unchecked(&mut self, _: &[f32]) {}
    }
    let mut plain = [0.0f32; 2];
    loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &Plain,
        Forward,
        &mut Scratch::new(&mut [[Dual::<1>::ZERO; 1]; 4], &mut []),
        &mut plain,
    )
    .unwrap();
    assert_eq!(grad[0].to_bits(), plain[0].to_bits());
    assert_eq!(grad[1].to_bits(), SENTINEL.to_bits());
}

/// Runs `$body` with `$solver` bound to a solver of each method on `$grid`.
macro_rules! for_each_method {
    ($grid:expr, |$solver:ident| $body:block) => {{
        use tinysde::solve::{EulerHeun, Rk4, Sosra, Sosri, Sra1, Sriw1};
        {
            let $solver = Solver::new(EulerMaruyama, $grid);
            $body
        }
        {
            let $solver = Solver::new(Milstein, $grid);
            $body
        }
        {
            let $solver = Solver::new(EulerHeun, $grid);
            $body
        }
        {
            let $solver = Solver::new(Rk4, $grid);
            $body
        }
        {
            let $solver = Solver::new(Sriw1, $grid);
            $body
        }
        {
            let $solver = Solver::new(Sosri, $grid);
            $body
        }
        {
            let $solver = Solver::new(Sra1, $grid);
            $body
        }
        {
            let $solver = Solver::new(Sosra, $grid);
            $body
        }
    }};
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases() / 4))]

    #[test]
    fn every_method_serial_and_threaded_is_a_typed_error_leaving_the_buffers_or_finite(
        params in proptest::collection::vec(mostly_tame(), P),
        u0 in mostly_tame(),
        times in save_times(),
        trajectories in 0usize..5,
    ) {
        let Some(m) = model(params.clone().try_into().unwrap()) else { return Ok(()) };
        let grid = TimeGrid::new(0.0, 1.0, 8).unwrap();
        let noise = Brownian::new(8);
        let n = times.len();
        for_each_method!(grid, |solver| {
            let (mut mean, mut var) = (vec![[SENTINEL]; n], vec![[SENTINEL]; n]);
            let serial = solve::simulate_into(&solver, &m, &noise, &EnsembleRequest::new([u0], trajectories, &times), EnsembleBuffers::new(&mut mean, &mut var));
            match serial {
                Err(_) => prop_assert!(mean.iter().chain(&var).all(|x| x[0].to_bits() == SENTINEL.to_bits())),
                Ok(()) => prop_assert!(mean.iter().chain(&var).all(|x| x[0].is_finite())),
            }
            let (mut pmean, mut pvar) = (vec![[SENTINEL]; n], vec![[SENTINEL]; n]);
            let threaded = solve::simulate_into(&solver, &m, &noise, &EnsembleRequest::new([u0], trajectories, &times).in_lanes::<PARALLEL_LANES>().on_threads(3), EnsembleBuffers::new(&mut pmean, &mut pvar));
            prop_assert_eq!(threaded, serial);
            prop_assert_eq!(bits(&pmean), bits(&mean));
            prop_assert_eq!(bits(&pvar), bits(&var));
        });
    }

    /// Reversible Heun (not a lane method) one at a time and on threads, with and without
    /// paths: the same contract (its ensemble once left the statistics half-written).
    #[test]
    fn reversible_heun_serial_and_threaded_is_a_typed_error_leaving_the_buffers_or_finite(
        params in proptest::collection::vec(mostly_tame(), P),
        u0 in mostly_tame(),
        times in save_times(),
        trajectories in 0usize..5,
        with_paths in any::<bool>(),
    ) {
        use tinysde::solve::ReversibleHeun;
        let Some(m) = model(params.clone().try_into().unwrap()) else { return Ok(()) };
        let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 8).unwrap());
        let noise = Brownian::new(8);
        let n = times.len();
        let request = EnsembleRequest::new([u0], trajectories, &times);
        let run = |threads: Option<usize>| {
            let (mut mean, mut var) = (vec![[SENTINEL]; n], vec![[SENTINEL]; n]);
            let mut paths = vec![[SENTINEL]; n * trajectories];
            let mut out = EnsembleBuffers::new(&mut mean, &mut var);
            if with_paths {
                out = out.with_paths(&mut paths);
            }
            let r = match threads {
                None => solve::simulate_into(&solver, &m, &noise, &request, out),
                Some(t) => solve::simulate_into(&solver, &m, &noise, &request.on_threads(t), out),
            };
            (r, bits(&mean), bits(&var), bits(&paths))
        };
        let serial = run(None);
        let untouched = |rows: &[[u32; 1]]| rows.iter().all(|x| x[0] == SENTINEL.to_bits());
        match serial.0 {
            Err(_) => prop_assert!(untouched(&serial.1) && untouched(&serial.2) && untouched(&serial.3)),
            Ok(()) => prop_assert!(serial.1.iter().chain(&serial.2).all(|x| f32::from_bits(x[0]).is_finite())),
        }
        for threads in [1, 3] {
            prop_assert_eq!(&run(Some(threads)), &serial);
        }
    }

    #[test]
    fn training_is_a_typed_error_leaving_model_and_optimizer_or_finite(
        params in proptest::collection::vec(mostly_tame(), P),
        lr in prop_oneof![4 => 1e-3f32..1.0, 1 => nasty()],
        clip in prop_oneof![2 => Just(None), 2 => (0.1f32..10.0).prop_map(Some), 1 => nasty().prop_map(Some)],
        data in proptest::collection::vec(mostly_tame(), 2),
        iterations in 0u32..4,
    ) {
        use core::ops::ControlFlow;
        use tinysde::train::{TrainConfig, Trainer, Workspace};
        let Some(mut m) = model(params.clone().try_into().unwrap()) else { return Ok(()) };
        let Ok(adam) = Adam::new(AdamConfig::lr(lr), [0.0f32; P], [0.0f32; P]) else { return Ok(()) };
        let data = [[data[0]], [data[1]]];
        let Ok(loss) = MeanSquaredError::new(&data) else { return Ok(()) };
        let times = [0.5, 1.0];
        let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 8).unwrap());
        let problem = Problem::new(solver, [1.0], 4, &times).unwrap();
        let config = TrainConfig { clip_norm: clip, ..TrainConfig::default() };
        let (mut p, mut g, mut best) = ([SENTINEL; P], [SENTINEL; P], [SENTINEL; P]);
        let mut stats = [[Dual::<2>::ZERO; 1]; 4];
        let before = m;
        let mut adam_copy = adam.clone();
        let ws = Workspace { params: &mut p, grad: &mut g, best: &mut best, scratch: Scratch::new(&mut stats, &mut []) };
        let trainer = EnsembleFit::new(problem, loss).and_then(|fit| Trainer::new(&mut m, &mut adam_copy, fit, config, ws));
        let mut trainer = match trainer {
            Err(_) => {
                prop_assert_eq!(m, before);
                prop_assert_eq!(&adam_copy, &adam);
                prop_assert_eq!(p.map(f32::to_bits), [SENTINEL.to_bits(); P]);
                return Ok(());
            }
            Ok(t) => t,
        };
        let result = trainer.run(iterations, |_| ControlFlow::Continue(()));
        // Either way the model holds the trainer's (finite) parameters and so does `best`.
        let params_now: Vec<f32> = trainer.params().to_vec();
        prop_assert!(params_now.iter().all(|x| x.is_finite()));
        prop_assert!(trainer.best().0.iter().all(|x| x.is_finite()));
        let mut in_model = [0.0f32; P];
        trainer.model().read_params(&mut in_model).unwrap();
        prop_assert_eq!(bits1(&in_model), bits1(&params_now));
        match result {
            Ok(report) => prop_assert_eq!(report.iterations, iterations),
            Err(e) => prop_assert!(matches!(
                e,
                Error::Diverged { .. } | Error::NonFiniteGradient { .. } | Error::UpdateOverflow { .. }
                    | Error::StatisticsOverflow { .. }
            ), "{e:?}"),
        }
    }
}

// ---- The deployable model file and the streaming forecaster (tinysde::forecast) ----

mod forecast_contract {
    use super::{cases, model, mostly_tame, nasty, Model};
    use proptest::prelude::*;
    use tinysde::forecast::file::{
        self, Column, Defaults, Deployment, ModelFile, SolverSpec, TimeAxis, TimeFormat, Transform,
    };
    use tinysde::forecast::{Arrays, Check, Forecaster};
    use tinysde::solve::EulerMaruyama;
    use tinysde::{Error, ForecastError};

    type F = Forecaster<Model, EulerMaruyama, 1, 1, Arrays<1, 8, 4>>;

    fn file_of(m: &Model, noise: f32, transform: Transform) -> Vec<u8> {
        let columns = [Column {
            name: "x",
            transform,
            mean: 1.0,
            std: 2.0,
            state_index: 0,
            noise,
        }];
        let d = Deployment {
            state_dim: 1,
            columns: &columns,
            time: TimeAxis {
                name: "t",
                format: TimeFormat::Number,
                t0: 0.0,
                unit: 0.5,
            },
            solver: SolverSpec {
                method: "EulerMaruyama",
                max_step: 0.25,
            },
            defaults: Defaults::new(8, 3, &[0.05, 0.5, 0.95]).unwrap(),
            trends: &[],
            seasonal_lag: 0,
        };
        file::to_vec(m, &d).unwrap()
    }

    /// The observable state: ensemble bits, reading count, last time bits.
    fn state(f: &F) -> (Option<Vec<u32>>, u64, Option<u64>) {
        (
            f.member_states()
                .map(|e| e.iter().map(|u| u[0].to_bits()).collect()),
            f.readings(),
            f.last_time().map(f64::to_bits),
        )
    }

    fn time() -> impl Strategy<Value = f64> {
        prop_oneof![
            6 => (0u32..40).prop_map(|k| f64::from(k) * 0.25),
            1 => nasty().prop_map(f64::from),
            // Far from the others: millions of steps away, beyond the default step limit.
            1 => -1e8f64..1e8,
            1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(1e300), Just(1e-300)],
        ]
    }

    fn value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            6 => (-3.0f64..3.0).prop_map(Some),
            1 => Just(None),
            1 => nasty().prop_map(|x| Some(f64::from(x))),
            1 => prop_oneof![Just(Some(f64::NAN)), Just(Some(1e300)), Just(Some(-1e300))],
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn a_model_file_with_any_bytes_changed_is_refused_or_reads_consistently(
            params in proptest::array::uniform4(mostly_tame()),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(), noise in 0.0f32..2.0, log in any::<bool>(),
        ) {
            let Some(m) = model(params) else { return Ok(()) };
            let transform = if log { Transform::Log } else { Transform::Affine };
            let mut bytes = file_of(&m, noise, transform);
            let n = bytes.len();
            for &(at, b) in &edits {
                bytes[at % n] = b;
            }
            let cut = if cut % 4 == 0 { cut % (n + 1) } else { n };
            match ModelFile::parse(&bytes[..cut]) {
                Err(e) => prop_assert!(matches!(e, Error::Weights(_) | Error::Length { .. }), "{e:?}"),
                Ok(f) => {
                    // Only an unchanged file (an edit that wrote the same byte) reads.
                    prop_assert_eq!(cut, n);
                    prop_assert_eq!(&bytes, &file_of(&m, noise, transform));
                    prop_assert_eq!(f.column(0).map(|c| c.transform), Some(transform));
                    let mut loaded = Model::default();
                    prop_assert!(f.load_into(&mut loaded).is_ok());
                    prop_assert_eq!(loaded, m);
                }
            }
        }

        #[test]
        fn readings_and_forecasts_are_a_typed_error_with_the_state_unchanged_or_finite(
            params in proptest::array::uniform4(mostly_tame()),
            noise in prop_oneof![Just(0.0f32), 0.0f32..1.0],
            readings in proptest::collection::vec((time(), value()), 0..8),
            horizons in proptest::collection::vec(time(), 0..4),
        ) {
            let Some(m) = model(params) else { return Ok(()) };
            let bytes = file_of(&m, noise, Transform::Affine);
            let file = ModelFile::parse(&bytes).unwrap();
            let mut f: F = Forecaster::new(Model::default(), EulerMaruyama, &file, Arrays::new()).unwrap();
            for &(t, x) in &readings {
                let before = state(&f);
                let last = f.last_time();
                let mut checks = [Check { mean: -9.0, ..Check::default() }];
                match f.observe_checked(t, &[x], &mut checks) {
                    Err(e) => {
                        prop_assert_eq!(state(&f), before);
                        prop_assert_eq!(checks[0].mean, -9.0);
                        prop_assert!(matches!(e, Error::Forecast(_) | Error::Diverged { .. } | Error::OutOfRange { .. }), "{e:?}");
                    }
                    Ok(outcome) => {
                        prop_assert!(t.is_finite());
                        prop_assert!(last.is_none_or(|l| t > l));
                        prop_assert!(x.is_none_or(f64::is_finite));
                        prop_assert_eq!(outcome.updated, x.is_some());
                        prop_assert_eq!(f.readings(), before.1 + 1);
                        if let Some(e) = f.member_states() {
                            prop_assert!(e.iter().all(|u| u[0].is_finite()));
                        }
                        if outcome.checked != 0 {
                            let c = checks[0];
                            prop_assert!(c.lower <= c.upper);
                            prop_assert_eq!(c.outside, x.is_some_and(|x| x < c.lower || x > c.upper));
                        }
                    }
                }
            }
            let before = state(&f);
            let mut out = vec![-9.0f64; horizons.len() * 4];
            match f.forecast(&horizons, &mut out) {
                Err(e) => {
                    prop_assert!(out.iter().all(|&v| v == -9.0));
                    prop_assert!(matches!(e, Error::Forecast(_) | Error::Diverged { .. } | Error::OutOfRange { .. }), "{e:?}");
                    if f.member_states().is_none() {
                        prop_assert_eq!(e, Error::Forecast(ForecastError::NoState));
                    }
                }
                Ok(()) => {
                    for row in out.chunks(4) {
                        prop_assert!(row.iter().all(|v| v.is_finite()));
                        prop_assert!(row[1] <= row[2] && row[2] <= row[3]);
                    }
                }
            }
            prop_assert_eq!(state(&f), before);
        }
    }
}
