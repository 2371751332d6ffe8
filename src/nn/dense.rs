//! `Dense<I, O, A>`: an affine map followed by an activation, sizes in the type.

use core::marker::PhantomData;

use super::{Activation, Layer, ParamSeed, Parameters};
use crate::lanes::{F32x, Lanes};
use crate::real::Real;

/// Whether one trajectory's layers compute 8 outputs at a time in [`F32x<8>`] lanes: on
/// targets whose baseline has `f32` SIMD registers (x86-64: SSE2, AArch64: NEON), where the
/// lanes vectorize. Elsewhere (Cortex-M) one output at a time, where the fast activations
/// take an early exit inside their clamps. The bits are the same either way: each lane runs
/// the operations of one output in the same order.
const OUTPUTS_IN_LANES: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// Outputs per lane group on the [`OUTPUTS_IN_LANES`] path.
const OUTPUT_LANES: usize = 8;

/// A fully connected layer `y = A(W x + b)` with `I` inputs and `O` outputs.
///
/// Parameters, in flat order: `weight[0][0..I]`, `weight[1][0..I]`, ..., then `bias[0..O]`
/// (`I * O + O` in all).
///
/// A tuple ending in a `Dense` followed by a one-output `Dense` (the usual hidden layer and
/// output of a small network) computes the pair unit by unit when no parameter tangents
/// are carried: each hidden unit's value goes straight into the output's sums, so the
/// hidden layer is never stored. The results are the same bits as applying the two layers
/// one after the other.
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
            if OUTPUTS_IN_LANES
                && <T::Value as Lanes>::WIDTH == 1
                && O >= OUTPUT_LANES
                && is_its_value::<T>()
            {
                return self.forward_outputs_in_lanes(x);
            }
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

    #[inline]
    fn forward_then<N>(
        &self,
        next: &N,
        x: &[T; I],
        seed: ParamSeed,
        next_seed: ParamSeed,
    ) -> N::Output
    where
        N: Layer<T, Input = [T; O]>,
    {
        next.forward_after_dense(self, x, || self.forward(x, seed), next_seed)
    }

    #[inline]
    fn forward_after_dense<const J: usize, const H: usize, P: Activation>(
        &self,
        prev: &Dense<J, H, P>,
        x: &[T; J],
        hidden: impl FnOnce() -> [T; I],
        seed: ParamSeed,
    ) -> [T; O] {
        if fuses_hidden_units_in_lanes::<T, H, I, O>() {
            if let (Some(row), Some(b)) = (self.weight.first(), self.bias.first()) {
                let xv: [f32; J] =
                    core::array::from_fn(|i| x.get(i).map_or(0.0, |v| v.value().lane(0)));
                let sum = hidden_dot_in_lanes::<P, J, H, I, HIDDEN_LANES>(prev, row, &xv);
                let y = A::apply(T::cst(*b) + T::from_value(<T::Value as Lanes>::splat(sum)));
                return core::array::from_fn(|_| y);
            }
        }
        if fuses_hidden_units::<T, H, I, O>() {
            if let (Some(row), Some(b)) = (self.weight.first(), self.bias.first()) {
                let sum = hidden_dot_apart(prev, row, x);
                let y = A::apply(T::cst(*b) + sum);
                return core::array::from_fn(|_| y);
            }
        }
        self.forward(&hidden(), seed)
    }
}

/// Whether [`Layer::forward_after_dense`] computes `next(prev(x))` for a hidden width `H`
/// and a next layer `Dense<I, O, _>` unit by unit ([`hidden_dot`]): one output (its four
/// accumulators stay in registers), `I == H` (always, the types say so; checked because
/// the compiler cannot see it), more than one hidden unit ([`dot`] of width 1 takes its one
/// product without accumulators), and a scalar that is its value without tangents. Not for
/// one lane on the [`OUTPUTS_IN_LANES`] targets, where the first layer computes 8 units at
/// once.
#[inline]
fn fuses_hidden_units<T: Real, const H: usize, const I: usize, const O: usize>() -> bool {
    O == 1
        && I == H
        && H > 1
        && is_its_value::<T>()
        && !(OUTPUTS_IN_LANES && <T::Value as Lanes>::WIDTH == 1)
}

/// Whether [`Layer::forward_after_dense`] computes `next(prev(x))` for one trajectory on the
/// [`OUTPUTS_IN_LANES`] targets by [`hidden_dot_in_lanes`]: the conditions of
/// [`fuses_hidden_units`], but one lane on those targets.
#[inline]
fn fuses_hidden_units_in_lanes<T: Real, const H: usize, const I: usize, const O: usize>() -> bool {
    O == 1
        && I == H
        && H > 1
        && OUTPUTS_IN_LANES
        && <T::Value as Lanes>::WIDTH == 1
        && is_its_value::<T>()
}

/// Hidden units per lane group in [`hidden_dot_in_lanes`]: one register's worth (16 with
/// AVX-512, else 8), as the crate's other lane passes.
const HIDDEN_LANES: usize = crate::lanes::WIDE_LANES;

/// [`hidden_dot`] for one trajectory with the hidden units computed `G` (a multiple of 4:
/// [`HIDDEN_LANES`]), then 4, at a time in lanes, then one by one: each group's pre-activations as
/// [`outputs_in_lanes`] computes them, its activations branch-free, its products with the
/// output row, and then the products added into the four accumulators four at a time (unit
/// `j` into accumulator `j mod 4`, in increasing `j`: [`dot`]'s order). The same operations
/// in the same order as `dot(&prev.forward(x), row)`, so the same bits, and the hidden
/// values never go through memory. `row` must have `H` entries.
#[inline]
fn hidden_dot_in_lanes<
    P: Activation,
    const J: usize,
    const H: usize,
    const I: usize,
    const G: usize,
>(
    prev: &Dense<J, H, P>,
    row: &[f32; I],
    x: &[f32; J],
) -> f32 {
    let mut acc = F32x::<4>::splat(0.0);
    let done = hidden_groups_dot::<P, J, G>(&prev.weight, &prev.bias, row, x, &mut acc);
    let (rows, bias, out) = (
        prev.weight.get(done..).unwrap_or_default(),
        prev.bias.get(done..).unwrap_or_default(),
        row.get(done..).unwrap_or_default(),
    );
    let more = hidden_groups_dot::<P, J, 4>(rows, bias, out, x, &mut acc);
    // Fewer than 4 units left, the first of them a multiple of 4: unit `r` of the rest goes
    // into accumulator `r`.
    let rest = rows.iter().zip(bias).zip(out).skip(more);
    for (a, ((w, &b), &v)) in acc.0.iter_mut().zip(rest) {
        *a += hidden_unit::<f32, P, J>(w, b, x) * v;
    }
    let [a0, a1, a2, a3] = acc.0;
    (a0 + a1) + (a2 + a3)
}

/// The hidden units of `rows`/`bias` at `x`, `L` (a multiple of 4) at a time in lanes, each
/// group's products with `out` added into `acc` four at a time; returns how many units (a
/// multiple of `L`; the rest is left).
#[inline(always)]
fn hidden_groups_dot<P: Activation, const J: usize, const L: usize>(
    rows: &[[f32; J]],
    bias: &[f32],
    out: &[f32],
    x: &[f32; J],
    acc: &mut F32x<4>,
) -> usize {
    let mut done = 0;
    let groups = rows
        .chunks_exact(L)
        .zip(bias.chunks_exact(L))
        .zip(out.chunks_exact(L));
    for ((rows, bias), out) in groups {
        let h = P::apply(pre_activations::<J, L>(rows, bias, x));
        let mut v = F32x::<L>::splat(0.0);
        for (lane, &vj) in v.0.iter_mut().zip(out) {
            *lane = vj;
        }
        let p = h * v;
        for quad in p.0.chunks_exact(4) {
            let mut q = F32x::<4>::splat(0.0);
            for (lane, &pj) in q.0.iter_mut().zip(quad) {
                *lane = pj;
            }
            *acc += q;
        }
        done += L;
    }
    done
}

/// One hidden unit `P(b + w x)`, as [`Dense`] computes one output; always inlined, so that
/// [`hidden_dot`]'s loop keeps its accumulators and constants in registers.
#[inline(always)]
fn hidden_unit<T: Real, P: Activation, const J: usize>(w: &[f32; J], b: f32, x: &[T; J]) -> T {
    P::apply(T::cst(b) + dot(x, w))
}

/// The units of `rows`/`bias` at `x` one by one, `G` (a multiple of 4) to a loop
/// iteration, unit `k` of a group times `out[k]` into accumulator `k mod 4`; returns how
/// many units (a multiple of `G`; the rest is left).
#[inline(always)]
fn unit_groups_dot<T: Real, P: Activation, const J: usize, const G: usize>(
    rows: &[[f32; J]],
    bias: &[f32],
    out: &[f32],
    x: &[T; J],
    acc: &mut [T; 4],
) -> usize {
    // Indices rather than zipped `chunks_exact` iterators: zipping those divides by their
    // chunk size, a run-time value where the zip is not inlined (at opt-level "s"), which
    // links a division-by-zero panic into no-panic firmware. Here `G` divides at compile
    // time, and where the slices' lengths are known (every caller at opt-level 3) the loops
    // fold as the zips did.
    let groups = rows.len().min(bias.len()).min(out.len()) / G;
    for k in 0..groups {
        for q in 0..G / 4 {
            for (i, a) in acc.iter_mut().enumerate() {
                let u = k * G + 4 * q + i;
                if let (Some(w), Some(&b), Some(&v)) = (rows.get(u), bias.get(u), out.get(u)) {
                    *a += hidden_unit::<T, P, J>(w, b, x) * v;
                }
            }
        }
    }
    groups * G
}

/// [`hidden_dot`], not inlined on 32-bit Arm (the Cortex-M): measured on the M4F, a call per
/// network costs fewer instructions than the registers the inlined loops of a model's two
/// networks take from each other (their constants hoisted out of the step loop).
#[cfg_attr(target_arch = "arm", inline(never))]
#[cfg_attr(not(target_arch = "arm"), inline)]
fn hidden_dot_apart<T: Real, P: Activation, const J: usize, const H: usize, const I: usize>(
    prev: &Dense<J, H, P>,
    row: &[f32; I],
    x: &[T; J],
) -> T {
    hidden_dot(prev, row, x)
}

/// `dot(prev(x), row)` without the array `prev(x)`: each hidden unit `h_j = P(b_j + w_j x)`
/// is computed and at once multiplied into accumulator `j mod 4`, then the accumulators
/// are summed as [`dot`] sums them. The same operations in the same order as
/// `dot(&prev.forward(x), row)` (for `T` without tangents), so the same bits; the hidden
/// values never go through memory. `row` must have `H` entries.
#[inline]
fn hidden_dot<T: Real, P: Activation, const J: usize, const H: usize, const I: usize>(
    prev: &Dense<J, H, P>,
    row: &[f32; I],
    x: &[T; J],
) -> T {
    let mut acc = [T::ZERO; 4];
    if <T::Value as Lanes>::WIDTH == 1 {
        // One lane (the Cortex-M): unit by unit, which keeps the values in registers, unit
        // `j` into accumulator `j mod 4`; in groups of 16, then 4, then the rest (measured
        // on the M4F: fewer instructions than groups of 4 or 8, or than straight-line code,
        // which spills).
        let done = unit_groups_dot::<T, P, J, 16>(&prev.weight, &prev.bias, row, x, &mut acc);
        let (rows, bias, out) = (
            prev.weight.get(done..).unwrap_or_default(),
            prev.bias.get(done..).unwrap_or_default(),
            row.get(done..).unwrap_or_default(),
        );
        let more = unit_groups_dot::<T, P, J, 4>(rows, bias, out, x, &mut acc);
        let rest = rows.iter().zip(bias).zip(out).skip(more);
        for (a, ((w, &b), &v)) in acc.iter_mut().zip(rest) {
            *a += hidden_unit::<T, P, J>(w, b, x) * v;
        }
        let [a0, a1, a2, a3] = acc;
        return (a0 + a1) + (a2 + a3);
    }
    let rows = prev.weight.chunks_exact(4);
    let biases = prev.bias.chunks_exact(4);
    let outs = row.chunks_exact(4);
    let (rows_rest, biases_rest, outs_rest) =
        (rows.remainder(), biases.remainder(), outs.remainder());
    for ((w4, b4), v4) in rows.zip(biases).zip(outs) {
        // Several lanes: the four units' pre-activations, then their activations together
        // (`apply_array` goes operation by operation across them), so that a wide core
        // overlaps the four long dependency chains (measured: four beat one, eight and all
        // of them, which spill registers); the same operations per unit.
        let mut h = [T::ZERO; 4];
        for ((h, w), &b) in h.iter_mut().zip(w4).zip(b4) {
            *h = T::cst(b) + dot(x, w);
        }
        P::apply_array(&mut h);
        for ((a, h), &v) in acc.iter_mut().zip(h).zip(v4) {
            *a += h * v;
        }
    }
    for (((a, w), &b), &v) in acc
        .iter_mut()
        .zip(rows_rest)
        .zip(biases_rest)
        .zip(outs_rest)
    {
        *a += hidden_unit::<T, P, J>(w, b, x) * v;
    }
    let [a0, a1, a2, a3] = acc;
    (a0 + a1) + (a2 + a3)
}

impl<const I: usize, const O: usize, A: Activation> Dense<I, O, A> {
    /// [`Layer::forward`] of one trajectory without tangents (`T` is its value, one lane),
    /// [`OUTPUT_LANES`] outputs at a time, then 4, then one by one: lane `j` of a group
    /// computes its output by exactly the operations of [`dot`] and the activation.
    #[inline]
    fn forward_outputs_in_lanes<T: Real>(&self, x: &[T; I]) -> [T; O] {
        let xv: [f32; I] = core::array::from_fn(|i| x.get(i).map_or(0.0, |v| v.value().lane(0)));
        let mut y = [T::ZERO; O];
        let done = outputs_in_lanes::<A, T, I, OUTPUT_LANES>(&self.weight, &self.bias, &xv, &mut y);
        let (rows, bias, out) = (
            self.weight.get(done..).unwrap_or_default(),
            self.bias.get(done..).unwrap_or_default(),
            y.get_mut(done..).unwrap_or_default(),
        );
        let more = outputs_in_lanes::<A, T, I, 4>(rows, bias, &xv, out);
        let rest = rows.iter().zip(bias).skip(more);
        for (o, (row, &b)) in out.iter_mut().skip(more).zip(rest) {
            *o = A::apply(T::cst(b) + dot(x, row));
        }
        y
    }
}

/// Whether `T` is its value and nothing more (`f32`, lanes: `chain_first_order` gives the
/// value back), unlike [`Directional`](crate::Directional), whose derivative part the lane
/// path would drop.
#[inline]
fn is_its_value<T: Real>() -> bool {
    let zero = <T::Value as Lanes>::ZERO;
    T::TANGENTS == 0 && T::ZERO.chain_first_order(zero, zero).is_some()
}

/// The outputs of `rows`/`bias` at input `x`, `L` at a time in [`F32x<L>`] lanes, into
/// `out`; returns how many (a multiple of `L`; the rest is left). Lane `j` computes output
/// `j` of its group as [`Dense`] does one output: `b + x_0 w_0` for one input, else the
/// four accumulators of [`dot`], then the activation.
#[inline]
fn outputs_in_lanes<A: Activation, T: Real, const I: usize, const L: usize>(
    rows: &[[f32; I]],
    bias: &[f32],
    x: &[f32; I],
    out: &mut [T],
) -> usize {
    let lift = |v: f32| T::from_value(<T::Value as Lanes>::splat(v));
    let mut done = 0;
    let groups = rows
        .chunks_exact(L)
        .zip(bias.chunks_exact(L))
        .zip(out.chunks_exact_mut(L));
    for ((rows, bias), out) in groups {
        let z = pre_activations::<I, L>(rows, bias, x);
        for (o, &v) in out.iter_mut().zip(&A::apply(z).0) {
            *o = lift(v);
        }
        done += L;
    }
    done
}

/// The pre-activations of the first `L` of `rows`/`bias` at input `x`, in lanes: lane `j`
/// is `b_j + x_0 w_j0` for one input, else `b_j` plus the four accumulators of [`dot`].
#[inline(always)]
fn pre_activations<const I: usize, const L: usize>(
    rows: &[[f32; I]],
    bias: &[f32],
    x: &[f32; I],
) -> F32x<L> {
    let mut b = F32x::<L>::splat(0.0);
    for (lane, &bj) in b.0.iter_mut().zip(bias) {
        *lane = bj;
    }
    let column = |i: usize| {
        let mut w = F32x::<L>::splat(0.0);
        for (lane, row) in w.0.iter_mut().zip(rows) {
            *lane = row.get(i).copied().unwrap_or(0.0);
        }
        w
    };
    if I == 1 {
        b + F32x::splat(x.first().copied().unwrap_or(0.0)) * column(0)
    } else {
        let mut acc = [F32x::<L>::splat(0.0); 4];
        for (i, &xi) in x.iter().enumerate() {
            if let Some(a) = acc.get_mut(i % 4) {
                *a += F32x::splat(xi) * column(i);
            }
        }
        let [a0, a1, a2, a3] = acc;
        b + ((a0 + a1) + (a2 + a3))
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
pub(super) fn dot<T: Real, const I: usize>(x: &[T; I], w: &[f32; I]) -> T {
    if I == 1 {
        return x[0] * w[0];
    }
    // Four products at a time into the four accumulators (a shape the compiler turns
    // into one 4-lane multiply and add), then the last `I mod 4` into the first ones.
    let mut acc = [T::ZERO; 4];
    let (xs, ws) = (x.chunks_exact(4), w.chunks_exact(4));
    let (x_rest, w_rest) = (xs.remainder(), ws.remainder());
    for (xc, wc) in xs.zip(ws) {
        for ((a, &xi), &wi) in acc.iter_mut().zip(xc).zip(wc) {
            *a += xi * wi;
        }
    }
    for ((a, &xi), &wi) in acc.iter_mut().zip(x_rest).zip(w_rest) {
        *a += xi * wi;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nn::{FastSigmoid, FastTanh, Identity, QuickSigmoid, QuickTanh, Tanh};

    /// Weights and biases spread over `[-span, span]` (a fixed pattern, some exactly zero),
    /// so that pre-activations fall inside and far outside the fast activations' clamps.
    fn filled<const I: usize, const O: usize, A>(span: f32) -> Dense<I, O, A> {
        spread(span, 0.0, 7)
    }

    /// The `j`-th weight or bias (`j` from 1) `span * (2 frac(0.618034 (seed + j)) - 1)`, a
    /// fixed pattern over `[-span, span]`; every `zero_every`-th exactly zero (0: none).
    pub(crate) fn spread<const I: usize, const O: usize, A>(
        span: f32,
        seed: f32,
        zero_every: usize,
    ) -> Dense<I, O, A> {
        let mut layer = Dense::<I, O, A>::zeros();
        let mut k = seed;
        let params = layer
            .weight
            .iter_mut()
            .flatten()
            .chain(layer.bias.iter_mut());
        for (j, w) in (1..).zip(params) {
            k += 1.0;
            *w = span * ((k * 0.618_034).fract() * 2.0 - 1.0);
            if zero_every != 0 && j % zero_every == 0 {
                *w = 0.0;
            }
        }
        layer
    }

    /// Both fused paths, called directly (each target takes one of them): the unit-by-unit
    /// one of the Cortex-M targets (`hidden_dot`) and the one-trajectory lanes of the host
    /// (`hidden_dot_in_lanes`, in groups of 8 and of 16) give the bits of the output layer's
    /// `dot` over the first layer's output array, with and without remainders of units, for
    /// `J` inputs each taking the values below (inside, at and beyond the clamps, zeros of
    /// both signs, NaN and infinities; the other inputs a fixed multiple of it).
    fn check_pair<P: Activation, const J: usize, const H: usize>(span: f32) {
        let first = filled::<J, H, P>(span);
        let second = filled::<H, 1, Identity>(1.0);
        let inputs = [
            0.0f32,
            -0.0,
            0.3,
            -1.7,
            2.5,
            7.905_311,
            -9.0,
            40.0,
            -1e4,
            1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        // Every NaN counts as one: Rust leaves a NaN result's sign and payload unspecified.
        let bits = |v: f32| {
            if v.is_nan() {
                f32::NAN.to_bits()
            } else {
                v.to_bits()
            }
        };
        for s in inputs {
            let x: [f32; J] = core::array::from_fn(|i| if i % 2 == 0 { s } else { -0.37 * s });
            let hidden: [f32; H] =
                core::array::from_fn(|o| P::apply(first.bias[o] + dot(&x, &first.weight[o])));
            let want = dot(&hidden, &second.weight[0]);
            let got = hidden_dot(&first, &second.weight[0], &x);
            assert_eq!(bits(got), bits(want), "H = {H}, x = {x:?}");
            let by_8 = hidden_dot_in_lanes::<P, J, H, H, 8>(&first, &second.weight[0], &x);
            assert_eq!(bits(by_8), bits(want), "8 lanes, H = {H}, x = {x:?}");
            let by_16 = hidden_dot_in_lanes::<P, J, H, H, 16>(&first, &second.weight[0], &x);
            assert_eq!(bits(by_16), bits(want), "16 lanes, H = {H}, x = {x:?}");
        }
    }

    #[test]
    fn hidden_units_summed_unit_by_unit_give_the_bits_of_the_hidden_array() {
        for span in [0.5f32, 4.0, 100.0] {
            check_pair::<FastTanh, 1, 20>(span);
            check_pair::<FastSigmoid, 1, 20>(span);
            check_pair::<FastTanh, 1, 7>(span);
            check_pair::<FastSigmoid, 1, 35>(span);
            check_pair::<Tanh, 1, 6>(span);
            check_pair::<Identity, 1, 2>(span);
            check_pair::<FastTanh, 3, 20>(span);
            check_pair::<FastSigmoid, 6, 13>(span);
            check_pair::<QuickTanh, 1, 20>(span);
            check_pair::<QuickSigmoid, 1, 20>(span);
            check_pair::<QuickTanh, 2, 35>(span);
            check_pair::<QuickSigmoid, 3, 13>(span);
            check_pair::<Tanh, 2, 24>(span);
        }
    }

    #[test]
    fn negative_zero_products_keep_the_accumulators_positive_zero_start() {
        // Every hidden unit is -0 (input -0 times zero weights plus bias -0, through an odd
        // activation): each product with a positive output weight is -0, and `dot` starts its accumulators at +0, so
        // the sum is +0, not -0; the unit-by-unit path must keep that.
        let mut first = Dense::<1, 8, FastTanh>::zeros();
        first.bias = [-0.0; 8];
        let mut second = Dense::<8, 1, Identity>::zeros();
        second.weight = [[1.0; 8]];
        let got = hidden_dot(&first, &second.weight[0], &[-0.0f32]);
        assert_eq!(got.to_bits(), 0.0f32.to_bits());
        let in_lanes = hidden_dot_in_lanes::<_, 1, 8, 8, 8>(&first, &second.weight[0], &[-0.0]);
        assert_eq!(in_lanes.to_bits(), 0.0f32.to_bits());
    }
}
