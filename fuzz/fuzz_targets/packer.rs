//! The `PutRecordBatch` packer against Firehose's limits.
//!
//! The input chooses the limits (Firehose's own — 500 records, 4 MiB,
//! 1,000 KiB a record — or smaller ones, and invalid ones that
//! `PackLimits::validated` must refuse) and a run of record sizes, small,
//! near the record limit or anywhere up to past it. Oracles: no batch holds
//! more records or bytes than the limits allow, or none; every record is
//! either refused as oversize (exactly when it is over the record limit)
//! or placed in exactly one batch, in input order, under the index `push`
//! returned; and a batch closes only when the next record would not fit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mskbench_core::PackLimits;
use mskbench_core::packer::{Batch, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES, Packer};

fuzz_target!(|data: &[u8]| {
    let Some((head, sizes)) = data.split_first_chunk::<7>() else { return };
    let limits = if head[0] & 1 == 0 {
        PackLimits::default()
    } else {
        PackLimits {
            max_records: usize::from(u16::from_le_bytes([head[1], head[2]])),
            max_record_bytes: (u32::from_le_bytes([head[3], head[4], 0, 0]) as usize) << (head[0] >> 4),
            max_batch_bytes: (u32::from_le_bytes([head[5], head[6], 0, 0]) as usize) << (head[0] >> 3 & 7),
        }
    };
    let valid = (1..=MAX_BATCH_RECORDS).contains(&limits.max_records)
        && (1..=MAX_RECORD_BYTES).contains(&limits.max_record_bytes)
        && (limits.max_record_bytes..=MAX_BATCH_BYTES).contains(&limits.max_batch_bytes);
    match limits.validated() {
        Ok(l) => assert!(valid && l == limits),
        Err(_) => {
            assert!(!valid, "valid limits refused: {limits:?}");
            return;
        }
    }

    let mut packer = Packer::new(limits);
    let mut batches: Vec<Batch> = Vec::new();
    // Sizes of the records placed, by the index `push` returned.
    let mut placed: Vec<usize> = Vec::new();
    for chunk in sizes.chunks_exact(3) {
        let raw = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], 0]) as usize;
        let size = match raw >> 22 {
            0 => raw & 0x7ff,
            1 => (limits.max_record_bytes + (raw & 0x7ff)).saturating_sub(1024),
            _ => raw % (limits.max_record_bytes + limits.max_record_bytes / 8 + 1),
        };
        let before = batches.len();
        match packer.push(size, &mut batches) {
            Ok(index) => {
                assert!(size <= limits.max_record_bytes, "a {size}-byte record packed over the record limit");
                assert_eq!(index, placed.len(), "indexes are not consecutive");
                placed.push(size);
            }
            Err(e) => {
                assert!(size > limits.max_record_bytes, "a {size}-byte record refused: {e}");
                assert_eq!((e.size, e.limit), (size, limits.max_record_bytes));
                assert_eq!(batches.len(), before, "a refused record closed a batch");
            }
        }
    }
    packer.finish(&mut batches);

    let mut next = 0;
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(batch.records.start, next, "batch {i} skips or repeats records");
        assert!(!batch.is_empty() && batch.len() <= limits.max_records, "batch {i} holds {} records", batch.len());
        let bytes: usize = placed[batch.records.clone()].iter().sum();
        assert_eq!(batch.bytes, bytes, "batch {i} miscounts its bytes");
        assert!(bytes <= limits.max_batch_bytes && bytes <= MAX_BATCH_BYTES, "batch {i} holds {bytes} bytes");
        if let Some(&following) = placed.get(batch.records.end) {
            assert!(
                batch.len() == limits.max_records || bytes + following > limits.max_batch_bytes,
                "batch {i} closed while the next record ({following} bytes) still fit"
            );
        }
        next = batch.records.end;
    }
    assert_eq!(next, placed.len(), "placed records outside every batch");
});
