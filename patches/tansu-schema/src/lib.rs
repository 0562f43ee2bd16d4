//! A stand-in for `tansu-schema` 0.6, put in its place by the workspace's
//! `[patch.crates-io]`.
//!
//! tansu's broker can validate produced records against schemas it keeps
//! itself and copy them into a lake house (Iceberg, Delta, Parquet). The
//! embedded broker of mskbench does neither: it never configures a broker-side
//! registry or lake, and the schema registry of the pipeline is a separate
//! service (Confluent or Glue) that the producer and processor call. But
//! `tansu-storage` and `tansu-broker` depend on `tansu-schema` without a
//! feature to turn it off, and it brings rhai (compiled twice, once for a
//! build script), protobuf-parse and a second apache-avro: about 160 s of
//! the 1,505 s of compile units in a cold release build of the CLI
//! (BENCHMARKS.md, "Cold build of the main job").
//!
//! So this crate keeps only the names those two crates use, with types that
//! have no values: [`Registry`] and [`lake::House`] are empty enums. Every
//! `Option<Registry>` in tansu is therefore `None`, the validation and lake
//! branches are dead code the compiler can prove dead, and a future tansu
//! release that constructs one will not compile against this crate rather
//! than silently skip validation. Drop the patch once tansu makes the
//! registry optional.

use std::fmt::{self, Display, Formatter};

use tansu_sans_io::ErrorCode;
use tansu_sans_io::record::inflated::Batch;

/// Errors of schema validation. Only [`Error::Api`] exists, as tansu-storage
/// matches on it; no value of this type is ever made, because nothing here
/// can run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kafka error code for the client.
    Api(ErrorCode),
}

impl Display for Error {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(code) => write!(f, "schema validation: {code:?}"),
        }
    }
}

/// The result of schema validation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A broker-side schema registry. It has no values: the embedded broker
/// never validates records (see the crate header).
#[derive(Clone, Debug)]
pub enum Registry {}

impl Registry {
    /// Validates a batch produced to `topic`; never called, as no registry
    /// exists.
    pub async fn validate(&self, _topic: &str, _batch: &Batch) -> Result<()> {
        match *self {}
    }
}

/// The lake houses tansu can copy topics into; none, here.
pub mod lake {
    use tansu_sans_io::describe_configs_response::DescribeConfigsResult;
    use tansu_sans_io::record::inflated::Batch;

    use crate::Result;

    /// A lake house. It has no values (see the crate header).
    #[derive(Clone, Debug)]
    pub enum House {}

    /// What tansu-storage calls on a lake house.
    pub trait LakeHouse {
        /// Stores a batch of records.
        fn store(
            &self,
            topic: &str,
            partition: i32,
            offset: i64,
            inflated: &Batch,
            config: DescribeConfigsResult,
        ) -> impl Future<Output = Result<()>> + Send;

        /// Runs periodic maintenance.
        fn maintain(&self) -> impl Future<Output = Result<()>> + Send;
    }

    impl LakeHouse for House {
        async fn store(
            &self,
            _topic: &str,
            _partition: i32,
            _offset: i64,
            _inflated: &Batch,
            _config: DescribeConfigsResult,
        ) -> Result<()> {
            match *self {}
        }

        async fn maintain(&self) -> Result<()> {
            match *self {}
        }
    }
}
