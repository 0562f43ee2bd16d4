//! Client-side pacing of `PutRecordBatch` calls under a stream's quota.
//!
//! Once Firehose throttles, resending harder only spends more of the quota
//! on refusals; holding calls back until the quota has room does not. A
//! [`Pacer`] says how long a call must wait before it goes out, so that the
//! calls of one sender stay under a share of the stream's [`Quota`]:
//!
//! - **token bucket** ([`Pacing::TokenBucket`]): three buckets — records,
//!   requests and bytes per second — refilled at `share` of the quota, each
//!   holding one second of its rate (the burst Firehose itself allows). A
//!   call reserves one request, its records and its bytes; when the buckets
//!   do not hold them, it waits until they have been earned back. Whichever
//!   of the three limits is tightest sets the pace.
//! - **adaptive** ([`Pacing::Aimd`]): the same buckets, at a share that
//!   moves as TCP's congestion window does on loss: it grows by `increase`
//!   (a fraction of the quota) for every second without a throttled answer,
//!   up to the whole quota, and is multiplied by `decrease` on a throttled
//!   answer, down to `min_share`. A throttle answering a call sent before
//!   the last decrease does not decrease again: those calls left at the old
//!   rate, and counting each would collapse the rate for one overload.
//!
//! Pacing delays and never drops: [`Pacer::reserve`] always admits the call
//! and returns a wait, reservations queue behind one another, and the
//! caller decides what a wait longer than its time left means (the
//! processor sends at its deadline unpaced rather than lose the records).
//!
//! No clock here: the caller passes "now" as nanoseconds since a fixed
//! origin of its own. Cost: a few integer operations per call.

use std::fmt;

use crate::quota::{Quota, TokenBucket};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// How calls are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// A fixed share of the quota.
    TokenBucket {
        /// Fraction of the quota used, `0 < share ≤ 1`.
        share: f64,
    },
    /// Additive increase, multiplicative decrease on throttled answers.
    Aimd(Aimd),
}

/// The adaptive pacer's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aimd {
    /// The share it starts at, `min_share ≤ share ≤ 1`.
    pub share: f64,
    /// Added to the share for every second without a throttled answer, `0 < increase ≤ 1`.
    pub increase: f64,
    /// Factor the share is multiplied by on a throttled answer, `0 < decrease < 1`.
    pub decrease: f64,
    /// The share never goes below this, `0 < min_share ≤ 1`.
    pub min_share: f64,
}

impl Aimd {
    /// Default increase per second: 5% of the quota.
    pub const INCREASE: f64 = 0.05;
    /// Default decrease on a throttle: halve, as TCP Reno does.
    pub const DECREASE: f64 = 0.5;
    /// Default floor: 5% of the quota.
    pub const MIN_SHARE: f64 = 0.05;

    /// The defaults, starting at `share`.
    pub fn starting_at(share: f64) -> Aimd {
        Aimd { share, increase: Self::INCREASE, decrease: Self::DECREASE, min_share: Self::MIN_SHARE }
    }
}

/// Pacing settings out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid pacing: {0}")]
pub struct InvalidPacing(pub String);

impl Pacing {
    /// These settings, if every value is in its range (see the fields).
    ///
    /// # Errors
    /// [`InvalidPacing`] naming the value out of range.
    pub fn validated(self) -> Result<Self, InvalidPacing> {
        let fraction = |name: &str, v: f64| {
            if v > 0.0 && v <= 1.0 { Ok(()) } else { Err(InvalidPacing(format!("{name} {v} is not in (0, 1]"))) }
        };
        match self {
            Pacing::TokenBucket { share } => fraction("share", share)?,
            Pacing::Aimd(a) => {
                fraction("share", a.share)?;
                fraction("increase", a.increase)?;
                fraction("min_share", a.min_share)?;
                if !(a.decrease > 0.0 && a.decrease < 1.0) {
                    return Err(InvalidPacing(format!("decrease {} is not in (0, 1)", a.decrease)));
                }
                if a.min_share > a.share {
                    return Err(InvalidPacing(format!("min_share {} is above share {}", a.min_share, a.share)));
                }
            }
        }
        Ok(self)
    }

    /// The share the pacer starts at.
    pub fn initial_share(&self) -> f64 {
        match *self {
            Pacing::TokenBucket { share } => share,
            Pacing::Aimd(a) => a.share,
        }
    }

    /// `token-bucket` or `aimd`, as settings and logs name them.
    pub fn name(&self) -> &'static str {
        match self {
            Pacing::TokenBucket { .. } => "token-bucket",
            Pacing::Aimd(_) => "aimd",
        }
    }
}

impl fmt::Display for Pacing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pacing::TokenBucket { share } => write!(f, "token-bucket at {share} of the quota"),
            Pacing::Aimd(a) => write!(
                f,
                "aimd from {} of the quota (+{}/s, ×{} on a throttle, at least {})",
                a.share, a.increase, a.decrease, a.min_share
            ),
        }
    }
}

/// One sender's pacer for one stream.
#[derive(Debug, Clone)]
pub struct Pacer {
    quota: Quota,
    pacing: Pacing,
    share: f64,
    records: TokenBucket,
    requests: TokenBucket,
    bytes: TokenBucket,
    /// When the next additive increase is due (adaptive only).
    next_increase: u64,
    /// When the share last decreased (adaptive only).
    last_decrease: Option<u64>,
    decreases: u64,
}

impl Pacer {
    /// A pacer of `quota` per `pacing`, its buckets full at `now_nanos`.
    pub fn new(quota: Quota, pacing: Pacing, now_nanos: u64) -> Pacer {
        let share = pacing.initial_share();
        let bucket = |rate| {
            let rate = scaled(rate, share);
            TokenBucket::new(rate, rate, now_nanos)
        };
        Pacer {
            quota,
            pacing,
            share,
            records: bucket(quota.records_per_sec),
            requests: bucket(quota.requests_per_sec),
            bytes: bucket(quota.bytes_per_sec),
            next_increase: now_nanos.saturating_add(NANOS_PER_SEC),
            last_decrease: None,
            decreases: 0,
        }
    }

    /// The settings.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// The share of the quota the pacer paces at now.
    pub fn share(&self) -> f64 {
        self.share
    }

    /// Times the adaptive pacer lowered its share.
    pub fn decreases(&self) -> u64 {
        self.decreases
    }

    /// The rates paced at now.
    pub fn rates(&self) -> Quota {
        Quota {
            records_per_sec: scaled(self.quota.records_per_sec, self.share),
            requests_per_sec: scaled(self.quota.requests_per_sec, self.share),
            bytes_per_sec: scaled(self.quota.bytes_per_sec, self.share),
        }
    }

    /// Reserves a call of `records` records and `bytes` bytes at
    /// `now_nanos`: returns how many nanoseconds it should wait before it
    /// is sent. The call is always admitted; later reservations queue
    /// behind it.
    pub fn reserve(&mut self, records: u64, bytes: u64, now_nanos: u64) -> u64 {
        self.grow(now_nanos);
        let request = self.requests.reserve(1, now_nanos);
        let records = self.records.reserve(records, now_nanos);
        let bytes = self.bytes.reserve(bytes, now_nanos);
        request.max(records).max(bytes)
    }

    /// The answer to a call sent at `sent_nanos` arrived at `now_nanos`:
    /// `throttled` when Firehose throttled the call or any of its records.
    /// The adaptive pacer lowers its share on the first throttle of calls
    /// sent since its last decrease; the token bucket ignores answers.
    pub fn answered(&mut self, throttled: bool, sent_nanos: u64, now_nanos: u64) {
        let Pacing::Aimd(a) = self.pacing else { return };
        self.grow(now_nanos);
        if !throttled || self.last_decrease.is_some_and(|d| sent_nanos < d) {
            return;
        }
        self.last_decrease = Some(now_nanos);
        self.decreases += 1;
        self.set_share((self.share * a.decrease).max(a.min_share), now_nanos);
        // Growth starts again a full second after the decrease.
        self.next_increase = now_nanos.saturating_add(NANOS_PER_SEC);
    }

    /// Adds the increases due by `now_nanos` (adaptive only).
    fn grow(&mut self, now_nanos: u64) {
        let Pacing::Aimd(a) = self.pacing else { return };
        if now_nanos < self.next_increase {
            return;
        }
        let seconds = (now_nanos - self.next_increase) / NANOS_PER_SEC + 1;
        self.next_increase = self.next_increase.saturating_add(seconds.saturating_mul(NANOS_PER_SEC));
        let share = (self.share + a.increase * seconds as f64).min(1.0);
        if share != self.share {
            self.set_share(share, now_nanos);
        }
    }

    fn set_share(&mut self, share: f64, now_nanos: u64) {
        self.share = share;
        let set = |bucket: &mut TokenBucket, rate| {
            let rate = scaled(rate, share);
            bucket.set_rate(rate, rate, now_nanos);
        };
        set(&mut self.records, self.quota.records_per_sec);
        set(&mut self.requests, self.quota.requests_per_sec);
        set(&mut self.bytes, self.quota.bytes_per_sec);
    }
}

/// `rate × share`, at least 1 (a bucket at 0 would never admit a call).
fn scaled(rate: u64, share: f64) -> u64 {
    ((rate as f64 * share) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = NANOS_PER_SEC;
    const MS: u64 = 1_000_000;

    fn quota() -> Quota {
        Quota { records_per_sec: 1000, requests_per_sec: 100, bytes_per_sec: 100_000 }
    }

    /// Sends `calls` calls of `records` × `size` bytes as fast as the pacer
    /// allows (each at its wait's end) and returns when the last one left.
    fn send_paced(pacer: &mut Pacer, calls: u64, records: u64, size: u64) -> u64 {
        let mut last = 0;
        for _ in 0..calls {
            let wait = pacer.reserve(records, records * size, 0);
            last = last.max(wait);
        }
        last
    }

    #[test]
    fn the_token_bucket_holds_calls_to_its_share_of_the_tightest_limit() {
        // Bytes bind: 200-byte records at 1,000/s would be 200 kB/s, the quota
        // is 100 kB/s, of which half is 50 kB/s: 250 records a second.
        let mut p = Pacer::new(quota(), Pacing::TokenBucket { share: 0.5 }, 0);
        assert_eq!(p.rates().bytes_per_sec, 50_000);
        // 20 calls of 50 records (10 kB each) = 200 kB: one second of burst
        // (50 kB) is held, the other 150 kB take 3 s at 50 kB/s.
        assert_eq!(send_paced(&mut p, 20, 50, 200), 3 * SEC);

        // Requests bind: 1-record calls, quota 100/s, share 0.5: 50 a second.
        let mut p = Pacer::new(quota(), Pacing::TokenBucket { share: 0.5 }, 0);
        assert_eq!(send_paced(&mut p, 150, 1, 1), 2 * SEC, "50 held, 100 more at 50/s");
    }

    #[test]
    fn a_paced_sender_never_exceeds_the_quota_the_stand_in_enforces() {
        use crate::quota::StreamLimiter;
        // One call of 10 records every 5 ms, offered at 2,000 records/s: the
        // quota allows 1,000. Paced at 0.9, Firehose's limiter never refuses.
        let mut pacer = Pacer::new(quota(), Pacing::TokenBucket { share: 0.9 }, 0);
        let mut firehose = StreamLimiter::new(quota(), 0);
        let mut queue_free = 0u64;
        let mut sent = 0u64;
        for i in 0..2_000u64 {
            let offered = i * 5 * MS;
            let now = offered.max(queue_free);
            let at = now + pacer.reserve(10, 10 * 10, now);
            queue_free = at;
            assert!(firehose.admit_call(at), "call {i} throttled at {at}");
            for _ in 0..10 {
                assert!(firehose.admit_record(10), "record of call {i} throttled");
            }
            sent += 10;
        }
        // 20,000 records at 900/s after a 900-record burst: about 21.2 s.
        let secs = queue_free as f64 / SEC as f64;
        assert!((21.0..21.4).contains(&secs), "{sent} records took {secs} s");
    }

    #[test]
    fn aimd_halves_on_a_throttle_once_per_round_and_grows_each_quiet_second() {
        let a = Aimd { share: 0.8, increase: 0.1, decrease: 0.5, min_share: 0.1 };
        let mut p = Pacer::new(quota(), Pacing::Aimd(a), 0);
        // A throttled answer halves the share...
        p.answered(true, 10 * MS, 100 * MS);
        assert_eq!((p.share(), p.decreases()), (0.4, 1));
        assert_eq!(p.rates().records_per_sec, 400);
        // ...and answers to calls sent before that do not halve it again.
        p.answered(true, 50 * MS, 120 * MS);
        assert_eq!(p.share(), 0.4);
        // A call sent after the decrease, throttled, halves it again.
        p.answered(true, 150 * MS, 200 * MS);
        assert!((p.share() - 0.2).abs() < 1e-12);
        // Not below the floor.
        p.answered(true, 250 * MS, 300 * MS);
        p.answered(true, 350 * MS, 400 * MS);
        assert!((p.share() - 0.1).abs() < 1e-12);
        // Quiet seconds add 0.1 each, the first a second after the last decrease.
        p.answered(false, 500 * MS, 1399 * MS);
        assert!((p.share() - 0.1).abs() < 1e-12, "not yet a second");
        p.answered(false, 500 * MS, 1400 * MS);
        assert!((p.share() - 0.2).abs() < 1e-12);
        p.reserve(1, 1, 4400 * MS);
        assert!((p.share() - 0.5).abs() < 1e-12, "three more seconds, on the next call");
        p.reserve(1, 1, 60 * SEC);
        assert_eq!(p.share(), 1.0, "never above the quota");
    }

    #[test]
    fn aimd_finds_a_rate_under_a_quota_lower_than_it_was_told() {
        use crate::quota::StreamLimiter;
        // The pacer believes the quota is 1,000 records/s; Firehose enforces
        // 400. Offered 6,000 calls of 10 records as fast as it lets them go,
        // the adaptive pacer settles around 400 and few calls are throttled
        // after the first seconds.
        let told = Quota { records_per_sec: 1000, requests_per_sec: 1000, bytes_per_sec: 1 << 30 };
        let real = Quota { records_per_sec: 400, ..told };
        let mut pacer = Pacer::new(told, Pacing::Aimd(Aimd::starting_at(1.0)), 0);
        let mut firehose = StreamLimiter::new(real, 0);
        let (mut free, mut throttled_late, mut accepted) = (0u64, 0u64, 0u64);
        for i in 0..6_000u64 {
            let now = (i * 10 * MS).max(free);
            let at = now + pacer.reserve(10, 100, now);
            free = at;
            let ok = firehose.admit_call(at) && (0..10).all(|_| firehose.admit_record(10));
            accepted += u64::from(ok) * 10;
            if !ok && at > 10 * SEC {
                throttled_late += 1;
            }
            pacer.answered(!ok, at, at + 20 * MS);
        }
        assert!(pacer.share() <= 0.6, "share {}", pacer.share());
        assert!(throttled_late < 60, "{throttled_late} calls throttled after the first 10 s");
        assert!(accepted > 10_000, "{accepted} records accepted");
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        assert!(Pacing::TokenBucket { share: 0.9 }.validated().is_ok());
        for share in [0.0, -0.5, 1.01, f64::NAN] {
            assert!(Pacing::TokenBucket { share }.validated().is_err(), "{share}");
        }
        let ok = Aimd::starting_at(0.5);
        assert!(Pacing::Aimd(ok).validated().is_ok());
        for bad in [
            Aimd { decrease: 1.0, ..ok },
            Aimd { decrease: 0.0, ..ok },
            Aimd { increase: 0.0, ..ok },
            Aimd { min_share: 0.6, ..ok },
        ] {
            assert!(Pacing::Aimd(bad).validated().is_err(), "{bad:?}");
        }
    }
}
