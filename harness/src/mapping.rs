//! Steps 2 and 5 from the processor's side: the Lambda handler behind a
//! local event source mapping, started, settled and stopped.
//!
//! The handler is configured as the Lambda function is
//! ([`crate::configure::processor_config`]) and counts into a [`Live`] the
//! sampler reads. The mapping (`mskbench_processor::esm`, rdkafka pollers,
//! one per partition) runs on a thread of its own and calls the handler on
//! the run's runtime; it commits offsets only after the handler succeeded.
//! Settling waits until every poller holds its partitions: a rebalance
//! after records flow would redeliver uncommitted batches as duplicates.
//!
//! A fault window can crash the processor ([`Mapping::crash`]: the mapping
//! killed mid-batch, as its process dying would) and start a new one in
//! the same group ([`Mapping::restart`]), with a handler of its own
//! counting into the same [`Live`]; the uncommitted records come back to it.
//!
//! With `[processor] function = "runtime-api"` the mapping invokes a
//! function of the user's over the Lambda Runtime API instead
//! (`mskbench_processor::esm::runtime_api`): one instance and one process
//! of `[processor] command` per poller, given the lab's variables for this
//! run's parts ([`crate::configure::function_env`]). The mapping counts
//! into the same [`Live`] (invocations, records settled; what the function
//! sent is only seen in what reaches the delivery stream), and records too
//! large for any event go to the run's dead-letter directory. A crash
//! ends the function's processes with the mapping; the restart starts new
//! ones (a new init).
//!
//! The drain's measure is [`Pending`]: the acknowledged records, by
//! (partition, offset), that no succeeded invocation has settled yet. A
//! redelivered batch settles its records again, so counting completions
//! would overshoot and end the drain early; a set of distinct coordinates
//! cannot. Cost: one bit per offset of each partition's acknowledged span.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mskbench_processor::config::DeadLetterTarget;
use mskbench_processor::dead_letter::DeadLetterSink;
use mskbench_processor::esm::runtime_api::{FunctionCommand, RuntimeApi, RuntimeApiConfig};
use mskbench_processor::esm::{self, EsmConfig, EsmError, EsmStats, External, Function, Kill};
use mskbench_processor::{Config, Handler, Live};
use mskbench_scenarios::FunctionKind;

use crate::configure::{function_env, processor_config};
use crate::parts::{self, Started};
use crate::plan::Plan;

/// How long the consumer group may take to settle before producing starts anyway.
const SETTLE_PATIENCE: Duration = Duration::from_secs(30);

/// The running processor: the handler's counters, and the mapping now
/// running (none between a crash and its restart).
#[derive(Debug)]
pub(crate) struct Mapping {
    pub live: Arc<Live>,
    config: Config,
    /// A function of the user's, when the scenario has one.
    external: Option<ExternalSpec>,
    esm: EsmConfig,
    running: Mutex<Option<Running>>,
}

/// What starts a function of the user's: its Runtime API settings, and
/// where the records too large for any event go.
#[derive(Debug)]
struct ExternalSpec {
    api: RuntimeApiConfig,
    dead_letter: DeadLetterTarget,
    s3: mskbench_aws::Access,
}

/// One mapping's thread and its switches.
#[derive(Debug)]
struct Running {
    assigned: Arc<AtomicUsize>,
    invoking: Arc<AtomicUsize>,
    kill: Kill,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<EsmStats, EsmError>>,
    /// The function's processes, when it is the user's.
    external: Option<Arc<External>>,
}

/// What the mapping did, once stopped.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub stats: Option<EsmStats>,
    pub error: Option<String>,
}

/// What a crash hit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crashed {
    /// Invocations in flight when the mapping was killed (dropped, uncommitted).
    pub invocations_cut: u64,
}

/// How long a crash waits for an invocation to be in flight, so that it
/// lands mid-batch; after it, the crash happens anyway.
const MID_BATCH_PATIENCE: Duration = Duration::from_secs(2);

impl Mapping {
    /// Builds the handler and starts the mapping on the topic, from the
    /// offsets where the run's records start.
    pub(crate) async fn start(plan: &Plan, started: &Started) -> Result<Mapping> {
        let live = Arc::new(Live::tracking_records());
        let topic = plan.scenario.kafka.topic.clone();
        if started.start_offsets.values().any(|&o| o > 0) {
            // A topic with older records: the mapping starts where this run does.
            let (k, t, g, s) =
                (started.kafka.clone(), topic.clone(), plan.group.clone(), started.start_offsets.clone());
            tokio::task::spawn_blocking(move || parts::commit_start(&k, &t, &g, &s)).await??;
        }
        let processor = &plan.scenario.processor;
        let mut esm = EsmConfig::new(&started.kafka.brokers, &topic, &plan.group);
        esm.connection = started.kafka.clone();
        esm.kafka = plan.scenario.kafka.properties.clone().into_iter().collect();
        esm.batch_size = processor.batch_size.0 as usize;
        esm.batch_window = processor.batch_window;
        esm.pollers = plan.partitions();
        esm.failure = failure_handling(&plan.scenario.mapping, started)?;
        esm.live = Some(live.clone());
        esm.reserved_concurrency = plan.scenario.mapping.reserved_concurrency.map(|n| n as usize);
        let external = match processor.function {
            FunctionKind::Handler => None,
            FunctionKind::RuntimeApi => {
                let mut api = RuntimeApiConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
                api.instances = esm.pollers;
                api.timeout = processor.timeout;
                api.region = Some(started.aws.region.clone());
                api.function_name = format!("mskbench-{}", plan.scenario.name);
                let mut command = FunctionCommand::from_argv(&processor.command)
                    .context("processor.command: the command that starts the function is empty")?;
                command.env = function_env(plan, started).await?;
                command.log = Some(plan.out.join("function.log"));
                api.command = Some(command);
                let dead_letter = DeadLetterTarget::Directory(started.dead_letter_dir.clone());
                let s3 = started.aws.access(plan.aws.endpoints.s3.clone(), Duration::from_secs(10));
                Some(ExternalSpec { api, dead_letter, s3 })
            }
        };
        let mapping =
            Mapping { live, config: processor_config(plan, started), external, esm, running: Mutex::new(None) };
        mapping.launch()?;
        Ok(mapping)
    }

    /// Starts a mapping with a handler of its own (a new process: its
    /// schema cache starts empty) counting into the run's [`Live`], or
    /// with a function of the user's: new processes behind a new Runtime API.
    fn launch(&self) -> Result<()> {
        let (function, external): (Function, _) = match &self.external {
            None => {
                let mut h = Handler::new(self.config.clone())?;
                h.set_live(self.live.clone());
                (Arc::new(h).into(), None)
            }
            Some(spec) => {
                let mut external = External::new(RuntimeApi::start_with(spec.api.clone(), |_| {})?);
                external.live = Some(self.live.clone());
                external.dead_letter = Some(DeadLetterSink::new(spec.dead_letter.clone(), &spec.s3)?);
                let external = Arc::new(external);
                (Function::RuntimeApi(external.clone()), Some(external))
            }
        };
        let mut config = self.esm.clone();
        config.assigned = Arc::new(AtomicUsize::new(0));
        config.invoking = Arc::new(AtomicUsize::new(0));
        config.kill = Kill::default();
        let (assigned, invoking, kill) = (config.assigned.clone(), config.invoking.clone(), config.kill.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, runtime) = (stop.clone(), tokio::runtime::Handle::current());
            std::thread::Builder::new()
                .name("esm".into())
                .spawn(move || esm::run(&config, function, runtime, stop))
                .context("starting the event source mapping")?
        };
        *self.lock() = Some(Running { assigned, invoking, kill, stop, thread, external });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pollers of the running mapping holding partitions.
    fn assigned(&self) -> usize {
        self.lock().as_ref().map_or(0, |r| r.assigned.load(Ordering::SeqCst))
    }

    /// Waits until every poller holds its partitions; false when the group
    /// did not settle in time (expect redelivered batches).
    pub(crate) async fn settle(&self, partitions: usize) -> bool {
        let by = Instant::now() + SETTLE_PATIENCE;
        while self.assigned() < partitions && Instant::now() < by {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.assigned() >= partitions
    }

    /// True once the running mapping ended on its own: it has no idle exit
    /// here, so only a failed poller (which stops every poller) ends it. Its
    /// reason is [`Stopped::error`]. False while crashed (none runs).
    pub(crate) fn has_failed(&self) -> bool {
        self.lock().as_ref().is_some_and(|r| r.thread.is_finished())
    }

    /// Kills the running mapping as a crash of its process would, mid-batch:
    /// once an invocation in flight has had records accepted by Firehose
    /// (or after [`MID_BATCH_PATIENCE`], whatever it is doing). The
    /// invocations are dropped where they stand and nothing more is
    /// committed, so their records come back to the next mapping — those
    /// already accepted as duplicates.
    pub(crate) async fn crash(&self) -> Result<Crashed> {
        let by = Instant::now() + MID_BATCH_PATIENCE;
        let invoking = self.lock().as_ref().map(|r| r.invoking.clone());
        let Some(invoking) = invoking else { return Ok(Crashed { invocations_cut: 0 }) };
        let accepted = || self.live.accepted.load(Ordering::Relaxed);
        // Records accepted while invocations were in flight without a break.
        let mut since: Option<u64> = None;
        while Instant::now() < by {
            match (invoking.load(Ordering::SeqCst) > 0, since) {
                (false, _) => since = None,
                (true, None) => since = Some(accepted()),
                (true, Some(at)) if accepted() > at => break,
                (true, Some(_)) => {}
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let Some(running) = self.lock().take() else { return Ok(Crashed { invocations_cut: 0 }) };
        let invocations_cut = running.invoking.load(Ordering::SeqCst) as u64;
        running.kill.kill();
        let external = running.external;
        let joined = tokio::task::spawn_blocking(move || running.thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the event source mapping panicked"))?;
        if let Some(external) = external {
            // The function's processes die with the mapping.
            external.api.shutdown().await;
        }
        match joined {
            Ok(_) | Err(EsmError::Killed { .. }) => Ok(Crashed { invocations_cut }),
            Err(e) => Err(anyhow::anyhow!("the event source mapping failed before the crash: {e}")),
        }
    }

    /// Starts a new mapping in the same consumer group, after a crash.
    pub(crate) fn restart(&self) -> Result<()> {
        self.launch()
    }

    /// Stops the pollers and waits for the mapping's thread.
    pub(crate) async fn stop(&self) -> Result<Stopped> {
        let Some(running) = self.lock().take() else {
            return Ok(Stopped { stats: None, error: Some("no mapping was running (crashed, not restarted)".into()) });
        };
        running.stop.store(true, Ordering::SeqCst);
        let thread = running.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the event source mapping panicked"))?;
        if let Some(external) = running.external {
            external.api.shutdown().await;
        }
        let (stats, error) = match joined {
            Ok(stats) => (Some(stats), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(Stopped { stats, error })
    }
}

/// The scenario's `[mapping]` as the mapping's settings; `on_failure =
/// "run"` is the run folder's `on-failure/`.
fn failure_handling(m: &mskbench_scenarios::Mapping, started: &Started) -> Result<esm::failures::FailureHandling> {
    let on_failure = match m.on_failure.as_deref() {
        None => None,
        Some("run") => Some(DeadLetterTarget::Directory(started.on_failure_dir.clone())),
        Some(url) => Some(mskbench_processor::config::dead_letter_target(url).context("mapping.on_failure")?),
    };
    Ok(esm::failures::FailureHandling {
        report_batch_item_failures: m.report_batch_item_failures(),
        bisect_batch_on_function_error: m.bisect_batch_on_function_error,
        maximum_retry_attempts: m.retry_attempts(),
        maximum_record_age: m.record_age_seconds().map(Duration::from_secs),
        on_failure,
    })
}

/// The acknowledged records still without an outcome: per partition, a
/// bitset over the span of its acknowledged offsets.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    partitions: BTreeMap<i32, Span>,
    left: u64,
}

#[derive(Debug)]
struct Span {
    /// The lowest acknowledged offset.
    base: i64,
    /// Bit `o − base` set while offset `o` waits.
    bits: Vec<u64>,
}

impl Span {
    fn slot(&self, offset: i64) -> Option<(usize, u64)> {
        let i = usize::try_from(offset.checked_sub(self.base)?).ok()?;
        (i / 64 < self.bits.len()).then_some((i / 64, 1u64 << (i % 64)))
    }
}

impl Pending {
    /// Every `(partition, offset)` of `acked` waits (one offset counts once;
    /// a negative offset, unknown to the delivery report, cannot be waited on).
    pub(crate) fn new<I>(acked: I) -> Pending
    where
        I: IntoIterator<Item = (i32, i64)>,
        I::IntoIter: Clone,
    {
        let acked = acked.into_iter().filter(|&(_, o)| o >= 0);
        let mut bounds: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for (p, o) in acked.clone() {
            let b = bounds.entry(p).or_insert((o, o));
            *b = (b.0.min(o), b.1.max(o));
        }
        let mut pending = Pending::default();
        for (p, (lo, hi)) in bounds {
            // Offsets are non-negative, so the span fits in usize on 64-bit targets.
            let len = usize::try_from(hi.saturating_sub(lo)).unwrap_or(0) + 1;
            pending.partitions.insert(p, Span { base: lo, bits: vec![0; len.div_ceil(64)] });
        }
        for (p, o) in acked {
            if let Some(span) = pending.partitions.get_mut(&p)
                && let Some((word, bit)) = span.slot(o)
                && span.bits[word] & bit == 0
            {
                span.bits[word] |= bit;
                pending.left += 1;
            }
        }
        pending
    }

    /// `(partition, offset)` has an outcome; true when it was still
    /// waiting (a redelivered or unknown record changes nothing).
    pub(crate) fn complete(&mut self, partition: i32, offset: i64) -> bool {
        let Some(span) = self.partitions.get_mut(&partition) else { return false };
        let Some((word, bit)) = span.slot(offset) else { return false };
        if span.bits[word] & bit == 0 {
            return false;
        }
        span.bits[word] &= !bit;
        self.left -= 1;
        true
    }

    /// Acknowledged records still waiting.
    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    /// Per partition with records waiting: how many, and the lowest and
    /// highest offset among them.
    pub(crate) fn waiting(&self) -> Vec<(i32, u64, i64, i64)> {
        let mut out = Vec::new();
        for (&p, span) in &self.partitions {
            let mut count = 0u64;
            let (mut first, mut last) = (i64::MAX, i64::MIN);
            for (w, &word) in span.bits.iter().enumerate() {
                if word == 0 {
                    continue;
                }
                count += u64::from(word.count_ones());
                let at = span.base + (w as i64) * 64;
                first = first.min(at + i64::from(word.trailing_zeros()));
                last = last.max(at + 63 - i64::from(word.leading_zeros()));
            }
            if count > 0 {
                out.push((p, count, first, last));
            }
        }
        out
    }

    /// `waiting`, as text: `partition 0: 2 (offsets 10–15); partition 2: 1 (offset 7)`.
    pub(crate) fn describe(&self) -> String {
        let mut s = String::new();
        for (p, count, first, last) in self.waiting() {
            if !s.is_empty() {
                s.push_str("; ");
            }
            let _ = if first == last {
                write!(s, "partition {p}: {count} (offset {first})")
            } else {
                write!(s, "partition {p}: {count} (offsets {first}–{last})")
            };
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redelivered_batch_does_not_end_the_drain_early() {
        let acked = [(0, 0), (0, 1), (0, 2), (1, 5)];
        let mut pending = Pending::new(acked);
        assert_eq!(pending.left(), 4);
        // Offsets 0 and 1 settled twice (a redelivered batch): 4 completions, 2 records.
        for (p, o) in [(0, 0), (0, 1), (0, 0), (0, 1)] {
            pending.complete(p, o);
        }
        assert_eq!(pending.left(), 2);
        assert_eq!(pending.waiting(), vec![(0, 1, 2, 2), (1, 1, 5, 5)]);
        assert_eq!(pending.describe(), "partition 0: 1 (offset 2); partition 1: 1 (offset 5)");
        // Records nobody acknowledged change nothing.
        assert!(!pending.complete(0, 3));
        assert!(!pending.complete(7, 0));
        assert!(!pending.complete(0, -1));
        assert!(pending.complete(0, 2));
        assert!(pending.complete(1, 5));
        assert_eq!(pending.left(), 0);
        assert_eq!(pending.describe(), "");
    }

    #[test]
    fn waiting_records_are_told_by_partition_and_offset_range() {
        let acked: Vec<(i32, i64)> = (100..300).map(|o| (3, o)).chain([(3, 100)]).collect();
        let mut pending = Pending::new(acked.iter().copied());
        assert_eq!(pending.left(), 200, "an offset acknowledged twice waits once");
        for o in (100..300).filter(|o| !(150..=220).contains(o) || o % 2 == 0) {
            pending.complete(3, o);
        }
        assert_eq!(pending.waiting(), vec![(3, 35, 151, 219)]);
        assert_eq!(pending.describe(), "partition 3: 35 (offsets 151–219)");
    }
}
