//! The Lambda Runtime API (2018-06-01), served to a function of the user's.
//!
//! Any function built for Lambda — our `bootstrap` (`lambda_runtime`), a
//! Python handler under `awslambdaric`, a Java one under
//! `aws-lambda-java-runtime-interface-client` — runs against the local
//! event source mapping as it runs on AWS: it reads
//! `AWS_LAMBDA_RUNTIME_API`, long-polls for an event, and answers it.
//!
//! - **Endpoints.** `GET /2018-06-01/runtime/invocation/next` waits (no
//!   timeout: the documented long poll) until the mapping has an event,
//!   then answers 200 with the event and the headers
//!   `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` (epoch
//!   ms), `Lambda-Runtime-Invoked-Function-Arn` and
//!   `Lambda-Runtime-Trace-Id` (`Lambda-Runtime-Client-Context` and
//!   `-Cognito-Identity` are only sent for mobile SDK invocations; an event
//!   source mapping never has them). `POST …/invocation/{id}/response` and
//!   `…/{id}/error` (JSON `errorMessage`/`errorType`, and the
//!   `Lambda-Runtime-Function-Error-Type` header) answer 202 `{"status":"OK"}`;
//!   `POST /2018-06-01/runtime/init/error` likewise. A request id that is
//!   not the invocation in flight — unknown, answered already, or past its
//!   deadline — gets 400 `InvalidRequestID`, as Lambda answers; an init
//!   error while an invocation is in flight gets 403
//!   `InvalidStateTransition`; a response or error body over 6 MB
//!   ([`MAX_RESPONSE`]) gets 413 `RequestEntityTooLarge` and fails the
//!   invocation (`Function.ResponseSizeTooLarge`).
//! - **Instances.** The Runtime API hands one invocation at a time to one
//!   execution environment, so each poller of the mapping has an instance
//!   of its own: its own endpoint (`--runtime-api ADDR`: port P for the
//!   first, P+1 for the second…, or each its own free port when P is 0)
//!   and, with a command, its own function process. A poller invokes only
//!   its instance, so a partition's records are still handled in order.
//! - **Deadline.** The function's timeout counts from when the function
//!   took the event (`next` answered); `Lambda-Runtime-Deadline-Ms` says
//!   when that is. The invocation fails when it passes
//!   ([`Failure::TimedOut`]); as Lambda resets the execution environment
//!   after a timeout, a managed process is killed and started again (a new
//!   init), and a late answer from an unmanaged one gets 400. A function
//!   that never asks for the event fails it after the init timeout
//!   (Lambda's 10 s, [`INIT_TIMEOUT`]).
//! - **Processes.** With a command ([`FunctionCommand`]) each instance's
//!   process is started with `AWS_LAMBDA_RUNTIME_API` and the standard
//!   Lambda variables ([`lambda_env`]), in a process group of its own, its
//!   stdout and stderr on the mapping's stderr (the function's logs, as
//!   CloudWatch would have them). A process that exits fails the invocation
//!   it had in flight ([`Failure::Exited`]) and is started again, as Lambda
//!   starts a new execution environment — at once, or after a pause
//!   growing to 5 s while it keeps dying within a second of its start. An
//!   init error (`/init/error`) fails the next invocation with it.
//!
//! Nothing here reads a payload: the event and the answer are bytes passed
//! through.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The largest response or error body a function may send (Lambda's 6 MB
/// synchronous response limit).
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024;
/// How long a function may take to ask for an invocation (Lambda's init limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The lab template's `FunctionTimeout` default, the mapping's default timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Lambda's longest function timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);
/// The lab template's `MemorySize`.
pub const DEFAULT_MEMORY_MB: u32 = 1024;

const PREFIX: &str = "/2018-06-01/runtime";

/// The command that starts one function process (no shell: the program
/// and its arguments as they are given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCommand {
    /// The program (looked up on `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables set for the function after Lambda's own, so they may
    /// override them (the function's settings: `DELIVERY_STREAM_NAME`, …).
    pub env: Vec<(String, String)>,
    /// The working directory (`LAMBDA_TASK_ROOT`); the mapping's when none.
    pub dir: Option<PathBuf>,
    /// A file the function's stdout and stderr are appended to; the
    /// mapping's stderr when none.
    pub log: Option<PathBuf>,
}

impl FunctionCommand {
    /// `argv[0]` and the rest; `None` for an empty list.
    pub fn from_argv(argv: &[String]) -> Option<FunctionCommand> {
        let (program, args) = argv.split_first()?;
        Some(FunctionCommand { program: program.clone(), args: args.to_vec(), env: Vec::new(), dir: None, log: None })
    }
}

/// How the Runtime API is served and the function described to it.
#[derive(Debug, Clone)]
pub struct RuntimeApiConfig {
    /// The first instance's address; instance `i` listens on port + `i`
    /// (or on a free port each when the port is 0).
    pub listen: SocketAddr,
    /// Instances (one per poller).
    pub instances: usize,
    /// The function's timeout (1 s to 900 s).
    pub timeout: Duration,
    /// How long the function may take to ask for an invocation.
    pub init_timeout: Duration,
    /// `AWS_LAMBDA_FUNCTION_NAME`, and the name in the function's ARN.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u32,
    /// `AWS_REGION` of the function and its ARN; the environment's when `None`.
    pub region: Option<String>,
    /// `_HANDLER`, when given.
    pub handler: Option<String>,
    /// The function's processes, one per instance; `None` when the user
    /// starts the function themselves, pointed at [`RuntimeApi::addrs`].
    pub command: Option<FunctionCommand>,
}

impl RuntimeApiConfig {
    /// One instance on `listen`, the lab template's timeout and memory.
    pub fn new(listen: SocketAddr) -> Self {
        RuntimeApiConfig {
            listen,
            instances: 1,
            timeout: DEFAULT_TIMEOUT,
            init_timeout: INIT_TIMEOUT,
            function_name: "mskbench-function".to_owned(),
            memory_mb: DEFAULT_MEMORY_MB,
            region: None,
            handler: None,
            command: None,
        }
    }

    fn arn(&self) -> String {
        let region = self.region.as_deref().unwrap_or("local");
        format!("arn:aws:lambda:{region}:000000000000:function:{}", self.function_name)
    }
}

/// The Runtime API could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    /// A setting is out of range.
    #[error("runtime API: {0}")]
    Config(String),
    /// An instance's address could not be bound.
    #[error("runtime API: cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Why an invocation over the Runtime API failed. Each is a failed
/// invocation to the mapping: the batch is invoked again, nothing committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The function answered `/error`.
    #[error("the function reported {error_type}: {message}")]
    FunctionError {
        /// `errorType` (or the `Lambda-Runtime-Function-Error-Type` header).
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// The function reported an init error (`/init/error`).
    #[error("the function failed to initialise ({error_type}): {message}")]
    InitError {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// The deadline passed without an answer.
    #[error("the function did not answer within its timeout of {timeout:?} (the deadline passed)")]
    TimedOut {
        /// The function's timeout.
        timeout: Duration,
    },
    /// The function's process exited with the invocation in flight.
    #[error("the function's process exited ({status}) with the invocation in flight")]
    Exited {
        /// How it exited.
        status: String,
    },
    /// No function asked for the invocation in time.
    #[error(
        "no function asked for the invocation within {waited:?} (is one running with AWS_LAMBDA_RUNTIME_API={addr}?)"
    )]
    NotPickedUp {
        /// How long the mapping waited.
        waited: Duration,
        /// The instance's address.
        addr: SocketAddr,
    },
    /// The answer was larger than [`MAX_RESPONSE`].
    #[error("the function's answer is larger than {limit} bytes")]
    ResponseTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The function's process could not be started.
    #[error("cannot start the function ({program}): {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// The Runtime API was shut down.
    #[error("the runtime API was shut down")]
    Closed,
}

impl Failure {
    /// The error type Lambda reports for it (`Unhandled` errors' names).
    pub fn kind(&self) -> String {
        match self {
            Failure::FunctionError { error_type, .. } => error_type.clone(),
            Failure::InitError { .. } => "Runtime.InitError".to_owned(),
            Failure::TimedOut { .. } => "Sandbox.Timedout".to_owned(),
            Failure::Exited { .. } => "Runtime.ExitError".to_owned(),
            Failure::NotPickedUp { .. } => "Runtime.NotReady".to_owned(),
            Failure::ResponseTooLarge { .. } => "Function.ResponseSizeTooLarge".to_owned(),
            Failure::Spawn { .. } => "Runtime.InvalidEntrypoint".to_owned(),
            Failure::Closed => "Runtime.Closed".to_owned(),
        }
    }
}

/// What an invocation came back with.
type Answer = Result<Bytes, Failure>;

/// One invocation, queued or in flight.
#[derive(Debug)]
struct Call {
    id: String,
    event: Bytes,
    reply: oneshot::Sender<Answer>,
    /// Told the deadline once the function took the event.
    picked: Option<oneshot::Sender<Instant>>,
    /// Set when taken: the deadline and the process generation that took it.
    deadline: Option<Instant>,
    generation: u64,
}

#[derive(Debug, Default)]
struct Slot {
    queued: Option<Call>,
    running: Option<Call>,
    /// An init error not yet reported to an invocation.
    init_failed: Option<Failure>,
    /// Bumped when a managed process ends: a `next` still waiting from the
    /// dead process's connection must not take the next event.
    generation: u64,
    /// Whether the process of this generation has asked for an event.
    asked: bool,
    closed: bool,
    traces: u64,
}

/// One execution environment's endpoint.
#[derive(Debug)]
struct Instance {
    index: usize,
    addr: SocketAddr,
    arn: String,
    timeout: Duration,
    slot: Mutex<Slot>,
    /// Wakes `next` requests waiting for an event.
    wake: Notify,
    /// Asks the supervisor to kill the process of a generation (a timeout).
    reset: mpsc::UnboundedSender<u64>,
}

impl Instance {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running Runtime API: one endpoint (and process, with a command) per instance.
#[derive(Debug)]
pub struct RuntimeApi {
    instances: Vec<Arc<Instance>>,
    init_timeout: Duration,
    closing: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RuntimeApi {
    /// Binds every instance's endpoint and starts the function's
    /// processes, when there is a command. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`RuntimeApiError`] for a setting out of range or an address that
    /// cannot be bound.
    pub async fn start(config: RuntimeApiConfig) -> Result<RuntimeApi, RuntimeApiError> {
        Self::start_with(config, |_| {})
    }

    /// [`RuntimeApi::start`] without awaiting (it must still be called
    /// inside a tokio runtime's context), calling `bound` with every
    /// instance's address once all are bound and before any function
    /// process starts (`mskbench process` prints them there, ahead of the
    /// function's logs).
    ///
    /// # Errors
    /// As [`RuntimeApi::start`].
    pub fn start_with(
        config: RuntimeApiConfig,
        bound: impl FnOnce(&[SocketAddr]),
    ) -> Result<RuntimeApi, RuntimeApiError> {
        if config.instances == 0 {
            return Err(RuntimeApiError::Config("at least one instance is needed".into()));
        }
        if !(Duration::from_secs(1)..=MAX_TIMEOUT).contains(&config.timeout) {
            return Err(RuntimeApiError::Config(format!(
                "function timeout {:?} is outside 1s..=900s (Lambda's range)",
                config.timeout
            )));
        }
        let base = config.listen.port();
        if base != 0 && usize::from(base) + config.instances - 1 > usize::from(u16::MAX) {
            return Err(RuntimeApiError::Config(format!(
                "ports {base}..{} do not exist: give a lower port, or 0",
                usize::from(base) + config.instances - 1
            )));
        }
        let (closing, _) = watch::channel(false);
        let mut instances = Vec::new();
        let mut tasks = Vec::new();
        let mut supervisors = Vec::new();
        for index in 0..config.instances {
            let mut addr = config.listen;
            if base != 0 {
                // Checked above: the sum fits a port.
                addr.set_port(base + u16::try_from(index).unwrap_or(0));
            }
            let bind = |source| RuntimeApiError::Bind { addr, source };
            let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
            listener.set_nonblocking(true).map_err(bind)?;
            let listener = tokio::net::TcpListener::from_std(listener).map_err(bind)?;
            let addr = listener.local_addr().map_err(|source| RuntimeApiError::Bind { addr, source })?;
            let (reset, resets) = mpsc::unbounded_channel();
            let instance = Arc::new(Instance {
                index,
                addr,
                arn: config.arn(),
                timeout: config.timeout,
                slot: Mutex::default(),
                wake: Notify::new(),
                reset,
            });
            let router = router(instance.clone());
            let mut closed = closing.subscribe();
            tasks.push(tokio::spawn(async move {
                let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                    let _ = closed.wait_for(|c| *c).await;
                });
                if let Err(e) = serve.await {
                    warn!(%addr, "runtime API server failed: {e}");
                }
            }));
            if let Some(command) = &config.command {
                let env = lambda_env(&config, index, addr);
                let supervisor = Supervisor {
                    instance: instance.clone(),
                    command: command.clone(),
                    env,
                    closing: closing.subscribe(),
                    resets,
                };
                supervisors.push(supervisor);
            }
            instances.push(instance);
        }
        bound(&instances.iter().map(|i| i.addr).collect::<Vec<_>>());
        tasks.extend(supervisors.into_iter().map(|s| tokio::spawn(s.run())));
        Ok(RuntimeApi { instances, init_timeout: config.init_timeout, closing, tasks: Mutex::new(tasks) })
    }

    /// Each instance's bound address, in poller order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.instances.iter().map(|i| i.addr).collect()
    }

    /// Instances served.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// Invokes instance `instance` with `event` under `request_id` and
    /// waits for the function's answer, its failure, or the deadline.
    /// Dropped (a killed mapping), the invocation is withdrawn: a late
    /// answer to it gets 400.
    ///
    /// # Errors
    /// [`Failure`]: the function's error, an init error, a missed deadline,
    /// a process that exited, no function asking in time, an answer too
    /// large, or the API shut down.
    pub async fn invoke(&self, instance: usize, event: Vec<u8>, request_id: &str) -> Result<Bytes, Failure> {
        let Some(inst) = self.instances.get(instance % self.instances.len().max(1)) else {
            return Err(Failure::Closed);
        };
        let (reply, mut answer) = oneshot::channel();
        let (picked, mut taken) = oneshot::channel();
        {
            let mut slot = inst.lock();
            if slot.closed {
                return Err(Failure::Closed);
            }
            if let Some(failure) = slot.init_failed.take() {
                return Err(failure);
            }
            slot.queued = Some(Call {
                id: request_id.to_owned(),
                event: Bytes::from(event),
                reply,
                picked: Some(picked),
                deadline: None,
                generation: 0,
            });
        }
        inst.wake.notify_waiters();
        let _withdraw = Withdraw { instance: inst, id: request_id };
        let init_timer = tokio::time::sleep(self.init_timeout);
        tokio::pin!(init_timer);
        let deadline = tokio::select! {
            biased;
            done = &mut answer => return done.unwrap_or(Err(Failure::Closed)),
            at = &mut taken => match at {
                Ok(at) => at,
                Err(_) => return answer.await.unwrap_or(Err(Failure::Closed)),
            },
            () = &mut init_timer => {
                let taken = {
                    let mut slot = inst.lock();
                    if slot.queued.as_ref().is_some_and(|c| c.id == request_id) {
                        slot.queued = None;
                        return Err(Failure::NotPickedUp { waited: self.init_timeout, addr: inst.addr });
                    }
                    // Taken just now: its deadline is set.
                    slot.running.as_ref().filter(|c| c.id == request_id).and_then(|c| c.deadline)
                };
                match taken {
                    Some(at) => at,
                    None => return answer.await.unwrap_or(Err(Failure::Closed)),
                }
            }
        };
        tokio::select! {
            biased;
            done = &mut answer => done.unwrap_or(Err(Failure::Closed)),
            () = tokio::time::sleep_until(deadline.into()) => {
                let generation = {
                    let mut slot = inst.lock();
                    match slot.running.take_if(|c| c.id == request_id) {
                        Some(call) => call.generation,
                        // Answered at the deadline: that answer counts.
                        None => return answer.try_recv().unwrap_or(Err(Failure::Closed)),
                    }
                };
                warn!(request_id, instance = inst.index, "The function missed its deadline; the invocation failed");
                // Lambda resets the execution environment after a timeout.
                let _ = inst.reset.send(generation);
                Err(Failure::TimedOut { timeout: inst.timeout })
            }
        }
    }

    /// Stops the function's processes and the endpoints: the processes
    /// first (killed, and waited for), then every invocation still queued
    /// or in flight fails as [`Failure::Closed`], and a `next` still
    /// waiting — an unmanaged function's — gets 500, the Runtime API's
    /// "non-recoverable, exit" answer.
    pub async fn shutdown(&self) {
        let _ = self.closing.send(true);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        // One server per instance first, then the supervisors.
        let supervisors = tasks.split_off(self.instances.len().min(tasks.len()));
        for task in supervisors {
            finish(task).await;
        }
        for inst in &self.instances {
            let mut slot = inst.lock();
            slot.closed = true;
            for call in [slot.queued.take(), slot.running.take()].into_iter().flatten() {
                let _ = call.reply.send(Err(Failure::Closed));
            }
            drop(slot);
            inst.wake.notify_waiters();
        }
        for task in tasks {
            finish(task).await;
        }
    }
}

/// Waits for a task up to 5 s, then aborts it.
async fn finish(mut task: JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
        task.abort();
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        // The supervisors kill their processes on this; an abandoned API
        // leaves no function running.
        let _ = self.closing.send(true);
        for task in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            task.abort();
        }
    }
}

/// Withdraws an invocation whose caller went away (or finished).
struct Withdraw<'a> {
    instance: &'a Instance,
    id: &'a str,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let mut slot = self.instance.lock();
        if slot.queued.as_ref().is_some_and(|c| c.id == self.id) {
            slot.queued = None;
        }
        if slot.running.as_ref().is_some_and(|c| c.id == self.id) {
            slot.running = None;
        }
    }
}

/// The standard variables of a Lambda execution environment, for
/// instance `index` served at `addr`.
pub fn lambda_env(config: &RuntimeApiConfig, index: usize, addr: SocketAddr) -> Vec<(String, String)> {
    let name = &config.function_name;
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API".to_owned(), addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".to_owned(), "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), config.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_TIMEOUT".to_owned(), config.timeout.as_secs().to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".to_owned(), format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), format!("mskbench/[$LATEST]instance-{index}")),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".to_owned(), "on-demand".to_owned()),
        ("TZ".to_owned(), ":UTC".to_owned()),
    ];
    if let Some(dir) = config.command.as_ref().and_then(|c| c.dir.clone()).or_else(|| std::env::current_dir().ok()) {
        env.push(("LAMBDA_TASK_ROOT".to_owned(), dir.display().to_string()));
    }
    if let Some(handler) = &config.handler {
        env.push(("_HANDLER".to_owned(), handler.clone()));
    }
    if let Some(region) = &config.region {
        env.push(("AWS_REGION".to_owned(), region.clone()));
        env.push(("AWS_DEFAULT_REGION".to_owned(), region.clone()));
    }
    env
}

fn router(instance: Arc<Instance>) -> Router {
    Router::new()
        .route(&format!("{PREFIX}/invocation/next"), get(next))
        .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
        .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
        .route(&format!("{PREFIX}/init/error"), post(init_error))
        .with_state(instance)
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn accepted() -> Response {
    json(StatusCode::ACCEPTED, &serde_json::json!({ "status": "OK" }))
}

fn refused(status: StatusCode, error_type: &str, message: &str) -> Response {
    json(status, &serde_json::json!({ "errorMessage": message, "errorType": error_type }))
}

fn invalid_request_id(id: &str) -> Response {
    refused(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("Invalid request ID: {id} is not the invocation in flight (unknown, answered, or past its deadline)"),
    )
}

fn now_epoch_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

async fn next(State(inst): State<Arc<Instance>>) -> Response {
    let mut generation = None;
    loop {
        let notified = inst.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut slot = inst.lock();
            if slot.closed {
                return refused(StatusCode::INTERNAL_SERVER_ERROR, "Runtime.Closed", "the mapping is shutting down");
            }
            let current = *generation.get_or_insert(slot.generation);
            slot.asked = true;
            if current != slot.generation {
                // The process that asked is gone; its connection with it.
                return refused(StatusCode::INTERNAL_SERVER_ERROR, "Runtime.ExitError", "the process was restarted");
            }
            if let Some(mut call) = slot.queued.take() {
                let deadline = Instant::now() + inst.timeout;
                let deadline_ms = now_epoch_ms() + inst.timeout.as_millis();
                call.deadline = Some(deadline);
                call.generation = current;
                if let Some(picked) = call.picked.take() {
                    let _ = picked.send(deadline);
                }
                slot.traces += 1;
                let trace = format!(
                    "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                    (now_epoch_ms() / 1000) as u64,
                    slot.traces,
                    inst.index
                );
                let (id, event) = (call.id.clone(), call.event.clone());
                slot.running = Some(call);
                drop(slot);
                let mut response = Response::new(Body::from(event));
                let headers = response.headers_mut();
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                let mut put = |name: &'static str, value: String| {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        headers.insert(name, v);
                    }
                };
                put("lambda-runtime-aws-request-id", id);
                put("lambda-runtime-deadline-ms", deadline_ms.to_string());
                put("lambda-runtime-invoked-function-arn", inst.arn.clone());
                put("lambda-runtime-trace-id", trace);
                return response;
            }
        }
        notified.await;
    }
}

/// Reads an answer body, or fails the invocation as too large.
async fn answer_body(inst: &Instance, id: &str, body: Body) -> Result<Bytes, Response> {
    match axum::body::to_bytes(body, MAX_RESPONSE).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let too_large = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .any(|e| e.to_string().contains("length limit exceeded"));
            if !too_large {
                return Err(refused(StatusCode::BAD_REQUEST, "InvalidRequest", &format!("body unreadable: {e}")));
            }
            if let Some(call) = inst.lock().running.take_if(|c| c.id == id) {
                let _ = call.reply.send(Err(Failure::ResponseTooLarge { limit: MAX_RESPONSE }));
            }
            Err(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("the body is larger than {MAX_RESPONSE} bytes"),
            ))
        }
    }
}

async fn response(State(inst): State<Arc<Instance>>, Path(id): Path<String>, body: Body) -> Response {
    let bytes = match answer_body(&inst, &id, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(call) = inst.lock().running.take_if(|c| c.id == id) else { return invalid_request_id(&id) };
    let _ = call.reply.send(Ok(bytes));
    accepted()
}

/// `errorType` and `errorMessage` of an error body, the header's type when
/// the body has none.
fn error_parts(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
    let header = headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let error_type = field("errorType").or(header).unwrap_or_else(|| "Unhandled".to_owned());
    let message = field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(1000).collect());
    (error_type, message)
}

async fn error(State(inst): State<Arc<Instance>>, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match answer_body(&inst, &id, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(call) = inst.lock().running.take_if(|c| c.id == id) else { return invalid_request_id(&id) };
    let (error_type, message) = error_parts(&headers, &bytes);
    let _ = call.reply.send(Err(Failure::FunctionError { error_type, message }));
    accepted()
}

async fn init_error(State(inst): State<Arc<Instance>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_RESPONSE).await {
        Ok(b) => b,
        Err(_) => {
            return refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("the body is larger than {MAX_RESPONSE} bytes"),
            );
        }
    };
    let (error_type, message) = error_parts(&headers, &bytes);
    let failure = Failure::InitError { error_type, message };
    warn!(instance = inst.index, "The function reported an init error: {failure}");
    let mut slot = inst.lock();
    if slot.running.is_some() {
        return refused(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "an init error cannot be reported with an invocation in flight",
        );
    }
    match slot.queued.take() {
        Some(call) => {
            let _ = call.reply.send(Err(failure));
        }
        None => slot.init_failed = Some(failure),
    }
    accepted()
}

/// Starts an instance's function process and starts it again when it ends.
struct Supervisor {
    instance: Arc<Instance>,
    command: FunctionCommand,
    env: Vec<(String, String)>,
    closing: watch::Receiver<bool>,
    resets: mpsc::UnboundedReceiver<u64>,
}

/// Pause before starting a process again that died within [`QUICK_DEATH`].
const RESTART_PAUSE: Duration = Duration::from_millis(100);
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(5);
const QUICK_DEATH: Duration = Duration::from_secs(1);

impl Supervisor {
    async fn run(mut self) {
        let mut pause = RESTART_PAUSE;
        let mut starts = 0u64;
        while !self.closed() {
            let generation = self.instance.lock().generation;
            starts += 1;
            let started = Instant::now();
            match self.spawn() {
                Ok(mut child) => {
                    info!(instance = self.instance.index, pid = child.id(), starts, "Function process started");
                    let status = self.watch(&mut child, generation).await;
                    let status = status.map_or_else(|e| format!("wait failed: {e}"), describe);
                    self.ended(&status);
                    if self.closed() {
                        return;
                    }
                    warn!(instance = self.instance.index, status, "Function process ended; starting it again");
                }
                Err(reason) => {
                    let failure = Failure::Spawn { program: self.command.program.clone(), reason };
                    warn!(instance = self.instance.index, "{failure}");
                    let mut slot = self.instance.lock();
                    match slot.queued.take() {
                        Some(call) => {
                            let _ = call.reply.send(Err(failure));
                        }
                        None => slot.init_failed = Some(failure),
                    }
                }
            }
            if started.elapsed() < QUICK_DEATH {
                let mut closing = self.closing.clone();
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = closed(&mut closing) => return,
                }
                pause = (pause * 2).min(MAX_RESTART_PAUSE);
            } else {
                pause = RESTART_PAUSE;
            }
        }
    }

    /// Shut down, or the API dropped.
    fn closed(&self) -> bool {
        *self.closing.borrow() || self.closing.has_changed().is_err()
    }

    fn spawn(&self) -> Result<tokio::process::Child, String> {
        let mut cmd = tokio::process::Command::new(&self.command.program);
        cmd.args(&self.command.args)
            .envs(self.env.iter().cloned())
            .envs(self.command.env.iter().cloned())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own group, so that a kill reaches whatever it started.
            .process_group(0);
        if let Some(path) = &self.command.log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open its log {}: {e}", path.display()))?;
            let copy = file.try_clone().map_err(|e| e.to_string())?;
            cmd.stdout(Stdio::from(file)).stderr(Stdio::from(copy));
        } else {
            // The function's stdout (its logs) joins the mapping's stderr:
            // the mapping's stdout carries its own output.
            match std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
                Ok(fd) => cmd.stdout(Stdio::from(fd)),
                Err(_) => cmd.stdout(Stdio::inherit()),
            };
        }
        if let Some(dir) = &self.command.dir {
            cmd.current_dir(dir);
        }
        cmd.spawn().map_err(|e| e.to_string())
    }

    /// Waits for the process to end, killing it on a reset of its
    /// generation or on shutdown.
    async fn watch(&mut self, child: &mut tokio::process::Child, generation: u64) -> std::io::Result<ExitStatus> {
        loop {
            tokio::select! {
                status = child.wait() => return status,
                reset = self.resets.recv() => match reset {
                    Some(g) if g == generation => {
                        kill_group(child);
                        return child.wait().await;
                    }
                    Some(_) => {}
                    None => {
                        kill_group(child);
                        return child.wait().await;
                    }
                },
                () = closed(&mut self.closing) => {
                    kill_group(child);
                    return child.wait().await;
                }
            }
        }
    }

    /// The process ended: the invocation it had in flight fails, and a
    /// `next` its connection left waiting gives up.
    fn ended(&self, status: &str) {
        let mut slot = self.instance.lock();
        slot.generation += 1;
        let asked = std::mem::take(&mut slot.asked);
        if let Some(call) = slot.running.take() {
            let _ = call.reply.send(Err(Failure::Exited { status: status.to_owned() }));
        } else if !asked && let Some(call) = slot.queued.take() {
            // It died in its init: the invocation waiting for it fails, as
            // Lambda fails the invocation whose init failed.
            let status = format!("{status}, during its init, before asking for an invocation");
            let _ = call.reply.send(Err(Failure::Exited { status }));
        }
        drop(slot);
        self.instance.wake.notify_waiters();
    }
}

/// Resolves once the API shuts down or is dropped.
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Kills the child's process group (the child and what it started).
fn kill_group(child: &mut tokio::process::Child) {
    let group = child.id().and_then(|pid| i32::try_from(pid).ok()).and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_type_and_message_and_the_header_stands_in() {
        let mut headers = HeaderMap::new();
        headers.insert("lambda-runtime-function-error-type", HeaderValue::from_static("Runtime.HandlerError"));
        let body = br#"{"errorMessage":"bad record","errorType":"ValueError","stackTrace":[]}"#;
        assert_eq!(error_parts(&headers, body), ("ValueError".to_owned(), "bad record".to_owned()));
        assert_eq!(error_parts(&headers, b"oops"), ("Runtime.HandlerError".to_owned(), "oops".to_owned()));
        assert_eq!(error_parts(&HeaderMap::new(), b"{}").0, "Unhandled");
    }

    #[test]
    fn the_environment_is_lambdas_and_names_each_instances_endpoint() {
        let mut config = RuntimeApiConfig::new("127.0.0.1:0".parse().unwrap());
        config.function_name = "fn".into();
        config.region = Some("us-east-1".into());
        config.handler = Some("handler.fn".into());
        let env = lambda_env(&config, 1, "127.0.0.1:9002".parse().unwrap());
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9002"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("fn"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_TIMEOUT"), Some("300"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("1024"));
        assert_eq!(get("_HANDLER"), Some("handler.fn"));
        assert_eq!(get("AWS_REGION"), Some("us-east-1"));
        assert_eq!(config.arn(), "arn:aws:lambda:us-east-1:000000000000:function:fn");
    }
}
