//! Targets: what a check examines (an input file, a node, a hop, the registry, a CI job).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of thing a check examines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Text given to pulldoctor: a log, events, a job log.
    Input,
    /// A Kubernetes node (containerd, kubelet).
    Node,
    /// A forwarding hop (bastion, NAT host).
    Hop,
    /// The container registry.
    Registry,
    /// The GitLab instance.
    Gitlab,
    /// A CI job.
    Job,
    /// An image reference.
    Image,
}

/// A thing a check examines, with a stable id that appears in JSON and on screen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    /// What kind of thing.
    pub kind: TargetKind,
    /// Its name: a path, a host name, `host:port`, a job name.
    pub name: String,
}

impl Target {
    /// An input file (`-` is standard input).
    #[must_use]
    pub fn input(path: &str) -> Self {
        Target {
            kind: TargetKind::Input,
            name: path.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
