//! Kafka client security, one way for every rdkafka client of the suite:
//! `mskbench produce`, `process` (the local event source mapping), `run`
//! (producer, pollers, topic admin and read-back) and their tests.
//!
//! Amazon MSK serves TLS on 9094, SASL/SCRAM on 9096 and IAM on 9098; a
//! benchmark of the real lab must reach all three. This crate holds the
//! settings as a checked type ([`Security`], read from librdkafka
//! properties, `--msk-auth` or a scenario's `[kafka]` table), signs MSK IAM
//! tokens ([`iam`]), and gives clients a context ([`KafkaContext`], or
//! [`Auth::on_error`]/[`Auth::oauth_token`] for contexts of their own) that hands
//! librdkafka its tokens and turns a refusal that no retry will cure into
//! a one-line reason ([`wait_for_metadata`]) instead of a hang.
//!
//! It does no I/O of its own beyond what librdkafka and the AWS credential
//! chain do for it; it never logs or prints a secret.

#[cfg(feature = "client")]
mod context;
#[cfg(feature = "client")]
pub mod iam;
mod security;

#[cfg(feature = "client")]
pub use context::{Auth, ConnectError, KafkaContext, wait_for_metadata};
pub use security::{Mechanism, MskAuth, Protocol, Secret, Security, SecurityError, is_security_property};

/// Where a client connects and how: the bootstrap list, the security
/// settings, and the [`Auth`] every client built from them shares.
#[cfg(feature = "client")]
#[derive(Debug, Clone)]
pub struct Connection {
    /// The bootstrap list, `host:port,…`.
    pub brokers: String,
    /// TLS and SASL.
    pub security: Security,
    /// IAM tokens and refusals, shared by the clients.
    pub auth: Auth,
}

#[cfg(feature = "client")]
impl Connection {
    /// `brokers` with `security`; with IAM, the AWS credential chain is set
    /// up here (nothing is fetched until librdkafka asks for a token).
    pub async fn new(brokers: String, security: Security) -> Result<Connection, iam::IamError> {
        let auth = Auth::new(&security, &brokers).await?;
        Ok(Connection { brokers, security, auth })
    }

    /// `brokers` in plaintext, as the embedded and mock brokers speak.
    pub fn plaintext(brokers: impl Into<String>) -> Connection {
        Connection { brokers: brokers.into(), security: Security::default(), auth: Auth::default() }
    }

    /// A librdkafka configuration with the bootstrap list and the security
    /// settings; callers add their own settings.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        // rust-rdkafka sets librdkafka's log level from whether `tracing`
        // would show target `librdkafka`. At its floor (errors only), an
        // untrusted certificate never reached the context's `error` here
        // and the wait ran out instead of ending on the refusal; at
        // warnings it does (tests/peers/test_kafka_security.py). The cost
        // is a formatted line per warning.
        config.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        config.set("bootstrap.servers", &self.brokers);
        self.security.apply(&mut config);
        config
    }

    /// A context for a consumer or admin client named `client` in logs.
    pub fn context(&self, client: &'static str) -> KafkaContext {
        KafkaContext::new(self.auth.clone(), client)
    }
}
