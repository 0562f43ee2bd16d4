//! `report.md`: the summary a CI comment or a terminal shows.
//!
//! SLO verdicts first (the exit status of the run follows them), then the
//! record accounting, latency percentiles, and the peak per-second rates
//! against the quota. Pure text from a [`RunResult`].

use std::fmt::Write as _;

use crate::compare::fmt_num;
use crate::model::RunResult;

/// Renders the Markdown summary of a run.
pub fn render(run: &RunResult) -> String {
    let mut out = String::new();
    let s = &run.scenario;
    let _ = writeln!(out, "# mskbench run: {}\n", s.name);
    let _ = writeln!(
        out,
        "Scenario `{}`, seed {}, started {}, {} s measured.\n",
        if s.file.is_empty() { &s.name } else { &s.file },
        s.seed,
        s.started_at,
        fmt_num(s.duration_s)
    );

    out.push_str("## SLOs\n\n");
    if run.slo.is_empty() {
        out.push_str("No SLOs were set.\n\n");
    } else {
        out.push_str("| SLO | value | verdict |\n|---|---:|---|\n");
        for slo in &run.slo {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                slo.expr,
                slo.value.map_or("not measured".to_owned(), fmt_num),
                if slo.ok { "held" } else { "**FAILED**" }
            );
        }
        out.push('\n');
    }

    let t = &run.totals;
    out.push_str("## Records\n\n");
    out.push_str("| produced | delivered | dead-lettered | unaccounted | duplicates | throttled records | throttled calls | retries |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        t.produced,
        t.delivered,
        t.dead_lettered,
        t.unaccounted,
        t.duplicates,
        t.throttled_records,
        t.throttled_calls,
        t.retries
    );

    if !run.latency_ms.is_empty() {
        out.push_str(
            "## Latency (ms)\n\n| measure | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for (measure, p) in &run.latency_ms {
            let _ = writeln!(
                out,
                "| {measure} | {} | {} | {} | {} | {} |",
                fmt_num(p.p50),
                fmt_num(p.p90),
                fmt_num(p.p99),
                fmt_num(p.p999),
                fmt_num(p.max)
            );
        }
        out.push('\n');
    }

    if !run.series.is_empty() {
        let peak = |f: fn(&crate::model::Sample) -> u64| run.series.iter().map(f).max().unwrap_or(0);
        let incoming = peak(|s| s.records_accepted + s.records_throttled);
        let calls = peak(|s| s.firehose_calls);
        let bytes = peak(|s| s.bytes);
        out.push_str("## Peak per-second load on Firehose\n\n| measure | peak | quota |\n|---|---:|---:|\n");
        let quota = s.quota;
        let q = |v: Option<f64>| v.map_or("n/a".to_owned(), fmt_num);
        let _ = writeln!(out, "| incoming records/s | {incoming} | {} |", q(quota.map(|q| q.records_per_sec)));
        let _ = writeln!(out, "| put requests/s | {calls} | {} |", q(quota.map(|q| q.requests_per_sec)));
        let _ = writeln!(out, "| incoming bytes/s | {bytes} | {} |", q(quota.map(|q| q.bytes_per_sec)));
        out.push('\n');
        match run.max_unthrottled() {
            Some((t, rate)) => {
                let _ = writeln!(
                    out,
                    "Highest rate sustained without throttling ({} s): **{} records/s**, from t = {t} s.",
                    crate::model::UNTHROTTLED_WINDOW_S,
                    fmt_num(rate)
                );
            }
            None => {
                let _ = writeln!(out, "No {} s stretch ran without throttling.", crate::model::UNTHROTTLED_WINDOW_S);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;
    use crate::slo::Slo;

    #[test]
    fn summary_shows_slos_totals_latency_and_peaks() {
        let mut run = sample();
        run.slo = ["unaccounted == 0", "throttled_ratio < 0.01"]
            .iter()
            .map(|e| e.parse::<Slo>().unwrap().evaluate(&run))
            .collect();
        let md = render(&run);
        assert!(md.contains("# mskbench run: lab"));
        assert!(md.contains("| `unaccounted == 0` | 0 | held |"), "{md}");
        assert!(md.contains("| `throttled_ratio < 0.01` | 0.1 | **FAILED** |"), "{md}");
        assert!(md.contains("| 10000 | 10000 | 0 | 0 | 3 | 1000 | 0 | 5 |"), "{md}");
        assert!(md.contains("| e2e | 100 | 150 | 310 | 400 | 520 |"), "{md}");
        assert!(md.contains("| incoming records/s | 1000 | 900 |"), "{md}");
        assert!(md.contains("without throttling (3 s): **1000 records/s**, from t = 0 s"), "{md}");
    }
}
