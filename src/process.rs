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
//! With `--runtime-api ADDR` the mapping invokes no handler of its own: it
//! serves the Lambda Runtime API (2018-06-01) on ADDR, one instance per
//! poller (ports ADDR, ADDR+1, …; each a free port with port 0, the
//! addresses printed on stdout, one a line), and any function built for
//! Lambda answers the events — our `bootstrap`, a Python handler under
//! `awslambdaric`, the lab's Java function. `--function-command CMD` starts
//! it, one process per instance (`sh -c 'exec CMD'`, in a process group of
//! its own), with `AWS_LAMBDA_RUNTIME_API` and the standard Lambda
//! variables, `-E` setting the function's own; a process that exits is
//! started again. Offsets are committed only after the function's success
//! response; its error, a missed `--function-timeout` or a crash is a
//! failed invocation (see `mskbench_processor::esm::runtime_api`).
//!
//! Exit status: 0 every batch handled, 1 a batch kept failing (its offsets
//! were not committed), 2 usage or fatal error (a bad variable, no broker).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use mskbench_kafka::Connection;
use mskbench_processor::esm::failures::FailureHandling;
use mskbench_processor::esm::runtime_api::{self, FunctionCommand, RuntimeApi, RuntimeApiConfig};
use mskbench_processor::esm::{self, EsmConfig, EsmError, EsmStats, External, Function};
use mskbench_processor::{Config, Handler};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example (against `mskbench serve kafka` and `mskbench serve firehose`):\n  \
                        mskbench process --brokers localhost:9092 --group lab --batch-size 1000 --idle-exit 5s \\\n    \
                        -E DELIVERY_STREAM_NAME=MSKToS3 -E AWS_ENDPOINT_URL_FIREHOSE=http://127.0.0.1:4573 \\\n    \
                        -E CSR=true -E SCHEMA_REGISTRY_URL=http://127.0.0.1:8081\n\n\
                        Your own function over the Lambda Runtime API (any runtime built for Lambda):\n  \
                        mskbench process --brokers localhost:9092 --group mine --runtime-api 127.0.0.1:9001 \\\n    \
                        --function-command 'python -m awslambdaric handler.fn' --function-timeout 30s \\\n    \
                        -E DELIVERY_STREAM_NAME=MSKToS3 -E AWS_ENDPOINT_URL_FIREHOSE=http://127.0.0.1:4573\n\n\
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
    /// Serve the Lambda Runtime API here instead of running the built-in handler: one instance per
    /// poller, on ADDR's port and the next ones (port 0: free ports); the addresses are printed on
    /// stdout, one a line. The function brings its own settings (stream, registry): -E sets them
    /// for --function-command.
    #[arg(long, value_name = "ADDR", help_heading = "Your own function (Runtime API)")]
    runtime_api: Option<SocketAddr>,
    /// Start the function with this command, one process per instance, run as `sh -c 'exec CMD'`
    /// with AWS_LAMBDA_RUNTIME_API and Lambda's variables; started again when it exits. Without it,
    /// start the function yourself, pointed at the printed addresses.
    #[arg(long, value_name = "CMD", requires = "runtime_api", help_heading = "Your own function (Runtime API)")]
    function_command: Option<String>,
    /// The function's timeout (1s..=900s): an invocation not answered by then fails, and the
    /// started process is restarted, as Lambda resets an environment after a timeout.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = function_timeout,
          requires = "runtime_api", help_heading = "Your own function (Runtime API)")]
    function_timeout: Duration,
    /// AWS_LAMBDA_FUNCTION_NAME, and the name in the function's ARN.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "mskbench-function",
        requires = "runtime_api",
        help_heading = "Your own function (Runtime API)"
    )]
    function_name: String,
    /// AWS_LAMBDA_FUNCTION_MEMORY_SIZE (the lab template's MemorySize by default).
    #[arg(long, value_name = "MB", default_value_t = runtime_api::DEFAULT_MEMORY_MB,
          value_parser = clap::value_parser!(u32).range(128..=10240), requires = "runtime_api",
          help_heading = "Your own function (Runtime API)")]
    function_memory: u32,
    /// _HANDLER, for runtimes that read it (awslambdaric takes the handler as its argument).
    #[arg(long, value_name = "NAME", requires = "runtime_api", help_heading = "Your own function (Runtime API)")]
    function_handler: Option<String>,
}

/// `--function-timeout`: [`with_unit`], within Lambda's 1 s to 900 s.
fn function_timeout(text: &str) -> Result<Duration, String> {
    let d = with_unit(text)?;
    if !(Duration::from_secs(1)..=runtime_api::MAX_TIMEOUT).contains(&d) {
        return Err(format!("{text:?} is outside 1s..=900s, Lambda's function timeouts"));
    }
    Ok(d)
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
    let function: Function = match args.runtime_api {
        Some(listen) => {
            // The addresses first on stdout, before the function's processes log anything.
            let print = |addrs: &[SocketAddr]| {
                for addr in addrs {
                    println!("{addr}");
                }
            };
            let _entered = runtime.enter();
            let api = RuntimeApi::start_with(runtime_api_config(&args, listen), print)?;
            External::new(api).into()
        }
        None => {
            // `-E` first, then the process environment; the AWS default chain resolved once, here.
            let lookup = |k: &str| overrides.get(k).cloned().or_else(|| std::env::var(k).ok());
            let config = runtime.block_on(Config::load(lookup))?;
            let _entered = runtime.enter();
            Arc::new(Handler::new(config)?).into()
        }
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

    let result = esm::run(&esm_config, function.clone(), runtime.handle().clone(), stop);
    if let Function::RuntimeApi(external) = &function {
        // The function's processes end with the mapping.
        runtime.block_on(external.api.shutdown());
    }
    let (stats, code) = match result {
        Ok(stats) => (Some(stats), ExitCode::SUCCESS),
        Err(e @ EsmError::GaveUp { .. }) => {
            eprintln!("mskbench process: {e}");
            (None, ExitCode::from(1))
        }
        Err(e) => return Err(e.into()),
    };
    match (&function, stats) {
        (Function::InProcess(_), Some(stats)) => {
            if let Some(path) = &args.summary_json {
                crate::output::write_json(path, &stats)?;
            }
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
        (Function::RuntimeApi(_), Some(stats)) => {
            let stats = ExternalStats::from(&stats);
            if let Some(path) = &args.summary_json {
                crate::output::write_json(path, &stats)?;
            }
            eprintln!(
                "mskbench process: {} invocations succeeded ({} failed and retried), {} records committed, {} too large for any event (logged and dropped); delivery is the function's to report",
                stats.invocations, stats.failed_invocations, stats.records_in, stats.too_large
            );
        }
        (_, None) => {}
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}

/// The Runtime API for `--runtime-api`: one instance per poller.
fn runtime_api_config(args: &Args, listen: SocketAddr) -> RuntimeApiConfig {
    let mut config = RuntimeApiConfig::new(listen);
    config.instances = args.pollers.max(1);
    config.timeout = args.function_timeout;
    config.function_name = args.function_name.clone();
    config.memory_mb = args.function_memory;
    config.handler = args.function_handler.clone();
    config.region = args.env.iter().rev().find(|(k, _)| k == "AWS_REGION").map(|(_, v)| v.clone());
    config.command = args.function_command.as_ref().map(|cmd| FunctionCommand {
        // `exec`, so that the shell becomes the function and a kill reaches it.
        program: "sh".to_owned(),
        args: vec!["-c".to_owned(), format!("exec {cmd}")],
        env: args.env.clone(),
        dir: None,
        log: None,
    });
    config
}

/// `--summary-json` with a function of the user's: what the mapping saw.
/// Delivery is not among it: only the function knows what it sent.
#[derive(Debug, serde::Serialize)]
struct ExternalStats {
    /// Always `"runtime-api"`.
    function: &'static str,
    /// Invocations that succeeded (their offsets committed).
    invocations: u64,
    /// Invocations that failed (the function's error, a missed deadline, a crash) and were retried.
    failed_invocations: u64,
    /// Records of the succeeded invocations, and too-large ones.
    records_in: u64,
    /// Records that alone exceed the payload limit, logged and dropped.
    too_large: u64,
    /// Largest event sent, in bytes.
    max_event_bytes: u64,
    /// Offset commits that failed.
    commit_failures: u64,
}

impl From<&EsmStats> for ExternalStats {
    fn from(s: &EsmStats) -> Self {
        ExternalStats {
            function: "runtime-api",
            invocations: s.invocations,
            failed_invocations: s.failed_invocations,
            records_in: s.records_in,
            too_large: s.too_large,
            max_event_bytes: s.max_event_bytes,
            commit_failures: s.commit_failures,
        }
    }
}
