//! `[[sweep]]`: one scenario key run at several values, one run a point,
//! for a latency-against-throughput chart as OpenMessaging Benchmark draws.
//!
//! ```toml
//! [[sweep]]
//! key = "phases.0.rate"
//! values = [500, 1000, 2000]
//! ```
//!
//! The key is a load rate (`phases.N.rate`, `phases.N.to_rate`), the
//! batch size (`processor.batch_size`) or the records per call
//! (`processor.records_per_call`); one `[[sweep]]` table a scenario, at
//! least two values. `mskbench run` runs the scenario once per value, as
//! `run --set KEY=VALUE`, so each point is checked like an override before
//! anything runs.

use serde::{Deserialize, Serialize};

/// One swept key and its values, in run order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// A dotted key path, as `run --set` takes it.
    pub key: String,
    /// The values, each a TOML value as the key takes it (`2000`, `"20k"`).
    pub values: Vec<toml::Value>,
}

impl Sweep {
    /// Each value as `run --set` text: its TOML form (`2000`, `"20k"`).
    pub fn set_values(&self) -> Vec<String> {
        self.values.iter().map(|v| text(v).unwrap_or_default()).collect()
    }
}

/// A number or string value as TOML writes it; `None` for other kinds.
fn text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::Integer(i) => Some(i.to_string()),
        // Not NaN or infinities: no key takes them, and JSON (result.json's settings) cannot hold them.
        toml::Value::Float(f) if f.is_finite() => Some(f.to_string()),
        // Rust's escapes of quotes and backslashes are TOML's basic string escapes.
        toml::Value::String(s) => Some(format!("{s:?}")),
        _ => None,
    }
}

/// Whether `key` is one a sweep may vary.
fn sweepable(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["phases", n, "rate" | "to_rate"] => n.parse::<usize>().is_ok(),
        ["processor", "batch_size" | "records_per_call"] => true,
        _ => false,
    }
}

/// The checks of the `[[sweep]]` tables on their own.
pub(crate) fn check(sweeps: &[Sweep], phases: usize) -> Result<(), String> {
    let Some(s) = sweeps.first() else { return Ok(()) };
    if sweeps.len() > 1 {
        return Err(format!("sweep: one [[sweep]] table a scenario, found {}: sweep one key at a time", sweeps.len()));
    }
    if !sweepable(&s.key) {
        return Err(format!(
            "sweep.key: {:?} cannot be swept; sweep phases.N.rate, phases.N.to_rate, processor.batch_size or \
             processor.records_per_call",
            s.key
        ));
    }
    if let Some(n) = s.key.strip_prefix("phases.").and_then(|r| r.split('.').next()?.parse::<usize>().ok())
        && n >= phases
    {
        return Err(format!("sweep.key: {:?} names phase {n}, but there are {phases} (from 0)", s.key));
    }
    if let Some(v) = s.values.iter().find(|v| text(v).is_none()) {
        return Err(format!("sweep.values: each value is a number or a string, not {} ({v:?})", v.type_str()));
    }
    if s.values.len() < 2 {
        return Err(format!("sweep.values: a sweep needs at least two values, got {}", s.values.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(key: &str, values: &str) -> Vec<Sweep> {
        #[derive(Deserialize)]
        struct Doc {
            sweep: Vec<Sweep>,
        }
        toml::from_str::<Doc>(&format!("[[sweep]]\nkey = \"{key}\"\nvalues = {values}\n")).unwrap().sweep
    }

    #[test]
    fn rates_batch_sizes_and_records_per_call_sweep_and_others_do_not() {
        assert!(check(&sweep("phases.1.rate", "[500, \"2k\"]"), 2).is_ok());
        assert_eq!(sweep("phases.1.rate", "[500, \"2k\"]")[0].set_values(), ["500", "\"2k\""]);
        assert!(check(&sweep("processor.batch_size", "[100, 500, 1000]"), 1).is_ok());
        assert!(check(&sweep("processor.records_per_call", "[50, 500]"), 1).is_ok());
        let err = check(&sweep("firehose.quota", "[\"us-east-1\", \"other\"]"), 1).unwrap_err();
        assert!(err.contains("\"firehose.quota\" cannot be swept"), "{err}");
        let err = check(&sweep("phases.3.rate", "[1, 2]"), 2).unwrap_err();
        assert!(err.contains("names phase 3, but there are 2"), "{err}");
        let err = check(&sweep("phases.0.rate", "[1, true]"), 1).unwrap_err();
        assert!(err.contains("each value is a number or a string, not boolean"), "{err}");
        let err = check(&sweep("phases.0.rate", "[1, nan]"), 1).unwrap_err();
        assert!(err.contains("each value is a number or a string, not float"), "{err}");
        let err = check(&sweep("phases.0.rate", "[1]"), 1).unwrap_err();
        assert!(err.contains("at least two values, got 1"), "{err}");
        let two = [sweep("phases.0.rate", "[1, 2]"), sweep("processor.batch_size", "[1, 2]")].concat();
        assert!(check(&two, 1).unwrap_err().contains("one [[sweep]] table a scenario, found 2"));
    }

    #[test]
    fn a_scenario_with_a_sweep_and_an_aborting_slo_reads_back_from_its_json() {
        // The fuzz target's property (fuzz/fuzz_targets/scenario.rs): written out, read back the same.
        let text = "name = \"s\"\nseed = 1\nslo = [\"unaccounted == 0\", \
                    { expr = \"retries < 10\", abort = true, abort_after = \"2s\" }]\n\
                    [[phases]]\nname = \"p\"\nduration = \"10s\"\nrate = 10\n\
                    [[sweep]]\nkey = \"phases.0.rate\"\nvalues = [10, 2.5, \"1k\"]\n";
        let scenario = crate::Scenario::parse(text, "s.toml").unwrap();
        let json = serde_json::to_value(&scenario).unwrap();
        let back: crate::Scenario = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, scenario, "{json}");
        assert_eq!(scenario.sweep[0].set_values(), ["10", "2.5", "\"1k\""]);
        assert!(scenario.to_string().contains("sweep: phases.0.rate over 10, 2.5, \"1k\""));
    }
}
