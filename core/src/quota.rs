//! Firehose's Direct PUT quota as token buckets, with the clock passed in.
//!
//! Firehose limits each delivery stream to so many records, requests and
//! bytes per second (Amazon Data Firehose quotas: 500,000 / 2,000 / 5 MiB in us-east-1,
//! us-west-2 and eu-west-1; 100,000 / 1,000 / 1 MiB elsewhere). The model
//! here is three token buckets per stream, each refilled continuously at its
//! rate and holding at most one second of quota: that second is the burst
//! allowance, so a short burst above the rate is accepted the way the real
//! service accepts it, and a sustained excess is cut down to the rate.
//!
//! How a call is judged ([`StreamLimiter`]): the call first takes a request
//! token — none left fails the whole call. Then every record, in request
//! order, takes one record token and its size in byte tokens, both or
//! neither; a record that cannot is throttled alone. A record larger than
//! the byte bucket (only possible with custom quotas under 1,000 KiB/s) is
//! therefore always throttled.
//!
//! No I/O and no clock: the caller passes "now" as nanoseconds since any
//! fixed origin. Arithmetic is exact integer arithmetic in nano-tokens
//! (`tokens × 10⁹`), so refills do not drift however often they happen.
//! Cost: a few integer multiplications per call and per record.

use std::fmt;
use std::str::FromStr;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A per-stream Direct PUT quota: records, requests and bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Records per second.
    pub records_per_sec: u64,
    /// `PutRecordBatch` calls per second.
    pub requests_per_sec: u64,
    /// Bytes of record data per second.
    pub bytes_per_sec: u64,
}

impl Quota {
    /// us-east-1, us-west-2 and eu-west-1: 500,000 records/s, 2,000 requests/s, 5 MiB/s.
    pub const US_EAST_1: Quota =
        Quota { records_per_sec: 500_000, requests_per_sec: 2_000, bytes_per_sec: 5 * 1024 * 1024 };
    /// Every other region: 100,000 records/s, 1,000 requests/s, 1 MiB/s.
    pub const OTHER: Quota = Quota { records_per_sec: 100_000, requests_per_sec: 1_000, bytes_per_sec: 1024 * 1024 };

    /// The preset for a region name, or `other`.
    pub fn preset(name: &str) -> Option<Quota> {
        match name {
            "us-east-1" | "us-west-2" | "eu-west-1" => Some(Self::US_EAST_1),
            "other" => Some(Self::OTHER),
            _ => None,
        }
    }
}

impl Default for Quota {
    /// The lab's region (us-east-1).
    fn default() -> Self {
        Self::US_EAST_1
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "records={},requests={},bytes={}", self.records_per_sec, self.requests_per_sec, self.bytes_per_sec)
    }
}

/// A quota text that is neither a preset nor `records=N,requests=N,bytes=N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid quota {text:?}: {reason} (expected us-east-1, us-west-2, eu-west-1, other, or records=N,requests=N,bytes=N with N > 0; bytes may end in KiB or MiB)"
)]
pub struct QuotaParseError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Quota {
    type Err = QuotaParseError;

    /// A preset name, or all three of `records=N`, `requests=N`, `bytes=N`
    /// separated by commas, in any order.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(quota) = Quota::preset(text) {
            return Ok(quota);
        }
        let fail = |reason| QuotaParseError { text: text.to_owned(), reason };
        let (mut records, mut requests, mut bytes) = (None, None, None);
        for part in text.split(',') {
            let (key, value) = part.split_once('=').ok_or_else(|| fail("not a preset"))?;
            let (slot, value) = match key.trim() {
                "records" => (&mut records, parse_count(value.trim(), false)),
                "requests" => (&mut requests, parse_count(value.trim(), false)),
                "bytes" => (&mut bytes, parse_count(value.trim(), true)),
                _ => return Err(fail("unknown key")),
            };
            if slot.is_some() {
                return Err(fail("key given twice"));
            }
            *slot = Some(value.ok_or_else(|| fail("value is not a positive integer"))?);
        }
        match (records, requests, bytes) {
            (Some(records_per_sec), Some(requests_per_sec), Some(bytes_per_sec)) => {
                Ok(Quota { records_per_sec, requests_per_sec, bytes_per_sec })
            }
            _ => Err(fail("records, requests and bytes are all required")),
        }
    }
}

/// A rate in records per second as people write it: `5000`, `5_000`,
/// `20k`, `1.5M` (k = 10³, M = 10⁶). `None` unless finite and not negative.
/// The CLI's `--rate` and the scenarios' `rate` both read it.
pub fn parse_records_per_sec(text: &str) -> Option<f64> {
    let clean: String = text.trim().chars().filter(|c| *c != '_').collect();
    let (num, mult) = match clean.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1e3),
        None => match clean.strip_suffix(['m', 'M']) {
            Some(n) => (n, 1e6),
            None => (clean.as_str(), 1.0),
        },
    };
    num.parse::<f64>().ok().map(|r| r * mult).filter(|r| r.is_finite() && *r >= 0.0)
}

fn parse_count(text: &str, allow_suffix: bool) -> Option<u64> {
    let (digits, unit) = match text {
        t if allow_suffix && t.ends_with("MiB") => (&t[..t.len() - 3], 1024 * 1024),
        t if allow_suffix && t.ends_with("KiB") => (&t[..t.len() - 3], 1024),
        t => (t, 1),
    };
    let n: u64 = digits.trim().replace('_', "").parse().ok()?;
    n.checked_mul(unit).filter(|&n| n > 0)
}

/// One token bucket: `rate` tokens per second, at most `capacity` held.
///
/// Starts full. Tokens are counted in nano-tokens so a refill after any
/// elapsed time is exact. [`TokenBucket::try_take`] takes tokens only when
/// they are there (the stand-in's quota); [`TokenBucket::reserve`] takes
/// them in any case and says how long until they are paid for (a client's
/// pacer: the debt is repaid from later refills before any token is held).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u128,
    capacity_nano: u128,
    tokens_nano: u128,
    /// Tokens reserved beyond those held, repaid first by refills.
    debt_nano: u128,
    last_nanos: u64,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` per second, holding at most `capacity`.
    pub fn new(rate: u64, capacity: u64, now_nanos: u64) -> Self {
        let capacity_nano = u128::from(capacity) * NANOS_PER_SEC;
        TokenBucket {
            rate: u128::from(rate),
            capacity_nano,
            tokens_nano: capacity_nano,
            debt_nano: 0,
            last_nanos: now_nanos,
        }
    }

    /// Adds the tokens earned since the last refill, repaying any debt
    /// first. A clock going backwards earns nothing.
    pub fn refill(&mut self, now_nanos: u64) {
        let elapsed = u128::from(now_nanos.saturating_sub(self.last_nanos));
        self.last_nanos = self.last_nanos.max(now_nanos);
        let earned = self.rate.saturating_mul(elapsed);
        let repaid = earned.min(self.debt_nano);
        self.debt_nano -= repaid;
        self.tokens_nano = (self.tokens_nano + (earned - repaid)).min(self.capacity_nano);
    }

    /// Refills at the old rate up to `now_nanos`, then refills at `rate`
    /// per second from there, holding at most `capacity` (tokens above it
    /// are dropped; a debt is kept).
    pub fn set_rate(&mut self, rate: u64, capacity: u64, now_nanos: u64) {
        self.refill(now_nanos);
        self.rate = u128::from(rate);
        self.capacity_nano = u128::from(capacity) * NANOS_PER_SEC;
        self.tokens_nano = self.tokens_nano.min(self.capacity_nano);
    }

    /// Takes `n` tokens now, held or not, after refilling to `now_nanos`,
    /// and returns the nanoseconds until the bucket has earned them all
    /// back: 0 when they were held, `u64::MAX` at a rate of 0 with a debt.
    /// Reservations queue: each one waits for the debts of those before it.
    pub fn reserve(&mut self, n: u64, now_nanos: u64) -> u64 {
        self.refill(now_nanos);
        let need = u128::from(n) * NANOS_PER_SEC;
        if self.debt_nano == 0 && self.tokens_nano >= need {
            self.tokens_nano -= need;
            return 0;
        }
        let short = need.saturating_sub(self.tokens_nano);
        self.tokens_nano = self.tokens_nano.saturating_sub(need);
        self.debt_nano = self.debt_nano.saturating_add(short);
        if self.rate == 0 {
            return u64::MAX;
        }
        u64::try_from(self.debt_nano.div_ceil(self.rate)).unwrap_or(u64::MAX)
    }

    /// Whether `n` whole tokens are available (after the last refill).
    pub fn has(&self, n: u64) -> bool {
        self.tokens_nano >= u128::from(n) * NANOS_PER_SEC
    }

    /// Takes `n` tokens if available; otherwise takes nothing.
    pub fn try_take(&mut self, n: u64) -> bool {
        let need = u128::from(n) * NANOS_PER_SEC;
        if self.tokens_nano >= need {
            self.tokens_nano -= need;
            true
        } else {
            false
        }
    }

    /// Whole tokens available now (after the last refill).
    pub fn available(&self) -> u64 {
        u64::try_from(self.tokens_nano / NANOS_PER_SEC).unwrap_or(u64::MAX)
    }
}

/// The three buckets of one delivery stream.
#[derive(Debug, Clone)]
pub struct StreamLimiter {
    quota: Quota,
    records: TokenBucket,
    requests: TokenBucket,
    bytes: TokenBucket,
}

impl StreamLimiter {
    /// Full buckets, each with one second of its quota as burst allowance.
    pub fn new(quota: Quota, now_nanos: u64) -> Self {
        let bucket = |rate| TokenBucket::new(rate, rate, now_nanos);
        StreamLimiter {
            quota,
            records: bucket(quota.records_per_sec),
            requests: bucket(quota.requests_per_sec),
            bytes: bucket(quota.bytes_per_sec),
        }
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Refills all buckets and takes one request token. `false` means the
    /// whole call is throttled; then the records are not judged at all.
    pub fn admit_call(&mut self, now_nanos: u64) -> bool {
        self.records.refill(now_nanos);
        self.requests.refill(now_nanos);
        self.bytes.refill(now_nanos);
        self.requests.try_take(1)
    }

    /// Takes one record token and `size` byte tokens, both or neither.
    /// Call after [`admit_call`](Self::admit_call), once per record in
    /// request order.
    pub fn admit_record(&mut self, size: usize) -> bool {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        if self.records.has(1) && self.bytes.has(size) {
            self.records.try_take(1) && self.bytes.try_take(size)
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(parse_records_per_sec("20k"), Some(20_000.0));
        assert_eq!(parse_records_per_sec("1.5M"), Some(1_500_000.0));
        assert_eq!(parse_records_per_sec("5_000"), Some(5_000.0));
        for bad in ["", "k", "-1", "inf", "NaN", "20 k", "max", "1e400"] {
            assert_eq!(parse_records_per_sec(bad), None, "{bad}");
        }
    }

    #[test]
    fn presets_match_the_documented_quotas() {
        assert_eq!(Quota::preset("us-west-2"), Some(Quota::US_EAST_1));
        assert_eq!(Quota::preset("eu-west-1"), Some(Quota::US_EAST_1));
        assert_eq!(Quota::US_EAST_1.bytes_per_sec, 5_242_880);
        assert_eq!(Quota::OTHER.records_per_sec, 100_000);
        assert_eq!(Quota::preset("ap-south-1"), None);
    }

    #[test]
    fn parses_custom_quota_in_any_order_with_units() {
        let q: Quota = "bytes=2MiB,records=1_000,requests=10".parse().unwrap();
        assert_eq!(q, Quota { records_per_sec: 1000, requests_per_sec: 10, bytes_per_sec: 2 * 1024 * 1024 });
        assert_eq!(q.to_string().parse::<Quota>().unwrap(), q);
        assert_eq!("other".parse::<Quota>().unwrap(), Quota::OTHER);
    }

    #[test]
    fn rejects_incomplete_or_bad_quota() {
        for bad in [
            "records=1,requests=1",
            "records=1,requests=1,bytes=0",
            "records=1,requests=1,bytes=1,records=2",
            "records=x,requests=1,bytes=1",
            "records=1MiB,requests=1,bytes=1",
            "frobs=1",
            "mars-1",
        ] {
            assert!(bad.parse::<Quota>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn bucket_starts_full_and_refills_exactly() {
        let mut b = TokenBucket::new(4, 4, 0);
        assert!(b.try_take(4));
        assert!(!b.try_take(1));
        // 1/4 s earns exactly one token, in two slices.
        b.refill(SEC / 8);
        assert_eq!(b.available(), 0);
        b.refill(SEC / 4);
        assert_eq!(b.available(), 1);
        b.refill(10 * SEC);
        assert_eq!(b.available(), 4, "capped at capacity");
    }

    #[test]
    fn reservations_beyond_the_tokens_held_wait_for_their_debt_in_turn() {
        let mut b = TokenBucket::new(10, 10, 0);
        assert_eq!(b.reserve(10, 0), 0, "held: no wait");
        // 5 tokens at 10 a second: half a second; the next 10 queue behind them.
        assert_eq!(b.reserve(5, 0), SEC / 2);
        assert_eq!(b.reserve(10, 0), 3 * SEC / 2);
        // A second later half a second of debt is left; nothing is held yet.
        b.refill(SEC);
        assert!(!b.has(1));
        assert_eq!(b.reserve(0, SEC), SEC / 2);
        b.refill(2 * SEC);
        assert_eq!((b.available(), b.reserve(1, 2 * SEC)), (5, 0), "debt repaid, then tokens held again");
        assert!(!b.try_take(5), "try_take still takes only what is held");
    }

    #[test]
    fn a_new_rate_applies_from_the_moment_it_is_set() {
        let mut b = TokenBucket::new(10, 10, 0);
        assert_eq!(b.reserve(20, 0), SEC);
        // Half a second at 10/s repays 5; the other 5 at 100/s take 50 ms.
        b.set_rate(100, 100, SEC / 2);
        assert_eq!(b.reserve(0, SEC / 2), SEC / 20);
        b.set_rate(0, 0, SEC);
        assert_eq!(b.reserve(1, SEC), u64::MAX, "a rate of 0 never repays");
    }

    #[test]
    fn clock_going_backwards_earns_nothing() {
        let mut b = TokenBucket::new(10, 10, 5 * SEC);
        assert!(b.try_take(10));
        b.refill(SEC);
        assert_eq!(b.available(), 0);
        b.refill(5 * SEC + SEC / 10);
        assert_eq!(b.available(), 1);
    }

    #[test]
    fn request_quota_fails_whole_calls() {
        let q = Quota { records_per_sec: 1000, requests_per_sec: 2, bytes_per_sec: 1000 };
        let mut l = StreamLimiter::new(q, 0);
        assert!(l.admit_call(0));
        assert!(l.admit_call(0));
        assert!(!l.admit_call(0));
        assert!(l.admit_call(SEC / 2));
    }

    #[test]
    fn records_are_judged_in_order_on_both_record_and_byte_quota() {
        let q = Quota { records_per_sec: 2, requests_per_sec: 100, bytes_per_sec: 10 };
        let mut l = StreamLimiter::new(q, 0);
        assert!(l.admit_call(0));
        // 6 bytes fits, 6 more does not (4 left), 4 fits, then records run out
        // even for an empty record.
        let got: Vec<bool> = [6, 6, 4, 0].iter().map(|&s| l.admit_record(s)).collect();
        assert_eq!(got, [true, false, true, false]);
    }

    #[test]
    fn sustained_excess_is_cut_to_the_rate_after_the_burst() {
        let q = Quota { records_per_sec: 100, requests_per_sec: 1000, bytes_per_sec: 1 << 20 };
        let mut l = StreamLimiter::new(q, 0);
        // 10 seconds at twice the rate, one record every 5 ms.
        let mut accepted = 0;
        for i in 0..2000u64 {
            assert!(l.admit_call(i * 5_000_000));
            accepted += u64::from(l.admit_record(1));
        }
        // Rate × time plus one second of burst, give or take a token.
        assert!((1099..=1100).contains(&accepted), "{accepted}");
    }
}
