//! AWS SDK clients built from [`Config`]: Firehose, Glue and S3.
//!
//! All three share one HTTP client (hyper with rustls on ring; plain HTTP
//! too, for stand-ins and moto), the region, the environment credentials
//! and, when set, the endpoint override of their service. The Firehose
//! client has the SDK's own retries turned off: [`crate::service`] decides
//! every resend, so the counts it reports are the calls actually made, and
//! a throttled call is never resent behind its back. Building clients reads
//! no files and opens no connection.

use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::config::timeout::TimeoutConfig;
use aws_sdk_firehose::config::{BehaviorVersion, Region, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::Config;

/// The clients one handler uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Firehose, SDK retries off (the sender decides every resend).
    pub firehose: aws_sdk_firehose::Client,
    /// Glue, for `GetSchemaVersion`.
    pub glue: aws_sdk_glue::Client,
    /// S3, for dead letters.
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    /// Clients for `config`'s region, credentials and endpoints.
    pub fn new(config: &Config) -> Clients {
        // HTTPS (rustls, ring) or plain HTTP, by the URL's scheme.
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let credentials = SharedCredentialsProvider::new(config.credentials.clone());
        let region = Region::new(config.region.clone());
        let timeouts = TimeoutConfig::builder().operation_attempt_timeout(config.call_timeout).build();

        let mut firehose = aws_sdk_firehose::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .http_client(http.clone())
            .timeout_config(timeouts.clone())
            .retry_config(RetryConfig::disabled());
        if let Some(url) = &config.endpoints.firehose {
            firehose = firehose.endpoint_url(url);
        }

        let mut glue = aws_sdk_glue::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .http_client(http.clone())
            .timeout_config(timeouts.clone());
        if let Some(url) = &config.endpoints.glue {
            glue = glue.endpoint_url(url);
        }

        let mut s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .http_client(http)
            .timeout_config(timeouts);
        if let Some(url) = &config.endpoints.s3 {
            // Stand-ins and moto serve buckets by path, not by host name.
            s3 = s3.endpoint_url(url).force_path_style(true);
        }

        Clients {
            firehose: aws_sdk_firehose::Client::from_conf(firehose.build()),
            glue: aws_sdk_glue::Client::from_conf(glue.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
        }
    }
}
