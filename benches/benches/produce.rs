//! Producing ClickEvents: mskbench's send loop beside a bare rdkafka loop.
//!
//! - `clickevent_build`: generating and Avro-encoding one ClickEvent with
//!   mskbench-producer's generator, beside building apache-avro `Value`s
//!   and encoding them with apache-avro (what one would write first).
//! - `produce_mock` / `produce_embedded`: N records to librdkafka's mock
//!   cluster / the embedded tansu broker, flushed. Baseline: a bare
//!   `ThreadedProducer` loop sending the same ClickEvents pre-encoded and
//!   framed (no generation, no timing, no latency recording). The issue's
//!   bar: mskbench at ≥ 90% of the bare loop's rate. `…_keeping_records`
//!   is the loop as `mskbench run` drives it: each record's expected-line
//!   digest computed and its delivery report kept for the accounting.
//!
//! Both producers use the run's librdkafka defaults (acks=all, idempotence,
//! linger.ms=5) and one long-lived producer per variant.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mskbench_core::wire;
use mskbench_producer::clickevent::ClickEvents;
use mskbench_producer::records::{Framing, Generator, KeyFraming, RecordEncoder};
use mskbench_producer::run::PRODUCER_DEFAULTS;
use mskbench_producer::schedule::Profile;
use mskbench_producer::send::{self, AckContext, Control, SendOptions, Unobserved, Until};
use mskbench_producer::topic::ensure_topic;
use mskbench_sim::{EmbeddedBroker, MockBroker};
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const N: u64 = 20_000;

fn client(servers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", servers);
    for (k, v) in PRODUCER_DEFAULTS {
        c.set(k, v);
    }
    c
}

/// The same records, pre-encoded and framed, with their keys.
fn pre_encoded(n: usize) -> Vec<(String, Vec<u8>)> {
    let datums = mskbench_benches::encode_all(&mskbench_benches::clickevents(n, 7));
    let values = mskbench_benches::clickevents(n, 7);
    datums
        .into_iter()
        .zip(values)
        .map(|(d, v)| {
            let mut framed = Vec::with_capacity(d.len() + 5);
            wire::frame_confluent(1, &d, &mut framed);
            let apache_avro::types::Value::Record(fields) = v else { unreachable!() };
            let apache_avro::types::Value::Int(user) = fields[5].1 else { unreachable!() };
            (user.to_string(), framed)
        })
        .collect()
}

fn clickevent_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("clickevent_build");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("mskbench_generator", |b| {
        let mut events = ClickEvents::new(7, 2);
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            for _ in 0..1000 {
                out.clear();
                events.next_event().encode(1_764_240_000_000, &mut out);
                black_box(&out);
            }
        });
    });
    group.bench_function("mskbench_generator_with_expected_digest", |b| {
        let mut events = ClickEvents::new(7, 2);
        let mut out = Vec::with_capacity(128);
        let mut canon = mskbench_producer::expected::Canon::new();
        b.iter(|| {
            for _ in 0..1000 {
                out.clear();
                let event = events.next_event();
                event.encode(1_764_240_000_000, &mut out);
                black_box(mskbench_producer::expected::click_event(&event, 1_764_240_000_000, &mut canon));
                black_box(&out);
            }
        });
    });
    group.bench_function("apache_avro_values", |b| {
        let schema = mskbench_benches::click_schema();
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema).build().unwrap();
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            for v in mskbench_benches::clickevents(1000, 7) {
                out.clear();
                writer.write_value_ref(&mut out, &v).unwrap();
                black_box(&out);
            }
        });
    });
    group.finish();
}

fn produce_group(c: &mut Criterion, name: &str, servers: &str, topic: &str) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(N));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    let records = pre_encoded(N as usize);
    let bare: ThreadedProducer<DefaultProducerContext> = client(servers).create().unwrap();
    group.bench_function(BenchmarkId::new("bare_rdkafka_loop", N), |b| {
        b.iter(|| {
            for (key, value) in &records {
                let mut record = BaseRecord::to(topic).key(key.as_str()).payload(value.as_slice());
                loop {
                    match bare.send(record) {
                        Ok(()) => break,
                        Err((_, back)) => {
                            record = back;
                            std::thread::sleep(Duration::from_micros(100));
                        }
                    }
                }
            }
            bare.flush(Duration::from_secs(60)).unwrap();
        });
    });
    drop(bare);

    let ours = ThreadedProducer::from_config_and_context(&client(servers), AckContext::default()).unwrap();
    let options = SendOptions {
        topic: topic.to_owned(),
        until: Until { count: Some(N), duration: None },
        warmup: Duration::ZERO,
        stats_interval: None,
        hlog: None,
        flush_timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(30),
        seed: 7,
        schema: "1".into(),
        start_at: None,
    };
    group.bench_function(BenchmarkId::new("mskbench_send_loop", N), |b| {
        let mut encoder = RecordEncoder::new(
            Generator::Click(ClickEvents::new(7, 2)),
            Framing::Confluent { id: 1 },
            KeyFraming::Plain,
        );
        b.iter(|| {
            let report = send::run(&ours, &mut encoder, Profile::Max, &options, &Control::new(), &Unobserved).unwrap();
            assert_eq!(report.unaccounted, 0);
        });
    });
    drop(ours);
    // What `mskbench run` sends with: each record's expected digest and
    // coordinates kept for the accounting.
    let keeping = ThreadedProducer::from_config_and_context(&client(servers), AckContext::keeping_records()).unwrap();
    group.bench_function(BenchmarkId::new("mskbench_send_loop_keeping_records", N), |b| {
        let mut encoder = RecordEncoder::new(
            Generator::Click(ClickEvents::new(7, 2)),
            Framing::Confluent { id: 1 },
            KeyFraming::Plain,
        )
        .with_expected();
        b.iter(|| {
            let report =
                send::run(&keeping, &mut encoder, Profile::Max, &options, &Control::new(), &Unobserved).unwrap();
            assert_eq!(report.records.map(|r| r.acked.len() as u64), Some(N));
        });
    });
    group.finish();
}

fn produce_mock(c: &mut Criterion) {
    let mock = MockBroker::start(1, "bench", 3).unwrap();
    produce_group(c, "produce_mock", &mock.bootstrap_servers(), "bench");
}

fn produce_embedded(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let broker = rt.block_on(EmbeddedBroker::start(([127, 0, 0, 1], 0).into())).unwrap();
    let servers = broker.bootstrap_servers();
    rt.block_on(ensure_topic(&mskbench_kafka::Connection::plaintext(servers.clone()), "bench", 3, &[])).unwrap();
    produce_group(c, "produce_embedded", &servers, "bench");
    drop(broker);
}

criterion_group!(benches, clickevent_build, produce_mock, produce_embedded);
criterion_main!(benches);
