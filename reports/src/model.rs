//! `result.json`: the result of one scenario run.
//!
//! The keys are a contract (DESIGN.md): `schema_version`, `scenario`,
//! `totals` (`produced`, `delivered`, `dead_lettered`, `unaccounted`,
//! `duplicates`, `throttled_records`, `throttled_calls`, `retries`),
//! `latency_ms` (per measure `p50`, `p90`, `p99`, `p999`, `max`), `series`
//! (per-second samples) and `slo` (`expr`, `value`, `ok`). Adding a key is
//! compatible; renaming or removing one bumps [`SCHEMA_VERSION`], and
//! readers refuse versions they do not know rather than misread them.
//!
//! SLOs, comparisons and reports address values by flat metric names
//! ([`RunResult::metric`]): every total by its key, derived ratios and
//! rates, and each latency percentile as `<measure>_<percentile>_ms`
//! (`e2e_p99_ms`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the `result.json` layout this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One scenario run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    pub totals: Totals,
    /// Latency distributions by measure (`produce_ack`, `put_record_batch`, `e2e`, …).
    pub latency_ms: BTreeMap<String, Percentiles>,
    /// One sample per second of the run, in time order.
    pub series: Vec<Sample>,
    pub slo: Vec<crate::slo::SloResult>,
}

/// What ran: enough to reproduce it and to label the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    /// The scenario file, as given on the command line.
    #[serde(default)]
    pub file: String,
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
}

/// Firehose's per-stream quota, per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuotaLines {
    pub records_per_sec: f64,
    pub requests_per_sec: f64,
    pub bytes_per_sec: f64,
}

/// Record accounting over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub produced: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    /// Produced records found neither delivered nor dead-lettered.
    pub unaccounted: u64,
    /// Delivered copies beyond the first of a record.
    pub duplicates: u64,
    pub throttled_records: u64,
    pub throttled_calls: u64,
    pub retries: u64,
}

/// A latency distribution in milliseconds: the producer's report uses the same type.
pub use mskbench_core::Percentiles;

/// One second of a run. Counts are for that second alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the start of the run (the sample covers `[t, t+1)`).
    pub t: u64,
    pub produced: u64,
    pub consumed: u64,
    pub firehose_calls: u64,
    pub records_accepted: u64,
    pub records_throttled: u64,
    pub throttled_calls: u64,
    pub bytes: u64,
    pub retries: u64,
    /// Records consumed but not yet delivered or dead-lettered, at the end of the second.
    pub in_flight: u64,
    /// End-to-end latency of the records delivered in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<Percentiles>,
}

/// A `result.json` that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a result: {0}")]
    Json(#[from] serde_json::Error),
    #[error("result schema_version {found} is not supported (this mskbench reads {SCHEMA_VERSION})")]
    Version { found: u64 },
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

    /// The flat metric `name`, if the run has it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let t = &self.totals;
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let value = match name {
            "produced" => t.produced as f64,
            "delivered" => t.delivered as f64,
            "dead_lettered" => t.dead_lettered as f64,
            "unaccounted" => t.unaccounted as f64,
            "duplicates" => t.duplicates as f64,
            "throttled_records" => t.throttled_records as f64,
            "throttled_calls" => t.throttled_calls as f64,
            "retries" => t.retries as f64,
            // Throttled share of the record attempts Firehose saw.
            "throttled_ratio" => {
                let attempts: u64 = self.series.iter().map(|s| s.records_accepted + s.records_throttled).sum();
                ratio(t.throttled_records, attempts)
            }
            "delivered_ratio" => ratio(t.delivered, t.produced),
            "duration_s" => self.scenario.duration_s,
            "max_unthrottled_per_sec" => self.max_unthrottled().map_or(0.0, |(_, rate)| rate),
            "delivered_per_sec" => {
                if self.scenario.duration_s > 0.0 {
                    t.delivered as f64 / self.scenario.duration_s
                } else {
                    0.0
                }
            }
            other => return self.latency_metric(other),
        };
        Some(value)
    }

    /// The highest rate Firehose accepted with nothing throttled: the best
    /// mean of `records_accepted` over [`UNTHROTTLED_WINDOW_S`] consecutive
    /// seconds in which records were accepted every second and no record or
    /// call was throttled. Returns the window's first second and the rate.
    pub fn max_unthrottled(&self) -> Option<(u64, f64)> {
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

    fn latency_metric(&self, name: &str) -> Option<f64> {
        let rest = name.strip_suffix("_ms")?;
        let (measure, percentile) = rest.rsplit_once('_')?;
        let p = self.latency_ms.get(measure)?;
        p.named().into_iter().find(|(k, _)| *k == percentile).map(|(_, v)| v)
    }

    /// Every metric name this run answers, in a stable order.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = TOTALS_AND_DERIVED.iter().map(|s| (*s).to_owned()).collect();
        for (measure, p) in &self.latency_ms {
            for (k, _) in p.named() {
                names.push(format!("{measure}_{k}_ms"));
            }
        }
        names
    }
}

/// Seconds a rate must hold, unthrottled, to count as sustained.
pub const UNTHROTTLED_WINDOW_S: usize = 3;

/// Metric names that exist for every run.
pub const TOTALS_AND_DERIVED: &[&str] = &[
    "produced",
    "delivered",
    "dead_lettered",
    "unaccounted",
    "duplicates",
    "throttled_records",
    "throttled_calls",
    "retries",
    "throttled_ratio",
    "delivered_ratio",
    "duration_s",
    "delivered_per_sec",
    "max_unthrottled_per_sec",
];

/// True when `name` is a metric some run can have: a fixed one, or a
/// latency percentile of any measure.
pub fn is_known_metric(name: &str) -> bool {
    if TOTALS_AND_DERIVED.contains(&name) {
        return true;
    }
    name.strip_suffix("_ms")
        .and_then(|rest| rest.rsplit_once('_'))
        .is_some_and(|(measure, p)| !measure.is_empty() && ["p50", "p90", "p99", "p999", "max"].contains(&p))
}

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
                }),
                settings: serde_json::json!({"rate": 1000}),
            },
            totals: Totals {
                produced: 10_000,
                delivered: 10_000,
                dead_lettered: 0,
                unaccounted: 0,
                duplicates: 3,
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
        }
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

    #[test]
    fn metrics_cover_totals_ratios_and_percentiles() {
        let r = sample();
        assert_eq!(r.metric("delivered"), Some(10_000.0));
        assert_eq!(r.metric("throttled_ratio"), Some(1000.0 / 10_000.0));
        assert_eq!(r.metric("delivered_per_sec"), Some(1000.0));
        assert_eq!(r.metric("e2e_p99_ms"), Some(310.0));
        assert_eq!(r.metric("produce_ack_max_ms"), Some(12.0));
        // Seconds 0–4 accept 1,000/s unthrottled; throttling starts at 5.
        assert_eq!(r.max_unthrottled(), Some((0, 1000.0)));
        assert_eq!(r.metric("max_unthrottled_per_sec"), Some(1000.0));
        assert_eq!(r.metric("e2e_p12_ms"), None);
        assert_eq!(r.metric("nope"), None);
        for name in r.metric_names() {
            assert!(r.metric(&name).is_some(), "{name}");
            assert!(is_known_metric(&name), "{name}");
        }
        assert!(is_known_metric("put_record_batch_p999_ms"));
        assert!(!is_known_metric("throttle_ratio"));
    }
}
