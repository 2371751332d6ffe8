//! Checkpoint schedules: which states the forward pass keeps ([`Checkpoints`], the
//! binomial schedule) and the trajectories one pass runs ([`LaneGroup`]).

#[allow(
    clippy::wildcard_imports,
    reason = "the adjoint's shared imports and sibling pieces"
)]
use super::*;

/// How a trajectory's backward pass gets back the states of the forward pass.
///
/// The backward pass needs the state before every step, in reverse order. The forward pass
/// keeps some of them (checkpoints); the backward pass recomputes the others from an
/// earlier checkpoint, replaying the same noise. The choice trades memory,
/// [`states`](Checkpoints::states) rows of `D` floats per trajectory (plus the statistics
/// rows, see [`tape_len`](crate::grad::reverse::tape_len)), against time,
/// [`forward_steps`](Checkpoints::forward_steps) steps per trajectory for the forward pass
/// and the recomputation together (the backward pass itself costs about two steps' worth
/// per step on top). The gradient does not depend on the choice, bit for bit. For a solve
/// of `N` steps:
///
/// | | states | forward steps |
/// |---|---|---|
/// | `All` | `N + 1` | `N` |
/// | `Every(s)` | `ceil(N / s) + s` | `2N - ceil(N / s)` |
/// | `Sqrt` | about `2 sqrt(N)` | about `2N - sqrt(N)` |
/// | `Binomial(s)` | `s` | `N + r N - C(s + r + 1, r - 1) - d` (below) |
///
/// ```
/// use tinysde::solve::Checkpoints;
/// // 600 steps: every state, sqrt(N) checkpoints, or 8 snapshots placed binomially.
/// assert_eq!(Checkpoints::All.states(600), 601);
/// assert_eq!(Checkpoints::Sqrt.states(600), 49);
/// assert_eq!(Checkpoints::Binomial(8).states(600), 8);
/// assert_eq!(Checkpoints::All.forward_steps(600), 600);
/// assert_eq!(Checkpoints::Sqrt.forward_steps(600), 1176);
/// assert!(Checkpoints::Binomial(8).forward_steps(600) < 5 * 600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Checkpoints {
    /// Keep every state: `steps` states of memory, no recomputation.
    All,
    /// A checkpoint every `ceil(sqrt(steps))` steps: about `2 sqrt(steps)` states of
    /// memory, one recomputation pass.
    Sqrt,
    /// A checkpoint every given number of steps (`>= 1`; 0 is taken as 1), and one segment
    /// between two checkpoints recomputed at a time: one recomputation pass.
    Every(u32),
    /// Binomial checkpointing (Griewank's optimal schedule for a fixed number of snapshots,
    /// as in "revolve"): at most this many states are kept per trajectory (never more than
    /// [`MAX_BINOMIAL_SNAPSHOTS`] or `steps - 1`, which already keep every state).
    ///
    /// From the state at step `a` and `c` free snapshots, `n` steps are reversed by
    /// advancing to a split point `a + m`, storing that state, reversing the last `n - m`
    /// steps with `c - 1` snapshots, then the first `m` with `c` (the snapshot is free
    /// again). With `s` snapshots and `r` the smallest integer with
    /// `C(s + 1 + r, r) >= N`, the split points chosen make every step advance at most `r`
    /// times and the whole reversal advance `R = r N - C(s + r + 1, r - 1)` steps, the
    /// fewest any schedule with `s` snapshots can. The forward pass stores the schedule's
    /// first sweep of snapshots on its way, which saves the `d` steps up to the last of
    /// them: [`forward_steps`](Checkpoints::forward_steps) is `N + R - d`. Memory `O(s)`,
    /// time `O(r N)`, where `r` grows like `log N / log s`: for `N = 600`, `r = 7` with 4
    /// snapshots, 4 with 8, 3 with 16.
    Binomial(u32),
}

/// The most snapshots [`Checkpoints::Binomial`] uses: with 64 snapshots, two repetitions
/// already reverse 2,211 steps and three 50,116 (`C(65 + r, r)`), so more would save
/// little; and the schedule's stack of snapshot positions lives on the call stack, so it
/// is bounded.
pub const MAX_BINOMIAL_SNAPSHOTS: u32 = 64;

/// `C(c + r, r)`, saturating at `u64::MAX`.
pub(super) fn beta(c: u32, r: u32) -> u64 {
    let mut b: u64 = 1;
    for i in 1..=u64::from(r) {
        // C(c + i - 1, i - 1) (c + i) / i = C(c + i, i), exactly.
        let next = u128::from(b) * (u128::from(c) + u128::from(i)) / u128::from(i).max(1);
        match u64::try_from(next) {
            Ok(v) => b = v,
            Err(_) => return u64::MAX,
        }
    }
    b
}

/// The smallest `r` with `C(c + 1 + r, r) >= n`: the repetition number of reversing `n`
/// steps with `c` free snapshots.
pub(super) fn repetitions(n: u32, c: u32) -> u32 {
    let (mut r, mut b) = (0u32, 1u64);
    while b < u64::from(n) {
        r += 1;
        // C(c + 1 + r - 1, r - 1) (c + 1 + r) / r = C(c + 1 + r, r).
        let next = u128::from(b) * (u128::from(c) + 1 + u128::from(r)) / u128::from(r).max(1);
        b = u64::try_from(next).unwrap_or(u64::MAX);
    }
    r
}

/// The number of steps the optimal schedule advances to reverse `n` steps with `c` free
/// snapshots: `r n - C(c + r + 1, r - 1)` (the first sweep included).
pub(super) fn binomial_advances(n: u32, c: u32) -> u64 {
    let r = repetitions(n, c);
    if r == 0 {
        return 0;
    }
    (u64::from(r) * u64::from(n)).saturating_sub(beta(c + 2, r - 1))
}

/// Where to split `n >= 2` steps with `c >= 1` free snapshots: the state `m` steps on is
/// stored. Any `m` with the first `m` steps reversible with `c` snapshots in `r - 1`
/// repetitions and the other `n - m` with `c - 1` in `r` is optimal; the largest is taken,
/// so the first sweep (stored by the forward pass) reaches as far as it can.
pub(super) fn binomial_split(n: u32, c: u32) -> u32 {
    let r = repetitions(n, c).max(1);
    let head = beta(c + 1, r - 1).min(u64::from(n).saturating_sub(beta(c, r - 1)));
    // head <= n - 1 since C(c + r - 1, r - 1) >= 1; min and max only keep this total.
    u32::try_from(head)
        .unwrap_or(1)
        .min(n.saturating_sub(1))
        .max(1)
}

/// The next snapshot of the binomial schedule from the state at `a`, with `end - a` steps
/// to reverse and `free` snapshots: `None` when the rest is reversed from `a` itself.
pub(super) fn next_snapshot(a: u32, end: u32, free: u32) -> Option<u32> {
    let n = end.saturating_sub(a);
    (n >= 2 && free >= 1).then(|| a.saturating_add(binomial_split(n, free)))
}

impl Checkpoints {
    /// The checkpoint interval for a solve of `steps` steps (`>= 1`). Binomial snapshots
    /// are not evenly spaced; for them this is 1.
    ///
    /// ```
    /// use tinysde::solve::Checkpoints;
    /// assert_eq!(Checkpoints::All.interval(100), 1);
    /// assert_eq!(Checkpoints::Every(7).interval(100), 7);
    /// assert_eq!(Checkpoints::Sqrt.interval(100), 10);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn interval(self, steps: u32) -> u32 {
        match self {
            Checkpoints::All | Checkpoints::Binomial(_) => 1,
            Checkpoints::Sqrt => {
                let mut s = math::sqrt(steps as f32) as u32;
                while s.saturating_mul(s) < steps {
                    s += 1;
                }
                s.max(1)
            }
            Checkpoints::Every(n) => n.max(1),
        }
    }

    /// The number of snapshots [`Checkpoints::Binomial`] uses for `steps` steps.
    pub(super) fn snapshots(s: u32, steps: u32) -> u32 {
        s.min(MAX_BINOMIAL_SNAPSHOTS).min(steps.saturating_sub(1))
    }

    /// The rows the forward pass keeps for a solve of `steps` steps.
    pub(crate) fn kept(self, steps: u32) -> usize {
        match self {
            Checkpoints::Binomial(s) => Self::snapshots(s, steps) as usize,
            _ => steps.div_ceil(self.interval(steps)) as usize,
        }
    }

    /// The rows of scratch the backward pass needs besides the kept ones (one segment
    /// between two checkpoints; none for binomial snapshots, which are reused in place).
    pub(crate) fn scratch(self, steps: u32) -> usize {
        match self {
            Checkpoints::Binomial(_) => 0,
            _ => self.interval(steps).min(steps.max(1)) as usize,
        }
    }

    /// The number of states (rows of `D` floats) a trajectory's backward pass needs for a
    /// solve of `steps` steps: checkpoints plus one segment, or the binomial snapshots.
    ///
    /// ```
    /// use tinysde::solve::Checkpoints;
    /// assert_eq!(Checkpoints::All.states(100), 101);
    /// assert_eq!(Checkpoints::Binomial(4).states(100), 4);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn states(self, steps: u32) -> usize {
        self.kept(steps).saturating_add(self.scratch(steps))
    }

    /// The number of steps one trajectory's forward pass and the backward pass's
    /// recomputation take together, for a solve of `steps` steps (see the table above; the
    /// tests count them). With every trajectory's checkpoints kept by the statistics pass
    /// ([`tape_len_keep_all`](crate::grad::reverse::tape_len_keep_all)) the forward pass is
    /// that pass, and the per-trajectory cost is `forward_steps - steps`.
    ///
    /// ```
    /// use tinysde::solve::Checkpoints;
    /// assert_eq!(Checkpoints::All.forward_steps(100), 100); // no recomputation
    /// assert!(Checkpoints::Binomial(4).forward_steps(100) > 100);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn forward_steps(self, steps: u32) -> u64 {
        let n = u64::from(steps);
        match self {
            Checkpoints::Binomial(s) => {
                let s = Self::snapshots(s, steps);
                let (mut a, mut free) = (0, s);
                while let Some(next) = next_snapshot(a, steps, free) {
                    a = next;
                    free -= 1;
                }
                n + binomial_advances(steps, s).saturating_sub(u64::from(a))
            }
            _ => (2 * n).saturating_sub(self.kept(steps) as u64),
        }
    }
}

/// A step index past the plan of checked save times: cannot happen for inputs the callers
/// checked; an error rather than a panic if it ever does.
pub(crate) fn off_plan(_k: u32) -> Error {
    Error::OutOfRange {
        what: "step index past the last save time",
    }
}

/// A snapshot row or position the binomial schedule does not have: cannot happen for
/// buffers sized by [`Checkpoints::states`]; an error rather than a panic if it ever does.
pub(super) fn off_schedule() -> Error {
    Error::OutOfRange {
        what: "binomial checkpoint schedule",
    }
}

/// Which row, if any, the forward pass stores the state before step `k` in.
#[derive(Clone, Copy)]
pub(super) enum Keeper {
    /// Every `interval`-th state, in row `k / interval`.
    Interval(u32),
    /// The binomial schedule's first sweep: the next snapshot's position and row, the
    /// snapshots left, and the last step index.
    Sweep {
        next: Option<u32>,
        row: usize,
        free: u32,
        last: u32,
    },
}

impl Keeper {
    pub(super) fn new(checkpoints: Checkpoints, last: u32) -> Self {
        match checkpoints {
            Checkpoints::Binomial(s) => {
                let free = Checkpoints::snapshots(s, last);
                Keeper::Sweep {
                    next: next_snapshot(0, last, free),
                    row: 0,
                    free,
                    last,
                }
            }
            c => Keeper::Interval(c.interval(last)),
        }
    }

    #[inline]
    pub(super) fn row(&mut self, k: u32) -> Option<usize> {
        match self {
            Keeper::Interval(interval) => {
                // `interval >= 1` by construction; `max` lets the compiler see it too.
                let interval = (*interval).max(1);
                (k % interval == 0).then_some((k / interval) as usize)
            }
            Keeper::Sweep {
                next,
                row,
                free,
                last,
            } => {
                if *next != Some(k) {
                    return None;
                }
                let this = *row;
                *row += 1;
                *free = free.saturating_sub(1);
                *next = next_snapshot(k, *last, *free);
                Some(this)
            }
        }
    }
}

/// The trajectories one pass of an adjoint runs, one per lane of its scalar:
/// `first .. first + count` (lanes beyond `count` repeat the last one, as in the ensembles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaneGroup {
    /// The trajectory in lane 0.
    pub(crate) first: usize,
    /// How many lanes hold trajectories of their own (at least 1).
    pub(crate) count: usize,
}

impl LaneGroup {
    /// One trajectory, in an `f32` pass.
    pub(crate) const fn one(trajectory: usize) -> Self {
        Self {
            first: trajectory,
            count: 1,
        }
    }
}
