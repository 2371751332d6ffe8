//! tinysde firmware on the nRF52840 DK (Cortex-M4F at 64 MHz).
//!
//! `cargo run --release` flashes through probe-rs and streams defmt over RTT: the forecast
//! (mean and standard deviation at the save times), CPU cycles per Euler–Maruyama step and
//! per gradient from the DWT cycle counter, the on-device training loss, peak stack. LED1
//! (P0.13, active low) is the heartbeat; on a typed error it blinks the stage's code
//! (2 load, 3 forecast, 4 bench, 5 train, 7 adaptive) forever.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::DWT;
use cortex_m_rt::entry;
use defmt_rtt as _;
use nrf52840_hal::gpio::{p0, Level};
use nrf52840_hal::pac;
use nrf52840_hal::Delay;
use panic_probe as _;
use tinysde_app::report::DefmtReport;
use tinysde_app::{blink_error, Board, Cycles, Plan};

#[cfg(feature = "stream")]
mod stream;

/// The upper 32 bits of the cycle count behind the defmt timestamps, and the last count seen.
static CYCLES_HIGH: AtomicU32 = AtomicU32::new(0);
static CYCLES_LAST: AtomicU32 = AtomicU32::new(0);

// defmt timestamps: microseconds since the cycle counter started (64 cycles per us),
// extended to 64 bits by counting wraps; a wrap is seen as long as something is logged at
// least once per 67 s (the run logs far more often than that).
defmt::timestamp!("{=u64:us}", {
    let now = DWT::cycle_count();
    let last = CYCLES_LAST.swap(now, Ordering::Relaxed);
    let high = if now < last {
        CYCLES_HIGH.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        CYCLES_HIGH.load(Ordering::Relaxed)
    };
    ((u64::from(high) << 32) | u64::from(now)) / 64
});

/// The DWT cycle counter: CPU cycles at 64 MHz, wrapping every 67 s.
struct CycleCounter;

impl Cycles for CycleCounter {
    fn now(&mut self) -> u32 {
        DWT::cycle_count()
    }
}

#[entry]
// The sensor firmware leaves the seed run below it unreachable.
#[cfg_attr(feature = "stream", allow(unreachable_code, unused_variables))]
fn main() -> ! {
    let (Some(mut core), Some(p)) = (pac::CorePeripherals::take(), pac::Peripherals::take()) else {
        defmt::error!("peripherals already taken");
        loop {
            cortex_m::asm::wfi();
        }
    };
    // The flash instruction cache is off after reset; with it the core runs from flash
    // without wait states most of the time.
    p.NVMC.icachecnf.write(|w| w.cacheen().enabled());
    core.DCB.enable_trace();
    core.DWT.enable_cycle_counter();

    let port0 = p0::Parts::new(p.P0);
    // LED1 is wired to P0.13 and lights when the pin is low: start it off (high).
    let led = port0.p0_13.into_push_pull_output(Level::High).degrade();
    // The sensor firmware: die temperature in, forecasts with their band out.
    #[cfg(feature = "stream")]
    stream::main(p.TEMP, p.RNG, Delay::new(core.SYST), led);
    let mut board = Board {
        led,
        led_active_high: false,
        delay: Delay::new(core.SYST),
        clock: CycleCounter,
        report: DefmtReport { unit: "cycles" },
    };
    match tinysde_app::run(&mut board, &Plan::default()) {
        Ok(()) => {
            defmt::info!("heartbeat from here on; Ctrl-C ends probe-rs");
            loop {
                let _ = embedded_hal::digital::OutputPin::set_low(&mut board.led);
                embedded_hal::delay::DelayNs::delay_ms(&mut board.delay, 50);
                let _ = embedded_hal::digital::OutputPin::set_high(&mut board.led);
                embedded_hal::delay::DelayNs::delay_ms(&mut board.delay, 950);
            }
        }
        Err(e) => blink_error(&mut board.led, &mut board.delay, false, e.stage.code()),
    }
}
