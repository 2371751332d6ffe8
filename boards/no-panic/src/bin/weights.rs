//! No panic path in reading, inspecting and writing weights blobs.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::weights;
use tinysde_no_panic::{keep, opaque, seed::Model};

#[entry]
fn main() -> ! {
    let mut model: Model = opaque(Model::default());
    let blob = opaque([0u8; 1024]);
    keep(weights::inspect(opaque(&blob[..])).map(|b| b.param_count()));
    keep(weights::read_into(&mut model, opaque(&blob[..])));
    let mut out = [0u8; 1024];
    keep(weights::write(&model, opaque(&mut out[..])));
    keep((&model, &out));
    loop {}
}
