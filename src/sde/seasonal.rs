//! A neural SDE whose networks also see the time of the cycle: [`Seasonal`].

use rand_core::Rng;

use super::vjp::network_vjp;
use super::{Sde, SdeVjp};
use crate::nn::{Backward, Init, InitScheme, Layer, ParamSeed, Parameters};
use crate::real::{PlainReal, Real};
use crate::weights::Describe;

/// A neural SDE with diagonal noise whose drift and diffusion networks see, besides the
/// state `u` (`D` values), the phase of the model time `t` in each of `H` periods:
/// `du = F(x) dt + G(x) .* dW` with
/// `x = [u_0, ..., u_{D-1}, sin(2 pi t / P_0), cos(2 pi t / P_0), ..., sin(2 pi t / P_{H-1}), cos(...)]`,
/// so both networks map `[T; E]` to `[T; D]` with `E = D + 2 H` (checked when the model is
/// compiled). A one-dimensional state then knows the time of year (or of day, or of any
/// cycle of known length); the time the solver passes is the model's own time, which the
/// forecaster and the series training keep absolute (not restarted per window).
///
/// The features are computed in `f32` with the crate's libm functions ([`crate::math`]),
/// the phase reduced to one cycle first (`t / P` minus its integer part), so host and
/// Cortex-M give the same bits.
///
/// Parameters, in flat order: the `H` periods (in model time units), then the drift
/// network's, then the diffusion network's. The periods travel with the parameters (so a
/// model file carries them, CRC-checked, and a device loads them with the weights), but
/// they are **not trained**: their gradient is zero in forward and in reverse mode, so an
/// optimizer step without weight decay (Adam, SGD) leaves them bit for bit. They must be
/// finite and non-zero; [`Seasonal::new`] and the [`Default`] (every period 1) give such
/// values, and [`Init`] leaves them as they are.
///
/// ```
/// use tinysde::nn::{Dense, Identity, ParamSeed, Parameters, QuickSigmoid, QuickTanh};
/// use tinysde::sde::{Sde, Seasonal};
/// // One observed value, one yearly cycle of 52 weekly steps: networks of 1 + 2 inputs.
/// type Drift = (Dense<3, 16, QuickTanh>, Dense<16, 1, Identity>);
/// type Diffusion = (Dense<3, 16, QuickSigmoid>, Dense<16, 1, Identity>);
/// type Model = Seasonal<1, Drift, Diffusion>;
/// assert_eq!(Model::PARAMS, 1 + 81 + 81);
/// let model = Model::new([52.0], Drift::default(), Diffusion::default())?;
/// assert_eq!(model.periods(), &[52.0]);
/// // Zero networks: zero drift, whatever the season.
/// assert_eq!(model.drift(13.0, &[0.5f32], ParamSeed::NONE), [0.0]);
/// // The features: sin and cos of the phase (a quarter cycle: sin 1, cos 0).
/// let [[s, c]] = model.features(13.0);
/// assert!((s - 1.0).abs() < 1e-6 && c.abs() < 1e-6);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seasonal<const H: usize, F, G> {
    periods: [f32; H],
    /// The drift network `F`, on `[T; D + 2 H]`.
    pub drift: F,
    /// The diffusion network `G`, on `[T; D + 2 H]`.
    pub diffusion: G,
}

impl<const H: usize, F: Default, G: Default> Default for Seasonal<H, F, G> {
    /// Zero networks and every period 1 (set the periods with [`Seasonal::set_periods`] or
    /// by loading a model file).
    fn default() -> Self {
        Self {
            periods: [1.0; H],
            drift: F::default(),
            diffusion: G::default(),
        }
    }
}

impl<const H: usize, F, G> Seasonal<H, F, G> {
    /// A seasonal neural SDE with `periods` (model time units) and its two networks.
    /// Errors ([`crate::Error::OutOfRange`]) if a period is not finite or not `> 0`.
    pub fn new(periods: [f32; H], drift: F, diffusion: G) -> Result<Self, crate::Error> {
        check_periods(&periods)?;
        Ok(Self {
            periods,
            drift,
            diffusion,
        })
    }

    /// The periods, in model time units.
    pub fn periods(&self) -> &[f32; H] {
        &self.periods
    }

    /// Sets the periods (model time units). Errors ([`crate::Error::OutOfRange`]), and
    /// changes nothing, if one is not finite or not `> 0`.
    pub fn set_periods(&mut self, periods: [f32; H]) -> Result<(), crate::Error> {
        check_periods(&periods)?;
        self.periods = periods;
        Ok(())
    }

    /// The time features at model time `t`: `[sin, cos]` of `2 pi t / P` per period, with
    /// the phase `t / P` reduced to within one cycle of 0 (by its integer part) first.
    #[inline]
    pub fn features(&self, t: f32) -> [[f32; 2]; H] {
        let mut out = [[0.0f32; 2]; H];
        for (o, &p) in out.iter_mut().zip(&self.periods) {
            let phase = t / p;
            // Truncation toward zero is exact; past 2^24 the phase has no fraction left.
            let whole = if phase.abs() < 16_777_216.0 {
                phase as i32 as f32
            } else {
                phase
            };
            let angle = core::f32::consts::TAU * (phase - whole);
            *o = [crate::math::sin(angle), crate::math::cos(angle)];
        }
        out
    }

    /// The networks' input: the state, then the features.
    #[inline]
    fn input<T: Real, const D: usize, const E: usize>(&self, t: f32, u: &[T; D]) -> [T; E] {
        const { assert!(E == D + 2 * H, "Seasonal: the networks take D + 2 H inputs") };
        let feats = self.features(t);
        let mut x = [T::ZERO; E];
        for (xi, &ui) in x.iter_mut().zip(u) {
            *xi = ui;
        }
        for (pair, f) in x
            .get_mut(D..)
            .unwrap_or(&mut [])
            .chunks_exact_mut(2)
            .zip(&feats)
        {
            if let [s, c] = pair {
                *s = T::cst(f[0]);
                *c = T::cst(f[1]);
            }
        }
        x
    }
}

fn check_periods(periods: &[f32]) -> Result<(), crate::Error> {
    if periods.iter().all(|p| p.is_finite() && *p > 0.0) {
        Ok(())
    } else {
        Err(crate::Error::OutOfRange {
            what: "seasonal periods must be finite and > 0",
        })
    }
}

impl<const H: usize, F: Init, G: Init> Init for Seasonal<H, F, G> {
    fn init_unchecked<R: Rng + ?Sized>(&mut self, rng: &mut R, scheme: InitScheme) {
        self.drift.init_unchecked(rng, scheme);
        self.diffusion.init_unchecked(rng, scheme);
    }
}

impl<const H: usize, F: Parameters, G: Parameters> Parameters for Seasonal<H, F, G> {
    const PARAMS: usize = H + F::PARAMS + G::PARAMS;
    fn read_unchecked(&self, out: &mut [f32]) {
        let (p, rest) = crate::nn::split_at_most_mut(out, H);
        p.copy_from_slice(self.periods.get(..p.len()).unwrap_or(&[]));
        let (f, g) = crate::nn::split_at_most_mut(rest, F::PARAMS);
        self.drift.read_unchecked(f);
        self.diffusion.read_unchecked(g);
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        let (p, rest) = crate::nn::split_at_most(src, H);
        for (dst, &v) in self.periods.iter_mut().zip(p) {
            *dst = v;
        }
        let (f, g) = crate::nn::split_at_most(rest, F::PARAMS);
        self.drift.write_unchecked(f);
        self.diffusion.write_unchecked(g);
    }
}

impl<const H: usize, F: Describe, G: Describe> Describe for Seasonal<H, F, G> {
    /// `seasonal(<H>,<drift>,<diffusion>)`.
    fn describe(sink: &mut dyn FnMut(&[u8])) {
        sink(b"seasonal(");
        let mut digits = [0u8; 20];
        sink(decimal(H, &mut digits));
        sink(b",");
        F::describe(sink);
        sink(b",");
        G::describe(sink);
        sink(b")");
    }
    fn visit_params(&self, f: &mut dyn FnMut(f32)) {
        for &p in &self.periods {
            f(p);
        }
        self.drift.visit_params(f);
        self.diffusion.visit_params(f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut f32)) {
        for p in &mut self.periods {
            f(p);
        }
        self.drift.visit_params_mut(f);
        self.diffusion.visit_params_mut(f);
    }
}

/// The decimal digits of `n` in the end of `buf`.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

impl<T, F, G, const D: usize, const E: usize, const H: usize> Sde<T, D> for Seasonal<H, F, G>
where
    T: Real,
    F: Layer<T, Input = [T; E], Output = [T; D]>,
    G: Layer<T, Input = [T; E], Output = [T; D]>,
{
    const NOISE: crate::NoiseKind = crate::NoiseKind::Diagonal;
    #[inline]
    fn drift(&self, t: f32, u: &[T; D], seed: ParamSeed) -> [T; D] {
        self.drift.forward(&self.input(t, u), seed.shifted(H))
    }
    #[inline]
    fn diffusion(&self, t: f32, u: &[T; D], seed: ParamSeed) -> [T; D] {
        self.diffusion
            .forward(&self.input(t, u), seed.shifted(H + F::PARAMS))
    }
}

impl<T, F, G, const D: usize, const E: usize, const H: usize> SdeVjp<D, T> for Seasonal<H, F, G>
where
    T: PlainReal,
    F: Backward<T> + Layer<T, Input = [T; E], Output = [T; D]>,
    G: Backward<T> + Layer<T, Input = [T; E], Output = [T; D]>,
{
    #[inline]
    fn drift_vjp(
        &self,
        t: f32,
        u: &[T; D],
        f_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        // The features depend on neither the state nor a trained parameter.
        let rest = params_bar.get_mut(H..).unwrap_or(&mut []);
        network_vjp(&self.drift, &self.input(t, u), f_bar, u_bar, rest);
    }

    #[inline]
    fn diffusion_vjp(
        &self,
        t: f32,
        u: &[T; D],
        g_bar: &[T; D],
        u_bar: &mut [T; D],
        params_bar: &mut [T],
    ) {
        let rest = params_bar.get_mut(H + F::PARAMS..).unwrap_or(&mut []);
        network_vjp(&self.diffusion, &self.input(t, u), g_bar, u_bar, rest);
    }
}
