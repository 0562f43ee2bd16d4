//! Confluent schema registry URLs, as both ends of the pipeline read them.
//!
//! The producer registers schemas and the processor fetches them from the
//! same kind of URL, with the lab's convention that credentials in the
//! URL (`https://key:secret@host/base`) become HTTP basic auth, as
//! Confluent's own clients do. Both ends feed the parts to one registry
//! client (`schema_registry_converter`'s `SrSettings`), which sends the
//! requests; this module does no I/O.
//!
//! The URL is read by a real URL parser (the `url` crate, WHATWG rules), so
//! user info is found where a browser finds it, whatever the path holds,
//! and percent-encoded characters in it (`%40` for `@`, `%3A` for `:`,
//! which a secret must use) are decoded before they become the basic-auth
//! token. A URL that can carry credentials is only ever shown through
//! [`redacted`] or [`RegistryUrl::base`]: errors, logs, `result.json` and
//! reports name the host, never the user info.

use std::fmt;

use percent_encoding::percent_decode_str;
use url::Url;

/// A registry URL split into what a request needs.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `scheme://host[:port][/base]`, credentials removed, no trailing slash.
    pub base: String,
    /// The user (Confluent Cloud: the API key), percent-decoded, when the
    /// URL carried credentials.
    pub user: Option<String>,
    /// The password (Confluent Cloud: the API secret) after the user's `:`,
    /// percent-decoded.
    pub secret: Option<String>,
}

/// Why a registry URL was refused. Messages name the URL only as
/// [`redacted`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryUrlError {
    /// Not a URL at all, or not `http://`/`https://`.
    #[error("{url} is not an http(s):// URL")]
    NotHttp {
        /// The URL, redacted.
        url: String,
    },
    /// A query or fragment: requests append paths to the base, so either
    /// would end up in the middle of every request's URL.
    #[error("{url}: a registry URL takes no query or fragment")]
    QueryOrFragment {
        /// The URL, redacted.
        url: String,
    },
    /// User info whose percent-encoding is not UTF-8.
    #[error("{url}: the credentials are not percent-encoded UTF-8")]
    BadCredentials {
        /// The URL, redacted.
        url: String,
    },
}

impl RegistryUrl {
    /// Splits an `http://` or `https://` URL.
    ///
    /// # Errors
    /// [`RegistryUrlError`] for any other scheme or no URL, a query or
    /// fragment, or user info that does not decode.
    pub fn parse(text: &str) -> Result<RegistryUrl, RegistryUrlError> {
        let not_http = || RegistryUrlError::NotHttp { url: redacted(text) };
        let mut url = Url::parse(text).map_err(|_| not_http())?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(not_http());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(RegistryUrlError::QueryOrFragment { url: redacted(text) });
        }
        let decode = |part: &str| {
            percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| RegistryUrlError::BadCredentials { url: redacted(text) })
        };
        let user = match url.username() {
            "" => None,
            user => Some(decode(user)?),
        };
        let secret = url.password().map(decode).transpose()?;
        strip_credentials(&mut url);
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(RegistryUrl { base, user, secret })
    }

    /// The `Authorization` header value for the credentials:
    /// `Basic <base64 of user:secret>`.
    pub fn basic_auth(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        let mut userinfo = user.to_owned();
        if let Some(secret) = &self.secret {
            userinfo.push(':');
            userinfo.push_str(secret);
        }
        let mut token = String::from("Basic ");
        crate::b64::encode_append(userinfo.as_bytes(), &mut token);
        Some(token)
    }
}

/// `url` as it may be shown: without user info (`https://host:port/path`),
/// or, when it does not parse as a URL, a placeholder rather than text that
/// may hold a secret.
pub fn redacted(url: &str) -> String {
    match Url::parse(url) {
        // Without a host (`key:secret@x` parses as scheme `key`) user info
        // cannot be told apart from the rest.
        Ok(mut parsed) if parsed.has_host() => {
            strip_credentials(&mut parsed);
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        _ => "<not a URL; not shown, it may hold credentials>".to_owned(),
    }
}

fn strip_credentials(url: &mut Url) {
    // Both fail only for URLs that cannot have credentials (no host, or a
    // `mailto:`-like scheme), which then hold none to strip.
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

impl fmt::Debug for RegistryUrl {
    /// The base and the user; never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryUrl")
            .field("base", &self.base)
            .field("user", &self.user)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_and_leave_the_base() {
        let r = RegistryUrl::parse("https://key:secret@registry.example:8081/base/").unwrap();
        assert_eq!(r.base, "https://registry.example:8081/base");
        assert_eq!(r.basic_auth().as_deref(), Some("Basic a2V5OnNlY3JldA=="));
        assert_eq!((r.user.as_deref(), r.secret.as_deref()), (Some("key"), Some("secret")));
        let r = RegistryUrl::parse("http://127.0.0.1:8081").unwrap();
        assert_eq!((r.base.as_str(), r.basic_auth()), ("http://127.0.0.1:8081", None));
        assert!(RegistryUrl::parse("ftp://x").is_err() && RegistryUrl::parse("registry:8081").is_err());
    }

    /// The hand-split parser sent `se%2Fcr%40t` as the secret, so a secret
    /// with `/`, `@` or `:` (which a URL must percent-encode) never
    /// authenticated.
    #[test]
    fn percent_encoded_credentials_are_decoded_for_basic_auth() {
        let r = RegistryUrl::parse("https://api%3Akey:se%2Fcr%40t@registry.example/").unwrap();
        assert_eq!((r.user.as_deref(), r.secret.as_deref()), (Some("api:key"), Some("se/cr@t")));
        assert_eq!(r.basic_auth().as_deref(), Some("Basic YXBpOmtleTpzZS9jckB0"));
        assert_eq!(r.base, "https://registry.example");
    }

    /// Split by hand at the first `/`, `https://host/a@b` took `host/a` for
    /// user info; and `?x` stayed in the base, in the middle of every
    /// request path.
    #[test]
    fn an_at_sign_in_the_path_is_not_user_info_and_queries_are_refused() {
        let r = RegistryUrl::parse("https://registry.example/tenants/a@b").unwrap();
        assert_eq!((r.base.as_str(), r.user.as_deref()), ("https://registry.example/tenants/a@b", None));
        assert!(matches!(
            RegistryUrl::parse("https://registry.example/?tenant=1"),
            Err(RegistryUrlError::QueryOrFragment { .. })
        ));
    }

    #[test]
    fn no_error_or_debug_text_shows_the_secret() {
        let r = RegistryUrl::parse("https://key:hunter2@registry.example").unwrap();
        let text = format!("{r:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("registry.example"), "{text}");
        for bad in ["ftp://key:hunter2@registry.example", "https://key:hunter2@registry.example/?q", "key:hunter2@x"] {
            let e = RegistryUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{bad} → {e}");
        }
        assert_eq!(redacted("https://key:hunter2@registry.example:8081/b"), "https://registry.example:8081/b");
        assert!(!redacted("not a url key:hunter2@").contains("hunter2"));
    }
}
