//! One invocation: Kafka event bytes in, every record delivered or accounted for.
//!
//! [`Handler::handle`] is what the Lambda `bootstrap` and the local event
//! source mapping both call:
//!
//! 1. decode and pack with core (`EventProcessor`) on a blocking thread —
//!    the schema cache may call a registry synchronously — and build the
//!    first `PutRecordBatch` request of every batch ([`Handler::prepare`]);
//! 2. if a registry could not be reached for some record (a transient
//!    reason), fail the invocation before sending anything: the event source
//!    mapping redelivers the batch, and no record is sent twice for it;
//! 3. send every batch ([`crate::service::FirehoseSender`]) and await all
//!    calls and retries;
//! 4. records that cannot be decoded, and records Firehose still refused
//!    after the retries, go to the dead-letter destination with their reason
//!    and coordinates. Without a destination, undecodable records are logged
//!    (reason, topic, partition, offset — never the payload) and counted as
//!    `dropped`, so one poisoned record cannot block the partition as the
//!    lab's Glue path did; undelivered records fail the invocation, so the
//!    mapping redelivers the batch (at least once: records Firehose already
//!    took arrive again).
//!
//! The [`InvocationSummary`] adds up: `records_in = delivered +
//! dead_lettered + dropped + undelivered + unsent`. Output buffers are
//! pooled across invocations; schemas are cached for the life of the
//! process. Cost before the first Firehose call: about 0.36 ms for a
//! 1,000-record ClickEvent event on the 2-core development machine, of
//! which about 0.05 ms is copying lines into the SDK's records
//! (BENCHMARKS.md, `processor_event_1000_clickevents_to_requests`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_firehose::types::Record;
use mskbench_core::event::EventError;
use mskbench_core::packer::PackLimits;
use mskbench_core::pipeline::Rejection;
use mskbench_core::{EventProcessor, KafkaEvent, Output, SchemaCache, SchemaFetcher, Summary};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::clients::Clients;
use crate::config::{Config, ConfigError};
use crate::confluent::ConfluentRegistry;
use crate::dead_letter::{DeadLetter, DeadLetterError, DeadLetterSink};
use crate::live::Live;
use crate::request_builder::{self, BuildError};
use crate::schemas::{GlueRegistry, Registries};
use crate::service::{FirehoseSender, Invocation, SendStats, count_codes};

/// What one invocation did. Serialised as the function's response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvocationSummary {
    pub request_id: String,
    pub records_in: u64,
    /// Accepted by Firehose.
    pub delivered: u64,
    /// Written to the dead-letter destination (undecodable or undeliverable).
    pub dead_lettered: u64,
    /// Undecodable records logged and skipped (no dead-letter destination).
    pub dropped: u64,
    /// Still refused by Firehose after the retries, with no destination: the invocation fails.
    pub undelivered: u64,
    /// Not sent because the invocation failed before sending (registry outage).
    pub unsent: u64,
    /// Core's decode summary (`records_out`, `rejected` by reason, `batches`, `bytes_out`).
    pub decode: Summary,
    /// Undelivered or dead-lettered-after-sending records by last Firehose error code.
    pub firehose_failures: std::collections::BTreeMap<String, u64>,
    pub send: SendStats,
    pub elapsed_ms: u64,
}

impl InvocationSummary {
    /// True when every record that came in has exactly one outcome.
    pub fn adds_up(&self) -> bool {
        self.records_in == self.delivered + self.dead_lettered + self.dropped + self.undelivered + self.unsent
            && self.decode.adds_up()
    }
}

/// Why an invocation failed; the event source mapping will redeliver its batch.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error(transparent)]
    NotAnEvent(#[from] EventError),
    #[error("{count} record(s) need a schema registry that could not be reached ({first}); nothing was sent")]
    RegistryUnavailable { count: u64, first: String, summary: Box<InvocationSummary> },
    #[error("{} record(s) could not be delivered to Firehose after the retries", summary.undelivered)]
    Undelivered { summary: Box<InvocationSummary> },
    #[error("dead letters could not be written; the batch must be redelivered")]
    DeadLetter {
        #[source]
        source: DeadLetterError,
        summary: Box<InvocationSummary>,
    },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("the decoding task failed: {0}")]
    Task(String),
}

impl InvocationError {
    /// A short name of the failure, reported to Lambda as the error type.
    pub fn kind(&self) -> &'static str {
        match self {
            InvocationError::NotAnEvent(_) => "NotAnEvent",
            InvocationError::RegistryUnavailable { .. } => "RegistryUnavailable",
            InvocationError::Undelivered { .. } => "Undelivered",
            InvocationError::DeadLetter { .. } => "DeadLetterFailed",
            InvocationError::Build(_) => "RequestBuild",
            InvocationError::Task(_) => "TaskFailed",
        }
    }

    /// The summary of the failed invocation, when it got that far.
    pub fn summary(&self) -> Option<&InvocationSummary> {
        match self {
            InvocationError::RegistryUnavailable { summary, .. }
            | InvocationError::Undelivered { summary }
            | InvocationError::DeadLetter { summary, .. } => Some(summary),
            _ => None,
        }
    }
}

/// The handler could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("SCHEMA_REGISTRY_URL: {0}")]
    Registry(#[from] crate::confluent::RegistryUrlError),
    #[error("the handler must be built inside a tokio runtime")]
    NoRuntime,
}

/// Decoded output and the first request of every batch.
#[derive(Debug, Default)]
pub struct Prepared {
    pub output: Output,
    pub requests: Vec<Vec<Record>>,
    /// Dead letters for records that cannot be decoded (permanent reasons).
    pub rejected: Vec<DeadLetter>,
    /// Records whose registry could not be reached (transient reasons).
    pub transient: Vec<Rejection>,
}

/// The function, configured once per execution environment.
#[derive(Debug)]
pub struct Handler {
    inner: Arc<Inner>,
    sender: FirehoseSender,
    dead_letter: Option<DeadLetterSink>,
    seed: u64,
    invocations: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    processor: EventProcessor,
    schemas: SchemaCache,
    registries: Registries,
    outputs: Mutex<Vec<Output>>,
}

impl Handler {
    /// Reads the environment and builds the handler and its clients.
    ///
    /// # Errors
    /// [`HandlerError`] naming the variable at fault, or when not inside a tokio runtime.
    pub fn from_env() -> Result<Handler, HandlerError> {
        Handler::new(Config::from_env()?)
    }

    /// Builds the handler and its AWS clients for `config`. Opens no connection.
    ///
    /// # Errors
    /// [`HandlerError`] for a bad registry URL or when not inside a tokio runtime.
    pub fn new(config: Config) -> Result<Handler, HandlerError> {
        let clients = Clients::new(&config);
        Handler::with_clients(config, clients)
    }

    /// Builds the handler on given clients.
    ///
    /// # Errors
    /// [`HandlerError`] for a bad registry URL or when not inside a tokio runtime.
    pub fn with_clients(config: Config, clients: Clients) -> Result<Handler, HandlerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| HandlerError::NoRuntime)?;
        let confluent = config.registry_url.as_ref().map(|u| ConfluentRegistry::new(u.expose())).transpose()?;
        let registries = Registries { confluent, glue: Some(GlueRegistry::new(clients.glue.clone(), runtime)) };
        let limits = PackLimits::with_max_records(config.batch_records).unwrap_or_default();
        let seed = config.jitter_seed.unwrap_or_else(chosen_seed);
        info!(
            delivery_stream = config.delivery_stream,
            retries = config.retries,
            retry_policy = config.retry_policy.name(),
            wire_mode = config.wire_mode.as_str(),
            concurrency = config.concurrency,
            batch_records = config.batch_records,
            dead_letter = config.dead_letter.as_ref().map(ToString::to_string),
            jitter_seed = seed,
            "processor configured"
        );
        let sender = FirehoseSender {
            client: clients.firehose.clone(),
            stream: config.delivery_stream.clone(),
            retries: config.retries,
            policy: config.retry_policy,
            concurrency: config.concurrency,
            live: None,
        };
        let dead_letter = config.dead_letter.clone().map(|t| DeadLetterSink::new(t, clients.s3.clone()));
        let inner = Inner {
            processor: EventProcessor::new(config.wire_mode, limits),
            schemas: SchemaCache::default(),
            registries,
            outputs: Mutex::default(),
        };
        Ok(Handler { inner: Arc::new(inner), sender, dead_letter, seed, invocations: AtomicU64::new(0) })
    }

    /// Counts what the handler does in `live` as it happens (see [`Live`]).
    pub fn set_live(&mut self, live: Arc<Live>) {
        self.sender.live = Some(live);
    }

    /// Preloads a writer schema (tests, benchmarks, offline runs).
    ///
    /// # Errors
    /// When `text` is not a schema core compiles.
    pub fn insert_schema(
        &self,
        key: mskbench_core::SchemaKey,
        text: &str,
    ) -> Result<(), mskbench_core::transcode::CompileError> {
        self.inner.schemas.insert_json(key, text)
    }

    /// Decodes `event` and builds the first request of every batch, on the
    /// calling thread. Everything an invocation does before its first
    /// Firehose call. A schema not yet cached is fetched here, blocking:
    /// call it off the async worker threads unless every schema is preloaded.
    ///
    /// # Errors
    /// [`InvocationError`] when `event` is not a Lambda Kafka event.
    pub fn prepare(&self, event: &[u8], out: Output) -> Result<Prepared, InvocationError> {
        self.inner.prepare(event, out)
    }

    /// Handles one invocation; returns when every Firehose call has finished.
    ///
    /// # Errors
    /// [`InvocationError`] when the batch must be redelivered: not an event,
    /// a registry outage, records still refused by Firehose with no
    /// dead-letter destination, or dead letters that could not be written.
    pub async fn handle(&self, event: Vec<u8>, request_id: &str) -> Result<InvocationSummary, InvocationError> {
        let started = Instant::now();
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let inner = Arc::clone(&self.inner);
        let out = inner.take_output();
        let prepared = tokio::task::spawn_blocking(move || inner.prepare(&event, out))
            .await
            .map_err(|e| InvocationError::Task(e.to_string()))??;
        let Prepared { output, requests, rejected, transient } = prepared;
        let mut summary = InvocationSummary {
            request_id: request_id.to_owned(),
            records_in: output.summary.records_in,
            decode: output.summary.clone(),
            ..InvocationSummary::default()
        };
        let live = self.sender.live.as_deref();
        if let Some(live) = live {
            Live::add(&live.consumed, summary.records_in);
        }

        if let Some(first) = transient.first() {
            summary.unsent = summary.records_in;
            summary.elapsed_ms = millis(started.elapsed());
            let first = format!("{}: {}", first.reason.as_str(), first.detail);
            error!(request_id, records = transient.len(), "Registry unavailable, failing the invocation: {first}");
            self.inner.give_back(output);
            if let Some(live) = live {
                Live::add(&live.failed_invocations, 1);
            }
            return Err(InvocationError::RegistryUnavailable {
                count: transient.len() as u64,
                first,
                summary: Box::new(summary),
            });
        }

        let seed = self.seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let report = self.sender.send_all(&output, requests, Invocation { request_id, seed }).await;
        summary.delivered = report.delivered;
        summary.send = report.stats;
        summary.firehose_failures = count_codes(&report.undelivered);

        let mut letters = rejected;
        let undecodable = letters.len() as u64;
        let mut undelivered_letters = Vec::with_capacity(report.undelivered.len());
        for u in &report.undelivered {
            let record = &output.records[u.record];
            let line = output.line(record);
            undelivered_letters.push(DeadLetter {
                reason: format!("firehose:{}", u.code),
                detail: u.message.clone(),
                topic: output.topic(&record.provenance).to_owned(),
                partition: record.provenance.partition,
                offset: record.provenance.offset,
                timestamp: record.timestamp,
                value: None,
                line: Some(String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned()),
            });
        }
        self.inner.give_back(output);

        let result = match &self.dead_letter {
            Some(sink) => {
                letters.extend(undelivered_letters);
                if letters.is_empty() {
                    Ok(())
                } else {
                    match sink.write(request_id, &letters).await {
                        Ok(location) => {
                            summary.dead_lettered = letters.len() as u64;
                            warn!(request_id, records = letters.len(), location, "Dead-lettered records");
                            Ok(())
                        }
                        Err(source) => {
                            // Nothing is safe: the whole batch comes back.
                            summary.undelivered = summary.records_in - summary.delivered;
                            Err(source)
                        }
                    }
                }
            }
            None => {
                for letter in &letters {
                    error!(
                        request_id,
                        reason = letter.reason,
                        topic = letter.topic,
                        partition = letter.partition,
                        offset = letter.offset,
                        "Dropping a record that cannot be decoded (no DEAD_LETTER configured): {}",
                        letter.detail
                    );
                }
                summary.dropped = undecodable;
                summary.undelivered = undelivered_letters.len() as u64;
                Ok(())
            }
        };
        summary.elapsed_ms = millis(started.elapsed());
        info!(
            request_id,
            records_in = summary.records_in,
            delivered = summary.delivered,
            dead_lettered = summary.dead_lettered,
            dropped = summary.dropped,
            undelivered = summary.undelivered,
            calls = summary.send.calls,
            retry_calls = summary.send.retry_calls,
            throttled_records = summary.send.throttled_records,
            throttled_calls = summary.send.throttled_calls,
            elapsed_ms = summary.elapsed_ms,
            "Invocation summary"
        );
        debug_assert!(summary.adds_up(), "{summary:?}");
        if let Some(live) = live {
            Live::add(&live.dead_lettered, summary.dead_lettered);
            if result.is_ok() && summary.undelivered == 0 {
                Live::add(&live.completed, summary.records_in);
            } else {
                Live::add(&live.failed_invocations, 1);
            }
        }
        match result {
            Err(source) => Err(InvocationError::DeadLetter { source, summary: Box::new(summary) }),
            Ok(()) if summary.undelivered > 0 => Err(InvocationError::Undelivered { summary: Box::new(summary) }),
            Ok(()) => Ok(summary),
        }
    }
}

impl Inner {
    fn prepare(&self, event_bytes: &[u8], mut out: Output) -> Result<Prepared, InvocationError> {
        out.clear();
        let event = KafkaEvent::parse(event_bytes)?;
        let fetcher: &dyn SchemaFetcher = &self.registries;
        self.processor.process(&event, &self.schemas, fetcher, Instant::now(), &mut out);
        let requests =
            out.batches.iter().map(|b| request_builder::batch_request(&out, b)).collect::<Result<Vec<_>, _>>()?;
        let (transient, permanent): (Vec<_>, Vec<_>) =
            out.rejections.iter().cloned().partition(|r| r.reason.is_transient());
        let rejected = dead_letters(&event, &out, &permanent);
        Ok(Prepared { output: out, requests, rejected, transient })
    }

    fn take_output(&self) -> Output {
        self.outputs.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default()
    }

    fn give_back(&self, out: Output) {
        self.outputs.lock().unwrap_or_else(PoisonError::into_inner).push(out);
    }
}

/// `error` and its sources, joined with `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Dead letters for `rejections` (input order), with each record's original value.
fn dead_letters(event: &KafkaEvent<'_>, out: &Output, rejections: &[Rejection]) -> Vec<DeadLetter> {
    let mut letters = Vec::with_capacity(rejections.len());
    let mut wanted = rejections.iter().peekable();
    for (i, record) in event.iter_records().enumerate() {
        let Some(r) = wanted.peek() else { break };
        if r.input_index as usize != i {
            continue;
        }
        letters.push(DeadLetter {
            reason: r.reason.as_str().to_owned(),
            detail: r.detail.clone(),
            topic: out.topic(&r.provenance).to_owned(),
            partition: r.provenance.partition,
            offset: r.provenance.offset,
            timestamp: record.timestamp,
            value: record.value.as_deref().map(str::to_owned),
            line: None,
        });
        wanted.next();
    }
    letters
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A jitter seed for a user who did not choose one: time and process id.
fn chosen_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
