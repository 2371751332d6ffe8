//! `Dual<K, V>`: a value with K tangents, the scalar of forward-mode sensitivity.

#![allow(clippy::suspicious_arithmetic_impl)] // derivative rules mix operators by nature

use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::lanes::{Lanes, Mask};
use crate::real::Real;

/// A value with `K` tangents (directional derivatives), for forward-mode differentiation.
///
/// The value and each tangent are of the lane type `V`: `f32` (the default) for one
/// trajectory, [`F32x<L>`](crate::lanes::F32x) for L trajectories at once. Each tangent
/// holds the derivative of the value with respect to one seeded input (a model parameter,
/// or a component of the initial state). Tangents never mix, so computing a
/// gradient 1, 4 or 8 tangents at a time gives the same bits.
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
pub struct Dual<const K: usize, V = f32> {
    /// The value.
    pub v: V,
    /// The tangents, one per parameter lane.
    pub t: [V; K],
}

impl<const K: usize, V: Lanes> Dual<K, V> {
    /// A constant (all tangents zero).
    #[inline]
    pub const fn constant(v: V) -> Self {
        Self { v, t: [V::ZERO; K] }
    }

    /// An independent variable: tangent 1 in `lane`, 0 elsewhere (a constant if `lane >= K`).
    #[inline]
    pub fn variable(v: V, lane: usize) -> Self {
        let mut d = Self::constant(v);
        if let Some(t) = d.t.get_mut(lane) {
            *t = V::ONE;
        }
        d
    }

    /// Applies a scalar function with value `fv` and derivative `dv` at `self.v` (chain rule).
    #[inline]
    fn chain(self, fv: V, dv: V) -> Self {
        let mut t = self.t;
        for ti in t.iter_mut() {
            *ti *= dv;
        }
        Self { v: fv, t }
    }
}

impl<const K: usize, V: Lanes> Default for Dual<K, V> {
    fn default() -> Self {
        Self::constant(V::ZERO)
    }
}

/// Lane-wise binary operation on tangents.
#[inline]
fn zip<const K: usize, V: Copy>(a: [V; K], b: [V; K], f: impl Fn(V, V) -> V) -> [V; K] {
    let mut out = a;
    for (o, bi) in out.iter_mut().zip(b) {
        *o = f(*o, bi);
    }
    out
}

impl<const K: usize, V: Lanes> Add for Dual<K, V> {
    type Output = Self;
    #[inline]
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            t: zip(self.t, o.t, |a, b| a + b),
        }
    }
}

impl<const K: usize, V: Lanes> Sub for Dual<K, V> {
    type Output = Self;
    #[inline]
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            t: zip(self.t, o.t, |a, b| a - b),
        }
    }
}

impl<const K: usize, V: Lanes> Mul for Dual<K, V> {
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

impl<const K: usize, V: Lanes> Div for Dual<K, V> {
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

impl<const K: usize, V: Lanes> Neg for Dual<K, V> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self {
            v: -self.v,
            t: self.t.map(|x| -x),
        }
    }
}

impl<const K: usize, V: Lanes> Add<f32> for Dual<K, V> {
    type Output = Self;
    #[inline]
    fn add(self, c: f32) -> Self {
        Self {
            v: self.v + c,
            t: self.t,
        }
    }
}

impl<const K: usize, V: Lanes> Sub<f32> for Dual<K, V> {
    type Output = Self;
    #[inline]
    fn sub(self, c: f32) -> Self {
        Self {
            v: self.v - c,
            t: self.t,
        }
    }
}

impl<const K: usize, V: Lanes> Mul<f32> for Dual<K, V> {
    type Output = Self;
    #[inline]
    fn mul(self, c: f32) -> Self {
        Self {
            v: self.v * c,
            t: self.t.map(|x| x * c),
        }
    }
}

impl<const K: usize, V: Lanes> Div<f32> for Dual<K, V> {
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
    ($($tr:ident $m:ident $op:tt),*) => {$(
        impl<const K: usize, V: Lanes> $tr for Dual<K, V> {
            #[inline]
            fn $m(&mut self, o: Self) { *self = *self $op o; }
        }
    )*};
}
assign_ops!(AddAssign add_assign +, SubAssign sub_assign -, MulAssign mul_assign *, DivAssign div_assign /);

impl<const K: usize, V: Lanes> Real for Dual<K, V> {
    type Value = V;
    const TANGENTS: usize = K;
    const ZERO: Self = Self::constant(V::ZERO);
    const ONE: Self = Self::constant(V::ONE);

    #[inline]
    fn cst(x: f32) -> Self {
        Self::constant(V::splat(x))
    }
    #[inline]
    fn from_value(v: V) -> Self {
        Self::constant(v)
    }
    #[inline]
    fn value(self) -> V {
        self.v
    }
    #[inline]
    fn tangent(self, lane: usize) -> V {
        self.t.get(lane).copied().unwrap_or(V::ZERO)
    }
    #[inline]
    fn add_param_tangent(&mut self, lane: usize, coeff: Self) {
        if let Some(t) = self.t.get_mut(lane) {
            *t += coeff.v;
        }
    }
    #[inline]
    fn scale(self, c: V) -> Self {
        Self {
            v: self.v * c,
            t: self.t.map(|x| x * c),
        }
    }
    #[inline]
    fn select(mask: V::Mask, a: Self, b: Self) -> Self {
        Self {
            v: V::select(mask, a.v, b.v),
            t: zip(a.t, b.t, |x, y| V::select(mask, x, y)),
        }
    }
    #[inline]
    fn sqrt(self) -> Self {
        let s = self.v.sqrt();
        let d = V::select(s.gt(V::ZERO), V::splat(0.5) / s, V::ZERO);
        self.chain(s, d)
    }
    #[inline]
    fn exp(self) -> Self {
        let e = self.v.exp();
        self.chain(e, e)
    }
    #[inline]
    fn ln(self) -> Self {
        self.chain(self.v.ln(), V::ONE / self.v)
    }
    #[inline]
    fn tanh(self) -> Self {
        let y = self.v.tanh();
        self.chain(y, V::ONE - y * y)
    }
    #[inline]
    fn sigmoid(self) -> Self {
        let s = self.v.sigmoid();
        self.chain(s, s * (V::ONE - s))
    }
    #[inline]
    fn sin(self) -> Self {
        self.chain(self.v.sin(), self.v.cos())
    }
    #[inline]
    fn cos(self) -> Self {
        self.chain(self.v.cos(), -self.v.sin())
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        let d = if n == 0 {
            V::ZERO
        } else {
            // n - 1 overflows for i32::MIN; then x^(n-1) = x^n / x (both are 0, 1 or inf).
            let below = match n.checked_sub(1) {
                Some(m) => self.v.powi(m),
                None => self.v.powi(n) / self.v,
            };
            below * n as f32
        };
        self.chain(self.v.powi(n), d)
    }
    #[inline]
    fn is_finite(self) -> V::Mask {
        self.t
            .iter()
            .fold(self.v.is_finite(), |m, t| m.and(t.is_finite()))
    }
    #[inline]
    fn chain_first_order(self, fv: V, dv: V) -> Option<Self> {
        Some(self.chain(fv, dv))
    }
}
