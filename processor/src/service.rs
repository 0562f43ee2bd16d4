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
//! 4. while records are pending and fewer than `retries` resends were made,
//!    wait as the [`RetryPolicy`] says, then go to 1. Records still pending
//!    after that are returned as failed, with the last error code.
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
use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError;
use aws_sdk_firehose::types::Record;
use futures_util::stream::{self, StreamExt as _};
use mskbench_core::Output;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Serialize;
use tracing::{debug, error, info, warn};

use crate::live::Live;
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
    }
}

/// A record Firehose did not take, and the last answer about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// Index into `Output::records`.
    pub record: usize,
    /// The last error code (`ServiceUnavailableException`, `InternalFailure`,
    /// a call's error code, or `Timeout` / `Dispatch` for transport failures).
    pub code: String,
    pub message: String,
}

/// The outcome of sending all batches of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Records Firehose answered with a `RecordId`.
    pub delivered: u64,
    /// Records still failing after the retries, in record order.
    pub undelivered: Vec<Undelivered>,
    pub stats: SendStats,
}

/// Who is sending: for log lines and jitter seeds.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub request_id: &'a str,
    /// Seed of this invocation's jitter; batch `i` uses `seed + i`.
    pub seed: u64,
}

/// Sends batches to one delivery stream.
#[derive(Debug, Clone)]
pub struct FirehoseSender {
    pub client: aws_sdk_firehose::Client,
    pub stream: String,
    pub retries: u32,
    pub policy: RetryPolicy,
    pub concurrency: usize,
    /// Counters bumped as answers arrive, for a live view (optional).
    pub live: Option<Arc<Live>>,
}

/// A whole-call failure, classified.
struct CallFailure {
    code: String,
    message: String,
    retryable: bool,
    throttled: bool,
}

impl FirehoseSender {
    /// Sends every batch of `out`; `first` holds the first request of each
    /// batch (see [`request_builder::batch_request`]). Returns when every
    /// call has finished.
    pub async fn send_all(&self, out: &Output, first: Vec<Vec<Record>>, invocation: Invocation<'_>) -> SendReport {
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

    async fn send_batch(&self, out: &Output, index: usize, first: Vec<Record>, inv: Invocation<'_>) -> SendReport {
        let batch_number = index + 1;
        let batch = &out.batches[index];
        let mut report = SendReport::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(inv.seed.wrapping_add(index as u64));
        // Positions in out.records still to send, and the last answer about each.
        let mut pending: Vec<usize> = batch.records.clone().collect();
        let mut last: Vec<(String, String)>;
        let mut request = Some(first);
        let mut attempt = 0u32;
        loop {
            let records = match request.take() {
                Some(r) => r,
                None => match request_builder::records(out, pending.iter().copied()) {
                    Ok(r) => r,
                    Err(e) => {
                        last = vec![("RequestBuild".to_owned(), e.to_string()); pending.len()];
                        break;
                    }
                },
            };
            report.stats.calls += 1;
            if attempt > 0 {
                report.stats.retry_calls += 1;
                report.stats.resent_records += pending.len() as u64;
            }
            debug!(request_id = inv.request_id, batch_number, records = pending.len(), attempt, "Sending batch");
            if let Some(live) = &self.live {
                Live::add(&live.calls, 1);
                if attempt > 0 {
                    Live::add(&live.retry_calls, 1);
                    Live::add(&live.resent_records, pending.len() as u64);
                }
            }
            let call_started = Instant::now();
            let result = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(records))
                .send()
                .await;
            if let Some(live) = &self.live {
                live.call_took(call_started.elapsed());
            }
            match result {
                Ok(answer) => {
                    let responses = answer.request_responses();
                    if responses.len() != pending.len() {
                        // Not Firehose's contract; which records landed is unknown,
                        // so resend all (duplicates over loss).
                        report.stats.failed_calls += 1;
                        let message = format!("{} answers for {} records", responses.len(), pending.len());
                        last = vec![("MalformedResponse".to_owned(), message); pending.len()];
                    } else {
                        let mut still = Vec::new();
                        let mut still_last = Vec::new();
                        let mut sent = 0u64;
                        let mut sent_bytes = 0u64;
                        for (&record, response) in pending.iter().zip(responses) {
                            let Some(code) = response.error_code() else {
                                sent += 1;
                                sent_bytes += out.records[record].len() as u64;
                                continue;
                            };
                            let message = response.error_message().unwrap_or_default().to_owned();
                            match code {
                                THROTTLED => report.stats.throttled_records += 1,
                                INTERNAL_FAILURE => report.stats.internal_failures += 1,
                                _ => {
                                    report.stats.other_record_failures += 1;
                                    report.undelivered.push(Undelivered { record, code: code.to_owned(), message });
                                    continue;
                                }
                            }
                            still.push(record);
                            still_last.push((code.to_owned(), message));
                        }
                        report.delivered += sent;
                        if let Some(live) = &self.live {
                            Live::add(&live.accepted, sent);
                            Live::add(&live.accepted_bytes, sent_bytes);
                            Live::add(
                                &live.throttled_records,
                                still_last.iter().filter(|(c, _)| c == THROTTLED).count() as u64,
                            );
                        }
                        if sent > 0 {
                            info!(
                                request_id = inv.request_id,
                                batch_number,
                                records = sent,
                                "Successfully sent {sent} records for Request ID {} with batch number {batch_number}",
                                inv.request_id
                            );
                        }
                        pending = still;
                        last = still_last;
                    }
                }
                Err(e) => {
                    let failure = classify(&e);
                    report.stats.failed_calls += 1;
                    if failure.throttled {
                        report.stats.throttled_calls += 1;
                        if let Some(live) = &self.live {
                            Live::add(&live.throttled_calls, 1);
                        }
                    }
                    if !failure.retryable {
                        error!(
                            request_id = inv.request_id,
                            batch_number,
                            code = failure.code,
                            "PutRecordBatch for batch number {batch_number} failed and cannot succeed on retry: {}",
                            failure.message
                        );
                        last = vec![(failure.code, failure.message); pending.len()];
                        break;
                    }
                    last = vec![(failure.code, failure.message); pending.len()];
                }
            }
            if pending.is_empty() {
                break;
            }
            if attempt >= self.retries {
                error!(
                    request_id = inv.request_id,
                    batch_number,
                    records = pending.len(),
                    "All Retries exhausted for batch number {batch_number}. Could not send {} failed records",
                    pending.len()
                );
                break;
            }
            attempt += 1;
            let delay = self.policy.delay(attempt, &mut rng);
            warn!(
                request_id = inv.request_id,
                batch_number,
                records = pending.len(),
                retry = attempt,
                delay_ms = delay.as_millis() as u64,
                code = last.first().map_or("", |(c, _)| c.as_str()),
                "Retrying send of batch number {batch_number} with {} failed records (retry {attempt} of {})",
                pending.len(),
                self.retries
            );
            report.stats.backoff_ms += delay.as_millis() as u64;
            if delay > Duration::ZERO {
                tokio::time::sleep(delay).await;
            }
        }
        for (record, (code, message)) in pending.into_iter().zip(last) {
            report.undelivered.push(Undelivered { record, code, message });
        }
        report
    }
}

/// Whether a failed call may succeed when resent, and its code.
fn classify(e: &SdkError<PutRecordBatchError>) -> CallFailure {
    match e {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("Unknown").to_owned();
            let message = service.err().message().unwrap_or_default().to_owned();
            let throttled = code == THROTTLED || status == 503;
            let retryable = throttled || status >= 500 || code == "ThrottlingException";
            CallFailure { code, message: format!("HTTP {status}: {message}"), retryable, throttled }
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

/// Failed records by error code, for summaries.
pub fn count_codes(undelivered: &[Undelivered]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for u in undelivered {
        *counts.entry(u.code.clone()).or_insert(0) += 1;
    }
    counts
}
