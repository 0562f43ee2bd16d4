//! The Runtime API the mapping serves (`esm::runtime_api`), held to a
//! real Lambda runtime — our `bootstrap` binary on `lambda_runtime`,
//! started by the API as `--function-command` starts it, sending to the
//! Firehose stand-in — and, over raw HTTP, to the protocol's corners: the
//! headers, 400 for a request id that is not in flight (late answers
//! included), 413 over 6 MB, init errors, a function that never asks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{STREAM, canonical, clickevents, confluent, delivered_raw, event, firehose};
use mskbench_processor::esm::runtime_api::{Failure, FunctionCommand, MAX_RESPONSE, RuntimeApi, RuntimeApiConfig};
use mskbench_sim::RegistryServer;
use mskbench_sim::registry::RegistryConfig;

fn config(instances: usize, timeout: Duration) -> RuntimeApiConfig {
    let mut c = RuntimeApiConfig::new("127.0.0.1:0".parse().unwrap());
    c.instances = instances;
    c.timeout = timeout;
    c.function_name = "msk-to-firehose".into();
    c.region = Some("us-east-1".into());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_answers_invocations_over_the_runtime_api_one_instance_each() {
    let dir = tempfile::tempdir().unwrap();
    let server = firehose(dir.path(), |_| {}).await;
    let registry = RegistryServer::start(RegistryConfig::default()).await.unwrap();
    let (registry_url, firehose_url) = (registry.url(), server.url());
    let subject = format!("{registry_url}/subjects/ExampleTopic-value/versions");
    let body = serde_json::json!({ "schema": mskbench_benches::CLICK_SCHEMA }).to_string();
    tokio::task::spawn_blocking(move || ureq::post(&subject).send(body.as_bytes()).unwrap()).await.unwrap();

    let mut c = config(2, Duration::from_secs(60));
    c.command = Some(FunctionCommand {
        program: env!("CARGO_BIN_EXE_bootstrap").to_owned(),
        args: Vec::new(),
        env: [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-value"),
            ("DELIVERY_STREAM_NAME", STREAM),
            ("CSR", "true"),
            ("SCHEMA_REGISTRY_URL", &registry_url),
            ("AWS_ENDPOINT_URL_FIREHOSE", &firehose_url),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        dir: None,
        log: None,
    });
    let api = RuntimeApi::start(c).await.unwrap();
    assert_eq!(api.addrs().len(), 2);
    assert_ne!(api.addrs()[0], api.addrs()[1], "an endpoint per instance");

    let (datums, expected) = clickevents(700, 43);
    let values: Vec<_> = datums.iter().map(|d| confluent(1, d)).collect();
    let (first, second) = values.split_at(400);
    let (a, b) = tokio::join!(api.invoke(0, event(first, 2), "req-1"), api.invoke(1, event(second, 2), "req-2"));
    for (payload, n) in [(a.unwrap(), 400), (b.unwrap(), 300)] {
        // The bootstrap's response payload: its invocation summary.
        let summary: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!((summary["records_in"].as_u64(), summary["delivered"].as_u64()), (Some(n), Some(n)), "{summary}");
    }

    // The function's error: its errorType, and the function keeps serving.
    let failed = api.invoke(0, b"{\"records\": 42}".to_vec(), "req-3").await.unwrap_err();
    assert!(matches!(&failed, Failure::FunctionError { error_type, .. } if error_type == "NotAnEvent"), "{failed:?}");
    assert_eq!(failed.kind(), "NotAnEvent");

    server.shutdown().await.unwrap();
    registry.shutdown().await.unwrap();
    assert_eq!(canonical(&delivered_raw(dir.path())), canonical(&expected));
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_process_fails_its_invocation_and_a_new_one_serves_the_next() {
    // A shell function over curl: the first process takes one event and
    // dies; the next one answers every event "ok".
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("function.sh");
    let marker = dir.path().join("crashed");
    std::fs::write(
        &script,
        format!(
            r#"api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
if [ ! -e {m} ]; then touch {m}; curl -sf "$api/invocation/next" >/dev/null; exit 7; fi
while true; do
  h=$(mktemp)
  curl -sf -D "$h" -o /dev/null "$api/invocation/next" || exit 1
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$h" | cut -d' ' -f2 | tr -d '\r')
  curl -sf -X POST -d ok "$api/invocation/$id/response" >/dev/null
done
"#,
            m = marker.display()
        ),
    )
    .unwrap();
    let mut c = config(1, Duration::from_secs(20));
    c.command = Some(FunctionCommand {
        program: "sh".into(),
        args: vec![script.display().to_string()],
        env: Vec::new(),
        dir: None,
        log: None,
    });
    let api = RuntimeApi::start(c).await.unwrap();
    let crashed = api.invoke(0, b"{}".to_vec(), "req-1").await.unwrap_err();
    assert_eq!(crashed, Failure::Exited { status: "exit status 7".into() });
    assert_eq!(crashed.kind(), "Runtime.ExitError");
    let answer = api.invoke(0, b"{}".to_vec(), "req-1-retry2").await.unwrap();
    assert_eq!(&answer[..], b"ok");
    api.shutdown().await;
}

/// One blocking HTTP exchange: status, headers, body.
fn http(method: &str, url: &str, body: Option<Vec<u8>>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let response = match body {
        Some(b) => agent.post(url).send(&b[..]),
        None if method == "GET" => agent.get(url).call(),
        None => agent.post(url).send_empty(),
    };
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = response.body_mut().with_config().limit(16 * 1024 * 1024).read_to_vec().unwrap();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn base(addr: SocketAddr) -> String {
    format!("http://{addr}/2018-06-01/runtime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocols_headers_status_codes_and_deadline_are_lambdas() {
    let api = RuntimeApi::start(config(1, Duration::from_secs(1))).await.unwrap();
    let url = base(api.addrs()[0]);

    // Next: the event and the headers; the deadline is the timeout from now.
    let u = url.clone();
    let poll = blocking(move || http("GET", &format!("{u}/invocation/next"), None));
    let invoke = api.invoke(0, b"{\"k\":1}".to_vec(), "req-a");
    let u = url.clone();
    let answer = async move {
        let (status, headers, body) = poll.await;
        assert_eq!((status, &body[..]), (200, &b"{\"k\":1}"[..]));
        assert_eq!(header(&headers, "Lambda-Runtime-Aws-Request-Id"), Some("req-a"));
        assert_eq!(
            header(&headers, "Lambda-Runtime-Invoked-Function-Arn"),
            Some("arn:aws:lambda:us-east-1:000000000000:function:msk-to-firehose")
        );
        assert!(header(&headers, "Lambda-Runtime-Trace-Id").unwrap().starts_with("Root=1-"));
        let deadline: u128 = header(&headers, "Lambda-Runtime-Deadline-Ms").unwrap().parse().unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        assert!(deadline > now && deadline <= now + 1000, "{deadline} vs {now}");
        // Unknown id: 400 InvalidRequestID, and the invocation stays in flight.
        let u2 = u.clone();
        let (status, _, body) =
            blocking(move || http("POST", &format!("{u2}/invocation/other/response"), Some(b"x".to_vec()))).await;
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("InvalidRequestID"));
        let (status, _, body) = blocking(move || {
            http("POST", &format!("{u}/invocation/req-a/response"), Some(b"{\"done\":true}".to_vec()))
        })
        .await;
        assert_eq!((status, &body[..]), (202, &b"{\"status\":\"OK\"}"[..]));
    };
    let (result, ()) = tokio::join!(invoke, answer);
    assert_eq!(&result.unwrap()[..], b"{\"done\":true}");
    let u = url.clone();
    let (status, _, _) =
        blocking(move || http("POST", &format!("{u}/invocation/req-a/response"), Some(b"{}".to_vec()))).await;
    assert_eq!(status, 400, "answered already");

    // A missed deadline fails the invocation; the late answer gets 400.
    let u = url.clone();
    let poll = blocking(move || http("GET", &format!("{u}/invocation/next"), None));
    let started = Instant::now();
    let (result, _) = tokio::join!(api.invoke(0, b"{}".to_vec(), "req-b"), poll);
    assert_eq!(result.unwrap_err(), Failure::TimedOut { timeout: Duration::from_secs(1) });
    assert!(started.elapsed() >= Duration::from_secs(1));
    let u = url.clone();
    let (status, _, _) =
        blocking(move || http("POST", &format!("{u}/invocation/req-b/response"), Some(b"{}".to_vec()))).await;
    assert_eq!(status, 400, "late");

    // Over 6 MB: 413, and the invocation fails.
    let u = url.clone();
    let poll = blocking(move || http("GET", &format!("{u}/invocation/next"), None));
    let u = url.clone();
    let big = async move {
        poll.await;
        blocking(move || http("POST", &format!("{u}/invocation/req-c/response"), Some(vec![b'x'; MAX_RESPONSE + 1])))
            .await
    };
    let (result, (status, _, body)) = tokio::join!(api.invoke(0, b"{}".to_vec(), "req-c"), big);
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("RequestEntityTooLarge"));
    assert_eq!(result.unwrap_err(), Failure::ResponseTooLarge { limit: MAX_RESPONSE });

    // The function's error: errorType and errorMessage from the body.
    let u = url.clone();
    let poll = blocking(move || http("GET", &format!("{u}/invocation/next"), None));
    let u = url.clone();
    let err = async move {
        poll.await;
        let body = br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#.to_vec();
        blocking(move || http("POST", &format!("{u}/invocation/req-d/error"), Some(body))).await
    };
    let (result, (status, _, _)) = tokio::join!(api.invoke(0, b"{}".to_vec(), "req-d"), err);
    assert_eq!(status, 202);
    assert_eq!(result.unwrap_err(), Failure::FunctionError { error_type: "ValueError".into(), message: "boom".into() });

    // An init error fails the next invocation with it.
    let u = url.clone();
    let body = br#"{"errorMessage":"no module named handler","errorType":"Runtime.ImportModuleError"}"#.to_vec();
    let (status, _, _) = blocking(move || http("POST", &format!("{u}/init/error"), Some(body))).await;
    assert_eq!(status, 202);
    let failed = api.invoke(0, b"{}".to_vec(), "req-e").await.unwrap_err();
    assert_eq!(
        failed,
        Failure::InitError {
            error_type: "Runtime.ImportModuleError".into(),
            message: "no module named handler".into()
        }
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_no_function_asks_for_fails_after_the_init_timeout() {
    let mut c = config(1, Duration::from_secs(5));
    c.init_timeout = Duration::from_millis(300);
    let api = RuntimeApi::start(c).await.unwrap();
    let failed = api.invoke(0, b"{}".to_vec(), "req-x").await.unwrap_err();
    assert!(matches!(failed, Failure::NotPickedUp { .. }), "{failed:?}");
    assert!(failed.to_string().contains(&format!("AWS_LAMBDA_RUNTIME_API={}", api.addrs()[0])), "{failed}");
    api.shutdown().await;
}

#[tokio::test]
async fn consecutive_ports_follow_the_first_and_settings_out_of_range_are_refused() {
    let mut c = config(1, Duration::from_secs(5));
    c.listen = "127.0.0.1:65535".parse().unwrap();
    c.instances = 2;
    assert!(RuntimeApi::start(c).await.unwrap_err().to_string().contains("do not exist"));
    let c = config(1, Duration::from_millis(10));
    assert!(RuntimeApi::start(c).await.unwrap_err().to_string().contains("outside 1s..=900s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_dying_in_its_init_fails_the_waiting_invocation_at_once() {
    let mut c = config(1, Duration::from_secs(5));
    c.init_timeout = Duration::from_secs(30);
    c.command = Some(FunctionCommand {
        program: "sh".into(),
        args: vec!["-c".into(), "echo 'cannot start: RETRIES=\"lots\" is invalid' >&2; exit 4".into()],
        env: Vec::new(),
        dir: None,
        log: None,
    });
    let api = RuntimeApi::start(c).await.unwrap();
    let started = Instant::now();
    let failed = api.invoke(0, b"{}".to_vec(), "req-i").await.unwrap_err();
    let Failure::Exited { status } = &failed else { panic!("{failed:?}") };
    assert!(status.starts_with("exit status 4, during its init"), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10), "not the init timeout: {:?}", started.elapsed());
    api.shutdown().await;
}
