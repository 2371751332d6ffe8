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
                "unknown argument {other:?} (expected none, --decimal, --csv or --decode FILE)"
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
    use tinysde::Error;
    use tinysde_app::model::{self, D};
    use tinysde_app::stream::{Band, Forecaster, HORIZONS, NOISE_SEED};

    fn forecaster() -> Forecaster {
        Forecaster::new(model::load(model::MODEL_FILE).unwrap(), NOISE_SEED)
    }

    fn band() -> Band {
        Band {
            time: 0.0,
            mean: [0.0; D],
            q: [[0.0; D]; model::Q],
        }
    }

    /// A forecast of the next interval, to compare states.
    fn next(f: &Forecaster, t: f64) -> Band {
        let mut out = [band()];
        f.forecast(&[t + model::TIME_UNIT], &mut out).unwrap();
        out[0]
    }

    const T: f64 = model::TIME_ORIGIN;

    #[test]
    fn bad_readings_are_typed_errors_and_change_nothing() {
        let mut f = forecaster();
        let x = [Some(model::COLUMN_MEAN[0]); D];
        f.observe(T, &x).unwrap();
        let before = next(&f, T);
        let n = f.readings();
        let mut nan = x;
        nan[0] = Some(f64::NAN);
        let mut inf = x;
        inf[0] = Some(f64::INFINITY);
        for (t, v) in [
            (T + 1.0, nan),
            (T + 1.0, inf),
            (f64::NAN, x),
            (T, x),
            (T - 1.0, x),
        ] {
            let e = f.observe(t, &v).unwrap_err();
            assert!(
                matches!(e, Error::NonFinite { .. } | Error::OutOfRange { .. }),
                "{e:?}"
            );
            assert_eq!(f.readings(), n);
            assert_eq!(next(&f, T).mean[0].to_bits(), before.mean[0].to_bits());
            assert_eq!(next(&f, T).q, before.q);
        }
    }

    #[test]
    fn bad_horizons_are_typed_errors_and_leave_out_untouched() {
        let f = forecaster();
        let mut out = [band()];
        assert!(matches!(
            f.forecast(&[T + 1.0], &mut out),
            Err(Error::OutOfRange { .. })
        ));
        let mut f = forecaster();
        f.observe(T, &[Some(model::COLUMN_MEAN[0]); D]).unwrap();
        let mut too_many = [band(); HORIZONS + 1];
        let times = [T + 1.0; HORIZONS + 1];
        assert!(matches!(
            f.forecast(&times, &mut too_many),
            Err(Error::Length { .. })
        ));
        assert!(matches!(
            f.forecast(&[T], &mut out),
            Err(Error::SaveTime { index: 0 })
        ));
        assert!(matches!(
            f.forecast(
                &[T + 2.0 * model::TIME_UNIT, T + model::TIME_UNIT],
                &mut [band(); 2]
            ),
            Err(Error::SaveTime { index: 1 })
        ));
        assert_eq!(out[0], band());
    }

    #[test]
    fn a_missing_value_keeps_the_forecast_origin_and_bands_are_ordered() {
        let mut f = forecaster();
        let x = [Some(model::COLUMN_MEAN[0]); D];
        f.observe(T, &x).unwrap();
        let before = next(&f, T);
        assert!(before.q.windows(2).all(|w| w[0][0] <= w[1][0]));
        // A reading with nothing measured: checked against nothing, the origin stays.
        let o = f.observe(T + model::TIME_UNIT, &[None; D]).unwrap();
        assert!(!o.outside && o.band.is_some());
        assert_eq!(next(&f, T), before);
        // A value far outside the band is flagged.
        let far = [Some(o.band.unwrap().q[model::Q - 1][0] + 1e3 * model::COLUMN_STD[0]); D];
        assert!(f.observe(T + 2.0 * model::TIME_UNIT, &far).unwrap().outside);
    }

    /// Built from a version-2 model file (`TINYSDE_MODEL=....tsm`): the library's streaming
    /// forecaster (`tinysde::forecast::Forecaster`) against this firmware's, reading by
    /// reading over the recorded series: the band each reading is checked against, and the
    /// forecasts of the next horizons. (Skipped for a version-1 file, which the library's
    /// forecaster does not take.)
    #[test]
    fn the_library_forecaster_gives_the_same_bands() {
        use tinysde::forecast::file::ModelFile;
        use tinysde::forecast::{Arrays, Check, Forecaster as Library};
        use tinysde::solve::Sosri;
        use tinysde_app::sensor::{Replay, Sensor};
        if model::FILE_VERSION != 2 {
            return;
        }
        let file = ModelFile::parse(model::MODEL_FILE).unwrap();
        let mut lib = Library::<model::Model, Sosri, D, D, Arrays<D, { model::PATHS }, 8>>::new(
            model::Model::default(),
            Sosri,
            &file,
            Arrays::new(),
        )
        .unwrap();
        let mut ours = forecaster();
        let mut replay = Replay::new();
        let mut compared = 0;
        while let Some(r) = replay.read().unwrap() {
            let mut checks = [Check::default(); D];
            let outcome = lib.observe_checked(r.time, &r.values, &mut checks).unwrap();
            let o = ours.observe(r.time, &r.values).unwrap();
            if let Some(b) = o.band {
                assert_eq!(
                    (checks[0].lower, checks[0].upper, checks[0].mean),
                    (b.q[0][0], b.q[model::Q - 1][0], b.mean[0]),
                    "reading at {}",
                    r.time
                );
                assert_eq!(outcome.outside != 0, o.outside);
                compared += 1;
            }
            let times: [f64; HORIZONS] =
                core::array::from_fn(|j| r.time + (j + 1) as f64 * model::TIME_UNIT);
            let mut lib_out = [0.0f64; HORIZONS * D * (1 + model::Q)];
            lib.forecast(&times, &mut lib_out).unwrap();
            let mut our_out = [band(); HORIZONS];
            ours.forecast(&times, &mut our_out).unwrap();
            for (j, b) in our_out.iter().enumerate() {
                let v = &lib_out[j * (1 + model::Q)..(j + 1) * (1 + model::Q)];
                assert_eq!(v[0], b.mean[0], "forecast {j} after {}", r.time);
                for q in 0..model::Q {
                    assert_eq!(v[1 + q], b.q[q][0], "forecast {j} after {}", r.time);
                }
            }
        }
        assert!(compared > 0);
    }
}
