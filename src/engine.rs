//! The engine: runs checks concurrently (a global limit, a per-check timeout), turns what they
//! return into [`RunEvent`]s, and never lets one check's failure, panic or hang stop the run.
//! Every face (headless JSON, `explain`, later the dashboard and the runbook) reads the same
//! [`RunState`], the one reducer over those events.

pub mod event;
pub mod state;

pub use event::RunEvent;
pub use state::RunState;

use crate::check::{Check, CheckContext, CheckOutcome};
use crate::model::CheckStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// How the engine runs checks.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Checks running at once.
    pub concurrency: usize,
    /// Time one check may take.
    pub check_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 16,
            check_timeout: Duration::from_secs(60),
        }
    }
}

/// Run every check of the plan, sending events to `tx` as they happen. Returns when all checks
/// have finished (or timed out); the last event sent is `RunFinished`.
pub async fn run(
    plan: Vec<Arc<dyn Check>>,
    ctx: CheckContext,
    limits: Limits,
    tx: mpsc::Sender<RunEvent>,
) {
    let planned = plan.iter().map(|c| (c.id(), c.target())).collect();
    // A consumer that went away (the dashboard quit) stops nothing: the sends just fail.
    let _ = tx.send(RunEvent::RunStarted { at: now(), planned }).await;
    let semaphore = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut set = JoinSet::new();
    for check in plan {
        let (ctx, tx, semaphore) = (ctx.clone(), tx.clone(), semaphore.clone());
        set.spawn(async move {
            let Ok(_permit) = semaphore.acquire_owned().await else {
                return;
            };
            let (id, target) = (check.id(), check.target());
            let _ = tx
                .send(RunEvent::CheckStarted {
                    check: id.clone(),
                    target: target.clone(),
                    at: now(),
                })
                .await;
            let started = Instant::now();
            let redactor = ctx.redactor.clone();
            // The check runs in its own task, so a panic is caught here and becomes data.
            let handle = tokio::spawn(check.run(ctx));
            let abort = handle.abort_handle();
            let mut outcome = match tokio::time::timeout(limits.check_timeout, handle).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => CheckOutcome::errored(format!("the check stopped unexpectedly: {e}")),
                Err(_) => {
                    abort.abort();
                    let after_ms =
                        u64::try_from(limits.check_timeout.as_millis()).unwrap_or(u64::MAX);
                    CheckOutcome::without_findings(CheckStatus::TimedOut { after_ms })
                }
            };
            // Nothing a check quotes reaches a face unredacted (the dashboard shows it at once).
            redactor.redact_outcome(&mut outcome);
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let _ = tx
                .send(RunEvent::CheckFinished {
                    check: id,
                    target,
                    outcome,
                    duration_ms,
                })
                .await;
        });
    }
    while set.join_next().await.is_some() {}
    let _ = tx.send(RunEvent::RunFinished { at: now() }).await;
}

/// Run the plan to completion and return the reduced state (for headless faces and tests).
pub async fn run_to_state(
    plan: Vec<Arc<dyn Check>>,
    ctx: CheckContext,
    limits: Limits,
) -> RunState {
    let (tx, mut rx) = mpsc::channel(256);
    let engine = tokio::spawn(run(plan, ctx, limits, tx));
    let mut state = RunState::default();
    while let Some(ev) = rx.recv().await {
        state.apply(ev);
    }
    if let Err(e) = engine.await {
        state.abort(format!("the engine stopped: {e}"));
    }
    state
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
