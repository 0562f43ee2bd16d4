//! `mskbench serve kafka|firehose|registry`: the local stand-ins as processes.
//!
//! Thin glue over `mskbench-sim`: parse flags into its config, start the
//! server on a tokio runtime, print the bound URL as the first line of
//! stdout (other tools read it to find a port-0 server), then wait for
//! SIGINT or SIGTERM and stop cleanly — for Kafka, the embedded tansu
//! broker (memory storage: records are gone when it stops; topics are
//! created through the producer's admin-API `ensure_topic`); for Firehose, every
//! accepted record is written before the process exits. Exit 0 after a
//! clean stop; a failed final delivery or a bind failure is exit 2.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use mskbench_core::Quota;
use mskbench_kafka::{Auth, Connection, Mechanism, Protocol, Secret, Security};
use mskbench_producer::config::DEFAULT_TOPIC;
use mskbench_producer::schedule::HumanDuration;
use mskbench_producer::topic::ensure_topic;
use mskbench_sim::firehose::{Buffering, Faults, Latency};
use mskbench_sim::registry::Level;
use mskbench_sim::{
    BrokerOptions, EmbeddedBroker, FirehoseConfig, FirehoseServer, RegistryConfig, RegistryServer, ScramUser,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(subcommand)]
    service: Service,
}

#[derive(Debug, Subcommand)]
enum Service {
    /// A Kafka-protocol broker (tansu, in memory), the one `--brokers embedded` starts.
    Kafka(KafkaArgs),
    /// An Amazon Data Firehose endpoint (AWS JSON 1.1) with quotas and S3-layout delivery.
    Firehose(FirehoseArgs),
    /// A Confluent-compatible schema registry (REST API v1, Avro).
    Registry(RegistryArgs),
}

#[derive(Debug, ClapArgs)]
struct FirehoseArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Per-stream quota: us-east-1, us-west-2, eu-west-1, other, or records=N,requests=N,bytes=N.
    #[arg(long, default_value = "us-east-1")]
    quota: Quota,
    /// Directory delivered objects are written under (as S3 keys).
    #[arg(long, default_value = "s3")]
    s3_dir: PathBuf,
    /// Buffering size hint in bytes, for streams created without their own (AWS: 1–128 MiB).
    #[arg(long, default_value_t = Buffering::default().size_bytes)]
    buffer_size: u64,
    /// Buffering interval hint, e.g. 300s or 5m (seconds without a unit; AWS: 60–900 s).
    #[arg(long, value_name = "DURATION", default_value = "300s")]
    buffer_interval: HumanDuration,
    /// Allow buffering hints below AWS's minimums (for tests and short runs).
    #[arg(long)]
    allow_small_buffers: bool,
    /// A delivery stream that exists from the start (repeatable).
    #[arg(long = "stream", value_name = "NAME")]
    streams: Vec<String>,
    /// Probability that an admitted record fails with InternalFailure.
    #[arg(long, default_value_t = 0.0)]
    internal_failure_rate: f64,
    /// Probability that a whole call fails with HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    http_500_rate: f64,
    /// Added response latency: 0, fixed:50ms, uniform:10ms..80ms or exp:20ms.
    #[arg(long, default_value = "0")]
    latency: Latency,
    /// Seed of every random choice; chosen and printed on stderr when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// Region named in ARNs.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

#[derive(Debug, ClapArgs)]
struct KafkaArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Partitions of each topic created at start.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// A topic that exists from the start (repeatable; default ExampleTopic, none with --advertise).
    #[arg(long = "topic", value_name = "NAME", conflicts_with = "advertise")]
    topics: Vec<String>,
    /// The address clients are told to connect to after bootstrapping, e.g. a TLS
    /// terminator's in front of this broker (default: the listener's). No topic is created
    /// at start: the broker's own client would be sent there; clients create theirs.
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<SocketAddr>,
    /// Require SASL/SCRAM (SHA-256 and SHA-512) from every client, for this user.
    #[arg(long, value_name = "NAME", requires = "scram_password_env")]
    scram_user: Option<String>,
    /// The environment variable holding the SCRAM user's password.
    #[arg(long, value_name = "VAR", requires = "scram_user")]
    scram_password_env: Option<String>,
}

#[derive(Debug, ClapArgs)]
struct RegistryArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// JSON file keeping subjects, versions and ids across restarts.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Global compatibility level of a new registry (NONE, BACKWARD, FULL_TRANSITIVE, …).
    #[arg(long, default_value = "BACKWARD", value_parser = parse_level)]
    compatibility: Level,
}

fn parse_level(text: &str) -> Result<Level, String> {
    Level::parse(text).ok_or_else(|| format!("unknown compatibility level {text:?}"))
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    log_stand_ins_to_stderr();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.service {
            Service::Kafka(a) => kafka(a).await,
            Service::Firehose(a) => firehose(a).await,
            Service::Registry(a) => registry(a).await,
        }
    })
}

async fn firehose(a: FirehoseArgs) -> Result<ExitCode> {
    let seed = a.seed.unwrap_or_else(|| {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        eprintln!("mskbench serve firehose: seed {seed} (pass --seed {seed} to repeat)");
        seed
    });
    let interval = a.buffer_interval.0;
    let config = FirehoseConfig {
        listen: a.listen,
        quota: a.quota,
        region: a.region,
        s3_dir: a.s3_dir,
        buffering: Buffering { size_bytes: a.buffer_size, interval },
        allow_small_buffers: a.allow_small_buffers,
        streams: a.streams,
        faults: Faults {
            internal_failure_rate: a.internal_failure_rate,
            http_500_rate: a.http_500_rate,
            latency: a.latency,
        },
        seed,
        ..FirehoseConfig::default()
    };
    let server = FirehoseServer::start(config).await.context("cannot start the Firehose endpoint")?;
    announce(&server.url())?;
    wait_for_stop_signal().await?;
    let report = server.shutdown().await.context("Firehose endpoint did not stop cleanly")?;
    eprintln!(
        "mskbench serve firehose: stopped; final flush wrote {} object(s), {} byte(s)",
        report.objects, report.bytes
    );
    Ok(ExitCode::SUCCESS)
}

async fn kafka(a: KafkaArgs) -> Result<ExitCode> {
    let mut options = BrokerOptions { advertised: a.advertise, ..BrokerOptions::default() };
    // The broker's own client (topic creation) speaks to the listener, not
    // the advertised address, and as the SCRAM user.
    let mut security = Security::default();
    if let (Some(name), Some(var)) = (&a.scram_user, &a.scram_password_env) {
        let password = Secret::from_env(var, |n| std::env::var(n).ok())?;
        options.scram_users.push(ScramUser { name: name.clone(), password: password.expose().to_owned() });
        security = Security {
            protocol: Protocol::SaslPlaintext,
            mechanism: Some(Mechanism::ScramSha512),
            username: Some(name.clone()),
            password: Some(password),
            ..Security::default()
        };
    }
    let broker = EmbeddedBroker::start_with(a.listen, options).await.context("cannot start the Kafka broker")?;
    let own = Connection { brokers: broker.addr().to_string(), security, auth: Auth::default() };
    let topics = match (a.advertise, a.topics.is_empty()) {
        (Some(_), _) => Vec::new(),
        (None, true) => vec![DEFAULT_TOPIC.to_owned()],
        (None, false) => a.topics,
    };
    for topic in &topics {
        ensure_topic(&own, topic, a.partitions, &[]).await.context("cannot create the topics")?;
    }
    // Kafka clients take host:port, not a URL.
    announce(&broker.bootstrap_servers())?;
    wait_for_stop_signal().await?;
    broker.shutdown().await;
    eprintln!("mskbench serve kafka: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn registry(a: RegistryArgs) -> Result<ExitCode> {
    let config =
        RegistryConfig { listen: a.listen, data: a.data, compatibility: a.compatibility, ..RegistryConfig::default() };
    let server = RegistryServer::start(config).await.context("cannot start the schema registry")?;
    announce(&server.url())?;
    wait_for_stop_signal().await?;
    server.shutdown().await.context("schema registry did not stop cleanly")?;
    eprintln!("mskbench serve registry: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The stand-ins' warnings (`mskbench-sim`'s `tracing` events: a failed
/// Firehose delivery, a broker that stopped) as lines on stderr; the
/// libraries print nothing themselves. Other crates' events stay off.
pub(crate) fn log_stand_ins_to_stderr() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::filter::Targets::new().with_target("mskbench_sim", tracing::Level::WARN);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .without_time();
    let _ = tracing_subscriber::registry().with(filter).with(fmt).try_init();
}

/// The URL on the first line of stdout, flushed at once (stdout may be a pipe).
fn announce(url: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{url}").and_then(|()| out.flush()).context("cannot write the URL to stdout")
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere); shared by every
/// long-running command.
pub(crate) async fn wait_for_stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("cannot watch Ctrl-C")
    }
}
