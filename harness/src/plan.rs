//! A scenario made into a plan: everything a run needs, decided before anything starts.
//!
//! [`Plan::new`] is the only place a run looks at anything beyond the
//! scenario file: the AWS SDK's own standard variables ([`AwsEnv`]: region,
//! profile, keys, endpoint overrides — how a test points a whole run at
//! moto), read once and recorded in the run's settings (no secrets); the
//! start step resolves the AWS default chain from them once, when the run
//! reaches AWS. Nothing else reads the process environment; in particular the processor's knobs
//! (`RETRIES`, `RETRY_BASE_MS`, …) come from the scenario alone, so a stray
//! variable in the shell cannot change a seeded run.
//!
//! The phases become one open-loop rate [`Profile`] (each phase a constant
//! or a linear segment, the last rate holding), and the measured window the
//! phases with `measure = true` span, on the producer's schedule.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mskbench_aws::chain::EndpointError;
use mskbench_aws::{Chain, Endpoints};
use mskbench_kafka::Security;
use mskbench_producer::schedule::{Profile, Segment};
use mskbench_scenarios::Scenario;
use serde::Serialize;

/// What the producer generates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RecordSource {
    /// The lab's ClickEvents, hand-encoded.
    ClickEvents,
    /// Random records of this schema file, each with `pad_bytes` of padding.
    Schema {
        /// The schema file, resolved against the scenario file's folder.
        path: PathBuf,
        /// Bytes of padding per record (0 for none).
        pad_bytes: usize,
    },
    /// ClickEvent-shaped records with a pad field: the schema-driven
    /// generator over the ClickEvent schema, written into the run folder.
    PaddedClickEvents {
        /// Bytes of padding per record.
        pad_bytes: usize,
    },
}

/// The AWS SDK's standard variables, read once: what the AWS clients of
/// the run (the processor's Firehose, Glue and S3 clients, the producer's
/// Glue client, the read-back) are configured with. The region and the
/// keys are the first links of the AWS default chain, which the start step
/// resolves from them once ([`AwsEnv::chain`]) when the run reaches AWS or
/// an endpoint standing in for it (a bucket, a Glue registry); stand-ins the
/// run starts itself get fixed credentials and check none.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct AwsEnv {
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`); else the profile's, the
    /// instance's, or `us-east-1` for stand-ins.
    pub region: Option<String>,
    /// `AWS_PROFILE`.
    pub profile: Option<String>,
    /// `AWS_ACCESS_KEY_ID`; never serialised.
    #[serde(skip)]
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`; never serialised.
    #[serde(skip)]
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`; never serialised.
    #[serde(skip)]
    pub session_token: Option<String>,
    /// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`.
    pub endpoints: Endpoints,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv")
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("keys", &self.access_key_id.as_ref().map(|_| "set"))
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// The region stand-ins are addressed in when none is set.
const STAND_IN_REGION: &str = "us-east-1";

impl AwsEnv {
    /// Reads the variables through `get` (empty values count as unset).
    ///
    /// # Errors
    /// An endpoint variable that is not an http(s) URL, named.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<AwsEnv, EndpointError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(AwsEnv {
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            profile: var("AWS_PROFILE"),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            endpoints: Endpoints::from_lookup(&get)?,
        })
    }

    /// Reads the process environment (the CLI does this once, at the edge).
    ///
    /// # Errors
    /// As [`AwsEnv::from_lookup`].
    pub fn from_env() -> Result<AwsEnv, EndpointError> {
        AwsEnv::from_lookup(|k| std::env::var(k).ok())
    }

    /// The AWS default chain with these variables first (the files,
    /// web identity, container and metadata links as the process has them).
    ///
    /// # Errors
    /// [`mskbench_aws::ChainError`]: no region, no credentials.
    pub async fn chain(&self) -> Result<Chain, mskbench_aws::ChainError> {
        Chain::load(|k| match k {
            "AWS_REGION" => self.region.clone(),
            "AWS_PROFILE" => self.profile.clone(),
            "AWS_ACCESS_KEY_ID" => self.access_key_id.clone(),
            "AWS_SECRET_ACCESS_KEY" => self.secret_access_key.clone(),
            "AWS_SESSION_TOKEN" => self.session_token.clone(),
            _ => None,
        })
        .await
    }

    /// Fixed credentials for stand-ins the run starts (which check none).
    pub fn stand_in(&self) -> Chain {
        Chain::fixed(self.region.as_deref().unwrap_or(STAND_IN_REGION), "mskbench", "mskbench")
    }
}

/// The seconds of the producer's schedule whose records are measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    /// From the start of the first measured phase…
    pub from_secs: f64,
    /// …to the end of the last one.
    pub to_secs: f64,
}

/// A run, decided.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario as read.
    pub scenario: Scenario,
    /// The scenario file (schema paths are relative to it).
    pub file: PathBuf,
    /// The run folder: result, reports, logs, delivered objects, dead letters.
    pub out: PathBuf,
    /// The producer's rate over time.
    pub profile: Profile,
    /// What is measured.
    pub window: Window,
    /// What the producer generates.
    pub records: RecordSource,
    /// AWS settings from the SDK's standard variables.
    pub aws: AwsEnv,
    /// The consumer group of the run's event source mapping (unique per run).
    pub group: String,
    /// How every Kafka client of the run connects (TLS, SASL, IAM), from
    /// the scenario's `[kafka]` table with its secret read once
    /// ([`Plan::with_kafka_security`]); plaintext unless set.
    pub kafka_security: Security,
}

impl Plan {
    /// The plan of `scenario` (read from `file`) into the run folder `out`.
    pub fn new(scenario: Scenario, file: &Path, out: PathBuf, aws: AwsEnv) -> Plan {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let pad_bytes = scenario.producer.padding_bytes as usize;
        let records = match (scenario.schema_path(file), pad_bytes) {
            (Some(path), pad_bytes) => RecordSource::Schema { path, pad_bytes },
            (None, 0) => RecordSource::ClickEvents,
            (None, pad_bytes) => RecordSource::PaddedClickEvents { pad_bytes },
        };
        Plan {
            profile: profile(&scenario),
            window: window(&scenario),
            records,
            group: format!("mskbench-run-{}-{started}", scenario.name),
            file: file.to_path_buf(),
            out,
            aws,
            scenario,
            kafka_security: Security::default(),
        }
    }

    /// The plan with the Kafka clients' security settings (read from the
    /// scenario by [`mskbench_scenarios::Kafka::security`]).
    pub fn with_kafka_security(mut self, security: Security) -> Plan {
        self.kafka_security = security;
        self
    }

    /// How long the producer runs.
    pub fn load_duration(&self) -> Duration {
        self.scenario.total_duration()
    }

    /// Partitions of the topic, one poller each.
    pub fn partitions(&self) -> usize {
        self.scenario.producer.partitions.0 as usize
    }
}

/// The phases as one open-loop profile; after the last phase its rate holds.
fn profile(scenario: &Scenario) -> Profile {
    let mut segments: Vec<Segment> = scenario
        .phases
        .iter()
        .map(|p| Segment { from: p.rate.0, to: p.to_rate.unwrap_or(p.rate).0, secs: p.duration.as_secs_f64() })
        .collect();
    let last = segments.last().map_or(0.0, |s| s.to);
    segments.push(Segment { from: last, to: last, secs: 1.0 });
    Profile::Segments { segments, repeat: false }
}

/// From the first to the end of the last measured phase, in seconds of the schedule.
fn window(scenario: &Scenario) -> Window {
    let mut t = 0.0;
    let (mut from, mut to) = (None, 0.0);
    for p in &scenario.phases {
        let end = t + p.duration.as_secs_f64();
        if p.measure {
            from.get_or_insert(t);
            to = end;
        }
        t = end;
    }
    Window { from_secs: from.unwrap_or(0.0), to_secs: to }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(crate) const TWO_PHASES: &str = r#"
name = "t"
seed = 1

[[phases]]
name = "warm-up"
duration = "2s"
rate = 100
measure = false

[[phases]]
name = "ramp"
duration = "1500ms"
rate = 1000
to_rate = 3000
"#;

    #[test]
    fn phases_become_one_profile_and_a_measured_window() {
        let s = Scenario::parse(TWO_PHASES, "t.toml").unwrap();
        let plan = Plan::new(s, Path::new("t.toml"), PathBuf::from("out"), AwsEnv::default());
        let spec = Profile::parse("steps:100:2000ms,1000..3000:1500ms", None).unwrap();
        assert_eq!(plan.profile, spec, "the same profile the producer's own steps: spec gives");
        assert!((plan.profile.cumulative(3.5) - (200.0 + 3000.0)).abs() < 1e-6);
        assert_eq!(plan.window, Window { from_secs: 2.0, to_secs: 3.5 });
        assert_eq!(plan.records, RecordSource::ClickEvents);
    }

    #[test]
    fn aws_settings_come_from_the_sdk_variables_only_and_hide_secrets() {
        let vars: HashMap<&str, &str> = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5001"),
        ]
        .into();
        let aws = AwsEnv::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.endpoints.glue.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(aws.endpoints.firehose.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(aws.endpoints.s3.as_deref(), Some("http://127.0.0.1:5001"));
        let shown = format!("{aws:?} {}", serde_json::to_string(&aws).unwrap());
        assert!(!shown.contains("very-secret") && !shown.contains("AKID"), "{shown}");
        let none = AwsEnv::from_lookup(|_| None).unwrap();
        assert_eq!(none.stand_in().region, "us-east-1", "stand-ins get a region all the same");
        let bad = AwsEnv::from_lookup(|k| (k == "AWS_ENDPOINT_URL").then(|| "localhost:1".to_owned())).unwrap_err();
        assert_eq!(bad.name, "AWS_ENDPOINT_URL");
    }
}
