//! Local stand-ins for the services the pipeline talks to: the two it
//! reaches over HTTP, and Kafka.
//!
//! - [`firehose`]: an Amazon Data Firehose endpoint (AWS JSON 1.1, what
//!   `aws-sdk-firehose` and boto3 send) with per-stream Direct PUT quotas,
//!   fault injection, delivery into a local directory laid out as S3 keys,
//!   and per-second metrics.
//! - [`registry`]: a Confluent Schema Registry (REST API v1) for Avro, with
//!   compatibility levels enforced by the Avro schema-resolution rules and
//!   optional persistence.
//! - [`kafka`]: tansu's Kafka broker in this process, in memory
//!   ([`EmbeddedBroker`]), and librdkafka's mock cluster for fault tests
//!   ([`MockBroker`]); feature `kafka`, on by default.
//! - [`proxy`] and [`outage`]: fault windows — a TCP proxy that refuses
//!   connections or delays bytes in front of any of them, and a switch that
//!   makes an HTTP stand-in answer 5xx.
//!
//! All are libraries first: `FirehoseServer::start`,
//! `RegistryServer::start` and `EmbeddedBroker::start` bind (port 0 picks
//! a free port; the HTTP servers default to 127.0.0.1:0) and return a
//! handle with the address; `shutdown` stops serving and, for Firehose,
//! delivers every accepted record before returning. The
//! `mskbench serve` subcommands are thin wrappers around them.
//!
//! Boundary: this crate owns sockets, files and clocks for the stand-ins,
//! and logs through `tracing` (the binary decides where that goes);
//! the quota arithmetic and the Firehose limits come from `mskbench-core`
//! so that the processor and the stand-in agree on them. Every server runs
//! on the caller's tokio runtime.

#![warn(missing_docs)]

pub mod firehose;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod outage;
pub mod proxy;
pub mod registry;
mod server;
mod time;

pub use firehose::{FirehoseConfig, FirehoseServer};
#[cfg(feature = "kafka")]
pub use kafka::{BrokerError, BrokerOptions, BrokerSwitch, EmbeddedBroker, MockBroker, ScramUser};
pub use outage::{HttpOutage, Outage};
pub use proxy::{FaultProxy, ProxyCounts, ProxyMode};
pub use registry::{RegistryConfig, RegistryServer};
pub use server::ServeError;
