//! A fleet of producer workers sending one run between them.
//!
//! `mskbench produce --workers N --worker-index I` (on Kubernetes, an
//! Indexed Job's `JOB_COMPLETION_INDEX`) makes this process worker `I` of
//! `N`. [`Worker`] decides its share: the rate (or profile) divided by
//! `N`, its part of `--count` (the first `count % N` workers send one
//! more), its own seed derived from the run's, and, through
//! `ClickEvents::for_worker`, disjoint user blocks and `globalseq`s, so
//! the fleet's records together follow the lab's model as one producer's
//! would. A fleet of one is the plain run: same seed, same records.
//!
//! What a worker's `--stats-json` adds so that `mskbench merge` can merge
//! exactly, without averaging anything: [`WorkerInfo`] (who it was),
//! [`Clock`] (its schedule's time zero and measured window on its wall
//! clock, how late it started against `--start-at`, how far its wall
//! clock moved against its monotonic clock), [`PartitionRange`]s (where
//! its acknowledged records landed, for the fleet's read-back) and its
//! measured histograms as an HdrHistogram interval log ([`histogram_log`],
//! read back by [`read_histogram_log`]; HdrHistogram's own tools read the
//! same text).
//!
//! Boundary: pure values and text; no clock reads except where a caller
//! passes the time in.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::schedule::Profile;

/// Tags of the three measured histograms in a report's log, named as the
/// report's percentile keys (`ack_latency_ms`, …) without the unit.
pub const TAGS: [&str; 3] = ["ack_latency", "ack_latency_from_send", "send_delay"];

/// A fleet configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// No workers, or an index outside the fleet.
    #[error("worker index {index} is not below the number of workers, {workers} (indices run from 0)")]
    Index {
        /// The index asked for.
        index: u32,
        /// The fleet's size.
        workers: u32,
    },
    /// A fleet of no workers.
    #[error("the number of workers must be at least 1")]
    NoWorkers,
    /// A histogram log that does not parse or decode.
    #[error("not an HdrHistogram interval log: {0}")]
    Log(String),
}

/// This process's place in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    /// 0 to `workers − 1`.
    pub index: u32,
    /// The fleet's size, at least 1.
    pub workers: u32,
}

impl Default for Worker {
    fn default() -> Self {
        Worker::SOLE
    }
}

impl Worker {
    /// A run of one process.
    pub const SOLE: Worker = Worker { index: 0, workers: 1 };

    /// Worker `index` of `workers`.
    pub fn new(index: u32, workers: u32) -> Result<Worker, FleetError> {
        match (index, workers) {
            (_, 0) => Err(FleetError::NoWorkers),
            (i, n) if i >= n => Err(FleetError::Index { index, workers }),
            _ => Ok(Worker { index, workers }),
        }
    }

    /// The worker's generator seed: the run's seed itself in a fleet of
    /// one, else a SplitMix64 step of the run's seed and the index, so
    /// that every worker draws its own stream from one printed seed.
    pub fn seed(&self, run_seed: u64) -> u64 {
        if self.workers == 1 {
            return run_seed;
        }
        let mut z = run_seed.wrapping_add(u64::from(self.index + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The worker's part of a fleet's `count`: `count / workers`, one more
    /// for the first `count % workers` workers, so the parts add up to
    /// `count` and (with `ClickEvents::for_worker`) the fleet's
    /// `globalseq`s are exactly 1 to `count`.
    pub fn count(&self, count: u64) -> u64 {
        let n = u64::from(self.workers);
        count / n + u64::from(u64::from(self.index) < count % n)
    }

    /// The worker's part of the fleet's rate: the profile with every rate
    /// divided by the number of workers; `max` stays `max` (each worker
    /// as fast as it can).
    pub fn profile(&self, profile: &Profile) -> Profile {
        profile.scaled(1.0 / f64::from(self.workers))
    }
}

/// Who wrote a report, in `--stats-json` as `worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WorkerInfo {
    /// The worker's index; `null` in a merged report.
    pub index: Option<u32>,
    /// The fleet's size.
    pub workers: u32,
    /// The run's seed, from which each worker's `seed` derives.
    pub run_seed: u64,
}

/// A worker's clock, in `--stats-json` as `clock`: what places its
/// windows on a common time line. Times are Unix milliseconds on the
/// worker's own wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    /// The schedule's time zero: `--start-at` when given (also when the
    /// worker started late), else when the schedule began.
    pub start_unix_ms: f64,
    /// The `--start-at` asked for; `null` without.
    pub start_at_unix_ms: Option<f64>,
    /// How long after `--start-at` the schedule could begin (0 when on time
    /// or without it); the first records' send delay includes it.
    pub late_start_ms: f64,
    /// Start of the measured window (time zero plus the warm-up).
    pub measured_start_unix_ms: f64,
    /// End of the measured window.
    pub measured_end_unix_ms: f64,
    /// How far the wall clock moved against the monotonic clock between
    /// the start and the report, ms (a step or slew of NTP; positive: the
    /// wall clock ran ahead). The windows above are only as exact as this.
    pub wall_drift_ms: f64,
}

/// Where a worker's acknowledged records landed in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRange {
    /// The partition.
    pub partition: i32,
    /// The lowest offset acknowledged there.
    pub first_offset: i64,
    /// The highest offset acknowledged there.
    pub last_offset: i64,
    /// Records acknowledged there (other producers' records may lie between).
    pub acked: u64,
}

/// Keeps [`PartitionRange`]s as delivery reports come in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ranges(BTreeMap<i32, PartitionRange>);

impl Ranges {
    /// One more acknowledged record at `(partition, offset)`.
    pub(crate) fn add(&mut self, partition: i32, offset: i64) {
        let r = self.0.entry(partition).or_insert(PartitionRange {
            partition,
            first_offset: offset,
            last_offset: offset,
            acked: 0,
        });
        r.first_offset = r.first_offset.min(offset);
        r.last_offset = r.last_offset.max(offset);
        r.acked += 1;
    }

    /// The ranges, by partition.
    pub(crate) fn to_vec(&self) -> Vec<PartitionRange> {
        self.0.values().copied().collect()
    }
}

/// The union of several workers' ranges, partition by partition.
pub fn union_ranges<'a>(ranges: impl IntoIterator<Item = &'a PartitionRange>) -> Vec<PartitionRange> {
    let mut out: BTreeMap<i32, PartitionRange> = BTreeMap::new();
    for r in ranges {
        out.entry(r.partition)
            .and_modify(|u| {
                u.first_offset = u.first_offset.min(r.first_offset);
                u.last_offset = u.last_offset.max(r.last_offset);
                u.acked += r.acked;
            })
            .or_insert(*r);
    }
    out.into_values().collect()
}

/// Milliseconds since the Unix epoch of `t` (negative before it).
pub fn unix_ms(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// An HdrHistogram interval log (V2, deflated, values in µs, max divisor
/// 1000) of one interval per histogram: `from` seconds after `start` for
/// `length`, each tagged with its name.
pub fn histogram_log(
    start: SystemTime,
    from: Duration,
    length: Duration,
    histograms: &[(&str, &Histogram<u64>)],
) -> Result<String, FleetError> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("mskbench: measured histograms, values in microseconds (divide by 1000 for ms)")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| FleetError::Log(e.to_string()))?;
        for (tag, h) in histograms {
            log.write_histogram(*h, from, length, Tag::new(tag)).map_err(|e| FleetError::Log(e.to_string()))?;
        }
    }
    String::from_utf8(out).map_err(|e| FleetError::Log(e.to_string()))
}

/// One interval of an interval log: its tag (`""` when untagged), its start
/// (relative to the log's base time) and length, and its histogram.
#[derive(Debug, Clone)]
pub struct Interval {
    /// The interval's tag, `""` when it has none.
    pub tag: String,
    /// When the interval began, after the log's base time.
    pub start: Duration,
    /// How long it lasted.
    pub length: Duration,
    /// The values recorded in it.
    pub histogram: Histogram<u64>,
}

/// Every interval of an interval log, in the log's order.
pub fn read_intervals(text: &str) -> Result<Vec<Interval>, FleetError> {
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        let entry = entry.map_err(|e| FleetError::Log(format!("{e:?}")))?;
        let LogEntry::Interval(interval) = entry else { continue };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| FleetError::Log(format!("an interval's histogram is not base64: {e}")))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| FleetError::Log(format!("an interval's histogram does not decode: {e:?}")))?;
        out.push(Interval {
            tag: interval.tag().map_or(String::new(), |t| t.as_str().to_owned()),
            start: interval.start_timestamp(),
            length: interval.duration(),
            histogram,
        });
    }
    Ok(out)
}

/// The histograms of an interval log by tag, the intervals of each tag
/// added up (untagged ones under `""`).
pub fn read_histogram_log(text: &str) -> Result<BTreeMap<String, Histogram<u64>>, FleetError> {
    let mut out: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for Interval { tag, histogram, .. } in read_intervals(text)? {
        match out.get_mut(&tag) {
            Some(sum) => {
                sum.add(&histogram).map_err(|e| FleetError::Log(format!("cannot add the {tag:?} intervals: {e:?}")))?
            }
            None => {
                out.insert(tag, histogram);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_fleets() {
        for (count, workers) in [(10u64, 3u32), (2, 4), (1_000_000, 7), (0, 2)] {
            let parts: Vec<u64> = (0..workers).map(|i| Worker::new(i, workers).unwrap().count(count)).collect();
            assert_eq!(parts.iter().sum::<u64>(), count, "{parts:?}");
            assert!(parts.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1), "{parts:?}");
        }
        let w = Worker::new(1, 4).unwrap();
        assert_eq!(w.profile(&Profile::constant(1000.0)), Profile::constant(250.0));
        assert_eq!(w.profile(&Profile::Max), Profile::Max);
        let ramp = Profile::parse("ramp:100:1000:10s", None).unwrap();
        assert!((w.profile(&ramp).cumulative(10.0) - ramp.cumulative(10.0) / 4.0).abs() < 1e-9);
    }

    #[test]
    fn each_worker_has_its_own_seed_and_a_fleet_of_one_keeps_the_runs() {
        assert_eq!(Worker::SOLE.seed(42), 42);
        let seeds: std::collections::HashSet<u64> = (0..8).map(|i| Worker::new(i, 8).unwrap().seed(42)).collect();
        assert_eq!(seeds.len(), 8);
        assert_eq!(Worker::new(3, 8).unwrap().seed(42), Worker::new(3, 8).unwrap().seed(42));
        assert_eq!(Worker::new(3, 3), Err(FleetError::Index { index: 3, workers: 3 }));
        assert_eq!(Worker::new(0, 0), Err(FleetError::NoWorkers));
    }

    #[test]
    fn a_histogram_log_reads_back_as_written() {
        let mut a = crate::stats::new_histogram();
        let mut b = crate::stats::new_histogram();
        for v in 1..=10_000u64 {
            a.record(v).unwrap();
            b.record(v * 7).unwrap();
        }
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let text =
            histogram_log(start, Duration::from_secs(1), Duration::from_secs(5), &[("x", &a), ("y", &b)]).unwrap();
        let read = read_histogram_log(&text).unwrap();
        assert_eq!(read["x"], a);
        assert_eq!(read["y"], b);
        assert!(read_histogram_log("Tag=x,0.0,1.0,1.0,@@@\n").is_err());
    }

    #[test]
    fn ranges_keep_the_lowest_and_highest_offsets() {
        let mut r = Ranges::default();
        for (p, o) in [(0, 5), (0, 2), (1, 9), (0, 7)] {
            r.add(p, o);
        }
        let v = r.to_vec();
        assert_eq!(v[0], PartitionRange { partition: 0, first_offset: 2, last_offset: 7, acked: 3 });
        let u = union_ranges(
            v.iter().chain([PartitionRange { partition: 1, first_offset: 1, last_offset: 3, acked: 2 }].iter()),
        );
        assert_eq!(u[1], PartitionRange { partition: 1, first_offset: 1, last_offset: 9, acked: 3 });
    }
}
