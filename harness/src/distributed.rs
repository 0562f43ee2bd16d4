//! A finished distributed run, accounted from the outside (`mskbench account`).
//!
//! A fleet — producer workers (`mskbench produce --workers N`), processor
//! replicas in one consumer group (`mskbench process`, or the Lambda
//! function), a Firehose endpoint writing S3-layout objects — leaves
//! behind the workers' `--stats-json` reports, the topic, the delivered
//! objects and the dead letters. [`account`] reads them back and gives
//! the same [`RunResult`] as `mskbench run`:
//!
//! 1. **Produced** — the workers' reports, merged
//!    (`mskbench_producer::merge`), say which partition ranges their
//!    acknowledged records landed in. Each record in those ranges is read
//!    from the topic and its expected line digested from its value:
//!    unframed (Confluent or Glue), decoded by apache-avro with the
//!    records' schema and digested the producer's way
//!    (`mskbench_producer::expected::avro_value`) — never by the
//!    processor's transcoder, which is under test. A record is identified
//!    by its (partition, offset); the ranges must hold as many records as
//!    the workers acknowledged (records of another producer between them,
//!    or missing ones, are warned about).
//! 2. **Dead-lettered**, 3. **Delivered**, 4. **Unaccounted** — as in
//!    `mskbench run`, by the same [`Ledger`]: dead letters by coordinates,
//!    delivered lines by digest, duplicates and multiple outcomes counted.
//!    The objects are in a directory or under an S3 prefix ([`Objects`]:
//!    `mskbench-aws`'s S3 client, oldest object first, its last-modified
//!    time as the lines' delivery time).
//!
//! The result's `scenario.settings` holds the fleet: the merged producer
//! report's counts and clock, one row per worker, and the warnings.
//!
//! Boundary: the brokers, the objects and the letters are where the run
//! left them; nothing is started. Cost: one topic read of the run's
//! ranges, one apache-avro decode and digest per record, one JSON parse
//! and digest per delivered line (the `Ledger`'s ~100 bytes a record).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use hdrhistogram::Histogram;
use mskbench_core::wire::{self, Compression, WireMode};
use mskbench_kafka::{Connection, KafkaContext};
use mskbench_producer::expected::{self, Canon};
use mskbench_producer::merge::{Merged, merge};
use mskbench_producer::{Report, stats::percentiles};
use mskbench_reports::catalogue::{E2E, PRODUCE_ACK};
use mskbench_reports::{RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, Totals};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use mskbench_aws::s3::S3Bucket;
use mskbench_sim::firehose as delivery;

use crate::accounting::{Ledger, ms_histogram};

/// What a distributed run left, and where.
#[derive(Debug, Clone)]
pub struct Finished {
    /// A name for the report.
    pub name: String,
    /// The Kafka bootstrap list and how to connect (TLS, SASL, IAM).
    pub connection: Connection,
    /// Other librdkafka settings for the read-back consumer (`-X`).
    pub kafka: Vec<(String, String)>,
    /// The workers' `--stats-json` reports.
    pub workers: Vec<Report>,
    /// The Avro schema (JSON text) the records' values were written with.
    pub schema: String,
    /// The Firehose destination's objects.
    pub delivered: Objects,
    /// The processors' dead letters, if they had a destination.
    pub dead_letters: Option<Objects>,
    /// The processors' `mskbench process --summary-json` files, parsed:
    /// their throttling and retry counts go into the totals.
    pub processors: Vec<serde_json::Value>,
}

/// Where a run's objects are: delivered lines or dead letters.
#[derive(Debug, Clone)]
pub enum Objects {
    /// A directory in the S3 layout (`serve firehose --s3-dir`, a
    /// dead-letter directory, a bucket synced down).
    Dir(PathBuf),
    /// Objects under `prefix` in an S3 bucket (Firehose's destination, an
    /// `s3://` DEAD_LETTER).
    S3 {
        /// The bucket, as the caller's credentials reach it.
        bucket: S3Bucket,
        /// The key prefix (a directory: `MSKToS3/` or empty).
        prefix: String,
    },
}

impl Objects {
    /// Calls `each` with every object's name, bytes and write time (epoch
    /// ms), oldest first; returns the number of objects.
    fn each(&self, mut each: impl FnMut(&str, &[u8], i64) -> Result<()>) -> Result<u64> {
        match self {
            Objects::Dir(dir) => {
                let objects = delivery::list_objects(dir)?;
                for object in &objects {
                    let data =
                        std::fs::read(&object.path).with_context(|| format!("reading {}", object.path.display()))?;
                    each(&object.path.display().to_string(), &data, object.written_ms)?;
                }
                Ok(objects.len() as u64)
            }
            Objects::S3 { bucket, prefix } => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the runtime for S3")?;
                let objects = runtime.block_on(bucket.list_modified(prefix))?;
                for (key, modified_ms) in &objects {
                    let data = runtime.block_on(bucket.get(key))?;
                    each(&format!("s3://{}/{key}", bucket.name()), &data, *modified_ms)?;
                }
                Ok(objects.len() as u64)
            }
        }
    }
}

/// The accounted run: the result, the merged producer stats, and warnings.
#[derive(Debug)]
pub struct Accounted {
    /// What `result.json` holds.
    pub result: RunResult,
    /// The workers' reports merged.
    pub merged: Merged,
    /// What did not add up, each a sentence (also in the result's settings).
    pub warnings: Vec<String>,
}

/// How long the topic read-back waits without a record before giving up.
const READ_PATIENCE: Duration = Duration::from_secs(30);

/// Accounts a finished distributed run.
pub fn account(run: &Finished) -> Result<Accounted> {
    let merged = merge(&run.workers)?;
    let mut warnings = merged.warnings.clone();
    let schema = Schema::parse_str(&run.schema).context("the records' schema does not parse")?;
    let topic = merged.report.topic.clone();
    let mut ledger = Ledger::default();
    let read = read_ranges(run, &topic, &merged, &schema, &mut ledger, &mut warnings)?;
    if read.records != merged.report.acked {
        warnings.push(format!(
            "the workers' partition ranges hold {} records, the workers acknowledged {}: {}",
            read.records,
            merged.report.acked,
            if read.records > merged.report.acked {
                "another producer wrote between them, or a failed record is in the topic after all"
            } else {
                "records are missing from the topic"
            }
        ));
    }
    if read.undecodable > 0 {
        warnings.push(format!(
            "{} record(s) in the ranges did not decode with the schema given: they can only be dead-lettered",
            read.undecodable
        ));
    }
    if let Some(letters) = &run.dead_letters {
        letters.each(|name, data, _| dead_letters(name, data, &mut ledger))?;
    }
    let objects = run.delivered.each(|_, data, written_ms| {
        for line in data.split_inclusive(|&b| b == b'\n') {
            ledger.delivered(line, written_ms);
        }
        Ok(())
    })?;
    let tally = ledger.tally(true);
    if tally.unmatched > 0 || tally.unknown_dead_letters > 0 {
        warnings.push(format!(
            "{} delivered line(s) and {} dead letter(s) match no record of this run",
            tally.unmatched, tally.unknown_dead_letters
        ));
    }

    let report = &merged.report;
    let window = (report.clock.measured_start_unix_ms as i64, report.clock.measured_end_unix_ms as i64);
    let start_ms = report.clock.start_unix_ms as i64;
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
    let mut series = Vec::new();
    for (&second, h) in &per_second {
        while series.len() as u64 <= second {
            series.push(Sample { t: series.len() as u64, ..Sample::default() });
        }
        series[second as usize].e2e_ms = Some(percentiles(h, 1.0));
    }
    for (second, produced) in read.per_second {
        while series.len() as u64 <= second {
            series.push(Sample { t: series.len() as u64, ..Sample::default() });
        }
        series[second as usize].produced = produced;
    }
    let mut latency_ms = BTreeMap::new();
    latency_ms.insert(PRODUCE_ACK.name.to_owned(), report.ack_latency_ms);
    let mut latency_curve_ms = BTreeMap::new();
    if !e2e.is_empty() {
        latency_ms.insert(E2E.name.to_owned(), percentiles(&e2e, 1.0));
        latency_curve_ms.insert(E2E.name.to_owned(), crate::assemble::curve(&e2e, 1.0));
    }
    let processed = |key: &str| -> u64 {
        run.processors.iter().filter_map(|p| p.get("send").and_then(|s| s.get(key)).and_then(|v| v.as_u64())).sum()
    };
    let settings = serde_json::json!({
        "distributed": {
            "workers": merged.workers,
            "missing_workers": merged.missing_workers,
            "producer": {
                "sent": report.sent,
                "acked": report.acked,
                "failed": report.failed,
                "unaccounted": report.unaccounted,
                "rate_target": report.rate_target,
                "rate_achieved": report.rate_achieved,
                "measured_secs": report.measured_secs,
                "clock": report.clock,
                "partitions": report.partitions,
            },
            "processors": run.processors.len(),
            "objects": objects,
            "records_in_ranges": read.records,
            "unmatched_lines": tally.unmatched,
            "unknown_dead_letters": tally.unknown_dead_letters,
            "warnings": warnings,
        }
    });
    let started = UNIX_EPOCH + Duration::from_millis(start_ms.max(0) as u64);
    let result = RunResult {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: run.name.clone(),
            file: String::new(),
            seed: report.worker.run_seed,
            started_at: humantime::format_rfc3339_seconds(started).to_string(),
            duration_s: report.measured_secs,
            quota: None,
            settings,
            interrupted: report.interrupted,
            aborted: None,
            overrides: Vec::new(),
            tags: BTreeMap::new(),
        },
        totals: Totals {
            produced: tally.produced,
            delivered: tally.delivered,
            delivered_measured: Some(e2e.len()),
            dead_lettered: tally.dead_lettered,
            on_failure: tally.on_failure,
            unaccounted: tally.unaccounted,
            duplicates: tally.duplicates,
            multiple_outcomes: tally.multiple_outcomes,
            failed_in_topic: tally.failed_in_topic,
            throttled_records: processed("throttled_records"),
            throttled_calls: processed("throttled_calls"),
            retries: processed("resent_records"),
        },
        latency_ms,
        latency_curve_ms,
        harness_saturated: None,
        // The workers' invocations are not counted here: no cost estimate.
        cost: None,
        // A fleet has no one schedule of phases.
        phases: Vec::new(),
        series,
        slo: Vec::new(),
        faults: Vec::new(),
    };
    Ok(Accounted { result, merged, warnings })
}

/// Enters the dead letters of one object (`name` for errors) in `ledger`.
fn dead_letters(name: &str, data: &[u8], ledger: &mut Ledger) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Letter {
        partition: i32,
        offset: i64,
    }
    let text = std::str::from_utf8(data).with_context(|| format!("{name}: not UTF-8 text"))?;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let letter: Letter =
            serde_json::from_str(line).with_context(|| format!("{name}:{}: not a dead letter", i + 1))?;
        ledger.dead_lettered(letter.partition, letter.offset);
    }
    Ok(())
}

/// What the topic read-back found in the workers' ranges.
#[derive(Debug, Default)]
struct Read {
    records: u64,
    undecodable: u64,
    /// Records by the second of their timestamp after the fleet's start.
    per_second: BTreeMap<u64, u64>,
}

/// Reads every partition's range, first to last offset, into `ledger`.
fn read_ranges(
    run: &Finished,
    topic: &str,
    merged: &Merged,
    schema: &Schema,
    ledger: &mut Ledger,
    warnings: &mut Vec<String>,
) -> Result<Read> {
    let mut read = Read::default();
    let ranges = &merged.report.partitions;
    if ranges.is_empty() {
        return Ok(read);
    }
    let mut config = run.connection.client_config();
    config
        .set("group.id", "mskbench-account")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("socket.timeout.ms", "10000");
    for (k, v) in &run.kafka {
        config.set(k, v);
    }
    let consumer: BaseConsumer<KafkaContext> = config
        .create_with_context(run.connection.context("account read-back"))
        .context("creating the read-back consumer")?;
    run.connection.auth.prime(consumer.client());
    let mut assignment = TopicPartitionList::new();
    let mut last: HashMap<i32, i64> = HashMap::new();
    for r in ranges {
        assignment.add_partition_offset(topic, r.partition, Offset::Offset(r.first_offset))?;
        last.insert(r.partition, r.last_offset);
    }
    consumer.assign(&assignment).context("assigning the read-back consumer")?;
    let start_ms = merged.report.clock.start_unix_ms as i64;
    let reader = GenericDatumReader::builder(schema).build().context("the records' schema does not resolve")?;
    let mut canon = Canon::new();
    let mut last_progress = Instant::now();
    while !last.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let (partition, offset) = (m.partition(), m.offset());
                let Some(&end) = last.get(&partition) else { continue };
                if offset > end {
                    last.remove(&partition);
                    continue;
                }
                if offset == end {
                    last.remove(&partition);
                }
                let payload = m.payload().unwrap_or_default();
                let created_ms = m.timestamp().to_millis().unwrap_or(-1);
                let digest = match value_digest(payload, &reader, &mut canon) {
                    Some(d) => d,
                    None => {
                        read.undecodable += 1;
                        // No line can match it: only a dead letter accounts for it.
                        expected::payload(payload)
                    }
                };
                ledger.acked(partition, offset, created_ms, digest);
                ledger.in_topic(partition, offset, expected::payload(payload));
                read.records += 1;
                *read.per_second.entry((created_ms - start_ms).max(0) as u64 / 1000).or_insert(0) += 1;
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                // An end before the last offset acknowledged there: records are missing.
                let short = last.remove(&partition).is_some();
                if short {
                    warnings.push(format!("partition {partition} ends before the last offset a worker acknowledged"));
                }
            }
            Some(Err(e)) => bail!("reading {topic} back: {e}"),
            None if last_progress.elapsed() > READ_PATIENCE => {
                bail!(
                    "reading {topic} back: no record for {READ_PATIENCE:?} with {} partition(s) unfinished",
                    last.len()
                )
            }
            None => {}
        }
    }
    Ok(read)
}

/// The digest of the line a record's value should become, decoded by
/// apache-avro; `None` when it does not unframe or decode.
fn value_digest(payload: &[u8], reader: &GenericDatumReader<'_>, canon: &mut Canon) -> Option<expected::Digest> {
    let framed = wire::unframe(payload, WireMode::GlueSecondary).ok()?;
    if framed.compression != Compression::None {
        return None;
    }
    let value = reader.read_value(&mut std::io::Cursor::new(framed.datum)).ok()?;
    Some(expected::avro_value(&value, canon))
}
