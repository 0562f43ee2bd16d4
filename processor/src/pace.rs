//! The sender's pacer: core's [`Pacer`] on the process clock, shared by
//! every invocation of one handler.
//!
//! Firehose's quota is per stream, so the pacer is per stream too: one
//! lock held for a few integer operations per call, by every concurrent
//! `PutRecordBatch` of the handler. Core does the arithmetic with the
//! clock passed in; this shell reads [`Instant`] and turns nanoseconds
//! into waits. The sender ([`crate::service`]) sleeps the wait, capped so
//! that the call still ends by the invocation's `stop_by`: past that it
//! sends unpaced rather than lose the records (pacing delays, it never
//! drops).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mskbench_core::{Pacer, Pacing, Quota};

/// Pacing settings and the quota they are shares of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paced {
    /// Token bucket or AIMD, and their shares.
    pub pacing: Pacing,
    /// The stream's Direct PUT quota (`PACING_QUOTA`).
    pub quota: Quota,
}

impl std::fmt::Display for Paced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.pacing, self.quota)
    }
}

/// One stream's pacer behind a lock.
#[derive(Debug)]
pub(crate) struct SharedPacer {
    origin: Instant,
    pacer: Mutex<Pacer>,
}

impl SharedPacer {
    /// A pacer with full buckets now.
    pub(crate) fn new(paced: Paced) -> SharedPacer {
        SharedPacer { origin: Instant::now(), pacer: Mutex::new(Pacer::new(paced.quota, paced.pacing, 0)) }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves a call of `records` records and `bytes` bytes: how long to
    /// wait before sending it.
    pub(crate) fn reserve(&self, records: usize, bytes: usize) -> Duration {
        let now = self.nanos(Instant::now());
        Duration::from_nanos(self.lock().reserve(records as u64, bytes as u64, now))
    }

    /// The answer to a call sent at `sent`: whether anything was throttled.
    pub(crate) fn answered(&self, throttled: bool, sent: Instant) {
        let (sent, now) = (self.nanos(sent), self.nanos(Instant::now()));
        self.lock().answered(throttled, sent, now);
    }

    /// The share of the quota paced at now.
    #[cfg(test)]
    pub(crate) fn share(&self) -> f64 {
        self.lock().share()
    }
}

/// The wait to sleep before a call: the pacer's, cut so that the call
/// (`call_timeout` at most) still ends within `time_left`. Returns the
/// wait and whether it was cut.
pub(crate) fn capped(wait: Duration, time_left: Duration, call_timeout: Duration) -> (Duration, bool) {
    let most = time_left.saturating_sub(call_timeout);
    if wait > most { (most, true) } else { (wait, false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_cut_so_the_call_ends_in_time() {
        let s = Duration::from_secs;
        assert_eq!(capped(s(2), s(60), s(10)), (s(2), false));
        assert_eq!(capped(s(55), s(60), s(10)), (s(50), true));
        assert_eq!(capped(s(1), s(5), s(10)), (Duration::ZERO, true), "no time to wait: send now");
        assert_eq!(capped(Duration::ZERO, s(5), s(10)), (Duration::ZERO, false));
    }

    #[test]
    fn the_shared_pacer_reserves_on_the_process_clock() {
        use mskbench_core::Quota;
        let quota = Quota { records_per_sec: 100, requests_per_sec: 100, bytes_per_sec: 1 << 20 };
        let p = SharedPacer::new(Paced { pacing: Pacing::TokenBucket { share: 0.5 }, quota });
        assert_eq!(p.reserve(50, 50), Duration::ZERO, "one second of burst at 50 records/s");
        let wait = p.reserve(50, 50);
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        p.answered(true, Instant::now());
        assert_eq!(p.share(), 0.5, "the token bucket does not adapt");
    }
}
