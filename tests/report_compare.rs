//! `mskbench report` and `mskbench compare` on result files, as CI uses them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mskbench_reports::model::QuotaLines;
use mskbench_reports::{Percentiles, RunResult, SCHEMA_VERSION, Sample, ScenarioInfo, Totals};

fn result(e2e_p99: f64, unaccounted: u64) -> RunResult {
    RunResult {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: "lab".into(),
            file: "scenarios/lab.toml".into(),
            seed: 1,
            started_at: "2026-11-27T12:00:00Z".into(),
            duration_s: 3.0,
            quota: Some(QuotaLines {
                records_per_sec: 500_000.0,
                requests_per_sec: 2000.0,
                bytes_per_sec: 5_242_880.0,
            }),
            settings: serde_json::json!({}),
        },
        totals: Totals { produced: 3000, delivered: 3000 - unaccounted, unaccounted, ..Totals::default() },
        latency_ms: [("e2e".to_string(), Percentiles { p50: 50.0, p90: 80.0, p99: e2e_p99, p999: 150.0, max: 200.0 })]
            .into_iter()
            .collect(),
        series: (0..3).map(|t| Sample { t, produced: 1000, records_accepted: 1000, ..Sample::default() }).collect(),
        slo: Vec::new(),
        faults: Vec::new(),
    }
}

fn write(dir: &Path, name: &str, r: &RunResult) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(r).unwrap()).unwrap();
    path
}

fn mskbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mskbench")).args(args).output().unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mskbench-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn report_rerenders_markdown_and_html_beside_the_result() {
    let dir = tempdir("report");
    let path = write(&dir, "result.json", &result(100.0, 0));
    let out = mskbench(&["report", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().contains("# mskbench run: lab"));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("quota 500k records/s"));
    assert!(dir.join("report.md").exists());
}

#[test]
fn compare_exits_0_when_nothing_regressed_and_1_when_something_did() {
    let dir = tempdir("compare");
    let base = write(&dir, "base.json", &result(100.0, 0));
    let same = write(&dir, "same.json", &result(102.0, 0));
    let slower = write(&dir, "slower.json", &result(120.0, 0));
    let lossy = write(&dir, "lossy.json", &result(100.0, 1));

    let out = mskbench(&["compare", base.to_str().unwrap(), same.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| e2e_p99_ms | 100 | 102 | +2.0% | lower | ok |"), "{table}");

    let out = mskbench(&["compare", base.to_str().unwrap(), slower.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let out = mskbench(&["compare", base.to_str().unwrap(), slower.to_str().unwrap(), "--threshold", "25"]);
    assert_eq!(out.status.code(), Some(0));
    let out = mskbench(&["compare", base.to_str().unwrap(), lossy.to_str().unwrap(), "--threshold", "1000"]);
    assert_eq!(out.status.code(), Some(1), "any loss regresses");
}

#[test]
fn unreadable_results_exit_2() {
    let dir = tempdir("bad");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"schema_version": 99}"#).unwrap();
    let out = mskbench(&["compare", bad.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema_version 99"));
    let out = mskbench(&["report", "/nonexistent/result.json"]);
    assert_eq!(out.status.code(), Some(2));
    let ok = write(&dir, "ok.json", &result(1.0, 0));
    let out = mskbench(&["compare", ok.to_str().unwrap(), ok.to_str().unwrap(), "--threshold", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}
