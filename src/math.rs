//! The elementary functions every other module calls, from one backend chosen by feature.
//!
//! With feature `micromath` the fast approximations of the `micromath` crate are used
//! (it wins when both features are on); otherwise feature `libm` supplies correctly
//! ported musl routines. Either way the code is pure software built from IEEE basic
//! operations, so a given feature set gives the same bits on the host and on a Cortex-M.
//! `sqrt` is IEEE-exact on every backend choice that uses `libm`.

#[cfg(not(any(feature = "libm", feature = "micromath")))]
compile_error!("tinysde needs a math backend: enable feature `libm` (default) or `micromath`");

#[cfg(feature = "micromath")]
use micromath::F32Ext as _;

/// Square root.
///
/// ```
/// assert!((tinysde::math::sqrt(2.25) - 1.5).abs() < 1e-6);
/// ```
#[inline]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    return x.sqrt();
    #[cfg(not(feature = "micromath"))]
    return libm::sqrtf(x);
}

/// Natural exponential.
///
/// ```
/// assert!((tinysde::math::exp(1.0) - core::f32::consts::E).abs() < 1e-5);
/// ```
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    return x.exp();
    #[cfg(not(feature = "micromath"))]
    return libm::expf(x);
}

/// Natural logarithm.
///
/// ```
/// assert!((tinysde::math::ln(core::f32::consts::E) - 1.0).abs() < 1e-6);
/// ```
#[inline]
pub fn ln(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    return x.ln();
    #[cfg(not(feature = "micromath"))]
    return libm::logf(x);
}

/// Hyperbolic tangent.
///
/// ```
/// assert!((tinysde::math::tanh(0.5) - 0.462_117_16).abs() < 1e-5);
/// ```
#[inline]
pub fn tanh(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    {
        // micromath has no tanh: 1 - 2 / (e^{2|x|} + 1) keeps the result in [-1, 1].
        let e = exp(2.0 * x.abs());
        let t = 1.0 - 2.0 / (e + 1.0);
        return if x < 0.0 { -t } else { t };
    }
    #[cfg(not(feature = "micromath"))]
    return libm::tanhf(x);
}

/// Sine.
///
/// ```
/// assert!((tinysde::math::sin(core::f32::consts::FRAC_PI_2) - 1.0).abs() < 1e-6);
/// ```
#[inline]
pub fn sin(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    return x.sin();
    #[cfg(not(feature = "micromath"))]
    return libm::sinf(x);
}

/// Cosine.
///
/// ```
/// assert!((tinysde::math::cos(core::f32::consts::PI) + 1.0).abs() < 1e-6);
/// ```
#[inline]
pub fn cos(x: f32) -> f32 {
    #[cfg(feature = "micromath")]
    return x.cos();
    #[cfg(not(feature = "micromath"))]
    return libm::cosf(x);
}

/// `x` to the integer power `n` by binary exponentiation (the same multiplications on
/// every target, unlike `powf`).
///
/// ```
/// assert_eq!(tinysde::math::powi(1.5, 3), 3.375);
/// assert_eq!(tinysde::math::powi(2.0, -2), 0.25);
/// ```
#[inline]
pub fn powi(x: f32, n: i32) -> f32 {
    let mut base = if n < 0 { 1.0 / x } else { x };
    let mut e = n.unsigned_abs();
    let mut acc = 1.0f32;
    while e > 0 {
        if e & 1 == 1 {
            acc *= base;
        }
        e >>= 1;
        if e > 0 {
            base *= base;
        }
    }
    acc
}
