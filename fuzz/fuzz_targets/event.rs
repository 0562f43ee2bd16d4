//! The Lambda event reader, and the per-event pipeline behind it.
//!
//! Any bytes go to `KafkaEvent::parse`, the hand-written reader every
//! invocation starts with. Oracles: serde_json with the event's serde
//! derives (the reference the reader is tested against) must read valid
//! UTF-8 the same way — the same event, or both refuse; an error names a
//! line and column inside the document. An event that parses then runs
//! through `EventProcessor::process` with the ClickEvent schema cached
//! (Confluent id 1 and the fixtures' Glue version) and small batch limits:
//! every record ends packed, rejected or waiting, exactly one of them;
//! batches cover the packed records in order within their limits; every
//! packed line is one JSON value and a newline.
#![no_main]

use std::sync::LazyLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use mskbench_core::{EventProcessor, KafkaEvent, Output, PackLimits, SchemaCache, SchemaError, SchemaKey, WireMode};
use uuid::Uuid;

const CLICK_SCHEMA: &str = include_str!("../../core/tests/data/clickevent.avsc");
/// The Glue schema version of the fixtures (`core/tests/lab_fixtures.rs`).
const GLUE_VERSION: Uuid = Uuid::from_u128(0xb7b4_a7f0_0c5e_4a5b_9a0e_3f2c_7d9e_1a42);
/// Confluent id 2: one field of each kind, so mutated values reach every decoder.
const RICH_SCHEMA: &str = r#"{"type":"record","name":"R","fields":[
  {"name":"u","type":["null","string","long","double"]},
  {"name":"m","type":{"type":"map","values":{"type":"array","items":"int"}}},
  {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
  {"name":"f","type":{"type":"fixed","name":"F","size":2}},
  {"name":"b","type":"bytes"},{"name":"t","type":"boolean"},{"name":"x","type":"float"}]}"#;

static CACHE: LazyLock<SchemaCache> = LazyLock::new(|| {
    let cache = SchemaCache::default();
    for (key, text) in [
        (SchemaKey::Confluent(1), CLICK_SCHEMA),
        (SchemaKey::Glue(GLUE_VERSION), CLICK_SCHEMA),
        (SchemaKey::Confluent(2), RICH_SCHEMA),
    ] {
        if let Err(e) = cache.insert_json(key, text) {
            panic!("the fuzz target's own schema does not compile: {e}");
        }
    }
    cache
});

fuzz_target!(|data: &[u8]| {
    let parsed = KafkaEvent::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let reference = serde_json::from_str::<KafkaEvent<'_>>(text);
        match (&parsed, &reference) {
            (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "the reader and serde_json read different events"),
            (Err(_), Err(_)) => {}
            _ => panic!("the reader and serde_json disagree: {parsed:?} vs {reference:?}"),
        }
    }
    let event = match parsed {
        Ok(event) => event,
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1, "error position {}:{} is not 1-based", e.line, e.column);
            return;
        }
    };
    let limits = PackLimits { max_records: 3, max_batch_bytes: 4096, max_record_bytes: 2048 };
    let mut out = Output::new();
    for mode in [WireMode::GlueSecondary, WireMode::Confluent] {
        let processor = EventProcessor::new(mode, limits);
        processor.process(&event, &CACHE, Instant::now(), &mut out);
        assert_eq!(out.summary.records_in, event.record_count() as u64);
        assert!(out.summary.adds_up(), "records do not add up: {:?}", out.summary);
        check_batches(&out, limits);
        out.reject_waiting(|&key| SchemaError::NotFound { key });
        assert!(out.summary.adds_up() && out.waiting.is_empty(), "waiting records vanished: {:?}", out.summary);
        let mut seen: Vec<u32> = out.records.iter().map(|r| r.input_index).collect();
        seen.extend(out.rejections.iter().map(|r| r.input_index));
        seen.sort_unstable();
        assert!(seen.iter().copied().eq(0..event.record_count() as u32), "not every record has one outcome");
    }
});

fn check_batches(out: &Output, limits: PackLimits) {
    let mut next = 0;
    for batch in &out.batches {
        assert_eq!(batch.records.start, next, "batches skip or repeat records");
        assert!(!batch.is_empty() && batch.len() <= limits.max_records, "batch of {} records", batch.len());
        assert!(batch.bytes <= limits.max_batch_bytes, "batch of {} bytes", batch.bytes);
        let records = out.batch_records(batch);
        assert_eq!(batch.bytes, records.iter().map(|r| r.len()).sum::<usize>());
        for record in records {
            let line = out.line(record);
            assert!(line.len() <= limits.max_record_bytes, "record of {} bytes", line.len());
            let Some((b'\n', json)) = line.split_last() else { panic!("a line without its newline") };
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(json) {
                panic!("a packed line is not JSON ({e}): {:?}", String::from_utf8_lossy(json));
            }
        }
        next = batch.records.end;
    }
    assert_eq!(next, out.records.len(), "packed records outside every batch");
}
