//! The schema registry stand-in's requests: paths and JSON bodies through
//! its whole REST router, as `RegistryServer` serves them.
//!
//! The input is up to eight requests separated by `0xFF` bytes; each is one
//! byte choosing the method, the path up to the first newline and the body
//! after it. They run in order against a fresh in-memory registry, so
//! registrations, lookups, compatibility tests, configuration and deletes
//! meet each other. Oracles: no request gets a 5xx (a change that panicked
//! comes back as 500 `registry task failed`); every answer is JSON, and an
//! error carries Confluent's `error_code` and `message`; an id a register
//! returned serves a schema at `/schemas/ids/{id}`.
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt as _;

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::DELETE];

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .unwrap_or_else(|e| panic!("no tokio runtime: {e}"))
});

fuzz_target!(|data: &[u8]| {
    RUNTIME.block_on(async {
        let router = mskbench_sim::fuzzing::registry_router(64 * 1024);
        for request in data.split(|&b| b == 0xff).take(8) {
            let Some((&m, rest)) = request.split_first() else { continue };
            let method = METHODS[usize::from(m) % METHODS.len()].clone();
            let (path, body) = match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => (&rest[..nl], &rest[nl + 1..]),
                None => (rest, &[][..]),
            };
            let Ok(path) = std::str::from_utf8(path) else { continue };
            let Ok(request) = Request::builder()
                .method(method.clone())
                .uri(path)
                .header("content-type", "application/vnd.schemaregistry.v1+json")
                .body(Body::from(body.to_vec()))
            else {
                continue;
            };
            let (status, answer) = call(&router, request).await;
            assert!(!status.is_server_error(), "{method} {path} answered {status}: {answer}");
            if !status.is_success() {
                assert!(answer["error_code"].is_u64() && answer["message"].is_string(), "{status}: {answer}");
            } else if method == Method::POST && path.ends_with("/versions") {
                let Some(id) = answer["id"].as_u64() else { panic!("a registration without an id: {answer}") };
                let by_id = Request::get(format!("/schemas/ids/{id}")).body(Body::empty());
                let Ok(by_id) = by_id else { panic!("cannot build a request for id {id}") };
                let (status, schema) = call(&router, by_id).await;
                assert!(status == StatusCode::OK && schema["schema"].is_string(), "id {id}: {status} {schema}");
            }
        }
    });
});

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    let status = response.status();
    let bytes = match axum::body::to_bytes(response.into_body(), usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => panic!("cannot read a response body: {e}"),
    };
    // `GET …/schema` answers the schema text itself, which is JSON too.
    match serde_json::from_slice(&bytes) {
        Ok(value) => (status, value),
        Err(e) => panic!("{status} with a body that is not JSON ({e}): {:?}", String::from_utf8_lossy(&bytes)),
    }
}
