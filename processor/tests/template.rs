//! The SAM template's `Timeout` against its own parameters: the function
//! it deploys must start (the processor refuses settings whose worst case
//! outlasts `FUNCTION_TIMEOUT`) with the template's defaults, whichever
//! retry policy is chosen, and must be told the timeout Lambda enforces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use mskbench_processor::Config;

const TEMPLATE: &str = include_str!("../deploy/template.yaml");

/// The lines of the block under `key` (a line `indent` + `key:`), up to
/// the next line indented as much or less.
fn block<'a>(text: &'a str, indent: usize, key: &str) -> Vec<&'a str> {
    let head = format!("{}{key}:", " ".repeat(indent));
    let mut lines = text.lines().skip_while(|l| l.trim_end() != head && !l.starts_with(&format!("{head} ")));
    let first = lines.next().unwrap_or_else(|| panic!("no {key:?} in the template"));
    let deeper = |l: &&str| l.trim().is_empty() || l.len() - l.trim_start().len() > indent;
    std::iter::once(first).chain(lines.take_while(deeper)).collect()
}

/// `name: value` of the first line in `lines` with that name.
fn field<'a>(lines: &[&'a str], name: &str) -> &'a str {
    let prefix = format!("{name}:");
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .map(|v| v.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

fn parameter_default<'a>(parameters: &[&'a str], name: &str) -> &'a str {
    let start = parameters.iter().position(|l| l.trim_end() == format!("  {name}:")).unwrap();
    let rest: Vec<&str> = parameters[start + 1..].iter().copied().take_while(|l| l.starts_with("    ")).collect();
    field(&rest, "Default")
}

#[test]
fn the_templates_timeout_fits_the_worst_case_of_its_own_defaults() {
    let parameters = block(TEMPLATE, 0, "Parameters");
    let function = block(TEMPLATE, 2, "ProcessMSKfunction");
    assert_eq!(field(&function, "Timeout"), "!Ref FunctionTimeout");
    let function_text = function.join("\n");
    let variables = block(&function_text, 8, "Variables");
    assert_eq!(field(&variables, "FUNCTION_TIMEOUT"), "!Ref FunctionTimeout", "the processor knows Lambda's limit");
    assert_eq!(field(&variables, "RETRIES"), "!Ref LambdaRetries");
    assert_eq!(field(&variables, "RETRY_POLICY"), "!Ref RetryPolicy");

    let timeout = parameter_default(&parameters, "FunctionTimeout");
    let retries = parameter_default(&parameters, "LambdaRetries");
    let policies = {
        let start = parameters.iter().position(|l| l.trim_end() == "  RetryPolicy:").unwrap();
        let rest: Vec<&str> = parameters[start + 1..].iter().copied().take_while(|l| l.starts_with("    ")).collect();
        let allowed = field(&rest, "AllowedValues");
        allowed.trim_matches(['[', ']']).split(',').map(|p| p.trim().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(policies, ["backoff", "lab"]);
    for policy in &policies {
        // What the template sets, with the values Lambda adds (region, credentials).
        let vars: HashMap<&str, &str> = [
            ("DELIVERY_STREAM_NAME", "MSKToS3"),
            ("RETRIES", retries),
            ("RETRY_POLICY", policy.as_str()),
            ("FUNCTION_TIMEOUT", timeout),
            ("DEAD_LETTER", "s3://lab-bucket/dead-letters/"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ]
        .into();
        // `from_lookup` refuses settings whose worst case does not fit in
        // FUNCTION_TIMEOUT (`resends_that_cannot_fit_in_the_function_timeout_are_refused_at_start`
        // shows that it does): the template's defaults start, or this fails.
        let lambda = mskbench_processor::config::Chain::fixed("us-east-1", "id", "secret");
        let config = Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned()), lambda);
        let config =
            config.unwrap_or_else(|e| panic!("RETRY_POLICY={policy}: the deployed function would not start: {e}"));
        assert_eq!(config.function_timeout.as_secs().to_string(), timeout);
    }
}
