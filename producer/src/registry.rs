//! Schema registration before the first record: Confluent REST or AWS Glue.
//!
//! Confluent: `POST {url}/subjects/<topic>-value/versions` with the schema
//! (TopicNameStrategy), answering the id the values are framed with; with
//! Avro keys, the schema `"string"` under `<topic>-key` too. Credentials in
//! the URL (`https://key:secret@host`) become HTTP basic auth. Glue:
//! `RegisterSchemaVersion` in the named registry under the schema named
//! after the topic; when the registry or the schema does not exist yet they
//! are created (`CreateRegistry`, `CreateSchema` with BACKWARD
//! compatibility), as the Glue serializer's auto-registration does. The
//! version's UUID frames the values.
//!
//! Boundary: network calls at start-up only, never on the send path. Both
//! time out (10 s per Confluent request; the AWS SDK's defaults for Glue).

use std::time::Duration;

use aws_sdk_glue::types::{Compatibility, DataFormat, RegistryId, SchemaId};
use mskbench_core::registry_url::{RegistryUrl, path_segment};
use serde::Deserialize;
use uuid::Uuid;

/// Why a schema could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry URL {url:?} must start with http:// or https://")]
    BadUrl { url: String },
    #[error("cannot register under subject {subject} at {url}: {detail}")]
    Confluent { url: String, subject: String, detail: String },
    #[error("AWS Glue {call} for {what} failed: {detail}")]
    Glue { call: &'static str, what: String, detail: String },
    #[error("AWS Glue {call} answered without a schema version id")]
    GlueNoVersion { call: &'static str },
    #[error("AWS Glue answered schema version id {id:?}, which is not a UUID")]
    GlueBadVersion { id: String },
}

#[derive(Debug, Deserialize)]
struct Registered {
    id: u32,
}

/// Registers `schema` under `subject` in the Confluent registry at `url`
/// and returns its id.
pub fn register_confluent(url: &str, subject: &str, schema: &str) -> Result<u32, RegistryError> {
    let Some(RegistryUrl { base, basic_auth: auth }) = RegistryUrl::parse(url) else {
        return Err(RegistryError::BadUrl { url: url.to_owned() });
    };
    let endpoint = format!("{base}/subjects/{}/versions", path_segment(subject));
    let fail = |detail: String| RegistryError::Confluent { url: endpoint.clone(), subject: subject.to_owned(), detail };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string();
    let mut request = agent.post(&endpoint).header("Content-Type", "application/vnd.schemaregistry.v1+json");
    if let Some(auth) = &auth {
        request = request.header("Authorization", auth);
    }
    let mut response = request.send(body.as_str()).map_err(|e| fail(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().map_err(|e| fail(format!("reading the answer: {e}")))?;
    if status != 200 {
        return Err(fail(format!("HTTP {status}: {}", text.trim())));
    }
    serde_json::from_str::<Registered>(&text)
        .map(|r| r.id)
        .map_err(|e| fail(format!("unexpected answer {text:?}: {e}")))
}

/// Where Glue is: the default AWS configuration chain, or an endpoint
/// override (moto in tests) with the region given.
#[derive(Debug, Clone, Default)]
pub struct GlueTarget {
    pub registry: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// A Glue client for `target`.
pub async fn glue_client(target: &GlueTarget) -> aws_sdk_glue::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &target.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = &target.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let config = loader.load().await;
    aws_sdk_glue::Client::new(&config)
}

/// Registers `schema` (Avro) in Glue under the schema named `schema_name`
/// and returns the schema version's UUID.
pub async fn register_glue(
    client: &aws_sdk_glue::Client,
    registry: &str,
    schema_name: &str,
    schema: &str,
) -> Result<Uuid, RegistryError> {
    let what = format!("schema {schema_name} in registry {registry}");
    let glue_err = |call: &'static str, detail: String| RegistryError::Glue { call, what: what.clone(), detail };
    let registered = client
        .register_schema_version()
        .schema_id(SchemaId::builder().registry_name(registry).schema_name(schema_name).build())
        .schema_definition(schema)
        .send()
        .await;
    let id = match registered {
        Ok(out) => out
            .schema_version_id()
            .map(str::to_owned)
            .ok_or(RegistryError::GlueNoVersion { call: "RegisterSchemaVersion" })?,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => {
            // The registry or the schema is missing: create what is.
            let registry_missing = client
                .get_registry()
                .registry_id(RegistryId::builder().registry_name(registry).build())
                .send()
                .await
                .is_err_and(|e| e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()));
            if registry_missing {
                client.create_registry().registry_name(registry).send().await.map_err(|e| {
                    glue_err("CreateRegistry", aws_sdk_glue::error::DisplayErrorContext(&e).to_string())
                })?;
            }
            let created = client
                .create_schema()
                .registry_id(RegistryId::builder().registry_name(registry).build())
                .schema_name(schema_name)
                .data_format(DataFormat::Avro)
                .compatibility(Compatibility::Backward)
                .schema_definition(schema)
                .send()
                .await
                .map_err(|e| glue_err("CreateSchema", aws_sdk_glue::error::DisplayErrorContext(&e).to_string()))?;
            created
                .schema_version_id()
                .map(str::to_owned)
                .ok_or(RegistryError::GlueNoVersion { call: "CreateSchema" })?
        }
        Err(e) => {
            return Err(glue_err("RegisterSchemaVersion", aws_sdk_glue::error::DisplayErrorContext(&e).to_string()));
        }
    };
    Uuid::parse_str(&id).map_err(|_| RegistryError::GlueBadVersion { id })
}
