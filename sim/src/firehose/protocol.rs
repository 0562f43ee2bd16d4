//! The AWS JSON 1.1 wire shapes of the Firehose operations served here.
//!
//! Requests are `POST /` with `X-Amz-Target: Firehose_20150804.<Operation>`
//! and a JSON body; responses are JSON with `Content-Type:
//! application/x-amz-json-1.1`. Errors carry the status AWS uses and a body
//! `{"__type": "<Code>", "message": "…"}`, which is what the SDKs' error
//! parsers read. Only the members the stand-in acts on are declared;
//! others (role ARNs, processing configuration, tags, …) are accepted and
//! ignored, as a real endpoint ignores what it does not need to answer.
//!
//! Record data is borrowed from the request body (`Cow` only allocates if
//! the client escaped a character inside the base64 text).

use std::borrow::Cow;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// The `X-Amz-Target` prefix of every Firehose operation.
pub(crate) const TARGET_PREFIX: &str = "Firehose_20150804.";
/// The content type of AWS JSON 1.1 bodies.
pub(crate) const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The error codes this endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    InvalidArgument,
    ResourceNotFound,
    ResourceInUse,
    Serialization,
    ServiceUnavailable,
    InternalFailure,
    UnknownOperation,
}

impl ErrorCode {
    /// The `__type` (and `ErrorCode` in per-record responses).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "InvalidArgumentException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::Serialization => "SerializationException",
            ErrorCode::ServiceUnavailable => "ServiceUnavailableException",
            ErrorCode::InternalFailure => "InternalFailure",
            ErrorCode::UnknownOperation => "UnknownOperationException",
        }
    }

    /// The HTTP status AWS returns with this error.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A whole-call error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub(crate) struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }

    /// The JSON body AWS sends with an error.
    pub(crate) fn body(&self) -> serde_json::Value {
        serde_json::json!({ "__type": self.code.as_str(), "message": self.message })
    }
}

/// The message Firehose sends with every throttle.
pub(crate) const SLOW_DOWN: &str = "Slow down.";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordInput<'a> {
    #[serde(borrow)]
    pub delivery_stream_name: Cow<'a, str>,
    #[serde(borrow)]
    pub record: RecordInput<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordBatchInput<'a> {
    #[serde(borrow)]
    pub delivery_stream_name: Cow<'a, str>,
    #[serde(borrow)]
    pub records: Vec<RecordInput<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RecordInput<'a> {
    /// Base64 of the record's bytes.
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordOutput {
    pub record_id: String,
    pub encrypted: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordBatchOutput {
    pub failed_put_count: u64,
    pub encrypted: bool,
    pub request_responses: Vec<RecordResult>,
}

/// One entry of `RequestResponses`: a record id, or an error code and message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RecordResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateInput {
    pub delivery_stream_name: String,
    #[serde(default)]
    pub delivery_stream_type: Option<String>,
    #[serde(default)]
    pub extended_s3_destination_configuration: Option<S3DestinationInput>,
    #[serde(default)]
    pub s3_destination_configuration: Option<S3DestinationInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct S3DestinationInput {
    #[serde(default, rename = "BucketARN")]
    pub bucket_arn: Option<String>,
    #[serde(default, rename = "RoleARN")]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub buffering_hints: Option<BufferingHintsInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BufferingHintsInput {
    #[serde(default, rename = "SizeInMBs")]
    pub size_in_mbs: Option<u64>,
    #[serde(default)]
    pub interval_in_seconds: Option<u64>,
}

/// Input of DescribeDeliveryStream and DeleteDeliveryStream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamNameInput {
    pub delivery_stream_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListInput {
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub delivery_stream_type: Option<String>,
    #[serde(default)]
    pub exclusive_start_delivery_stream_name: Option<String>,
}
