//! `PutRecordBatch` request bodies from core's packed output.
//!
//! Core packs JSON lines into [`Batch`]es (ranges over one buffer); this
//! module turns a batch, or the subset of its records a retry resends, into
//! the SDK's [`Record`]s. The SDK owns each record's bytes (`Blob` holds a
//! `Vec<u8>`), so this is the one copy of the data between decoding and the
//! wire: about 150 bytes per ClickEvent, one allocation per record.

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use mskbench_core::{Batch, Output};

/// A request the SDK refused to build (a record without data; not expected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build a Firehose record: {0}")]
pub struct BuildError(pub String);

/// The records of `batch`, in order.
///
/// # Errors
/// [`BuildError`] if the SDK refuses a record.
pub fn batch_request(out: &Output, batch: &Batch) -> Result<Vec<Record>, BuildError> {
    records(out, batch.records.clone())
}

/// The records at `indexes` (positions in `out.records`), in the given order.
///
/// # Errors
/// [`BuildError`] if the SDK refuses a record.
pub fn records(out: &Output, indexes: impl IntoIterator<Item = usize>) -> Result<Vec<Record>, BuildError> {
    indexes
        .into_iter()
        .map(|i| {
            Record::builder()
                .data(Blob::new(out.line(&out.records[i]).to_vec()))
                .build()
                .map_err(|e| BuildError(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use mskbench_core::packer::PackLimits;
    use mskbench_core::wire::{SchemaKey, WireMode};
    use mskbench_core::{EventProcessor, SchemaCache};

    use super::*;

    #[test]
    fn requests_carry_the_lines_of_their_batch_in_order() {
        let cache = SchemaCache::default();
        cache.insert_json(SchemaKey::Confluent(1), mskbench_benches::CLICK_SCHEMA).unwrap();
        let event = mskbench_benches::lab_event(7, 2, 1);
        let processor = EventProcessor::new(WireMode::Confluent, PackLimits::with_max_records(3).unwrap());
        let mut out = Output::new();
        processor.process_json(&event, &cache, Instant::now(), &mut out).unwrap();
        assert_eq!(out.batches.len(), 3);
        let mut all = Vec::new();
        for batch in &out.batches {
            let request = batch_request(&out, batch).unwrap();
            assert_eq!(request.len(), batch.records.len());
            all.extend(request.into_iter().map(|r| r.data().as_ref().to_vec()));
        }
        assert_eq!(all.concat(), out.data);
        let subset = records(&out, [4, 1]).unwrap();
        assert_eq!(subset[0].data().as_ref(), out.line(&out.records[4]));
        assert_eq!(subset[1].data().as_ref(), out.line(&out.records[1]));
    }
}
