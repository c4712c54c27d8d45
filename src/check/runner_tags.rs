//! `gitlab.runner-tags`: for each CI job, its effective tags and where they came from, every
//! runner that could take it and every runner that cannot (and why), and the smallest change that
//! would unstick it. The matching rule is GitLab's (DOMAIN.md §2.1): protected-only runners take
//! only protected refs; the job's tags must be a subset of the runner's; an untagged job needs
//! `run_untagged`; a paused or offline runner takes nothing.
//!
//! [`analyse`] is pure; [`RunnerTagsCheck`] gathers the CI file (local includes followed), the
//! stuck banner if one was pasted, and, when a GitLab token is available, the project's runners
//! and pending jobs over the REST API.

use crate::model::{
    CheckId, CheckStatus, Class, Confidence, Evidence, EvidenceSource, Finding, FindingId, FixRef,
    Severity, Subject, Target, TargetKind,
};
use crate::parse::banner::StuckBanner;
use crate::parse::gitlab_ci::{CiConfig, Job, Loc, Origin, Tri};
use serde::Serialize;
use std::collections::BTreeSet;

/// The check's id.
pub const CHECK_ID: &str = "gitlab.runner-tags";

/// GitLab's `ONLINE_CONTACT_TIMEOUT`: a runner that has not asked for jobs for this long is
/// offline (DOMAIN.md §2.2).
pub const ONLINE_CONTACT_SECS: i64 = 2 * 3600;

/// A runner as GitLab describes it (`GET /runners/:id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runner {
    /// Its id.
    pub id: u64,
    /// Its description (what the UI shows as its name).
    pub description: String,
    /// `tag_list`.
    pub tags: Vec<String>,
    /// `run_untagged`.
    pub run_untagged: bool,
    /// `paused` (or `active = false`).
    pub paused: bool,
    /// `online`, when GitLab said.
    pub online: Option<bool>,
    /// `status` (`online`, `offline`, `stale`, `never_contacted`, `paused`).
    pub status: Option<String>,
    /// `contacted_at`, RFC 3339.
    pub contacted_at: Option<String>,
    /// `access_level == "ref_protected"`.
    pub protected_only: bool,
    /// `runner_type` (`instance_type`, `group_type`, `project_type`).
    pub runner_type: Option<String>,
}

impl Runner {
    /// How the runner is named in findings: `#12 "msi runner"`.
    #[must_use]
    pub fn label(&self) -> String {
        if self.description.is_empty() {
            format!("runner #{}", self.id)
        } else {
            format!("runner #{} \"{}\"", self.id, self.description)
        }
    }
}

/// Project settings that decide which runners it may use at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunnerSettings {
    /// `shared_runners_enabled` (None: unknown).
    pub shared_runners_enabled: Option<bool>,
    /// `group_runners_enabled` (None: unknown).
    pub group_runners_enabled: Option<bool>,
}

/// A job waiting for (or about to wait for) a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Demand {
    /// The job's name.
    pub job: String,
    /// Its effective tags.
    pub tags: Vec<String>,
    /// Whether its ref is protected (a pending job's pipeline; or the model's branch).
    pub protected: Tri,
    /// The ref, when known.
    pub ref_name: Option<String>,
    /// Where its tags came from (when the CI file was read).
    pub tags_origin: Option<Origin>,
    /// Where each tag was written (when the CI file was read), in tag order.
    pub tag_locs: Vec<Loc>,
    /// Which job or hidden job writes the tags (for the change to suggest).
    pub tags_written_in: Option<String>,
    /// The pending job's id, when it came from the API.
    pub pending_id: Option<u64>,
}

impl Demand {
    /// A job of the CI model, on a push to the default branch (protected as the project says) or,
    /// if the job does not run there, on an unprotected branch.
    #[must_use]
    pub fn from_job(job: &Job, default_branch: &str, default_protected: bool) -> Self {
        let (protected, ref_name) =
            match (job.runs_on.default_branch, job.runs_on.unprotected_branch) {
                (Tri::Yes, _) => (
                    if default_protected { Tri::Yes } else { Tri::No },
                    Some(default_branch.to_string()),
                ),
                (_, Tri::Yes) => (Tri::No, None),
                _ => (Tri::Unknown, None),
            };
        let tags_written_in = match &job.tags_origin {
            Origin::Job => Some(job.name.clone()),
            Origin::Extends { from } => Some(from.clone()),
            Origin::Default => Some("default".to_string()),
            Origin::Unset => None,
        };
        Demand {
            job: job.name.clone(),
            tags: job.tag_values(),
            protected,
            ref_name,
            tags_origin: Some(job.tags_origin.clone()),
            tag_locs: job.tags.iter().map(|t| t.loc.clone()).collect(),
            tags_written_in,
            pending_id: None,
        }
    }
}

/// Why a runner cannot take a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocker {
    /// The job has tags the runner lacks.
    MissingTags {
        /// The job's tags the runner does not have.
        tags: Vec<String>,
    },
    /// The job has no tags and the runner does not run untagged jobs.
    UntaggedNotAllowed,
    /// The runner is paused.
    Paused,
    /// The runner has not contacted GitLab recently (or ever).
    Offline {
        /// GitLab's status, or what the contact time says.
        status: String,
        /// `contacted_at`.
        contacted_at: Option<String>,
    },
    /// The runner takes protected refs only; this job's ref is not protected.
    ProtectedOnly,
    /// The project does not use this kind of runner (shared or group runners disabled).
    NotAvailable {
        /// Which setting.
        setting: String,
    },
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::MissingTags { tags } => write!(
                f,
                "lacks tag{} {}",
                if tags.len() == 1 { "" } else { "s" },
                tags.join(", ")
            ),
            Blocker::UntaggedNotAllowed => {
                f.write_str("does not run untagged jobs (run_untagged is false)")
            }
            Blocker::Paused => f.write_str("is paused"),
            Blocker::Offline {
                status,
                contacted_at,
            } => match contacted_at {
                Some(at) => write!(f, "is {status} (last contact {at})"),
                None => write!(f, "is {status}"),
            },
            Blocker::ProtectedOnly => {
                f.write_str("runs protected branches and tags only, and this ref is not protected")
            }
            Blocker::NotAvailable { setting } => {
                write!(f, "is not available to the project ({setting} is off)")
            }
        }
    }
}

/// One runner against one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunnerVerdict {
    /// The runner.
    pub runner: Runner,
    /// Why it cannot take the job; empty when it can.
    pub blockers: Vec<Blocker>,
}

/// A change that would let a runner take the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Edit the job's tags in `.gitlab-ci.yml`.
    EditJobTags {
        /// The runner that would then match.
        runner: String,
        /// Tag replacements (job tag → the runner's nearest tag).
        replace: Vec<(String, String)>,
        /// Tags to drop.
        remove: Vec<String>,
        /// The tags afterwards.
        new_tags: Vec<String>,
        /// The one-line change, located.
        line: String,
    },
    /// Add tags to a runner (its settings page or `PUT /runners/:id`).
    AddRunnerTags {
        /// The runner.
        runner: String,
        /// Its id.
        runner_id: u64,
        /// The tags to add.
        add: Vec<String>,
        /// Its tag list afterwards.
        new_tag_list: Vec<String>,
    },
    /// Let the runner pick untagged jobs.
    EnableRunUntagged {
        /// The runner.
        runner: String,
    },
    /// Unpause the runner.
    Unpause {
        /// The runner.
        runner: String,
    },
    /// Start the runner process (or fix its connection to GitLab).
    BringOnline {
        /// The runner.
        runner: String,
    },
    /// Protect the ref, or let the runner take unprotected refs.
    ProtectedRef {
        /// The runner.
        runner: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::EditJobTags { line, .. } => f.write_str(line),
            Change::AddRunnerTags {
                runner,
                add,
                new_tag_list,
                ..
            } => write!(
                f,
                "add tag{} {} to {runner} (tag_list becomes {})",
                if add.len() == 1 { "" } else { "s" },
                add.join(", "),
                new_tag_list.join(", ")
            ),
            Change::EnableRunUntagged { runner } => {
                write!(f, "enable \"Run untagged jobs\" on {runner}")
            }
            Change::Unpause { runner } => write!(f, "unpause {runner}"),
            Change::BringOnline { runner } => write!(
                f,
                "start {runner} (gitlab-runner status / gitlab-runner verify on its host)"
            ),
            Change::ProtectedRef { runner } => {
                write!(f, "protect the branch, or untick \"Protected\" on {runner}")
            }
        }
    }
}

/// One job against every runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobAnalysis {
    /// The job and its tags.
    pub demand: Demand,
    /// Every runner, those that can take it first.
    pub verdicts: Vec<RunnerVerdict>,
    /// Smallest changes first.
    pub changes: Vec<Change>,
}

impl JobAnalysis {
    /// Whether no runner can take the job.
    #[must_use]
    pub fn stuck(&self) -> bool {
        !self.verdicts.iter().any(|v| v.blockers.is_empty())
    }
}

/// Levenshtein distance, for "did you mean" tag suggestions.
#[must_use]
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether a runner is online, from GitLab's own answer or, failing that, its last contact.
fn offline(runner: &Runner, now: chrono::DateTime<chrono::Utc>) -> Option<Blocker> {
    let status = runner.status.as_deref().unwrap_or("");
    let contact = runner
        .contacted_at
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok());
    let online = match runner.online {
        Some(o) => o,
        None => match status {
            "online" => true,
            "offline" | "stale" | "never_contacted" => false,
            _ => contact.is_some_and(|c| {
                (now - c.with_timezone(&chrono::Utc)).num_seconds() < ONLINE_CONTACT_SECS
            }),
        },
    };
    if online {
        return None;
    }
    let status = match status {
        "" | "paused" => {
            if contact.is_none() {
                "never contacted".to_string()
            } else {
                "offline".to_string()
            }
        }
        s => s.replace('_', " "),
    };
    Some(Blocker::Offline {
        status,
        contacted_at: runner.contacted_at.clone(),
    })
}

/// Match one job against every runner (GitLab's `RunnerMatcher`), and find the smallest changes.
#[must_use]
pub fn analyse(
    demand: &Demand,
    runners: &[Runner],
    settings: RunnerSettings,
    now: chrono::DateTime<chrono::Utc>,
) -> JobAnalysis {
    let job_tags: BTreeSet<&str> = demand.tags.iter().map(String::as_str).collect();
    let mut verdicts: Vec<RunnerVerdict> = runners
        .iter()
        .map(|r| {
            let mut blockers = Vec::new();
            match r.runner_type.as_deref() {
                Some("instance_type") if settings.shared_runners_enabled == Some(false) => {
                    blockers.push(Blocker::NotAvailable {
                        setting: "shared_runners_enabled".into(),
                    });
                }
                Some("group_type") if settings.group_runners_enabled == Some(false) => {
                    blockers.push(Blocker::NotAvailable {
                        setting: "group_runners_enabled".into(),
                    });
                }
                _ => {}
            }
            if r.paused {
                blockers.push(Blocker::Paused);
            }
            if let Some(b) = offline(r, now) {
                blockers.push(b);
            }
            if r.protected_only && demand.protected == Tri::No {
                blockers.push(Blocker::ProtectedOnly);
            }
            let runner_tags: BTreeSet<&str> = r.tags.iter().map(String::as_str).collect();
            if job_tags.is_empty() {
                if !r.run_untagged {
                    blockers.push(Blocker::UntaggedNotAllowed);
                }
            } else {
                let missing: Vec<String> = demand
                    .tags
                    .iter()
                    .filter(|t| !runner_tags.contains(t.as_str()))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    blockers.push(Blocker::MissingTags { tags: missing });
                }
            }
            RunnerVerdict {
                runner: r.clone(),
                blockers,
            }
        })
        .collect();
    // cheapest to fix first: fewest missing tags, then fewest other blockers
    let cost = |v: &RunnerVerdict| -> usize {
        v.blockers
            .iter()
            .map(|b| match b {
                Blocker::MissingTags { tags } => tags.len(),
                Blocker::NotAvailable { .. } | Blocker::Offline { .. } => 3,
                _ => 1,
            })
            .sum()
    };
    verdicts.sort_by_key(|v| (cost(v), v.runner.id));
    let changes = verdicts
        .first()
        .filter(|v| !v.blockers.is_empty())
        .map(|v| changes_for(demand, v))
        .unwrap_or_default();
    JobAnalysis {
        demand: demand.clone(),
        verdicts,
        changes,
    }
}

/// The changes that make this runner take the job, the one in the repository first.
fn changes_for(demand: &Demand, verdict: &RunnerVerdict) -> Vec<Change> {
    let runner = verdict.runner.label();
    let mut out = Vec::new();
    for b in &verdict.blockers {
        match b {
            Blocker::MissingTags { tags } => {
                let spare: Vec<&String> = verdict
                    .runner
                    .tags
                    .iter()
                    .filter(|t| !demand.tags.contains(t))
                    .collect();
                let mut replace = Vec::new();
                let mut remove = Vec::new();
                for missing in tags {
                    let nearest = spare
                        .iter()
                        .filter(|s| !replace.iter().any(|(_, r): &(String, String)| r == **s))
                        .map(|s| (edit_distance(missing, s), *s))
                        .min();
                    match nearest {
                        // a typo or a near name: at most a third of the tag differs
                        Some((d, s)) if d <= (missing.chars().count() / 3).max(2) => {
                            replace.push((missing.clone(), s.clone()));
                        }
                        _ => remove.push(missing.clone()),
                    }
                }
                let new_tags: Vec<String> = demand
                    .tags
                    .iter()
                    .filter(|t| !remove.contains(t))
                    .map(|t| {
                        replace
                            .iter()
                            .find(|(m, _)| m == t)
                            .map_or_else(|| t.clone(), |(_, r)| r.clone())
                    })
                    .collect();
                let untagged_blocked = new_tags.is_empty() && !verdict.runner.run_untagged;
                if !untagged_blocked {
                    out.push(Change::EditJobTags {
                        runner: runner.clone(),
                        line: edit_line(demand, &replace, &remove, &new_tags),
                        replace,
                        remove,
                        new_tags,
                    });
                }
                let mut new_tag_list = verdict.runner.tags.clone();
                new_tag_list.extend(tags.iter().cloned());
                out.push(Change::AddRunnerTags {
                    runner: runner.clone(),
                    runner_id: verdict.runner.id,
                    add: tags.clone(),
                    new_tag_list,
                });
            }
            Blocker::UntaggedNotAllowed => {
                if let Some(tag) = verdict.runner.tags.first() {
                    out.push(Change::EditJobTags {
                        runner: runner.clone(),
                        replace: Vec::new(),
                        remove: Vec::new(),
                        new_tags: vec![tag.clone()],
                        line: format!("{}: add `tags: [{tag}]`", demand.job),
                    });
                }
                out.push(Change::EnableRunUntagged {
                    runner: runner.clone(),
                });
            }
            Blocker::Paused => out.push(Change::Unpause {
                runner: runner.clone(),
            }),
            Blocker::Offline { .. } => out.push(Change::BringOnline {
                runner: runner.clone(),
            }),
            Blocker::ProtectedOnly => out.push(Change::ProtectedRef {
                runner: runner.clone(),
            }),
            Blocker::NotAvailable { .. } => {}
        }
    }
    out
}

/// The edit as one line a person can apply: which file and line, in which (hidden) job.
fn edit_line(
    demand: &Demand,
    replace: &[(String, String)],
    remove: &[String],
    new_tags: &[String],
) -> String {
    let written_in = demand
        .tags_written_in
        .as_deref()
        .filter(|w| *w != demand.job)
        .map(|w| format!(" (in {w}, which {} extends)", demand.job))
        .unwrap_or_default();
    let loc_of = |tag: &str| {
        demand
            .tags
            .iter()
            .position(|t| t == tag)
            .and_then(|i| demand.tag_locs.get(i))
    };
    // one tag per line (block list): the change is that line
    let lines: BTreeSet<u64> = demand.tag_locs.iter().map(|l| l.line).collect();
    let block = lines.len() == demand.tag_locs.len() && !demand.tag_locs.is_empty();
    if block && replace.len() + remove.len() == 1 {
        if let Some((from, to)) = replace.first()
            && let Some(loc) = loc_of(from)
        {
            return format!(
                "{}:{}{written_in}: change `- {from}` to `- {to}`",
                loc.file, loc.line
            );
        }
        if let Some(tag) = remove.first()
            && let Some(loc) = loc_of(tag)
        {
            return format!(
                "{}:{}{written_in}: delete the line `- {tag}`",
                loc.file, loc.line
            );
        }
    }
    let at = demand
        .tag_locs
        .first()
        .map(|l| format!("{}:{}", l.file, l.line))
        .unwrap_or_else(|| demand.job.clone());
    format!("{at}{written_in}: set `tags: [{}]`", new_tags.join(", "))
}

/// Jobs of the CI model whose effective tags are the banner's (as a set).
#[must_use]
pub fn jobs_for_banner<'a>(config: &'a CiConfig, banner: &StuckBanner) -> Vec<&'a Job> {
    let want: BTreeSet<&str> = banner.tags.iter().map(String::as_str).collect();
    config
        .jobs
        .iter()
        .filter(|j| {
            let have: BTreeSet<String> = j.tag_values().into_iter().collect();
            have.iter().map(String::as_str).collect::<BTreeSet<_>>() == want
        })
        .collect()
}

/// Fix references of the catalog's `runner_tags` class that a change points to.
fn fix_ids(changes: &[Change]) -> Vec<&'static str> {
    let mut ids = Vec::new();
    if changes
        .iter()
        .any(|c| matches!(c, Change::EditJobTags { .. }))
    {
        ids.push("job-tags-to-runner");
    }
    if changes
        .iter()
        .any(|c| matches!(c, Change::AddRunnerTags { .. }))
    {
        ids.push("runner-add-tag");
    }
    ids
}

/// Where the job's data came from, for evidence.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The CI file path as given.
    pub ci_file: Option<String>,
    /// The runners request (`GET /projects/:id/runners`).
    pub runners_request: Option<String>,
    /// The banner input name.
    pub banner_input: Option<String>,
    /// The banner text as pasted.
    pub banner_text: Option<String>,
}

fn job_target(job: &str) -> Target {
    Target {
        kind: TargetKind::Job,
        name: job.to_string(),
    }
}

/// The finding for a job no runner can take (None when one can).
#[must_use]
pub fn finding(analysis: &JobAnalysis, sources: &Sources, fixes: &[FixRef]) -> Option<Finding> {
    if !analysis.stuck() {
        return None;
    }
    let d = &analysis.demand;
    let origin = d
        .tags_origin
        .as_ref()
        .map(|o| format!(" ({o})"))
        .unwrap_or_default();
    let tags = if d.tags.is_empty() {
        "no tags".to_string()
    } else {
        format!("tags {}", d.tags.join(", "))
    };
    let mut explanation = format!("Job {} has {tags}{origin}.", d.job);
    if let Some(r) = &d.ref_name {
        explanation.push_str(&format!(
            " It runs on {r} ({}).",
            match d.protected {
                Tri::Yes => "protected",
                Tri::No => "not protected",
                Tri::Unknown => "protection unknown",
            }
        ));
    }
    if analysis.verdicts.is_empty() {
        explanation.push_str(" The project has no runners at all.");
    }
    for v in &analysis.verdicts {
        let why: Vec<String> = v.blockers.iter().map(ToString::to_string).collect();
        explanation.push_str(&format!(
            "\n- {} (tags: {}): {}",
            v.runner.label(),
            if v.runner.tags.is_empty() {
                "none".to_string()
            } else {
                v.runner.tags.join(", ")
            },
            why.join("; ")
        ));
    }
    let missing: Vec<String> = analysis
        .verdicts
        .first()
        .into_iter()
        .flat_map(|v| &v.blockers)
        .filter_map(|b| match b {
            Blocker::MissingTags { tags } => Some(tags.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let title = match (missing.as_slice(), analysis.verdicts.first()) {
        ([], _) | (_, None) => format!("Job {} is stuck: no runner can take it", d.job),
        (m, Some(v)) => format!(
            "Job {} is stuck: {} lacks tag{} {}",
            d.job,
            v.runner.label(),
            if m.len() == 1 { "" } else { "s" },
            m.join(", ")
        ),
    };
    let mut evidence = Vec::new();
    if let Some(path) = &sources.ci_file {
        for (tag, loc) in d.tags.iter().zip(&d.tag_locs) {
            evidence.push(Evidence::file_line(
                if loc.file.is_empty() {
                    path.clone()
                } else {
                    loc.file.clone()
                },
                loc.line,
                format!("- {tag}"),
            ));
        }
    }
    if let Some(req) = &sources.runners_request {
        for v in &analysis.verdicts {
            evidence.push(Evidence::new(
                EvidenceSource::Probe {
                    request: req.clone(),
                },
                format!(
                    "{}: tag_list=[{}] run_untagged={} paused={} status={} access_level={}",
                    v.runner.label(),
                    v.runner.tags.join(", "),
                    v.runner.run_untagged,
                    v.runner.paused,
                    v.runner.status.as_deref().unwrap_or("unknown"),
                    if v.runner.protected_only {
                        "ref_protected"
                    } else {
                        "not_protected"
                    }
                ),
            ));
        }
    }
    if let (Some(input), Some(text)) = (&sources.banner_input, &sources.banner_text) {
        evidence.push(Evidence::file_line(input.clone(), 1, text.clone()));
    }
    let next_steps: Vec<String> = analysis.changes.iter().map(ToString::to_string).collect();
    let ids = fix_ids(&analysis.changes);
    Some(Finding {
        subject: Subject {
            job: Some(d.job.clone()),
            tags: d.tags.clone(),
            ..Subject::default()
        },
        explanation,
        next_steps,
        evidence,
        confidence: if sources.runners_request.is_some() {
            Confidence::Confirmed
        } else {
            Confidence::Inferred
        },
        fixes: fixes
            .iter()
            .filter(|f| ids.contains(&f.id.as_str()))
            .cloned()
            .collect(),
        ..Finding::with_id(
            FindingId::derive(&[CHECK_ID, Class::RunnerTags.id(), &d.job]),
            CHECK_ID,
            Class::RunnerTags,
            Severity::Error,
            job_target(&d.job),
            title,
        )
    })
}

/// Offline: the banner's tags, and the jobs of the CI file that carry exactly those tags.
#[must_use]
pub fn offline_finding(
    banner: &StuckBanner,
    config: Option<&CiConfig>,
    sources: &Sources,
    fixes: &[FixRef],
) -> Finding {
    let jobs: Vec<&Job> = config
        .map(|c| jobs_for_banner(c, banner))
        .unwrap_or_default();
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let who = if names.is_empty() {
        "The stuck job".to_string()
    } else {
        format!(
            "Job{} {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
    };
    let mut explanation = format!(
        "{who} wait{} for a runner that has all of these tags: {}.",
        if names.len() == 1 || names.is_empty() {
            "s"
        } else {
            ""
        },
        banner.tags.join(", ")
    );
    for j in &jobs {
        explanation.push_str(&format!("\n- {}: tags {}", j.name, j.tags_origin));
        if let Some(t) = j.tags.first() {
            explanation.push_str(&format!(" ({}:{})", t.loc.file, t.loc.line));
        }
    }
    explanation.push_str("\nNo runner data was read (give [gitlab] project and a token in GITLAB_TOKEN to compare with the runners' tag lists).");
    let mut evidence = Vec::new();
    if let (Some(input), Some(text)) = (&sources.banner_input, &sources.banner_text) {
        evidence.push(Evidence::file_line(input.clone(), 1, text.clone()));
    }
    for j in &jobs {
        for t in &j.tags {
            evidence.push(Evidence::file_line(
                t.loc.file.clone(),
                t.loc.line,
                format!("- {}", t.raw),
            ));
        }
    }
    let job = names
        .first()
        .cloned()
        .unwrap_or_else(|| "stuck job".to_string());
    Finding {
        subject: Subject {
            job: names.first().cloned(),
            tags: banner.tags.clone(),
            ..Subject::default()
        },
        explanation,
        next_steps: vec![
            "On the runner host: gitlab-runner list (the registered runners) and compare their tags with the job's.".into(),
            "In GitLab: Settings > CI/CD > Runners shows each runner's tags, Protected flag and Run untagged jobs.".into(),
        ],
        evidence,
        confidence: Confidence::Inferred,
        fixes: fixes.to_vec(),
        ..Finding::with_id(
            FindingId::derive(&[CHECK_ID, Class::RunnerTags.id(), "banner", &banner.tags.join(",")]),
            CHECK_ID,
            Class::RunnerTags,
            Severity::Error,
            job_target(&job),
            format!("{who} stuck waiting for a runner with tags {}", banner.tags.join(", ")),
        )
    }
}

/// A tag that is a literal `$VAR`: GitLab left an undefined variable in place, so the job waits
/// for a runner tagged with that text (DOMAIN.md §2.3).
#[must_use]
pub fn literal_variable_findings(config: &CiConfig, ci_file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for job in &config.jobs {
        for t in job.tags.iter().filter(|t| t.value.contains('$')) {
            out.push(Finding {
                subject: Subject { job: Some(job.name.clone()), tags: job.tag_values(), ..Subject::default() },
                explanation: format!(
                    "GitLab expands variables in tags when it creates the pipeline and leaves an undefined one as written, so job {} waits for a runner tagged `{}` literally ({}).",
                    job.name, t.value, job.tags_origin
                ),
                next_steps: vec![format!(
                    "Define the variable in variables: (of {ci_file} or the job), or as a project CI/CD variable, or write the tag itself at {}:{}.",
                    t.loc.file, t.loc.line
                )],
                evidence: vec![Evidence::file_line(t.loc.file.clone(), t.loc.line, format!("- {}", t.raw))],
                confidence: Confidence::Inferred,
                ..Finding::with_id(
                    FindingId::derive(&[CHECK_ID, "literal-variable", &job.name, &t.value]),
                    CHECK_ID,
                    Class::RunnerTags,
                    Severity::Error,
                    job_target(&job.name),
                    format!("Job {} has the tag `{}`: a variable that is not defined", job.name, t.value),
                )
            });
        }
    }
    out
}

/// The outcome for a set of findings: failed when any, passed otherwise.
#[must_use]
pub fn outcome(findings: Vec<Finding>) -> super::CheckOutcome {
    super::CheckOutcome {
        status: if findings.is_empty() {
            CheckStatus::Passed
        } else {
            CheckStatus::Failed
        },
        findings,
        unclassified: Vec::new(),
        input: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::gitlab_ci::{ProjectContext, evaluate_text};

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn runner(id: u64, tags: &[&str]) -> Runner {
        Runner {
            id,
            description: format!("r{id}"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            run_untagged: false,
            paused: false,
            online: Some(true),
            status: Some("online".into()),
            contacted_at: Some("2026-11-27T11:50:00Z".into()),
            protected_only: false,
            runner_type: Some("project_type".into()),
        }
    }

    fn demand(tags: &[&str], protected: Tri) -> Demand {
        Demand {
            job: "build".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            protected,
            ref_name: None,
            tags_origin: None,
            tag_locs: Vec::new(),
            tags_written_in: None,
            pending_id: None,
        }
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("msi-gition", "msi-gitlon"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    /// The matching rule, blocker by blocker.
    #[test]
    fn blockers() {
        let d = demand(&["docker"], Tri::No);
        let mut r = runner(1, &["docker", "linux"]);
        assert!(!analyse(&d, &[r.clone()], RunnerSettings::default(), now()).stuck());
        r.protected_only = true;
        let a = analyse(&d, &[r.clone()], RunnerSettings::default(), now());
        assert_eq!(a.verdicts[0].blockers, [Blocker::ProtectedOnly]);
        assert!(
            !analyse(
                &demand(&["docker"], Tri::Yes),
                &[r.clone()],
                RunnerSettings::default(),
                now()
            )
            .stuck()
        );
        r.protected_only = false;
        r.paused = true;
        r.online = None;
        r.status = None;
        r.contacted_at = Some("2026-11-27T08:00:00Z".into());
        let a = analyse(&d, &[r.clone()], RunnerSettings::default(), now());
        assert_eq!(
            a.verdicts[0].blockers.len(),
            2,
            "{:?}",
            a.verdicts[0].blockers
        );
        assert!(matches!(a.verdicts[0].blockers[1], Blocker::Offline { .. }));
        let untagged = demand(&[], Tri::Yes);
        let a = analyse(
            &untagged,
            &[runner(2, &["docker"])],
            RunnerSettings::default(),
            now(),
        );
        assert_eq!(a.verdicts[0].blockers, [Blocker::UntaggedNotAllowed]);
        assert_eq!(a.changes[0].to_string(), "build: add `tags: [docker]`");
        let mut shared = runner(3, &["docker"]);
        shared.runner_type = Some("instance_type".into());
        let settings = RunnerSettings {
            shared_runners_enabled: Some(false),
            group_runners_enabled: None,
        };
        assert!(analyse(&d, &[shared], settings, now()).stuck());
    }

    /// A typo is replaced by the runner's nearest tag; an unrelated tag is dropped.
    #[test]
    fn nearest_tag() {
        let d = demand(&["msi-gitlon", "linux"], Tri::Yes);
        let a = analyse(
            &d,
            &[runner(1, &["msi-gition", "linux"]), runner(2, &["windows"])],
            RunnerSettings::default(),
            now(),
        );
        assert_eq!(a.verdicts[0].runner.id, 1);
        match &a.changes[0] {
            Change::EditJobTags { replace, .. } => assert_eq!(
                replace,
                &[("msi-gitlon".to_string(), "msi-gition".to_string())]
            ),
            other => panic!("{other:?}"),
        }
    }

    /// The incident: the job's tags come from `.docker-build`; the runner has `msi-gition` only;
    /// the one-line change deletes `- mz-win-vm` on its line.
    #[test]
    fn incident_one_line_change() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml"
        ))
        .unwrap();
        let cfg = evaluate_text(".gitlab-ci.yml", &text, &ProjectContext::default()).unwrap();
        let job = cfg.job("build-backend").unwrap();
        let d = Demand::from_job(job, "main", true);
        assert_eq!(d.protected, Tri::Yes);
        let mut r = runner(7, &["msi-gition"]);
        r.description = "msi".into();
        let a = analyse(&d, &[r], RunnerSettings::default(), now());
        assert!(a.stuck());
        assert_eq!(
            a.verdicts[0].blockers,
            [Blocker::MissingTags {
                tags: vec!["mz-win-vm".into()]
            }]
        );
        assert_eq!(
            a.changes[0].to_string(),
            ".gitlab-ci.yml:11 (in .docker-build, which build-backend extends): delete the line `- mz-win-vm`"
        );
        assert_eq!(
            a.changes[1].to_string(),
            "add tag mz-win-vm to runner #7 \"msi\" (tag_list becomes msi-gition, mz-win-vm)"
        );
        let f = finding(
            &a,
            &Sources {
                ci_file: Some(".gitlab-ci.yml".into()),
                ..Sources::default()
            },
            &[],
        )
        .unwrap();
        assert_eq!(
            f.title,
            "Job build-backend is stuck: runner #7 \"msi\" lacks tag mz-win-vm"
        );
        assert_eq!(
            f.evidence[0].source,
            EvidenceSource::File {
                path: ".gitlab-ci.yml".into(),
                line: 11
            }
        );
    }
}

/// Where the CI file is and what the model needs to evaluate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiSource {
    /// The `.gitlab-ci.yml` path as given.
    pub file: std::path::PathBuf,
    /// The repository root (local includes are relative to it).
    pub root: std::path::PathBuf,
    /// Project path, registry, default branch.
    pub context: crate::parse::gitlab_ci::ProjectContext,
}

impl CiSource {
    /// The name the model gives the main file: relative to the root when inside it.
    #[must_use]
    pub fn label(&self) -> String {
        self.file
            .strip_prefix(&self.root)
            .unwrap_or(&self.file)
            .display()
            .to_string()
    }

    /// Read and evaluate the file (and its local includes) through the probes, so a recorded
    /// run replays it.
    ///
    /// # Errors
    /// The file cannot be read, or the model's located error.
    pub fn load(
        &self,
        probes: &dyn crate::probe::Probes,
        context: &crate::parse::gitlab_ci::ProjectContext,
    ) -> Result<CiConfig, String> {
        let read = |path: &std::path::Path| -> Result<String, String> {
            // read, not classified as a log (and kept apart from the logs in a bundle)
            let bytes = probes
                .read_file(&path.display().to_string())
                .map_err(|e| e.to_string())?;
            if bytes.len() > crate::parse::gitlab_ci::yaml::MAX_FILE_BYTES {
                return Err(format!(
                    "{} is {} bytes; CI files are read up to {} bytes",
                    path.display(),
                    bytes.len(),
                    crate::parse::gitlab_ci::yaml::MAX_FILE_BYTES
                ));
            }
            String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
        };
        let text = read(&self.file)?;
        let include = |p: &str| read(&self.root.join(p));
        crate::parse::gitlab_ci::evaluate(&self.label(), &text, &include, context)
            .map_err(|e| e.to_string())
    }
}

/// GitLab as the inventory names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabTarget {
    /// `external_url`.
    pub url: String,
    /// `group/project`.
    pub project: String,
    /// The environment variable holding the token.
    pub token_env: String,
}

impl GitlabTarget {
    /// The inventory's `[gitlab]`, when it names both the URL and the project.
    #[must_use]
    pub fn from_inventory(inv: &crate::inventory::Inventory) -> Option<Self> {
        match (&inv.gitlab.url, &inv.gitlab.project) {
            (Some(url), Some(project)) => Some(GitlabTarget {
                url: url.clone(),
                project: project.clone(),
                token_env: inv.gitlab.token_env.clone(),
            }),
            _ => None,
        }
    }

    /// The token, if its variable is set.
    #[must_use]
    pub fn token(&self) -> Option<crate::parse::dockercfg::Secret> {
        std::env::var(&self.token_env)
            .ok()
            .filter(|t| !t.is_empty())
            .map(crate::parse::dockercfg::Secret::new)
    }
}

/// `gitlab.runner-tags` bound to a project.
pub struct RunnerTagsCheck {
    /// The CI file, if any.
    pub ci: Option<CiSource>,
    /// GitLab, if configured.
    pub gitlab: Option<GitlabTarget>,
    /// An input holding the pasted stuck banner.
    pub banner: Option<String>,
}

/// What the API said about the project, when it could be asked.
pub struct Online {
    /// The project's runners, with their details.
    pub runners: Vec<Runner>,
    /// Which kinds of runner the project may use.
    pub settings: RunnerSettings,
    /// Protected branch names (and wildcards).
    pub protected: Vec<String>,
    /// Jobs waiting for a runner.
    pub pending: Vec<crate::probe::gitlab::PendingJob>,
    /// The project's default branch.
    pub default_branch: Option<String>,
    /// The runners request, described.
    pub request: String,
    /// GitLab's own lint of the CI file, when it answered.
    pub lint: Option<crate::probe::gitlab::Lint>,
}

/// Ask GitLab about the project: its settings, runners, protected branches, pending jobs, lint.
///
/// # Errors
/// The first request that failed.
pub async fn ask_gitlab(
    probes: &dyn crate::probe::Probes,
    g: &GitlabTarget,
    token: Option<crate::parse::dockercfg::Secret>,
) -> Result<Online, crate::probe::gitlab::GitlabError> {
    let client = crate::probe::gitlab::GitlabClient::new(probes, &g.url, &g.project, token);
    let project = client.project().await?;
    let runners = client.runners().await?;
    let protected = client.protected_branches().await?;
    let pending = client.pending_jobs().await?;
    let default_branch = project.default_branch.clone();
    // the lint API is optional (older GitLab, or a file that does not lint): it only confirms
    let lint = client
        .lint(default_branch.as_deref().unwrap_or("main"))
        .await
        .ok();
    Ok(Online {
        runners,
        settings: RunnerSettings {
            shared_runners_enabled: project.shared_runners_enabled,
            group_runners_enabled: project.group_runners_enabled,
        },
        protected,
        pending,
        default_branch,
        request: client.describe(&client.runners_path()),
        lint,
    })
}

impl super::Check for RunnerTagsCheck {
    fn id(&self) -> CheckId {
        CheckId(CHECK_ID.to_string())
    }

    fn target(&self) -> Target {
        let name = self
            .gitlab
            .as_ref()
            .map(|g| g.project.clone())
            .or_else(|| self.ci.as_ref().map(CiSource::label))
            .unwrap_or_else(|| "stuck job".to_string());
        Target {
            kind: TargetKind::Gitlab,
            name,
        }
    }

    fn run(&self, ctx: super::CheckContext) -> super::CheckFuture {
        let ci = self.ci.clone();
        let gitlab = self.gitlab.clone();
        let banner_input = self.banner.clone();
        Box::pin(async move {
            let fixes = ctx
                .classifier
                .catalog()
                .get(Class::RunnerTags)
                .map(super::catalog::Signature::fix_refs)
                .unwrap_or_default();
            let mut problems: Vec<String> = Vec::new();
            // a token was given and GitLab could not be asked: the check did not run as asked
            let mut failed_to_read = false;
            let online = match gitlab.as_ref().map(|g| (g, g.token())) {
                // without a token GitLab is still asked: a replayed bundle answers, and a public
                // instance may; a refusal then means "no token", not a failure
                Some((g, token)) => {
                    let has_token = token.is_some();
                    match ask_gitlab(ctx.probes.as_ref(), g, token).await {
                        Ok(o) => Some(o),
                        Err(e) => {
                            let e = ctx.redactor.redact(&e.to_string()).into_owned();
                            if has_token {
                                failed_to_read = true;
                                problems.push(e);
                            } else {
                                problems.push(format!(
                                    "no GitLab token in ${} (runners not read; without it: {e})",
                                    g.token_env
                                ));
                            }
                            None
                        }
                    }
                }
                None => None,
            };
            let mut context = ci.as_ref().map(|c| c.context.clone()).unwrap_or_default();
            if let Some(b) = online.as_ref().and_then(|o| o.default_branch.clone()) {
                context.default_branch = b;
            }
            if let Some(o) = &online {
                context.default_branch_protected =
                    crate::probe::gitlab::is_protected(&context.default_branch, &o.protected);
            }
            let config = match &ci {
                Some(source) => match source.load(ctx.probes.as_ref(), &context) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        failed_to_read = true;
                        problems.push(format!("the CI file: {e}"));
                        None
                    }
                },
                None => None,
            };
            let banner_text = banner_input.as_ref().and_then(|name| {
                ctx.probes
                    .read_file(name)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            });
            let banner = banner_text
                .as_deref()
                .and_then(crate::parse::banner::parse_stuck);
            let sources = Sources {
                ci_file: ci.as_ref().map(CiSource::label),
                runners_request: online.as_ref().map(|o| o.request.clone()),
                banner_input: banner_input.clone(),
                banner_text: banner_text.as_ref().map(|t| {
                    crate::parse::text::collapse_whitespace(t)
                        .chars()
                        .take(400)
                        .collect()
                }),
            };
            let mut findings = Vec::new();
            if let Some(c) = &config {
                findings.extend(literal_variable_findings(
                    c,
                    &sources.ci_file.clone().unwrap_or_default(),
                ));
            }
            let now = chrono::Utc::now();
            match &online {
                Some(o) => {
                    let mut demands: Vec<Demand> = Vec::new();
                    for p in &o.pending {
                        let model = config.as_ref().and_then(|c| c.job(&p.name));
                        let protected = if p.tag {
                            Tri::Unknown
                        } else if crate::probe::gitlab::is_protected(&p.ref_name, &o.protected) {
                            Tri::Yes
                        } else {
                            Tri::No
                        };
                        let mut d = model.map_or_else(
                            || Demand {
                                job: p.name.clone(),
                                tags: Vec::new(),
                                protected,
                                ref_name: None,
                                tags_origin: None,
                                tag_locs: Vec::new(),
                                tags_written_in: None,
                                pending_id: None,
                            },
                            |j| {
                                Demand::from_job(
                                    j,
                                    &context.default_branch,
                                    context.default_branch_protected,
                                )
                            },
                        );
                        // the pending job's own tags are the truth (GitLab sorts them); the model
                        // only says where they were written, when it agrees
                        let same: bool = {
                            let a: BTreeSet<&String> = d.tags.iter().collect();
                            let b: BTreeSet<&String> = p.tag_list.iter().collect();
                            a == b && d.tags.len() == p.tag_list.len()
                        };
                        if !same {
                            d.tag_locs.clear();
                            d.tags_origin = None;
                            d.tags_written_in = None;
                            d.tags.clone_from(&p.tag_list);
                        }
                        d.protected = protected;
                        d.ref_name = Some(p.ref_name.clone());
                        d.pending_id = Some(p.id);
                        demands.push(d);
                    }
                    if demands.is_empty()
                        && let Some(c) = &config
                    {
                        demands.extend(
                            c.jobs
                                .iter()
                                .filter(|j| {
                                    j.runs_on.default_branch != Tri::No
                                        || j.runs_on.unprotected_branch != Tri::No
                                })
                                .map(|j| {
                                    Demand::from_job(
                                        j,
                                        &context.default_branch,
                                        context.default_branch_protected,
                                    )
                                }),
                        );
                    }
                    for d in &demands {
                        let a = analyse(d, &o.runners, o.settings, now);
                        findings.extend(finding(&a, &sources, &fixes));
                    }
                    if let (Some(lint), Some(c)) = (&o.lint, &config) {
                        findings.extend(lint_disagreements(lint, c));
                    }
                }
                None => {
                    if let Some(b) = &banner {
                        findings.push(offline_finding(b, config.as_ref(), &sources, &fixes));
                    }
                }
            }
            for f in &mut findings {
                for e in &mut f.evidence {
                    e.text = ctx.redactor.redact(&e.text).into_owned();
                }
            }
            if findings.is_empty() {
                if online.is_some() {
                    return outcome(findings);
                }
                let why = if problems.is_empty() {
                    "no runner data and no stuck banner: give [gitlab] url and project with a token in GITLAB_TOKEN, or the banner with --stuck-banner".to_string()
                } else {
                    problems.join("; ")
                };
                return if failed_to_read {
                    super::CheckOutcome::errored(why)
                } else {
                    super::CheckOutcome::without_findings(CheckStatus::Skipped { reason: why })
                };
            }
            if !problems.is_empty()
                && let Some(first) = findings.first_mut()
            {
                first
                    .explanation
                    .push_str(&format!("\nNot read: {}.", problems.join("; ")));
            }
            outcome(findings)
        })
    }
}

/// Jobs whose effective tags in the model differ from GitLab's own lint (`include_jobs=true`).
#[must_use]
pub fn lint_disagreements(lint: &crate::probe::gitlab::Lint, config: &CiConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    for lj in &lint.jobs {
        let Some(job) = config.job(&lj.name) else {
            continue;
        };
        let mut ours = job.tag_values();
        let mut theirs = lj.tag_list.clone();
        ours.sort();
        theirs.sort();
        if ours != theirs {
            out.push(Finding {
                subject: Subject { job: Some(job.name.clone()), tags: lj.tag_list.clone(), ..Subject::default() },
                explanation: "The checkout differs from the default branch GitLab linted, or an include pulldoctor does not follow (remote, project, template) sets the tags. GitLab's answer is the one runners see.".into(),
                next_steps: vec!["Compare the checkout with the default branch (git fetch; git diff origin/HEAD -- .gitlab-ci.yml).".into()],
                ..Finding::with_id(
                    FindingId::derive(&[CHECK_ID, "lint", &job.name]),
                    CHECK_ID,
                    Class::RunnerTags,
                    Severity::Warning,
                    job_target(&job.name),
                    format!("Job {}: GitLab's lint gives tags {} where the local file gives {}", job.name, lj.tag_list.join(", "), job.tag_values().join(", ")),
                )
            });
        }
    }
    out
}
