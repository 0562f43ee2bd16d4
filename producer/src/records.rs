//! Record building: generator → Avro datum → registry framing, plus the key.
//!
//! [`RecordEncoder`] owns one generator (the lab's ClickEvents or a
//! schema-driven one) and the framing the registry step chose: Confluent
//! (`0x00` + schema id) or Glue (`0x03`, compression byte, schema-version
//! UUID, optionally zlib). Keys are the user id as a plain string, or —
//! `--key-format avro`, as the lab's Confluent producer does — an Avro
//! string in Confluent framing under the `<topic>-key` subject. Glue keys
//! stay plain strings, as the lab's Glue path sends them.
//!
//! Boundary: no I/O; the caller passes the wall-clock milliseconds of the
//! send. Buffers are reused: after warm-up a ClickEvent costs no allocation.

use mskbench_core::wire::{self, Compression};
use uuid::Uuid;

use crate::avro::put_str;
use crate::clickevent::ClickEvents;
use crate::expected::{self, Canon, Digest};
use crate::schemagen::{SchemaGenError, SchemaRecords};

/// Where records come from.
#[derive(Debug)]
// One per run, never moved on the hot path: the size difference is moot.
#[allow(clippy::large_enum_variant)]
pub enum Generator {
    /// The lab's ClickEvents.
    Click(ClickEvents),
    /// Random records of any schema.
    Schema(SchemaRecords),
}

/// How values are framed for a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `0x00` and the schema id, big-endian.
    Confluent {
        /// The id the registry answered.
        id: u32,
    },
    /// `0x03`, the compression byte and the schema version's UUID.
    Glue {
        /// The schema version Glue answered.
        version: Uuid,
        /// Whether the datum is zlib-compressed.
        compression: Compression,
    },
}

impl Framing {
    /// The schema reference as text: a Confluent id or a Glue UUID.
    pub fn schema_ref(&self) -> String {
        match self {
            Framing::Confluent { id } => id.to_string(),
            Framing::Glue { version, .. } => version.to_string(),
        }
    }
}

/// How keys are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFraming {
    /// The key's text as bytes.
    Plain,
    /// An Avro `string` in Confluent framing with the `<topic>-key` schema id.
    ConfluentAvro {
        /// The id of the `"string"` schema under `<topic>-key`.
        id: u32,
    },
}

/// Why a record could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The schema-driven generator could not encode a value.
    #[error(transparent)]
    Schema(#[from] SchemaGenError),
}

/// One record as [`RecordEncoder::next_expected`] builds it: key, framed
/// value and expected-line digest, borrowed from the encoder's buffers.
pub type Built<'a> = (Option<&'a [u8]>, &'a [u8], Option<Digest>);

/// Builds records one after another into reused buffers.
#[derive(Debug)]
pub struct RecordEncoder {
    generator: Generator,
    framing: Framing,
    key_framing: KeyFraming,
    datum: Vec<u8>,
    value: Vec<u8>,
    key: Vec<u8>,
    /// Present when each record's expected line is digested.
    canon: Option<Canon>,
}

impl RecordEncoder {
    /// An encoder drawing from `generator`, framing values and keys as given.
    pub fn new(generator: Generator, framing: Framing, key_framing: KeyFraming) -> Self {
        RecordEncoder {
            generator,
            framing,
            key_framing,
            datum: Vec::with_capacity(256),
            value: Vec::with_capacity(256),
            key: Vec::with_capacity(32),
            canon: None,
        }
    }

    /// The same encoder, also digesting the JSON line each record should
    /// become, from the generated value ([`crate::expected`]): the oracle
    /// a run's accounting checks the processor against.
    pub fn with_expected(mut self) -> Self {
        self.canon = Some(Canon::new());
        self
    }

    /// Whether it was built [`RecordEncoder::with_expected`].
    pub fn digests_expected(&self) -> bool {
        self.canon.is_some()
    }

    /// The next record's key (absent for schema-driven records) and framed
    /// value, with timestamps at `now_ms`.
    pub fn next(&mut self, now_ms: i64) -> Result<(Option<&[u8]>, &[u8]), RecordError> {
        self.next_expected(now_ms).map(|(key, value, _)| (key, value))
    }

    /// [`RecordEncoder::next`], with the digest of the line the record
    /// should become when built [`RecordEncoder::with_expected`].
    pub fn next_expected(&mut self, now_ms: i64) -> Result<Built<'_>, RecordError> {
        self.datum.clear();
        self.value.clear();
        self.key.clear();
        let mut digest = None;
        let has_key = match &mut self.generator {
            Generator::Click(events) => {
                let event = events.next_event();
                event.encode(now_ms, &mut self.datum);
                if let Some(canon) = &mut self.canon {
                    digest = Some(expected::click_event(&event, now_ms, canon));
                }
                let mut buf = itoa::Buffer::new();
                let text = event.key(&mut buf).as_bytes();
                match self.key_framing {
                    KeyFraming::Plain => self.key.extend_from_slice(text),
                    KeyFraming::ConfluentAvro { id } => {
                        self.key.push(wire::CONFLUENT_MAGIC);
                        self.key.extend_from_slice(&id.to_be_bytes());
                        put_str(&mut self.key, text);
                    }
                }
                true
            }
            Generator::Schema(records) => {
                match &mut self.canon {
                    Some(canon) => digest = Some(records.next_datum_expected(&mut self.datum, canon)?),
                    None => records.next_datum(&mut self.datum)?,
                }
                false
            }
        };
        match self.framing {
            Framing::Confluent { id } => wire::frame_confluent(id, &self.datum, &mut self.value),
            Framing::Glue { version, compression } => {
                wire::frame_glue(version, compression, &self.datum, &mut self.value)
            }
        }
        Ok((has_key.then_some(self.key.as_slice()), &self.value, digest))
    }
}

#[cfg(test)]
mod tests {
    use mskbench_core::wire::{WireMode, unframe};

    use super::*;

    #[test]
    fn confluent_values_and_avro_keys() {
        let mut enc = RecordEncoder::new(
            Generator::Click(ClickEvents::new(1, 1)),
            Framing::Confluent { id: 7 },
            KeyFraming::ConfluentAvro { id: 3 },
        );
        let (key, value) = enc.next(5).unwrap();
        // "1000" as an Avro string: length 4 zig-zag = 8.
        assert_eq!(key.unwrap(), &[0, 0, 0, 0, 3, 8, b'1', b'0', b'0', b'0']);
        assert_eq!(&value[..5], &[0, 0, 0, 0, 7]);
    }

    #[test]
    fn glue_zlib_values_unframe() {
        let version = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let mut enc = RecordEncoder::new(
            Generator::Click(ClickEvents::new(1, 1)),
            Framing::Glue { version, compression: Compression::Zlib },
            KeyFraming::Plain,
        );
        let (key, value) = enc.next(5).unwrap();
        assert_eq!(key.unwrap(), b"1000");
        let framed = unframe(value, WireMode::Glue).unwrap();
        assert_eq!(framed.schema, mskbench_core::SchemaKey::Glue(version));
        assert_eq!(framed.compression, Compression::Zlib);
    }
}
