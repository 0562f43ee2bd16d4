//! The Lambda function's per-record work, with no I/O.
//!
//! `mskbench-core` is the pure centre of mskbench: it takes the bytes of a
//! Lambda `aws:kafka` event and gives back newline-terminated JSON records
//! packed into Firehose `PutRecordBatch`-sized batches, plus an outcome with
//! a reason for every record that could not be packed. Network, files,
//! clocks and environment variables live in the crates around it: a record
//! whose writer schema is not cached is reported as waiting, and the caller
//! fetches the schema and hands it in ([`schema_cache`]).
//!
//! The path of one record, and the module that owns each step:
//!
//! ```text
//! event JSON ──event──► base64 value ──b64──► framed bytes ──wire──► (schema key, datum)
//!     ──schema_cache──► compiled Transcoder ──transcode──► JSON line ──packer──► Batch
//! ```
//!
//! [`pipeline::EventProcessor`] strings the steps together over caller-owned
//! buffers ([`pipeline::Output`]); [`accounting`] names every outcome.
//!
//! Cost, measured on the 2-core development machine (see BENCHMARKS.md): a
//! whole 1,000-record ClickEvent event to packed batches takes on the order of
//! a couple of hundred nanoseconds per record, with no per-record allocation
//! once the output buffers have grown.

#![warn(missing_docs)]

pub mod accounting;
pub mod b64;
pub mod cost;
pub mod errors;
pub mod event;
pub mod pace;
pub mod packer;
pub mod percentiles;
pub mod pipeline;
pub mod quota;
pub mod registry_url;
pub mod schema_cache;
pub mod transcode;
pub mod wire;

pub use accounting::{Reason, Summary};
pub use event::{KafkaEvent, KafkaRecord, TimestampType};
pub use pace::{Aimd, Pacer, Pacing};
pub use packer::{Batch, PackLimits};
pub use percentiles::Percentiles;
pub use pipeline::{EventProcessor, Output, Provenance, Waiting};
pub use quota::{Quota, StreamLimiter};
pub use schema_cache::{FetchError, FetchedSchema, SchemaCache, SchemaError};
pub use transcode::Transcoder;
pub use wire::{SchemaKey, WireMode};
