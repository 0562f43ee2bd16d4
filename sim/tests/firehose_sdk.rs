//! The Firehose stand-in as `aws-sdk-firehose` sees it, and side by side
//! with moto's reading of the same API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_firehose::Client;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{BufferingHints, ExtendedS3DestinationConfiguration, Record};
use mskbench_core::Quota;
use mskbench_sim::firehose::Buffering;
use mskbench_sim::{FirehoseConfig, FirehoseServer, HttpOutage};

fn config(dir: &std::path::Path) -> FirehoseConfig {
    FirehoseConfig {
        s3_dir: dir.to_owned(),
        buffering: Buffering { size_bytes: 1 << 20, interval: Duration::from_millis(200) },
        allow_small_buffers: true,
        ..FirehoseConfig::default()
    }
}

fn records(n: usize, tag: &str) -> Vec<Record> {
    (0..n).map(|i| Record::builder().data(Blob::new(format!("{{\"{tag}\":{i}}}\n"))).build().unwrap()).collect()
}

async fn create(client: &Client, name: &str) {
    create_under(client, name, "MSKToS3/", 60).await;
}

/// CreateDeliveryStream for `name` writing under `prefix`, buffering 1 MB
/// or `interval_secs`.
async fn create_under(client: &Client, name: &str, prefix: &str, interval_secs: i32) {
    let dest = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn("arn:aws:s3:::lab-bucket")
        .role_arn("arn:aws:iam::123456789012:role/firehose")
        .prefix(prefix)
        .buffering_hints(BufferingHints::builder().size_in_mbs(1).interval_in_seconds(interval_secs).build())
        .build()
        .unwrap();
    client
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .unwrap();
}

/// The error code a failed call carries.
fn code<E, R>(result: Result<R, aws_sdk_firehose::error::SdkError<E>>) -> String
where
    E: aws_sdk_firehose::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let err = result.unwrap_err();
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("not a service error: {err:?}"))
}

/// The calls a client makes, and what it can observe of the answers.
async fn observe(client: &Client) -> Vec<String> {
    let mut seen = Vec::new();
    create(client, "lab").await;
    seen.push(format!(
        "create again: {}",
        code(
            client
                .create_delivery_stream()
                .delivery_stream_name("lab")
                .extended_s3_destination_configuration(
                    ExtendedS3DestinationConfiguration::builder()
                        .bucket_arn("arn:aws:s3:::lab-bucket")
                        .role_arn("arn:aws:iam::123456789012:role/firehose")
                        .build()
                        .unwrap()
                )
                .send()
                .await
        )
    ));
    let d = client.describe_delivery_stream().delivery_stream_name("lab").send().await.unwrap();
    let d = d.delivery_stream_description().unwrap();
    seen.push(format!(
        "describe: {} {} {:?} {:?} version {} destinations {} more {}",
        d.delivery_stream_name(),
        d.delivery_stream_arn(),
        d.delivery_stream_status(),
        d.delivery_stream_type(),
        d.version_id(),
        d.destinations().len(),
        d.has_more_destinations()
    ));
    let l = client.list_delivery_streams().send().await.unwrap();
    seen.push(format!("list: {:?} more {}", l.delivery_stream_names(), l.has_more_delivery_streams()));
    let p =
        client.put_record_batch().delivery_stream_name("lab").set_records(Some(records(3, "a"))).send().await.unwrap();
    seen.push(format!(
        "batch: failed {} responses {} ids {}",
        p.failed_put_count(),
        p.request_responses().len(),
        p.request_responses().iter().all(|r| r.record_id().is_some() && r.error_code().is_none())
    ));
    let one = client.put_record().delivery_stream_name("lab").record(records(1, "b").remove(0)).send().await.unwrap();
    seen.push(format!("put: id present {}", !one.record_id().is_empty()));
    seen.push(format!(
        "batch to missing stream: {}",
        code(client.put_record_batch().delivery_stream_name("nope").set_records(Some(records(1, "c"))).send().await)
    ));
    seen.push(format!(
        "describe missing: {}",
        code(client.describe_delivery_stream().delivery_stream_name("nope").send().await)
    ));
    client.delete_delivery_stream().delivery_stream_name("lab").send().await.unwrap();
    let l = client.list_delivery_streams().send().await.unwrap();
    seen.push(format!("list after delete: {:?}", l.delivery_stream_names()));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_sees_the_same_shapes_and_codes_as_against_moto() {
    // moto's Firehose delivers into its own S3, so the bucket must exist there.
    let moto = tokio::task::spawn_blocking(|| {
        let moto = mskbench_testkit::Moto::start();
        common::create_bucket(&moto, "lab-bucket");
        moto
    })
    .await
    .unwrap();
    let moto_url = moto.url.clone();
    let from_moto = observe(&common::firehose_client(&moto_url)).await;
    drop(moto);

    let dir = tempfile::tempdir().unwrap();
    let server = FirehoseServer::start(config(dir.path())).await.unwrap();
    let from_us = observe(&common::firehose_client(&server.url())).await;
    server.shutdown().await.unwrap();
    assert_eq!(from_us, from_moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_enforced_with_aws_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = FirehoseServer::start(config(dir.path())).await.unwrap();
    let client = common::firehose_client(&server.url());
    create(&client, "s").await;
    let batch =
        |records: Vec<Record>| client.put_record_batch().delivery_stream_name("s").set_records(Some(records)).send();
    assert_eq!(code(batch(records(501, "x")).await), "InvalidArgumentException");
    let big = Record::builder().data(Blob::new(vec![b'x'; 1000 * 1024 + 1])).build().unwrap();
    assert_eq!(code(batch(vec![big]).await), "InvalidArgumentException");
    let near = Record::builder().data(Blob::new(vec![b'x'; 1000 * 1024])).build().unwrap();
    assert_eq!(code(batch(vec![near; 5]).await), "InvalidArgumentException");
    // The SDK sends an empty list as is; the service refuses it.
    assert_eq!(code(batch(Vec::new()).await), "InvalidArgumentException");
    // Still serving, and nothing above was accepted.
    let ok = batch(records(2, "y")).await.unwrap();
    assert_eq!(ok.failed_put_count(), 0);
    let totals = server.metrics().streams["s"].totals;
    assert_eq!(totals.accepted_records, 2);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_twice_the_record_quota_the_accepted_rate_stays_at_the_quota() {
    const QUOTA: u64 = 2_000;
    const BATCH: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota { records_per_sec: QUOTA, requests_per_sec: 1_000, bytes_per_sec: 10 << 20 };
    let server = FirehoseServer::start(FirehoseConfig { quota, ..config(dir.path()) }).await.unwrap();
    let client = common::firehose_client(&server.url());
    create(&client, "q").await;

    // Offer 2× the quota: one batch of 100 every 25 ms, for 5 s. The first
    // second spends the burst allowance; measure the 4 s after it.
    let start = Instant::now();
    let interval = Duration::from_secs_f64(BATCH as f64 / (2 * QUOTA) as f64);
    let (warmup, end) = (Duration::from_secs(1), Duration::from_secs(5));
    let (mut accepted, mut throttled) = (0u64, 0u64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut measured_from = None;
    loop {
        ticker.tick().await;
        let now = start.elapsed();
        if now >= end {
            break;
        }
        let out = client
            .put_record_batch()
            .delivery_stream_name("q")
            .set_records(Some(records(BATCH, "r")))
            .send()
            .await
            .unwrap();
        for r in out.request_responses() {
            if let Some(code) = r.error_code() {
                assert_eq!((code, r.error_message()), ("ServiceUnavailableException", Some("Slow down.")));
            }
        }
        if now >= warmup {
            measured_from.get_or_insert(now);
            accepted += (BATCH as i32 - out.failed_put_count()) as u64;
            throttled += out.failed_put_count() as u64;
        }
    }
    let measured = start.elapsed() - measured_from.unwrap();
    let rate = accepted as f64 / measured.as_secs_f64();
    let offered = (accepted + throttled) as f64 / measured.as_secs_f64();
    eprintln!("offered {offered:.0}/s, accepted {rate:.0}/s over {measured:?} (quota {QUOTA}/s)");
    assert!(offered > 1.6 * QUOTA as f64, "the client fell behind: offered only {offered:.0}/s");
    assert!((rate - QUOTA as f64).abs() <= 0.05 * QUOTA as f64, "accepted {rate:.0}/s, quota {QUOTA}/s");

    // Every accepted record was delivered, once, in objects that
    // concatenate records as sent.
    let totals = server.metrics().streams["q"].totals;
    let report = server.shutdown().await.unwrap();
    let mut delivered = Vec::new();
    for entry in walk(dir.path()) {
        delivered.extend(std::fs::read(entry).unwrap());
    }
    assert_eq!(delivered.len() as u64, totals.accepted_bytes);
    assert_eq!(delivered.iter().filter(|&&b| b == b'\n').count() as u64, totals.accepted_records);
    assert!(report.objects <= 1, "the final flush writes at most the open buffer");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            assert!(!path.file_name().unwrap().to_string_lossy().starts_with('.'), "temporary file left: {path:?}");
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_follow_the_s3_key_layout_and_stop_flushes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.buffering.interval = Duration::from_secs(900);
    let server = FirehoseServer::start(cfg).await.unwrap();
    let client = common::firehose_client(&server.url());
    create(&client, "lab").await; // AWS-range hints: 1 MiB / 60 s, so nothing is due.
    client.put_record_batch().delivery_stream_name("lab").set_records(Some(records(10, "k"))).send().await.unwrap();
    assert!(walk(dir.path()).is_empty(), "nothing is due before the hints");
    let report = server.shutdown().await.unwrap();
    assert_eq!(report.objects, 1);
    let files = walk(dir.path());
    assert_eq!(files.len(), 1);
    let key = files[0].strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned();
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts[0], "MSKToS3");
    assert_eq!((parts[1].len(), parts[2].len(), parts[3].len(), parts[4].len()), (4, 2, 2, 2));
    let name = parts[5];
    let expected_prefix = format!("lab-1-{}-{}-{}-{}-", parts[1], parts[2], parts[3], parts[4]);
    assert!(name.starts_with(&expected_prefix), "{name} should start with {expected_prefix}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(text.lines().count(), 10);
    assert!(text.starts_with("{\"k\":0}\n{\"k\":1}\n"), "records concatenated as sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_reach_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.faults.internal_failure_rate = 0.3;
    cfg.seed = 42;
    let server = FirehoseServer::start(cfg).await.unwrap();
    let client = common::firehose_client(&server.url());
    create(&client, "f").await;
    let out =
        client.put_record_batch().delivery_stream_name("f").set_records(Some(records(200, "f"))).send().await.unwrap();
    let failures = out.request_responses().iter().filter(|r| r.error_code() == Some("InternalFailure")).count();
    assert_eq!(failures as i32, out.failed_put_count());
    assert!((30..100).contains(&failures), "{failures} of 200 at rate 0.3");
    server.shutdown().await.unwrap();

    let mut cfg = config(dir.path());
    cfg.faults.http_500_rate = 1.0;
    let server = FirehoseServer::start(cfg).await.unwrap();
    let client = common::firehose_client(&server.url());
    create(&client, "g").await;
    let err = client
        .put_record_batch()
        .delivery_stream_name("g")
        .set_records(Some(records(1, "g")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(server.metrics().streams["g"].totals.injected_call_failures, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_answers_every_call_with_its_status_until_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = FirehoseServer::start(config(dir.path())).await.unwrap();
    let client = common::firehose_client(&server.url());
    create(&client, "d").await;
    let put = || client.put_record_batch().delivery_stream_name("d").set_records(Some(records(3, "d"))).send();
    for (status, code) in [(HttpOutage::Status503, 503), (HttpOutage::Status500, 500)] {
        server.outage().begin(status);
        let err = put().await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(code));
        server.outage().end();
        assert_eq!(put().await.unwrap().failed_put_count(), 0, "up again");
    }
    assert!(server.outage().answered() >= 2, "the SDK's own retries may add more");
    // Nothing answered while down reached a stream: only the 6 records sent while up.
    assert_eq!(server.metrics().streams["d"].totals.accepted_records, 6);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_cannot_be_written_does_not_keep_the_others_from_the_final_flush() {
    use mskbench_sim::firehose::FirehoseError;
    let dir = tempfile::tempdir().unwrap();
    let server = FirehoseServer::start(config(dir.path())).await.unwrap();
    let client = common::firehose_client(&server.url());
    for (name, prefix) in [("a", "a-blocked/"), ("m", "m/"), ("z", "z-blocked/")] {
        create_under(&client, name, prefix, 900).await;
        let out = client
            .put_record_batch()
            .delivery_stream_name(name)
            .set_records(Some(records(3, name)))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_put_count(), 0);
    }
    // After the streams were created: a file where each blocked prefix's directory must go.
    for blocked in ["a-blocked", "z-blocked"] {
        let path = dir.path().join(blocked);
        std::fs::remove_dir_all(&path).unwrap();
        std::fs::write(&path, b"in the way").unwrap();
    }
    let err = server.shutdown().await.unwrap_err();
    let text = err.to_string();
    let FirehoseError::Undelivered { streams, written, .. } = err else { panic!("{text}") };
    let named: Vec<(&str, usize, u64)> = streams.iter().map(|s| (s.stream.as_str(), s.objects, s.records)).collect();
    assert_eq!(named, [("a", 1, 3), ("z", 1, 3)], "{text}");
    assert!(text.contains("a: 1 object(s), 3 record(s)") && text.contains("z: 1 object(s), 3 record(s)"), "{text}");
    assert_eq!(written.objects, 1, "the healthy stream was written: {text}");
    let files = walk(&dir.path().join("m"));
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap().lines().count(), 3);
}
