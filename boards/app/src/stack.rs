//! Peak stack use, from the stack painted at boot.
//!
//! The board crates enable cortex-m-rt's `paint-stack` feature: before `main`, the reset
//! handler fills everything between the linker symbols `_stack_end` (the lowest address the
//! stack may reach) and `_stack_start` (its top) with [`PAINT`]. With flip-link the stack
//! sits below `.data`/`.bss` and flip-link redefines both symbols accordingly. After the
//! work, the lowest word that no longer holds the paint marks the deepest the stack went.

/// The paint cortex-m-rt uses (`cortex_m_rt::STACK_PAINT_VALUE`).
pub const PAINT: u32 = 0xCCCC_CCCC;

#[cfg(target_os = "none")]
extern "C" {
    static _stack_end: u32;
    static _stack_start: u32;
}

/// Bytes of stack used since boot: from the top of the stack down to the lowest word that
/// is no longer [`PAINT`]. (A stack word that happens to equal the paint would be missed,
/// which can only under-report by the words below it that also held the paint.)
#[cfg(target_os = "none")]
pub fn peak_bytes() -> u32 {
    // Only the addresses of the two linker symbols are taken, never references.
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut p = bottom;
    while p < top {
        // SAFETY: `bottom..top` is the stack region from the linker script: mapped RAM,
        // word aligned (cortex-m-rt asserts it); volatile because the compiler knows
        // nothing of what the stack left there.
        let word = unsafe { core::ptr::read_volatile(p as *const u32) };
        if word != PAINT {
            break;
        }
        p += 4;
    }
    top.saturating_sub(p) as u32
}

/// Not on a microcontroller: nothing to measure.
#[cfg(not(target_os = "none"))]
pub fn peak_bytes() -> u32 {
    0
}
