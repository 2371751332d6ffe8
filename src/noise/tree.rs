//! The virtual Brownian tree behind adaptive stepping (see [`BrownianTree`]).

use super::{channel_bits, normal_from_bits, splitmix64, Increment, SQRT_3};
use crate::error::Error;
use crate::math;

/// The deepest tree [`BrownianTree`] builds: `2^24` grid intervals. Grid indices up to
/// `2^24` are exact in `f32`, so grid times are computed with one rounding.
pub const MAX_TREE_DEPTH: u32 = 24;

/// Reproducible Brownian motion on `[t0, t1]`, queried between any two points of the grid
/// `t0 + j (t1 - t0) / 2^depth`, `j = 0..=2^depth`.
///
/// The increment `dW` and the second increment `dZ` (see [`Increment`]) between grid points
/// `j0 < j1` are a pure function of `(seed, trajectory, j0, j1)`, and consistent: the
/// increments over `[j0, j1]` and `[j1, j2]` sum to the one over `[j0, j2]`, with the time
/// integrals composing exactly (up to `f32` rounding). Channel `c` of a `C`-channel query is
/// the same whatever `C`, and channels are independent.
///
/// Adaptive solvers try a step, may reject it, and try a shorter one from the same point:
/// they need the noise over intervals chosen at run time, and a rejected attempt must not
/// change the path (else rejection biases the statistics). [`BrownianTree`] makes the whole
/// path a pure function of `(seed, trajectory)`: the span `[t0, t1]` is bisected `depth`
/// times, and the Brownian increment `w` and space-time Lévy area `H` of every dyadic
/// interval are drawn from their exact conditional law given the parent interval's, with
/// random bits keyed by the interval's position in the tree. A query walks from the root to
/// the two end points: `O(depth)` work and `O(1)` memory, no stack, no heap.
///
/// ## The bisection law
///
/// For an interval of length `L` let `w = W(b) - W(a)` and
/// `H = (1/L) int_a^b (W(s) - W(a)) ds - w / 2`; `w ~ N(0, L)` and `H ~ N(0, L / 12)` are
/// independent, and `int_a^b (W - W(a)) ds = L (H + w / 2)` is the iterated integral
/// `I_(1,0)`. The two halves, of length `l = L / 2`, carry independent pairs with the same
/// laws, tied to the parent by `w = w1 + w2` and `H = (H1 + H2) / 2 + (w1 - w2) / 4`.
/// Conditioning the four independent Gaussians on these two linear constraints gives, with
/// `Z1, Z2` independent standard normals,
///
/// ```text
/// w1 = w / 2 + 3 H / 2 + sqrt(l / 8) Z1             w2 = w - w1
/// H1 = H / 4 - sqrt(l / 32) Z1 + sqrt(l / 24) Z2    H2 = H / 4 - sqrt(l / 32) Z1 - sqrt(l / 24) Z2
/// ```
///
/// (each child then has exactly `Var w_i = l` and `Var H_i = l / 12`). Every grid point is
/// reached by bisection alone, so the values at grid points follow the law of Brownian
/// motion exactly; nothing is interpolated.
///
/// ## Choosing the depth
///
/// The grid spacing is the smallest step an adaptive solve can take and the resolution of
/// its save times (each is reached at its nearest grid point). Depth 16 to 20 suits most
/// spans; deeper trees cost little more per query (adaptive solves end their steps on
/// coarse dyadic points and reuse the walk to the current point), but keep the grid index
/// exact in `f32` (at most [`MAX_TREE_DEPTH`]).
///
/// ```
/// use tinysde::noise::BrownianTree;
/// let tree = BrownianTree::new(7, 0.0, 1.0, 10)?;
/// let whole = tree.increment::<1>(0, 0, 1024)?;
/// let (a, b) = (tree.increment::<1>(0, 0, 300)?, tree.increment::<1>(0, 300, 1024)?);
/// assert!((whole.dw[0] - (a.dw[0] + b.dw[0])).abs() < 1e-5);
/// // Asking again gives the same numbers: rejected steps cannot bias the path.
/// assert_eq!(tree.increment::<1>(0, 0, 300)?, a);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BrownianTree {
    seed: u64,
    /// `splitmix64(seed)`, computed once.
    key: u64,
    t0: f32,
    t1: f32,
    depth: u32,
    /// Grid spacing `(t1 - t0) / 2^depth`.
    spacing: f32,
    /// `sqrt` of the length of a node at each level (computed once: a query splits up to
    /// `2 depth` nodes, and three square roots per split would dominate its cost).
    sqrt_len: [f32; MAX_TREE_DEPTH as usize + 1],
}

// sqrt(1/8), sqrt(1/12), sqrt(1/24), sqrt(1/32) rounded to f32.
const SQRT_1_8: f32 = 0.353_553_38;
const SQRT_1_12: f32 = 0.288_675_13;
const SQRT_1_24: f32 = 0.204_124_15;
const SQRT_1_32: f32 = 0.176_776_69;

/// The increment `dW` and the integral `int (W - W(start)) ds` over one interval.
#[derive(Clone, Copy, Debug)]
struct Piece<const C: usize> {
    dw: [f32; C],
    integral: [f32; C],
}

impl<const C: usize> Piece<C> {
    const EMPTY: Self = Self {
        dw: [0.0; C],
        integral: [0.0; C],
    };

    /// The piece of a tree node of length `len` from its `(w, H)`.
    fn of_node(node: &Node<C>, len: f32) -> Self {
        let mut piece = Self::EMPTY;
        for c in 0..C {
            piece.dw[c] = node.w[c];
            piece.integral[c] = len * (node.h[c] + node.w[c] * 0.5);
        }
        piece
    }

    /// `self` (of length `len`) followed by `next`: the integral of the second part
    /// gains `W(end of self) - W(start)` over its length `next_len`.
    fn then(&self, next: &Self, next_len: f32) -> Self {
        let mut out = *self;
        for c in 0..C {
            out.integral[c] += next.integral[c] + next_len * self.dw[c];
            out.dw[c] += next.dw[c];
        }
        out
    }
}

/// The splits of the tree nodes around one grid point of one trajectory: the ancestors of
/// the grid interval starting there, from the root down to the first one that starts there.
/// Kept by adaptive solves between queries that share an end point.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TreeCache<const C: usize> {
    trajectory: usize,
    /// The grid point; `u32::MAX` for none.
    point: u32,
    /// `splits[level]` for `level < levels` is the split of the ancestor at `level`.
    levels: usize,
    /// The root of the trajectory's tree (valid with the rest).
    root: Node<C>,
    splits: [(Node<C>, Node<C>); MAX_TREE_DEPTH as usize],
}

impl<const C: usize> TreeCache<C> {
    /// A cache holding nothing.
    pub(crate) const EMPTY: Self = Self {
        trajectory: 0,
        point: u32::MAX,
        levels: 0,
        root: Node::EMPTY,
        splits: [(Node::EMPTY, Node::EMPTY); MAX_TREE_DEPTH as usize],
    };
}

/// One query's split bookkeeping.
struct Walk<'c, const C: usize> {
    traj_key: u64,
    /// The query's end point, whose ancestors' splits are recorded.
    to: u32,
    reuse: Option<&'c TreeCache<C>>,
    record: Option<&'c mut TreeCache<C>>,
}

/// A tree node: grid interval `[lo, lo + size)` at `level`, with its `w` and `H` per channel.
#[derive(Clone, Copy, Debug)]
struct Node<const C: usize> {
    level: u32,
    lo: u32,
    size: u32,
    w: [f32; C],
    h: [f32; C],
}

impl<const C: usize> Node<C> {
    const EMPTY: Self = Self {
        level: 0,
        lo: 0,
        size: 0,
        w: [0.0; C],
        h: [0.0; C],
    };
}

impl BrownianTree {
    /// A tree on `[t0, t1]` bisected `depth` times (`1..=MAX_TREE_DEPTH`), for every
    /// trajectory, identified by `seed`. Errors for a bad span or depth.
    ///
    /// ```
    /// use tinysde::noise::BrownianTree;
    /// let tree = BrownianTree::new(9, 0.0, 2.0, 3)?; // 8 intervals of 0.25
    /// assert_eq!((tree.intervals(), tree.spacing()), (8, 0.25));
    /// assert!(BrownianTree::new(9, 1.0, 1.0, 3).is_err()); // an empty span
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(seed: u64, t0: f32, t1: f32, depth: u32) -> Result<Self, Error> {
        if !(t0.is_finite() && t1.is_finite() && t1 > t0 && (t1 - t0).is_finite()) {
            return Err(Error::TimeSpan { t0, t1 });
        }
        if depth == 0 || depth > MAX_TREE_DEPTH {
            return Err(Error::OutOfRange {
                what: "Brownian tree depth must be in 1..=24",
            });
        }
        // Exact: scaling by a power of two (the span is far above the subnormal range for
        // any span whose grid times are distinct in f32).
        let spacing = (t1 - t0) / (1u32 << depth) as f32;
        if spacing == 0.0 {
            return Err(Error::OutOfRange {
                what: "Brownian tree spacing underflows",
            });
        }
        let mut tree = Self {
            seed,
            key: splitmix64(seed),
            t0,
            t1,
            depth,
            spacing,
            sqrt_len: [0.0; MAX_TREE_DEPTH as usize + 1],
        };
        for level in 0..=depth {
            tree.sqrt_len[level as usize] = math::sqrt(tree.len(1 << (depth - level)));
        }
        Ok(tree)
    }

    /// The shallowest tree on `[t0, t1]` whose grid spacing is at most `resolution`:
    /// `depth = ceil(log2((t1 - t0) / resolution))`, at least 1. Errors if that exceeds
    /// [`MAX_TREE_DEPTH`] or `resolution` is not positive and finite.
    ///
    /// ```
    /// let tree = tinysde::noise::BrownianTree::with_resolution(1, 0.0, 1.0, 1e-3)?;
    /// assert_eq!(tree.depth(), 10); // 2^-10 < 1e-3 < 2^-9
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_resolution(seed: u64, t0: f32, t1: f32, resolution: f32) -> Result<Self, Error> {
        if !(resolution > 0.0 && resolution.is_finite()) {
            return Err(Error::OutOfRange {
                what: "Brownian tree resolution must be positive and finite",
            });
        }
        for depth in 1..=MAX_TREE_DEPTH {
            let tree = Self::new(seed, t0, t1, depth)?;
            if tree.spacing <= resolution {
                return Ok(tree);
            }
        }
        Err(Error::OutOfRange {
            what: "Brownian tree resolution needs more than 2^24 grid intervals",
        })
    }

    /// The seed.
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!(tree.seed(), 9);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub const fn seed(&self) -> u64 {
        self.seed
    }
    /// Start of the span.
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!((tree.t0(), tree.t1()), (0.0, 2.0));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub const fn t0(&self) -> f32 {
        self.t0
    }
    /// End of the span.
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!(tree.t1(), 2.0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub const fn t1(&self) -> f32 {
        self.t1
    }
    /// Number of bisections from the span to a grid interval.
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!(tree.depth(), 3);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub const fn depth(&self) -> u32 {
        self.depth
    }
    /// Number of grid intervals, `2^depth`.
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!(tree.intervals(), 8);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub const fn intervals(&self) -> u32 {
        1 << self.depth
    }
    /// Grid spacing, `(t1 - t0) / 2^depth`.
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!(tree.spacing(), 0.25);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub const fn spacing(&self) -> f32 {
        self.spacing
    }

    /// Time of grid point `index`: `t0 + index * spacing` (exactly `t1` at the last point).
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!((tree.time(3), tree.time(8)), (0.75, 2.0));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[inline]
    pub fn time(&self, index: u32) -> f32 {
        if index >= self.intervals() {
            self.t1
        } else {
            self.t0 + index as f32 * self.spacing
        }
    }

    /// The grid point nearest to `t`, if `t` is finite and in `[t0, t1]`.
    ///
    /// ```
    /// # let tree = tinysde::noise::BrownianTree::new(9, 0.0, 2.0, 3)?;
    /// assert_eq!(tree.index_of(0.8), Some(3));
    /// assert_eq!(tree.index_of(2.5), None);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn index_of(&self, t: f32) -> Option<u32> {
        if !(t.is_finite() && t >= self.t0 && t <= self.t1) {
            return None;
        }
        let x = (t - self.t0) / self.spacing + 0.5;
        Some((x as u32).min(self.intervals()))
    }

    /// The increments of trajectory `trajectory` between grid points `from < to` (at most
    /// `2^depth`): `dW = W(to) - W(from)` and `dZ`, with `h = (to - from) * spacing`, such
    /// that `h (dW + dZ / sqrt 3) / 2` is the time integral of `W - W(from)` over the
    /// interval (as [`Increment`] defines it). Errors for `from >= to` or `to` past the end.
    ///
    /// The walk visits at most `2 depth` tree nodes; every quantity it accumulates is
    /// bounded by the queried interval, so short intervals keep their relative precision.
    pub fn increment<const C: usize>(
        &self,
        trajectory: usize,
        from: u32,
        to: u32,
    ) -> Result<Increment<C>, Error> {
        self.query(trajectory, from, to, None, None)
    }

    /// [`BrownianTree::increment`], reusing the splits `cache` remembered for grid point
    /// `from` (if it holds them) and remembering in `record` the splits around `to`: an
    /// adaptive solve passes the record of an accepted step as the cache of the next step,
    /// and keeps the cache across a rejection. The numbers are exactly those of
    /// [`BrownianTree::increment`]; only the work is smaller (about half).
    pub(crate) fn increment_cached<const C: usize>(
        &self,
        trajectory: usize,
        from: u32,
        to: u32,
        cache: &TreeCache<C>,
        record: &mut TreeCache<C>,
    ) -> Result<Increment<C>, Error> {
        self.query(trajectory, from, to, Some(cache), Some(record))
    }

    fn query<const C: usize>(
        &self,
        trajectory: usize,
        from: u32,
        to: u32,
        cache: Option<&TreeCache<C>>,
        record: Option<&mut TreeCache<C>>,
    ) -> Result<Increment<C>, Error> {
        if from >= to || to > self.intervals() {
            return Err(Error::OutOfRange {
                what: "Brownian tree query must have 0 <= from < to <= 2^depth",
            });
        }
        let traj_key = splitmix64(self.key ^ trajectory as u64);
        let mut walk = Walk {
            traj_key,
            to,
            reuse: cache.filter(|c| c.trajectory == trajectory && c.point == from),
            record,
        };
        if let Some(r) = walk.record.as_deref_mut() {
            // Only the header: the splits are overwritten level by level as they are met.
            r.trajectory = trajectory;
            // Past the last grid point there is nothing to step from.
            r.point = if to < self.intervals() { to } else { u32::MAX };
            r.levels = 0;
        }
        let mut node = match walk.reuse {
            Some(c) => c.root,
            None => self.root::<C>(traj_key),
        };
        if let Some(r) = walk.record.as_deref_mut() {
            r.root = node;
        }
        let piece = loop {
            if node.lo == from && node.lo + node.size == to {
                break Piece::of_node(&node, self.len(node.size));
            }
            let (left, right) = self.split_in(&mut walk, &node);
            let mid = right.lo;
            if to <= mid {
                node = left;
            } else if from >= mid {
                node = right;
            } else {
                let suffix = self.suffix(&mut walk, left, from);
                let prefix = self.prefix(&mut walk, right, to);
                break suffix.then(&prefix, self.len(to - mid));
            }
        };
        let h = self.len(to - from);
        let mut inc = Increment {
            dw: piece.dw,
            dz: [0.0; C],
        };
        for c in 0..C {
            // H = I / h - dW / 2 and dZ = 2 sqrt(3) H.
            inc.dz[c] = SQRT_3 * (2.0 * piece.integral[c] / h - piece.dw[c]);
        }
        Ok(inc)
    }

    /// The split of `node`: from the cache if it holds it, else drawn; recorded if `node`
    /// is an ancestor of the query's end point (contains it, not at its start).
    fn split_in<const C: usize>(
        &self,
        walk: &mut Walk<'_, C>,
        node: &Node<C>,
    ) -> (Node<C>, Node<C>) {
        let level = node.level as usize;
        let cached = walk
            .reuse
            .and_then(|c| c.splits.get(level).filter(|_| level < c.levels))
            .filter(|pair| pair.0.lo == node.lo && pair.0.level == node.level + 1);
        let pair = match cached {
            Some(pair) => *pair,
            None => self.split(walk.traj_key, node),
        };
        if node.lo < walk.to && walk.to < node.lo + node.size {
            if let Some(r) = walk.record.as_deref_mut() {
                if let Some(slot) = r.splits.get_mut(level) {
                    *slot = pair;
                    r.levels = r.levels.max(level + 1);
                }
            }
        }
        pair
    }

    /// Length in time of `count` grid intervals.
    #[inline]
    fn len(&self, count: u32) -> f32 {
        count as f32 * self.spacing
    }

    /// The root: the whole span, `w ~ N(0, T)`, `H ~ N(0, T / 12)`.
    fn root<const C: usize>(&self, traj_key: u64) -> Node<C> {
        let sd_w = self.sqrt_len[0];
        let sd_h = sd_w * SQRT_1_12;
        let key = splitmix64(traj_key);
        let mut node = Node {
            level: 0,
            lo: 0,
            size: self.intervals(),
            w: [0.0; C],
            h: [0.0; C],
        };
        for c in 0..C {
            let bits = channel_bits(key, c);
            node.w[c] = normal_from_bits(bits as u32) * sd_w;
            node.h[c] = normal_from_bits((bits >> 32) as u32) * sd_h;
        }
        node
    }

    /// The two halves of `node`, drawn from their law given the node's `(w, H)`, with bits
    /// keyed by the node's heap number `2^level + lo / size` (unique per node).
    fn split<const C: usize>(&self, traj_key: u64, node: &Node<C>) -> (Node<C>, Node<C>) {
        let half = node.size / 2;
        // Levels never exceed `depth <= MAX_TREE_DEPTH`: a node of size 1 is never split.
        let sqrt_l = self.sqrt_len[(node.level as usize + 1).min(MAX_TREE_DEPTH as usize)];
        let sd1 = sqrt_l * SQRT_1_8;
        let sd_shared = sqrt_l * SQRT_1_32;
        let sd_own = sqrt_l * SQRT_1_24;
        // Sizes are powers of two: the index at the level is a shift of `lo`.
        let number = (1u64 << node.level) + (node.lo >> (self.depth - node.level)) as u64;
        let key = splitmix64(traj_key ^ number.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut left = Node {
            level: node.level + 1,
            lo: node.lo,
            size: half,
            w: [0.0; C],
            h: [0.0; C],
        };
        let mut right = Node {
            lo: node.lo + half,
            ..left
        };
        for c in 0..C {
            let bits = channel_bits(key, c);
            let z1 = normal_from_bits(bits as u32);
            let z2 = normal_from_bits((bits >> 32) as u32);
            let (w, h) = (node.w[c], node.h[c]);
            left.w[c] = w * 0.5 + h * 1.5 + sd1 * z1;
            right.w[c] = w - left.w[c];
            let common = h * 0.25 - sd_shared * z1;
            left.h[c] = common + sd_own * z2;
            right.h[c] = common - sd_own * z2;
        }
        (left, right)
    }

    /// The piece from grid point `from` to the end of `node` (`node.lo <= from < end`).
    fn suffix<const C: usize>(
        &self,
        walk: &mut Walk<'_, C>,
        mut node: Node<C>,
        from: u32,
    ) -> Piece<C> {
        // Built right to left: `acc` covers [start of the part not yet covered's end, end).
        let mut acc = Piece::EMPTY;
        let mut acc_len = 0u32;
        loop {
            if node.lo == from {
                let head = Piece::of_node(&node, self.len(node.size));
                return head.then(&acc, self.len(acc_len));
            }
            let (left, right) = self.split_in(walk, &node);
            if from >= right.lo {
                node = right;
            } else {
                let head = Piece::of_node(&right, self.len(right.size));
                acc = head.then(&acc, self.len(acc_len));
                acc_len += right.size;
                node = left;
            }
        }
    }

    /// The piece from the start of `node` to grid point `to` (`start < to <= end`).
    fn prefix<const C: usize>(
        &self,
        walk: &mut Walk<'_, C>,
        mut node: Node<C>,
        to: u32,
    ) -> Piece<C> {
        let mut acc = Piece::EMPTY;
        loop {
            if node.lo + node.size == to {
                return acc.then(
                    &Piece::of_node(&node, self.len(node.size)),
                    self.len(node.size),
                );
            }
            let (left, right) = self.split_in(walk, &node);
            if to <= right.lo {
                node = left;
            } else {
                acc = acc.then(
                    &Piece::of_node(&left, self.len(left.size)),
                    self.len(left.size),
                );
                node = right;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_queries_give_exactly_the_uncached_numbers() {
        // Steps of varying length, each tried up to three times (rejections) from the same
        // point, as an adaptive solve does; the cache must never change a bit.
        let tree = BrownianTree::new(99, -1.0, 2.0, 14).unwrap();
        let end = tree.intervals();
        for trajectory in 0..8 {
            let mut start = TreeCache::<2>::EMPTY;
            let mut candidate = TreeCache::<2>::EMPTY;
            let mut j = 0u32;
            let mut k = 0u32;
            while j < end {
                let mut accepted_to = j;
                for attempt in 0..3u32 {
                    k = k
                        .wrapping_mul(1_103_515_245)
                        .wrapping_add(12_345 + trajectory as u32);
                    let n = 1 + (k >> 8) % (4096 >> attempt);
                    let to = (j + n).min(end);
                    let cached = tree
                        .increment_cached::<2>(trajectory, j, to, &start, &mut candidate)
                        .unwrap();
                    assert_eq!(cached, tree.increment::<2>(trajectory, j, to).unwrap());
                    assert_eq!(candidate.point, if to < end { to } else { u32::MAX });
                    accepted_to = to;
                    if (k >> 4) % 3 == 0 {
                        break; // accepted
                    }
                }
                core::mem::swap(&mut start, &mut candidate);
                j = accepted_to;
            }
        }
    }
}
