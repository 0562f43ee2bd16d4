//! The expected content of each record, from the side that generated it:
//! the oracle `mskbench run` checks the processor's output against.
//!
//! The processor turns each record's Avro datum into a JSON line. Which
//! line each record should become must not be decided by the processor's
//! own decoder (a decoder bug would agree with itself), so the producer
//! digests the value it generated — a [`ClickEvent`]'s fields, or the
//! schema-driven `apache_avro` [`Value`] — and the run's accounting digests
//! each delivered line after parsing it with `serde_json`. Both feed one
//! canonical token stream ([`Canon`]) into one 64-bit hash, so a line
//! matches a record when it holds the same JSON value, whatever its
//! spelling:
//! - object keys in byte order (serde_json's map order; record fields are
//!   not checked for order, maps have none);
//! - integers as integers; floats compared at `f32` precision (serde_json's
//!   default float parsing may be an ulp off, and a `float` field is no
//!   more precise anyway); non-finite numbers as `null`, the output
//!   convention (`core/src/transcode.rs`);
//! - `bytes` and `fixed` as strings of U+0000–U+00FF, one per byte; unions
//!   unwrapped; enums as symbols; logical types as their underlying value
//!   (a `uuid` as its text, a `duration` as its 12 bytes, a decimal as its
//!   two's-complement bytes).
//!
//! Boundary: no I/O. The same rules are written here once for both ends;
//! the processor's transcoder is not called.
//!
//! Cost: a ClickEvent is about 280 bytes of tokens into a reused buffer and
//! one SipHash over them, with no allocation after warm-up; the time is not
//! measured yet (`clickevent_build/mskbench_generator_with_expected_digest`
//! in `benches/benches/produce.rs` measures it). A schema-driven record
//! sorts its fields and map keys (an allocation per record and map), and
//! uuid and decimal values allocate their text or bytes. A digest is 8 bytes; the chance that two
//! of 10 million distinct records share one is about 3 in a million.

use std::hash::{DefaultHasher, Hasher};

use apache_avro::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::clickevent::ClickEvent;

/// The digest of a record's expected JSON value.
pub type Digest = u64;

/// A reusable buffer of canonical tokens, hashed into a [`Digest`].
#[derive(Debug, Default, Clone)]
pub struct Canon {
    buf: Vec<u8>,
}

impl Canon {
    /// An empty token buffer.
    pub fn new() -> Canon {
        Canon { buf: Vec::with_capacity(256) }
    }

    fn null(&mut self) {
        self.buf.push(b'n');
    }

    fn bool(&mut self, v: bool) {
        self.buf.push(if v { b't' } else { b'f' });
    }

    fn int(&mut self, v: i128) {
        self.buf.push(b'i');
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn float(&mut self, v: f64) {
        if v.is_finite() {
            self.buf.push(b'd');
            // `as` saturates nothing here: a finite f64 beyond f32's range
            // becomes ±∞ on both sides alike.
            self.buf.extend_from_slice(&(v as f32).to_bits().to_le_bytes());
        } else {
            self.null();
        }
    }

    fn text(&mut self, tag: u8, s: &[u8]) {
        self.buf.push(tag);
        self.buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(s);
    }

    fn str(&mut self, s: &[u8]) {
        self.text(b's', s);
    }

    fn key(&mut self, s: &[u8]) {
        self.text(b'k', s);
    }

    /// Bytes as a string of one code point U+0000–U+00FF per byte, in UTF-8.
    fn latin1(&mut self, bytes: &[u8]) {
        let len = bytes.len() + bytes.iter().filter(|&&b| b >= 0x80).count();
        self.buf.push(b's');
        self.buf.extend_from_slice(&(len as u64).to_le_bytes());
        for &b in bytes {
            if b < 0x80 {
                self.buf.push(b);
            } else {
                self.buf.extend_from_slice(&[0xC0 | (b >> 6), 0x80 | (b & 0x3F)]);
            }
        }
    }

    fn finish(&mut self) -> Digest {
        let mut h = DefaultHasher::new();
        h.write(&self.buf);
        self.buf.clear();
        h.finish()
    }
}

/// The digest of the JSON line the processor should send for `event`
/// stamped `timestamp_ms`.
pub fn click_event(event: &ClickEvent, timestamp_ms: i64, canon: &mut Canon) -> Digest {
    canon.buf.clear();
    canon.buf.push(b'{');
    // The schema's fields, in byte order of their names.
    canon.key(b"devicetype");
    canon.str(event.devicetype.as_bytes());
    canon.key(b"event_type");
    canon.str(event.page.event_type().as_bytes());
    canon.key(b"eventtimestamp");
    canon.int(i128::from(timestamp_ms));
    canon.key(b"globalseq");
    canon.int(i128::from(event.globalseq));
    canon.key(b"ip");
    canon.str(event.ip_bytes(&mut [0u8; 16]));
    canon.key(b"prevglobalseq");
    canon.int(i128::from(event.prevglobalseq));
    canon.key(b"product_type");
    canon.str(event.product_type.as_bytes());
    canon.key(b"userid");
    canon.int(i128::from(event.userid));
    canon.buf.push(b'}');
    canon.finish()
}

/// The digest of the JSON line the processor should send for `value`.
pub fn avro_value(value: &Value, canon: &mut Canon) -> Digest {
    canon.buf.clear();
    put_value(value, canon);
    canon.finish()
}

fn put_value(value: &Value, canon: &mut Canon) {
    match value {
        Value::Null => canon.null(),
        Value::Boolean(b) => canon.bool(*b),
        Value::Int(v) | Value::Date(v) | Value::TimeMillis(v) => canon.int(i128::from(*v)),
        Value::Long(v)
        | Value::TimeMicros(v)
        | Value::TimestampMillis(v)
        | Value::TimestampMicros(v)
        | Value::TimestampNanos(v)
        | Value::LocalTimestampMillis(v)
        | Value::LocalTimestampMicros(v)
        | Value::LocalTimestampNanos(v) => canon.int(i128::from(*v)),
        Value::Float(v) => canon.float(f64::from(*v)),
        Value::Double(v) => canon.float(*v),
        Value::Bytes(b) | Value::Fixed(_, b) => canon.latin1(b),
        Value::String(s) | Value::Enum(_, s) => canon.str(s.as_bytes()),
        Value::Union(_, inner) => put_value(inner, canon),
        Value::Array(items) => {
            canon.buf.push(b'[');
            for item in items {
                put_value(item, canon);
            }
            canon.buf.push(b']');
        }
        Value::Map(entries) => {
            let mut sorted: Vec<(&String, &Value)> = entries.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            put_object(sorted, canon);
        }
        Value::Record(fields) => {
            let mut sorted: Vec<(&String, &Value)> = fields.iter().map(|(k, v)| (k, v)).collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            put_object(sorted, canon);
        }
        Value::Decimal(d) => match Vec::<u8>::try_from(d) {
            Ok(bytes) => canon.latin1(&bytes),
            // Cannot happen for a decimal the generator built; a null
            // expectation makes the record show as lost, not hidden.
            Err(_) => canon.null(),
        },
        Value::BigDecimal(_) => match bytes_datum(&Schema::BigDecimal, value) {
            Some(bytes) => canon.latin1(&bytes),
            None => canon.null(),
        },
        Value::Duration(d) => canon.latin1(&<[u8; 12]>::from(d)),
        Value::Uuid(u) => canon.str(u.hyphenated().to_string().as_bytes()),
    }
}

fn put_object(fields: Vec<(&String, &Value)>, canon: &mut Canon) {
    canon.buf.push(b'{');
    for (k, v) in fields {
        canon.key(k.as_bytes());
        put_value(v, canon);
    }
    canon.buf.push(b'}');
}

/// The bytes apache-avro writes for `value` under a `bytes`-based
/// `schema`, without their length prefix: what the JSON line spells out.
fn bytes_datum(schema: &Schema, value: &Value) -> Option<Vec<u8>> {
    let writer = GenericDatumWriter::builder(schema).build().ok()?;
    let mut out = Vec::new();
    writer.write_value_ref(&mut out, value).ok()?;
    // Skip the zig-zag varint length.
    let prefix = out.iter().position(|&b| b & 0x80 == 0)? + 1;
    Some(out.split_off(prefix))
}

/// A digest of a record's raw value bytes, to recognise a record in the
/// topic (no decoding).
pub fn payload(bytes: &[u8]) -> Digest {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// Why a delivered line has no digest.
#[derive(Debug, thiserror::Error)]
#[error("not a JSON value: {0}")]
pub struct LineError(#[from] serde_json::Error);

/// The digest of the JSON value a delivered `line` holds (a trailing
/// newline is ignored), to match against [`click_event`] and [`avro_value`].
///
/// # Errors
/// [`LineError`] when the line is not one JSON value.
pub fn line(line: &[u8], canon: &mut Canon) -> Result<Digest, LineError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let value: serde_json::Value = serde_json::from_slice(line)?;
    canon.buf.clear();
    put_json(&value, canon);
    Ok(canon.finish())
}

fn put_json(value: &serde_json::Value, canon: &mut Canon) {
    use serde_json::Value as J;
    match value {
        J::Null => canon.null(),
        J::Bool(b) => canon.bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => canon.int(i128::from(i)),
            (None, Some(u)) => canon.int(i128::from(u)),
            (None, None) => canon.float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => canon.str(s.as_bytes()),
        J::Array(items) => {
            canon.buf.push(b'[');
            for item in items {
                put_json(item, canon);
            }
            canon.buf.push(b']');
        }
        J::Object(map) => {
            // serde_json's map is ordered by key (no `preserve_order`).
            canon.buf.push(b'{');
            for (k, v) in map {
                canon.key(k.as_bytes());
                put_json(v, canon);
            }
            canon.buf.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::clickevent::ClickEvents;

    #[test]
    fn a_click_event_matches_its_line_as_the_lab_writes_it() {
        let event = ClickEvents::new(1, 1).next_event();
        let mut canon = Canon::new();
        let expected = click_event(&event, 1_764_240_000_037, &mut canon);
        let line = format!(
            "{{\"ip\":\"{}\",\"eventtimestamp\":1764240000037,\"devicetype\":\"{}\",\"event_type\":\"home_page\",\
             \"product_type\":\"N/A\",\"userid\":1000,\"globalseq\":1,\"prevglobalseq\":0}}\n",
            event.ip(),
            event.devicetype
        );
        assert_eq!(super::line(line.as_bytes(), &mut canon).unwrap(), expected);
        let other = line.replace("\"globalseq\":1", "\"globalseq\":2");
        assert_ne!(super::line(other.as_bytes(), &mut canon).unwrap(), expected);
        let other = line.replace("1764240000037", "1764240000038");
        assert_ne!(super::line(other.as_bytes(), &mut canon).unwrap(), expected);
    }

    #[test]
    fn click_events_digest_as_the_transcoder_writes_them() {
        let schema = apache_avro::Schema::parse_str(crate::clickevent::SCHEMA).unwrap();
        let transcoder = mskbench_core::transcode::Transcoder::compile(&schema).unwrap();
        let mut canon = Canon::new();
        let (mut datum, mut line) = (Vec::new(), Vec::new());
        for (i, event) in ClickEvents::new(3, 2).take(500).enumerate() {
            datum.clear();
            line.clear();
            let ts = 1_764_240_000_000 + i as i64;
            event.encode(ts, &mut datum);
            transcoder.transcode(&datum, &mut line, usize::MAX).unwrap();
            assert_eq!(line_digest(&line), click_event(&event, ts, &mut canon), "{}", String::from_utf8_lossy(&line));
        }
    }

    fn line_digest(l: &[u8]) -> Digest {
        super::line(l, &mut Canon::new()).unwrap()
    }

    #[test]
    fn avro_values_match_their_lines() {
        let value = Value::Record(vec![
            ("b".into(), Value::Bytes(vec![0, 0x41, 0xFF])),
            ("f".into(), Value::Float(0.1)),
            ("d".into(), Value::Double(f64::NAN)),
            ("u".into(), Value::Union(0, Box::new(Value::String("x\"y".into())))),
            ("m".into(), Value::Map(HashMap::from([("z".into(), Value::Int(-1)), ("a".into(), Value::Long(2))]))),
            ("a".into(), Value::Array(vec![Value::Boolean(true), Value::Null])),
            ("e".into(), Value::Enum(1, "B".into())),
        ]);
        let mut canon = Canon::new();
        let expected = avro_value(&value, &mut canon);
        let line = br#"{"b":"\u0000A\u00ff","f":0.1,"d":null,"u":"x\"y","m":{"z":-1,"a":2},"a":[true,null],"e":"B"}"#;
        assert_eq!(super::line(line, &mut canon).unwrap(), expected);
        let wrong = br#"{"b":"\u0000A\u00fe","f":0.1,"d":null,"u":"x\"y","m":{"z":-1,"a":2},"a":[true,null],"e":"B"}"#;
        assert_ne!(super::line(wrong, &mut canon).unwrap(), expected);
    }

    #[test]
    fn a_line_that_is_not_json_has_no_digest() {
        assert!(line(b"{\"a\":", &mut Canon::new()).is_err());
    }
}
