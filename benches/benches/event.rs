//! A whole 1,000-record ClickEvent Lambda event to packed Firehose batches:
//! ours (borrowed serde_json parse, SIMD base64, cached compiled schema,
//! streaming transcoder, packing by reference into a reused `Output`) beside
//! the straightforward implementation in `mskbench_benches::baseline`.
//!
//! A second group measures only the event JSON parse, the largest single
//! cost: core's specialised reader (`KafkaEvent::parse`) beside the parsers a
//! user might pick — serde_json, sonic-rs and simd-json borrowing into the
//! same event types through serde, and serde_json into a `Value` tree.

// Benchmark setup stops on impossible input rather than measuring nothing.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mskbench_benches::{CLICK_ID, CLICK_SCHEMA, baseline, click_schema, lab_event};
use mskbench_core::packer::PackLimits;
use mskbench_core::wire::{SchemaKey, WireMode};
use mskbench_core::{EventProcessor, KafkaEvent, Output, SchemaCache};

const RECORDS: usize = 1000;

fn whole_event(c: &mut Criterion) {
    let event = lab_event(RECORDS, 4, 42);
    let cache = SchemaCache::default();
    cache.insert_json(SchemaKey::Confluent(CLICK_ID), CLICK_SCHEMA).expect("the ClickEvent schema compiles");
    let processor = EventProcessor::new(WireMode::Confluent, PackLimits::default());
    let schema = click_schema();

    let mut group = c.benchmark_group("lambda_event_1000_clickevents");
    group.throughput(Throughput::Elements(RECORDS as u64));
    let mut out = Output::new();
    group.bench_function("mskbench", |b| {
        b.iter(|| {
            processor.process_json(black_box(&event), &cache, Instant::now(), &mut out).expect("a valid event");
            assert_eq!(out.records.len(), RECORDS);
            black_box(&out.batches);
        })
    });
    group.bench_function("straightforward", |b| {
        b.iter(|| {
            let batches = baseline::process_event(&schema, black_box(&event));
            assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), RECORDS);
            black_box(batches);
        })
    });
    group.finish();
}

fn parse_only(c: &mut Criterion) {
    let event = lab_event(RECORDS, 4, 42);
    let mut group = c.benchmark_group("event_json_parse_1000_records");
    group.throughput(Throughput::Bytes(event.len() as u64));
    group.bench_function("mskbench_specialised", |b| {
        b.iter(|| black_box(KafkaEvent::parse(black_box(&event)).expect("valid").record_count()))
    });
    group.bench_function("serde_json_borrowed", |b| {
        b.iter(|| {
            let e: KafkaEvent<'_> = serde_json::from_slice(black_box(&event)).expect("valid");
            black_box(e.record_count())
        })
    });
    group.bench_function("sonic_rs_borrowed", |b| {
        b.iter(|| {
            let e: KafkaEvent<'_> = sonic_rs::from_slice(black_box(&event)).expect("valid");
            black_box(e.record_count())
        })
    });
    let mut scratch = event.clone();
    group.bench_function("simd_json_borrowed_incl_copy", |b| {
        b.iter(|| {
            // simd-json parses in place: each run needs a fresh copy.
            scratch.copy_from_slice(&event);
            let e: KafkaEvent<'_> = simd_json::serde::from_slice(black_box(&mut scratch)).expect("valid");
            black_box(e.record_count())
        })
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&event)).expect("valid")))
    });
    group.finish();
}

criterion_group!(benches, whole_event, parse_only);
criterion_main!(benches);
