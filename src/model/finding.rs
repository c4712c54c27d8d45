//! Findings: what a check concluded, how bad it is, and the evidence that proves it.

use super::{Class, Evidence, FixRef, Target};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is. Ordered: `Info < Warning < Error < Critical`; the exit code compares the
/// worst finding with `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is broken.
    Info,
    /// Likely to break something, or a failure that was recovered from.
    Warning,
    /// Something on the path is broken.
    Error,
    /// Everything on the path is broken.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The lower-case name used in JSON and on the command line.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How the finding was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// A probe pulldoctor ran itself showed it.
    Confirmed,
    /// Read from logs, events or other text; a probe has not confirmed it yet.
    Inferred,
}

/// A stable check id, dotted kebab case (`logs.classify`, `registry.scheme`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckId(pub String);

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A finding id, derived from what the finding is about (check, class, target, subject), so a re-run
/// replaces a finding instead of duplicating it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FindingId(pub String);

impl FindingId {
    /// Derive an id from its parts: a 64-bit FNV-1a hash, stable across runs and platforms.
    #[must_use]
    pub fn derive(parts: &[&str]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for byte in part.bytes().chain(std::iter::once(0x1f)) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        FindingId(format!("{hash:016x}"))
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a failure is about, as far as the evidence names it. Used to group repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// The image reference being pulled or pushed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image: Option<String>,
    /// The registry `host[:port]` the image lives in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registry: Option<String>,
    /// The address or URL that was dialled or requested when it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub endpoint: Option<String>,
    /// The nodes or hosts the failure happened on, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub nodes: Vec<String>,
    /// A CI job name, when the text is about a job.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub job: Option<String>,
    /// Runner tags a stuck job is waiting for.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<String>,
}

/// One conclusion of one check about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id (see [`FindingId::derive`]).
    pub id: FindingId,
    /// The check that produced it.
    pub check: CheckId,
    /// The failure class.
    pub class: Class,
    /// How bad it is.
    pub severity: Severity,
    /// What it is about.
    pub target: Target,
    /// What the evidence names: image, registry, endpoint, node, job.
    pub subject: Subject,
    /// One line for the person at the terminal.
    pub title: String,
    /// What it means, in plain words.
    pub explanation: String,
    /// What to check or do next, in order.
    pub next_steps: Vec<String>,
    /// The error chain of the first occurrence, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub error_chain: Vec<String>,
    /// The lines that prove it (the first few and the last of a group of repeats).
    pub evidence: Vec<Evidence>,
    /// How many times it was seen.
    pub count: u64,
    /// Time of the first occurrence, as the input wrote it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_seen: Option<String>,
    /// Time of the last occurrence, as the input wrote it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_seen: Option<String>,
    /// Confirmed by a probe, or inferred from text.
    pub confidence: Confidence,
    /// The fixes that apply.
    pub fixes: Vec<FixRef>,
}

impl Finding {
    /// A confirmed finding seen once, with its id derived from the check, the class and `key`
    /// (what makes it this finding and not another: target, subject). The other fields start
    /// empty; set what applies.
    #[must_use]
    pub fn new(
        check: &str,
        class: Class,
        severity: Severity,
        target: Target,
        key: &[&str],
        title: String,
    ) -> Self {
        let mut parts = vec![check, class.id()];
        parts.extend_from_slice(key);
        Self::with_id(
            FindingId::derive(&parts),
            check,
            class,
            severity,
            target,
            title,
        )
    }

    /// A confirmed finding seen once, under an id the caller derived (a check whose id must
    /// match what another part computes, such as the fix that answers it). The other fields
    /// start empty; set what applies.
    #[must_use]
    pub fn with_id(
        id: FindingId,
        check: &str,
        class: Class,
        severity: Severity,
        target: Target,
        title: String,
    ) -> Self {
        Finding {
            id,
            check: CheckId(check.to_string()),
            class,
            severity,
            target,
            subject: Subject::default(),
            title,
            explanation: String::new(),
            next_steps: Vec::new(),
            error_chain: Vec::new(),
            evidence: Vec::new(),
            count: 1,
            first_seen: None,
            last_seen: None,
            confidence: Confidence::Confirmed,
            fixes: Vec::new(),
        }
    }
}

/// The state of one check on one target, richer than pass/fail: a check that could not run says
/// so and why, and never counts as a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CheckStatus {
    /// Planned, not started.
    Pending,
    /// Running now.
    Running,
    /// Ran and found nothing wrong.
    Passed,
    /// Ran and found problems (see the findings).
    Failed,
    /// Did not run, for this reason.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Tried to run and could not finish.
    Errored {
        /// What went wrong, with the host and step.
        error: String,
    },
    /// Ran out of time.
    TimedOut {
        /// The limit, in milliseconds.
        after_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding ids depend on every part and on part boundaries, and never on anything else.
    #[test]
    fn finding_ids_are_stable_and_distinct() {
        let a = FindingId::derive(&["logs.classify", "dns", "x"]);
        assert_eq!(a, FindingId::derive(&["logs.classify", "dns", "x"]));
        assert_ne!(a, FindingId::derive(&["logs.classify", "dnsx", ""]));
        assert_eq!(a.0.len(), 16);
    }

    /// Severities order from info to critical.
    #[test]
    fn severity_order() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Error < Severity::Critical);
    }
}
