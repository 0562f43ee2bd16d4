//! Schema registration before the first record: Confluent REST or AWS Glue.
//!
//! Confluent: `POST {url}/subjects/<topic>-value/versions` with the schema
//! (TopicNameStrategy), answering the id the values are framed with; with
//! Avro keys, the schema `"string"` under `<topic>-key` too. The request
//! goes through `schema_registry_converter`'s async client, the workspace's
//! one Confluent REST client (the processor looks schemas up with it);
//! core's `RegistryUrl` splits the URL, and credentials in it
//! (`https://key:secret@host`) become HTTP basic auth. Glue:
//! `RegisterSchemaVersion` in the named registry under the schema named
//! after the topic; when the registry or the schema does not exist yet they
//! are created (`CreateRegistry`, `CreateSchema` with BACKWARD
//! compatibility), as the Glue serializer's auto-registration does. The
//! version's UUID frames the values.
//!
//! Boundary: network calls at start-up only, never on the send path. Both
//! time out (10 s per Confluent request; 10 s per Glue attempt, three attempts).

use std::time::Duration;

use mskbench_aws::Chain;
use mskbench_aws::glue::{GlueClient, GlueError};
use mskbench_core::registry_url::{RegistryUrl, RegistryUrlError};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use uuid::Uuid;

/// Time limit of one Confluent registry request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Time limit of one Glue attempt (three attempts at most).
const GLUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a schema could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry URL does not parse (not http(s), a query, credentials
    /// that do not decode); the error shows it redacted.
    #[error("registry URL: {0}")]
    BadUrl(#[from] RegistryUrlError),
    /// The Confluent registry refused or could not be reached.
    #[error("cannot register under subject {subject} at {url}: {detail}")]
    Confluent {
        /// The endpoint posted to, without credentials.
        url: String,
        /// The subject registered under.
        subject: String,
        /// What the client reported.
        detail: String,
    },
    /// A Glue call failed.
    #[error("AWS Glue {call} for {what} failed: {detail}")]
    Glue {
        /// The Glue operation.
        call: &'static str,
        /// The schema and registry concerned.
        what: String,
        /// The client's error: operation, endpoint, Glue's code.
        detail: String,
    },
}

/// Registers `schema` (Avro) under `subject` in the Confluent registry at
/// `url` and returns its id.
///
/// # Errors
/// [`RegistryError::BadUrl`] for a URL that is not http(s),
/// [`RegistryError::Confluent`] when the registry refuses or cannot be reached.
pub async fn register_confluent(url: &str, subject: &str, schema: &str) -> Result<u32, RegistryError> {
    let parsed = RegistryUrl::parse(url)?;
    let endpoint = format!("{}/subjects/{subject}/versions", parsed.base);
    let fail = |e: SRCError| RegistryError::Confluent {
        url: endpoint.clone(),
        subject: subject.to_owned(),
        detail: match &e.cause {
            Some(cause) => format!("{}: {cause}", e.error),
            None => e.error.clone(),
        },
    };
    let settings = sr_settings(&parsed).map_err(fail)?;
    let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
    let registered = post_schema(&settings, subject.to_owned(), supplied).await.map_err(fail)?;
    Ok(registered.id)
}

/// The client settings for `url`: its base, basic auth from its
/// credentials, the request time limit.
fn sr_settings(url: &RegistryUrl) -> Result<SrSettings, SRCError> {
    let mut builder = SrSettings::new_builder(url.base.clone());
    if let Some(user) = &url.user {
        builder.set_basic_authorization(user, url.secret.as_deref());
    }
    builder.set_timeout(TIMEOUT).build()
}

/// Where Glue is: the default AWS configuration chain, or an endpoint
/// override (moto in tests) with the region given.
#[derive(Debug, Clone, Default)]
pub struct GlueTarget {
    /// The Glue registry's name.
    pub registry: String,
    /// An endpoint override (`http://…` for moto); `None` for AWS.
    pub endpoint: Option<String>,
    /// The region; `None` takes the default chain's.
    pub region: Option<String>,
    /// The chain already resolved; `None` resolves it here.
    pub chain: Option<Chain>,
}

/// A Glue client for `target`, signing with the AWS default credential chain.
///
/// # Errors
/// [`RegistryError::Glue`] when the chain gives no region or no
/// credentials provider, or the HTTP client cannot be set up.
pub async fn glue_client(target: &GlueTarget) -> Result<GlueClient, RegistryError> {
    let fail = |detail: String| RegistryError::Glue { call: "(client setup)", what: target.registry.clone(), detail };
    let chain = match &target.chain {
        Some(chain) => chain.clone(),
        None => {
            let region = target.region.clone();
            // `--glue-region` before AWS_REGION; the rest of the chain as the process has it.
            let get = |k: &str| match k {
                "AWS_REGION" if region.is_some() => region.clone(),
                _ => std::env::var(k).ok(),
            };
            Chain::load(get).await.map_err(|e| fail(e.to_string()))?
        }
    };
    GlueClient::new(chain.access(target.endpoint.clone(), GLUE_TIMEOUT)).map_err(|e| fail(e.to_string()))
}

/// Registers `schema` (Avro) in Glue under the schema named `schema_name`
/// and returns the schema version's UUID.
///
/// # Errors
/// [`RegistryError::Glue`] naming the call that failed.
pub async fn register_glue(
    client: &GlueClient,
    registry: &str,
    schema_name: &str,
    schema: &str,
) -> Result<Uuid, RegistryError> {
    let what = format!("schema {schema_name} in registry {registry}");
    let glue_err =
        |call: &'static str, e: GlueError| RegistryError::Glue { call, what: what.clone(), detail: e.to_string() };
    match client.register_schema_version(registry, schema_name, schema).await {
        Ok(version) => Ok(version),
        Err(e) if e.is_not_found() => {
            // The registry or the schema is missing: create what is.
            match client.get_registry(registry).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {
                    client.create_registry(registry).await.map_err(|e| glue_err("CreateRegistry", e))?;
                }
                Err(e) => return Err(glue_err("GetRegistry", e)),
            }
            client.create_schema(registry, schema_name, schema).await.map_err(|e| glue_err("CreateSchema", e))
        }
        Err(e) => Err(glue_err("RegisterSchemaVersion", e)),
    }
}
