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
//! What this layer adds is the error mapping core's cache keeps apart: an
//! HTTP 404 (Confluent's error codes 40401/40403) is "not found" (kept for
//! the negative TTL), a schema that is not Avro or nests references too
//! deep is "unavailable" like any transport failure (asked again later),
//! and text that does not compile is the cache's "invalid". Glue schema
//! versions are not served here ([`crate::schemas::Schemas`] sends those to
//! Glue). Cost: one HTTP round trip per schema, plus one per reference.

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
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a registry client could not be built; `url` is without credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryUrlError {
    /// The URL is not `http://` or `https://`.
    #[error("registry URL {url:?} is not an http:// or https:// URL")]
    NotHttp {
        /// The URL as given, credentials removed.
        url: String,
    },
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
        let parsed = RegistryUrl::parse(url).ok_or_else(|| RegistryUrlError::NotHttp { url: redact(url) })?;
        let settings = sr_settings(&parsed)
            .map_err(|e| RegistryUrlError::Client { url: parsed.base.clone(), detail: describe(&e) })?;
        Ok(ConfluentRegistry { settings, base: parsed.base })
    }

    /// The registry's base URL, without credentials.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Fetches the writer schema with Confluent id `id` and the texts of
    /// its references.
    ///
    /// # Errors
    /// [`FetchError::NotFound`] when the registry has no such id,
    /// [`FetchError::Unavailable`] for anything that may succeed later or
    /// that is not an Avro schema.
    pub async fn fetch(&self, id: u32) -> Result<FetchedSchema, FetchError> {
        let url = format!("{}/schemas/ids/{id}", self.base);
        let answer = get_schema_by_id(id, &self.settings).await.map_err(|e| fetch_error(&url, &e))?;
        if answer.schema_type != SchemaType::Avro {
            return Err(FetchError::Unavailable(format!("schema {id} is {:?}, not AVRO", answer.schema_type)));
        }
        let mut references = Vec::new();
        self.collect_references(&answer.references, 0, &mut references).await?;
        Ok(FetchedSchema { text: answer.schema, references })
    }

    /// Appends the texts of `refs` and of their own references, dependencies first.
    fn collect_references<'a>(
        &'a self,
        refs: &'a [RegisteredReference],
        depth: usize,
        out: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<(), FetchError>> {
        Box::pin(async move {
            if refs.is_empty() {
                return Ok(());
            }
            if depth >= MAX_REFERENCE_DEPTH {
                return Err(FetchError::Unavailable(format!(
                    "schema references nest deeper than {MAX_REFERENCE_DEPTH}"
                )));
            }
            for r in refs {
                let url = format!("{}/subjects/{}/versions/{}", self.base, r.subject, r.version);
                let answer = get_referenced_schema(&self.settings, r).await.map_err(|e| fetch_error(&url, &e))?;
                self.collect_references(&answer.references, depth + 1, out).await?;
                if !out.contains(&answer.schema) {
                    out.push(answer.schema);
                }
            }
            Ok(())
        })
    }
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

/// Not found for an HTTP 404 (or Confluent's not-found codes), otherwise
/// unavailable with what was asked and what went wrong.
fn fetch_error(url: &str, e: &SRCError) -> FetchError {
    if is_not_found(e) { FetchError::NotFound } else { FetchError::Unavailable(format!("GET {url}: {}", describe(e))) }
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

/// `scheme://host/…` with any `user:secret@` removed.
fn redact(url: &str) -> String {
    crate::config::redact_url(url)
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
}
