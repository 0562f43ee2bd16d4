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
//! **Invariant:** every input record is either in `records` or in
//! `rejections`, never both, never neither (`Output::summary` adds up).
//! Input order is kept in both lists and in the batches.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::accounting::{Reason, Summary};
use crate::b64::{self, Base64Error};
use crate::event::{EventError, KafkaEvent, KafkaRecord};
use crate::packer::{Batch, Oversize, PackLimits, Packer};
use crate::schema_cache::{SchemaCache, SchemaError, SchemaFetcher};
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
    pub partition: i32,
    pub offset: i64,
}

/// A JSON line in [`Output::data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRecord {
    /// Byte range in `data`, newline included.
    pub start: usize,
    pub end: usize,
    /// Position of the record in the event (0-based, document order).
    pub input_index: u32,
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
    pub input_index: u32,
    pub provenance: Provenance,
    pub reason: Reason,
    /// Human-readable detail: what and where.
    pub detail: String,
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
    /// Counts of the above.
    pub summary: Summary,
    /// Topic names referenced by [`Provenance::topic`].
    pub topics: Vec<String>,
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
        self.summary = Summary::default();
        self.topics.clear();
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
        fetcher: &dyn SchemaFetcher,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), EventError> {
        out.clear();
        let event = KafkaEvent::parse(json)?;
        self.process(&event, schemas, fetcher, now, out);
        Ok(())
    }

    /// Processes every record of `event` into `out` (cleared first).
    ///
    /// `now` dates not-found answers in the schema cache.
    pub fn process(
        &self,
        event: &KafkaEvent<'_>,
        schemas: &SchemaCache,
        fetcher: &dyn SchemaFetcher,
        now: Instant,
        out: &mut Output,
    ) {
        out.clear();
        let mut packer = Packer::new(self.limits);
        let mut lookup = Lookup { schemas, fetcher, now, last: None };
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
                Err(e) => {
                    out.data.truncate(start);
                    out.rejections.push(Rejection {
                        input_index,
                        provenance,
                        reason: e.reason(),
                        detail: e.to_string(),
                    });
                }
            }
            input_index += 1;
        }
        packer.finish(&mut out.batches);
        let summary = &mut out.summary;
        summary.records_in = u64::from(input_index);
        summary.records_out = out.records.len() as u64;
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
        let transcoder = lookup.get(&framed.schema).map_err(RecordError::Schema)?;
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
    fetcher: &'a dyn SchemaFetcher,
    now: Instant,
    last: Option<(SchemaKey, Arc<Transcoder>)>,
}

impl Lookup<'_> {
    #[inline]
    fn get(&mut self, key: &SchemaKey) -> Result<&Transcoder, SchemaError> {
        let hit = matches!(&self.last, Some((last, _)) if last == key);
        if !hit {
            let t = self.schemas.get(key, self.now, self.fetcher)?;
            self.last = Some((*key, t));
        }
        match &self.last {
            Some((_, t)) => Ok(t),
            // Filled just above.
            None => Err(SchemaError::NotFound { key: *key }),
        }
    }
}
