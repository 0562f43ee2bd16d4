//! `report.html`: one self-contained page, charts as inline SVG.
//!
//! The charts mirror the Firehose console's monitoring tab — incoming
//! records/s, bytes/s and put requests/s with the quota as a red dashed
//! line — and add what the console cannot show: throttled records and
//! retries over time, end-to-end latency percentiles over time, and the
//! end-to-end latency distribution. No scripts, styles or fonts are
//! fetched: the file can be attached to a CI run and opened anywhere.

use std::fmt::Write as _;

use crate::markdown;
use crate::model::RunResult;
use crate::svg::{Band, BarChart, Line, LineChart, QUOTA_RED, Reference, escape, short_number};

const BLUE: &str = "#1f77b4";
const ORANGE: &str = "#ff7f0e";
const GREEN: &str = "#2ca02c";
const PURPLE: &str = "#9467bd";
const GREY: &str = "#7f7f7f";

fn series(run: &RunResult, f: impl Fn(&crate::model::Sample) -> Option<f64>) -> Vec<(f64, f64)> {
    run.series.iter().filter_map(|s| f(s).map(|v| (s.t as f64, v))).collect()
}

fn line(name: &str, color: &'static str, points: Vec<(f64, f64)>) -> Line {
    Line { name: name.to_owned(), color, points }
}

/// A quota line; `declared` says it is the scenario's declaration, not
/// the quota the endpoint enforced.
fn quota(label: &str, value: Option<f64>, declared: bool) -> Vec<Reference> {
    let kind = if declared { "declared quota (not measured)" } else { "quota" };
    value
        .map(|v| Reference { label: format!("{kind} {} {label}", short_number(v)), value: v, color: QUOTA_RED })
        .into_iter()
        .collect()
}

/// The run's fault windows, as bands on every chart over time.
fn bands(run: &RunResult) -> Vec<Band> {
    run.faults.iter().map(|f| Band { label: f.label(), from: f.from_s, until: f.until_s }).collect()
}

/// The charts of a run, in display order.
fn charts(run: &RunResult) -> Vec<String> {
    let q = run.scenario.quota;
    let declared = q.is_some_and(|q| q.declared);
    let mut record_lines = quota("records/s", q.map(|q| q.records_per_sec), declared);
    if let Some((_, rate)) = run.max_unthrottled().filter(|_| run.saw_throttling()) {
        record_lines.push(Reference {
            label: format!("highest rate without throttling {}/s", short_number(rate)),
            value: rate,
            color: GREEN,
        });
    }
    let mut out = vec![
        LineChart {
            title: "Incoming records per second".into(),
            x_label: "seconds since start".into(),
            y_label: "records/s".into(),
            lines: vec![
                // Attempts, as a quota sees them; what the console's
                // IncomingRecords counts is what was ingested: "accepted".
                line(
                    "attempts (throttled and retried too)",
                    BLUE,
                    series(run, |s| Some((s.records_accepted + s.records_throttled) as f64)),
                ),
                line(
                    "accepted (the console's IncomingRecords)",
                    GREEN,
                    series(run, |s| Some(s.records_accepted as f64)),
                ),
                line("produced", GREY, series(run, |s| Some(s.produced as f64))),
            ],
            references: record_lines,
            bands: bands(run),
        }
        .render(),
        LineChart {
            title: "Incoming bytes per second".into(),
            x_label: "seconds since start".into(),
            y_label: "bytes/s".into(),
            lines: vec![line("bytes", BLUE, series(run, |s| Some(s.bytes as f64)))],
            references: quota("bytes/s", q.map(|q| q.bytes_per_sec), declared),
            bands: bands(run),
        }
        .render(),
        LineChart {
            title: "Put requests per second".into(),
            x_label: "seconds since start".into(),
            y_label: "requests/s".into(),
            lines: vec![line("PutRecordBatch calls", BLUE, series(run, |s| Some(s.firehose_calls as f64)))],
            references: quota("requests/s", q.map(|q| q.requests_per_sec), declared),
            bands: bands(run),
        }
        .render(),
        LineChart {
            title: "Throttling and retries".into(),
            x_label: "seconds since start".into(),
            y_label: "per second".into(),
            lines: vec![
                line("throttled records", ORANGE, series(run, |s| Some(s.records_throttled as f64))),
                line("throttled calls", PURPLE, series(run, |s| Some(s.throttled_calls as f64))),
                line("retries", BLUE, series(run, |s| Some(s.retries as f64))),
                line("in flight", GREY, series(run, |s| Some(s.in_flight as f64))),
            ],
            references: vec![],
            bands: bands(run),
        }
        .render(),
    ];
    let e2e = |f: fn(&crate::model::Percentiles) -> f64| series(run, move |s| s.e2e_ms.as_ref().map(f));
    if run.series.iter().any(|s| s.e2e_ms.is_some()) {
        out.push(
            LineChart {
                title: "End-to-end latency over time".into(),
                x_label: "seconds since start".into(),
                y_label: "milliseconds".into(),
                lines: vec![
                    line("p50", GREEN, e2e(|p| p.p50)),
                    line("p99", ORANGE, e2e(|p| p.p99)),
                    line("max", PURPLE, e2e(|p| p.max)),
                ],
                references: vec![],
                bands: bands(run),
            }
            .render(),
        );
    }
    for (measure, p) in &run.latency_ms {
        out.push(
            BarChart {
                title: format!("{measure} latency distribution"),
                y_label: "milliseconds".into(),
                bars: p.named().iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            }
            .render(),
        );
    }
    out
}

/// Markdown's `**bold**` spans as `<b>`, in already escaped text.
fn bold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<b>{part}</b>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Renders the HTML report of a run.
pub fn render(run: &RunResult) -> String {
    let mut out = String::new();
    let title = format!("mskbench run: {}", run.scenario.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}.failed{{color:#d62728;font-weight:bold}}\
         figure{{margin:1.5em 0}}</style></head><body>\n",
        escape(&title)
    );
    // The Markdown summary's tables, as HTML.
    let md = markdown::render(run);
    let mut in_table = false;
    for text in md.lines() {
        if let Some(h) = text.strip_prefix("# ") {
            let _ = writeln!(out, "<h1>{}</h1>", escape(h));
        } else if let Some(h) = text.strip_prefix("## ") {
            let _ = writeln!(out, "<h2>{}</h2>", escape(h));
        } else if text.starts_with('|') {
            let cells: Vec<&str> = text.trim_matches('|').split('|').map(str::trim).collect();
            if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':'))) {
                continue;
            }
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                out.push_str("<table>");
                in_table = true;
            }
            out.push_str("<tr>");
            for cell in cells {
                let plain = cell.trim_matches('`').replace("**", "");
                let class = if cell.contains("FAILED") { " class=\"failed\"" } else { "" };
                let _ = write!(out, "<{tag}{class}>{}</{tag}>", escape(&plain));
            }
            out.push_str("</tr>\n");
        } else {
            if in_table {
                out.push_str("</table>\n");
                in_table = false;
            }
            if !text.is_empty() {
                let _ = writeln!(out, "<p>{}</p>", bold(&escape(&text.replace('`', ""))));
            }
        }
    }
    if in_table {
        out.push_str("</table>\n");
    }
    out.push_str("<h2>Charts</h2>\n");
    for chart in charts(run) {
        let _ = writeln!(out, "<figure>{chart}</figure>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    #[test]
    fn page_is_self_contained_with_quota_lines_and_all_charts() {
        let html = render(&sample());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script") && !html.contains("src=\"http"), "no external resources");
        assert_eq!(html.matches("<svg").count(), 7, "4 rate charts, e2e over time, 2 distributions");
        assert!(html.contains("quota 900 records/s"));
        assert!(html.contains("quota 5.24M bytes/s"));
        assert!(html.contains("quota 2k requests/s"));
        assert!(html.contains("<h2>Records</h2>"));
    }

    #[test]
    fn fault_windows_are_shaded_on_every_chart_over_time_and_listed() {
        let html = render(&crate::model::tests::sample_with_fault());
        // 5 charts over time, each with the band and its label.
        assert_eq!(html.matches("<title>firehose_down (http_503)</title></rect>").count(), 5, "{html}");
        assert!(html.contains("<td>firehose_down (http_503)</td><td>3.0–5.0</td><td>answered_5xx 12</td>"), "{html}");
        assert!(!render(&sample()).contains("fill-opacity=\"0.45\""), "no bands without faults");
    }

    #[test]
    fn scenario_names_are_escaped() {
        let mut run = sample();
        run.scenario.name = "<script>alert(1)</script>".into();
        assert!(!render(&run).contains("<script>"));
    }
}
