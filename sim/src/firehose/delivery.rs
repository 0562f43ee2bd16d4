//! Buffering accepted records and writing them out as S3-style objects.
//!
//! Each stream has one open [`Buffer`]; accepted records are appended to it
//! as sent (Firehose adds no delimiter). The buffer becomes a
//! [`PendingObject`] when its size or age reaches the stream's buffering
//! hints, or on a forced flush (delete, stop). Pending objects are written
//! in order by the delivery task, outside the stream lock, under
//!
//! ```text
//! <s3-dir>/<prefix>YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>
//! ```
//!
//! with the time (UTC) of the oldest record in the object, as Firehose
//! names them. An object is written to a dot-prefixed temporary name in the
//! same directory and renamed, so a reader listing the tree never sees half
//! an object (skip names starting with `.`).
//!
//! Nothing accepted is lost: a failed write keeps the object at the head of
//! the stream's queue with its key, counts a delivery error and is retried
//! on the next tick; a stop retries a few times and then reports what it
//! could not write.
//!
//! The reader lives here too, beside the writer whose layout it reads:
//! [`list_objects`] finds every finished object under a delivery directory
//! (skipping the dot-named ones still being written), oldest first, with the
//! time it was written; [`count_lines`] counts what they hold. Any writer of
//! the same layout (`mskbench serve firehose --s3-dir`, a copy of an S3
//! prefix) can be read this way.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use super::config::Buffering;
use crate::time::UtcTime;

/// The records accepted since the last object was cut.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    data: Vec<u8>,
    records: u64,
    /// Unix second of the oldest record, and when it arrived.
    opened: Option<(u64, Instant)>,
}

impl Buffer {
    /// Appends one record's bytes.
    pub(crate) fn append(&mut self, record: &[u8], now_unix: u64, now: Instant) {
        if self.opened.is_none() {
            self.opened = Some((now_unix, now));
        }
        self.data.extend_from_slice(record);
        self.records += 1;
    }

    /// Whether the buffering hints say this buffer should be written now.
    pub(crate) fn due(&self, hints: Buffering, now: Instant) -> bool {
        match self.opened {
            None => false,
            Some((_, since)) => {
                self.data.len() as u64 >= hints.size_bytes || now.saturating_duration_since(since) >= hints.interval
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// Cuts the buffer into an object named by `name`, leaving it empty.
    /// `None` when there is nothing buffered.
    pub(crate) fn cut(&mut self, name: &ObjectName<'_>, uuid: uuid::Uuid) -> Option<PendingObject> {
        let (oldest_unix, _) = self.opened.take()?;
        let data = std::mem::take(&mut self.data);
        let records = std::mem::take(&mut self.records);
        Some(PendingObject { key: name.key(oldest_unix, uuid), data, records })
    }
}

/// What an object key is made of, apart from its time and random part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectName<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) stream: &'a str,
    pub(crate) version: u32,
}

impl ObjectName<'_> {
    /// `<prefix>YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>`.
    pub(crate) fn key(&self, unix: u64, uuid: uuid::Uuid) -> String {
        let t = UtcTime::from_unix(unix);
        format!(
            "{prefix}{y:04}/{mo:02}/{d:02}/{h:02}/{stream}-{version}-{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}-{uuid}",
            prefix = self.prefix,
            stream = self.stream,
            version = self.version,
            y = t.year,
            mo = t.month,
            d = t.day,
            h = t.hour,
            mi = t.minute,
            s = t.second,
            uuid = uuid.hyphenated(),
        )
    }
}

/// An object cut from a buffer and not yet written.
#[derive(Debug)]
pub(crate) struct PendingObject {
    pub(crate) key: String,
    pub(crate) data: Vec<u8>,
    pub(crate) records: u64,
}

/// The queue of objects of one stream waiting to be written, in order.
pub(crate) type Pending = VecDeque<PendingObject>;

/// Writes `data` as object `key` under `root`, atomically (temporary name, then rename).
pub(crate) fn write_object(root: &Path, key: &str, data: &[u8]) -> io::Result<PathBuf> {
    let path = root.join(key);
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A finished object found under a delivery directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredObject {
    /// Where it is.
    pub path: PathBuf,
    /// When it was written (its modification time), epoch milliseconds; 0 when unknown.
    pub written_ms: i64,
}

/// A delivery directory that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading delivered objects: {path}: {source}")]
pub struct ReadError {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What the file system said.
    #[source]
    pub source: io::Error,
}

/// Every finished object under `dir` (none when `dir` does not exist),
/// oldest first, then by path. Dot-named files and directories are objects
/// still being written and are skipped.
///
/// # Errors
/// [`ReadError`] naming the directory or file that could not be listed.
pub fn list_objects(dir: &Path) -> Result<Vec<DeliveredObject>, ReadError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReadError { path, source }
    };
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && d == dir => return Ok(found),
            Err(e) => return Err(fail(&d)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(fail(&d))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let meta = entry.metadata().map_err(fail(&path))?;
            if meta.is_dir() {
                stack.push(path);
            } else {
                let written = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
                let written_ms = written.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                found.push(DeliveredObject { path, written_ms });
            }
        }
    }
    found.sort_by(|a, b| (a.written_ms, &a.path).cmp(&(b.written_ms, &b.path)));
    Ok(found)
}

/// The lines (records, newline-delimited) the objects under `dir` hold.
///
/// # Errors
/// [`ReadError`] naming the directory or object that could not be read.
pub fn count_lines(dir: &Path) -> Result<u64, ReadError> {
    let mut lines = 0u64;
    for object in list_objects(dir)? {
        let data = std::fs::read(&object.path).map_err(|source| ReadError { path: object.path.clone(), source })?;
        lines += newlines(&data);
    }
    Ok(lines)
}

fn newlines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NAME: ObjectName<'static> = ObjectName { prefix: "MSKToS3/", stream: "lab-stream", version: 1 };

    #[test]
    fn key_follows_the_firehose_layout() {
        let uuid = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        // 2024-12-31T12:34:56Z
        assert_eq!(
            NAME.key(1_735_648_496, uuid),
            "MSKToS3/2024/12/31/12/lab-stream-1-2024-12-31-12-34-56-01234567-89ab-cdef-0123-456789abcdef"
        );
    }

    #[test]
    fn buffer_is_due_on_size_or_age_and_keeps_the_oldest_time() {
        let hints = Buffering { size_bytes: 10, interval: Duration::from_secs(60) };
        let t0 = Instant::now();
        let mut b = Buffer::default();
        assert!(!b.due(hints, t0 + Duration::from_secs(3600)), "empty is never due");
        b.append(b"abcd\n", 3600, t0);
        b.append(b"efg\n", 7300, t0);
        assert!(!b.due(hints, t0 + Duration::from_secs(59)));
        assert!(b.due(hints, t0 + Duration::from_secs(60)));
        b.append(b"h\n", 7300, t0);
        assert!(b.due(hints, t0), "11 bytes ≥ 10");
        let obj = b.cut(&NAME, uuid::Uuid::nil()).unwrap();
        assert_eq!(obj.data, b"abcd\nefg\nh\n", "concatenated as sent");
        assert_eq!(obj.records, 3);
        assert!(obj.key.starts_with("MSKToS3/1970/01/01/01/"), "{}", obj.key);
        assert!(b.cut(&NAME, uuid::Uuid::nil()).is_none());
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn write_is_atomic_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_object(dir.path(), "p/2024/01/02/03/s-1-x", b"data").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        let leftovers: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
        // A file where a directory must go makes the write fail, loudly.
        std::fs::write(dir.path().join("blocked"), b"").unwrap();
        assert!(write_object(dir.path(), "blocked/2024/x", b"data").is_err());
    }

    #[test]
    fn the_reader_finds_what_the_writer_wrote_and_skips_objects_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_objects(&dir.path().join("missing")).unwrap().is_empty(), "no directory, no objects");
        let a = write_object(dir.path(), "p/2024/01/02/03/s-1-a", b"one\ntwo\n").unwrap();
        let b = write_object(dir.path(), "p/2024/01/02/04/s-1-b", b"three\n").unwrap();
        std::fs::write(a.parent().unwrap().join(".s-1-c.tmp"), b"half\n").unwrap();
        let found: Vec<PathBuf> = list_objects(dir.path()).unwrap().into_iter().map(|o| o.path).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.contains(&a) && found.contains(&b));
        assert_eq!(count_lines(dir.path()).unwrap(), 3);
    }
}
