//! Every shipped scenario file reads and checks, and the library covers
//! what the scenarios issue names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use mskbench_scenarios::{PacingKind, RetryPolicy, Scenario};

fn shipped() -> Vec<(PathBuf, Scenario)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != "Cargo.toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, s)
        })
        .collect()
}

#[test]
fn every_shipped_scenario_reads_and_plans() {
    let all = shipped();
    assert!(all.len() >= 7);
    for (path, s) in &all {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(s.name, stem, "name matches the file");
        assert!(s.slo.iter().any(|t| t.to_string() == "unaccounted == 0"), "{stem}: no loss is an SLO everywhere");
        let budget = s.total_duration() + s.drain;
        assert!(budget <= Duration::from_secs(120), "{stem}: {budget:?} is too long for CI");
        assert!(!s.to_string().is_empty());
    }
}

#[test]
fn the_library_covers_the_named_scenarios() {
    let all = shipped();
    let names: Vec<&str> = all.iter().map(|(_, s)| s.name.as_str()).collect();
    for name in ["lab", "throttle-bytes", "throttle-requests", "other-region", "burst", "ramp-to-saturation"] {
        assert!(names.contains(&name), "{name} missing");
    }
    let policies: Vec<RetryPolicy> =
        all.iter().filter(|(_, s)| s.name.starts_with("retry-policy")).map(|(_, s)| s.processor.retry_policy).collect();
    assert!(policies.contains(&RetryPolicy::Lab) && policies.contains(&RetryPolicy::Jittered));
    let pacings: Vec<PacingKind> =
        all.iter().filter(|(_, s)| s.name.starts_with("retry-policy")).map(|(_, s)| s.processor.pacing).collect();
    for kind in [PacingKind::None, PacingKind::TokenBucket, PacingKind::Aimd] {
        assert!(pacings.contains(&kind), "no retry-policy arm paces with {kind:?}");
    }
    let overloads: Vec<_> = all
        .iter()
        .filter(|(_, s)| s.name.starts_with("retry-policy"))
        .map(|(_, s)| (s.phases.clone(), s.firehose.quota, s.seed, s.processor.retries))
        .collect();
    assert!(overloads.windows(2).all(|w| w[0] == w[1]), "every retry-policy arm runs the same overload");
    let lab = &all.iter().find(|(_, s)| s.name == "lab").unwrap().1;
    assert_eq!((lab.processor.batch_size.0, lab.processor.retries.0), (1000, 3), "the lab as deployed");
}

#[test]
fn a_missing_schema_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("mskbench-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("custom.toml");
    std::fs::write(
        &file,
        "name = \"custom\"\nseed = 1\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nrate = 1\n[producer]\nrecords = \"nope.avsc\"\n",
    )
    .unwrap();
    let err = Scenario::load(&file).unwrap_err().to_string();
    assert!(err.contains("nope.avsc") && err.contains("not found"), "{err}");
}
