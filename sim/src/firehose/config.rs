//! Configuration of the Firehose stand-in: quota, buffering, faults, seed.
//!
//! Everything a scenario file or the `mskbench serve firehose` flags can
//! set. Serde-readable with unknown fields refused, so a typo in a
//! scenario is an error rather than a silent default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use mskbench_core::Quota;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Smallest buffering size AWS accepts (1 MiB).
pub(crate) const AWS_MIN_BUFFER_BYTES: u64 = 1024 * 1024;
/// Largest buffering size AWS accepts (128 MiB).
pub(crate) const AWS_MAX_BUFFER_BYTES: u64 = 128 * 1024 * 1024;
/// Shortest buffering interval AWS accepts here (60 s).
pub(crate) const AWS_MIN_BUFFER_INTERVAL: Duration = Duration::from_secs(60);
/// Longest buffering interval AWS accepts (900 s).
pub(crate) const AWS_MAX_BUFFER_INTERVAL: Duration = Duration::from_secs(900);

/// The whole configuration of one Firehose stand-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirehoseConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Per-stream Direct PUT quota.
    pub quota: Quota,
    /// Region named in ARNs.
    pub region: String,
    /// Root directory of delivered objects (keys are paths below it).
    pub s3_dir: PathBuf,
    /// Buffering hints for streams created without their own.
    pub buffering: Buffering,
    /// Allow `buffering` below AWS's minimums (for tests and short scenarios).
    pub allow_small_buffers: bool,
    /// Streams that exist from the start, with the default buffering.
    pub streams: Vec<String>,
    /// Injected faults.
    pub faults: Faults,
    /// Seed of every random choice (faults, latency, record ids, object names).
    pub seed: u64,
    /// Seconds of per-second metrics kept per stream.
    pub metrics_history_secs: usize,
}

impl Default for FirehoseConfig {
    fn default() -> Self {
        FirehoseConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            quota: Quota::default(),
            region: "us-east-1".to_owned(),
            s3_dir: PathBuf::from("s3"),
            buffering: Buffering::default(),
            allow_small_buffers: false,
            streams: Vec::new(),
            faults: Faults::default(),
            seed: 0,
            metrics_history_secs: 3600,
        }
    }
}

/// Firehose buffering hints: an object is written when either is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buffering {
    /// Bytes buffered before an object is cut (`SizeInMBs`).
    pub size_bytes: u64,
    /// Time since the buffer's first record before an object is cut (`IntervalInSeconds`).
    #[serde(with = "secs_f64")]
    pub interval: Duration,
}

impl Default for Buffering {
    /// AWS's defaults for S3 destinations: 5 MiB or 300 s.
    fn default() -> Self {
        Buffering { size_bytes: 5 * 1024 * 1024, interval: Duration::from_secs(300) }
    }
}

impl Buffering {
    /// Checks the hints against AWS's ranges, or only against zero when
    /// `allow_small` is set (larger-than-AWS values are refused either way).
    pub fn validate(&self, allow_small: bool) -> Result<(), String> {
        let (min_size, min_interval) =
            if allow_small { (1, Duration::from_millis(1)) } else { (AWS_MIN_BUFFER_BYTES, AWS_MIN_BUFFER_INTERVAL) };
        if !(min_size..=AWS_MAX_BUFFER_BYTES).contains(&self.size_bytes) {
            return Err(format!(
                "buffering size {} bytes is outside {min_size}..={AWS_MAX_BUFFER_BYTES}{}",
                self.size_bytes,
                if allow_small { "" } else { " (smaller values need allow_small_buffers)" }
            ));
        }
        if !(min_interval..=AWS_MAX_BUFFER_INTERVAL).contains(&self.interval) {
            return Err(format!(
                "buffering interval {:?} is outside {min_interval:?}..={AWS_MAX_BUFFER_INTERVAL:?}{}",
                self.interval,
                if allow_small { "" } else { " (shorter values need allow_small_buffers)" }
            ));
        }
        Ok(())
    }
}

/// Faults injected on purpose, for reliability scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Probability that a record the quota admitted fails with `InternalFailure`.
    pub internal_failure_rate: f64,
    /// Probability that a whole call fails with HTTP 500 `InternalFailure`.
    pub http_500_rate: f64,
    /// Added latency before every Firehose response.
    pub latency: Latency,
}

impl Faults {
    /// Checks that both rates are probabilities.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in
            [("internal_failure_rate", self.internal_failure_rate), ("http_500_rate", self.http_500_rate)]
        {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} {rate} is not within 0..=1"));
            }
        }
        self.latency.validate()
    }
}

/// Added response latency: none, fixed, uniform in a range, or exponential
/// with a mean (a long tail, the shape real service latency tends to have).
///
/// Text form (CLI and scenario files): `0`, `fixed:50ms`, `uniform:10ms..80ms`,
/// `exp:20ms`; units `ms` or `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Latency {
    /// No added latency (`0`).
    #[default]
    None,
    /// The same delay on every call (`fixed:50ms`).
    Fixed(Duration),
    /// A delay drawn uniformly between two bounds (`uniform:10ms..80ms`).
    Uniform {
        /// The shortest delay.
        low: Duration,
        /// The longest delay.
        high: Duration,
    },
    /// A delay drawn from an exponential distribution (`exp:20ms`), capped.
    Exponential {
        /// The distribution's mean.
        mean: Duration,
    },
}

/// Longest latency ever added (also caps the exponential tail).
pub(crate) const MAX_LATENCY: Duration = Duration::from_secs(60);

impl Latency {
    fn validate(&self) -> Result<(), String> {
        let ok = match *self {
            Latency::None => true,
            Latency::Fixed(d) | Latency::Exponential { mean: d } => d <= MAX_LATENCY,
            Latency::Uniform { low, high } => low <= high && high <= MAX_LATENCY,
        };
        if ok { Ok(()) } else { Err(format!("latency {self} is not a range within 0..={MAX_LATENCY:?}")) }
    }

    /// One draw from the distribution.
    pub(crate) fn sample(&self, rng: &mut impl RngExt) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d,
            Latency::Uniform { low, high } => {
                let span = high.saturating_sub(low).as_nanos();
                let span = u64::try_from(span).unwrap_or(u64::MAX);
                low + Duration::from_nanos(rng.random_range(0..=span))
            }
            Latency::Exponential { mean } => {
                // Inverse transform: −mean·ln(U), U in (0, 1].
                let u: f64 = 1.0 - rng.random::<f64>();
                Duration::from_secs_f64((-mean.as_secs_f64() * u.ln()).min(MAX_LATENCY.as_secs_f64()))
            }
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| format!("{}ms", d.as_secs_f64() * 1000.0);
        match *self {
            Latency::None => f.write_str("0"),
            Latency::Fixed(d) => write!(f, "fixed:{}", ms(d)),
            Latency::Uniform { low, high } => write!(f, "uniform:{}..{}", ms(low), ms(high)),
            Latency::Exponential { mean } => write!(f, "exp:{}", ms(mean)),
        }
    }
}

impl From<Latency> for String {
    fn from(l: Latency) -> String {
        l.to_string()
    }
}

impl TryFrom<String> for Latency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for Latency {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid latency {text:?}: expected 0, fixed:D, uniform:D..D or exp:D with D like 20ms or 1.5s");
        let latency = match text.split_once(':') {
            None if text.trim() == "0" || text.trim() == "none" => Latency::None,
            Some(("fixed", d)) => Latency::Fixed(parse_duration(d).ok_or_else(bad)?),
            Some(("exp", d)) => Latency::Exponential { mean: parse_duration(d).ok_or_else(bad)? },
            Some(("uniform", range)) => {
                let (low, high) = range.split_once("..").ok_or_else(bad)?;
                Latency::Uniform {
                    low: parse_duration(low).ok_or_else(bad)?,
                    high: parse_duration(high).ok_or_else(bad)?,
                }
            }
            _ => return Err(bad()),
        };
        latency.validate()?;
        Ok(latency)
    }
}

/// `20ms`, `1.5s`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) =
        if let Some(n) = text.strip_suffix("ms") { (n, 1e-3) } else { (text.strip_suffix('s')?, 1.0) };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value * scale))
}

/// Durations as (fractional) seconds in scenario files.
mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    use super::*;

    #[test]
    fn latency_text_round_trips() {
        for text in ["0", "fixed:50ms", "uniform:10ms..80ms", "exp:20ms", "fixed:1.5s"] {
            let l: Latency = text.parse().unwrap();
            assert_eq!(l.to_string().parse::<Latency>().unwrap(), l, "{text}");
        }
        assert_eq!(
            "uniform:1s..2s".parse::<Latency>().unwrap(),
            Latency::Uniform { low: Duration::from_secs(1), high: Duration::from_secs(2) }
        );
    }

    #[test]
    fn latency_rejects_nonsense() {
        for text in ["", "fixed", "fixed:-1ms", "uniform:80ms..10ms", "exp:5min", "gauss:1ms", "fixed:120s"] {
            assert!(text.parse::<Latency>().is_err(), "{text} parsed");
        }
    }

    #[test]
    fn latency_samples_stay_in_range_and_are_seeded() {
        let l = Latency::Uniform { low: Duration::from_millis(10), high: Duration::from_millis(20) };
        let mut a = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut b = Xoshiro256PlusPlus::seed_from_u64(7);
        for _ in 0..1000 {
            let x = l.sample(&mut a);
            assert!((Duration::from_millis(10)..=Duration::from_millis(20)).contains(&x));
            assert_eq!(x, l.sample(&mut b));
        }
        let e = Latency::Exponential { mean: Duration::from_millis(10) };
        let mean = (0..20_000).map(|_| e.sample(&mut a).as_secs_f64()).sum::<f64>() / 20_000.0;
        assert!((0.009..0.011).contains(&mean), "{mean}");
    }

    #[test]
    fn buffering_ranges_follow_aws_unless_small_allowed() {
        let small = Buffering { size_bytes: 1000, interval: Duration::from_millis(200) };
        assert!(small.validate(false).is_err());
        assert!(small.validate(true).is_ok());
        assert!(Buffering::default().validate(false).is_ok());
        let huge = Buffering { size_bytes: AWS_MAX_BUFFER_BYTES + 1, ..Buffering::default() };
        assert!(huge.validate(true).is_err());
    }

    #[test]
    fn config_refuses_unknown_fields() {
        let err = serde_json::from_str::<FirehoseConfig>(r#"{"quota_typo": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let cfg: FirehoseConfig = serde_json::from_str(
            r#"{"buffering": {"size_bytes": 1024, "interval": 0.5}, "faults": {"latency": "fixed:5ms"}}"#,
        )
        .unwrap();
        assert_eq!(cfg.buffering.interval, Duration::from_millis(500));
        assert_eq!(cfg.faults.latency, Latency::Fixed(Duration::from_millis(5)));
    }
}
