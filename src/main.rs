//! `mskbench`: the one command line of the suite.
//!
//! Each subcommand lives in its own module and returns an [`ExitCode`];
//! `main` only parses arguments and turns an error that escaped a command
//! into exit code 2 with its chain of causes, as the contract in
//! ARCHITECTURE.md promises (0 success, 1 "ran, but something failed", 2
//! usage or fatal error). clap already exits 2 on usage errors.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod account;
mod dashboard;
mod flags;
mod kafka_flags;
mod merge;
mod metrics;
mod msk_token;
mod output;
mod process;
mod process_event;
mod produce;
mod report;
mod run;
mod serve;

/// Benchmark and load-generation suite for the MSK → Lambda → Firehose → S3 pipeline.
#[derive(Debug, Parser)]
#[command(
    name = "mskbench",
    version,
    about,
    max_term_width = 100,
    after_help = "Start with the lab as deployed, on the embedded default (no AWS, no Kafka needed):\n  \
                  mskbench run scenarios/lab.toml\n\n\
                  Scenario files: scenarios/README.md. Every command exits 0 when all went well, 1 when \
                  the run worked but its verdict failed (an SLO, a regression, records failed), and 2 on \
                  usage or fatal errors."
)]
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
    /// Account a finished distributed run (workers' stats, topic, objects, dead letters) into result.json and reports.
    Account(account::Args),
    /// Merge a fleet's `produce --workers` stats files into one result (sums, exact histograms, fleet rates).
    Merge(merge::Args),
    /// Re-render report.md and report.html from a run's result.json.
    Report(report::ReportArgs),
    /// Compare two results (single runs or `run --repeat` aggregates); exit 1 when a metric regresses.
    Compare(report::CompareArgs),
    /// Print the MSK IAM (AWS_MSK_IAM) token the Kafka clients would send, from the AWS credential chain.
    MskIamToken(msk_token::Args),
}

fn main() -> ExitCode {
    let matches = negative_numbers_as_values(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Process(args) => process::run(args),
        Command::ProcessEvent(args) => process_event::run(args),
        Command::Produce(args) => produce::run(*args),
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Account(args) => account::run(args),
        Command::Report(args) => report::report(args),
        Command::Compare(args) => report::compare_cmd(args),
        Command::MskIamToken(args) => msk_token::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mskbench: error: {}", said_once(&err));
            ExitCode::from(2)
        }
    }
}

/// Every command with `-5` read as a value, so that a negative number gets
/// its flag's message about the value ("not a rate", "must be at least 1")
/// rather than clap's "unexpected argument '-5'".
fn negative_numbers_as_values(command: clap::Command) -> clap::Command {
    command.allow_negative_numbers(true).mut_subcommands(negative_numbers_as_values)
}

/// The error and its causes, each said once. Many errors put their cause
/// in their own message (`"not a result: {0}"`) and name it as their
/// source as well, so printing the chain as it is (`{:#}`) would repeat
/// it: a cause whose text the message before it already holds is left out.
fn said_once(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message holding its cause, which it also names as its source.
    #[derive(Debug)]
    struct Wrapping(std::fmt::Error);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "not a result: {}", self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_its_message_is_said_once() {
        let err = anyhow::Error::new(Wrapping(std::fmt::Error)).context("reading r.json");
        assert_eq!(
            format!("{err:#}"),
            "reading r.json: not a result: an error occurred when formatting an argument: an error occurred when formatting an argument"
        );
        assert_eq!(said_once(&err), "reading r.json: not a result: an error occurred when formatting an argument");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(said_once(&plain), "outer: inner", "causes not in the message are kept");
    }
}
