//! Two runs side by side: which metrics moved, and which regressed.
//!
//! `mskbench compare BASE.json CANDIDATE.json [--threshold PCT]` prints
//! [`Comparison::to_markdown`] and exits 1 when [`Comparison::regressed`].
//! The rows are the catalogue's compared metrics, in its order, then every
//! latency percentile of every measure either run has. Each has a
//! direction (latency and loss: lower is better; delivered rate: higher is
//! better) and regresses when it moves the wrong way by more than the
//! threshold, relative to the base — except the loss metrics
//! (`unaccounted`, `dead_lettered`, `duplicates`), which regress on any
//! increase: "no data lost" is not a percentage. The catalogue
//! ([`crate::catalogue`]) says which is which.

use std::fmt::Write as _;

use crate::catalogue::{self, Better, Compare, METRICS};
use crate::model::RunResult;

/// One compared metric.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    metric: String,
    base: Option<f64>,
    candidate: Option<f64>,
    /// Relative change in percent, when both sides exist and base ≠ 0.
    delta_pct: Option<f64>,
    better: Better,
    regressed: bool,
}

/// The comparison of two runs: one row per compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    base_name: String,
    candidate_name: String,
    threshold_pct: f64,
    rows: Vec<Row>,
}

/// Compares `candidate` with `base`; `threshold_pct` is the tolerated
/// relative change in the wrong direction.
pub fn compare(base: &RunResult, candidate: &RunResult, threshold_pct: f64) -> Comparison {
    let mut rows: Vec<Row> =
        METRICS.iter().filter_map(|m| row(m.name, m.compare, base, candidate, threshold_pct)).collect();
    // Latency percentiles of every measure either run has.
    let mut measures: Vec<&String> = base.latency_ms.keys().chain(candidate.latency_ms.keys()).collect();
    measures.sort();
    measures.dedup();
    for measure in measures {
        for p in catalogue::percentile_keys() {
            let metric = catalogue::latency_name(measure, p);
            rows.extend(row(&metric, catalogue::LATENCY_COMPARE, base, candidate, threshold_pct));
        }
    }
    Comparison {
        base_name: base.scenario.name.clone(),
        candidate_name: candidate.scenario.name.clone(),
        threshold_pct,
        rows,
    }
}

/// The row of `metric`, unless the catalogue leaves it out of comparisons.
fn row(metric: &str, judged: Compare, base: &RunResult, cand: &RunResult, threshold: f64) -> Option<Row> {
    let (better, strict) = match judged {
        Compare::No => return None,
        Compare::BeyondThreshold(better) => (better, false),
        Compare::AnyWorse(better) | Compare::AnyWorseWhenSeen(better) => (better, true),
    };
    let (b, c) = (base.metric(metric), cand.metric(metric));
    if !judged.shown(&[b.unwrap_or(0.0), c.unwrap_or(0.0)]) {
        return None;
    }
    let delta_pct = match (b, c) {
        (Some(b), Some(c)) if b != 0.0 => Some((c - b) / b.abs() * 100.0),
        _ => None,
    };
    let regressed = match (b, c) {
        (Some(b), Some(c)) => {
            let worse = match better {
                Better::Lower => c - b,
                Better::Higher => b - c,
            };
            if strict {
                worse > 0.0
            } else if b == 0.0 {
                // No relative change from zero: any move the wrong way counts.
                worse > 0.0
            } else {
                worse / b.abs() * 100.0 > threshold
            }
        }
        // A metric the base had and the candidate lost is not comparable,
        // and not silently fine either.
        (Some(_), None) => true,
        _ => false,
    };
    Some(Row { metric: metric.to_owned(), base: b, candidate: c, delta_pct, better, regressed })
}

impl Comparison {
    /// True when any metric regressed beyond the threshold.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.regressed)
    }

    /// A Markdown table for a terminal or a pull-request comment.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Comparing `{}` (base) with `{}` (candidate); threshold {}%.\n",
            self.base_name,
            self.candidate_name,
            fmt_num(self.threshold_pct)
        );
        out.push_str("| metric | base | candidate | delta | better | verdict |\n|---|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            let delta = match (r.delta_pct, r.base, r.candidate) {
                (Some(d), _, _) => format!("{d:+.1}%"),
                (None, Some(b), Some(c)) if b == c => "0".to_owned(),
                (None, Some(_), Some(c)) => format!("{} from 0", fmt_num(c)),
                _ => "n/a".to_owned(),
            };
            let verdict = if r.regressed { "**regressed**" } else { "ok" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.metric,
                r.base.map_or("n/a".to_owned(), fmt_num),
                r.candidate.map_or("n/a".to_owned(), fmt_num),
                delta,
                r.better.as_str(),
                verdict
            );
        }
        let regressed: Vec<&str> = self.rows.iter().filter(|r| r.regressed).map(|r| r.metric.as_str()).collect();
        if regressed.is_empty() {
            out.push_str("\nNo regression beyond the threshold.\n");
        } else {
            let _ = writeln!(out, "\nRegressed: {}.", regressed.join(", "));
        }
        out
    }
}

/// A number for a table: integers plainly, others with four significant digits.
pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    fn find<'a>(c: &'a Comparison, metric: &str) -> &'a Row {
        c.rows.iter().find(|r| r.metric == metric).unwrap()
    }

    #[test]
    fn rows_are_the_catalogues_compared_metrics_then_latency() {
        let c = compare(&sample(), &sample(), 5.0);
        let names: Vec<&str> = c.rows.iter().map(|r| r.metric.as_str()).collect();
        // The order `mskbench compare` has always printed.
        let fixed = [
            "delivered_per_sec",
            "delivered_ratio",
            "max_unthrottled_per_sec",
            "unaccounted",
            "dead_lettered",
            "duplicates",
            "throttled_ratio",
            "throttled_calls",
            "retries",
        ];
        assert_eq!(names[..fixed.len()], fixed);
        assert_eq!(names[fixed.len()], "e2e_p50_ms");
        assert_eq!(names.len(), fixed.len() + 2 * 5, "two measures of five percentiles");
        let strict: Vec<&str> = c.rows.iter().filter(|r| r.metric.contains("dup")).map(|r| r.better.as_str()).collect();
        assert_eq!(strict, ["lower"]);
    }

    #[test]
    fn a_record_with_two_outcomes_is_a_row_and_a_regression_once_seen() {
        let base = sample();
        let mut cand = sample();
        cand.totals.multiple_outcomes = 1;
        let c = compare(&base, &cand, 5.0);
        let row = c.rows.iter().find(|r| r.metric == "multiple_outcomes").expect("a row once seen");
        assert!(row.regressed && c.regressed(), "{}", c.to_markdown());
        assert!(!compare(&base, &base, 5.0).rows.iter().any(|r| r.metric == "failed_in_topic"));
    }

    #[test]
    fn a_run_compared_with_itself_has_no_regression() {
        let c = compare(&sample(), &sample(), 5.0);
        assert!(!c.regressed(), "{}", c.to_markdown());
        assert!(c.to_markdown().contains("No regression"));
        assert_eq!(find(&c, "e2e_p99_ms").delta_pct, Some(0.0));
    }

    #[test]
    fn latency_beyond_the_threshold_regresses_within_it_does_not() {
        let base = sample();
        let mut cand = sample();
        cand.latency_ms.get_mut("e2e").unwrap().p99 = 310.0 * 1.04;
        assert!(!compare(&base, &cand, 5.0).regressed());
        cand.latency_ms.get_mut("e2e").unwrap().p99 = 310.0 * 1.06;
        let c = compare(&base, &cand, 5.0);
        assert!(find(&c, "e2e_p99_ms").regressed);
        assert!(c.to_markdown().contains("Regressed: e2e_p99_ms."), "{}", c.to_markdown());
        // faster is never a regression
        cand.latency_ms.get_mut("e2e").unwrap().p99 = 10.0;
        assert!(!compare(&base, &cand, 5.0).regressed());
    }

    #[test]
    fn any_loss_regresses() {
        let base = sample();
        let mut cand = sample();
        cand.totals.unaccounted = 1;
        let c = compare(&base, &cand, 50.0);
        assert!(find(&c, "unaccounted").regressed);
        assert!(c.to_markdown().contains("| unaccounted | 0 | 1 | 1 from 0 |"), "{}", c.to_markdown());
    }

    #[test]
    fn lower_throughput_regresses() {
        let base = sample();
        let mut cand = sample();
        cand.totals.delivered = 8_000;
        let c = compare(&base, &cand, 5.0);
        assert!(find(&c, "delivered_per_sec").regressed);
        assert_eq!(find(&c, "delivered_per_sec").delta_pct, Some(-20.0));
    }

    #[test]
    fn a_measure_missing_from_the_candidate_regresses() {
        let base = sample();
        let mut cand = sample();
        cand.latency_ms.remove("produce_ack");
        assert!(find(&compare(&base, &cand, 5.0), "produce_ack_p50_ms").regressed);
        // …but one the base lacked is only new
        assert!(!find(&compare(&cand, &base, 5.0), "produce_ack_p50_ms").regressed);
    }

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(fmt_num(10_000.0), "10000");
        assert_eq!(fmt_num(0.1), "0.1");
        assert_eq!(fmt_num(310.0 * 1.06), "328.6");
        assert_eq!(fmt_num(0.012_34), "0.0123");
    }
}
