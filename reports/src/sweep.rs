//! The result of a `[[sweep]]`: one run a value of the swept key, and
//! latency against throughput across the points, as OpenMessaging
//! Benchmark charts it.
//!
//! Each point reads its run's `result.json` through the metric catalogue:
//! the throughput is `delivered_per_sec` (records created in the measured
//! phases and delivered, over their length), the latencies are catalogued
//! percentiles (`e2e_p50_ms`, `e2e_p99_ms`, `put_record_batch_p99_ms`,
//! `produce_ack_p99_ms`). The chart puts throughput on x and latency on y,
//! one line per percentile through the points in throughput order, each
//! point's tooltip naming its value of the key. No I/O: the CLI reads the
//! runs and writes `result.json`, `report.md` and `sweep.html`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::compare::fmt_num;
use crate::model::{RunResult, SCHEMA_VERSION};
use crate::svg::{Line, LineChart, escape};

/// `result.json`'s `kind` for a sweep.
pub const SWEEP_KIND: &str = "sweep";

/// The latencies each point reports, and their chart colours.
const LATENCIES: [(&str, &str); 4] = [
    ("e2e_p50_ms", "#2ca02c"),
    ("e2e_p99_ms", "#ff7f0e"),
    ("put_record_batch_p99_ms", "#1f77b4"),
    ("produce_ack_p99_ms", "#7f7f7f"),
];

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The swept key's value, as `--set` took it (`2000`, `"20k"`).
    pub value: String,
    /// Its run folder, relative to the sweep's (`point-1`).
    pub dir: String,
    /// Records/s delivered of those created in the measured phases.
    pub delivered_per_sec: f64,
    /// Share (0–1) of the record attempts Firehose throttled.
    pub throttled_ratio: f64,
    /// The latencies of [`LATENCIES`] the run measured, by metric name.
    pub latency_ms: BTreeMap<String, f64>,
    /// Whether every SLO held.
    pub slo_ok: bool,
    /// Whether the run was cut short (Ctrl-C or an aborting SLO).
    pub cut_short: bool,
}

/// A sweep's points, in run order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// [`SWEEP_KIND`].
    pub kind: String,
    /// The scenario's name.
    pub scenario: String,
    /// The swept key.
    pub key: String,
    /// One a value.
    pub points: Vec<SweepPoint>,
}

impl SweepResult {
    /// The sweep of `key` over `runs`: (value, folder, result) in run order.
    pub fn of(scenario: &str, key: &str, runs: &[(String, String, RunResult)]) -> SweepResult {
        let points = runs
            .iter()
            .map(|(value, dir, r)| SweepPoint {
                value: value.clone(),
                dir: dir.clone(),
                delivered_per_sec: r.metric("delivered_per_sec").unwrap_or(0.0),
                throttled_ratio: r.metric("throttled_ratio").unwrap_or(0.0),
                latency_ms: LATENCIES
                    .iter()
                    .filter_map(|(name, _)| r.metric(name).map(|v| ((*name).to_owned(), v)))
                    .collect(),
                slo_ok: r.slo.iter().all(|s| s.ok),
                cut_short: r.scenario.interrupted || r.scenario.aborted.is_some(),
            })
            .collect();
        SweepResult {
            schema_version: SCHEMA_VERSION,
            kind: SWEEP_KIND.to_owned(),
            scenario: scenario.to_owned(),
            key: key.to_owned(),
            points,
        }
    }

    /// One row a point.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {} swept over {}\n\n", self.scenario, self.key);
        let heads: Vec<&str> = LATENCIES.iter().map(|(n, _)| *n).collect();
        let _ = writeln!(
            out,
            "| {} | delivered/s | throttled ratio | {} | SLOs |\n|---|---:|---:|{}---|",
            self.key,
            heads.join(" | "),
            "---:|".repeat(heads.len())
        );
        for p in &self.points {
            let lat: Vec<String> =
                heads.iter().map(|h| p.latency_ms.get(*h).map_or("–".to_owned(), |v| fmt_num(*v))).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {}{} |",
                p.value,
                fmt_num(p.delivered_per_sec),
                fmt_num(p.throttled_ratio),
                lat.join(" | "),
                if p.slo_ok { "held" } else { "**FAILED**" },
                if p.cut_short { " (cut short)" } else { "" }
            );
        }
        out.push_str("\nEach point's run, report and charts are in its folder; `sweep.html` charts latency against throughput.\n");
        out
    }

    /// The latency-against-throughput chart, as an SVG element.
    pub fn chart(&self) -> String {
        let mut order: Vec<&SweepPoint> = self.points.iter().collect();
        order.sort_by(|a, b| a.delivered_per_sec.total_cmp(&b.delivered_per_sec));
        let lines = LATENCIES
            .iter()
            .map(|(name, color)| Line {
                name: (*name).to_owned(),
                color,
                points: order
                    .iter()
                    .filter_map(|p| p.latency_ms.get(*name).map(|v| (p.delivered_per_sec, *v)))
                    .collect(),
            })
            .filter(|l| !l.points.is_empty())
            .collect();
        LineChart {
            title: format!("Latency against throughput, {} swept", self.key),
            x_label: "delivered records/s (measured phases)".into(),
            y_label: "milliseconds".into(),
            lines,
            references: Vec::new(),
            bands: Vec::new(),
            phases: Vec::new(),
            unit: "ms".into(),
            x_unit: "records/s".into(),
        }
        .render()
    }

    /// `sweep.html`: the chart and the table of points.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mskbench sweep: {n}</title><style>\
             body{{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}}\
             table{{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto;max-width:100%}}\
             td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head><body>\n\
             <h1>{n} swept over {k}</h1>\n<figure>{c}</figure>\n<table><tr><th>{k}</th><th>delivered/s</th>",
            n = escape(&self.scenario),
            k = escape(&self.key),
            c = self.chart()
        );
        for (h, _) in LATENCIES {
            let _ = write!(out, "<th>{h}</th>");
        }
        out.push_str("<th>SLOs</th></tr>\n");
        for p in &self.points {
            let _ = write!(out, "<tr><td>{}</td><td>{}</td>", escape(&p.value), fmt_num(p.delivered_per_sec));
            for (h, _) in LATENCIES {
                let _ = write!(out, "<td>{}</td>", p.latency_ms.get(h).map_or("–".to_owned(), |v| fmt_num(*v)));
            }
            let _ = writeln!(out, "<td>{}</td></tr>", if p.slo_ok { "held" } else { "FAILED" });
        }
        out.push_str("</table>\n</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    #[test]
    fn points_read_their_runs_through_the_catalogue_and_chart_in_throughput_order() {
        let (mut slow, fast) = (sample(), sample());
        slow.scenario.duration_s = 20.0;
        let runs =
            vec![("2000".to_owned(), "point-1".to_owned(), fast), ("500".to_owned(), "point-2".to_owned(), slow)];
        let s = SweepResult::of("smoke", "phases.0.rate", &runs);
        assert_eq!(s.points[0].delivered_per_sec, 1000.0);
        assert_eq!(s.points[1].delivered_per_sec, 500.0);
        assert_eq!(s.points[0].latency_ms["e2e_p99_ms"], 310.0);
        assert!(!s.points[0].latency_ms.contains_key("put_record_batch_p99_ms"), "not measured in the sample");
        let md = s.to_markdown();
        assert!(md.contains("| 2000 | 1000 | 0.1 | 100 | 310 | – | 5 | held |"), "{md}");
        let chart = s.chart();
        assert!(chart.contains("<title>e2e_p99_ms at 500 records/s: 310 ms</title>"), "{chart}");
        // Throughput order: the 500/s point first on each line.
        let line = chart.split("<polyline").nth(1).unwrap();
        let xs: Vec<f64> = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["kind"], "sweep");
        assert!(s.to_html().contains("Latency against throughput, phases.0.rate swept"));
    }
}
