//! The wire framing: Confluent's magic byte and id, Glue's header, zlib.
//!
//! Any bytes are a record value read in each `WireMode`: `unframe` either
//! refuses it or returns a datum that is the value's tail after the
//! header's length, with the key the header spells; a zlib datum inflates
//! to at most the caller's limit (taken from the input, to reach the
//! boundary) and a refusal leaves the buffer as it was. The value also
//! goes through the `frame_*` writers: what they write reads back as the
//! same key and datum, inflated when compressed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mskbench_core::wire::{
    self, CONFLUENT_HEADER_LEN, Compression, Framed, GLUE_HEADER_LEN, SchemaKey, WireError, WireMode,
};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose an inflate limit, 0 to 65,535 bytes.
    let (limit, value) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (1024, data),
    };
    for mode in [WireMode::Confluent, WireMode::Glue, WireMode::GlueSecondary] {
        match wire::unframe(value, mode) {
            Ok(framed) => check_framed(value, &framed, limit),
            Err(e) => {
                let _ = e.to_string();
                if let WireError::TruncatedHeader { len, .. } = e {
                    assert_eq!(len, value.len());
                }
            }
        }
    }

    let id = value.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b));
    let version = Uuid::from_u128(u128::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut framed = Vec::new();
    wire::frame_confluent(id, value, &mut framed);
    let back = wire::unframe(&framed, WireMode::GlueSecondary);
    assert_eq!(back.map(|f| (f.schema, f.datum)), Ok((SchemaKey::Confluent(id), value)));
    for compression in [Compression::None, Compression::Zlib] {
        framed.clear();
        wire::frame_glue(version, compression, value, &mut framed);
        let Ok(back) = wire::unframe(&framed, WireMode::Glue) else { panic!("our own Glue framing is refused") };
        assert_eq!((back.schema, back.compression), (SchemaKey::Glue(version), compression));
        match compression {
            Compression::None => assert_eq!(back.datum, value),
            Compression::Zlib => {
                let mut out = Vec::new();
                let range = wire::inflate_append(back.datum, &mut out, value.len());
                assert_eq!(range.map(|r| &out[r] == value), Ok(true), "our own zlib datum does not inflate back");
            }
        }
    }
});

fn check_framed(value: &[u8], framed: &Framed<'_>, limit: usize) {
    let header = match framed.schema {
        SchemaKey::Confluent(id) => {
            assert_eq!(value[0], wire::CONFLUENT_MAGIC);
            assert_eq!(value[1..5], id.to_be_bytes());
            CONFLUENT_HEADER_LEN
        }
        SchemaKey::Glue(version) => {
            assert_eq!(value[0], wire::GLUE_HEADER_VERSION);
            assert_eq!(&value[2..18], version.as_bytes());
            GLUE_HEADER_LEN
        }
    };
    assert_eq!(framed.datum, &value[header..], "the datum is not the value after its header");
    if framed.compression == Compression::Zlib {
        let mut out = b"kept".to_vec();
        match wire::inflate_append(framed.datum, &mut out, limit) {
            Ok(range) => {
                assert_eq!(range.start, 4);
                assert!(range.len() <= limit, "inflated {} bytes past the limit {limit}", range.len());
            }
            Err(e) => {
                assert_eq!(out, b"kept", "a refused datum changed the buffer");
                assert!(matches!(e, WireError::CorruptCompressed | WireError::InflatedTooLarge { .. }), "{e:?}");
            }
        }
    }
}
