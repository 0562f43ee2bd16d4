//! `mskbench process` as a user runs it: the built binary consuming a Kafka
//! topic (librdkafka's mock cluster, a few small records — it deletes data
//! past 5 MiB per partition), decoding through the registry stand-in and
//! sending to the Firehose stand-in; and its refusals (exit 2).

// Test helpers panic on setup failures: that is a test failure with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use mskbench_core::wire;
use mskbench_sim::firehose::Buffering;
use mskbench_sim::registry::RegistryConfig;
use mskbench_sim::{FirehoseConfig, FirehoseServer, RegistryServer};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const SCHEMA: &str = include_str!("../core/tests/data/clickevent.avsc");

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() { out.extend(files(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn process_consumes_the_topic_and_delivers_every_record() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("ExampleTopic", 2, 1).unwrap();
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().unwrap();
    // A ClickEvent datum: ip, eventtimestamp, devicetype, event_type, product_type, userid, globalseq, prevglobalseq.
    let schema = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let writer = GenericDatumWriter::builder(&schema).build().unwrap();
    let text = |s: &str| Value::String(s.to_owned());
    for i in 0..120i64 {
        let record = Value::Record(vec![
            ("ip".into(), text("66.249.1.7")),
            ("eventtimestamp".into(), Value::Long(1_764_240_000_000 + i)),
            ("devicetype".into(), text("mobile")),
            ("event_type".into(), Value::Union(0, Box::new(text("home_page")))),
            ("product_type".into(), Value::Union(0, Box::new(text("N/A")))),
            ("userid".into(), Value::Int(1000)),
            ("globalseq".into(), Value::Long(i + 1)),
            ("prevglobalseq".into(), Value::Long(i)),
        ]);
        let mut datum = Vec::new();
        writer.write_value_ref(&mut datum, &record).unwrap();
        let mut value = Vec::new();
        wire::frame_confluent(1, &datum, &mut value);
        producer.send(BaseRecord::to("ExampleTopic").key("1000").payload(&value)).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("mskbench-test-{}-process", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let firehose = rt
        .block_on(FirehoseServer::start(FirehoseConfig {
            s3_dir: dir.join("s3"),
            buffering: Buffering { size_bytes: 1 << 20, interval: Duration::from_millis(100) },
            allow_small_buffers: true,
            streams: vec!["MSKToS3".into()],
            ..FirehoseConfig::default()
        }))
        .unwrap();
    let registry = rt.block_on(RegistryServer::start(RegistryConfig::default())).unwrap();
    let subject = format!("{}/subjects/ExampleTopic-value/versions", registry.url());
    ureq::post(&subject).send(serde_json::json!({ "schema": SCHEMA }).to_string().as_bytes()).unwrap();

    let summary_path = dir.join("summary.json");
    let (firehose_url, registry_url) = (firehose.url(), registry.url());
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["process", "--brokers", &mock.bootstrap_servers(), "--topic", "ExampleTopic", "--group", "lab"])
        .args(["--batch-size", "50", "--batch-window", "50ms", "--idle-exit", "2s"])
        .args(["--summary-json", summary_path.to_str().unwrap()])
        .args(["-E", "DELIVERY_STREAM_NAME=MSKToS3", "-E", &format!("AWS_ENDPOINT_URL_FIREHOSE={firehose_url}")])
        .args(["-E", "CSR=true", "-E", &format!("SCHEMA_REGISTRY_URL={registry_url}"), "-E", "AWS_REGION=us-east-1"])
        .args(["-E", "AWS_ACCESS_KEY_ID=test", "-E", "AWS_SECRET_ACCESS_KEY=test"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!((summary["records_in"].as_u64(), summary["delivered"].as_u64()), (Some(120), Some(120)));
    assert!(summary["invocations"].as_u64().unwrap() >= 3, "batches of at most 50: {summary}");
    rt.block_on(firehose.shutdown()).unwrap();
    rt.block_on(registry.shutdown()).unwrap();
    let text: String = files(&dir.join("s3")).iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let mut seqs: Vec<i64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["globalseq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=120).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn process_refuses_a_bad_variable_with_exit_2_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["process", "--brokers", "127.0.0.1:9", "--group", "g", "-E", "DELIVERY_STREAM_NAME=s"])
        .args(["-E", "AWS_REGION=us-east-1", "-E", "AWS_ACCESS_KEY_ID=a", "-E", "AWS_SECRET_ACCESS_KEY=b"])
        .args(["-E", "RETRIES=many"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RETRIES=\"many\" is invalid"), "{stderr}");
}

#[test]
fn idle_exit_against_a_broker_that_never_answers_stops_with_the_reason_and_exit_2() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let brokers = listener.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(64) {
            match stream {
                Ok(s) => open.push(s),
                Err(_) => break,
            }
        }
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_mskbench"))
        .args(["process", "--brokers", &brokers, "--group", "g", "--idle-exit", "500ms"])
        .args(["-E", "DELIVERY_STREAM_NAME=s", "-E", "CSR=true", "-E", "SCHEMA_REGISTRY_URL=http://127.0.0.1:9"])
        .args(["-E", "AWS_REGION=us-east-1", "-E", "AWS_ACCESS_KEY_ID=a", "-E", "AWS_SECRET_ACCESS_KEY=b"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: ten idle times (the old behaviour, exit 0 as if idle) is 5 s;
    // the answer must come well before a minute in any case.
    let status = common::wait_bounded(&mut child, Duration::from_secs(60), "mskbench process");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("no broker at {brokers} answered")), "{stderr}");
    drop(held);
}
