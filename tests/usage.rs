//! Bad numbers in flags and scenario files are usage errors: exit 2 with a
//! message naming the value, before anything starts — never a panic
//! (exit 101), an abort while allocating, or a run that never ends.
//!
//! Each case is one the suite got wrong before (issue 12, class 9); each
//! process is given 20 s and killed after, so a hang fails the test
//! instead of stalling it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `mskbench args…` and returns its exit code (`None` when killed
/// after `limit`) and stderr.
fn mskbench(args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.and_then(|s| s.code()), stderr)
}

/// Asserts that `args` are refused with exit 2 and a message containing `says`.
fn refused(args: &[&str], says: &str) {
    let (code, stderr) = mskbench(args, Duration::from_secs(20));
    assert_eq!(code, Some(2), "mskbench {args:?} should exit 2 (None = still running after 20 s); stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "mskbench {args:?} panicked:\n{stderr}");
    assert!(stderr.contains(says), "mskbench {args:?}: stderr should say {says:?}:\n{stderr}");
}

#[test]
fn an_infinite_stats_interval_is_refused_not_a_panic() {
    refused(&["produce", "--rate", "10", "--count", "1", "--stats-interval", "inf"], "\"inf\" is not a duration");
    refused(&["produce", "--rate", "10", "--count", "1", "--stats-interval=-1"], "is not a duration");
}

#[test]
fn a_count_beyond_a_profile_falling_to_zero_is_refused_not_a_panic() {
    refused(&["produce", "--profile", "ramp:10:0:1s", "--count", "100"], "never reached");
}

#[test]
fn zero_partitions_are_refused_not_a_hang() {
    refused(&["produce", "--rate", "10", "--count", "1", "--partitions", "0"], "--partitions");
}

#[test]
fn lengths_beyond_any_record_are_refused_not_an_abort() {
    refused(&["produce", "--rate", "10", "--count", "1", "--array-len", "0..100000000000"], "above the longest length");
    refused(&["produce", "--rate", "10", "--count", "1", "--pad-bytes", "99999999999"], "above the longest length");
}

#[test]
fn zero_attempts_and_over_long_batch_windows_are_refused() {
    let base = ["process", "--brokers", "127.0.0.1:1", "--group", "g"];
    refused(&[&base[..], &["--max-attempts", "0"]].concat(), "--max-attempts");
    refused(&[&base[..], &["--batch-window", "301s"]].concat(), "over 300s");
    refused(&[&base[..], &["--batch-window", "500"]].concat(), "needs a unit, e.g. 500ms");
    refused(&[&base[..], &["--idle-exit", "2000"]].concat(), "needs a unit");
}

#[test]
fn failure_handling_settings_outside_awss_ranges_are_refused_naming_them() {
    let base = ["process", "--brokers", "127.0.0.1:1", "--group", "g"];
    refused(&[&base[..], &["--maximum-retry-attempts", "-2"]].concat(), "--maximum-retry-attempts");
    refused(&[&base[..], &["--maximum-retry-attempts", "10001"]].concat(), "--maximum-retry-attempts");
    refused(&[&base[..], &["--maximum-record-age-in-seconds", "59"]].concat(), "MaximumRecordAgeInSeconds");
    refused(&[&base[..], &["--function-response-types", "Partial"]].concat(), "ReportBatchItemFailures");
    refused(&[&base[..], &["--on-failure", "gs://bucket/x"]].concat(), "--on-failure");
    let dir = tempfile::tempdir().unwrap();
    let smoke = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml")).unwrap();
    let file = dir.path().join("bad-mapping.toml");
    std::fs::write(&file, format!("{smoke}\n[mapping]\nmaximum_record_age_in_seconds = 30\n")).unwrap();
    let out = dir.path().join("out");
    refused(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()], "mapping.maximum_record_age_in_seconds");
    assert!(!out.exists(), "nothing may start for a refused scenario");
}

#[test]
fn a_scenario_batch_window_beyond_the_mappings_most_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml")).unwrap();
    let bad = smoke.replace("batch_window = \"200ms\"", "batch_window = \"301s\"");
    assert_ne!(bad, smoke, "smoke.toml no longer sets batch_window = \"200ms\"");
    let file = dir.path().join("long-window.toml");
    std::fs::write(&file, bad).unwrap();
    let out = dir.path().join("out");
    refused(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()], "processor.batch_window");
    assert!(!out.exists(), "nothing may start for a refused scenario");
}

#[test]
fn a_negative_number_gets_a_message_about_the_value_not_unexpected_argument() {
    refused(&["produce", "--rate", "-5", "--count", "1"], "\"-5\" is not a rate");
    refused(
        &["process", "--brokers", "127.0.0.1:1", "--group", "g", "--batch-size", "-1"],
        "invalid value '-1' for '--batch-size",
    );
}

#[test]
fn a_fault_window_outside_the_run_is_refused_naming_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let crash =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/fault-processor-crash.toml"))
            .unwrap();
    let out = dir.path().join("out");
    for (from, to, says) in [
        ("duration = \"2s\"", "duration = \"1h\"", "faults[1] (processor_crash): ends at 1h 4s, after the run"),
        ("duration = \"2s\"", "duration = \"-2s\"", "not a duration"),
        ("duration = \"2s\"", "duration = \"inf\"", "not a duration"),
        ("at = \"4s\"", "at = \"40s\"", "faults[1] (processor_crash): starts at 40s, not before producing ends"),
    ] {
        let bad = crash.replace(from, to);
        assert_ne!(bad, crash, "fault-processor-crash.toml no longer has {from}");
        let file = dir.path().join("bad-fault.toml");
        std::fs::write(&file, bad).unwrap();
        refused(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()], says);
        assert!(!out.exists(), "nothing may start for a refused scenario");
    }
}

#[test]
fn a_fleet_that_cannot_be_is_refused_before_anything_starts() {
    let base = ["produce", "--brokers", "mock", "--rate", "10", "--count", "10", "--seed", "1"];
    let with = |extra: &[&'static str]| base.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>();
    refused(&with(&["--workers", "0"]), "--workers");
    refused(&with(&["--workers", "3", "--worker-index", "3"]), "not below the number of workers, 3");
    refused(&with(&["--start-at", "tomorrow"]), "is not a time");
    refused(&["produce", "--brokers", "mock", "--rate", "10", "--count", "10", "--workers", "2"], "needs one --seed");
    refused(&["merge", "no-such-worker.json"], "cannot read no-such-worker.json");
}
