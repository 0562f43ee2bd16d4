//! `mskbench run --metrics ADDR`: the run's live counters and latency
//! histograms as a Prometheus / OpenMetrics text endpoint, served from the
//! run itself, as k6's outputs let a dashboard watch a test.
//!
//! The endpoint is an [`Observer`] of the run: every second it keeps the
//! harness's latest [`Snapshot`], and `GET /metrics` renders it. Counters
//! count from the run's start and move once a second (a scrape between two
//! samples sees the last one); rates are Prometheus's `rate()` over them.
//! The latency histograms are HdrHistograms (3 significant digits) folded
//! into fixed buckets, so bucket edges and `_sum` are as exact as that.
//! A scrape asking for `application/openmetrics-text` gets OpenMetrics
//! 1.0 (with `# EOF`); any other gets Prometheus's text format 0.0.4. The
//! names are one table, [`COUNTERS`] and [`GAUGES`] and [`HISTOGRAMS`],
//! from which both formats and README's list derive.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hdrhistogram::Histogram;
use mskbench_harness::{Observer, Snapshot, Stage};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A counter: a name without `_total`, what it counts, its value.
pub(crate) struct Counter {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<&'static str>,
    pub value: fn(&Snapshot) -> u64,
}

/// The counters, from the run's start.
pub(crate) static COUNTERS: &[Counter] = &[
    Counter {
        name: "mskbench_sent_records",
        help: "Records the producer handed to librdkafka.",
        unit: None,
        value: |s| s.sent,
    },
    Counter {
        name: "mskbench_produced_records",
        help: "Records the broker acknowledged (result.json's produced).",
        unit: None,
        value: |s| s.acked,
    },
    Counter {
        name: "mskbench_consumed_records",
        help: "Records the event source mapping handed to invocations (redelivered ones again).",
        unit: None,
        value: |s| s.live.consumed,
    },
    Counter {
        name: "mskbench_accepted_records",
        help: "Records Firehose answered with a RecordId (the console's IncomingRecords).",
        unit: None,
        value: |s| s.live.accepted,
    },
    Counter {
        name: "mskbench_accepted_bytes",
        help: "Bytes of the records Firehose accepted.",
        unit: Some("bytes"),
        value: |s| s.live.accepted_bytes,
    },
    Counter {
        name: "mskbench_throttled_records",
        help: "Record attempts Firehose throttled inside a successful PutRecordBatch call.",
        unit: None,
        value: |s| s.live.throttled_records,
    },
    Counter {
        name: "mskbench_throttled_calls",
        help: "PutRecordBatch calls Firehose refused whole as throttled.",
        unit: None,
        value: |s| s.live.throttled_calls,
    },
    Counter {
        name: "mskbench_put_record_batch_calls",
        help: "PutRecordBatch calls, first tries and retries.",
        unit: None,
        value: |s| s.live.calls,
    },
    Counter {
        name: "mskbench_retried_records",
        help: "Records sent again in retry calls (result.json's retries).",
        unit: None,
        value: |s| s.live.resent_records,
    },
    Counter {
        name: "mskbench_dead_lettered_records",
        help: "Records the processor wrote to the dead-letter destination.",
        unit: None,
        value: |s| s.live.dead_lettered,
    },
    Counter {
        name: "mskbench_failed_invocations",
        help: "Invocations that returned an error (their batch is redelivered).",
        unit: None,
        value: |s| s.live.failed_invocations,
    },
];

/// A gauge: a value at the last sample.
pub(crate) struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<&'static str>,
    pub value: fn(&Snapshot) -> u64,
}

/// The gauges.
pub(crate) static GAUGES: &[Gauge] = &[
    Gauge {
        name: "mskbench_elapsed_seconds",
        help: "Seconds since the run's start at the last sample.",
        unit: Some("seconds"),
        value: |s| s.t,
    },
    Gauge {
        name: "mskbench_in_flight_records",
        help: "Records consumed and not yet done with by a succeeded invocation.",
        unit: None,
        value: |s| s.sample.in_flight,
    },
    Gauge {
        name: "mskbench_lag_records",
        help: "Records the broker acknowledged and no invocation was handed yet (the mapping's OffsetLag, \
               estimated from counts: redelivered batches count again).",
        unit: None,
        value: Snapshot::lag,
    },
];

/// A latency histogram, read off a snapshot with its unit in seconds.
pub(crate) struct Hist {
    pub name: &'static str,
    pub help: &'static str,
    /// The histogram and how many seconds one of its units is.
    pub value: fn(&Snapshot) -> (&Histogram<u64>, f64),
}

/// The histograms.
pub(crate) static HISTOGRAMS: &[Hist] = &[
    Hist {
        name: "mskbench_put_record_batch_latency_seconds",
        help: "PutRecordBatch round trips, from the call's start to its response, measured phases.",
        value: |s| (&s.put_latency_us, 1e-6),
    },
    Hist {
        name: "mskbench_accept_latency_seconds",
        help: "From a record's Kafka timestamp to the end of the PutRecordBatch calls that got it accepted, \
               every phase: end to end but for Firehose's buffering into S3 objects (result.json's e2e adds it).",
        value: |s| (&s.accept_latency_ms, 1e-3),
    },
];

/// Bucket upper bounds, in seconds.
const BUCKETS: [f64; 17] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// Which text format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// A number as both formats write it.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.1}") } else { format!("{v}") }
}

fn header(out: &mut String, format: Format, family: &str, kind: &str, unit: Option<&str>, help: &str) {
    let _ = writeln!(out, "# HELP {family} {}", help.replace('\\', r"\\").replace('\n', r"\n"));
    let _ = writeln!(out, "# TYPE {family} {kind}");
    if let (Format::OpenMetrics, Some(unit)) = (format, unit) {
        let _ = writeln!(out, "# UNIT {family} {unit}");
    }
}

/// The exposition of `s` (zeros and empty histograms before the first
/// sample, `None`) in `format`.
pub(crate) fn render(s: Option<&Snapshot>, stage: Option<&Stage>, format: Format) -> String {
    let mut out = String::new();
    for c in COUNTERS {
        // Prometheus's format names the family as its samples; OpenMetrics drops `_total`.
        let family = match format {
            Format::Prometheus => format!("{}_total", c.name),
            Format::OpenMetrics => c.name.to_owned(),
        };
        header(&mut out, format, &family, "counter", c.unit, c.help);
        let _ = writeln!(out, "{}_total {}", c.name, s.map_or(0, c.value));
    }
    for g in GAUGES {
        header(&mut out, format, g.name, "gauge", g.unit, g.help);
        let _ = writeln!(out, "{} {}", g.name, s.map_or(0, g.value));
    }
    let stage_name = stage.map_or("starting", |st| st.name.as_str());
    let (family, kind) = match format {
        Format::Prometheus => ("mskbench_stage_info", "gauge"),
        Format::OpenMetrics => ("mskbench_stage", "info"),
    };
    header(&mut out, format, family, kind, None, "The stage the run is in: a load phase, drain, read back.");
    let _ = writeln!(out, "mskbench_stage_info{{stage=\"{}\"}} 1", escape_label(stage_name));
    for h in HISTOGRAMS {
        header(&mut out, format, h.name, "histogram", Some("seconds"), h.help);
        let (count, sum, buckets) = match s.map(h.value) {
            Some((hist, unit_s)) => {
                let below = |le: f64| {
                    // Values up to `le`, in the histogram's units (a bucket's upper bound is inclusive).
                    // (count_between clamps a bound past the histogram's range.)
                    hist.count_between(0, (le / unit_s).floor() as u64)
                };
                let buckets: Vec<u64> = BUCKETS.iter().map(|&le| below(le)).collect();
                (hist.len(), hist.mean() * hist.len() as f64 * unit_s, buckets)
            }
            None => (0, 0.0, vec![0; BUCKETS.len()]),
        };
        for (le, n) in BUCKETS.iter().zip(&buckets) {
            let _ = writeln!(out, "{}_bucket{{le=\"{}\"}} {n}", h.name, number(*le));
        }
        let _ = writeln!(out, "{}_bucket{{le=\"+Inf\"}} {count}", h.name);
        let _ = writeln!(out, "{}_count {count}", h.name);
        let _ = writeln!(out, "{}_sum {}", h.name, number(sum));
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// The latest snapshot and stage, kept for scrapes.
#[derive(Default)]
struct Latest {
    snapshot: Option<Snapshot>,
    stage: Option<Stage>,
}

/// The endpoint: an observer that keeps the latest snapshot, and the task serving it.
pub(crate) struct Endpoint {
    latest: Arc<Mutex<Latest>>,
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Binds `addr` and serves `GET /metrics` from the run's runtime.
    ///
    /// # Errors
    /// The address could not be bound.
    pub(crate) async fn start(addr: SocketAddr) -> Result<Endpoint> {
        let latest = Arc::new(Mutex::new(Latest::default()));
        let state = latest.clone();
        let router = Router::new().route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let state = state.clone();
                async move { scrape(&state, &headers) }
            }),
        );
        let (addr, task) = serve(addr, router, "--metrics").await?;
        Ok(Endpoint { latest, addr, task })
    }

    /// What the run should report to: this endpoint.
    pub(crate) fn observer(&self) -> Arc<dyn Observer> {
        Arc::new(Feed(self.latest.clone()))
    }

    /// Stops serving.
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

/// Binds `addr` (port 0 picks one) and serves `router` on a task of the
/// run's runtime until it is aborted; `flag` names the option in errors.
pub(crate) async fn serve(addr: SocketAddr, router: Router, flag: &str) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("{flag}: cannot listen on {addr}"))?;
    let addr = listener.local_addr().with_context(|| format!("{flag}: reading the bound address"))?;
    let task = tokio::spawn(async move {
        // Serving ends with the run (the task is aborted); an I/O error ends it sooner.
        let _ = axum::serve(listener, router).await;
    });
    Ok((addr, task))
}

fn scrape(state: &Mutex<Latest>, headers: &HeaderMap) -> impl IntoResponse + use<> {
    let open = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let format = if open { Format::OpenMetrics } else { Format::Prometheus };
    let latest = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let body = render(latest.snapshot.as_ref(), latest.stage.as_ref(), format);
    ([(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()))], body)
}

/// The observer side of the endpoint.
struct Feed(Arc<Mutex<Latest>>);

impl Observer for Feed {
    fn stage(&self, stage: &Stage) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stage = Some(stage.clone());
    }

    fn sample(&self, snapshot: &Snapshot) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).snapshot = Some(snapshot.clone());
    }

    fn warn(&self, _: &str) {}
}

#[cfg(test)]
mod tests {
    use mskbench_harness::LiveSnapshot;
    use mskbench_reports::Sample;

    use super::*;

    fn snapshot() -> Snapshot {
        let mut put = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for us in [800, 4_000, 4_000, 200_000] {
            put.record(us).unwrap();
        }
        let accept = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        Snapshot {
            t: 7,
            stage: Stage { name: "steady".into(), starts_at: 0, ends_at: 10 },
            sample: Sample { in_flight: 12, ..Sample::default() },
            sent: 1000,
            acked: 990,
            live: LiveSnapshot { consumed: 900, accepted: 850, resent_records: 5, ..LiveSnapshot::default() },
            put_latency_us_last: put.clone(),
            put_latency_us: put,
            accept_latency_ms_last: accept.clone(),
            accept_latency_ms: accept,
        }
    }

    #[test]
    fn counters_gauges_and_cumulative_buckets() {
        let s = snapshot();
        let text = render(Some(&s), Some(&s.stage), Format::Prometheus);
        assert!(text.contains("# TYPE mskbench_produced_records_total counter\nmskbench_produced_records_total 990\n"));
        assert!(text.contains("mskbench_lag_records 90\n") && text.contains("mskbench_in_flight_records 12\n"));
        assert!(text.contains("mskbench_stage_info{stage=\"steady\"} 1\n"), "{text}");
        let put = "mskbench_put_record_batch_latency_seconds";
        assert!(text.contains(&format!("{put}_bucket{{le=\"0.001\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("{put}_bucket{{le=\"0.005\"}} 3\n")), "{text}");
        assert!(text.contains(&format!("{put}_bucket{{le=\"0.1\"}} 3\n")), "{text}");
        assert!(text.contains(&format!("{put}_bucket{{le=\"0.25\"}} 4\n")), "{text}");
        assert!(text.contains(&format!("{put}_bucket{{le=\"+Inf\"}} 4\n{put}_count 4\n")), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        let open = render(Some(&s), Some(&s.stage), Format::OpenMetrics);
        assert!(open.contains("# TYPE mskbench_produced_records counter\n"), "{open}");
        assert!(open.contains("# TYPE mskbench_stage info\n") && open.ends_with("# EOF\n"), "{open}");
        assert!(open.contains("# UNIT mskbench_accept_latency_seconds seconds\n"), "{open}");
        // Before the first sample: the same names, zeros.
        let empty = render(None, None, Format::Prometheus);
        assert!(empty.contains("mskbench_produced_records_total 0\n") && empty.contains("stage=\"starting\""));
        assert_eq!(empty.lines().count(), text.lines().count());
    }
}
