//! One-key fixes: a plan built from fresh facts (never from a stale report), shown before it runs,
//! confirmed, applied host by host with a backup of every file it replaces, verified by re-running
//! the check that found the fault, rolled back on that host when verification fails, and written
//! to an append-only audit log.
//!
//! * [`plans`] turns what a check sees on a host into a [`FixPlan`].
//! * [`apply`] runs a plan's steps over SSH (backup, temp file + rename) and undoes them.
//! * [`audit`] is the JSON-lines audit log.

pub mod apply;
pub mod audit;
pub mod plans;

pub use crate::model::{FixPlan, FixStep};

use crate::check::{Check, CheckContext};
use crate::inventory::Host;
use crate::model::{CheckStatus, Severity};
use std::fmt::Write as _;

/// A plan as the person confirming it reads it: what, where, how risky, each step with the
/// exact file content or command, why, and how it will be verified.
#[must_use]
pub fn render_plan(planned: &plans::Planned) -> String {
    let p = &planned.plan;
    let mut out = String::new();
    let _ = writeln!(out, "Fix {}: {}", p.id, p.title);
    let _ = writeln!(
        out,
        "  hosts: {}; risk: {:?}{}; verified by: {}",
        p.hosts.join(", "),
        p.risk,
        if p.restarts_service {
            ", restarts a service"
        } else {
            ""
        },
        p.verify
    );
    for why in &planned.why {
        let _ = writeln!(out, "  why: {why}");
    }
    for (i, step) in p.steps.iter().enumerate() {
        match step {
            FixStep::WriteRemoteFile {
                host,
                path,
                mode,
                owner,
                content,
            } => {
                let _ = writeln!(
                    out,
                    "  {}. write {path} on {host} (mode {mode}, owner {owner}; the old file, if any, is kept as {path}.pulldoctor-backup-<time>):",
                    i + 1
                );
                for line in content.lines() {
                    let _ = writeln!(out, "       | {line}");
                }
            }
            FixStep::RunRemoteCommand {
                host,
                command,
                sudo,
            } => {
                let _ = writeln!(
                    out,
                    "  {}. run on {host}: {}{command}",
                    i + 1,
                    if *sudo { "sudo " } else { "" }
                );
            }
            FixStep::EditRemoteFile { host, path, diff } => {
                let _ = writeln!(out, "  {}. edit {path} on {host}:\n{diff}", i + 1);
            }
            FixStep::EditLocalFile { path, diff } => {
                let _ = writeln!(out, "  {}. edit {path}:\n{diff}", i + 1);
            }
            FixStep::Manual { text, commands } => {
                let _ = writeln!(out, "  {}. by hand (not run): {text}", i + 1);
                for c in commands {
                    let _ = writeln!(out, "       $ {c}");
                }
            }
        }
    }
    out
}

/// How applying one plan on one host ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What each step did.
    pub applied: Vec<apply::Applied>,
    /// The re-run check found nothing wrong.
    pub verified: bool,
    /// Everything that was changed was put back.
    pub rolled_back: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Outcome {
    /// One line for the terminal.
    #[must_use]
    pub fn summary(&self) -> String {
        let changed = self
            .applied
            .iter()
            .filter(|a| a.outcome == "changed")
            .count();
        let steps = self
            .applied
            .iter()
            .map(|a| format!("{} ({})", a.step, a.outcome))
            .collect::<Vec<_>>()
            .join("; ");
        match (&self.error, self.verified) {
            (None, true) if changed == 0 => format!("already right, nothing changed: {steps}"),
            (None, true) => format!("fixed and verified: {steps}"),
            (Some(e), _) if self.rolled_back => format!("{e}; rolled back: {steps}"),
            (Some(e), _) => format!("{e}; NOT rolled back, the backups are on the host: {steps}"),
            (None, false) => format!("not verified: {steps}"),
        }
    }
}

/// Apply `plan` on `host`, re-run `registry.scheme` there, and undo every change if it still
/// finds a problem. Each step, the verification and any rollback go to the audit log.
pub async fn apply_and_verify(
    ctx: &CheckContext,
    host: &Host,
    registry: &str,
    plan: &FixPlan,
) -> Outcome {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let audit = |step: &str, a: Option<&apply::Applied>, outcome: &str, detail: Option<String>| {
        let entry = audit::Entry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            user: audit::user(),
            fix: &plan.id,
            host: &host.name,
            step,
            before: a.and_then(|a| a.before.as_deref()),
            after: a.and_then(|a| a.after.as_deref()),
            outcome,
            detail,
        };
        audit::append(&entry, &ctx.redactor)
    };
    let mut outcome = Outcome {
        applied: Vec::new(),
        verified: false,
        rolled_back: false,
        error: None,
    };
    for step in &plan.steps {
        match apply::apply_step(ctx.probes.as_ref(), host, step, &stamp).await {
            Ok(a) => {
                if let Err(e) = audit(&a.step, Some(&a), &a.outcome, None) {
                    outcome.error = Some(format!("cannot write the audit log: {e}"));
                }
                outcome.applied.push(a);
                if outcome.error.is_some() {
                    break;
                }
            }
            Err(e) => {
                let _ = audit("apply", None, "failed", Some(e.clone()));
                outcome.error = Some(e);
                break;
            }
        }
    }
    if outcome.error.is_none() {
        let (ok, detail) = verify(ctx, host, registry).await;
        let _ = audit(
            "verify",
            None,
            if ok {
                "verified"
            } else {
                "verification failed"
            },
            Some(detail.clone()),
        );
        outcome.verified = ok;
        if !ok {
            outcome.error = Some(format!("verification failed: {detail}"));
        }
    }
    if outcome.error.is_some() {
        let mut all_back = true;
        for a in outcome.applied.iter().rev() {
            let undone = apply::undo(ctx.probes.as_ref(), host, a).await;
            let _ = audit(
                &format!("rollback {}", a.step),
                Some(a),
                if undone.is_ok() {
                    "rolled back"
                } else {
                    "rollback failed"
                },
                undone.as_ref().err().cloned(),
            );
            all_back &= undone.is_ok();
        }
        outcome.rolled_back = all_back;
    }
    outcome
}

/// Re-run `registry.scheme` on the host: verified when it finds nothing at warning or above.
async fn verify(ctx: &CheckContext, host: &Host, registry: &str) -> (bool, String) {
    // A test hook: the lab's rollback test makes verification fail on purpose.
    if std::env::var_os("PULLDOCTOR_TEST_FAIL_VERIFY").is_some() {
        return (
            false,
            "failed on purpose (PULLDOCTOR_TEST_FAIL_VERIFY)".into(),
        );
    }
    let check = crate::check::remote::RegistryScheme {
        host: host.clone(),
        registry: registry.to_string(),
    };
    let out = check.run(ctx.clone()).await;
    let problems: Vec<String> = out
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| f.title.clone())
        .collect();
    match (&out.status, problems.is_empty()) {
        (CheckStatus::Passed, _) | (CheckStatus::Failed, true) => {
            (true, "registry.scheme finds nothing wrong".into())
        }
        (CheckStatus::Failed, false) => (false, problems.join("; ")),
        (other, _) => (false, format!("registry.scheme could not run: {other:?}")),
    }
}
