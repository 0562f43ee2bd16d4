//! `mskbench run --serve-dashboard ADDR`: a small live web page served by
//! the run itself, as k6's web dashboard is, with the charts of
//! `report.html` redrawn every second from the series so far.
//!
//! The dashboard is an [`Observer`] of the run: it keeps each second's
//! [`Sample`] and the stages seen, and `GET /live` renders the run so far
//! — the latest numbers, then `mskbench_reports::html::chart_figures` of a
//! [`RunResult`] holding the series, the quota lines and the phases up to
//! now. `GET /` is one page with a few lines of script that fetch `/live`
//! every second and swap it in: no external resources, nothing to build.
//! Only what a run knows while it runs is drawn; end-to-end latency and
//! the percentile curves come with the read-back, in `report.html`. The
//! server stops when the run ends; the page keeps its last view.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use mskbench_harness::{Observer, Snapshot, Stage};
use mskbench_reports::model::QuotaLines;
use mskbench_reports::{PhaseSpan, RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, Totals, html};
use tokio::task::JoinHandle;

use crate::metrics::serve;

/// The page: a heading, the live fragment, and the script that refreshes it.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mskbench run: live</title><style>
body{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:1.5em 0}#state{color:#666}
</style></head><body>
<h1>mskbench run: <span id="name">NAME</span></h1>
<p id="state">connecting…</p>
<div id="live"></div>
<script>
async function tick() {
  try {
    const r = await fetch('/live', {cache: 'no-store'});
    if (r.ok) {
      document.getElementById('live').innerHTML = await r.text();
      document.getElementById('state').textContent = 'live, updated every second';
    }
  } catch (e) {
    document.getElementById('state').textContent = 'the run has ended (or cannot be reached): the last view stays';
  }
  setTimeout(tick, 1000);
}
tick();
</script>
</body></html>
"#;

/// What the run has shown so far.
struct SoFar {
    name: String,
    quota: Option<QuotaLines>,
    series: Vec<Sample>,
    /// Stages in order: name and start second.
    stages: Vec<(String, u64)>,
    latest: Option<Snapshot>,
}

/// The dashboard: an observer that keeps the run so far, and the task serving it.
pub(crate) struct Dashboard {
    state: Arc<Mutex<SoFar>>,
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Dashboard {
    /// Binds `addr` and serves the page for the run `name` held to `quota`.
    ///
    /// # Errors
    /// The address could not be bound.
    pub(crate) async fn start(addr: SocketAddr, name: &str, quota: Option<QuotaLines>) -> Result<Dashboard> {
        let state = Arc::new(Mutex::new(SoFar {
            name: name.to_owned(),
            quota,
            series: Vec::new(),
            stages: Vec::new(),
            latest: None,
        }));
        let page = PAGE.replace("NAME", &escape(name));
        let live = state.clone();
        let router = Router::new().route("/", get(move || async move { Html(page) })).route(
            "/live",
            get(move || {
                let live = live.clone();
                async move { fragment(&live) }
            }),
        );
        let (addr, task) = serve(addr, router, "--serve-dashboard").await?;
        Ok(Dashboard { state, addr, task })
    }

    /// What the run should report to: this dashboard.
    pub(crate) fn observer(&self) -> Arc<dyn Observer> {
        Arc::new(Feed(self.state.clone()))
    }

    /// Stops serving.
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fragment(state: &Mutex<SoFar>) -> impl IntoResponse + use<> {
    let so_far = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let body = render(&so_far);
    ([(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Html(body))
}

/// The numbers of the last second and the charts of the run so far.
fn render(s: &SoFar) -> String {
    let mut out = String::new();
    match &s.latest {
        None => out.push_str("<p>Starting: no second sampled yet.</p>"),
        Some(n) => {
            let _ = write!(
                out,
                "<table id=\"numbers\"><tr><th>seconds</th><th>stage</th><th>produced</th><th>accepted</th>\
                 <th>throttled</th><th>retries</th><th>lag</th><th>in flight</th></tr><tr>\
                 <td data-elapsed=\"{t}\">{t}</td><td>{stage}</td><td data-produced=\"{p}\">{p}</td><td>{a}</td>\
                 <td>{th}</td><td>{r}</td><td>{lag}</td><td>{f}</td></tr></table>\
                 <p>Counts since the start; the charts are the run so far, one point a second.</p>",
                t = n.t,
                stage = escape(&n.stage.name),
                p = n.acked,
                a = n.live.accepted,
                th = n.live.throttled_records,
                r = n.live.resent_records,
                lag = n.lag(),
                f = n.sample.in_flight,
            );
        }
    }
    out.push_str(&html::chart_figures(&run_so_far(s)));
    out
}

/// A result holding what the charts over time read: the series, the quota
/// and the stages (each ending where the next began, the last now).
fn run_so_far(s: &SoFar) -> RunResult {
    let now = s.series.len() as f64;
    let phases = s
        .stages
        .iter()
        .enumerate()
        .map(|(i, (name, from))| PhaseSpan {
            name: name.clone(),
            from_s: *from as f64,
            until_s: s.stages.get(i + 1).map_or(now, |next| next.1 as f64),
            // The live view has no warm-up flag per stage: every one is drawn alike.
            measured: true,
        })
        .collect();
    RunResult {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: s.name.clone(),
            file: String::new(),
            seed: 0,
            started_at: String::new(),
            duration_s: 0.0,
            quota: s.quota,
            settings: serde_json::Value::Null,
            interrupted: false,
            aborted: None,
            overrides: Vec::new(),
            tags: BTreeMap::new(),
        },
        totals: Totals::default(),
        latency_ms: BTreeMap::new(),
        series: s.series.clone(),
        slo: Vec::new(),
        faults: Vec::new(),
        phases,
        latency_curve_ms: BTreeMap::new(),
        harness_saturated: None,
        cost: None,
    }
}

/// The observer side of the dashboard.
struct Feed(Arc<Mutex<SoFar>>);

impl Observer for Feed {
    fn stage(&self, stage: &Stage) {
        let mut s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The read-back has no samples; the connecting stage is the first.
        if stage.name != mskbench_harness::READ_BACK {
            s.stages.push((stage.name.clone(), stage.starts_at));
        }
    }

    fn sample(&self, snapshot: &Snapshot) {
        let mut s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.series.push(snapshot.sample.clone());
        s.latest = Some(snapshot.clone());
    }

    fn warn(&self, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_view_draws_the_series_so_far_with_the_stages_shaded() {
        let mut s = SoFar {
            name: "smoke <1>".into(),
            quota: Some(QuotaLines {
                records_per_sec: 700.0,
                requests_per_sec: 2000.0,
                bytes_per_sec: 5e6,
                declared: false,
            }),
            series: Vec::new(),
            stages: vec![("warm-up".into(), 0), ("steady".into(), 2)],
            latest: None,
        };
        assert!(render(&s).starts_with("<p>Starting"));
        s.series = (0..4).map(|t| Sample { t, produced: 500, records_accepted: 400, ..Sample::default() }).collect();
        let run = run_so_far(&s);
        let spans: Vec<(&str, f64, f64)> = run.phases.iter().map(|p| (p.name.as_str(), p.from_s, p.until_s)).collect();
        assert_eq!(spans, [("warm-up", 0.0, 2.0), ("steady", 2.0, 4.0)]);
        let html = render(&s);
        assert!(html.contains("Incoming records per second") && html.contains("quota 700 records/s"), "{html}");
        assert!(PAGE.replace("NAME", &escape(&s.name)).contains("smoke &lt;1&gt;"));
    }
}
