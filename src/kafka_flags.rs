//! The Kafka security flags `produce` and `process` share, read once into
//! a checked [`Security`] beside the remaining `-X` settings.
//!
//! Two ways to say the same thing, as the ecosystem says it: librdkafka
//! properties (`-X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512`)
//! and the short form `--msk-auth none|tls|scram|iam` with the credentials
//! beside it. A password is never a flag's value (it would show in `ps`
//! and shell history): it comes from an environment variable or a file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mskbench_kafka::{MskAuth, Secret, Security};

/// `--msk-auth` and the flags beside it.
#[derive(Debug, Clone, Args)]
pub(crate) struct KafkaFlags {
    /// MSK's listeners by name: none (9092), tls (9094; mTLS with --kafka-cert/--kafka-key),
    /// scram (SASL/SCRAM-SHA-512 over TLS, 9096) or iam (AWS_MSK_IAM over TLS, 9098).
    #[arg(long, value_name = "MODE", value_parser = parse_msk_auth)]
    pub(crate) msk_auth: Option<MskAuth>,
    /// The SASL user name (SCRAM, PLAIN).
    #[arg(long, value_name = "NAME")]
    pub(crate) kafka_user: Option<String>,
    /// The environment variable holding the SASL password.
    #[arg(long, value_name = "VAR", conflicts_with = "kafka_password_file")]
    pub(crate) kafka_password_env: Option<String>,
    /// A file holding the SASL password.
    #[arg(long, value_name = "PATH")]
    pub(crate) kafka_password_file: Option<PathBuf>,
    /// The CA bundle that signs the brokers' certificates (default: the system's).
    #[arg(long, value_name = "PATH")]
    pub(crate) kafka_ca: Option<PathBuf>,
    /// The client certificate, for mTLS.
    #[arg(long, value_name = "PATH")]
    pub(crate) kafka_cert: Option<PathBuf>,
    /// The client certificate's key, for mTLS.
    #[arg(long, value_name = "PATH")]
    pub(crate) kafka_key: Option<PathBuf>,
}

fn parse_msk_auth(text: &str) -> Result<MskAuth, String> {
    MskAuth::parse(text).map_err(|e| e.to_string())
}

impl KafkaFlags {
    /// The security settings these flags and the security keys among
    /// `properties` (`-X`) say, taken out of `properties`; the password is
    /// read here, once.
    pub(crate) fn security(&self, properties: &mut Vec<(String, String)>) -> Result<Security> {
        let mut security = Security::take_from_properties(properties)?;
        if let Some(auth) = self.msk_auth {
            security = security.with_msk_auth(auth)?;
        }
        let set = |slot: &mut Option<PathBuf>, flag: &Option<PathBuf>| {
            if flag.is_some() {
                slot.clone_from(flag);
            }
        };
        set(&mut security.ca, &self.kafka_ca);
        set(&mut security.cert, &self.kafka_cert);
        set(&mut security.key, &self.kafka_key);
        if security.cert.is_some() && security.protocol == mskbench_kafka::Protocol::Plaintext {
            // A client certificate alone means mTLS.
            security.protocol = mskbench_kafka::Protocol::Ssl;
        }
        if let Some(user) = &self.kafka_user {
            security.username = Some(user.clone());
        }
        if let Some(name) = &self.kafka_password_env {
            security.password = Some(Secret::from_env(name, |n| std::env::var(n).ok())?);
        }
        if let Some(path) = &self.kafka_password_file {
            security.password = Some(Secret::from_file(path)?);
        }
        security.check().context("Kafka security settings")?;
        Ok(security)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaFlags,
    }

    fn flags(args: &[&str]) -> KafkaFlags {
        Cli::parse_from(std::iter::once("t").chain(args.iter().copied())).kafka
    }

    #[test]
    fn the_short_form_and_the_properties_say_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "pa55\n").unwrap();
        let pw = pw.to_str().unwrap();
        let short =
            flags(&["--msk-auth", "scram", "--kafka-user", "alice", "--kafka-password-file", pw]).security(&mut vec![]);
        let mut props = vec![
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
            ("sasl.mechanism".to_owned(), "SCRAM-SHA-512".to_owned()),
            ("sasl.username".to_owned(), "alice".to_owned()),
            ("acks".to_owned(), "1".to_owned()),
        ];
        let long = flags(&["--kafka-password-file", pw]).security(&mut props);
        assert_eq!(short.unwrap(), long.unwrap());
        assert_eq!(props, vec![("acks".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn a_bad_mode_or_a_missing_password_says_which() {
        let e = Cli::try_parse_from(["t", "--msk-auth", "kerberos"]).err().unwrap().to_string();
        assert!(e.contains("none, tls, scram or iam"), "{e}");
        let e = flags(&["--msk-auth", "scram", "--kafka-user", "a"]).security(&mut vec![]).unwrap_err();
        assert!(format!("{e:#}").contains("needs a password"), "{e:#}");
    }
}
