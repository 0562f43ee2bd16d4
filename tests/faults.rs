//! `mskbench run` with a `[[faults]]` schedule: short versions of the
//! shipped fault scenarios (`scenarios/fault-*.toml`), a few seconds each.
//!
//! Each test checks two things from the run's result: nothing was lost
//! (`unaccounted == 0`, from the accounting's read-back, which does not
//! trust the processor), and the fault really happened and hit the
//! pipeline (duplicates after a crash mid-batch, failed invocations while
//! the registry was down, 5xx answers and resends while Firehose was,
//! delayed bytes under added latency). Without the fault each of the
//! second checks fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use mskbench_reports::{FaultRecord, RunResult};

/// Runs `scenario` (TOML text) and returns its result and exit status; the
/// run's stderr on failure.
fn run(name: &str, scenario: &str) -> (RunResult, Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.toml"));
    std::fs::write(&file, scenario).unwrap();
    let out_dir: PathBuf = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["run", file.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--no-progress"])
        .output()
        .unwrap();
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(out_dir.join("result.json")).unwrap_or_else(|e| panic!("{e}\n{log}"));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    let result = RunResult::from_json(&text).unwrap();
    for f in &result.faults {
        assert!(md.contains(&format!("| {} |", f.label())), "report.md lists {}:\n{md}", f.label());
        // The band's tooltip names the fault and its window.
        assert!(html.contains(&format!("<title>{}: ", f.label())), "report.html shades {}", f.label());
    }
    (result, out.status.code(), log)
}

fn effect(f: &FaultRecord, name: &str) -> u64 {
    f.effects.get(name).copied().unwrap_or(0)
}

const HEAD: &str = r#"
seed = 3
drain = "30s"
slo = ["unaccounted == 0"]

[[phases]]
name = "steady"
duration = "5s"
rate = 400
"#;

#[test]
fn a_processor_crash_mid_batch_redelivers_as_duplicates_and_loses_nothing() {
    // Invocations of up to 100 records in calls of 10, one at a time, each
    // answered after 20 ms: the crash lands after some were accepted. One
    // partition, so the restarted mapping resumes at a committed offset
    // inside a producer batch, where tansu 0.6 unpatched skipped the rest of
    // the batch (patches/tansu-storage): 62 and 43 records lost in two of
    // three runs here.
    let scenario = format!(
        "name = \"crash\"\n{HEAD}\n[producer]\npartitions = 1\n\n[processor]\nbatch_size = 100\nbatch_window = \"300ms\"\nrecords_per_call = 10\n\
         concurrency = 1\n\n[firehose.faults]\nlatency = \"fixed:20ms\"\n\n\
         [[faults]]\nkind = \"processor_crash\"\nat = \"2s\"\nduration = \"1s\"\n"
    );
    let (r, code, log) = run("crash", &scenario);
    assert_eq!(code, Some(0), "{log}");
    let t = r.totals;
    assert_eq!(t.produced, 2000, "{t:?}");
    assert_eq!((t.unaccounted, t.dead_lettered, t.multiple_outcomes), (0, 0, 0), "{t:?}\n{log}");
    assert!(t.duplicates > 0, "records accepted before the crash came back as duplicates: {t:?}");
    assert_eq!(t.delivered, t.produced, "{t:?}");
    let [crash] = r.faults.as_slice() else { panic!("{:?}", r.faults) };
    assert_eq!(crash.kind, "processor_crash");
    assert!(effect(crash, "invocations_cut") >= 1, "{crash:?}");
    assert!((crash.until_s - crash.from_s - 1.0).abs() < 1e-6, "{crash:?}");
}

#[test]
fn a_registry_outage_fails_invocations_until_it_ends_and_loses_nothing() {
    // Down from the first record on, before the processor fetched its schema.
    let scenario = format!(
        "name = \"registry\"\n{HEAD}\n[processor]\nbatch_size = 200\nbatch_window = \"200ms\"\n\n\
         [[faults]]\nkind = \"registry_down\"\nfrom = \"0s\"\nduration = \"2s\"\nmode = \"refuse\"\n"
    );
    let (r, code, log) = run("registry", &scenario);
    assert_eq!(code, Some(0), "{log}");
    let t = r.totals;
    assert_eq!((t.produced, t.delivered, t.unaccounted, t.dead_lettered), (2000, 2000, 0, 0), "{t:?}\n{log}");
    let [down] = r.faults.as_slice() else { panic!("{:?}", r.faults) };
    assert_eq!(down.label(), "registry_down (refuse)");
    assert!(effect(down, "failed_invocations") > 0, "the outage failed invocations: {down:?}");
}

#[test]
fn a_firehose_outage_is_resent_or_dead_lettered_never_lost() {
    let scenario = format!(
        "name = \"firehose\"\n{HEAD}\n[processor]\nbatch_size = 200\nbatch_window = \"200ms\"\n\n\
         [[faults]]\nkind = \"firehose_down\"\nfrom = \"1s\"\nduration = \"1s\"\nmode = \"http_503\"\n\n\
         [[faults]]\nkind = \"firehose_down\"\nfrom = \"3s\"\nduration = \"1s\"\nmode = \"refuse\"\n"
    );
    let (r, code, log) = run("firehose", &scenario);
    assert_eq!(code, Some(0), "{log}");
    let t = r.totals;
    assert_eq!(t.produced, 2000, "{t:?}");
    assert_eq!(t.unaccounted, 0, "dead letters are outcomes, losses are not: {t:?}\n{log}");
    assert!(t.delivered + t.dead_lettered >= t.produced, "{t:?}");
    let [unavailable, refused] = r.faults.as_slice() else { panic!("{:?}", r.faults) };
    assert!(effect(unavailable, "answered_5xx") > 0, "{unavailable:?}");
    assert!(effect(unavailable, "throttled_calls") > 0, "503 is a throttled call to the processor: {unavailable:?}");
    assert!(
        effect(refused, "retry_calls") + effect(refused, "dead_lettered") + effect(refused, "failed_invocations") > 0,
        "refused connections cost resends or dead letters: {refused:?}"
    );
}

#[test]
fn added_network_latency_delays_the_broker_path_and_loses_nothing() {
    let scenario = format!(
        "name = \"latency\"\n{HEAD}\n[processor]\nbatch_size = 200\nbatch_window = \"200ms\"\n\n\
         [[faults]]\nkind = \"network_latency\"\nfrom = \"1s\"\nduration = \"2s\"\nlatency = \"100ms\"\n"
    );
    let (r, code, log) = run("latency", &scenario);
    assert_eq!(code, Some(0), "{log}");
    let t = r.totals;
    assert_eq!((t.produced, t.delivered, t.unaccounted, t.dead_lettered, t.duplicates), (2000, 2000, 0, 0, 0), "{t:?}");
    let [slow] = r.faults.as_slice() else { panic!("{:?}", r.faults) };
    assert_eq!(slow.label(), "network_latency (100ms)");
    assert!(effect(slow, "delayed_chunks") > 0, "bytes to and from the broker were held: {slow:?}");
}

#[test]
fn a_broker_restart_cuts_every_connection_and_loses_nothing() {
    let scenario = format!(
        "name = \"broker-restart\"\n{HEAD}\n[processor]\nbatch_size = 200\nbatch_window = \"200ms\"\n\n\
         [[faults]]\nkind = \"broker_restart\"\nfrom = \"2s\"\nduration = \"1s\"\n"
    );
    let (r, code, log) = run("broker-restart", &scenario);
    assert_eq!(code, Some(0), "{log}");
    let t = r.totals;
    // Acknowledged records are all there after the restart; a produce
    // request cut before its answer is sent again, a batch whose commit
    // the restart cut is invoked again: duplicates, never losses.
    assert_eq!((t.produced, t.delivered, t.unaccounted, t.dead_lettered), (2000, 2000, 0, 0), "{t:?}");
    let [restart] = r.faults.as_slice() else { panic!("{:?}", r.faults) };
    assert_eq!(restart.label(), "broker_restart");
    assert!(effect(restart, "connections_cut") >= 2, "the producer's and the pollers' connections: {restart:?}");
}
