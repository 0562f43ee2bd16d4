//! `mskbench produce`: seed a topic at a controlled rate.
//!
//! Thin glue over `mskbench-producer`: flags become a `ProduceConfig`, the
//! run goes on a tokio runtime, Ctrl-C (or SIGTERM) stops the schedule and
//! flushes, a second one purges what librdkafka still holds. The summary
//! goes to stderr, `--stats-json` to a file. Exit 0 when every record was
//! acked, 1 when some failed (or could not be accounted for), 2 on usage or
//! fatal errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use mskbench_producer::config::{GlueCompression, GlueConfig, KeyFormat};
use mskbench_producer::schedule::{HumanDuration, parse_rate};
use mskbench_producer::schemagen::SizeControls;
use mskbench_producer::{Control, ProduceConfig};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Bootstrap servers (host:port,…), `embedded` (tansu in-process) or `mock` (librdkafka's mock cluster).
    #[arg(long, default_value = "embedded")]
    brokers: String,
    /// Topic to produce to (created when missing).
    #[arg(long, default_value = "ExampleTopic")]
    topic: String,
    /// Partitions of a topic this run creates.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Confluent schema registry: a URL, or `embedded` for the built-in one.
    #[arg(long, default_value = "embedded")]
    registry: String,
    /// Register in this AWS Glue registry instead and frame values Glue-style.
    #[arg(long, value_name = "NAME")]
    glue_registry: Option<String>,
    /// AWS Glue endpoint override (e.g. moto); default: the AWS configuration chain.
    #[arg(long, requires = "glue_registry")]
    glue_endpoint: Option<String>,
    /// AWS region for Glue; default: the AWS configuration chain.
    #[arg(long, requires = "glue_registry")]
    glue_region: Option<String>,
    /// Compression of Glue-framed values: none (0x00) or zlib (0x05).
    #[arg(long, default_value = "none", value_parser = ["none", "zlib"], requires = "glue_registry")]
    glue_compression: String,
    /// Keys as plain strings, or Confluent-framed Avro strings as the lab's producer writes them.
    #[arg(long, default_value = "string", value_parser = ["string", "avro"])]
    key_format: String,
    /// Target records per second (e.g. 5000, 20k) or `max`; the base rate of a burst profile.
    #[arg(long)]
    rate: Option<String>,
    /// Rate profile: ramp:FROM:TO:DUR, steps:RATE:DUR,… or burst:PEAK:LEN:EVERY.
    #[arg(long)]
    profile: Option<String>,
    /// Run for this long (e.g. 30s, 5m).
    #[arg(long, required_unless_present = "count")]
    duration: Option<HumanDuration>,
    /// Send this many records.
    #[arg(long, required_unless_present = "duration")]
    count: Option<u64>,
    /// Leading time excluded from rates and percentiles.
    #[arg(long, default_value = "0s")]
    warmup: HumanDuration,
    /// Generator seed; chosen and printed when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// Produce random records of this Avro schema instead of ClickEvents.
    #[arg(long, value_name = "PATH.avsc")]
    schema: Option<PathBuf>,
    /// String lengths of schema-driven records, MIN..MAX or N.
    #[arg(long, default_value = "4..16", value_parser = parse_range)]
    string_len: (usize, usize),
    /// Bytes lengths of schema-driven records, MIN..MAX or N.
    #[arg(long, default_value = "4..16", value_parser = parse_range)]
    bytes_len: (usize, usize),
    /// Array and map lengths of schema-driven records, MIN..MAX or N.
    #[arg(long, default_value = "0..4", value_parser = parse_range)]
    array_len: (usize, usize),
    /// Add a bytes field of N random bytes to each schema-driven record.
    #[arg(long, default_value_t = 0)]
    pad_bytes: usize,
    /// Simulated lab producer threads whose sessions interleave.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// librdkafka setting key=value (repeatable), e.g. -X security.protocol=SASL_SSL.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
    /// Write the summary as JSON here.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// Write an HdrHistogram interval log here (values in µs, one interval a second).
    #[arg(long)]
    hlog: Option<PathBuf>,
    /// Seconds between stats lines on stderr; 0 for none.
    #[arg(long, default_value_t = 5.0)]
    stats_interval: f64,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

fn parse_range(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("{text:?} is not a length or a range MIN..MAX");
    match text.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi) = (lo.parse().map_err(|_| bad())?, hi.parse().map_err(|_| bad())?);
            if lo > hi { Err(bad()) } else { Ok((lo, hi)) }
        }
        None => text.parse().map(|n| (n, n)).map_err(|_| bad()),
    }
}

fn config_of(a: &Args) -> Result<ProduceConfig> {
    let rate = a.rate.as_deref().map(parse_rate).transpose()?;
    if rate.is_none() && a.profile.is_none() {
        bail!("give --rate N (or max), or a --profile");
    }
    Ok(ProduceConfig {
        brokers: a.brokers.clone(),
        topic: a.topic.clone(),
        partitions: a.partitions,
        registry: a.registry.clone(),
        glue: a.glue_registry.as_ref().map(|registry| GlueConfig {
            registry: registry.clone(),
            endpoint: a.glue_endpoint.clone(),
            region: a.glue_region.clone(),
            compression: if a.glue_compression == "zlib" { GlueCompression::Zlib } else { GlueCompression::None },
        }),
        key_format: if a.key_format == "avro" { KeyFormat::Avro } else { KeyFormat::String },
        rate,
        profile: a.profile.clone(),
        count: a.count,
        duration_secs: a.duration.map(|d| d.0.as_secs_f64()),
        warmup_secs: a.warmup.0.as_secs_f64(),
        seed: a.seed,
        schema: a.schema.clone(),
        sizes: SizeControls {
            string_len: a.string_len,
            bytes_len: a.bytes_len,
            array_len: a.array_len,
            pad_bytes: a.pad_bytes,
        },
        threads: a.threads,
        rdkafka: a.settings.iter().cloned().collect(),
        stats_interval_secs: a.stats_interval,
        hlog: a.hlog.clone(),
        progress: !a.no_progress,
    })
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let config = config_of(&args)?;
    config.validate()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let control = Control::new();
    let report = runtime.block_on(async {
        let watcher = control.clone();
        let signals = tokio::spawn(async move {
            loop {
                if crate::serve::wait_for_stop_signal().await.is_err() {
                    return;
                }
                watcher.escalate();
                eprintln!("mskbench produce: stopping; flushing what was sent (again to abandon it)");
            }
        });
        let report = mskbench_producer::produce(&config, control.clone()).await;
        signals.abort();
        report
    })?;
    eprint!("{}", report.summary());
    if let Some(path) = &args.stats_json {
        let json = serde_json::to_string_pretty(&report).context("cannot serialise the stats")?;
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.failed == 0 && report.unaccounted == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
