//! Helpers for the producer's integration tests: a runtime, the built-in
//! schema registry, a produce run, and reading a topic back from the
//! beginning with an rdkafka consumer.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mskbench_producer::config::Registry;
use mskbench_producer::schedule::Profile;
use mskbench_producer::send::{Unobserved, Until};
use mskbench_producer::{Control, ProduceConfig, Report};
use mskbench_sim::{RegistryConfig, RegistryServer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The built-in schema registry, serving on `rt` until dropped.
pub fn registry(rt: &tokio::runtime::Runtime) -> RegistryServer {
    rt.block_on(RegistryServer::start(RegistryConfig::default())).unwrap()
}

/// A quiet config (no stats lines), seed 42, 1,000 records/s, no end yet.
pub fn quiet(brokers: &str, registry: &RegistryServer, topic: &str) -> ProduceConfig {
    let registry = Registry::Confluent { url: registry.url() };
    ProduceConfig {
        topic: topic.into(),
        ..ProduceConfig::new(brokers.into(), registry, Profile::constant(1000.0), Until::default(), 42)
    }
}

pub fn produce(rt: &tokio::runtime::Runtime, config: &ProduceConfig) -> Report {
    rt.block_on(mskbench_producer::produce(config, Control::new(), std::sync::Arc::new(Unobserved))).unwrap()
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Reads `expected` records of `topic` (partitions 0..partitions) from the
/// beginning, grouped by partition in offset order. Gives up after 60 s.
pub fn read_back(brokers: &str, topic: &str, partitions: i32, expected: usize) -> BTreeMap<i32, Vec<Read>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "mskbench-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out: BTreeMap<i32, Vec<Read>> = BTreeMap::new();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while n < expected {
        assert!(Instant::now() < deadline, "read {n} of {expected} records within 60 s");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.entry(m.partition()).or_default().push(Read {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                });
                n += 1;
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    // Nothing beyond what was expected.
    let extra = consumer.poll(Duration::from_millis(500));
    assert!(extra.is_none(), "more records than expected: {:?}", extra.map(|r| r.map(|m| m.offset())));
    out
}
