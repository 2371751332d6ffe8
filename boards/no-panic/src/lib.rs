//! Per-entry-point no-panic proofs for tinysde on `thumbv7em-none-eabihf`.
//!
//! Each binary in `src/bin/` calls one group of tinysde's public entry points on inputs the
//! optimizer cannot see through ([`core::hint::black_box`]), and keeps their results alive
//! the same way. The panic handler below calls [`tinysde_panic_is_reachable`], which is
//! declared but defined nowhere: a binary links only if fat LTO removed every call to the
//! panic handler, i.e. if no panic path (index out of bounds, overflow in a debug-checked
//! operation, `unwrap`, slice split, ...) survives in the functions it calls. A failing
//! build names the binary, hence the entry point.
//!
//! `cd boards/no-panic && cargo build --release` builds them all; nothing is run.
#![no_std]

use core::panic::PanicInfo;

extern "Rust" {
    /// Defined nowhere on purpose: referencing it is a link error.
    fn tinysde_panic_is_reachable() -> !;
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    // SAFETY: never executed in a binary that links (that is the point).
    unsafe { tinysde_panic_is_reachable() }
}

/// The seed task's model (as in the firmware).
pub mod seed {
    use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity};
    use tinysde::sde::NeuralSde;

    /// `u -> u^3 -> 20 fast-tanh units -> 1`.
    pub type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
    /// `u -> 20 fast-sigmoid units -> 1`.
    pub type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
    /// The one-dimensional seed model.
    pub type Model = NeuralSde<Drift, Diffusion>;
}

/// An opaque value: the optimizer must assume any bits.
#[inline(always)]
pub fn opaque<T>(x: T) -> T {
    core::hint::black_box(x)
}

/// Keeps a result alive, so its computation cannot be removed.
#[inline(always)]
pub fn keep<T>(x: T) {
    core::hint::black_box(x);
}
