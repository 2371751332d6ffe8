//! Optimizers with fixed-size state: Adam and SGD with momentum, and clipping by global norm.
//!
//! State buffers are any `AsRef<[f32]> + AsMut<[f32]>`: an array `[f32; P]` sized by the
//! model's parameter count, a borrowed `&mut [f32]`, or (on the host) a `Vec<f32>`.
//! Every operation checks lengths and finiteness first and changes nothing on error.

use crate::error::{check_finite_value, check_len, check_positive, Error};
use crate::math;

/// A first-order optimizer: updates parameters in place from a gradient.
pub trait Optimizer {
    /// The number of parameters its state is sized for.
    fn num_params(&self) -> usize;
    /// One update of `params` (length [`num_params`](Optimizer::num_params)) from `grad`
    /// (same length, finite). An update that would make a parameter or the optimizer's
    /// state non-finite is refused with [`Error::UpdateOverflow`]. On error neither the
    /// parameters nor the state change.
    fn step(&mut self, params: &mut [f32], grad: &[f32]) -> Result<(), Error>;
    /// Forgets all accumulated state (moments, velocity, step count).
    fn reset(&mut self);
}

fn check_step(n: usize, params: &[f32], grad: &[f32]) -> Result<(), Error> {
    check_len("parameters", n, params.len())?;
    check_len("gradient", n, grad.len())?;
    if let Some(index) = grad.iter().position(|g| !g.is_finite()) {
        return Err(Error::NonFinite {
            what: "gradient",
            index,
        });
    }
    Ok(())
}

fn check_lr(lr: f32) -> Result<(), Error> {
    check_positive(lr, "learning rate", "learning rate must be > 0")
}

fn check_unit(x: f32, what: &'static str, range: &'static str) -> Result<(), Error> {
    check_finite_value(x, what)?;
    if !(0.0..1.0).contains(&x) {
        return Err(Error::OutOfRange { what: range });
    }
    Ok(())
}

/// Adam's hyperparameters. `Default` is Flux's and PyTorch's: `lr = 1e-3`,
/// `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`.
///
/// ```
/// use tinysde::train::AdamConfig;
/// let config = AdamConfig::lr(0.05);
/// assert_eq!((config.lr, config.beta1), (0.05, 0.9));
/// assert!(config.validate().is_ok());
/// assert!(AdamConfig { beta2: 1.0, ..config }.validate().is_err()); // beta2 in [0, 1)
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdamConfig {
    /// Learning rate (finite, `> 0`).
    pub lr: f32,
    /// Decay of the first moment (in `[0, 1)`).
    pub beta1: f32,
    /// Decay of the second moment (in `[0, 1)`).
    pub beta2: f32,
    /// Added to the root of the second moment (finite, `> 0`).
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamConfig {
    /// The default configuration with learning rate `lr`.
    pub fn lr(lr: f32) -> Self {
        Self {
            lr,
            ..Self::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), Error> {
        check_lr(self.lr)?;
        check_unit(self.beta1, "beta1", "beta1 must be in [0, 1)")?;
        check_unit(self.beta2, "beta2", "beta2 must be in [0, 1)")?;
        check_positive(self.eps, "eps", "eps must be > 0")
    }
}

/// Adam (Kingma & Ba 2015) with bias correction:
///
/// ```text
/// m = beta1 m + (1 - beta1) g        v = beta2 v + (1 - beta2) g^2
/// p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
/// ```
///
/// `beta^t` is kept as a running product in `f32` (no `powf`), so updates are bit-identical
/// on every target.
///
/// ```
/// use tinysde::train::{Adam, AdamConfig, Optimizer};
/// // minimize (p - 3)^2 with moments in fixed-size arrays
/// let mut adam = Adam::new(AdamConfig::lr(0.1), [0.0f32; 1], [0.0f32; 1]).unwrap();
/// let mut p = [0.0f32];
/// for _ in 0..500 {
///     let g = [2.0 * (p[0] - 3.0)];
///     adam.step(&mut p, &g).unwrap();
/// }
/// assert!((p[0] - 3.0).abs() < 1e-2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<B> {
    config: AdamConfig,
    m: B,
    v: B,
    beta1_t: f32,
    beta2_t: f32,
    t: u32,
}

impl<B: AsRef<[f32]> + AsMut<[f32]>> Adam<B> {
    /// Adam with the moment buffers `m` and `v` (same length: the number of parameters).
    /// They are zeroed.
    pub fn new(config: AdamConfig, mut m: B, mut v: B) -> Result<Self, Error> {
        config.validate()?;
        check_len("Adam second moment", m.as_ref().len(), v.as_ref().len())?;
        m.as_mut().fill(0.0);
        v.as_mut().fill(0.0);
        Ok(Self {
            config,
            m,
            v,
            beta1_t: 1.0,
            beta2_t: 1.0,
            t: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> AdamConfig {
        self.config
    }

    /// Changes the configuration, keeping the state (validated; unchanged on error).
    pub fn set_config(&mut self, config: AdamConfig) -> Result<(), Error> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Changes the learning rate only (validated; unchanged on error).
    pub fn set_lr(&mut self, lr: f32) -> Result<(), Error> {
        self.set_config(AdamConfig { lr, ..self.config })
    }

    /// The number of updates made since creation or the last reset.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// The first and second moment buffers.
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (self.m.as_ref(), self.v.as_ref())
    }

    /// Gives the buffers back.
    pub fn into_buffers(self) -> (B, B) {
        (self.m, self.v)
    }
}

impl<B: AsRef<[f32]> + AsMut<[f32]>> Optimizer for Adam<B> {
    fn num_params(&self) -> usize {
        self.m.as_ref().len()
    }

    fn step(&mut self, params: &mut [f32], grad: &[f32]) -> Result<(), Error> {
        check_step(self.num_params(), params, grad)?;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        let beta1_t = self.beta1_t * beta1;
        let beta2_t = self.beta2_t * beta2;
        let c1 = 1.0 / (1.0 - beta1_t);
        let c2 = 1.0 / (1.0 - beta2_t);
        // (m, v, p) after the update; every intermediate must stay finite, otherwise the
        // state would overflow (v = inf freezes the parameter for good) or p become inf.
        let update = |p: f32, g: f32, m: f32, v: f32| {
            let m = beta1 * m + (1.0 - beta1) * g;
            let v = beta2 * v + (1.0 - beta2) * (g * g);
            let m_hat = m * c1;
            let v_hat = v * c2;
            let p = p - lr * m_hat / (math::sqrt(v_hat) + eps);
            let finite = m_hat.is_finite() && v_hat.is_finite() && p.is_finite();
            (m, v, p, finite)
        };
        // Check every entry first, then commit: on error nothing has changed.
        let (m, v) = (self.m.as_mut(), self.v.as_mut());
        let entries = params.iter().zip(grad).zip(m.iter()).zip(v.iter());
        for (index, (((&p, &g), &m), &v)) in entries.enumerate() {
            if !update(p, g, m, v).3 {
                return Err(Error::UpdateOverflow { index });
            }
        }
        for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(m).zip(v) {
            (*m, *v, *p, _) = update(*p, g, *m, *v);
        }
        self.t = self.t.saturating_add(1);
        self.beta1_t = beta1_t;
        self.beta2_t = beta2_t;
        Ok(())
    }

    fn reset(&mut self) {
        self.m.as_mut().fill(0.0);
        self.v.as_mut().fill(0.0);
        self.beta1_t = 1.0;
        self.beta2_t = 1.0;
        self.t = 0;
    }
}

/// SGD's hyperparameters.
///
/// ```
/// use tinysde::train::SgdConfig;
/// assert!(SgdConfig { lr: 0.1, momentum: 0.9 }.validate().is_ok());
/// assert!(SgdConfig { lr: 0.1, momentum: 1.0 }.validate().is_err()); // momentum in [0, 1)
/// assert!(SgdConfig { lr: f32::NAN, momentum: 0.0 }.validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SgdConfig {
    /// Learning rate (finite, `> 0`).
    pub lr: f32,
    /// Momentum (in `[0, 1)`; 0 is plain gradient descent).
    pub momentum: f32,
}

impl SgdConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), Error> {
        check_lr(self.lr)?;
        check_unit(self.momentum, "momentum", "momentum must be in [0, 1)")
    }
}

/// Stochastic gradient descent with (heavy-ball) momentum, as PyTorch writes it:
///
/// ```text
/// b = momentum * b + g        p -= lr * b
/// ```
///
/// ```
/// use tinysde::train::{Optimizer, Sgd, SgdConfig};
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.5 }, [0.0f32; 2]).unwrap();
/// let mut p = [1.0f32, -2.0];
/// for _ in 0..200 {
///     let g = [2.0 * p[0], 2.0 * p[1]]; // gradient of |p|^2
///     sgd.step(&mut p, &g).unwrap();
/// }
/// assert!(p[0].abs() < 1e-4 && p[1].abs() < 1e-4);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd<B> {
    config: SgdConfig,
    velocity: B,
}

impl<B: AsRef<[f32]> + AsMut<[f32]>> Sgd<B> {
    /// SGD with the velocity buffer `velocity` (one entry per parameter; zeroed).
    pub fn new(config: SgdConfig, mut velocity: B) -> Result<Self, Error> {
        config.validate()?;
        velocity.as_mut().fill(0.0);
        Ok(Self { config, velocity })
    }

    /// The configuration.
    pub fn config(&self) -> SgdConfig {
        self.config
    }

    /// Changes the configuration, keeping the velocity (validated; unchanged on error).
    pub fn set_config(&mut self, config: SgdConfig) -> Result<(), Error> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The velocity buffer.
    pub fn velocity(&self) -> &[f32] {
        self.velocity.as_ref()
    }
}

impl<B: AsRef<[f32]> + AsMut<[f32]>> Optimizer for Sgd<B> {
    fn num_params(&self) -> usize {
        self.velocity.as_ref().len()
    }

    fn step(&mut self, params: &mut [f32], grad: &[f32]) -> Result<(), Error> {
        check_step(self.num_params(), params, grad)?;
        let SgdConfig { lr, momentum } = self.config;
        let update = |p: f32, g: f32, b: f32| {
            let b = momentum * b + g;
            (b, p - lr * b)
        };
        // Check every entry first, then commit: on error nothing has changed.
        let velocity = self.velocity.as_mut();
        for (index, ((&p, &g), &b)) in params.iter().zip(grad).zip(velocity.iter()).enumerate() {
            let (b, p) = update(p, g, b);
            if !(b.is_finite() && p.is_finite()) {
                return Err(Error::UpdateOverflow { index });
            }
        }
        for ((p, &g), b) in params.iter_mut().zip(grad).zip(velocity) {
            (*b, *p) = update(*p, g, *b);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.velocity.as_mut().fill(0.0);
    }
}

impl<O: Optimizer + ?Sized> Optimizer for &mut O {
    fn num_params(&self) -> usize {
        (**self).num_params()
    }
    fn step(&mut self, params: &mut [f32], grad: &[f32]) -> Result<(), Error> {
        (**self).step(params, grad)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}

/// The Euclidean norm of `x` as `(scale, root)` with norm `= scale * root`: `scale` is the
/// largest magnitude and `root` lies in `[1, sqrt(len)]` (both 0 for an all-zero `x`), so
/// neither overflows even when the norm itself exceeds `f32::MAX`. NaN or infinite
/// entries give a NaN or infinite `scale`.
fn scaled_norm(x: &[f32]) -> (f32, f32) {
    let mut scale = 0.0f32;
    for &v in x {
        let a = if v < 0.0 { -v } else { v };
        if a.is_nan() {
            return (f32::NAN, f32::NAN);
        }
        if a > scale {
            scale = a;
        }
    }
    if scale == 0.0 || scale.is_infinite() {
        return (scale, 1.0);
    }
    let mut sum = 0.0f32;
    for &v in x {
        let r = v / scale;
        sum += r * r;
    }
    (scale, math::sqrt(sum))
}

/// The Euclidean norm of `x`, computed without intermediate overflow or underflow (scaled
/// by the largest magnitude). NaN if any entry is NaN, infinite if any is infinite, and
/// also infinite when the norm itself exceeds `f32::MAX` (e.g. `[3e38, 3e38]`); clipping
/// ([`clip_global_norm`]) handles that case correctly.
///
/// ```
/// use tinysde::train::global_norm;
/// assert_eq!(global_norm(&[3.0, 4.0]), 5.0);
/// let tiny = global_norm(&[3e-30, 4e-30]); // the squares would underflow
/// assert!((tiny / 5e-30 - 1.0).abs() < 1e-6);
/// let huge = global_norm(&[3e30, 4e30]); // the squares would overflow
/// assert!((huge / 5e30 - 1.0).abs() < 1e-6);
/// assert!(global_norm(&[1.0, f32::NAN]).is_nan());
/// ```
pub fn global_norm(x: &[f32]) -> f32 {
    let (scale, root) = scaled_norm(x);
    scale * root
}

/// Checks a clipping norm, the one check every trainer and [`clip_global_norm`] use: it
/// must be finite ([`Error::NonFinite`]), `> 0` and normal, that is at least
/// `f32::MIN_POSITIVE` ([`Error::OutOfRange`]: a subnormal norm would make the scale factor
/// lose precision).
pub(crate) fn check_clip_norm(max_norm: f32) -> Result<(), Error> {
    check_positive(max_norm, "clipping norm", "clipping norm must be > 0")?;
    if !max_norm.is_normal() {
        return Err(Error::OutOfRange {
            what: "clipping norm must be at least f32::MIN_POSITIVE (not subnormal)",
        });
    }
    Ok(())
}

/// Scales `grad` so that its global norm is at most `max_norm` (finite and normal: at least
/// `f32::MIN_POSITIVE`; up to one
/// or two roundings); returns the norm before clipping, saturated at `f32::MAX` when it
/// exceeds the `f32` range (the gradient is then still scaled correctly: clipping works in
/// exactly the case it exists for). A gradient already within the bound is left as it is;
/// so is everything on error (bad `max_norm`, or a non-finite gradient).
///
/// ```
/// let mut g = [3.0f32, 4.0];
/// let before = tinysde::train::clip_global_norm(&mut g, 1.0).unwrap();
/// assert_eq!(before, 5.0);
/// assert!((tinysde::train::global_norm(&g) - 1.0).abs() < 1e-6);
///
/// let mut huge = [3e38f32, 3e38]; // norm 4.2e38 > f32::MAX
/// assert_eq!(tinysde::train::clip_global_norm(&mut huge, 1.0).unwrap(), f32::MAX);
/// assert!((huge[0] - core::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// ```
pub fn clip_global_norm(grad: &mut [f32], max_norm: f32) -> Result<f32, Error> {
    check_clip_norm(max_norm)?;
    if let Some(index) = grad.iter().position(|g| !g.is_finite()) {
        return Err(Error::NonFinite {
            what: "gradient",
            index,
        });
    }
    let (scale, root) = scaled_norm(grad);
    let norm = scale * root;
    if norm > max_norm && !(max_norm / norm).is_normal() {
        // The norm overflows f32, or the factor max_norm / norm is subnormal and would lose
        // precision: scale in two steps. g / scale is in [-1, 1] and max_norm / root is
        // normal, so no step overflows or underflows early.
        let s = max_norm / root;
        for g in grad.iter_mut() {
            *g = *g / scale * s;
        }
        return Ok(norm.min(f32::MAX));
    }
    if norm > max_norm {
        let s = max_norm / norm;
        for g in grad.iter_mut() {
            *g *= s;
        }
    }
    Ok(norm)
}
