//! Secrets never leave: every text pulldoctor shows or writes (evidence, error chains, JSON, the
//! runbook, logs, bundles) goes through [`Redactor`] first.
//!
//! Two layers: shapes that are secrets wherever they appear (GitLab tokens, JWTs, Basic/Bearer
//! credentials, `-p`/`--password` arguments, `password=`/`token=` values, URL passwords,
//! `"auth"`/`"password"` JSON fields, private keys), and the literal values of the secret
//! environment variables this process can see (`GITLAB_TOKEN`, …), wherever they appear.

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Environment variables whose values are secrets.
pub const SECRET_ENV: [&str; 7] = [
    "GITLAB_TOKEN",
    "CI_JOB_TOKEN",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "REGISTRY_TOKEN",
    "REGISTRY_PASSWORD",
    "DOCKER_PASSWORD",
];

/// (regex, replacement): the replacement keeps the part that says what the secret was.
#[allow(clippy::expect_used)] // constant patterns, covered by tests
static SHAPES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // GitLab personal/deploy/runner/CI-build/feed/… tokens, and runner registration tokens.
        (r"\bgl(?:pat|dt|rt|cbt|ptt|ft|imt|oas|soat|ffct|agent|cisa)-[A-Za-z0-9_\-]{8,}", "gl…-[REDACTED]"),
        (r"\bGR1348941[A-Za-z0-9_\-]{8,}", MASK),
        // JSON Web Tokens: a JWT is a credential only with its signature, so the signature goes
        // and the claims stay as evidence (who, which access, until when).
        (
            r"\b(eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})\.[A-Za-z0-9_\-]*",
            "${1}.[REDACTED-SIGNATURE]",
        ),
        // HTTP credentials in headers.
        (r"(?i)\b(authorization:\s*(?:basic|bearer)\s+)[^\s\x22\\]+", "${1}[REDACTED]"),
        (r"(?i)\b((?:private|job|deploy)-token:\s*)[^\s\x22\\]+", "${1}[REDACTED]"),
        // Command-line passwords: docker login -p X, --password X, --password=X, --docker-password=X.
        // (`-p` is a password only after `login`: iptables' `-p tcp` is evidence)
        (r"(\blogin\b[^\n]*?\s-p\s+)[^\s\x22\\]+", "${1}[REDACTED]"),
        (r"(--(?:docker-)?password(?:=|\s+))[^\s\x22\\]+", "${1}[REDACTED]"),
        (r"(--(?:creds|user|auth)(?:=|\s+)[^\s:\x22\\]+:)[^\s\x22\\]+", "${1}[REDACTED]"),
        (r"(\s-u\s+[^\s:\x22\\]+:)[^\s\x22\\]+", "${1}[REDACTED]"),
        // key=value secrets (query strings, env assignments, logfmt).
        (
            r"(?i)\b((?:password|passwd|secret|access_token|refresh_token|private_token|token|registry_password|job_token)=)[^&\s\x22\\]+",
            "${1}[REDACTED]",
        ),
        // JSON fields of docker config and token answers: "auth", "password", "identitytoken",
        // "token" (a JWT value is left to the JWT rule above, which keeps its claims).
        (
            r#"(?i)(\\?"(?:auth|password|identitytoken|registrytoken|token|access_token|refresh_token)\\?"\s*:\s*\\?")(?:[^"\\e][^"\\]*|e[^"\\y][^"\\]*|ey[^"\\J][^"\\]*|eyJ[^"\\.]*|e|ey)(\\?")"#,
            "${1}[REDACTED]${2}",
        ),
        // user:password@ in URLs.
        (r"(://[^/\s:@\x22]+:)[^@/\s\x22]+@", "${1}[REDACTED]@"),
        // Private keys (the header line; bodies are never failure lines).
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*", "-----BEGIN PRIVATE KEY----- [REDACTED]"),
    ]
    .into_iter()
    .map(|(re, with)| (Regex::new(re).expect("redaction regex"), with))
    .collect()
});

/// Removes secrets from text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    literals: Vec<String>,
}

impl Redactor {
    /// Shapes plus the values of the secret environment variables set in this process.
    #[must_use]
    pub fn from_env() -> Self {
        let literals = SECRET_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .collect();
        Self::with_literals(literals)
    }

    /// Shapes plus these literal secret values (values shorter than 6 characters are ignored:
    /// masking them would destroy ordinary words).
    #[must_use]
    pub fn with_literals(mut literals: Vec<String>) -> Self {
        literals.retain(|l| l.len() >= 6);
        literals.sort_by_key(|l| std::cmp::Reverse(l.len()));
        literals.dedup();
        Redactor { literals }
    }

    /// Add a literal secret (for example a password read from a pull secret).
    pub fn add_literal(&mut self, secret: &str) {
        if secret.len() >= 6 && !self.literals.iter().any(|l| l == secret) {
            self.literals.push(secret.to_string());
            self.literals.sort_by_key(|l| std::cmp::Reverse(l.len()));
        }
    }

    /// The text with every secret masked.
    #[must_use]
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for lit in &self.literals {
            if out.contains(lit.as_str()) {
                out = Cow::Owned(out.replace(lit.as_str(), MASK));
            }
        }
        for (re, with) in SHAPES.iter() {
            if let Cow::Owned(s) = re.replace_all(&out, *with) {
                out = Cow::Owned(s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every secret shape is masked and the words around it survive.
    #[test]
    fn masks_every_shape() {
        let r = Redactor::default();
        let cases = [
            (
                "docker login -u gitlab-ci-token -p glcbt-64_abcdefghijklmnopqrstu registry:5050",
                "glcbt",
            ),
            ("PRIVATE-TOKEN: glpat-abcdefghijklmnopqrst", "abcdefghijkl"),
            ("Authorization: Basic dXNlcjpzM2NyZXQ=", "dXNlcjpzM2NyZXQ="),
            (
                "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb290In0.c2lnbmF0dXJl",
                "c2lnbmF0dXJl",
            ),
            (
                r#"{"token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb290In0.c2lnbmF0dXJl"}"#,
                "c2lnbmF0dXJl",
            ),
            (r#"{"token":"eyJshort"}"#, "eyJshort"),
            (r#"{"access_token":"opaque-value"}"#, "opaque-value"),
            ("--docker-password=hunter2hunter2", "hunter2"),
            (
                "GET /jwt/auth?account=u&password=hunter2hunter2&scope=x",
                "hunter2",
            ),
            (
                r#"{"auths":{"r:5050":{"auth":"dXNlcjpzM2NyZXQ="}}}"#,
                "dXNlcjpzM2NyZXQ=",
            ),
            (
                "https://deploy:hunter2hunter2@gitlab.example.com/x",
                "hunter2",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXk",
                "b3BlbnNzaC1rZXk",
            ),
            ("curl -u root:hunter2hunter2 http://x", "hunter2"),
        ];
        for (text, secret) in cases {
            let out = r.redact(text);
            assert!(!out.contains(secret), "{text} -> {out}");
            assert!(out.contains("REDACTED"), "{text} -> {out}");
        }
    }

    /// Other tools' `-p` is not a password: iptables rules survive recording intact.
    #[test]
    fn keeps_iptables_protocols() {
        let r = Redactor::default();
        let rule = "-A PREROUTING -d 10.88.1.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.88.2.2:80";
        assert_eq!(r.redact(rule), rule);
        assert!(
            r.redact("podman login -p hunter2hunter2 r:5050")
                .contains("[REDACTED]")
        );
    }

    /// Error chains that merely mention tokens are left alone.
    #[test]
    fn keeps_evidence_words() {
        let r = Redactor::default();
        let text = r#"failed to fetch anonymous token: Get "http://10.0.0.1/jwt/auth?scope=repository%3Aa%3Apull&service=container_registry": dial tcp 10.0.0.1:80: connect: no route to host"#;
        assert_eq!(r.redact(text), text);
    }

    /// Literal values of secret environment variables are masked wherever they appear.
    #[test]
    fn masks_literals() {
        let r = Redactor::with_literals(vec!["s3cr3t-value".into(), "abc".into()]);
        assert_eq!(r.redact("x s3cr3t-value y abc"), "x [REDACTED] y abc");
    }
}
