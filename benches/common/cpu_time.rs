//! This thread's time on the CPU, for the harness-free benchmarks' `cpu_seconds=`.

/// This thread's time on the CPU so far, in seconds: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`
/// on 64-bit Linux (exact to the nanosecond; `/proc`'s counters only move at scheduler
/// ticks, several milliseconds), `None` elsewhere.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub fn thread_cpu_seconds() -> Option<f64> {
    /// `struct timespec` of 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: the C library std links on Linux provides clock_gettime; `time` is a valid,
    // writable timespec for the duration of the call.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    (status == 0).then_some(time.seconds as f64 + time.nanoseconds as f64 * 1e-9)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn thread_cpu_seconds() -> Option<f64> {
    None
}
