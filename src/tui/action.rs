//! UI intents. Keys become actions through the keymap; only [`super::app::App::update`] turns an
//! action into a state change (and, for I/O, an [`Effect`] the loop carries out).

use crate::model::{CheckId, Target};

/// Something the person asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Move the selection up one row.
    Up,
    /// Move the selection down one row.
    Down,
    /// Move a page up.
    PageUp,
    /// Move a page down.
    PageDown,
    /// To the first row.
    Top,
    /// To the last row.
    Bottom,
    /// Open what is selected (a check's findings, a finding's detail).
    Open,
    /// Close the detail, a modal, or the filter.
    Back,
    /// Focus the next pane.
    NextPane,
    /// Focus the previous pane.
    PrevPane,
    /// Re-run the selected check (re-runs coalesce).
    Rerun,
    /// Re-run every check.
    RerunAll,
    /// Show the fix plan of the selected finding.
    FixPlan,
    /// Apply the fix plan shown.
    ApplyFix,
    /// Write the runbook export.
    ExportRunbook,
    /// Write the JSON report.
    WriteJson,
    /// Start typing a filter.
    Filter,
    /// Show only checks that did not pass and their findings.
    FailuresOnly,
    /// Show the keys.
    Help,
    /// Leave.
    Quit,
}

/// The key of one check on one target.
pub type CheckKey = (CheckId, Target);

/// I/O the event loop carries out for the app (the app itself performs none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start these checks again.
    Rerun(Vec<CheckKey>),
    /// Write the JSON report.
    WriteJson,
    /// Write the runbook export.
    ExportRunbook,
    /// Plan the fixes of a finding from fresh facts (its id, then the hosts it names).
    PlanFixes(Vec<String>),
    /// Apply the plans last made.
    ApplyFixes,
    /// Leave the dashboard.
    Quit,
}
