//! `scenarios/README.md` documents every SLO metric of the reports'
//! catalogue: a metric added there and not here fails this test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mskbench_reports::catalogue::{MEASURES, METRICS};

#[test]
fn the_readme_lists_every_slo_metric_and_measure() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("SLO metrics:").expect("an \"SLO metrics:\" paragraph")..];
    let section = &section[..section.find("\n\n").unwrap_or(section.len())];
    for name in METRICS.iter().map(|m| m.name).chain(MEASURES.iter().map(|m| m.name)) {
        assert!(section.contains(&format!("`{name}`")), "scenarios/README.md's SLO metrics do not list `{name}`");
    }
}
