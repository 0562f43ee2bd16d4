//! `mskbench run` with a `[mapping]` table: the event source mapping's
//! failure handling as AWS configures it, counted from the outside.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use mskbench_reports::RunResult;

#[test]
fn batches_discarded_to_the_on_failure_destination_are_counted_as_on_failure_never_as_lost() {
    // The registry refuses connections for the first 2 s: invocations fail
    // (no schema), and with MaximumRetryAttempts = 0 each failed batch is
    // discarded at once to the run folder's on-failure/.
    let scenario = r#"
name = "on-failure"
seed = 5
drain = "30s"
slo = ["unaccounted == 0"]

[[phases]]
name = "steady"
duration = "5s"
rate = 400

[processor]
batch_size = 200
batch_window = "200ms"

[mapping]
maximum_retry_attempts = 0
on_failure = "run"

[[faults]]
kind = "registry_down"
from = "0s"
duration = "2s"
mode = "refuse"
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("on-failure.toml");
    std::fs::write(&file, scenario).unwrap();
    let out_dir = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["run", file.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--no-progress"])
        .output()
        .unwrap();
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = RunResult::from_json(&std::fs::read_to_string(out_dir.join("result.json")).unwrap()).unwrap();
    let t = r.totals;
    assert_eq!(t.produced, 2000, "{t:?}");
    assert!(t.on_failure > 0, "the outage's batches went to the on-failure destination: {t:?}\n{log}");
    assert_eq!(t.unaccounted, 0, "{t:?}");
    assert_eq!(t.delivered + t.dead_lettered + t.on_failure, t.produced, "{t:?}");
    // Lambda's S3 layout, under the run folder.
    let docs: Vec<_> = walk(&out_dir.join("on-failure"));
    assert!(!docs.is_empty());
    for d in &docs {
        let rel = d.strip_prefix(out_dir.join("on-failure")).unwrap().to_string_lossy().into_owned();
        assert!(rel.starts_with("aws/lambda/"), "{rel}");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d).unwrap()).unwrap();
        assert_eq!(v["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 1);
        assert_eq!(v["responseContext"]["functionError"], "Unhandled");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
