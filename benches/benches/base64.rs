//! Base64 decoding of record values: ours (base64-simd with run-time CPU
//! detection, appending to a reused buffer) beside the `base64` crate's
//! scalar `decode_slice` and a plain copy of the same bytes, the physical
//! limit. Throughput is in bytes of base64 text.

// Benchmark setup stops on impossible input rather than measuring nothing.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mskbench_benches::Rng;
use mskbench_core::b64;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("base64_decode");
    for size in [100usize, 1024, 16 * 1024] {
        let mut rng = Rng::new(size as u64);
        let raw: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        let mut text = String::new();
        b64::encode_append(&raw, &mut text);
        let text = text.into_bytes();
        group.throughput(Throughput::Bytes(text.len() as u64));

        let mut out = Vec::with_capacity(size);
        group.bench_with_input(BenchmarkId::new("mskbench_simd", size), &text, |b, text| {
            b.iter(|| {
                out.clear();
                b64::decode_append(black_box(text), &mut out).expect("valid base64");
                black_box(&out);
            })
        });

        let mut slice = vec![0u8; size + 3];
        group.bench_with_input(BenchmarkId::new("base64_crate_decode_slice", size), &text, |b, text| {
            b.iter(|| {
                let n = base64::engine::general_purpose::STANDARD
                    .decode_slice(black_box(text), &mut slice)
                    .expect("valid base64");
                black_box(&slice[..n]);
            })
        });

        let mut copy = vec![0u8; text.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &text, |b, text| {
            b.iter(|| {
                copy.copy_from_slice(black_box(text));
                black_box(&copy);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
