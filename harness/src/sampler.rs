//! Steps 3 and 4, measured: one sample a second while producing and draining.
//!
//! Every second of the run the sampler reads the producer's live counts
//! ([`Control`]) and the processor's ([`Live`]), and keeps the difference
//! from the second before as that second's [`Sample`] (the last one covers
//! what is left, possibly less than a second). The series is the
//! client's view (what the processor sent and Firehose answered), so it is
//! the same whether Firehose is the built-in endpoint or a real one.
//!
//! Each sample and each change of stage goes to the run's [`Observer`] as
//! it happens (the CLI draws a progress bar from them); the library itself
//! prints nothing. After each sample the SLOs marked `abort = true` are
//! checked on the series so far ([`crate::abort`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mskbench_processor::{Live, LiveSnapshot};
use mskbench_producer::Control;
use mskbench_reports::Sample;
use tokio::sync::watch;

use crate::Observer;
use crate::abort::Watch;

/// The stage's name while the run reads its output back.
pub const READ_BACK: &str = "read back";

/// Where the run is: a load phase, the drain, the read-back ([`READ_BACK`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The phase's name, `drain`, …
    pub name: String,
    /// Seconds from the run's start at which this stage began.
    pub starts_at: u64,
    /// Seconds from the run's start at which this stage (or, for a load
    /// phase, the last one) ends: a progress bar's length.
    pub ends_at: u64,
}

/// What a live view shows at the end of one second of the run: that
/// second's [`Sample`], the counts since the start, and the latency
/// histograms, whole and of the last second alone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Seconds since the run's start (the sample covers `[t - 1, t)`).
    pub t: u64,
    /// Where the run is.
    pub stage: Stage,
    /// The last second's counts.
    pub sample: Sample,
    /// Records the producer handed to librdkafka, since the start.
    pub sent: u64,
    /// Records the broker acknowledged, since the start.
    pub acked: u64,
    /// The processor's counters, since the start.
    pub live: LiveSnapshot,
    /// `PutRecordBatch` latency in µs, measured phases, since the start.
    pub put_latency_us: Histogram<u64>,
    /// …and of the last second's calls alone.
    pub put_latency_us_last: Histogram<u64>,
    /// Accept latency in ms (a record's Kafka timestamp to the end of the
    /// calls that got it accepted), every phase, since the start.
    pub accept_latency_ms: Histogram<u64>,
    /// …and of the last second's accepted records alone.
    pub accept_latency_ms_last: Histogram<u64>,
}

impl Snapshot {
    /// Records acknowledged by the broker and not yet handed to an
    /// invocation: the event source mapping's lag (OffsetLag), estimated
    /// from counts (a redelivered batch counts again, so it can read low).
    pub fn lag(&self) -> u64 {
        self.acked.saturating_sub(self.live.consumed)
    }
}

/// The cumulative histograms of the second before, to subtract.
struct Histograms {
    put_us: Histogram<u64>,
    accept_ms: Histogram<u64>,
    invocation_ms: Histogram<u64>,
}

impl Histograms {
    fn read(live: &Live) -> Histograms {
        Histograms {
            put_us: live.call_latency_us(),
            accept_ms: live.accept_latency_ms(),
            invocation_ms: live.invocation_ms(),
        }
    }
}

/// The percentiles of `h` in ms (`per_ms` of its units a millisecond), if it holds any.
fn percentiles_of(h: &Histogram<u64>, per_ms: f64) -> Option<mskbench_reports::Percentiles> {
    (!h.is_empty()).then(|| mskbench_producer::stats::percentiles(h, per_ms))
}

/// `now - before` (`before` only ever grows into `now`); empty if they do
/// not fit (never, from one `Live`).
fn last(now: &Histogram<u64>, before: &Histogram<u64>) -> Histogram<u64> {
    let mut h = now.clone();
    if h.subtract(before).is_err() {
        h.reset();
    }
    h
}

/// Counts of both ends at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    produced: u64,
    live: LiveSnapshot,
}

fn read(control: &Control, live: &Live) -> Reading {
    Reading { produced: control.acked(), live: live.snapshot() }
}

fn sample(t: u64, now: &Reading, before: &Reading) -> Sample {
    let (n, b) = (&now.live, &before.live);
    Sample {
        t,
        produced: now.produced.saturating_sub(before.produced),
        consumed: n.consumed - b.consumed,
        firehose_calls: n.calls - b.calls,
        records_accepted: n.accepted - b.accepted,
        records_throttled: n.throttled_records - b.throttled_records,
        throttled_calls: n.throttled_calls - b.throttled_calls,
        bytes: n.accepted_bytes - b.accepted_bytes,
        retries: n.resent_records - b.resent_records,
        in_flight: n.consumed.saturating_sub(n.completed),
        lag: now.produced.saturating_sub(n.consumed),
        invocations: n.invocations - b.invocations,
        ..Sample::default()
    }
}

/// Samples every second until `done` turns true; returns the series.
pub(crate) async fn run(
    start: Instant,
    control: Control,
    live: Arc<Live>,
    mut stage: watch::Receiver<Stage>,
    mut done: watch::Receiver<bool>,
    observer: Arc<dyn Observer>,
    aborts: Watch,
) -> Vec<Sample> {
    let mut series = Vec::new();
    let mut before = read(&control, &live);
    let mut histograms = Histograms::read(&live);
    let mut t = 0u64;
    let mut current = stage.borrow_and_update().clone();
    observer.stage(&current);
    loop {
        let tick = start + Duration::from_secs(t + 1);
        tokio::select! {
            _ = tokio::time::sleep_until(tick.into()) => {}
            _ = done.changed() => {}
            changed = stage.changed() => {
                if changed.is_ok() {
                    current = stage.borrow_and_update().clone();
                    observer.stage(&current);
                }
                continue;
            }
        }
        // The last sample may cover less than a second: kept, so that the
        // series adds up to the totals.
        let finished = *done.borrow();
        let now = read(&control, &live);
        let mut s = sample(t, &now, &before);
        before = now;
        t += 1;
        let read = Histograms::read(&live);
        s.invocation_ms = percentiles_of(&last(&read.invocation_ms, &histograms.invocation_ms), 1.0);
        let put_last = last(&read.put_us, &histograms.put_us);
        s.put_record_batch_ms = percentiles_of(&put_last, 1000.0);
        let snapshot = Snapshot {
            t,
            stage: current.clone(),
            sample: s.clone(),
            sent: control.sent(),
            acked: now.produced,
            live: now.live,
            put_latency_us_last: put_last,
            accept_latency_ms_last: last(&read.accept_ms, &histograms.accept_ms),
            put_latency_us: read.put_us.clone(),
            accept_latency_ms: read.accept_ms.clone(),
        };
        histograms = read;
        observer.sample(&snapshot);
        series.push(s);
        if let Some(a) = aborts.check(&series, t) {
            observer.warn(&format!(
                "SLO `{}` (abort = true) failed at t = {t} s, at {} over the run so far: stopping the load; \
                 the run drains and accounts what was produced",
                a.slo, a.value
            ));
        }
        if finished {
            break;
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_the_difference_of_two_readings() {
        let before = Reading {
            produced: 100,
            live: LiveSnapshot { consumed: 50, completed: 40, accepted: 30, calls: 2, ..LiveSnapshot::default() },
        };
        let now = Reading {
            produced: 300,
            live: LiveSnapshot {
                consumed: 250,
                completed: 200,
                accepted: 180,
                accepted_bytes: 18_000,
                calls: 6,
                throttled_records: 20,
                throttled_calls: 1,
                resent_records: 20,
                ..LiveSnapshot::default()
            },
        };
        let s = sample(4, &now, &before);
        assert_eq!((s.t, s.produced, s.consumed, s.records_accepted), (4, 200, 200, 150));
        assert_eq!((s.firehose_calls, s.records_throttled, s.throttled_calls, s.retries), (4, 20, 1, 20));
        assert_eq!((s.bytes, s.in_flight, s.lag), (18_000, 50, 50));
    }
}
