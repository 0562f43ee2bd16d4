//! Step 6, read back: every produced record, found in the output.
//!
//! Counters inside the pipeline can agree with each other and still be
//! wrong; this module counts from the outside instead. After a run:
//!
//! 1. **Produced**: the run's records are read back from the topic (from
//!    the offsets each partition had before the run to its end) and decoded
//!    by the same code the processor runs, so each gives the exact JSON line
//!    Firehose should have received. They form a multiset of lines (a
//!    64-bit hash per line; identical records are counted, not merged), each
//!    with its Kafka timestamp, the record's creation time.
//! 2. **Delivered**: every S3-layout object is read, oldest first, and each
//!    line is matched to a produced record. The first copy of a record is
//!    delivered, at the object's write time (its end-to-end latency is that
//!    minus the creation time); further copies are `duplicates`; a line that
//!    matches nothing produced is `unmatched` (it should never happen).
//! 3. **Dead-lettered**: every dead-letter line names its record by topic,
//!    partition and offset.
//! 4. **Unaccounted**: produced records neither delivered nor dead-lettered,
//!    plus records the broker acknowledged that the read-back did not find.
//!
//! Boundary: [`Ledger`] is pure (lines in, counts out) and unit-tested; the
//! file and Kafka reading around it is exercised by the run tests. Cost:
//! one hash and one map lookup per line, a few tens of bytes of memory per
//! produced record.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use mskbench_core::Output;
use mskbench_processor::Handler;
use mskbench_processor::esm::{EventBuilder, MAX_PAYLOAD, record_json};
use mskbench_sim::firehose as delivery;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The identity of a record's line: a hash of its bytes (newline excluded).
fn line_key(line: &[u8]) -> u64 {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut h = DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

/// What happened to the records of one line.
#[derive(Debug, Default)]
struct Entry {
    /// Creation times (epoch ms) of the produced copies, in read-back order.
    created_ms: Vec<i64>,
    delivered: u32,
    dead_lettered: u32,
    /// True for records the processor cannot decode: they can only be dead-lettered.
    undecodable: bool,
}

/// The record accounting of one run.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    lines: HashMap<u64, Entry>,
    coordinates: HashMap<(i32, i64), u64>,
    produced: u64,
    duplicates: u64,
    unmatched: u64,
    unknown_dead_letters: u64,
    /// Delivery latency of each first copy: (delivered at epoch ms, e2e ms, created epoch ms).
    deliveries: Vec<(i64, i64, i64)>,
}

/// The totals the ledger arrives at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub produced: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub duplicates: u64,
    pub unaccounted: u64,
    /// Delivered lines that match no produced record.
    pub unmatched: u64,
    /// Dead letters naming a record the read-back did not see.
    pub unknown_dead_letters: u64,
}

impl Ledger {
    /// A record read back from the topic, with the line the processor should send.
    pub(crate) fn produced(&mut self, partition: i32, offset: i64, created_ms: i64, line: &[u8]) {
        let key = line_key(line);
        self.lines.entry(key).or_default().created_ms.push(created_ms);
        self.coordinates.insert((partition, offset), key);
        self.produced += 1;
    }

    /// A record read back that the processor cannot decode (it can only be dead-lettered).
    pub(crate) fn produced_undecodable(&mut self, partition: i32, offset: i64, created_ms: i64) {
        // Keyed by its coordinates, so no delivered line can match it.
        let mut h = DefaultHasher::new();
        (u64::MAX, partition, offset).hash(&mut h);
        let key = h.finish();
        let entry = self.lines.entry(key).or_default();
        entry.created_ms.push(created_ms);
        entry.undecodable = true;
        self.coordinates.insert((partition, offset), key);
        self.produced += 1;
    }

    /// A line found in a delivered object written at `delivered_ms`.
    pub(crate) fn delivered(&mut self, line: &[u8], delivered_ms: i64) {
        match self.lines.get_mut(&line_key(line)) {
            Some(e) if !e.undecodable => {
                let copy = e.delivered as usize;
                e.delivered += 1;
                match e.created_ms.get(copy) {
                    Some(&created) => self.deliveries.push((delivered_ms, delivered_ms - created, created)),
                    None => self.duplicates += 1,
                }
            }
            _ => self.unmatched += 1,
        }
    }

    /// A dead letter naming `(partition, offset)`.
    pub(crate) fn dead_lettered(&mut self, partition: i32, offset: i64) {
        match self.coordinates.get(&(partition, offset)).and_then(|k| self.lines.get_mut(k)) {
            Some(e) => e.dead_lettered += 1,
            None => self.unknown_dead_letters += 1,
        }
    }

    /// The totals; `acked` is what the broker acknowledged, so records it
    /// acknowledged but the read-back did not find count as unaccounted.
    pub(crate) fn tally(&self, acked: u64) -> Tally {
        let mut t = Tally {
            produced: self.produced.max(acked),
            duplicates: self.duplicates,
            unmatched: self.unmatched,
            unknown_dead_letters: self.unknown_dead_letters,
            ..Tally::default()
        };
        for e in self.lines.values() {
            let n = e.created_ms.len() as u64;
            let delivered = u64::from(e.delivered).min(n);
            let dead = u64::from(e.dead_lettered).min(n - delivered);
            t.delivered += delivered;
            t.dead_lettered += dead;
            t.unaccounted += n - delivered - dead;
        }
        t.unaccounted += acked.saturating_sub(self.produced);
        t
    }

    /// `(delivered at, e2e latency, created at)` in ms of every first delivered copy.
    pub(crate) fn deliveries(&self) -> &[(i64, i64, i64)] {
        &self.deliveries
    }
}

/// Each partition of `topic` with its low and high watermarks, as the broker reports them.
fn watermarks(consumer: &BaseConsumer, topic: &str) -> Result<Vec<(i32, i64, i64)>> {
    let timeout = Duration::from_secs(10);
    let metadata =
        consumer.fetch_metadata(Some(topic), timeout).with_context(|| format!("reading metadata of {topic}"))?;
    let mut out = Vec::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), timeout)
                .with_context(|| format!("reading the offsets of {topic}-{}", p.id()))?;
            out.push((p.id(), low, high));
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn consumer(brokers: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "mskbench-read-back")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .with_context(|| format!("connecting to {brokers}"))
}

/// Where each partition of `topic` ends now: the offset the next record will get.
///
/// The high watermark from `ListOffsets` is only a first guess: tansu 0.6
/// answers 1 for any non-empty partition, and will not fetch from inside a
/// record batch. So each partition is read from that guess to the end the
/// fetches report (partition EOF), which on a correct broker reads nothing;
/// a partition that gives no answer within a few seconds is read again from
/// its start — slower, and right on any broker.
pub(crate) fn ends(brokers: &str, topic: &str) -> Result<HashMap<i32, i64>> {
    let consumer = consumer(brokers)?;
    let marks = watermarks(&consumer, topic)?;
    let guesses = marks.iter().map(|&(p, low, high)| (p, high.max(low))).collect();
    let (mut ends, unanswered) = read_to_eof(&consumer, topic, guesses, Duration::from_secs(5))?;
    if !unanswered.is_empty() {
        let from_start = marks.iter().filter(|(p, ..)| unanswered.contains(p)).map(|&(p, low, _)| (p, low)).collect();
        let (again, still) = read_to_eof(&consumer, topic, from_start, Duration::from_secs(30))?;
        if !still.is_empty() {
            bail!("finding where {topic} ends: no answer for 30 s from partition(s) {still:?}");
        }
        ends.extend(again);
    }
    Ok(ends)
}

/// Reads each `(partition, from)` to its end; returns the ends found and
/// the partitions that gave neither a record nor an end within `patience`.
fn read_to_eof(
    consumer: &BaseConsumer,
    topic: &str,
    from: Vec<(i32, i64)>,
    patience: Duration,
) -> Result<(HashMap<i32, i64>, Vec<i32>)> {
    let mut ends: HashMap<i32, i64> = from.iter().copied().collect();
    let mut assignment = TopicPartitionList::new();
    for &(partition, offset) in &from {
        assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer.assign(&assignment).context("assigning the offset probe")?;
    let mut open: std::collections::HashSet<i32> = ends.keys().copied().collect();
    let mut last_progress = Instant::now();
    while !open.is_empty() && last_progress.elapsed() < patience {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                ends.insert(m.partition(), m.offset() + 1);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => bail!("finding where {topic} ends: {e}"),
            None => {}
        }
    }
    let mut unanswered: Vec<i32> = open.into_iter().collect();
    unanswered.sort_unstable();
    ends.retain(|p, _| !unanswered.contains(p));
    Ok((ends, unanswered))
}

/// Reads `topic` from `start` offsets to the current ends, decodes every
/// record as the processor does, and enters it in `ledger`.
pub(crate) fn read_back_topic(
    brokers: &str,
    topic: &str,
    start: &HashMap<i32, i64>,
    handler: &Handler,
    ledger: &mut Ledger,
) -> Result<u64> {
    let consumer = consumer(brokers)?;
    // Each partition from where the run started to its end as the fetches
    // report it (partition EOF).
    let mut assignment = TopicPartitionList::new();
    let mut remaining: std::collections::HashSet<i32> = std::collections::HashSet::new();
    for (partition, low, _) in watermarks(&consumer, topic)? {
        let from = start.get(&partition).copied().unwrap_or(low).max(low);
        assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
        remaining.insert(partition);
    }
    if remaining.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assignment).context("assigning the read-back consumer")?;
    let mut event = EventBuilder::new("arn:aws:kafka:local:000000000000:cluster/mskbench/read-back", brokers);
    let mut output = Output::new();
    let mut read = 0u64;
    let mut last_progress = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let (partition, offset) = (m.partition(), m.offset());
                let record = record_json(&m);
                if !event.fits(topic, partition, record.len(), MAX_PAYLOAD) || event.records() >= 1000 {
                    output = decode_into(handler, &event, output, ledger)?;
                    event.clear();
                }
                event.push(topic, partition, offset, &record);
                read += 1;
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                remaining.remove(&partition);
            }
            Some(Err(e)) => bail!("reading {topic} back: {e}"),
            None if last_progress.elapsed() > Duration::from_secs(30) => {
                bail!("reading {topic} back: no record for 30 s with {} partition(s) unfinished", remaining.len())
            }
            None => {}
        }
    }
    if !event.is_empty() {
        decode_into(handler, &event, output, ledger)?;
    }
    Ok(read)
}

/// Decodes one event of read-back records with the handler's own
/// `prepare` (its schema cache, and its registries for a schema it has not
/// met) and enters each record's line, or its undecodability, in `ledger`.
///
/// The read-back runs on a blocking thread of the run's runtime (it polls
/// rdkafka synchronously), so it waits for `prepare` with the runtime's
/// `block_on`; nothing here is on the handler's path.
fn decode_into(handler: &Handler, event: &EventBuilder, output: Output, ledger: &mut Ledger) -> Result<Output> {
    let runtime = tokio::runtime::Handle::try_current().context("the read-back needs the run's tokio runtime")?;
    let prepared = runtime.block_on(handler.prepare(&event.finish(), output)).context("decoding read-back records")?;
    let out = prepared.output;
    for r in &out.records {
        ledger.produced(r.provenance.partition, r.provenance.offset, r.timestamp, out.line(r));
    }
    for r in &out.rejections {
        ledger.produced_undecodable(r.provenance.partition, r.provenance.offset, -1);
    }
    Ok(out)
}

/// Waits until the objects under `dir` hold `expected` lines or `deadline`
/// passes; returns the lines found.
pub(crate) fn wait_for_lines(dir: &Path, expected: u64, deadline: Instant) -> Result<u64> {
    loop {
        let lines = delivery::count_lines(dir)?;
        if lines >= expected || Instant::now() >= deadline {
            return Ok(lines);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Enters every line of the objects under `dir` in `ledger`; returns the object count.
pub(crate) fn read_back_objects(dir: &Path, ledger: &mut Ledger) -> Result<u64> {
    let objects = delivery::list_objects(dir)?;
    for object in &objects {
        let data = std::fs::read(&object.path).with_context(|| format!("reading {}", object.path.display()))?;
        for line in data.split_inclusive(|&b| b == b'\n') {
            ledger.delivered(line, object.written_ms);
        }
    }
    Ok(objects.len() as u64)
}

/// Enters every dead letter under `dir` in `ledger`; returns the letters read.
pub(crate) fn read_back_dead_letters(dir: &Path, ledger: &mut Ledger) -> Result<u64> {
    #[derive(serde::Deserialize)]
    struct Letter {
        partition: i32,
        offset: i64,
    }
    let mut n = 0;
    for object in delivery::list_objects(dir)? {
        let path = object.path;
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let letter: Letter = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a dead letter", path.display(), i + 1))?;
            ledger.dead_lettered(letter.partition, letter.offset);
            n += 1;
        }
    }
    Ok(n)
}

/// A histogram of milliseconds, 1 ms to a day.
pub(crate) fn ms_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 86_400_000, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_has_one_outcome() {
        let mut l = Ledger::default();
        l.produced(0, 0, 1_000, b"{\"a\":1}\n");
        l.produced(0, 1, 1_010, b"{\"a\":2}\n");
        l.produced(1, 0, 1_020, b"{\"a\":3}\n");
        l.produced(1, 1, 1_030, b"{\"a\":4}\n");
        l.delivered(b"{\"a\":1}\n", 3_000);
        l.delivered(b"{\"a\":1}\n", 3_500);
        l.delivered(b"{\"a\":2}", 4_000);
        l.delivered(b"{\"zzz\":0}\n", 4_000);
        l.dead_lettered(1, 0);
        l.dead_lettered(7, 7);
        let t = l.tally(4);
        assert_eq!(
            t,
            Tally {
                produced: 4,
                delivered: 2,
                dead_lettered: 1,
                duplicates: 1,
                unaccounted: 1,
                unmatched: 1,
                unknown_dead_letters: 1
            }
        );
        assert_eq!(l.deliveries(), &[(3_000, 2_000, 1_000), (4_000, 2_990, 1_010)]);
    }

    #[test]
    fn identical_records_are_counted_not_merged() {
        let mut l = Ledger::default();
        l.produced(0, 0, 1, b"same\n");
        l.produced(0, 1, 2, b"same\n");
        l.delivered(b"same\n", 10);
        assert_eq!(l.tally(2).unaccounted, 1);
        l.delivered(b"same\n", 11);
        let t = l.tally(2);
        assert_eq!((t.delivered, t.duplicates, t.unaccounted), (2, 0, 0));
        l.delivered(b"same\n", 12);
        assert_eq!(l.tally(2).duplicates, 1);
    }

    #[test]
    fn acked_records_missing_from_the_topic_are_unaccounted() {
        let mut l = Ledger::default();
        l.produced(0, 0, 1, b"x\n");
        l.delivered(b"x\n", 5);
        let t = l.tally(3);
        assert_eq!((t.produced, t.delivered, t.unaccounted), (3, 1, 2));
    }

    #[test]
    fn undecodable_records_are_accounted_only_by_dead_letters() {
        let mut l = Ledger::default();
        l.produced_undecodable(2, 9, 1);
        l.delivered(b"anything\n", 5);
        assert_eq!(l.tally(1).unaccounted, 1);
        l.dead_lettered(2, 9);
        let t = l.tally(1);
        assert_eq!((t.dead_lettered, t.unaccounted, t.unmatched), (1, 0, 1));
    }
}
