//! Readings: a [`Sensor`] gives the forecaster its readings, whatever produces them.
//!
//! - On the real boards a [`Periodic`] sensor samples a [`Sample`] source (the board crates
//!   wrap the nRF52840's on-die `TEMP` peripheral and the RP2040's ADC temperature channel
//!   through their HALs) once per data interval.
//! - Under QEMU, which has no sensor, [`Replay`] gives the series recorded at build time
//!   ([`recorded`], generated from the CSV named by `TINYSDE_READINGS`) from flash.
//!
//! Both go through the same code path ([`crate::stream::run`]).

/// One reading: its time in the data's time units and its values in the data's units
/// (`None`: this column was not measured).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading<const C: usize> {
    /// Time, in the data's units (the CSV's; dates as Unix seconds).
    pub time: f64,
    /// Values per column; `None` marks a missing one (never NaN).
    pub values: [Option<f64>; C],
}

/// Something that gives readings of `C` columns.
pub trait Sensor<const C: usize> {
    /// What can go wrong reading it.
    type Error;
    /// The next reading; `Ok(None)` when the source has ended (a recorded series).
    fn read(&mut self) -> Result<Option<Reading<C>>, Self::Error>;
}

/// The series recorded at build time (from the CSV named by `TINYSDE_READINGS`; the seed
/// data for the default build; none for another model without it).
pub mod recorded {
    include!(concat!(env!("OUT_DIR"), "/readings.rs"));
}

/// Replays [`recorded`] from flash, one row per read, then ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct Replay {
    next: usize,
}

impl Replay {
    /// From the first recorded row.
    pub const fn new() -> Self {
        Self { next: 0 }
    }
}

impl Sensor<{ recorded::COLUMNS }> for Replay {
    type Error = core::convert::Infallible;

    fn read(&mut self) -> Result<Option<Reading<{ recorded::COLUMNS }>>, Self::Error> {
        let (Some(&t), Some(row)) = (
            recorded::READING_TIMES.get(self.next),
            recorded::READING_VALUES.get(self.next),
        ) else {
            return Ok(None);
        };
        self.next += 1;
        Ok(Some(Reading {
            time: f64::from_bits(t),
            values: row.map(|v| v.map(f64::from_bits)),
        }))
    }
}

/// A source of one value per sample (a temperature channel, an ADC input, ...): what a
/// board crate implements on top of its HAL.
pub trait Sample {
    /// What can go wrong sampling it.
    type Error;
    /// Takes one sample, in the unit the model was trained on (e.g. degrees Celsius).
    fn sample(&mut self) -> Result<f32, Self::Error>;
}

/// A one-column sensor from a [`Sample`] source read once per data interval: reading `k`
/// is stamped `t0 + k * interval` (with [`crate::model::TIME_ORIGIN`] and
/// [`crate::model::TIME_UNIT`]: one reading per model time unit, the data's typical
/// interval). The board waits for the interval between reads.
#[derive(Clone, Copy, Debug)]
pub struct Periodic<S> {
    source: S,
    index: u32,
    t0: f64,
    interval: f64,
}

impl<S: Sample> Periodic<S> {
    /// Samples `source`, reading `k` stamped `t0 + k * interval`.
    pub const fn new(source: S, t0: f64, interval: f64) -> Self {
        Self {
            source,
            index: 0,
            t0,
            interval,
        }
    }

    /// The underlying source.
    pub fn source(&mut self) -> &mut S {
        &mut self.source
    }

    /// Gives the source back.
    pub fn into_source(self) -> S {
        self.source
    }
}

impl<S: Sample> Sensor<1> for Periodic<S> {
    type Error = S::Error;

    fn read(&mut self) -> Result<Option<Reading<1>>, Self::Error> {
        let x = self.source.sample()?;
        let time = self.t0 + f64::from(self.index) * self.interval;
        self.index = self.index.saturating_add(1);
        Ok(Some(Reading {
            time,
            values: [Some(f64::from(x))],
        }))
    }
}
