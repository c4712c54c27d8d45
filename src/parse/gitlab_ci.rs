//! A model of `.gitlab-ci.yml` as GitLab evaluates it (DOMAIN.md §2.3): anchors and `<<` per
//! file ([`yaml`]), then `include: local` ([`include`]), then `extends` and `!reference`
//! ([`extend`]), then `default:`, variables and `only/except/rules` ([`rules`]). What comes out is
//! each job's effective tags, image and services, with where each came from, and whether the job
//! runs on the default branch and on an unprotected branch.
//!
//! Everything it cannot follow (remote, project, template and component includes, wildcards) is
//! a [`Note`], never a silent gap. Hostile input (an alias bomb, a huge file, an `extends` cycle)
//! is a located [`CiError`] within the budgets in [`yaml`] and [`extend`].

pub mod extend;
pub mod include;
pub mod rules;
pub mod yaml;

use serde::Serialize;
use std::collections::BTreeMap;
pub use yaml::{Loc, Node, Value, YamlError};

/// Top-level keys that are keywords, not jobs (`lib/gitlab/ci/config/entry/root.rb`; `types`
/// in older versions, `spec` is the header of a file with inputs).
pub const ROOT_KEYWORDS: [&str; 12] = [
    "default",
    "include",
    "before_script",
    "image",
    "services",
    "after_script",
    "variables",
    "stages",
    "cache",
    "workflow",
    "types",
    "spec",
];

/// Keys a job inherits from `default:` when it does not set them itself
/// (`Default::ALLOWED_KEYS`); the root-level `image`, `services`, `before_script`, `after_script`
/// and `cache` are the deprecated spelling of the same defaults.
pub const DEFAULT_KEYS: [&str; 13] = [
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
    "identity",
];

/// Why the model could not be built, located in the file that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct CiError {
    /// Where.
    pub loc: Loc,
    /// What, in GitLab's terms where GitLab has a message for it.
    pub message: String,
}

impl From<YamlError> for CiError {
    fn from(e: YamlError) -> Self {
        CiError {
            loc: e.loc,
            message: e.message,
        }
    }
}

/// Something the model did not follow or had to assume, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Where.
    pub loc: Loc,
    /// What.
    pub text: String,
}

/// What the model needs to know about the project to evaluate variables and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectContext {
    /// `group/project` as GitLab shows it (any case).
    pub project_path: String,
    /// The registry `host[:port]` (`CI_REGISTRY`), if known.
    pub registry: Option<String>,
    /// The default branch (`CI_DEFAULT_BRANCH`).
    pub default_branch: String,
    /// Whether the default branch is protected (GitLab protects it when the project is created).
    pub default_branch_protected: bool,
}

impl Default for ProjectContext {
    fn default() -> Self {
        ProjectContext {
            project_path: "group/project".to_string(),
            registry: None,
            default_branch: "main".to_string(),
            default_branch_protected: true,
        }
    }
}

/// Placeholder for `CI_COMMIT_SHA`: the model evaluates no particular commit.
pub const COMMIT_SHA_PLACEHOLDER: &str = "<commit-sha>";

impl ProjectContext {
    /// The predefined variables that matter for tags, images and rules (`app/models/project.rb`,
    /// `app/models/ci/build.rb`): `CI_REGISTRY_IMAGE` is the registry plus the lower-cased path.
    #[must_use]
    pub fn predefined(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        let path = self.project_path.trim_matches('/');
        let (namespace, name) = path.rsplit_once('/').unwrap_or(("", path));
        v.insert("CI_PROJECT_PATH".into(), path.to_string());
        v.insert("CI_PROJECT_NAMESPACE".into(), namespace.to_string());
        v.insert("CI_PROJECT_NAME".into(), name.to_string());
        v.insert(
            "CI_PROJECT_PATH_SLUG".into(),
            slug(&path.to_ascii_lowercase()),
        );
        v.insert("CI_DEFAULT_BRANCH".into(), self.default_branch.clone());
        v.insert("CI_COMMIT_SHA".into(), COMMIT_SHA_PLACEHOLDER.into());
        v.insert("CI_COMMIT_SHORT_SHA".into(), COMMIT_SHA_PLACEHOLDER.into());
        v.insert("CI".into(), "true".into());
        v.insert("GITLAB_CI".into(), "true".into());
        if let Some(reg) = &self.registry {
            v.insert("CI_REGISTRY".into(), reg.clone());
            v.insert(
                "CI_REGISTRY_IMAGE".into(),
                format!("{reg}/{}", path.to_ascii_lowercase()),
            );
        }
        v
    }
}

/// GitLab's `_SLUG` form: lower-case, anything but `[a-z0-9]` becomes `-`, at most 63 bytes,
/// no leading or trailing `-`.
fn slug(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let cut: String = mapped.chars().take(63).collect();
    cut.trim_matches('-').to_string()
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// The job sets it.
    Job,
    /// A job or hidden job it `extends` (directly or further up).
    Extends {
        /// The job that sets it.
        from: String,
    },
    /// `default:` (or the deprecated root-level keyword).
    Default,
    /// Nothing sets it.
    Unset,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Job => f.write_str("set on the job"),
            Origin::Extends { from } => write!(f, "inherited from {from} via extends"),
            Origin::Default => f.write_str("inherited from default:"),
            Origin::Unset => f.write_str("not set"),
        }
    }
}

/// One runner tag of a job: as written, as GitLab expands it, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    /// After variable expansion (an undefined variable stays literal, as in GitLab).
    pub value: String,
    /// As written.
    pub raw: String,
    /// Where it was written.
    pub loc: Loc,
}

/// A job's `image:` or one of its `services:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// The image reference, variables expanded.
    pub name: String,
    /// `alias:` of a service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// `command:` of a service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// `variables:` of a service.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Where it was written.
    pub loc: Loc,
}

/// Yes, no, or cannot tell (a `changes:` clause, an unknown variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tri {
    /// Yes.
    Yes,
    /// No.
    No,
    /// Cannot tell from the file alone.
    Unknown,
}

/// Whether the job is created in a push pipeline on a branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunsOn {
    /// On the default branch.
    pub default_branch: Tri,
    /// On a branch that is not protected (any other branch).
    pub unprotected_branch: Tri,
    /// Which clause decided (`only: refs: [main]`, `rules[0]`, `no only/except/rules`).
    pub because: String,
}

/// One job after includes, `extends`, `!reference`, `default:` and variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Its name.
    pub name: String,
    /// Where it is defined.
    pub loc: Loc,
    /// `stage:` (default `test`).
    pub stage: String,
    /// Effective runner tags.
    pub tags: Vec<Tag>,
    /// Where the tags came from.
    pub tags_origin: Origin,
    /// Effective `image:`.
    pub image: Option<ImageRef>,
    /// Where the image came from.
    pub image_origin: Origin,
    /// Effective `services:`.
    pub services: Vec<ImageRef>,
    /// Where the services came from.
    pub services_origin: Origin,
    /// The `extends` chain, nearest first.
    pub extends: Vec<String>,
    /// Global and job variables, job winning (predefined ones are not listed).
    pub variables: BTreeMap<String, String>,
    /// `before_script` + `script` + `after_script` lines, variables expanded where defined.
    pub script: Vec<String>,
    /// Whether it runs on the default and on an unprotected branch.
    pub runs_on: RunsOn,
}

impl Job {
    /// The effective tag values.
    #[must_use]
    pub fn tag_values(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.value.clone()).collect()
    }
}

/// The evaluated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiConfig {
    /// The files read, the main file first.
    pub files: Vec<String>,
    /// Visible jobs, in file order.
    pub jobs: Vec<Job>,
    /// What was not followed or had to be assumed.
    pub notes: Vec<Note>,
}

impl CiConfig {
    /// The job called `name`.
    #[must_use]
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

/// Reads a file of the repository by its path relative to the root (no leading `/`).
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Evaluate `main_file` (its text given) and the local files it includes (read with `read`).
///
/// # Errors
/// Invalid YAML, a budget exceeded, a missing local include, an unknown `extends` target, an
/// `extends` cycle or nesting deeper than GitLab allows, an unresolvable `!reference`; each with
/// file, line and column.
pub fn evaluate(
    main_file: &str,
    text: &str,
    read: ReadFile<'_>,
    ctx: &ProjectContext,
) -> Result<CiConfig, CiError> {
    let mut notes = Vec::new();
    let mut files = Vec::new();
    let root = include::load_with_includes(main_file, text, read, ctx, &mut files, &mut notes)?;
    let root_loc = root.loc.clone();
    let entries = match root.value {
        Value::Map(entries) => entries,
        Value::Null => Vec::new(),
        _ => {
            return Err(CiError {
                loc: root_loc,
                message: "the file is not a mapping of keywords and jobs".into(),
            });
        }
    };
    let resolved = extend::resolve(&entries)?;
    let jobs = rules::build_jobs(&entries, &resolved, ctx, &mut notes)?;
    Ok(CiConfig { files, jobs, notes })
}

/// [`evaluate`] with no repository to read includes from (each local include becomes an error
/// naming the file); for text pasted on its own.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_text(
    main_file: &str,
    text: &str,
    ctx: &ProjectContext,
) -> Result<CiConfig, CiError> {
    let none = |p: &str| Err(format!("no repository checkout to read '{p}' from"));
    evaluate(main_file, text, &none, ctx)
}
