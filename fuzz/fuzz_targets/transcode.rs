//! The transcoder, with schema and datum both fuzzed.
//!
//! The input is `schema text NUL datum`; the schema text may carry
//! Confluent references before it, each ended by a `SOH` byte (0x01), as
//! `from_schema_json_with_references` takes them. A schema text of one
//! digit picks one of the built-in schemas below instead, so libFuzzer can
//! also spend its time on data for schemas that compile. Whatever compiles
//! decodes the datum. Oracles: accepted output is one JSON value within
//! the output limit, after what the buffer held; a refusal restores the
//! buffer and names an offset inside the datum; the output limit is exact
//! (the same datum with a limit one byte short is `OutputTooLarge`, with
//! the exact limit the same text).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mskbench_core::Transcoder;
use mskbench_core::transcode::CompileError;
use mskbench_core::transcode::TranscodeErrorKind;

const BUILT_IN: [&str; 4] = [
    include_str!("../../core/tests/data/clickevent.avsc"),
    r#"{"type":"record","name":"R","fields":[
      {"name":"u","type":["null","string","long","double","boolean"]},
      {"name":"m","type":{"type":"map","values":{"type":"array","items":"int"}}},
      {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
      {"name":"f","type":{"type":"fixed","name":"F","size":3}},
      {"name":"b","type":"bytes"},{"name":"x","type":"float"},
      {"name":"d","type":{"type":"int","logicalType":"date"}},
      {"name":"id","type":{"type":"string","logicalType":"uuid"}}]}"#,
    r#"{"type":"record","name":"List","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","List"]}]}"#,
    r#"{"type":"array","items":{"type":"map","values":["null",{"type":"record","name":"Empty","fields":[]}]}}"#,
];

/// The built-in schemas, compiled once: an input naming one spends its
/// time on the datum.
static COMPILED: LazyLock<Vec<Result<Transcoder, CompileError>>> =
    LazyLock::new(|| BUILT_IN.iter().map(|text| Transcoder::from_schema_json(text)).collect());

/// Most JSON text one datum may produce here.
const MAX_OUTPUT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let (schema, datum) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let Ok(schema) = std::str::from_utf8(schema) else { return };
    let own;
    let compiled = match schema.as_bytes() {
        [digit @ b'0'..=b'9'] => &COMPILED[usize::from(digit - b'0') % BUILT_IN.len()],
        _ => {
            let mut parts: Vec<String> = schema.split('\u{1}').map(str::to_owned).collect();
            let main = parts.pop().unwrap_or_default();
            own = Transcoder::from_schema_json_with_references(&main, &parts);
            &own
        }
    };
    let transcoder = match compiled {
        Ok(t) => t,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut out = b"[".to_vec();
    match transcoder.transcode(datum, &mut out, MAX_OUTPUT) {
        Ok(()) => {
            let json = &out[1..];
            assert!(json.len() <= MAX_OUTPUT, "{} bytes of output past the limit", json.len());
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(json) {
                panic!("output is not one JSON value ({e}): {:?}", String::from_utf8_lossy(json));
            }
            let mut again = Vec::new();
            assert_eq!(transcoder.transcode(datum, &mut again, json.len()), Ok(()));
            assert_eq!(again, json, "the same datum gave different text");
            if let Some(short) = json.len().checked_sub(1) {
                let mut short_out = Vec::new();
                let refused = transcoder.transcode(datum, &mut short_out, short).map_err(|e| e.kind);
                assert_eq!(refused, Err(TranscodeErrorKind::OutputTooLarge), "the output limit is not exact");
                assert!(short_out.is_empty(), "a refused datum left output behind");
            }
        }
        Err(e) => {
            assert_eq!(out, b"[", "a refused datum changed the buffer");
            assert!(e.offset <= datum.len(), "error offset {} past the datum's {} bytes", e.offset, datum.len());
            let _ = e.to_string();
        }
    }
});
