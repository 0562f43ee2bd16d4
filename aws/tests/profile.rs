//! The AWS default chain reading a profile, as a user's machine has it: a
//! temporary `HOME` with `~/.aws/config` and `~/.aws/credentials`,
//! `AWS_PROFILE`, and no key variables.
//!
//! The chain reads the process environment (aws-config offers no way to
//! hand it another), and changing this process's environment under the
//! test harness's threads is unsound; so each case runs this test binary
//! again as a child with the environment it needs, and the child prints
//! what the chain resolved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use aws_credential_types::provider::ProvideCredentials;
use mskbench_aws::Chain;

const CHILD: &str = "MSKBENCH_CHAIN_CHILD";

/// In the child: the chain from the environment, printed. In the parent: nothing.
fn child_prints_the_chain() -> bool {
    if std::env::var_os(CHILD).is_none() {
        return false;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match runtime.block_on(Chain::from_env()) {
        Ok(chain) => {
            let c = runtime.block_on(chain.credentials.provide_credentials()).unwrap();
            println!(
                "\nCHAIN {} {} {} [{}]",
                chain.region,
                c.access_key_id(),
                c.session_token().unwrap_or("-"),
                chain.source
            );
        }
        Err(e) => println!("\nCHAIN ERROR {e}"),
    }
    true
}

/// Runs `test` of this binary as a child with `HOME` = `home`, `AWS_PROFILE`
/// = `profile` and none of the other chain's variables; its `CHAIN` line.
fn in_child(test: &str, home: &Path, profile: &str) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .env("HOME", home)
        .env("AWS_PROFILE", profile)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The harness's `test … ` may share the line: the answer starts at `CHAIN `.
    let at = stdout.find("CHAIN ").unwrap_or_else(|| panic!("no CHAIN line in {stdout}"));
    stdout[at..].lines().next().unwrap_or_default().to_owned()
}

fn home(config: &str, credentials: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(home.path().join(".aws/config"), config).unwrap();
    std::fs::write(home.path().join(".aws/credentials"), credentials).unwrap();
    home
}

#[test]
fn a_named_profile_gives_region_and_keys_without_key_variables() {
    if child_prints_the_chain() {
        return;
    }
    let home = home(
        "[default]\nregion = us-west-2\n\n[profile lab]\nregion = eu-west-1\n",
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n\
         [lab]\naws_access_key_id = AKIDLAB\naws_secret_access_key = s\naws_session_token = TOKEN\n",
    );
    let line = in_child("a_named_profile_gives_region_and_keys_without_key_variables", home.path(), "lab");
    assert_eq!(line, "CHAIN eu-west-1 AKIDLAB TOKEN [default chain, profile lab]");
}

#[test]
fn a_profile_with_a_credential_process_runs_it() {
    if child_prints_the_chain() {
        return;
    }
    let json = r#"{"Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "s"}"#;
    let home = home(&format!("[profile tool]\nregion = ap-south-1\ncredential_process = echo '{json}'\n"), "");
    let line = in_child("a_profile_with_a_credential_process_runs_it", home.path(), "tool");
    assert_eq!(line, "CHAIN ap-south-1 AKIDPROCESS - [default chain, profile tool]");
}

#[test]
fn a_profile_without_credentials_is_an_error_at_start_naming_the_chain() {
    if child_prints_the_chain() {
        return;
    }
    let home = home("[profile empty]\nregion = eu-west-1\n", "");
    let line = in_child("a_profile_without_credentials_is_an_error_at_start_naming_the_chain", home.path(), "empty");
    assert!(line.starts_with("CHAIN ERROR no AWS credentials from the default chain"), "{line}");
    assert!(line.contains("profile empty"), "{line}");
}
