//! Kafka record headers read as bytes, whatever a producer put in them.
//!
//! rdkafka's `Headers::get` and `Headers::iter` turn every header name into
//! a `&str` with `CStr::to_str(..).unwrap()` (rdkafka 0.39,
//! `BorrowedHeaders::try_get`): a name that is not UTF-8 — Kafka's record
//! format allows any bytes there, and a producer's client may write them —
//! panics the poller that meets it, on every restart. This module reads
//! names and values through librdkafka's own `rd_kafka_header_get_all`
//! instead, as bytes, and is the one place of the crate with `unsafe`.
//!
//! librdkafka keeps a name NUL-terminated and exposes no length, so a name
//! holding a NUL byte reads as its part before the NUL: a limit of
//! librdkafka's API, for every client built on it. Cost: one FFI call per
//! header, no allocation.

use std::ffi::CStr;

use rdkafka::bindings::{rd_kafka_header_get_all, rd_kafka_headers_t};
use rdkafka::message::{BorrowedHeaders, Headers, OwnedHeaders};
use rdkafka::types::RDKafkaRespErr;

/// rdkafka's header lists, as the librdkafka list they stand for:
/// [`BorrowedHeaders`] (a consumed message's) and [`OwnedHeaders`].
pub trait RawHeaders: Headers {
    /// The list as rdkafka's borrowed view of it.
    fn borrowed(&self) -> &BorrowedHeaders;
}

impl RawHeaders for BorrowedHeaders {
    fn borrowed(&self) -> &BorrowedHeaders {
        self
    }
}

impl RawHeaders for OwnedHeaders {
    fn borrowed(&self) -> &BorrowedHeaders {
        self.as_borrowed()
    }
}

/// One header: its name's bytes and its value's (`None` for a null value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawHeader<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
}

/// Every header of `headers`, in order.
pub(crate) fn raw_headers(headers: &BorrowedHeaders) -> impl Iterator<Item = RawHeader<'_>> {
    // rdkafka's `BorrowedHeaders` is a zero-sized view whose address is the
    // librdkafka list's (its private `as_native_ptr` is this same cast).
    let native = std::ptr::from_ref(headers).cast::<rd_kafka_headers_t>();
    (0..headers.count()).filter_map(move |idx| {
        let mut name = std::ptr::null();
        let mut value = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `native` is the live librdkafka header list `headers`
        // stands for, borrowed for as long as the iterator; `idx` is below
        // its count; the out-pointers point at these locals.
        let err = unsafe { rd_kafka_header_get_all(native, idx, &mut name, &mut value, &mut size) };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            // Only an index past the end fails, which the range rules out.
            return None;
        }
        // SAFETY: on success `name` points at the header's NUL-terminated
        // name, owned by the list and alive as long as it is borrowed.
        let key = unsafe { CStr::from_ptr(name) }.to_bytes();
        let value = (!value.is_null()).then(|| {
            // SAFETY: a non-null `value` points at the header's `size`
            // value bytes, owned by the list like its name.
            unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }
        });
        Some(RawHeader { key, value })
    })
}

/// `headers` plus a header named by any bytes, with a value or a null one:
/// what a hostile or foreign producer can send, which rdkafka's
/// `OwnedHeaders::insert` (taking `&str`) cannot make. The tests' producers
/// use it; it lives here so that the crate's `unsafe` stays in one module.
///
/// # Errors
/// librdkafka's error code, should it refuse (only a read-only list, which
/// an [`OwnedHeaders`] is not).
pub fn with_raw_header(
    headers: OwnedHeaders,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<OwnedHeaders, RDKafkaRespErr> {
    let native = std::ptr::from_ref(headers.as_borrowed()).cast::<rd_kafka_headers_t>().cast_mut();
    let (value_ptr, value_len) = match value {
        Some(v) => (v.as_ptr().cast::<std::ffi::c_void>(), v.len() as isize),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `native` is the list `headers` owns (writable: rdkafka's own
    // `insert` writes through the same pointer); librdkafka copies `key`
    // (`key.len()` bytes) and the value before returning.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_header_add(native, key.as_ptr().cast(), key.len() as isize, value_ptr, value_len)
    };
    if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR { Ok(headers) } else { Err(err) }
}
