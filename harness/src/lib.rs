//! `mskbench-harness`: a scenario run as a library.
//!
//! A run is a straight line, and each step is a function a reader can find:
//!
//! ```text
//! Scenario ──► Plan ──► start ──► settle ──► produce ──► drain ──► flush ──► read back ──► assemble ──► RunResult
//! (file)      plan.rs   parts.rs  mapping.rs  (sampler.rs, every second)      accounting.rs  assemble.rs
//!                       configure.rs: the processor's Config and the producer's ProduceConfig, as values
//! ```
//!
//! 1. **start** ([`parts`], also what `mskbench produce` starts its
//!    embedded parts with): the broker (tansu in-process, or a broker
//!    list), the schema registry (built in, a URL, or Glue) and the Firehose
//!    endpoint (built in with the scenario's quota, or a URL); the topic is
//!    created and its current ends noted — the run's records start there.
//!    Then the processor: the Lambda handler behind a local event source
//!    mapping, one poller per partition, dead letters into the run folder.
//! 2. **settle**: every poller holds its partitions before a record flows.
//! 3. **produce**: the phases, as one open-loop profile, sampled every
//!    second; an SLO marked `abort = true` that fails on the run so far
//!    stops the load there ([`abort`]), and the steps below go on.
//! 4. **drain**: until every acknowledged record, by distinct (partition,
//!    offset), has been settled by a succeeded invocation (or the
//!    scenario's `drain` passes, and the warning says which records still
//!    wait); the mapping stops.
//! 5. **flush**: the built-in Firehose endpoint writes what it buffers; an
//!    endpoint of its own is waited for.
//! 6. **read back** ([`accounting`]): from the producer's delivery reports
//!    (each record's coordinates and expected line), the topic as a
//!    cross-check, every dead letter and every delivered object; each
//!    record's outcome counted from the output.
//! 7. **assemble** ([`assemble`]): latency, the per-second series,
//!    settings and SLOs into a [`RunResult`].
//!
//! The library prints nothing: stages, samples and warnings go to an
//! [`Observer`] (the CLI draws its progress bar and prints warnings from
//! them), and [`Interrupts`] is how the caller says Ctrl-C — the first stops
//! producing (the run still drains and accounts), the second skips the drain.

#![warn(missing_docs)]

mod abort;
mod accounting;
mod assemble;
mod configure;
mod delivered;
pub mod distributed;
mod faults;
mod mapping;
pub mod parts;
pub mod plan;
mod sampler;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use mskbench_producer::send::{Sent, Unobserved};
use mskbench_producer::{Control, Report};
use mskbench_reports::{Aborted, FaultRecord, RunResult, Sample};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use mskbench_processor::LiveSnapshot;
pub use plan::{AwsEnv, Plan};
pub use sampler::{READ_BACK, Snapshot, Stage};

use crate::accounting::Ledger;
use crate::configure::produce_config;
use crate::mapping::{Mapping, Pending, Stopped};
use crate::parts::{Parts, Started};

/// Who watches a run: told of every stage, every second's sample and every
/// warning as they happen. Called from the run's tasks; keep it quick.
pub trait Observer: Send + Sync {
    /// The run entered `stage` (a load phase, the drain, the read-back).
    fn stage(&self, stage: &Stage);
    /// The second that ended `snapshot.t` seconds after the start: its
    /// sample, the counts so far and the latency histograms.
    fn sample(&self, snapshot: &Snapshot);
    /// Something the user should know; the run goes on.
    fn warn(&self, message: &str);
}

/// Ctrl-C, as the caller counts it: once stops producing, twice skips the drain.
#[derive(Debug, Clone, Default)]
pub struct Interrupts(Arc<AtomicU8>);

impl Interrupts {
    /// Counts one interrupt.
    pub fn interrupt(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Interrupts so far.
    pub fn count(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs `plan`: every step, then every part stopped however the run ended.
///
/// # Errors
/// A part that would not start, a read-back that failed, or an output that
/// could not be written; what was started is stopped first.
pub async fn run(plan: &Plan, observer: Arc<dyn Observer>, interrupts: Interrupts) -> Result<RunResult> {
    let mut parts = Parts::default();
    let result = steps(plan, &observer, &interrupts, &mut parts).await;
    for problem in parts.stop().await {
        observer.warn(&problem);
    }
    result
}

async fn steps(
    plan: &Plan,
    observer: &Arc<dyn Observer>,
    interrupts: &Interrupts,
    parts: &mut Parts,
) -> Result<RunResult> {
    let started = parts::start(plan, parts).await?;
    let mapping = Arc::new(Mapping::start(plan, &started).await?);
    if !mapping.settle(plan.partitions()).await {
        observer.warn("the consumer group did not settle in 30 s; expect redelivered batches");
    }
    let live = mapping.live.clone();
    let mut produced = produce(plan, &started, &mapping, parts.targets.clone(), observer, interrupts).await?;
    let clock = produced.clock;
    // Taken, not cloned: the read-back drops it once its ledger is built.
    let sent = produced.report.records.take().context("the producer kept no record of what it sent")?;
    let pending = Pending::new(sent.acked.iter().map(|a| (a.partition, a.offset)));
    let drain_from_s = clock.start.elapsed().as_secs_f64();
    let (stopped, series, faults) =
        drain(plan, &mapping, produced.sampling, pending, clock, observer, interrupts).await?;
    let server_totals = flush(plan, parts, &started, &live, clock, observer, interrupts).await?;
    observer.stage(&Stage { name: READ_BACK.into(), starts_at: clock.elapsed_secs(), ends_at: 0 });
    let (ledger, read) = read_back(&started, &plan.scenario.kafka.topic, sent).await?;
    let inputs = assemble::Inputs {
        plan,
        report: &produced.report,
        control: &produced.control,
        clock,
        series,
        live: &live,
        ledger: &ledger,
        read,
        stopped: &stopped,
        server_totals,
        interrupted: interrupts.count() > 0,
        aborted: produced.aborted.get().cloned(),
        drain_from_s,
        faults,
        aws_credentials: started.aws.source.to_string(),
    };
    assemble::assemble(inputs, observer.as_ref())
}

/// When the load started, by both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub start: Instant,
    pub wall: SystemTime,
}

impl Clock {
    fn elapsed_secs(&self) -> u64 {
        self.start.elapsed().as_secs()
    }
}

/// The sampler, running from the start of the load to the end of the drain.
struct Sampling {
    stage: watch::Sender<Stage>,
    done: watch::Sender<bool>,
    task: JoinHandle<Vec<Sample>>,
    phases: JoinHandle<()>,
    /// The `[[faults]]` schedule, on the producer's clock.
    faults: JoinHandle<Result<Vec<FaultRecord>>>,
}

/// What producing left behind.
struct Produced {
    report: Report,
    control: Control,
    clock: Clock,
    sampling: Sampling,
    /// The SLO (`abort = true`) that stopped the load, once one has.
    aborted: Arc<OnceLock<Aborted>>,
}

/// Step 3: the phases, as one open-loop profile, with the sampler running.
async fn produce(
    plan: &Plan,
    started: &Started,
    mapping: &Arc<Mapping>,
    targets: faults::Targets,
    observer: &Arc<dyn Observer>,
    interrupts: &Interrupts,
) -> Result<Produced> {
    let config = produce_config(plan, started)?;
    let control = Control::new();
    let watcher = {
        let (control, interrupts) = (control.clone(), interrupts.clone());
        tokio::spawn(async move {
            while interrupts.count() == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            control.stop();
        })
    };
    let clock = Clock { start: Instant::now(), wall: SystemTime::now() };
    let (stage, stage_rx) = watch::channel(Stage {
        name: "connecting and registering the schema".into(),
        starts_at: 0,
        ends_at: plan.load_duration().as_secs(),
    });
    let (done, done_rx) = watch::channel(false);
    let aborted = Arc::new(OnceLock::new());
    let aborts = abort::Watch::new(
        &plan.scenario.slo,
        control.clone(),
        mapping.live.clone(),
        plan.load_duration(),
        aborted.clone(),
    );
    let task = tokio::spawn(sampler::run(
        clock.start,
        control.clone(),
        mapping.live.clone(),
        stage_rx,
        done_rx,
        observer.clone(),
        aborts,
    ));
    let phases =
        tokio::spawn(announce_phases(plan.clone(), control.clone(), clock.start, stage.clone(), mapping.live.clone()));
    let faults = tokio::spawn(schedule_faults(
        plan.scenario.faults.clone(),
        control.clone(),
        clock.start,
        targets,
        mapping.clone(),
    ));
    let report = mskbench_producer::produce(&config, control.clone(), Arc::new(Unobserved)).await;
    watcher.abort();
    let report = report?;
    if interrupts.count() > 0 {
        observer.warn(&format!(
            "interrupted: {} of about {} planned records produced; draining (Ctrl-C again to skip)",
            report.acked,
            plan.scenario.planned_records()
        ));
    }
    Ok(Produced { report, control, clock, sampling: Sampling { stage, done, task, phases, faults }, aborted })
}

/// Runs the fault schedule from the moment the producer's schedule starts
/// (the scenario's fault times count from there), its records' times on
/// the series' clock.
async fn schedule_faults(
    faults: Vec<mskbench_scenarios::Fault>,
    control: Control,
    series_start: Instant,
    targets: faults::Targets,
    mapping: Arc<Mapping>,
) -> Result<Vec<FaultRecord>> {
    if faults.is_empty() {
        return Ok(Vec::new());
    }
    let (start, offset) = producing_started(&control, series_start).await;
    faults::run(faults, start, offset, targets, mapping).await
}

/// When the producer's schedule started, and how long after the start of
/// the series' clock (`series_start`, [`Clock::start`]).
async fn producing_started(control: &Control, series_start: Instant) -> (Instant, Duration) {
    loop {
        if let Some((start, _)) = control.started() {
            return (start, start.saturating_duration_since(series_start));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Moves the stage along the phases, from the moment the producer's
/// schedule starts, and switches latency recording on for measured ones.
async fn announce_phases(
    plan: Plan,
    control: Control,
    series_start: Instant,
    stage: watch::Sender<Stage>,
    live: Arc<mskbench_processor::Live>,
) {
    let (start, offset) = producing_started(&control, series_start).await;
    let total = plan.load_duration();
    let mut at = Duration::ZERO;
    for p in &plan.scenario.phases {
        tokio::time::sleep_until((start + at).into()).await;
        let starts_at = (offset + at).as_secs();
        at += p.duration;
        live.measuring.store(p.measure, Ordering::Relaxed);
        let _ = stage.send(Stage { name: p.name.clone(), starts_at, ends_at: (offset + total).as_secs() });
    }
}

/// Step 4: until every acknowledged record is settled (`pending` empty)
/// and the fault schedule is over, then the mapping stops and the sampler
/// takes its last sample.
async fn drain(
    plan: &Plan,
    mapping: &Mapping,
    sampling: Sampling,
    mut pending: Pending,
    clock: Clock,
    observer: &Arc<dyn Observer>,
    interrupts: &Interrupts,
) -> Result<(Stopped, Vec<Sample>, Vec<FaultRecord>)> {
    sampling.phases.abort();
    let drain = plan.scenario.drain;
    let ends = Instant::now() + drain;
    let since_start = clock.elapsed_secs();
    let _ = sampling.stage.send(Stage {
        name: "drain".into(),
        starts_at: since_start,
        ends_at: since_start + drain.as_secs(),
    });
    mapping.live.measuring.store(false, Ordering::Relaxed);
    let acked = pending.left();
    let mut settled = Vec::new();
    loop {
        mapping.live.take_completed(&mut settled);
        for (partition, offset) in settled.drain(..) {
            pending.complete(partition, offset);
        }
        let settled_all = pending.left() == 0 && sampling.faults.is_finished();
        if settled_all || Instant::now() >= ends || interrupts.count() >= 2 {
            break;
        }
        if mapping.has_failed() {
            // Nothing more will finish; the error is reported below.
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if pending.left() > 0 {
        observer.warn(&format!(
            "drain ended with {} of {acked} acknowledged records still waiting ({}); \
             those not found in the output will show as unaccounted",
            pending.left(),
            pending.describe(),
        ));
    }
    if !sampling.faults.is_finished() {
        observer.warn("the drain ended before the fault schedule did; its open windows are left out of the result");
        sampling.faults.abort();
    }
    let faults = sampling.faults.await;
    let stopped = mapping.stop().await?;
    let _ = sampling.done.send(true);
    let series = sampling.task.await?;
    if let Some(e) = &stopped.error {
        observer.warn(&format!("the event source mapping stopped with an error: {e}"));
    }
    let faults = match faults {
        Ok(records) => records.context("injecting a fault")?,
        // Aborted above: the records of the windows it ended are lost with it.
        Err(_) => Vec::new(),
    };
    Ok((stopped, series, faults))
}

/// Step 5: Firehose writes what it buffers. Returns the built-in endpoint's
/// own counts of the stream, to compare with the processor's.
async fn flush(
    plan: &Plan,
    parts: &mut Parts,
    started: &Started,
    live: &mskbench_processor::Live,
    clock: Clock,
    observer: &Arc<dyn Observer>,
    interrupts: &Interrupts,
) -> Result<Option<mskbench_sim::firehose::Sample>> {
    let fh = &plan.scenario.firehose;
    if let Some(f) = parts.firehose.take() {
        let totals = f.metrics().streams.get(&fh.stream).map(|s| s.totals);
        f.shutdown().await.context("flushing the Firehose buffers")?;
        return Ok(totals);
    }
    if let Some(bucket) = &started.bucket {
        let expected = live.accepted.load(Ordering::Relaxed);
        fetch_from_bucket(plan, bucket, &started.s3_dir, expected, clock, observer.as_ref(), interrupts).await?;
        return Ok(None);
    }
    // An endpoint of its own writes its buffers when its interval says:
    // wait for every accepted record's line, within the buffering interval
    // plus the drain.
    let expected = live.accepted.load(Ordering::Relaxed);
    let deadline = Instant::now() + fh.buffer_interval + plan.scenario.drain;
    let dir = started.s3_dir.clone();
    let found = tokio::task::spawn_blocking(move || accounting::wait_for_lines(&dir, expected, deadline)).await??;
    if found < expected {
        observer.warn(&format!("{found} of {expected} accepted records were delivered in time"));
    }
    Ok(None)
}

/// Step 5 for a stream delivering to S3: until every accepted record's line
/// is in the run folder's copy of the bucket, or the stream's buffering
/// interval plus the scenario's drain has passed since the drain ended (a
/// second Ctrl-C stops waiting). Objects are copied as they appear, so a
/// stream that delivers early ends the wait early; a progress line every
/// 15 s says what is awaited.
async fn fetch_from_bucket(
    plan: &Plan,
    bucket: &Arc<delivered::Bucket>,
    dir: &std::path::Path,
    expected: u64,
    clock: Clock,
    observer: &dyn Observer,
    interrupts: &Interrupts,
) -> Result<()> {
    let fh = &plan.scenario.firehose;
    let wait = bucket.interval + plan.scenario.drain;
    let deadline = Instant::now() + wait;
    let ends_at = clock.elapsed_secs() + wait.as_secs();
    let (mut seen, mut lines, mut objects) = (std::collections::HashSet::new(), 0u64, 0u64);
    let mut next_line = Instant::now();
    loop {
        let fetched = bucket.fetch_new(dir, &mut seen).await?;
        (lines, objects) = (lines + fetched.lines, objects + fetched.objects);
        let now = Instant::now();
        if lines >= expected || now >= deadline || interrupts.count() >= 2 {
            break;
        }
        if now >= next_line {
            let left = deadline.saturating_duration_since(now).as_secs();
            observer.stage(&Stage {
                name: format!(
                    "waiting for stream {} to deliver to {} (buffering interval {} s, from DescribeDeliveryStream;                      {lines} of {expected} lines in {objects} objects; at most {left} s more)",
                    fh.stream,
                    bucket.url(),
                    bucket.interval.as_secs(),
                ),
                starts_at: clock.elapsed_secs(),
                ends_at,
            });
            next_line = now + Duration::from_secs(15);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if lines < expected {
        observer.warn(&format!(
            "{lines} of {expected} accepted records were in {} within {} s (the stream's buffering interval plus the \
             drain); the rest will show as unaccounted",
            bucket.url(),
            wait.as_secs()
        ));
    }
    if bucket.before() > 0 {
        observer.warn(&format!(
            "{} object(s) under {} were there before the run and were not read back",
            bucket.before(),
            bucket.url()
        ));
    }
    Ok(())
}

/// Step 6: what the producer sent, checked against the topic, then the
/// dead letters and the delivered objects, into one ledger. Dead letters
/// go first, so that a delivered line goes to a record that was not
/// dead-lettered when its content allows.
async fn read_back(started: &Started, topic: &str, sent: Arc<Sent>) -> Result<(Ledger, u64)> {
    let (b, t, s3, dl) =
        (started.kafka.clone(), topic.to_owned(), started.s3_dir.clone(), started.dead_letter_dir.clone());
    let starts = started.start_offsets.clone();
    let on_failure = started.on_failure_dir.clone();
    tokio::task::spawn_blocking(move || -> Result<(Ledger, u64)> {
        let mut ledger = Ledger::from_sent(&sent);
        drop(sent);
        let read = accounting::read_back_topic(&b, &t, &starts, &mut ledger)?;
        accounting::read_back_dead_letters(&dl, &mut ledger)?;
        accounting::read_back_on_failure(&on_failure, &mut ledger)?;
        accounting::read_back_objects(&s3, &mut ledger)?;
        Ok((ledger, read))
    })
    .await?
}
