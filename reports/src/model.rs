//! `result.json`: the result of one scenario run.
//!
//! The keys are a contract (README.md lists them): `schema_version`,
//! `scenario`, `totals` ([`Totals`]), `latency_ms` (per measure `p50`,
//! `p90`, `p99`, `p999`, `max`), `series` (per-second samples) and `slo`
//! (`expr`, `value`, `ok`). Adding a key is compatible; renaming or
//! removing one bumps [`SCHEMA_VERSION`], and readers refuse versions they
//! do not know rather than misread them.
//!
//! This module is the data only. SLOs, comparisons and reports address its
//! values by flat metric names, which the catalogue
//! ([`crate::catalogue`]) defines and reads off a [`RunResult`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the `result.json` layout this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One scenario run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The layout version, [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// What ran.
    pub scenario: ScenarioInfo,
    /// Record accounting over the whole run.
    pub totals: Totals,
    /// Latency distributions by measure (`produce_ack`, `put_record_batch`,
    /// `e2e`: [`crate::catalogue::MEASURES`]), in milliseconds.
    pub latency_ms: BTreeMap<String, Percentiles>,
    /// One sample per second of the run, in time order.
    pub series: Vec<Sample>,
    /// The scenario's SLOs checked against this run, in the scenario's order.
    pub slo: Vec<SloResult>,
    /// The faults the run injected (`[[faults]]`), in the scenario's
    /// order; absent when it injected none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultRecord>,
    /// The run's stages on the series' clock: each load phase, then the
    /// drain; absent in results written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseSpan>,
    /// Per measure, its distribution as `[percentile, ms]` points from p0
    /// to p99.99 evenly spaced on a log scale of 1 / (1 − quantile)
    /// ([`curve_quantiles`]), then `[100, max]`: what percentile-curve
    /// charts draw. Absent in results written before it was kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency_curve_ms: BTreeMap<String, Vec<[f64; 2]>>,
    /// When and where the harness itself fell behind
    /// ([`crate::saturation::detect`]); absent when it kept up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_saturated: Option<crate::saturation::Saturation>,
    /// What the run would have cost on AWS, an estimate from its counts
    /// and the scenario's unit prices ([`Cost`]); absent in results
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

/// `result.json`'s `cost`: the run's billed quantities over the whole run
/// (warm-up and drain included), and an *estimate* of their price.
/// Firehose bills each record rounded up to 5 KB; Lambda bills requests
/// and GB-seconds (duration × memory). Prices are the scenario's
/// `[cost]`, by default AWS's us-east-1 list prices as read on
/// `prices_read_on`; no free tier, savings plan or data transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Says what these numbers are: always an estimate.
    pub note: String,
    /// When the default prices were read from AWS's price pages.
    pub prices_read_on: String,
    /// Records Firehose accepted, duplicates included (each one is billed).
    pub firehose_records: u64,
    /// `PutRecordBatch` calls made, first tries and retries.
    pub put_record_batch_calls: u64,
    /// GB (2³⁰ bytes) of those records as sent.
    pub ingested_gb: f64,
    /// GB Firehose bills for them: each record rounded up to 5 KB.
    pub billed_ingestion_gb: f64,
    /// Lambda invocations (requests).
    pub lambda_invocations: u64,
    /// The memory size the GB-seconds are counted at, MB.
    pub lambda_memory_mb: u64,
    /// The invocations' durations × memory, GB-seconds.
    pub lambda_gb_seconds: f64,
    /// The unit prices used, USD.
    pub firehose_usd_per_gb: f64,
    /// USD per Lambda request.
    pub lambda_usd_per_request: f64,
    /// USD per Lambda GB-second.
    pub lambda_usd_per_gb_second: f64,
    /// Firehose ingestion, USD.
    pub firehose_usd: f64,
    /// Lambda requests and duration, USD.
    pub lambda_usd: f64,
    /// Both, USD.
    pub total_usd: f64,
    /// `total_usd` per million records delivered (first copies), USD.
    pub usd_per_million_delivered: Option<f64>,
}

/// One stage of a run on the series' clock ([`Sample::t`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    /// The phase's name, or `drain`.
    pub name: String,
    /// When it began, seconds.
    pub from_s: f64,
    /// When it ended, seconds.
    pub until_s: f64,
    /// False for warm-up phases and the drain: left out of the statistics.
    pub measured: bool,
}

/// The quantiles of a percentile curve: 41 points from 0 to 0.9999,
/// `1 − 10^(−k/10)` for k = 0…40, i.e. ten a decade of 1 / (1 − quantile)
/// (p0, p20.6, …, p90, …, p99, …, p99.9, …, p99.99), as HdrHistogram's
/// percentile plots and OpenMessaging Benchmark space them.
pub fn curve_quantiles() -> impl Iterator<Item = f64> {
    (0..=40).map(|k| 1.0 - 10f64.powf(-f64::from(k) / 10.0))
}

/// One injected fault: what, when, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// The kind, as the scenario names it (`processor_crash`, `registry_down`,
    /// `firehose_down`, `network_latency`).
    pub kind: String,
    /// The mode (`refuse`, `http_500`, `http_503`) or the added latency
    /// (`200ms`); absent for a kind that takes neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// When the fault began, in seconds on the series' clock ([`Sample::t`]).
    pub from_s: f64,
    /// When it ended (the part back, the processor restarted), same clock.
    pub until_s: f64,
    /// What it did, counted over its window by name: `invocations_cut`,
    /// `connections_cut`, `answered_5xx`, `delayed_chunks`, and the
    /// processor's `failed_invocations`, `retry_calls`, `throttled_calls`
    /// and `dead_lettered` while it lasted.
    #[serde(default)]
    pub effects: BTreeMap<String, u64>,
}

impl FaultRecord {
    /// `firehose_down (http_503)`: the kind and its mode, as the report labels it.
    pub fn label(&self) -> String {
        match &self.mode {
            Some(mode) => format!("{} ({mode})", self.kind),
            None => self.kind.clone(),
        }
    }
}

/// What ran: enough to reproduce it and to label the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// The scenario's name.
    pub name: String,
    /// The scenario file, as given on the command line.
    #[serde(default)]
    pub file: String,
    /// The seed every generator and fault draw of the run took.
    pub seed: u64,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// Length of the measured part of the run, in seconds.
    pub duration_s: f64,
    /// The Firehose quota the run was held to, for the charts' quota lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaLines>,
    /// The scenario's settings as run, for the record.
    #[serde(default)]
    pub settings: serde_json::Value,
    /// The run was cut short by Ctrl-C: its numbers cover less than the
    /// scenario asked for (reports say so at the top; `compare` refuses it
    /// unless forced).
    #[serde(default)]
    pub interrupted: bool,
    /// The run was stopped early by an SLO marked `abort = true` that
    /// failed while it ran (k6's `abortOnFail`); absent otherwise. Like an
    /// interrupted run, its numbers cover less than the scenario asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<Aborted>,
    /// The `--set KEY=VALUE` overrides the scenario file ran with, in order
    /// (their values are in `settings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// The `--tag KEY=VALUE` labels the run was given (a commit, a machine):
    /// carried, never compared.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Which SLO stopped a run early, when, and at what value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aborted {
    /// The SLO as text (`throttled_ratio < 0.05`), as in [`SloResult::expr`].
    pub slo: String,
    /// Seconds on the series' clock ([`Sample::t`]) at the end of the second
    /// whose sample failed it: the load stopped then.
    pub at_s: u64,
    /// The metric's value then, over the run so far.
    pub value: f64,
}

/// Firehose's per-stream quota, per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuotaLines {
    /// Records per second.
    pub records_per_sec: f64,
    /// `PutRecordBatch` calls per second.
    pub requests_per_sec: f64,
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// The lines are the scenario's declared quota (`firehose.quota`), not
    /// one the run enforced or measured: true for every endpoint but the
    /// built-in one, whose quota is the scenario's. Reports say so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared: bool,
}

/// Record accounting over the whole run, warm-up included. Each field is
/// also a metric of the same name (see [`crate::catalogue::METRICS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Records the broker acknowledged (the producer's delivery reports).
    pub produced: u64,
    /// Records found in a delivered object (first copies).
    pub delivered: u64,
    /// Of those, the records created in the measured phases: what
    /// `delivered_per_sec` divides by the measured phases' length. Absent
    /// in results written before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_measured: Option<u64>,
    /// Records found in the dead-letter destination and not delivered.
    pub dead_lettered: u64,
    /// Records found only in the event source mapping's on-failure
    /// destination (discarded after its retries, or too old): a known
    /// outcome, not a loss. Absent in results written before it was counted.
    #[serde(default)]
    pub on_failure: u64,
    /// Records found neither delivered, dead-lettered nor in the on-failure destination.
    pub unaccounted: u64,
    /// Delivered copies beyond the first of a record.
    pub duplicates: u64,
    /// Records with more than one outcome: delivered and dead-lettered, or
    /// dead-lettered more than once (each also counts once above).
    #[serde(default)]
    pub multiple_outcomes: u64,
    /// Records the producer saw fail that the topic holds all the same;
    /// accounted (delivered, dead-lettered, unaccounted) beside the produced ones.
    #[serde(default)]
    pub failed_in_topic: u64,
    /// Record attempts Firehose throttled inside successful calls.
    pub throttled_records: u64,
    /// `PutRecordBatch` calls Firehose refused whole as throttled.
    pub throttled_calls: u64,
    /// Records sent again in retry calls.
    pub retries: u64,
}

impl Totals {
    /// The totals with their `result.json` keys, in the order it writes
    /// them (the Markdown report's record table follows it).
    pub(crate) fn named(&self) -> [(&'static str, u64); 11] {
        [
            ("produced", self.produced),
            ("delivered", self.delivered),
            ("dead_lettered", self.dead_lettered),
            ("on_failure", self.on_failure),
            ("unaccounted", self.unaccounted),
            ("duplicates", self.duplicates),
            ("multiple_outcomes", self.multiple_outcomes),
            ("failed_in_topic", self.failed_in_topic),
            ("throttled_records", self.throttled_records),
            ("throttled_calls", self.throttled_calls),
            ("retries", self.retries),
        ]
    }
}

/// A latency distribution in milliseconds: the producer's report uses the same type.
pub use mskbench_core::Percentiles;

/// One second of a run. Counts are for that second alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the start of the run (the sample covers `[t, t+1)`).
    pub t: u64,
    /// Records the broker acknowledged.
    pub produced: u64,
    /// Records the event source mapping consumed.
    pub consumed: u64,
    /// `PutRecordBatch` calls, first tries and retries.
    pub firehose_calls: u64,
    /// Records Firehose accepted.
    pub records_accepted: u64,
    /// Record attempts Firehose throttled inside successful calls.
    pub records_throttled: u64,
    /// Calls Firehose refused whole as throttled.
    pub throttled_calls: u64,
    /// Bytes of the accepted records.
    pub bytes: u64,
    /// Records sent again in retry calls.
    pub retries: u64,
    /// Records consumed but not yet delivered or dead-lettered, at the end of the second.
    pub in_flight: u64,
    /// End-to-end latency of the records delivered in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<Percentiles>,
    /// Records the broker acknowledged that no invocation was handed yet,
    /// at the end of the second: the event source mapping's lag
    /// (OffsetLag), from counts (a redelivered batch counts again).
    #[serde(default)]
    pub lag: u64,
    /// Invocations that started in the second; `consumed / invocations`
    /// is their mean batch size.
    #[serde(default)]
    pub invocations: u64,
    /// How long the invocations that ended in the second took, start to return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_ms: Option<Percentiles>,
    /// `PutRecordBatch` round trips of the calls answered in the second
    /// (measured phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub put_record_batch_ms: Option<Percentiles>,
    /// The producer's send delay (actual send time − intended) of the
    /// records it sent in the second, every phase: how far the open-loop
    /// schedule slipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_delay_ms: Option<Percentiles>,
}

/// An SLO checked against a run (`result.json`'s `slo` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloResult {
    /// The SLO as text (`throttled_ratio < 0.01`).
    pub expr: String,
    /// The metric's value, or `null` when the run did not measure it.
    pub value: Option<f64>,
    /// Whether it held; an unmeasured metric fails.
    pub ok: bool,
}

/// A `result.json` that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Malformed JSON, or a key missing or of the wrong type.
    #[error("not a result: {0}")]
    Json(#[from] serde_json::Error),
    /// A `schema_version` other than [`SCHEMA_VERSION`] (0 when missing).
    #[error("result schema_version {found} is not supported (this mskbench reads {SCHEMA_VERSION})")]
    Version {
        /// The version the document declares.
        found: u64,
    },
}

impl RunResult {
    /// Reads a `result.json` document.
    ///
    /// # Errors
    /// [`ReadError`] for malformed JSON, missing keys or an unknown version.
    pub fn from_json(text: &str) -> Result<Self, ReadError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let found = value.get("schema_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ReadError::Version { found });
        }
        Ok(serde_json::from_value(value)?)
    }

    /// Whether Firehose throttled anything in the run: only then is
    /// [`RunResult::max_unthrottled`] a capacity rather than the offered load.
    pub(crate) fn saw_throttling(&self) -> bool {
        self.totals.throttled_records > 0 || self.totals.throttled_calls > 0
    }

    /// The highest rate Firehose accepted with nothing throttled: the best
    /// mean of `records_accepted` over [`UNTHROTTLED_WINDOW_S`] consecutive
    /// seconds in which records were accepted every second and no record or
    /// call was throttled. Returns the window's first second and the rate.
    pub(crate) fn max_unthrottled(&self) -> Option<(u64, f64)> {
        let n = UNTHROTTLED_WINDOW_S;
        self.series
            .windows(n)
            .filter(|w| {
                w.iter().all(|s| s.records_accepted > 0 && s.records_throttled == 0 && s.throttled_calls == 0)
                    // Consecutive seconds only.
                    && w[n - 1].t == w[0].t + n as u64 - 1
            })
            .map(|w| (w[0].t, w.iter().map(|s| s.records_accepted as f64).sum::<f64>() / n as f64))
            .fold(None, |best: Option<(u64, f64)>, (t, rate)| match best {
                Some((_, b)) if b >= rate => best,
                _ => Some((t, rate)),
            })
    }
}

/// Seconds a rate must hold, unthrottled, to count as sustained.
pub(crate) const UNTHROTTLED_WINDOW_S: usize = 3;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small but complete result, shared by this crate's tests.
    pub(crate) fn sample() -> RunResult {
        let series = (0..10)
            .map(|t| Sample {
                t,
                produced: 1000,
                consumed: 1000,
                firehose_calls: 4 + t % 2,
                records_accepted: if t < 5 { 1000 } else { 800 },
                records_throttled: if t < 5 { 0 } else { 200 },
                throttled_calls: 0,
                bytes: 200_000,
                retries: if t < 5 { 0 } else { 1 },
                in_flight: 10,
                e2e_ms: Some(Percentiles { p50: 100.0, p90: 150.0, p99: 300.0 + t as f64, p999: 400.0, max: 500.0 }),
                ..Sample::default()
            })
            .collect();
        RunResult {
            schema_version: SCHEMA_VERSION,
            scenario: ScenarioInfo {
                name: "lab".into(),
                file: "scenarios/lab.toml".into(),
                seed: 7,
                started_at: "2026-11-27T12:00:00Z".into(),
                duration_s: 10.0,
                quota: Some(QuotaLines {
                    records_per_sec: 900.0,
                    requests_per_sec: 2000.0,
                    bytes_per_sec: 5_242_880.0,
                    declared: false,
                }),
                settings: serde_json::json!({"rate": 1000}),
                interrupted: false,
                aborted: None,
                overrides: Vec::new(),
                tags: BTreeMap::new(),
            },
            totals: Totals {
                produced: 10_000,
                delivered: 10_000,
                delivered_measured: Some(10_000),
                dead_lettered: 0,
                on_failure: 0,
                unaccounted: 0,
                duplicates: 3,
                multiple_outcomes: 0,
                failed_in_topic: 0,
                throttled_records: 1000,
                throttled_calls: 0,
                retries: 5,
            },
            latency_ms: [
                ("e2e".to_string(), Percentiles { p50: 100.0, p90: 150.0, p99: 310.0, p999: 400.0, max: 520.0 }),
                ("produce_ack".to_string(), Percentiles { p50: 1.0, p90: 2.0, p99: 5.0, p999: 9.0, max: 12.0 }),
            ]
            .into_iter()
            .collect(),
            series,
            slo: Vec::new(),
            faults: Vec::new(),
            phases: vec![
                PhaseSpan { name: "warm-up".into(), from_s: 0.0, until_s: 2.0, measured: false },
                PhaseSpan { name: "steady".into(), from_s: 2.0, until_s: 8.0, measured: true },
                PhaseSpan { name: "drain".into(), from_s: 8.0, until_s: 10.0, measured: false },
            ],
            latency_curve_ms: [(
                "e2e".to_string(),
                vec![
                    [0.0, 40.0],
                    [50.0, 100.0],
                    [90.0, 150.0],
                    [99.0, 310.0],
                    [99.9, 400.0],
                    [99.99, 450.0],
                    [100.0, 520.0],
                ],
            )]
            .into_iter()
            .collect(),
            harness_saturated: None,
            cost: Some(Cost {
                note: "estimate".into(),
                prices_read_on: "2026-12-03".into(),
                firehose_records: 10_003,
                put_record_batch_calls: 45,
                ingested_gb: 0.001_8,
                billed_ingestion_gb: 0.047_7,
                lambda_invocations: 10,
                lambda_memory_mb: 1024,
                lambda_gb_seconds: 5.0,
                firehose_usd_per_gb: 0.029,
                lambda_usd_per_request: 2e-7,
                lambda_usd_per_gb_second: 1.666_67e-5,
                firehose_usd: 0.001_383_3,
                lambda_usd: 0.000_085_3,
                total_usd: 0.001_468_6,
                usd_per_million_delivered: Some(0.146_86),
            }),
        }
    }

    /// [`sample`] with one fault window, 3 s to 5 s.
    pub(crate) fn sample_with_fault() -> RunResult {
        RunResult {
            faults: vec![FaultRecord {
                kind: "firehose_down".into(),
                mode: Some("http_503".into()),
                from_s: 3.0,
                until_s: 5.0,
                effects: [("answered_5xx".to_string(), 12)].into_iter().collect(),
            }],
            ..sample()
        }
    }

    #[test]
    fn faults_are_written_only_when_there_were_some_and_read_back() {
        let plain = serde_json::to_value(sample()).unwrap();
        assert!(plain.get("faults").is_none(), "a run without faults keeps its old layout");
        let r = sample_with_fault();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["faults"][0]["kind"], "firehose_down");
        assert_eq!(v["faults"][0]["from_s"], 3.0);
        assert_eq!(v["faults"][0]["effects"]["answered_5xx"], 12);
        assert_eq!(RunResult::from_json(&v.to_string()).unwrap(), r);
        assert_eq!(r.faults[0].label(), "firehose_down (http_503)");
    }

    #[test]
    fn round_trips_through_json_with_the_contract_keys() {
        let r = sample();
        let text = serde_json::to_string_pretty(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in ["schema_version", "scenario", "totals", "latency_ms", "series", "slo"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in [
            "produced",
            "delivered",
            "dead_lettered",
            "unaccounted",
            "duplicates",
            "throttled_records",
            "throttled_calls",
            "retries",
        ] {
            assert!(v["totals"].get(key).is_some(), "totals.{key}");
        }
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_ms"]["e2e"].get(key).is_some(), "{key}");
        }
        assert_eq!(RunResult::from_json(&text).unwrap(), r);
    }

    #[test]
    fn unknown_versions_are_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["schema_version"] = 2.into();
        let err = RunResult::from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("schema_version 2"), "{err}");
        assert!(RunResult::from_json("{}").is_err());
    }
}
