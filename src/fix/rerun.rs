//! Verification by re-running the check that found a fault: the fix worked when the check ran
//! and none of the findings the plan answered is still there.

use super::{Planned, Verification};
use crate::check::{Check, CheckContext};
use crate::model::CheckStatus;

/// Run `check` again and judge `planned` by it.
pub async fn verify_by_check(
    ctx: &CheckContext,
    check: &dyn Check,
    planned: &Planned,
) -> Verification {
    let out = check.run(ctx.clone()).await;
    let id = check.id().0;
    let left: Vec<String> = out
        .findings
        .iter()
        .filter(|f| planned.findings.contains(&f.id.0))
        .map(|f| f.title.clone())
        .collect();
    match &out.status {
        CheckStatus::Passed | CheckStatus::Failed if left.is_empty() => Verification {
            ok: true,
            detail: format!(
                "{id} no longer finds {}",
                if planned.findings.len() == 1 {
                    "the fault"
                } else {
                    "the faults"
                }
            ),
        },
        CheckStatus::Passed | CheckStatus::Failed => Verification {
            ok: false,
            detail: format!("{id} still finds: {}", left.join("; ")),
        },
        other => Verification {
            ok: false,
            detail: format!("{id} could not run: {other:?}"),
        },
    }
}
