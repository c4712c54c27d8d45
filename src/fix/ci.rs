//! The CI side of `docker.api-skew` and `gitlab.runner-tags`, in the local checkout's
//! `.gitlab-ci.yml`: the job image moved to the lowest Docker release the daemons accept, and a
//! stuck job's `tags:` changed to the runner's (or, when that is the smaller change, the exact
//! runners-API call that adds the tag to the runner, for a person to run). Only the lines the CI
//! parser located are touched, so comments, anchors and layout stay as they are.

use super::lines::{LineEdit, line_at, local_edit_step};
use super::{Fixer, PlanFuture, Planned, Verification, VerifyFuture};
use crate::check::CheckContext;
use crate::check::advice::{DOCKER_API, release_number};
use crate::check::api_skew::{
    self, ApiSkewCheck, Daemon, DaemonTarget, JobSkew, Verdict, analyse_job, docker_image,
    negotiate,
};
use crate::check::runner_tags::{
    self, Change, CiSource, Demand, GitlabTarget, JobAnalysis, Online, analyse,
};
use crate::model::{Class, FindingId, FixPlan, FixRisk, FixStep};
use crate::parse::gitlab_ci::{CiConfig, Job, Loc, Tri};
use std::collections::BTreeMap;

/// The image fix id (the catalog's `docker_api_skew` fix).
pub const BUMP_FIX_ID: &str = "bump-ci-docker-image";
/// The tags fix id (the catalog's `runner_tags` fix).
pub const TAGS_FIX_ID: &str = "job-tags-to-runner";
/// The runner-side fix id.
pub const RUNNER_TAG_FIX_ID: &str = "runner-add-tag";

/// Read a local file as text, through the probes (what the checks read).
fn read_text(ctx: &CheckContext, path: &str) -> Result<String, String> {
    let bytes = ctx.probes.read_file(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"))
}

/// The path of a file the CI model names by its label (relative to the checkout root).
fn file_of(ci: &CiSource, label: &str) -> String {
    if label == ci.label() {
        ci.file.display().to_string()
    } else {
        ci.root.join(label).display().to_string()
    }
}

/// Line edits grouped into one local edit per file; files sorted.
fn edit_steps(
    ci: &CiSource,
    ctx: &CheckContext,
    edits: &[(Loc, LineEdit)],
) -> Result<Vec<FixStep>, String> {
    let mut by_file: BTreeMap<&str, Vec<LineEdit>> = BTreeMap::new();
    for (loc, e) in edits {
        let list = by_file.entry(loc.file.as_str()).or_default();
        if !list.contains(e) {
            list.push(e.clone());
        }
    }
    by_file
        .into_iter()
        .map(|(label, edits)| {
            let path = file_of(ci, label);
            let text = read_text(ctx, &path)?;
            local_edit_step(&path, &text, &edits)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// docker.api-skew: the job image

/// One `image:` line to change, for every job that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBump {
    /// Where the image is written.
    pub loc: Loc,
    /// The reference as it is.
    pub old_ref: String,
    /// The reference it becomes.
    pub new_ref: String,
    /// The jobs using it.
    pub jobs: Vec<String>,
    /// The `docker.api-skew` findings it answers.
    pub findings: Vec<String>,
    /// Why, in words.
    pub why: Vec<String>,
}

/// `docker:<old>` with its version replaced by `release`, keeping the registry, path and any
/// suffix (`-dind`, `-cli`). `None` for a digest (a person pins those).
#[must_use]
pub fn retagged(reference: &str, release: &str) -> Option<String> {
    if reference.contains('@') {
        return None;
    }
    let (name, tag) = match reference.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (reference, "latest"),
    };
    let suffix = tag.find('-').map_or("", |i| &tag[i..]);
    Some(format!("{name}:{release}{suffix}"))
}

/// The lowest Docker release, not older than the job's, whose client every daemon of `skews`
/// accepts.
fn lowest_working(skews: &[JobSkew]) -> Option<&'static str> {
    let current = release_number(&skews.first()?.client.release)?;
    DOCKER_API
        .iter()
        .filter(|(r, _)| release_number(r).is_some_and(|n| n >= current))
        .find(|(r, a)| {
            skews.iter().all(|s| {
                matches!(
                    negotiate(r, a, None, &s.daemon.api_version, &s.daemon.min_api_version),
                    Verdict::Ok { .. }
                )
            })
        })
        .map(|(r, _)| *r)
}

/// The id `docker.api-skew` gives its finding for `skew`.
fn skew_finding_id(skew: &JobSkew) -> String {
    FindingId::derive(&[
        api_skew::CHECK_ID,
        Class::DockerApiSkew.id(),
        &skew.job,
        &skew.daemon.source,
    ])
    .0
}

/// The image lines to change so every job's client is accepted by every daemon it talks to
/// (pure: the CI model, the main file's text by label, and the daemons read).
#[must_use]
pub fn plan_image_bumps(
    config: &CiConfig,
    texts: &dyn Fn(&str) -> Option<String>,
    daemons: &[Daemon],
) -> (Vec<ImageBump>, Vec<String>) {
    let mut bumps: Vec<ImageBump> = Vec::new();
    let mut refused = Vec::new();
    for job in &config.jobs {
        let skews: Vec<JobSkew> = if daemons.is_empty() {
            analyse_job(job, None).into_iter().collect()
        } else {
            daemons
                .iter()
                .filter_map(|d| analyse_job(job, Some(d)))
                .collect()
        };
        let failing: Vec<&JobSkew> = skews
            .iter()
            .filter(|s| !matches!(s.verdict, Verdict::Ok { .. }))
            .collect();
        let (Some(first), Some(image)) = (failing.first(), job.image.as_ref()) else {
            continue;
        };
        if let Some(pin) = &first.pinned {
            refused.push(format!(
                "job {}: DOCKER_API_VERSION={pin} is pinned, so another image does not change what it sends",
                job.name
            ));
            continue;
        }
        let Some(release) = lowest_working(&skews) else {
            refused.push(format!(
                "job {}: no Docker release pulldoctor knows is accepted by every daemon it talks to",
                job.name
            ));
            continue;
        };
        let Some(new_ref) = retagged(&image.name, release) else {
            refused.push(format!(
                "job {}: {} is pinned by digest",
                job.name, image.name
            ));
            continue;
        };
        let spelled = texts(&image.loc.file)
            .and_then(|t| line_at(&t, image.loc.line).map(|l| l.contains(&image.name)));
        if spelled != Some(true) {
            refused.push(format!(
                "job {}: {}:{} does not spell out {} (a variable?), so it is not edited",
                job.name, image.loc.file, image.loc.line, image.name
            ));
            continue;
        }
        let findings: Vec<String> = failing.iter().map(|s| skew_finding_id(s)).collect();
        let daemon_words: Vec<String> = skews
            .iter()
            .map(|s| {
                format!(
                    "Docker {} (API {} to {})",
                    s.daemon.version, s.daemon.min_api_version, s.daemon.api_version
                )
            })
            .collect();
        let why = format!(
            "job {} runs {} (Docker {}, API {}); the oldest client {} accepts is docker:{release}",
            job.name,
            image.name,
            first.client.release,
            first.client.api,
            daemon_words.join(" and ")
        );
        match bumps.iter_mut().find(|b| b.loc == image.loc) {
            Some(b) => {
                // two jobs sharing the line: the newer of the two releases serves both
                let newer = docker_image(&b.new_ref).and_then(|i| release_number(&i.release))
                    < release_number(release);
                if newer {
                    b.new_ref.clone_from(&new_ref);
                }
                b.jobs.push(job.name.clone());
                b.findings.extend(findings);
                b.why.push(why);
            }
            None => bumps.push(ImageBump {
                loc: image.loc.clone(),
                old_ref: image.name.clone(),
                new_ref,
                jobs: vec![job.name.clone()],
                findings,
                why: vec![why],
            }),
        }
    }
    (bumps, refused)
}

/// The line edit of a bump.
fn bump_edit(bump: &ImageBump, line: &str) -> LineEdit {
    LineEdit {
        line: bump.loc.line,
        old: line.to_string(),
        new: Some(line.replacen(&bump.old_ref, &bump.new_ref, 1)),
    }
}

/// `docker.api-skew`'s fixer: the CI image moved to the lowest release the daemons accept.
#[derive(Debug, Clone)]
pub struct CiImageBump {
    /// The CI file.
    pub ci: CiSource,
    /// The daemons its jobs talk to.
    pub daemons: Vec<DaemonTarget>,
}

impl CiImageBump {
    fn check(&self) -> ApiSkewCheck {
        ApiSkewCheck {
            ci: self.ci.clone(),
            daemons: self.daemons.clone(),
        }
    }

    async fn plan_now(&self, ctx: &CheckContext) -> Result<Option<Planned>, String> {
        let config = self.ci.load(ctx.probes.as_ref(), &self.ci.context)?;
        let (daemons, problems) = api_skew::read_daemons(ctx, &self.daemons).await;
        if daemons.is_empty() && !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let daemons: Vec<Daemon> = daemons.into_iter().map(|(d, _)| d).collect();
        let texts = |label: &str| read_text(ctx, &file_of(&self.ci, label)).ok();
        let (bumps, refused) = plan_image_bumps(&config, &texts, &daemons);
        if bumps.is_empty() {
            return if refused.is_empty() {
                Ok(None)
            } else {
                Err(refused.join("; "))
            };
        }
        let mut edits = Vec::new();
        for b in &bumps {
            let line = texts(&b.loc.file)
                .and_then(|t| line_at(&t, b.loc.line).map(str::to_string))
                .ok_or_else(|| format!("{}:{} is gone", b.loc.file, b.loc.line))?;
            edits.push((b.loc.clone(), bump_edit(b, &line)));
        }
        let steps = edit_steps(&self.ci, ctx, &edits)?;
        let mut why: Vec<String> = bumps.iter().flat_map(|b| b.why.clone()).collect();
        why.extend(refused.iter().map(|r| format!("not changed: {r}")));
        let changes: Vec<String> = bumps
            .iter()
            .map(|b| format!("{} to {}", b.old_ref, b.new_ref))
            .collect();
        Ok(Some(Planned {
            findings: bumps.iter().flat_map(|b| b.findings.clone()).collect(),
            why,
            plan: FixPlan {
                id: BUMP_FIX_ID.into(),
                title: format!(
                    "Move the CI image {} in {}",
                    changes.join(", "),
                    self.ci.label()
                ),
                hosts: Vec::new(),
                risk: FixRisk::Safe,
                restarts_service: false,
                verify: format!("{} on the edited {}", api_skew::CHECK_ID, self.ci.label()),
                steps,
            },
        }))
    }
}

impl Fixer for CiImageBump {
    fn subject(&self) -> String {
        self.ci.label()
    }

    fn plan<'a>(&'a self, ctx: &'a CheckContext) -> PlanFuture<'a> {
        Box::pin(self.plan_now(ctx))
    }

    fn verify<'a>(&'a self, ctx: &'a CheckContext, planned: &'a Planned) -> VerifyFuture<'a> {
        Box::pin(async move { super::rerun::verify_by_check(ctx, &self.check(), planned).await })
    }
}

// ---------------------------------------------------------------------------------------------
// gitlab.runner-tags: the job's tags, or the runner's

/// What a stuck job's tags become, as line edits (`None`: the tags are not written so that a
/// line edit can change them, e.g. through a variable or an anchor).
#[must_use]
pub fn tag_edits(
    job: &Job,
    replace: &[(String, String)],
    remove: &[String],
    new_tags: &[String],
    texts: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<(Loc, LineEdit)>> {
    if job.tags.is_empty() || new_tags.is_empty() || job.tags.iter().any(|t| t.raw.contains('$')) {
        return None;
    }
    let line_of =
        |loc: &Loc| texts(&loc.file).and_then(|t| line_at(&t, loc.line).map(str::to_string));
    let mut places: Vec<(&str, u64)> = job
        .tags
        .iter()
        .map(|t| (t.loc.file.as_str(), t.loc.line))
        .collect();
    places.sort_unstable();
    places.dedup();
    let block = places.len() == job.tags.len()
        && job
            .tags
            .iter()
            .all(|t| line_of(&t.loc).is_some_and(|l| l.trim_start().starts_with('-')));
    if block {
        // a block list: one `- tag` line each
        let mut edits = Vec::new();
        for t in &job.tags {
            let line = line_of(&t.loc)?;
            let dash = line.trim_start().strip_prefix('-')?;
            let at = line.len() - dash.len() + dash.find(&t.raw)?;
            if remove.contains(&t.value) {
                edits.push((
                    t.loc.clone(),
                    LineEdit {
                        line: t.loc.line,
                        old: line,
                        new: None,
                    },
                ));
            } else if let Some((_, to)) = replace.iter().find(|(from, _)| *from == t.value) {
                let mut new = line.clone();
                new.replace_range(at..at + t.raw.len(), to);
                edits.push((
                    t.loc.clone(),
                    LineEdit {
                        line: t.loc.line,
                        old: line,
                        new: Some(new),
                    },
                ));
            }
        }
        return Some(edits);
    }
    if places.len() == 1 {
        // a flow list: `tags: [a, b]`
        let loc = &job.tags[0].loc;
        let line = line_of(loc)?;
        let (open, close) = (line.find('[')?, line.rfind(']')?);
        if close < open || !job.tags.iter().all(|t| line[open..close].contains(&t.raw)) {
            return None;
        }
        let new = format!(
            "{}{}{}",
            &line[..=open],
            new_tags.join(", "),
            &line[close..]
        );
        return Some(vec![(
            loc.clone(),
            LineEdit {
                line: loc.line,
                old: line,
                new: Some(new),
            },
        )]);
    }
    None
}

/// The runners-API call that sets a runner's tags; the token is named, never written.
#[must_use]
pub fn runner_tag_command(gitlab: &GitlabTarget, runner_id: u64, tag_list: &[String]) -> String {
    format!(
        "curl --request PUT --header \"PRIVATE-TOKEN: ${}\" \"{}/api/v4/runners/{runner_id}\" --form \"tag_list={}\"",
        gitlab.token_env,
        gitlab.url.trim_end_matches('/'),
        tag_list.join(",")
    )
}

/// Each job of the CI file that runs, against the runners as GitLab describes them now (the
/// model's jobs, not the pending ones: a pipeline already created keeps its old tags).
fn analyses(config: &CiConfig, online: &Online, ci: &CiSource) -> Vec<JobAnalysis> {
    let mut context = ci.context.clone();
    if let Some(b) = &online.default_branch {
        context.default_branch.clone_from(b);
    }
    let protected = crate::probe::gitlab::is_protected(&context.default_branch, &online.protected);
    let now = chrono::Utc::now();
    config
        .jobs
        .iter()
        .filter(|j| j.runs_on.default_branch != Tri::No || j.runs_on.unprotected_branch != Tri::No)
        .map(|j| {
            let d = Demand::from_job(j, &context.default_branch, protected);
            analyse(&d, &online.runners, online.settings, now)
        })
        .collect()
}

/// The id `gitlab.runner-tags` gives a stuck job's finding.
fn tags_finding_id(job: &str) -> String {
    FindingId::derive(&[runner_tags::CHECK_ID, Class::RunnerTags.id(), job]).0
}

/// `gitlab.runner-tags`' fixer: the smallest change that lets a runner take each stuck job.
#[derive(Debug, Clone)]
pub struct CiRunnerTags {
    /// The CI file.
    pub ci: CiSource,
    /// GitLab.
    pub gitlab: GitlabTarget,
}

impl CiRunnerTags {
    async fn read(&self, ctx: &CheckContext) -> Result<(CiConfig, Online), String> {
        let online =
            runner_tags::ask_gitlab(ctx.probes.as_ref(), &self.gitlab, self.gitlab.token())
                .await
                .map_err(|e| ctx.redactor.redact(&e.to_string()).into_owned())?;
        let config = self.ci.load(ctx.probes.as_ref(), &self.ci.context)?;
        Ok((config, online))
    }

    async fn plan_now(&self, ctx: &CheckContext) -> Result<Option<Planned>, String> {
        let (config, online) = self.read(ctx).await?;
        let texts = |label: &str| read_text(ctx, &file_of(&self.ci, label)).ok();
        let mut edits: Vec<(Loc, LineEdit)> = Vec::new();
        let mut manual: Vec<(String, String)> = Vec::new();
        let (mut findings, mut why, mut manual_findings) = (Vec::new(), Vec::new(), Vec::new());
        for a in analyses(&config, &online, &self.ci)
            .iter()
            .filter(|a| a.stuck())
        {
            let Some(job) = config.job(&a.demand.job) else {
                continue;
            };
            let add = a.changes.iter().find_map(|c| match c {
                Change::AddRunnerTags {
                    runner_id,
                    new_tag_list,
                    add,
                    runner,
                } => Some((
                    runner_tag_command(&self.gitlab, *runner_id, new_tag_list),
                    format!(
                        "add tag{} {} to {runner}",
                        if add.len() == 1 { "" } else { "s" },
                        add.join(", ")
                    ),
                )),
                _ => None,
            });
            let edit = match a.changes.first() {
                Some(Change::EditJobTags {
                    replace,
                    remove,
                    new_tags,
                    line,
                    ..
                }) => tag_edits(job, replace, remove, new_tags, &texts).map(|e| (e, line.clone())),
                _ => None,
            };
            match (edit, add) {
                (Some((e, line)), add) => {
                    edits.extend(e);
                    findings.push(tags_finding_id(&job.name));
                    why.push(format!(
                        "job {} is stuck; the smallest change: {line}",
                        job.name
                    ));
                    if let Some((_, words)) = add {
                        why.push(format!(
                            "or, in GitLab instead: {words} (fix {RUNNER_TAG_FIX_ID})"
                        ));
                    }
                }
                (None, Some((cmd, words))) => {
                    if !manual.iter().any(|(c, _)| *c == cmd) {
                        manual.push((cmd, words));
                    }
                    manual_findings.push(tags_finding_id(&job.name));
                }
                (None, None) => {}
            }
        }
        if !edits.is_empty() {
            let steps = edit_steps(&self.ci, ctx, &edits)?;
            return Ok(Some(Planned {
                findings,
                why,
                plan: FixPlan {
                    id: TAGS_FIX_ID.into(),
                    title: format!(
                        "Change the stuck jobs' tags in {} to the runner's",
                        self.ci.label()
                    ),
                    hosts: Vec::new(),
                    risk: FixRisk::Safe,
                    restarts_service: false,
                    verify: format!(
                        "{} on the edited {} against the runners",
                        runner_tags::CHECK_ID,
                        self.ci.label()
                    ),
                    steps,
                },
            }));
        }
        if manual.is_empty() {
            return Ok(None);
        }
        Ok(Some(Planned {
            findings: manual_findings,
            why: vec!["the job's tags cannot be changed to a runner's by editing a line, so the runner gets the tag".into()],
            plan: FixPlan {
                id: RUNNER_TAG_FIX_ID.into(),
                title: format!("Add the missing tags to the runner in {}", self.gitlab.project),
                hosts: Vec::new(),
                risk: FixRisk::Safe,
                restarts_service: false,
                verify: format!("{} against the runners", runner_tags::CHECK_ID),
                steps: manual
                    .into_iter()
                    .map(|(cmd, words)| FixStep::Manual {
                        text: format!("{words} (the token is read from ${})", self.gitlab.token_env),
                        commands: vec![cmd],
                    })
                    .collect(),
            },
        }))
    }

    async fn verify_now(&self, ctx: &CheckContext, planned: &Planned) -> Verification {
        let (config, online) = match self.read(ctx).await {
            Ok(r) => r,
            Err(e) => {
                return Verification {
                    ok: false,
                    detail: format!("{} could not run: {e}", runner_tags::CHECK_ID),
                };
            }
        };
        let stuck: Vec<String> = analyses(&config, &online, &self.ci)
            .into_iter()
            .filter(|a| a.stuck() && planned.findings.contains(&tags_finding_id(&a.demand.job)))
            .map(|a| a.demand.job)
            .collect();
        if stuck.is_empty() {
            Verification {
                ok: true,
                detail: format!(
                    "{}: a runner takes every job the plan was for",
                    runner_tags::CHECK_ID
                ),
            }
        } else {
            Verification {
                ok: false,
                detail: format!(
                    "{}: still no runner for {}",
                    runner_tags::CHECK_ID,
                    stuck.join(", ")
                ),
            }
        }
    }
}

impl Fixer for CiRunnerTags {
    fn subject(&self) -> String {
        self.ci.label()
    }

    fn plan<'a>(&'a self, ctx: &'a CheckContext) -> PlanFuture<'a> {
        Box::pin(self.plan_now(ctx))
    }

    fn verify<'a>(&'a self, ctx: &'a CheckContext, planned: &'a Planned) -> VerifyFuture<'a> {
        Box::pin(self.verify_now(ctx, planned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::gitlab_ci::{ProjectContext, evaluate_text};

    const INCIDENT: &str = include_str!("../../tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml");

    fn daemon(version: &str, max: &str, min: &str) -> Daemon {
        Daemon {
            version: version.into(),
            api_version: max.into(),
            min_api_version: min.into(),
            source: format!("GET /version (docker {version})"),
            probed: true,
            loc: None,
        }
    }

    #[test]
    fn retag_keeps_registry_and_suffix() {
        assert_eq!(retagged("docker:24.0.5", "25.0").unwrap(), "docker:25.0");
        assert_eq!(
            retagged("mirror:5000/library/docker:24.0.5-dind", "25.0").unwrap(),
            "mirror:5000/library/docker:25.0-dind"
        );
        assert_eq!(retagged("docker", "25.0").unwrap(), "docker:25.0");
        assert!(retagged("docker@sha256:abcd", "25.0").is_none());
    }

    /// The incident: both jobs take docker:24.0.5 from `.docker-build` (line 14); a 29.0 daemon
    /// refuses 1.43, so the one line becomes docker:25.0 and answers both jobs' findings.
    #[test]
    fn incident_image_bump() {
        let cfg = evaluate_text(".gitlab-ci.yml", INCIDENT, &ProjectContext::default()).unwrap();
        let texts = |_: &str| Some(INCIDENT.to_string());
        let (bumps, refused) = plan_image_bumps(&cfg, &texts, &[daemon("29.0.0", "1.52", "1.44")]);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(bumps.len(), 1, "{bumps:?}");
        let b = &bumps[0];
        assert_eq!((b.loc.line, b.new_ref.as_str()), (14, "docker:25.0"));
        assert_eq!(b.jobs, ["build-frontend", "build-backend"]);
        assert_eq!(b.findings.len(), 2);
        let step = local_edit_step(
            ".gitlab-ci.yml",
            INCIDENT,
            &[bump_edit(b, line_at(INCIDENT, 14).unwrap())],
        )
        .unwrap();
        let FixStep::EditLocalFile { content, diff, .. } = step else {
            panic!()
        };
        assert!(
            diff.contains("-  image: docker:24.0.5\n+  image: docker:25.0\n"),
            "{diff}"
        );
        assert_eq!(content, INCIDENT.replace("docker:24.0.5", "docker:25.0"));
        // against a 29.3 daemon the image is already right: nothing to plan
        let (none, _) = plan_image_bumps(&cfg, &texts, &[daemon("29.3.0", "1.54", "1.40")]);
        assert!(none.is_empty());
        // two daemons: the image must suit both (20.10 takes a 25.0 client, which negotiates down)
        let (both, _) = plan_image_bumps(
            &cfg,
            &texts,
            &[
                daemon("29.0.0", "1.52", "1.44"),
                daemon("20.10.24", "1.41", "1.12"),
            ],
        );
        assert_eq!(both[0].new_ref, "docker:25.0");
    }

    /// A pinned DOCKER_API_VERSION is not fixed by an image: refused with the reason.
    #[test]
    fn a_pinned_api_version_is_not_bumped() {
        let text = "a:\n  image: docker:24.0.5\n  variables:\n    DOCKER_API_VERSION: \"1.43\"\n  script: [docker info]\n";
        let cfg = evaluate_text(".gitlab-ci.yml", text, &ProjectContext::default()).unwrap();
        let (bumps, refused) = plan_image_bumps(
            &cfg,
            &|_| Some(text.to_string()),
            &[daemon("29.0.0", "1.52", "1.44")],
        );
        assert!(bumps.is_empty());
        assert!(refused[0].contains("pinned"), "{refused:?}");
    }

    /// The incident's tags: `- mz-win-vm` (line 11) is deleted; a typo is replaced in place; a
    /// flow list is rewritten inside its brackets, comments kept.
    #[test]
    fn tag_edits_touch_only_the_tag_lines() {
        let cfg = evaluate_text(".gitlab-ci.yml", INCIDENT, &ProjectContext::default()).unwrap();
        let job = cfg.job("build-backend").unwrap();
        let texts = |_: &str| Some(INCIDENT.to_string());
        let edits = tag_edits(
            job,
            &[],
            &["mz-win-vm".into()],
            &["msi-gition".into()],
            &texts,
        )
        .unwrap();
        let e: Vec<LineEdit> = edits.into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            e,
            [LineEdit {
                line: 11,
                old: "    - mz-win-vm".into(),
                new: None
            }]
        );
        let replaced = tag_edits(
            job,
            &[("mz-win-vm".into(), "mz-win-vm2".into())],
            &[],
            &["mz-win-vm2".into(), "msi-gition".into()],
            &texts,
        )
        .unwrap();
        assert_eq!(replaced[0].1.new.as_deref(), Some("    - mz-win-vm2"));
        let flow = "b:\n  tags: [mz-win-vm, msi-gition] # the runner's\n  script: [x]\n";
        let cfg = evaluate_text(".gitlab-ci.yml", flow, &ProjectContext::default()).unwrap();
        let edits = tag_edits(
            cfg.job("b").unwrap(),
            &[],
            &["mz-win-vm".into()],
            &["msi-gition".into()],
            &|_| Some(flow.to_string()),
        )
        .unwrap();
        assert_eq!(
            edits[0].1.new.as_deref(),
            Some("  tags: [msi-gition] # the runner's")
        );
    }

    #[test]
    fn the_runner_command_names_the_token_variable() {
        let g = GitlabTarget {
            url: "http://gitlab.example/".into(),
            project: "root/gition".into(),
            token_env: "GITLAB_TOKEN".into(),
        };
        assert_eq!(
            runner_tag_command(&g, 7, &["msi-gition".into(), "mz-win-vm".into()]),
            "curl --request PUT --header \"PRIVATE-TOKEN: $GITLAB_TOKEN\" \"http://gitlab.example/api/v4/runners/7\" --form \"tag_list=msi-gition,mz-win-vm\""
        );
    }
}
