//! Property tests: the transcoder against apache-avro as the reference.
//!
//! For generated schemas (nested records, unions, arrays, maps, enums,
//! fixed, every primitive) and generated values, the datum is written two
//! ways — by apache-avro's writer, and by a small encoder here that splits
//! arrays and maps into blocks with negative counts and byte sizes (which
//! apache-avro's writer never emits but every reader must accept) — and our
//! JSON must equal apache-avro's own decoding turned into JSON under the
//! transcoder's conventions.

// Test helpers panic on setup failures: that is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod common;

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::types::Value;
use mskbench_core::Transcoder;
use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// A schema shape; names are given when rendering.
#[derive(Debug, Clone)]
enum T {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    Str,
    Enum(usize),
    Fixed(usize),
    Array(Box<T>),
    Map(Box<T>),
    Union(Vec<T>),
    Record(Vec<T>),
}

fn primitive() -> impl Strategy<Value = T> {
    prop_oneof![
        Just(T::Null),
        Just(T::Boolean),
        Just(T::Int),
        Just(T::Long),
        Just(T::Float),
        Just(T::Double),
        Just(T::Bytes),
        Just(T::Str),
        (1usize..4).prop_map(T::Enum),
        (0usize..5).prop_map(T::Fixed),
    ]
}

fn is_union_friendly(t: &T) -> bool {
    !matches!(t, T::Union(_))
}

/// Kind key for Avro's "no two unnamed branches of one type" rule.
fn union_kind(t: &T) -> Option<&'static str> {
    Some(match t {
        T::Null => "null",
        T::Boolean => "boolean",
        T::Int => "int",
        T::Long => "long",
        T::Float => "float",
        T::Double => "double",
        T::Bytes => "bytes",
        T::Str => "string",
        T::Array(_) => "array",
        T::Map(_) => "map",
        T::Union(_) => "union",
        T::Enum(_) | T::Fixed(_) | T::Record(_) => return None,
    })
}

fn schema_shape() -> impl Strategy<Value = T> {
    primitive().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| T::Array(Box::new(t))),
            inner.clone().prop_map(|t| T::Map(Box::new(t))),
            prop::collection::vec(inner.clone(), 0..5).prop_map(T::Record),
            prop::collection::vec(inner.prop_filter("no nested unions", is_union_friendly), 1..4).prop_map(
                |branches| {
                    let mut seen = Vec::new();
                    let branches: Vec<T> = branches
                        .into_iter()
                        .filter(|b| match union_kind(b) {
                            Some(k) if seen.contains(&k) => false,
                            Some(k) => {
                                seen.push(k);
                                true
                            }
                            None => true,
                        })
                        .collect();
                    T::Union(branches)
                }
            ),
        ]
    })
}

/// The schema JSON for a shape; named types get fresh names.
fn render(t: &T, n: &mut usize) -> Json {
    let mut fresh = |prefix: &str| {
        *n += 1;
        format!("{prefix}{n}")
    };
    match t {
        T::Null => json!("null"),
        T::Boolean => json!("boolean"),
        T::Int => json!("int"),
        T::Long => json!("long"),
        T::Float => json!("float"),
        T::Double => json!("double"),
        T::Bytes => json!("bytes"),
        T::Str => json!("string"),
        T::Enum(k) => {
            let symbols: Vec<String> = (0..*k).map(|i| format!("S{i}")).collect();
            json!({"type": "enum", "name": fresh("E"), "symbols": symbols})
        }
        T::Fixed(size) => json!({"type": "fixed", "name": fresh("F"), "size": size}),
        T::Array(item) => json!({"type": "array", "items": render(item, n)}),
        T::Map(v) => json!({"type": "map", "values": render(v, n)}),
        T::Union(branches) => Json::Array(branches.iter().map(|b| render(b, n)).collect()),
        T::Record(fields) => {
            let name = fresh("R");
            let fields: Vec<Json> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"name": format!("f{i}"), "type": render(f, n)}))
                .collect();
            json!({"type": "record", "name": name, "fields": fields})
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,6}",
        prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
        Just("\"\\\u{0}\u{1f}\u{7f}é\u{2028}😀".to_string()),
    ]
}

fn value(t: &T) -> BoxedStrategy<Value> {
    match t {
        T::Null => Just(Value::Null).boxed(),
        T::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        T::Int => any::<i32>().prop_map(Value::Int).boxed(),
        T::Long => any::<i64>().prop_map(Value::Long).boxed(),
        T::Float => any::<f32>().prop_map(Value::Float).boxed(),
        T::Double => any::<f64>().prop_map(Value::Double).boxed(),
        T::Bytes => prop::collection::vec(any::<u8>(), 0..10).prop_map(Value::Bytes).boxed(),
        T::Str => text().prop_map(Value::String).boxed(),
        T::Enum(k) => (0..*k as u32).prop_map(|i| Value::Enum(i, format!("S{i}"))).boxed(),
        T::Fixed(size) => {
            let size = *size;
            prop::collection::vec(any::<u8>(), size).prop_map(move |b| Value::Fixed(size, b)).boxed()
        }
        T::Array(item) => prop::collection::vec(value(item), 0..6).prop_map(Value::Array).boxed(),
        T::Map(v) => prop::collection::hash_map(text(), value(v), 0..5)
            .prop_map(|m: HashMap<String, Value>| Value::Map(m))
            .boxed(),
        T::Union(branches) if branches.is_empty() => Just(Value::Null).boxed(),
        T::Union(branches) => {
            let options: Vec<BoxedStrategy<Value>> = branches
                .iter()
                .enumerate()
                .map(|(i, b)| value(b).prop_map(move |v| Value::Union(i as u32, Box::new(v))).boxed())
                .collect();
            proptest::strategy::Union::new(options).boxed()
        }
        T::Record(fields) => {
            let fields: Vec<BoxedStrategy<Value>> = fields.iter().map(value).collect();
            fields
                .prop_map(|vs| Value::Record(vs.into_iter().enumerate().map(|(i, v)| (format!("f{i}"), v)).collect()))
                .boxed()
        }
    }
}

/// A shape whose unions are non-empty, with a value of it.
fn case() -> impl Strategy<Value = (T, Value)> {
    schema_shape()
        .prop_filter("empty unions have no values", |t| !has_empty_union(t))
        .prop_flat_map(|t| (Just(t.clone()), value(&t)))
}

fn has_empty_union(t: &T) -> bool {
    match t {
        T::Union(b) => b.is_empty() || b.iter().any(has_empty_union),
        T::Array(i) | T::Map(i) => has_empty_union(i),
        T::Record(f) => f.iter().any(has_empty_union),
        _ => false,
    }
}

// ---- an encoder that writes arrays and maps in negative-count blocks ----

fn zigzag(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn encode_blocked(v: &Value, block: usize, out: &mut Vec<u8>) {
    match v {
        Value::Null => {}
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Int(i) => zigzag(out, i64::from(*i)),
        Value::Long(l) => zigzag(out, *l),
        Value::Float(f) => out.extend_from_slice(&f.to_le_bytes()),
        Value::Double(d) => out.extend_from_slice(&d.to_le_bytes()),
        Value::Bytes(b) => {
            zigzag(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        Value::String(s) => {
            zigzag(out, s.len() as i64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Fixed(_, b) => out.extend_from_slice(b),
        Value::Enum(i, _) => zigzag(out, i64::from(*i)),
        Value::Union(i, inner) => {
            zigzag(out, i64::from(*i));
            encode_blocked(inner, block, out);
        }
        Value::Record(fields) => fields.iter().for_each(|(_, f)| encode_blocked(f, block, out)),
        Value::Array(items) => {
            for chunk in items.chunks(block.max(1)) {
                let mut body = Vec::new();
                chunk.iter().for_each(|i| encode_blocked(i, block, &mut body));
                zigzag(out, -(chunk.len() as i64));
                zigzag(out, body.len() as i64);
                out.extend_from_slice(&body);
            }
            out.push(0);
        }
        Value::Map(entries) => {
            let entries: Vec<_> = entries.iter().collect();
            for chunk in entries.chunks(block.max(1)) {
                let mut body = Vec::new();
                for (k, v) in chunk {
                    zigzag(&mut body, k.len() as i64);
                    body.extend_from_slice(k.as_bytes());
                    encode_blocked(v, block, &mut body);
                }
                zigzag(out, -(chunk.len() as i64));
                zigzag(out, body.len() as i64);
                out.extend_from_slice(&body);
            }
            out.push(0);
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn check(schema: &Schema, transcoder: &Transcoder, datum: &[u8]) -> Result<(), TestCaseError> {
    let reference = common::reference_json(&common::decode(schema, datum));
    let mut out = Vec::new();
    transcoder.transcode(datum, &mut out, usize::MAX).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let text = std::str::from_utf8(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let ours: Json = serde_json::from_str(text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    prop_assert!(common::same_json(&ours, &reference), "ours: {}\nreference: {}", text, reference);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn matches_apache_avro((shape, value) in case(), block in 1usize..4) {
        let schema_json = render(&shape, &mut 0);
        let schema = Schema::parse(&schema_json).unwrap();
        let transcoder = Transcoder::compile(&schema).unwrap();

        let datum = common::encode(&schema, &value);
        check(&schema, &transcoder, &datum)?;

        let mut blocked = Vec::new();
        encode_blocked(&value, block, &mut blocked);
        check(&schema, &transcoder, &blocked)?;
    }

    #[test]
    fn record_fields_keep_schema_order((shape, value) in case()) {
        let T::Record(_) = shape else { return Ok(()) };
        let schema = Schema::parse(&render(&shape, &mut 0)).unwrap();
        let datum = common::encode(&schema, &value);
        let mut out = Vec::new();
        Transcoder::compile(&schema).unwrap().transcode(&datum, &mut out, usize::MAX).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut last = 0;
        if let Value::Record(fields) = &value {
            for (name, _) in fields {
                let at = text[last..].find(&format!("\"{name}\":")).map(|i| i + last);
                prop_assert!(at.is_some(), "{} missing in {}", name, text);
                last = at.unwrap_or(last);
            }
        }
    }

    #[test]
    fn any_bytes_never_panic(shape in schema_shape(), datum in prop::collection::vec(any::<u8>(), 0..64)) {
        let schema = Schema::parse(&render(&shape, &mut 0)).unwrap();
        let transcoder = Transcoder::compile(&schema).unwrap();
        let mut out = b"keep".to_vec();
        match transcoder.transcode(&datum, &mut out, 1 << 16) {
            Ok(()) => {
                let text = std::str::from_utf8(&out[4..]).unwrap();
                prop_assert!(serde_json::from_str::<Json>(text).is_ok(), "invalid JSON: {}", text);
            }
            Err(_) => prop_assert_eq!(&out, b"keep"),
        }
    }
}
