//! When the harness, not the pipeline, set the pace: [`detect`].
//!
//! A load tool that falls behind measures itself. Two signs of it, read
//! from the per-second series of the load phases, outside fault windows
//! (a fault slows the pipeline on purpose):
//!
//! - **producer**: the open-loop schedule slipped — the send delay's p99
//!   (actual send time − intended) above [`SEND_DELAY_P99_MS`] for
//!   [`SEND_DELAY_SECONDS`] seconds in a row. The producer (or the broker it
//!   sends to, in this process) could not send at the rate asked for.
//! - **mapping**: the event source mapping's lag grew for
//!   [`LAG_SECONDS`] seconds in a row by more than a second of input while
//!   Firehose throttled nothing: the mapping, the processor or the Firehose
//!   stand-in could not keep up, and Firehose's quota was not why.
//!
//! The first stretch found names the stage and the time; from there on the
//! run's rates and latencies are mskbench's on this machine, and
//! `max_unthrottled_per_sec` is no capacity of Firehose's.

use serde::{Deserialize, Serialize};

use crate::model::{FaultRecord, PhaseSpan, Sample};

/// Send delay p99 above which the schedule counts as slipping, ms.
pub const SEND_DELAY_P99_MS: f64 = 100.0;
/// Seconds in a row the send delay must stay above it.
pub const SEND_DELAY_SECONDS: usize = 3;
/// Seconds in a row the lag must grow.
pub const LAG_SECONDS: usize = 5;

/// The harness saturated (`result.json`'s `harness_saturated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// From when, seconds on the series' clock.
    pub from_s: f64,
    /// Which stage fell behind: `producer` or `mapping`.
    pub stage: String,
    /// What showed it, in numbers.
    pub evidence: String,
}

/// The first sign of saturation in `series` within the load phases of
/// `phases` and outside `faults`' windows, if any.
pub fn detect(series: &[Sample], phases: &[PhaseSpan], faults: &[FaultRecord]) -> Option<Saturation> {
    let loaded = |s: &Sample| {
        let (from, to) = (s.t as f64, s.t as f64 + 1.0);
        phases.iter().any(|p| p.name != "drain" && p.from_s < to && from < p.until_s)
            && !faults.iter().any(|f| f.from_s < to && from < f.until_s)
    };
    let producer = series.windows(SEND_DELAY_SECONDS).find(|w| {
        consecutive(w)
            && w.iter().all(|s| loaded(s) && s.send_delay_ms.as_ref().is_some_and(|d| d.p99 > SEND_DELAY_P99_MS))
    });
    let producer = producer.map(|w| Saturation {
        from_s: w[0].t as f64,
        stage: "producer".into(),
        evidence: format!(
            "the send delay's p99 stayed above {SEND_DELAY_P99_MS} ms for {SEND_DELAY_SECONDS} s from t = {} s \
             (up to {:.0} ms): the producer could not send at the rate asked for",
            w[0].t,
            w.iter().filter_map(|s| s.send_delay_ms.as_ref()).map(|d| d.p99).fold(0.0, f64::max)
        ),
    });
    let mapping = series.windows(LAG_SECONDS + 1).find(|w| {
        let input = w[1..].iter().map(|s| s.produced).sum::<u64>() / LAG_SECONDS as u64;
        consecutive(w)
            && w.iter().all(|s| loaded(s) && s.records_throttled == 0 && s.throttled_calls == 0)
            && w.windows(2).all(|p| p[1].lag > p[0].lag)
            && w[LAG_SECONDS].lag - w[0].lag > input.max(1)
    });
    let mapping = mapping.map(|w| Saturation {
        from_s: w[0].t as f64,
        stage: "mapping".into(),
        evidence: format!(
            "the event source mapping's lag grew every second from {} to {} records over t = {}–{} s while \
             Firehose throttled nothing: the mapping and processor could not keep up with the input",
            w[0].lag, w[LAG_SECONDS].lag, w[0].t, w[LAG_SECONDS].t
        ),
    });
    match (producer, mapping) {
        (Some(p), Some(m)) => Some(if m.from_s < p.from_s { m } else { p }),
        (p, m) => p.or(m),
    }
}

fn consecutive(w: &[Sample]) -> bool {
    w.windows(2).all(|p| p[1].t == p[0].t + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Percentiles;

    fn steady(n: u64) -> Vec<Sample> {
        (0..n).map(|t| Sample { t, produced: 1000, consumed: 1000, lag: 200, ..Sample::default() }).collect()
    }

    fn load(until_s: f64) -> Vec<PhaseSpan> {
        vec![PhaseSpan { name: "steady".into(), from_s: 0.0, until_s, measured: true }]
    }

    #[test]
    fn a_steady_run_is_not_saturated() {
        let mut series = steady(20);
        for s in &mut series {
            s.send_delay_ms = Some(Percentiles { p99: 4.0, ..Default::default() });
        }
        assert_eq!(detect(&series, &load(20.0), &[]), None);
    }

    #[test]
    fn a_slipping_schedule_is_the_producers_saturation_from_its_first_second() {
        let mut series = steady(20);
        for s in &mut series[6..9] {
            s.send_delay_ms = Some(Percentiles { p99: 450.0, ..Default::default() });
        }
        let s = detect(&series, &load(20.0), &[]).expect("saturated");
        assert_eq!((s.from_s, s.stage.as_str()), (6.0, "producer"));
        assert!(s.evidence.contains("450 ms"), "{}", s.evidence);
        // Two seconds are a hiccup, not saturation.
        series[8].send_delay_ms = None;
        assert_eq!(detect(&series, &load(20.0), &[]), None);
    }

    #[test]
    fn lag_growing_without_throttling_is_the_mappings_saturation_but_not_under_throttling_or_a_fault() {
        let mut series = steady(20);
        for (i, s) in series[4..10].iter_mut().enumerate() {
            s.lag = 200 + 600 * i as u64;
        }
        let s = detect(&series, &load(20.0), &[]).expect("saturated");
        assert_eq!((s.from_s, s.stage.as_str()), (4.0, "mapping"));
        assert!(s.evidence.contains("from 200 to 3200"), "{}", s.evidence);
        // Firehose throttling explains it: not the harness.
        let mut throttled = series.clone();
        throttled[6].records_throttled = 10;
        assert_eq!(detect(&throttled, &load(20.0), &[]), None);
        // Nor during a fault window, nor in the drain.
        let fault = FaultRecord {
            kind: "network_latency".into(),
            mode: None,
            from_s: 5.0,
            until_s: 7.0,
            effects: Default::default(),
        };
        assert_eq!(detect(&series, &load(20.0), &[fault]), None);
        assert_eq!(detect(&series, &load(5.0), &[]), None);
        // Growth of less than a second's input is a batch filling, not falling behind.
        for (i, s) in series[4..10].iter_mut().enumerate() {
            s.lag = 200 + 150 * i as u64;
        }
        assert_eq!(detect(&series, &load(20.0), &[]), None);
    }
}
