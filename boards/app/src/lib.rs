//! Board-agnostic tinysde firmware.
//!
//! [`run`] loads the host-trained weights of the seed model (linked into flash with
//! `include_bytes!`), runs an ensemble forecast (mean and standard deviation at the save
//! times) and an adaptive one (SOSRI with error control on a Brownian tree; not in the
//! inference-only build), measures what a step and a gradient cost on the board's clock, then trains on
//! the device for a few iterations (reverse-mode gradient, Adam) and reports the loss
//! falling. It is generic over embedded-hal 1.0 (an [`OutputPin`] heartbeat LED and a
//! [`DelayNs`]), a [`Cycles`] clock and a [`Report`] sink, so each board crate is only
//! its clocks, pins, logger and linker script.
//!
//! Nothing here panics on bad input: a corrupted or mismatched weights blob, a forecast
//! that diverges or a training step that produces a non-finite gradient end the run with
//! a typed [`AppError`]; the board then exits (QEMU) or blinks [`blink_error`].
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "adapt")]
pub mod adapt;
#[cfg(not(feature = "inference-only"))]
pub mod adaptive;
pub mod checks;
pub mod model;
pub mod report;
pub mod seed;
pub mod sensor;
pub mod stack;
pub mod stream;
#[cfg(not(feature = "inference-only"))]
pub mod training;

use core::hint::black_box;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use tinysde::nn::ParamSeed;
use tinysde::noise::{Brownian, NoiseSource};
use tinysde::sde::Sde;
use tinysde::solve::{self, EnsembleBuffers, EnsembleRequest, Solver, TimeGrid};
use tinysde::Error;

pub use report::{AppError, Event, Report, Stage};
pub use seed::SeedModel;

/// A free-running clock for cost measurements.
///
/// `now` returns a counter that increases by one per unit (processor cycle, executed
/// instruction, ...) and wraps at `2^32`; intervals are taken with `wrapping_sub`, so they
/// must be shorter than `2^32` units.
pub trait Cycles {
    /// The current count.
    fn now(&mut self) -> u32;
}

/// A clock that always reads 0 (for boards without one).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoClock;

impl Cycles for NoClock {
    fn now(&mut self) -> u32 {
        0
    }
}

/// The forecast: ensemble mean and standard deviation at each save time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// Ensemble mean at each save time.
    pub mean: [f32; seed::SAVES],
    /// Ensemble standard deviation (sample, divisor `n - 1`) at each save time.
    pub std: [f32; seed::SAVES],
}

/// Checks a weights blob and loads it into a fresh seed model.
///
/// Errors (nothing is loaded): bad magic, unsupported version, truncated, checksum
/// mismatch, a blob written for another model shape or parameter count, non-finite
/// parameters.
pub fn load(weights: &[u8]) -> Result<SeedModel, Error> {
    let mut model = SeedModel::default();
    tinysde::weights::read_into(&mut model, weights)?;
    Ok(model)
}

/// The ensemble forecast of `model` from `u0` with `trajectories` trajectories and `steps`
/// Euler–Maruyama steps over `seed::T0 ..= seed::T1`, saved at `seed::SAVE_TIMES`, with the
/// Brownian paths of `seed::NOISE_SEED`.
///
/// Errors: [`Error::Diverged`] (with the trajectory and step) if a state becomes
/// non-finite; argument errors for zero trajectories, zero steps or a step count that does
/// not put the save times on the grid.
pub fn forecast(
    model: &SeedModel,
    u0: [f32; 1],
    trajectories: usize,
    steps: u32,
) -> Result<Forecast, Error> {
    let solver = Solver::new(
        seed::Method::default(),
        TimeGrid::new(seed::T0, seed::T1, steps)?,
    );
    let mut mean = [[0.0f32; 1]; seed::SAVES];
    let mut var = [[0.0f32; 1]; seed::SAVES];
    solve::simulate_into(&solver, model, &Brownian::new(seed::NOISE_SEED), &EnsembleRequest::new(u0, trajectories, // Opaque to the optimizer: the checks of the 7 save times stay one loop instead of
        // being unrolled (a few hundred bytes of the inference firmware's 16 KB); same values.
        black_box(&seed::SAVE_TIMES[..])), EnsembleBuffers::new(&mut mean, &mut var))?;
    let mut out = Forecast {
        mean: [0.0; seed::SAVES],
        std: [0.0; seed::SAVES],
    };
    for ((m, s), (mean, var)) in out
        .mean
        .iter_mut()
        .zip(out.std.iter_mut())
        .zip(mean.iter().zip(var.iter()))
    {
        *m = mean[0];
        *s = tinysde::math::sqrt(var[0]);
    }
    Ok(out)
}

/// Sets the LED on or off, ignoring pin errors (a heartbeat is best effort).
fn led_set<P: OutputPin>(led: &mut P, on: bool) {
    let _ = if on { led.set_high() } else { led.set_low() };
}

/// Blinks `code` short pulses, then a pause, forever: the error pattern of the boards.
/// `active_high` says whether `set_high` lights the LED.
pub fn blink_error<P: OutputPin, D: DelayNs>(
    led: &mut P,
    delay: &mut D,
    active_high: bool,
    code: u8,
) -> ! {
    loop {
        for _ in 0..code {
            led_set(led, active_high);
            delay.delay_ms(150);
            led_set(led, !active_high);
            delay.delay_ms(250);
        }
        delay.delay_ms(1200);
    }
}

/// The board's peripherals and sinks, as the app sees them.
pub struct Board<P, D, C, R> {
    /// The heartbeat LED.
    pub led: P,
    /// Whether `set_high` lights the LED.
    pub led_active_high: bool,
    /// A delay provider.
    pub delay: D,
    /// The cost clock.
    pub clock: C,
    /// Where events go.
    pub report: R,
}

impl<P: OutputPin, D: DelayNs, C: Cycles, R: Report> Board<P, D, C, R> {
    fn led(&mut self, on: bool) {
        led_set(&mut self.led, on == self.led_active_high);
    }

    fn fail(&mut self, stage: Stage, error: Error) -> AppError {
        let e = AppError { stage, error };
        self.report.event(&Event::Failed(e));
        e
    }

    fn cost(&mut self, what: &'static str, count: u32, total: u32) {
        self.report.event(&Event::Cost { what, count, total });
    }
}

/// What [`run`] should do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan<'a> {
    /// The weights blob to load (normally [`seed::WEIGHTS`]).
    pub weights: &'a [u8],
    /// The initial state of the forecast (normally [`seed::u0`]).
    pub u0: [f32; 1],
    /// Measure the costs of a step, a noise increment and a drift + diffusion evaluation.
    pub bench: bool,
    /// On-device training iterations (0 for none; ignored by inference-only builds).
    pub train_iterations: u32,
    /// Run the adaptive forecast (SOSRI on a Brownian tree; ignored by inference-only
    /// builds).
    pub adaptive: bool,
}

impl Default for Plan<'static> {
    fn default() -> Self {
        Self {
            weights: seed::WEIGHTS,
            u0: seed::u0(),
            bench: true,
            train_iterations: seed::TRAIN_ITERATIONS,
            adaptive: true,
        }
    }
}

/// The firmware: load, forecast, adaptive forecast, measure, train. Every event goes to `board.report`; the
/// first failure is reported as [`Event::Failed`] and returned.
pub fn run<P, D, C, R>(board: &mut Board<P, D, C, R>, plan: &Plan<'_>) -> Result<(), AppError>
where
    P: OutputPin,
    D: DelayNs,
    C: Cycles,
    R: Report,
{
    board.led(true);
    board.delay.delay_ms(20);
    board.led(false);

    board.report.event(&Event::Config {
        params: seed::PARAMS as u32,
        trajectories: seed::TRAJECTORIES as u32,
        steps: seed::STEPS,
        saves: seed::SAVES as u32,
        t0: seed::T0,
        t1: seed::T1,
        u0: plan.u0[0],
        noise_seed: seed::NOISE_SEED,
        weights_crc: tinysde::weights::crc32(
            plan.weights
                .get(..plan.weights.len().saturating_sub(4))
                .unwrap_or(&[]),
        ),
    });

    let model = load(plan.weights).map_err(|e| board.fail(Stage::Load, e))?;

    let f = forecast(&model, plan.u0, seed::TRAJECTORIES, seed::STEPS)
        .map_err(|e| board.fail(Stage::Forecast, e))?;
    for (i, ((&t, &mean), &std)) in seed::SAVE_TIMES
        .iter()
        .zip(f.mean.iter())
        .zip(f.std.iter())
        .enumerate()
    {
        board.led(i % 2 == 0);
        board.report.event(&Event::Forecast {
            index: i as u32,
            t,
            mean,
            std,
        });
    }
    board.led(false);

    // Right after the inference forecast, so that the peak stack reported next is the
    // adaptive solve's (when it is the deeper of the two).
    #[cfg(not(feature = "inference-only"))]
    if plan.adaptive {
        adaptive::run(board, &model, plan.u0).map_err(|e| board.fail(Stage::Adaptive, e))?;
        board.report.event(&Event::Stack {
            peak_bytes: stack::peak_bytes(),
        });
    }

    if plan.bench {
        bench(board, &model, plan.u0).map_err(|e| board.fail(Stage::Bench, e))?;
    }
    board.report.event(&Event::Stack {
        peak_bytes: stack::peak_bytes(),
    });

    #[cfg(not(feature = "inference-only"))]
    if plan.train_iterations > 0 {
        training::train(board, model, plan.u0, plan.train_iterations)
            .map_err(|e| board.fail(Stage::Train, e))?;
        board.report.event(&Event::Stack {
            peak_bytes: stack::peak_bytes(),
        });
    }

    board.report.event(&Event::Done);
    Ok(())
}

/// Cost measurements on the board's clock.
///
/// - `em_step`: one Euler–Maruyama step of the seed model inside the ensemble (noise,
///   drift, diffusion, update, divergence check): the forecast with `2 N` steps minus the
///   forecast with `N` steps, over `N * M` steps, so fixed costs (setup, the 7 saves and
///   Welford updates per trajectory, the standard deviations) cancel.
/// - `noise_increment`: one Brownian increment (`Brownian::increment::<1>`).
/// - `drift_diffusion`: one drift plus one diffusion evaluation of the seed model.
#[inline(never)]
fn bench<P, D, C, R>(
    board: &mut Board<P, D, C, R>,
    model: &SeedModel,
    u0: [f32; 1],
) -> Result<(), Error>
where
    P: OutputPin,
    D: DelayNs,
    C: Cycles,
    R: Report,
{
    let m = seed::TRAJECTORIES;
    let n = seed::STEPS;
    let a = board.clock.now();
    black_box(forecast(model, u0, m, n)?);
    let b = board.clock.now();
    black_box(forecast(model, u0, m, 2 * n)?);
    let c = board.clock.now();
    let one = b.wrapping_sub(a);
    let two = c.wrapping_sub(b);
    board.cost("em_step", m as u32 * n, two.wrapping_sub(one));

    let noise = Brownian::new(seed::NOISE_SEED);
    let h = (seed::T1 - seed::T0) / n as f32;
    let count = m as u32 * n;
    let a = board.clock.now();
    for k in 0..count {
        black_box(noise.increment::<1>(black_box(k as usize), black_box(k), h, false)?);
    }
    let b = board.clock.now();
    board.cost("noise_increment", count, b.wrapping_sub(a));

    let a = board.clock.now();
    let mut u = u0;
    for _ in 0..count {
        let f = <SeedModel as Sde<f32, 1>>::drift(black_box(model), 0.0, &u, ParamSeed::NONE);
        let g = <SeedModel as Sde<f32, 1>>::diffusion(black_box(model), 0.0, &u, ParamSeed::NONE);
        // Feed the result back (bounded) so no evaluation can be skipped or hoisted.
        u = [black_box(f[0] * 1e-3 + g[0] * 1e-3 + u0[0])];
    }
    let b = board.clock.now();
    black_box(u);
    board.cost("drift_diffusion", count, b.wrapping_sub(a));
    Ok(())
}
