//! One result from a fleet's worker reports (`mskbench merge`).
//!
//! [`merge`] takes every worker's `--stats-json` [`Report`] and makes one
//! with the same keys, as if one producer had sent the whole run:
//!
//! - counts (`sent`, `acked`, `failed`, `failed_by_reason`, …) are sums;
//! - the three latency distributions are the workers' HdrHistograms added
//!   up, read from each report's `histograms` log, and the percentiles are
//!   the merged histogram's: never an average of percentiles, which has no
//!   meaning for a tail;
//! - `rate_target` is the sum of the workers' targets; `rate_achieved` is
//!   the measured records of all workers over the fleet's window, from the
//!   earliest measured start to the latest measured end on the workers'
//!   wall clocks (`measured_secs`), so a worker that started late or ran
//!   long lowers it rather than hiding behind the others;
//! - `partitions` is the union of the workers' ranges;
//! - `clock` spans the fleet (earliest start, the latest late start, the
//!   largest drift), `worker` names the fleet (`index` null).
//!
//! Beside those keys, [`Merged`] has one row per worker and the warnings:
//! a worker missing from the files, one that failed records or was
//! interrupted, clock skew (time zeros or `--start-at`s apart, a late
//! start, wall-clock drift) and measured windows of different lengths.
//! Files that cannot belong to one run (different fleet sizes, run seeds
//! or topics; the same index twice; no histograms) are an error.
//!
//! Boundary: pure (reports in, one result out); the CLI reads and writes
//! the files. Cost: decoding and adding three histograms per worker.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::fleet::{self, Clock, FleetError, WorkerInfo};
use crate::stats::{Report, new_histogram, percentiles};

/// Skew between workers' clocks or start times above which merge warns, ms.
pub const SKEW_WARN_MS: f64 = 100.0;
/// Relative difference of measured windows above which merge warns.
pub const WINDOW_WARN: f64 = 0.01;

/// Why the reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No reports at all.
    #[error("no worker reports to merge")]
    Empty,
    /// Two reports disagree on what run they belong to.
    #[error("{what} differs between the reports ({first} in the first, {other} in report {index}): not one run")]
    NotOneRun {
        /// The key that differs.
        what: &'static str,
        /// Its value in the first report.
        first: String,
        /// Its value in report `index`.
        other: String,
        /// The report (0-based, in the order given).
        index: usize,
    },
    /// One worker index in two reports.
    #[error("worker {0} is in two reports: its records would count twice")]
    Twice(u32),
    /// A report without the histogram log (an older mskbench, or a run that stopped before it).
    #[error("report {index} has no histogram log to merge (written by an mskbench without --workers?)")]
    NoHistograms {
        /// The report (0-based).
        index: usize,
    },
    /// A report whose histogram log does not decode.
    #[error("report {index}: {source}")]
    Log {
        /// The report (0-based).
        index: usize,
        /// What is wrong with its log.
        source: FleetError,
    },
}

/// One worker's line in a merged result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRow {
    /// The worker's index.
    pub index: u32,
    /// Its generator seed.
    pub seed: u64,
    /// Records it sent.
    pub sent: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Records failed.
    pub failed: u64,
    /// sent − acked − failed.
    pub unaccounted: u64,
    /// Its target rate, records/s.
    pub rate_target: f64,
    /// Its achieved rate over its own measured window, records/s.
    pub rate_achieved: f64,
    /// Records in its measured window.
    pub measured_records: u64,
    /// Its measured window, seconds.
    pub measured_secs: f64,
    /// Its schedule's time zero, Unix ms on its wall clock.
    pub start_unix_ms: f64,
    /// How late it started against `--start-at`, ms.
    pub late_start_ms: f64,
    /// Its ack latency p99 (from the intended send time), ms.
    pub ack_latency_p99_ms: f64,
    /// Its send delay p99, ms.
    pub send_delay_p99_ms: f64,
    /// True when it stopped early.
    pub interrupted: bool,
}

/// A fleet's merged result: the keys of one worker's report, the workers'
/// rows, and what the merge warns about.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    /// The fleet as one report.
    #[serde(flatten)]
    pub report: Report,
    /// One row per worker, by index.
    pub workers: Vec<WorkerRow>,
    /// Missing or failed workers, skew: each a sentence.
    pub warnings: Vec<String>,
    /// Indices of the fleet no report came from.
    pub missing_workers: Vec<u32>,
}

impl Merged {
    /// True when every worker reported and none failed records or stopped early.
    pub fn complete(&self) -> bool {
        self.missing_workers.is_empty()
            && self.workers.iter().all(|w| w.failed == 0 && w.unaccounted == 0 && !w.interrupted)
    }
}

/// Merges the reports of one run's workers (any order).
pub fn merge(reports: &[Report]) -> Result<Merged, MergeError> {
    let first = reports.first().ok_or(MergeError::Empty)?;
    let workers = first.worker.workers.max(1);
    for (index, r) in reports.iter().enumerate().skip(1) {
        let differs = |what: &'static str, a: String, b: String| {
            if a == b { Ok(()) } else { Err(MergeError::NotOneRun { what, first: a, other: b, index }) }
        };
        differs("worker.workers", first.worker.workers.to_string(), r.worker.workers.to_string())?;
        differs("worker.run_seed", first.worker.run_seed.to_string(), r.worker.run_seed.to_string())?;
        differs("topic", first.topic.clone(), r.topic.clone())?;
    }
    let mut by_index: BTreeMap<u32, &Report> = BTreeMap::new();
    for r in reports {
        let index = r.worker.index.unwrap_or(0);
        if by_index.insert(index, r).is_some() {
            return Err(MergeError::Twice(index));
        }
    }
    let mut warnings = Vec::new();
    let missing_workers: Vec<u32> = (0..workers).filter(|i| !by_index.contains_key(i)).collect();
    if !missing_workers.is_empty() {
        warnings.push(format!(
            "{} of {workers} workers missing (index {}): the result covers only the others",
            missing_workers.len(),
            list(&missing_workers)
        ));
    }

    // The histograms, added up tag by tag.
    let mut sums: Vec<Histogram<u64>> = fleet::TAGS.iter().map(|_| new_histogram()).collect();
    for (index, r) in reports.iter().enumerate() {
        if r.histograms.is_empty() {
            return Err(MergeError::NoHistograms { index });
        }
        let logs = fleet::read_histogram_log(&r.histograms).map_err(|source| MergeError::Log { index, source })?;
        for (sum, tag) in sums.iter_mut().zip(fleet::TAGS) {
            if let Some(h) = logs.get(tag) {
                sum.add(h).map_err(|e| MergeError::Log {
                    index,
                    source: FleetError::Log(format!("the {tag} histogram does not fit: {e:?}")),
                })?;
            }
        }
    }

    let rows: Vec<WorkerRow> = by_index.iter().map(|(&index, r)| row(index, r)).collect();
    for w in &rows {
        if w.failed > 0 || w.unaccounted > 0 {
            warnings
                .push(format!("worker {} failed {} records and left {} unaccounted", w.index, w.failed, w.unaccounted));
        }
        if w.interrupted {
            warnings.push(format!("worker {} was interrupted before its schedule ended", w.index));
        }
        if w.late_start_ms > SKEW_WARN_MS {
            warnings.push(format!(
                "worker {} started {:.1} ms after --start-at: its first records were late (see its send delay)",
                w.index, w.late_start_ms
            ));
        }
    }
    skew_warnings(reports, &mut warnings);

    let clock = fleet_clock(reports);
    let measured_secs = ((clock.measured_end_unix_ms - clock.measured_start_unix_ms) / 1000.0).max(0.0);
    let measured_records: u64 = reports.iter().map(|r| r.measured_records).sum();
    let end_ms =
        reports.iter().map(|r| r.clock.start_unix_ms + r.elapsed_secs * 1000.0).fold(f64::NEG_INFINITY, f64::max);
    let mut failed_by_reason = BTreeMap::new();
    for r in reports {
        for (reason, n) in &r.failed_by_reason {
            *failed_by_reason.entry(reason.clone()).or_insert(0) += n;
        }
    }
    let schemas: Vec<&str> = {
        let mut s: Vec<&str> = reports.iter().map(|r| r.schema.as_str()).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    if schemas.len() > 1 {
        warnings.push(format!("the workers framed values with different schemas: {}", schemas.join(", ")));
    }
    let start = UNIX_EPOCH + Duration::from_secs_f64((clock.start_unix_ms / 1000.0).max(0.0));
    let from = Duration::from_secs_f64(((clock.measured_start_unix_ms - clock.start_unix_ms) / 1000.0).max(0.0));
    let tagged: Vec<(&str, &Histogram<u64>)> = fleet::TAGS.iter().copied().zip(sums.iter()).collect();
    let histograms = fleet::histogram_log(start, from, Duration::from_secs_f64(measured_secs), &tagged)
        .map_err(|source| MergeError::Log { index: 0, source })?;
    let sent: u64 = reports.iter().map(|r| r.sent).sum();
    let acked: u64 = reports.iter().map(|r| r.acked).sum();
    let failed: u64 = reports.iter().map(|r| r.failed).sum();
    let report = Report {
        sent,
        acked,
        failed,
        rate_target: round3(reports.iter().map(|r| r.rate_target).sum()),
        rate_achieved: if measured_secs > 0.0 { round3(measured_records as f64 / measured_secs) } else { 0.0 },
        ack_latency_ms: percentiles(&sums[0], 1000.0),
        ack_latency_from_send_ms: percentiles(&sums[1], 1000.0),
        send_delay_ms: percentiles(&sums[2], 1000.0),
        failed_by_reason,
        queue_full_waits: reports.iter().map(|r| r.queue_full_waits).sum(),
        unaccounted: reports.iter().map(|r| r.unaccounted).sum(),
        warmup_records: reports.iter().map(|r| r.warmup_records).sum(),
        measured_records,
        measured_secs: round3(measured_secs),
        elapsed_secs: round3(((end_ms - clock.start_unix_ms) / 1000.0).max(0.0)),
        seed: first.worker.run_seed,
        topic: first.topic.clone(),
        schema: schemas.join(","),
        interrupted: reports.iter().any(|r| r.interrupted),
        worker: WorkerInfo { index: None, workers, run_seed: first.worker.run_seed },
        clock,
        partitions: fleet::union_ranges(reports.iter().flat_map(|r| &r.partitions)),
        histograms,
        records: None,
    };
    Ok(Merged { report, workers: rows, warnings, missing_workers })
}

fn row(index: u32, r: &Report) -> WorkerRow {
    WorkerRow {
        index,
        seed: r.seed,
        sent: r.sent,
        acked: r.acked,
        failed: r.failed,
        unaccounted: r.unaccounted,
        rate_target: r.rate_target,
        rate_achieved: r.rate_achieved,
        measured_records: r.measured_records,
        measured_secs: r.measured_secs,
        start_unix_ms: r.clock.start_unix_ms,
        late_start_ms: r.clock.late_start_ms,
        ack_latency_p99_ms: r.ack_latency_ms.p99,
        send_delay_p99_ms: r.send_delay_ms.p99,
        interrupted: r.interrupted,
    }
}

/// The fleet's clock: the earliest time zero and measured start, the
/// latest measured end, the latest late start and the largest drift.
fn fleet_clock(reports: &[Report]) -> Clock {
    let min = |f: fn(&Clock) -> f64| reports.iter().map(|r| f(&r.clock)).fold(f64::INFINITY, f64::min);
    let max = |f: fn(&Clock) -> f64| reports.iter().map(|r| f(&r.clock)).fold(f64::NEG_INFINITY, f64::max);
    let start_ats: Vec<f64> = reports.iter().filter_map(|r| r.clock.start_at_unix_ms).collect();
    Clock {
        start_unix_ms: min(|c| c.start_unix_ms),
        start_at_unix_ms: (start_ats.len() == reports.len())
            .then(|| start_ats.iter().copied().fold(f64::INFINITY, f64::min)),
        late_start_ms: max(|c| c.late_start_ms),
        measured_start_unix_ms: min(|c| c.measured_start_unix_ms),
        measured_end_unix_ms: max(|c| c.measured_end_unix_ms),
        wall_drift_ms: reports
            .iter()
            .map(|r| r.clock.wall_drift_ms)
            .fold(0.0, |a: f64, d| if d.abs() > a.abs() { d } else { a }),
    }
}

/// Warnings about the workers' clocks and windows.
fn skew_warnings(reports: &[Report], warnings: &mut Vec<String>) {
    let spread = |values: Vec<f64>| {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        hi - lo
    };
    let start_ats: Vec<Option<f64>> = reports.iter().map(|r| r.clock.start_at_unix_ms).collect();
    if start_ats.iter().any(Option::is_some) && start_ats.iter().any(Option::is_none) {
        warnings.push("some workers had --start-at and some not: their schedules did not start together".into());
    }
    let starts = spread(reports.iter().map(|r| r.clock.start_unix_ms).collect());
    if starts > SKEW_WARN_MS {
        warnings.push(format!(
            "the workers' schedules started {starts:.1} ms apart (give them one --start-at): the fleet's window is \
             longer than each worker's, and its rate lower"
        ));
    }
    for r in reports {
        if r.clock.wall_drift_ms.abs() > SKEW_WARN_MS {
            warnings.push(format!(
                "worker {}'s wall clock moved {:.1} ms against its monotonic clock during the run (NTP?): the \
                 windows are only that exact",
                r.worker.index.unwrap_or(0),
                r.clock.wall_drift_ms
            ));
        }
    }
    let lengths: Vec<f64> = reports.iter().map(|r| r.measured_secs).collect();
    let longest = lengths.iter().copied().fold(0.0, f64::max);
    if longest > 0.0 && spread(lengths) / longest > WINDOW_WARN {
        warnings.push(format!(
            "the workers' measured windows differ by more than {:.0}% ({}): the summed target is not the rate over \
             one window",
            WINDOW_WARN * 100.0,
            reports.iter().map(|r| format!("{:.3} s", r.measured_secs)).collect::<Vec<_>>().join(", ")
        ));
    }
}

fn list(indices: &[u32]) -> String {
    indices.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::PartitionRange;

    /// A worker's report with `values` µs in each histogram, a measured
    /// window of `secs` starting at `start_ms`.
    fn worker(index: u32, workers: u32, values: &[u64], start_ms: f64, secs: f64) -> Report {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        let start = UNIX_EPOCH + Duration::from_secs_f64(start_ms / 1000.0);
        let tagged: Vec<(&str, &Histogram<u64>)> = fleet::TAGS.iter().map(|t| (*t, &h)).collect();
        let n = values.len() as u64;
        Report {
            sent: n,
            acked: n,
            measured_records: n,
            measured_secs: secs,
            elapsed_secs: secs,
            rate_target: n as f64 / secs,
            rate_achieved: n as f64 / secs,
            ack_latency_ms: percentiles(&h, 1000.0),
            send_delay_ms: percentiles(&h, 1000.0),
            ack_latency_from_send_ms: percentiles(&h, 1000.0),
            seed: u64::from(index) + 100,
            topic: "t".into(),
            schema: "1".into(),
            worker: WorkerInfo { index: Some(index), workers, run_seed: 7 },
            clock: Clock {
                start_unix_ms: start_ms,
                start_at_unix_ms: Some(start_ms),
                measured_start_unix_ms: start_ms,
                measured_end_unix_ms: start_ms + secs * 1000.0,
                ..Clock::default()
            },
            partitions: vec![PartitionRange {
                partition: 0,
                first_offset: u64::from(index) as i64,
                last_offset: 10,
                acked: n,
            }],
            histograms: fleet::histogram_log(start, Duration::ZERO, Duration::from_secs_f64(secs), &tagged).unwrap(),
            ..Report::default()
        }
    }

    #[test]
    fn counts_add_up_and_percentiles_are_the_merged_histograms() {
        let fast: Vec<u64> = (1..=900).collect();
        let slow: Vec<u64> = (1..=100).map(|v| v * 10_000).collect();
        let t0 = 1_800_000_000_000.0;
        let merged = merge(&[worker(1, 2, &slow, t0, 10.0), worker(0, 2, &fast, t0, 10.0)]).unwrap();
        let r = &merged.report;
        assert_eq!((r.sent, r.acked, r.measured_records), (1000, 1000, 1000));
        assert_eq!(r.rate_achieved, 100.0);
        assert_eq!(r.rate_target, 100.0);
        let mut all = new_histogram();
        for v in fast.iter().chain(&slow) {
            all.record(*v).unwrap();
        }
        assert_eq!(r.ack_latency_ms, percentiles(&all, 1000.0));
        // An average of the two p99s would be far from the fleet's p99.
        assert!(r.ack_latency_ms.p99 > 900.0, "{:?}", r.ack_latency_ms);
        assert_eq!(fleet::read_histogram_log(&r.histograms).unwrap()["ack_latency"], all);
        assert_eq!(merged.workers.iter().map(|w| w.index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(r.partitions, [PartitionRange { partition: 0, first_offset: 0, last_offset: 10, acked: 1000 }]);
        assert_eq!((r.worker.index, r.worker.workers, r.seed), (None, 2, 7));
        assert!(merged.warnings.is_empty() && merged.complete(), "{:?}", merged.warnings);
        let json = serde_json::to_value(&merged).unwrap();
        for key in serde_json::to_value(Report::default()).unwrap().as_object().unwrap().keys() {
            assert!(json.get(key).is_some(), "merged lacks {key}");
        }
    }

    #[test]
    fn a_missing_worker_a_late_one_and_foreign_reports_are_said() {
        let t0 = 1_800_000_000_000.0;
        let mut late = worker(2, 3, &[5, 6], t0, 10.0);
        late.clock.late_start_ms = 750.0;
        let merged = merge(&[worker(0, 3, &[1, 2], t0, 10.0), late]).unwrap();
        assert_eq!(merged.missing_workers, [1]);
        assert!(!merged.complete());
        assert!(merged.warnings.iter().any(|w| w.contains("1 of 3 workers missing")), "{:?}", merged.warnings);
        assert!(merged.warnings.iter().any(|w| w.contains("750.0 ms after --start-at")), "{:?}", merged.warnings);

        let apart = merge(&[worker(0, 2, &[1], t0, 10.0), worker(1, 2, &[1], t0 + 5_000.0, 10.0)]).unwrap();
        assert!(apart.warnings.iter().any(|w| w.contains("5000.0 ms apart")), "{:?}", apart.warnings);
        assert_eq!(apart.report.measured_secs, 15.0, "the fleet's window spans both");

        let other_run = Report {
            worker: WorkerInfo { run_seed: 8, ..worker(1, 2, &[1], t0, 1.0).worker },
            ..worker(1, 2, &[1], t0, 1.0)
        };
        let e = merge(&[worker(0, 2, &[1], t0, 1.0), other_run]).unwrap_err();
        assert!(e.to_string().contains("worker.run_seed differs"), "{e}");
        let e = merge(&[worker(0, 2, &[1], t0, 1.0), worker(0, 2, &[1], t0, 1.0)]).unwrap_err();
        assert!(matches!(e, MergeError::Twice(0)), "{e}");
        let bare = Report { histograms: String::new(), ..worker(0, 1, &[1], t0, 1.0) };
        assert!(matches!(merge(&[bare]), Err(MergeError::NoHistograms { index: 0 })));
        assert!(matches!(merge(&[]), Err(MergeError::Empty)));
    }
}
