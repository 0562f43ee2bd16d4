//! Helpers shared by core's integration tests: apache-avro as the reference
//! writer and reader, and its values turned into JSON under the
//! transcoder's conventions (see `mskbench_core::transcode`).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::Value as Json;

/// Encodes `value` with apache-avro.
pub fn encode(schema: &Schema, value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    GenericDatumWriter::builder(schema).build().unwrap().write_value_ref(&mut out, value).unwrap();
    out
}

/// Decodes a datum with apache-avro.
pub fn decode(schema: &Schema, mut datum: &[u8]) -> Value {
    GenericDatumReader::builder(schema).build().unwrap().read_value(&mut datum).unwrap()
}

/// Bytes as a string of code points U+0000–U+00FF.
fn latin1(bytes: &[u8]) -> Json {
    Json::String(bytes.iter().map(|&b| b as char).collect())
}

/// An apache-avro value as the transcoder writes it.
pub fn reference_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(*i),
        Value::Long(l)
        | Value::TimeMicros(l)
        | Value::TimestampMillis(l)
        | Value::TimestampMicros(l)
        | Value::TimestampNanos(l)
        | Value::LocalTimestampMillis(l)
        | Value::LocalTimestampMicros(l)
        | Value::LocalTimestampNanos(l) => Json::from(*l),
        // Compared as f32 by `same_json`; written here in f64.
        Value::Float(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number),
        Value::Bytes(b) | Value::Fixed(_, b) => latin1(b),
        Value::String(s) => Json::String(s.clone()),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Decimal(d) => latin1(&<Vec<u8>>::try_from(d).unwrap()),
        Value::Enum(_, s) => Json::String(s.clone()),
        Value::Union(_, v) => reference_json(v),
        Value::Array(items) => Json::Array(items.iter().map(reference_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), reference_json(v))).collect()),
        Value::Record(fields) => Json::Object(fields.iter().map(|(k, v)| (k.clone(), reference_json(v))).collect()),
        other => panic!("no reference conversion for {other:?}"),
    }
}

/// JSON equality where a number also matches when both sides round to the
/// same f32: the transcoder prints a `float` in its shortest f32 form, the
/// reference widens it to f64 first.
pub fn same_json(ours: &Json, reference: &Json) -> bool {
    match (ours, reference) {
        (Json::Number(a), Json::Number(b)) => {
            if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
                return x == y;
            }
            if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
                return x == y;
            }
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            x == y || (x as f32) == (y as f32)
        }
        (Json::Array(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y)),
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
        }
        _ => ours == reference,
    }
}

/// [`reference_json`] as compact text, record fields in schema order.
pub fn reference_text(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        let entries: Option<Vec<(&String, &Value)>> = match value {
            Value::Record(fields) => Some(fields.iter().map(|(k, v)| (k, v)).collect()),
            Value::Map(m) => Some(m.iter().collect()),
            _ => None,
        };
        match (value, entries) {
            (_, Some(entries)) => {
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            (Value::Union(_, inner), None) => write(inner, out),
            (Value::Array(items), None) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            (other, None) => out.push_str(&serde_json::to_string(&reference_json(other)).unwrap()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}
