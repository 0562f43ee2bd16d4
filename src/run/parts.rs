//! Starting what a scenario names, and configuring the producer and the
//! processor as the scenario says.
//!
//! The embedded parts (tansu, the registry, the Firehose endpoint) live in
//! [`Parts`] so that they are stopped however the run ends; a broker list,
//! registry URL or endpoint URL is used as it is. [`processor_config`]
//! builds the Lambda function's environment (the lab's variable names), and
//! [`produce_config`] turns the phases into one open-loop rate profile.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mskbench_processor::Config;
use mskbench_producer::broker::ensure_topic;
use mskbench_producer::config::{GlueCompression, GlueConfig};
use mskbench_producer::schemagen::SizeControls;
use mskbench_producer::{EmbeddedBroker, ProduceConfig};
use mskbench_scenarios::{RetryPolicy, Scenario, WireFormat};
use mskbench_sim::firehose::{Buffering, Faults};
use mskbench_sim::{FirehoseConfig, FirehoseServer, RegistryConfig, RegistryServer};

use super::accounting;

/// The stand-ins a run started, stopped at its end.
#[derive(Default)]
pub(super) struct Parts {
    broker: Option<EmbeddedBroker>,
    registry: Option<RegistryServer>,
    pub(super) firehose: Option<FirehoseServer>,
}

impl Parts {
    pub(super) async fn stop(self) {
        if let Some(r) = self.registry
            && let Err(e) = r.shutdown().await
        {
            eprintln!("mskbench run: the schema registry did not stop cleanly: {e}");
        }
        if let Some(b) = self.broker {
            b.shutdown().await;
        }
    }
}

/// The producer's rate profile for the phases: `steps:` with ramps.
pub(super) fn profile_spec(scenario: &Scenario) -> String {
    let steps: Vec<String> = scenario
        .phases
        .iter()
        .map(|p| {
            let rate = match p.to_rate {
                Some(to) => format!("{}..{}", p.rate.0, to.0),
                None => p.rate.0.to_string(),
            };
            format!("{rate}:{}ms", p.duration.as_millis())
        })
        .collect();
    format!("steps:{}", steps.join(","))
}

/// The measured window: from the first to the end of the last measured phase, in seconds from the start.
pub(super) fn measured_window(scenario: &Scenario) -> (f64, f64) {
    let mut t = 0.0;
    let (mut from, mut to) = (None, 0.0);
    for p in &scenario.phases {
        let end = t + p.duration.as_secs_f64();
        if p.measure {
            from.get_or_insert(t);
            to = end;
        }
        t = end;
    }
    (from.unwrap_or(0.0), to)
}

/// Where the run's parts are, once started.
pub(super) struct Started {
    pub brokers: String,
    /// Where each partition of the topic ended before the run: the run's records start there.
    pub start_offsets: HashMap<i32, i64>,
    /// The Confluent registry, or `None` for Glue.
    pub registry_url: Option<String>,
    pub firehose_url: String,
    /// Where delivered objects land.
    pub s3_dir: PathBuf,
    pub dead_letter_dir: PathBuf,
}

/// Starts the embedded parts the scenario names (kept in `parts`) and
/// creates the topic.
pub(super) async fn start(scenario: &Scenario, out: &Path, parts: &mut Parts) -> Result<Started> {
    let topic = &scenario.kafka.topic;
    let partitions = scenario.producer.partitions.0 as i32;
    let s3_dir = match &scenario.firehose.delivered_dir {
        Some(dir) => PathBuf::from(dir),
        None => out.join("s3"),
    };
    let dead_letter_dir = out.join("dead-letter");
    fs::create_dir_all(&dead_letter_dir).context("creating the dead-letter folder")?;

    // Kafka.
    let brokers = if scenario.kafka.brokers == "embedded" {
        let broker = EmbeddedBroker::start(([127, 0, 0, 1], 0).into()).await?;
        let servers = broker.bootstrap_servers();
        parts.broker = Some(broker);
        servers
    } else {
        scenario.kafka.brokers.clone()
    };
    ensure_topic(&brokers, topic, partitions, &[]).await?;
    let start_offsets: HashMap<i32, i64> = {
        let (b, t) = (brokers.clone(), topic.clone());
        tokio::task::spawn_blocking(move || accounting::ends(&b, &t)).await??
    };

    // Schema registry.
    let registry_url = match scenario.registry.kind.as_str() {
        "embedded" => {
            let r = RegistryServer::start(RegistryConfig::default())
                .await
                .map_err(|e| anyhow::anyhow!("starting the schema registry: {e}"))?;
            let url = r.url();
            parts.registry = Some(r);
            Some(url)
        }
        kind if kind.starts_with("glue:") => None,
        url => Some(url.to_owned()),
    };

    // Firehose.
    let quota = scenario.firehose.quota.parsed();
    let firehose_url = if scenario.firehose.endpoint == "embedded" {
        let faults = &scenario.firehose.faults;
        let config = FirehoseConfig {
            quota,
            s3_dir: s3_dir.clone(),
            buffering: Buffering {
                size_bytes: scenario.firehose.buffer_bytes.0,
                interval: scenario.firehose.buffer_interval,
            },
            allow_small_buffers: true,
            streams: vec![scenario.firehose.stream.clone()],
            faults: Faults {
                internal_failure_rate: faults.internal_failure_rate.0,
                http_500_rate: faults.http_500_rate.0,
                latency: faults.latency.parsed(),
            },
            seed: scenario.seed,
            ..FirehoseConfig::default()
        };
        let f = FirehoseServer::start(config).await?;
        let url = f.url();
        parts.firehose = Some(f);
        url
    } else {
        scenario.firehose.endpoint.clone()
    };

    Ok(Started { brokers, start_offsets, registry_url, firehose_url, s3_dir, dead_letter_dir })
}

/// The handler's environment, as the lab's function would have it.
pub(super) fn processor_config(
    scenario: &Scenario,
    registry_url: Option<&str>,
    firehose_url: &str,
    dead_letter_dir: &Path,
) -> Result<Config> {
    let p = &scenario.processor;
    let mut env: HashMap<&str, String> = HashMap::new();
    env.insert("DELIVERY_STREAM_NAME", scenario.firehose.stream.clone());
    // The scenario counts attempts in total, as the lab's RETRIES does; the
    // processor counts resends after the first call.
    env.insert("RETRIES", (p.retries.0 - 1).to_string());
    env.insert(
        "RETRY_POLICY",
        match p.retry_policy {
            RetryPolicy::Lab => "lab",
            RetryPolicy::Jittered => "backoff",
        }
        .into(),
    );
    match scenario.producer.wire_format {
        WireFormat::Confluent => {
            env.insert("CSR", "true".into());
        }
        WireFormat::Glue | WireFormat::GlueZlib => {
            env.insert("CSR", "false".into());
        }
    }
    if let Some(url) = registry_url {
        env.insert("SCHEMA_REGISTRY_URL", url.to_owned());
    }
    env.insert("AWS_ENDPOINT_URL_FIREHOSE", firehose_url.to_owned());
    env.insert("FIREHOSE_CONCURRENCY", p.concurrency.0.to_string());
    env.insert("BATCH_RECORDS", p.records_per_call.0.to_string());
    env.insert("DEAD_LETTER", dead_letter_dir.display().to_string());
    env.insert("JITTER_SEED", scenario.seed.to_string());
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    for (k, default) in
        [("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "mskbench"), ("AWS_SECRET_ACCESS_KEY", "mskbench")]
    {
        env.insert(k, from_env(k).unwrap_or_else(|| default.to_owned()));
    }
    Ok(Config::from_lookup(|k| env.get(k).cloned().or_else(|| from_env(k)))?)
}

pub(super) fn produce_config(
    scenario: &Scenario,
    file: &Path,
    brokers: &str,
    registry_url: Option<&str>,
    out: &Path,
    warmup: f64,
) -> Result<ProduceConfig> {
    let pr = &scenario.producer;
    let mut schema = scenario.schema_path(file);
    let pad = pr.padding_bytes as usize;
    if schema.is_none() && pad > 0 {
        // Padding needs the schema-driven generator: ClickEvent-shaped records plus a pad field.
        let path = out.join("clickevent.avsc");
        fs::write(&path, mskbench_producer::clickevent::SCHEMA).context("writing clickevent.avsc")?;
        schema = Some(path);
    }
    let glue = scenario.registry.kind.strip_prefix("glue:").map(|name| GlueConfig {
        registry: name.to_owned(),
        endpoint: None,
        region: None,
        compression: match pr.wire_format {
            WireFormat::GlueZlib => GlueCompression::Zlib,
            _ => GlueCompression::None,
        },
    });
    Ok(ProduceConfig {
        brokers: brokers.to_owned(),
        topic: scenario.kafka.topic.clone(),
        partitions: pr.partitions.0 as i32,
        registry: registry_url.unwrap_or("embedded").to_owned(),
        glue,
        rate: None,
        profile: Some(profile_spec(scenario)),
        duration_secs: Some(scenario.total_duration().as_secs_f64()),
        warmup_secs: warmup,
        seed: Some(scenario.seed),
        schema,
        sizes: SizeControls { pad_bytes: pad, ..SizeControls::default() },
        stats_interval_secs: 0.0,
        hlog: Some(out.join("produce.hlog")),
        progress: false,
        ..ProduceConfig::default()
    })
}

/// Commits `start` offsets for `group`, so its consumers begin there.
pub(super) fn commit_start(brokers: &str, topic: &str, group: &str, start: &HashMap<i32, i64>) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (&p, &o) in start {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(o))?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .with_context(|| format!("committing the start offsets of group {group}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PHASES: &str = r#"
name = "t"
seed = 1

[[phases]]
name = "warm-up"
duration = "2s"
rate = 100
measure = false

[[phases]]
name = "ramp"
duration = "1500ms"
rate = 1000
to_rate = 3000
"#;

    #[test]
    fn phases_become_one_profile_and_a_measured_window() {
        let s = Scenario::parse(TWO_PHASES, "t.toml").unwrap();
        assert_eq!(profile_spec(&s), "steps:100:2000ms,1000..3000:1500ms");
        let profile = mskbench_producer::schedule::Profile::parse(&profile_spec(&s), None).unwrap();
        assert!((profile.cumulative(3.5) - (200.0 + 3000.0)).abs() < 1e-6);
        assert_eq!(measured_window(&s), (2.0, 3.5));
    }

    #[test]
    fn the_processor_gets_the_lab_environment() {
        let s = Scenario::parse(
            &format!("{TWO_PHASES}\n[processor]\nretries = 3\nretry_policy = \"lab\"\nrecords_per_call = 250\n"),
            "t.toml",
        )
        .unwrap();
        let c = processor_config(&s, Some("http://127.0.0.1:1"), "http://127.0.0.1:2", Path::new("/tmp/dl")).unwrap();
        assert_eq!(c.retries, 2, "three attempts in total are two resends");
        assert_eq!(c.batch_records, 250);
        assert_eq!(c.endpoints.firehose.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(c.wire_mode, mskbench_core::WireMode::Confluent);
    }
}
