//! One invocation: Kafka event bytes in, every record delivered or accounted for.
//!
//! [`Handler::handle`] is what the Lambda `bootstrap` and the local event
//! source mapping both call:
//!
//! 1. decode and pack with core ([`Handler::prepare`]): core reads the
//!    schema cache only; the schemas it lacks are fetched, awaited, by
//!    [`crate::schemas::Schemas`] and those records finished in a second
//!    pass. Then the first `PutRecordBatch` request of every batch is built.
//!    Nothing blocks a thread: the decode runs on the invocation's task;
//! 2. if a registry could not be reached for some record (a transient
//!    reason), fail the invocation before sending anything: the event source
//!    mapping redelivers the batch, and no record is sent twice for it;
//! 3. send every batch ([`crate::service::FirehoseSender`]) and await all
//!    calls and retries — none started that could run past the
//!    invocation's deadline less the time the dead letters need (Lambda's
//!    deadline in the `bootstrap`, [`Handler::handle_by`]; `FUNCTION_TIMEOUT`
//!    from the start for the local mapping, [`Handler::handle`]);
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
use mskbench_core::{EventProcessor, KafkaEvent, Output, Summary};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::clients::Clients;
use crate::config::{Config, ConfigError};
use crate::confluent::ConfluentRegistry;
use crate::dead_letter::{DeadLetter, DeadLetterError, DeadLetterSink};
use crate::live::Live;
use crate::request_builder::{self, BuildError};
use crate::schemas::{GlueRegistry, Schemas};
use crate::service::{FirehoseSender, Invocation, SendReport, SendStats, count_codes};

/// What one invocation did. Serialised as the function's response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvocationSummary {
    /// The Lambda request id (or the local mapping's attempt id).
    pub request_id: String,
    /// Records in the event.
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
    /// Undecodable or undeliverable records returned in `batchItemFailures`
    /// for the mapping to retry (`REPORT_BATCH_ITEM_FAILURES`).
    #[serde(default)]
    pub reported: u64,
    /// Core's decode summary (`records_out`, `rejected` by reason, `batches`, `bytes_out`).
    pub decode: Summary,
    /// Undelivered or dead-lettered-after-sending records by last Firehose error code.
    pub firehose_failures: std::collections::BTreeMap<String, u64>,
    /// What the `PutRecordBatch` calls did.
    pub send: SendStats,
    /// Wall time of the invocation (ms).
    pub elapsed_ms: u64,
    /// The partial batch response: the records `reported`, as Lambda reads
    /// them with `ReportBatchItemFailures` (absent when none failed).
    #[serde(rename = "batchItemFailures", skip_serializing_if = "Vec::is_empty")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One entry of a partial batch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    /// The record.
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: ItemIdentifier,
}

/// A Kafka record's identifier in a partial batch response: `partition` is
/// `"<topic>-<partition>"`, as Powertools' Kafka batch processor writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemIdentifier {
    /// `"<topic>-<partition>"`.
    pub partition: String,
    /// The record's offset.
    pub offset: i64,
}

impl InvocationSummary {
    /// True when every record that came in has exactly one outcome.
    pub fn adds_up(&self) -> bool {
        self.records_in
            == self.delivered + self.dead_lettered + self.dropped + self.undelivered + self.unsent + self.reported
            && self.decode.adds_up()
    }
}

/// Why an invocation failed; the event source mapping will redeliver its batch.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The payload is not a Lambda Kafka event.
    #[error(transparent)]
    NotAnEvent(#[from] EventError),
    /// Records need a registry that could not be reached; nothing was sent.
    #[error("{count} record(s) need a schema registry that could not be reached ({first}); nothing was sent")]
    RegistryUnavailable {
        /// Records whose schema could not be fetched.
        count: u64,
        /// The first such record's reason and detail.
        first: String,
        /// What the invocation did (everything `unsent`).
        summary: Box<InvocationSummary>,
    },
    /// Records Firehose still refused after the retries, with no dead-letter destination.
    #[error("{} record(s) could not be delivered to Firehose after the retries", summary.undelivered)]
    Undelivered {
        /// What the invocation did.
        summary: Box<InvocationSummary>,
    },
    /// The dead letters could not be written.
    #[error("dead letters could not be written; the batch must be redelivered")]
    DeadLetter {
        /// Why the write failed.
        #[source]
        source: DeadLetterError,
        /// What the invocation did (everything not delivered is `undelivered`).
        summary: Box<InvocationSummary>,
    },
    /// The SDK refused to build a request.
    #[error(transparent)]
    Build(#[from] BuildError),
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
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `SCHEMA_REGISTRY_URL` is not a registry URL.
    #[error("SCHEMA_REGISTRY_URL: {0}")]
    Registry(#[from] crate::confluent::RegistryUrlError),
    /// The Glue client cannot be set up.
    #[error(transparent)]
    Glue(#[from] mskbench_aws::glue::GlueError),
    /// The dead-letter destination cannot be reached.
    #[error("DEAD_LETTER: {0}")]
    DeadLetter(#[from] crate::dead_letter::DeadLetterError),
}

/// Decoded output and the first request of every batch.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Core's output: every record packed or rejected, none waiting.
    pub output: Output,
    /// The first `PutRecordBatch` request of each batch, in batch order.
    pub requests: Vec<Vec<Record>>,
    /// Dead letters for records that cannot be decoded (permanent reasons).
    pub rejected: Vec<DeadLetter>,
    /// Records whose registry could not be reached (transient reasons).
    pub transient: Vec<Rejection>,
}

/// The function, configured once per execution environment.
#[derive(Debug)]
pub struct Handler {
    processor: EventProcessor,
    schemas: Schemas,
    outputs: Mutex<Vec<Output>>,
    sender: FirehoseSender,
    dead_letter: Option<DeadLetterSink>,
    seed: u64,
    invocations: AtomicU64,
    /// How long an invocation may run when its caller gives no deadline.
    function_timeout: Duration,
    /// Kept free before the deadline for the dead letters (or the failure).
    reserve: Duration,
    /// How long an invocation's schema fetches may take ([`crate::config::fetch_budget`]).
    fetch_budget: Duration,
    /// Return undecodable and undeliverable records as `batchItemFailures`.
    report_batch_item_failures: bool,
    /// How S3 is reached (the dead letters', and the local mapping's on-failure destination).
    s3: mskbench_aws::Access,
}

impl Handler {
    /// Reads the environment, resolves the AWS default chain, and builds
    /// the handler and its clients.
    ///
    /// # Errors
    /// [`HandlerError`] naming the variable at fault, or what the chain lacked.
    pub async fn from_env() -> Result<Handler, HandlerError> {
        Handler::new(Config::from_env().await?)
    }

    /// Builds the handler and its AWS clients for `config`. Opens no connection.
    ///
    /// # Errors
    /// [`HandlerError`] for a bad registry URL.
    pub fn new(config: Config) -> Result<Handler, HandlerError> {
        let clients = Clients::new(&config)?;
        Handler::with_clients(config, clients)
    }

    /// Builds the handler on given clients.
    ///
    /// # Errors
    /// [`HandlerError`] for a bad registry URL.
    pub fn with_clients(config: Config, clients: Clients) -> Result<Handler, HandlerError> {
        // Configs built as values (the harness) are checked as read ones are.
        config.check_fits()?;
        let confluent = config.registry_url.as_ref().map(|u| ConfluentRegistry::new(u.expose())).transpose()?;
        let schemas = Schemas::new(confluent, Some(GlueRegistry::new(clients.glue.clone())));
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
            pacing = config.pacing.map(|p| p.to_string()),
            "processor configured"
        );
        let sender = FirehoseSender {
            client: clients.firehose.clone(),
            stream: config.delivery_stream.clone(),
            retries: config.retries,
            policy: config.retry_policy,
            concurrency: config.concurrency,
            call_timeout: config.call_timeout,
            live: None,
            pacer: config.pacing.map(|p| Arc::new(crate::pace::SharedPacer::new(p))),
        };
        // A dead-letter write may take S3's attempts within three call timeouts, plus the last.
        let reserve = if config.dead_letter.is_some() {
            crate::config::dead_letter_budget(config.call_timeout)
        } else {
            Duration::from_secs(1)
        };
        let dead_letter = config.dead_letter.clone().map(|t| DeadLetterSink::new(t, &clients.s3)).transpose()?;
        Ok(Handler {
            processor: EventProcessor::new(config.wire_mode, limits),
            schemas,
            outputs: Mutex::default(),
            sender,
            dead_letter,
            seed,
            invocations: AtomicU64::new(0),
            function_timeout: config.function_timeout,
            reserve,
            fetch_budget: crate::config::fetch_budget(config.call_timeout),
            report_batch_item_failures: config.report_batch_item_failures,
            s3: clients.s3.clone(),
        })
    }

    /// How this function reaches S3 (for the local mapping's on-failure destination).
    pub fn s3_access(&self) -> &mskbench_aws::Access {
        &self.s3
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
        self.schemas.cache().insert_json(key, text)
    }

    /// Decodes `event` and builds the first request of every batch:
    /// everything an invocation does before its first Firehose call. A
    /// schema not yet cached is fetched here, awaited (single-flight with
    /// other invocations) for at most one registry request's time (see
    /// [`crate::schemas::Schemas::process_by`]); with every schema cached nothing is awaited.
    ///
    /// # Errors
    /// [`InvocationError`] when `event` is not a Lambda Kafka event.
    pub async fn prepare(&self, event_bytes: &[u8], out: Output) -> Result<Prepared, InvocationError> {
        self.prepare_by(event_bytes, out, Instant::now() + self.fetch_budget).await
    }

    /// [`Handler::prepare`], with schema fetches ending by `fetch_by`.
    async fn prepare_by(
        &self,
        event_bytes: &[u8],
        mut out: Output,
        fetch_by: Instant,
    ) -> Result<Prepared, InvocationError> {
        out.clear();
        let event = KafkaEvent::parse(event_bytes)?;
        self.schemas.process_by(&self.processor, &event, &mut out, Some(fetch_by)).await;
        debug_assert!(out.waiting.is_empty() && out.summary.adds_up(), "{:?}", out.summary);
        let requests =
            out.batches.iter().map(|b| request_builder::batch_request(&out, b)).collect::<Result<Vec<_>, _>>()?;
        let (transient, permanent): (Vec<_>, Vec<_>) =
            out.rejections.iter().cloned().partition(|r| r.reason.is_transient());
        let rejected = dead_letters(&event, &out, &permanent);
        Ok(Prepared { output: out, requests, rejected, transient })
    }

    /// Handles one invocation given `FUNCTION_TIMEOUT` from now, as the
    /// local event source mapping does; see [`Handler::handle_by`].
    ///
    /// # Errors
    /// As [`Handler::handle_by`].
    pub async fn handle(&self, event: Vec<u8>, request_id: &str) -> Result<InvocationSummary, InvocationError> {
        self.handle_by(event, request_id, Instant::now() + self.function_timeout).await
    }

    /// Handles one invocation that must end by `deadline` (Lambda's, see
    /// [`deadline_from_epoch_ms`]); returns when every Firehose call has
    /// finished. No resend starts that could end later than the deadline
    /// less the time the dead letters need: records still refused then
    /// are dead-lettered, or fail the invocation, in time.
    ///
    /// # Errors
    /// [`InvocationError`] when the batch must be redelivered: not an event,
    /// a registry outage, records still refused by Firehose with no
    /// dead-letter destination, or dead letters that could not be written.
    pub async fn handle_by(
        &self,
        event: Vec<u8>,
        request_id: &str,
        deadline: Instant,
    ) -> Result<InvocationSummary, InvocationError> {
        let started = Instant::now();
        let stop_by = deadline.checked_sub(self.reserve).unwrap_or(started);
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let fetch_by = (started + self.fetch_budget).min(stop_by);
        let Prepared { output, requests, rejected, transient } =
            self.prepare_by(&event, self.take_output(), fetch_by).await?;
        let mut summary = InvocationSummary {
            request_id: request_id.to_owned(),
            records_in: output.summary.records_in,
            decode: output.summary.clone(),
            ..InvocationSummary::default()
        };
        let live = self.sender.live.as_deref();
        if let Some(live) = live {
            Live::add(&live.consumed, summary.records_in);
            Live::add(&live.invocations, 1);
        }
        if !transient.is_empty() {
            self.give_back(output);
            return Err(fail_unsent(summary, &transient, started, live));
        }

        let seed = self.seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let report = self.sender.send_all(&output, requests, Invocation { request_id, seed, stop_by }).await;
        summary.delivered = report.delivered;
        if let Some(live) = live {
            // The accepted records: all but the undelivered (sorted by index).
            let mut refused = report.undelivered.iter().map(|u| u.record).peekable();
            let accepted = output.records.iter().enumerate().filter_map(|(i, r)| {
                if refused.peek() == Some(&i) {
                    refused.next();
                    None
                } else {
                    Some(r.timestamp)
                }
            });
            live.records_accepted(epoch_ms_now(), accepted);
        }
        summary.firehose_failures = count_codes(&report.undelivered);
        let undelivered = undelivered_letters(&output, &report);
        summary.send = report.stats;
        // Which records this invocation settles, for a watcher that counts
        // each record once (collected before the output is reused).
        let settled: Vec<(i32, i64)> = match live {
            Some(live) if live.tracks_records() => {
                let records = output.records.iter().map(|r| &r.provenance);
                let rejected = output.rejections.iter().map(|r| &r.provenance);
                records.chain(rejected).map(|p| (p.partition, p.offset)).collect()
            }
            _ => Vec::new(),
        };
        self.give_back(output);

        let (rejected, undelivered, reported) = if self.report_batch_item_failures {
            let mut letters = rejected;
            letters.extend(undelivered);
            Handler::report(request_id, &letters, &mut summary);
            (Vec::new(), Vec::new(), letters)
        } else {
            (rejected, undelivered, Vec::new())
        };
        let result = self.dispose(request_id, rejected, undelivered, &mut summary).await;
        summary.elapsed_ms = millis(started.elapsed());
        log_summary(&summary);
        debug_assert!(summary.adds_up(), "{summary:?}");
        // Reported records are the mapping's to retry: not settled here.
        let settled = if reported.is_empty() {
            settled
        } else {
            let reported: std::collections::HashSet<(i32, i64)> =
                reported.iter().map(|l| (l.partition, l.offset)).collect();
            settled.into_iter().filter(|c| !reported.contains(c)).collect()
        };
        settle(live, &summary, result.is_ok() && summary.undelivered == 0, settled);
        match result {
            Err(source) => Err(InvocationError::DeadLetter { source, summary: Box::new(summary) }),
            Ok(()) if summary.undelivered > 0 => Err(InvocationError::Undelivered { summary: Box::new(summary) }),
            Ok(()) => Ok(summary),
        }
    }

    /// Accounts for records that reached the function's caller but can
    /// reach no invocation — the local event source mapping's records too
    /// large for any event (`record_too_large`): each letter goes to the
    /// dead-letter destination or, without one, is logged (reason and
    /// coordinates, never the payload) and counted as dropped, as
    /// undecodable records are; [`Live`] counts them as an invocation's.
    ///
    /// # Errors
    /// [`InvocationError::DeadLetter`] when the letters could not be
    /// written: the caller must not commit their offsets.
    pub async fn dead_letter_unsent(
        &self,
        request_id: &str,
        letters: Vec<DeadLetter>,
    ) -> Result<InvocationSummary, InvocationError> {
        let started = Instant::now();
        let mut summary = InvocationSummary {
            request_id: request_id.to_owned(),
            records_in: letters.len() as u64,
            ..InvocationSummary::default()
        };
        let live = self.sender.live.as_deref();
        if let Some(live) = live {
            Live::add(&live.consumed, summary.records_in);
        }
        // The records these letters settle, as `handle` reports its own.
        let settled: Vec<(i32, i64)> = match live {
            Some(live) if live.tracks_records() => letters.iter().map(|l| (l.partition, l.offset)).collect(),
            _ => Vec::new(),
        };
        let result = self.dispose(request_id, letters, Vec::new(), &mut summary).await;
        summary.elapsed_ms = millis(started.elapsed());
        debug_assert!(summary.adds_up(), "{summary:?}");
        settle(live, &summary, result.is_ok(), settled);
        match result {
            Ok(()) => Ok(summary),
            Err(source) => Err(InvocationError::DeadLetter { source, summary: Box::new(summary) }),
        }
    }

    /// Turns `letters` into the partial batch response (`batchItemFailures`)
    /// with their reasons logged: the mapping retries them, and sends them
    /// to its on-failure destination once its retries are used up.
    fn report(request_id: &str, letters: &[DeadLetter], summary: &mut InvocationSummary) {
        for letter in letters {
            warn!(
                request_id,
                reason = letter.reason,
                topic = letter.topic,
                partition = letter.partition,
                offset = letter.offset,
                "Reporting a batch item failure: {}",
                letter.detail
            );
        }
        summary.batch_item_failures = letters
            .iter()
            .map(|l| BatchItemFailure {
                item_identifier: ItemIdentifier { partition: format!("{}-{}", l.topic, l.partition), offset: l.offset },
            })
            .collect();
        summary.reported = letters.len() as u64;
    }

    /// Writes the undecodable (`rejected`) and `undelivered` records to the
    /// dead-letter destination, or, without one, logs and drops the
    /// undecodable ones and counts the undelivered ones; fills `summary`'s
    /// `dead_lettered`, `dropped` and `undelivered`.
    async fn dispose(
        &self,
        request_id: &str,
        rejected: Vec<DeadLetter>,
        undelivered: Vec<DeadLetter>,
        summary: &mut InvocationSummary,
    ) -> Result<(), DeadLetterError> {
        let Some(sink) = &self.dead_letter else {
            drop_undecodable(request_id, &rejected);
            summary.dropped = rejected.len() as u64;
            summary.undelivered = undelivered.len() as u64;
            return Ok(());
        };
        let mut letters = rejected;
        letters.extend(undelivered);
        if letters.is_empty() {
            return Ok(());
        }
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

    fn take_output(&self) -> Output {
        self.outputs.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default()
    }

    fn give_back(&self, out: Output) {
        self.outputs.lock().unwrap_or_else(PoisonError::into_inner).push(out);
    }
}

/// The invocation fails before sending: `transient` records need a
/// registry that could not be reached, and the whole batch comes back.
fn fail_unsent(
    mut summary: InvocationSummary,
    transient: &[Rejection],
    started: Instant,
    live: Option<&Live>,
) -> InvocationError {
    summary.unsent = summary.records_in;
    summary.elapsed_ms = millis(started.elapsed());
    let first = transient.first().map(|r| format!("{}: {}", r.reason.as_str(), r.detail)).unwrap_or_default();
    let request_id = summary.request_id.as_str();
    error!(request_id, records = transient.len(), "Registry unavailable, failing the invocation: {first}");
    if let Some(live) = live {
        live.invocation_took(summary.elapsed_ms);
        Live::add(&live.failed_invocations, 1);
    }
    InvocationError::RegistryUnavailable { count: transient.len() as u64, first, summary: Box::new(summary) }
}

/// Dead letters for the records Firehose still refused, with their lines.
fn undelivered_letters(output: &Output, report: &SendReport) -> Vec<DeadLetter> {
    report
        .undelivered
        .iter()
        .map(|u| {
            let record = &output.records[u.record];
            let line = output.line(record);
            DeadLetter {
                reason: format!("firehose:{}", u.code),
                detail: u.message.clone(),
                topic: output.topic(&record.provenance).to_owned(),
                partition: record.provenance.partition,
                offset: record.provenance.offset,
                timestamp: record.timestamp,
                value: None,
                line: Some(String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned()),
            }
        })
        .collect()
}

/// Logs each undecodable record (no dead-letter destination): reason and
/// coordinates, never the payload.
fn drop_undecodable(request_id: &str, letters: &[DeadLetter]) {
    for letter in letters {
        error!(
            request_id,
            reason = letter.reason,
            topic = letter.topic,
            partition = letter.partition,
            offset = letter.offset,
            "Dropping a record that cannot be processed (no DEAD_LETTER configured): {}",
            letter.detail
        );
    }
}

fn log_summary(summary: &InvocationSummary) {
    info!(
        request_id = summary.request_id,
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
}

pub use mskbench_core::errors::error_chain;

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

/// The [`Instant`] of a deadline given in milliseconds since the Unix
/// epoch, as Lambda's runtime API gives it (`Lambda-Runtime-Deadline-Ms`);
/// a deadline already past is now.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Now, in ms since the Unix epoch: Kafka timestamps' clock.
fn epoch_ms_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A jitter seed for a user who did not choose one: time and process id.
fn chosen_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Counts an invocation's end in `live`: its dead letters, then either its
/// records as completed (and `settled`, their coordinates, for a watcher
/// that counts each record once: the run's drain) or one failed invocation.
fn settle(live: Option<&Live>, summary: &InvocationSummary, ok: bool, settled: Vec<(i32, i64)>) {
    let Some(live) = live else { return };
    live.invocation_took(summary.elapsed_ms);
    Live::add(&live.dead_lettered, summary.dead_lettered);
    if ok {
        Live::add(&live.completed, summary.records_in - summary.reported);
        live.complete_records(settled);
    } else {
        Live::add(&live.failed_invocations, 1);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::test_registry::{Reply, distinct_ids_event, serve};

    #[tokio::test]
    async fn schema_fetches_end_before_the_deadline_however_many_rounds_the_event_needs() {
        const SCHEMA: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
        let body = serde_json::json!({ "schema": SCHEMA }).to_string();
        // 200 new ids, 8 in flight, 100 ms an answer: 2.5 s of fetches
        // against 0.5 s before the deadline less the 1 s reserve.
        let stub = serve(move |_| Reply::After(Duration::from_millis(100), 200, body.clone())).await;
        let vars: HashMap<&str, &str> = [
            ("DELIVERY_STREAM_NAME", "s"),
            ("CSR", "true"),
            ("SCHEMA_REGISTRY_URL", stub.url.as_str()),
            ("AWS_ENDPOINT_URL_FIREHOSE", "http://127.0.0.1:9"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ]
        .into();
        let handler = Handler::new(
            Config::from_lookup(
                |k| vars.get(k).map(|v| (*v).to_owned()),
                crate::config::Chain::fixed("us-east-1", "a", "s"),
            )
            .unwrap(),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_millis(1_500);

        let e = handler.handle_by(distinct_ids_event(200), "req-slow", deadline).await.unwrap_err();
        let InvocationError::RegistryUnavailable { count, first, summary } = &e else { panic!("{e}") };
        assert!(Instant::now() < deadline, "failed before the deadline: {e}");
        assert!(*count > 0 && *count < 200, "the answers that came in time were kept: {count}");
        assert!(first.contains("time for schema fetches"), "{first}");
        assert_eq!(summary.unsent, 200, "nothing sent: the batch comes back whole");
        assert!(stub.requests() < 200, "{} requests", stub.requests());
    }
}
