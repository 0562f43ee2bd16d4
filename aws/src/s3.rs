//! S3 objects through `object_store`'s S3 client: put (dead letters), list
//! and get (reading delivered objects back, whole or as a stream of chunks).
//!
//! `object_store` signs and sends; this module gives it the caller's
//! credential provider (so the AWS default chain, with SSO and profiles,
//! works as it does for the SDK clients), path-style addressing for
//! endpoint overrides (moto and stand-ins serve buckets by path), and a
//! bounded retry: at most [`RETRIES`] resends within three attempt timeouts,
//! where `object_store`'s default would keep a stalled call going for
//! minutes.

use std::sync::Arc;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential};
use object_store::path::Path;
use object_store::{ClientOptions, CredentialProvider, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::Access;
use crate::sign::error_chain;

/// Resends per call after a transport failure or a 5xx answer.
pub const RETRIES: usize = 2;

/// A failed S3 call.
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} s3://{bucket}/{key}: {message}")]
pub struct S3Error {
    /// `PutObject`, `ListObjectsV2`, `GetObject` or `(client setup)`.
    pub operation: &'static str,
    /// The bucket.
    pub bucket: String,
    /// The key, or the prefix listed.
    pub key: String,
    /// What went wrong, with its causes.
    pub message: String,
}

/// One object as `ListObjectsV2` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// `LastModified`, epoch milliseconds (S3's clock).
    pub last_modified_ms: i64,
    /// Its size in bytes.
    pub size: u64,
}

/// One bucket.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    bucket: String,
    store: Arc<AmazonS3>,
}

impl S3Bucket {
    /// The bucket `bucket` as `access` reaches it. Opens no connection.
    pub fn new(access: &Access, bucket: &str) -> Result<S3Bucket, S3Error> {
        let options = ClientOptions::new()
            .with_timeout(access.timeout)
            .with_connect_timeout(access.timeout.min(std::time::Duration::from_secs(5)))
            .with_allow_http(true);
        let retry = RetryConfig { max_retries: RETRIES, retry_timeout: access.timeout * 3, ..RetryConfig::default() };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&access.region)
            .with_credentials(Arc::new(Bridge(access.credentials.clone())))
            .with_client_options(options)
            .with_retry(retry);
        if let Some(endpoint) = &access.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/')).with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| S3Error {
            operation: "(client setup)",
            bucket: bucket.to_owned(),
            key: String::new(),
            message: error_chain(&e),
        })?;
        Ok(S3Bucket { bucket: bucket.to_owned(), store: Arc::new(store) })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// `PutObject`: `body` under `key` (`/`-separated, no empty segments).
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), S3Error> {
        self.store.put(&Path::from(key), PutPayload::from(body)).await.map_err(|e| self.fail("PutObject", key, &e))?;
        Ok(())
    }

    /// Every key under the directory `prefix` (`a/b/` or `a/b`; empty for
    /// the whole bucket), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let dir = Path::from(prefix);
        let listed: Vec<_> = self
            .store
            .list(if prefix.is_empty() { None } else { Some(&dir) })
            .try_collect()
            .await
            .map_err(|e| self.fail("ListObjectsV2", prefix, &e))?;
        let mut keys: Vec<String> = listed.into_iter().map(|meta| meta.location.to_string()).collect();
        keys.sort();
        Ok(keys)
    }

    /// Every object under the directory `prefix` with its modification
    /// time and size (`ListObjectsV2`, every page), sorted by key.
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectInfo>, S3Error> {
        let dir = Path::from(prefix);
        let listed: Vec<_> = self
            .store
            .list(if prefix.is_empty() { None } else { Some(&dir) })
            .try_collect()
            .await
            .map_err(|e| self.fail("ListObjectsV2", prefix, &e))?;
        let mut objects: Vec<ObjectInfo> = listed
            .into_iter()
            .map(|meta| ObjectInfo {
                key: meta.location.to_string(),
                last_modified_ms: meta.last_modified.timestamp_millis(),
                size: meta.size,
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// `GetObject` as a stream of chunks, as they arrive: an object of any
    /// size is never held whole.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<impl futures_util::Stream<Item = Result<bytes::Bytes, S3Error>> + Send + 'static, S3Error> {
        let answer = self.store.get(&Path::from(key)).await.map_err(|e| self.fail("GetObject", key, &e))?;
        let (bucket, key) = (self.bucket.clone(), key.to_owned());
        Ok(answer.into_stream().map_err(move |e| S3Error {
            operation: "GetObject",
            bucket: bucket.clone(),
            key: key.clone(),
            message: error_chain(&e),
        }))
    }

    /// Every object under the directory `prefix` with its last-modified
    /// time in epoch milliseconds, oldest first (then by key): the order
    /// a delivery stream wrote them in, for reading deliveries back.
    pub async fn list_modified(&self, prefix: &str) -> Result<Vec<(String, i64)>, S3Error> {
        let mut objects: Vec<(String, i64)> =
            self.list_objects(prefix).await?.into_iter().map(|o| (o.key, o.last_modified_ms)).collect();
        objects.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(objects)
    }

    /// `GetObject`: the whole object under `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let answer = self.store.get(&Path::from(key)).await.map_err(|e| self.fail("GetObject", key, &e))?;
        let bytes = answer.bytes().await.map_err(|e| self.fail("GetObject", key, &e))?;
        Ok(bytes.to_vec())
    }

    fn fail(&self, operation: &'static str, key: &str, error: &object_store::Error) -> S3Error {
        S3Error { operation, bucket: self.bucket.clone(), key: key.to_owned(), message: error_chain(error) }
    }
}

/// The caller's credential provider, as `object_store` asks for it.
#[derive(Debug)]
struct Bridge(SharedCredentialsProvider);

#[async_trait::async_trait]
impl CredentialProvider for Bridge {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let credentials = self
            .0
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic { store: "S3", source: Box::new(e) })?;
        Ok(Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            token: credentials.session_token().map(str::to_owned),
        }))
    }
}
