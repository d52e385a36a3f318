//! A latency histogram that adds up: log-spaced bins of 2 % relative width
//! (the mapping of DDSketch), so counts stored per pair and minute, or per
//! 5-second bucket, merge into the percentiles of any window. A percentile
//! read from the merged bins is within 2 % of the true one, at any scale
//! from a millisecond to a day.

use std::collections::BTreeMap;

/// The largest relative error of a percentile.
pub const RELATIVE_ERROR: f64 = 0.02;

/// Latencies this long or longer (about 28 hours) share the last bin.
const MAX_BIN: u16 = 500;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// The bin a latency falls in: 0 holds 0 ms, bin `k + 1` holds
/// (γ^(k−1), γ^k] ms.
pub fn bin(ms: u64) -> u16 {
    if ms == 0 {
        return 0;
    }
    let k = ((ms as f64).ln() / gamma().ln()).ceil().max(0.0);
    // Saturating: a latency past the last bin is counted in it.
    (k as u64 + 1).min(u64::from(MAX_BIN)) as u16
}

/// The value a bin stands for: the one within 2 % of all it holds.
fn value(bin: u16) -> f64 {
    if bin == 0 {
        return 0.0;
    }
    let gamma = gamma();
    2.0 * gamma.powi(i32::from(bin) - 1) / (gamma + 1.0)
}

/// Counts per bin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    bins: BTreeMap<u16, u64>,
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Histogram {
    pub fn record(&mut self, ms: u64) {
        self.add(bin(ms), 1);
    }

    /// Adds `count` to a bin, as stored; a bin past the last is the last.
    pub fn add(&mut self, bin: u16, count: u64) {
        if count > 0 {
            *self.bins.entry(bin.min(MAX_BIN)).or_insert(0) += count;
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bin, count) in &other.bins {
            self.add(*bin, *count);
        }
    }

    /// Each bin with its count, lowest first.
    pub fn bins(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.bins.iter().map(|(bin, count)| (*bin, *count))
    }

    pub fn count(&self) -> u64 {
        self.bins.values().sum()
    }

    /// The latency `q` (0 to 1) of the samples are at or under, in ms;
    /// `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        // The rank of the sample wanted, counting from 0: the nearest-rank
        // definition, so p95 of 20 samples is the 19th.
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).clamp(1, count) - 1;
        let mut seen = 0;
        for (bin, n) in &self.bins {
            seen += n;
            if seen > rank {
                return Some(value(*bin));
            }
        }
        self.bins.keys().next_back().map(|bin| value(*bin))
    }

    pub fn percentiles(&self) -> Option<Percentiles> {
        Some(Percentiles {
            count: self.count(),
            p50_ms: self.quantile(0.5)?,
            p95_ms: self.quantile(0.95)?,
            p99_ms: self.quantile(0.99)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bin_stands_for_its_latencies_within_the_relative_error() {
        for ms in (1..5_000).chain([10_000, 65_432, 3_600_000, 86_400_000]) {
            let estimate = value(bin(ms));
            let error = (estimate - ms as f64).abs() / ms as f64;
            assert!(error <= RELATIVE_ERROR + 1e-9, "{ms} ms read as {estimate}");
        }
        assert_eq!(value(bin(0)), 0.0);
        assert_eq!(bin(u64::MAX), MAX_BIN);
    }

    #[test]
    fn merged_histograms_give_the_percentiles_of_all_their_samples() {
        let (mut first, mut second) = (Histogram::default(), Histogram::default());
        for ms in 1..=500 {
            first.record(ms);
        }
        for ms in 501..=1000 {
            second.record(ms);
        }
        first.merge(&second);
        let p = first.percentiles().unwrap();
        assert_eq!(p.count, 1000);
        for (got, want) in [(p.p50_ms, 500.0), (p.p95_ms, 950.0), (p.p99_ms, 990.0)] {
            assert!(
                (got - want).abs() / want <= RELATIVE_ERROR,
                "{got} for {want}"
            );
        }
    }

    #[test]
    fn a_few_slow_samples_show_in_p95_and_p99_only() {
        let mut histogram = Histogram::default();
        for _ in 0..90 {
            histogram.record(200);
        }
        for _ in 0..10 {
            histogram.record(3_000);
        }
        let p = histogram.percentiles().unwrap();
        assert!((p.p50_ms - 200.0).abs() <= 4.0, "{p:?}");
        assert!((p.p95_ms - 3_000.0).abs() <= 60.0, "{p:?}");
        assert!(Histogram::default().percentiles().is_none());
    }

    #[test]
    fn stored_bins_read_back_the_same() {
        let mut histogram = Histogram::default();
        for ms in [0, 5, 5, 1_234, 99_999_999_999] {
            histogram.record(ms);
        }
        let mut again = Histogram::default();
        for (bin, count) in histogram.bins() {
            again.add(bin, count);
        }
        assert_eq!(again, histogram);
        assert_eq!(again.count(), 5);
    }
}
