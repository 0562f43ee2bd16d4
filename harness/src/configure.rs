//! Step 1½, configure: the processor's and the producer's settings, built
//! from the plan and the started parts as typed values.
//!
//! The processor gets a [`Config`] built field by field, exactly what the
//! lab's environment variables would have said for this scenario (the
//! scenario counts attempts in total, as the lab's `RETRIES` does; the
//! processor counts resends after the first call), but without going
//! through the environment: nothing here reads a variable, so nothing in
//! the shell changes a seeded run. The producer gets a [`ProduceConfig`]
//! whose rate profile is the plan's, as a value.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};
use mskbench_core::WireMode;
use mskbench_processor::Config;
use mskbench_processor::config::{Credentials, DeadLetterTarget, Endpoints, RegistryUrl};
use mskbench_processor::retry::RetryPolicy as Backoff;
use mskbench_producer::ProduceConfig;
use mskbench_producer::config::{GlueCompression, GlueConfig};
use mskbench_producer::schemagen::SizeControls;
use mskbench_scenarios::{RetryPolicy, WireFormat};

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
    let aws = &plan.aws;
    Config {
        delivery_stream: scenario.firehose.stream.clone(),
        retries: (p.retries.0 - 1) as u32,
        retry_policy: match p.retry_policy {
            RetryPolicy::Lab => Backoff::Lab,
            RetryPolicy::Jittered => Backoff::default(),
        },
        wire_mode,
        registry_url,
        region: aws.region.clone(),
        endpoints: Endpoints {
            firehose: Some(started.firehose_url.clone()),
            glue: aws.glue_endpoint.clone(),
            s3: aws.s3_endpoint.clone(),
        },
        credentials: Credentials::new(
            aws.access_key_id.clone(),
            aws.secret_access_key.clone(),
            aws.session_token.clone(),
            None,
            "mskbench-run",
        ),
        concurrency: p.concurrency.0 as usize,
        call_timeout: CALL_TIMEOUT,
        batch_records: p.records_per_call.0 as usize,
        dead_letter: Some(DeadLetterTarget::Directory(started.dead_letter_dir.clone())),
        jitter_seed: Some(scenario.seed),
    }
}

/// The producer's configuration for this run; writes the padded ClickEvent
/// schema into the run folder when the plan needs it.
pub(crate) fn produce_config(plan: &Plan, started: &Started) -> Result<ProduceConfig> {
    let scenario = &plan.scenario;
    let pr = &scenario.producer;
    let (schema, pad_bytes) = match &plan.records {
        RecordSource::ClickEvents => (None, 0),
        RecordSource::Schema { path, pad_bytes } => (Some(path.clone()), *pad_bytes),
        RecordSource::PaddedClickEvents { pad_bytes } => {
            // Padding needs the schema-driven generator: ClickEvent-shaped records plus a pad field.
            let path = plan.out.join("clickevent.avsc");
            fs::write(&path, mskbench_producer::clickevent::SCHEMA).context("writing clickevent.avsc")?;
            (Some(path), *pad_bytes)
        }
    };
    let (registry, glue) = match &started.registry {
        RegistryAt::Confluent(url) => (url.clone(), None),
        RegistryAt::Glue(name) => (
            String::new(),
            Some(GlueConfig {
                registry: name.clone(),
                endpoint: plan.aws.glue_endpoint.clone(),
                region: Some(plan.aws.region.clone()),
                compression: match pr.wire_format {
                    WireFormat::GlueZlib => GlueCompression::Zlib,
                    _ => GlueCompression::None,
                },
            }),
        ),
    };
    Ok(ProduceConfig {
        brokers: started.brokers.clone(),
        topic: scenario.kafka.topic.clone(),
        partitions: plan.partitions() as i32,
        registry,
        glue,
        rate: None,
        profile: Some(steps_spec(plan)),
        duration_secs: Some(plan.load_duration().as_secs_f64()),
        warmup_secs: plan.window.from_secs,
        seed: Some(scenario.seed),
        schema,
        sizes: SizeControls { pad_bytes, ..SizeControls::default() },
        stats_interval_secs: 0.0,
        hlog: Some(plan.out.join("produce.hlog")),
        progress: false,
        ..ProduceConfig::default()
    })
}

/// The plan's profile as the producer's `steps:` text, until
/// `ProduceConfig` takes a `Profile` value (a test keeps the two equal).
fn steps_spec(plan: &Plan) -> String {
    let steps: Vec<String> = plan
        .scenario
        .phases
        .iter()
        .map(|p| {
            let rate = match p.to_rate {
                Some(to) => format!("{}..{}", p.rate.0, to.0),
                None => p.rate.0.to_string(),
            };
            format!("{rate}:{}ms", p.duration.as_millis())
        })
        .collect();
    format!("steps:{}", steps.join(","))
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
            brokers: "127.0.0.1:9092".into(),
            start_offsets: HashMap::new(),
            registry: RegistryAt::Confluent("http://127.0.0.1:1".into()),
            firehose_url: "http://127.0.0.1:2".into(),
            s3_dir: PathBuf::from("/tmp/s3"),
            dead_letter_dir: PathBuf::from("/tmp/dl"),
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
        let plan = Plan::new(s, Path::new("t.toml"), PathBuf::from("out"), AwsEnv::from_lookup(|_| None));
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
    fn the_producer_gets_the_plans_profile() {
        let s = Scenario::parse(
            "name = \"t\"\nseed = 1\n[[phases]]\nname = \"a\"\nduration = \"2s\"\nrate = 100\nmeasure = false\n\
             [[phases]]\nname = \"b\"\nduration = \"1500ms\"\nrate = 1000\nto_rate = 3000\n",
            "t.toml",
        )
        .unwrap();
        let plan = Plan::new(s, Path::new("t.toml"), PathBuf::from("out"), AwsEnv::default());
        let c = produce_config(&plan, &started()).unwrap();
        let spec = c.profile.as_deref().unwrap();
        assert_eq!(mskbench_producer::schedule::Profile::parse(spec, None).unwrap(), plan.profile);
        assert_eq!(c.warmup_secs, 2.0);
    }
}
