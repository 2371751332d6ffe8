//! Adaptive time stepping with error control (see [`Adaptive`]).

use super::engine::Tally;
use super::integrator::Job;
use super::{Method, Step};
use crate::error::{Error, NoiseKind};
use crate::math;
use crate::nn::ParamSeed;
use crate::noise::{BrownianTree, Increment, TreeCache};
use crate::real::Real;
use crate::sde::Sde;

/// A method with an embedded error estimate: one step that also reports, per component,
/// an estimate of its local error (from values only, so a solve over
/// [`Dual`](crate::Dual)s takes exactly the steps the `f32` solve takes).
///
/// ```
/// use tinysde::nn::ParamSeed;
/// use tinysde::noise::Increment;
/// use tinysde::solve::{Embedded, Sosri, Step};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Gbm; // du = u dt + u dW
/// impl FixedSde<1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0]] }
/// }
/// let inc = Increment { dw: [0.01f32], dz: [0.0] };
/// let mut estimate = [0.0f32];
/// let u = Sosri.step_with_estimate(&Gbm, 0.0, 0.01, &[1.0f32], &inc, ParamSeed::NONE, &mut estimate);
/// // The same step as `Step::step`, with a non-negative estimate of its error.
/// assert_eq!(u, Sosri.step(&Gbm, 0.0, 0.01, &[1.0f32], &inc, ParamSeed::NONE));
/// assert!(estimate[0] >= 0.0 && estimate[0].is_finite());
/// ```
pub trait Embedded<T: Real<Value = f32>, S: Sde<T, D>, const D: usize>: Step<T, S, D> {
    /// The order in `h` the estimate is controlled with (the step-size exponents are
    /// `0.7 / ORDER` and `0.4 / ORDER`).
    const ESTIMATE_ORDER: f32 = 1.5;

    /// [`Step::step`], writing the non-negative error estimate of each component into
    /// `estimate`.
    #[allow(
        clippy::too_many_arguments,
        reason = "Step::step's arguments and the estimate's output"
    )]
    fn step_with_estimate(
        &self,
        sde: &S,
        t: f32,
        h: f32,
        u: &[T; D],
        inc: &Increment<D>,
        seed: ParamSeed,
        estimate: &mut [f32; D],
    ) -> [T; D];
}

/// Tolerances and step-size controller settings of an adaptive solve.
///
/// A step of size `h` is accepted when the root mean square over components of
/// `estimate_k / (abstol + reltol * max(|u_k|, |u_next_k|))` is at most 1. The next step is
/// `h * safety * err^(-0.7 / p) * err_prev^(0.4 / p)` (a PI controller; `p` is the
/// method's [`Embedded::ESTIMATE_ORDER`]), the factor clamped to
/// `[min_factor, max_factor]`, and not above 1 right after a rejection. A rejected step is
/// retried with `h * max(min_factor, safety * err^(-1 / p))`.
///
/// ```
/// use tinysde::solve::{Adaptive, AdaptiveOptions, Sosra};
/// let options = AdaptiveOptions { abstol: 1e-4, reltol: 1e-3, max_steps: 10_000, ..AdaptiveOptions::default() };
/// let solver = Adaptive::with_options(Sosra, options)?;
/// assert_eq!(solver.options.max_steps, 10_000);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptiveOptions {
    /// Absolute tolerance (`>= 0`).
    pub abstol: f32,
    /// Relative tolerance (`>= 0`; not both zero).
    pub reltol: f32,
    /// First step size tried; `None` for a hundredth of the span.
    pub initial_step: Option<f32>,
    /// Smallest step size (rounded up to whole grid intervals, at least one): a step
    /// rejected at this size ends the solve with [`Error::StepSizeTooSmall`].
    pub min_step: f32,
    /// Largest step size (`f32::INFINITY`: the span).
    pub max_step: f32,
    /// Most steps, accepted plus rejected, per trajectory; past it the solve ends with
    /// [`Error::MaxSteps`].
    pub max_steps: u32,
    /// Safety factor in `(0, 1]`.
    pub safety: f32,
    /// Smallest step-size factor, in `(0, 1)`.
    pub min_factor: f32,
    /// Largest step-size factor, `> 1`.
    pub max_factor: f32,
}

impl Default for AdaptiveOptions {
    /// StochasticDiffEq's default tolerances (`1e-2` both), safety 0.9, factors
    /// `[0.2, 5]`, no minimum step beyond one grid interval, 100 000 steps.
    fn default() -> Self {
        Self {
            abstol: 1e-2,
            reltol: 1e-2,
            initial_step: None,
            min_step: 0.0,
            max_step: f32::INFINITY,
            max_steps: 100_000,
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 5.0,
        }
    }
}

impl AdaptiveOptions {
    /// Checks every setting; the error names the first bad one.
    ///
    /// ```
    /// use tinysde::solve::AdaptiveOptions;
    /// assert!(AdaptiveOptions::default().validate().is_ok());
    /// let bad = AdaptiveOptions { safety: 1.5, ..AdaptiveOptions::default() };
    /// assert!(matches!(bad.validate(), Err(tinysde::Error::OutOfRange { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what| Err(Error::OutOfRange { what });
        if !(self.abstol >= 0.0 && self.abstol.is_finite()) {
            return bad("absolute tolerance must be finite and >= 0");
        }
        if !(self.reltol >= 0.0 && self.reltol.is_finite()) {
            return bad("relative tolerance must be finite and >= 0");
        }
        if self.abstol == 0.0 && self.reltol == 0.0 {
            return bad("absolute and relative tolerance must not both be 0");
        }
        if let Some(h) = self.initial_step {
            if !(h > 0.0 && h.is_finite()) {
                return bad("initial step must be positive and finite");
            }
        }
        if !(self.min_step >= 0.0 && self.min_step.is_finite()) {
            return bad("minimum step must be finite and >= 0");
        }
        if !(self.max_step > 0.0 && self.max_step >= self.min_step) {
            return bad("maximum step must be positive and >= the minimum step");
        }
        if self.max_steps == 0 {
            return bad("maximum number of steps must be >= 1");
        }
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return bad("safety factor must be in (0, 1]");
        }
        if !(self.min_factor > 0.0 && self.min_factor < 1.0) {
            return bad("minimum step factor must be in (0, 1)");
        }
        if !(self.max_factor > 1.0 && self.max_factor.is_finite()) {
            return bad("maximum step factor must be finite and > 1");
        }
        Ok(())
    }
}

/// What an adaptive solve did: steps accepted and rejected (summed over an ensemble's
/// trajectories).
///
/// ```
/// use tinysde::noise::BrownianTree;
/// use tinysde::solve::{self, Adaptive, EnsembleRequest, SolveRequest, Sosri, Tally};
/// use tinysde::sde::FixedSde;
/// use tinysde::{NoiseKind, Real};
///
/// struct Gbm; // du = u dt + u dW
/// impl FixedSde<1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0]] }
///     fn diffusion<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] { [u[0]] }
/// }
/// let solver = Adaptive::new(Sosri, 1e-3, 1e-3)?;
/// let tree = BrownianTree::new(7, 0.0, 1.0, 14)?;
/// let times = [1.0];
/// // An ensemble reports the sum of its trajectories' steps.
/// let mut sum = tinysde::solve::AdaptiveStats::default();
/// for m in 0..4 {
///     let request = SolveRequest::new([1.0f32], &times).trajectory(m);
///     sum.add(solve::solve(&solver, &Gbm, &tree, &request, &mut [[0.0f32; 1]])?);
/// }
/// let ensemble = solve::simulate(&solver, &Gbm, &tree, &EnsembleRequest::new([1.0f32], 4, &times))?;
/// assert_eq!(ensemble.stats, sum);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptiveStats {
    /// Accepted steps.
    pub accepted: u64,
    /// Rejected steps.
    pub rejected: u64,
}

impl Tally for AdaptiveStats {
    fn add(&mut self, other: AdaptiveStats) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
    }
}

/// Adaptive time stepping with error control, on a [`BrownianTree`].
///
/// [`Adaptive`] pairs an embedded method (SOSRI, SRIW1, SOSRA, SRA1: their error estimate
/// comes from stages the step computes anyway) with a PI step-size controller and absolute
/// and relative tolerances. Steps start and end on the tree's dyadic grid, so time is
/// `t0 + j * spacing` from an integer `j`, a step's noise is the exact Brownian increment
/// between two grid points, and a rejected step is retried on the same path: rejection
/// cannot bias the statistics, and no rejected-noise memory is needed. Save times are
/// stepped to exactly (at the grid point nearest each one, within half a grid spacing); no
/// interpolation. It integrates with [`solve`](super::solve()),
/// [`simulate_into`](super::simulate_into()) and [`simulate`](super::simulate()), one
/// trajectory at a time or on [`Threads`](super::Threads) (not in lanes: adaptive steps
/// differ between trajectories), and reports [`AdaptiveStats`]. Over
/// [`Dual`](crate::Dual)s the statistics carry the derivative through the accepted steps
/// (step sizes are decided from values only).
///
/// ```
/// use tinysde::nn::ParamSeed;
/// use tinysde::noise::BrownianTree;
/// use tinysde::sde::Sde;
/// use tinysde::solve::{self, Adaptive, SolveRequest, Sosri};
/// use tinysde::{NoiseKind, Real};
///
/// struct Gbm; // du = 1.01 u dt + 0.87 u dW (Itô)
/// impl<T: Real> Sde<T, 1> for Gbm {
///     const NOISE: NoiseKind = NoiseKind::Diagonal;
///     fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 1.01] }
///     fn diffusion(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] { [u[0] * 0.87] }
/// }
/// let solver = Adaptive::new(Sosri, 1e-3, 1e-3)?;
/// let tree = BrownianTree::new(5, 0.0, 1.0, 20)?;
/// let mut out = [[0.0f32; 1]; 2];
/// let stats = solve::solve(&solver, &Gbm, &tree, &SolveRequest::new([0.5], &[0.5, 1.0]), &mut out)?;
/// // The exact solution on the same path.
/// let w1 = tree.increment::<1>(0, 0, tree.intervals())?.dw[0];
/// let exact = 0.5 * (1.01f32 - 0.87 * 0.87 / 2.0 + 0.87 * w1).exp();
/// assert!((out[1][0] - exact).abs() < 0.05 * exact);
/// assert!(stats.accepted > 0);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptive<M> {
    /// The stepping method.
    pub method: M,
    /// Tolerances and controller settings.
    pub options: AdaptiveOptions,
}

/// Smallest error norm the PI controller remembers (keeps `err^-b` finite).
const MIN_NORM: f32 = 1e-4;

impl<M: Method> Adaptive<M> {
    /// `method` with tolerances `abstol` and `reltol` and default controller settings.
    /// Errors for a negative or non-finite tolerance, or both zero.
    ///
    /// ```
    /// use tinysde::solve::{Adaptive, Sosri};
    /// assert_eq!(Adaptive::new(Sosri, 1e-3, 1e-2)?.options.reltol, 1e-2);
    /// assert!(Adaptive::new(Sosri, 0.0, 0.0).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(method: M, abstol: f32, reltol: f32) -> Result<Self, Error> {
        Self::with_options(
            method,
            AdaptiveOptions {
                abstol,
                reltol,
                ..AdaptiveOptions::default()
            },
        )
    }

    /// `method` with the given options, checked by [`AdaptiveOptions::validate`].
    ///
    /// ```
    /// use tinysde::solve::{Adaptive, AdaptiveOptions, Sriw1};
    /// let options = AdaptiveOptions { initial_step: Some(0.5), ..AdaptiveOptions::default() };
    /// assert!(Adaptive::with_options(Sriw1, options).is_ok());
    /// let options = AdaptiveOptions { initial_step: Some(-1.0), ..AdaptiveOptions::default() };
    /// assert!(Adaptive::with_options(Sriw1, options).is_err());
    /// ```
    pub fn with_options(method: M, options: AdaptiveOptions) -> Result<Self, Error> {
        options.validate()?;
        Ok(Self { method, options })
    }

    /// Validates a solve's inputs without touching anything; returns the grid index of
    /// the last save time (0 for none).
    pub(crate) fn check<T: Real<Value = f32>, const D: usize>(
        &self,
        noise: NoiseKind,
        tree: &BrownianTree,
        u0: &[T; D],
        save_times: &[f32],
    ) -> Result<u32, Error> {
        self.options.validate()?; // the fields are public
        if !M::supports(noise) {
            return Err(Error::UnsupportedNoise {
                method: M::NAME,
                noise,
            });
        }
        if let Some(index) = u0.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "initial state",
                index,
            });
        }
        let mut last = None;
        for (index, &t) in save_times.iter().enumerate() {
            let j = tree.index_of(t).ok_or(Error::SaveTime { index })?;
            if last.is_some_and(|prev| j <= prev) {
                return Err(Error::SaveTime { index });
            }
            last = Some(j);
        }
        Ok(last.unwrap_or(0))
    }

    /// Integrates trajectory `trajectory` of the job from its `u0` to grid point `last`,
    /// calling `on_save(i, u)` at each save time. Inputs must already be checked.
    pub(crate) fn run<T, S, const D: usize>(
        &self,
        job: &Job<'_, T, S, BrownianTree, D>,
        trajectory: usize,
        last: u32,
        mut on_save: impl FnMut(usize, &[T; D]),
    ) -> Result<AdaptiveStats, Error>
    where
        T: Real<Value = f32>,
        S: Sde<T, D>,
        M: Embedded<T, S, D>,
    {
        let (sde, tree, save_times, seed) = (job.sde, job.noise, job.save_times, job.seed);
        let opt = &self.options;
        let spacing = tree.spacing();
        let intervals = tree.intervals();
        // Step bounds in grid intervals (f32 -> u32 casts saturate).
        let min_n = ((opt.min_step / spacing) as u32).max(1).min(intervals);
        let min_n = if (min_n as f32) * spacing < opt.min_step {
            (min_n + 1).min(intervals)
        } else {
            min_n
        };
        let max_n = ((opt.max_step / spacing) as u32).clamp(min_n, intervals);
        let order = <M as Embedded<T, S, D>>::ESTIMATE_ORDER;
        let (beta1, beta2) = (0.7 / order, 0.4 / order);

        let mut h_wanted = opt.initial_step.unwrap_or((tree.t1() - tree.t0()) / 100.0);
        let mut prev_norm = 1.0f32;
        let mut after_reject = false;
        let mut stats = AdaptiveStats::default();
        let mut attempts = 0u32;

        // The tree splits around the current point, and around a candidate step's end.
        // (Two slots and an index: swapping the slots would copy them.)
        let mut caches = [TreeCache::<D>::EMPTY; 2];
        let mut start_slot = 0;
        let mut u = job.u0;
        let mut j = 0u32;
        let mut next = 0usize;
        let mut next_j = save_times.first().and_then(|&t| tree.index_of(t));
        loop {
            while next_j == Some(j) {
                on_save(next, &u);
                next += 1;
                next_j = save_times.get(next).and_then(|&t| tree.index_of(t));
            }
            if j >= last {
                return Ok(stats);
            }
            if attempts >= opt.max_steps {
                return Err(Error::MaxSteps {
                    trajectory,
                    t: tree.time(j),
                });
            }
            attempts += 1;
            let wanted = ((h_wanted / spacing) as u32).clamp(min_n, max_n);
            // Save times are checked to be increasing grid points after j, up to `last`.
            let stop = next_j.unwrap_or(last);
            let mut n = wanted.min(stop - j);
            let clipped = n < wanted;
            if !clipped {
                // End the step on a multiple of a power of two near n / 8 (shortening it by
                // at most an eighth): the tree walk to its end then stops a few levels
                // below the node spanning the step instead of going down to the grid.
                let quantum = 1u32 << (n / 8).max(1).ilog2();
                let end = (j + n) / quantum * quantum;
                if end > j && end - j >= min_n {
                    n = end - j;
                }
            }
            let t = tree.time(j);
            let h = n as f32 * spacing;
            let inc = if S::NOISE == NoiseKind::Scalar {
                let one = tree.increment::<1>(trajectory, j, j + n)?;
                Increment {
                    dw: [one.dw[0]; D],
                    dz: [one.dz[0]; D],
                }
            } else {
                let [a, b] = &mut caches;
                let (at_start, at_candidate) = if start_slot == 0 { (&*a, b) } else { (&*b, a) };
                tree.increment_cached::<D>(trajectory, j, j + n, at_start, at_candidate)?
            };
            let mut estimate = [0.0f32; D];
            let candidate =
                self.method
                    .step_with_estimate(sde, t, h, &u, &inc, seed, &mut estimate);
            let norm = error_norm(opt, &u, &candidate, &estimate);
            if norm <= 1.0 {
                u = candidate;
                j += n;
                start_slot = 1 - start_slot;
                stats.accepted += 1;
                let mut factor = if norm > 0.0 {
                    opt.safety * pow(norm, -beta1) * pow(prev_norm, beta2)
                } else {
                    opt.max_factor
                };
                let ceiling = if after_reject { 1.0 } else { opt.max_factor };
                factor = factor.clamp(opt.min_factor, ceiling);
                prev_norm = norm.max(MIN_NORM);
                after_reject = false;
                let proposal = h * factor;
                // A step cut short by a save time says little about the step wanted.
                h_wanted = if clipped {
                    proposal.max(h_wanted)
                } else {
                    proposal
                };
            } else {
                stats.rejected += 1;
                if n <= min_n {
                    return Err(if norm.is_finite() {
                        Error::StepSizeTooSmall { trajectory, t }
                    } else {
                        Error::Diverged {
                            trajectory,
                            step: stats.accepted.min(u32::MAX as u64) as u32,
                        }
                    });
                }
                let factor = if norm.is_finite() {
                    (opt.safety * pow(norm, -1.0 / order)).clamp(opt.min_factor, 1.0)
                } else {
                    opt.min_factor
                };
                h_wanted = h * factor;
                after_reject = true;
            }
        }
    }
}

/// The root mean square of the scaled estimates; infinite for a non-finite candidate.
fn error_norm<T: Real<Value = f32>, const D: usize>(
    opt: &AdaptiveOptions,
    u: &[T; D],
    next: &[T; D],
    estimate: &[f32; D],
) -> f32 {
    if D == 0 {
        return 0.0;
    }
    let mut sum = 0.0f32;
    for ((now, next), &e) in u.iter().zip(next).zip(estimate) {
        if !(next.is_finite() && e.is_finite()) {
            return f32::INFINITY;
        }
        let scale = opt.abstol + opt.reltol * now.value().abs().max(next.value().abs());
        // A zero estimate meets any tolerance, even a zero scale.
        let r = if e == 0.0 { 0.0 } else { e / scale };
        sum += r * r;
    }
    let norm = math::sqrt(sum / D as f32);
    if norm.is_nan() {
        f32::INFINITY
    } else {
        norm
    }
}

/// `x^y` for `x > 0` through `exp` and `ln` (the same bits on every target).
#[inline]
fn pow(x: f32, y: f32) -> f32 {
    math::exp(y * math::ln(x))
}
