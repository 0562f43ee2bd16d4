//! Writer schemas from the lab's registries, fetched off core's call stack.
//!
//! Core's `EventProcessor::process` only reads core's [`SchemaCache`]: a
//! record whose schema is not cached is left waiting, its key listed in
//! `Output::missing_schemas`. [`Schemas::process`] is the async shell
//! around it: one pass with what is cached; when keys are missing, it
//! awaits their fetches (Confluent ids from the registry at
//! `SCHEMA_REGISTRY_URL`, [`ConfluentRegistry`]; Glue schema-version UUIDs
//! through `GetSchemaVersion`, [`GlueRegistry`]), stores the answers in the
//! cache and runs the event again, so records, batches and rejections keep
//! input order for free. Records still waiting then (their registry was
//! unavailable) become `schema_unavailable` rejections: no record is left
//! waiting when `process` returns.
//!
//! Fetches are single-flight per key across concurrent invocations: the
//! first invocation to miss fetches, the others await its answer (a
//! `tokio::sync::OnceCell` per key in flight), and the answer is stored
//! in the cache before the flight ends, so a later miss cannot start a
//! second fetch. What is kept is the cache's rule: schemas, invalid
//! schemas and unusable answers (not Avro, not a schema, references too
//! deep or in a cycle: permanent, so their records are dead-lettered and
//! the batch goes on) for the life of the process, not-found answers for
//! 30 s, unavailable answers for 5 s.
//!
//! An outage costs one fetch, not one per record: the records of a key
//! share its one fetch (the second pass reads its answer from the cache);
//! an event's keys are fetched at most [`FETCH_CONCURRENCY`] at a time, and
//! once a registry was unavailable for one key the event's other keys of
//! that registry are not asked (the invocation fails and its batch comes
//! back anyway); the 5 s memo makes the redelivered batches fail at once.
//! So a registry that accepts connections and never answers costs an
//! invocation about one request timeout (10 s), whatever its size. A
//! registry that answers, slowly, an event of many new ids is bounded too:
//! the handler gives the fetches one request timeout
//! ([`Schemas::process_by`]); what has not come by then makes the batch
//! come back, and the answers that did come are cached for it.
//!
//! Cost: nothing beyond core's pass on an event whose schemas are cached
//! (the common case: the cache lives as long as the execution
//! environment); a second pass plus one registry round trip per new schema
//! on the few invocations that meet one first. Nothing blocks a thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use futures_util::stream::{self, StreamExt as _};
use mskbench_aws::glue::{GlueClient, GlueErrorKind};
use mskbench_core::wire::SchemaKey;
use mskbench_core::{EventProcessor, FetchError, FetchedSchema, KafkaEvent, Output, SchemaCache, SchemaError};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::confluent::ConfluentRegistry;

/// Glue Schema Registry schema versions by UUID (`GetSchemaVersion`).
#[derive(Debug, Clone)]
pub struct GlueRegistry {
    client: GlueClient,
}

impl GlueRegistry {
    /// A fetcher calling `client`.
    pub fn new(client: GlueClient) -> Self {
        GlueRegistry { client }
    }

    /// Fetches schema version `uuid`: an `AVAILABLE` Avro definition.
    ///
    /// # Errors
    /// [`FetchError::NotFound`] when Glue has no such version;
    /// [`FetchError::Unusable`] for a version that can never be an Avro
    /// schema (another format, `FAILURE` or `DELETING`, no definition, an
    /// answer that is not `GetSchemaVersion`'s); [`FetchError::Unavailable`]
    /// for a `PENDING` version and calls that failed.
    pub async fn fetch(&self, uuid: Uuid) -> Result<FetchedSchema, FetchError> {
        glue_answer(uuid, self.client.get_schema_version(uuid).await)
    }
}

/// What a `GetSchemaVersion` answer for `uuid` amounts to. A version's
/// format never changes and only a `PENDING` one can still become
/// `AVAILABLE`, so: no such version is not found; a version that is not
/// Avro, one that failed registration or is being deleted, one without a
/// definition, and a 200 that is not `GetSchemaVersion`'s answer are
/// unusable (permanent); a pending version, a status Glue did not document
/// and failed calls (transport, 5xx, throttling, access denied) are
/// unavailable (asked again).
fn glue_answer(
    uuid: Uuid,
    answer: Result<mskbench_aws::glue::SchemaVersion, mskbench_aws::glue::GlueError>,
) -> Result<FetchedSchema, FetchError> {
    let version = match answer {
        Ok(version) => version,
        Err(e) if e.is_not_found() => return Err(FetchError::NotFound),
        Err(e) if matches!(e.kind, GlueErrorKind::Decode(_)) => {
            return Err(FetchError::Unusable(format!("{uuid}: {e}")));
        }
        Err(e) => return Err(FetchError::Unavailable(format!("{uuid}: {e}"))),
    };
    if let Some(format) = version.data_format.as_deref().filter(|f| *f != "AVRO") {
        return Err(FetchError::Unusable(format!("Glue schema version {uuid} is {format}, not AVRO")));
    }
    match version.status.as_deref() {
        None | Some("AVAILABLE") => {}
        Some(status @ ("FAILURE" | "DELETING")) => {
            return Err(FetchError::Unusable(format!("Glue schema version {uuid} is {status}, not AVAILABLE")));
        }
        Some(status) => {
            return Err(FetchError::Unavailable(format!("Glue schema version {uuid} is {status}, not AVAILABLE yet")));
        }
    }
    version
        .definition
        .ok_or_else(|| FetchError::Unusable(format!("Glue schema version {uuid} has no definition")))
        .map(FetchedSchema::from)
}

/// What one flight's fetch amounted to, shared by its waiters.
type Answer = Result<(), SchemaError>;

/// Most schema fetches one event runs at once.
const FETCH_CONCURRENCY: usize = 8;

/// The first unavailable answer of each registry within one event.
#[derive(Default)]
struct Outages {
    confluent: OnceLock<SchemaError>,
    glue: OnceLock<SchemaError>,
}

impl Outages {
    fn of(&self, key: SchemaKey) -> &OnceLock<SchemaError> {
        match key {
            SchemaKey::Confluent(_) => &self.confluent,
            SchemaKey::Glue(_) => &self.glue,
        }
    }
}

/// Core's schema cache, the registries that fill it, and the fetches in flight.
#[derive(Debug, Default)]
pub struct Schemas {
    cache: SchemaCache,
    confluent: Option<ConfluentRegistry>,
    glue: Option<GlueRegistry>,
    in_flight: Mutex<HashMap<SchemaKey, Arc<OnceCell<Answer>>>>,
}

impl Schemas {
    /// An empty cache over the registries given; a key whose registry is
    /// `None` is not found (preload it with [`SchemaCache::insert_json`]).
    pub fn new(confluent: Option<ConfluentRegistry>, glue: Option<GlueRegistry>) -> Self {
        Schemas { confluent, glue, ..Schemas::default() }
    }

    /// The cache the registries' answers are kept in.
    pub fn cache(&self) -> &SchemaCache {
        &self.cache
    }

    /// Processes `event` into `out` with core, fetching the schemas it
    /// lacks first-time (see the module docs). Returns with every record
    /// packed or rejected: none waiting, `out.summary` adding up.
    pub async fn process(&self, processor: &EventProcessor, event: &KafkaEvent<'_>, out: &mut Output) {
        self.process_by(processor, event, out, None).await;
    }

    /// [`Schemas::process`], fetching only until `fetch_by`: keys whose
    /// answer has not come by then leave their records `schema_unavailable`
    /// (transient: the batch comes back, and finds the answers that did
    /// come in the cache).
    pub async fn process_by(
        &self,
        processor: &EventProcessor,
        event: &KafkaEvent<'_>,
        out: &mut Output,
        fetch_by: Option<Instant>,
    ) {
        let now = Instant::now();
        processor.process(event, &self.cache, now, out);
        if out.missing_schemas().is_empty() {
            return;
        }
        let keys = out.missing_schemas().to_vec();
        let outages = Outages::default();
        let fetches = stream::iter(keys.iter().copied())
            .map(|key| self.resolve_unless_down(key, now, &outages))
            .buffered(FETCH_CONCURRENCY);
        let mut answers: Vec<Answer> = Vec::with_capacity(keys.len());
        match fetch_by {
            None => answers = fetches.collect().await,
            Some(by) => {
                let mut fetches = std::pin::pin!(fetches);
                let all = async {
                    while let Some(answer) = fetches.next().await {
                        answers.push(answer);
                    }
                };
                // Past `by`, the fetches still in flight are dropped (a
                // single flight another invocation awaits is taken over by it).
                let _ = tokio::time::timeout_at(by.into(), all).await;
            }
        }
        processor.process(event, &self.cache, now, out);
        out.reject_waiting(|key| leftover(key, &keys, &answers, fetch_by));
    }

    /// [`Schemas::resolve`], unless `key`'s registry was already unavailable
    /// for another key of this event: then the invocation fails anyway
    /// (its batch comes back), and asking would only add a timeout.
    async fn resolve_unless_down(&self, key: SchemaKey, now: Instant, outages: &Outages) -> Answer {
        let down = outages.of(key);
        if let Some(first) = down.get() {
            return Err(SchemaError::Unavailable { key, reason: format!("not asked: {first}").into() });
        }
        let answer = self.resolve(key, now).await;
        if let Err(e @ SchemaError::Unavailable { .. }) = &answer {
            let _ = down.set(e.clone());
        }
        answer
    }

    /// Makes sure the cache holds an answer for `key`, fetching it unless
    /// another invocation already is (then its answer is awaited).
    ///
    /// # Errors
    /// The [`SchemaError`] the registry's answer amounts to.
    pub async fn resolve(&self, key: SchemaKey, now: Instant) -> Answer {
        let cell = {
            // Checked under the lock that ends flights: the answer is
            // either in the cache already or in a flight still listed.
            let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            match self.cache.get(&key, now) {
                Ok(Some(_)) => return Ok(()),
                Err(e) => return Err(e),
                Ok(None) => Arc::clone(in_flight.entry(key).or_default()),
            }
        };
        let answer = cell
            .get_or_init(|| async {
                let fetched = self.fetch(key).await;
                // Kept from when the answer came: a fetch may take a whole
                // request timeout, longer than an outage is remembered.
                self.cache.store(key, fetched, now.max(Instant::now()))
            })
            .await
            .clone();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(&key);
        }
        answer
    }

    /// Asks the registry `key` belongs to.
    async fn fetch(&self, key: SchemaKey) -> Result<FetchedSchema, FetchError> {
        match key {
            SchemaKey::Confluent(id) => match &self.confluent {
                Some(registry) => registry.fetch(id).await,
                None => Err(FetchError::NotFound),
            },
            SchemaKey::Glue(uuid) => match &self.glue {
                Some(registry) => registry.fetch(uuid).await,
                None => Err(FetchError::NotFound),
            },
        }
    }
}

/// Why a record of `key` still waits after the second pass: its fetch's
/// failure, or no answer by `fetch_by`. A fetch that succeeded cannot leave
/// a record waiting (compiled schemas stay cached); should one, the record
/// is transient, so its batch comes back rather than being dead-lettered.
fn leftover(key: &SchemaKey, keys: &[SchemaKey], answers: &[Answer], fetch_by: Option<Instant>) -> SchemaError {
    let reason = match keys.iter().position(|k| k == key) {
        Some(i) => match answers.get(i) {
            Some(Err(e)) => return e.clone(),
            Some(Ok(())) => "the schema left the cache during the invocation",
            None if fetch_by.is_some() => "no answer within the invocation's time for schema fetches",
            None => "the schema was not fetched",
        },
        None => "the schema was not fetched",
    };
    SchemaError::Unavailable { key: *key, reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_registry::{Reply, Stub, distinct_ids_event, serve};

    const SCHEMA: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;

    /// A registry answering every request with `status` and `body` after
    /// `delay`.
    async fn registry(status: u16, body: String, delay: Duration) -> Stub {
        serve(move |_| Reply::After(delay, status, body.clone())).await
    }

    fn schemas_at(url: &str) -> Arc<Schemas> {
        Arc::new(Schemas::new(Some(ConfluentRegistry::new(url).unwrap()), None))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_on_one_key_fetch_once() {
        let body = serde_json::json!({ "schema": SCHEMA }).to_string();
        let stub = registry(200, body, Duration::from_millis(100)).await;
        let schemas = schemas_at(&stub.url);
        let key = SchemaKey::Confluent(7);
        let now = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let schemas = Arc::clone(&schemas);
                tokio::spawn(async move { schemas.resolve(key, now).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(stub.requests(), 1);
        assert!(schemas.cache().get(&key, now).unwrap().is_some());
        schemas.resolve(key, now).await.unwrap();
        assert_eq!(stub.requests(), 1, "a cached schema is not fetched again");
    }

    #[tokio::test]
    async fn not_found_is_kept_and_unavailable_is_asked_again() {
        let body = r#"{"error_code":40403,"message":"Schema not found"}"#.to_owned();
        let stub = registry(404, body, Duration::ZERO).await;
        let schemas = schemas_at(&stub.url);
        let key = SchemaKey::Confluent(1);
        let now = Instant::now();
        assert_eq!(schemas.resolve(key, now).await, Err(SchemaError::NotFound { key }));
        assert_eq!(schemas.resolve(key, now).await, Err(SchemaError::NotFound { key }));
        assert_eq!(stub.requests(), 1, "not found is kept for the negative TTL");

        let stub = registry(503, r#"{"error_code":50301,"message":"down"}"#.to_owned(), Duration::ZERO).await;
        let schemas = schemas_at(&stub.url);
        assert!(matches!(schemas.resolve(key, now).await, Err(SchemaError::Unavailable { .. })));
        // Once the outage memo has passed.
        let later = Instant::now() + mskbench_core::schema_cache::UNAVAILABLE_TTL + Duration::from_secs(1);
        assert!(matches!(schemas.resolve(key, later).await, Err(SchemaError::Unavailable { .. })));
        assert_eq!(stub.requests(), 2, "an outage is asked again");
    }

    fn click_event() -> (EventProcessor, Vec<u8>) {
        let processor = EventProcessor::new(mskbench_core::WireMode::Confluent, Default::default());
        (processor, mskbench_benches::lab_event(50, 2, 7))
    }

    #[tokio::test]
    async fn a_first_event_fetches_its_schema_and_ends_with_no_record_waiting() {
        let body = serde_json::json!({ "schema": mskbench_benches::CLICK_SCHEMA }).to_string();
        let stub = registry(200, body, Duration::ZERO).await;
        let schemas = schemas_at(&stub.url);
        let (processor, bytes) = click_event();
        let event = KafkaEvent::parse(&bytes).unwrap();
        let mut out = Output::new();
        schemas.process(&processor, &event, &mut out).await;
        assert!(out.waiting.is_empty() && out.missing_schemas().is_empty());
        assert!(out.rejections.is_empty(), "{:?}", out.rejections.first());
        assert_eq!((out.summary.records_in, out.summary.records_out, out.summary.waiting), (50, 50, 0));
        assert!(out.summary.adds_up());

        let preloaded = Schemas::default();
        let key = SchemaKey::Confluent(mskbench_benches::CLICK_ID);
        preloaded.cache().insert_json(key, mskbench_benches::CLICK_SCHEMA).unwrap();
        let mut expected = Output::new();
        preloaded.process(&processor, &event, &mut expected).await;
        assert_eq!((out.data, out.records, out.batches), (expected.data, expected.records, expected.batches));
        assert_eq!(stub.requests(), 1);
    }

    #[tokio::test]
    async fn an_outage_rejects_the_waiting_records_as_transient() {
        let stub = registry(503, r#"{"error_code":50301,"message":"down"}"#.to_owned(), Duration::ZERO).await;
        let schemas = schemas_at(&stub.url);
        let (processor, bytes) = click_event();
        let event = KafkaEvent::parse(&bytes).unwrap();
        let mut out = Output::new();
        schemas.process(&processor, &event, &mut out).await;
        assert!(out.waiting.is_empty());
        assert_eq!(out.rejections.len(), 50);
        assert!(out.rejections.iter().all(|r| r.reason.is_transient()));
        assert!(out.rejections.windows(2).all(|w| w[0].input_index < w[1].input_index), "input order");
        assert!(out.summary.adds_up());
    }

    fn silent_registry_schemas(url: &str) -> Schemas {
        let registry = ConfluentRegistry::with_timeout(url, Duration::from_millis(300)).unwrap();
        Schemas::new(Some(registry), None)
    }

    #[tokio::test]
    async fn a_registry_that_never_answers_costs_one_fetch_for_all_records_and_redeliveries() {
        let stub = serve(|_| Reply::Never).await;
        let schemas = silent_registry_schemas(&stub.url);
        let (processor, bytes) = click_event();
        let event = KafkaEvent::parse(&bytes).unwrap();
        // The invocation and two redeliveries of its batch.
        for _ in 0..3 {
            let mut out = Output::new();
            schemas.process(&processor, &event, &mut out).await;
            assert!(out.waiting.is_empty() && out.summary.adds_up());
            assert_eq!(out.rejections.len(), 50);
            assert!(out.rejections.iter().all(|r| r.reason == mskbench_core::Reason::SchemaUnavailable));
        }
        assert_eq!(stub.requests(), 1, "one timeout, shared by 50 records and remembered for the redeliveries");
    }

    #[tokio::test]
    async fn an_event_of_many_unknown_ids_asks_a_silent_registry_only_a_few_times() {
        let stub = serve(|_| Reply::Never).await;
        let schemas = silent_registry_schemas(&stub.url);
        let processor = EventProcessor::new(mskbench_core::WireMode::Confluent, Default::default());
        let bytes = distinct_ids_event(200);
        let event = KafkaEvent::parse(&bytes).unwrap();
        let mut out = Output::new();
        schemas.process(&processor, &event, &mut out).await;
        assert!(out.waiting.is_empty() && out.summary.adds_up());
        assert_eq!(out.rejections.len(), 200);
        assert!(out.rejections.iter().all(|r| r.reason.is_transient()), "the batch comes back");
        assert!(out.rejections[199].detail.contains("not asked"), "{}", out.rejections[199].detail);
        assert_eq!(stub.requests(), FETCH_CONCURRENCY, "one round of fetches, not one per id");
    }

    #[tokio::test]
    async fn a_slow_registry_and_many_new_ids_cannot_keep_an_invocation_past_its_time_for_fetches() {
        // 200 new ids at 8 in flight and 100 ms an answer: 25 rounds, 2.5 s.
        let body = serde_json::json!({ "schema": SCHEMA }).to_string();
        let stub = registry(200, body, Duration::from_millis(100)).await;
        let schemas = schemas_at(&stub.url);
        let processor = EventProcessor::new(mskbench_core::WireMode::Confluent, Default::default());
        let bytes = distinct_ids_event(200);
        let event = KafkaEvent::parse(&bytes).unwrap();
        let mut out = Output::new();
        schemas.process_by(&processor, &event, &mut out, Some(Instant::now() + Duration::from_millis(350))).await;
        assert!(out.waiting.is_empty() && out.summary.adds_up());
        let first = stub.requests();
        assert!(first < 200, "fetching stopped at the budget: {first} requests");
        let late: Vec<_> = out.rejections.iter().filter(|r| r.detail.contains("time for schema fetches")).collect();
        assert!(!late.is_empty() && late.iter().all(|r| r.reason.is_transient()), "the batch comes back");
        let packed = out.summary.records_in - out.rejections.len() as u64;
        assert!(packed > 0, "the answers that came in time were used");

        // The redelivered batch finds them cached and goes on from there.
        let mut again = Output::new();
        schemas.process_by(&processor, &event, &mut again, Some(Instant::now() + Duration::from_millis(350))).await;
        assert!(
            again.rejections.len() < out.rejections.len(),
            "{} then {}",
            out.rejections.len(),
            again.rejections.len()
        );
        let mut rest = Output::new();
        schemas.process(&processor, &event, &mut rest).await;
        assert!(rest.rejections.is_empty(), "without a budget every id is fetched");
        assert!(stub.requests() <= 200 + FETCH_CONCURRENCY * 2, "a fetch dropped at the budget may be asked again");
    }

    #[tokio::test]
    async fn an_unusable_answer_rejects_the_records_permanently_and_is_not_asked_again() {
        let body = serde_json::json!({ "schemaType": "JSON", "schema": "{}" }).to_string();
        let stub = serve(move |_| Reply::now(200, body.clone())).await;
        let schemas = schemas_at(&stub.url);
        let (processor, bytes) = click_event();
        let event = KafkaEvent::parse(&bytes).unwrap();
        for _ in 0..2 {
            let mut out = Output::new();
            schemas.process(&processor, &event, &mut out).await;
            assert!(out.summary.adds_up());
            assert_eq!(out.summary.rejected.get(mskbench_core::Reason::InvalidSchema), 50);
            assert!(out.rejections.iter().all(|r| !r.reason.is_transient()), "dead-lettered, the batch goes on");
            assert!(out.rejections[0].detail.contains("is JSON, not AVRO"), "{}", out.rejections[0].detail);
        }
        assert_eq!(stub.requests(), 1);
    }

    fn version(format: Option<&str>, status: Option<&str>, definition: Option<&str>) -> GlueAnswer {
        let json = serde_json::json!({ "DataFormat": format, "Status": status, "SchemaDefinition": definition });
        Ok(serde_json::from_value(json).unwrap())
    }

    type GlueAnswer = Result<mskbench_aws::glue::SchemaVersion, mskbench_aws::glue::GlueError>;

    fn glue_error(kind: GlueErrorKind) -> GlueAnswer {
        Err(mskbench_aws::glue::GlueError { operation: "GetSchemaVersion", endpoint: "http://glue".into(), kind })
    }

    #[test]
    fn glue_versions_that_can_never_be_avro_are_permanent_and_pending_ones_temporary() {
        let id = Uuid::from_u128(7);
        let avro = Some(SCHEMA);
        let unusable = |answer| matches!(glue_answer(id, answer), Err(FetchError::Unusable(_)));
        let unavailable = |answer| matches!(glue_answer(id, answer), Err(FetchError::Unavailable(_)));
        assert_eq!(glue_answer(id, version(Some("AVRO"), Some("AVAILABLE"), avro)), Ok(SCHEMA.to_owned().into()));
        assert!(unusable(version(Some("JSON"), Some("AVAILABLE"), Some("{}"))));
        assert!(unusable(version(Some("PROTOBUF"), Some("AVAILABLE"), Some("syntax = \"proto3\";"))));
        assert!(unusable(version(Some("AVRO"), Some("FAILURE"), avro)));
        assert!(unusable(version(Some("AVRO"), Some("DELETING"), avro)));
        assert!(unusable(version(Some("AVRO"), Some("AVAILABLE"), None)), "no definition");
        assert!(unusable(glue_error(GlueErrorKind::Decode("not JSON".into()))), "a 200 that is not the answer");
        assert!(unavailable(version(Some("AVRO"), Some("PENDING"), avro)), "may become AVAILABLE");
        assert!(unavailable(glue_error(GlueErrorKind::Transport("timed out".into()))));
        let service = |status, code: &str| GlueErrorKind::Service { status, code: code.into(), message: "m".into() };
        assert!(unavailable(glue_error(service(400, "ThrottlingException"))));
        assert!(unavailable(glue_error(service(400, "AccessDeniedException"))));
        assert!(unavailable(glue_error(service(500, "InternalServiceException"))));
        assert_eq!(glue_answer(id, glue_error(service(400, "EntityNotFoundException"))), Err(FetchError::NotFound));
    }

    #[test]
    fn a_leftover_record_carries_its_fetchs_failure() {
        let (a, b) = (SchemaKey::Confluent(1), SchemaKey::Confluent(2));
        let keys = [a, b];
        let answers = [Err(SchemaError::NotFound { key: a }), Ok(())];
        assert_eq!(leftover(&a, &keys, &answers, None), SchemaError::NotFound { key: a });
        assert!(
            matches!(leftover(&b, &keys, &answers, None), SchemaError::Unavailable { .. }),
            "transient, never lost"
        );
    }
}
