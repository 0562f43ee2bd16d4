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
//! prints nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mskbench_processor::{Live, LiveSnapshot};
use mskbench_producer::Control;
use mskbench_reports::Sample;
use tokio::sync::watch;

use crate::Observer;

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
        e2e_ms: None,
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
) -> Vec<Sample> {
    let mut series = Vec::new();
    let mut before = read(&control, &live);
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
        let s = sample(t, &now, &before);
        before = now;
        t += 1;
        observer.sample(&current, &s, t);
        series.push(s);
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
        assert_eq!((s.bytes, s.in_flight), (18_000, 50));
    }
}
