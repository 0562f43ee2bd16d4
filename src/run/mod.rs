//! `mskbench run SCENARIO.toml`: the whole pipeline, measured, every record found.
//!
//! One process runs what the scenario names, each over its real protocol
//! on loopback: the Kafka broker (tansu in-process, or a broker list), the
//! schema registry (built in, a URL, or Glue), the Firehose endpoint (built
//! in with the scenario's quota, or a URL), the producer (phases become one
//! open-loop rate profile) and the processor (the Lambda handler behind a
//! local event source mapping, one poller per partition, dead letters to the
//! run folder). The run then:
//!
//! 1. produces through the phases, sampling every second ([`sampler`]);
//! 2. drains: waits until the processor has finished every produced record
//!    (or `drain` passes), stops it, and has Firehose write its buffers;
//! 3. reads everything back ([`accounting`]) — the topic, the delivered
//!    objects and the dead letters — and counts each record's outcome;
//! 4. writes `result.json`, `report.md`, `report.html`, `latency.hlog`,
//!    `produce.hlog` and `processor.log` into the run folder, evaluates the
//!    SLOs and exits 0 (all hold), 1 (one failed) or 2 (usage or fatal).
//!
//! [`parts`] starts the parts and configures producer and processor;
//! [`sampler`] and [`accounting`] measure during and after the run.
//!
//! Only phases with `measure = true` enter the latency distributions; the
//! accounting covers every record. Ctrl-C stops producing (the run still
//! drains and accounts); a second one skips the drain.

mod accounting;
mod parts;
mod sampler;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use mskbench_processor::esm::{self, EsmConfig};
use mskbench_processor::{Handler, Live};
use mskbench_producer::Control;
use mskbench_producer::stats::percentiles;
use mskbench_reports::model::QuotaLines;
use mskbench_reports::{RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, Totals};
use mskbench_scenarios::Scenario;
use tokio::sync::watch;

use crate::report::write_reports;
use accounting::{Ledger, ms_histogram};
use parts::{Parts, Started, commit_start, measured_window, processor_config, produce_config};
use sampler::Stage;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The scenario file (see scenarios/*.toml).
    scenario: PathBuf,
    /// Run folder for result.json and the reports (default: reports/runs/<time>-<name>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Check the scenario and print the plan without running it.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar (phase changes are still printed).
    #[arg(long)]
    no_progress: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    if args.dry_run {
        print!("{scenario}");
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.out.clone().unwrap_or_else(|| default_run_dir(&scenario.name));
    // Objects or dead letters of another run would be read back as this one's.
    if fs::read_dir(&out).is_ok_and(|mut entries| entries.next().is_some()) {
        anyhow::bail!("the run folder {} is not empty: choose another --out or remove it", out.display());
    }
    fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    let log = fs::File::create(out.join("processor.log")).context("creating processor.log")?;
    mskbench_processor::logging::init_to(std::sync::Mutex::new(log));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()).max(2))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(execute(&scenario, &args.scenario, &out, !args.no_progress))?;
    runtime.shutdown_timeout(Duration::from_secs(2));

    let text = serde_json::to_string_pretty(&result)? + "\n";
    fs::write(out.join("result.json"), text).context("writing result.json")?;
    let md = write_reports(&result, &out)?;
    print!("{md}");
    eprintln!("mskbench run: results in {}", out.display());
    let failed: Vec<&str> = result.slo.iter().filter(|s| !s.ok).map(|s| s.expr.as_str()).collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("mskbench run: SLO failed: {}", failed.join(", "));
        Ok(ExitCode::from(1))
    }
}

/// `reports/runs/<UTC time>-<name>`.
fn default_run_dir(name: &str) -> PathBuf {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
        .replace(':', "")
        .trim_end_matches('Z')
        .to_owned();
    PathBuf::from("reports").join("runs").join(format!("{stamp}-{name}"))
}

async fn execute(scenario: &Scenario, file: &Path, out: &Path, progress: bool) -> Result<RunResult> {
    let started_at = SystemTime::now();
    let mut parts = Parts::default();
    let result = execute_with(scenario, file, out, progress, &mut parts, started_at).await;
    // Stop whatever was started, whether or not the run got through.
    if let Some(f) = parts.firehose.take() {
        let _ = f.shutdown().await;
    }
    parts.stop().await;
    result
}

async fn execute_with(
    scenario: &Scenario,
    file: &Path,
    out: &Path,
    progress: bool,
    parts: &mut Parts,
    started_at: SystemTime,
) -> Result<RunResult> {
    let Started { brokers, start_offsets, registry_url, firehose_url, s3_dir, dead_letter_dir } =
        parts::start(scenario, out, parts).await?;
    let topic = scenario.kafka.topic.clone();
    let partitions = scenario.producer.partitions.0 as i32;
    let quota = scenario.firehose.quota.parsed();

    // The processor, configured as the Lambda function is.
    let live = Arc::new(Live::default());
    let handler = {
        let config = processor_config(scenario, registry_url.as_deref(), &firehose_url, &dead_letter_dir)?;
        let mut h = Handler::new(config)?;
        h.set_live(live.clone());
        Arc::new(h)
    };
    let group = format!(
        "mskbench-run-{}-{}",
        scenario.name,
        started_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
    );
    if start_offsets.values().any(|&o| o > 0) {
        // A topic with older records: the mapping starts where this run does.
        let (b, t, g, s) = (brokers.clone(), topic.clone(), group.clone(), start_offsets.clone());
        tokio::task::spawn_blocking(move || commit_start(&b, &t, &g, &s)).await??;
    }
    let mut esm_config = EsmConfig::new(&brokers, &topic, &group);
    esm_config.batch_size = scenario.processor.batch_size.0 as usize;
    esm_config.batch_window = scenario.processor.batch_window;
    esm_config.pollers = partitions as usize;
    let assigned = esm_config.assigned.clone();
    let stop_esm = Arc::new(AtomicBool::new(false));
    let esm_thread = {
        let (handler, stop, runtime) = (handler.clone(), stop_esm.clone(), tokio::runtime::Handle::current());
        std::thread::Builder::new()
            .name("esm".into())
            .spawn(move || esm::run(&esm_config, handler, runtime, stop))
            .context("starting the event source mapping")?
    };

    // Produce only once every poller holds its partitions: a rebalance
    // after records flow redelivers uncommitted batches (duplicates).
    let settle_by = Instant::now() + Duration::from_secs(30);
    while assigned.load(Ordering::SeqCst) < partitions as usize && Instant::now() < settle_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if assigned.load(Ordering::SeqCst) < partitions as usize {
        eprintln!("mskbench run: warning: the consumer group did not settle in 30 s; expect redelivered batches");
    }

    // The producer.
    let (warmup, measured_end) = measured_window(scenario);
    let produce_config = produce_config(scenario, file, &brokers, registry_url.as_deref(), out, warmup)?;
    let control = Control::new();
    let interrupts = Arc::new(AtomicU8::new(0));
    {
        let (control, interrupts) = (control.clone(), interrupts.clone());
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                interrupts.fetch_add(1, Ordering::SeqCst);
                control.stop();
            }
        });
    }
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let (stage_tx, stage_rx) = watch::channel(Stage {
        name: "connecting and registering the schema".into(),
        starts_at: 0,
        ends_at: scenario.total_duration().as_secs(),
    });
    let (done_tx, done_rx) = watch::channel(false);
    let sampler = tokio::spawn(sampler::run(start, control.clone(), live.clone(), stage_rx, done_rx, progress));
    let phases = tokio::spawn(announce_phases(scenario.clone(), control.clone(), stage_tx.clone(), live.clone()));
    let report = mskbench_producer::produce(&produce_config, control.clone()).await?;
    phases.abort();
    let produced_secs = start.elapsed().as_secs();
    if interrupts.load(Ordering::SeqCst) > 0 {
        eprintln!(
            "mskbench run: interrupted: {} of about {} planned records produced; draining (Ctrl-C again to skip)",
            report.acked,
            scenario.planned_records()
        );
    }

    // Drain: until the processor finished every produced record.
    let drain_ends = Instant::now() + scenario.drain;
    let _ = stage_tx.send(Stage {
        name: "drain".into(),
        starts_at: produced_secs,
        ends_at: produced_secs + scenario.drain.as_secs(),
    });
    live.measuring.store(false, Ordering::Relaxed);
    let mut drained = false;
    while Instant::now() < drain_ends && interrupts.load(Ordering::SeqCst) < 2 {
        if live.completed.load(Ordering::Relaxed) >= report.acked {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !drained {
        eprintln!(
            "mskbench run: drain ended with {} of {} records finished; the rest will show as unaccounted",
            live.completed.load(Ordering::Relaxed),
            report.acked
        );
    }
    stop_esm.store(true, Ordering::SeqCst);
    let esm_stats = tokio::task::spawn_blocking(move || esm_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the event source mapping panicked"))?;
    let esm_error = esm_stats.as_ref().err().map(ToString::to_string);
    let _ = done_tx.send(true);
    let mut series = sampler.await?;

    // Firehose writes what it still buffers.
    let mut server_totals = None;
    if let Some(f) = parts.firehose.take() {
        let metrics = f.metrics();
        server_totals = metrics.streams.get(&scenario.firehose.stream).map(|s| s.totals);
        f.shutdown().await.context("flushing the Firehose buffers")?;
    } else {
        // An endpoint of its own writes its buffers when its interval says:
        // wait for every accepted record's line, within the buffering
        // interval plus what is left of the drain.
        let expected = live.accepted.load(Ordering::Relaxed);
        let patience = scenario.firehose.buffer_interval + drain_ends.saturating_duration_since(Instant::now());
        let dir = s3_dir.clone();
        let found =
            tokio::task::spawn_blocking(move || accounting::wait_for_lines(&dir, expected, Instant::now() + patience))
                .await??;
        if found < expected {
            eprintln!("mskbench run: warning: {found} of {expected} accepted records were delivered in time");
        }
    }

    // Read everything back.
    eprintln!("mskbench run: reading back the topic, the delivered objects and the dead letters");
    let (ledger, read) = {
        let (b, t, h, s3, dl) = (brokers.clone(), topic.clone(), handler.clone(), s3_dir.clone(), dead_letter_dir);
        tokio::task::spawn_blocking(move || -> Result<(Ledger, u64)> {
            let mut ledger = Ledger::default();
            let read = accounting::read_back_topic(&b, &t, &start_offsets, &h, &mut ledger)?;
            accounting::read_back_objects(&s3, &mut ledger)?;
            accounting::read_back_dead_letters(&dl, &mut ledger)?;
            Ok((ledger, read))
        })
        .await??
    };
    let tally = ledger.tally(report.acked);
    if tally.unmatched > 0 || tally.unknown_dead_letters > 0 {
        eprintln!(
            "mskbench run: warning: {} delivered line(s) and {} dead letter(s) match no record of this run",
            tally.unmatched, tally.unknown_dead_letters
        );
    }
    if read < report.acked {
        eprintln!(
            "mskbench run: warning: the broker acknowledged {} records but only {read} were read back",
            report.acked
        );
    }
    let counted = live.snapshot();
    if let Some(server) = server_totals
        && (server.throttled_records != counted.throttled_records || server.throttled_calls != counted.throttled_calls)
    {
        eprintln!(
            "mskbench run: warning: Firehose counted {} throttled records and {} throttled calls, the processor {} and {}",
            server.throttled_records, server.throttled_calls, counted.throttled_records, counted.throttled_calls
        );
    }
    if let Some(e) = &esm_error {
        eprintln!("mskbench run: the event source mapping stopped with an error: {e}");
    }

    // Latency.
    let start_ms = epoch_ms(start_wall);
    // The measured phases, on the producer's schedule (which starts after connecting).
    let schedule_ms = control.started().map_or(start_ms, |(_, wall)| epoch_ms(wall));
    let window = (schedule_ms + (warmup * 1000.0) as i64, schedule_ms + (measured_end * 1000.0) as i64);
    let mut e2e = ms_histogram();
    let mut per_second: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    for &(delivered_ms, latency, created_ms) in ledger.deliveries() {
        let latency = latency.max(1) as u64;
        if (window.0..window.1).contains(&created_ms) {
            e2e.saturating_record(latency);
        }
        let second = (delivered_ms - start_ms).max(0) as u64 / 1000;
        per_second.entry(second).or_insert_with(ms_histogram).saturating_record(latency);
    }
    for (&second, h) in &per_second {
        while series.len() as u64 <= second {
            series.push(Sample { t: series.len() as u64, ..Sample::default() });
        }
        series[second as usize].e2e_ms = Some(percentiles(h, 1.0));
    }
    let put = live.call_latency_us();
    let mut latency_ms = BTreeMap::new();
    latency_ms.insert("produce_ack".to_owned(), report.ack_latency_ms);
    if !put.is_empty() {
        latency_ms.insert("put_record_batch".to_owned(), percentiles(&put, 1000.0));
    }
    if !e2e.is_empty() {
        latency_ms.insert("e2e".to_owned(), percentiles(&e2e, 1.0));
    }
    write_hlog(&out.join("latency.hlog"), start_wall, &per_second, &e2e, &put)?;

    let mut settings = serde_json::to_value(scenario)?;
    if let Some(map) = settings.as_object_mut() {
        map.insert("esm".into(), serde_json::to_value(esm_stats.as_ref().ok())?);
        map.insert("esm_error".into(), serde_json::to_value(&esm_error)?);
        map.insert("producer".into(), serde_json::to_value(&report)?);
        map.insert("unmatched_lines".into(), tally.unmatched.into());
        map.insert("unknown_dead_letters".into(), tally.unknown_dead_letters.into());
        map.insert("failed_invocations".into(), counted.failed_invocations.into());
        map.insert("interrupted".into(), (interrupts.load(Ordering::SeqCst) > 0).into());
    }
    let mut result = RunResult {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: file.display().to_string(),
            seed: scenario.seed,
            started_at: humantime::format_rfc3339_seconds(start_wall).to_string(),
            duration_s: measured_end - warmup,
            quota: Some(QuotaLines {
                records_per_sec: quota.records_per_sec as f64,
                requests_per_sec: quota.requests_per_sec as f64,
                bytes_per_sec: quota.bytes_per_sec as f64,
            }),
            settings,
        },
        totals: Totals {
            produced: tally.produced,
            delivered: tally.delivered,
            dead_lettered: tally.dead_lettered,
            unaccounted: tally.unaccounted,
            duplicates: tally.duplicates,
            throttled_records: counted.throttled_records,
            throttled_calls: counted.throttled_calls,
            retries: counted.resent_records,
        },
        latency_ms,
        series,
        slo: Vec::new(),
    };
    result.slo = scenario.slos().iter().map(|s| s.evaluate(&result)).collect();
    Ok(result)
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Moves the stage along the phases, from the moment the producer's
/// schedule starts, and switches latency recording on for measured ones.
async fn announce_phases(scenario: Scenario, control: Control, stage: watch::Sender<Stage>, live: Arc<Live>) {
    let run_start = Instant::now();
    let start = loop {
        if let Some((start, _)) = control.started() {
            break start;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let offset = start.saturating_duration_since(run_start);
    let mut at = Duration::ZERO;
    for p in &scenario.phases {
        tokio::time::sleep_until((start + at).into()).await;
        let starts_at = (offset + at).as_secs();
        at += p.duration;
        live.measuring.store(p.measure, Ordering::Relaxed);
        let ends_at = (offset + scenario.total_duration()).as_secs();
        let _ = stage.send(Stage { name: p.name.clone(), starts_at, ends_at });
    }
}

/// `latency.hlog`: the end-to-end latency of each second's deliveries
/// (tag `e2e`, ms), then the measured totals (tags `e2e_total`, ms, and
/// `put_record_batch`, µs).
fn write_hlog(
    path: &Path,
    start: SystemTime,
    per_second: &BTreeMap<u64, Histogram<u64>>,
    e2e: &Histogram<u64>,
    put_us: &Histogram<u64>,
) -> Result<()> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let mut file =
        std::io::BufWriter::new(fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("mskbench run: e2e values in ms (one interval a second), put_record_batch in µs")
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(&mut file, &mut serializer)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    let fail = |e: hdrhistogram::serialization::interval_log::IntervalLogWriterError<_>| {
        anyhow::anyhow!("writing {}: {e:?}", path.display())
    };
    for (&second, h) in per_second {
        log.write_histogram(h, Duration::from_secs(second), Duration::from_secs(1), Tag::new("e2e")).map_err(fail)?;
    }
    let whole = Duration::from_secs(per_second.keys().last().map_or(1, |s| s + 1));
    log.write_histogram(e2e, Duration::ZERO, whole, Tag::new("e2e_total")).map_err(fail)?;
    log.write_histogram(put_us, Duration::ZERO, whole, Tag::new("put_record_batch")).map_err(fail)?;
    drop(log);
    std::io::Write::flush(&mut file).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
