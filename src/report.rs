//! `mskbench report` and `mskbench compare`: results read back from disk.
//!
//! `report RESULT.json [--out DIR]` re-renders `report.md` and
//! `report.html` (next to the result unless `--out` says otherwise) and
//! prints the Markdown. `compare BASE.json CANDIDATE.json [--threshold PCT]`
//! prints a Markdown table of the key metrics with deltas and exits 1 when
//! one regresses beyond the threshold (2 on unreadable input).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mskbench_reports::{RunResult, compare, html, markdown};

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// A result.json written by `mskbench run`.
    result: PathBuf,
    /// Where to write report.md and report.html (default: beside the result).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// The baseline result.json.
    base: PathBuf,
    /// The result.json to judge against the baseline.
    candidate: PathBuf,
    /// Tolerated change in the wrong direction, in percent.
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    threshold: f64,
}

pub(crate) fn read_result(path: &Path) -> anyhow::Result<RunResult> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    RunResult::from_json(&text).with_context(|| format!("reading {}", path.display()))
}

/// Writes `report.md` and `report.html` for `run` into `dir`.
pub(crate) fn write_reports(run: &RunResult, dir: &Path) -> anyhow::Result<String> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = markdown::render(run);
    for (name, text) in [("report.md", md.clone()), ("report.html", html::render(run))] {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(md)
}

pub(crate) fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let run = read_result(&args.result)?;
    let dir = match args.out {
        Some(dir) => dir,
        None => args.result.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let md = write_reports(&run, &dir)?;
    print!("{md}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn compare_cmd(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        anyhow::bail!("--threshold must be a non-negative number of percent, got {}", args.threshold);
    }
    let base = read_result(&args.base)?;
    let candidate = read_result(&args.candidate)?;
    let comparison = compare(&base, &candidate, args.threshold);
    print!("{}", comparison.to_markdown());
    Ok(if comparison.regressed() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
