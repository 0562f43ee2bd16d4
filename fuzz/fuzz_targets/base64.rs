//! Core's strict base64 (`mskbench_core::b64`) against the `base64` crate.
//!
//! The input is read two ways. As base64 text: `decode_append` and
//! `decode_slice` must agree with `base64`'s `STANDARD` engine (canonical
//! padding, no trailing bits) on accepting it and on the bytes, and a
//! refusal leaves the caller's buffer as it was and names an offset inside
//! the text. As bytes: `encode_append` must write what `base64` writes,
//! and that text must decode back to the bytes.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use mskbench_core::b64::{self, Base64Error};

fuzz_target!(|data: &[u8]| {
    let reference = STANDARD.decode(data);
    let mut out = b"kept".to_vec();
    let ours = b64::decode_append(data, &mut out);
    match (&ours, &reference) {
        (Ok(range), Ok(bytes)) => {
            assert_eq!(range.start, 4, "decoded bytes do not follow what the buffer held");
            assert_eq!(&out[..4], b"kept");
            assert_eq!(&out[range.clone()], &bytes[..], "decoded bytes differ from the base64 crate's");
        }
        (Err(e), Err(_)) => {
            assert_eq!(out, b"kept", "a refused text changed the buffer");
            let offset = match *e {
                Base64Error::InvalidLength { len } => {
                    assert_eq!(len, data.len());
                    0
                }
                Base64Error::InvalidCharacter { offset, byte } => {
                    assert_eq!(data.get(offset), Some(&byte), "the error names a byte the text does not hold there");
                    offset
                }
                Base64Error::InvalidPadding { offset } | Base64Error::TrailingBits { offset } => offset,
            };
            assert!(offset <= data.len(), "error offset {offset} past the text's {} bytes", data.len());
            let _ = e.to_string();
        }
        _ => panic!("core and the base64 crate disagree on {data:?}: {ours:?} vs {reference:?}"),
    }

    let mut slice = vec![0u8; b64::decoded_len_estimate(data.len())];
    match (b64::decode_slice(data, &mut slice), &reference) {
        (Ok(n), Ok(bytes)) => assert_eq!(&slice[..n], &bytes[..], "decode_slice differs from decode_append"),
        (Err(_), Err(_)) => {}
        (ours, _) => panic!("decode_slice and the base64 crate disagree on {data:?}: {ours:?}"),
    }

    let mut text = String::from("=");
    b64::encode_append(data, &mut text);
    assert_eq!(&text[1..], STANDARD.encode(data), "encoded text differs from the base64 crate's");
    let mut back = Vec::new();
    match b64::decode_append(&text.as_bytes()[1..], &mut back) {
        Ok(range) => assert_eq!(&back[range], data, "encode then decode is not the identity"),
        Err(e) => panic!("core refuses its own encoding of {data:?}: {e}"),
    }
});
