//! Binding, serving and stopping one axum router; shared by both servers.
//!
//! A server is a tokio task running `axum::serve` on a bound listener, plus
//! a one-shot channel that starts a graceful shutdown: the listener closes,
//! idle connections are dropped and in-flight requests finish. A client
//! that holds a request open cannot hold the stop hostage: after
//! [`GRACE`] the task is aborted. Aborting it does not cancel connections
//! already running (axum gives each a task of its own), so a request can
//! still reach its handler after the stop returned: the Firehose stand-in
//! closes its streams before its final flush for that reason.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a stop waits for in-flight requests.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// Failures to bind or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// Serving stopped with an I/O error.
    #[error("server on {addr} failed")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// What failed.
        source: io::Error,
    },
    /// The server task panicked or was cancelled.
    #[error("server task on {addr} panicked or was cancelled")]
    Task {
        /// The bound address.
        addr: SocketAddr,
    },
}

/// One serving router.
#[derive(Debug)]
pub(crate) struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Running {
    /// Binds `addr` (port 0 picks a free port) and serves `router` on a new task.
    pub(crate) async fn start(addr: SocketAddr, router: Router) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // A dropped sender also means stop.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Running { addr, stop, task })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, without a trailing slash.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (at most `grace`,
    /// normally [`GRACE`]). A connection still busy after it is not
    /// cancelled (axum runs each on a task of its own): the caller must
    /// refuse what such a request asks once it has moved on.
    pub(crate) async fn stop(self, grace: Duration) -> Result<(), ServeError> {
        let Running { addr, stop, mut task } = self;
        let _ = stop.send(());
        match tokio::time::timeout(grace, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(source))) => Err(ServeError::Serve { addr, source }),
            Ok(Err(_)) => Err(ServeError::Task { addr }),
            Err(_elapsed) => {
                task.abort();
                Ok(())
            }
        }
    }
}

/// A request body longer than allowed, or one that broke off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body could not be read: {0}")]
    Read(String),
}

/// Reads a whole body, refusing more than `limit` bytes without buffering them.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        // axum reports an exceeded limit as an error whose source chain
        // contains `LengthLimitError`.
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        while let Some(e) = source {
            if e.to_string().contains("length limit exceeded") {
                return BodyError::TooLarge { limit };
            }
            source = e.source();
        }
        BodyError::Read(err.to_string())
    })
}
