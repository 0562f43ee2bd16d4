//! A distributed run on one machine, as `deploy/kubernetes/` runs it on a
//! cluster: the stand-ins as processes of their own (`serve kafka`,
//! `serve registry`, `serve firehose`), three producer workers told their
//! index by `JOB_COMPLETION_INDEX` (as an Indexed Job does) with one
//! `--start-at`, two `mskbench process` replicas in one consumer group,
//! then `merge` and `account`.
//!
//! Checked: the merged producer stats are the workers' sums; the fleet's
//! rate is within 1% of its target (the workers share one time zero, so
//! their windows coincide); both replicas consumed (the group shared the
//! partitions); every record is delivered once, none lost or duplicated,
//! and the delivered `globalseq`s are exactly 1 to the count (the workers'
//! streams are one ClickEvent stream); and the same totals when the
//! delivered objects are read from S3 (moto) instead of the directory.

// Test helpers panic on setup failures: that is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{Served, wait_bounded};
use mskbench_testkit::Moto;

const WORKERS: usize = 3;
const RATE: u64 = 1500;
const COUNT: u64 = 6000;

/// One test at a time: the fleet's rate is checked to 1%, and a burst of
/// the other test's late worker beside it would be its noise.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mskbench"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every line of the files under `dir`, recursively (hidden ones skipped).
fn lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            out.extend(lines(&path));
        } else {
            out.extend(std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned));
        }
    }
    out
}

fn processor(kafka: &str, registry: &str, firehose: &str, dlq: &Path, summary: &Path) -> Child {
    bin()
        .args(["process", "--brokers", kafka, "--topic", "Fleet", "--group", "fleet"])
        .args(["--batch-size", "200", "--batch-window", "100ms", "--idle-exit", "120s"])
        .args(["--summary-json", summary.to_str().unwrap()])
        .args(["-E", "DELIVERY_STREAM_NAME=MSKToS3", "-E", &format!("AWS_ENDPOINT_URL_FIREHOSE={firehose}")])
        .args(["-E", "CSR=true", "-E", &format!("SCHEMA_REGISTRY_URL={registry}"), "-E", "AWS_REGION=us-east-1"])
        .args(["-E", "AWS_ACCESS_KEY_ID=test", "-E", "AWS_SECRET_ACCESS_KEY=test"])
        .args(["-E", &format!("DEAD_LETTER={}", dlq.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn three_workers_and_two_processors_make_one_exact_result() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3");
    let dlq = dir.path().join("dlq");
    let kafka = Served::start(&["serve", "kafka", "--listen", "127.0.0.1:0", "--partitions", "4", "--topic", "Fleet"]);
    let registry = Served::start(&["serve", "registry", "--listen", "127.0.0.1:0"]);
    let firehose = Served::start(&[
        "serve",
        "firehose",
        "--listen",
        "127.0.0.1:0",
        "--s3-dir",
        s3.to_str().unwrap(),
        "--buffer-interval",
        "1",
        "--allow-small-buffers",
        "--stream",
        "MSKToS3",
        "--seed",
        "1",
    ]);

    // The replicas join the group before any record flows: no rebalance
    // (and so no redelivery) while the workers send.
    let summaries: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("process-{i}.json"))).collect();
    let mut processors: Vec<Child> = summaries
        .iter()
        .map(|s| processor(&kafka.first_line, &registry.first_line, &firehose.first_line, &dlq, s))
        .collect();

    let start_at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(10)).to_string();
    let stats: Vec<PathBuf> = (0..WORKERS).map(|i| dir.path().join(format!("worker-{i}.json"))).collect();
    let mut workers: Vec<Child> = stats
        .iter()
        .enumerate()
        .map(|(i, path)| {
            bin()
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .args(["produce", "--brokers", &kafka.first_line, "--registry", &registry.first_line])
                .args(["--topic", "Fleet", "--workers", &WORKERS.to_string(), "--seed", "11"])
                .args(["--rate", &RATE.to_string(), "--count", &COUNT.to_string(), "--start-at", &start_at])
                .args(["--stats-json", path.to_str().unwrap(), "--no-progress", "--stats-interval", "0"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, w) in workers.iter_mut().enumerate() {
        let status = wait_bounded(w, Duration::from_secs(60), "a producer worker");
        let mut err = String::new();
        std::io::Read::read_to_string(w.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "worker {i}: {err}");
        assert!(err.contains(&format!("worker {i} of {WORKERS}")), "{err}");
    }
    // Every record delivered (or the bound passed): the replicas stop on
    // SIGINT, as on a Ctrl-C, and write their summaries.
    // Distinct lines: a rebalance while the replicas join (slow on a busy
    // machine) redelivers a batch, and its duplicates must not end the wait
    // before the last record is in.
    let distinct = |dir: &Path| lines(dir).into_iter().collect::<std::collections::HashSet<_>>().len() as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while distinct(&s3) < COUNT && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    for p in &processors {
        Command::new("kill").arg("-INT").arg(p.id().to_string()).status().unwrap();
    }
    for p in &mut processors {
        let status = wait_bounded(p, Duration::from_secs(60), "a processor replica");
        let mut err = String::new();
        std::io::Read::read_to_string(p.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "{err}");
    }
    // Stopping the endpoint flushes what it buffers.
    drop(firehose);

    let reports: Vec<serde_json::Value> = stats.iter().map(|p| json(p)).collect();
    let merged_path = dir.path().join("merged.json");
    let merge = bin()
        .arg("merge")
        .args(stats.iter().map(|p| p.to_str().unwrap()))
        .args(["--out", merged_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(merge.status.code(), Some(0), "{}", text(&merge.stderr));
    let merged = json(&merged_path);
    for key in ["sent", "acked", "failed", "measured_records", "warmup_records", "queue_full_waits"] {
        let sum: u64 = reports.iter().map(|r| r[key].as_u64().unwrap()).sum();
        assert_eq!(merged[key].as_u64(), Some(sum), "{key}");
    }
    assert_eq!(merged["sent"].as_u64(), Some(COUNT));
    assert_eq!(merged["workers"].as_array().unwrap().len(), WORKERS);
    assert_eq!(merged["warnings"], serde_json::json!([]), "{merged:#}");
    let (target, achieved) = (merged["rate_target"].as_f64().unwrap(), merged["rate_achieved"].as_f64().unwrap());
    assert!((target - RATE as f64).abs() < 1.0, "target {target}");
    assert!((achieved - target).abs() / target < 0.01, "the fleet achieved {achieved}/s of {target}/s");

    for s in &summaries {
        let summary = json(s);
        assert!(summary["records_in"].as_u64().unwrap() > 0, "a replica that got no partition: {summary}");
    }
    let run = dir.path().join("run");
    let account = bin()
        .arg("account")
        .args(stats.iter().map(|p| p.to_str().unwrap()))
        .args(["--brokers", &kafka.first_line, "--delivered", s3.to_str().unwrap()])
        .args(["--dead-letters", dlq.to_str().unwrap(), "--out", run.to_str().unwrap()])
        .args(summaries.iter().flat_map(|s| ["--processor-summary", s.to_str().unwrap()]))
        .output()
        .unwrap();
    assert_eq!(account.status.code(), Some(0), "{}\n{}", text(&account.stdout), text(&account.stderr));
    let result = json(&run.join("result.json"));
    let t = &result["totals"];
    // Exact: every record delivered once, and each extra copy a rebalance
    // redelivered counted as a duplicate (usually none: the replicas joined
    // before the workers began).
    let copies = lines(&s3).len() as u64;
    assert_eq!(
        (t["produced"].as_u64(), t["delivered"].as_u64(), t["unaccounted"].as_u64(), t["duplicates"].as_u64()),
        (Some(COUNT), Some(COUNT), Some(0), Some(copies - COUNT)),
        "{t}"
    );
    for name in ["report.md", "report.html", "merged.json"] {
        assert!(run.join(name).exists(), "{name}");
    }
    assert!(std::fs::read_to_string(run.join("report.md")).unwrap().contains("## Workers"));
    let mut seqs: Vec<i64> = lines(&s3)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["globalseq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (1..=COUNT as i64).collect::<Vec<_>>(), "the fleet's globalseqs are 1 to the count");

    // The same objects in S3 (moto), read back through `s3://`: the same totals.
    let moto = Moto::start();
    ureq::put(&format!("{}/fleet-bucket", moto.url)).send_empty().unwrap();
    for file in files(&s3) {
        let key = file.strip_prefix(&s3).unwrap().display().to_string();
        ureq::put(&format!("{}/fleet-bucket/MSKToS3/{key}", moto.url)).send(&std::fs::read(&file).unwrap()).unwrap();
    }
    let from_s3 = dir.path().join("run-s3");
    let account = bin()
        .arg("account")
        .args(stats.iter().map(|p| p.to_str().unwrap()))
        .args(["--brokers", &kafka.first_line, "--delivered", "s3://fleet-bucket/MSKToS3"])
        .args(["--out", from_s3.to_str().unwrap()])
        .env("AWS_ENDPOINT_URL_S3", &moto.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(account.status.code(), Some(0), "{}", text(&account.stderr));
    let again = json(&from_s3.join("result.json"));
    for key in ["produced", "delivered", "dead_lettered", "unaccounted", "duplicates", "multiple_outcomes"] {
        assert_eq!(again["totals"][key], t[key], "{key} from S3");
    }
    drop(registry);
    drop(kafka);
}

/// The files under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(files(&path)) } else { out.push(path) }
    }
    out
}

/// A worker that reaches `--start-at` late keeps it as its time zero: it
/// says by how much, its report's clock records it, and its send delay
/// shows it; one that is early waits for it.
#[test]
fn a_late_worker_says_by_how_much_and_its_send_delay_shows_it() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let produce = |start_at: &str, stats: &Path| {
        bin()
            .args(["produce", "--brokers", "mock", "--workers", "2", "--worker-index", "1", "--seed", "3"])
            .args(["--rate", "2000", "--count", "1000", "--start-at", start_at, "--no-progress"])
            .args(["--stats-interval", "0", "--stats-json", stats.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let past = SystemTime::now() - Duration::from_secs(2);
    let late = dir.path().join("late.json");
    let out = produce(&humantime::format_rfc3339_millis(past).to_string(), &late);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("after --start-at"), "{}", text(&out.stderr));
    let report = json(&late);
    let clock = &report["clock"];
    assert!(clock["late_start_ms"].as_f64().unwrap() >= 2000.0, "{clock}");
    assert_eq!(clock["start_unix_ms"], clock["start_at_unix_ms"], "time zero stays the instant asked for");
    assert!(report["send_delay_ms"]["max"].as_f64().unwrap() >= 1500.0, "{}", report["send_delay_ms"]);
    assert_eq!((report["sent"].as_u64(), report["worker"]["index"].as_u64()), (Some(500), Some(1)));

    let early = dir.path().join("early.json");
    // Far enough ahead for a worker starting on a loaded machine to be early.
    let asked = SystemTime::now() + Duration::from_secs(8);
    let out = produce(&humantime::format_rfc3339_millis(asked).to_string(), &early);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("after --start-at"), "{}", text(&out.stderr));
    let clock = json(&early)["clock"].clone();
    let asked_ms = asked.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    assert!((clock["start_unix_ms"].as_f64().unwrap() - asked_ms).abs() < 1.0, "{clock}");
    assert!(clock["late_start_ms"].as_f64().unwrap() < 10.0, "{clock}");
}
