//! Kafka brokers to produce to: the embedded tansu broker, librdkafka's mock
//! cluster, and topic creation on any of them.
//!
//! [`EmbeddedBroker`] is tansu's Kafka-protocol broker run as a library on
//! the caller's tokio runtime, with in-memory storage (`memory://tansu/`):
//! a real broker on a loopback port that rdkafka, kcat or any Kafka client
//! talks to, with nothing installed. Unlike librdkafka's mock cluster it
//! keeps every record, so read-back tests use it. [`MockBroker`] is the
//! mock cluster (fault injection: brokers down, request errors, added
//! latency) — it deletes data past 5 MiB or 100,000 message sets per
//! partition, so it is for producer fault tests only.
//!
//! tansu binds the listener itself from a URL, so the port is found first
//! by binding port 0 and releasing it; a lost race shows as a start error.
//! The broker is driven through `Broker::serve`, not `Broker::main`, which
//! would take over SIGINT/SIGTERM (and stop the broker before the producer
//! has flushed on Ctrl-C); it stops when the handle is shut down or dropped.
//!
//! Cost: start-up in tens of milliseconds; per record, tansu's memory
//! engine (200,000 records produced and read back in 1.4 s on this machine).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::task::JoinHandle;
use url::Url;

/// Why a broker could not start or a topic could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot find a free port on {addr}: {source}")]
    Port { addr: SocketAddr, source: std::io::Error },
    #[error("cannot build the embedded broker: {0}")]
    Build(String),
    #[error("the embedded broker stopped while starting: {0}")]
    Start(String),
    #[error("the embedded broker did not listen on {addr} within {secs} s")]
    NotListening { addr: SocketAddr, secs: u64 },
    #[error("cannot start librdkafka's mock cluster: {0}")]
    Mock(#[source] rdkafka::error::KafkaError),
    #[error("cannot create topic {topic} on {brokers}: {detail}")]
    CreateTopic { topic: String, brokers: String, detail: String },
}

/// tansu's broker in this process, in memory.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    /// `None` once shut down.
    task: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `listen` (port 0 picks a free port) on
    /// the current tokio runtime, and waits until it accepts connections.
    pub async fn start(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        let addr = if listen.port() == 0 {
            let probe = TcpListener::bind(listen).map_err(|source| BrokerError::Port { addr: listen, source })?;
            probe.local_addr().map_err(|source| BrokerError::Port { addr: listen, source })?
        } else {
            listen
        };
        let url = |text: String| Url::parse(&text).map_err(|e| BrokerError::Build(format!("{text}: {e}")));
        let listener = url(format!("tcp://{addr}"))?;
        let storage = url("memory://tansu/".to_owned())?;
        let mut broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(111)
            .cluster_id("mskbench")
            .incarnation_id(uuid::Uuid::from_u128((0x6d73_6b62_656e_6368_u128 << 64) | u128::from(addr.port())))
            .advertised_listener(listener.clone())
            .listener(listener)
            .storage(storage)
            .silent(true)
            .build()
            .await
            .map_err(|e| BrokerError::Build(e.to_string()))?;
        let task = tokio::spawn(async move {
            if let Err(e) = broker.serve(tokio::time::Instant::now()).await {
                eprintln!("mskbench: embedded broker stopped: {e}");
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if task.is_finished() {
                return Err(BrokerError::Start(format!("listener {addr} failed (port taken?)")));
            }
            if tokio::task::spawn_blocking(move || TcpStream::connect_timeout(&addr, Duration::from_millis(200)))
                .await
                .is_ok_and(|r| r.is_ok())
            {
                return Ok(EmbeddedBroker { addr, task: Some(task) });
            }
            if tokio::time::Instant::now() > deadline {
                task.abort();
                return Err(BrokerError::NotListening { addr, secs: 20 });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The bootstrap server list (`127.0.0.1:PORT`).
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving. Records are in memory: they are gone afterwards.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// librdkafka's mock cluster, for producer fault tests only (it deletes
/// records past 5 MiB or 100,000 message sets per partition).
pub struct MockBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBroker").field("bootstrap_servers", &self.cluster.bootstrap_servers()).finish()
    }
}

impl MockBroker {
    /// A cluster of `brokers` brokers with `topic` of `partitions` partitions.
    pub fn start(brokers: i32, topic: &str, partitions: i32) -> Result<MockBroker, BrokerError> {
        let cluster = MockCluster::new(brokers).map_err(BrokerError::Mock)?;
        cluster.create_topic(topic, partitions, brokers.min(3)).map_err(BrokerError::Mock)?;
        Ok(MockBroker { cluster })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// The cluster, for fault injection.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}

/// Creates `topic` with `partitions` partitions (replication 1) unless it
/// exists. `extra` carries client settings (`-X`, e.g. SSL or SASL).
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    extra: &[(String, String)],
) -> Result<(), BrokerError> {
    let fail =
        |detail: String| BrokerError::CreateTopic { topic: topic.to_owned(), brokers: brokers.to_owned(), detail };
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in extra {
        // Producer-only settings make the admin client refuse to start.
        if is_client_setting(k) {
            config.set(k, v);
        }
    }
    // Look first: some brokers (librdkafka's mock cluster, locked-down
    // clusters) do not answer CreateTopics for a topic they already have.
    let probe = config.clone();
    let wanted = topic.to_owned();
    let exists = tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = probe.create().ok()?;
        let metadata = client.fetch_metadata(Some(&wanted), Duration::from_secs(10)).ok()?;
        Some(metadata.topics().iter().any(|t| t.name() == wanted && t.error().is_none() && !t.partitions().is_empty()))
    })
    .await
    .ok()
    .flatten()
    .unwrap_or(false);
    if exists {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|e| fail(e.to_string()))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = admin.create_topics([&new_topic], &options).await.map_err(|e| fail(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(fail(format!("{name}: {code}"))),
        }
    }
    Ok(())
}

/// Settings every librdkafka client accepts (security, connection, debug);
/// the rest are producer settings an admin client must not get.
fn is_client_setting(key: &str) -> bool {
    ["security.", "ssl.", "sasl.", "socket.", "client.", "broker.", "debug", "api.version", "reconnect."]
        .iter()
        .any(|p| key.starts_with(p))
}
