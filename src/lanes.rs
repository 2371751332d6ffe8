//! Lane-wise values: `f32` (one lane) and [`F32x<L>`] (L lanes), the value types of the
//! crate's scalars.
//!
//! A [`Real`](crate::Real) scalar stores its value (and each tangent) as a [`Lanes`] value.
//! With `f32` it computes one trajectory; with `F32x<8>` the same code computes eight
//! trajectories at once, lane by lane. Every operation is the IEEE operation of `f32`
//! applied to each lane in turn (no fused multiply-add, no reassociation), so lane `j` of
//! an `F32x<L>` result has exactly the bits the one-lane computation gives: an ensemble run
//! eight lanes wide is bit-identical to the same ensemble run one trajectory at a time. The
//! operations are loops over fixed-size arrays, which the compiler turns into SIMD
//! instructions on stable Rust; on x86-64 each operation is spelled as the target's vector
//! instruction (SSE, AVX or AVX-512F, whichever the build enables), so that the compiler
//! cannot regroup lanes across operations.
//!
//! There is no ordering on lane values: comparisons return a [`Mask`] (one flag per lane)
//! and [`Lanes::select`] picks lane by lane.
//!
//! ```
//! use tinysde::lanes::{F32x, LaneMask, Lanes, Mask};
//! let x = F32x([-1.0, 2.0, f32::NAN, 4.0]);
//! let positive = x.gt(F32x::splat(0.0));
//! assert_eq!(positive, LaneMask::from_flags([false, true, false, true]));
//! let relu = F32x::select(positive, x, F32x::splat(0.0));
//! assert_eq!(relu.0[1], 2.0);
//! assert!(!x.is_finite().all());
//! ```

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::math;

#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    reason = "register reinterpretation of lane arrays; see the module"
)]
mod x86;

/// Trajectories per pass of the crate's own multi-trajectory paths (the threaded ensemble's
/// [`PARALLEL_LANES`](crate::solve::PARALLEL_LANES), reverse mode's
/// [`REVERSE_LANES`](crate::grad::reverse::REVERSE_LANES)): 16 where the build enables
/// AVX-512F and AVX-512DQ (one register per operation, selects on mask registers), else 8.
/// Results never depend on it: each lane is its trajectory's one-lane computation. Its
/// value depends on the build's target features, so generic code that names these lane
/// types in its bounds (`Widen<PARALLEL_LANES>`, `F32x<REVERSE_LANES>`) should write the
/// constant, not a number.
pub const WIDE_LANES: usize = if cfg!(all(target_feature = "avx512f", target_feature = "avx512dq"))
{
    16
} else {
    8
};

/// A lane-wise arithmetic operation of [`F32x`], named so that a target with vector
/// instructions can pick its instruction (src/lanes/x86.rs).
#[derive(Clone, Copy)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    /// `if a > b { a } else { b }` (`b` when either is NaN): x86's max.
    #[cfg(target_arch = "x86_64")]
    MaxOfFirst,
    /// `if a < b { a } else { b }` (`b` when either is NaN): x86's min.
    #[cfg(target_arch = "x86_64")]
    MinOfFirst,
}

/// A lane-wise comparison of [`F32x`] (ordered and quiet: false where either side is NaN,
/// as `f32`'s operators).
#[derive(Clone, Copy)]
enum Compare {
    Lt,
    Le,
    Eq,
}

/// One flag per lane: the result of a lane-wise comparison.
pub trait Mask: Copy + Debug + PartialEq {
    /// Whether every lane is set.
    fn all(self) -> bool;
    /// Whether any lane is set.
    fn any(self) -> bool;
    /// Lane-wise `and`.
    fn and(self, other: Self) -> Self;
    /// Lane-wise `or`.
    fn or(self, other: Self) -> Self;
    /// Lane-wise `not`.
    fn not(self) -> Self;
    /// The flag of lane `j` (`false` beyond the last lane).
    fn test(self, j: usize) -> bool;
}

impl Mask for bool {
    #[inline(always)]
    fn all(self) -> bool {
        self
    }
    #[inline(always)]
    fn any(self) -> bool {
        self
    }
    #[inline(always)]
    fn and(self, other: Self) -> Self {
        self & other
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        self | other
    }
    #[inline(always)]
    fn not(self) -> Self {
        !self
    }
    #[inline(always)]
    fn test(self, j: usize) -> bool {
        j == 0 && self
    }
}

/// The mask of [`F32x<L>`]: per lane all bits set (true) or all clear (false), the form
/// vector comparisons produce, so that selecting is three bitwise operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneMask<const L: usize>(pub [u32; L]);

impl<const L: usize> LaneMask<L> {
    /// A mask from one flag per lane.
    #[inline(always)]
    pub fn from_flags(flags: [bool; L]) -> Self {
        Self(flags.map(|b| if b { u32::MAX } else { 0 }))
    }
    /// Lane-wise `f`.
    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(u32, u32) -> u32) -> Self {
        let mut out = self.0;
        for j in 0..L {
            out[j] = f(out[j], other.0[j]);
        }
        Self(out)
    }
}

impl<const L: usize> Mask for LaneMask<L> {
    #[inline(always)]
    fn all(self) -> bool {
        self.0.iter().all(|&b| b != 0)
    }
    #[inline(always)]
    fn any(self) -> bool {
        self.0.iter().any(|&b| b != 0)
    }
    #[inline(always)]
    fn and(self, other: Self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(m) = x86::and(self.0, other.0) {
            return Self(m);
        }
        self.zip(other, |a, b| a & b)
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(m) = x86::or(self.0, other.0) {
            return Self(m);
        }
        self.zip(other, |a, b| a | b)
    }
    #[inline(always)]
    fn not(self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(m) = x86::xor(self.0, [u32::MAX; L]) {
            return Self(m);
        }
        Self(self.0.map(|b| !b))
    }
    #[inline(always)]
    fn test(self, j: usize) -> bool {
        self.0.get(j).is_some_and(|&b| b != 0)
    }
}

/// A lane-wise `f32` value: `f32` itself (one lane) or [`F32x<L>`].
///
/// Arithmetic with `Self` and with a plain `f32` constant (broadcast to every lane) is
/// available through the operator traits; the functions below are lane-wise too. Each
/// lane's result depends only on that lane of the operands and is computed by exactly the
/// operations the `f32` case uses.
pub trait Lanes:
    Copy
    + Debug
    + PartialEq
    + Send
    + Sync
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
    /// Number of lanes.
    const WIDTH: usize;
    /// One flag per lane.
    type Mask: Mask;
    /// Zero in every lane.
    const ZERO: Self;
    /// One in every lane.
    const ONE: Self;

    /// `x` in every lane.
    fn splat(x: f32) -> Self;
    /// Lane `j` (0.0 beyond the last lane).
    fn lane(self, j: usize) -> f32;
    /// Sets lane `j` to `x` (a no-op beyond the last lane).
    fn set_lane(&mut self, j: usize, x: f32);

    /// Lane-wise `self < other` (false where either is NaN).
    fn lt(self, other: Self) -> Self::Mask;
    /// Lane-wise `self <= other` (false where either is NaN).
    fn le(self, other: Self) -> Self::Mask;
    /// Lane-wise `self > other` (false where either is NaN).
    #[inline(always)]
    fn gt(self, other: Self) -> Self::Mask {
        other.lt(self)
    }
    /// Lane-wise `self >= other` (false where either is NaN).
    #[inline(always)]
    fn ge(self, other: Self) -> Self::Mask {
        other.le(self)
    }
    /// Lane-wise `self == other` (false where either is NaN).
    fn eq_lanes(self, other: Self) -> Self::Mask;
    /// `a` in the lanes where `mask` is set, `b` elsewhere.
    fn select(mask: Self::Mask, a: Self, b: Self) -> Self;
    /// `lo` in the lanes where `self < lo`, `self` elsewhere (NaN stays NaN): exactly
    /// `select(self.lt(lo), lo, self)`, which is one max instruction on x86-64.
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        Self::select(self.lt(lo), lo, self)
    }
    /// `hi` in the lanes where `self > hi`, `self` elsewhere (NaN stays NaN): exactly
    /// `select(self.gt(hi), hi, self)`, which is one min instruction on x86-64.
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        Self::select(self.gt(hi), hi, self)
    }
    /// Lane-wise finiteness.
    fn is_finite(self) -> Self::Mask;
    /// Lane-wise NaN test.
    fn is_nan(self) -> Self::Mask;

    /// Absolute value (clears the sign bit; NaN stays NaN).
    fn abs(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Exponential.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Logistic sigmoid, without overflow for large `|x|`.
    fn sigmoid(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Integer power by repeated multiplication (as [`math::powi`]).
    fn powi(self, n: i32) -> Self;
}

impl Lanes for f32 {
    const WIDTH: usize = 1;
    type Mask = bool;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;

    #[inline(always)]
    fn splat(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn lane(self, j: usize) -> f32 {
        if j == 0 {
            self
        } else {
            0.0
        }
    }
    #[inline(always)]
    fn set_lane(&mut self, j: usize, x: f32) {
        if j == 0 {
            *self = x;
        }
    }
    #[inline(always)]
    fn lt(self, other: Self) -> bool {
        self < other
    }
    #[inline(always)]
    fn le(self, other: Self) -> bool {
        self <= other
    }
    #[inline(always)]
    fn eq_lanes(self, other: Self) -> bool {
        self == other
    }
    #[inline(always)]
    fn select(mask: bool, a: Self, b: Self) -> Self {
        if mask {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        math::sqrt(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        math::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        math::ln(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        math::tanh(self)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        if self >= 0.0 {
            1.0 / (1.0 + math::exp(-self))
        } else {
            let e = math::exp(self);
            e / (1.0 + e)
        }
    }
    #[inline(always)]
    fn sin(self) -> Self {
        math::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        math::cos(self)
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        math::powi(self, n)
    }
}

/// `L` values of `f32` computed together, one per lane (for the crate: one trajectory per
/// lane). See the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
pub struct F32x<const L: usize>(pub [f32; L]);

impl<const L: usize> Default for F32x<L> {
    fn default() -> Self {
        Self([0.0; L])
    }
}

impl<const L: usize> F32x<L> {
    /// `x` in every lane.
    #[inline(always)]
    pub const fn splat(x: f32) -> Self {
        Self([x; L])
    }
    /// Lane-wise `f`.
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> Self {
        let mut out = self.0;
        for j in 0..L {
            out[j] = f(out[j]);
        }
        Self(out)
    }
    /// Lane-wise `f(self, other)`.
    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut out = self.0;
        for j in 0..L {
            out[j] = f(out[j], other.0[j]);
        }
        Self(out)
    }
    /// Lane-wise `op`: the target's vector instructions where it has them, else lane by
    /// lane with `scalar` (the same IEEE operation).
    #[inline(always)]
    fn arith(self, op: Arith, other: Self, scalar: impl Fn(f32, f32) -> f32) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = x86::arith(op, self.0, other.0) {
            return Self(r);
        }
        let _ = op;
        self.zip(other, scalar)
    }
    /// Lane-wise comparison `cmp`, vector instructions where the target has them.
    #[inline(always)]
    fn compare(self, cmp: Compare, other: Self, scalar: impl Fn(f32, f32) -> bool) -> LaneMask<L> {
        #[cfg(target_arch = "x86_64")]
        if let Some(m) = x86::compare(cmp, self.0, other.0) {
            return LaneMask(m);
        }
        let _ = cmp;
        self.mask(other, scalar)
    }
    /// Lane-wise predicate.
    #[inline(always)]
    fn mask(self, other: Self, f: impl Fn(f32, f32) -> bool) -> LaneMask<L> {
        let mut out = [0u32; L];
        for j in 0..L {
            out[j] = if f(self.0[j], other.0[j]) {
                u32::MAX
            } else {
                0
            };
        }
        LaneMask(out)
    }
}

macro_rules! lane_ops {
    ($($tr:ident $m:ident $atr:ident $am:ident $op:tt $v:ident),*) => {$(
        impl<const L: usize> $tr for F32x<L> {
            type Output = Self;
            #[inline(always)]
            fn $m(self, o: Self) -> Self { self.arith(Arith::$v, o, |a, b| a $op b) }
        }
        impl<const L: usize> $tr<f32> for F32x<L> {
            type Output = Self;
            #[inline(always)]
            fn $m(self, c: f32) -> Self { self.arith(Arith::$v, Self::splat(c), |a, b| a $op b) }
        }
        impl<const L: usize> $atr for F32x<L> {
            #[inline(always)]
            fn $am(&mut self, o: Self) { *self = *self $op o; }
        }
    )*};
}
lane_ops!(
    Add add AddAssign add_assign + Add,
    Sub sub SubAssign sub_assign - Sub,
    Mul mul MulAssign mul_assign * Mul,
    Div div DivAssign div_assign / Div
);

impl<const L: usize> Neg for F32x<L> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        // Flipping the sign bit is what `-a` does to an f32 (NaN included).
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = x86::xor(self.0, [-0.0; L]) {
            return Self(r);
        }
        self.map(|a| -a)
    }
}

impl<const L: usize> Lanes for F32x<L> {
    const WIDTH: usize = L;
    type Mask = LaneMask<L>;
    const ZERO: Self = Self([0.0; L]);
    const ONE: Self = Self([1.0; L]);

    #[inline(always)]
    fn splat(x: f32) -> Self {
        Self([x; L])
    }
    #[inline(always)]
    fn lane(self, j: usize) -> f32 {
        self.0.get(j).copied().unwrap_or(0.0)
    }
    #[inline(always)]
    fn set_lane(&mut self, j: usize, x: f32) {
        if let Some(v) = self.0.get_mut(j) {
            *v = x;
        }
    }
    #[inline(always)]
    fn lt(self, other: Self) -> LaneMask<L> {
        self.compare(Compare::Lt, other, |a, b| a < b)
    }
    #[inline(always)]
    fn le(self, other: Self) -> LaneMask<L> {
        self.compare(Compare::Le, other, |a, b| a <= b)
    }
    #[inline(always)]
    fn eq_lanes(self, other: Self) -> LaneMask<L> {
        self.compare(Compare::Eq, other, |a, b| a == b)
    }
    #[inline(always)]
    fn select(mask: LaneMask<L>, a: Self, b: Self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = x86::select(mask.0, a.0, b.0) {
            return Self(r);
        }
        let mut out = b.0;
        for j in 0..L {
            out[j] = if mask.0[j] != 0 { a.0[j] } else { out[j] };
        }
        Self(out)
    }
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = x86::arith(Arith::MaxOfFirst, lo.0, self.0) {
            return Self(r);
        }
        Self::select(self.lt(lo), lo, self)
    }
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = x86::arith(Arith::MinOfFirst, hi.0, self.0) {
            return Self(r);
        }
        Self::select(self.gt(hi), hi, self)
    }
    #[inline(always)]
    fn is_finite(self) -> LaneMask<L> {
        // Finite: the exponent bits are not all ones.
        let mut out = [0u32; L];
        for j in 0..L {
            out[j] = if self.0[j].to_bits() & 0x7f80_0000 != 0x7f80_0000 {
                u32::MAX
            } else {
                0
            };
        }
        LaneMask(out)
    }
    #[inline(always)]
    fn is_nan(self) -> LaneMask<L> {
        self.mask(self, |a, b| a != b)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // Clearing the sign bit is what `f32::abs` does (NaN included).
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = x86::and_not([-0.0; L], self.0) {
            return Self(r);
        }
        self.map(f32::abs)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        self.map(math::sqrt)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        self.map(math::exp)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        self.map(math::ln)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        self.map(math::tanh)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        self.map(<f32 as Lanes>::sigmoid)
    }
    #[inline(always)]
    fn sin(self) -> Self {
        self.map(math::sin)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        self.map(math::cos)
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        self.map(|a| math::powi(a, n))
    }
}
