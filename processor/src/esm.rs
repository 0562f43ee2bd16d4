//! A local event source mapping: Kafka → Lambda events → the function.
//!
//! What the MSK event source mapping does for a Lambda function, in
//! process: consume a topic in a consumer group, gather records into an
//! `aws:kafka` event, invoke the function, and commit offsets only after it
//! succeeded (at least once: a failed batch is invoked again, and after a
//! restart the uncommitted records come back).
//!
//! - **Pollers.** `pollers` consumers join the group; Kafka gives each a
//!   share of the partitions, as the service's pollers each own a partition
//!   group. Each poller invokes the handler for its own batches, one at a
//!   time, so records of a partition are handled in offset order.
//! - **Batches** close at `batch_size` records, when `batch_window` has
//!   passed since the first record, or when the next record would take the
//!   event past Lambda's 6 MB invocation payload limit ([`MAX_PAYLOAD`]);
//!   the size is the exact length of the event text.
//! - **The event** is built as the service builds it ([`EventBuilder`]):
//!   `records` keyed `"<topic>-<partition>"`, records in offset order, key
//!   and value base64, headers as arrays of byte values, timestamp and its
//!   type.
//! - **Any record.** Keys and values are written as they are (absent when
//!   null, `""` when empty); header names are read as bytes (`esm/headers.rs`:
//!   rdkafka's own reader panics on a name that is not UTF-8) and written as
//!   Kafka's Java client reads them, UTF-8 with U+FFFD for invalid bytes —
//!   the only form a JSON object key can take; header values as byte arrays,
//!   a null value as `[]` (the shape AWS's event types declare). A record
//!   that alone makes an event over the payload limit cannot be invoked
//!   with: the batch before it is invoked, then it goes to the function's
//!   dead-letter destination with reason [`RECORD_TOO_LARGE`] (or is logged
//!   and counted as dropped without one, as undecodable records are), its
//!   offset is committed and the mapping goes on.
//! - **Failures.** A batch is settled by `esm/failures.rs` before its
//!   offsets are committed: a failed invocation is retried after a capped
//!   exponential wait, as Lambda's Kafka mappings are configured
//!   (`ReportBatchItemFailures` partial responses read from the function's
//!   response payload, `BisectBatchOnFunctionError`, `MaximumRetryAttempts`,
//!   `MaximumRecordAgeInSeconds`, an on-failure destination); records given
//!   up on go to the destination (or are logged) and their offsets move on.
//!   The local `max_attempts` (failures in a row) stops the poller with an
//!   error instead, nothing committed, as does a stop after a failure. A
//!   poller that fails — an error or a panic — stops every other poller,
//!   and [`run`] returns the first failure's reason.
//!
//! - **Kill.** [`Kill::kill`] ends the mapping as a crashed process would
//!   end: the invocations in flight are dropped where they stand (their
//!   Firehose calls cancelled, whatever Firehose already accepted stays
//!   accepted), nothing more is committed, and every poller returns
//!   [`EsmError::Killed`]. The uncommitted records come back to the next
//!   mapping in the group — the duplicates a crash costs. (The consumers
//!   still leave the group as they are dropped, where a killed process's
//!   membership would expire after `session.timeout.ms`; that only shortens
//!   the wait before the partitions move.)
//!
//! - **The function** ([`Function`], `esm/function.rs`) is the processor's
//!   handler in process, or any Lambda function over the Runtime API the
//!   mapping serves (`esm/runtime_api.rs`, one instance per poller): a
//!   success carries the function's response payload, a failure (the
//!   function's error, a missed deadline, a crashed process) its reason.
//!
//! Kafka runs on librdkafka (`rdkafka`, bundled); the function is invoked on
//! the tokio runtime whose handle is given, while each poller is a plain thread.

pub mod failures;
pub mod function;
mod headers;
pub mod runtime_api;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mskbench_core::{KafkaRecord, TimestampType, b64};
use mskbench_kafka::{Connection, KafkaContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tracing::{info, warn};

pub use function::{External, Function, InvokeError, Invoked};
pub use headers::{RawHeaders, with_raw_header};

use crate::dead_letter::DeadLetter;
use crate::live::Live;
use crate::service::SendStats;
use failures::{Answer, Discarded, FailureHandling, Held, Invoker, OnFailureSink};

/// Lambda's invocation payload limit (6 MB).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// The largest BatchSize the service accepts.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// The dead-letter reason of a record that alone exceeds the payload limit.
pub const RECORD_TOO_LARGE: &str = "record_too_large";

/// How the mapping polls and batches.
#[derive(Debug, Clone)]
pub struct EsmConfig {
    /// Where the pollers connect and how (bootstrap list, TLS, SASL, IAM).
    pub connection: Connection,
    /// The topic consumed.
    pub topic: String,
    /// The consumer group (offsets are committed for it).
    pub group: String,
    /// Most records per invocation (1..=10,000).
    pub batch_size: usize,
    /// Longest wait for a batch to fill after its first record.
    pub batch_window: Duration,
    /// Consumers in the group (partition groups).
    pub pollers: usize,
    /// Largest event text (≤ [`MAX_PAYLOAD`]).
    pub max_payload: usize,
    /// Stop once no record arrived for this long (counted from the first
    /// partition assignment) and nothing is pending. A poller still without
    /// partitions by then asks a broker for metadata: no answer stops the
    /// mapping with [`EsmError::Unreachable`]; an answer lets it wait up to
    /// ten idle times for the group to give it partitions.
    pub idle_exit: Option<Duration>,
    /// Invocations of one batch before giving up (`None`: until stopped).
    pub max_attempts: Option<u32>,
    /// `eventSourceArn` of the events.
    pub event_source_arn: String,
    /// Other librdkafka settings (`-X key=value`; security is in
    /// [`EsmConfig::connection`]).
    pub kafka: Vec<(String, String)>,
    /// Pollers holding partitions (counted while they run), for callers
    /// that wait until the group has settled before producing: a rebalance
    /// between an invocation and its commit redelivers the batch.
    pub assigned: Arc<AtomicUsize>,
    /// Invocations running now (the handler called, not yet returned), for
    /// callers that want to kill the mapping mid-batch.
    pub invoking: Arc<AtomicUsize>,
    /// Ends the mapping as a crash would ([`Kill`]).
    pub kill: Kill,
    /// Failure handling as AWS configures it ([`failures`]).
    pub failure: FailureHandling,
    /// The function's ARN in on-failure records.
    pub function_arn: String,
    /// The function's reserved concurrency (`ReservedConcurrentExecutions`):
    /// most invocations in flight over all pollers (`None`: one per poller).
    pub reserved_concurrency: Option<usize>,
    /// Counters the records the mapping settles itself (discarded to the
    /// on-failure destination) are noted in, for the run's drain.
    pub live: Option<Arc<Live>>,
}

/// The switch that kills a mapping: in-flight invocations dropped, nothing
/// committed, every poller stopped with [`EsmError::Killed`].
#[derive(Debug, Clone, Default)]
pub struct Kill(Arc<(AtomicBool, tokio::sync::Notify)>);

impl Kill {
    /// Kills the mapping.
    pub fn kill(&self) {
        self.0.0.store(true, Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    /// True once killed.
    pub fn is_killed(&self) -> bool {
        self.0.0.load(Ordering::SeqCst)
    }

    /// Resolves once killed.
    async fn killed(&self) {
        loop {
            // Registered before the check, so a kill in between is not missed.
            let notified = self.0.1.notified();
            if self.is_killed() {
                return;
            }
            notified.await;
        }
    }

    /// `work`, unless the kill comes first (then `None`, and `work` dropped).
    async fn unless_killed<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.killed() => None,
            done = work => Some(done),
        }
    }
}

impl EsmConfig {
    /// The service's defaults for `brokers`, `topic` and `group`: BatchSize
    /// 100, a 500 ms window, one poller.
    pub fn new(brokers: &str, topic: &str, group: &str) -> Self {
        EsmConfig {
            connection: Connection::plaintext(brokers),
            topic: topic.to_owned(),
            group: group.to_owned(),
            batch_size: 100,
            batch_window: Duration::from_millis(500),
            pollers: 1,
            max_payload: MAX_PAYLOAD,
            idle_exit: None,
            max_attempts: None,
            event_source_arn: "arn:aws:kafka:local:000000000000:cluster/mskbench/local".to_owned(),
            kafka: Vec::new(),
            assigned: Arc::new(AtomicUsize::new(0)),
            invoking: Arc::new(AtomicUsize::new(0)),
            kill: Kill::default(),
            failure: FailureHandling::default(),
            function_arn: "arn:aws:lambda:local:000000000000:function:mskbench-processor".to_owned(),
            live: None,
            reserved_concurrency: None,
        }
    }
}

/// Why the mapping stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EsmError {
    /// A mapping setting is out of range.
    #[error("invalid setting: {0}")]
    Config(String),
    /// The consumer failed.
    #[error("Kafka consumer for {brokers}: {source}")]
    Kafka {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// A batch kept failing; its offsets were not committed.
    #[error("batch {request_id} failed {attempts} time(s), giving up without committing: {last}")]
    GaveUp {
        /// The last attempt's request id.
        request_id: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: String,
    },
    /// No broker answered by the idle time: the mapping could never have
    /// read a record, so it stops with the reason rather than as idle.
    #[error(
        "no broker at {brokers} answered within {waited:?} (idle exit): {detail}; check the address, and that it \
         speaks Kafka with the security settings given (-X)"
    )]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long the poller had waited.
        waited: Duration,
        /// librdkafka's last word on the metadata request.
        detail: String,
    },
    /// A broker refused the security settings before any partition was
    /// assigned.
    #[error("the broker at {brokers} refused the connection: {detail}")]
    Refused {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's reason, in one line.
        detail: String,
    },
    /// The mapping was killed ([`Kill`]); this batch was not committed.
    #[error("killed while handling {request_id}; its offsets were not committed")]
    Killed {
        /// The request id of the batch in hand.
        request_id: String,
    },
    /// A poller thread panicked; the other pollers were stopped.
    #[error("poller {poller} panicked: {message}")]
    Panicked {
        /// The poller's index.
        poller: usize,
        /// The panic's message.
        message: String,
    },
}

/// What the mapping did, over all pollers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EsmStats {
    /// Invocations that returned a response (a partial failure among them;
    /// their batches' offsets committed once every record settled).
    pub invocations: u64,
    /// Invocations that returned an error (and were retried).
    pub failed_invocations: u64,
    /// Records finished: handed to successful invocations, or too large for
    /// any event and dead-lettered (or dropped).
    pub records_in: u64,
    /// Records Firehose accepted.
    pub delivered: u64,
    /// Records written to the dead-letter destination.
    pub dead_lettered: u64,
    /// Undecodable (or too large) records logged and dropped (no destination).
    pub dropped: u64,
    /// Records that alone exceed the payload limit ([`RECORD_TOO_LARGE`]),
    /// counted in `dead_lettered` or `dropped` as well.
    pub too_large: u64,
    /// Largest event text sent, in bytes.
    pub max_event_bytes: u64,
    /// Offset commits that failed (the records may come back: at least once).
    pub commit_failures: u64,
    /// Successful invocations whose response listed `batchItemFailures`
    /// (read with `ReportBatchItemFailures` only).
    pub partial_failures: u64,
    /// Failed parts split in two (`BisectBatchOnFunctionError`).
    pub bisections: u64,
    /// Records written to the on-failure destination (retries exhausted or
    /// too old), in `records_in` as well.
    pub on_failure: u64,
    /// Records discarded with no on-failure destination (logged, lost as on
    /// AWS), in `records_in` as well.
    pub discarded: u64,
    /// The `PutRecordBatch` calls of the successful invocations.
    pub send: SendStats,
}

impl EsmStats {
    fn add(&mut self, o: &EsmStats) {
        self.invocations += o.invocations;
        self.failed_invocations += o.failed_invocations;
        self.records_in += o.records_in;
        self.delivered += o.delivered;
        self.dead_lettered += o.dead_lettered;
        self.dropped += o.dropped;
        self.too_large += o.too_large;
        self.max_event_bytes = self.max_event_bytes.max(o.max_event_bytes);
        self.commit_failures += o.commit_failures;
        self.partial_failures += o.partial_failures;
        self.bisections += o.bisections;
        self.on_failure += o.on_failure;
        self.discarded += o.discarded;
        self.send += &o.send;
    }
}

/// Runs the mapping until `stop` is set, `idle_exit` passes, or a poller
/// fails, invoking `function` (the handler, `Arc<Handler>`, or a
/// [`Function`]).
///
/// # Errors
/// [`EsmError`] for bad settings, a consumer that cannot be created, or the
/// first poller to fail: a batch that kept failing, or a panic. Either
/// stops every other poller.
pub fn run(
    config: &EsmConfig,
    function: impl Into<Function>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> Result<EsmStats, EsmError> {
    let function = function.into();
    if !(1..=MAX_BATCH_SIZE).contains(&config.batch_size) {
        return Err(EsmError::Config(format!("batch size {} is outside 1..={MAX_BATCH_SIZE}", config.batch_size)));
    }
    if config.max_payload > MAX_PAYLOAD || config.max_payload < 1024 {
        return Err(EsmError::Config(format!("max payload {} is outside 1024..={MAX_PAYLOAD}", config.max_payload)));
    }
    if config.pollers == 0 {
        return Err(EsmError::Config("at least one poller is needed".into()));
    }
    config.failure.check().map_err(EsmError::Config)?;
    if config.reserved_concurrency == Some(0) {
        return Err(EsmError::Config("a reserved concurrency of 0 would never invoke the function".into()));
    }
    if let Some(instances) = function.instances().filter(|&n| n < config.pollers) {
        return Err(EsmError::Config(format!(
            "{} pollers need as many function instances, the runtime API has {instances}",
            config.pollers
        )));
    }
    let slots = config.reserved_concurrency.map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
    let on_failure = {
        let _entered = runtime.enter();
        config.failure.on_failure.clone().map(|t| OnFailureSink::new(t, function.s3_access())).transpose()
    }
    .map_err(|e| EsmError::Config(format!("the on-failure destination: {e}")))?;
    let consumers = (0..config.pollers).map(|_| consumer(config)).collect::<Result<Vec<_>, _>>()?;
    supervise(consumers, &stop, |index, consumer| {
        let (function, runtime, stop) = (function.clone(), runtime.clone(), stop.clone());
        let (on_failure, slots) = (on_failure.clone(), slots.clone());
        Poller { config, consumer, function, runtime, stop, index, on_failure, slots }.run()
    })
}

/// Runs `poller` for each of `items` on a thread of its own and waits for
/// all. The first to fail — an error, or a panic, caught here — sets `stop`
/// so the others finish their batch and return; its error is the result
/// (later ones are mostly the others giving up because of the stop).
fn supervise<T: Send>(
    items: Vec<T>,
    stop: &AtomicBool,
    poller: impl Fn(usize, T) -> Result<EsmStats, EsmError> + Sync,
) -> Result<EsmStats, EsmError> {
    let first_failed = AtomicUsize::new(usize::MAX);
    let results: Vec<Result<EsmStats, EsmError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let (poller, first_failed) = (&poller, &first_failed);
                scope.spawn(move || {
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| poller(index, item)))
                        .unwrap_or_else(|panic| Err(panicked(index, panic.as_ref())));
                    if result.is_err() {
                        let _ = first_failed.compare_exchange(usize::MAX, index, Ordering::SeqCst, Ordering::SeqCst);
                        // One poller failing stops the others: a run must not look healthy.
                        stop.store(true, Ordering::SeqCst);
                    }
                    result
                })
            })
            .collect();
        threads
            .into_iter()
            .enumerate()
            .map(|(index, t)| t.join().unwrap_or_else(|panic| Err(panicked(index, panic.as_ref()))))
            .collect()
    });
    let first = first_failed.load(Ordering::SeqCst);
    let mut total = EsmStats::default();
    let mut failure = None;
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(stats) => total.add(&stats),
            Err(e) if index == first || failure.is_none() => failure = Some(e),
            Err(_) => {}
        }
    }
    failure.map_or(Ok(total), Err)
}

fn panicked(poller: usize, panic: &(dyn std::any::Any + Send)) -> EsmError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    EsmError::Panicked { poller, message }
}

fn consumer(config: &EsmConfig) -> Result<Consumer, EsmError> {
    let mut c = config.connection.client_config();
    c.set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in &config.kafka {
        c.set(k, v);
    }
    let kafka = |source| EsmError::Kafka { brokers: config.connection.brokers.clone(), source };
    let consumer: Consumer = c.create_with_context(config.connection.context("poller")).map_err(kafka)?;
    config.connection.auth.prime(consumer.client());
    consumer.subscribe(&[&config.topic]).map_err(kafka)?;
    Ok(consumer)
}

/// A poller's consumer: IAM tokens and refusals through the connection's
/// [`mskbench_kafka::Auth`].
type Consumer = BaseConsumer<KafkaContext>;

struct Poller<'a> {
    config: &'a EsmConfig,
    consumer: Consumer,
    function: Function,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    index: usize,
    on_failure: Option<OnFailureSink>,
    /// The reserved concurrency's invocations, shared by the pollers.
    slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl Poller<'_> {
    fn run(self) -> Result<EsmStats, EsmError> {
        let result = self.poll_loop();
        // Leave the group now, so the partitions move to others at once
        // rather than after the session times out.
        self.consumer.unsubscribe();
        result
    }

    fn poll_loop(&self) -> Result<EsmStats, EsmError> {
        let mut stats = EsmStats::default();
        let mut batch = EventBuilder::new(&self.config.event_source_arn, &self.config.connection.brokers);
        // The batch's records one by one, for retries of a part of it.
        let mut held: Vec<Held> = Vec::new();
        let mut topic_name: Arc<str> = Arc::from(self.config.topic.as_str());
        let mut window_ends: Option<Instant> = None;
        let started = Instant::now();
        let mut last_activity = started;
        // The idle clock starts once the group gave this poller partitions:
        // joining a group can take seconds.
        let mut assigned = false;
        // Whether this poller is counted in `config.assigned` now.
        let mut holding = false;
        // Whether a broker answered, checked once an unassigned poller has
        // waited the idle time.
        let mut reached = false;
        let mut invocation = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            if self.config.kill.is_killed() {
                return Err(EsmError::Killed { request_id: format!("esm-{}-p{}-idle", self.config.group, self.index) });
            }
            let wait = window_ends.map_or(Duration::from_millis(100), |end| {
                end.saturating_duration_since(Instant::now()).min(Duration::from_millis(100))
            });
            match self.consumer.poll(wait) {
                Some(Ok(message)) => {
                    last_activity = Instant::now();
                    let record = record_json(&message);
                    let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
                    // A record that fits the batch fits an event alone too:
                    // only one that does not is measured alone.
                    let alone = (!batch.fits(topic, partition, record.len(), self.config.max_payload))
                        .then(|| batch.len_alone(topic, partition, record.len()));
                    if let Some(alone) = alone.filter(|&len| len > self.config.max_payload) {
                        // No event can carry it. The batch before it goes
                        // first, so offsets are committed in order.
                        if !batch.is_empty() {
                            self.invoke(&mut batch, &mut held, &mut invocation, &mut stats)?;
                            window_ends = None;
                        }
                        self.reject_too_large(&message, alone, &mut invocation, &mut stats)?;
                    } else {
                        if alone.is_some() {
                            self.invoke(&mut batch, &mut held, &mut invocation, &mut stats)?;
                            window_ends = None;
                        }
                        batch.push(topic, partition, offset, &record);
                        if topic_name.as_ref() != topic {
                            topic_name = Arc::from(topic);
                        }
                        held.push(Held {
                            topic: topic_name.clone(),
                            partition,
                            offset,
                            timestamp: timestamp(&message).0,
                            json: record,
                        });
                        window_ends.get_or_insert_with(|| Instant::now() + self.config.batch_window);
                        if batch.records() >= self.config.batch_size {
                            self.invoke(&mut batch, &mut held, &mut invocation, &mut stats)?;
                            window_ends = None;
                        }
                    }
                }
                Some(Err(e)) => warn!(poller = self.index, "Kafka consumer error (retried by librdkafka): {e}"),
                None => {}
            }
            // Settings no retry will cure (a wrong password, an untrusted
            // certificate, another protocol): before the group gave this
            // poller partitions, the mapping could never read a record.
            if !assigned && let Some(refusal) = self.config.connection.auth.refused() {
                return Err(EsmError::Refused {
                    brokers: self.config.connection.brokers.clone(),
                    detail: refusal.to_owned(),
                });
            }
            if window_ends.is_some_and(|end| Instant::now() >= end) && !batch.is_empty() {
                self.invoke(&mut batch, &mut held, &mut invocation, &mut stats)?;
                window_ends = None;
            }
            let has_partitions = self.consumer.assignment().is_ok_and(|a| a.count() > 0);
            if has_partitions != holding {
                holding = has_partitions;
                if holding {
                    self.config.assigned.fetch_add(1, Ordering::SeqCst);
                } else {
                    self.config.assigned.fetch_sub(1, Ordering::SeqCst);
                }
            }
            if !assigned && has_partitions {
                assigned = true;
                last_activity = last_activity.max(Instant::now());
            }
            if let Some(idle) = self.config.idle_exit.filter(|_| batch.is_empty()) {
                if !assigned && !reached && started.elapsed() >= idle {
                    self.check_reachable(started.elapsed(), idle)?;
                    reached = true;
                }
                // A poller the group gives no partition stops after ten idle
                // times (more pollers than partitions; a slow group join).
                let waited = if assigned { last_activity.elapsed() } else { started.elapsed() / 10 };
                if waited >= idle {
                    info!(poller = self.index, assigned, "No records for the idle time; stopping");
                    break;
                }
            }
        }
        Ok(stats)
    }

    /// Asks a broker for the topic's metadata, within the idle time (at most
    /// 5 s): an unassigned poller that cannot get even that is talking to
    /// no broker, and waiting ten idle times would only hide it.
    fn check_reachable(&self, waited: Duration, idle: Duration) -> Result<(), EsmError> {
        let timeout = idle.clamp(Duration::from_millis(500), Duration::from_secs(5));
        match self.consumer.fetch_metadata(Some(&self.config.topic), timeout) {
            Ok(_) => Ok(()),
            Err(e) => Err(EsmError::Unreachable {
                brokers: self.config.connection.brokers.clone(),
                waited: waited + timeout,
                detail: e.to_string(),
            }),
        }
    }

    /// Settles the batch ([`failures::settle`]: invocations, retries,
    /// bisections, discards as the mapping's failure handling says), then
    /// commits its offsets.
    fn invoke(
        &self,
        batch: &mut EventBuilder,
        held: &mut Vec<Held>,
        invocation: &mut u64,
        stats: &mut EsmStats,
    ) -> Result<(), EsmError> {
        let request_id = self.next_request_id(invocation);
        stats.max_event_bytes = stats.max_event_bytes.max(batch.len() as u64);
        let records = std::mem::take(held);
        let count = records.len() as u64;
        let head = (self.config.event_source_arn.as_str(), self.config.connection.brokers.as_str());
        let mut call = Call { poller: self, stats, failures_in_a_row: 0, stopped: None };
        let settled = failures::settle(records, &self.config.failure, head, &request_id, &mut call);
        let stopped = call.stopped.take();
        let Some(settled) = settled else {
            return Err(stopped.unwrap_or_else(|| EsmError::Killed { request_id: request_id.clone() }));
        };
        stats.partial_failures += settled.partial_failures;
        stats.bisections += settled.bisections;
        stats.records_in += count;
        self.commit(&request_id, batch.last_offsets().map(|(t, p, o)| (t.as_str(), *p, *o)), stats);
        batch.clear();
        Ok(())
    }

    /// A record no event can carry: to the function's dead-letter
    /// destination (retried as an invocation is), then committed.
    fn reject_too_large(
        &self,
        message: &impl Message,
        size: usize,
        invocation: &mut u64,
        stats: &mut EsmStats,
    ) -> Result<(), EsmError> {
        let request_id = self.next_request_id(invocation);
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let limit = self.config.max_payload;
        warn!(
            request_id,
            topic, partition, offset, size, limit, "A record alone exceeds the payload limit; dead-lettering it"
        );
        let letter = DeadLetter {
            reason: RECORD_TOO_LARGE.to_owned(),
            detail: format!(
                "{topic}-{partition} offset {offset}: a single record makes a {size}-byte event, above the {limit}-byte invocation payload limit"
            ),
            topic: topic.to_owned(),
            partition,
            offset,
            timestamp: timestamp(message).0,
            value: message.payload().map(encode),
            line: None,
        };
        let summary = self.until_done(&request_id, stats, |attempt_id| {
            self.runtime.block_on(
                self.config.kill.unless_killed(self.function.dead_letter_unsent(attempt_id, vec![letter.clone()])),
            )
        })?;
        stats.too_large += 1;
        stats.records_in += summary.records_in;
        stats.dead_lettered += summary.dead_lettered;
        stats.dropped += summary.dropped;
        self.commit(&request_id, std::iter::once((topic, partition, offset)), stats);
        Ok(())
    }

    fn next_request_id(&self, invocation: &mut u64) -> String {
        *invocation += 1;
        format!("esm-{}-p{}-{}", self.config.group, self.index, invocation)
    }

    /// Calls `attempt` until it succeeds: after a failure, waits (capped
    /// exponential) and calls again, up to `max_attempts` or until stopped.
    /// An attempt that answers `None` was killed: nothing more is tried.
    fn until_done<T>(
        &self,
        request_id: &str,
        stats: &mut EsmStats,
        mut attempt: impl FnMut(&str) -> Option<Result<T, InvokeError>>,
    ) -> Result<T, EsmError> {
        let killed = || EsmError::Killed { request_id: request_id.to_owned() };
        let mut attempts = 0u32;
        let mut wait = Duration::from_millis(100);
        loop {
            attempts += 1;
            // Like Lambda, every attempt gets its own request id.
            let attempt_id =
                if attempts == 1 { request_id.to_owned() } else { format!("{request_id}-retry{attempts}") };
            match attempt(&attempt_id).ok_or_else(killed)? {
                Ok(done) => return Ok(done),
                Err(e) => {
                    stats.failed_invocations += 1;
                    if let Some(s) = &e.summary {
                        stats.send += &s.send;
                    }
                    let gave_up = self.config.max_attempts.is_some_and(|max| attempts >= max);
                    if gave_up || self.stop.load(Ordering::SeqCst) {
                        return Err(EsmError::GaveUp {
                            request_id: request_id.to_owned(),
                            attempts,
                            last: e.reason.clone(),
                        });
                    }
                    warn!(request_id, attempts, "Invocation failed, invoking again: {}", e.reason);
                    // The timer is made inside the runtime: this thread is not one of its.
                    let pause = async { tokio::time::sleep(wait).await };
                    self.runtime.block_on(self.config.kill.unless_killed(pause)).ok_or_else(killed)?;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Commits the offset after each `(topic, partition, last offset)`.
    fn commit<'t>(&self, request_id: &str, last: impl Iterator<Item = (&'t str, i32, i64)>, stats: &mut EsmStats) {
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, last) in last {
            if let Err(e) = offsets.add_partition_offset(topic, partition, Offset::Offset(last + 1)) {
                warn!(request_id, "Cannot name offset {} of {topic}-{partition}: {e}", last + 1);
            }
        }
        if let Err(e) = self.consumer.commit(&offsets, CommitMode::Sync) {
            // The records were handled; after a rebalance they may be handled again.
            stats.commit_failures += 1;
            warn!(request_id, "Offset commit failed (records may be redelivered): {e}");
        }
    }
}

/// The poller as the retry engine's [`Invoker`]: the handler on the
/// runtime (its summary serialised as the response payload, so the engine
/// reads `batchItemFailures` from the payload as it would an external
/// function's), waits and the on-failure destination, all under the kill
/// switch. A stop, or the local `max_attempts` (failures in a row) running
/// out, ends it with [`EsmError::GaveUp`], nothing committed.
struct Call<'p, 'c> {
    poller: &'p Poller<'c>,
    stats: &'p mut EsmStats,
    failures_in_a_row: u32,
    stopped: Option<EsmError>,
}

impl Invoker for Call<'_, '_> {
    fn invoke(&mut self, event: &[u8], request_id: &str) -> Option<Answer> {
        let p = self.poller;
        // Within the reserved concurrency: wait for an invocation to end.
        let _slot = match &p.slots {
            Some(slots) => Some(p.runtime.block_on(p.config.kill.unless_killed(slots.clone().acquire_owned()))?.ok()?),
            None => None,
        };
        p.config.invoking.fetch_add(1, Ordering::SeqCst);
        let call = p.function.invoke(p.index, event.to_vec(), request_id);
        let done = p.runtime.block_on(p.config.kill.unless_killed(call));
        p.config.invoking.fetch_sub(1, Ordering::SeqCst);
        match done? {
            Ok(invoked) => {
                self.failures_in_a_row = 0;
                self.stats.invocations += 1;
                // A function of the user's: what became of the records is its own to say.
                if let Some(summary) = &invoked.summary {
                    self.stats.delivered += summary.delivered;
                    self.stats.dead_lettered += summary.dead_lettered;
                    self.stats.dropped += summary.dropped;
                    self.stats.send += &summary.send;
                }
                Some(Answer::Response(invoked.payload))
            }
            Err(e) => {
                self.failures_in_a_row += 1;
                self.stats.failed_invocations += 1;
                if let Some(s) = &e.summary {
                    self.stats.send += &s.send;
                }
                let last = e.to_string();
                let gave_up = p.config.max_attempts.is_some_and(|max| self.failures_in_a_row >= max);
                if gave_up || p.stop.load(Ordering::SeqCst) {
                    self.stopped = Some(EsmError::GaveUp {
                        request_id: request_id.to_owned(),
                        attempts: self.failures_in_a_row,
                        last,
                    });
                    return None;
                }
                warn!(request_id, "Invocation failed: {last}");
                Some(Answer::FunctionError(last))
            }
        }
    }

    fn wait(&mut self, pause: Duration) -> Option<()> {
        let p = self.poller;
        // The timer is made inside the runtime: this thread is not one of its.
        p.runtime.block_on(p.config.kill.unless_killed(async { tokio::time::sleep(pause).await }))
    }

    fn discard(&mut self, discarded: Discarded) -> Option<()> {
        let p = self.poller;
        let n = discarded.records.len() as u64;
        let coordinates: Vec<(i32, i64)> = discarded.records.iter().map(|r| (r.partition, r.offset)).collect();
        let Some(sink) = &p.on_failure else {
            for r in &discarded.records {
                warn!(
                    condition = ?discarded.condition,
                    topic = r.topic.as_ref(),
                    partition = r.partition,
                    offset = r.offset,
                    "Discarding a record (no on-failure destination configured)"
                );
            }
            self.stats.discarded += n;
            // Done with, though lost: the drain must not wait for them.
            if let Some(live) = &p.config.live {
                live.complete_records(coordinates);
            }
            return Some(());
        };
        let head = (p.config.event_source_arn.as_str(), p.config.connection.brokers.as_str());
        let (key, body) =
            match failures::document(&discarded, &p.config.group, &p.config.function_arn, head, SystemTime::now()) {
                Ok(doc) => doc,
                Err(e) => {
                    self.stopped = Some(EsmError::Config(format!("cannot build an on-failure record: {e}")));
                    return None;
                }
            };
        let mut pause = Duration::from_millis(100);
        loop {
            match p.runtime.block_on(p.config.kill.unless_killed(sink.write(&key, body.clone())))? {
                Ok(location) => {
                    warn!(condition = ?discarded.condition, records = n, location, "Sent records to the on-failure destination");
                    break;
                }
                Err(e) if p.stop.load(Ordering::SeqCst) => {
                    self.stopped = Some(EsmError::GaveUp {
                        request_id: discarded.request_id.clone().unwrap_or_default(),
                        attempts: discarded.invocations,
                        last: e.to_string(),
                    });
                    return None;
                }
                Err(e) => {
                    warn!("The on-failure destination failed, writing again: {e}");
                    self.wait(pause)?;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
        }
        self.stats.on_failure += n;
        if let Some(live) = &p.config.live {
            live.complete_records(coordinates);
        }
        Some(())
    }

    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    b64::encode_append(bytes, &mut s);
    s
}

fn timestamp(message: &impl Message) -> (i64, TimestampType) {
    match message.timestamp() {
        Timestamp::CreateTime(t) => (t, TimestampType::CreateTime),
        Timestamp::LogAppendTime(t) => (t, TimestampType::LogAppendTime),
        Timestamp::NotAvailable => (-1, TimestampType::NoTimestampType),
    }
}

/// One Kafka message as the service writes it into an event: key and value
/// base64 (absent when null), headers as `{"name": [bytes]}` with names read
/// as bytes and written as UTF-8 (U+FFFD for invalid bytes) and a null
/// value as `[]`. Any message serialises: nothing here panics on its bytes.
pub fn record_json<M>(message: &M) -> Vec<u8>
where
    M: Message,
    M::Headers: RawHeaders,
{
    let (timestamp, timestamp_type) = timestamp(message);
    let headers = message
        .headers()
        .map(|h| {
            headers::raw_headers(h.borrowed())
                .map(|h| mskbench_core::event::Header {
                    key: String::from_utf8_lossy(h.key),
                    value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let record = KafkaRecord {
        topic: message.topic().into(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp,
        timestamp_type,
        key: message.key().map(|k| encode(k).into()),
        value: message.payload().map(|v| encode(v).into()),
        headers,
    };
    // Serialising strings, integers and byte lists into a Vec cannot fail.
    serde_json::to_vec(&record).unwrap_or_default()
}

/// An `aws:kafka` event assembled from pre-serialised records, knowing its
/// exact length before it is built.
#[derive(Debug)]
pub struct EventBuilder {
    head: Vec<u8>,
    groups: Vec<Group>,
    len: usize,
    records: usize,
}

#[derive(Debug)]
struct Group {
    /// Topic, partition and the last offset added.
    at: (String, i32, i64),
    /// `"topic-partition"` as a JSON string.
    key: Vec<u8>,
    /// The records, comma separated.
    body: Vec<u8>,
}

impl Group {
    fn is(&self, topic: &str, partition: i32) -> bool {
        self.at.1 == partition && self.at.0 == topic
    }
}

impl EventBuilder {
    /// An empty event from `arn`, naming `bootstrap_servers`.
    pub fn new(arn: &str, bootstrap_servers: &str) -> Self {
        let mut head = Vec::new();
        head.extend_from_slice(br#"{"eventSource":"aws:kafka","eventSourceArn":"#);
        // Strings serialise infallibly.
        head.extend(serde_json::to_vec(arn).unwrap_or_default());
        head.extend_from_slice(br#","bootstrapServers":"#);
        head.extend(serde_json::to_vec(bootstrap_servers).unwrap_or_default());
        head.extend_from_slice(br#","records":{"#);
        let len = head.len() + 2; // "}}"
        EventBuilder { head, groups: Vec::new(), len, records: 0 }
    }

    /// Records in the event.
    pub fn records(&self) -> usize {
        self.records
    }

    /// True when no record was added.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The exact length of the event text now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The length the event would have with a `record_len`-byte record added.
    pub fn len_with(&self, topic: &str, partition: i32, record_len: usize) -> usize {
        match self.group(topic, partition) {
            Some(g) => self.len + usize::from(!g.body.is_empty()) + record_len,
            None => {
                let key = group_key(topic, partition);
                self.len + usize::from(!self.groups.is_empty()) + key.len() + 1 + 2 + record_len
            }
        }
    }

    /// The length an event holding only a `record_len`-byte record has.
    pub fn len_alone(&self, topic: &str, partition: i32, record_len: usize) -> usize {
        let key = self.group(topic, partition).map_or_else(|| group_key(topic, partition).len(), |g| g.key.len());
        self.head.len() + 2 + key + 1 + 2 + record_len
    }

    /// True when a `record_len`-byte record keeps the event within `limit`.
    pub fn fits(&self, topic: &str, partition: i32, record_len: usize, limit: usize) -> bool {
        self.len_with(topic, partition, record_len) <= limit
    }

    /// Adds a record serialised by [`record_json`].
    pub fn push(&mut self, topic: &str, partition: i32, offset: i64, record: &[u8]) {
        self.len = self.len_with(topic, partition, record.len());
        self.records += 1;
        let i = match self.groups.iter().position(|g| g.is(topic, partition)) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    at: (topic.to_owned(), partition, offset),
                    key: group_key(topic, partition),
                    body: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[i];
        if !g.body.is_empty() {
            g.body.push(b',');
        }
        g.body.extend_from_slice(record);
        g.at.2 = offset;
    }

    /// The event text.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        out.extend_from_slice(&self.head);
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&g.key);
            out.extend_from_slice(b":[");
            out.extend_from_slice(&g.body);
            out.push(b']');
        }
        out.extend_from_slice(b"}}");
        out
    }

    /// `(topic, partition, last offset)` of every partition in the event.
    pub fn last_offsets(&self) -> impl Iterator<Item = &(String, i32, i64)> {
        self.groups.iter().map(|g| &g.at)
    }

    /// Empties the event, keeping its head.
    pub fn clear(&mut self) {
        self.groups.clear();
        self.records = 0;
        self.len = self.head.len() + 2;
    }

    fn group(&self, topic: &str, partition: i32) -> Option<&Group> {
        self.groups.iter().find(|g| g.is(topic, partition))
    }
}

fn group_key(topic: &str, partition: i32) -> Vec<u8> {
    serde_json::to_vec(&format!("{topic}-{partition}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use mskbench_core::KafkaEvent;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};

    use super::*;

    fn message(partition: i32, offset: i64, value: &[u8]) -> OwnedMessage {
        let headers = OwnedHeaders::new().insert(Header { key: "trace", value: Some(&[0u8, 200, 255][..]) });
        OwnedMessage::new(
            Some(value.to_vec()),
            Some(b"1000".to_vec()),
            "ExampleTopic".into(),
            Timestamp::CreateTime(1_545_084_650_987),
            partition,
            offset,
            Some(headers),
        )
    }

    #[test]
    fn events_have_the_services_shape_and_their_announced_length() {
        let mut b = EventBuilder::new("arn:aws:kafka:x", "b-1:9092,b-2:9092");
        assert_eq!(b.finish().len(), b.len());
        for (p, o) in [(0, 15), (1, 3), (0, 16)] {
            let m = message(p, o, b"\x00\x00\x00\x00\x01abc");
            let r = record_json(&m);
            let expected = b.len_with("ExampleTopic", p, r.len());
            b.push("ExampleTopic", p, o, &r);
            assert_eq!(b.len(), expected);
            assert_eq!(b.finish().len(), b.len());
        }
        let text = b.finish();
        let json: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(json["eventSource"], "aws:kafka");
        assert_eq!(json["bootstrapServers"], "b-1:9092,b-2:9092");
        let p0 = &json["records"]["ExampleTopic-0"];
        assert_eq!(p0.as_array().unwrap().len(), 2);
        assert_eq!(p0[1]["offset"], 16);
        assert_eq!(p0[0]["timestampType"], "CREATE_TIME");
        assert_eq!(p0[0]["timestamp"], 1_545_084_650_987i64);
        assert_eq!(p0[0]["key"], "MTAwMA==");
        assert_eq!(p0[0]["value"], "AAAAAAFhYmM=");
        assert_eq!(p0[0]["headers"], serde_json::json!([{"trace": [0, 200, 255]}]));
        let parsed = KafkaEvent::parse(&text).unwrap();
        assert_eq!(parsed.record_count(), 3);
        let offsets: Vec<_> = b.last_offsets().cloned().collect();
        assert_eq!(offsets, [("ExampleTopic".to_owned(), 0, 16), ("ExampleTopic".to_owned(), 1, 3)]);
        b.clear();
        assert_eq!(b.finish().len(), b.len());
        assert!(b.is_empty());
    }

    #[test]
    fn tombstones_and_missing_timestamps_are_written_as_the_service_does() {
        let m = OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 2, 7, None);
        let json: serde_json::Value = serde_json::from_slice(&record_json(&m)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"topic":"t","partition":2,"offset":7,"timestamp":-1,"timestampType":"NO_TIMESTAMP_TYPE","headers":[]})
        );
    }

    #[test]
    fn the_payload_limit_is_checked_before_adding() {
        let mut b = EventBuilder::new("a", "b");
        let r = record_json(&message(0, 0, &[7u8; 3000]));
        let limit = b.len_with("ExampleTopic", 0, r.len()) + r.len() + 1;
        assert!(b.fits("ExampleTopic", 0, r.len(), limit));
        b.push("ExampleTopic", 0, 0, &r);
        assert!(b.fits("ExampleTopic", 0, r.len(), limit), "exactly at the limit fits");
        b.push("ExampleTopic", 0, 1, &r);
        assert_eq!(b.len(), limit);
        assert!(!b.fits("ExampleTopic", 0, r.len(), limit));
        assert!(!b.fits("ExampleTopic", 1, 1, limit));
    }

    #[test]
    fn header_names_of_any_bytes_and_null_or_empty_parts_are_written_as_the_event_carries_them() {
        let headers = headers::with_raw_header(OwnedHeaders::new(), &[0xff, 0xfe, b'k'], Some(&[1, 2])).unwrap();
        let headers = headers::with_raw_header(headers, b"", None).unwrap();
        let headers = headers
            .insert(Header { key: "empty", value: Some(&b""[..]) })
            .insert(Header { key: "null", value: None::<&[u8]> })
            .insert(Header { key: "ok", value: Some(&b"v"[..]) });
        let m = OwnedMessage::new(
            Some(Vec::new()),
            Some(Vec::new()),
            "t".into(),
            Timestamp::LogAppendTime(5),
            0,
            9,
            Some(headers),
        );
        let record = record_json(&m);
        let json: serde_json::Value = serde_json::from_slice(&record).unwrap();
        assert_eq!(json["key"], "", "an empty key is there, empty");
        assert_eq!(json["value"], "", "an empty value is there, empty");
        assert_eq!(json["timestampType"], "LOG_APPEND_TIME");
        assert_eq!(
            json["headers"],
            serde_json::json!([{"\u{fffd}\u{fffd}k": [1, 2]}, {"": []}, {"empty": []}, {"null": []}, {"ok": [118]}])
        );
        // The handler's reader takes it.
        let mut b = EventBuilder::new("a", "b");
        b.push("t", 0, 9, &record);
        let text = b.finish();
        let event = KafkaEvent::parse(&text).unwrap();
        let parsed = event.iter_records().next().unwrap();
        let names: Vec<&str> = parsed.headers.iter().map(|h| h.key.as_ref()).collect();
        assert_eq!(names, ["\u{fffd}\u{fffd}k", "", "empty", "null", "ok"]);
        assert_eq!((parsed.key.as_deref(), parsed.value.as_deref()), (Some(""), Some("")));
    }

    #[test]
    fn a_records_size_alone_is_the_size_of_an_event_holding_only_it() {
        let r = record_json(&message(0, 0, &[7u8; 300]));
        let empty = EventBuilder::new("a", "b");
        let alone = empty.len_alone("ExampleTopic", 0, r.len());
        assert_eq!(alone, empty.len_with("ExampleTopic", 0, r.len()));
        let mut b = EventBuilder::new("a", "b");
        b.push("ExampleTopic", 1, 0, &r);
        b.push("ExampleTopic", 0, 1, &r);
        assert_eq!(b.len_alone("ExampleTopic", 0, r.len()), alone, "whatever the event holds already");
        let mut only = EventBuilder::new("a", "b");
        only.push("ExampleTopic", 0, 0, &r);
        assert_eq!(only.finish().len(), alone);
    }

    #[test]
    fn a_poller_that_panics_stops_the_others_and_its_reason_is_the_mappings() {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        // Bounded: were the others left running, the test would fail, not hang.
        std::thread::spawn(move || {
            let result = supervise(vec![0, 1, 2], &flag, |index, _| {
                if index == 1 {
                    panic!("bad record at offset 7");
                }
                // A healthy poller: polls until told to stop.
                while !flag.load(Ordering::SeqCst) {
                    std::thread::park_timeout(Duration::from_millis(5));
                }
                Ok(EsmStats { invocations: 1, ..EsmStats::default() })
            });
            let _ = tx.send(result);
        });
        let result = rx.recv_timeout(Duration::from_secs(30)).expect("the other pollers were left running");
        match result {
            Err(EsmError::Panicked { poller: 1, message }) => assert_eq!(message, "bad record at offset 7"),
            other => panic!("{other:?}"),
        }
        assert!(stop.load(Ordering::SeqCst));
    }

    #[test]
    fn the_first_poller_to_fail_names_the_reason_not_the_ones_it_stopped() {
        let stop = AtomicBool::new(false);
        let result = supervise(vec![0, 1], &stop, |index, _| {
            if index == 1 {
                return Err(EsmError::Config("the first failure".into()));
            }
            while !stop.load(Ordering::SeqCst) {
                std::thread::park_timeout(Duration::from_millis(5));
            }
            Err(EsmError::GaveUp { request_id: "r".into(), attempts: 1, last: "stopped".into() })
        });
        assert!(matches!(result, Err(EsmError::Config(ref m)) if m == "the first failure"), "{result:?}");
    }
}
