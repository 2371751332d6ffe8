//! tinysde firmware under QEMU, for CI: no hardware needed. One program, three Cortex-M
//! classes, chosen by the build target (`build.rs` picks the machine's memory map and sets
//! `cfg(machine = ...)`):
//!
//! | target | core | QEMU machine | clock read as instructions |
//! |---|---|---|---|
//! | `thumbv6m-none-eabi` | Cortex-M0, soft float | `microbit` (nRF51) | TIMER0, 16 MHz: 62.5 per tick |
//! | `thumbv7em-none-eabihf` | Cortex-M4F | `mps2-an386` | CMSDK timer 0, 25 MHz: 40 per tick |
//! | `thumbv8m.main-none-eabihf` | Cortex-M33 (Secure state) | `mps2-an505` | SSE-200 timer 0, 20 MHz: 50 per tick |
//!
//! Output is plain text over semihosting, one record per line, every `f32` as its bit
//! pattern in hex (`boards/ci.sh` compares them with the host's bit for bit):
//!
//! ```text
//! CONFIG <params> <trajectories> <steps> <saves> <t0> <t1> <u0> <noise_seed> <weights_crc>
//! FORECAST <i> <t> <mean> <std>
//! COST <what> <count> <total instructions>
//! ADAPTIVE <i> <t> <mean> <variance>             (full firmware: SOSRI, Brownian tree)
//! ADAPTIVE_STEPS <trajectories> <depth> <tolerance> <accepted> <rejected>
//! TRAIN <iteration> <loss>
//! STACK <peak bytes>
//! CHECK <name> <ok|FAIL> <four f32 values>      (scenario `selftest`)
//! CHECKS <passed> <total>                        (scenario `selftest`)
//! ERROR <stage> <kind> <a> <b>
//! DONE
//! ```
//!
//! The exit status is 0 on success, the stage's code on a typed error (2 load, 3 forecast,
//! 4 bench, 5 train, 7 adaptive), 6 if an on-target check failed, 9 on a hard fault. The first word of
//! the semihosting command line after the program name picks a scenario: none (the normal
//! run), `short` (the normal run with one training iteration instead of five: what CI
//! runs on the soft-float Cortex-M0, where an iteration is about 180 million instructions), `selftest` (the tests that run on the target, `tinysde_app::checks`), `corrupt`
//! (one flipped bit in the weights), `truncated`, `mismatch` (a blob written for another
//! model shape), `diverge` (valid weights whose drift blows the state up), `calibrate`
//! (checks that the clock counts instructions).
//!
//! With feature `no-panic` it is the inference firmware: load the weights, forecast,
//! report (scenarios `corrupt` and `truncated` only; no measurements, no training, no
//! checks), and its panic handler calls a function that does not exist: the build links
//! only if the optimizer removed every panic path.
#![no_std]
#![no_main]

use core::sync::atomic::{compiler_fence, AtomicIsize, Ordering};

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{nr, syscall, syscall1};
use tinysde_app::report::error_code;
use tinysde_app::{seed, Board, Cycles, Event, Plan, Report};

#[cfg(feature = "stream")]
mod stream;

/// Exit statuses besides the stages' codes.
#[cfg(not(feature = "no-panic"))]
const EXIT_CHECK_FAILED: u32 = 6;
const EXIT_HARD_FAULT: u32 = 9;
const EXIT_BAD_SCENARIO: u32 = 10;

// ---------------------------------------------------------------- semihosting text out

/// A line of text, built without `core::fmt`.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    const fn new() -> Self {
        Self {
            buf: [0; 160],
            len: 0,
        }
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    fn word(&mut self, s: &str) -> &mut Self {
        self.str(" ").str(s)
    }

    /// ` ` and `x` in `nibbles` lower-case hex digits (leading zeros kept).
    #[inline(never)]
    fn hex(&mut self, x: u64, nibbles: u32) -> &mut Self {
        self.str(" ");
        for i in (0..nibbles).rev() {
            let nibble = ((x >> (4 * i)) & 0xF) as usize;
            let digit = b"0123456789abcdef".get(nibble).copied().unwrap_or(b'?');
            self.bytes(&[digit]);
        }
        self
    }

    fn hex32(&mut self, x: u32) -> &mut Self {
        self.hex(u64::from(x), 8)
    }

    fn hex64(&mut self, x: u64) -> &mut Self {
        self.hex(x, 16)
    }

    fn f32(&mut self, x: f32) -> &mut Self {
        self.hex32(x.to_bits())
    }

    /// ` ` and `x` in decimal.
    fn dec(&mut self, x: u32) -> &mut Self {
        self.str(" ").digits(x)
    }

    /// `x` in decimal, most significant digit first: by recursion, which the optimizer
    /// cannot unroll (an unrolled division loop cost 368 bytes of the 16 KB budget).
    #[inline(never)]
    fn digits(&mut self, x: u32) -> &mut Self {
        if x >= 10 {
            self.digits(x / 10);
        }
        self.bytes(&[b'0' + (x % 10) as u8])
    }

    #[inline(never)]
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        // As much as fits (a full line is cut short, never overrun).
        let free = self.buf.get_mut(self.len..).unwrap_or(&mut []);
        let n = bytes.len().min(free.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        self
    }

    /// Writes the line and a newline to the host's stdout.
    #[inline(never)]
    fn emit(&mut self) {
        self.bytes(b"\n");
        write_stdout(self.buf.get(..self.len).unwrap_or(&[]));
        self.len = 0;
    }
}

/// SYS_WRITE to the host's stdout (`:tt` opened for writing is stdout; QEMU also accepts
/// handle 1 directly, but opening is what the semihosting spec promises).
fn write_stdout(bytes: &[u8]) {
    // The handle, opened on first use (-1: not yet). An atomic rather than a `static mut`:
    // plain loads and stores, which every Cortex-M has (ARMv6-M included).
    static HANDLE: AtomicIsize = AtomicIsize::new(-1);
    let mut handle = HANDLE.load(Ordering::Relaxed);
    if handle < 0 {
        let name = b":tt\0";
        let block = [name.as_ptr() as usize, nr::open::W_TRUNC, name.len() - 1];
        // SAFETY: the block points at a NUL-terminated name of the stated length.
        handle = unsafe { syscall(nr::OPEN, &block) } as isize;
        HANDLE.store(handle, Ordering::Relaxed);
    }
    if handle >= 0 {
        let block = [handle as usize, bytes.as_ptr() as usize, bytes.len()];
        // SAFETY: the block points at a live buffer of the stated length.
        unsafe {
            syscall(nr::WRITE, &block);
        }
    }
}

/// Ends QEMU with `code` as its exit status (SYS_EXIT_EXTENDED, reason
/// ADP_Stopped_ApplicationExit, subcode = status).
fn exit(code: u32) -> ! {
    const SYS_EXIT_EXTENDED: usize = 0x20;
    const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as usize];
    loop {
        // SAFETY: the block lives across the call; QEMU does not return from it.
        unsafe {
            syscall(SYS_EXIT_EXTENDED, &block);
        }
    }
}

/// The first word after the program name on the semihosting command line, if any.
fn scenario(buf: &mut [u8; 96]) -> &[u8] {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    let block_ptr = block.as_mut_ptr();
    // SAFETY: the block points at `buf` with its length; QEMU writes at most that many
    // bytes and stores the length used in block[1] (through the raw pointer, so nothing
    // shared is written behind the compiler's back), which is read back volatile.
    let (status, used) = unsafe {
        let status = syscall1(nr::GET_CMDLINE, block_ptr as usize);
        (status, core::ptr::read_volatile(block_ptr.add(1)))
    };
    if status != 0 {
        return &[];
    }
    let len = used.min(buf.len());
    let line = buf.get(..len).unwrap_or(&[]);
    let mut words = line
        .split(|&b| b == b' ' || b == 0)
        .filter(|w| !w.is_empty());
    let _program = words.next();
    words.next().unwrap_or(&[])
}

// ------------------------------------------------------------------------ board parts

/// The report: one text line per event.
struct TextReport;

impl Report for TextReport {
    fn event(&mut self, event: &Event) {
        let mut l = Line::new();
        match *event {
            Event::Config {
                params,
                trajectories,
                steps,
                saves,
                t0,
                t1,
                u0,
                noise_seed,
                weights_crc,
            } => {
                l.str("CONFIG")
                    .dec(params)
                    .dec(trajectories)
                    .dec(steps)
                    .dec(saves)
                    .f32(t0)
                    .f32(t1)
                    .f32(u0)
                    .hex64(noise_seed)
                    .hex32(weights_crc);
            }
            Event::Forecast {
                index,
                t,
                mean,
                std,
            } => {
                l.str("FORECAST").dec(index).f32(t).f32(mean).f32(std);
            }
            #[cfg(not(feature = "no-panic"))]
            Event::Adaptive {
                index,
                t,
                mean,
                var,
            } => {
                l.str("ADAPTIVE").dec(index).f32(t).f32(mean).f32(var);
            }
            #[cfg(not(feature = "no-panic"))]
            Event::AdaptiveSteps {
                trajectories,
                depth,
                tolerance,
                accepted,
                rejected,
            } => {
                l.str("ADAPTIVE_STEPS")
                    .dec(trajectories)
                    .dec(depth)
                    .f32(tolerance)
                    .dec(accepted)
                    .dec(rejected);
            }
            Event::Cost { what, count, total } => {
                l.str("COST").word(what).dec(count).dec(total);
            }
            Event::Train {
                iteration,
                loss,
                cost,
            } => {
                l.str("TRAIN").dec(iteration).f32(loss);
                l.emit();
                l.str("COST train_iteration").dec(1).dec(cost);
            }
            Event::Stack { peak_bytes } => {
                l.str("STACK").dec(peak_bytes);
            }
            Event::Failed(e) => {
                let (kind, a, b) = error_code(&e.error);
                l.str("ERROR").word(e.stage.name()).word(kind).dec(a).dec(b);
            }
            Event::Done => {
                l.str("DONE");
            }
        }
        l.emit();
    }
}

/// The machine's timer, read as executed instructions. Under `-icount shift=0` one guest
/// instruction is 1 ns of virtual time, so a timer at `f` Hz advances once every
/// `1e9 / f` instructions; `boards/ci.sh` checks the scale against a loop of known length
/// (scenario `calibrate`).
struct InstructionClock;

/// Timer 0 of the CMSDK APB subsystem: a 32-bit down-counter clocked at 25 MHz (AN386) or
/// 20 MHz (the SSE-200 of AN505, reached through its Secure alias at 0x5000_0000 since the
/// core runs in the Secure state).
#[cfg(any(machine = "mps2-an386", machine = "mps2-an505"))]
impl InstructionClock {
    #[cfg(machine = "mps2-an386")]
    const BASE: usize = 0x4000_0000;
    #[cfg(machine = "mps2-an505")]
    const BASE: usize = 0x5000_0000;
    const CTRL: *mut u32 = Self::BASE as *mut u32;
    const VALUE: *mut u32 = (Self::BASE + 4) as *mut u32;
    const RELOAD: *mut u32 = (Self::BASE + 8) as *mut u32;
    /// Instructions per tick: 1e9 / 25e6 (AN386), 1e9 / 20e6 (AN505).
    #[cfg(machine = "mps2-an386")]
    const INSTRUCTIONS_PER_TICK: u32 = 40;
    #[cfg(machine = "mps2-an505")]
    const INSTRUCTIONS_PER_TICK: u32 = 50;

    fn start() -> Self {
        // SAFETY: the timer's registers exist in QEMU's model at these addresses.
        unsafe {
            core::ptr::write_volatile(Self::CTRL, 0);
            core::ptr::write_volatile(Self::RELOAD, u32::MAX);
            core::ptr::write_volatile(Self::VALUE, u32::MAX);
            core::ptr::write_volatile(Self::CTRL, 1);
        }
        Self
    }
}

#[cfg(any(machine = "mps2-an386", machine = "mps2-an505"))]
impl Cycles for InstructionClock {
    fn now(&mut self) -> u32 {
        compiler_fence(Ordering::SeqCst);
        // SAFETY: a read of the timer's value register.
        let v = unsafe { core::ptr::read_volatile(Self::VALUE) };
        compiler_fence(Ordering::SeqCst);
        (!v).wrapping_mul(Self::INSTRUCTIONS_PER_TICK)
    }
}

/// TIMER0 of the nRF51 at 0x4000_8000: a 32-bit up-counter at 16 MHz (prescaler 0), read by
/// triggering its CAPTURE[0] task and reading CC[0]. One tick is 62.5 instructions, so the
/// count is scaled by 125 / 2 (resolution 62 instructions).
#[cfg(machine = "microbit")]
impl InstructionClock {
    const BASE: usize = 0x4000_8000;
    const TASKS_START: *mut u32 = Self::BASE as *mut u32;
    const TASKS_CLEAR: *mut u32 = (Self::BASE + 0x00C) as *mut u32;
    const TASKS_CAPTURE0: *mut u32 = (Self::BASE + 0x040) as *mut u32;
    const MODE: *mut u32 = (Self::BASE + 0x504) as *mut u32;
    const BITMODE: *mut u32 = (Self::BASE + 0x508) as *mut u32;
    const PRESCALER: *mut u32 = (Self::BASE + 0x510) as *mut u32;
    const CC0: *mut u32 = (Self::BASE + 0x540) as *mut u32;

    fn start() -> Self {
        // SAFETY: the timer's registers exist in QEMU's nRF51 model at these addresses.
        unsafe {
            core::ptr::write_volatile(Self::MODE, 0); // timer, not counter
            core::ptr::write_volatile(Self::BITMODE, 3); // 32 bit
            core::ptr::write_volatile(Self::PRESCALER, 0); // 16 MHz
            core::ptr::write_volatile(Self::TASKS_CLEAR, 1);
            core::ptr::write_volatile(Self::TASKS_START, 1);
        }
        Self
    }
}

#[cfg(machine = "microbit")]
impl Cycles for InstructionClock {
    fn now(&mut self) -> u32 {
        compiler_fence(Ordering::SeqCst);
        // SAFETY: a write to the capture task and a read of the capture register.
        let ticks = unsafe {
            core::ptr::write_volatile(Self::TASKS_CAPTURE0, 1);
            core::ptr::read_volatile(Self::CC0)
        };
        compiler_fence(Ordering::SeqCst);
        // Differences of this u32 are exact (to the tick) while the tick counter has not
        // wrapped, i.e. for the first 268 s of virtual time (2.7e11 instructions).
        (u64::from(ticks) * 125 / 2) as u32
    }
}

/// The LED: QEMU's model has no LED worth driving, so the heartbeat goes nowhere.
struct NoLed;

impl embedded_hal::digital::ErrorType for NoLed {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for NoLed {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A delay that does nothing: under QEMU waiting only costs CI time.
struct NoDelay;

impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

/// The external interrupts of the AN386 image (QEMU models 32): none is used, all go to
/// cortex-m-rt's default handler. (Without its `device` feature cortex-m-rt would reserve
/// 240 entries, 832 bytes more flash.)
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
pub static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];

extern "C" {
    /// cortex-m-rt's default exception handler (`DefaultHandler_` unless overridden).
    fn DefaultHandler();
}

// ------------------------------------------------------------------------- scenarios

#[cfg(not(feature = "no-panic"))]
/// The blob of the seed model with its last drift bias set to 1e38: loads fine, but the
/// state grows by ~1e37 per step (h = 0.1) and overflows after a few dozen steps.
fn diverging_blob(buf: &mut [u8; 1024]) -> Option<&[u8]> {
    use tinysde::nn::Parameters;
    let mut model = tinysde_app::load(seed::WEIGHTS).ok()?;
    let mut params = [0.0f32; seed::PARAMS];
    model.read_params(&mut params).ok()?;
    // drift = (cube, dense(1,20), dense(20,1)): its output bias is parameter 20 + 20 + 20.
    *params.get_mut(60)? = 1e38;
    model.write_params(&params).ok()?;
    let n = tinysde::weights::write(&model, buf).ok()?;
    buf.get(..n)
}

#[cfg(not(feature = "no-panic"))]
/// A blob written for a drift with 16 hidden units instead of 20.
fn mismatched_blob(buf: &mut [u8; 1024]) -> Option<&[u8]> {
    use tinysde::nn::{Cube, Dense, FastTanh, Identity};
    type Other = tinysde::sde::NeuralSde<
        (Cube<1>, Dense<1, 16, FastTanh>, Dense<16, 1, Identity>),
        seed::Diffusion,
    >;
    let model = Other::default();
    let n = tinysde::weights::write(&model, buf).ok()?;
    buf.get(..n)
}

/// The seed blob with one bit flipped in its first parameter.
fn corrupted_blob(buf: &mut [u8; 1024]) -> Option<&[u8]> {
    let n = seed::WEIGHTS.len();
    let copy = buf.get_mut(..n)?;
    copy.copy_from_slice(seed::WEIGHTS);
    let at = n.checked_sub(4 + 4 * seed::PARAMS)?; // first byte of the parameters
    *copy.get_mut(at)? ^= 0x10;
    Some(copy)
}

#[cfg(not(feature = "no-panic"))]
/// Two instructions per iteration (`subs`, `bne`): `iterations * 2` instructions.
#[inline(never)]
fn known_loop(iterations: u32) {
    // SAFETY: a register-only loop (r0: a low register, as ARMv6-M's `subs` needs).
    unsafe {
        core::arch::asm!(
            "2:",
            "subs r0, r0, #1",
            "bne 2b",
            inout("r0") iterations => _,
            options(nomem, nostack),
        );
    }
}

#[cfg(not(feature = "no-panic"))]
/// The tests that run on the target: every check of `tinysde_app::checks` as a `CHECK`
/// record, then `CHECKS <passed> <total>`, the peak stack, and exit 0 only if all passed.
fn selftest() -> ! {
    let (mut passed, mut total) = (0u32, 0u32);
    tinysde_app::checks::run_all(|c| {
        let mut l = Line::new();
        l.str("CHECK")
            .word(c.name)
            .word(if c.passed { "ok" } else { "FAIL" });
        for &v in &c.values {
            l.f32(v);
        }
        l.emit();
        total += 1;
        passed += u32::from(c.passed);
    });
    let mut l = Line::new();
    l.str("CHECKS").dec(passed).dec(total);
    l.emit();
    l.str("STACK").dec(tinysde_app::stack::peak_bytes());
    l.emit();
    exit(if passed == total {
        0
    } else {
        EXIT_CHECK_FAILED
    })
}

#[entry]
// The streaming firmware leaves the seed run below it unreachable.
#[cfg_attr(
    feature = "stream",
    allow(unreachable_code, unused_variables, unused_mut)
)]
fn main() -> ! {
    let mut board = Board {
        led: NoLed,
        led_active_high: true,
        delay: NoDelay,
        clock: InstructionClock::start(),
        report: TextReport,
    };
    let mut plan = Plan::default();
    let mut cmdline = [0u8; 96];
    let scenario = scenario(&mut cmdline);
    // RAM for the blobs the bad-input scenarios build: a safe `&'static mut` handed out
    // once (cortex-m's `singleton!`), in .bss rather than on the measured stack.
    let Some(buf) = cortex_m::singleton!(: [u8; 1024] = [0; 1024]) else {
        exit(EXIT_BAD_SCENARIO)
    };
    // The streaming firmware: the model and readings chosen at build time.
    #[cfg(feature = "stream")]
    stream::main(scenario, &mut board.clock, buf);
    match scenario {
        b"" => {}
        #[cfg(not(feature = "no-panic"))]
        b"selftest" => selftest(),
        #[cfg(not(feature = "no-panic"))]
        b"short" => plan.train_iterations = 1,
        #[cfg(not(feature = "no-panic"))]
        b"calibrate" => {
            let n = 1_000_000;
            let a = board.clock.now();
            known_loop(n);
            let b = board.clock.now();
            let mut l = Line::new();
            l.str("CALIBRATE").dec(2 * n).dec(b.wrapping_sub(a));
            l.emit();
            exit(0);
        }
        b"corrupt" => match corrupted_blob(buf) {
            Some(b) => plan.weights = b,
            None => exit(EXIT_BAD_SCENARIO),
        },
        b"truncated" => {
            plan.weights = seed::WEIGHTS
                .get(..seed::WEIGHTS.len().saturating_sub(7))
                .unwrap_or(&[]);
        }
        #[cfg(not(feature = "no-panic"))]
        b"mismatch" => match mismatched_blob(buf) {
            Some(b) => plan.weights = b,
            None => exit(EXIT_BAD_SCENARIO),
        },
        #[cfg(not(feature = "no-panic"))]
        b"diverge" => match diverging_blob(buf) {
            Some(b) => plan.weights = b,
            None => exit(EXIT_BAD_SCENARIO),
        },
        _ => {
            let mut l = Line::new();
            l.str("ERROR scenario unknown 0 0");
            l.emit();
            exit(EXIT_BAD_SCENARIO);
        }
    }
    // The inference firmware: load, forecast, report; no measurements, no training.
    #[cfg(feature = "no-panic")]
    {
        plan.bench = false;
        plan.train_iterations = 0;
    }
    match tinysde_app::run(&mut board, &plan) {
        Ok(()) => exit(0),
        Err(e) => exit(u32::from(e.stage.code())),
    }
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    let mut l = Line::new();
    l.str("HARDFAULT");
    l.emit();
    exit(EXIT_HARD_FAULT)
}

/// Any panic: report it and exit with status 101, as a host test would.
#[cfg(not(feature = "no-panic"))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    let mut l = Line::new();
    l.str("PANIC");
    l.emit();
    exit(101)
}

/// The no-panic build: no panic handler body exists to link against, so any call to
/// `panic` that survives optimization is an undefined-symbol link error naming
/// `tinysde_no_panic_check_failed`.
#[cfg(feature = "no-panic")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    extern "C" {
        fn tinysde_no_panic_check_failed() -> !;
    }
    // SAFETY: never actually called; if it is referenced, linking fails.
    unsafe { tinysde_no_panic_check_failed() }
}
