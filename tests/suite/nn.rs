//! Properties of the scalar types, activations and layers: forward-mode derivatives against
//! central finite differences, the flat parameter view, initialization and bad input.

use tinysde::nn::{
    fast_sigmoid, fast_tanh, init, Activation, Cube, Dense, FastSigmoid, FastTanh, Identity,
    InitScheme, Layer, ParamSeed, Parameters, Pow, Relu, Sigmoid, Softplus, Tanh,
    FAST_SIGMOID_MAX_ERROR, FAST_TANH_MAX_ERROR,
};
use tinysde::noise::rng_from_seed;
use tinysde::{Directional, Dual, Error, F32x, Real};

/// Central difference of `f` at `x` with step `h`, evaluated in f64 on the test side.
fn central(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
    (f(x + h) - f(x - h)) / (2.0 * h)
}

/// Relative-plus-absolute closeness: `|a - b| <= tol (1 + |b|)`.
fn close(a: f32, b: f64, tol: f64) -> bool {
    ((a as f64) - b).abs() <= tol * (1.0 + b.abs())
}

const SWEEP: [f32; 11] = [-6.0, -3.1, -1.7, -0.9, -0.3, 0.0, 0.2, 0.75, 1.3, 2.9, 5.5];

/// The derivative that forward mode gives for `A` at `x`.
fn tangent_of<A: Activation>(x: f32) -> f32 {
    A::apply(Dual::<1>::variable(x, 0)).t[0]
}

#[test]
fn library_activation_derivatives_match_f64_finite_differences() {
    // Reference functions in f64, differentiated numerically (h = 1e-5, error ~1e-10).
    type Case = (&'static str, fn(f32) -> f32, fn(f64) -> f64);
    let cases: [Case; 5] = [
        ("identity", tangent_of::<Identity>, |x| x),
        ("tanh", tangent_of::<Tanh>, f64::tanh),
        ("sigmoid", tangent_of::<Sigmoid>, |x| {
            1.0 / (1.0 + (-x).exp())
        }),
        ("softplus", tangent_of::<Softplus>, |x| x.exp().ln_1p()),
        ("relu", tangent_of::<Relu>, |x| x.max(0.0)),
    ];
    for (name, forward_mode, reference) in cases {
        for &x in &SWEEP {
            if name == "relu" && x == 0.0 {
                assert_eq!(forward_mode(x), 0.0, "relu'(0) is defined as 0");
                continue;
            }
            let fd = central(reference, x as f64, 1e-5);
            assert!(
                close(forward_mode(x), fd, 2e-6),
                "{name}'({x}): forward {} vs fd {fd}",
                forward_mode(x)
            );
        }
    }
}

#[test]
fn fast_activation_derivatives_match_finite_differences_of_themselves() {
    // The tangent of an approximation is the exact derivative of that approximation; check
    // it against central differences of the f32 function itself (h = 1e-2: truncation error
    // ~h^2 |f'''| / 6 < 2e-4, rounding error ~eps / h < 1e-5).
    for &x in &SWEEP {
        for (name, forward_mode, value) in [
            (
                "fast_tanh",
                tangent_of::<FastTanh> as fn(f32) -> f32,
                fast_tanh::<f32> as fn(f32) -> f32,
            ),
            (
                "fast_sigmoid",
                tangent_of::<FastSigmoid>,
                fast_sigmoid::<f32>,
            ),
        ] {
            let fd = central(|z| value(z as f32) as f64, x as f64, 1e-2);
            assert!(
                close(forward_mode(x), fd, 5e-4),
                "{name}'({x}): forward {} vs fd {fd}",
                forward_mode(x)
            );
        }
    }
}

#[test]
fn real_functions_have_exact_derivative_rules() {
    let at = |x: f32| Dual::<1>::variable(x, 0);
    for &x in &[0.3f32, 0.9, 1.7, 2.5] {
        let xd = x as f64;
        let checks: [(&str, f32, f64); 7] = [
            ("sqrt", at(x).sqrt().t[0], central(f64::sqrt, xd, 1e-6)),
            ("exp", at(x).exp().t[0], central(f64::exp, xd, 1e-6)),
            ("ln", at(x).ln().t[0], central(f64::ln, xd, 1e-6)),
            ("sin", at(x).sin().t[0], central(f64::sin, xd, 1e-6)),
            ("cos", at(x).cos().t[0], central(f64::cos, xd, 1e-6)),
            (
                "powi(-2)",
                at(x).powi(-2).t[0],
                central(|z| z.powi(-2), xd, 1e-6),
            ),
            (
                "x / (1 + x^2)",
                (at(x) / (at(x) * at(x) + 1.0)).t[0],
                central(|z| z / (1.0 + z * z), xd, 1e-6),
            ),
        ];
        for (name, forward_mode, fd) in checks {
            assert!(
                close(forward_mode, fd, 1e-5),
                "{name} at {x}: {forward_mode} vs {fd}"
            );
        }
    }
}

#[test]
fn undefined_derivatives_are_finite_and_documented() {
    let zero = Dual::<1>::variable(0.0, 0);
    assert_eq!(zero.sqrt().t[0], 0.0, "sqrt'(0) is defined as 0");
    assert_eq!(zero.abs().t[0], 0.0, "abs'(0) is defined as 0");
    assert_eq!(zero.powi(0).t[0], 0.0);
    assert!(Directional::variable(0.0f32).sqrt().is_finite());
}

#[test]
fn dual_value_part_is_bitwise_the_f32_computation() {
    // Forward mode must not perturb values: the same network on f32 and on Dual<3> gives
    // the same value bits.
    let mut net = <(
        Cube<1>,
        Dense<1, 8, Tanh>,
        Dense<8, 3, FastSigmoid>,
        Dense<3, 1, Identity>,
    )>::default();
    init(&mut net, &mut rng_from_seed(5), InitScheme::GlorotUniform).unwrap();
    for &x in &SWEEP {
        let plain: [f32; 1] = net.forward(&[x * 0.2], ParamSeed::NONE);
        let dual: [Dual<3>; 1] = net.forward(&[Dual::variable(x * 0.2, 1)], ParamSeed::window(4));
        assert_eq!(plain[0].to_bits(), dual[0].v.to_bits());
    }
}

#[test]
fn fast_tanh_stays_within_documented_error_and_is_odd_and_bounded() {
    let mut worst = 0.0f64;
    // Dense sweep of [0, 10] (2^21 points) plus far-out values; oddness covers x < 0.
    let n = 1 << 21;
    for i in 0..=n {
        let x = 10.0 * i as f32 / n as f32;
        let y = fast_tanh(x);
        worst = worst.max((y as f64 - (x as f64).tanh()).abs());
        assert_eq!(
            fast_tanh(-x).to_bits(),
            (-y).to_bits(),
            "fast_tanh is exactly odd at {x}"
        );
        assert!((-1.0..=1.0).contains(&y));
    }
    for x in [20.0f32, 1e6, f32::MAX, f32::INFINITY] {
        assert_eq!(fast_tanh(x), 1.0);
        assert_eq!(fast_tanh(-x), -1.0);
    }
    assert!(worst <= FAST_TANH_MAX_ERROR as f64, "max error {worst:e}");
    eprintln!("fast_tanh max abs error vs f64 tanh: {worst:e}");
}

#[test]
fn fast_sigmoid_stays_within_documented_error_and_is_bounded_and_symmetric() {
    let mut worst = 0.0f64;
    let n = 1 << 20;
    for i in 0..=n {
        let x = -20.0 + 40.0 * i as f32 / n as f32;
        let y = fast_sigmoid(x);
        let exact = 1.0 / (1.0 + (-(x as f64)).exp());
        worst = worst.max((y as f64 - exact).abs());
        assert!((0.0..=1.0).contains(&y));
        // sigma(-x) = 1 - sigma(x), to within the two roundings of the final affine map.
        assert!((fast_sigmoid(-x) - (1.0 - y)).abs() <= 2.0 * f32::EPSILON);
    }
    assert!(
        worst <= FAST_SIGMOID_MAX_ERROR as f64,
        "max error {worst:e}"
    );
    eprintln!("fast_sigmoid max abs error vs f64 logistic: {worst:e}");
}

/// `fast_tanh` as documented, every clamp applied: the input to +-7.905311, the rational
/// function, the output to +-1 (NaN passes through both clamps).
fn fast_tanh_reference(x: f32) -> f32 {
    const C: f32 = 7.905_311;
    let x = if x < -C { -C } else { x };
    let x = if x > C { C } else { x };
    let x2 = x * x;
    let p = ((((((x2 * -2.760_768_5e-16 + 2.000_188e-13) * x2 + -8.604_672e-11) * x2
        + 5.122_297_1e-8)
        * x2
        + 1.485_722_4e-5)
        * x2
        + 6.372_619_3e-4)
        * x2
        + 4.893_524_6e-3)
        * x;
    let q = ((x2 * 1.198_258_4e-6 + 1.185_347_1e-4) * x2 + 2.268_434_6e-3) * x2 + 4.893_525e-3;
    let y = p / q;
    let y = if y < -1.0 { -1.0 } else { y };
    if y > 1.0 {
        1.0
    } else {
        y
    }
}

/// Floats to compare the fast activations on: every `f32` in [4, 8.5) (where the clamps
/// act or nearly act: 2^23 + values), a stride through all bit patterns, and special values.
fn activation_probe_points() -> Vec<f32> {
    let mut xs: Vec<f32> = (4.0f32.to_bits()..8.5f32.to_bits())
        .map(f32::from_bits)
        .collect();
    xs.extend((0..=u32::MAX).step_by(65_537).map(f32::from_bits));
    xs.extend([
        0.0,
        -0.0,
        7.905_311,
        7.905_312,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
    ]);
    xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
    let negatives: Vec<f32> = xs.iter().map(|x| -x).collect();
    xs.extend(negatives);
    xs
}

#[test]
fn fast_activations_give_the_documented_operations_bits_on_every_path() {
    // One lane takes an early exit inside the clamp; lanes use branch-free clamps; Dual
    // evaluates value and derivative together: all must be the documented operations.
    let xs = activation_probe_points();
    for chunk in xs.chunks(8) {
        let mut lanes = F32x::<8>::splat(0.0);
        for (j, &x) in chunk.iter().enumerate() {
            lanes.0[j] = x;
        }
        let (lane_tanh, lane_sigmoid) = (fast_tanh(lanes), fast_sigmoid(lanes));
        for (j, &x) in chunk.iter().enumerate() {
            let want = fast_tanh_reference(x);
            let want_sigmoid = fast_tanh_reference(x * 0.5) * 0.5 + 0.5;
            let got = [
                fast_tanh(x),
                FastTanh::apply(x),
                lane_tanh.0[j],
                fast_tanh(Dual::<1>::variable(x, 0)).v,
            ];
            let got_sigmoid = [
                fast_sigmoid(x),
                FastSigmoid::apply(x),
                lane_sigmoid.0[j],
                fast_sigmoid(Dual::<1>::variable(x, 0)).v,
            ];
            for (g, gs) in got.iter().zip(&got_sigmoid) {
                if want.is_nan() {
                    assert!(g.is_nan() && gs.is_nan(), "NaN must pass through");
                } else {
                    assert_eq!(g.to_bits(), want.to_bits(), "fast_tanh({x:e})");
                    assert_eq!(gs.to_bits(), want_sigmoid.to_bits(), "fast_sigmoid({x:e})");
                }
            }
        }
    }
    // The early exit tests x^2 <= 7.905311^2: exactly |x| <= 7.905311 (the next f32 up
    // squares to more), and the function is exactly +-1 at and beyond the clamp.
    let clamp = 7.905_311f32;
    let above = f32::from_bits(clamp.to_bits() + 1);
    assert!(above * above > clamp * clamp);
    assert_eq!((fast_tanh(clamp), fast_tanh(-clamp)), (1.0, -1.0));
}

#[test]
fn dense_layers_give_the_same_bits_fused_on_f32_lanes_and_dual() {
    // Without tangents a Dense layer applies its activation output by output; on Dual it
    // computes all pre-activations first. The values must agree bit for bit, on f32, on
    // F32x lanes and on Dual, inside and far outside the activations' clamps.
    // Widths 23 = 8 + 8 + 4 + 3 and 13 = 8 + 4 + 1: every group size of the host's
    // outputs-in-lanes path, and 7 below it.
    let mut net = <(
        Dense<3, 23, FastTanh>,
        Dense<23, 7, FastSigmoid>,
        Dense<7, 13, Tanh>,
        Dense<13, 1, Identity>,
    )>::default();
    init(&mut net, &mut rng_from_seed(11), InitScheme::GlorotUniform).unwrap();
    for scale in [0.1f32, 1.0, 30.0, 1e4] {
        let inputs: Vec<[f32; 3]> = (0..16)
            .map(|i| {
                let t = i as f32 - 7.5;
                [scale * t, scale * (0.3 * t).sin(), -scale * 0.1 * t * t]
            })
            .collect();
        let wide = [0usize, 1, 2].map(|c| {
            let mut v = F32x::<16>::splat(0.0);
            for (j, x) in inputs.iter().enumerate() {
                v.0[j] = x[c];
            }
            v
        });
        let lanes: [F32x<16>; 1] = net.forward(&wide, ParamSeed::NONE);
        for (j, x) in inputs.iter().enumerate() {
            let plain: [f32; 1] = net.forward(x, ParamSeed::NONE);
            let dual: [Dual<2>; 1] =
                net.forward(&x.map(|v| Dual::variable(v, 0)), ParamSeed::window(3));
            assert_eq!(plain[0].to_bits(), dual[0].v.to_bits(), "input {x:?}");
            assert_eq!(plain[0].to_bits(), lanes[0].0[j].to_bits(), "input {x:?}");
        }
    }
}

/// `(first, second)` applied as a tuple (its last two members go through
/// `Layer::forward_then`, which a Dense pair with one output computes unit by unit) and
/// layer by layer must give the same bits, on f32, on 4 and 8 lanes and on Dual values.
fn check_pair_bits<F, S, const I: usize, const H: usize, const O: usize>(first: F, second: S)
where
    F: Layer<f32, Input = [f32; I], Output = [f32; H]>
        + Layer<F32x<4>, Input = [F32x<4>; I], Output = [F32x<4>; H]>
        + Layer<F32x<8>, Input = [F32x<8>; I], Output = [F32x<8>; H]>
        + Layer<Dual<2>, Input = [Dual<2>; I], Output = [Dual<2>; H]>
        + Copy,
    S: Layer<f32, Input = [f32; H], Output = [f32; O]>
        + Layer<F32x<4>, Input = [F32x<4>; H], Output = [F32x<4>; O]>
        + Layer<F32x<8>, Input = [F32x<8>; H], Output = [F32x<8>; O]>
        + Layer<Dual<2>, Input = [Dual<2>; H], Output = [Dual<2>; O]>
        + Copy,
{
    let pair = (first, second);
    let specials = [
        0.0f32,
        -0.0,
        0.7,
        -2.5,
        7.905_311,
        -30.0,
        1e4,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    // Eight inputs of I components each from the special values, then 4 and 8 lanes.
    let inputs: Vec<[f32; I]> = (0..specials.len())
        .map(|k| core::array::from_fn(|i| specials[(k + 3 * i) % specials.len()]))
        .collect();
    // Bits, with every NaN as one: Rust leaves a NaN result's sign and payload unspecified
    // (the compiler may swap the operands of an addition), so only NaN-ness is compared.
    let bits = |v: f32| {
        if v.is_nan() {
            f32::NAN.to_bits()
        } else {
            v.to_bits()
        }
    };
    for x in &inputs {
        let fused = <(F, S) as Layer<f32>>::forward(&pair, x, ParamSeed::NONE);
        let hidden = <F as Layer<f32>>::forward(&first, x, ParamSeed::NONE);
        let composed = <S as Layer<f32>>::forward(&second, &hidden, ParamSeed::NONE);
        assert_eq!(fused.map(bits), composed.map(bits), "f32, input {x:?}");
        let dual_x = x.map(|v| Dual::<2>::variable(v, 1));
        let dual = <(F, S) as Layer<Dual<2>>>::forward(&pair, &dual_x, ParamSeed::window(0));
        assert_eq!(
            dual.map(|d| bits(d.v)),
            composed.map(bits),
            "Dual, input {x:?}"
        );
    }
    for group in inputs.chunks(4) {
        let wide: [F32x<4>; I] = core::array::from_fn(|i| {
            F32x(core::array::from_fn(|j| group.get(j).map_or(1.0, |x| x[i])))
        });
        let fused = <(F, S) as Layer<F32x<4>>>::forward(&pair, &wide, ParamSeed::NONE);
        let hidden = <F as Layer<F32x<4>>>::forward(&first, &wide, ParamSeed::NONE);
        let composed = <S as Layer<F32x<4>>>::forward(&second, &hidden, ParamSeed::NONE);
        for (j, x) in group.iter().enumerate() {
            let one = <(F, S) as Layer<f32>>::forward(&pair, x, ParamSeed::NONE);
            for o in 0..O {
                assert_eq!(
                    bits(fused[o].0[j]),
                    bits(composed[o].0[j]),
                    "4 lanes, {x:?}"
                );
                assert_eq!(bits(fused[o].0[j]), bits(one[o]), "4 lanes vs one, {x:?}");
            }
        }
    }
    for group in inputs.chunks(8) {
        let wide: [F32x<8>; I] = core::array::from_fn(|i| {
            F32x(core::array::from_fn(|j| {
                group.get(j).map_or(-1.0, |x| x[i])
            }))
        });
        let fused = <(F, S) as Layer<F32x<8>>>::forward(&pair, &wide, ParamSeed::NONE);
        let hidden = <F as Layer<F32x<8>>>::forward(&first, &wide, ParamSeed::NONE);
        let composed = <S as Layer<F32x<8>>>::forward(&second, &hidden, ParamSeed::NONE);
        for (j, x) in group.iter().enumerate() {
            for o in 0..O {
                assert_eq!(
                    bits(fused[o].0[j]),
                    bits(composed[o].0[j]),
                    "8 lanes, {x:?}"
                );
            }
        }
    }
}

#[test]
fn a_dense_pair_gives_the_bits_of_its_layers_applied_one_by_one() {
    // The seed model's two networks (20 hidden units: five groups of four), hidden widths
    // with a remainder (7, 6), the smallest fused width (2), one hidden unit (not fused: a
    // width-1 dot has no accumulators), two outputs (not fused), a two-input first layer,
    // and a three-member tuple whose last two are the pair.
    fn layer<L: Parameters + Default>(seed: u64) -> L {
        let mut l = L::default();
        let mut p = vec![0.0f32; L::PARAMS];
        let mut rng = rng_from_seed(seed);
        for (k, v) in p.iter_mut().enumerate() {
            // Weights up to +-3 (pre-activations of +-30 saturate), every fifth exactly 0.
            let u = (rand_core::Rng::next_u32(&mut rng) >> 8) as f32 / 16_777_216.0;
            *v = if k % 5 == 4 { 0.0 } else { 6.0 * u - 3.0 };
        }
        l.write_params(&p).unwrap();
        l
    }
    check_pair_bits(
        layer::<Dense<1, 20, FastTanh>>(1),
        layer::<Dense<20, 1, Identity>>(2),
    );
    check_pair_bits(
        layer::<Dense<1, 20, FastSigmoid>>(3),
        layer::<Dense<20, 1, Identity>>(4),
    );
    check_pair_bits(
        layer::<Dense<1, 7, FastTanh>>(5),
        layer::<Dense<7, 1, Tanh>>(6),
    );
    check_pair_bits(
        layer::<Dense<2, 6, Sigmoid>>(7),
        layer::<Dense<6, 1, FastSigmoid>>(8),
    );
    check_pair_bits(
        layer::<Dense<1, 2, Relu>>(9),
        layer::<Dense<2, 1, Identity>>(10),
    );
    check_pair_bits(
        layer::<Dense<1, 1, FastTanh>>(11),
        layer::<Dense<1, 1, Identity>>(12),
    );
    check_pair_bits(
        layer::<Dense<1, 5, FastTanh>>(13),
        layer::<Dense<5, 2, Identity>>(14),
    );
    // The host's one-trajectory path computes hidden units in lane groups (16 or 8, then 4,
    // then one by one): widths that leave every kind of remainder, with one and with
    // several inputs (the group's pre-activations then use dot's four accumulators).
    check_pair_bits(
        layer::<Dense<1, 35, FastTanh>>(17),
        layer::<Dense<35, 1, Identity>>(18),
    );
    check_pair_bits(
        layer::<Dense<1, 16, FastSigmoid>>(19),
        layer::<Dense<16, 1, FastTanh>>(20),
    );
    check_pair_bits(
        layer::<Dense<3, 20, FastTanh>>(21),
        layer::<Dense<20, 1, Identity>>(22),
    );
    check_pair_bits(
        layer::<Dense<5, 13, Tanh>>(23),
        layer::<Dense<13, 1, FastSigmoid>>(24),
    );
    // The seed drift (Cube, Dense, Dense): the tuple applies the cube, then the pair.
    let (cube, first, second) = (
        Cube::<1>::default(),
        layer::<Dense<1, 20, FastTanh>>(15),
        layer::<Dense<20, 1, Identity>>(16),
    );
    let drift = (cube, first, second);
    for x in [0.0f32, -0.0, 0.5, -1.3, 2.0, 3.5, -20.0, f32::NAN] {
        let whole: [f32; 1] = drift.forward(&[x], ParamSeed::NONE);
        let lanes: [F32x<8>; 1] = drift.forward(&[F32x::splat(x)], ParamSeed::NONE);
        let cubed: [f32; 1] = cube.forward(&[x], ParamSeed::NONE);
        let hidden: [f32; 20] = first.forward(&cubed, ParamSeed::NONE);
        let parts: [f32; 1] = second.forward(&hidden, ParamSeed::NONE);
        assert_eq!(whole[0].to_bits(), parts[0].to_bits(), "x = {x}");
        assert!(
            lanes[0].0.iter().all(|v| v.to_bits() == parts[0].to_bits()),
            "x = {x}"
        );
    }
}

/// Checks forward-mode derivatives of `layer` with respect to inputs and all parameters
/// against central finite differences of its f32 forward pass, at input `x`.
fn check_layer_derivatives<L, const I: usize, const O: usize>(layer: &L, x: [f32; I])
where
    L: Layer<f32, Input = [f32; I], Output = [f32; O]>
        + Layer<Dual<1>, Input = [Dual<1>; I], Output = [Dual<1>; O]>
        + Parameters
        + Clone,
{
    // f32 central differences with a relative step of 1e-2: truncation ~1e-4 relative,
    // rounding ~1e-5; a tolerance of 2e-3 (relative to 1 + |derivative|) leaves margin.
    let h = 1e-2f32;
    let tol = 2e-3;
    for i in 0..I {
        let xd: [Dual<1>; I] =
            core::array::from_fn(|j| Dual::variable(x[j], if j == i { 0 } else { 1 }));
        let y = <L as Layer<Dual<1>>>::forward(layer, &xd, ParamSeed::NONE);
        let (mut xp, mut xm) = (x, x);
        xp[i] += h;
        xm[i] -= h;
        let yp = <L as Layer<f32>>::forward(layer, &xp, ParamSeed::NONE);
        let ym = <L as Layer<f32>>::forward(layer, &xm, ParamSeed::NONE);
        for o in 0..O {
            let fd = (yp[o] as f64 - ym[o] as f64) / (2.0 * h as f64);
            assert!(
                close(y[o].t[0], fd, tol),
                "dy{o}/dx{i}: {} vs {fd}",
                y[o].t[0]
            );
        }
    }
    let mut params = vec![0.0f32; L::PARAMS];
    layer.read_params(&mut params).unwrap();
    let xd = x.map(Dual::<1>::constant);
    for p in 0..L::PARAMS {
        let y = <L as Layer<Dual<1>>>::forward(layer, &xd, ParamSeed::window(p));
        let shifted = |delta: f32| {
            let mut q = params.clone();
            q[p] += delta;
            let mut l = layer.clone();
            l.write_params(&q).unwrap();
            <L as Layer<f32>>::forward(&l, &x, ParamSeed::NONE)
        };
        let (yp, ym) = (shifted(h), shifted(-h));
        for o in 0..O {
            let fd = (yp[o] as f64 - ym[o] as f64) / (2.0 * h as f64);
            assert!(
                close(y[o].t[0], fd, tol),
                "dy{o}/dp{p}: {} vs {fd}",
                y[o].t[0]
            );
        }
    }
}

#[test]
fn dense_layers_differentiate_in_inputs_and_parameters() {
    let mut rng = rng_from_seed(11);
    let mut a = Dense::<3, 4, Tanh>::default();
    let mut b = Dense::<2, 2, Softplus>::default();
    let mut c = Dense::<4, 3, FastSigmoid>::default();
    init(&mut a, &mut rng, InitScheme::GlorotUniform).unwrap();
    init(&mut b, &mut rng, InitScheme::HeUniform).unwrap();
    init(&mut c, &mut rng, InitScheme::Uniform { limit: 0.8 }).unwrap();
    a.bias = [0.1, -0.2, 0.3, 0.05];
    check_layer_derivatives(&a, [0.4, -0.7, 1.1]);
    check_layer_derivatives(&b, [0.9, -0.3]);
    check_layer_derivatives(&c, [0.2, -0.1, 0.5, 1.2]);
    check_layer_derivatives(&Pow::<2, 3>, [0.7, -1.3]);
}

#[test]
fn three_deep_chain_differentiates_in_inputs_and_parameters() {
    type Net = (
        Dense<2, 6, Tanh>,
        Dense<6, 5, FastTanh>,
        Dense<5, 2, Sigmoid>,
    );
    let mut net = Net::default();
    init(&mut net, &mut rng_from_seed(3), InitScheme::GlorotUniform).unwrap();
    check_layer_derivatives(&net, [0.3, -0.8]);
    // And a four-deep chain with the seed's cube feature in front.
    type Seed = (
        Cube<1>,
        Dense<1, 5, FastTanh>,
        Dense<5, 3, Tanh>,
        Dense<3, 1, Identity>,
    );
    let mut seed = Seed::default();
    init(&mut seed, &mut rng_from_seed(4), InitScheme::GlorotUniform).unwrap();
    check_layer_derivatives(&seed, [0.9]);
}

#[test]
fn gradients_in_chunks_agree_bitwise_with_one_lane_at_a_time() {
    type Net = (Dense<2, 5, FastTanh>, Dense<5, 1, Identity>);
    let mut net = Net::default();
    init(&mut net, &mut rng_from_seed(8), InitScheme::GlorotUniform).unwrap();
    let x = [Dual::<4>::constant(0.3), Dual::<4>::constant(-1.1)];
    let x1 = [Dual::<1>::constant(0.3), Dual::<1>::constant(-1.1)];
    for start in (0..Net::PARAMS).step_by(4) {
        let y4: [Dual<4>; 1] = net.forward(&x, ParamSeed::window(start));
        for lane in 0..4.min(Net::PARAMS - start) {
            let y1: [Dual<1>; 1] = net.forward(&x1, ParamSeed::window(start + lane));
            assert_eq!(y4[0].t[lane].to_bits(), y1[0].t[0].to_bits());
        }
    }
}

#[test]
fn chain_parameters_round_trip_bit_exactly_in_documented_order() {
    type Net = (Cube<1>, Dense<1, 3, Tanh>, Dense<3, 2, Identity>);
    assert_eq!(Net::PARAMS, (3 + 3) + (6 + 2));
    let mut net = Net::default();
    let src: Vec<f32> = (0..Net::PARAMS)
        .map(|i| {
            f32::from_bits(0x3f80_0000 + 7919 * i as u32) * if i % 2 == 0 { 1.0 } else { -1.0 }
        })
        .collect();
    net.write_params(&src).unwrap();
    // Documented order: first layer's weights row by row, its bias, then the next layer.
    assert_eq!(net.1.weight, [[src[0]], [src[1]], [src[2]]]);
    assert_eq!(net.1.bias, [src[3], src[4], src[5]]);
    assert_eq!(net.2.weight[1], [src[9], src[10], src[11]]);
    assert_eq!(net.2.bias, [src[12], src[13]]);
    let mut back = vec![0.0f32; Net::PARAMS];
    net.read_params(&mut back).unwrap();
    assert_eq!(
        src.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        back.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn bad_parameter_input_is_rejected_and_leaves_the_model_untouched() {
    let mut layer = Dense::<2, 2, Tanh>::default();
    init(&mut layer, &mut rng_from_seed(1), InitScheme::GlorotUniform).unwrap();
    let before = layer;
    assert_eq!(
        layer.write_params(&[0.0; 5]),
        Err(Error::Length {
            what: "parameters",
            expected: 6,
            found: 5
        })
    );
    assert_eq!(
        layer.write_params(&[0.0, 1.0, f32::NAN, 0.0, 0.0, 0.0]),
        Err(Error::NonFinite {
            what: "parameters",
            index: 2
        })
    );
    let mut out = [7.0f32; 7];
    assert!(layer.read_params(&mut out).is_err());
    assert_eq!(out, [7.0; 7]);
    for limit in [f32::NAN, f32::INFINITY, -1.0] {
        let mut rng = rng_from_seed(9);
        assert!(init(&mut layer, &mut rng, InitScheme::Uniform { limit }).is_err());
        assert_eq!(
            rng,
            rng_from_seed(9),
            "the generator is not advanced on error"
        );
    }
    assert_eq!(layer, before);
}

#[test]
fn initialization_respects_each_schemes_limit_and_is_reproducible() {
    let mut a = Dense::<8, 4, Relu>::default();
    let mut b = Dense::<8, 4, Relu>::default();
    init(&mut a, &mut rng_from_seed(2), InitScheme::HeUniform).unwrap();
    init(&mut b, &mut rng_from_seed(2), InitScheme::HeUniform).unwrap();
    assert_eq!(a, b);
    let he = (6.0f32 / 8.0).sqrt();
    assert!(a.weight.iter().flatten().all(|w| w.abs() <= he));
    // A uniform draw fills the interval: the largest weight is near the limit.
    let max = a
        .weight
        .iter()
        .flatten()
        .fold(0.0f32, |m, w| m.max(w.abs()));
    assert!(max > 0.5 * he);
    assert_eq!(a.bias, [0.0; 4]);
}
