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
                declared: false,
            }),
            settings: serde_json::json!({}),
            interrupted: false,
            aborted: None,
            overrides: Vec::new(),
            tags: Default::default(),
        },
        totals: Totals { produced: 3000, delivered: 3000 - unaccounted, unaccounted, ..Totals::default() },
        latency_ms: [("e2e".to_string(), Percentiles { p50: 50.0, p90: 80.0, p99: e2e_p99, p999: 150.0, max: 200.0 })]
            .into_iter()
            .collect(),
        series: (0..3).map(|t| Sample { t, produced: 1000, records_accepted: 1000, ..Sample::default() }).collect(),
        slo: Vec::new(),
        faults: Vec::new(),
        phases: Vec::new(),
        latency_curve_ms: Default::default(),
        harness_saturated: None,
        cost: None,
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
    // The cause once, not once in the message and again as its source.
    let garbled = dir.join("garbled.json");
    std::fs::write(&garbled, "not json").unwrap();
    let out = mskbench(&["compare", garbled.to_str().unwrap(), garbled.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("expected ident").count(), 1, "{stderr}");
    let ok = write(&dir, "ok.json", &result(1.0, 0));
    let out = mskbench(&["compare", ok.to_str().unwrap(), ok.to_str().unwrap(), "--threshold", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}

/// An aggregate of runs whose e2e p99 takes `p99s`, written as `dir/name/result.json`.
fn write_set(dir: &Path, name: &str, p99s: &[f64], settings: serde_json::Value) -> PathBuf {
    let runs: Vec<(String, RunResult)> = p99s
        .iter()
        .enumerate()
        .map(|(i, &p99)| {
            let mut r = result(p99, 0);
            r.scenario.seed = i as u64;
            r.scenario.settings = settings.clone();
            (format!("run-{}", i + 1), r)
        })
        .collect();
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let aggregate = mskbench_reports::Aggregate::of(&runs).unwrap();
    std::fs::write(folder.join("result.json"), serde_json::to_string_pretty(&aggregate).unwrap()).unwrap();
    folder
}

#[test]
fn compare_of_repeated_runs_tells_noise_from_a_change() {
    let dir = tempdir("sets");
    let settings = serde_json::json!({"processor": {"batch_size": 1000}});
    let base = write_set(&dir, "base", &[100.0, 130.0, 95.0, 120.0, 105.0], settings.clone());
    // The median moves 105 → 115, beyond 5%, but the runs interleave.
    let noisy = write_set(&dir, "noisy", &[115.0, 98.0, 125.0, 110.0, 135.0], settings.clone());
    let slower = write_set(&dir, "slower", &[150.0, 160.0, 155.0, 170.0, 165.0], settings.clone());
    let (base, noisy, slower) = (base.to_str().unwrap(), noisy.to_str().unwrap(), slower.to_str().unwrap());

    let out = mskbench(&["compare", base, noisy]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(table.contains("within noise: e2e_p99_ms"), "{table}");
    let out = mskbench(&["compare", base, slower]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("Regressed: e2e_p99_ms."), "{table}");

    // A folder of run folders without an aggregate is aggregated on the way.
    let loose = dir.join("loose");
    for (i, p99) in [150.0, 160.0, 155.0, 170.0, 165.0].iter().enumerate() {
        let run = loose.join(format!("run-{}", i + 1));
        std::fs::create_dir_all(&run).unwrap();
        let mut r = result(*p99, 0);
        r.scenario.settings = settings.clone();
        write(&run, "result.json", &r);
    }
    let out = mskbench(&["compare", base, loose.to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("(candidate, 5 runs)") && table.contains("Regressed: e2e_p99_ms."), "{table}");

    // Other settings: refused, and named; --force compares all the same.
    let other = write_set(&dir, "other", &[100.0; 5], serde_json::json!({"processor": {"batch_size": 500}}));
    let out = mskbench(&["compare", base, other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("processor.batch_size: 1000 ≠ 500") && stderr.contains("--force"), "{stderr}");
    let out = mskbench(&["compare", base, other.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn an_interrupted_run_says_so_at_the_top_and_compare_refuses_it_unless_forced() {
    let dir = tempdir("interrupted");
    let base = write(&dir, "base.json", &result(100.0, 0));
    let mut cut = result(100.0, 0);
    cut.scenario.interrupted = true;
    let cut = write(&dir, "cut.json", &cut);
    let out = mskbench(&["report", cut.to_str().unwrap()]);
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.lines().nth(2).is_some_and(|l| l.starts_with("**Interrupted**")), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<b>Interrupted</b>"), "{html}");

    let out = mskbench(&["compare", base.to_str().unwrap(), cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mskbench(&["compare", base.to_str().unwrap(), cut.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn an_aborted_run_says_so_at_the_top_and_compare_refuses_it_unless_forced() {
    let dir = tempdir("aborted");
    let base = write(&dir, "base.json", &result(100.0, 0));
    let mut cut = result(100.0, 0);
    cut.scenario.aborted =
        Some(mskbench_reports::Aborted { slo: "throttled_ratio < 0.05".into(), at_s: 4, value: 0.3 });
    let cut = write(&dir, "cut.json", &cut);
    let out = mskbench(&["report", cut.to_str().unwrap()]);
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.lines().nth(2).is_some_and(|l| l.starts_with("**Aborted** at t = 4 s")), "{md}");

    let out = mskbench(&["compare", base.to_str().unwrap(), cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped early by its SLO `throttled_ratio < 0.05` (abort = true)"), "{stderr}");
    let out = mskbench(&["compare", base.to_str().unwrap(), cut.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(0));
}
