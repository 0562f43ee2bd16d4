//! Service-level objectives: `metric OP number`, checked against a run.
//!
//! A scenario lists SLOs as text (`throttled_ratio < 0.01`,
//! `e2e_p99_ms < 2000`, `unaccounted == 0`); `mskbench run` exits 1 when one
//! fails. The grammar is deliberately one comparison per line — a list of
//! them is a conjunction — so a report can say exactly which one failed and
//! by how much. Metric names are the catalogue's ([`crate::catalogue`]): its
//! rows and the percentiles of its measures. An unknown name is refused
//! when the scenario is read, not after a long run, and the error lists the
//! known ones.

use std::fmt;
use std::str::FromStr;

use crate::catalogue;
use crate::model::{RunResult, SloResult};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// One parsed SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// A catalogued metric name.
    pub metric: String,
    /// How the metric's value is compared with the threshold.
    pub op: Op,
    /// A finite number.
    pub threshold: f64,
}

/// An SLO text that is not `metric OP number`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SloError {
    /// Not one metric name, one operator and one number.
    #[error("SLO {0:?}: expected `metric OP number` with OP one of < <= > >= == !=")]
    Syntax(String),
    /// The threshold is not a finite number.
    #[error("SLO {expr:?}: {number:?} is not a number")]
    Number {
        /// The SLO as written.
        expr: String,
        /// The text after the operator.
        number: String,
    },
    /// The metric is not in the catalogue.
    #[error("SLO {expr:?}: unknown metric {metric:?} (known: {})", catalogue::known_names())]
    UnknownMetric {
        /// The SLO as written.
        expr: String,
        /// The name before the operator.
        metric: String,
    },
}

impl FromStr for Slo {
    type Err = SloError;

    fn from_str(expr: &str) -> Result<Self, Self::Err> {
        // Two-character operators first, so `<=` is not read as `<`.
        const OPS: [(&str, Op); 6] =
            [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("!=", Op::Ne), ("<", Op::Lt), (">", Op::Gt)];
        let (at, op_text, op) = OPS
            .iter()
            .filter_map(|(text, op)| expr.find(text).map(|at| (at, *text, *op)))
            .min_by_key(|(at, text, _)| (*at, std::cmp::Reverse(text.len())))
            .ok_or_else(|| SloError::Syntax(expr.to_owned()))?;
        let metric = expr[..at].trim();
        let number = expr[at + op_text.len()..].trim();
        let valid_name = !metric.is_empty() && metric.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_name || number.is_empty() {
            return Err(SloError::Syntax(expr.to_owned()));
        }
        let threshold = number
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| SloError::Number { expr: expr.to_owned(), number: number.to_owned() })?;
        if !catalogue::is_known(metric) {
            return Err(SloError::UnknownMetric { expr: expr.to_owned(), metric: metric.to_owned() });
        }
        Ok(Slo { metric: metric.to_owned(), op, threshold })
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.as_str(), self.threshold)
    }
}

impl Slo {
    /// Checks this SLO against `run`; a metric the run lacks fails it.
    pub fn evaluate(&self, run: &RunResult) -> SloResult {
        let value = run.metric(&self.metric);
        SloResult { expr: self.to_string(), value, ok: value.is_some_and(|v| self.op.holds(v, self.threshold)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    #[test]
    fn parses_the_shipped_forms() {
        let s: Slo = "throttled_ratio < 0.01".parse().unwrap();
        assert_eq!((s.metric.as_str(), s.op, s.threshold), ("throttled_ratio", Op::Lt, 0.01));
        assert_eq!("e2e_p99_ms<=2000".parse::<Slo>().unwrap().op, Op::Le);
        assert_eq!("unaccounted == 0".parse::<Slo>().unwrap().op, Op::Eq);
        assert_eq!("delivered_per_sec >= 1e3".parse::<Slo>().unwrap().threshold, 1000.0);
        assert_eq!("duplicates != 0".parse::<Slo>().unwrap().op, Op::Ne);
    }

    #[test]
    fn refuses_malformed_and_unknown() {
        assert!(matches!("throttled_ratio".parse::<Slo>(), Err(SloError::Syntax(_))));
        assert!(matches!("< 3".parse::<Slo>(), Err(SloError::Syntax(_))));
        assert!(matches!("a b < 3".parse::<Slo>(), Err(SloError::Syntax(_))));
        assert!(matches!("unaccounted == zero".parse::<Slo>(), Err(SloError::Number { .. })));
        assert!(matches!("unaccounted == NaN".parse::<Slo>(), Err(SloError::Number { .. })));
        let err = "throttle_ratio < 1".parse::<Slo>().unwrap_err();
        assert!(err.to_string().contains("unknown metric \"throttle_ratio\""), "{err}");
    }

    #[test]
    fn evaluates_against_a_run() {
        let run = sample();
        let ok = "unaccounted == 0".parse::<Slo>().unwrap().evaluate(&run);
        assert_eq!(ok, SloResult { expr: "unaccounted == 0".into(), value: Some(0.0), ok: true });
        let bad = "throttled_ratio < 0.01".parse::<Slo>().unwrap().evaluate(&run);
        assert!(!bad.ok);
        assert_eq!(bad.value, Some(0.1));
        let missing = "put_record_batch_p99_ms < 100".parse::<Slo>().unwrap().evaluate(&run);
        assert_eq!((missing.value, missing.ok), (None, false));
    }

    #[test]
    fn slos_accept_exactly_the_catalogued_names() {
        let mut accepted: Vec<String> = catalogue::METRICS.iter().map(|m| m.name.to_owned()).collect();
        for measure in &catalogue::MEASURES {
            accepted.extend(catalogue::percentile_keys().map(|p| catalogue::latency_name(measure.name, p)));
        }
        for name in &accepted {
            assert!(format!("{name} < 1").parse::<Slo>().is_ok(), "{name}");
        }
        for name in ["throttle_ratio", "e2e_p95_ms", "ack_p99_ms", "_p99_ms", "e2e_p99", "Produced", "totals"] {
            let err = format!("{name} < 1").parse::<Slo>().unwrap_err().to_string();
            assert!(err.contains("unknown metric") && err.contains(&catalogue::known_names()), "{name}: {err}");
        }
        assert_eq!(accepted.len(), catalogue::METRICS.len() + catalogue::MEASURES.len() * 5);
        let err = "throttle_ratio < 1".parse::<Slo>().unwrap_err().to_string();
        assert!(err.contains("(known: produced, delivered, delivered_measured, delivered_per_sec, "), "{err}");
        assert!(
            err.ends_with(
                ", duration_s, billed_ingestion_gb, lambda_gb_seconds, cost_usd, usd_per_million_delivered, \
                 <produce_ack|put_record_batch|e2e>_<p50|p90|p99|p999|max>_ms)"
            ),
            "{err}"
        );
    }
}
