//! Kafka brokers as stand-ins: tansu's broker in this process, and
//! librdkafka's mock cluster for producer fault tests.
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
//! Boundary: starting and stopping brokers. Creating topics on a broker is
//! a Kafka client's job (the admin API, which a producer against a real
//! cluster needs too): `mskbench_producer::topic::ensure_topic`. The mock
//! cluster is the exception, since it creates its topic through its own API.
//!
//! Cost: start-up in tens of milliseconds; per record, tansu's memory
//! engine (200,000 records produced and read back in 1.4 s on this machine).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rama::Service as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_broker::service::services;
use tansu_sans_io::ScramMechanism;
use tansu_storage::{BrokerRegistrationRequest, ScramCredential, Storage as _, StorageContainer};
use tokio::task::JoinHandle;
use url::Url;

use crate::proxy::FaultProxy;

/// How long [`EmbeddedBroker::start`] waits for the listener.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No free port could be found to listen on.
    #[error("cannot find a free port on {addr}: {source}")]
    Port {
        /// The address asked for (port 0).
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// tansu refused the broker's settings.
    #[error("cannot build the embedded broker: {0}")]
    Build(String),
    /// tansu's serve task ended before the broker accepted a connection.
    #[error("the embedded broker stopped while starting: {0}")]
    Start(String),
    /// The listener did not accept connections in time.
    #[error("the embedded broker did not listen on {addr} within {secs} s")]
    NotListening {
        /// Where it should listen.
        addr: SocketAddr,
        /// How long it was given.
        secs: u64,
    },
    /// The proxy in front of the broker could not listen.
    #[error(transparent)]
    Proxy(Box<crate::proxy::ProxyError>),
    /// librdkafka could not create the mock cluster or its topic.
    #[error("cannot start librdkafka's mock cluster: {0}")]
    Mock(#[source] rdkafka::error::KafkaError),
}

/// tansu's broker in this process, in memory.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    /// Where clients are told to connect: `addr`, or a proxy in front of it.
    advertised: SocketAddr,
    /// `None` once shut down.
    task: Option<JoinHandle<()>>,
    /// The broker's own serving loop with its storage in hand, when started
    /// by [`EmbeddedBroker::start_with`] with SCRAM users or `restartable`.
    serving: Option<Arc<Serving>>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `listen` (port 0 picks a free port) on
    /// the current tokio runtime, and waits until it accepts connections.
    pub async fn start(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        let addr = free_addr(listen)?;
        Self::start_advertising(addr, addr).await
    }

    /// Starts a broker on a free port of `listen`'s address behind a
    /// [`FaultProxy`] on `listen`, advertising the proxy: a Kafka client
    /// connects to the advertised address after bootstrapping, so only then
    /// does all of its traffic pass the proxy (and meet its faults).
    pub async fn start_behind_proxy(listen: SocketAddr) -> Result<(EmbeddedBroker, FaultProxy), BrokerError> {
        let addr = free_addr(SocketAddr::new(listen.ip(), 0))?;
        let proxy = FaultProxy::start(listen, addr).await.map_err(|e| BrokerError::Proxy(Box::new(e)))?;
        let broker = Self::start_advertising(addr, proxy.addr()).await?;
        Ok((broker, proxy))
    }

    /// Starts a broker on `listen` (port 0: a free port) as `options` say:
    /// advertising another address (a TLS terminator in front of it, as
    /// MSK's listeners are to a client), and requiring SASL/SCRAM.
    pub async fn start_with(listen: SocketAddr, options: BrokerOptions) -> Result<EmbeddedBroker, BrokerError> {
        let addr = free_addr(listen)?;
        let advertised = options.advertised.unwrap_or(addr);
        if options.scram_users.is_empty() && !options.restartable {
            Self::start_advertising(addr, advertised).await
        } else {
            Self::start_serving(addr, advertised, &options.scram_users).await
        }
    }

    async fn start_advertising(addr: SocketAddr, advertised: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        let url = |text: String| Url::parse(&text).map_err(|e| BrokerError::Build(format!("{text}: {e}")));
        let listener = url(format!("tcp://{addr}"))?;
        let advertised_listener = url(format!("tcp://{advertised}"))?;
        let storage = url("memory://tansu/".to_owned())?;
        let mut broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(NODE_ID)
            .cluster_id(CLUSTER_ID)
            .incarnation_id(incarnation(addr))
            .advertised_listener(advertised_listener)
            .listener(listener)
            .storage(storage)
            .silent(true)
            .build()
            .await
            .map_err(|e| BrokerError::Build(e.to_string()))?;
        let task = tokio::spawn(async move {
            if let Err(e) = broker.serve(tokio::time::Instant::now()).await {
                tracing::warn!("embedded broker stopped: {e}");
            }
        });
        wait_listening(addr, &task).await?;
        Ok(EmbeddedBroker { addr, advertised, task: Some(task), serving: None })
    }

    /// tansu's broker served by a loop of our own: the same storage,
    /// coordinator and routes `Broker::serve` uses, with the storage in hand
    /// (tansu's `Broker` keeps its storage to itself). With SCRAM `users`,
    /// behind tansu's SASL frame layer, which answers nothing but
    /// ApiVersions, SaslHandshake and SaslAuthenticate before a client has
    /// authenticated (the users' credentials are stored before serving).
    /// Holding the storage is also what lets [`BrokerSwitch`] restart the
    /// broker without losing its log.
    async fn start_serving(
        addr: SocketAddr,
        advertised: SocketAddr,
        users: &[ScramUser],
    ) -> Result<EmbeddedBroker, BrokerError> {
        let build = |e: &dyn std::fmt::Display| BrokerError::Build(e.to_string());
        let url = |text: String| Url::parse(&text).map_err(|e| BrokerError::Build(format!("{text}: {e}")));
        let storage = StorageContainer::builder()
            .cluster_id(CLUSTER_ID)
            .node_id(NODE_ID)
            .advertised_listener(url(format!("tcp://{advertised}"))?)
            .storage(url("memory://tansu/".to_owned())?)
            .schema_registry(None)
            .lake_house(None)
            .cancellation(tokio_util::sync::CancellationToken::new())
            .silent(true)
            .build()
            .await
            .map_err(|e| build(&e))?;
        storage
            .register_broker(BrokerRegistrationRequest {
                broker_id: NODE_ID,
                cluster_id: CLUSTER_ID.to_owned(),
                incarnation_id: incarnation(addr),
                rack: None,
            })
            .await
            .map_err(|e| build(&e))?;
        for user in users {
            for mechanism in [ScramMechanism::Scram256, ScramMechanism::Scram512] {
                let credential = scram_credential(mechanism, &user.password);
                storage.upsert_user_scram_credential(&user.name, mechanism, credential).await.map_err(|e| build(&e))?;
            }
        }
        let sasl = if users.is_empty() {
            None
        } else {
            Some(tansu_auth::configuration(storage.clone()).map_err(|e| build(&e))?)
        };
        let serving =
            Arc::new(Serving { addr, storage, sasl, state: tokio::sync::Mutex::new(ServingState::default()) });
        serving.listen().await?;
        Ok(EmbeddedBroker { addr, advertised, task: None, serving: Some(serving) })
    }

    /// The switch that stops and restarts this broker, when it was started
    /// `restartable` (or with SCRAM users).
    pub fn switch(&self) -> Option<BrokerSwitch> {
        self.serving.clone().map(BrokerSwitch)
    }

    /// The bootstrap server list (`127.0.0.1:PORT`): the advertised address.
    pub fn bootstrap_servers(&self) -> String {
        self.advertised.to_string()
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving. Records are in memory: they are gone afterwards.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        if let Some(serving) = self.serving.take() {
            serving.stop().await;
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(serving) = &self.serving
            && let Ok(mut state) = serving.state.try_lock()
            && let Some(task) = state.task.take()
        {
            task.abort();
        }
    }
}

/// A broker served by our own loop: its address, its storage (kept across
/// restarts) and the loop while it runs.
struct Serving {
    addr: SocketAddr,
    storage: StorageContainer,
    sasl: Option<Arc<rsasl::config::SASLConfig>>,
    state: tokio::sync::Mutex<ServingState>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving").field("addr", &self.addr).field("sasl", &self.sasl.is_some()).finish()
    }
}

#[derive(Default)]
struct ServingState {
    /// The accept loop, `None` while stopped.
    task: Option<JoinHandle<()>>,
    /// Connections open now (the loop's count).
    open: Arc<AtomicUsize>,
}

impl Serving {
    /// Binds the address and serves it with a new group coordinator over the
    /// kept storage, as a restarted broker process starts: the log and the
    /// committed offsets are there, the coordinator's members are not.
    async fn listen(&self) -> Result<(), BrokerError> {
        let build = |e: &dyn std::fmt::Display| BrokerError::Build(e.to_string());
        let mut state = self.state.lock().await;
        if state.task.is_some() {
            return Ok(());
        }
        let groups = Controller::with_storage(self.storage.clone()).map_err(|e| build(&e))?;
        let addr = self.addr;
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| BrokerError::Port { addr, source })?;
        let (storage, sasl, open) = (self.storage.clone(), self.sasl.clone(), state.open.clone());
        let task = tokio::spawn(async move {
            // Dropped with the task: aborting it closes every connection.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let service = match services(CLUSTER_ID, groups.clone(), storage.clone(), sasl.clone()) {
                            Ok(service) => service,
                            Err(e) => {
                                tracing::warn!("embedded broker: cannot serve a connection: {e}");
                                continue;
                            }
                        };
                        let open = open.clone();
                        open.fetch_add(1, Ordering::Relaxed);
                        connections.spawn(async move {
                            // Counted down however the connection ends, an abort included.
                            let _open = OpenConnection(open);
                            if let Err(e) = service.serve(rama::Context::default(), stream).await {
                                tracing::debug!("embedded broker: connection ended: {e}");
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        wait_listening(addr, &task).await?;
        state.task = Some(task);
        Ok(())
    }

    /// Stops serving: the port closes and every open connection is cut.
    /// Returns the connections cut.
    async fn stop(&self) -> usize {
        let mut state = self.state.lock().await;
        let Some(task) = state.task.take() else { return 0 };
        let open = state.open.load(Ordering::Relaxed);
        task.abort();
        let _ = task.await;
        open
    }
}

/// One open connection of [`Serving`]'s count.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Stops and restarts an [`EmbeddedBroker`] as a broker process restarts:
/// while stopped its port refuses connections and every connection it had
/// is cut; started again on the same address, it serves the same log (the
/// storage stays in memory meanwhile, as a broker's log stays on its disk)
/// with a new group coordinator, so consumers rejoin their group.
#[derive(Debug, Clone)]
pub struct BrokerSwitch(Arc<Serving>);

impl BrokerSwitch {
    /// Stops the broker; the connections cut.
    pub async fn stop(&self) -> usize {
        self.0.stop().await
    }

    /// Starts it again on its address (no-op while it runs).
    pub async fn start(&self) -> Result<(), BrokerError> {
        self.0.listen().await
    }

    /// True while it serves.
    pub async fn is_serving(&self) -> bool {
        self.0.state.lock().await.task.is_some()
    }
}

/// The broker's node id and cluster id.
const NODE_ID: i32 = 111;
const CLUSTER_ID: &str = "mskbench";

/// A broker's incarnation: "mskbench" and its port.
fn incarnation(addr: SocketAddr) -> uuid::Uuid {
    uuid::Uuid::from_u128((0x6d73_6b62_656e_6368_u128 << 64) | u128::from(addr.port()))
}

/// How [`EmbeddedBroker::start_with`] serves.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// The address clients are told to connect to after bootstrapping
    /// (default: the listener's).
    pub advertised: Option<SocketAddr>,
    /// SASL/SCRAM users (SHA-256 and SHA-512) the broker requires; empty:
    /// no authentication.
    pub scram_users: Vec<ScramUser>,
    /// Whether [`EmbeddedBroker::switch`] can stop and restart it (the
    /// `broker_restart` fault).
    pub restartable: bool,
}

/// A SCRAM user of the embedded broker.
#[derive(Clone)]
pub struct ScramUser {
    /// The user name.
    pub name: String,
    /// The password (only its salted keys are stored).
    pub password: String,
}

impl std::fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUser").field("name", &self.name).field("password", &"<redacted>").finish()
    }
}

/// The stored form of a SCRAM password (RFC 5802: salt, iterations, stored
/// key, server key), as tansu's AlterUserScramCredentials stores it.
fn scram_credential(mechanism: ScramMechanism, password: &str) -> ScramCredential {
    use rsasl::mechanisms::scram::tools::{derive_keys, hash_password};
    use sha2::{Digest, Sha256, Sha512};
    const ITERATIONS: u32 = 4096;
    let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
    let (stored_key, server_key) = if mechanism == ScramMechanism::Scram256 {
        let mut salted = Default::default();
        hash_password::<Sha256>(password.as_bytes(), ITERATIONS, &salt, &mut salted);
        let (client_key, server_key) = derive_keys::<Sha256>(&salted);
        (Sha256::digest(client_key).to_vec(), server_key.to_vec())
    } else {
        let mut salted = Default::default();
        hash_password::<Sha512>(password.as_bytes(), ITERATIONS, &salt, &mut salted);
        let (client_key, server_key) = derive_keys::<Sha512>(&salted);
        (Sha512::digest(client_key).to_vec(), server_key.to_vec())
    };
    ScramCredential {
        salt: salt.into(),
        iterations: ITERATIONS as i32,
        stored_key: stored_key.into(),
        server_key: server_key.into(),
    }
}

/// `listen`, or with port 0 a free port on its address (bound and released).
fn free_addr(listen: SocketAddr) -> Result<SocketAddr, BrokerError> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    let probe = TcpListener::bind(listen).map_err(|source| BrokerError::Port { addr: listen, source })?;
    probe.local_addr().map_err(|source| BrokerError::Port { addr: listen, source })
}

/// Waits until `addr` accepts connections, or `task` (tansu's serve loop) ends.
async fn wait_listening(addr: SocketAddr, task: &JoinHandle<()>) -> Result<(), BrokerError> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if task.is_finished() {
            return Err(BrokerError::Start(format!("listener {addr} failed (port taken?)")));
        }
        if tokio::task::spawn_blocking(move || TcpStream::connect_timeout(&addr, Duration::from_millis(200)))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            task.abort();
            return Err(BrokerError::NotListening { addr, secs: START_TIMEOUT.as_secs() });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// librdkafka's mock cluster, for producer fault tests only (it deletes
/// records past 5 MiB or 100,000 message sets per partition). Not `Send`:
/// keep it on the thread that started it.
pub struct MockBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBroker").field("bootstrap_servers", &self.cluster.bootstrap_servers()).finish()
    }
}

impl MockBroker {
    /// A cluster of `brokers` brokers with `topic` of `partitions` partitions
    /// (replicated on up to three of them).
    pub fn start(brokers: i32, topic: &str, partitions: i32) -> Result<MockBroker, BrokerError> {
        let cluster = MockCluster::new(brokers).map_err(BrokerError::Mock)?;
        cluster.create_topic(topic, partitions, brokers.min(3)).map_err(BrokerError::Mock)?;
        Ok(MockBroker { cluster })
    }

    /// The bootstrap server list.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// The cluster, for fault injection.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    use super::*;

    /// The topics a broker's metadata lists, with their partition counts.
    fn topics(servers: &str) -> Vec<(String, usize)> {
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", servers).create().unwrap();
        let metadata = client.fetch_metadata(None, Duration::from_secs(10)).unwrap();
        metadata.topics().iter().map(|t| (t.name().to_owned(), t.partitions().len())).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_broker_answers_kafka_clients_until_shut_down() {
        let broker = EmbeddedBroker::start(([127, 0, 0, 1], 0).into()).await.unwrap();
        let servers = broker.bootstrap_servers();
        assert_eq!(servers, broker.addr().to_string());
        assert_ne!(broker.addr().port(), 0, "port 0 became a real port");
        let listed = tokio::task::spawn_blocking(move || topics(&servers)).await.unwrap();
        assert!(listed.iter().all(|(name, _)| name.starts_with("__")), "a new broker has no user topics: {listed:?}");
        let addr = broker.addr();
        broker.shutdown().await;
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(), "stopped listening");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_behind_a_proxy_advertises_the_proxy() {
        let (broker, proxy) = EmbeddedBroker::start_behind_proxy(([127, 0, 0, 1], 0).into()).await.unwrap();
        assert_eq!(broker.bootstrap_servers(), proxy.addr().to_string());
        assert_ne!(broker.addr(), proxy.addr());
        let servers = broker.bootstrap_servers();
        let advertised = tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &servers).create().unwrap();
            let metadata = client.fetch_metadata(None, Duration::from_secs(10)).unwrap();
            metadata.brokers().iter().map(|b| format!("{}:{}", b.host(), b.port())).collect::<Vec<_>>()
        })
        .await
        .unwrap();
        assert_eq!(advertised, vec![proxy.addr().to_string()], "clients come back through the proxy");
        assert!(proxy.counts().accepted >= 1);
        proxy.shutdown();
        broker.shutdown().await;
    }

    /// tansu 0.6 answered a fetch from an offset inside a record batch with
    /// the batches after it, so a consumer resuming at a committed offset
    /// (after a restart or a rebalance) never saw the rest of that batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fetch_from_inside_a_batch_gets_the_rest_of_that_batch() {
        use rdkafka::consumer::BaseConsumer;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        use rdkafka::{Message, Offset, TopicPartitionList};

        let broker = EmbeddedBroker::start(([127, 0, 0, 1], 0).into()).await.unwrap();
        let servers = broker.bootstrap_servers();
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &servers).create().unwrap();
        let topic = rdkafka::admin::NewTopic::new("t", 1, rdkafka::admin::TopicReplication::Fixed(1));
        admin.create_topics([&topic], &rdkafka::admin::AdminOptions::new()).await.unwrap();
        let firsts = tokio::task::spawn_blocking(move || {
            let producer: BaseProducer =
                ClientConfig::new().set("bootstrap.servers", &servers).set("linger.ms", "1000").create().unwrap();
            // Ten batches of ten records each (flushed between), on one partition.
            for batch in 0..10 {
                for i in 0..10 {
                    let value = format!("{batch}-{i}");
                    producer.send(BaseRecord::<(), str>::to("t").partition(0).payload(&value)).unwrap();
                }
                producer.flush(Duration::from_secs(10)).unwrap();
            }
            [0i64, 10, 15, 19, 95].map(|asked| {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &servers)
                    .set("group.id", format!("g{asked}"))
                    .set("enable.auto.commit", "false")
                    .create()
                    .unwrap();
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset("t", 0, Offset::Offset(asked)).unwrap();
                consumer.assign(&tpl).unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while std::time::Instant::now() < deadline {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                        return (asked, Some(m.offset()));
                    }
                }
                (asked, None)
            })
        })
        .await
        .unwrap();
        for (asked, first) in firsts {
            assert_eq!(first, Some(asked), "a fetch from offset {asked} starts there: {firsts:?}");
        }
        broker.shutdown().await;
    }

    /// A restart closes the port and cuts the connections; on the same
    /// address the broker then serves the same log, and a consumer group's
    /// committed offset is still there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_broker_keeps_its_log_and_committed_offsets() {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        use rdkafka::{Message, Offset, TopicPartitionList};

        let options = BrokerOptions { restartable: true, ..BrokerOptions::default() };
        let broker = EmbeddedBroker::start_with(([127, 0, 0, 1], 0).into(), options).await.unwrap();
        let switch = broker.switch().expect("restartable");
        let servers = broker.bootstrap_servers();
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &servers).create().unwrap();
        let topic = rdkafka::admin::NewTopic::new("r", 1, rdkafka::admin::TopicReplication::Fixed(1));
        admin.create_topics([&topic], &rdkafka::admin::AdminOptions::new()).await.unwrap();
        let s = servers.clone();
        let producer = tokio::task::spawn_blocking(move || {
            let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &s).create().unwrap();
            for i in 0..20 {
                producer.send(BaseRecord::<(), str>::to("r").partition(0).payload(&format!("v{i}"))).unwrap();
            }
            producer.flush(Duration::from_secs(10)).unwrap();
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &s)
                .set("group.id", "g")
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("r", 0, Offset::Offset(7)).unwrap();
            consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).unwrap();
            producer
        })
        .await
        .unwrap();

        let cut = switch.stop().await;
        assert!(cut >= 1, "the clients' connections were open: {cut}");
        assert!(!switch.is_serving().await);
        assert!(TcpStream::connect_timeout(&broker.addr(), Duration::from_millis(200)).is_err(), "port closed");
        switch.start().await.unwrap();
        assert!(switch.is_serving().await);

        let s = servers.clone();
        let (values, committed) = tokio::task::spawn_blocking(move || {
            // The producer from before the restart reconnects and goes on.
            producer.send(BaseRecord::<(), str>::to("r").partition(0).payload("after")).unwrap();
            producer.flush(Duration::from_secs(20)).unwrap();
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &s)
                .set("group.id", "g")
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition("r", 0);
            let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
            let committed = committed.find_partition("r", 0).unwrap().offset();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("r", 0, Offset::Beginning).unwrap();
            consumer.assign(&tpl).unwrap();
            let mut values = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while values.len() < 21 && std::time::Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                    values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                }
            }
            (values, committed)
        })
        .await
        .unwrap();
        let mut expected: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
        expected.push("after".into());
        assert_eq!(values, expected);
        assert_eq!(committed, Offset::Offset(7));
        broker.shutdown().await;
    }

    #[test]
    fn the_mock_cluster_has_its_topic() {
        let mock = MockBroker::start(1, "T", 2).unwrap();
        assert!(topics(&mock.bootstrap_servers()).contains(&("T".to_owned(), 2)));
    }
}
