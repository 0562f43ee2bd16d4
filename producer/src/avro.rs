//! The two Avro binary primitives the hand-written ClickEvent and key
//! encoders need: zig-zag varint longs and length-prefixed strings.
//!
//! Boundary: only what the hot path writes by hand; everything schema-driven
//! goes through apache-avro. Cost: a few nanoseconds per field, appending to
//! a caller-owned buffer.

/// Appends `v` as an Avro `long` (zig-zag, then base-128 varint).
#[inline]
pub(crate) fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends `s` as an Avro `string` or `bytes`: its length, then the bytes.
#[inline]
pub(crate) fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_long(out, s.len() as i64);
    out.extend_from_slice(s);
}

#[cfg(test)]
pub(crate) mod tests_support {
    use apache_avro::Schema;
    use apache_avro::types::Value;
    use apache_avro::writer::datum::GenericDatumWriter;

    /// apache-avro's encoding of `value`: the reference the hand-written encoders match.
    pub(crate) fn datum(schema: &Schema, value: Value) -> apache_avro::AvroResult<Vec<u8>> {
        let writer = GenericDatumWriter::builder(schema).build()?;
        let mut out = Vec::new();
        writer.write_value_ref(&mut out, &value)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use apache_avro::types::Value;

    use super::*;

    #[test]
    fn longs_and_strings_match_apache_avro() {
        for v in [0i64, 1, -1, 63, 64, -65, 300, i64::MAX, i64::MIN, 1_764_240_000_123] {
            let mut ours = Vec::new();
            put_long(&mut ours, v);
            assert_eq!(ours, crate::avro::tests_support::datum(&Schema::Long, Value::Long(v)).unwrap(), "{v}");
        }
        let mut ours = Vec::new();
        put_str(&mut ours, b"1000");
        assert_eq!(ours, crate::avro::tests_support::datum(&Schema::String, Value::String("1000".into())).unwrap());
    }
}
