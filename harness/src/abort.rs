//! Step 3's guard: SLOs marked `abort = true` (k6's `abortOnFail`),
//! checked every second while the load runs.
//!
//! After each sample the sampler hands the series so far to [`Watch::check`],
//! which builds the run's result *so far* from what is known while it runs
//! — the producer's acknowledged count, the processor's live counters
//! (throttled, retried, dead-lettered) and its `PutRecordBatch` latency
//! histogram — and evaluates each aborting SLO on it through the same
//! catalogue the final result uses, so a name means the same thing in both.
//! The scenario model has already refused aborts on metrics that need the
//! read-back ([`mskbench_reports::catalogue::is_live`]).
//!
//! Checks run from the SLO's `abort_after` after the producer's schedule
//! started until the load's planned end, and not once the producer is
//! stopping (Ctrl-C). The first failure stops the producer (as one Ctrl-C
//! does); the run then drains, reads back and accounts what was produced,
//! and the result names the SLO in `scenario.aborted`.
//!
//! Cost: one copy of the call-latency histogram (a few tens of KiB) a
//! second, and only in runs with an aborting SLO.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mskbench_processor::Live;
use mskbench_producer::Control;
use mskbench_producer::stats::percentiles;
use mskbench_reports::catalogue::PUT_RECORD_BATCH;
use mskbench_reports::{Aborted, RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, Totals};
use mskbench_scenarios::Objective;

/// The aborting SLOs of a run and what they need to be checked.
pub(crate) struct Watch {
    objectives: Vec<Objective>,
    control: Control,
    live: Arc<Live>,
    /// The load's planned length, from the producer's schedule start.
    load: Duration,
    fired: Arc<OnceLock<Aborted>>,
}

impl Watch {
    /// A watch over the objectives with `abort = true`; `fired` is where
    /// the first failure is kept for the result.
    pub(crate) fn new(
        objectives: &[Objective],
        control: Control,
        live: Arc<Live>,
        load: Duration,
        fired: Arc<OnceLock<Aborted>>,
    ) -> Watch {
        let objectives = objectives.iter().filter(|o| o.abort).cloned().collect();
        Watch { objectives, control, live, load, fired }
    }

    /// Checks the aborting SLOs after the sample ending `at_s` seconds into
    /// the series; on the first failure stops the load and returns it.
    pub(crate) fn check(&self, series: &[Sample], at_s: u64) -> Option<&Aborted> {
        if self.objectives.is_empty() {
            return None;
        }
        let (start, _) = self.control.started()?;
        self.check_since(series, at_s, start.elapsed())
    }

    /// [`Watch::check`], `since` the producer's schedule started.
    fn check_since(&self, series: &[Sample], at_s: u64, since: Duration) -> Option<&Aborted> {
        if self.fired.get().is_some() || self.control.stopping() || since >= self.load {
            return None;
        }
        let due: Vec<&Objective> = self.objectives.iter().filter(|o| since >= o.abort_after).collect();
        if due.is_empty() {
            return None;
        }
        let so_far = self.so_far(series);
        for o in due {
            let result = o.slo.evaluate(&so_far);
            // A metric with no value yet (no call answered) has not failed.
            if let (Some(value), false) = (result.value, result.ok) {
                self.control.stop();
                let _ = self.fired.set(Aborted { slo: result.expr, at_s, value });
                return self.fired.get();
            }
        }
        None
    }

    /// The result as far as the run knows it while it runs: only what the
    /// live metrics read is filled in.
    fn so_far(&self, series: &[Sample]) -> RunResult {
        let live = self.live.snapshot();
        let mut latency_ms = BTreeMap::new();
        let put = self.live.call_latency_us();
        if !put.is_empty() {
            latency_ms.insert(PUT_RECORD_BATCH.name.to_owned(), percentiles(&put, 1000.0));
        }
        RunResult {
            schema_version: SCHEMA_VERSION,
            scenario: ScenarioInfo {
                name: String::new(),
                file: String::new(),
                seed: 0,
                started_at: String::new(),
                duration_s: 0.0,
                quota: None,
                settings: serde_json::Value::Null,
                interrupted: false,
                aborted: None,
                overrides: Vec::new(),
                tags: BTreeMap::new(),
            },
            totals: Totals {
                produced: self.control.acked(),
                dead_lettered: live.dead_lettered,
                throttled_records: live.throttled_records,
                throttled_calls: live.throttled_calls,
                retries: live.resent_records,
                ..Totals::default()
            },
            latency_ms,
            series: series.to_vec(),
            slo: Vec::new(),
            faults: Vec::new(),
            phases: Vec::new(),
            latency_curve_ms: BTreeMap::new(),
            harness_saturated: None,
            cost: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn objective(expr: &str, abort: bool, after_s: u64) -> Objective {
        Objective { slo: expr.parse().unwrap(), abort, abort_after: Duration::from_secs(after_s) }
    }

    fn sample(accepted: u64, throttled: u64) -> Sample {
        Sample { records_accepted: accepted, records_throttled: throttled, ..Sample::default() }
    }

    #[test]
    fn nothing_is_checked_before_the_schedule_starts_nor_for_slos_that_do_not_abort() {
        let fired = Arc::new(OnceLock::new());
        let live = Arc::new(Live::default());
        live.throttled_records.store(500, Ordering::Relaxed);
        let slos = [objective("throttled_records < 10", false, 0), objective("throttled_records < 10", true, 0)];
        let control = Control::new();
        let watch = Watch::new(&slos, control.clone(), live, Duration::from_secs(60), fired.clone());
        // The producer has not started its schedule: not checked.
        assert!(watch.check(&[sample(100, 500)], 1).is_none());
        assert!(!control.stopping() && fired.get().is_none());
        let only_at_end =
            Watch::new(&slos[..1], control.clone(), Arc::new(Live::default()), Duration::from_secs(60), fired);
        assert!(only_at_end.objectives.is_empty());
    }

    #[test]
    fn the_first_failing_slo_stops_the_load_once_its_delay_is_over() {
        let fired = Arc::new(OnceLock::new());
        let live = Arc::new(Live::default());
        let slos = [objective("retries < 1000", true, 0), objective("throttled_ratio < 0.2", true, 5)];
        let control = Control::new();
        let watch = Watch::new(&slos, control.clone(), live.clone(), Duration::from_secs(60), fired.clone());
        let series = [sample(100, 0), sample(50, 50)];
        live.throttled_records.store(50, Ordering::Relaxed);
        // A quarter of the attempts throttled, but before abort_after.
        assert!(watch.check_since(&series, 2, Duration::from_secs(2)).is_none());
        assert!(!control.stopping());
        // Past the load's end nothing is checked either.
        assert!(watch.check_since(&series, 70, Duration::from_secs(60)).is_none());
        let a = watch.check_since(&series, 6, Duration::from_secs(6)).cloned().unwrap();
        assert_eq!(a, Aborted { slo: "throttled_ratio < 0.2".into(), at_s: 6, value: 50.0 / 200.0 });
        assert!(control.stopping(), "the load stops");
        assert_eq!(fired.get(), Some(&a));
        // It fires once: later failures do not replace it.
        live.resent_records.store(5000, Ordering::Relaxed);
        assert!(watch.check_since(&series, 7, Duration::from_secs(7)).is_none());
        assert_eq!(fired.get().unwrap().slo, "throttled_ratio < 0.2");
    }

    #[test]
    fn live_counters_are_what_the_slos_read_and_a_missing_latency_has_not_failed() {
        let fired = Arc::new(OnceLock::new());
        let live = Arc::new(Live::default());
        let slos = [objective("put_record_batch_p99_ms < 50", true, 0), objective("dead_lettered == 0", true, 0)];
        let watch = Watch::new(&slos, Control::new(), live.clone(), Duration::from_secs(60), fired);
        // No call answered yet: no latency, no failure.
        assert!(watch.check_since(&[], 1, Duration::from_secs(1)).is_none());
        assert!(watch.so_far(&[]).latency_ms.is_empty());
        live.dead_lettered.store(3, Ordering::Relaxed);
        let a = watch.check_since(&[], 3, Duration::from_secs(3)).unwrap();
        assert_eq!((a.slo.as_str(), a.value), ("dead_lettered == 0", 3.0));
    }
}
