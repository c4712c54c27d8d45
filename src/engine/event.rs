//! Run events: what happened, in the order it happened (engine → every face).

use crate::check::CheckOutcome;
use crate::model::{CheckId, Target};
use chrono::{DateTime, Utc};

/// Something that happened during a run. Past tense: the engine reports, the faces reduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// The run began with these (check, target) pairs planned.
    RunStarted {
        /// When.
        at: DateTime<Utc>,
        /// Every planned check and its target.
        planned: Vec<(CheckId, Target)>,
    },
    /// A check started.
    CheckStarted {
        /// Which.
        check: CheckId,
        /// On what.
        target: Target,
        /// When.
        at: DateTime<Utc>,
    },
    /// A check finished (passed, failed, errored, timed out).
    CheckFinished {
        /// Which.
        check: CheckId,
        /// On what.
        target: Target,
        /// What it returned.
        outcome: CheckOutcome,
        /// How long it took.
        duration_ms: u64,
    },
    /// Every check has finished.
    RunFinished {
        /// When.
        at: DateTime<Utc>,
    },
}
