//! One produce run from a [`ProduceConfig`]: start what is embedded,
//! register the schema, build the rdkafka producer, send, report.
//!
//! Order: brokers (embedded tansu, mock cluster, or a list; the topic is
//! created if missing) → generator (ClickEvents or `--schema`) → registry
//! (embedded or URL for Confluent, Glue) → producer (defaults, then `-X`)
//! → the send loop on a blocking thread → embedded services stopped.
//!
//! Boundary: this is the crate's only place that touches the runtime,
//! sockets and files together; the pieces it strings up are each testable
//! alone. The future is not `Send` when `brokers = "mock"` (librdkafka's
//! mock cluster is not): drive it with `block_on`, as the CLI does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mskbench_core::wire::Compression;
use mskbench_sim::{RegistryConfig, RegistryServer};
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::producer::ThreadedProducer;

use crate::broker::{BrokerError, EmbeddedBroker, MockBroker, ensure_topic};
use crate::clickevent::{self, ClickEvents};
use crate::config::{ConfigError, GlueCompression, KeyFormat, ProduceConfig};
use crate::records::{Framing, Generator, KeyFraming, RecordEncoder};
use crate::registry::{GlueTarget, RegistryError, glue_client, register_confluent, register_glue};
use crate::schedule::{Profile, ProfileError};
use crate::schemagen::{SchemaGenError, SchemaRecords};
use crate::send::{self, AckContext, Control, SendError, SendOptions, Until};
use crate::stats::Report;

/// librdkafka defaults of a run, before `-X`: the lab's durability
/// (acks=all) with idempotence, and a small linger so batches form.
pub const PRODUCER_DEFAULTS: [(&str, &str); 4] =
    [("acks", "all"), ("enable.idempotence", "true"), ("linger.ms", "5"), ("message.timeout.ms", "300000")];

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Schema(#[from] SchemaGenError),
    #[error("cannot read the schema file {path}: {source}")]
    SchemaFile { path: String, source: std::io::Error },
    #[error("cannot start the embedded schema registry: {0}")]
    EmbeddedRegistry(String),
    #[error("librdkafka refused the producer settings: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("the send thread failed: {0}")]
    Join(String),
}

/// A seed from the clock, for runs without `--seed`.
pub fn chosen_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0x5eed, |d| d.as_nanos() as u64)
}

/// The profile a config asks for.
pub fn profile_of(config: &ProduceConfig) -> Result<Profile, ProfileError> {
    match (&config.profile, config.rate) {
        (Some(spec), rate) => Profile::parse(spec, rate.filter(|r| r.is_finite())),
        (None, Some(r)) if r.is_infinite() => Ok(Profile::Max),
        (None, Some(r)) => Ok(Profile::constant(r)),
        (None, None) => Err(ProfileError::from_message("give a rate or a profile")),
    }
}

/// Runs `config` until its count or duration, or until `control` stops it.
/// Prints the chosen seed on stderr when the config has none.
pub async fn produce(config: &ProduceConfig, control: Control) -> Result<Report, ProduceError> {
    config.validate()?;
    let profile = profile_of(config)?;
    let seed = config.seed.unwrap_or_else(|| {
        let seed = chosen_seed();
        eprintln!("mskbench produce: seed {seed} (pass --seed {seed} to repeat)");
        seed
    });
    let extra: Vec<(String, String)> = config.rdkafka.iter().map(|(k, v)| (k.clone(), v.clone())).collect();

    // Brokers. The handles live until the end of the run.
    let mut embedded = None;
    let mut mock = None;
    let bootstrap = match config.brokers.as_str() {
        "embedded" => {
            let broker = EmbeddedBroker::start(([127, 0, 0, 1], 0).into()).await?;
            let servers = broker.bootstrap_servers();
            eprintln!("mskbench produce: embedded broker at {servers}");
            embedded = Some(broker);
            ensure_topic(&servers, &config.topic, config.partitions, &[]).await?;
            servers
        }
        "mock" => {
            let m = MockBroker::start(3, &config.topic, config.partitions)?;
            let servers = m.bootstrap_servers();
            mock = Some(m);
            servers
        }
        list => {
            // A missing topic is created; a cluster that refuses (ACLs,
            // auto-creation policy) may still have it, so only warn.
            if let Err(e) = ensure_topic(list, &config.topic, config.partitions, &extra).await {
                eprintln!("mskbench produce: warning: {e}");
            }
            list.to_owned()
        }
    };

    // Records and their schema.
    let (generator, schema_text) = match &config.schema {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ProduceError::SchemaFile { path: path.display().to_string(), source })?;
            let records = SchemaRecords::new(&text, config.sizes, seed)?;
            let registered = records.schema_json();
            (Generator::Schema(records), registered)
        }
        None => (Generator::Click(ClickEvents::new(seed, config.threads)), clickevent::SCHEMA.to_owned()),
    };

    // Registry and framing.
    let mut embedded_registry = None;
    let (framing, key_framing) = match &config.glue {
        Some(glue) => {
            let target = GlueTarget {
                registry: glue.registry.clone(),
                endpoint: glue.endpoint.clone(),
                region: glue.region.clone(),
            };
            let client = glue_client(&target).await;
            let version = register_glue(&client, &glue.registry, &config.topic, &schema_text).await?;
            let compression = match glue.compression {
                GlueCompression::None => Compression::None,
                GlueCompression::Zlib => Compression::Zlib,
            };
            (Framing::Glue { version, compression }, KeyFraming::Plain)
        }
        None => {
            let url = if config.registry == "embedded" {
                let server = RegistryServer::start(RegistryConfig::default())
                    .await
                    .map_err(|e| ProduceError::EmbeddedRegistry(e.to_string()))?;
                let url = server.url();
                eprintln!("mskbench produce: embedded schema registry at {url}");
                embedded_registry = Some(server);
                url
            } else {
                config.registry.clone()
            };
            let topic = config.topic.clone();
            let key_format = config.key_format;
            let (id, key_id) = tokio::task::spawn_blocking(move || -> Result<(u32, Option<u32>), RegistryError> {
                let id = register_confluent(&url, &format!("{topic}-value"), &schema_text)?;
                let key_id = match key_format {
                    KeyFormat::Avro => Some(register_confluent(&url, &format!("{topic}-key"), "\"string\"")?),
                    KeyFormat::String => None,
                };
                Ok((id, key_id))
            })
            .await
            .map_err(|e| ProduceError::Join(e.to_string()))??;
            let key = key_id.map_or(KeyFraming::Plain, |id| KeyFraming::ConfluentAvro { id });
            (Framing::Confluent { id }, key)
        }
    };
    let schema_ref = framing.schema_ref();
    let mut encoder = RecordEncoder::new(generator, framing, key_framing);

    // The producer: defaults, then -X.
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &bootstrap);
    for (k, v) in PRODUCER_DEFAULTS {
        client.set(k, v);
    }
    for (k, v) in &extra {
        client.set(k, v);
    }
    let message_timeout = client
        .get("message.timeout.ms")
        .or_else(|| client.get("delivery.timeout.ms"))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(300_000);
    let producer =
        ThreadedProducer::from_config_and_context(&client, AckContext::default()).map_err(ProduceError::Producer)?;

    let options = SendOptions {
        topic: config.topic.clone(),
        until: Until { count: config.count, duration: config.duration_secs.map(Duration::from_secs_f64) },
        warmup: Duration::from_secs_f64(config.warmup_secs),
        stats_interval: (config.stats_interval_secs > 0.0).then(|| Duration::from_secs_f64(config.stats_interval_secs)),
        hlog: config.hlog.clone(),
        progress: config.progress,
        flush_timeout: Duration::from_millis(message_timeout) + Duration::from_secs(10),
    };
    let report = tokio::task::spawn_blocking(move || {
        let report = send::run(&producer, &mut encoder, profile, &options, &control, seed, schema_ref);
        // Dropping the producer joins librdkafka's threads: off the runtime.
        drop(producer);
        report
    })
    .await
    .map_err(|e| ProduceError::Join(e.to_string()))??;

    if let Some(server) = embedded_registry
        && let Err(e) = server.shutdown().await
    {
        eprintln!("mskbench produce: embedded registry did not stop cleanly: {e}");
    }
    if let Some(broker) = embedded {
        broker.shutdown().await;
    }
    drop(mock);
    Ok(report)
}
