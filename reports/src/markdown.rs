//! `report.md`: the summary a CI comment or a terminal shows.
//!
//! SLO verdicts first (the exit status of the run follows them), then the
//! record accounting (the totals, in `result.json`'s order, headed by the
//! catalogue's labels), latency percentiles (the percentiles of
//! [`Percentiles::named`](crate::model::Percentiles::named)), and the peak per-second rates against the
//! quota. A run with `[[faults]]` lists each window and what it did before
//! the records. Pure text from a [`RunResult`].

use std::fmt::Write as _;

use crate::catalogue;
use crate::compare::fmt_num;
use crate::model::{RunResult, UNTHROTTLED_WINDOW_S};

/// A table's header and alignment rows: `first` left-aligned, the rest
/// numbers, right-aligned.
fn table_head(out: &mut String, first: Option<&str>, columns: &[String]) {
    let cells: Vec<&str> = first.into_iter().chain(columns.iter().map(String::as_str)).collect();
    let _ = writeln!(out, "| {} |", cells.join(" | "));
    let align: Vec<&str> = first.map(|_| "---").into_iter().chain(columns.iter().map(|_| "---:")).collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
}

/// How a percentile key reads in a table head: `p999` is p99.9 (digits
/// after the second are decimals).
fn percentile_label(key: &str) -> String {
    match key.strip_prefix('p') {
        Some(digits) if digits.len() > 2 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("p{}.{}", &digits[..2], &digits[2..])
        }
        _ => key.to_owned(),
    }
}

/// Renders the Markdown summary of a run.
pub fn render(run: &RunResult) -> String {
    let mut out = String::new();
    let s = &run.scenario;
    let _ = writeln!(out, "# mskbench run: {}\n", s.name);
    if s.interrupted {
        out.push_str(
            "**Interrupted** (Ctrl-C): the run stopped producing early, so its numbers cover less than the \
             scenario asked for; `mskbench compare` refuses it unless forced.\n\n",
        );
    }
    if let Some(h) = &run.harness_saturated {
        let _ = writeln!(
            out,
            "**Harness saturated** from t = {} s ({}): {}. From there on the rates and latencies measure \
             mskbench on this machine, not the pipeline, and the run reports no Firehose capacity.\n",
            fmt_num(h.from_s),
            h.stage,
            h.evidence
        );
    }
    if let Some(a) = &s.aborted {
        let _ = writeln!(
            out,
            "**Aborted** at t = {} s: the SLO `{}` (abort = true) failed while the run was producing, at {} \
             over the run so far. The load stopped there and the run drained, read back and accounted what \
             was produced, so its numbers cover less than the scenario asked for; `mskbench compare` refuses \
             it unless forced.\n",
            a.at_s,
            a.slo,
            fmt_num(a.value)
        );
    }
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
                match (slo.ok, s.aborted.as_ref().is_some_and(|a| a.slo == slo.expr)) {
                    (_, true) => "**FAILED** (stopped the run)",
                    (true, false) => "held",
                    (false, false) => "**FAILED**",
                }
            );
        }
        out.push('\n');
    }

    if !run.faults.is_empty() {
        // One line per window, so the numbers below read against what was broken when.
        out.push_str("## Faults\n\n| fault | window (s since start) | what it did |\n|---|---:|---|\n");
        for f in &run.faults {
            let effects: Vec<String> =
                f.effects.iter().filter(|&(_, &n)| n > 0).map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(
                out,
                "| {} | {:.1}–{:.1} | {} |",
                f.label(),
                f.from_s,
                f.until_s,
                if effects.is_empty() { "nothing counted".to_owned() } else { effects.join(", ") }
            );
        }
        out.push('\n');
    }

    out.push_str("## Records\n\n");
    // A count that should stay zero gets a column only when it is not.
    let totals: Vec<(&str, u64)> = run
        .totals
        .named()
        .into_iter()
        .filter(|&(key, n)| catalogue::metric(key).is_none_or(|m| m.compare.shown(&[n as f64])))
        .collect();
    let labels: Vec<String> =
        totals.iter().map(|(key, _)| catalogue::metric(key).map_or(*key, |m| m.label).to_owned()).collect();
    table_head(&mut out, None, &labels);
    let counts: Vec<String> = totals.iter().map(|(_, n)| n.to_string()).collect();
    let _ = writeln!(out, "| {} |\n", counts.join(" | "));

    if !run.latency_ms.is_empty() {
        out.push_str("## Latency (ms)\n\n");
        let labels: Vec<String> = catalogue::percentile_keys().map(percentile_label).collect();
        table_head(&mut out, Some("measure"), &labels);
        for (measure, p) in &run.latency_ms {
            let values: Vec<String> = p.named().iter().map(|(_, v)| fmt_num(*v)).collect();
            let _ = writeln!(out, "| {measure} | {} |", values.join(" | "));
        }
        out.push('\n');
    }

    if !run.series.is_empty() {
        let peak = |f: fn(&crate::model::Sample) -> u64| run.series.iter().map(f).max().unwrap_or(0);
        let incoming = peak(|s| s.records_accepted + s.records_throttled);
        let calls = peak(|s| s.firehose_calls);
        let bytes = peak(|s| s.bytes);
        out.push_str(
            "## Peak per-second load on Firehose\n\n| measure | peak | quota | of the quota |\n|---|---:|---:|---:|\n",
        );
        let quota = s.quota;
        for (measure, peak, limit) in [
            (
                "incoming records/s (attempts: throttled and retried ones too)",
                incoming,
                quota.map(|q| q.records_per_sec),
            ),
            ("put requests/s", calls, quota.map(|q| q.requests_per_sec)),
            ("incoming bytes/s (accepted)", bytes, quota.map(|q| q.bytes_per_sec)),
        ] {
            let (limit, share) = match limit {
                Some(l) if l > 0.0 => (fmt_num(l), format!("{:.0}%", peak as f64 / l * 100.0)),
                _ => ("n/a".to_owned(), "n/a".to_owned()),
            };
            let _ = writeln!(out, "| {measure} | {peak} | {limit} | {share} |");
        }
        out.push('\n');
        if quota.is_some_and(|q| q.declared) {
            let _ = writeln!(
                out,
                "The quota is the scenario's declared `firehose.quota`, not measured: this endpoint enforces its own, \
                 which the run cannot see. Throttling above is what the endpoint answered.\n"
            );
        }
        match run.max_unthrottled() {
            _ if run.harness_saturated.is_some() => {
                let _ = writeln!(
                    out,
                    "No highest unthrottled rate: the harness saturated (above), so no rate here is Firehose's capacity."
                );
            }
            _ if !run.saw_throttling() => {
                let _ = writeln!(
                    out,
                    "No throttling up to {incoming} records/s offered: the run found no capacity limit, so it \
                     reports no highest unthrottled rate."
                );
            }
            Some((t, rate)) => {
                let _ = writeln!(
                    out,
                    "Highest rate sustained without throttling ({} s): **{} records/s**, from t = {t} s.",
                    UNTHROTTLED_WINDOW_S,
                    fmt_num(rate)
                );
            }
            None => {
                let _ = writeln!(out, "No {UNTHROTTLED_WINDOW_S} s stretch ran without throttling.");
            }
        }
    }
    if let Some(c) = &run.cost {
        cost(&mut out, c);
    }
    out
}

/// The cost section: billed quantities, then what they would cost.
fn cost(out: &mut String, c: &crate::model::Cost) {
    let _ = writeln!(
        out,
        "\n## Cost (estimate)\n\nThe whole run, warm-up and drain included, at the scenario's `[cost]` prices \
         (by default AWS's us-east-1 list prices as read on {}; {}).\n",
        c.prices_read_on, c.note
    );
    out.push_str("| quantity | amount | unit price (USD) | USD |\n|---|---:|---:|---:|\n");
    let usd = |v: f64| format!("{v:.6}");
    let _ = writeln!(out, "| Firehose records (duplicates included) | {} | | |", c.firehose_records);
    let _ = writeln!(out, "| `PutRecordBatch` calls | {} | | |", c.put_record_batch_calls);
    let _ = writeln!(out, "| ingested GB (as sent) | {:.6} | | |", c.ingested_gb);
    let _ = writeln!(
        out,
        "| billed ingestion GB (each record rounded up to 5 KB) | {:.6} | {} per GB | {} |",
        c.billed_ingestion_gb,
        c.firehose_usd_per_gb,
        usd(c.firehose_usd)
    );
    let _ = writeln!(
        out,
        "| Lambda invocations | {} | {:e} per request | |",
        c.lambda_invocations, c.lambda_usd_per_request
    );
    let _ = writeln!(
        out,
        "| Lambda GB-seconds at {} MB | {:.3} | {:e} per GB-s | |",
        c.lambda_memory_mb, c.lambda_gb_seconds, c.lambda_usd_per_gb_second
    );
    let _ = writeln!(out, "| Lambda (requests and duration) | | | {} |", usd(c.lambda_usd));
    let _ = writeln!(out, "| **total** | | | **{}** |", usd(c.total_usd));
    if let Some(per) = c.usd_per_million_delivered {
        let _ = writeln!(out, "\nPer million records delivered: **{per:.4} USD**.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;
    use crate::slo::Slo;

    #[test]
    fn the_cost_section_shows_billed_quantities_and_says_it_is_an_estimate() {
        let mut run = sample();
        run.cost = None;
        assert!(!render(&run).contains("## Cost"), "no cost, no section");
        run.cost = Some(crate::model::Cost {
            note: "estimate: list prices".into(),
            prices_read_on: "2026-12-03".into(),
            firehose_records: 1000,
            put_record_batch_calls: 2,
            ingested_gb: 0.000_2,
            billed_ingestion_gb: 0.004_768,
            lambda_invocations: 1,
            lambda_memory_mb: 1024,
            lambda_gb_seconds: 0.5,
            firehose_usd_per_gb: 0.029,
            lambda_usd_per_request: 2e-7,
            lambda_usd_per_gb_second: 1.666_67e-5,
            firehose_usd: 0.000_138,
            lambda_usd: 0.000_008_5,
            total_usd: 0.000_146_6,
            usd_per_million_delivered: Some(0.0146),
        });
        let md = render(&run);
        assert!(md.contains("## Cost (estimate)"), "{md}");
        assert!(
            md.contains(
                "| billed ingestion GB (each record rounded up to 5 KB) | 0.004768 | 0.029 per GB | 0.000138 |"
            )
        );
        assert!(md.contains("| Lambda GB-seconds at 1024 MB | 0.500 |"));
        assert!(md.contains("2026-12-03") && md.contains("**0.000147**"), "{md}");
    }

    #[test]
    fn percentile_heads_read_as_percent() {
        assert_eq!(["p50", "p999", "max", "p9999"].map(percentile_label), ["p50", "p99.9", "max", "p99.99"]);
    }

    #[test]
    fn counts_that_should_stay_zero_get_a_column_when_they_are_not() {
        let mut run = sample();
        run.totals.failed_in_topic = 2;
        let md = render(&run);
        assert!(md.contains("| duplicates | failed in topic | throttled records |"), "{md}");
        assert!(md.contains("| 10000 | 10000 | 0 | 0 | 3 | 2 | 1000 | 0 | 5 |"), "{md}");
        assert!(!md.contains("multiple outcomes"), "{md}");
    }

    #[test]
    fn a_saturated_harness_is_said_at_the_top_and_claims_no_capacity() {
        let mut run = sample();
        assert!(run.metric("max_unthrottled_per_sec").is_some(), "the sample was throttled");
        run.harness_saturated = Some(crate::saturation::Saturation {
            from_s: 6.0,
            stage: "mapping".into(),
            evidence: "the lag grew".into(),
        });
        let md = render(&run);
        let top = md.find("**Harness saturated** from t = 6 s (mapping): the lag grew.").expect(&md);
        assert!(top < md.find("## Records").unwrap(), "at the top:\n{md}");
        assert!(md.contains("No highest unthrottled rate: the harness saturated"), "{md}");
        assert_eq!(run.metric("max_unthrottled_per_sec"), None);
    }

    #[test]
    fn a_declared_quota_is_said_to_be_declared_not_measured() {
        let mut run = sample();
        assert!(!render(&run).contains("declared"), "the built-in endpoint enforces its quota");
        if let Some(q) = run.scenario.quota.as_mut() {
            q.declared = true;
        }
        let md = render(&run);
        assert!(md.contains("The quota is the scenario's declared `firehose.quota`, not measured"), "{md}");
        let html = crate::html::render(&run);
        assert!(html.contains("declared quota (not measured) 900 records/s"), "{html}");
    }

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
        // The heads as they have always read.
        assert!(md.contains(
            "## Records\n\n| produced | delivered | dead-lettered | unaccounted | duplicates | throttled records \
             | throttled calls | retries |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n| 10000 "
        ));
        assert!(md.contains(
            "## Latency (ms)\n\n| measure | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|\n"
        ));
        assert!(md.contains("| e2e | 100 | 150 | 310 | 400 | 520 |"), "{md}");
        assert!(
            md.contains("| incoming records/s (attempts: throttled and retried ones too) | 1000 | 900 | 111% |"),
            "{md}"
        );
        assert!(md.contains("without throttling (3 s): **1000 records/s**, from t = 0 s"), "{md}");
    }

    #[test]
    fn an_aborted_run_says_so_at_the_top_and_marks_its_slo() {
        let mut run = sample();
        run.slo = ["unaccounted == 0", "throttled_ratio < 0.01"]
            .iter()
            .map(|e| e.parse::<Slo>().unwrap().evaluate(&run))
            .collect();
        run.scenario.aborted =
            Some(crate::model::Aborted { slo: "throttled_ratio < 0.01".into(), at_s: 7, value: 0.25 });
        let md = render(&run);
        let top = &md[..md.find("## SLOs").unwrap()];
        assert!(top.contains("**Aborted** at t = 7 s: the SLO `throttled_ratio < 0.01` (abort = true)"), "{top}");
        assert!(top.contains("at 0.25 over the run so far"), "{top}");
        assert!(md.contains("| `throttled_ratio < 0.01` | 0.1 | **FAILED** (stopped the run) |"), "{md}");
        assert!(md.contains("| `unaccounted == 0` | 0 | held |"), "{md}");
    }
}
