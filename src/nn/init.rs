//! Random initialization of layer parameters from any `rand_core::Rng`.

use rand_core::Rng;

use super::{Activation, Dense, Pow};
use crate::error::Error;

/// How to draw initial weights. Biases always start at zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InitScheme {
    /// Glorot (Xavier) uniform: `U(-l, l)` with `l = sqrt(6 / (I + O))`. Suits tanh and sigmoid.
    GlorotUniform,
    /// He (Kaiming) uniform: `U(-l, l)` with `l = sqrt(6 / I)`. Suits relu.
    HeUniform,
    /// `U(-limit, limit)` for every weight; `limit` must be finite and non-negative.
    Uniform {
        /// Half-width of the interval.
        limit: f32,
    },
}

/// A layer (or chain) whose parameters can be drawn at random.
pub trait Init {
    /// Draws every weight by `scheme` and zeroes the biases. The scheme has been validated.
    fn init_unchecked<R: Rng + ?Sized>(&mut self, rng: &mut R, scheme: InitScheme);
}

/// Initializes `model` by `scheme` from `rng`. An invalid scheme (a non-finite or negative
/// `Uniform` limit) returns an error and leaves the model and the generator untouched.
///
/// ```
/// use tinysde::nn::{init, Dense, InitScheme, Tanh};
/// let mut layer = Dense::<3, 4, Tanh>::default();
/// let mut rng = tinysde::noise::rng_from_seed(1);
/// init(&mut layer, &mut rng, InitScheme::GlorotUniform).unwrap();
/// let limit = (6.0f32 / 7.0).sqrt();
/// assert!(layer.weight.iter().flatten().all(|w| w.abs() <= limit));
/// assert!(init(&mut layer, &mut rng, InitScheme::Uniform { limit: f32::NAN }).is_err());
/// ```
pub fn init<M: Init + ?Sized, R: Rng + ?Sized>(
    model: &mut M,
    rng: &mut R,
    scheme: InitScheme,
) -> Result<(), Error> {
    if let InitScheme::Uniform { limit } = scheme {
        crate::error::check_non_negative(
            limit,
            "initialization limit",
            "initialization limit must be >= 0",
        )?;
    }
    model.init_unchecked(rng, scheme);
    Ok(())
}

/// A uniform draw in `[-limit, limit)` from the top 24 bits of one `u32`.
#[inline]
fn symmetric_uniform<R: Rng + ?Sized>(rng: &mut R, limit: f32) -> f32 {
    let unit = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
    (unit * 2.0 - 1.0) * limit
}

impl<const I: usize, const O: usize, A: Activation> Init for Dense<I, O, A> {
    fn init_unchecked<R: Rng + ?Sized>(&mut self, rng: &mut R, scheme: InitScheme) {
        let limit = match scheme {
            InitScheme::GlorotUniform => crate::math::sqrt(6.0 / (I + O).max(1) as f32),
            InitScheme::HeUniform => crate::math::sqrt(6.0 / I.max(1) as f32),
            InitScheme::Uniform { limit } => limit,
        };
        for w in self.weight.iter_mut().flatten() {
            *w = symmetric_uniform(rng, limit);
        }
        self.bias = [0.0; O];
    }
}

impl<const D: usize, const P: i32> Init for Pow<D, P> {
    fn init_unchecked<R: Rng + ?Sized>(&mut self, _rng: &mut R, _scheme: InitScheme) {}
}

macro_rules! init_tuple {
    ($($m:ident),+) => {
        impl<$($m: Init),+> Init for ($($m,)+) {
            #[allow(non_snake_case)]
            fn init_unchecked<R: Rng + ?Sized>(&mut self, rng: &mut R, scheme: InitScheme) {
                let ($($m,)+) = self;
                $($m.init_unchecked(rng, scheme);)+
            }
        }
    };
}
init_tuple!(A, B);
init_tuple!(A, B, C);
init_tuple!(A, B, C, D);
init_tuple!(A, B, C, D, E);
init_tuple!(A, B, C, D, E, F);
