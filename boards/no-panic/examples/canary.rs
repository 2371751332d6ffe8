//! The canary: an index the optimizer cannot prove in bounds. `check.sh` requires this to
//! FAIL to link, proving that the panic handler trick really rejects panic paths.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde_no_panic::{keep, opaque};

#[entry]
fn main() -> ! {
    let table = opaque([1u8, 2, 3, 4]);
    keep(table[opaque(7usize)]);
    loop {}
}
