//! Live counters of a running handler, for whoever watches it work.
//!
//! The per-invocation [`crate::InvocationSummary`] arrives when an
//! invocation ends, which can be seconds after its records were consumed
//! when Firehose throttles; a run that plots throughput every second needs
//! the counts as they happen. [`Live`] is a set of atomic counters the
//! handler and its sender bump as they go (consumed at the start of an
//! invocation, each `PutRecordBatch` answer as it arrives), plus
//! histograms of call latency and of accept latency (a record's Kafka
//! timestamp to the end of the calls that got it accepted). A sampler reads it whenever it likes; the
//! counters only grow.
//!
//! A watcher that must know *which* records are done (a drain that counts
//! each record once, however often it was redelivered) asks for
//! [`Live::tracking_records`]: each succeeded invocation then also appends
//! its records' (partition, offset) to a list the watcher takes with
//! [`Live::take_completed`].
//!
//! Cost: a few relaxed atomic adds per call and per invocation, and one
//! short mutex hold per call for the histogram; nothing per record unless
//! records are tracked (then 16 bytes each until taken).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Counters of one handler, shared with a sampler.
#[derive(Debug)]
pub struct Live {
    /// Records handed to the handler (every invocation, retried ones again).
    pub consumed: AtomicU64,
    /// Records of invocations that succeeded: done with, one way or another.
    pub completed: AtomicU64,
    /// Records Firehose answered with a `RecordId`.
    pub accepted: AtomicU64,
    /// Bytes of those records.
    pub accepted_bytes: AtomicU64,
    /// Bytes Firehose bills for those records: each rounded up to the next
    /// 5 KB ([`mskbench_core::cost::billed_record_bytes`]).
    pub accepted_billed_bytes: AtomicU64,
    /// Records written to the dead-letter destination.
    pub dead_lettered: AtomicU64,
    /// `PutRecordBatch` calls, first tries and retries.
    pub calls: AtomicU64,
    /// Calls that were retries.
    pub retry_calls: AtomicU64,
    /// Records sent again in retry calls.
    pub resent_records: AtomicU64,
    /// Records answered `ServiceUnavailableException` inside an HTTP 200.
    pub throttled_records: AtomicU64,
    /// Whole calls refused with `ServiceUnavailableException`.
    pub throttled_calls: AtomicU64,
    /// Invocations that returned an error (their batch comes back).
    pub failed_invocations: AtomicU64,
    /// Invocations started (each adds its records to `consumed`).
    pub invocations: AtomicU64,
    /// Milliseconds the invocations that ended took, summed (each at
    /// least 1): what Lambda bills as duration, to within 1 ms each.
    pub invocation_ms_total: AtomicU64,
    /// Whether call latencies are being recorded (off during a warm-up).
    pub measuring: AtomicBool,
    call_latency_us: Mutex<Histogram<u64>>,
    /// ms from each accepted record's Kafka timestamp to the end of the
    /// `PutRecordBatch` calls of its invocation, every phase.
    accept_latency_ms: Mutex<Histogram<u64>>,
    /// ms each invocation took, start to return, every phase.
    invocation_ms: Mutex<Histogram<u64>>,
    /// (partition, offset) of the records of succeeded invocations, when tracked.
    completed_records: Mutex<Option<Vec<(i32, i64)>>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            consumed: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            accepted_bytes: AtomicU64::new(0),
            accepted_billed_bytes: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            retry_calls: AtomicU64::new(0),
            resent_records: AtomicU64::new(0),
            throttled_records: AtomicU64::new(0),
            throttled_calls: AtomicU64::new(0),
            failed_invocations: AtomicU64::new(0),
            invocations: AtomicU64::new(0),
            invocation_ms_total: AtomicU64::new(0),
            measuring: AtomicBool::new(true),
            call_latency_us: Mutex::new(new_histogram()),
            accept_latency_ms: Mutex::new(new_histogram()),
            invocation_ms: Mutex::new(new_histogram()),
            completed_records: Mutex::new(None),
        }
    }
}

/// A latency histogram in microseconds, 1 µs to an hour, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Live {
    /// Counters that also keep the (partition, offset) of every record of
    /// every succeeded invocation, for [`Live::take_completed`].
    pub fn tracking_records() -> Live {
        let live = Live::default();
        *live.completed_lock() = Some(Vec::new());
        live
    }

    fn completed_lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<(i32, i64)>>> {
        self.completed_records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether records are tracked ([`Live::tracking_records`]).
    pub fn tracks_records(&self) -> bool {
        self.completed_lock().is_some()
    }

    /// Notes `records` (partition, offset) as done with, when records are
    /// tracked: the handler after a succeeded invocation, and whatever
    /// settles records without it (a record the mapping dead-letters itself).
    pub fn complete_records(&self, records: impl IntoIterator<Item = (i32, i64)>) {
        if let Some(done) = self.completed_lock().as_mut() {
            done.extend(records);
        }
    }

    /// Moves the records completed since the last call into `into`.
    pub fn take_completed(&self, into: &mut Vec<(i32, i64)>) {
        if let Some(done) = self.completed_lock().as_mut() {
            into.append(done);
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records the latency of one `PutRecordBatch` call (while measuring).
    pub(crate) fn call_took(&self, latency: Duration) {
        if self.measuring.load(Ordering::Relaxed) {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
            let mut h = self.call_latency_us.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            h.saturating_record(us);
        }
    }

    /// The call latencies recorded so far, in microseconds.
    pub fn call_latency_us(&self) -> Histogram<u64> {
        self.call_latency_us.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records, at `now_ms` (epoch ms), the accept latency of records with
    /// the Kafka timestamps `created_ms` (absent ones, -1, are skipped).
    /// One lock per invocation, every phase.
    pub(crate) fn records_accepted(&self, now_ms: i64, created_ms: impl Iterator<Item = i64>) {
        let mut h = self.accept_latency_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for created in created_ms.filter(|&c| c >= 0) {
            h.saturating_record(u64::try_from(now_ms.saturating_sub(created)).unwrap_or(0).max(1));
        }
    }

    /// Records how long one invocation took, start to return.
    pub(crate) fn invocation_took(&self, ms: u64) {
        Live::add(&self.invocation_ms_total, ms.max(1));
        let mut h = self.invocation_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        h.saturating_record(ms.max(1));
    }

    /// The invocation durations recorded so far, in milliseconds, every phase.
    pub fn invocation_ms(&self) -> Histogram<u64> {
        self.invocation_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The accept latencies recorded so far, in milliseconds: from a
    /// record's Kafka timestamp to the end of its invocation's
    /// `PutRecordBatch` calls that got it accepted — the live part of the
    /// end-to-end latency, before Firehose buffers it into an object.
    pub fn accept_latency_ms(&self) -> Histogram<u64> {
        self.accept_latency_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// A consistent-enough copy of the counters (each read once, relaxed).
    pub fn snapshot(&self) -> LiveSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LiveSnapshot {
            consumed: get(&self.consumed),
            completed: get(&self.completed),
            accepted: get(&self.accepted),
            accepted_bytes: get(&self.accepted_bytes),
            accepted_billed_bytes: get(&self.accepted_billed_bytes),
            dead_lettered: get(&self.dead_lettered),
            calls: get(&self.calls),
            retry_calls: get(&self.retry_calls),
            resent_records: get(&self.resent_records),
            throttled_records: get(&self.throttled_records),
            throttled_calls: get(&self.throttled_calls),
            failed_invocations: get(&self.failed_invocations),
            invocations: get(&self.invocations),
            invocation_ms_total: get(&self.invocation_ms_total),
        }
    }
}

/// The counters of a [`Live`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// See [`Live::consumed`].
    pub consumed: u64,
    /// See [`Live::completed`].
    pub completed: u64,
    /// See [`Live::accepted`].
    pub accepted: u64,
    /// See [`Live::accepted_bytes`].
    pub accepted_bytes: u64,
    /// See [`Live::accepted_billed_bytes`].
    pub accepted_billed_bytes: u64,
    /// See [`Live::dead_lettered`].
    pub dead_lettered: u64,
    /// See [`Live::calls`].
    pub calls: u64,
    /// See [`Live::retry_calls`].
    pub retry_calls: u64,
    /// See [`Live::resent_records`].
    pub resent_records: u64,
    /// See [`Live::throttled_records`].
    pub throttled_records: u64,
    /// See [`Live::throttled_calls`].
    pub throttled_calls: u64,
    /// See [`Live::failed_invocations`].
    pub failed_invocations: u64,
    /// See [`Live::invocations`].
    pub invocations: u64,
    /// See [`Live::invocation_ms_total`].
    pub invocation_ms_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_latency_runs_from_the_kafka_timestamp_and_skips_absent_ones() {
        let live = Live::default();
        live.measuring.store(false, Ordering::Relaxed);
        live.records_accepted(10_000, [9_880, 9_550, -1, 10_000].into_iter());
        let h = live.accept_latency_ms();
        // Every phase: not gated by `measuring`, unlike the call latency.
        assert_eq!(h.len(), 3);
        assert_eq!((h.min(), h.max()), (1, 450));
        assert!(live.call_latency_us().is_empty());
    }
}
