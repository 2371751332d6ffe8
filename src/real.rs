//! The scalar trait the whole crate is generic over.
//!
//! Layers, SDE right-hand sides and solvers are written once against [`Real`]. Run them on
//! `f32` and they compute values; run them on [`Dual<K>`](crate::Dual) and the same code
//! carries K parameter tangents, which is how tinysde differentiates a whole solve in
//! forward mode. [`Directional<T>`](crate::Directional) adds one more tangent on top of any
//! `Real` (the Milstein method uses it for the diffusion's derivative in the state).
//!
//! Every scalar stores its value in a [`Lanes`] type: `f32` for one trajectory, or
//! [`F32x<L>`](crate::lanes::F32x) for L trajectories computed together
//! (`Dual<K, F32x<8>>` carries K tangents of 8 trajectories). So the scalar has no
//! ordering and no single `f32` value: comparisons give lane masks ([`Real::lt`],
//! [`Real::gt`]) and [`Real::select`] picks lane by lane. Code written that way runs one
//! trajectory on a Cortex-M0 and sixteen per instruction on a host core, bit for bit alike.

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::dual::Dual;
use crate::lanes::{F32x, LaneMask, Lanes, Mask};

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
    /// The lane type of the value and of each tangent: `f32` or [`F32x<L>`](crate::lanes::F32x).
    type Value: Lanes;
    /// Number of parameter tangents this scalar carries (0 for `f32`).
    const TANGENTS: usize;
    /// Zero, with zero tangents.
    const ZERO: Self;
    /// One, with zero tangents.
    const ONE: Self;

    /// A constant: value `x` in every lane, zero tangents.
    fn cst(x: f32) -> Self;
    /// A constant with the lane values `v`, zero tangents.
    fn from_value(v: Self::Value) -> Self;
    /// The value, without tangents.
    fn value(self) -> Self::Value;
    /// Parameter tangent `k` (zero for tangents this scalar does not carry).
    fn tangent(self, k: usize) -> Self::Value;
    /// Adds `coeff` times the unit tangent of parameter `k`: after the call the scalar
    /// depends on that parameter with sensitivity `coeff`. A no-op for `f32` and for `k`
    /// out of range. This is how layers seed the derivative of their outputs with respect
    /// to their own weights.
    fn add_param_tangent(&mut self, k: usize, coeff: Self);
    /// `self` times the constant lane values `c` (a Brownian increment, say): the
    /// multiplication by an `f32` constant, lane by lane.
    fn scale(self, c: Self::Value) -> Self;
    /// `a` (with its tangents) in the lanes where `mask` is set, `b` elsewhere.
    fn select(mask: MaskOf<Self>, a: Self, b: Self) -> Self;

    /// Lane-wise `self < other`, by value (false where either is NaN).
    #[inline]
    fn lt(self, other: Self) -> MaskOf<Self> {
        self.value().lt(other.value())
    }
    /// Lane-wise `self > other`, by value (false where either is NaN).
    #[inline]
    fn gt(self, other: Self) -> MaskOf<Self> {
        self.value().gt(other.value())
    }

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
    #[inline]
    fn abs(self) -> Self {
        let v = self.value();
        let zero = <Self::Value as Lanes>::ZERO;
        let non_negative = Self::select(v.eq_lanes(zero), Self::ZERO, self);
        Self::select(v.lt(zero), -self, non_negative)
    }
    /// The larger of two values (by value; on a tie `self`, with its tangents). If either
    /// value is NaN the result is that NaN operand (`self` first): NaN propagates, unlike
    /// `f32::max`, so a blow-up is never hidden.
    #[inline]
    fn max(self, other: Self) -> Self {
        let (a, b) = (self.value(), other.value());
        let take_other = a.is_nan().not().and(b.is_nan().or(b.gt(a)));
        Self::select(take_other, other, self)
    }
    /// The smaller of two values (by value; on a tie `self`, with its tangents). NaN
    /// propagates as in [`max`](Real::max).
    #[inline]
    fn min(self, other: Self) -> Self {
        let (a, b) = (self.value(), other.value());
        let take_other = a.is_nan().not().and(b.is_nan().or(b.lt(a)));
        Self::select(take_other, other, self)
    }
    /// Lane-wise: whether the value and every tangent are finite.
    fn is_finite(self) -> MaskOf<Self>;

    /// `f(self)` by one application of the chain rule, for a scalar function whose value
    /// `fv` and derivative `dv` at `self.value()` the caller computed on the lane values;
    /// `None` when this scalar carries more than first-order parameter tangents (as
    /// [`Directional`](crate::Directional) does), and the caller must then evaluate `f`
    /// operation by operation. Fast activations use it: scaling the K tangents once is
    /// much cheaper than carrying them through every operation of a rational function.
    #[inline]
    fn chain_first_order(self, fv: Self::Value, dv: Self::Value) -> Option<Self> {
        let _ = (fv, dv);
        None
    }
}

/// A scalar that carries values only, no tangents: `f32` for one trajectory, or
/// [`F32x<L>`](crate::lanes::F32x) for L trajectories at once, lane by lane with the same
/// bits. Reverse mode ([`Backward`](crate::nn::Backward),
/// [`SdeVjp`](crate::sde::SdeVjp), [`StepVjp`](crate::solve::StepVjp)) runs on it.
///
/// It is both [`Real`] and [`Lanes`]; the items they share (`ZERO`, `sqrt`, `abs`, …) are
/// named through one of them in generic code: `<T as Real>::ZERO`, `Real::sqrt(x)`.
///
/// ```
/// use tinysde::{F32x, PlainReal, Real};
/// fn square<T: PlainReal>(x: T) -> T { x * x }
/// assert_eq!(square(3.0f32), 9.0);
/// assert_eq!(square(F32x([1.0, 2.0])), F32x([1.0, 4.0]));
/// ```
pub trait PlainReal: Real<Value = Self> + Lanes {}

impl PlainReal for f32 {}

impl<const L: usize> PlainReal for F32x<L> {}

/// The lane mask type of the scalar `T`.
pub type MaskOf<T> = <<T as Real>::Value as Lanes>::Mask;

impl Real for f32 {
    type Value = f32;
    const TANGENTS: usize = 0;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;

    #[inline]
    fn cst(x: f32) -> Self {
        x
    }
    #[inline]
    fn from_value(v: f32) -> Self {
        v
    }
    #[inline]
    fn value(self) -> f32 {
        self
    }
    #[inline]
    fn tangent(self, _k: usize) -> f32 {
        0.0
    }
    #[inline]
    fn add_param_tangent(&mut self, _k: usize, _coeff: Self) {}
    #[inline]
    fn scale(self, c: f32) -> Self {
        self * c
    }
    #[inline]
    fn select(mask: bool, a: Self, b: Self) -> Self {
        if mask {
            a
        } else {
            b
        }
    }
    #[inline]
    fn sqrt(self) -> Self {
        Lanes::sqrt(self)
    }
    #[inline]
    fn exp(self) -> Self {
        Lanes::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        Lanes::ln(self)
    }
    #[inline]
    fn tanh(self) -> Self {
        Lanes::tanh(self)
    }
    #[inline]
    fn sigmoid(self) -> Self {
        Lanes::sigmoid(self)
    }
    #[inline]
    fn sin(self) -> Self {
        Lanes::sin(self)
    }
    #[inline]
    fn cos(self) -> Self {
        Lanes::cos(self)
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        Lanes::powi(self, n)
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

impl<const L: usize> Real for F32x<L> {
    type Value = Self;
    const TANGENTS: usize = 0;
    const ZERO: Self = <Self as Lanes>::ZERO;
    const ONE: Self = <Self as Lanes>::ONE;

    #[inline(always)]
    fn cst(x: f32) -> Self {
        Self::splat(x)
    }
    #[inline(always)]
    fn from_value(v: Self) -> Self {
        v
    }
    #[inline(always)]
    fn value(self) -> Self {
        self
    }
    #[inline(always)]
    fn tangent(self, _k: usize) -> Self {
        <Self as Lanes>::ZERO
    }
    #[inline(always)]
    fn add_param_tangent(&mut self, _k: usize, _coeff: Self) {}
    #[inline(always)]
    fn scale(self, c: Self) -> Self {
        self * c
    }
    #[inline(always)]
    fn select(mask: LaneMask<L>, a: Self, b: Self) -> Self {
        Lanes::select(mask, a, b)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Lanes::sqrt(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        Lanes::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        Lanes::ln(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        Lanes::tanh(self)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Lanes::sigmoid(self)
    }
    #[inline(always)]
    fn sin(self) -> Self {
        Lanes::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        Lanes::cos(self)
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        Lanes::powi(self, n)
    }
    #[inline(always)]
    fn is_finite(self) -> LaneMask<L> {
        Lanes::is_finite(self)
    }
    #[inline(always)]
    fn chain_first_order(self, fv: Self, _dv: Self) -> Option<Self> {
        Some(fv)
    }
}

/// A one-lane scalar (`f32`, [`Dual<K>`]) and its `L`-lane form, which computes `L`
/// trajectories at once: `f32` widens to [`F32x<L>`], `Dual<K>` to `Dual<K, F32x<L>>`.
/// Lane `j` of a wide result is bit-identical to the one-lane computation on lane `j`'s
/// inputs. The ensembles use it to run trajectories as lanes.
pub trait Widen<const L: usize>: Real<Value = f32> {
    /// The `L`-lane form.
    type Wide: Real<Value = F32x<L>>;
    /// `self` in every lane.
    fn splat(self) -> Self::Wide;
    /// Lane `j` of `wide` as a one-lane scalar.
    fn extract(wide: &Self::Wide, j: usize) -> Self;
}

impl<const L: usize> Widen<L> for f32 {
    type Wide = F32x<L>;
    #[inline]
    fn splat(self) -> F32x<L> {
        F32x::splat(self)
    }
    #[inline]
    fn extract(wide: &F32x<L>, j: usize) -> Self {
        wide.lane(j)
    }
}

impl<const K: usize, const L: usize> Widen<L> for Dual<K, f32> {
    type Wide = Dual<K, F32x<L>>;
    #[inline]
    fn splat(self) -> Dual<K, F32x<L>> {
        Dual {
            v: F32x::splat(self.v),
            t: self.t.map(F32x::splat),
        }
    }
    #[inline]
    fn extract(wide: &Dual<K, F32x<L>>, j: usize) -> Self {
        Dual {
            v: wide.v.lane(j),
            t: wide.t.map(|t| t.lane(j)),
        }
    }
}
