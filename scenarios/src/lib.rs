//! Scenario files: what `mskbench run` drives, checked before anything runs.
//!
//! A scenario (`scenarios/*.toml`) names a seed, load phases, and the
//! settings of each part of the pipeline — producer, Kafka, processor,
//! Firehose, registry — plus SLOs that decide the run's exit status. This
//! crate owns the model and its validation only; running it (sockets,
//! brokers, clocks) belongs to the harness (`mskbench-harness`) behind the
//! CLI. SLO metric names are checked against the reports' metric catalogue.
//!
//! Every table uses `deny_unknown_fields`, and every value is parsed into
//! its type while it is read — endpoints into enums ([`Brokers`],
//! [`RegistryKind`], [`Endpoint`]), quotas into [`Quota`], fault latencies
//! into [`Latency`], SLOs into [`Slo`], durations into [`Duration`] — so a
//! typo or an impossible setting is refused with the file, line, column and
//! key (`processor.batch_size = 0` fails at load, not half an hour into a
//! run), and nothing downstream parses text again. Serialising a scenario
//! writes the same text forms back (the run records it in `result.json`).
//!
//! ```toml
//! name = "lab"
//! seed = 42
//! slo = ["unaccounted == 0", "e2e_p99_ms < 5000"]
//!
//! [[phases]]
//! name = "steady"
//! duration = "30s"
//! rate = 2000
//!
//! [producer]
//! wire_format = "confluent"
//!
//! [processor]
//! batch_size = 1000
//!
//! [firehose]
//! quota = "us-east-1"
//! ```

#![warn(missing_docs)]

pub mod faults;
pub mod mapping;
pub mod objective;
pub mod sweep;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use mskbench_core::quota::Quota;
use mskbench_core::registry_url::{RegistryUrl, redacted};
pub use mskbench_kafka::{Mechanism, Protocol, Security, SecurityError};
use mskbench_kafka::{Secret, is_security_property};
pub use mskbench_reports::Slo;
pub use mskbench_sim::firehose::Latency;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

pub use crate::faults::{Fault, FaultKind, FirehoseOutage, RegistryOutage};
pub use crate::mapping::Mapping;
pub use crate::objective::Objective;
pub use crate::sweep::Sweep;

/// A scenario as read from its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The run's name: the report's title and the run folder's suffix.
    pub name: String,
    /// One line for the report.
    #[serde(default)]
    pub description: String,
    /// Seed for every generator and fault draw of the run.
    pub seed: u64,
    /// Load phases, run in order.
    pub phases: Vec<Phase>,
    /// `[producer]`: what records, framed how.
    #[serde(default)]
    pub producer: Producer,
    /// `[kafka]`: the cluster and topic.
    #[serde(default)]
    pub kafka: Kafka,
    /// `[processor]`: the Lambda function and its event source mapping.
    #[serde(default)]
    pub processor: Processor,
    /// The event source mapping's failure handling (`[mapping]`).
    #[serde(default)]
    pub mapping: Mapping,
    /// `[firehose]`: the delivery stream, its quota and faults.
    #[serde(default)]
    pub firehose: Firehose,
    /// `[registry]`: the schema registry.
    #[serde(default)]
    pub registry: Registry,
    /// `[cost]`: the memory size and unit prices the cost estimate uses.
    #[serde(default)]
    pub cost: Cost,
    /// How long to wait after the last phase for records still in flight.
    #[serde(default = "default_drain", with = "duration_text")]
    pub drain: Duration,
    /// Objectives over the result, each over a metric of the reports'
    /// catalogue; the run exits 1 when one fails, and one marked
    /// `abort = true` stops the run when it fails while it runs ([`objective`]).
    #[serde(default)]
    pub slo: Vec<Objective>,
    /// `[[faults]]`: faults injected during the run, each in a window of
    /// time from the start of producing ([`faults`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// `[[sweep]]`: one key run at several values, a run a point ([`sweep`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<Sweep>,
}

fn default_drain() -> Duration {
    Duration::from_secs(30)
}

/// One load phase: a constant rate, or a linear ramp to `to_rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Shown in the progress bar and the log.
    pub name: String,
    /// How long the phase produces (never zero).
    #[serde(with = "duration_text")]
    pub duration: Duration,
    /// Records per second at the start of the phase.
    pub rate: Rate,
    /// Records per second at the end of the phase, for a ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_rate: Option<Rate>,
    /// False for warm-up: the phase runs but is left out of the statistics.
    #[serde(default = "yes")]
    pub measure: bool,
}

fn yes() -> bool {
    true
}

/// The records to produce and how they are framed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// `clickevent` (the lab's records) or a path to an `.avsc` schema,
    /// relative to the scenario file.
    #[serde(default)]
    pub records: Records,
    /// Extra bytes of padding per record, for record-size sweeps.
    #[serde(default)]
    pub padding_bytes: u32,
    /// How values are framed for the registry.
    #[serde(default)]
    pub wire_format: WireFormat,
    /// Partitions of the topic the run creates.
    #[serde(default = "three")]
    pub partitions: Bounded<1, 1024>,
}

fn three() -> Bounded<1, 1024> {
    Bounded(3)
}

impl Default for Producer {
    fn default() -> Self {
        Producer {
            records: Records::ClickEvent,
            padding_bytes: 0,
            wire_format: WireFormat::default(),
            partitions: three(),
        }
    }
}

/// What records the producer generates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum Records {
    /// The lab's ClickEvents (`clickevent`).
    #[default]
    ClickEvent,
    /// Random records of this Avro schema file, as written (relative to the
    /// scenario file; see [`Scenario::schema_path`]).
    Schema(PathBuf),
}

impl From<String> for Records {
    fn from(text: String) -> Self {
        if text == "clickevent" { Records::ClickEvent } else { Records::Schema(PathBuf::from(text)) }
    }
}

impl fmt::Display for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Records::ClickEvent => f.write_str("clickevent"),
            Records::Schema(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How the producer frames values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// Confluent's magic byte and 4-byte schema id (`confluent`).
    #[default]
    Confluent,
    /// Glue's header with the schema version's UUID (`glue`).
    Glue,
    /// Glue's header, zlib-compressed payload (`glue-zlib`).
    GlueZlib,
}

/// Where the Kafka cluster is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Brokers {
    /// tansu in the run's process (`embedded`).
    #[default]
    Embedded,
    /// A bootstrap list, `host:port,…`.
    List(String),
}

impl TryFrom<String> for Brokers {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.trim() {
            "embedded" => Ok(Brokers::Embedded),
            "" => Err("kafka.brokers is empty: give `embedded` or host:port,…".into()),
            list if list.contains("://") => {
                Err(format!("{list:?} is a URL; Kafka clients take host:port,… (or `embedded`)"))
            }
            list => Ok(Brokers::List(list.to_owned())),
        }
    }
}

impl fmt::Display for Brokers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Brokers::Embedded => f.write_str("embedded"),
            Brokers::List(list) => f.write_str(list),
        }
    }
}

/// The Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    /// `embedded` (an in-process broker) or a bootstrap broker list.
    #[serde(default)]
    pub brokers: Brokers,
    /// The topic produced to and consumed from (the lab's `ExampleTopic`).
    #[serde(default = "example_topic")]
    pub topic: String,
    /// librdkafka's `security.protocol` (default `PLAINTEXT`; `SASL_SSL`
    /// when only `sasl_mechanism` is given). MSK: `SSL` on 9094,
    /// `SASL_SSL` on 9096 (SCRAM) and 9098 (IAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Protocol>,
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `AWS_MSK_IAM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<Mechanism>,
    /// The SASL user name (PLAIN, SCRAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The environment variable holding the SASL password: the password
    /// itself never appears in a scenario, a result or a log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Or a file holding it (relative to the scenario file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The CA bundle for the brokers' certificates (relative to the
    /// scenario file; unset: the system's trust store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The client certificate, for mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key, for mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The region IAM tokens are signed for (unset: from the MSK broker
    /// host names, else the AWS region chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Other librdkafka settings for every client of the run
    /// (`"socket.timeout.ms" = "10000"`); security goes in the keys above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl Kafka {
    /// Whether any security key is set.
    fn secured(&self) -> bool {
        self.security.is_some_and(|p| p != Protocol::Plaintext)
            || self.sasl_mechanism.is_some()
            || self.username.is_some()
            || self.password_env.is_some()
            || self.password_file.is_some()
            || self.ca.is_some()
            || self.cert.is_some()
            || self.key.is_some()
    }

    /// The clients' security settings, with the password read from the
    /// environment (through `env`) or its file, and paths taken relative
    /// to `scenario_file`; checked (files exist, credentials present).
    pub fn security(
        &self,
        scenario_file: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Security, SecurityError> {
        let base = scenario_file.parent().unwrap_or(Path::new("."));
        let password = match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(SecurityError::Conflict(
                    "kafka.password_env and kafka.password_file: give one of them".to_owned(),
                ));
            }
            (Some(name), None) => Some(Secret::from_env(name, env)?),
            (None, Some(file)) => Some(Secret::from_file(&base.join(file))?),
            (None, None) => None,
        };
        let protocol = match (self.security, self.sasl_mechanism) {
            (Some(p), _) => p,
            (None, Some(_)) => Protocol::SaslSsl,
            (None, None) if self.ca.is_some() || self.cert.is_some() => Protocol::Ssl,
            (None, None) => Protocol::Plaintext,
        };
        let security = Security {
            protocol,
            mechanism: self.sasl_mechanism,
            username: self.username.clone(),
            password,
            ca: self.ca.as_ref().map(|p| base.join(p)),
            cert: self.cert.as_ref().map(|p| base.join(p)),
            key: self.key.as_ref().map(|p| base.join(p)),
            key_password: None,
            region: self.region.clone(),
        };
        security.check()?;
        Ok(security)
    }
}

fn example_topic() -> String {
    "ExampleTopic".to_owned()
}

impl Default for Kafka {
    fn default() -> Self {
        Kafka {
            brokers: Brokers::Embedded,
            topic: example_topic(),
            security: None,
            sasl_mechanism: None,
            username: None,
            password_env: None,
            password_file: None,
            ca: None,
            cert: None,
            key: None,
            region: None,
            properties: BTreeMap::new(),
        }
    }
}

/// The Lambda function and its event source mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    /// The mapping's BatchSize (records per invocation).
    #[serde(default = "thousand")]
    pub batch_size: Bounded<1, 10_000>,
    /// The mapping's batching window (MaximumBatchingWindowInSeconds; the
    /// service's default for Kafka sources is 500 ms).
    #[serde(default = "half_second", with = "duration_text")]
    pub batch_window: Duration,
    /// Attempts per record in total (the lab's `RETRIES`).
    #[serde(default = "lab_retries")]
    pub retries: Bounded<1, 100>,
    /// The backoff between those attempts.
    #[serde(default)]
    pub retry_policy: RetryPolicy,
    /// Concurrent PutRecordBatch calls per invocation.
    #[serde(default = "four")]
    pub concurrency: Bounded<1, 256>,
    /// Records per PutRecordBatch call (Firehose allows at most 500).
    #[serde(default = "five_hundred")]
    pub records_per_call: Bounded<1, 500>,
    /// Client-side pacing of the calls under `[firehose].quota`.
    #[serde(default)]
    pub pacing: PacingKind,
    /// The share of `[firehose].quota` paced at: the token bucket's, and
    /// where AIMD starts (0 < share ≤ 1).
    #[serde(default = "nine_tenths")]
    pub pacing_share: f64,
    /// What the mapping invokes: the built-in handler, or a function of
    /// the user's over the Lambda Runtime API.
    #[serde(default)]
    pub function: FunctionKind,
    /// With `function = "runtime-api"`: the command that starts one
    /// function process (program and arguments, no shell); one runs per
    /// poller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// With `function = "runtime-api"`: the function's timeout (1 s to 900 s).
    #[serde(default = "function_timeout", with = "duration_text")]
    pub timeout: Duration,
    /// With `function = "runtime-api"`: variables set for the function,
    /// over the lab's the run gives it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// What the event source mapping invokes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FunctionKind {
    /// The processor's handler, in process.
    #[default]
    Handler,
    /// A function of the user's over the Lambda Runtime API
    /// (`[processor] command`).
    RuntimeApi,
}

/// The lab template's `FunctionTimeout` default.
fn function_timeout() -> Duration {
    Duration::from_secs(300)
}

/// How the processor paces its `PutRecordBatch` calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacingKind {
    /// Calls go out as soon as they are ready.
    #[default]
    None,
    /// Token buckets at `pacing_share` of the quota.
    TokenBucket,
    /// Additive increase from `pacing_share`, halved on a throttled answer.
    Aimd,
}

fn nine_tenths() -> f64 {
    0.9
}

/// The longest batching window an event source mapping takes
/// (`MaximumBatchingWindowInSeconds` is 0..=300).
const MAX_BATCH_WINDOW: Duration = Duration::from_secs(300);

fn half_second() -> Duration {
    Duration::from_millis(500)
}
fn thousand() -> Bounded<1, 10_000> {
    Bounded(1000)
}
fn lab_retries() -> Bounded<1, 100> {
    Bounded(3)
}
fn four() -> Bounded<1, 256> {
    Bounded(4)
}
fn five_hundred() -> Bounded<1, 500> {
    Bounded(500)
}

impl Default for Processor {
    fn default() -> Self {
        Processor {
            batch_size: thousand(),
            batch_window: half_second(),
            retries: lab_retries(),
            retry_policy: RetryPolicy::default(),
            concurrency: four(),
            records_per_call: five_hundred(),
            pacing: PacingKind::None,
            pacing_share: nine_tenths(),
            function: FunctionKind::default(),
            command: Vec::new(),
            timeout: function_timeout(),
            env: BTreeMap::new(),
        }
    }
}

impl Processor {
    /// `function`, `command` and `timeout` fit together.
    fn check_function(&self) -> Result<(), String> {
        if !(Duration::from_secs(1)..=Duration::from_secs(900)).contains(&self.timeout) {
            return Err(format!(
                "processor.timeout: {} is outside 1s..=900s, Lambda's function timeouts",
                humantime::format_duration(self.timeout)
            ));
        }
        match (self.function, self.command.first()) {
            (FunctionKind::RuntimeApi, None) => {
                Err("processor.command: function = \"runtime-api\" needs the command that starts the function, e.g. \
                 command = [\"python\", \"-m\", \"awslambdaric\", \"handler.fn\"]"
                    .into())
            }
            (FunctionKind::RuntimeApi, Some(program)) if program.trim().is_empty() => {
                Err("processor.command: the program (its first entry) is empty".into())
            }
            (FunctionKind::Handler, Some(_)) => {
                Err("processor.command: a command is for function = \"runtime-api\"; the built-in handler runs in \
                     process"
                    .into())
            }
            (FunctionKind::Handler, None) if !self.env.is_empty() => {
                Err("processor.env: variables are for function = \"runtime-api\"".into())
            }
            _ => Ok(()),
        }
    }
}

/// Backoff between attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryPolicy {
    /// Capped exponential backoff with full jitter.
    #[default]
    Jittered,
    /// The lab's `(2·23^n)/1000` s schedule, for comparison.
    Lab,
}

/// `[cost]`: what the run's cost estimate assumes (see
/// `mskbench_core::cost`). Prices left out are us-east-1's list prices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// The function's memory, MB (Lambda's 128–10,240; the lab template's 1,024).
    #[serde(default = "lambda_memory")]
    pub lambda_memory_mb: Bounded<128, 10_240>,
    /// `x86_64` (the lab template's) or `arm64`: picks the default GB-second price.
    #[serde(default)]
    pub lambda_architecture: mskbench_core::cost::Architecture,
    /// Firehose Direct PUT ingestion, USD per billed GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firehose_usd_per_gb: Option<f64>,
    /// Lambda, USD per million requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_usd_per_million_requests: Option<f64>,
    /// Lambda, USD per GB-second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_usd_per_gb_second: Option<f64>,
}

fn lambda_memory() -> Bounded<128, 10_240> {
    Bounded(1024)
}

impl Default for Cost {
    fn default() -> Self {
        Cost {
            lambda_memory_mb: lambda_memory(),
            lambda_architecture: mskbench_core::cost::Architecture::default(),
            firehose_usd_per_gb: None,
            lambda_usd_per_million_requests: None,
            lambda_usd_per_gb_second: None,
        }
    }
}

impl Cost {
    /// The unit prices: those given, else us-east-1's for the architecture.
    pub fn prices(&self) -> mskbench_core::cost::Prices {
        let list = mskbench_core::cost::Prices::us_east_1(self.lambda_architecture);
        mskbench_core::cost::Prices {
            firehose_usd_per_gb: self.firehose_usd_per_gb.unwrap_or(list.firehose_usd_per_gb),
            lambda_usd_per_request: self
                .lambda_usd_per_million_requests
                .map_or(list.lambda_usd_per_request, |p| p / 1e6),
            lambda_usd_per_gb_second: self.lambda_usd_per_gb_second.unwrap_or(list.lambda_usd_per_gb_second),
        }
    }

    /// Whether every price given is a finite number ≥ 0.
    fn check(&self) -> Result<(), String> {
        for (key, v) in [
            ("firehose_usd_per_gb", self.firehose_usd_per_gb),
            ("lambda_usd_per_million_requests", self.lambda_usd_per_million_requests),
            ("lambda_usd_per_gb_second", self.lambda_usd_per_gb_second),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(format!("cost.{key}: {v} is not a price (a number ≥ 0)"));
            }
        }
        Ok(())
    }
}

/// The Firehose delivery stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FirehoseTable", into = "FirehoseTable")]
pub struct Firehose {
    /// Where the stream is.
    pub endpoint: Endpoint,
    /// The delivery stream's name.
    pub stream: String,
    /// The quota the built-in endpoint enforces (and the report draws).
    pub quota: Quota,
    /// Delivery buffer size in bytes before an S3 object is written.
    pub buffer_bytes: Bounded<1, { 128 * 1024 * 1024 }>,
    /// Delivery buffer age before an S3 object is written.
    pub buffer_interval: Duration,
    /// Faults the built-in endpoint injects.
    pub faults: Faults,
}

/// Where the Firehose endpoint is, and where its objects land.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Endpoint {
    /// The built-in endpoint, started by the run, delivering into the run folder (`embedded`).
    #[default]
    Embedded,
    /// An endpoint of its own (`mskbench serve firehose`), with the local
    /// directory its objects land in (`delivered_dir`), read back after the run.
    Url {
        /// `http://` or `https://`.
        url: String,
        /// Its S3-layout delivery directory.
        delivered_dir: PathBuf,
    },
    /// A stream whose objects land in S3 (`bucket`, `prefix`), read back
    /// with `ListObjectsV2` and `GetObject`: real Firehose (`aws`: the
    /// region's endpoint, or the SDK's `AWS_ENDPOINT_URL_FIREHOSE` /
    /// `AWS_ENDPOINT_URL`), or an endpoint URL.
    S3 {
        /// `None` for `aws`; else the endpoint URL.
        url: Option<String>,
        /// The destination bucket.
        bucket: String,
        /// The stream's S3 prefix; objects are under `<prefix>YYYY/MM/dd/HH/`.
        prefix: String,
    },
}

impl Endpoint {
    /// Whether the stream's objects land in S3 (read back from a bucket).
    pub fn delivers_to_s3(&self) -> bool {
        matches!(self, Endpoint::S3 { .. })
    }
}

/// The lab's S3 prefix (LAB-FACTS: objects under `MSKToS3/YYYY/MM/dd/HH/`).
pub const LAB_PREFIX: &str = "MSKToS3/";

/// `[firehose]` as written: the endpoint and its directory are two keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FirehoseTable {
    /// `embedded` (the built-in endpoint), an endpoint URL, or `aws`.
    #[serde(default = "embedded")]
    endpoint: String,
    #[serde(default = "stream")]
    stream: String,
    /// A preset (`us-east-1`, `other`, …) or `records=N,requests=N,bytes=N`.
    #[serde(default, with = "text")]
    quota: Quota,
    #[serde(default = "mib")]
    buffer_bytes: Bounded<1, { 128 * 1024 * 1024 }>,
    #[serde(default = "second", with = "duration_text")]
    buffer_interval: Duration,
    #[serde(default)]
    faults: Faults,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivered_dir: Option<PathBuf>,
    /// The bucket the stream delivers to (`aws`, or an endpoint URL whose objects land in S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    /// The stream's S3 prefix (with `bucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
}

fn embedded() -> String {
    "embedded".to_owned()
}

/// An S3 bucket name: 3–63 lowercase letters, digits, `-` and `.`.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!("firehose.bucket: {bucket:?} is not a bucket name (3 to 63 of a-z 0-9 - .; the name, not an ARN)"))
    }
}

/// A Firehose S3 prefix the read-back can list under: `/`-separated
/// segments, none empty, no leading `/`, no `!{…}` expressions (the
/// read-back lists `<prefix>YYYY/MM/dd/HH/`, Firehose's default layout).
fn check_prefix(prefix: &str) -> Result<(), String> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.contains("!{") {
        return Err(format!(
            "firehose.prefix: {prefix:?} holds a custom expression; the read-back lists Firehose's default layout \
             <prefix>YYYY/MM/dd/HH/ only"
        ));
    }
    if trimmed.is_empty() || trimmed.split('/').any(str::is_empty) {
        return Err(format!("firehose.prefix: {prefix:?} needs /-separated, non-empty segments, e.g. \"MSKToS3/\""));
    }
    Ok(())
}
fn stream() -> String {
    "MSKToS3-deliverystream".to_owned()
}
fn mib() -> Bounded<1, { 128 * 1024 * 1024 }> {
    Bounded(1024 * 1024)
}
fn second() -> Duration {
    Duration::from_secs(1)
}

impl TryFrom<FirehoseTable> for Firehose {
    type Error = String;

    fn try_from(t: FirehoseTable) -> Result<Self, String> {
        if t.prefix.is_some() && t.bucket.is_none() {
            return Err("firehose.prefix: only a stream delivering to S3 (firehose.bucket) takes a prefix".into());
        }
        let s3 = |url: Option<String>, bucket: String| -> Result<Endpoint, String> {
            check_bucket(&bucket)?;
            let prefix = t.prefix.clone().unwrap_or_else(|| LAB_PREFIX.to_owned());
            check_prefix(&prefix)?;
            Ok(Endpoint::S3 { url, bucket, prefix })
        };
        let endpoint = match (t.endpoint.as_str(), t.delivered_dir, t.bucket.clone()) {
            ("embedded", None, None) => Endpoint::Embedded,
            ("embedded", Some(_), _) => {
                return Err("firehose.delivered_dir: only an endpoint URL takes a delivery directory; the built-in \
                            endpoint delivers into the run folder"
                    .into());
            }
            ("embedded", None, Some(_)) => {
                return Err("firehose.bucket: the built-in endpoint delivers into the run folder; a bucket is for \
                            endpoint = \"aws\" or an endpoint URL whose objects land in S3"
                    .into());
            }
            (_, Some(_), Some(_)) => {
                return Err("firehose.delivered_dir and firehose.bucket: the objects land in one place, a local \
                            directory or a bucket; give one"
                    .into());
            }
            ("aws", Some(_), None) => {
                return Err("firehose.delivered_dir: real Firehose delivers to S3; give firehose.bucket (and \
                            firehose.prefix) instead"
                    .into());
            }
            ("aws", None, None) => {
                return Err("firehose.bucket: endpoint = \"aws\" needs the bucket the stream delivers to (the lab \
                            template's output), to read the objects back"
                    .into());
            }
            ("aws", None, Some(bucket)) => s3(None, bucket)?,
            (url, dir, bucket) if url.starts_with("http://") || url.starts_with("https://") => match (dir, bucket) {
                (Some(delivered_dir), _) => Endpoint::Url { url: url.to_owned(), delivered_dir },
                (None, Some(bucket)) => s3(Some(url.to_owned()), bucket)?,
                (None, None) => {
                    return Err(format!(
                        "firehose.delivered_dir: an endpoint URL ({url}) needs the directory its objects land in, \
                         or firehose.bucket for a stream delivering to S3, to read them back"
                    ));
                }
            },
            (other, _, _) => {
                return Err(format!("firehose.endpoint: {other:?} is not embedded, aws or an http(s):// URL"));
            }
        };
        Ok(Firehose {
            endpoint,
            stream: t.stream,
            quota: t.quota,
            buffer_bytes: t.buffer_bytes,
            buffer_interval: t.buffer_interval,
            faults: t.faults,
        })
    }
}

impl From<Firehose> for FirehoseTable {
    fn from(f: Firehose) -> Self {
        let (endpoint, delivered_dir, bucket, prefix) = match f.endpoint {
            Endpoint::Embedded => (embedded(), None, None, None),
            Endpoint::Url { url, delivered_dir } => (url, Some(delivered_dir), None, None),
            Endpoint::S3 { url, bucket, prefix } => {
                (url.unwrap_or_else(|| "aws".to_owned()), None, Some(bucket), Some(prefix))
            }
        };
        FirehoseTable {
            endpoint,
            stream: f.stream,
            quota: f.quota,
            buffer_bytes: f.buffer_bytes,
            buffer_interval: f.buffer_interval,
            faults: f.faults,
            delivered_dir,
            bucket,
            prefix,
        }
    }
}

impl Default for Firehose {
    fn default() -> Self {
        Firehose {
            endpoint: Endpoint::Embedded,
            stream: stream(),
            quota: Quota::default(),
            buffer_bytes: mib(),
            buffer_interval: second(),
            faults: Faults::default(),
        }
    }
}

/// Faults the built-in Firehose endpoint injects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Probability that a record the quota admitted fails with `InternalFailure`.
    #[serde(default)]
    pub internal_failure_rate: Probability,
    /// Probability that a whole call fails with HTTP 500 `InternalFailure`.
    #[serde(default)]
    pub http_500_rate: Probability,
    /// `0`, `fixed:50ms`, `uniform:10ms..80ms` or `exp:20ms`.
    #[serde(default)]
    pub latency: Latency,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { internal_failure_rate: Probability(0.0), http_500_rate: Probability(0.0), latency: Latency::None }
    }
}

/// The schema registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// `embedded` (the built-in Confluent-compatible registry), a registry
    /// URL, or `glue:NAME` for an AWS Glue registry.
    #[serde(default)]
    pub kind: RegistryKind,
}

/// Which schema registry a run uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum RegistryKind {
    /// The built-in Confluent-compatible registry, started by the run (`embedded`).
    #[default]
    Embedded,
    /// A Confluent-compatible registry at this `http(s)://` URL.
    Url(String),
    /// An AWS Glue registry of this name (`glue:NAME`).
    Glue {
        /// The registry's name.
        name: String,
    },
}

impl RegistryKind {
    /// True for a Glue registry.
    pub fn is_glue(&self) -> bool {
        matches!(self, RegistryKind::Glue { .. })
    }
}

impl TryFrom<String> for RegistryKind {
    type Error = String;
    fn try_from(kind: String) -> Result<Self, String> {
        if kind == "embedded" {
            Ok(RegistryKind::Embedded)
        } else if let Some(name) = kind.strip_prefix("glue:") {
            if name.is_empty() {
                Err("registry.kind: glue:NAME needs the registry's name".into())
            } else {
                Ok(RegistryKind::Glue { name: name.to_owned() })
            }
        } else if kind.starts_with("http://") || kind.starts_with("https://") {
            Ok(RegistryKind::Url(kind))
        } else {
            Err(format!("registry.kind: {kind:?} is not embedded, an http(s):// URL or glue:NAME"))
        }
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryKind::Embedded => f.write_str("embedded"),
            // A URL may carry credentials: written without them.
            RegistryKind::Url(url) => f.write_str(&RegistryUrl::parse(url).map_or_else(|_| redacted(url), |u| u.base)),
            RegistryKind::Glue { name } => write!(f, "glue:{name}"),
        }
    }
}

// ---- values checked while they are read ----

/// An integer in `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        match u64::try_from(v) {
            Ok(v) if (MIN..=MAX).contains(&v) => Ok(Bounded(v)),
            _ => Err(de::Error::custom(format!("must be {MIN}..={MAX}, got {v}"))),
        }
    }
}

/// Records per second: positive and finite, written as a number (`2000`)
/// or as on the command line (`"20k"`, `"1.5M"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Rate(pub f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(f64),
            Text(String),
        }
        let v = match Written::deserialize(d)? {
            Written::Number(v) => v,
            Written::Text(text) => mskbench_core::quota::parse_records_per_sec(&text).ok_or_else(|| {
                de::Error::custom(format!("{text:?} is not a rate (records per second, e.g. 5000 or \"20k\")"))
            })?,
        };
        if v.is_finite() && v > 0.0 && v <= 10_000_000.0 {
            Ok(Rate(v))
        } else {
            Err(de::Error::custom(format!("a rate must be in (0, 10000000] records/s, got {v}")))
        }
    }
}

/// A probability in `0..=1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Probability(pub f64);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Probability(v))
        } else {
            Err(de::Error::custom(format!("a rate of faults must be in 0..=1, got {v}")))
        }
    }
}

/// Values written as their text form (`FromStr` to read, `Display` to write).
mod text {
    use super::*;

    pub(super) fn serialize<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Serialises each type as its `Display` text, the form its file value takes.
macro_rules! serialize_as_text {
    ($($t:ty),*) => {
        $(impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        })*
    };
}

serialize_as_text!(Records, Brokers, RegistryKind);

/// Durations written as text: `30s`, `500ms`, `2m`.
mod duration_text {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| de::Error::custom(format!("{text:?} is not a duration like \"30s\" or \"500ms\": {e}")))
    }
}

// ---- reading ----

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file as given.
        file: String,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The content is not a valid scenario.
    #[error("{file}: {message}")]
    Invalid {
        /// The file as given.
        file: String,
        /// What is wrong; toml's messages name the line, column and key
        /// and quote the line.
        message: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario file.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, and for invalid content the line,
    /// column and key.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        Self::load_with(path, &[])
    }

    /// [`Scenario::load`], with `overrides` (`--set KEY=VALUE`, in order)
    /// applied to the file's keys before they are checked: a dotted path
    /// (`processor.batch_size`, `phases.1.rate`, `firehose.quota`) and a
    /// TOML value (`500`, `"2s"`, `["unaccounted == 0"]`; text that is not
    /// TOML is taken as a string, so `firehose.quota=us-east-1` works).
    ///
    /// # Errors
    /// As [`Scenario::load`]; an override that names no table or phase
    /// there is, or makes the scenario invalid, is named in the error.
    pub fn load_with(path: &Path, overrides: &[(String, String)]) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { file: file.clone(), source })?;
        let scenario = if overrides.is_empty() {
            Self::parse(&text, &file)?
        } else {
            let shown = overrides.iter().map(|(k, v)| format!("--set {k}={v}")).collect::<Vec<_>>().join(" ");
            let file = format!("{file} with {shown}");
            let invalid = |message: String| ScenarioError::Invalid { file: file.clone(), message };
            let mut doc: toml::Table =
                toml::from_str(&text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
            for (key, value) in overrides {
                set(&mut doc, key, value).map_err(|e| invalid(format!("--set {key}: {e}")))?;
            }
            let scenario = Scenario::deserialize(toml::Value::Table(doc)).map_err(|e| invalid(e.to_string()))?;
            scenario.checked(&file)?
        };
        // A schema file named by the scenario must exist beside it.
        if let Some(schema) = scenario.schema_path(path)
            && !schema.is_file()
        {
            return Err(ScenarioError::Invalid {
                file,
                message: format!("producer.records: schema file {} not found", schema.display()),
            });
        }
        Ok(scenario)
    }

    /// Checks scenario text; `file` names it in errors.
    ///
    /// # Errors
    /// [`ScenarioError::Invalid`] with line, column and key.
    pub fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid { file: file.to_owned(), message };
        let scenario: Scenario = toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        scenario.checked(file)
    }

    /// The checks that span keys, after each key was read and checked alone.
    fn checked(self, file: &str) -> Result<Self, ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid { file: file.to_owned(), message };
        let scenario = self;
        if scenario.phases.is_empty() {
            return Err(invalid("phases: at least one [[phases]] table is required".into()));
        }
        if !scenario.phases.iter().any(|p| p.measure) {
            return Err(invalid("phases: every phase has measure = false, so nothing would be measured".into()));
        }
        if let Some(p) = scenario.phases.iter().find(|p| p.duration.is_zero()) {
            return Err(invalid(format!("phases: phase {:?} has a zero duration", p.name)));
        }
        if scenario.processor.batch_window > MAX_BATCH_WINDOW {
            return Err(invalid(format!(
                "processor.batch_window: {} is above MaximumBatchingWindowInSeconds' most, 300 s",
                humantime::format_duration(scenario.processor.batch_window)
            )));
        }
        scenario.mapping.check().map_err(invalid)?;
        scenario.processor.check_function().map_err(invalid)?;
        let share = scenario.processor.pacing_share;
        if !(share > 0.0 && share <= 1.0) {
            return Err(invalid(format!("processor.pacing_share: {share} is not in (0, 1]")));
        }
        scenario.cost.check().map_err(invalid)?;
        scenario.check_parts().map_err(invalid)?;
        faults::check(&scenario.faults, scenario.total_duration(), scenario.total_duration() + scenario.drain)
            .map_err(invalid)?;
        scenario.check_fault_parts().map_err(invalid)?;
        objective::check(&scenario.slo, scenario.total_duration()).map_err(invalid)?;
        sweep::check(&scenario.sweep, scenario.phases.len()).map_err(invalid)?;
        Ok(scenario)
    }

    /// Settings that are each valid but do not fit together.
    fn check_parts(&self) -> Result<(), String> {
        if self.kafka.brokers == Brokers::Embedded && self.kafka.secured() {
            return Err("kafka: the embedded broker speaks PLAINTEXT; TLS and SASL settings need a broker list in                         kafka.brokers"
                .into());
        }
        if let Some(key) = self.kafka.properties.keys().find(|k| is_security_property(k)) {
            return Err(format!(
                "kafka.properties.{key:?}: security settings have keys of their own in [kafka] (security,                  sasl_mechanism, username, password_env, password_file, ca, cert, key)"
            ));
        }
        match (self.producer.wire_format, &self.registry.kind) {
            (WireFormat::Confluent, RegistryKind::Glue { .. }) => {
                Err("producer.wire_format: confluent framing needs a Confluent registry, but registry.kind is glue:…"
                    .into())
            }
            (WireFormat::Glue | WireFormat::GlueZlib, kind) if !kind.is_glue() => {
                Err(format!("producer.wire_format: Glue framing needs registry.kind = \"glue:NAME\", not \"{kind}\""))
            }
            _ => Ok(()),
        }
    }

    /// Faults that need a part the run starts itself: the harness injects
    /// them there, and cannot reach into a cluster or endpoint of its own.
    fn check_fault_parts(&self) -> Result<(), String> {
        for (i, f) in self.faults.iter().enumerate() {
            let needs = match f.kind {
                FaultKind::ProcessorCrash => None,
                FaultKind::RegistryDown(_) => {
                    (self.registry.kind != RegistryKind::Embedded).then_some("registry.kind = \"embedded\"")
                }
                FaultKind::FirehoseDown(_) => {
                    (self.firehose.endpoint != Endpoint::Embedded).then_some("firehose.endpoint = \"embedded\"")
                }
                FaultKind::NetworkLatency(_) | FaultKind::BrokerRestart => {
                    (self.kafka.brokers != Brokers::Embedded).then_some("kafka.brokers = \"embedded\"")
                }
            };
            if let Some(needs) = needs {
                return Err(format!(
                    "faults[{}] ({}): needs {needs}: the run injects it into the part it starts",
                    i + 1,
                    f.kind.name()
                ));
            }
        }
        Ok(())
    }

    /// The `.avsc` file the producer uses, if not ClickEvents.
    pub fn schema_path(&self, scenario_file: &Path) -> Option<PathBuf> {
        match &self.producer.records {
            Records::ClickEvent => None,
            Records::Schema(path) => Some(scenario_file.parent().unwrap_or(Path::new(".")).join(path)),
        }
    }

    /// Length of all phases.
    pub fn total_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// Records the phases will produce at their nominal rates.
    pub fn planned_records(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| {
                let mean = (p.rate.0 + p.to_rate.map_or(p.rate.0, |r| r.0)) / 2.0;
                (mean * p.duration.as_secs_f64()).round() as u64
            })
            .sum()
    }
}

impl fmt::Display for Scenario {
    /// The plan, as `mskbench run --dry-run` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario {} (seed {}): {}", self.name, self.seed, self.description)?;
        for p in &self.phases {
            let to = p.to_rate.map_or(String::new(), |r| format!(" → {}", r.0));
            let measured = if p.measure { "" } else { " (warm-up, not measured)" };
            writeln!(
                f,
                "  phase {}: {} at {}{to} records/s{measured}",
                p.name,
                humantime::format_duration(p.duration),
                p.rate.0
            )?;
        }
        writeln!(
            f,
            "  about {} records over {}, then up to {} to drain",
            self.planned_records(),
            humantime::format_duration(self.total_duration()),
            humantime::format_duration(self.drain)
        )?;
        let pr = &self.producer;
        writeln!(
            f,
            "  producer: {} records, {:?} framing, {} partitions",
            pr.records, pr.wire_format, pr.partitions.0
        )?;
        writeln!(f, "  kafka: {} topic {}", self.kafka.brokers, self.kafka.topic)?;
        let p = &self.processor;
        writeln!(
            f,
            "  processor: batch size {}, window {}, {} attempts ({:?}), {} concurrent calls of up to {} records",
            p.batch_size.0,
            humantime::format_duration(p.batch_window),
            p.retries.0,
            p.retry_policy,
            p.concurrency.0,
            p.records_per_call.0
        )?;
        if p.pacing != PacingKind::None {
            writeln!(f, "  pacing: {:?} from {} of the quota", p.pacing, p.pacing_share)?;
        }
        let fh = &self.firehose;
        let endpoint = match &fh.endpoint {
            Endpoint::Embedded => "embedded".to_owned(),
            Endpoint::Url { url, delivered_dir } => format!("{url} (objects in {})", delivered_dir.display()),
            Endpoint::S3 { url, bucket, prefix } => {
                format!("{} (objects in s3://{bucket}/{prefix})", url.as_deref().unwrap_or("aws"))
            }
        };
        writeln!(f, "  firehose: {endpoint} stream {}, quota {}", fh.stream, fh.quota)?;
        writeln!(f, "  registry: {}", self.registry.kind)?;
        for fault in &self.faults {
            writeln!(f, "  fault: {fault}")?;
        }
        for slo in &self.slo {
            writeln!(f, "  slo: {slo}")?;
        }
        for s in &self.sweep {
            writeln!(f, "  sweep: {} over {}", s.key, s.set_values().join(", "))?;
        }
        Ok(())
    }
}

/// Sets the key at dotted `path` of `doc` to `text` read as a TOML value
/// (see [`Scenario::load_with`]). Tables on the way are made when missing
/// (a key the scenario does not know is then refused when it is read);
/// list elements are named by index and must exist.
fn set(doc: &mut toml::Table, path: &str, text: &str) -> Result<(), String> {
    let value = match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(text.to_owned())),
        Err(_) => toml::Value::String(text.to_owned()),
    };
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("{path:?} is not a dotted key path such as processor.batch_size"));
    }
    set_at(doc, &parts, value)
}

/// [`set`] below `table`, at `parts` (not empty).
fn set_at(table: &mut toml::Table, parts: &[&str], value: toml::Value) -> Result<(), String> {
    let Some((first, rest)) = parts.split_first() else { return Err("an empty key".into()) };
    if rest.is_empty() {
        table.insert((*first).to_owned(), value);
        return Ok(());
    }
    let next = table.entry((*first).to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    descend(next, first, rest, value)
}

/// [`set`] below `node`, the value at key `name`, at `rest` (not empty).
fn descend(node: &mut toml::Value, name: &str, rest: &[&str], value: toml::Value) -> Result<(), String> {
    match node {
        toml::Value::Table(t) => set_at(t, rest, value),
        toml::Value::Array(items) => {
            let Some((index, rest)) = rest.split_first() else { return Err("an empty key".into()) };
            let len = items.len();
            let i: usize =
                index.parse().map_err(|_| format!("{name} is a list: name an element by its index, e.g. {name}.0"))?;
            let item = items.get_mut(i).ok_or_else(|| format!("{name} has {len} element(s), so no {name}.{i}"))?;
            if rest.is_empty() {
                *item = value;
                Ok(())
            } else {
                descend(item, index, rest, value)
            }
        }
        _ => Err(format!("{name} is a value, not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
seed = 1

[[phases]]
name = "steady"
duration = "2s"
rate = 100
"#;

    fn err(text: &str) -> String {
        Scenario::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_scenario_gets_the_lab_defaults() {
        let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(s.processor.batch_size.0, 1000);
        assert_eq!(s.processor.retries.0, 3);
        assert_eq!(s.kafka.topic, "ExampleTopic");
        assert_eq!(s.firehose.quota, Quota::US_EAST_1);
        assert_eq!(s.planned_records(), 200);
        assert!(s.to_string().contains("phase steady: 2s at 100 records/s"));
    }

    #[test]
    fn a_function_of_ones_own_takes_a_command_a_timeout_and_variables() {
        let text = format!(
            "{MINIMAL}\n[processor]\nfunction = \"runtime-api\"\ncommand = [\"python3\", \"-m\", \"awslambdaric\", \"handler.fn\"]\n\
             timeout = \"30s\"\nenv = {{ MODE = \"fast\" }}\n"
        );
        let s = Scenario::parse(&text, "t.toml").unwrap();
        assert_eq!(s.processor.function, FunctionKind::RuntimeApi);
        assert_eq!(s.processor.command, ["python3", "-m", "awslambdaric", "handler.fn"]);
        assert_eq!(s.processor.timeout, Duration::from_secs(30));
        assert_eq!(s.processor.env["MODE"], "fast");
        let default = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(
            (default.processor.function, default.processor.timeout),
            (FunctionKind::Handler, Duration::from_secs(300))
        );

        let e = err(&format!("{MINIMAL}\n[processor]\nfunction = \"runtime-api\"\n"));
        assert!(e.contains("processor.command") && e.contains("needs the command"), "{e}");
        let e = err(&format!("{MINIMAL}\n[processor]\ncommand = [\"./bootstrap\"]\n"));
        assert!(e.contains("a command is for function = \"runtime-api\""), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[processor]\nfunction = \"runtime-api\"\ncommand = [\"x\"]\ntimeout = \"901s\"\n"
        ));
        assert!(e.contains("processor.timeout") && e.contains("outside 1s..=900s"), "{e}");
        let e = err(&format!("{MINIMAL}\n[processor]\nfunction = \"lambda\"\n"));
        assert!(e.contains("runtime-api"), "{e}");
    }

    #[test]
    fn typos_are_errors_naming_file_line_and_key() {
        let e = err(&format!("{MINIMAL}\n[processor]\nbatch_sise = 10\n"));
        assert!(e.starts_with("t.toml: "), "{e}");
        assert!(e.contains("line 11") && e.contains("batch_sise"), "{e}");
        let e = err(&format!("seeed = 3\n{MINIMAL}"));
        assert!(e.contains("seeed"), "{e}");
    }

    #[test]
    fn overrides_set_keys_of_tables_and_phases_before_the_checks() {
        let dir = std::env::temp_dir().join(format!("mskbench-set-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.toml");
        std::fs::write(&file, MINIMAL).unwrap();
        let set = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            Scenario::load_with(&file, &pairs)
        };
        let s = set(&[("processor.batch_size", "500"), ("phases.0.rate", "\"2k\""), ("seed", "9")]).unwrap();
        assert_eq!((s.processor.batch_size.0, s.phases[0].rate, s.seed), (500, Rate(2_000.0), 9));
        let s = set(&[("firehose.quota", "us-east-1"), ("phases.0.duration", "3s")]).unwrap();
        assert_eq!(s.phases[0].duration, Duration::from_secs(3), "text that is not TOML is a string");

        let e = set(&[("phases.3.rate", "5")]).unwrap_err().to_string();
        assert!(e.contains("--set phases.3.rate") && e.contains("phases has 1 element(s)"), "{e}");
        let e = set(&[("processor.batch_size", "0")]).unwrap_err().to_string();
        assert!(e.contains("with --set processor.batch_size=0") && e.contains("1..=10000"), "{e}");
        let e = set(&[("processor.nope", "1")]).unwrap_err().to_string();
        assert!(e.contains("nope"), "an unknown key is refused: {e}");
        let e = set(&[("seed.x", "1")]).unwrap_err().to_string();
        assert!(e.contains("seed is a value"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn out_of_range_values_are_errors_at_their_line() {
        let e = err(&format!("{MINIMAL}\n[processor]\nbatch_size = 0\n"));
        assert!(e.contains("line 11") && e.contains("must be 1..=10000, got 0"), "{e}");
        let e = err(&format!("{MINIMAL}\n[processor]\nrecords_per_call = 501\n"));
        assert!(e.contains("must be 1..=500"), "{e}");
        let e = err(&format!("{MINIMAL}\n[firehose.faults]\nhttp_500_rate = 1.5\n"));
        assert!(e.contains("0..=1"), "{e}");
        let e = err(&MINIMAL.replace("rate = 100", "rate = -5"));
        assert!(e.contains("a rate must be"), "{e}");
        let e = err(&MINIMAL.replace("rate = 100", "rate = \"lots\""));
        assert!(e.contains("\"lots\" is not a rate"), "{e}");
        let e = err(&MINIMAL.replace("rate = 100", "rate = \"20M\""));
        assert!(e.contains("a rate must be"), "20M is over the most: {e}");
        let k = Scenario::parse(&MINIMAL.replace("rate = 100", "rate = \"2.5k\""), "t.toml").unwrap();
        assert_eq!(k.phases[0].rate, Rate(2_500.0), "rates as on the command line");
        let e = err(&MINIMAL.replace("\"2s\"", "\"two seconds\""));
        assert!(e.contains("not a duration"), "{e}");
    }

    #[test]
    fn slos_quotas_and_latencies_are_parsed_when_read() {
        let e = err(&format!("slo = [\"throttle_ratio < 0.01\"]\n{MINIMAL}"));
        assert!(e.contains("line 1") && e.contains("unknown metric"), "{e}");
        let e = err(&format!("{MINIMAL}\n[firehose]\nquota = \"mars-1\"\n"));
        assert!(e.contains("quota") || e.contains("mars-1"), "{e}");
        let e = err(&format!("{MINIMAL}\n[firehose.faults]\nlatency = \"soon\"\n"));
        assert!(e.contains("line 11"), "{e}");
        let ok = format!(
            "slo = [\"e2e_p99_ms < 2000\"]\n{MINIMAL}\n[firehose]\nquota = \"records=2000,requests=100,bytes=1MiB\"\n"
        );
        let s = Scenario::parse(&ok, "t.toml").unwrap();
        assert_eq!(s.firehose.quota.records_per_sec, 2000);
        assert_eq!(s.slo[0].slo.metric, "e2e_p99_ms");
    }

    #[test]
    fn parts_must_fit_together() {
        let e = err(&format!("{MINIMAL}\n[producer]\nwire_format = \"glue\"\n"));
        assert!(e.contains("producer.wire_format") && e.contains("glue:NAME"), "{e}");
        let e = err(&format!("{MINIMAL}\n[registry]\nkind = \"glue:reg\"\n"));
        assert!(e.contains("confluent framing needs a Confluent registry"), "{e}");
        let glue = format!("{MINIMAL}\n[producer]\nwire_format = \"glue-zlib\"\n\n[registry]\nkind = \"glue:reg\"\n");
        assert!(Scenario::parse(&glue, "t.toml").is_ok());
        let e = err(&format!("{MINIMAL}\n[registry]\nkind = \"confluent\"\n"));
        assert!(e.contains("registry.kind"), "{e}");
        let e = err(&format!("{MINIMAL}\n[firehose]\nendpoint = \"http://127.0.0.1:4573\"\n"));
        assert!(e.contains("firehose.delivered_dir"), "{e}");
        let ok = format!("{MINIMAL}\n[firehose]\nendpoint = \"http://127.0.0.1:4573\"\ndelivered_dir = \"s3\"\n");
        assert!(Scenario::parse(&ok, "t.toml").is_ok());
        assert!(err(&format!("{MINIMAL}\n[firehose]\nendpoint = \"aws\"\n")).contains("firehose.bucket"));
        let aws =
            Scenario::parse(&format!("{MINIMAL}\n[firehose]\nendpoint = \"aws\"\nbucket = \"lab-b\"\n"), "t.toml")
                .unwrap();
        assert_eq!(
            aws.firehose.endpoint,
            Endpoint::S3 { url: None, bucket: "lab-b".into(), prefix: "MSKToS3/".into() }
        );
        let moto = "endpoint = \"http://127.0.0.1:5000\"\nbucket = \"lab-b\"\nprefix = \"x/y/\"";
        let moto = Scenario::parse(&format!("{MINIMAL}\n[firehose]\n{moto}\n"), "t.toml").unwrap();
        assert_eq!(
            moto.firehose.endpoint,
            Endpoint::S3 { url: Some("http://127.0.0.1:5000".into()), bucket: "lab-b".into(), prefix: "x/y/".into() }
        );
        let back: Scenario = serde_json::from_value(serde_json::to_value(&moto).unwrap()).unwrap();
        assert_eq!(back.firehose, moto.firehose, "written out and read back");
        for (keys, named) in [
            ("endpoint = \"aws\"\nbucket = \"Lab_Bucket\"", "firehose.bucket"),
            ("endpoint = \"aws\"\nbucket = \"arn:aws:s3:::b\"", "firehose.bucket"),
            ("endpoint = \"aws\"\nbucket = \"lab-b\"\nprefix = \"a//b/\"", "firehose.prefix"),
            ("endpoint = \"aws\"\nbucket = \"lab-b\"\nprefix = \"!{timestamp:yyyy}/\"", "firehose.prefix"),
            ("endpoint = \"aws\"\ndelivered_dir = \"s3\"", "firehose.delivered_dir"),
            ("bucket = \"lab-b\"", "firehose.bucket"),
            ("prefix = \"MSKToS3/\"", "firehose.prefix"),
            ("endpoint = \"http://h:1\"\nbucket = \"lab-b\"\ndelivered_dir = \"s3\"", "firehose.delivered_dir and"),
        ] {
            let e = err(&format!("{MINIMAL}\n[firehose]\n{keys}\n"));
            assert!(e.contains(named), "{keys}: {e}");
        }
    }

    #[test]
    fn a_scenario_written_out_reads_back_the_same() {
        let text = format!(
            "slo = [\"e2e_p99_ms < 2000\", \"unaccounted == 0\"]\n{MINIMAL}\n[kafka]\nbrokers = \"b-1:9092,b-2:9092\"\n\
             [firehose]\nendpoint = \"http://127.0.0.1:4573\"\ndelivered_dir = \"s3\"\nquota = \"other\"\n\
             [firehose.faults]\nlatency = \"uniform:10ms..80ms\"\n[registry]\nkind = \"https://u:secret@sr.example\"\n"
        );
        let s = Scenario::parse(&text, "t.toml").unwrap();
        assert_eq!(s.kafka.brokers, Brokers::List("b-1:9092,b-2:9092".into()));
        assert_eq!(
            s.firehose.endpoint,
            Endpoint::Url { url: "http://127.0.0.1:4573".into(), delivered_dir: PathBuf::from("s3") }
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["firehose"]["quota"], "records=100000,requests=1000,bytes=1048576");
        assert_eq!(json["slo"][0], "e2e_p99_ms < 2000");
        assert_eq!(json["registry"]["kind"], "https://sr.example", "credentials are not written out");
        let mut back: Scenario = serde_json::from_value(json).unwrap();
        back.registry = s.registry.clone();
        assert_eq!(back, s);
    }

    #[test]
    fn phases_must_measure_something() {
        assert!(err("name = \"t\"\nseed = 1\nphases = []\n").contains("at least one"));
        assert!(
            err(&MINIMAL.replace("rate = 100", "rate = 100\nmeasure = false")).contains("nothing would be measured")
        );
        assert!(err(&MINIMAL.replace("\"2s\"", "\"0s\"")).contains("zero duration"));
    }

    fn fault(entry: &str) -> String {
        format!("{MINIMAL}\n[[faults]]\n{entry}\n").replacen("seed = 1", "seed = 1\ndrain = \"3s\"", 1)
    }

    #[test]
    fn a_fault_schedule_is_read_into_windows_from_the_start_of_producing() {
        let text = format!(
            "{MINIMAL}\n[[faults]]\nkind = \"processor_crash\"\nat = \"1s\"\nduration = \"500ms\"\n\n\
             [[faults]]\nkind = \"firehose_down\"\nfrom = \"500ms\"\nuntil = \"1500ms\"\nmode = \"http_503\"\n\n\
             [[faults]]\nkind = \"registry_down\"\nfrom = \"0s\"\nduration = \"1s\"\n\n\
             [[faults]]\nkind = \"network_latency\"\nfrom = \"1s\"\nduration = \"1s\"\nlatency = \"200ms\"\n"
        );
        let s = Scenario::parse(&text, "t.toml").unwrap();
        let ms = Duration::from_millis;
        assert_eq!(
            s.faults,
            vec![
                Fault { kind: FaultKind::ProcessorCrash, from: ms(1000), until: ms(1500) },
                Fault { kind: FaultKind::FirehoseDown(FirehoseOutage::Http503), from: ms(500), until: ms(1500) },
                Fault { kind: FaultKind::RegistryDown(RegistryOutage::Refuse), from: ms(0), until: ms(1000) },
                Fault { kind: FaultKind::NetworkLatency(ms(200)), from: ms(1000), until: ms(2000) },
            ]
        );
        assert!(s.to_string().contains("fault: firehose_down (http_503) from 500ms until 1s 500ms"), "{s}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["faults"][3]["latency"], "200ms");
        assert_eq!(json["faults"][1]["mode"], "http_503");
        let back: Scenario = serde_json::from_value(json).unwrap();
        assert_eq!(back.faults, s.faults, "written out, the schedule reads back the same");
        assert!(serde_json::to_value(Scenario::parse(MINIMAL, "t.toml").unwrap()).unwrap().get("faults").is_none());
    }

    #[test]
    fn a_fault_entry_that_makes_no_sense_is_refused_at_its_line() {
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"1s\""));
        assert!(e.contains("line 11") && e.contains("needs duration") && e.contains("firehose_down"), "{e}");
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"1s\"\nduration = \"1s\"\nuntil = \"2s\""));
        assert!(e.contains("not both"), "{e}");
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"-1s\"\nduration = \"1s\""));
        assert!(e.contains("not a duration"), "{e}");
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"1s\"\nduration = \"inf\""));
        assert!(e.contains("not a duration"), "{e}");
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"1s\"\nduration = \"0s\""));
        assert!(e.contains("empty"), "{e}");
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"2s\"\nuntil = \"1s\""));
        assert!(e.contains("before from"), "{e}");
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"1s\"\nduration = \"1s\"\nmode = \"http_404\""));
        assert!(e.contains("is not refuse, http_500 or http_503"), "{e}");
        let e = err(&fault("kind = \"registry_down\"\nfrom = \"1s\"\nduration = \"1s\"\nmode = \"http_500\""));
        assert!(e.contains("is not refuse or http_503"), "{e}");
        let e = err(&fault("kind = \"processor_crash\"\nfrom = \"1s\"\nduration = \"1s\"\nmode = \"refuse\""));
        assert!(e.contains("takes no mode"), "{e}");
        let e = err(&fault("kind = \"network_latency\"\nfrom = \"1s\"\nduration = \"1s\""));
        assert!(e.contains("needs latency"), "{e}");
        let e = err(&fault("kind = \"network_latency\"\nfrom = \"1s\"\nduration = \"1s\"\nlatency = \"1h\""));
        assert!(e.contains("at most 10s"), "{e}");
        let e = err(&fault("kind = \"processor_crash\"\nfrom = \"1s\"\nduration = \"1s\"\nlatency = \"1s\""));
        assert!(e.contains("only network_latency"), "{e}");
        let e = err(&fault("kind = \"disk_full\"\nfrom = \"1s\"\nduration = \"1s\""));
        assert!(e.contains("\"disk_full\" is not"), "{e}");
        let e = err(&fault("kind = \"broker_restart\"\nfrom = \"1s\"\nduration = \"1s\"\nmode = \"refuse\""));
        assert!(e.contains("takes no mode"), "{e}");
        assert!(Scenario::parse(&fault("kind = \"broker_restart\"\nfrom = \"1s\"\nduration = \"1s\""), "t").is_ok());
        let e = err(&fault("kind = \"processor_crash\"\nfrom = \"1s\"\nduration = \"1s\"\nwhen = 3"));
        assert!(e.contains("when"), "{e}");
        // A crash may restart at once.
        assert!(Scenario::parse(&fault("kind = \"processor_crash\"\nat = \"1s\"\nduration = \"0s\""), "t").is_ok());
    }

    #[test]
    fn a_fault_that_does_not_fit_the_run_names_its_entry() {
        // Phases last 2 s and the drain 3 s: the run is 5 s.
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"1s\"\nuntil = \"6s\""));
        assert!(e.contains("faults[1] (firehose_down): ends at 6s, after the run (5s"), "{e}");
        let e = err(&fault("kind = \"firehose_down\"\nfrom = \"2s\"\nuntil = \"3s\""));
        assert!(e.contains("faults[1] (firehose_down): starts at 2s, not before producing ends"), "{e}");
        let two = fault(
            "kind = \"processor_crash\"\nfrom = \"0s\"\nuntil = \"1s\"\n\n[[faults]]\n\
             kind = \"firehose_down\"\nfrom = \"500ms\"\nuntil = \"1s\"\n\n[[faults]]\n\
             kind = \"processor_crash\"\nfrom = \"500ms\"\nuntil = \"2s\"",
        );
        let e = err(&two);
        assert!(e.contains("faults[3] (processor_crash): overlaps faults[1] (processor_crash"), "{e}");
        let e = err(&format!(
            "{}\n[kafka]\nbrokers = \"b-1:9092\"\n",
            fault("kind = \"network_latency\"\nfrom = \"1s\"\nuntil = \"2s\"\nlatency = \"50ms\"")
        ));
        assert!(e.contains("faults[1] (network_latency): needs kafka.brokers = \"embedded\""), "{e}");
        let e = err(&format!(
            "{}\n[registry]\nkind = \"http://127.0.0.1:8081\"\n",
            fault("kind = \"registry_down\"\nfrom = \"1s\"\nuntil = \"2s\"")
        ));
        assert!(e.contains("needs registry.kind = \"embedded\""), "{e}");
    }
}
