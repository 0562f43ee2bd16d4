//! Sending packed batches to Firehose, with retries that lose nothing.
//!
//! [`FirehoseSender::send_all`] sends every batch of an invocation with at
//! most `concurrency` `PutRecordBatch` calls in flight and returns only when
//! every call, including every retry, has finished: the lab's function
//! returned before its asynchronous sends completed, and lost them when the
//! execution environment froze.
//!
//! Per batch, the loop is:
//! 1. send the pending records;
//! 2. HTTP 200: records answered with a `RecordId` are done; records failed
//!    with `ServiceUnavailableException` (throttled) or `InternalFailure`
//!    stay pending — only they are resent, so the records Firehose accepted
//!    are not duplicated by this function; any other error code fails the
//!    record at once;
//! 3. the whole call failed: throttling (`ServiceUnavailableException`,
//!    HTTP 503), any 5xx, a timeout or a connection failure keep every
//!    record pending; a client error (`InvalidArgumentException`,
//!    `ResourceNotFoundException`, …) fails them at once, since resending
//!    cannot help;
//! 4. with pacing ([`crate::pace`]), every call — first tries and resends —
//!    first waits as long as the stream's pacer says, cut short so the call
//!    still ends by `stop_by`; each answer tells the pacer whether anything
//!    was throttled (the adaptive pacer slows down on it);
//! 5. while records are pending and fewer than `retries` resends were made,
//!    wait as the [`RetryPolicy`] says, then go to 1 — unless the wait and
//!    one more call (its timeout) would end after the invocation's
//!    `stop_by` (its deadline less the time the dead letters need): then
//!    stop, so the handler can still write dead letters or fail cleanly
//!    before Lambda ends the invocation. Records still pending after that
//!    are returned as failed, with the last error code.
//!
//! The loop is three parts kept apart, as vector's `RetryLogic` keeps its
//! sinks' decisions apart from their transport: the *attempt* (one SDK
//! call, [`FirehoseSender::attempt`]), the *classification* of its answer
//! ([`Outcome::of_entries`], [`Outcome::of_call`]: pure, which records are
//! done, which to resend, which failed for good) and the *policy*
//! ([`RetryLogic::next`]: pure, whether and when to resend). Every count
//! goes through one [`SendObserver`] ([`Counters`]), which feeds both the
//! invocation's [`SendStats`] and, when set, the live counters ([`Live`]).
//!
//! Log lines keep the lab's wording, which its walkthrough filters on
//! ("Successfully sent N records for Request ID … with batch number …",
//! "Retrying …", "All Retries exhausted …"), as `tracing` events with the
//! numbers also as fields. Payloads are never logged.
//!
//! Cost per call: the SDK's serialisation (base64 of every record) and one
//! HTTP round trip; retries cost their wait. Counting is a few integer adds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_firehose::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::operation::put_record_batch::{PutRecordBatchError, PutRecordBatchOutput};
use aws_sdk_firehose::types::Record;
use futures_util::stream::{self, StreamExt as _};
use mskbench_core::Output;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tracing::{debug, error, info, warn};

use crate::live::Live;
use crate::pace::{self, SharedPacer};
use crate::request_builder;
use crate::retry::RetryPolicy;

/// Firehose's code for a throttled record or call.
pub const THROTTLED: &str = "ServiceUnavailableException";
/// Firehose's code for a record it failed internally.
pub const INTERNAL_FAILURE: &str = "InternalFailure";

/// What the sends of one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SendStats {
    /// `PutRecordBatch` calls made, first tries and retries.
    pub calls: u64,
    /// Calls that were retries.
    pub retry_calls: u64,
    /// Records sent again in retry calls.
    pub resent_records: u64,
    /// Whole calls that failed (any cause).
    pub failed_calls: u64,
    /// Whole calls refused with `ServiceUnavailableException` (request quota).
    pub throttled_calls: u64,
    /// Records answered `ServiceUnavailableException` inside an HTTP 200.
    pub throttled_records: u64,
    /// Records answered `InternalFailure` inside an HTTP 200.
    pub internal_failures: u64,
    /// Records answered with any other error code.
    pub other_record_failures: u64,
    /// Time spent waiting between retries, summed over batches (ms).
    pub backoff_ms: u64,
    /// Batches whose resends stopped early for the invocation's deadline.
    pub deadline_stops: u64,
    /// Calls the pacer held back (waited more than nothing).
    pub paced_calls: u64,
    /// Time calls waited for the pacer, summed over calls (ms).
    pub pace_wait_ms: u64,
    /// Calls sent before the pacer's wait was over, for the deadline.
    pub pace_cut_short: u64,
}

impl std::ops::AddAssign<&SendStats> for SendStats {
    fn add_assign(&mut self, o: &SendStats) {
        self.calls += o.calls;
        self.retry_calls += o.retry_calls;
        self.resent_records += o.resent_records;
        self.failed_calls += o.failed_calls;
        self.throttled_calls += o.throttled_calls;
        self.throttled_records += o.throttled_records;
        self.internal_failures += o.internal_failures;
        self.other_record_failures += o.other_record_failures;
        self.backoff_ms += o.backoff_ms;
        self.deadline_stops += o.deadline_stops;
        self.paced_calls += o.paced_calls;
        self.pace_wait_ms += o.pace_wait_ms;
        self.pace_cut_short += o.pace_cut_short;
    }
}

/// A record Firehose did not take, and the last answer about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undelivered {
    /// Index into `Output::records`.
    pub(crate) record: usize,
    /// The last error code (`ServiceUnavailableException`, `InternalFailure`,
    /// a call's error code, or `Timeout` / `Dispatch` for transport failures).
    pub(crate) code: String,
    /// The last error message.
    pub(crate) message: String,
}

/// The outcome of sending all batches of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SendReport {
    /// Records Firehose answered with a `RecordId`.
    pub(crate) delivered: u64,
    /// Records still failing after the retries, in record order.
    pub(crate) undelivered: Vec<Undelivered>,
    /// What the calls did.
    pub(crate) stats: SendStats,
}

/// Who is sending: for log lines and jitter seeds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Invocation<'a> {
    /// The Lambda request id, for log lines.
    pub(crate) request_id: &'a str,
    /// Seed of this invocation's jitter; batch `i` uses `seed + i`.
    pub(crate) seed: u64,
    /// No resend starts that could still run at this instant.
    pub(crate) stop_by: Instant,
}

/// Sends batches to one delivery stream.
#[derive(Debug, Clone)]
pub(crate) struct FirehoseSender {
    pub(crate) client: aws_sdk_firehose::Client,
    pub(crate) stream: String,
    /// Resends allowed per batch after its first call.
    pub(crate) retries: u32,
    /// The wait before each resend.
    pub(crate) policy: RetryPolicy,
    /// Most `PutRecordBatch` calls in flight.
    pub(crate) concurrency: usize,
    /// One call attempt's time limit (the SDK client's).
    pub(crate) call_timeout: Duration,
    /// Counters bumped as answers arrive, for a live view (optional).
    pub(crate) live: Option<Arc<Live>>,
    /// The stream's pacer, shared by every invocation (optional).
    pub(crate) pacer: Option<Arc<SharedPacer>>,
}

/// A whole-call failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallFailure {
    code: String,
    message: String,
    /// Resending the same records may succeed.
    retryable: bool,
    /// Firehose refused the call for its request quota.
    throttled: bool,
}

/// A record an answer failed, with the answer's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    record: usize,
    code: String,
    message: String,
}

/// One attempt's answer, classified: pure, no SDK types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Records answered with a `RecordId`.
    accepted: u64,
    /// Their bytes (JSON line and newline).
    accepted_bytes: u64,
    /// Their bytes as Firehose bills them (each rounded up to 5 KB).
    accepted_billed_bytes: u64,
    /// Records worth resending, in the order they were sent.
    resend: Vec<Failed>,
    /// Records failed for good, in the order they were sent.
    give_up: Vec<Failed>,
    /// Records answered `ServiceUnavailableException` inside an HTTP 200.
    throttled_records: u64,
    /// Records answered `InternalFailure` inside an HTTP 200.
    internal_failures: u64,
    /// Records answered with any other code inside an HTTP 200.
    other_record_failures: u64,
    /// The whole call failed (or answered out of contract).
    call_failure: Option<CallFailure>,
}

impl Outcome {
    /// Whether Firehose throttled the call or any of its records: what the
    /// adaptive pacer slows down on.
    pub(crate) fn throttled(&self) -> bool {
        self.throttled_records > 0 || self.call_failure.as_ref().is_some_and(|f| f.throttled)
    }

    /// An HTTP 200: `entries` are the per-record answers (`None` for a
    /// `RecordId`, else the error code and message) for the records at
    /// `pending` (positions in `Output::records`), `size` a record's bytes.
    /// Throttled and internally failed records are resent, any other code
    /// fails its record; a count of answers that does not match the records
    /// sent resends them all (which landed is unknown: duplicates over loss).
    pub(crate) fn of_entries<'e>(
        pending: &[usize],
        entries: impl ExactSizeIterator<Item = Option<(&'e str, &'e str)>>,
        size: impl Fn(usize) -> usize,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        if entries.len() != pending.len() {
            let message = format!("{} answers for {} records", entries.len(), pending.len());
            outcome.resend = failing_all(pending, "MalformedResponse", &message);
            outcome.call_failure =
                Some(CallFailure { code: "MalformedResponse".to_owned(), message, retryable: true, throttled: false });
            return outcome;
        }
        for (&record, entry) in pending.iter().zip(entries) {
            let Some((code, message)) = entry else {
                outcome.accepted += 1;
                outcome.accepted_bytes += size(record) as u64;
                outcome.accepted_billed_bytes += mskbench_core::cost::billed_record_bytes(size(record) as u64);
                continue;
            };
            let failed = Failed { record, code: code.to_owned(), message: message.to_owned() };
            match code {
                THROTTLED => outcome.throttled_records += 1,
                INTERNAL_FAILURE => outcome.internal_failures += 1,
                _ => {
                    outcome.other_record_failures += 1;
                    outcome.give_up.push(failed);
                    continue;
                }
            }
            outcome.resend.push(failed);
        }
        outcome
    }

    /// The whole call failed: its records are resent when the failure is
    /// retryable, failed for good otherwise.
    pub(crate) fn of_call(pending: &[usize], failure: CallFailure) -> Outcome {
        let all = failing_all(pending, &failure.code, &failure.message);
        let (resend, give_up) = if failure.retryable { (all, Vec::new()) } else { (Vec::new(), all) };
        Outcome { resend, give_up, call_failure: Some(failure), ..Outcome::default() }
    }
}

fn failing_all(pending: &[usize], code: &str, message: &str) -> Vec<Failed> {
    pending.iter().map(|&record| Failed { record, code: code.to_owned(), message: message.to_owned() }).collect()
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing is left to send.
    Done,
    /// Records are left but the resends are used up.
    Exhausted,
    /// Records are left but a resend could not finish before `stop_by`.
    OutOfTime {
        /// The resend that was not made (1 for the first).
        retry: u32,
    },
    /// Resend the records left: this is resend number `retry`, after `delay`.
    Resend {
        /// 1 for the first resend.
        retry: u32,
        /// The wait before it.
        delay: Duration,
    },
}

/// The retry decision (vector's `RetryLogic`): pure, from the number of
/// records left after `attempt` (0 for the first call), the time left
/// before the invocation's `stop_by`, and a seeded RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryLogic {
    /// Resends allowed after the first call.
    pub(crate) retries: u32,
    /// The wait before each resend.
    pub(crate) policy: RetryPolicy,
    /// How long a resend may take once sent.
    pub(crate) call_timeout: Duration,
}

impl RetryLogic {
    /// Whether and when to resend the `left` records after `attempt`, with
    /// `time_left` before the invocation must stop sending: a resend whose
    /// wait plus call timeout does not fit is not made. The RNG is drawn
    /// from only when a resend is due (it then goes ahead, or the batch
    /// stops for the deadline), so a batch's waits are the same for the
    /// same seed whatever happened before.
    pub(crate) fn next<R: Rng + ?Sized>(&self, attempt: u32, left: usize, time_left: Duration, rng: &mut R) -> Next {
        if left == 0 {
            Next::Done
        } else if attempt >= self.retries {
            Next::Exhausted
        } else {
            let retry = attempt + 1;
            let delay = self.policy.delay(retry, rng);
            if delay.saturating_add(self.call_timeout) > time_left {
                Next::OutOfTime { retry }
            } else {
                Next::Resend { retry, delay }
            }
        }
    }
}

/// Where the sender's counts go, as they happen.
pub(crate) trait SendObserver {
    /// A call of `records` records is about to be made; `attempt` 0 is the
    /// batch's first call, later ones are resends.
    fn call(&mut self, records: usize, attempt: u32);
    /// A call's answer (or failure) arrived after `latency`.
    fn call_took(&mut self, latency: Duration);
    /// A call's answer, classified.
    fn answered(&mut self, outcome: &Outcome);
    /// The sender waits `delay` before a resend.
    fn backed_off(&mut self, delay: Duration);
    /// A batch's resends stopped because the next could not end before the
    /// invocation's deadline.
    fn out_of_time(&mut self);
    /// A call waited `wait` for the pacer; `cut_short` when the deadline ended the wait early.
    fn paced(&mut self, wait: Duration, cut_short: bool);
}

/// The one observer: the batch's [`SendStats`] and the handler's [`Live`]
/// counters (when set) from the same events.
#[derive(Debug, Default)]
pub(crate) struct Counters<'a> {
    pub(crate) stats: SendStats,
    pub(crate) live: Option<&'a Live>,
}

impl SendObserver for Counters<'_> {
    fn call(&mut self, records: usize, attempt: u32) {
        let resend = attempt > 0;
        self.stats.calls += 1;
        if resend {
            self.stats.retry_calls += 1;
            self.stats.resent_records += records as u64;
        }
        if let Some(live) = self.live {
            Live::add(&live.calls, 1);
            if resend {
                Live::add(&live.retry_calls, 1);
                Live::add(&live.resent_records, records as u64);
            }
        }
    }

    fn call_took(&mut self, latency: Duration) {
        if let Some(live) = self.live {
            live.call_took(latency);
        }
    }

    fn answered(&mut self, o: &Outcome) {
        self.stats.throttled_records += o.throttled_records;
        self.stats.internal_failures += o.internal_failures;
        self.stats.other_record_failures += o.other_record_failures;
        let throttled_call = o.call_failure.as_ref().is_some_and(|f| f.throttled);
        if o.call_failure.is_some() {
            self.stats.failed_calls += 1;
        }
        if throttled_call {
            self.stats.throttled_calls += 1;
        }
        if let Some(live) = self.live {
            Live::add(&live.accepted, o.accepted);
            Live::add(&live.accepted_bytes, o.accepted_bytes);
            Live::add(&live.accepted_billed_bytes, o.accepted_billed_bytes);
            Live::add(&live.throttled_records, o.throttled_records);
            if throttled_call {
                Live::add(&live.throttled_calls, 1);
            }
        }
    }

    fn backed_off(&mut self, delay: Duration) {
        self.stats.backoff_ms += delay.as_millis() as u64;
    }

    fn out_of_time(&mut self) {
        self.stats.deadline_stops += 1;
    }

    fn paced(&mut self, wait: Duration, cut_short: bool) {
        if wait > Duration::ZERO {
            self.stats.paced_calls += 1;
            self.stats.pace_wait_ms += wait.as_millis() as u64;
        }
        if cut_short {
            self.stats.pace_cut_short += 1;
        }
    }
}

impl FirehoseSender {
    /// Sends every batch of `out`; `first` holds the first request of each
    /// batch (see [`request_builder::batch_request`]). Returns when every
    /// call has finished.
    pub(crate) async fn send_all(
        &self,
        out: &Output,
        first: Vec<Vec<Record>>,
        invocation: Invocation<'_>,
    ) -> SendReport {
        let concurrency = self.concurrency.max(1);
        let reports: Vec<SendReport> = stream::iter(first.into_iter().enumerate())
            .map(|(i, request)| self.send_batch(out, i, request, invocation))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut total = SendReport::default();
        for r in reports {
            total.delivered += r.delivered;
            total.undelivered.extend(r.undelivered);
            total.stats += &r.stats;
        }
        total.undelivered.sort_by_key(|u| u.record);
        total
    }

    /// Sends batch `index` until every record is accepted, failed for good,
    /// or the resends are used up.
    async fn send_batch(&self, out: &Output, index: usize, first: Vec<Record>, inv: Invocation<'_>) -> SendReport {
        let batch_number = index + 1;
        let logic = RetryLogic { retries: self.retries, policy: self.policy, call_timeout: self.call_timeout };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(inv.seed.wrapping_add(index as u64));
        let mut counters = Counters { stats: SendStats::default(), live: self.live.as_deref() };
        let mut report = SendReport::default();
        // Positions in out.records still to send, and the last answer about each.
        let mut pending: Vec<usize> = out.batches[index].records.clone().collect();
        let mut last: Vec<Failed>;
        let mut request = Some(first);
        let mut attempt = 0u32;
        loop {
            let records =
                match request.take().map_or_else(|| request_builder::records(out, pending.iter().copied()), Ok) {
                    Ok(r) => r,
                    Err(e) => {
                        last = failing_all(&pending, "RequestBuild", &e.to_string());
                        break;
                    }
                };
            if let Some(pacer) = &self.pacer {
                let bytes = pending.iter().map(|&i| out.records[i].len()).sum();
                let time_left = inv.stop_by.saturating_duration_since(Instant::now());
                let (wait, cut_short) = pace::capped(pacer.reserve(pending.len(), bytes), time_left, self.call_timeout);
                if cut_short {
                    warn!(
                        request_id = inv.request_id,
                        batch_number,
                        wait_ms = wait.as_millis() as u64,
                        "Pacing wait for batch number {batch_number} cut short for the invocation's deadline"
                    );
                }
                counters.paced(wait, cut_short);
                if wait > Duration::ZERO {
                    tokio::time::sleep(wait).await;
                }
            }
            debug!(request_id = inv.request_id, batch_number, records = pending.len(), attempt, "Sending batch");
            counters.call(pending.len(), attempt);
            let sent = Instant::now();
            let outcome = self.attempt(out, &pending, records, &mut counters).await;
            if let Some(pacer) = &self.pacer {
                pacer.answered(outcome.throttled(), sent);
            }
            counters.answered(&outcome);
            report.delivered += outcome.accepted;
            log_outcome(inv, batch_number, &outcome);
            report.undelivered.extend(outcome.give_up.into_iter().map(Failed::undelivered));
            pending = outcome.resend.iter().map(|f| f.record).collect();
            last = outcome.resend;
            let time_left = inv.stop_by.saturating_duration_since(Instant::now());
            match logic.next(attempt, pending.len(), time_left, &mut rng) {
                Next::Done => break,
                Next::OutOfTime { retry } => {
                    error!(
                        request_id = inv.request_id,
                        batch_number,
                        records = pending.len(),
                        retry,
                        time_left_ms = time_left.as_millis() as u64,
                        "Out of time for batch number {batch_number}: retry {retry} could not finish before the \
                         invocation's deadline. Could not send {} failed records",
                        pending.len()
                    );
                    counters.out_of_time();
                    break;
                }
                Next::Exhausted => {
                    error!(
                        request_id = inv.request_id,
                        batch_number,
                        records = pending.len(),
                        "All Retries exhausted for batch number {batch_number}. Could not send {} failed records",
                        pending.len()
                    );
                    break;
                }
                Next::Resend { retry, delay } => {
                    warn!(
                        request_id = inv.request_id,
                        batch_number,
                        records = pending.len(),
                        retry,
                        delay_ms = delay.as_millis() as u64,
                        code = last.first().map_or("", |f| f.code.as_str()),
                        "Retrying send of batch number {batch_number} with {} failed records (retry {retry} of {})",
                        pending.len(),
                        self.retries
                    );
                    counters.backed_off(delay);
                    if delay > Duration::ZERO {
                        tokio::time::sleep(delay).await;
                    }
                    attempt = retry;
                }
            }
        }
        report.undelivered.extend(last.into_iter().map(Failed::undelivered));
        report.stats = counters.stats;
        report
    }

    /// One `PutRecordBatch` call of `records` (the records at `pending`),
    /// its answer classified.
    async fn attempt(
        &self,
        out: &Output,
        pending: &[usize],
        records: Vec<Record>,
        observer: &mut impl SendObserver,
    ) -> Outcome {
        let started = Instant::now();
        let result =
            self.client.put_record_batch().delivery_stream_name(&self.stream).set_records(Some(records)).send().await;
        observer.call_took(started.elapsed());
        match result {
            Ok(answer) => Outcome::of_entries(pending, entries(&answer), |i| out.records[i].len()),
            Err(e) => Outcome::of_call(pending, classify(&e)),
        }
    }
}

impl Failed {
    fn undelivered(self) -> Undelivered {
        Undelivered { record: self.record, code: self.code, message: self.message }
    }
}

/// The per-record answers of an HTTP 200: `None` for a `RecordId`.
fn entries(answer: &PutRecordBatchOutput) -> impl ExactSizeIterator<Item = Option<(&str, &str)>> {
    answer.request_responses().iter().map(|r| r.error_code().map(|code| (code, r.error_message().unwrap_or_default())))
}

/// The lab's log lines for one answer: the records sent, or why a call
/// cannot succeed on retry.
fn log_outcome(inv: Invocation<'_>, batch_number: usize, outcome: &Outcome) {
    let sent = outcome.accepted;
    if sent > 0 {
        info!(
            request_id = inv.request_id,
            batch_number,
            records = sent,
            "Successfully sent {sent} records for Request ID {} with batch number {batch_number}",
            inv.request_id
        );
    }
    if let Some(failure) = outcome.call_failure.as_ref().filter(|f| !f.retryable) {
        error!(
            request_id = inv.request_id,
            batch_number,
            code = failure.code,
            "PutRecordBatch for batch number {batch_number} failed and cannot succeed on retry: {}",
            failure.message
        );
    }
}

/// Whether a failed call may succeed when resent, and its code.
fn classify(e: &SdkError<PutRecordBatchError>) -> CallFailure {
    match e {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("Unknown").to_owned();
            let message = service.err().message().unwrap_or_default().to_owned();
            call_failure(status, code, &message)
        }
        SdkError::TimeoutError(_) => CallFailure {
            code: "Timeout".into(),
            message: "the call timed out".into(),
            retryable: true,
            throttled: false,
        },
        SdkError::DispatchFailure(d) => CallFailure {
            code: "Dispatch".into(),
            message: format!("{:?}", d.as_connector_error().map(|c| c.to_string())),
            retryable: true,
            throttled: false,
        },
        SdkError::ResponseError(_) => CallFailure {
            code: "ResponseError".into(),
            message: aws_sdk_firehose::error::DisplayErrorContext(e).to_string(),
            retryable: true,
            throttled: false,
        },
        _ => CallFailure {
            code: "ConstructionFailure".into(),
            message: aws_sdk_firehose::error::DisplayErrorContext(e).to_string(),
            retryable: false,
            throttled: false,
        },
    }
}

/// A service error answered with HTTP `status` and `code`: throttling and
/// 5xx may pass on a resend, other client errors cannot.
fn call_failure(status: u16, code: String, message: &str) -> CallFailure {
    let throttled = code == THROTTLED || status == 503;
    let retryable = throttled || status >= 500 || code == "ThrottlingException";
    CallFailure { code, message: format!("HTTP {status}: {message}"), retryable, throttled }
}

/// Failed records by error code, for summaries.
pub(crate) fn count_codes(undelivered: &[Undelivered]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for u in undelivered {
        *counts.entry(u.code.clone()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use rand::rngs::Xoshiro256PlusPlus;

    use super::*;

    fn classify_entries(pending: &[usize], entries: &[Option<(&str, &str)>]) -> Outcome {
        Outcome::of_entries(pending, entries.iter().copied(), |_| 10)
    }

    #[test]
    fn an_http_200_resends_only_throttled_and_internally_failed_records() {
        let o = classify_entries(
            &[4, 5, 6, 7],
            &[
                None,
                Some((THROTTLED, "slow down")),
                Some(("InvalidArgumentException", "bad")),
                Some((INTERNAL_FAILURE, "oops")),
            ],
        );
        assert_eq!((o.accepted, o.accepted_bytes), (1, 10));
        assert_eq!(o.resend.iter().map(|f| f.record).collect::<Vec<_>>(), [5, 7]);
        assert_eq!(o.resend[0].code, THROTTLED);
        assert_eq!(o.give_up, [Failed { record: 6, code: "InvalidArgumentException".into(), message: "bad".into() }]);
        assert_eq!((o.throttled_records, o.internal_failures, o.other_record_failures), (1, 1, 1));
        assert!(o.call_failure.is_none());
        assert!(o.throttled(), "a throttled record tells the pacer");
        assert!(!classify_entries(&[1], &[None]).throttled());
        assert!(Outcome::of_call(&[1], call_failure(400, THROTTLED.into(), "")).throttled());
        assert!(!Outcome::of_call(&[1], call_failure(500, "InternalError".into(), "")).throttled());
    }

    #[test]
    fn a_miscounted_answer_resends_every_record() {
        let o = classify_entries(&[1, 2], &[None]);
        assert_eq!(o.accepted, 0, "which records landed is unknown");
        assert_eq!(o.resend.iter().map(|f| f.record).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(o.resend[0].code, "MalformedResponse");
        assert!(o.call_failure.as_ref().is_some_and(|f| f.retryable && !f.throttled));
    }

    #[test]
    fn failed_calls_resend_when_retryable_and_give_up_otherwise() {
        let throttled = call_failure(400, THROTTLED.to_owned(), "rate");
        assert!(throttled.retryable && throttled.throttled);
        assert!(call_failure(503, "Whatever".into(), "").throttled);
        assert!(call_failure(500, "InternalError".into(), "").retryable);
        assert!(call_failure(400, "ThrottlingException".into(), "").retryable);
        let client = call_failure(400, "ResourceNotFoundException".into(), "no stream");
        assert!(!client.retryable && !client.throttled);
        assert_eq!(client.message, "HTTP 400: no stream");

        let o = Outcome::of_call(&[3, 4], throttled);
        assert_eq!((o.resend.len(), o.give_up.len()), (2, 0));
        let o = Outcome::of_call(&[3, 4], client);
        assert_eq!((o.resend.len(), o.give_up.len()), (0, 2));
        assert_eq!(o.give_up[1].code, "ResourceNotFoundException");
    }

    #[test]
    fn the_policy_resends_until_done_or_out_of_retries() {
        let logic = RetryLogic { retries: 2, policy: RetryPolicy::Lab, call_timeout: Duration::from_secs(10) };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let all = Duration::MAX;
        assert_eq!(logic.next(0, 0, all, &mut rng), Next::Done);
        assert_eq!(logic.next(0, 3, all, &mut rng), Next::Resend { retry: 1, delay: Duration::ZERO });
        assert_eq!(logic.next(1, 3, all, &mut rng), Next::Resend { retry: 2, delay: Duration::from_secs(1) });
        assert_eq!(logic.next(2, 3, all, &mut rng), Next::Exhausted);
        assert_eq!(RetryLogic { retries: 0, ..logic }.next(0, 1, all, &mut rng), Next::Exhausted);
    }

    #[test]
    fn resends_stop_when_their_wait_and_call_would_pass_the_deadline() {
        let logic = RetryLogic { retries: 5, policy: RetryPolicy::Lab, call_timeout: Duration::from_secs(10) };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        // Retry 2 waits 1 s, then its call may take 10 s.
        let fits = Duration::from_secs(11);
        assert_eq!(logic.next(1, 3, fits, &mut rng), Next::Resend { retry: 2, delay: Duration::from_secs(1) });
        let short = Duration::from_millis(10_999);
        assert_eq!(logic.next(1, 3, short, &mut rng), Next::OutOfTime { retry: 2 });
        // Retry 3 waits 24 s, then 10 s of call: 33 s left is a second short.
        assert_eq!(logic.next(2, 3, Duration::from_secs(33), &mut rng), Next::OutOfTime { retry: 3 });
        assert_eq!(logic.next(2, 0, Duration::ZERO, &mut rng), Next::Done, "nothing left: done, not late");
        assert_eq!(logic.next(5, 3, Duration::ZERO, &mut rng), Next::Exhausted);
    }

    #[test]
    fn the_observer_feeds_stats_and_live_from_the_same_events() {
        let live = Live::default();
        let mut c = Counters { stats: SendStats::default(), live: Some(&live) };
        c.call(4, 0);
        c.answered(&classify_entries(&[0, 1, 2, 3], &[None, None, Some((THROTTLED, "")), None]));
        c.call(1, 1);
        c.answered(&Outcome::of_call(&[2], call_failure(400, THROTTLED.into(), "")));
        c.backed_off(Duration::from_millis(7));
        let s = &c.stats;
        assert_eq!((s.calls, s.retry_calls, s.resent_records), (2, 1, 1));
        assert_eq!((s.throttled_records, s.failed_calls, s.throttled_calls, s.backoff_ms), (1, 1, 1, 7));
        let l = live.snapshot();
        assert_eq!((l.calls, l.retry_calls, l.resent_records), (s.calls, s.retry_calls, s.resent_records));
        assert_eq!((l.throttled_records, l.throttled_calls), (s.throttled_records, s.throttled_calls));
        assert_eq!((l.accepted, l.accepted_bytes), (3, 30));
        assert_eq!(l.accepted_billed_bytes, 3 * 5120, "each 10-byte record billed as 5 KB");
    }
}
