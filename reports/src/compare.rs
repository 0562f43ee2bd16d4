//! Two results side by side: which metrics moved, beyond noise, and which way.
//!
//! `mskbench compare BASE CANDIDATE [--threshold PCT] [--alpha A]` prints
//! [`Comparison::to_markdown`] and exits 1 when [`Comparison::regressed`].
//! Either side is a single run's `result.json` or the aggregate of
//! repeated runs (`mskbench run --repeat N`, [`crate::aggregate`]). The
//! rows are the catalogue's compared metrics, in its order, then every
//! latency percentile of every measure either side has. Each has a
//! direction (latency and loss: lower is better; delivered rate: higher is
//! better), and a verdict:
//!
//! - **Loss metrics** (`unaccounted`, `dead_lettered`, `duplicates`, …:
//!   [`Compare::AnyWorse`]) regress on any increase of their worst run,
//!   whatever the threshold or the noise: "no data lost" is not a
//!   percentage.
//! - **Other metrics** compare medians. A metric whose median moved by no
//!   more than the threshold (relative to the base) is ok. One that moved
//!   further is judged by the Mann–Whitney U test ([`crate::noise`]) when
//!   both sides have enough runs for it to reach `alpha`
//!   ([`noise::min_runs_for`], 4 at α = 0.05): *regressed* or *improved*
//!   when p < α, *within noise* otherwise. With fewer runs the median's
//!   move alone decides, and the verdict says it is weak.
//!
//! Whether two results may be compared at all (same scenario, same
//! settings) is [`crate::aggregate::differences`]'s question, asked by the
//! caller before this.

use std::fmt::Write as _;

use crate::aggregate::Side;
use crate::catalogue::{self, Better, Compare, METRICS};
use crate::model::RunResult;
use crate::noise::{self, Summary};

/// How a comparison judges a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Tolerated relative move of a median in the wrong direction, percent.
    pub threshold_pct: f64,
    /// The significance level of the Mann–Whitney test.
    pub alpha: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { threshold_pct: 5.0, alpha: 0.05 }
    }
}

/// What a comparison says of one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Unchanged, or moved by no more than the threshold.
    Ok,
    /// Moved beyond the threshold, but not beyond noise (p ≥ α).
    WithinNoise,
    /// Worse: beyond the threshold and noise; for loss metrics, any increase.
    Regressed,
    /// Better, as far as a regression would have to be worse.
    Improved,
    /// The base has it and the candidate does not: not comparable, and
    /// not silently fine either.
    Missing,
    /// Only the candidate has it.
    New,
    /// A side did not measure it, and its catalogue row says that is no
    /// regression ([`Compare::WhenMeasured`]).
    NotMeasured,
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    metric: String,
    /// The median of each side's runs.
    base: Option<f64>,
    candidate: Option<f64>,
    /// Each side's range, when it has several runs.
    base_range: Option<(f64, f64)>,
    candidate_range: Option<(f64, f64)>,
    /// Relative change of the medians in percent, when both exist and base ≠ 0.
    delta_pct: Option<f64>,
    better: Better,
    /// The Mann–Whitney p-value, when the sides had runs enough for it.
    p_value: Option<f64>,
    /// Decided on too few runs for the test.
    weak: bool,
    verdict: Verdict,
}

/// The comparison of two results: one row per compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    base_name: String,
    candidate_name: String,
    base_runs: usize,
    candidate_runs: usize,
    options: Options,
    rows: Vec<Row>,
}

/// Compares two single runs; `threshold_pct` is the tolerated relative
/// change in the wrong direction. One run a side: every verdict is weak.
pub fn compare(base: &RunResult, candidate: &RunResult, threshold_pct: f64) -> Comparison {
    compare_sides(
        &Side::Run(Box::new(base.clone())),
        &Side::Run(Box::new(candidate.clone())),
        Options { threshold_pct, ..Options::default() },
    )
}

/// Compares `candidate` with `base`, single runs or sets, as `options` say.
pub fn compare_sides(base: &Side, candidate: &Side, options: Options) -> Comparison {
    let mut rows: Vec<Row> = METRICS.iter().filter_map(|m| row(m.name, m.compare, base, candidate, options)).collect();
    let mut measures: Vec<String> = base.measures().into_iter().chain(candidate.measures()).collect();
    measures.sort();
    measures.dedup();
    for measure in measures {
        for p in catalogue::percentile_keys() {
            let metric = catalogue::latency_name(&measure, p);
            rows.extend(row(&metric, catalogue::LATENCY_COMPARE, base, candidate, options));
        }
    }
    Comparison {
        base_name: base.scenario().name.clone(),
        candidate_name: candidate.scenario().name.clone(),
        base_runs: base.runs(),
        candidate_runs: candidate.runs(),
        options,
        rows,
    }
}

/// The row of `metric`, unless the catalogue leaves it out of comparisons.
fn row(metric: &str, judged: Compare, base: &Side, cand: &Side, options: Options) -> Option<Row> {
    let (better, strict, optional) = match judged {
        Compare::No => return None,
        Compare::BeyondThreshold(better) => (better, false, false),
        Compare::WhenMeasured(better) => (better, false, true),
        Compare::AnyWorse(better) | Compare::AnyWorseWhenSeen(better) => (better, true, false),
    };
    let (bs, cs) = (base.summary(metric), cand.summary(metric));
    let everything: Vec<f64> = bs.iter().chain(cs.iter()).flat_map(|s| s.values.iter().copied()).collect();
    if !judged.shown(&everything) || (bs.is_none() && cs.is_none()) {
        return None;
    }
    let (b, c) = (bs.as_ref().map(|s| s.median), cs.as_ref().map(|s| s.median));
    let delta_pct = match (b, c) {
        (Some(b), Some(c)) if b != 0.0 => Some((c - b) / b.abs() * 100.0),
        _ => None,
    };
    // How much worse `to` is than `from`, in the metric's direction.
    let worse = |from: f64, to: f64| match better {
        Better::Lower => to - from,
        Better::Higher => from - to,
    };
    let range = |s: &Option<Summary>| s.as_ref().filter(|s| s.values.len() > 1).map(|s| (s.min, s.max));
    let (mut p_value, mut weak) = (None, false);
    let verdict = match (&bs, &cs) {
        (Some(bs), Some(cs)) if strict => {
            // The worst run of each side.
            let worst = |s: &Summary| match better {
                Better::Lower => s.max,
                Better::Higher => s.min,
            };
            let w = worse(worst(bs), worst(cs));
            if w > 0.0 {
                Verdict::Regressed
            } else if w < 0.0 {
                Verdict::Improved
            } else {
                Verdict::Ok
            }
        }
        (Some(bs), Some(cs)) => {
            let w = worse(bs.median, cs.median);
            // No relative change from zero: any move counts as beyond.
            let beyond =
                if bs.median == 0.0 { w != 0.0 } else { w.abs() / bs.median.abs() * 100.0 > options.threshold_pct };
            let needed = noise::min_runs_for(options.alpha);
            if !beyond {
                Verdict::Ok
            } else if bs.values.len() >= needed && cs.values.len() >= needed {
                let p = noise::mann_whitney(&bs.values, &cs.values);
                p_value = Some(p);
                if p >= options.alpha {
                    Verdict::WithinNoise
                } else if w > 0.0 {
                    Verdict::Regressed
                } else {
                    Verdict::Improved
                }
            } else {
                weak = true;
                if w > 0.0 { Verdict::Regressed } else { Verdict::Improved }
            }
        }
        _ if optional => Verdict::NotMeasured,
        (Some(_), None) => Verdict::Missing,
        _ => Verdict::New,
    };
    Some(Row {
        metric: metric.to_owned(),
        base: b,
        candidate: c,
        base_range: range(&bs),
        candidate_range: range(&cs),
        delta_pct,
        better,
        p_value,
        weak,
        verdict,
    })
}

impl Row {
    /// A regression, or a metric the candidate lost.
    fn regressed(&self) -> bool {
        matches!(self.verdict, Verdict::Regressed | Verdict::Missing)
    }
}

impl Comparison {
    /// True when any metric regressed (weak verdicts included) or went missing.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(Row::regressed)
    }

    /// The names of the metrics with `verdict`, in row order.
    pub fn with_verdict(&self, verdict: Verdict) -> Vec<&str> {
        self.rows.iter().filter(|r| r.verdict == verdict).map(|r| r.metric.as_str()).collect()
    }

    /// A Markdown table for a terminal or a pull-request comment.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let sets = self.base_runs > 1 || self.candidate_runs > 1;
        let runs = |n: usize| if n == 1 { "1 run".to_owned() } else { format!("{n} runs") };
        let _ = writeln!(
            out,
            "Comparing `{}` (base, {}) with `{}` (candidate, {}); threshold {}%{}.\n",
            self.base_name,
            runs(self.base_runs),
            self.candidate_name,
            runs(self.candidate_runs),
            fmt_num(self.options.threshold_pct),
            if sets {
                format!(", beyond noise at α = {} (Mann–Whitney U, two-sided)", fmt_num(self.options.alpha))
            } else {
                String::new()
            },
        );
        if self.rows.iter().any(|r| r.weak) {
            let _ = writeln!(
                out,
                "The verdicts marked *weak* compare medians of fewer than {} runs a side, too few to tell a \
                 change from noise (two runs of one commit can differ by tens of percent in a tail \
                 percentile). Run both sides with `mskbench run --repeat {}` or more.\n",
                noise::min_runs_for(self.options.alpha),
                noise::min_runs_for(self.options.alpha).max(5),
            );
        }
        if sets {
            out.push_str(
                "| metric | base | candidate | delta | better | p | verdict |\n|---|---:|---:|---:|---|---:|---|\n",
            );
        } else {
            out.push_str("| metric | base | candidate | delta | better | verdict |\n|---|---:|---:|---:|---|---|\n");
        }
        for r in &self.rows {
            let delta = match (r.delta_pct, r.base, r.candidate) {
                (Some(d), _, _) => format!("{d:+.1}%"),
                (None, Some(b), Some(c)) if b == c => "0".to_owned(),
                (None, Some(_), Some(c)) => format!("{} from 0", fmt_num(c)),
                _ => "n/a".to_owned(),
            };
            let side = |median: Option<f64>, range: Option<(f64, f64)>| match (median, range) {
                (Some(m), Some((lo, hi))) => format!("{} [{}–{}]", fmt_num(m), fmt_num(lo), fmt_num(hi)),
                (Some(m), None) => fmt_num(m),
                (None, _) => "n/a".to_owned(),
            };
            let verdict = match r.verdict {
                Verdict::Ok => "ok",
                Verdict::WithinNoise => "within noise",
                Verdict::Regressed => "**regressed**",
                Verdict::Improved => "improved",
                Verdict::Missing => "**missing**",
                Verdict::New => "new",
                Verdict::NotMeasured => "not judged: not measured on both sides",
            };
            let verdict = if r.weak { format!("{verdict} (weak)") } else { verdict.to_owned() };
            let base = side(r.base, r.base_range);
            let candidate = side(r.candidate, r.candidate_range);
            if sets {
                let p = r.p_value.map_or_else(String::new, |p| format!("{p:.3}"));
                let _ = writeln!(
                    out,
                    "| {} | {base} | {candidate} | {delta} | {} | {p} | {verdict} |",
                    r.metric,
                    r.better.as_str()
                );
            } else {
                let _ = writeln!(
                    out,
                    "| {} | {base} | {candidate} | {delta} | {} | {verdict} |",
                    r.metric,
                    r.better.as_str()
                );
            }
        }
        let regressed: Vec<&str> = self.rows.iter().filter(|r| r.regressed()).map(|r| r.metric.as_str()).collect();
        if regressed.is_empty() {
            out.push_str("\nNo regression beyond the threshold.\n");
        } else {
            let _ = writeln!(out, "\nRegressed: {}.", regressed.join(", "));
        }
        let improved = self.with_verdict(Verdict::Improved);
        if !improved.is_empty() {
            let _ = writeln!(out, "Improved: {}.", improved.join(", "));
        }
        let noisy = self.with_verdict(Verdict::WithinNoise);
        if !noisy.is_empty() {
            let _ = writeln!(out, "Moved beyond the threshold but within noise: {}.", noisy.join(", "));
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
            "usd_per_million_delivered",
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
        assert!(row.regressed() && c.regressed(), "{}", c.to_markdown());
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
        assert!(find(&c, "e2e_p99_ms").regressed());
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
        assert!(find(&c, "unaccounted").regressed());
        assert!(c.to_markdown().contains("| unaccounted | 0 | 1 | 1 from 0 |"), "{}", c.to_markdown());
    }

    #[test]
    fn lower_throughput_regresses() {
        let base = sample();
        let mut cand = sample();
        cand.totals.delivered = 8_000;
        cand.totals.delivered_measured = Some(8_000);
        let c = compare(&base, &cand, 5.0);
        assert!(find(&c, "delivered_per_sec").regressed());
        assert_eq!(find(&c, "delivered_per_sec").delta_pct, Some(-20.0));
    }

    #[test]
    fn a_measure_missing_from_the_candidate_regresses() {
        let base = sample();
        let mut cand = sample();
        cand.latency_ms.remove("produce_ack");
        assert!(find(&compare(&base, &cand, 5.0), "produce_ack_p50_ms").regressed());
        // …but one the base lacked is only new
        assert!(!find(&compare(&cand, &base, 5.0), "produce_ack_p50_ms").regressed());
    }

    /// An aggregate of runs of the sample whose e2e p99 takes `p99s`.
    fn set(p99s: &[f64]) -> Side {
        let runs: Vec<(String, RunResult)> = p99s
            .iter()
            .enumerate()
            .map(|(i, &p99)| {
                let mut r = sample();
                r.latency_ms.get_mut("e2e").unwrap().p99 = p99;
                (format!("run-{i}"), r)
            })
            .collect();
        Side::Set(Box::new(crate::aggregate::Aggregate::of(&runs).unwrap()))
    }

    fn sets(base: &[f64], cand: &[f64], threshold_pct: f64) -> Comparison {
        compare_sides(&set(base), &set(cand), Options { threshold_pct, alpha: 0.05 })
    }

    #[test]
    fn overlapping_sets_are_within_noise_even_when_the_medians_differ_beyond_the_threshold() {
        // Medians 310 → 340 (+9.7%), but the runs interleave: p ≈ 0.4.
        let c = sets(&[300.0, 310.0, 350.0, 290.0, 330.0], &[340.0, 305.0, 360.0, 295.0, 345.0], 5.0);
        let r = find(&c, "e2e_p99_ms");
        assert_eq!(r.verdict, Verdict::WithinNoise, "{}", c.to_markdown());
        assert!(r.p_value.unwrap() > 0.05 && !r.weak);
        assert!(!c.regressed());
        assert!(c.to_markdown().contains("within noise: e2e_p99_ms"), "{}", c.to_markdown());
    }

    #[test]
    fn separated_sets_regress_or_improve_beyond_noise_with_their_p_value() {
        let base = [300.0, 305.0, 310.0, 302.0, 308.0];
        let slower = [330.0, 335.0, 331.0, 340.0, 333.0];
        let c = sets(&base, &slower, 5.0);
        let r = find(&c, "e2e_p99_ms");
        assert_eq!(r.verdict, Verdict::Regressed);
        assert!((r.p_value.unwrap() - 2.0 / 252.0).abs() < 1e-12);
        assert!(c.regressed());
        assert!(c.to_markdown().contains("| e2e_p99_ms | 305 [300–310] | 333 [330–340] |"), "{}", c.to_markdown());
        let c = sets(&slower, &base, 5.0);
        assert_eq!(find(&c, "e2e_p99_ms").verdict, Verdict::Improved);
        assert!(!c.regressed() && c.to_markdown().contains("Improved: e2e_p99_ms."));
        // A threshold of 0: significance alone decides.
        assert_eq!(
            find(&sets(&base, &[311.0, 312.0, 313.0, 314.0, 315.0], 0.0), "e2e_p99_ms").verdict,
            Verdict::Regressed
        );
        // Beyond noise but within the threshold: ok.
        assert_eq!(find(&sets(&base, &slower, 20.0), "e2e_p99_ms").verdict, Verdict::Ok);
    }

    #[test]
    fn too_few_runs_give_weak_verdicts_and_say_why() {
        let c = sets(&[300.0, 310.0, 305.0], &[340.0, 345.0, 350.0], 5.0);
        let r = find(&c, "e2e_p99_ms");
        assert_eq!((r.verdict, r.weak, r.p_value), (Verdict::Regressed, true, None));
        let md = c.to_markdown();
        assert!(md.contains("**regressed** (weak)") && md.contains("fewer than 4 runs a side"), "{md}");
        let single = compare(&sample(), &sample(), 5.0).to_markdown();
        assert!(!single.contains("weak"), "nothing moved, nothing weak: {single}");
    }

    #[test]
    fn loss_stays_strict_in_sets_one_bad_run_regresses() {
        let base = set(&[300.0; 5]);
        let runs: Vec<(String, RunResult)> = (0..5)
            .map(|i| {
                let mut r = sample();
                r.totals.unaccounted = u64::from(i == 3);
                (format!("run-{i}"), r)
            })
            .collect();
        let cand = Side::Set(Box::new(crate::aggregate::Aggregate::of(&runs).unwrap()));
        let c = compare_sides(&base, &cand, Options { threshold_pct: 50.0, alpha: 0.05 });
        let r = find(&c, "unaccounted");
        assert_eq!((r.verdict, r.p_value, r.weak), (Verdict::Regressed, None, false), "{}", c.to_markdown());
        assert_eq!(r.candidate, Some(0.0), "the median hides it; the worst run does not");
    }

    #[test]
    fn a_highest_unthrottled_rate_is_judged_only_between_throttled_runs() {
        let throttled = sample();
        let mut calm = sample();
        (calm.totals.throttled_records, calm.totals.throttled_calls) = (0, 0);
        assert_eq!(calm.metric("max_unthrottled_per_sec"), None, "the offered load, not a capacity");
        let c = compare(&throttled, &calm, 5.0);
        let r = find(&c, "max_unthrottled_per_sec");
        assert_eq!(r.verdict, Verdict::NotMeasured);
        assert!(!r.regressed(), "{}", c.to_markdown());
        assert!(!compare(&calm, &calm, 5.0).rows.iter().any(|r| r.metric == "max_unthrottled_per_sec"));
        assert!(crate::markdown::render(&calm).contains("No throttling up to"), "{}", crate::markdown::render(&calm));
    }

    #[test]
    fn the_delivered_rate_counts_the_measured_phases_only() {
        let mut r = sample();
        r.totals.delivered_measured = Some(8_000);
        assert_eq!(r.metric("delivered_per_sec"), Some(800.0), "warm-up deliveries are not in the measured rate");
        r.totals.delivered_measured = None;
        assert_eq!(r.metric("delivered_per_sec"), Some(1_000.0), "an older result: the whole run, as written");
    }

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(fmt_num(10_000.0), "10000");
        assert_eq!(fmt_num(0.1), "0.1");
        assert_eq!(fmt_num(310.0 * 1.06), "328.6");
        assert_eq!(fmt_num(0.012_34), "0.0123");
    }
}
