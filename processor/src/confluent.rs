//! Writer schemas by id from a Confluent-compatible registry.
//!
//! A thin layer over `schema_registry_converter`'s async client (the one
//! Confluent REST client of the workspace; the producer registers through
//! it too): `GET {url}/schemas/ids/{id}`, then the schema's references
//! from `GET {url}/subjects/{subject}/versions/{version}`, dependencies
//! first, as [`mskbench_core::FetchedSchema`] wants them. Credentials in
//! the URL (`https://key:secret@host`) are split off by core's
//! [`RegistryUrl`] and become HTTP basic auth, as Confluent's own clients
//! accept them; the URLs in error messages never carry them. Requests time
//! out after 10 s.
//!
//! What this layer adds is the error mapping core's cache keeps apart, by
//! whether asking again could ever give a usable schema:
//!
//! | answer | [`FetchError`] | record's reason |
//! |---|---|---|
//! | HTTP 404 (Confluent's 40401/40403) | `NotFound` (kept 30 s) | `unknown_schema` |
//! | a `schemaType` other than `AVRO` (JSON, PROTOBUF) | `Unusable` | `invalid_schema` |
//! | a 200 whose body is not a registered schema (not JSON, no `schema`) | `Unusable` | `invalid_schema` |
//! | references nested deeper than 16, or in a cycle | `Unusable` | `invalid_schema` |
//! | no answer, a timeout, 5xx, 429, any other status | `Unavailable` (kept 5 s) | `schema_unavailable` |
//!
//! Text that does not compile is the cache's own "invalid". An id names one
//! schema forever, so the unusable answers are permanent: their records are
//! rejected and the batch goes on, where an `Unavailable` would fail every
//! redelivery of it. Other 4xx (401, 403: credentials) stay unavailable:
//! they are the deployment's fault, not the record's, and pass once fixed.
//! Glue schema versions are not served here ([`crate::schemas::Schemas`]
//! sends those to Glue). Cost: one HTTP round trip per schema, plus one per
//! reference.

use std::error::Error as _;
use std::time::Duration;

use futures_util::future::BoxFuture;
use mskbench_core::registry_url::RegistryUrl;
use mskbench_core::{FetchError, FetchedSchema};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, get_referenced_schema, get_schema_by_id};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{RawError, RegisteredReference, SchemaType};

/// Deepest chain of schema references followed.
const MAX_REFERENCE_DEPTH: usize = 16;
/// Time limit of one registry request.
const TIMEOUT: Duration = crate::config::REGISTRY_TIMEOUT;

/// Why a registry client could not be built; `url` is without credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryUrlError {
    /// The URL does not parse as a registry URL (not http(s), a query,
    /// credentials that do not decode); the error shows it redacted.
    #[error("registry URL: {0}")]
    Parse(#[from] mskbench_core::registry_url::RegistryUrlError),
    /// The HTTP client refused the settings.
    #[error("registry URL {url:?}: cannot build the HTTP client: {detail}")]
    Client {
        /// The registry's base URL.
        url: String,
        /// The client's error.
        detail: String,
    },
}

/// Fetches writer schemas from a Confluent-compatible registry.
#[derive(Debug, Clone)]
pub struct ConfluentRegistry {
    settings: SrSettings,
    /// The base URL without credentials, for messages.
    base: String,
}

impl ConfluentRegistry {
    /// A client for the registry at `url` (`http://` or `https://`). Opens
    /// no connection.
    ///
    /// # Errors
    /// [`RegistryUrlError`] when `url` is not an http(s) URL.
    pub fn new(url: &str) -> Result<Self, RegistryUrlError> {
        ConfluentRegistry::with_timeout(url, TIMEOUT)
    }

    /// The registry's base URL, without credentials.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client whose requests time out after `timeout` (connect and
    /// read), where [`ConfluentRegistry::new`] takes 10 s.
    ///
    /// # Errors
    /// [`RegistryUrlError`] when `url` is not an http(s) URL.
    pub(crate) fn with_timeout(url: &str, timeout: Duration) -> Result<Self, RegistryUrlError> {
        let parsed = RegistryUrl::parse(url)?;
        let settings = sr_settings(&parsed, timeout)
            .map_err(|e| RegistryUrlError::Client { url: parsed.base.clone(), detail: describe(&e) })?;
        Ok(ConfluentRegistry { settings, base: parsed.base })
    }

    /// Fetches the writer schema with Confluent id `id` and the texts of
    /// its references.
    ///
    /// # Errors
    /// [`FetchError::NotFound`] when the registry has no such id,
    /// [`FetchError::Unusable`] when its answer can never be an Avro
    /// schema (see the module docs), [`FetchError::Unavailable`] for
    /// anything that may succeed later.
    pub async fn fetch(&self, id: u32) -> Result<FetchedSchema, FetchError> {
        let url = format!("{}/schemas/ids/{id}", self.base);
        let answer = get_schema_by_id(id, &self.settings).await.map_err(|e| fetch_error(&url, &e))?;
        if answer.schema_type != SchemaType::Avro {
            return Err(FetchError::Unusable(format!(
                "GET {url}: schema {id} is {}, not AVRO",
                type_name(&answer.schema_type)
            )));
        }
        let mut references = Vec::new();
        let mut chain = Vec::new();
        self.collect_references(&answer.references, &mut chain, &mut references).await?;
        Ok(FetchedSchema { text: answer.schema, references })
    }

    /// Appends the texts of `refs` and of their own references, dependencies
    /// first. `chain` holds the references being followed down to here: one
    /// met again is a cycle, which no registry answer can end.
    fn collect_references<'a>(
        &'a self,
        refs: &'a [RegisteredReference],
        chain: &'a mut Vec<(String, u32)>,
        out: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            if refs.is_empty() {
                return Ok(());
            }
            if chain.len() >= MAX_REFERENCE_DEPTH {
                return Err(FetchError::Unusable(format!(
                    "schema references nest deeper than {MAX_REFERENCE_DEPTH} (under {} version {})",
                    chain[0].0, chain[0].1
                )));
            }
            for r in refs {
                let url = format!("{}/subjects/{}/versions/{}", self.base, r.subject, r.version);
                if chain.iter().any(|(subject, version)| *subject == r.subject && *version == r.version) {
                    return Err(FetchError::Unusable(format!(
                        "schema references form a cycle: {} version {} refers back to itself",
                        r.subject, r.version
                    )));
                }
                let answer = get_referenced_schema(&self.settings, r).await.map_err(|e| fetch_error(&url, &e))?;
                if answer.schema_type != SchemaType::Avro {
                    return Err(FetchError::Unusable(format!(
                        "GET {url}: the referenced schema is {}, not AVRO",
                        type_name(&answer.schema_type)
                    )));
                }
                chain.push((r.subject.clone(), r.version));
                let nested = self.collect_references(&answer.references, chain, out).await;
                chain.pop();
                nested?;
                if !out.contains(&answer.schema) {
                    out.push(answer.schema);
                }
            }
            Ok(())
        })
    }
}

/// `schemaType` as the registry spells it.
fn type_name(t: &SchemaType) -> String {
    match t {
        SchemaType::Avro => "AVRO".to_owned(),
        SchemaType::Protobuf => "PROTOBUF".to_owned(),
        SchemaType::Json => "JSON".to_owned(),
        SchemaType::Other(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// The client settings for `url`: its base, basic auth from its
/// credentials, the request time limit.
fn sr_settings(url: &RegistryUrl, timeout: Duration) -> Result<SrSettings, SRCError> {
    let mut builder = SrSettings::new_builder(url.base.clone());
    if let Some(user) = &url.user {
        builder.set_basic_authorization(user, url.secret.as_deref());
    }
    builder.set_timeout(timeout).build()
}

/// Not found for an HTTP 404 (or Confluent's not-found codes), unusable
/// for a 200 that is not a registered schema, otherwise unavailable; with
/// what was asked and what went wrong.
fn fetch_error(url: &str, e: &SRCError) -> FetchError {
    if is_not_found(e) {
        FetchError::NotFound
    } else if is_not_a_schema(e) {
        FetchError::Unusable(format!("GET {url}: the answer is not a registered schema: {}", describe(e)))
    } else {
        FetchError::Unavailable(format!("GET {url}: {}", describe(e)))
    }
}

/// A successful answer whose body is not a registered schema: JSON that
/// did not parse into one (the client wraps a `serde_json` error; a body
/// cut short by the network is a transport error instead), or one without
/// the schema's text or id. The client names these two by message only.
fn is_not_a_schema(e: &SRCError) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<serde_json::Error>() {
            return true;
        }
        source = s.source();
    }
    matches!(e.error.as_str(), "Could not get raw schema from response" | "Could not get id from response")
}

fn is_not_found(e: &SRCError) -> bool {
    let code = e.source().and_then(|s| s.downcast_ref::<RawError>()).map(|r| r.error_code);
    matches!(code, Some(40401 | 40403)) || e.error.contains("status 404")
}

/// The client's error and its cause, without its retriable/cached flags.
fn describe(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_leave_the_base() {
        let r = ConfluentRegistry::new("https://key:secret@registry.example:8081/base/").unwrap();
        assert_eq!(r.base(), "https://registry.example:8081/base");
        assert!(!format!("{r:?}").contains("secret"), "{r:?}");
    }

    #[test]
    fn plain_urls_keep_their_host_and_drop_trailing_slashes() {
        let r = ConfluentRegistry::new("http://127.0.0.1:8081/").unwrap();
        assert_eq!(r.base(), "http://127.0.0.1:8081");
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(ConfluentRegistry::new("ftp://x").is_err());
        assert!(ConfluentRegistry::new("localhost:8081").is_err());
        let err = ConfluentRegistry::new("ftp://u:pw@x").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    /// `RawError` is non-exhaustive: build it as the client does, from JSON.
    fn raw(json: &str) -> RawError {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_404_is_not_found_and_anything_else_unavailable() {
        let not_found = SRCError::non_retryable_with_cause(
            raw(r#"{"error_code":40403,"message":"Schema not found"}"#),
            "HTTP request to schema registry failed with status 404 Not Found",
        );
        assert_eq!(fetch_error("http://r/schemas/ids/1", &not_found), FetchError::NotFound);
        let down = SRCError::retryable_with_cause(
            raw(r#"{"error_code":50301,"message":"busy"}"#),
            "HTTP request to schema registry failed with status 503 Service Unavailable",
        );
        let FetchError::Unavailable(text) = fetch_error("http://r/schemas/ids/1", &down) else { panic!() };
        assert!(text.starts_with("GET http://r/schemas/ids/1: HTTP request"), "{text}");
        assert!(text.contains("busy"), "{text}");
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_unavailable_not_missing() {
        // Port 9 (discard) on loopback is closed on the test machines.
        let r = ConfluentRegistry::new("http://127.0.0.1:9").unwrap();
        assert!(matches!(r.fetch(1).await, Err(FetchError::Unavailable(_))));
    }

    use crate::test_registry::{Reply, serve};

    const RECORD: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;

    /// A registered schema's answer: `schema` with `refs` as (subject, version).
    fn registered(id: u32, schema_type: &str, refs: &[(&str, u32)]) -> String {
        let references: Vec<_> =
            refs.iter().map(|(s, v)| serde_json::json!({ "name": s, "subject": s, "version": v })).collect();
        serde_json::json!({ "id": id, "schemaType": schema_type, "schema": RECORD, "references": references })
            .to_string()
    }

    #[tokio::test]
    async fn a_non_avro_schema_type_is_permanent_not_unavailable() {
        for schema_type in ["JSON", "PROTOBUF", "XML"] {
            let body = registered(1, schema_type, &[]);
            let stub = serve(move |_| Reply::now(200, body.clone())).await;
            let answer = ConfluentRegistry::new(&stub.url).unwrap().fetch(1).await;
            let Err(FetchError::Unusable(text)) = &answer else { panic!("{schema_type}: {answer:?}") };
            assert!(text.contains(&format!("schema 1 is {schema_type}, not AVRO")), "{text}");
        }
    }

    #[tokio::test]
    async fn a_200_whose_body_is_not_a_schema_is_permanent_not_unavailable() {
        for body in
            ["<html>captive portal</html>", "{}", r#"{"schema": 5}"#, "[1,2]", r#"{"id":1,"schemaType":"AVRO"}"#]
        {
            let stub = serve(move |_| Reply::now(200, body)).await;
            let answer = ConfluentRegistry::new(&stub.url).unwrap().fetch(1).await;
            let Err(FetchError::Unusable(text)) = &answer else { panic!("{body}: {answer:?}") };
            assert!(text.contains("/schemas/ids/1: the answer is not a registered schema"), "{text}");
        }
    }

    #[tokio::test]
    async fn cyclic_references_are_permanent_and_asked_once_each() {
        // 1 → a/1 → b/1 → a/1 → …
        let stub = serve(|path| match path {
            p if p.starts_with("/schemas/ids/1") => Reply::now(200, registered(1, "AVRO", &[("a", 1)])),
            "/subjects/a/versions/1" => Reply::now(200, registered(2, "AVRO", &[("b", 1)])),
            "/subjects/b/versions/1" => Reply::now(200, registered(3, "AVRO", &[("a", 1)])),
            _ => Reply::now(404, r#"{"error_code":40401,"message":"no"}"#),
        })
        .await;
        let answer = ConfluentRegistry::new(&stub.url).unwrap().fetch(1).await;
        let Err(FetchError::Unusable(text)) = &answer else { panic!("{answer:?}") };
        assert!(text.contains("cycle: a version 1"), "{text}");
        assert_eq!(stub.requests(), 3, "the cycle is seen, not walked to the depth limit");
    }

    #[tokio::test]
    async fn references_nested_too_deep_are_permanent_not_unavailable() {
        // 1 → s1/1 → s2/1 → s3/1 → …, never ending.
        let stub = serve(|path| {
            let next = |n: u32| Reply::now(200, registered(n + 1, "AVRO", &[(format!("s{n}").as_str(), 1)]));
            match path.strip_prefix("/subjects/s").and_then(|p| p.strip_suffix("/versions/1")) {
                Some(n) => next(n.parse::<u32>().unwrap() + 1),
                None => next(1),
            }
        })
        .await;
        let answer = ConfluentRegistry::new(&stub.url).unwrap().fetch(1).await;
        let Err(FetchError::Unusable(text)) = &answer else { panic!("{answer:?}") };
        assert!(text.contains("nest deeper than 16"), "{text}");
        assert_eq!(stub.requests(), 1 + MAX_REFERENCE_DEPTH);
    }

    #[tokio::test]
    async fn throttling_server_errors_and_refused_credentials_stay_unavailable() {
        for status in [429, 500, 502, 503, 401, 403] {
            let stub = serve(move |_| Reply::now(status, r#"{"error_code":0,"message":"try later"}"#)).await;
            let answer = ConfluentRegistry::new(&stub.url).unwrap().fetch(1).await;
            assert!(matches!(answer, Err(FetchError::Unavailable(_))), "{status}: {answer:?}");
        }
    }

    #[tokio::test]
    async fn a_registry_that_never_answers_is_unavailable_after_the_timeout() {
        let stub = serve(|_| Reply::Never).await;
        let registry = ConfluentRegistry::with_timeout(&stub.url, Duration::from_millis(200)).unwrap();
        let answer = registry.fetch(1).await;
        assert!(matches!(answer, Err(FetchError::Unavailable(_))), "{answer:?}");
        assert_eq!(stub.requests(), 1);
    }
}
