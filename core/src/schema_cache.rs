//! Compiled writer schemas by [`SchemaKey`], fetched at most once.
//!
//! The cache holds [`Transcoder`]s, not schema text: parsing and compiling
//! happen once per schema, after which a lookup is a hash probe under a
//! short lock ([`crate::pipeline`] also memoises the last key per event, so
//! a typical event takes the lock once).
//!
//! Registries live outside `core`: the cache calls a [`SchemaFetcher`] the
//! caller provides (an HTTP client for a Confluent registry, `GetSchemaVersion`
//! for Glue, or a map of local files). Concurrent misses on one key are
//! single-flight: one caller fetches and compiles while the others wait for
//! its answer (`OnceLock::get_or_init`). Outcomes are kept as follows:
//!
//! | fetch outcome | kept |
//! |---|---|
//! | schema compiled | for the life of the cache (registry ids are immutable) |
//! | schema text does not compile | for the life of the cache |
//! | not found | for `negative_ttl` (default 30 s), then asked again |
//! | transport failure | not kept: the waiters share it, the next lookup asks again |
//!
//! The cache reads no clock: callers pass `now`, so tests can move time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::transcode::{CompileError, Transcoder};
use crate::wire::SchemaKey;

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
    /// The registry could not be asked or answered badly; worth retrying.
    #[error("registry unavailable: {0}")]
    Unavailable(String),
}

/// Where the cache gets schemas it has not seen.
pub trait SchemaFetcher: Send + Sync {
    /// Fetches the writer schema of `key`.
    ///
    /// # Errors
    /// [`FetchError::NotFound`] when the registry has no such schema,
    /// [`FetchError::Unavailable`] for anything that may succeed later.
    fn fetch(&self, key: &SchemaKey) -> Result<FetchedSchema, FetchError>;
}

/// A fetcher that knows nothing: every key is not found. For callers that
/// preload every schema with [`SchemaCache::insert_json`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetcher;

impl SchemaFetcher for NoFetcher {
    fn fetch(&self, _key: &SchemaKey) -> Result<FetchedSchema, FetchError> {
        Err(FetchError::NotFound)
    }
}

/// Why a lookup gave no transcoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("{key}: not found")]
    NotFound { key: SchemaKey },
    #[error("{key}: {reason}")]
    Unavailable { key: SchemaKey, reason: Arc<str> },
    #[error("{key}: {reason}")]
    Invalid { key: SchemaKey, reason: Arc<str> },
}

#[derive(Debug)]
enum Entry {
    Ready(Arc<Transcoder>),
    Invalid(Arc<str>),
    NotFound { at: Instant },
    Unavailable(Arc<str>),
}

#[derive(Debug, Default)]
struct Slot {
    entry: OnceLock<Entry>,
}

/// Counts of what the cache did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub fetches: u64,
}

/// Compiled writer schemas by key; share it with `Arc` across threads.
#[derive(Debug)]
pub struct SchemaCache {
    slots: Mutex<HashMap<SchemaKey, Arc<Slot>>>,
    hits: AtomicU64,
    fetches: AtomicU64,
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
        SchemaCache { slots: Mutex::default(), hits: AtomicU64::new(0), fetches: AtomicU64::new(0), negative_ttl }
    }

    /// Compiles `text` and stores it under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`CompileError`] when `text` is not a schema the transcoder compiles.
    pub fn insert_json(&self, key: SchemaKey, text: &str) -> Result<(), CompileError> {
        let transcoder = Arc::new(Transcoder::from_schema_json(text)?);
        let slot = Slot::default();
        let _ = slot.entry.set(Entry::Ready(transcoder));
        self.lock_slots().insert(key, Arc::new(slot));
        Ok(())
    }

    /// The transcoder for `key`, fetching and compiling it on a miss.
    ///
    /// # Errors
    /// [`SchemaError`] when the schema is not found, cannot be fetched now,
    /// or does not compile.
    pub fn get(
        &self,
        key: &SchemaKey,
        now: Instant,
        fetcher: &dyn SchemaFetcher,
    ) -> Result<Arc<Transcoder>, SchemaError> {
        // At most two rounds: the second after dropping an expired or failed slot.
        for _ in 0..2 {
            let slot = Arc::clone(self.lock_slots().entry(*key).or_default());
            let mut fetched = false;
            let entry = slot.entry.get_or_init(|| {
                fetched = true;
                fetch_entry(key, now, fetcher)
            });
            self.count(fetched);
            match entry {
                Entry::Ready(t) => return Ok(Arc::clone(t)),
                Entry::Invalid(reason) => {
                    return Err(SchemaError::Invalid { key: *key, reason: Arc::clone(reason) });
                }
                Entry::NotFound { at } if now.saturating_duration_since(*at) < self.negative_ttl => {
                    return Err(SchemaError::NotFound { key: *key });
                }
                Entry::NotFound { .. } => self.evict(key, &slot),
                Entry::Unavailable(reason) => {
                    self.evict(key, &slot);
                    return Err(SchemaError::Unavailable { key: *key, reason: Arc::clone(reason) });
                }
            }
        }
        Err(SchemaError::NotFound { key: *key })
    }

    /// What the cache did so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats { hits: self.hits.load(Relaxed), fetches: self.fetches.load(Relaxed) }
    }

    /// Number of keys with a compiled transcoder.
    pub fn len(&self) -> usize {
        self.lock_slots().values().filter(|s| matches!(s.entry.get(), Some(Entry::Ready(_)))).count()
    }

    /// True when no transcoder is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn count(&self, fetched: bool) {
        let counter = if fetched { &self.fetches } else { &self.hits };
        counter.fetch_add(1, Relaxed);
    }

    /// Removes `slot` unless another caller already replaced it.
    fn evict(&self, key: &SchemaKey, slot: &Arc<Slot>) {
        let mut slots = self.lock_slots();
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<SchemaKey, Arc<Slot>>> {
        // The map stays consistent even if a holder panicked: recover it.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn fetch_entry(key: &SchemaKey, now: Instant, fetcher: &dyn SchemaFetcher) -> Entry {
    match fetcher.fetch(key) {
        Ok(fetched) => match Transcoder::from_schema_json_with_references(&fetched.text, &fetched.references) {
            Ok(t) => Entry::Ready(Arc::new(t)),
            Err(e) => Entry::Invalid(e.to_string().into()),
        },
        Err(FetchError::NotFound) => Entry::NotFound { at: now },
        Err(FetchError::Unavailable(reason)) => Entry::Unavailable(reason.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    const SCHEMA: &str = r#""string""#;

    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        answer: Mutex<Option<Result<FetchedSchema, FetchError>>>,
        delay: Duration,
    }

    impl Counting {
        fn answering(answer: Result<FetchedSchema, FetchError>) -> Self {
            Counting { answer: Mutex::new(Some(answer)), ..Default::default() }
        }
    }

    impl SchemaFetcher for Counting {
        fn fetch(&self, _key: &SchemaKey) -> Result<FetchedSchema, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            thread::sleep(self.delay);
            self.answer.lock().unwrap().clone().unwrap()
        }
    }

    const KEY: SchemaKey = SchemaKey::Confluent(1);

    #[test]
    fn a_hit_does_not_fetch_again() {
        let cache = SchemaCache::default();
        let fetcher = Counting::answering(Ok(SCHEMA.to_string().into()));
        let now = Instant::now();
        let a = cache.get(&KEY, now, &fetcher).unwrap();
        let b = cache.get(&KEY, now, &fetcher).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the compiled transcoder is shared");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats(), CacheStats { hits: 1, fetches: 1 });
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn concurrent_misses_fetch_once() {
        let cache = Arc::new(SchemaCache::default());
        let fetcher = Arc::new(Counting {
            delay: Duration::from_millis(50),
            ..Counting::answering(Ok(SCHEMA.to_string().into()))
        });
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (cache, fetcher, barrier) = (cache.clone(), fetcher.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    cache.get(&KEY, Instant::now(), fetcher.as_ref()).map(|_| ())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn not_found_is_kept_until_the_ttl_passes() {
        let cache = SchemaCache::new(Duration::from_secs(30));
        let fetcher = Counting::answering(Err(FetchError::NotFound));
        let t0 = Instant::now();
        assert_eq!(cache.get(&KEY, t0, &fetcher).unwrap_err(), SchemaError::NotFound { key: KEY });
        assert!(cache.get(&KEY, t0 + Duration::from_secs(29), &fetcher).is_err());
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
        *fetcher.answer.lock().unwrap() = Some(Ok(SCHEMA.to_string().into()));
        assert!(cache.get(&KEY, t0 + Duration::from_secs(31), &fetcher).is_ok());
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn transport_failures_are_not_kept() {
        let cache = SchemaCache::default();
        let fetcher = Counting::answering(Err(FetchError::Unavailable("connection refused".into())));
        let now = Instant::now();
        let err = cache.get(&KEY, now, &fetcher).unwrap_err();
        assert_eq!(err.to_string(), "confluent schema id 1: connection refused");
        *fetcher.answer.lock().unwrap() = Some(Ok(SCHEMA.to_string().into()));
        assert!(cache.get(&KEY, now, &fetcher).is_ok());
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn invalid_schemas_are_kept_as_invalid() {
        let cache = SchemaCache::default();
        let fetcher = Counting::answering(Ok("{\"type\":\"nonsense\"}".to_string().into()));
        let now = Instant::now();
        assert!(matches!(cache.get(&KEY, now, &fetcher), Err(SchemaError::Invalid { .. })));
        assert!(matches!(cache.get(&KEY, now, &fetcher), Err(SchemaError::Invalid { .. })));
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn preloaded_schemas_need_no_fetcher() {
        let cache = SchemaCache::default();
        cache.insert_json(KEY, SCHEMA).unwrap();
        assert!(cache.get(&KEY, Instant::now(), &NoFetcher).is_ok());
        assert!(cache.insert_json(KEY, "not json").is_err());
    }
}
