//! The adaptive forecast: SOSRI with error control on a Brownian tree (full firmware only).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use tinysde::noise::BrownianTree;
use tinysde::solve::{self, Adaptive, AdaptiveStats, EnsembleBuffers, EnsembleRequest, Sosri};
use tinysde::Error;

use crate::report::Event;
use crate::seed::{self, SeedModel, SAVES};
use crate::{Board, Cycles, Report};

/// Ensemble mean and variance of the adaptive forecast at each save time, and its steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveForecast {
    /// Ensemble mean at each save time.
    pub mean: [f32; SAVES],
    /// Ensemble variance (sample, divisor `n - 1`) at each save time.
    pub var: [f32; SAVES],
    /// Accepted and rejected steps, summed over the trajectories.
    pub stats: AdaptiveStats,
}

/// The adaptive ensemble forecast of `model` from `u0`: `trajectories` trajectories of
/// SOSRI with absolute and relative tolerance [`seed::ADAPTIVE_TOLERANCE`], on the
/// Brownian tree of [`seed::NOISE_SEED`] over `seed::T0 ..= seed::T1` with depth
/// [`seed::ADAPTIVE_DEPTH`], saved at `seed::SAVE_TIMES`.
///
/// Errors: [`Error::Diverged`], [`Error::StepSizeTooSmall`] or [`Error::MaxSteps`] from
/// the solve; argument errors for zero trajectories.
pub fn forecast(
    model: &SeedModel,
    u0: [f32; 1],
    trajectories: usize,
) -> Result<AdaptiveForecast, Error> {
    let tree = BrownianTree::new(seed::NOISE_SEED, seed::T0, seed::T1, seed::ADAPTIVE_DEPTH)?;
    let solver = Adaptive::new(Sosri, seed::ADAPTIVE_TOLERANCE, seed::ADAPTIVE_TOLERANCE)?;
    let mut mean = [[0.0f32; 1]; SAVES];
    let mut var = [[0.0f32; 1]; SAVES];
    let stats = solve::simulate_into(&solver, model, &tree, &EnsembleRequest::new(u0, trajectories, &seed::SAVE_TIMES), EnsembleBuffers::new(&mut mean, &mut var))?;
    Ok(AdaptiveForecast {
        mean: mean.map(|m| m[0]),
        var: var.map(|v| v[0]),
        stats,
    })
}

/// Runs [`forecast`] with [`seed::ADAPTIVE_TRAJECTORIES`] trajectories and reports its rows,
/// its step counts and its cost on the board's clock: `adaptive_forecast` (the whole
/// ensemble, once) and `adaptive_step` (the same total over the accepted steps, so it
/// includes the rejected attempts, the tree queries and the error control).
#[inline(never)] // its frame stays off the stack of the other stages
pub fn run<P, D, C, R>(
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
    let a = board.clock.now();
    let f = forecast(model, u0, seed::ADAPTIVE_TRAJECTORIES)?;
    let total = board.clock.now().wrapping_sub(a);
    for (i, ((&t, &mean), &var)) in seed::SAVE_TIMES
        .iter()
        .zip(f.mean.iter())
        .zip(f.var.iter())
        .enumerate()
    {
        board.led(i % 2 == 0);
        board.report.event(&Event::Adaptive {
            index: i as u32,
            t,
            mean,
            var,
        });
    }
    board.led(false);
    let accepted = u32::try_from(f.stats.accepted).unwrap_or(u32::MAX);
    board.report.event(&Event::AdaptiveSteps {
        trajectories: seed::ADAPTIVE_TRAJECTORIES as u32,
        depth: seed::ADAPTIVE_DEPTH,
        tolerance: seed::ADAPTIVE_TOLERANCE,
        accepted,
        rejected: u32::try_from(f.stats.rejected).unwrap_or(u32::MAX),
    });
    board.cost("adaptive_forecast", 1, total);
    board.cost("adaptive_step", accepted, total);
    Ok(())
}
