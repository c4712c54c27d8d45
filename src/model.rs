//! The data every part of pulldoctor exchanges: plain serde types, no I/O.
//!
//! Checks produce [`Finding`]s carrying [`Evidence`]; the engine reduces them into a run state that
//! the JSON report, the text summary (and later the dashboard and runbook) all read.

mod class;
mod evidence;
mod finding;
mod fix;
mod hop;
mod target;

pub use class::Class;
pub use evidence::{Evidence, EvidenceSource};
pub use finding::{CheckId, CheckStatus, Confidence, Finding, FindingId, Severity, Subject};
pub use fix::{FixPlan, FixRef, FixRisk, FixStep};
pub use hop::{Hop, HopVerdict};
pub use target::{Target, TargetKind};
