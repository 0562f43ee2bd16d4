//! `report.html`: one self-contained page, charts as inline SVG.
//!
//! The charts mirror the Firehose console's monitoring tab — incoming
//! records/s, bytes/s and put requests/s with the quota as a red dashed
//! line — and add what the console cannot show: throttled records and
//! retries over time, the event source mapping's lag, invocations' batch
//! size and duration, the producer's send delay, `PutRecordBatch` and
//! end-to-end latency over time,
//! and each latency distribution as a percentile curve (HdrHistogram /
//! OpenMessaging Benchmark style: a log-scaled "1 − quantile" axis from p0
//! to p99.99). Charts over time shade the run's phases grey and its fault
//! windows red. [`compare_page`] overlays the curves of several runs (the
//! two sides of `mskbench compare --html`). No scripts, styles or fonts
//! are fetched: the file can be attached to a CI run and opened anywhere.

use std::fmt::Write as _;

use crate::markdown;
use crate::model::RunResult;
use crate::svg::{Band, BarChart, Line, LineChart, PercentileChart, QUOTA_RED, Reference, escape, short_number};

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

/// The run's phases and drain, shaded behind every chart over time.
fn phases(run: &RunResult) -> Vec<Band> {
    run.phases
        .iter()
        .map(|p| Band {
            label: if p.measured || p.name == "drain" { p.name.clone() } else { format!("{} (not measured)", p.name) },
            from: p.from_s,
            until: p.until_s,
        })
        .collect()
}

/// A chart over time of this run, with its phases and fault windows.
fn over_time(
    run: &RunResult,
    title: &str,
    y_label: &str,
    unit: &str,
    lines: Vec<Line>,
    references: Vec<Reference>,
) -> String {
    LineChart {
        title: title.into(),
        x_label: "seconds since start".into(),
        y_label: y_label.into(),
        lines,
        references,
        bands: bands(run),
        phases: phases(run),
        unit: unit.into(),
        x_unit: "s".into(),
    }
    .render()
}

/// Per-second percentiles `f` of a series, as p50 and p99 lines.
fn p50_p99(run: &RunResult, f: fn(&crate::model::Sample) -> Option<&crate::model::Percentiles>) -> Vec<Line> {
    vec![
        line("p50", GREEN, series(run, move |s| f(s).map(|p| p.p50))),
        line("p99", ORANGE, series(run, move |s| f(s).map(|p| p.p99))),
    ]
}

/// The measures' percentile curves of one run, each `(measure, points)`.
fn curves(run: &RunResult) -> impl Iterator<Item = (&str, Vec<(f64, f64)>)> {
    run.latency_curve_ms.iter().map(|(m, points)| (m.as_str(), points.iter().map(|p| (p[0], p[1])).collect()))
}

/// The charts of a run, in display order.
fn charts(run: &RunResult) -> Vec<String> {
    let q = run.scenario.quota;
    let declared = q.is_some_and(|q| q.declared);
    let mut record_lines = quota("records/s", q.map(|q| q.records_per_sec), declared);
    if let Some((_, rate)) = run.max_unthrottled().filter(|_| run.saw_throttling() && run.harness_saturated.is_none()) {
        record_lines.push(Reference {
            label: format!("highest rate without throttling {}/s", short_number(rate)),
            value: rate,
            color: GREEN,
        });
    }
    let mut out = vec![
        // Attempts, as a quota sees them; what the console's IncomingRecords
        // counts is what was ingested: "accepted".
        over_time(
            run,
            "Incoming records per second",
            "records/s",
            "records/s",
            vec![
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
            record_lines,
        ),
        over_time(
            run,
            "Incoming bytes per second",
            "bytes/s",
            "bytes/s",
            vec![line("bytes", BLUE, series(run, |s| Some(s.bytes as f64)))],
            quota("bytes/s", q.map(|q| q.bytes_per_sec), declared),
        ),
        over_time(
            run,
            "Put requests per second",
            "requests/s",
            "requests/s",
            vec![line("PutRecordBatch calls", BLUE, series(run, |s| Some(s.firehose_calls as f64)))],
            quota("requests/s", q.map(|q| q.requests_per_sec), declared),
        ),
        over_time(
            run,
            "Throttling and retries",
            "per second",
            "",
            vec![
                line("throttled records", ORANGE, series(run, |s| Some(s.records_throttled as f64))),
                line("throttled calls", PURPLE, series(run, |s| Some(s.throttled_calls as f64))),
                line("retries", BLUE, series(run, |s| Some(s.retries as f64))),
                line("in flight", GREY, series(run, |s| Some(s.in_flight as f64))),
            ],
            vec![],
        ),
    ];
    // Series recorded since mskbench kept them; older results have zeros or nothing.
    if run.series.iter().any(|s| s.lag > 0 || s.invocations > 0) {
        out.push(over_time(
            run,
            "Event source mapping lag (OffsetLag)",
            "records",
            "records",
            vec![line("acknowledged, not yet handed to an invocation", BLUE, series(run, |s| Some(s.lag as f64)))],
            vec![],
        ));
        out.push(over_time(
            run,
            "Batch size: records per invocation",
            "records",
            "records per invocation",
            vec![line(
                "mean of the invocations started in the second",
                BLUE,
                series(run, |s| (s.invocations > 0).then(|| s.consumed as f64 / s.invocations as f64)),
            )],
            vec![],
        ));
    }
    if run.series.iter().any(|s| s.invocation_ms.is_some()) {
        out.push(over_time(
            run,
            "Invocation duration",
            "milliseconds",
            "ms",
            p50_p99(run, |s| s.invocation_ms.as_ref()),
            vec![],
        ));
    }
    if run.series.iter().any(|s| s.put_record_batch_ms.is_some()) {
        out.push(over_time(
            run,
            "PutRecordBatch latency over time",
            "milliseconds",
            "ms",
            p50_p99(run, |s| s.put_record_batch_ms.as_ref()),
            vec![],
        ));
    }
    if run.series.iter().any(|s| s.send_delay_ms.is_some()) {
        out.push(over_time(
            run,
            "Producer send delay (actual − intended send time)",
            "milliseconds",
            "ms",
            vec![
                line("p50", GREEN, series(run, |s| s.send_delay_ms.as_ref().map(|p| p.p50))),
                line("p99", ORANGE, series(run, |s| s.send_delay_ms.as_ref().map(|p| p.p99))),
                line("max", PURPLE, series(run, |s| s.send_delay_ms.as_ref().map(|p| p.max))),
            ],
            vec![],
        ));
    }
    let e2e = |f: fn(&crate::model::Percentiles) -> f64| series(run, move |s| s.e2e_ms.as_ref().map(f));
    if run.series.iter().any(|s| s.e2e_ms.is_some()) {
        out.push(over_time(
            run,
            "End-to-end latency over time",
            "milliseconds",
            "ms",
            vec![
                line("p50", GREEN, e2e(|p| p.p50)),
                line("p99", ORANGE, e2e(|p| p.p99)),
                line("max", PURPLE, e2e(|p| p.max)),
            ],
            vec![],
        ));
    }
    for (measure, points) in curves(run) {
        out.push(
            PercentileChart {
                title: format!("{measure} latency by percentile"),
                y_label: "ms".into(),
                lines: vec![line(measure, BLUE, points)],
            }
            .render(),
        );
    }
    // Measures without a curve (results written before curves were kept): their percentiles.
    for (measure, p) in run.latency_ms.iter().filter(|(m, _)| !run.latency_curve_ms.contains_key(*m)) {
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

/// The run's charts as `<figure>`s, for a page of someone else's: the
/// live dashboard of `mskbench run --serve-dashboard` draws the series so
/// far with the very charts of `report.html`.
pub fn chart_figures(run: &RunResult) -> String {
    let mut out = String::new();
    for chart in charts(run) {
        let _ = writeln!(out, "<figure>{chart}</figure>");
    }
    out
}

/// The colours of the runs of a comparison: the base side's blues, the candidate's oranges.
const BASE_COLORS: [&str; 5] = ["#1f77b4", "#4a90c8", "#7badd9", "#0f4c81", "#a6c8e8"];
const CANDIDATE_COLORS: [&str; 5] = ["#ff7f0e", "#e8590c", "#ffa94d", "#c24100", "#ffc078"];

/// `mskbench compare --html`: the comparison's Markdown table, then each
/// measure's percentile curves with every run of both sides overlaid
/// (`base` and `candidate` are the runs of each side, labelled).
pub fn compare_page(table_md: &str, base: &[(String, &RunResult)], candidate: &[(String, &RunResult)]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mskbench compare</title><style>\
         body{{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto;max-width:100%}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}figure{{margin:1.5em 0}}</style></head><body>\n"
    );
    markdown_to_html(table_md, &mut out);
    out.push_str("<h2>Latency by percentile</h2>\n");
    let mut measures: Vec<&str> =
        base.iter().chain(candidate).flat_map(|(_, r)| r.latency_curve_ms.keys().map(String::as_str)).collect();
    measures.sort_unstable();
    measures.dedup();
    if measures.is_empty() {
        out.push_str("<p>Neither side kept percentile curves (results written before mskbench kept them).</p>\n");
    }
    for measure in measures {
        let mut lines = Vec::new();
        for (runs, colors) in [(base, &BASE_COLORS), (candidate, &CANDIDATE_COLORS)] {
            for (i, (label, run)) in runs.iter().enumerate() {
                if let Some(points) = run.latency_curve_ms.get(measure) {
                    lines.push(line(label, colors[i % colors.len()], points.iter().map(|p| (p[0], p[1])).collect()));
                }
            }
        }
        let chart = PercentileChart { title: format!("{measure} latency by percentile"), y_label: "ms".into(), lines };
        let _ = writeln!(out, "<figure>{}</figure>", chart.render());
    }
    out.push_str("</body></html>\n");
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

/// Markdown of the kind the reports write (headings, tables, paragraphs
/// with `**bold**`) as HTML.
fn markdown_to_html(md: &str, out: &mut String) {
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
}

/// Renders the HTML report of a run.
pub fn render(run: &RunResult) -> String {
    let mut out = String::new();
    let title = format!("mskbench run: {}", run.scenario.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto;max-width:100%}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}.failed{{color:#d62728;font-weight:bold}}\
         figure{{margin:1.5em 0}}</style></head><body>\n",
        escape(&title)
    );
    // The Markdown summary's tables, as HTML.
    markdown_to_html(&markdown::render(run), &mut out);
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
        assert_eq!(html.matches("<svg").count(), 7, "4 rate charts, e2e over time, e2e's curve, produce_ack's bars");
        assert!(html.contains("e2e latency by percentile") && html.contains("produce_ack latency distribution"));
        // Phases shaded on the 5 charts over time, the warm-up said to be unmeasured.
        assert_eq!(html.matches("<title>steady: 2–8 s</title></rect>").count(), 5, "{html}");
        assert_eq!(html.matches("<title>warm-up (not measured): 0–2 s</title></rect>").count(), 5);
        assert!(html.contains("quota 900 records/s"));
        assert!(html.contains("quota 5.24M bytes/s"));
        assert!(html.contains("quota 2k requests/s"));
        assert!(html.contains("<h2>Records</h2>"));
    }

    #[test]
    fn fault_windows_are_shaded_on_every_chart_over_time_and_listed() {
        let html = render(&crate::model::tests::sample_with_fault());
        // 5 charts over time, each with the band and its label.
        assert_eq!(html.matches("<title>firehose_down (http_503): 3–5 s</title></rect>").count(), 5, "{html}");
        assert!(html.contains("<td>firehose_down (http_503)</td><td>3.0–5.0</td><td>answered_5xx 12</td>"), "{html}");
        assert!(!render(&sample()).contains("fill-opacity=\"0.45\""), "no bands without faults");
    }

    #[test]
    fn scenario_names_are_escaped() {
        let mut run = sample();
        run.scenario.name = "<script>alert(1)</script>".into();
        assert!(!render(&run).contains("<script>"));
    }

    #[test]
    fn newer_series_add_lag_batch_size_duration_call_latency_and_send_delay_charts() {
        let mut run = sample();
        for s in &mut run.series {
            (s.lag, s.invocations) = (40, 2);
            s.invocation_ms = Some(crate::model::Percentiles { p50: 30.0, p99: 80.0, ..Default::default() });
            s.put_record_batch_ms = Some(crate::model::Percentiles { p50: 5.0, p99: 9.0, ..Default::default() });
            s.send_delay_ms = Some(crate::model::Percentiles { p50: 0.1, p99: 2.5, max: 7.0, ..Default::default() });
        }
        let html = render(&run);
        for title in [
            "Event source mapping lag",
            "Batch size: records per invocation",
            "Invocation duration",
            "PutRecordBatch latency over time",
            "Producer send delay (actual − intended send time)",
        ] {
            assert!(html.contains(title), "{title}");
        }
        assert!(
            html.contains(
                "<title>mean of the invocations started in the second at 3 s: 500 records per invocation</title>"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_comparison_overlays_every_run_of_both_sides() {
        let (a, b) = (sample(), sample());
        let page = compare_page(
            "| metric | base |\n|---|---:|\n| e2e_p99_ms | 310 |\n",
            &[("base run-1".into(), &a)],
            &[("candidate run-1".into(), &b), ("candidate run-2".into(), &b)],
        );
        assert!(page.contains("<td>e2e_p99_ms</td>"), "{page}");
        assert_eq!(page.matches("<svg").count(), 1, "one measure with curves: e2e");
        assert_eq!(page.matches("<polyline").count(), 3, "one curve a run");
        assert!(page.contains(">candidate run-2</text>") && page.contains("stroke=\"#1f77b4\""));
    }
}
