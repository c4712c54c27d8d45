//! Image references as containerd and docker parse them (distribution's `reference` grammar and
//! its Docker normalisation): `[domain[:port]/]path[:tag][@digest]`, where the first component is
//! a domain only if it has a `.` or a `:`, is `localhost`, or has upper case; Docker Hub names get
//! `docker.io` and, with a single component, `library/`.
//!
//! Every image name pulldoctor compares (workloads, CI pushes, registry listings, log lines) goes
//! through [`ImageRef::parse`] or [`split_domain`], so they agree on what a name means.

use std::fmt;

/// The registry Docker Hub names resolve to.
pub const DOCKER_HUB: &str = "docker.io";
/// The legacy spelling of Docker Hub, normalised to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Prefix of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";
/// distribution's limit on the whole name (domain and path).
const MAX_NAME_LEN: usize = 255;
/// distribution's limit on a tag.
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ImageRef {
    /// Registry `host[:port]` (`docker.io` when the name had none).
    pub domain: String,
    /// Repository path inside the registry (`root/gition/backend`, `library/nginx`).
    pub path: String,
    /// The tag, if written.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if written.
    pub digest: Option<String>,
}

/// Why a string is not an image reference. Messages quote the reference: references are not
/// secret, and the user needs to see which one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// Nothing was given.
    #[error("empty image reference")]
    Empty,
    /// Upper case in the repository path (docker: "repository name must be lowercase").
    #[error(
        "invalid reference format: repository name ({path}) must be lowercase (GitLab lower-cases \
         CI_REGISTRY_IMAGE; the registry only holds '{lower}')"
    )]
    Uppercase {
        /// The path as written.
        path: String,
        /// The path in lower case.
        lower: String,
    },
    /// A character or shape the grammar does not allow, with where.
    #[error("invalid reference format: '{reference}': {why}")]
    Invalid {
        /// The reference as written.
        reference: String,
        /// What is wrong.
        why: String,
    },
}

/// Split a name into its registry and the rest, as Docker does: the part before the first `/` is
/// the registry if it contains `.` or `:`, is `localhost`, or is not all lower case. `None` for
/// the registry means Docker Hub. `index.docker.io` is reported as `docker.io`.
#[must_use]
pub fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            if first == LEGACY_DOCKER_HUB {
                (Some(DOCKER_HUB), rest)
            } else {
                (Some(first), rest)
            }
        }
        _ => (None, name),
    }
}

/// Split `name[:tag][@digest]` without validating: a `:` after the last `/` starts the tag, a
/// `:` before it is a port.
#[must_use]
pub fn split_name_tag_digest(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let (named, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let last_slash = named.rfind('/').map_or(0, |i| i + 1);
    match named[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&named[..at], Some(&named[at + 1..]), digest)
        }
        None => (named, None, digest),
    }
}

impl ImageRef {
    /// Parse and normalise a reference.
    ///
    /// # Errors
    /// [`ImageRefError`] naming what is wrong: empty, upper case in the path, a bad domain, port,
    /// path component, tag or digest, or a name over 255 characters.
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        let invalid = |why: String| ImageRefError::Invalid {
            reference: reference.to_string(),
            why,
        };
        if reference.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if reference.trim() != reference || reference.contains(char::is_whitespace) {
            return Err(invalid("contains whitespace".into()));
        }
        let (name, tag, digest) = split_name_tag_digest(reference);
        if let Some(d) = digest {
            check_digest(d).map_err(invalid)?;
        }
        if let Some(t) = &tag {
            check_tag(t).map_err(invalid)?;
        }
        if name.is_empty() {
            return Err(invalid("no repository name".into()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(invalid(format!(
                "name is {} characters, more than {MAX_NAME_LEN}",
                name.len()
            )));
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) && digest.is_none() {
            return Err(invalid(
                "a 64-character hexadecimal string is an image id, not a name".into(),
            ));
        }
        let (domain, path) = split_domain(name);
        if let Some(d) = domain {
            check_domain(d).map_err(invalid)?;
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageRefError::Uppercase {
                path: path.to_string(),
                lower: path.to_ascii_lowercase(),
            });
        }
        for component in path.split('/') {
            check_path_component(component).map_err(invalid)?;
        }
        let domain = domain.unwrap_or(DOCKER_HUB).to_string();
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_string()
        };
        Ok(ImageRef {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// `domain/path`: the repository, without tag or digest.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag a pull asks for: the written tag, or `latest` when neither tag nor digest is given.
    #[must_use]
    pub fn effective_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// The registry host without the port.
    #[must_use]
    pub fn host(&self) -> &str {
        split_host_port(&self.domain).0
    }

    /// The registry port, if written.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        split_host_port(&self.domain).1
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `host:port` → (`host`, port); `[v6]:port` keeps the brackets on the host.
#[must_use]
pub fn split_host_port(domain: &str) -> (&str, Option<u16>) {
    if let Some(end) = domain.rfind(']') {
        let (host, rest) = domain.split_at(end + 1);
        return (host, rest.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match domain.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (domain, None),
        },
        None => (domain, None),
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = if domain.starts_with('[') {
        let end = domain
            .find(']')
            .ok_or_else(|| format!("registry '{domain}': unclosed '['"))?;
        let inner = &domain[1..end];
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("registry '{domain}': not an IPv6 address"));
        }
        let rest = &domain[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(format!("registry '{domain}': text after ']'")),
        };
        (None, port)
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!("registry host '{host}' is not a valid host name"));
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5)
    {
        return Err(format!("registry port '{port}' is not a number"));
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn check_path_component(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("empty path component (a doubled or trailing '/')".into());
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(format!(
            "path component '{c}' must start and end with a lower-case letter or digit"
        ));
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let dashes = sep.bytes().all(|x| x == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return Err(format!(
                "path component '{c}' has the separator '{sep}' (allowed: '.', '_', '__', dashes)"
            ));
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    match chars.next() {
        None => return Err("empty tag after ':'".into()),
        Some(c) if !word(c) => {
            return Err(format!(
                "tag '{tag}' must start with a letter, digit or '_'"
            ));
        }
        Some(_) => {}
    }
    if !chars.all(|c| word(c) || c == '.' || c == '-') {
        return Err(format!(
            "tag '{tag}' may only hold letters, digits, '_', '.', '-'"
        ));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "tag is {} characters, more than {MAX_TAG_LEN}",
            tag.len()
        ));
    }
    Ok(())
}

/// `algorithm:hex`; sha256 needs exactly 64 lower-case hex digits, others at least 32.
fn check_digest(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(format!("digest '{d}' has no algorithm (expected sha256:…)"));
    };
    if alg.is_empty()
        || !alg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c))
    {
        return Err(format!("digest algorithm '{alg}' is not valid"));
    }
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex_ok
        || (alg == "sha256" && (hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase())))
    {
        return Err(format!(
            "digest '{d}' is not {alg}: followed by its hexadecimal value"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageRef::parse(s).unwrap();
        (r.domain, r.path, r.tag, r.digest)
    }

    /// Docker's normalisation: Hub names, `library/`, registries by `.`, `:` or `localhost`.
    #[test]
    fn normalisation() {
        assert_eq!(
            parsed("nginx"),
            ("docker.io".into(), "library/nginx".into(), None, None)
        );
        assert_eq!(
            parsed("bitnami/redis:7"),
            (
                "docker.io".into(),
                "bitnami/redis".into(),
                Some("7".into()),
                None
            )
        );
        assert_eq!(
            parsed("index.docker.io/nginx").1,
            "library/nginx".to_string()
        );
        assert_eq!(parsed("localhost/app").0, "localhost");
        assert_eq!(parsed("localhost:5000/app").0, "localhost:5000");
        let r = ImageRef::parse("172.100.100.9:5050/root/gition/backend:latest").unwrap();
        assert_eq!(r.domain, "172.100.100.9:5050");
        assert_eq!(r.path, "root/gition/backend");
        assert_eq!(r.host(), "172.100.100.9");
        assert_eq!(r.port(), Some(5050));
        assert_eq!(
            r.to_string(),
            "172.100.100.9:5050/root/gition/backend:latest"
        );
        assert_eq!(r.effective_tag(), Some("latest"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("gitlab.example.com:5050/g/p/api@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.effective_tag(), None);
        assert_eq!(
            ImageRef::parse("a/b").unwrap().effective_tag(),
            Some("latest")
        );
        let r = ImageRef::parse(&format!("r.io/a:v1@{d}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.path.as_str()), (Some("v1"), "a"));
        let r = ImageRef::parse("[::1]:5000/x").unwrap();
        assert_eq!((r.host(), r.port()), ("[::1]", Some(5000)));
    }

    /// Upper case: in the path it is refused (naming the lower-case form); as a first
    /// component it makes a domain, as in distribution.
    #[test]
    fn upper_case() {
        let e = ImageRef::parse("gitlab.example:5050/Root/Gition/backend").unwrap_err();
        assert!(
            matches!(&e, ImageRefError::Uppercase { lower, .. } if lower == "root/gition/backend")
        );
        assert!(e.to_string().contains("must be lowercase"), "{e}");
        assert_eq!(split_domain("Foo/bar"), (Some("Foo"), "bar"));
        assert!(ImageRef::parse("nginx:Latest").is_ok());
    }

    /// Malformed references say what is wrong.
    #[test]
    fn invalid() {
        for (s, needle) in [
            ("", "empty"),
            ("a//b", "empty path component"),
            ("a/b:", "empty tag"),
            ("a/-b", "start and end"),
            ("a/b...c", "separator"),
            ("r.io/a:-x", "must start"),
            ("r.io/a@sha256:abc", "hexadecimal"),
            ("r.io/a@md5", "no algorithm"),
            ("bad_host.io:50x0/a", "registry"),
            ("a b", "whitespace"),
        ] {
            let e = ImageRef::parse(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
        let long = format!("r.io/{}", "a".repeat(300));
        assert!(
            ImageRef::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("255")
        );
        assert!(ImageRef::parse(&"a".repeat(64)).is_err());
    }
}
