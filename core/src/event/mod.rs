//! The Lambda `aws:kafka` event: what the MSK event source mapping hands the
//! function.
//!
//! ```json
//! { "eventSource": "aws:kafka", "eventSourceArn": "…", "bootstrapServers": "…",
//!   "records": { "ExampleTopic-0": [ { "topic": "ExampleTopic", "partition": 0,
//!       "offset": 15, "timestamp": 1545084650987, "timestampType": "CREATE_TIME",
//!       "key": "<base64>", "value": "<base64>",
//!       "headers": [ { "headerKey": [104, 101, 97, 100, 101, 114] } ] } ] } }
//! ```
//!
//! Parsing borrows: every string (topic, base64 key and value, header names)
//! is a [`Cow`] that points into the input buffer unless the JSON text
//! escaped a character inside it, so a 1,000-record event costs one `Vec` of
//! records per partition and no per-record string copies. The `records` map
//! keeps the order of the JSON text, and records inside a partition keep
//! their offsets' order, which is the order the output must follow.
//!
//! [`KafkaEvent::parse`] uses the specialised reader in [`parse`] (see its
//! header for why and what it costs); the serde derives here serialise
//! events and serve as the reference that reader is tested against.
//!
//! Leniency is deliberate where AWS and Kafka differ from the lab's sample:
//! unknown fields are ignored (AWS adds fields over time), `key`, `value`
//! and `headers` may be absent or `null` (tombstones), `timestampType` also
//! accepts Kafka's `NO_TIMESTAMP_TYPE`, and header bytes may be written as
//! Java's signed bytes (-128..=-1) as well as 0..=255. A document that is not
//! JSON, or a record without `topic`, `partition` or `offset`, is not a
//! Lambda Kafka event: that is an [`EventError`] for the whole event, with
//! the line and column where parsing stopped.

mod parse;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// One Lambda invocation's Kafka event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaEvent<'a> {
    /// `aws:kafka` for MSK, `SelfManagedKafka` for other clusters.
    #[serde(borrow, default, deserialize_with = "opt_cow", skip_serializing_if = "Option::is_none")]
    pub event_source: Option<Cow<'a, str>>,
    /// ARN of the MSK cluster.
    #[serde(borrow, default, deserialize_with = "opt_cow", skip_serializing_if = "Option::is_none")]
    pub event_source_arn: Option<Cow<'a, str>>,
    /// Comma-separated broker list.
    #[serde(borrow, default, deserialize_with = "opt_cow", skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<Cow<'a, str>>,
    /// Record groups in the order of the JSON text, keyed `topic-partition`.
    #[serde(borrow, with = "partitions")]
    pub records: Vec<PartitionRecords<'a>>,
}

/// The records of one `topic-partition` entry of the `records` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecords<'a> {
    /// The map key, `"<topic>-<partition>"`.
    pub key: Cow<'a, str>,
    /// The records in offset order.
    pub records: Vec<KafkaRecord<'a>>,
}

/// One Kafka record as the event source mapping delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaRecord<'a> {
    /// The topic the record was read from.
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    /// The Kafka partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// Epoch milliseconds; absent is taken as -1, Kafka's "no timestamp".
    #[serde(default = "no_timestamp")]
    pub timestamp: i64,
    /// What `timestamp` means.
    #[serde(default)]
    pub timestamp_type: TimestampType,
    /// Base64 of the key bytes; `None` when absent or `null`.
    #[serde(borrow, default, deserialize_with = "opt_cow", skip_serializing_if = "Option::is_none")]
    pub key: Option<Cow<'a, str>>,
    /// Base64 of the value bytes; `None` for a tombstone.
    #[serde(borrow, default, deserialize_with = "opt_cow", skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, str>>,
    /// The record headers, in order.
    #[serde(borrow, default, with = "headers")]
    pub headers: Vec<Header<'a>>,
}

fn no_timestamp() -> i64 {
    -1
}

/// A string that borrows from the input when it has no escapes. serde
/// borrows a bare `Cow<str>` field but not one inside `Option` or used as a
/// map key, so those go through this.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CowVisitor;
        impl<'de> Visitor<'de> for CowVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(s)))
            }
        }
        d.deserialize_str(CowVisitor)
    }
}

fn opt_cow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<CowStr<'de>>::deserialize(d)?.map(|s| s.0))
}

/// Kafka's record timestamp kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimestampType {
    /// Set by the producer when the record was created.
    CreateTime,
    /// Set by the broker when it appended the record.
    LogAppendTime,
    /// No timestamp (`timestamp` is -1).
    #[default]
    NoTimestampType,
}

/// One record header: its name and raw value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header name.
    pub key: Cow<'a, str>,
    /// The header value's bytes.
    pub value: Vec<u8>,
}

/// An event document that could not be read as a Lambda Kafka event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Lambda Kafka event (line {line}, column {column}): {kind}")]
pub struct EventError {
    /// 1-based line of the document where reading stopped.
    pub line: usize,
    /// 1-based column (byte) in that line.
    pub column: usize,
    /// What was wrong.
    pub kind: EventErrorKind,
}

/// What was wrong with an event document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventErrorKind {
    /// The document is not UTF-8.
    #[error("the document is not UTF-8")]
    InvalidUtf8,
    /// Not JSON; the text says what the reader expected.
    #[error("invalid JSON: {0}")]
    Syntax(&'static str),
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field appears twice in one object.
    #[error("duplicate field `{0}`")]
    DuplicateField(&'static str),
    #[error("`{field}` must be {expected}")]
    /// A field holds the wrong JSON type.
    InvalidType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A number does not fit its field (partition, offset, timestamp).
    #[error("`{0}` is out of range")]
    OutOfRange(&'static str),
    /// `timestampType` is none of Kafka's three kinds.
    #[error("timestampType must be CREATE_TIME, LOG_APPEND_TIME or NO_TIMESTAMP_TYPE")]
    UnknownTimestampType,
}

impl<'a> KafkaEvent<'a> {
    /// Parses an event, borrowing strings from `json`.
    ///
    /// # Errors
    /// [`EventError`] when `json` is not a Lambda Kafka event.
    pub fn parse(json: &'a [u8]) -> Result<Self, EventError> {
        parse::parse(json)
    }

    /// Number of records in all partitions.
    pub fn record_count(&self) -> usize {
        self.records.iter().map(|p| p.records.len()).sum()
    }

    /// All records, partition by partition, in the order of the JSON text.
    pub fn iter_records(&self) -> impl Iterator<Item = &KafkaRecord<'a>> {
        self.records.iter().flat_map(|p| p.records.iter())
    }
}

/// The `records` object as an ordered list of its entries.
mod partitions {
    use super::*;

    pub(super) fn deserialize<'de, D>(d: D) -> Result<Vec<PartitionRecords<'de>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        struct PartitionsVisitor;
        impl<'de> Visitor<'de> for PartitionsVisitor {
            type Value = Vec<PartitionRecords<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping \"topic-partition\" to a list of records")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(1));
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    let records = map.next_value::<Vec<KafkaRecord<'de>>>()?;
                    out.push(PartitionRecords { key, records });
                }
                Ok(out)
            }
        }
        d.deserialize_map(PartitionsVisitor)
    }

    pub(super) fn serialize<S: serde::Serializer>(groups: &[PartitionRecords<'_>], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(groups.len()))?;
        for group in groups {
            map.serialize_entry(&group.key, &group.records)?;
        }
        map.end()
    }
}

/// `headers`: a list of single-entry objects whose values are byte arrays.
mod headers {
    use super::*;

    pub(super) fn deserialize<'de, D>(d: D) -> Result<Vec<Header<'de>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        struct HeaderList;
        impl<'de> Visitor<'de> for HeaderList {
            type Value = Vec<Header<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of {\"name\": [bytes]} objects, or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_seq(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(HeaderObject(mut entries)) = seq.next_element::<HeaderObject<'de>>()? {
                    out.append(&mut entries);
                }
                Ok(out)
            }
        }
        d.deserialize_option(HeaderList)
    }

    pub(super) fn serialize<S: serde::Serializer>(headers: &[Header<'_>], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct One<'h>(&'h Header<'h>);
        impl Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(&self.0.key, &self.0.value)?;
                map.end()
            }
        }
        let mut seq = s.serialize_seq(Some(headers.len()))?;
        for h in headers {
            seq.serialize_element(&One(h))?;
        }
        seq.end()
    }

    /// One element of the list; an object may carry more than one header.
    struct HeaderObject<'a>(Vec<Header<'a>>);

    impl<'de> Deserialize<'de> for HeaderObject<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct ObjectVisitor;
            impl<'de> Visitor<'de> for ObjectVisitor {
                type Value = HeaderObject<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a {\"name\": [bytes]} object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::with_capacity(1);
                    while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                        let HeaderBytes(value) = map.next_value()?;
                        out.push(Header { key, value });
                    }
                    Ok(HeaderObject(out))
                }
            }
            d.deserialize_map(ObjectVisitor)
        }
    }

    /// A header value: JSON numbers 0..=255, or Java's signed -128..=-1.
    struct HeaderBytes(Vec<u8>);

    impl<'de> Deserialize<'de> for HeaderBytes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct BytesVisitor;
            impl<'de> Visitor<'de> for BytesVisitor {
                type Value = HeaderBytes;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an array of byte values (0..=255)")
                }
                fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                    Ok(HeaderBytes(Vec::new()))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(8));
                    while let Some(n) = seq.next_element::<i64>()? {
                        let byte = match n {
                            0..=255 => n as u8,
                            // Java serialises byte[] as signed values.
                            -128..=-1 => (n + 256) as u8,
                            _ => {
                                return Err(de::Error::invalid_value(
                                    de::Unexpected::Signed(n),
                                    &"a byte value in 0..=255",
                                ));
                            }
                        };
                        out.push(byte);
                    }
                    Ok(HeaderBytes(out))
                }
            }
            d.deserialize_any(BytesVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "eventSource": "aws:kafka",
      "eventSourceArn": "arn:aws:kafka:us-east-1:123:cluster/c/abc",
      "bootstrapServers": "b-1:9092,b-2:9092",
      "records": {
        "ExampleTopic-1": [
          { "topic": "ExampleTopic", "partition": 1, "offset": 15,
            "timestamp": 1545084650987, "timestampType": "CREATE_TIME",
            "key": "YWJj", "value": "AAAAAAE=",
            "headers": [ { "headerKey": [104, 101, 97, 100, 101, 114] } ] },
          { "topic": "ExampleTopic", "partition": 1, "offset": 16,
            "timestamp": 1545084650988, "timestampType": "LOG_APPEND_TIME",
            "key": null, "value": null, "headers": [] }
        ],
        "ExampleTopic-0": [
          { "topic": "ExampleTopic", "partition": 0, "offset": 3,
            "timestamp": 1, "timestampType": "CREATE_TIME", "futureField": {"x": 1} }
        ]
      }
    }"#;

    #[test]
    fn parses_all_fields_in_document_order() {
        let event = KafkaEvent::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(event.event_source.as_deref(), Some("aws:kafka"));
        assert_eq!(event.bootstrap_servers.as_deref(), Some("b-1:9092,b-2:9092"));
        assert_eq!(event.records.len(), 2);
        assert_eq!(event.records[0].key, "ExampleTopic-1");
        assert_eq!(event.records[1].key, "ExampleTopic-0");
        assert_eq!(event.record_count(), 3);
        let first = &event.records[0].records[0];
        assert_eq!((first.partition, first.offset), (1, 15));
        assert_eq!(first.timestamp_type, TimestampType::CreateTime);
        assert_eq!(first.key.as_deref(), Some("YWJj"));
        assert_eq!(first.headers, vec![Header { key: "headerKey".into(), value: b"header".to_vec() }]);
        let tombstone = &event.records[0].records[1];
        assert_eq!(tombstone.timestamp_type, TimestampType::LogAppendTime);
        assert!(tombstone.key.is_none() && tombstone.value.is_none());
        let bare = &event.records[1].records[0];
        assert!(bare.value.is_none() && bare.headers.is_empty());
    }

    #[test]
    fn strings_borrow_from_the_input() {
        let event = KafkaEvent::parse(SAMPLE.as_bytes()).unwrap();
        let rec = &event.records[0].records[0];
        assert!(matches!(rec.topic, Cow::Borrowed(_)));
        assert!(matches!(rec.value, Some(Cow::Borrowed(_))));
        assert!(matches!(rec.key, Some(Cow::Borrowed(_))));
        assert!(matches!(event.records[0].key, Cow::Borrowed(_)));
        assert!(matches!(rec.headers[0].key, Cow::Borrowed(_)));
        assert!(matches!(event.event_source, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn escaped_base64_is_unescaped() {
        let json = br#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":0,"value":"ab\/c"}]}}"#;
        let event = KafkaEvent::parse(json).unwrap();
        assert_eq!(event.records[0].records[0].value.as_deref(), Some("ab/c"));
    }

    #[test]
    fn java_signed_header_bytes_are_accepted() {
        let json = br#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":0,"headers":[{"h":[-1,255,0]},{"a":[1],"b":null}]}]}}"#;
        let event = KafkaEvent::parse(json).unwrap();
        let headers = &event.records[0].records[0].headers;
        assert_eq!(headers[0].value, vec![255, 255, 0]);
        assert_eq!(headers.len(), 3);
        assert!(headers[2].value.is_empty());
    }

    #[test]
    fn header_byte_out_of_range_is_an_event_error() {
        let json = br#"{"records":{"t-0":[{"topic":"t","partition":0,"offset":0,"headers":[{"h":[256]}]}]}}"#;
        let err = KafkaEvent::parse(json).unwrap_err();
        assert_eq!(err.kind, EventErrorKind::OutOfRange("header byte"), "{err}");
    }

    #[test]
    fn missing_offset_is_an_event_error_with_position() {
        let json = b"{\"records\":{\"t-0\":[\n{\"topic\":\"t\",\"partition\":0}]}}";
        let err = KafkaEvent::parse(json).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("offset"), "{err}");
    }

    #[test]
    fn not_json_is_an_event_error() {
        assert!(KafkaEvent::parse(b"not json").is_err());
        assert!(KafkaEvent::parse(b"{}").is_err(), "records is required");
    }

    #[test]
    fn serialises_back_to_an_equal_event() {
        let event = KafkaEvent::parse(SAMPLE.as_bytes()).unwrap();
        let text = serde_json::to_vec(&event).unwrap();
        assert_eq!(KafkaEvent::parse(&text).unwrap(), event);
    }
}
