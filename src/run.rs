//! `mskbench run SCENARIO.toml`: the whole pipeline, measured, every record found.
//!
//! A thin shell over `mskbench-harness`: read the scenario, make the plan
//! (the AWS SDK's variables are read here, once), run it on a runtime while
//! drawing progress from the harness's [`Observer`] events and counting
//! Ctrl-C into its [`Interrupts`], then write `result.json` and the reports
//! and map the SLOs to the exit status: 0 every SLO held, 1 one failed, 2
//! usage or fatal error.
//!
//! A scenario with a `[[sweep]]` runs once per value of its key, each point
//! a process of its own (`run_sweep`), and writes the points'
//! `SweepResult` (latency against throughput) beside them.
//!
//! While it runs, the progress line (`Progress`) and, when asked, the
//! metrics endpoint (`--metrics`, [`crate::metrics`]) and the live
//! dashboard (`--serve-dashboard`, [`crate::dashboard`]) are observers of
//! the harness, all told of every stage and second through `Observers`.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mskbench_harness::{AwsEnv, Interrupts, Observer, Plan, READ_BACK, Snapshot, Stage};
use mskbench_reports::Aggregate;
use mskbench_reports::model::QuotaLines;
use mskbench_reports::sweep::SweepResult;
use mskbench_scenarios::{Scenario, Sweep};

use crate::report::{read_result, write_reports};
use crate::{dashboard, metrics};

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
    /// Serve the run's live counters and latency histograms at http://ADDR/metrics
    /// (Prometheus text, or OpenMetrics when asked), e.g. 127.0.0.1:9464; port 0 picks one.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Serve a live web page of the run's charts, redrawn every second, at http://ADDR/
    /// (e.g. 127.0.0.1:8080; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    serve_dashboard: Option<std::net::SocketAddr>,
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
    if let Some(sweep) = scenario.sweep.first() {
        if args.repeat > 1 {
            anyhow::bail!("--repeat with a [[sweep]] is not supported: sweep once, or repeat a point with --set");
        }
        // Every point checked as the override it becomes, before anything runs.
        for value in sweep.set_values() {
            let mut overrides = args.overrides.clone();
            overrides.push((sweep.key.clone(), value));
            Scenario::load_with(&args.scenario, &overrides)?;
        }
    }
    if args.dry_run {
        print!("{scenario}");
        println!("  into {}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    if let Some(sweep) = scenario.sweep.first() {
        return run_sweep(&args, &scenario, sweep, &out);
    }
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
        let mut observers = vec![progress.clone()];
        let endpoint = match args.metrics {
            Some(addr) => {
                let endpoint = metrics::Endpoint::start(addr).await?;
                eprintln!("mskbench run: metrics on http://{}/metrics", endpoint.addr);
                observers.push(endpoint.observer());
                Some(endpoint)
            }
            None => None,
        };
        let dashboard = match args.serve_dashboard {
            Some(addr) => {
                let q = plan.scenario.firehose.quota;
                let quota = QuotaLines {
                    records_per_sec: q.records_per_sec as f64,
                    requests_per_sec: q.requests_per_sec as f64,
                    bytes_per_sec: q.bytes_per_sec as f64,
                    declared: plan.scenario.firehose.endpoint != mskbench_scenarios::Endpoint::Embedded,
                };
                let dashboard = dashboard::Dashboard::start(addr, &plan.scenario.name, Some(quota)).await?;
                eprintln!("mskbench run: dashboard on http://{}/", dashboard.addr);
                observers.push(dashboard.observer());
                Some(dashboard)
            }
            None => None,
        };
        let result = mskbench_harness::run(&plan, Arc::new(Observers(observers)), interrupts).await;
        signals.abort();
        if let Some(endpoint) = endpoint {
            endpoint.stop();
        }
        if let Some(dashboard) = dashboard {
            dashboard.stop();
        }
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
    if let Some(a) = &result.scenario.aborted {
        eprintln!("mskbench run: aborted at t = {} s by the SLO `{}` (abort = true)", a.at_s, a.slo);
    }
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
        if let Some(addr) = args.metrics {
            command.arg("--metrics").arg(addr.to_string());
        }
        if let Some(addr) = args.serve_dashboard {
            command.arg("--serve-dashboard").arg(addr.to_string());
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

/// `[[sweep]]`: one run a value, each by this same executable with
/// `--set KEY=VALUE` (and `--set sweep=[]`, so the point does not sweep
/// again) into `point-1/` … under `--out`, then the [`SweepResult`] of
/// their results as `result.json`, `report.md` and `sweep.html` beside
/// them. Exit 1 when a point failed an SLO; a Ctrl-C lets the point in
/// progress finish and starts no other.
fn run_sweep(args: &Args, scenario: &Scenario, sweep: &Sweep, out: &Path) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the mskbench executable to run the sweep's points with")?;
    let stop = Arc::new(AtomicBool::new(false));
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
    let values = sweep.set_values();
    let mut results = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            eprintln!("mskbench run: interrupted; {} of {} points finished", results.len(), values.len());
            break;
        }
        let name = format!("point-{}", i + 1);
        let dir = out.join(&name);
        eprintln!(
            "mskbench run: sweep point {} of {}: {} = {value}, into {}",
            i + 1,
            values.len(),
            sweep.key,
            dir.display()
        );
        let mut command = Command::new(&exe);
        command.arg("run").arg(&args.scenario).arg("--out").arg(&dir).arg("--seed").arg(scenario.seed.to_string());
        if args.no_progress {
            command.arg("--no-progress");
        }
        for (k, v) in &args.overrides {
            command.arg("--set").arg(format!("{k}={v}"));
        }
        command.arg("--set").arg(format!("{}={value}", sweep.key)).arg("--set").arg("sweep=[]");
        for (k, v) in &args.tags {
            command.arg("--tag").arg(format!("{k}={v}"));
        }
        let status =
            command.stdout(Stdio::null()).status().with_context(|| format!("starting sweep point {}", i + 1))?;
        match status.code() {
            Some(0 | 1) => {}
            _ if stop.load(Ordering::SeqCst) && dir.join("result.json").exists() => {}
            _ => anyhow::bail!(
                "sweep point {} ({} = {value}) failed ({status}); see {}",
                i + 1,
                sweep.key,
                dir.display()
            ),
        }
        if !dir.join("result.json").exists() {
            break;
        }
        results.push((value.clone(), name, read_result(&dir.join("result.json"))?));
    }
    signals.shutdown_background();
    let result = SweepResult::of(&scenario.name, &sweep.key, &results);
    let text = serde_json::to_string_pretty(&result)? + "\n";
    fs::write(out.join("result.json"), text).context("writing the sweep's result.json")?;
    let md = result.to_markdown();
    fs::write(out.join("report.md"), &md).context("writing the sweep's report.md")?;
    fs::write(out.join("sweep.html"), result.to_html()).context("writing sweep.html")?;
    print!("{md}");
    eprintln!("mskbench run: {} sweep points and their chart (sweep.html) in {}", result.points.len(), out.display());
    let failed = result.points.iter().filter(|p| !p.slo_ok).count();
    if failed == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("mskbench run: an SLO failed at {failed} of {} points", result.points.len());
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

/// Several observers of one run, each told everything in turn.
struct Observers(Vec<Arc<dyn Observer>>);

impl Observer for Observers {
    fn stage(&self, stage: &Stage) {
        self.0.iter().for_each(|o| o.stage(stage));
    }

    fn sample(&self, snapshot: &Snapshot) {
        self.0.iter().for_each(|o| o.sample(snapshot));
    }

    fn warn(&self, message: &str) {
        self.0.iter().for_each(|o| o.warn(message));
    }
}

/// The run's view on stderr: a progress bar on a terminal showing the stage
/// and the last second, and stage changes and warnings as plain lines;
/// without a bar (not a terminal, or `--no-progress`), one line every
/// [`LINE_EVERY_S`] seconds covering those seconds, so a CI log still shows
/// where the time went.
struct Progress {
    bar: Option<ProgressBar>,
    /// The seconds since the last line, from the first sample on.
    interval: Mutex<Option<Interval>>,
}

/// Seconds between the plain progress lines of a run without a bar.
const LINE_EVERY_S: u64 = 5;

/// What the seconds since the last line added up to.
struct Interval {
    secs: u64,
    produced: u64,
    accepted: u64,
    retries: u64,
    /// `PutRecordBatch` latency, µs.
    put_us: Histogram<u64>,
    /// Accept latency (Kafka timestamp → accepted by Firehose), ms.
    accept_ms: Histogram<u64>,
}

impl Interval {
    fn new(like: &Snapshot) -> Interval {
        let empty = |h: &Histogram<u64>| {
            let mut h = h.clone();
            h.reset();
            h
        };
        Interval {
            secs: 0,
            produced: 0,
            accepted: 0,
            retries: 0,
            put_us: empty(&like.put_latency_us_last),
            accept_ms: empty(&like.accept_latency_ms_last),
        }
    }

    /// Empty again, for the next interval.
    fn clear(&mut self) {
        (self.secs, self.produced, self.accepted, self.retries) = (0, 0, 0, 0);
        self.put_us.reset();
        self.accept_ms.reset();
    }

    fn add(&mut self, s: &Snapshot) {
        self.secs += 1;
        self.produced += s.sample.produced;
        self.accepted += s.sample.records_accepted;
        self.retries += s.sample.retries;
        // Same bounds from one `Live`: adding cannot fail; if it did, the line shows fewer values.
        let _ = self.put_us.add(&s.put_latency_us_last);
        let _ = self.accept_ms.add(&s.accept_latency_ms_last);
    }
}

/// The interval as a line of at most 100 columns: seconds since the start,
/// the stage, the interval's mean rates of records into Kafka (`in`) and
/// accepted by Firehose (`out`), p50/p99 of the accept latency (a record's
/// Kafka timestamp to Firehose accepting it: end to end but for Firehose's
/// buffering) and of `PutRecordBatch` calls (measured phases only), the
/// event source mapping's lag (acknowledged records not yet handed to an
/// invocation), records resent per second, and the most time left in the
/// stage (the load's end, or the drain's deadline).
fn progress_line(s: &Snapshot, i: &Interval) -> String {
    let left = s.stage.ends_at.saturating_sub(s.t);
    let eta = if left > 0 { format!(" ≤{}", short_secs(left)) } else { String::new() };
    let name: String = s.stage.name.chars().take(7).collect();
    let per_sec = |n: u64| compact(n.div_ceil(i.secs.max(1)));
    let pair = |h: &Histogram<u64>, ms_per_unit: f64| {
        if h.is_empty() {
            "–".to_owned()
        } else {
            let at = |q: f64| short_ms(h.value_at_quantile(q) as f64 * ms_per_unit);
            format!("{}/{}", at(0.5), at(0.99))
        }
    };
    format!(
        "{:>4}s {name:<7} in {}/s out {}/s accept {} put {} lag {} retry {}/s{eta}",
        s.t,
        per_sec(i.produced),
        per_sec(i.accepted),
        pair(&i.accept_ms, 1.0),
        pair(&i.put_us, 1e-3),
        compact(s.lag()),
        per_sec(i.retries),
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

/// Milliseconds in at most 5 characters: `0.4ms`, `450ms`, `1.25s`, `12.5s`, `125s`.
fn short_ms(ms: f64) -> String {
    match ms {
        ..1.0 => format!("{ms:.1}ms"),
        ..999.5 => format!("{ms:.0}ms"),
        ..9_995.0 => format!("{:.2}s", ms / 1e3),
        ..99_950.0 => format!("{:.1}s", ms / 1e3),
        _ => format!("{:.0}s", (ms / 1e3).min(99_999.0)),
    }
}

/// Seconds in at most 4 characters: `48s`, `12m`, `25h`.
fn short_secs(s: u64) -> String {
    match s {
        0..100 => format!("{s}s"),
        100..6_000 => format!("{}m", s.div_ceil(60)),
        _ => format!("{}h", s.div_ceil(3600).min(999)),
    }
}

impl Progress {
    fn new(show_bar: bool) -> Progress {
        let bar = show_bar.then(|| ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr()));
        let bar = bar.filter(|b| !b.is_hidden());
        // The line is the bar: it says the time, the stage and what is left, in 100 columns.
        if let Some(bar) = &bar
            && let Ok(style) = ProgressStyle::with_template("{msg}")
        {
            bar.set_style(style);
        }
        Progress { bar, interval: Mutex::new(None) }
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

    fn sample(&self, s: &Snapshot) {
        let mut held = self.interval.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let interval = held.get_or_insert_with(|| Interval::new(s));
        interval.add(s);
        match &self.bar {
            Some(bar) => {
                bar.set_length(s.stage.ends_at.max(s.t));
                bar.set_position(s.t);
                bar.set_message(progress_line(s, interval));
            }
            None if s.t.is_multiple_of(LINE_EVERY_S) => self.line(&progress_line(s, interval)),
            None => return,
        }
        interval.clear();
    }

    fn warn(&self, message: &str) {
        self.line(&format!("mskbench run: warning: {message}"));
    }
}

#[cfg(test)]
mod tests {
    use mskbench_reports::Sample;

    use super::*;

    fn histogram(values_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for &v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    fn snapshot(t: u64, name: &str, ends_at: u64, big: bool) -> Snapshot {
        let n = if big { 9_999_999 } else { 1000 };
        Snapshot {
            t,
            stage: Stage { name: name.into(), starts_at: 0, ends_at },
            sample: Sample { produced: n, records_accepted: n, retries: n, ..Sample::default() },
            sent: n * t,
            acked: if big { 999_999_999 } else { n * t },
            live: mskbench_harness::LiveSnapshot { consumed: if big { 0 } else { n * t - 350 }, ..Default::default() },
            put_latency_us: histogram(&[]),
            put_latency_us_last: histogram(if big { &[3_000_000_000, 3_000_000_000] } else { &[15_000, 80_000] }),
            accept_latency_ms: histogram(&[]),
            accept_latency_ms_last: histogram(if big { &[3_000_000, 3_000_000] } else { &[120, 450] }),
        }
    }

    #[test]
    fn a_progress_line_covers_its_interval_and_fits_100_columns_with_big_numbers() {
        let first = snapshot(4, "steady", 60, false);
        let mut i = Interval::new(&first);
        for t in 1..=5 {
            i.add(&snapshot(t, "steady", 60, false));
        }
        let line = progress_line(&snapshot(5, "steady", 60, false), &i);
        assert_eq!(
            line,
            "   5s steady  in 1000/s out 1000/s accept 120ms/450ms put 15ms/80ms lag 350 retry 1000/s ≤55s"
        );
        let big = snapshot(9_999, "ramp-to-saturation", 90_000, true);
        let mut i = Interval::new(&big);
        i.add(&big);
        let line = progress_line(&big, &i);
        assert!(line.starts_with("9999s ramp-to in 10.0M/s out 10.0M/s accept 3000s/3000s put "), "{line}");
        assert!(line.ends_with("lag 1000M retry 10.0M/s ≤23h"), "{line}");
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
        // Nothing measured yet: dashes, not zeros.
        let mut quiet = snapshot(1, "warm-up", 2, false);
        quiet.accept_latency_ms_last.reset();
        quiet.put_latency_us_last.reset();
        let mut i = Interval::new(&quiet);
        i.add(&quiet);
        assert!(progress_line(&quiet, &i).contains("accept – put – lag"), "{}", progress_line(&quiet, &i));
        assert_eq!([compact(950), compact(12_345), compact(1_250_000)], ["950", "12.3k", "1.25M"]);
        assert_eq!(
            [short_ms(0.42), short_ms(450.0), short_ms(1250.0), short_ms(125_000.0)],
            ["0.4ms", "450ms", "1.25s", "125s"]
        );
        assert_eq!([short_secs(48), short_secs(700), short_secs(90_000)], ["48s", "12m", "25h"]);
    }
}
