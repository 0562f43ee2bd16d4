//! A TCP proxy in front of a stand-in, for fault windows on the network path.
//!
//! Clients connect to the proxy; it connects to the stand-in (`upstream`)
//! and copies bytes both ways. Its [`ProxyMode`] changes while it runs:
//!
//! - [`ProxyMode::Pass`]: bytes go through as they come.
//! - [`ProxyMode::Refuse`]: the listening socket is closed, so a new
//!   connection is refused by the kernel (`ECONNREFUSED`) exactly as a
//!   stopped server's would be, and every open connection is cut (both
//!   sockets closed). Leaving the mode binds the same address again.
//! - [`ProxyMode::Delay`]: every chunk read is written on after the delay,
//!   each way, in order. The delay is added to each chunk's time of
//!   arrival, not to the previous write, so chunks overlap their waits:
//!   up to 256 chunks wait at once each way, so throughput is capped at
//!   256 chunks per delay (about 26 chunks/s at the longest, 10 s).
//!
//! Why a proxy rather than a switch inside each stand-in: refusing
//! connections and slowing a socket are properties of the network, which
//! the Kafka, registry and Firehose clients each meet in their own
//! connection code; a proxy reaches them all without touching the part
//! behind it. For Kafka the broker must advertise the proxy's address
//! (`EmbeddedBroker::start_behind_proxy`), or clients would bypass it after
//! bootstrapping.
//!
//! Cost: one task per direction per connection and a copy per chunk
//! (16 KiB reads); in `Pass` mode no timer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a connection to the upstream may take before the client's
/// connection is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a lost rebind is tried again.
const REBIND_EVERY: Duration = Duration::from_millis(50);

/// What the proxy does with connections now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pass bytes through.
    Pass,
    /// Refuse new connections and cut open ones.
    Refuse,
    /// Delay every chunk by this much, each way.
    Delay(Duration),
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the proxy to {upstream}")]
pub struct ProxyError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Where it would forward to.
    pub upstream: SocketAddr,
    /// Why binding failed.
    pub source: io::Error,
}

/// What the proxy did, counted as it went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProxyCounts {
    /// Connections accepted.
    pub accepted: u64,
    /// Open connections cut when refusing began.
    pub cut: u64,
    /// Chunks written on after a delay.
    pub delayed_chunks: u64,
    /// Times the listener was closed to refuse connections.
    pub refusals: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    cut: AtomicU64,
    delayed_chunks: AtomicU64,
    refusals: AtomicU64,
}

/// A running proxy.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `listen` (port 0 picks a free port) and forwards to `upstream`, in [`ProxyMode::Pass`].
    ///
    /// # Errors
    /// [`ProxyError`] when `listen` cannot be bound.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> Result<FaultProxy, ProxyError> {
        let error = |source| ProxyError { addr: listen, upstream, source };
        let listener = TcpListener::bind(listen).await.map_err(error)?;
        let addr = listener.local_addr().map_err(error)?;
        let (mode, rx) = watch::channel(ProxyMode::Pass);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, addr, upstream, rx, counters.clone()));
        Ok(FaultProxy { addr, mode, counters, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the mode; open connections follow at once.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> ProxyCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        ProxyCounts {
            accepted: get(&c.accepted),
            cut: get(&c.cut),
            delayed_chunks: get(&c.delayed_chunks),
            refusals: get(&c.refusals),
        }
    }

    /// Stops accepting and cuts every connection (dropping the proxy does too).
    pub fn shutdown(&self) {
        self.mode.send_replace(ProxyMode::Refuse);
        self.task.abort();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<ProxyMode>,
    counters: Arc<Counters>,
) {
    let mut listener = Some(listener);
    loop {
        let now = *mode.borrow_and_update();
        if now == ProxyMode::Refuse {
            if listener.take().is_some() {
                counters.refusals.fetch_add(1, Ordering::Relaxed);
            }
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let Some(l) = listener.as_ref() else {
            // Back from refusing: the same address again (SO_REUSEADDR is set
            // by tokio on Unix, so connections in TIME_WAIT do not block it).
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!("proxy cannot listen on {addr} again, retrying: {e}");
                    tokio::time::sleep(REBIND_EVERY).await;
                }
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((client, _)) => {
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(connection(client, upstream, mode.clone(), counters.clone()));
                }
                Err(e) => tracing::warn!("proxy on {addr}: accept failed: {e}"),
            },
            changed = mode.changed() => if changed.is_err() { return },
        }
    }
}

/// One client's connection: copied both ways until either side closes or
/// the proxy starts refusing.
async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<ProxyMode>,
    counters: Arc<Counters>,
) {
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("proxy cannot reach {upstream}: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!("proxy: {upstream} did not accept within {} s", CONNECT_TIMEOUT.as_secs());
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pipe(client_read, server_write, mode.clone(), counters.clone());
    let down = pipe(server_read, client_write, mode.clone(), counters.clone());
    let refused = async {
        loop {
            if *mode.borrow_and_update() == ProxyMode::Refuse {
                return;
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        () = refused => { counters.cut.fetch_add(1, Ordering::Relaxed); }
    }
    // Dropping the halves closes both sockets.
}

/// Copies `from` to `to`, each chunk after the delay the mode says when it was read.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: watch::Receiver<ProxyMode>,
    counters: Arc<Counters>,
) {
    // Bounded: a slow reader on the far side slows the near side down, as TCP would.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = match *mode.borrow() {
                ProxyMode::Delay(d) => Instant::now() + d,
                ProxyMode::Pass | ProxyMode::Refuse => Instant::now(),
            };
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            if due > Instant::now() {
                counters.delayed_chunks.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep_until(due).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn refusing_closes_the_port_and_cuts_connections_then_passing_opens_it_again() {
        let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), echo_server().await).await.unwrap();
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        open.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        open.read_exact(&mut one).await.unwrap();

        proxy.set(ProxyMode::Refuse);
        // The open connection is cut: its next read ends.
        let n = tokio::time::timeout(Duration::from_secs(5), open.read(&mut one)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0, "an open connection is closed when refusing begins");
        // New ones are refused by the kernel, once the listener is gone.
        let refused = async {
            loop {
                match TcpStream::connect(proxy.addr()).await {
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), refused).await.unwrap();

        proxy.set(ProxyMode::Pass);
        let back = async {
            loop {
                if let Ok(bytes) = round_trip(proxy.addr()).await {
                    return bytes;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), back).await.unwrap(), b"ping");
        let counts = proxy.counts();
        assert_eq!((counts.cut, counts.refusals), (1, 1), "{counts:?}");
        proxy.shutdown();
    }

    #[tokio::test]
    async fn a_delay_holds_every_chunk_each_way() {
        let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), echo_server().await).await.unwrap();
        proxy.set(ProxyMode::Delay(Duration::from_millis(100)));
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
        // Out and back, each held.
        assert!(proxy.counts().delayed_chunks >= 2, "{:?}", proxy.counts());
        proxy.set(ProxyMode::Pass);
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
        proxy.shutdown();
    }
}
