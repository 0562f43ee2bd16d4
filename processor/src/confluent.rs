//! A minimal Confluent Schema Registry client: writer schemas by id.
//!
//! `GET {url}/schemas/ids/{id}` answers `{"schema": "<schema JSON text>",
//! "references": [{"name", "subject", "version"}]}`; references are fetched
//! from `GET {url}/subjects/{subject}/versions/{version}`, dependencies
//! first, as [`mskbench_core::FetchedSchema`] wants them. Credentials in the
//! URL (`https://key:secret@host`) become HTTP basic auth, as Confluent's own
//! clients accept them. Requests time out after 10 s; a 404 (or Confluent's
//! error codes 40403/40401) is "not found", anything else that fails is
//! "unavailable" and will be asked again.
//!
//! Glue schema versions are not served here: a Glue key gets "not found"
//! ([`crate::schemas::Registries`] sends those to Glue). Calls block: run
//! them off the async threads (the handler decodes in `spawn_blocking`).
//! Credentials are moved out of the URL into a header at construction, so
//! the URLs in error messages never carry them.

use std::time::Duration;

use mskbench_core::registry_url::{RegistryUrl, path_segment};
use mskbench_core::wire::SchemaKey;
use mskbench_core::{FetchError, FetchedSchema, SchemaFetcher};
use serde::Deserialize;

/// Deepest chain of schema references followed.
const MAX_REFERENCE_DEPTH: usize = 16;

/// A registry URL that is not http(s); credentials are left out of `url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry URL {url:?} is not an http:// or https:// URL")]
pub struct RegistryUrlError {
    pub url: String,
}

/// Fetches writer schemas from a Confluent-compatible registry.
#[derive(Debug)]
pub struct ConfluentRegistry {
    base: String,
    auth: Option<String>,
    agent: ureq::Agent,
}

#[derive(Debug, Deserialize)]
struct SchemaResponse {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    subject: String,
    version: i64,
}

impl ConfluentRegistry {
    /// A client for the registry at `url` (`http://` or `https://`).
    ///
    /// # Errors
    /// [`RegistryUrlError`] when `url` is not an http(s) URL.
    pub fn new(url: &str) -> Result<Self, RegistryUrlError> {
        let Some(RegistryUrl { base, basic_auth: auth }) = RegistryUrl::parse(url) else {
            return Err(RegistryUrlError { url: crate::config::redact_url(url) });
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(ConfluentRegistry { base, auth, agent })
    }

    fn get(&self, path: &str) -> Result<SchemaResponse, FetchError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url).header("Accept", "application/vnd.schemaregistry.v1+json");
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().map_err(|e| FetchError::Unavailable(format!("GET {url}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| FetchError::Unavailable(format!("GET {url}: reading the answer: {e}")))?;
        match status {
            200 => serde_json::from_str(&body)
                .map_err(|e| FetchError::Unavailable(format!("GET {url}: unexpected answer: {e}"))),
            404 => Err(FetchError::NotFound),
            _ => Err(FetchError::Unavailable(format!("GET {url}: HTTP {status}: {}", body.trim()))),
        }
    }

    /// Appends the texts of `refs` and of their own references, dependencies first.
    fn collect_references(&self, refs: &[Reference], depth: usize, out: &mut Vec<String>) -> Result<(), FetchError> {
        if depth > MAX_REFERENCE_DEPTH {
            return Err(FetchError::Unavailable(format!("schema references nest deeper than {MAX_REFERENCE_DEPTH}")));
        }
        for r in refs {
            let version = if r.version < 0 { "latest".to_owned() } else { r.version.to_string() };
            let answer = self.get(&format!("/subjects/{}/versions/{version}", path_segment(&r.subject)))?;
            self.collect_references(&answer.references, depth + 1, out)?;
            if !out.contains(&answer.schema) {
                out.push(answer.schema);
            }
        }
        Ok(())
    }
}

impl SchemaFetcher for ConfluentRegistry {
    fn fetch(&self, key: &SchemaKey) -> Result<FetchedSchema, FetchError> {
        let SchemaKey::Confluent(id) = key else {
            return Err(FetchError::NotFound);
        };
        let answer = self.get(&format!("/schemas/ids/{id}"))?;
        if let Some(kind) = answer.schema_type.as_deref().filter(|k| *k != "AVRO") {
            return Err(FetchError::Unavailable(format!("schema {id} is {kind}, not AVRO")));
        }
        let mut references = Vec::new();
        self.collect_references(&answer.references, 0, &mut references)?;
        Ok(FetchedSchema { text: answer.schema, references })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_become_basic_auth() {
        let r = ConfluentRegistry::new("https://key:secret@registry.example:8081/base/").unwrap();
        assert_eq!(r.base, "https://registry.example:8081/base");
        assert_eq!(r.auth.as_deref(), Some("Basic a2V5OnNlY3JldA=="));
    }

    #[test]
    fn plain_urls_keep_their_host_and_drop_trailing_slashes() {
        let r = ConfluentRegistry::new("http://127.0.0.1:8081/").unwrap();
        assert_eq!(r.base, "http://127.0.0.1:8081");
        assert!(r.auth.is_none());
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(ConfluentRegistry::new("ftp://x").is_err());
        assert!(ConfluentRegistry::new("localhost:8081").is_err());
    }

    #[test]
    fn subjects_are_percent_encoded() {
        assert_eq!(path_segment("ExampleTopic-value"), "ExampleTopic-value");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn an_unreachable_registry_is_unavailable_not_missing() {
        // Port 9 (discard) on loopback is closed on the test machines.
        let r = ConfluentRegistry::new("http://127.0.0.1:9").unwrap();
        assert!(matches!(r.fetch(&SchemaKey::Confluent(1)), Err(FetchError::Unavailable(_))));
    }
}
