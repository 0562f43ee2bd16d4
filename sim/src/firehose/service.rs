//! The Firehose operations: stream table, quota, faults, buffering, metrics.
//!
//! One [`App`] per server, shared by the HTTP handlers and the delivery
//! task. Streams live in a map behind a read-write lock (written only by
//! create and delete); each stream's mutable state (limiter, open buffer,
//! pending objects, metrics) sits behind its own mutex, so calls to
//! different streams do not contend. Lock order is always the stream
//! table, then stream state, then the RNG; no lock is held across an
//! `.await`.
//!
//! Nothing accepted is lost on stop or delete: a stream's state says when
//! it stopped taking records ([`Closed`]), and both the check and the
//! append happen under the stream's lock, as does the cut of the last
//! buffer. A call that appended before the close is in that last object; a
//! call that comes later (a request still in flight at stop, or one that
//! looked the stream up before it was deleted) gets an error, never a
//! `RecordId`.
//!
//! Cost of a `PutRecordBatch` of n records: one JSON parse borrowing the
//! base64 text, one strict base64 decode into a per-call buffer, then under
//! the stream lock n quota decisions and one copy of each accepted record
//! into the open buffer.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mskbench_core::StreamLimiter;
use mskbench_core::packer::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::json;

use super::config::{AWS_MAX_BUFFER_INTERVAL, AWS_MIN_BUFFER_INTERVAL, Buffering, FirehoseConfig};
use super::delivery::{Buffer, ObjectName, Pending};
use super::metrics::{Sample, StreamMetrics};
use super::protocol::{
    ApiError, CreateInput, ErrorCode, ListInput, PutRecordBatchInput, PutRecordBatchOutput, PutRecordInput,
    PutRecordOutput, RecordInput, RecordResult, SLOW_DOWN, StreamNameInput,
};
use super::{MetricsSnapshot, StreamSnapshot};

/// Account id named in ARNs (moto's default too).
const ACCOUNT: &str = "123456789012";
/// Delivery stream version; it would only change with UpdateDestination.
const STREAM_VERSION: u32 = 1;

/// Locks a mutex, carrying on after a panic elsewhere: every critical
/// section leaves the state consistent between statements that can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One delivery stream.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) name: String,
    arn: String,
    created_unix: f64,
    bucket_arn: String,
    role_arn: String,
    pub(crate) prefix: String,
    pub(crate) hints: Buffering,
    pub(crate) state: Mutex<StreamState>,
}

#[derive(Debug)]
pub(crate) struct StreamState {
    limiter: StreamLimiter,
    pub(crate) buffer: Buffer,
    pub(crate) pending: Pending,
    pub(crate) metrics: StreamMetrics,
    /// Set once the stream takes no more records; its buffer is still written.
    closed: Option<Closed>,
}

/// Why a stream takes no more records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// `DeleteDeliveryStream` removed it.
    Deleted,
    /// The server is stopping: its final flush has taken (or is taking) the buffer.
    Stopping,
}

impl StreamState {
    /// The error a put gets once the stream is closed.
    fn refuse(&self, name: &str) -> Result<(), ApiError> {
        match self.closed {
            None => Ok(()),
            Some(Closed::Deleted) => Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("Firehose {name} under account {ACCOUNT} not found."),
            )),
            Some(Closed::Stopping) => Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("Firehose {name}: the endpoint is stopping and takes no more records"),
            )),
        }
    }
}

impl Stream {
    pub(crate) fn object_name(&self) -> ObjectName<'_> {
        ObjectName { prefix: &self.prefix, stream: &self.name, version: STREAM_VERSION }
    }
}

/// State shared by handlers and the delivery task.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: FirehoseConfig,
    started: Instant,
    streams: RwLock<HashMap<String, Arc<Stream>>>,
    /// Set (under the `streams` write lock) when the final flush begins:
    /// no stream is created after it.
    stopping: AtomicBool,
    /// Deleted streams whose buffers are still to be written.
    pub(crate) retired: Mutex<Vec<Arc<Stream>>>,
    pub(crate) rng: Mutex<Xoshiro256PlusPlus>,
    record_id_salt: u64,
    record_ids: AtomicU64,
    /// Wakes the delivery task when a buffer reaches its size hint.
    pub(crate) wake_delivery: tokio::sync::Notify,
    /// Delivery failures so far, newest last (bounded), for the metrics endpoint.
    pub(crate) delivery_errors: Mutex<Vec<String>>,
    /// On while the endpoint is down (a fault window): every call answered 5xx.
    pub(crate) outage: Arc<crate::Outage>,
}

/// Per-call scratch: decoded record bytes and their ranges.
struct Decoded {
    bytes: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

pub(crate) fn unix_now() -> (u64, f64) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    (d.as_secs(), d.as_secs_f64())
}

fn arg(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::Serialization, format!("cannot parse request body: {e}")))
}

impl App {
    pub(crate) fn new(config: FirehoseConfig) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let record_id_salt = rng.random();
        App {
            config,
            started: Instant::now(),
            streams: RwLock::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            retired: Mutex::new(Vec::new()),
            rng: Mutex::new(rng),
            record_id_salt,
            record_ids: AtomicU64::new(0),
            wake_delivery: tokio::sync::Notify::new(),
            delivery_errors: Mutex::new(Vec::new()),
            outage: Arc::new(crate::Outage::default()),
        }
    }

    fn mono_nanos(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Every stream, live ones then deleted ones still holding data.
    pub(crate) fn all_streams(&self) -> Vec<Arc<Stream>> {
        let mut all: Vec<_> = self.streams.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        all.extend(lock(&self.retired).iter().cloned());
        all
    }

    /// Closes every stream to new records and returns them all, for the
    /// final flush: after this no put is accepted and no stream created, so
    /// what the flush cuts is everything ever answered with a `RecordId`.
    pub(crate) fn begin_stop(&self) -> Vec<Arc<Stream>> {
        let streams = self.streams.write().unwrap_or_else(PoisonError::into_inner);
        self.stopping.store(true, Ordering::SeqCst);
        let mut all: Vec<_> = streams.values().cloned().collect();
        all.extend(lock(&self.retired).iter().cloned());
        drop(streams);
        for stream in &all {
            lock(&stream.state).closed.get_or_insert(Closed::Stopping);
        }
        all
    }

    fn stream(&self, name: &str) -> Result<Arc<Stream>, ApiError> {
        self.streams.read().unwrap_or_else(PoisonError::into_inner).get(name).cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::ResourceNotFound, format!("Firehose {name} under account {ACCOUNT} not found."))
        })
    }

    fn record_id(&self) -> String {
        let n = self.record_ids.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:016x}", self.record_id_salt)
    }

    /// A uniform draw in [0, 1) is below `rate`; no draw when the rate is 0,
    /// so a fault-free run consumes no randomness.
    fn chance(&self, rate: f64) -> bool {
        rate > 0.0 && lock(&self.rng).random::<f64>() < rate
    }

    /// The added latency for one response.
    pub(crate) fn latency(&self) -> Duration {
        match self.config.faults.latency {
            super::config::Latency::None => Duration::ZERO,
            l => l.sample(&mut *lock(&self.rng)),
        }
    }

    /// Creates a stream; the name must be new.
    pub(crate) fn create_stream(
        &self,
        name: &str,
        bucket_arn: Option<String>,
        role_arn: Option<String>,
        prefix: Option<String>,
        hints: Buffering,
    ) -> Result<String, ApiError> {
        validate_stream_name(name)?;
        let prefix = prefix.unwrap_or_default();
        validate_prefix(&prefix, name, &self.config.s3_dir)?;
        let arn = format!("arn:aws:firehose:{}:{ACCOUNT}:deliverystream/{name}", self.config.region);
        let mut streams = self.streams.write().unwrap_or_else(PoisonError::into_inner);
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("Firehose {name}: the endpoint is stopping and creates no more streams"),
            ));
        }
        if streams.contains_key(name) {
            return Err(ApiError::new(
                ErrorCode::ResourceInUse,
                format!("Firehose {name} under accountId {ACCOUNT} already exists"),
            ));
        }
        let stream = Stream {
            name: name.to_owned(),
            arn: arn.clone(),
            created_unix: unix_now().1,
            bucket_arn: bucket_arn.unwrap_or_else(|| "arn:aws:s3:::mskbench-sim".to_owned()),
            role_arn: role_arn.unwrap_or_else(|| format!("arn:aws:iam::{ACCOUNT}:role/mskbench-sim")),
            prefix,
            hints,
            state: Mutex::new(StreamState {
                limiter: StreamLimiter::new(self.config.quota, self.mono_nanos()),
                buffer: Buffer::default(),
                pending: Pending::new(),
                metrics: StreamMetrics::new(self.config.metrics_history_secs),
                closed: None,
            }),
        };
        streams.insert(name.to_owned(), Arc::new(stream));
        Ok(arn)
    }

    /// Dispatches one operation. `Ok` is the JSON body of a 200 response.
    pub(crate) fn call(&self, operation: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        match operation {
            "PutRecordBatch" => self.put_record_batch(body),
            "PutRecord" => self.put_record(body),
            "CreateDeliveryStream" => self.create(body),
            "DescribeDeliveryStream" => self.describe(body),
            "ListDeliveryStreams" => self.list(body),
            "DeleteDeliveryStream" => self.delete(body),
            other => Err(ApiError::new(
                ErrorCode::UnknownOperation,
                format!("operation {other:?} is not served by mskbench-sim"),
            )),
        }
    }

    fn decode(records: &[RecordInput<'_>]) -> Result<Decoded, ApiError> {
        let mut out = Decoded {
            bytes: Vec::with_capacity(records.iter().map(|r| r.data.len() / 4 * 3).sum()),
            ranges: Vec::with_capacity(records.len()),
        };
        for (i, r) in records.iter().enumerate() {
            let range = mskbench_core::b64::decode_append(r.data.as_bytes(), &mut out.bytes).map_err(|e| {
                ApiError::new(ErrorCode::Serialization, format!("Records[{i}].Data is not valid base64: {e}"))
            })?;
            if range.len() > MAX_RECORD_BYTES {
                return Err(arg(format!(
                    "Records[{i}].Data is {} bytes; a record can be at most {MAX_RECORD_BYTES} bytes",
                    range.len()
                )));
            }
            out.ranges.push(range);
        }
        if out.bytes.len() > MAX_BATCH_BYTES {
            return Err(arg(format!(
                "records total {} bytes; a call can carry at most {MAX_BATCH_BYTES} bytes",
                out.bytes.len()
            )));
        }
        Ok(out)
    }

    /// Records a throttled or failed call against its stream.
    fn count_call_failure(&self, stream: &Stream, delta: Sample) {
        lock(&stream.state).metrics.record(unix_now().0, delta);
    }

    fn maybe_inject_500(&self, stream: &Stream) -> Result<(), ApiError> {
        if self.chance(self.config.faults.http_500_rate) {
            self.count_call_failure(stream, Sample { injected_call_failures: 1, ..Sample::default() });
            return Err(ApiError::new(ErrorCode::InternalFailure, "injected failure (mskbench-sim http_500_rate)"));
        }
        Ok(())
    }

    fn put_record_batch(&self, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        let input: PutRecordBatchInput<'_> = parse(body)?;
        let n = input.records.len();
        if n == 0 || n > MAX_BATCH_RECORDS {
            return Err(arg(format!("Records has {n} entries; a PutRecordBatch call takes 1 to {MAX_BATCH_RECORDS}")));
        }
        let decoded = Self::decode(&input.records)?;
        let stream = self.stream(&input.delivery_stream_name)?;
        self.maybe_inject_500(&stream)?;

        let failure_rate = self.config.faults.internal_failure_rate;
        let (now_unix, _) = unix_now();
        let now = Instant::now();
        let mut results = Vec::with_capacity(n);
        let mut delta = Sample::default();
        let mut state = lock(&stream.state);
        state.refuse(&stream.name)?;
        if !state.limiter.admit_call(self.mono_nanos()) {
            delta.throttled_calls = 1;
            state.metrics.record(now_unix, delta);
            return Err(ApiError::new(ErrorCode::ServiceUnavailable, SLOW_DOWN));
        }
        delta.incoming_requests = 1;
        delta.incoming_records = n as u64;
        delta.incoming_bytes = decoded.bytes.len() as u64;
        for range in &decoded.ranges {
            let data = &decoded.bytes[range.clone()];
            let result = if !state.limiter.admit_record(data.len()) {
                delta.throttled_records += 1;
                failed(ErrorCode::ServiceUnavailable, SLOW_DOWN)
            } else if self.chance(failure_rate) {
                delta.injected_record_failures += 1;
                failed(ErrorCode::InternalFailure, "Internal service failure.")
            } else {
                state.buffer.append(data, now_unix, now);
                delta.accepted_records += 1;
                delta.accepted_bytes += data.len() as u64;
                RecordResult { record_id: Some(self.record_id()), error_code: None, error_message: None }
            };
            results.push(result);
        }
        state.metrics.record(now_unix, delta);
        let due = state.buffer.len() as u64 >= stream.hints.size_bytes;
        drop(state);
        if due {
            self.wake_delivery.notify_one();
        }
        let output = PutRecordBatchOutput {
            failed_put_count: delta.throttled_records + delta.injected_record_failures,
            encrypted: false,
            request_responses: results,
        };
        serde_json::to_value(output).map_err(internal)
    }

    fn put_record(&self, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        let input: PutRecordInput<'_> = parse(body)?;
        let decoded = Self::decode(std::slice::from_ref(&input.record))?;
        let stream = self.stream(&input.delivery_stream_name)?;
        self.maybe_inject_500(&stream)?;
        let data = &decoded.bytes[..];
        let (now_unix, _) = unix_now();
        let mut delta = Sample::default();
        let mut state = lock(&stream.state);
        state.refuse(&stream.name)?;
        if !state.limiter.admit_call(self.mono_nanos()) {
            delta.throttled_calls = 1;
            state.metrics.record(now_unix, delta);
            return Err(ApiError::new(ErrorCode::ServiceUnavailable, SLOW_DOWN));
        }
        delta.incoming_requests = 1;
        delta.incoming_records = 1;
        delta.incoming_bytes = data.len() as u64;
        // A single record has no per-record response: its throttle or
        // failure fails the call.
        let outcome = if !state.limiter.admit_record(data.len()) {
            delta.throttled_records = 1;
            Err(ApiError::new(ErrorCode::ServiceUnavailable, SLOW_DOWN))
        } else if self.chance(self.config.faults.internal_failure_rate) {
            delta.injected_record_failures = 1;
            Err(ApiError::new(ErrorCode::InternalFailure, "Internal service failure."))
        } else {
            state.buffer.append(data, now_unix, Instant::now());
            delta.accepted_records = 1;
            delta.accepted_bytes = data.len() as u64;
            Ok(())
        };
        state.metrics.record(now_unix, delta);
        let due = state.buffer.len() as u64 >= stream.hints.size_bytes;
        drop(state);
        if due {
            self.wake_delivery.notify_one();
        }
        outcome?;
        serde_json::to_value(PutRecordOutput { record_id: self.record_id(), encrypted: false }).map_err(internal)
    }

    fn create(&self, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        let input: CreateInput = parse(body)?;
        match input.delivery_stream_type.as_deref() {
            None | Some("DirectPut") => {}
            Some(other) => {
                return Err(arg(format!("DeliveryStreamType {other} is not served by mskbench-sim; only DirectPut")));
            }
        }
        let dest = input.extended_s3_destination_configuration.or(input.s3_destination_configuration);
        let (bucket, role, prefix, hints_in) = match dest {
            Some(d) => (d.bucket_arn, d.role_arn, d.prefix, d.buffering_hints),
            None => (None, None, None, None),
        };
        let mut hints = self.config.buffering;
        if let Some(h) = hints_in {
            if let Some(mb) = h.size_in_mbs {
                if !(1..=128).contains(&mb) {
                    return Err(arg(format!("BufferingHints.SizeInMBs {mb} is outside 1..=128")));
                }
                hints.size_bytes = mb * 1024 * 1024;
            }
            if let Some(secs) = h.interval_in_seconds {
                let interval = Duration::from_secs(secs);
                if !(AWS_MIN_BUFFER_INTERVAL..=AWS_MAX_BUFFER_INTERVAL).contains(&interval) {
                    return Err(arg(format!("BufferingHints.IntervalInSeconds {secs} is outside 60..=900")));
                }
                hints.interval = interval;
            }
        }
        let arn = self.create_stream(&input.delivery_stream_name, bucket, role, prefix, hints)?;
        Ok(json!({ "DeliveryStreamARN": arn }))
    }

    fn describe(&self, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        let input: StreamNameInput = parse(body)?;
        let s = self.stream(&input.delivery_stream_name)?;
        let size_mb = s.hints.size_bytes.div_ceil(1024 * 1024).max(1);
        let interval_s = s.hints.interval.as_secs_f64().ceil() as u64;
        Ok(json!({
            "DeliveryStreamDescription": {
                "DeliveryStreamName": s.name,
                "DeliveryStreamARN": s.arn,
                "DeliveryStreamStatus": "ACTIVE",
                "DeliveryStreamType": "DirectPut",
                "VersionId": STREAM_VERSION.to_string(),
                "CreateTimestamp": s.created_unix,
                "Destinations": [{
                    "DestinationId": "destinationId-000000000001",
                    "ExtendedS3DestinationDescription": {
                        "RoleARN": s.role_arn,
                        "BucketARN": s.bucket_arn,
                        "Prefix": s.prefix,
                        "BufferingHints": { "SizeInMBs": size_mb, "IntervalInSeconds": interval_s },
                        "CompressionFormat": "UNCOMPRESSED",
                        "EncryptionConfiguration": { "NoEncryptionConfig": "NoEncryption" },
                        "S3BackupMode": "Disabled"
                    },
                    "S3DestinationDescription": {
                        "RoleARN": s.role_arn,
                        "BucketARN": s.bucket_arn,
                        "Prefix": s.prefix,
                        "BufferingHints": { "SizeInMBs": size_mb, "IntervalInSeconds": interval_s },
                        "CompressionFormat": "UNCOMPRESSED",
                        "EncryptionConfiguration": { "NoEncryptionConfig": "NoEncryption" }
                    }
                }],
                "HasMoreDestinations": false
            }
        }))
    }

    fn list(&self, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        // boto3 sends `{}`; an empty body is accepted too.
        let input: ListInput =
            if body.iter().all(u8::is_ascii_whitespace) { ListInput::default() } else { parse(body)? };
        let limit = input.limit.unwrap_or(10);
        if !(1..=10_000).contains(&limit) {
            return Err(arg(format!("Limit {limit} is outside 1..=10000")));
        }
        let mut names: Vec<String> = match input.delivery_stream_type.as_deref() {
            None | Some("DirectPut") => {
                self.streams.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
            }
            Some(_) => Vec::new(),
        };
        names.sort();
        if let Some(start) = &input.exclusive_start_delivery_stream_name {
            names.retain(|n| n > start);
        }
        let more = names.len() > limit;
        names.truncate(limit);
        Ok(json!({ "DeliveryStreamNames": names, "HasMoreDeliveryStreams": more }))
    }

    fn delete(&self, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        let input: StreamNameInput = parse(body)?;
        let mut streams = self.streams.write().unwrap_or_else(PoisonError::into_inner);
        match streams.remove(&input.delivery_stream_name) {
            // Its buffer is still delivered: hand it to the delivery task.
            // Closed and retired under the table's lock, as `begin_stop`
            // collects the table and the retired list under it too: a stop
            // cannot begin between the two and miss the stream's buffer.
            Some(stream) => {
                // A put that found the stream before it left the table
                // appends before this line or is refused after it.
                lock(&stream.state).closed = Some(Closed::Deleted);
                lock(&self.retired).push(stream);
                drop(streams);
                self.wake_delivery.notify_one();
                Ok(json!({}))
            }
            None => {
                drop(streams);
                Err(self
                    .stream(&input.delivery_stream_name)
                    .err()
                    .unwrap_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "stream vanished")))
            }
        }
    }

    /// A point-in-time copy of every stream's metrics.
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let mut streams = BTreeMap::new();
        for s in self.all_streams() {
            let state = lock(&s.state);
            streams.insert(
                s.name.clone(),
                StreamSnapshot {
                    totals: state.metrics.totals(),
                    series: state.metrics.series(),
                    buffered_bytes: state.buffer.len() as u64,
                    pending_objects: state.pending.len() as u64,
                },
            );
        }
        MetricsSnapshot { quota: self.config.quota, streams, delivery_errors: lock(&self.delivery_errors).clone() }
    }
}

fn failed(code: ErrorCode, message: &'static str) -> RecordResult {
    RecordResult { record_id: None, error_code: Some(code.as_str()), error_message: Some(message) }
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::new(ErrorCode::InternalFailure, format!("cannot encode response: {e}"))
}

/// AWS's pattern `[a-zA-Z0-9_.-]+`, 1–64 characters. Also keeps names safe
/// as file names.
fn validate_stream_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(arg(format!("DeliveryStreamName {name:?} must be 1 to 64 characters of [a-zA-Z0-9_.-]")))
    }
}

/// Longest file or directory name Linux file systems take (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// Longest path the kernel takes, without its NUL (`PATH_MAX` − 1).
const PATH_MAX: usize = 4095;
/// What a key adds after the prefix, at most: `YYYY/MM/dd/HH/`, then the
/// stream (≤ 64), `-1-`, the time, `-`, the UUID; its temporary twin adds
/// `.` and `.tmp`.
const KEY_TAIL_MAX: usize =
    "YYYY/MM/dd/HH/".len() + 64 + "-1-YYYY-MM-dd-HH-mm-ss-".len() + 36 + ".".len() + ".tmp".len();

/// Refuses, at `CreateDeliveryStream`, a prefix the delivery writer could
/// not write objects under or the reader would not find them under, so a
/// stream never accepts records it cannot deliver. Prefixes become
/// directories under `s3_dir`: no absolute paths or backslashes, no NUL
/// byte, no segment starting with `.` (`.` and `..`, and the dot names the
/// writer and reader keep for objects in progress), no segment longer than
/// a file name may be (the last one with the key's `YYYY` appended), no
/// key longer than a path may be, no `!{…}` expressions (not implemented
/// here). Then the prefix's directories are created and a dot-named probe
/// written and removed in the deepest one, as the writer will: a file in
/// the way or a directory that cannot be written is refused now, not at
/// the first flush.
fn validate_prefix(prefix: &str, stream: &str, s3_dir: &std::path::Path) -> Result<(), ApiError> {
    let refuse = |why: &str| Err(arg(format!("Prefix {prefix:?} of {stream}: {why}")));
    if prefix.len() > 1024 {
        return refuse("longer than 1024 characters");
    }
    if prefix.contains('\0') {
        return refuse("holds a NUL byte, which no file name can");
    }
    if prefix.starts_with('/') || prefix.contains('\\') {
        return refuse("must be a relative key prefix (no leading '/', no '\\')");
    }
    if prefix.contains("!{") {
        return refuse("uses expressions, which mskbench-sim does not evaluate");
    }
    let segments: Vec<&str> = prefix.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if segment.starts_with('.') {
            return refuse("a segment starts with '.' ('.', '..' and dot names are not delivered under)");
        }
        // The last segment is the start of the `YYYY` directory's name.
        let len = if i + 1 == segments.len() { segment.len() + 4 } else { segment.len() };
        if len > NAME_MAX {
            return refuse(&format!("a segment makes a {len}-byte directory name, above {NAME_MAX}"));
        }
    }
    let longest = s3_dir.as_os_str().len() + 1 + prefix.len() + KEY_TAIL_MAX;
    if longest > PATH_MAX {
        return refuse(&format!("under {} its keys reach {longest} bytes, above {PATH_MAX}", s3_dir.display()));
    }
    let dir = match prefix.rfind('/') {
        Some(end) => s3_dir.join(&prefix[..end]),
        None => s3_dir.to_path_buf(),
    };
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let probe = dir.join(format!(".mskbench-probe-{}-{n}.tmp", std::process::id()));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .or_else(|e| refuse(&format!("objects cannot be written under {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use mskbench_core::Quota;

    use super::*;

    /// An app delivering under a temporary directory, with stream `s`.
    fn app(quota: Quota) -> (App, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let app = App::new(FirehoseConfig { quota, s3_dir: dir.path().to_owned(), ..FirehoseConfig::default() });
        app.create_stream("s", None, None, Some("p/".into()), Buffering::default()).unwrap();
        (app, dir)
    }

    fn batch(records: &[&str]) -> Vec<u8> {
        let records: Vec<_> = records.iter().map(|d| json!({ "Data": d })).collect();
        serde_json::to_vec(&json!({ "DeliveryStreamName": "s", "Records": records })).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        let mut s = String::new();
        mskbench_core::b64::encode_append(bytes, &mut s);
        s
    }

    fn code(r: Result<serde_json::Value, ApiError>) -> &'static str {
        r.unwrap_err().code.as_str()
    }

    #[test]
    fn validation_errors_are_the_ones_aws_uses() {
        let (a, _dir) = app(Quota::US_EAST_1);
        assert_eq!(code(a.call("PutRecordBatch", &batch(&[]))), "InvalidArgumentException");
        let many = vec!["eA=="; 501];
        assert_eq!(code(a.call("PutRecordBatch", &batch(&many))), "InvalidArgumentException");
        let big = b64(&vec![0u8; MAX_RECORD_BYTES + 1]);
        assert_eq!(code(a.call("PutRecordBatch", &batch(&[&big]))), "InvalidArgumentException");
        let near = b64(&vec![0u8; MAX_RECORD_BYTES]);
        let five = vec![near.as_str(); 5];
        assert_eq!(code(a.call("PutRecordBatch", &batch(&five))), "InvalidArgumentException");
        assert_eq!(code(a.call("PutRecordBatch", &batch(&["not base64!"]))), "SerializationException");
        assert_eq!(code(a.call("PutRecordBatch", b"{\"Records\": [")), "SerializationException");
        let other = br#"{"DeliveryStreamName": "nope", "Records": [{"Data": "eA=="}]}"#;
        assert_eq!(code(a.call("PutRecordBatch", other)), "ResourceNotFoundException");
        assert_eq!(code(a.call("Frobnicate", b"{}")), "UnknownOperationException");
        // Nothing above was accepted.
        assert_eq!(a.snapshot().streams["s"].totals.accepted_records, 0);
    }

    #[test]
    fn over_quota_records_fail_alone_in_request_order() {
        let q = Quota { records_per_sec: 3, requests_per_sec: 100, bytes_per_sec: 1 << 20 };
        let (a, _dir) = app(q);
        let out = a.call("PutRecordBatch", &batch(&["YQ==", "Yg==", "Yw==", "ZA==", "ZQ=="])).unwrap();
        assert_eq!(out["FailedPutCount"], 2);
        let r = out["RequestResponses"].as_array().unwrap();
        assert!(r[..3].iter().all(|e| e["RecordId"].is_string() && e.get("ErrorCode").is_none()));
        for e in &r[3..] {
            assert_eq!(e["ErrorCode"], "ServiceUnavailableException");
            assert_eq!(e["ErrorMessage"], "Slow down.");
            assert!(e.get("RecordId").is_none());
        }
        let snap = a.snapshot();
        let t = snap.streams["s"].totals;
        assert_eq!((t.incoming_records, t.accepted_records, t.throttled_records), (5, 3, 2));
        assert_eq!(snap.streams["s"].buffered_bytes, 3, "accepted bytes are buffered: abc");
    }

    #[test]
    fn over_request_quota_fails_the_whole_call() {
        let q = Quota { records_per_sec: 1000, requests_per_sec: 1, bytes_per_sec: 1 << 20 };
        let (a, _dir) = app(q);
        a.call("PutRecordBatch", &batch(&["YQ=="])).unwrap();
        let err = a.call("PutRecordBatch", &batch(&["YQ=="])).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (ErrorCode::ServiceUnavailable, SLOW_DOWN));
        assert_eq!(err.code.status(), 503);
        assert_eq!(a.snapshot().streams["s"].totals.throttled_calls, 1);
    }

    #[test]
    fn injected_failures_are_seeded_and_counted() {
        let run = |seed| {
            let dir = tempfile::tempdir().unwrap();
            let mut config = FirehoseConfig { seed, s3_dir: dir.path().to_owned(), ..FirehoseConfig::default() };
            config.faults.internal_failure_rate = 0.5;
            let a = App::new(config);
            a.create_stream("s", None, None, None, Buffering::default()).unwrap();
            let out = a.call("PutRecordBatch", &batch(&["YQ=="; 200])).unwrap();
            let codes: Vec<_> = out["RequestResponses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["ErrorCode"].as_str().map(str::to_owned))
                .collect();
            let failed = out["FailedPutCount"].as_u64().unwrap();
            assert_eq!(codes.iter().filter(|c| c.as_deref() == Some("InternalFailure")).count() as u64, failed);
            assert_eq!(a.snapshot().streams["s"].totals.injected_record_failures, failed);
            (codes, failed)
        };
        let (a, failed) = run(1);
        assert_eq!(run(1).0, a, "same seed, same failures");
        assert!((60..140).contains(&failed), "{failed} of 200 at rate 0.5");
    }

    #[test]
    fn create_describe_list_delete() {
        let (a, _dir) = app(Quota::US_EAST_1);
        let err = a.call("CreateDeliveryStream", br#"{"DeliveryStreamName": "s"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::ResourceInUse);
        let bad_hints = br#"{"DeliveryStreamName": "t", "ExtendedS3DestinationConfiguration":
            {"BucketARN": "arn:aws:s3:::b", "RoleARN": "r", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 30}}}"#;
        assert_eq!(code(a.call("CreateDeliveryStream", bad_hints)), "InvalidArgumentException");
        for name in ["../x", "", "a/b"] {
            let body = serde_json::to_vec(&json!({ "DeliveryStreamName": name })).unwrap();
            assert_eq!(code(a.call("CreateDeliveryStream", &body)), "InvalidArgumentException");
        }
        let body = br#"{"DeliveryStreamName": "t", "ExtendedS3DestinationConfiguration":
            {"BucketARN": "arn:aws:s3:::b", "RoleARN": "r", "Prefix": "x/", "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 60}}}"#;
        let out = a.call("CreateDeliveryStream", body).unwrap();
        assert_eq!(out["DeliveryStreamARN"], "arn:aws:firehose:us-east-1:123456789012:deliverystream/t");
        let d = a.call("DescribeDeliveryStream", br#"{"DeliveryStreamName": "t"}"#).unwrap();
        let dest = &d["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"];
        assert_eq!(dest["BufferingHints"]["SizeInMBs"], 2);
        assert_eq!(dest["Prefix"], "x/");
        let l = a.call("ListDeliveryStreams", br#"{"Limit": 1}"#).unwrap();
        assert_eq!(l, json!({ "DeliveryStreamNames": ["s"], "HasMoreDeliveryStreams": true }));
        let l = a.call("ListDeliveryStreams", b"").unwrap();
        assert_eq!(l["DeliveryStreamNames"], json!(["s", "t"]));
        a.call("DeleteDeliveryStream", br#"{"DeliveryStreamName": "t"}"#).unwrap();
        assert_eq!(
            code(a.call("DeleteDeliveryStream", br#"{"DeliveryStreamName": "t"}"#)),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code(a.call("DescribeDeliveryStream", br#"{"DeliveryStreamName": "t"}"#)),
            "ResourceNotFoundException"
        );
    }

    fn create_with_prefix(a: &App, name: &str, prefix: &str) -> Result<serde_json::Value, ApiError> {
        let body = json!({
            "DeliveryStreamName": name,
            "ExtendedS3DestinationConfiguration": { "BucketARN": "arn:aws:s3:::b", "RoleARN": "r", "Prefix": prefix }
        });
        a.call("CreateDeliveryStream", &serde_json::to_vec(&body).unwrap())
    }

    #[test]
    fn prefixes_the_delivery_writer_cannot_write_under_are_refused_at_create() {
        let (a, dir) = app(Quota::US_EAST_1);
        std::fs::write(dir.path().join("blocked"), b"a file where a directory must go").unwrap();
        let long_segment = format!("{}/", "x".repeat(256));
        // 252 bytes + the key's `YYYY` make a 256-byte directory name.
        let long_last = "y".repeat(252);
        for (i, prefix) in [
            "nul\0byte/",
            long_segment.as_str(),
            long_last.as_str(),
            "a/../b/",
            "../up/",
            ".hidden/",
            "a/./b/",
            ".",
            "/absolute/",
            "back\\slash/",
            "!{timestamp:yyyy}/",
            "blocked/below/",
        ]
        .into_iter()
        .enumerate()
        {
            let err = create_with_prefix(&a, &format!("bad{i}"), prefix).unwrap_err();
            assert_eq!(err.code.as_str(), "InvalidArgumentException", "{prefix:?}");
            assert_eq!(err.code.status(), 400);
            assert!(err.message.contains("Prefix"), "{prefix:?}: {}", err.message);
        }
        assert_eq!(a.call("ListDeliveryStreams", b"{}").unwrap()["DeliveryStreamNames"], json!(["s"]), "none created");
        // A key that would pass PATH_MAX under a deep delivery directory.
        let deep = App::new(FirehoseConfig { s3_dir: dir.path().join("d".repeat(3500)), ..FirehoseConfig::default() });
        let err = create_with_prefix(&deep, "deep", &"p/".repeat(300)).unwrap_err();
        assert_eq!(err.code.as_str(), "InvalidArgumentException", "{}", err.message);

        // What the writer can write under is taken, and written to.
        let fine = "y".repeat(251);
        for (i, prefix) in
            ["MSKToS3/", "logs-", "a//b/", "", "nested/deeper/x.y/", fine.as_str()].into_iter().enumerate()
        {
            let name = format!("ok{i}");
            create_with_prefix(&a, &name, prefix).unwrap();
            let stream = a.stream(&name).unwrap();
            let key = stream.object_name().key(1_735_648_496, uuid::Uuid::nil());
            super::super::delivery::write_object(dir.path(), &key, b"x\n").unwrap();
        }
        let leftovers = std::fs::read_dir(dir.path().join("MSKToS3")).unwrap().count();
        assert_eq!(leftovers, 1, "the probe left nothing but the year directory written above");
    }

    #[test]
    fn a_put_after_the_stop_began_is_refused_and_one_before_is_in_the_last_buffer() {
        let (a, _dir) = app(Quota::US_EAST_1);
        a.call("PutRecordBatch", &batch(&["YQ=="])).unwrap();
        let streams = a.begin_stop();
        assert_eq!(streams.len(), 1);
        let err = a.call("PutRecordBatch", &batch(&["Yg=="])).unwrap_err();
        assert_eq!((err.code.as_str(), err.code.status().as_u16()), ("ServiceUnavailableException", 503));
        let body = br#"{"DeliveryStreamName": "s", "Record": {"Data": "Yw=="}}"#;
        assert_eq!(code(a.call("PutRecord", body)), "ServiceUnavailableException");
        assert_eq!(
            code(a.call("CreateDeliveryStream", br#"{"DeliveryStreamName": "late"}"#)),
            "ServiceUnavailableException"
        );
        let object = lock(&streams[0].state).buffer.cut(&streams[0].object_name(), uuid::Uuid::nil()).unwrap();
        assert_eq!(object.data, b"a", "only the record accepted before the stop");
        assert_eq!(a.snapshot().streams["s"].totals.accepted_records, 1);
    }

    #[test]
    fn a_deleted_stream_takes_no_more_records_but_keeps_its_buffer() {
        let (a, _dir) = app(Quota::US_EAST_1);
        a.call("PutRecordBatch", &batch(&["YQ=="])).unwrap();
        // Held as a put holds it between looking the stream up and appending.
        let held = a.stream("s").unwrap();
        a.call("DeleteDeliveryStream", br#"{"DeliveryStreamName": "s"}"#).unwrap();
        let state = lock(&held.state);
        assert_eq!(state.refuse("s").unwrap_err().code.as_str(), "ResourceNotFoundException");
        assert_eq!(state.buffer.len(), 1, "what it accepted is still to be written");
    }
}
