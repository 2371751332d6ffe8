//! Brownian increments: reproducible per (seed, trajectory, step), or supplied by the caller.
//!
//! Every solver draws its noise through a [`NoiseSource`]. The default source, [`Brownian`],
//! makes the increments of trajectory `m` at step `k` a pure function of `(seed, m, k)`:
//! any step can be replayed in any order, forward-mode gradient passes and finite-difference
//! checks see the same path, and the host and a microcontroller draw the same numbers.
//! [`Coarsened`] sums a fine path into a coarser one, so one Brownian path can be shared by
//! several step sizes (convergence tests do exactly this).

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

use crate::error::Error;
use crate::math;

/// The generator tinysde uses everywhere: xoshiro128++ (32-bit words, cheap on Cortex-M).
pub type NoiseRng = Xoshiro128PlusPlus;

/// A generator seeded from a `u64` (through SplitMix64, as `rand_xoshiro` does).
///
/// ```
/// use rand_core::Rng;
/// let mut a = tinysde::noise::rng_from_seed(42);
/// let mut b = tinysde::noise::rng_from_seed(42);
/// assert_eq!(a.next_u32(), b.next_u32());
/// ```
pub fn rng_from_seed(seed: u64) -> NoiseRng {
    NoiseRng::seed_from_u64(seed)
}

/// One round of SplitMix64: a bijective 64-bit mixer.
#[inline]
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform `f32` in the open interval `(-1, 1)` from the top 24 bits of one `u32`.
#[inline]
fn open_symmetric_unit<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    // (2j + 1) / 2^24 - 1 for j in 0..2^24: symmetric, never exactly 0 or +-1.
    let j = (rng.next_u32() >> 8) as f32;
    (j * 2.0 + 1.0) * (1.0 / 16_777_216.0) - 1.0
}

/// Two independent standard normal numbers by Marsaglia's polar method.
///
/// Draw `x, y` uniform in `(-1, 1)` (24 bits each) until `0 < s = x^2 + y^2 < 1`, then
/// return `x f` and `y f` with `f = sqrt(-2 ln(s) / s)`. About 1.27 pairs of `u32` per call
/// on average; the number of draws is random but fixed by the generator's state, so the
/// result is reproducible. Uses only the math backend's `ln` and `sqrt`.
///
/// ```
/// let mut rng = tinysde::noise::rng_from_seed(3);
/// let (a, b) = tinysde::noise::standard_normal_pair(&mut rng);
/// assert!(a.is_finite() && b.is_finite());
/// ```
pub fn standard_normal_pair<R: Rng + ?Sized>(rng: &mut R) -> (f32, f32) {
    loop {
        let x = open_symmetric_unit(rng);
        let y = open_symmetric_unit(rng);
        let s = x * x + y * y;
        if s < 1.0 && s > 0.0 {
            let f = math::sqrt(-2.0 * math::ln(s) / s);
            return (x * f, y * f);
        }
    }
}

/// Fills `out` with independent standard normals (pairs from [`standard_normal_pair`]; the
/// second number of the last pair is dropped when `out` has odd length).
pub fn fill_standard_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    for chunk in out.chunks_mut(2) {
        let (a, b) = standard_normal_pair(rng);
        chunk[0] = a;
        if let Some(second) = chunk.get_mut(1) {
            *second = b;
        }
    }
}

/// The Brownian increments of one step on `C` noise channels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Increment<const C: usize> {
    /// `dW = W(t + h) - W(t)`, each channel `N(0, h)`.
    pub dw: [f32; C],
    /// A second increment `dZ ~ N(0, h)` independent of `dW`, such that
    /// `I_(1,0) = h (dW + dZ / sqrt 3) / 2` is the time integral of `W - W(t)` over the
    /// step. Order-1.5 methods need it; it is zero when not requested.
    pub dz: [f32; C],
}

/// Where a solver gets its Brownian increments.
///
/// `increment(m, k, h, with_dz)` must be a pure function of its arguments: solvers call it
/// once per step, gradient passes call it again for the same `(m, k)` and must see the same
/// numbers. `dw` must not depend on `with_dz`.
pub trait NoiseSource {
    /// The increments of trajectory `trajectory` over step `step`, of size `h`.
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        h: f32,
        with_dz: bool,
    ) -> Result<Increment<C>, Error>;
}

/// Reproducible Brownian motion: increments are a pure function of `(seed, trajectory, step)`.
///
/// For each `(m, k)` a fresh xoshiro128++ is seeded from `splitmix64` of the seed, `m` and
/// `k`; it draws `C` standard normals for `dW` (scaled by `sqrt h`) and then, if asked, `C`
/// more for `dZ`. Channels `0..C` of a `C`-channel draw are the first `C` normals of the
/// step, so a 1-channel path is the first channel of a 2-channel one.
///
/// ```
/// use tinysde::noise::{Brownian, NoiseSource};
/// let noise = Brownian::new(7);
/// let a = noise.increment::<2>(3, 10, 0.01, false).unwrap();
/// let b = noise.increment::<2>(3, 10, 0.01, true).unwrap();
/// assert_eq!(a.dw, b.dw); // asking for dZ does not change dW
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Brownian {
    seed: u64,
}

impl Brownian {
    /// A Brownian motion for every trajectory, identified by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The seed.
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// The generator for step `step` of trajectory `trajectory`.
    #[inline]
    pub fn step_rng(&self, trajectory: usize, step: u32) -> NoiseRng {
        let key = splitmix64(splitmix64(splitmix64(self.seed) ^ trajectory as u64) ^ step as u64);
        NoiseRng::seed_from_u64(key)
    }
}

impl NoiseSource for Brownian {
    #[inline]
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        h: f32,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        let mut rng = self.step_rng(trajectory, step);
        let scale = math::sqrt(h);
        let mut inc = Increment {
            dw: [0.0; C],
            dz: [0.0; C],
        };
        fill_standard_normal(&mut rng, &mut inc.dw);
        if with_dz {
            fill_standard_normal(&mut rng, &mut inc.dz);
        }
        for x in inc.dw.iter_mut().chain(inc.dz.iter_mut()) {
            *x *= scale;
        }
        Ok(inc)
    }
}

/// A coarser view of a finer noise source: step `k` of size `h` is the sum of fine steps
/// `k * factor .. (k + 1) * factor`, each of size `h / factor`.
///
/// `dZ` is rebuilt from the fine path so that `I_(1,0)` over the coarse step is the exact
/// time integral of the fine piecewise path: with `W_j` the fine partial sums,
/// `I = sum_j (h_f W_j + I_j)` and `dZ = sqrt 3 (2 I / h - dW)`.
///
/// ```
/// use tinysde::noise::{Brownian, Coarsened, NoiseSource};
/// let fine = Brownian::new(1);
/// let coarse = Coarsened::new(fine, 4).unwrap();
/// let c = coarse.increment::<1>(0, 0, 0.4, false).unwrap();
/// let mut sum = 0.0;
/// for k in 0..4 { sum += fine.increment::<1>(0, k, 0.1, false).unwrap().dw[0]; }
/// assert!((c.dw[0] - sum).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Coarsened<S> {
    fine: S,
    factor: u32,
}

impl<S: NoiseSource> Coarsened<S> {
    /// Groups `factor` fine steps into one; `factor` must be at least 1.
    pub fn new(fine: S, factor: u32) -> Result<Self, Error> {
        if factor == 0 {
            return Err(Error::OutOfRange {
                what: "coarsening factor must be >= 1",
            });
        }
        Ok(Self { fine, factor })
    }
}

impl<S: NoiseSource> NoiseSource for Coarsened<S> {
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        h: f32,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        let fine_h = h / self.factor as f32;
        let first = step
            .checked_mul(self.factor)
            .ok_or(Error::NoiseExhausted { trajectory, step })?;
        let mut dw = [0.0f32; C];
        let mut integral = [0.0f32; C];
        for j in 0..self.factor {
            let f = self
                .fine
                .increment::<C>(trajectory, first + j, fine_h, with_dz)?;
            for c in 0..C {
                if with_dz {
                    let fine_integral = fine_h * (f.dw[c] + f.dz[c] / SQRT_3) * 0.5;
                    integral[c] += fine_h * dw[c] + fine_integral;
                }
                dw[c] += f.dw[c];
            }
        }
        let mut dz = [0.0f32; C];
        if with_dz {
            for c in 0..C {
                dz[c] = SQRT_3 * (2.0 * integral[c] / h - dw[c]);
            }
        }
        Ok(Increment { dw, dz })
    }
}

/// `sqrt(3)` rounded to `f32`.
pub(crate) const SQRT_3: f32 = 1.732_050_8;
