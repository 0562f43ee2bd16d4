//! The specialised event reader against serde_json as the reference.
//!
//! `KafkaEvent::parse` (hand-written for speed) and
//! `serde_json::from_slice::<KafkaEvent>` (serde's derive, the reference)
//! must agree on every document: the same event, or both refuse. Checked on
//! generated events written compactly, pretty, and with every string
//! character escaped, and on random byte-level mutations of them. One
//! difference is deliberate: a document that is not UTF-8 is refused even
//! where serde_json would skip the bad bytes inside an ignored field.

// Test helpers panic on setup failures: that is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use mskbench_core::event::{EventErrorKind, Header, KafkaEvent, KafkaRecord, PartitionRecords, TimestampType};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9+/=]{0,24}", prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),]
}

fn record() -> impl Strategy<Value = KafkaRecord<'static>> {
    (
        text(),
        any::<i32>(),
        any::<i64>(),
        any::<i64>(),
        prop_oneof![
            Just(TimestampType::CreateTime),
            Just(TimestampType::LogAppendTime),
            Just(TimestampType::NoTimestampType)
        ],
        prop::option::of(text()),
        prop::option::of(text()),
        prop::collection::vec((text(), prop::collection::vec(any::<u8>(), 0..4)), 0..3),
    )
        .prop_map(|(topic, partition, offset, timestamp, timestamp_type, key, value, headers)| KafkaRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp,
            timestamp_type,
            key: key.map(Cow::Owned),
            value: value.map(Cow::Owned),
            headers: headers.into_iter().map(|(k, v)| Header { key: k.into(), value: v }).collect(),
        })
}

fn event() -> impl Strategy<Value = KafkaEvent<'static>> {
    (prop::option::of(text()), prop::collection::vec((text(), prop::collection::vec(record(), 0..3)), 0..3)).prop_map(
        |(source, groups)| KafkaEvent {
            event_source: source.map(Cow::Owned),
            event_source_arn: None,
            bootstrap_servers: Some("b-1:9092".into()),
            records: groups.into_iter().map(|(k, records)| PartitionRecords { key: k.into(), records }).collect(),
        },
    )
}

/// JSON text with every string character written as a `\u` escape.
fn escape_everything(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push('"');
                for unit in s.encode_utf16() {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
                out.push('"');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            serde_json::Value::Object(map) => {
                out.push('{');
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(&serde_json::Value::String(k.clone()), out);
                    out.push(':');
                    write(item, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(&value, &mut out);
    out
}

fn agree(doc: &[u8]) -> Result<(), TestCaseError> {
    let ours = KafkaEvent::parse(doc);
    let reference = serde_json::from_slice::<KafkaEvent<'_>>(doc);
    match (&ours, &reference) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        // Deliberately stricter: JSON text must be UTF-8 (RFC 8259), and we
        // check the whole document where serde_json skips ignored strings.
        (Err(e), Ok(_)) if e.kind == EventErrorKind::InvalidUtf8 => {
            prop_assert!(std::str::from_utf8(doc).is_err());
        }
        _ => prop_assert!(
            false,
            "disagree on {:?}\nours: {:?}\nserde_json: {:?}",
            String::from_utf8_lossy(doc),
            ours.map(|_| ()),
            reference.map(|_| ())
        ),
    }
    Ok(())
}

const MUTATION_BYTES: &[u8] = b"{}[],:\"\\ \n0123456789-+.eEnulltruefalse/u\x01\xc3\xff";

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn generated_events_read_back_equal(event in event()) {
        let compact = serde_json::to_string(&event).unwrap();
        prop_assert_eq!(&KafkaEvent::parse(compact.as_bytes()).unwrap(), &event);
        let pretty = serde_json::to_string_pretty(&event).unwrap();
        prop_assert_eq!(&KafkaEvent::parse(pretty.as_bytes()).unwrap(), &event);
        let escaped = escape_everything(&compact);
        agree(escaped.as_bytes())?;
        prop_assert!(KafkaEvent::parse(escaped.as_bytes()).is_ok());
    }

    #[test]
    fn mutated_events_get_the_same_answer(
        event in event(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(MUTATION_BYTES)), 1..4),
    ) {
        let mut doc = serde_json::to_vec(&event).unwrap();
        for (at, op, byte) in edits {
            if doc.is_empty() {
                break;
            }
            let i = at.index(doc.len());
            match op {
                0 => { doc.remove(i); }
                1 => doc.insert(i, byte),
                _ => doc[i] = byte,
            }
        }
        agree(&doc)?;
    }
}

#[test]
fn hand_picked_documents_get_the_same_answer() {
    let docs: &[&str] = &[
        r#"{"records":{}}"#,
        r#" {"records":{}} "#,
        r#"{"records":{}} x"#,
        r#"{"records":{},"records":{}}"#,
        r#"{"records":null}"#,
        r#"{"records":{"t-0":[]},"extra":{"a":[1,2.5e-3,true,false,null,"x"]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":-0}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":01}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1.0}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1e2}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":2147483648,"offset":1}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":9223372036854775808}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":-9223372036854775808}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"offset":2}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestampType":"OTHER"}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":null}]}}"#,
        r#"{"records":{"t-0":[{"topic":"\ud83d\ude00","partition":0,"offset":1}]}}"#,
        r#"{"records":{"t-0":[{"topic":"\ud83d","partition":0,"offset":1}]}}"#,
        r#"{"records":{"t-0":[{"topic":"\x","partition":0,"offset":1}]}}"#,
        "{\"records\":{\"t-0\":[{\"topic\":\"a\tb\",\"partition\":0,\"offset\":1}]}}",
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"headers":null}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"headers":[{"a":null}]}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"headers":[{"a":[-129]}]}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"key":5}]}}"#,
        r#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":1,"x":[[[[[]]]]]}]}}"#,
        "\u{feff}{\"records\":{}}",
    ];
    for doc in docs {
        if let Err(e) = agree(doc.as_bytes()) {
            panic!("{e}");
        }
    }
}

#[test]
fn errors_name_line_and_column() {
    let err = KafkaEvent::parse(b"{\n  \"records\": {\n    \"t-0\": [ { \"topic\": 7 } ]\n  }\n}").unwrap_err();
    assert_eq!((err.line, err.column), (3, 25), "points at the 7");
    assert!(err.to_string().contains("must be a string"), "{err}");
    let err = KafkaEvent::parse(b"{\"records\":{}}\xff").unwrap_err();
    assert_eq!(err.to_string(), "not a Lambda Kafka event (line 1, column 15): the document is not UTF-8");
}
