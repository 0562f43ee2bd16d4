//! The `[kafka]` table's security keys: refused where they cannot apply,
//! resolved into one checked `Security` with the password read once.

use std::path::Path;

use mskbench_scenarios::{Mechanism, Protocol, Scenario};

const HEAD: &str = "name = \"k\"\nseed = 1\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nrate = 10\n";

fn parse(kafka: &str) -> Result<Scenario, String> {
    Scenario::parse(&format!("{HEAD}[kafka]\n{kafka}"), "k.toml").map_err(|e| e.to_string())
}

#[test]
fn security_keys_need_a_broker_list() {
    let e = parse("sasl_mechanism = \"SCRAM-SHA-512\"\nusername = \"a\"\npassword_env = \"P\"\n").unwrap_err();
    assert!(e.contains("the embedded broker speaks PLAINTEXT"), "{e}");
}

#[test]
fn security_settings_in_properties_are_refused_with_the_key_to_use() {
    let e = parse("brokers = \"b:9096\"\n[kafka.properties]\n\"sasl.password\" = \"x\"\n").unwrap_err();
    assert!(e.contains("kafka.properties.\"sasl.password\"") && e.contains("password_env"), "{e}");
}

#[test]
fn a_misspelt_mechanism_is_refused_at_load() {
    let e = parse("brokers = \"b:9096\"\nsasl_mechanism = \"SCRAM-SHA-1\"\n").unwrap_err();
    assert!(e.contains("SCRAM-SHA-512"), "{e}");
}

#[test]
fn the_password_comes_from_its_variable_and_paths_from_the_scenario_folder() {
    let s = parse(
        "brokers = \"b:9096\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nusername = \"alice\"\npassword_env = \"PW\"\n",
    )
    .unwrap();
    let security = s.kafka.security(Path::new("/x/k.toml"), |n| (n == "PW").then(|| "pa55".to_owned())).unwrap();
    assert_eq!((security.protocol, security.mechanism), (Protocol::SaslSsl, Some(Mechanism::ScramSha512)));
    assert_eq!(security.password.as_ref().map(|p| p.expose()), Some("pa55"));
    let e = s.kafka.security(Path::new("/x/k.toml"), |_| None).unwrap_err();
    assert!(e.to_string().contains("PW is not set"), "{e}");
    // The scenario, written back (result.json), names the variable only.
    let text = serde_json::to_string(&s).unwrap();
    assert!(text.contains(r#""password_env":"PW""#) && !text.contains("pa55"), "{text}");

    let s = parse("brokers = \"b:9094\"\nca = \"certs/ca.pem\"\n").unwrap();
    let e = s.kafka.security(Path::new("/x/k.toml"), |_| None).unwrap_err();
    assert!(e.to_string().starts_with("CA /x/certs/ca.pem: "), "{e}");
}
