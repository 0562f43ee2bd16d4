//! `mskbench msk-iam-token`: the MSK IAM token the Kafka clients would
//! send, printed, as AWS's signer libraries print theirs.
//!
//! For checking a deployment's IAM policy by hand (pass it to another
//! client) and for holding our signer to AWS's: for the same credentials,
//! region and `--at` time, AWS's Python signer makes the same presigned
//! request (tests/peers/test_msk_iam.py).

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use aws_credential_types::provider::ProvideCredentials;
use clap::Args as ClapArgs;
use mskbench_kafka::iam::{presign, region_from_brokers};

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
        let region = match args.region.clone().or_else(|| args.brokers.as_deref().and_then(region_from_brokers)) {
            Some(region) => region,
            None => {
                use aws_config::meta::region::ProvideRegion as _;
                match aws_config::default_provider::region::default_provider().region().await {
                    Some(region) => region.to_string(),
                    None => bail!("no AWS region: give --region, or set AWS_REGION"),
                }
            }
        };
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder().build().await;
        let credentials = chain.provide_credentials().await.context("no AWS credentials for MSK IAM")?;
        Ok((region, credentials))
    })?;
    let token = presign(&region, &credentials, args.at.unwrap_or_else(SystemTime::now))?;
    println!("{}", token.value);
    let expires = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(token.expires_ms.max(0) as u64);
    eprintln!("mskbench msk-iam-token: for {region}, expires {}", humantime::format_rfc3339_seconds(expires));
    Ok(ExitCode::SUCCESS)
}
