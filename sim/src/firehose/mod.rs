//! A local Amazon Data Firehose endpoint that throttles like the real one.
//!
//! [`FirehoseServer::start`] binds (127.0.0.1 on a free port by default)
//! and serves the AWS JSON 1.1 protocol at `POST /` — CreateDeliveryStream,
//! DescribeDeliveryStream, ListDeliveryStreams, DeleteDeliveryStream,
//! PutRecord, PutRecordBatch — to `aws-sdk-firehose`, boto3 or any client
//! pointed at its URL. Signatures are accepted and not checked. `GET
//! /metrics` answers the per-second counters as JSON ([`MetricsSnapshot`]).
//!
//! What it models, and where:
//! - validation and error shapes (`protocol`, `service`): the limits of
//!   `mskbench_core::packer`, errors with AWS's `__type` and status;
//! - the Direct PUT quota (`mskbench_core::quota`): per stream, records/s,
//!   requests/s and bytes/s as token buckets with one second of burst; an
//!   empty request bucket fails the call (503 `ServiceUnavailableException`),
//!   empty record or byte buckets fail single records inside an HTTP 200;
//! - faults on purpose (`config::Faults`): per-record `InternalFailure`,
//!   whole-call HTTP 500, added latency — all drawn from one seeded RNG;
//! - delivery (`delivery`): buffered per stream by size and interval hints,
//!   written under `s3_dir` with Firehose's key layout;
//! - metrics (`metrics`): per-second counters per stream.
//!
//! Invariant: every record answered with a `RecordId` ends up in exactly one
//! object, or [`FirehoseServer::shutdown`] returns an error naming what was
//! not written. A stop first lets in-flight requests finish (for a grace
//! period), then closes every stream under its lock and cuts its last
//! buffer: a request still in flight after that gets
//! `ServiceUnavailableException`, never a `RecordId`. The final flush tries
//! every stream, and [`FirehoseError::Undelivered`] names each one it could
//! not write.

mod config;
mod delivery;
mod metrics;
mod protocol;
pub(crate) mod service;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Buffering, Faults, FirehoseConfig, Latency};
pub use delivery::{DeliveredObject, ReadError, count_lines, list_objects};
pub use metrics::Sample;

use crate::outage::{HttpOutage, Outage};
use crate::server::{BodyError, GRACE, Running, ServeError, read_body};
use protocol::{CONTENT_TYPE, ErrorCode, TARGET_PREFIX};
use service::{App, Stream, lock, unix_now};

/// Largest request body read. Bigger than any valid call (4 MiB of data is
/// about 5.6 MB of base64), so oversized calls still get AWS's
/// `InvalidArgumentException` from validation rather than a cut connection.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Attempts at writing each remaining object during a stop.
const STOP_ATTEMPTS: u32 = 3;
/// Delivery errors kept for the metrics endpoint.
const KEPT_DELIVERY_ERRORS: usize = 100;

/// Failures to start, serve or deliver.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// The configuration (or a stream's hints) is out of range.
    #[error("invalid Firehose configuration: {0}")]
    Config(String),
    /// The delivery directory could not be created.
    #[error("cannot create the S3 directory {path}")]
    S3Dir {
        /// The directory.
        path: PathBuf,
        /// Why creating it failed.
        source: std::io::Error,
    },
    /// The listener could not bind, or serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// Accepted records of one or more streams could not be written at
    /// shutdown; every other stream was written.
    #[error("could not deliver the accepted records of {} stream(s) under {dir}: {}", streams.len(), describe(streams))]
    Undelivered {
        /// The delivery directory.
        dir: PathBuf,
        /// Each stream left with unwritten objects, by name.
        streams: Vec<UndeliveredStream>,
        /// What the final flush did write (of the other streams, and of these before the failure).
        written: StopReport,
    },
    /// The task writing objects panicked or was cancelled.
    #[error("the delivery task panicked or was cancelled")]
    DeliveryTask,
}

/// Per-second metrics of every stream, as served by `GET /metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSnapshot {
    /// The quota every stream is held to (the red line of the plots).
    pub quota: mskbench_core::Quota,
    /// Each stream's metrics, by name.
    pub streams: BTreeMap<String, StreamSnapshot>,
    /// Object writes that failed (each was or will be retried), oldest first.
    pub delivery_errors: Vec<String>,
}

/// Metrics of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    /// Sums over the stream's life.
    pub totals: Sample,
    /// One sample per active second, oldest first.
    pub series: Vec<Sample>,
    /// Accepted bytes not yet cut into an object.
    pub buffered_bytes: u64,
    /// Objects cut and not yet written.
    pub pending_objects: u64,
}

/// A stream whose accepted records a stop could not all write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredStream {
    /// The stream.
    pub stream: String,
    /// Objects left unwritten.
    pub objects: usize,
    /// Accepted records in them.
    pub records: u64,
    /// The last write error.
    pub last_error: String,
}

fn describe(streams: &[UndeliveredStream]) -> String {
    let parts: Vec<String> = streams
        .iter()
        .map(|s| format!("{}: {} object(s), {} record(s): {}", s.stream, s.objects, s.records, s.last_error))
        .collect();
    parts.join("; ")
}

/// What a clean stop delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// Objects written by the final flush.
    pub objects: u64,
    /// Bytes in them.
    pub bytes: u64,
}

/// A running Firehose stand-in.
#[derive(Debug)]
pub struct FirehoseServer {
    app: Arc<App>,
    http: Running,
    /// How long a stop waits for in-flight requests before the final flush.
    grace: Duration,
    stop_delivery: oneshot::Sender<()>,
    delivery: JoinHandle<Result<StopReport, FirehoseError>>,
}

impl FirehoseServer {
    /// Validates `config`, creates its S3 directory and streams, binds and serves.
    ///
    /// Must be called inside a tokio runtime; the server runs on it.
    pub async fn start(config: FirehoseConfig) -> Result<Self, FirehoseError> {
        config.buffering.validate(config.allow_small_buffers).map_err(FirehoseError::Config)?;
        config.faults.validate().map_err(FirehoseError::Config)?;
        std::fs::create_dir_all(&config.s3_dir)
            .map_err(|source| FirehoseError::S3Dir { path: config.s3_dir.clone(), source })?;
        let app = Arc::new(App::new(config));
        for name in app.config.streams.clone() {
            app.create_stream(&name, None, None, None, app.config.buffering)
                .map_err(|e| FirehoseError::Config(e.message))?;
        }
        let router = Router::new()
            .route("/", post(handle))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .with_state(app.clone());
        let http = Running::start(app.config.listen, router).await?;
        let (stop_delivery, stopped) = oneshot::channel();
        let delivery = tokio::spawn(deliver_loop(app.clone(), stopped));
        Ok(FirehoseServer { app, http, grace: GRACE, stop_delivery, delivery })
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL for SDKs.
    pub fn url(&self) -> String {
        self.http.url()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.http.addr()
    }

    /// Creates a stream with the server's default buffering and no prefix,
    /// as `CreateDeliveryStream` with only a name would.
    pub fn create_stream(&self, name: &str) -> Result<(), FirehoseError> {
        self.app
            .create_stream(name, None, None, None, self.app.config.buffering)
            .map(drop)
            .map_err(|e| FirehoseError::Config(e.message))
    }

    /// Per-second metrics of every stream, now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.app.snapshot()
    }

    /// The switch that takes the endpoint down (every call answered 5xx)
    /// and up again, for fault windows.
    pub fn outage(&self) -> Arc<Outage> {
        self.app.outage.clone()
    }

    /// Stops serving (in-flight requests get a grace period to finish),
    /// then writes every buffered record of every stream. Returns what the
    /// final flush wrote, or names each stream whose data it could not
    /// write; a request still in flight after the grace period gets an
    /// error, not a `RecordId`.
    ///
    /// # Errors
    /// [`FirehoseError::Undelivered`] naming every stream left with
    /// unwritten objects; [`FirehoseError::DeliveryTask`] or
    /// [`FirehoseError::Serve`] when a task of the server failed.
    pub async fn shutdown(self) -> Result<StopReport, FirehoseError> {
        let FirehoseServer { app: _, http, grace, stop_delivery, delivery } = self;
        let served = http.stop(grace).await;
        let _ = stop_delivery.send(());
        let delivered = delivery.await.map_err(|_| FirehoseError::DeliveryTask)?;
        served?;
        delivered
    }
}

async fn handle(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let result = match target.strip_prefix(TARGET_PREFIX) {
        None => Err(protocol::ApiError::new(
            ErrorCode::UnknownOperation,
            format!("X-Amz-Target {target:?} is not {TARGET_PREFIX}<Operation>"),
        )),
        Some(operation) => match read_body(body, MAX_REQUEST_BYTES).await {
            Err(BodyError::TooLarge { limit }) => Err(protocol::ApiError::new(
                ErrorCode::InvalidArgument,
                format!("request body is larger than {limit} bytes"),
            )),
            Err(e @ BodyError::Read(_)) => Err(protocol::ApiError::new(ErrorCode::Serialization, e.to_string())),
            Ok(_) if let Some(status) = app.outage.answer() => Err(match status {
                HttpOutage::Status500 => {
                    protocol::ApiError::new(ErrorCode::InternalFailure, "Internal service failure.")
                }
                HttpOutage::Status503 => protocol::ApiError::new(ErrorCode::ServiceUnavailable, "Service unavailable."),
            }),
            Ok(bytes) => {
                let delay = app.latency();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                app.call(operation, &bytes)
            }
        },
    };
    let request_id = uuid::Builder::from_random_bytes(rand_id(&app).to_le_bytes()).into_uuid().hyphenated().to_string();
    let (status, body) = match result {
        Ok(value) => (StatusCode::OK, value),
        Err(e) => (e.code.status(), e.body()),
    };
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    response
}

fn rand_id(app: &App) -> u128 {
    use rand::RngExt;
    lock(&app.rng).random()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let snapshot = app.snapshot();
    match serde_json::to_string(&snapshot) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn not_found() -> Response {
    let body = serde_json::json!({
        "__type": "UnknownOperationException",
        "message": "mskbench-sim Firehose serves POST / (AWS JSON 1.1) and GET /metrics"
    });
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

/// How often buffers are checked against their interval hints.
fn tick(app: &App) -> Duration {
    (app.config.buffering.interval / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Cuts due buffers and writes pending objects until told to stop, then
/// flushes everything.
async fn deliver_loop(app: Arc<App>, mut stopped: oneshot::Receiver<()>) -> Result<StopReport, FirehoseError> {
    let tick = tick(&app);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            () = app.wake_delivery.notified() => {}
            () = tokio::time::sleep(tick) => {}
        }
        for stream in app.all_streams() {
            // Errors are counted and kept; the object stays queued for the next round.
            let _ = deliver_stream(&app, &stream, false).await;
        }
        // Deleted streams are dropped once empty.
        lock(&app.retired).retain(|s| {
            let state = lock(&s.state);
            state.buffer.len() > 0 || !state.pending.is_empty()
        });
    }
    // Final flush: every stream closed to new records, then every buffer
    // written, a few attempts per object; a stream that fails does not
    // keep the others from being written.
    let mut written = StopReport { objects: 0, bytes: 0 };
    let mut failed = Vec::new();
    for stream in app.begin_stop() {
        let mut outcome = Ok(());
        for _ in 0..STOP_ATTEMPTS {
            let (r, result) = match deliver_stream(&app, &stream, true).await {
                Ok(r) => (r, Ok(())),
                Err((r, e)) => (r, Err(e)),
            };
            written.objects += r.objects;
            written.bytes += r.bytes;
            outcome = result;
            if outcome.is_ok() {
                break;
            }
        }
        if let Err(last_error) = outcome {
            let state = lock(&stream.state);
            failed.push(UndeliveredStream {
                stream: stream.name.clone(),
                objects: state.pending.len(),
                records: state.pending.iter().map(|o| o.records).sum(),
                last_error,
            });
        }
    }
    if failed.is_empty() {
        Ok(written)
    } else {
        failed.sort_by(|a, b| a.stream.cmp(&b.stream));
        Err(FirehoseError::Undelivered { dir: app.config.s3_dir.clone(), streams: failed, written })
    }
}

/// Cuts the stream's buffer if due (or `force`), then writes its pending
/// objects in order, stopping at the first failure (with what it wrote
/// before it).
async fn deliver_stream(app: &App, stream: &Stream, force: bool) -> Result<StopReport, (StopReport, String)> {
    {
        let mut state = lock(&stream.state);
        if force || state.buffer.due(stream.hints, std::time::Instant::now()) {
            let uuid = uuid::Uuid::from_u128(rand_id(app));
            // Firehose's random part is a UUID-like string; keep the
            // version bits of a v4 so it reads as one.
            let uuid = uuid::Builder::from_random_bytes(*uuid.as_bytes()).into_uuid();
            if let Some(object) = state.buffer.cut(&stream.object_name(), uuid) {
                state.pending.push_back(object);
            }
        }
    }
    let mut report = StopReport { objects: 0, bytes: 0 };
    loop {
        // Take the head out, write without the lock, put it back on failure.
        let Some(object) = lock(&stream.state).pending.pop_front() else {
            return Ok(report);
        };
        let root = app.config.s3_dir.clone();
        let (object, result) = tokio::task::spawn_blocking(move || {
            let result = delivery::write_object(&root, &object.key, &object.data);
            (object, result)
        })
        .await
        .map_err(|e| (report, format!("delivery write task failed: {e}")))?;
        let (now_unix, _) = unix_now();
        let mut state = lock(&stream.state);
        match result {
            Ok(_) => {
                let bytes = object.data.len() as u64;
                state
                    .metrics
                    .record(now_unix, Sample { delivered_objects: 1, delivered_bytes: bytes, ..Sample::default() });
                report.objects += 1;
                report.bytes += bytes;
            }
            Err(e) => {
                let message = format!("writing {} under {}: {e}", object.key, app.config.s3_dir.display());
                state.metrics.record(now_unix, Sample { delivery_errors: 1, ..Sample::default() });
                state.pending.push_front(object);
                drop(state);
                tracing::warn!("firehose delivery failed (will retry): {message}");
                let mut errors = lock(&app.delivery_errors);
                if errors.len() == KEPT_DELIVERY_ERRORS {
                    errors.remove(0);
                }
                errors.push(message.clone());
                return Err((report, message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// A `PutRecordBatch` whose headers are sent and whose body is held
    /// back: once `open` returns, the server is inside the handler, waiting
    /// for the body (it answered `100 Continue`).
    struct HeldPut {
        stream: TcpStream,
        body: Vec<u8>,
    }

    impl HeldPut {
        fn open(addr: SocketAddr, line: &str) -> HeldPut {
            let mut data = String::new();
            mskbench_core::b64::encode_append(format!("{line}\n").as_bytes(), &mut data);
            let body = serde_json::to_vec(&serde_json::json!({
                "DeliveryStreamName": "s",
                "Records": [{ "Data": data }]
            }))
            .unwrap();
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            write!(
                stream,
                "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: Firehose_20150804.PutRecordBatch\r\n\
                 Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\
                 Expect: 100-continue\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut status = String::new();
            reader.read_line(&mut status).unwrap();
            assert!(status.starts_with("HTTP/1.1 100"), "{status:?}");
            let mut blank = String::new();
            reader.read_line(&mut blank).unwrap();
            assert_eq!(blank, "\r\n");
            HeldPut { stream, body }
        }

        /// Sends the body; returns the status and the response body.
        fn finish(mut self) -> (u16, String) {
            self.stream.write_all(&self.body).unwrap();
            let mut response = String::new();
            self.stream.read_to_string(&mut response).unwrap();
            let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
            (status, body)
        }
    }

    async fn server(dir: &std::path::Path) -> FirehoseServer {
        let config = FirehoseConfig {
            s3_dir: dir.to_owned(),
            streams: vec!["s".into()],
            // Nothing is due before the stop: the final flush writes it all.
            buffering: Buffering { size_bytes: 1 << 20, interval: Duration::from_secs(900) },
            ..FirehoseConfig::default()
        };
        FirehoseServer::start(config).await.unwrap()
    }

    fn delivered(dir: &std::path::Path) -> Vec<String> {
        let mut lines = Vec::new();
        for object in list_objects(dir).unwrap() {
            lines.extend(std::fs::read_to_string(&object.path).unwrap().lines().map(str::to_owned));
        }
        lines
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_put_still_in_flight_after_the_stop_gets_an_error_not_a_record_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = server(dir.path()).await;
        // The held request outlasts the grace period whatever its length.
        server.grace = Duration::from_millis(50);
        let addr = server.addr();
        let (early, late) =
            tokio::task::spawn_blocking(move || (HeldPut::open(addr, "early"), HeldPut::open(addr, "late")))
                .await
                .unwrap();
        let (status, _) = tokio::task::spawn_blocking(move || early.finish()).await.unwrap();
        assert_eq!(status, 200);
        let report = server.shutdown().await.unwrap();
        assert_eq!(report.objects, 1);
        // The final flush is over; the held request reaches the handler now.
        let (status, body) = tokio::task::spawn_blocking(move || late.finish()).await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("ServiceUnavailableException"), "{body}");
        assert!(!body.contains("RecordId"), "{body}");
        assert_eq!(delivered(dir.path()), ["early"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_put_in_flight_when_the_stop_begins_finishes_and_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let server = server(dir.path()).await;
        let addr = server.addr();
        let held = tokio::task::spawn_blocking(move || HeldPut::open(addr, "in-flight")).await.unwrap();
        let stop = tokio::spawn(server.shutdown());
        let (status, body) = tokio::task::spawn_blocking(move || held.finish()).await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("RecordId"), "{body}");
        let report = stop.await.unwrap().unwrap();
        assert_eq!(report.objects, 1);
        assert_eq!(delivered(dir.path()), ["in-flight"]);
    }
}
