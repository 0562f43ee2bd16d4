//! `mskbench process-event`: one captured Lambda Kafka event, offline.
//!
//! The lab's Lambda logs the events it receives, so a user can replay one
//! here and see exactly what the function would send to Firehose: JSON lines
//! on stdout in input order, or with `--out-dir` one file per
//! `PutRecordBatch` call (`batch-000001.ndjson`, …) plus `rejected.ndjson`
//! holding every record that could not be decoded, with its reason and its
//! original value, so nothing is lost. Every rejection is also reported on
//! stderr with its topic, partition and offset.
//!
//! Writer schemas come from `--schema ID=PATH.avsc` (a Confluent id or a
//! Glue schema-version UUID) and, for ids not given, from a Confluent
//! registry at `--registry URL`.
//!
//! Exit status: 0 every record decoded, 1 some rejected (the good ones are
//! still written), 2 usage or fatal error.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use mskbench_core::packer::PackLimits;
use mskbench_core::wire::{SchemaKey, WireMode};
use mskbench_core::{EventProcessor, KafkaEvent, Output, Reason};

use mskbench_processor::confluent::ConfluentRegistry;
use mskbench_processor::schemas::Schemas;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The event JSON file; `-` or nothing reads stdin.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,
    /// Confluent Schema Registry URL for schema ids not given with --schema.
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// A writer schema for a Confluent id or Glue schema-version UUID (repeatable).
    #[arg(long = "schema", value_name = "ID=PATH.avsc", value_parser = parse_schema_arg)]
    schemas: Vec<(SchemaKey, PathBuf)>,
    /// Which framings to read: confluent (CSR=true), glue (CSR=false) or
    /// glue-secondary (CSR=false, SECONDARY_DESERIALIZER=true: both).
    #[arg(long, value_name = "MODE", default_value = "glue-secondary")]
    wire_format: WireMode,
    /// Most records per PutRecordBatch call (1..=500).
    #[arg(long, value_name = "N", default_value_t = 500)]
    batch_records: usize,
    /// Write one NDJSON file per batch and rejected.ndjson here instead of stdout.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Write the summary (records_in, records_out, rejected, batches, bytes_out) here as JSON (`-`: stdout).
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
}

fn parse_schema_arg(s: &str) -> Result<(SchemaKey, PathBuf), String> {
    let (id, path) = s.split_once('=').ok_or_else(|| format!("expected ID=PATH.avsc, got {s:?}"))?;
    Ok((id.parse()?, PathBuf::from(path)))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let limits = PackLimits::with_max_records(args.batch_records).context("--batch-records")?;
    let registry = args.registry.as_deref().map(ConfluentRegistry::new).transpose()?;
    let have_registry = registry.is_some();
    // No Glue client: Glue schema versions come from --schema only.
    let schemas = Schemas::new(registry, None);
    for (key, path) in &args.schemas {
        let text = fs::read_to_string(path).with_context(|| format!("reading schema {}", path.display()))?;
        schemas.cache().insert_json(*key, &text).with_context(|| format!("schema {} for {key}", path.display()))?;
    }

    let input = read_input(args.input.as_deref())?;
    let source = args.input.as_deref().map_or("stdin".into(), |p| p.display().to_string());
    let event = KafkaEvent::parse(&input).with_context(|| format!("reading {source}"))?;
    let processor = EventProcessor::new(args.wire_format, limits);
    let mut out = Output::new();
    // The registry client is async; one event, so one small runtime.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(schemas.process(&processor, &event, &mut out));

    report_rejections(&out, have_registry)?;
    match &args.out_dir {
        Some(dir) => write_batches(dir, &out, &event)?,
        None => write_stdout(&out.data)?,
    }
    if let Some(path) = &args.summary_json {
        crate::output::write_json(path, &out.summary)?;
    }
    let s = &out.summary;
    eprintln!(
        "mskbench: {} records in, {} out in {} batches ({} bytes), {} rejected",
        s.records_in,
        s.records_out,
        s.batches,
        s.bytes_out,
        s.rejected.total()
    );
    debug_assert!(s.adds_up());
    Ok(if s.rejected.total() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn read_input(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        None => read_stdin(),
        Some(p) if p.as_os_str() == "-" => read_stdin(),
        Some(p) => fs::read(p).with_context(|| format!("reading {}", p.display())),
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io::stdin().lock().read_to_end(&mut buf).context("reading stdin")?;
    Ok(buf)
}

fn report_rejections(out: &Output, have_registry: bool) -> anyhow::Result<()> {
    let mut stderr = io::stderr().lock();
    let mut glue_unknown = false;
    for r in &out.rejections {
        writeln!(
            stderr,
            "mskbench: rejected record {} ({} partition {} offset {}): {}: {}",
            r.input_index,
            out.topic(&r.provenance),
            r.provenance.partition,
            r.provenance.offset,
            r.reason,
            r.detail
        )?;
        glue_unknown |= r.reason == Reason::UnknownSchema && r.detail.contains("glue");
    }
    if glue_unknown {
        writeln!(stderr, "mskbench: hint: Glue schema versions are read from --schema UUID=PATH.avsc")?;
    } else if !have_registry && out.summary.rejected.get(Reason::UnknownSchema) > 0 {
        writeln!(stderr, "mskbench: hint: give the schema with --schema ID=PATH.avsc or a --registry URL")?;
    }
    Ok(())
}

fn write_stdout(data: &[u8]) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(data).and_then(|()| stdout.flush()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing stdout"),
    }
}

/// Writes `batch-NNNNNN.ndjson` per batch and `rejected.ndjson`, replacing
/// such files left by an earlier run.
fn write_batches(dir: &Path, out: &Output, event: &KafkaEvent<'_>) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if (name.starts_with("batch-") && name.ends_with(".ndjson")) || name == "rejected.ndjson" {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for (i, batch) in out.batches.iter().enumerate() {
        let records = out.batch_records(batch);
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            bail!("internal error: batch {i} is empty");
        };
        let path = dir.join(format!("batch-{:06}.ndjson", i + 1));
        // Packed records are contiguous in `data`: a batch is one slice.
        fs::write(&path, &out.data[first.start..last.end]).with_context(|| format!("writing {}", path.display()))?;
    }
    if !out.rejections.is_empty() {
        let records: Vec<_> = event.iter_records().collect();
        let mut text = Vec::new();
        for r in &out.rejections {
            let record = records.get(r.input_index as usize);
            let line = serde_json::json!({
                "topic": out.topic(&r.provenance),
                "partition": r.provenance.partition,
                "offset": r.provenance.offset,
                "reason": r.reason.as_str(),
                "detail": r.detail,
                "record": record,
            });
            serde_json::to_writer(&mut text, &line)?;
            text.push(b'\n');
        }
        let path = dir.join("rejected.ndjson");
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
