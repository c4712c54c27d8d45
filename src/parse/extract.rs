//! What a failure line names: the image reference, its registry, the address or URL dialled
//! when it failed, and the error chain (`a: b: c`, outermost first).

use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

/// What could be read out of one failure line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extracted {
    /// Image reference (`host:port/path:tag`), as written.
    pub image: Option<String>,
    /// Registry `host[:port]`: the image's domain, or the host of a `/v2/` URL.
    pub registry: Option<String>,
    /// The last URL requested (query string dropped: it can carry account names).
    pub url: Option<String>,
    /// The `host:port` dialled (`dial tcp 1.2.3.4:80`) or the name looked up (`lookup host`).
    pub dialled: Option<String>,
    /// True when the failing request went to a token service (the Bearer realm), not the
    /// registry itself: `fetch anonymous|oauth token`, or a `/jwt/auth`, `/token`, `/oauth2/token` URL.
    pub token_request: bool,
    /// The error chain, outermost first.
    pub chain: Vec<String>,
}

#[allow(clippy::expect_used)] // constant patterns, covered by tests
static IMAGE_QUOTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:[Pp]ull(?:ing)? image|PullImage|pull and unpack image|resolve reference|[Ii]mage|reference|pulling image|inspect image|[Ii]mage [Rr]ef)[=:]? ?"([^"\s]+)""#)
        .expect("image regex")
});
#[allow(clippy::expect_used)]
static IMAGE_BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:manifest for|pull access denied for|Pulling from|image|repository|[Ii]mage) ([a-z0-9][a-z0-9._-]*(?:[.:][a-z0-9._-]+)*(?::[0-9]+)?/[A-Za-z0-9._/-]+(?:[:@][A-Za-z0-9._:-]+)?|[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+)")
        .expect("bare image regex")
});
#[allow(clippy::expect_used)]
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"https?://[^\s"'<>\\]+"#).expect("url regex"));
#[allow(clippy::expect_used)]
static DIAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"dial tcp(?:4|6)? (\[[0-9a-fA-F:.]+\]:[0-9]+|[^\s:]+:[0-9]+)|lookup ([^\s:]+)")
        .expect("dial regex")
});
#[allow(clippy::expect_used)]
static TOKEN_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"fetch (?:anonymous|oauth) token|/jwt/auth|/oauth2?/token|/service/token|/v2/token|/token\?|auth\.docker\.io|/token\b")
        .expect("token regex")
});

/// Read what the line names. Cheap enough to run on every failure line.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let image = IMAGE_QUOTED
        .captures(text)
        .or_else(|| IMAGE_BARE.captures(text))
        .map(|c| c[1].trim_end_matches([',', '.', ':']).to_string());
    let urls: Vec<&str> = URL
        .find_iter(text)
        .map(|m| m.as_str().trim_end_matches([',', ')', '.']))
        .collect();
    let image = image.or_else(|| urls.iter().find_map(|u| image_from_manifest_url(u)));
    let url = urls
        .last()
        .map(|u| u.split('?').next().unwrap_or(u).to_string());
    let dialled = DIAL.captures_iter(text).last().map(|c| {
        c.get(1)
            .or_else(|| c.get(2))
            .map_or_else(String::new, |m| m.as_str().to_string())
    });
    let registry = image.as_deref().and_then(image_domain).or_else(|| {
        urls.iter()
            .find(|u| u.contains("/v2/") || u.ends_with("/v2"))
            .map(|u| url_host(u))
    });
    Extracted {
        token_request: TOKEN_CONTEXT.is_match(text),
        chain: error_chain(text),
        image,
        registry,
        url,
        dialled,
    }
}

/// The registry part of an image reference that names a path (`a/b`), by Docker's rule
/// ([`super::image_ref::split_domain`]): Docker Hub names give `docker.io`. `None` for a bare
/// name without `/`.
#[must_use]
pub fn image_domain(image: &str) -> Option<String> {
    let (_, rest) = image.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    let (domain, _) = super::image_ref::split_domain(image);
    Some(domain.unwrap_or(super::image_ref::DOCKER_HUB).to_string())
}

/// `https://host:port/v2/<name>/manifests/<ref>` → `host:port/<name>:<ref>` (`@` for digests).
fn image_from_manifest_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let (host, path) = rest.split_once("/v2/")?;
    let (name, reference) = path.split_once("/manifests/")?;
    let reference = reference.split(['?', '#']).next()?;
    if name.is_empty() || reference.is_empty() {
        return None;
    }
    let sep = if reference.contains(':') { '@' } else { ':' };
    Some(format!("{host}/{name}{sep}{reference}"))
}

/// `host[:port]` of a URL.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    host.rsplit_once('@').map_or(host, |(_, h)| h).to_string()
}

/// Split `a: b: "c: d": e` on `": "` outside double quotes.
#[must_use]
pub fn error_chain(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => in_quotes = !in_quotes,
            b':' if !in_quotes && b.get(i + 1) == Some(&b' ') => {
                let seg = text[start..i].trim();
                if !seg.is_empty() {
                    out.push(seg.to_string());
                }
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let seg = text[start..].trim();
    if !seg.is_empty() {
        out.push(seg.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The incident's realm failure: the dial target is the realm, not the registry.
    #[test]
    fn realm_dial() {
        let t = r#"PullImage "172.100.100.9:5050/root/gition/backend:latest" failed error=failed to pull and unpack image "172.100.100.9:5050/root/gition/backend:latest": failed to resolve reference "172.100.100.9:5050/root/gition/backend:latest": failed to authorize: failed to fetch anonymous token: Get "http://192.168.5.8/jwt/auth?scope=repository%3Aroot%2Fgition%2Fbackend%3Apull&service=container_registry": dial tcp 192.168.5.8:80: connect: no route to host"#;
        let e = extract(t);
        assert_eq!(
            e.image.as_deref(),
            Some("172.100.100.9:5050/root/gition/backend:latest")
        );
        assert_eq!(e.registry.as_deref(), Some("172.100.100.9:5050"));
        assert_eq!(e.url.as_deref(), Some("http://192.168.5.8/jwt/auth"));
        assert_eq!(e.dialled.as_deref(), Some("192.168.5.8:80"));
        assert!(e.token_request);
        assert_eq!(e.chain.last().map(String::as_str), Some("no route to host"));
        assert_eq!(
            e.chain[0],
            r#"PullImage "172.100.100.9:5050/root/gition/backend:latest" failed error=failed to pull and unpack image "172.100.100.9:5050/root/gition/backend:latest""#
        );
    }

    /// docker CLI wording and a DNS lookup.
    #[test]
    fn docker_cli() {
        let e = extract(
            "Error response from daemon: Get \"https://registry.example.com:5050/v2/\": dial tcp: lookup registry.example.com on 127.0.0.53:53: no such host",
        );
        assert_eq!(e.registry.as_deref(), Some("registry.example.com:5050"));
        assert_eq!(e.dialled.as_deref(), Some("registry.example.com"));
        assert!(!e.token_request);
        let e = extract(
            "Error response from daemon: manifest for gitlab.example.com:5050/g/p/api:latest not found: manifest unknown: manifest unknown",
        );
        assert_eq!(
            e.image.as_deref(),
            Some("gitlab.example.com:5050/g/p/api:latest")
        );
        let e = extract(
            "pull access denied for foo/bar, repository does not exist or may require 'docker login'",
        );
        assert_eq!(e.image.as_deref(), Some("foo/bar"));
        assert_eq!(e.registry.as_deref(), Some("docker.io"));
    }

    /// containerd's "trying next host" lines name the image only in the manifest URL.
    #[test]
    fn image_from_url() {
        let e = extract(
            r#"trying next host error=failed to do request: Head "https://10.0.0.9:5050/v2/root/gition/backend/manifests/latest": http: server gave HTTP response to HTTPS client host=10.0.0.9:5050"#,
        );
        assert_eq!(
            e.image.as_deref(),
            Some("10.0.0.9:5050/root/gition/backend:latest")
        );
        let e = extract(r#"Head "https://r/v2/a/b/manifests/sha256:abc": EOF"#);
        assert_eq!(e.image.as_deref(), Some("r/a/b@sha256:abc"));
    }

    /// Docker Hub short names and names with a registry.
    #[test]
    fn domains() {
        assert_eq!(image_domain("nginx"), None);
        assert_eq!(
            image_domain("library/nginx:1").as_deref(),
            Some("docker.io")
        );
        assert_eq!(image_domain("localhost/x").as_deref(), Some("localhost"));
        assert_eq!(
            image_domain("10.0.0.1:5000/x:1").as_deref(),
            Some("10.0.0.1:5000")
        );
    }
}
