//! Reverse-mode gradients: the discrete adjoint of the solver, from checkpoints.
//!
//! Reverse mode of [`Reverse`](super::Reverse)(super::loss_and_gradient) ([`Reverse`](super::Reverse),
//! [`Reversible`](super::Reversible)): the same loss and the same gradient as forward mode,
//! at a cost that does not grow with the number of parameters. The scheme, in passes over
//! the ensemble of `M` trajectories of `N` steps:
//!
//! 1. **Statistics** (1 pass): the ensemble is solved on `f32` exactly as
//!    [`loss_value`](super::loss_value) does, giving the mean and variance at the save
//!    times and the loss value (the same bits as forward mode's).
//! 2. **Cotangents of the statistics** (no solve): the loss is evaluated on [`Dual<K>`]
//!    over the statistics, `K` of the `2 × saves × D` entries at a time, giving
//!    `dL/dmean` and `dL/dvar`. No second implementation of the loss is needed.
//! 3. **Per trajectory, forward then backward** (about 3 passes' worth): trajectory `m` is
//!    solved again keeping [`Checkpoints`]; walking back, each segment is recomputed from
//!    its checkpoint with the same noise (the noise is a pure function of seed, trajectory
//!    and step), and every step's vector–Jacobian product ([`StepVjp`]) carries the
//!    cotangent `ū` of the state back, starting from the cotangents of the saved states,
//!    `dL/du_m(t_i) = dL/dmean_i / M + dL/dvar_i · 2 (u_m(t_i) − mean_i) / (M − 1)`.
//!    The parameter cotangents of all trajectories are summed, in trajectory order, into
//!    the gradient; with the initial state, `ū` at `t0` is summed into its entries.
//!
//! In all about five `f32` solves' worth (statistics, forward, recomputation, and a
//! backward pass costing about two), whatever the number of parameters `P`; forward mode
//! needs `ceil(P / K)` solves carrying K tangents each. With a tape of
//! [`tape_len_keep_all`] rows the statistics pass keeps every trajectory's checkpoints and
//! the per-trajectory forward pass is skipped (about four solves; three with
//! [`Checkpoints::All`], which then also needs no recomputation).
//!
//! Memory per trajectory: [`Checkpoints::states`] rows of `D` floats (`N` rows with
//! [`Checkpoints::All`], about `2 sqrt(N)` with [`Checkpoints::Sqrt`]), plus four rows per
//! save time for the statistics and their cotangents; all of it in the caller's `tape`
//! buffer ([`tape_len`]). Nothing allocates. [`Reversible`](super::Reversible) needs no
//! checkpoints at all: its backward pass rebuilds the states.
//!
//! On the host (feature `std`), [`Threads`](super::Threads)`(`[`Reverse`](super::Reverse)`)` runs the same scheme on
//! lanes: [`REVERSE_LANES`] trajectories per forward and backward pass (8, or 16 with
//! AVX-512), one per lane of [`F32x`](crate::lanes::F32x), each lane computing exactly what the
//! `f32` code computes for its trajectory, on any number of threads. Each trajectory's
//! parameter cotangent is summed into the gradient in trajectory order, so its bits do not
//! depend on the thread count; the serial mode instead adds every step of every trajectory
//! into one running sum (no scratch of `P` floats per trajectory, which `no_std` callers
//! would have to place), so the two agree to rounding, not bit for bit.
//!
//! Methods: every [`StepVjp`] method (Euler–Maruyama, Euler–Heun, Milstein, SRIW1, SOSRI,
//! SRA1, SOSRA) and reversible Heun. Milstein's step contains the diffusion's derivative, so
//! its adjoint needs second derivatives of the diffusion: the model implements
//! [`MilsteinVjp`](crate::sde::MilsteinVjp), as [`NeuralSde`](crate::sde::NeuralSde) does.
//!
//! ```
//! use tinysde::grad::{loss_and_gradient, reverse, Ensemble, Forward, Problem, Reverse, Scratch};
//! use tinysde::nn::{Dense, Identity, Parameters, Tanh};
//! use tinysde::noise::Brownian;
//! use tinysde::sde::NeuralSde;
//! use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
//! use tinysde::train::MeanSquaredError;
//! use tinysde::{Dual, Real};
//!
//! type Model = NeuralSde<(Dense<1, 8, Tanh>, Dense<8, 1, Identity>), Dense<1, 1, Identity>>;
//! let mut model = Model::default();
//! model.init(&mut tinysde::noise::rng_from_seed(1), tinysde::nn::InitScheme::GlorotUniform)?;
//! let times = [0.5, 1.0];
//! let data = [[0.9], [0.7]];
//! let loss = MeanSquaredError::new(&data)?;
//! let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 100)?);
//! let problem = Problem::new(solver, [1.0], 16, &times)?.with_u0_gradient(true);
//! let noise = Brownian::new(5);
//! let objective = Ensemble::new(&problem, &loss, &noise);
//!
//! let mut stats = [[Dual::<4>::ZERO; 1]; 4];
//! let mut tape = [[0.0f32; 1]; 64];
//! assert!(tape.len() >= reverse::tape_len(&problem, Checkpoints::Sqrt));
//! let mut g_rev = [0.0f32; Model::PARAMS + 1];
//! let mut scratch = Scratch::new(&mut stats, &mut tape);
//! let l_rev = loss_and_gradient(&objective, &model, Reverse(Checkpoints::Sqrt), &mut scratch, &mut g_rev)?;
//!
//! let mut g_fwd = [0.0f32; Model::PARAMS + 1];
//! let l_fwd = loss_and_gradient(&objective, &model, Forward, &mut scratch, &mut g_fwd)?;
//! assert_eq!(l_rev, l_fwd); // the same loss bits
//! for (r, f) in g_rev.iter().zip(&g_fwd) {
//!     assert!((r - f).abs() <= 1e-4 * (1.0 + f.abs()));
//! }
//! # Ok::<(), tinysde::Error>(())
//! ```

#[cfg(feature = "std")]
pub use super::parallel::REVERSE_LANES;
use super::{check_buffers, check_room, split_stats, Loss, Problem};
use crate::dual::Dual;
use crate::error::Error;
use crate::nn::Parameters;
use crate::noise::NoiseSource;
use crate::real::{PlainReal, Real};
use crate::sde::SdeVjp;
use crate::solve::{
    kept_rows, AdjointPass, Checkpoints, EnsembleBuffers, EnsembleRequest, LaneGroup, Method,
    ReversibleHeun, StepVjp, Tape,
};

/// The number of rows (`[f32; D]`) the `tape` of [`Reverse`](super::Reverse) needs: four per
/// save time (mean, variance and their cotangents) plus one trajectory's checkpoints and
/// segment ([`Checkpoints::states`] for the steps up to the last save time).
///
/// ```
/// # use tinysde::grad::Problem;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # let times = [0.5, 1.0, 1.5];
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
/// let problem = Problem::new(solver, [1.0], 8, &times)?;
/// use tinysde::grad::reverse;
/// use tinysde::solve::Checkpoints;
/// assert!(reverse::tape_len(&problem, Checkpoints::Sqrt) < reverse::tape_len(&problem, Checkpoints::All));
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn tape_len<M: Method, const D: usize>(
    problem: &Problem<'_, M, D>,
    checkpoints: Checkpoints,
) -> usize {
    let (last, rows) = tape_base(problem);
    rows.saturating_add(checkpoints.states(last))
}

/// What every tape length starts from: the step of the last save time (0 when the save
/// times are bad: the gradient call then fails its own check) and the four rows per save
/// time (mean, variance and their cotangents).
fn tape_base<M: Method, const D: usize>(problem: &Problem<'_, M, D>) -> (u32, usize) {
    let last = problem
        .solver()
        .grid
        .check_save_times(problem.save_times())
        .unwrap_or(0);
    (last, problem.save_times().len().saturating_mul(4))
}

/// A tape length (rows of `[f32; D]`) with which [`Reverse`](super::Reverse) keeps the
/// checkpoints of every trajectory from its statistics pass, instead of one trajectory's:
/// four rows per save time, `ceil(steps / interval) + 1` per trajectory, and one segment.
/// It then skips the per-trajectory forward pass (one solve fewer, the same bits). With
/// [`Checkpoints::All`] that is every state of every trajectory (`M × N` rows); with
/// [`Checkpoints::Sqrt`] about `M sqrt(N)`.
///
/// ```
/// # use tinysde::grad::Problem;
/// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// # let times = [0.5, 1.0, 1.5];
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
/// let problem = Problem::new(solver, [1.0], 8, &times)?;
/// use tinysde::grad::reverse;
/// use tinysde::solve::Checkpoints;
/// let c = Checkpoints::Sqrt;
/// assert!(reverse::tape_len_keep_all(&problem, c) > reverse::tape_len(&problem, c));
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn tape_len_keep_all<M: Method, const D: usize>(
    problem: &Problem<'_, M, D>,
    checkpoints: Checkpoints,
) -> usize {
    let (last, rows) = tape_base(problem);
    let per_trajectory = checkpoints.kept(last).saturating_add(1);
    // Saturating: an absurd step count must fail the tape-length check, not wrap past it.
    rows.saturating_add(problem.trajectories().saturating_mul(per_trajectory))
        .saturating_add(checkpoints.scratch(last))
}

/// The statistics of the window and their cotangents, carved out of the tape.
struct Rows<'t, const D: usize> {
    mean: &'t mut [[f32; D]],
    var: &'t mut [[f32; D]],
    mean_bar: &'t mut [[f32; D]],
    var_bar: &'t mut [[f32; D]],
    states: &'t mut [[f32; D]],
}

fn carve<const D: usize>(tape: &mut [[f32; D]], n: usize) -> Option<Rows<'_, D>> {
    let (mean, rest) = tape.split_at_mut_checked(n)?;
    let (var, rest) = rest.split_at_mut_checked(n)?;
    let (mean_bar, rest) = rest.split_at_mut_checked(n)?;
    let (var_bar, states) = rest.split_at_mut_checked(n)?;
    Some(Rows {
        mean,
        var,
        mean_bar,
        var_bar,
        states,
    })
}

/// The loss of `model` on `problem` and its gradient, by the discrete adjoint (reverse mode).
///
/// Arguments and result as [`Reverse`](super::Reverse)(super::loss_and_gradient): the loss value
/// has the same bits as forward mode's and [`loss_value`](super::loss_value)'s, and the
/// gradient (parameters, then `u0` if asked) equals forward mode's up to rounding.
/// `stats` (`Dual<K>` rows, at least [`Problem::stats_len`]) is scratch for the loss's
/// derivatives in its statistics, K entries at a time; `tape` is scratch of at least
/// [`tape_len`]`(problem, checkpoints)` rows.
///
/// Errors: wrong `grad`, `stats` or `tape` length, `K = 0`, a loss that rejects the number
/// of save times, an unsupported noise kind, bad save times: returned before anything is
/// written. Every [`TimeGrid`](crate::solve::TimeGrid) spacing works: the backward pass
/// walks the grid's plan in reverse with a [`PlanCursor`](crate::solve::PlanCursor). A solve
/// that diverges returns [`Error::Diverged`]; a non-finite loss [`Error::NonFiniteLoss`], a
/// non-finite gradient entry [`Error::NonFiniteGradientEntry`] (as forward mode; the
/// trainers turn both into [`Error::NonFiniteGradient`]). After such a run-time error
/// `grad`, `stats` and `tape` hold partial results.
///
/// Cost: about four to five ensemble solves on `f32` whatever the number of parameters (see the
/// [module documentation](self)).
#[allow(
    clippy::too_many_arguments,
    reason = "crate-internal kernel behind loss_and_gradient(Reverse); the public entry groups these as objective, mode and scratch"
)]
pub(crate) fn checkpoint_gradient<const K: usize, S, M, N, L, const D: usize>(
    problem: &Problem<'_, M, D>,
    model: &S,
    noise: &N,
    loss: &L,
    checkpoints: Checkpoints,
    stats: &mut [[Dual<K>; D]],
    tape: &mut [[f32; D]],
    grad: &mut [f32],
) -> Result<f32, Error>
where
    S: SdeVjp<D> + Parameters,
    M: StepVjp<S, D>,
    N: NoiseSource,
    L: Loss<D>,
{
    const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
    check_buffers::<f32, S, _, _, D>(problem, loss, stats.len(), Some(grad.len()))?;
    let what = "reverse-mode tape (reverse::tape_len rows)";
    check_room(what, tape_len(problem, checkpoints), tape.len())?;
    let solver = problem.solver();
    let times = problem.active_save_times();
    let last = solver.grid.check_save_times(times)?;
    let per_trajectory = checkpoints.kept(last).saturating_add(1);
    let segment = checkpoints.scratch(last);
    let trajectories = problem.trajectories();
    let u0 = problem.u0();
    let pass = AdjointPass {
        solver,
        sde: model,
        noise,
        group: LaneGroup {
            first: 0,
            count: trajectories,
        },
        u0: &u0,
        save_times: times,
        last,
        checkpoints,
    };
    // With room for every trajectory's checkpoints, the statistics pass keeps them and the
    // per-trajectory forward pass is skipped (same bits: the states are recomputed by the
    // same code either way).
    let keep_all = tape.len()
        >= problem
            .window()
            .saturating_mul(4)
            .saturating_add(trajectories.saturating_mul(per_trajectory))
            .saturating_add(segment);
    adjoint_loss(
        problem,
        loss,
        stats,
        tape,
        grad,
        S::PARAMS,
        |mean, var, states| {
            if keep_all {
                pass.ensemble(mean, var, states)
            } else {
                let job = crate::solve::Job::new(model, noise, u0, times);
                solver.ensemble_job(&job, trajectories, EnsembleBuffers::new(mean, var))
            }
        },
        |m, states, save_bar, u0_bar, params_bar| {
            let tape = if keep_all {
                // `keep_all` checked the length; the checked splits keep this panic-free.
                let short = Error::Length {
                    what: "reverse-mode tape (reverse::tape_len_keep_all rows)",
                    expected: trajectories
                        .saturating_mul(per_trajectory)
                        .saturating_add(segment),
                    found: states.len(),
                };
                kept_rows(states, trajectories, per_trajectory, m, short)?
            } else {
                Tape::Recompute(states)
            };
            pass.one(m).adjoint(tape, save_bar, u0_bar, params_bar)
        },
    )
}

/// The scheme shared by the adjoints: statistics and loss (`stats_pass`), the loss's
/// cotangents in the statistics, then every trajectory's backward pass (`trajectory`,
/// given the trajectory index, the state scratch, the save cotangent function, and the
/// `u0` and parameter cotangents to add into). Buffers are checked by the caller.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn adjoint_loss<const K: usize, M, L, const D: usize>(
    problem: &Problem<'_, M, D>,
    loss: &L,
    stats: &mut [[Dual<K>; D]],
    tape: &mut [[f32; D]],
    grad: &mut [f32],
    params: usize,
    stats_pass: impl FnOnce(&mut [[f32; D]], &mut [[f32; D]], &mut [[f32; D]]) -> Result<(), Error>,
    mut trajectory: impl FnMut(
        usize,
        &mut [[f32; D]],
        &mut dyn FnMut(usize, &[f32; D]) -> [f32; D],
        &mut [f32; D],
        &mut [f32],
    ) -> Result<(), Error>,
) -> Result<f32, Error>
where
    M: Method,
    L: Loss<D>,
{
    let n = problem.window();
    let rows = carve(tape, n).ok_or(Error::Length {
        what: "reverse-mode tape (reverse::tape_len rows)",
        expected: 4 * n,
        found: 0,
    })?;
    let trajectories = problem.trajectories();

    // 1. The statistics and the loss, exactly as `loss_value` computes them.
    stats_pass(rows.mean, rows.var, rows.states)?;
    let value = loss.eval::<f32>(rows.mean, rows.var);
    if !value.is_finite() {
        return Err(Error::NonFiniteLoss);
    }

    // 2. dL/dmean and dL/dvar by forward mode over the statistics, K entries at a time.
    let (mean_d, var_d) = split_stats(stats, n)?;
    let eval = |mean: &_, var: &_| loss.eval::<Dual<K>>(mean, var);
    let (mean, var) = (&*rows.mean, &*rows.var);
    statistics_cotangents(eval, mean, var, mean_d, var_d, rows.mean_bar, rows.var_bar);

    // 3. Per trajectory: forward with checkpoints, backward through every step.
    grad.fill(0.0);
    let (params_bar, u0_part) = grad.split_at_mut(params.min(grad.len()));
    let mut u0_bar = [0.0f32; D];
    let save_bar = SaveCotangent::new(rows.mean, rows.mean_bar, rows.var_bar, trajectories);
    for m in 0..trajectories {
        trajectory(
            m,
            rows.states,
            &mut |i, u| save_bar.at(i, u),
            &mut u0_bar,
            params_bar,
        )?;
    }
    if problem.u0_gradient() {
        for (g, &b) in u0_part.iter_mut().zip(&u0_bar) {
            *g = b;
        }
    }
    if let Some(index) = grad.iter().position(|g| !g.is_finite()) {
        return Err(Error::NonFiniteGradientEntry { index });
    }
    Ok(value)
}

/// Step 2 of the scheme: `dL/dmean` into `mean_bar` and `dL/dvar` into `var_bar`, by
/// evaluating the loss `eval` on `Dual<K>` over the statistics, K of their entries at a
/// time (`mean_d` and `var_d` are their dual scratch, as long as `mean`). The ensemble and
/// the series adjoints share it.
pub(crate) fn statistics_cotangents<const K: usize, const D: usize>(
    eval: impl Fn(&[[Dual<K>; D]], &[[Dual<K>; D]]) -> Dual<K>,
    mean: &[[f32; D]],
    var: &[[f32; D]],
    mean_d: &mut [[Dual<K>; D]],
    var_d: &mut [[Dual<K>; D]],
    mean_bar: &mut [[f32; D]],
    var_bar: &mut [[f32; D]],
) {
    let n = mean.len();
    let entries = 2 * n * D;
    let mut start = 0;
    while start < entries {
        for (e, (dst, src)) in mean_d
            .iter_mut()
            .flatten()
            .zip(mean.iter().flatten())
            .chain(var_d.iter_mut().flatten().zip(var.iter().flatten()))
            .enumerate()
        {
            *dst = Dual::constant(*src);
            if e >= start && e - start < K {
                dst.add_param_tangent(e - start, Dual::ONE);
            }
        }
        let l = eval(mean_d, var_d);
        for (e, bar) in mean_bar
            .iter_mut()
            .flatten()
            .chain(var_bar.iter_mut().flatten())
            .enumerate()
            .skip(start)
            .take(K)
        {
            *bar = l.tangent(e - start);
        }
        start += K;
    }
}

/// The cotangent of one trajectory's state at a save time, from the cotangents of the
/// ensemble statistics: `dL/du_m(t_i) = dL/dmean_i / M + dL/dvar_i · 2 (u − mean_i) / (M − 1)`.
pub(crate) struct SaveCotangent<'r, const D: usize> {
    mean: &'r [[f32; D]],
    mean_bar: &'r [[f32; D]],
    var_bar: &'r [[f32; D]],
    inv_count: f32,
    var_scale: f32,
}

impl<'r, const D: usize> SaveCotangent<'r, D> {
    /// For an ensemble of `trajectories` trajectories.
    pub(crate) fn new(
        mean: &'r [[f32; D]],
        mean_bar: &'r [[f32; D]],
        var_bar: &'r [[f32; D]],
        trajectories: usize,
    ) -> Self {
        Self {
            mean,
            mean_bar,
            var_bar,
            inv_count: 1.0 / trajectories as f32,
            var_scale: 2.0 / (trajectories.max(2) - 1) as f32,
        }
    }

    /// The cotangent of state `u` saved at save time `i`.
    pub(crate) fn at<X: PlainReal>(&self, i: usize, u: &[X; D]) -> [X; D] {
        let mut bar = [<X as Real>::ZERO; D];
        if let (Some(mu), Some(mb), Some(vb)) =
            (self.mean.get(i), self.mean_bar.get(i), self.var_bar.get(i))
        {
            let inputs = mb.iter().zip(vb).zip(u.iter().zip(mu));
            for (b, ((&mbd, &vbd), (&ud, &mud))) in bar.iter_mut().zip(inputs) {
                *b = X::cst(mbd * self.inv_count) + (ud - mud) * (vbd * self.var_scale);
            }
        }
        bar
    }
}

/// The number of rows (`[f32; D]`) the `tape` of [`Reversible`](super::Reversible) needs: four per save
/// time (mean, variance and their cotangents). No states are kept.
///
/// ```
/// use tinysde::grad::{reverse, Problem};
/// use tinysde::solve::{ReversibleHeun, Solver, TimeGrid};
/// let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 1000)?);
/// let problem = Problem::new(solver, [1.0], 16, &[0.5, 1.0])?;
/// assert_eq!(reverse::reversible_heun_tape_len(&problem), 8); // 1000 steps, 8 rows
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn reversible_heun_tape_len<const D: usize>(problem: &Problem<'_, ReversibleHeun, D>) -> usize {
    4 * problem.save_times().len()
}

/// The loss and its gradient for a problem solved by [`ReversibleHeun`], in memory that does
/// not depend on the number of steps.
///
/// The scheme of [`Reverse`](super::Reverse), except that a trajectory's backward pass keeps no
/// checkpoints: it rebuilds each earlier state from the later one by undoing the step
/// algebraically, with the same noise. The gradient is that of the discrete solution up
/// to the rounding of the rebuilt states (in the tests, within 1e-4 of forward mode's on
/// the same problem). The loss value has the bits of the statistics
/// [`simulate_into`](crate::solve::simulate_into()) computes with the same solver.
/// Arguments, errors and cost as [`Reverse`](super::Reverse); `tape` has at least
/// [`reversible_heun_tape_len`] rows.
pub(crate) fn reversible_gradient<const K: usize, S, N, L, const D: usize>(
    problem: &Problem<'_, ReversibleHeun, D>,
    model: &S,
    noise: &N,
    loss: &L,
    stats: &mut [[Dual<K>; D]],
    tape: &mut [[f32; D]],
    grad: &mut [f32],
) -> Result<f32, Error>
where
    S: SdeVjp<D> + Parameters,
    N: NoiseSource,
    L: Loss<D>,
{
    const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
    check_buffers::<f32, S, _, _, D>(problem, loss, stats.len(), Some(grad.len()))?;
    let what = "reverse-mode tape (reverse::reversible_heun_tape_len rows)";
    check_room(what, reversible_heun_tape_len(problem), tape.len())?;
    let solver = problem.solver();
    let times = problem.active_save_times();
    let last = solver.grid.check_save_times(times)?;
    adjoint_loss(
        problem,
        loss,
        stats,
        tape,
        grad,
        S::PARAMS,
        |mean, var, _states| {
            let request = EnsembleRequest::new(problem.u0(), problem.trajectories(), times);
            crate::solve::simulate_into(
                solver,
                model,
                noise,
                &request,
                EnsembleBuffers::new(mean, var),
            )
        },
        |m, _states, save_bar, u0_bar, params_bar| {
            solver.reversible_adjoint_trajectory(
                model,
                noise,
                m,
                &problem.u0(),
                times,
                last,
                save_bar,
                u0_bar,
                params_bar,
            )
        },
    )
}
