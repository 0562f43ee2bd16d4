//! Compiled writer schemas by [`SchemaKey`], and what registries answered.
//!
//! The cache holds [`Transcoder`]s, not schema text: parsing and compiling
//! happen once per schema, after which a lookup is a hash probe under a
//! short lock ([`crate::pipeline`] also memoises the last key per event, so
//! a typical event takes the lock once).
//!
//! The cache never asks a registry: `core` does no I/O. [`SchemaCache::get`]
//! answers from what it holds, and a key it does not hold is a miss the
//! caller resolves: [`crate::pipeline::EventProcessor::process`] marks the
//! records of such a key as waiting ([`crate::pipeline::Output::missing_schemas`]),
//! the caller fetches the schema however it reaches its registry (the
//! processor awaits HTTP or Glue `GetSchemaVersion`, single-flight per key)
//! and hands the answer to [`SchemaCache::store`], which compiles it.
//! Answers are kept as follows:
//!
//! | fetch outcome | kept | record's reason |
//! |---|---|---|
//! | schema compiled | for the life of the cache (registry ids are immutable) | — |
//! | schema text does not compile | for the life of the cache | `invalid_schema` |
//! | an answer that can never be a schema ([`FetchError::Unusable`]) | for the life of the cache | `invalid_schema` |
//! | not found | for `negative_ttl` (default 30 s), then a miss again | `unknown_schema` |
//! | registry unavailable | for [`UNAVAILABLE_TTL`], then a miss again | `schema_unavailable` |
//!
//! The first three are permanent: the same key cannot give another answer
//! (a registry id, or a Glue version, names one schema forever), so its
//! records are rejected and the batch goes on. Only `schema_unavailable`
//! is transient. It is kept a few seconds so that an outage costs one
//! fetch, not one per record or per redelivered batch: a registry that
//! accepts connections and never answers would otherwise make every
//! invocation wait a request timeout for each key again.
//!
//! The cache reads no clock: callers pass `now`, so tests can move time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::transcode::{CompileError, Transcoder};
use crate::wire::SchemaKey;

/// How long a [`FetchError::Unavailable`] answer is kept: lookups within it
/// fail at once as unavailable, later ones are misses and ask again.
pub const UNAVAILABLE_TTL: Duration = Duration::from_secs(5);

/// A writer schema as a registry returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedSchema {
    /// The schema's JSON text.
    pub text: String,
    /// Texts of referenced schemas (Confluent schema references), in
    /// dependency order; usually empty.
    pub references: Vec<String>,
}

impl From<String> for FetchedSchema {
    fn from(text: String) -> Self {
        FetchedSchema { text, references: Vec::new() }
    }
}

/// Why a fetch gave no schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The registry answered that it has no such schema.
    #[error("not found in the registry")]
    NotFound,
    /// The registry could not be asked, or answered with an error that may
    /// pass (5xx, throttling, refused credentials); worth retrying. The
    /// text says what was asked and what went wrong (no credentials).
    #[error("registry unavailable: {0}")]
    Unavailable(String),
    /// The registry answered with something that can never be a usable
    /// Avro schema: a schema of another type (JSON, Protobuf), a body that
    /// is not a schema, references nested too deep or in a cycle. Kept as
    /// an invalid schema. The text says what was asked and what came back.
    #[error("unusable registry answer: {0}")]
    Unusable(String),
}

/// Why a lookup gave no transcoder: the answer the cache keeps for a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The registry has no schema for `key` (kept for the negative TTL).
    #[error("{key}: not found")]
    NotFound {
        /// The schema asked for.
        key: SchemaKey,
    },
    /// The registry could not be asked for `key`; a later fetch may
    /// succeed (kept for [`UNAVAILABLE_TTL`]).
    #[error("{key}: {reason}")]
    Unavailable {
        /// The schema asked for.
        key: SchemaKey,
        /// What went wrong, as the fetcher described it.
        reason: Arc<str>,
    },
    /// The registry's answer for `key` can never be used: text the
    /// transcoder does not compile, or a [`FetchError::Unusable`] answer.
    #[error("{key}: {reason}")]
    Invalid {
        /// The schema asked for.
        key: SchemaKey,
        /// The compile error, or what made the answer unusable.
        reason: Arc<str>,
    },
}

#[derive(Debug)]
enum Entry {
    Ready(Arc<Transcoder>),
    Invalid(Arc<str>),
    NotFound { at: Instant },
    Unavailable { reason: Arc<str>, at: Instant },
}

/// Counts of what the cache did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache (a transcoder or a kept failure).
    pub hits: u64,
    /// Lookups that found nothing: the caller had to fetch.
    pub misses: u64,
    /// Answers handed to [`SchemaCache::store`].
    pub stores: u64,
}

/// Compiled writer schemas by key; share it with `Arc` across threads.
#[derive(Debug)]
pub struct SchemaCache {
    entries: Mutex<HashMap<SchemaKey, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    negative_ttl: Duration,
}

impl Default for SchemaCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl SchemaCache {
    /// An empty cache that keeps not-found answers for `negative_ttl`.
    pub fn new(negative_ttl: Duration) -> Self {
        SchemaCache {
            entries: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stores: AtomicU64::new(0),
            negative_ttl,
        }
    }

    /// Compiles `text` and stores it under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`CompileError`] when `text` is not a schema the transcoder compiles;
    /// the cache is then unchanged.
    pub fn insert_json(&self, key: SchemaKey, text: &str) -> Result<(), CompileError> {
        let transcoder = Arc::new(Transcoder::from_schema_json(text)?);
        self.lock_entries().insert(key, Entry::Ready(transcoder));
        Ok(())
    }

    /// What the cache holds for `key`: `Ok(Some(_))` a compiled transcoder,
    /// `Err(_)` a kept failure (invalid; not found within the negative TTL;
    /// unavailable within [`UNAVAILABLE_TTL`]), `Ok(None)` nothing — a miss
    /// for the caller to fetch and [`store`](Self::store). An expired
    /// answer is dropped and reads as a miss.
    ///
    /// # Errors
    /// [`SchemaError::Invalid`], [`SchemaError::NotFound`] or
    /// [`SchemaError::Unavailable`] as kept.
    pub fn get(&self, key: &SchemaKey, now: Instant) -> Result<Option<Arc<Transcoder>>, SchemaError> {
        let mut entries = self.lock_entries();
        let found = match entries.get(key) {
            Some(Entry::Ready(t)) => Ok(Some(Arc::clone(t))),
            Some(Entry::Invalid(reason)) => Err(SchemaError::Invalid { key: *key, reason: Arc::clone(reason) }),
            Some(Entry::NotFound { at }) if now.saturating_duration_since(*at) < self.negative_ttl => {
                Err(SchemaError::NotFound { key: *key })
            }
            Some(Entry::Unavailable { reason, at }) if now.saturating_duration_since(*at) < UNAVAILABLE_TTL => {
                Err(SchemaError::Unavailable { key: *key, reason: Arc::clone(reason) })
            }
            Some(Entry::NotFound { .. } | Entry::Unavailable { .. }) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        };
        drop(entries);
        let counter = if matches!(found, Ok(None)) { &self.misses } else { &self.hits };
        counter.fetch_add(1, Relaxed);
        found
    }

    /// Keeps a registry's answer for `key`, fetched at `now`, and returns
    /// what a lookup will now give: a schema is compiled and kept (or kept
    /// as invalid, as is an unusable answer), not found is kept for the
    /// negative TTL, unavailable for [`UNAVAILABLE_TTL`]. Pass the time the
    /// answer arrived, not the time it was asked: a fetch may take as long
    /// as a request timeout.
    ///
    /// # Errors
    /// The [`SchemaError`] the answer amounts to, when it is not a schema
    /// that compiles.
    pub fn store(
        &self,
        key: SchemaKey,
        answer: Result<FetchedSchema, FetchError>,
        now: Instant,
    ) -> Result<(), SchemaError> {
        self.stores.fetch_add(1, Relaxed);
        let (entry, result) = match answer {
            Ok(fetched) => match Transcoder::from_schema_json_with_references(&fetched.text, &fetched.references) {
                Ok(t) => (Entry::Ready(Arc::new(t)), Ok(())),
                Err(e) => {
                    let reason: Arc<str> = e.to_string().into();
                    (Entry::Invalid(Arc::clone(&reason)), Err(SchemaError::Invalid { key, reason }))
                }
            },
            Err(FetchError::Unusable(reason)) => {
                let reason: Arc<str> = reason.into();
                (Entry::Invalid(Arc::clone(&reason)), Err(SchemaError::Invalid { key, reason }))
            }
            Err(FetchError::NotFound) => (Entry::NotFound { at: now }, Err(SchemaError::NotFound { key })),
            Err(FetchError::Unavailable(reason)) => {
                let reason: Arc<str> = reason.into();
                (
                    Entry::Unavailable { reason: Arc::clone(&reason), at: now },
                    Err(SchemaError::Unavailable { key, reason }),
                )
            }
        };
        self.lock_entries().insert(key, entry);
        result
    }

    /// What the cache did so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            stores: self.stores.load(Relaxed),
        }
    }

    /// Number of keys with a compiled transcoder.
    pub fn len(&self) -> usize {
        self.lock_entries().values().filter(|e| matches!(e, Entry::Ready(_))).count()
    }

    /// True when no transcoder is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<SchemaKey, Entry>> {
        // The map stays consistent even if a holder panicked: recover it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#""string""#;
    const KEY: SchemaKey = SchemaKey::Confluent(1);

    fn schema() -> Result<FetchedSchema, FetchError> {
        Ok(SCHEMA.to_string().into())
    }

    #[test]
    fn a_stored_schema_is_a_hit_and_shared() {
        let cache = SchemaCache::default();
        let now = Instant::now();
        assert!(matches!(cache.get(&KEY, now), Ok(None)), "nothing stored: a miss");
        cache.store(KEY, schema(), now).unwrap();
        let a = cache.get(&KEY, now).unwrap().unwrap();
        let b = cache.get(&KEY, now).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the compiled transcoder is shared");
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 1, stores: 1 });
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn not_found_is_kept_until_the_ttl_passes() {
        let cache = SchemaCache::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(cache.store(KEY, Err(FetchError::NotFound), t0), Err(SchemaError::NotFound { key: KEY }));
        assert_eq!(cache.get(&KEY, t0).unwrap_err(), SchemaError::NotFound { key: KEY });
        assert!(cache.get(&KEY, t0 + Duration::from_secs(29)).is_err());
        assert!(matches!(cache.get(&KEY, t0 + Duration::from_secs(31)), Ok(None)), "expired: asked again");
        cache.store(KEY, schema(), t0 + Duration::from_secs(31)).unwrap();
        assert!(cache.get(&KEY, t0 + Duration::from_secs(31)).unwrap().is_some());
    }

    #[test]
    fn transport_failures_are_not_kept() {
        let cache = SchemaCache::default();
        let now = Instant::now();
        let err = cache.store(KEY, Err(FetchError::Unavailable("connection refused".into())), now).unwrap_err();
        assert_eq!(err.to_string(), "confluent schema id 1: connection refused");
        // Kept for a few seconds only (see below), then asked again.
        assert!(matches!(cache.get(&KEY, now + UNAVAILABLE_TTL), Ok(None)), "the next lookup asks again");
    }

    #[test]
    fn an_outage_is_remembered_for_a_few_seconds_so_it_costs_one_fetch() {
        let cache = SchemaCache::default();
        let t0 = Instant::now();
        let stored = cache.store(KEY, Err(FetchError::Unavailable("GET …: timed out".into())), t0);
        let expected = SchemaError::Unavailable { key: KEY, reason: "GET …: timed out".into() };
        assert_eq!(stored, Err(expected.clone()));
        assert_eq!(cache.get(&KEY, t0).unwrap_err(), expected, "no second fetch right away");
        assert_eq!(cache.get(&KEY, t0 + UNAVAILABLE_TTL - Duration::from_millis(1)).unwrap_err(), expected);
        assert!(matches!(cache.get(&KEY, t0 + UNAVAILABLE_TTL), Ok(None)), "then asked again");
        cache.store(KEY, schema(), t0 + UNAVAILABLE_TTL).unwrap();
        assert!(cache.get(&KEY, t0 + UNAVAILABLE_TTL).unwrap().is_some());
    }

    #[test]
    fn an_unusable_answer_is_kept_as_an_invalid_schema_for_good() {
        let cache = SchemaCache::default();
        let t0 = Instant::now();
        let answer = Err(FetchError::Unusable("schema 1 is JSON, not AVRO".into()));
        let expected = SchemaError::Invalid { key: KEY, reason: "schema 1 is JSON, not AVRO".into() };
        assert_eq!(cache.store(KEY, answer, t0), Err(expected.clone()));
        assert_eq!(cache.get(&KEY, t0 + Duration::from_secs(3_600)).unwrap_err(), expected);
        assert_eq!(crate::Reason::from(&expected), crate::Reason::InvalidSchema);
        assert!(!crate::Reason::from(&expected).is_transient(), "dead-lettered, the batch goes on");
    }

    #[test]
    fn invalid_schemas_are_kept_as_invalid() {
        let cache = SchemaCache::default();
        let now = Instant::now();
        let stored = cache.store(KEY, Ok("{\"type\":\"nonsense\"}".to_string().into()), now);
        assert!(matches!(stored, Err(SchemaError::Invalid { .. })));
        assert!(matches!(cache.get(&KEY, now), Err(SchemaError::Invalid { .. })));
        assert!(matches!(cache.get(&KEY, now), Err(SchemaError::Invalid { .. })));
        assert!(cache.is_empty());
    }

    #[test]
    fn preloaded_schemas_are_hits() {
        let cache = SchemaCache::default();
        cache.insert_json(KEY, SCHEMA).unwrap();
        assert!(cache.get(&KEY, Instant::now()).unwrap().is_some());
        assert!(cache.insert_json(KEY, "not json").is_err());
        assert!(cache.get(&KEY, Instant::now()).unwrap().is_some(), "a failed insert leaves the entry");
    }
}
