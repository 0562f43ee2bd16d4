//! A stream that delivers to S3 (`firehose.endpoint = "aws"`, or an endpoint
//! URL with `firehose.bucket`): its objects, found and copied into the run
//! folder, where the read-back counts them as it counts the built-in
//! endpoint's.
//!
//! - **At start** ([`Bucket::open`]): `DescribeDeliveryStream` says where the
//!   stream delivers (checked against the scenario's bucket and prefix; a
//!   compressed stream is refused, the read-back reads JSON lines) and its
//!   buffering interval; then the keys already under the prefix for the
//!   run's first hours are listed. Those are not this run's.
//! - **After the drain** ([`Bucket::fetch_new`], polled by the run's flush
//!   step): `ListObjectsV2` under `<prefix>YYYY/MM/dd/HH/` for each UTC hour
//!   from the run's start to now (Firehose names the hour after the oldest
//!   record in the object, which arrived after the start), and every key not
//!   seen before is streamed by `GetObject` into `s3/<key>` in the run
//!   folder, several at a time, its modification time set to the object's
//!   `LastModified`: the local copy is ordered, and its latency measured, as
//!   S3 has it.
//!
//! Objects another writer puts under the same prefix during the run are
//! read too; their lines match no record of the run and show as
//! `unmatched_lines`, never as delivered.

use std::collections::HashSet;
use std::fs::FileTimes;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use mskbench_aws::Chain;
use mskbench_aws::s3::{ObjectInfo, S3Bucket};
use tokio::io::AsyncWriteExt;

/// Objects fetched at a time.
const PARALLEL_GETS: usize = 8;
/// One S3 or Firehose call's time limit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Firehose's buffering interval when the stream states none (AWS's default).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Firehose's longest buffering interval.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(900);
/// Clock difference allowed between this machine and Firehose when choosing hours to list.
const SKEW: Duration = Duration::from_secs(300);

/// What [`Bucket::open`] needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BucketTarget<'a> {
    pub aws: &'a Chain,
    /// The Firehose endpoint; `None` for the region's.
    pub firehose_url: Option<&'a str>,
    /// The S3 endpoint; `None` for the region's.
    pub s3_url: Option<&'a str>,
    pub stream: &'a str,
    pub bucket: &'a str,
    pub prefix: &'a str,
}

/// The bucket a stream delivers to, as the run found it at start.
#[derive(Debug)]
pub(crate) struct Bucket {
    s3: S3Bucket,
    /// The bucket's name.
    pub name: String,
    /// The stream's prefix.
    pub prefix: String,
    /// The stream's buffering interval, from `DescribeDeliveryStream`.
    pub interval: Duration,
    /// When the run started (this machine's clock).
    started: SystemTime,
    /// Keys that were under the prefix, in the run's first hours, before it.
    before: HashSet<String>,
}

/// What one [`Bucket::fetch_new`] added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fetched {
    pub objects: u64,
    pub lines: u64,
}

impl Bucket {
    /// Describes the stream, checks where it delivers, and lists what the
    /// bucket holds before the run.
    ///
    /// # Errors
    /// The stream is missing or not allowed to be described, delivers
    /// elsewhere or compressed, or the bucket cannot be listed.
    pub(crate) async fn open(t: BucketTarget<'_>) -> Result<Bucket> {
        let started = SystemTime::now();
        let interval = describe(&t).await?;
        let s3 = S3Bucket::new(&t.aws.access(t.s3_url.map(str::to_owned), CALL_TIMEOUT), t.bucket)?;
        let mut bucket = Bucket {
            s3,
            name: t.bucket.to_owned(),
            prefix: t.prefix.to_owned(),
            interval,
            started,
            before: HashSet::new(),
        };
        // Later hours cannot hold objects yet, whatever the clocks say.
        let before = bucket.list(started - SKEW, started + SKEW).await?;
        bucket.before = before.into_iter().map(|o| o.key).collect();
        Ok(bucket)
    }

    /// `s3://bucket/prefix`, for messages.
    pub(crate) fn url(&self) -> String {
        format!("s3://{}/{}", self.name, self.prefix)
    }

    /// Keys there before the run (left out of the read-back).
    pub(crate) fn before(&self) -> usize {
        self.before.len()
    }

    /// Copies every object of the run's hours not in `seen` (nor there
    /// before the run) into `dir` under its key, several at a time, and adds
    /// it to `seen`.
    ///
    /// # Errors
    /// A listing or a download that failed after its retries, or a file that
    /// could not be written.
    pub(crate) async fn fetch_new(self: &Arc<Self>, dir: &Path, seen: &mut HashSet<String>) -> Result<Fetched> {
        let listed = self.list(self.started - SKEW, SystemTime::now() + SKEW).await?;
        let new: Vec<ObjectInfo> =
            listed.into_iter().filter(|o| !self.before.contains(&o.key) && !seen.contains(&o.key)).collect();
        let results: Vec<(String, u64)> = futures_util::stream::iter(new)
            .map(|object| {
                let this = Arc::clone(self);
                let dir = dir.to_path_buf();
                async move { this.download(&object, &dir).await.map(|lines| (object.key, lines)) }
            })
            .buffer_unordered(PARALLEL_GETS)
            .try_collect()
            .await?;
        let mut fetched = Fetched::default();
        for (key, lines) in results {
            seen.insert(key);
            fetched.objects += 1;
            fetched.lines += lines;
        }
        Ok(fetched)
    }

    /// Every object under the prefix in the UTC hours from `from` to `to`.
    async fn list(&self, from: SystemTime, to: SystemTime) -> Result<Vec<ObjectInfo>> {
        let mut all = Vec::new();
        for hour in hour_prefixes(&self.prefix, from, to) {
            all.extend(self.s3.list_objects(&hour).await?);
        }
        Ok(all)
    }

    /// Streams `object` into `dir/<key>` (a dot-named file until complete,
    /// so the read-back never sees half an object); returns its lines.
    async fn download(&self, object: &ObjectInfo, dir: &Path) -> Result<u64> {
        let path = dir.join(&object.key);
        let parent = path.parent().unwrap_or(dir).to_path_buf();
        tokio::fs::create_dir_all(&parent).await.with_context(|| format!("creating {}", parent.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = parent.join(format!(".{name}.part"));
        let mut file = tokio::fs::File::create(&tmp).await.with_context(|| format!("creating {}", tmp.display()))?;
        let mut body = self.s3.get_stream(&object.key).await?;
        let mut lines = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            lines += memchr_count(&chunk);
            file.write_all(&chunk).await.with_context(|| format!("writing {}", tmp.display()))?;
        }
        file.flush().await.with_context(|| format!("writing {}", tmp.display()))?;
        let file = file.into_std().await;
        let modified = UNIX_EPOCH + Duration::from_millis(object.last_modified_ms.max(0) as u64);
        file.set_times(FileTimes::new().set_modified(modified))
            .with_context(|| format!("setting the time of {}", tmp.display()))?;
        drop(file);
        tokio::fs::rename(&tmp, &path).await.with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(lines)
    }
}

/// Newlines in `data`.
fn memchr_count(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

/// `DescribeDeliveryStream`: the stream's buffering interval, once its
/// S3 destination is the scenario's bucket and prefix, uncompressed.
async fn describe(t: &BucketTarget<'_>) -> Result<Duration> {
    let client =
        mskbench_processor::clients::firehose_client(&t.aws.region, &t.aws.credentials, t.firehose_url, CALL_TIMEOUT);
    let answer = client.describe_delivery_stream().delivery_stream_name(t.stream).send().await.map_err(|e| {
        anyhow::anyhow!(
            "DescribeDeliveryStream {} ({}): {}",
            t.stream,
            t.firehose_url.unwrap_or("the region's endpoint"),
            mskbench_core::errors::error_chain(&e)
        )
    })?;
    let Some(description) = answer.delivery_stream_description() else {
        bail!("DescribeDeliveryStream {}: the answer describes no stream", t.stream);
    };
    let destination = description.destinations().iter().find_map(|d| {
        d.extended_s3_destination_description()
            .map(|e| (e.bucket_arn(), e.prefix(), e.buffering_hints(), e.compression_format().as_str()))
            .or_else(|| {
                d.s3_destination_description()
                    .map(|e| (e.bucket_arn(), e.prefix(), e.buffering_hints(), e.compression_format().as_str()))
            })
    });
    let Some((arn, prefix, hints, compression)) = destination else {
        bail!("the stream {} has no S3 destination: its objects cannot be read back", t.stream);
    };
    let bucket = arn.rsplit(':').next().unwrap_or(arn);
    let prefix = prefix.unwrap_or("");
    if bucket != t.bucket || prefix != t.prefix {
        bail!(
            "the stream {} delivers to s3://{bucket}/{prefix}, the scenario reads s3://{}/{}: set firehose.bucket \
             and firehose.prefix to the stream's",
            t.stream,
            t.bucket,
            t.prefix
        );
    }
    // An answer without the field (moto, when the stream was created without one) is uncompressed.
    if compression != "UNCOMPRESSED" && !compression.is_empty() {
        bail!("the stream {} writes {compression} objects; the read-back reads uncompressed JSON lines only", t.stream);
    }
    let interval = hints
        .and_then(|h| h.interval_in_seconds())
        .map_or(DEFAULT_INTERVAL, |s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    Ok(interval.min(MAX_INTERVAL))
}

/// `<prefix>YYYY/MM/dd/HH/` for every UTC hour from `from`'s to `to`'s.
fn hour_prefixes(prefix: &str, from: SystemTime, to: SystemTime) -> Vec<String> {
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (mut hour, last) = (secs(from) / 3600, secs(to) / 3600);
    let mut out = Vec::new();
    while hour <= last {
        let t = UNIX_EPOCH + Duration::from_secs(hour * 3600);
        // `2026-12-03T17:00:00Z`
        let text = humantime::format_rfc3339_seconds(t).to_string();
        out.push(format!("{prefix}{}/{}/{}/{}/", &text[0..4], &text[5..7], &text[8..10], &text[11..13]));
        hour += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_listed_in_firehose_s_utc_layout_across_a_day_boundary() {
        let at = |s: &str| humantime::parse_rfc3339(s).unwrap();
        let hours = hour_prefixes("MSKToS3/", at("2026-12-31T23:10:00Z"), at("2027-01-01T01:00:00Z"));
        assert_eq!(hours, ["MSKToS3/2026/12/31/23/", "MSKToS3/2027/01/01/00/", "MSKToS3/2027/01/01/01/"]);
        assert_eq!(hour_prefixes("p/", at("2026-12-03T18:00:01Z"), at("2026-12-03T17:59:59Z")), Vec::<String>::new());
    }
}
