//! The quick activations ([`QuickTanh`], [`QuickSigmoid`]): the same bits on every scalar
//! (one lane, 4, 8 and the wide lanes, `Dual` on each, array and element by element), the
//! documented error bounds on a dense sample of all `f32` (the exhaustive walk is
//! `examples/activation_error.rs`), derivatives against finite differences, layers' VJPs and
//! reverse mode against forward mode on a model using them, and their names in weights files.

use tinysde::grad::reverse::REVERSE_LANES;
use tinysde::grad::{loss_and_gradient, Ensemble, Forward, Problem, Reverse, Scratch, Threads};
use tinysde::lanes::{F32x, WIDE_LANES};
use tinysde::nn::{
    init, quick_sigmoid, quick_tanh, Activation, Backward, Cube, Dense, FastTanh, Identity,
    InitScheme, Layer, ParamSeed, Parameters, QuickSigmoid, QuickTanh,
    QUICK_SIGMOID_DERIVATIVE_MAX_ERROR, QUICK_SIGMOID_MAX_ERROR, QUICK_TANH_DERIVATIVE_MAX_ERROR,
    QUICK_TANH_MAX_ERROR,
};
use tinysde::noise::{rng_from_seed, Brownian};
use tinysde::sde::NeuralSde;
use tinysde::solve::{Checkpoints, EulerMaruyama, Method, Solver, Sosri, Step, StepVjp, TimeGrid};
use tinysde::train::MeanSquaredError;
use tinysde::{Directional, Dual};

/// Bits, with every NaN as one (Rust leaves a NaN result's sign and payload unspecified).
fn bits(v: f32) -> u32 {
    if v.is_nan() {
        f32::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// Special values (zeros, the clamps and their neighbours, subnormals, infinities, NaN) and
/// every 65,521st bit pattern: about 66,000 inputs over all of `f32`.
fn sample() -> Vec<f32> {
    let mut xs = vec![
        0.0f32,
        -0.0,
        1e-40,
        -1e-40,
        f32::MIN_POSITIVE,
        1e-6,
        0.25,
        1.0,
        -2.5,
        5.999_999,
        6.0,
        6.000_001,
        -6.0,
        11.999_999,
        12.0,
        12.000_001,
        -12.0,
        40.0,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    xs.extend((0..=u32::MAX / 65_521).map(|k| f32::from_bits(k * 65_521)));
    xs
}

/// `A` of every input in `xs` on one scalar type, via `apply` and via `apply_array` on
/// arrays of 1, 3, 4, 5 and 20 elements (every remainder of the groups of four): all the
/// same bits as `want`, value and (for `Dual`) the derivative `want_d` times the tangent.
fn check_array_forms<A: Activation>(name: &str, xs: &[f32], want: &[f32], want_d: &[f32]) {
    fn forms<A: Activation, const N: usize>(name: &str, xs: &[f32], want: &[f32], want_d: &[f32]) {
        for (k, chunk) in xs.chunks(N).enumerate() {
            let at = |i: usize| chunk.get(i).copied().unwrap_or(0.5);
            let wanted = |i: usize| (k * N + i < xs.len()).then_some(k * N + i);
            // f32.
            let mut a: [f32; N] = core::array::from_fn(at);
            A::apply_array(&mut a);
            // Dual<1> and Dual<3> on f32 (tangent 1 at 0; 2 at 2).
            let mut d1: [Dual<1>; N] = core::array::from_fn(|i| Dual::variable(at(i), 0));
            A::apply_array(&mut d1);
            let mut d3: [Dual<3>; N] = core::array::from_fn(|i| {
                let mut d = Dual::<3>::constant(at(i));
                d.t[2] = 2.0;
                d
            });
            A::apply_array(&mut d3);
            // 4, 8 and wide lanes: lane j holds input i rotated by j (so lanes differ).
            let rot = |i: usize, j: usize| at((i + j) % N);
            let mut l4: [F32x<4>; N] =
                core::array::from_fn(|i| F32x(core::array::from_fn(|j| rot(i, j))));
            A::apply_array(&mut l4);
            let mut l8: [F32x<8>; N] =
                core::array::from_fn(|i| F32x(core::array::from_fn(|j| rot(i, j))));
            A::apply_array(&mut l8);
            let mut lw: [F32x<WIDE_LANES>; N] =
                core::array::from_fn(|i| F32x(core::array::from_fn(|j| rot(i, j))));
            A::apply_array(&mut lw);
            let mut dl: [Dual<1, F32x<8>>; N] = core::array::from_fn(|i| {
                Dual::variable(F32x(core::array::from_fn(|j| rot(i, j))), 0)
            });
            A::apply_array(&mut dl);
            for i in 0..N {
                let Some(w) = wanted(i) else { continue };
                let (y, dy, x) = (want[w], want_d[w], xs[w]);
                let what = |form: &str| format!("{name} {form}, N = {N}, x = {x:e}");
                assert_eq!(bits(a[i]), bits(y), "{}", what("f32 array"));
                assert_eq!(bits(d1[i].v), bits(y), "{}", what("Dual<1> array value"));
                assert_eq!(
                    bits(d1[i].t[0]),
                    bits(dy),
                    "{}",
                    what("Dual<1> array derivative")
                );
                assert_eq!(bits(d3[i].v), bits(y), "{}", what("Dual<3> value"));
                assert_eq!(
                    bits(d3[i].t[2]),
                    bits(dy * 2.0),
                    "{}",
                    what("Dual<3> tangent")
                );
                assert_eq!(d3[i].t[0], 0.0, "{}", what("Dual<3> zero tangent"));
                // Lane j of element e holds input (e + j) mod N: element (i - j) mod N.
                for j in 0..WIDE_LANES {
                    let e = (i + N - j % N) % N;
                    if j < 4 {
                        assert_eq!(bits(l4[e].0[j]), bits(y), "{}", what("4 lanes"));
                    }
                    if j < 8 {
                        assert_eq!(bits(l8[e].0[j]), bits(y), "{}", what("8 lanes"));
                        assert_eq!(bits(dl[e].v.0[j]), bits(y), "{}", what("Dual lanes value"));
                        assert_eq!(
                            bits(dl[e].t[0].0[j]),
                            bits(dy),
                            "{}",
                            what("Dual lanes derivative")
                        );
                    }
                    assert_eq!(bits(lw[e].0[j]), bits(y), "{}", what("wide lanes"));
                }
            }
        }
    }
    forms::<A, 1>(name, xs, want, want_d);
    forms::<A, 3>(name, xs, want, want_d);
    forms::<A, 4>(name, xs, want, want_d);
    forms::<A, 5>(name, xs, want, want_d);
    forms::<A, 20>(name, xs, want, want_d);
}

/// One lane (the Cortex-M path, with its early exit), every lane width, `Dual` on f32 and
/// on lanes, arrays of every group remainder and `Directional` (operation by operation):
/// the same value bits; the derivative the same bits on every `Dual`.
#[test]
fn quick_activations_give_the_same_bits_on_every_scalar_and_width() {
    let xs = sample();
    for (name, value, derivative, directional) in [
        (
            "quick_tanh",
            quick_tanh::<f32> as fn(f32) -> f32,
            (|x| QuickTanh::apply(Dual::<1>::variable(x, 0)).t[0]) as fn(f32) -> f32,
            (|x| quick_tanh(Directional::variable(x)).v) as fn(f32) -> f32,
        ),
        (
            "quick_sigmoid",
            quick_sigmoid::<f32>,
            |x| QuickSigmoid::apply(Dual::<1>::variable(x, 0)).t[0],
            |x| quick_sigmoid(Directional::variable(x)).v,
        ),
    ] {
        let want: Vec<f32> = xs.iter().map(|&x| value(x)).collect();
        let want_d: Vec<f32> = xs.iter().map(|&x| derivative(x)).collect();
        for ((&x, &y), &dy) in xs.iter().zip(&want).zip(&want_d) {
            assert_eq!(bits(directional(x)), bits(y), "{name} Directional at {x:e}");
            let dual = if name == "quick_tanh" {
                quick_tanh(Dual::<1>::variable(x, 0))
            } else {
                quick_sigmoid(Dual::<1>::variable(x, 0))
            };
            assert_eq!(
                (bits(dual.v), bits(dual.t[0])),
                (bits(y), bits(dy)),
                "{name} at {x:e}"
            );
            if !x.is_nan() && x.abs() > if name == "quick_tanh" { 6.0 } else { 12.0 } {
                assert_eq!(
                    dy, 0.0,
                    "{name}: zero derivative beyond the clamp, x = {x:e}"
                );
            }
        }
        if name == "quick_tanh" {
            check_array_forms::<QuickTanh>(name, &xs, &want, &want_d);
        } else {
            check_array_forms::<QuickSigmoid>(name, &xs, &want, &want_d);
        }
    }
}

/// The documented bounds on the sample, against f64; the properties the docs state: tanh
/// exactly odd and in (-1, 1), the sigmoid in (0, 1) and within a few units in the last
/// place of `0.5 + 0.5 quick_tanh(x/2)` (the same rational, evaluated otherwise),
/// NaN passing through.
#[test]
fn quick_activations_stay_within_their_documented_error_bounds() {
    let mut worst = [0.0f64; 4];
    for x in sample() {
        let y = quick_tanh(x);
        let s = quick_sigmoid(x);
        if x.is_nan() {
            assert!(y.is_nan() && s.is_nan());
            continue;
        }
        assert_eq!(quick_tanh(-x).to_bits(), (-y).to_bits(), "odd at {x:e}");
        assert!(y > -1.0 && y < 1.0, "tanh range at {x:e}");
        assert!(s > 0.0 && s < 1.0, "sigmoid range at {x:e}");
        let from_tanh = 0.5 + 0.5 * quick_tanh(0.5 * x);
        assert!(
            (s - from_tanh).abs() <= 2.5e-7,
            "{s} vs {from_tanh} at {x:e}"
        );
        let dt = quick_tanh(Dual::<1>::variable(x, 0)).t[0];
        let ds = quick_sigmoid(Dual::<1>::variable(x, 0)).t[0];
        let t = f64::from(x).tanh();
        let sg = 0.5 + 0.5 * (0.5 * f64::from(x)).tanh();
        for (w, e) in worst.iter_mut().zip([
            (f64::from(y) - t).abs(),
            (f64::from(dt) - (1.0 - t * t)).abs(),
            (f64::from(s) - sg).abs(),
            (f64::from(ds) - sg * (1.0 - sg)).abs(),
        ]) {
            *w = w.max(e);
        }
    }
    let bounds = [
        QUICK_TANH_MAX_ERROR,
        QUICK_TANH_DERIVATIVE_MAX_ERROR,
        QUICK_SIGMOID_MAX_ERROR,
        QUICK_SIGMOID_DERIVATIVE_MAX_ERROR,
    ];
    for (w, b) in worst.iter().zip(bounds) {
        assert!(*w <= f64::from(b), "error {w:e} above its bound {b:e}");
        // The bounds are tight: the sample finds more than half of each.
        assert!(
            *w > 0.5 * f64::from(b),
            "error {w:e} far below its bound {b:e}"
        );
    }
}

/// The tangent is the exact derivative of the approximation: against central differences
/// of the f32 function (h = 1e-2: truncation ~h² |f'''| / 6 < 2e-4, rounding ~eps / h), and
/// on `Directional` (the operation-by-operation rule) within rounding of it.
#[test]
fn quick_activation_derivatives_match_finite_differences() {
    let mut x = -14.0f32;
    while x <= 14.0 {
        for (name, f, clamp, d, dir) in [
            (
                "quick_tanh",
                quick_tanh::<f32> as fn(f32) -> f32,
                6.0f32,
                (|x| quick_tanh(Dual::<1>::variable(x, 0)).t[0]) as fn(f32) -> f32,
                (|x| quick_tanh(Directional::variable(x)).d) as fn(f32) -> f32,
            ),
            (
                "quick_sigmoid",
                quick_sigmoid::<f32>,
                12.0,
                |x| quick_sigmoid(Dual::<1>::variable(x, 0)).t[0],
                |x| quick_sigmoid(Directional::variable(x)).d,
            ),
        ] {
            let h = 1e-2f32;
            if (x.abs() - clamp).abs() > 2.0 * h {
                let fd = (f64::from(f(x + h)) - f64::from(f(x - h))) / (2.0 * f64::from(h));
                assert!(
                    (f64::from(d(x)) - fd).abs() < 3e-4,
                    "{name}'({x}) {} vs fd {fd}",
                    d(x)
                );
            }
            assert!(
                (d(x) - dir(x)).abs() <= 2e-6,
                "{name}'({x}) {} vs directional {}",
                d(x),
                dir(x)
            );
        }
        x += 0.013;
    }
}

/// The layers' VJPs (reverse mode's cached forward pass and backward) against forward
/// mode, on f32 and 8 lanes (lane by lane the f32 bits), pre-activations inside and beyond
/// the clamps.
#[test]
fn quick_layer_vjps_match_forward_mode_on_f32_and_lanes() {
    fn check<A: Activation>(scale: f32) {
        let mut layer = Dense::<3, 9, A>::default();
        let p: Vec<f32> = (0..Dense::<3, 9, A>::PARAMS)
            .map(|k| scale * ((k as f32 * 0.618_034).fract() * 2.0 - 1.0))
            .collect();
        layer.write_params(&p).unwrap();
        let xs: [[f32; 3]; 8] = core::array::from_fn(|j| {
            let t = j as f32 - 3.5;
            [0.4 * t, -0.7 + 0.1 * t, 1.3 - 0.2 * t * t]
        });
        let y_bar: [f32; 9] = core::array::from_fn(|o| 0.3 * o as f32 - 1.1);
        let wide_x: [F32x<8>; 3] = core::array::from_fn(|i| F32x(xs.map(|x| x[i])));
        let (wide_y, wide_cache) = layer.forward_cached(&wide_x);
        let mut wide_p = vec![F32x::<8>::splat(0.0); Dense::<3, 9, A>::PARAMS];
        let wide_x_bar = layer.backward(&wide_x, &wide_cache, &y_bar.map(F32x::splat), &mut wide_p);
        for (j, x) in xs.iter().enumerate() {
            let (y, cache) = layer.forward_cached(x);
            let plain: [f32; 9] = layer.forward(x, ParamSeed::NONE);
            assert_eq!(y.map(bits), plain.map(bits), "cached forward = forward");
            let mut p_bar = vec![0.0f32; Dense::<3, 9, A>::PARAMS];
            let x_bar = layer.backward(x, &cache, &y_bar, &mut p_bar);
            assert_eq!(wide_y.map(|v| bits(v.0[j])), y.map(bits), "lane {j} values");
            assert_eq!(
                wide_x_bar.map(|v| bits(v.0[j])),
                x_bar.map(bits),
                "lane {j} x_bar"
            );
            for (w, p) in wide_p.iter().zip(&p_bar) {
                assert_eq!(bits(w.0[j]), bits(*p), "lane {j} parameter cotangent");
            }
            let xd = x.map(Dual::<1>::constant);
            for (k, &pb) in p_bar.iter().enumerate() {
                let yd: [Dual<1>; 9] = layer.forward(&xd, ParamSeed::window(k));
                let fwd = yd.iter().zip(&y_bar).fold(0.0, |a, (y, b)| a + y.t[0] * b);
                assert!(
                    (pb - fwd).abs() <= 1e-5 * (1.0 + fwd.abs()),
                    "{} p{k}: {pb} vs {fwd}",
                    A::NAME
                );
            }
            for i in 0..3 {
                let mut xd = x.map(Dual::<1>::constant);
                xd[i] = Dual::variable(x[i], 0);
                let yd: [Dual<1>; 9] = layer.forward(&xd, ParamSeed::NONE);
                let fwd = yd.iter().zip(&y_bar).fold(0.0, |a, (y, b)| a + y.t[0] * b);
                assert!(
                    (x_bar[i] - fwd).abs() <= 1e-5 * (1.0 + fwd.abs()),
                    "{} x{i}",
                    A::NAME
                );
            }
        }
    }
    for scale in [0.5f32, 3.0, 20.0] {
        check::<QuickTanh>(scale);
        check::<QuickSigmoid>(scale);
    }
}

/// A Dense pair (fused unit by unit on one trajectory, in lane groups on the host) gives
/// the bits of its layers applied one by one, on f32, 4 and 8 lanes and Dual; hidden
/// widths 20 (the seed model's), 35 and 13 (every remainder of the groups).
#[test]
fn quick_dense_pairs_give_the_bits_of_their_layers() {
    fn pair<A: Activation, const J: usize, const H: usize>(seed: u64) {
        let mut first = Dense::<J, H, A>::default();
        let mut second = Dense::<H, 1, Identity>::default();
        let mut rng = rng_from_seed(seed);
        init(&mut first, &mut rng, InitScheme::Uniform { limit: 3.0 }).unwrap();
        init(&mut second, &mut rng, InitScheme::Uniform { limit: 1.0 }).unwrap();
        let specials = [
            0.0f32,
            -0.0,
            0.7,
            -2.5,
            6.0,
            -13.0,
            1e4,
            f32::INFINITY,
            f32::NAN,
        ];
        let both = (first, second);
        for k in 0..specials.len() {
            let x: [f32; J] = core::array::from_fn(|i| specials[(k + 2 * i) % specials.len()]);
            let hidden: [f32; H] = first.forward(&x, ParamSeed::NONE);
            let want: [f32; 1] = second.forward(&hidden, ParamSeed::NONE);
            let got: [f32; 1] = both.forward(&x, ParamSeed::NONE);
            assert_eq!(
                bits(got[0]),
                bits(want[0]),
                "{} f32, H = {H}, x = {x:?}",
                A::NAME
            );
            let dual: [Dual<2>; 1] =
                both.forward(&x.map(|v| Dual::variable(v, 1)), ParamSeed::window(0));
            assert_eq!(
                bits(dual[0].v),
                bits(want[0]),
                "{} Dual, x = {x:?}",
                A::NAME
            );
            let l4: [F32x<4>; 1] = both.forward(&x.map(F32x::splat), ParamSeed::NONE);
            let l8: [F32x<8>; 1] = both.forward(&x.map(F32x::splat), ParamSeed::NONE);
            assert!(
                l4[0]
                    .0
                    .iter()
                    .chain(&l8[0].0)
                    .all(|&v| bits(v) == bits(want[0])),
                "{} lanes",
                A::NAME
            );
        }
    }
    pair::<QuickTanh, 1, 20>(1);
    pair::<QuickSigmoid, 1, 20>(2);
    pair::<QuickTanh, 1, 35>(3);
    pair::<QuickSigmoid, 2, 13>(4);
    pair::<QuickTanh, 3, 7>(5);
}

type Quick = NeuralSde<
    (Cube<1>, Dense<1, 8, QuickTanh>, Dense<8, 1, Identity>),
    (Dense<1, 8, QuickSigmoid>, Dense<8, 1, Identity>),
>;

fn quick_model() -> Quick {
    let mut m = Quick::default();
    m.init(&mut rng_from_seed(7), InitScheme::Uniform { limit: 0.9 })
        .unwrap();
    m
}

const TIMES: [f32; 4] = [0.25, 0.5, 0.75, 1.0];
const DATA: [[f32; 1]; 4] = [[1.2], [1.5], [1.4], [1.9]];

/// Reverse mode (serial f32, and threaded on lanes) against forward mode on a neural SDE
/// with quick activations: the same loss bits, the gradients within rounding; the lane
/// form the bits of the serial one.
#[test]
fn reverse_equals_forward_on_a_model_with_quick_activations() {
    fn check<M>(method: M)
    where
        M: Method + StepVjp<Quick, 1> + StepVjp<Quick, 1, F32x<REVERSE_LANES>>,
        M: Step<Dual<8>, Quick, 1> + Sync,
    {
        let model = quick_model();
        let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 40).unwrap());
        let problem = Problem::new(solver, [1.0], 16, &TIMES).unwrap();
        let loss = MeanSquaredError::new(&DATA).unwrap();
        let noise = Brownian::new(17);
        let objective = Ensemble::new(&problem, &loss, &noise);
        let mut forward = vec![0.0f32; Quick::PARAMS];
        let lf = loss_and_gradient(
            &objective,
            &model,
            Forward,
            &mut Scratch::<8, 1>::owned(),
            &mut forward,
        )
        .unwrap();
        let mut serial = vec![0.0f32; Quick::PARAMS];
        let lr = loss_and_gradient(
            &objective,
            &model,
            Reverse(Checkpoints::Sqrt),
            &mut Scratch::<3, 1>::owned(),
            &mut serial,
        )
        .unwrap();
        assert_eq!(lr.to_bits(), lf.to_bits(), "loss bits");
        let scale = forward.iter().fold(0.0f32, |a, g| a.max(g.abs()));
        assert!(scale > 0.0);
        for (i, (r, f)) in serial.iter().zip(&forward).enumerate() {
            assert!(
                (r - f).abs() <= 2e-5 * scale + 1e-4 * f.abs(),
                "entry {i}: {r} vs {f}"
            );
        }
        // On lanes (each lane its trajectory's f32 computation), one and two threads.
        let threaded = |threads| {
            let mut g = vec![0.0f32; Quick::PARAMS];
            let l = loss_and_gradient(
                &objective,
                &model,
                Threads(Reverse(Checkpoints::Sqrt), threads),
                &mut Scratch::<3, 1>::owned(),
                &mut g,
            )
            .unwrap();
            (
                l.to_bits(),
                g.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
            )
        };
        let (one, two) = (threaded(1), threaded(2));
        assert_eq!(one, two, "lanes: the same bits on one and two threads");
        assert_eq!(one.0, lr.to_bits(), "lanes: loss bits");
        for (i, (&p, s)) in one.1.iter().zip(&serial).enumerate() {
            let p = f32::from_bits(p);
            assert!(
                (p - s).abs() <= 1e-5 * (1.0 + s.abs()),
                "lanes entry {i}: {p} vs {s}"
            );
        }
    }
    check(EulerMaruyama);
    check(Sosri);
}

/// Weights files name the quick activations; a file of a quick model does not load into
/// the same shape with the fast ones (a typed error, the model untouched), and round-trips.
#[test]
fn weights_files_name_the_quick_activations() {
    use tinysde::weights::{self, Describe};
    let mut text = Vec::new();
    <(Dense<1, 3, QuickTanh>, Dense<3, 1, QuickSigmoid>)>::describe(&mut |b| {
        text.extend_from_slice(b)
    });
    assert_eq!(
        text,
        b"chain(dense(1,3,quick_tanh),dense(3,1,quick_sigmoid))"
    );
    let model = quick_model();
    let bytes = weights::to_vec(&model).unwrap();
    let mut back = Quick::default();
    weights::read_into(&mut back, &bytes).unwrap();
    let (mut a, mut b) = (vec![0.0; Quick::PARAMS], vec![0.0; Quick::PARAMS]);
    model.read_params(&mut a).unwrap();
    back.read_params(&mut b).unwrap();
    assert_eq!(a, b);
    type Fast = NeuralSde<
        (Cube<1>, Dense<1, 8, FastTanh>, Dense<8, 1, Identity>),
        (Dense<1, 8, QuickSigmoid>, Dense<8, 1, Identity>),
    >;
    let mut fast = Fast::default();
    let before = fast;
    assert!(weights::read_into(&mut fast, &bytes).is_err());
    assert_eq!(fast, before, "untouched on error");
}
