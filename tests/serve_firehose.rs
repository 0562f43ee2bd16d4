//! `mskbench serve firehose` as a client meets it: a bad request — a body
//! that is not JSON, a target that is not Firehose's, a body over the
//! limit, a request that is not HTTP — gets its AWS error and leaves the
//! endpoint serving; what it accepted is written when it stops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The endpoint's body limit (`mskbench_sim::firehose::MAX_REQUEST_BYTES`).
const MAX_REQUEST_BYTES: usize = mskbench_sim::firehose::MAX_REQUEST_BYTES;

/// One request on its own connection; the status and body of the answer,
/// or the I/O error that ended it.
fn call(addr: SocketAddr, head: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()))
}

fn post(addr: SocketAddr, target: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    call(addr, &head, body).unwrap()
}

#[test]
fn serve_firehose_keeps_serving_after_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["serve", "firehose", "--listen", "127.0.0.1:0", "--stream", "s", "--seed", "1"])
        .arg("--s3-dir")
        .arg(&s3)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).unwrap();
    let addr: SocketAddr = url.trim().strip_prefix("http://").unwrap().parse().unwrap();
    let put = |data: &str| {
        let body = format!(r#"{{"DeliveryStreamName": "s", "Record": {{"Data": "{data}"}}}}"#);
        post(addr, "Firehose_20150804.PutRecord", body.as_bytes())
    };

    let (status, body) = post(addr, "Firehose_20150804.PutRecordBatch", br#"{"Records": ["#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("SerializationException"), "{body}");
    let (status, body) = post(addr, "Kinesis_20131202.PutRecord", b"{}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("UnknownOperationException"), "{body}");
    let (status, body) = put("not base64!");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("SerializationException"), "{body}");
    // One byte over the limit: read whole, so the answer is not cut by a reset.
    let (status, body) = post(addr, "Firehose_20150804.PutRecord", &vec![b'x'; MAX_REQUEST_BYTES + 1]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidArgumentException"), "{body}");
    let (status, body) =
        call(addr, &format!("GET /nowhere HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), b"").unwrap();
    assert_eq!(status, 404, "{body}");
    // Not HTTP at all: hyper answers 400 or hangs up; either way the server goes on.
    let _ = call(addr, "\x00\x01 not http \r\n\r\n", b"");

    // "aGVsbG8K" is "hello\n".
    let (status, body) = put("aGVsbG8K");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("RecordId"), "{body}");

    assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let lines = mskbench_sim::firehose::count_lines(&s3).unwrap();
    assert_eq!(lines, 1, "the accepted record was written at the stop");
}
