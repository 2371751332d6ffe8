//! One observed series: times, values and a mask of present entries.

use crate::error::{check_len, Error};
use crate::train::loss::check_series_data;

/// One observed series: strictly increasing finite times, one row of values per time, and
/// optionally a mask of present entries (missing entries may hold anything, NaN included).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Series<'a, const D: usize> {
    pub(super) times: &'a [f32],
    pub(super) values: &'a [[f32; D]],
    pub(super) mask: Option<&'a [[bool; D]]>,
}

impl<'a, const D: usize> Series<'a, D> {
    /// A fully observed series (at least two rows, every value finite).
    pub fn new(times: &'a [f32], values: &'a [[f32; D]]) -> Result<Self, Error> {
        Self::build(times, values, None)
    }

    /// A series with missing entries where `mask` is `false` (`mask` as long as `values`).
    pub fn masked(
        times: &'a [f32],
        values: &'a [[f32; D]],
        mask: &'a [[bool; D]],
    ) -> Result<Self, Error> {
        Self::build(times, values, Some(mask))
    }

    pub(super) fn build(
        times: &'a [f32],
        values: &'a [[f32; D]],
        mask: Option<&'a [[bool; D]]>,
    ) -> Result<Self, Error> {
        check_len("series values", times.len(), values.len())?;
        if times.len() < 2 {
            return Err(Error::OutOfRange {
                what: "a series needs at least two rows",
            });
        }
        if let Some(index) = times.iter().position(|t| !t.is_finite()) {
            return Err(Error::NonFinite {
                what: "series time",
                index,
            });
        }
        if let Some(i) = times.windows(2).position(|w| matches!(w, [a, b] if b <= a)) {
            return Err(Error::SaveTime { index: i + 1 });
        }
        check_series_data(values, mask)?;
        Ok(Self {
            times,
            values,
            mask,
        })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.times.len()
    }
    /// Always `false`: a series has at least two rows.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
    /// The times.
    pub fn times(&self) -> &'a [f32] {
        self.times
    }
    /// The values.
    pub fn values(&self) -> &'a [[f32; D]] {
        self.values
    }
    /// The mask, if any.
    pub fn mask(&self) -> Option<&'a [[bool; D]]> {
        self.mask
    }
    /// Whether every entry of row `row` is present.
    pub fn row_present(&self, row: usize) -> bool {
        match self.mask {
            None => row < self.times.len(),
            Some(m) => m.get(row).is_some_and(|r| r.iter().all(|&p| p)),
        }
    }
}
