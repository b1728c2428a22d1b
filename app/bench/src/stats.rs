//! Latency samples and their percentiles: an exact list for the latency harnesses (tens of
//! thousands of samples), and a lock-free log-linear histogram for the load tool (millions
//! of samples from thousands of tasks).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Every sample kept, in nanoseconds; percentiles by nearest rank.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    ns: Vec<u64>,
}

/// The usual summary of a set of samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Samples { ns: Vec::with_capacity(n) }
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.ns.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Samples) {
        self.ns.extend_from_slice(&other.ns);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.ns.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.ns.is_empty()
    }

    /// Percentiles (nearest rank) and mean; all zero when empty.
    pub fn summary(&self) -> Summary {
        let mut v = self.ns.clone();
        v.sort_unstable();
        let n = v.len();
        if n == 0 {
            return Summary::default();
        }
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            Duration::from_nanos(v[rank - 1])
        };
        let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
        Summary {
            n,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_nanos(v[n - 1]),
            mean: Duration::from_nanos(u64::try_from(sum / n as u128).unwrap_or(u64::MAX)),
        }
    }
}

/// Sub-buckets per power of two: values are kept to within 1/64 (1.6 %).
const SUB: u64 = 64;
const SUB_BITS: u32 = 6;
/// Enough for values up to 2^48 ns (3 days).
const BUCKETS: usize = (48 - SUB_BITS as usize + 1) * SUB as usize + SUB as usize;

/// A histogram of nanosecond values, shared by any number of tasks and threads: recording
/// is one relaxed atomic add. Values are kept to within 1.6 % (log-linear buckets).
#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    fn index(ns: u64) -> usize {
        if ns < SUB {
            return ns as usize;
        }
        // ns = mantissa << e with mantissa in [SUB, 2 SUB).
        let e = 63 - ns.leading_zeros() - SUB_BITS;
        let mantissa = ns >> e;
        ((u64::from(e) + 1) * SUB + (mantissa - SUB)).min(BUCKETS as u64 - 1) as usize
    }

    /// The lowest value that falls in bucket `i` (what a percentile reports).
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let e = i / SUB - 1;
        (i % SUB + SUB) << e
    }

    /// Records one value.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::index(ns)].fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets every value (between a warm-up and a measurement).
    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The value at quantile `q` (0 to 1), to within 1.6 %; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Self::value(i));
            }
        }
        Duration::from_nanos(Self::value(BUCKETS - 1))
    }

    /// The largest value recorded (to within 1.6 %).
    pub fn max(&self) -> Duration {
        self.buckets
            .iter()
            .rposition(|b| b.load(Ordering::Relaxed) > 0)
            .map_or(Duration::ZERO, |i| Duration::from_nanos(Self::value(i)))
    }
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Microseconds, for tables.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip_within_their_precision() {
        for ns in [0u64, 1, 63, 64, 65, 127, 128, 1000, 16_667_000, 1 << 40] {
            let v = Histogram::value(Histogram::index(ns));
            assert!(v <= ns, "{ns} -> {v}");
            assert!(ns - v <= ns / 64 + 1, "{ns} -> {v}");
        }
    }

    #[test]
    fn histogram_quantiles_match_the_exact_ones() {
        let h = Histogram::new();
        let mut s = Samples::default();
        for i in 1..=10_000u64 {
            let d = Duration::from_nanos(i * 997);
            h.record(d);
            s.push(d);
        }
        let exact = s.summary();
        for (q, e) in [(0.5, exact.p50), (0.99, exact.p99)] {
            let got = h.quantile(q).as_nanos() as f64;
            let want = e.as_nanos() as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn samples_use_the_nearest_rank() {
        let mut s = Samples::default();
        for i in 1..=100u64 {
            s.push(Duration::from_micros(i));
        }
        let sum = s.summary();
        assert_eq!(sum.p50, Duration::from_micros(50));
        assert_eq!(sum.p99, Duration::from_micros(99));
        assert_eq!(sum.max, Duration::from_micros(100));
    }
}
