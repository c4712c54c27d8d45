//! Fix plans as data: typed steps shown before anything runs (the fix engine applies them).

use serde::{Deserialize, Serialize};

/// A fix a finding points to, by id, with its one-line title.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FixRef {
    /// Stable fix id from the signature catalog (`hosts-toml-http`, …).
    pub id: String,
    /// What it does, in one line.
    pub title: String,
}

impl FixRef {
    /// The fixes among `offered` whose ids are in `ids`, in the order offered.
    #[must_use]
    pub fn among(offered: &[FixRef], ids: &[&str]) -> Vec<FixRef> {
        offered
            .iter()
            .filter(|f| ids.contains(&f.id.as_str()))
            .cloned()
            .collect()
    }
}

/// How much a fix can disturb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixRisk {
    /// Changes configuration only; nothing restarts.
    Safe,
    /// Restarts a service or changes traffic.
    Disruptive,
    /// Deletes or replaces something that cannot be restored from the backup alone.
    Destructive,
}

/// One step of a fix plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FixStep {
    /// Write a whole file on a host (backup first, then temp file + rename).
    WriteRemoteFile {
        /// Inventory host name.
        host: String,
        /// Absolute path.
        path: String,
        /// Octal mode, e.g. `0644`.
        mode: String,
        /// `user:group`.
        owner: String,
        /// The new content.
        content: String,
    },
    /// Change part of a file on a host, shown as a unified diff. Refused when the file no longer
    /// has the content the plan was made from.
    EditRemoteFile {
        /// Inventory host name.
        host: String,
        /// Absolute path.
        path: String,
        /// Unified diff of the change (what is shown; secrets redacted).
        diff: String,
        /// The whole new content.
        #[serde(skip)]
        content: String,
        /// SHA-256 of the content the plan was made from.
        before: String,
    },
    /// Run a command on a host.
    RunRemoteCommand {
        /// Inventory host name.
        host: String,
        /// The command line.
        command: String,
        /// Run it through sudo.
        sudo: bool,
        /// A command that exits 0 when the change is already there (the step is then skipped).
        check: Option<String>,
        /// The command that undoes it on rollback.
        undo: Option<String>,
    },
    /// Restart a service on a host. On rollback it restarts again, after the files are back.
    RestartService {
        /// Inventory host name.
        host: String,
        /// The service, in words (`containerd`).
        service: String,
        /// The command that restarts it and exits 0 only when it runs again.
        command: String,
        /// Run it through sudo.
        sudo: bool,
    },
    /// Change a file in the local checkout, shown as a unified diff. Refused when the file no
    /// longer has the content the plan was made from.
    EditLocalFile {
        /// Path as given (relative to the working directory, or absolute).
        path: String,
        /// Unified diff of the change.
        diff: String,
        /// The whole new content.
        #[serde(skip)]
        content: String,
        /// SHA-256 of the content the plan was made from.
        before: String,
    },
    /// Run a command here (kubectl); secrets come from environment variables named in the
    /// command, never from the command text.
    RunLocalCommand {
        /// The shell command line, as shown.
        command: String,
        /// Environment variables it reads that must be set (their values are never shown).
        needs_env: Vec<String>,
        /// The command that undoes it on rollback.
        undo: Option<String>,
    },
    /// Something a person must do; pulldoctor shows the exact commands.
    Manual {
        /// What to do and why.
        text: String,
        /// The commands to run.
        commands: Vec<String>,
    },
}

/// A complete fix: steps, where they run, how risky, and how it will be verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixPlan {
    /// Stable id.
    pub id: String,
    /// One line.
    pub title: String,
    /// The hosts it touches.
    pub hosts: Vec<String>,
    /// Risk level.
    pub risk: FixRisk,
    /// Whether a service restarts.
    pub restarts_service: bool,
    /// The check re-run to verify it.
    pub verify: String,
    /// The steps, in order.
    pub steps: Vec<FixStep>,
}
