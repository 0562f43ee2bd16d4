//! Step 7, assemble: what the run measured and counted, as a [`RunResult`].
//!
//! End-to-end latency runs from a record's Kafka timestamp (from the
//! producer's delivery report) to the write
//! time of the object holding its first copy; only records created inside
//! the measured window (on the producer's schedule, which starts once it is
//! connected) enter the distribution, while the per-second series keeps
//! every delivery. `latency.hlog` keeps the histograms for HdrHistogram's
//! own tools. The [`Settings`] written into `result.json` are typed: the
//! scenario as read, what the plan made of it, where the parts were, and
//! what the producer and the mapping reported.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use mskbench_processor::Live;
use mskbench_processor::esm::EsmStats;
use mskbench_processor::live::LiveSnapshot;
use mskbench_producer::fleet::{read_histogram_log, read_intervals};
use mskbench_producer::stats::percentiles;
use mskbench_producer::{Control, Report};
use mskbench_reports::catalogue::{E2E, PRODUCE_ACK, PUT_RECORD_BATCH};
use mskbench_reports::model::{Cost, QuotaLines};
use mskbench_reports::{
    Aborted, FaultRecord, PhaseSpan, RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, Totals, curve_quantiles,
};
use mskbench_scenarios::{FaultKind, FirehoseOutage, Scenario};
use serde::Serialize;

use crate::accounting::{Ledger, ms_histogram};
use crate::mapping::Stopped;
use crate::plan::{AwsEnv, Plan, RecordSource, Window};
use crate::{Clock, Observer};

/// Everything the earlier steps left for this one.
pub(crate) struct Inputs<'a> {
    pub plan: &'a Plan,
    pub report: &'a Report,
    pub control: &'a Control,
    pub clock: Clock,
    pub series: Vec<Sample>,
    pub live: &'a Live,
    pub ledger: &'a Ledger,
    /// Records read back from the topic.
    pub read: u64,
    pub stopped: &'a Stopped,
    /// The faults injected, with what they did.
    pub faults: Vec<FaultRecord>,
    /// The built-in Firehose endpoint's own totals of the stream.
    pub server_totals: Option<mskbench_sim::firehose::Sample>,
    pub interrupted: bool,
    /// Where the AWS credentials came from (`mskbench_aws::chain::Source`).
    pub aws_credentials: String,
    /// The SLO (`abort = true`) that stopped the load early, if one did.
    pub aborted: Option<Aborted>,
    /// When the drain began, seconds on the series' clock.
    pub drain_from_s: f64,
}

/// `result.json`'s `settings`: what shaped the run, and what its parts reported.
#[derive(Debug, Serialize)]
pub(crate) struct Settings<'a> {
    /// The scenario as read (its keys at the top level, text forms as written).
    #[serde(flatten)]
    pub scenario: &'a Scenario,
    /// The producer's rate profile.
    pub profile: String,
    /// The measured seconds of the producer's schedule.
    pub window: Window,
    /// What the producer generated.
    pub records: &'a RecordSource,
    /// AWS settings from the SDK's standard variables (no secrets).
    pub aws: &'a AwsEnv,
    /// Where the AWS credentials came from: `environment`, `default chain[, profile P]`, or `fixed` (stand-ins).
    pub aws_credentials: &'a str,
    /// The event source mapping's consumer group.
    pub group: &'a str,
    /// What the mapping counted, when it stopped cleanly.
    pub esm: Option<&'a EsmStats>,
    /// Why the mapping stopped, when it failed.
    pub esm_error: Option<&'a str>,
    /// The producer's own report (`--stats-json`'s keys). Not `producer`:
    /// that is the scenario's `[producer]` table, flattened beside it, which
    /// a second `producer` key would hide from every reader.
    pub producer_report: &'a Report,
    /// Delivered lines that match no record of the run.
    pub unmatched_lines: u64,
    /// Dead letters naming no record of the run.
    pub unknown_dead_letters: u64,
    /// Acknowledged records the topic read-back did not find.
    pub not_in_topic: u64,
    /// Records in the topic this run's producer neither acknowledged nor saw fail.
    pub unknown_in_topic: u64,
    /// Invocations that failed (their batches were redelivered).
    pub failed_invocations: u64,
    /// Ctrl-C stopped the load early.
    pub interrupted: bool,
}

/// The run's cost estimate: what the processor's counters say Firehose
/// accepted and Lambda ran, at the scenario's `[cost]` prices.
pub(crate) fn cost(c: &mskbench_scenarios::Cost, counted: &LiveSnapshot, delivered: u64) -> Cost {
    use mskbench_core::cost::{PRICES_READ_ON, Usage, estimate};
    let prices = c.prices();
    let memory_mb = c.lambda_memory_mb.0;
    let e = estimate(
        Usage {
            firehose_records: counted.accepted,
            firehose_billed_bytes: counted.accepted_billed_bytes,
            firehose_bytes: counted.accepted_bytes,
            invocations: counted.invocations,
            invocation_ms: counted.invocation_ms_total,
            memory_mb,
        },
        prices,
    );
    Cost {
        note: "estimate: list prices, no free tier, savings plans or data transfer".to_owned(),
        prices_read_on: PRICES_READ_ON.to_owned(),
        firehose_records: counted.accepted,
        put_record_batch_calls: counted.calls,
        ingested_gb: e.ingested_gb,
        billed_ingestion_gb: e.billed_ingestion_gb,
        lambda_invocations: counted.invocations,
        lambda_memory_mb: memory_mb,
        lambda_gb_seconds: e.lambda_gb_seconds,
        firehose_usd_per_gb: prices.firehose_usd_per_gb,
        lambda_usd_per_request: prices.lambda_usd_per_request,
        lambda_usd_per_gb_second: prices.lambda_usd_per_gb_second,
        firehose_usd: e.firehose_usd,
        lambda_usd: e.lambda_requests_usd + e.lambda_duration_usd,
        total_usd: e.total_usd,
        usd_per_million_delivered: (delivered > 0).then(|| e.total_usd / delivered as f64 * 1e6),
    }
}

/// The run's result; writes `latency.hlog` into the run folder.
pub(crate) fn assemble(i: Inputs<'_>, observer: &dyn Observer) -> Result<RunResult> {
    let Inputs {
        plan,
        report,
        control,
        clock,
        mut series,
        live,
        ledger,
        read,
        stopped,
        server_totals,
        interrupted,
        aborted,
        drain_from_s,
        faults,
        aws_credentials,
    } = i;
    let scenario = &plan.scenario;
    let tally = ledger.tally(true);
    if tally.unmatched > 0 || tally.unknown_dead_letters > 0 {
        observer.warn(&format!(
            "{} delivered line(s) and {} dead letter(s) match no record of this run",
            tally.unmatched, tally.unknown_dead_letters
        ));
    }
    if tally.not_in_topic > 0 {
        observer.warn(&format!(
            "the broker acknowledged {} records; {} of them are not in the topic ({read} records read back)",
            tally.produced, tally.not_in_topic
        ));
    }
    if tally.unknown_in_topic > 0 {
        observer.warn(&format!(
            "{} record(s) in the topic since the run started were not sent by this run's producer",
            tally.unknown_in_topic
        ));
    }
    let counted = live.snapshot();
    // A Firehose outage answering 503 ServiceUnavailableException is a
    // throttled call to the processor, not a quota decision of the endpoint.
    let outage_503: u64 = faults
        .iter()
        .filter(|f| {
            let outage = FaultKind::FirehoseDown(FirehoseOutage::Http503);
            f.kind == outage.name() && f.mode.as_deref() == outage.mode()
        })
        .filter_map(|f| f.effects.get("answered_5xx"))
        .sum();
    if let Some(server) = server_totals
        && (server.throttled_records != counted.throttled_records
            || server.throttled_calls + outage_503 != counted.throttled_calls)
    {
        observer.warn(&format!(
            "Firehose counted {} throttled records and {} throttled calls (and answered {outage_503} calls 503 \
             while down), the processor {} and {}",
            server.throttled_records, server.throttled_calls, counted.throttled_records, counted.throttled_calls
        ));
    }

    let start_ms = epoch_ms(clock.wall);
    // The measured phases, on the producer's schedule (which starts after connecting).
    let schedule_ms = control.started().map_or(start_ms, |(_, wall)| epoch_ms(wall));
    let window =
        (schedule_ms + (plan.window.from_secs * 1000.0) as i64, schedule_ms + (plan.window.to_secs * 1000.0) as i64);
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
    // The producer's send delay, second by second, from its interval log.
    let schedule_offset_s = (schedule_ms - start_ms) as f64 / 1000.0;
    match send_delays(&plan.out.join("produce.hlog"), schedule_offset_s) {
        Ok(delays) => {
            for (second, p) in delays {
                while series.len() as u64 <= second {
                    series.push(Sample { t: series.len() as u64, ..Sample::default() });
                }
                series[second as usize].send_delay_ms = Some(p);
            }
        }
        Err(e) => observer.warn(&format!("no send delay chart: {e:#}")),
    }
    let put = live.call_latency_us();
    let mut latency_ms = BTreeMap::new();
    latency_ms.insert(PRODUCE_ACK.name.to_owned(), report.ack_latency_ms);
    if !put.is_empty() {
        latency_ms.insert(PUT_RECORD_BATCH.name.to_owned(), percentiles(&put, 1000.0));
    }
    if !e2e.is_empty() {
        latency_ms.insert(E2E.name.to_owned(), percentiles(&e2e, 1.0));
    }
    write_hlog(&plan.out.join("latency.hlog"), clock.wall, &per_second, &e2e, &put)?;
    let mut latency_curve_ms = BTreeMap::new();
    for (name, h, per_ms) in [(PUT_RECORD_BATCH.name, &put, 1000.0), (E2E.name, &e2e, 1.0)] {
        if !h.is_empty() {
            latency_curve_ms.insert(name.to_owned(), curve(h, per_ms));
        }
    }
    // The producer's measured acks (µs), kept in its report as an interval log.
    match read_histogram_log(&report.histograms) {
        Ok(h) => {
            if let Some(ack) = h.get("ack_latency").filter(|h| !h.is_empty()) {
                latency_curve_ms.insert(PRODUCE_ACK.name.to_owned(), curve(ack, 1000.0));
            }
        }
        Err(e) => observer.warn(&format!("no produce_ack percentile curve: {e}")),
    }
    let offset = control.started().map_or(0.0, |(at, _)| at.saturating_duration_since(clock.start).as_secs_f64());
    let phases = phase_spans(scenario, offset, drain_from_s, series.len() as f64);

    let settings = Settings {
        scenario,
        profile: plan.profile.to_string(),
        window: plan.window,
        records: &plan.records,
        aws: &plan.aws,
        aws_credentials: &aws_credentials,
        group: &plan.group,
        esm: stopped.stats.as_ref(),
        esm_error: stopped.error.as_deref(),
        producer_report: report,
        unmatched_lines: tally.unmatched,
        unknown_dead_letters: tally.unknown_dead_letters,
        not_in_topic: tally.not_in_topic,
        unknown_in_topic: tally.unknown_in_topic,
        failed_invocations: counted.failed_invocations,
        interrupted,
    };
    let quota = scenario.firehose.quota;
    let mut result = RunResult {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: plan.file.display().to_string(),
            seed: scenario.seed,
            started_at: humantime::format_rfc3339_seconds(clock.wall).to_string(),
            duration_s: plan.window.to_secs - plan.window.from_secs,
            quota: Some(QuotaLines {
                records_per_sec: quota.records_per_sec as f64,
                requests_per_sec: quota.requests_per_sec as f64,
                bytes_per_sec: quota.bytes_per_sec as f64,
                // Only the built-in endpoint enforces the scenario's quota.
                declared: scenario.firehose.endpoint != mskbench_scenarios::Endpoint::Embedded,
            }),
            settings: serde_json::to_value(&settings).context("recording the run's settings")?,
            interrupted,
            aborted: aborted.clone(),
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
            throttled_records: counted.throttled_records,
            throttled_calls: counted.throttled_calls,
            retries: counted.resent_records,
        },
        latency_ms,
        series,
        slo: Vec::new(),
        faults,
        phases,
        latency_curve_ms,
        harness_saturated: None,
        cost: Some(cost(&scenario.cost, &counted, tally.delivered)),
    };
    result.harness_saturated = mskbench_reports::saturation::detect(&result.series, &result.phases, &result.faults);
    result.slo = scenario.slo.iter().map(|o| o.slo.evaluate(&result)).collect();
    // The SLO that stopped the run failed, whatever the whole run's value
    // says now (a ratio can recover over the drain).
    if let Some(a) = &aborted {
        for s in result.slo.iter_mut().filter(|s| s.expr == a.slo) {
            s.ok = false;
        }
    }
    Ok(result)
}

/// Each second's send delay percentiles (ms) from the producer's interval
/// log at `path` (µs, tag `send_delay`), keyed by the second of the run's
/// series holding the interval's midpoint; the log's base time is the
/// schedule's start, `schedule_offset_s` after the series' zero.
fn send_delays(path: &Path, schedule_offset_s: f64) -> Result<BTreeMap<u64, mskbench_reports::Percentiles>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let intervals = read_intervals(&text).with_context(|| format!("reading {}", path.display()))?;
    let mut out = BTreeMap::new();
    for i in intervals.iter().filter(|i| i.tag == "send_delay" && !i.histogram.is_empty()) {
        let mid = schedule_offset_s + i.start.as_secs_f64() + i.length.as_secs_f64() / 2.0;
        out.insert(mid.max(0.0) as u64, percentiles(&i.histogram, 1000.0));
    }
    Ok(out)
}

/// The percentile curve of `h` (`per_ms` of its units a millisecond):
/// `[percentile, ms]` at [`curve_quantiles`], then `[100, max]`.
pub(crate) fn curve(h: &Histogram<u64>, per_ms: f64) -> Vec<[f64; 2]> {
    // Rounded (percentiles to 4 decimals, ms to µs), so result.json stays short and reads back equal.
    let round = |v: f64, scale: f64| (v * scale).round() / scale;
    let ms = |v: u64| round(v as f64 / per_ms, 1000.0);
    curve_quantiles()
        .map(|q| [round(q * 100.0, 1e4), ms(h.value_at_quantile(q))])
        .chain([[100.0, ms(h.max())]])
        .collect()
}

/// The load phases from the producer's schedule start (`offset` on the
/// series' clock), cut where the load stopped (`drain_from`: an abort or a
/// Ctrl-C ends it early), then the drain to the end of the series.
fn phase_spans(scenario: &Scenario, offset: f64, drain_from: f64, end: f64) -> Vec<PhaseSpan> {
    let mut spans = Vec::new();
    let mut at = offset;
    for p in &scenario.phases {
        let until = (at + p.duration.as_secs_f64()).min(drain_from);
        if at >= drain_from {
            break;
        }
        spans.push(PhaseSpan { name: p.name.clone(), from_s: at, until_s: until, measured: p.measure });
        at = until;
    }
    spans.push(PhaseSpan { name: "drain".into(), from_s: drain_from, until_s: end.max(drain_from), measured: false });
    spans
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::parse(
            "name = \"t\"\nseed = 1\n[[phases]]\nname = \"warm-up\"\nduration = \"2s\"\nrate = 10\nmeasure = false\n\
             [[phases]]\nname = \"steady\"\nduration = \"8s\"\nrate = 10\n",
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn phases_start_with_the_schedule_and_stop_where_the_load_did() {
        let spans = phase_spans(&scenario(), 0.5, 10.6, 14.0);
        let got: Vec<(&str, f64, f64, bool)> =
            spans.iter().map(|p| (p.name.as_str(), p.from_s, p.until_s, p.measured)).collect();
        assert_eq!(got, [("warm-up", 0.5, 2.5, false), ("steady", 2.5, 10.5, true), ("drain", 10.6, 14.0, false)]);
        // Aborted at 1.5 s: the warm-up is cut, the steady phase never ran.
        let cut = phase_spans(&scenario(), 0.5, 1.5, 4.0);
        let names: Vec<(&str, f64)> = cut.iter().map(|p| (p.name.as_str(), p.until_s)).collect();
        assert_eq!(names, [("warm-up", 1.5), ("drain", 4.0)]);
    }

    #[test]
    fn send_delays_land_in_the_second_holding_each_intervals_midpoint() {
        use hdrhistogram::serialization::V2DeflateSerializer;
        use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
        let dir = std::env::temp_dir().join(format!("mskbench-send-delays-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("produce.hlog");
        let (mut out, mut serializer) = (Vec::new(), V2DeflateSerializer::new());
        {
            let mut log = IntervalLogWriterBuilder::new()
                .with_base_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
                .begin_log_with(&mut out, &mut serializer)
                .unwrap();
            let mut delay = Histogram::<u64>::new(3).unwrap();
            let mut ack = Histogram::<u64>::new(3).unwrap();
            ack.record(900_000).unwrap();
            for (from_s, us) in [(0.0, 2_000), (1.0, 40_000)] {
                delay.reset();
                delay.record(us).unwrap();
                let (from, one) = (Duration::from_secs_f64(from_s), Duration::from_secs(1));
                log.write_histogram(&ack, from, one, Tag::new("ack")).unwrap();
                log.write_histogram(&delay, from, one, Tag::new("send_delay")).unwrap();
            }
            // An empty interval (nothing sent) draws no point.
            log.write_histogram(
                &Histogram::<u64>::new(3).unwrap(),
                Duration::from_secs(2),
                Duration::from_secs(1),
                Tag::new("send_delay"),
            )
            .unwrap();
        }
        fs::write(&path, out).unwrap();
        // The schedule began 1.2 s into the run: its first second is the run's second 1.
        let delays = send_delays(&path, 1.2).unwrap();
        assert_eq!(delays.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert!((delays[&1].p50 - 2.0).abs() < 0.01, "{:?}", delays[&1]);
        assert!((delays[&2].max - 40.0).abs() < 0.1, "{:?}", delays[&2]);
        assert!(send_delays(&dir.join("missing.hlog"), 0.0).unwrap_err().to_string().contains("missing.hlog"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_curve_runs_from_p0_to_p9999_then_the_maximum() {
        let mut h = ms_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let c = curve(&h, 1.0);
        assert_eq!(c.len(), 42);
        assert_eq!(c[0], [0.0, 1.0]);
        assert!((c[10][0] - 90.0).abs() < 1e-9 && (c[10][1] - 9000.0).abs() < 10.0, "{:?}", c[10]);
        assert_eq!((c[20][0], c[40][0]), (99.0, 99.99));
        assert_eq!(c[41], [100.0, h.max() as f64]);
        assert!(c.windows(2).all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]), "{c:?}");
    }
}
