//! `mskbench produce` as a user runs it, against processes outside the
//! producer: `mskbench serve kafka` (the embedded broker in its own
//! process) and `mskbench serve registry`, read back by kcat — a real Kafka
//! client that is not ours — and decoded with mskbench-core under the
//! schema the registry serves. kcat comes from Debian (`.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use mskbench_core::Transcoder;
use mskbench_core::wire::{SchemaKey, WireMode, unframe};
use mskbench_producer::clickevent::{ModelChecker, ReadEvent};

mod common;
use common::Served;
use mskbench_testkit::Moto;

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mskbench-produce-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// kcat as a user runs it from a shell. Cargo gives test processes an
/// `LD_LIBRARY_PATH` into `target/`, and kcat inherited it: it loaded the
/// librdkafka that `rdkafka-sys` built (2.12.1) instead of its own
/// (Debian 12: 2.0.2), and these tests passed only under `cargo test`.
/// With the environment cleaned, Debian's kcat failed against tansu 0.6
/// ("Read underflow" in ApiVersions v3) until `patches/tansu-service`.
fn kcat() -> Command {
    let plain = || {
        let mut cmd = Command::new("kcat");
        cmd.env_remove("LD_LIBRARY_PATH");
        cmd
    };
    let ok = plain().arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(ok, "kcat is not installed: run .ci/run (it installs the Debian package) or apt-get install kcat");
    plain()
}

/// Records as kcat prints them with `-f '%p %o %K %S\n%k%s'`: a header
/// line with the lengths, then the raw key and value bytes.
fn parse_kcat(mut out: &[u8]) -> Vec<(i32, Option<Vec<u8>>, Vec<u8>)> {
    let mut records = Vec::new();
    while !out.is_empty() {
        let nl = out.iter().position(|&b| b == b'\n').unwrap();
        let header = std::str::from_utf8(&out[..nl]).unwrap().to_owned();
        out = &out[nl + 1..];
        let f: Vec<&str> = header.split(' ').collect();
        let (partition, key_len, value_len): (i32, i64, usize) =
            (f[0].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap());
        let key = (key_len >= 0).then(|| {
            let mut k = vec![0; key_len as usize];
            out.read_exact(&mut k).unwrap();
            k
        });
        let mut value = vec![0; value_len];
        out.read_exact(&mut value).unwrap();
        records.push((partition, key, value));
    }
    records
}

#[test]
fn kcat_reads_what_produce_wrote_to_serve_kafka() {
    let kafka = Served::start(&["serve", "kafka", "--listen", "127.0.0.1:0", "--partitions", "2", "--topic", "Clicks"]);
    let registry = Served::start(&["serve", "registry", "--listen", "127.0.0.1:0"]);
    let dir = tempdir("kcat");
    let stats = dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["produce", "--brokers", &kafka.first_line, "--topic", "Clicks", "--registry", &registry.first_line])
        .args(["--count", "1000", "--rate", "5000", "--seed", "7", "--no-progress", "--stats-interval", "0"])
        .args(["--stats-json", stats.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!((s["sent"].as_u64(), s["acked"].as_u64(), s["failed"].as_u64()), (Some(1000), Some(1000), Some(0)));
    let id: u32 = s["schema"].as_str().unwrap().parse().unwrap();

    // The schema as the registry serves it.
    let body = ureq::get(&format!("{}/schemas/ids/{id}", registry.first_line))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    let transcoder = Transcoder::from_schema_json(served["schema"].as_str().unwrap()).unwrap();

    let read = kcat()
        .args(["-C", "-b", &kafka.first_line, "-t", "Clicks", "-o", "beginning", "-e", "-q"])
        .args(["-f", "%p %o %K %S\n%k%s"])
        .output()
        .unwrap();
    assert!(read.status.success(), "kcat: {}", String::from_utf8_lossy(&read.stderr));
    let records = parse_kcat(&read.stdout);
    assert_eq!(records.len(), 1000);
    let mut partitions = std::collections::BTreeSet::new();
    // kcat interleaves partitions; the model is checked per partition.
    let mut by_partition: std::collections::BTreeMap<i32, Vec<_>> = Default::default();
    for (p, k, v) in records {
        partitions.insert(p);
        by_partition.entry(p).or_default().push((k, v));
    }
    assert_eq!(partitions.len(), 2);
    let mut checker = ModelChecker::new();
    let mut json = Vec::new();
    for records in by_partition.values() {
        for (key, value) in records {
            let framed = unframe(value, WireMode::Confluent).unwrap();
            assert_eq!(framed.schema, SchemaKey::Confluent(id));
            json.clear();
            transcoder.transcode(framed.datum, &mut json, 1 << 20).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let key = String::from_utf8(key.clone().unwrap()).unwrap();
            checker.check(&ReadEvent::from_json(Some(key), &v).unwrap()).unwrap();
        }
    }
    assert_eq!(checker.events(), 1000);
}

#[test]
fn produce_embedded_writes_the_contract_stats_and_an_hlog() {
    let dir = tempdir("embedded");
    let stats = dir.join("stats.json");
    let hlog = dir.join("run.hlog");
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["produce", "--brokers", "embedded", "--registry", "embedded", "--count", "2000", "--rate", "2000"])
        .args(["--warmup", "200ms", "--no-progress", "--stats-interval", "0.5"])
        .args(["--stats-json", stats.to_str().unwrap(), "--hlog", hlog.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("seed "), "the chosen seed is printed: {stderr}");
    assert!(stderr.contains("acked 2000"), "{stderr}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    for key in ["sent", "acked", "failed", "rate_target", "rate_achieved"] {
        assert!(s[key].is_number(), "{key}: {s}");
    }
    for key in ["ack_latency_ms", "send_delay_ms"] {
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(s[key][p].is_number(), "{key}.{p}: {s}");
        }
    }
    assert_eq!(s["rate_target"].as_f64(), Some(2000.0));
    assert!(s["warmup_records"].as_u64().unwrap() >= 300, "{s}");
    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(log.contains("#[StartTime:"), "{log}");
    assert!(log.contains("Tag=ack,") && log.contains("Tag=send_delay,"), "{log}");
}

#[test]
fn produce_refuses_a_run_without_an_end() {
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench")).args(["produce", "--rate", "10"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn glue_framed_values_registered_in_moto() {
    let moto = Moto::start();
    let kafka =
        Served::start(&["serve", "kafka", "--listen", "127.0.0.1:0", "--partitions", "1", "--topic", "GlueTopic"]);
    let transcoder = Transcoder::from_schema_json(mskbench_producer::clickevent::SCHEMA).unwrap();
    let mut versions = Vec::new();
    for (round, compression) in ["none", "zlib"].into_iter().enumerate() {
        let dir = tempdir(&format!("glue-{compression}"));
        let stats = dir.join("stats.json");
        let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .args(["produce", "--brokers", &kafka.first_line, "--topic", "GlueTopic", "--glue-registry", "lab"])
            .args(["--glue-endpoint", &moto.url, "--glue-region", "us-east-1", "--glue-compression", compression])
            .args(["--count", "300", "--rate", "max", "--no-progress", "--stats-interval", "0"])
            .args(["--stats-json", stats.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        let version = uuid::Uuid::parse_str(s["schema"].as_str().unwrap()).unwrap();
        versions.push(version);

        let read = kcat()
            .args(["-C", "-b", &kafka.first_line, "-t", "GlueTopic", "-o", &(round * 300).to_string(), "-e", "-q"])
            .args(["-f", "%p %o %K %S\n%k%s"])
            .output()
            .unwrap();
        let records = parse_kcat(&read.stdout);
        assert_eq!(records.len(), 300, "{}", String::from_utf8_lossy(&read.stderr));
        let mut checker = ModelChecker::new();
        let mut datum = Vec::new();
        let mut json = Vec::new();
        for (_, key, value) in &records {
            assert_eq!(value[0], 0x03);
            assert_eq!(value[1], if compression == "zlib" { 0x05 } else { 0x00 });
            let framed = unframe(value, WireMode::Glue).unwrap();
            assert_eq!(framed.schema, SchemaKey::Glue(version));
            datum.clear();
            let bytes = match framed.compression {
                mskbench_core::wire::Compression::Zlib => {
                    let range = mskbench_core::wire::inflate_append(framed.datum, &mut datum, 1 << 20).unwrap();
                    &datum[range]
                }
                mskbench_core::wire::Compression::None => framed.datum,
            };
            json.clear();
            transcoder.transcode(bytes, &mut json, 1 << 20).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let key = String::from_utf8(key.clone().unwrap()).unwrap();
            checker.check(&ReadEvent::from_json(Some(key), &v).unwrap()).unwrap();
        }
    }
    // The same schema registers once: the second run reuses the version.
    assert_eq!(versions[0], versions[1]);
}

/// `ramp:10:0:1s` sends 6 records, then none is ever due. With `--count 6`
/// the loop ended its window at that infinite due time, and both rates came
/// out as 0.
#[test]
fn a_count_that_a_falling_profile_reaches_reports_real_rates() {
    let dir = tempdir("falling");
    let stats = dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["produce", "--profile", "ramp:10:0:1s", "--count", "6", "--seed", "3", "--no-progress"])
        .args(["--stats-interval", "0", "--stats-json", stats.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(s["acked"].as_u64(), Some(6));
    let (target, achieved) = (s["rate_target"].as_f64().unwrap(), s["rate_achieved"].as_f64().unwrap());
    assert!(target > 0.0 && target.is_finite() && achieved > 0.0 && achieved.is_finite(), "{s}");
}
