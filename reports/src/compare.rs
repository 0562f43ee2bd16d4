//! Two runs side by side: which metrics moved, and which regressed.
//!
//! `mskbench compare BASE.json CANDIDATE.json [--threshold PCT]` prints
//! [`Comparison::to_markdown`] and exits 1 when [`Comparison::regressed`].
//! Each metric has a direction (latency and loss: lower is better;
//! delivered rate: higher is better). A metric regresses when it moves the
//! wrong way by more than the threshold, relative to the base. Loss
//! metrics (`unaccounted`, `dead_lettered`, `duplicates`) regress on any
//! increase: "no data lost" is not a percentage.

use std::fmt::Write as _;

use crate::model::RunResult;

/// Which way a metric should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: String,
    pub base: Option<f64>,
    pub candidate: Option<f64>,
    /// Relative change in percent, when both sides exist and base ≠ 0.
    pub delta_pct: Option<f64>,
    pub better: Better,
    pub regressed: bool,
}

/// The comparison of two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub base_name: String,
    pub candidate_name: String,
    pub threshold_pct: f64,
    pub rows: Vec<Row>,
}

/// Metrics compared for every run, with their direction and whether any
/// increase at all is a regression.
const FIXED: &[(&str, Better, bool)] = &[
    ("delivered_per_sec", Better::Higher, false),
    ("delivered_ratio", Better::Higher, false),
    ("max_unthrottled_per_sec", Better::Higher, false),
    ("unaccounted", Better::Lower, true),
    ("dead_lettered", Better::Lower, true),
    ("duplicates", Better::Lower, true),
    ("throttled_ratio", Better::Lower, false),
    ("throttled_calls", Better::Lower, false),
    ("retries", Better::Lower, false),
];

/// Compares `candidate` with `base`; `threshold_pct` is the tolerated
/// relative change in the wrong direction.
pub fn compare(base: &RunResult, candidate: &RunResult, threshold_pct: f64) -> Comparison {
    let mut rows: Vec<Row> = FIXED
        .iter()
        .map(|&(metric, better, strict)| row(metric, base, candidate, better, strict, threshold_pct))
        .collect();
    // Latency percentiles of every measure either run has.
    let mut measures: Vec<&String> = base.latency_ms.keys().chain(candidate.latency_ms.keys()).collect();
    measures.sort();
    measures.dedup();
    for measure in measures {
        for p in ["p50", "p90", "p99", "p999", "max"] {
            let metric = format!("{measure}_{p}_ms");
            rows.push(row(&metric, base, candidate, Better::Lower, false, threshold_pct));
        }
    }
    Comparison {
        base_name: base.scenario.name.clone(),
        candidate_name: candidate.scenario.name.clone(),
        threshold_pct,
        rows,
    }
}

fn row(metric: &str, base: &RunResult, cand: &RunResult, better: Better, strict: bool, threshold: f64) -> Row {
    let (b, c) = (base.metric(metric), cand.metric(metric));
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
    Row { metric: metric.to_owned(), base: b, candidate: c, delta_pct, better, regressed }
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
            let better = match r.better {
                Better::Lower => "lower",
                Better::Higher => "higher",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.metric,
                r.base.map_or("n/a".to_owned(), fmt_num),
                r.candidate.map_or("n/a".to_owned(), fmt_num),
                delta,
                better,
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
