//! `mskbench run` with `firehose.endpoint = "aws"`, pointed at moto as the
//! reference AWS by the SDK's own endpoint variable (`AWS_ENDPOINT_URL`):
//! the processor sends to moto's Firehose, moto delivers into moto's S3,
//! and the run reads the objects back from the bucket. Credentials and
//! region come from a profile in a temporary `HOME` (`AWS_PROFILE`, no key
//! variables), so the AWS default chain is what signs every call.
//!
//! The stream and the bucket are made, and the objects counted afterwards,
//! by boto3 (moto's own client library, from the test virtual environment):
//! the run's reading of S3 is checked against someone else's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use mskbench_reports::RunResult;
use mskbench_testkit::Moto;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `script` with the test virtual environment's Python (boto3 against
/// `moto`, region eu-west-1, any keys); returns its stdout.
fn boto3(moto: &Moto, script: &str) -> String {
    let python = std::env::var("MSKBENCH_PYTHON").expect("MSKBENCH_PYTHON (scripts/test sets it)");
    let prelude = format!(
        "import boto3, datetime\n\
         kw = dict(endpoint_url={:?}, region_name='eu-west-1', aws_access_key_id='x', aws_secret_access_key='x')\n\
         s3 = boto3.client('s3', **kw)\nfh = boto3.client('firehose', **kw)\n",
        moto.url
    );
    let out = Command::new(python).arg("-c").arg(prelude + script).output().unwrap();
    assert!(out.status.success(), "boto3 script failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A `HOME` with the lab's profile: keys in `credentials`, the region in `config`.
fn home_with_profile(home: &Path) {
    let aws = home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("credentials"), "[lab]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n")
        .unwrap();
    std::fs::write(aws.join("config"), "[profile lab]\nregion = eu-west-1\n").unwrap();
}

#[test]
fn a_run_against_moto_firehose_reads_every_record_back_from_s3() {
    let moto = Moto::start();
    // The lab's stream: 5 MiB / 120 s into MSKToS3/, and an object already
    // there from before the run, which must not be counted as this run's.
    boto3(
        &moto,
        "s3.create_bucket(Bucket='lab-bucket', CreateBucketConfiguration={'LocationConstraint': 'eu-west-1'})\n\
         fh.create_delivery_stream(DeliveryStreamName='MSKToS3-deliverystream', DeliveryStreamType='DirectPut',\n\
           ExtendedS3DestinationConfiguration={'RoleARN': 'arn:aws:iam::123456789012:role/firehose',\n\
             'BucketARN': 'arn:aws:s3:::lab-bucket', 'Prefix': 'MSKToS3/', 'CompressionFormat': 'UNCOMPRESSED',\n\
             'BufferingHints': {'SizeInMBs': 5, 'IntervalInSeconds': 120}})\n\
         hour = datetime.datetime.now(datetime.timezone.utc).strftime('%Y/%m/%d/%H')\n\
         s3.put_object(Bucket='lab-bucket', Key=f'MSKToS3/{hour}/older-run-object', Body=b'{\"ip\":\"1.2.3.4\"}\\n')\n",
    );
    let dir = tempfile::tempdir().unwrap();
    home_with_profile(&dir.path().join("home"));
    let file = dir.path().join("aws.toml");
    std::fs::write(
        &file,
        r#"
name = "aws-moto"
seed = 11
drain = "20s"

[[phases]]
name = "steady"
duration = "3s"
rate = 400

[processor]
batch_size = 200
batch_window = "100ms"

[firehose]
endpoint = "aws"
stream = "MSKToS3-deliverystream"
bucket = "lab-bucket"
prefix = "MSKToS3/"
quota = "us-east-1"
"#,
    )
    .unwrap();
    let run = dir.path().join("run");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mskbench"));
    command
        .args(["run", file.to_str().unwrap(), "--out", run.to_str().unwrap(), "--no-progress"])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("HOME", dir.path().join("home"))
        .env("AWS_PROFILE", "lab")
        // Nothing but the profile: no keys, no region, no other files, no metadata service.
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}\n{stderr}", text(&out.stdout));

    let text = std::fs::read_to_string(run.join("result.json")).unwrap();
    let r = RunResult::from_json(&text).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let t = r.totals;
    assert_eq!((t.produced, t.delivered, t.dead_lettered, t.unaccounted, t.duplicates), (1200, 1200, 0, 0, 0), "{t:?}");
    let settings = &json["scenario"]["settings"];
    assert_eq!(settings["aws_credentials"], "default chain, profile lab", "{settings}");
    assert_eq!(settings["unmatched_lines"], 0, "the older object was left out");
    assert!(stderr.contains("1 object(s) under s3://lab-bucket/MSKToS3/ were there before the run"), "{stderr}");
    assert_eq!(json["scenario"]["quota"]["declared"], true, "the quota is the scenario's, not measured");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("declared `firehose.quota`, not measured"), "{report}");

    // boto3's count of what moto holds: this run's objects (the run folder's
    // copies, line for line) plus the older one.
    let listed = boto3(
        &moto,
        "n = 0; lines = 0\n\
         for page in s3.get_paginator('list_objects_v2').paginate(Bucket='lab-bucket', Prefix='MSKToS3/'):\n\
         \x20   for o in page.get('Contents', []):\n\
         \x20       n += 1; lines += s3.get_object(Bucket='lab-bucket', Key=o['Key'])['Body'].read().count(b'\\n')\n\
         print(n, lines)\n",
    );
    let (objects, lines) = listed.trim().split_once(' ').unwrap();
    let copies = mskbench_sim::firehose::list_objects(&run.join("s3")).unwrap();
    let copied_lines: usize =
        copies.iter().map(|o| std::fs::read(&o.path).unwrap().iter().filter(|&&b| b == b'\n').count()).sum();
    assert_eq!(objects.parse::<usize>().unwrap(), copies.len() + 1, "every object of the run, copied once");
    assert_eq!(lines.parse::<usize>().unwrap(), copied_lines + 1);
    assert_eq!(copied_lines, 1200);
}

#[test]
fn a_run_without_the_bucket_the_stream_delivers_to_is_refused_at_start() {
    let moto = Moto::start();
    boto3(
        &moto,
        "s3.create_bucket(Bucket='other-bucket', CreateBucketConfiguration={'LocationConstraint': 'eu-west-1'})\n\
         fh.create_delivery_stream(DeliveryStreamName='s', DeliveryStreamType='DirectPut',\n\
           ExtendedS3DestinationConfiguration={'RoleARN': 'arn:aws:iam::123456789012:role/firehose',\n\
             'BucketARN': 'arn:aws:s3:::other-bucket', 'Prefix': 'MSKToS3/'})\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aws.toml");
    std::fs::write(
        &file,
        "name = \"x\"\nseed = 1\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nrate = 10\n\
         [firehose]\nendpoint = \"aws\"\nstream = \"s\"\nbucket = \"lab-bucket\"\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["run", file.to_str().unwrap(), "--out", run.to_str().unwrap(), "--no-progress"])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("delivers to s3://other-bucket/MSKToS3/, the scenario reads s3://lab-bucket/MSKToS3/"),
        "{stderr}"
    );
}
