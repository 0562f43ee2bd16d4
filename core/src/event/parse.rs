//! A JSON reader specialised for the Lambda Kafka event.
//!
//! Why not serde_json alone: parsing the event was the largest cost of the
//! whole per-event path. serde_json into the derived types ran at about
//! 600 MiB/s here (≈ 365 ns per ClickEvent record), sonic-rs and simd-json
//! through serde at 620–700 MiB/s (BENCHMARKS.md). This reader knows the
//! event's shape, so it matches field names directly, finds the end of each
//! string with `memchr` (SIMD, run-time CPU detection) instead of
//! byte-at-a-time, and validates UTF-8 once for the whole document with
//! `simdutf8`. The serde derives in the parent module stay: they serialise
//! events, and the property tests hold this reader to serde_json's answers
//! (same event, or both refuse) on generated and mutated documents.
//!
//! It is a strict JSON reader: the grammar of RFC 8259 (whitespace, escapes
//! including surrogate pairs, number syntax, no trailing characters), no
//! control characters inside strings, nesting of skipped values limited to
//! 128 levels like serde_json. Unknown fields are skipped after being
//! checked; duplicate known fields are errors, as with serde's derive.

use std::borrow::Cow;

use super::{EventError, EventErrorKind, Header, KafkaEvent, KafkaRecord, PartitionRecords, TimestampType};

/// Deepest nesting accepted inside skipped values.
const MAX_DEPTH: u32 = 128;

/// Strings are scanned eight bytes at a time up to this length, then with
/// memchr (SIMD), which wins on long base64 values but costs more to set up
/// than a short field name or topic takes to scan.
const SHORT_STRING: usize = 32;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte that ends the fast path of a JSON string: `"`,
/// `\\` or a control character (an error). SWAR over eight-byte words: a
/// marked byte may be a false positive only above a truly special one, so
/// the lowest mark is exact.
#[inline]
fn first_special(s: &[u8]) -> Option<usize> {
    let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    let mut i = 0;
    while i + 8 <= s.len() && i < SHORT_STRING {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(word);
        // Bytes < 0x20; bytes >= 0x80 are never marked (UTF-8 is allowed).
        let marks = (x.wrapping_sub(0x20 * ONES) & !x & HIGH)
            | zero(x ^ (u64::from(b'"') * ONES))
            | zero(x ^ (u64::from(b'\\') * ONES));
        if marks != 0 {
            return Some(i + marks.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    if i < SHORT_STRING {
        // Fewer than eight bytes are left before the end of the input.
        return s[i..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|j| i + j);
    }
    // Long strings: memchr for the end, then one vectorised pass (no early
    // exit) for control characters before it.
    let end = memchr::memchr2(b'"', b'\\', &s[i..]).map(|j| i + j);
    let before = &s[i..end.unwrap_or(s.len())];
    let control = before.iter().fold(false, |bad, &b| bad | (b < 0x20));
    if control { before.iter().position(|&b| b < 0x20).map(|j| i + j) } else { end }
}

/// Parses a Lambda Kafka event, borrowing strings from `input`.
pub(super) fn parse(input: &[u8]) -> Result<KafkaEvent<'_>, EventError> {
    let text = match simdutf8::compat::from_utf8(input) {
        Ok(text) => text,
        Err(e) => return Err(error_at(input, e.valid_up_to(), EventErrorKind::InvalidUtf8)),
    };
    let mut p = Parser { text, bytes: input, pos: 0 };
    p.event().map_err(|kind| error_at(input, p.pos, kind))
}

fn error_at(input: &[u8], pos: usize, kind: EventErrorKind) -> EventError {
    let pos = pos.min(input.len());
    let before = &input[..pos];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let column = pos - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
    EventError { line, column, kind }
}

type R<T> = Result<T, EventErrorKind>;

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// A known field name and its closing quote as a masked 16-byte word, so
/// that matching a name is one load, xor and mask instead of a `memcmp`
/// call (which cost 200 instructions per record across eight names).
struct Key {
    name: &'static str,
    word: u128,
    mask: u128,
}

impl Key {
    const fn new(name: &'static str) -> Key {
        let bytes = name.as_bytes();
        let mut word = 0u128;
        let mut i = 0;
        while i < bytes.len() && i < 16 {
            word |= (bytes[i] as u128) << (8 * i);
            i += 1;
        }
        if bytes.len() < 16 {
            word |= (b'"' as u128) << (8 * bytes.len());
        }
        let len = bytes.len() + 1;
        let mask = if len >= 16 { u128::MAX } else { (1u128 << (8 * len)) - 1 };
        Key { name, word, mask }
    }

    /// True when `rest` starts with this name and its closing quote.
    #[inline]
    fn starts(&self, rest: &[u8]) -> bool {
        let n = self.name.len();
        if n < 16
            && let Some(window) = rest.get(..16).and_then(|w| <[u8; 16]>::try_from(w).ok())
        {
            return (u128::from_le_bytes(window) ^ self.word) & self.mask == 0;
        }
        rest.len() > n && rest[n] == b'"' && rest.starts_with(self.name.as_bytes())
    }
}

/// Tracks which known fields of an object were seen.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    fn mark(&mut self, bit: usize, field: &'static str) -> R<()> {
        if self.0 & (1 << bit) != 0 {
            return Err(EventErrorKind::DuplicateField(field));
        }
        self.0 |= 1 << bit;
        Ok(())
    }
}

impl<'a> Parser<'a> {
    fn event(&mut self) -> R<KafkaEvent<'a>> {
        let mut event =
            KafkaEvent { event_source: None, event_source_arn: None, bootstrap_servers: None, records: Vec::new() };
        let mut seen = Seen::default();
        const FIELDS: &[Key] =
            &[Key::new("eventSource"), Key::new("eventSourceArn"), Key::new("bootstrapServers"), Key::new("records")];
        self.fields(FIELDS, |p, field| {
            let Some(i) = field else { return p.skip_value(0) };
            seen.mark(i, FIELDS[i].name)?;
            match i {
                0 => event.event_source = p.opt_string()?,
                1 => event.event_source_arn = p.opt_string()?,
                2 => event.bootstrap_servers = p.opt_string()?,
                _ => event.records = p.partitions()?,
            }
            Ok(())
        })?;
        if seen.0 & (1 << 3) == 0 {
            return Err(EventErrorKind::MissingField("records"));
        }
        self.ws();
        if self.pos != self.bytes.len() {
            return Err(EventErrorKind::Syntax("trailing characters after the event"));
        }
        Ok(event)
    }

    fn partitions(&mut self) -> R<Vec<PartitionRecords<'a>>> {
        let mut out = Vec::new();
        self.object(|p, key| {
            let records = p.records()?;
            out.push(PartitionRecords { key, records });
            Ok(())
        })?;
        Ok(out)
    }

    fn records(&mut self) -> R<Vec<KafkaRecord<'a>>> {
        self.ws();
        if self.peek() != Some(b'[') {
            return Err(EventErrorKind::InvalidType { field: "records", expected: "a list of records" });
        }
        // A ClickEvent record takes about 230 bytes of event text.
        let mut out = Vec::with_capacity(((self.bytes.len() - self.pos) / 256).clamp(1, 1024));
        self.array(|p| {
            out.push(p.record()?);
            Ok(())
        })?;
        Ok(out)
    }

    fn record(&mut self) -> R<KafkaRecord<'a>> {
        self.ws();
        let start = self.pos;
        if let Some(record) = self.record_as_aws_writes_it() {
            return Ok(record);
        }
        // Anything else, and any doubt, goes the general way from the start.
        self.pos = start;
        self.record_any_layout()
    }

    /// The fast path: a record laid out exactly as AWS (and serde_json's
    /// compact form) writes it — no whitespace, the fields in the order
    /// `topic`, `partition`, `offset`, `timestamp`, `timestampType`, `key`,
    /// `value`, then `headers` or the end, non-negative integers without
    /// leading zeros, strings without escapes. It reads the record as a
    /// fixed sequence of literals and values instead of matching each field
    /// name and dispatching on it; that dispatch was most of the event
    /// reader's cost (BENCHMARKS.md, "The hot path, toward the limit").
    ///
    /// `None` means "not this layout", never "invalid": the caller then
    /// reads the record again from its start with [`Self::record_any_layout`],
    /// which accepts what this accepts and gives the same record, so the
    /// fast path changes no answer (the property tests hold both to
    /// serde_json's). Errors inside `headers` are the general reader's own.
    #[inline]
    fn record_as_aws_writes_it(&mut self) -> Option<KafkaRecord<'a>> {
        self.lit(b"{\"topic\":")?;
        let topic = self.plain_string()?;
        self.lit(b",\"partition\":")?;
        let partition = i32::try_from(self.plain_uint()?).ok()?;
        self.lit(b",\"offset\":")?;
        let offset = self.plain_uint()?;
        self.lit(b",\"timestamp\":")?;
        let timestamp = self.plain_uint()?;
        self.lit(b",\"timestampType\":\"")?;
        let timestamp_type = if self.lit(b"CREATE_TIME\"").is_some() {
            TimestampType::CreateTime
        } else if self.lit(b"LOG_APPEND_TIME\"").is_some() {
            TimestampType::LogAppendTime
        } else {
            self.lit(b"NO_TIMESTAMP_TYPE\"")?;
            TimestampType::NoTimestampType
        };
        self.lit(b",\"key\":")?;
        let key = self.plain_opt_string()?;
        self.lit(b",\"value\":")?;
        let value = if self.lit(b"null").is_some() { None } else { Some(self.plain_long_string()?) };
        let headers = if self.lit(b",\"headers\":[]}").is_some() {
            Vec::new()
        } else if self.lit(b",\"headers\":").is_some() {
            let headers = self.headers().ok()?;
            self.lit(b"}")?;
            headers
        } else {
            self.lit(b"}")?;
            Vec::new()
        };
        Some(KafkaRecord {
            topic: Cow::Borrowed(topic),
            partition,
            offset,
            timestamp,
            timestamp_type,
            key: key.map(Cow::Borrowed),
            value: value.map(Cow::Borrowed),
            headers,
        })
    }

    /// Consumes `word` if the input continues with it. Called with
    /// literals, so the comparison compiles to a few fixed-size loads.
    #[inline(always)]
    fn lit(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes at `"`, or `None` (any escape, control
    /// character or missing quote: the general reader decides).
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos + 1;
        let end = start + first_special(&self.bytes[start..])?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        // Both ends are ASCII quotes, so they are char boundaries of the
        // already validated text.
        self.text.get(start..end)
    }

    /// [`Self::plain_string`] for a string that is usually long (a record
    /// value's base64): the closing quote by `memchr` (SIMD, run-time CPU
    /// detection) from the first byte, then one vectorised pass without
    /// early exit that refuses escapes and control characters before it.
    /// For a ClickEvent's ~136 characters this is about half the cost of
    /// [`first_special`], which looks for three kinds of byte at once.
    #[inline(always)]
    fn plain_long_string(&mut self) -> Option<&'a str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos + 1;
        let end = start + memchr::memchr(b'"', &self.bytes[start..])?;
        let body = &self.bytes[start..end];
        if body.iter().fold(false, |bad, &b| bad | (b < 0x20) | (b == b'\\')) {
            return None;
        }
        self.pos = end + 1;
        // Both ends are ASCII quotes, so they are char boundaries of the
        // already validated text.
        self.text.get(start..end)
    }

    /// `null` or a [plain string](Self::plain_string).
    #[inline(always)]
    fn plain_opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.lit(b"null").is_some() { Some(None) } else { self.plain_string().map(Some) }
    }

    /// A non-negative JSON integer of 1 to 18 digits without a leading zero
    /// (so it fits an i64 without overflow checks), or `None`. What follows
    /// it is the next literal's to check: a fraction or exponent fails it.
    #[inline(always)]
    fn plain_uint(&mut self) -> Option<i64> {
        let start = self.pos;
        let mut n = 0u64;
        while let Some(&b) = self.bytes.get(self.pos) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 || len > 18 || (len > 1 && self.bytes[start] == b'0') {
            return None;
        }
        Some(n as i64)
    }

    /// Any valid record: fields in any order, whitespace, escapes, unknown
    /// fields, negative numbers.
    fn record_any_layout(&mut self) -> R<KafkaRecord<'a>> {
        let mut topic = None;
        let (mut partition, mut offset) = (None, None);
        let mut timestamp = -1;
        let mut timestamp_type = TimestampType::NoTimestampType;
        let (mut key, mut value) = (None, None);
        let mut headers = Vec::new();
        let mut seen = Seen::default();
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(EventErrorKind::InvalidType { field: "record", expected: "an object" });
        }
        const FIELDS: &[Key] = &[
            Key::new("topic"),
            Key::new("partition"),
            Key::new("offset"),
            Key::new("timestamp"),
            Key::new("timestampType"),
            Key::new("key"),
            Key::new("value"),
            Key::new("headers"),
        ];
        self.fields(FIELDS, |p, field| {
            let Some(i) = field else { return p.skip_value(0) };
            seen.mark(i, FIELDS[i].name)?;
            match i {
                0 => {
                    p.ws();
                    topic = Some(p.string()?);
                }
                1 => {
                    let n = p.integer("partition")?;
                    partition = Some(i32::try_from(n).map_err(|_| EventErrorKind::OutOfRange("partition"))?);
                }
                2 => offset = Some(p.integer("offset")?),
                3 => timestamp = p.integer("timestamp")?,
                4 => {
                    p.ws();
                    timestamp_type = match p.string()?.as_ref() {
                        "CREATE_TIME" => TimestampType::CreateTime,
                        "LOG_APPEND_TIME" => TimestampType::LogAppendTime,
                        "NO_TIMESTAMP_TYPE" => TimestampType::NoTimestampType,
                        _ => return Err(EventErrorKind::UnknownTimestampType),
                    };
                }
                5 => key = p.opt_string()?,
                6 => value = p.opt_string()?,
                _ => headers = p.headers()?,
            }
            Ok(())
        })?;
        Ok(KafkaRecord {
            topic: topic.ok_or(EventErrorKind::MissingField("topic"))?,
            partition: partition.ok_or(EventErrorKind::MissingField("partition"))?,
            offset: offset.ok_or(EventErrorKind::MissingField("offset"))?,
            timestamp,
            timestamp_type,
            key,
            value,
            headers,
        })
    }

    fn headers(&mut self) -> R<Vec<Header<'a>>> {
        self.ws();
        let mut out = Vec::new();
        if self.null()? {
            return Ok(out);
        }
        if self.peek() != Some(b'[') {
            return Err(EventErrorKind::InvalidType { field: "headers", expected: "a list or null" });
        }
        self.array(|p| {
            p.ws();
            if p.peek() != Some(b'{') {
                return Err(EventErrorKind::InvalidType { field: "headers", expected: "{\"name\": [bytes]} objects" });
            }
            p.object(|p, key| {
                p.ws();
                let mut value = Vec::new();
                if !p.null()? {
                    if p.peek() != Some(b'[') {
                        return Err(EventErrorKind::InvalidType { field: "header value", expected: "a byte array" });
                    }
                    p.array(|p| {
                        let n = p.integer("header byte")?;
                        value.push(match n {
                            0..=255 => n as u8,
                            // Java serialises byte[] as signed values.
                            -128..=-1 => (n + 256) as u8,
                            _ => return Err(EventErrorKind::OutOfRange("header byte")),
                        });
                        Ok(())
                    })?;
                }
                out.push(Header { key, value });
                Ok(())
            })
        })?;
        Ok(out)
    }

    // ---- JSON grammar ----

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8, what: &'static str) -> R<()> {
        self.ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(EventErrorKind::Syntax(what))
        }
    }

    /// Consumes `null` if it comes next (after whitespace was skipped).
    fn null(&mut self) -> R<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn literal(&mut self, word: &'static [u8]) -> R<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(EventErrorKind::Syntax("invalid literal"))
        }
    }

    /// `{ "key": value, … }`; `field` parses each value after the colon.
    fn object(&mut self, mut field: impl FnMut(&mut Self, Cow<'a, str>) -> R<()>) -> R<()> {
        self.members(|p| {
            let key = p.string()?;
            p.eat(b':', "expected ':'")?;
            field(p, key)
        })
    }

    /// An object with known field names: `field` gets the index of the
    /// name in `names`, or `None` for any other name. Names are matched in
    /// place without scanning them as strings first; a name written with
    /// escapes falls back to a full string comparison.
    fn fields(&mut self, names: &[Key], mut field: impl FnMut(&mut Self, Option<usize>) -> R<()>) -> R<()> {
        // AWS writes the fields in one order: try the name after the last
        // one first, then all of them.
        let mut next = 0;
        self.members(|p| {
            let rest = &p.bytes[p.pos + 1..];
            let is = |i: &usize| names[*i].starts(rest);
            let quick = Some(next).filter(|i| *i < names.len() && is(i)).or_else(|| (0..names.len()).find(is));
            let index = match quick {
                Some(i) => {
                    next = i + 1;
                    p.pos += names[i].name.len() + 2;
                    Some(i)
                }
                None => {
                    let name = p.string()?;
                    names.iter().position(|n| n.name == name)
                }
            };
            p.eat(b':', "expected ':'")?;
            field(p, index)
        })
    }

    /// The `{ member, … }` frame of an object; `member` is called at the
    /// opening quote of each name and reads the name, colon and value.
    fn members(&mut self, mut member: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.eat(b'{', "expected '{'")?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(EventErrorKind::Syntax("expected a field name"));
            }
            member(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(EventErrorKind::Syntax("expected ',' or '}'")),
            }
        }
    }

    /// `[ value, … ]`; `item` parses each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.eat(b'[', "expected '['")?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(EventErrorKind::Syntax("expected ',' or ']'")),
            }
        }
    }

    fn opt_string(&mut self) -> R<Option<Cow<'a, str>>> {
        self.ws();
        if self.null()? {
            return Ok(None);
        }
        if self.peek() != Some(b'"') {
            return Err(EventErrorKind::InvalidType { field: "string field", expected: "a string or null" });
        }
        self.string().map(Some)
    }

    /// A string at `"`: borrowed unless it holds escapes.
    #[inline]
    fn string(&mut self) -> R<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(EventErrorKind::InvalidType { field: "string field", expected: "a string" });
        }
        let start = self.pos + 1;
        let Some(len) = first_special(&self.bytes[start..]) else {
            self.pos = self.bytes.len();
            return Err(EventErrorKind::Syntax("unterminated string"));
        };
        let end = start + len;
        match self.bytes[end] {
            b'"' => {}
            b'\\' => return self.escaped_string(start, end).map(Cow::Owned),
            _ => {
                self.pos = end;
                return Err(EventErrorKind::Syntax("control character in string"));
            }
        }
        self.pos = end + 1;
        // Both ends are ASCII quotes, so they are char boundaries of the
        // already validated text.
        Ok(Cow::Borrowed(&self.text[start..end]))
    }

    /// The slow path: a string with escapes, from `start`; `first_escape`
    /// is the position of its first backslash.
    #[cold]
    fn escaped_string(&mut self, start: usize, first_escape: usize) -> R<String> {
        let mut out = String::with_capacity(first_escape - start + 16);
        let mut run = start;
        self.pos = start;
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(EventErrorKind::Syntax("unterminated string"));
            };
            match b {
                b'"' => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            run = self.pos;
                            continue;
                        }
                        _ => return Err(EventErrorKind::Syntax("invalid escape")),
                    };
                    out.push(c);
                    self.pos += 1;
                    run = self.pos;
                }
                0x00..=0x1f => return Err(EventErrorKind::Syntax("control character in string")),
                _ => self.pos += 1,
            }
        }
    }

    /// After `\u`: four hex digits, and a low surrogate escape after a high one.
    fn unicode_escape(&mut self) -> R<char> {
        let high = self.hex4()?;
        let code = match high {
            0xd800..=0xdbff => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return Err(EventErrorKind::Syntax("lone surrogate in \\u escape"));
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err(EventErrorKind::Syntax("lone surrogate in \\u escape"));
                }
                0x10000 + ((u32::from(high) - 0xd800) << 10) + (u32::from(low) - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(EventErrorKind::Syntax("lone surrogate in \\u escape")),
            _ => u32::from(high),
        };
        char::from_u32(code).ok_or(EventErrorKind::Syntax("invalid \\u escape"))
    }

    fn hex4(&mut self) -> R<u16> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or(EventErrorKind::Syntax("truncated \\u escape"))?;
        let mut n = 0u16;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or(EventErrorKind::Syntax("invalid \\u escape"))?;
            n = n << 4 | v as u16;
        }
        self.pos += 4;
        Ok(n)
    }

    /// A JSON integer (no fraction or exponent) that fits in an i64.
    #[inline]
    fn integer(&mut self, field: &'static str) -> R<i64> {
        self.ws();
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut magnitude: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(d - b'0')))
                .ok_or(EventErrorKind::OutOfRange(field))?;
            self.pos += 1;
        }
        let digits = self.pos - digits_start;
        if digits == 0 {
            return Err(EventErrorKind::InvalidType { field, expected: "an integer" });
        }
        if digits > 1 && self.bytes[digits_start] == b'0' {
            return Err(EventErrorKind::Syntax("leading zero in number"));
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(EventErrorKind::InvalidType { field, expected: "an integer" });
        }
        if negative {
            // serde_json reads `-0` as the float -0.0; refuse it the same way.
            if magnitude == 0 {
                return Err(EventErrorKind::InvalidType { field, expected: "an integer" });
            }
            if magnitude > 1 << 63 {
                return Err(EventErrorKind::OutOfRange(field));
            }
            Ok((magnitude as i64).wrapping_neg())
        } else {
            i64::try_from(magnitude).map_err(|_| EventErrorKind::OutOfRange(field))
        }
    }

    /// Checks and skips any JSON value.
    fn skip_value(&mut self, depth: u32) -> R<()> {
        if depth >= MAX_DEPTH {
            return Err(EventErrorKind::Syntax("nesting too deep"));
        }
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(|p, _| p.skip_value(depth + 1)),
            Some(b'[') => self.array(|p| p.skip_value(depth + 1)),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            _ => Err(EventErrorKind::Syntax("expected a value")),
        }
    }

    fn skip_number(&mut self) -> R<()> {
        let digits = |p: &mut Self| {
            let start = p.pos;
            while let Some(b'0'..=b'9') = p.peek() {
                p.pos += 1;
            }
            p.pos - start
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 || (n > 1 && self.bytes[int_start] == b'0') {
            return Err(EventErrorKind::Syntax("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(EventErrorKind::Syntax("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(EventErrorKind::Syntax("invalid number"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_exactly_their_name_and_quote() {
        let rest = |s: &str| format!("{s}\": 1, \"padding\": \"long enough\"}}");
        for name in ["key", "topic", "timestamp", "timestampType", "bootstrapServers", "fifteen_chars__"] {
            let k = Key::new(name);
            assert!(k.starts(rest(name).as_bytes()), "{name}");
            assert!(k.starts(format!("{name}\"").as_bytes()), "{name} at the end of input");
            assert!(!k.starts(rest(&format!("{name}x")).as_bytes()), "{name}x");
            assert!(!k.starts(rest(&name[..name.len() - 1]).as_bytes()), "prefix of {name}");
        }
        assert!(!Key::new("timestamp").starts(b"timestampType\": 1, \"padding\": 2"));
    }

    #[test]
    fn first_special_matches_a_plain_scan() {
        let plain = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        for len in [0usize, 1, 7, 8, 9, 16, 31, 32, 33, 40, 200] {
            for at in [0, 3, 7, 8, 15, 31, 32, 39, 150] {
                for b in 0u8..=255 {
                    let mut s = vec![b'a'; len];
                    if at < len {
                        s[at] = b;
                    }
                    // non-ASCII neighbours must not hide or fake a mark
                    if len > 2 {
                        s[len - 1] = 0xc3;
                    }
                    let mut quoted = s.clone();
                    quoted.push(b'"');
                    assert_eq!(first_special(&s), plain(&s), "len {len} at {at} byte {b:#x}");
                    assert_eq!(first_special(&quoted), plain(&quoted), "quoted len {len} at {at} byte {b:#x}");
                }
            }
        }
    }
}
