//! `Dual<K>`: an `f32` value with K tangents, the scalar of forward-mode sensitivity.

#![allow(clippy::suspicious_arithmetic_impl)] // derivative rules mix operators by nature

use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::math;
use crate::real::{sigmoid, Real};

/// A value with `K` tangents (directional derivatives), for forward-mode differentiation.
///
/// Each lane holds the derivative of the value with respect to one seeded input (a model
/// parameter, or a component of the initial state). Lanes never mix, so computing a
/// gradient 1, 4 or 8 lanes at a time gives the same bits.
///
/// ```
/// use tinysde::{Dual, Real};
/// let x = Dual::<2>::variable(3.0, 0);
/// let y = Dual::<2>::variable(2.0, 1);
/// let f = x * y + x.exp();
/// assert_eq!(f.tangent(1), 3.0); // df/dy = x
/// assert!((f.tangent(0) - (2.0 + Real::exp(3.0f32))).abs() < 1e-4); // df/dx = y + e^x
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dual<const K: usize> {
    /// The value.
    pub v: f32,
    /// The tangents, one per lane.
    pub t: [f32; K],
}

impl<const K: usize> Dual<K> {
    /// A constant (all tangents zero).
    #[inline]
    pub const fn constant(v: f32) -> Self {
        Self { v, t: [0.0; K] }
    }

    /// An independent variable: tangent 1 in `lane`, 0 elsewhere (a constant if `lane >= K`).
    #[inline]
    pub fn variable(v: f32, lane: usize) -> Self {
        let mut d = Self::constant(v);
        if let Some(t) = d.t.get_mut(lane) {
            *t = 1.0;
        }
        d
    }

    /// Applies a scalar function with value `fv` and derivative `dv` at `self.v` (chain rule).
    #[inline]
    fn chain(self, fv: f32, dv: f32) -> Self {
        let mut t = self.t;
        for ti in t.iter_mut() {
            *ti *= dv;
        }
        Self { v: fv, t }
    }
}

impl<const K: usize> Default for Dual<K> {
    fn default() -> Self {
        Self::constant(0.0)
    }
}

impl<const K: usize> PartialOrd for Dual<K> {
    /// Compares values only.
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        self.v.partial_cmp(&other.v)
    }
}

/// Lane-wise binary operation on tangents.
#[inline]
fn zip<const K: usize>(a: [f32; K], b: [f32; K], f: impl Fn(f32, f32) -> f32) -> [f32; K] {
    let mut out = a;
    for (o, bi) in out.iter_mut().zip(b) {
        *o = f(*o, bi);
    }
    out
}

impl<const K: usize> Add for Dual<K> {
    type Output = Self;
    #[inline]
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            t: zip(self.t, o.t, |a, b| a + b),
        }
    }
}

impl<const K: usize> Sub for Dual<K> {
    type Output = Self;
    #[inline]
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            t: zip(self.t, o.t, |a, b| a - b),
        }
    }
}

impl<const K: usize> Mul for Dual<K> {
    type Output = Self;
    #[inline]
    fn mul(self, o: Self) -> Self {
        let (a, b) = (self.v, o.v);
        Self {
            v: a * b,
            t: zip(self.t, o.t, |ta, tb| ta * b + a * tb),
        }
    }
}

impl<const K: usize> Div for Dual<K> {
    type Output = Self;
    #[inline]
    fn div(self, o: Self) -> Self {
        // (a/b)' = (a' - (a/b) b') / b
        let q = self.v / o.v;
        Self {
            v: q,
            t: zip(self.t, o.t, |ta, tb| (ta - q * tb) / o.v),
        }
    }
}

impl<const K: usize> Neg for Dual<K> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self {
            v: -self.v,
            t: self.t.map(|x| -x),
        }
    }
}

impl<const K: usize> Add<f32> for Dual<K> {
    type Output = Self;
    #[inline]
    fn add(self, c: f32) -> Self {
        Self {
            v: self.v + c,
            t: self.t,
        }
    }
}

impl<const K: usize> Sub<f32> for Dual<K> {
    type Output = Self;
    #[inline]
    fn sub(self, c: f32) -> Self {
        Self {
            v: self.v - c,
            t: self.t,
        }
    }
}

impl<const K: usize> Mul<f32> for Dual<K> {
    type Output = Self;
    #[inline]
    fn mul(self, c: f32) -> Self {
        Self {
            v: self.v * c,
            t: self.t.map(|x| x * c),
        }
    }
}

impl<const K: usize> Div<f32> for Dual<K> {
    type Output = Self;
    #[inline]
    fn div(self, c: f32) -> Self {
        Self {
            v: self.v / c,
            t: self.t.map(|x| x / c),
        }
    }
}

macro_rules! assign_ops {
    ($ty:ty; $($tr:ident $m:ident $op:tt),*) => {$(
        impl<const K: usize> $tr for $ty {
            #[inline]
            fn $m(&mut self, o: Self) { *self = *self $op o; }
        }
    )*};
}
assign_ops!(Dual<K>; AddAssign add_assign +, SubAssign sub_assign -, MulAssign mul_assign *, DivAssign div_assign /);

impl<const K: usize> Real for Dual<K> {
    const LANES: usize = K;
    const ZERO: Self = Self::constant(0.0);
    const ONE: Self = Self::constant(1.0);

    #[inline]
    fn cst(x: f32) -> Self {
        Self::constant(x)
    }
    #[inline]
    fn value(self) -> f32 {
        self.v
    }
    #[inline]
    fn tangent(self, lane: usize) -> f32 {
        self.t.get(lane).copied().unwrap_or(0.0)
    }
    #[inline]
    fn add_param_tangent(&mut self, lane: usize, coeff: Self) {
        if let Some(t) = self.t.get_mut(lane) {
            *t += coeff.v;
        }
    }
    #[inline]
    fn sqrt(self) -> Self {
        let s = math::sqrt(self.v);
        let d = if s > 0.0 { 0.5 / s } else { 0.0 };
        self.chain(s, d)
    }
    #[inline]
    fn exp(self) -> Self {
        let e = math::exp(self.v);
        self.chain(e, e)
    }
    #[inline]
    fn ln(self) -> Self {
        self.chain(math::ln(self.v), 1.0 / self.v)
    }
    #[inline]
    fn tanh(self) -> Self {
        let y = math::tanh(self.v);
        self.chain(y, 1.0 - y * y)
    }
    #[inline]
    fn sigmoid(self) -> Self {
        let s = sigmoid(self.v);
        self.chain(s, s * (1.0 - s))
    }
    #[inline]
    fn sin(self) -> Self {
        self.chain(math::sin(self.v), math::cos(self.v))
    }
    #[inline]
    fn cos(self) -> Self {
        self.chain(math::cos(self.v), -math::sin(self.v))
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        let d = if n == 0 {
            0.0
        } else {
            // n - 1 overflows for i32::MIN; then x^(n-1) = x^n / x (both are 0, 1 or inf).
            let below = match n.checked_sub(1) {
                Some(m) => math::powi(self.v, m),
                None => math::powi(self.v, n) / self.v,
            };
            n as f32 * below
        };
        self.chain(math::powi(self.v, n), d)
    }
    #[inline]
    fn is_finite(self) -> bool {
        self.v.is_finite() && self.t.iter().all(|t| t.is_finite())
    }
    #[inline]
    fn chain_first_order(self, fv: f32, dv: f32) -> Option<Self> {
        Some(self.chain(fv, dv))
    }
}
