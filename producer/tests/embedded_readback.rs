//! Produce to the embedded tansu broker, read everything back with an
//! rdkafka consumer and decode it with mskbench-core: every record decodes
//! under the registered schema and follows the lab's ClickEvent model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;

use apache_avro::Schema;
use mskbench_core::Transcoder;
use mskbench_core::wire::{SchemaKey, WireMode, unframe};
use mskbench_producer::clickevent::{self, ModelChecker, ReadEvent};
use mskbench_producer::config::{KeyFormat, Records};
use mskbench_producer::schedule::Profile;
use mskbench_producer::schemagen::SizeControls;
use mskbench_producer::topic::ensure_topic;
use mskbench_sim::EmbeddedBroker;

fn check_clickevents(
    reads: &std::collections::BTreeMap<i32, Vec<common::Read>>,
    schema_id: u32,
    avro_keys: bool,
) -> u64 {
    let schema = Schema::parse_str(clickevent::SCHEMA).unwrap();
    let transcoder = Transcoder::compile(&schema).unwrap();
    let mut checker = ModelChecker::new();
    let mut json = Vec::new();
    for records in reads.values() {
        for r in records {
            let framed = unframe(&r.value, WireMode::Confluent).unwrap();
            assert_eq!(framed.schema, SchemaKey::Confluent(schema_id));
            json.clear();
            transcoder.transcode(framed.datum, &mut json, 1 << 20).unwrap();
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let raw_key = r.key.clone().expect("ClickEvents have keys");
            let key = if avro_keys {
                // 0x00, key schema id, then an Avro string (zig-zag length + bytes).
                assert_eq!(raw_key[0], 0);
                let len = (raw_key[5] >> 1) as usize;
                assert_eq!(raw_key.len(), 6 + len);
                String::from_utf8(raw_key[6..].to_vec()).unwrap()
            } else {
                String::from_utf8(raw_key).unwrap()
            };
            let event = ReadEvent::from_json(Some(key), &value).unwrap();
            checker.check(&event).unwrap_or_else(|e| panic!("partition {} offset {}: {e}", r.partition, r.offset));
        }
    }
    checker.events()
}

#[test]
fn clickevents_read_back_from_the_embedded_broker() {
    let rt = common::runtime();
    let broker = rt.block_on(EmbeddedBroker::start(([127, 0, 0, 1], 0).into())).unwrap();
    let servers = broker.bootstrap_servers();
    rt.block_on(ensure_topic(&mskbench_kafka::Connection::plaintext(servers.clone()), "ExampleTopic", 3, &[])).unwrap();
    let registry = common::registry(&rt);

    let mut config = common::quiet(&servers, &registry, "ExampleTopic");
    config.until.count = Some(3000);
    config.profile = Profile::constant(20_000.0);
    let report = common::produce(&rt, &config);
    assert_eq!((report.sent, report.acked, report.failed, report.unaccounted), (3000, 3000, 0, 0), "{report:?}");

    let reads = common::read_back(&servers, "ExampleTopic", 3, 3000);
    assert!(reads.len() > 1, "keys spread over partitions: {:?}", reads.keys());
    let id: u32 = report.schema.parse().unwrap();
    assert_eq!(check_clickevents(&reads, id, false), 3000);
}

#[test]
fn avro_keys_as_the_lab_writes_them() {
    let rt = common::runtime();
    let broker = rt.block_on(EmbeddedBroker::start(([127, 0, 0, 1], 0).into())).unwrap();
    let servers = broker.bootstrap_servers();
    rt.block_on(ensure_topic(&mskbench_kafka::Connection::plaintext(servers.clone()), "Keys", 2, &[])).unwrap();
    let registry = common::registry(&rt);
    let mut config = common::quiet(&servers, &registry, "Keys");
    config.until.count = Some(500);
    config.profile = Profile::Max;
    config.key_format = KeyFormat::Avro;
    let report = common::produce(&rt, &config);
    assert_eq!(report.acked, 500, "{report:?}");
    let reads = common::read_back(&servers, "Keys", 2, 500);
    assert_eq!(check_clickevents(&reads, report.schema.parse().unwrap(), true), 500);
}

#[test]
fn any_schema_records_decode_under_the_registered_schema() {
    let rt = common::runtime();
    let broker = rt.block_on(EmbeddedBroker::start(([127, 0, 0, 1], 0).into())).unwrap();
    let servers = broker.bootstrap_servers();
    rt.block_on(ensure_topic(&mskbench_kafka::Connection::plaintext(servers.clone()), "People", 1, &[])).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let text = r#"{"type":"record","name":"Person","fields":[
        {"name":"email","type":"string"},{"name":"city","type":"string"},
        {"name":"age","type":"int"},{"name":"tags","type":{"type":"array","items":"string"}}]}"#;
    file.write_all(text.as_bytes()).unwrap();
    let registry = common::registry(&rt);
    let mut config = common::quiet(&servers, &registry, "People");
    config.until.count = Some(200);
    config.profile = Profile::constant(10_000.0);
    let sizes = SizeControls { pad_bytes: 300, ..SizeControls::default() };
    config.records = Records::Schema { schema: std::fs::read_to_string(file.path()).unwrap(), sizes };
    let report = common::produce(&rt, &config);
    assert_eq!(report.acked, 200, "{report:?}");

    let padded = mskbench_producer::schemagen::SchemaRecords::new(text, sizes, 1).unwrap();
    let schema = padded.schema().clone();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().unwrap();
    let reads = common::read_back(&servers, "People", 1, 200);
    for r in &reads[&0] {
        let framed = unframe(&r.value, WireMode::Confluent).unwrap();
        let value = reader.read_value(&mut std::io::Cursor::new(framed.datum)).unwrap();
        let apache_avro::types::Value::Record(fields) = value else { panic!("a record") };
        assert!(matches!(&fields[0].1, apache_avro::types::Value::String(s) if s.contains('@')));
        assert!(matches!(&fields[4].1, apache_avro::types::Value::Bytes(b) if b.len() == 300));
    }
}
