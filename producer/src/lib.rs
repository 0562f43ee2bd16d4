//! `mskbench-producer`: seeds a Kafka topic with Avro records at a
//! controlled rate and tells the truth about latency.
//!
//! The path of one record, and the module that owns each step:
//!
//! ```text
//! schedule (intended time) ──► clickevent | schemagen (seeded record) ──► records (datum, framing, key)
//!     ──► send (rdkafka, open loop) ──► delivery report ──► stats (HdrHistograms, Report)
//! ```
//!
//! Around it: [`registry`] registers the schema (Confluent REST or AWS
//! Glue) before the first record; [`broker`] runs the embedded tansu broker
//! or librdkafka's mock cluster and creates topics; [`run::produce`]
//! strings a whole run together from a [`config::ProduceConfig`].
//!
//! Cost: generating and encoding a ClickEvent takes tens of nanoseconds,
//! against a microsecond or more for librdkafka to take it (BENCHMARKS.md,
//! "Producer").

pub mod avro;
pub mod broker;
pub mod clickevent;
pub mod config;
pub mod records;
pub mod registry;
pub mod run;
pub mod schedule;
pub mod schemagen;
pub mod send;
pub mod stats;

pub use broker::{EmbeddedBroker, MockBroker};
pub use config::ProduceConfig;
pub use run::produce;
pub use send::Control;
pub use stats::Report;
