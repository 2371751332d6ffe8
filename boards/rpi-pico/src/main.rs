//! tinysde firmware on the Raspberry Pi Pico (RP2040: Cortex-M0+ at 125 MHz, no FPU).
//!
//! The same app as on the Cortex-M4F boards, to show what soft float costs and what the
//! `micromath` backend saves (default feature; `--no-default-features` builds with libm).
//! Costs come from the 1 MHz system timer, scaled to 125 MHz cycles. The LED on GPIO25
//! (active high) is the heartbeat and blinks the stage's code on a typed error.
#![no_std]
#![no_main]

use defmt_rtt as _;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use hal::clocks::Clock;
use hal::pac;
use panic_probe as _;
use rp2040_hal as hal;
use tinysde_app::report::DefmtReport;
use tinysde_app::{blink_error, Board, Cycles, Plan};

/// The second-stage bootloader for the Pico's W25Q16 flash, first 256 bytes of flash.
#[link_section = ".boot2"]
#[used]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

// defmt timestamps: microseconds since boot from the RP2040's 64-bit timer (its raw
// registers, read high-low-high so a carry between the halves cannot tear the value). Every
// log line comes after the HAL has taken the timer out of reset.
defmt::timestamp!("{=u64:us}", {
    // SAFETY: reads of the timer's raw (non-latching) count registers.
    let timer = unsafe { &*pac::TIMER::ptr() };
    loop {
        let high = timer.timerawh().read().bits();
        let low = timer.timerawl().read().bits();
        if timer.timerawh().read().bits() == high {
            break (u64::from(high) << 32) | u64::from(low);
        }
    }
});

#[cfg(feature = "stream")]
mod stream;

/// The Pico's crystal.
const XTAL_FREQ_HZ: u32 = 12_000_000;

/// System-clock cycles from the 1 MHz timer: `cycles_per_us` cycles per tick.
struct TimerCycles {
    timer: hal::Timer,
    cycles_per_us: u32,
}

impl Cycles for TimerCycles {
    fn now(&mut self) -> u32 {
        self.timer
            .get_counter_low()
            .wrapping_mul(self.cycles_per_us)
    }
}

#[hal::entry]
// The sensor firmware leaves the seed run below it unreachable.
#[cfg_attr(feature = "stream", allow(unreachable_code))]
fn main() -> ! {
    let Some(mut p) = pac::Peripherals::take() else {
        loop {
            cortex_m::asm::wfi();
        }
    };
    let mut watchdog = hal::Watchdog::new(p.WATCHDOG);
    let Ok(clocks) = hal::clocks::init_clocks_and_plls(
        XTAL_FREQ_HZ,
        p.XOSC,
        p.CLOCKS,
        p.PLL_SYS,
        p.PLL_USB,
        &mut p.RESETS,
        &mut watchdog,
    ) else {
        defmt::error!("clock setup failed");
        loop {
            cortex_m::asm::wfi();
        }
    };
    let timer = hal::Timer::new(p.TIMER, &mut p.RESETS, &clocks);
    let sio = hal::Sio::new(p.SIO);
    let pins = hal::gpio::Pins::new(p.IO_BANK0, p.PADS_BANK0, sio.gpio_bank0, &mut p.RESETS);
    let led = pins.gpio25.into_push_pull_output();
    let cycles_per_us = clocks.system_clock.freq().to_MHz();
    defmt::info!("system clock {=u32} MHz", cycles_per_us);
    // The sensor firmware: die temperature in, forecasts with their band out.
    #[cfg(feature = "stream")]
    stream::main(
        p.ADC,
        p.ROSC,
        &mut p.RESETS,
        timer,
        TimerCycles {
            timer,
            cycles_per_us,
        },
        led,
    );

    let mut board = Board {
        led,
        led_active_high: true,
        delay: timer,
        clock: TimerCycles {
            timer,
            cycles_per_us,
        },
        report: DefmtReport { unit: "cycles" },
    };
    match tinysde_app::run(&mut board, &Plan::default()) {
        Ok(()) => {
            defmt::info!("heartbeat from here on; Ctrl-C ends probe-rs");
            loop {
                let _ = board.led.set_high();
                board.delay.delay_ms(50);
                let _ = board.led.set_low();
                board.delay.delay_ms(950);
            }
        }
        Err(e) => blink_error(&mut board.led, &mut board.delay, true, e.stage.code()),
    }
}
