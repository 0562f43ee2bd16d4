//! One Lambda event in, JSON lines packed into Firehose batches out.
//!
//! [`EventProcessor::process`] runs every record of a parsed
//! [`KafkaEvent`] through base64 ([`crate::b64`]), unframing
//! ([`crate::wire`]), the schema cache and the transcoder, and packs the
//! resulting lines ([`crate::packer`]). Everything lands in an [`Output`]
//! the caller owns and reuses across events: one `data` buffer holding all
//! JSON lines back to back, a [`PackedRecord`] (byte range and provenance)
//! per line, [`Batch`]es as ranges of those, and a [`Rejection`] with its
//! reason for every record that could not be packed. After warm-up no
//! per-record allocation happens; rejections allocate their detail text.
//!
//! Schemas come from the [`SchemaCache`] only; `process` never fetches. A
//! record whose writer schema the cache does not hold is *waiting*
//! ([`Output::waiting`], its key in [`Output::missing_schemas`]). The caller
//! fetches those schemas, [`SchemaCache::store`]s the answers and runs the
//! event again (only the first events to meet a schema pay the second
//! pass), then turns what is still waiting into rejections with
//! [`Output::reject_waiting`].
//!
//! **Invariant:** every input record is in exactly one of `records`,
//! `rejections` and `waiting` (`Output::summary` adds up), and `waiting` is
//! empty once the caller has resolved it. Input order is kept in every list
//! and in the batches.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::accounting::{Reason, Summary};
use crate::b64::{self, Base64Error};
use crate::event::{EventError, KafkaEvent, KafkaRecord};
use crate::packer::{Batch, Oversize, PackLimits, Packer};
use crate::schema_cache::{SchemaCache, SchemaError};
use crate::transcode::{TranscodeError, TranscodeErrorKind, Transcoder};
use crate::wire::{self, Compression, SchemaKey, WireError, WireMode};

/// Largest datum a zlib value may inflate to. A JSON line cannot be smaller
/// than the Avro it came from by more than a few times, so a datum this
/// large could never fit Firehose's 1,000 KiB record limit anyway.
pub const MAX_INFLATED_DATUM: usize = 8 * 1024 * 1024;

/// Where a record came from: enough to find it in Kafka again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    /// Index into [`Output::topics`].
    pub topic: u32,
    /// The Kafka partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
}

/// A JSON line in [`Output::data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRecord {
    /// Start of the line in `data` (inclusive).
    pub start: usize,
    /// End of the line in `data` (exclusive), after its newline.
    pub end: usize,
    /// Position of the record in the event (0-based, document order).
    pub input_index: u32,
    /// Where the record came from.
    pub provenance: Provenance,
    /// The Kafka record timestamp (epoch ms; -1 when absent).
    pub timestamp: i64,
}

impl PackedRecord {
    /// Size of the line in bytes, as Firehose counts it.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True for an empty line (never produced: a line holds at least `\n`).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// A record that was not packed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the record in the event (0-based, document order).
    pub input_index: u32,
    /// Where the record came from.
    pub provenance: Provenance,
    /// Why it was not packed.
    pub reason: Reason,
    /// Human-readable detail: what and where.
    pub detail: String,
}

/// A record whose writer schema is not in the cache yet: neither packed
/// nor rejected until the caller fetched the schema (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Position of the record in the event (0-based, document order).
    pub input_index: u32,
    /// Where the record came from.
    pub provenance: Provenance,
    /// The writer schema it needs.
    pub key: SchemaKey,
}

/// Caller-owned results of one event; reuse it to avoid reallocating.
#[derive(Debug, Default)]
pub struct Output {
    /// All JSON lines, back to back.
    pub data: Vec<u8>,
    /// Packed records in input order.
    pub records: Vec<PackedRecord>,
    /// Batches over `records`, in order.
    pub batches: Vec<Batch>,
    /// Rejected records in input order.
    pub rejections: Vec<Rejection>,
    /// Records waiting for a schema the cache lacks, in input order; empty
    /// after [`Output::reject_waiting`].
    pub waiting: Vec<Waiting>,
    /// Counts of the above.
    pub summary: Summary,
    /// Topic names referenced by [`Provenance::topic`].
    pub topics: Vec<String>,
    /// The distinct keys of `waiting`, in first-seen order.
    missing: Vec<SchemaKey>,
    scratch: Vec<u8>,
    inflated: Vec<u8>,
}

impl Output {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties every list, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.records.clear();
        self.batches.clear();
        self.rejections.clear();
        self.waiting.clear();
        self.missing.clear();
        self.summary = Summary::default();
        self.topics.clear();
    }

    /// The writer schemas the cache lacked, each once, in first-seen order:
    /// what the caller must fetch before the waiting records can finish.
    pub fn missing_schemas(&self) -> &[SchemaKey] {
        &self.missing
    }

    /// Rejects every waiting record with `answer(key)`, the outcome the
    /// caller's fetch gave for its schema, keeping `rejections` in input
    /// order; `waiting` is empty afterwards and the summary still adds up.
    pub fn reject_waiting(&mut self, mut answer: impl FnMut(&SchemaKey) -> SchemaError) {
        if self.waiting.is_empty() {
            return;
        }
        for w in self.waiting.drain(..) {
            let error = RecordError::Schema(answer(&w.key));
            self.summary.rejected.add(error.reason());
            self.rejections.push(Rejection {
                input_index: w.input_index,
                provenance: w.provenance,
                reason: error.reason(),
                detail: error.to_string(),
            });
        }
        // Stable: records already rejected keep their order among themselves.
        self.rejections.sort_by_key(|r| r.input_index);
        self.missing.clear();
        self.summary.waiting = 0;
    }

    /// Undoes a record's partial line and keeps why it was not packed:
    /// waiting for its schema, or rejected. Out of the record loop, which
    /// stays the packed records' path.
    #[cold]
    #[inline(never)]
    fn not_packed(&mut self, start: usize, input_index: u32, provenance: Provenance, error: RecordError) {
        self.data.truncate(start);
        match error {
            RecordError::Waiting(key) => self.wait(input_index, provenance, key),
            e => self.rejections.push(Rejection { input_index, provenance, reason: e.reason(), detail: e.to_string() }),
        }
    }

    fn wait(&mut self, input_index: u32, provenance: Provenance, key: SchemaKey) {
        if !self.missing.contains(&key) {
            self.missing.push(key);
        }
        self.waiting.push(Waiting { input_index, provenance, key });
    }

    /// The bytes of a packed record (its JSON line with the newline).
    pub fn line(&self, record: &PackedRecord) -> &[u8] {
        &self.data[record.start..record.end]
    }

    /// The records of a batch.
    pub fn batch_records(&self, batch: &Batch) -> &[PackedRecord] {
        &self.records[batch.records.clone()]
    }

    /// The topic name of a provenance.
    pub fn topic(&self, provenance: &Provenance) -> &str {
        self.topics.get(provenance.topic as usize).map_or("", String::as_str)
    }

    fn topic_index(&mut self, topic: &str) -> u32 {
        // Events rarely hold more than one topic: check the last one first.
        if let Some(i) = self.topics.iter().rposition(|t| t == topic) {
            return i as u32;
        }
        self.topics.push(topic.to_owned());
        (self.topics.len() - 1) as u32
    }
}

/// Why one record failed, kept cheap until it has to be described.
#[derive(Debug)]
enum RecordError {
    /// Not a failure: the schema is not cached yet (the record waits).
    Waiting(SchemaKey),
    MissingValue,
    Base64(Base64Error),
    Wire(WireError),
    Schema(SchemaError),
    Transcode(TranscodeError),
    Oversize(Oversize),
}

impl RecordError {
    fn reason(&self) -> Reason {
        match self {
            // Never asked: waiting records are not rejections.
            RecordError::Waiting(_) => Reason::SchemaUnavailable,
            RecordError::MissingValue => Reason::MissingValue,
            RecordError::Base64(e) => e.into(),
            RecordError::Wire(e) => e.into(),
            RecordError::Schema(e) => e.into(),
            RecordError::Transcode(e) => e.kind.into(),
            RecordError::Oversize(_) => Reason::Oversize,
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Waiting(key) => write!(f, "writer schema: {key}: not fetched yet"),
            RecordError::MissingValue => f.write_str("record has no value (tombstone)"),
            RecordError::Base64(e) => write!(f, "value base64: {e}"),
            RecordError::Wire(e) => write!(f, "value framing: {e}"),
            RecordError::Schema(e) => write!(f, "writer schema: {e}"),
            RecordError::Transcode(e) if e.kind == TranscodeErrorKind::OutputTooLarge => {
                write!(f, "JSON line exceeds the Firehose record limit ({e})")
            }
            RecordError::Transcode(e) => write!(f, "avro datum: {e}"),
            RecordError::Oversize(e) => e.fmt(f),
        }
    }
}

/// The per-event work of the Lambda function, configured once.
#[derive(Debug, Clone)]
pub struct EventProcessor {
    mode: WireMode,
    limits: PackLimits,
}

impl EventProcessor {
    /// A processor reading `mode` framings and packing within `limits`.
    pub fn new(mode: WireMode, limits: PackLimits) -> Self {
        EventProcessor { mode, limits }
    }

    /// The wire mode this processor reads.
    pub fn mode(&self) -> WireMode {
        self.mode
    }

    /// The batch limits this processor packs within.
    pub fn limits(&self) -> PackLimits {
        self.limits
    }

    /// Parses `json` as a Lambda Kafka event and processes it.
    ///
    /// # Errors
    /// [`EventError`] when `json` is not a Lambda Kafka event; `out` is then
    /// cleared and holds no records.
    pub fn process_json(
        &self,
        json: &[u8],
        schemas: &SchemaCache,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), EventError> {
        out.clear();
        let event = KafkaEvent::parse(json)?;
        self.process(&event, schemas, now, out);
        Ok(())
    }

    /// Processes every record of `event` into `out` (cleared first), with
    /// the schemas `schemas` holds: a record whose schema it lacks is left
    /// waiting (see the module docs).
    ///
    /// `now` ages not-found answers in the schema cache.
    pub fn process(&self, event: &KafkaEvent<'_>, schemas: &SchemaCache, now: Instant, out: &mut Output) {
        out.clear();
        let mut packer = Packer::new(self.limits);
        let mut lookup = Lookup { schemas, now, last: None };
        let mut input_index = 0u32;
        for record in event.iter_records() {
            let provenance = Provenance {
                topic: out.topic_index(&record.topic),
                partition: record.partition,
                offset: record.offset,
            };
            let start = out.data.len();
            let packed = self
                .line(record, &mut lookup, out)
                .and_then(|()| packer.push(out.data.len() - start, &mut out.batches).map_err(RecordError::Oversize));
            match packed {
                Ok(_) => out.records.push(PackedRecord {
                    start,
                    end: out.data.len(),
                    input_index,
                    provenance,
                    timestamp: record.timestamp,
                }),
                Err(e) => out.not_packed(start, input_index, provenance, e),
            }
            input_index += 1;
        }
        packer.finish(&mut out.batches);
        let summary = &mut out.summary;
        summary.records_in = u64::from(input_index);
        summary.records_out = out.records.len() as u64;
        summary.waiting = out.waiting.len() as u64;
        for rejection in &out.rejections {
            summary.rejected.add(rejection.reason);
        }
        summary.batches = out.batches.len() as u64;
        summary.bytes_out = out.batches.iter().map(|b| b.bytes as u64).sum();
    }

    /// Appends the record's JSON line to `out.data`.
    #[inline]
    fn line(&self, record: &KafkaRecord<'_>, lookup: &mut Lookup<'_>, out: &mut Output) -> Result<(), RecordError> {
        let value = record.value.as_deref().ok_or(RecordError::MissingValue)?;
        out.scratch.clear();
        b64::decode_append(value.as_bytes(), &mut out.scratch).map_err(RecordError::Base64)?;
        let framed = wire::unframe(&out.scratch, self.mode).map_err(RecordError::Wire)?;
        let transcoder = lookup.get(&framed.schema)?;
        let datum = match framed.compression {
            Compression::None => framed.datum,
            Compression::Zlib => {
                out.inflated.clear();
                wire::inflate_append(framed.datum, &mut out.inflated, MAX_INFLATED_DATUM).map_err(RecordError::Wire)?;
                &out.inflated
            }
        };
        // The newline counts against the record limit too.
        let max_json = self.limits.max_record_bytes.saturating_sub(1);
        transcoder.transcode(datum, &mut out.data, max_json).map_err(RecordError::Transcode)?;
        out.data.push(b'\n');
        Ok(())
    }
}

/// Schema lookups for one event, remembering the last key: records of one
/// event almost always share a writer schema.
struct Lookup<'a> {
    schemas: &'a SchemaCache,
    now: Instant,
    last: Option<(SchemaKey, Arc<Transcoder>)>,
}

impl Lookup<'_> {
    #[inline]
    fn get(&mut self, key: &SchemaKey) -> Result<&Transcoder, RecordError> {
        let hit = matches!(&self.last, Some((last, _)) if last == key);
        if !hit {
            match self.schemas.get(key, self.now) {
                Ok(Some(t)) => self.last = Some((*key, t)),
                Ok(None) => return Err(RecordError::Waiting(*key)),
                Err(e) => return Err(RecordError::Schema(e)),
            }
        }
        match &self.last {
            Some((_, t)) => Ok(t),
            // Filled just above.
            None => Err(RecordError::Waiting(*key)),
        }
    }
}
