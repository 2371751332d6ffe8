//! The sensor firmware (feature `stream`): the RP2040's on-chip temperature sensor (ADC
//! input 4, through rp2040-hal's `Adc` and `TempSense`) read once per [`PERIOD_MS`], each
//! reading given to the streaming forecaster of the model chosen at build time
//! (`TINYSDE_MODEL`), the forecast of the next readings with its 5-95 % band logged over
//! defmt, a reading outside its band logged as a warning. The RP2040 has no random number
//! generator peripheral: the forecast noise is seeded from 64 bits of the ring oscillator's
//! `RANDOMBIT` (jitter, not a vetted entropy source; enough for independent forecasts).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use rp2040_hal as hal;
use tinysde_app::model;
use tinysde_app::sensor::{Periodic, Sample};
use tinysde_app::stream::{self, DefmtStreamReport, StreamError};

use crate::TimerCycles;

/// Milliseconds between readings.
pub const PERIOD_MS: u32 = 1000;

/// The ADC's reference (the Pico's 3.3 V supply) and full scale (12 bits).
const VREF: f32 = 3.3;
const FULL_SCALE: f32 = 4096.0;

/// Die temperature in °C of a raw 12-bit reading of the temperature channel (RP2040
/// datasheet, 4.9.5: `T = 27 - (V - 0.706) / 0.001721`).
pub fn celsius(raw: u16) -> f32 {
    let volts = f32::from(raw) * (VREF / FULL_SCALE);
    27.0 - (volts - 0.706) / 0.001721
}

/// The die temperature, one reading per [`PERIOD_MS`] (the first at once); the LED is
/// lit while converting.
struct DieTemp<L> {
    adc: hal::Adc,
    sensor: hal::adc::TempSense,
    delay: hal::Timer,
    led: L,
    first: bool,
}

impl<L: OutputPin> Sample for DieTemp<L> {
    type Error = hal::adc::Error;

    fn sample(&mut self) -> Result<f32, hal::adc::Error> {
        if !self.first {
            self.delay.delay_ms(PERIOD_MS);
        }
        self.first = false;
        let _ = self.led.set_high();
        let raw = self.adc.read(&mut self.sensor);
        let _ = self.led.set_low();
        raw.map(celsius)
    }
}

/// 64 bits from the ring oscillator's random bit, one bit per read.
fn rosc_seed(rosc: hal::pac::ROSC) -> u64 {
    let rosc = hal::rosc::RingOscillator::new(rosc).initialize();
    (0..64).fold(0u64, |s, _| (s << 1) | u64::from(rosc.get_random_bit()))
}

/// Runs the sensor firmware forever; on a typed error, blinks its code (2 load, 3 forecast,
/// 8 ADC).
pub fn main<L: OutputPin>(
    adc: hal::pac::ADC,
    rosc: hal::pac::ROSC,
    resets: &mut hal::pac::RESETS,
    timer: hal::Timer,
    mut clock: TimerCycles,
    led: L,
) -> ! {
    let seed = rosc_seed(rosc);
    defmt::info!(
        "sensor firmware: die temperature every {=u32} ms, model {=str}, noise seed {=u64:#x} (ring oscillator)",
        PERIOD_MS,
        model::DESCRIPTION,
        seed
    );
    let mut adc = hal::Adc::new(adc, resets);
    let Some(sensor) = adc.take_temp_sensor() else {
        defmt::error!("temperature sensor already enabled");
        let mut led = led;
        let mut delay = timer;
        tinysde_app::blink_error(&mut led, &mut delay, true, 8)
    };
    let mut sensor = Periodic::new(
        DieTemp {
            adc,
            sensor,
            delay: timer,
            led,
            first: true,
        },
        model::TIME_ORIGIN,
        model::TIME_UNIT,
    );
    let mut report = DefmtStreamReport { unit: "cycles" };
    let result = stream::run(
        model::MODEL_FILE,
        seed,
        &mut sensor,
        &mut report,
        &mut clock,
        u32::MAX,
    );
    let code = match result {
        Ok(_) => 1,
        Err(StreamError::Load(e)) => {
            defmt::error!("model file: {}", e);
            2
        }
        Err(StreamError::Forecast { index, error }) => {
            defmt::error!("reading {=u32}: {}", index, error);
            3
        }
        Err(StreamError::Sensor(_)) => {
            defmt::error!("ADC conversion failed");
            8
        }
    };
    let DieTemp {
        mut delay, mut led, ..
    } = sensor.into_source();
    tinysde_app::blink_error(&mut led, &mut delay, true, code)
}
