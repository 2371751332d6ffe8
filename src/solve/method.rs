//! What a method is ([`Method`]) and one step of it ([`Step`]).

use crate::error::NoiseKind;
use crate::nn::ParamSeed;
use crate::noise::Increment;
use crate::real::Real;
use crate::sde::Sde;

/// Which stochastic calculus a method's solution converges to.
///
/// ```
/// use tinysde::solve::{Calculus, EulerHeun, EulerMaruyama, Method, Sra1};
/// assert_eq!(EulerMaruyama::CALCULUS, Calculus::Ito);
/// assert_eq!(EulerHeun::CALCULUS, Calculus::Stratonovich);
/// assert_eq!(Sra1::CALCULUS, Calculus::Both); // additive noise only
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Calculus {
    /// Itô.
    Ito,
    /// Stratonovich.
    Stratonovich,
    /// Either: the method is only valid for additive noise, where the two agree.
    Both,
}

/// What a method is: name, calculus, orders and the noise kinds it accepts.
///
/// ```
/// use tinysde::solve::{Method, Sosri, Sra1};
/// use tinysde::NoiseKind;
/// assert_eq!((Sosri::NAME, Sosri::STRONG_ORDER, Sosri::NEEDS_DZ), ("SOSRI", 1.5, true));
/// assert!(Sra1::supports(NoiseKind::Additive) && !Sra1::supports(NoiseKind::Diagonal));
/// ```
pub trait Method {
    /// The method's usual name (as in StochasticDiffEq.jl where it has one).
    const NAME: &'static str;
    /// The calculus the method solves in.
    const CALCULUS: Calculus;
    /// Strong order on the noise kinds it accepts.
    const STRONG_ORDER: f32;
    /// Weak order on the noise kinds it accepts.
    const WEAK_ORDER: f32;
    /// Whether the method uses the second increment `dZ` (order-1.5 methods do).
    const NEEDS_DZ: bool;
    /// Whether the method uses the Brownian increments at all. A method that does not
    /// (the drift-only [`Rk4`](super::Rk4)) is given zero increments and the solver draws no noise.
    const USES_NOISE: bool = true;
    /// Whether the method accepts an SDE with this noise kind.
    fn supports(noise: NoiseKind) -> bool;
}

/// One step of a method for the SDE `S` over the scalar `T`.
///
/// ```
/// use tinysde::nn::ParamSeed;
/// use tinysde::noise::Increment;
/// use tinysde::sde::FixedSde;
/// use tinysde::solve::{EulerMaruyama, Step};
/// use tinysde::{NoiseKind, Real};
///
/// struct Ou; // du = -u dt + 0.5 dW
/// impl FixedSde<1> for Ou {
///     const NOISE: NoiseKind = NoiseKind::Additive;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [-u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, _: &[T; 1]) -> [T; 1] { [T::cst(0.5)] }
/// }
/// let inc = Increment { dw: [0.2f32], dz: [0.0] };
/// let u = EulerMaruyama.step(&Ou, 0.0, 0.1, &[1.0f32], &inc, ParamSeed::NONE);
/// assert!((u[0] - 1.0).abs() < 1e-6); // u + f(u) h + g(u) dW = 1 - 0.1 + 0.1
/// ```
pub trait Step<T: Real, S: Sde<T, D>, const D: usize>: Method {
    /// Advances `u` from `t` to `t + h` with the increments `inc` (for scalar noise every
    /// channel of `inc` holds the same shared increment).
    fn step(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D, T::Value>,
        seed: ParamSeed,
    ) -> [T; D];
}

/// Declares a built-in method (a unit struct) and implements [`Method`] for it from its name, calculus, orders, whether it
/// needs `dZ` (and whether it uses noise at all) and the noise kinds it accepts (a pattern);
/// given a step body, also [`Step`] over any scalar `T`, SDE `S: Sde<T, D>` (and an optional
/// further bound on `S`) and dimension `D`: the trait's signature is written here once and
/// the body names the step's arguments. Given a `step_estimating` body instead (a step that
/// writes its error estimate into `estimate: Option<&mut [T::Value; D]>` when there is one),
/// [`Step`] with `None` and [`Embedded`](super::Embedded) with the caller's estimate.
macro_rules! builtin_method {
    ($(#[$attr:meta])* pub struct $method:ident: $($spec:tt)*) => {
        $(#[$attr])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $method;

        builtin_method!($method, $($spec)*);
    };
    (
        $method:ty, $name:literal, $calculus:ident, strong $strong:literal, weak $weak:literal,
        dz $dz:literal $(, noise $uses:literal)?, supports $noise:pat
    ) => {
        impl $crate::solve::Method for $method {
            const NAME: &'static str = $name;
            const CALCULUS: $crate::solve::Calculus = $crate::solve::Calculus::$calculus;
            const STRONG_ORDER: f32 = $strong;
            const WEAK_ORDER: f32 = $weak;
            const NEEDS_DZ: bool = $dz;
            $(const USES_NOISE: bool = $uses;)?
            fn supports(noise: $crate::error::NoiseKind) -> bool {
                matches!(noise, $noise)
            }
        }
    };
    (
        $method:ty, $name:literal, $calculus:ident, strong $strong:literal, weak $weak:literal,
        dz $dz:literal $(, noise $uses:literal)?, supports $noise:pat,
        step($sde:ident, $t:ident, $h:ident, $u:ident, $inc:ident, $seed:ident)
        $(where S: $bound:path)? $body:block
    ) => {
        builtin_method!(
            $method, $name, $calculus, strong $strong, weak $weak, dz $dz $(, noise $uses)?,
            supports $noise
        );
        impl<T, S, const D: usize> $crate::solve::Step<T, S, D> for $method
        where
            T: $crate::real::Real,
            S: $crate::sde::Sde<T, D> $(+ $bound)?,
        {
            #[inline]
            fn step(
                &self,
                $sde: &S,
                $t: f32,
                $h: f32,
                $u: &[T; D],
                $inc: &$crate::noise::Increment<D, T::Value>,
                $seed: $crate::nn::ParamSeed,
            ) -> [T; D] $body
        }
    };
    (
        $method:ty, $name:literal, $calculus:ident, strong $strong:literal, weak $weak:literal,
        dz $dz:literal, supports $noise:pat,
        step_estimating($sde:ident, $t:ident, $h:ident, $u:ident, $inc:ident, $seed:ident,
            $estimate:ident) $body:block
    ) => {
        builtin_method!(
            $method, $name, $calculus, strong $strong, weak $weak, dz $dz, supports $noise,
            step($sde, $t, $h, $u, $inc, $seed) {
                let $estimate: Option<&mut [T::Value; D]> = None;
                $body
            }
        );
        impl<T, S, const D: usize> $crate::solve::Embedded<T, S, D> for $method
        where
            T: $crate::real::Real<Value = f32>,
            S: $crate::sde::Sde<T, D>,
        {
            #[inline]
            fn step_with_estimate(
                &self,
                $sde: &S,
                $t: f32,
                $h: f32,
                $u: &[T; D],
                $inc: &$crate::noise::Increment<D>,
                $seed: $crate::nn::ParamSeed,
                estimate: &mut [f32; D],
            ) -> [T; D] {
                let $estimate = Some(estimate);
                $body
            }
        }
    };
}
pub(super) use builtin_method;
