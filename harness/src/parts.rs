//! Step 1, start: what the scenario names, running, and where it is.
//!
//! The one place where `embedded` and `glue:NAME` are resolved, for
//! `mskbench run` and `mskbench produce` alike: [`start_broker`] and
//! [`start_registry`] start the embedded broker (tansu) and registry and
//! keep them in [`Parts`], so that they are stopped however the run ends; a
//! broker list or registry URL is used as it is, and `glue:NAME` names a
//! registry no one starts. [`start`] does the same for a scenario, plus the
//! Firehose endpoint, the topic and its start offsets — and, when the
//! scenario's `[[faults]]` need them, the proxies in front of the embedded
//! parts and their 5xx switches ([`crate::faults::Targets`]): the clients
//! are given the proxies' addresses, so every byte passes them. When the
//! run reaches AWS (a stream delivering to S3, a Glue registry) the AWS
//! default chain is resolved here, once, for every client of the run, and a
//! stream delivering to S3 is described and its bucket listed
//! ([`crate::delivered::Bucket::open`]). The result is
//! [`Started`]: addresses only, which the configuration step
//! ([`crate::configure`]) turns into the processor's and the producer's
//! settings.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use mskbench_aws::Chain;
use mskbench_kafka::{Connection, KafkaContext};
use mskbench_producer::topic::ensure_topic;
use mskbench_scenarios::{Brokers, Endpoint, RegistryKind};
use mskbench_sim::firehose::{Buffering, Faults};
use mskbench_sim::{
    BrokerOptions, EmbeddedBroker, FaultProxy, FirehoseConfig, FirehoseServer, RegistryConfig, RegistryServer,
};

use crate::accounting;
use crate::delivered::{Bucket, BucketTarget};
use crate::faults::{Needs, Targets};
use crate::plan::Plan;

/// The stand-ins a run started, stopped at its end ([`Parts::stop`]).
#[derive(Debug, Default)]
pub struct Parts {
    broker: Option<EmbeddedBroker>,
    registry: Option<RegistryServer>,
    pub(crate) firehose: Option<FirehoseServer>,
    /// What the fault schedule breaks: proxies in front of the stand-ins, their 5xx switches.
    pub(crate) targets: Targets,
}

impl Parts {
    /// Stops what is still running; returns what did not stop cleanly.
    pub async fn stop(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for proxy in [&self.targets.broker_proxy, &self.targets.registry_proxy, &self.targets.firehose_proxy]
            .into_iter()
            .flatten()
        {
            proxy.shutdown();
        }
        if let Some(f) = self.firehose.take()
            && let Err(e) = f.shutdown().await
        {
            problems.push(format!("the Firehose endpoint did not stop cleanly: {e}"));
        }
        if let Some(r) = self.registry.take()
            && let Err(e) = r.shutdown().await
        {
            problems.push(format!("the schema registry did not stop cleanly: {e}"));
        }
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
        problems
    }
}

/// The bootstrap list of `brokers`: for `embedded`, a tansu broker started
/// on a free loopback port and kept in `parts`. Topics are the caller's.
pub async fn start_broker(brokers: &Brokers, parts: &mut Parts) -> Result<String> {
    match brokers {
        Brokers::Embedded => {
            let broker = EmbeddedBroker::start(([127, 0, 0, 1], 0).into()).await?;
            let servers = broker.bootstrap_servers();
            parts.broker = Some(broker);
            Ok(servers)
        }
        Brokers::List(list) => Ok(list.clone()),
    }
}

/// Where `kind`'s registry is: for `embedded`, the built-in
/// Confluent-compatible registry started on a free loopback port and kept
/// in `parts`.
pub async fn start_registry(kind: &RegistryKind, parts: &mut Parts) -> Result<RegistryAt> {
    Ok(match kind {
        RegistryKind::Embedded => {
            let r = RegistryServer::start(RegistryConfig::default())
                .await
                .map_err(|e| anyhow::anyhow!("starting the schema registry: {e}"))?;
            let url = r.url();
            parts.registry = Some(r);
            RegistryAt::Confluent(url)
        }
        RegistryKind::Url(url) => RegistryAt::Confluent(url.clone()),
        RegistryKind::Glue { name } => RegistryAt::Glue(name.clone()),
    })
}

/// The registry the run's records are registered in and read through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAt {
    /// A Confluent-compatible registry (the embedded one or a URL).
    Confluent(String),
    /// An AWS Glue registry of this name.
    Glue(String),
}

/// Where the run's parts are, once started.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    /// The bootstrap list and how the run's clients connect to it.
    pub kafka: Connection,
    /// Where each partition of the topic ended before the run: the run's records start there.
    pub start_offsets: HashMap<i32, i64>,
    pub registry: RegistryAt,
    /// The Firehose endpoint the processor sends to; `None` for the region's AWS endpoint.
    pub firehose_url: Option<String>,
    /// Where delivered objects are read back from: the built-in endpoint's
    /// or an endpoint's own directory, or, for a stream delivering to S3,
    /// the run folder's copy of its objects (`s3/`).
    pub s3_dir: PathBuf,
    pub dead_letter_dir: PathBuf,
    /// Where the mapping's on-failure records go with `on_failure = "run"`.
    pub on_failure_dir: PathBuf,
    /// Who calls AWS: the default chain, resolved once here, or fixed
    /// credentials when every AWS-speaking part is a stand-in the run started.
    pub aws: Chain,
    /// For a stream delivering to S3: the bucket, what it held before the
    /// run, and the stream's buffering interval.
    pub bucket: Option<Arc<Bucket>>,
}

/// Starts the embedded parts the plan names (kept in `parts`), creates the
/// topic and notes where its partitions end.
pub(crate) async fn start(plan: &Plan, parts: &mut Parts) -> Result<Started> {
    let scenario = &plan.scenario;
    let dead_letter_dir = plan.out.join("dead-letter");
    let on_failure_dir = plan.out.join("on-failure");
    fs::create_dir_all(&dead_letter_dir).context("creating the dead-letter folder")?;

    let needs = Needs::of(&scenario.faults);
    let brokers = match &scenario.kafka.brokers {
        Brokers::Embedded if needs.broker_proxy && !needs.broker_switch => {
            let (broker, proxy) = EmbeddedBroker::start_behind_proxy(([127, 0, 0, 1], 0).into()).await?;
            let servers = broker.bootstrap_servers();
            parts.broker = Some(broker);
            parts.targets.broker_proxy = Some(Arc::new(proxy));
            servers
        }
        // A restartable broker is served by mskbench's own loop, which
        // holds the storage across the restart.
        Brokers::Embedded if needs.broker_switch => {
            let loopback: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
            let mut options = BrokerOptions { restartable: needs.broker_switch, ..BrokerOptions::default() };
            let listen = if needs.broker_proxy {
                // The broker on a port of its own, the proxy in front advertised.
                let addr = std::net::TcpListener::bind(loopback)?.local_addr()?;
                let proxy = Arc::new(FaultProxy::start(loopback, addr).await?);
                options.advertised = Some(proxy.addr());
                parts.targets.broker_proxy = Some(proxy);
                addr
            } else {
                loopback
            };
            let broker = EmbeddedBroker::start_with(listen, options).await?;
            parts.targets.broker_switch = broker.switch().map(Arc::new);
            let servers = broker.bootstrap_servers();
            parts.broker = Some(broker);
            servers
        }
        brokers => start_broker(brokers, parts).await?,
    };
    let kafka = Connection::new(brokers, plan.kafka_security.clone()).await?;
    let topic = scenario.kafka.topic.clone();
    let properties: Vec<(String, String)> = scenario.kafka.properties.clone().into_iter().collect();
    ensure_topic(&kafka, &topic, plan.partitions() as i32, &properties).await?;
    let start_offsets = {
        let k = kafka.clone();
        tokio::task::spawn_blocking(move || accounting::ends(&k, &topic)).await??
    };

    let mut registry = start_registry(&scenario.registry.kind, parts).await?;
    if let Some(r) = &parts.registry {
        parts.targets.registry_outage = Some(r.outage());
        if needs.registry_proxy {
            let proxy = Arc::new(FaultProxy::start(([127, 0, 0, 1], 0).into(), r.addr()).await?);
            registry = RegistryAt::Confluent(format!("http://{}", proxy.addr()));
            parts.targets.registry_proxy = Some(proxy);
        }
    }

    // The chain, once, when something of the run is AWS or stands in for it
    // where the run did not start it (a bucket, a Glue registry).
    let reaches_aws =
        scenario.firehose.endpoint.delivers_to_s3() || matches!(scenario.registry.kind, RegistryKind::Glue { .. });
    let aws = if reaches_aws {
        plan.aws.chain().await.context("resolving the AWS credentials and region (the default chain)")?
    } else {
        plan.aws.stand_in()
    };

    let fh = &scenario.firehose;
    let mut bucket = None;
    let (firehose_url, s3_dir) = match &fh.endpoint {
        Endpoint::Embedded => {
            let s3_dir = plan.out.join("s3");
            let config = FirehoseConfig {
                quota: fh.quota,
                s3_dir: s3_dir.clone(),
                buffering: Buffering { size_bytes: fh.buffer_bytes.0, interval: fh.buffer_interval },
                allow_small_buffers: true,
                streams: vec![fh.stream.clone()],
                faults: Faults {
                    internal_failure_rate: fh.faults.internal_failure_rate.0,
                    http_500_rate: fh.faults.http_500_rate.0,
                    latency: fh.faults.latency,
                },
                seed: scenario.seed,
                ..FirehoseConfig::default()
            };
            let f = FirehoseServer::start(config).await?;
            let mut url = f.url();
            parts.targets.firehose_outage = Some(f.outage());
            if needs.firehose_proxy {
                let proxy = Arc::new(FaultProxy::start(([127, 0, 0, 1], 0).into(), f.addr()).await?);
                url = format!("http://{}", proxy.addr());
                parts.targets.firehose_proxy = Some(proxy);
            }
            parts.firehose = Some(f);
            (Some(url), s3_dir)
        }
        Endpoint::Url { url, delivered_dir } => (Some(url.clone()), delivered_dir.clone()),
        Endpoint::S3 { url, bucket: name, prefix } => {
            let firehose_url = url.clone().or_else(|| plan.aws.endpoints.firehose.clone());
            let target = BucketTarget {
                aws: &aws,
                firehose_url: firehose_url.as_deref(),
                s3_url: plan.aws.endpoints.s3.as_deref(),
                stream: &fh.stream,
                bucket: name,
                prefix,
            };
            bucket = Some(Arc::new(Bucket::open(target).await?));
            (firehose_url, plan.out.join("s3"))
        }
    };

    Ok(Started { kafka, start_offsets, registry, firehose_url, s3_dir, dead_letter_dir, on_failure_dir, aws, bucket })
}

/// Commits `start` offsets for `group`, so its consumers begin there.
pub(crate) fn commit_start(kafka: &Connection, topic: &str, group: &str, start: &HashMap<i32, i64>) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer<KafkaContext> = kafka
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create_with_context(kafka.context("offsets"))?;
    kafka.auth.prime(consumer.client());
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (&p, &o) in start {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(o))?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .with_context(|| format!("committing the start offsets of group {group}"))?;
    Ok(())
}
