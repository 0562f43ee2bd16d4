//! The function's configuration, read from the lab's environment variables.
//!
//! The lab's Java function reads `DELIVERY_STREAM_NAME`, `RETRIES`,
//! `SCHEMA_REGISTRY_URL`, `CSR`, `SECONDARY_DESERIALIZER` and `AWS_REGION`;
//! so does this one, with the same meanings, so the two functions can be
//! swapped under one SAM template. Unlike Java's `Boolean.parseBoolean`,
//! which reads `"ture"` as false, a value that is not understood is refused
//! at start with a message naming the variable.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DELIVERY_STREAM_NAME` | Firehose stream | required |
//! | `RETRIES` | resends after the first call (0–100) | 3 |
//! | `CSR` | `true`: Confluent framing and registry; `false`: Glue | false |
//! | `SECONDARY_DESERIALIZER` | with `CSR=false`: non-Glue values read as Confluent | false |
//! | `SCHEMA_REGISTRY_URL` | Confluent registry; required when Confluent values are read | — |
//! | `AWS_REGION` (or `AWS_DEFAULT_REGION`) | region of Firehose, Glue and S3 | the profile's, or the instance's |
//! | `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_FIREHOSE`, `AWS_ENDPOINT_URL_GLUE`, `AWS_ENDPOINT_URL_S3` | endpoint overrides (stand-ins, moto), as the AWS SDKs read them; `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` turns them off | — |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | credentials (Lambda sets them) | the rest of the default chain |
//! | `AWS_PROFILE` | the profile of the shared config files | `default` |
//! | `RETRY_POLICY` | `backoff` or `lab` | backoff |
//! | `RETRY_BASE_MS`, `RETRY_MAX_DELAY_MS` | backoff ceiling of the first retry, and of any | 100, 5000 |
//! | `FIREHOSE_CONCURRENCY` | PutRecordBatch calls in flight per invocation (1–64) | 4 |
//! | `FIREHOSE_TIMEOUT_MS` | one call's timeout | 10000 |
//! | `BATCH_RECORDS` | records per PutRecordBatch (1–500) | 500 |
//! | `DEAD_LETTER` | `s3://bucket/prefix/` or a local directory | none |
//! | `JITTER_SEED` | seed of the backoff jitter | chosen and logged |
//! | `FUNCTION_TIMEOUT` | the function's timeout in seconds (1–900), as the SAM template's `Timeout` | 900 |
//! | `REPORT_BATCH_ITEM_FAILURES` | `true`: records the function cannot decode or deliver are returned as a partial batch response (`batchItemFailures`) for the mapping to retry, instead of dead-lettered or failing the invocation; set it with the mapping's `FunctionResponseTypes = ["ReportBatchItemFailures"]` | false |
//! | `PACING` | `none`, `token-bucket` (a fixed share of the quota) or `aimd` (additive increase, halved on throttles) | none |
//! | `PACING_SHARE` | share of the quota paced at (0 < share ≤ 1): the token bucket's, and where AIMD starts | 0.9 |
//! | `PACING_QUOTA` | the stream's Direct PUT quota: `us-east-1`, `us-west-2`, `eu-west-1`, `other` or `records=N,requests=N,bytes=N` | the region's preset |
//! | `PACING_INCREASE`, `PACING_DECREASE`, `PACING_MIN_SHARE` | AIMD: share added per second without a throttle, factor on a throttle, floor | 0.05, 0.5, 0.05 |
//!
//! The settings must fit the function's timeout: the worst case of one
//! invocation ([`Config::worst_case`]: a registry fetch, every call and
//! wait of a batch's resends, the dead-letter write) longer than
//! `FUNCTION_TIMEOUT` is refused at start, since Lambda would end such an
//! invocation before its records had an outcome. At run time the handler
//! also stops resending in time for the invocation's own deadline.
//!
//! Region and credentials come from the AWS default chain, resolved once at
//! start ([`mskbench_aws::Chain`]): keys in the environment first (what
//! Lambda provides: then no file is read for them and nothing goes over the
//! network), then profiles (`AWS_PROFILE`, SSO, `credential_process`), web
//! identity, the container endpoint and instance metadata. Secrets never
//! appear in `Debug` output or logs.
//!
//! [`Config::from_lookup`] reads through a closure, with the chain resolved
//! beforehand, so tests never touch the process environment.

use std::path::PathBuf;
use std::time::Duration;

pub use aws_sdk_firehose::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
pub use mskbench_aws::{Chain, ChainError, Endpoints};
use mskbench_core::packer::MAX_BATCH_RECORDS;
use mskbench_core::registry_url::redacted;
use mskbench_core::wire::WireMode;

use crate::pace::Paced;
use crate::retry::{DEFAULT_BASE, DEFAULT_MAX_DELAY, RetryPolicy};

/// Most `RETRIES` accepted: beyond this the Lambda timeout ends the invocation anyway.
pub const MAX_RETRIES: u32 = 100;
/// Most `FIREHOSE_CONCURRENCY` accepted.
pub const MAX_CONCURRENCY: usize = 64;
/// Lambda's longest function timeout, `FUNCTION_TIMEOUT`'s default.
pub const MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);
/// Time limit of one Confluent registry request (the client's, and the
/// worst case's).
pub(crate) const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// A variable that is missing or holds a value the function does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{name} is not set: {why}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What it is needed for.
        why: &'static str,
    },
    /// A variable holds a value the function does not accept.
    #[error("{name}={value:?} is invalid: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value (a URL without its credentials).
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// The AWS default chain gave no region or no credentials.
    #[error(transparent)]
    Aws(#[from] ChainError),
}

/// Where records that cannot be delivered go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterTarget {
    /// One NDJSON file per invocation in this directory.
    Directory(PathBuf),
    /// One NDJSON object per invocation under `s3://bucket/prefix`.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
}

impl std::fmt::Display for DeadLetterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterTarget::Directory(dir) => write!(f, "{}", dir.display()),
            DeadLetterTarget::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A registry URL that may carry credentials: `Debug` shows it without them.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryUrl(String);

impl RegistryUrl {
    /// A registry URL given as a value (not read from `SCHEMA_REGISTRY_URL`).
    pub fn new(url: String) -> Self {
        RegistryUrl(url)
    }

    /// The URL as configured, credentials included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redacted(&self.0))
    }
}

/// Everything the handler needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DELIVERY_STREAM_NAME`: the Firehose stream records go to.
    pub delivery_stream: String,
    /// Resends after the first call, for failed records and failed calls alike.
    pub retries: u32,
    /// The wait before each resend (`RETRY_POLICY`, `RETRY_BASE_MS`, `RETRY_MAX_DELAY_MS`).
    pub retry_policy: RetryPolicy,
    /// Which framings are read (`CSR`, `SECONDARY_DESERIALIZER`).
    pub wire_mode: WireMode,
    /// Confluent registry URL (may hold `user:secret@`; never logged).
    pub registry_url: Option<RegistryUrl>,
    /// The region of Firehose, Glue and S3 (the chain's: `AWS_REGION`, the profile's, the instance's).
    pub region: String,
    /// Endpoint overrides per service.
    pub endpoints: Endpoints,
    /// Who signs: the chain's provider, cached (`Credentials`' `Debug` redacts the secret).
    pub credentials: SharedCredentialsProvider,
    /// `FIREHOSE_CONCURRENCY`: most `PutRecordBatch` calls in flight per invocation (1–64).
    pub concurrency: usize,
    /// `FIREHOSE_TIMEOUT_MS`: one call attempt's time limit.
    pub call_timeout: Duration,
    /// `BATCH_RECORDS`: most records per `PutRecordBatch` (1–500).
    pub batch_records: usize,
    /// `DEAD_LETTER`: where undecodable and undeliverable records go; `None` logs and drops undecodable ones.
    pub dead_letter: Option<DeadLetterTarget>,
    /// `None`: chosen at start and logged.
    pub jitter_seed: Option<u64>,
    /// `FUNCTION_TIMEOUT`: how long Lambda lets one invocation run; the
    /// local event source mapping gives each invocation as long.
    pub function_timeout: Duration,
    /// `REPORT_BATCH_ITEM_FAILURES`: return undecodable and undeliverable
    /// records as `batchItemFailures` instead of dead-lettering them.
    pub report_batch_item_failures: bool,
    /// `PACING`, `PACING_SHARE`, `PACING_QUOTA`, …: calls held under a
    /// share of the stream's quota (`None`: sent as soon as they are ready).
    pub pacing: Option<Paced>,
}

impl Config {
    /// Reads the process environment, with the AWS default chain resolved
    /// from it first ([`Chain::load`]).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or invalid,
    /// or what the chain lacked.
    pub async fn from_env() -> Result<Config, ConfigError> {
        Config::load(|name| std::env::var(name).ok()).await
    }

    /// [`Chain::load`] through `get`, then [`Config::from_lookup`]: the
    /// function's own variables are checked first, so a bad `RETRIES` is
    /// named before any profile is read.
    ///
    /// # Errors
    /// As [`Config::from_env`].
    pub async fn load(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_lookup(&get, Chain::fixed("us-east-1", "-", "-"))?;
        let chain = Chain::load(&get).await?;
        Config::from_lookup(&get, chain)
    }

    /// Reads variables through `get` (empty values count as unset); region
    /// and credentials are `aws`'s.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or invalid.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, aws: Chain) -> Result<Config, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let var: Var<'_> = &var;
        // In the order the variables are checked: the first at fault is named.
        let delivery_stream = delivery_stream(var)?;
        let retries = number(var("RETRIES"), "RETRIES", 3u32, 0..=MAX_RETRIES)?;
        let csr = boolean(var("CSR"), "CSR")?;
        let secondary = boolean(var("SECONDARY_DESERIALIZER"), "SECONDARY_DESERIALIZER")?;
        let wire_mode = WireMode::from_lab_settings(csr, secondary);
        let registry_url = registry_url(var, wire_mode)?;
        let endpoints = Endpoints::from_lookup(var).map_err(|e| ConfigError::Invalid {
            name: e.name,
            value: e.value,
            expected: e.expected.to_owned(),
        })?;
        let retry_policy = retry_policy(var)?;
        let concurrency = number(var("FIREHOSE_CONCURRENCY"), "FIREHOSE_CONCURRENCY", 4usize, 1..=MAX_CONCURRENCY)?;
        let call_timeout =
            millis(var("FIREHOSE_TIMEOUT_MS"), "FIREHOSE_TIMEOUT_MS", Duration::from_secs(10), 100..=900_000)?;
        let batch_records = number(var("BATCH_RECORDS"), "BATCH_RECORDS", MAX_BATCH_RECORDS, 1..=MAX_BATCH_RECORDS)?;
        let dead_letter = var("DEAD_LETTER").map(|v| dead_letter(&v)).transpose()?;
        let jitter_seed = var("JITTER_SEED").map(|v| number(Some(v), "JITTER_SEED", 0u64, 0..=u64::MAX)).transpose()?;
        let function_timeout = number(
            var("FUNCTION_TIMEOUT"),
            "FUNCTION_TIMEOUT",
            MAX_FUNCTION_TIMEOUT.as_secs(),
            1..=MAX_FUNCTION_TIMEOUT.as_secs(),
        )?;
        let report_batch_item_failures = boolean(var("REPORT_BATCH_ITEM_FAILURES"), "REPORT_BATCH_ITEM_FAILURES")?;
        let pacing = pacing(var, &aws.region)?;

        let config = Config {
            delivery_stream,
            retries,
            retry_policy,
            wire_mode,
            registry_url,
            region: aws.region,
            endpoints,
            credentials: aws.credentials,
            concurrency,
            call_timeout,
            batch_records,
            dead_letter,
            jitter_seed,
            function_timeout: Duration::from_secs(function_timeout),
            report_batch_item_failures,
            pacing,
        };
        config.check_fits()?;
        Ok(config)
    }

    /// The longest one invocation can take with these settings: its time for
    /// registry fetches (one request: Confluent's 10 s, or Glue's three
    /// attempts; fetches stop there), then, for
    /// a batch, `retries + 1` calls of `call_timeout` and the longest wait
    /// before each resend, then the dead-letter write (S3's attempts within
    /// three call timeouts, plus the last one).
    pub fn worst_case(&self) -> Duration {
        worst_case(self.retries, self.retry_policy, self.call_timeout)
    }

    /// Checks that [`Config::worst_case`] fits in `function_timeout`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `RETRIES`, with the most resends
    /// that would fit and what the worst case is made of.
    pub fn check_fits(&self) -> Result<(), ConfigError> {
        let worst = self.worst_case();
        if worst <= self.function_timeout {
            return Ok(());
        }
        let fitting = (0..self.retries)
            .rev()
            .find(|&r| worst_case(r, self.retry_policy, self.call_timeout) <= self.function_timeout);
        let most = fitting.map_or_else(|| "none: even 0 resends".to_owned(), |r| format!("at most {r}"));
        Err(ConfigError::Invalid {
            name: "RETRIES",
            value: self.retries.to_string(),
            expected: format!(
                "{most} with RETRY_POLICY={}, FIREHOSE_TIMEOUT_MS={} and FUNCTION_TIMEOUT={}: the worst case is {} s \
                 ({} s of waits before the resends, {} calls, a registry fetch and the dead letters), over the \
                 function's timeout",
                self.retry_policy.name(),
                self.call_timeout.as_millis(),
                self.function_timeout.as_secs(),
                worst.as_secs_f64().ceil(),
                waits(self.retries, self.retry_policy).as_secs_f64().ceil(),
                u64::from(self.retries) + 1,
            ),
        })
    }
}

/// The time an invocation gives its schema fetches: one registry request
/// (Confluent's 10 s, or Glue's three attempts). An event needing more
/// rounds than fit stops fetching there and fails, with the schemas it got
/// cached, so [`Config::worst_case`] counts one round whatever the event.
pub(crate) fn fetch_budget(call_timeout: Duration) -> Duration {
    let glue = call_timeout.saturating_mul(mskbench_aws::glue::ATTEMPTS) + Duration::from_millis(300);
    REGISTRY_TIMEOUT.max(glue)
}

/// The time kept for the dead-letter write: S3's attempts within three call
/// timeouts, plus the last. The start-up check ([`Config::worst_case`]) and
/// the handler's run-time reserve both count it.
pub(crate) fn dead_letter_budget(call_timeout: Duration) -> Duration {
    call_timeout.saturating_mul(4)
}

/// See [`Config::worst_case`].
fn worst_case(retries: u32, policy: RetryPolicy, call_timeout: Duration) -> Duration {
    let fetch = fetch_budget(call_timeout);
    let calls = call_timeout.saturating_mul(retries.saturating_add(1));
    let dead_letters = dead_letter_budget(call_timeout);
    fetch.saturating_add(calls).saturating_add(waits(retries, policy)).saturating_add(dead_letters)
}

/// The longest waits before `retries` resends, summed.
fn waits(retries: u32, policy: RetryPolicy) -> Duration {
    (1..=retries).map(|n| policy.max_delay(n)).fold(Duration::ZERO, Duration::saturating_add)
}

/// A variable's trimmed value; `None` when unset or empty.
type Var<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `DELIVERY_STREAM_NAME`: required, a valid Firehose stream name.
fn delivery_stream(var: Var<'_>) -> Result<String, ConfigError> {
    let name = var("DELIVERY_STREAM_NAME")
        .ok_or(ConfigError::Missing { name: "DELIVERY_STREAM_NAME", why: "the Firehose stream to send to" })?;
    let name_ok = name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !name_ok {
        return Err(invalid("DELIVERY_STREAM_NAME", &name, "1 to 64 characters of a-z A-Z 0-9 _ . -"));
    }
    Ok(name)
}

/// `SCHEMA_REGISTRY_URL`: an http(s) URL core's parser takes (the one the
/// registry client uses), required unless only Glue framing is read.
fn registry_url(var: Var<'_>, wire_mode: WireMode) -> Result<Option<RegistryUrl>, ConfigError> {
    use mskbench_core::registry_url::{RegistryUrl as Parsed, RegistryUrlError};
    match var("SCHEMA_REGISTRY_URL") {
        Some(url) => match Parsed::parse(&url) {
            Ok(_) => Ok(Some(RegistryUrl(url))),
            // The value may carry credentials: name the rule, not the value.
            Err(e) => Err(ConfigError::Invalid {
                name: "SCHEMA_REGISTRY_URL",
                value: redacted(&url),
                expected: match e {
                    RegistryUrlError::NotHttp { .. } => "an http:// or https:// URL",
                    RegistryUrlError::QueryOrFragment { .. } => "an http(s) URL without a query or fragment",
                    RegistryUrlError::BadCredentials { .. } => "credentials percent-encoded as UTF-8",
                }
                .into(),
            }),
        },
        None if wire_mode == WireMode::Glue => Ok(None),
        None => Err(ConfigError::Missing {
            name: "SCHEMA_REGISTRY_URL",
            why: "CSR=true or SECONDARY_DESERIALIZER=true reads Confluent-framed values, which need the registry",
        }),
    }
}

/// `RETRY_POLICY` (`backoff`, the default, with `RETRY_BASE_MS` and
/// `RETRY_MAX_DELAY_MS`; or `lab`).
fn retry_policy(var: Var<'_>) -> Result<RetryPolicy, ConfigError> {
    match var("RETRY_POLICY").as_deref() {
        None | Some("backoff") => {
            let base = millis(var("RETRY_BASE_MS"), "RETRY_BASE_MS", DEFAULT_BASE, 1..=60_000)?;
            let max_delay = millis(var("RETRY_MAX_DELAY_MS"), "RETRY_MAX_DELAY_MS", DEFAULT_MAX_DELAY, 1..=900_000)?;
            if max_delay < base {
                return Err(invalid(
                    "RETRY_MAX_DELAY_MS",
                    &max_delay.as_millis().to_string(),
                    "at least RETRY_BASE_MS",
                ));
            }
            Ok(RetryPolicy::Backoff { base, max_delay })
        }
        Some("lab") => Ok(RetryPolicy::Lab),
        Some(other) => Err(invalid("RETRY_POLICY", other, "backoff or lab")),
    }
}

/// `PACING` (`none`, `token-bucket`, `aimd`) and its settings; the quota
/// defaults to the region's preset (`other` outside the three large regions).
fn pacing(var: Var<'_>, region: &str) -> Result<Option<Paced>, ConfigError> {
    use mskbench_core::{Aimd, Pacing, Quota};
    let kind = var("PACING");
    let share = fraction(var("PACING_SHARE"), "PACING_SHARE", 0.9)?;
    let quota = match var("PACING_QUOTA") {
        None => Quota::preset(region).unwrap_or(Quota::OTHER),
        Some(text) => text.parse::<Quota>().map_err(|e| invalid("PACING_QUOTA", &text, &e.to_string()))?,
    };
    let pacing = match kind.as_deref() {
        None | Some("none") => return Ok(None),
        Some("token-bucket") => Pacing::TokenBucket { share },
        Some("aimd") => {
            let increase = fraction(var("PACING_INCREASE"), "PACING_INCREASE", Aimd::INCREASE)?;
            let decrease = fraction(var("PACING_DECREASE"), "PACING_DECREASE", Aimd::DECREASE)?;
            if decrease >= 1.0 {
                return Err(invalid("PACING_DECREASE", &decrease.to_string(), "a factor in (0, 1)"));
            }
            let min_share = fraction(var("PACING_MIN_SHARE"), "PACING_MIN_SHARE", Aimd::MIN_SHARE)?;
            if min_share > share {
                return Err(invalid("PACING_MIN_SHARE", &min_share.to_string(), "at most PACING_SHARE"));
            }
            Pacing::Aimd(Aimd { share, increase, decrease, min_share })
        }
        Some(other) => return Err(invalid("PACING", other, "none, token-bucket or aimd")),
    };
    let pacing = pacing.validated().map_err(|e| invalid("PACING", pacing.name(), &e.to_string()))?;
    Ok(Some(Paced { pacing, quota }))
}

/// A number in (0, 1].
fn fraction(value: Option<String>, name: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(text) = value else { return Ok(default) };
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(invalid(name, &text, "a number in (0, 1]")),
    }
}

fn invalid(name: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid { name, value: value.to_owned(), expected: expected.to_owned() }
}

fn boolean(value: Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(invalid(name, value.as_deref().unwrap_or_default(), "true or false")),
    }
}

fn number<T>(
    value: Option<String>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(text) = value else { return Ok(default) };
    match text.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(invalid(name, &text, &format!("an integer in {}..={}", range.start(), range.end()))),
    }
}

fn millis(
    value: Option<String>,
    name: &'static str,
    default: Duration,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
    number(value, name, default, range).map(Duration::from_millis)
}

/// A destination written as `DEAD_LETTER` is: `s3://BUCKET/PREFIX`,
/// `file:///DIR` or a directory path (the local mapping's on-failure
/// destination is written the same way).
///
/// # Errors
/// [`ConfigError`] when it is none of those.
pub fn dead_letter_target(value: &str) -> Result<DeadLetterTarget, ConfigError> {
    dead_letter(value)
}

fn dead_letter(value: &str) -> Result<DeadLetterTarget, ConfigError> {
    if let Some(rest) = value.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(invalid("DEAD_LETTER", value, "s3://BUCKET/PREFIX with a valid bucket name"));
        }
        return Ok(DeadLetterTarget::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
    }
    if value.contains("://") && !value.starts_with("file://") {
        return Err(invalid("DEAD_LETTER", value, "s3://BUCKET/PREFIX, file:///DIR or a directory path"));
    }
    let path = value.strip_prefix("file://").unwrap_or(value);
    Ok(DeadLetterTarget::Directory(PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let base = [
            ("DELIVERY_STREAM_NAME", "MSKToS3"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ];
        let map: HashMap<String, String> =
            base.iter().chain(vars).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|k| map.get(k).cloned(), Chain::fixed("us-east-1", "AKIDEXAMPLE", "very-secret"))
    }

    fn named(err: ConfigError) -> &'static str {
        match err {
            ConfigError::Missing { name, .. } | ConfigError::Invalid { name, .. } => name,
            ConfigError::Aws(e) => panic!("not a variable of the function: {e}"),
        }
    }

    #[test]
    fn the_lab_defaults() {
        let c = read(&[]).unwrap();
        assert_eq!(c.delivery_stream, "MSKToS3");
        assert_eq!(c.retries, 3);
        assert_eq!(c.wire_mode, WireMode::Glue);
        assert_eq!(c.retry_policy, RetryPolicy::default());
        assert_eq!((c.concurrency, c.batch_records), (4, 500));
        assert_eq!(c.endpoints, Endpoints::default());
        assert!(c.dead_letter.is_none());
        assert!(c.pacing.is_none());
    }

    #[test]
    fn pacing_reads_its_kind_share_and_quota() {
        use mskbench_core::{Aimd, Pacing, Quota};
        let c = read(&[("PACING", "token-bucket"), ("PACING_SHARE", "0.8")]).unwrap();
        let p = c.pacing.unwrap();
        assert_eq!(p.pacing, Pacing::TokenBucket { share: 0.8 });
        assert_eq!(p.quota, Quota::US_EAST_1, "the region's preset");
        let c = read(&[("PACING", "aimd"), ("PACING_QUOTA", "other"), ("PACING_DECREASE", "0.7")]).unwrap();
        let p = c.pacing.unwrap();
        assert_eq!(p.pacing, Pacing::Aimd(Aimd { share: 0.9, decrease: 0.7, ..Aimd::starting_at(0.9) }));
        assert_eq!(p.quota, Quota::OTHER);
        for (vars, name) in [
            (&[("PACING", "fast")][..], "PACING"),
            (&[("PACING", "token-bucket"), ("PACING_SHARE", "1.5")][..], "PACING_SHARE"),
            (&[("PACING", "token-bucket"), ("PACING_SHARE", "0")][..], "PACING_SHARE"),
            (&[("PACING", "aimd"), ("PACING_DECREASE", "1")][..], "PACING_DECREASE"),
            (&[("PACING", "aimd"), ("PACING_SHARE", "0.1"), ("PACING_MIN_SHARE", "0.2")][..], "PACING_MIN_SHARE"),
            (&[("PACING", "aimd"), ("PACING_QUOTA", "records=1")][..], "PACING_QUOTA"),
        ] {
            assert_eq!(named(read(vars).unwrap_err()), name, "{vars:?}");
        }
    }

    #[test]
    fn csr_and_secondary_pick_the_wire_mode() {
        let url = ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081");
        assert_eq!(read(&[("CSR", "true"), url]).unwrap().wire_mode, WireMode::Confluent);
        assert_eq!(read(&[("CSR", "FALSE"), ("SECONDARY_DESERIALIZER", "True"), url]).unwrap().wire_mode, {
            WireMode::GlueSecondary
        });
    }

    #[test]
    fn invalid_values_are_refused_naming_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("RETRIES", "three")], "RETRIES"),
            (&[("RETRIES", "-1")], "RETRIES"),
            (&[("CSR", "ture")], "CSR"),
            (&[("CSR", "true")], "SCHEMA_REGISTRY_URL"),
            (&[("SECONDARY_DESERIALIZER", "true")], "SCHEMA_REGISTRY_URL"),
            (&[("SCHEMA_REGISTRY_URL", "localhost:8081")], "SCHEMA_REGISTRY_URL"),
            (&[("DELIVERY_STREAM_NAME", "has space")], "DELIVERY_STREAM_NAME"),
            (&[("AWS_ENDPOINT_URL_FIREHOSE", "127.0.0.1:4566")], "AWS_ENDPOINT_URL_FIREHOSE"),
            (&[("RETRY_POLICY", "exponential")], "RETRY_POLICY"),
            (&[("RETRY_BASE_MS", "500"), ("RETRY_MAX_DELAY_MS", "100")], "RETRY_MAX_DELAY_MS"),
            (&[("FIREHOSE_CONCURRENCY", "0")], "FIREHOSE_CONCURRENCY"),
            (&[("BATCH_RECORDS", "501")], "BATCH_RECORDS"),
            (&[("DEAD_LETTER", "s3://A_B/x")], "DEAD_LETTER"),
            (&[("DEAD_LETTER", "gs://bucket/x")], "DEAD_LETTER"),
            (&[("JITTER_SEED", "x")], "JITTER_SEED"),
        ];
        for (vars, name) in cases {
            let err = read(vars).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
            assert_eq!(named(err), *name, "{vars:?}");
        }
        let missing = Config::from_lookup(|_| None, Chain::fixed("us-east-1", "a", "s")).unwrap_err();
        assert_eq!(named(missing), "DELIVERY_STREAM_NAME");
    }

    #[test]
    fn endpoint_overrides_follow_the_sdk_precedence() {
        let c =
            read(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"), ("AWS_ENDPOINT_URL_GLUE", "http://g:1")]).unwrap();
        assert_eq!(c.endpoints.firehose.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.endpoints.s3.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.endpoints.glue.as_deref(), Some("http://g:1"));
        let c = read(&[("AWS_ENDPOINT_URL", "http://x:1"), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]).unwrap();
        assert_eq!(c.endpoints, Endpoints::default());
    }

    #[test]
    fn dead_letter_targets() {
        let c = read(&[("DEAD_LETTER", "s3://lab-bucket/dlq/")]).unwrap();
        assert_eq!(c.dead_letter, Some(DeadLetterTarget::S3 { bucket: "lab-bucket".into(), prefix: "dlq/".into() }));
        let c = read(&[("DEAD_LETTER", "file:///tmp/dlq")]).unwrap();
        assert_eq!(c.dead_letter, Some(DeadLetterTarget::Directory("/tmp/dlq".into())));
        let c = read(&[("DEAD_LETTER", "dlq")]).unwrap();
        assert_eq!(c.dead_letter, Some(DeadLetterTarget::Directory("dlq".into())));
    }

    #[tokio::test]
    async fn the_functions_own_variables_are_named_before_the_chain_is_asked() {
        let map: HashMap<&str, &str> = [("DELIVERY_STREAM_NAME", "s"), ("RETRIES", "x")].into();
        let err = Config::load(|k| map.get(k).map(|v| (*v).to_owned())).await.unwrap_err();
        assert_eq!(named(err), "RETRIES");
        let map: HashMap<&str, &str> =
            [("DELIVERY_STREAM_NAME", "s"), ("AWS_REGION", "eu-west-1"), ("AWS_ACCESS_KEY_ID", "AKID")].into();
        let err = Config::load(|k| map.get(k).map(|v| (*v).to_owned())).await.unwrap_err();
        assert!(
            matches!(err, ConfigError::Aws(ChainError::HalfAKey { missing: "AWS_SECRET_ACCESS_KEY", .. })),
            "{err}"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output_and_errors() {
        let c = read(&[("SCHEMA_REGISTRY_URL", "https://key:registry-secret@host/x"), ("CSR", "true")]).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("very-secret") && !debug.contains("registry-secret"), "{debug}");
        assert!(debug.contains("https://host/x"), "{debug}");
        let err = read(&[("SCHEMA_REGISTRY_URL", "ftp://key:registry-secret@host")]).unwrap_err();
        assert!(!err.to_string().contains("registry-secret"), "{err}");
        assert_eq!(redacted("https://u:p@h:1/a"), "https://h:1/a");
    }

    #[test]
    fn resends_that_cannot_fit_in_the_function_timeout_are_refused_at_start() {
        // The defaults fit the template's 300 s, and the lab's schedule with its 3 retries.
        assert!(read(&[("FUNCTION_TIMEOUT", "300")]).is_ok());
        assert!(read(&[("FUNCTION_TIMEOUT", "300"), ("RETRY_POLICY", "lab")]).is_ok());
        // The lab's 4th retry waits 559 s: that cannot fit in 300 s.
        let err = read(&[("FUNCTION_TIMEOUT", "300"), ("RETRY_POLICY", "lab"), ("RETRIES", "4")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("at most 3 with RETRY_POLICY=lab"), "{text}");
        assert_eq!(named(err), "RETRIES");
        // 100 resends of 10 s calls never fit, whatever the waits.
        let err = read(&[("RETRIES", "100")]).unwrap_err();
        assert!(err.to_string().contains("FUNCTION_TIMEOUT=900"), "{err}");
        assert!(read(&[("RETRIES", "100"), ("FIREHOSE_TIMEOUT_MS", "1000")]).is_ok());
        let err = read(&[("FUNCTION_TIMEOUT", "30")]).unwrap_err();
        assert!(err.to_string().contains("none: even 0 resends"), "{err}");
        assert_eq!(named(read(&[("FUNCTION_TIMEOUT", "901")]).unwrap_err()), "FUNCTION_TIMEOUT");
    }
}
