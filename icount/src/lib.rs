//! The instruction-count benchmarks' cases (`benches/icount.rs`): each
//! struct holds one hot path's inputs and warmed state, built by `new` (left
//! out of the count), and `run` is the work that is counted.
//!
//! Wall-clock benchmarks (criterion, in `benches/`) swing by tens of
//! percent on shared CI machines; an instruction count does not. For a given
//! binary and input it is the same on every run, so `scripts/bench-compare`
//! gates on it. That holds only if `run` is deterministic: inputs come from
//! fixed seeds, the clock is read in `new` (a clock read is a system call
//! under Valgrind), nothing starts a thread, and `new` runs the work once so
//! that buffers and caches are as warm as in a long-running process.
//!
//! Each of ours has the baseline a user would otherwise write beside it
//! (`mskbench_benches::baseline`). The cases live in a library so that
//! `cargo test` checks them without Valgrind or gungraun's runner.

// Benchmark setup stops on impossible input rather than measuring nothing.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use base64::Engine as _;
use mskbench_benches::{CLICK_ID, CLICK_SCHEMA, Rng, baseline, click_schema, clickevents, encode_all, lab_event};
use mskbench_core::packer::{Batch, PackLimits, Packer};
use mskbench_core::wire::{SchemaKey, WireMode};
use mskbench_core::{EventProcessor, KafkaEvent, Output, SchemaCache, Transcoder, b64};

/// Records in the packing and whole-event cases.
pub const RECORDS: usize = 1000;
/// ClickEvents per transcode run (as in `benches/benches/transcode.rs`).
pub const DATUMS: usize = 64;

/// Base64 text of seeded random bytes (as `benches/benches/base64.rs`) and
/// an output buffer with room for them.
#[derive(Debug)]
pub struct Base64 {
    pub text: Vec<u8>,
    pub out: Vec<u8>,
}

impl Base64 {
    pub fn new(size: usize) -> Self {
        let mut rng = Rng::new(size as u64);
        let raw: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        let mut text = String::new();
        b64::encode_append(&raw, &mut text);
        Base64 { text: text.into_bytes(), out: vec![0; size + 3] }
    }

    /// Ours: base64-simd appending to the reused buffer. Returns the length.
    pub fn run_mskbench(&mut self) -> usize {
        self.out.clear();
        b64::decode_append(black_box(&self.text), &mut self.out).expect("valid base64");
        self.out.len()
    }

    /// The `base64` crate's `decode_slice` into the same buffer.
    pub fn run_base64_crate(&mut self) -> usize {
        // A no-op after `new` (which zeroed the buffer at full length);
        // needed only after `run_mskbench` shortened it.
        let len = self.out.capacity();
        self.out.resize(len, 0);
        base64::engine::general_purpose::STANDARD
            .decode_slice(black_box(&self.text), &mut self.out)
            .expect("valid base64")
    }
}

/// 64 ClickEvent datums, our compiled transcoder with its output buffer
/// grown, and apache-avro's reader built once.
pub struct Transcode {
    pub datums: Vec<Vec<u8>>,
    transcoder: Transcoder,
    reader: GenericDatumReader<'static>,
    out: Vec<u8>,
}

impl Transcode {
    pub fn new() -> Self {
        // Leaked so the reader can borrow it for the (one-shot) process.
        let schema: &'static Schema = Box::leak(Box::new(click_schema()));
        let mut this = Transcode {
            datums: encode_all(&clickevents(DATUMS, 7)),
            transcoder: Transcoder::compile(schema).expect("the ClickEvent schema compiles"),
            reader: GenericDatumReader::builder(schema).build().expect("the ClickEvent schema resolves"),
            out: Vec::new(),
        };
        this.run_mskbench();
        this
    }

    /// Ours: every datum to a JSON line in one reused buffer. Returns bytes.
    pub fn run_mskbench(&mut self) -> usize {
        self.out.clear();
        for d in &self.datums {
            self.transcoder.transcode(black_box(d), &mut self.out, usize::MAX).expect("valid datum");
            self.out.push(b'\n');
        }
        self.out.len()
    }

    /// apache-avro `Value` → `serde_json::Value` → `to_vec`. Returns bytes
    /// (without newlines).
    pub fn run_apache_avro(&self) -> usize {
        self.datums.iter().map(|d| black_box(baseline::transcode(&self.reader, black_box(d))).len()).sum()
    }
}

impl std::fmt::Debug for Transcode {
    // apache-avro's reader has no `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcode").field("datums", &self.datums.len()).finish_non_exhaustive()
    }
}

impl Default for Transcode {
    fn default() -> Self {
        Self::new()
    }
}

/// The JSON lines of 1,000 ClickEvents, to pack into `PutRecordBatch`
/// calls: ours counts sizes into index ranges, the baseline copies lines.
#[derive(Debug)]
pub struct Pack {
    pub lines: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    batches: Vec<Batch>,
}

impl Pack {
    pub fn new() -> Self {
        let transcoder = Transcoder::compile(&click_schema()).expect("the ClickEvent schema compiles");
        let lines: Vec<Vec<u8>> = encode_all(&clickevents(RECORDS, 42))
            .iter()
            .map(|d| {
                let mut line = Vec::new();
                transcoder.transcode(d, &mut line, usize::MAX).expect("valid datum");
                line.push(b'\n');
                line
            })
            .collect();
        let sizes = lines.iter().map(Vec::len).collect();
        let mut this = Pack { lines, sizes, batches: Vec::new() };
        this.run_mskbench();
        this
    }

    /// Ours: `Packer` over the line sizes into a reused batch list.
    /// Returns the number of batches.
    pub fn run_mskbench(&mut self) -> usize {
        self.batches.clear();
        let mut packer = Packer::new(PackLimits::default());
        for &size in &self.sizes {
            packer.push(black_box(size), &mut self.batches).expect("ClickEvent lines are small");
        }
        packer.finish(&mut self.batches);
        self.batches.len()
    }

    /// Batches of copied lines. Returns the number of batches.
    pub fn run_copied_lines(&self) -> usize {
        black_box(baseline::pack_lines(black_box(&self.lines))).len()
    }
}

impl Default for Pack {
    fn default() -> Self {
        Self::new()
    }
}

/// A 1,000-record ClickEvent Lambda event (Confluent framing, 4
/// partitions), with our processor's schema cached and `Output` grown.
#[derive(Debug)]
pub struct Event {
    pub event: Vec<u8>,
    processor: EventProcessor,
    cache: SchemaCache,
    schema: Schema,
    now: Instant,
    out: Output,
}

impl Event {
    pub fn new() -> Self {
        let cache = SchemaCache::default();
        cache.insert_json(SchemaKey::Confluent(CLICK_ID), CLICK_SCHEMA).expect("the ClickEvent schema compiles");
        let mut this = Event {
            event: lab_event(RECORDS, 4, 42),
            processor: EventProcessor::new(WireMode::Confluent, PackLimits::default()),
            cache,
            schema: click_schema(),
            now: Instant::now(),
            out: Output::new(),
        };
        this.run_mskbench();
        this
    }

    /// Ours: `EventProcessor::process_json` into the reused `Output`.
    /// Returns the records packed.
    pub fn run_mskbench(&mut self) -> usize {
        self.processor
            .process_json(black_box(&self.event), &self.cache, self.now, &mut self.out)
            .expect("a valid event");
        self.out.records.len()
    }

    /// The straightforward implementation. Returns the records batched.
    pub fn run_straightforward(&self) -> usize {
        let batches = baseline::process_event(&self.schema, black_box(&self.event));
        black_box(&batches).iter().map(Vec::len).sum()
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

/// The same 1,000-record event, for its JSON parse alone (the largest
/// single cost of the whole event).
#[derive(Debug)]
pub struct Parse {
    pub event: Vec<u8>,
}

impl Parse {
    pub fn new() -> Self {
        Parse { event: lab_event(RECORDS, 4, 42) }
    }

    /// Ours: core's specialised reader. Returns the records seen.
    pub fn run_mskbench(&self) -> usize {
        KafkaEvent::parse(black_box(&self.event)).expect("a valid event").record_count()
    }

    /// serde_json borrowing into the same types. Returns the records seen.
    pub fn run_serde_json(&self) -> usize {
        let event: KafkaEvent<'_> = serde_json::from_slice(black_box(&self.event)).expect("a valid event");
        event.record_count()
    }
}

impl Default for Parse {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants_decode_the_same_bytes() {
        let mut case = Base64::new(1024);
        assert_eq!(case.run_mskbench(), 1024);
        let ours = case.out.clone();
        assert_eq!(case.run_base64_crate(), 1024);
        assert_eq!(&case.out[..1024], &ours[..]);
    }

    #[test]
    fn transcode_variants_see_every_datum() {
        let mut case = Transcode::new();
        let ours = case.run_mskbench();
        // The baseline's lines have no newline; the JSON text is the same size.
        assert_eq!(case.run_apache_avro() + DATUMS, ours);
    }

    #[test]
    fn pack_variants_make_the_same_batches() {
        let mut case = Pack::new();
        assert_eq!(case.run_mskbench(), RECORDS.div_ceil(500));
        assert_eq!(case.run_copied_lines(), RECORDS.div_ceil(500));
    }

    #[test]
    fn event_variants_keep_every_record() {
        let mut case = Event::new();
        assert_eq!(case.run_mskbench(), RECORDS);
        assert_eq!(case.run_straightforward(), RECORDS);
    }

    #[test]
    fn parse_variants_see_every_record() {
        let case = Parse::new();
        assert_eq!(case.run_mskbench(), RECORDS);
        assert_eq!(case.run_serde_json(), RECORDS);
    }
}
