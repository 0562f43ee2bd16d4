//! `[[faults]]`: a schedule of faults, each a window of the run's time.
//!
//! Where `[firehose.faults]` sets steady-state fault *rates* for the whole
//! run, a `[[faults]]` entry is one event with a start and an end: the
//! processor's process dies and restarts, the registry or the Firehose
//! endpoint is down, the network to the broker is slow. Times count from
//! the start of producing (the producer's schedule time 0), as the phases
//! do.
//!
//! ```toml
//! [[faults]]
//! kind = "firehose_down"
//! from = "3s"          # or `at`
//! duration = "4s"      # or `until = "7s"`
//! mode = "http_503"    # refuse | http_500 | http_503
//! ```
//!
//! Each entry is read into a [`Fault`] (a [`FaultKind`] and a window of
//! [`Duration`]s) while the file is read; an entry that makes no sense
//! alone (no end, both ends, a mode its kind does not take) is refused at
//! its line, and one that does not fit the run (past the drain's end, two
//! windows of one kind overlapping) by [`check`], naming the entry as
//! `faults[N] (kind)`. Running them is the harness's job.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultTable", into = "FaultTable")]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// When it starts, from the start of producing.
    pub from: Duration,
    /// When it ends (the processor restarts, the part is back); never
    /// before `from`.
    pub until: Duration,
}

/// What goes wrong during a fault's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The processor's process dies mid-batch at `from` (no commit of what
    /// it was invoking, no graceful stop) and a new one starts at `until`
    /// in the same consumer group (`processor_crash`).
    ProcessorCrash,
    /// The schema registry is down (`registry_down`).
    RegistryDown(RegistryOutage),
    /// The Firehose endpoint is down (`firehose_down`).
    FirehoseDown(FirehoseOutage),
    /// Every byte between the Kafka clients and the broker is delayed by
    /// this much, each way (`network_latency`).
    NetworkLatency(Duration),
    /// The broker stops at `from` — its port refuses connections and every
    /// client connection is cut — and starts again at `until` on the same
    /// address with the same log and committed offsets and a new group
    /// coordinator, as a broker process with durable storage restarts
    /// (`broker_restart`).
    BrokerRestart,
}

/// How the registry is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryOutage {
    /// Its port refuses connections, as a stopped server's does (`refuse`, the default).
    Refuse,
    /// It answers every request with HTTP 503 (`http_503`), as a registry
    /// behind a load balancer with no healthy backend does.
    Http503,
}

/// How the Firehose endpoint is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirehoseOutage {
    /// Its port refuses connections (`refuse`, the default).
    Refuse,
    /// Every call is answered HTTP 500 `InternalFailure` (`http_500`).
    Http500,
    /// Every call is answered HTTP 503 `ServiceUnavailableException`
    /// (`http_503`), the answer AWS gives when the service is overloaded.
    Http503,
}

impl FaultKind {
    /// The kind's name in scenario files and results (`processor_crash`, …).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::ProcessorCrash => "processor_crash",
            FaultKind::RegistryDown(_) => "registry_down",
            FaultKind::FirehoseDown(_) => "firehose_down",
            FaultKind::NetworkLatency(_) => "network_latency",
            FaultKind::BrokerRestart => "broker_restart",
        }
    }

    /// The mode's name, for the kinds that take one.
    pub fn mode(&self) -> Option<&'static str> {
        match self {
            FaultKind::RegistryDown(RegistryOutage::Refuse) | FaultKind::FirehoseDown(FirehoseOutage::Refuse) => {
                Some("refuse")
            }
            FaultKind::RegistryDown(RegistryOutage::Http503) | FaultKind::FirehoseDown(FirehoseOutage::Http503) => {
                Some("http_503")
            }
            FaultKind::FirehoseDown(FirehoseOutage::Http500) => Some("http_500"),
            FaultKind::ProcessorCrash | FaultKind::NetworkLatency(_) | FaultKind::BrokerRestart => None,
        }
    }
}

impl fmt::Display for FaultKind {
    /// `firehose_down (http_503)`, `network_latency (200ms)`, `processor_crash`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match (self, self.mode()) {
            (FaultKind::NetworkLatency(d), _) => write!(f, " ({})", humantime::format_duration(*d)),
            (_, Some(mode)) => write!(f, " ({mode})"),
            (_, None) => Ok(()),
        }
    }
}

impl fmt::Display for Fault {
    /// `firehose_down (http_503) from 3s until 7s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} from {} until {}",
            self.kind,
            humantime::format_duration(self.from),
            humantime::format_duration(self.until)
        )
    }
}

/// The longest added latency: beyond it the clients' own timeouts decide
/// the run, not the latency.
const MAX_LATENCY: Duration = Duration::from_secs(10);

/// `[[faults]]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultTable {
    kind: String,
    #[serde(default, alias = "at", skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latency: Option<String>,
}

fn duration(key: &str, kind: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("faults ({kind}): {key} = {text:?} is not a duration like \"3s\" or \"500ms\" (a negative or infinite one never is): {e}")
    })
}

impl TryFrom<FaultTable> for Fault {
    type Error = String;

    fn try_from(t: FaultTable) -> Result<Self, String> {
        let name = t.kind.as_str();
        let mode = t.mode.as_deref();
        let no_mode = |kind: FaultKind| match mode {
            None => Ok(kind),
            Some(m) => Err(format!("faults ({name}): takes no mode, got mode = {m:?}")),
        };
        if t.latency.is_some() && name != "network_latency" {
            return Err(format!("faults ({name}): only network_latency takes a latency"));
        }
        let kind = match name {
            "processor_crash" => no_mode(FaultKind::ProcessorCrash)?,
            "registry_down" => FaultKind::RegistryDown(match mode.unwrap_or("refuse") {
                "refuse" => RegistryOutage::Refuse,
                "http_503" => RegistryOutage::Http503,
                other => return Err(format!("faults (registry_down): mode {other:?} is not refuse or http_503")),
            }),
            "firehose_down" => FaultKind::FirehoseDown(match mode.unwrap_or("refuse") {
                "refuse" => FirehoseOutage::Refuse,
                "http_500" => FirehoseOutage::Http500,
                "http_503" => FirehoseOutage::Http503,
                other => {
                    return Err(format!("faults (firehose_down): mode {other:?} is not refuse, http_500 or http_503"));
                }
            }),
            "network_latency" => {
                let Some(text) = t.latency.as_deref() else {
                    return Err("faults (network_latency): needs latency = \"200ms\" (added each way)".into());
                };
                let latency = duration("latency", name, text)?;
                if latency.is_zero() || latency > MAX_LATENCY {
                    return Err(format!("faults (network_latency): latency {text:?} must be above 0 and at most 10s"));
                }
                no_mode(FaultKind::NetworkLatency(latency))?
            }
            "broker_restart" => no_mode(FaultKind::BrokerRestart)?,
            other => {
                return Err(format!(
                    "faults: kind {other:?} is not processor_crash, registry_down, firehose_down, network_latency or \
                     broker_restart"
                ));
            }
        };
        let Some(from) = t.from.as_deref() else {
            return Err(format!("faults ({name}): needs from = \"3s\" (or at), from the start of producing"));
        };
        let from = duration("from", name, from)?;
        let until = match (t.duration.as_deref(), t.until.as_deref()) {
            (Some(d), None) => from
                .checked_add(duration("duration", name, d)?)
                .ok_or_else(|| format!("faults ({name}): duration {d:?} is too long"))?,
            (None, Some(u)) => duration("until", name, u)?,
            (None, None) => return Err(format!("faults ({name}): needs duration = \"…\" or until = \"…\"")),
            (Some(_), Some(_)) => return Err(format!("faults ({name}): give duration or until, not both")),
        };
        if until < from {
            return Err(format!(
                "faults ({name}): until ({}) is before from ({})",
                humantime::format_duration(until),
                humantime::format_duration(from)
            ));
        }
        // A crash may restart at once; every other fault needs a window to be in.
        if until == from && kind != FaultKind::ProcessorCrash {
            return Err(format!("faults ({name}): the window is empty (duration 0)"));
        }
        Ok(Fault { kind, from, until })
    }
}

impl From<Fault> for FaultTable {
    fn from(f: Fault) -> Self {
        let text = |d: Duration| humantime::format_duration(d).to_string();
        FaultTable {
            kind: f.kind.name().to_owned(),
            from: Some(text(f.from)),
            duration: None,
            until: Some(text(f.until)),
            mode: f.kind.mode().map(str::to_owned),
            latency: match f.kind {
                FaultKind::NetworkLatency(d) => Some(text(d)),
                _ => None,
            },
        }
    }
}

/// Checks the schedule against the run: every window ends by the end of
/// the drain (`run`), and two windows of one kind do not overlap (a part
/// cannot go down while it is down). Errors name the entry as
/// `faults[N] (kind)`, counting from 1.
pub(crate) fn check(faults: &[Fault], load: Duration, run: Duration) -> Result<(), String> {
    let text = |d: Duration| humantime::format_duration(d).to_string();
    for (i, f) in faults.iter().enumerate() {
        let name = format!("faults[{}] ({})", i + 1, f.kind.name());
        if f.from >= load {
            return Err(format!(
                "{name}: starts at {}, not before producing ends ({}): it would find nothing to do",
                text(f.from),
                text(load)
            ));
        }
        if f.until > run {
            return Err(format!(
                "{name}: ends at {}, after the run ({} of phases and drain)",
                text(f.until),
                text(run)
            ));
        }
        if let Some((j, other)) = faults[..i]
            .iter()
            .enumerate()
            .find(|(_, o)| o.kind.name() == f.kind.name() && o.from < f.until && f.from < o.until)
        {
            return Err(format!("{name}: overlaps faults[{}] ({other}); one {} at a time", j + 1, f.kind.name()));
        }
    }
    Ok(())
}
