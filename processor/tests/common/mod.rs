//! Helpers shared by the processor's integration tests: handler
//! configuration without touching the process environment, events in the
//! lab's formats, the Firehose stand-in's delivered lines, and moto.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mskbench_core::event::PartitionRecords;
use mskbench_core::wire::{self, Compression};
use mskbench_core::{KafkaEvent, KafkaRecord, TimestampType, b64};
use mskbench_processor::{Config, Handler};
use mskbench_sim::firehose::Buffering;
use mskbench_sim::{FirehoseConfig, FirehoseServer};

pub const STREAM: &str = "MSKToS3";

/// A handler configured from `vars` on top of a minimal lab environment.
pub fn handler(vars: &[(&str, &str)]) -> Handler {
    Handler::new(config(vars)).unwrap()
}

pub fn config(vars: &[(&str, &str)]) -> Config {
    let base = [
        ("DELIVERY_STREAM_NAME", STREAM),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("JITTER_SEED", "7"),
    ];
    let map: HashMap<String, String> =
        base.iter().chain(vars).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup(|k| map.get(k).cloned(), mskbench_processor::config::Chain::fixed("us-east-1", "test", "test"))
        .unwrap()
}

/// The Firehose stand-in with stream [`STREAM`], small buffers, delivering under `dir`.
pub async fn firehose(dir: &Path, tweak: impl FnOnce(&mut FirehoseConfig)) -> FirehoseServer {
    let mut cfg = FirehoseConfig {
        s3_dir: dir.to_owned(),
        buffering: Buffering { size_bytes: 1 << 20, interval: Duration::from_millis(100) },
        allow_small_buffers: true,
        streams: vec![STREAM.to_owned()],
        seed: 11,
        ..FirehoseConfig::default()
    };
    tweak(&mut cfg);
    FirehoseServer::start(cfg).await.unwrap()
}

/// Every file under `dir`, recursively, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The lines of every object under `dir` as written, sorted. Every object
/// must end with a newline (records carry their own delimiter).
pub fn delivered_raw(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for f in files(dir) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.ends_with('\n'), "{f:?} does not end with a newline");
        lines.extend(text.lines().map(str::to_owned));
    }
    lines.sort();
    lines
}

/// JSON lines in a canonical form (keys sorted), sorted: compares content,
/// not field order, and keeps duplicates.
pub fn canonical<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    let mut out: Vec<String> =
        lines.iter().map(|l| serde_json::from_str::<serde_json::Value>(l.as_ref()).unwrap().to_string()).collect();
    out.sort();
    out
}

/// A value framed for Confluent schema `id`.
pub fn confluent(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::frame_confluent(id, datum, &mut out);
    out
}

/// A value framed for Glue schema version `version`.
pub fn glue(version: uuid::Uuid, compression: Compression, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::frame_glue(version, compression, datum, &mut out);
    out
}

/// An event of ExampleTopic records with the given raw values, spread
/// round-robin over `partitions` partitions (offsets count per partition).
pub fn event(values: &[Vec<u8>], partitions: i32) -> Vec<u8> {
    let mut groups: Vec<PartitionRecords<'static>> = (0..partitions)
        .map(|p| PartitionRecords { key: format!("ExampleTopic-{p}").into(), records: Vec::new() })
        .collect();
    for (i, value) in values.iter().enumerate() {
        let p = i % partitions as usize;
        let mut v = String::new();
        b64::encode_append(value, &mut v);
        let group = &mut groups[p];
        group.records.push(KafkaRecord {
            topic: "ExampleTopic".into(),
            partition: p as i32,
            offset: group.records.len() as i64,
            timestamp: 1_764_240_000_000 + i as i64,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(v.into()),
            headers: Vec::new(),
        });
    }
    serde_json::to_vec(&KafkaEvent {
        event_source: Some("aws:kafka".into()),
        event_source_arn: Some("arn:aws:kafka:us-east-1:123456789012:cluster/MSKToS3/abc".into()),
        bootstrap_servers: Some("b-1:9092".into()),
        records: groups,
    })
    .unwrap()
}

/// `n` seeded ClickEvents: Avro datums and their JSON (by apache-avro and
/// serde_json, keys sorted; compare with [`canonical`]).
pub fn clickevents(n: usize, seed: u64) -> (Vec<Vec<u8>>, Vec<String>) {
    let values = mskbench_benches::clickevents(n, seed);
    let datums = mskbench_benches::encode_all(&values);
    let schema = mskbench_benches::click_schema();
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().unwrap();
    let lines = datums
        .iter()
        .map(|d| String::from_utf8(mskbench_benches::baseline::transcode(&reader, d)).unwrap().trim_end().to_owned())
        .collect();
    (datums, lines)
}
