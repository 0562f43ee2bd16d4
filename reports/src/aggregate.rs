//! Repeated runs of one scenario as one result: `mskbench run --repeat N`.
//!
//! `run --repeat N` writes each run into `run-1/` … `run-N/` under `--out`
//! and, beside them, an [`Aggregate`] as `result.json`: the scenario of the
//! first run, one entry per run (folder, seed, whether its SLOs held), and
//! per metric the runs' values with their median, range and the confidence
//! interval of the median ([`crate::noise::Summary`]). `mskbench compare`
//! reads either kind of `result.json` ([`Side`]); the aggregate's
//! `"kind": "aggregate"` tells them apart, and an aggregate is
//! self-contained: comparing needs no run folder.
//!
//! The metrics are every name the catalogue has ([`crate::catalogue`]) and
//! every percentile of every latency measure the runs have; a metric some
//! run lacks is left out of the aggregate rather than summarised over the
//! runs that have it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::catalogue::{self, METRICS};
use crate::compare::fmt_num;
use crate::model::{ReadError, RunResult, SCHEMA_VERSION, ScenarioInfo};
use crate::noise::Summary;

/// The `kind` of an aggregate `result.json`.
pub const AGGREGATE_KIND: &str = "aggregate";

/// Several runs of one scenario, summarised metric by metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The layout version, [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always [`AGGREGATE_KIND`].
    pub kind: String,
    /// The first run's scenario (its seed is the first run's).
    pub scenario: ScenarioInfo,
    /// Each run, in order.
    pub runs: Vec<RunEntry>,
    /// Per metric, the runs' values summarised.
    pub metrics: BTreeMap<String, Summary>,
}

/// One run of an [`Aggregate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// Its folder, relative to the aggregate's (`run-1`).
    pub dir: String,
    /// The seed it ran with.
    pub seed: u64,
    /// When it started, RFC 3339 UTC.
    pub started_at: String,
    /// Whether every SLO held.
    pub slo_ok: bool,
    /// Whether Ctrl-C cut it short.
    #[serde(default)]
    pub interrupted: bool,
    /// The SLO that stopped it early (`abort = true`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<String>,
}

/// Why runs cannot be one aggregate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggregateError {
    /// No run was given.
    #[error("an aggregate needs at least one run")]
    Empty,
    /// The runs are not of one scenario with one set of settings.
    #[error("{dir} is not a run of the same scenario as {first}: {differences}")]
    Differs {
        /// The first run's folder.
        first: String,
        /// The run that differs.
        dir: String,
        /// What differs.
        differences: String,
    },
}

impl Aggregate {
    /// The aggregate of `runs` (`(folder, result)`, in order).
    ///
    /// # Errors
    /// [`AggregateError`] when there is no run, or the runs differ in
    /// scenario or settings ([`differences`]).
    pub fn of(runs: &[(String, RunResult)]) -> Result<Aggregate, AggregateError> {
        let Some((first_dir, first)) = runs.first() else { return Err(AggregateError::Empty) };
        for (dir, run) in &runs[1..] {
            let found = differences(&first.scenario, &run.scenario);
            if !found.is_empty() {
                return Err(AggregateError::Differs {
                    first: first_dir.clone(),
                    dir: dir.clone(),
                    differences: found.join("; "),
                });
            }
        }
        let mut names: Vec<String> = METRICS.iter().map(|m| m.name.to_owned()).collect();
        let mut measures: Vec<&String> = runs.iter().flat_map(|(_, r)| r.latency_ms.keys()).collect();
        measures.sort();
        measures.dedup();
        for measure in measures {
            names.extend(catalogue::percentile_keys().map(|p| catalogue::latency_name(measure, p)));
        }
        let metrics = names
            .into_iter()
            .filter_map(|name| {
                let values: Option<Vec<f64>> = runs.iter().map(|(_, r)| r.metric(&name)).collect();
                Some((name, Summary::of(&values?)?))
            })
            .collect();
        Ok(Aggregate {
            schema_version: SCHEMA_VERSION,
            kind: AGGREGATE_KIND.to_owned(),
            scenario: first.scenario.clone(),
            runs: runs
                .iter()
                .map(|(dir, r)| RunEntry {
                    dir: dir.clone(),
                    seed: r.scenario.seed,
                    started_at: r.scenario.started_at.clone(),
                    slo_ok: r.slo.iter().all(|s| s.ok),
                    interrupted: r.scenario.interrupted,
                    aborted_by: r.scenario.aborted.as_ref().map(|a| a.slo.clone()),
                })
                .collect(),
            metrics,
        })
    }

    /// A Markdown summary: one row per metric with its median, range and
    /// the median's confidence interval.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let held = self.runs.iter().filter(|r| r.slo_ok).count();
        let interrupted = self.runs.iter().filter(|r| r.interrupted).count();
        let aborted = self.runs.iter().filter(|r| r.aborted_by.is_some()).count();
        let mut cut = String::new();
        if interrupted > 0 {
            cut += &format!("**Interrupted** (Ctrl-C): {interrupted} run(s) cut short. ");
        }
        if aborted > 0 {
            cut += &format!("**Aborted** by an SLO (`abort = true`): {aborted} run(s) stopped early. ");
        }
        let _ = writeln!(
            out,
            "# {} × {} runs\n\n{cut}Seeds {}; every SLO held in {held} of {} runs. Each run's report is in its folder.\n",
            self.scenario.name,
            self.runs.len(),
            self.runs.iter().map(|r| r.seed.to_string()).collect::<Vec<_>>().join(", "),
            self.runs.len(),
        );
        out.push_str("| metric | median | min | max | spread | median's CI |\n|---|---:|---:|---:|---:|---|\n");
        for (name, s) in &self.metrics {
            let spread = s.spread_pct().map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1}%"));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {spread} | [{}, {}] at {:.0}% |",
                fmt_num(s.median),
                fmt_num(s.min),
                fmt_num(s.max),
                fmt_num(s.ci[0]),
                fmt_num(s.ci[1]),
                s.ci_level * 100.0
            );
        }
        out
    }
}

/// One side of a comparison: a single run's `result.json`, or an aggregate's.
#[derive(Debug, Clone, PartialEq)]
pub enum Side {
    /// One run.
    Run(Box<RunResult>),
    /// Repeated runs.
    Set(Box<Aggregate>),
}

impl Side {
    /// Reads either kind of `result.json`.
    ///
    /// # Errors
    /// [`ReadError`] when the text is neither, or of a version this crate
    /// does not know.
    pub fn from_json(text: &str) -> Result<Side, ReadError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        if value.get("kind").and_then(serde_json::Value::as_str) == Some(AGGREGATE_KIND) {
            let found = value.get("schema_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
            if found != u64::from(SCHEMA_VERSION) {
                return Err(ReadError::Version { found });
            }
            return Ok(Side::Set(Box::new(serde_json::from_value(value)?)));
        }
        RunResult::from_json(text).map(|r| Side::Run(Box::new(r)))
    }

    /// What ran.
    pub fn scenario(&self) -> &ScenarioInfo {
        match self {
            Side::Run(r) => &r.scenario,
            Side::Set(a) => &a.scenario,
        }
    }

    /// Whether Ctrl-C cut it (or, for a set, any of its runs) short.
    pub fn interrupted(&self) -> bool {
        match self {
            Side::Run(r) => r.scenario.interrupted,
            Side::Set(a) => a.scenario.interrupted || a.runs.iter().any(|r| r.interrupted),
        }
    }

    /// The SLO that stopped it (or, for a set, one of its runs) early, if any.
    pub fn aborted_by(&self) -> Option<&str> {
        match self {
            Side::Run(r) => r.scenario.aborted.as_ref().map(|a| a.slo.as_str()),
            Side::Set(a) => a
                .scenario
                .aborted
                .as_ref()
                .map(|a| a.slo.as_str())
                .or_else(|| a.runs.iter().find_map(|r| r.aborted_by.as_deref())),
        }
    }

    /// How many runs it holds.
    pub fn runs(&self) -> usize {
        match self {
            Side::Run(_) => 1,
            Side::Set(a) => a.runs.len(),
        }
    }

    /// The runs' values of `metric` summarised, when every run has it: one
    /// run is a summary of one value, a set's is the one it stored.
    pub(crate) fn summary(&self, metric: &str) -> Option<Summary> {
        match self {
            Side::Run(r) => r.metric(metric).and_then(|v| Summary::of(&[v])),
            Side::Set(a) => a.metrics.get(metric).cloned(),
        }
    }

    /// Every latency measure it has.
    pub(crate) fn measures(&self) -> Vec<String> {
        match self {
            Side::Run(r) => r.latency_ms.keys().cloned().collect(),
            Side::Set(a) => {
                let mut m: Vec<String> = a
                    .metrics
                    .keys()
                    .filter_map(|n| catalogue::split_latency(n).map(|(measure, _)| measure.to_owned()))
                    .collect();
                m.dedup();
                m
            }
        }
    }
}

/// The keys of `settings` that say what a run was asked to do: the
/// scenario's tables and what the harness derived from them. The rest of
/// `settings` is what the run's parts reported (the producer's report, the
/// mapping's counts…), which differs from run to run by nature.
const SETTINGS_COMPARED: [&str; 12] = [
    "drain",
    "slo",
    "phases",
    "producer",
    "processor",
    "firehose",
    "faults",
    "mapping",
    "kafka",
    "profile",
    "window",
    "records",
];

/// What differs between two runs' scenarios that makes them incomparable:
/// the name, the quota, or a compared key of the settings (by path, e.g.
/// `processor.batch_size: 1000 ≠ 500`). Seeds, start times and the file's
/// path may differ.
pub fn differences(a: &ScenarioInfo, b: &ScenarioInfo) -> Vec<String> {
    let mut out = Vec::new();
    if a.name != b.name {
        out.push(format!("scenario {:?} ≠ {:?}", a.name, b.name));
    }
    if a.quota != b.quota {
        out.push("the Firehose quota differs".to_owned());
    }
    for key in SETTINGS_COMPARED {
        let (x, y) = (a.settings.get(key), b.settings.get(key));
        if x != y {
            diff_paths(key, x, y, &mut out);
        }
    }
    out
}

/// The leaf paths under `path` where `x` and `y` differ, as `path: x ≠ y`.
fn diff_paths(path: &str, x: Option<&serde_json::Value>, y: Option<&serde_json::Value>, out: &mut Vec<String>) {
    use serde_json::Value;
    match (x, y) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if x.get(k) != y.get(k) {
                    diff_paths(&format!("{path}.{k}"), x.get(k), y.get(k), out);
                }
            }
        }
        _ => {
            let show = |v: Option<&Value>| v.map_or_else(|| "absent".to_owned(), |v| truncate(&v.to_string()));
            out.push(format!("{path}: {} ≠ {}", show(x), show(y)));
        }
    }
}

/// At most 60 characters of `s`, with an ellipsis when cut.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    fn runs(values: &[f64]) -> Vec<(String, RunResult)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &p99)| {
                let mut r = sample();
                r.scenario.seed = 7 + i as u64;
                r.latency_ms.get_mut("e2e").unwrap().p99 = p99;
                (format!("run-{}", i + 1), r)
            })
            .collect()
    }

    #[test]
    fn an_aggregate_summarises_each_metric_over_the_runs_and_reads_back_as_a_set() {
        let a = Aggregate::of(&runs(&[300.0, 320.0, 310.0])).unwrap();
        let p99 = &a.metrics["e2e_p99_ms"];
        assert_eq!(p99.values, [300.0, 320.0, 310.0]);
        assert_eq!(p99.median, 310.0);
        assert_eq!(a.metrics["unaccounted"].values, [0.0, 0.0, 0.0]);
        assert_eq!(a.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [7, 8, 9]);
        let text = serde_json::to_string(&a).unwrap();
        assert!(text.contains("\"kind\":\"aggregate\""));
        assert_eq!(Side::from_json(&text).unwrap(), Side::Set(Box::new(a.clone())));
        let single = serde_json::to_string(&sample()).unwrap();
        assert!(matches!(Side::from_json(&single).unwrap(), Side::Run(_)));
        assert!(a.to_markdown().contains("| e2e_p99_ms | 310 | 300 | 320 |"), "{}", a.to_markdown());
    }

    #[test]
    fn runs_of_other_settings_are_not_one_aggregate_and_the_difference_is_named() {
        let mut rs = runs(&[1.0, 2.0]);
        rs[1].1.scenario.settings = serde_json::json!({"processor": {"batch_size": 500}});
        rs[0].1.scenario.settings = serde_json::json!({"processor": {"batch_size": 1000}, "esm": {"invocations": 3}});
        let e = Aggregate::of(&rs).unwrap_err();
        assert!(e.to_string().contains("processor.batch_size: 1000 ≠ 500"), "{e}");
        assert!(!e.to_string().contains("esm"), "what the parts reported is no setting: {e}");
        assert_eq!(Aggregate::of(&[]), Err(AggregateError::Empty));
    }

    #[test]
    fn an_aggregate_of_an_unknown_version_is_refused() {
        let mut v = serde_json::to_value(Aggregate::of(&runs(&[1.0])).unwrap()).unwrap();
        v["schema_version"] = 9.into();
        assert!(Side::from_json(&v.to_string()).unwrap_err().to_string().contains('9'));
    }
}
