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
//! The forecaster is the one of `fit_csv`'s host forecast (`examples/common/fit.rs`,
//! `predict_rows`): an ensemble of [`PATHS`] SOSRI paths of the model from the last fully
//! observed reading (scaled with the model file's scaling), steps of at most
//! [`crate::model::MAX_STEP`], the Brownian paths of `NOISE_SEED ^ index * φ`, quantiles by
//! `tinysde::train::ensemble_quantile`. It stands in for the library's
//! `tinysde::forecast::Forecaster`, which gives the same bits (a host test in
//! `boards/stream-host` compares them reading by reading over the Nile series) but takes
//! only version-2 files (`fit_csv` writes version 1 and `fit_csv.json` today) and its
//! noise seed only from the file (the boards seed from their hardware). The boards call
//! this module's API ([`run`]), so the switch stays inside it.

use tinysde::noise::Brownian;
use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, Solver, Sosri, TimeGrid};
use tinysde::train::ensemble_quantile;
use tinysde::Error;

use crate::model::{self, Model, D};
use crate::sensor::{Reading, Sensor};
use crate::Cycles;

pub use crate::model::{NOISE_SEED, PATHS, Q, QUANTILES};
/// Forecast horizons after each reading (one per data interval).
pub const HORIZONS: usize = 3;

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
    const ZERO: Self = Self {
        time: 0.0,
        mean: [0.0; D],
        q: [[0.0; D]; Q],
    };
}

/// What [`Forecaster::observe`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// The band predicted for this reading (none for the first reading).
    pub band: Option<Band>,
    /// Whether a measured column lies outside its band (first to last quantile).
    pub outside: bool,
}

/// The streaming forecaster over the model the firmware was built with (fixed memory:
/// the model, the last fully observed reading and a counter; forecasts use the stack).
#[derive(Clone, Debug)]
pub struct Forecaster {
    model: Model,
    seed: u64,
    readings: u32,
    last_time: Option<f64>,
    /// The last fully observed reading: its index, model time and scaled state.
    from: Option<(u32, f32, [f32; D])>,
}

/// Model time of data time `t`.
fn tau(t: f64) -> f32 {
    ((t - model::TIME_ORIGIN) / model::TIME_UNIT) as f32
}

impl Forecaster {
    /// A forecaster of `model` whose Brownian paths come from `seed` ([`NOISE_SEED`] for
    /// the host's numbers; a hardware random seed for independent forecasts).
    pub fn new(model: Model, seed: u64) -> Self {
        Self {
            model,
            seed,
            readings: 0,
            last_time: None,
            from: None,
        }
    }

    /// Readings taken so far.
    pub fn readings(&self) -> u32 {
        self.readings
    }

    /// Takes a reading: checks it against the band predicted for its time, then starts the
    /// next forecasts from it (if every column was measured).
    ///
    /// Errors (the forecaster is unchanged): [`Error::NonFinite`] for a non-finite time or
    /// value, or a value whose scaled form overflows `f32`; [`Error::OutOfRange`] for a time
    /// not after the last reading's; errors of the prediction (a diverging model).
    pub fn observe(&mut self, time: f64, values: &[Option<f64>; D]) -> Result<Observation, Error> {
        if !time.is_finite() || !tau(time).is_finite() {
            return Err(Error::NonFinite {
                what: "reading time",
                index: 0,
            });
        }
        if self.last_time.is_some_and(|last| time <= last) {
            return Err(Error::OutOfRange {
                what: "reading time must be after the last reading's",
            });
        }
        let mut z = [0.0f32; D];
        let mut complete = true;
        for (c, (v, zc)) in values.iter().zip(z.iter_mut()).enumerate() {
            match v {
                Some(x) => {
                    let s = ((x - model::COLUMN_MEAN[c]) / model::COLUMN_STD[c]) as f32;
                    if !x.is_finite() || !s.is_finite() {
                        return Err(Error::NonFinite {
                            what: "reading value",
                            index: c,
                        });
                    }
                    *zc = s;
                }
                None => complete = false,
            }
        }
        let mut band = None;
        let mut outside = false;
        if self.from.is_some() {
            let mut out = [Band::ZERO];
            self.forecast(&[time], &mut out)?;
            let [b] = out;
            for (c, v) in values.iter().enumerate() {
                if let Some(x) = *v {
                    outside |= x < b.q[0][c] || x > b.q[Q - 1][c];
                }
            }
            band = Some(b);
        }
        if complete {
            self.from = Some((self.readings, tau(time), z));
        }
        self.readings = self.readings.saturating_add(1);
        self.last_time = Some(time);
        Ok(Observation { band, outside })
    }

    /// Forecasts at `times` (data units, increasing, after the last fully observed reading;
    /// at most [`HORIZONS`]) into `out` (same length).
    ///
    /// Errors (`out` untouched): [`Error::Length`] for `out` of another length or more than
    /// [`HORIZONS`] times; [`Error::OutOfRange`] before any complete reading; [`Error::SaveTime`]
    /// for times not increasing or not after the last complete reading; solver errors.
    pub fn forecast(&self, times: &[f64], out: &mut [Band]) -> Result<(), Error> {
        let n = times.len();
        if n != out.len() || n == 0 || n > HORIZONS {
            return Err(Error::Length {
                what: "forecast times",
                expected: out.len().min(HORIZONS),
                found: n,
            });
        }
        let Some((index, tau0, z0)) = self.from else {
            return Err(Error::OutOfRange {
                what: "no complete reading to forecast from yet",
            });
        };
        let mut taus = [0.0f32; HORIZONS];
        let mut prev = tau0;
        for (i, (&t, s)) in times.iter().zip(taus.iter_mut()).enumerate() {
            *s = tau(t);
            if !s.is_finite() || *s <= prev {
                return Err(Error::SaveTime { index: i });
            }
            prev = *s;
        }
        let saves = taus.get(..n).unwrap_or(&[]);
        let solver = Solver::new(Sosri, TimeGrid::with_max_step(tau0, prev, model::MAX_STEP)?);
        let noise = Brownian::new(self.seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut mean = [[0.0f32; D]; HORIZONS];
        let mut var = [[0.0f32; D]; HORIZONS];
        let mut flat = [[0.0f32; D]; PATHS * HORIZONS];
        solve::simulate_into(
            &solver,
            &self.model,
            &noise,
            &EnsembleRequest::new(z0, PATHS, saves),
            EnsembleBuffers {
                mean: mean.get_mut(..n).unwrap_or(&mut []),
                variance: var.get_mut(..n).unwrap_or(&mut []),
                paths: Some(flat.get_mut(..n * PATHS).unwrap_or(&mut [])),
            },
        )?;
        let mut bands = [Band::ZERO; HORIZONS];
        let mut column = [0.0f32; PATHS];
        for (i, (band, &t)) in bands.iter_mut().zip(times).enumerate() {
            band.time = t;
            for c in 0..D {
                for (m, v) in column.iter_mut().enumerate() {
                    *v = flat.get(m * n + i).map_or(0.0, |s| s[c]);
                }
                let (mean_c, std_c) = (model::COLUMN_MEAN[c], model::COLUMN_STD[c]);
                for (q, &p) in band.q.iter_mut().zip(QUANTILES.iter()) {
                    q[c] = mean_c + f64::from(ensemble_quantile(&mut column, p)?) * std_c;
                }
                // As fit_csv: after the quantiles (which sort the samples), the mean of the
                // sorted samples in f64, then back to the data's units.
                let m = column.iter().map(|&v| f64::from(v)).sum::<f64>() / PATHS as f64;
                band.mean[c] = mean_c + f64::from(m as f32) * std_c;
            }
        }
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
/// intervals, report both and the clock units they took. Returns the readings taken when
/// the sensor ends or `limit` is reached; the first error ends the run.
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
    let model = model::load(file).map_err(StreamError::Load)?;
    let mut forecaster = Forecaster::new(model, seed);
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
        let mut times = [0.0f64; HORIZONS];
        for (j, t) in times.iter_mut().enumerate() {
            *t = reading.time + (j + 1) as f64 * model::TIME_UNIT;
        }
        let mut bands = [Band::ZERO; HORIZONS];
        forecaster.forecast(&times, &mut bands).map_err(fail)?;
        let units = clock.now().wrapping_sub(a);
        report.event(&StreamEvent::Observed {
            index,
            reading,
            observation,
        });
        for (j, band) in bands.iter().enumerate() {
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

/// A line of text without `core::fmt` (a full line is cut short, never overrun).
struct Text {
    buf: [u8; 32 + 72 * D],
    len: usize,
}

impl Text {
    const fn new() -> Self {
        Self {
            buf: [0; 32 + 72 * D],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends ASCII bytes (what `hex` and `dec` build: no UTF-8 check to link).
    #[inline(never)]
    fn bytes(&mut self, s: &[u8]) -> &mut Self {
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
    fn hex(&mut self, x: u64, nibbles: u32) -> &mut Self {
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
    fn dec(&mut self, x: u32) -> &mut Self {
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
