//! Flag values several subcommands take alike.

/// A `KEY=VALUE` flag (`-E`, `-X`, `--set`, `--tag`): split at the first
/// `=`, the key not empty, the value as given (it may hold `=` itself).
pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_value_splits_at_the_first_equals_sign_and_needs_a_key() {
        assert_eq!(key_value("sasl.jaas=a=b"), Ok(("sasl.jaas".to_owned(), "a=b".to_owned())));
        assert_eq!(key_value("k="), Ok(("k".to_owned(), String::new())));
        assert!(key_value("=v").is_err() && key_value("novalue").is_err());
    }
}
