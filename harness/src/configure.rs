//! Step 1½, configure: the processor's and the producer's settings, built
//! from the plan and the started parts as typed values.
//!
//! The processor gets a [`Config`] built field by field, exactly what the
//! lab's environment variables would have said for this scenario (the
//! scenario counts attempts in total, as the lab's `RETRIES` does; the
//! processor counts resends after the first call), but without going
//! through the environment: nothing here reads a variable, so nothing in
//! the shell changes a seeded run. The producer gets a [`ProduceConfig`]
//! whose rate profile is the plan's, as a value, and whose records' schema
//! is text read once here.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};
use mskbench_core::WireMode;
use mskbench_core::wire::Compression;
use mskbench_core::{Aimd, Pacing};
use mskbench_processor::Config;
use mskbench_processor::config::{DeadLetterTarget, Endpoints, RegistryUrl};
use mskbench_processor::pace::Paced;
use mskbench_processor::retry::RetryPolicy as Backoff;
use mskbench_producer::ProduceConfig;
use mskbench_producer::config::{GlueConfig, Records, Registry};
use mskbench_producer::schemagen::SizeControls;
use mskbench_producer::send::Until;
use mskbench_scenarios::{PacingKind, RetryPolicy, WireFormat};

use crate::parts::{RegistryAt, Started};
use crate::plan::{Plan, RecordSource};

/// One `PutRecordBatch` call's timeout (the processor's default, `FIREHOSE_TIMEOUT_MS`).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The Lambda function's configuration for this run.
pub(crate) fn processor_config(plan: &Plan, started: &Started) -> Config {
    let scenario = &plan.scenario;
    let p = &scenario.processor;
    let wire_mode = match scenario.producer.wire_format {
        WireFormat::Confluent => WireMode::Confluent,
        WireFormat::Glue | WireFormat::GlueZlib => WireMode::Glue,
    };
    let registry_url = match &started.registry {
        RegistryAt::Confluent(url) => Some(RegistryUrl::new(url.clone())),
        RegistryAt::Glue(_) => None,
    };
    let aws = &plan.aws.endpoints;
    Config {
        delivery_stream: scenario.firehose.stream.clone(),
        retries: (p.retries.0 - 1) as u32,
        retry_policy: match p.retry_policy {
            RetryPolicy::Lab => Backoff::Lab,
            RetryPolicy::Jittered => Backoff::default(),
        },
        wire_mode,
        registry_url,
        region: started.aws.region.clone(),
        endpoints: Endpoints { firehose: started.firehose_url.clone(), glue: aws.glue.clone(), s3: aws.s3.clone() },
        credentials: started.aws.credentials.clone(),
        concurrency: p.concurrency.0 as usize,
        call_timeout: CALL_TIMEOUT,
        batch_records: p.records_per_call.0 as usize,
        dead_letter: Some(DeadLetterTarget::Directory(started.dead_letter_dir.clone())),
        jitter_seed: Some(scenario.seed),
        // Lambda's longest: the scenario's retries only have to fit what a deployment could allow.
        function_timeout: mskbench_processor::config::MAX_FUNCTION_TIMEOUT,
        pacing: pacing(p, scenario.firehose.quota),
        report_batch_item_failures: plan.scenario.mapping.report_batch_item_failures(),
    }
}

/// The environment of a function of the user's (`[processor] function =
/// "runtime-api"`): what [`processor_config`] says, as the lab's variables
/// — the ones the lab's SAM template sets, and ours — so that our
/// `bootstrap`, the lab's Java function or any function reading them sends
/// to this run's parts; then the scenario's `[processor] env` over them.
/// The credentials are the run's, fetched once here: the function's
/// process gets them as Lambda gives a function its role's.
pub(crate) async fn function_env(plan: &Plan, started: &Started) -> Result<Vec<(String, String)>> {
    use mskbench_processor::config::ProvideCredentials as _;
    let c = processor_config(plan, started);
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    set("DELIVERY_STREAM_NAME", c.delivery_stream.clone());
    set("RETRIES", c.retries.to_string());
    set("RETRY_POLICY", if matches!(c.retry_policy, Backoff::Lab) { "lab" } else { "backoff" }.to_owned());
    match &started.registry {
        RegistryAt::Confluent(url) => {
            set("CSR", "true".to_owned());
            set("SCHEMA_REGISTRY_URL", url.clone());
        }
        RegistryAt::Glue(_) => set("CSR", "false".to_owned()),
    }
    set("AWS_REGION", c.region.clone());
    set("AWS_DEFAULT_REGION", c.region.clone());
    for (name, endpoint) in [
        ("AWS_ENDPOINT_URL_FIREHOSE", &c.endpoints.firehose),
        ("AWS_ENDPOINT_URL_GLUE", &c.endpoints.glue),
        ("AWS_ENDPOINT_URL_S3", &c.endpoints.s3),
    ] {
        if let Some(url) = endpoint {
            set(name, url.clone());
        }
    }
    let credentials =
        c.credentials.provide_credentials().await.context("fetching the run's credentials for the function")?;
    set("AWS_ACCESS_KEY_ID", credentials.access_key_id().to_owned());
    set("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key().to_owned());
    if let Some(token) = credentials.session_token() {
        set("AWS_SESSION_TOKEN", token.to_owned());
    }
    set("FIREHOSE_CONCURRENCY", c.concurrency.to_string());
    set("FIREHOSE_TIMEOUT_MS", c.call_timeout.as_millis().to_string());
    set("BATCH_RECORDS", c.batch_records.to_string());
    set("DEAD_LETTER", started.dead_letter_dir.display().to_string());
    if let Some(seed) = c.jitter_seed {
        set("JITTER_SEED", seed.to_string());
    }
    set("FUNCTION_TIMEOUT", plan.scenario.processor.timeout.as_secs().to_string());
    for (k, v) in &plan.scenario.processor.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    Ok(env)
}

/// The processor's pacer: the scenario's kind and share of the stream's quota.
fn pacing(p: &mskbench_scenarios::Processor, quota: mskbench_core::Quota) -> Option<Paced> {
    let share = p.pacing_share;
    let pacing = match p.pacing {
        PacingKind::None => return None,
        PacingKind::TokenBucket => Pacing::TokenBucket { share },
        PacingKind::Aimd => Pacing::Aimd(Aimd { min_share: Aimd::MIN_SHARE.min(share), ..Aimd::starting_at(share) }),
    };
    Some(Paced { pacing, quota })
}

/// The producer's configuration for this run.
pub(crate) fn produce_config(plan: &Plan, started: &Started) -> Result<ProduceConfig> {
    let scenario = &plan.scenario;
    let padded = |schema: String, pad_bytes: usize| Records::Schema {
        schema,
        sizes: SizeControls { pad_bytes, ..SizeControls::default() },
    };
    let records = match &plan.records {
        RecordSource::ClickEvents => Records::ClickEvents { threads: 2 },
        RecordSource::Schema { path, pad_bytes } => padded(
            fs::read_to_string(path).with_context(|| format!("cannot read the schema file {}", path.display()))?,
            *pad_bytes,
        ),
        // Padding needs the schema-driven generator: ClickEvent-shaped records plus a pad field.
        RecordSource::PaddedClickEvents { pad_bytes } => {
            padded(mskbench_producer::clickevent::SCHEMA.to_owned(), *pad_bytes)
        }
    };
    let registry = match &started.registry {
        RegistryAt::Confluent(url) => Registry::Confluent { url: url.clone() },
        RegistryAt::Glue(name) => Registry::Glue(GlueConfig {
            registry: name.clone(),
            endpoint: plan.aws.endpoints.glue.clone(),
            region: Some(started.aws.region.clone()),
            chain: Some(started.aws.clone()),
            compression: match scenario.producer.wire_format {
                WireFormat::GlueZlib => Compression::Zlib,
                _ => Compression::None,
            },
        }),
    };
    let until = Until { count: None, duration: Some(plan.load_duration()) };
    Ok(ProduceConfig {
        topic: scenario.kafka.topic.clone(),
        records,
        warmup: Duration::from_secs_f64(plan.window.from_secs),
        hlog: Some(plan.out.join("produce.hlog")),
        // The run's accounting starts from what the producer acknowledged.
        keep_records: true,
        security: started.kafka.security.clone(),
        rdkafka: scenario.kafka.properties.clone(),
        ..ProduceConfig::new(started.kafka.brokers.clone(), registry, plan.profile.clone(), until, scenario.seed)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use mskbench_scenarios::Scenario;

    use super::*;
    use crate::plan::AwsEnv;

    fn started() -> Started {
        Started {
            kafka: mskbench_kafka::Connection::plaintext("127.0.0.1:9092"),
            start_offsets: HashMap::new(),
            registry: RegistryAt::Confluent("http://127.0.0.1:1".into()),
            firehose_url: Some("http://127.0.0.1:2".into()),
            s3_dir: PathBuf::from("/tmp/s3"),
            dead_letter_dir: PathBuf::from("/tmp/dl"),
            on_failure_dir: PathBuf::from("/tmp/of"),
            aws: mskbench_aws::Chain::fixed("us-east-1", "a", "s"),
            bucket: None,
        }
    }

    #[test]
    fn the_processor_gets_the_lab_settings_without_the_environment() {
        let s = Scenario::parse(
            "name = \"t\"\nseed = 1\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nrate = 10\n\
             [processor]\nretries = 3\nretry_policy = \"lab\"\nrecords_per_call = 250\n",
            "t.toml",
        )
        .unwrap();
        let plan = Plan::new(s, Path::new("t.toml"), PathBuf::from("out"), AwsEnv::from_lookup(|_| None).unwrap());
        let c = processor_config(&plan, &started());
        assert_eq!(c.retries, 2, "three attempts in total are two resends");
        assert_eq!(c.batch_records, 250);
        assert_eq!(c.retry_policy, Backoff::Lab);
        assert_eq!(c.endpoints.firehose.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(c.wire_mode, WireMode::Confluent);
        assert_eq!(c.jitter_seed, Some(1), "the scenario's seed");
        assert_eq!(c.dead_letter, Some(DeadLetterTarget::Directory(PathBuf::from("/tmp/dl"))));
    }

    #[test]
    fn the_pacer_paces_at_its_share_of_the_streams_quota() {
        let parse = |extra: &str| {
            let text = format!(
                "name = \"t\"\nseed = 1\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nrate = 10\n\
                 [firehose]\nquota = \"other\"\n[processor]\n{extra}"
            );
            let plan = Plan::new(
                Scenario::parse(&text, "t.toml").unwrap(),
                Path::new("t.toml"),
                PathBuf::from("out"),
                AwsEnv::default(),
            );
            processor_config(&plan, &started()).pacing
        };
        assert_eq!(parse(""), None, "no pacing unless asked");
        let p = parse("pacing = \"token-bucket\"\npacing_share = 0.8\n").unwrap();
        assert_eq!((p.pacing, p.quota), (Pacing::TokenBucket { share: 0.8 }, mskbench_core::Quota::OTHER));
        let p = parse("pacing = \"aimd\"\npacing_share = 0.02\n").unwrap();
        assert_eq!(p.pacing, Pacing::Aimd(Aimd { share: 0.02, min_share: 0.02, ..Aimd::starting_at(0.02) }));
        assert!(p.pacing.validated().is_ok(), "a share under the default floor lowers the floor");
    }

    #[test]
    fn the_producer_gets_the_plans_profile() {
        let s = Scenario::parse(
            "name = \"t\"\nseed = 1\n[[phases]]\nname = \"a\"\nduration = \"2s\"\nrate = 100\nmeasure = false\n\
             [[phases]]\nname = \"b\"\nduration = \"1500ms\"\nrate = 1000\nto_rate = 3000\n",
            "t.toml",
        )
        .unwrap();
        let plan = Plan::new(s, Path::new("t.toml"), PathBuf::from("out"), AwsEnv::default());
        let c = produce_config(&plan, &started()).unwrap();
        assert_eq!(c.profile, plan.profile);
        let spec = mskbench_producer::schedule::Profile::parse("steps:100:2s,1000..3000:1500ms", None).unwrap();
        assert_eq!(c.profile, spec, "the phases, as the producer's own steps: spec says them");
        assert_eq!(c.warmup, Duration::from_secs(2));
        assert_eq!(c.until.duration, Some(Duration::from_millis(3500)));
        assert_eq!(c.records, Records::ClickEvents { threads: 2 });
        assert_eq!(c.seed, 1);
    }

    #[test]
    fn padded_clickevents_take_the_schema_as_text_not_a_file() {
        let s = Scenario::parse(
            "name = \"t\"\nseed = 1\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nrate = 10\n\
             [producer]\npadding_bytes = 100\n",
            "t.toml",
        )
        .unwrap();
        let out = PathBuf::from("no-such-run-folder");
        let plan = Plan::new(s, Path::new("t.toml"), out.clone(), AwsEnv::default());
        let c = produce_config(&plan, &started()).unwrap();
        let sizes = SizeControls { pad_bytes: 100, ..SizeControls::default() };
        assert_eq!(c.records, Records::Schema { schema: mskbench_producer::clickevent::SCHEMA.to_owned(), sizes });
        assert!(!out.exists(), "nothing written");
    }
}
