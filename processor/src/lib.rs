//! The lab's Lambda function in Rust, losing nothing.
//!
//! The lab's Java function decodes MSK records and sends them to Firehose
//! but loses records on the way: it returns before its sends finish,
//! drops `InternalFailure` entries and entries still failing after
//! `RETRIES`, drops undecodable Confluent records with a log line, and
//! lets one bad Glue record fail the whole invocation. This crate does the same job on `mskbench-core`, with the same environment
//! variables and log lines a lab user relies on, and none of the losses:
//!
//! - [`config`]: the lab's environment variables, validated at start;
//! - [`handler`]: one invocation — decode through core, send, account for
//!   every record ([`handler::InvocationSummary`]);
//! - [`service`]: `PutRecordBatch` calls with bounded concurrency, resending
//!   only failed records, every call awaited;
//! - [`request_builder`]: SDK requests from core's packed batches;
//! - [`retry`]: capped exponential backoff with full jitter, or the lab's schedule;
//! - [`pace`]: calls held under a share of the stream's quota (token
//!   bucket, or AIMD on throttles), core's `Pacer` on the process clock;
//! - [`dead_letter`]: undecodable and undeliverable records to a directory or S3;
//! - [`schemas`]: the async shell around core's schema cache — the schemas
//!   an event lacks are fetched (single-flight), stored, and their records
//!   finished; Glue `GetSchemaVersion` there, the Confluent REST lookup in
//!   [`confluent`] (`schema_registry_converter`'s client);
//! - [`clients`]: the AWS SDK clients, endpoint overrides included;
//! - [`live`]: counters a sampler reads while the handler works;
//! - `esm` (feature `esm`, default): a local event source mapping
//!   (rdkafka consumer → events → function → offsets committed after
//!   success), `mskbench process`; the function is the handler in process
//!   or any Lambda function over the Runtime API the mapping serves
//!   (`esm::runtime_api`, `mskbench process --runtime-api`).
//!
//! The `bootstrap` binary runs [`handler::Handler`] on `lambda_runtime`.
//!
//! Boundary: this crate owns the network, files, clocks and environment of
//! the function; the per-record work is core's and does no I/O.

#![warn(missing_docs)]

pub mod clients;
pub mod config;
pub mod confluent;
pub mod dead_letter;
#[cfg(feature = "esm")]
pub mod esm;
pub mod handler;
pub mod live;
pub mod logging;
pub mod pace;
pub mod request_builder;
pub mod retry;
pub mod schemas;
pub mod service;
#[cfg(test)]
mod test_registry;

pub use config::Config;
pub use handler::{Handler, InvocationError, InvocationSummary};
pub use live::{Live, LiveSnapshot};
