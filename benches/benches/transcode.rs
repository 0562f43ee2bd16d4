//! One ClickEvent datum to JSON text: our compiled transcoder writing into
//! a reused buffer, beside apache-avro's reader (built once) into a `Value`,
//! its `serde_json` conversion and `serde_json::to_vec`.

// Benchmark setup stops on impossible input rather than measuring nothing.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use apache_avro::reader::datum::GenericDatumReader;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mskbench_benches::{baseline, click_schema, clickevents, encode_all};
use mskbench_core::Transcoder;

fn bench(c: &mut Criterion) {
    let datums = encode_all(&clickevents(64, 7));
    let schema = click_schema();
    let transcoder = Transcoder::compile(&schema).expect("the ClickEvent schema compiles");
    let reader = GenericDatumReader::builder(&schema).build().expect("the ClickEvent schema resolves");

    let mut group = c.benchmark_group("transcode_clickevent");
    group.throughput(Throughput::Elements(datums.len() as u64));
    let mut out = Vec::with_capacity(256 * datums.len());
    group.bench_function("mskbench", |b| {
        b.iter(|| {
            out.clear();
            for d in &datums {
                transcoder.transcode(black_box(d), &mut out, usize::MAX).expect("valid datum");
                out.push(b'\n');
            }
            black_box(&out);
        })
    });
    group.bench_function("apache_avro_value_serde_json", |b| {
        b.iter(|| {
            for d in &datums {
                black_box(baseline::transcode(&reader, black_box(d)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
