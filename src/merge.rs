//! `mskbench merge`: one result from a fleet's worker reports.
//!
//! Reads each worker's `produce --stats-json` file, merges them with
//! `mskbench_producer::merge` (sums, histograms added from their logs,
//! rates over the fleet's window, one row per worker) and writes the
//! result, which has every key of one worker's file. The warnings go to
//! stderr as well as into the file. Exit 0 when every worker of the fleet
//! reported and none failed records or stopped early, 1 otherwise (the
//! result is still written), 2 when the files cannot be read or are not
//! one run's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use mskbench_producer::Report;
use mskbench_producer::merge::{Merged, merge};

#[derive(Debug, ClapArgs)]
#[command(after_help = "Example:\n  \
                        mskbench merge worker-0.json worker-1.json worker-2.json --out merged.json\n\n\
                        Exit status: 0 every worker reported and none failed; 1 a worker is missing or failed \
                        records (the result is still written); 2 the files cannot be read or are not one run's.")]
pub(crate) struct Args {
    /// The workers' `mskbench produce --stats-json` files.
    #[arg(required = true, value_name = "WORKER.json")]
    workers: Vec<PathBuf>,
    /// Write the merged result here (`-`: stdout).
    #[arg(long, default_value = "-")]
    out: PathBuf,
}

/// Reads one worker's report.
pub(crate) fn read_report(path: &std::path::Path) -> Result<Report> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a `mskbench produce --stats-json` file", path.display()))
}

/// Reads and merges the workers' reports.
pub(crate) fn merge_files(paths: &[PathBuf]) -> Result<Merged> {
    let reports = paths.iter().map(|p| read_report(p)).collect::<Result<Vec<_>>>()?;
    Ok(merge(&reports)?)
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let merged = merge_files(&args.workers)?;
    for warning in &merged.warnings {
        eprintln!("mskbench merge: warning: {warning}");
    }
    eprint!("{}", merged.report.summary());
    crate::output::write_json(&args.out, &merged)?;
    Ok(if merged.complete() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
