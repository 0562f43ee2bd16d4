//! The processor's work on a 1,000-record ClickEvent event up to the
//! Firehose calls: parse, decode, pack, and build the `PutRecordBatch`
//! requests the SDK will send (`Handler::prepare`, reusing its output
//! buffers), beside the straightforward implementation a user would write
//! (`baseline::process_event`: serde_json, base64, apache-avro, serde_json
//! again), which stops at batches of lines and builds no request at all.
//!
//! The target (issue 5) is at most 0.5 ms per event on one core.

// Benchmark setup stops on impossible input rather than measuring nothing.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mskbench_benches::{CLICK_ID, CLICK_SCHEMA, baseline, click_schema, lab_event};
use mskbench_core::Output;
use mskbench_core::wire::SchemaKey;
use mskbench_processor::{Config, Handler};

const RECORDS: usize = 1000;

fn handler(runtime: &tokio::runtime::Runtime) -> Handler {
    let vars = [
        ("DELIVERY_STREAM_NAME", "MSKToS3"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("CSR", "true"),
        ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9"),
        ("JITTER_SEED", "1"),
    ];
    let aws = mskbench_processor::config::Chain::fixed("us-east-1", "bench", "bench");
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()), aws)
        .expect("a valid configuration");
    let _entered = runtime.enter();
    let handler = Handler::new(config).expect("a handler");
    handler.insert_schema(SchemaKey::Confluent(CLICK_ID), CLICK_SCHEMA).expect("the ClickEvent schema compiles");
    handler
}

fn prepare(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let handler = handler(&runtime);
    let event = lab_event(RECORDS, 4, 42);
    let schema = click_schema();

    let mut group = c.benchmark_group("processor_event_1000_clickevents_to_requests");
    group.throughput(Throughput::Elements(RECORDS as u64));
    let mut out = Some(Output::new());
    group.bench_function("mskbench_prepare", |b| {
        b.iter(|| {
            // The schema is preloaded, so `prepare` never awaits: `block_on`
            // only polls it once.
            let prepared = runtime
                .block_on(handler.prepare(black_box(&event), out.take().unwrap_or_default()))
                .expect("a valid event");
            assert_eq!(prepared.requests.iter().map(Vec::len).sum::<usize>(), RECORDS);
            black_box(&prepared.requests);
            out = Some(prepared.output);
        })
    });
    group.bench_function("straightforward_batches_only", |b| {
        b.iter(|| {
            let batches = baseline::process_event(&schema, black_box(&event));
            assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), RECORDS);
            black_box(batches);
        })
    });
    group.finish();
}

criterion_group!(benches, prepare);
criterion_main!(benches);
