//! `bootstrap`: the processor as an AWS Lambda function (`provided.al2023`).
//!
//! Reads the lab's environment variables once per execution environment
//! (a bad value stops the start with a message naming the variable, which
//! Lambda reports as an init error), then serves invocations through
//! `lambda_runtime`. Each invocation returns only after every Firehose call
//! has finished, and in time for its deadline (the runtime API's
//! `Lambda-Runtime-Deadline-Ms`: no resend starts that could outlast it);
//! an error return makes the event source mapping redeliver the batch.
//!
//! The payload is taken as raw JSON text (`Box<RawValue>`) and read by
//! core's borrowing parser rather than deserialised into
//! `aws_lambda_events::event::kafka::KafkaEvent`: that type copies every
//! base64 string, loses the order of the `records` map (a `HashMap`) and
//! reads header bytes as `i8`, refusing values above 127; the shapes are
//! the same, which the processor's tests check against that type.
//!
//! Logs go to stdout (CloudWatch) as text lines with `RUST_LOG`-style
//! filtering (`info` by default); they never contain payloads or secrets.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use mskbench_processor::Handler;
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mskbench_processor::logging::init();
    let handler = match Handler::from_env().await {
        Ok(h) => Arc::new(h),
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let handler = Arc::clone(&handler);
        async move {
            let (payload, context) = event.into_parts();
            let bytes = Box::<str>::from(payload).into_boxed_bytes().into_vec();
            let deadline = mskbench_processor::handler::deadline_from_epoch_ms(context.deadline);
            handler.handle_by(bytes, &context.request_id, deadline).await.map_err(|e| Diagnostic {
                error_type: e.kind().to_owned(),
                error_message: mskbench_processor::handler::error_chain(&e),
            })
        }
    }))
    .await
}
