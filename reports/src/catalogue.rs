//! The metric catalogue: every flat metric name, in one table.
//!
//! A metric is one number read off a [`RunResult`]: a record count of
//! `totals` (`unaccounted`), a value derived from the totals and the series
//! (`throttled_ratio`), or a latency percentile `<measure>_<percentile>_ms`
//! (`e2e_p99_ms`). Each row of [`METRICS`] says what the number counts, in
//! which unit and over which part of the run; which way is better and how
//! `mskbench compare` judges a change; and how to read it off a result.
//! The latency family is the product of [`MEASURES`] and the percentiles of
//! [`Percentiles::named`].
//!
//! Everything that names metrics derives from here: `RunResult::metric`,
//! the names an SLO may use and the list its error message gives
//! ([`crate::slo`]), `compare`'s fixed rows, in table order
//! ([`mod@crate::compare`]), and the column heads of the Markdown report's
//! record table ([`crate::markdown`]). Adding a metric is one row here, plus
//! producing its value: a new [`Totals`](crate::model::Totals) field the
//! harness fills (and names in `Totals::named`), or a function of what a
//! result already holds. Tests check that the names are unique, that every
//! row resolves on a sample run, that SLOs take exactly these names, and
//! (in `scenarios/`) that `scenarios/README.md` lists them all.
//!
//! Windows: totals count the whole run, warm-up phases included;
//! `duration_s` is the measured part; latency distributions hold the
//! records of the measured part only. This module depends on the model and
//! nothing else, so the model, SLOs, comparison and reports all read it
//! without import cycles.

use crate::model::{Percentiles, RunResult, UNTHROTTLED_WINDOW_S};

/// Which way a metric should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller is better (latency, loss, throttling).
    Lower,
    /// Larger is better (delivered rate and share).
    Higher,
}

impl Better {
    /// The word `compare`'s table uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
        }
    }
}

/// Whether and how `mskbench compare` judges a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Left out of the comparison: a count of load or time, not of quality.
    No,
    /// Regresses when it moves against `Better` by more than the threshold,
    /// relative to the base (or at all, from a base of zero).
    BeyondThreshold(Better),
    /// Regresses on any move against `Better`, whatever the threshold:
    /// "no data lost" is not a percentage.
    AnyWorse(Better),
    /// [`Compare::BeyondThreshold`] when both runs measured it; a run that
    /// did not (its value is `None`) leaves the row unjudged, neither
    /// missing nor a regression.
    WhenMeasured(Better),
    /// [`Compare::AnyWorse`] for a count that should stay zero: its row
    /// (in `compare` and in the report's record table) appears only when a
    /// run has a nonzero value, since `0 → 0` says nothing.
    AnyWorseWhenSeen(Better),
}

impl Compare {
    /// Whether a metric judged this way is worth a row at `values`.
    pub(crate) fn shown(self, values: &[f64]) -> bool {
        !matches!(self, Compare::AnyWorseWhenSeen(_)) || values.iter().any(|&v| v != 0.0)
    }
}

/// One row of the catalogue.
#[derive(Debug)]
pub struct Metric {
    /// The flat name SLOs and `compare` use; for a total, its `totals` key.
    pub name: &'static str,
    /// How a report heads it (the Markdown record table shows the totals).
    pub label: &'static str,
    /// What it counts, in which unit, over which part of the run.
    pub about: &'static str,
    /// How `mskbench compare` judges it.
    pub compare: Compare,
    /// Whether a run knows it while it runs, from its live counters and
    /// the series so far: an SLO marked `abort = true` may name only
    /// these. The rest need the read-back (`unaccounted`) or the whole
    /// measured window (`delivered_per_sec`).
    pub live: bool,
    /// Its value in a run; `None` when the run did not measure it (an SLO
    /// on it then fails, and `compare` leaves it unjudged).
    pub value: fn(&RunResult) -> Option<f64>,
}

/// Every metric a run has, whatever it measured. The order is
/// `mskbench compare`'s row order and the SLO error message's.
pub static METRICS: &[Metric] = &[
    // What went through.
    Metric {
        name: "produced",
        label: "produced",
        about: "records the producer sent and the broker acknowledged, whole run",
        compare: Compare::No,
        live: true,
        value: |r| Some(count(r.totals.produced)),
    },
    Metric {
        name: "delivered",
        label: "delivered",
        about: "produced records found in a delivered S3 object (first copies), whole run",
        compare: Compare::No,
        live: false,
        value: |r| Some(count(r.totals.delivered)),
    },
    Metric {
        name: "delivered_measured",
        label: "delivered, measured phases",
        about: "delivered records created in the measured phases (warm-up excluded); null in results \
                written before it was counted",
        compare: Compare::No,
        live: false,
        value: |r| r.totals.delivered_measured.map(count),
    },
    Metric {
        name: "delivered_per_sec",
        label: "delivered per second",
        about: "records/s: records created in the measured phases and delivered (totals.delivered_measured), \
                divided by duration_s, the measured phases' length",
        compare: Compare::BeyondThreshold(Better::Higher),
        live: false,
        value: |r| {
            // Results written before `delivered_measured` divide the whole run's count.
            let delivered = r.totals.delivered_measured.unwrap_or(r.totals.delivered);
            Some(if r.scenario.duration_s > 0.0 { count(delivered) / r.scenario.duration_s } else { 0.0 })
        },
    },
    Metric {
        name: "delivered_ratio",
        label: "delivered ratio",
        about: "share (0–1) of produced records delivered, whole run",
        compare: Compare::BeyondThreshold(Better::Higher),
        live: false,
        value: |r| Some(ratio(r.totals.delivered, r.totals.produced)),
    },
    Metric {
        name: "max_unthrottled_per_sec",
        label: "highest unthrottled rate",
        about: "records/s: the best mean of records accepted over 3 consecutive seconds with nothing throttled \
                (RunResult::max_unthrottled), 0 when there is none; a capacity only when the run was \
                throttled at all, so not measured (null) in a run that never was, nor in one whose harness \
                saturated (harness_saturated)",
        compare: Compare::WhenMeasured(Better::Higher),
        live: false,
        value: |r| {
            (r.saw_throttling() && r.harness_saturated.is_none())
                .then(|| r.max_unthrottled().map_or(0.0, |(_, rate)| rate))
        },
    },
    // What was lost.
    Metric {
        name: "unaccounted",
        label: "unaccounted",
        about: "produced records found neither delivered nor dead-lettered, whole run",
        compare: Compare::AnyWorse(Better::Lower),
        live: false,
        value: |r| Some(count(r.totals.unaccounted)),
    },
    Metric {
        name: "dead_lettered",
        label: "dead-lettered",
        about: "produced records found in the dead-letter destination, whole run",
        compare: Compare::AnyWorse(Better::Lower),
        live: true,
        value: |r| Some(count(r.totals.dead_lettered)),
    },
    Metric {
        name: "on_failure",
        label: "on-failure",
        about: "produced records found only in the event source mapping's on-failure destination, whole run",
        compare: Compare::AnyWorseWhenSeen(Better::Lower),
        live: false,
        value: |r| Some(count(r.totals.on_failure)),
    },
    Metric {
        name: "duplicates",
        label: "duplicates",
        about: "delivered copies beyond the first of a record, whole run",
        compare: Compare::AnyWorse(Better::Lower),
        live: false,
        value: |r| Some(count(r.totals.duplicates)),
    },
    Metric {
        name: "multiple_outcomes",
        label: "multiple outcomes",
        about: "records delivered and dead-lettered, or dead-lettered more than once, whole run",
        compare: Compare::AnyWorseWhenSeen(Better::Lower),
        live: false,
        value: |r| Some(count(r.totals.multiple_outcomes)),
    },
    Metric {
        name: "failed_in_topic",
        label: "failed in topic",
        about: "records the producer saw fail that the topic holds all the same (accounted beside produced), \
                whole run",
        compare: Compare::AnyWorseWhenSeen(Better::Lower),
        live: false,
        value: |r| Some(count(r.totals.failed_in_topic)),
    },
    // What the scenario did to the pipeline.
    Metric {
        name: "fault_windows",
        label: "fault windows",
        about: "faults the run injected ([[faults]] entries run), whole run",
        compare: Compare::No,
        live: false,
        value: |r| Some(count(r.faults.len() as u64)),
    },
    // How hard Firehose pushed back.
    Metric {
        name: "throttled_records",
        label: "throttled records",
        about: "record attempts Firehose throttled inside a successful PutRecordBatch call, whole run",
        compare: Compare::No,
        live: true,
        value: |r| Some(count(r.totals.throttled_records)),
    },
    Metric {
        name: "throttled_ratio",
        label: "throttled ratio",
        about: "share (0–1) of the record attempts Firehose saw that it throttled, whole run",
        compare: Compare::BeyondThreshold(Better::Lower),
        live: true,
        value: |r| {
            let attempts: u64 = r.series.iter().map(|s| s.records_accepted + s.records_throttled).sum();
            Some(ratio(r.totals.throttled_records, attempts))
        },
    },
    Metric {
        name: "throttled_calls",
        label: "throttled calls",
        about: "PutRecordBatch calls Firehose refused whole as throttled, whole run",
        compare: Compare::BeyondThreshold(Better::Lower),
        live: true,
        value: |r| Some(count(r.totals.throttled_calls)),
    },
    Metric {
        name: "retries",
        label: "retries",
        about: "records sent again in retry calls, whole run",
        compare: Compare::BeyondThreshold(Better::Lower),
        live: true,
        value: |r| Some(count(r.totals.retries)),
    },
    // How long.
    Metric {
        name: "duration_s",
        label: "duration",
        about: "seconds: the measured part of the run",
        compare: Compare::No,
        live: false,
        value: |r| Some(r.scenario.duration_s),
    },
    // What it would cost (estimates, result.json's `cost`).
    Metric {
        name: "billed_ingestion_gb",
        label: "billed ingestion GB",
        about: "GB (2^30 bytes) Firehose bills for the records it accepted, each rounded up to 5 KB, whole run; \
                null in results without a cost section",
        compare: Compare::No,
        live: false,
        value: |r| r.cost.as_ref().map(|c| c.billed_ingestion_gb),
    },
    Metric {
        name: "lambda_gb_seconds",
        label: "Lambda GB-seconds",
        about: "the invocations' durations times the [cost] memory size, GB-s, whole run; null in results \
                without a cost section",
        compare: Compare::No,
        live: false,
        value: |r| r.cost.as_ref().map(|c| c.lambda_gb_seconds),
    },
    Metric {
        name: "cost_usd",
        label: "cost (USD, estimate)",
        about: "Firehose ingestion plus Lambda requests and duration at the [cost] prices, USD, whole run: an \
                estimate; null in results without a cost section",
        compare: Compare::No,
        live: false,
        value: |r| r.cost.as_ref().map(|c| c.total_usd),
    },
    Metric {
        name: "usd_per_million_delivered",
        label: "USD per million delivered",
        about: "cost_usd per million records delivered (first copies), whole run: an estimate; null without \
                a cost section or with nothing delivered",
        compare: Compare::BeyondThreshold(Better::Lower),
        live: false,
        value: |r| r.cost.as_ref().and_then(|c| c.usd_per_million_delivered),
    },
];

// `max_unthrottled_per_sec`'s text names the window: change both together.
const _: () = assert!(UNTHROTTLED_WINDOW_S == 3);

fn count(n: u64) -> f64 {
    n as f64
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// A latency distribution the run records, `latency_ms`'s key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// The key in `latency_ms` and the first part of its metric names.
    pub name: &'static str,
    /// From when to when, and which records.
    pub about: &'static str,
    /// Whether a run knows it while it runs (see [`Metric::live`]).
    pub live: bool,
}

/// The producer's acknowledgement latency.
pub const PRODUCE_ACK: Measure = Measure {
    name: "produce_ack",
    about: "ms from a record's intended send time to the broker's acknowledgement, measured phases",
    live: false,
};

/// One `PutRecordBatch` call's round trip.
pub const PUT_RECORD_BATCH: Measure = Measure {
    name: "put_record_batch",
    about: "ms from a PutRecordBatch call's start to its response, measured phases",
    live: true,
};

/// End to end, Kafka to S3.
pub const E2E: Measure = Measure {
    name: "e2e",
    about: "ms from a record's Kafka timestamp to the write of the S3 object holding its first copy, \
            records created in the measured phases",
    live: false,
};

/// Every measure a run can record; each has the metrics
/// `<measure>_<percentile>_ms` for the percentiles of [`Percentiles::named`].
pub static MEASURES: [Measure; 3] = [PRODUCE_ACK, PUT_RECORD_BATCH, E2E];

/// How `mskbench compare` judges every latency percentile.
pub(crate) const LATENCY_COMPARE: Compare = Compare::BeyondThreshold(Better::Lower);

/// The percentile keys (`p50` … `max`), in order.
pub(crate) fn percentile_keys() -> impl Iterator<Item = &'static str> {
    Percentiles::default().named().into_iter().map(|(key, _)| key)
}

/// The name of a latency metric.
pub(crate) fn latency_name(measure: &str, percentile: &str) -> String {
    format!("{measure}_{percentile}_ms")
}

/// A latency metric name split into its measure and percentile key, when
/// its percentile is one of [`Percentiles::named`]'s; the measure may be any.
pub(crate) fn split_latency(name: &str) -> Option<(&str, &str)> {
    let (measure, percentile) = name.strip_suffix("_ms")?.rsplit_once('_')?;
    (!measure.is_empty() && percentile_keys().any(|k| k == percentile)).then_some((measure, percentile))
}

/// The row named `name`.
pub(crate) fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// True when an SLO may name `name`: a row of [`METRICS`], or a percentile
/// of one of [`MEASURES`].
pub(crate) fn is_known(name: &str) -> bool {
    metric(name).is_some() || split_latency(name).is_some_and(|(measure, _)| MEASURES.iter().any(|m| m.name == measure))
}

/// True when a run knows `name` while it runs ([`Metric::live`],
/// [`Measure::live`]): what an SLO with `abort = true` may name.
pub fn is_live(name: &str) -> bool {
    metric(name).map_or_else(
        || split_latency(name).is_some_and(|(measure, _)| MEASURES.iter().any(|m| m.name == measure && m.live)),
        |m| m.live,
    )
}

/// Every name an SLO with `abort = true` may use, as an error message lists them.
pub fn live_names() -> String {
    let fixed: Vec<&str> = METRICS.iter().filter(|m| m.live).map(|m| m.name).collect();
    let measures: Vec<&str> = MEASURES.iter().filter(|m| m.live).map(|m| m.name).collect();
    let percentiles: Vec<&str> = percentile_keys().collect();
    format!("{}, {}_<{}>_ms", fixed.join(", "), measures.join("|"), percentiles.join("|"))
}

/// Every name an SLO may use, as an error message lists them.
pub(crate) fn known_names() -> String {
    let fixed: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    let measures: Vec<&str> = MEASURES.iter().map(|m| m.name).collect();
    let percentiles: Vec<&str> = percentile_keys().collect();
    format!("{}, <{}>_<{}>_ms", fixed.join(", "), measures.join("|"), percentiles.join("|"))
}

impl RunResult {
    /// The flat metric `name`, if the run has it: a row of [`METRICS`], or a
    /// percentile of a measure in `latency_ms` (of any name: results are
    /// read as they were written).
    pub(crate) fn metric(&self, name: &str) -> Option<f64> {
        if let Some(m) = metric(name) {
            return (m.value)(self);
        }
        let (measure, percentile) = split_latency(name)?;
        let p = self.latency_ms.get(measure)?;
        p.named().into_iter().find(|(k, _)| *k == percentile).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::Totals;
    use crate::model::tests::sample;

    const COST_METRICS: [&str; 4] =
        ["billed_ingestion_gb", "lambda_gb_seconds", "cost_usd", "usd_per_million_delivered"];

    /// Every name a run answers: the rows, then each measure's percentiles.
    fn names(run: &RunResult) -> Vec<String> {
        let mut names: Vec<String> = METRICS.iter().map(|m| m.name.to_owned()).collect();
        for measure in run.latency_ms.keys() {
            names.extend(percentile_keys().map(|p| latency_name(measure, p)));
        }
        names
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(m.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", m.name);
            assert!(split_latency(m.name).is_none(), "{} reads as a latency name", m.name);
            assert!(!m.about.is_empty() && !m.label.is_empty(), "{}", m.name);
        }
        let measures: BTreeSet<&str> = MEASURES.iter().map(|m| m.name).collect();
        assert_eq!(measures.len(), MEASURES.len());
        assert!(measures.iter().all(|m| metric(m).is_none()));
    }

    #[test]
    fn every_metric_resolves_on_a_sample_run() {
        let run = sample();
        for m in METRICS {
            let v = run.metric(m.name);
            assert!(v.is_some_and(f64::is_finite), "{}: {v:?}", m.name);
        }
        for name in names(&run) {
            assert!(run.metric(&name).is_some(), "{name}");
        }
        assert_eq!(run.metric("e2e_p999_ms"), Some(400.0));
        // An empty run divides by nothing.
        let mut empty = sample();
        (empty.totals, empty.series, empty.scenario.duration_s) = (Totals::default(), Vec::new(), 0.0);
        assert!(
            METRICS
                .iter()
                .filter(|m| !["max_unthrottled_per_sec", "delivered_measured"].contains(&m.name))
                .filter(|m| !COST_METRICS.contains(&m.name))
                .all(|m| empty.metric(m.name) == Some(0.0))
        );
        // The cost estimates are read off the cost section: without one, unmeasured.
        empty.cost = None;
        assert!(COST_METRICS.iter().all(|name| empty.metric(name).is_none()));
        assert_eq!(empty.metric("max_unthrottled_per_sec"), None, "nothing throttled: no capacity found");
        assert_eq!(empty.metric("delivered_measured"), None, "not counted in this result");
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
        for name in names(&r) {
            assert!(r.metric(&name).is_some(), "{name}");
            assert!(is_known(&name), "{name}");
        }
        assert!(is_known("put_record_batch_p999_ms"));
        assert!(!is_known("throttle_ratio"));
    }

    #[test]
    fn live_metrics_are_the_counters_and_call_latency() {
        for name in ["produced", "throttled_ratio", "retries", "dead_lettered", "put_record_batch_p99_ms"] {
            assert!(is_live(name), "{name}");
        }
        for name in ["unaccounted", "delivered_per_sec", "e2e_p99_ms", "produce_ack_p50_ms", "nope", "duration_s"] {
            assert!(!is_live(name), "{name}");
        }
        assert_eq!(
            live_names(),
            "produced, dead_lettered, throttled_records, throttled_ratio, throttled_calls, retries, \
             put_record_batch_<p50|p90|p99|p999|max>_ms"
        );
    }

    #[test]
    fn totals_are_named_in_result_json_order_and_catalogued() {
        let t = Totals { produced: 1, delivered: 2, dead_lettered: 3, unaccounted: 4, ..Totals::default() };
        let json = serde_json::to_string(&t).unwrap();
        let mut at = 0;
        for (key, value) in t.named() {
            let found = json[at..].find(&format!("\"{key}\":{value}")).unwrap_or_else(|| panic!("{key} in {json}"));
            at += found;
        }
        assert_eq!(json.matches("\":").count(), t.named().len(), "every key of {json} is named");
        // …and each has a row reading that very field.
        let run = RunResult { totals: t, ..sample() };
        for (key, value) in t.named() {
            assert!(metric(key).is_some_and(|m| (m.value)(&run) == Some(value as f64)), "{key}");
        }
    }
}
