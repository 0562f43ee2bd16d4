//! `mskbench-producer`: seeds a Kafka topic with Avro records at a
//! controlled rate and tells the truth about latency.
//!
//! The path of one record, and the module that owns each step —
//! generate → frame → schedule → send:
//!
//! ```text
//! schedule (intended time) ──► clickevent | schemagen (seeded record) ──► records (datum, framing, key)
//!     ──► send (rdkafka, open loop) ──► delivery report ──► stats (HdrHistograms, Report)
//! ```
//!
//! Around it: [`registry`] registers the schema (Confluent REST or AWS
//! Glue) before the first record; [`topic`] creates the topic through the
//! admin API; [`run::produce`] strings a whole run together from a
//! [`config::ProduceConfig`] of typed values.
//!
//! Boundary: the producer talks to brokers and registries that are already
//! running. Starting stand-ins (the embedded broker and registry, the mock
//! cluster) is `mskbench-sim`'s, and deciding which to start is the
//! caller's (`mskbench-harness`, the CLI). The crate prints nothing: live
//! counts are on [`Control`], periodic snapshots go to a [`send::Observer`],
//! and the result is the returned [`Report`].
//!
//! Cost: generating and encoding a ClickEvent takes tens of nanoseconds,
//! against a microsecond or more for librdkafka to take it (BENCHMARKS.md,
//! "Producer").

#![warn(missing_docs)]

mod avro;
pub mod clickevent;
pub mod config;
pub mod expected;
pub mod fleet;
pub mod merge;
pub mod records;
// Rewritten on another branch (schema_registry_converter); its docs come with it.
#[allow(missing_docs)]
pub mod registry;
pub mod run;
pub mod schedule;
pub mod schemagen;
pub mod send;
pub mod stats;
pub mod topic;

pub use config::ProduceConfig;
pub use run::produce;
pub use send::Control;
pub use stats::Report;
