//! Avro binary → JSON text, compiled once per writer schema.
//!
//! [`Transcoder::compile`] turns a parsed writer schema into a flat program:
//! one [`Node`] per schema position, named types shared, record field
//! prefixes (`{"ip":`, `,"devicetype":`) and enum symbols pre-rendered as
//! JSON bytes. [`Transcoder::transcode`] then walks the Avro datum once and
//! writes JSON straight into a caller-owned `Vec<u8>`: no intermediate value
//! tree, no allocation beyond the output buffer's growth. A ClickEvent takes
//! well under 100 ns here (BENCHMARKS.md).
//!
//! # Output conventions
//! One compact JSON value per datum (an object for a record schema), with:
//! - record fields in schema order;
//! - union values unwrapped: the branch's plain value, or `null` — the
//!   text the lab's Java Lambda wrote with Avro's `GenericRecord.toString`,
//!   not Avro's JSON encoding with its `{"string": …}` wrappers;
//! - `bytes` and `fixed` as JSON strings holding one code point
//!   U+0000–U+00FF per byte (Avro's JSON convention for default values);
//! - enums as their symbol string; maps as objects;
//! - `float` and `double` in their shortest round-trip form, non-finite
//!   values (NaN, ±∞) as `null` because JSON has no spelling for them;
//! - logical types as their underlying value (a `date` is its `int`, a
//!   `decimal` its bytes, a `uuid` its string or fixed bytes);
//! - strings with `"`, `\` and control characters escaped, everything else
//!   (including non-ASCII) written as UTF-8.
//!
//! The caller appends the `"\n"` that separates records in Firehose.
//!
//! # Bad input
//! Every datum is untrusted. Truncated data, varints longer than 10 bytes,
//! `int` values outside 32 bits, negative lengths, lengths or block counts
//! beyond what the remaining input can hold (checked before any work, so
//! there is no allocation bomb), booleans other than 0/1, union and enum
//! indexes out of range, invalid UTF-8, nesting deeper than [`MAX_DEPTH`],
//! output beyond the caller's limit and trailing bytes after the datum are
//! each a [`TranscodeError`] carrying the byte offset; the output buffer is
//! then restored to its length before the call.

use std::collections::HashMap;
use std::fmt;

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, Name, UuidSchema};

/// Deepest nesting of records, arrays, maps and unions a datum may have.
pub const MAX_DEPTH: u32 = 128;

/// Nesting levels between two stack checks.
const STACK_CHECK_EVERY: u32 = 16;
/// Stack that must remain at a check: room for [`STACK_CHECK_EVERY`]
/// levels of the largest frame seen (about 23 KiB in debug builds) with
/// room to spare.
/// Callers need this much free stack when they call `transcode` (any
/// ordinary thread has: Rust's and tokio's default is 2 MiB).
const STACK_RED_ZONE: usize = 512 * 1024;
/// Size of a new stack segment when less than the red zone remains.
const STACK_SEGMENT: usize = 4 * 1024 * 1024;

/// A compiled writer schema.
#[derive(Debug, Clone)]
pub struct Transcoder {
    nodes: Vec<Node>,
    /// Lower bound of each node's encoded size, for block-count checks.
    min_size: Vec<u32>,
    root: u32,
    /// Bytes of all field names and enum symbols, to size the output.
    names_len: usize,
    /// The straight-line program, when the root is a record of simple
    /// fields (see [`Flat`]).
    flat: Option<Flat>,
}

/// A root record whose fields are all `null`, `boolean`, `int`, `long`,
/// `string` or two-branch unions of those (a ClickEvent, and most event
/// schemas), compiled to one step per field. [`Transcoder::transcode`]
/// runs it first: it writes into output space sized once for the whole
/// datum, so no step checks or grows the buffer, and it dispatches once per
/// field on a flat kind, not on the node table and then the primitive.
/// That interpretive work was most of a ClickEvent's cost
/// (BENCHMARKS.md, "The hot path, toward the limit").
///
/// It only takes the common road: a string that needs escaping or UTF-8
/// validation, any malformed input, output beyond the caller's limit or
/// trailing bytes make it give up (`None`), and the general walk of the
/// node table runs on the same datum from the start. That walk writes the
/// same text for everything the straight-line program accepts, and owns
/// every error, so errors and their offsets are unchanged.
#[derive(Debug, Clone)]
struct Flat {
    fields: Box<[FlatField]>,
    /// Output bytes a datum can need beyond its own length: every field's
    /// prefix and widest value (a string's quotes; its content is at most
    /// the datum's length), the closing brace, and a [`WINDOW`] of slack
    /// for the fixed-size copies.
    room: usize,
}

#[derive(Debug, Clone)]
struct FlatField {
    /// As [`Field::prefix`]: padded to at least [`WINDOW`] bytes.
    prefix: Box<[u8]>,
    prefix_len: usize,
    kind: FlatKind,
}

#[derive(Debug, Clone, Copy)]
enum FlatKind {
    One(Prim),
    Union2(Prim, Prim),
}

impl Flat {
    /// The straight-line program for `fields`, if they are all simple.
    fn compile(fields: &[Field]) -> Option<Flat> {
        // Widest JSON text of a value; strings count their quotes only.
        let widest = |p: Prim| match p {
            Prim::Null => Some(4),
            Prim::Boolean => Some(5),
            Prim::Int => Some(11),
            Prim::Long => Some(20),
            Prim::String => Some(2),
            Prim::Float | Prim::Double | Prim::Bytes => None,
        };
        if fields.is_empty() {
            return None;
        }
        let mut room = 1 + WINDOW;
        let mut flat = Vec::with_capacity(fields.len());
        for f in fields {
            let (kind, wide) = match f.slot.shape {
                Shape::Prim(p) => (FlatKind::One(p), widest(p)?),
                Shape::Union2(a, b) => (FlatKind::Union2(a, b), widest(a)?.max(widest(b)?)),
                Shape::Node => return None,
            };
            room += f.prefix_len + wide;
            flat.push(FlatField { prefix: f.prefix.clone(), prefix_len: f.prefix_len, kind });
        }
        Some(Flat { fields: flat.into_boxed_slice(), room })
    }
}

#[derive(Debug, Clone)]
enum Node {
    Prim(Prim),
    Fixed(u32),
    Enum(Box<[Box<[u8]>]>),
    Array(Slot),
    Map(Slot),
    Union(Box<[Slot]>),
    Record(Box<[Field]>),
    /// A named type referenced before its definition was compiled.
    Unresolved,
}

/// The primitive types, decoded inline wherever they appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prim {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    /// `bytes` (and `decimal`/`uuid` stored as bytes).
    Bytes,
    String,
}

/// A reference to a node, with its shape copied in when it is simple:
/// record fields, union branches and items then decode primitives, and
/// two-branch unions of primitives (`["null","string"]`, the nullable
/// field), without a second dispatch on the node table — that dispatch was
/// the largest cost of a ClickEvent before this.
#[derive(Debug, Clone, Copy)]
struct Slot {
    node: u32,
    shape: Shape,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Prim(Prim),
    Union2(Prim, Prim),
    Node,
}

#[derive(Debug, Clone)]
struct Field {
    /// `{"name":` for the first field, `,"name":` for the others, padded
    /// with zeros to at least [`WINDOW`] bytes (see [`put`]).
    prefix: Box<[u8]>,
    prefix_len: usize,
    slot: Slot,
}

/// Bytes copied at once for short pieces of output (see [`put`]).
const WINDOW: usize = 32;

/// A schema the transcoder cannot compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The text is not an Avro schema (the parser's message).
    #[error("invalid Avro schema: {0}")]
    Parse(String),
    /// A named type is used but never defined.
    #[error("schema references unknown named type {0}")]
    UnknownName(String),
    /// The schema has more nodes than the transcoder compiles.
    #[error("schema has more than {0} nodes")]
    TooLarge(usize),
}

/// What went wrong in a datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscodeErrorKind {
    /// The datum ended inside a value.
    Truncated,
    /// A varint ran past 10 bytes or 64 bits.
    VarintOverflow,
    /// An `int` outside the 32-bit range.
    IntOutOfRange,
    /// A negative string, bytes or block byte length.
    NegativeLength,
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// A boolean byte other than 0 or 1.
    InvalidBoolean,
    /// A union branch index outside the union.
    UnionIndexOutOfRange,
    /// An enum symbol index outside the symbols.
    EnumIndexOutOfRange,
    /// Nesting deeper than [`MAX_DEPTH`].
    DepthLimit,
    /// The JSON text would exceed the caller's limit.
    OutputTooLarge,
    /// Bytes left after the datum.
    TrailingBytes,
}

impl TranscodeErrorKind {
    /// Stable snake_case name, used as a rejection detail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::VarintOverflow => "varint_overflow",
            Self::IntOutOfRange => "int_out_of_range",
            Self::NegativeLength => "negative_length",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidBoolean => "invalid_boolean",
            Self::UnionIndexOutOfRange => "union_index_out_of_range",
            Self::EnumIndexOutOfRange => "enum_index_out_of_range",
            Self::DepthLimit => "depth_limit",
            Self::OutputTooLarge => "output_too_large",
            Self::TrailingBytes => "trailing_bytes",
        }
    }
}

/// A datum the transcoder refused, and the datum offset where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct TranscodeError {
    /// What was wrong.
    pub kind: TranscodeErrorKind,
    /// Byte offset in the datum where decoding stopped.
    pub offset: usize,
}

impl fmt::Display for TranscodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at datum byte {}", self.kind.as_str(), self.offset)
    }
}

const MAX_NODES: usize = 1 << 20;

impl Transcoder {
    /// Parses and compiles a writer schema given as JSON text.
    ///
    /// # Errors
    /// [`CompileError`] when the text is not a valid Avro schema.
    pub fn from_schema_json(text: &str) -> Result<Self, CompileError> {
        let schema = Schema::parse_str(text).map_err(|e| CompileError::Parse(e.to_string()))?;
        Self::compile(&schema)
    }

    /// Parses and compiles a writer schema that names types defined in
    /// `references` (Confluent schema references), given in dependency order.
    ///
    /// # Errors
    /// [`CompileError`] when a text is not a valid Avro schema.
    pub fn from_schema_json_with_references(text: &str, references: &[String]) -> Result<Self, CompileError> {
        if references.is_empty() {
            return Self::from_schema_json(text);
        }
        let (schema, known) = Schema::parse_str_with_list(text, references.iter().map(String::as_str))
            .map_err(|e| CompileError::Parse(e.to_string()))?;
        let mut compiler = Compiler::default();
        for dep in &known {
            compiler.node(dep)?;
        }
        compiler.finish(&schema)
    }

    /// Compiles a parsed writer schema.
    ///
    /// # Errors
    /// [`CompileError`] when the schema names a type it never defines.
    pub fn compile(schema: &Schema) -> Result<Self, CompileError> {
        Compiler::default().finish(schema)
    }

    /// Writes the JSON text of `datum` to the end of `out`.
    ///
    /// At most `max_output` bytes are written; beyond that the datum is
    /// refused with [`TranscodeErrorKind::OutputTooLarge`].
    ///
    /// # Errors
    /// [`TranscodeError`] for a datum that does not match the schema; `out`
    /// is then restored to its length before the call.
    pub fn transcode(&self, datum: &[u8], out: &mut Vec<u8>, max_output: usize) -> Result<(), TranscodeError> {
        let start = out.len();
        if let Some(flat) = &self.flat {
            if flat_record(flat, datum, out).is_some_and(|written| written <= max_output) {
                return Ok(());
            }
            // Not the common road: the general walk decides, from the start.
            out.truncate(start);
        }
        // JSON text is rarely more than three times the datum plus the
        // field names; reserving up front keeps growth out of the loop.
        out.reserve(datum.len() * 3 + self.names_len);
        // The run owns the buffer while it works: pushes through a field
        // of `Run` are cheaper than through a `&mut Vec` held in it.
        let mut run = Run {
            program: self,
            input: datum,
            pos: 0,
            out: std::mem::take(out),
            limit: start.saturating_add(max_output),
        };
        let mut result = run.value(self.root, 0);
        if result.is_ok() && run.pos != datum.len() {
            result = Err(TranscodeErrorKind::TrailingBytes);
        }
        if result.is_ok() && run.out.len() > run.limit {
            result = Err(TranscodeErrorKind::OutputTooLarge);
        }
        let pos = run.pos;
        *out = run.out;
        result.map_err(|kind| {
            out.truncate(start);
            TranscodeError { kind, offset: pos }
        })
    }
}

#[derive(Default)]
struct Compiler {
    nodes: Vec<Node>,
    names: HashMap<Name, u32>,
}

impl Compiler {
    fn finish(mut self, schema: &Schema) -> Result<Transcoder, CompileError> {
        let root = self.node(schema)?;
        if let Some(i) = self.nodes.iter().position(|n| matches!(n, Node::Unresolved)) {
            let name = self.names.iter().find(|(_, v)| **v as usize == i).map(|(k, _)| k.to_string());
            return Err(CompileError::UnknownName(name.unwrap_or_default()));
        }
        let min_size = min_sizes(&self.nodes);
        let names_len = self
            .nodes
            .iter()
            .map(|n| match n {
                Node::Record(fields) => fields.iter().map(|f| f.prefix_len).sum(),
                Node::Enum(symbols) => symbols.iter().map(|s| s.len()).max().unwrap_or(0),
                _ => 0,
            })
            .sum::<usize>()
            .min(1 << 16);
        let flat = match &self.nodes[root as usize] {
            Node::Record(fields) => Flat::compile(fields),
            _ => None,
        };
        Ok(Transcoder { nodes: self.nodes, min_size, root, names_len, flat })
    }

    fn push(&mut self, node: Node) -> Result<u32, CompileError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(CompileError::TooLarge(MAX_NODES));
        }
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as u32)
    }

    /// Reserves the node of a named type before compiling its body, so
    /// that recursive references inside the body find it.
    fn named(&mut self, name: &Name) -> Result<u32, CompileError> {
        let id = self.push(Node::Unresolved)?;
        self.names.insert(name.clone(), id);
        Ok(id)
    }

    fn fixed(&mut self, name: &Name, size: usize) -> Result<u32, CompileError> {
        let id = self.named(name)?;
        self.nodes[id as usize] = Node::Fixed(size as u32);
        Ok(id)
    }

    fn slot(&mut self, schema: &Schema) -> Result<Slot, CompileError> {
        let node = self.node(schema)?;
        let shape = match &self.nodes[node as usize] {
            Node::Prim(p) => Shape::Prim(*p),
            Node::Union(b) => match &b[..] {
                [Slot { shape: Shape::Prim(x), .. }, Slot { shape: Shape::Prim(y), .. }] => Shape::Union2(*x, *y),
                _ => Shape::Node,
            },
            _ => Shape::Node,
        };
        Ok(Slot { node, shape })
    }

    fn node(&mut self, schema: &Schema) -> Result<u32, CompileError> {
        let node = match schema {
            Schema::Null => Node::Prim(Prim::Null),
            Schema::Boolean => Node::Prim(Prim::Boolean),
            Schema::Int | Schema::Date | Schema::TimeMillis => Node::Prim(Prim::Int),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Node::Prim(Prim::Long),
            Schema::Float => Node::Prim(Prim::Float),
            Schema::Double => Node::Prim(Prim::Double),
            Schema::Bytes | Schema::BigDecimal | Schema::Uuid(UuidSchema::Bytes) => Node::Prim(Prim::Bytes),
            Schema::String | Schema::Uuid(UuidSchema::String) => Node::Prim(Prim::String),
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Node::Prim(Prim::Bytes),
                InnerDecimalSchema::Fixed(f) => return self.fixed(&f.name, f.size),
            },
            Schema::Uuid(UuidSchema::Fixed(f)) | Schema::Fixed(f) | Schema::Duration(f) => {
                return self.fixed(&f.name, f.size);
            }
            Schema::Array(a) => {
                let id = self.push(Node::Unresolved)?;
                let items = self.slot(&a.items)?;
                self.nodes[id as usize] = Node::Array(items);
                return Ok(id);
            }
            Schema::Map(m) => {
                let id = self.push(Node::Unresolved)?;
                let values = self.slot(&m.types)?;
                self.nodes[id as usize] = Node::Map(values);
                return Ok(id);
            }
            Schema::Union(u) => {
                let id = self.push(Node::Unresolved)?;
                let branches = u.variants().iter().map(|v| self.slot(v)).collect::<Result<Vec<_>, _>>()?;
                self.nodes[id as usize] = Node::Union(branches.into_boxed_slice());
                return Ok(id);
            }
            Schema::Enum(e) => {
                let id = self.named(&e.name)?;
                let symbols = e.symbols.iter().map(|s| json_string(s).into_boxed_slice()).collect();
                self.nodes[id as usize] = Node::Enum(symbols);
                return Ok(id);
            }
            Schema::Record(r) => {
                let id = self.named(&r.name)?;
                let mut fields = Vec::with_capacity(r.fields.len());
                for (i, field) in r.fields.iter().enumerate() {
                    let mut prefix = vec![if i == 0 { b'{' } else { b',' }];
                    prefix.extend_from_slice(&json_string(&field.name));
                    prefix.push(b':');
                    let prefix_len = prefix.len();
                    if prefix_len < WINDOW {
                        prefix.resize(WINDOW, 0);
                    }
                    let slot = self.slot(&field.schema)?;
                    fields.push(Field { prefix: prefix.into_boxed_slice(), prefix_len, slot });
                }
                self.nodes[id as usize] = Node::Record(fields.into_boxed_slice());
                return Ok(id);
            }
            Schema::Ref { name } => {
                return self.names.get(name).copied().ok_or_else(|| CompileError::UnknownName(name.to_string()));
            }
        };
        self.push(node)
    }
}

/// A lower bound of each node's encoded size, by fixpoint iteration from
/// zero (each round stays a lower bound; recursion converges or stops).
fn min_sizes(nodes: &[Node]) -> Vec<u32> {
    let mut size = vec![0u32; nodes.len()];
    for _ in 0..16 {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            let s = match node {
                Node::Prim(Prim::Null) | Node::Unresolved => 0,
                Node::Prim(Prim::Float) => 4,
                Node::Prim(Prim::Double) => 8,
                Node::Prim(_) | Node::Enum(_) | Node::Array(_) | Node::Map(_) => 1,
                Node::Fixed(n) => *n,
                Node::Union(branches) => 1 + branches.iter().map(|b| size[b.node as usize]).min().unwrap_or(0),
                Node::Record(fields) => {
                    fields.iter().fold(0u32, |acc, f| acc.saturating_add(size[f.slot.node as usize]))
                }
            };
            let s = s.min(1 << 24);
            if s != size[i] {
                size[i] = s;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    size
}

/// `s` as a quoted, escaped JSON string.
fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_str(&mut out, s.as_bytes());
    out
}

/// Runs the straight-line program on `datum`, appending its JSON text to
/// `out`; returns the bytes written, or `None` to hand the datum to the
/// general walk (see [`Flat`]), leaving `out` longer than it was.
#[inline]
fn flat_record(flat: &Flat, datum: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let start = out.len();
    out.resize(start + flat.room + datum.len(), 0);
    let buf = &mut out[start..];
    // A reader over the datum; its own output buffer stays empty.
    let mut input = Run { program: &EMPTY, input: datum, pos: 0, out: Vec::new(), limit: 0 };
    let mut at = 0;
    for field in &*flat.fields {
        if field.prefix_len <= WINDOW {
            buf.get_mut(at..at + WINDOW)?.copy_from_slice(field.prefix.get(..WINDOW)?);
        } else {
            buf.get_mut(at..at + field.prefix_len)?.copy_from_slice(&field.prefix);
        }
        at += field.prefix_len;
        let prim = match field.kind {
            FlatKind::One(p) => p,
            FlatKind::Union2(a, b) => match input.long().ok()? {
                0 => a,
                1 => b,
                _ => return None,
            },
        };
        let window = buf.get_mut(at..at + WINDOW)?;
        at += match prim {
            Prim::Null => {
                window[..4].copy_from_slice(b"null");
                4
            }
            Prim::Boolean => match input.byte().ok()? {
                0 => {
                    window[..5].copy_from_slice(b"false");
                    5
                }
                1 => {
                    window[..4].copy_from_slice(b"true");
                    4
                }
                _ => return None,
            },
            Prim::Int => int_window(i64::from(input.int().ok()?), window),
            Prim::Long => int_window(input.long().ok()?, window),
            Prim::String => {
                let len = input.length().ok()?;
                let from = input.pos;
                let s = input.take(len).ok()?;
                match datum.get(from..from + WINDOW).and_then(|w| <&[u8; WINDOW]>::try_from(w).ok()) {
                    // Short: one masked check and one fixed-size copy.
                    Some(w) if len <= WINDOW - 2 => {
                        if !is_plain_ascii_prefix(w, len) {
                            return None;
                        }
                        window[0] = b'"';
                        window[1..].copy_from_slice(&w[..WINDOW - 1]);
                        window[1 + len] = b'"';
                    }
                    _ => {
                        if !is_plain_ascii(s) {
                            return None;
                        }
                        let text = buf.get_mut(at..at + len + 2)?;
                        text[0] = b'"';
                        text[1..=len].copy_from_slice(s);
                        text[len + 1] = b'"';
                    }
                }
                len + 2
            }
            Prim::Float | Prim::Double | Prim::Bytes => return None,
        };
    }
    *buf.get_mut(at)? = b'}';
    at += 1;
    if input.pos != datum.len() {
        return None;
    }
    out.truncate(start + at);
    Some(at)
}

/// The program [`flat_record`]'s reader points at: it reads primitives
/// only and never consults the node table.
static EMPTY: Transcoder = Transcoder { nodes: Vec::new(), min_size: Vec::new(), root: 0, names_len: 0, flat: None };

/// One transcoding pass over one datum.
struct Run<'p, 'i> {
    program: &'p Transcoder,
    input: &'i [u8],
    pos: usize,
    out: Vec<u8>,
    limit: usize,
}

type Step = Result<(), TranscodeErrorKind>;

impl<'i> Run<'_, 'i> {
    /// Decodes the value at `slot`: primitives inline, others through the node table.
    #[inline(always)]
    fn slot(&mut self, slot: Slot, depth: u32) -> Step {
        match slot.shape {
            Shape::Prim(p) => self.prim(p),
            Shape::Union2(a, b) => {
                let at = self.pos;
                match self.long()? {
                    0 => self.prim(a),
                    1 => self.prim(b),
                    _ => {
                        self.pos = at;
                        Err(TranscodeErrorKind::UnionIndexOutOfRange)
                    }
                }
            }
            Shape::Node => self.value(slot.node, depth),
        }
    }

    #[inline(always)]
    fn prim(&mut self, p: Prim) -> Step {
        match p {
            Prim::Null => self.out.extend_from_slice(b"null"),
            Prim::Boolean => {
                let b = self.byte()?;
                match b {
                    0 => self.out.extend_from_slice(b"false"),
                    1 => self.out.extend_from_slice(b"true"),
                    _ => {
                        self.pos -= 1;
                        return Err(TranscodeErrorKind::InvalidBoolean);
                    }
                }
            }
            Prim::Int => {
                let v = self.int()?;
                write_int(&mut self.out, i64::from(v));
            }
            Prim::Long => {
                let v = self.long()?;
                write_int(&mut self.out, v);
            }
            Prim::Float => {
                let raw = self.take(4)?;
                let v = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                if v.is_finite() {
                    self.out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
                } else {
                    self.out.extend_from_slice(b"null");
                }
            }
            Prim::Double => {
                let raw = self.take(8)?;
                let v = f64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]);
                if v.is_finite() {
                    self.out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
                } else {
                    self.out.extend_from_slice(b"null");
                }
            }
            Prim::String => {
                let len = self.length()?;
                let at = self.pos;
                let s = self.take(len)?;
                let window = self.input.get(at..at + WINDOW).and_then(|w| <&[u8; WINDOW]>::try_from(w).ok());
                // Plain ASCII needs neither validation nor escapes: the
                // common case is one check and one copy.
                let plain = match window {
                    Some(w) if len <= WINDOW => is_plain_ascii_prefix(w, len),
                    _ => is_plain_ascii(s),
                };
                if plain {
                    self.out.push(b'"');
                    match window {
                        Some(w) if len <= WINDOW => put(&mut self.out, w, len),
                        _ => self.out.extend_from_slice(s),
                    }
                    self.out.push(b'"');
                } else if is_utf8(s) {
                    write_str(&mut self.out, s);
                } else {
                    self.pos = at;
                    return Err(TranscodeErrorKind::InvalidUtf8);
                }
            }
            Prim::Bytes => {
                let len = self.length()?;
                let b = self.take(len)?;
                write_latin1(&mut self.out, b);
            }
        }
        Ok(())
    }

    /// Decodes a value through the node table. Nesting recurses here, so
    /// the stack is checked every [`STACK_CHECK_EVERY`] levels: with
    /// [`MAX_DEPTH`] levels of a large frame (a debug build's is about
    /// 23 KiB) a 2 MiB thread stack would overflow, and an overflow aborts
    /// the process — one record must not take a run down. `stacker` moves to
    /// a fresh segment when less than [`STACK_RED_ZONE`] remains. Checking
    /// at every level cost 4% of a ClickEvent; shallow data never pays.
    fn value(&mut self, node: u32, depth: u32) -> Step {
        if depth % STACK_CHECK_EVERY == STACK_CHECK_EVERY - 1 {
            stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || self.value_here(node, depth))
        } else {
            self.value_here(node, depth)
        }
    }

    fn value_here(&mut self, node: u32, depth: u32) -> Step {
        let program = self.program;
        match &program.nodes[node as usize] {
            Node::Prim(p) => self.prim(*p)?,
            Node::Fixed(size) => {
                let b = self.take(*size as usize)?;
                write_latin1(&mut self.out, b);
            }
            Node::Enum(symbols) => {
                let at = self.pos;
                let index = self.long()?;
                let symbol = usize::try_from(index).ok().and_then(|i| symbols.get(i)).ok_or_else(|| {
                    self.pos = at;
                    TranscodeErrorKind::EnumIndexOutOfRange
                })?;
                self.out.extend_from_slice(symbol);
            }
            Node::Union(branches) => {
                let at = self.pos;
                let index = self.long()?;
                let branch = usize::try_from(index).ok().and_then(|i| branches.get(i)).ok_or_else(|| {
                    self.pos = at;
                    TranscodeErrorKind::UnionIndexOutOfRange
                })?;
                self.slot(*branch, deeper(depth)?)?;
            }
            Node::Record(fields) => {
                let depth = deeper(depth)?;
                if fields.is_empty() {
                    self.out.extend_from_slice(b"{}");
                }
                for field in fields.iter() {
                    put(&mut self.out, &field.prefix, field.prefix_len);
                    self.slot(field.slot, depth)?;
                }
                if !fields.is_empty() {
                    self.out.push(b'}');
                }
                self.check_limit()?;
            }
            Node::Array(items) => {
                let depth = deeper(depth)?;
                self.out.push(b'[');
                let mut first = true;
                while let Some(count) = self.block(items.node, 0)? {
                    for _ in 0..count {
                        if !first {
                            self.out.push(b',');
                        }
                        first = false;
                        self.slot(*items, depth)?;
                        self.check_limit()?;
                    }
                }
                self.out.push(b']');
            }
            Node::Map(values) => {
                let depth = deeper(depth)?;
                self.out.push(b'{');
                let mut first = true;
                while let Some(count) = self.block(values.node, 1)? {
                    for _ in 0..count {
                        if !first {
                            self.out.push(b',');
                        }
                        first = false;
                        let len = self.length()?;
                        let at = self.pos;
                        let key = self.take(len)?;
                        if !is_utf8(key) {
                            self.pos = at;
                            return Err(TranscodeErrorKind::InvalidUtf8);
                        }
                        write_str(&mut self.out, key);
                        self.out.push(b':');
                        self.slot(*values, depth)?;
                        self.check_limit()?;
                    }
                }
                self.out.push(b'}');
            }
            // `finish` refuses programs with unresolved nodes.
            Node::Unresolved => return Err(TranscodeErrorKind::Truncated),
        }
        Ok(())
    }

    #[inline]
    fn check_limit(&self) -> Step {
        if self.out.len() > self.limit { Err(TranscodeErrorKind::OutputTooLarge) } else { Ok(()) }
    }

    /// Reads one block header of an array or map; `None` at the end marker.
    /// `entry_overhead` is 1 for maps, whose entries start with a key length.
    fn block(&mut self, item: u32, entry_overhead: u64) -> Result<Option<u64>, TranscodeErrorKind> {
        let at = self.pos;
        let count = self.long()?;
        let count = match count {
            0 => return Ok(None),
            1.. => count as u64,
            // A negative count is followed by the block's size in bytes.
            _ => {
                let count = count.unsigned_abs();
                let size_at = self.pos;
                let size = self.long()?;
                if size < 0 {
                    self.pos = size_at;
                    return Err(TranscodeErrorKind::NegativeLength);
                }
                if size as u64 > self.remaining() as u64 {
                    self.pos = size_at;
                    return Err(TranscodeErrorKind::Truncated);
                }
                count
            }
        };
        let min = u64::from(self.program.min_size[item as usize]) + entry_overhead;
        if count.saturating_mul(min) > self.remaining() as u64 {
            self.pos = at;
            return Err(TranscodeErrorKind::Truncated);
        }
        Ok(Some(count))
    }

    #[inline(always)]
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, TranscodeErrorKind> {
        let b = *self.input.get(self.pos).ok_or(TranscodeErrorKind::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline(always)]
    fn take(&mut self, len: usize) -> Result<&'i [u8], TranscodeErrorKind> {
        if len > self.remaining() {
            return Err(TranscodeErrorKind::Truncated);
        }
        let input: &'i [u8] = self.input;
        let s = &input[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    /// A string, bytes or map-key length: a non-negative long that fits in
    /// the rest of the datum (checked by `take`).
    #[inline(always)]
    fn length(&mut self) -> Result<usize, TranscodeErrorKind> {
        let at = self.pos;
        let len = self.long()?;
        if len < 0 {
            self.pos = at;
            return Err(TranscodeErrorKind::NegativeLength);
        }
        if len as u64 > self.remaining() as u64 {
            return Err(TranscodeErrorKind::Truncated);
        }
        Ok(len as usize)
    }

    #[inline(always)]
    fn long(&mut self) -> Result<i64, TranscodeErrorKind> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    #[inline]
    fn int(&mut self) -> Result<i32, TranscodeErrorKind> {
        let at = self.pos;
        let v = self.long()?;
        i32::try_from(v).map_err(|_| {
            self.pos = at;
            TranscodeErrorKind::IntOutOfRange
        })
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, TranscodeErrorKind> {
        let b = self.byte()?;
        if b < 0x80 {
            return Ok(u64::from(b));
        }
        self.varint_slow(b)
    }

    #[inline(never)]
    fn varint_slow(&mut self, first: u8) -> Result<u64, TranscodeErrorKind> {
        let start = self.pos - 1;
        // With ten bytes in reach, decode without a bounds check per byte.
        if let Some(chunk) = self.input.get(start..start + 10) {
            let mut value = 0u64;
            for (i, &b) in chunk.iter().enumerate() {
                // The tenth byte may only carry the 64th bit.
                if i == 9 && b > 1 {
                    break;
                }
                value |= u64::from(b & 0x7f) << (7 * i);
                if b < 0x80 {
                    self.pos = start + i + 1;
                    return Ok(value);
                }
            }
            self.pos = start;
            return Err(TranscodeErrorKind::VarintOverflow);
        }
        let mut value = u64::from(first & 0x7f);
        let mut shift = 7;
        loop {
            let b = self.byte()?;
            // The tenth byte may only carry the 64th bit.
            if shift == 63 && b > 1 {
                self.pos = start;
                return Err(TranscodeErrorKind::VarintOverflow);
            }
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
            shift += 7;
        }
    }
}

#[inline]
fn deeper(depth: u32) -> Result<u32, TranscodeErrorKind> {
    if depth >= MAX_DEPTH { Err(TranscodeErrorKind::DepthLimit) } else { Ok(depth + 1) }
}

/// UTF-8 validation with an ASCII fast path (most strings are ASCII, where
/// `is_ascii` checks a word at a time and simdutf8's setup would dominate).
#[inline]
fn is_utf8(s: &[u8]) -> bool {
    s.is_ascii() || simdutf8::basic::from_utf8(s).is_ok()
}

/// Escape action per ASCII byte: 0 copy, b'u' as `\u00XX`, else `\` + it.
static ESCAPE: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn write_escape(out: &mut Vec<u8>, byte: u8, action: u8) {
    if action == b'u' {
        out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(byte >> 4) as usize], HEX[(byte & 0xf) as usize]]);
    } else {
        out.extend_from_slice(&[b'\\', action]);
    }
}

/// Appends the first `len` bytes of `padded`. A short piece (`padded` is
/// exactly [`WINDOW`] bytes) is copied as one fixed-size block, which
/// compiles to two vector moves, and the excess cut off again; a `memcpy`
/// call per field name and short string cost more than the rest of the
/// work on a ClickEvent.
#[inline(always)]
fn put(out: &mut Vec<u8>, padded: &[u8], len: usize) {
    match <&[u8; WINDOW]>::try_from(padded) {
        Ok(window) if len <= WINDOW => {
            let at = out.len();
            out.extend_from_slice(window);
            out.truncate(at + len);
        }
        _ => out.extend_from_slice(&padded[..len]),
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bits marking the bytes of `x` that need care in a JSON string:
/// non-ASCII, control characters, `"` and `\\` (SWAR, eight bytes at a
/// time). A marked byte may be a false positive only *above* (later than) a
/// truly special byte, so "no mark among the first n bytes" is exact.
#[inline(always)]
fn special_bytes(x: u64) -> u64 {
    let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    (x & HIGH)
        | (x.wrapping_sub(0x20 * ONES) & !x & HIGH)
        | zero(x ^ (u64::from(b'"') * ONES))
        | zero(x ^ (u64::from(b'\\') * ONES))
}

/// True when every byte is printable ASCII other than `"` and `\\`: such a
/// string is valid UTF-8 and needs no JSON escape.
#[inline(always)]
fn is_plain_ascii(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if special_bytes(u64::from_le_bytes(word)) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
}

/// [`is_plain_ascii`] for the first `len` (at most [`WINDOW`]) bytes of a
/// window of input: whole words are read past the string's end and the
/// excess masked off, so short strings cost a few instructions instead of
/// a loop over their bytes (the loop was the largest cost of a ClickEvent).
#[inline(always)]
fn is_plain_ascii_prefix(window: &[u8; WINDOW], len: usize) -> bool {
    let mut marks = 0;
    for (k, chunk) in window.chunks_exact(8).enumerate() {
        let valid = len.saturating_sub(8 * k);
        if valid == 0 {
            break;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mask = if valid >= 8 { u64::MAX } else { (1u64 << (8 * valid)) - 1 };
        marks |= special_bytes(u64::from_le_bytes(word)) & mask;
    }
    marks == 0
}

/// Writes UTF-8 `s` as a JSON string, copying runs that need no escape.
fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in s.iter().enumerate() {
        let action = if b < 0x80 { ESCAPE[b as usize] } else { 0 };
        if action != 0 {
            out.extend_from_slice(&s[run..i]);
            write_escape(out, b, action);
            run = i + 1;
        }
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
}

/// Two ASCII digits for each of 0..100.
static DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Writes `v` in decimal. The digits are built right to left in a stack
/// buffer followed by a [`WINDOW`] of slack, so that they are appended with
/// one fixed-size copy ([`put`]) rather than a `memcpy` call; with itoa and
/// `extend_from_slice` the copy alone cost a tenth of a ClickEvent's time.
#[inline]
fn write_int(out: &mut Vec<u8>, v: i64) {
    const END: usize = 21; // 20 digits of u64::MAX and a sign
    let mut buf = [0u8; END + WINDOW];
    let mut n = v.unsigned_abs();
    let mut i = END;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    put(out, &buf[i..i + WINDOW], END - i);
}

/// Writes `v` in decimal at the start of `window`, returning its length;
/// bytes after the digits are overwritten with junk (the caller's next
/// write or truncation covers them).
#[inline]
fn int_window(v: i64, window: &mut [u8]) -> usize {
    const END: usize = 21; // 20 digits of u64::MAX and a sign
    let mut buf = [0u8; END + WINDOW];
    let mut n = v.unsigned_abs();
    let mut i = END;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    window[..WINDOW].copy_from_slice(&buf[i..i + WINDOW]);
    END - i
}

/// Writes bytes as a JSON string of code points U+0000–U+00FF.
fn write_latin1(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2 + 2);
    out.push(b'"');
    for &b in bytes {
        if b >= 0x80 {
            out.extend_from_slice(&[0xc0 | (b >> 6), 0x80 | (b & 0x3f)]);
        } else {
            match ESCAPE[b as usize] {
                0 => out.push(b),
                action => write_escape(out, b, action),
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;

    fn compile(schema: &str) -> Transcoder {
        Transcoder::from_schema_json(schema).unwrap()
    }

    fn run(t: &Transcoder, datum: &[u8]) -> Result<String, TranscodeError> {
        let mut out = Vec::new();
        t.transcode(datum, &mut out, usize::MAX)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn encode(schema: &str, value: Value) -> Vec<u8> {
        let schema = Schema::parse_str(schema).unwrap();
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap()
    }

    const CLICK: &str = include_str!("../tests/data/clickevent.avsc");

    #[test]
    fn clickevent_matches_the_lab_lambda_text() {
        let datum = encode(
            CLICK,
            Value::Record(vec![
                ("ip".into(), Value::String("66.249.1.7".into())),
                ("eventtimestamp".into(), Value::Long(1_545_084_650_987)),
                ("devicetype".into(), Value::String("mobile".into())),
                ("event_type".into(), Value::Union(0, Box::new(Value::String("home_page".into())))),
                ("product_type".into(), Value::Union(1, Box::new(Value::Null))),
                ("userid".into(), Value::Int(1001)),
                ("globalseq".into(), Value::Long(1)),
                ("prevglobalseq".into(), Value::Long(0)),
            ]),
        );
        assert_eq!(
            run(&compile(CLICK), &datum).unwrap(),
            r#"{"ip":"66.249.1.7","eventtimestamp":1545084650987,"devicetype":"mobile","event_type":"home_page","product_type":null,"userid":1001,"globalseq":1,"prevglobalseq":0}"#
        );
    }

    #[test]
    fn primitives_and_escapes() {
        let schema = r#"{"type":"record","name":"P","fields":[
            {"name":"n","type":"null"},{"name":"b","type":"boolean"},
            {"name":"f","type":"float"},{"name":"d","type":"double"},
            {"name":"s","type":"string"},{"name":"y","type":"bytes"}]}"#;
        let datum = encode(
            schema,
            Value::Record(vec![
                ("n".into(), Value::Null),
                ("b".into(), Value::Boolean(true)),
                ("f".into(), Value::Float(0.1)),
                ("d".into(), Value::Double(f64::NAN)),
                ("s".into(), Value::String("q\"\\\n\u{1}é😀".into())),
                ("y".into(), Value::Bytes(vec![0, b'"', 0x7f, 0x80, 0xff])),
            ]),
        );
        assert_eq!(
            run(&compile(schema), &datum).unwrap(),
            "{\"n\":null,\"b\":true,\"f\":0.1,\"d\":null,\"s\":\"q\\\"\\\\\\n\\u0001é😀\",\"y\":\"\\u0000\\\"\u{7f}\u{80}\u{ff}\"}"
        );
    }

    #[test]
    fn enums_fixed_maps_arrays_and_logical_types() {
        let schema = r#"{"type":"record","name":"C","fields":[
            {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
            {"name":"x","type":{"type":"fixed","name":"F","size":2}},
            {"name":"m","type":{"type":"map","values":"int"}},
            {"name":"a","type":{"type":"array","items":"E"}},
            {"name":"date","type":{"type":"int","logicalType":"date"}},
            {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}},
            {"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#;
        let datum = encode(
            schema,
            Value::Record(vec![
                ("e".into(), Value::Enum(1, "B".into())),
                ("x".into(), Value::Fixed(2, vec![1, 2])),
                ("m".into(), Value::Map([("k".to_string(), Value::Int(-3))].into_iter().collect())),
                ("a".into(), Value::Array(vec![Value::Enum(0, "A".into()), Value::Enum(1, "B".into())])),
                ("date".into(), Value::Date(19_000)),
                ("ts".into(), Value::TimestampMillis(1_700_000_000_000)),
                ("dec".into(), Value::Decimal(apache_avro::Decimal::from(vec![0x04, 0xd2]))),
                ("u".into(), Value::Uuid(uuid::Uuid::nil())),
            ]),
        );
        assert_eq!(
            run(&compile(schema), &datum).unwrap(),
            r#"{"e":"B","x":"\u0001\u0002","m":{"k":-3},"a":["A","B"],"date":19000,"ts":1700000000000,"dec":"\u0004Ò","u":"00000000-0000-0000-0000-000000000000"}"#
        );
    }

    #[test]
    fn recursive_records_compile_and_nest() {
        let schema = r#"{"type":"record","name":"List","fields":[
            {"name":"v","type":"int"},{"name":"next","type":["null","List"]}]}"#;
        // v=1, next=branch 1 → v=2, next=branch 0 (null)
        let datum = [2, 2, 4, 0];
        assert_eq!(run(&compile(schema), &datum).unwrap(), r#"{"v":1,"next":{"v":2,"next":null}}"#);
    }

    #[test]
    fn negative_block_counts_carry_byte_sizes() {
        let t = compile(r#"{"type":"array","items":"long"}"#);
        // count -2 (zigzag 3), size 2, items 1 and -1, end
        assert_eq!(run(&t, &[3, 4, 2, 1, 0]).unwrap(), "[1,-1]");
        // block byte size larger than the rest of the datum
        let err = run(&t, &[3, 40, 2, 1, 0]).unwrap_err();
        assert_eq!(err.kind, TranscodeErrorKind::Truncated);
    }

    #[test]
    fn empty_records_arrays_and_maps() {
        assert_eq!(run(&compile(r#"{"type":"record","name":"E","fields":[]}"#), &[]).unwrap(), "{}");
        assert_eq!(run(&compile(r#"{"type":"array","items":"int"}"#), &[0]).unwrap(), "[]");
        assert_eq!(run(&compile(r#"{"type":"map","values":"int"}"#), &[0]).unwrap(), "{}");
    }

    #[test]
    fn field_names_needing_no_escape_are_written_as_is() {
        let t = compile(r#"{"type":"record","name":"R","fields":[{"name":"_a1","type":"boolean"}]}"#);
        assert_eq!(run(&t, &[0]).unwrap(), r#"{"_a1":false}"#);
    }

    fn err(schema: &str, datum: &[u8]) -> TranscodeError {
        run(&compile(schema), datum).unwrap_err()
    }

    #[test]
    fn truncated_datum() {
        let e = err(CLICK, &[20, b'6', b'6']);
        assert_eq!(e.kind, TranscodeErrorKind::Truncated);
        assert_eq!(err("\"double\"", &[0; 7]).kind, TranscodeErrorKind::Truncated);
        assert_eq!(err("\"long\"", &[0x80]).kind, TranscodeErrorKind::Truncated);
    }

    #[test]
    fn varint_overflow() {
        let e = err("\"long\"", &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert_eq!(e, TranscodeError { kind: TranscodeErrorKind::VarintOverflow, offset: 0 });
        let e = err("\"long\"", &[0xff; 11]);
        assert_eq!(e.kind, TranscodeErrorKind::VarintOverflow);
        // the largest 10-byte varint is fine
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(run(&compile("\"long\""), &max).unwrap(), i64::MAX.to_string());
    }

    #[test]
    fn int_out_of_range() {
        // zigzag(2^31) = 2^32 → varint 80 80 80 80 10
        let e = err("\"int\"", &[0x80, 0x80, 0x80, 0x80, 0x10]);
        assert_eq!(e, TranscodeError { kind: TranscodeErrorKind::IntOutOfRange, offset: 0 });
    }

    #[test]
    fn negative_length() {
        let e = err("\"string\"", &[1]);
        assert_eq!(e.kind, TranscodeErrorKind::NegativeLength);
        assert_eq!(err("\"bytes\"", &[3]).kind, TranscodeErrorKind::NegativeLength);
    }

    #[test]
    fn too_large_lengths_fail_before_work() {
        // a string length of i64::MAX/2 with two bytes of data
        let e = err("\"string\"", &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, b'a']);
        assert_eq!(e.kind, TranscodeErrorKind::Truncated);
        // an array claiming 2^62 longs
        let e = err(r#"{"type":"array","items":"long"}"#, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0]);
        assert_eq!(e, TranscodeError { kind: TranscodeErrorKind::Truncated, offset: 0 });
    }

    #[test]
    fn zero_sized_items_are_bounded_by_the_output_limit() {
        let t = compile(r#"{"type":"array","items":"null"}"#);
        let datum = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0];
        let mut out = Vec::new();
        let e = t.transcode(&datum, &mut out, 1 << 16).unwrap_err();
        assert_eq!(e.kind, TranscodeErrorKind::OutputTooLarge);
        assert!(out.is_empty());
    }

    #[test]
    fn union_index_out_of_range() {
        let e = err(r#"["null","string"]"#, &[4]);
        assert_eq!(e, TranscodeError { kind: TranscodeErrorKind::UnionIndexOutOfRange, offset: 0 });
        assert_eq!(err(r#"["null","string"]"#, &[1]).kind, TranscodeErrorKind::UnionIndexOutOfRange);
    }

    #[test]
    fn enum_index_out_of_range() {
        let e = err(r#"{"type":"enum","name":"E","symbols":["A"]}"#, &[2]);
        assert_eq!(e.kind, TranscodeErrorKind::EnumIndexOutOfRange);
    }

    #[test]
    fn invalid_utf8() {
        let e = err("\"string\"", &[4, 0xc3, 0x28]);
        assert_eq!(e, TranscodeError { kind: TranscodeErrorKind::InvalidUtf8, offset: 1 });
        let e = err(r#"{"type":"map","values":"null"}"#, &[2, 2, 0xff, 0]);
        assert_eq!(e.kind, TranscodeErrorKind::InvalidUtf8);
    }

    #[test]
    fn invalid_boolean() {
        assert_eq!(err("\"boolean\"", &[2]), TranscodeError { kind: TranscodeErrorKind::InvalidBoolean, offset: 0 });
    }

    #[test]
    fn recursion_deeper_than_the_limit() {
        let schema = r#"{"type":"record","name":"L","fields":[{"name":"n","type":["null","L"]}]}"#;
        let mut datum = vec![2u8; MAX_DEPTH as usize];
        datum.push(0);
        assert_eq!(err(schema, &datum).kind, TranscodeErrorKind::DepthLimit);
        let mut shallow = vec![2u8; 10];
        shallow.push(0);
        assert!(run(&compile(schema), &shallow).is_ok());
    }

    #[test]
    fn plain_ascii_means_no_escape_and_no_validation() {
        for b in 0u8..=255 {
            for at in [0, 3, 8, 13] {
                let mut s = b"abcdefghijklmnop".to_vec();
                s[at] = b;
                let plain = (0x20..0x80).contains(&b) && b != b'"' && b != b'\\';
                assert_eq!(is_plain_ascii(&s), plain, "byte {b:#x} at {at}");
                let mut window = [0u8; WINDOW];
                window[..s.len()].copy_from_slice(&s);
                for len in 0..=s.len() {
                    let expected = is_plain_ascii(&s[..len]);
                    assert_eq!(is_plain_ascii_prefix(&window, len), expected, "byte {b:#x} at {at}, len {len}");
                    // bytes past the string never matter
                    let mut dirty = window;
                    dirty[len..].fill(b);
                    assert_eq!(is_plain_ascii_prefix(&dirty, len), expected, "dirty tail {b:#x}, len {len}");
                }
            }
        }
        assert!(is_plain_ascii(b""));
    }

    #[test]
    fn integers_print_like_std() {
        for v in [0, 9, 10, 99, 100, 101, -1, -10, 1_545_084_650_987, i64::MAX, i64::MIN, i64::from(i32::MIN)] {
            let mut out = b"x".to_vec();
            write_int(&mut out, v);
            assert_eq!(std::str::from_utf8(&out[1..]).unwrap(), v.to_string());
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow_a_small_stack() {
        let schema = r#"{"type":"record","name":"L","fields":[{"name":"n","type":["null","L"]}]}"#;
        let t = compile(schema);
        let mut datum = vec![2u8; MAX_DEPTH as usize / 2 - 1];
        datum.push(0);
        // A debug build's frame is over 20 KiB: 126 levels (a record and a
        // union per byte) need about 3 MiB, three times this thread's stack.
        let handle = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || run(&t, &datum).map(|s| s.len()))
            .unwrap();
        assert!(handle.join().expect("no stack overflow").is_ok());
    }

    /// The same schema without its straight-line program: the general walk.
    fn general(t: &Transcoder) -> Transcoder {
        Transcoder { flat: None, ..t.clone() }
    }

    #[test]
    fn straight_line_records_write_what_the_general_walk_writes() {
        let long_name = "a_field_name_longer_than_the_copy_window";
        let schema = format!(
            r#"{{"type":"record","name":"S","fields":[
            {{"name":"s","type":"string"}},{{"name":"{long_name}","type":["null","string"]}},
            {{"name":"i","type":"int"}},{{"name":"l","type":"long"}},{{"name":"b","type":"boolean"}},
            {{"name":"n","type":"null"}},{{"name":"u","type":["long","null"]}}]}}"#
        );
        let t = compile(&schema);
        assert!(t.flat.is_some(), "a record of simple fields gets a straight-line program");
        let g = general(&t);
        let zigzag = |v: i64, out: &mut Vec<u8>| {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            while z >= 0x80 {
                out.push((z as u8) | 0x80);
                z >>= 7;
            }
            out.push(z as u8);
        };
        let strings: Vec<Vec<u8>> = [0usize, 1, 29, 30, 31, 32, 33, 64, 200]
            .iter()
            .map(|&n| (0..n).map(|i| b'a' + (i % 26) as u8).collect())
            .chain([b"q\"uote".to_vec(), b"back\\slash".to_vec(), "é".as_bytes().to_vec(), vec![b'x', 0x01]])
            .chain([vec![0xff, 0xfe]])
            .collect();
        for (k, s1) in strings.iter().enumerate() {
            let s2 = &strings[(k * 7 + 3) % strings.len()];
            for (branch, int, long, boolean, last) in [
                (0, 0, 0, 0, 0),
                (1, -1, i64::MIN, 1, 1),
                (1, i64::from(i32::MAX), i64::MAX, 2, 4),
                (2, 1 << 40, 7, 0, 0),
            ] {
                let mut datum = Vec::new();
                zigzag(s1.len() as i64, &mut datum);
                datum.extend_from_slice(s1);
                zigzag(branch, &mut datum);
                if branch == 1 {
                    zigzag(s2.len() as i64, &mut datum);
                    datum.extend_from_slice(s2);
                }
                zigzag(int, &mut datum);
                zigzag(long, &mut datum);
                datum.push(boolean);
                zigzag(last, &mut datum);
                if last == 0 {
                    zigzag(-5, &mut datum);
                }
                for cut in [datum.len(), datum.len() - 1, datum.len() / 2] {
                    let d = &datum[..cut];
                    let (mut a, mut b) = (b"prior".to_vec(), b"prior".to_vec());
                    let ra = t.transcode(d, &mut a, usize::MAX);
                    let rb = g.transcode(d, &mut b, usize::MAX);
                    assert_eq!(ra, rb, "{d:?}");
                    assert_eq!(a, b, "{d:?}");
                    // With trailing bytes, and at an exact output limit.
                    let mut longer = d.to_vec();
                    longer.push(0);
                    assert_eq!(run(&t, &longer), run(&g, &longer));
                    if let Ok(text) = run(&g, d) {
                        for limit in [text.len(), text.len() - 1] {
                            let (mut a, mut b) = (Vec::new(), Vec::new());
                            assert_eq!(t.transcode(d, &mut a, limit), g.transcode(d, &mut b, limit));
                            assert_eq!(a, b);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_records_of_simple_fields_get_a_straight_line_program() {
        assert!(compile(CLICK).flat.is_some());
        assert!(compile(r#"{"type":"record","name":"E","fields":[]}"#).flat.is_none());
        assert!(compile(r#"{"type":"record","name":"F","fields":[{"name":"f","type":"float"}]}"#).flat.is_none());
        assert!(compile(r#"{"type":"record","name":"B","fields":[{"name":"b","type":"bytes"}]}"#).flat.is_none());
        let nested = r#"{"type":"record","name":"N","fields":[{"name":"a","type":{"type":"array","items":"int"}}]}"#;
        assert!(compile(nested).flat.is_none());
        assert!(compile("\"string\"").flat.is_none());
    }

    #[test]
    fn trailing_bytes() {
        assert_eq!(err("\"int\"", &[2, 0]), TranscodeError { kind: TranscodeErrorKind::TrailingBytes, offset: 1 });
    }

    #[test]
    fn failed_transcode_restores_the_output() {
        let mut out = b"prior\n".to_vec();
        let t = compile(CLICK);
        assert!(t.transcode(&[20, b'6'], &mut out, usize::MAX).is_err());
        assert_eq!(out, b"prior\n");
    }

    #[test]
    fn output_limit_is_exact() {
        let t = compile("\"string\"");
        let mut out = Vec::new();
        t.transcode(&[6, b'a', b'b', b'c'], &mut out, 5).unwrap();
        assert_eq!(out, b"\"abc\"");
        out.clear();
        assert_eq!(
            t.transcode(&[6, b'a', b'b', b'c'], &mut out, 4).unwrap_err().kind,
            TranscodeErrorKind::OutputTooLarge
        );
    }

    #[test]
    fn undefined_names_are_compile_errors() {
        let e = Transcoder::from_schema_json(r#"{"type":"record","name":"R","fields":[{"name":"x","type":"Nope"}]}"#);
        assert!(e.is_err());
    }

    #[test]
    fn schema_references_resolve() {
        let dep = r#"{"type":"record","name":"Inner","namespace":"n","fields":[{"name":"a","type":"int"}]}"#;
        let top = r#"{"type":"record","name":"Outer","namespace":"n","fields":[{"name":"i","type":"Inner"}]}"#;
        let t = Transcoder::from_schema_json_with_references(top, &[dep.to_string()]).unwrap();
        assert_eq!(run(&t, &[4]).unwrap(), r#"{"i":{"a":2}}"#);
    }
}
