//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, off by
//! default): the stand-ins' request handling without sockets, so a target
//! can run it thousands of times a second on bytes libFuzzer chooses.
//!
//! Each entry point is the code the HTTP handlers call, not a copy: the
//! Firehose operations as `POST /` dispatches them once it has read
//! `X-Amz-Target` and the body, and the registry's whole axum router over
//! an in-memory store. Not a stable API: nothing outside `fuzz/` uses it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;

use crate::firehose::FirehoseConfig;
use crate::firehose::service::App as FirehoseApp;
use crate::registry::{Level, service, store::Store};

/// The stream every [`FirehoseCalls`] starts with.
pub const FIREHOSE_STREAM: &str = "s";

/// The Firehose stand-in's operations on a fresh endpoint.
#[derive(Debug)]
pub struct FirehoseCalls {
    app: FirehoseApp,
}

impl FirehoseCalls {
    /// An endpoint with the default quota and no faults, delivering under
    /// `s3_dir`, with stream [`FIREHOSE_STREAM`] created. Nothing is ever
    /// delivered (no delivery task runs); `CreateDeliveryStream` creates
    /// the prefix's directories under `s3_dir`, as it does when served.
    ///
    /// # Errors
    /// The creation error of the first stream, as text.
    pub fn new(s3_dir: &Path) -> Result<Self, String> {
        let config = FirehoseConfig { s3_dir: s3_dir.to_owned(), ..FirehoseConfig::default() };
        let app = FirehoseApp::new(config);
        app.create_stream(FIREHOSE_STREAM, None, None, None, app.config.buffering).map_err(|e| e.to_string())?;
        Ok(FirehoseCalls { app })
    }

    /// One call of `operation` (what follows `Firehose_20150804.` in
    /// `X-Amz-Target`) with `body`.
    ///
    /// # Errors
    /// The error's `__type` and message, as the endpoint answers them.
    pub fn call(&self, operation: &str, body: &[u8]) -> Result<serde_json::Value, (&'static str, String)> {
        self.app.call(operation, body).map_err(|e| (e.code.as_str(), e.message))
    }
}

/// The registry stand-in's routes over a new in-memory store with
/// Confluent's default compatibility (`BACKWARD`), reading bodies up to
/// `max_body_bytes`: what `RegistryServer` serves, without a listener.
/// Changes run on tokio's blocking pool, so requests need a runtime.
pub fn registry_router(max_body_bytes: usize) -> Router {
    let store = Store::in_memory(Level::Backward);
    service::router(Arc::new(service::App {
        store: Arc::new(Mutex::new(store)),
        max_body_bytes,
        outage: Arc::new(crate::Outage::default()),
    }))
}
