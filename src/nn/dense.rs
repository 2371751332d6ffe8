//! `Dense<I, O, A>`: an affine map followed by an activation, sizes in the type.

use core::marker::PhantomData;

use super::{Activation, Layer, ParamSeed, Parameters};
use crate::real::Real;

/// A fully connected layer `y = A(W x + b)` with `I` inputs and `O` outputs.
///
/// Parameters, in flat order: `weight[0][0..I]`, `weight[1][0..I]`, ..., then `bias[0..O]`
/// (`I * O + O` in all).
///
/// ```
/// use tinysde::nn::{Dense, Identity, Layer, ParamSeed};
/// let mut layer = Dense::<2, 1, Identity>::default();
/// layer.weight = [[1.0, 2.0]];
/// layer.bias = [0.5];
/// let y: [f32; 1] = layer.forward(&[3.0, 4.0], ParamSeed::NONE);
/// assert_eq!(y, [11.5]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dense<const I: usize, const O: usize, A> {
    /// `weight[o][i]` multiplies input `i` into output `o`.
    pub weight: [[f32; I]; O],
    /// Added to output `o` before the activation.
    pub bias: [f32; O],
    activation: PhantomData<A>,
}

impl<const I: usize, const O: usize, A> Dense<I, O, A> {
    /// A layer with all weights and biases zero.
    pub const fn zeros() -> Self {
        Self {
            weight: [[0.0; I]; O],
            bias: [0.0; O],
            activation: PhantomData,
        }
    }

    /// A layer with the given weights and biases.
    pub const fn new(weight: [[f32; I]; O], bias: [f32; O]) -> Self {
        Self {
            weight,
            bias,
            activation: PhantomData,
        }
    }
}

impl<const I: usize, const O: usize, A> Default for Dense<I, O, A> {
    fn default() -> Self {
        Self::zeros()
    }
}

impl<const I: usize, const O: usize, A> Parameters for Dense<I, O, A> {
    const PARAMS: usize = I * O + O;

    fn read_unchecked(&self, out: &mut [f32]) {
        let (w, b) = super::split_at_most_mut(out, I * O);
        for (dst, &src) in w.iter_mut().zip(self.weight.iter().flatten()) {
            *dst = src;
        }
        for (dst, &src) in b.iter_mut().zip(&self.bias) {
            *dst = src;
        }
    }

    fn write_unchecked(&mut self, src: &[f32]) {
        let (w, b) = super::split_at_most(src, I * O);
        for (dst, &src) in self.weight.iter_mut().flatten().zip(w) {
            *dst = src;
        }
        for (dst, &src) in self.bias.iter_mut().zip(b) {
            *dst = src;
        }
    }
}

impl<T: Real, const I: usize, const O: usize, A: Activation> Layer<T> for Dense<I, O, A> {
    type Input = [T; I];
    type Output = [T; O];

    #[inline]
    fn forward(&self, x: &[T; I], seed: ParamSeed) -> [T; O] {
        if T::TANGENTS == 0 {
            // Nothing to seed: each output's activation right after its affine map, in one
            // pass over the outputs (`apply` gives `apply_array`'s results element by element).
            // `from_fn` rather than a zeroed array: no memset of the outputs first.
            #[allow(clippy::indexing_slicing, reason = "o < O indexes arrays of O")]
            return core::array::from_fn(|o| {
                A::apply(T::cst(self.bias[o]) + dot(x, &self.weight[o]))
            });
        }
        let mut z = [T::ZERO; O];
        for ((zo, row), &b) in z.iter_mut().zip(&self.weight).zip(&self.bias) {
            *zo = T::cst(b) + dot(x, row);
        }
        // dz_o / dweight[o][i] = x_i and dz_o / dbias[o] = 1, for the seeded parameters.
        // `get` rather than indexing: `j < PARAMS` holds, but the optimizer cannot see it,
        // and the no-panic builds must link.
        for (j, lane) in seed.seeded(Self::PARAMS, T::TANGENTS) {
            let (row, coeff) = if j < I * O {
                (j / I, x.get(j % I).copied())
            } else {
                (j - I * O, Some(T::ONE))
            };
            if let (Some(zo), Some(coeff)) = (z.get_mut(row), coeff) {
                zo.add_param_tangent(lane, coeff);
            }
        }
        A::apply_array(&mut z);
        z
    }
}

/// `sum_i x_i w_i` in a fixed order: products `i ≡ r (mod 4)` summed in accumulator `r`,
/// then `(a0 + a1) + (a2 + a3)`. Four independent chains instead of one hide the latency of
/// the additions; the order is part of the computation, the same on every target and for
/// every tangent lane. Inputs of width 1 take the single product as it is.
#[inline]
#[allow(
    clippy::indexing_slicing,
    reason = "i % 4 indexes an array of 4; [0] is read only when I == 1"
)]
fn dot<T: Real, const I: usize>(x: &[T; I], w: &[f32; I]) -> T {
    if I == 1 {
        return x[0] * w[0];
    }
    let mut acc = [T::ZERO; 4];
    for (i, (&xi, &wi)) in x.iter().zip(w).enumerate() {
        acc[i % 4] += xi * wi;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}
