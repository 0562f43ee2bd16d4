//! `mskbench run SCENARIO.toml`: the whole pipeline, measured, every record found.
//!
//! A thin shell over `mskbench-harness`: read the scenario, make the plan
//! (the AWS SDK's variables are read here, once), run it on a runtime while
//! drawing progress from the harness's [`Observer`] events and counting
//! Ctrl-C into its [`Interrupts`], then write `result.json` and the reports
//! and map the SLOs to the exit status: 0 every SLO held, 1 one failed, 2
//! usage or fatal error.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mskbench_harness::{AwsEnv, Interrupts, Observer, Plan, READ_BACK, Stage};
use mskbench_reports::Sample;
use mskbench_scenarios::Scenario;

use crate::report::write_reports;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The scenario file (see scenarios/*.toml).
    scenario: PathBuf,
    /// Run folder for result.json and the reports (default: reports/runs/<time>-<name>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Check the scenario and print the plan without running it.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar (phase changes are still printed).
    #[arg(long)]
    no_progress: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    if args.dry_run {
        print!("{scenario}");
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.out.clone().unwrap_or_else(|| default_run_dir(&scenario.name));
    // Objects or dead letters of another run would be read back as this one's.
    if fs::read_dir(&out).is_ok_and(|mut entries| entries.next().is_some()) {
        anyhow::bail!("the run folder {} is not empty: choose another --out or remove it", out.display());
    }
    fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    let log = fs::File::create(out.join("processor.log")).context("creating processor.log")?;
    mskbench_processor::logging::init_to(std::sync::Mutex::new(log));
    let plan = Plan::new(scenario, &args.scenario, out.clone(), AwsEnv::from_env());

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
/// lines, so a log of a non-interactive run still shows where the time went.
struct Progress {
    bar: Option<ProgressBar>,
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
        if let Some(bar) = &self.bar {
            bar.set_length(stage.ends_at.max(elapsed_secs));
            bar.set_position(elapsed_secs);
            bar.set_message(format!(
                "{:<10} produced {:>6}/s consumed {:>6}/s accepted {:>6}/s throttled {:>6}/s in flight {:>6}",
                stage.name, s.produced, s.consumed, s.records_accepted, s.records_throttled, s.in_flight
            ));
        }
    }

    fn warn(&self, message: &str) {
        self.line(&format!("mskbench run: warning: {message}"));
    }
}
