//! Neural network layers with their sizes in their types.
//!
//! A layer maps `[T; I]` to `[T; O]` for any scalar `T: Real`, has a compile-time parameter
//! count, and exposes its parameters as one flat `f32` sequence in a documented order, so an
//! optimizer, a weights file and a gradient all agree on indices. Layers compose as tuples:
//! `(A, B, C)` applies `A`, then `B`, then `C`.
//!
//! ```
//! use tinysde::nn::{Cube, Dense, Identity, Layer, Parameters, Tanh, ParamSeed};
//! // The seed task's drift: u -> u^3 -> 20 tanh units -> 1 output.
//! type Drift = (Cube<1>, Dense<1, 20, Tanh>, Dense<20, 1, Identity>);
//! let mut drift = Drift::default();
//! let mut rng = tinysde::noise::rng_from_seed(7);
//! tinysde::nn::init(&mut drift, &mut rng, tinysde::nn::InitScheme::GlorotUniform).unwrap();
//! assert_eq!(Drift::PARAMS, 20 + 20 + 20 + 1);
//! let y: [f32; 1] = drift.forward(&[0.5], ParamSeed::NONE);
//! assert!(y[0].is_finite());
//! ```

mod activation;
mod backward;
mod chain;
mod dense;
mod init;
mod map;
mod quick;

pub use activation::{
    fast_sigmoid, fast_tanh, Activation, FastSigmoid, FastTanh, Identity, Relu, Sigmoid, Softplus,
    Tanh, FAST_SIGMOID_MAX_ERROR, FAST_TANH_MAX_ERROR,
};
pub use backward::{Backward, TangentBackward};
pub use dense::Dense;
pub use init::{init, Init, InitScheme};
pub use map::{Cube, Pow};
pub use quick::{
    quick_sigmoid, quick_tanh, QuickSigmoid, QuickTanh, QUICK_SIGMOID_DERIVATIVE_MAX_ERROR,
    QUICK_SIGMOID_MAX_ERROR, QUICK_TANH_DERIVATIVE_MAX_ERROR, QUICK_TANH_MAX_ERROR,
};

use crate::error::{check_len, Error};
use crate::real::Real;

/// Where a layer's parameters sit among the tangent lanes being computed.
///
/// Forward-mode gradients are computed a chunk of K parameters at a time: parameter `p`
/// (a global flat index) gets tangent lane `p - window_start`. A layer whose parameters
/// start at global index `offset` therefore seeds its parameter `j` into lane
/// `offset + j - window_start` when that lies in `0..K`. [`ParamSeed::NONE`] seeds nothing
/// (plain inference, or derivatives in the state only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSeed {
    /// Lane of this layer's parameter 0 (may be negative or beyond the lanes).
    lane0: Option<isize>,
}

impl ParamSeed {
    /// Seed nothing.
    pub const NONE: Self = Self { lane0: None };

    /// Seed parameters `window_start .. window_start + K` into lanes `0 .. K`, for a model
    /// whose parameter 0 is global parameter 0. A start beyond `isize::MAX` (past any
    /// possible parameter) seeds nothing.
    pub const fn window(window_start: usize) -> Self {
        if window_start > isize::MAX as usize {
            return Self::NONE;
        }
        Self {
            lane0: Some(-(window_start as isize)),
        }
    }

    /// The seed for a sub-layer whose parameters start `offset` places later.
    #[must_use]
    pub const fn shifted(self, offset: usize) -> Self {
        let Some(l) = self.lane0 else {
            return Self::NONE;
        };
        if offset > isize::MAX as usize {
            return Self::NONE;
        }
        match l.checked_add(offset as isize) {
            Some(l) => Self { lane0: Some(l) },
            // Past isize::MAX every lane is out of reach: nothing is seeded.
            None => Self::NONE,
        }
    }

    /// The lane of this layer's parameter `j`, if it is being seeded by a scalar with `lanes` lanes.
    #[inline]
    pub fn lane(self, j: usize, lanes: usize) -> Option<usize> {
        let l = self.lane0?.checked_add(isize::try_from(j).ok()?)?;
        let l = usize::try_from(l).ok()?;
        (l < lanes).then_some(l)
    }

    /// The `(j, lane)` pairs of this layer's parameters `j < params` that are seeded into
    /// one of `lanes` lanes, in increasing order.
    #[inline]
    pub fn seeded(self, params: usize, lanes: usize) -> impl Iterator<Item = (usize, usize)> {
        let params = isize::try_from(params).unwrap_or(isize::MAX);
        let lanes = isize::try_from(lanes).unwrap_or(isize::MAX);
        let (start, end, l) = match self.lane0 {
            None => (0, 0, 0),
            // Saturating: `lane0` lies in -isize::MAX ..= isize::MAX, so these cannot wrap.
            Some(l) => (
                l.saturating_neg().clamp(0, params),
                lanes.saturating_sub(l).clamp(0, params),
                l,
            ),
        };
        // start, end in 0..=params and l + j in 0..lanes for j in start..end.
        (start..end.max(start)).map(move |j| (j as usize, l.wrapping_add(j) as usize))
    }

    /// A parameter value lifted to a scalar: `value`, with tangent 1 in this layer's lane
    /// for parameter `j` if it is seeded. Hand-written SDEs use this for their constants.
    #[inline]
    pub fn lift<T: Real>(self, value: f32, j: usize) -> T {
        let mut x = T::cst(value);
        if let Some(lane) = self.lane(j, T::TANGENTS) {
            x.add_param_tangent(lane, T::ONE);
        }
        x
    }
}

/// A fixed number of trainable `f32` parameters, readable and writable as one flat sequence.
///
/// The order is part of the contract: [`Dense`] lists its weights row by row (output-major:
/// `weight[o][i]` at `o * I + i`) then its bias; a tuple lists its members in order.
pub trait Parameters {
    /// How many parameters.
    const PARAMS: usize;

    /// Copies the parameters into `out`, which must have length [`Self::PARAMS`](Parameters::PARAMS).
    fn read_params(&self, out: &mut [f32]) -> Result<(), Error> {
        check_len("parameters", Self::PARAMS, out.len())?;
        self.read_unchecked(out);
        Ok(())
    }

    /// Replaces the parameters with `src`, which must have length `PARAMS` and be finite.
    /// On error nothing is changed.
    fn write_params(&mut self, src: &[f32]) -> Result<(), Error> {
        check_len("parameters", Self::PARAMS, src.len())?;
        if let Some(index) = src.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "parameters",
                index,
            });
        }
        self.write_unchecked(src);
        Ok(())
    }

    /// [`read_params`](Parameters::read_params) without the length check, for code that
    /// has checked it once (the trainer, the weights reader). Implementations must not
    /// panic on another length: the crate's own copy the first `min(len, PARAMS)`
    /// parameters and leave the rest of `out` as it was. Prefer `read_params`.
    fn read_unchecked(&self, out: &mut [f32]);
    /// [`write_params`](Parameters::write_params) without the length and finiteness checks.
    /// Implementations must not panic on another length: the crate's own write the first
    /// `min(len, PARAMS)` parameters and keep the rest. Prefer `write_params`.
    fn write_unchecked(&mut self, src: &[f32]);
}

/// Splits `s` at `mid`, or at its end if it is shorter (never panics).
#[inline]
pub(crate) fn split_at_most(s: &[f32], mid: usize) -> (&[f32], &[f32]) {
    s.split_at(mid.min(s.len()))
}

/// Splits `s` at `mid`, or at its end if it is shorter (never panics).
#[inline]
pub(crate) fn split_at_most_mut(s: &mut [f32], mid: usize) -> (&mut [f32], &mut [f32]) {
    let mid = mid.min(s.len());
    s.split_at_mut(mid)
}

/// A differentiable map from `Self::Input` to `Self::Output` over the scalar `T`.
pub trait Layer<T: Real>: Parameters {
    /// The input, an array `[T; I]`.
    type Input;
    /// The output, an array `[T; O]`.
    type Output;
    /// Applies the layer. `seed` says which of its parameters carry tangents.
    fn forward(&self, x: &Self::Input, seed: ParamSeed) -> Self::Output;

    /// `next.forward(&self.forward(x, seed), next_seed)`: this layer, then `next`. The
    /// tuples call it for their last two members, so that a pair can compute both at once
    /// (a [`Dense`] followed by a one-output `Dense` does: each hidden unit goes straight
    /// into the output's sums, without the hidden array). An override must give the same
    /// results bit for bit; a layer of your own has no reason to write one.
    #[inline]
    fn forward_then<N>(
        &self,
        next: &N,
        x: &Self::Input,
        seed: ParamSeed,
        next_seed: ParamSeed,
    ) -> N::Output
    where
        N: Layer<T, Input = Self::Output>,
    {
        next.forward(&self.forward(x, seed), next_seed)
    }

    /// `self.forward(&hidden(), seed)`, where `hidden` computes the output of the [`Dense`]
    /// `prev` at `x` (its seed included): the second half of [`forward_then`](Layer::forward_then)
    /// of a `Dense`, dispatched on this layer, which may compute the two at once from `prev`
    /// and `x` instead. The same results bit for bit as the composition.
    #[inline]
    fn forward_after_dense<const J: usize, const H: usize, P: Activation>(
        &self,
        prev: &Dense<J, H, P>,
        x: &[T; J],
        hidden: impl FnOnce() -> Self::Input,
        seed: ParamSeed,
    ) -> Self::Output {
        let _ = (prev, x);
        self.forward(&hidden(), seed)
    }
}
