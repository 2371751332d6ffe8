//! `Directional<T>`: one extra tangent on top of any [`Real`], for derivatives in the state.

#![allow(clippy::suspicious_arithmetic_impl)] // derivative rules mix operators by nature

use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::dual::{chain_rule_functions, forward_mode_arithmetic};
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

impl<T: Real> Directional<T> {
    /// The tangent mapped by `f`.
    #[inline]
    fn map_t(self, f: impl Fn(T) -> T) -> T {
        f(self.d)
    }

    /// The tangents of `self` and `o` combined by `f`.
    #[inline]
    fn zip_t(self, o: Self, f: impl Fn(T, T) -> T) -> T {
        f(self.d, o.d)
    }
}

forward_mode_arithmetic!([T: Real] Directional<T>, d);

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
    chain_rule_functions!(T);
    #[inline]
    fn is_finite(self) -> MaskOf<T> {
        self.v.is_finite().and(self.d.is_finite())
    }
}
