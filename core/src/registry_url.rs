//! Confluent schema registry URLs, as both ends of the pipeline read them.
//!
//! The producer registers schemas and the processor fetches them from the
//! same kind of URL, with the lab's convention that credentials in the
//! URL (`https://key:secret@host/base`) become HTTP basic auth, as
//! Confluent's own clients do. Pure string work, no I/O: the clients
//! around it send the requests.

/// A registry URL split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `scheme://host[:port][/base]`, credentials removed, no trailing slash.
    pub base: String,
    /// `Basic <base64 of user:secret>`, when the URL carried credentials.
    pub basic_auth: Option<String>,
}

impl RegistryUrl {
    /// Splits an `http://` or `https://` URL; `None` for any other.
    pub fn parse(url: &str) -> Option<RegistryUrl> {
        let (scheme, rest) = url.split_once("://").filter(|(s, _)| *s == "http" || *s == "https")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (basic_auth, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let mut token = String::from("Basic ");
                crate::b64::encode_append(userinfo.as_bytes(), &mut token);
                (Some(token), host)
            }
            None => (None, authority),
        };
        let base = format!("{scheme}://{host}/{path}").trim_end_matches('/').to_owned();
        Some(RegistryUrl { base, basic_auth })
    }
}

/// Percent-encodes a subject name for a URL path segment (RFC 3986
/// unreserved characters stay as they are).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_and_leave_the_base() {
        let r = RegistryUrl::parse("https://key:secret@registry.example:8081/base/").unwrap();
        assert_eq!(r.base, "https://registry.example:8081/base");
        assert_eq!(r.basic_auth.as_deref(), Some("Basic a2V5OnNlY3JldA=="));
        let r = RegistryUrl::parse("http://127.0.0.1:8081").unwrap();
        assert_eq!((r.base.as_str(), r.basic_auth), ("http://127.0.0.1:8081", None));
        assert!(RegistryUrl::parse("ftp://x").is_none() && RegistryUrl::parse("registry:8081").is_none());
    }

    #[test]
    fn subjects_are_encoded_for_a_path_segment() {
        assert_eq!(path_segment("ExampleTopic-value"), "ExampleTopic-value");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
