//! The send loop: records leave on schedule through rdkafka, and every one
//! ends acked or failed with a reason.
//!
//! One thread runs the loop — wait for the record's intended time, build it
//! (timestamp = now), hand it to librdkafka — and records the send delay.
//! librdkafka's poll thread (a `ThreadedProducer`) runs the delivery
//! callback, [`AckContext`], which records ack latency from the intended and
//! from the actual send time and counts outcomes. Each side owns its
//! histograms; the report merges them.
//!
//! - Open loop: the intended time of record `i` comes from the
//!   [`Schedule`], never from when record `i − 1` left. Falling behind shows
//!   in the send delay and the achieved rate; nothing is skipped to catch up.
//! - Backpressure: librdkafka's `QueueFull` is waited on (100 µs naps) and
//!   counted in `queue_full_waits`; the record is retried, never dropped.
//! - Waiting: `thread::sleep` until ~200 µs before the due time, then
//!   spin-yield, so sub-millisecond send delays hold at high rates without
//!   burning a core at low ones.
//! - Stopping: [`Control::stop`] (first Ctrl-C) ends the schedule and
//!   flushes; [`Control::abort`] (second Ctrl-C) purges what librdkafka
//!   still holds, and those records fail with `PurgeQueue`/`PurgeInflight`.
//!   Either way the report adds up: sent = acked + failed (+ unaccounted,
//!   nonzero only if the flush deadline passed, and then it says so).
//! - Starting together: with [`SendOptions::start_at`] the schedule's time
//!   zero is that wall-clock instant, so a fleet of workers starts as one
//!   (`mskbench produce --start-at`); a worker that gets there late keeps
//!   the instant as its time zero (its first records are late, and its
//!   send delay shows by how much) and tells its observer.
//! - Watching: [`Control`] carries live counts (sent, acked, start time)
//!   for a progress bar or a sampler; an [`Observer`] gets a [`Stats`]
//!   snapshot every `stats_interval`. The loop prints nothing.
//!
//! Cost over a bare rdkafka send loop: one `Box` per record for the
//! delivery metadata (with room for the expected line's digest, 16 bytes,
//! filled only when records are kept), two clock reads, and the record's
//! encoding (see BENCHMARKS.md for the measured ratio, taken before the
//! digest's room was added).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use mskbench_kafka::{Auth, ConnectError};
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};

use crate::expected::{self, Digest};
use crate::fleet::{self, Clock, Ranges};
use crate::records::{RecordEncoder, RecordError};
use crate::schedule::{Due, Profile, Schedule};
use crate::stats::{Histograms, Report, new_histogram, percentiles};

/// How often the loop publishes its counts and looks at the clock for
/// the interval log and the stats snapshots.
const TICK: Duration = Duration::from_millis(100);

/// Run state shared with signal handlers — run, stop (flush), abort
/// (purge) — and live counts for whoever watches the run.
#[derive(Debug, Clone, Default)]
pub struct Control(Arc<ControlState>);

#[derive(Debug, Default)]
struct ControlState {
    state: AtomicU8,
    /// Records handed to librdkafka so far.
    sent: AtomicU64,
    /// Records the broker acknowledged so far (updated every 100 ms of sending, and at the end).
    acked: AtomicU64,
    /// When the schedule started (its time zero), once it has.
    started: OnceLock<(Instant, SystemTime)>,
}

impl Control {
    const RUN: u8 = 0;
    const STOP: u8 = 1;
    const ABORT: u8 = 2;

    /// A run that has not been stopped.
    pub fn new() -> Control {
        Control::default()
    }
    /// Ends the schedule; what was sent is flushed.
    pub fn stop(&self) {
        let _ = self.0.state.compare_exchange(Self::RUN, Self::STOP, Ordering::SeqCst, Ordering::SeqCst);
    }
    /// Stops and purges librdkafka's queues.
    pub fn abort(&self) {
        self.0.state.store(Self::ABORT, Ordering::SeqCst);
    }
    /// Ctrl-C: the first stops, the next aborts.
    pub fn escalate(&self) {
        if self.0.state.load(Ordering::SeqCst) == Self::RUN { self.stop() } else { self.abort() }
    }
    /// True once stopped or aborted.
    pub fn stopping(&self) -> bool {
        self.0.state.load(Ordering::Relaxed) != Self::RUN
    }
    /// True once aborted.
    pub fn aborting(&self) -> bool {
        self.0.state.load(Ordering::Relaxed) == Self::ABORT
    }
    /// When the schedule started — the time its rates are counted from —
    /// once it has (registering schemas and connecting come before).
    pub fn started(&self) -> Option<(Instant, SystemTime)> {
        self.0.started.get().copied()
    }
    /// Records handed to librdkafka so far.
    pub fn sent(&self) -> u64 {
        self.0.sent.load(Ordering::Relaxed)
    }
    /// Records acknowledged so far (at most 100 ms old while sending; exact once the run returned).
    pub fn acked(&self) -> u64 {
        self.0.acked.load(Ordering::Relaxed)
    }
}

/// When a run ends: after `count` records, after `duration` of schedule,
/// or at the first of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Until {
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Stop after this long, from the schedule's start.
    pub duration: Option<Duration>,
}

/// Settings of the send loop.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The topic written to.
    pub topic: String,
    /// When the loop ends.
    pub until: Until,
    /// Leading time excluded from rates and percentiles.
    pub warmup: Duration,
    /// A [`Stats`] snapshot to the observer this often; `None` for none.
    pub stats_interval: Option<Duration>,
    /// Where to write an HdrHistogram interval log (one interval a second).
    pub hlog: Option<PathBuf>,
    /// How long the final flush may take before the rest is reported unaccounted.
    pub flush_timeout: Duration,
    /// How long the loop waits, before its schedule starts, for a broker to
    /// describe the topic (connected, partitions and leaders known).
    pub connect_timeout: Duration,
    /// The generator's seed, for the report.
    pub seed: u64,
    /// The schema reference the values carry (Confluent id or Glue UUID), for the report.
    pub schema: String,
    /// The wall-clock instant the schedule starts at (a fleet's common
    /// start); `None` to start once connected.
    pub start_at: Option<SystemTime>,
}

/// A run in progress, as `mskbench produce` prints it every `--stats-interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Seconds since the schedule started.
    pub elapsed_secs: f64,
    /// Records handed to librdkafka.
    pub sent: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Records failed (reported or refused).
    pub failed: u64,
    /// Records librdkafka holds, not yet reported.
    pub in_flight: i32,
    /// The seconds the three figures below cover: since the last snapshot.
    pub interval_secs: f64,
    /// Records handed to librdkafka per second over the interval.
    pub rate: f64,
    /// p99 of the ack latency from the intended send time of the records
    /// acknowledged in the interval, milliseconds.
    pub ack_p99_ms: f64,
    /// p99 of the send delay of the records sent in the interval, milliseconds.
    pub send_delay_p99_ms: f64,
    /// Times the loop waited on a full librdkafka queue.
    pub queue_full_waits: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:7.1}s  sent {}  acked {}  failed {}  in flight {}  last {:.1}s: {:.1}/s  ack p99 {:.3} ms  send delay p99 {:.3} ms  queue-full waits {}",
            self.elapsed_secs,
            self.sent,
            self.acked,
            self.failed,
            self.in_flight,
            self.interval_secs,
            self.rate,
            self.ack_p99_ms,
            self.send_delay_p99_ms,
            self.queue_full_waits
        )
    }
}

/// Who watches a run from the send thread. Keep it quick: the loop waits.
pub trait Observer: Send + Sync {
    /// The snapshot of every `stats_interval`.
    fn stats(&self, stats: &Stats);

    /// The schedule began `by` after its [`SendOptions::start_at`] (more
    /// than [`LATE_START`]); its time zero stays the instant asked for.
    fn late_start(&self, by: Duration) {
        let _ = by;
    }
}

/// How late after [`SendOptions::start_at`] a start is told to the observer.
pub const LATE_START: Duration = Duration::from_millis(10);

/// An observer that ignores everything (runs without stats).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn stats(&self, _: &Stats) {}
}

/// Metadata travelling with each record to its delivery report.
#[derive(Debug)]
pub struct Meta {
    intended: Instant,
    sent: Instant,
    measured: bool,
    /// The digest of the line the record should become, when kept.
    expected: Option<Digest>,
}

/// One record the broker acknowledged, where its delivery report put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// The partition it was written to.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its Kafka timestamp (creation time), epoch milliseconds; −1 if none.
    pub created_ms: i64,
    /// The digest of the JSON line it should become ([`crate::expected`]).
    pub expected: Digest,
}

/// One record librdkafka reported failed, kept to recognise it should it
/// be in the topic after all (a timeout after the broker wrote it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// [`expected::payload`] of the value it carried.
    pub payload: Digest,
    /// Its timestamp, epoch milliseconds; −1 if none.
    pub created_ms: i64,
    /// The digest of the JSON line it should become.
    pub expected: Digest,
}

/// Every record of a run as its delivery report told it: the producer's
/// side of a run's accounting. 32 bytes a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Acknowledged records, in delivery-report order.
    pub acked: Vec<Acked>,
    /// Records reported failed.
    pub failed: Vec<Failed>,
}

#[derive(Debug)]
struct AckState {
    hist: Histograms,
    interval: Histogram<u64>,
    /// Ack latencies since the last [`Stats`] snapshot.
    since_stats: Histogram<u64>,
    acked: u64,
    failed: u64,
    reasons: BTreeMap<String, u64>,
    last_report: Option<Instant>,
    /// Each record's coordinates and expected digest, when kept.
    records: Option<Sent>,
    /// Per partition, the offsets acknowledged.
    ranges: Ranges,
}

/// The delivery callback's state: ack histograms and outcome counts.
#[derive(Debug)]
pub struct AckContext {
    state: Mutex<AckState>,
    /// MSK IAM tokens and the first refusal (`mskbench-kafka`).
    auth: Auth,
}

impl Default for AckContext {
    fn default() -> Self {
        AckContext {
            state: Mutex::new(AckState {
                hist: Histograms::default(),
                interval: new_histogram(),
                since_stats: new_histogram(),
                acked: 0,
                failed: 0,
                reasons: BTreeMap::new(),
                last_report: None,
                records: None,
                ranges: Ranges::default(),
            }),
            auth: Auth::default(),
        }
    }
}

impl AckContext {
    fn lock(&self) -> MutexGuard<'_, AckState> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A context that also keeps each record's coordinates and expected
    /// digest ([`Sent`], in the [`Report`]); the encoder must be built
    /// [`RecordEncoder::with_expected`].
    pub fn keeping_records() -> Self {
        let context = AckContext::default();
        context.lock().records = Some(Sent::default());
        context
    }

    /// The same context, handing librdkafka `auth`'s IAM tokens and
    /// recording its refusals there.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Whether it was built [`AckContext::keeping_records`].
    pub fn keeps_records(&self) -> bool {
        self.lock().records.is_some()
    }

    /// (acked, failed) so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.acked, s.failed)
    }

    /// The ack latencies recorded since the last call (for the interval log).
    fn take_interval(&self) -> Histogram<u64> {
        let mut s = self.lock();
        let h = s.interval.clone();
        s.interval.reset();
        h
    }
}

impl ClientContext for AckContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        self.auth.on_error("producer", &error, reason);
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.auth.oauth_token()
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Meta>;

    fn delivery(&self, result: &DeliveryResult<'_>, meta: Box<Meta>) {
        let now = Instant::now();
        let mut s = self.lock();
        s.last_report = Some(now);
        match result {
            Ok(m) => {
                if let (Some(records), Some(expected)) = (&mut s.records, meta.expected) {
                    let created_ms = m.timestamp().to_millis().unwrap_or(-1);
                    records.acked.push(Acked { partition: m.partition(), offset: m.offset(), created_ms, expected });
                }
                s.acked += 1;
                s.ranges.add(m.partition(), m.offset());
                let from_intended = micros(now.saturating_duration_since(meta.intended));
                s.interval.saturating_record(from_intended);
                s.since_stats.saturating_record(from_intended);
                if meta.measured {
                    s.hist.ack_from_intended.saturating_record(from_intended);
                    s.hist.ack_from_sent.saturating_record(micros(now.saturating_duration_since(meta.sent)));
                }
            }
            Err((error, m)) => {
                if let (Some(records), Some(expected)) = (&mut s.records, meta.expected) {
                    let created_ms = m.timestamp().to_millis().unwrap_or(-1);
                    let payload = expected::payload(m.payload().unwrap_or_default());
                    records.failed.push(Failed { payload, created_ms, expected });
                }
                s.failed += 1;
                *s.reasons.entry(reason(error)).or_insert(0) += 1;
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// A short name for why a record failed.
pub fn reason(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => error.to_string(),
    }
}

/// Why the send loop failed as a whole (records failing are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The interval log could not be created or written.
    #[error("cannot write the HdrHistogram log {path}: {detail}")]
    Hlog {
        /// The log's path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A record could not be built; the loop stopped there, flushed what it
    /// had sent and accounted for it in `report`.
    #[error("cannot build a record: {source}")]
    Record {
        /// Why the record could not be built.
        source: RecordError,
        /// The run up to that record.
        report: Box<Report>,
    },
    /// No broker described the topic within the connect timeout; nothing
    /// was sent, and the schedule never started.
    #[error(
        "no broker described the topic {topic:?} within {timeout:?}: {detail}; check the brokers' address, \
         that they speak Kafka with the security settings given (-X), and that the topic exists"
    )]
    Connect {
        /// The topic.
        topic: String,
        /// The connect timeout.
        timeout: Duration,
        /// librdkafka's last word.
        detail: String,
    },
    /// A broker refused the client's security settings (a wrong password,
    /// an untrusted certificate, an expired token, another protocol);
    /// nothing was sent.
    #[error("the broker refused the connection: {detail}")]
    Refused {
        /// What librdkafka said, in one line.
        detail: String,
    },
    /// The encoder digests expected lines and the delivery callback keeps
    /// records, or the other way round: one half of the oracle without the
    /// other would leave every record out of [`Report::records`] (or digest
    /// for nothing), so the loop refuses to start.
    #[error(
        "the encoder {} expected lines but the producer's context {} records: build both with \
         `RecordEncoder::with_expected` and `AckContext::keeping_records`, or neither",
        if *.encoder_digests { "digests" } else { "does not digest" },
        if *.encoder_digests { "does not keep" } else { "keeps" }
    )]
    OracleHalves {
        /// Whether the encoder was built [`RecordEncoder::with_expected`].
        encoder_digests: bool,
    },
}

/// What the loop itself saw, before the flush.
#[derive(Debug)]
struct LoopOutcome {
    sent: u64,
    refused: BTreeMap<String, u64>,
    queue_full_waits: u64,
    send_delay: Histogram<u64>,
    /// Send delays since the last [`Stats`] snapshot, warm-up included.
    delay_since_stats: Histogram<u64>,
    /// When the last snapshot was taken (seconds after the start) and how
    /// many records had been sent by then.
    stats_mark: (f64, u64),
    warmup_records: u64,
    measured_records: u64,
    /// Seconds after the start: end of the window the target covers, and
    /// end of the window the sender actually took.
    target_end: f64,
    actual_end: f64,
    interrupted: bool,
    /// A record that could not be built ended the loop early.
    error: Option<RecordError>,
}

impl LoopOutcome {
    fn new() -> LoopOutcome {
        LoopOutcome {
            sent: 0,
            refused: BTreeMap::new(),
            queue_full_waits: 0,
            send_delay: new_histogram(),
            delay_since_stats: new_histogram(),
            stats_mark: (0.0, 0),
            warmup_records: 0,
            measured_records: 0,
            target_end: 0.0,
            actual_end: 0.0,
            interrupted: false,
            error: None,
        }
    }

    /// The loop ends as planned: the target covers `target` seconds, the sender took `actual`.
    fn end(&mut self, target: f64, actual: f64) {
        self.target_end = target;
        self.actual_end = actual;
    }

    /// The loop ends early, `now` seconds after the start.
    fn interrupt(&mut self, now: f64) {
        self.interrupted = true;
        self.end(now, now);
    }

    /// One more record handed over, `delay` µs after its intended time.
    fn count_sent(&mut self, delay: u64, measured: bool) {
        self.sent += 1;
        self.delay_since_stats.saturating_record(delay);
        if measured {
            self.measured_records += 1;
            self.send_delay.saturating_record(delay);
        } else {
            self.warmup_records += 1;
        }
    }

    /// Records librdkafka refused at once.
    fn failed(&self) -> u64 {
        self.refused.values().sum()
    }
}

/// Runs the schedule to its end (or a stop), flushes, and reports.
///
/// `producer` must have been created with an [`AckContext`]. Stats
/// snapshots go to `observer`.
pub fn run(
    producer: &ThreadedProducer<AckContext>,
    encoder: &mut RecordEncoder,
    profile: Profile,
    options: &SendOptions,
    control: &Control,
    observer: &dyn Observer,
) -> Result<Report, SendError> {
    let encoder_digests = encoder.digests_expected();
    if encoder_digests != producer.context().keeps_records() {
        return Err(SendError::OracleHalves { encoder_digests });
    }
    // Connected and the partitions' leaders known before the first intended
    // send time, as OpenMessaging Benchmark waits for its producers: the
    // connecting would otherwise land in the first records' ack latency.
    let auth = &producer.context().auth;
    auth.prime(producer.client());
    // The threaded producer polls its own queue: no pump.
    let wait = mskbench_kafka::wait_for_metadata(
        producer.client(),
        Some(&options.topic),
        options.connect_timeout,
        auth,
        || {},
    );
    wait.map_err(|e| match e {
        ConnectError::Refused(detail) => SendError::Refused { detail },
        ConnectError::Timeout { last, .. } => {
            SendError::Connect { topic: options.topic.clone(), timeout: options.connect_timeout, detail: last }
        }
    })?;
    let (start, wall_start, late) = begin(options.start_at, control);
    if late >= LATE_START {
        observer.late_start(late);
    }
    let _ = control.0.started.set((start, wall_start));
    let hlog_path = || options.hlog.clone().unwrap_or_default();
    let mut file = match &options.hlog {
        Some(path) => Some(
            File::create(path)
                .map(BufWriter::new)
                .map_err(|e| SendError::Hlog { path: path.clone(), detail: e.to_string() })?,
        ),
        None => None,
    };
    let mut serializer = V2DeflateSerializer::new();
    let mut hlog = match file.as_mut() {
        Some(file) => Some(
            IntervalLog::begin(file, &mut serializer, start, wall_start)
                .map_err(|detail| SendError::Hlog { path: hlog_path(), detail })?,
        ),
        None => None,
    };
    let mut outcome = send_loop(producer, encoder, &profile, options, control, observer, start, hlog.as_mut());
    // Flushed before the log's last interval, so that it holds the last acks.
    flush(producer, options, control, &outcome);
    let mut hlog_error = hlog.and_then(|log| log.finish(producer.context()));
    if let Some(mut file) = file
        && let Err(e) = std::io::Write::flush(&mut file)
    {
        hlog_error.get_or_insert(e.to_string());
    }

    let begun = Begun { start, wall: wall_start, late };
    let report = report(producer.context(), &outcome, &profile, options, control, begun);
    if let Some(source) = outcome.error.take() {
        return Err(SendError::Record { source, report: Box::new(report) });
    }
    if let Some(detail) = hlog_error {
        return Err(SendError::Hlog { path: hlog_path(), detail });
    }
    Ok(report)
}

/// The schedule's time zero (monotonic and wall clock) and how late it
/// began against `start_at`: now, or `start_at` after waiting for it
/// (the wait ends early on a stop). A `start_at` already past is still
/// time zero, so the records due since then are sent late, not skipped.
fn begin(start_at: Option<SystemTime>, control: &Control) -> (Instant, SystemTime, Duration) {
    let Some(at) = start_at else { return (Instant::now(), SystemTime::now(), Duration::ZERO) };
    loop {
        let (now, wall) = (Instant::now(), SystemTime::now());
        match at.duration_since(wall) {
            Ok(left) if !left.is_zero() && !control.stopping() => {
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
            Ok(_) => return (now, at, Duration::ZERO),
            Err(past) => {
                let late = past.duration();
                return match now.checked_sub(late) {
                    Some(zero) => (zero, at, late),
                    // Later than the monotonic clock reaches back: start now.
                    None => (now, wall, late),
                };
            }
        }
    }
}

/// When a run's schedule began.
#[derive(Debug, Clone, Copy)]
struct Begun {
    /// Time zero on the monotonic clock.
    start: Instant,
    /// The same instant on the wall clock.
    wall: SystemTime,
    /// How late after `start_at` the schedule began.
    late: Duration,
}

/// The report of a flushed run: the loop's counts and the delivery callback's.
fn report(
    acks: &AckContext,
    outcome: &LoopOutcome,
    profile: &Profile,
    options: &SendOptions,
    control: &Control,
    begun: Begun,
) -> Report {
    let start = begun.start;
    let mut state = acks.lock();
    control.0.acked.store(state.acked, Ordering::Relaxed);
    let mut hist = Histograms { send_delay: outcome.send_delay.clone(), ..Histograms::default() };
    hist.merge(&state.hist);
    let mut reasons = state.reasons.clone();
    for (r, n) in &outcome.refused {
        *reasons.entry(r.clone()).or_insert(0) += n;
    }
    let failed = state.failed + outcome.failed();
    let warmup = options.warmup.as_secs_f64();
    // At `max` the loop only enqueues: records leave as fast as librdkafka
    // takes them, so the rate is what was delivered, up to the last ack.
    let end = match profile {
        Profile::Max => state
            .last_report
            .map_or(outcome.actual_end, |t| t.saturating_duration_since(start).as_secs_f64())
            .max(outcome.actual_end),
        Profile::Segments { .. } => outcome.actual_end,
    };
    let measured_secs = (end - warmup).max(0.0);
    let target_secs = outcome.target_end - warmup;
    let rate_target = match profile {
        Profile::Max => 0.0,
        _ => profile.average_rate(warmup, outcome.target_end),
    };
    let at = |secs: f64| fleet::unix_ms(begun.wall) + secs * 1000.0;
    let wall_now = SystemTime::now();
    let monotonic = start.elapsed().as_secs_f64() * 1000.0;
    let clock = Clock {
        start_unix_ms: round3(fleet::unix_ms(begun.wall)),
        start_at_unix_ms: options.start_at.map(fleet::unix_ms).map(round3),
        late_start_ms: round3(begun.late.as_secs_f64() * 1000.0),
        measured_start_unix_ms: round3(at(warmup)),
        measured_end_unix_ms: round3(at(warmup + measured_secs)),
        wall_drift_ms: round3(fleet::unix_ms(wall_now) - fleet::unix_ms(begun.wall) - monotonic),
    };
    let window = |secs: f64| Duration::try_from_secs_f64(secs).unwrap_or_default();
    // Writing into memory cannot fail but for a bug in the serializer;
    // then the log is empty and `mskbench merge` refuses this report.
    let histograms = fleet::histogram_log(
        begun.wall,
        window(warmup),
        window(measured_secs),
        &[
            (fleet::TAGS[0], &hist.ack_from_intended),
            (fleet::TAGS[1], &hist.ack_from_sent),
            (fleet::TAGS[2], &hist.send_delay),
        ],
    )
    .unwrap_or_default();
    Report {
        sent: outcome.sent,
        acked: state.acked,
        failed,
        rate_target: if target_secs > 0.0 { round3(rate_target) } else { 0.0 },
        rate_achieved: if measured_secs > 0.0 { round3(outcome.measured_records as f64 / measured_secs) } else { 0.0 },
        ack_latency_ms: percentiles(&hist.ack_from_intended, 1000.0),
        send_delay_ms: percentiles(&hist.send_delay, 1000.0),
        ack_latency_from_send_ms: percentiles(&hist.ack_from_sent, 1000.0),
        failed_by_reason: reasons,
        queue_full_waits: outcome.queue_full_waits,
        unaccounted: outcome.sent.saturating_sub(state.acked + failed),
        warmup_records: outcome.warmup_records,
        measured_records: outcome.measured_records,
        measured_secs: round3(measured_secs),
        elapsed_secs: round3(
            state.last_report.unwrap_or_else(Instant::now).saturating_duration_since(start).as_secs_f64(),
        ),
        seed: options.seed,
        topic: options.topic.clone(),
        schema: options.schema.clone(),
        interrupted: outcome.interrupted,
        worker: fleet::WorkerInfo { index: Some(0), workers: 1, run_seed: options.seed },
        clock,
        partitions: state.ranges.to_vec(),
        histograms,
        // Taken, not cloned; a producer used again keeps recording afresh.
        records: state.records.as_mut().map(std::mem::take).map(Arc::new),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The HdrHistogram interval log of a run: every second, the ack latencies
/// (from the intended time) and the send delays of that second.
struct IntervalLog<'a, 'b> {
    writer: IntervalLogWriter<'a, 'b, BufWriter<File>, V2DeflateSerializer>,
    start: Instant,
    /// Send delays since the last interval.
    delay: Histogram<u64>,
    last: Instant,
    next: Instant,
    /// The first write error; nothing more is written after it.
    error: Option<String>,
}

impl<'a, 'b> IntervalLog<'a, 'b> {
    fn begin(
        file: &'a mut BufWriter<File>,
        serializer: &'b mut V2DeflateSerializer,
        start: Instant,
        wall_start: SystemTime,
    ) -> Result<IntervalLog<'a, 'b>, String> {
        let writer = IntervalLogWriterBuilder::new()
            .add_comment("mskbench produce: values in microseconds (divide by 1000 for ms)")
            .add_comment("tags: ack = ack latency from intended send time; send_delay = actual - intended")
            .with_start_time(wall_start)
            .with_base_time(wall_start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(file, serializer)
            .map_err(|e| e.to_string())?;
        Ok(IntervalLog {
            writer,
            start,
            delay: new_histogram(),
            last: start,
            next: start + Duration::from_secs(1),
            error: None,
        })
    }

    /// Writes the interval ending `now` when a second has passed.
    fn tick(&mut self, now: Instant, acks: &AckContext) {
        if now >= self.next && self.error.is_none() {
            self.write(now, &acks.take_interval());
            self.delay.reset();
            self.last = now;
            self.next = now + Duration::from_secs(1);
        }
    }

    fn write(&mut self, now: Instant, acks: &Histogram<u64>) {
        let from = self.last.saturating_duration_since(self.start);
        let length = now.saturating_duration_since(self.last);
        for (tag, h) in [("ack", acks), ("send_delay", &self.delay)] {
            if let Err(e) = self.writer.write_histogram(h, from, length, Tag::new(tag)) {
                self.error.get_or_insert(e.to_string());
            }
        }
    }

    /// Writes the last interval (after the flush); the first error, if any.
    fn finish(mut self, acks: &AckContext) -> Option<String> {
        if self.error.is_none() {
            let interval = acks.lock().interval.clone();
            self.write(Instant::now(), &interval);
        }
        self.error
    }
}

/// What became of one record handed to librdkafka.
enum HandOver {
    /// Queued for sending.
    Queued,
    /// Refused at once, with librdkafka's reason: sent, and failed.
    Refused(String),
    /// Never handed over (an abort while the queue was full): not sent.
    Abandoned,
}

/// Hands `record` to librdkafka, waiting while its queue is full.
fn hand_over(
    producer: &ThreadedProducer<AckContext>,
    mut record: BaseRecord<'_, [u8], [u8], Box<Meta>>,
    control: &Control,
    queue_full_waits: &mut u64,
) -> HandOver {
    loop {
        match producer.send(record) {
            Ok(()) => return HandOver::Queued,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                *queue_full_waits += 1;
                if control.aborting() {
                    return HandOver::Abandoned;
                }
                record = back;
                std::thread::sleep(Duration::from_micros(100));
            }
            Err((e, _)) => return HandOver::Refused(reason(&e)),
        }
    }
}

/// The schedule, record by record, until its end or a stop; not flushed.
#[allow(clippy::too_many_arguments)]
fn send_loop(
    producer: &ThreadedProducer<AckContext>,
    encoder: &mut RecordEncoder,
    profile: &Profile,
    options: &SendOptions,
    control: &Control,
    observer: &dyn Observer,
    start: Instant,
    mut hlog: Option<&mut IntervalLog<'_, '_>>,
) -> LoopOutcome {
    let mut schedule = Schedule::new(profile.clone());
    let warmup = options.warmup.as_secs_f64();
    let limit_secs = options.until.duration.map(|d| d.as_secs_f64());
    let mut out = LoopOutcome::new();
    let mut periodic = Periodic::new(start, options);
    let (mut last_due, mut last_sent_at) = (0.0f64, 0.0f64);
    loop {
        if options.until.count.is_some_and(|n| out.sent >= n) {
            // Count reached: the window the target covers ends where the
            // next record would have been due (or, when none ever is, a
            // profile that fell to 0, where the last one was sent).
            let next = schedule.next_due().at().unwrap_or(last_sent_at);
            out.end(next, next.max(last_sent_at + (next - last_due).max(0.0)));
            break;
        }
        let due = schedule.next_due();
        if let (Some(t), Some(limit)) = (due.at(), limit_secs)
            && t >= limit
        {
            out.end(limit, limit.max(last_sent_at));
            break;
        }
        let intended = match due {
            Due::Now => Some(Instant::now()),
            Due::At(t) => Duration::try_from_secs_f64(t).ok().and_then(|d| start.checked_add(d)),
            Due::Never => None,
        };
        // No record is ever due again (a profile that fell to 0;
        // `ProduceConfig::validate` refuses a count it cannot reach), or
        // not within what an `Instant` can hold.
        let Some(intended) = intended else {
            out.end(last_due.max(last_sent_at), last_sent_at);
            break;
        };
        if !wait_until(intended, control) || control.stopping() {
            out.interrupt(start.elapsed().as_secs_f64());
            break;
        }
        let (key, value, expected) = match encoder.next_expected(now_ms()) {
            Ok(record) => record,
            Err(e) => {
                // Stop sending, but still flush what was sent so it is accounted for.
                out.interrupt(start.elapsed().as_secs_f64());
                out.error = Some(e);
                break;
            }
        };
        let sent_at = Instant::now();
        let offset = sent_at.saturating_duration_since(start).as_secs_f64();
        if due == Due::Now && limit_secs.is_some_and(|l| offset >= l) {
            out.end(offset, offset);
            break;
        }
        let due_offset = due.at().unwrap_or(offset);
        let measured = due_offset >= warmup;
        let meta = Box::new(Meta { intended, sent: sent_at, measured, expected });
        let mut record = BaseRecord::with_opaque_to(&options.topic, meta).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        match hand_over(producer, record, control, &mut out.queue_full_waits) {
            HandOver::Queued => {}
            HandOver::Refused(r) => *out.refused.entry(r).or_insert(0) += 1,
            HandOver::Abandoned => {
                out.interrupt(start.elapsed().as_secs_f64());
                break;
            }
        }
        let delay = micros(sent_at.saturating_duration_since(intended));
        out.count_sent(delay, measured);
        if let Some(log) = hlog.as_deref_mut() {
            log.delay.saturating_record(delay);
        }
        (last_due, last_sent_at) = (due_offset, offset);

        control.0.sent.store(out.sent, Ordering::Relaxed);
        if periodic.due(sent_at) {
            control.0.acked.store(producer.context().counts().0, Ordering::Relaxed);
            if let Some(log) = hlog.as_deref_mut() {
                log.tick(sent_at, producer.context());
            }
            if periodic.stats_due(sent_at) {
                observer.stats(&stats(producer, &mut out, offset));
            }
        }
    }
    out
}

/// When the loop does its periodic work: every [`TICK`] of sending it
/// publishes the acked count and lets the interval log cut a second;
/// every `stats_interval` it hands the observer a snapshot.
struct Periodic {
    next_tick: Instant,
    stats_interval: Option<Duration>,
    next_stats: Option<Instant>,
}

impl Periodic {
    fn new(start: Instant, options: &SendOptions) -> Periodic {
        Periodic {
            next_tick: start + TICK,
            stats_interval: options.stats_interval,
            next_stats: options.stats_interval.map(|i| start + i),
        }
    }

    /// True at most once a [`TICK`].
    fn due(&mut self, now: Instant) -> bool {
        let due = now >= self.next_tick;
        if due {
            self.next_tick = now + TICK;
        }
        due
    }

    /// True at most once a `stats_interval`; never without one.
    fn stats_due(&mut self, now: Instant) -> bool {
        let due = self.next_stats.is_some_and(|at| now >= at);
        if due {
            self.next_stats = self.stats_interval.map(|i| now + i);
        }
        due
    }
}

/// The wall clock in milliseconds since the epoch: a record's timestamp.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Waits until every record handed to librdkafka has its delivery report
/// (purging on abort), or the flush timeout passes.
fn flush(producer: &ThreadedProducer<AckContext>, options: &SendOptions, control: &Control, out: &LoopOutcome) {
    let deadline = Instant::now() + options.flush_timeout;
    let mut purged = false;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        if control.aborting() && !purged {
            producer.purge(PurgeConfig::default().queue().inflight());
            purged = true;
        }
        let _ = producer.flush(Duration::from_millis(100));
        control.0.acked.store(producer.context().counts().0, Ordering::Relaxed);
    }
    // The delivery callback of the last record may still be running on
    // librdkafka's thread after in_flight_count drops: give it a moment.
    let settle = Instant::now() + Duration::from_secs(2);
    loop {
        let (acked, failed) = producer.context().counts();
        if acked + failed + out.failed() >= out.sent || Instant::now() > settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The snapshot `offset` seconds into the run: counts so far, and rate and
/// percentiles over the interval since the last one (cumulative figures
/// would hide a recent stall behind a good start).
fn stats(producer: &ThreadedProducer<AckContext>, out: &mut LoopOutcome, offset: f64) -> Stats {
    let mut s = producer.context().lock();
    let (since, sent_then) = out.stats_mark;
    let interval_secs = offset - since;
    let stats = Stats {
        elapsed_secs: offset,
        sent: out.sent,
        acked: s.acked,
        failed: s.failed + out.failed(),
        in_flight: producer.in_flight_count(),
        interval_secs,
        rate: if interval_secs > 0.0 { (out.sent - sent_then) as f64 / interval_secs } else { 0.0 },
        ack_p99_ms: percentiles(&s.since_stats, 1000.0).p99,
        send_delay_p99_ms: percentiles(&out.delay_since_stats, 1000.0).p99,
        queue_full_waits: out.queue_full_waits,
    };
    s.since_stats.reset();
    out.delay_since_stats.reset();
    out.stats_mark = (offset, out.sent);
    stats
}

/// Sleeps, then spins, until `deadline`; false when a stop came first.
fn wait_until(deadline: Instant, control: &Control) -> bool {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        let left = deadline - now;
        if left > Duration::from_micros(300) {
            if control.stopping() {
                return false;
            }
            std::thread::sleep((left - Duration::from_micros(200)).min(Duration::from_millis(50)));
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_line_reads_as_before() {
        let s = Stats {
            elapsed_secs: 2.5,
            sent: 100,
            acked: 90,
            failed: 1,
            in_flight: 9,
            interval_secs: 1.0,
            rate: 40.0,
            ack_p99_ms: 1.25,
            send_delay_p99_ms: 0.5,
            queue_full_waits: 3,
        };
        assert_eq!(
            s.to_string(),
            "    2.5s  sent 100  acked 90  failed 1  in flight 9  last 1.0s: 40.0/s  ack p99 1.250 ms  send delay p99 0.500 ms  queue-full waits 3"
        );
    }

    /// Options for tests: topic `t`, no count or duration, nothing periodic, no waits.
    fn test_options() -> SendOptions {
        SendOptions {
            topic: "t".into(),
            until: Until::default(),
            warmup: Duration::ZERO,
            stats_interval: None,
            hlog: None,
            flush_timeout: Duration::ZERO,
            connect_timeout: Duration::ZERO,
            seed: 0,
            schema: String::new(),
            start_at: None,
        }
    }

    #[test]
    fn one_half_of_the_oracle_without_the_other_is_refused_before_sending() {
        use crate::clickevent::ClickEvents;
        use crate::records::{Framing, Generator, KeyFraming};

        let options = SendOptions { until: Until { count: Some(1), ..Until::default() }, ..test_options() };
        // No broker is asked: the check comes before the first record.
        let mut client = rdkafka::ClientConfig::new();
        client.set("bootstrap.servers", "127.0.0.1:9");
        let encoder = || {
            RecordEncoder::new(
                Generator::Click(ClickEvents::new(1, 1)),
                Framing::Confluent { id: 1 },
                KeyFraming::Plain,
            )
        };
        for (keeping, digesting) in [(true, false), (false, true)] {
            let context = if keeping { AckContext::keeping_records() } else { AckContext::default() };
            let producer: ThreadedProducer<AckContext> = client.create_with_context(context).unwrap();
            let mut encoder = if digesting { encoder().with_expected() } else { encoder() };
            let e = run(&producer, &mut encoder, Profile::Max, &options, &Control::new(), &Unobserved).unwrap_err();
            assert!(matches!(e, SendError::OracleHalves { encoder_digests } if encoder_digests == digesting), "{e}");
            assert!(e.to_string().contains("or neither"), "{e}");
            assert_eq!(producer.context().counts(), (0, 0), "nothing was sent");
        }
    }

    #[test]
    fn a_broker_that_never_answers_is_an_error_before_the_schedule_starts() {
        use crate::clickevent::ClickEvents;
        use crate::records::{Framing, Generator, KeyFraming};

        // Accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let brokers = listener.local_addr().unwrap().to_string();
        let options = SendOptions {
            until: Until { count: Some(10), ..Until::default() },
            connect_timeout: Duration::from_millis(500),
            ..test_options()
        };
        let producer: ThreadedProducer<AckContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create_with_context(AckContext::default())
            .unwrap();
        let mut encoder = RecordEncoder::new(
            Generator::Click(ClickEvents::new(1, 1)),
            Framing::Confluent { id: 1 },
            KeyFraming::Plain,
        );
        let control = Control::new();
        let e = run(&producer, &mut encoder, Profile::Max, &options, &control, &Unobserved).unwrap_err();
        assert!(matches!(e, SendError::Connect { .. }), "{e}");
        assert!(e.to_string().contains("no broker described the topic \"t\""), "{e}");
        assert!(control.started().is_none(), "the schedule never started");
        assert_eq!(producer.context().counts(), (0, 0));
        drop(listener);
    }

    fn idle_producer() -> ThreadedProducer<AckContext> {
        // Never asked to send: no connection is made.
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create_with_context(AckContext::default())
            .unwrap()
    }

    #[test]
    fn the_stats_line_covers_the_last_interval_not_the_whole_run() {
        let producer = idle_producer();
        let mut out = LoopOutcome::new();
        for _ in 0..100 {
            out.count_sent(1_000, true); // 1 ms late
        }
        let first = stats(&producer, &mut out, 1.0);
        assert_eq!((first.interval_secs, first.rate), (1.0, 100.0));
        assert!((first.send_delay_p99_ms - 1.0).abs() < 0.01, "{first:?}");
        for _ in 0..50 {
            out.count_sent(20, true); // then on time
        }
        let second = stats(&producer, &mut out, 1.5);
        assert_eq!((second.sent, second.interval_secs, second.rate), (150, 0.5, 100.0));
        assert!(second.send_delay_p99_ms < 0.05, "the late start is not in this interval: {second:?}");
    }

    #[test]
    fn the_rate_at_max_runs_to_the_last_ack_not_the_last_enqueue() {
        let acks = AckContext::default();
        let start = Instant::now();
        acks.lock().last_report = Some(start + Duration::from_secs(2));
        let mut out = LoopOutcome::new();
        for _ in 0..1_000 {
            out.count_sent(0, true);
        }
        out.end(0.25, 0.25); // enqueued in a quarter of a second
        let options = test_options();
        let begun = Begun { start, wall: SystemTime::now(), late: Duration::ZERO };
        let max = report(&acks, &out, &Profile::Max, &options, &Control::new(), begun);
        assert_eq!((max.rate_achieved, max.measured_secs), (500.0, 2.0), "not 4,000/s of enqueueing");
        let paced = report(&acks, &out, &Profile::constant(4_000.0), &options, &Control::new(), begun);
        assert_eq!(paced.rate_achieved, 4_000.0, "a held rate is the schedule's");
    }

    #[test]
    fn periodic_work_keeps_its_own_pace() {
        let start = Instant::now();
        let options = SendOptions { stats_interval: Some(Duration::from_secs(1)), ..test_options() };
        let mut p = Periodic::new(start, &options);
        assert!(!p.due(start + Duration::from_millis(50)));
        assert!(p.due(start + Duration::from_millis(100)));
        assert!(!p.due(start + Duration::from_millis(150)), "the next tick is 100 ms after this one");
        assert!(!p.stats_due(start + Duration::from_millis(900)));
        assert!(p.stats_due(start + Duration::from_millis(1000)));
        assert!(!p.stats_due(start + Duration::from_millis(1500)));
        let quiet = SendOptions { stats_interval: None, ..options };
        assert!(!Periodic::new(start, &quiet).stats_due(start + Duration::from_secs(3600)));
    }

    #[test]
    fn control_escalates_from_stop_to_abort() {
        let c = Control::new();
        assert!(!c.stopping());
        c.escalate();
        assert!(c.stopping() && !c.aborting());
        c.escalate();
        assert!(c.aborting());
        c.stop();
        assert!(c.aborting(), "a stop after an abort does not undo it");
    }
}
