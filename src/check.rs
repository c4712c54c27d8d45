//! Checks: analysis that turns evidence into findings.
//!
//! * [`catalog`] loads the declarative signature catalog (`checks/*.toml`, embedded, plus
//!   `--checks-dir`), one file per failure class.
//! * [`classify`] compiles the catalog into a [`classify::Classifier`]: one regex pass over the
//!   whole input finds candidate lines, a `RegexSet` pass over each candidate finds every
//!   signature that matches, guards and context rules veto, priority picks the class.
//! * [`logs`] is the `logs.classify` check: it scans text (a journal, events, a job log) and groups
//!   classified failures into findings.
//! * [`advice`] adds what the evidence itself says to a finding (the Docker version that works,
//!   the tags a stuck job waits for, the realm's host).
//!
//! Adding a signature needs no Rust: edit or add `checks/<class>.toml` (see the README) and run
//! `cargo test`; every example in the file is a test.

pub mod advice;
pub mod api_skew;
pub mod catalog;
pub mod classify;
pub mod cluster;
pub mod hops;
pub mod image_names;
pub mod logs;
pub mod node_registry;
pub mod registry;
pub mod remote;
pub mod runner_tags;

use crate::model::CheckId;

/// The id of the offline text classifier check.
#[must_use]
pub fn logs_check_id() -> CheckId {
    CheckId("logs.classify".to_string())
}

use crate::model::{CheckStatus, Evidence, Finding, Target};
use crate::probe::Probes;
use crate::redact::Redactor;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Everything a check may use; tests pass replaying probes.
#[derive(Clone)]
pub struct CheckContext {
    /// The I/O seam.
    pub probes: Arc<dyn Probes>,
    /// The compiled signature catalog.
    pub classifier: Arc<classify::Classifier>,
    /// Masks secrets in everything a check returns.
    pub redactor: Arc<Redactor>,
    /// Threads a CPU-bound check may use.
    pub workers: usize,
}

/// What one input looked like to the scanner (for the report's `inputs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputSummary {
    /// The name given (a path, or `-`).
    pub name: String,
    /// Bytes read.
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Failure records classified.
    pub failures: u64,
    /// Failure-looking records no signature explained.
    pub unclassified: u64,
    /// Lines skipped as too long.
    pub skipped_long_lines: u64,
    /// Lines skipped as binary.
    pub skipped_binary_lines: u64,
}

/// What a check returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Passed, failed, skipped with a reason, errored with the step.
    pub status: CheckStatus,
    /// What it found.
    pub findings: Vec<Finding>,
    /// Failure-looking lines it could not explain.
    pub unclassified: Vec<Evidence>,
    /// For input checks: what the input looked like.
    pub input: Option<InputSummary>,
}

impl CheckOutcome {
    /// A check that could not run, and why.
    #[must_use]
    pub fn errored(error: String) -> Self {
        Self::without_findings(CheckStatus::Errored { error })
    }

    /// An outcome with a status and nothing found (errored, timed out, skipped).
    #[must_use]
    pub fn without_findings(status: CheckStatus) -> Self {
        CheckOutcome {
            status,
            findings: Vec::new(),
            unclassified: Vec::new(),
            input: None,
        }
    }
}

/// A boxed check future.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckOutcome> + Send>>;

/// A check module bound to one target.
pub trait Check: Send + Sync {
    /// Its stable id.
    fn id(&self) -> CheckId;
    /// What it examines.
    fn target(&self) -> Target;
    /// Run it. Errors are data (`CheckStatus::Errored`), never panics.
    fn run(&self, ctx: CheckContext) -> CheckFuture;
}
