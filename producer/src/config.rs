//! What a produce run is asked to do, as typed values.
//!
//! `mskbench produce` builds a [`ProduceConfig`] from its flags and
//! `mskbench run` from a scenario's plan; both parse their text once, at
//! their edge, and nothing here turns a value back into text: the rate is
//! a [`Profile`], durations are [`Duration`]s, the registry is a
//! [`Registry`] and the records' schema is its JSON text, read by the
//! caller. Brokers and registries the caller started (`embedded`) reach
//! this crate as the addresses they listen on. [`ProduceConfig::validate`]
//! checks what the types cannot before anything starts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use mskbench_core::wire::Compression;
use mskbench_kafka::Security;

use crate::fleet::Worker;
use crate::schedule::Profile;
use crate::schemagen::SizeControls;
use crate::send::Until;

/// The lab's topic.
pub const DEFAULT_TOPIC: &str = "ExampleTopic";

/// Which framing keys get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyFormat {
    /// The user id as plain text.
    #[default]
    String,
    /// A Confluent-framed Avro string (`<topic>-key` subject), as the lab's
    /// Confluent producer writes keys. Glue runs keep plain keys.
    Avro,
}

/// Where the schema is registered, which decides how values are framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registry {
    /// A Confluent-compatible registry at this `http(s)://` URL; credentials
    /// in it (`https://key:secret@host`) become HTTP basic auth.
    Confluent {
        /// The registry's URL.
        url: String,
    },
    /// An AWS Glue Schema Registry.
    Glue(GlueConfig),
}

/// AWS Glue Schema Registry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueConfig {
    /// Registry name; created when missing.
    pub registry: String,
    /// Endpoint override (moto in tests); the AWS default chain otherwise.
    pub endpoint: Option<String>,
    /// Region; the AWS default chain otherwise.
    pub region: Option<String>,
    /// The AWS default chain already resolved (by `mskbench run`, once for
    /// all its clients); `None` resolves it at registration, with `region`.
    pub chain: Option<mskbench_aws::Chain>,
    /// Compression of Glue-framed values (`0x00` none, `0x05` zlib).
    pub compression: Compression,
}

/// What records are generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// The lab's ClickEvents, from this many simulated producer threads
    /// whose sessions interleave.
    ClickEvents {
        /// Simulated lab producer threads (0 counts as 1).
        threads: usize,
    },
    /// Random records of an Avro schema.
    Schema {
        /// The schema's JSON text.
        schema: String,
        /// Lengths of generated values, and padding.
        sizes: SizeControls,
    },
}

/// A whole produce run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceConfig {
    /// The bootstrap list, `host:port,…`.
    pub brokers: String,
    /// The topic written to; it must exist (see `topic::ensure_topic`).
    pub topic: String,
    /// Where the schema is registered.
    pub registry: Registry,
    /// How keys are framed (Confluent registries only).
    pub key_format: KeyFormat,
    /// What is generated.
    pub records: Records,
    /// The target rate over time; [`Profile::Max`] for as fast as possible.
    pub profile: Profile,
    /// When the run ends (a count, a duration, or the first of both).
    pub until: Until,
    /// Leading time excluded from rates and percentiles.
    pub warmup: Duration,
    /// The run's seed: the generator's in a fleet of one, else the one
    /// each worker's own derives from ([`Worker::seed`]).
    pub seed: u64,
    /// TLS and SASL (`mskbench-kafka`): from `--msk-auth`, the security
    /// `-X` settings or a scenario's `[kafka]` table.
    pub security: Security,
    /// This process's place in a fleet of workers; `profile`, `until`'s
    /// count and `seed` are the fleet's, and [`ProduceConfig::share`] is
    /// this worker's part of them.
    pub worker: Worker,
    /// The wall-clock instant the schedule starts at (a fleet's common
    /// start, `--start-at`); `None` to start once connected.
    pub start_at: Option<SystemTime>,
    /// Other librdkafka settings (`-X key=value`), applied over [`crate::run::PRODUCER_DEFAULTS`].
    pub rdkafka: BTreeMap<String, String>,
    /// How often the observer gets a [`crate::send::Stats`] snapshot; `None` for never.
    pub stats_interval: Option<Duration>,
    /// HdrHistogram interval log path.
    pub hlog: Option<PathBuf>,
    /// Keep every record's coordinates and expected-line digest in the
    /// report ([`crate::send::Sent`], 32 bytes a record): what `mskbench
    /// run` accounts from. Off for open-ended `mskbench produce` runs.
    pub keep_records: bool,
}

impl ProduceConfig {
    /// A run of ClickEvents to `brokers`' [`DEFAULT_TOPIC`] at `profile`
    /// until `until`, with no warm-up, no stats, no log and no `-X`.
    pub fn new(brokers: String, registry: Registry, profile: Profile, until: Until, seed: u64) -> ProduceConfig {
        ProduceConfig {
            brokers,
            topic: DEFAULT_TOPIC.into(),
            registry,
            key_format: KeyFormat::String,
            records: Records::ClickEvents { threads: 2 },
            profile,
            until,
            warmup: Duration::ZERO,
            seed,
            security: Security::default(),
            worker: Worker::SOLE,
            start_at: None,
            rdkafka: BTreeMap::new(),
            stats_interval: None,
            hlog: None,
            keep_records: false,
        }
    }
}

impl ProduceConfig {
    /// This worker's part of the run: its share of the profile and of the
    /// count, and its own seed; the run itself in a fleet of one.
    pub fn share(&self) -> ProduceConfig {
        let worker = self.worker;
        ProduceConfig {
            profile: worker.profile(&self.profile),
            until: Until { count: self.until.count.map(|n| worker.count(n)), duration: self.until.duration },
            seed: worker.seed(self.seed),
            ..self.clone()
        }
    }
}

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid produce configuration: {0}")]
pub struct ConfigError(pub String);

impl ProduceConfig {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if self.until.count.is_none() && self.until.duration.is_none() {
            return bad("give a count or a duration (--count N or --duration D)");
        }
        if self.until.duration.is_some_and(|d| d.is_zero()) {
            return bad("the duration must be positive");
        }
        if let (Some(count), None, Some(total)) = (self.until.count, self.until.duration, self.profile.total_records())
            && count > total
        {
            return Err(ConfigError(format!(
                "the profile's rate falls to 0 and stays there after {total} records, so a count of {count} is \
                 never reached: add a duration (--duration), or end the profile above 0"
            )));
        }
        if self.topic.is_empty() {
            return bad("the topic name is empty");
        }
        match &self.records {
            Records::Schema { sizes, .. }
                if sizes.string_len.0 > sizes.string_len.1
                    || sizes.bytes_len.0 > sizes.bytes_len.1
                    || sizes.array_len.0 > sizes.array_len.1 =>
            {
                bad("a length range has its minimum above its maximum")
            }
            Records::Schema { sizes, .. }
                if [sizes.string_len.1, sizes.bytes_len.1, sizes.array_len.1, sizes.pad_bytes]
                    .into_iter()
                    .any(|n| n > SizeControls::MAX_LENGTH) =>
            {
                Err(ConfigError(format!("a length is above the longest, {}", SizeControls::MAX_LENGTH)))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProduceConfig {
        let registry = Registry::Confluent { url: "http://127.0.0.1:1".into() };
        let until = Until { count: Some(10), duration: None };
        ProduceConfig::new("127.0.0.1:9092".into(), registry, Profile::constant(10.0), until, 1)
    }

    #[test]
    fn a_run_needs_an_end_and_sane_lengths() {
        assert_eq!(config().validate(), Ok(()));
        let endless = ProduceConfig { until: Until::default(), ..config() };
        assert!(endless.validate().unwrap_err().0.contains("count or a duration"));
        let instant = ProduceConfig { until: Until { count: None, duration: Some(Duration::ZERO) }, ..config() };
        assert!(instant.validate().is_err());
        let sizes = SizeControls { string_len: (5, 4), ..SizeControls::default() };
        let inverted = ProduceConfig { records: Records::Schema { schema: "\"int\"".into(), sizes }, ..config() };
        assert!(inverted.validate().unwrap_err().0.contains("minimum above"));
        let sizes = SizeControls { pad_bytes: SizeControls::MAX_LENGTH + 1, ..SizeControls::default() };
        let huge = ProduceConfig { records: Records::Schema { schema: "\"int\"".into(), sizes }, ..config() };
        assert!(huge.validate().unwrap_err().0.contains("above the longest"), "{:?}", huge.validate());
    }

    /// `ramp:10:0:1s` sends 6 records and then none: with only a count of
    /// 100, the sender computed the due time of the sixth record as an
    /// infinite number of seconds and panicked turning it into a Duration.
    #[test]
    fn a_count_beyond_a_profile_that_falls_to_zero_is_refused() {
        let ramp_down = Profile::parse("ramp:10:0:1s", None).unwrap();
        let never =
            ProduceConfig { profile: ramp_down.clone(), until: Until { count: Some(100), duration: None }, ..config() };
        assert!(never.validate().unwrap_err().0.contains("never reached"), "{:?}", never.validate());
        let within =
            ProduceConfig { profile: ramp_down.clone(), until: Until { count: Some(6), duration: None }, ..config() };
        assert_eq!(within.validate(), Ok(()));
        let bounded = ProduceConfig {
            profile: ramp_down,
            until: Until { count: Some(100), duration: Some(Duration::from_secs(2)) },
            ..config()
        };
        assert_eq!(bounded.validate(), Ok(()), "a duration ends it");
    }
}
