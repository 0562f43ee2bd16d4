//! The scenario's `slo` list: each entry an SLO, and whether its failure
//! stops the run (k6's `abortOnFail`).
//!
//! An entry is either the SLO's text (`"unaccounted == 0"`), checked once
//! the run is over, or a table that may also say `abort = true`:
//!
//! ```toml
//! slo = [
//!   "unaccounted == 0",
//!   { expr = "throttled_ratio < 0.05", abort = true, abort_after = "10s" },
//! ]
//! ```
//!
//! An aborting SLO is checked every second while the run produces, over
//! the run so far, from `abort_after` after the producer's schedule started
//! (k6's `delayAbortEval`: early percentiles and ratios rest on few
//! samples). The first that fails stops the load; the run then drains,
//! reads back and accounts what was produced, as after one Ctrl-C, and the
//! result says which SLO stopped it. So it can only name a metric the run
//! knows while it runs (the reports' catalogue marks them `live`:
//! counters such as `throttled_ratio`, `retries`, and `put_record_batch`
//! latency); one that needs the read-back (`unaccounted`) or the whole
//! window (`delivered_per_sec`) is refused when the file is read.

use std::fmt;
use std::time::Duration;

use mskbench_reports::Slo;
use mskbench_reports::catalogue::{is_live, live_names};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// One entry of the scenario's `slo` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// The SLO: `metric OP number`.
    pub slo: Slo,
    /// Whether a failure while the run produces stops it.
    pub abort: bool,
    /// How long after the producer's schedule started the checks begin
    /// (only with `abort`).
    pub abort_after: Duration,
}

impl Objective {
    /// An SLO checked once the run is over.
    pub fn at_end(slo: Slo) -> Objective {
        Objective { slo, abort: false, abort_after: Duration::ZERO }
    }
}

impl fmt::Display for Objective {
    /// The SLO's text, and its abort settings when it has them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.slo)?;
        if self.abort {
            write!(f, " (abort = true")?;
            if !self.abort_after.is_zero() {
                write!(f, ", abort_after = {}", humantime::format_duration(self.abort_after))?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

fn parse_slo<E: de::Error>(expr: &str) -> Result<Slo, E> {
    expr.parse().map_err(de::Error::custom)
}

/// Reads the text form or the table, naming the key that is wrong.
struct EntryVisitor;

impl<'de> de::Visitor<'de> for EntryVisitor {
    type Value = Objective;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an SLO's text (\"unaccounted == 0\") or a table { expr = \"…\", abort = true, abort_after = \"10s\" }",
        )
    }

    fn visit_str<E: de::Error>(self, expr: &str) -> Result<Objective, E> {
        Ok(Objective::at_end(parse_slo(expr)?))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Objective, A::Error> {
        let (mut expr, mut abort, mut after) = (None::<String>, false, None::<String>);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "expr" => expr = Some(map.next_value()?),
                "abort" => abort = map.next_value()?,
                "abort_after" => after = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &["expr", "abort", "abort_after"])),
            }
        }
        let expr = expr.ok_or_else(|| de::Error::missing_field("expr"))?;
        let slo = parse_slo(&expr)?;
        if abort && !is_live(&slo.metric) {
            return Err(de::Error::custom(format!(
                "SLO {expr:?}: abort = true needs a metric the run knows while it runs, and {} is known only once \
                 it is over (live: {})",
                slo.metric,
                live_names()
            )));
        }
        let abort_after = match after {
            None => Duration::ZERO,
            Some(_) if !abort => {
                return Err(de::Error::custom(format!("SLO {expr:?}: abort_after without abort = true means nothing")));
            }
            Some(text) => humantime::parse_duration(&text).map_err(|e| {
                de::Error::custom(format!(
                    "SLO {expr:?}: abort_after {text:?} is not a duration like \"10s\" or \"500ms\": {e}"
                ))
            })?,
        };
        Ok(Objective { slo, abort, abort_after })
    }
}

impl<'de> Deserialize<'de> for Objective {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

impl Serialize for Objective {
    /// The text form when it does not abort (as files without aborts have
    /// always been recorded), else the table.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        if !self.abort {
            return s.collect_str(&self.slo);
        }
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("expr", &self.slo.to_string())?;
        map.serialize_entry("abort", &true)?;
        if !self.abort_after.is_zero() {
            map.serialize_entry("abort_after", &humantime::format_duration(self.abort_after).to_string())?;
        }
        map.end()
    }
}

/// The check that spans keys: an abort that could only begin after the
/// load has ended would never be checked.
pub(crate) fn check(objectives: &[Objective], load: Duration) -> Result<(), String> {
    for (i, o) in objectives.iter().enumerate() {
        if o.abort && o.abort_after >= load {
            return Err(format!(
                "slo[{}] ({}): abort_after {} is not before the load's end ({}): it would never be checked",
                i + 1,
                o.slo,
                humantime::format_duration(o.abort_after),
                humantime::format_duration(load)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        slo: Vec<Objective>,
    }

    fn read(text: &str) -> Result<Vec<Objective>, String> {
        toml::from_str::<Doc>(text).map(|d| d.slo).map_err(|e| e.to_string())
    }

    #[test]
    fn text_and_table_forms_read_and_write_back() {
        let slo = read(
            "slo = [\"unaccounted == 0\", { expr = \"throttled_ratio < 0.05\", abort = true, abort_after = \"10s\" }, \
             { expr = \"retries < 10\" }]",
        )
        .unwrap();
        assert_eq!(slo.len(), 3);
        assert!(!slo[0].abort && slo[1].abort && !slo[2].abort);
        assert_eq!(slo[1].abort_after, Duration::from_secs(10));
        assert_eq!(slo[1].to_string(), "throttled_ratio < 0.05 (abort = true, abort_after = 10s)");
        let json = serde_json::to_value(&slo).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                "unaccounted == 0",
                {"expr": "throttled_ratio < 0.05", "abort": true, "abort_after": "10s"},
                "retries < 10"
            ])
        );
    }

    #[test]
    fn an_abort_needs_a_live_metric_and_abort_after_needs_an_abort() {
        let err = read("slo = [{ expr = \"unaccounted == 0\", abort = true }]").unwrap_err();
        assert!(err.contains("abort = true needs a metric the run knows while it runs"), "{err}");
        assert!(err.contains("unaccounted is known only once it is over (live: produced, "), "{err}");
        let err = read("slo = [{ expr = \"retries < 5\", abort_after = \"5s\" }]").unwrap_err();
        assert!(err.contains("abort_after without abort = true"), "{err}");
        let err = read("slo = [{ expr = \"retries < 5\", abort = true, stop = 1 }]").unwrap_err();
        assert!(err.contains("unknown field `stop`, expected one of `expr`, `abort`, `abort_after`"), "{err}");
        let err = read("slo = [{ expr = \"retries < 5\", abort = true, abort_after = \"soon\" }]").unwrap_err();
        assert!(err.contains("abort_after \"soon\" is not a duration"), "{err}");
        let err = read("slo = [{ abort = true }]").unwrap_err();
        assert!(err.contains("missing field `expr`"), "{err}");
        let err = read("slo = [3]").unwrap_err();
        assert!(err.contains("an SLO's text"), "{err}");
        let err = read("slo = [\"retrys < 5\"]").unwrap_err();
        assert!(err.contains("unknown metric \"retrys\""), "{err}");
    }

    #[test]
    fn an_abort_after_past_the_load_is_refused() {
        let slo = read("slo = [{ expr = \"retries < 5\", abort = true, abort_after = \"30s\" }]").unwrap();
        assert!(check(&slo, Duration::from_secs(31)).is_ok());
        let err = check(&slo, Duration::from_secs(30)).unwrap_err();
        assert!(err.contains("slo[1] (retries < 5): abort_after 30s is not before the load's end (30s)"), "{err}");
    }
}
