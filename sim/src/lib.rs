//! Local stand-ins for the two services the pipeline talks to over HTTP.
//!
//! - [`firehose`]: an Amazon Data Firehose endpoint (AWS JSON 1.1, what
//!   `aws-sdk-firehose` and boto3 send) with per-stream Direct PUT quotas,
//!   fault injection, delivery into a local directory laid out as S3 keys,
//!   and per-second metrics.
//! - [`registry`]: a Confluent Schema Registry (REST API v1) for Avro, with
//!   compatibility levels enforced by the Avro schema-resolution rules and
//!   optional persistence.
//!
//! Both are libraries first: `FirehoseServer::start` and
//! `RegistryServer::start` bind (127.0.0.1 on a free port by default) and
//! return a handle with the URL; `shutdown` stops serving and, for
//! Firehose, delivers every accepted record before returning. The
//! `mskbench serve` subcommands are thin wrappers around them.
//!
//! Boundary: this crate owns sockets, files and clocks for the stand-ins;
//! the quota arithmetic and the Firehose limits come from `mskbench-core`
//! so that the processor and the stand-in agree on them. Both servers run
//! on the caller's tokio runtime.

pub mod firehose;
pub mod registry;
mod server;
mod time;

pub use firehose::{FirehoseConfig, FirehoseServer};
pub use registry::{RegistryConfig, RegistryServer};
pub use server::ServeError;
