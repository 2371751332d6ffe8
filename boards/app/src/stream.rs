//! The streaming forecast: readings in, forecasts with their band out, surprises flagged.
//!
//! [`run`] reads a [`Sensor`] until it ends (a replayed series) or forever (a real
//! sensor): each reading goes to the forecaster ([`Forecaster::observe`]), which first
//! checks it against the band predicted for its time (the first and last of the model
//! file's quantiles, 5 and 95 % by default, of the ensemble propagated from the last
//! reading: outside is a surprise), then the forecast of the next [`HORIZONS`] data
//! intervals is reported ([`Forecaster::forecast`]): mean and the quantiles of
//! [`QUANTILES`] in the data's units.
//!
//! The forecaster is the library's ([`tinysde::forecast::Forecaster`], here [`Library`]):
//! an ensemble of [`PATHS`] members of the generated [`Model`] stepped with SOSRI in steps
//! of at most the file's `max_step`, the data scaling, time axis and quantile levels of the
//! model file, the noise seed given at run time ([`NOISE_SEED`], the file's, for the host's
//! numbers; the real boards seed from their hardware). Its numbers are `fit_csv`'s host
//! forecast bit for bit (`boards/ci.sh` compares the bands with `fit_csv`'s
//! `forecast.csv`). This module keeps the firmware's view of it: a [`Band`] per reading and
//! horizon, and [`run`], the loop the boards call. The forecaster is made from constants
//! generated at build time from the model file (`Forecaster::from_parts`): the file's bytes
//! are only checked (length, CRC-32) and its parameters copied, for a version-2 file as
//! for a version-1 one (the seed model, or `fit_csv.weights` with the `fit_csv.json`
//! beside it).

use tinysde::forecast::{Arrays, Check};
use tinysde::solve::Sosri;
use tinysde::{Error, ForecastError};

use crate::model::{self, Model, D};
use crate::sensor::{Reading, Sensor};
use crate::Cycles;

pub use crate::model::{NOISE_SEED, PATHS, Q, QUANTILES};
/// Forecast horizons after each reading (one per data interval).
pub const HORIZONS: usize = 3;

/// The forecaster's time buffer: the readings with a missing column since the last
/// complete one, plus the [`HORIZONS`] of a forecast (the forecasts after the 6th and 7th
/// such reading in a row are skipped; the 8th becomes the new origin, see
/// [`tinysde::forecast`]).
pub const TIMES: usize = HORIZONS + 5;

/// The library's streaming forecaster over the firmware's model: [`D`] state components,
/// all observed, [`PATHS`] members, [`TIMES`] times, SOSRI, and the last
/// [`model::SEASONAL_LAG`] readings for a seasonal difference ([`model::HISTORY`] values;
/// none, and no code for it, without one).
pub type Library = tinysde::forecast::Forecaster<
    Model,
    Sosri,
    D,
    D,
    Arrays<D, PATHS, TIMES, { model::HISTORY }>,
>;

/// The horizons forecast after each reading: [`HORIZONS`], or fewer with a seasonal
/// difference of a shorter lag (the forecast reaches at most the lag).
pub const FORECASTS: usize = if model::SEASONAL_LAG > 0 && (model::SEASONAL_LAG as usize) < HORIZONS {
    model::SEASONAL_LAG as usize
} else {
    HORIZONS
};

/// A forecast at one time: per column, the ensemble mean and the quantiles of [`QUANTILES`],
/// in the data's units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    /// The time forecast, in the data's units.
    pub time: f64,
    /// Ensemble mean per column.
    pub mean: [f64; D],
    /// Quantiles per level of [`QUANTILES`], per column.
    pub q: [[f64; D]; Q],
}

impl Band {
    /// All zero (a placeholder to write into).
    pub const ZERO: Self = Self {
        time: 0.0,
        mean: [0.0; D],
        q: [[0.0; D]; Q],
    };

    /// Column `c`'s `[mean, quantiles...]` (as the library hands them out) into the band.
    fn set(&mut self, c: usize, summary: &[f64]) {
        if let (Some((&m, qs)), Some(mean)) = (summary.split_first(), self.mean.get_mut(c)) {
            *mean = m;
            for (level, &v) in self.q.iter_mut().zip(qs) {
                if let Some(slot) = level.get_mut(c) {
                    *slot = v;
                }
            }
        }
    }
}

/// What [`Forecaster::observe`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// The band predicted for this reading (none before the first complete reading).
    pub band: Option<Band>,
    /// Whether a measured column lies outside its band (first to last quantile).
    pub outside: bool,
}

/// The streaming forecaster of the firmware: the library's ([`Library`]) with its results
/// as [`Band`]s (fixed memory: the model, the ensemble and the time buffer).
#[derive(Clone, Debug)]
pub struct Forecaster {
    inner: Library,
}

impl Forecaster {
    /// The forecaster of the model file `bytes` (the firmware's [`model::MODEL_FILE`], or
    /// a copy) whose Brownian paths come from `seed` ([`NOISE_SEED`] for the host's
    /// numbers; a hardware random seed for independent forecasts): the file is checked to
    /// be the one the firmware was built from ([`model::load_built`]: length and CRC-32)
    /// and its parameters loaded; the scaling, time axis, solver and defaults are the
    /// constants generated from it ([`model::deployment`], `Library::from_parts`). No file
    /// reader is linked; the forecasts are those of the library's `Forecaster::new` from
    /// the file, bit for bit.
    ///
    /// Errors (typed, from the library): a corrupt, truncated or other file.
    pub fn load(bytes: &[u8], seed: u64) -> Result<Self, Error> {
        let inner = Library::from_parts(
            model::load_built(bytes)?,
            Sosri,
            &model::deployment()?,
            Arrays::new(),
        )?;
        Ok(Self {
            inner: inner.with_seed(seed),
        })
    }

    /// The library's forecaster inside.
    pub fn library(&self) -> &Library {
        &self.inner
    }

    /// The library's forecaster inside, to change (the on-device adaptation refines its
    /// model).
    pub fn library_mut(&mut self) -> &mut Library {
        &mut self.inner
    }

    /// Readings taken so far.
    pub fn readings(&self) -> u32 {
        u32::try_from(self.inner.readings()).unwrap_or(u32::MAX)
    }

    /// Takes a reading: checks it against the band predicted for its time, then updates
    /// the ensemble with it (if every column was measured): [`Library::observe_with`].
    ///
    /// Errors (the forecaster is unchanged): the library's ([`ForecastError::BadTime`],
    /// [`ForecastError::TimeOrder`], [`ForecastError::BadValue`], a diverging ensemble).
    pub fn observe(&mut self, time: f64, values: &[Option<f64>; D]) -> Result<Observation, Error> {
        let mut band = Band::ZERO;
        let mut predicted = false;
        let outcome =
            self.inner
                .observe_with(time, values, &mut [] as &mut [Check], |c, _, summary| {
                    band.set(c, summary);
                    predicted = true;
                })?;
        band.time = time;
        Ok(Observation {
            band: predicted.then_some(band),
            outside: outcome.outside != 0,
        })
    }

    /// Forecasts at `times` (data units, increasing, after the last reading; at most
    /// [`HORIZONS`]) into `out` (same length): [`Library::forecast_with`].
    ///
    /// Errors (`out` untouched): [`ForecastError::Output`] for `out` of another length or
    /// more than [`HORIZONS`] times; the library's otherwise ([`ForecastError::NoState`]
    /// before any complete reading, [`ForecastError::TimeOrder`] /
    /// [`ForecastError::BadTime`] for times not increasing, [`ForecastError::Capacity`]
    /// after too many readings with a missing column).
    pub fn forecast(&mut self, times: &[f64], out: &mut [Band]) -> Result<(), Error> {
        let n = times.len();
        if n != out.len() || n > HORIZONS {
            return Err(ForecastError::Output.into());
        }
        let mut bands = [Band::ZERO; HORIZONS];
        for (b, &t) in bands.iter_mut().zip(times) {
            b.time = t;
        }
        self.inner.forecast_with(times, |j, c, _, summary| {
            if let Some(b) = bands.get_mut(j) {
                b.set(c, summary);
            }
        })?;
        for (o, b) in out.iter_mut().zip(bands.iter()) {
            *o = *b;
        }
        Ok(())
    }
}

/// Something the streaming run reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StreamEvent {
    /// The configuration (first).
    Config {
        /// Model parameters.
        params: u32,
        /// State dimension (= columns).
        dim: u32,
        /// Ensemble paths.
        paths: u32,
        /// Horizons forecast after each reading.
        horizons: u32,
        /// Largest solver step, model time.
        max_step: f32,
        /// Data time units per model time unit (one data interval).
        time_unit: f64,
        /// Noise seed.
        seed: u64,
        /// CRC-32 of the model file (its stored checksum).
        file_crc: u32,
    },
    /// A reading and what the forecaster found.
    Observed {
        /// Index of the reading.
        index: u32,
        /// The reading.
        reading: Reading<D>,
        /// The check against its predicted band.
        observation: Observation,
    },
    /// A forecast after reading `index`.
    Forecast {
        /// Index of the reading it follows.
        index: u32,
        /// Horizon number, from 1.
        horizon: u32,
        /// The forecast.
        band: Band,
    },
}

/// Where [`run`] sends its events.
pub trait StreamReport {
    /// Reports one event.
    fn event(&mut self, event: &StreamEvent);
    /// Reports the board clock units one `observe` plus `forecast` took.
    fn cost(&mut self, index: u32, units: u32);
}

/// Why [`run`] stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StreamError<E> {
    /// The model file did not load (typed library error).
    Load(Error),
    /// The forecaster refused a reading or failed to forecast.
    Forecast {
        /// Index of the reading.
        index: u32,
        /// The library's error.
        error: Error,
    },
    /// The sensor failed.
    Sensor(E),
}

/// The model file's stored checksum (its last four bytes), 0 if too short.
fn stored_crc(file: &[u8]) -> u32 {
    file.len()
        .checked_sub(4)
        .and_then(|at| file.get(at..))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The streaming firmware: loads `file` into the generated [`Model`], then for each
/// reading of `sensor` (at most `limit`): observe it, forecast the next [`HORIZONS`] data
/// intervals, report both and the clock units they took (no forecast while there is no
/// complete reading to forecast from, or after too many readings with a missing column in
/// a row: see [`TIMES`]). Returns the readings taken when the sensor ends or `limit` is
/// reached; the first other error ends the run.
pub fn run<S, R, C>(
    file: &[u8],
    seed: u64,
    sensor: &mut S,
    report: &mut R,
    clock: &mut C,
    limit: u32,
) -> Result<u32, StreamError<S::Error>>
where
    S: Sensor<D>,
    R: StreamReport,
    C: Cycles,
{
    report.event(&StreamEvent::Config {
        params: model::PARAMS as u32,
        dim: D as u32,
        paths: PATHS as u32,
        horizons: HORIZONS as u32,
        max_step: model::MAX_STEP,
        time_unit: model::TIME_UNIT,
        seed,
        file_crc: stored_crc(file),
    });
    let mut forecaster = Forecaster::load(file, seed).map_err(StreamError::Load)?;
    while forecaster.readings() < limit {
        let Some(reading) = sensor.read().map_err(StreamError::Sensor)? else {
            break;
        };
        let index = forecaster.readings();
        let fail = |error| StreamError::Forecast { index, error };
        let a = clock.now();
        let observation = forecaster
            .observe(reading.time, &reading.values)
            .map_err(fail)?;
        let mut times = [0.0f64; FORECASTS];
        for (j, t) in times.iter_mut().enumerate() {
            *t = reading.time + (j + 1) as f64 * model::TIME_UNIT;
        }
        let mut bands = [Band::ZERO; FORECASTS];
        // Nothing to forecast from yet (no complete reading), or too many readings with a
        // missing column in a row for the time buffer, or (with a seasonal difference) a
        // missing reading one lag before a horizon: no forecast after this reading.
        let forecasts = match forecaster.forecast(&times, &mut bands) {
            Ok(()) => FORECASTS,
            Err(Error::Forecast(ForecastError::NoState | ForecastError::Capacity { .. })) => 0,
            Err(Error::NonFinite { .. }) if model::SEASONAL_LAG > 0 => 0,
            Err(e) => return Err(fail(e)),
        };
        let units = clock.now().wrapping_sub(a);
        report.event(&StreamEvent::Observed {
            index,
            reading,
            observation,
        });
        for (j, band) in bands.iter().take(forecasts).enumerate() {
            report.event(&StreamEvent::Forecast {
                index,
                horizon: j as u32 + 1,
                band: *band,
            });
        }
        report.cost(index, units);
    }
    Ok(forecaster.readings())
}

/// One text record per event, every number as its bit pattern in hex (`f64` as 16 digits,
/// `f32` as 8), built without `core::fmt`; the QEMU firmware and the host program print
/// the same text, which `boards/ci.sh` compares byte for byte:
///
/// ```text
/// STREAM_CONFIG <params> <dim> <paths> <horizons> <max_step f32> <time_unit f64> <seed> <file crc>
/// OBSERVE <index> <time> (<value|-> <first quantile|-> <last quantile|->) per column <ok|OUTSIDE|first>
/// PREDICT <index> <horizon> <time> (<mean> <each quantile of QUANTILES>) per column
/// ```
pub fn write_record(event: &StreamEvent, sink: &mut dyn FnMut(&[u8])) {
    let mut l = Text::new();
    match *event {
        StreamEvent::Config {
            params,
            dim,
            paths,
            horizons,
            max_step,
            time_unit,
            seed,
            file_crc,
        } => {
            l.str("STREAM_CONFIG")
                .dec(params)
                .dec(dim)
                .dec(paths)
                .dec(horizons)
                .hex(u64::from(max_step.to_bits()), 8)
                .hex(time_unit.to_bits(), 16)
                .hex(seed, 16)
                .hex(u64::from(file_crc), 8);
        }
        StreamEvent::Observed {
            index,
            reading,
            observation,
        } => {
            l.str("OBSERVE").dec(index).hex(reading.time.to_bits(), 16);
            for c in 0..D {
                l.opt(reading.values.get(c).copied().flatten());
                l.opt(observation.band.map(|b| b.q[0][c]));
                l.opt(observation.band.map(|b| b.q[Q - 1][c]));
            }
            l.str(match (observation.band, observation.outside) {
                (None, _) => " first",
                (Some(_), false) => " ok",
                (Some(_), true) => " OUTSIDE",
            });
        }
        StreamEvent::Forecast {
            index,
            horizon,
            band,
        } => {
            l.str("PREDICT")
                .dec(index)
                .dec(horizon)
                .hex(band.time.to_bits(), 16);
            for c in 0..D {
                l.hex(band.mean[c].to_bits(), 16);
                for q in &band.q {
                    l.hex(q[c].to_bits(), 16);
                }
            }
        }
    }
    l.str("\n");
    sink(l.as_bytes());
}

/// A line of text without `core::fmt` (a full line is cut short, never overrun); the
/// records of `stream` and `adapt` are written through it.
pub(crate) struct Text {
    buf: [u8; 32 + 72 * D],
    len: usize,
}

impl Text {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; 32 + 72 * D],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends ASCII bytes (what `hex` and `dec` build: no UTF-8 check to link).
    #[inline(never)]
    pub(crate) fn bytes(&mut self, s: &[u8]) -> &mut Self {
        let free = self.buf.get_mut(self.len..).unwrap_or(&mut []);
        let n = s.len().min(free.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), s.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        self
    }

    /// ` ` and `x` in `nibbles` lower-case hex digits.
    #[inline(never)]
    pub(crate) fn hex(&mut self, x: u64, nibbles: u32) -> &mut Self {
        let mut digits = [b' '; 17];
        for (i, d) in digits.iter_mut().skip(1).take(nibbles as usize).enumerate() {
            let nibble = (x >> (4 * (nibbles as usize - 1 - i))) & 0xF;
            *d = b"0123456789abcdef"
                .get(nibble as usize)
                .copied()
                .unwrap_or(b'?');
        }
        let s = digits.get(..nibbles as usize + 1).unwrap_or(&[]);
        self.bytes(s)
    }

    /// ` ` and `x` in decimal.
    #[inline(never)]
    pub(crate) fn dec(&mut self, x: u32) -> &mut Self {
        let mut digits = [0u8; 11];
        let mut i = digits.len();
        let mut v = x;
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || i == 1 {
                break;
            }
        }
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b' ';
        }
        self.bytes(digits.get(i..).unwrap_or(&[]))
    }

    /// ` ` and the bits of `x` as 16 hex digits, or ` -` for none.
    fn opt(&mut self, x: Option<f64>) -> &mut Self {
        match x {
            Some(v) => self.hex(v.to_bits(), 16),
            None => self.str(" -"),
        }
    }
}

/// Reports the streaming run through defmt (real boards): each reading with the band it was
/// checked against (a warning when it lies outside), each forecast with its band.
#[cfg(feature = "defmt")]
#[derive(Clone, Copy, Debug, Default)]
pub struct DefmtStreamReport {
    /// Name of the board's clock unit ("cycles", ...).
    pub unit: &'static str,
}

#[cfg(feature = "defmt")]
impl StreamReport for DefmtStreamReport {
    fn event(&mut self, event: &StreamEvent) {
        match *event {
            StreamEvent::Config {
                params,
                dim,
                paths,
                horizons,
                max_step,
                time_unit,
                seed,
                file_crc,
            } => defmt::info!(
                "stream: model of {=u32} parameters, {=u32} columns (file crc32 {=u32:#010x}); {=u32} paths, {=u32} horizons of {=f64} time units, steps <= {=f32}, noise seed {=u64:#x}",
                params, dim, file_crc, paths, horizons, time_unit, max_step, seed
            ),
            StreamEvent::Observed {
                index,
                reading,
                observation,
            } => {
                let x = reading.values.first().copied().flatten().unwrap_or(f64::NAN);
                match observation.band {
                    None => defmt::info!("reading[{=u32}] t = {=f64}: {=f64} (first)", index, reading.time, x),
                    Some(b) if observation.outside => defmt::warn!(
                        "reading[{=u32}] t = {=f64}: {=f64} OUTSIDE its band [{=f64}, {=f64}]",
                        index, reading.time, x, b.q[0][0], b.q[Q - 1][0]
                    ),
                    Some(b) => defmt::info!(
                        "reading[{=u32}] t = {=f64}: {=f64} within [{=f64}, {=f64}]",
                        index, reading.time, x, b.q[0][0], b.q[Q - 1][0]
                    ),
                }
            }
            StreamEvent::Forecast {
                index,
                horizon,
                band,
            } => defmt::info!(
                "forecast[{=u32}+{=u32}] t = {=f64}: mean {=f64}, band [{=f64}, {=f64}] (quantiles {=[?]})",
                index, horizon, band.time, band.mean[0], band.q[0][0], band.q[Q - 1][0], QUANTILES
            ),
        }
    }

    fn cost(&mut self, index: u32, units: u32) {
        defmt::info!(
            "cost: observe + forecast [{=u32}]: {=u32} {=str}",
            index,
            units,
            self.unit
        );
    }
}
