//! The AWS clients built from [`Config`]: Firehose (the SDK), Glue and the
//! access S3 dead letters use ([`mskbench_aws`]).
//!
//! All share the region, the configured credentials and, when set, the
//! endpoint override of their service. The Firehose client (hyper with
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
        // HTTPS (rustls, ring) or plain HTTP, by the URL's scheme.
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let credentials = SharedCredentialsProvider::new(config.credentials.clone());
        let timeouts = TimeoutConfig::builder().operation_attempt_timeout(config.call_timeout).build();

        let mut firehose = aws_sdk_firehose::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials.clone())
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::disabled());
        if let Some(url) = &config.endpoints.firehose {
            firehose = firehose.endpoint_url(url);
        }

        let access = |endpoint: &Option<String>| Access {
            region: config.region.clone(),
            credentials: credentials.clone(),
            endpoint: endpoint.clone(),
            timeout: config.call_timeout,
        };
        Ok(Clients {
            firehose: aws_sdk_firehose::Client::from_conf(firehose.build()),
            glue: GlueClient::new(access(&config.endpoints.glue))?,
            s3: access(&config.endpoints.s3),
        })
    }
}
