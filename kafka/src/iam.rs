//! MSK IAM tokens: `AWS_MSK_IAM` over SASL/OAUTHBEARER.
//!
//! The token is what AWS's signer libraries (`aws-msk-iam-sasl-signer-*`)
//! make: the URL `https://kafka.REGION.amazonaws.com/?Action=kafka-cluster%3AConnect`
//! presigned with SigV4 for service `kafka-cluster`, valid 900 s, with a
//! `User-Agent` parameter added after signing, then base64url-encoded
//! without padding. [`presign`] is that, as a pure function of the
//! credentials and the clock, so tests can hold it to AWS's Python signer
//! for the same inputs; the signing is `aws-sigv4`'s, the SDK's signer.
//!
//! We do not use the `aws-msk-iam-sasl-signer` crate: it reads the clock
//! itself (no fixed-clock test is possible against it), builds the STS
//! SDK, `chrono` and `url` into every binary for one role-assumption
//! helper the default chain already covers, and panics on a URL it could
//! not sign. What it does is the few lines below.
//!
//! librdkafka asks for a token from its own threads, synchronously,
//! through the client context; credentials come from an async provider
//! (the AWS default chain: environment, profiles, web identity, container
//! and instance metadata). [`IamTokens`] bridges the two with one thread
//! of its own running a small runtime, so a refresh never blocks or nests
//! inside the caller's tokio runtime, and a provider that never answers
//! costs one bounded wait, not a hang.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use mskbench_core::errors::error_chain;

/// How long a token is valid (the signer libraries' 900 s).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Longest wait for the credential provider.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(10);

/// Who signed the token, as the `User-Agent` query parameter says.
const USER_AGENT: &str = concat!("mskbench/", env!("CARGO_PKG_VERSION"));

/// A signed token and when it stops being valid.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The base64url text sent as the OAUTHBEARER token.
    pub value: String,
    /// Expiry, in milliseconds since the Unix epoch: the earlier of the
    /// signature's expiry and the credentials' own.
    pub expires_ms: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("value", &"<redacted>").field("expires_ms", &self.expires_ms).finish()
    }
}

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// The credential chain had nothing, failed, or did not answer.
    #[error("no AWS credentials for MSK IAM: {0}")]
    Credentials(String),
    /// `aws-sigv4` refused the request.
    #[error("cannot sign the MSK IAM token: {0}")]
    Signing(String),
    /// No region to sign for.
    #[error(
        "MSK IAM needs an AWS region: none in the broker host names, AWS_REGION or the profile; set kafka.region, \
         --region or AWS_REGION"
    )]
    NoRegion,
}

/// The region tokens are signed for: `explicit`, else the one in MSK broker
/// host names among `brokers`, else the AWS region chain's.
pub async fn signing_region(explicit: Option<String>, brokers: &str) -> Result<String, IamError> {
    use aws_config::meta::region::ProvideRegion as _;
    if let Some(region) = explicit.or_else(|| region_from_brokers(brokers)) {
        return Ok(region);
    }
    let chain = aws_config::default_provider::region::default_provider();
    chain.region().await.map(|r| r.to_string()).ok_or(IamError::NoRegion)
}

/// The AWS default credential chain tokens are signed with: environment,
/// profiles, SSO, web identity, container and instance metadata.
pub async fn default_credentials() -> SharedCredentialsProvider {
    let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder().build().await;
    SharedCredentialsProvider::new(chain)
}

/// The token for `region`, signed with `credentials` at `now`.
pub fn presign(region: &str, credentials: &Credentials, now: SystemTime) -> Result<Token, IamError> {
    let host = format!("kafka.{region}.amazonaws.com");
    let action = "Action=kafka-cluster%3AConnect";
    let url = format!("https://{host}/?{action}");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| IamError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| IamError::Signing(e.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| IamError::Signing(e.to_string()))?.into_parts();
    let mut signed = url;
    for (name, value) in instructions.params() {
        signed.push('&');
        signed.push_str(name);
        signed.push('=');
        percent_encode(value, &mut signed);
    }
    signed.push_str("&User-Agent=");
    percent_encode(USER_AGENT, &mut signed);

    let signed_at = now.duration_since(UNIX_EPOCH).map_err(|e| IamError::Signing(e.to_string()))?;
    // The signature's X-Amz-Date has whole seconds.
    let mut expires_ms = (signed_at.as_secs() + TOKEN_LIFETIME.as_secs()) as i64 * 1000;
    if let Some(until) = credentials.expiry().and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        expires_ms = expires_ms.min(until.as_millis() as i64);
    }
    Ok(Token { value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed), expires_ms })
}

/// RFC 3986 percent-encoding of a query value (unreserved characters kept),
/// as botocore writes presigned URLs.
fn percent_encode(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// The AWS region of an MSK broker host name, if `brokers` has one:
/// `b-1.lab.abc123.c2.kafka.us-east-1.amazonaws.com:9098` → `us-east-1`
/// (MSK Serverless: `boot-x.c1.kafka-serverless.us-east-1.amazonaws.com`).
pub fn region_from_brokers(brokers: &str) -> Option<String> {
    brokers.split(',').find_map(|broker| {
        let host = broker.trim().rsplit_once(':').map_or(broker.trim(), |(h, _)| h);
        let labels: Vec<&str> = host.split('.').collect();
        let n = labels.len();
        (n >= 4 && labels[n - 1] == "com" && labels[n - 2] == "amazonaws" && labels[n - 4].starts_with("kafka"))
            .then(|| labels[n - 3].to_owned())
    })
}

type Reply = mpsc::SyncSender<Result<Credentials, String>>;

/// Signs tokens on demand for librdkafka's refresh, with credentials from
/// a provider run on a thread of its own.
#[derive(Debug)]
pub struct IamTokens {
    region: String,
    requests: Mutex<mpsc::Sender<Reply>>,
    issued: AtomicU64,
}

impl IamTokens {
    /// Tokens for `region` from `credentials` (usually the default chain).
    pub fn new(region: String, credentials: SharedCredentialsProvider) -> IamTokens {
        let (requests, incoming) = mpsc::channel::<Reply>();
        let spawned = std::thread::Builder::new().name("msk-iam-credentials".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    // Every request then gets this answer.
                    while let Ok(reply) = incoming.recv() {
                        let _ = reply.send(Err(format!("cannot start the credentials thread's runtime: {e}")));
                    }
                    return;
                }
            };
            // Ends when the IamTokens (the only sender) is dropped.
            while let Ok(reply) = incoming.recv() {
                let answer = runtime.block_on(async {
                    match tokio::time::timeout(CREDENTIALS_TIMEOUT, credentials.provide_credentials()).await {
                        Ok(Ok(c)) => Ok(c),
                        Ok(Err(e)) => Err(error_chain(&e)),
                        Err(_) => Err(format!("the credential provider did not answer within {CREDENTIALS_TIMEOUT:?}")),
                    }
                });
                let _ = reply.send(answer);
            }
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the MSK IAM credentials thread: {e}");
        }
        IamTokens { region, requests: Mutex::new(requests), issued: AtomicU64::new(0) }
    }

    /// The region tokens are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Tokens signed so far (librdkafka asks again at 80% of a lifetime).
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// A fresh token. Blocks the calling thread (librdkafka's) for at most
    /// the credential provider's timeout.
    pub fn token(&self) -> Result<Token, IamError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let sent = self.requests.lock().unwrap_or_else(|p| p.into_inner()).send(reply);
        sent.map_err(|_| IamError::Credentials("the credentials thread is gone".to_owned()))?;
        let credentials = answer
            .recv_timeout(CREDENTIALS_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| IamError::Credentials("the credentials thread did not answer".to_owned()))?
            .map_err(IamError::Credentials)?;
        let token = presign(&self.region, &credentials, SystemTime::now())?;
        self.issued.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap()
    }

    #[test]
    fn a_token_is_a_presigned_connect_url_for_the_region() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("session/token+=".into()), None, "test");
        let now = UNIX_EPOCH + Duration::from_secs(1_764_806_400); // 2025-12-04T00:00:00Z
        let token = presign("eu-west-1", &creds, now).unwrap();
        let url = decode(&token.value);
        assert!(url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"), "{url}");
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20251204%2Feu-west-1%2Fkafka-cluster%2Faws4_request",
            "X-Amz-Date=20251204T000000Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Security-Token=session%2Ftoken%2B%3D",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(url.ends_with(&format!("&User-Agent=mskbench%2F{}", env!("CARGO_PKG_VERSION"))), "{url}");
        assert_eq!(token.expires_ms, (1_764_806_400 + 900) * 1000);
        assert!(!format!("{token:?}").contains(&token.value));
    }

    #[test]
    fn a_token_expires_no_later_than_its_credentials() {
        let now = UNIX_EPOCH + Duration::from_secs(1_764_806_400);
        let soon = now + Duration::from_secs(120);
        let creds = Credentials::new("AKID", "secret", None, Some(soon), "test");
        let token = presign("us-east-1", &creds, now).unwrap();
        assert_eq!(token.expires_ms, (1_764_806_400 + 120) * 1000);
    }

    #[test]
    fn the_region_comes_from_msk_host_names() {
        assert_eq!(
            region_from_brokers("b-1.lab.abc123.c2.kafka.us-east-1.amazonaws.com:9098,b-2.lab.abc123.c2.kafka.us-east-1.amazonaws.com:9098")
                .as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region_from_brokers("boot-abc.c1.kafka-serverless.eu-central-1.amazonaws.com:9098").as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(region_from_brokers("127.0.0.1:9092"), None);
        assert_eq!(region_from_brokers("kafka.example.com:9092"), None);
    }

    #[test]
    fn tokens_come_from_the_provider_on_demand() {
        let creds = Credentials::new("AKID", "secret", None, None, "test");
        let tokens = IamTokens::new("us-west-2".into(), SharedCredentialsProvider::new(creds));
        let token = tokens.token().unwrap();
        assert!(decode(&token.value).starts_with("https://kafka.us-west-2.amazonaws.com/"));
        assert_eq!(tokens.issued(), 1);
    }
}
