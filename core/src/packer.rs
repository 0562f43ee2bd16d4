//! Packing records into Firehose `PutRecordBatch` calls.
//!
//! Firehose takes at most 500 records and 4 MiB per call, and at most
//! 1,000 KiB per record (before base64). The lab's Lambda closes a batch
//! when adding the next record would pass either batch limit; so does
//! [`Packer`], keeping input order. A record over the record limit is
//! refused and never sent (Firehose would fail the whole call with
//! `InvalidArgumentException`).
//!
//! The packer only counts: a [`Batch`] is a range of record indexes and a
//! byte total, so batches reference the caller's output buffer instead of
//! copying records. Limits smaller than Firehose's are allowed (scenarios
//! sweep batch sizes); larger ones are refused, since Firehose would refuse
//! the calls.

use std::ops::Range;

/// Firehose's most records per `PutRecordBatch`.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Firehose's most bytes per `PutRecordBatch` (4 MiB).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Firehose's most bytes per record (1,000 KiB).
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;

/// The limits one packer enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackLimits {
    /// Most records in one batch (1..=500).
    pub max_records: usize,
    /// Most bytes in one batch, newlines included (≤ 4 MiB).
    pub max_batch_bytes: usize,
    /// Most bytes in one record, its newline included (≤ 1,000 KiB).
    pub max_record_bytes: usize,
}

impl Default for PackLimits {
    /// Firehose's own limits.
    fn default() -> Self {
        PackLimits {
            max_records: MAX_BATCH_RECORDS,
            max_batch_bytes: MAX_BATCH_BYTES,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }
}

/// Limits Firehose would not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "batch limits must be 1..={MAX_BATCH_RECORDS} records, record size ≤ batch size ≤ {MAX_BATCH_BYTES} bytes and record size 1..={MAX_RECORD_BYTES} bytes; got {0:?}"
)]
pub struct InvalidLimits(
    /// The limits refused.
    pub PackLimits,
);

impl PackLimits {
    /// Firehose's limits with a smaller record count per batch.
    ///
    /// # Errors
    /// [`InvalidLimits`] when `max_records` is 0 or above 500.
    pub fn with_max_records(max_records: usize) -> Result<Self, InvalidLimits> {
        PackLimits { max_records, ..Self::default() }.validated()
    }

    /// These limits, if Firehose would accept calls that keep them.
    ///
    /// # Errors
    /// [`InvalidLimits`] when a limit is zero or above Firehose's.
    pub fn validated(self) -> Result<Self, InvalidLimits> {
        let ok = (1..=MAX_BATCH_RECORDS).contains(&self.max_records)
            && (1..=MAX_RECORD_BYTES).contains(&self.max_record_bytes)
            && (self.max_record_bytes..=MAX_BATCH_BYTES).contains(&self.max_batch_bytes);
        if ok { Ok(self) } else { Err(InvalidLimits(self)) }
    }
}

/// One `PutRecordBatch` call: consecutive packed records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Indexes into the packed-record list.
    pub records: Range<usize>,
    /// Sum of the records' sizes.
    pub bytes: usize,
}

impl Batch {
    /// Number of records in the batch.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True for a batch without records (never produced by [`Packer`]).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A record larger than the record limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record of {size} bytes exceeds the {limit}-byte Firehose record limit")]
pub struct Oversize {
    /// The record's size in bytes.
    pub size: usize,
    /// The record limit it exceeds, in bytes.
    pub limit: usize,
}

/// Packs record sizes into batches, in order.
#[derive(Debug, Clone)]
pub struct Packer {
    limits: PackLimits,
    /// Records packed so far (the next record's index).
    count: usize,
    open_start: usize,
    open_bytes: usize,
}

impl Packer {
    /// A packer enforcing `limits`.
    pub fn new(limits: PackLimits) -> Self {
        Packer { limits, count: 0, open_start: 0, open_bytes: 0 }
    }

    /// The limits this packer enforces.
    pub fn limits(&self) -> PackLimits {
        self.limits
    }

    /// Packs the next record of `size` bytes; pushes the open batch to
    /// `batches` first when the record does not fit in it. Returns the
    /// record's index among packed records.
    ///
    /// # Errors
    /// [`Oversize`] when `size` exceeds the record limit; nothing changes.
    #[inline]
    pub fn push(&mut self, size: usize, batches: &mut Vec<Batch>) -> Result<usize, Oversize> {
        if size > self.limits.max_record_bytes {
            return Err(Oversize { size, limit: self.limits.max_record_bytes });
        }
        let open_len = self.count - self.open_start;
        if open_len == self.limits.max_records || self.open_bytes + size > self.limits.max_batch_bytes {
            self.close(batches);
        }
        self.open_bytes += size;
        self.count += 1;
        Ok(self.count - 1)
    }

    /// Pushes the open batch, if it has records.
    pub fn finish(&mut self, batches: &mut Vec<Batch>) {
        if self.count > self.open_start {
            self.close(batches);
        }
    }

    fn close(&mut self, batches: &mut Vec<Batch>) {
        batches.push(Batch { records: self.open_start..self.count, bytes: self.open_bytes });
        self.open_start = self.count;
        self.open_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(sizes: &[usize]) -> (Vec<Batch>, Vec<Result<usize, Oversize>>) {
        let mut packer = Packer::new(PackLimits::default());
        let mut batches = Vec::new();
        let results = sizes.iter().map(|&s| packer.push(s, &mut batches)).collect();
        packer.finish(&mut batches);
        (batches, results)
    }

    #[test]
    fn exactly_500_records_make_one_batch() {
        let (batches, _) = pack(&[100; 500]);
        assert_eq!(batches, vec![Batch { records: 0..500, bytes: 50_000 }]);
        let (batches, _) = pack(&[100; 501]);
        assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), [500, 1]);
    }

    #[test]
    fn the_lab_event_of_1000_records_makes_two_batches() {
        let (batches, _) = pack(&[200; 1000]);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].records, 500..1000);
    }

    #[test]
    fn exactly_4_mib_fits_and_one_byte_more_does_not() {
        // four 1,000 KiB records plus 96 KiB = 4,194,304 bytes
        let (batches, _) = pack(&[MAX_RECORD_BYTES, MAX_RECORD_BYTES, MAX_RECORD_BYTES, MAX_RECORD_BYTES, 96 * 1024]);
        assert_eq!(batches, vec![Batch { records: 0..5, bytes: MAX_BATCH_BYTES }]);
        let (batches, _) =
            pack(&[MAX_RECORD_BYTES, MAX_RECORD_BYTES, MAX_RECORD_BYTES, MAX_RECORD_BYTES, 96 * 1024 + 1]);
        assert_eq!(batches.iter().map(|b| b.bytes).collect::<Vec<_>>(), [4 * MAX_RECORD_BYTES, 96 * 1024 + 1]);
    }

    #[test]
    fn a_1000_kib_record_is_accepted_and_one_byte_more_is_refused() {
        let (batches, results) = pack(&[MAX_RECORD_BYTES, MAX_RECORD_BYTES + 1, 10]);
        assert_eq!(results[0], Ok(0));
        assert_eq!(results[1], Err(Oversize { size: MAX_RECORD_BYTES + 1, limit: MAX_RECORD_BYTES }));
        assert_eq!(results[2], Ok(1));
        assert_eq!(batches, vec![Batch { records: 0..2, bytes: MAX_RECORD_BYTES + 10 }]);
    }

    #[test]
    fn no_records_make_no_batches() {
        assert!(pack(&[]).0.is_empty());
    }

    #[test]
    fn smaller_record_counts_are_allowed_larger_refused() {
        let limits = PackLimits::with_max_records(10).unwrap();
        let mut packer = Packer::new(limits);
        let mut batches = Vec::new();
        for _ in 0..25 {
            packer.push(1, &mut batches).unwrap();
        }
        packer.finish(&mut batches);
        assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert!(PackLimits::with_max_records(0).is_err());
        assert!(PackLimits::with_max_records(501).is_err());
        assert!(PackLimits { max_batch_bytes: MAX_BATCH_BYTES + 1, ..Default::default() }.validated().is_err());
    }
}
