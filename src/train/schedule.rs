//! The growing-window schedule and the noise used at each training iteration.

use crate::error::Error;
use crate::noise::{splitmix64, Brownian};

/// The seed task's growing-window fit: train on the first `start` save times for
/// `iters_per_stage` iterations, then on `add` more, and so on until all are used (the last
/// stage uses all of them, even if that adds fewer than `add`).
///
/// ```
/// use tinysde::train::GrowingWindow;
/// let s = GrowingWindow { start: 2, add: 2, iters_per_stage: 300 };
/// let windows: Vec<usize> = s.windows(7).unwrap().collect();
/// assert_eq!(windows, [2, 4, 6, 7]);
/// assert_eq!(s.total_iterations(7).unwrap(), 1200);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GrowingWindow {
    /// Save times used in the first stage (`>= 1`; more than there are means all).
    pub start: usize,
    /// Save times added per stage (`>= 1`).
    pub add: usize,
    /// Iterations per stage (`>= 1`).
    pub iters_per_stage: u32,
}

impl GrowingWindow {
    /// The seed article's schedule: 2 points, one more per stage, 300 iterations per stage.
    pub const SEED_ARTICLE: Self = Self {
        start: 2,
        add: 1,
        iters_per_stage: 300,
    };

    /// Checks the fields.
    pub fn validate(&self) -> Result<(), Error> {
        if self.start == 0 {
            return Err(Error::OutOfRange {
                what: "growing window: start must be >= 1",
            });
        }
        if self.add == 0 {
            return Err(Error::OutOfRange {
                what: "growing window: add must be >= 1",
            });
        }
        if self.iters_per_stage == 0 {
            return Err(Error::OutOfRange {
                what: "growing window: iters_per_stage must be >= 1",
            });
        }
        Ok(())
    }

    /// The window (number of save times used) of each stage, for `saves` save times.
    pub fn windows(&self, saves: usize) -> Result<Windows, Error> {
        self.validate()?;
        if saves == 0 {
            return Err(Error::OutOfRange {
                what: "at least one save time is needed",
            });
        }
        Ok(Windows {
            next: Some(self.start.min(saves)),
            add: self.add,
            saves,
        })
    }

    /// The number of stages for `saves` save times.
    ///
    /// ```
    /// use tinysde::train::GrowingWindow;
    /// // The seed article: 2 points, then one more per stage, up to all 7.
    /// assert_eq!(GrowingWindow::SEED_ARTICLE.stages(7)?, 6);
    /// assert!(GrowingWindow::SEED_ARTICLE.stages(0).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn stages(&self, saves: usize) -> Result<usize, Error> {
        Ok(self.windows(saves)?.count())
    }

    /// The total number of iterations for `saves` save times (saturating).
    ///
    /// ```
    /// use tinysde::train::GrowingWindow;
    /// let schedule = GrowingWindow { start: 2, add: 1, iters_per_stage: 300 };
    /// assert_eq!(schedule.total_iterations(7)?, 6 * 300);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn total_iterations(&self, saves: usize) -> Result<u32, Error> {
        let stages = u32::try_from(self.stages(saves)?).unwrap_or(u32::MAX);
        Ok(stages.saturating_mul(self.iters_per_stage))
    }
}

/// The windows of a [`GrowingWindow`], in order (see [`GrowingWindow::windows`]).
#[derive(Clone, Debug)]
pub struct Windows {
    next: Option<usize>,
    add: usize,
    saves: usize,
}

impl Iterator for Windows {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let w = self.next?;
        self.next = (w < self.saves).then(|| w.saturating_add(self.add).min(self.saves));
        Some(w)
    }
}

/// Which Brownian path each training iteration uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NoiseMode {
    /// A fresh path per iteration: iteration `i` uses `Brownian::new(iteration_seed(seed, i))`.
    /// The default: a stochastic gradient of the expected loss.
    Fresh {
        /// The base seed.
        seed: u64,
    },
    /// The same path every iteration (`Brownian::new(seed)`): a deterministic objective.
    Fixed {
        /// The path's seed.
        seed: u64,
    },
}

impl Default for NoiseMode {
    fn default() -> Self {
        NoiseMode::Fresh { seed: 0 }
    }
}

impl NoiseMode {
    /// The Brownian motion of iteration `iteration`.
    pub fn brownian(&self, iteration: u32) -> Brownian {
        match *self {
            NoiseMode::Fresh { seed } => Brownian::new(iteration_seed(seed, iteration)),
            NoiseMode::Fixed { seed } => Brownian::new(seed),
        }
    }
}

/// The noise seed of training iteration `iteration` under base seed `seed`:
/// `splitmix64(splitmix64(seed) ^ iteration)`. Distinct iterations get unrelated paths.
///
/// ```
/// use tinysde::train::iteration_seed;
/// assert_ne!(iteration_seed(1, 0), iteration_seed(1, 1));
/// assert_eq!(iteration_seed(1, 5), iteration_seed(1, 5));
/// ```
pub const fn iteration_seed(seed: u64, iteration: u32) -> u64 {
    splitmix64(splitmix64(seed) ^ iteration as u64)
}
