//! A global allocator that counts allocations of the thread being measured, for the
//! "allocates nothing" tests: one for the whole suite (`use crate::alloc_counter;`). Only the
//! measuring thread counts, so tests running beside it on other threads do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only allocations of the thread being measured count: the test harness's own
    /// threads allocate at times of their choosing.
    static MEASURED: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if MEASURED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread, with its result.
pub fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    MEASURED.with(|m| m.set(true));
    let result = f();
    MEASURED.with(|m| m.set(false));
    (ALLOCATIONS.load(Ordering::SeqCst) - before, result)
}
