//! What every client of the suite shares with librdkafka at run time:
//! MSK IAM tokens on request, and the first refusal that means "these
//! settings will never connect" (a wrong password, an untrusted
//! certificate, an expired token, a listener that speaks another
//! protocol).
//!
//! librdkafka retries all of those forever, as it should for a broker that
//! is restarting; a benchmark tool waiting to start must not. The context
//! records the first such error in [`Auth`], and [`wait_for_metadata`]
//! stops waiting on it with that one-line reason, within seconds.
//!
//! rust-rdkafka serves token refreshes from the client's polled queue.
//! Producers and consumers poll all the time; admin clients and the
//! one-shot metadata lookups do not, so [`Auth::prime`] sets the first
//! token at once (librdkafka asks again at 80% of its lifetime, on the
//! clients that poll).

use std::error::Error;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::client::{Client, OAuthToken};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::{ClientContext, bindings};

use crate::iam::{IamError, IamTokens, default_credentials, signing_region};
use crate::security::Security;

/// The Kafka principal name sent with IAM tokens (MSK takes the identity
/// from the signature, not from this).
const PRINCIPAL: &str = "mskbench";

/// Shared by every client built from one set of settings: the IAM token
/// source, if any, and the first fatal refusal seen.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    iam: Option<IamTokens>,
    refused: OnceLock<String>,
    tokens: AtomicU64,
}

impl Auth {
    /// For `security`: with IAM, a token source on the AWS default
    /// credential chain, for the region `security` names, else the one in
    /// the MSK broker host names, else the AWS region chain's.
    pub async fn new(security: &Security, brokers: &str) -> Result<Auth, IamError> {
        if !security.iam() {
            return Ok(Auth::default());
        }
        let region = signing_region(security.region.clone(), brokers).await?;
        Ok(Auth::with_tokens(IamTokens::new(region, default_credentials().await)))
    }

    /// With a given token source (tests, or a caller's own credentials).
    pub fn with_tokens(tokens: IamTokens) -> Auth {
        Auth { inner: Arc::new(Inner { iam: Some(tokens), ..Inner::default() }) }
    }

    /// The first refusal that no retry will cure, if one was seen.
    pub fn refused(&self) -> Option<&str> {
        self.inner.refused.get().map(String::as_str)
    }

    /// Tokens handed to librdkafka so far.
    pub fn tokens_issued(&self) -> u64 {
        self.inner.tokens.load(Ordering::Relaxed)
    }

    /// Sets the first IAM token on `client` now, so clients that never
    /// poll (admin, metadata lookups) can authenticate. Nothing without
    /// IAM. A token that cannot be made is recorded as the refusal.
    pub fn prime<C: ClientContext>(&self, client: &Client<C>) {
        if self.inner.iam.is_none() {
            return;
        }
        let token = match self.oauth_token() {
            Ok(token) => token,
            Err(e) => {
                let _ = self.inner.refused.set(format!("no MSK IAM token: {e}"));
                return;
            }
        };
        let (Ok(value), Ok(principal)) = (CString::new(token.token), CString::new(token.principal_name)) else {
            return;
        };
        let mut errstr = [0 as std::ffi::c_char; 512];
        // SAFETY: `client.native_ptr()` is a live rd_kafka_t for as long as
        // `client` is borrowed; the strings outlive the call, which copies
        // them; no extensions are passed (null, 0); `errstr` is writable
        // for its stated length.
        let code = unsafe {
            bindings::rd_kafka_oauthbearer_set_token(
                client.native_ptr(),
                value.as_ptr(),
                token.lifetime_ms,
                principal.as_ptr(),
                std::ptr::null_mut(),
                0,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if code != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            // SAFETY: librdkafka wrote a NUL-terminated message into errstr.
            let message = unsafe { std::ffi::CStr::from_ptr(errstr.as_ptr()) }.to_string_lossy().into_owned();
            tracing::warn!(target: "librdkafka", "setting the first MSK IAM token: {message}");
        }
    }

    /// A token for librdkafka's refresh (a producer context of its own
    /// calls it from `generate_oauth_token`).
    pub fn oauth_token(&self) -> Result<OAuthToken, Box<dyn Error>> {
        let Some(tokens) = &self.inner.iam else {
            return Err("no OAUTHBEARER token source: only sasl.mechanism=AWS_MSK_IAM has one".into());
        };
        let token = tokens.token()?;
        self.inner.tokens.fetch_add(1, Ordering::Relaxed);
        Ok(OAuthToken { token: token.value, principal_name: PRINCIPAL.to_owned(), lifetime_ms: token.expires_ms })
    }

    /// Logs a librdkafka error once, as an error when no retry will cure
    /// it (and records it), as a warning otherwise; a partition's end is
    /// not an error and is not logged. `client` names the client in logs;
    /// a producer context of its own calls it from `error`.
    pub fn on_error(&self, client: &str, error: &KafkaError, reason: &str) {
        if let Some(refusal) = refusal(error, reason) {
            if self.inner.refused.set(refusal).is_ok() {
                tracing::error!(target: "librdkafka", "{client}: {reason}");
            }
            return;
        }
        let end = matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF));
        if !end {
            tracing::warn!(target: "librdkafka", "{client}: {error}: {reason}");
        }
    }
}

/// The one-line reason when `error` means the settings cannot connect.
fn refusal(error: &KafkaError, reason: &str) -> Option<String> {
    let code = match error {
        KafkaError::Global(code) => *code,
        _ => return None,
    };
    // TLS failures come as `SSL` during the handshake, and as a transport
    // failure when the broker's alert arrives after it (TLS 1.3 asks for a
    // client certificate after the client thinks it is done).
    let tls = code == RDKafkaErrorCode::SSL
        || (code == RDKafkaErrorCode::BrokerTransportFailure && (reason.contains("SSL") || reason.contains("ssl3_")));
    let what = match code {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => "authentication failed",
        _ if tls && reason.contains("certificate verify failed") => "untrusted broker certificate",
        _ if tls && reason.contains("certificate required") => {
            "the broker requires a client certificate (mTLS: give its certificate and key)"
        }
        _ if tls && reason.contains("PLAINTEXT") => "the broker speaks another protocol",
        _ if tls => "TLS failed",
        RDKafkaErrorCode::BrokerTransportFailure if reason.contains("security.protocol") => {
            "the broker speaks another protocol"
        }
        _ => return None,
    };
    Some(format!("{what}: {}", short(reason)))
}

/// librdkafka's reason without its `(after 3ms in state …)` tail.
fn short(reason: &str) -> &str {
    reason.rfind(" (after ").map_or(reason, |i| &reason[..i]).trim()
}

/// The context of the suite's consumers and admin clients: IAM tokens and
/// refusals through [`Auth`]; `client` names the client in logs.
#[derive(Debug, Clone)]
pub struct KafkaContext {
    auth: Auth,
    client: &'static str,
}

impl KafkaContext {
    /// A context for the client named `client` (in log lines).
    pub fn new(auth: Auth, client: &'static str) -> KafkaContext {
        KafkaContext { auth, client }
    }

    /// The shared state.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }
}

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        self.auth.on_error(self.client, &error, reason);
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        self.auth.oauth_token()
    }
}

impl ConsumerContext for KafkaContext {}

/// Why a client never got metadata.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The broker refused the settings (see [`Auth::refused`]).
    #[error("{0}")]
    Refused(String),
    /// No answer within the wait.
    #[error("no metadata within {waited:?}: {last}")]
    Timeout { waited: Duration, last: String },
}

/// Asks for metadata (of `topic`, or all) until an answer, a refusal
/// recorded in `auth`, or `timeout`; in slices of at most a second so a
/// refusal ends the wait within about a second. librdkafka hands its
/// errors (the refusals among them) to the context only when the client's
/// queue is polled: `pump` polls it for clients that nobody else polls (a
/// consumer with no assignment: `|| { consumer.poll(Duration::ZERO); }`);
/// a threaded producer polls itself (`|| {}`).
pub fn wait_for_metadata<C: ClientContext>(
    client: &Client<C>,
    topic: Option<&str>,
    timeout: Duration,
    auth: &Auth,
    pump: impl Fn(),
) -> Result<Metadata, ConnectError> {
    let started = Instant::now();
    let mut last = String::from("no answer");
    loop {
        pump();
        if let Some(refusal) = auth.refused() {
            return Err(ConnectError::Refused(refusal.to_owned()));
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(ConnectError::Timeout { waited: timeout, last });
        }
        match client.fetch_metadata(topic, left.min(Duration::from_secs(1))) {
            Ok(metadata) => return Ok(metadata),
            Err(e) => last = e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_from_transient_errors() {
        let r = refusal(
            &KafkaError::Global(RDKafkaErrorCode::Authentication),
            "sasl_ssl://127.0.0.1:9/bootstrap: SASL authentication error: Authentication failed (after 12ms in state AUTH_REQ)",
        )
        .unwrap();
        assert_eq!(
            r,
            "authentication failed: sasl_ssl://127.0.0.1:9/bootstrap: SASL authentication error: Authentication failed"
        );
        let r = refusal(
            &KafkaError::Global(RDKafkaErrorCode::SSL),
            "ssl://x/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified",
        )
        .unwrap();
        assert!(r.starts_with("untrusted broker certificate: "), "{r}");
        assert!(refusal(&KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure), "Connection refused").is_none());
        let r = refusal(
            &KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "ssl://127.0.0.1:1/bootstrap: Receive failed: ../ssl/record/rec_layer_s3.c:1601:ssl3_read_bytes \
             error:0A00045C:SSL routines::tlsv13 alert certificate required: SSL alert number 116 (after 0ms in state \
             APIVERSION_QUERY)",
        )
        .unwrap();
        assert!(r.starts_with("the broker requires a client certificate"), "{r}");
        assert!(refusal(&KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down").is_none());
    }

    #[test]
    fn the_first_refusal_is_kept() {
        let auth = Auth::default();
        auth.on_error("t", &KafkaError::Global(RDKafkaErrorCode::Authentication), "first");
        auth.on_error("t", &KafkaError::Global(RDKafkaErrorCode::Authentication), "second");
        assert_eq!(auth.refused(), Some("authentication failed: first"));
    }

    #[test]
    fn no_token_without_iam() {
        let Err(e) = Auth::default().oauth_token() else { panic!("a token without IAM") };
        assert!(e.to_string().contains("AWS_MSK_IAM"), "{e}");
    }
}
