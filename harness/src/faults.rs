//! The `[[faults]]` schedule, run on the run's clock.
//!
//! [`run`] starts when the producer's schedule does (the scenario's times
//! count from there) and works through the windows in time order: at a
//! window's start it breaks the part, at its end it mends it, and it
//! counts what the fault did ([`FaultRecord::effects`]). Where each fault
//! acts:
//!
//! | kind | begins | ends |
//! |---|---|---|
//! | `processor_crash` | [`Mapping::crash`]: the mapping killed mid-batch | [`Mapping::restart`]: a new one in the same group |
//! | `registry_down`, `refuse` | the proxy in front of the registry closes its port | it listens again |
//! | `registry_down`, `http_503` | the registry answers 503 to everything | it serves again |
//! | `firehose_down`, `refuse` | the proxy in front of the endpoint closes its port | it listens again |
//! | `firehose_down`, `http_500`/`http_503` | the endpoint answers every call with that status | it serves again |
//! | `network_latency` | the proxy in front of the broker delays every chunk each way | it passes them again |
//! | `broker_restart` | [`BrokerSwitch::stop`]: the broker's port closes, its connections are cut | [`BrokerSwitch::start`]: the same address, log and offsets, a new group coordinator |
//!
//! The proxies and switches exist only when the schedule needs them
//! ([`Targets`], filled in by `parts::start`). Besides its own counts, each
//! fault records the processor's failed invocations, retry calls, throttled
//! calls and dead letters over its window, from [`Live`]: what the
//! processor saw of it. The accounting afterwards is the oracle; these
//! counts only say that the fault happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use mskbench_processor::{Live, LiveSnapshot};
use mskbench_reports::FaultRecord;
use mskbench_scenarios::{Fault, FaultKind, FirehoseOutage, RegistryOutage};
use mskbench_sim::{BrokerSwitch, FaultProxy, HttpOutage, Outage, ProxyMode};

use crate::mapping::Mapping;

/// What the schedule can break, each present only when a fault needs it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    /// In front of the embedded broker (advertised to every Kafka client).
    pub broker_proxy: Option<Arc<FaultProxy>>,
    /// Stops and restarts the embedded broker.
    pub broker_switch: Option<Arc<BrokerSwitch>>,
    /// In front of the embedded registry.
    pub registry_proxy: Option<Arc<FaultProxy>>,
    /// The embedded registry's 5xx switch.
    pub registry_outage: Option<Arc<Outage>>,
    /// In front of the embedded Firehose endpoint.
    pub firehose_proxy: Option<Arc<FaultProxy>>,
    /// The embedded Firehose endpoint's 5xx switch.
    pub firehose_outage: Option<Arc<Outage>>,
}

/// Which parts the schedule needs in front of or inside the stand-ins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    pub broker_proxy: bool,
    pub broker_switch: bool,
    pub registry_proxy: bool,
    pub firehose_proxy: bool,
}

impl Needs {
    pub(crate) fn of(faults: &[Fault]) -> Needs {
        let mut needs = Needs::default();
        for f in faults {
            match f.kind {
                FaultKind::NetworkLatency(_) => needs.broker_proxy = true,
                FaultKind::BrokerRestart => needs.broker_switch = true,
                FaultKind::RegistryDown(RegistryOutage::Refuse) => needs.registry_proxy = true,
                FaultKind::FirehoseDown(FirehoseOutage::Refuse) => needs.firehose_proxy = true,
                FaultKind::ProcessorCrash | FaultKind::RegistryDown(_) | FaultKind::FirehoseDown(_) => {}
            }
        }
        needs
    }
}

/// Runs `faults` from `start` (the producer's time 0), which is `offset`
/// after the series' clock started; returns a record of each, in the
/// scenario's order. A part that cannot be broken or mended is an error:
/// the run would not be the one the scenario describes.
pub(crate) async fn run(
    faults: Vec<Fault>,
    start: Instant,
    offset: Duration,
    targets: Targets,
    mapping: Arc<Mapping>,
) -> Result<Vec<FaultRecord>> {
    // Every start and end, in time order (an end before a start at the same instant).
    let mut events: Vec<(Duration, bool, usize)> =
        faults.iter().enumerate().flat_map(|(i, f)| [(f.from, true, i), (f.until, false, i)]).collect();
    events.sort_by_key(|&(at, begins, i)| (at, begins, i));
    let mut open: Vec<Option<Opened>> = faults.iter().map(|_| None).collect();
    let mut records: Vec<Option<FaultRecord>> = faults.iter().map(|_| None).collect();
    for (at, begins, i) in events {
        tokio::time::sleep_until((start + at).into()).await;
        let fault = &faults[i];
        if begins {
            open[i] = Some(begin(fault, &targets, &mapping).await?);
        } else if let Some(opened) = open[i].take() {
            let effects = end(fault, opened, &targets, &mapping).await?;
            let secs = |d: Duration| (offset + d).as_secs_f64();
            records[i] = Some(FaultRecord {
                kind: fault.kind.name().to_owned(),
                mode: match fault.kind {
                    FaultKind::NetworkLatency(d) => Some(humantime::format_duration(d).to_string()),
                    kind => kind.mode().map(str::to_owned),
                },
                from_s: secs(fault.from),
                until_s: secs(fault.until),
                effects,
            });
        }
    }
    Ok(records.into_iter().flatten().collect())
}

/// What a fault's start left to compare its end with.
struct Opened {
    live: LiveSnapshot,
    /// The fault's own count at its start (proxy or switch), and what the
    /// crash or the broker's stop hit.
    own: u64,
    invocations_cut: u64,
    connections_cut: u64,
}

fn missing(what: &str) -> anyhow::Error {
    anyhow::anyhow!("the fault schedule needs {what}, which the run did not start")
}

fn proxy<'a>(p: &'a Option<Arc<FaultProxy>>, what: &str) -> Result<&'a FaultProxy> {
    p.as_deref().ok_or_else(|| missing(what))
}

fn switch<'a>(o: &'a Option<Arc<Outage>>, what: &str) -> Result<&'a Outage> {
    o.as_deref().ok_or_else(|| missing(what))
}

/// The fault's own count now: connections cut, requests answered 5xx, chunks delayed.
fn own_count(fault: &Fault, t: &Targets) -> Result<u64> {
    Ok(match fault.kind {
        FaultKind::ProcessorCrash | FaultKind::BrokerRestart => 0,
        FaultKind::RegistryDown(RegistryOutage::Refuse) => proxy(&t.registry_proxy, "a registry proxy")?.counts().cut,
        FaultKind::RegistryDown(RegistryOutage::Http503) => switch(&t.registry_outage, "the registry")?.answered(),
        FaultKind::FirehoseDown(FirehoseOutage::Refuse) => proxy(&t.firehose_proxy, "a Firehose proxy")?.counts().cut,
        FaultKind::FirehoseDown(_) => switch(&t.firehose_outage, "the Firehose endpoint")?.answered(),
        FaultKind::NetworkLatency(_) => proxy(&t.broker_proxy, "a broker proxy")?.counts().delayed_chunks,
    })
}

async fn begin(fault: &Fault, t: &Targets, mapping: &Mapping) -> Result<Opened> {
    let own = own_count(fault, t)?;
    let live = mapping.live.snapshot();
    let (mut invocations_cut, mut connections_cut) = (0, 0);
    match fault.kind {
        FaultKind::ProcessorCrash => invocations_cut = mapping.crash().await?.invocations_cut,
        FaultKind::RegistryDown(RegistryOutage::Refuse) => proxy(&t.registry_proxy, "")?.set(ProxyMode::Refuse),
        FaultKind::RegistryDown(RegistryOutage::Http503) => {
            switch(&t.registry_outage, "")?.begin(HttpOutage::Status503)
        }
        FaultKind::FirehoseDown(FirehoseOutage::Refuse) => proxy(&t.firehose_proxy, "")?.set(ProxyMode::Refuse),
        FaultKind::FirehoseDown(FirehoseOutage::Http500) => {
            switch(&t.firehose_outage, "")?.begin(HttpOutage::Status500);
        }
        FaultKind::FirehoseDown(FirehoseOutage::Http503) => {
            switch(&t.firehose_outage, "")?.begin(HttpOutage::Status503);
        }
        FaultKind::NetworkLatency(d) => proxy(&t.broker_proxy, "")?.set(ProxyMode::Delay(d)),
        FaultKind::BrokerRestart => connections_cut = broker(t)?.stop().await as u64,
    }
    Ok(Opened { live, own, invocations_cut, connections_cut })
}

fn broker(t: &Targets) -> Result<&BrokerSwitch> {
    t.broker_switch.as_deref().ok_or_else(|| missing("a restartable embedded broker"))
}

async fn end(fault: &Fault, opened: Opened, t: &Targets, mapping: &Mapping) -> Result<BTreeMap<String, u64>> {
    match fault.kind {
        FaultKind::ProcessorCrash => mapping.restart()?,
        FaultKind::RegistryDown(RegistryOutage::Refuse) => proxy(&t.registry_proxy, "")?.set(ProxyMode::Pass),
        FaultKind::RegistryDown(RegistryOutage::Http503) => switch(&t.registry_outage, "")?.end(),
        FaultKind::FirehoseDown(FirehoseOutage::Refuse) => proxy(&t.firehose_proxy, "")?.set(ProxyMode::Pass),
        FaultKind::FirehoseDown(_) => switch(&t.firehose_outage, "")?.end(),
        FaultKind::NetworkLatency(_) => proxy(&t.broker_proxy, "")?.set(ProxyMode::Pass),
        FaultKind::BrokerRestart => broker(t)?.start().await?,
    }
    let own = match fault.kind {
        FaultKind::ProcessorCrash => opened.invocations_cut,
        FaultKind::BrokerRestart => opened.connections_cut,
        _ => own_count(fault, t)?.saturating_sub(opened.own),
    };
    Ok(effects(fault.kind, own, &opened.live, &mapping.live))
}

/// The fault's counts by name: its own, then what the processor saw.
fn effects(kind: FaultKind, own: u64, at_start: &LiveSnapshot, live: &Live) -> BTreeMap<String, u64> {
    let now = live.snapshot();
    let mut effects = BTreeMap::new();
    match kind {
        FaultKind::ProcessorCrash => effects.insert("invocations_cut".to_owned(), own),
        FaultKind::RegistryDown(RegistryOutage::Refuse)
        | FaultKind::FirehoseDown(FirehoseOutage::Refuse)
        | FaultKind::BrokerRestart => effects.insert("connections_cut".to_owned(), own),
        FaultKind::RegistryDown(_) | FaultKind::FirehoseDown(_) => effects.insert("answered_5xx".to_owned(), own),
        FaultKind::NetworkLatency(_) => effects.insert("delayed_chunks".to_owned(), own),
    };
    for (name, now, then) in [
        ("failed_invocations", now.failed_invocations, at_start.failed_invocations),
        ("retry_calls", now.retry_calls, at_start.retry_calls),
        ("throttled_calls", now.throttled_calls, at_start.throttled_calls),
        ("dead_lettered", now.dead_lettered, at_start.dead_lettered),
    ] {
        effects.insert(name.to_owned(), now.saturating_sub(then));
    }
    effects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_faults_that_need_a_proxy_or_a_restartable_broker_get_one() {
        let f = |kind| Fault { kind, from: Duration::ZERO, until: Duration::from_secs(1) };
        assert_eq!(Needs::of(&[]), Needs::default());
        let needs = Needs::of(&[
            f(FaultKind::ProcessorCrash),
            f(FaultKind::FirehoseDown(FirehoseOutage::Http503)),
            f(FaultKind::RegistryDown(RegistryOutage::Http503)),
        ]);
        assert_eq!(needs, Needs::default(), "5xx switches live inside the stand-ins");
        let needs = Needs::of(&[
            f(FaultKind::NetworkLatency(Duration::from_millis(5))),
            f(FaultKind::FirehoseDown(FirehoseOutage::Refuse)),
        ]);
        assert_eq!(
            needs,
            Needs { broker_proxy: true, broker_switch: false, registry_proxy: false, firehose_proxy: true }
        );
        let needs = Needs::of(&[f(FaultKind::BrokerRestart), f(FaultKind::NetworkLatency(Duration::from_millis(5)))]);
        assert_eq!(needs, Needs { broker_proxy: true, broker_switch: true, ..Needs::default() });
    }
}
