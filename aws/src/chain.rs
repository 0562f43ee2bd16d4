//! Who calls AWS, and where: the AWS default credential and region chains,
//! resolved once at start, for every AWS client of mskbench (the
//! processor's Firehose, Glue and S3 clients, the producer's Glue
//! registration, the run's read-back).
//!
//! [`Chain::load`] is `aws-config`'s default chain — environment
//! variables, the shared config and credentials files (`AWS_PROFILE`,
//! `credential_process`, assume-role, SSO), web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE`), the container endpoint (ECS, EKS Pod
//! Identity) and instance metadata (IMDSv2) — with the caller's variables
//! taking precedence, so that `mskbench process -E AWS_PROFILE=lab` works as
//! a shell variable would. It fetches credentials once, so that a missing or
//! broken identity is an error at start naming the chain, not a failed call
//! in the middle of a run, and keeps them in a [`Cached`] provider that hands
//! the same credentials to every call until five minutes before they expire.
//! `mskbench-aws`'s own clients call the provider on every request; without
//! the cache each Glue or S3 call would walk the chain again (an SSO or
//! metadata request per call).
//!
//! Cost at start: with keys in the environment (what Lambda gives a function)
//! no file is read for the credentials and nothing goes over the network;
//! the region and the SDK settings look at the environment, then at the
//! config files when a setting is missing from it (BENCHMARKS.md, "Processor",
//! has the `bootstrap` start-up before and after).
//!
//! Endpoints are not part of this: they come from the SDK's standard
//! variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), read by
//! [`Endpoints::from_lookup`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use tokio::sync::Mutex;

/// How long before their expiry cached credentials are fetched anew.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// How long the first fetch of credentials may take at start.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the chain gave no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No link of the region chain named a region.
    #[error(
        "no AWS region: set AWS_REGION, or `region` in the profile (~/.aws/config{profile}); on EC2 the instance's \
         region is used"
    )]
    NoRegion {
        /// `, profile NAME` when a profile was named.
        profile: String,
    },
    /// The region is not a region name.
    #[error("AWS_REGION={region:?} is invalid: a region name such as us-east-1")]
    InvalidRegion {
        /// What was found.
        region: String,
    },
    /// A key id without its secret, or the reverse.
    #[error("{missing} is not set: {given} is set without it")]
    HalfAKey {
        /// The variable that is missing.
        missing: &'static str,
        /// The one that is set.
        given: &'static str,
    },
    /// No link of the credential chain gave credentials.
    #[error(
        "no AWS credentials from the default chain (environment, profile{profile}, SSO, web identity, container, \
         instance metadata): {detail}"
    )]
    NoCredentials {
        /// `` NAME`` when a profile was named.
        profile: String,
        /// What the chain said, with its causes.
        detail: String,
    },
}

/// Where a [`Chain`]'s credentials came from, as recorded in results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` in the caller's variables.
    Environment,
    /// The default chain (profile, SSO, web identity, container, metadata), with the profile named if one was.
    DefaultChain {
        /// `AWS_PROFILE`, when set.
        profile: Option<String>,
    },
    /// Fixed credentials given as values (tests, stand-ins).
    Fixed,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Environment => f.write_str("environment"),
            Source::DefaultChain { profile: Some(p) } => write!(f, "default chain, profile {p}"),
            Source::DefaultChain { profile: None } => f.write_str("default chain"),
            Source::Fixed => f.write_str("fixed"),
        }
    }
}

/// A region and a credentials provider, resolved once.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The region, such as `us-east-1`.
    pub region: String,
    /// Who signs: cached, refreshed before expiry.
    pub credentials: SharedCredentialsProvider,
    /// Where the credentials came from (never the credentials themselves).
    pub source: Source,
}

/// Two chains are the same when they name the same region and source (the
/// providers themselves cannot be compared).
impl PartialEq for Chain {
    fn eq(&self, other: &Chain) -> bool {
        (&self.region, &self.source) == (&other.region, &other.source)
    }
}

impl Eq for Chain {}

impl Chain {
    /// Fixed credentials in `region`: for stand-ins (which check no
    /// signature) and tests. Reads nothing.
    pub fn fixed(region: &str, key_id: &str, secret: &str) -> Chain {
        Chain {
            region: region.to_owned(),
            credentials: SharedCredentialsProvider::new(Credentials::new(key_id, secret, None, None, "fixed")),
            source: Source::Fixed,
        }
    }

    /// The default chains, with `get`'s variables first: `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), `AWS_PROFILE`, and `AWS_ACCESS_KEY_ID` with
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`. Everything else
    /// (the config files, `AWS_WEB_IDENTITY_TOKEN_FILE`, the container
    /// variables, metadata) `aws-config` reads from the process itself.
    /// Fetches credentials once (at most [`LOAD_TIMEOUT`]).
    ///
    /// # Errors
    /// [`ChainError`] when no region or no credentials can be found.
    pub async fn load(get: impl Fn(&str) -> Option<String>) -> Result<Chain, ChainError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let profile = var("AWS_PROFILE");
        let shown = profile.as_ref().map_or_else(String::new, |p| format!(" {p}"));
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &profile {
            loader = loader.profile_name(p);
        }
        if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
            loader = loader.region(aws_config::Region::new(region));
        }
        let source = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                let keys = Credentials::new(id, secret, var("AWS_SESSION_TOKEN"), None, "Environment");
                loader = loader.credentials_provider(keys);
                Source::Environment
            }
            (Some(_), None) => {
                return Err(ChainError::HalfAKey { missing: "AWS_SECRET_ACCESS_KEY", given: "AWS_ACCESS_KEY_ID" });
            }
            (None, Some(_)) => {
                return Err(ChainError::HalfAKey { missing: "AWS_ACCESS_KEY_ID", given: "AWS_SECRET_ACCESS_KEY" });
            }
            (None, None) => Source::DefaultChain { profile: profile.clone() },
        };
        let config = loader.load().await;
        let region = config.region().map(ToString::to_string).ok_or_else(|| ChainError::NoRegion {
            profile: profile.as_ref().map_or_else(String::new, |p| format!(", profile {p}")),
        })?;
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(ChainError::InvalidRegion { region });
        }
        let no_credentials = |detail: String| ChainError::NoCredentials { profile: shown.clone(), detail };
        let inner = config.credentials_provider().ok_or_else(|| no_credentials("no provider configured".into()))?;
        let cached = Cached::new(inner);
        match tokio::time::timeout(LOAD_TIMEOUT, cached.get()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(no_credentials(crate::sign::error_chain(&e))),
            Err(_) => return Err(no_credentials(format!("no answer within {} s", LOAD_TIMEOUT.as_secs()))),
        }
        Ok(Chain { region, credentials: SharedCredentialsProvider::new(cached), source })
    }

    /// [`Chain::load`] over the process environment.
    ///
    /// # Errors
    /// As [`Chain::load`].
    pub async fn from_env() -> Result<Chain, ChainError> {
        Chain::load(|k| std::env::var(k).ok()).await
    }

    /// Region and credentials for a client with this endpoint override and timeout.
    pub fn access(&self, endpoint: Option<String>, timeout: Duration) -> crate::Access {
        crate::Access { region: self.region.clone(), credentials: self.credentials.clone(), endpoint, timeout }
    }
}

/// A credentials provider that asks the one it wraps once, and again only
/// when the credentials it holds are within [`REFRESH_BEFORE_EXPIRY`] of
/// their expiry. Concurrent callers wait for one fetch. `Debug` shows
/// nothing of what it holds.
#[derive(Clone)]
pub struct Cached {
    inner: SharedCredentialsProvider,
    held: Arc<Mutex<Option<Credentials>>>,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").finish_non_exhaustive()
    }
}

impl Cached {
    /// Wraps `inner`; fetches nothing yet.
    pub fn new(inner: SharedCredentialsProvider) -> Cached {
        Cached { inner, held: Arc::new(Mutex::new(None)) }
    }

    async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut held = self.held.lock().await;
        if let Some(c) = held.as_ref()
            && fresh(c, SystemTime::now())
        {
            return Ok(c.clone());
        }
        let fetched = self.inner.provide_credentials().await?;
        *held = Some(fetched.clone());
        Ok(fetched)
    }
}

/// Whether `c` can still be used at `now` without a refresh.
fn fresh(c: &Credentials, now: SystemTime) -> bool {
    c.expiry().is_none_or(|expiry| expiry > now + REFRESH_BEFORE_EXPIRY)
}

impl ProvideCredentials for Cached {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.get())
    }
}

/// Endpoint overrides per service, from the SDK's standard variables; `None`
/// means the region's AWS endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Endpoints {
    /// `AWS_ENDPOINT_URL_FIREHOSE`, else `AWS_ENDPOINT_URL`.
    pub firehose: Option<String>,
    /// `AWS_ENDPOINT_URL_GLUE`, else `AWS_ENDPOINT_URL`.
    pub glue: Option<String>,
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`.
    pub s3: Option<String>,
}

/// A variable holding something that is not an endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is invalid: {expected}")]
pub struct EndpointError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What would be accepted.
    pub expected: &'static str,
}

impl Endpoints {
    /// The SDK's endpoint variables through `get`: per service, else
    /// `AWS_ENDPOINT_URL`; all ignored with
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`. Trailing slashes are
    /// dropped.
    ///
    /// # Errors
    /// [`EndpointError`] naming a variable that is not an http(s) URL (or,
    /// for the switch, not `true`/`false`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Endpoints, EndpointError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        match var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") => {}
            Some("true") => return Ok(Endpoints::default()),
            Some(other) => {
                return Err(EndpointError {
                    name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                    value: other.to_owned(),
                    expected: "true or false",
                });
            }
        }
        let url = |name: &'static str| -> Result<Option<String>, EndpointError> {
            match var(name) {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                    Ok(Some(u.trim_end_matches('/').to_owned()))
                }
                Some(u) => Err(EndpointError { name, value: u, expected: "an http:// or https:// URL" }),
                None => Ok(None),
            }
        };
        let global = url("AWS_ENDPOINT_URL")?;
        let service =
            |name: &'static str| -> Result<Option<String>, EndpointError> { Ok(url(name)?.or_else(|| global.clone())) };
        Ok(Endpoints {
            firehose: service("AWS_ENDPOINT_URL_FIREHOSE")?,
            glue: service("AWS_ENDPOINT_URL_GLUE")?,
            s3: service("AWS_ENDPOINT_URL_S3")?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        move |k| map.get(k).map(|v| (*v).to_owned())
    }

    #[tokio::test]
    async fn keys_in_the_variables_come_first_and_are_fetched_at_start() {
        let get = lookup(&[("AWS_REGION", "eu-west-1"), ("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")]);
        let chain = Chain::load(get).await.unwrap();
        assert_eq!((chain.region.as_str(), &chain.source), ("eu-west-1", &Source::Environment));
        let c = chain.credentials.provide_credentials().await.unwrap();
        assert_eq!((c.access_key_id(), c.secret_access_key()), ("AKID", "s"));
    }

    #[tokio::test]
    async fn half_a_key_and_a_bad_region_are_named() {
        let e = Chain::load(lookup(&[("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "AKID")])).await.unwrap_err();
        assert!(e.to_string().starts_with("AWS_SECRET_ACCESS_KEY is not set"), "{e}");
        let get = lookup(&[("AWS_REGION", "US East"), ("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s")]);
        assert_eq!(Chain::load(get).await.unwrap_err(), ChainError::InvalidRegion { region: "US East".into() });
    }

    #[test]
    fn credentials_are_fresh_until_five_minutes_before_expiry() {
        let now = SystemTime::now();
        let expiring = |secs| Credentials::new("a", "s", None, Some(now + Duration::from_secs(secs)), "t");
        assert!(fresh(&Credentials::new("a", "s", None, None, "t"), now), "no expiry: kept");
        assert!(fresh(&expiring(301), now));
        assert!(!fresh(&expiring(299), now));
    }

    #[test]
    fn endpoint_overrides_follow_the_sdk_precedence() {
        let e = Endpoints::from_lookup(lookup(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
            ("AWS_ENDPOINT_URL_GLUE", "http://g:1"),
        ]))
        .unwrap();
        assert_eq!(e.firehose.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(e.s3.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(e.glue.as_deref(), Some("http://g:1"));
        let ignored = lookup(&[("AWS_ENDPOINT_URL", "http://x:1"), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]);
        assert_eq!(Endpoints::from_lookup(ignored).unwrap(), Endpoints::default());
        let bad = Endpoints::from_lookup(lookup(&[("AWS_ENDPOINT_URL_S3", "127.0.0.1:4566")])).unwrap_err();
        assert_eq!(bad.name, "AWS_ENDPOINT_URL_S3");
    }
}
