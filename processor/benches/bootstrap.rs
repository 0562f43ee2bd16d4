//! Start-up of the `bootstrap` binary: from `exec` to its first request for
//! an invocation (`GET /runtime/invocation/next`) on a loopback stand-in of
//! the Lambda Runtime API — configuration read, AWS clients built, tokio and
//! `lambda_runtime` up. No network beyond loopback; nothing else running.
//! This is the part of a cold start the function controls (issue 5 target:
//! at most 20 ms).
//!
//! The bench lives in the processor package, not in `benches/`, because
//! only a package's own benches get its binary's path (`CARGO_BIN_EXE_*`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/runtime_api.rs"]
mod runtime_api;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

fn start_to_first_next(c: &mut Criterion) {
    let mut group = c.benchmark_group("bootstrap");
    group.sample_size(20);
    group.bench_function("exec_to_first_next", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let api = runtime_api::RuntimeApi::start();
                let started = Instant::now();
                let mut child = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
                    .env_clear()
                    .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
                    .env("AWS_LAMBDA_FUNCTION_NAME", "msk-to-firehose")
                    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                    .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_ACCESS_KEY_ID", "bench")
                    .env("AWS_SECRET_ACCESS_KEY", "bench")
                    .env("DELIVERY_STREAM_NAME", "MSKToS3")
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("the bootstrap binary runs");
                let first = api.first_next(Duration::from_secs(30)).expect("the function asks for an event");
                total += first - started;
                let _ = child.kill();
                let _ = child.wait();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, start_to_first_next);
criterion_main!(benches);
