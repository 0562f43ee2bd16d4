//! What a produce run is asked to do: the serde configuration shared by
//! `mskbench produce` (flags) and scenario files (TOML tables).
//!
//! Unknown keys are errors (`deny_unknown_fields`): a typo in a scenario is
//! refused, not silently defaulted. Validation that needs more than one
//! field ([`ProduceConfig::validate`]) runs before anything starts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::schemagen::SizeControls;

/// The lab's topic.
pub const DEFAULT_TOPIC: &str = "ExampleTopic";

/// Which framing keys get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    /// The user id as plain text.
    #[default]
    String,
    /// A Confluent-framed Avro string (`<topic>-key` subject), as the lab's
    /// Confluent producer writes keys. Glue runs keep plain keys.
    Avro,
}

/// Compression of Glue-framed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlueCompression {
    #[default]
    None,
    Zlib,
}

/// AWS Glue Schema Registry settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlueConfig {
    /// Registry name; created when missing.
    pub registry: String,
    /// Endpoint override (moto in tests); the AWS default chain otherwise.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region; the AWS default chain otherwise.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub compression: GlueCompression,
}

/// A whole produce run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProduceConfig {
    /// `embedded`, `mock`, or a bootstrap list (`host:port,…`).
    pub brokers: String,
    pub topic: String,
    /// Partitions of a topic this run creates (embedded, mock, or a missing topic).
    pub partitions: i32,
    /// Confluent registry: `embedded` or a URL. Ignored with `glue`.
    pub registry: String,
    pub glue: Option<GlueConfig>,
    pub key_format: KeyFormat,
    /// Records per second; `None` with a profile that sets its own rates,
    /// `f64::INFINITY` (`max` on the command line) for as fast as possible.
    pub rate: Option<f64>,
    /// A rate profile (`ramp:…`, `steps:…`, `burst:…`); see `schedule`.
    pub profile: Option<String>,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Stop after this many seconds.
    pub duration_secs: Option<f64>,
    /// Seconds at the start excluded from rates and percentiles.
    pub warmup_secs: f64,
    /// Generator seed; chosen and printed when absent.
    pub seed: Option<u64>,
    /// An Avro schema file: random records of it instead of ClickEvents.
    pub schema: Option<PathBuf>,
    /// Lengths of schema-driven values.
    pub sizes: SizeControls,
    /// Simulated lab producer threads whose sessions interleave.
    pub threads: usize,
    /// librdkafka settings (`-X key=value`), applied over the defaults.
    pub rdkafka: BTreeMap<String, String>,
    /// Seconds between stats lines on stderr; 0 for none.
    pub stats_interval_secs: f64,
    /// HdrHistogram interval log path.
    pub hlog: Option<PathBuf>,
    /// Progress bar on a terminal.
    pub progress: bool,
}

impl Default for ProduceConfig {
    fn default() -> Self {
        ProduceConfig {
            brokers: "embedded".into(),
            topic: DEFAULT_TOPIC.into(),
            partitions: 3,
            registry: "embedded".into(),
            glue: None,
            key_format: KeyFormat::String,
            rate: Some(1000.0),
            profile: None,
            count: None,
            duration_secs: None,
            warmup_secs: 0.0,
            seed: None,
            schema: None,
            sizes: SizeControls::default(),
            threads: 2,
            rdkafka: BTreeMap::new(),
            stats_interval_secs: 5.0,
            hlog: None,
            progress: true,
        }
    }
}

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid produce configuration: {0}")]
pub struct ConfigError(pub String);

impl ProduceConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if self.count.is_none() && self.duration_secs.is_none() {
            return bad("give a count or a duration (--count N or --duration D)");
        }
        if self.duration_secs.is_some_and(|d| !(d > 0.0 && d.is_finite())) {
            return bad("the duration must be positive");
        }
        if self.rate.is_none() && self.profile.is_none() {
            return bad("give a rate (--rate N or max) or a profile");
        }
        if self.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return bad("the rate must be positive (or max)");
        }
        if !(self.warmup_secs >= 0.0 && self.warmup_secs.is_finite()) {
            return bad("the warm-up must be zero or positive");
        }
        if self.partitions < 1 {
            return bad("partitions must be at least 1");
        }
        if self.topic.is_empty() {
            return bad("the topic name is empty");
        }
        if self.sizes.string_len.0 > self.sizes.string_len.1
            || self.sizes.bytes_len.0 > self.sizes.bytes_len.1
            || self.sizes.array_len.0 > self.sizes.array_len.1
        {
            return bad("a length range has its minimum above its maximum");
        }
        Ok(())
    }
}
