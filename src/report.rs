//! The report: the public, versioned JSON form of a run (`--headless`, `explain --json`), the
//! readable text summary (`explain`), and the exit-code policy.

pub mod runbook;
pub mod text;

use crate::check::InputSummary;
use crate::check::catalog::Catalog;
use crate::engine::RunState;
use crate::model::{CheckStatus, Class, Evidence, Finding, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever the JSON structure changes; `assets/report.schema.json` follows it.
pub const SCHEMA_VERSION: u32 = 1;

/// Exit codes (DESIGN.md): also documented in the README and `--help`.
pub mod exit {
    /// Nothing at or above `--fail-on`.
    pub const OK: u8 = 0;
    /// Findings at or above `--fail-on`.
    pub const FINDINGS: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// The run could not complete.
    pub const INCOMPLETE: u8 = 3;
}

/// The tool that wrote the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    /// `pulldoctor`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// When and how the run happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// `headless` or `explain`.
    pub mode: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// The bundle replayed, when the run was a replay.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replayed_from: Option<String>,
    /// Why the run could not complete, if it could not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aborted: Option<String>,
}

/// One check on one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckSummary {
    /// Check id.
    pub check: String,
    /// Target name.
    pub target: String,
    /// Its status.
    pub status: CheckStatus,
    /// How long it took.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration_ms: Option<u64>,
}

/// Counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Number of findings.
    pub findings: u64,
    /// Findings per severity (every severity present, zero or not).
    pub by_severity: BTreeMap<String, u64>,
    /// Findings per failure class (only classes found).
    pub by_class: BTreeMap<String, u64>,
    /// The most important failure class found, or `none`.
    pub primary_class: Class,
    /// The worst severity found, if any.
    pub worst_severity: Option<Severity>,
    /// Checks that could not run or finish (errored, timed out).
    pub checks_not_completed: u64,
    /// The `--fail-on` threshold.
    pub fail_on: Severity,
    /// The exit code of this run.
    pub exit_code: u8,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// See [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The tool.
    pub tool: Tool,
    /// The run.
    pub run: RunInfo,
    /// The text inputs read.
    pub inputs: Vec<InputSummary>,
    /// Every check and its status.
    pub checks: Vec<CheckSummary>,
    /// The findings, worst first.
    pub findings: Vec<Finding>,
    /// Failure-looking lines no signature explained (the first few per input).
    pub unclassified: Vec<Evidence>,
    /// Counts and the verdict.
    pub summary: Summary,
    /// Fixes applied after the checks (`--headless --apply`), each with its verification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<AppliedFix>,
}

/// A fix applied by `--headless --apply`: what ran where and how its verification ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedFix {
    /// The fix id.
    pub id: String,
    /// One line.
    pub title: String,
    /// The hosts it touched (empty: this machine).
    pub hosts: Vec<String>,
    /// `safe`, `disruptive` or `destructive`.
    pub risk: String,
    /// Each step and what it did (`changed`, `unchanged`, `manual`).
    pub steps: Vec<AppliedStep>,
    /// The re-run check found the fault gone.
    pub verified: bool,
    /// It failed and everything it changed was put back.
    pub rolled_back: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One step of an applied fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedStep {
    /// Where (`local`: this machine).
    pub host: String,
    /// What, in words.
    pub step: String,
    /// How it ended.
    pub outcome: String,
}

impl Report {
    /// Build the report from the run state.
    #[must_use]
    pub fn new(
        state: &RunState,
        catalog: &Catalog,
        mode: &str,
        replayed_from: Option<String>,
        fail_on: Severity,
    ) -> Self {
        let findings: Vec<Finding> = state.findings_sorted().into_iter().cloned().collect();
        let mut by_severity: BTreeMap<String, u64> = Severity::ALL
            .iter()
            .map(|s| (s.id().to_string(), 0))
            .collect();
        let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
        for f in &findings {
            *by_severity.entry(f.severity.id().to_string()).or_default() += 1;
            *by_class.entry(f.class.id().to_string()).or_default() += 1;
        }
        let checks: Vec<CheckSummary> = state
            .checks
            .iter()
            .map(|((check, target), e)| CheckSummary {
                check: check.0.clone(),
                target: target.name.clone(),
                status: e.status.clone(),
                duration_ms: e.duration_ms,
            })
            .collect();
        let not_completed = checks
            .iter()
            .filter(|c| {
                matches!(
                    c.status,
                    CheckStatus::Errored { .. } | CheckStatus::TimedOut { .. }
                )
            })
            .count() as u64;
        let worst = state.worst_severity();
        let exit_code = exit_code(worst, fail_on, state.complete() && not_completed == 0);
        let rfc = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.unwrap_or_else(chrono::Utc::now)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "pulldoctor".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            run: RunInfo {
                mode: mode.to_string(),
                started_at: rfc(state.started_at),
                finished_at: rfc(state.finished_at),
                replayed_from,
                aborted: state.aborted.clone(),
            },
            inputs: state.inputs.values().cloned().collect(),
            checks,
            fixes: Vec::new(),
            summary: Summary {
                findings: findings.len() as u64,
                by_severity,
                by_class,
                primary_class: primary_class(&findings, catalog),
                worst_severity: worst,
                checks_not_completed: not_completed,
                fail_on,
                exit_code,
            },
            findings,
            unclassified: state.unclassified.clone(),
        }
    }
}

/// The most important class among findings: worst severity, then the signature's priority, then
/// the most occurrences; `none` when there is no finding.
#[must_use]
pub fn primary_class(findings: &[Finding], catalog: &Catalog) -> Class {
    findings
        .iter()
        .max_by_key(|f| {
            (
                f.severity,
                catalog.get(f.class).map_or(0, |s| s.priority),
                f.count,
            )
        })
        .map_or(Class::None, |f| f.class)
}

/// 3 when the run could not complete, else 1 when the worst finding is at or above `fail_on`, else 0.
#[must_use]
pub fn exit_code(worst: Option<Severity>, fail_on: Severity, complete: bool) -> u8 {
    if !complete {
        exit::INCOMPLETE
    } else if worst.is_some_and(|w| w >= fail_on) {
        exit::FINDINGS
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exit-code table of DESIGN.md.
    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(None, Severity::Error, true), 0);
        assert_eq!(exit_code(Some(Severity::Warning), Severity::Error, true), 0);
        assert_eq!(
            exit_code(Some(Severity::Warning), Severity::Warning, true),
            1
        );
        assert_eq!(
            exit_code(Some(Severity::Critical), Severity::Error, true),
            1
        );
        assert_eq!(
            exit_code(Some(Severity::Critical), Severity::Error, false),
            3
        );
    }
}
