//! How long to wait before each resend to Firehose.
//!
//! Two policies, so that runs can compare them:
//!
//! - [`RetryPolicy::Backoff`] (default): capped exponential backoff with
//!   full jitter — retry `n` (1-based) waits a uniform random time in
//!   `0..=min(max_delay, base · 2^(n-1))`. Jitter spreads the resends of
//!   many concurrent callers throttled in the same second, so they do not
//!   come back in lockstep and get throttled together again.
//! - [`RetryPolicy::Lab`]: the lab's Java function, `(2·23^n)/1000` seconds
//!   in integer arithmetic: 0 s, 1 s, 24 s, 559 s, … (no jitter, no cap).
//!
//! Randomness comes from a caller-provided RNG, seeded, so a test or a run
//! can be replayed. Cost: a few arithmetic operations per retry.

use std::time::Duration;

use rand::{Rng, RngExt as _};
use serde::{Deserialize, Serialize};

/// What to wait before retry `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryPolicy {
    /// Capped exponential backoff with full jitter.
    Backoff {
        /// Upper bound of the first wait.
        #[serde(with = "millis")]
        base: Duration,
        /// Upper bound of any wait.
        #[serde(with = "millis")]
        max_delay: Duration,
    },
    /// The lab's `(2·23^n)/1000` seconds.
    Lab,
}

/// Default ceiling of the first backoff wait.
pub const DEFAULT_BASE: Duration = Duration::from_millis(100);
/// Default ceiling of any backoff wait.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::Backoff { base: DEFAULT_BASE, max_delay: DEFAULT_MAX_DELAY }
    }
}

impl RetryPolicy {
    /// The wait before retry `retry` (1 for the first resend).
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        match *self {
            RetryPolicy::Backoff { .. } => {
                let ceiling = self.max_delay(retry);
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rng.random_range(0..=nanos))
            }
            RetryPolicy::Lab => Duration::from_secs(lab_seconds(retry)),
        }
    }

    /// The longest [`RetryPolicy::delay`] can be before retry `retry`.
    pub fn max_delay(&self, retry: u32) -> Duration {
        match *self {
            RetryPolicy::Backoff { base, max_delay } => exponential(base, retry).min(max_delay),
            RetryPolicy::Lab => Duration::from_secs(lab_seconds(retry)),
        }
    }

    /// The name used in logs and by `RETRY_POLICY`.
    pub fn name(&self) -> &'static str {
        match self {
            RetryPolicy::Backoff { .. } => "backoff",
            RetryPolicy::Lab => "lab",
        }
    }
}

/// `base · 2^(retry-1)`, saturating.
fn exponential(base: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor)
}

/// The lab's wait in whole seconds: `(2·23^n)/1000`, integer division, saturating.
pub fn lab_seconds(retry: u32) -> u64 {
    23u64.checked_pow(retry).and_then(|p| p.checked_mul(2)).map_or(u64::MAX, |v| v / 1000)
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    use super::*;

    #[test]
    fn the_lab_schedule_is_integer_seconds_of_2_times_23_to_the_n_over_1000() {
        let secs: Vec<u64> = (1..=4).map(lab_seconds).collect();
        assert_eq!(secs, [0, 1, 24, 559]);
        assert_eq!(lab_seconds(0), 0);
        assert_eq!(lab_seconds(40), u64::MAX, "saturates instead of overflowing");
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        assert_eq!(RetryPolicy::Lab.delay(3, &mut rng), Duration::from_secs(24));
    }

    #[test]
    fn backoff_stays_under_its_exponential_ceiling_and_the_cap() {
        let policy = RetryPolicy::Backoff { base: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for retry in 1..=40 {
            let ceiling = Duration::from_millis(100 << (retry - 1).min(20)).min(Duration::from_secs(1));
            for _ in 0..200 {
                let d = policy.delay(retry, &mut rng);
                assert!(d <= ceiling, "retry {retry}: {d:?} above {ceiling:?}");
            }
        }
    }

    #[test]
    fn backoff_jitter_is_spread_and_replayable() {
        let policy = RetryPolicy::default();
        let draw = |seed| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..1000).map(|_| policy.delay(3, &mut rng)).collect::<Vec<_>>()
        };
        let a = draw(42);
        assert_eq!(a, draw(42), "same seed, same waits");
        assert_ne!(a, draw(43));
        // Full jitter over 0..=400 ms: both halves of the range are used.
        let low = a.iter().filter(|d| **d < Duration::from_millis(200)).count();
        assert!((300..700).contains(&low), "{low} of 1000 below the middle");
    }

    #[test]
    fn policies_read_from_config_text() {
        let lab: RetryPolicy = serde_json::from_str(r#"{"kind":"lab"}"#).unwrap();
        assert_eq!(lab, RetryPolicy::Lab);
        let b: RetryPolicy = serde_json::from_str(r#"{"kind":"backoff","base":50,"max_delay":2000}"#).unwrap();
        assert_eq!(b, RetryPolicy::Backoff { base: Duration::from_millis(50), max_delay: Duration::from_secs(2) });
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"kind":"backoff","base":50,"max_dealy":1}"#).is_err());
    }
}
