//! `mskbench account`: the result of a finished distributed run.
//!
//! A fleet ran apart — producer workers (`produce --workers N`), processor
//! replicas in one group (`process`), a Firehose endpoint — and left the
//! workers' `--stats-json` files, the topic, the delivered objects and the
//! dead letters. This command reads them back through
//! `mskbench_harness::distributed::account` (the workers' ranges of the
//! topic decoded by apache-avro, the same `Ledger` as `mskbench run`) and
//! writes what `mskbench run` writes: `result.json`, `report.md` and
//! `report.html`, plus `merged.json` (the workers' stats merged, as
//! `mskbench merge` writes them). The reports end with a table of the
//! workers, one row each. Exit 0 when every record was delivered or
//! dead-lettered and every worker reported, 1 when a record is
//! unaccounted, duplicated or had several outcomes, or a worker is missing
//! or failed, 2 when something cannot be read.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use mskbench_aws::Access;
use mskbench_aws::s3::S3Bucket;
use mskbench_harness::distributed::{Finished, Objects, account};
use mskbench_kafka::Connection;
use mskbench_producer::clickevent;
use mskbench_producer::merge::WorkerRow;

#[derive(Debug, ClapArgs)]
#[command(after_help = "Example (after `produce --workers 3 … --stats-json w-$I.json` and `process` replicas):\n  \
                        mskbench account w-0.json w-1.json w-2.json --brokers 127.0.0.1:9092 \\\n    \
                        --delivered s3 --dead-letters dlq --out run\n\n\
                        Exit status: 0 every record delivered or dead-lettered once; 1 records unaccounted, \
                        duplicated or with several outcomes, or a worker missing or failed; 2 usage or fatal error.")]
pub(crate) struct Args {
    /// The producer workers' `--stats-json` files.
    #[arg(required = true, value_name = "WORKER.json")]
    workers: Vec<PathBuf>,
    /// Kafka bootstrap servers the run wrote to.
    #[arg(long, value_name = "LIST")]
    brokers: String,
    /// A librdkafka setting for the read-back consumer (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::flags::key_value)]
    kafka: Vec<(String, String)>,
    #[command(flatten)]
    security: crate::kafka_flags::KafkaFlags,
    /// The Firehose destination's objects: a directory (`serve firehose --s3-dir`) or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "DIR|s3://B/P")]
    delivered: String,
    /// The processors' dead letters (their DEAD_LETTER): a directory or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "DIR|s3://B/P")]
    dead_letters: Option<String>,
    /// The schema the records were produced with (`produce --schema`); default: the lab's ClickEvent.
    #[arg(long, value_name = "PATH.avsc")]
    schema: Option<PathBuf>,
    /// A processor's `process --summary-json` file (repeatable): its throttling and retries go into the totals.
    #[arg(long, value_name = "PATH")]
    processor_summary: Vec<PathBuf>,
    /// The run's name in the reports.
    #[arg(long, default_value = "distributed")]
    name: String,
    /// Folder for result.json, report.md, report.html and merged.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let workers = args.workers.iter().map(|p| crate::merge::read_report(p)).collect::<Result<Vec<_>>>()?;
    let schema = match &args.schema {
        Some(path) => {
            fs::read_to_string(path).with_context(|| format!("cannot read the schema file {}", path.display()))?
        }
        None => clickevent::SCHEMA.to_owned(),
    };
    let processors = args
        .processor_summary
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))
        })
        .collect::<Result<Vec<serde_json::Value>>>()?;
    let mut properties = args.kafka.clone();
    let security = args.security.security(&mut properties)?;
    let connection = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(Connection::new(args.brokers.clone(), security))?;
    let finished = Finished {
        name: args.name.clone(),
        connection,
        kafka: properties,
        workers,
        schema,
        delivered: objects(&args.delivered)?,
        dead_letters: args.dead_letters.as_deref().map(objects).transpose()?,
        processors,
    };
    let accounted = account(&finished)?;
    for warning in &accounted.warnings {
        eprintln!("mskbench account: warning: {warning}");
    }
    let out = &args.out;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let text = serde_json::to_string_pretty(&accounted.result)? + "\n";
    fs::write(out.join("result.json"), text).context("writing result.json")?;
    crate::output::write_json(&out.join("merged.json"), &accounted.merged)?;
    let md = crate::report::write_reports(&accounted.result, out)?;
    append_workers(out, &accounted.merged.workers)?;
    print!("{md}");
    eprintln!("mskbench account: results in {}", out.display());
    let t = &accounted.result.totals;
    let clean = t.unaccounted == 0 && t.duplicates == 0 && t.multiple_outcomes == 0 && accounted.merged.complete();
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// How long one S3 call of the read-back may take.
const S3_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `--delivered` or `--dead-letters`: a directory, or `s3://BUCKET/PREFIX`
/// reached with the AWS SDK's default chain (region, credentials) and
/// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` as the endpoint override.
fn objects(text: &str) -> Result<Objects> {
    let Some(rest) = text.strip_prefix("s3://") else { return Ok(Objects::Dir(PathBuf::from(text))) };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        anyhow::bail!("{text:?} names no bucket: give s3://BUCKET/PREFIX");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime for the AWS configuration")?;
    let config = runtime.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).load());
    let region = config.region().context("no AWS region for S3: set AWS_REGION")?.to_string();
    let credentials = config.credentials_provider().context("no AWS credentials provider in the default chain")?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).ok();
    let access = Access { region, credentials, endpoint, timeout: S3_TIMEOUT };
    Ok(Objects::S3 { bucket: S3Bucket::new(&access, bucket)?, prefix: prefix.trim_end_matches('/').to_owned() })
}

/// The workers' table, appended to `report.md` and inserted at the end of
/// `report.html`'s body.
fn append_workers(out: &std::path::Path, rows: &[WorkerRow]) -> Result<()> {
    let header = ["worker", "seed", "sent", "acked", "failed", "target/s", "achieved/s", "late start ms", "ack p99 ms"];
    let cells = |w: &WorkerRow| {
        [
            w.index.to_string(),
            w.seed.to_string(),
            w.sent.to_string(),
            w.acked.to_string(),
            w.failed.to_string(),
            format!("{:.1}", w.rate_target),
            format!("{:.1}", w.rate_achieved),
            format!("{:.1}", w.late_start_ms),
            format!("{:.3}", w.ack_latency_p99_ms),
        ]
    };
    let mut md = String::from("\n## Workers\n\n");
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for w in rows {
        let _ = writeln!(md, "| {} |", cells(w).join(" | "));
    }
    let path = out.join("report.md");
    let mut text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.push_str(&md);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;

    let mut html = String::from("<section><h2>Workers</h2><table><thead><tr>");
    for h in header {
        let _ = write!(html, "<th>{h}</th>");
    }
    html.push_str("</tr></thead><tbody>");
    for w in rows {
        html.push_str("<tr>");
        for c in cells(w) {
            let _ = write!(html, "<td>{c}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></section>\n");
    let path = out.join("report.html");
    let page = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let page = match page.rfind("</body>") {
        Some(at) => format!("{}{html}{}", &page[..at], &page[at..]),
        None => page + &html,
    };
    fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
}
