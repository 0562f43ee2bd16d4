//! Measures how well `mskbench produce` holds a target rate on this machine:
//! librdkafka's mock cluster, ClickEvents, open loop, one run per rate; then
//! the maximum rate (`max`) and a run at half of it. Prints a Markdown
//! table for BENCHMARKS.md. Run with
//! `cargo run --release -p mskbench-producer --example rate_hold`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mskbench_producer::config::{DEFAULT_TOPIC, Registry};
use mskbench_producer::schedule::Profile;
use mskbench_producer::send::{Unobserved, Until};
use mskbench_producer::{Control, ProduceConfig, Report};
use mskbench_sim::{MockBroker, RegistryConfig, RegistryServer};

fn run(rate: f64, secs: f64) -> Report {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mock = MockBroker::start(3, DEFAULT_TOPIC, 3).unwrap();
    let registry = rt.block_on(RegistryServer::start(RegistryConfig::default())).unwrap();
    let profile = Profile::from_flags(Some(rate), None).unwrap();
    let until = Until { count: None, duration: Some(Duration::from_secs_f64(secs)) };
    let config = ProduceConfig {
        warmup: Duration::from_secs(1),
        ..ProduceConfig::new(mock.bootstrap_servers(), Registry::Confluent { url: registry.url() }, profile, until, 1)
    };
    rt.block_on(mskbench_producer::produce(&config, Control::new(), Arc::new(Unobserved))).unwrap()
}

fn row(label: &str, r: &Report) {
    let err = if r.rate_target > 0.0 { (r.rate_achieved / r.rate_target - 1.0) * 100.0 } else { 0.0 };
    println!(
        "| {label} | {:.1} | {:.1} | {err:+.3}% | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
        r.rate_target,
        r.rate_achieved,
        r.send_delay_ms.p50,
        r.send_delay_ms.p99,
        r.send_delay_ms.max,
        r.ack_latency_ms.p99,
        r.failed + r.unaccounted
    );
}

fn main() {
    println!("| run | target/s | achieved/s | error | send delay p50 ms | p99 ms | max ms | ack p99 ms | lost |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (rate, secs) in
        [(100.0, 11.0), (1_000.0, 11.0), (10_000.0, 6.0), (50_000.0, 6.0), (100_000.0, 6.0), (200_000.0, 6.0)]
    {
        row(&format!("{rate}/s"), &run(rate, secs));
    }
    let max = run(f64::INFINITY, 6.0);
    row("max", &max);
    let half = (max.rate_achieved / 2.0).round();
    row(&format!("half of max ({half}/s)"), &run(half, 6.0));
}
