//! Parameter-free element-wise feature maps.

use super::{Layer, ParamSeed, Parameters};
use crate::real::Real;

/// `u -> u^P` element-wise on `D` components, with no parameters.
///
/// The seed model feeds its state through [`Cube`] before the drift network.
///
/// ```
/// use tinysde::nn::{Cube, Layer, ParamSeed};
/// let y: [f32; 2] = Cube::<2>::default().forward(&[2.0, -1.0], ParamSeed::NONE);
/// assert_eq!(y, [8.0, -1.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pow<const D: usize, const P: i32>;

/// `u -> u^3` element-wise.
pub type Cube<const D: usize> = Pow<D, 3>;

impl<const D: usize, const P: i32> Parameters for Pow<D, P> {
    const PARAMS: usize = 0;
    fn read_unchecked(&self, _out: &mut [f32]) {}
    fn write_unchecked(&mut self, _src: &[f32]) {}
}

impl<T: Real, const D: usize, const P: i32> Layer<T> for Pow<D, P> {
    type Input = [T; D];
    type Output = [T; D];
    #[inline]
    fn forward(&self, x: &[T; D], _seed: ParamSeed) -> [T; D] {
        x.map(|u| u.powi(P))
    }
}
