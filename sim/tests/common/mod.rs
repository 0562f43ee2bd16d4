//! Helpers shared by sim's integration tests: SDK clients pointed at a
//! local endpoint, and a bucket in moto (started by mskbench-testkit).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};

/// An `aws-sdk-firehose` client for `url`, plain HTTP, retries off (so each
/// call is one request and the tests see every throttle).
pub fn firehose_client(url: &str) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(url)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

use mskbench_testkit::Moto;

/// Creates an S3 bucket in `moto` (Firehose there delivers into it).
pub fn create_bucket(moto: &Moto, bucket: &str) {
    ureq::put(&format!("{}/{bucket}", moto.url)).send_empty().unwrap();
}
