//! Producer fault tests on librdkafka's mock cluster: brokers go down,
//! requests fail, latency grows — and no record is ever unaccounted for.
//! (The mock cluster deletes data past 5 MiB per partition, so these tests
//! count delivery reports; they never read records back.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use mskbench_producer::schedule::Profile;
use mskbench_producer::send::Unobserved;
use mskbench_producer::{Control, Report};
use mskbench_sim::{MockBroker, RegistryServer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// Runs `config` on another thread while `faults` plays on this one (the
/// mock cluster is not `Send`).
fn run_with_faults(
    config: mskbench_producer::ProduceConfig,
    control: Control,
    faults: impl FnOnce(&MockBroker, &Control),
    mock: &MockBroker,
) -> Report {
    let worker = std::thread::spawn(move || {
        let rt = common::runtime();
        rt.block_on(mskbench_producer::produce(&config, control, Arc::new(Unobserved))).unwrap()
    });
    faults(mock, &Control::new());
    worker.join().unwrap()
}

/// The built-in registry on a runtime of its own, for one test.
fn registry() -> (tokio::runtime::Runtime, RegistryServer) {
    let rt = common::runtime();
    let server = common::registry(&rt);
    (rt, server)
}

fn accounted(report: &Report) {
    assert_eq!(report.unaccounted, 0, "{report:?}");
    assert_eq!(report.acked + report.failed, report.sent, "{report:?}");
    assert_eq!(report.failed, report.failed_by_reason.values().sum::<u64>(), "{report:?}");
}

#[test]
fn a_broker_down_for_a_while_loses_nothing() {
    let mock = MockBroker::start(3, "ExampleTopic", 3).unwrap();
    let (_rt, registry) = registry();
    let mut config = common::quiet(&mock.bootstrap_servers(), &registry, "ExampleTopic");
    config.until.count = Some(12_000);
    config.profile = Profile::constant(3000.0);
    let report = run_with_faults(
        config,
        Control::new(),
        |mock, _| {
            std::thread::sleep(Duration::from_millis(1000));
            for b in 1..=3 {
                mock.cluster().broker_down(b).unwrap();
            }
            std::thread::sleep(Duration::from_millis(800));
            for b in 1..=3 {
                mock.cluster().broker_up(b).unwrap();
            }
        },
        &mock,
    );
    accounted(&report);
    assert_eq!(report.acked, 12_000, "idempotent retries deliver everything: {report:?}");
}

#[test]
fn request_errors_and_latency_are_retried() {
    let mock = MockBroker::start(1, "ExampleTopic", 2).unwrap();
    mock.cluster().broker_round_trip_time(1, Duration::from_millis(30)).unwrap();
    mock.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let (rt, registry) = registry();
    let mut config = common::quiet(&mock.bootstrap_servers(), &registry, "ExampleTopic");
    config.until.count = Some(2000);
    config.profile = Profile::constant(5000.0);
    let report = common::produce(&rt, &config);
    accounted(&report);
    assert_eq!(report.acked, 2000, "{report:?}");
    // The latency shows: every ack waited at least one 30 ms round trip.
    assert!(report.ack_latency_from_send_ms.p50 >= 30.0, "{report:?}");
}

#[test]
fn timeouts_fail_with_a_reason_and_still_add_up() {
    let mock = MockBroker::start(1, "ExampleTopic", 1).unwrap();
    let (_rt, registry) = registry();
    let mut config = common::quiet(&mock.bootstrap_servers(), &registry, "ExampleTopic");
    config.until.count = Some(10_000);
    config.profile = Profile::constant(2000.0);
    config.rdkafka.insert("message.timeout.ms".into(), "300".into());
    let report = run_with_faults(
        config,
        Control::new(),
        |mock, _| {
            std::thread::sleep(Duration::from_millis(1500));
            mock.cluster().broker_down(1).unwrap();
            std::thread::sleep(Duration::from_millis(1000));
            mock.cluster().broker_up(1).unwrap();
        },
        &mock,
    );
    accounted(&report);
    assert!(report.failed > 0, "a 1 s outage with a 300 ms timeout fails records: {report:?}");
    assert!(report.acked > 0, "{report:?}");
    assert!(report.failed_by_reason.contains_key("MessageTimedOut"), "{:?}", report.failed_by_reason);
}

#[test]
fn an_abort_purges_and_accounts_for_everything() {
    let mock = MockBroker::start(1, "ExampleTopic", 1).unwrap();
    let (_rt, registry) = registry();
    let mut config = common::quiet(&mock.bootstrap_servers(), &registry, "ExampleTopic");
    config.until.duration = Some(Duration::from_secs(30));
    config.profile = Profile::constant(2000.0);
    let control = Control::new();
    let stopper = control.clone();
    let report = run_with_faults(
        config,
        control,
        move |mock, _| {
            std::thread::sleep(Duration::from_millis(1500));
            mock.cluster().broker_down(1).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            // First Ctrl-C: stop and flush (cannot finish: the broker is down);
            // second: purge.
            stopper.escalate();
            std::thread::sleep(Duration::from_millis(200));
            stopper.escalate();
        },
        &mock,
    );
    accounted(&report);
    assert!(report.interrupted, "{report:?}");
    assert!(report.sent < 60_000, "{report:?}");
    assert!(
        report.failed_by_reason.keys().any(|k| k.starts_with("Purge")),
        "records in flight were purged: {:?}",
        report.failed_by_reason
    );
}
