//! Strict standard base64 into caller-owned buffers.
//!
//! The event source mapping writes keys and values with the standard
//! alphabet and `=` padding. Decoding goes through `base64-simd`, which
//! picks AVX2, SSSE3/SSE4.1, NEON or scalar code at run time, and appends to
//! a `Vec<u8>` the caller clears and reuses, so steady-state decoding does
//! not allocate. BENCHMARKS.md has it beside the `base64` crate's scalar
//! `decode_slice` and a plain copy of the same bytes.
//!
//! Strict means: only the standard alphabet, padding present and canonical
//! (a length that is a multiple of four, at most two `=` and only at the
//! end), and the unused bits of the last character zero. Anything else is a
//! [`Base64Error`] for that one record. `base64-simd` reports failure
//! without a position; the error path re-scans the input with a small
//! scalar loop to say what and where, so the fast path pays nothing for it.

use std::fmt;
use std::ops::Range;

/// Why a base64 text was refused, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// The length is not a multiple of four.
    #[error("length {len} is not a multiple of 4")]
    InvalidLength {
        /// The text's length in bytes.
        len: usize,
    },
    /// A byte outside the standard alphabet.
    #[error("invalid character {} at offset {offset}", Printable(*byte))]
    InvalidCharacter {
        /// Byte offset in the text.
        offset: usize,
        /// The byte found there.
        byte: u8,
    },
    /// `=` somewhere other than the last one or two positions.
    #[error("misplaced padding at offset {offset}")]
    InvalidPadding {
        /// Byte offset of the `=`.
        offset: usize,
    },
    /// The last character carries bits that the decoded length drops.
    #[error("non-zero trailing bits at offset {offset}")]
    TrailingBits {
        /// Byte offset of that character.
        offset: usize,
    },
}

struct Printable(u8);

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() { write!(f, "'{}'", self.0 as char) } else { write!(f, "0x{:02x}", self.0) }
    }
}

/// Decodes `input` and appends the bytes to `out`; returns where they are.
///
/// # Errors
/// [`Base64Error`] when `input` is not strict standard base64; `out` is then
/// left as it was.
#[inline]
pub fn decode_append(input: &[u8], out: &mut Vec<u8>) -> Result<Range<usize>, Base64Error> {
    let start = out.len();
    match base64_simd::STANDARD.decode_append(input, out) {
        Ok(()) => Ok(start..out.len()),
        Err(_) => {
            out.truncate(start);
            Err(diagnose(input))
        }
    }
}

/// Decodes `input` into `out`, returning the number of bytes written.
/// `out` must hold at least `decoded_len_estimate(input.len())` bytes.
///
/// # Errors
/// [`Base64Error`] when `input` is not strict standard base64 or `out` is
/// too small (reported as [`Base64Error::InvalidLength`]).
pub fn decode_slice(input: &[u8], out: &mut [u8]) -> Result<usize, Base64Error> {
    if out.len() < decoded_len_estimate(input.len()) {
        return Err(Base64Error::InvalidLength { len: input.len() });
    }
    let out = base64_simd::Out::from_slice(out);
    match base64_simd::STANDARD.decode(input, out) {
        Ok(decoded) => Ok(decoded.len()),
        Err(_) => Err(diagnose(input)),
    }
}

/// Upper bound of the decoded length of `len` base64 characters.
#[inline]
pub const fn decoded_len_estimate(len: usize) -> usize {
    len.div_ceil(4) * 3
}

/// Encodes `input` with padding and appends the text to `out`.
pub fn encode_append(input: &[u8], out: &mut String) {
    base64_simd::STANDARD.encode_append(input, out);
}

/// Finds the first reason `input` is not strict standard base64.
#[cold]
fn diagnose(input: &[u8]) -> Base64Error {
    let value = |b: u8| -> Option<u8> {
        match b {
            b'A'..=b'Z' => Some(b - b'A'),
            b'a'..=b'z' => Some(b - b'a' + 26),
            b'0'..=b'9' => Some(b - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let len = input.len();
    let pad = input.iter().rev().take(2).take_while(|&&b| b == b'=').count();
    for (offset, &byte) in input.iter().enumerate() {
        if byte == b'=' {
            if offset < len - pad {
                return Base64Error::InvalidPadding { offset };
            }
        } else if value(byte).is_none() {
            return Base64Error::InvalidCharacter { offset, byte };
        }
    }
    if !len.is_multiple_of(4) {
        return Base64Error::InvalidLength { len };
    }
    if pad > 0 {
        let offset = len - pad - 1;
        let mask = if pad == 1 { 0b11 } else { 0b1111 };
        if value(input[offset]).is_some_and(|v| v & mask != 0) {
            return Base64Error::TrailingBits { offset };
        }
    }
    // base64-simd refused something this scan accepts: report it rather
    // than pretend the text is valid.
    Base64Error::InvalidLength { len }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    fn decode(s: &str) -> Result<Vec<u8>, Base64Error> {
        let mut out = Vec::new();
        decode_append(s.as_bytes(), &mut out).map(|r| out[r].to_vec())
    }

    #[test]
    fn decodes_padded_text() {
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("YQ==").unwrap(), b"a");
        assert_eq!(decode("YWI=").unwrap(), b"ab");
        assert_eq!(decode("YWJj").unwrap(), b"abc");
        assert_eq!(decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn appends_after_existing_bytes_and_reports_the_range() {
        let mut out = b"xy".to_vec();
        let range = decode_append(b"YWJj", &mut out).unwrap();
        assert_eq!(range, 2..5);
        assert_eq!(out, b"xyabc");
    }

    #[test]
    fn invalid_character_names_offset_and_byte() {
        assert_eq!(decode("YW-j"), Err(Base64Error::InvalidCharacter { offset: 2, byte: b'-' }));
        assert_eq!(decode("YWJ\n"), Err(Base64Error::InvalidCharacter { offset: 3, byte: b'\n' }));
        let msg = decode("YW_j").unwrap_err().to_string();
        assert_eq!(msg, "invalid character '_' at offset 2");
    }

    #[test]
    fn unpadded_or_impossible_lengths_are_refused() {
        assert_eq!(decode("YQ"), Err(Base64Error::InvalidLength { len: 2 }));
        assert_eq!(decode("YWJjZ"), Err(Base64Error::InvalidLength { len: 5 }));
    }

    #[test]
    fn misplaced_padding_is_refused() {
        assert_eq!(decode("Y=Jj"), Err(Base64Error::InvalidPadding { offset: 1 }));
        assert_eq!(decode("Y==="), Err(Base64Error::InvalidPadding { offset: 1 }));
        assert_eq!(decode("YQ==YQ=="), Err(Base64Error::InvalidPadding { offset: 2 }));
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        assert_eq!(decode("YR=="), Err(Base64Error::TrailingBits { offset: 1 }));
        assert_eq!(decode("YWI="), Ok(b"ab".to_vec()));
        assert_eq!(decode("YWJ="), Err(Base64Error::TrailingBits { offset: 2 }));
    }

    #[test]
    fn failed_decode_leaves_the_buffer_unchanged() {
        let mut out = b"keep".to_vec();
        assert!(decode_append(b"!!!!", &mut out).is_err());
        assert_eq!(out, b"keep");
    }

    #[test]
    fn decode_slice_writes_into_the_callers_slice() {
        let mut buf = [0u8; 3];
        assert_eq!(decode_slice(b"YWJj", &mut buf), Ok(3));
        assert_eq!(&buf, b"abc");
        assert!(decode_slice(b"YWJjYWJj", &mut buf).is_err());
    }

    proptest! {
        #[test]
        fn agrees_with_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(decode(&text).unwrap(), bytes.clone());
            let mut ours = String::new();
            encode_append(&bytes, &mut ours);
            prop_assert_eq!(ours, text);
        }

        #[test]
        fn refuses_what_the_base64_crate_refuses(text in "[A-Za-z0-9+/=\\-_ ]{0,40}") {
            let reference = base64::engine::general_purpose::STANDARD.decode(&text);
            let ours = decode(&text);
            prop_assert_eq!(ours.is_ok(), reference.is_ok(), "{:?} vs {:?}", ours, reference);
            if let (Ok(a), Ok(b)) = (ours, reference) {
                prop_assert_eq!(a, b);
            }
        }
    }
}
