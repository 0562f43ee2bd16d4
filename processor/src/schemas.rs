//! Writer schemas from the lab's registries, for core's schema cache.
//!
//! [`Registries`] is the [`SchemaFetcher`] the handler hands to
//! `EventProcessor::process`: Confluent ids go to the Confluent REST client
//! ([`crate::confluent::ConfluentRegistry`]), Glue schema-version UUIDs to
//! [`GlueRegistry`] (`aws-sdk-glue` `GetSchemaVersion`). Core's
//! `SchemaCache` in front of it makes each schema a single fetch per
//! process (execution environment), shared by all invocations.
//!
//! Fetchers are called synchronously by the cache. The Glue client is async,
//! so [`GlueRegistry`] blocks on the runtime handle it was built on: call it
//! only from a blocking thread (`spawn_blocking`), as the handler does.
//! Cost: one HTTP round trip per schema the process has not seen.

use aws_sdk_glue::operation::get_schema_version::GetSchemaVersionError;
use aws_sdk_glue::types::{DataFormat, SchemaVersionStatus};
use mskbench_core::wire::SchemaKey;
use mskbench_core::{FetchError, FetchedSchema, SchemaFetcher};
use tokio::runtime::Handle;

use crate::confluent::ConfluentRegistry;

/// Glue Schema Registry schema versions by UUID.
#[derive(Debug, Clone)]
pub struct GlueRegistry {
    client: aws_sdk_glue::Client,
    runtime: Handle,
}

impl GlueRegistry {
    /// A fetcher calling `client` on `runtime`.
    pub fn new(client: aws_sdk_glue::Client, runtime: Handle) -> Self {
        GlueRegistry { client, runtime }
    }
}

impl SchemaFetcher for GlueRegistry {
    /// # Panics
    /// When called on an async worker thread (tokio refuses to block there).
    fn fetch(&self, key: &SchemaKey) -> Result<FetchedSchema, FetchError> {
        let SchemaKey::Glue(uuid) = key else {
            return Err(FetchError::NotFound);
        };
        let call = self.client.get_schema_version().schema_version_id(uuid.hyphenated().to_string()).send();
        let answer = self.runtime.block_on(call).map_err(|e| match e.as_service_error() {
            Some(GetSchemaVersionError::EntityNotFoundException(_)) => FetchError::NotFound,
            Some(other) => FetchError::Unavailable(format!("Glue GetSchemaVersion {uuid}: {other}")),
            None => FetchError::Unavailable(format!(
                "Glue GetSchemaVersion {uuid}: {}",
                aws_sdk_glue::error::DisplayErrorContext(&e)
            )),
        })?;
        if let Some(format) = answer.data_format().filter(|f| **f != DataFormat::Avro) {
            return Err(FetchError::Unavailable(format!("Glue schema version {uuid} is {format}, not AVRO")));
        }
        if let Some(status) = answer.status().filter(|s| **s != SchemaVersionStatus::Available) {
            return Err(FetchError::Unavailable(format!("Glue schema version {uuid} is {status}, not AVAILABLE")));
        }
        let text = answer
            .schema_definition()
            .ok_or_else(|| FetchError::Unavailable(format!("Glue schema version {uuid} has no definition")))?;
        Ok(FetchedSchema::from(text.to_owned()))
    }
}

/// Both registries of the lab, picked by the framing of each value.
#[derive(Debug, Default)]
pub struct Registries {
    pub confluent: Option<ConfluentRegistry>,
    pub glue: Option<GlueRegistry>,
}

impl SchemaFetcher for Registries {
    fn fetch(&self, key: &SchemaKey) -> Result<FetchedSchema, FetchError> {
        match key {
            SchemaKey::Confluent(_) => self.confluent.as_ref().map_or(Err(FetchError::NotFound), |r| r.fetch(key)),
            SchemaKey::Glue(_) => self.glue.as_ref().map_or(Err(FetchError::NotFound), |r| r.fetch(key)),
        }
    }
}
