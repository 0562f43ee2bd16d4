//! Step 6, read back: every acknowledged record, found in the output.
//!
//! Counters inside the pipeline can agree with each other and still be
//! wrong; this module counts from the outside instead, against an oracle
//! that is not the processor's code. Each count's source:
//!
//! 1. **Produced** — the producer's delivery reports
//!    (`mskbench_producer::send::Sent`): each acknowledged record's
//!    (partition, offset), Kafka timestamp and the digest of the JSON line
//!    it should become, computed by the producer from the value it
//!    generated (`mskbench_producer::expected`), never by the processor's
//!    decoder. A record is identified by its (partition, offset).
//! 2. **Cross-check** — the topic, read back from where the run started to
//!    its end, raw (no decoding, so no registry: nothing there can be
//!    mistaken for a loss). An acknowledged record the topic lacks counts
//!    in `not_in_topic` (warned); a record the producer saw fail but the
//!    topic holds (a delivery timeout after the broker wrote it), matched
//!    by its value bytes, is `failed_in_topic` and accounted from then on
//!    like a produced one; anything else is `unknown_in_topic` (warned).
//! 3. **Dead-lettered** — every dead-letter line names its record by
//!    partition and offset; a second letter for a record, or a letter for a
//!    record also delivered, counts in `multiple_outcomes`.
//! 4. **Delivered** — every S3-layout object, oldest first: each line is
//!    parsed (serde_json) and digested the producer's way, and consumes one
//!    record with that digest: one not yet delivered nor dead-lettered
//!    first, then a dead-lettered one (a multiple outcome), and once all
//!    are delivered it is a `duplicate`. A line matching no record is
//!    `unmatched`. Records of identical content are interchangeable here,
//!    and only here: the line carries nothing else to tell them apart.
//! 5. **Unaccounted** — records neither delivered nor dead-lettered.
//!
//! Every tracked record (produced + failed_in_topic) ends in exactly one of
//! delivered, dead-lettered or unaccounted: [`Ledger::tally`] walks each
//! tracked record once and gives it one of the three, so they add up by
//! construction; nothing is clamped.
//!
//! Boundary: [`Ledger`] is pure (records, lines and letters in, counts out)
//! and unit-tested; the file and Kafka reading around it is exercised by
//! the run tests. Cost: about 100 bytes of memory per record (the record,
//! its entries in the coordinate and digest maps, its delivery time), plus
//! map growth; one JSON parse,
//! one hash and one map lookup per delivered line.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use mskbench_kafka::{Connection, KafkaContext, wait_for_metadata};
use mskbench_producer::expected::{self, Canon, Digest};
use mskbench_producer::send::Sent;
use mskbench_sim::firehose as delivery;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The end of a chain of records sharing a digest.
const END: u32 = u32::MAX;

/// One record of the run and what became of it.
#[derive(Debug, Clone, Copy)]
struct Record {
    created_ms: i64,
    delivered: u32,
    dead_lettered: u32,
    /// Named by on-failure records (the mapping's discarded batches).
    on_failure: u32,
    /// The next record with the same digest, or [`END`].
    next: u32,
    /// Seen by the topic read-back.
    in_topic: bool,
}

/// The records sharing one digest, as a chain through [`Record::next`].
#[derive(Debug, Clone, Copy)]
struct Class {
    /// The first member not delivered yet (members before it all are), or [`END`].
    undelivered: u32,
    last: u32,
}

/// The record accounting of one run.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    records: Vec<Record>,
    by_coordinate: HashMap<(i32, i64), u32>,
    by_digest: HashMap<Digest, Class>,
    /// Records the producer saw fail, by the digest of their value bytes:
    /// (created ms, expected digest) of each.
    failed: HashMap<Digest, Vec<(i64, Digest)>>,
    produced: u64,
    failed_in_topic: u64,
    unknown_in_topic: u64,
    duplicates: u64,
    unmatched: u64,
    unknown_dead_letters: u64,
    canon: Canon,
    /// Delivery latency of each first copy: (delivered at epoch ms, e2e ms, created epoch ms).
    deliveries: Vec<(i64, i64, i64)>,
}

/// The totals the ledger arrives at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Records the broker acknowledged (the producer's delivery reports).
    pub produced: u64,
    /// Records the producer saw fail that the topic holds all the same.
    pub failed_in_topic: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    /// Records found only in the on-failure destination (neither delivered
    /// nor dead-lettered): discarded by the mapping, a known outcome.
    pub on_failure: u64,
    pub duplicates: u64,
    pub unaccounted: u64,
    /// Records delivered and dead-lettered, or dead-lettered more than once.
    pub multiple_outcomes: u64,
    /// Delivered lines that match no record.
    pub unmatched: u64,
    /// Dead letters (and on-failure records) naming no record of the run.
    pub unknown_dead_letters: u64,
    /// Acknowledged records the topic read-back did not find.
    pub not_in_topic: u64,
    /// Records in the topic the producer neither acknowledged nor saw fail.
    pub unknown_in_topic: u64,
}

impl Ledger {
    /// A ledger of the records the producer's delivery reports name.
    pub(crate) fn from_sent(sent: &Sent) -> Ledger {
        let mut ledger = Ledger::default();
        for a in &sent.acked {
            ledger.acked(a.partition, a.offset, a.created_ms, a.expected);
        }
        for f in &sent.failed {
            ledger.failed.entry(f.payload).or_default().push((f.created_ms, f.expected));
        }
        ledger
    }

    /// An acknowledged record at `(partition, offset)` that should become a
    /// line of digest `expected`.
    pub(crate) fn acked(&mut self, partition: i32, offset: i64, created_ms: i64, expected: Digest) {
        self.produced += 1;
        self.track(partition, offset, created_ms, expected);
    }

    /// Enters a record. Its coordinates identify it when they are valid
    /// and not taken (a delivery report without an offset gives −1); a
    /// record without them can be delivered, never dead-lettered.
    fn track(&mut self, partition: i32, offset: i64, created_ms: i64, expected: Digest) {
        // 4 billion records would need hundreds of GB here first.
        let Ok(index) = u32::try_from(self.records.len()) else { return };
        if offset >= 0 {
            self.by_coordinate.entry((partition, offset)).or_insert(index);
        }
        self.records.push(Record {
            created_ms,
            delivered: 0,
            dead_lettered: 0,
            on_failure: 0,
            next: END,
            in_topic: false,
        });
        match self.by_digest.get_mut(&expected) {
            Some(class) => {
                self.records[class.last as usize].next = index;
                class.last = index;
                if class.undelivered == END {
                    class.undelivered = index;
                }
            }
            None => {
                self.by_digest.insert(expected, Class { undelivered: index, last: index });
            }
        }
    }

    /// A record the topic read-back found at `(partition, offset)`, with
    /// the [`expected::payload`] digest of its value.
    pub(crate) fn in_topic(&mut self, partition: i32, offset: i64, payload: Digest) {
        if let Some(&i) = self.by_coordinate.get(&(partition, offset)) {
            self.records[i as usize].in_topic = true;
            return;
        }
        match self.failed.get_mut(&payload).and_then(Vec::pop) {
            Some((created_ms, expected)) => {
                self.failed_in_topic += 1;
                self.track(partition, offset, created_ms, expected);
                if let Some(r) = self.records.last_mut() {
                    r.in_topic = true;
                }
            }
            None => self.unknown_in_topic += 1,
        }
    }

    /// A dead letter naming `(partition, offset)`. Dead letters are entered
    /// before delivered lines, so that a line goes to a record that is not
    /// dead-lettered when its content allows.
    pub(crate) fn dead_lettered(&mut self, partition: i32, offset: i64) {
        match self.by_coordinate.get(&(partition, offset)) {
            Some(&i) => self.records[i as usize].dead_lettered += 1,
            None => self.unknown_dead_letters += 1,
        }
    }

    /// An on-failure record naming `(partition, offset)`: the mapping gave
    /// up on it (retries exhausted, or too old). Entered before delivered
    /// lines, as dead letters are.
    pub(crate) fn on_failure(&mut self, partition: i32, offset: i64) {
        match self.by_coordinate.get(&(partition, offset)) {
            Some(&i) => self.records[i as usize].on_failure += 1,
            None => self.unknown_dead_letters += 1,
        }
    }

    /// A line found in a delivered object written at `delivered_ms`.
    pub(crate) fn delivered(&mut self, line: &[u8], delivered_ms: i64) {
        let Ok(digest) = expected::line(line, &mut self.canon) else {
            self.unmatched += 1;
            return;
        };
        let Some(class) = self.by_digest.get_mut(&digest) else {
            self.unmatched += 1;
            return;
        };
        // The first undelivered member that is not dead-lettered, else the
        // first undelivered one.
        let records = &mut self.records;
        let mut chosen = END;
        let mut at = class.undelivered;
        while at != END {
            let r = &records[at as usize];
            if r.delivered == 0 {
                if chosen == END {
                    chosen = at;
                }
                if r.dead_lettered == 0 {
                    chosen = at;
                    break;
                }
            }
            at = r.next;
        }
        if chosen == END {
            self.duplicates += 1;
            return;
        }
        let r = &mut records[chosen as usize];
        r.delivered = 1;
        let created = r.created_ms;
        self.deliveries.push((delivered_ms, delivered_ms - created, created));
        while class.undelivered != END && records[class.undelivered as usize].delivered > 0 {
            class.undelivered = records[class.undelivered as usize].next;
        }
    }

    /// The totals; `checked_topic` says whether the topic was read back
    /// (without it, `not_in_topic` stays 0).
    pub(crate) fn tally(&self, checked_topic: bool) -> Tally {
        let mut t = Tally {
            produced: self.produced,
            failed_in_topic: self.failed_in_topic,
            duplicates: self.duplicates,
            unmatched: self.unmatched,
            unknown_dead_letters: self.unknown_dead_letters,
            unknown_in_topic: self.unknown_in_topic,
            ..Tally::default()
        };
        for r in &self.records {
            match (r.delivered > 0, r.dead_lettered) {
                (true, 0) => t.delivered += 1,
                (true, _) => {
                    t.delivered += 1;
                    t.multiple_outcomes += 1;
                }
                (false, 0) if r.on_failure > 0 => t.on_failure += 1,
                (false, 0) => t.unaccounted += 1,
                (false, n) => {
                    t.dead_lettered += 1;
                    if n > 1 {
                        t.multiple_outcomes += 1;
                    }
                }
            }
            if checked_topic && !r.in_topic {
                t.not_in_topic += 1;
            }
        }
        t
    }

    /// `(delivered at, e2e latency, created at)` in ms of every first delivered copy.
    pub(crate) fn deliveries(&self) -> &[(i64, i64, i64)] {
        &self.deliveries
    }
}

/// Each partition of `topic` with its low and high watermarks, as the broker reports them.
fn watermarks(consumer: &Reader, kafka: &Connection, topic: &str) -> Result<Vec<(i32, i64, i64)>> {
    let timeout = Duration::from_secs(10);
    let pump = || {
        // Not assigned yet: serves librdkafka's events (errors), no records.
        let _ = consumer.poll(Duration::ZERO);
    };
    let metadata = wait_for_metadata(consumer.client(), Some(topic), timeout, &kafka.auth, pump)
        .with_context(|| format!("reading metadata of {topic} on {}", kafka.brokers))?;
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

/// The consumer the read-back reads with. Its context
/// ([`mskbench_kafka::KafkaContext`]) does not log a partition's end, which
/// is how the read-back knows it is done, as an error.
type Reader = BaseConsumer<KafkaContext>;

fn consumer(kafka: &Connection) -> Result<Reader> {
    let brokers = &kafka.brokers;
    let consumer: Reader = kafka
        .client_config()
        .set("group.id", "mskbench-read-back")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create_with_context(kafka.context("read-back consumer"))
        .with_context(|| format!("connecting to {brokers}"))?;
    kafka.auth.prime(consumer.client());
    Ok(consumer)
}

/// Where each partition of `topic` ends now: the offset the next record will get.
///
/// The high watermark from `ListOffsets` is only a first guess: tansu 0.6
/// answers 1 for any non-empty partition, and will not fetch from inside a
/// record batch. So each partition is read from that guess to the end the
/// fetches report (partition EOF), which on a correct broker reads nothing;
/// a partition that gives no answer within a few seconds is read again from
/// its start — slower, and right on any broker.
pub(crate) fn ends(kafka: &Connection, topic: &str) -> Result<HashMap<i32, i64>> {
    let consumer = consumer(kafka)?;
    let marks = watermarks(&consumer, kafka, topic)?;
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
    consumer: &Reader,
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

/// Reads `topic` from `start` offsets to the current ends, raw, and
/// enters every record in `ledger`'s cross-check; returns the records read.
pub(crate) fn read_back_topic(
    kafka: &Connection,
    topic: &str,
    start: &HashMap<i32, i64>,
    ledger: &mut Ledger,
) -> Result<u64> {
    let consumer = consumer(kafka)?;
    // Each partition from where the run started to its end as the fetches
    // report it (partition EOF).
    let mut assignment = TopicPartitionList::new();
    let mut remaining: std::collections::HashSet<i32> = std::collections::HashSet::new();
    for (partition, low, _) in watermarks(&consumer, kafka, topic)? {
        let from = start.get(&partition).copied().unwrap_or(low).max(low);
        assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
        remaining.insert(partition);
    }
    if remaining.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assignment).context("assigning the read-back consumer")?;
    let mut read = 0u64;
    let mut last_progress = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                ledger.in_topic(m.partition(), m.offset(), expected::payload(m.payload().unwrap_or_default()));
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
    Ok(read)
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

/// Enters every record the on-failure documents under `dir` name in
/// `ledger`; returns the documents read.
pub(crate) fn read_back_on_failure(dir: &Path, ledger: &mut Ledger) -> Result<u64> {
    let mut n = 0;
    for object in delivery::list_objects(dir)? {
        let path = object.path;
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let records = mskbench_processor::esm::failures::records_of_document(&text)
            .map_err(|e| anyhow::anyhow!("{}: not an on-failure record: {e}", path.display()))?;
        for (_, partition, offset) in records {
            ledger.on_failure(partition, offset);
        }
        n += 1;
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
    use mskbench_producer::send::{Acked, Failed};

    use super::*;

    /// The digest the producer would have recorded for a record whose line is `line`.
    fn d(line: &[u8]) -> Digest {
        expected::line(line, &mut Canon::new()).unwrap()
    }

    #[test]
    fn every_record_has_one_outcome() {
        let mut l = Ledger::default();
        l.acked(0, 0, 1_000, d(b"{\"a\":1}\n"));
        l.acked(0, 1, 1_010, d(b"{\"a\":2}\n"));
        l.acked(1, 0, 1_020, d(b"{\"a\":3}\n"));
        l.acked(1, 1, 1_030, d(b"{\"a\":4}\n"));
        l.dead_lettered(1, 0);
        l.dead_lettered(7, 7);
        l.delivered(b"{\"a\":1}\n", 3_000);
        l.delivered(b"{\"a\":1}\n", 3_500);
        l.delivered(b"{\"a\":2}", 4_000);
        l.delivered(b"{\"zzz\":0}\n", 4_000);
        let t = l.tally(false);
        assert_eq!(
            t,
            Tally {
                produced: 4,
                delivered: 2,
                dead_lettered: 1,
                duplicates: 1,
                unaccounted: 1,
                unmatched: 1,
                unknown_dead_letters: 1,
                ..Tally::default()
            }
        );
        assert_eq!(l.deliveries(), &[(3_000, 2_000, 1_000), (4_000, 2_990, 1_010)]);
    }

    #[test]
    fn identical_records_are_counted_not_merged() {
        let mut l = Ledger::default();
        l.acked(0, 0, 1, d(b"\"same\"\n"));
        l.acked(0, 1, 2, d(b"\"same\"\n"));
        l.delivered(b"\"same\"\n", 10);
        assert_eq!(l.tally(false).unaccounted, 1);
        l.delivered(b"\"same\"\n", 11);
        let t = l.tally(false);
        assert_eq!((t.delivered, t.duplicates, t.unaccounted), (2, 0, 0));
        l.delivered(b"\"same\"\n", 12);
        assert_eq!(l.tally(false).duplicates, 1);
    }

    #[test]
    fn acked_records_missing_from_the_topic_are_unaccounted() {
        let mut l = Ledger::default();
        l.acked(0, 0, 1, d(b"\"x\""));
        l.acked(0, 1, 1, d(b"\"y\""));
        l.acked(0, 2, 1, d(b"\"z\""));
        l.in_topic(0, 0, 99);
        l.delivered(b"\"x\"\n", 5);
        let t = l.tally(true);
        assert_eq!((t.produced, t.delivered, t.unaccounted), (3, 1, 2));
        assert_eq!(t.not_in_topic, 2);
    }

    #[test]
    fn a_record_no_line_matches_is_accounted_only_by_its_dead_letter() {
        let mut l = Ledger::default();
        l.acked(2, 9, 1, d(b"{\"a\":1}"));
        l.delivered(b"anything\n", 5);
        assert_eq!(l.tally(false).unaccounted, 1);
        l.dead_lettered(2, 9);
        let t = l.tally(false);
        assert_eq!((t.dead_lettered, t.unaccounted, t.unmatched), (1, 0, 1));
    }

    #[test]
    fn records_sent_to_the_on_failure_destination_are_a_known_outcome_not_lost() {
        let mut l = Ledger::default();
        for o in 0..4 {
            l.acked(0, o, 1, d(format!("{{\"o\":{o}}}").as_bytes()));
        }
        // Offset 1 failed for good; 2 was delivered, then discarded with it
        // (retried from the first failed offset); 3 is lost.
        l.on_failure(0, 1);
        l.on_failure(0, 2);
        l.on_failure(5, 5);
        l.delivered(b"{\"o\":0}\n", 5);
        l.delivered(b"{\"o\":2}\n", 5);
        let t = l.tally(false);
        assert_eq!((t.delivered, t.on_failure, t.unaccounted), (2, 1, 1));
        assert_eq!(t.multiple_outcomes, 0, "delivered, then in a discarded batch: delivered");
        assert_eq!(t.unknown_dead_letters, 1);
        assert_eq!(t.delivered + t.dead_lettered + t.on_failure + t.unaccounted, t.produced);
    }

    /// The processor turns record X into record Y's line (a decoder bug),
    /// so Y's line arrives twice and X's never. Decoding the topic with the
    /// processor's decoder gave both records that same line, and the
    /// multiset of lines balanced: 0 lost, 0 duplicates.
    #[test]
    fn a_lost_record_and_a_duplicate_of_another_are_not_netted_out() {
        let mut l = Ledger::default();
        l.acked(0, 0, 1, d(br#"{"seq":1,"page":"home"}"#));
        l.acked(0, 1, 2, d(br#"{"seq":2,"page":"home"}"#));
        l.delivered(b"{\"seq\":2,\"page\":\"home\"}\n", 10);
        l.delivered(b"{\"seq\":2,\"page\":\"home\"}\n", 11);
        let t = l.tally(false);
        assert_eq!((t.delivered, t.unaccounted, t.duplicates), (1, 1, 1));
    }

    #[test]
    fn a_record_delivered_and_dead_lettered_or_dead_lettered_twice_is_reported_not_clamped() {
        let mut l = Ledger::default();
        l.acked(0, 0, 1, d(b"1"));
        l.acked(0, 1, 1, d(b"2"));
        l.acked(0, 2, 1, d(b"3"));
        l.dead_lettered(0, 0);
        l.dead_lettered(0, 1);
        l.dead_lettered(0, 1);
        l.delivered(b"1\n", 5);
        let t = l.tally(false);
        assert_eq!((t.delivered, t.dead_lettered, t.unaccounted, t.multiple_outcomes), (1, 1, 1, 2));
    }

    #[test]
    fn a_line_goes_first_to_an_identical_record_not_dead_lettered() {
        let mut l = Ledger::default();
        l.acked(0, 0, 1, d(b"\"same\""));
        l.acked(0, 1, 2, d(b"\"same\""));
        l.dead_lettered(0, 0);
        l.delivered(b"\"same\"\n", 10);
        let t = l.tally(false);
        assert_eq!((t.delivered, t.dead_lettered, t.unaccounted, t.multiple_outcomes), (1, 1, 0, 0));
        assert_eq!(l.deliveries(), &[(10, 8, 2)]);
    }

    #[test]
    fn produced_counts_acks_and_a_failed_record_in_the_topic_is_reported_apart() {
        let sent = Sent {
            acked: vec![
                Acked { partition: 0, offset: 0, created_ms: 1, expected: d(b"1") },
                Acked { partition: 0, offset: 1, created_ms: 1, expected: d(b"2") },
            ],
            failed: vec![Failed { payload: expected::payload(b"value 3"), created_ms: 1, expected: d(b"3") }],
        };
        let mut l = Ledger::from_sent(&sent);
        l.in_topic(0, 0, expected::payload(b"value 1"));
        l.in_topic(0, 1, expected::payload(b"value 2"));
        l.in_topic(0, 2, expected::payload(b"value 3"));
        l.in_topic(0, 3, expected::payload(b"someone else's"));
        for line in [b"1\n", b"2\n", b"3\n"] {
            l.delivered(line, 5);
        }
        let t = l.tally(true);
        assert_eq!((t.produced, t.failed_in_topic, t.unknown_in_topic, t.not_in_topic), (2, 1, 1, 0));
        assert_eq!((t.delivered, t.unaccounted, t.unmatched), (3, 0, 0));
    }
}
