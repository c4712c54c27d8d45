//! `RunState`: the one reducer over [`RunEvent`]s. The JSON report, the `explain` summary and
//! the dashboard all read it, so they always agree.

use super::RunEvent;
use crate::check::InputSummary;
use crate::model::{CheckId, CheckStatus, Evidence, Finding, FindingId, Severity, Target};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One check on one target, as the run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEntry {
    /// Where it is.
    pub status: CheckStatus,
    /// How long it took, once finished.
    pub duration_ms: Option<u64>,
    /// When it last started (the dashboard shows the elapsed time of a running check).
    pub started_at: Option<DateTime<Utc>>,
}

/// Everything known about the run so far.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// When the run began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Every planned check, by (check, target), sorted.
    pub checks: BTreeMap<(CheckId, Target), CheckEntry>,
    findings: BTreeMap<FindingId, Finding>,
    /// What each input looked like, by name.
    pub inputs: BTreeMap<String, InputSummary>,
    /// Failure-looking lines nothing explained.
    pub unclassified: Vec<Evidence>,
    /// Set when the run could not complete.
    pub aborted: Option<String>,
}

impl RunState {
    /// Apply one event.
    pub fn apply(&mut self, event: RunEvent) {
        match event {
            RunEvent::RunStarted { at, planned } => {
                self.started_at = Some(at);
                for key in planned {
                    self.checks.insert(
                        key,
                        CheckEntry {
                            status: CheckStatus::Pending,
                            duration_ms: None,
                            started_at: None,
                        },
                    );
                }
            }
            RunEvent::CheckStarted { check, target, at } => {
                self.checks.insert(
                    (check, target),
                    CheckEntry {
                        status: CheckStatus::Running,
                        duration_ms: None,
                        started_at: Some(at),
                    },
                );
            }
            RunEvent::CheckFinished {
                check,
                target,
                outcome,
                duration_ms,
            } => {
                // A re-run replaces what the same check said about the same target before.
                self.findings
                    .retain(|_, f| !(f.check == check && f.target == target));
                for f in outcome.findings {
                    self.findings.insert(f.id.clone(), f);
                }
                if let Some(input) = outcome.input {
                    self.unclassified.retain(|e| !matches!(&e.source, crate::model::EvidenceSource::File { path, .. } if *path == input.name));
                    self.inputs.insert(input.name.clone(), input);
                }
                self.unclassified.extend(outcome.unclassified);
                let started_at = self
                    .checks
                    .get(&(check.clone(), target.clone()))
                    .and_then(|c| c.started_at);
                self.checks.insert(
                    (check, target),
                    CheckEntry {
                        status: outcome.status,
                        duration_ms: Some(duration_ms),
                        started_at,
                    },
                );
            }
            RunEvent::RunFinished { at } => self.finished_at = Some(at),
        }
    }

    /// Record that the run could not complete.
    pub fn abort(&mut self, why: String) {
        self.aborted = Some(why);
    }

    /// Findings in a stable order: worst severity first, then check, target, and the order the
    /// check gave (its id breaks the last tie).
    #[must_use]
    pub fn findings_sorted(&self) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = self.findings.values().collect();
        v.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.check.cmp(&b.check))
                .then_with(|| a.target.cmp(&b.target))
                .then_with(|| first_line(a).cmp(&first_line(b)))
                .then_with(|| a.id.cmp(&b.id))
        });
        v
    }

    /// How many findings there are.
    #[must_use]
    pub fn finding_count(&self) -> usize {
        self.findings.len()
    }

    /// The worst severity found, if anything was found.
    #[must_use]
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.values().map(|f| f.severity).max()
    }

    /// True when every planned check has finished.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.aborted.is_none()
            && self
                .checks
                .values()
                .all(|c| !matches!(c.status, CheckStatus::Pending | CheckStatus::Running))
    }
}

fn first_line(f: &Finding) -> u64 {
    f.evidence.first().map_or(0, |e| {
        if let crate::model::EvidenceSource::File { line, .. } = e.source {
            line
        } else {
            0
        }
    })
}
