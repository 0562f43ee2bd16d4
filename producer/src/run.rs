//! One produce run from a [`ProduceConfig`]: generate → frame → schedule →
//! send, and the report.
//!
//! Order: generator (ClickEvents or a schema's random records) → schema
//! registration (Confluent or Glue), which decides the framing → the rdkafka
//! producer (defaults, then `-X`) → the send loop on a blocking thread.
//!
//! Boundary: the brokers and the registry are already running, and the
//! topic exists — the caller starts stand-ins and creates topics
//! (`mskbench produce` through the harness's parts, `mskbench run` in the
//! harness). This is the crate's only place that touches the runtime and
//! the network together; the pieces it strings up are each testable alone.
//! It prints nothing: stats snapshots go to the [`Observer`], and a run
//! that ended on a record it could not build still returns its report
//! ([`ProduceError::partial_report`]).

use std::sync::Arc;
use std::time::Duration;

use mskbench_kafka::Connection;
use mskbench_kafka::iam::IamError;
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::producer::ThreadedProducer;

use crate::clickevent::{self, ClickEvents};
use crate::config::{ConfigError, GlueConfig, KeyFormat, ProduceConfig, Records, Registry};
use crate::fleet::{self, Worker};
use crate::records::{Framing, Generator, KeyFraming, RecordEncoder};
use crate::registry::{GlueTarget, RegistryError, glue_client, register_confluent, register_glue};
use crate::schemagen::{SchemaGenError, SchemaRecords};
use crate::send::{self, AckContext, Control, Observer, SendError, SendOptions};
use crate::stats::Report;

/// librdkafka defaults of a run, before `-X`: the lab's durability
/// (acks=all) with idempotence, and a small linger so batches form.
pub const PRODUCER_DEFAULTS: [(&str, &str); 4] =
    [("acks", "all"), ("enable.idempotence", "true"), ("linger.ms", "5"), ("message.timeout.ms", "300000")];

/// librdkafka's own `message.timeout.ms` default, when neither it nor
/// `delivery.timeout.ms` is set.
const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 300_000;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The configuration cannot run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The schema could not be registered.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The records' schema is not one the generator can fill.
    #[error(transparent)]
    Schema(#[from] SchemaGenError),
    /// MSK IAM was asked for without a region to sign for.
    #[error(transparent)]
    Iam(#[from] IamError),
    /// librdkafka refused the settings.
    #[error("librdkafka refused the producer settings: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    /// The send loop failed as a whole.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A blocking task (registration, the send loop) panicked or was cancelled.
    #[error("the send thread failed: {0}")]
    Join(String),
}

impl ProduceError {
    /// The report of a run that started sending and then stopped on this
    /// error; every record it sent is accounted for in it.
    pub fn partial_report(&self) -> Option<&Report> {
        match self {
            ProduceError::Send(SendError::Record { report, .. }) => Some(report),
            _ => None,
        }
    }
}

/// How long a run waits for a broker to describe the topic before its
/// schedule starts ([`SendOptions::connect_timeout`]).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `config` until its count or duration, or until `control` stops it.
/// Stats snapshots (every `config.stats_interval`) go to `observer`.
pub async fn produce(
    config: &ProduceConfig,
    control: Control,
    observer: Arc<dyn Observer>,
) -> Result<Report, ProduceError> {
    config.validate()?;
    let run_seed = config.seed;
    let config = &config.share();
    let (generator, schema) = generator(config)?;
    let (framing, key_framing) = register(config, schema).await?;
    let mut encoder = RecordEncoder::new(generator, framing, key_framing);
    let connection = Connection::new(config.brokers.clone(), config.security.clone()).await?;
    let context = if config.keep_records {
        encoder = encoder.with_expected();
        AckContext::keeping_records()
    } else {
        AckContext::default()
    };
    let context = context.with_auth(connection.auth.clone());
    let (client, message_timeout) = client_config(&connection, config);
    let producer = ThreadedProducer::from_config_and_context(&client, context).map_err(ProduceError::Producer)?;
    let options = SendOptions {
        topic: config.topic.clone(),
        until: config.until,
        warmup: config.warmup,
        stats_interval: config.stats_interval,
        hlog: config.hlog.clone(),
        flush_timeout: message_timeout + Duration::from_secs(10),
        connect_timeout: CONNECT_TIMEOUT,
        seed: config.seed,
        schema: framing.schema_ref(),
        start_at: config.start_at,
    };
    let worker = fleet::WorkerInfo { index: Some(config.worker.index), workers: config.worker.workers, run_seed };
    let profile = config.profile.clone();
    tokio::task::spawn_blocking(move || {
        let report = send::run(&producer, &mut encoder, profile, &options, &control, observer.as_ref());
        // Dropping the producer joins librdkafka's threads: off the runtime.
        drop(producer);
        report
    })
    .await
    .map_err(|e| ProduceError::Join(e.to_string()))?
    .map(|report| Report { worker, ..report })
    .map_err(|e| match e {
        SendError::Record { source, report } => {
            ProduceError::Send(SendError::Record { source, report: Box::new(Report { worker, ..*report }) })
        }
        e => ProduceError::Send(e),
    })
}

/// The generator `config` asks for, and the schema its records follow.
fn generator(config: &ProduceConfig) -> Result<(Generator, String), ProduceError> {
    Ok(match &config.records {
        Records::ClickEvents { threads } => {
            let Worker { index, workers } = config.worker;
            let events = ClickEvents::for_worker(config.seed, *threads, index, workers);
            (Generator::Click(events), clickevent::SCHEMA.to_owned())
        }
        Records::Schema { schema, sizes } => {
            let records = SchemaRecords::new(schema, *sizes, config.seed)?;
            // Registered as the generator sees it (with the pad field, if any).
            let registered = records.schema_json();
            (Generator::Schema(records), registered)
        }
    })
}

/// Registers `schema` where `config` says; the framing values and keys get.
async fn register(config: &ProduceConfig, schema: String) -> Result<(Framing, KeyFraming), ProduceError> {
    match &config.registry {
        Registry::Glue(glue) => {
            let GlueConfig { registry, endpoint, region, chain, compression } = glue;
            let target = GlueTarget {
                registry: registry.clone(),
                endpoint: endpoint.clone(),
                region: region.clone(),
                chain: chain.clone(),
            };
            let client = glue_client(&target).await?;
            let version = register_glue(&client, registry, &config.topic, &schema).await?;
            // The lab's Glue path sends plain keys.
            Ok((Framing::Glue { version, compression: *compression }, KeyFraming::Plain))
        }
        Registry::Confluent { url } => {
            let topic = &config.topic;
            let id = register_confluent(url, &format!("{topic}-value"), &schema).await?;
            let key_id = match config.key_format {
                KeyFormat::Avro => Some(register_confluent(url, &format!("{topic}-key"), "\"string\"").await?),
                KeyFormat::String => None,
            };
            let key = key_id.map_or(KeyFraming::Plain, |id| KeyFraming::ConfluentAvro { id });
            Ok((Framing::Confluent { id }, key))
        }
    }
}

/// The producer's librdkafka settings (defaults, then `-X`), and how long
/// librdkafka may hold a record before failing it.
fn client_config(connection: &Connection, config: &ProduceConfig) -> (ClientConfig, Duration) {
    let mut client = connection.client_config();
    for (k, v) in PRODUCER_DEFAULTS {
        client.set(k, v);
    }
    for (k, v) in &config.rdkafka {
        client.set(k, v);
    }
    let message_timeout = client
        .get("message.timeout.ms")
        .or_else(|| client.get("delivery.timeout.ms"))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_MESSAGE_TIMEOUT_MS);
    (client, Duration::from_millis(message_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Profile;
    use crate::send::Until;

    fn config() -> ProduceConfig {
        let registry = Registry::Confluent { url: "http://127.0.0.1:1".into() };
        let until = Until { count: Some(1), duration: None };
        ProduceConfig::new("127.0.0.1:9092".into(), registry, Profile::Max, until, 1)
    }

    #[test]
    fn x_settings_override_the_defaults_and_set_the_flush_deadline() {
        let (client, timeout) = client_config(&Connection::plaintext("127.0.0.1:9092"), &config());
        assert_eq!(client.get("acks"), Some("all"));
        assert_eq!(client.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(timeout, Duration::from_secs(300));
        let mut c = config();
        c.rdkafka.insert("message.timeout.ms".into(), "300".into());
        c.rdkafka.insert("acks".into(), "1".into());
        let (client, timeout) = client_config(&Connection::plaintext("127.0.0.1:9092"), &c);
        assert_eq!(client.get("acks"), Some("1"));
        assert_eq!(timeout, Duration::from_millis(300));
    }

    #[test]
    fn the_registered_schema_is_the_generators() {
        let (_, schema) = generator(&config()).unwrap();
        assert_eq!(schema, clickevent::SCHEMA);
        let sizes = crate::schemagen::SizeControls { pad_bytes: 8, ..Default::default() };
        let padded =
            ProduceConfig { records: Records::Schema { schema: clickevent::SCHEMA.to_owned(), sizes }, ..config() };
        let (_, schema) = generator(&padded).unwrap();
        assert!(schema.contains(crate::schemagen::PAD_FIELD), "{schema}");
    }
}
