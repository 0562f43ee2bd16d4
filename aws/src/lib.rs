//! The AWS calls mskbench makes besides Firehose: the Glue Schema Registry
//! and S3 objects.
//!
//! Why not the SDK crates: mskbench needs five Glue operations and three S3
//! ones, a few times per run. `aws-sdk-glue` compiles the whole Glue API
//! (283 s of the 1,918 s summed over all units of a cold release build of
//! the CLI on the 2-core build machine) and `aws-sdk-s3` the whole S3 API
//! (123 s), for calls that are not on any hot path (BENCHMARKS.md, "Cold
//! build"). The hard parts are still other people's maintained code:
//! [`glue`] signs with `aws-sigv4` (the SDK's own signer) and sends with
//! `reqwest`; [`s3`] is `object_store`'s S3 client, which the embedded
//! broker already builds. Firehose stays on `aws-sdk-firehose`: its calls
//! are the hot path, and the SDK's retry-free client is what is measured.
//!
//! Credentials come from any `aws-credential-types` provider: [`chain`]
//! resolves `aws-config`'s default chain once, cached, for every AWS client
//! of mskbench; [`Chain::fixed`] gives static keys for stand-ins and tests.
//! Both clients take an optional endpoint override (`http://` allowed) for
//! moto and stand-ins; without one they reach the region's AWS endpoint.

#![warn(missing_docs)]

pub mod chain;
pub mod glue;
pub mod s3;
mod sign;

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
pub use chain::{Chain, ChainError, Endpoints};

/// Where and as whom a client calls AWS.
#[derive(Debug, Clone)]
pub struct Access {
    /// The AWS region, such as `us-east-1`: part of the signature and of the
    /// default endpoint.
    pub region: String,
    /// Who signs the calls.
    pub credentials: SharedCredentialsProvider,
    /// An endpoint override (moto, a stand-in); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// How long one attempt (connect, send, answer) may take.
    pub timeout: Duration,
}
