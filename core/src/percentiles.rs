//! A latency distribution summarised as five numbers, in milliseconds.
//!
//! The one type both the producer's `--stats-json` report and a run's
//! `result.json` use for a distribution, so the two documents cannot drift
//! apart. Pure data: the histograms it is read from live in the crates that
//! record them.

use serde::{Deserialize, Serialize};

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
    /// The largest value recorded.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles with their key names, in order.
    pub fn named(&self) -> [(&'static str, f64); 5] {
        [("p50", self.p50), ("p90", self.p90), ("p99", self.p99), ("p999", self.p999), ("max", self.max)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_follows_the_json_keys() {
        let p = Percentiles { p50: 1.0, p90: 2.0, p99: 3.0, p999: 4.0, max: 5.0 };
        let json = serde_json::to_value(p).unwrap();
        for (name, value) in p.named() {
            assert_eq!(json[name].as_f64(), Some(value), "{name}");
        }
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5);
    }
}
