//! The AWS clients built from [`Config`]: Firehose (the SDK), Glue and the
//! access S3 dead letters use ([`mskbench_aws`]).
//!
//! All share the region and the credentials provider of the AWS default
//! chain, resolved once ([`mskbench_aws::Chain`], held in [`Config`]), and,
//! when set, the endpoint override of their service. The Firehose client (hyper with
//! rustls on ring; plain HTTP too, for stand-ins and moto) has the SDK's
//! own retries turned off: [`crate::service`] decides every resend, so the
//! counts it reports are the calls actually made, and a throttled call is
//! never resent behind its back. Glue and S3 are off the hot path and go
//! through the lean clients of `mskbench-aws` (why: that crate's header).
//! Building clients reads no files and opens no connection.

use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::config::timeout::TimeoutConfig;
use aws_sdk_firehose::config::{BehaviorVersion, Region, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use mskbench_aws::Access;
use mskbench_aws::glue::{GlueClient, GlueError};

use crate::config::Config;

/// The clients one handler uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// PutRecordBatch.
    pub firehose: aws_sdk_firehose::Client,
    /// GetSchemaVersion.
    pub glue: GlueClient,
    /// Region, credentials and endpoint for S3 (dead letters).
    pub s3: Access,
}

impl Clients {
    /// Clients for `config`'s region, credentials and endpoints.
    ///
    /// # Errors
    /// [`GlueError`] when the HTTP client cannot be set up (no TLS backend).
    pub fn new(config: &Config) -> Result<Clients, GlueError> {
        let credentials = config.credentials.clone();
        let firehose =
            firehose_client(&config.region, &credentials, config.endpoints.firehose.as_deref(), config.call_timeout);
        let access = |endpoint: &Option<String>| Access {
            region: config.region.clone(),
            credentials: credentials.clone(),
            endpoint: endpoint.clone(),
            timeout: config.call_timeout,
        };
        Ok(Clients {
            firehose,
            glue: GlueClient::new(access(&config.endpoints.glue))?,
            s3: access(&config.endpoints.s3),
        })
    }
}

/// A Firehose client: the SDK's, with its own retries off (every resend is
/// [`crate::service`]'s), `timeout` per attempt, HTTPS by rustls on ring or
/// plain HTTP by the URL's scheme; `endpoint` overrides the region's.
pub fn firehose_client(
    region: &str,
    credentials: &SharedCredentialsProvider,
    endpoint: Option<&str>,
    timeout: std::time::Duration,
) -> aws_sdk_firehose::Client {
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let timeouts = TimeoutConfig::builder().operation_attempt_timeout(timeout).build();
    let mut firehose = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials.clone())
        .http_client(http)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::disabled());
    if let Some(url) = endpoint {
        firehose = firehose.endpoint_url(url);
    }
    aws_sdk_firehose::Client::from_conf(firehose.build())
}
