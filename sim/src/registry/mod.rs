//! A local Confluent Schema Registry for Avro schemas.
//!
//! [`RegistryServer::start`] binds (127.0.0.1 on a free port by default) and
//! serves the parts of Confluent's REST API v1 that serializers, the lab's
//! Lambda function and operators use: subjects and versions, schemas by id,
//! lookup, delete, global and per-subject compatibility configuration, and
//! compatibility tests. Confluent's Python and Java clients work against it.
//!
//! - `store`: subjects, versions, ids, the compatibility rules (apache-avro's
//!   schema-resolution checker) and persistence;
//! - `service`: the REST routes and Confluent's response and error shapes.
//!
//! Not served: schema references, non-Avro schema types, modes, contexts,
//! soft-delete listings (`?deleted=true` is accepted and ignored) and
//! deleting single versions.

pub(crate) mod service;
pub(crate) mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use store::Store;
pub use store::{Level, PersistError};

use crate::server::{Running, ServeError};

/// Configuration of one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The data file; `None` keeps everything in memory.
    pub data: Option<PathBuf>,
    /// Global compatibility level of a new registry (a data file's own wins).
    pub compatibility: Level,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: None,
            // Confluent's default.
            compatibility: Level::Backward,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Failures to start or serve.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The data file could not be read or written.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// The listener could not bind, or serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// A running registry.
#[derive(Debug)]
pub struct RegistryServer {
    http: Running,
    outage: Arc<crate::Outage>,
}

impl RegistryServer {
    /// Loads the data file (if any), binds and serves. Must be called inside
    /// a tokio runtime; the server runs on it.
    pub async fn start(config: RegistryConfig) -> Result<Self, RegistryError> {
        let store = match &config.data {
            Some(path) => Store::open(path, config.compatibility)?,
            None => Store::in_memory(config.compatibility),
        };
        let outage = Arc::new(crate::Outage::default());
        let app = Arc::new(service::App {
            store: Arc::new(Mutex::new(store)),
            max_body_bytes: config.max_body_bytes,
            outage: outage.clone(),
        });
        let http = Running::start(config.listen, service::router(app)).await?;
        Ok(RegistryServer { http, outage })
    }

    /// `http://127.0.0.1:PORT`: the registry URL for clients.
    pub fn url(&self) -> String {
        self.http.url()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.http.addr()
    }

    /// The switch that takes the registry down (every request answered
    /// 5xx) and up again, for fault windows.
    pub fn outage(&self) -> Arc<crate::Outage> {
        self.outage.clone()
    }

    /// Stops serving; every acknowledged change is already on disk.
    pub async fn shutdown(self) -> Result<(), RegistryError> {
        Ok(self.http.stop(crate::server::GRACE).await?)
    }
}
