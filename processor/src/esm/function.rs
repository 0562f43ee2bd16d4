//! What the mapping invokes: the function, in process or over the Runtime API.
//!
//! The mapping does not care what the function is, only what an
//! invocation came back with: success with the function's response
//! payload ([`Invoked::payload`], the bytes the function returned — where
//! a partial batch response's `batchItemFailures` would be read), or an
//! invocation error with a reason ([`InvokeError`]). Either way its offsets
//! are committed only after success.
//!
//! - [`Function::InProcess`]: the processor's [`Handler`], called on the
//!   mapping's runtime. Its payload is the [`InvocationSummary`] as JSON,
//!   what the `bootstrap` returns to Lambda, and the summary itself comes
//!   along for the mapping's counts.
//! - [`Function::RuntimeApi`]: any Lambda function, reached through the
//!   Runtime API the mapping serves ([`super::runtime_api`]); poller `i`
//!   invokes instance `i`. The mapping knows only what the event held and
//!   what came back; delivery is the function's to count.
//!
//! Records no event can carry (`record_too_large`) never reach a function:
//! the handler dead-letters them through its own destination; for an
//! external function the mapping uses [`External::dead_letter`] when one
//! is set, and otherwise logs each (reason and coordinates, never the
//! payload) and counts it as dropped.

use std::sync::Arc;
use std::time::Instant;

use mskbench_core::KafkaEvent;
use tracing::warn;

use super::runtime_api::{Failure, RuntimeApi};
use crate::dead_letter::{DeadLetter, DeadLetterSink};
use crate::handler::{Handler, InvocationError, InvocationSummary, error_chain};
use crate::live::Live;

/// The function behind the mapping.
#[derive(Debug, Clone)]
pub enum Function {
    /// The processor's handler, in process.
    InProcess(Arc<Handler>),
    /// A function of the user's over the Runtime API.
    RuntimeApi(Arc<External>),
}

impl From<Arc<Handler>> for Function {
    fn from(handler: Arc<Handler>) -> Self {
        Function::InProcess(handler)
    }
}

impl From<External> for Function {
    fn from(external: External) -> Self {
        Function::RuntimeApi(Arc::new(external))
    }
}

/// A succeeded invocation.
#[derive(Debug, Clone, Default)]
pub struct Invoked {
    /// The function's response payload, as it returned it.
    pub payload: Vec<u8>,
    /// The handler's own account, when the function is the in-process handler.
    pub summary: Option<InvocationSummary>,
}

/// A failed invocation: the batch is invoked again, nothing committed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct InvokeError {
    /// The error type, as Lambda reports it (`Undelivered`, `Sandbox.Timedout`, a function's `errorType`…).
    pub kind: String,
    /// What happened, with its causes.
    pub reason: String,
    /// The handler's account of the failed invocation, when it got that far.
    pub summary: Option<Box<InvocationSummary>>,
}

impl From<InvocationError> for InvokeError {
    fn from(e: InvocationError) -> Self {
        InvokeError { kind: e.kind().to_owned(), reason: error_chain(&e), summary: e.summary().cloned().map(Box::new) }
    }
}

impl From<Failure> for InvokeError {
    fn from(f: Failure) -> Self {
        InvokeError { kind: f.kind(), reason: f.to_string(), summary: None }
    }
}

/// A function over the Runtime API, with what the mapping keeps for it.
#[derive(Debug)]
pub struct External {
    /// The Runtime API, one instance per poller.
    pub api: RuntimeApi,
    /// Counters a sampler reads (invocations, records consumed and
    /// completed, the records each succeeded invocation settled).
    pub live: Option<Arc<Live>>,
    /// Where records too large for any event go; logged and dropped without.
    pub dead_letter: Option<DeadLetterSink>,
}

impl External {
    /// `api` with no counters and no destination.
    pub fn new(api: RuntimeApi) -> Self {
        External { api, live: None, dead_letter: None }
    }
}

impl Function {
    /// Instances the function has for pollers (`None`: any number).
    pub fn instances(&self) -> Option<usize> {
        match self {
            Function::InProcess(_) => None,
            Function::RuntimeApi(e) => Some(e.api.instances()),
        }
    }

    /// The AWS access of the in-process handler (for an S3 on-failure
    /// destination); a function over the Runtime API brings its own.
    pub fn s3_access(&self) -> Option<&mskbench_aws::Access> {
        match self {
            Function::InProcess(handler) => Some(handler.s3_access()),
            Function::RuntimeApi(_) => None,
        }
    }

    /// Invokes the function with `event` for poller `poller`.
    ///
    /// # Errors
    /// [`InvokeError`] when the invocation failed (the function's error, a
    /// missed deadline, a crash, …).
    pub async fn invoke(&self, poller: usize, event: Vec<u8>, request_id: &str) -> Result<Invoked, InvokeError> {
        match self {
            Function::InProcess(handler) => {
                let summary = handler.handle(event, request_id).await?;
                // A summary of strings, numbers and maps serialises infallibly.
                let payload = serde_json::to_vec(&summary).unwrap_or_default();
                Ok(Invoked { payload, summary: Some(summary) })
            }
            Function::RuntimeApi(external) => external.invoke(poller, event, request_id).await,
        }
    }

    /// Accounts for records that reach no invocation (`record_too_large`).
    ///
    /// # Errors
    /// [`InvokeError`] when the letters could not be written: their offsets
    /// must not be committed.
    pub async fn dead_letter_unsent(
        &self,
        request_id: &str,
        letters: Vec<DeadLetter>,
    ) -> Result<InvocationSummary, InvokeError> {
        match self {
            Function::InProcess(handler) => Ok(handler.dead_letter_unsent(request_id, letters).await?),
            Function::RuntimeApi(external) => external.dead_letter_unsent(request_id, letters).await,
        }
    }
}

impl External {
    async fn invoke(&self, poller: usize, event: Vec<u8>, request_id: &str) -> Result<Invoked, InvokeError> {
        let live = self.live.as_deref();
        // Coordinates only when someone counts them: the event is parsed
        // for nothing else.
        let records: Vec<(i32, i64)> = match live {
            Some(_) => match KafkaEvent::parse(&event) {
                Ok(e) => e.iter_records().map(|r| (r.partition, r.offset)).collect(),
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        };
        if let Some(live) = live {
            Live::add(&live.consumed, records.len() as u64);
            Live::add(&live.invocations, 1);
        }
        let started = Instant::now();
        let result = self.api.invoke(poller, event, request_id).await;
        if let Some(live) = live {
            live.invocation_took(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            match &result {
                Ok(_) => {
                    Live::add(&live.completed, records.len() as u64);
                    if live.tracks_records() {
                        live.complete_records(records);
                    }
                }
                Err(_) => Live::add(&live.failed_invocations, 1),
            }
        }
        let payload = result?;
        Ok(Invoked { payload: payload.to_vec(), summary: None })
    }

    async fn dead_letter_unsent(
        &self,
        request_id: &str,
        letters: Vec<DeadLetter>,
    ) -> Result<InvocationSummary, InvokeError> {
        let mut summary = InvocationSummary {
            request_id: request_id.to_owned(),
            records_in: letters.len() as u64,
            ..InvocationSummary::default()
        };
        match &self.dead_letter {
            Some(sink) => {
                sink.write(request_id, &letters).await.map_err(|e| InvokeError {
                    kind: "DeadLetterFailed".to_owned(),
                    reason: format!("dead letters could not be written: {e}"),
                    summary: None,
                })?;
                summary.dead_lettered = summary.records_in;
            }
            None => {
                for l in &letters {
                    warn!(
                        request_id,
                        reason = l.reason,
                        topic = l.topic,
                        partition = l.partition,
                        offset = l.offset,
                        "Record dropped (no dead-letter destination): {}",
                        l.detail
                    );
                }
                summary.dropped = summary.records_in;
            }
        }
        if let Some(live) = self.live.as_deref() {
            Live::add(&live.consumed, summary.records_in);
            Live::add(&live.completed, summary.records_in);
            Live::add(&live.dead_lettered, summary.dead_lettered);
            if live.tracks_records() {
                live.complete_records(letters.iter().map(|l| (l.partition, l.offset)));
            }
        }
        Ok(summary)
    }
}
