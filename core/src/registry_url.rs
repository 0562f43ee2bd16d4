//! Confluent schema registry URLs, as both ends of the pipeline read them.
//!
//! The producer registers schemas and the processor fetches them from the
//! same kind of URL, with the lab's convention that credentials in the
//! URL (`https://key:secret@host/base`) become HTTP basic auth, as
//! Confluent's own clients do. Pure string work, no I/O: both ends feed the
//! parts to one registry client (`schema_registry_converter`'s
//! `SrSettings`), which sends the requests.

use std::fmt;

/// A registry URL split into what a request needs.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `scheme://host[:port][/base]`, credentials removed, no trailing slash.
    pub base: String,
    /// The user (Confluent Cloud: the API key), when the URL carried credentials.
    pub user: Option<String>,
    /// The password (Confluent Cloud: the API secret) after the user's `:`.
    pub secret: Option<String>,
}

impl RegistryUrl {
    /// Splits an `http://` or `https://` URL; `None` for any other.
    pub fn parse(url: &str) -> Option<RegistryUrl> {
        let (scheme, rest) = url.split_once("://").filter(|(s, _)| *s == "http" || *s == "https")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, secret, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, secret)) => (Some(user.to_owned()), Some(secret.to_owned()), host),
                None => (Some(userinfo.to_owned()), None, host),
            },
            None => (None, None, authority),
        };
        let base = format!("{scheme}://{host}/{path}").trim_end_matches('/').to_owned();
        Some(RegistryUrl { base, user, secret })
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
        assert!(RegistryUrl::parse("ftp://x").is_none() && RegistryUrl::parse("registry:8081").is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let r = RegistryUrl::parse("https://key:hunter2@registry.example").unwrap();
        let text = format!("{r:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("registry.example"), "{text}");
    }
}
