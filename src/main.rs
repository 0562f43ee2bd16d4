//! `mskbench`: the one command line of the suite.
//!
//! Each subcommand lives in its own module and returns an [`ExitCode`];
//! `main` only parses arguments and turns an error that escaped a command
//! into exit code 2 with its chain of causes, as the contract in
//! ARCHITECTURE.md promises (0 success, 1 "ran, but something failed", 2
//! usage or fatal error). clap already exits 2 on usage errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod process;
mod process_event;
mod produce;
mod report;
mod run;
mod serve;

/// Benchmark and load-generation suite for the MSK → Lambda → Firehose → S3 pipeline.
#[derive(Debug, Parser)]
#[command(name = "mskbench", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume a topic like the MSK event source mapping and run the processor on each batch.
    Process(process::Args),
    /// Decode one Lambda Kafka event into JSON lines, as the Lambda function does.
    ProcessEvent(process_event::Args),
    /// Seed a topic with Avro records (ClickEvents or any schema) at a controlled rate.
    Produce(Box<produce::Args>),
    /// Run a scenario end to end and report throttling, retries, latency and loss.
    Run(run::Args),
    /// Run a local stand-in (Kafka broker, Firehose endpoint or schema registry) until SIGINT/SIGTERM.
    Serve(serve::Args),
    /// Re-render report.md and report.html from a run's result.json.
    Report(report::ReportArgs),
    /// Compare two results (single runs or `run --repeat` aggregates); exit 1 when a metric regresses.
    Compare(report::CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Process(args) => process::run(args),
        Command::ProcessEvent(args) => process_event::run(args),
        Command::Produce(args) => produce::run(*args),
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Report(args) => report::report(args),
        Command::Compare(args) => report::compare_cmd(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mskbench: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
