//! One observed series: times, values and a mask of present entries.

use crate::error::{check_len, Error};
use crate::train::loss::check_series_data;

/// One observed series: strictly increasing finite times, one row of values per time, and
/// optionally a mask of present entries (missing entries may hold anything, NaN included).
///
/// ```
/// # use tinysde::train::Series;
/// # let times = [0.0, 0.5, 1.0];
/// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
/// # let mask = [[true, true], [true, false], [true, true]];
/// assert!(Series::new(&times, &values).is_err()); // NaN where nothing is masked
/// let series = Series::masked(&times, &values, &mask)?;
/// assert!(!series.row_present(1));
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Series<'a, const D: usize> {
    pub(super) times: &'a [f32],
    pub(super) values: &'a [[f32; D]],
    pub(super) mask: Option<&'a [[bool; D]]>,
}

impl<'a, const D: usize> Series<'a, D> {
    /// A fully observed series (at least two rows, every value finite).
    ///
    /// ```
    /// use tinysde::train::Series;
    /// let series = Series::new(&[0.0, 1.0], &[[1.0], [2.0]])?;
    /// assert_eq!(series.len(), 2);
    /// assert!(Series::new(&[1.0, 0.0], &[[1.0], [2.0]]).is_err()); // times must increase
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(times: &'a [f32], values: &'a [[f32; D]]) -> Result<Self, Error> {
        Self::build(times, values, None)
    }

    /// A series with missing entries where `mask` is `false` (`mask` as long as `values`).
    ///
    /// ```
    /// # use tinysde::train::Series;
    /// # let times = [0.0, 0.5, 1.0];
    /// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
    /// # let mask = [[true, true], [true, false], [true, true]];
    /// let series = Series::masked(&times, &values, &mask)?;
    /// assert_eq!(series.mask(), Some(&mask[..]));
    /// # Ok::<(), tinysde::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use tinysde::train::Series;
    /// # let times = [0.0, 0.5, 1.0];
    /// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
    /// # let mask = [[true, true], [true, false], [true, true]];
    /// assert_eq!(Series::masked(&times, &values, &mask)?.len(), 3);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.times.len()
    }
    /// Always `false`: a series has at least two rows.
    ///
    /// ```
    /// # use tinysde::train::Series;
    /// # let times = [0.0, 0.5, 1.0];
    /// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
    /// # let mask = [[true, true], [true, false], [true, true]];
    /// assert!(!Series::masked(&times, &values, &mask)?.is_empty());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
    /// The times.
    ///
    /// ```
    /// # use tinysde::train::Series;
    /// # let times = [0.0, 0.5, 1.0];
    /// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
    /// # let mask = [[true, true], [true, false], [true, true]];
    /// assert_eq!(Series::masked(&times, &values, &mask)?.times(), &times);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn times(&self) -> &'a [f32] {
        self.times
    }
    /// The values.
    ///
    /// ```
    /// # use tinysde::train::Series;
    /// # let times = [0.0, 0.5, 1.0];
    /// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
    /// # let mask = [[true, true], [true, false], [true, true]];
    /// assert_eq!(Series::masked(&times, &values, &mask)?.values()[2], [0.7, 1.5]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn values(&self) -> &'a [[f32; D]] {
        self.values
    }
    /// The mask, if any.
    ///
    /// ```
    /// # use tinysde::train::Series;
    /// # let times = [0.0, 0.5, 1.0];
    /// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
    /// # let mask = [[true, true], [true, false], [true, true]];
    /// assert_eq!(Series::new(&[0.0, 1.0], &[[1.0, 1.0], [1.0, 1.0]])?.mask(), None);
    /// assert!(Series::masked(&times, &values, &mask)?.mask().is_some());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn mask(&self) -> Option<&'a [[bool; D]]> {
        self.mask
    }
    /// Whether every entry of row `row` is present.
    ///
    /// ```
    /// # use tinysde::train::Series;
    /// # let times = [0.0, 0.5, 1.0];
    /// # let values = [[1.0, 2.0], [0.8, f32::NAN], [0.7, 1.5]];
    /// # let mask = [[true, true], [true, false], [true, true]];
    /// let series = Series::masked(&times, &values, &mask)?;
    /// assert_eq!([0, 1, 2, 3].map(|r| series.row_present(r)), [true, false, true, false]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn row_present(&self, row: usize) -> bool {
        match self.mask {
            None => row < self.times.len(),
            Some(m) => m.get(row).is_some_and(|r| r.iter().all(|&p| p)),
        }
    }
}
