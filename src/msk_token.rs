//! `mskbench msk-iam-token`: the MSK IAM token the Kafka clients would
//! send, printed, as AWS's signer libraries print theirs.
//!
//! For checking a deployment's IAM policy by hand (pass it to another
//! client) and for holding our signer to AWS's: for the same credentials,
//! region and `--at` time, AWS's Python signer makes the same presigned
//! request (tests/peers/test_msk_iam.py).

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use aws_credential_types::provider::ProvideCredentials;
use clap::Args as ClapArgs;
use mskbench_kafka::iam::{default_credentials, presign, signing_region};

#[derive(Debug, ClapArgs)]
#[command(after_help = "The token is a credential for its 15 minutes: it goes to stdout only. The expiry goes to \
                        stderr.\nExit status: 0 a token was printed; 2 no credentials or region.")]
pub(crate) struct Args {
    /// The region to sign for (default: from --brokers' MSK host names, else the AWS region chain).
    #[arg(long)]
    region: Option<String>,
    /// MSK bootstrap brokers, to take the region from their host names.
    #[arg(long, value_name = "LIST")]
    brokers: Option<String>,
    /// Sign as of this time (RFC 3339) instead of now: for comparing signers.
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    at: Option<SystemTime>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (region, credentials) = runtime.block_on(async {
        let region = signing_region(args.region.clone(), args.brokers.as_deref().unwrap_or_default()).await?;
        let credentials =
            default_credentials().await.provide_credentials().await.context("no AWS credentials for MSK IAM")?;
        anyhow::Ok((region, credentials))
    })?;
    let token = presign(&region, &credentials, args.at.unwrap_or_else(SystemTime::now))?;
    println!("{}", token.value);
    let expires = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(token.expires_ms.max(0) as u64);
    eprintln!("mskbench msk-iam-token: for {region}, expires {}", humantime::format_rfc3339_seconds(expires));
    Ok(ExitCode::SUCCESS)
}
