//! The scalar trait the whole crate is generic over.
//!
//! Layers, SDE right-hand sides and solvers are written once against [`Real`]. Run them on
//! `f32` and they compute values; run them on [`Dual<K>`](crate::Dual) and the same code
//! carries K parameter tangents, which is how tinysde differentiates a whole solve in
//! forward mode. [`Directional<T>`](crate::Directional) adds one more tangent on top of any
//! `Real` (the Milstein method uses it for the diffusion's derivative in the state).

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::math;

/// A scalar: `f32`, or `f32` with tangents for forward-mode differentiation.
///
/// Arithmetic with another `Real` or with a plain `f32` constant (`x * 0.5`) is available
/// through the operator traits. Comparisons look at the value only. Derivative rules are
/// exact; where a derivative does not exist the rule used is stated on the method.
///
/// Implementations must keep tangent lanes independent: lane `j` of a result depends only
/// on lane `j` of the operands and on values. That makes gradients bit-identical whatever
/// the number of lanes computed at once.
///
/// ```
/// use tinysde::{Dual, Real};
/// // d/dx tanh(x^3) at x = 0.5, in lane 0
/// let x = Dual::<1>::variable(0.5, 0);
/// let y = x.powi(3).tanh();
/// let exact = 3.0 * 0.25 * (1.0 - Real::tanh(0.125f32).powi(2));
/// assert!((y.tangent(0) - exact).abs() < 1e-6);
/// ```
pub trait Real:
    Copy
    + Debug
    + PartialEq
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f32, Output = Self>
    + Sub<f32, Output = Self>
    + Mul<f32, Output = Self>
    + Div<f32, Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// Number of parameter tangent lanes this scalar carries (0 for `f32`).
    const LANES: usize;
    /// Zero, with zero tangents.
    const ZERO: Self;
    /// One, with zero tangents.
    const ONE: Self;

    /// A constant: value `x`, zero tangents.
    fn cst(x: f32) -> Self;
    /// The value, without tangents.
    fn value(self) -> f32;
    /// Parameter tangent in `lane` (0.0 for lanes this scalar does not carry).
    fn tangent(self, lane: usize) -> f32;
    /// Adds `coeff` times the unit tangent of parameter lane `lane`: after the call the
    /// scalar depends on that parameter with sensitivity `coeff`. A no-op for `f32` and
    /// for lanes out of range. This is how layers seed the derivative of their outputs with
    /// respect to their own weights.
    fn add_param_tangent(&mut self, lane: usize, coeff: Self);

    /// Square root. At 0 the derivative is infinite; the tangent is defined as 0 there so
    /// that a zero noise scale does not poison a gradient with NaN.
    fn sqrt(self) -> Self;
    /// Exponential.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    fn sigmoid(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Integer power by repeated multiplication. The derivative is `n x^(n-1)`, and 0 for `n = 0`.
    fn powi(self, n: i32) -> Self;
    /// Absolute value; the derivative at 0 is taken as 0. NaN stays NaN (with its
    /// tangents), so a blow-up is never hidden from the divergence checks.
    fn abs(self) -> Self {
        if self.value() < 0.0 {
            -self
        } else if self.value() == 0.0 {
            Self::ZERO
        } else {
            self
        }
    }
    /// The larger of two values (by value; on a tie `self`, with its tangents). If either
    /// value is NaN the result is that NaN operand (`self` first): NaN propagates, unlike
    /// `f32::max`, so a blow-up is never hidden.
    fn max(self, other: Self) -> Self {
        if self.value().is_nan() {
            self
        } else if other.value().is_nan() || other.value() > self.value() {
            other
        } else {
            self
        }
    }
    /// The smaller of two values (by value; on a tie `self`, with its tangents). NaN
    /// propagates as in [`max`](Real::max).
    fn min(self, other: Self) -> Self {
        if self.value().is_nan() {
            self
        } else if other.value().is_nan() || other.value() < self.value() {
            other
        } else {
            self
        }
    }
    /// Whether the value and every tangent are finite.
    fn is_finite(self) -> bool;

    /// `f(self)` by one application of the chain rule, for a scalar function whose value
    /// `fv` and derivative `dv` at `self.value()` the caller computed in `f32`; `None` when
    /// this scalar carries more than first-order parameter tangents (as
    /// [`Directional`](crate::Directional) does), and the caller must then evaluate `f`
    /// operation by operation. Fast activations use it: scaling the K tangent lanes once is
    /// much cheaper than carrying them through every operation of a rational function.
    #[inline]
    fn chain_first_order(self, fv: f32, dv: f32) -> Option<Self> {
        let _ = (fv, dv);
        None
    }
}

impl Real for f32 {
    const LANES: usize = 0;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;

    #[inline]
    fn cst(x: f32) -> Self {
        x
    }
    #[inline]
    fn value(self) -> f32 {
        self
    }
    #[inline]
    fn tangent(self, _lane: usize) -> f32 {
        0.0
    }
    #[inline]
    fn add_param_tangent(&mut self, _lane: usize, _coeff: Self) {}
    #[inline]
    fn sqrt(self) -> Self {
        math::sqrt(self)
    }
    #[inline]
    fn exp(self) -> Self {
        math::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        math::ln(self)
    }
    #[inline]
    fn tanh(self) -> Self {
        math::tanh(self)
    }
    #[inline]
    fn sigmoid(self) -> Self {
        sigmoid(self)
    }
    #[inline]
    fn sin(self) -> Self {
        math::sin(self)
    }
    #[inline]
    fn cos(self) -> Self {
        math::cos(self)
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        math::powi(self, n)
    }
    #[inline]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline]
    fn chain_first_order(self, fv: f32, _dv: f32) -> Option<Self> {
        Some(fv)
    }
}

/// The logistic sigmoid of an `f32`, computed without overflow for large `|x|`.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + math::exp(-x))
    } else {
        let e = math::exp(x);
        e / (1.0 + e)
    }
}
