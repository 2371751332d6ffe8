//! The streaming firmware's records, computed on the host.
//!
//! Runs `tinysde_app::stream::run` (the code of the QEMU streaming firmware, feature
//! `stream` of `boards/qemu`) on the host with the same model file and recorded readings
//! (`TINYSDE_MODEL`, `TINYSDE_READINGS` at build time, as for the firmware) and prints the
//! same `STREAM_CONFIG`, `OBSERVE` and `PREDICT` records, every number as its bits in hex;
//! `boards/ci.sh` compares them with each emulated core's byte for byte.
//!
//! ```sh
//! cd boards && TINYSDE_MODEL=target/nile/fit_csv.weights TINYSDE_READINGS=examples/data/nile.csv \
//!     cargo run --release -p tinysde-stream-host            # hex records
//! cargo run --release -p tinysde-stream-host -- --decimal  # the same, in decimal
//! ```
//!
//! With `--csv` it prints instead, for each reading after the first, the band it was
//! checked against as `fit_csv`'s `forecast.csv` writes a row's values (`mean,q05,q50,q95`
//! per column, 7 significant digits, without the time column): built with a model
//! `fit_csv --eval-trajectories 32` wrote, the lines equal `forecast.csv`'s value columns
//! for the data rows after the first (`boards/ci.sh` checks it).
//!
//! `--write-v2 FILE` writes the model it was built with (a version-1 file and the scaling
//! `fit_csv.json` beside it) as a version-2 model file (the same model, scaling, step and
//! forecast defaults in one file); `boards/ci.sh` builds the firmware from both and
//! compares.
//!
//! `--adapt` prints the `ADAPT_STEP` record of one on-device adaptation step after the
//! first readings (`tinysde_app::adapt::measure`), as the QEMU firmware's `adapt`
//! scenario does.
//!
//! `--decode FILE` reads records the firmware printed (a QEMU run's output) and writes
//! them in decimal for people (other lines as they are); `boards/run-model.sh` uses it.
//!
//! Exit status: 0, or 2 (the model file does not load), 3 (a reading or forecast failed).

use std::io::Write as _;
use std::process::ExitCode;

use tinysde_app::model;
use tinysde_app::sensor::Replay;
use tinysde_app::stream::{self, StreamError, StreamEvent, StreamReport};
use tinysde_app::NoClock;

/// A hex token of the records as the number it stands for: 16 digits an `f64`'s bits, 8
/// an `f32`'s, `-` none; anything else as it is.
fn number(token: &str) -> String {
    let bits = u64::from_str_radix(token, 16);
    match (token.len(), bits) {
        (16, Ok(b)) => f64::from_bits(b).to_string(),
        (8, Ok(b)) => f32::from_bits(b as u32).to_string(),
        _ => token.to_string(),
    }
}

/// One line of firmware output in decimal: `STREAM_CONFIG`, `OBSERVE` and `PREDICT`
/// records decoded, other lines unchanged.
fn decode(line: &str) -> String {
    let w: Vec<&str> = line.split_whitespace().collect();
    let n = |i: usize| w.get(i).map_or(String::from("?"), |t| number(t));
    match w.first().copied() {
        Some("STREAM_CONFIG") if w.len() == 9 => format!(
            "model: {} parameters, {} column(s); {} paths, {} horizons of {} time units, steps <= {}, noise seed 0x{}, file crc32 0x{}",
            w[1], w[2], w[3], w[4], n(6), n(5), w[7].trim_start_matches('0'), w[8]
        ),
        Some("OBSERVE") if w.len() >= 4 => {
            let mut s = format!("reading {:>4} t = {}:", w[1], n(2));
            for c in 0..(w.len() - 4) / 3 {
                let (v, lo, hi) = (n(3 + 3 * c), n(4 + 3 * c), n(5 + 3 * c));
                s.push_str(&if lo == "-" {
                    format!(" {v}")
                } else {
                    format!(" {v} (band {lo} .. {hi})")
                });
            }
            s.push(' ');
            s.push_str(w[w.len() - 1]);
            s
        }
        Some("PREDICT") if w.len() >= 4 => {
            let mut s = format!("  forecast +{} t = {}:", w[2], n(3));
            for c in 0..(w.len() - 4) / 4 {
                let at = 4 + 4 * c;
                s.push_str(&format!(
                    " mean {} [5% {}, 50% {}, 95% {}]",
                    n(at),
                    n(at + 1),
                    n(at + 2),
                    n(at + 3)
                ));
            }
            s
        }
        _ => line.to_string(),
    }
}

/// Writes the model the program was built with, with its scaling, solver step and forecast
/// defaults (from a version-1 file and the `fit_csv.json` beside it), as a version-2 model
/// file (`tinysde::forecast::file::write`) at `path`; returns its length.
fn write_v2(path: &str) -> Result<usize, String> {
    use tinysde::forecast::file::{
        encoded_len, write, Column, Defaults, Deployment, SolverSpec, TimeAxis, TimeFormat,
        Transform,
    };
    use tinysde_app::sensor::recorded;
    let loaded = model::load(model::MODEL_FILE).map_err(|e| e.to_string())?;
    let names: Vec<String> = (0..model::D)
        .map(|c| {
            recorded::COLUMN_NAMES
                .get(c)
                .map_or(format!("x{c}"), |n| n.to_string())
        })
        .collect();
    let columns: Vec<Column> = (0..model::D)
        .map(|c| Column {
            name: &names[c],
            transform: Transform::Affine,
            mean: model::COLUMN_MEAN[c],
            std: model::COLUMN_STD[c],
            state_index: c as u16,
            noise: 0.0,
        })
        .collect();
    let deployment = Deployment {
        state_dim: model::D as u16,
        columns: &columns,
        time: TimeAxis {
            name: "time",
            format: TimeFormat::Number,
            t0: model::TIME_ORIGIN,
            unit: model::TIME_UNIT,
        },
        solver: SolverSpec {
            method: "SOSRI",
            max_step: model::MAX_STEP,
        },
        defaults: Defaults::new(model::PATHS as u32, model::NOISE_SEED, &model::QUANTILES)
            .map_err(|e| e.to_string())?,
        trends: &[],
        seasonal_lag: 0,
    };
    let mut out = vec![0u8; encoded_len::<model::Model>(&deployment)];
    let n = write(&loaded, &deployment, &mut out).map_err(|e| e.to_string())?;
    std::fs::write(path, &out[..n]).map_err(|e| e.to_string())?;
    Ok(n)
}

/// How [`Print`] writes.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The firmware's records (hex).
    Hex,
    /// The same, in decimal for people.
    Decimal,
    /// `fit_csv`'s `forecast.csv` values of each checked reading's band.
    Csv,
}

/// `x` rounded to 7 significant digits and written briefly, as `fit_csv` writes `forecast.csv`.
fn significant(x: f64) -> String {
    format!("{x:.6e}")
        .parse::<f64>()
        .map_or(x.to_string(), |r| r.to_string())
}

/// Prints the records as the firmware does (hex), in decimal for people, or as `forecast.csv`.
struct Print {
    mode: Mode,
    out: std::io::StdoutLock<'static>,
}

impl StreamReport for Print {
    fn event(&mut self, event: &StreamEvent) {
        if self.mode == Mode::Csv {
            if let StreamEvent::Observed {
                observation: stream::Observation { band: Some(b), .. },
                ..
            } = *event
            {
                let cells: Vec<String> = (0..model::D)
                    .flat_map(|c| std::iter::once(b.mean[c]).chain(b.q.iter().map(move |q| q[c])))
                    .map(significant)
                    .collect();
                let _ = writeln!(self.out, "{}", cells.join(","));
            }
            return;
        }
        if self.mode == Mode::Hex {
            stream::write_record(event, &mut |b| {
                let _ = self.out.write_all(b);
            });
            return;
        }
        let line = match *event {
            StreamEvent::Config {
                params,
                dim,
                paths,
                horizons,
                max_step,
                time_unit,
                seed,
                file_crc,
            } => format!(
                "model {} ({params} parameters, {dim} columns, crc32 {file_crc:#010x}), {paths} paths, {horizons} horizons of {time_unit} time units, steps <= {max_step}, seed {seed:#x}",
                model::MODEL_PATH
            ),
            StreamEvent::Observed {
                index,
                reading,
                observation,
            } => format!(
                "reading {index} t = {}: {:?} band {:?} {}",
                reading.time,
                reading.values,
                observation.band.map(|b| (b.q[0], b.q[model::Q - 1])),
                if observation.outside { "OUTSIDE" } else { "" }
            ),
            StreamEvent::Forecast {
                index,
                horizon,
                band,
            } => format!(
                "  forecast {index}+{horizon} t = {}: mean {:?} quantiles {:?} at {:?}",
                band.time, band.mean, band.q, model::QUANTILES
            ),
        };
        let _ = writeln!(self.out, "{line}");
    }

    fn cost(&mut self, _index: u32, _units: u32) {}
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str) {
        None => Mode::Hex,
        Some("--decimal") => Mode::Decimal,
        Some("--csv") => Mode::Csv,
        Some("--write-v2") => {
            let Some(path) = args.get(1) else {
                eprintln!("--write-v2 needs the output file");
                return ExitCode::from(10);
            };
            return match write_v2(path) {
                Ok(n) => {
                    eprintln!("wrote {path} ({n} bytes, model file version 2)");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{path}: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Some("--adapt") => {
            // The record of the QEMU firmware's `adapt` scenario (feature `adapt` of
            // boards/qemu): one adaptation step after the first RING readings.
            let m = tinysde_app::adapt::measure(
                model::MODEL_FILE,
                stream::NOISE_SEED,
                &mut Replay::new(),
                &mut NoClock,
            );
            return match m {
                Ok(m) => {
                    let mut out = std::io::stdout().lock();
                    tinysde_app::adapt::write_record(&m, &mut |b| {
                        let _ = out.write_all(b);
                    });
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("adaptation: {e}");
                    ExitCode::from(3)
                }
            };
        }
        Some("--level-shift") => {
            // The record of the QEMU firmware's `level-shift` scenario (feature `adapt`):
            // the recorded series with OFFSET (default SHIFT_OFFSET) added from reading
            // SHIFT_AT on, without and with adaptation.
            let offset = match args.get(1).map(|a| a.parse::<f64>()) {
                None => tinysde_app::adapt::SHIFT_OFFSET,
                Some(Ok(x)) => x,
                Some(Err(_)) => {
                    eprintln!("--level-shift takes an offset (a number)");
                    return ExitCode::from(10);
                }
            };
            let mut out = std::io::stdout().lock();
            for on in [false, true] {
                match tinysde_app::adapt::level_shift(
                    model::MODEL_FILE,
                    stream::NOISE_SEED,
                    &mut Replay::new(),
                    offset,
                    on,
                ) {
                    Ok(r) => tinysde_app::adapt::write_shift_record(on, r, &mut |b| {
                        let _ = out.write_all(b);
                    }),
                    Err(e) => {
                        eprintln!("level shift: {e}");
                        return ExitCode::from(3);
                    }
                }
            }
            return ExitCode::SUCCESS;
        }
        Some("--noise-change") => {
            // The records of the QEMU firmware's `noise-change` scenario (feature `adapt`):
            // the recorded series with NOISE (default CHANGE_NOISE) times a pseudo-random
            // sign added from reading CHANGE_AT on, without and with adaptation; the
            // scores in decimal on stderr.
            let noise = match args.get(1).map(|a| a.parse::<f64>()) {
                None => tinysde_app::adapt::CHANGE_NOISE,
                Some(Ok(x)) => x,
                Some(Err(_)) => {
                    eprintln!("--noise-change takes a noise level (a number)");
                    return ExitCode::from(10);
                }
            };
            let mut out = std::io::stdout().lock();
            for on in [false, true] {
                match tinysde_app::adapt::noise_change(
                    model::MODEL_FILE,
                    stream::NOISE_SEED,
                    &mut Replay::new(),
                    noise,
                    on,
                ) {
                    Ok(s) => {
                        tinysde_app::adapt::write_noise_record(on, &s, &mut |b| {
                            let _ = out.write_all(b);
                        });
                        eprintln!(
                            "noise change (+-{noise} from reading {}), adaptation {}: {} of {} readings inside their band ({:.1} %), mean interval score {:.2}, {} steps",
                            tinysde_app::adapt::CHANGE_AT,
                            if on { "on" } else { "off" },
                            s.inside,
                            s.readings,
                            100.0 * f64::from(s.inside) / f64::from(s.readings.max(1)),
                            s.interval_score / f64::from(s.readings.max(1)),
                            s.steps
                        );
                    }
                    Err(e) => {
                        eprintln!("noise change: {e}");
                        return ExitCode::from(3);
                    }
                }
            }
            return ExitCode::SUCCESS;
        }
        Some("--decode") => {
            let Some(path) = args.get(1) else {
                eprintln!("--decode needs the file of firmware records");
                return ExitCode::from(10);
            };
            return match std::fs::read_to_string(path) {
                Ok(text) => {
                    let mut out = std::io::stdout().lock();
                    for line in text.lines() {
                        let _ = writeln!(out, "{}", decode(line));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{path}: {e}");
                    ExitCode::from(10)
                }
            };
        }
        Some(other) => {
            eprintln!(
                "unknown argument {other:?} (expected none, --decimal, --csv, --adapt, --level-shift [OFFSET], --noise-change [NOISE] or --decode FILE)"
            );
            return ExitCode::from(10);
        }
    };
    let mut print = Print {
        mode,
        out: std::io::stdout().lock(),
    };
    let result = stream::run(
        model::MODEL_FILE,
        stream::NOISE_SEED,
        &mut Replay::new(),
        &mut print,
        &mut NoClock,
        u32::MAX,
    );
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(StreamError::Load(e)) => {
            eprintln!("{}: {e}", model::MODEL_PATH);
            ExitCode::from(2)
        }
        Err(StreamError::Forecast { index, error }) => {
            eprintln!("reading {index}: {error}");
            ExitCode::from(3)
        }
        Err(StreamError::Sensor(never)) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use tinysde::{Error, ForecastError, WeightsError};
    use tinysde_app::model::{self, D};
    use tinysde_app::sensor::{Reading, Replay, Sensor};
    use tinysde_app::stream::{
        self, Band, Forecaster, StreamEvent, StreamReport, HORIZONS, NOISE_SEED, TIMES,
    };
    use tinysde_app::NoClock;

    fn forecaster() -> Forecaster {
        Forecaster::load(model::MODEL_FILE, NOISE_SEED).unwrap()
    }

    /// A forecast of the next interval after the last reading, to compare states.
    fn next(f: &mut Forecaster) -> Band {
        let t = f.library().last_time().unwrap() + model::TIME_UNIT;
        let mut out = [Band::ZERO];
        f.forecast(&[t], &mut out).unwrap();
        out[0]
    }

    const T: f64 = model::TIME_ORIGIN;

    #[test]
    fn bad_readings_are_typed_errors_and_change_nothing() {
        let mut f = forecaster();
        let x = [Some(model::COLUMN_MEAN[0]); D];
        f.observe(T, &x).unwrap();
        let before = next(&mut f);
        let n = f.readings();
        let mut nan = x;
        nan[0] = Some(f64::NAN);
        let mut inf = x;
        inf[0] = Some(f64::INFINITY);
        for (t, v, expected) in [
            (T + 1.0, nan, ForecastError::BadValue(0)),
            (T + 1.0, inf, ForecastError::BadValue(0)),
            (f64::NAN, x, ForecastError::BadTime),
            (T, x, ForecastError::TimeOrder),
            (T - 1.0, x, ForecastError::TimeOrder),
        ] {
            let e = f.observe(t, &v).unwrap_err();
            assert_eq!(e, Error::Forecast(expected), "reading at {t}");
            assert_eq!(f.readings(), n);
            assert_eq!(next(&mut f), before);
        }
    }

    #[test]
    fn bad_horizons_are_typed_errors_and_leave_out_untouched() {
        let mut f = forecaster();
        let mut out = [Band::ZERO];
        assert_eq!(
            f.forecast(&[T + 1.0], &mut out),
            Err(Error::Forecast(ForecastError::NoState))
        );
        f.observe(T, &[Some(model::COLUMN_MEAN[0]); D]).unwrap();
        let mut too_many = [Band::ZERO; HORIZONS + 1];
        let times = [T + 1.0; HORIZONS + 1];
        assert_eq!(
            f.forecast(&times, &mut too_many),
            Err(Error::Forecast(ForecastError::Output))
        );
        assert_eq!(
            f.forecast(&[T], &mut out),
            Err(Error::Forecast(ForecastError::TimeOrder))
        );
        assert_eq!(
            f.forecast(
                &[T + 2.0 * model::TIME_UNIT, T + model::TIME_UNIT],
                &mut [Band::ZERO; 2]
            ),
            Err(Error::Forecast(ForecastError::TimeOrder))
        );
        assert_eq!(out[0], Band::ZERO);
        assert!(too_many.iter().all(|b| *b == Band::ZERO));
    }

    #[test]
    fn a_missing_value_keeps_the_ensemble_and_bands_are_ordered() {
        let mut f = forecaster();
        let x = [Some(model::COLUMN_MEAN[0]); D];
        f.observe(T, &x).unwrap();
        let before = next(&mut f);
        assert!(before.q.windows(2).all(|w| w[0][0] <= w[1][0]));
        let states = f.library().member_states().unwrap().to_vec();
        // A reading with nothing measured: predicted, checked against nothing, no update.
        let o = f.observe(T + model::TIME_UNIT, &[None; D]).unwrap();
        assert!(!o.outside && o.band.is_some());
        assert_eq!(f.library().member_states().unwrap(), &states[..]);
        // A value far outside the band is flagged.
        let far = [Some(o.band.unwrap().q[model::Q - 1][0] + 1e3 * model::COLUMN_STD[0]); D];
        assert!(f.observe(T + 2.0 * model::TIME_UNIT, &far).unwrap().outside);
        assert_ne!(f.library().member_states().unwrap(), &states[..]);
    }

    #[test]
    fn the_seed_given_at_run_time_keys_the_noise() {
        let first = Replay::new().read().unwrap().unwrap();
        let mut bands = Vec::new();
        for seed in [NOISE_SEED, NOISE_SEED, NOISE_SEED ^ 1] {
            let mut f = Forecaster::load(model::MODEL_FILE, seed).unwrap();
            assert_eq!(f.library().defaults().seed, seed);
            f.observe(first.time, &first.values).unwrap();
            bands.push(next(&mut f));
        }
        assert_eq!(bands[0], bands[1]);
        assert_ne!(bands[0], bands[2]);
    }

    #[test]
    fn corrupt_and_truncated_model_files_are_typed_errors() {
        let mut bytes = model::MODEL_FILE.to_vec();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x10;
        assert_eq!(
            Forecaster::load(&bytes, NOISE_SEED).unwrap_err(),
            Error::Weights(WeightsError::Checksum)
        );
        let short = &model::MODEL_FILE[..model::MODEL_FILE.len() - 7];
        assert!(matches!(
            Forecaster::load(short, NOISE_SEED).unwrap_err(),
            Error::Weights(WeightsError::Truncated | WeightsError::Checksum)
        ));
    }

    /// The level shift: switched off no step is taken; switched on one step per reading
    /// once the ring is full, the band covers the shifted level within `SHIFT_WITHIN`
    /// readings, and a replay gives the same result.
    /// A change of noise level (the series plus +-CHANGE_NOISE from CHANGE_AT on): the
    /// ensemble update alone cannot widen the band, adaptation does. Over the changed
    /// readings, with adaptation the bands' mean interval score is at least a quarter lower
    /// and more readings lie inside their band (Nile: 2 814 -> 1 439, 29 -> 59 of 76).
    #[test]
    fn after_a_noise_change_adaptation_scores_better_than_the_update_alone() {
        use tinysde_app::adapt::{noise_change, CHANGE_AT, CHANGE_END, CHANGE_NOISE, RING};
        use tinysde_app::sensor::recorded;
        if recorded::READINGS < CHANGE_END as usize {
            return; // a recorded series too short (the seed data's 8 rows)
        }
        let run = |on| {
            noise_change(
                model::MODEL_FILE,
                NOISE_SEED,
                &mut Replay::new(),
                CHANGE_NOISE,
                on,
            )
            .unwrap()
        };
        let off = run(false);
        let on = run(true);
        assert_eq!(off.steps, 0);
        assert_eq!(on.steps, u64::from(CHANGE_END) - (RING as u64 - 1));
        assert_eq!(
            (off.readings, on.readings),
            (CHANGE_END - CHANGE_AT, CHANGE_END - CHANGE_AT)
        );
        assert!(
            on.interval_score <= 0.75 * off.interval_score,
            "interval score with adaptation {} vs without {}",
            on.interval_score,
            off.interval_score
        );
        assert!(
            on.inside > off.inside,
            "inside: with {} without {}",
            on.inside,
            off.inside
        );
        // Without the change adaptation has nothing to gain: both see the same readings
        // before CHANGE_AT, and switched off the model is never touched.
        let plain = noise_change(
            model::MODEL_FILE,
            NOISE_SEED,
            &mut Replay::new(),
            0.0,
            false,
        )
        .unwrap();
        assert!(plain.inside > off.inside);
    }

    #[test]
    fn after_a_level_shift_the_adapted_band_covers_the_new_level() {
        use tinysde_app::adapt::{level_shift, RING, SHIFT_AT, SHIFT_OFFSET, SHIFT_WITHIN};
        use tinysde_app::sensor::recorded;
        if recorded::READINGS < (SHIFT_AT + SHIFT_WITHIN) as usize {
            return; // a recorded series too short (the seed data's 8 rows)
        }
        let run = |on| {
            level_shift(
                model::MODEL_FILE,
                NOISE_SEED,
                &mut Replay::new(),
                SHIFT_OFFSET,
                on,
            )
            .unwrap()
        };
        let (off, steps_off) = run(false);
        assert_eq!(steps_off, 0);
        assert!(off.is_some_and(|k| k <= SHIFT_WITHIN));
        let (on, steps_on) = run(true);
        let k = on.expect("with adaptation the band never covered the shifted level");
        assert!(k <= SHIFT_WITHIN, "covered at +{k}");
        // One step per reading from the one that filled the ring to the covered one.
        assert_eq!(steps_on, u64::from(SHIFT_AT + k + 1) - (RING as u64 - 1));
        assert_eq!(run(true), (on, steps_on));
    }

    /// One adaptation step after the ring is filled: the scratch constants fit, the loss
    /// is finite, the parameters move, and a replay gives the same bits.
    #[test]
    fn one_adaptation_step_moves_the_model_reproducibly() {
        use tinysde_app::adapt::{measure, Adapting, RING};
        use tinysde_app::sensor::recorded;
        if recorded::READINGS <= 2 * RING {
            return; // a recorded series too short for the ring (the seed data's 8 rows)
        }
        let run = || {
            measure(
                model::MODEL_FILE,
                NOISE_SEED,
                &mut Replay::new(),
                &mut NoClock,
            )
        };
        let (a, b) = (run().unwrap(), run().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.readings, RING as u32);
        assert!(a.loss.is_finite());
        assert_ne!(a.crc_before, a.crc_after);
        // Switched off, the ring fills and the forecasts stay the plain forecaster's.
        let mut adapting = Adapting::new(forecaster()).unwrap();
        let mut plain = forecaster();
        let mut replay = Replay::new();
        for _ in 0..2 * RING {
            let r = replay.read().unwrap().unwrap();
            let (outcome, loss) = adapting.observe(r.time, &r.values).unwrap();
            assert!(outcome.updated && loss.is_none());
            plain.observe(r.time, &r.values).unwrap();
        }
        assert_eq!(next(adapting.forecaster()), next(&mut plain));
        assert_eq!(adapting.adaptation().steps_taken(), 0);
        // Switched on: one step per reading, and the forecasts change.
        adapting.set_enabled(true);
        let r = replay.read().unwrap().unwrap();
        let (_, loss) = adapting.observe(r.time, &r.values).unwrap();
        plain.observe(r.time, &r.values).unwrap();
        assert!(loss.is_some_and(f32::is_finite));
        assert_eq!(adapting.adaptation().steps_taken(), 1);
        assert_ne!(next(adapting.forecaster()), next(&mut plain));
    }

    /// Readings: the first complete, then `missing` with every column missing, then
    /// complete ones again, one data interval apart.
    struct Gappy {
        next: u32,
        missing: u32,
        total: u32,
    }

    impl Sensor<D> for Gappy {
        type Error = core::convert::Infallible;
        fn read(&mut self) -> Result<Option<Reading<D>>, Self::Error> {
            if self.next == self.total {
                return Ok(None);
            }
            let i = self.next;
            self.next += 1;
            let gap = (1..=self.missing).contains(&i);
            Ok(Some(Reading {
                time: T + f64::from(i) * model::TIME_UNIT,
                values: [(!gap).then_some(model::COLUMN_MEAN[0]); D],
            }))
        }
    }

    #[derive(Default)]
    struct Count {
        observed: u32,
        forecasts: Vec<u32>,
    }

    impl StreamReport for Count {
        fn event(&mut self, event: &StreamEvent) {
            match *event {
                StreamEvent::Observed { .. } => self.observed += 1,
                StreamEvent::Forecast { index, .. } => self.forecasts.push(index),
                StreamEvent::Config { .. } => {}
            }
        }
        fn cost(&mut self, _: u32, _: u32) {}
    }

    /// A run of readings with a missing column longer than the time buffer: the run goes
    /// on, without forecasts after the readings whose pending times leave no room for the
    /// horizons, and forecasts again after the next complete reading.
    #[test]
    fn a_long_gap_skips_forecasts_and_the_run_goes_on() {
        let missing = TIMES as u32 + 2;
        let total = missing + 3;
        let mut sensor = Gappy {
            next: 0,
            missing,
            total,
        };
        let mut count = Count::default();
        let n = stream::run(
            model::MODEL_FILE,
            NOISE_SEED,
            &mut sensor,
            &mut count,
            &mut NoClock,
            u32::MAX,
        )
        .unwrap();
        assert_eq!((n, count.observed), (total, total));
        // Pending readings after reading i (1 ..= missing): i, until the TIMES-th in a row,
        // which becomes the origin (0 pending): i % TIMES.
        let skipped: Vec<u32> = (0..total)
            .filter(|i| !count.forecasts.contains(i))
            .collect();
        let expected: Vec<u32> = (1..=missing)
            .filter(|&i| (i as usize % TIMES) + HORIZONS > TIMES)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(skipped, expected);
        assert_eq!(
            count.forecasts.len(),
            HORIZONS * (total as usize - expected.len())
        );
    }
}
