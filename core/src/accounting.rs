//! Every record's outcome, and the counts that must add up.
//!
//! A record that enters [`crate::pipeline`] ends in exactly one of two
//! places: packed into a batch, or rejected with a [`Reason`]. The
//! [`Summary`] counts both, so `records_in == records_out + rejected` is an
//! invariant the tests check and reports can show. Reasons are a small
//! `Copy` enum with stable snake_case names: the `rejected` object of the
//! `process-event` summary JSON and of run results uses these names as keys,
//! so renaming one is a contract change.

use std::fmt;
use std::ops::AddAssign;

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use crate::b64::Base64Error;
use crate::schema_cache::SchemaError;
use crate::transcode::TranscodeErrorKind;
use crate::wire::WireError;

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Why a record was not packed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason { $($(#[$doc])* $variant,)* }

        impl Reason {
            /// Every reason, in a stable order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable snake_case name used in JSON output.
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }

            /// The reason named `name`, if any.
            pub fn from_name(name: &str) -> Option<Reason> {
                match name { $($name => Some(Reason::$variant),)* _ => None }
            }
        }
    };
}

reasons! {
    /// The record has no value (a tombstone, or `value` absent/null).
    MissingValue = "missing_value",
    /// The value is not strict standard base64.
    BadBase64 = "bad_base64",
    /// The decoded value is empty.
    EmptyValue = "empty_value",
    /// The first byte is not a framing the wire mode accepts.
    UnknownMagicByte = "unknown_magic_byte",
    /// The value is shorter than its framing header.
    TruncatedHeader = "truncated_header",
    /// A Glue compression byte other than none or zlib.
    UnknownCompression = "unknown_compression",
    /// A zlib datum that is corrupt or inflates past the limit.
    BadCompressedData = "bad_compressed_data",
    /// The registry has no schema for the key.
    UnknownSchema = "unknown_schema",
    /// The registry could not be asked; the record may succeed later.
    SchemaUnavailable = "schema_unavailable",
    /// The registry's schema text is not a usable Avro schema.
    InvalidSchema = "invalid_schema",
    /// The datum ends inside a value.
    TruncatedDatum = "truncated_datum",
    /// A varint longer than 10 bytes.
    VarintOverflow = "varint_overflow",
    /// An `int` outside 32 bits.
    IntOutOfRange = "int_out_of_range",
    /// A negative length or block size.
    NegativeLength = "negative_length",
    /// A string that is not UTF-8.
    InvalidUtf8 = "invalid_utf8",
    /// A boolean byte other than 0 or 1.
    InvalidBoolean = "invalid_boolean",
    /// A union branch index outside the union.
    UnionIndexOutOfRange = "union_index_out_of_range",
    /// An enum index outside the symbols.
    EnumIndexOutOfRange = "enum_index_out_of_range",
    /// Nesting deeper than the transcoder's limit.
    DepthLimit = "depth_limit",
    /// Bytes left after the datum.
    TrailingBytes = "trailing_bytes",
    /// The JSON line is larger than Firehose's 1,000 KiB record limit.
    Oversize = "oversize",
}

impl Reason {
    /// True when retrying the same record later may succeed, so a caller
    /// should redeliver it rather than dead-letter it.
    pub fn is_transient(self) -> bool {
        matches!(self, Reason::SchemaUnavailable)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&Base64Error> for Reason {
    fn from(_: &Base64Error) -> Self {
        Reason::BadBase64
    }
}

impl From<&WireError> for Reason {
    fn from(e: &WireError) -> Self {
        match e {
            WireError::Empty => Reason::EmptyValue,
            WireError::UnknownMagic { .. } => Reason::UnknownMagicByte,
            WireError::TruncatedHeader { .. } => Reason::TruncatedHeader,
            WireError::UnknownCompression(_) => Reason::UnknownCompression,
            WireError::CorruptCompressed | WireError::InflatedTooLarge { .. } => Reason::BadCompressedData,
        }
    }
}

impl From<&SchemaError> for Reason {
    fn from(e: &SchemaError) -> Self {
        match e {
            SchemaError::NotFound { .. } => Reason::UnknownSchema,
            SchemaError::Unavailable { .. } => Reason::SchemaUnavailable,
            SchemaError::Invalid { .. } => Reason::InvalidSchema,
        }
    }
}

impl From<TranscodeErrorKind> for Reason {
    fn from(kind: TranscodeErrorKind) -> Self {
        match kind {
            TranscodeErrorKind::Truncated => Reason::TruncatedDatum,
            TranscodeErrorKind::VarintOverflow => Reason::VarintOverflow,
            TranscodeErrorKind::IntOutOfRange => Reason::IntOutOfRange,
            TranscodeErrorKind::NegativeLength => Reason::NegativeLength,
            TranscodeErrorKind::InvalidUtf8 => Reason::InvalidUtf8,
            TranscodeErrorKind::InvalidBoolean => Reason::InvalidBoolean,
            TranscodeErrorKind::UnionIndexOutOfRange => Reason::UnionIndexOutOfRange,
            TranscodeErrorKind::EnumIndexOutOfRange => Reason::EnumIndexOutOfRange,
            TranscodeErrorKind::DepthLimit => Reason::DepthLimit,
            TranscodeErrorKind::OutputTooLarge => Reason::Oversize,
            TranscodeErrorKind::TrailingBytes => Reason::TrailingBytes,
        }
    }
}

/// Counts per rejection reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectCounts([u64; Reason::ALL.len()]);

impl RejectCounts {
    /// Counts one more rejection for `reason`.
    pub fn add(&mut self, reason: Reason) {
        self.0[reason as usize] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason as usize]
    }

    /// All rejections.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The reasons with a non-zero count, in [`Reason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL.iter().map(|&r| (r, self.get(r))).filter(|&(_, n)| n > 0)
    }
}

impl AddAssign<&RejectCounts> for RejectCounts {
    fn add_assign(&mut self, other: &RejectCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

impl Serialize for RejectCounts {
    /// An object mapping reason names to non-zero counts.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason.as_str(), &n)?;
        }
        map.end()
    }
}

/// What happened to the records of one or more events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records in the event(s).
    pub records_in: u64,
    /// Records packed into batches.
    pub records_out: u64,
    /// Records rejected, by reason.
    pub rejected: RejectCounts,
    /// Records waiting for a writer schema the cache lacked; zero once the
    /// caller has resolved them (see [`crate::pipeline`]).
    pub waiting: u64,
    /// `PutRecordBatch` batches packed.
    pub batches: u64,
    /// Sum of the packed records' sizes (JSON text and newline).
    pub bytes_out: u64,
}

impl Summary {
    /// True when every record that came in is packed, rejected or waiting,
    /// exactly one of them.
    pub fn adds_up(&self) -> bool {
        self.records_in == self.records_out + self.rejected.total() + self.waiting
    }
}

impl AddAssign<&Summary> for Summary {
    fn add_assign(&mut self, other: &Summary) {
        self.records_in += other.records_in;
        self.records_out += other.records_out;
        self.rejected += &other.rejected;
        self.waiting += other.waiting;
        self.batches += other.batches;
        self.bytes_out += other.bytes_out;
    }
}

impl Serialize for Summary {
    /// The `process-event` summary contract: `records_in`, `records_out`,
    /// `rejected` (reason → count), `batches`, `bytes_out`. `waiting` is
    /// written only when not zero, which a finished summary never is.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Summary", 5 + usize::from(self.waiting > 0))?;
        st.serialize_field("records_in", &self.records_in)?;
        st.serialize_field("records_out", &self.records_out)?;
        st.serialize_field("rejected", &self.rejected)?;
        if self.waiting > 0 {
            st.serialize_field("waiting", &self.waiting)?;
        }
        st.serialize_field("batches", &self.batches)?;
        st.serialize_field("bytes_out", &self.bytes_out)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &r in Reason::ALL {
            assert_eq!(Reason::from_name(r.as_str()), Some(r));
            assert!(seen.insert(r.as_str()));
        }
    }

    #[test]
    fn summary_serialises_to_the_contract_keys() {
        let mut s = Summary { records_in: 3, records_out: 1, batches: 1, bytes_out: 10, ..Default::default() };
        s.rejected.add(Reason::BadBase64);
        s.rejected.add(Reason::BadBase64);
        assert!(s.adds_up());
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"records_in":3,"records_out":1,"rejected":{"bad_base64":2},"batches":1,"bytes_out":10}"#);
    }

    #[test]
    fn summaries_add() {
        let mut a = Summary { records_in: 1, records_out: 1, batches: 1, bytes_out: 5, ..Default::default() };
        let mut b = a.clone();
        b.rejected.add(Reason::Oversize);
        b.records_in += 1;
        a += &b;
        assert_eq!((a.records_in, a.records_out, a.rejected.total()), (3, 2, 1));
        assert!(a.adds_up());
    }

    #[test]
    fn waiting_records_count_until_resolved_and_stay_out_of_the_contract() {
        let mut s = Summary { records_in: 3, records_out: 1, waiting: 2, ..Default::default() };
        assert!(s.adds_up(), "waiting records are one of the outcomes");
        assert!(serde_json::to_string(&s).unwrap().contains(r#""waiting":2"#));
        s.waiting = 0;
        assert!(!s.adds_up(), "a record must not vanish when it stops waiting");
        s.rejected.add(Reason::UnknownSchema);
        s.rejected.add(Reason::UnknownSchema);
        assert!(s.adds_up());
        assert!(!serde_json::to_string(&s).unwrap().contains("waiting"));
    }

    #[test]
    fn only_registry_outages_are_transient() {
        let transient: Vec<_> = Reason::ALL.iter().filter(|r| r.is_transient()).collect();
        assert_eq!(transient, [&Reason::SchemaUnavailable]);
    }
}
