//! Schema-registry framing of Kafka record values.
//!
//! | format | layout |
//! |---|---|
//! | Confluent | `0x00`, schema id (u32, big-endian), Avro datum |
//! | AWS Glue | `0x03`, compression (`0x00` none, `0x05` zlib), schema-version UUID (16 bytes, big-endian), datum (zlib-compressed when `0x05`) |
//!
//! [`WireMode`] says which formats a reader accepts, as the lab's Lambda
//! environment does: `CSR=true` reads Confluent only; `CSR=false` reads Glue
//! only; `CSR=false` with `SECONDARY_DESERIALIZER=true` hands every value
//! whose first byte is not `0x03` to the Confluent reader (a topic migrating
//! from a Confluent registry to Glue carries both).
//!
//! [`unframe`] only slices: the datum borrows from the value. Inflating a
//! zlib datum ([`inflate_append`]) writes into a caller-owned buffer and
//! stops at a caller-given limit, so a small compressed value cannot expand
//! into gigabytes. The `frame_*` functions write the same formats for the
//! producer and the tests.

use std::fmt;
use std::io::Read as _;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Confluent's magic byte.
pub const CONFLUENT_MAGIC: u8 = 0x00;
/// Glue's header version byte.
pub const GLUE_HEADER_VERSION: u8 = 0x03;
/// Glue's compression byte for an uncompressed datum.
pub const GLUE_COMPRESSION_NONE: u8 = 0x00;
/// Glue's compression byte for a zlib datum.
pub const GLUE_COMPRESSION_ZLIB: u8 = 0x05;
/// Length of a Confluent header.
pub const CONFLUENT_HEADER_LEN: usize = 5;
/// Length of a Glue header.
pub const GLUE_HEADER_LEN: usize = 18;

/// Which framings a reader accepts; the lab's `CSR` and
/// `SECONDARY_DESERIALIZER` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireMode {
    /// `CSR=true`: Confluent framing only.
    Confluent,
    /// `CSR=false`: Glue framing only.
    Glue,
    /// `CSR=false`, `SECONDARY_DESERIALIZER=true`: Glue, and any value whose
    /// first byte is not `0x03` read as Confluent.
    #[default]
    GlueSecondary,
}

impl WireMode {
    /// The mode the lab's environment variables select.
    pub fn from_lab_settings(csr: bool, secondary_deserializer: bool) -> Self {
        match (csr, secondary_deserializer) {
            (true, _) => WireMode::Confluent,
            (false, false) => WireMode::Glue,
            (false, true) => WireMode::GlueSecondary,
        }
    }

    /// The mode's name as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WireMode::Confluent => "confluent",
            WireMode::Glue => "glue",
            WireMode::GlueSecondary => "glue-secondary",
        }
    }
}

impl FromStr for WireMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "confluent" => Ok(WireMode::Confluent),
            "glue" => Ok(WireMode::Glue),
            "glue-secondary" => Ok(WireMode::GlueSecondary),
            other => Err(format!("unknown wire mode {other:?}: expected confluent, glue or glue-secondary")),
        }
    }
}

/// Identifies a writer schema: a Confluent id or a Glue schema-version UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaKey {
    /// A Confluent schema id (from the 4 bytes after `0x00`).
    Confluent(u32),
    /// A Glue schema-version UUID (from the 16 bytes after the Glue header).
    Glue(Uuid),
}

impl fmt::Display for SchemaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaKey::Confluent(id) => write!(f, "confluent schema id {id}"),
            SchemaKey::Glue(uuid) => write!(f, "glue schema version {uuid}"),
        }
    }
}

impl FromStr for SchemaKey {
    type Err = String;
    /// A decimal number is a Confluent id; a UUID is a Glue schema version.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(id) = s.parse::<u32>() {
            return Ok(SchemaKey::Confluent(id));
        }
        Uuid::parse_str(s)
            .map(SchemaKey::Glue)
            .map_err(|_| format!("{s:?} is neither a Confluent schema id (u32) nor a Glue schema-version UUID"))
    }
}

/// How the datum after the header is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// The datum is stored as is.
    None,
    /// The datum is zlib-compressed (Glue's `0x05`).
    Zlib,
}

/// A value split into its schema key and datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The writer schema the datum was written with.
    pub schema: SchemaKey,
    /// How the datum is stored.
    pub compression: Compression,
    /// The Avro datum (compressed when `compression` says so), borrowed from the value.
    pub datum: &'a [u8],
}

/// Why a value's framing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The value has no bytes.
    #[error("empty value")]
    Empty,
    #[error("unknown magic byte 0x{byte:02x} (expected {expected})")]
    /// The first byte is not a framing the mode reads.
    UnknownMagic {
        /// The first byte.
        byte: u8,
        /// The framings the mode reads.
        expected: &'static str,
    },
    #[error("{format} header needs {needed} bytes, value has {len}")]
    /// The value is shorter than its framing header.
    TruncatedHeader {
        /// The framing (`confluent`, `glue`).
        format: &'static str,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes the value has.
        len: usize,
    },
    /// A Glue compression byte other than `0x00` or `0x05`.
    #[error("unknown glue compression byte 0x{0:02x} (expected 0x00 or 0x05)")]
    UnknownCompression(u8),
    /// The zlib stream is corrupt or truncated.
    #[error("corrupt zlib data")]
    CorruptCompressed,
    #[error("inflated datum exceeds {limit} bytes")]
    /// The datum inflates past the caller's limit.
    InflatedTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Splits `value` into schema key and datum as `mode` reads it.
///
/// # Errors
/// [`WireError`] when the value's framing is not one `mode` accepts.
#[inline]
pub fn unframe(value: &[u8], mode: WireMode) -> Result<Framed<'_>, WireError> {
    let Some(&first) = value.first() else {
        return Err(WireError::Empty);
    };
    match (mode, first) {
        (WireMode::Glue | WireMode::GlueSecondary, GLUE_HEADER_VERSION) => unframe_glue(value),
        (WireMode::Glue, byte) => Err(WireError::UnknownMagic { byte, expected: "0x03 (glue)" }),
        (WireMode::Confluent | WireMode::GlueSecondary, CONFLUENT_MAGIC) => unframe_confluent(value),
        (WireMode::Confluent, byte) => Err(WireError::UnknownMagic { byte, expected: "0x00 (confluent)" }),
        (WireMode::GlueSecondary, byte) => {
            Err(WireError::UnknownMagic { byte, expected: "0x03 (glue) or 0x00 (confluent)" })
        }
    }
}

fn unframe_confluent(value: &[u8]) -> Result<Framed<'_>, WireError> {
    let Some((header, datum)) = value.split_first_chunk::<CONFLUENT_HEADER_LEN>() else {
        return Err(WireError::TruncatedHeader { format: "confluent", needed: CONFLUENT_HEADER_LEN, len: value.len() });
    };
    let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Ok(Framed { schema: SchemaKey::Confluent(id), compression: Compression::None, datum })
}

fn unframe_glue(value: &[u8]) -> Result<Framed<'_>, WireError> {
    let Some((header, datum)) = value.split_first_chunk::<GLUE_HEADER_LEN>() else {
        return Err(WireError::TruncatedHeader { format: "glue", needed: GLUE_HEADER_LEN, len: value.len() });
    };
    let compression = match header[1] {
        GLUE_COMPRESSION_NONE => Compression::None,
        GLUE_COMPRESSION_ZLIB => Compression::Zlib,
        other => return Err(WireError::UnknownCompression(other)),
    };
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&header[2..]);
    Ok(Framed { schema: SchemaKey::Glue(Uuid::from_bytes(uuid)), compression, datum })
}

/// Inflates a zlib `datum`, appending at most `limit` bytes to `out`.
///
/// # Errors
/// [`WireError::CorruptCompressed`] for data that is not a whole zlib
/// stream, [`WireError::InflatedTooLarge`] past `limit`; `out` is then left
/// as it was.
pub fn inflate_append(datum: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<Range<usize>, WireError> {
    let start = out.len();
    let mut decoder = flate2::read::ZlibDecoder::new(datum);
    // Read one byte past the limit to tell "exactly limit" from "more".
    let read = decoder.by_ref().take(limit as u64 + 1).read_to_end(out);
    let result = match read {
        Ok(n) if n > limit => Err(WireError::InflatedTooLarge { limit }),
        // A stream that ends early inflates to fewer bytes without error
        // from `read`; a complete stream consumed all of the input.
        Ok(_) if decoder.total_in() != datum.len() as u64 => Err(WireError::CorruptCompressed),
        Ok(_) => Ok(start..out.len()),
        Err(_) => Err(WireError::CorruptCompressed),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a Confluent-framed datum to `out`.
pub fn frame_confluent(id: u32, datum: &[u8], out: &mut Vec<u8>) {
    out.push(CONFLUENT_MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
}

/// Appends a Glue-framed datum to `out`, compressing it when asked.
pub fn frame_glue(version: Uuid, compression: Compression, datum: &[u8], out: &mut Vec<u8>) {
    out.push(GLUE_HEADER_VERSION);
    out.push(match compression {
        Compression::None => GLUE_COMPRESSION_NONE,
        Compression::Zlib => GLUE_COMPRESSION_ZLIB,
    });
    out.extend_from_slice(version.as_bytes());
    match compression {
        Compression::None => out.extend_from_slice(datum),
        Compression::Zlib => {
            use std::io::Write as _;
            let mut encoder = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(datum);
            let _ = encoder.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);

    #[test]
    fn confluent_header_is_magic_then_big_endian_id() {
        let value = [0x00, 0x00, 0x00, 0x01, 0x02, 0xaa, 0xbb];
        let framed = unframe(&value, WireMode::Confluent).unwrap();
        assert_eq!(framed.schema, SchemaKey::Confluent(258));
        assert_eq!(framed.datum, &[0xaa, 0xbb]);
    }

    #[test]
    fn glue_header_carries_compression_and_uuid() {
        let mut value = vec![0x03, 0x00];
        value.extend_from_slice(UUID.as_bytes());
        value.push(0x42);
        let framed = unframe(&value, WireMode::Glue).unwrap();
        assert_eq!(framed.schema, SchemaKey::Glue(UUID));
        assert_eq!(framed.compression, Compression::None);
        assert_eq!(framed.datum, &[0x42]);
        assert_eq!(UUID.to_string(), "01234567-89ab-cdef-fedc-ba9876543210");
        assert_eq!(value[2], 0x01, "most significant byte first");
    }

    #[test]
    fn glue_only_refuses_confluent_values() {
        let err = unframe(&[0, 0, 0, 0, 1], WireMode::Glue).unwrap_err();
        assert_eq!(err, WireError::UnknownMagic { byte: 0, expected: "0x03 (glue)" });
    }

    #[test]
    fn confluent_only_refuses_glue_values() {
        let mut value = vec![0x03, 0x00];
        value.extend_from_slice(UUID.as_bytes());
        assert!(matches!(unframe(&value, WireMode::Confluent), Err(WireError::UnknownMagic { byte: 3, .. })));
    }

    #[test]
    fn secondary_reads_both_and_refuses_other_magic_bytes() {
        let mut glue = vec![0x03, 0x00];
        glue.extend_from_slice(UUID.as_bytes());
        assert!(matches!(unframe(&glue, WireMode::GlueSecondary).unwrap().schema, SchemaKey::Glue(_)));
        let confluent = [0, 0, 0, 0, 7];
        assert_eq!(unframe(&confluent, WireMode::GlueSecondary).unwrap().schema, SchemaKey::Confluent(7));
        let err = unframe(&[0x7b, 0x22], WireMode::GlueSecondary).unwrap_err();
        assert!(err.to_string().contains("unknown magic byte 0x7b"), "{err}");
    }

    #[test]
    fn short_headers_are_truncated() {
        assert_eq!(
            unframe(&[0, 0, 0, 1], WireMode::Confluent),
            Err(WireError::TruncatedHeader { format: "confluent", needed: 5, len: 4 })
        );
        assert_eq!(
            unframe(&[3, 0, 1, 2], WireMode::Glue),
            Err(WireError::TruncatedHeader { format: "glue", needed: 18, len: 4 })
        );
        assert_eq!(unframe(&[], WireMode::Glue), Err(WireError::Empty));
    }

    #[test]
    fn exactly_a_header_is_an_empty_datum() {
        assert_eq!(unframe(&[0, 0, 0, 0, 1], WireMode::Confluent).unwrap().datum, &[] as &[u8]);
    }

    #[test]
    fn unknown_glue_compression_is_refused() {
        let mut value = vec![0x03, 0x01];
        value.extend_from_slice(UUID.as_bytes());
        assert_eq!(unframe(&value, WireMode::Glue), Err(WireError::UnknownCompression(1)));
    }

    #[test]
    fn zlib_round_trip_through_frame_and_inflate() {
        let datum = b"clickevent datum ".repeat(20);
        let mut value = Vec::new();
        frame_glue(UUID, Compression::Zlib, &datum, &mut value);
        let framed = unframe(&value, WireMode::Glue).unwrap();
        assert_eq!(framed.compression, Compression::Zlib);
        let mut out = b"x".to_vec();
        let range = inflate_append(framed.datum, &mut out, 1 << 20).unwrap();
        assert_eq!(&out[range], &datum[..]);
    }

    #[test]
    fn inflate_stops_at_the_limit() {
        let mut value = Vec::new();
        frame_glue(UUID, Compression::Zlib, &vec![0u8; 100_000], &mut value);
        let mut out = Vec::new();
        let datum = &value[GLUE_HEADER_LEN..];
        assert_eq!(inflate_append(datum, &mut out, 99_999), Err(WireError::InflatedTooLarge { limit: 99_999 }));
        assert!(out.is_empty());
        assert_eq!(inflate_append(datum, &mut out, 100_000).unwrap().len(), 100_000);
    }

    #[test]
    fn corrupt_or_truncated_zlib_is_refused() {
        let mut out = Vec::new();
        assert_eq!(inflate_append(b"not zlib", &mut out, 1000), Err(WireError::CorruptCompressed));
        let mut value = Vec::new();
        frame_glue(UUID, Compression::Zlib, &b"abc".repeat(100), &mut value);
        let cut = &value[GLUE_HEADER_LEN..value.len() - 3];
        assert_eq!(inflate_append(cut, &mut out, 1000), Err(WireError::CorruptCompressed));
        assert!(out.is_empty());
    }

    #[test]
    fn schema_keys_parse_from_ids_and_uuids() {
        assert_eq!("42".parse::<SchemaKey>(), Ok(SchemaKey::Confluent(42)));
        assert_eq!(UUID.to_string().parse::<SchemaKey>(), Ok(SchemaKey::Glue(UUID)));
        assert!("nope".parse::<SchemaKey>().is_err());
    }

    #[test]
    fn lab_settings_select_the_mode() {
        assert_eq!(WireMode::from_lab_settings(true, true), WireMode::Confluent);
        assert_eq!(WireMode::from_lab_settings(false, false), WireMode::Glue);
        assert_eq!(WireMode::from_lab_settings(false, true), WireMode::GlueSecondary);
    }
}
