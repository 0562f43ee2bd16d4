//! The handler against the Firehose stand-in: throttling, faults, poisoned
//! records, dead letters, both registries, and the lab's sample event.
//! Every test checks that each input record has exactly one outcome and
//! that what reached the stand-in's S3 directory is each delivered line once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{STREAM, canonical, clickevents, confluent, delivered_raw, event, firehose, glue, handler};
use mskbench_core::Quota;
use mskbench_core::wire::{Compression, SchemaKey};
use mskbench_processor::InvocationError;
use mskbench_sim::registry::RegistryConfig;
use mskbench_sim::{FirehoseServer, RegistryServer};

const FAST_RETRIES: [(&str, &str); 5] =
    [("RETRIES", "50"), ("RETRY_BASE_MS", "20"), ("RETRY_MAX_DELAY_MS", "300"), CONFLUENT[0], CONFLUENT[1]];
/// Confluent framing; the schema is preloaded, so the registry is never asked
/// (port 9, discard, is closed on loopback).
const CONFLUENT: [(&str, &str); 2] = [("CSR", "true"), ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9")];

/// `vars` plus many quick retries, so tests end soon and everything gets through.
fn with_fast_retries<'a>(vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    [vars, &FAST_RETRIES].concat()
}

fn preload(h: &mskbench_processor::Handler, key: SchemaKey) {
    h.insert_schema(key, mskbench_benches::CLICK_SCHEMA).unwrap();
}

/// Stops the stand-in (flushing every buffer) and returns its totals.
async fn stop(server: FirehoseServer) -> mskbench_sim::firehose::Sample {
    let totals = server.metrics().streams[STREAM].totals;
    server.shutdown().await.unwrap();
    totals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_records_are_resent_alone_until_all_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    // 400 records/s with one second of burst: a 1,000-record event is
    // throttled for about 1.5 s, inside HTTP 200 answers.
    let quota = Quota { records_per_sec: 400, requests_per_sec: 1_000, bytes_per_sec: 10 << 20 };
    let server = firehose(dir.path(), |c| c.quota = quota).await;
    let url = server.url();
    let h = handler(&with_fast_retries(&[("AWS_ENDPOINT_URL_FIREHOSE", &url)]));
    preload(&h, SchemaKey::Confluent(1));
    let (datums, expected) = clickevents(1_000, 1);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();

    let summary = h.handle(event(&values, 3), "req-throttle").await.unwrap();
    let totals = stop(server).await;

    assert!(summary.adds_up(), "{summary:?}");
    assert_eq!(summary.delivered, 1_000);
    assert!(totals.throttled_records > 0, "the quota must have throttled: {totals:?}");
    assert_eq!(summary.send.throttled_records, totals.throttled_records);
    assert_eq!(summary.send.throttled_calls, 0);
    // Only the throttled records were resent: every resend answers one throttle.
    assert_eq!(summary.send.resent_records, totals.throttled_records);
    assert_eq!(totals.incoming_records, 1_000 + totals.throttled_records);
    assert_eq!(totals.accepted_records, 1_000, "no record was accepted twice");
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bucket_under_the_quota_is_never_throttled_and_delays_instead() {
    let dir = tempfile::tempdir().unwrap();
    // The quota of the test above; paced at 0.8 of it, the 1,000 records
    // wait for the quota instead of being throttled and resent.
    let quota = Quota { records_per_sec: 400, requests_per_sec: 1_000, bytes_per_sec: 10 << 20 };
    let server = firehose(dir.path(), |c| c.quota = quota).await;
    let url = server.url();
    let pacing = [
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("BATCH_RECORDS", "100"),
        ("PACING", "token-bucket"),
        ("PACING_SHARE", "0.8"),
        ("PACING_QUOTA", "records=400,requests=1000,bytes=10MiB"),
    ];
    let h = handler(&with_fast_retries(&pacing));
    preload(&h, SchemaKey::Confluent(1));
    let (datums, expected) = clickevents(1_000, 1);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();

    let started = std::time::Instant::now();
    let summary = h.handle(event(&values, 3), "req-paced").await.unwrap();
    let took = started.elapsed();
    let totals = stop(server).await;

    assert!(summary.adds_up(), "{summary:?}");
    assert_eq!(summary.delivered, 1_000);
    assert_eq!((totals.throttled_records, totals.throttled_calls), (0, 0), "{totals:?}");
    assert_eq!((summary.send.resent_records, summary.send.calls), (0, 10));
    // 320 records of burst, the other 680 at 320/s: about 2.1 s of waits.
    assert!(summary.send.paced_calls > 0 && summary.send.pace_wait_ms > 1_000, "{:?}", summary.send);
    assert!(took >= std::time::Duration::from_millis(1_900), "{took:?}");
    assert_eq!(summary.send.pace_cut_short, 0);
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aimd_told_a_larger_quota_slows_down_on_throttles_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota { records_per_sec: 400, requests_per_sec: 1_000, bytes_per_sec: 10 << 20 };
    let server = firehose(dir.path(), |c| c.quota = quota).await;
    let url = server.url();
    // The pacer believes the stream takes 4,000 records/s: only throttles tell it otherwise.
    let pacing = [
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("BATCH_RECORDS", "100"),
        ("FIREHOSE_CONCURRENCY", "1"),
        ("PACING", "aimd"),
        ("PACING_SHARE", "1"),
        ("PACING_QUOTA", "records=4000,requests=1000,bytes=10MiB"),
    ];
    let h = handler(&with_fast_retries(&pacing));
    preload(&h, SchemaKey::Confluent(1));
    let (datums, expected) = clickevents(2_000, 3);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();

    let summary = h.handle(event(&values, 3), "req-aimd").await.unwrap();
    let totals = stop(server).await;

    assert!(summary.adds_up(), "{summary:?}");
    assert_eq!(summary.delivered, 2_000);
    assert!(totals.throttled_records > 0, "the quota must have throttled: {totals:?}");
    assert!(summary.send.paced_calls > 0, "after the throttles the pacer held calls back: {:?}", summary.send);
    assert_eq!(totals.accepted_records, 2_000, "no record was accepted twice");
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_calls_are_retried_whole() {
    let dir = tempfile::tempdir().unwrap();
    // 3 requests/s for 10 batches sent 4 at a time: calls are refused (503).
    let quota = Quota { records_per_sec: 100_000, requests_per_sec: 3, bytes_per_sec: 10 << 20 };
    let server = firehose(dir.path(), |c| c.quota = quota).await;
    let url = server.url();
    let h = handler(&with_fast_retries(&[("AWS_ENDPOINT_URL_FIREHOSE", &url), ("BATCH_RECORDS", "50")]));
    preload(&h, SchemaKey::Confluent(1));
    let (datums, expected) = clickevents(500, 2);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();

    let summary = h.handle(event(&values, 1), "req-calls").await.unwrap();
    let totals = stop(server).await;

    assert!(summary.adds_up());
    assert_eq!(summary.delivered, 500);
    assert!(totals.throttled_calls > 0, "{totals:?}");
    assert_eq!(summary.send.throttled_calls, totals.throttled_calls);
    assert_eq!(summary.send.failed_calls, totals.throttled_calls);
    assert_eq!(summary.send.calls, 10 + totals.throttled_calls);
    assert_eq!(summary.send.resent_records, 50 * totals.throttled_calls);
    assert_eq!(totals.accepted_records, 500);
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_call_500s_and_internal_failures_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |c| {
        c.faults.http_500_rate = 0.3;
        c.faults.internal_failure_rate = 0.1;
    })
    .await;
    let url = server.url();
    // 32 calls: at a 30% rate, a run without any injected 500 has odds of about 1e-5.
    let h = handler(&with_fast_retries(&[("AWS_ENDPOINT_URL_FIREHOSE", &url), ("BATCH_RECORDS", "25")]));
    preload(&h, SchemaKey::Confluent(1));
    let (datums, expected) = clickevents(800, 3);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();

    let summary = h.handle(event(&values, 2), "req-faults").await.unwrap();
    let totals = stop(server).await;

    assert!(summary.adds_up());
    assert_eq!(summary.delivered, 800);
    assert!(totals.injected_call_failures > 0 && totals.injected_record_failures > 0, "{totals:?}");
    assert_eq!(summary.send.failed_calls, totals.injected_call_failures);
    assert_eq!(summary.send.internal_failures, totals.injected_record_failures);
    assert_eq!(totals.accepted_records, 800);
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_still_failing_fail_the_invocation_or_go_to_the_dead_letter_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |c| c.faults.http_500_rate = 1.0).await;
    let url = server.url();
    let (datums, expected) = clickevents(120, 4);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    let base = [
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("BATCH_RECORDS", "50"),
        ("RETRIES", "2"),
        ("RETRY_BASE_MS", "1"),
        ("RETRY_MAX_DELAY_MS", "5"),
        CONFLUENT[0],
        CONFLUENT[1],
    ];

    // No destination: the invocation fails, so the mapping redelivers.
    let h = handler(&base);
    preload(&h, SchemaKey::Confluent(1));
    let err = h.handle(event(&values, 1), "req-fail").await.unwrap_err();
    let InvocationError::Undelivered { summary } = &err else { panic!("{err}") };
    assert!(summary.adds_up());
    assert_eq!((summary.delivered, summary.undelivered), (0, 120));
    assert_eq!(summary.send.calls, 3 * 3, "3 batches, each tried 1 + RETRIES times");
    assert_eq!(summary.firehose_failures.values().sum::<u64>(), 120);

    // With a dead-letter directory the records are kept there instead.
    let dlq = tempfile::tempdir().unwrap();
    let dlq_path = dlq.path().to_str().unwrap();
    let h = handler(&[base.as_slice(), &[("DEAD_LETTER", dlq_path)]].concat());
    preload(&h, SchemaKey::Confluent(1));
    let summary = h.handle(event(&values, 1), "req-dlq").await.unwrap();
    assert!(summary.adds_up());
    assert_eq!((summary.delivered, summary.dead_lettered, summary.undelivered), (0, 120, 0));
    let files = common::files(dlq.path());
    assert_eq!(files.len(), 1);
    assert!(files[0].file_name().unwrap().to_str().unwrap().ends_with("-req-dlq.ndjson"));
    let letters: Vec<serde_json::Value> =
        std::fs::read_to_string(&files[0]).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 120);
    assert!(letters.iter().all(|l| l["reason"] == "firehose:InternalFailure" && l["topic"] == "ExampleTopic"));
    let mut offsets: Vec<i64> = letters.iter().map(|l| l["offset"].as_i64().unwrap()).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..120).collect::<Vec<_>>());
    let lines: Vec<&str> = letters.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(canonical(&lines), canonical(&expected), "the dead letters hold the lines to replay");
    let totals = stop(server).await;
    assert_eq!(totals.accepted_records, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_record_is_dead_lettered_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let url = server.url();
    let dlq_path = dlq.path().to_str().unwrap();
    let h = handler(
        &[[("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()), ("DEAD_LETTER", dlq_path)].as_slice(), &CONFLUENT].concat(),
    );
    preload(&h, SchemaKey::Confluent(1));
    let (datums, expected) = clickevents(50, 5);
    let mut values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    // Record 20 (partition 0, offset 10): a truncated datum, as a broken producer sends.
    values[20] = confluent(1, &datums[20][..3]);
    let mut kept = expected.clone();
    kept.remove(20);

    let summary = h.handle(event(&values, 2), "req-poison").await.unwrap();
    assert!(summary.adds_up());
    assert_eq!((summary.delivered, summary.dead_lettered), (49, 1));
    assert_eq!(summary.decode.rejected.total(), 1);
    let text = std::fs::read_to_string(&common::files(dlq.path())[0]).unwrap();
    let letter: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(letter["reason"], "truncated_datum");
    assert_eq!((letter["partition"].as_i64(), letter["offset"].as_i64()), (Some(0), Some(10)));
    let mut original = String::new();
    mskbench_core::b64::encode_append(&values[20], &mut original);
    assert_eq!(letter["value"], original.as_str(), "the original value is kept for replay");

    // Without a destination the record is logged and counted, and the batch still goes through.
    let h = handler(&[[("AWS_ENDPOINT_URL_FIREHOSE", url.as_str())].as_slice(), &CONFLUENT].concat());
    preload(&h, SchemaKey::Confluent(1));
    let summary = h.handle(event(&values, 2), "req-poison-2").await.unwrap();
    assert!(summary.adds_up());
    assert_eq!((summary.delivered, summary.dropped, summary.dead_lettered), (49, 1, 0));

    stop(server).await;
    let mut twice = kept.clone();
    twice.extend(kept);
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&twice));
}

/// A registry with the ClickEvent schema as `ExampleTopic-value`; returns it and the id.
async fn registry() -> (RegistryServer, u32) {
    let server = RegistryServer::start(RegistryConfig::default()).await.unwrap();
    let url = format!("{}/subjects/ExampleTopic-value/versions", server.url());
    let body = serde_json::json!({ "schema": mskbench_benches::CLICK_SCHEMA }).to_string();
    let answer = tokio::task::spawn_blocking(move || {
        ureq::post(&url)
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .send(body.as_bytes())
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    })
    .await
    .unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"].as_u64().unwrap();
    (server, id as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secondary_deserializer_reads_glue_and_confluent_values_on_one_topic() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let (registry, id) = registry().await;
    let (url, registry_url) = (server.url(), registry.url());
    let h = handler(&[
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("CSR", "false"),
        ("SECONDARY_DESERIALIZER", "true"),
        ("SCHEMA_REGISTRY_URL", registry_url.as_str()),
    ]);
    // The Glue version is preloaded here; the Glue client is tested against moto.
    let version = uuid::Uuid::from_u128(0x5f1c_2a3b_4c5d_4e6f_8a9b_0c1d_2e3f_4a5b);
    preload(&h, SchemaKey::Glue(version));
    let (datums, expected) = clickevents(90, 6);
    let values: Vec<_> = datums
        .iter()
        .enumerate()
        .map(|(i, d)| match i % 3 {
            0 => confluent(id, d),
            1 => glue(version, Compression::None, d),
            _ => glue(version, Compression::Zlib, d),
        })
        .collect();

    let summary = h.handle(event(&values, 3), "req-mixed").await.unwrap();
    assert!(summary.adds_up());
    assert_eq!(summary.delivered, 90, "{summary:?}");

    // Glue only (no secondary): the Confluent third is refused, not guessed.
    let h = handler(&[("AWS_ENDPOINT_URL_FIREHOSE", url.as_str())]);
    preload(&h, SchemaKey::Glue(version));
    let summary = h.handle(event(&values, 3), "req-glue-only").await.unwrap();
    assert_eq!((summary.delivered, summary.dropped), (60, 30));
    assert_eq!(summary.decode.rejected.get(mskbench_core::Reason::UnknownMagicByte), 30);

    stop(server).await;
    registry.shutdown().await.unwrap();
    let mut all = expected.clone();
    all.extend(expected.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, l)| l.clone()));
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_sample_event_is_delivered_as_the_lab_expects() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let (registry, id) = registry().await;
    assert_eq!(id, 1, "the sample's values name schema id 1");
    let (url, registry_url) = (server.url(), registry.url());
    // The sample holds Confluent values (schema id 1) and Glue values, plain
    // and zlib, of one Glue schema version: the migration setting reads both.
    let h = handler(&[
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("SECONDARY_DESERIALIZER", "true"),
        ("SCHEMA_REGISTRY_URL", registry_url.as_str()),
    ]);
    preload(&h, SchemaKey::Glue(uuid::Uuid::from_u128(0xb7b4_a7f0_0c5e_4a5b_9a0e_3f2c_7d9e_1a42)));
    let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/lab-event.json")).unwrap();
    let expected =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/lab-event.expected.ndjson"))
            .unwrap();

    let summary = h.handle(sample, "req-sample").await.unwrap();
    stop(server).await;
    registry.shutdown().await.unwrap();
    assert!(summary.adds_up());
    let mut expected: Vec<String> = expected.lines().map(str::to_owned).collect();
    expected.sort();
    assert_eq!(summary.delivered, expected.len() as u64);
    assert_eq!(delivered_raw(dir.path()), expected, "byte for byte what the lab's function writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_fails_the_invocation_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let url = server.url();
    // Port 9 (discard) on loopback is closed on the test machines.
    let h = handler(&[
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("CSR", "true"),
        ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9"),
    ]);
    let (datums, _) = clickevents(10, 7);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    let err = h.handle(event(&values, 1), "req-outage").await.unwrap_err();
    let InvocationError::RegistryUnavailable { count, summary, .. } = &err else { panic!("{err}") };
    assert_eq!(*count, 10);
    assert!(summary.adds_up());
    assert_eq!(summary.unsent, 10);
    let totals = stop(server).await;
    assert_eq!(totals.incoming_requests, 0, "nothing reached Firehose");
}

/// A registry on 127.0.0.1 answering every request with HTTP 200 and
/// `body`; returns its URL. Its task ends with the test's runtime.
async fn registry_answering(body: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_avro_schema_is_dead_lettered_and_the_batch_committed() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let url = server.url();
    let body = serde_json::json!({ "schemaType": "JSON", "schema": r#"{"type":"object"}"# }).to_string();
    let registry_url = registry_answering(body).await;
    let h = handler(&[
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("CSR", "true"),
        ("SCHEMA_REGISTRY_URL", registry_url.as_str()),
        ("DEAD_LETTER", dlq.path().to_str().unwrap()),
    ]);
    let (datums, _) = clickevents(10, 9);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();

    // Before: RegistryUnavailable, every redelivery again, the partition stuck.
    let summary = h.handle(event(&values, 1), "req-json-schema").await.unwrap();
    assert!(summary.adds_up(), "{summary:?}");
    assert_eq!((summary.delivered, summary.dead_lettered, summary.unsent), (0, 10, 0));
    assert_eq!(summary.decode.rejected.get(mskbench_core::Reason::InvalidSchema), 10);
    let text = std::fs::read_to_string(&common::files(dlq.path())[0]).unwrap();
    let letters: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 10);
    assert!(letters.iter().all(|l| l["reason"] == "invalid_schema"), "{}", letters[0]);
    let detail = letters[0]["detail"].as_str().unwrap();
    assert!(detail.contains("schema 1 is JSON, not AVRO"), "{detail}");
    let totals = stop(server).await;
    assert_eq!(totals.incoming_requests, 0, "nothing to send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_stop_before_the_deadline_and_the_records_are_dead_lettered_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |c| c.faults.http_500_rate = 1.0).await;
    let url = server.url();
    let vars = [
        ("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()),
        ("DEAD_LETTER", dlq.path().to_str().unwrap()),
        ("FIREHOSE_TIMEOUT_MS", "500"),
    ];
    let h = handler(&with_fast_retries(&vars));
    preload(&h, SchemaKey::Confluent(1));
    let (datums, _) = clickevents(10, 10);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    // 50 resends would take seconds; the deadline leaves about one for them
    // (the dead letters keep 4 call timeouts, 2 s, for themselves).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let summary = h.handle_by(event(&values, 1), "req-deadline", deadline).await.unwrap();
    assert!(summary.adds_up(), "{summary:?}");
    assert_eq!((summary.delivered, summary.dead_lettered), (0, 10));
    assert_eq!(summary.send.deadline_stops, 1, "{:?}", summary.send);
    assert!(summary.send.calls < 51, "stopped early: {:?}", summary.send);
    let letters = std::fs::read_to_string(&common::files(dlq.path())[0]).unwrap();
    assert_eq!(letters.lines().count(), 10);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_policy_waits_the_labs_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |c| c.faults.http_500_rate = 1.0).await;
    let url = server.url();
    let vars = [("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()), ("RETRY_POLICY", "lab"), ("RETRIES", "2")];
    let h = handler(&[vars.as_slice(), &CONFLUENT].concat());
    preload(&h, SchemaKey::Confluent(1));
    let (datums, _) = clickevents(10, 8);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    let err = h.handle(event(&values, 1), "req-lab").await.unwrap_err();
    let summary = err.summary().unwrap();
    // Retry 1 waits (2·23)/1000 = 0 s, retry 2 waits (2·23²)/1000 = 1 s.
    assert_eq!((summary.send.calls, summary.send.backoff_ms), (3, 1_000));
    assert_eq!(summary.undelivered, 10);
    stop(server).await;
}

/// A watcher that counts each record once (the run's drain) learns which
/// records a succeeded invocation settled, its dead letter included; a
/// failed invocation settles none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succeeded_invocation_names_the_records_it_settled() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let url = server.url();
    let dlq_path = dlq.path().to_str().unwrap();
    let mut h = handler(
        &[[("AWS_ENDPOINT_URL_FIREHOSE", url.as_str()), ("DEAD_LETTER", dlq_path)].as_slice(), &CONFLUENT].concat(),
    );
    let live = std::sync::Arc::new(mskbench_processor::Live::tracking_records());
    h.set_live(live.clone());
    preload(&h, SchemaKey::Confluent(1));
    let (datums, _) = clickevents(10, 5);
    let mut values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    values[3] = confluent(1, &datums[3][..3]);

    h.handle(event(&values, 2), "req-settled").await.unwrap();
    let mut settled = Vec::new();
    live.take_completed(&mut settled);
    settled.sort_unstable();
    let mut expected: Vec<(i32, i64)> = (0..10).map(|i| (i % 2, i64::from(i / 2))).collect();
    expected.sort_unstable();
    assert_eq!(settled, expected);
    live.take_completed(&mut settled);
    assert_eq!(settled.len(), 10, "taken once");

    // A schema nobody can fetch (port 9 is closed): the invocation fails and settles nothing.
    let values: Vec<_> = datums.iter().map(|d| confluent(2, d)).collect();
    h.handle(event(&values, 2), "req-unsettled").await.unwrap_err();
    let mut none = Vec::new();
    live.take_completed(&mut none);
    assert!(none.is_empty(), "{none:?}");
    stop(server).await;
}
