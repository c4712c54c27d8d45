//! The audit log: one JSON object per line, appended, never rewritten — who applied what where,
//! the file digests before and after, and how verification ended. No secret is ever written:
//! steps carry paths and digests, not contents, and the whole line goes through the redactor.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// One audited event.
#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    /// RFC 3339.
    pub time: String,
    /// The local user.
    pub user: String,
    /// The apply run (its time stamp, also the backups' suffix).
    pub run: &'a str,
    /// The fix plan id.
    pub fix: &'a str,
    /// The host (`local` for the checkout).
    pub host: &'a str,
    /// The step, in words, or `verify` / `rollback`.
    pub step: &'a str,
    /// The file a step changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    /// Where its old content is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<&'a str>,
    /// SHA-256 before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<&'a str>,
    /// SHA-256 after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<&'a str>,
    /// `started` (written before a step runs, so a killed apply is found), `changed`,
    /// `unchanged`, `manual`, `failed`, `verified`, `verification failed`, `rolled back`,
    /// `rollback failed`, `restored`.
    pub outcome: &'a str,
    /// Details (the error, the verification's findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where the log lives: `$PULLDOCTOR_STATE_DIR`, else `$XDG_STATE_HOME/pulldoctor`, else
/// `~/.local/state/pulldoctor`; the file is `audit.jsonl`.
#[must_use]
pub fn path() -> PathBuf {
    let dir = std::env::var_os("PULLDOCTOR_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("pulldoctor")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/pulldoctor"))
        })
        .unwrap_or_else(|| PathBuf::from(".pulldoctor"));
    dir.join("audit.jsonl")
}

/// The local user name.
#[must_use]
pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Append one entry (redacted).
///
/// # Errors
/// The log could not be written (the fix does not go on without its audit trail).
pub fn append(entry: &Entry<'_>, redactor: &crate::redact::Redactor) -> std::io::Result<()> {
    let p = path();
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    let line = redactor.redact(&line);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)?;
    writeln!(f, "{line}")
}

/// An entry read back (for the runbook).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Record {
    /// RFC 3339.
    pub time: String,
    /// Who.
    pub user: String,
    /// The apply run.
    #[serde(default)]
    pub run: String,
    /// The fix plan id.
    pub fix: String,
    /// The host.
    pub host: String,
    /// The step.
    pub step: String,
    /// The file a step changes.
    #[serde(default)]
    pub path: Option<String>,
    /// Where its old content is kept.
    #[serde(default)]
    pub backup: Option<String>,
    /// SHA-256 before.
    #[serde(default)]
    pub before: Option<String>,
    /// SHA-256 after.
    #[serde(default)]
    pub after: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// Details.
    #[serde(default)]
    pub detail: Option<String>,
}

/// Read the audit log's entries from `since` (RFC 3339) on; lines that are not entries are
/// skipped (the log is append-only and may have been written by other versions).
#[must_use]
pub fn read_since(text: &str, since: &str) -> Vec<Record> {
    let since = chrono::DateTime::parse_from_rfc3339(since).ok();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .filter(
            |r| match (since, chrono::DateTime::parse_from_rfc3339(&r.time).ok()) {
                (Some(s), Some(t)) => t >= s,
                _ => true,
            },
        )
        .collect()
}
