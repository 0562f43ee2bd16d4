//! Random records for any Avro schema (`mskbench produce --schema PATH.avsc`).
//!
//! Owns the walk from a parsed [`Schema`] to a random, valid Avro datum:
//! every type (primitives, records, enums, fixed, arrays, maps, unions,
//! named references, and the logical types decimal, big-decimal, uuid,
//! date, time, timestamp, local-timestamp and duration). A string field
//! whose name hints at a kind gets a realistic value from the `fake` crate
//! (ip, email, first/last name, name, city, country, url, uuid, phone,
//! street, company, user name, zip, word); a `long` or `int` named like a
//! timestamp or time gets the epoch milliseconds (seconds for an `int`) at
//! generation time. Size controls ([`SizeControls`]) bound string, bytes,
//! array and map lengths, and an optional padding field of N random bytes
//! is added to a top-level record so record sizes can be swept.
//!
//! Boundary: generation is seeded ([`SchemaRecords::new`]); the only
//! outside input is the wall clock for timestamp-hinted fields (the same
//! seed gives the same records, timestamps aside). Recursive schemas stop
//! growing at [`MAX_DEPTH`]: unions take a null branch there, arrays and
//! maps come out empty.
//!
//! Cost: an apache-avro `Value` tree per record and its encoding, about
//! 1–3 µs for a dozen-field record; this path is for realism and size
//! sweeps, the ClickEvent path is the fast one.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use apache_avro::schema::{InnerDecimalSchema, Name};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Days, Decimal, Duration, Millis, Months, Schema};
use fake::Fake;
use fake::faker::address::en::{CityName, CountryName, StreetName, ZipCode};
use fake::faker::company::en::CompanyName;
use fake::faker::internet::en::{DomainSuffix, IPv4, SafeEmail, Username};
use fake::faker::lorem::en::Word;
use fake::faker::name::en::{FirstName, LastName, Name as FullName};
use fake::faker::phone_number::en::PhoneNumber;
use fake::rand::rngs::StdRng;
use fake::rand::{Rng, RngCore, SeedableRng};

/// Depth past which recursive schemas stop growing.
pub const MAX_DEPTH: usize = 12;
/// Name of the padding field added by [`SizeControls::pad_bytes`].
pub const PAD_FIELD: &str = "mskbench_pad";

/// Why a schema cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaGenError {
    /// The text is not an Avro schema.
    #[error("cannot parse the Avro schema: {0}")]
    Parse(#[source] apache_avro::Error),
    /// A named type is used but never defined.
    #[error("the schema refers to {0}, which it never defines")]
    UnknownReference(String),
    /// `pad_bytes` asked for, but the schema is not a record.
    #[error("padding needs a record schema at the top level")]
    PaddingNeedsRecord,
    /// The schema with the pad field does not parse.
    #[error("cannot add the padding field: {0}")]
    Padding(String),
    /// apache-avro refused a generated value.
    #[error("a generated record does not encode: {0}")]
    Encode(#[source] apache_avro::Error),
}

/// Length bounds of generated values (inclusive ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SizeControls {
    /// Characters of a string without a hint.
    pub string_len: (usize, usize),
    /// Bytes of a `bytes` value.
    pub bytes_len: (usize, usize),
    /// Items of an array, entries of a map.
    pub array_len: (usize, usize),
    /// Bytes of the padding field added to the top-level record; 0 adds none.
    pub pad_bytes: usize,
}

impl SizeControls {
    /// The longest string, bytes, array or padding a generated record may
    /// have: 16 Mi (characters, bytes or items). Far beyond what a Kafka
    /// record carries; below it, a mistyped length fails with a clear error
    /// instead of the process dying while it allocates.
    pub const MAX_LENGTH: usize = 16 << 20;
}

impl Default for SizeControls {
    fn default() -> Self {
        SizeControls { string_len: (4, 16), bytes_len: (4, 16), array_len: (0, 4), pad_bytes: 0 }
    }
}

/// A kind of value a field name hints at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    None,
    Ip,
    Email,
    FirstName,
    LastName,
    Name,
    City,
    Country,
    Url,
    Uuid,
    Phone,
    Street,
    Company,
    User,
    Zip,
    Word,
    Timestamp,
}

fn hint_of(field: &str) -> Hint {
    let f = field.to_ascii_lowercase();
    let has = |s: &str| f.contains(s);
    if f == "ip" || has("ip_") || has("_ip") || has("ipaddr") || has("ip_address") {
        Hint::Ip
    } else if has("email") || has("mail") {
        Hint::Email
    } else if has("first") && has("name") {
        Hint::FirstName
    } else if (has("last") || has("sur")) && has("name") {
        Hint::LastName
    } else if has("username") || has("user_name") || has("login") {
        Hint::User
    } else if has("company") || has("organi") {
        Hint::Company
    } else if has("city") {
        Hint::City
    } else if has("country") {
        Hint::Country
    } else if has("url") || has("uri") || has("link") || has("href") {
        Hint::Url
    } else if has("uuid") || has("guid") {
        Hint::Uuid
    } else if has("phone") || has("mobile") {
        Hint::Phone
    } else if has("street") || has("address") {
        Hint::Street
    } else if has("zip") || has("postcode") || has("postal") {
        Hint::Zip
    } else if has("timestamp") || has("time") || f.ends_with("_at") || f == "ts" {
        Hint::Timestamp
    } else if has("name") {
        Hint::Name
    } else if has("word") || has("tag") || has("title") {
        Hint::Word
    } else {
        Hint::None
    }
}

/// Random records for one schema, from a seed.
#[derive(Debug)]
pub struct SchemaRecords {
    schema: Schema,
    names: HashMap<Name, Schema>,
    sizes: SizeControls,
    rng: StdRng,
}

impl SchemaRecords {
    /// Parses `text` and prepares a generator. With a padding size the
    /// schema gains a `bytes` field [`PAD_FIELD`] (default empty), and
    /// [`SchemaRecords::schema_json`] gives the schema to register.
    pub fn new(text: &str, sizes: SizeControls, seed: u64) -> Result<Self, SchemaGenError> {
        let text = if sizes.pad_bytes > 0 { add_padding_field(text)? } else { text.to_owned() };
        let schema = Schema::parse_str(&text).map_err(SchemaGenError::Parse)?;
        let mut names = HashMap::new();
        collect_names(&schema, &mut names);
        check_refs(&schema, &names)?;
        Ok(SchemaRecords { schema, names, sizes, rng: StdRng::seed_from_u64(seed) })
    }

    /// The schema records are written under (with the padding field, if any).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema as canonical JSON text, for a registry.
    pub fn schema_json(&self) -> String {
        self.schema.canonical_form()
    }

    /// The next record as an Avro value.
    pub fn next_value(&mut self) -> Value {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let schema = self.schema.clone();
        let mut value = self.value(&schema, Hint::None, 0, now_ms);
        if self.sizes.pad_bytes > 0
            && let Value::Record(fields) = &mut value
            && let Some((_, pad)) = fields.iter_mut().find(|(n, _)| n == PAD_FIELD)
        {
            let mut bytes = vec![0u8; self.sizes.pad_bytes];
            self.rng.fill_bytes(&mut bytes);
            *pad = Value::Bytes(bytes);
        }
        value
    }

    /// Appends the next record's Avro datum to `out`.
    pub fn next_datum(&mut self, out: &mut Vec<u8>) -> Result<(), SchemaGenError> {
        let value = self.next_value();
        self.encode(&value, out)
    }

    /// Appends the next record's Avro datum to `out`; returns the digest of
    /// the JSON line it should become ([`crate::expected`]).
    pub fn next_datum_expected(
        &mut self,
        out: &mut Vec<u8>,
        canon: &mut crate::expected::Canon,
    ) -> Result<crate::expected::Digest, SchemaGenError> {
        let value = self.next_value();
        self.encode(&value, out)?;
        Ok(crate::expected::avro_value(&value, canon))
    }

    fn encode(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), SchemaGenError> {
        // The writer borrows the schema, so it cannot live beside it in
        // this struct; building one is cheap next to generating the value.
        let writer = GenericDatumWriter::builder(&self.schema).build().map_err(SchemaGenError::Encode)?;
        writer.write_value_ref(out, value).map_err(SchemaGenError::Encode)?;
        Ok(())
    }

    fn len(&mut self, (lo, hi): (usize, usize)) -> usize {
        if hi <= lo { lo } else { self.rng.random_range(lo..=hi) }
    }

    fn text(&mut self, hint: Hint) -> String {
        let rng = &mut self.rng;
        match hint {
            Hint::Ip => IPv4().fake_with_rng(rng),
            Hint::Email => SafeEmail().fake_with_rng(rng),
            Hint::FirstName => FirstName().fake_with_rng(rng),
            Hint::LastName => LastName().fake_with_rng(rng),
            Hint::Name => FullName().fake_with_rng(rng),
            Hint::City => CityName().fake_with_rng(rng),
            Hint::Country => CountryName().fake_with_rng(rng),
            Hint::Url => {
                let host: String = Word().fake_with_rng(rng);
                let suffix: String = DomainSuffix().fake_with_rng(rng);
                let path: String = Word().fake_with_rng(rng);
                format!("https://{host}.{suffix}/{path}")
            }
            Hint::Uuid => self.uuid().hyphenated().to_string(),
            Hint::Phone => PhoneNumber().fake_with_rng(rng),
            Hint::Street => StreetName().fake_with_rng(rng),
            Hint::Company => CompanyName().fake_with_rng(rng),
            Hint::User => Username().fake_with_rng(rng),
            Hint::Zip => ZipCode().fake_with_rng(rng),
            Hint::Word => Word().fake_with_rng(rng),
            Hint::None | Hint::Timestamp => {
                const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                let n = self.len(self.sizes.string_len);
                (0..n).map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char).collect()
            }
        }
    }

    fn uuid(&mut self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; n];
        self.rng.fill_bytes(&mut bytes);
        bytes
    }

    fn value(&mut self, schema: &Schema, hint: Hint, depth: usize, now_ms: i64) -> Value {
        match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => Value::Boolean(self.rng.random()),
            Schema::Int if hint == Hint::Timestamp => Value::Int((now_ms / 1000) as i32),
            Schema::Int => Value::Int(self.rng.random_range(-1_000_000..=1_000_000)),
            Schema::Long if hint == Hint::Timestamp => Value::Long(now_ms),
            Schema::Long => Value::Long(self.rng.random_range(-1_000_000_000_000i64..=1_000_000_000_000)),
            Schema::Float => Value::Float(self.rng.random_range(-1.0e6f32..1.0e6)),
            Schema::Double => Value::Double(self.rng.random_range(-1.0e9..1.0e9)),
            Schema::Bytes => {
                let n = self.len(self.sizes.bytes_len);
                Value::Bytes(self.bytes(n))
            }
            Schema::String => Value::String(self.text(hint)),
            Schema::Array(a) => {
                let n = if depth >= MAX_DEPTH { 0 } else { self.len(self.sizes.array_len) };
                Value::Array((0..n).map(|_| self.value(&a.items, Hint::None, depth + 1, now_ms)).collect())
            }
            Schema::Map(m) => {
                let n = if depth >= MAX_DEPTH { 0 } else { self.len(self.sizes.array_len) };
                Value::Map(
                    (0..n)
                        .map(|i| {
                            (format!("{}{i}", self.text(Hint::Word)), self.value(&m.types, hint, depth + 1, now_ms))
                        })
                        .collect(),
                )
            }
            Schema::Union(u) => {
                let variants = u.variants();
                let i = if depth >= MAX_DEPTH {
                    variants.iter().position(|s| matches!(s, Schema::Null)).unwrap_or(0)
                } else {
                    self.rng.random_range(0..variants.len())
                };
                Value::Union(i as u32, Box::new(self.value(&variants[i], hint, depth + 1, now_ms)))
            }
            Schema::Record(r) => Value::Record(
                r.fields
                    .iter()
                    .map(|f| (f.name.clone(), self.value(&f.schema, hint_of(&f.name), depth + 1, now_ms)))
                    .collect(),
            ),
            Schema::Enum(e) => {
                let i = self.rng.random_range(0..e.symbols.len());
                Value::Enum(i as u32, e.symbols[i].clone())
            }
            Schema::Fixed(f) => Value::Fixed(f.size, self.bytes(f.size)),
            Schema::Decimal(d) => {
                // An unscaled value below 10^min(precision, 18), big-endian
                // two's complement, sign-extended to a fixed's size.
                let digits = d.precision.min(18) as u32;
                let bound = 10i64.pow(digits);
                let unscaled = self.rng.random_range(-bound + 1..bound);
                let full = unscaled.to_be_bytes();
                let bytes = match &d.inner {
                    InnerDecimalSchema::Fixed(f) => {
                        let fill = if unscaled < 0 { 0xff } else { 0 };
                        let mut out = vec![fill; f.size.saturating_sub(8)];
                        out.extend_from_slice(&full[8usize.saturating_sub(f.size)..]);
                        out
                    }
                    InnerDecimalSchema::Bytes => full.to_vec(),
                };
                Value::Decimal(Decimal::from(bytes))
            }
            Schema::BigDecimal => {
                let unscaled = self.rng.random_range(-1_000_000_000i64..1_000_000_000);
                let scale = self.rng.random_range(0..6);
                #[allow(deprecated)]
                let value = apache_avro::BigDecimal::new(unscaled.into(), scale);
                Value::BigDecimal(value)
            }
            // Whatever the underlying type (string, fixed 16), the value is a Uuid.
            Schema::Uuid(_) => Value::Uuid(self.uuid()),
            Schema::Date => Value::Date((now_ms / 86_400_000) as i32 - self.rng.random_range(0..3650)),
            Schema::TimeMillis => Value::TimeMillis(self.rng.random_range(0..86_400_000)),
            Schema::TimeMicros => Value::TimeMicros(self.rng.random_range(0..86_400_000_000)),
            Schema::TimestampMillis => Value::TimestampMillis(now_ms),
            Schema::TimestampMicros => Value::TimestampMicros(now_ms * 1000),
            Schema::TimestampNanos => Value::TimestampNanos(now_ms * 1_000_000),
            Schema::LocalTimestampMillis => Value::LocalTimestampMillis(now_ms),
            Schema::LocalTimestampMicros => Value::LocalTimestampMicros(now_ms * 1000),
            Schema::LocalTimestampNanos => Value::LocalTimestampNanos(now_ms * 1_000_000),
            Schema::Duration(_) => Value::Duration(Duration::new(
                Months::new(self.rng.random_range(0..24)),
                Days::new(self.rng.random_range(0..31)),
                Millis::new(self.rng.random_range(0..86_400_000)),
            )),
            Schema::Ref { name } => match self.names.get(name).cloned() {
                Some(target) => self.value(&target, hint, depth, now_ms),
                // check_refs ran at construction: every reference resolves.
                None => Value::Null,
            },
        }
    }
}

fn collect_names(schema: &Schema, names: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(r) => {
            names.insert(r.name.clone(), schema.clone());
            for f in &r.fields {
                collect_names(&f.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.clone(), schema.clone());
        }
        Schema::Fixed(f) | Schema::Duration(f) => {
            names.insert(f.name.clone(), schema.clone());
        }
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                names.insert(f.name.clone(), schema.clone());
            }
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

fn check_refs(schema: &Schema, names: &HashMap<Name, Schema>) -> Result<(), SchemaGenError> {
    match schema {
        Schema::Ref { name } if !names.contains_key(name) => Err(SchemaGenError::UnknownReference(name.fullname(None))),
        Schema::Record(r) => r.fields.iter().try_for_each(|f| check_refs(&f.schema, names)),
        Schema::Array(a) => check_refs(&a.items, names),
        Schema::Map(m) => check_refs(&m.types, names),
        Schema::Union(u) => u.variants().iter().try_for_each(|v| check_refs(v, names)),
        _ => Ok(()),
    }
}

/// The schema text with a `bytes` padding field appended to its top record.
fn add_padding_field(text: &str) -> Result<String, SchemaGenError> {
    let mut json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| SchemaGenError::Padding(format!("schema is not JSON: {e}")))?;
    if json.get("type").and_then(|t| t.as_str()) != Some("record") {
        return Err(SchemaGenError::PaddingNeedsRecord);
    }
    let fields = json
        .get_mut("fields")
        .and_then(|f| f.as_array_mut())
        .ok_or_else(|| SchemaGenError::Padding("record has no fields array".into()))?;
    if fields.iter().any(|f| f.get("name").and_then(|n| n.as_str()) == Some(PAD_FIELD)) {
        return Err(SchemaGenError::Padding(format!("the schema already has a field {PAD_FIELD}")));
    }
    fields.push(serde_json::json!({"name": PAD_FIELD, "type": "bytes", "default": ""}));
    Ok(json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERYTHING: &str = r#"{
      "type": "record", "name": "Everything", "namespace": "t",
      "fields": [
        {"name": "n", "type": "null"},
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "created_at", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "email", "type": "string"},
        {"name": "client_ip", "type": "string"},
        {"name": "city", "type": "string"},
        {"name": "homepage_url", "type": "string"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "maybe", "type": ["null", "string", "int"]},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
        {"name": "md5", "type": {"type": "fixed", "name": "Md5", "size": 16}},
        {"name": "again", "type": "Md5"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "fprice", "type": {"type": "fixed", "name": "F12", "size": 12, "logicalType": "decimal", "precision": 20, "scale": 4}},
        {"name": "big", "type": {"type": "bytes", "logicalType": "big-decimal"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tm", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "tu", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "tsm", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "tsu", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "tsn", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
        {"name": "ltm", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "ltu", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "dur", "type": {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}},
        {"name": "next", "type": ["null", "Everything"]}
      ]
    }"#;

    /// The accounting's oracle and the processor's transcoder are written
    /// apart; on every type they must agree on what a record's line holds.
    #[test]
    fn the_expected_digest_of_every_type_matches_the_transcoded_line() {
        let mut g = SchemaRecords::new(EVERYTHING, SizeControls::default(), 7).unwrap();
        let transcoder = mskbench_core::transcode::Transcoder::compile(g.schema()).unwrap();
        let mut canon = crate::expected::Canon::new();
        let (mut datum, mut line) = (Vec::new(), Vec::new());
        for i in 0..300 {
            datum.clear();
            line.clear();
            let digest = g.next_datum_expected(&mut datum, &mut canon).unwrap();
            transcoder.transcode(&datum, &mut line, usize::MAX).unwrap();
            let got = crate::expected::line(&line, &mut canon).unwrap();
            assert_eq!(got, digest, "record {i}: {}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn every_type_generates_a_datum_that_decodes() {
        let mut g = SchemaRecords::new(EVERYTHING, SizeControls::default(), 5).unwrap();
        let schema = g.schema().clone();
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().unwrap();
        for _ in 0..300 {
            let mut datum = Vec::new();
            g.next_datum(&mut datum).unwrap();
            let decoded = reader.read_value(&mut std::io::Cursor::new(&datum)).unwrap();
            assert!(matches!(decoded, Value::Record(_)));
        }
    }

    #[test]
    fn hints_give_realistic_strings() {
        let mut g = SchemaRecords::new(EVERYTHING, SizeControls::default(), 9).unwrap();
        let Value::Record(fields) = g.next_value() else { panic!("a record") };
        let get = |n: &str| fields.iter().find(|(f, _)| f == n).map(|(_, v)| v.clone()).unwrap();
        let Value::String(email) = get("email") else { panic!() };
        assert!(email.contains('@'), "{email}");
        let Value::String(ip) = get("client_ip") else { panic!() };
        assert_eq!(ip.split('.').count(), 4, "{ip}");
        let Value::String(url) = get("homepage_url") else { panic!() };
        assert!(url.starts_with("https://"), "{url}");
        let Value::Long(ts) = get("created_at") else { panic!() };
        assert!(ts > 1_600_000_000_000, "{ts}");
    }

    #[test]
    fn same_seed_same_records() {
        let schema = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"long"},{"name":"email","type":"string"}]}"#;
        let mut a = SchemaRecords::new(schema, SizeControls::default(), 1).unwrap();
        let mut b = SchemaRecords::new(schema, SizeControls::default(), 1).unwrap();
        let mut c = SchemaRecords::new(schema, SizeControls::default(), 2).unwrap();
        let (va, vb, vc) = (a.next_value(), b.next_value(), c.next_value());
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn size_controls_bound_lengths_and_pad() {
        let schema = r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"xs","type":{"type":"array","items":"int"}}]}"#;
        let sizes = SizeControls { string_len: (50, 50), bytes_len: (1, 1), array_len: (3, 3), pad_bytes: 1000 };
        let mut g = SchemaRecords::new(schema, sizes, 3).unwrap();
        assert!(g.schema_json().contains(PAD_FIELD));
        let Value::Record(fields) = g.next_value() else { panic!() };
        assert!(matches!(&fields[0].1, Value::String(s) if s.len() == 50));
        assert!(matches!(&fields[1].1, Value::Array(xs) if xs.len() == 3));
        assert!(matches!(&fields[2].1, Value::Bytes(b) if b.len() == 1000));
        let mut datum = Vec::new();
        g.next_datum(&mut datum).unwrap();
        assert!(datum.len() > 1050);
    }

    #[test]
    fn padding_refuses_a_non_record() {
        let sizes = SizeControls { pad_bytes: 10, ..SizeControls::default() };
        assert!(matches!(SchemaRecords::new(r#""string""#, sizes, 1), Err(SchemaGenError::PaddingNeedsRecord)));
    }
}
