//! `mskbench run SCENARIO.toml`: the whole pipeline, measured, every record found.
//!
//! A thin shell over `mskbench-harness`: read the scenario, make the plan
//! (the AWS SDK's variables are read here, once), run it on a runtime while
//! drawing progress from the harness's [`Observer`] events and counting
//! Ctrl-C into its [`Interrupts`], then write `result.json` and the reports
//! and map the SLOs to the exit status: 0 every SLO held, 1 one failed, 2
//! usage or fatal error.
//!
//! `--repeat N` runs the scenario N times, each in a process of its own
//! (fresh stand-ins, runtime and log every time) into `run-1/` … `run-N/`
//! under `--out`, the first with the scenario's seed and the others with
//! seeds derived from it ([`repeat_seed`]), then writes the
//! [`Aggregate`] of their results as `result.json` and `report.md` beside
//! them: what `mskbench compare` needs to tell a change from noise. The
//! exit status is 1 when any run failed an SLO. A Ctrl-C lets the run in
//! progress finish (it handles the signal itself) and starts no other;
//! the aggregate then holds the runs that finished.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mskbench_harness::{AwsEnv, Interrupts, Observer, Plan, READ_BACK, Stage};
use mskbench_reports::{Aggregate, Sample};
use mskbench_scenarios::Scenario;

use crate::report::{read_result, write_reports};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
                        mskbench run scenarios/lab.toml\n  \
                        mskbench run scenarios/smoke.toml --repeat 5 --out runs/smoke   # then: mskbench compare A B\n\n\
                        The scenario keys, SLO metrics and shipped scenarios: scenarios/README.md.\n\
                        Exit status: 0 every SLO held (in every run); 1 an SLO failed; 2 usage or fatal error.")]
pub(crate) struct Args {
    /// The scenario file (see scenarios/*.toml and scenarios/README.md).
    scenario: PathBuf,
    /// Run folder for result.json and the reports (default: reports/runs/<time>-<name>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Check the scenario and print the plan without running it.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar: phase changes and, every 5 s, a line of the last second's rates instead.
    #[arg(long)]
    no_progress: bool,
    /// Run the scenario N times (fresh parts each time) into run-1/ … run-N/
    /// under --out, and write their aggregate there as result.json.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// The seed of every generator and fault draw, instead of the scenario's.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Override a scenario key (repeatable), e.g. --set processor.batch_size=500,
    /// --set phases.1.rate=20k, --set firehose.quota=us-east-1.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::flags::key_value)]
    overrides: Vec<(String, String)>,
    /// A label carried into result.json's scenario.tags (repeatable), e.g. --tag commit=abc123.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = crate::flags::key_value)]
    tags: Vec<(String, String)>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let mut scenario = Scenario::load_with(&args.scenario, &args.overrides)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    // The Kafka password is read here, once, and a missing one is a usage
    // error before anything starts.
    let kafka_security = scenario
        .kafka
        .security(&args.scenario, |name| std::env::var(name).ok())
        .context("the scenario's [kafka] security settings")?;
    let out = args.out.clone().unwrap_or_else(|| default_run_dir(&scenario.name));
    refuse_non_empty(&out)?;
    // The SDK's variables, once, here (a bad endpoint URL is refused before anything starts).
    let aws = AwsEnv::from_env()?;
    if args.dry_run {
        print!("{scenario}");
        println!("  into {}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    if args.repeat > 1 {
        return repeat(&args, &scenario, &out);
    }
    let log = fs::File::create(out.join("processor.log")).context("creating processor.log")?;
    mskbench_processor::logging::init_to(std::sync::Mutex::new(log));
    let plan = Plan::new(scenario, &args.scenario, out.clone(), aws).with_kafka_security(kafka_security);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()).max(2))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let progress: Arc<dyn Observer> = Arc::new(Progress::new(!args.no_progress));
    let interrupts = Interrupts::default();
    let result = runtime.block_on(async {
        let counter = interrupts.clone();
        let signals = tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                counter.interrupt();
            }
        });
        let result = mskbench_harness::run(&plan, progress.clone(), interrupts).await;
        signals.abort();
        result
    })?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    let mut result = result;
    result.scenario.overrides = args.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
    result.scenario.tags = args.tags.iter().cloned().collect();

    let text = serde_json::to_string_pretty(&result)? + "\n";
    fs::write(out.join("result.json"), text).context("writing result.json")?;
    let md = write_reports(&result, &out)?;
    print!("{md}");
    eprintln!("mskbench run: results in {}", out.display());
    let failed: Vec<&str> = result.slo.iter().filter(|s| !s.ok).map(|s| s.expr.as_str()).collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("mskbench run: SLO failed: {}", failed.join(", "));
        Ok(ExitCode::from(1))
    }
}

/// Refuses a run folder that holds anything (objects or dead letters of
/// another run would be read back as this one's) or is not a folder; a
/// dry run checks it too.
fn refuse_non_empty(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!("the run folder {} is a file: choose another --out", out.display());
    }
    if fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        anyhow::bail!("the run folder {} is not empty: choose another --out or remove it", out.display());
    }
    Ok(())
}

/// The seed of run `i` (1-based) of a repeat: the scenario's for the
/// first, so that `run-1` is the run a plain `mskbench run` makes; then
/// steps of the 64-bit golden ratio, which keep any two seeds apart.
fn repeat_seed(seed: u64, i: u32) -> u64 {
    seed.wrapping_add(u64::from(i - 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// `--repeat`: the runs, each by this same executable, then their aggregate.
fn repeat(args: &Args, scenario: &Scenario, out: &Path) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the mskbench executable to repeat the run with")?;
    let stop = Arc::new(AtomicBool::new(false));
    // The runs handle Ctrl-C themselves; here it only means "no more runs".
    let signals = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    let on_signal = stop.clone();
    signals.spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::SeqCst);
        }
    });
    let mut results = Vec::new();
    for i in 1..=args.repeat {
        if stop.load(Ordering::SeqCst) {
            eprintln!("mskbench run: interrupted; {} of {} runs finished", results.len(), args.repeat);
            break;
        }
        let seed = repeat_seed(scenario.seed, i);
        let name = format!("run-{i}");
        let dir = out.join(&name);
        eprintln!("mskbench run: run {i} of {} (seed {seed}) into {}", args.repeat, dir.display());
        let mut command = Command::new(&exe);
        command.arg("run").arg(&args.scenario).arg("--out").arg(&dir).arg("--seed").arg(seed.to_string());
        if args.no_progress {
            command.arg("--no-progress");
        }
        for (flag, pairs) in [("--set", &args.overrides), ("--tag", &args.tags)] {
            for (k, v) in pairs {
                command.arg(flag).arg(format!("{k}={v}"));
            }
        }
        // Each run's report is in its folder; stdout gets the aggregate's.
        let status = command.stdout(Stdio::null()).status().with_context(|| format!("starting run {i}"))?;
        match status.code() {
            Some(0 | 1) => {}
            _ if stop.load(Ordering::SeqCst) && dir.join("result.json").exists() => {}
            _ => anyhow::bail!("run {i} of {} failed ({status}); see {}", args.repeat, dir.display()),
        }
        if !dir.join("result.json").exists() {
            break;
        }
        results.push((name, read_result(&dir.join("result.json"))?));
    }
    signals.shutdown_background();
    let aggregate = Aggregate::of(&results)?;
    let text = serde_json::to_string_pretty(&aggregate)? + "\n";
    fs::write(out.join("result.json"), text).context("writing the aggregate result.json")?;
    let md = aggregate.to_markdown();
    fs::write(out.join("report.md"), &md).context("writing the aggregate report.md")?;
    print!("{md}");
    eprintln!("mskbench run: {} runs and their aggregate in {}", results.len(), out.display());
    let failed = aggregate.runs.iter().filter(|r| !r.slo_ok).count();
    if failed == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("mskbench run: an SLO failed in {failed} of {} runs", aggregate.runs.len());
        Ok(ExitCode::from(1))
    }
}

/// `reports/runs/<UTC time>-<name>`.
fn default_run_dir(name: &str) -> PathBuf {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
        .replace(':', "")
        .trim_end_matches('Z')
        .to_owned();
    PathBuf::from("reports").join("runs").join(format!("{stamp}-{name}"))
}

/// The run's view on stderr: a progress bar on a terminal showing the stage
/// and the last second's rates, and stage changes and warnings as plain
/// lines; without a bar (not a terminal, or `--no-progress`), one line of
/// the last second's rates every [`LINE_EVERY_S`] seconds, so a CI log
/// still shows where the time went.
struct Progress {
    bar: Option<ProgressBar>,
}

/// Seconds between the plain progress lines of a run without a bar.
const LINE_EVERY_S: u64 = 5;

/// One sample as a line of at most 100 columns: the stage, the second's
/// records into Kafka (`in`), accepted by Firehose (`out`), throttled and
/// retried, what the processor holds (`in flight`) and the most time left
/// in the stage (the load's end, or the drain's deadline).
fn progress_line(stage: &Stage, s: &Sample, elapsed_secs: u64) -> String {
    let left = stage.ends_at.saturating_sub(elapsed_secs);
    // The stage's end: exact for the load, the deadline for the drain.
    let eta = if left > 0 { format!("  ≤{left}s left") } else { String::new() };
    let name: String = stage.name.chars().take(10).collect();
    format!(
        "{elapsed_secs:>5}s {name:<10}  in {}/s  out {}/s  thr {}/s  retry {}/s  in flight {}{eta}",
        compact(s.produced),
        compact(s.records_accepted),
        compact(s.records_throttled),
        compact(s.retries),
        compact(s.in_flight)
    )
}

/// A count in at most 5 characters: `950`, `12.3k`, `1.25M`.
fn compact(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..999_500 => format!("{:.1}k", n as f64 / 1e3),
        999_500..9_995_000 => format!("{:.2}M", n as f64 / 1e6),
        9_995_000..99_950_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.0}M", n as f64 / 1e6),
    }
}

impl Progress {
    fn new(show_bar: bool) -> Progress {
        let bar = show_bar.then(|| ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr()));
        let bar = bar.filter(|b| !b.is_hidden());
        if let Some(bar) = &bar
            && let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:24}] {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar }
    }

    fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

impl Observer for Progress {
    fn stage(&self, stage: &Stage) {
        if stage.name == READ_BACK {
            if let Some(bar) = &self.bar {
                bar.finish_and_clear();
            }
            self.line("mskbench run: reading back the topic, the delivered objects and the dead letters");
        } else {
            self.line(&format!("mskbench run: {} from t = {} s", stage.name, stage.starts_at));
        }
    }

    fn sample(&self, stage: &Stage, s: &Sample, elapsed_secs: u64) {
        let Some(bar) = &self.bar else {
            if elapsed_secs.is_multiple_of(LINE_EVERY_S) {
                self.line(&progress_line(stage, s, elapsed_secs));
            }
            return;
        };
        bar.set_length(stage.ends_at.max(elapsed_secs));
        bar.set_position(elapsed_secs);
        bar.set_message(format!(
            "{:<10} produced {:>6}/s consumed {:>6}/s accepted {:>6}/s throttled {:>6}/s in flight {:>6}",
            stage.name, s.produced, s.consumed, s.records_accepted, s.records_throttled, s.in_flight
        ));
    }

    fn warn(&self, message: &str) {
        self.line(&format!("mskbench run: warning: {message}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_fits_100_columns_with_big_numbers() {
        let stage = Stage { name: "ramp-to-saturation".into(), starts_at: 0, ends_at: 90_000 };
        let s = Sample {
            produced: 9_999_999,
            consumed: 9_999_999,
            records_accepted: 9_999_999,
            records_throttled: 9_999_999,
            retries: 9_999_999,
            in_flight: 99_999_999,
            ..Sample::default()
        };
        let line = progress_line(&stage, &s, 12);
        assert!(line.starts_with("   12s ramp-to-sa  in 10.0M/s  out 10.0M/s"), "{line}");
        assert!(line.ends_with("in flight 100M  ≤89988s left"), "{line}");
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
        assert_eq!([compact(950), compact(12_345), compact(1_250_000)], ["950", "12.3k", "1.25M"]);
    }
}
