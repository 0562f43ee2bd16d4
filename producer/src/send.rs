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
//!
//! Cost over a bare rdkafka send loop: one `Box` per record for the
//! delivery metadata, two clock reads, and the record's encoding (see
//! BENCHMARKS.md for the measured ratio).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};

use crate::records::RecordEncoder;
use crate::schedule::{Profile, Schedule};
use crate::stats::{Histograms, Report, new_histogram, percentiles};

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
    pub fn stopping(&self) -> bool {
        self.0.state.load(Ordering::Relaxed) != Self::RUN
    }
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

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Until {
    pub count: Option<u64>,
    pub duration: Option<Duration>,
}

/// Settings of the send loop.
#[derive(Debug, Clone)]
pub struct SendOptions {
    pub topic: String,
    pub until: Until,
    pub warmup: Duration,
    /// A stats line this often on stderr; `None` for none.
    pub stats_interval: Option<Duration>,
    /// Where to write an HdrHistogram interval log (one interval a second).
    pub hlog: Option<PathBuf>,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
    /// How long the final flush may take before the rest is reported unaccounted.
    pub flush_timeout: Duration,
}

/// Metadata travelling with each record to its delivery report.
#[derive(Debug)]
pub struct Meta {
    intended: Instant,
    sent: Instant,
    measured: bool,
}

#[derive(Debug)]
struct AckState {
    hist: Histograms,
    interval: Histogram<u64>,
    acked: u64,
    failed: u64,
    reasons: BTreeMap<String, u64>,
    last_report: Option<Instant>,
}

/// The delivery callback's state: ack histograms and outcome counts.
#[derive(Debug)]
pub struct AckContext {
    state: Mutex<AckState>,
}

impl Default for AckContext {
    fn default() -> Self {
        AckContext {
            state: Mutex::new(AckState {
                hist: Histograms::default(),
                interval: new_histogram(),
                acked: 0,
                failed: 0,
                reasons: BTreeMap::new(),
                last_report: None,
            }),
        }
    }
}

impl AckContext {
    fn lock(&self) -> MutexGuard<'_, AckState> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// (acked, failed) so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.acked, s.failed)
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Meta>;

    fn delivery(&self, result: &DeliveryResult<'_>, meta: Box<Meta>) {
        let now = Instant::now();
        let mut s = self.lock();
        s.last_report = Some(now);
        match result {
            Ok(_) => {
                s.acked += 1;
                let from_intended = micros(now.saturating_duration_since(meta.intended));
                s.interval.saturating_record(from_intended);
                if meta.measured {
                    s.hist.ack_from_intended.saturating_record(from_intended);
                    s.hist.ack_from_sent.saturating_record(micros(now.saturating_duration_since(meta.sent)));
                }
            }
            Err((error, _)) => {
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
    #[error("cannot write the HdrHistogram log {path}: {detail}")]
    Hlog { path: PathBuf, detail: String },
    #[error("cannot build a record: {0}")]
    Record(#[from] crate::records::RecordError),
}

/// What the loop itself saw, before the flush.
#[derive(Debug)]
struct LoopOutcome {
    sent: u64,
    refused: BTreeMap<String, u64>,
    queue_full_waits: u64,
    send_delay: Histogram<u64>,
    warmup_records: u64,
    measured_records: u64,
    /// Seconds after the start: end of the window the target covers, and
    /// end of the window the sender actually took.
    target_end: f64,
    actual_end: f64,
    interrupted: bool,
    /// A record that could not be built ended the loop early.
    error: Option<crate::records::RecordError>,
}

/// Runs the schedule to its end (or a stop), flushes, and reports.
///
/// `producer` must have been created with an [`AckContext`]; `seed`,
/// `schema` and the topic only label the report.
pub fn run(
    producer: &ThreadedProducer<AckContext>,
    encoder: &mut RecordEncoder,
    profile: Profile,
    options: &SendOptions,
    control: &Control,
    seed: u64,
    schema: String,
) -> Result<Report, SendError> {
    let start = Instant::now();
    let wall_start = SystemTime::now();
    let _ = control.0.started.set((start, wall_start));
    let mut hlog_error = None;
    // The loop ends with the flush: every record handed over has its report.
    let mut outcome = send_loop(producer, encoder, &profile, options, control, start, wall_start, &mut hlog_error)?;

    let state = producer.context().lock();
    control.0.acked.store(state.acked, Ordering::Relaxed);
    let mut hist = Histograms { send_delay: outcome.send_delay.clone(), ..Histograms::default() };
    hist.merge(&state.hist);
    let mut reasons = state.reasons.clone();
    for (r, n) in &outcome.refused {
        *reasons.entry(r.clone()).or_insert(0) += n;
    }
    let failed = state.failed + outcome.refused.values().sum::<u64>();
    let measured_secs = (outcome.actual_end - options.warmup.as_secs_f64()).max(0.0);
    let target_secs = outcome.target_end - options.warmup.as_secs_f64();
    let rate_target = match profile {
        Profile::Max => 0.0,
        _ => profile.average_rate(options.warmup.as_secs_f64(), outcome.target_end),
    };
    let report = Report {
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
        seed,
        topic: options.topic.clone(),
        schema,
        interrupted: outcome.interrupted,
    };
    drop(state);
    if let Some(e) = outcome.error.take() {
        eprint!("{}", report.summary());
        return Err(SendError::Record(e));
    }
    if let Some(detail) = hlog_error {
        let path = options.hlog.clone().unwrap_or_default();
        return Err(SendError::Hlog { path, detail });
    }
    Ok(report)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[allow(clippy::too_many_arguments)]
fn send_loop(
    producer: &ThreadedProducer<AckContext>,
    encoder: &mut RecordEncoder,
    profile: &Profile,
    options: &SendOptions,
    control: &Control,
    start: Instant,
    wall_start: SystemTime,
    hlog_error: &mut Option<String>,
) -> Result<LoopOutcome, SendError> {
    let mut schedule = Schedule::new(profile.clone());
    let warmup = options.warmup.as_secs_f64();
    let limit_secs = options.until.duration.map(|d| d.as_secs_f64());
    let limit_count = options.until.count;

    let mut hlog_file = match &options.hlog {
        Some(path) => match File::create(path) {
            Ok(f) => Some(BufWriter::new(f)),
            Err(e) => return Err(SendError::Hlog { path: path.clone(), detail: e.to_string() }),
        },
        None => None,
    };
    let mut serializer = V2DeflateSerializer::new();
    let mut hlog = match hlog_file.as_mut() {
        Some(file) => Some(
            IntervalLogWriterBuilder::new()
                .add_comment("mskbench produce: values in microseconds (divide by 1000 for ms)")
                .add_comment("tags: ack = ack latency from intended send time; send_delay = actual - intended")
                .with_start_time(wall_start)
                .with_base_time(wall_start)
                .with_max_value_divisor(1000.0)
                .begin_log_with(file, &mut serializer)
                .map_err(|e| SendError::Hlog {
                    path: options.hlog.clone().unwrap_or_default(),
                    detail: e.to_string(),
                })?,
        ),
        None => None,
    };

    let bar = progress_bar(options);
    let mut send_delay = new_histogram();
    let mut interval_delay = new_histogram();
    let mut out = LoopOutcome {
        sent: 0,
        refused: BTreeMap::new(),
        queue_full_waits: 0,
        send_delay: new_histogram(),
        warmup_records: 0,
        measured_records: 0,
        target_end: 0.0,
        actual_end: 0.0,
        interrupted: false,
        error: None,
    };
    let mut next_tick = start + Duration::from_millis(100);
    let mut next_hlog = start + Duration::from_secs(1);
    let mut last_hlog = start;
    let mut next_stats = options.stats_interval.map(|i| start + i);
    let mut last_due = 0.0f64;
    let mut last_sent_at = 0.0f64;

    loop {
        if limit_count.is_some_and(|n| out.sent >= n) {
            // Count reached: the window the target covers ends where the
            // next record would have been due.
            let next = schedule.next_due().unwrap_or(last_sent_at);
            out.target_end = next;
            out.actual_end = next.max(last_sent_at + (next - last_due).max(0.0));
            break;
        }
        let due = schedule.next_due();
        if let (Some(t), Some(limit)) = (due, limit_secs)
            && t >= limit
        {
            out.target_end = limit;
            out.actual_end = limit.max(last_sent_at);
            break;
        }
        let intended = match due {
            Some(t) => start + Duration::from_secs_f64(t),
            None => Instant::now(),
        };
        if !wait_until(intended, control) || control.stopping() {
            let now = start.elapsed().as_secs_f64();
            out.interrupted = true;
            out.target_end = now;
            out.actual_end = now;
            break;
        }
        let now_wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let (key, value) = match encoder.next(now_wall) {
            Ok(record) => record,
            Err(e) => {
                // Stop sending, but still flush what was sent so it is accounted for.
                let now = start.elapsed().as_secs_f64();
                out.interrupted = true;
                out.target_end = now;
                out.actual_end = now;
                out.error = Some(e);
                break;
            }
        };
        let sent_at = Instant::now();
        let offset = sent_at.saturating_duration_since(start).as_secs_f64();
        if due.is_none() && limit_secs.is_some_and(|l| offset >= l) {
            out.target_end = offset;
            out.actual_end = offset;
            break;
        }
        let due_offset = due.unwrap_or(offset);
        let measured = due_offset >= warmup;
        let meta = Box::new(Meta { intended, sent: sent_at, measured });
        let mut record = BaseRecord::with_opaque_to(&options.topic, meta).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        let mut refused = None;
        let mut abandoned = false;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    out.queue_full_waits += 1;
                    if control.aborting() {
                        abandoned = true;
                        break;
                    }
                    record = back;
                    std::thread::sleep(Duration::from_micros(100));
                }
                Err((e, _)) => {
                    refused = Some(reason(&e));
                    break;
                }
            }
        }
        if abandoned {
            // Never handed over: not sent, so not counted.
            let now = start.elapsed().as_secs_f64();
            out.interrupted = true;
            out.target_end = now;
            out.actual_end = now;
            break;
        }
        out.sent += 1;
        if let Some(r) = refused {
            *out.refused.entry(r).or_insert(0) += 1;
        }
        let delay = micros(sent_at.saturating_duration_since(intended));
        interval_delay.saturating_record(delay);
        if measured {
            out.measured_records += 1;
            send_delay.saturating_record(delay);
        } else {
            out.warmup_records += 1;
        }
        last_due = due_offset;
        last_sent_at = offset;

        control.0.sent.store(out.sent, Ordering::Relaxed);
        if sent_at >= next_tick {
            next_tick = sent_at + Duration::from_millis(100);
            control.0.acked.store(producer.context().counts().0, Ordering::Relaxed);
            if let Some(bar) = &bar {
                match (limit_count, limit_secs) {
                    (Some(_), _) => bar.set_position(out.sent),
                    (None, Some(_)) => bar.set_position((offset * 10.0) as u64),
                    _ => {}
                }
            }
            if let Some(log) = hlog.as_mut()
                && sent_at >= next_hlog
                && hlog_error.is_none()
            {
                let ack_interval = {
                    let mut s = producer.context().lock();
                    let h = s.interval.clone();
                    s.interval.reset();
                    h
                };
                let from = last_hlog.saturating_duration_since(start);
                let length = sent_at.saturating_duration_since(last_hlog);
                for (tag, h) in [("ack", &ack_interval), ("send_delay", &interval_delay)] {
                    if let Err(e) = log.write_histogram(h, from, length, Tag::new(tag)) {
                        *hlog_error = Some(e.to_string());
                    }
                }
                interval_delay.reset();
                last_hlog = sent_at;
                next_hlog = sent_at + Duration::from_secs(1);
            }
            if let Some(at) = next_stats
                && sent_at >= at
            {
                next_stats = options.stats_interval.map(|i| sent_at + i);
                let line = stats_line(producer, &out, offset, &send_delay, warmup);
                match &bar {
                    Some(bar) => bar.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // Flushed before the log's last interval, so that it holds the last acks.
    flush(producer, options, control, &out);
    if let Some(log) = hlog.as_mut()
        && hlog_error.is_none()
    {
        let ack_interval = producer.context().lock().interval.clone();
        let now = Instant::now();
        let from = last_hlog.saturating_duration_since(start);
        let length = now.saturating_duration_since(last_hlog);
        for (tag, h) in [("ack", &ack_interval), ("send_delay", &interval_delay)] {
            if let Err(e) = log.write_histogram(h, from, length, Tag::new(tag)) {
                *hlog_error = Some(e.to_string());
            }
        }
    }
    drop(hlog);
    if let Some(mut file) = hlog_file
        && let Err(e) = std::io::Write::flush(&mut file)
    {
        *hlog_error = Some(e.to_string());
    }
    out.send_delay = send_delay;
    Ok(out)
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
        let refused: u64 = out.refused.values().sum();
        if acked + failed + refused >= out.sent || Instant::now() > settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn stats_line(
    producer: &ThreadedProducer<AckContext>,
    out: &LoopOutcome,
    offset: f64,
    send_delay: &Histogram<u64>,
    warmup: f64,
) -> String {
    let s = producer.context().lock();
    let rate = if offset > warmup { out.measured_records as f64 / (offset - warmup) } else { 0.0 };
    let ack = percentiles(&s.hist.ack_from_intended, 1000.0);
    let delay = percentiles(send_delay, 1000.0);
    format!(
        "{offset:7.1}s  sent {}  acked {}  failed {}  in flight {}  {rate:.1}/s  ack p99 {:.3} ms  send delay p99 {:.3} ms  queue-full waits {}",
        out.sent,
        s.acked,
        s.failed + out.refused.values().sum::<u64>(),
        producer.in_flight_count(),
        ack.p99,
        delay.p99,
        out.queue_full_waits
    )
}

fn progress_bar(options: &SendOptions) -> Option<ProgressBar> {
    if !options.progress {
        return None;
    }
    let (len, template) = match (options.until.count, options.until.duration) {
        (Some(n), _) => (n, "{elapsed_precise} [{bar:40}] {pos}/{len} records ({per_sec})"),
        (None, Some(d)) => ((d.as_secs_f64() * 10.0) as u64, "{elapsed_precise} [{bar:40}] {percent}% of the duration"),
        (None, None) => return None,
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
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
