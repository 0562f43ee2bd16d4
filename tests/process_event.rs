//! `mskbench process-event` as a user runs it: the built binary on the
//! shipped sample events, checking stdout, stderr, files and exit codes
//! against the contract (0 all decoded, 1 some rejected, 2 usage or fatal).

// Test helpers panic on setup failures: that is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;

const GLUE_VERSION: &str = "b7b4a7f0-0c5e-4a5b-9a0e-3f2c7d9e1a42";

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("core/tests/data").join(name).display().to_string()
}

fn schema_args() -> Vec<String> {
    let avsc = data("clickevent.avsc");
    vec!["--schema".into(), format!("1={avsc}"), "--schema".into(), format!("{GLUE_VERSION}={avsc}")]
}

fn mskbench(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mskbench")).args(args).output().unwrap()
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mskbench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn sample_event_decodes_to_the_expected_lines() {
    let dir = tempdir("summary");
    let summary = dir.join("summary.json");
    let mut a = args(&["process-event", &data("lab-event.json"), "--summary-json", summary.to_str().unwrap()]);
    a.extend(schema_args());
    let out = mskbench(&a);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = std::fs::read_to_string(data("lab-event.expected.ndjson")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["records_in"], 30);
    assert_eq!(s["records_out"], 30);
    assert_eq!(s["rejected"], serde_json::json!({}));
    assert_eq!(s["batches"], 1);
    assert_eq!(s["bytes_out"], expected.len());

    // `-` is stdout: with the lines in files, the summary alone is piped.
    let batches = dir.join("batches");
    let mut a = args(&["process-event", &data("lab-event.json"), "--summary-json", "-"]);
    a.extend(["--out-dir".to_owned(), batches.to_str().unwrap().to_owned()]);
    a.extend(schema_args());
    let out = mskbench(&a);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let piped: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(piped, s);
}

#[test]
fn stdin_is_read_when_no_file_or_dash_is_given() {
    for input in [None, Some("-")] {
        let mut a = args(&["process-event"]);
        a.extend(input.map(String::from));
        a.extend(schema_args());
        let mut child = Command::new(env!("CARGO_BIN_EXE_mskbench"))
            .args(&a)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let event = std::fs::read(data("lab-event.json")).unwrap();
        child.stdin.take().unwrap().write_all(&event).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 30);
    }
}

#[test]
fn bad_records_exit_1_keep_good_lines_and_name_each_reason() {
    let mut a = args(&["process-event", &data("bad-event.json")]);
    a.extend(schema_args());
    let out = mskbench(&a);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 4, "the four good records");
    let stderr = String::from_utf8(out.stderr).unwrap();
    for reason in [
        "missing_value",
        "bad_base64",
        "unknown_magic_byte",
        "truncated_header",
        "unknown_schema",
        "truncated_datum",
        "trailing_bytes",
        "invalid_utf8",
        "union_index_out_of_range",
        "unknown_compression",
        "bad_compressed_data",
    ] {
        assert!(stderr.contains(&format!(": {reason}: ")), "{reason} missing from\n{stderr}");
    }
    assert!(stderr.contains("ExampleTopic partition 0 offset 101"), "{stderr}");
}

#[test]
fn out_dir_gets_one_file_per_batch_and_the_rejected_records() {
    let dir = tempdir("batches");
    std::fs::write(dir.join("batch-000009.ndjson"), "stale").unwrap();
    let mut a =
        args(&["process-event", &data("bad-event.json"), "--out-dir", dir.to_str().unwrap(), "--batch-records", "3"]);
    a.extend(schema_args());
    let out = mskbench(&a);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "lines go to the files, not stdout");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["batch-000001.ndjson", "batch-000002.ndjson", "rejected.ndjson"]);
    let first = std::fs::read_to_string(dir.join("batch-000001.ndjson")).unwrap();
    assert_eq!(first.lines().count(), 3);
    let rejected = std::fs::read_to_string(dir.join("rejected.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = rejected.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[0]["reason"], "missing_value");
    assert_eq!(lines[0]["offset"], 101);
    assert_eq!(lines[1]["record"]["value"], "not base64!", "the original value is kept");
}

#[test]
fn missing_schemas_are_rejections_with_a_hint() {
    let out = mskbench(&args(&["process-event", &data("lab-event.json")]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown_schema"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn fatal_and_usage_errors_exit_2() {
    let dir = tempdir("fatal");
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "{\"records\": [").unwrap();
    let out = mskbench(&args(&["process-event", not_json.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not a Lambda Kafka event") && stderr.contains("line 1"), "{stderr}");

    for bad in [
        args(&["process-event", "/nonexistent/event.json"]),
        args(&["process-event", "--schema", "nope"]),
        args(&["process-event", "--schema", "1=/nonexistent.avsc"]),
        args(&["process-event", "--batch-records", "501"]),
        args(&["process-event", "--wire-format", "protobuf"]),
        args(&["process-event", "--registry", "localhost:8081"]),
    ] {
        let out = mskbench(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Serves `GET /schemas/ids/1` like a Confluent registry, for `requests`
/// connections, and 404 for anything else.
fn fake_registry(requests: usize) -> (String, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let schema = std::fs::read_to_string(data("clickevent.avsc")).unwrap();
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            // The path without its query: registry clients may add `?deleted=true`.
            let target = request_line.split_whitespace().nth(1).unwrap_or("");
            let path = target.split_once('?').map_or(target, |(p, _)| p).to_owned();
            let (status, body) = if path == "/schemas/ids/1" {
                ("200 OK", serde_json::json!({ "schema": schema }).to_string())
            } else {
                ("404 Not Found", r#"{"error_code":40403,"message":"Schema not found"}"#.to_owned())
            };
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            seen.push(path);
        }
        seen
    });
    (url, handle)
}

#[test]
fn registry_schemas_are_fetched_once_per_id() {
    let (url, server) = fake_registry(1);
    let avsc = data("clickevent.avsc");
    let out = mskbench(&args(&[
        "process-event",
        &data("lab-event.json"),
        "--registry",
        &url,
        "--schema",
        &format!("{GLUE_VERSION}={avsc}"),
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 30);
    assert_eq!(server.join().unwrap(), ["/schemas/ids/1"], "seven Confluent records, one fetch");
}
