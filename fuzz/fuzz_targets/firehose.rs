//! The Firehose stand-in's request handling: the JSON bodies of every
//! operation, parsed, validated and acted on as `POST /` does.
//!
//! The input is up to eight calls separated by `0xFF` bytes (never part of
//! a UTF-8 body); each call is one byte choosing the operation and the
//! body. They run in order against a fresh endpoint with stream `s`, so
//! creates, puts, lists and deletes meet each other. Oracles: every
//! answer is a 200 body or one of the error codes the endpoint serves,
//! never `InternalFailure` (no faults are injected here; it would be a
//! response that could not be encoded); a `PutRecordBatch` answer has one
//! entry per record, each a record id or an error code, and
//! `FailedPutCount` counts the errors.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mskbench_sim::fuzzing::FirehoseCalls;
use serde_json::Value;

const OPERATIONS: [&str; 7] = [
    "PutRecordBatch",
    "PutRecord",
    "CreateDeliveryStream",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "DeleteDeliveryStream",
    "UpdateDestination",
];

const CODES: [&str; 6] = [
    "InvalidArgumentException",
    "ResourceNotFoundException",
    "ResourceInUseException",
    "SerializationException",
    "ServiceUnavailableException",
    "UnknownOperationException",
];

/// Where created streams' prefixes make their directories; emptied after
/// every input that made one, so a long run does not fill the disk.
static S3_DIR: LazyLock<(tempfile::TempDir, PathBuf)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let path = dir.path().join("s3");
    (dir, path)
});

fuzz_target!(|data: &[u8]| {
    let s3_dir = &S3_DIR.1;
    let calls = match FirehoseCalls::new(s3_dir) {
        Ok(calls) => calls,
        Err(e) => panic!("a fresh endpoint refuses its first stream: {e}"),
    };
    for call in data.split(|&b| b == 0xff).take(8) {
        let Some((&op, body)) = call.split_first() else { continue };
        let operation = OPERATIONS[usize::from(op) % OPERATIONS.len()];
        match calls.call(operation, body) {
            Ok(answer) if operation == "PutRecordBatch" => check_batch_answer(body, &answer),
            Ok(_) => {}
            Err((code, message)) => {
                assert!(CODES.contains(&code), "{operation} answered {code}: {message}");
            }
        }
    }
    let made_dirs = std::fs::read_dir(s3_dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if made_dirs {
        let _ = std::fs::remove_dir_all(s3_dir);
    }
});

fn check_batch_answer(body: &[u8], answer: &Value) {
    let Ok(request) = serde_json::from_slice::<Value>(body) else { panic!("a body serde_json refuses was accepted") };
    let records = request["Records"].as_array().map_or(0, Vec::len);
    let Some(entries) = answer["RequestResponses"].as_array() else { panic!("no RequestResponses: {answer}") };
    assert_eq!(entries.len(), records, "one entry per record");
    let failed = entries.iter().filter(|e| e.get("ErrorCode").is_some()).count();
    assert!(entries.iter().all(|e| e.get("RecordId").is_some() != e.get("ErrorCode").is_some()));
    assert_eq!(answer["FailedPutCount"].as_u64(), Some(failed as u64), "FailedPutCount miscounts: {answer}");
}
