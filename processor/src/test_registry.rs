//! A hand-rolled HTTP registry on 127.0.0.1 for unit tests, for the answers
//! the registry stand-in never gives: any status and body per path, or
//! accepting a request and never answering it; and events that need many
//! schemas of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// What the server does with one request.
pub(crate) enum Reply {
    /// Answer with this status and JSON body after the delay.
    After(Duration, u16, String),
    /// Read the request and keep the connection open without answering.
    Never,
}

impl Reply {
    /// Answer at once.
    pub(crate) fn now(status: u16, body: impl Into<String>) -> Reply {
        Reply::After(Duration::ZERO, status, body.into())
    }
}

/// A running stub: its URL and the requests it has read so far. The server
/// task ends with the test's runtime.
pub(crate) struct Stub {
    pub(crate) url: String,
    requests: Arc<AtomicUsize>,
}

impl Stub {
    /// Requests read (heads complete) so far.
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves `route(path)` for every request.
pub(crate) async fn serve(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&requests);
    let route = Arc::new(route);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (seen, route) = (Arc::clone(&seen), Arc::clone(&route));
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
                let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                match route(&path) {
                    Reply::After(delay, status, body) => {
                        tokio::time::sleep(delay).await;
                        let answer = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                    Reply::Never => {
                        // Hold the connection until the client gives up.
                        while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                }
            });
        }
    });
    Stub { url, requests }
}

/// An event of `n` records, each with its own Confluent id `1..=n`.
pub(crate) fn distinct_ids_event(n: u32) -> Vec<u8> {
    let records: Vec<_> = (1..=n)
        .map(|id| {
            let mut value = Vec::new();
            mskbench_core::wire::frame_confluent(id, &[2, b'x'], &mut value);
            let mut b64 = String::new();
            mskbench_core::b64::encode_append(&value, &mut b64);
            serde_json::json!({
                "topic": "ExampleTopic", "partition": 0, "offset": id, "timestamp": 0,
                "timestampType": "CREATE_TIME", "value": b64, "headers": [],
            })
        })
        .collect();
    serde_json::json!({ "eventSource": "aws:kafka", "records": { "ExampleTopic-0": records } }).to_string().into_bytes()
}
