//! `mskbench process`: the processor behind a local event source mapping.
//!
//! Consumes a topic in a consumer group, builds Lambda `aws:kafka` events
//! exactly as the MSK event source mapping does, runs the processor's
//! handler in process on each, and commits offsets only after it succeeded
//! (see `mskbench_processor::esm`). The handler is configured as the Lambda
//! function is, from the lab's environment variables
//! (`DELIVERY_STREAM_NAME`, `RETRIES`, `CSR`, `SCHEMA_REGISTRY_URL`,
//! `AWS_ENDPOINT_URL_FIREHOSE`, …); `-E KEY=VALUE` sets or overrides one
//! for this run without touching the environment.
//!
//! Exit status: 0 every batch handled, 1 a batch kept failing (its offsets
//! were not committed), 2 usage or fatal error (a bad variable, no broker).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use mskbench_kafka::Connection;
use mskbench_processor::esm::failures::FailureHandling;
use mskbench_processor::esm::{self, EsmConfig, EsmError};
use mskbench_processor::{Config, Handler};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example (against `mskbench serve kafka` and `mskbench serve firehose`):\n  \
                        mskbench process --brokers localhost:9092 --group lab --batch-size 1000 --idle-exit 5s \\\n    \
                        -E DELIVERY_STREAM_NAME=MSKToS3 -E AWS_ENDPOINT_URL_FIREHOSE=http://127.0.0.1:4573 \\\n    \
                        -E CSR=true -E SCHEMA_REGISTRY_URL=http://127.0.0.1:8081\n\n\
                        Exit status: 0 every batch handled; 1 a batch kept failing for --max-attempts; 2 usage \
                        or fatal error.")]
pub(crate) struct Args {
    /// Kafka bootstrap servers, comma separated.
    #[arg(long, value_name = "LIST")]
    brokers: String,
    /// Topic to consume.
    #[arg(long, value_name = "T", default_value = "ExampleTopic")]
    topic: String,
    /// Consumer group (the event source mapping's UUID in AWS).
    #[arg(long, value_name = "G")]
    group: String,
    /// Most records per invocation (the mapping's BatchSize, 1..=10000).
    #[arg(long, value_name = "N", default_value_t = 100)]
    batch_size: usize,
    /// Longest wait for a batch to fill, e.g. 500ms or 2s (MaximumBatchingWindowInSeconds: at most 300 s).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = batch_window)]
    batch_window: Duration,
    /// Consumers in the group, each owning a share of the partitions.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pollers: usize,
    /// Stop once no record arrived for this long, e.g. 5s.
    #[arg(long, value_name = "DURATION", value_parser = with_unit)]
    idle_exit: Option<Duration>,
    /// Invocations of one batch before giving up, at least 1 (default: until stopped).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: Option<u32>,
    /// FunctionResponseTypes: `ReportBatchItemFailures` reads the function's
    /// partial batch responses and retries each partition from its first
    /// failed offset (sets the processor's REPORT_BATCH_ITEM_FAILURES=true
    /// unless -E or the environment says otherwise).
    #[arg(long, value_name = "TYPE", value_parser = ["ReportBatchItemFailures"])]
    function_response_types: Vec<String>,
    /// BisectBatchOnFunctionError: split a failed batch in two and retry each half.
    #[arg(long)]
    bisect_batch_on_function_error: bool,
    /// MaximumRetryAttempts: retries after the first invocation, -1 (infinite; 10 with --on-failure) or 0..=10000.
    #[arg(long, value_name = "N", default_value_t = -1, value_parser = clap::value_parser!(i64).range(-1..=10_000))]
    maximum_retry_attempts: i64,
    /// MaximumRecordAgeInSeconds: records older than this are discarded, not sent; -1 (infinite) or 60..=604800.
    #[arg(long, value_name = "S", default_value_t = -1, value_parser = record_age)]
    maximum_record_age_in_seconds: i64,
    /// The on-failure destination (DestinationConfig.OnFailure): a directory or s3://bucket/prefix/, where
    /// discarded batches go as Lambda writes them to S3.
    #[arg(long, value_name = "DEST")]
    on_failure: Option<String>,
    /// The function's reserved concurrency: most invocations in flight over all pollers (default: one per poller).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    reserved_concurrency: Option<u32>,
    /// Set a processor variable for this run (repeatable), e.g. -E DELIVERY_STREAM_NAME=lab.
    #[arg(short = 'E', value_name = "KEY=VALUE", value_parser = crate::flags::key_value)]
    env: Vec<(String, String)>,
    /// A librdkafka consumer setting (repeatable), e.g. -X security.protocol=SSL.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::flags::key_value)]
    kafka: Vec<(String, String)>,
    #[command(flatten)]
    security: crate::kafka_flags::KafkaFlags,
    /// Write the totals (invocations, records_in, delivered, …) here as JSON (`-`: stdout).
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
}

/// A duration written as everywhere else (`500ms`, `2s`, `1m`). A bare
/// number is refused: these flags took milliseconds before, and reading
/// `500` as seconds now would change a script's meaning without a word.
fn with_unit(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<f64>().is_ok() {
        return Err(format!(
            "{text:?} needs a unit, e.g. {text}ms or {text}s (a bare number used to mean milliseconds)"
        ));
    }
    mskbench_producer::schedule::parse_duration(text).map_err(|e| e.to_string())
}

/// `--batch-window`: [`with_unit`], at most 300 s as on AWS.
fn batch_window(text: &str) -> Result<Duration, String> {
    let d = with_unit(text)?;
    if d > Duration::from_secs(300) {
        return Err(format!("{text:?} is over 300s, MaximumBatchingWindowInSeconds' most"));
    }
    Ok(d)
}

/// `--maximum-record-age-in-seconds`: -1 or 60..=604800, as on AWS.
fn record_age(text: &str) -> Result<i64, String> {
    let n: i64 = text.trim().parse().map_err(|_| format!("{text:?} is not a whole number of seconds"))?;
    if n == -1 || (60..=604_800).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is outside -1 or 60..=604800 (MaximumRecordAgeInSeconds)"))
    }
}

/// The mapping's failure handling from the flags.
fn failure_handling(args: &Args) -> anyhow::Result<FailureHandling> {
    let on_failure = args
        .on_failure
        .as_deref()
        .map(mskbench_processor::config::dead_letter_target)
        .transpose()
        .context("--on-failure")?;
    Ok(FailureHandling {
        report_batch_item_failures: !args.function_response_types.is_empty(),
        bisect_batch_on_function_error: args.bisect_batch_on_function_error,
        maximum_retry_attempts: u32::try_from(args.maximum_retry_attempts).ok(),
        maximum_record_age: u64::try_from(args.maximum_record_age_in_seconds).ok().map(Duration::from_secs),
        on_failure,
    })
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    mskbench_processor::logging::init();
    let failure = failure_handling(&args)?;
    let mut overrides: HashMap<String, String> = args.env.iter().cloned().collect();
    if failure.report_batch_item_failures && std::env::var_os("REPORT_BATCH_ITEM_FAILURES").is_none() {
        // The function returns what the mapping reads, unless told otherwise.
        overrides.entry("REPORT_BATCH_ITEM_FAILURES".to_owned()).or_insert_with(|| "true".to_owned());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // `-E` first, then the process environment; the AWS default chain resolved once, here.
    let lookup = |k: &str| overrides.get(k).cloned().or_else(|| std::env::var(k).ok());
    let config = runtime.block_on(Config::load(lookup))?;
    let handler = {
        let _entered = runtime.enter();
        Arc::new(Handler::new(config)?)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::SeqCst);
        }
    });
    let mut esm_config = EsmConfig::new(&args.brokers, &args.topic, &args.group);
    esm_config.batch_size = args.batch_size;
    esm_config.batch_window = args.batch_window;
    esm_config.pollers = args.pollers;
    esm_config.idle_exit = args.idle_exit;
    esm_config.max_attempts = args.max_attempts;
    esm_config.failure = failure;
    esm_config.reserved_concurrency = args.reserved_concurrency.map(|n| n as usize);
    let mut properties = args.kafka.clone();
    let security = args.security.security(&mut properties)?;
    esm_config.connection = runtime.block_on(Connection::new(args.brokers.clone(), security))?;
    esm_config.kafka = properties;

    let result = esm::run(&esm_config, handler, runtime.handle().clone(), stop);
    let (stats, code) = match result {
        Ok(stats) => (Some(stats), ExitCode::SUCCESS),
        Err(e @ EsmError::GaveUp { .. }) => {
            eprintln!("mskbench process: {e}");
            (None, ExitCode::from(1))
        }
        Err(e) => return Err(e.into()),
    };
    if let (Some(path), Some(stats)) = (&args.summary_json, &stats) {
        crate::output::write_json(path, stats)?;
    }
    if let Some(stats) = stats {
        eprintln!(
            "mskbench process: {} invocations, {} records, {} delivered, {} dead-lettered, {} dropped, {} too large for any event (dead-lettered or dropped), {} to the on-failure destination, {} discarded without one",
            stats.invocations,
            stats.records_in,
            stats.delivered,
            stats.dead_lettered,
            stats.dropped,
            stats.too_large,
            stats.on_failure,
            stats.discarded
        );
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}
