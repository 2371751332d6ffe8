//! On-device adaptation of the streaming forecaster (feature `adapt`, off by default):
//! `tinysde::forecast::adapt` over the firmware's model, in fixed memory.
//!
//! [`Adapting`] is the streaming [`Forecaster`] with an [`Adaptation`] of [`RING`] readings
//! and [`ADAPT_PATHS`] paths per window, one gradient step per new reading once the ring
//! is full (switched on by [`Adapting::set_enabled`]), and the buffers one step works in
//! (gradient, parameters, the reverse pass's [`STATS_ROWS`] statistics rows and
//! [`TAPE_ROWS`] tape rows: about `3 * 4 * PARAMS + 8 * (STATS_ROWS + TAPE_ROWS)` bytes).
//!
//! [`measure`] is what `boards/ci.sh` runs under QEMU: the first [`RING`] readings fill
//! the ring, then one adaptation step is timed; its loss and the adapted parameters (as a
//! CRC-32 of their bits) are reported, and the host (`boards/stream-host --adapt`) must
//! print the same.

use tinysde::forecast::adapt::{AdaptConfig, Adaptation, Workspace};
use tinysde::forecast::{Check, Outcome};
use tinysde::nn::Parameters;
use tinysde::{Dual, Error, Real};

use crate::model::{D, PARAMS};
use crate::sensor::Sensor;
use crate::stream::{Forecaster, Text};
use crate::Cycles;

/// Readings in the adaptation's ring (the windows of one step: `RING - 1`).
pub const RING: usize = 16;
/// Trajectories per window of the adaptation's loss.
pub const ADAPT_PATHS: usize = 8;
/// Rows of the reverse pass's statistics scratch (checked at run time).
pub const STATS_ROWS: usize = 8;
/// Rows of the reverse pass's tape (checked at run time).
pub const TAPE_ROWS: usize = 128 + PARAMS;

/// Windows of the ring per adaptation step (of `RING - 1`; a fresh batch each step).
pub const ADAPT_WINDOWS: usize = 8;

/// The adaptation's configuration: one step of length `0.05` per new reading,
/// [`ADAPT_PATHS`] paths on [`ADAPT_WINDOWS`] windows.
pub const CONFIG: AdaptConfig = AdaptConfig {
    steps: 1,
    learning_rate: 0.05,
    paths: ADAPT_PATHS,
    every: 1,
    windows: ADAPT_WINDOWS,
};

/// The streaming forecaster with on-device adaptation (see the module docs).
#[derive(Clone, Debug)]
pub struct Adapting {
    forecaster: Forecaster,
    adaptation: Adaptation<D, RING>,
    grad: [f32; PARAMS],
    params: [f32; PARAMS],
    stats: [[Dual<1>; D]; STATS_ROWS],
    tape: [[f32; D]; TAPE_ROWS],
}

impl Adapting {
    /// `forecaster` with an empty ring, adaptation switched off. Errors
    /// ([`Error::Length`]) if the scratch constants are too small for the model's step.
    // Inlined into each caller: returned by value it would cost a second copy of the
    // struct (about 2.3 KB of stack on the M4F) once two callers exist.
    #[inline(always)]
    pub fn new(forecaster: Forecaster) -> Result<Self, Error> {
        let adaptation = Adaptation::new(CONFIG)?;
        let lib = forecaster.library();
        let (stats, tape) = (adaptation.stats_len(lib), adaptation.tape_len(lib));
        if stats > STATS_ROWS || tape > TAPE_ROWS {
            return Err(Error::Length {
                what: "adaptation scratch rows (STATS_ROWS, TAPE_ROWS)",
                expected: stats.max(tape),
                found: STATS_ROWS.min(TAPE_ROWS),
            });
        }
        Ok(Self {
            forecaster,
            adaptation,
            grad: [0.0; PARAMS],
            params: [0.0; PARAMS],
            stats: [[Dual::ZERO; D]; STATS_ROWS],
            tape: [[0.0; D]; TAPE_ROWS],
        })
    }

    /// The switch (off by default).
    pub fn set_enabled(&mut self, on: bool) {
        self.adaptation.set_enabled(on);
    }

    /// The forecaster (its model adapted).
    pub fn forecaster(&mut self) -> &mut Forecaster {
        &mut self.forecaster
    }

    /// The adaptation's state.
    pub fn adaptation(&self) -> &Adaptation<D, RING> {
        &self.adaptation
    }

    /// The library forecaster's `observe` with the reading recorded in the ring and, when
    /// switched on, the adaptation step ([`Adaptation::observe`]); the loss of the step, if
    /// one was taken.
    pub fn observe(
        &mut self,
        time: f64,
        values: &[Option<f64>; D],
    ) -> Result<(Outcome, Option<f32>), Error> {
        self.observe_into(time, values, &mut [])
    }

    /// [`Adapting::observe`], also writing each column's check against its predicted band
    /// (mean, band ends, inside or not) into `checks`: [`Adaptation::observe_checked`].
    pub fn observe_checked(
        &mut self,
        time: f64,
        values: &[Option<f64>; D],
        checks: &mut [Check; D],
    ) -> Result<(Outcome, Option<f32>), Error> {
        self.observe_into(time, values, checks)
    }

    /// Both: `checks` empty or [`D`] long.
    fn observe_into(
        &mut self,
        time: f64,
        values: &[Option<f64>; D],
        checks: &mut [Check],
    ) -> Result<(Outcome, Option<f32>), Error> {
        let mut work = Workspace {
            grad: &mut self.grad,
            params: &mut self.params,
            stats: &mut self.stats,
            tape: &mut self.tape,
        };
        self.adaptation.observe_checked(
            self.forecaster.library_mut(),
            time,
            values,
            checks,
            &mut work,
        )
    }

    /// One adaptation step on the ring now (switched on or not); its loss.
    pub fn step(&mut self) -> Result<f32, Error> {
        let mut work = Workspace {
            grad: &mut self.grad,
            params: &mut self.params,
            stats: &mut self.stats,
            tape: &mut self.tape,
        };
        self.adaptation
            .step(self.forecaster.library_mut(), &mut work)
    }

    /// The CRC-32 of the model's parameters' bits (little-endian), to compare models.
    pub fn params_crc(&mut self) -> u32 {
        let mut bytes = [0u8; 4 * PARAMS];
        let lib = self.forecaster.library();
        if lib.model().read_params(&mut self.params).is_ok() {
            for (b, p) in bytes.chunks_exact_mut(4).zip(self.params.iter()) {
                b.copy_from_slice(&p.to_bits().to_le_bytes());
            }
        }
        tinysde::weights::crc32(&bytes)
    }
}

/// What [`measure`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Readings taken (the ring's).
    pub readings: u32,
    /// The loss of the step (before it).
    pub loss: f32,
    /// The CRC-32 of the parameters before and after the step.
    pub crc_before: u32,
    /// After.
    pub crc_after: u32,
    /// Clock units the step took.
    pub units: u32,
}

/// Loads `file`, fills the ring with the first [`RING`] readings of `sensor` (adaptation
/// off), then times one adaptation step.
///
/// Errors: the file's, a reading's, the step's; [`Error::OutOfRange`] if the sensor ends
/// before the ring is full.
pub fn measure<S: Sensor<D>, C: Cycles>(
    file: &[u8],
    seed: u64,
    sensor: &mut S,
    clock: &mut C,
) -> Result<Measured, Error> {
    let mut a = Adapting::new(Forecaster::load(file, seed)?)?;
    while a.adaptation().len() < RING {
        let Ok(Some(r)) = sensor.read() else {
            return Err(Error::OutOfRange {
                what: "the readings end before the adaptation's ring is full",
            });
        };
        a.observe(r.time, &r.values)?;
    }
    let crc_before = a.params_crc();
    let t0 = clock.now();
    let loss = a.step()?;
    let units = clock.now().wrapping_sub(t0);
    Ok(Measured {
        readings: a.forecaster().readings(),
        loss,
        crc_before,
        crc_after: a.params_crc(),
        units,
    })
}

/// `ADAPT_STEP <readings> <paths> <loss f32 bits> <crc before> <crc after>`: the record
/// the QEMU firmware and the host print (hex as in [`crate::stream::write_record`]).
pub fn write_record(m: &Measured, sink: &mut dyn FnMut(&[u8])) {
    let mut l = Text::new();
    l.str("ADAPT_STEP")
        .dec(m.readings)
        .dec(ADAPT_PATHS as u32)
        .hex(u64::from(m.loss.to_bits()), 8)
        .hex(u64::from(m.crc_before), 8)
        .hex(u64::from(m.crc_after), 8)
        .str("\n");
    sink(l.as_bytes());
}

/// The offset [`level_shift`] adds in CI (`boards/ci.sh`, the Nile series: about 2.4 of
/// its standard deviations), in the data's units.
pub const SHIFT_OFFSET: f64 = 400.0;

/// Readings streamed before [`level_shift`] adds its offset (the ring's, then 8 more).
pub const SHIFT_AT: u32 = RING as u32 + 8;
/// Readings after the shift within which the band must cover the new level (the bound of
/// the library's host test `after_a_level_shift_the_band_covers_the_new_level`).
pub const SHIFT_WITHIN: u32 = 12;

/// Streams the first `n` readings of `sensor` through the forecaster loaded from `file`,
/// adaptation switched on if `on`, each reading first changed by `change(index, values)`;
/// `visit(index, values, outcome, checks)` sees the (changed) reading and what the forecaster found for each (its band before
/// any adaptation step the reading triggers) and ends the run by returning `true`. Returns
/// the adaptation steps taken. The loop of [`level_shift`] and [`noise_change`].
///
/// Errors: the file's, a reading's, a step's; [`Error::OutOfRange`] if the sensor ends
/// before `n` readings (and `visit` did not end the run).
fn scenario<S: Sensor<D>>(
    file: &[u8],
    seed: u64,
    sensor: &mut S,
    on: bool,
    n: u32,
    mut change: impl FnMut(u32, &mut [Option<f64>; D]),
    mut visit: impl FnMut(u32, &[Option<f64>; D], &Outcome, &[Check; D]) -> bool,
) -> Result<u64, Error> {
    let mut a = Adapting::new(Forecaster::load(file, seed)?)?;
    a.set_enabled(on);
    for i in 0..n {
        let Ok(Some(mut r)) = sensor.read() else {
            return Err(Error::OutOfRange {
                what: "the readings end before the scenario is over",
            });
        };
        change(i, &mut r.values);
        let mut checks = [Check::default(); D];
        let (outcome, _) = a.observe_checked(r.time, &r.values, &mut checks)?;
        if visit(i, &r.values, &outcome, &checks) {
            break;
        }
    }
    Ok(a.adaptation().steps_taken())
}

/// Streams `sensor`'s readings through the forecaster loaded from `file`, adaptation
/// switched on if `on`, with `offset` added to every value from reading [`SHIFT_AT`] on,
/// for at most [`SHIFT_AT`] + [`SHIFT_WITHIN`] readings; the first reading after the shift
/// (counted from it, 0 = the first shifted one) that lay inside its predicted band, or
/// `None`, and the adaptation steps taken.
///
/// Errors: the file's, a reading's, a step's; [`Error::OutOfRange`] if the sensor ends
/// before [`SHIFT_AT`] + [`SHIFT_WITHIN`] readings.
pub fn level_shift<S: Sensor<D>>(
    file: &[u8],
    seed: u64,
    sensor: &mut S,
    offset: f64,
    on: bool,
) -> Result<(Option<u32>, u64), Error> {
    let mut covered = None;
    let steps = scenario(
        file,
        seed,
        sensor,
        on,
        SHIFT_AT + SHIFT_WITHIN,
        |i, values| {
            if i >= SHIFT_AT {
                for v in values.iter_mut().flatten() {
                    *v += offset;
                }
            }
        },
        |i, _, outcome, _| {
            if i >= SHIFT_AT && outcome.checked > 0 && outcome.outside == 0 {
                covered = Some(i - SHIFT_AT);
            }
            covered.is_some()
        },
    )?;
    Ok((covered, steps))
}

/// `LEVEL_SHIFT <on|off> <first covered reading after the shift, or -> <steps taken>`:
/// the record of [`level_shift`] that the QEMU firmware and the host print.
pub fn write_shift_record(on: bool, r: (Option<u32>, u64), sink: &mut dyn FnMut(&[u8])) {
    let mut l = Text::new();
    l.str("LEVEL_SHIFT").str(if on { " on" } else { " off" });
    match r.0 {
        Some(k) => l.dec(k),
        None => l.str(" -"),
    };
    l.dec(u32::try_from(r.1).unwrap_or(u32::MAX)).str("\n");
    sink(l.as_bytes());
}

/// The reading from which [`noise_change`] adds its noise (as [`SHIFT_AT`]).
pub const CHANGE_AT: u32 = SHIFT_AT;
/// The standard deviation of the noise [`noise_change`] adds in CI (`boards/ci.sh`, the
/// Nile series), in the data's units.
pub const CHANGE_NOISE: f64 = 300.0;
/// The readings [`noise_change`] streams (the Nile series' 100).
pub const CHANGE_END: u32 = 100;

/// What [`noise_change`] measured over the readings from [`CHANGE_AT`] to [`CHANGE_END`]
/// (first column): held-out scores of each reading's predicted band, the forecast made
/// before the reading was seen (and before any adaptation step it triggers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Readings scored.
    pub readings: u32,
    /// Of these, inside their band (first to last quantile: 5-95 % by default).
    pub inside: u32,
    /// The sum of the readings' interval scores of the band (Gneiting and Raftery 2007,
    /// for a central `1 - alpha` interval `[l, u]` and reading `x`: `(u - l) + (2 / alpha)
    /// (l - x)` if `x < l`, `+ (2 / alpha) (x - u)` if `x > u`; lower is better; `alpha`
    /// from the file's first and last levels), data units.
    pub interval_score: f64,
    /// Adaptation steps taken.
    pub steps: u64,
}

/// The `i`-th value of a fixed pseudo-random sequence of `+1` and `-1` (from the bits of
/// a SplitMix64 of `i`): the sign of the noise [`noise_change`] adds.
fn sign(i: u32) -> f64 {
    let mut z = u64::from(i).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z >> 63 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// A change of noise level the model was not trained on: `sensor`'s readings with `noise`
/// times a pseudo-random sign ([`sign`]) added to every value from reading [`CHANGE_AT`]
/// on, streamed to [`CHANGE_END`], adaptation switched on if `on`; the held-out scores of
/// the bands of the changed readings ([`Scores`]). The ensemble update alone moves the
/// ensemble to each new reading but cannot widen the band: that takes the model's
/// diffusion, which only adaptation changes.
///
/// Errors: the file's, a reading's, a step's; [`Error::OutOfRange`] if the sensor ends
/// before [`CHANGE_END`] readings.
pub fn noise_change<S: Sensor<D>>(
    file: &[u8],
    seed: u64,
    sensor: &mut S,
    noise: f64,
    on: bool,
) -> Result<Scores, Error> {
    let levels = crate::model::QUANTILES;
    let alpha = f64::from(levels.first().copied().unwrap_or(0.05))
        + (1.0 - f64::from(levels.last().copied().unwrap_or(0.95)));
    let mut scores = Scores {
        readings: 0,
        inside: 0,
        interval_score: 0.0,
        steps: 0,
    };
    scores.steps = scenario(
        file,
        seed,
        sensor,
        on,
        CHANGE_END,
        |i, values| {
            if i >= CHANGE_AT {
                for v in values.iter_mut().flatten() {
                    *v += noise * sign(i);
                }
            }
        },
        |i, values, outcome, checks| {
            let (Some(c), Some(Some(x))) = (checks.first(), values.first()) else {
                return false;
            };
            if i >= CHANGE_AT && outcome.checked & 1 != 0 {
                scores.readings += 1;
                let (l, u, x) = (c.lower, c.upper, *x);
                let mut s = u - l;
                if x < l {
                    s += 2.0 / alpha * (l - x);
                } else if x > u {
                    s += 2.0 / alpha * (x - u);
                } else {
                    scores.inside += 1;
                }
                scores.interval_score += s;
            }
            false
        },
    )?;
    Ok(scores)
}

/// `NOISE_CHANGE <on|off> <readings> <inside> <interval score sum, f64 bits> <steps
/// taken>`: the record of [`noise_change`] that the QEMU firmware and the host print.
pub fn write_noise_record(on: bool, s: &Scores, sink: &mut dyn FnMut(&[u8])) {
    let mut l = Text::new();
    l.str("NOISE_CHANGE")
        .str(if on { " on" } else { " off" })
        .dec(s.readings)
        .dec(s.inside)
        .hex(s.interval_score.to_bits(), 16)
        .dec(u32::try_from(s.steps).unwrap_or(u32::MAX))
        .str("\n");
    sink(l.as_bytes());
}
