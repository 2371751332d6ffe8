//! `Directional<T>`: one extra tangent on top of any [`Real`], for derivatives in the state.

#![allow(clippy::suspicious_arithmetic_impl)] // derivative rules mix operators by nature

use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::lanes::Mask;
use crate::real::{MaskOf, Real};

/// A value of type `T` with one directional derivative `d`, also of type `T`.
///
/// Used where a method needs a derivative with respect to the state (the Milstein
/// correction needs `dg/du`) while `T` may itself be carrying parameter tangents
/// ([`Dual<K>`](crate::Dual)): the parameter tangents of `d` are then the exact second
/// derivatives, so forward-mode gradients flow through the correction too.
///
/// ```
/// use tinysde::{Directional, Real};
/// let x = Directional::variable(2.0f32);
/// let y = x * x * x; // d/dx x^3 = 3 x^2
/// assert_eq!(y.d, 12.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Directional<T> {
    /// The value.
    pub v: T,
    /// The derivative along the chosen direction.
    pub d: T,
}

impl<T: Real> Directional<T> {
    /// A constant: derivative zero.
    #[inline]
    pub fn constant(v: T) -> Self {
        Self { v, d: T::ZERO }
    }
    /// The variable we differentiate by: derivative one.
    #[inline]
    pub fn variable(v: T) -> Self {
        Self { v, d: T::ONE }
    }
    #[inline]
    fn chain(self, fv: T, dv: T) -> Self {
        Self {
            v: fv,
            d: self.d * dv,
        }
    }
}

impl<T: Real> Add for Directional<T> {
    type Output = Self;
    #[inline]
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            d: self.d + o.d,
        }
    }
}
impl<T: Real> Sub for Directional<T> {
    type Output = Self;
    #[inline]
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            d: self.d - o.d,
        }
    }
}
impl<T: Real> Mul for Directional<T> {
    type Output = Self;
    #[inline]
    fn mul(self, o: Self) -> Self {
        Self {
            v: self.v * o.v,
            d: self.d * o.v + self.v * o.d,
        }
    }
}
impl<T: Real> Div for Directional<T> {
    type Output = Self;
    #[inline]
    fn div(self, o: Self) -> Self {
        let q = self.v / o.v;
        Self {
            v: q,
            d: (self.d - q * o.d) / o.v,
        }
    }
}
impl<T: Real> Neg for Directional<T> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self {
            v: -self.v,
            d: -self.d,
        }
    }
}
impl<T: Real> Add<f32> for Directional<T> {
    type Output = Self;
    #[inline]
    fn add(self, c: f32) -> Self {
        Self {
            v: self.v + c,
            d: self.d,
        }
    }
}
impl<T: Real> Sub<f32> for Directional<T> {
    type Output = Self;
    #[inline]
    fn sub(self, c: f32) -> Self {
        Self {
            v: self.v - c,
            d: self.d,
        }
    }
}
impl<T: Real> Mul<f32> for Directional<T> {
    type Output = Self;
    #[inline]
    fn mul(self, c: f32) -> Self {
        Self {
            v: self.v * c,
            d: self.d * c,
        }
    }
}
impl<T: Real> Div<f32> for Directional<T> {
    type Output = Self;
    #[inline]
    fn div(self, c: f32) -> Self {
        Self {
            v: self.v / c,
            d: self.d / c,
        }
    }
}

macro_rules! assign_ops {
    ($($tr:ident $m:ident $op:tt),*) => {$(
        impl<T: Real> $tr for Directional<T> {
            #[inline]
            fn $m(&mut self, o: Self) { *self = *self $op o; }
        }
    )*};
}
assign_ops!(AddAssign add_assign +, SubAssign sub_assign -, MulAssign mul_assign *, DivAssign div_assign /);

impl<T: Real> Real for Directional<T> {
    type Value = T::Value;
    const TANGENTS: usize = T::TANGENTS;
    const ZERO: Self = Self {
        v: T::ZERO,
        d: T::ZERO,
    };
    const ONE: Self = Self {
        v: T::ONE,
        d: T::ZERO,
    };

    #[inline]
    fn cst(x: f32) -> Self {
        Self::constant(T::cst(x))
    }
    #[inline]
    fn from_value(v: T::Value) -> Self {
        Self::constant(T::from_value(v))
    }
    #[inline]
    fn value(self) -> T::Value {
        self.v.value()
    }
    #[inline]
    fn tangent(self, lane: usize) -> T::Value {
        self.v.tangent(lane)
    }
    #[inline]
    fn add_param_tangent(&mut self, lane: usize, coeff: Self) {
        // d(v)/dp += coeff.v and d(d)/dp += coeff.d: the parameter enters both levels.
        self.v.add_param_tangent(lane, coeff.v);
        self.d.add_param_tangent(lane, coeff.d);
    }
    #[inline]
    fn scale(self, c: T::Value) -> Self {
        Self {
            v: self.v.scale(c),
            d: self.d.scale(c),
        }
    }
    #[inline]
    fn select(mask: MaskOf<T>, a: Self, b: Self) -> Self {
        Self {
            v: T::select(mask, a.v, b.v),
            d: T::select(mask, a.d, b.d),
        }
    }
    #[inline]
    fn sqrt(self) -> Self {
        let s = self.v.sqrt();
        let dv = T::select(s.gt(T::ZERO), T::ONE / (s * 2.0), T::ZERO);
        self.chain(s, dv)
    }
    #[inline]
    fn exp(self) -> Self {
        let e = self.v.exp();
        self.chain(e, e)
    }
    #[inline]
    fn ln(self) -> Self {
        self.chain(self.v.ln(), T::ONE / self.v)
    }
    #[inline]
    fn tanh(self) -> Self {
        let y = self.v.tanh();
        self.chain(y, T::ONE - y * y)
    }
    #[inline]
    fn sigmoid(self) -> Self {
        let s = self.v.sigmoid();
        self.chain(s, s * (T::ONE - s))
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
        let dv = if n == 0 {
            T::ZERO
        } else {
            // n - 1 overflows for i32::MIN; then x^(n-1) = x^n / x.
            let below = match n.checked_sub(1) {
                Some(m) => self.v.powi(m),
                None => self.v.powi(n) / self.v,
            };
            below * n as f32
        };
        self.chain(self.v.powi(n), dv)
    }
    #[inline]
    fn is_finite(self) -> MaskOf<T> {
        self.v.is_finite().and(self.d.is_finite())
    }
}
