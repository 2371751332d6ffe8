//! Element-wise activation functions, including fast ones built from + - * / only.

use crate::lanes::{Lanes, Mask};
use crate::real::Real;

/// An element-wise nonlinearity. Implementors are zero-sized markers used as the `A` in
/// [`Dense<I, O, A>`](crate::nn::Dense).
pub trait Activation: Copy + Default {
    /// A short stable name, recorded in weights files.
    const NAME: &'static str;
    /// Applies the function to one scalar.
    fn apply<T: Real>(x: T) -> T;
    /// Applies the function to every element of an array in place, with the same results as
    /// [`apply`](Activation::apply) element by element. The fast activations override it to
    /// evaluate all elements' values and derivatives together (vectorized) before touching
    /// the tangents.
    #[inline]
    fn apply_array<T: Real, const N: usize>(x: &mut [T; N]) {
        for o in x.iter_mut() {
            *o = Self::apply(*o);
        }
    }
}

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $label:literal, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;
        impl Activation for $name {
            const NAME: &'static str = $label;
            #[inline]
            fn apply<T: Real>($x: T) -> T {
                $body
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $label:literal, |$x:ident| $body:expr, array: $array:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;
        impl Activation for $name {
            const NAME: &'static str = $label;
            #[inline(always)]
            fn apply<T: Real>($x: T) -> T {
                $body
            }
            #[inline]
            fn apply_array<T: Real, const N: usize>(x: &mut [T; N]) {
                $array(x)
            }
        }
    };
}

activation!(
    /// `x`: a linear output layer.
    Identity, "identity", |x| x
);
activation!(
    /// `tanh x` from the math backend (`libm` or `micromath`).
    Tanh, "tanh", |x| x.tanh()
);
activation!(
    /// `1 / (1 + e^-x)` from the math backend.
    Sigmoid, "sigmoid", |x| x.sigmoid()
);
activation!(
    /// `max(x, 0)`; the derivative at 0 is taken as 0. NaN passes through as NaN.
    Relu, "relu", |x| {
        // `<= 0` rather than `> 0`: NaN fails it and passes through, so a blow-up stays visible.
        T::select(x.value().le(<T::Value as Lanes>::ZERO), T::ZERO, x)
    }
);
activation!(
    /// `ln(1 + e^x)`, computed as `x + ln(1 + e^-x)` for `x > 0` so it never overflows.
    /// Each branch is smooth, so the derivative (the sigmoid) is exact everywhere.
    Softplus, "softplus", |x| {
        // Both branches are computed (lanes may differ); each lane keeps its own.
        let positive = x.gt(T::ZERO);
        T::select(positive, x + ((-x).exp() + 1.0).ln(), (x.exp() + 1.0).ln())
    }
);
activation!(
    /// [`fast_tanh`]: a rational approximation of tanh from + - * / only.
    FastTanh, "fast_tanh", |x| fast_tanh(x), array: fast_tanh_array
);
activation!(
    /// [`fast_sigmoid`]: `(1 + fast_tanh(x / 2)) / 2`.
    FastSigmoid, "fast_sigmoid", |x| fast_sigmoid(x), array: fast_sigmoid_array
);

/// Bound on the absolute error of [`fast_tanh`] against the exact tanh over all of `f32`
/// (a dense sweep in the tests measures 4.4e-7; libm's `tanhf` is within 6e-8).
pub const FAST_TANH_MAX_ERROR: f32 = 5e-7;
/// Bound on the absolute error of [`fast_sigmoid`] against the exact logistic function
/// (measured 2.3e-7 by the same sweep).
pub const FAST_SIGMOID_MAX_ERROR: f32 = 3e-7;

/// Beyond this the approximation is clamped; `tanh(7.905) = 1 - 2.7e-7`.
const TANH_CLAMP: f32 = 7.905_311;

/// tanh by a [13/6] rational function of `x` (odd numerator, even denominator), clamped to
/// `±TANH_CLAMP`: 7 multiplications, 8 additions and one division, and nothing else.
///
/// Because it uses only IEEE basic operations it gives the same bits on every target, and
/// it vectorizes. It is exactly odd (`fast_tanh(-x) == -fast_tanh(x)`) and lies in
/// `[-1, 1]`. Its error against the exact tanh is at most [`FAST_TANH_MAX_ERROR`]. Its
/// derivative (for `Dual` arguments) is the exact derivative of the approximation, which is
/// zero beyond the clamp. On `Dual` the function and its derivative are evaluated once in
/// `f32` and the tangents scaled by the derivative (one multiplication per lane instead of
/// some twenty); the value bits are those of the `f32` evaluation either way.
///
/// ```
/// let y = tinysde::nn::fast_tanh(0.5f32);
/// assert!((y - 0.462_117_16).abs() < 1e-6);
/// ```
#[inline(always)]
pub fn fast_tanh<T: Real>(x: T) -> T {
    if T::TANGENTS == 0 {
        return fast_tanh_without_tangents(x);
    }
    let (y, dy) = fast_tanh_and_derivative(x.value());
    match x.chain_first_order(y, dy) {
        Some(r) => r,
        None => fast_tanh_ops(x),
    }
}

/// [`fast_tanh`] of every element. On `Dual` the values and derivatives of all elements
/// are computed first in `f32` (a loop the compiler vectorizes), then each element's
/// tangents are scaled once; elsewhere element by element. Same results as `fast_tanh`.
#[inline(always)]
fn fast_tanh_array<T: Real, const N: usize>(x: &mut [T; N]) {
    if T::TANGENTS == 0 {
        if let Some(y) = lanes_each(x, fast_tanh_clamped_each) {
            *x = y;
            return;
        }
        for o in x.iter_mut() {
            *o = fast_tanh_without_tangents(*o);
        }
        return;
    }
    let mut y = [<T::Value as Lanes>::ZERO; N];
    let mut dy = [<T::Value as Lanes>::ZERO; N];
    for (yi, xi) in y.iter_mut().zip(x.iter()) {
        *yi = xi.value();
    }
    if <T::Value as Lanes>::WIDTH > 1 {
        (y, dy) = fast_tanh_and_derivative_each(y);
    } else {
        for (yi, di) in y.iter_mut().zip(dy.iter_mut()) {
            (*yi, *di) = fast_tanh_and_derivative(*yi);
        }
    }
    for ((o, &yi), &di) in x.iter_mut().zip(&y).zip(&dy) {
        *o = match o.chain_first_order(yi, di) {
            Some(r) => r,
            None => fast_tanh_ops(*o),
        };
    }
}

/// [`fast_sigmoid`] of every element: without tangents one pass (`x / 2`, `fast_tanh`,
/// `t / 2 + 1/2` per element), on `Dual` through [`fast_tanh_array`].
#[inline]
fn fast_sigmoid_array<T: Real, const N: usize>(x: &mut [T; N]) {
    if T::TANGENTS == 0 {
        let sigmoid_each = |x: [_; N]| {
            let t = fast_tanh_clamped_each(each(x, |x| x * 0.5));
            each(t, |t| t * 0.5 + 0.5)
        };
        if let Some(y) = lanes_each(x, sigmoid_each) {
            *x = y;
            return;
        }
        for o in x.iter_mut() {
            *o = fast_sigmoid(*o);
        }
        return;
    }
    for h in x.iter_mut() {
        *h = *h * 0.5;
    }
    fast_tanh_array(x);
    for o in x.iter_mut() {
        *o = *o * 0.5 + 0.5;
    }
}

// Coefficients of the minimax-style rational fit widely used for float tanh (as in
// Eigen's generic_fast_tanh_float).
const A1: f32 = 4.893_524_6e-3;
const A3: f32 = 6.372_619_3e-4;
const A5: f32 = 1.485_722_4e-5;
const A7: f32 = 5.122_297_1e-8;
const A9: f32 = -8.604_672e-11;
const A11: f32 = 2.000_188e-13;
const A13: f32 = -2.760_768_5e-16;
const B0: f32 = 4.893_525e-3;
const B2: f32 = 2.268_434_6e-3;
const B4: f32 = 1.185_347_1e-4;
const B6: f32 = 1.198_258_4e-6;

/// `x` limited to `[lo, hi]` (a bound, as a constant, where it is active). NaN fails both
/// comparisons and passes through, so a blow-up stays visible; two comparisons only, which
/// keeps the fast activations as cheap as the clamps they replace.
#[inline(always)]
pub(super) fn clamp_keeping_nan<T: Real>(x: T, lo: f32, hi: f32) -> T {
    // Two independent selects (not an else-if chain): they compile to conditional moves.
    let x = T::select(x.lt(T::cst(lo)), T::cst(lo), x);
    T::select(x.gt(T::cst(hi)), T::cst(hi), x)
}

/// [`clamp_keeping_nan`] on lane values.
#[inline(always)]
pub(super) fn clamp_lanes_keeping_nan<V: Lanes>(x: V, lo: f32, hi: f32) -> V {
    x.at_least(V::splat(lo)).at_most(V::splat(hi))
}

/// `x^2` at and below which `|x| <= TANH_CLAMP`: `fl(x^2)` is non-decreasing in `|x|`,
/// equals this at `TANH_CLAMP` and exceeds it at the next `f32` (checked by the tests).
const TANH_CLAMP_SQUARED: f32 = TANH_CLAMP * TANH_CLAMP;

/// The rational function of [`fast_tanh`] at `x` with `x2 = x * x`, unclamped.
#[inline(always)]
fn tanh_rational<V: Lanes>(x: V, x2: V) -> V {
    let p = ((((((x2 * A13 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * x;
    let q = ((x2 * B6 + B4) * x2 + B2) * x2 + B0;
    p / q
}

/// [`fast_tanh`] of lane values, the same bits as [`fast_tanh_ops`].
///
/// Inside the clamp (`|x| <= TANH_CLAMP`, tested as `x^2 <= TANH_CLAMP_SQUARED`) both
/// clamps are the identity: the input's by definition, the output's because the rational
/// function stays within `[-1, 1]` there (an exhaustive check over every `f32` in the
/// range finds at most exactly 1). NaN passes both clamps unchanged too, so it takes the
/// same branch (`!(x^2 > TANH_CLAMP_SQUARED)`): one comparison and a branch per unit instead
/// of four clamping selects, and no call. Beyond the clamp the result is exactly `±1`.
/// Several lanes keep the branch-free selects, which vectorize.
#[inline(always)]
fn fast_tanh_value<V: Lanes>(x: V) -> V {
    if V::WIDTH > 1 {
        return fast_tanh_clamped(x);
    }
    let x2 = x * x;
    if !x2.gt(V::splat(TANH_CLAMP_SQUARED)).any() {
        tanh_rational(x, x2)
    } else {
        // |x| > TANH_CLAMP: the clamped input is ±TANH_CLAMP, where the function is exactly
        // ±1 (tested): 1 with the sign bit of x (two integer operations, no comparison).
        let sign = x.lane(0).to_bits() & 0x8000_0000;
        V::splat(f32::from_bits(sign | 1.0f32.to_bits()))
    }
}

/// [`fast_tanh_ops`] on lane values: clamp, rational function, clamp.
#[inline(always)]
fn fast_tanh_clamped<V: Lanes>(x: V) -> V {
    let [y] = fast_tanh_clamped_each([x]);
    y
}

/// `f` of the elements' lane values, for a scalar of several lanes that is its value (the
/// lanes type itself); `None` for others (one lane keeps its branchy per-element path).
#[inline(always)]
pub(super) fn lanes_each<T: Real, const N: usize>(
    x: &[T; N],
    f: impl FnOnce([T::Value; N]) -> [T::Value; N],
) -> Option<[T; N]> {
    if <T::Value as Lanes>::WIDTH == 1 {
        return None;
    }
    let zero = <T::Value as Lanes>::ZERO;
    let mut values = [zero; N];
    for (v, x) in values.iter_mut().zip(x) {
        *v = x.value();
    }
    let y = f(values);
    let mut out = *x;
    for (o, y) in out.iter_mut().zip(y) {
        *o = o.chain_first_order(y, zero)?;
    }
    Some(out)
}

/// [`fast_tanh_clamped`] of every element, operation by operation across the elements
/// (each step of the rational function for all of them before the next step): the same
/// operations per element, with independent instructions side by side, so that a wide
/// core overlaps the elements' long dependency chains.
#[inline(always)]
fn fast_tanh_clamped_each<V: Lanes, const N: usize>(x: [V; N]) -> [V; N] {
    let (x, _, a, q) = tanh_rational_parts_each(x);
    let p = pairwise(a, x, |a, x| a * x);
    pairwise(p, q, |p, q| clamp_lanes_keeping_nan(p / q, -1.0, 1.0))
}

/// For every element, operation by operation across them: the clamped input `x`, `x^2`,
/// and the rational function's numerator polynomial `a(x^2)` (the numerator is `a x`) and
/// denominator `q(x^2)`, by [`tanh_rational`]'s operations.
#[inline(always)]
#[allow(clippy::type_complexity, reason = "four arrays of the same shape")]
fn tanh_rational_parts_each<V: Lanes, const N: usize>(
    v: [V; N],
) -> ([V; N], [V; N], [V; N], [V; N]) {
    let x = each(v, |v| clamp_lanes_keeping_nan(v, -TANH_CLAMP, TANH_CLAMP));
    let x2 = pairwise(x, x, |a, b| a * b);
    let (a, q) = tanh_rational_polynomials_each(x2);
    (x, x2, a, q)
}

/// The numerator polynomial `a(x^2)` and the denominator `q(x^2)` of [`tanh_rational`] for
/// every element, by its operations.
#[inline(always)]
#[allow(clippy::type_complexity, reason = "two arrays of the same shape")]
fn tanh_rational_polynomials_each<V: Lanes, const N: usize>(x2: [V; N]) -> ([V; N], [V; N]) {
    let mut a = each(x2, |x2| x2 * A13 + A11);
    for c in [A9, A7, A5, A3, A1] {
        a = pairwise(a, x2, |a, x2| a * x2 + c);
    }
    let mut q = each(x2, |x2| x2 * B6 + B4);
    for c in [B2, B0] {
        q = pairwise(q, x2, |q, x2| q * x2 + c);
    }
    (a, q)
}

/// `f(a_i)` for every element (a plain loop: `array::map` is not always inlined).
#[inline(always)]
pub(super) fn each<V: Copy, const N: usize>(mut a: [V; N], f: impl Fn(V) -> V) -> [V; N] {
    for o in a.iter_mut() {
        *o = f(*o);
    }
    a
}

/// `f(a_i, b_i)` for every element.
#[inline(always)]
pub(super) fn pairwise<V: Copy, const N: usize>(
    a: [V; N],
    b: [V; N],
    f: impl Fn(V, V) -> V,
) -> [V; N] {
    let mut out = a;
    for (o, b) in out.iter_mut().zip(b) {
        *o = f(*o, b);
    }
    out
}

/// [`fast_sigmoid`] of lane values: `fast_tanh(x / 2) / 2 + 1/2`, the same operations.
#[inline(always)]
fn fast_sigmoid_value<V: Lanes>(x: V) -> V {
    if V::WIDTH > 1 {
        return fast_tanh_clamped(x * 0.5) * 0.5 + 0.5;
    }
    // fast_tanh_value's branches, with `±1 / 2 + 1/2` beyond the clamp: exactly 1 for a
    // positive h, 0 for a negative one (the sign bit spread to a mask clears 1's bits).
    let h = x * 0.5;
    let h2 = h * h;
    if !h2.gt(V::splat(TANH_CLAMP_SQUARED)).any() {
        tanh_rational(h, h2) * 0.5 + 0.5
    } else {
        let negative = ((h.lane(0).to_bits() as i32) >> 31) as u32;
        V::splat(f32::from_bits(1.0f32.to_bits() & !negative))
    }
}

/// [`fast_tanh`] operation by operation over any scalar (exact derivatives at every level).
#[inline(always)]
fn fast_tanh_ops<T: Real>(x: T) -> T {
    let x = clamp_keeping_nan(x, -TANH_CLAMP, TANH_CLAMP);
    let x2 = x * x;
    let p = ((((((x2 * A13 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * x;
    let q = ((x2 * B6 + B4) * x2 + B2) * x2 + B0;
    let y = p / q;
    // Rounding can push the quotient a hair past 1 near the clamp; keep it bounded.
    clamp_keeping_nan(y, -1.0, 1.0)
}

/// [`fast_tanh`] of an `f32` (the same operations as [`fast_tanh_ops`], hence the same
/// bits) and the exact derivative of the approximation, `(p' q - p q') / q^2`, with the
/// clamps' derivative: 0 where a clamp is active, as the operation-by-operation rule gives
/// (and 0 for a NaN argument, whose value is NaN anyway).
///
/// One lane (the Cortex-M) branches as [`fast_tanh_value`] does: inside the clamp (`x^2 <=
/// TANH_CLAMP_SQUARED`) both clamps are the identity and the derivative is kept, so the
/// rational function and its derivative at once; beyond it `±1` and 0; NaN by the
/// clamped path. The same bits as the clamped path (tested), without its selects.
#[inline(always)]
fn fast_tanh_and_derivative<V: Lanes>(v: V) -> (V, V) {
    if V::WIDTH == 1 {
        let x2 = v * v;
        let c2 = V::splat(TANH_CLAMP_SQUARED);
        if x2.le(c2).any() {
            let (a, q) = tanh_rational_polynomials_each([x2]);
            let ([y], [dy]) = fast_tanh_and_derivative_unclamped_each([v], [x2], a, q);
            return (y, dy);
        }
        if x2.gt(c2).any() {
            let sign = v.lane(0).to_bits() & 0x8000_0000;
            return (V::splat(f32::from_bits(sign | 1.0f32.to_bits())), V::ZERO);
        }
    }
    let ([y], [dy]) = fast_tanh_and_derivative_each([v]);
    (y, dy)
}

/// [`fast_tanh_and_derivative`] of every element, operation by operation across the
/// elements (as [`fast_tanh_clamped_each`]): the same operations per element.
#[inline(always)]
fn fast_tanh_and_derivative_each<V: Lanes, const N: usize>(v: [V; N]) -> ([V; N], [V; N]) {
    let (x, x2, a, q) = tanh_rational_parts_each(v);
    let (mut out, mut dy) = fast_tanh_and_derivative_unclamped_each(x, x2, a, q);
    for ((o, d), &vi) in out.iter_mut().zip(dy.iter_mut()).zip(&v) {
        let inside = vi
            .ge(V::splat(-TANH_CLAMP))
            .and(vi.le(V::splat(TANH_CLAMP)));
        let passes = inside.and(o.ge(V::splat(-1.0))).and(o.le(V::ONE));
        *d = V::select(passes, *d, V::ZERO);
        *o = clamp_lanes_keeping_nan(*o, -1.0, 1.0);
    }
    (out, dy)
}

/// The rational function `y = x a(x^2) / q(x^2)` and its derivative `(p' q - p q') / q^2`
/// for every element, from the (clamped) inputs `x`, `x2 = x^2` and the polynomials `a`,
/// `q`: neither the output's clamp nor the clamps' zero derivative.
#[inline(always)]
#[allow(clippy::type_complexity, reason = "two arrays of the same shape")]
fn fast_tanh_and_derivative_unclamped_each<V: Lanes, const N: usize>(
    x: [V; N],
    x2: [V; N],
    a: [V; N],
    q: [V; N],
) -> ([V; N], [V; N]) {
    let p = pairwise(a, x, |a, x| a * x);
    let y = pairwise(p, q, |p, q| p / q);
    // p = x a(x^2), p' = a + 2 x^2 a'(x^2); q = b(x^2), q' = 2 x b'(x^2).
    let mut da = each(x2, |x2| x2 * (6.0 * A13) + 5.0 * A11);
    for c in [4.0 * A9, 3.0 * A7, 2.0 * A5] {
        da = pairwise(da, x2, |da, x2| da * x2 + c);
    }
    let da = pairwise(da, x2, |da, x2| da * x2 + A3);
    let db = each(x2, |x2| x2 * (3.0 * B6) + 2.0 * B4);
    let db = pairwise(db, x2, |db, x2| db * x2 + B2);
    let dp = pairwise(pairwise(x2, da, |x2, da| x2 * 2.0 * da), a, |t, a| a + t);
    let dq = pairwise(x, db, |x, db| x * 2.0 * db);
    let dy = pairwise(pairwise(y, dq, |y, dq| y * dq), dp, |ydq, dp| dp - ydq);
    (y, pairwise(dy, q, |n, q| n / q))
}

/// The logistic sigmoid as `0.5 + 0.5 * fast_tanh(x / 2)`: + - * / only, bit-identical on
/// every target, in `[0, 1]`, with `fast_sigmoid(-x) == 1 - fast_sigmoid(x)` up to one
/// rounding. Error at most [`FAST_SIGMOID_MAX_ERROR`].
///
/// ```
/// let y = tinysde::nn::fast_sigmoid(0.0f32);
/// assert_eq!(y, 0.5);
/// ```
#[inline(always)]
pub fn fast_sigmoid<T: Real>(x: T) -> T {
    if T::TANGENTS == 0 {
        // A scalar that is its value (`f32`, lanes) in one pass on the value.
        if let Some(r) = x.chain_first_order(fast_sigmoid_value(x.value()), Lanes::ZERO) {
            return r;
        }
    }
    fast_tanh(x * 0.5) * 0.5 + 0.5
}

/// [`fast_tanh`] of a scalar without parameter tangents: a scalar that is its value (`f32`,
/// lanes: `chain_first_order` gives the value back) on the value, with the early exit;
/// others ([`Directional`](crate::Directional) carries a derivative that is not a parameter
/// tangent) operation by operation.
#[inline(always)]
fn fast_tanh_without_tangents<T: Real>(x: T) -> T {
    match x.chain_first_order(fast_tanh_value(x.value()), Lanes::ZERO) {
        Some(r) => r,
        None => fast_tanh_ops(x),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `one_lane(x)` gives the bits of `clamped(x)`, value and derivative, at every 997th f32
    /// (both signs, subnormals, infinities) and at `clamp` and its neighbours of both signs;
    /// NaN gives NaN with derivative 0 on both paths.
    pub(crate) fn assert_one_lane_path_is_the_clamped_one(
        clamp: f32,
        one_lane: impl Fn(f32) -> (f32, f32),
        clamped: impl Fn(f32) -> (f32, f32),
    ) {
        let b = clamp.to_bits();
        let near = [clamp, f32::from_bits(b - 1), f32::from_bits(b + 1)];
        let specials = near.into_iter().chain(near.map(|x| -x)).chain([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        let sweep = (0..=u32::MAX / 997).map(|k| f32::from_bits(k * 997));
        for x in specials.chain(sweep) {
            let ((y, dy), (want_y, want_dy)) = (one_lane(x), clamped(x));
            if x.is_nan() {
                assert!(y.is_nan() && want_y.is_nan(), "{x}");
                assert_eq!((dy, want_dy), (0.0, 0.0), "{x}");
                continue;
            }
            assert_eq!(y.to_bits(), want_y.to_bits(), "value at {x}");
            assert_eq!(dy.to_bits(), want_dy.to_bits(), "derivative at {x}");
        }
    }

    #[test]
    fn the_one_lane_fast_tanh_derivative_path_gives_the_bits_of_the_clamped_one() {
        assert_one_lane_path_is_the_clamped_one(TANH_CLAMP, fast_tanh_and_derivative, |x| {
            let ([y], [dy]) = fast_tanh_and_derivative_each([x]);
            (y, dy)
        });
    }
}
