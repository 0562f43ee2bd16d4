//! One line for an error and its causes, for logs and error messages.
//!
//! Clients (the AWS SDK, reqwest, object_store, rdkafka) keep the reason of
//! a failure in the `source` chain, and their `Display` alone often says
//! only "dispatch failure". Every crate that reports such an error uses
//! this one function.

/// `error` and its sources, joined with `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause() {
        let error = Outer(std::io::Error::other("refused"));
        assert_eq!(error_chain(&error), "outer: refused");
    }
}
