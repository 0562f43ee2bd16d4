//! The Glue Schema Registry operations mskbench uses, as plain AWS JSON 1.1
//! calls: `GetSchemaVersion` (the processor's schema fetch) and
//! `RegisterSchemaVersion`, `GetRegistry`, `CreateRegistry`, `CreateSchema`
//! (the producer's registration).
//!
//! Each call is `POST /` with `X-Amz-Target: AWSGlue.<Operation>` and a JSON
//! body, signed for the service `glue` ([`crate::sign`]). Field names are
//! Glue's (`SchemaVersionId`, `SchemaDefinition`, …); errors arrive as a
//! JSON body with `__type` (or the `x-amzn-ErrorType` header) and a message,
//! and become a [`GlueError`] that names the operation, the endpoint and
//! Glue's error code. Transport failures, 5xx answers and throttling are
//! tried [`ATTEMPTS`] times with a short doubling pause, as the SDK's
//! standard retry mode does; everything else is answered at once.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Access;
use crate::sign::{error_chain, sign_request};

/// Attempts per call for transport failures, 5xx and throttling.
pub const ATTEMPTS: u32 = 3;

/// Pause before the second attempt; doubled before each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// A failed Glue call.
#[derive(Debug, thiserror::Error)]
#[error("Glue {operation} at {endpoint}: {kind}")]
pub struct GlueError {
    /// The operation, such as `GetSchemaVersion`.
    pub operation: &'static str,
    /// The endpoint called (an AWS endpoint or an override; never secret).
    pub endpoint: String,
    /// What went wrong.
    pub kind: GlueErrorKind,
}

/// What went wrong in a [`GlueError`].
#[derive(Debug, thiserror::Error)]
pub enum GlueErrorKind {
    /// Glue answered with an error, such as `EntityNotFoundException`.
    #[error("HTTP {status} {code}: {message}")]
    Service {
        /// The HTTP status.
        status: u16,
        /// Glue's error code, without its namespace.
        code: String,
        /// Glue's message.
        message: String,
    },
    /// No answer: connection refused, timed out, TLS failure.
    #[error("{0}")]
    Transport(String),
    /// The call could not be signed (no credentials, for one).
    #[error("{0}")]
    Sign(String),
    /// A 200 whose body is not the operation's answer.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl GlueError {
    /// Glue's error code when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            GlueErrorKind::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether Glue said the registry, schema or version does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some("EntityNotFoundException")
    }

    /// Whether another attempt may succeed: transport failures, 5xx and
    /// throttling.
    fn is_retryable(&self) -> bool {
        match &self.kind {
            GlueErrorKind::Transport(_) => true,
            GlueErrorKind::Service { status, code, .. } => *status >= 500 || code == "ThrottlingException",
            GlueErrorKind::Sign(_) | GlueErrorKind::Decode(_) => false,
        }
    }
}

/// A schema version as `GetSchemaVersion` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SchemaVersion {
    /// The schema text (`SchemaDefinition`).
    #[serde(rename = "SchemaDefinition")]
    pub definition: Option<String>,
    /// `AVRO`, `JSON` or `PROTOBUF` (`DataFormat`).
    #[serde(rename = "DataFormat")]
    pub data_format: Option<String>,
    /// `AVAILABLE`, `PENDING`, `FAILURE` or `DELETING` (`Status`).
    #[serde(rename = "Status")]
    pub status: Option<String>,
}

/// A Glue client: one HTTP connection pool, one signer.
#[derive(Debug, Clone)]
pub struct GlueClient {
    access: Access,
    endpoint: String,
    http: reqwest::Client,
}

impl GlueClient {
    /// A client for `access`: its endpoint override, or
    /// `https://glue.<region>.amazonaws.com`. Opens no connection.
    pub fn new(access: Access) -> Result<GlueClient, GlueError> {
        let endpoint = match &access.endpoint {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => default_endpoint(&access.region),
        };
        let http = reqwest::Client::builder()
            .timeout(access.timeout)
            .connect_timeout(access.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| GlueError {
                operation: "(client setup)",
                endpoint: endpoint.clone(),
                kind: GlueErrorKind::Transport(error_chain(&e)),
            })?;
        Ok(GlueClient { access, endpoint, http })
    }

    /// The endpoint this client calls.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `GetSchemaVersion` by schema-version UUID.
    pub async fn get_schema_version(&self, id: Uuid) -> Result<SchemaVersion, GlueError> {
        self.call("GetSchemaVersion", &json!({ "SchemaVersionId": id.hyphenated().to_string() })).await
    }

    /// `RegisterSchemaVersion`: adds `definition` to an existing schema (or
    /// finds the version already holding it) and returns its UUID.
    pub async fn register_schema_version(
        &self,
        registry: &str,
        schema_name: &str,
        definition: &str,
    ) -> Result<Uuid, GlueError> {
        let input = json!({
            "SchemaId": { "RegistryName": registry, "SchemaName": schema_name },
            "SchemaDefinition": definition,
        });
        let answer: VersionId = self.call("RegisterSchemaVersion", &input).await?;
        answer.uuid("RegisterSchemaVersion", &self.endpoint)
    }

    /// `GetRegistry`: `Ok` when the registry exists.
    pub async fn get_registry(&self, registry: &str) -> Result<(), GlueError> {
        let _: Value = self.call("GetRegistry", &json!({ "RegistryId": { "RegistryName": registry } })).await?;
        Ok(())
    }

    /// `CreateRegistry`.
    pub async fn create_registry(&self, registry: &str) -> Result<(), GlueError> {
        let _: Value = self.call("CreateRegistry", &json!({ "RegistryName": registry })).await?;
        Ok(())
    }

    /// `CreateSchema` for an Avro schema with `BACKWARD` compatibility (the
    /// lab's), returning its first version's UUID.
    pub async fn create_schema(&self, registry: &str, schema_name: &str, definition: &str) -> Result<Uuid, GlueError> {
        let input = json!({
            "RegistryId": { "RegistryName": registry },
            "SchemaName": schema_name,
            "DataFormat": "AVRO",
            "Compatibility": "BACKWARD",
            "SchemaDefinition": definition,
        });
        let answer: VersionId = self.call("CreateSchema", &input).await?;
        answer.uuid("CreateSchema", &self.endpoint)
    }

    /// One operation, with [`ATTEMPTS`] tries for what may pass on retry.
    async fn call<T: DeserializeOwned>(&self, operation: &'static str, input: &Value) -> Result<T, GlueError> {
        let body = input.to_string().into_bytes();
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            match self.attempt(operation, body.clone()).await {
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    /// One signed request and its answer.
    async fn attempt<T: DeserializeOwned>(&self, operation: &'static str, body: Vec<u8>) -> Result<T, GlueError> {
        let fail = |kind| GlueError { operation, endpoint: self.endpoint.clone(), kind };
        let mut request = self.request(operation, body).map_err(|e| fail(GlueErrorKind::Sign(e)))?;
        sign_request(&self.access, "glue", &mut request).await.map_err(|e| fail(GlueErrorKind::Sign(e.to_string())))?;
        let request = reqwest::Request::try_from(request).map_err(|e| fail(GlueErrorKind::Sign(error_chain(&e))))?;
        let response = self.http.execute(request).await.map_err(|e| fail(GlueErrorKind::Transport(error_chain(&e))))?;
        let status = response.status().as_u16();
        let header_code = response.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.bytes().await.map_err(|e| fail(GlueErrorKind::Transport(error_chain(&e))))?;
        if status == 200 {
            return serde_json::from_slice(&text)
                .map_err(|e| fail(GlueErrorKind::Decode(format!("{e}: {}", String::from_utf8_lossy(&text)))));
        }
        Err(fail(service_error(status, header_code.as_deref(), &text)))
    }

    /// The unsigned HTTP request of one call.
    fn request(&self, operation: &str, body: Vec<u8>) -> Result<http::Request<Vec<u8>>, String> {
        let url = format!("{}/", self.endpoint);
        let uri: http::Uri = url.parse().map_err(|e| format!("bad endpoint {url}: {e}"))?;
        let host = uri.authority().map(|a| a.as_str().to_owned()).ok_or_else(|| format!("no host in {url}"))?;
        http::Request::post(uri)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-target", format!("AWSGlue.{operation}"))
            .body(body)
            .map_err(|e| e.to_string())
    }
}

/// `https://glue.<region>.amazonaws.com` (`.com.cn` in the China regions).
fn default_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("https://glue.{region}.{suffix}")
}

/// An AWS JSON 1.1 error answer: the code from `__type` (or the
/// `x-amzn-ErrorType` header), namespace and suffix stripped.
fn service_error(status: u16, header_code: Option<&str>, body: &[u8]) -> GlueErrorKind {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let raw = parsed.get("__type").and_then(Value::as_str).or(header_code).unwrap_or("UnknownError");
    let code = raw.rsplit('#').next().unwrap_or(raw).split(':').next().unwrap_or(raw).to_owned();
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| parsed.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    GlueErrorKind::Service { status, code, message }
}

/// The `SchemaVersionId` of `RegisterSchemaVersion` and `CreateSchema`.
#[derive(Deserialize)]
struct VersionId {
    #[serde(rename = "SchemaVersionId")]
    id: Option<String>,
}

impl VersionId {
    fn uuid(self, operation: &'static str, endpoint: &str) -> Result<Uuid, GlueError> {
        let fail = |detail: String| GlueError {
            operation,
            endpoint: endpoint.to_owned(),
            kind: GlueErrorKind::Decode(detail),
        };
        let id = self.id.ok_or_else(|| fail("no SchemaVersionId".to_owned()))?;
        Uuid::parse_str(&id).map_err(|_| fail(format!("SchemaVersionId {id:?} is not a UUID")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_lose_their_namespace_and_suffix() {
        let body = br#"{"__type":"com.amazonaws.glue#EntityNotFoundException:http://x","Message":"no such schema"}"#;
        let kind = service_error(400, None, body);
        let GlueErrorKind::Service { status, code, message } = kind else { panic!("{kind:?}") };
        assert_eq!((status, code.as_str(), message.as_str()), (400, "EntityNotFoundException", "no such schema"));
    }

    #[test]
    fn the_header_names_the_error_when_the_body_does_not() {
        let kind = service_error(503, Some("ServiceUnavailable"), b"<html>busy</html>");
        let GlueErrorKind::Service { code, message, .. } = kind else { panic!("{kind:?}") };
        assert_eq!((code.as_str(), message.as_str()), ("ServiceUnavailable", "<html>busy</html>"));
    }

    #[test]
    fn only_transport_5xx_and_throttling_are_retried() {
        let error = |kind| GlueError { operation: "GetSchemaVersion", endpoint: "e".into(), kind };
        let service = |status, code: &str| GlueErrorKind::Service { status, code: code.into(), message: String::new() };
        assert!(error(GlueErrorKind::Transport("refused".into())).is_retryable());
        assert!(error(service(500, "InternalServiceException")).is_retryable());
        assert!(error(service(400, "ThrottlingException")).is_retryable());
        assert!(!error(service(400, "EntityNotFoundException")).is_retryable());
        assert!(!error(service(400, "AccessDeniedException")).is_retryable());
        assert!(!error(GlueErrorKind::Decode("x".into())).is_retryable());
        assert!(error(service(400, "EntityNotFoundException")).is_not_found());
    }

    #[test]
    fn the_default_endpoint_is_the_regions() {
        assert_eq!(default_endpoint("eu-west-1"), "https://glue.eu-west-1.amazonaws.com");
        assert_eq!(default_endpoint("cn-north-1"), "https://glue.cn-north-1.amazonaws.com.cn");
    }
}
