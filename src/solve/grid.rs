//! Time grids and the step plan that drives every solver loop.
//!
//! A [`TimeGrid`] says how the span `t0..t1` is cut into steps; a [`StepPlan`] walks it for
//! one list of save times, yielding the steps `(k, t, h)` and the moments to save, in order.
//! Every loop over steps (plain solves, ensembles, gradients) runs on a plan, so they all
//! see the same steps.
//!
//! The spacings are described on [`TimeGrid`].

use crate::error::Error;
use crate::math;

/// How a [`TimeGrid`] places its steps.
///
/// ```
/// use tinysde::solve::{Spacing, TimeGrid};
/// assert_eq!(TimeGrid::new(0.0, 1.0, 10)?.spacing(), Spacing::Uniform);
/// assert_eq!(TimeGrid::through(0.0, 1.0, 10)?.spacing(), Spacing::Through);
/// assert_eq!(TimeGrid::with_max_step(0.0, 1.0, 0.1)?.spacing(), Spacing::MaxStep);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Spacing {
    /// Equal steps `h`; save times must be grid points.
    Uniform,
    /// About [`TimeGrid::steps`] steps in all, through any save times.
    Through,
    /// Steps of at most [`TimeGrid::h`], through any save times.
    MaxStep,
}

/// How a span is cut into steps: uniformly, or through any save times with a step budget
/// or a maximum step.
///
/// Three spacings:
///
/// - **Uniform** ([`TimeGrid::new`], [`TimeGrid::with_step`]): the points `t0 + k h`. Save
///   times must be grid points; they are matched to their integer index `k` with a tolerance
///   of a few units in the last place (ulps) of the span's magnitude, so `0.3` is a point
///   of `TimeGrid::new(0.0, 1.0, 100_000)` even though `30_000 * 1e-5` rounds differently.
/// - **Through the save times, with a step budget** ([`TimeGrid::through`]): about `steps`
///   steps in all; the save times become segment ends. Save time `s` ends at step index
///   `round((s - t0) / H)` with `H = (t1 - t0) / steps` (at least one step after the
///   previous save), and each segment between consecutive required times is cut into equal
///   steps. The DiffEqFlux spiral's 30 save times on `[0, 1]` take exactly 100 steps.
/// - **Through the save times, with a maximum step** ([`TimeGrid::with_max_step`]): each
///   segment between consecutive required times gets the fewest equal steps no longer than
///   `h_max` (up to a relative `1e-4`, so spans that are whole multiples of `h_max` up to
///   rounding are not given one extra step). An uneven series needs no tiny steps: a short
///   gap gets one short step, a long one several.
///
/// On the two "through" spacings a segment whose both ends are points of the nominal
/// uniform grid `t0 + k H` is stepped exactly like the uniform grid (same times, same `h`),
/// so save times that happen to be grid points give the uniform grid's bits.
///
/// Step indices `k` count steps from `t0` over the whole plan (integers, never accumulated
/// floats), and the noise of step `k` is drawn for `(trajectory, k)` with that step's own
/// `h`: the noise stays a pure function of its indices on every spacing, and host and
/// microcontroller walk the same plan.
///
/// ```
/// use tinysde::solve::{PlanEvent, TimeGrid};
/// let times: Vec<f32> = (0..30).map(|i| i as f32 / 29.0).collect();
/// assert!(TimeGrid::new(0.0, 1.0, 100)?.check_save_times(&times).is_err()); // not grid points
/// let grid = TimeGrid::through(0.0, 1.0, 100)?;
/// assert_eq!(grid.check_save_times(&times)?, 100); // the last save is at step 100
/// let steps = grid.plan(&times)?.filter(|e| matches!(e, PlanEvent::Step(_))).count();
/// assert_eq!(steps, 100);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimeGrid {
    t0: f32,
    t1: f32,
    steps: u32,
    h: f32,
    /// `sqrt(h)`: the noise scale of every step of the nominal grid, computed once.
    sqrt_h: f32,
    spacing: Spacing,
}

/// Relative slack (in units of the step) before a segment gets one more step.
const STEP_SLACK: f32 = 1e-4;

/// Units in the last place of the span's magnitude within which a time is a grid point:
/// `t0 + k h` is off by at most about 7 ulps (rounding of `t1 - t0`, of the division by
/// `steps`, of `k h` and of the sum), and a caller's own arithmetic adds a few more.
const SNAP_ULPS: f32 = 16.0;

impl TimeGrid {
    /// `steps` equal steps from `t0` to `t1`. Errors if the span is empty, reversed or not
    /// finite, or `steps` is zero.
    ///
    /// ```
    /// use tinysde::solve::TimeGrid;
    /// let grid = TimeGrid::new(-3.0, 3.0, 60)?;
    /// assert_eq!((grid.t0(), grid.t1(), grid.steps()), (-3.0, 3.0, 60));
    /// assert!(TimeGrid::new(1.0, 0.0, 10).is_err() && TimeGrid::new(0.0, 1.0, 0).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(t0: f32, t1: f32, steps: u32) -> Result<Self, Error> {
        Self::build(t0, t1, steps, Spacing::Uniform)
    }

    /// Steps of size (about) `h` from `t0` to `t1`: the number of steps is `(t1 - t0) / h`
    /// rounded to the nearest integer, which must put the last point within `h / 1000` of
    /// `t1`. Errors for a non-positive or non-finite `h`.
    ///
    /// ```
    /// use tinysde::solve::TimeGrid;
    /// assert_eq!(TimeGrid::with_step(0.0, 2.0, 0.25)?.steps(), 8);
    /// assert!(TimeGrid::with_step(0.0, 1.0, 0.3).is_err()); // 3.33 steps
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_step(t0: f32, t1: f32, h: f32) -> Result<Self, Error> {
        check_step(h)?;
        check_span(t0, t1)?;
        let n = ((t1 - t0) / h + 0.5) as u64; // saturating cast; checked below
        if n == 0 || n > u32::MAX as u64 {
            return Err(too_many_steps());
        }
        let n = n as u32;
        let grid = Self::new(t0, t1, n)?;
        if (t0 + n as f32 * h - t1).abs() > h * 1e-3 {
            return Err(Error::OutOfRange {
                what: "step size must divide the span",
            });
        }
        Ok(grid)
    }

    /// About `steps` steps from `t0` to `t1` through any save times in the span: save time
    /// `s` falls at step `round((s - t0) / H)`, `H = (t1 - t0) / steps`, or one step after
    /// the previous save if that is later, and the steps between two consecutive save times
    /// (or `t0` and the first) are equal. So there are at most `steps` steps plus one per
    /// save time closer than `H / 2` to the previous one. Errors as [`TimeGrid::new`].
    ///
    /// ```
    /// use tinysde::solve::TimeGrid;
    /// let grid = TimeGrid::through(0.0, 1.0, 10)?;
    /// assert_eq!(grid.check_save_times(&[0.05, 0.333, 1.0])?, 10);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn through(t0: f32, t1: f32, steps: u32) -> Result<Self, Error> {
        Self::build(t0, t1, steps, Spacing::Through)
    }

    /// Steps no longer than `h_max` from `t0` to `t1`, through any save times in the span:
    /// each segment between consecutive required times (`t0`, then the save times) gets the
    /// fewest equal steps not longer than `h_max` (up to a relative `1e-4`). Errors for a
    /// non-positive or non-finite `h_max`, a bad span, or more than `u32::MAX` steps.
    ///
    /// ```
    /// use tinysde::solve::{PlanEvent, TimeGrid};
    /// let grid = TimeGrid::with_max_step(0.0, 10.0, 1.0)?;
    /// let times = [0.5, 1.0, 4.0, 10.0]; // gaps 0.5, 0.5, 3, 6
    /// let h: Vec<f32> = grid.plan(&times)?.filter_map(|e| match e {
    ///     PlanEvent::Step(s) => Some(s.h),
    ///     PlanEvent::Save(_) => None,
    /// }).collect();
    /// assert_eq!(h, [0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_max_step(t0: f32, t1: f32, h_max: f32) -> Result<Self, Error> {
        check_step(h_max)?;
        check_span(t0, t1)?;
        let steps = steps_up_to(t1 - t0, h_max)
            .filter(|&n| n > 0)
            .ok_or_else(too_many_steps)?;
        Ok(Self {
            t0,
            t1,
            steps,
            h: h_max,
            sqrt_h: math::sqrt(h_max),
            spacing: Spacing::MaxStep,
        })
    }

    // Inlined so that a caller's grid has a known spacing (see `boundary`).
    #[inline]
    fn build(t0: f32, t1: f32, steps: u32, spacing: Spacing) -> Result<Self, Error> {
        check_span(t0, t1)?;
        if steps == 0 {
            return Err(Error::OutOfRange {
                what: "number of steps must be >= 1",
            });
        }
        let h = (t1 - t0) / steps as f32;
        check_step(h)?;
        Ok(Self {
            t0,
            t1,
            steps,
            h,
            sqrt_h: math::sqrt(h),
            spacing,
        })
    }

    /// Start time.
    ///
    /// ```
    /// assert_eq!(tinysde::solve::TimeGrid::new(-1.0, 1.0, 4)?.t0(), -1.0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn t0(&self) -> f32 {
        self.t0
    }
    /// End time.
    ///
    /// ```
    /// assert_eq!(tinysde::solve::TimeGrid::new(-1.0, 1.0, 4)?.t1(), 1.0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn t1(&self) -> f32 {
        self.t1
    }
    /// The spacing.
    ///
    /// ```
    /// use tinysde::solve::{Spacing, TimeGrid};
    /// assert_eq!(TimeGrid::with_step(0.0, 1.0, 0.5)?.spacing(), Spacing::Uniform);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn spacing(&self) -> Spacing {
        self.spacing
    }
    /// Number of steps of the nominal uniform grid (for [`Spacing::Through`] the budget,
    /// for [`Spacing::MaxStep`] the number of `h_max` steps that cover the span). The steps
    /// actually taken depend on the save times: see [`TimeGrid::plan`].
    ///
    /// ```
    /// use tinysde::solve::TimeGrid;
    /// assert_eq!(TimeGrid::with_max_step(0.0, 1.0, 0.3)?.steps(), 4); // 4 steps of 0.3 cover [0, 1]
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn steps(&self) -> u32 {
        self.steps
    }
    /// Step size of the nominal uniform grid (for [`Spacing::MaxStep`]: `h_max`).
    ///
    /// ```
    /// assert_eq!(tinysde::solve::TimeGrid::new(0.0, 2.0, 8)?.h(), 0.25);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn h(&self) -> f32 {
        self.h
    }
    /// Time of point `k` of the nominal uniform grid: `t0 + k h` (exactly `t1` at
    /// `k = steps`). On a uniform grid these are the step times.
    ///
    /// ```
    /// let grid = tinysde::solve::TimeGrid::new(0.0, 1.0, 3)?;
    /// assert_eq!((grid.time(0), grid.time(3), grid.time(99)), (0.0, 1.0, 1.0));
    /// assert_eq!(grid.time(1), 1.0f32 / 3.0);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[inline]
    pub fn time(&self, k: u32) -> f32 {
        if k >= self.steps {
            self.t1
        } else {
            self.t0 + k as f32 * self.h
        }
    }

    /// Within how much a time counts as a point of the nominal grid: [`SNAP_ULPS`] ulps of
    /// the larger of `|t0|` and `|t1|`.
    fn snap_tolerance(&self) -> f32 {
        // Both ends are finite (checked on construction), so a plain select is `max`, and
        // the soft-float targets need no `fmaxf` for it.
        let (a, b) = (self.t0.abs(), self.t1.abs());
        SNAP_ULPS * ulp(if a > b { a } else { b })
    }

    /// The index `k` of the nominal grid point `t0 + k h` within a few ulps of `t`, if any.
    fn snap(&self, t: f32) -> Option<u32> {
        let tol = self.snap_tolerance();
        if !(t.is_finite() && t >= self.t0 - tol && t <= self.t1 + tol) {
            return None;
        }
        // A time just below t0 rounds to index 0 (the cast saturates); an index past
        // `u32::MAX` is none. (Comparing in f32 rather than casting to u64 first spares the
        // 32-bit targets a float-to-u64 conversion routine; 2^32 is exact in f32.)
        let x = (t - self.t0) / self.h + 0.5;
        if x >= 4_294_967_296.0 {
            return None;
        }
        let k = x as u32;
        let point = if k == self.steps && self.spacing == Spacing::Uniform {
            self.t1
        } else {
            self.t0 + k as f32 * self.h
        };
        ((point - t).abs() <= tol).then_some(k)
    }

    /// The grid index of time `t`: on a uniform grid, `Some(k)` if `t` is within a few ulps
    /// of point `t0 + k h` (matched by integer index, not by an absolute epsilon); on the
    /// other spacings, the step index `t` would get as the first save time, for any `t`
    /// in the span.
    ///
    /// ```
    /// let grid = tinysde::solve::TimeGrid::new(0.0, 1.0, 10)?;
    /// assert_eq!(grid.index_of(0.3), Some(3)); // 0.3 is within a few ulps of 3 * 0.1
    /// assert_eq!(grid.index_of(0.35), None);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn index_of(&self, t: f32) -> Option<u32> {
        self.boundary(t, Anchor::START).map(|a| a.k)
    }

    /// Checks that `save_times` are strictly increasing and fit this grid (in the span; on
    /// a uniform grid, grid points), and returns the step index of the last one (0 for an
    /// empty list): the number of steps a solve up to the last save time takes.
    ///
    /// ```
    /// use tinysde::{solve::TimeGrid, Error};
    /// let grid = TimeGrid::new(0.0, 1.0, 10)?;
    /// assert_eq!(grid.check_save_times(&[0.2, 0.5]), Ok(5));
    /// assert_eq!(grid.check_save_times(&[0.5, 0.2]), Err(Error::SaveTime { index: 1 }));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn check_save_times(&self, save_times: &[f32]) -> Result<u32, Error> {
        let mut anchor = Anchor::START;
        for (index, &t) in save_times.iter().enumerate() {
            if index > 0 && t.partial_cmp(&anchor.t) != Some(core::cmp::Ordering::Greater) {
                return Err(Error::SaveTime { index });
            }
            anchor = self.boundary(t, anchor).ok_or(Error::SaveTime { index })?;
        }
        Ok(anchor.k)
    }

    /// The step plan for `save_times`, validated as by [`TimeGrid::check_save_times`].
    ///
    /// ```
    /// use tinysde::solve::{PlanEvent, TimeGrid};
    /// // Save times off the nominal grid: the steps before each one shrink to reach it.
    /// let grid = TimeGrid::through(0.0, 1.0, 4)?;
    /// let steps = grid.plan(&[0.3, 1.0])?.filter(|e| matches!(e, PlanEvent::Step(_))).count();
    /// assert!(steps >= 4);
    /// assert!(TimeGrid::new(0.0, 1.0, 4)?.plan(&[0.3]).is_err()); // not a point of the uniform grid
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn plan<'a>(&self, save_times: &'a [f32]) -> Result<StepPlan<'a>, Error> {
        self.check_save_times(save_times)?;
        Ok(self.plan_unchecked(save_times))
    }

    /// The step plan for save times already checked by [`TimeGrid::check_save_times`]
    /// (unchecked ones end the plan early at the first bad time, never panic).
    pub(crate) fn plan_unchecked<'a>(&self, save_times: &'a [f32]) -> StepPlan<'a> {
        let end = save_times
            .first()
            .and_then(|&t| self.boundary(t, Anchor::START));
        let start = Anchor::origin(self.t0);
        let size = match end {
            Some(end) => self.segment_size(start, end),
            None => (self.h, self.sqrt_h),
        };
        StepPlan {
            grid: *self,
            save_times,
            next: 0,
            k: 0,
            start,
            end,
            size,
        }
    }

    /// Where save time `t` falls, given where the previous required time fell (`prev`).
    /// `None` if `t` is outside the span, off a uniform grid, or needs too many steps.
    ///
    /// Inlined dispatch, outlined work: where the caller's grid is known to be uniform (the
    /// usual firmware case), the optimizer drops the other spacings' code altogether. (The
    /// grid goes by value, so that its spacing stays a known constant in the caller.)
    #[inline]
    fn boundary(&self, t: f32, prev: Anchor) -> Option<Anchor> {
        let grid = *self;
        if grid.spacing == Spacing::Uniform {
            grid.boundary_uniform(t, prev)
        } else {
            grid.boundary_planned(t, prev)
        }
    }

    /// [`TimeGrid::boundary`] on a uniform grid: `t` must be a grid point after `prev`.
    #[inline(never)]
    fn boundary_uniform(self, t: f32, prev: Anchor) -> Option<Anchor> {
        // `snap` checks the span.
        let k = self.snap(t).filter(|&k| prev.is_start() || k > prev.k)?;
        Some(Anchor {
            k,
            t,
            on_grid: true,
        })
    }

    /// [`TimeGrid::boundary`] on the spacings through the save times.
    #[inline(never)]
    fn boundary_planned(self, t: f32, prev: Anchor) -> Option<Anchor> {
        let tol = self.snap_tolerance();
        if !(t.is_finite() && t >= self.t0 - tol && t <= self.t1 + tol) {
            return None;
        }
        let first = prev.is_start();
        let snapped = self.snap(t);
        let k = match self.spacing {
            Spacing::Uniform => snapped.filter(|&k| first || k > prev.k)?,
            Spacing::Through => {
                let k = match snapped {
                    Some(k) => k,
                    None => u32::try_from(((t - self.t0) / self.h + 0.5) as u64).ok()?,
                };
                if first && snapped == Some(0) {
                    0
                } else {
                    k.max(prev.k.checked_add(1)?)
                }
            }
            Spacing::MaxStep => match (snapped, prev.on_grid) {
                (Some(k), true) if k > prev.k || (first && k == 0) => k,
                _ => {
                    let prev_t = if first { self.t0 } else { prev.t };
                    let n = steps_up_to(t - prev_t, self.h)?;
                    prev.k.checked_add(n.max(1))?
                }
            },
        };
        Some(Anchor {
            k,
            t,
            on_grid: snapped == Some(k),
        })
    }
}

/// Where a required time falls on the plan: its step index, its time, and whether it is a
/// point of the nominal uniform grid.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Anchor {
    k: u32,
    t: f32,
    on_grid: bool,
}

impl Anchor {
    /// Before the first save time: at step 0, on the grid (the time is filled in by use).
    const START: Anchor = Anchor {
        k: 0,
        t: f32::NEG_INFINITY,
        on_grid: true,
    };

    /// The start of the span as the start of the first segment.
    const fn origin(t0: f32) -> Anchor {
        Anchor {
            k: 0,
            t: t0,
            on_grid: true,
        }
    }

    fn is_start(&self) -> bool {
        self.t == f32::NEG_INFINITY
    }
}

/// One step of a plan: advance the state from `t` to `t + h`, drawing the noise of step `k`.
///
/// ```
/// use tinysde::solve::TimeGrid;
/// let step = TimeGrid::new(0.0, 1.0, 4)?.cursor(&[1.0])?.step(2).unwrap();
/// assert_eq!((step.k, step.t, step.h, step.sqrt_h), (2, 0.5, 0.25, 0.5));
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PlannedStep {
    /// The global step index (counted from `t0`): the noise of this step is drawn for it.
    pub k: u32,
    /// The time at the start of the step.
    pub t: f32,
    /// The step size.
    pub h: f32,
    /// `sqrt(h)`, the scale of the step's Brownian increments: computed once per grid (or
    /// per segment between save times off the grid), not once per step.
    pub sqrt_h: f32,
}

/// What a solver does next on a [`StepPlan`].
///
/// ```
/// use tinysde::solve::{PlanEvent, TimeGrid};
/// let events: Vec<PlanEvent> = TimeGrid::new(0.0, 1.0, 2)?.plan(&[1.0])?.collect();
/// assert!(matches!(events[..], [PlanEvent::Step(_), PlanEvent::Step(_), PlanEvent::Save(0)]));
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PlanEvent {
    /// Save the current state as save time number `.0`.
    Save(usize),
    /// Take this step.
    Step(PlannedStep),
}

/// The steps and saves of a solve on a [`TimeGrid`] for given save times, in order: an
/// iterator of [`PlanEvent`]s that ends right after the last save. Made by
/// [`TimeGrid::plan`]; it allocates nothing and is a pure function of the grid and the
/// save times.
///
/// ```
/// use tinysde::solve::{PlanEvent, PlannedStep, TimeGrid};
/// let grid = TimeGrid::new(0.0, 1.0, 4)?;
/// let events: Vec<PlanEvent> = grid.plan(&[0.0, 0.5])?.collect();
/// assert_eq!(events, [
///     PlanEvent::Save(0),
///     PlanEvent::Step(PlannedStep { k: 0, t: 0.0, h: 0.25, sqrt_h: 0.5 }),
///     PlanEvent::Step(PlannedStep { k: 1, t: 0.25, h: 0.25, sqrt_h: 0.5 }),
///     PlanEvent::Save(1),
/// ]);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StepPlan<'a> {
    grid: TimeGrid,
    save_times: &'a [f32],
    /// The next save time to reach.
    next: usize,
    /// The state is at step index `k`.
    k: u32,
    /// Where the current segment starts.
    start: Anchor,
    /// Where it ends (the next save time); `None` once all saves are done.
    end: Option<Anchor>,
    /// The step size and `sqrt` of it in the current segment.
    size: (f32, f32),
}

impl Iterator for StepPlan<'_> {
    type Item = PlanEvent;

    #[inline]
    fn next(&mut self) -> Option<PlanEvent> {
        let end = self.end?;
        if self.k >= end.k {
            let index = self.next;
            self.next += 1;
            self.start = end;
            self.end = self
                .save_times
                .get(self.next)
                .and_then(|&t| self.grid.boundary(t, end));
            if let Some(next_end) = self.end {
                self.size = self.grid.segment_size(end, next_end);
            }
            return Some(PlanEvent::Save(index));
        }
        let k = self.k;
        self.k += 1;
        Some(PlanEvent::Step(
            self.grid.segment_step(self.start, end, k, self.size),
        ))
    }
}

impl TimeGrid {
    /// Whether the steps of the segment from `start` to `end` are the nominal grid's.
    #[inline]
    fn on_nominal_grid(&self, start: Anchor, end: Anchor) -> bool {
        self.spacing == Spacing::Uniform || (start.on_grid && end.on_grid)
    }

    /// The step size of the segment from `start` to `end` and its square root: the nominal
    /// grid's if the spacing is uniform or both ends are grid points, else the segment's
    /// equal steps'. Computed once per segment.
    #[inline]
    fn segment_size(&self, start: Anchor, end: Anchor) -> (f32, f32) {
        if self.on_nominal_grid(start, end) {
            (self.h, self.sqrt_h)
        } else {
            // Equal steps from the segment's start to its end; `end.k > start.k` here
            // (saturating and `max(1)` only keep a misuse panic-free).
            let n = end.k.saturating_sub(start.k).max(1);
            let h = (end.t - start.t) / n as f32;
            (h, math::sqrt(h))
        }
    }

    /// Step `k` of the segment from `start` to `end` (`start.k <= k < end.k`), whose
    /// [`segment_size`](Self::segment_size) is `size`: the nominal grid's step if the
    /// spacing is uniform or both ends are grid points, else one of the segment's equal
    /// steps. [`StepPlan`] and [`PlanCursor`] both take their steps from here, so they give
    /// the same bits.
    #[inline]
    fn segment_step(&self, start: Anchor, end: Anchor, k: u32, size: (f32, f32)) -> PlannedStep {
        let (h, sqrt_h) = size;
        let t = if self.on_nominal_grid(start, end) {
            self.t0 + k as f32 * self.h
        } else {
            start.t + k.saturating_sub(start.k) as f32 * h
        };
        PlannedStep { k, t, h, sqrt_h }
    }

    /// Random access to the plan for `save_times` (validated as by
    /// [`TimeGrid::check_save_times`]): step `k`'s time and size, and which save time falls
    /// at step index `k`, in any order. This is how a backward pass walks a plan in reverse.
    ///
    /// ```
    /// use tinysde::solve::{PlanEvent, TimeGrid};
    /// let grid = TimeGrid::with_max_step(0.0, 10.0, 1.0)?;
    /// let times = [0.5, 1.0, 4.0, 10.0];
    /// let mut cursor = grid.cursor(&times)?;
    /// let forward: Vec<_> = grid.plan(&times)?
    ///     .filter_map(|e| match e { PlanEvent::Step(s) => Some(s), _ => None })
    ///     .collect();
    /// for s in forward.iter().rev() {
    ///     assert_eq!(cursor.step(s.k), Some(*s));
    /// }
    /// assert_eq!(cursor.step(11), None); // past the last save time
    /// assert_eq!(cursor.save_at(2), Some(1)); // 1.0 is reached after steps 0 and 1
    /// assert_eq!(cursor.save_at(3), None);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn cursor<'a>(&self, save_times: &'a [f32]) -> Result<PlanCursor<'a>, Error> {
        let last = self.check_save_times(save_times)?;
        Ok(self.cursor_unchecked(save_times, last))
    }

    /// [`TimeGrid::cursor`] for save times already checked, `last` the step index of the
    /// last one (unchecked ones give `None` from the first bad time on, never panic).
    pub(crate) fn cursor_unchecked<'a>(&self, save_times: &'a [f32], last: u32) -> PlanCursor<'a> {
        let mut cursor = PlanCursor {
            grid: *self,
            save_times,
            last,
            index: 0,
            start: Anchor::origin(self.t0),
            end: None,
            saves: SaveHint {
                index: 0,
                at: SaveHint::PAST,
                before: SaveHint::BELOW,
            },
        };
        cursor.saves.at = cursor.save_key(0);
        cursor.rewind();
        cursor
    }
}

/// Random access to a [`StepPlan`]: step `k`'s `(k, t, h)` with the bits the plan gives,
/// and the save time at step index `k`. Made by [`TimeGrid::cursor`]; allocates nothing.
///
/// On a uniform grid a step costs O(1), and so does a save lookup at or next to the last
/// one looked up (the cursor moves one save time at a time from there): a walk over the
/// steps forwards or backwards costs O(1) per step. On the other spacings a save time's step index depends on all earlier ones, so the
/// cursor keeps the segment (between two consecutive save times) of the last query:
/// queries in the same or a later segment cost O(1) per segment moved, an earlier one
/// re-walks the save times from the start, O(S). A backward pass over a whole plan costs
/// O(S^2) segment computations in all (a few flops each), none per step.
///
/// ```
/// use tinysde::solve::TimeGrid;
/// let mut cursor = TimeGrid::new(0.0, 1.0, 10)?.cursor(&[0.5, 1.0])?;
/// // Backward, as a reverse pass walks it.
/// let saves: Vec<_> = (0..=cursor.last()).rev().filter_map(|k| cursor.save_at(k)).collect();
/// assert_eq!(saves, [1, 0]);
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PlanCursor<'a> {
    grid: TimeGrid,
    save_times: &'a [f32],
    /// The step index of the last save time: the plan has steps `0..last`.
    last: u32,
    /// The save time that ends the current segment.
    index: usize,
    /// Where the current segment starts (`t0` for the first).
    start: Anchor,
    /// Where it ends; `None` if `save_times` is empty or a save time is bad.
    end: Option<Anchor>,
    /// Uniform grids: where the last save lookup ended, for the next one to start from.
    saves: SaveHint,
}

/// A position in the save times of a uniform grid, with the grid indices on either side
/// of it at hand, so that a lookup next to it compares two integers and snaps nothing.
#[derive(Clone, Copy, Debug)]
struct SaveHint {
    /// A save time's index in the list (`len` past the last one).
    index: usize,
    /// The grid index of `save_times[index]`; [`SaveHint::PAST`] past the end of the list,
    /// [`SaveHint::BELOW`] off the grid.
    at: i64,
    /// The grid index of `save_times[index - 1]`; [`SaveHint::BELOW`] at 0 or off the grid.
    before: i64,
}

impl SaveHint {
    /// Below every step index.
    const BELOW: i64 = -1;
    /// Above every step index.
    const PAST: i64 = i64::MAX;

    /// Whether this is the first save time not below `k`: the one before is below `k`,
    /// this one is not.
    #[inline]
    fn brackets(&self, k: u32) -> bool {
        let k = i64::from(k);
        self.before < k && k <= self.at
    }
}

impl PlanCursor<'_> {
    /// The step index of the last save time (the plan has steps `0..last()`).
    ///
    /// ```
    /// let grid = tinysde::solve::TimeGrid::new(0.0, 1.0, 10)?;
    /// assert_eq!(grid.cursor(&[0.2, 0.7])?.last(), 7);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn last(&self) -> u32 {
        self.last
    }

    /// Step `k` of the plan, `None` for `k >= last()`.
    ///
    /// ```
    /// let mut cursor = tinysde::solve::TimeGrid::new(0.0, 1.0, 10)?.cursor(&[0.5])?;
    /// assert_eq!(cursor.step(4).map(|s| s.k), Some(4));
    /// assert_eq!(cursor.step(5), None);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[inline]
    pub fn step(&mut self, k: u32) -> Option<PlannedStep> {
        if k >= self.last {
            return None;
        }
        if self.grid.spacing == Spacing::Uniform {
            return Some(PlannedStep {
                k,
                t: self.grid.t0 + k as f32 * self.grid.h,
                h: self.grid.h,
                sqrt_h: self.grid.sqrt_h,
            });
        }
        self.planned_step(k)
    }

    /// [`PlanCursor::step`] off the uniform grid: from the segment that holds step `k`.
    #[inline(never)]
    fn planned_step(&mut self, k: u32) -> Option<PlannedStep> {
        let end = self.seek(k + 1)?;
        let size = self.grid.segment_size(self.start, end);
        Some(self.grid.segment_step(self.start, end, k, size))
    }

    /// The index `i` of the save time `save_times[i]` at which the plan saves the state
    /// reached after `k` steps, if any (at most one save time falls on each step index).
    ///
    /// ```
    /// let mut cursor = tinysde::solve::TimeGrid::new(0.0, 1.0, 10)?.cursor(&[0.0, 0.5])?;
    /// assert_eq!((cursor.save_at(0), cursor.save_at(3), cursor.save_at(5)), (Some(0), None, Some(1)));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[inline]
    pub fn save_at(&mut self, k: u32) -> Option<usize> {
        if k > self.last {
            return None;
        }
        if self.grid.spacing == Spacing::Uniform {
            let mut hint = self.saves;
            if !hint.brackets(k) {
                hint = self.move_save_hint(k);
            }
            return (hint.at == i64::from(k)).then_some(hint.index);
        }
        self.planned_save_at(k)
    }

    /// [`PlanCursor::save_at`] off the uniform grid: from the segment that ends at or
    /// after step index `k`.
    #[inline(never)]
    fn planned_save_at(&mut self, k: u32) -> Option<usize> {
        let end = self.seek(k)?;
        (end.k == k).then_some(self.index)
    }

    /// On a uniform grid: moves the save hint from the last lookup's position to the first
    /// save time whose grid index is not below `k` (a time off the grid counts as below),
    /// one save time at a time. Save times are matched to grid indices one by one,
    /// increasing, so that is where `k`'s save time is if it has one. The walk moves one
    /// way only, so it ends (after at most `save_times.len()` moves) whatever the list
    /// holds.
    #[inline(never)]
    fn move_save_hint(&mut self, k: u32) -> SaveHint {
        let k = i64::from(k);
        let mut hint = self.saves;
        while hint.before >= k {
            hint.index -= 1;
            hint.at = hint.before;
            hint.before = match hint.index.checked_sub(1) {
                Some(i) => self.save_key(i),
                None => SaveHint::BELOW,
            };
        }
        while hint.at < k {
            hint.index += 1;
            hint.before = hint.at;
            hint.at = self.save_key(hint.index);
        }
        self.saves = hint;
        hint
    }

    /// The grid index of `save_times[i]` as a [`SaveHint`] key: [`SaveHint::BELOW`] off
    /// the grid, [`SaveHint::PAST`] past the end of the list.
    fn save_key(&self, i: usize) -> i64 {
        match self.save_times.get(i) {
            Some(&t) => self.grid.snap(t).map_or(SaveHint::BELOW, i64::from),
            None => SaveHint::PAST,
        }
    }

    /// Back to the first segment.
    fn rewind(&mut self) {
        self.index = 0;
        self.start = Anchor::origin(self.grid.t0);
        self.end = self
            .save_times
            .first()
            .and_then(|&t| self.grid.boundary(t, Anchor::START));
    }

    /// Moves to the first segment whose end has step index `>= q` and returns that end.
    fn seek(&mut self, q: u32) -> Option<Anchor> {
        if self.index > 0 && q <= self.start.k {
            self.rewind();
        }
        loop {
            let end = self.end?;
            if q <= end.k {
                return Some(end);
            }
            self.index += 1;
            self.start = end;
            self.end = self
                .save_times
                .get(self.index)
                .and_then(|&t| self.grid.boundary(t, end));
        }
    }
}

/// The distance from `x >= 0` to the next larger f32 (the unit in the last place).
fn ulp(x: f32) -> f32 {
    let next = f32::from_bits(x.to_bits().saturating_add(1));
    next - x
}

fn check_span(t0: f32, t1: f32) -> Result<(), Error> {
    if t0.is_finite() && t1.is_finite() && t1 > t0 {
        Ok(())
    } else {
        Err(Error::TimeSpan { t0, t1 })
    }
}

fn check_step(h: f32) -> Result<(), Error> {
    if h > 0.0 && h.is_finite() {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            what: "step size must be positive and finite",
        })
    }
}

fn too_many_steps() -> Error {
    Error::OutOfRange {
        what: "step size gives no steps or too many",
    }
}

/// The fewest steps no longer than `h` (up to a relative [`STEP_SLACK`]) that cover
/// `span >= 0`; `None` above `u32::MAX` or for a non-finite ratio.
fn steps_up_to(span: f32, h: f32) -> Option<u32> {
    let q = span / h;
    if !(q.is_finite() && q < u32::MAX as f32) {
        return None;
    }
    let whole = q as u32; // non-negative and below u32::MAX: the floor
    if q - whole as f32 > STEP_SLACK {
        whole.checked_add(1)
    } else {
        Some(whole)
    }
}
