//! Per-key scalar histories in bounded rings.
//!
//! `update(key, value, count)` records `value` as the sum of `count` samples (a single sample
//! when `count` is 1). The ring of a key keeps its last `capacity` entries; window statistics
//! read them: `mean` is `sum(v) / sum(c)`, the mean per sample, and `min`/`max`/`median`
//! ignore counts. The global sums (`global_mean`, `count`) cover every update ever made.
//! Counts are never negative; running counts saturate at `i64::MAX` instead of wrapping.

use std::collections::VecDeque;
use std::fmt;

use indexmap::IndexMap;

/// Why a statistic could not be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogBufferError {
    /// The key was never updated.
    MissingKey(String),
    /// A window below 1.
    BadWindow(i64),
    /// A state with as many values as counts was expected.
    BadState(String),
    /// A negative count.
    BadCount(i64),
}

impl fmt::Display for LogBufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogBufferError::MissingKey(k) => write!(f, "no scalar named '{k}' has been logged"),
            LogBufferError::BadWindow(w) => write!(f, "window must be a positive int or None, got {w}"),
            LogBufferError::BadState(m) => write!(f, "invalid log buffer state: {m}"),
            LogBufferError::BadCount(c) => write!(f, "count must be a non-negative int, got {c}"),
        }
    }
}

impl std::error::Error for LogBufferError {}

type Result<T> = std::result::Result<T, LogBufferError>;

/// The history of one key: the retained entries and the running sums.
#[derive(Clone, Debug)]
pub struct Series {
    values: VecDeque<f64>,
    counts: VecDeque<i64>,
    global_sum: f64,
    global_count: i64,
}

/// Plain-data state of one key, bounded by the ring capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyState {
    /// Retained values, oldest first.
    pub values: Vec<f64>,
    /// Their counts.
    pub counts: Vec<i64>,
    /// `sum(value)` over every update.
    pub global_sum: f64,
    /// `sum(count)` over every update.
    pub global_count: i64,
}

impl Series {
    fn new(capacity: usize) -> Self {
        Series {
            values: VecDeque::with_capacity(capacity.min(4096)),
            counts: VecDeque::with_capacity(capacity.min(4096)),
            global_sum: 0.0,
            global_count: 0,
        }
    }

    /// O(1): append, dropping the oldest entry when the ring is full.
    fn push(&mut self, capacity: usize, value: f64, count: i64) {
        if self.values.len() == capacity {
            self.values.pop_front();
            self.counts.pop_front();
        }
        self.values.push_back(value);
        self.counts.push_back(count);
        self.global_sum += value;
        self.global_count = self.global_count.saturating_add(count);
    }

    /// Index of the first entry of the last `window` ones.
    fn start(&self, window: Option<i64>) -> Result<usize> {
        match window {
            None => Ok(0),
            Some(w) if w < 1 => Err(LogBufferError::BadWindow(w)),
            Some(w) => Ok(self.values.len().saturating_sub(w as usize)),
        }
    }

    fn window_values(&self, window: Option<i64>) -> Result<impl Iterator<Item = f64> + '_> {
        let start = self.start(window)?;
        Ok(self.values.range(start..).copied())
    }

    /// The latest value (NaN for a history that was loaded empty).
    pub fn current(&self) -> f64 {
        self.values.back().copied().unwrap_or(f64::NAN)
    }

    /// Mean per sample of the last `window` entries (all retained ones for `None`):
    /// `sum(v) / sum(c)`; NaN when their counts sum to 0.
    pub fn mean(&self, window: Option<i64>) -> Result<f64> {
        let start = self.start(window)?;
        let values: Vec<f64> = self.values.range(start..).copied().collect();
        let weight = self.counts.range(start..).fold(0i64, |w, c| w.saturating_add(*c));
        Ok(if weight == 0 { f64::NAN } else { pairwise_sum(&values) / weight as f64 })
    }

    /// Smallest of the last `window` values.
    pub fn min(&self, window: Option<i64>) -> Result<f64> {
        Ok(self.window_values(window)?.fold(f64::INFINITY, f64::min))
    }

    /// Largest of the last `window` values.
    pub fn max(&self, window: Option<i64>) -> Result<f64> {
        Ok(self.window_values(window)?.fold(f64::NEG_INFINITY, f64::max))
    }

    /// The middle value; for an even number of values, the mean of the middle two.
    pub fn median(&self, window: Option<i64>) -> Result<f64> {
        let mut v: Vec<f64> = self.window_values(window)?.collect();
        if v.is_empty() {
            return Ok(f64::NAN);
        }
        v.sort_unstable_by(f64::total_cmp);
        let mid = v.len() / 2;
        Ok(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
    }

    /// Mean per sample over every update ever made: `sum(v) / sum(c)`; NaN for a count of 0.
    pub fn global_mean(&self) -> f64 {
        if self.global_count == 0 { f64::NAN } else { self.global_sum / self.global_count as f64 }
    }

    /// Sum of the counts of every update ever made.
    pub fn count(&self) -> i64 {
        self.global_count
    }

    /// The retained entries and running sums as plain data.
    pub fn state(&self) -> KeyState {
        KeyState {
            values: self.values.iter().copied().collect(),
            counts: self.counts.iter().copied().collect(),
            global_sum: self.global_sum,
            global_count: self.global_count,
        }
    }
}

/// Values below which [`pairwise_sum`] adds in one pass of eight partial sums.
const PAIRWISE_BLOCK: usize = 128;

/// The sum of `values` in numpy's pairwise order (what `numpy.sum` does for a contiguous
/// float64 array): the same float as MMEngine's `HistoryBuffer.mean`, bit for bit.
///
/// Fewer than 8 values are added in order; up to [`PAIRWISE_BLOCK`], eight interleaved
/// partial sums are combined as a balanced tree and the remainder added in order; longer
/// runs are split in two (the first half a multiple of 8) and summed recursively.
pub fn pairwise_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        return values.iter().fold(0.0, |total, v| total + v);
    }
    if n <= PAIRWISE_BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        for chunk in values[8..whole].chunks_exact(8) {
            for (partial, v) in r.iter_mut().zip(chunk) {
                *partial += v;
            }
        }
        let mut total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &values[whole..] {
            total += v;
        }
        return total;
    }
    let half = n / 2;
    let half = half - half % 8;
    pairwise_sum(&values[..half]) + pairwise_sum(&values[half..])
}

/// Bounded per-key scalar histories; keys in first-update order.
#[derive(Clone, Debug)]
pub struct LogBuffer {
    capacity: usize,
    series: IndexMap<String, Series>,
}

impl LogBuffer {
    /// A buffer keeping `capacity` entries per key (at least 1).
    pub fn new(capacity: usize) -> Self {
        LogBuffer { capacity: capacity.max(1), series: IndexMap::new() }
    }

    /// Entries kept per key.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// O(1): record `value` as the sum of `count` samples; a negative count is an error.
    pub fn update(&mut self, key: &str, value: f64, count: i64) -> Result<()> {
        if count < 0 {
            return Err(LogBufferError::BadCount(count));
        }
        let cap = self.capacity;
        match self.series.get_mut(key) {
            Some(s) => s.push(cap, value, count),
            None => {
                let mut s = Series::new(cap);
                s.push(cap, value, count);
                self.series.insert(key.to_string(), s);
            }
        }
        Ok(())
    }

    /// The history of `key`.
    pub fn get(&self, key: &str) -> Result<&Series> {
        self.series.get(key).ok_or_else(|| LogBufferError::MissingKey(key.to_string()))
    }

    /// Whether `key` was ever updated (or loaded).
    pub fn contains(&self, key: &str) -> bool {
        self.series.contains_key(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no key was ever updated.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Keys in first-update order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    /// Forget every key.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Replace the history of `key` by `state`, keeping its newest `capacity` entries.
    pub fn load_key_state(&mut self, key: &str, state: KeyState) -> Result<()> {
        if state.values.len() != state.counts.len() {
            return Err(LogBufferError::BadState(format!(
                "'{key}' has {} values but {} counts",
                state.values.len(),
                state.counts.len()
            )));
        }
        if let Some(c) = state.counts.iter().copied().chain([state.global_count]).find(|c| *c < 0) {
            return Err(LogBufferError::BadState(format!("'{key}' has a negative count {c}")));
        }
        let skip = state.values.len().saturating_sub(self.capacity);
        let mut s = Series::new(self.capacity);
        s.values.extend(state.values.into_iter().skip(skip));
        s.counts.extend(state.counts.into_iter().skip(skip));
        s.global_sum = state.global_sum;
        s.global_count = state.global_count;
        self.series.insert(key.to_string(), s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn pairwise_sum_follows_numpys_order() {
        // 1e16 absorbs a 1.0 added to it alone (its spacing is 2), not a 2.0 made first.
        let v = [1e16, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        // eight partial sums combined as ((r0 + r1) + (r2 + r3)) + ..., then the rest in order
        assert_eq!(pairwise_sum(&v), 1e16 + 2.0);
        assert_eq!(v.iter().fold(0.0, |t, x| t + x), 1e16); // in order, both 1.0s are lost
        // fewer than eight values: in order
        assert_eq!(pairwise_sum(&v[..4]), 1e16);
        // over the block size the halves are summed separately (the first a multiple of 8)
        let long: Vec<f64> = (0..300).map(|i| if i == 144 { 1e16 } else { 1.0 }).collect();
        assert_eq!(pairwise_sum(&long), pairwise_sum(&long[..144]) + pairwise_sum(&long[144..]));
        assert_eq!(pairwise_sum(&[]), 0.0);
    }

    #[test]
    fn window_statistics() {
        let mut b = LogBuffer::new(10);
        for v in [5.0, 1.0, 4.0, 2.0, 3.0] {
            b.update("loss", v, 1).unwrap();
        }
        let s = b.get("loss").unwrap();
        assert_eq!(s.current(), 3.0);
        assert!(close(s.mean(None).unwrap(), 3.0));
        assert!(close(s.mean(Some(2)).unwrap(), 2.5));
        assert_eq!(s.min(None).unwrap(), 1.0);
        assert_eq!(s.min(Some(3)).unwrap(), 2.0);
        assert_eq!(s.max(Some(3)).unwrap(), 4.0);
        assert_eq!(s.median(None).unwrap(), 3.0);
        assert_eq!(s.median(Some(4)).unwrap(), 2.5);
        assert_eq!(s.mean(Some(100)).unwrap(), s.mean(None).unwrap());
        assert_eq!(s.mean(Some(0)), Err(LogBufferError::BadWindow(0)));
        assert!(matches!(b.get("nope"), Err(LogBufferError::MissingKey(_))));
    }

    #[test]
    fn capacity_wraps_but_global_stats_do_not() {
        let mut b = LogBuffer::new(3);
        for i in 1..=10 {
            b.update("x", i as f64, 1).unwrap();
        }
        let s = b.get("x").unwrap();
        assert_eq!(s.state().values, vec![8.0, 9.0, 10.0]);
        assert!(close(s.mean(None).unwrap(), 9.0));
        assert_eq!(s.min(None).unwrap(), 8.0);
        assert!(close(s.global_mean(), 5.5));
        assert_eq!(s.count(), 10);
    }

    #[test]
    fn a_value_with_a_count_is_a_sum_of_samples() {
        let mut b = LogBuffer::new(2);
        b.update("acc", 2.0, 4).unwrap(); // 4 samples summing to 2
        b.update("acc", 1.0, 1).unwrap();
        b.update("acc", 3.0, 5).unwrap();
        let s = b.get("acc").unwrap();
        // Window holds (1.0, 1) and (3.0, 5): 4 over 6 samples.
        assert!(close(s.mean(None).unwrap(), 4.0 / 6.0));
        assert!(close(s.mean(Some(1)).unwrap(), 0.6));
        // Global: (2 + 1 + 3) / 10; min/max/current read the values as they are.
        assert!(close(s.global_mean(), 0.6));
        assert_eq!(s.count(), 10);
        assert_eq!((s.min(None).unwrap(), s.max(None).unwrap(), s.current()), (1.0, 3.0, 3.0));
    }

    #[test]
    fn state_round_trip_and_trimming() {
        let mut b = LogBuffer::new(4);
        for i in 0..6 {
            b.update("a", i as f64, 2).unwrap();
        }
        b.update("b", 7.0, 1).unwrap();
        let state = b.get("a").unwrap().state();
        let mut c = LogBuffer::new(4);
        c.load_key_state("a", state.clone()).unwrap();
        assert_eq!(c.get("a").unwrap().state(), state);
        let mut small = LogBuffer::new(2);
        small.load_key_state("a", state.clone()).unwrap();
        assert_eq!(small.get("a").unwrap().state().values, vec![4.0, 5.0]);
        assert!(close(small.get("a").unwrap().global_mean(), 15.0 / 12.0));
        let bad = KeyState { values: vec![1.0], counts: vec![], global_sum: 0.0, global_count: 0 };
        assert!(matches!(small.load_key_state("z", bad), Err(LogBufferError::BadState(_))));
        assert_eq!(b.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn counts_are_checked_and_never_wrap() {
        let mut b = LogBuffer::new(4);
        assert_eq!(b.update("x", 1.0, -1), Err(LogBufferError::BadCount(-1)));
        assert!(!b.contains("x"));
        b.update("x", 1.0, 1 << 62).unwrap();
        b.update("x", 1.0, 1 << 62).unwrap();
        b.update("x", 1.0, 1 << 62).unwrap();
        let s = b.get("x").unwrap();
        assert_eq!(s.count(), i64::MAX);
        assert!(s.global_mean() > 0.0);
        assert!(s.mean(None).unwrap() > 0.0);
        b.update("z", 2.0, 0).unwrap(); // a weightless entry is allowed
        assert!(b.get("z").unwrap().mean(None).unwrap().is_nan());
        let bad = KeyState { values: vec![1.0], counts: vec![-2], global_sum: 0.0, global_count: 0 };
        assert!(matches!(b.load_key_state("y", bad), Err(LogBufferError::BadState(_))));
    }
}
