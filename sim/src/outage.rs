//! An HTTP stand-in that is down: every request answered with one 5xx.
//!
//! The fault windows of `mskbench run` switch an [`Outage`] on and off
//! while a stand-in serves. While it is on, the Firehose endpoint answers
//! each call with the error AWS gives for that status (500
//! `InternalFailure`, 503 `ServiceUnavailableException`) and the registry
//! with Confluent's error shape; nothing behind the answer runs. Refused
//! connections are the network's business: `crate::proxy`.
//!
//! Cost: one relaxed atomic load per request.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// Which 5xx a stand-in that is down answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOutage {
    /// HTTP 500.
    Status500,
    /// HTTP 503.
    Status503,
}

/// The switch, and how many requests it answered.
#[derive(Debug, Default)]
pub struct Outage {
    /// 0 up, 1 answering 500, 2 answering 503.
    state: AtomicU8,
    answered: AtomicU64,
}

impl Outage {
    /// From now on every request is answered with `status`.
    pub fn begin(&self, status: HttpOutage) {
        let code = match status {
            HttpOutage::Status500 => 1,
            HttpOutage::Status503 => 2,
        };
        self.state.store(code, Ordering::SeqCst);
    }

    /// Serving again.
    pub fn end(&self) {
        self.state.store(0, Ordering::SeqCst);
    }

    /// Requests answered with the outage's status so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// The status to answer this request with, if down (and the request counted).
    pub(crate) fn answer(&self) -> Option<HttpOutage> {
        let status = match self.state.load(Ordering::Relaxed) {
            1 => HttpOutage::Status500,
            2 => HttpOutage::Status503,
            _ => return None,
        };
        self.answered.fetch_add(1, Ordering::Relaxed);
        Some(status)
    }
}
