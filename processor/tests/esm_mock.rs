//! The local event source mapping against a Kafka broker.
//!
//! The broker is librdkafka's mock cluster (`rdkafka::mocking`), which
//! keeps at most 5 MiB or 100,000 message sets per partition and silently
//! deletes older ones: the data here is a few hundred small records (under
//! 100 KiB in all), far below that. Set `MSKBENCH_TEST_BROKERS` to a real
//! broker list (topic `MSKBENCH_TEST_TOPIC`, default `ExampleTopic`, with 3
//! partitions, empty or fresh) to run the same tests against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{STREAM, canonical, clickevents, confluent, delivered_raw, firehose};
use mskbench_core::wire::SchemaKey;
use mskbench_processor::Handler;
use mskbench_processor::esm::{self, EsmConfig, EsmError, MAX_PAYLOAD, RECORD_TOO_LARGE};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;

/// A broker with the topic: the mock cluster, or `MSKBENCH_TEST_BROKERS`.
struct Broker {
    _mock: Option<MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
    servers: String,
    topic: String,
}

fn broker(name: &str) -> Broker {
    if let Ok(servers) = std::env::var("MSKBENCH_TEST_BROKERS") {
        let topic = std::env::var("MSKBENCH_TEST_TOPIC").unwrap_or_else(|_| "ExampleTopic".into());
        return Broker { _mock: None, servers, topic };
    }
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(name, PARTITIONS, 1).unwrap();
    Broker { servers: mock.bootstrap_servers(), _mock: Some(mock), topic: name.to_owned() }
}

/// Produces `values` keyed by index; returns the count per partition.
fn produce(broker: &Broker, values: &[Vec<u8>]) -> Vec<i64> {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &broker.servers).set("acks", "all").create().unwrap();
    let mut per_partition = vec![0i64; PARTITIONS as usize];
    for (i, v) in values.iter().enumerate() {
        let p = (i % PARTITIONS as usize) as i32;
        let key = (1000 + i).to_string();
        producer.send(BaseRecord::to(&broker.topic).partition(p).key(&key).payload(v)).map_err(|(e, _)| e).unwrap();
        per_partition[p as usize] += 1;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    per_partition
}

/// The group's committed offset of each partition (-1 when none).
fn committed(broker: &Broker, group: &str) -> Vec<i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &broker.servers).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(&broker.topic, p);
    }
    let offsets = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..PARTITIONS)
        .map(|p| match offsets.find_partition(&broker.topic, p).unwrap().offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect()
}

fn mapping(broker: &Broker, group: &str, pollers: usize) -> EsmConfig {
    let mut c = EsmConfig::new(&broker.servers, &broker.topic, group);
    c.batch_size = 100;
    c.batch_window = Duration::from_millis(50);
    c.pollers = pollers;
    c.idle_exit = Some(Duration::from_secs(2));
    c.max_attempts = Some(3);
    // A member that vanished is replaced within seconds, not 45 s.
    c.kafka = vec![("session.timeout.ms".into(), "6000".into()), ("heartbeat.interval.ms".into(), "500".into())];
    c
}

fn handler(rt: &tokio::runtime::Runtime, firehose_url: &str, retries: &str) -> Arc<Handler> {
    let _entered = rt.enter();
    let h = common::handler(&[
        ("AWS_ENDPOINT_URL_FIREHOSE", firehose_url),
        ("CSR", "true"),
        ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9"),
        ("RETRIES", retries),
        ("RETRY_BASE_MS", "1"),
        ("RETRY_MAX_DELAY_MS", "10"),
    ]);
    h.insert_schema(SchemaKey::Confluent(1), mskbench_benches::CLICK_SCHEMA).unwrap();
    Arc::new(h)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn two_pollers_deliver_every_record_and_commit_every_partition() {
    let broker = broker("esm-all");
    let (datums, expected) = clickevents(600, 31);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    let per_partition = produce(&broker, &values);

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(firehose(dir.path(), |_| {}));
    let h = handler(&rt, &server.url(), "3");
    let stats =
        esm::run(&mapping(&broker, "g-all", 2), h, rt.handle().clone(), Arc::new(AtomicBool::new(false))).unwrap();
    let totals = server.metrics().streams[STREAM].totals;
    rt.block_on(server.shutdown()).unwrap();

    // At least once: a rebalance between an invocation and its commit may
    // hand the same records to the other poller; nothing is missing.
    assert!(stats.records_in >= 600, "{stats:?}");
    assert_eq!(stats.delivered, stats.records_in);
    assert_eq!(stats.failed_invocations, 0);
    assert!(stats.invocations >= 6, "batches hold at most 100 records: {stats:?}");
    assert!(stats.max_event_bytes as usize <= MAX_PAYLOAD);
    assert_eq!(totals.accepted_records, stats.delivered);
    let lines = delivered_raw(dir.path());
    assert_eq!(lines.len() as u64, stats.delivered);
    let unique: Vec<String> = lines.iter().cloned().collect::<HashSet<_>>().into_iter().collect();
    assert_eq!(canonical(&unique), canonical(&expected));
    assert_eq!(committed(&broker, "g-all"), per_partition);
}

#[test]
fn offsets_are_committed_only_after_the_handler_succeeds() {
    let broker = broker("esm-fail");
    let (datums, expected) = clickevents(150, 32);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    let per_partition = produce(&broker, &values);
    let rt = runtime();

    // Firehose fails every call: each batch is invoked 3 times, then the mapping gives up.
    let dir = tempfile::tempdir().unwrap();
    let failing = rt.block_on(firehose(dir.path(), |c| c.faults.http_500_rate = 1.0));
    let h = handler(&rt, &failing.url(), "0");
    let err =
        esm::run(&mapping(&broker, "g-fail", 1), h, rt.handle().clone(), Arc::new(AtomicBool::new(false))).unwrap_err();
    assert!(matches!(err, EsmError::GaveUp { attempts: 3, .. }), "{err}");
    rt.block_on(failing.shutdown()).unwrap();
    assert_eq!(committed(&broker, "g-fail"), vec![-1; PARTITIONS as usize], "nothing committed");

    // A healthy Firehose: the same group starts again from the beginning.
    let dir = tempfile::tempdir().unwrap();
    let healthy = rt.block_on(firehose(dir.path(), |_| {}));
    let h = handler(&rt, &healthy.url(), "3");
    let stats =
        esm::run(&mapping(&broker, "g-fail", 1), h, rt.handle().clone(), Arc::new(AtomicBool::new(false))).unwrap();
    rt.block_on(healthy.shutdown()).unwrap();
    assert_eq!((stats.records_in, stats.delivered), (150, 150));
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
    assert_eq!(committed(&broker, "g-fail"), per_partition);
}

#[test]
fn batches_stay_under_the_payload_limit() {
    let broker = broker("esm-size");
    let (datums, _) = clickevents(200, 33);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    produce(&broker, &values);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(firehose(dir.path(), |_| {}));
    let h = handler(&rt, &server.url(), "3");
    // A 16 KiB limit stands in for 6 MB: about 60 ClickEvent records fit.
    let mut config = mapping(&broker, "g-size", 1);
    config.batch_size = 10_000;
    config.batch_window = Duration::from_millis(500);
    config.max_payload = 16 * 1024;
    let stats = esm::run(&config, h, rt.handle().clone(), Arc::new(AtomicBool::new(false))).unwrap();
    rt.block_on(server.shutdown()).unwrap();
    assert_eq!(stats.delivered, 200);
    assert!(stats.max_event_bytes <= 16 * 1024, "{stats:?}");
    // 200 ClickEvents make about 45 KiB of event text: at least 3 events,
    // closed by size (nearly full), not by count or window.
    assert!(stats.invocations >= 3, "{stats:?}");
    assert!(stats.max_event_bytes > 15 * 1024, "{stats:?}");
}

/// One record to produce: partition, key and value (`None`: null), headers.
struct Produced {
    partition: i32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
}

fn produce_records(broker: &Broker, records: Vec<Produced>) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &broker.servers).set("acks", "all").create().unwrap();
    for r in records {
        let mut record = BaseRecord::<[u8], [u8]>::to(&broker.topic).partition(r.partition);
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            record = record.payload(v.as_slice());
        }
        if let Some(h) = r.headers {
            record = record.headers(h);
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Runs the mapping on a thread of its own; `None` when it had not returned
/// within `bound` (a mapping that does not stop fails the test, it does not
/// hang it).
fn run_bounded(
    config: EsmConfig,
    handler: Arc<Handler>,
    rt: &tokio::runtime::Runtime,
    bound: Duration,
) -> Option<Result<esm::EsmStats, EsmError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let runtime = rt.handle().clone();
    std::thread::spawn(move || {
        let _ = tx.send(esm::run(&config, handler, runtime, Arc::new(AtomicBool::new(false))));
    });
    rx.recv_timeout(bound).ok()
}

#[test]
fn header_names_that_are_not_utf8_and_null_or_empty_parts_reach_the_handler_without_a_panic() {
    let broker = broker("esm-any");
    let (datums, expected) = clickevents(6, 34);
    let value = |i: usize| Some(confluent(1, &datums[i]));
    let odd = || {
        let h = esm::with_raw_header(OwnedHeaders::new(), &[0xff, b'k', 0xc3], Some(b"binary \xff value")).unwrap();
        let h = esm::with_raw_header(h, b"", Some(b"")).unwrap();
        h.insert(Header { key: "null", value: None::<&[u8]> }).insert(Header { key: "e", value: Some(&b""[..]) })
    };
    let records = vec![
        Produced { partition: 0, key: Some(Vec::new()), value: value(0), headers: Some(odd()) },
        Produced { partition: 0, key: None, value: value(1), headers: Some(odd()) },
        Produced { partition: 1, key: Some(vec![0xff, 0x00]), value: value(2), headers: Some(odd()) },
        Produced { partition: 1, key: None, value: value(3), headers: None },
        Produced { partition: 2, key: Some(b"k".to_vec()), value: value(4), headers: Some(odd()) },
        Produced { partition: 2, key: None, value: value(5), headers: Some(OwnedHeaders::new()) },
        // A tombstone and an empty value: the handler's to reject, the mapping's to hand on.
        Produced { partition: 0, key: Some(b"t".to_vec()), value: None, headers: Some(odd()) },
        Produced { partition: 1, key: None, value: Some(Vec::new()), headers: Some(odd()) },
    ];
    produce_records(&broker, records);

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(firehose(dir.path(), |_| {}));
    let h = handler(&rt, &server.url(), "3");
    // One poller: two would rebalance while they start, and a commit lost
    // to the rebalance redelivers records (at least once), which this test
    // of what records carry does not count.
    let stats = run_bounded(mapping(&broker, "g-any", 1), h, &rt, Duration::from_secs(120))
        .expect("the mapping did not stop")
        .unwrap();
    rt.block_on(server.shutdown()).unwrap();
    assert_eq!(stats.records_in, 8, "{stats:?}");
    assert_eq!((stats.delivered, stats.dropped), (6, 2), "{stats:?}");
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
    assert_eq!(committed(&broker, "g-any"), [3, 3, 2]);
}

#[test]
fn a_record_too_large_for_any_event_is_dead_lettered_and_committed_and_the_mapping_goes_on() {
    let broker = broker("esm-large");
    let (datums, expected) = clickevents(7, 35);
    let value = |i: usize| Some(confluent(1, &datums[i]));
    let huge = vec![0x5au8; 20 * 1024];
    let mut records: Vec<Produced> =
        (0..3).map(|i| Produced { partition: 0, key: None, value: value(i), headers: None }).collect();
    records.push(Produced { partition: 0, key: Some(b"big".to_vec()), value: Some(huge.clone()), headers: None });
    records.extend((3..7).map(|i| Produced { partition: (i % 3) as i32, key: None, value: value(i), headers: None }));
    produce_records(&broker, records);

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let dead = tempfile::tempdir().unwrap();
    let server = rt.block_on(firehose(dir.path(), |_| {}));
    let h = {
        let _entered = rt.enter();
        let h = common::handler(&[
            ("AWS_ENDPOINT_URL_FIREHOSE", &server.url()),
            ("CSR", "true"),
            ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9"),
            ("DEAD_LETTER", dead.path().to_str().unwrap()),
        ]);
        h.insert_schema(SchemaKey::Confluent(1), mskbench_benches::CLICK_SCHEMA).unwrap();
        Arc::new(h)
    };
    // A 16 KiB limit stands in for 6 MB: the 20 KiB value alone exceeds it.
    let mut config = mapping(&broker, "g-large", 1);
    config.max_payload = 16 * 1024;
    let stats = run_bounded(config, h, &rt, Duration::from_secs(120)).expect("the mapping did not stop").unwrap();
    rt.block_on(server.shutdown()).unwrap();

    assert_eq!((stats.records_in, stats.delivered, stats.dead_lettered, stats.too_large), (8, 7, 1, 1), "{stats:?}");
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected), "the records after it went on");
    // Partition 0: three records, the large one at offset 3, two more.
    assert_eq!(committed(&broker, "g-large"), [6, 1, 1]);
    let letters: Vec<serde_json::Value> = common::files(dead.path())
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let l = &letters[0];
    assert_eq!(l["reason"], RECORD_TOO_LARGE);
    assert_eq!(
        (l["topic"].as_str(), l["partition"].as_i64(), l["offset"].as_i64()),
        (Some("esm-large"), Some(0), Some(3))
    );
    let detail = l["detail"].as_str().unwrap();
    assert!(detail.contains("byte event, above the 16384-byte"), "{detail}");
    let mut value = Vec::new();
    mskbench_core::b64::decode_append(l["value"].as_str().unwrap().as_bytes(), &mut value).unwrap();
    assert_eq!(value, huge, "the value is kept for replay");
}

#[test]
fn one_failing_poller_stops_the_mapping_with_its_reason() {
    let broker = broker("esm-one");
    let (datums, _) = clickevents(30, 36);
    // Partition 0 starts with a record whose schema (id 2) only an
    // unreachable registry has: every invocation of its batch fails.
    let mut records = vec![Produced { partition: 0, key: None, value: Some(confluent(2, &datums[0])), headers: None }];
    records.extend((1..30).map(|i| Produced {
        partition: (i % 3) as i32,
        key: None,
        value: Some(confluent(1, &datums[i])),
        headers: None,
    }));
    produce_records(&broker, records);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(firehose(dir.path(), |_| {}));
    let h = handler(&rt, &server.url(), "0");
    let mut config = mapping(&broker, "g-one", 2);
    // No idle exit: the healthy poller stops only because the other failed.
    config.idle_exit = None;
    config.max_attempts = Some(2);
    let err = run_bounded(config, h, &rt, Duration::from_secs(120))
        .expect("the healthy poller was left running")
        .unwrap_err();
    rt.block_on(server.shutdown()).unwrap();
    match &err {
        EsmError::GaveUp { attempts: 2, last, .. } => assert!(last.contains("registry"), "{err}"),
        other => panic!("{other}"),
    }
    assert_eq!(committed(&broker, "g-one")[0], -1, "the failing batch was not committed");
}

/// Every file under `dir`, at any depth.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_reported_item_failure_is_retried_then_sent_to_the_on_failure_destination_and_the_rest_delivered() {
    use mskbench_processor::config::DeadLetterTarget;
    use mskbench_processor::esm::failures::{FailureHandling, records_of_document};

    let broker = broker("esm-partial");
    let (datums, expected) = clickevents(6, 36);
    let value = |i: usize| Some(confluent(1, &datums[i]));
    // Partition 0: a record, then one no decoder reads (magic byte 7), then two more.
    let mut records = vec![
        Produced { partition: 0, key: None, value: value(0), headers: None },
        Produced { partition: 0, key: None, value: Some(b"\x07not avro".to_vec()), headers: None },
    ];
    records.extend((1..6).map(|i| Produced { partition: (i % 2) as i32, key: None, value: value(i), headers: None }));
    produce_records(&broker, records);

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let on_failure = tempfile::tempdir().unwrap();
    let server = rt.block_on(firehose(dir.path(), |_| {}));
    let h = {
        let _entered = rt.enter();
        let h = common::handler(&[
            ("AWS_ENDPOINT_URL_FIREHOSE", &server.url()),
            ("CSR", "true"),
            ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9"),
            ("REPORT_BATCH_ITEM_FAILURES", "true"),
        ]);
        h.insert_schema(SchemaKey::Confluent(1), mskbench_benches::CLICK_SCHEMA).unwrap();
        Arc::new(h)
    };
    let mut config = mapping(&broker, "g-partial", 1);
    config.failure = FailureHandling {
        report_batch_item_failures: true,
        maximum_retry_attempts: Some(1),
        on_failure: Some(DeadLetterTarget::Directory(on_failure.path().to_owned())),
        ..FailureHandling::default()
    };
    let stats = run_bounded(config, h, &rt, Duration::from_secs(120)).expect("the mapping did not stop").unwrap();
    rt.block_on(server.shutdown()).unwrap();

    assert!(stats.partial_failures >= 2, "the first invocation and its one retry: {stats:?}");
    assert_eq!((stats.dead_lettered, stats.dropped, stats.discarded), (0, 0, 0), "{stats:?}");
    let unique: Vec<String> = delivered_raw(dir.path()).into_iter().collect::<HashSet<_>>().into_iter().collect();
    assert_eq!(canonical(&unique), canonical(&expected), "every decodable record was delivered");
    let docs = files_below(on_failure.path());
    assert!(!docs.is_empty());
    let mut named = Vec::new();
    for doc in &docs {
        let key = doc.strip_prefix(on_failure.path()).unwrap().to_string_lossy().into_owned();
        assert!(key.starts_with("aws/lambda/g-partial/esm-partial-0/"), "{key}");
        let text = std::fs::read(doc).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 2);
        named.extend(records_of_document(&text).unwrap());
    }
    assert!(named.contains(&("esm-partial".to_owned(), 0, 1)), "{named:?}");
    assert!(
        named.iter().all(|(t, p, o)| t == "esm-partial" && *p == 0 && *o >= 1),
        "from the failed offset on: {named:?}"
    );
    assert_eq!(stats.on_failure, named.len() as u64);
    assert_eq!(stats.records_in, 7);
    // Partition 0 holds 4 records (offsets 0–3), partition 1 holds 3; all committed.
    assert_eq!(committed(&broker, "g-partial"), [4, 3, -1]);
}

#[test]
fn reserved_concurrency_caps_invocations_in_flight_over_all_pollers() {
    let broker = broker("esm-reserved");
    let (datums, _) = clickevents(300, 37);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    produce(&broker, &values);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // Slow answers keep invocations in flight long enough to overlap.
    let server = rt.block_on(firehose(dir.path(), |c| {
        c.faults.latency = mskbench_sim::firehose::Latency::Fixed(Duration::from_millis(30))
    }));
    let h = handler(&rt, &server.url(), "3");
    let mut config = mapping(&broker, "g-reserved", 3);
    config.batch_size = 20;
    config.reserved_concurrency = Some(1);
    let invoking = config.invoking.clone();
    let watching = Arc::new(AtomicBool::new(true));
    let most = {
        let (invoking, watching) = (invoking.clone(), watching.clone());
        std::thread::spawn(move || {
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(invoking.load(std::sync::atomic::Ordering::SeqCst));
                std::thread::sleep(Duration::from_micros(200));
            }
            most
        })
    };
    let stats = run_bounded(config, h, &rt, Duration::from_secs(120)).expect("the mapping did not stop").unwrap();
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let most = most.join().unwrap();
    rt.block_on(server.shutdown()).unwrap();
    assert!(stats.records_in >= 300, "{stats:?}");
    assert_eq!(most, 1, "never more than the reserved concurrency in flight");
}
