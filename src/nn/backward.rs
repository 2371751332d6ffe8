//! Hand-written vector–Jacobian products (reverse mode) of the layers, on `f32`.
//!
//! Reverse mode needs, for a layer `y = L(x)` and a cotangent `ȳ` (the derivative of a
//! scalar with respect to `y`), the cotangent of the input `x̄ = (∂y/∂x)ᵀ ȳ` and of the
//! parameters `θ̄ += (∂y/∂θ)ᵀ ȳ`. [`Backward`] gives both with no tape and no allocation:
//! [`Backward::forward_cached`] returns the output and a small fixed-size cache (for
//! [`Dense`] the activation's derivative at each pre-activation; for a chain, the inner
//! outputs and the members' caches), and [`Backward::backward`] consumes it.
//!
//! The activation derivatives are those forward mode uses (each activation is evaluated
//! once on [`Dual<1>`]), so both modes differentiate the same function.

use super::{Activation, Dense, Layer, ParamSeed, Parameters, Pow};
use crate::dual::Dual;
use crate::real::Real;

/// A layer on `f32` with its vector–Jacobian product.
///
/// `backward` *adds* the parameter cotangent into `params_bar` (length
/// [`Parameters::PARAMS`], in the flat parameter order) and returns the input cotangent.
///
/// ```
/// use tinysde::nn::{Backward, Dense, Identity};
/// let layer = Dense::<2, 1, Identity>::new([[1.0, 2.0]], [0.5]);
/// let x = [3.0, 4.0];
/// let (y, cache) = layer.forward_cached(&x);
/// assert_eq!(y, [11.5]);
/// let mut params_bar = [0.0f32; 3];
/// let x_bar = layer.backward(&x, &cache, &[1.0], &mut params_bar);
/// assert_eq!(x_bar, [1.0, 2.0]); // the weights
/// assert_eq!(params_bar, [3.0, 4.0, 1.0]); // the inputs, then 1 for the bias
/// ```
pub trait Backward: Layer<f32> {
    /// What the backward pass needs from the forward pass, beyond the input.
    type Cache;
    /// The output (the same values as [`Layer::forward`] on `f32`) and the cache.
    fn forward_cached(&self, x: &Self::Input) -> (Self::Output, Self::Cache);
    /// The input cotangent for the output cotangent `y_bar` at input `x`; adds the
    /// parameter cotangent into `params_bar` (which must be `PARAMS` long; shorter slices
    /// are filled as far as they go, never indexed out of bounds).
    fn backward(
        &self,
        x: &Self::Input,
        cache: &Self::Cache,
        y_bar: &Self::Output,
        params_bar: &mut [f32],
    ) -> Self::Input;
}

/// `sum_i x_i w_i` in the same fixed order as the forward pass of [`Dense`] (four
/// interleaved accumulators), so the recomputed pre-activations have the forward's bits.
#[inline]
#[allow(clippy::indexing_slicing, reason = "i % 4 < 4 indexes a [_; 4]")]
fn dot<const I: usize>(x: &[f32; I], w: &[f32; I]) -> f32 {
    if I == 1 {
        return x[0] * w[0];
    }
    let mut acc = [0.0f32; 4];
    for (i, (&xi, &wi)) in x.iter().zip(w).enumerate() {
        acc[i % 4] += xi * wi;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

impl<const I: usize, const O: usize, A: Activation> Backward for Dense<I, O, A> {
    /// The activation's derivative at each pre-activation.
    type Cache = [f32; O];

    #[inline]
    fn forward_cached(&self, x: &[f32; I]) -> ([f32; O], [f32; O]) {
        let mut z = [Dual::<1>::ZERO; O];
        for ((zo, row), &b) in z.iter_mut().zip(&self.weight).zip(&self.bias) {
            *zo = Dual::variable(b + dot(x, row), 0);
        }
        A::apply_array(&mut z);
        let mut y = [0.0f32; O];
        let mut dy = [0.0f32; O];
        for ((yo, dyo), zo) in y.iter_mut().zip(dy.iter_mut()).zip(&z) {
            *yo = zo.v;
            *dyo = zo.t[0];
        }
        (y, dy)
    }

    #[inline]
    fn backward(
        &self,
        x: &[f32; I],
        cache: &[f32; O],
        y_bar: &[f32; O],
        params_bar: &mut [f32],
    ) -> [f32; I] {
        let (w_bar, b_bar) = params_bar.split_at_mut((I * O).min(params_bar.len()));
        let mut x_bar = [0.0f32; I];
        for (o, ((row, &d), &yb)) in self.weight.iter().zip(cache).zip(y_bar).enumerate() {
            let z_bar = d * yb;
            if let Some(wb) = w_bar.get_mut(o * I..(o + 1) * I) {
                for (wbi, &xi) in wb.iter_mut().zip(x) {
                    *wbi += z_bar * xi;
                }
            }
            if let Some(bb) = b_bar.get_mut(o) {
                *bb += z_bar;
            }
            for (xbi, &wi) in x_bar.iter_mut().zip(row) {
                *xbi += wi * z_bar;
            }
        }
        x_bar
    }
}

impl<const D: usize, const P: i32> Backward for Pow<D, P> {
    type Cache = ();

    #[inline]
    fn forward_cached(&self, x: &[f32; D]) -> ([f32; D], ()) {
        (self.forward(x, ParamSeed::NONE), ())
    }

    #[inline]
    fn backward(&self, x: &[f32; D], _: &(), y_bar: &[f32; D], _: &mut [f32]) -> [f32; D] {
        let mut x_bar = [0.0f32; D];
        for ((xb, &xi), &yb) in x_bar.iter_mut().zip(x).zip(y_bar) {
            // The derivative rule of forward mode: P x^(P-1), and 0 for P = 0.
            *xb = Dual::<1>::variable(xi, 0).powi(P).t[0] * yb;
        }
        x_bar
    }
}

/// The parameter cotangents of a chain member whose parameters start at `offset`.
#[inline]
fn member(params_bar: &mut [f32], offset: usize) -> &mut [f32] {
    params_bar.get_mut(offset..).unwrap_or(&mut [])
}

macro_rules! chain_backward {
    (
        first: $A:ident $a:ident $ca:ident $ya:ident;
        mid: $($B:ident $b:ident $cb:ident $yb:ident $bin:ident),*;
        last: $Z:ident $z:ident $cz:ident $zin:ident;
        rev: $($RB:ident $rb:ident $rcb:ident $rbin:ident),*;
        $($from:ident => $to:ident),+
    ) => {
        /// The members' vector–Jacobian products in reverse order; the cache holds every
        /// member's cache and every inner output.
        impl<$A: Backward $(, $B: Backward)*, $Z: Backward> Backward for ($A, $($B,)* $Z)
        where
            $($to: Layer<f32, Input = <$from as Layer<f32>>::Output>,)+
        {
            type Cache = (
                $A::Cache,
                <$A as Layer<f32>>::Output,
                $($B::Cache, <$B as Layer<f32>>::Output,)*
                $Z::Cache,
            );

            #[inline]
            fn forward_cached(&self, x: &Self::Input) -> (Self::Output, Self::Cache) {
                let ($a, $($b,)* $z) = self;
                let ($ya, $ca) = $a.forward_cached(x);
                $(let ($yb, $cb) = $b.forward_cached(&$bin);)*
                let (y, $cz) = $z.forward_cached(&$zin);
                (y, ($ca, $ya, $($cb, $yb,)* $cz))
            }

            #[inline]
            fn backward(
                &self,
                x: &Self::Input,
                cache: &Self::Cache,
                y_bar: &Self::Output,
                params_bar: &mut [f32],
            ) -> Self::Input {
                let ($a, $($b,)* $z) = self;
                let ($ca, $ya, $($cb, $yb,)* $cz) = cache;
                #[allow(unused_mut)] // a two-member chain never moves it
                let mut offset = <Self as Parameters>::PARAMS - $Z::PARAMS;
                let bar = $z.backward($zin, $cz, y_bar, member(params_bar, offset));
                $(
                    offset -= $RB::PARAMS;
                    let bar = $rb.backward($rbin, $rcb, &bar, member(params_bar, offset));
                )*
                let _ = (offset, $ya);
                $a.backward(x, $ca, &bar, member(params_bar, 0))
            }
        }
    };
}

chain_backward!(
    first: A a ca ya;
    mid: ;
    last: B b cb ya;
    rev: ;
    A => B
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya;
    last: C c cc yb;
    rev: B b cb ya;
    A => B, B => C
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya, C c cc yc yb;
    last: D d cd yc;
    rev: C c cc yb, B b cb ya;
    A => B, B => C, C => D
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya, C c cc yc yb, D d cd yd yc;
    last: E e ce yd;
    rev: D d cd yc, C c cc yb, B b cb ya;
    A => B, B => C, C => D, D => E
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya, C c cc yc yb, D d cd yd yc, E e ce ye yd;
    last: F f cf ye;
    rev: E e ce yd, D d cd yc, C c cc yb, B b cb ya;
    A => B, B => C, C => D, D => E, E => F
);
