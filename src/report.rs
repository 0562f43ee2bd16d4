//! `mskbench report` and `mskbench compare`: results read back from disk.
//!
//! `report RESULT.json [--out DIR]` re-renders `report.md` and
//! `report.html` (next to the result unless `--out` says otherwise) and
//! prints the Markdown. `compare BASE CANDIDATE [--threshold PCT] [--alpha A]
//! [--force]` reads two results — single runs or aggregates of `run
//! --repeat`, as `result.json` files or the run folders holding them —
//! refuses (exit 2) results of different scenarios or settings, or of
//! interrupted runs, unless `--force`, naming what differs, prints a Markdown table of the key
//! metrics with deltas and verdicts, and exits 1 when one regresses (2 on
//! unreadable input). `--html PATH` also writes that table with each
//! measure's percentile curves, every run of both sides overlaid.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mskbench_reports::aggregate::differences;
use mskbench_reports::{Aggregate, Options, RunResult, Side, compare_sides, html, markdown};

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// A result.json written by `mskbench run`.
    result: PathBuf,
    /// Where to write report.md and report.html (default: beside the result).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
                        mskbench compare runs/base runs/candidate   # folders of `run --repeat 5`\n\n\
                        Exit status: 0 nothing regressed; 1 a metric regressed (or went missing); 2 unreadable \
                        or incomparable results (other scenario or settings, an interrupted run: --force).")]
pub(crate) struct CompareArgs {
    /// The baseline: a result.json (one run, or the aggregate of `run --repeat`) or its folder.
    base: PathBuf,
    /// The result to judge against the baseline, as BASE.
    candidate: PathBuf,
    /// Tolerated change of a median in the wrong direction, in percent.
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    threshold: f64,
    /// Significance level of the Mann–Whitney test when both sides are repeated runs.
    #[arg(long, value_name = "A", default_value_t = 0.05)]
    alpha: f64,
    /// Compare results of different scenarios or settings all the same.
    #[arg(long)]
    force: bool,
    /// Also write an HTML page there: the table, and each measure's latency
    /// percentile curves with every run of both sides overlaid.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
}

/// Either kind of result: a `result.json`, the folder holding one, or a
/// folder of run folders (`run-1/` … `run-N/`, each with its `result.json`)
/// without an aggregate of its own, which is aggregated here — how
/// `scripts/bench-compare` compares runs it interleaved between the sides.
fn read_side(path: &Path) -> anyhow::Result<Side> {
    let file = if path.is_dir() { path.join("result.json") } else { path.to_path_buf() };
    if path.is_dir() && !file.exists() {
        let runs = run_folders(path)?;
        if runs.is_empty() {
            anyhow::bail!("{} holds neither a result.json nor run-N/result.json folders", path.display());
        }
        let results = runs
            .into_iter()
            .map(|(name, dir)| read_result(&dir.join("result.json")).map(|r| (name, r)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let aggregate =
            Aggregate::of(&results).with_context(|| format!("aggregating the runs in {}", path.display()))?;
        return Ok(Side::Set(Box::new(aggregate)));
    }
    let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    Side::from_json(&text).with_context(|| format!("reading {}", file.display()))
}

/// The `run-N` folders of `dir` holding a `result.json`, by N.
fn run_folders(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut runs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let n = name.strip_prefix("run-").and_then(|n| n.parse::<u32>().ok());
        if let Some(n) = n
            && entry.path().join("result.json").is_file()
        {
            runs.push((n, name, entry.path()));
        }
    }
    runs.sort();
    Ok(runs.into_iter().map(|(_, name, path)| (name, path)).collect())
}

fn as_refs(runs: &[(String, RunResult)]) -> Vec<(String, &RunResult)> {
    runs.iter().map(|(l, r)| (l.clone(), r)).collect()
}

/// The single runs of a side, labelled for the overlaid curves: the run
/// itself, or each run of a set read from its folder beside the aggregate
/// (`base run-1`, …); a set's run whose folder is gone is left out.
fn side_runs(side: &str, read: &Side, path: &Path) -> anyhow::Result<Vec<(String, RunResult)>> {
    match read {
        Side::Run(r) => Ok(vec![(side.to_owned(), (**r).clone())]),
        Side::Set(a) => {
            let folder = if path.is_dir() {
                path.to_path_buf()
            } else {
                path.parent().map_or_else(PathBuf::new, Path::to_path_buf)
            };
            let mut runs = Vec::new();
            for entry in &a.runs {
                let file = folder.join(&entry.dir).join("result.json");
                if file.is_file() {
                    runs.push((format!("{side} {}", entry.dir), read_result(&file)?));
                }
            }
            Ok(runs)
        }
    }
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
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        anyhow::bail!("--alpha must be a probability between 0 and 1, got {}", args.alpha);
    }
    let base = read_side(&args.base)?;
    let candidate = read_side(&args.candidate)?;
    for (side, path) in [(&base, &args.base), (&candidate, &args.candidate)] {
        if side.interrupted() && !args.force {
            anyhow::bail!(
                "{} is of an interrupted run (Ctrl-C): its numbers cover less than the scenario asked for \
                 (--force compares it anyway)",
                path.display()
            );
        }
        if let Some(slo) = side.aborted_by()
            && !args.force
        {
            anyhow::bail!(
                "{} is of a run stopped early by its SLO `{slo}` (abort = true): its numbers cover less than the \
                 scenario asked for (--force compares it anyway)",
                path.display()
            );
        }
    }
    let differ = differences(base.scenario(), candidate.scenario());
    if !differ.is_empty() {
        let list = differ.join("\n  ");
        if !args.force {
            anyhow::bail!("the results are not of one scenario and settings (--force compares them anyway):\n  {list}");
        }
        eprintln!("mskbench compare: warning: comparing results of different settings (--force):\n  {list}");
    }
    let options = Options { threshold_pct: args.threshold, alpha: args.alpha };
    let comparison = compare_sides(&base, &candidate, options);
    let table = comparison.to_markdown();
    if let Some(page) = &args.html {
        let base_runs = side_runs("base", &base, &args.base)?;
        let candidate_runs = side_runs("candidate", &candidate, &args.candidate)?;
        let text = html::compare_page(&table, &as_refs(&base_runs), &as_refs(&candidate_runs));
        fs::write(page, text).with_context(|| format!("writing {}", page.display()))?;
    }
    print!("{table}");
    Ok(if comparison.regressed() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
