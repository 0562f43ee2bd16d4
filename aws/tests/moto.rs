//! The lean Glue and S3 clients against moto, the reference for AWS API
//! shapes: every operation mskbench uses, its errors, and a peer that does
//! not answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use mskbench_aws::Access;
use mskbench_aws::glue::{GlueClient, GlueErrorKind};
use mskbench_aws::s3::S3Bucket;
use mskbench_testkit::Moto;
use uuid::Uuid;

const SCHEMA: &str = r#"{"type":"record","name":"ClickEvent","fields":[{"name":"ip","type":"string"}]}"#;
const WIDER: &str = r#"{"type":"record","name":"ClickEvent","fields":[{"name":"ip","type":"string"},{"name":"user","type":["null","string"],"default":null}]}"#;

fn access(endpoint: &str) -> Access {
    Access {
        region: "us-east-1".into(),
        credentials: SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "tests")),
        endpoint: Some(endpoint.into()),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn glue_registers_and_fetches_schema_versions() {
    let moto = Moto::start();
    let glue = GlueClient::new(access(&moto.url)).unwrap();

    let missing = glue.get_registry("lab-registry").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    glue.create_registry("lab-registry").await.unwrap();
    glue.get_registry("lab-registry").await.unwrap();

    let first = glue.create_schema("lab-registry", "ExampleTopic-value", SCHEMA).await.unwrap();
    let second = glue.register_schema_version("lab-registry", "ExampleTopic-value", WIDER).await.unwrap();
    assert_ne!(first, second);
    let again = glue.register_schema_version("lab-registry", "ExampleTopic-value", WIDER).await.unwrap();
    assert_eq!(again, second, "registering a known definition finds its version");

    let version = glue.get_schema_version(first).await.unwrap();
    assert_eq!(version.definition.as_deref(), Some(SCHEMA));
    assert_eq!(version.data_format.as_deref(), Some("AVRO"));
    assert_eq!(version.status.as_deref(), Some("AVAILABLE"));
    let wider = glue.get_schema_version(second).await.unwrap();
    assert_eq!(wider.definition.as_deref(), Some(WIDER));
}

#[tokio::test]
async fn glue_errors_name_the_operation_and_glues_code() {
    let moto = Moto::start();
    let glue = GlueClient::new(access(&moto.url)).unwrap();
    let error = glue.get_schema_version(Uuid::from_u128(7)).await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    let text = error.to_string();
    assert!(text.starts_with("Glue GetSchemaVersion at http://127.0.0.1:"), "{text}");
    assert!(text.contains("EntityNotFoundException"), "{text}");

    let unregistered = glue.register_schema_version("no-such-registry", "s", SCHEMA).await.unwrap_err();
    assert!(unregistered.is_not_found(), "{unregistered}");
}

#[tokio::test]
async fn a_glue_peer_that_never_answers_times_out() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut glue_access = access(&url);
    glue_access.timeout = Duration::from_millis(300);
    let glue = GlueClient::new(glue_access).unwrap();
    let started = Instant::now();
    let error = glue.get_schema_version(Uuid::from_u128(1)).await.unwrap_err();
    assert!(matches!(error.kind, GlueErrorKind::Transport(_)), "{error}");
    // Three attempts of 300 ms and two pauses (100 + 200 ms), with slack.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    drop(listener);
}

#[tokio::test]
async fn s3_puts_lists_and_gets_objects() {
    let moto = Moto::start();
    // moto does not check signatures: an unsigned CreateBucket is enough.
    let created = reqwest::Client::new().put(format!("{}/lab-bucket", moto.url)).send().await.unwrap();
    assert!(created.status().is_success(), "{created:?}");

    let bucket = S3Bucket::new(&access(&moto.url), "lab-bucket").unwrap();
    bucket.put("dead-letters/2026/12/03/a.ndjson", b"{\"a\":1}\n".to_vec()).await.unwrap();
    bucket.put("dead-letters/2026/12/03/b.ndjson", b"{\"b\":2}\n".to_vec()).await.unwrap();
    bucket.put("MSKToS3/2026/12/03/c", b"c\n".to_vec()).await.unwrap();

    let keys = bucket.list("dead-letters/").await.unwrap();
    assert_eq!(keys, ["dead-letters/2026/12/03/a.ndjson", "dead-letters/2026/12/03/b.ndjson"]);
    assert_eq!(bucket.list("").await.unwrap().len(), 3);
    assert_eq!(bucket.get(&keys[1]).await.unwrap(), b"{\"b\":2}\n");
    let modified = bucket.list_modified("dead-letters").await.unwrap();
    assert_eq!(modified.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), keys, "oldest first, then by key");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(modified.iter().all(|(_, ms)| (now_ms - ms).abs() < 120_000), "last-modified times: {modified:?}");

    let missing = bucket.get("dead-letters/none").await.unwrap_err();
    assert_eq!(missing.operation, "GetObject");
    assert!(missing.to_string().starts_with("S3 GetObject s3://lab-bucket/dead-letters/none: "), "{missing}");
}
