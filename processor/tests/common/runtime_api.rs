//! A stand-in for the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), enough
//! for `lambda_runtime`: `GET /2018-06-01/runtime/invocation/next` hands out
//! queued events, `POST …/{id}/response` and `…/{id}/error` record the
//! outcome. Plain blocking HTTP/1.1 on a loopback port, keep-alive, one
//! thread per connection. Once the queue is empty, `next` waits; every
//! thread stops when the stand-in is dropped.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(String),
    Error(String),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Vec<u8>)>,
    outcomes: Vec<(String, Outcome)>,
    /// When the first `next` arrived.
    first_next: Option<Instant>,
}

/// The running stand-in.
pub struct RuntimeApi {
    pub addr: String,
    state: Arc<(Mutex<State>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, st) = (s.clone(), st.clone());
                        std::thread::spawn(move || serve(conn, &s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        RuntimeApi { addr, state, stop }
    }

    /// Queues an event under `request_id`.
    pub fn invoke(&self, request_id: &str, event: Vec<u8>) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap().queue.push_back((request_id.to_owned(), event));
        cv.notify_all();
    }

    /// Waits up to `timeout` for the outcome of `request_id`.
    pub fn outcome(&self, request_id: &str, timeout: Duration) -> Option<Outcome> {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some((_, o)) = state.outcomes.iter().find(|(id, _)| id == request_id) {
                return Some(o.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = cv.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits up to `timeout` for the function's first `next` request.
    pub fn first_next(&self, timeout: Duration) -> Option<Instant> {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some(t) = state.first_next {
                return Some(t);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = cv.wait_timeout(state, left).unwrap().0;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.state.1.notify_all();
    }
}

fn serve(conn: TcpStream, state: &(Mutex<State>, Condvar), stop: &AtomicBool) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    while !stop.load(Ordering::SeqCst) {
        let mut head = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        let path = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
        let (lock, cv) = state;
        if path.ends_with("/invocation/next") {
            let mut s = lock.lock().unwrap();
            s.first_next.get_or_insert_with(Instant::now);
            cv.notify_all();
            let (id, event) = loop {
                if let Some(e) = s.queue.pop_front() {
                    break e;
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                s = cv.wait_timeout(s, Duration::from_millis(100)).unwrap().0;
            };
            drop(s);
            let deadline =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 900_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:msk\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                event.len()
            );
            if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&event)).is_err() {
                return;
            }
        } else {
            let parts: Vec<&str> = path.split('/').collect();
            let text = String::from_utf8_lossy(&body).into_owned();
            if let [.., id, kind] = parts.as_slice() {
                let outcome = if *kind == "response" { Outcome::Response(text) } else { Outcome::Error(text) };
                lock.lock().unwrap().outcomes.push(((*id).to_owned(), outcome));
                cv.notify_all();
            }
            let ok = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n";
            if writer.write_all(ok.as_bytes()).is_err() {
                return;
            }
        }
    }
}
