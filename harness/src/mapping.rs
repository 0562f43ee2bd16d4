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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mskbench_processor::esm::{self, EsmConfig, EsmError, EsmStats};
use mskbench_processor::{Handler, Live};

use crate::configure::processor_config;
use crate::parts::{self, Started};
use crate::plan::Plan;

/// How long the consumer group may take to settle before producing starts anyway.
const SETTLE_PATIENCE: Duration = Duration::from_secs(30);

/// The running processor.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub handler: Arc<Handler>,
    pub live: Arc<Live>,
    assigned: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<EsmStats, EsmError>>,
}

/// What the mapping did, once stopped.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub handler: Arc<Handler>,
    pub stats: Option<EsmStats>,
    pub error: Option<String>,
}

impl Mapping {
    /// Builds the handler and starts the mapping on the topic, from the
    /// offsets where the run's records start.
    pub(crate) async fn start(plan: &Plan, started: &Started) -> Result<Mapping> {
        let live = Arc::new(Live::default());
        let handler = {
            let mut h = Handler::new(processor_config(plan, started))?;
            h.set_live(live.clone());
            Arc::new(h)
        };
        let topic = plan.scenario.kafka.topic.clone();
        if started.start_offsets.values().any(|&o| o > 0) {
            // A topic with older records: the mapping starts where this run does.
            let (b, t, g, s) =
                (started.brokers.clone(), topic.clone(), plan.group.clone(), started.start_offsets.clone());
            tokio::task::spawn_blocking(move || parts::commit_start(&b, &t, &g, &s)).await??;
        }
        let processor = &plan.scenario.processor;
        let mut config = EsmConfig::new(&started.brokers, &topic, &plan.group);
        config.batch_size = processor.batch_size.0 as usize;
        config.batch_window = processor.batch_window;
        config.pollers = plan.partitions();
        let assigned = config.assigned.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (handler, stop, runtime) = (handler.clone(), stop.clone(), tokio::runtime::Handle::current());
            std::thread::Builder::new()
                .name("esm".into())
                .spawn(move || esm::run(&config, handler, runtime, stop))
                .context("starting the event source mapping")?
        };
        Ok(Mapping { handler, live, assigned, stop, thread })
    }

    /// Waits until every poller holds its partitions; false when the group
    /// did not settle in time (expect redelivered batches).
    pub(crate) async fn settle(&self, partitions: usize) -> bool {
        let by = Instant::now() + SETTLE_PATIENCE;
        while self.assigned.load(Ordering::SeqCst) < partitions && Instant::now() < by {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.assigned.load(Ordering::SeqCst) >= partitions
    }

    /// True once the mapping ended on its own: it has no idle exit here, so
    /// only a failed poller (which stops every poller) ends it. Its reason
    /// is [`Stopped::error`].
    pub(crate) fn has_failed(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the pollers and waits for the mapping's thread.
    pub(crate) async fn stop(self) -> Result<Stopped> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the event source mapping panicked"))?;
        let (stats, error) = match joined {
            Ok(stats) => (Some(stats), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(Stopped { handler: self.handler, stats, error })
    }
}
