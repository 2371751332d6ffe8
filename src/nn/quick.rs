//! [`QuickTanh`] and [`QuickSigmoid`]: tanh and the logistic function by a [5/6] rational
//! function, from + - * / only (no FMA, no math library), the same bits on every target.
//!
//! Both are `x P(x²) / Q(x²)` with `P` of degree 2 and `Q` monic of degree 3 in `x²`, the
//! input clamped first: 2 comparisons (min/max), 6 multiplications, 5 additions and one
//! division per value (the sigmoid one addition more), against 25 operations and a division
//! of [`FastTanh`](crate::nn::FastTanh)'s [13/6] function. The coefficients are a minimax fit
//! (Lawson's iteration on the linearised error) of tanh on `[0, 6]` whose error at the
//! clamp, where the function stays at its value at 6, is balanced against the error inside;
//! rounded to `f32`.
//!
//! The sigmoid is `1/2 + tanh(x / 2) / 2` with the halvings folded into its coefficients
//! (they are tanh's times powers of two) and its polynomials evaluated split around `s²`
//! rather than by Horner's scheme: `(p1 s + p0) + p2 s²` and `(q1 s + q0) + (s + q2) s²`,
//! where each last product goes into a sum computed just before: the same 6 multiplications
//! and 5 additions, but on the Cortex-M4F, whose multiply-accumulate overwrites its addend
//! (a Horner step with a constant addend costs a copy of the constant and a
//! multiply-accumulate), 9 instructions where Horner's scheme takes 10. So its values are
//! not exactly `0.5 + 0.5 * quick_tanh(0.5 * x)` (they differ in the last bits), and it
//! costs what tanh costs plus the addition of `1/2`.

use super::activation::{clamp_keeping_nan, clamp_lanes_keeping_nan, each, lanes_each, pairwise};
use super::Activation;
use crate::lanes::{Lanes, Mask};
use crate::real::Real;

/// Bound on the absolute error of [`quick_tanh`] against the exact tanh over every `f32`
/// input (measured exhaustively by `examples/activation_error.rs`: 8.23e-6, at x = 5.77).
pub const QUICK_TANH_MAX_ERROR: f32 = 9e-6;
/// Bound on the absolute error of the derivative [`QuickTanh`] gives forward and reverse
/// mode (the exact derivative of the approximation, zero beyond the clamp) against
/// `1 - tanh²(x)`, over every `f32` input (measured exhaustively: 3.65e-5, near 0).
pub const QUICK_TANH_DERIVATIVE_MAX_ERROR: f32 = 4e-5;
/// Bound on the absolute error of [`quick_sigmoid`] against the exact logistic function
/// over every `f32` input (measured exhaustively: 4.14e-6, at x = 6.57).
pub const QUICK_SIGMOID_MAX_ERROR: f32 = 4.5e-6;
/// Bound on the absolute error of [`QuickSigmoid`]'s derivative against `σ(x)(1 - σ(x))`
/// over every `f32` input (measured exhaustively: 9.12e-6, near 0).
pub const QUICK_SIGMOID_DERIVATIVE_MAX_ERROR: f32 = 1e-5;

/// One of the two functions: `offset + x p(s) / q(s)` with `s = x²`, `x` clamped to
/// `±clamp`.
struct Rational {
    /// Where the input is clamped; `clamp²` is exact in `f32`.
    clamp: f32,
    /// `clamp²`.
    clamp_squared: f32,
    /// `p(s) = p[0] + p[1] s + p[2] s²`.
    p: [f32; 3],
    /// `q(s) = q[0] + q[1] s + q[2] s² + s³`.
    q: [f32; 3],
    /// The numerator's derivative `(x p(s))' = p[0] + 3 p[1] s + 5 p[2] s²`.
    dp: [f32; 3],
    /// `q(s)' = x (dq[0] + dq[1] s + 6 s²)` with `dq = [2 q[1], 4 q[2]]`.
    dq: [f32; 2],
    /// Added to the quotient: 0 for tanh (not added: it would turn -0 into +0), 1/2 for
    /// the sigmoid.
    offset: Option<f32>,
    /// How the polynomials are evaluated: Horner's scheme (tanh), or split around `s²`
    /// (the sigmoid): `p(s) = (p1 s + p0) + p2 s²` and `q(s) = (q1 s + q0) + (s + q2) s²`,
    /// where each second addend's product goes into a fresh sum (one multiply-accumulate
    /// without copying a constant first on the Cortex-M4F): 9 operations instead of 10.
    split: bool,
}

// tanh(x) ≈ x p(x²) / q(x²) on [-6, 6].
const TANH_P: [f32; 3] = [18_711.158, 2_133.536_4, 27.459_911];
const TANH_Q: [f32; 3] = [18_711.838, 8_368.7, 324.077_36];

const TANH: Rational = Rational {
    clamp: 6.0,
    clamp_squared: 36.0,
    p: TANH_P,
    q: TANH_Q,
    dp: [TANH_P[0], 3.0 * TANH_P[1], 5.0 * TANH_P[2]],
    dq: [2.0 * TANH_Q[1], 4.0 * TANH_Q[2]],
    offset: None,
    split: false,
};

/// The sigmoid's coefficients: `σ(x) = 1/2 + (x/2) p(x²/4) / (2 q(x²/4))`; numerator and
/// denominator times 64 keep the denominator monic: `x (16 p0 + 4 p1 s + p2 s²)` over
/// `64 q0 + 16 q1 s + 4 q2 s² + s³` (exact scalings).
const SIGMOID_P: [f32; 3] = [16.0 * TANH_P[0], 4.0 * TANH_P[1], TANH_P[2]];
const SIGMOID_Q: [f32; 3] = [64.0 * TANH_Q[0], 16.0 * TANH_Q[1], 4.0 * TANH_Q[2]];

const SIGMOID: Rational = Rational {
    clamp: 12.0,
    clamp_squared: 144.0,
    p: SIGMOID_P,
    q: SIGMOID_Q,
    dp: [SIGMOID_P[0], 3.0 * SIGMOID_P[1], 5.0 * SIGMOID_P[2]],
    dq: [2.0 * SIGMOID_Q[1], 4.0 * SIGMOID_Q[2]],
    offset: Some(0.5),
    split: true,
};

/// `x p(s) / q(s)` by the operations every path uses (so `const` evaluation, lanes and
/// generic scalars give the same bits).
#[inline(always)]
fn quotient<T>(r: &Rational, x: T, s: T) -> T
where
    T: Copy
        + core::ops::Add<f32, Output = T>
        + core::ops::Mul<f32, Output = T>
        + core::ops::Mul<Output = T>
        + core::ops::Add<Output = T>
        + core::ops::Div<Output = T>,
{
    let [p0, p1, p2] = r.p;
    let [q0, q1, q2] = r.q;
    if r.split {
        let s2 = s * s;
        let num = (s * p1 + p0 + s2 * p2) * x;
        let den = s * q1 + q0 + (s + q2) * s2;
        return num / den;
    }
    let num = ((s * p2 + p1) * s + p0) * x;
    let den = ((s + q2) * s + q1) * s + q0;
    num / den
}

/// The quotient at `+clamp`, by [`quotient`]'s operations evaluated at compile time (IEEE
/// arithmetic, as at run time: tested).
const fn quotient_at_clamp(r: &Rational) -> f32 {
    let (x, [p0, p1, p2], [q0, q1, q2]) = (r.clamp, r.p, r.q);
    let s = x * x;
    if r.split {
        let s2 = s * s;
        let num = (s * p1 + p0 + s2 * p2) * x;
        let den = s * q1 + q0 + (s + q2) * s2;
        return num / den;
    }
    let num = ((s * p2 + p1) * s + p0) * x;
    let den = ((s + q2) * s + q1) * s + q0;
    num / den
}

/// The values at `+clamp` and `-clamp` (the function's values beyond them): the offset
/// plus the quotient at `±clamp`, which is exactly odd (`-x` flips the numerator's sign
/// only), as the run-time paths compute them.
#[cfg(test)]
const fn limits(r: &Rational) -> (f32, f32) {
    let y = quotient_at_clamp(r);
    match r.offset {
        Some(c) => (y + c, -y + c),
        None => (y, -y),
    }
}

/// `offset + y` (or `y`).
#[inline(always)]
fn offset<V: core::ops::Add<f32, Output = V>>(r: &Rational, y: V) -> V {
    match r.offset {
        Some(c) => y + c,
        None => y,
    }
}

/// The function of lane values without derivative. Several lanes: clamp, quotient, offset,
/// branch-free (it vectorizes). One lane (the Cortex-M): inside the clamp (`x² <= clamp²`,
/// which holds exactly when `|x| <= clamp`, and for NaN, which then passes through) the
/// quotient at once; beyond it the constant value at the clamp with the input's sign: one
/// comparison and a branch instead of four clamping selects.
#[inline(always)]
fn value<V: Lanes>(r: &Rational, x: V) -> V {
    if V::WIDTH > 1 {
        let [y] = values_each(r, [x]);
        return y;
    }
    let s = x * x;
    if !s.gt(V::splat(r.clamp_squared)).any() {
        offset(r, quotient(r, x, s))
    } else {
        // The quotient at the clamp with the input's sign (exactly odd), then the offset:
        // the limits' bits (`limits`), by integer operations on the sign bit rather than a
        // choice between two constants in memory.
        let q = quotient_at_clamp(r).to_bits() | (x.lane(0).to_bits() & 0x8000_0000);
        offset(r, V::splat(f32::from_bits(q)))
    }
}

/// The function of every element, operation by operation across the elements (a wide core
/// overlaps their dependency chains): clamp, quotient, offset.
#[inline(always)]
fn values_each<V: Lanes, const N: usize>(r: &Rational, v: [V; N]) -> [V; N] {
    let x = each(v, |v| clamp_lanes_keeping_nan(v, -r.clamp, r.clamp));
    let s = pairwise(x, x, |a, b| a * b);
    let (num, den) = parts_each(r, x, s);
    pairwise(num, den, |n, d| offset(r, n / d))
}

/// [`quotient`]'s numerator and denominator for every element, operation by operation.
#[inline(always)]
#[allow(clippy::type_complexity, reason = "two arrays of the same shape")]
fn parts_each<V: Lanes, const N: usize>(r: &Rational, x: [V; N], s: [V; N]) -> ([V; N], [V; N]) {
    let [p0, p1, p2] = r.p;
    let [q0, q1, q2] = r.q;
    if r.split {
        let s2 = pairwise(s, s, |a, b| a * b);
        let a = each(s, |s| s * p1 + p0);
        let a = pairwise(a, s2, |a, s2| a + s2 * p2);
        let num = pairwise(a, x, |a, x| a * x);
        let b = each(s, |s| s * q1 + q0);
        let c = each(s, |s| s + q2);
        let den = pairwise(b, pairwise(c, s2, |c, s2| c * s2), |b, c| b + c);
        return (num, den);
    }
    let a = each(s, |s| s * p2 + p1);
    let a = pairwise(a, s, |a, s| a * s + p0);
    let num = pairwise(a, x, |a, x| a * x);
    let b = each(s, |s| s + q2);
    let b = pairwise(b, s, |b, s| b * s + q1);
    let den = pairwise(b, s, |b, s| b * s + q0);
    (num, den)
}

/// The values and derivatives of every element, operation by operation across them: the
/// values as [`values_each`] (same operations), the derivative
/// `((x p)' - y q') / q` of the quotient `y` at the clamped input, 0 where the clamp is
/// active (`|x| > clamp`) and for NaN (whose value is NaN).
#[inline(always)]
#[allow(clippy::type_complexity, reason = "two arrays of the same shape")]
fn values_and_derivatives_each<V: Lanes, const N: usize>(
    r: &Rational,
    v: [V; N],
) -> ([V; N], [V; N]) {
    let x = each(v, |v| clamp_lanes_keeping_nan(v, -r.clamp, r.clamp));
    let s = pairwise(x, x, |a, b| a * b);
    let (y, mut dy) = unclamped_values_and_derivatives_each(r, x, s);
    for (d, &vi) in dy.iter_mut().zip(&v) {
        let inside = vi.ge(V::splat(-r.clamp)).and(vi.le(V::splat(r.clamp)));
        *d = V::select(inside, *d, V::ZERO);
    }
    (y, dy)
}

/// The value and derivative of one lane value (the Cortex-M's [`Dual`](crate::Dual) path):
/// inside the clamp (`x² <= clamp²`, exactly `|x| <= clamp`, where the clamp leaves `x` as
/// it is and the derivative is kept) [`unclamped_values_and_derivatives_each`] at once;
/// beyond it the constant value at the clamp with the input's sign and derivative 0; NaN
/// through [`values_and_derivatives_each`]. The bits of `values_and_derivatives_each`, with
/// one comparison and a branch instead of the clamp's and the mask's selects.
#[inline(always)]
fn value_and_derivative_one_lane<V: Lanes>(r: &Rational, x: V) -> (V, V) {
    let s = x * x;
    let c2 = V::splat(r.clamp_squared);
    if s.le(c2).any() {
        let ([y], [dy]) = unclamped_values_and_derivatives_each(r, [x], [s]);
        return (y, dy);
    }
    if s.gt(c2).any() {
        let q = quotient_at_clamp(r).to_bits() | (x.lane(0).to_bits() & 0x8000_0000);
        return (offset(r, V::splat(f32::from_bits(q))), V::ZERO);
    }
    let ([y], [dy]) = values_and_derivatives_each(r, [x]);
    (y, dy)
}

/// [`values_and_derivatives_each`] at inputs `x` already within the clamp, with `s = x²`:
/// the values (offset included) and the derivatives `((x p)' - y q') / q`, unmasked.
#[inline(always)]
#[allow(clippy::type_complexity, reason = "two arrays of the same shape")]
fn unclamped_values_and_derivatives_each<V: Lanes, const N: usize>(
    r: &Rational,
    x: [V; N],
    s: [V; N],
) -> ([V; N], [V; N]) {
    let (num, den) = parts_each(r, x, s);
    let y = pairwise(num, den, |n, d| n / d);
    let [d0, d1, d2] = r.dp;
    let [e1, e2] = r.dq;
    let dn = each(s, |s| s * d2 + d1);
    let dn = pairwise(dn, s, |a, s| a * s + d0);
    let dd = each(s, |s| s * 6.0 + e2);
    let dd = pairwise(dd, s, |a, s| a * s + e1);
    let dd = pairwise(dd, x, |a, x| a * x);
    let top = pairwise(dn, pairwise(y, dd, |y, d| y * d), |a, b| a - b);
    let dy = pairwise(top, den, |t, d| t / d);
    (each(y, |y| offset(r, y)), dy)
}

/// The function operation by operation on any scalar (exact derivatives of the
/// approximation at every order; the clamp's derivative is 0 where it is active).
#[inline(always)]
fn ops<T: Real>(r: &Rational, x: T) -> T {
    let x = clamp_keeping_nan(x, -r.clamp, r.clamp);
    let s = x * x;
    offset(r, quotient(r, x, s))
}

/// The function of one scalar: without tangents on its value ([`value`]); with parameter
/// tangents the value and derivative in lane values, the tangents scaled once; other
/// scalars ([`Directional`](crate::Directional)) operation by operation.
#[inline(always)]
fn apply<T: Real>(r: &Rational, x: T) -> T {
    if T::TANGENTS == 0 {
        return match x.chain_first_order(value(r, x.value()), Lanes::ZERO) {
            Some(y) => y,
            None => ops(r, x),
        };
    }
    let (y, dy) = if <T::Value as Lanes>::WIDTH == 1 {
        value_and_derivative_one_lane(r, x.value())
    } else {
        let ([y], [dy]) = values_and_derivatives_each(r, [x.value()]);
        (y, dy)
    };
    match x.chain_first_order(y, dy) {
        Some(out) => out,
        None => ops(r, x),
    }
}

/// The function of every element: lanes without tangents all elements operation by
/// operation; `Dual` on lanes the values and derivatives of all elements together, then
/// each element's tangents scaled once; one lane element by element (the Cortex-M keeps
/// its values in registers). Same results as [`apply`] element by element.
#[inline(always)]
fn apply_array<T: Real, const N: usize>(r: &Rational, x: &mut [T; N]) {
    if T::TANGENTS == 0 {
        if let Some(y) = lanes_each(
            x,
            #[inline(always)]
            |v| values_each(r, v),
        ) {
            *x = y;
            return;
        }
        for o in x.iter_mut() {
            *o = apply(r, *o);
        }
        return;
    }
    if <T::Value as Lanes>::WIDTH == 1 {
        for o in x.iter_mut() {
            *o = apply(r, *o);
        }
        return;
    }
    let mut v = [<T::Value as Lanes>::ZERO; N];
    for (vi, xi) in v.iter_mut().zip(x.iter()) {
        *vi = xi.value();
    }
    let (y, dy) = values_and_derivatives_each(r, v);
    for ((o, &yi), &di) in x.iter_mut().zip(&y).zip(&dy) {
        *o = match o.chain_first_order(yi, di) {
            Some(out) => out,
            None => ops(r, *o),
        };
    }
}

/// tanh by a [5/6] rational function of `x`, clamped to `±6`: 6 multiplications, 5
/// additions, one division and the clamp. The same bits on every target; exactly odd; in
/// `(-1, 1)` (beyond the clamp it stays at its value at 6, `1 - 7.9e-6`). Error at most
/// [`QUICK_TANH_MAX_ERROR`] over every `f32`. On `Dual` its derivative is the exact
/// derivative of the approximation (zero beyond the clamp), evaluated once per value in
/// `f32`, within [`QUICK_TANH_DERIVATIVE_MAX_ERROR`] of tanh's.
///
/// ```
/// let y = tinysde::nn::quick_tanh(0.5f32);
/// assert!((y - 0.5f32.tanh()).abs() < tinysde::nn::QUICK_TANH_MAX_ERROR);
/// assert_eq!(tinysde::nn::quick_tanh(-0.5f32), -y);
/// ```
#[inline(always)]
pub fn quick_tanh<T: Real>(x: T) -> T {
    apply(&TANH, x)
}

/// The logistic sigmoid `1 / (1 + e^-x)` as `1/2 + tanh(x/2) / 2` with [`quick_tanh`]'s
/// rational function, the halvings folded into the coefficients and the polynomials
/// evaluated split around `x⁴` (where the Cortex-M4F needs fewer instructions), clamped to `±12`: what
/// `quick_tanh` costs plus one addition. In `(0, 1)` (beyond the clamp it stays at its
/// values at `±12`, `1 - 4e-6` and `4e-6`); error at most [`QUICK_SIGMOID_MAX_ERROR`]; on
/// `Dual` the exact derivative of the approximation, within
/// [`QUICK_SIGMOID_DERIVATIVE_MAX_ERROR`].
///
/// ```
/// use tinysde::nn::{quick_sigmoid, QUICK_SIGMOID_MAX_ERROR};
/// assert_eq!(quick_sigmoid(0.0f32), 0.5);
/// let exact = 1.0 / (1.0 + (-3.0f64).exp());
/// assert!((f64::from(quick_sigmoid(3.0f32)) - exact).abs() < f64::from(QUICK_SIGMOID_MAX_ERROR));
/// ```
#[inline(always)]
pub fn quick_sigmoid<T: Real>(x: T) -> T {
    apply(&SIGMOID, x)
}

/// [`quick_tanh`] as a layer activation, recorded as `quick_tanh` in weights files.
///
/// ```
/// use tinysde::nn::{Activation, QuickTanh};
/// assert_eq!(QuickTanh::NAME, "quick_tanh");
/// assert_eq!(QuickTanh::apply(0.25f32), tinysde::nn::quick_tanh(0.25f32));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuickTanh;

impl Activation for QuickTanh {
    const NAME: &'static str = "quick_tanh";
    #[inline(always)]
    fn apply<T: Real>(x: T) -> T {
        apply(&TANH, x)
    }
    #[inline(always)]
    fn apply_array<T: Real, const N: usize>(x: &mut [T; N]) {
        apply_array(&TANH, x)
    }
}

/// [`quick_sigmoid`] as a layer activation, recorded as `quick_sigmoid` in weights files.
///
/// ```
/// use tinysde::nn::{Activation, QuickSigmoid};
/// assert_eq!(QuickSigmoid::NAME, "quick_sigmoid");
/// assert_eq!(QuickSigmoid::apply(0.0f32), 0.5);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuickSigmoid;

impl Activation for QuickSigmoid {
    const NAME: &'static str = "quick_sigmoid";
    #[inline(always)]
    fn apply<T: Real>(x: T) -> T {
        apply(&SIGMOID, x)
    }
    #[inline(always)]
    fn apply_array<T: Real, const N: usize>(x: &mut [T; N]) {
        apply_array(&SIGMOID, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_limits_are_the_run_time_values_at_and_beyond_the_clamp() {
        for (r, (up, down)) in [(&TANH, limits(&TANH)), (&SIGMOID, limits(&SIGMOID))] {
            let lanes = |x: f32| {
                let [y] = values_each(r, [x]);
                y
            };
            assert_eq!(lanes(r.clamp).to_bits(), up.to_bits());
            assert_eq!(lanes(-r.clamp).to_bits(), down.to_bits());
            assert_eq!(r.clamp * r.clamp, r.clamp_squared);
            // |x| > clamp exactly when fl(x²) > clamp²: at the next float above the clamp.
            let next = f32::from_bits(r.clamp.to_bits() + 1);
            assert!(next * next > r.clamp_squared);
            // One lane (its early exit) and several lanes (clamp, quotient) agree there.
            for x in [r.clamp, next, 100.0, f32::MAX, f32::INFINITY] {
                for x in [x, -x] {
                    assert_eq!(value(r, x).to_bits(), lanes(x).to_bits(), "{x}");
                }
            }
        }
    }

    #[test]
    fn the_one_lane_derivative_path_gives_the_bits_of_the_clamped_one() {
        for r in [&TANH, &SIGMOID] {
            crate::nn::activation::tests::assert_one_lane_path_is_the_clamped_one(
                r.clamp,
                |x| value_and_derivative_one_lane(r, x),
                |x| {
                    let ([y], [dy]) = values_and_derivatives_each(r, [x]);
                    (y, dy)
                },
            );
        }
    }
}
