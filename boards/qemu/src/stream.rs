//! The streaming firmware (feature `stream`): the model chosen at build time
//! (`TINYSDE_MODEL`) forecasts from the series recorded at build time (`TINYSDE_READINGS`),
//! replayed from flash through the same code path a real sensor takes
//! (`tinysde_app::stream::run`). Records (`tinysde_app::stream::write_record`):
//!
//! ```text
//! STREAM_CONFIG <params> <dim> <paths> <horizons> <max_step> <time_unit> <seed> <file crc>
//! OBSERVE <index> <time> (<value> <q05> <q95>) per column <first|ok|OUTSIDE>
//! PREDICT <index> <horizon> <time> (<mean> <q05> <q50> <q95>) per column
//! COST stream_step 1 <instructions>                 (observe + forecast of one reading)
//! STACK <peak bytes>
//! STREAM_DONE <readings>
//! ERROR <stage> <kind> <a> <b>
//! ```
//!
//! Scenarios (first semihosting argument): none (the run), a decimal number `N` (the run
//! over the first `N` readings only: the soft-float Cortex-M0 in CI), `corrupt` (one bit of the model
//! file's parameters flipped: `ERROR load weights_checksum`, exit 2), `truncated` (7 bytes
//! short: `ERROR load weights_truncated`, exit 2), `adapt` (feature `adapt`: one timed
//! on-device adaptation step, `ADAPT_STEP` and `COST adapt_step`), `level-shift` (feature
//! `adapt`: the series with `SHIFT_OFFSET` added halfway, without and with adaptation,
//! `LEVEL_SHIFT` records as `tinysde_app::adapt::write_shift_record`), `noise-change`
//! (feature `adapt`: the series with `CHANGE_NOISE` times a pseudo-random sign added from
//! reading `CHANGE_AT` on, without and with adaptation, `NOISE_CHANGE` records as
//! `tinysde_app::adapt::write_noise_record`).

use tinysde_app::model;
use tinysde_app::report::error_code;
use tinysde_app::sensor::{recorded, Replay};
use tinysde_app::stream::{self, StreamError, StreamEvent, StreamReport};

use crate::{exit, write_stdout, InstructionClock, Line, EXIT_BAD_SCENARIO};

// The recorded series must have one column per state component.
const _: () = assert!(
    recorded::READINGS == 0 || recorded::COLUMNS == model::D,
    "TINYSDE_READINGS has another number of value columns than the model's state dimension"
);

struct Text;

impl StreamReport for Text {
    fn event(&mut self, event: &StreamEvent) {
        stream::write_record(event, &mut |bytes| write_stdout(bytes));
    }

    fn cost(&mut self, _index: u32, units: u32) {
        let mut l = Line::new();
        l.str("COST stream_step").dec(1).dec(units);
        l.emit();
    }
}

fn error(stage: &str, e: &tinysde::Error) {
    let (kind, a, b) = error_code(e);
    let mut l = Line::new();
    l.str("ERROR").word(stage).word(kind).dec(a).dec(b);
    l.emit();
}

/// A scenario of decimal digits only (at most 9): the number of readings to take.
fn parse_limit(scenario: &[u8]) -> Option<u32> {
    if scenario.is_empty() || scenario.len() > 9 {
        return None;
    }
    scenario.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// Runs the streaming firmware on `scenario` and exits.
pub fn main(scenario: &[u8], clock: &mut InstructionClock, buf: &'static mut [u8; 1024]) -> ! {
    #[cfg(feature = "adapt")]
    if scenario == b"adapt" {
        adapt(clock);
    }
    // `tinysde_app::adapt::level_shift` with `SHIFT_OFFSET`: two `LEVEL_SHIFT` records.
    #[cfg(feature = "adapt")]
    if scenario == b"level-shift" {
        off_and_on(
            |on| {
                let offset = tinysde_app::adapt::SHIFT_OFFSET;
                let seed = stream::NOISE_SEED;
                tinysde_app::adapt::level_shift(
                    model::MODEL_FILE,
                    seed,
                    &mut Replay::new(),
                    offset,
                    on,
                )
            },
            |on, r, sink| tinysde_app::adapt::write_shift_record(on, *r, sink),
        );
    }
    // `tinysde_app::adapt::noise_change` with `CHANGE_NOISE`: two `NOISE_CHANGE` records.
    #[cfg(feature = "adapt")]
    if scenario == b"noise-change" {
        off_and_on(
            |on| {
                let noise = tinysde_app::adapt::CHANGE_NOISE;
                let seed = stream::NOISE_SEED;
                tinysde_app::adapt::noise_change(
                    model::MODEL_FILE,
                    seed,
                    &mut Replay::new(),
                    noise,
                    on,
                )
            },
            tinysde_app::adapt::write_noise_record,
        );
    }
    let limit = parse_limit(scenario).unwrap_or(u32::MAX);
    let file: &[u8] = match scenario {
        b"" => model::MODEL_FILE,
        _ if limit != u32::MAX => model::MODEL_FILE,
        b"corrupt" => {
            let n = model::MODEL_FILE.len();
            let at = n.saturating_sub(4 + 4 * model::PARAMS);
            match buf.get_mut(..n) {
                Some(copy) if n <= 1024 => {
                    copy.copy_from_slice(model::MODEL_FILE);
                    if let Some(b) = copy.get_mut(at) {
                        *b ^= 0x10;
                    }
                    copy
                }
                _ => exit(EXIT_BAD_SCENARIO),
            }
        }
        b"truncated" => model::MODEL_FILE
            .get(..model::MODEL_FILE.len().saturating_sub(7))
            .unwrap_or(&[]),
        _ => {
            let mut l = Line::new();
            l.str("ERROR scenario unknown 0 0");
            l.emit();
            exit(EXIT_BAD_SCENARIO)
        }
    };
    let mut sensor = Replay::new();
    let result = stream::run(
        file,
        stream::NOISE_SEED,
        &mut sensor,
        &mut Text,
        clock,
        limit,
    );
    let mut l = Line::new();
    l.str("STACK").dec(tinysde_app::stack::peak_bytes());
    l.emit();
    match result {
        Ok(n) => {
            l.str("STREAM_DONE").dec(n);
            l.emit();
            exit(0)
        }
        Err(StreamError::Load(e)) => {
            error("load", &e);
            exit(2)
        }
        Err(StreamError::Forecast { index: _, error: e }) => {
            error("forecast", &e);
            exit(3)
        }
        Err(StreamError::Sensor(never)) => match never {},
    }
}

/// The `adapt` scenario (feature `adapt`): one on-device adaptation step after the first
/// readings, timed: `ADAPT_STEP ...` (as `tinysde_app::adapt::write_record`), `COST
/// adapt_step 1 <instructions>`, `STACK <peak bytes>`; exit 0, or 3 with `ERROR adapt ...`.
#[cfg(feature = "adapt")]
fn adapt(clock: &mut InstructionClock) -> ! {
    let m = tinysde_app::adapt::measure(
        model::MODEL_FILE,
        stream::NOISE_SEED,
        &mut Replay::new(),
        clock,
    );
    let code = match m {
        Ok(m) => {
            tinysde_app::adapt::write_record(&m, &mut |bytes| write_stdout(bytes));
            let mut l = Line::new();
            l.str("COST adapt_step").dec(1).dec(m.units);
            l.emit();
            0
        }
        Err(e) => {
            error("adapt", &e);
            3
        }
    };
    let mut l = Line::new();
    l.str("STACK").dec(tinysde_app::stack::peak_bytes());
    l.emit();
    exit(code)
}

/// The `level-shift` and `noise-change` scenarios (feature `adapt`): `run` (the scenario of
/// `tinysde_app::adapt`) with adaptation off then on, each result written by `write` (its
/// record), then `STACK`; exit 0, or 3 with `ERROR adapt ...`.
#[cfg(feature = "adapt")]
fn off_and_on<R>(
    run: impl Fn(bool) -> Result<R, tinysde::Error>,
    write: impl Fn(bool, &R, &mut dyn FnMut(&[u8])),
) -> ! {
    let mut code = 0;
    for on in [false, true] {
        match run(on) {
            Ok(r) => write(on, &r, &mut |b| write_stdout(b)),
            Err(e) => {
                error("adapt", &e);
                code = 3;
                break;
            }
        }
    }
    let mut l = Line::new();
    l.str("STACK").dec(tinysde_app::stack::peak_bytes());
    l.emit();
    exit(code)
}
