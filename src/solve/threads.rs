//! The ensemble engine on several threads (feature `std`), for every integrator: blocks of
//! trajectories integrated in parallel into scratch rows, folded into the statistics on the
//! calling thread in trajectory order, so the results are bit-identical to one thread's.

use super::engine::{
    self, check_statistics_finite, finish_variance, welford_update, Runner, Tally,
};
use super::ensemble::EnsembleBuffers;
use crate::error::Error;
use crate::real::Real;

/// Bytes of saved states a threaded ensemble computes between two Welford passes.
const PARALLEL_BLOCK_BYTES: usize = 4 << 20;

/// Lanes per pass for threads of lane groups (`Threads<InLanes<PARALLEL_LANES>>`, see
/// [`Threads`](super::Threads)): [`WIDE_LANES`](crate::lanes::WIDE_LANES), 16 with AVX-512
/// (faster there: the README's benchmarks), else 8.
pub const PARALLEL_LANES: usize = crate::lanes::WIDE_LANES;

/// The ensemble of trajectories `0..trajectories` on `threads` threads (0: as many as
/// [`std::thread::available_parallelism`] reports), bit-identical to [`engine::ensemble`]
/// with the same runner, errors included, and written only on success.
///
/// Trajectories are computed in blocks: each thread integrates a contiguous run of whole
/// lane groups of the block into a scratch buffer of saved states (at most about 4 MiB),
/// then the calling thread folds them into the Welford statistics (and the paths) in
/// trajectory order. The first failing run holds the lowest failing trajectory, and its
/// error is the serial one. A copy of the caller's buffers is put back on error.
pub(crate) fn ensemble<T, R, const D: usize>(
    runner: &R,
    threads: usize,
    trajectories: usize,
    out: EnsembleBuffers<'_, T, D>,
) -> Result<R::Stats, Error>
where
    T: Real<Value = f32> + Send + Sync,
    R: Runner<T, D> + Sync,
{
    let width = runner.width().max(1);
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(trajectories.div_ceil(width));
    let saves = runner.saves();
    if threads <= 1 || saves == 0 {
        return engine::ensemble(runner, trajectories, out);
    }
    let EnsembleBuffers {
        mean,
        variance: var,
        mut paths,
    } = out;
    let state_bytes = core::mem::size_of::<[T; D]>().max(1);
    let block = (PARALLEL_BLOCK_BYTES / state_bytes / saves)
        .max(threads * width)
        .min(trajectories);
    let mut states = std::vec![[T::ZERO; D]; block * saves];
    let mut outcomes: std::vec::Vec<Result<R::Stats, Error>> =
        std::vec![Ok(R::Stats::default()); threads];
    // Written only on success: keep a copy of what the caller passed in to put back.
    let saved_mean = mean.to_vec();
    let saved_var = var.to_vec();
    let saved_paths = paths.as_deref().map(<[_]>::to_vec);
    mean.fill([T::ZERO; D]);
    var.fill([T::ZERO; D]);
    let mut stats = R::Stats::default();
    let mut start = 0;
    let mut failure = None;
    while start < trajectories && failure.is_none() {
        let len = block.min(trajectories - start);
        // Whole lane groups per thread, so that only the last group can be partial.
        let per = len.div_ceil(threads).div_ceil(width) * width;
        std::thread::scope(|scope| {
            // len <= block: the prefix exists (`get` keeps the lints' promise).
            let states = states.get_mut(..len * saves).unwrap_or(&mut []);
            let mut parts = states
                .chunks_mut(per * saves)
                .zip(outcomes.iter_mut())
                .enumerate();
            let own = parts.next();
            for (c, (rows, outcome)) in parts {
                let first = start + c * per;
                scope.spawn(move || *outcome = run_rows(runner, first, rows));
            }
            if let Some((_, (rows, outcome))) = own {
                *outcome = run_rows(runner, start, rows);
            }
        });
        // Fold in trajectory order.
        let parts = states.chunks(per * saves).zip(outcomes.iter());
        for (c, (rows, outcome)) in parts.take(len.div_ceil(per)).enumerate() {
            match outcome {
                Ok(part) => stats.add(*part),
                Err(e) => {
                    failure = Some(*e);
                    break;
                }
            }
            for (j, row) in rows.chunks(saves).enumerate() {
                let m = start + c * per + j;
                // Lengths are checked, `get_mut` keeps this panic-free.
                let rows = mean.iter_mut().zip(var.iter_mut());
                for (i, (u, (mean, var))) in row.iter().zip(rows).enumerate() {
                    welford_update(mean, var, u, (m + 1) as f32);
                    if let Some(slot) = paths.as_deref_mut().and_then(|p| p.get_mut(m * saves + i))
                    {
                        *slot = *u;
                    }
                }
            }
        }
        start += len;
    }
    if failure.is_none() {
        finish_variance(var, trajectories);
        failure = check_statistics_finite(mean, var).err();
    }
    if let Some(e) = failure {
        mean.copy_from_slice(&saved_mean);
        var.copy_from_slice(&saved_var);
        if let (Some(p), Some(saved)) = (paths, saved_paths) {
            p.copy_from_slice(&saved);
        }
        return Err(e);
    }
    Ok(stats)
}

/// Integrates the trajectories from `first` on, one per row of save times in `rows`,
/// stopping at the first error (the serial path's).
fn run_rows<T: Real, R: Runner<T, D>, const D: usize>(
    runner: &R,
    first: usize,
    rows: &mut [[T; D]],
) -> Result<R::Stats, Error> {
    let saves = runner.saves().max(1);
    let count = rows.len() / saves;
    runner.for_each_state(first..first + count, |m, i, u| {
        if let Some(slot) = rows.get_mut((m - first) * saves + i) {
            *slot = *u;
        }
    })
}
