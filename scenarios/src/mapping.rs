//! `[mapping]`: the event source mapping's failure handling, with AWS's
//! setting names in snake case (Lambda developer guide, "Configuring error
//! handling controls for Kafka event sources"; the `CreateEventSourceMapping`
//! API's names in the comments). `[processor]` keeps the batching keys
//! (`batch_size` is BatchSize, `batch_window` MaximumBatchingWindowInSeconds).
//!
//! Checked here alone: the ranges AWS accepts. Every key has AWS's default,
//! so a scenario without `[mapping]` runs as before.

use serde::{Deserialize, Serialize};

/// The `FunctionResponseTypes` value that turns on partial batch responses.
pub const REPORT_BATCH_ITEM_FAILURES: &str = "ReportBatchItemFailures";

/// The mapping's failure handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// `FunctionResponseTypes`: `[]` or `["ReportBatchItemFailures"]`. With
    /// it, the function (the processor, told so by `REPORT_BATCH_ITEM_FAILURES`)
    /// returns the records it could not decode or deliver, and the mapping
    /// retries each partition from its first failed offset.
    #[serde(default, deserialize_with = "response_types")]
    pub function_response_types: Vec<String>,
    /// `BisectBatchOnFunctionError`: split a failed batch in two and retry each half.
    #[serde(default)]
    pub bisect_batch_on_function_error: bool,
    /// `MaximumRetryAttempts`: retries after the first invocation, -1
    /// (infinite, the default) or 0..=10000. Infinite with an on-failure
    /// destination means 10, as on AWS.
    #[serde(default = "infinite")]
    pub maximum_retry_attempts: i64,
    /// `MaximumRecordAgeInSeconds`: -1 (the default) or 60..=604800.
    #[serde(default = "infinite")]
    pub maximum_record_age_in_seconds: i64,
    /// `DestinationConfig.OnFailure`: `"run"` for the run folder's
    /// `on-failure/` (counted by the accounting as a known outcome), or
    /// `"s3://bucket/prefix/"`. Absent: discarded records are lost, as on AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    /// The function's reserved concurrency (`ReservedConcurrentExecutions`):
    /// most invocations in flight over all pollers. Absent: one per poller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
}

fn infinite() -> i64 {
    -1
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            function_response_types: Vec::new(),
            bisect_batch_on_function_error: false,
            maximum_retry_attempts: -1,
            maximum_record_age_in_seconds: -1,
            on_failure: None,
            reserved_concurrency: None,
        }
    }
}

fn response_types<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let types = Vec::<String>::deserialize(d)?;
    if let Some(t) = types.iter().find(|t| t.as_str() != REPORT_BATCH_ITEM_FAILURES) {
        return Err(serde::de::Error::custom(format!(
            "{t:?} is not a FunctionResponseTypes value; the only one is \"{REPORT_BATCH_ITEM_FAILURES}\""
        )));
    }
    Ok(types)
}

impl Mapping {
    /// `FunctionResponseTypes` holds `ReportBatchItemFailures`.
    pub fn report_batch_item_failures(&self) -> bool {
        self.function_response_types.iter().any(|t| t == REPORT_BATCH_ITEM_FAILURES)
    }

    /// `MaximumRetryAttempts` as a count (`None`: infinite).
    pub fn retry_attempts(&self) -> Option<u32> {
        u32::try_from(self.maximum_retry_attempts).ok()
    }

    /// `MaximumRecordAgeInSeconds` as a count (`None`: infinite).
    pub fn record_age_seconds(&self) -> Option<u64> {
        u64::try_from(self.maximum_record_age_in_seconds).ok()
    }

    /// The ranges AWS accepts.
    ///
    /// # Errors
    /// The key at fault and its range.
    pub fn check(&self) -> Result<(), String> {
        let r = self.maximum_retry_attempts;
        if r != -1 && !(0..=10_000).contains(&r) {
            return Err(format!("mapping.maximum_retry_attempts: {r} is outside -1 or 0..=10000"));
        }
        let a = self.maximum_record_age_in_seconds;
        if a != -1 && !(60..=604_800).contains(&a) {
            return Err(format!("mapping.maximum_record_age_in_seconds: {a} is outside -1 or 60..=604800"));
        }
        if self.reserved_concurrency == Some(0) {
            return Err("mapping.reserved_concurrency: 0 would never invoke the function".into());
        }
        if let Some(d) = &self.on_failure
            && d != "run"
            && !d.starts_with("s3://")
        {
            return Err(format!("mapping.on_failure: {d:?} is neither \"run\" nor s3://bucket/prefix/"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_mapping_table_has_awss_defaults() {
        let m = Mapping::default();
        assert!(!m.report_batch_item_failures());
        assert_eq!((m.retry_attempts(), m.record_age_seconds(), m.on_failure.as_deref()), (None, None, None));
        assert!(m.check().is_ok());
    }

    #[test]
    fn mapping_keys_outside_awss_ranges_are_refused_with_their_name() {
        for (m, key) in [
            (Mapping { maximum_retry_attempts: -2, ..Mapping::default() }, "maximum_retry_attempts"),
            (Mapping { maximum_retry_attempts: 10_001, ..Mapping::default() }, "maximum_retry_attempts"),
            (Mapping { maximum_record_age_in_seconds: 59, ..Mapping::default() }, "maximum_record_age_in_seconds"),
            (Mapping { on_failure: Some("sqs://q".into()), ..Mapping::default() }, "on_failure"),
            (Mapping { reserved_concurrency: Some(0), ..Mapping::default() }, "reserved_concurrency"),
        ] {
            assert!(m.check().unwrap_err().contains(key), "{key}");
        }
    }

    #[test]
    fn function_response_types_take_only_report_batch_item_failures() {
        let ok: Mapping = toml::from_str(r#"function_response_types = ["ReportBatchItemFailures"]"#).unwrap();
        assert!(ok.report_batch_item_failures());
        let bad = toml::from_str::<Mapping>(r#"function_response_types = ["Partial"]"#).unwrap_err();
        assert!(bad.to_string().contains("ReportBatchItemFailures"), "{bad}");
    }
}
