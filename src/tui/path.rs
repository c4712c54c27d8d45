//! The path model the dashboard draws: CI job → runner daemon → registry → hops → nodes →
//! kubelet, each stage with its worst finding, and the first broken link. Pure functions over
//! [`RunState`], so the map, the check list's grouping and the tests agree.

use crate::engine::RunState;
use crate::model::{CheckId, CheckStatus, Class, Finding, Severity, Target, TargetKind};
use std::collections::BTreeMap;

/// A stage of the path, in path order; `Inputs` groups the text checks, which span every stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Text given to pulldoctor (journals, events, job logs).
    Inputs,
    /// The GitLab CI job and its runner tags.
    CiJob,
    /// The runner's Docker daemon.
    Runner,
    /// The container registry: scheme, token realm, credentials.
    Registry,
    /// Forwarding hops between the nodes and the registry.
    Hops,
    /// The Kubernetes nodes' containerd.
    Nodes,
    /// The kubelet and what the Deployments ask it to pull.
    Kubelet,
}

impl Stage {
    /// The stages drawn on the path map, in order.
    pub const PATH: [Stage; 6] = [
        Stage::CiJob,
        Stage::Runner,
        Stage::Registry,
        Stage::Hops,
        Stage::Nodes,
        Stage::Kubelet,
    ];

    /// Its name on screen.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Stage::Inputs => "inputs",
            Stage::CiJob => "CI job",
            Stage::Runner => "runner",
            Stage::Registry => "registry",
            Stage::Hops => "hops",
            Stage::Nodes => "nodes",
            Stage::Kubelet => "kubelet",
        }
    }
}

/// Where on the path a finding points: by failure class, except for network failures, which
/// belong where the check that saw them looked.
#[must_use]
pub fn stage_of_finding(f: &Finding) -> Stage {
    // The hop walk says where on the route it broke: that place is the stage.
    if f.check.0.starts_with("path.") {
        return match f.target.kind {
            TargetKind::Node => Stage::Nodes,
            _ => Stage::Hops,
        };
    }
    match f.class {
        Class::RunnerTags => Stage::CiJob,
        Class::DockerApiSkew => Stage::Runner,
        Class::HttpVsHttps
        | Class::TlsCert
        | Class::AuthDenied
        | Class::TokenRealmUnreachable
        | Class::RateLimit
        | Class::Dns => Stage::Registry,
        // The Deployment asks the kubelet for an image CI never pushed.
        Class::ImageNotFound => Stage::Kubelet,
        Class::OtherNetwork => match f.target.kind {
            TargetKind::Node => Stage::Nodes,
            _ => Stage::Hops,
        },
        Class::None => stage_of_check(&f.check, &f.target),
    }
}

/// Which stage a check examines: by its id's area, else by its target.
#[must_use]
pub fn stage_of_check(check: &CheckId, target: &Target) -> Stage {
    let area = check.0.split('.').next().unwrap_or_default();
    match area {
        "logs" => Stage::Inputs,
        "gitlab" | "ci" => Stage::CiJob,
        "docker" | "runner" => Stage::Runner,
        "registry" => Stage::Registry,
        "path" | "hop" => Stage::Hops,
        "node" => Stage::Nodes,
        "kubelet" | "image" => Stage::Kubelet,
        _ => match target.kind {
            TargetKind::Input => Stage::Inputs,
            TargetKind::Gitlab | TargetKind::Job => Stage::CiJob,
            TargetKind::Registry => Stage::Registry,
            TargetKind::Hop => Stage::Hops,
            TargetKind::Node => Stage::Nodes,
            TargetKind::Image => Stage::Kubelet,
        },
    }
}

/// One thing at a stage (a node, a hop, a registry port) and how it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Its worst finding.
    pub worst: Option<Severity>,
    /// Every check on it ran to the end (passed or found something).
    pub checked: bool,
}

/// One stage of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageView {
    /// Which.
    pub stage: Stage,
    /// The worst finding there.
    pub worst: Option<Severity>,
    /// Findings there.
    pub findings: usize,
    /// Checks there still pending or running.
    pub busy: usize,
    /// Checks there that passed.
    pub passed: usize,
    /// Checks there that found something.
    pub failed: usize,
    /// Checks there that could not run or finish.
    pub not_run: usize,
    /// Short facts: the failure classes seen, ports (`:80`) for hops.
    pub notes: Vec<String>,
    /// Nodes, hops: each member, worst first.
    pub members: Vec<Member>,
    /// The title of the worst finding there.
    pub headline: Option<String>,
}

/// The whole map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathView {
    /// Every stage of [`Stage::PATH`], in order.
    pub stages: Vec<StageView>,
    /// Index of the first stage whose worst finding is an error or worse.
    pub first_broken: Option<usize>,
}

/// Build the map from the run state.
#[must_use]
pub fn path_view(state: &RunState) -> PathView {
    let mut stages: Vec<StageView> = Stage::PATH
        .iter()
        .map(|&stage| StageView {
            stage,
            worst: None,
            findings: 0,
            busy: 0,
            passed: 0,
            failed: 0,
            not_run: 0,
            notes: Vec::new(),
            members: Vec::new(),
            headline: None,
        })
        .collect();
    let index = |s: Stage| Stage::PATH.iter().position(|p| *p == s);
    let mut members: Vec<BTreeMap<String, (Option<Severity>, bool)>> =
        vec![BTreeMap::new(); stages.len()];
    for ((check, target), entry) in &state.checks {
        let Some(i) = index(stage_of_check(check, target)) else {
            continue;
        };
        let sv = &mut stages[i];
        match entry.status {
            CheckStatus::Pending | CheckStatus::Running => sv.busy += 1,
            CheckStatus::Passed => sv.passed += 1,
            CheckStatus::Failed => sv.failed += 1,
            CheckStatus::Skipped { .. }
            | CheckStatus::Errored { .. }
            | CheckStatus::TimedOut { .. } => sv.not_run += 1,
        }
        // Nodes are named by their checks; hops by the findings on them (a hop walk's target is
        // the route).
        if sv.stage == Stage::Nodes && target.kind == TargetKind::Node {
            let ran = matches!(entry.status, CheckStatus::Passed | CheckStatus::Failed);
            let slot = members[i]
                .entry(target.name.clone())
                .or_insert((None, true));
            slot.1 &= ran;
        }
    }
    for f in state.findings_sorted() {
        let Some(i) = index(stage_of_finding(f)) else {
            continue;
        };
        let sv = &mut stages[i];
        sv.findings += 1;
        if sv.worst.is_none_or(|w| f.severity > w) {
            sv.worst = Some(f.severity);
            sv.headline = Some(f.title.clone());
        }
        let note = match (sv.stage, &f.subject.endpoint) {
            (Stage::Hops, Some(ep)) => ep.rsplit_once(':').map(|(_, p)| format!(":{p}")),
            _ => Some(short_class(f.class).to_string()),
        };
        if let Some(note) = note
            && !sv.notes.contains(&note)
        {
            sv.notes.push(note);
        }
        let names: Vec<String> = match sv.stage {
            Stage::Kubelet if !f.subject.nodes.is_empty() => f.subject.nodes.clone(),
            Stage::Nodes | Stage::Hops if f.target.kind != TargetKind::Input => {
                vec![f.target.name.clone()]
            }
            Stage::Nodes if !f.subject.nodes.is_empty() => f.subject.nodes.clone(),
            _ => Vec::new(),
        };
        for n in names {
            let slot = members[i].entry(n).or_insert((None, true));
            if slot.0.is_none_or(|w| f.severity > w) {
                slot.0 = Some(f.severity);
            }
        }
    }
    for (sv, m) in stages.iter_mut().zip(members) {
        sv.members = m
            .into_iter()
            .map(|(name, (worst, checked))| Member {
                name,
                worst,
                checked,
            })
            .collect();
        // Worst first; names keep the order stable within a severity.
        sv.members
            .sort_by(|a, b| b.worst.cmp(&a.worst).then_with(|| a.name.cmp(&b.name)));
    }
    let first_broken = stages
        .iter()
        .position(|s| s.worst.is_some_and(|w| w >= Severity::Error));
    PathView {
        stages,
        first_broken,
    }
}

/// A failure class in a few characters, for the map's notes.
#[must_use]
pub fn short_class(class: Class) -> &'static str {
    match class {
        Class::DockerApiSkew => "api skew",
        Class::RunnerTags => "tags",
        Class::HttpVsHttps => "scheme",
        Class::TokenRealmUnreachable => "realm",
        Class::AuthDenied => "auth",
        Class::ImageNotFound => "image",
        Class::TlsCert => "tls",
        Class::Dns => "dns",
        Class::OtherNetwork => "network",
        Class::RateLimit => "rate limit",
        Class::None => "logs",
    }
}
