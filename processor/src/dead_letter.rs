//! Where records go that cannot be decoded or delivered, so none is lost.
//!
//! One invocation writes at most one dead-letter object: NDJSON, one
//! [`DeadLetter`] per line, carrying the reason, Kafka coordinates (topic,
//! partition, offset, timestamp) and the data needed to replay the record —
//! the original base64 `value` for a record that could not be decoded, the
//! JSON `line` for one Firehose would not take. The object is named
//! `<prefix>dead-letter-<unix ms>-<request id>.ndjson`, in a local directory
//! (written to a temporary name, synced, then renamed, so a reader never
//! sees half an object) or under an S3 prefix (`PutObject`).
//!
//! Dead letters hold payloads on purpose; logs never do. Cost: one write per
//! invocation that has dead letters, none otherwise.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use mskbench_aws::Access;
use mskbench_aws::s3::S3Bucket;

use serde::Serialize;

use crate::config::DeadLetterTarget;

/// One record that went to the dead-letter destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// A core `Reason` name (`unknown_schema`, …), `firehose:<ErrorCode>`, or
    /// `record_too_large` (the local event source mapping's: a record that
    /// alone exceeds the invocation payload limit).
    pub reason: String,
    /// What and where, without payload.
    pub detail: String,
    /// The record's topic.
    pub topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// Kafka record timestamp, epoch ms (-1 when absent).
    pub timestamp: i64,
    /// The record's value as the event carried it (base64), for undecodable
    /// and too large records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The decoded JSON line (without its newline), for undeliverable records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

/// Writing the dead-letter object failed; the records are not safe.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The file could not be written.
    #[error("cannot write dead letters to {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `PutObject` failed.
    #[error("cannot put dead letters to s3://{bucket}/{key}: {message}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// What went wrong, with its causes.
        message: String,
    },
    /// A letter could not be serialised (not expected).
    #[error("cannot serialise a dead letter: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A configured dead-letter destination.
#[derive(Debug, Clone)]
pub struct DeadLetterSink {
    target: DeadLetterTarget,
    s3: Option<S3Bucket>,
}

impl DeadLetterSink {
    /// A sink writing to `target`; `s3` is how S3 targets are reached.
    ///
    /// # Errors
    /// [`DeadLetterError::S3`] when the S3 client cannot be set up for the
    /// target's bucket.
    pub fn new(target: DeadLetterTarget, s3: &Access) -> Result<Self, DeadLetterError> {
        let bucket = match &target {
            DeadLetterTarget::Directory(_) => None,
            DeadLetterTarget::S3 { bucket, .. } => Some(S3Bucket::new(s3, bucket).map_err(|e| {
                DeadLetterError::S3 { bucket: bucket.clone(), key: String::new(), message: e.to_string() }
            })?),
        };
        Ok(DeadLetterSink { target, s3: bucket })
    }

    /// The destination, for logs.
    pub fn target(&self) -> &DeadLetterTarget {
        &self.target
    }

    /// Writes `letters` as one object; returns where.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the object could not be written completely.
    pub async fn write(&self, request_id: &str, letters: &[DeadLetter]) -> Result<String, DeadLetterError> {
        let mut body = Vec::with_capacity(letters.len() * 256);
        for letter in letters {
            serde_json::to_writer(&mut body, letter)?;
            body.push(b'\n');
        }
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let safe_id: String =
            request_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let name = format!("dead-letter-{millis}-{safe_id}.ndjson");
        match &self.target {
            DeadLetterTarget::Directory(dir) => {
                let path = dir.join(&name);
                write_file(dir, &name, &body)
                    .await
                    .map_err(|source| DeadLetterError::Io { path: path.clone(), source })?;
                Ok(path.display().to_string())
            }
            DeadLetterTarget::S3 { bucket, prefix } => {
                let key = format!("{prefix}{name}");
                let fail = |message: String| DeadLetterError::S3 { bucket: bucket.clone(), key: key.clone(), message };
                let s3 = self.s3.as_ref().ok_or_else(|| fail("no S3 client for the bucket".to_owned()))?;
                s3.put(&key, body).await.map_err(|e| fail(e.message))?;
                Ok(format!("s3://{bucket}/{key}"))
            }
        }
    }
}

/// Writes `body` to `dir/name` whole or not at all: a temporary file,
/// synced, then renamed into place.
async fn write_file(dir: &std::path::Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = tokio::fs::File::create(&tmp).await?;
    file.write_all(body).await?;
    file.sync_all().await?;
    tokio::fs::rename(&tmp, dir.join(name)).await
}
