//! `mskbench produce`: seed a topic at a controlled rate.
//!
//! Thin glue over `mskbench-producer`: flags become a typed
//! `ProduceConfig` (the rate a `Profile`, the schema file read once), the
//! parts the flags name as `embedded` start through the harness's
//! `parts` (the one place `embedded` and `glue:NAME` are resolved, shared
//! with `mskbench run`; `mock`, librdkafka's mock cluster, is this
//! command's alone), and the run goes on a tokio runtime. Ctrl-C (or
//! SIGTERM) stops the schedule and flushes, a second one purges what
//! librdkafka still holds. This module decides what reaches stderr: the
//! chosen seed, where embedded parts listen, the stats lines, the progress
//! bar (drawn from `Control`'s live counts) and the summary; `--stats-json`
//! goes to a file. With `--workers N` the process is one worker of a
//! fleet (`--worker-index`, or Kubernetes' `JOB_COMPLETION_INDEX`): it
//! sends its share ([`ProduceConfig::share`]), from `--start-at` if given,
//! and `mskbench merge` makes one result of the workers' `--stats-json`.
//! Exit 0 when every record was acked, 1 when some failed
//! (or could not be accounted for), 2 on usage or fatal errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use clap::builder::TypedValueParser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mskbench_core::wire::Compression;
use mskbench_harness::parts::{self, Parts, RegistryAt};
use mskbench_kafka::{Connection, Security};
use mskbench_producer::config::{GlueConfig, KeyFormat, Records, Registry};
use mskbench_producer::fleet::Worker;
use mskbench_producer::schedule::{HumanDuration, Profile, parse_duration, parse_rate};
use mskbench_producer::schemagen::SizeControls;
use mskbench_producer::send::{Observer, Stats, Until};
use mskbench_producer::topic::ensure_topic;
use mskbench_producer::{Control, ProduceConfig, Report};
use mskbench_scenarios::{Brokers, RegistryKind};
use mskbench_sim::MockBroker;

#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:\n  \
                        mskbench produce --rate 10k --duration 60s --warmup 5s            # embedded broker and registry\n  \
                        mskbench produce --brokers b-1:9092 --registry http://r:8081 --profile ramp:1k:20k:5m --duration 5m\n\n\
                        Exit status: 0 every record acknowledged; 1 some failed or unaccounted; 2 usage or fatal error.")]
pub(crate) struct Args {
    /// Bootstrap servers (host:port,…), `embedded` (tansu in-process) or `mock` (librdkafka's mock cluster).
    #[arg(long, default_value = "embedded")]
    brokers: String,
    /// Topic to produce to (created when missing).
    #[arg(long, default_value = "ExampleTopic")]
    topic: String,
    /// Partitions of a topic this run creates (at least 1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
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
    #[arg(long, default_value = "none", value_parser = compression_flag(), requires = "glue_registry")]
    glue_compression: Compression,
    /// Keys as plain strings, or Confluent-framed Avro strings as the lab's producer writes them.
    #[arg(long, default_value = "string", value_parser = key_format_flag())]
    key_format: KeyFormat,
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
    /// Generator seed; chosen and printed when absent. In a fleet, the run's seed: give every worker the same.
    #[arg(long)]
    seed: Option<u64>,
    /// Workers sharing this run (rate, profile and --count are the fleet's; each sends its share).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    workers: u32,
    /// This worker's index, 0 to --workers − 1; default: $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), else 0.
    #[arg(long)]
    worker_index: Option<u32>,
    /// Start the schedule at this wall-clock time: RFC 3339 (2026-12-03T17:00:00Z) or +DURATION from now (+10s).
    #[arg(long, value_name = "TIME", value_parser = start_at_flag)]
    start_at: Option<SystemTime>,
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
    #[arg(long, default_value_t = 0, value_parser = parse_length)]
    pad_bytes: usize,
    /// Simulated lab producer threads whose sessions interleave.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// librdkafka setting key=value (repeatable), e.g. -X security.protocol=SASL_SSL.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::flags::key_value)]
    settings: Vec<(String, String)>,
    #[command(flatten)]
    kafka: crate::kafka_flags::KafkaFlags,
    /// Write the summary as JSON here (`-`: stdout).
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// Write an HdrHistogram interval log here (values in µs, one interval a second).
    #[arg(long)]
    hlog: Option<PathBuf>,
    /// Time between stats lines on stderr, e.g. 5s or 500ms (seconds without a unit); 0 for none.
    #[arg(long, default_value = "5", value_parser = parse_interval)]
    stats_interval: Every,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// `--glue-compression`: its names, parsed into the wire's type once.
fn compression_flag() -> impl TypedValueParser<Value = Compression> {
    clap::builder::PossibleValuesParser::new(["none", "zlib"])
        .map(|name| if name == "zlib" { Compression::Zlib } else { Compression::None })
}

/// `--key-format`: its names, parsed into the producer's type once.
fn key_format_flag() -> impl TypedValueParser<Value = KeyFormat> {
    clap::builder::PossibleValuesParser::new(["string", "avro"])
        .map(|name| if name == "avro" { KeyFormat::Avro } else { KeyFormat::String })
}

/// A length flag, refused above [`SizeControls::MAX_LENGTH`] here, with the
/// flag's name, rather than later by `ProduceConfig::validate`.
fn parse_length(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= SizeControls::MAX_LENGTH => Ok(n),
        Ok(_) => Err(format!("{text} is above the longest length, {}", SizeControls::MAX_LENGTH)),
        Err(_) => Err(format!("{text:?} is not a length")),
    }
}

fn parse_range(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("{text:?} is not a length or a range MIN..MAX");
    let length = |t: &str| if t.parse::<usize>().is_ok() { parse_length(t) } else { Err(bad()) };
    let (lo, hi) = match text.split_once("..") {
        Some((lo, hi)) => (length(lo)?, length(hi)?),
        None => length(text).map(|n| (n, n))?,
    };
    if lo > hi { Err(bad()) } else { Ok((lo, hi)) }
}

/// `--start-at`: an RFC 3339 time, or `+DURATION` from now.
fn start_at_flag(text: &str) -> Result<SystemTime, String> {
    parse_start_at(text, SystemTime::now())
}

/// `--start-at`'s text at `now`: `+DURATION` (`+10s`, `+1m`) after `now`,
/// or an RFC 3339 time with `Z` or a `±HH:MM` offset (a space for the
/// `T` and no offset, meaning UTC, are accepted too).
fn parse_start_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let bad = || {
        format!(
            "{text:?} is not a time: give RFC 3339 (2026-12-03T17:00:00Z, 2026-12-03T18:00:00+01:00) or +DURATION (+10s)"
        )
    };
    if let Some(rest) = text.strip_prefix('+') {
        return parse_duration(rest).map(|d| now + d).map_err(|_| bad());
    }
    let (local, offset_secs) = match text.strip_suffix(['Z', 'z']) {
        Some(local) => (local, 0i64),
        None => match text.len().checked_sub(6).and_then(|i| text.get(i..).map(|tail| (i, tail))) {
            Some((i, tail))
                if (tail.starts_with('+') || tail.starts_with('-')) && tail.as_bytes().get(3) == Some(&b':') =>
            {
                let hours: i64 = tail[1..3].parse().map_err(|_| bad())?;
                let minutes: i64 = tail[4..6].parse().map_err(|_| bad())?;
                let sign = if tail.starts_with('-') { -1 } else { 1 };
                (&text[..i], sign * (hours * 3600 + minutes * 60))
            }
            _ => (text, 0),
        },
    };
    let utc = humantime::parse_rfc3339_weak(local).map_err(|_| bad())?;
    let shift = Duration::from_secs(offset_secs.unsigned_abs());
    // 09:00+01:00 is 08:00Z: a positive offset is subtracted.
    let at = if offset_secs >= 0 { utc.checked_sub(shift) } else { utc.checked_add(shift) };
    at.ok_or_else(bad)
}

/// This process's place in the fleet: `--worker-index`, else
/// `$JOB_COMPLETION_INDEX` (what a Kubernetes Indexed Job sets), else 0.
fn worker_of(a: &Args, env_index: Option<String>) -> Result<Worker> {
    let index = match (a.worker_index, env_index) {
        (Some(i), _) => i,
        (None, Some(text)) => text.trim().parse::<u32>().map_err(|_| {
            anyhow::anyhow!("JOB_COMPLETION_INDEX={text:?} is not a worker index (give --worker-index)")
        })?,
        (None, None) => 0,
    };
    Ok(Worker::new(index, a.workers)?)
}

/// How often something repeats; `None` for never (`--stats-interval 0`).
#[derive(Debug, Clone, Copy)]
struct Every(Option<Duration>);

/// `--stats-interval`: seconds, finite and not negative; 0 for none.
fn parse_interval(text: &str) -> Result<Every, String> {
    let bad = || format!("{text:?} is not a duration such as 5s or 500ms (seconds without a unit; 0 for none)");
    let d = parse_duration(text).map_err(|_| bad())?;
    Ok(Every((!d.is_zero()).then_some(d)))
}

/// Which Kafka `--brokers` names.
enum Kafka {
    /// `embedded` or a bootstrap list, resolved by the harness's parts.
    Brokers(Brokers),
    /// `mock`: librdkafka's mock cluster, three brokers.
    Mock,
}

impl Kafka {
    fn of(flag: &str) -> Kafka {
        match flag {
            "mock" => Kafka::Mock,
            "embedded" => Kafka::Brokers(Brokers::Embedded),
            list => Kafka::Brokers(Brokers::List(list.to_owned())),
        }
    }
}

/// Which registry `--registry` or `--glue-registry` names.
fn registry_kind(a: &Args) -> RegistryKind {
    match (&a.glue_registry, a.registry.as_str()) {
        (Some(name), _) => RegistryKind::Glue { name: name.clone() },
        (None, "embedded") => RegistryKind::Embedded,
        (None, url) => RegistryKind::Url(url.to_owned()),
    }
}

/// A seed from the clock, for runs without `--seed`.
fn chosen_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0x5eed, |d| d.as_nanos() as u64)
}

/// The run the flags ask for. The brokers and the registry are the flags'
/// own text until [`start_parts`] replaces `embedded` and `mock` with the
/// addresses of what it started.
fn config_of(a: &Args, seed: u64, worker: Worker) -> Result<ProduceConfig> {
    let rate = a.rate.as_deref().map(parse_rate).transpose()?;
    if rate.is_none() && a.profile.is_none() {
        bail!("give --rate N (or max), or a --profile");
    }
    let profile = Profile::from_flags(rate, a.profile.as_deref())?;
    let records = match &a.schema {
        Some(path) => Records::Schema {
            schema: std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the schema file {}", path.display()))?,
            sizes: SizeControls {
                string_len: a.string_len,
                bytes_len: a.bytes_len,
                array_len: a.array_len,
                pad_bytes: a.pad_bytes,
            },
        },
        None => Records::ClickEvents { threads: a.threads },
    };
    let until = Until { count: a.count, duration: a.duration.map(|d| d.0) };
    let registry = Registry::Confluent { url: a.registry.clone() };
    let mut settings = a.settings.clone();
    let security = a.kafka.security(&mut settings)?;
    if security != Security::default() && !matches!(Kafka::of(&a.brokers), Kafka::Brokers(Brokers::List(_))) {
        bail!(
            "--brokers {}: the embedded and mock brokers speak PLAINTEXT; TLS and SASL need a broker list",
            a.brokers
        );
    }
    Ok(ProduceConfig {
        topic: a.topic.clone(),
        key_format: a.key_format,
        records,
        warmup: a.warmup.0,
        rdkafka: settings.into_iter().collect(),
        security,
        stats_interval: a.stats_interval.0,
        hlog: a.hlog.clone(),
        worker,
        start_at: a.start_at,
        ..ProduceConfig::new(a.brokers.clone(), registry, profile, until, seed)
    })
}

/// What [`start_parts`] started: stopped when the run ends.
#[derive(Default)]
struct Started {
    parts: Parts,
    /// Not `Send`: it stays on the runtime's main thread (`block_on`).
    mock: Option<MockBroker>,
}

/// Starts what the flags name as `embedded` or `mock`, creates the topic,
/// and fills `config`'s brokers and registry in.
async fn start_parts(a: &Args, config: &mut ProduceConfig, started: &mut Started) -> Result<()> {
    match Kafka::of(&a.brokers) {
        Kafka::Mock => {
            let mock = MockBroker::start(3, &config.topic, a.partitions)?;
            config.brokers = mock.bootstrap_servers();
            started.mock = Some(mock);
        }
        Kafka::Brokers(brokers) => {
            config.brokers = parts::start_broker(&brokers, &mut started.parts).await?;
            if brokers == Brokers::Embedded {
                eprintln!("mskbench produce: embedded broker at {}", config.brokers);
                ensure_topic(&Connection::plaintext(config.brokers.clone()), &config.topic, a.partitions, &[]).await?;
            } else {
                // A missing topic is created; a cluster that refuses (ACLs,
                // auto-creation policy) may still have it, so only warn.
                // A refusal of the security settings ends the run here,
                // within about a second of librdkafka's answer.
                let extra: Vec<(String, String)> = config.rdkafka.clone().into_iter().collect();
                let connection = Connection::new(config.brokers.clone(), config.security.clone()).await?;
                match ensure_topic(&connection, &config.topic, a.partitions, &extra).await {
                    Err(e) if e.refused => bail!("cannot connect to {}: {}", e.brokers, e.detail),
                    Err(e) => eprintln!("mskbench produce: warning: {e}"),
                    Ok(()) => {}
                }
            }
        }
    }
    let kind = registry_kind(a);
    config.registry = match parts::start_registry(&kind, &mut started.parts).await? {
        RegistryAt::Confluent(url) => {
            if kind == RegistryKind::Embedded {
                eprintln!("mskbench produce: embedded schema registry at {url}");
            }
            Registry::Confluent { url }
        }
        RegistryAt::Glue(registry) => Registry::Glue(GlueConfig {
            registry,
            // `--glue-endpoint`, else the SDK's variables (AWS_ENDPOINT_URL_GLUE, AWS_ENDPOINT_URL).
            endpoint: match &a.glue_endpoint {
                Some(url) => Some(url.clone()),
                None => mskbench_aws::Endpoints::from_lookup(|k| std::env::var(k).ok())?.glue,
            },
            region: a.glue_region.clone(),
            chain: None,
            compression: a.glue_compression,
        }),
    };
    Ok(())
}

/// The run on stderr: a progress bar on a terminal (records sent, or the
/// share of the duration, from `Control`'s live counts) and the stats
/// lines above it.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(show: bool, until: Until) -> Progress {
        let (len, template) = match (until.count, until.duration) {
            (Some(n), _) => (n, "{elapsed_precise} [{bar:40}] {pos}/{len} records ({per_sec})"),
            (None, Some(d)) => {
                ((d.as_secs_f64() * 10.0) as u64, "{elapsed_precise} [{bar:40}] {percent}% of the duration")
            }
            (None, None) => return Progress { bar: None },
        };
        let bar = show.then(|| ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()));
        if let Some(bar) = &bar
            && let Ok(style) = ProgressStyle::with_template(template)
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar }
    }

    /// Moves the bar along with `control` every 100 ms until the task is aborted.
    fn follow(&self, control: Control, until: Until) -> Option<tokio::task::JoinHandle<()>> {
        let bar = self.bar.clone()?;
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                match (until.count, control.started()) {
                    (Some(_), _) => bar.set_position(control.sent()),
                    (None, Some((start, _))) => bar.set_position((start.elapsed().as_secs_f64() * 10.0) as u64),
                    (None, None) => {}
                }
            }
        }))
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress {
    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

impl Observer for Progress {
    fn stats(&self, stats: &Stats) {
        self.say(&stats.to_string());
    }

    fn late_start(&self, by: Duration) {
        self.say(&format!(
            "mskbench produce: warning: started {:.3} s after --start-at; the records due meanwhile leave late (see the \
             send delay)",
            by.as_secs_f64()
        ));
    }
}

/// Starts the parts, produces, and stops the parts again.
async fn produce(a: &Args, mut config: ProduceConfig, control: Control) -> Result<Report> {
    let mut started = Started::default();
    let result = async {
        start_parts(a, &mut config, &mut started).await?;
        let progress = Arc::new(Progress::new(!a.no_progress, config.until));
        let follower = progress.follow(control.clone(), config.until);
        let report = mskbench_producer::produce(&config, control, progress.clone()).await;
        if let Some(task) = follower {
            task.abort();
        }
        progress.finish();
        report.map_err(|e| {
            if let Some(partial) = e.partial_report() {
                eprint!("{}", partial.summary());
            }
            anyhow::Error::from(e)
        })
    }
    .await;
    for problem in started.parts.stop().await {
        eprintln!("mskbench produce: {problem}");
    }
    drop(started.mock);
    result
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let worker = worker_of(&args, std::env::var("JOB_COMPLETION_INDEX").ok())?;
    if worker.workers > 1 && args.seed.is_none() {
        bail!("a fleet of workers needs one --seed for all of them, so that their records differ and repeat");
    }
    let seed = args.seed.unwrap_or_else(chosen_seed);
    let config = config_of(&args, seed, worker)?;
    config.validate()?;
    if args.seed.is_none() {
        eprintln!("mskbench produce: seed {seed} (pass --seed {seed} to repeat)");
    }
    if worker.workers > 1 {
        let share = config.share();
        eprintln!(
            "mskbench produce: worker {} of {}: seed {}, rate {}{}",
            worker.index,
            worker.workers,
            share.seed,
            share.profile,
            share.until.count.map_or(String::new(), |n| format!(", {n} records"))
        );
    }
    if let Some(at) = config.start_at {
        eprintln!("mskbench produce: the schedule starts at {}", humantime::format_rfc3339_millis(at));
    }
    if config.warmup.is_zero() {
        // The schedule waits for the topic's metadata, but each partition
        // leader's connection and librdkafka's first batches still fall
        // on the first records.
        eprintln!(
            "mskbench produce: note: no --warmup, so the first records' latency (connections to each partition's \
             leader, the first batches) is in the percentiles; --warmup 1s leaves it out"
        );
    }
    crate::serve::log_stand_ins_to_stderr();
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
        let report = produce(&args, config, control.clone()).await;
        signals.abort();
        report
    })?;
    eprint!("{}", report.summary());
    if let Some(path) = &args.stats_json {
        crate::output::write_json(path, &report)?;
    }
    Ok(if report.failed == 0 && report.unaccounted == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(flags: &[&str]) -> Args {
        Cli::parse_from(std::iter::once("produce").chain(flags.iter().copied())).args
    }

    #[test]
    fn flags_become_typed_values() {
        let a = args(&["--count", "10", "--rate", "20k", "--warmup", "250ms", "--stats-interval", "0", "-X", "acks=1"]);
        let c = config_of(&a, 7, Worker::SOLE).unwrap();
        assert_eq!(c.profile, Profile::constant(20_000.0));
        assert_eq!(c.until, Until { count: Some(10), duration: None });
        assert_eq!(c.warmup, Duration::from_millis(250));
        assert_eq!(c.stats_interval, None);
        assert_eq!(c.rdkafka.get("acks").map(String::as_str), Some("1"));
        assert_eq!((c.seed, c.records), (7, Records::ClickEvents { threads: 2 }));
        let burst =
            config_of(&args(&["--duration", "1m", "--rate", "100", "--profile", "burst:1000:1s:10s"]), 1, Worker::SOLE);
        assert_eq!(burst.unwrap().profile, Profile::parse("burst:1000:1s:10s", Some(100.0)).unwrap());
        assert!(config_of(&args(&["--count", "1"]), 1, Worker::SOLE).is_err(), "a rate or a profile");
    }

    #[test]
    fn the_worker_index_comes_from_the_flag_then_the_job_index() {
        let a = args(&["--count", "10", "--rate", "1k", "--workers", "3"]);
        assert_eq!(worker_of(&a, None).unwrap(), Worker { index: 0, workers: 3 });
        assert_eq!(worker_of(&a, Some("2".into())).unwrap(), Worker { index: 2, workers: 3 });
        let e = worker_of(&a, Some("3".into())).unwrap_err();
        assert!(e.to_string().contains("not below the number of workers, 3"), "{e}");
        assert!(worker_of(&a, Some("two".into())).unwrap_err().to_string().contains("JOB_COMPLETION_INDEX"));
        let flagged = args(&["--count", "10", "--rate", "1k", "--workers", "3", "--worker-index", "1"]);
        assert_eq!(worker_of(&flagged, Some("2".into())).unwrap().index, 1, "the flag wins");
        let share = config_of(&flagged, 7, worker_of(&flagged, None).unwrap()).unwrap().share();
        assert_eq!((share.until.count, share.profile.clone()), (Some(3), Profile::constant(1000.0 / 3.0)));
        assert_ne!(share.seed, 7);
    }

    #[test]
    fn start_at_reads_rfc3339_and_offsets_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(parse_start_at("+10s", now).unwrap(), now + Duration::from_secs(10));
        let utc = parse_start_at("2026-12-03T17:00:00Z", now).unwrap();
        assert_eq!(utc, UNIX_EPOCH + Duration::from_secs(1_796_317_200));
        assert_eq!(parse_start_at("2026-12-03T18:00:00+01:00", now).unwrap(), utc);
        assert_eq!(parse_start_at("2026-12-03T16:30:00-00:30", now).unwrap(), utc);
        assert_eq!(parse_start_at("2026-12-03T17:00:00.250Z", now).unwrap(), utc + Duration::from_millis(250));
        for bad in ["tomorrow", "+soon", "2026-13-03T17:00:00Z", "2026-12-03T17:00:00+1:00"] {
            assert!(parse_start_at(bad, now).unwrap_err().contains("not a time"), "{bad}");
        }
    }

    #[test]
    fn embedded_mock_and_glue_are_told_apart() {
        assert!(matches!(Kafka::of("mock"), Kafka::Mock));
        assert!(matches!(Kafka::of("embedded"), Kafka::Brokers(Brokers::Embedded)));
        assert!(matches!(Kafka::of("b1:9092,b2:9092"), Kafka::Brokers(Brokers::List(l)) if l == "b1:9092,b2:9092"));
        assert_eq!(registry_kind(&args(&["--count", "1"])), RegistryKind::Embedded);
        let url = args(&["--count", "1", "--registry", "http://r:8081"]);
        assert_eq!(registry_kind(&url), RegistryKind::Url("http://r:8081".into()));
        let glue = args(&["--count", "1", "--glue-registry", "lab"]);
        assert_eq!(registry_kind(&glue), RegistryKind::Glue { name: "lab".into() });
    }
}
