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

use crate::error::{check_positive, Error};
use crate::lanes::Lanes;
use crate::math;

// Channel loops over `[f32; C]` and per-level tables of `MAX_TREE_DEPTH + 1` entries indexed
// by levels that never exceed the tree's depth: in bounds by construction.
#[allow(
    clippy::indexing_slicing,
    reason = "const-size channel loops and depth-bounded level tables"
)]
mod tree;
pub(crate) use tree::TreeCache;
pub use tree::{BrownianTree, MAX_TREE_DEPTH};

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

/// A generator seeded from 16 bytes, e.g. read from a board's hardware RNG (any `rand_core`
/// version, or none: nrf-hal's `Rng::random`, a TRNG register read four times).
///
/// The bytes are xoshiro128++'s state, four little-endian `u32` words (all zeros, which
/// xoshiro cannot use, is replaced by `rng_from_seed(0)`'s state). To reproduce a run on the
/// host, log the 16 bytes; or draw a `u64` from the hardware RNG and use [`rng_from_seed`].
///
/// ```
/// use rand_core::Rng;
/// let mut a = tinysde::noise::rng_from_bytes([7; 16]);
/// let mut b = tinysde::noise::rng_from_bytes([7; 16]);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
pub fn rng_from_bytes(seed: [u8; 16]) -> NoiseRng {
    NoiseRng::from_seed(seed)
}

/// A rand_core 0.9 generator used as a rand_core 0.10 [`Rng`] (feature `rand_core_09`).
///
/// tinysde takes rand_core 0.10 generators ([`init`](crate::nn::init)); the embedded HALs'
/// hardware RNGs (nrf-hal's `Rng`, rp2040-hal's `RingOscillator`, ...) implement rand_core
/// 0.9's `RngCore`. Wrap one (or a `&mut` to one) to pass it on: each call is forwarded, so
/// the words drawn are exactly the wrapped generator's.
///
/// ```
/// # #[cfg(feature = "rand_core_09")] {
/// use tinysde::nn::{init, Dense, InitScheme, Tanh};
/// use tinysde::noise::Rng09;
/// // Stands for a HAL's hardware RNG (it implements rand_core 0.9).
/// struct Counter(u32);
/// impl rand_core_09::RngCore for Counter {
///     fn next_u32(&mut self) -> u32 { self.0 = self.0.wrapping_add(0x9E37_79B9); self.0 }
///     fn next_u64(&mut self) -> u64 { u64::from(self.next_u32()) << 32 | u64::from(self.next_u32()) }
///     fn fill_bytes(&mut self, dst: &mut [u8]) { dst.iter_mut().for_each(|b| *b = self.next_u32() as u8) }
/// }
/// let mut hardware = Counter(0);
/// let mut layer = Dense::<2, 3, Tanh>::default();
/// init(&mut layer, &mut Rng09(&mut hardware), InitScheme::GlorotUniform).unwrap();
/// // Or seed tinysde's generator once from it (reproducible: log the seed).
/// let mut rng = tinysde::noise::rng_from_rng09(&mut hardware);
/// # let _ = &mut rng;
/// # }
/// ```
#[cfg(feature = "rand_core_09")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng09<R>(pub R);

#[cfg(feature = "rand_core_09")]
impl<R: rand_core_09::RngCore> rand_core::TryRng for Rng09<R> {
    type Error = core::convert::Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    #[inline]
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

/// tinysde's generator seeded with 16 bytes from a rand_core 0.9 generator (feature
/// `rand_core_09`): [`rng_from_bytes`] of `rng.fill_bytes`.
#[cfg(feature = "rand_core_09")]
pub fn rng_from_rng09<R: rand_core_09::RngCore + ?Sized>(rng: &mut R) -> NoiseRng {
    let mut seed = [0u8; 16];
    rng.fill_bytes(&mut seed);
    rng_from_bytes(seed)
}

/// One round of SplitMix64: a bijective 64-bit mixer.
#[inline]
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal number from 32 uniform bits, by inverting the normal CDF.
///
/// The bits give `p = (j + 1/2) / 2^32`; the result is `Phi^-1(p)` by Wichura's algorithm
/// AS241 (PPND7, relative accuracy about 1e-7, i.e. f32 precision): a rational function of
/// `(p - 1/2)^2` for the central 85% of draws and of `sqrt(-ln(min(p, 1 - p)))` in the
/// tails. The tail branch works from `min(p, 1 - p)` computed exactly from the integer, so
/// the map is exactly antisymmetric (`j` and `!j` give opposite numbers) and reaches
/// `|z| = 6.34` at the extremes. One `u32` per normal, no rejection, and only `+ - * /`,
/// `ln` and `sqrt`: the same bits on every target.
///
/// ```
/// use tinysde::noise::normal_from_bits;
/// assert!(normal_from_bits(u32::MAX / 2).abs() < 1e-6); // the median
/// assert_eq!(normal_from_bits(7), -normal_from_bits(!7));
/// ```
#[inline]
pub fn normal_from_bits(j: u32) -> f32 {
    let q = centred(j);
    if q.abs() <= CENTRAL_HALF_WIDTH {
        central_quantile(q)
    } else {
        tail_quantile(j, q)
    }
}

/// `|p - 1/2|` up to which [`normal_from_bits`] takes AS241's central branch.
const CENTRAL_HALF_WIDTH: f32 = 0.425;

/// `2^-32`.
const TWO_POW_M32: f32 = 1.0 / 4_294_967_296.0;

/// `q = p - 1/2` for `p = (j + 1/2) / 2^32`: `(2 j - 2^32 + 1) / 2^33`, an odd integer
/// over a power of two, so `j` and `!j` give exactly opposite numbers (rounding to `f32` is
/// symmetric).
#[inline(always)]
fn centred(j: u32) -> f32 {
    odd_integer_to_f32(j) * (TWO_POW_M32 * 0.5)
}

/// `Phi^-1(1/2 + q)` for `|q| <= 0.425`: AS241's rational function of `(q^2 - 0.425^2)`.
/// Branch-free, so that it runs on all lanes of a batch at once (see [`normals_from_bits`]).
#[inline(always)]
fn central_quantile(q: f32) -> f32 {
    let r = 0.180_625 - q * q;
    let num = ((59.109_375 * r + 159.291_13) * r + 50.434_27) * r + 3.387_132_7;
    let den = ((67.187_56 * r + 78.757_76) * r + 17.895_17) * r + 1.0;
    q * num / den
}

/// `Phi^-1(1/2 + q)` for `|q| > 0.425`, where `q = centred(j)`: AS241's tail branch.
#[inline]
fn tail_quantile(j: u32, q: f32) -> f32 {
    // The smaller tail probability: p below the median, 1 - p = (!j + 1/2) / 2^32 above.
    let tail = (if q < 0.0 { j } else { !j }) as f32 + 0.5;
    // tail >= 2^-33, so r = sqrt(-ln tail) <= 4.8 and AS241's third branch (r > 5) is never needed.
    let r = math::sqrt(-math::ln(tail * TWO_POW_M32)) - 1.6;
    let z = (((0.170_238_21 * r + 1.306_728_5) * r + 2.756_815_4) * r + 1.423_437_3)
        / ((0.120_211_33 * r + 0.737_001_6) * r + 1.0);
    if q < 0.0 {
        -z
    } else {
        z
    }
}

/// [`normal_from_bits`] of each of `N` words, the same bits lane by lane, written so that
/// the compiler vectorizes it: the central branch runs on every lane (straight-line
/// arithmetic), and the tail branch (15% of draws, with a logarithm and a square root) only
/// on the lanes that need it, after one test whether any does.
#[inline(always)]
#[allow(
    clippy::indexing_slicing,
    clippy::needless_range_loop,
    reason = "0..N loops over [_; N] arrays vectorize"
)]
fn normals_from_bits<const N: usize>(bits: [u32; N]) -> [f32; N] {
    let mut q = [0.0f32; N];
    let mut z = [0.0f32; N];
    let mut any_tail = false;
    for j in 0..N {
        q[j] = centred(bits[j]);
        z[j] = central_quantile(q[j]);
        any_tail |= q[j].abs() > CENTRAL_HALF_WIDTH;
    }
    if any_tail {
        for j in 0..N {
            if q[j].abs() > CENTRAL_HALF_WIDTH {
                z[j] = tail_quantile(bits[j], q[j]);
            }
        }
    }
    z
}

/// `2 j - 2^32 + 1` rounded to the nearest `f32` (ties to even), as the 64-bit conversion
/// `(2 * j as i64 - (1 << 32) + 1) as f32` gives it, without that conversion (a library
/// call of some 30 instructions on a 32-bit core). With `s = j - 2^31` the integer is `2 s + 1 = 2 hi + lo`,
/// `hi = s` with its low 8 bits cleared and `lo = 2 (s mod 256) + 1`; both convert to `f32`
/// exactly (`|hi| <= 2^31` is a multiple of 2^8, `lo <= 511`), `2 hi` is exact, so the one
/// rounding left is that of the exact sum: the correctly rounded integer.
#[inline]
fn odd_integer_to_f32(j: u32) -> f32 {
    let s = (j ^ 0x8000_0000) as i32;
    let hi = (s & !0xFF) as f32;
    let lo = ((s & 0xFF) * 2 + 1) as f32;
    hi * 2.0 + lo
}

/// Fills `out` with independent standard normals, one [`normal_from_bits`] per `u32` drawn.
///
/// ```
/// let mut z = [0.0f32; 4];
/// tinysde::noise::fill_standard_normal(&mut tinysde::noise::rng_from_seed(3), &mut z);
/// assert!(z.iter().all(|x| x.is_finite()));
/// ```
pub fn fill_standard_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    for x in out {
        *x = normal_from_bits(rng.next_u32());
    }
}

/// The Brownian increments of one step on `C` noise channels: `f32` for one trajectory,
/// or a lane type ([`F32x<L>`](crate::lanes::F32x)) holding one trajectory per lane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Increment<const C: usize, V = f32> {
    /// `dW = W(t + h) - W(t)`, each channel `N(0, h)`.
    pub dw: [V; C],
    /// A second increment `dZ ~ N(0, h)` independent of `dW`, such that
    /// `I_(1,0) = h (dW + dZ / sqrt 3) / 2` is the time integral of `W - W(t)` over the
    /// step. Order-1.5 methods need it; it is zero when not requested.
    pub dz: [V; C],
}

/// A step size checked once (finite and `> 0`) together with its noise scale `sqrt(h)`.
///
/// The solvers take both from their step plan, where `sqrt(h)` is computed once per grid
/// segment rather than once per increment (`sqrt` is a software routine on a Cortex-M4F),
/// and pass them to [`NoiseSource::increment_sized`].
///
/// ```
/// use tinysde::noise::StepSize;
/// let size = StepSize::new(0.25)?;
/// assert_eq!((size.h(), size.sqrt_h()), (0.25, 0.5));
/// assert!(StepSize::new(0.0).is_err() && StepSize::new(f32::NAN).is_err());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepSize {
    h: f32,
    sqrt_h: f32,
}

impl StepSize {
    /// The step size `h` and `sqrt(h)`; errors as [`NoiseSource::increment`] does for a
    /// non-finite or non-positive `h`.
    #[inline]
    pub fn new(h: f32) -> Result<Self, Error> {
        check_step_size(h)?;
        Ok(Self {
            h,
            sqrt_h: math::sqrt(h),
        })
    }

    /// A step size from a step plan, which checked `h` and computed `sqrt_h = sqrt(h)`.
    #[inline]
    pub(crate) const fn planned(h: f32, sqrt_h: f32) -> Self {
        Self { h, sqrt_h }
    }

    /// The step size.
    #[inline]
    pub const fn h(self) -> f32 {
        self.h
    }

    /// `sqrt(h)`, the standard deviation of a Brownian increment over the step.
    #[inline]
    pub const fn sqrt_h(self) -> f32 {
        self.sqrt_h
    }
}

/// Where a solver gets its Brownian increments.
///
/// `increment(m, k, h, with_dz)` must be a pure function of its arguments: solvers call it
/// once per step, gradient passes call it again for the same `(m, k)` and must see the same
/// numbers. `dw` must not depend on `with_dz`.
///
/// A source implements `increment`; the other two methods have defaults built on it. One
/// that overrides [`increment_sized`](NoiseSource::increment_sized) or
/// [`increment_lanes`](NoiseSource::increment_lanes) (to skip work, or to draw several
/// trajectories at once) must give exactly the numbers of `increment`: solvers mix the
/// three, and lane-wide ensembles are bit-identical to one-trajectory ones only so.
pub trait NoiseSource {
    /// The increments of trajectory `trajectory` over step `step`, of size `h` (finite and
    /// `> 0`; the built-in sources return an error otherwise).
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        h: f32,
        with_dz: bool,
    ) -> Result<Increment<C>, Error>;

    /// The same increments as [`increment`](NoiseSource::increment)`(trajectory, step,
    /// size.h(), with_dz)`, for a step size already checked and with `sqrt(h)` at hand:
    /// the fixed-step solvers call this one. The default forwards to `increment`;
    /// [`Brownian`] overrides it to skip the check and the square root, and cannot fail.
    #[inline]
    fn increment_sized<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        size: StepSize,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        self.increment(trajectory, step, size.h(), with_dz)
    }

    /// The increments of step `step` for the trajectories `first..first + count`, one per
    /// lane of `V` (`f32`, or [`F32x<L>`](crate::lanes::F32x) for `L` trajectories at once):
    /// lane `j` holds trajectory `first + min(j, count - 1)` (saturating), so lanes past
    /// `count` repeat the last trajectory, and `count = 0` gives `first` in every lane. Each
    /// lane has exactly the bits of [`increment_sized`](NoiseSource::increment_sized) for its
    /// trajectory; `dz` is zero unless `with_dz`.
    ///
    /// The ensembles draw their noise here. The default calls `increment_sized` lane by
    /// lane (and returns the first error); [`Brownian`] overrides it to draw all lanes in
    /// one pass of vector instructions.
    ///
    /// ```
    /// use tinysde::noise::{Brownian, NoiseSource, StepSize};
    /// use tinysde::F32x;
    /// let noise = Brownian::new(5);
    /// let size = StepSize::new(0.01)?;
    /// // Trajectories 10, 11, 12, then 12 again in the last lane.
    /// let lanes = noise.increment_lanes::<2, F32x<4>>(10, 3, 7, size, true)?;
    /// for (j, m) in [10, 11, 12, 12].into_iter().enumerate() {
    ///     let one = noise.increment_sized::<2>(m, 7, size, true)?;
    ///     assert_eq!(lanes.dw.map(|w| w.0[j]), one.dw);
    ///     assert_eq!(lanes.dz.map(|z| z.0[j]), one.dz);
    /// }
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[inline]
    fn increment_lanes<const C: usize, V: Lanes>(
        &self,
        first: usize,
        count: usize,
        step: u32,
        size: StepSize,
        with_dz: bool,
    ) -> Result<Increment<C, V>, Error> {
        lane_by_lane(self, first, count, step, size, with_dz)
    }
}

/// [`NoiseSource::increment_lanes`] by `increment_sized` lane by lane (its default; for
/// sources that override it only in some cases).
#[inline]
pub(crate) fn lane_by_lane<N: NoiseSource + ?Sized, const C: usize, V: Lanes>(
    noise: &N,
    first: usize,
    count: usize,
    step: u32,
    size: StepSize,
    with_dz: bool,
) -> Result<Increment<C, V>, Error> {
    let mut inc = Increment {
        dw: [V::ZERO; C],
        dz: [V::ZERO; C],
    };
    for j in 0..V::WIDTH {
        let trajectory = lane_trajectory(first, count, j);
        let lane = noise.increment_sized::<C>(trajectory, step, size, with_dz)?;
        for (dw, &w) in inc.dw.iter_mut().zip(&lane.dw) {
            dw.set_lane(j, w);
        }
        if with_dz {
            for (dz, &z) in inc.dz.iter_mut().zip(&lane.dz) {
                dz.set_lane(j, z);
            }
        }
    }
    Ok(inc)
}

/// The trajectory in lane `j` of a batch of `count` trajectories from `first`: the last
/// one repeats in the lanes past `count`.
#[inline(always)]
fn lane_trajectory(first: usize, count: usize, j: usize) -> usize {
    first.saturating_add(j.min(count.saturating_sub(1)))
}

/// Reproducible Brownian motion: increments are a pure function of `(seed, trajectory, step)`.
///
/// Counter-based, like the keyed generators of JAX and diffrax: for trajectory `m` and step
/// `k` a step key `K = splitmix64(splitmix64(splitmix64(seed) ^ m) ^ k)` is formed, and
/// channel `c` takes the 64 bits `splitmix64(K + c * 0x9E3779B97F4A7C15)` (the SplitMix64
/// sequence seeded at `K`). The low 32 bits give `dW_c`, the high 32 bits `dZ_c`, each by
/// [`normal_from_bits`] scaled by `sqrt h`. So any step can be drawn in any order, a
/// 1-channel path is the first channel of a 2-channel one, and `dW` does not depend on
/// whether `dZ` is asked for.
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
    /// `splitmix64(seed)`, computed once.
    key: u64,
}

impl Brownian {
    /// A Brownian motion for every trajectory, identified by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self {
            seed,
            key: splitmix64(seed),
        }
    }

    /// The seed.
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// The key of step `step` of trajectory `trajectory`.
    #[inline]
    const fn step_key(&self, trajectory: usize, step: u32) -> u64 {
        splitmix64(splitmix64(self.key ^ trajectory as u64) ^ step as u64)
    }
}

/// The 64 random bits of channel `channel` under a step key.
#[inline]
const fn channel_bits(step_key: u64, channel: usize) -> u64 {
    splitmix64(step_key.wrapping_add((channel as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
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
        Ok(self.increment_scaled(trajectory, step, StepSize::new(h)?.sqrt_h, with_dz))
    }

    #[inline]
    fn increment_sized<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        size: StepSize,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        Ok(self.increment_scaled(trajectory, step, size.sqrt_h, with_dz))
    }

    #[inline(always)]
    fn increment_lanes<const C: usize, V: Lanes>(
        &self,
        first: usize,
        count: usize,
        step: u32,
        size: StepSize,
        with_dz: bool,
    ) -> Result<Increment<C, V>, Error> {
        Ok(self.lanes_scaled(first, count, step, size.sqrt_h, with_dz))
    }
}

impl Brownian {
    /// The increments with standard deviation `scale`: the one place they are drawn.
    #[inline]
    fn increment_scaled<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        scale: f32,
        with_dz: bool,
    ) -> Increment<C> {
        let key = self.step_key(trajectory, step);
        let mut inc = Increment {
            dw: [0.0; C],
            dz: [0.0; C],
        };
        for (c, (dw, dz)) in inc.dw.iter_mut().zip(inc.dz.iter_mut()).enumerate() {
            let bits = channel_bits(key, c);
            *dw = normal_from_bits(bits as u32) * scale;
            if with_dz {
                *dz = normal_from_bits((bits >> 32) as u32) * scale;
            }
        }
        inc
    }
}

impl Brownian {
    /// [`NoiseSource::increment_lanes`] with standard deviation `scale`. Lane types whose
    /// width is a multiple of 16, 8 or 4 are drawn in blocks of that many lanes by
    /// [`block_scaled`](Self::block_scaled) (measured: whole-width blocks of 16 and 8 take
    /// fewer instructions than blocks of 4 or 8 with 256-bit vectors); one lane and other
    /// widths lane by lane. Each lane computes exactly the operations of the one-lane draw.
    #[inline(always)]
    fn lanes_scaled<const C: usize, V: Lanes>(
        &self,
        first: usize,
        count: usize,
        step: u32,
        scale: f32,
        with_dz: bool,
    ) -> Increment<C, V> {
        // `V::WIDTH` is a constant: the optimizer keeps one of these branches.
        if V::WIDTH % 16 == 0 {
            self.fill_blocks::<C, V, 16>(first, count, step, scale, with_dz)
        } else if V::WIDTH % 8 == 0 {
            self.fill_blocks::<C, V, 8>(first, count, step, scale, with_dz)
        } else if V::WIDTH % 4 == 0 {
            self.fill_blocks::<C, V, 4>(first, count, step, scale, with_dz)
        } else {
            self.lane_by_lane_scaled(first, count, step, scale, with_dz)
        }
    }

    /// [`lanes_scaled`](Self::lanes_scaled) one lane at a time: one lane (left to the
    /// inliner, as the one-lane draw always was) and widths that are not a multiple of 4.
    #[inline]
    fn lane_by_lane_scaled<const C: usize, V: Lanes>(
        &self,
        first: usize,
        count: usize,
        step: u32,
        scale: f32,
        with_dz: bool,
    ) -> Increment<C, V> {
        let mut inc = Increment {
            dw: [V::ZERO; C],
            dz: [V::ZERO; C],
        };
        for j in 0..V::WIDTH {
            let trajectory = lane_trajectory(first, count, j);
            let one = self.increment_scaled::<C>(trajectory, step, scale, with_dz);
            for ((dw, dz), (&w, &z)) in inc
                .dw
                .iter_mut()
                .zip(inc.dz.iter_mut())
                .zip(one.dw.iter().zip(&one.dz))
            {
                dw.set_lane(j, w);
                dz.set_lane(j, z);
            }
        }
        inc
    }

    /// The lanes of `V` (a multiple of `N`), block by block.
    #[inline(always)]
    fn fill_blocks<const C: usize, V: Lanes, const N: usize>(
        &self,
        first: usize,
        count: usize,
        step: u32,
        scale: f32,
        with_dz: bool,
    ) -> Increment<C, V> {
        let mut inc = Increment {
            dw: [V::ZERO; C],
            dz: [V::ZERO; C],
        };
        let mut base = 0;
        while base < V::WIDTH {
            let block = if with_dz {
                self.block_scaled::<C, N, true>(first, count, base, step, scale)
            } else {
                self.block_scaled::<C, N, false>(first, count, base, step, scale)
            };
            for (lanes, values) in inc.dw.iter_mut().zip(&block.dw) {
                for (j, &w) in values.iter().enumerate() {
                    lanes.set_lane(base + j, w);
                }
            }
            if with_dz {
                for (lanes, values) in inc.dz.iter_mut().zip(&block.dz) {
                    for (j, &z) in values.iter().enumerate() {
                        lanes.set_lane(base + j, z);
                    }
                }
            }
            base += N;
        }
        inc
    }

    /// The increments of lanes `base..base + N` (see [`lane_trajectory`]) with standard
    /// deviation `scale`, as plain arrays: straight-line code over `N` lanes (step keys,
    /// SplitMix64, [`normals_from_bits`]) that the compiler turns into vector instructions.
    /// `dz` is drawn only `WITH_DZ` (zero otherwise).
    #[inline(always)]
    #[allow(
        clippy::indexing_slicing,
        clippy::needless_range_loop,
        reason = "0..N loops over [_; N] arrays vectorize"
    )]
    fn block_scaled<const C: usize, const N: usize, const WITH_DZ: bool>(
        &self,
        first: usize,
        count: usize,
        base: usize,
        step: u32,
        scale: f32,
    ) -> Increment<C, [f32; N]> {
        let mut keys = [0u64; N];
        for j in 0..N {
            keys[j] = self.step_key(lane_trajectory(first, count, base + j), step);
        }
        let mut inc = Increment {
            dw: [[0.0f32; N]; C],
            dz: [[0.0f32; N]; C],
        };
        for c in 0..C {
            let mut low = [0u32; N];
            let mut high = [0u32; N];
            for j in 0..N {
                let bits = channel_bits(keys[j], c);
                low[j] = bits as u32;
                high[j] = (bits >> 32) as u32;
            }
            let dw = normals_from_bits(low);
            for j in 0..N {
                inc.dw[c][j] = dw[j] * scale;
            }
            if WITH_DZ {
                let dz = normals_from_bits(high);
                for j in 0..N {
                    inc.dz[c][j] = dz[j] * scale;
                }
            }
        }
        inc
    }
}

/// A coarser view of a finer noise source: step `k` of size `h` is the sum of fine steps
/// `k * factor .. (k + 1) * factor`, each of size `h / factor`.
///
/// `dZ` is rebuilt from the fine path so that `I_(1,0)` over the coarse step is the exact
/// time integral of the fine piecewise path: with `W_j` the fine partial sums,
/// `I = sum_j (h_f W_j + I_j)` and `dZ = sqrt 3 (2 I / h - dW)` (accumulated as `I / h`, so
/// that no finite step size overflows).
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
        check_step_size(h)?;
        let fine_h = h / self.factor as f32;
        if fine_h <= 0.0 {
            return Err(Error::OutOfRange {
                what: "step size divided by the coarsening factor underflows to 0",
            });
        }
        // The fine steps first ..= first + factor - 1 must all be valid u32 step indices.
        let exhausted = Error::NoiseExhausted { trajectory, step };
        let first = step.checked_mul(self.factor).ok_or(exhausted)?;
        let last = first
            .checked_add(self.factor.saturating_sub(1))
            .ok_or(exhausted)?;
        // `scaled` accumulates I / h rather than I: the same sum divided through by h, whose
        // terms are O(sqrt h), so nothing overflows even for h near f32::MAX.
        let factor = self.factor as f32;
        let mut dw = [0.0f32; C];
        let mut scaled = [0.0f32; C];
        for fine_step in first..=last {
            let f = self
                .fine
                .increment::<C>(trajectory, fine_step, fine_h, with_dz)?;
            for (((w, i), &fw), &fz) in dw.iter_mut().zip(&mut scaled).zip(&f.dw).zip(&f.dz) {
                if with_dz {
                    // (h_f W_j + I_j) / h with h_f / h = 1 / factor and
                    // I_j = h_f (dW_j + dZ_j / sqrt 3) / 2.
                    *i += (*w + (fw + fz / SQRT_3) * 0.5) / factor;
                }
                *w += fw;
            }
        }
        let mut dz = [0.0f32; C];
        if with_dz {
            for ((z, &i), &w) in dz.iter_mut().zip(&scaled).zip(&dw) {
                *z = SQRT_3 * (2.0 * i - w);
            }
        }
        Ok(Increment { dw, dz })
    }
}

/// The step size of an increment must be finite and positive.
fn check_step_size(h: f32) -> Result<(), Error> {
    check_positive(h, "noise step size", "noise step size must be > 0")
}

/// `sqrt(3)` rounded to `f32`.
pub(crate) const SQRT_3: f32 = 1.732_050_8;

#[cfg(test)]
mod seeding_tests {
    use super::*;
    use crate::nn::{init, Dense, InitScheme, Tanh};

    /// xoshiro128++ seeded through SplitMix64, written out from the published algorithms
    /// (independently of rand_xoshiro): the words every existing seed must keep producing.
    struct Reference([u32; 4]);

    impl Reference {
        fn from_u64(seed: u64) -> Self {
            let a = splitmix64(seed);
            let b = splitmix64(seed.wrapping_add(0x9E37_79B9_7F4A_7C15));
            Reference([a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32])
        }

        fn next(&mut self) -> u32 {
            let s = &mut self.0;
            let out = s[0].wrapping_add(s[3]).rotate_left(7).wrapping_add(s[0]);
            let t = s[1] << 9;
            s[2] ^= s[0];
            s[3] ^= s[1];
            s[1] ^= s[2];
            s[0] ^= s[3];
            s[2] ^= t;
            s[3] = s[3].rotate_left(11);
            out
        }
    }

    #[test]
    fn every_seed_keeps_its_bits() {
        for seed in [0u64, 1, 2, 7, 42, 0xDEAD_BEEF, u64::MAX] {
            let mut ours = rng_from_seed(seed);
            let mut reference = Reference::from_u64(seed);
            for _ in 0..64 {
                assert_eq!(ours.next_u32(), reference.next(), "seed {seed}");
            }
        }
        // The first words of seed 1 (the README's init seed), written down.
        let mut rng = rng_from_seed(1);
        let first: [u32; 4] = core::array::from_fn(|_| rng.next_u32());
        assert_eq!(first, FIRST_WORDS_OF_SEED_1);
    }

    #[test]
    fn bytes_are_the_state_words() {
        let mut bytes = [0u8; 16];
        let state = Reference::from_u64(42).0;
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let mut from_bytes = rng_from_bytes(bytes);
        let mut from_seed = rng_from_seed(42);
        for _ in 0..64 {
            assert_eq!(from_bytes.next_u32(), from_seed.next_u32());
        }
        // The all-zero state, which xoshiro cannot leave, is replaced (not silently stuck).
        let mut zero = rng_from_bytes([0; 16]);
        assert!((0..4).any(|_| zero.next_u32() != 0));
    }

    const FIRST_WORDS_OF_SEED_1: [u32; 4] = [0x7FF7_8DE4, 0x9A17_0265, 0xDAC1_27B8, 0x9859_E914];

    #[cfg(feature = "rand_core_09")]
    #[test]
    fn a_rand_core_09_generator_initializes_with_the_same_bits() {
        /// A rand_core 0.9 generator (what the HALs implement) replaying xoshiro128++.
        struct Hal(Reference);
        impl rand_core_09::RngCore for Hal {
            fn next_u32(&mut self) -> u32 {
                self.0.next()
            }
            fn next_u64(&mut self) -> u64 {
                let lo = u64::from(self.0.next());
                lo | u64::from(self.0.next()) << 32
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                for chunk in dst.chunks_mut(4) {
                    let word = self.0.next().to_le_bytes();
                    chunk.copy_from_slice(&word[..chunk.len()]);
                }
            }
        }
        for seed in [1u64, 2, 7] {
            let mut direct = Dense::<3, 5, Tanh>::default();
            init(
                &mut direct,
                &mut rng_from_seed(seed),
                InitScheme::GlorotUniform,
            )
            .unwrap();
            let mut hal = Hal(Reference::from_u64(seed));
            let mut wrapped = Dense::<3, 5, Tanh>::default();
            init(
                &mut wrapped,
                &mut Rng09(&mut hal),
                InitScheme::GlorotUniform,
            )
            .unwrap();
            let bits = |d: &Dense<3, 5, Tanh>| d.weight.map(|row| row.map(f32::to_bits));
            assert_eq!(bits(&direct), bits(&wrapped), "seed {seed}");
            // u64 draws go through unchanged too.
            let mut a = rng_from_seed(seed);
            let mut b = Rng09(Hal(Reference::from_u64(seed)));
            assert_eq!(a.next_u64(), rand_core::Rng::next_u64(&mut b));
        }
        // Seeding from 16 drawn bytes is rng_from_bytes of those bytes.
        let mut hal = Hal(Reference::from_u64(9));
        let mut bytes = [0u8; 16];
        rand_core_09::RngCore::fill_bytes(&mut Hal(Reference::from_u64(9)), &mut bytes);
        let mut expect = rng_from_bytes(bytes);
        let mut got = rng_from_rng09(&mut hal);
        assert_eq!(expect.next_u64(), got.next_u64());
    }
}
