//! Maximum error of the quick activations over every `f32` input, measured exhaustively.
//!
//! Walks all 2^32 bit patterns (every core), and for [`quick_tanh`] and [`quick_sigmoid`]
//! prints the maximum absolute and relative error of the value and of the derivative forward
//! and reverse mode use (on `Dual<1>`) against the exact functions in `f64`. Along the way
//! it checks, for every input, the properties the docs state: the value of one trajectory
//! (the Cortex-M path, with its branch), of 8 lanes and of `Dual<1>` (on `f32` and on 8
//! lanes) are the same bits, as is the derivative on both; `quick_tanh` is exactly odd and
//! within `(-1, 1)`; `quick_sigmoid` within `(0, 1)` and within `SIGMOID_FROM_TANH` of
//! `0.5 + 0.5 * quick_tanh(0.5 * x)` (the same rational function, evaluated otherwise).
//! Exits non-zero if an error exceeds the bound in the docs or a property fails.
//!
//!     cargo run --release --features examples --example activation_error
//!
//! With `--fast` it measures `fast_tanh` and `fast_sigmoid` as well (values only).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tinysde::nn::{
    fast_sigmoid, fast_tanh, quick_sigmoid, quick_tanh, QUICK_SIGMOID_DERIVATIVE_MAX_ERROR,
    QUICK_SIGMOID_MAX_ERROR, QUICK_TANH_DERIVATIVE_MAX_ERROR, QUICK_TANH_MAX_ERROR,
};
use tinysde::{Dual, F32x};

/// Worst absolute and relative errors, with the inputs where they occur.
#[derive(Clone, Copy, Debug, Default)]
struct Worst {
    abs: f64,
    abs_at: f32,
    rel: f64,
    rel_at: f32,
}

impl Worst {
    fn add(&mut self, x: f32, got: f32, exact: f64) {
        let e = (f64::from(got) - exact).abs();
        if e > self.abs || e.is_nan() {
            self.abs = if e.is_nan() { f64::INFINITY } else { e };
            self.abs_at = x;
        }
        if exact != 0.0 {
            let r = e / exact.abs();
            if r > self.rel {
                self.rel = r;
                self.rel_at = x;
            }
        }
    }

    fn merge(&mut self, o: &Worst) {
        if o.abs > self.abs {
            (self.abs, self.abs_at) = (o.abs, o.abs_at);
        }
        if o.rel > self.rel {
            (self.rel, self.rel_at) = (o.rel, o.rel_at);
        }
    }
}

/// How far `quick_sigmoid(x)` may be from `0.5 + 0.5 * quick_tanh(0.5 * x)`: the same
/// rational function with the polynomials evaluated in another order (a few units in the
/// last place of values below 1).
const SIGMOID_FROM_TANH: f32 = 2.5e-7;

/// Tanh value, tanh derivative, sigmoid value, sigmoid derivative; fast tanh, fast sigmoid.
const MEASURES: usize = 6;

#[derive(Default)]
struct Tally {
    worst: [Worst; MEASURES],
    failures: u64,
    first_failure: Option<String>,
}

fn sigmoid64(x: f64) -> f64 {
    0.5 + 0.5 * (0.5 * x).tanh()
}

/// Checks the 8 consecutive bit patterns from `base` into `t`.
fn check8(base: u32, fast: bool, t: &mut Tally) {
    let xs: [f32; 8] = std::array::from_fn(|j| f32::from_bits(base.wrapping_add(j as u32)));
    let lanes = F32x(xs);
    let tanh_lanes = quick_tanh(lanes);
    let sigmoid_lanes = quick_sigmoid(lanes);
    let dual_tanh_lanes = quick_tanh(Dual::<1, F32x<8>>::variable(lanes, 0));
    let dual_sigmoid_lanes = quick_sigmoid(Dual::<1, F32x<8>>::variable(lanes, 0));
    let mut fail = |what: &str, x: f32| {
        t.failures += 1;
        if t.first_failure.is_none() {
            t.first_failure = Some(format!("{what} at x = {x:e} (bits {:#010x})", x.to_bits()));
        }
    };
    // NaN compared as NaN: Rust leaves a NaN result's sign and payload unspecified.
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    for (j, &x) in xs.iter().enumerate() {
        let y = quick_tanh(x);
        let s = quick_sigmoid(x);
        let dt = quick_tanh(Dual::<1>::variable(x, 0));
        let ds = quick_sigmoid(Dual::<1>::variable(x, 0));
        if !same(y, tanh_lanes.0[j]) || !same(y, dt.v) || !same(y, dual_tanh_lanes.v.0[j]) {
            fail("quick_tanh: one lane, 8 lanes and Dual values differ", x);
        }
        if !same(dt.t[0], dual_tanh_lanes.t[0].0[j]) {
            fail("quick_tanh: Dual derivatives on f32 and 8 lanes differ", x);
        }
        if !same(s, sigmoid_lanes.0[j]) || !same(s, ds.v) || !same(s, dual_sigmoid_lanes.v.0[j]) {
            fail("quick_sigmoid: one lane, 8 lanes and Dual values differ", x);
        }
        if !same(ds.t[0], dual_sigmoid_lanes.t[0].0[j]) {
            fail(
                "quick_sigmoid: Dual derivatives on f32 and 8 lanes differ",
                x,
            );
        }
        if x.is_nan() {
            if !y.is_nan() || !s.is_nan() {
                fail("NaN does not pass through", x);
            }
            continue;
        }
        if !same(quick_tanh(-x), -y) {
            fail("quick_tanh is not odd", x);
        }
        if !(y > -1.0 && y < 1.0) {
            fail("quick_tanh outside (-1, 1)", x);
        }
        if !(s > 0.0 && s < 1.0) {
            fail("quick_sigmoid outside (0, 1)", x);
        }
        let from_tanh = 0.5 + 0.5 * quick_tanh(0.5 * x);
        if (s - from_tanh).abs() > SIGMOID_FROM_TANH {
            fail(
                "|quick_sigmoid(x) - (0.5 + 0.5 quick_tanh(x / 2))| > SIGMOID_FROM_TANH",
                x,
            );
        }
        let x64 = f64::from(x);
        let th = x64.tanh();
        let sg = sigmoid64(x64);
        t.worst[0].add(x, y, th);
        t.worst[1].add(x, dt.t[0], 1.0 - th * th);
        t.worst[2].add(x, s, sg);
        t.worst[3].add(x, ds.t[0], sg * (1.0 - sg));
        if fast {
            t.worst[4].add(x, fast_tanh(x), th);
            t.worst[5].add(x, fast_sigmoid(x), sg);
        }
    }
}

fn main() {
    let fast = std::env::args().any(|a| a == "--fast");
    let started = std::time::Instant::now();
    // 2^32 patterns in chunks of 2^24, taken by the threads from a shared counter.
    const CHUNK: u64 = 1 << 24;
    let next = AtomicU64::new(0);
    let total = Mutex::new(Tally::default());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut t = Tally::default();
                loop {
                    let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if start >= 1 << 32 {
                        break;
                    }
                    for base in (start..start + CHUNK).step_by(8) {
                        check8(base as u32, fast, &mut t);
                    }
                }
                let mut all = total.lock().unwrap_or_else(|e| e.into_inner());
                for (w, o) in all.worst.iter_mut().zip(&t.worst) {
                    w.merge(o);
                }
                all.failures += t.failures;
                if all.first_failure.is_none() {
                    all.first_failure = t.first_failure;
                }
            });
        }
    });
    let t = total.into_inner().unwrap_or_else(|e| e.into_inner());
    let names = [
        ("quick_tanh", QUICK_TANH_MAX_ERROR),
        ("quick_tanh derivative", QUICK_TANH_DERIVATIVE_MAX_ERROR),
        ("quick_sigmoid", QUICK_SIGMOID_MAX_ERROR),
        (
            "quick_sigmoid derivative",
            QUICK_SIGMOID_DERIVATIVE_MAX_ERROR,
        ),
        ("fast_tanh", tinysde::nn::FAST_TANH_MAX_ERROR),
        ("fast_sigmoid", tinysde::nn::FAST_SIGMOID_MAX_ERROR),
    ];
    let mut ok = t.failures == 0;
    let shown = if fast { MEASURES } else { 4 };
    for ((name, bound), w) in names.iter().zip(&t.worst).take(shown) {
        let within = w.abs <= f64::from(*bound);
        ok &= within;
        println!(
            "{name:26} max abs error {:.3e} at x = {:e}, max rel error {:.3e} at x = {:e}; bound {bound:e}: {}",
            w.abs,
            w.abs_at,
            w.rel,
            w.rel_at,
            if within { "ok" } else { "EXCEEDED" }
        );
    }
    println!(
        "property failures: {}{}",
        t.failures,
        t.first_failure
            .map(|f| format!(" (first: {f})"))
            .unwrap_or_default()
    );
    println!(
        "2^32 inputs on {threads} threads in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !ok {
        std::process::exit(1);
    }
}
