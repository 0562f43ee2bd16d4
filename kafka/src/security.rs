//! How a client authenticates and encrypts, parsed once into a [`Security`].
//!
//! Users say it in the ecosystem's words: librdkafka properties
//! (`-X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512`), the
//! short form `--msk-auth tls|scram|iam|none` (MSK's three listeners: TLS
//! on 9094, SASL/SCRAM on 9096, IAM on 9098), or a scenario's `[kafka]`
//! table. All three end here, are checked here (files that exist, a
//! mechanism with its credentials), and are applied to librdkafka here, so
//! every client of the suite connects the same way.
//!
//! `AWS_MSK_IAM` is not a librdkafka mechanism: it becomes `OAUTHBEARER`
//! with the token signed by [`crate::iam`] and handed over through the
//! client context. Secrets are held in [`Secret`], whose `Debug` and
//! `Display` never show them; [`Security::describe`] is what logs and
//! reports may say.

use std::fmt;
use std::path::{Path, PathBuf};

#[cfg(feature = "client")]
use rdkafka::ClientConfig;

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// No TLS, no SASL (MSK's 9092, or a local broker).
    #[default]
    Plaintext,
    /// TLS, optionally with a client certificate (MSK's 9094).
    Ssl,
    /// SASL without TLS (local brokers only; MSK never offers it).
    SaslPlaintext,
    /// SASL over TLS (MSK's 9096 for SCRAM, 9098 for IAM).
    SaslSsl,
}

impl Protocol {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Reads librdkafka's spelling, in any case.
    pub fn parse(text: &str) -> Result<Protocol, SecurityError> {
        match text.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Protocol::Plaintext),
            "SSL" => Ok(Protocol::Ssl),
            "SASL_PLAINTEXT" => Ok(Protocol::SaslPlaintext),
            "SASL_SSL" => Ok(Protocol::SaslSsl),
            _ => Err(SecurityError::Value {
                key: "security.protocol",
                value: text.to_owned(),
                expected: "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            }),
        }
    }

    /// Whether the connection is TLS.
    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    /// Whether the client authenticates with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// The SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `PLAIN`: user name and password in the clear (inside TLS, one hopes).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`: MSK's SCRAM mechanism.
    ScramSha512,
    /// `AWS_MSK_IAM`: a SigV4-presigned `kafka-cluster:Connect` URL as an
    /// OAUTHBEARER token, as AWS's signer libraries make it.
    AwsMskIam,
}

impl Mechanism {
    /// The name users write (`AWS_MSK_IAM` for IAM).
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::AwsMskIam => "AWS_MSK_IAM",
        }
    }

    /// What librdkafka is told (`OAUTHBEARER` for IAM).
    pub fn librdkafka(self) -> &'static str {
        match self {
            Mechanism::AwsMskIam => "OAUTHBEARER",
            other => other.as_str(),
        }
    }

    /// Reads a mechanism name, in any case.
    pub fn parse(text: &str) -> Result<Mechanism, SecurityError> {
        match text.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Mechanism::Plain),
            "SCRAM-SHA-256" => Ok(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(Mechanism::ScramSha512),
            "AWS_MSK_IAM" => Ok(Mechanism::AwsMskIam),
            "OAUTHBEARER" => Err(SecurityError::Unsupported(
                "sasl.mechanism OAUTHBEARER: the only OAUTHBEARER tokens built in are MSK IAM's; \
                 say sasl.mechanism=AWS_MSK_IAM (or --msk-auth iam)"
                    .to_owned(),
            )),
            "GSSAPI" => Err(SecurityError::Unsupported(
                "sasl.mechanism GSSAPI (Kerberos): librdkafka is built without Cyrus SASL here".to_owned(),
            )),
            _ => Err(SecurityError::Value {
                key: "sasl.mechanism",
                value: text.to_owned(),
                expected: "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM",
            }),
        }
    }

    fn is_scram(self) -> bool {
        matches!(self, Mechanism::ScramSha256 | Mechanism::ScramSha512)
    }
}

/// `--msk-auth`: MSK's listeners by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MskAuth {
    /// Plaintext (9092).
    None,
    /// TLS (9094); with a client certificate and key, mTLS.
    Tls,
    /// SASL/SCRAM-SHA-512 over TLS (9096).
    Scram,
    /// IAM over TLS (9098).
    Iam,
}

impl MskAuth {
    /// Reads `none`, `tls`, `scram` or `iam`.
    pub fn parse(text: &str) -> Result<MskAuth, SecurityError> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Ok(MskAuth::None),
            "tls" | "mtls" => Ok(MskAuth::Tls),
            "scram" => Ok(MskAuth::Scram),
            "iam" => Ok(MskAuth::Iam),
            _ => Err(SecurityError::Value {
                key: "--msk-auth",
                value: text.to_owned(),
                expected: "none, tls, scram or iam",
            }),
        }
    }

    fn protocol(self) -> (Protocol, Option<Mechanism>) {
        match self {
            MskAuth::None => (Protocol::Plaintext, None),
            MskAuth::Tls => (Protocol::Ssl, None),
            MskAuth::Scram => (Protocol::SaslSsl, Some(Mechanism::ScramSha512)),
            MskAuth::Iam => (Protocol::SaslSsl, Some(Mechanism::AwsMskIam)),
        }
    }
}

// Scenario files spell both as librdkafka does: `security = "SASL_SSL"`,
// `sasl_mechanism = "SCRAM-SHA-512"`.
macro_rules! text_serde {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$type>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_serde!(Protocol);
text_serde!(Mechanism);

/// A password or key passphrase. Never printed: `Debug` and `Display` say
/// `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for librdkafka only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from environment variable `name` (through `lookup`,
    /// so tests need not touch the process environment).
    pub fn from_env(name: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Secret, SecurityError> {
        match lookup(name) {
            Some(value) if !value.is_empty() => Ok(Secret(value)),
            _ => Err(SecurityError::MissingSecret(format!("environment variable {name} is not set"))),
        }
    }

    /// Reads a secret from a file (one trailing newline dropped).
    pub fn from_file(path: &Path) -> Result<Secret, SecurityError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SecurityError::MissingSecret(format!("cannot read {}: {e}", path.display())))?;
        let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        if value.is_empty() {
            return Err(SecurityError::MissingSecret(format!("{} is empty", path.display())));
        }
        Ok(Secret(value.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why security settings were refused. Each names the setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecurityError {
    /// A value outside the setting's set.
    #[error("{key} = {value:?}: expected {expected}")]
    Value { key: &'static str, value: String, expected: &'static str },
    /// Settings that contradict each other.
    #[error("{0}")]
    Conflict(String),
    /// A mechanism that needs credentials got none.
    #[error("{0}")]
    Missing(String),
    /// A password or passphrase could not be read.
    #[error("Kafka secret: {0}")]
    MissingSecret(String),
    /// A CA, certificate or key file that cannot be read.
    #[error("{key} {path}: {detail}")]
    File { key: &'static str, path: String, detail: String },
    /// Something this build cannot do.
    #[error("{0}")]
    Unsupported(String),
}

/// A client's TLS and SASL settings, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `security.protocol`.
    pub protocol: Protocol,
    /// `sasl.mechanism`, when the protocol is SASL.
    pub mechanism: Option<Mechanism>,
    /// `sasl.username` (PLAIN and SCRAM).
    pub username: Option<String>,
    /// `sasl.password` (PLAIN and SCRAM).
    pub password: Option<Secret>,
    /// `ssl.ca.location`: the CA bundle that signs the brokers' certificates
    /// (unset: the system's trust store).
    pub ca: Option<PathBuf>,
    /// `ssl.certificate.location`: the client certificate, for mTLS.
    pub cert: Option<PathBuf>,
    /// `ssl.key.location`: the client certificate's key, for mTLS.
    pub key: Option<PathBuf>,
    /// `ssl.key.password`.
    pub key_password: Option<Secret>,
    /// The AWS region IAM tokens are signed for (unset: taken from an MSK
    /// broker host name, else from the AWS region chain).
    pub region: Option<String>,
}

impl Security {
    /// Takes the security settings out of librdkafka properties (`-X`),
    /// leaving every other property in place, and checks them.
    pub fn take_from_properties(properties: &mut Vec<(String, String)>) -> Result<Security, SecurityError> {
        let mut security = Security::default();
        let mut protocol_said = false;
        let mut rest = Vec::with_capacity(properties.len());
        for (key, value) in properties.drain(..) {
            match key.as_str() {
                "security.protocol" => {
                    security.protocol = Protocol::parse(&value)?;
                    protocol_said = true;
                }
                "sasl.mechanism" | "sasl.mechanisms" => security.mechanism = Some(Mechanism::parse(&value)?),
                "sasl.username" => security.username = Some(value),
                "sasl.password" => security.password = Some(Secret(value)),
                "ssl.ca.location" => security.ca = Some(value.into()),
                "ssl.certificate.location" => security.cert = Some(value.into()),
                "ssl.key.location" => security.key = Some(value.into()),
                "ssl.key.password" => security.key_password = Some(Secret(value)),
                _ => rest.push((key, value)),
            }
        }
        *properties = rest;
        // A mechanism alone implies SASL over TLS, as MSK serves it.
        if !protocol_said && security.mechanism.is_some() {
            security.protocol = Protocol::SaslSsl;
        }
        Ok(security)
    }

    /// Applies `--msk-auth`: its protocol and mechanism, unless the
    /// properties already said something else (then it is a conflict).
    pub fn with_msk_auth(mut self, auth: MskAuth) -> Result<Security, SecurityError> {
        let (protocol, mechanism) = auth.protocol();
        let said_protocol = self.protocol != Protocol::Plaintext;
        if said_protocol && self.protocol != protocol {
            return Err(SecurityError::Conflict(format!(
                "--msk-auth {} means security.protocol={}, but security.protocol={} was given",
                auth_name(auth),
                protocol.as_str(),
                self.protocol.as_str()
            )));
        }
        if let (Some(said), Some(wanted)) = (self.mechanism, mechanism)
            && said != wanted
        {
            return Err(SecurityError::Conflict(format!(
                "--msk-auth {} means sasl.mechanism={}, but sasl.mechanism={} was given",
                auth_name(auth),
                wanted.as_str(),
                said.as_str()
            )));
        }
        self.protocol = protocol;
        if mechanism.is_some() {
            self.mechanism = mechanism;
        }
        Ok(self)
    }

    /// Checks that the settings fit together and that the files exist.
    pub fn check(&self) -> Result<(), SecurityError> {
        match (self.protocol.sasl(), self.mechanism) {
            (true, None) => {
                return Err(SecurityError::Missing(format!(
                    "security.protocol={} needs sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM)",
                    self.protocol.as_str()
                )));
            }
            (false, Some(m)) => {
                return Err(SecurityError::Conflict(format!(
                    "sasl.mechanism={} needs security.protocol=SASL_SSL (or SASL_PLAINTEXT), not {}",
                    m.as_str(),
                    self.protocol.as_str()
                )));
            }
            _ => {}
        }
        if let Some(m) = self.mechanism {
            let needs_password = m == Mechanism::Plain || m.is_scram();
            if needs_password && self.username.is_none() {
                return Err(SecurityError::Missing(format!("sasl.mechanism={} needs a user name", m.as_str())));
            }
            if needs_password && self.password.is_none() {
                return Err(SecurityError::Missing(format!(
                    "sasl.mechanism={} needs a password (from an environment variable or a file)",
                    m.as_str()
                )));
            }
            if m == Mechanism::AwsMskIam && (self.username.is_some() || self.password.is_some()) {
                return Err(SecurityError::Conflict(
                    "AWS_MSK_IAM signs with AWS credentials: a SASL user name or password has no place beside it"
                        .to_owned(),
                ));
            }
        }
        if !self.protocol.tls() && (self.ca.is_some() || self.cert.is_some() || self.key.is_some()) {
            return Err(SecurityError::Conflict(format!(
                "a CA, certificate or key needs security.protocol=SSL or SASL_SSL, not {}",
                self.protocol.as_str()
            )));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(SecurityError::Missing("mTLS needs both a client certificate and its key".to_owned()));
        }
        for (key, path) in [("CA", &self.ca), ("client certificate", &self.cert), ("client key", &self.key)] {
            if let Some(path) = path {
                readable(key, path)?;
            }
        }
        Ok(())
    }

    /// Whether tokens are signed for MSK IAM.
    pub fn iam(&self) -> bool {
        self.mechanism == Some(Mechanism::AwsMskIam)
    }

    /// Sets these settings on a librdkafka configuration.
    #[cfg(feature = "client")]
    pub fn apply(&self, config: &mut ClientConfig) {
        config.set("security.protocol", self.protocol.as_str());
        if let Some(m) = self.mechanism {
            config.set("sasl.mechanism", m.librdkafka());
        }
        if let Some(user) = &self.username {
            config.set("sasl.username", user);
        }
        if let Some(password) = &self.password {
            config.set("sasl.password", password.expose());
        }
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        if let Some(ca) = &self.ca {
            config.set("ssl.ca.location", path(ca));
        }
        if let Some(cert) = &self.cert {
            config.set("ssl.certificate.location", path(cert));
        }
        if let Some(key) = &self.key {
            config.set("ssl.key.location", path(key));
        }
        if let Some(password) = &self.key_password {
            config.set("ssl.key.password", password.expose());
        }
    }

    /// One line for logs and reports, without secrets:
    /// `SASL_SSL, SCRAM-SHA-512 as alice, CA ca.pem`.
    pub fn describe(&self) -> String {
        let mut text = self.protocol.as_str().to_owned();
        if let Some(m) = self.mechanism {
            text.push_str(", ");
            text.push_str(m.as_str());
        }
        if let Some(user) = &self.username {
            text.push_str(" as ");
            text.push_str(user);
        }
        if let Some(ca) = &self.ca {
            text.push_str(&format!(", CA {}", ca.display()));
        }
        if self.cert.is_some() {
            text.push_str(", client certificate");
        }
        text
    }
}

/// Whether librdkafka property `key` is one [`Security`] owns (and so
/// must not be set, or printed, from anywhere else).
pub fn is_security_property(key: &str) -> bool {
    key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.")
}

fn auth_name(auth: MskAuth) -> &'static str {
    match auth {
        MskAuth::None => "none",
        MskAuth::Tls => "tls",
        MskAuth::Scram => "scram",
        MskAuth::Iam => "iam",
    }
}

fn readable(key: &'static str, path: &Path) -> Result<(), SecurityError> {
    std::fs::File::open(path).map(drop).map_err(|e| SecurityError::File {
        key,
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn security_properties_are_taken_out_and_the_rest_left() {
        let mut p = props(&[
            ("acks", "1"),
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "s3cret"),
        ]);
        let s = Security::take_from_properties(&mut p).unwrap();
        assert_eq!(p, props(&[("acks", "1")]));
        assert_eq!(s.protocol, Protocol::SaslSsl);
        assert_eq!(s.mechanism, Some(Mechanism::ScramSha512));
        s.check().unwrap();
        #[cfg(feature = "client")]
        {
            let mut c = ClientConfig::new();
            s.apply(&mut c);
            assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
            assert_eq!(c.get("sasl.password"), Some("s3cret"));
        }
    }

    #[test]
    fn secrets_never_show_in_debug_or_describe() {
        let mut p = props(&[("sasl.mechanism", "PLAIN"), ("sasl.username", "bob"), ("sasl.password", "hunter2")]);
        let s = Security::take_from_properties(&mut p).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!s.describe().contains("hunter2"));
        assert_eq!(s.describe(), "SASL_SSL, PLAIN as bob");
    }

    #[cfg(feature = "client")]
    #[test]
    fn aws_msk_iam_becomes_oauthbearer_for_librdkafka() {
        let s = Security::default().with_msk_auth(MskAuth::Iam).unwrap();
        s.check().unwrap();
        assert!(s.iam());
        let mut c = ClientConfig::new();
        s.apply(&mut c);
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.mechanism"), Some("OAUTHBEARER"));
    }

    #[test]
    fn contradictions_and_gaps_are_named() {
        let mut p = props(&[("security.protocol", "SSL")]);
        let s = Security::take_from_properties(&mut p).unwrap();
        let e = s.with_msk_auth(MskAuth::Scram).unwrap_err();
        assert!(e.to_string().contains("--msk-auth scram means security.protocol=SASL_SSL"), "{e}");

        let s = Security::default().with_msk_auth(MskAuth::Scram).unwrap();
        assert!(s.check().unwrap_err().to_string().contains("needs a user name"));

        let mut p = props(&[("security.protocol", "SASL_SSL")]);
        let s = Security::take_from_properties(&mut p).unwrap();
        assert!(s.check().unwrap_err().to_string().contains("needs sasl.mechanism"));

        let mut p = props(&[("sasl.mechanism", "OAUTHBEARER")]);
        assert!(matches!(Security::take_from_properties(&mut p), Err(SecurityError::Unsupported(_))));

        let mut p = props(&[("security.protocol", "TLS")]);
        assert!(Security::take_from_properties(&mut p).unwrap_err().to_string().contains("expected PLAINTEXT"));
    }

    #[test]
    fn a_missing_ca_file_is_named_before_anything_connects() {
        let s = Security { protocol: Protocol::Ssl, ca: Some("/nonexistent/ca.pem".into()), ..Security::default() };
        let e = s.check().unwrap_err();
        assert!(e.to_string().starts_with("CA /nonexistent/ca.pem: "), "{e}");
        let s = Security { protocol: Protocol::Plaintext, ca: Some("/etc/hostname".into()), ..Security::default() };
        assert!(s.check().unwrap_err().to_string().contains("needs security.protocol=SSL"));
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file() {
        let lookup = |name: &str| (name == "PW").then(|| "from-env".to_owned());
        assert_eq!(Secret::from_env("PW", lookup).unwrap().expose(), "from-env");
        assert!(Secret::from_env("NOPE", lookup).unwrap_err().to_string().contains("NOPE is not set"));
        let dir = std::env::temp_dir().join(format!("mskbench-kafka-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        assert_eq!(Secret::from_file(&file).unwrap().expose(), "from-file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
