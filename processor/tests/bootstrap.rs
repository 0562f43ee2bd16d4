//! The `bootstrap` binary as Lambda runs it: against a Runtime API
//! stand-in, with the lab's environment, sending to the Firehose stand-in;
//! and the event shapes it reads, held to `aws_lambda_events`' Kafka type.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/runtime_api.rs"]
mod runtime_api;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_lambda_events::event::kafka::KafkaEvent as AwsKafkaEvent;
use common::{STREAM, canonical, clickevents, confluent, delivered_raw, event, firehose};
use mskbench_sim::RegistryServer;
use mskbench_sim::registry::RegistryConfig;
use runtime_api::{Outcome, RuntimeApi};

/// The binary with a Lambda environment; killed on drop.
struct Bootstrap(Option<Child>);

impl Bootstrap {
    fn start(api: &RuntimeApi, vars: &[(&str, &str)]) -> Bootstrap {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", "msk-to-firehose")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test-secret-value")
            .env("DELIVERY_STREAM_NAME", STREAM)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        Bootstrap(Some(cmd.spawn().unwrap()))
    }

    /// Waits for the process to exit (killing it first when `kill`); returns
    /// whether it succeeded and everything it logged.
    fn finish(mut self, kill: bool) -> (bool, String) {
        let mut child = self.0.take().unwrap();
        if kill {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_serves_invocations_and_reports_failures_to_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let registry = RegistryServer::start(RegistryConfig::default()).await.unwrap();
    let (registry_url, firehose_url) = (registry.url(), server.url());
    let subject = format!("{registry_url}/subjects/ExampleTopic-value/versions");
    let body = serde_json::json!({ "schema": mskbench_benches::CLICK_SCHEMA }).to_string();
    tokio::task::spawn_blocking(move || ureq::post(&subject).send(body.as_bytes()).unwrap()).await.unwrap();

    let api = RuntimeApi::start();
    let process = Bootstrap::start(
        &api,
        &[("CSR", "true"), ("SCHEMA_REGISTRY_URL", &registry_url), ("AWS_ENDPOINT_URL_FIREHOSE", &firehose_url)],
    );
    let (datums, expected) = clickevents(700, 41);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    api.invoke("req-1", event(&values, 2));
    api.invoke("req-2", b"{\"records\": 42}".to_vec());

    let wait = Duration::from_secs(60);
    let first = tokio::task::block_in_place(|| api.outcome("req-1", wait)).unwrap();
    let Outcome::Response(text) = first else { panic!("{first:?}") };
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((summary["records_in"].as_u64(), summary["delivered"].as_u64()), (Some(700), Some(700)));
    assert_eq!(summary["send"]["calls"], 2);

    // Not a Kafka event: an error the event source mapping sees, and the function keeps serving.
    let second = tokio::task::block_in_place(|| api.outcome("req-2", wait)).unwrap();
    let Outcome::Error(text) = second else { panic!("{second:?}") };
    assert!(text.contains("NotAnEvent"), "{text}");

    let (_, logs) = process.finish(true);
    assert!(logs.contains("Successfully sent 500 records for Request ID req-1 with batch number 1"), "{logs}");
    assert!(logs.contains("Successfully sent 200 records for Request ID req-1 with batch number 2"), "{logs}");
    assert!(!logs.contains("test-secret-value"), "secrets stay out of the logs");
    let mut one_value = String::new();
    mskbench_core::b64::encode_append(&values[0], &mut one_value);
    assert!(!logs.contains(&one_value), "payloads stay out of the logs");

    server.shutdown().await.unwrap();
    registry.shutdown().await.unwrap();
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
}

#[test]
fn bootstrap_refuses_a_bad_variable_at_start_naming_it() {
    let api = RuntimeApi::start();
    let process = Bootstrap::start(&api, &[("RETRIES", "lots")]);
    let (ok, text) = process.finish(false);
    assert!(!ok);
    assert!(text.contains("RETRIES=\"lots\" is invalid"), "{text}");
    assert!(api.first_next(Duration::ZERO).is_none(), "no invocation was asked for");
}

#[test]
fn events_have_the_shape_of_aws_lambda_events_kafka_type() {
    let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/lab-event.json")).unwrap();
    let (datums, _) = clickevents(10, 42);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    for text in [sample, event(&values, 3)] {
        let theirs: AwsKafkaEvent = serde_json::from_slice(&text).unwrap();
        let ours = mskbench_core::KafkaEvent::parse(&text).unwrap();
        assert_eq!(theirs.records.values().map(Vec::len).sum::<usize>(), ours.record_count());
        for group in &ours.records {
            let records = &theirs.records[group.key.as_ref()];
            for (a, b) in records.iter().zip(&group.records) {
                assert_eq!(
                    (a.topic.as_deref(), a.partition, a.offset),
                    (Some(b.topic.as_ref()), b.partition.into(), b.offset)
                );
                assert_eq!((a.key.as_deref(), a.value.as_deref()), (b.key.as_deref(), b.value.as_deref()));
            }
        }
    }
}
