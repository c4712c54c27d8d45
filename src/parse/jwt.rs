//! Registry bearer tokens (JWS compact JWTs), decoded but NOT verified: what a token service
//! granted, read from the `access` claim, so a 200 from GitLab's `/jwt/auth` with an empty grant
//! is told apart from a real one (DOMAIN.md §3.2).
//!
//! Also the base64 decoder the parsers share: standard and URL-safe alphabets, padded or not.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest token accepted. GitLab tokens are 1–2 KiB; a token naming hundreds of repositories
/// stays far below this.
pub const MAX_TOKEN_LEN: usize = 256 * 1024;

/// One grant of the `access` claim (distribution's `ResourceActions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `repository`, `registry` (`catalog`), …
    #[serde(rename = "type", default)]
    pub type_: String,
    /// The repository path (`group/project/image`), or `catalog`.
    #[serde(default)]
    pub name: String,
    /// Granted actions: `pull`, `push`, `delete`, `*`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub actions: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// A decoded token. Nothing here is verified: the signature is not checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Jwt {
    /// The JOSE header (`alg`, `typ`, `kid`, …).
    pub header: Map<String, Value>,
    /// The claims, all of them.
    pub payload: Map<String, Value>,
    /// `iss`: GitLab's `registry_issuer` (default `omnibus-gitlab-issuer`); the registry rejects
    /// tokens whose issuer differs from its `auth.token.issuer`.
    pub iss: Option<String>,
    /// `aud`, a string or an array (normalised to a list): the registry's `service`.
    pub aud: Vec<String>,
    /// `sub`: the user the token was issued to (empty or absent for anonymous).
    pub sub: Option<String>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<i64>,
    /// `nbf`, seconds since the epoch.
    pub nbf: Option<i64>,
    /// `iat`, seconds since the epoch.
    pub iat: Option<i64>,
    /// `access`: what was granted; empty when the claim is absent or `null`.
    pub access: Vec<Access>,
}

impl Jwt {
    /// `alg` from the header.
    #[must_use]
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// True if the `access` claim grants `action` (or `*`) on repository `repo`. Names compare
    /// exactly, as the registry compares them: GitLab paths are lower-cased (`CI_REGISTRY_IMAGE`),
    /// and a request for `Group/App` is a different repository.
    #[must_use]
    pub fn grants(&self, repo: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.type_ == "repository"
                && a.name == repo
                && a.actions.iter().any(|x| x == action || x == "*")
        })
    }

    /// True if `exp` is at or before `now` (seconds since the epoch).
    #[must_use]
    pub fn expired_at(&self, now: i64) -> bool {
        self.exp.is_some_and(|exp| exp <= now)
    }

    /// True if `nbf` is after `now`: a clock skew between GitLab and the registry shows as this.
    #[must_use]
    pub fn not_yet_valid_at(&self, now: i64) -> bool {
        self.nbf.is_some_and(|nbf| nbf > now)
    }
}

/// Which part of the token an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The JOSE header.
    Header,
    /// The claims.
    Payload,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
        })
    }
}

/// Why a token could not be decoded. Messages never contain the token or any part of it: a
/// token is a credential until it expires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Nothing to decode.
    #[error("JWT: empty token")]
    Empty,
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("JWT: token is {len} bytes, longer than {MAX_TOKEN_LEN}")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// Not three dot-separated segments.
    #[error("JWT: expected 3 dot-separated segments, found {found}{hint}", hint = if *found == 5 { " (an encrypted JWE, which cannot be read)" } else { "" })]
    Segments {
        /// How many there were.
        found: usize,
    },
    /// A segment is not base64url.
    #[error("JWT: {part} is not base64url ({reason} at character {offset})")]
    Base64 {
        /// Which segment.
        part: Part,
        /// Character offset inside the segment.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A segment is not JSON.
    #[error("JWT: {part} is not JSON ({category} at line {line}, column {column})")]
    Json {
        /// Which segment.
        part: Part,
        /// serde_json's category: `syntax`, `eof`, `data`, `io`.
        category: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A segment is JSON but not an object.
    #[error("JWT: {part} is not a JSON object")]
    NotObject {
        /// Which segment.
        part: Part,
    },
    /// A registered claim has the wrong type.
    #[error("JWT: claim `{claim}` should be {expected}")]
    Claim {
        /// The claim name.
        claim: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
}

/// Decode `token` (surrounding whitespace and a `Bearer ` prefix are tolerated) without
/// verifying its signature.
///
/// # Errors
/// [`JwtError`] when it is not a readable JWS compact token or a registered claim has the wrong
/// type.
pub fn decode(token: &str) -> Result<Jwt, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLong { len: token.len() });
    }
    let mut token = token.trim_start();
    if let Some(rest) = token
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .and_then(|_| token.get(7..))
    {
        token = rest;
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(JwtError::Empty);
    }
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(JwtError::Segments {
            found: segments.len(),
        });
    }
    let header = object(segments[0], Part::Header)?;
    let payload = object(segments[1], Part::Payload)?;
    // The signature is not verified, so it is not decoded either; an empty one (`alg: none`)
    // is fine for reading claims.

    let iss = string_claim(&payload, "iss")?;
    let sub = string_claim(&payload, "sub")?;
    let aud = match payload.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(JwtError::Claim {
                claim: "aud",
                expected: "a string or an array of strings",
            })?,
        Some(_) => {
            return Err(JwtError::Claim {
                claim: "aud",
                expected: "a string or an array of strings",
            });
        }
    };
    let exp = numeric_date(&payload, "exp")?;
    let nbf = numeric_date(&payload, "nbf")?;
    let iat = numeric_date(&payload, "iat")?;
    let access = match payload.get("access") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => Vec::<Access>::deserialize(v).map_err(|_| JwtError::Claim {
            claim: "access",
            expected: "an array of {type, name, actions} objects",
        })?,
    };
    Ok(Jwt {
        header,
        payload,
        iss,
        aud,
        sub,
        exp,
        nbf,
        iat,
        access,
    })
}

fn object(segment: &str, part: Part) -> Result<Map<String, Value>, JwtError> {
    let bytes = base64_decode(segment).map_err(|e| JwtError::Base64 {
        part,
        offset: e.offset,
        reason: e.reason,
    })?;
    // serde_json's own messages can quote the input ("invalid type: string \"…\""), so only its
    // position and category are kept.
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| JwtError::Json {
        part,
        category: super::json_error_category(&e),
        line: e.line(),
        column: e.column(),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JwtError::NotObject { part }),
    }
}

fn string_claim(
    payload: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, JwtError> {
    match payload.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::Claim {
            claim,
            expected: "a string",
        }),
    }
}

/// RFC 7519 NumericDate: seconds since the epoch, possibly fractional (truncated here).
fn numeric_date(
    payload: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, JwtError> {
    let bad = JwtError::Claim {
        claim,
        expected: "a number of seconds since the epoch",
    };
    match payload.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                match n.as_f64() {
                    // i64's range as f64: larger values saturate in `as`, so reject them here.
                    #[allow(clippy::cast_possible_truncation)]
                    Some(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(Some(f.trunc() as i64)),
                    _ => Err(bad),
                }
            }
        }
        Some(_) => Err(bad),
    }
}

/// Why base64 text could not be decoded. Carries a position, never the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at character {offset}")]
pub struct Base64Error {
    /// Byte offset of the offending character.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// Decode base64 in either alphabet (`+/` standard, `-_` URL-safe, even mixed), with or without
/// `=` padding. No whitespace is allowed: callers that accept wrapped text remove it first.
/// Non-zero bits left over in the last character are ignored, as most decoders do.
///
/// # Errors
/// [`Base64Error`] for a character outside both alphabets, padding in the middle or too much of
/// it, or a length no encoder produces.
pub fn base64_decode(input: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = input.as_bytes();
    let body_len = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let pad = bytes.len() - body_len;
    let mut out = Vec::with_capacity(body_len / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (i, &b) in bytes[..body_len].iter().enumerate() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                return Err(Base64Error {
                    offset: i,
                    reason: "padding before the end",
                });
            }
            _ => {
                return Err(Base64Error {
                    offset: i,
                    reason: "character outside the base64 alphabets",
                });
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    if body_len % 4 == 1 {
        return Err(Base64Error {
            offset: body_len.saturating_sub(1),
            reason: "truncated input (length leaves a lone character)",
        });
    }
    if pad > 0 && (pad > 2 || !(body_len + pad).is_multiple_of(4)) {
        return Err(Base64Error {
            offset: body_len,
            reason: "wrong amount of padding",
        });
    }
    Ok(out)
}

/// Base64-encode: URL-safe without padding (JWTs), or standard with padding (HTTP Basic
/// credentials, Kubernetes Secret data re-encoded after masking for a bundle).
#[must_use]
pub fn base64_encode(data: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if !url_safe {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Base64url without padding, the way JWTs are written.
    fn b64url(data: &[u8]) -> String {
        base64_encode(data, true)
    }

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            b64url(header.as_bytes()),
            b64url(payload.as_bytes())
        )
    }

    const HEADER: &str = r#"{"typ":"JWT","alg":"RS256","kid":"ABCD:EFGH"}"#;

    /// The shape GitLab's `Auth::ContainerRegistryAuthenticationService` issues.
    fn gitlab_payload(access: &str) -> String {
        format!(
            r#"{{"jti":"5d2a…","aud":"container_registry","iss":"omnibus-gitlab-issuer","iat":1772360000,"nbf":1772359995,"exp":1772360300,"sub":"root","access":{access}}}"#
        )
    }

    #[test]
    fn gitlab_token_with_grant() {
        let t = token(
            HEADER,
            &gitlab_payload(
                r#"[{"type":"repository","name":"root/gition/backend","actions":["pull"],"meta":{"project_path":"root/gition"}}]"#,
            ),
        );
        let jwt = decode(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jwt.alg(), Some("RS256"));
        assert_eq!(jwt.iss.as_deref(), Some("omnibus-gitlab-issuer"));
        assert_eq!(jwt.aud, vec!["container_registry"]);
        assert_eq!(jwt.sub.as_deref(), Some("root"));
        assert_eq!(jwt.iat, Some(1_772_360_000));
        assert_eq!(jwt.nbf, Some(1_772_359_995));
        assert_eq!(jwt.exp, Some(1_772_360_300));
        assert_eq!(
            jwt.access,
            vec![Access {
                type_: "repository".into(),
                name: "root/gition/backend".into(),
                actions: vec!["pull".into()],
            }]
        );
        assert!(jwt.grants("root/gition/backend", "pull"));
        assert!(!jwt.grants("root/gition/backend", "push"));
        assert!(!jwt.grants("root/gition/Backend", "pull"));
        assert!(!jwt.grants("root/gition", "pull"));
        assert!(jwt.payload.contains_key("jti"));
        assert!(!jwt.expired_at(1_772_360_299));
        assert!(jwt.expired_at(1_772_360_300));
        assert!(jwt.not_yet_valid_at(1_772_359_990));
        assert!(!jwt.not_yet_valid_at(1_772_359_995));
    }

    /// §3.2: a user without access still gets 200 and a token, with `access: []`.
    #[test]
    fn gitlab_token_with_empty_grant() {
        let jwt = decode(&token(HEADER, &gitlab_payload("[]"))).unwrap_or_else(|e| panic!("{e}"));
        assert!(jwt.access.is_empty());
        assert!(!jwt.grants("root/gition/backend", "pull"));
    }

    #[test]
    fn wildcard_and_other_types() {
        let p = r#"{"access":[{"type":"registry","name":"catalog","actions":["*"]},{"type":"repository","name":"a/b","actions":["*"]},{"type":"repository","name":"c","actions":null},{"type":"repository","name":"d"}]}"#;
        let jwt = decode(&token(HEADER, p)).unwrap_or_else(|e| panic!("{e}"));
        assert!(jwt.grants("a/b", "push"));
        assert!(jwt.grants("a/b", "delete"));
        assert!(!jwt.grants("catalog", "pull"));
        assert!(!jwt.grants("c", "pull"));
        assert!(jwt.access[3].actions.is_empty());
    }

    #[test]
    fn aud_forms_and_missing_claims() {
        let jwt = decode(&token(HEADER, r#"{"aud":["a","b"]}"#)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jwt.aud, vec!["a", "b"]);
        let jwt = decode(&token(HEADER, "{}")).unwrap_or_else(|e| panic!("{e}"));
        assert!(jwt.aud.is_empty() && jwt.access.is_empty());
        assert!(jwt.iss.is_none() && jwt.sub.is_none());
        assert_eq!((jwt.exp, jwt.nbf, jwt.iat), (None, None, None));
        assert!(!jwt.expired_at(i64::MAX));
        let jwt = decode(&token(HEADER, r#"{"access":null,"aud":null,"sub":""}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jwt.sub.as_deref(), Some(""));
    }

    #[test]
    fn fractional_and_bad_dates() {
        let jwt =
            decode(&token(HEADER, r#"{"exp":1772360300.75}"#)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jwt.exp, Some(1_772_360_300));
        for p in [
            r#"{"exp":"tomorrow"}"#,
            r#"{"exp":1e300}"#,
            r#"{"iat":true}"#,
            r#"{"nbf":[1]}"#,
        ] {
            assert!(
                matches!(decode(&token(HEADER, p)), Err(JwtError::Claim { .. })),
                "{p}"
            );
        }
        assert!(matches!(
            decode(&token(HEADER, r#"{"exp":18446744073709551615}"#)),
            Err(JwtError::Claim { claim: "exp", .. })
        ));
    }

    #[test]
    fn bad_claim_types() {
        for (p, claim) in [
            (r#"{"iss":1}"#, "iss"),
            (r#"{"sub":{}}"#, "sub"),
            (r#"{"aud":1}"#, "aud"),
            (r#"{"aud":["a",1]}"#, "aud"),
            (r#"{"access":{}}"#, "access"),
            (r#"{"access":[{"type":1}]}"#, "access"),
            (r#"{"access":[{"actions":"pull"}]}"#, "access"),
        ] {
            match decode(&token(HEADER, p)) {
                Err(JwtError::Claim { claim: c, .. }) => assert_eq!(c, claim, "{p}"),
                other => panic!("{p}: {other:?}"),
            }
        }
    }

    #[test]
    fn tolerated_wrapping() {
        let t = token(HEADER, r#"{"sub":"x"}"#);
        for wrapped in [
            format!("  {t}\n"),
            format!("Bearer {t}"),
            format!("bearer   {t}"),
        ] {
            assert_eq!(
                decode(&wrapped).ok().and_then(|j| j.sub),
                Some("x".to_string())
            );
        }
        // alg none: empty signature
        let unsigned = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(b"{}"));
        assert_eq!(
            decode(&unsigned)
                .ok()
                .and_then(|j| j.alg().map(str::to_string)),
            Some("none".into())
        );
    }

    #[test]
    fn structural_errors() {
        assert_eq!(decode(""), Err(JwtError::Empty));
        assert_eq!(decode("  \n"), Err(JwtError::Empty));
        assert_eq!(decode("Bearer "), Err(JwtError::Empty));
        assert_eq!(decode("abc"), Err(JwtError::Segments { found: 1 }));
        assert_eq!(decode("a.b"), Err(JwtError::Segments { found: 2 }));
        assert_eq!(decode("a.b.c.d.e"), Err(JwtError::Segments { found: 5 }));
        assert!(
            decode("a.b.c.d.e")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("JWE")
        );
        assert!(matches!(
            decode("..."),
            Err(JwtError::Segments { found: 4 })
        ));
        assert!(matches!(
            decode(".."),
            Err(JwtError::Json {
                part: Part::Header,
                ..
            })
        ));
        assert!(matches!(
            decode("!!.e30.x"),
            Err(JwtError::Base64 {
                part: Part::Header,
                offset: 0,
                ..
            })
        ));
        assert!(matches!(
            decode(&format!("{}.e30*.x", b64url(HEADER.as_bytes()))),
            Err(JwtError::Base64 {
                part: Part::Payload,
                offset: 3,
                ..
            })
        ));
        // JSON, but not an object
        assert!(matches!(
            decode(&token("[]", "{}")),
            Err(JwtError::NotObject { part: Part::Header })
        ));
        assert!(matches!(
            decode(&token(HEADER, "\"s\"")),
            Err(JwtError::NotObject {
                part: Part::Payload
            })
        ));
        assert!(matches!(
            decode(&token(HEADER, "{\"a\":")),
            Err(JwtError::Json {
                part: Part::Payload,
                ..
            })
        ));
        assert!(matches!(
            decode(&token(HEADER, "\u{0}\u{1}")),
            Err(JwtError::Json { .. })
        ));
        // valid base64 of bytes that are not UTF-8
        assert!(matches!(
            decode(&format!(
                "{}.{}.x",
                b64url(HEADER.as_bytes()),
                b64url(&[0xff, 0xfe, 0x7b])
            )),
            Err(JwtError::Json { .. })
        ));
    }

    /// An error message must not leak the token or its decoded content.
    #[test]
    fn errors_do_not_echo_the_token() {
        let secretish = "glpat-SECRETSECRETSECRET";
        let cases = [
            secretish.to_string(),
            format!("{secretish}.{secretish}"),
            format!("{}.{secretish}!.sig", b64url(HEADER.as_bytes())),
            token(HEADER, &format!(r#"{{"exp":"{secretish}"}}"#)),
            token(HEADER, &format!(r#"{{"access":"{secretish}"}}"#)),
            token(HEADER, &format!(r#"{{"{secretish}":"#)),
            token(&format!(r#""{secretish}""#), "{}"),
        ];
        for t in &cases {
            let e = decode(t)
                .err()
                .map(|e| format!("{e} {e:?}"))
                .unwrap_or_default();
            assert!(!e.is_empty(), "{t} decoded");
            assert!(!e.contains("SECRET"), "{e}");
            assert!(!e.contains(&t[..t.len().min(12)]), "{e}");
        }
    }

    #[test]
    fn garbage_and_huge_inputs() {
        assert!(matches!(
            decode(&"a".repeat(1 << 20)),
            Err(JwtError::TooLong { .. })
        ));
        assert!(matches!(
            decode(&".".repeat(1 << 20)),
            Err(JwtError::TooLong { .. })
        ));
        let near = format!(
            "{}.{}.x",
            b64url(HEADER.as_bytes()),
            "A".repeat(MAX_TOKEN_LEN - 100)
        );
        assert!(decode(&near).is_err());
        for g in [
            "\u{0}.\u{0}.\u{0}",
            "é.é.é",
            "ü",
            "bearerü",
            "Bearerü x",
            "=.=.=",
            "====.e30.x",
            "e30.e30",
            "\u{fffd}..",
            "Bearer",
        ] {
            assert!(decode(g).is_err(), "{g:?}");
        }
        // deep nesting is a JSON error, not a stack overflow
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            decode(&token(HEADER, &deep)),
            Err(JwtError::Json { .. })
        ));
    }

    #[test]
    fn base64_alphabets_and_padding() {
        let ok = |s: &str| base64_decode(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(ok(""), b"");
        assert_eq!(ok("Zg=="), b"f");
        assert_eq!(ok("Zg"), b"f");
        assert_eq!(ok("Zm8="), b"fo");
        assert_eq!(ok("Zm8"), b"fo");
        assert_eq!(ok("Zm9v"), b"foo");
        assert_eq!(ok("Zm9vYmFy"), b"foobar");
        assert_eq!(ok("dXNlcjpwYXNz"), b"user:pass");
        // 0xfb 0xff 0xbf: `+/` standard, `-_` URL-safe
        assert_eq!(ok("+/+/"), [0xfb, 0xff, 0xbf]);
        assert_eq!(ok("-_-_"), [0xfb, 0xff, 0xbf]);
        assert_eq!(ok("-/+_"), [0xfb, 0xff, 0xbf]);
        assert_eq!(ok("/w=="), [0xff]);
        assert_eq!(ok("_w"), [0xff]);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(ok(&b64url(&all)), all);
    }

    #[test]
    fn base64_errors() {
        let err = |s: &str| {
            base64_decode(s)
                .err()
                .unwrap_or_else(|| panic!("{s:?} decoded"))
        };
        assert_eq!(
            err("Z").reason,
            "truncated input (length leaves a lone character)"
        );
        assert_eq!(err("Zm9vY").offset, 4);
        assert_eq!(err("Zg=").reason, "wrong amount of padding");
        assert_eq!(err("Zg===").reason, "wrong amount of padding");
        assert_eq!(err("Zm9v=").reason, "wrong amount of padding");
        assert_eq!(err("=").reason, "wrong amount of padding");
        assert_eq!(err("Zg==Zg==").reason, "padding before the end");
        assert_eq!(err("Zm 9v").offset, 2);
        assert_eq!(
            err("Zm9v\n").reason,
            "character outside the base64 alphabets"
        );
        assert_eq!(err("Zé").offset, 1);
        assert!(base64_decode(&"=".repeat(1 << 20)).is_err());
        assert_eq!(
            base64_decode(&"A".repeat(1 << 20)).map(|v| v.len()),
            Ok(786_432)
        );
    }
}
