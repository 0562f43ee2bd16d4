//! The handler against moto, an independent reading of the AWS APIs:
//! Firehose delivering to S3 end to end, schema versions from Glue's
//! `GetSchemaVersion`, and dead letters to an S3 prefix. moto is started by
//! the test from the test virtual environment (scripts/test sets it up).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_firehose::types::{BufferingHints, ExtendedS3DestinationConfiguration};
use common::{STREAM, canonical, clickevents, config, confluent, event, glue};
use mskbench_aws::s3::S3Bucket;
use mskbench_core::wire::{Compression, SchemaKey};
use mskbench_processor::Handler;
use mskbench_processor::clients::Clients;
use mskbench_testkit::Moto;

const BUCKET: &str = "lab-bucket";

/// moto, with the lab's bucket and a Firehose stream delivering to `MSKToS3/`.
async fn moto_with_stream() -> (Moto, Clients) {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let clients = Clients::new(&config(&[("AWS_ENDPOINT_URL", &moto.url)])).unwrap();
    // moto does not check signatures: an unsigned CreateBucket is enough.
    let created = reqwest::Client::new().put(format!("{}/{BUCKET}", moto.url)).send().await.unwrap();
    assert!(created.status().is_success(), "{created:?}");
    let destination = ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(format!("arn:aws:s3:::{BUCKET}"))
        .role_arn("arn:aws:iam::123456789012:role/firehose")
        .prefix("MSKToS3/")
        .buffering_hints(BufferingHints::builder().size_in_mbs(5).interval_in_seconds(120).build())
        .build()
        .unwrap();
    clients
        .firehose
        .create_delivery_stream()
        .delivery_stream_name(STREAM)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .unwrap();
    (moto, clients)
}

/// Every line of every object under `prefix`, as written.
async fn s3_lines(clients: &Clients, prefix: &str) -> Vec<String> {
    let bucket = S3Bucket::new(&clients.s3, BUCKET).unwrap();
    let mut lines = Vec::new();
    for key in bucket.list(prefix).await.unwrap() {
        let text = String::from_utf8(bucket.get(&key).await.unwrap()).unwrap();
        assert!(text.ends_with('\n'), "object {key:?} does not end with a newline");
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_reaches_s3_through_moto_exactly_once() {
    let (moto, clients) = moto_with_stream().await;
    let h = Handler::with_clients(
        config(&[("AWS_ENDPOINT_URL", &moto.url), ("CSR", "true"), ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9")]),
        clients.clone(),
    )
    .unwrap();
    h.insert_schema(SchemaKey::Confluent(1), mskbench_benches::CLICK_SCHEMA).unwrap();
    let (datums, expected) = clickevents(1_234, 21);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();

    let summary = h.handle(event(&values, 4), "req-moto").await.unwrap();
    assert!(summary.adds_up());
    assert_eq!((summary.delivered, summary.send.calls), (1_234, 3), "3 calls of at most 500 records");

    let lines = s3_lines(&clients, "MSKToS3/").await;
    assert_eq!(lines.len(), 1_234);
    assert_eq!(canonical(&lines), canonical(&expected), "each record once, as one JSON line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glue_schema_versions_come_from_get_schema_version() {
    let (moto, clients) = moto_with_stream().await;
    clients.glue.create_registry("lab-registry").await.unwrap();
    let version =
        clients.glue.create_schema("lab-registry", "ExampleTopic", mskbench_benches::CLICK_SCHEMA).await.unwrap();
    let h = Handler::with_clients(config(&[("AWS_ENDPOINT_URL", &moto.url)]), clients.clone()).unwrap();
    let (datums, expected) = clickevents(300, 22);
    let unknown = uuid::Uuid::from_u128(42);
    let mut values: Vec<_> = datums
        .iter()
        .enumerate()
        .map(|(i, d)| glue(version, if i % 2 == 0 { Compression::None } else { Compression::Zlib }, d))
        .collect();
    // One record names a schema version Glue does not have.
    values.push(glue(unknown, Compression::None, &datums[0]));

    let summary = h.handle(event(&values, 2), "req-glue").await.unwrap();
    assert!(summary.adds_up());
    assert_eq!((summary.delivered, summary.dropped), (300, 1));
    assert_eq!(summary.decode.rejected.get(mskbench_core::Reason::UnknownSchema), 1);
    let lines = s3_lines(&clients, "MSKToS3/").await;
    assert_eq!(canonical(&lines), canonical(&expected));

    // The schema is cached: a second invocation asks Glue nothing new.
    let values: Vec<_> = datums.iter().take(10).map(|d| glue(version, Compression::None, d)).collect();
    let summary = h.handle(event(&values, 1), "req-glue-2").await.unwrap();
    assert_eq!(summary.delivered, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_go_to_an_s3_prefix() {
    let (moto, clients) = moto_with_stream().await;
    let h = Handler::with_clients(
        config(&[
            ("AWS_ENDPOINT_URL", &moto.url),
            ("CSR", "true"),
            ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9"),
            ("DEAD_LETTER", "s3://lab-bucket/dead-letters/"),
        ]),
        clients.clone(),
    )
    .unwrap();
    h.insert_schema(SchemaKey::Confluent(1), mskbench_benches::CLICK_SCHEMA).unwrap();
    let (datums, _) = clickevents(20, 23);
    let mut values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    values[7] = b"not avro at all".to_vec();

    let summary = h.handle(event(&values, 1), "req-s3-dlq").await.unwrap();
    assert_eq!((summary.delivered, summary.dead_lettered), (19, 1));
    let letters = s3_lines(&clients, "dead-letters/").await;
    assert_eq!(letters.len(), 1);
    let letter: serde_json::Value = serde_json::from_str(&letters[0]).unwrap();
    assert_eq!(letter["reason"], "unknown_magic_byte");
    assert_eq!((letter["topic"].as_str(), letter["offset"].as_i64()), (Some("ExampleTopic"), Some(7)));
    assert_eq!(s3_lines(&clients, "MSKToS3/").await.len(), 19);
}
