//! Failure handling of the local event source mapping, as Lambda's Kafka
//! mappings configure it (Lambda developer guide, "Configuring error
//! handling controls for Kafka event sources" and "Capturing discarded
//! batches for Amazon MSK and self-managed Apache Kafka event sources").
//!
//! One batch, once polled, is settled here ([`settle`]): every record ends
//! handled by a successful invocation, discarded to the on-failure
//! destination, or — with no destination, as on AWS — discarded and logged.
//! Only then does the poller commit. The settings, with the guide's words:
//!
//! - **`FunctionResponseTypes = ["ReportBatchItemFailures"]`** ("allow your
//!   function to return information about which records in a batch failed
//!   processing, so Lambda can retry only the failed records"): the
//!   function's *response payload* is read as JSON for `batchItemFailures`,
//!   each `{"itemIdentifier": {"partition": "<topic>-<partition>", "offset":
//!   N}}` (the shape Powertools' Kafka batch processor returns). Per
//!   partition, the records from the lowest failed offset on are invoked
//!   again; those before it are done. An empty or absent list, or a null or
//!   non-object payload, is a complete success; an identifier that names no
//!   record of the batch, or is not of that shape, makes the whole batch a
//!   failure (the guide's rules for streams' partial responses). Without the
//!   setting the payload is not read, as on AWS.
//! - **`BisectBatchOnFunctionError`** ("when your function returns an error,
//!   split the batch into two smaller batches and retry each separately"):
//!   the halves go first, in order; splitting uses no retry attempt.
//! - **`MaximumRetryAttempts`** ("the maximum number of times Lambda retries
//!   when your function returns an error. This doesn't count the initial
//!   invocation attempt. The default is -1 (infinite)"; 0..=10,000). With an
//!   on-failure destination and infinite retries, "Lambda automatically
//!   applies a maximum of 10 retry attempts" ([`RETRIES_WITH_DESTINATION`]).
//!   A partial failure counts as a retry of the records it returns.
//! - **`MaximumRecordAgeInSeconds`** ("the maximum age of a record that
//!   Lambda sends to your function"; 60..=604,800, default -1): before each
//!   invocation, records older than this (by their Kafka timestamp) are
//!   discarded instead of sent.
//! - **`DestinationConfig.OnFailure`**: discarded records go to a directory
//!   or an S3 prefix as one JSON document per discarded batch, in the shape
//!   Lambda writes to S3 — `requestContext` (`condition`
//!   `RetryAttemptsExhausted` or `RecordAgeExceeded`,
//!   `approximateInvokeCount`), `responseContext`, `version`, `timestamp`,
//!   `KafkaBatchInfo` (`batchSize`, `eventSourceArn`, `bootstrapServers`,
//!   `payloadSize`, `recordsInfo` per `"<topic>-<partition>"` with the first
//!   and last offset and timestamp) and `payload`, the invocation record of
//!   the discarded records (an `aws:kafka` event). Keys follow Lambda's
//!   layout: `aws/lambda/<mapping>/<topic-partition>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>`.
//!
//! The retry engine is pure over an [`Invoker`] (invoke, wait, discard), so
//! its decisions are unit-tested without Kafka; `esm.rs` gives it the
//! handler, the kill switch and the destination. Cost: each batch's record
//! texts are kept until the batch settles (at most one event's size per
//! poller), and a retried part is built again from them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mskbench_aws::Access;
use mskbench_aws::s3::S3Bucket;
use serde::Serialize;
use serde_json::value::RawValue;

use super::EventBuilder;
use crate::config::DeadLetterTarget;

/// The `FunctionResponseTypes` value that turns partial batch responses on.
pub const REPORT_BATCH_ITEM_FAILURES: &str = "ReportBatchItemFailures";
/// Retries Lambda applies when `MaximumRetryAttempts` is infinite and an
/// on-failure destination is configured.
pub const RETRIES_WITH_DESTINATION: u32 = 10;
/// The most `MaximumRetryAttempts` takes.
pub const MAX_RETRY_ATTEMPTS: u32 = 10_000;
/// `MaximumRecordAgeInSeconds`' range when not -1.
pub const RECORD_AGE_RANGE: std::ops::RangeInclusive<u64> = 60..=604_800;

/// The mapping's failure-handling settings, AWS's names in the comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureHandling {
    /// `FunctionResponseTypes` holds `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError`.
    pub bisect_batch_on_function_error: bool,
    /// `MaximumRetryAttempts` (`None`: -1, infinite).
    pub maximum_retry_attempts: Option<u32>,
    /// `MaximumRecordAgeInSeconds` (`None`: -1, infinite).
    pub maximum_record_age: Option<Duration>,
    /// `DestinationConfig.OnFailure`: a directory or `s3://bucket/prefix/`.
    pub on_failure: Option<DeadLetterTarget>,
}

impl FailureHandling {
    /// Retries after the first invocation before a part is discarded (`None`: never).
    pub fn retry_limit(&self) -> Option<u32> {
        self.maximum_retry_attempts.or(self.on_failure.as_ref().map(|_| RETRIES_WITH_DESTINATION))
    }

    /// Checks the ranges AWS accepts.
    ///
    /// # Errors
    /// A message naming the setting and its range.
    pub fn check(&self) -> Result<(), String> {
        if let Some(n) = self.maximum_retry_attempts
            && n > MAX_RETRY_ATTEMPTS
        {
            return Err(format!("MaximumRetryAttempts {n} is outside -1..={MAX_RETRY_ATTEMPTS}"));
        }
        if let Some(age) = self.maximum_record_age
            && !RECORD_AGE_RANGE.contains(&age.as_secs())
        {
            return Err(format!(
                "MaximumRecordAgeInSeconds {} is outside {}..={} (or -1)",
                age.as_secs(),
                RECORD_AGE_RANGE.start(),
                RECORD_AGE_RANGE.end()
            ));
        }
        Ok(())
    }
}

/// One record of a batch, kept until the batch settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The record's topic (shared by the poller's records).
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its Kafka timestamp, epoch ms (-1 when absent).
    pub timestamp: i64,
    /// Its text in the event ([`super::record_json`]).
    pub json: Vec<u8>,
}

/// Why records were discarded (`requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Condition {
    /// `MaximumRetryAttempts` used up.
    RetryAttemptsExhausted,
    /// Older than `MaximumRecordAgeInSeconds`.
    RecordAgeExceeded,
}

/// What one invocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The function returned this response payload.
    Response(Vec<u8>),
    /// The function failed (its error, in one line).
    FunctionError(String),
}

/// Records the engine gives up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    /// The records, in offset order per partition.
    pub records: Vec<Held>,
    /// Why.
    pub condition: Condition,
    /// Invocations made with them.
    pub invocations: u32,
    /// The last invocation's request id, when there was one.
    pub request_id: Option<String>,
    /// The last function error, when the last invocation failed.
    pub function_error: Option<String>,
}

/// What the engine asks of the poller. `None` from any method: the
/// mapping was killed (or, for `invoke`, a local attempt limit stops it):
/// the engine stops with nothing settled.
pub trait Invoker {
    /// Invokes the function with `event` under `request_id`.
    fn invoke(&mut self, event: &[u8], request_id: &str) -> Option<Answer>;
    /// Waits `pause` before a retry.
    fn wait(&mut self, pause: Duration) -> Option<()>;
    /// Sends `discarded` to the on-failure destination (or logs it).
    fn discard(&mut self, discarded: Discarded) -> Option<()>;
    /// Epoch ms now (for the record age).
    fn now_ms(&self) -> i64;
}

/// What settling one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Invocations made.
    pub invocations: u64,
    /// Of those, answered with a function error (or a response treated as one).
    pub function_errors: u64,
    /// Of those, answered with a non-empty `batchItemFailures`.
    pub partial_failures: u64,
    /// Parts split in two (`BisectBatchOnFunctionError`).
    pub bisections: u64,
    /// Records discarded (to the destination, or logged without one).
    pub discarded: u64,
    /// Payloads of successful invocations, in order (the poller reads its
    /// counts from them).
    pub responses: Vec<Vec<u8>>,
}

/// Event texts of `records` for `arn` and `brokers`.
pub fn event_of(records: &[Held], arn: &str, brokers: &str) -> Vec<u8> {
    let mut b = EventBuilder::new(arn, brokers);
    for r in records {
        b.push(&r.topic, r.partition, r.offset, &r.json);
    }
    b.finish()
}

/// Settles `records` (one polled batch): invokes, retries, bisects and
/// discards as `handling` says, until every record is handled or discarded.
/// `first_id` names the first invocation; later ones get `-2`, `-3`, ….
/// The event of each invocation is built from the records it carries
/// (`arn`, `brokers` its head).
///
/// Returns `None` when the invoker stopped it (killed): nothing settled.
pub fn settle(
    records: Vec<Held>,
    handling: &FailureHandling,
    (arn, brokers): (&str, &str),
    first_id: &str,
    invoker: &mut impl Invoker,
) -> Option<Settled> {
    let mut settled = Settled::default();
    // Parts to invoke, with the retries each has used.
    let mut queue: VecDeque<(Vec<Held>, u32)> = VecDeque::from([(records, 0)]);
    let limit = handling.retry_limit();
    let mut n = 0u64;
    while let Some((mut part, retries)) = queue.pop_front() {
        if let Some(max) = handling.maximum_record_age {
            let now = invoker.now_ms();
            let max_ms = i64::try_from(max.as_millis()).unwrap_or(i64::MAX);
            let (old, young): (Vec<Held>, Vec<Held>) =
                part.into_iter().partition(|r| r.timestamp >= 0 && now.saturating_sub(r.timestamp) > max_ms);
            if !old.is_empty() {
                settled.discarded += old.len() as u64;
                invoker.discard(Discarded {
                    records: old,
                    condition: Condition::RecordAgeExceeded,
                    invocations: retries,
                    request_id: None,
                    function_error: None,
                })?;
            }
            part = young;
        }
        if part.is_empty() {
            continue;
        }
        n += 1;
        let request_id = if n == 1 { first_id.to_owned() } else { format!("{first_id}-{n}") };
        let event = event_of(&part, arn, brokers);
        settled.invocations += 1;
        let failed = match invoker.invoke(&event, &request_id)? {
            Answer::Response(payload) if handling.report_batch_item_failures => match retry_points(&payload, &part) {
                Ok(points) if points.is_empty() => {
                    settled.responses.push(payload);
                    None
                }
                Ok(points) => {
                    settled.partial_failures += 1;
                    settled.responses.push(payload);
                    let rest: Vec<Held> = part
                        .into_iter()
                        .filter(|r| points.get(&(r.topic.clone(), r.partition)).is_some_and(|&o| r.offset >= o))
                        .collect();
                    Some((rest, "the function reported batch item failures".to_owned(), false))
                }
                Err(e) => Some((part, e, true)),
            },
            Answer::Response(payload) => {
                settled.responses.push(payload);
                None
            }
            Answer::FunctionError(e) => Some((part, e, true)),
        };
        let Some((part, error, function_error)) = failed else { continue };
        if function_error {
            settled.function_errors += 1;
            if handling.bisect_batch_on_function_error && part.len() > 1 {
                settled.bisections += 1;
                let mut first = part;
                let second = first.split_off(first.len() / 2);
                queue.push_front((second, retries));
                queue.push_front((first, retries));
                continue;
            }
        }
        if limit.is_some_and(|l| retries >= l) {
            settled.discarded += part.len() as u64;
            invoker.discard(Discarded {
                records: part,
                condition: Condition::RetryAttemptsExhausted,
                invocations: retries + 1,
                request_id: Some(request_id),
                function_error: function_error.then_some(error),
            })?;
            continue;
        }
        invoker.wait(backoff(retries))?;
        queue.push_front((part, retries + 1));
    }
    Some(settled)
}

/// The wait before retry `retries + 1`: 100 ms doubling, at most 10 s.
pub fn backoff(retries: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << retries.min(7))).min(Duration::from_secs(10))
}

/// Per `(topic, partition)`, the lowest offset the response names as
/// failed (empty: a complete success).
///
/// # Errors
/// Why the response makes the whole part a failure: not JSON, or an
/// identifier that is not `{"partition": "<topic>-<n>", "offset": n}` for a
/// record of `part`.
pub fn retry_points(payload: &[u8], part: &[Held]) -> Result<BTreeMap<(Arc<str>, i32), i64>, String> {
    let mut points = BTreeMap::new();
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("the response is not JSON ({e})"))?;
    let failures = match value.get("batchItemFailures") {
        None | Some(serde_json::Value::Null) => return Ok(points),
        Some(serde_json::Value::Array(items)) => items,
        Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    for item in failures {
        let id = item
            .get("itemIdentifier")
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("a batch item failure without itemIdentifier: {item}"))?;
        let (Some(group), Some(offset)) = (id.get("partition"), id.get("offset")) else {
            return Err(format!("itemIdentifier {id} lacks partition or offset"));
        };
        let offset = match offset {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("itemIdentifier {id}: the offset is not a number"))?;
        let found = part.iter().find(|r| {
            r.offset == offset
                && match group {
                    serde_json::Value::String(g) => is_group(g, &r.topic, r.partition),
                    serde_json::Value::Number(p) => p.as_i64() == Some(i64::from(r.partition)),
                    _ => false,
                }
        });
        let Some(r) = found else {
            return Err(format!("itemIdentifier {id} names no record of the batch"));
        };
        let at = points.entry((r.topic.clone(), r.partition)).or_insert(offset);
        *at = (*at).min(offset);
    }
    Ok(points)
}

fn is_group(group: &str, topic: &str, partition: i32) -> bool {
    group.strip_prefix(topic).and_then(|rest| rest.strip_prefix('-')).is_some_and(|p| p == partition.to_string())
}

/// One on-failure document, as Lambda writes it to an S3 destination.
#[derive(Debug, Serialize)]
pub struct OnFailureRecord<'a> {
    /// About the failed invocation.
    #[serde(rename = "requestContext")]
    pub request_context: RequestContext<'a>,
    /// About the function's answer (absent when no invocation was made).
    #[serde(rename = "responseContext", skip_serializing_if = "Option::is_none")]
    pub response_context: Option<ResponseContext>,
    /// `"1.0"`.
    pub version: &'static str,
    /// When the batch was discarded, ISO 8601 with milliseconds.
    pub timestamp: String,
    /// The batch.
    #[serde(rename = "KafkaBatchInfo")]
    pub kafka_batch_info: KafkaBatchInfo<'a>,
    /// The invocation record: the discarded records as an `aws:kafka` event.
    pub payload: &'a RawValue,
}

/// `requestContext`.
#[derive(Debug, Serialize)]
pub struct RequestContext<'a> {
    /// The last invocation's request id (empty when none was made).
    #[serde(rename = "requestId")]
    pub request_id: &'a str,
    /// The function (the local mapping's name for it).
    #[serde(rename = "functionArn")]
    pub function_arn: &'a str,
    /// Why.
    pub condition: Condition,
    /// Invocations made with these records.
    #[serde(rename = "approximateInvokeCount")]
    pub approximate_invoke_count: u32,
}

/// `responseContext`.
#[derive(Debug, Serialize)]
pub struct ResponseContext {
    /// The invoke call's status (200: the function ran).
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    /// `$LATEST`.
    #[serde(rename = "executedVersion")]
    pub executed_version: &'static str,
    /// `Unhandled` after a function error; absent after a partial failure.
    #[serde(rename = "functionError", skip_serializing_if = "Option::is_none")]
    pub function_error: Option<&'static str>,
}

/// `KafkaBatchInfo`.
#[derive(Debug, Serialize)]
pub struct KafkaBatchInfo<'a> {
    /// Records discarded.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    /// The cluster.
    #[serde(rename = "eventSourceArn")]
    pub event_source_arn: &'a str,
    /// The bootstrap servers.
    #[serde(rename = "bootstrapServers")]
    pub bootstrap_servers: &'a str,
    /// The payload's size in bytes.
    #[serde(rename = "payloadSize")]
    pub payload_size: usize,
    /// Per `"<topic>-<partition>"`.
    #[serde(rename = "recordsInfo")]
    pub records_info: BTreeMap<String, RecordsInfo>,
}

/// One partition's span in `recordsInfo` (offsets as strings, as Lambda writes them).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RecordsInfo {
    /// The first discarded offset.
    #[serde(rename = "firstRecordOffset")]
    pub first_record_offset: String,
    /// The last discarded offset.
    #[serde(rename = "lastRecordOffset")]
    pub last_record_offset: String,
    /// The first record's timestamp, ISO 8601.
    #[serde(rename = "firstRecordTimestamp")]
    pub first_record_timestamp: String,
    /// The last record's timestamp, ISO 8601.
    #[serde(rename = "lastRecordTimestamp")]
    pub last_record_timestamp: String,
}

/// ISO 8601 UTC with milliseconds of epoch ms (negative: the epoch).
pub fn iso_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The document for `d` and its object key under `mapping`.
///
/// # Errors
/// Never in practice: serialising the document's own types.
pub fn document(
    d: &Discarded,
    mapping: &str,
    function_arn: &str,
    (arn, brokers): (&str, &str),
    now: SystemTime,
) -> Result<(String, Vec<u8>), serde_json::Error> {
    let event = event_of(&d.records, arn, brokers);
    let payload_text = String::from_utf8_lossy(&event).into_owned();
    let payload = RawValue::from_string(payload_text)?;
    let mut records_info: BTreeMap<String, RecordsInfo> = BTreeMap::new();
    for r in &d.records {
        let key = format!("{}-{}", r.topic, r.partition);
        let entry = records_info.entry(key).or_insert_with(|| RecordsInfo {
            first_record_offset: r.offset.to_string(),
            last_record_offset: r.offset.to_string(),
            first_record_timestamp: iso_ms(r.timestamp),
            last_record_timestamp: iso_ms(r.timestamp),
        });
        entry.last_record_offset = r.offset.to_string();
        entry.last_record_timestamp = iso_ms(r.timestamp);
    }
    let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let doc = OnFailureRecord {
        request_context: RequestContext {
            request_id: d.request_id.as_deref().unwrap_or(""),
            function_arn,
            condition: d.condition,
            approximate_invoke_count: d.invocations,
        },
        response_context: d.request_id.as_ref().map(|_| ResponseContext {
            status_code: 200,
            executed_version: "$LATEST",
            function_error: d.function_error.as_ref().map(|_| "Unhandled"),
        }),
        version: "1.0",
        timestamp: iso_ms(now_ms),
        kafka_batch_info: KafkaBatchInfo {
            batch_size: d.records.len(),
            event_source_arn: arn,
            bootstrap_servers: brokers,
            payload_size: event.len(),
            records_info,
        },
        payload: &payload,
    };
    let body = serde_json::to_vec(&doc)?;
    let first = d.records.first().map_or_else(String::new, |r| format!("{}-{}", r.topic, r.partition));
    let stamp = iso_ms(now_ms);
    // 2026-12-03T19:26:45.123Z → 2026/12/03 and 2026-12-03T19.26.45
    let (day, clock) = (stamp.get(..10).unwrap_or(""), stamp.get(11..19).unwrap_or("").replace(':', "."));
    let key = format!(
        "aws/lambda/{}/{}/{}/{}T{}-{}",
        safe(mapping),
        safe(&first),
        day.replace('-', "/"),
        day,
        clock,
        unique(now)
    );
    Ok((key, body))
}

/// A name no other document of this process (or, by its clock and id,
/// of another) shares, in a UUID's form.
fn unique(now: SystemTime) -> uuid::Uuid {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    uuid::Uuid::from_u128((nanos << 32) ^ (u128::from(std::process::id()) << 96) ^ u128::from(n))
}

/// A key part without path separators or odd characters.
fn safe(part: &str) -> String {
    part.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

/// Writing an on-failure document failed.
#[derive(Debug, thiserror::Error)]
pub enum OnFailureError {
    /// The file could not be written.
    #[error("cannot write the on-failure record {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `PutObject` failed, or the bucket cannot be reached.
    #[error("cannot put the on-failure record s3://{bucket}/{key}: {message}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// The document could not be serialised (not expected).
    #[error("cannot serialise the on-failure record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The on-failure destination: a directory (the document at `<dir>/<key>`,
/// written whole or not at all) or an S3 prefix (`<prefix><key>`).
#[derive(Debug, Clone)]
pub struct OnFailureSink {
    target: DeadLetterTarget,
    s3: Option<S3Bucket>,
}

impl OnFailureSink {
    /// A sink writing to `target`.
    ///
    /// # Errors
    /// [`OnFailureError::S3`] when the S3 client cannot be set up, or an S3
    /// target comes without `access` (a function over the Runtime API
    /// brings its own AWS settings; the mapping has none).
    pub fn new(target: DeadLetterTarget, access: Option<&Access>) -> Result<Self, OnFailureError> {
        let s3 = match &target {
            DeadLetterTarget::Directory(_) => None,
            DeadLetterTarget::S3 { bucket, .. } => {
                let fail = |message: String| OnFailureError::S3 { bucket: bucket.clone(), key: String::new(), message };
                let access = access.ok_or_else(|| {
                    fail("an S3 on-failure destination needs the in-process handler's AWS settings".to_owned())
                })?;
                Some(S3Bucket::new(access, bucket).map_err(|e| fail(e.to_string()))?)
            }
        };
        Ok(OnFailureSink { target, s3 })
    }

    /// Writes one document under `key`; returns where.
    ///
    /// # Errors
    /// [`OnFailureError`] when it could not be written whole.
    pub async fn write(&self, key: &str, body: Vec<u8>) -> Result<String, OnFailureError> {
        match &self.target {
            DeadLetterTarget::Directory(dir) => {
                let path = dir.join(key);
                write_file(&path, &body).await.map_err(|source| OnFailureError::Io { path: path.clone(), source })?;
                Ok(path.display().to_string())
            }
            DeadLetterTarget::S3 { bucket, prefix } => {
                let key = format!("{prefix}{key}");
                let fail = |message: String| OnFailureError::S3 { bucket: bucket.clone(), key: key.clone(), message };
                let s3 = self.s3.as_ref().ok_or_else(|| fail("no S3 client for the bucket".to_owned()))?;
                s3.put(&key, body).await.map_err(|e| fail(e.message))?;
                Ok(format!("s3://{bucket}/{key}"))
            }
        }
    }
}

async fn write_file(path: &std::path::Path, body: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let dir = path.parent().unwrap_or(path);
    tokio::fs::create_dir_all(dir).await?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = tokio::fs::File::create(&tmp).await?;
    file.write_all(body).await?;
    file.sync_all().await?;
    tokio::fs::rename(&tmp, path).await
}

/// The `(partition, offset)` of every record an on-failure document names:
/// its `payload`'s records, or, without a payload, every offset of each
/// `recordsInfo` span. For readers counting outcomes (the run's accounting).
///
/// # Errors
/// When the text is not such a document.
pub fn records_of_document(text: &[u8]) -> Result<Vec<(String, i32, i64)>, String> {
    let doc: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if let Some(groups) = doc.pointer("/payload/records").and_then(|r| r.as_object()) {
        for records in groups.values() {
            for r in records.as_array().into_iter().flatten() {
                let topic = r.get("topic").and_then(|t| t.as_str()).unwrap_or_default().to_owned();
                let partition = r.get("partition").and_then(serde_json::Value::as_i64);
                let offset = r.get("offset").and_then(serde_json::Value::as_i64);
                let (Some(p), Some(o)) = (partition, offset) else {
                    return Err(format!("a payload record without partition or offset: {r}"));
                };
                out.push((topic, i32::try_from(p).map_err(|e| e.to_string())?, o));
            }
        }
        return Ok(out);
    }
    let info = doc
        .pointer("/KafkaBatchInfo/recordsInfo")
        .and_then(|r| r.as_object())
        .ok_or("neither payload.records nor KafkaBatchInfo.recordsInfo")?;
    for (group, span) in info {
        let (topic, partition) = group
            .rsplit_once('-')
            .and_then(|(t, p)| Some((t.to_owned(), p.parse::<i32>().ok()?)))
            .ok_or_else(|| format!("{group:?} is not <topic>-<partition>"))?;
        let offset = |k: &str| -> Result<i64, String> {
            match span.get(k) {
                Some(serde_json::Value::String(s)) => s.parse().map_err(|_| format!("{k} {s:?}")),
                Some(serde_json::Value::Number(n)) => n.as_i64().ok_or_else(|| format!("{k} {n}")),
                _ => Err(format!("{group}: no {k}")),
            }
        };
        for o in offset("firstRecordOffset")?..=offset("lastRecordOffset")? {
            out.push((topic.clone(), partition, o));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(partition: i32, offset: i64) -> Held {
        Held {
            topic: Arc::from("T"),
            partition,
            offset,
            timestamp: 1_000_000 + offset,
            json: format!(r#"{{"topic":"T","partition":{partition},"offset":{offset},"timestamp":{},"timestampType":"CREATE_TIME","headers":[]}}"#, 1_000_000 + offset).into_bytes(),
        }
    }

    /// One scripted answer, given the invoked records' coordinates.
    type Scripted = Box<dyn FnMut(&[(i32, i64)]) -> Answer>;

    /// A scripted function: answers in order, then succeeds.
    #[derive(Default)]
    struct Script {
        answers: VecDeque<Scripted>,
        calls: Vec<Vec<(i32, i64)>>,
        waits: Vec<Duration>,
        discarded: Vec<Discarded>,
        now: i64,
    }

    impl Script {
        fn then(mut self, f: impl FnMut(&[(i32, i64)]) -> Answer + 'static) -> Self {
            self.answers.push_back(Box::new(f));
            self
        }
    }

    impl Invoker for Script {
        fn invoke(&mut self, event: &[u8], _request_id: &str) -> Option<Answer> {
            let parsed = mskbench_core::KafkaEvent::parse(event).unwrap();
            let coords: Vec<(i32, i64)> = parsed.iter_records().map(|r| (r.partition, r.offset)).collect();
            self.calls.push(coords.clone());
            Some(match self.answers.pop_front() {
                Some(mut f) => f(&coords),
                None => Answer::Response(b"{}".to_vec()),
            })
        }
        fn wait(&mut self, pause: Duration) -> Option<()> {
            self.waits.push(pause);
            Some(())
        }
        fn discard(&mut self, discarded: Discarded) -> Option<()> {
            self.discarded.push(discarded);
            Some(())
        }
        fn now_ms(&self) -> i64 {
            self.now
        }
    }

    fn failures(items: &[(&str, i64)]) -> Answer {
        let list: Vec<_> =
            items.iter().map(|(g, o)| serde_json::json!({"itemIdentifier": {"partition": g, "offset": o}})).collect();
        Answer::Response(serde_json::to_vec(&serde_json::json!({ "batchItemFailures": list })).unwrap())
    }

    fn coords(d: &Discarded) -> Vec<(i32, i64)> {
        d.records.iter().map(|r| (r.partition, r.offset)).collect()
    }

    const HEAD: (&str, &str) = ("arn", "b:9092");

    #[test]
    fn reported_item_failures_retry_each_partition_from_its_first_failed_offset() {
        let batch = vec![held(0, 10), held(0, 11), held(0, 12), held(1, 5), held(1, 6)];
        let handling = FailureHandling { report_batch_item_failures: true, ..FailureHandling::default() };
        let mut f = Script::default().then(|_| failures(&[("T-0", 12), ("T-0", 11), ("T-1", 6)]));
        let s = settle(batch, &handling, HEAD, "r", &mut f).unwrap();
        assert_eq!(f.calls, vec![vec![(0, 10), (0, 11), (0, 12), (1, 5), (1, 6)], vec![(0, 11), (0, 12), (1, 6)]]);
        assert_eq!((s.invocations, s.partial_failures, s.function_errors, s.discarded), (2, 1, 0, 0));
    }

    #[test]
    fn item_failures_are_ignored_unless_report_batch_item_failures_is_on() {
        let mut f = Script::default().then(|_| failures(&[("T-0", 0)]));
        let s = settle(vec![held(0, 0)], &FailureHandling::default(), HEAD, "r", &mut f).unwrap();
        assert_eq!((s.invocations, s.partial_failures), (1, 0));
    }

    #[test]
    fn an_identifier_naming_no_record_fails_the_whole_batch() {
        let handling = FailureHandling { report_batch_item_failures: true, ..FailureHandling::default() };
        for bad in [
            r#"{"batchItemFailures":[{"itemIdentifier":{"partition":"T-0","offset":99}}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":{"partition":"T-0"}}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":{"partition":"U-0","offset":1}}]}"#,
            r#"{"batchItemFailures":"x"}"#,
            "not json",
        ] {
            let mut f = Script::default().then(move |_| Answer::Response(bad.as_bytes().to_vec()));
            let s = settle(vec![held(0, 1), held(0, 2)], &handling, HEAD, "r", &mut f).unwrap();
            assert_eq!(f.calls.len(), 2, "{bad}: the whole batch again");
            assert_eq!(f.calls[1], vec![(0, 1), (0, 2)], "{bad}");
            assert_eq!(s.function_errors, 1, "{bad}");
        }
        for fine in [r#"{"batchItemFailures":[]}"#, r#"{"batchItemFailures":null}"#, "null", "{}", r#""ok""#] {
            let mut f = Script::default().then(move |_| Answer::Response(fine.as_bytes().to_vec()));
            settle(vec![held(0, 1)], &handling, HEAD, "r", &mut f).unwrap();
            assert_eq!(f.calls.len(), 1, "{fine}: a complete success");
        }
    }

    #[test]
    fn identifiers_take_the_partition_as_topic_dash_number_or_number_and_the_offset_as_text() {
        let part = [held(3, 7), held(3, 8)];
        let p = retry_points(br#"{"batchItemFailures":[{"itemIdentifier":{"partition":3,"offset":"8"}}]}"#, &part);
        assert_eq!(p.unwrap().into_iter().collect::<Vec<_>>(), [((Arc::from("T"), 3), 8)]);
        assert!(
            retry_points(br#"{"batchItemFailures":[{"itemIdentifier":{"partition":"T-30","offset":8}}]}"#, &part)
                .is_err()
        );
    }

    #[test]
    fn retries_run_out_after_maximum_retry_attempts_and_the_records_are_discarded() {
        let handling = FailureHandling { maximum_retry_attempts: Some(2), ..FailureHandling::default() };
        let mut f = Script::default();
        for _ in 0..5 {
            f = f.then(|_| Answer::FunctionError("boom".into()));
        }
        let s = settle(vec![held(0, 1), held(0, 2)], &handling, HEAD, "r", &mut f).unwrap();
        assert_eq!(f.calls.len(), 3, "the first invocation and 2 retries");
        assert_eq!(f.waits, [backoff(0), backoff(1)]);
        assert_eq!(f.discarded.len(), 1);
        let d = &f.discarded[0];
        assert_eq!(
            (d.condition, d.invocations, coords(d)),
            (Condition::RetryAttemptsExhausted, 3, vec![(0, 1), (0, 2)])
        );
        assert_eq!(d.function_error.as_deref(), Some("boom"));
        assert_eq!(d.request_id.as_deref(), Some("r-3"));
        assert_eq!(s.discarded, 2);
    }

    #[test]
    fn an_on_failure_destination_with_infinite_retries_gets_ten() {
        let handling = FailureHandling {
            on_failure: Some(DeadLetterTarget::Directory("/x".into())),
            ..FailureHandling::default()
        };
        assert_eq!(handling.retry_limit(), Some(RETRIES_WITH_DESTINATION));
        assert_eq!(FailureHandling::default().retry_limit(), None);
        let mut f = Script::default();
        for _ in 0..20 {
            f = f.then(|_| Answer::FunctionError("boom".into()));
        }
        settle(vec![held(0, 1)], &handling, HEAD, "r", &mut f).unwrap();
        assert_eq!(f.calls.len(), 11);
        assert_eq!(f.discarded.len(), 1);
    }

    #[test]
    fn bisecting_isolates_the_bad_record_without_using_retries() {
        // Offset 2 always fails; the others succeed.
        let handling = FailureHandling {
            bisect_batch_on_function_error: true,
            maximum_retry_attempts: Some(1),
            ..FailureHandling::default()
        };
        let mut f = Script::default();
        for _ in 0..20 {
            f = f.then(|c| {
                if c.contains(&(0, 2)) { Answer::FunctionError("bad".into()) } else { Answer::Response(b"{}".to_vec()) }
            });
        }
        let s = settle((0..4).map(|o| held(0, o)).collect(), &handling, HEAD, "r", &mut f).unwrap();
        // [0..4] fails → [0,1] ok, [2,3] fails → [2] fails, [3] ok; [2] retried once, discarded.
        assert_eq!(
            f.calls,
            vec![
                vec![(0, 0), (0, 1), (0, 2), (0, 3)],
                vec![(0, 0), (0, 1)],
                vec![(0, 2), (0, 3)],
                vec![(0, 2)],
                vec![(0, 2)],
                vec![(0, 3)]
            ]
        );
        assert_eq!(s.bisections, 2);
        assert_eq!(f.discarded.len(), 1);
        assert_eq!(coords(&f.discarded[0]), [(0, 2)]);
        assert_eq!(f.discarded[0].invocations, 2);
    }

    #[test]
    fn records_older_than_the_maximum_record_age_are_discarded_not_sent() {
        let handling =
            FailureHandling { maximum_record_age: Some(Duration::from_secs(60)), ..FailureHandling::default() };
        let mut old = held(0, 1);
        old.timestamp = 0;
        let mut untimed = held(0, 2);
        untimed.timestamp = -1;
        let young = held(0, 3);
        let mut f = Script { now: young.timestamp + 1_000, ..Script::default() };
        let s = settle(vec![old, untimed, young], &handling, HEAD, "r", &mut f).unwrap();
        assert_eq!(f.calls, vec![vec![(0, 2), (0, 3)]], "a record without a timestamp is never too old");
        assert_eq!(f.discarded.len(), 1);
        assert_eq!((f.discarded[0].condition, coords(&f.discarded[0])), (Condition::RecordAgeExceeded, vec![(0, 1)]));
        assert_eq!(f.discarded[0].request_id, None);
        assert_eq!(s.discarded, 1);
    }

    #[test]
    fn settings_outside_awss_ranges_are_refused() {
        let bad_retries = FailureHandling { maximum_retry_attempts: Some(10_001), ..FailureHandling::default() };
        assert!(bad_retries.check().unwrap_err().contains("MaximumRetryAttempts"));
        let young = FailureHandling { maximum_record_age: Some(Duration::from_secs(59)), ..FailureHandling::default() };
        assert!(young.check().unwrap_err().contains("MaximumRecordAgeInSeconds"));
        let ok = FailureHandling {
            maximum_retry_attempts: Some(0),
            maximum_record_age: Some(Duration::from_secs(604_800)),
            ..FailureHandling::default()
        };
        assert!(ok.check().is_ok());
    }

    #[test]
    fn the_on_failure_document_has_lambdas_shape_and_names_every_record() {
        let d = Discarded {
            records: vec![held(0, 10), held(0, 11), held(2, 4)],
            condition: Condition::RetryAttemptsExhausted,
            invocations: 3,
            request_id: Some("req".into()),
            function_error: Some("boom".into()),
        };
        let now = UNIX_EPOCH + Duration::from_millis(1_764_790_005_123);
        let (key, body) = document(&d, "group-1", "arn:aws:lambda:local:0:function:f", HEAD, now).unwrap();
        assert!(key.starts_with("aws/lambda/group-1/T-0/2025/12/03/2025-12-03T19.26.45-"), "{key}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(v["requestContext"]["requestId"], "req");
        assert_eq!(v["responseContext"]["functionError"], "Unhandled");
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["timestamp"], "2025-12-03T19:26:45.123Z");
        let info = &v["KafkaBatchInfo"];
        assert_eq!(info["batchSize"], 3);
        assert_eq!(info["bootstrapServers"], "b:9092");
        assert_eq!(info["recordsInfo"]["T-0"]["firstRecordOffset"], "10");
        assert_eq!(info["recordsInfo"]["T-0"]["lastRecordOffset"], "11");
        assert_eq!(info["recordsInfo"]["T-2"]["firstRecordTimestamp"], iso_ms(1_000_004));
        assert_eq!(info["payloadSize"].as_u64().unwrap() as usize, event_of(&d.records, HEAD.0, HEAD.1).len());
        assert_eq!(v["payload"]["eventSource"], "aws:kafka");
        let named = records_of_document(&body).unwrap();
        assert_eq!(named, [("T".to_owned(), 0, 10), ("T".to_owned(), 0, 11), ("T".to_owned(), 2, 4)]);
        // Without a payload (an SQS or SNS destination's shape), the spans name the records.
        let mut bare = v.clone();
        bare.as_object_mut().unwrap().remove("payload");
        let named = records_of_document(&serde_json::to_vec(&bare).unwrap()).unwrap();
        assert_eq!(named, [("T".to_owned(), 0, 10), ("T".to_owned(), 0, 11), ("T".to_owned(), 2, 4)]);
    }
}
