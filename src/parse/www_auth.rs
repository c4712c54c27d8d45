//! `WWW-Authenticate` header values (RFC 9110 §11.6.1): the challenges a registry answers a 401
//! with, and the host and port of a Bearer `realm` (the token service the nodes must also reach).
//!
//! Grammar: `1#challenge`, `challenge = scheme [ 1*SP ( token68 / #auth-param ) ]`,
//! `auth-param = token BWS "=" BWS ( token / quoted-string )`. Challenges and their parameters are
//! both comma-separated, so a comma followed by `name =` continues the current challenge and a
//! comma followed by a bare token starts the next one.

/// Longest header value accepted. Real ones are a few hundred bytes and HTTP servers cap whole
/// header blocks at 8–64 KiB; anything longer is not a header someone pasted by accident.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// One challenge: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Challenge {
    /// The scheme as written (`Bearer`, `basic`); compare with [`Challenge::scheme_is`].
    pub scheme: String,
    /// Parameters in order, names lower-cased (names are case-insensitive), values unquoted and
    /// unescaped. A `token68` credential (`Negotiate abc==`) is kept under the empty name, which
    /// no real parameter can have; read it with [`Challenge::token68`].
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// True if the scheme is `scheme`, ignoring ASCII case.
    #[must_use]
    pub fn scheme_is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// `Bearer` (token auth, distribution's `auth.token`).
    #[must_use]
    pub fn is_bearer(&self) -> bool {
        self.scheme_is("bearer")
    }

    /// `Basic` (htpasswd auth, or a proxy in front of the registry).
    #[must_use]
    pub fn is_basic(&self) -> bool {
        self.scheme_is("basic")
    }

    /// The first value of parameter `name` (case-insensitive). RFC 9110 forbids repeating a
    /// name, so the first is the one a client would use.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        if name.is_empty() {
            return None;
        }
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `realm`: for Bearer the token service URL (GitLab: `external_url` + `/jwt/auth`).
    #[must_use]
    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }

    /// `service`: what the token is for (GitLab: `container_registry`).
    #[must_use]
    pub fn service(&self) -> Option<&str> {
        self.param("service")
    }

    /// `scope`: the access the registry wants (`repository:group/app:pull`), present when the
    /// request named a resource.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.param("scope")
    }

    /// The scopes in `scope`, which may hold several separated by spaces.
    #[must_use]
    pub fn scopes(&self) -> Vec<&str> {
        self.scope()
            .map(|s| s.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    /// `error`: `invalid_token` (bad or expired token) or `insufficient_scope` (valid token
    /// lacking the action — with GitLab also a project that does not exist).
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }

    /// The `token68` credential after the scheme, if the challenge had one instead of parameters.
    #[must_use]
    pub fn token68(&self) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Why a header value could not be read. Messages name a byte offset, never the value itself
/// (a pasted header may sit next to credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WwwAuthError {
    /// Nothing but whitespace and commas.
    #[error("WWW-Authenticate: empty header value")]
    Empty,
    /// Longer than [`MAX_HEADER_LEN`].
    #[error("WWW-Authenticate: header value is {len} bytes, longer than {MAX_HEADER_LEN}")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// The grammar was broken at `offset`.
    #[error("WWW-Authenticate: {message} at byte {offset}")]
    Syntax {
        /// Byte offset into the header value.
        offset: usize,
        /// What was expected.
        message: &'static str,
    },
}

/// Parse a `WWW-Authenticate` header value (without the `WWW-Authenticate:` name; a leading
/// name is tolerated since people paste whole lines) into its challenges, in order.
///
/// # Errors
/// [`WwwAuthError`] if the value is empty, too long or not a challenge list.
pub fn parse(header: &str) -> Result<Vec<Challenge>, WwwAuthError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(WwwAuthError::TooLong { len: header.len() });
    }
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    p.skip_ows();
    // `WWW-Authenticate: Bearer …` pasted from `curl -v`: skip the field name.
    let name = b"www-authenticate:";
    if p.s.len() >= p.i + name.len() && p.s[p.i..p.i + name.len()].eq_ignore_ascii_case(name) {
        p.i += name.len();
    }
    let mut out = Vec::new();
    loop {
        p.skip_ows_and_commas();
        if p.eof() {
            break;
        }
        let start = p.i;
        let scheme = p
            .token()
            .ok_or_else(|| p.err("expected an authentication scheme"))?;
        let mut ch = Challenge {
            scheme: scheme.to_string(),
            params: Vec::new(),
        };
        let spaced = p.skip_ows() > 0;
        if !p.eof() && p.peek() != Some(b',') {
            if !spaced {
                return Err(p.err("expected a space after the scheme"));
            }
            // Basic and Bearer challenges always carry parameters; reading `realm=` as a
            // token68 would hide a truncated header.
            let params_only = ch.is_bearer() || ch.is_basic();
            if let Some(t68) = if params_only { None } else { p.token68() } {
                ch.params.push((String::new(), t68.to_string()));
            } else {
                let param = p.param()?;
                ch.params.push(param);
            }
        }
        // Further parameters: `, name = value`; a comma before anything else ends this challenge.
        loop {
            p.skip_ows();
            if p.eof() {
                break;
            }
            if p.peek() != Some(b',') {
                return Err(p.err("expected ',' between parameters"));
            }
            p.skip_ows_and_commas();
            if p.eof() || !p.param_ahead() {
                break;
            }
            let param = p.param()?;
            ch.params.push(param);
        }
        debug_assert!(p.i > start);
        out.push(ch);
    }
    if out.is_empty() {
        return Err(WwwAuthError::Empty);
    }
    Ok(out)
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token68` characters, without the trailing `=` padding.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, message: &'static str) -> WwwAuthError {
        WwwAuthError::Syntax {
            offset: self.i,
            message,
        }
    }

    /// Skip spaces and tabs; returns how many.
    fn skip_ows(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i - start
    }

    /// Skip list separators, empty elements included (`a, , b` is legal).
    fn skip_ows_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// The slice `[from, to)` as text. The parser only ever stops on ASCII bytes, so the
    /// boundaries are character boundaries; the fallback keeps that an invariant, not a panic.
    fn text(&self, from: usize, to: usize) -> &'a str {
        std::str::from_utf8(self.s.get(from..to).unwrap_or_default()).unwrap_or_default()
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| self.text(start, self.i))
    }

    /// A `token68` that is the whole rest of the challenge; restores the position otherwise.
    fn token68(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_token68_char) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        let end = self.i;
        self.skip_ows();
        if self.eof() || self.peek() == Some(b',') {
            return Some(self.text(start, end));
        }
        self.i = start;
        None
    }

    /// Whether `token BWS "="` follows, i.e. a parameter rather than the next challenge's scheme.
    fn param_ahead(&mut self) -> bool {
        let start = self.i;
        let ahead = self.token().is_some() && {
            self.skip_ows();
            self.peek() == Some(b'=')
        };
        self.i = start;
        ahead
    }

    fn param(&mut self) -> Result<(String, String), WwwAuthError> {
        let name = self
            .token()
            .ok_or_else(|| self.err("expected a parameter name"))?
            .to_ascii_lowercase();
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Err(self.err("expected '=' after the parameter name"));
        }
        self.i += 1;
        self.skip_ows();
        let value = match self.peek() {
            Some(b'"') => self.quoted()?,
            _ => self.bare_value()?,
        };
        Ok((name, value))
    }

    /// A quoted-string: `\` escapes the next character; control characters other than tab are
    /// not allowed; non-ASCII text (obs-text) is kept.
    fn quoted(&mut self) -> Result<String, WwwAuthError> {
        let open = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(WwwAuthError::Syntax {
                        offset: open,
                        message: "unterminated quoted string",
                    });
                }
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) if b != b'\t' && b.is_ascii_control() => {
                            return Err(self.err("control character in quoted string"));
                        }
                        Some(b) => {
                            out.push(b);
                            self.i += 1;
                        }
                        None => {
                            return Err(WwwAuthError::Syntax {
                                offset: open,
                                message: "unterminated quoted string",
                            });
                        }
                    }
                }
                Some(b) if b != b'\t' && b.is_ascii_control() => {
                    return Err(self.err("control character in quoted string"));
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        // An escape can split a multi-byte character only if the input was not UTF-8 to begin
        // with, which a `&str` cannot be; stay total anyway.
        String::from_utf8(out).map_err(|_| WwwAuthError::Syntax {
            offset: open,
            message: "quoted string is not UTF-8",
        })
    }

    /// An unquoted value. The grammar says `token`, but servers and proxies send unquoted
    /// URLs (`realm=https://host/token`), so any visible ASCII except `"` and `,` is accepted.
    fn bare_value(&mut self) -> Result<String, WwwAuthError> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_graphic() && b != b'"' && b != b',')
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("expected a parameter value"));
        }
        Ok(self.text(start, self.i).to_string())
    }
}

/// The host and port a `realm` URL dials: `http` → 80, `https` → 443 unless a port is given.
/// The host is lower-cased; an IPv6 literal is given without its brackets, ready for a
/// `(host, port)` socket address. `None` if the realm is not an absolute http(s) URL.
#[must_use]
pub fn realm_host_port(realm: &str) -> Option<(String, u16)> {
    let realm = realm.trim();
    let (scheme, rest) = realm.split_once("://")?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // userinfo (`user:pass@host`) is legal in a URL and never part of the address.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (ip, after) = inner.split_once(']')?;
        if ip.is_empty()
            || !ip.contains(':')
            || !ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (ip, port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return None;
    }
    let port = match port {
        // `host:` with an empty port means the default (RFC 3986 §3.2.3).
        None | Some("") => default_port,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        },
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let mut v = parse(header).unwrap_or_else(|e| panic!("{header:?}: {e}"));
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    fn syntax(header: &str) -> &'static str {
        match parse(header) {
            Err(WwwAuthError::Syntax { message, .. }) => message,
            other => panic!("{header:?}: expected a syntax error, got {other:?}"),
        }
    }

    /// GitLab's registry (distribution fork), as `curl -v` shows it in the lab.
    #[test]
    fn gitlab_challenge() {
        let c = one(
            r#"Bearer realm="http://192.168.5.8/jwt/auth",service="container_registry",scope="repository:root/gition/backend:pull""#,
        );
        assert!(c.is_bearer());
        assert_eq!(c.realm(), Some("http://192.168.5.8/jwt/auth"));
        assert_eq!(c.service(), Some("container_registry"));
        assert_eq!(c.scope(), Some("repository:root/gition/backend:pull"));
        assert_eq!(c.scopes(), vec!["repository:root/gition/backend:pull"]);
        assert_eq!(c.error(), None);
        assert_eq!(
            realm_host_port(c.realm().unwrap_or_default()),
            Some(("192.168.5.8".to_string(), 80))
        );
    }

    /// distribution's `accesscontroller.go` with a valid token lacking the action.
    #[test]
    fn insufficient_scope() {
        let c = one(
            r#"Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry",scope="repository:group/app:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(c.error(), Some("insufficient_scope"));
        // the comma inside the quotes belongs to the scope
        assert_eq!(c.scope(), Some("repository:group/app:pull,push"));
        assert_eq!(c.params.len(), 4);
    }

    #[test]
    fn docker_hub() {
        let c = one(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#);
        assert_eq!(c.realm(), Some("https://auth.docker.io/token"));
        assert_eq!(c.service(), Some("registry.docker.io"));
        assert_eq!(c.scope(), None);
        assert_eq!(
            realm_host_port("https://auth.docker.io/token"),
            Some(("auth.docker.io".to_string(), 443))
        );
    }

    #[test]
    fn basic_and_case_insensitivity() {
        let c = one(r#"basic REALM="Registry Realm""#);
        assert!(c.is_basic());
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.realm(), Some("Registry Realm"));
        assert_eq!(c.param("Realm"), Some("Registry Realm"));
        assert_eq!(c.params[0].0, "realm");
        let c = one(r#"BEARER Realm="x""#);
        assert!(c.is_bearer());
    }

    #[test]
    fn several_challenges() {
        let v =
            parse(r#"Bearer realm="https://a/token", service="a", Basic realm="b, c", Negotiate"#)
                .unwrap_or_default();
        assert_eq!(v.len(), 3, "{v:?}");
        assert_eq!(v[0].service(), Some("a"));
        assert_eq!(v[1].realm(), Some("b, c"));
        assert!(v[2].scheme_is("negotiate"));
        assert!(v[2].params.is_empty());
    }

    #[test]
    fn bare_schemes_and_empty_elements() {
        let v = parse("Negotiate, , NTLM").unwrap_or_default();
        assert_eq!(
            v.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["Negotiate", "NTLM"]
        );
        let v = parse(r#", Basic realm="r",, "#).unwrap_or_default();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].realm(), Some("r"));
    }

    #[test]
    fn token68() {
        let v = parse(r#"Negotiate YII+/abc==, Basic realm="x""#).unwrap_or_default();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].token68(), Some("YII+/abc=="));
        assert_eq!(v[0].param(""), None);
        assert_eq!(v[1].realm(), Some("x"));
    }

    #[test]
    fn escapes_and_whitespace() {
        let c = one(
            "Bearer  realm = \"a \\\"quoted\\\" \\\\ realm\" ,\tservice=\"s\" , error = invalid_token ",
        );
        assert_eq!(c.realm(), Some(r#"a "quoted" \ realm"#));
        assert_eq!(c.service(), Some("s"));
        assert_eq!(c.error(), Some("invalid_token"));
    }

    #[test]
    fn unquoted_values() {
        let c = one("Bearer realm=https://h:5001/auth,service=registry,scope=repository:a/b:pull");
        assert_eq!(c.realm(), Some("https://h:5001/auth"));
        assert_eq!(c.service(), Some("registry"));
        assert_eq!(c.scope(), Some("repository:a/b:pull"));
    }

    #[test]
    fn empty_quoted_value_and_utf8() {
        let c = one(r#"Basic realm="", charset="UTF-8", x="Grüße""#);
        assert_eq!(c.realm(), Some(""));
        assert_eq!(c.param("x"), Some("Grüße"));
    }

    #[test]
    fn multiple_scopes() {
        let c = one(r#"Bearer realm="r",scope="repository:a:pull repository:b:pull,push""#);
        assert_eq!(
            c.scopes(),
            vec!["repository:a:pull", "repository:b:pull,push"]
        );
    }

    #[test]
    fn pasted_with_field_name() {
        let c = one(
            r#"WWW-Authenticate: Bearer realm="https://r/jwt/auth",service="container_registry""#,
        );
        assert_eq!(c.service(), Some("container_registry"));
        let c = one(r#"www-authenticate:Basic realm="x""#);
        assert!(c.is_basic());
    }

    #[test]
    fn duplicate_param_first_wins() {
        let c = one(r#"Bearer realm="first", realm="second""#);
        assert_eq!(c.realm(), Some("first"));
        assert_eq!(c.params.len(), 2);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(WwwAuthError::Empty));
        assert_eq!(parse("   "), Err(WwwAuthError::Empty));
        assert_eq!(parse(" , ,"), Err(WwwAuthError::Empty));
        assert_eq!(
            syntax(r#"Bearer realm="http://x/jwt/auth"#),
            "unterminated quoted string"
        );
        assert_eq!(
            syntax(r#"Bearer realm="abc\"#),
            "unterminated quoted string"
        );
        assert_eq!(syntax("Bearer realm="), "expected a parameter value");
        assert_eq!(
            syntax("Bearer realm=,service=x"),
            "expected a parameter value"
        );
        assert_eq!(
            syntax(r#"Bearer realm="a" service="b""#),
            "expected ',' between parameters"
        );
        assert_eq!(syntax(r#"Bearer="x""#), "expected a space after the scheme");
        assert_eq!(
            syntax(r#""Bearer" realm="x""#),
            "expected an authentication scheme"
        );
        assert_eq!(
            syntax("Bearer realm=\"a\nb\""),
            "control character in quoted string"
        );
        assert_eq!(
            syntax("Bearer realm=\"a\\\u{7}\""),
            "control character in quoted string"
        );
        assert_eq!(
            syntax("Bearer realm x"),
            "expected '=' after the parameter name"
        );
        assert!(matches!(
            parse("Bearer realm=\"x\"\u{0}"),
            Err(WwwAuthError::Syntax { .. })
        ));
        assert!(matches!(
            parse("Bearer realm=ünïcode"),
            Err(WwwAuthError::Syntax { .. })
        ));
        assert!(matches!(
            parse("Bearer realm=\"x\",\u{1}"),
            Err(WwwAuthError::Syntax { .. })
        ));
    }

    #[test]
    fn error_offsets_and_messages_do_not_echo_input() {
        let e = parse(r#"Bearer realm="secret-value"#).err();
        assert_eq!(
            e,
            Some(WwwAuthError::Syntax {
                offset: 13,
                message: "unterminated quoted string"
            })
        );
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(!msg.contains("secret-value"), "{msg}");
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: Vec<String> = vec![
            "\u{0}\u{1}\u{2}".into(),
            "\u{fffd}\u{fffd}".into(),
            "=".into(),
            "==,==".into(),
            "\"".into(),
            "\\".into(),
            "Bearer \\".into(),
            "Bearer ,=".into(),
            "Bearer a=\"".into(),
            "Bearer a=\"\\".into(),
            "日本語 realm=\"x\"".into(),
            "Bearer realm=\"日本\u{0}\"".into(),
        ];
        for s in &inputs {
            let _ = parse(s);
        }
        // every byte-boundary prefix of a real header
        let real = r#"Bearer realm="http://192.168.5.8/jwt/auth",service="container_registry",scope="repository:root/gition/backend:pull",error="insufficient_scope""#;
        for i in 0..=real.len() {
            let _ = parse(&real[..i]);
        }
        assert!(parse("\u{0}\u{1}\u{2}").is_err());
        assert!(parse("\u{fffd}").is_err());
    }

    #[test]
    fn one_megabyte() {
        let big = "a".repeat(1 << 20);
        assert_eq!(parse(&big), Err(WwwAuthError::TooLong { len: 1 << 20 }));
        let big = format!("Bearer realm=\"{}", "x".repeat(1 << 20));
        assert!(matches!(parse(&big), Err(WwwAuthError::TooLong { .. })));
        // just under the cap: parsed, and quickly
        let near = format!("Bearer realm=\"{}\"", "x".repeat(MAX_HEADER_LEN - 20));
        assert_eq!(one(&near).realm().map(str::len), Some(MAX_HEADER_LEN - 20));
        let commas = ",".repeat(MAX_HEADER_LEN);
        assert_eq!(parse(&commas), Err(WwwAuthError::Empty));
    }

    #[test]
    fn realm_ports() {
        let hp = |s: &str| realm_host_port(s);
        assert_eq!(
            hp("http://192.168.5.8/jwt/auth"),
            Some(("192.168.5.8".into(), 80))
        );
        assert_eq!(
            hp("https://GitLab.Example.com/jwt/auth"),
            Some(("gitlab.example.com".into(), 443))
        );
        assert_eq!(
            hp("HTTPS://gitlab.example.com:8443/jwt/auth"),
            Some(("gitlab.example.com".into(), 8443))
        );
        assert_eq!(
            hp("http://gitlab.example.com:5050"),
            Some(("gitlab.example.com".into(), 5050))
        );
        assert_eq!(
            hp("https://gitlab.example.com?x=1"),
            Some(("gitlab.example.com".into(), 443))
        );
        assert_eq!(
            hp("https://gitlab.example.com:/jwt/auth"),
            Some(("gitlab.example.com".into(), 443))
        );
        assert_eq!(
            hp("https://user:pw@gitlab.example.com:444/jwt"),
            Some(("gitlab.example.com".into(), 444))
        );
        assert_eq!(hp("  https://h/  "), Some(("h".into(), 443)));
    }

    #[test]
    fn realm_ipv6() {
        let hp = |s: &str| realm_host_port(s);
        assert_eq!(
            hp("https://[2001:db8::1]/token"),
            Some(("2001:db8::1".into(), 443))
        );
        assert_eq!(hp("http://[::1]:8080/jwt/auth"), Some(("::1".into(), 8080)));
        assert_eq!(
            hp("http://[::ffff:192.168.5.8]:80"),
            Some(("::ffff:192.168.5.8".into(), 80))
        );
        assert_eq!(hp("http://[::1"), None);
        assert_eq!(hp("http://[::1]x"), None);
        assert_eq!(hp("http://[]/"), None);
        assert_eq!(hp("http://[zz::1]/"), None);
        assert_eq!(hp("http://::1/"), None);
    }

    #[test]
    fn realm_rejects() {
        for bad in [
            "",
            "/jwt/auth",
            "gitlab.example.com/jwt/auth",
            "ftp://host/x",
            "https://",
            "https:///path",
            "https://host:99999/",
            "https://host:0/",
            "https://host:8o/",
            "https://host:-1/",
            "https://ho st/",
            "https://hóst/",
            "https://host:80:80/",
        ] {
            assert_eq!(realm_host_port(bad), None, "{bad:?}");
        }
        let big = format!("https://{}", "a".repeat(1 << 20));
        assert!(realm_host_port(&big).is_some_and(|(h, p)| h.len() == 1 << 20 && p == 443));
    }
}
