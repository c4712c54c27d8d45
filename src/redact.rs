//! Secrets never leave: every text pulldoctor shows or writes (evidence, error chains, JSON, the
//! runbook, logs, bundles) goes through [`Redactor`] first.
//!
//! Two layers: shapes that are secrets wherever they appear (GitLab tokens, JWTs, Basic/Bearer
//! credentials, `-p`/`--password` arguments, `password=`/`token=` values, URL passwords,
//! `"auth"`/`"password"` JSON fields, private keys), and the literal values of the secret
//! environment variables this process can see (`GITLAB_TOKEN`, …), wherever they appear.

use crate::check::CheckOutcome;
use crate::model::{CheckStatus, Evidence, EvidenceSource, Finding};
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
    ]
    .into_iter()
    .map(|(re, with)| (Regex::new(re).expect("redaction regex"), with))
    .collect()
});

/// A private key: from its header to the end of the line (an escaped `\n` and `\"` included, so
/// a key inside a JSON string goes whole), then every line after it that is base64 body, a PEM
/// header (`Proc-Type:`, `DEK-Info:`), blank, or the `-----END` line. An unescaped `"` ends it,
/// so the JSON around a key stays valid.
#[allow(clippy::expect_used)] // a constant pattern, covered by tests
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[^"\\\r\n]|\\[^\r\n])*(?:\r?\n[ \t]*(?:[A-Za-z0-9+/=]+|Proc-Type:[^"\r\n]*|DEK-Info:[^"\r\n]*|-----END [A-Z0-9 ]*PRIVATE KEY-----)?[ \t]*\r?(?m:$))*"#,
    )
    .expect("private key regex")
});

/// What a private key is replaced with: the header line says what it was, and each further line
/// of the key stays a line, so line numbers after it do not move (a replay reads the same lines).
fn mask_private_key(found: &regex::Captures<'_>) -> String {
    let lines = found.get(0).map_or(0, |m| m.as_str().matches('\n').count());
    let mut out = String::from("-----BEGIN PRIVATE KEY----- [REDACTED]");
    for _ in 0..lines {
        out.push('\n');
        out.push_str(MASK);
    }
    out
}

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

    /// Add a pull secret's passwords, and the `user:password` base64 that `auth` and Basic
    /// credentials carry, as literals: a password is a secret wherever it is echoed, in any shape.
    /// Text that is not a pull secret adds nothing (its reader reports why).
    pub fn add_pull_secret(&mut self, text: &str) {
        let Ok(config) = crate::parse::dockercfg::parse_secret(text) else {
            return;
        };
        for entry in &config.entries {
            let password = entry.password.expose();
            self.add_literal(password);
            if let Some(user) = &entry.username {
                let basic = format!("{user}:{password}");
                self.add_literal(&crate::parse::jwt::base64_encode(basic.as_bytes(), false));
            }
        }
    }

    /// [`Redactor::add_pull_secret`] for the file at `path`; a file that cannot be read adds
    /// nothing (the registry checks, which read it through the probes, say why).
    pub fn add_pull_secret_file(&mut self, path: &str) {
        if let Ok(text) = std::fs::read_to_string(path) {
            self.add_pull_secret(&text);
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
        if let Cow::Owned(s) = PRIVATE_KEY.replace_all(&out, mask_private_key) {
            out = Cow::Owned(s);
        }
        out
    }

    /// Redact a string in place.
    fn mask(&self, text: &mut String) {
        if let Cow::Owned(s) = self.redact(text) {
            *text = s;
        }
    }

    /// Redact every text of a piece of evidence; a highlight whose line changed is dropped (its
    /// byte range would point into text that is no longer there).
    pub fn redact_evidence(&self, evidence: &mut Evidence) {
        let before = evidence.text.len();
        self.mask(&mut evidence.text);
        if evidence.text.len() != before {
            evidence.matched = None;
        }
        for text in [&mut evidence.time, &mut evidence.host]
            .into_iter()
            .flatten()
        {
            self.mask(text);
        }
        match &mut evidence.source {
            EvidenceSource::File { path, .. } => self.mask(path),
            EvidenceSource::Command { host, command } => {
                self.mask(host);
                self.mask(command);
            }
            EvidenceSource::Probe { request } => self.mask(request),
        }
    }

    /// Redact every text of a finding (its id, derived before, is unchanged).
    pub fn redact_finding(&self, finding: &mut Finding) {
        self.mask(&mut finding.target.name);
        self.mask(&mut finding.title);
        self.mask(&mut finding.explanation);
        let subject = &mut finding.subject;
        for text in [
            &mut subject.image,
            &mut subject.registry,
            &mut subject.endpoint,
            &mut subject.job,
        ]
        .into_iter()
        .flatten()
        {
            self.mask(text);
        }
        for text in subject
            .nodes
            .iter_mut()
            .chain(&mut subject.tags)
            .chain(&mut finding.next_steps)
            .chain(&mut finding.error_chain)
        {
            self.mask(text);
        }
        for e in &mut finding.evidence {
            self.redact_evidence(e);
        }
        for fix in &mut finding.fixes {
            self.mask(&mut fix.title);
        }
    }

    /// Redact everything a check returned, before any face sees it: the dashboard draws findings
    /// as they arrive, and what a check quotes (a CI tag, a server's error body) may hold a secret.
    pub fn redact_outcome(&self, outcome: &mut CheckOutcome) {
        match &mut outcome.status {
            CheckStatus::Skipped { reason: text } | CheckStatus::Errored { error: text } => {
                self.mask(text);
            }
            CheckStatus::Pending
            | CheckStatus::Running
            | CheckStatus::Passed
            | CheckStatus::Failed
            | CheckStatus::TimedOut { .. } => {}
        }
        for f in &mut outcome.findings {
            self.redact_finding(f);
        }
        for e in &mut outcome.unclassified {
            self.redact_evidence(e);
        }
        if let Some(input) = &mut outcome.input {
            self.mask(&mut input.name);
        }
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

    /// A whole private key goes, its lines stay lines (a replay's line numbers do not move), and
    /// the lines after it survive.
    #[test]
    fn masks_private_key_blocks() {
        let r = Redactor::default();
        let text = "before\n-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,0A1B\r\n\r\nMIIEowIBAAKCAQEAbody1\r\nQw==\r\n-----END RSA PRIVATE KEY-----\r\nlevel=error msg=\"after\"\n";
        let out = r.redact(text);
        for secret in ["MIIEowIBAAKCAQEAbody1", "Qw==", "0A1B"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert_eq!(out.lines().count(), text.lines().count(), "{out}");
        assert!(out.starts_with("before\n-----BEGIN PRIVATE KEY----- [REDACTED]"));
        assert!(out.ends_with("level=error msg=\"after\"\n"), "{out}");
        // a header line with nothing after it (the body is somewhere else) still goes
        assert_eq!(
            r.redact("key: -----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXk"),
            "key: -----BEGIN PRIVATE KEY----- [REDACTED]"
        );
    }

    /// A key inside a JSON string goes whole and the JSON stays valid, pretty or not.
    #[test]
    fn private_key_in_json_keeps_json_valid() {
        let r = Redactor::default();
        let value = serde_json::json!({
            "text": "stuck: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----\n and \"quoted\"",
            "line": 1
        });
        for json in [
            value.to_string(),
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        ] {
            let out = r.redact(&json);
            assert!(!out.contains("b3BlbnNzaC1rZXktdjEAAAA"), "{out}");
            let back: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            assert_eq!(back["line"], 1, "{out}");
        }
    }

    /// What a check returns is redacted before any face sees it, and a highlight into a changed
    /// line is dropped rather than left pointing at the wrong bytes.
    #[test]
    fn redacts_outcomes() {
        use crate::model::{Class, Severity, Target, TargetKind};
        let r = Redactor::default();
        let token = "glpat-abcdefghijklmnopqrst";
        let target = Target {
            kind: TargetKind::Job,
            name: "build".to_string(),
        };
        let mut f = Finding::new(
            "gitlab.runner-tags",
            Class::RunnerTags,
            Severity::Error,
            target,
            &["build"],
            format!("stuck waiting for tags msi-gition, {token}"),
        );
        f.subject.tags = vec![token.to_string()];
        f.evidence.push(Evidence {
            source: EvidenceSource::File {
                path: "banner.txt".to_string(),
                line: 1,
            },
            time: None,
            host: None,
            text: format!("tags: {token}"),
            matched: Some([0, 5]),
        });
        let mut outcome = CheckOutcome::errored(format!("GET /api/v4/x: 401 {token}"));
        outcome.findings.push(f);
        r.redact_outcome(&mut outcome);
        let shown = format!("{outcome:?}");
        assert!(!shown.contains("abcdefghijkl"), "{shown}");
        assert_eq!(outcome.findings[0].evidence[0].matched, None);
    }

    /// Literal values of secret environment variables are masked wherever they appear.
    #[test]
    fn masks_literals() {
        let r = Redactor::with_literals(vec!["s3cr3t-value".into(), "abc".into()]);
        assert_eq!(r.redact("x s3cr3t-value y abc"), "x [REDACTED] y abc");
    }
}
