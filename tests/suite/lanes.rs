//! The lane path: `F32x<L>` arithmetic against `f32` lane by lane, and ensembles run L
//! trajectories per pass (`Solver::ensemble_lanes`, the threaded `ensemble_parallel`)
//! against the one-trajectory `Solver::ensemble`, bit for bit, for every method, for
//! trajectory counts that are not multiples of L, over `f32` and `Dual` scalars, with and
//! without paths, and on error.

use tinysde::lanes::{F32x, LaneMask, Lanes, Mask};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Layer, ParamSeed};
use tinysde::noise::{rng_from_seed, Brownian};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{
    self, EnsembleBuffers, EnsembleRequest, EulerHeun, EulerMaruyama, LaneIntegrator, Method,
    Milstein, Rk4, Seeded, Solver, Sosra, Sosri, Sra1, Sriw1, TimeGrid, PARALLEL_LANES,
};
use tinysde::{Directional, Dual, Error, NoiseKind, Real, Widen};

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<Drift, Diffusion>;

fn seed_model() -> SeedModel {
    let mut model = SeedModel::default();
    model
        .init(&mut rng_from_seed(5), InitScheme::GlorotUniform)
        .unwrap();
    model
}

/// The seed model with an additive, time-dependent diffusion `G(t)` (for SRA1/SOSRA).
struct AdditiveSeed(SeedModel);
impl<T: Real> Sde<T, 1> for AdditiveSeed {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, t: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        <SeedModel as Sde<T, 1>>::drift(&self.0, t, u, seed)
    }
    fn diffusion(&self, t: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
        self.0.diffusion.forward(&[T::cst(t)], seed)
    }
}

/// Two components, one Wiener process, with comparisons in the drift (a relu-like kink and
/// a NaN-propagating `max`): exercises masks and scalar-noise broadcasting.
struct KinkedScalarNoise;
impl<T: Real> Sde<T, 2> for KinkedScalarNoise {
    const NOISE: NoiseKind = NoiseKind::Scalar;
    fn drift(&self, _: f32, u: &[T; 2], seed: ParamSeed) -> [T; 2] {
        let a: T = seed.lift(0.7, 0);
        let kink = T::select(u[0].gt(T::ZERO), u[0] * a, u[0] * 0.1);
        [kink - u[1], u[0].max(u[1]) * 0.5 - u[1].abs()]
    }
    fn diffusion(&self, _: f32, u: &[T; 2], seed: ParamSeed) -> [T; 2] {
        let b: T = seed.lift(0.3, 1);
        [(u[1] * b).tanh(), (u[0] * u[0] + 1.0).sqrt() * 0.2]
    }
}

fn bits<T: Real<Value = f32>, const D: usize>(rows: &[[T; D]]) -> Vec<u32> {
    rows.iter()
        .flatten()
        .flat_map(|x| {
            let mut v = vec![x.value().to_bits()];
            v.extend((0..T::TANGENTS).map(|k| x.tangent(k).to_bits()));
            v
        })
        .collect()
}

/// Runs the one-lane ensemble and the `L`-lane one (and, with paths, the threaded one)
/// and asserts the same result bits.
#[allow(clippy::too_many_arguments, reason = "the cases of one comparison")]
fn assert_lanes_match<const L: usize, M, S, T, const D: usize>(
    method: M,
    sde: &S,
    u0: [T; D],
    steps: u32,
    save_times: &[f32],
    trajectories: usize,
    with_paths: bool,
    seed: ParamSeed,
) where
    M: Method + Sync,
    S: Sde<T, D> + Sync,
    T: Widen<L> + Widen<PARALLEL_LANES> + Send + Sync,
    for<'a> Solver<M>: LaneIntegrator<L, T, Seeded<'a, S>, Brownian, D, Stats = ()>
        + LaneIntegrator<PARALLEL_LANES, T, Seeded<'a, S>, Brownian, D>,
{
    let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, steps).unwrap());
    let noise = Brownian::new(11);
    let sde = Seeded { sde, seed };
    let n = save_times.len();
    let request = EnsembleRequest::new(u0, trajectories, save_times);
    let run = |how: &str| {
        let mut mean = vec![[T::ZERO; D]; n];
        let mut var = vec![[T::ZERO; D]; n];
        let mut paths = with_paths.then(|| vec![[T::ZERO; D]; n * trajectories]);
        let out = EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: paths.as_deref_mut(),
        };
        let r = match how {
            "one" => solve::simulate_into(&solver, &sde, &noise, &request, out),
            "lanes" => solve::simulate_into(&solver, &sde, &noise, &request.in_lanes::<L>(), out),
            _ => {
                let threaded = request.in_lanes::<PARALLEL_LANES>().on_threads(3);
                solve::simulate_into(&solver, &sde, &noise, &threaded, out)
            }
        };
        (r, bits(&mean), bits(&var), paths.map(|p| bits(&p)))
    };
    let one = run("one");
    assert!(one.0.is_ok(), "{}: {:?}", M::NAME, one.0);
    assert_eq!(one, run("lanes"), "{} L={L} M={trajectories}", M::NAME);
    assert_eq!(one, run("threads"), "{} threaded M={trajectories}", M::NAME);
}

const FEW_TIMES: [f32; 3] = [0.25, 0.5, 1.0];

fn many_times(steps: u32) -> Vec<f32> {
    // More save times than `BACKUP_ROWS`: the checking first pass runs too.
    (1..=steps).map(|k| k as f32 / steps as f32).collect()
}

#[test]
fn every_method_gives_the_same_bits_one_lane_or_many() {
    let model = seed_model();
    let additive = AdditiveSeed(seed_model());
    let u0 = [0.3f32];
    for trajectories in [1, 5, 8, 13, 37] {
        for with_paths in [false, true] {
            let s = ParamSeed::NONE;
            assert_lanes_match::<8, _, _, _, 1>(
                EulerMaruyama,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
            assert_lanes_match::<4, _, _, _, 1>(
                EulerHeun,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
            assert_lanes_match::<16, _, _, _, 1>(
                Milstein,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
            assert_lanes_match::<8, _, _, _, 1>(
                Sriw1,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
            assert_lanes_match::<4, _, _, _, 1>(
                Sosri,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
            assert_lanes_match::<8, _, _, _, 1>(
                Sra1,
                &additive,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
            assert_lanes_match::<16, _, _, _, 1>(
                Sosra,
                &additive,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
            assert_lanes_match::<8, _, _, _, 1>(
                Rk4,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                with_paths,
                s,
            );
        }
    }
    // Many save times (the two-pass path) and scalar noise on two components.
    let times = many_times(48);
    let u0 = [0.4f32, -0.2];
    for trajectories in [3, 19] {
        let s = ParamSeed::NONE;
        assert_lanes_match::<8, _, _, _, 2>(
            EulerMaruyama,
            &KinkedScalarNoise,
            u0,
            48,
            &times,
            trajectories,
            false,
            s,
        );
        assert_lanes_match::<4, _, _, _, 2>(
            Milstein,
            &KinkedScalarNoise,
            u0,
            48,
            &times,
            trajectories,
            true,
            s,
        );
        assert_lanes_match::<16, _, _, _, 2>(
            Sosri,
            &KinkedScalarNoise,
            u0,
            48,
            &times,
            trajectories,
            false,
            s,
        );
        assert_lanes_match::<8, _, _, _, 1>(
            Sosri,
            &model,
            [0.3],
            48,
            &times,
            trajectories,
            true,
            s,
        );
    }
}

#[test]
fn forward_mode_tangents_ride_on_lanes_bit_for_bit() {
    // Dual<K> widens to Dual<K, F32x<L>>: value and every tangent match the one-lane run.
    let model = seed_model();
    let u0 = [Dual::<4>::constant(0.3)];
    for window in [0, 4, 60, 120] {
        let s = ParamSeed::window(window);
        for trajectories in [1, 9, 21] {
            assert_lanes_match::<8, _, _, _, 1>(
                EulerMaruyama,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                false,
                s,
            );
            assert_lanes_match::<4, _, _, _, 1>(
                Sosri,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                true,
                s,
            );
            assert_lanes_match::<8, _, _, _, 1>(
                Milstein,
                &model,
                u0,
                40,
                &FEW_TIMES,
                trajectories,
                false,
                s,
            );
        }
    }
    let u0 = [Dual::<2>::variable(0.4, 0), Dual::<2>::constant(-0.2)];
    let s = ParamSeed::window(0);
    assert_lanes_match::<8, _, _, _, 2>(
        Milstein,
        &KinkedScalarNoise,
        u0,
        40,
        &FEW_TIMES,
        11,
        true,
        s,
    );
    assert_lanes_match::<8, _, _, _, 2>(
        Sriw1,
        &KinkedScalarNoise,
        u0,
        40,
        &FEW_TIMES,
        11,
        false,
        s,
    );
}

/// `du = -u^3 dt + dW` with steps of 1: some trajectories explode.
struct Cubic;
impl<T: Real> Sde<T, 1> for Cubic {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [-(u[0] * u[0] * u[0])]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::ONE * 1.5]
    }
}

#[test]
fn a_diverging_lane_reports_the_serial_error_and_writes_nothing() {
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 30.0, 30).unwrap());
    let times = [10.0f32, 20.0, 30.0];
    let mut seen = 0;
    for seed in 0..40 {
        let noise = Brownian::new(seed);
        let sentinel = [-7.0f32];
        let run = |lanes: usize| {
            let (mut mean, mut var) = (vec![sentinel; 3], vec![sentinel; 3]);
            let mut paths = vec![sentinel; 3 * 29];
            let r = match lanes {
                1 => solve::simulate_into(
                    &solver,
                    &Cubic,
                    &noise,
                    &EnsembleRequest::new([0.0], 29, &times),
                    EnsembleBuffers {
                        mean: &mut mean,
                        variance: &mut var,
                        paths: Some(&mut paths),
                    },
                ),
                4 => solve::simulate_into(
                    &solver,
                    &Cubic,
                    &noise,
                    &EnsembleRequest::new([0.0], 29, &times).in_lanes::<4>(),
                    EnsembleBuffers {
                        mean: &mut mean,
                        variance: &mut var,
                        paths: Some(&mut paths),
                    },
                ),
                _ => solve::simulate_into(
                    &solver,
                    &Cubic,
                    &noise,
                    &EnsembleRequest::new([0.0], 29, &times).in_lanes::<16>(),
                    EnsembleBuffers::new(&mut mean, &mut var),
                ),
            };
            let untouched = mean
                .iter()
                .chain(&var)
                .chain(&paths)
                .all(|x| *x == sentinel);
            (r, untouched)
        };
        let (serial, untouched) = run(1);
        if let Err(Error::Diverged { .. }) = serial {
            seen += 1;
            assert!(untouched);
            assert_eq!(run(4), (serial, true), "seed {seed}");
            assert_eq!(run(16), (serial, true), "seed {seed}");
        }
    }
    assert!(
        seen >= 3,
        "only {seen} seeds diverged: the test needs diverging cases"
    );
}

/// Pseudo-random `f32`s over many magnitudes (a SplitMix64 stream), with the special values
/// mixed in.
fn samples(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let specials = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE / 4.0,
        f32::MAX,
    ];
    (0..n)
        .map(|i| match specials.get(i % 23) {
            Some(&x) => x,
            None => {
                let r = next();
                let mantissa = (r >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                mantissa * 10f32.powi((r % 17) as i32 - 8)
            }
        })
        .collect()
}

#[test]
#[allow(clippy::type_complexity, clippy::needless_range_loop)] // a table of lane functions
fn lane_arithmetic_equals_scalar_arithmetic_lane_by_lane() {
    let xs = samples(16 * 64, 1);
    let ys = samples(16 * 64, 2);
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    for (xc, yc) in xs.chunks(16).zip(ys.chunks(16)) {
        let x = F32x::<16>(xc.try_into().unwrap());
        let y = F32x::<16>(yc.try_into().unwrap());
        let unary: [(&str, F32x<16>, fn(f32) -> f32); 9] = [
            ("sqrt", Lanes::sqrt(x), <f32 as Lanes>::sqrt),
            ("exp", Lanes::exp(x), <f32 as Lanes>::exp),
            ("ln", Lanes::ln(x), <f32 as Lanes>::ln),
            ("tanh", Lanes::tanh(x), <f32 as Lanes>::tanh),
            ("sigmoid", Lanes::sigmoid(x), <f32 as Lanes>::sigmoid),
            ("sin", Lanes::sin(x), <f32 as Lanes>::sin),
            ("cos", Lanes::cos(x), <f32 as Lanes>::cos),
            ("abs", Lanes::abs(x), <f32 as Lanes>::abs),
            ("powi3", Lanes::powi(x, 3), |a| <f32 as Lanes>::powi(a, 3)),
        ];
        for (name, got, f) in unary {
            for j in 0..16 {
                assert!(same(got.0[j], f(xc[j])), "{name}({})", xc[j]);
            }
        }
        for j in 0..16 {
            let (a, b) = (xc[j], yc[j]);
            assert!(same((x + y).0[j], a + b));
            assert!(same((x - y).0[j], a - b));
            assert!(same((x * y).0[j], a * b));
            assert!(same((x / y).0[j], a / b));
            assert!(same((x * 0.37).0[j], a * 0.37));
            assert_eq!(Lanes::lt(x, y).test(j), a < b);
            assert_eq!(Lanes::le(x, y).test(j), a <= b);
            assert_eq!(Lanes::gt(x, y).test(j), a > b);
            assert_eq!(Lanes::eq_lanes(x, y).test(j), a == b);
            assert_eq!(Lanes::is_finite(x).test(j), a.is_finite());
            assert_eq!(Lanes::is_nan(x).test(j), a.is_nan());
            // The scalar's NaN-propagating min/max/abs, lane by lane.
            assert!(same(Real::max(x, y).0[j], Real::max(a, b)));
            assert!(same(Real::min(x, y).0[j], Real::min(a, b)));
            assert!(same(Real::abs(x).0[j], Real::abs(a)));
            let m = Lanes::lt(x, y);
            assert!(same(
                <F32x<16> as Lanes>::select(m, x, y).0[j],
                if a < b { a } else { b }
            ));
        }
    }
    let m = LaneMask::<4>::from_flags([true, false, true, true]);
    assert!(m.any() && !m.all() && m.or(m.not()).all() && !m.and(m.not()).any());
}

/// A named lane result and the `f32` operation each lane must equal.
type LaneCase<'a, const L: usize> = (&'a str, F32x<L>, &'a dyn Fn(f32, f32) -> f32);

/// The basic operations of `F32x<L>` (on x86-64 spelled as SSE/AVX/AVX-512 instructions,
/// the widest dividing L; elsewhere and for other L lane by lane) give exactly the bits of
/// the `f32` operation in every lane, signed zeros included (every NaN counts as one: Rust
/// leaves a NaN result's sign and payload unspecified).
fn basic_operations_bit_exact<const L: usize>() {
    let xs = samples(L * 97, 3);
    let ys = samples(L * 97, 4);
    let bits = |v: f32| {
        if v.is_nan() {
            f32::NAN.to_bits()
        } else {
            v.to_bits()
        }
    };
    for (xc, yc) in xs.chunks(L).zip(ys.chunks(L)) {
        let x = F32x::<L>(xc.try_into().unwrap());
        let y = F32x::<L>(yc.try_into().unwrap());
        let lt = Lanes::lt(x, y);
        let finite = Lanes::is_finite(y);
        let results: [LaneCase<L>; 11] = [
            ("+", x + y, &|a, b| a + b),
            ("-", x - y, &|a, b| a - b),
            ("*", x * y, &|a, b| a * b),
            ("/", x / y, &|a, b| a / b),
            ("+ c", x + 0.37, &|a, _| a + 0.37),
            ("/ c", x / -3.1, &|a, _| a / -3.1),
            ("neg", -x, &|a, _| -a),
            ("abs", Lanes::abs(x), &|a, _| a.abs()),
            ("at_least", x.at_least(y), &|a, b| if a < b { b } else { a }),
            ("at_most", x.at_most(y), &|a, b| if a > b { b } else { a }),
            ("select", <F32x<L> as Lanes>::select(lt, x, y), &|a, b| {
                if a < b {
                    a
                } else {
                    b
                }
            }),
        ];
        for (name, got, f) in results {
            for j in 0..L {
                let want = f(xc[j], yc[j]);
                assert_eq!(
                    bits(got.0[j]),
                    bits(want),
                    "{name} at L = {L}: {} {}",
                    xc[j],
                    yc[j]
                );
            }
        }
        let mut assigned = x;
        assigned *= y;
        assigned -= x;
        for j in 0..L {
            let (a, b) = (xc[j], yc[j]);
            assert_eq!(bits(assigned.0[j]), bits(a * b - a));
            assert_eq!(Lanes::lt(x, y).test(j), a < b);
            assert_eq!(Lanes::le(x, y).test(j), a <= b);
            assert_eq!(Lanes::gt(x, y).test(j), a > b);
            assert_eq!(Lanes::ge(x, y).test(j), a >= b);
            assert_eq!(Lanes::eq_lanes(x, y).test(j), a == b);
            assert_eq!(Lanes::is_nan(x).test(j), a.is_nan());
            assert_eq!(lt.and(finite).test(j), a < b && b.is_finite());
            assert_eq!(lt.or(finite).test(j), a < b || b.is_finite());
            assert_eq!(lt.not().test(j), a >= b || a.is_nan() || b.is_nan());
        }
        let flags: Vec<bool> = (0..L).map(|j| lt.test(j)).collect();
        assert_eq!(lt.any(), flags.iter().any(|&f| f));
        assert_eq!(lt.all(), flags.iter().all(|&f| f));
    }
}

#[test]
fn basic_lane_operations_are_bit_exact_at_every_width() {
    // 4, 8 and 16 take one register width each on x86-64 (as the build allows), 12 takes
    // 4-lane chunks even where wider registers exist, 3 and 1 the lane-by-lane loop.
    basic_operations_bit_exact::<1>();
    basic_operations_bit_exact::<3>();
    basic_operations_bit_exact::<4>();
    basic_operations_bit_exact::<8>();
    basic_operations_bit_exact::<12>();
    basic_operations_bit_exact::<16>();
}

#[test]
fn duals_over_lanes_match_duals_lane_by_lane() {
    // Every Real operation on Dual<3, F32x<8>> against Dual<3, f32> per lane, through
    // Directional too (Milstein's derivative in the state).
    let xs = samples(8 * 32, 3);
    for chunk in xs.chunks(8) {
        let mut wide = Dual::<3, F32x<8>>::constant(F32x(chunk.try_into().unwrap()));
        wide.t[1] = F32x::splat(1.0);
        wide.t[2] = F32x(chunk.try_into().unwrap()) * 0.5;
        let f = |x: Directional<Dual<3, F32x<8>>>| {
            ((x * x).sin() + x.exp().ln() - x.abs().sqrt())
                .tanh()
                .sigmoid()
                .powi(2)
                .max(x.cos())
        };
        let g = |x: Directional<Dual<3>>| {
            ((x * x).sin() + x.exp().ln() - x.abs().sqrt())
                .tanh()
                .sigmoid()
                .powi(2)
                .max(x.cos())
        };
        let y = f(Directional::variable(wide));
        for (j, &v) in chunk.iter().enumerate() {
            let mut one = Dual::<3>::constant(v);
            one.t[1] = 1.0;
            one.t[2] = v * 0.5;
            let z = g(Directional::variable(one));
            let lane = <Dual<3> as Widen<8>>::extract(&y.v, j);
            let dlane = <Dual<3> as Widen<8>>::extract(&y.d, j);
            let bits = |d: Dual<3>| (d.v.to_bits(), d.t.map(f32::to_bits));
            let nan = z.v.v.is_nan();
            if !nan {
                assert_eq!(bits(lane), bits(z.v), "value at {v}");
                assert_eq!(bits(dlane), bits(z.d), "derivative at {v}");
            } else {
                assert!(lane.v.is_nan());
            }
        }
    }
}

#[test]
fn the_request_api_computes_the_same_ensemble() {
    use tinysde::solve::{EnsembleBuffers, EnsembleRequest};
    let model = seed_model();
    let solver = Solver::new(Sosri, TimeGrid::new(0.0, 1.0, 40).unwrap());
    let noise = Brownian::new(4);
    let (m, n) = (21, FEW_TIMES.len());
    let (mut mean, mut var, mut paths) =
        (vec![[0.0f32]; n], vec![[0.0f32]; n], vec![[0.0f32]; n * m]);
    solve::simulate_into(
        &solver,
        &model,
        &noise,
        &EnsembleRequest::new([0.3], m, &FEW_TIMES),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    )
    .unwrap();
    let request = EnsembleRequest::new([0.3f32], m, &FEW_TIMES);
    for threads in [0, 1, 3] {
        let got = solve::simulate(
            &solver,
            &model,
            &noise,
            &request.with_paths().on_threads(threads),
        )
        .unwrap();
        assert_eq!(bits(&got.mean), bits(&mean));
        assert_eq!(bits(&got.variance), bits(&var));
        assert_eq!(got.paths.as_deref().map(bits), Some(bits(&paths)));
        assert_eq!(got.path(20).map(bits), Some(bits(&paths[20 * n..])));
        assert_eq!(got.path(21), None);
    }
    assert_eq!(
        solve::simulate(&solver, &model, &noise, &request)
            .unwrap()
            .paths,
        None
    );
    let (mut mean2, mut var2) = (vec![[0.0f32]; n], vec![[0.0f32]; n]);
    let out = EnsembleBuffers {
        mean: &mut mean2,
        variance: &mut var2,
        paths: None,
    };
    solve::simulate_into(&solver, &model, &noise, &request, out).unwrap();
    assert_eq!((bits(&mean2), bits(&var2)), (bits(&mean), bits(&var)));
    // Bad requests are typed errors, buffers untouched.
    let bad = EnsembleRequest::new([f32::NAN], m, &FEW_TIMES);
    assert!(matches!(
        solve::simulate(&solver, &model, &noise, &bad),
        Err(Error::NonFinite { .. })
    ));
    let out = EnsembleBuffers {
        mean: &mut mean2,
        variance: &mut var2,
        paths: None,
    };
    assert!(solve::simulate_into(
        &solver,
        &model,
        &noise,
        &EnsembleRequest::new([0.3], 0, &FEW_TIMES),
        out
    )
    .is_err());
    assert_eq!((bits(&mean2), bits(&var2)), (bits(&mean), bits(&var)));
    let huge = EnsembleRequest::new([0.3f32], usize::MAX / 2, &FEW_TIMES).with_paths();
    assert!(matches!(
        solve::simulate(&solver, &model, &noise, &huge),
        Err(Error::OutOfRange { .. })
    ));
}
