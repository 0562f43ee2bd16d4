//! Peer test: Powertools for AWS Lambda (Python) reads the events our event
//! source mapping builds (`EventBuilder`, `record_json`), its Kafka consumer
//! deserializes their Avro values, and the mapping reads the partial batch
//! response its `BatchProcessor` returns (`failures::retry_points`).
//!
//! The Python side is `tests/peers/powertools_kafka.py`, run with the test
//! venv's Python (`MSKBENCH_PYTHON`, set by scripts/test, which installs
//! `aws-lambda-powertools[kafka-consumer-avro]`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{clickevents, confluent};
use mskbench_processor::esm::failures::{Held, retry_points};
use mskbench_processor::esm::{EventBuilder, record_json};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

const TOPIC: &str = "ExampleTopic";

#[test]
fn powertools_reads_our_events_decodes_their_avro_and_its_partial_response_is_read_back() {
    let python = std::env::var("MSKBENCH_PYTHON").expect(
        "MSKBENCH_PYTHON is not set: this test needs aws-lambda-powertools from the test virtual environment \
         (scripts/test installs it and sets MSKBENCH_PYTHON)",
    );
    let (datums, lines) = clickevents(5, 41);
    // (partition, offset, value): partition 0 holds the poison record at offset 2.
    let mut values: Vec<(i32, i64, Vec<u8>)> = Vec::new();
    let mut expected = Vec::new();
    let mut next = [0i64; 2];
    for (i, d) in datums.iter().enumerate() {
        let p = (i % 2) as i32;
        if p == 0 && next[0] == 2 {
            values.push((0, 2, b"\x07not avro".to_vec()));
            next[0] += 1;
        }
        values.push((p, next[p as usize], confluent(1, d)));
        expected.push((p, next[p as usize], lines[i].clone()));
        next[p as usize] += 1;
    }
    let mut builder = EventBuilder::new("arn:aws:kafka:us-east-1:0:cluster/lab/x", "b-1:9092,b-2:9092");
    let mut held = Vec::new();
    for (p, o, v) in &values {
        let headers = OwnedHeaders::new().insert(Header { key: "trace", value: Some(&[0u8, 200, 255][..]) });
        let key = format!("user-{o}");
        let m = OwnedMessage::new(
            Some(v.clone()),
            Some(key.into_bytes()),
            TOPIC.into(),
            Timestamp::CreateTime(1_700_000_000_000 + o),
            *p,
            *o,
            Some(headers),
        );
        let json = record_json(&m);
        builder.push(TOPIC, *p, *o, &json);
        held.push(Held { topic: Arc::from(TOPIC), partition: *p, offset: *o, timestamp: 1_700_000_000_000 + o, json });
    }
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, builder.finish()).unwrap();
    let schema = dir.path().join("click.avsc");
    std::fs::write(&schema, mskbench_benches::CLICK_SCHEMA).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/powertools_kafka.py");
    let out = std::process::Command::new(&python).arg(&script).arg(&event).arg(&schema).arg("2").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let peer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The event groups records by partition, in offset order.
    values.sort_by_key(|&(p, o, _)| (p, o));
    expected.sort_by_key(|&(p, o, _)| (p, o));

    // 1. Powertools' KafkaEvent: every record as we wrote it.
    let records = peer["records"].as_array().unwrap();
    assert_eq!(records.len(), values.len());
    for (r, (p, o, v)) in records.iter().zip(&values) {
        assert_eq!(
            (r["topic"].as_str(), r["partition"].as_i64(), r["offset"].as_i64()),
            (Some(TOPIC), Some(i64::from(*p)), Some(*o))
        );
        assert_eq!(r["timestamp"].as_i64(), Some(1_700_000_000_000 + o));
        assert_eq!(r["timestamp_type"], "CREATE_TIME");
        assert_eq!(r["key"].as_str(), Some(format!("user-{o}").as_str()));
        assert_eq!(r["headers"], serde_json::json!({"trace": [0, 200, 255]}));
        let mut bytes = Vec::new();
        mskbench_core::b64::decode_append(r["value_bytes"].as_str().unwrap().as_bytes(), &mut bytes).unwrap();
        assert_eq!(&bytes, v);
    }

    // 2. Powertools' Avro deserializer: each value is the record our processor's line says.
    let decoded = peer["values"].as_array().unwrap();
    assert_eq!(decoded.len(), expected.len());
    for (d, (p, o, line)) in decoded.iter().zip(&expected) {
        assert_eq!((d["partition"].as_i64(), d["offset"].as_i64()), (Some(i64::from(*p)), Some(*o)));
        let ours: serde_json::Value = serde_json::from_str(line).unwrap();
        let theirs = &d["value"];
        for (field, value) in ours.as_object().unwrap() {
            let peer_value = &theirs[field];
            let same =
                peer_value == value || peer_value.as_str().is_some_and(|s| value.to_string().trim_matches('"') == s);
            assert!(same, "{field}: Powertools {peer_value}, ours {value}");
        }
    }

    // 3. Powertools' partial batch response, read by the mapping.
    let response = serde_json::to_vec(&peer["response"]).unwrap();
    assert_eq!(
        peer["response"]["batchItemFailures"][0]["itemIdentifier"],
        serde_json::json!({"partition": "ExampleTopic-0", "offset": 2})
    );
    let points = retry_points(&response, &held).unwrap();
    assert_eq!(points.into_iter().collect::<Vec<_>>(), [((Arc::from(TOPIC), 0), 2)]);
}
