//! No panic path in the optimizers' steps and in gradient clipping.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::train::{clip_global_norm, global_norm, Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tinysde_no_panic::{keep, opaque};

#[entry]
fn main() -> ! {
    let mut params = opaque([0.0f32; 61]);
    let mut grad = opaque([0.0f32; 61]);
    keep(clip_global_norm(opaque(&mut grad[..]), opaque(1.0)));
    keep(global_norm(opaque(&grad[..])));
    let (mut m, mut v) = (opaque([0.0f32; 61]), opaque([0.0f32; 61]));
    if let Ok(mut adam) = Adam::new(
        AdamConfig::lr(opaque(1e-3)),
        opaque(&mut m[..]),
        opaque(&mut v[..]),
    ) {
        keep(adam.step(opaque(&mut params[..]), opaque(&grad[..])));
        keep(adam.moments().0.first().copied());
    }
    let config = SgdConfig {
        lr: opaque(0.1),
        momentum: opaque(0.9),
    };
    let mut b = opaque([0.0f32; 61]);
    if let Ok(mut sgd) = Sgd::new(config, opaque(&mut b[..])) {
        keep(sgd.step(opaque(&mut params[..]), opaque(&grad[..])));
        keep(sgd.velocity().first().copied());
    }
    keep((&params, &grad));
    loop {}
}
