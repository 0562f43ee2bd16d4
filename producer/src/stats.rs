//! Latency recording and the run's report.
//!
//! Three distributions, each an HdrHistogram in microseconds (1 µs to 1 h,
//! 3 significant digits, values past 1 h clamp):
//! - **ack latency** from the *intended* send time to the delivery report —
//!   the number a user of the pipeline feels, corrected for coordinated
//!   omission: a sender that stalls cannot hide the stall;
//! - ack latency from the *actual* send time — what the broker path costs;
//! - **send delay**, actual − intended send time: how far behind the
//!   schedule the sender ran.
//!
//! Each task records into its own histograms (the send loop: send delay;
//! librdkafka's delivery thread: acks) and `Histograms::merge` adds them
//! at the end, so recording never contends. [`Report`] is the summary and
//! the `--stats-json` document; its first keys are the contract in
//! DESIGN.md. Cost: recording is a few nanoseconds, no allocation.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest value a histogram holds, in microseconds (one hour).
pub(crate) const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
#[allow(clippy::expect_used)]
pub(crate) fn new_histogram() -> Histogram<u64> {
    // Proven infallible: constant bounds that satisfy hdrhistogram's rules
    // (1 ≤ low, high ≥ 2·low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

use mskbench_core::Percentiles;

use crate::fleet::{Clock, PartitionRange, WorkerInfo};

/// Percentiles of `h` in milliseconds, its values being `per_ms` to a
/// millisecond (1000 for the microsecond histograms here); all zero when empty.
pub fn percentiles(h: &Histogram<u64>, per_ms: f64) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |v: u64| v as f64 / per_ms;
    Percentiles {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

/// The three distributions of a run.
#[derive(Debug, Clone)]
pub(crate) struct Histograms {
    /// Ack latency from the intended send time (measured records).
    pub(crate) ack_from_intended: Histogram<u64>,
    /// Ack latency from the actual send time (measured records).
    pub(crate) ack_from_sent: Histogram<u64>,
    /// Actual − intended send time (measured records).
    pub(crate) send_delay: Histogram<u64>,
}

impl Default for Histograms {
    fn default() -> Self {
        Histograms { ack_from_intended: new_histogram(), ack_from_sent: new_histogram(), send_delay: new_histogram() }
    }
}

impl Histograms {
    /// Adds `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &Histograms) {
        // Same bounds on both sides: adding cannot fail; a clamp-free add is
        // the only error hdrhistogram can report and it does not apply here.
        let _ = self.ack_from_intended.add(&other.ack_from_intended);
        let _ = self.ack_from_sent.add(&other.ack_from_sent);
        let _ = self.send_delay.add(&other.send_delay);
    }
}

/// The summary of a run; `--stats-json` writes it as is.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Records the producer tried to send (handed to librdkafka or refused by it).
    pub sent: u64,
    /// Records the broker acknowledged.
    pub acked: u64,
    /// Records that failed, refused at once or reported failed.
    pub failed: u64,
    /// Target rate over the measured window (records/s).
    pub rate_target: f64,
    /// Rate actually sent over the measured window (records/s); at `max`,
    /// where sending is only enqueueing, the window runs to the last
    /// delivery report, so this is the rate the broker took them at.
    pub rate_achieved: f64,
    /// Ack latency from the intended send time (coordinated-omission corrected).
    pub ack_latency_ms: Percentiles,
    /// Actual − intended send time.
    pub send_delay_ms: Percentiles,
    /// Ack latency from the actual send time.
    pub ack_latency_from_send_ms: Percentiles,
    /// Failed records by reason (librdkafka error names).
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Times the send loop waited because librdkafka's queue was full.
    pub queue_full_waits: u64,
    /// sent − acked − failed: zero when every record is accounted for.
    pub unaccounted: u64,
    /// Records inside the warm-up, excluded from rates and percentiles.
    pub warmup_records: u64,
    /// Records in the measured window.
    pub measured_records: u64,
    /// Length of the measured window in seconds (at `max`, to the last
    /// delivery report).
    pub measured_secs: f64,
    /// Wall time from the first send to the last delivery report, seconds.
    pub elapsed_secs: f64,
    /// Seed of the record generator.
    pub seed: u64,
    /// Topic written to.
    pub topic: String,
    /// Schema the values were framed with: a Confluent id or a Glue version UUID.
    pub schema: String,
    /// True when the run stopped early (Ctrl-C).
    pub interrupted: bool,
    /// Who sent: this worker's index, the fleet's size and the run's seed
    /// (`seed` above is the worker's own, derived from it).
    #[serde(default)]
    pub worker: WorkerInfo,
    /// The schedule's time zero and measured window on this worker's wall
    /// clock, and how late it started: what `mskbench merge` lines the
    /// workers up by.
    #[serde(default)]
    pub clock: Clock,
    /// Where the acknowledged records landed: per partition, the lowest and
    /// highest offset and the count.
    #[serde(default)]
    pub partitions: Vec<PartitionRange>,
    /// The measured records' three histograms (tags `ack_latency`,
    /// `ack_latency_from_send`, `send_delay`; µs) as the text of an
    /// HdrHistogram interval log: what `mskbench merge` adds exactly.
    #[serde(default)]
    pub histograms: String,
    /// Each record's coordinates and expected digest, when the run kept
    /// them ([`crate::ProduceConfig::keep_records`]); not in `--stats-json`.
    #[serde(skip)]
    pub records: Option<std::sync::Arc<crate::send::Sent>>,
}

impl Report {
    /// The final summary, as printed on stderr.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sent {} · acked {} · failed {} · unaccounted {}{}",
            self.sent,
            self.acked,
            self.failed,
            self.unaccounted,
            if self.interrupted { " (interrupted)" } else { "" }
        );
        for (reason, n) in &self.failed_by_reason {
            let _ = writeln!(s, "  failed: {reason}: {n}");
        }
        let _ = writeln!(
            s,
            "rate: target {:.1}/s, achieved {:.1}/s over {:.2} s measured ({} warm-up records excluded); queue-full waits {}",
            self.rate_target, self.rate_achieved, self.measured_secs, self.warmup_records, self.queue_full_waits
        );
        for (name, p) in [
            ("ack latency (from intended send)", &self.ack_latency_ms),
            ("ack latency (from actual send)  ", &self.ack_latency_from_send_ms),
            ("send delay                      ", &self.send_delay_ms),
        ] {
            let _ = writeln!(
                s,
                "{name} ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                p.p50, p.p90, p.p99, p.p999, p.max
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_milliseconds() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us * 1000).unwrap();
        }
        let p = percentiles(&h, 1000.0);
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max - 1000.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn report_json_has_the_contract_keys() {
        let json = serde_json::to_value(Report::default()).unwrap();
        for key in ["sent", "acked", "failed", "rate_target", "rate_achieved", "ack_latency_ms", "send_delay_ms"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(json["ack_latency_ms"].get(key).is_some(), "{key}");
            assert!(json["send_delay_ms"].get(key).is_some(), "{key}");
        }
    }
}
