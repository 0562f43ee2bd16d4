//! The schema registry over HTTP: bad requests, concurrency, restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mskbench_sim::{HttpOutage, RegistryConfig, RegistryServer};
use serde_json::{Value, json};

const SCHEMA: &str = r#"{"type":"record","name":"ClickEvent","fields":[{"name":"ip","type":"string"}]}"#;

/// (status, body) of one request; 4xx/5xx are answers, not errors.
fn call(method: &str, url: &str, body: Option<&[u8]>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        ("PUT", Some(b)) => agent.put(url).content_type("application/vnd.schemaregistry.v1+json").send(b),
        (_, b) => agent.post(url).content_type("application/vnd.schemaregistry.v1+json").send(b.unwrap_or_default()),
    }
    .unwrap();
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn register(base: &str, subject: &str, schema: &str) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({ "schema": schema })).unwrap();
    call("POST", &format!("{base}/subjects/{subject}/versions"), Some(&body))
}

async fn start(config: RegistryConfig) -> (RegistryServer, String) {
    let server = RegistryServer::start(config).await.unwrap();
    let url = server.url();
    (server, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_4xx_and_the_server_keeps_serving() {
    let (server, base) = start(RegistryConfig { max_body_bytes: 4096, ..RegistryConfig::default() }).await;
    tokio::task::spawn_blocking(move || {
        let huge = vec![b' '; 100_000];
        let (status, body) = call("POST", &format!("{base}/subjects/x/versions"), Some(&huge));
        assert_eq!((status, &body["error_code"]), (413, &json!(413)), "{body}");
        let (status, body) = call("POST", &format!("{base}/subjects/x/versions"), Some(b"{not json"));
        assert_eq!((status, &body["error_code"]), (400, &json!(400)), "{body}");
        let (status, body) = call("POST", &format!("{base}/subjects/x/versions"), Some(br#"{"schema": 5}"#));
        assert_eq!((status, &body["error_code"]), (422, &json!(422)), "{body}");
        let (status, body) = register(&base, "x", r#"{"type":"nope"}"#);
        assert_eq!((status, &body["error_code"]), (422, &json!(42201)), "{body}");
        let (status, body) = call("GET", &format!("{base}/subjects/x/versions"), None);
        assert_eq!((status, &body["error_code"]), (404, &json!(40401)), "{body}");
        let (status, body) = call("GET", &format!("{base}/schemas/ids/99"), None);
        assert_eq!((status, &body["error_code"]), (404, &json!(40403)), "{body}");
        let (status, body) = call("PUT", &format!("{base}/config"), Some(br#"{"compatibility": "SIDEWAYS"}"#));
        assert_eq!((status, &body["error_code"]), (422, &json!(42203)), "{body}");
        let (status, _) = call("GET", &format!("{base}/no/such/route"), None);
        assert_eq!(status, 404);
        // Still serving.
        let (status, body) = register(&base, "x", SCHEMA);
        assert_eq!((status, body), (200, json!({ "id": 1 })));
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
}

/// Found by `fuzz/fuzz_targets/registry.rs`: a route called with a method it
/// does not serve, or a path that does not decode, got axum's own answer (an
/// empty 405, a plain-text 400) instead of Confluent's JSON error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_or_an_undecodable_path_gets_a_confluent_error_body() {
    let (server, base) = start(RegistryConfig::default()).await;
    tokio::task::spawn_blocking(move || {
        let (status, body) = call("DELETE", &format!("{base}/subjects/d/versions"), None);
        assert_eq!((status, &body["error_code"]), (405, &json!(405)), "{body}");
        assert!(body["message"].is_string(), "{body}");
        let (status, body) = call("GET", &format!("{base}/subjects/%FF/versions"), None);
        assert_eq!((status, &body["error_code"]), (400, &json!(400)), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        // Still serving.
        let (status, body) = register(&base, "d", SCHEMA);
        assert_eq!((status, body), (200, json!({ "id": 1 })));
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_schema_yield_one_id() {
    let (server, base) = start(RegistryConfig::default()).await;
    let ids = tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let base = base.clone();
                // Different formatting of the same schema.
                let text = if i % 2 == 0 { SCHEMA.to_owned() } else { SCHEMA.replace(':', ": ") };
                std::thread::spawn(move || register(&base, "race-value", &text))
            })
            .collect();
        let ids: Vec<Value> = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .map(|(s, b)| {
                assert_eq!(s, 200, "{b}");
                b["id"].clone()
            })
            .collect();
        let (_, versions) = call("GET", &format!("{base}/subjects/race-value/versions"), None);
        assert_eq!(versions, json!([1]));
        ids
    })
    .await
    .unwrap();
    assert!(ids.iter().all(|id| *id == json!(1)), "{ids:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_subjects_versions_ids_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = RegistryConfig { data: Some(dir.path().join("registry.json")), ..RegistryConfig::default() };
    let (server, base) = start(config.clone()).await;
    tokio::task::spawn_blocking(move || {
        assert_eq!(register(&base, "a-value", SCHEMA).1, json!({ "id": 1 }));
        assert_eq!(register(&base, "b-value", r#""string""#).1, json!({ "id": 2 }));
        let (s, _) = call("PUT", &format!("{base}/config/a-value"), Some(br#"{"compatibility": "FULL"}"#));
        assert_eq!(s, 200);
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();

    let (server, base) = start(config).await;
    tokio::task::spawn_blocking(move || {
        assert_eq!(call("GET", &format!("{base}/subjects"), None).1, json!(["a-value", "b-value"]));
        let (_, v) = call("GET", &format!("{base}/subjects/a-value/versions/latest"), None);
        assert_eq!((&v["id"], &v["version"], &v["schema"]), (&json!(1), &json!(1), &json!(SCHEMA)));
        assert_eq!(call("GET", &format!("{base}/schemas/ids/2"), None).1, json!({ "schema": "\"string\"" }));
        assert_eq!(call("GET", &format!("{base}/config/a-value"), None).1, json!({ "compatibilityLevel": "FULL" }));
        assert_eq!(register(&base, "c-value", r#""int""#).1, json!({ "id": 3 }), "ids continue");
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_is_down_answers_503_in_confluents_shape_until_it_is_up() {
    let (server, base) = start(RegistryConfig::default()).await;
    let outage = server.outage();
    tokio::task::spawn_blocking(move || {
        let (status, body) = register(&base, "x", SCHEMA);
        assert_eq!((status, body), (200, json!({ "id": 1 })));
        outage.begin(HttpOutage::Status503);
        let (status, body) = call("GET", &format!("{base}/schemas/ids/1"), None);
        assert_eq!((status, &body["error_code"]), (503, &json!(50301)), "{body}");
        let (status, _) = register(&base, "y", SCHEMA);
        assert_eq!(status, 503, "changes are refused too");
        assert_eq!(outage.answered(), 2);
        outage.end();
        let (status, body) = call("GET", &format!("{base}/schemas/ids/1"), None);
        assert_eq!(status, 200, "{body}");
        let (status, _) = call("GET", &format!("{base}/subjects/y/versions"), None);
        assert_eq!(status, 404, "nothing sent while down was kept");
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
}
