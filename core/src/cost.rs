//! What a run would cost on AWS: its counts times unit prices.
//!
//! Two bills dominate the pipeline. Amazon Data Firehose (Direct PUT)
//! bills ingestion per GB with *every record rounded up to the next 5 KB*
//! (a 190-byte ClickEvent line is billed as 5 KB; the rounding is per
//! record, not per `PutRecordBatch` call), so small records cost far more
//! than their bytes. AWS Lambda bills each invocation as a request plus its
//! duration (1 ms granularity) times the configured memory, in GB-seconds.
//!
//! The prices are inputs: [`Prices::us_east_1`] holds the on-demand list
//! prices for us-east-1 as read on [`PRICES_READ_ON`] (first tier of each:
//! Firehose's first 500 TB a month, Lambda's first 6 billion x86 / 7.5
//! billion Arm GB-seconds a month), without free tiers, savings plans or
//! data transfer. Every figure here is therefore an *estimate* of the
//! run's share of a bill, not a bill. Gigabytes are 2³⁰ bytes and the
//! 5 KB increment 5,120 bytes, as AWS's billing counts them.
//!
//! No I/O; a few floating-point operations per run.

/// Firehose's billing increment per record (5 KB).
pub const FIREHOSE_INCREMENT: u64 = 5 * 1024;
/// Bytes in a billed gigabyte.
pub const GB: f64 = 1_073_741_824.0;
/// When the default prices were read from AWS's public price pages.
pub const PRICES_READ_ON: &str = "2026-12-03";

/// The bytes Firehose bills for a record of `size` bytes: rounded up to the
/// next 5 KB, at least 5 KB.
pub fn billed_record_bytes(size: u64) -> u64 {
    size.div_ceil(FIREHOSE_INCREMENT).max(1) * FIREHOSE_INCREMENT
}

/// The Lambda function's processor architecture (its duration price).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// x86_64, the lab template's.
    #[default]
    X86_64,
    /// arm64 (Graviton).
    Arm64,
}

/// Unit prices, US dollars.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Firehose Direct PUT ingestion, per billed GB.
    pub firehose_usd_per_gb: f64,
    /// Lambda, per request (invocation).
    pub lambda_usd_per_request: f64,
    /// Lambda, per GB-second of duration.
    pub lambda_usd_per_gb_second: f64,
}

impl Prices {
    /// us-east-1 on-demand list prices (read on [`PRICES_READ_ON`]):
    /// Firehose $0.029 per GB; Lambda $0.20 per million requests and
    /// $0.0000166667 (x86_64) or $0.0000133334 (arm64) per GB-second.
    pub fn us_east_1(arch: Architecture) -> Prices {
        Prices {
            firehose_usd_per_gb: 0.029,
            lambda_usd_per_request: 0.20 / 1e6,
            lambda_usd_per_gb_second: match arch {
                Architecture::X86_64 => 0.000_016_666_7,
                Architecture::Arm64 => 0.000_013_333_4,
            },
        }
    }
}

/// What a run used that is billed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Records Firehose accepted (each billed, duplicates included).
    pub firehose_records: u64,
    /// Their billed bytes ([`billed_record_bytes`] summed).
    pub firehose_billed_bytes: u64,
    /// Their actual bytes.
    pub firehose_bytes: u64,
    /// Lambda invocations.
    pub invocations: u64,
    /// Their durations summed, ms.
    pub invocation_ms: u64,
    /// The function's memory, MB.
    pub memory_mb: u64,
}

/// A run's cost estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// GB Firehose bills: records rounded up to 5 KB each.
    pub billed_ingestion_gb: f64,
    /// GB actually sent.
    pub ingested_gb: f64,
    /// Lambda GB-seconds: duration × memory.
    pub lambda_gb_seconds: f64,
    /// Firehose ingestion, USD.
    pub firehose_usd: f64,
    /// Lambda requests, USD.
    pub lambda_requests_usd: f64,
    /// Lambda duration, USD.
    pub lambda_duration_usd: f64,
    /// The sum, USD.
    pub total_usd: f64,
}

/// `usage` at `prices`.
pub fn estimate(usage: Usage, prices: Prices) -> Estimate {
    let billed_ingestion_gb = usage.firehose_billed_bytes as f64 / GB;
    let lambda_gb_seconds = usage.invocation_ms as f64 / 1000.0 * usage.memory_mb as f64 / 1024.0;
    let firehose_usd = billed_ingestion_gb * prices.firehose_usd_per_gb;
    let lambda_requests_usd = usage.invocations as f64 * prices.lambda_usd_per_request;
    let lambda_duration_usd = lambda_gb_seconds * prices.lambda_usd_per_gb_second;
    Estimate {
        billed_ingestion_gb,
        ingested_gb: usage.firehose_bytes as f64 / GB,
        lambda_gb_seconds,
        firehose_usd,
        lambda_requests_usd,
        lambda_duration_usd,
        total_usd: firehose_usd + lambda_requests_usd + lambda_duration_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_billed_in_5_kb_steps_each() {
        assert_eq!(billed_record_bytes(190), 5120, "a ClickEvent line is billed as 5 KB");
        assert_eq!(billed_record_bytes(0), 5120);
        assert_eq!(billed_record_bytes(5120), 5120);
        assert_eq!(billed_record_bytes(5121), 10_240);
        // AWS's examples: 3 KB is billed as 5 KB, 12 KB as 15 KB.
        assert_eq!(billed_record_bytes(3 * 1024), 5 * 1024);
        assert_eq!(billed_record_bytes(12 * 1024), 15 * 1024);
        assert_eq!(billed_record_bytes(1000 * 1024), 1000 * 1024, "a full packed record is billed as its size");
    }

    #[test]
    fn an_estimate_adds_firehose_and_lambda_at_the_given_prices() {
        // A million 190-byte records, unpacked, through 1,000 one-second
        // invocations at 1,024 MB.
        let usage = Usage {
            firehose_records: 1_000_000,
            firehose_billed_bytes: 1_000_000 * 5120,
            firehose_bytes: 190_000_000,
            invocations: 1000,
            invocation_ms: 1_000_000,
            memory_mb: 1024,
        };
        let e = estimate(usage, Prices::us_east_1(Architecture::X86_64));
        assert!((e.billed_ingestion_gb - 4.768_371_582).abs() < 1e-6);
        assert!((e.firehose_usd - 0.138_282_775).abs() < 1e-6);
        assert!((e.lambda_gb_seconds - 1000.0).abs() < 1e-9);
        assert!((e.lambda_duration_usd - 0.016_666_7).abs() < 1e-9);
        assert!((e.lambda_requests_usd - 0.0002).abs() < 1e-12);
        assert!((e.total_usd - (e.firehose_usd + e.lambda_requests_usd + e.lambda_duration_usd)).abs() < 1e-15);
        let arm = estimate(usage, Prices::us_east_1(Architecture::Arm64));
        assert!(arm.lambda_duration_usd < e.lambda_duration_usd);
    }
}
