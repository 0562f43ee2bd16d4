//! Inputs and baselines for mskbench's benchmarks.
//!
//! A benchmark is only honest beside what a user would otherwise write, so
//! the baselines live here, kept simple on purpose:
//! - [`baseline::process_event`]: the Lambda function's work as one would
//!   write it in an afternoon — a `serde_json::Value` event, the `base64`
//!   crate, apache-avro's reader into a `Value`, its `serde_json` conversion,
//!   and batches of copied `Vec<u8>` records;
//! - [`baseline::transcode`]: apache-avro datum → `Value` → JSON text;
//! - [`baseline::pack_lines`]: batches of copied lines, as
//!   `process_event` builds them.
//!
//! Inputs are generated from a seed, before any timed phase: ClickEvents
//! that walk the lab producer's session state machine ([`clickevents`]) and
//! Lambda events holding them ([`lab_event`]).
//!
//! Setup code panics on impossible input (a shipped schema that does not
//! parse): a benchmark with broken inputs must stop, not measure nothing.

#![allow(clippy::expect_used)]

use apache_avro::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use mskbench_core::b64;
use mskbench_core::event::{KafkaEvent, KafkaRecord, PartitionRecords, TimestampType};
use mskbench_core::wire;

/// The lab's ClickEvent schema.
pub const CLICK_SCHEMA: &str = include_str!("../../core/tests/data/clickevent.avsc");
/// The Confluent schema id the generated events use.
pub const CLICK_ID: u32 = 1;

/// A small seeded generator (xorshift64*), enough for benchmark inputs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const DEVICES: [&str; 3] = ["mobile", "computer", "tablet"];
const PRODUCTS: [&str; 8] =
    ["cell phones", "laptops", "ear phones", "soundbars", "cd players", "AirPods", "video games", "cameras"];

/// `n` ClickEvents as the lab's producer makes them, as Avro values.
pub fn clickevents(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    let (mut seq, mut prev, mut user) = (0i64, 0i64, 1000i32);
    let t0 = 1_764_240_000_000i64;
    while out.len() < n {
        let device = *rng.pick(&DEVICES);
        let ip = format!("66.249.1.{}", rng.below(255));
        let mut page = "home_page";
        let mut product = "N/A";
        loop {
            seq += 1;
            let (event_type, product_type) = if page == "end" { ("", "") } else { (page, product) };
            out.push(Value::Record(vec![
                ("ip".into(), Value::String(ip.clone())),
                ("eventtimestamp".into(), Value::Long(t0 + seq)),
                ("devicetype".into(), Value::String(device.into())),
                ("event_type".into(), Value::Union(0, Box::new(Value::String(event_type.into())))),
                ("product_type".into(), Value::Union(0, Box::new(Value::String(product_type.into())))),
                ("userid".into(), Value::Int(user)),
                ("globalseq".into(), Value::Long(seq)),
                ("prevglobalseq".into(), Value::Long(prev)),
            ]));
            prev = seq;
            if page == "end" || out.len() == n {
                break;
            }
            page = match page {
                "home_page" => "product_catalog",
                "product_catalog" => *rng.pick(&["home_page", "product_detail"]),
                "product_detail" => *rng.pick(&["product_catalog", "add_to_cart"]),
                "add_to_cart" => *rng.pick(&["product_catalog", "remove_from_cart", "order"]),
                "order" => *rng.pick(&["order_checkout", "remove_from_cart", "product_catalog"]),
                "remove_from_cart" => *rng.pick(&["end", "product_detail", "product_catalog"]),
                _ => "end",
            };
            product = match page {
                "home_page" | "product_catalog" => "N/A",
                "product_detail" => *rng.pick(&PRODUCTS),
                _ => product,
            };
        }
        user += 1000;
    }
    out
}

/// Avro datums of `values` under the ClickEvent schema.
pub fn encode_all(values: &[Value]) -> Vec<Vec<u8>> {
    let schema = click_schema();
    let writer = GenericDatumWriter::builder(&schema).build().expect("the ClickEvent schema resolves");
    values
        .iter()
        .map(|v| {
            let mut out = Vec::new();
            writer.write_value_ref(&mut out, v).expect("generated ClickEvents match the schema");
            out
        })
        .collect()
}

/// The parsed ClickEvent schema.
pub fn click_schema() -> Schema {
    Schema::parse_str(CLICK_SCHEMA).expect("the shipped ClickEvent schema parses")
}

/// A Lambda Kafka event of `n` Confluent-framed ClickEvents spread over
/// `partitions` partitions of ExampleTopic, as JSON text.
pub fn lab_event(n: usize, partitions: i32, seed: u64) -> Vec<u8> {
    let datums = encode_all(&clickevents(n, seed));
    let mut groups: Vec<PartitionRecords<'static>> = (0..partitions)
        .map(|p| PartitionRecords { key: format!("ExampleTopic-{p}").into(), records: Vec::new() })
        .collect();
    for (i, datum) in datums.iter().enumerate() {
        let p = (i % partitions as usize) as i32;
        let mut framed = Vec::with_capacity(datum.len() + 5);
        wire::frame_confluent(CLICK_ID, datum, &mut framed);
        let mut value = String::new();
        b64::encode_append(&framed, &mut value);
        let mut key = String::new();
        b64::encode_append((1000 + i).to_string().as_bytes(), &mut key);
        let group = &mut groups[p as usize];
        group.records.push(KafkaRecord {
            topic: "ExampleTopic".into(),
            partition: p,
            offset: group.records.len() as i64,
            timestamp: 1_764_240_000_000 + i as i64,
            timestamp_type: TimestampType::CreateTime,
            key: Some(key.into()),
            value: Some(value.into()),
            headers: Vec::new(),
        });
    }
    let event = KafkaEvent {
        event_source: Some("aws:kafka".into()),
        event_source_arn: Some("arn:aws:kafka:us-east-1:123456789012:cluster/MSKToS3/abc".into()),
        bootstrap_servers: Some("b-1:9092,b-2:9092".into()),
        records: groups,
    };
    serde_json::to_vec(&event).expect("an event serialises")
}

pub mod baseline {
    //! What a user would write without mskbench-core.

    use std::io::Cursor;

    use apache_avro::Schema;
    use apache_avro::reader::datum::GenericDatumReader;
    use base64::Engine as _;

    /// Firehose's batch limits.
    const MAX_RECORDS: usize = 500;
    const MAX_BYTES: usize = 4 * 1024 * 1024;

    /// Datum → apache-avro `Value` → `serde_json::Value` → text.
    pub fn transcode(reader: &GenericDatumReader<'_>, datum: &[u8]) -> Vec<u8> {
        let value = reader.read_value(&mut Cursor::new(datum)).expect("a valid datum");
        let json = serde_json::Value::try_from(value).expect("a JSON-representable value");
        serde_json::to_vec(&json).expect("serialises")
    }

    /// Packs JSON lines into `PutRecordBatch`-sized batches by copying each
    /// line into its batch, as [`process_event`] does.
    pub fn pack_lines(lines: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
        let mut batches = Vec::new();
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0;
        for line in lines {
            if batch.len() == MAX_RECORDS || bytes + line.len() > MAX_BYTES {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += line.len();
            batch.push(line.clone());
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        batches
    }

    /// The whole event: returns batches of JSON lines, each a `Vec<u8>`.
    pub fn process_event(schema: &Schema, event: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let reader = GenericDatumReader::builder(schema).build().expect("schema resolves");
        let event: serde_json::Value = serde_json::from_slice(event).expect("event JSON");
        let mut batches = Vec::new();
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0;
        let groups = event["records"].as_object().expect("records object");
        for records in groups.values() {
            for record in records.as_array().expect("records array") {
                let Some(value) = record["value"].as_str() else { continue };
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(value) else { continue };
                if raw.len() < 5 || raw[0] != 0 {
                    continue;
                }
                let mut line = transcode(&reader, &raw[5..]);
                line.push(b'\n');
                if batch.len() == MAX_RECORDS || bytes + line.len() > MAX_BYTES {
                    batches.push(std::mem::take(&mut batch));
                    bytes = 0;
                }
                bytes += line.len();
                batch.push(line);
            }
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        batches
    }
}
