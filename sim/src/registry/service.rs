//! Confluent Schema Registry REST routes over the [`Store`].
//!
//! Shapes follow Confluent's API v1: `application/vnd.schemaregistry.v1+json`
//! bodies, errors as `{"error_code": N, "message": "…"}` with the HTTP status
//! derived from the code (40401 → 404, 42201 → 422, 409 → 409). Request
//! bodies are read up to a limit and parsed here, so an oversized or
//! malformed body gets a Confluent-shaped 4xx instead of a framework
//! default. Unknown request members (`metadata`, `ruleSet`, sent by newer
//! clients) are ignored, as Confluent does with
//! `Confluent-Accept-Unknown-Properties`.
//!
//! Changes run on the blocking pool (they may write the data file); reads
//! take the store lock briefly on the async thread.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::store::{Level, Store, StoreError};
use crate::server::{BodyError, read_body};

/// The content type of every response.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) max_body_bytes: usize,
    /// On while the registry is down (a fault window).
    pub(crate) outage: Arc<crate::Outage>,
}

type Shared = State<Arc<App>>;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/subjects/{subject}/versions/{version}/schema", get(version_schema))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/config", get(get_global).put(put_global))
        .route("/config/{subject}", get(get_subject_config).put(put_subject_config).delete(delete_subject_config))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(compatibility))
        .fallback(|| async { error(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found") })
        .layer(axum::middleware::from_fn_with_state(app.clone(), down))
        .layer(axum::middleware::map_response(confluent_shaped))
        .with_state(app)
}

/// Longest text kept from a response axum made itself.
const REJECTION_TEXT_BYTES: usize = 4096;

/// Gives the answers axum makes itself — a method a route does not serve
/// (405, empty), a path segment that does not decode (400, plain text) —
/// Confluent's JSON error shape with the same status, as every answer of
/// the handlers has (they all carry [`CONTENT_TYPE`]). Found by the fuzz
/// target `fuzz/fuzz_targets/registry.rs`.
async fn confluent_shaped(response: Response) -> Response {
    if response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v == CONTENT_TYPE) {
        return response;
    }
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), REJECTION_TEXT_BYTES).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or_default()),
        text => text.to_owned(),
    };
    error(status, u32::from(status.as_u16()), &message)
}

/// While the registry is down, every request gets the outage's status in
/// Confluent's error shape (its 5xx codes: 50001 for 500, 50301 for 503).
async fn down(State(app): Shared, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match app.outage.answer() {
        Some(crate::HttpOutage::Status500) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, 50001, "Error in the backend data store (fault window)")
        }
        Some(crate::HttpOutage::Status503) => {
            error(StatusCode::SERVICE_UNAVAILABLE, 50301, "Service unavailable (fault window)")
        }
        None => next.run(request).await,
    }
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({ "error_code": code, "message": message });
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

fn store_error(e: StoreError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, e.code, &e.message)
}

fn reply(result: Result<Value, StoreError>) -> Response {
    result.map_or_else(store_error, ok)
}

fn query_flag(query: &Option<String>, name: &str) -> bool {
    query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair.split_once('=').is_some_and(|(k, v)| k == name && v.eq_ignore_ascii_case("true")))
}

/// Reads and parses a JSON body; the `Err` is the response to send.
async fn json_body<T: for<'de> Deserialize<'de>>(app: &App, body: Body) -> Result<T, Response> {
    let bytes = read_body(body, app.max_body_bytes).await.map_err(|e| match e {
        BodyError::TooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, 413, &e.to_string()),
        BodyError::Read(_) => error(StatusCode::BAD_REQUEST, 400, &e.to_string()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let status = if e.is_data() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::BAD_REQUEST };
        error(status, u32::from(status.as_u16()), &format!("Unrecognizable request body: {e}"))
    })
}

/// Runs a change on the blocking pool.
async fn change<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(PoisonError::into_inner)))
        .await
        .unwrap_or_else(|e| Err(StoreError { code: 50001, message: format!("registry task failed: {e}") }))
}

fn read<T>(app: &App, f: impl FnOnce(&Store) -> T) -> T {
    f(&app.store.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A schema in a request: register, look up, test compatibility.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<Value>>,
}

impl SchemaRequest {
    /// The schema text, if it is a kind this registry serves.
    fn avro(self) -> Result<String, StoreError> {
        if let Some(t) = self.schema_type.as_deref()
            && !t.eq_ignore_ascii_case("AVRO")
        {
            return Err(StoreError {
                code: 42201,
                message: format!("Invalid schema: schemaType {t} is not served by mskbench-sim (AVRO only)"),
            });
        }
        if self.references.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(StoreError {
                code: 42201,
                message: "Invalid schema: schema references are not served by mskbench-sim".into(),
            });
        }
        Ok(self.schema)
    }
}

async fn subjects(State(app): Shared) -> Response {
    ok(json!(read(&app, Store::subjects)))
}

async fn register(State(app): Shared, Path(subject): Path<String>, body: Body) -> Response {
    let request: SchemaRequest = match json_body(&app, body).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let result = match request.avro() {
        Ok(text) => change(&app, move |s| s.register(&subject, &text)).await,
        Err(e) => Err(e),
    };
    reply(result.map(|id| json!({ "id": id })))
}

async fn lookup(State(app): Shared, Path(subject): Path<String>, body: Body) -> Response {
    let request: SchemaRequest = match json_body(&app, body).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    reply(request.avro().and_then(|text| {
        read(&app, |s| s.lookup(&subject, &text))
            .map(|v| json!({ "subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema }))
    }))
}

async fn versions(State(app): Shared, Path(subject): Path<String>) -> Response {
    reply(read(&app, |s| s.versions(&subject)).map(|v| json!(v)))
}

async fn version(State(app): Shared, Path((subject, version)): Path<(String, String)>) -> Response {
    reply(
        read(&app, |s| s.version(&subject, &version))
            .map(|v| json!({ "subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema })),
    )
}

async fn version_schema(State(app): Shared, Path((subject, version)): Path<(String, String)>) -> Response {
    match read(&app, |s| s.version(&subject, &version)) {
        Ok(v) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], v.schema).into_response(),
        Err(e) => store_error(e),
    }
}

async fn schema_by_id(State(app): Shared, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u32>() else {
        return error(StatusCode::NOT_FOUND, 40403, "Schema not found");
    };
    reply(read(&app, |s| s.schema_by_id(id).map(|text| json!({ "schema": text }))))
}

async fn delete_subject(State(app): Shared, Path(subject): Path<String>) -> Response {
    reply(change(&app, move |s| s.delete_subject(&subject)).await.map(|v| json!(v)))
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

async fn get_global(State(app): Shared) -> Response {
    ok(json!({ "compatibilityLevel": read(&app, Store::global_level).as_str() }))
}

async fn get_subject_config(State(app): Shared, Path(subject): Path<String>, RawQuery(query): RawQuery) -> Response {
    let (own, global) = read(&app, |s| (s.subject_level(&subject), s.global_level()));
    match own {
        Some(level) => ok(json!({ "compatibilityLevel": level.as_str() })),
        None if query_flag(&query, "defaultToGlobal") => ok(json!({ "compatibilityLevel": global.as_str() })),
        None => error(
            StatusCode::NOT_FOUND,
            40408,
            &format!("Subject '{subject}' does not have subject-level compatibility configured"),
        ),
    }
}

async fn put_config(app: Arc<App>, subject: Option<String>, body: Body) -> Response {
    let request: ConfigRequest = match json_body(&app, body).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let Some(level) = Level::parse(&request.compatibility) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            &format!(
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive; got {:?}",
                request.compatibility
            ),
        );
    };
    reply(
        change(&app, move |s| s.set_level(subject.as_deref(), Some(level)))
            .await
            .map(|()| json!({ "compatibility": level.as_str() })),
    )
}

async fn put_global(State(app): Shared, body: Body) -> Response {
    put_config(app, None, body).await
}

async fn put_subject_config(State(app): Shared, Path(subject): Path<String>, body: Body) -> Response {
    put_config(app, Some(subject), body).await
}

async fn delete_subject_config(State(app): Shared, Path(subject): Path<String>) -> Response {
    let Some(level) = read(&app, |s| s.subject_level(&subject)) else {
        return store_error(StoreError::subject_not_found(&subject));
    };
    reply(
        change(&app, move |s| s.set_level(Some(&subject), None))
            .await
            .map(|()| json!({ "compatibilityLevel": level.as_str() })),
    )
}

async fn compatibility(
    State(app): Shared,
    Path((subject, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let request: SchemaRequest = match json_body(&app, body).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let verbose = query_flag(&query, "verbose");
    reply(request.avro().and_then(|text| {
        read(&app, |s| s.is_compatible(&subject, &version, &text)).map(|(ok, messages)| {
            if verbose { json!({ "is_compatible": ok, "messages": messages }) } else { json!({ "is_compatible": ok }) }
        })
    }))
}
