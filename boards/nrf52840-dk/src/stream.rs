//! The sensor firmware (feature `stream`): the nRF52840's on-die temperature sensor (the
//! `TEMP` peripheral, 0.25 °C steps, through nrf52840-hal's `Temp`) read once per
//! [`PERIOD_MS`], each reading given to the streaming forecaster of the model chosen at build
//! time (`TINYSDE_MODEL`), the forecast of the next readings with its 5-95 % band logged
//! over defmt, a reading outside its band logged as a warning. The forecast noise is seeded
//! from the hardware random number generator (`RNG`, 8 bytes, bias correction on).

use core::convert::Infallible;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use nrf52840_hal::gpio::{Output, Pin, PushPull};
use nrf52840_hal::{pac, Delay, Rng, Temp};
use tinysde_app::model;
use tinysde_app::sensor::{Periodic, Sample};
use tinysde_app::stream::{self, DefmtStreamReport, StreamError};

use crate::CycleCounter;

/// Milliseconds between readings.
pub const PERIOD_MS: u32 = 1000;

/// The die temperature in °C, one reading per [`PERIOD_MS`] (the first at once); LED1
/// toggles with each reading.
struct DieTemp {
    temp: Temp,
    delay: Delay,
    led: Pin<Output<PushPull>>,
    first: bool,
}

impl Sample for DieTemp {
    type Error = Infallible;

    fn sample(&mut self) -> Result<f32, Infallible> {
        if !self.first {
            self.delay.delay_ms(PERIOD_MS);
        }
        self.first = false;
        let _ = self.led.set_low();
        let celsius = self.temp.measure().to_num::<f32>();
        let _ = self.led.set_high();
        Ok(celsius)
    }
}

/// Runs the sensor firmware forever; on a typed error, blinks its code (2 load, 3 forecast).
pub fn main(temp: pac::TEMP, rng: pac::RNG, delay: Delay, led: Pin<Output<PushPull>>) -> ! {
    let mut rng = Rng::new(rng);
    let seed = rng.random_u64();
    defmt::info!(
        "sensor firmware: die temperature every {=u32} ms, model {=str}, noise seed {=u64:#x} (hardware RNG)",
        PERIOD_MS,
        model::DESCRIPTION,
        seed
    );
    let mut sensor = Periodic::new(
        DieTemp {
            temp: Temp::new(temp),
            delay,
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
        &mut CycleCounter,
        u32::MAX,
    );
    let code = match result {
        Ok(_) => 0,
        Err(StreamError::Load(e)) => {
            defmt::error!("model file: {}", e);
            2
        }
        Err(StreamError::Forecast { index, error }) => {
            defmt::error!("reading {=u32}: {}", index, error);
            3
        }
        Err(StreamError::Sensor(never)) => match never {},
    };
    let DieTemp {
        mut delay, mut led, ..
    } = sensor.into_source();
    tinysde_app::blink_error(&mut led, &mut delay, false, code.max(1))
}
