//! Loss and gradient on several threads (feature `std`): trajectories split into chunks
//! on [`std::thread::scope`], results folded in trajectory order, so the bits do not
//! depend on the number of threads.

use std::vec::Vec;

use super::reverse::{statistics_cotangents, SaveCotangent};
use super::{check_buffers, split_stats, Ensemble, Loss, Problem};
use crate::dual::Dual;
use crate::error::Error;
use crate::lanes::{F32x, Lanes};
use crate::nn::Parameters;
use crate::noise::NoiseSource;
use crate::real::Real;
use crate::sde::{Sde, SdeVjp};
use crate::solve::{AdjointPass, Checkpoints, LaneGroup, Step, StepVjp, Tape};

/// Lanes of the `Dual` scratch that differentiates the loss in the statistics (reverse
/// mode); lanes never interact, so the value only sets how many loss evaluations that takes.
const STATISTICS_LANES: usize = 8;

/// Bytes of per-trajectory parameter cotangents held at once before they are folded.
const COTANGENT_BLOCK_BYTES: usize = 4 << 20;

/// Up to this many bytes, the reverse-mode forward pass keeps every trajectory's
/// checkpoints (no second forward pass per trajectory); beyond, each trajectory is solved
/// again from `u0` before its backward pass (the same bits, one solve dearer).
pub(crate) const KEEP_ALL_BYTES: usize = 64 << 20;

/// The number of threads to use: `threads`, or all the machine has for 0; never more than
/// `items` nor fewer than one.
pub(crate) fn thread_count(threads: usize, items: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(items)
    .max(1)
}

/// Calls `work(first, chunk)` on contiguous chunks of `items` (about `items.len() /
/// threads` each, `first` the index of the chunk's first item), one chunk per thread; the
/// calling thread takes the first chunk.
fn for_each_chunk<T: Send>(items: &mut [T], threads: usize, work: impl Fn(usize, &mut [T]) + Sync) {
    let per = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let mut chunks = items.chunks_mut(per).enumerate();
        let own = chunks.next();
        for (c, chunk) in chunks {
            let work = &work;
            scope.spawn(move || work(c * per, chunk));
        }
        if let Some((_, chunk)) = own {
            work(0, chunk);
        }
    });
}

/// [`loss_and_gradient`](super::loss_and_gradient) on `threads` threads (0: as many as
/// [`std::thread::available_parallelism`] reports), with the same bits (feature `std`).
///
/// The gradient is computed in `ceil(len / K)` passes of K entries, and passes are
/// independent (lanes never interact): each thread runs a contiguous run of passes, each
/// pass exactly as the serial function runs it (the same ensemble, the same Welford
/// statistics in trajectory order, the same loss). So the loss and every gradient entry are
/// bit-identical to the serial function's, for every number of threads and every K. At
/// most `ceil(len / K)` threads are busy: choose `K <= len / threads` to use them all.
///
/// Errors: the error the serial function returns (that of the lowest failing pass); unlike
/// it, `grad` is written only on success, so after any error it is bit-identical to what
/// the caller passed in (the passes write into a copy). `stats` (`Dual<K>` rows, at least
/// [`Problem::stats_len`]) serves the calling thread; the others allocate their own, and
/// the copy of the gradient.
pub(crate) fn forward_gradient_parallel<const K: usize, S, M, N, L, const D: usize>(
    o: &Ensemble<'_, M, L, N, D>,
    model: &S,
    stats: &mut [[Dual<K>; D]],
    grad: &mut [f32],
    threads: usize,
) -> Result<f32, Error>
where
    S: Sde<Dual<K>, D> + Parameters + Sync,
    M: Step<Dual<K>, S, D> + Sync,
    N: NoiseSource + Sync,
    L: Loss<D> + Sync,
{
    const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
    check_buffers::<Dual<K>, S, _, _, D>(o.problem, o.loss, stats.len(), Some(grad.len()))?;
    let n = o.problem.window;
    let mut result = grad.to_vec();
    // One chunk of K entries per pass; a gradient of length 0 still has its pass (the loss).
    let mut passes: Vec<(&mut [f32], Result<f32, Error>)> =
        result.chunks_mut(K).map(|c| (c, Ok(0.0))).collect();
    if passes.is_empty() {
        passes.push((&mut [], Ok(0.0)));
    }
    let threads = thread_count(threads, passes.len());
    let own_stats = std::sync::Mutex::new(Some(stats));
    for_each_chunk(&mut passes, threads, |first, chunk| {
        // The caller's scratch serves the first thread to come; the others allocate.
        let own = own_stats.lock().ok().and_then(|mut s| s.take());
        let mut allocated = Vec::new();
        let stats: &mut [[Dual<K>; D]] = match own {
            Some(s) => s,
            None => {
                allocated.resize(2 * n, [Dual::<K>::ZERO; D]);
                &mut allocated
            }
        };
        let Ok((mean, var)) = split_stats(stats, n) else {
            return;
        };
        for (j, (grad, outcome)) in chunk.iter_mut().enumerate() {
            let start = (first + j) * K;
            *outcome = o.forward_pass(model, mean, var, start, grad);
        }
    });
    let mut value = f32::NAN;
    for (p, (_, outcome)) in passes.iter().enumerate() {
        let l = (*outcome)?;
        if p == 0 {
            value = l;
        }
    }
    drop(passes);
    for (g, r) in grad.iter_mut().zip(&result) {
        *g = *r;
    }
    Ok(value)
}

/// Trajectories per pass of the threaded reverse mode: each pass runs the forward and
/// backward solves of this many trajectories at once, one per lane of [`F32x`]:
/// [`WIDE_LANES`](crate::lanes::WIDE_LANES), 16 with AVX-512 (faster there: the README's
/// benchmarks), else 8.
pub const REVERSE_LANES: usize = crate::lanes::WIDE_LANES;

/// The lane scalar of the threaded reverse mode.
type Wide = F32x<REVERSE_LANES>;

/// One pass's share of the reverse-mode work: `REVERSE_LANES` trajectories, one per lane.
struct LanePass<const D: usize> {
    /// Its trajectories.
    group: LaneGroup,
    /// Their states at the save times in use.
    saved: Vec<[Wide; D]>,
    /// Their checkpoints, then their final states (empty when they are not kept).
    kept: Vec<[Wide; D]>,
    /// Their parameter cotangents, lane by lane (empty until the backward pass).
    params_bar: Vec<Wide>,
    /// Their initial-state cotangents.
    u0_bar: [Wide; D],
    /// How its last pass ended.
    outcome: Result<(), Error>,
}

/// [`Reverse`](crate::grad::Reverse)(super::reverse::checkpoint_gradient) on `threads` threads
/// (0: as many as [`std::thread::available_parallelism`] reports), with bits that do not
/// depend on the number of threads (feature `std`).
///
/// The scheme of the serial function, with trajectories run [`REVERSE_LANES`] at a time, one
/// per lane of [`F32x`] (each lane computes exactly what the `f32` code computes for its
/// trajectory), and those passes split into contiguous chunks, one per thread: (1) every
/// trajectory is solved forward keeping its states at the save times and its
/// [`Checkpoints`]; the calling thread folds the saved states into the Welford statistics in
/// trajectory order (the serial ensemble's bits, so the loss value is bit-identical to the
/// serial function's); (2) the loss's cotangents in the statistics; (3) every trajectory's
/// backward pass into a parameter cotangent of its own (its lane), and the calling thread
/// sums those in trajectory order.
///
/// The model and method must have their vector–Jacobian products on lanes
/// ([`SdeVjp`]`<D, F32x<REVERSE_LANES>>`, [`StepVjp`]`<S, D, F32x<REVERSE_LANES>>`): [`NeuralSde`](crate::sde::NeuralSde)
/// and every method do; a hand-written SDE gets them by writing its [`SdeVjp`] generic over
/// [`PlainReal`](crate::PlainReal).
///
/// **Bits.** Loss and gradient are the same for 1, 2 or any number of threads. The loss
/// value equals the serial function's; the gradient differs from the serial function's
/// only in how the parameter cotangents are summed (the serial function adds every step of
/// every trajectory into one running sum, which a thread cannot share), so it agrees to
/// rounding; the initial-state entries are equal.
///
/// Memory: it allocates its own tape: every trajectory's checkpoints (up to 64 MiB, else
/// each pass is solved again before its backward pass, with the same bits), the states at
/// the save times, and up to 4 MiB of per-trajectory parameter cotangents at a time.
///
/// Errors: those of the serial function (the lowest diverging trajectory's, a non-finite
/// loss or gradient entry, and every input error before anything runs); `grad` is
/// written only on success: after any error it is bit-identical to what the caller passed in.
///
/// It keeps every trajectory's checkpoints when they take at most `keep_bytes`
/// ([`KEEP_ALL_BYTES`] from [`loss_and_gradient`](super::loss_and_gradient); the tests
/// force the re-solving path with less).
#[allow(
    clippy::too_many_arguments,
    reason = "crate-internal kernel of Threads(Reverse): each argument is a distinct borrowed input of the pass"
)]
pub(crate) fn reverse_gradient_parallel<S, M, N, L, const D: usize>(
    problem: &Problem<'_, M, D>,
    model: &S,
    noise: &N,
    loss: &L,
    checkpoints: Checkpoints,
    grad: &mut [f32],
    threads: usize,
    keep_bytes: usize,
) -> Result<f32, Error>
where
    S: SdeVjp<D> + SdeVjp<D, Wide> + Parameters + Sync,
    M: StepVjp<S, D> + StepVjp<S, D, Wide> + Sync,
    N: NoiseSource + Sync,
    L: Loss<D>,
{
    check_buffers::<f32, S, _, _, D>(problem, loss, problem.stats_len(), Some(grad.len()))?;
    let solver = problem.solver();
    let times = problem.active_save_times();
    let last = solver.grid.check_save_times(times)?;
    let n_ckpt = checkpoints.kept(last);
    let segment = checkpoints.scratch(last);
    let trajectories = problem.trajectories();
    let n = problem.window();
    let u0 = problem.u0();
    let wide_u0 = u0.map(Wide::splat);
    let base = AdjointPass {
        solver,
        sde: model,
        noise,
        group: LaneGroup::one(0),
        u0: &wide_u0,
        save_times: times,
        last,
        checkpoints,
    };
    let zero = [<Wide as Lanes>::ZERO; D];
    let passes = trajectories.div_ceil(REVERSE_LANES);
    let threads = thread_count(threads, passes);
    let row_bytes = core::mem::size_of::<[Wide; D]>().max(1);
    let keep = passes
        .checked_mul(n_ckpt.saturating_add(1))
        .and_then(|rows| rows.checked_mul(row_bytes))
        .is_some_and(|bytes| bytes <= keep_bytes);
    let mut work: Vec<LanePass<D>> = (0..passes)
        .map(|p| {
            let first = p * REVERSE_LANES;
            LanePass {
                group: LaneGroup {
                    first,
                    count: (trajectories - first).min(REVERSE_LANES),
                },
                saved: std::vec![zero; n],
                kept: if keep {
                    std::vec![zero; n_ckpt + 1]
                } else {
                    Vec::new()
                },
                params_bar: Vec::new(),
                u0_bar: zero,
                outcome: Ok(()),
            }
        })
        .collect();

    // 1. Every trajectory forward: its saved states (and checkpoints, if kept).
    for_each_chunk(&mut work, threads, |_, chunk| {
        let mut scratch = std::vec![zero; if keep { 0 } else { n_ckpt }];
        for pass in chunk.iter_mut() {
            let saved = &mut pass.saved;
            let empty: &mut [[Wide; D]] = &mut [];
            let (ckpt, tail) = if keep {
                pass.kept
                    .split_at_mut_checked(n_ckpt)
                    .unwrap_or((empty, &mut []))
            } else {
                (scratch.as_mut_slice(), empty)
            };
            let run = base.with(pass.group).forward(ckpt, |i, u| {
                if let Some(slot) = saved.get_mut(i) {
                    *slot = *u;
                }
            });
            pass.outcome = run.map(|final_state| {
                if let Some(slot) = tail.first_mut() {
                    *slot = final_state;
                }
            });
        }
    });
    let (mut mean, mut var) = (std::vec![[0.0f32; D]; n], std::vec![[0.0f32; D]; n]);
    for pass in &work {
        if pass.outcome.is_err() {
            return Err(serial_forward_error(
                problem,
                model,
                noise,
                pass.group,
                checkpoints,
            ));
        }
        for j in 0..pass.group.count {
            let count = (pass.group.first + j + 1) as f32;
            for ((mu, v), u) in mean.iter_mut().zip(var.iter_mut()).zip(&pass.saved) {
                crate::solve::welford_update(mu, v, &u.map(|x| x.lane(j)), count);
            }
        }
    }
    // Welford's sums of squares into sample variances, as the serial ensemble divides.
    crate::solve::finish_variance(&mut var, trajectories);
    let value = loss.eval::<f32>(&mean, &var);
    if !value.is_finite() {
        return Err(Error::NonFiniteLoss);
    }

    // 2. dL/dmean and dL/dvar.
    let mut stats = std::vec![[Dual::<STATISTICS_LANES>::ZERO; D]; 2 * n];
    let (mut mean_bar, mut var_bar) = (std::vec![[0.0f32; D]; n], std::vec![[0.0f32; D]; n]);
    let (mean_d, var_d) = split_stats(&mut stats, n)?;
    let eval = |mean: &_, var: &_| loss.eval::<Dual<STATISTICS_LANES>>(mean, var);
    statistics_cotangents(
        eval,
        &mean,
        &var,
        mean_d,
        var_d,
        &mut mean_bar,
        &mut var_bar,
    );
    let save_bar = SaveCotangent::new(&mean, &mean_bar, &var_bar, trajectories);

    // 3. Every pass backward into its trajectories' own cotangents (its lanes), a block at
    // a time; the cotangents are summed in trajectory order.
    let params = <S as Parameters>::PARAMS;
    let mut result = std::vec![0.0f32; grad.len()];
    let mut u0_total = [0.0f32; D];
    let block = (COTANGENT_BLOCK_BYTES / (params.max(1) * core::mem::size_of::<Wide>()))
        .max(threads)
        .min(passes)
        .max(1);
    for chunk in work.chunks_mut(block) {
        for_each_chunk(chunk, threads, |_, part| {
            let mut states = std::vec![zero; if keep { segment } else { checkpoints.states(last) }];
            for pass in part.iter_mut() {
                pass.params_bar = std::vec![<Wide as Lanes>::ZERO; params];
                let save_bar = |i: usize, u: &[Wide; D]| save_bar.at(i, u);
                let tape = if keep {
                    Tape::Kept {
                        rows: &mut pass.kept,
                        scratch: &mut states,
                    }
                } else {
                    Tape::Recompute(&mut states)
                };
                pass.outcome = base.with(pass.group).adjoint(
                    tape,
                    save_bar,
                    &mut pass.u0_bar,
                    &mut pass.params_bar,
                );
            }
        });
        for pass in chunk.iter_mut() {
            pass.outcome?;
            for j in 0..pass.group.count {
                for (g, b) in result.iter_mut().zip(&pass.params_bar) {
                    *g += b.lane(j);
                }
                for (g, b) in u0_total.iter_mut().zip(&pass.u0_bar) {
                    *g += b.lane(j);
                }
            }
            pass.params_bar = Vec::new();
        }
    }
    if problem.u0_gradient() {
        for (g, &b) in result.iter_mut().skip(params).zip(&u0_total) {
            *g = b;
        }
    }
    if let Some(index) = result.iter().position(|g| !g.is_finite()) {
        return Err(Error::NonFiniteGradientEntry { index });
    }
    for (g, r) in grad.iter_mut().zip(&result) {
        *g = *r;
    }
    Ok(value)
}

/// The error the serial forward pass meets in the trajectories of a lane pass that failed:
/// the lowest diverging trajectory's, at its first diverging step (a lane pass stops at
/// the first step where any of its lanes diverges, which may be a later trajectory's).
fn serial_forward_error<S, M, N, const D: usize>(
    problem: &Problem<'_, M, D>,
    model: &S,
    noise: &N,
    group: LaneGroup,
    checkpoints: Checkpoints,
) -> Error
where
    S: SdeVjp<D> + Parameters,
    M: StepVjp<S, D>,
    N: NoiseSource,
{
    let solver = problem.solver();
    let times = problem.active_save_times();
    let last = match solver.grid.check_save_times(times) {
        Ok(last) => last,
        Err(e) => return e,
    };
    let mut scratch = std::vec![[0.0f32; D]; checkpoints.kept(last)];
    let u0 = problem.u0();
    let pass = AdjointPass {
        solver,
        sde: model,
        noise,
        group,
        u0: &u0,
        save_times: times,
        last,
        checkpoints,
    };
    for m in group.first..group.first + group.count {
        if let Err(e) = pass.one(m).forward(&mut scratch, |_, _| {}) {
            return e;
        }
    }
    // Cannot happen: each lane computes what its one-lane pass computes.
    Error::NonFinite {
        what: "a lane pass diverged where its trajectories alone do not: trajectory",
        index: group.first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Dense, Identity, InitScheme, Tanh};
    use crate::noise::{rng_from_seed, Brownian};
    use crate::sde::NeuralSde;
    use crate::solve::{Solver, Sosri, TimeGrid};
    use crate::train::MeanSquaredError;

    type Model = NeuralSde<(Dense<1, 6, Tanh>, Dense<6, 1, Identity>), Dense<1, 1, Identity>>;

    /// Trajectories solved again before their backward pass (checkpoints not kept) give
    /// the bits of kept checkpoints, for every checkpoint interval and thread count.
    #[test]
    fn recomputed_and_kept_checkpoints_give_the_same_bits() {
        let mut model = Model::default();
        crate::nn::init(&mut model, &mut rng_from_seed(3), InitScheme::GlorotUniform).unwrap();
        let times = [0.3, 0.7, 1.0];
        let data = [[1.1f32], [0.9], [0.8]];
        let loss = MeanSquaredError::new(&data).unwrap();
        let grid = TimeGrid::new(0.0, 1.0, 30).unwrap();
        let problem = Problem::new(Solver::new(Sosri, grid), [1.0], 11, &times)
            .unwrap()
            .with_u0_gradient(true);
        let noise = Brownian::new(8);
        let run = |checkpoints, threads, keep_bytes| {
            let mut grad = std::vec![0.0f32; Model::PARAMS + 1];
            let l = reverse_gradient_parallel(
                &problem,
                &model,
                &noise,
                &loss,
                checkpoints,
                &mut grad,
                threads,
                keep_bytes,
            )
            .unwrap();
            (
                l.to_bits(),
                grad.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
            )
        };
        let reference = run(Checkpoints::All, 1, KEEP_ALL_BYTES);
        assert!(reference.1.iter().any(|&g| g != 0));
        for checkpoints in [
            Checkpoints::All,
            Checkpoints::Sqrt,
            Checkpoints::Every(7),
            Checkpoints::Binomial(4),
        ] {
            for threads in [1, 2, 3] {
                assert_eq!(run(checkpoints, threads, 0), reference);
                assert_eq!(run(checkpoints, threads, KEEP_ALL_BYTES), reference);
            }
        }
    }
}
