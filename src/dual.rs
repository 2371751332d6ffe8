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

impl<const K: usize, V: Lanes> Dual<K, V> {
    /// The tangents mapped by `f`.
    #[inline]
    fn map_t(self, f: impl Fn(V) -> V) -> [V; K] {
        self.t.map(f)
    }

    /// The tangents of `self` and `o` combined by `f`.
    #[inline]
    fn zip_t(self, o: Self, f: impl Fn(V, V) -> V) -> [V; K] {
        zip(self.t, o.t, f)
    }
}

forward_mode_arithmetic!([const K: usize, V: Lanes] Dual<K, V>, t);

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
    chain_rule_functions!(V);
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

/// The elementary functions of a forward-mode number by the chain rule, from its
/// `chain(value, derivative)` (the value and the tangents times `derivative`): `exp`, `ln`,
/// `tanh`, `sigmoid`, `sin`, `cos` and `powi` of [`Dual`] and
/// [`Directional`](crate::directional::Directional), written once. `$s` names the value's
/// scalar type.
macro_rules! chain_rule_functions {
    ($s:ident) => {
        #[inline]
        fn exp(self) -> Self {
            let e = self.v.exp();
            self.chain(e, e)
        }
        #[inline]
        fn ln(self) -> Self {
            self.chain(self.v.ln(), $s::ONE / self.v)
        }
        #[inline]
        fn tanh(self) -> Self {
            let y = self.v.tanh();
            self.chain(y, $s::ONE - y * y)
        }
        #[inline]
        fn sigmoid(self) -> Self {
            let s = self.v.sigmoid();
            self.chain(s, s * ($s::ONE - s))
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
                $s::ZERO
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
    };
}
pub(crate) use chain_rule_functions;

/// `+ - * /` and negation of a forward-mode number (with another or with an `f32`
/// constant) and the compound assignments, for [`Dual`] and
/// [`Directional`](crate::directional::Directional), written once: the value by the
/// operation, the tangents by its derivative (`(a b)' = a' b + a b'`,
/// `(a / b)' = (a' - (a / b) b') / b`; a constant shifts the value or scales both). `$t`
/// names the tangent field; the type provides `map_t(f)` and `zip_t(o, f)` over it.
macro_rules! forward_mode_arithmetic {
    ([$($gen:tt)*] $ty:ty, $t:ident) => {
        forward_mode_arithmetic!(@binary [$($gen)*] $ty, $t,
            Add add |a, b| q = a + b, |ta, tb| ta + tb;
            Sub sub |a, b| q = a - b, |ta, tb| ta - tb;
            Mul mul |a, b| q = a * b, |ta, tb| ta * b + a * tb;
            Div div |a, b| q = a / b, |ta, tb| (ta - q * tb) / b
        );
        // A constant shifts the value (the tangents stay) or scales value and tangents.
        forward_mode_arithmetic!(@shift [$($gen)*] $ty, Add add +, Sub sub -);
        forward_mode_arithmetic!(@scale [$($gen)*] $ty, $t, Mul mul *, Div div /);
        forward_mode_arithmetic!(@assign [$($gen)*] $ty,
            AddAssign add_assign +, SubAssign sub_assign -,
            MulAssign mul_assign *, DivAssign div_assign /
        );
        impl<$($gen)*> Neg for $ty {
            type Output = Self;
            #[inline]
            fn neg(self) -> Self {
                Self { v: -self.v, $t: self.map_t(|x| -x) }
            }
        }
    };
    (@binary $gen:tt $ty:ty, $t:ident, $(
        $tr:ident $m:ident |$a:ident, $b:ident| $q:ident = $value:expr,
        |$ta:ident, $tb:ident| $tangent:expr
    );*) => {$(
        forward_mode_arithmetic!(@impl $gen $tr for $ty {
            type Output = Self;
            #[inline]
            fn $m(self, o: Self) -> Self {
                let ($a, $b) = (self.v, o.v);
                let $q = $value;
                Self { v: $q, $t: self.zip_t(o, |$ta, $tb| $tangent) }
            }
        });
    )*};
    (@shift $gen:tt $ty:ty, $($tr:ident $m:ident $op:tt),*) => {$(
        forward_mode_arithmetic!(@impl $gen $tr<f32> for $ty {
            type Output = Self;
            #[inline]
            fn $m(self, c: f32) -> Self {
                Self { v: self.v $op c, ..self }
            }
        });
    )*};
    (@scale $gen:tt $ty:ty, $t:ident, $($tr:ident $m:ident $op:tt),*) => {$(
        forward_mode_arithmetic!(@impl $gen $tr<f32> for $ty {
            type Output = Self;
            #[inline]
            fn $m(self, c: f32) -> Self {
                Self { v: self.v $op c, $t: self.map_t(|x| x $op c) }
            }
        });
    )*};
    (@assign $gen:tt $ty:ty, $($tr:ident $m:ident $op:tt),*) => {$(
        forward_mode_arithmetic!(@impl $gen $tr for $ty {
            #[inline]
            fn $m(&mut self, o: Self) {
                *self = *self $op o;
            }
        });
    )*};
    (@impl [$($gen:tt)*] $($item:tt)*) => {
        impl<$($gen)*> $($item)*
    };
}
pub(crate) use forward_mode_arithmetic;
