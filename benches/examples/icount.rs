//! Runs one hot path N times, for counting instructions under
//! `valgrind --tool=callgrind` (counts are stable on a loaded machine where
//! wall-clock timings are not). Usage: `icount VARIANT N`, VARIANT one of
//! transcode, transcode_baseline, event, event_baseline, parse, parse_serde.

#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use apache_avro::reader::datum::GenericDatumReader;
use mskbench_benches::{CLICK_ID, CLICK_SCHEMA, baseline, click_schema, clickevents, encode_all, lab_event};
use mskbench_core::packer::PackLimits;
use mskbench_core::schema_cache::NoFetcher;
use mskbench_core::wire::{SchemaKey, WireMode};
use mskbench_core::{EventProcessor, KafkaEvent, Output, SchemaCache, Transcoder};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map_or("transcode", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let schema = click_schema();
    let datums = encode_all(&clickevents(64, 7));
    let event = lab_event(1000, 4, 42);
    let cache = SchemaCache::default();
    cache.insert_json(SchemaKey::Confluent(CLICK_ID), CLICK_SCHEMA).expect("schema compiles");
    let processor = EventProcessor::new(WireMode::Confluent, PackLimits::default());
    let transcoder = Transcoder::compile(&schema).expect("schema compiles");
    let reader = GenericDatumReader::builder(&schema).build().expect("schema resolves");
    let mut out = Output::new();
    let mut buf = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        match variant {
            "transcode" => {
                buf.clear();
                for d in &datums {
                    transcoder.transcode(d, &mut buf, usize::MAX).expect("valid");
                }
                black_box(&buf);
            }
            "transcode_baseline" => {
                for d in &datums {
                    black_box(baseline::transcode(&reader, d));
                }
            }
            "event" => {
                processor.process_json(&event, &cache, &NoFetcher, Instant::now(), &mut out).expect("valid");
                black_box(&out.batches);
            }
            "event_baseline" => {
                black_box(baseline::process_event(&schema, &event));
            }
            "parse" => {
                black_box(KafkaEvent::parse(&event).expect("valid").record_count());
            }
            "parse_serde" => {
                let e: KafkaEvent<'_> = serde_json::from_slice(&event).expect("valid");
                black_box(e.record_count());
            }
            other => panic!("unknown variant {other}"),
        }
    }
    eprintln!("{variant}: {n} runs in {:?}", start.elapsed());
}
