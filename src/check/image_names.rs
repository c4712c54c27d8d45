//! `image.names`: what the workloads ask for, against what CI pushes and what the registry holds
//! (INCIDENT.md fault 5: Deployments asked for `…/api` and `…/react` while CI pushed
//! `…/backend` and `…/frontend`).
//!
//! Three inputs, each optional but the first:
//! * wanted images: every container and init container of every workload ([`wanted_from_objects`]);
//! * pushed images: `docker push`/`build -t`/`--tag`, buildx, kaniko `--destination` and their
//!   output lines in CI job logs ([`pushed_from_job_log`]), with `$CI_REGISTRY_IMAGE` and friends
//!   expanded from [`CiVariables`]. The `.gitlab-ci.yml` model adds [`PushedImage`]s with a
//!   [`PushSource::CiConfig`] source the same way;
//! * the registry's repositories and tags ([`RegistryContents`], from [`list_registry`]:
//!   `GET /v2/_catalog` and `GET /v2/<name>/tags/list`, both paginated by `Link`).
//!
//! Every mismatch becomes a finding naming the nearest existing name (edit distance over path
//! components, each existing name offered to one missing name at most), a missing tag apart from a
//! missing repository, upper case in a path (GitLab lower-cases `CI_REGISTRY_IMAGE`), and an image
//! that names another `host:port` than the registry's.

use crate::model::{
    CheckId, Class, Confidence, Evidence, EvidenceSource, Finding, FindingId, Severity, Subject,
    Target, TargetKind,
};
use crate::parse::dockercfg::Secret;
use crate::parse::image_ref::{ImageRef, ImageRefError, split_host_port};
use crate::parse::kube::Objects;
use crate::probe::Probes;
use crate::probe::http::HttpRequest;
use crate::probe::registry::{Credentials, Endpoint, Session};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

/// The check id.
pub const CHECK_ID: &str = "image.names";
/// Pages of `_catalog` or `tags/list` followed at most (a registry that links forever stops here).
const MAX_PAGES: usize = 50;
/// Entries asked for per page.
const PAGE_SIZE: usize = 1000;

/// Where a workload's image was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The image as written.
    pub image: String,
    /// `Deployment/gition/api`, container `api` (init).
    pub object: String,
    /// The container.
    pub container: String,
    /// The input it came from (a manifest path, or the kubectl command and host).
    pub origin: String,
    /// Line in a manifest file.
    pub line: Option<u64>,
    /// True when the input is command output (kubectl), false for a file.
    pub from_command: bool,
}

/// Where a pushed image was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushSource {
    /// A CI job log line.
    JobLog {
        /// The log's name.
        path: String,
        /// 1-based line.
        line: u64,
    },
    /// A `.gitlab-ci.yml` script line (from the CI model).
    CiConfig {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The job.
        job: String,
    },
}

/// One image CI pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// The reference with variables expanded (a tag that still holds `$…` stands for any tag).
    pub image: String,
    /// The line it was read from, verbatim.
    pub text: String,
    /// Where.
    pub source: PushSource,
}

/// The CI variables image names are built from (DOMAIN.md §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiVariables(pub BTreeMap<String, String>);

impl CiVariables {
    /// `CI_REGISTRY` = the registry's `host:port`, `CI_PROJECT_PATH` = the project as written,
    /// `CI_REGISTRY_IMAGE` = `CI_REGISTRY/` + the project path **lower-cased**, as GitLab sets them.
    #[must_use]
    pub fn gitlab(registry: &str, project: &str) -> Self {
        let mut v = BTreeMap::new();
        v.insert("CI_REGISTRY".into(), registry.to_string());
        v.insert("CI_PROJECT_PATH".into(), project.to_string());
        v.insert(
            "CI_REGISTRY_IMAGE".into(),
            format!("{registry}/{}", project.to_lowercase()),
        );
        CiVariables(v)
    }

    /// Expand `$NAME` and `${NAME}`; unknown variables are left as written.
    #[must_use]
    pub fn expand(&self, s: &str) -> String {
        static VAR: LazyLock<Regex> = LazyLock::new(|| {
            #[allow(clippy::expect_used)] // a constant pattern, covered by tests
            Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)").expect("var")
        });
        VAR.replace_all(s, |c: &regex::Captures<'_>| {
            let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
            self.0
                .get(name)
                .cloned()
                .unwrap_or_else(|| c[0].to_string())
        })
        .into_owned()
    }
}

/// Every container image of every workload in `objects`, read from `origin`. Pods owned by a
/// controller are left out when their owner's chain is in the input (its template says the same).
#[must_use]
pub fn wanted_from_objects(objects: &Objects, origin: &str, from_command: bool) -> Vec<ImageUse> {
    let present: BTreeSet<String> = objects
        .workloads
        .iter()
        .map(|w| format!("{}/{}", w.object.kind, w.object.name))
        .collect();
    let mut out = Vec::new();
    for w in &objects.workloads {
        if w.owner.as_ref().is_some_and(|o| present.contains(o)) {
            continue;
        }
        for c in &w.containers {
            out.push(ImageUse {
                image: c.image.clone(),
                object: w.object.label(),
                container: if c.init {
                    format!("{} (init)", c.container)
                } else {
                    c.container.clone()
                },
                origin: origin.to_string(),
                line: c.line.or(w.object.line),
                from_command,
            });
        }
    }
    out
}

#[allow(clippy::expect_used)] // constant patterns, covered by tests
static PUSH_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\b(?:docker|podman|buildah|nerdctl)\s+(?:image\s+)?push\s+(?:--?[a-z][a-z-]*(?:=\S+)?\s+)*["']?([^\s"']+)"#)
        .expect("push command")
});
#[allow(clippy::expect_used)]
static BUILD_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:docker|podman|buildah|nerdctl)\s+(?:buildx\s+|image\s+)?(?:build|bud)\b|/kaniko/executor|\bexecutor\s+--")
        .expect("build command")
});
#[allow(clippy::expect_used)]
static TAG_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|\s)(?:-t|--tag|--destination|-d)(?:\s+|=)["']?([^\s"']+)"#)
        .expect("tag flag")
});
/// What the tools print when they name or push an image: docker push, BuildKit, kaniko.
#[allow(clippy::expect_used)]
static PUSH_OUTPUT: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"\bnaming to (\S+?)(?: done)?\s*$",
        r"\bpushing manifest for ([^\s@]+)",
        r"\bPushing image to (\S+)",
        r"^\s*Pushed (\S+?)(?:@sha256:\S+)?\s*$",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("push output"))
    .collect()
});
#[allow(clippy::expect_used)]
static PUSH_REFERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"The push refers to repository \[([^\]\s]+)\]").expect("push refers")
});
#[allow(clippy::expect_used)]
static DIGEST_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*([\w][\w.-]{0,127}): digest: sha256:[0-9a-f]{64}").expect("digest line")
});

/// The image names one command or output line builds with a tag or pushes (not yet expanded).
fn pushes_in_line(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(c) = PUSH_COMMAND.captures(line) {
        found.push(c[1].to_string());
    }
    if BUILD_COMMAND.is_match(line) {
        found.extend(TAG_FLAG.captures_iter(line).map(|c| c[1].to_string()));
    }
    for re in PUSH_OUTPUT.iter() {
        if let Some(c) = re.captures(line) {
            found.push(c[1].to_string());
        }
    }
    found
}

/// Add an image to `out` unless it is there, expanded, or a bare unresolved `$VARIABLE`.
fn add_push(
    out: &mut Vec<PushedImage>,
    vars: &CiVariables,
    token: &str,
    text: &str,
    source: PushSource,
) {
    let image = vars.expand(token.trim_end_matches([',', ';', '\\']));
    if image.is_empty() || image.starts_with('$') || image == "." {
        return;
    }
    if !out.iter().any(|p| p.image == image) {
        out.push(PushedImage {
            image,
            text: text.trim().to_string(),
            source,
        });
    }
}

/// The images a CI job log shows being built with a tag or pushed, expanded with `vars`.
/// Tokens that are still a bare `$VARIABLE` after expansion are left out.
#[must_use]
pub fn pushed_from_job_log(text: &str, origin: &str, vars: &CiVariables) -> Vec<PushedImage> {
    let mut out: Vec<PushedImage> = Vec::new();
    // `The push refers to repository [X]`: the tag comes on a later `TAG: digest:` line
    let mut pending_repo: Option<(String, String, u64)> = None;
    let at = |line: u64| PushSource::JobLog {
        path: origin.to_string(),
        line,
    };
    for (line_no, raw) in (1u64..).zip(text.lines()) {
        let line = crate::parse::text::clean_line(raw);
        for token in pushes_in_line(&line) {
            add_push(&mut out, vars, &token, &line, at(line_no));
        }
        if let Some(c) = PUSH_REFERS.captures(&line) {
            pending_repo = Some((c[1].to_string(), line.clone(), line_no));
        }
        if let Some(c) = DIGEST_LINE.captures(&line)
            && let Some((repo, text, first)) = pending_repo.take()
        {
            add_push(
                &mut out,
                vars,
                &format!("{repo}:{}", &c[1]),
                &text,
                at(first),
            );
        }
    }
    out
}

/// The images the jobs of a `.gitlab-ci.yml` model build with a tag or push, from their script
/// lines (variables already expanded by the model where it knows them; `vars` fills the rest).
#[must_use]
pub fn pushed_from_ci(
    ci: &crate::parse::gitlab_ci::CiConfig,
    vars: &CiVariables,
) -> Vec<PushedImage> {
    let mut out = Vec::new();
    for job in &ci.jobs {
        for line in &job.script {
            for token in pushes_in_line(line) {
                add_push(
                    &mut out,
                    vars,
                    &token,
                    line,
                    PushSource::CiConfig {
                        path: job.loc.file.clone(),
                        line: job.loc.line.max(1),
                        job: job.name.clone(),
                    },
                );
            }
        }
    }
    out
}

/// One repository's tags as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagListing {
    /// The tags (`truncated`: more pages than were followed).
    Tags {
        /// The tags.
        tags: Vec<String>,
        /// Not every page was read.
        truncated: bool,
    },
    /// The registry says there is no such repository (404 `NAME_UNKNOWN`).
    NoRepository,
    /// It could not be listed (auth, network), and why.
    Unknown(String),
}

/// What one registry holds, as far as it could be listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryContents {
    /// The registry's `host:port`.
    pub registry: String,
    /// `_catalog`, when it could be read (GitLab's registry refuses it to all but admins).
    pub catalog: Option<Vec<String>>,
    /// Why the catalog could not be read.
    pub catalog_error: Option<String>,
    /// The catalog had more pages than were followed.
    pub catalog_truncated: bool,
    /// Tags of the repositories asked about.
    pub tags: BTreeMap<String, TagListing>,
    /// The requests made, for evidence (`GET http://…/v2/_catalog?n=1000`).
    pub requests: Vec<String>,
}

impl RegistryContents {
    /// Does the repository exist? `None` when the listing cannot tell.
    #[must_use]
    pub fn has_repository(&self, path: &str) -> Option<bool> {
        match self.tags.get(path) {
            Some(TagListing::Tags { .. }) => Some(true),
            Some(TagListing::NoRepository) => Some(false),
            Some(TagListing::Unknown(_)) | None => match &self.catalog {
                Some(c) if c.iter().any(|r| r == path) => Some(true),
                Some(_) if !self.catalog_truncated => Some(false),
                _ => None,
            },
        }
    }

    /// Every repository known to exist.
    #[must_use]
    pub fn repositories(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.catalog.iter().flatten().cloned().collect();
        for (repo, t) in &self.tags {
            if matches!(t, TagListing::Tags { .. }) {
                all.insert(repo.clone());
            }
        }
        all
    }
}

/// A `Link: <url>; rel="next"` header's URL, resolved against `base` (`scheme://host:port`).
#[must_use]
pub fn next_link(link: &str, base: &str) -> Option<String> {
    for part in link.split(',') {
        let (url, params) = part.split_once(';').unwrap_or((part, ""));
        let is_next = params.split(';').any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            continue;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        if url.starts_with("http://") || url.starts_with("https://") {
            // only follow links to the same registry
            return url.starts_with(base).then(|| url.to_string());
        }
        if url.starts_with('/') {
            return Some(format!("{base}{url}"));
        }
    }
    None
}

fn string_list(body: &str, field: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    match v.get(field)? {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

/// How the listing authenticates: credentials for the token flow (a pull secret's), and the
/// tokens got so far, by scope.
struct ListingAuth<'c> {
    credentials: Option<&'c Credentials>,
    tokens: BTreeMap<String, Secret>,
}

/// GET every page of a paginated listing; the items of `field`, whether pages were left, or why
/// not (the status and the registry's error code). A 401 with a Bearer challenge runs the token
/// flow for `scope` (as containerd does) and asks again with the token.
async fn get_pages(
    session: &mut Session<'_>,
    first: String,
    field: &str,
    scope: &str,
    auth: &mut ListingAuth<'_>,
) -> Result<(Vec<String>, bool), (u16, String)> {
    let base = session.endpoint.base.clone();
    let mut path = first;
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut resp = session
            .get(&path, auth.tokens.get(scope))
            .await
            .map_err(|e| (0, e.to_string()))?;
        if resp.status == 401 && !auth.tokens.contains_key(scope) {
            let bearer = crate::probe::registry::challenges(&resp)
                .into_iter()
                .find(crate::parse::www_auth::Challenge::is_bearer);
            if let Some(challenge) = bearer {
                let reply = session
                    .fetch_token(&challenge, scope, auth.credentials)
                    .await
                    .map_err(|e| (0, format!("token service: {e}")))?;
                let Some(token) = reply.token else {
                    return Err((
                        resp.status,
                        format!(
                            "{} (token service answered {} to {})",
                            resp.status_text(),
                            reply.response.status_text(),
                            reply.request
                        ),
                    ));
                };
                auth.tokens.insert(scope.to_string(), token);
                resp = session
                    .get(&path, auth.tokens.get(scope))
                    .await
                    .map_err(|e| (0, e.to_string()))?;
            }
        }
        if resp.status != 200 {
            let why = match crate::probe::registry::registry_errors(&resp.body).first() {
                Some(e) => format!("{} ({})", resp.status_text(), e.code),
                None => resp.status_text(),
            };
            return Err((resp.status, why));
        }
        let page = string_list(&resp.body, field)
            .ok_or_else(|| (resp.status, format!("the answer has no `{field}` list")))?;
        items.extend(page);
        match resp.header("link").and_then(|l| next_link(l, &base)) {
            Some(next) => path = next[base.len()..].to_string(),
            None => return Ok((items, false)),
        }
    }
    Ok((items, true))
}

/// List a registry: its catalog (all pages), then the tags of each repository in `paths` (and,
/// when the catalog was read, only those it has). With `credentials`, a 401 runs the token flow
/// (scope `registry:catalog:*` for the catalog, `repository:<path>:pull` for tags); GitLab grants
/// the catalog to administrators only, so there the tags lists decide.
pub async fn list_registry(
    probes: &dyn Probes,
    endpoint: Endpoint,
    paths: &BTreeSet<String>,
    credentials: Option<&Credentials>,
) -> RegistryContents {
    list_registry_paged(probes, endpoint, paths, credentials, PAGE_SIZE).await
}

/// [`list_registry`] asking for `page_size` entries per page.
pub async fn list_registry_paged(
    probes: &dyn Probes,
    endpoint: Endpoint,
    paths: &BTreeSet<String>,
    credentials: Option<&Credentials>,
    page_size: usize,
) -> RegistryContents {
    let registry = endpoint
        .base
        .split_once("://")
        .map_or(endpoint.base.as_str(), |(_, h)| h)
        .to_string();
    let mut session = Session::new(probes, endpoint);
    let mut auth = ListingAuth {
        credentials,
        tokens: BTreeMap::new(),
    };
    let mut contents = RegistryContents {
        registry,
        ..RegistryContents::default()
    };
    let first = format!("/v2/_catalog?n={page_size}");
    match get_pages(
        &mut session,
        first,
        "repositories",
        "registry:catalog:*",
        &mut auth,
    )
    .await
    {
        Ok((repos, truncated)) => {
            contents.catalog = Some(repos);
            contents.catalog_truncated = truncated;
        }
        Err((_, why)) => contents.catalog_error = Some(why),
    }
    for path in paths {
        if contents.has_repository(path) == Some(false) {
            contents.tags.insert(path.clone(), TagListing::NoRepository);
            continue;
        }
        let first = format!("/v2/{path}/tags/list?n={page_size}");
        let scope = format!("repository:{path}:pull");
        let listing = match get_pages(&mut session, first, "tags", &scope, &mut auth).await {
            Ok((tags, truncated)) => TagListing::Tags { tags, truncated },
            Err((404, _)) => TagListing::NoRepository,
            Err((_, why)) => TagListing::Unknown(why),
        };
        contents.tags.insert(path.clone(), listing);
    }
    contents.requests = session
        .exchanges
        .iter()
        .map(|e| format!("{} → {}", e.request, e.answer))
        .collect();
    contents
}

/// Character edit distance.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j + 1] + 1)
                    .min(cur[j] + 1)
                    .min(prev[j] + usize::from(ca != *cb)),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Edit distance over path components: inserting or deleting a component costs its length plus
/// one, replacing it costs the characters changed; case differences cost nothing extra beyond one.
#[must_use]
pub fn path_distance(a: &str, b: &str) -> usize {
    let a: Vec<&str> = a.split('/').collect();
    let b: Vec<&str> = b.split('/').collect();
    let mut prev: Vec<usize> = std::iter::once(0)
        .chain(b.iter().scan(0, |s, c| {
            *s += c.len() + 1;
            Some(*s)
        }))
        .collect();
    for ca in &a {
        let mut cur = vec![prev[0] + ca.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = if ca == cb {
                0
            } else if ca.eq_ignore_ascii_case(cb) {
                1
            } else {
                levenshtein(ca, cb)
            };
            cur.push(
                (prev[j + 1] + ca.len() + 1)
                    .min(cur[j] + cb.len() + 1)
                    .min(prev[j] + replace),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Pair each missing name with the nearest candidate, each candidate going to one name at most:
/// the names that lose most by not getting their best candidate choose first (so `api` gets
/// `backend` and `react` gets `frontend`). Names left without a free candidate get their nearest.
#[must_use]
pub fn nearest_names(missing: &[String], candidates: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if candidates.is_empty() {
        return out;
    }
    let mut free: Vec<&String> = candidates.iter().collect();
    let mut left: Vec<&String> = missing.iter().collect();
    while !left.is_empty() && !free.is_empty() {
        let mut best: Option<(usize, usize, usize, usize)> = None; // (regret, -dist, name, cand)
        for (ni, name) in left.iter().enumerate() {
            let mut d: Vec<(usize, usize)> = free
                .iter()
                .enumerate()
                .map(|(ci, c)| (path_distance(name, c), ci))
                .collect();
            d.sort();
            let regret = d.get(1).map_or(usize::MAX, |s| s.0 - d[0].0);
            let key = (regret, usize::MAX - d[0].0, ni, d[0].1);
            if best.is_none_or(|b| (key.0, key.1) > (b.0, b.1)) {
                best = Some(key);
            }
        }
        let Some((_, _, ni, ci)) = best else { break };
        out.insert(left[ni].clone(), free[ci].clone());
        left.remove(ni);
        free.remove(ci);
    }
    for name in left {
        if let Some(c) = candidates.iter().min_by_key(|c| path_distance(name, c)) {
            out.insert(name.clone(), c.clone());
        }
    }
    out
}

/// What is wrong with one wanted image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not a valid reference (upper case in the path, a bad character).
    Invalid {
        /// Why.
        error: ImageRefError,
        /// The lower-case name exists (registry or CI).
        lower_exists: bool,
    },
    /// It names another registry address than the one the nodes pull from.
    WrongRegistry {
        /// The `host:port` it names.
        named: String,
        /// The registry's `host:port`.
        registry: String,
        /// The same path exists at the registry (or CI pushes it).
        path_exists: bool,
    },
    /// The repository does not exist.
    NoRepository {
        /// Confirmed by the registry (else: CI does not push it).
        by_registry: bool,
        /// The nearest existing or pushed name.
        nearest: Option<String>,
    },
    /// The repository exists but not the tag.
    NoTag {
        /// The tag asked for.
        tag: String,
        /// Confirmed by the registry (else: CI does not push that tag).
        by_registry: bool,
        /// The tags there are (the first few).
        tags: Vec<String>,
    },
}

/// The comparison's verdict for one wanted image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameVerdict {
    /// The image as written.
    pub image: String,
    /// Who uses it.
    pub uses: Vec<ImageUse>,
    /// What is wrong.
    pub problem: Problem,
    /// CI lines that push the nearest name, or the same path (evidence).
    pub pushed_evidence: Vec<PushedImage>,
}

/// The inputs of the comparison.
#[derive(Debug, Clone, Default)]
pub struct NamesInput {
    /// What the workloads ask for.
    pub wanted: Vec<ImageUse>,
    /// What CI pushes (`None`: no CI input).
    pub pushed: Option<Vec<PushedImage>>,
    /// What the registry holds (`None`: not listed).
    pub registry: Option<RegistryContents>,
    /// The registry's `host:port` as the nodes pull it (the inventory's).
    pub registry_address: Option<String>,
}

/// True when an image at `domain` is meant for our registry at `registry`: the same address, the
/// same host, or the same non-default port.
fn related(domain: &str, registry: &str) -> bool {
    if domain == registry {
        return true;
    }
    let (dh, dp) = split_host_port(domain);
    let (rh, rp) = split_host_port(registry);
    dh == rh || (dp.is_some() && dp == rp)
}

/// Compare; one verdict per wanted image that has a problem.
#[must_use]
pub fn evaluate(input: &NamesInput) -> Vec<NameVerdict> {
    let registry_address = input
        .registry_address
        .clone()
        .or_else(|| input.registry.as_ref().map(|r| r.registry.clone()));
    let pushed: Vec<(ImageRef, &PushedImage)> = input
        .pushed
        .iter()
        .flatten()
        .filter_map(|p| {
            // a tag still holding `$…` stands for any tag
            let (name, _, _) = crate::parse::image_ref::split_name_tag_digest(&p.image);
            let reference = if p.image[name.len()..].contains('$') {
                name
            } else {
                p.image.as_str()
            };
            ImageRef::parse(reference).ok().map(|r| (r, p))
        })
        .collect();
    let pushed_paths: BTreeSet<String> = pushed
        .iter()
        .filter(|(r, _)| r.domain != crate::parse::image_ref::DOCKER_HUB)
        .map(|(r, _)| r.path.clone())
        .collect();
    let registry_repos = input
        .registry
        .as_ref()
        .map(RegistryContents::repositories)
        .unwrap_or_default();
    let known: BTreeSet<String> = registry_repos.union(&pushed_paths).cloned().collect();
    // group uses by image
    let mut by_image: BTreeMap<&str, Vec<&ImageUse>> = BTreeMap::new();
    for u in &input.wanted {
        by_image.entry(u.image.as_str()).or_default().push(u);
    }
    let mut pending_missing: Vec<(String, ImageRef, bool)> = Vec::new();
    let mut verdicts: Vec<NameVerdict> = Vec::new();
    let verdict = |image: &str, uses: &[&ImageUse], problem: Problem| NameVerdict {
        image: image.to_string(),
        uses: uses.iter().map(|u| (*u).clone()).collect(),
        problem,
        pushed_evidence: Vec::new(),
    };
    for (image, uses) in &by_image {
        let r = match ImageRef::parse(image) {
            Ok(r) => r,
            Err(error) => {
                let lower_exists = match &error {
                    ImageRefError::Uppercase { lower, .. } => {
                        let (domain, _) = crate::parse::image_ref::split_domain(image);
                        domain.is_none_or(|d| {
                            registry_address.as_deref().is_none_or(|ra| related(d, ra))
                        }) && known.contains(lower)
                    }
                    _ => false,
                };
                verdicts.push(verdict(
                    image,
                    uses,
                    Problem::Invalid {
                        error,
                        lower_exists,
                    },
                ));
                continue;
            }
        };
        // is this image meant for our registry (or for one CI pushes to)?
        let ours_by_address = registry_address
            .as_deref()
            .is_some_and(|ra| related(&r.domain, ra));
        // Docker Hub names in a job log are mostly local build tags (`docker build -t app`), not
        // where the workloads' public images come from
        let pushed_domain = r.domain != crate::parse::image_ref::DOCKER_HUB
            && pushed.iter().any(|(p, _)| p.domain == r.domain);
        if !ours_by_address && !pushed_domain {
            continue;
        }
        if let Some(ra) = &registry_address
            && r.domain != *ra
            && ours_by_address
        {
            verdicts.push(verdict(
                image,
                uses,
                Problem::WrongRegistry {
                    named: r.domain.clone(),
                    registry: ra.clone(),
                    path_exists: known.contains(&r.path),
                },
            ));
            continue;
        }
        let tag = r.effective_tag().map(str::to_string);
        let listing = input.registry.as_ref().filter(|_| ours_by_address);
        match listing.and_then(|l| l.has_repository(&r.path)) {
            Some(false) => pending_missing.push((image.to_string(), r, true)),
            Some(true) => {
                if let (
                    Some(tag),
                    Some(TagListing::Tags {
                        tags,
                        truncated: false,
                    }),
                ) = (&tag, listing.and_then(|l| l.tags.get(&r.path)))
                    && !tags.contains(tag)
                {
                    verdicts.push(verdict(
                        image,
                        uses,
                        Problem::NoTag {
                            tag: tag.clone(),
                            by_registry: true,
                            tags: tags.iter().take(10).cloned().collect(),
                        },
                    ));
                }
            }
            None if input.pushed.is_some() => {
                // no listing: compare with what CI pushes
                let same_path: Vec<&(ImageRef, &PushedImage)> =
                    pushed.iter().filter(|(p, _)| p.path == r.path).collect();
                if same_path.is_empty() {
                    pending_missing.push((image.to_string(), r, false));
                } else if let Some(tag) = &tag
                    && !same_path
                        .iter()
                        .any(|(p, _)| p.tag.is_none() || p.tag.as_deref() == Some(tag.as_str()))
                {
                    let mut v = verdict(
                        image,
                        uses,
                        Problem::NoTag {
                            tag: tag.clone(),
                            by_registry: false,
                            tags: same_path
                                .iter()
                                .filter_map(|(p, _)| p.tag.clone())
                                .collect(),
                        },
                    );
                    v.pushed_evidence = same_path.iter().map(|(_, p)| (*p).clone()).collect();
                    verdicts.push(v);
                }
            }
            None => {}
        }
    }
    // nearest names: existing names no workload asks for are offered first
    let wanted_paths: BTreeSet<String> = by_image
        .keys()
        .filter_map(|i| ImageRef::parse(i).ok().map(|r| r.path))
        .collect();
    let unclaimed: Vec<String> = known.difference(&wanted_paths).cloned().collect();
    let candidates = if unclaimed.is_empty() {
        known.iter().cloned().collect()
    } else {
        unclaimed
    };
    let missing_paths: Vec<String> = pending_missing
        .iter()
        .map(|(_, r, _)| r.path.clone())
        .collect();
    let nearest = nearest_names(&missing_paths, &candidates);
    for (image, r, by_registry) in pending_missing {
        let uses = &by_image[image.as_str()];
        let near = nearest.get(&r.path).cloned();
        let mut v = verdict(
            &image,
            uses,
            Problem::NoRepository {
                by_registry,
                nearest: near.clone(),
            },
        );
        if let Some(n) = &near {
            v.pushed_evidence = pushed
                .iter()
                .filter(|(p, _)| &p.path == n)
                .map(|(_, p)| (*p).clone())
                .take(3)
                .collect();
        }
        verdicts.push(v);
    }
    verdicts.sort_by(|a, b| a.image.cmp(&b.image));
    verdicts
}

fn use_evidence(u: &ImageUse) -> Evidence {
    let text = format!("{}: container {} image: {}", u.object, u.container, u.image);
    let source = match (u.from_command, u.line) {
        (false, Some(line)) => EvidenceSource::File {
            path: u.origin.clone(),
            line,
        },
        (false, None) => EvidenceSource::File {
            path: u.origin.clone(),
            line: 1,
        },
        (true, _) => {
            let (host, command) = u
                .origin
                .split_once(": ")
                .map_or(("local".to_string(), u.origin.clone()), |(h, c)| {
                    (h.to_string(), c.to_string())
                });
            EvidenceSource::Command { host, command }
        }
    };
    Evidence {
        source,
        time: None,
        host: None,
        text,
        matched: None,
    }
}

fn push_evidence(p: &PushedImage) -> Evidence {
    let (path, line) = match &p.source {
        PushSource::JobLog { path, line } | PushSource::CiConfig { path, line, .. } => {
            (path.clone(), *line)
        }
    };
    Evidence::new(EvidenceSource::File { path, line }, p.text.clone())
}

/// The findings of the comparison. `registry` (when listed) adds the requests as evidence.
#[must_use]
pub fn findings(verdicts: &[NameVerdict], registry: Option<&RegistryContents>) -> Vec<Finding> {
    findings_with_fixes(verdicts, registry, &[])
}

/// The id of a verdict's finding.
#[must_use]
pub fn finding_id(v: &NameVerdict) -> String {
    FindingId::derive(&[
        CHECK_ID,
        &v.image,
        &format!("{:?}", std::mem::discriminant(&v.problem)),
    ])
    .0
}

/// The image a workload should ask for instead, when the verdict names one: the nearest pushed
/// or existing name at the same registry and tag, the same path at the nodes' registry, or the
/// name in lower case. `None` when no single answer is known (a missing tag, no near name).
#[must_use]
pub fn corrected(v: &NameVerdict) -> Option<String> {
    let (name, rest) = {
        let (name, _, _) = crate::parse::image_ref::split_name_tag_digest(&v.image);
        (name, &v.image[name.len()..])
    };
    match &v.problem {
        Problem::NoRepository {
            nearest: Some(nearest),
            ..
        } => {
            let r = ImageRef::parse(&v.image).ok()?;
            let domain = name.strip_suffix(r.path.as_str())?;
            Some(format!("{domain}{nearest}{rest}"))
        }
        Problem::WrongRegistry {
            named,
            registry,
            path_exists: true,
        } => Some(format!("{registry}{}", name.strip_prefix(named.as_str())?) + rest),
        Problem::Invalid {
            lower_exists: true, ..
        } => Some(format!("{}{rest}", name.to_ascii_lowercase())),
        _ => None,
    }
}

/// [`findings`], each pointing at `fixes` (the catalog's `image_not_found` fixes) when the
/// verdict names the image to use instead.
#[must_use]
pub fn findings_with_fixes(
    verdicts: &[NameVerdict],
    registry: Option<&RegistryContents>,
    fixes: &[crate::model::FixRef],
) -> Vec<Finding> {
    verdicts
        .iter()
        .map(|v| {
            let who: Vec<String> = v
                .uses
                .iter()
                .map(|u| format!("{} ({})", u.object, u.container))
                .collect();
            let who = who.join(", ");
            let parsed = ImageRef::parse(&v.image).ok();
            let registry_name = parsed.as_ref().map(|r| r.domain.clone());
            let (title, explanation, next, confidence): (String, String, Vec<String>, Confidence) =
                match &v.problem {
                    Problem::Invalid { error, lower_exists } => (
                        format!("{} is not a valid image name", v.image),
                        format!(
                            "{who} asks for '{}', which kubelet refuses ({error}).{}",
                            v.image,
                            if *lower_exists {
                                " The lower-case name exists: GitLab lower-cases the project path in $CI_REGISTRY_IMAGE, so CI pushed it in lower case."
                            } else {
                                ""
                            }
                        ),
                        vec!["Write the image name in lower case in the workload (kubectl set image, or the manifest).".into()],
                        Confidence::Confirmed,
                    ),
                    Problem::WrongRegistry { named, registry, path_exists } => (
                        format!("{} names registry {named}, but the registry is at {registry}", v.image),
                        format!(
                            "{who} pulls from {named}, while the nodes reach the registry at {registry}{}. The node dials the address in the image name, and the pull secret's `auths` key must match that host:port exactly, so the pull fails or finds no credentials.",
                            if *path_exists { " (which holds that repository)" } else { "" }
                        ),
                        vec![
                            format!("Use {registry}/{} in the workload.", parsed.as_ref().map_or(String::new(), |r| r.path.clone())),
                            "Or make the registry answer at the named address (DNS, a forwarded port) and add a pull-secret entry for it.".into(),
                        ],
                        Confidence::Confirmed,
                    ),
                    Problem::NoRepository { by_registry, nearest } => {
                        let path = parsed.as_ref().map_or(v.image.clone(), |r| r.path.clone());
                        let near = nearest.as_ref().map_or_else(String::new, |n| {
                            format!(" The nearest existing name is '{n}'.")
                        });
                        let where_ = if *by_registry {
                            "The registry has no repository"
                        } else {
                            "CI does not push any image named"
                        };
                        (
                            match nearest {
                                Some(n) => format!("{} does not exist (did you mean {n}?)", v.image),
                                None => format!("{} does not exist", v.image),
                            },
                            format!("{who} asks for '{}'. {where_} '{path}'.{near}", v.image),
                            vec![
                                match (nearest, &parsed) {
                                    (Some(n), Some(r)) => format!(
                                        "Point the workload at {}/{n}:{} (or push {path} from CI).",
                                        r.domain,
                                        r.effective_tag().unwrap_or("latest")
                                    ),
                                    _ => format!("Push {path} from CI, or fix the image name in the workload."),
                                },
                                "Compare with the `docker push` lines of .gitlab-ci.yml ($CI_REGISTRY_IMAGE is lower-cased).".into(),
                            ],
                            if *by_registry { Confidence::Confirmed } else { Confidence::Inferred },
                        )
                    }
                    Problem::NoTag { tag, by_registry, tags } => (
                        format!("{} has no tag '{tag}'", v.image),
                        format!(
                            "{who} asks for tag '{tag}' of an existing repository, but {} {}.",
                            if *by_registry { "the registry lists only" } else { "CI pushes only" },
                            if tags.is_empty() { "no tags".to_string() } else { tags.join(", ") }
                        ),
                        vec![
                            format!("Push the tag '{tag}' from CI, or use one of the existing tags in the workload."),
                        ],
                        if *by_registry { Confidence::Confirmed } else { Confidence::Inferred },
                    ),
                };
            let mut evidence: Vec<Evidence> = v.uses.iter().take(5).map(use_evidence).collect();
            evidence.extend(v.pushed_evidence.iter().map(push_evidence));
            if let Some(reg) = registry {
                evidence.extend(reg.requests.iter().take(3).map(|r| Evidence::new(EvidenceSource::Probe { request: r.clone() }, listing_summary(reg, parsed.as_ref()))));
            }
            Finding {
                subject: Subject {
                    image: Some(v.image.clone()),
                    registry: registry_name,
                    ..Subject::default()
                },
                explanation,
                next_steps: next,
                evidence,
                count: v.uses.len() as u64,
                confidence,
                fixes: if corrected(v).is_some() {
                    fixes.to_vec()
                } else {
                    Vec::new()
                },
                ..Finding::with_id(
                    FindingId(finding_id(v)),
                    CHECK_ID,
                    Class::ImageNotFound,
                    Severity::Error,
                    Target {
                        kind: TargetKind::Image,
                        name: v.image.clone(),
                    },
                    title,
                )
            }
        })
        .collect()
}

fn listing_summary(reg: &RegistryContents, image: Option<&ImageRef>) -> String {
    let mut parts = Vec::new();
    match (&reg.catalog, &reg.catalog_error) {
        (Some(c), _) => parts.push(format!(
            "catalog: {}{}",
            c.iter().take(20).cloned().collect::<Vec<_>>().join(", "),
            if c.len() > 20 || reg.catalog_truncated {
                ", …"
            } else {
                ""
            }
        )),
        (None, Some(e)) => parts.push(format!("catalog not readable: {e}")),
        (None, None) => {}
    }
    if let Some(r) = image
        && let Some(t) = reg.tags.get(&r.path)
    {
        parts.push(match t {
            TagListing::Tags { tags, .. } => format!("{} tags: {}", r.path, tags.join(", ")),
            TagListing::NoRepository => format!("{}: NAME_UNKNOWN", r.path),
            TagListing::Unknown(why) => format!("{}: {why}", r.path),
        });
    }
    parts.join("; ")
}

/// Which scheme the registry answers on: `https://` when a TLS request gets any HTTP answer
/// (the certificate is not judged here: `registry.scheme` does that), else `http://`.
///
/// # Errors
/// Neither answered; both reasons.
pub async fn registry_base(probes: &dyn Probes, address: &str) -> Result<String, String> {
    let mut errors = Vec::new();
    for scheme in ["https", "http"] {
        let mut req = HttpRequest::get(format!("{scheme}://{address}/v2/"));
        req.trust = crate::probe::http::TlsTrust::Insecure;
        req.timeout = std::time::Duration::from_secs(5);
        match probes.http(&req).await {
            // a plain-HTTP server answers a TLS hello with 400 text; only a real answer counts
            Ok(resp) if resp.status == 200 || resp.status == 401 => {
                return Ok(format!("{scheme}://{address}"));
            }
            Ok(resp) => errors.push(format!("{}: {}", req.describe(), resp.status_text())),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(errors.join("; "))
}

/// `image.names` bound to its inputs.
#[derive(Clone)]
pub struct ImageNames {
    /// The workloads (shared with `cluster.pulls`).
    pub cluster: Arc<super::cluster::ClusterReader>,
    /// CI job logs to read pushes from.
    pub job_logs: Vec<String>,
    /// The `.gitlab-ci.yml` whose jobs' scripts say what CI pushes.
    pub ci: Option<super::runner_tags::CiSource>,
    /// Pushes known from elsewhere (the `.gitlab-ci.yml` model).
    pub pushed: Vec<PushedImage>,
    /// CI variables to expand image names with.
    pub vars: CiVariables,
    /// The registry `host:port` as the nodes pull it (the inventory's), to list and compare.
    pub registry: Option<String>,
}

impl ImageNames {
    /// Read what the comparison needs: the workloads, the pushes, the registry's listing; with
    /// what could not be read.
    ///
    /// # Errors
    /// No workload could be read at all.
    pub async fn gather(
        &self,
        ctx: &super::CheckContext,
    ) -> Result<(NamesInput, Vec<String>), String> {
        let (cluster, job_logs, ci, vars, registry) = (
            &self.cluster,
            &self.job_logs,
            &self.ci,
            &self.vars,
            self.registry.clone(),
        );
        let mut pushed_known = self.pushed.clone();
        {
            let view = cluster.view(ctx).await?;
            let wanted: Vec<ImageUse> = view
                .parts
                .iter()
                .flat_map(|(origin, cmd, o)| wanted_from_objects(o, origin, *cmd))
                .collect();
            let mut problems = Vec::new();
            for log in job_logs {
                match ctx.probes.open_input(log).and_then(|i| {
                    i.into_bytes().map_err(|e| crate::probe::ProbeError::Read {
                        path: log.to_string(),
                        message: e.to_string(),
                    })
                }) {
                    Ok(bytes) => pushed_known.extend(pushed_from_job_log(
                        &String::from_utf8_lossy(&bytes),
                        log,
                        vars,
                    )),
                    Err(e) => problems.push(e.to_string()),
                }
            }
            let mut ci_read = false;
            if let Some(ci) = &ci {
                match ci.load(ctx.probes.as_ref(), &ci.context) {
                    Ok(model) => {
                        ci_read = true;
                        pushed_known.extend(pushed_from_ci(&model, vars));
                    }
                    Err(e) => problems.push(format!("reading {}: {e}", ci.label())),
                }
            }
            let pushed = (ci_read || !job_logs.is_empty() || !pushed_known.is_empty())
                .then_some(pushed_known);
            let listing = match &registry {
                Some(address) => match registry_base(ctx.probes.as_ref(), address).await {
                    Ok(base) => {
                        let mut paths: BTreeSet<String> = wanted
                            .iter()
                            .filter_map(|u| ImageRef::parse(&u.image).ok())
                            .filter(|r| related(&r.domain, address))
                            .map(|r| r.path)
                            .collect();
                        paths.extend(
                            pushed
                                .iter()
                                .flatten()
                                .filter_map(|p| {
                                    let (name, _, _) =
                                        crate::parse::image_ref::split_name_tag_digest(&p.image);
                                    ImageRef::parse(name).ok()
                                })
                                .map(|r| r.path),
                        );
                        // the pull secret the workloads use for this registry, if the view has it
                        let objects = view.objects();
                        let credentials = objects
                            .secrets
                            .iter()
                            .filter_map(|s| s.docker_config.as_ref()?.as_ref().ok())
                            .flat_map(|cfg| cfg.matching(&format!("{address}/x")))
                            .find(|e| !e.password.is_empty())
                            .map(|e| Credentials {
                                username: e.username.clone().unwrap_or_default(),
                                password: e.password.clone(),
                            });
                        let endpoint = Endpoint {
                            base,
                            trust: crate::probe::http::TlsTrust::System,
                            timeout: std::time::Duration::from_secs(10),
                        };
                        Some(
                            list_registry(
                                ctx.probes.as_ref(),
                                endpoint,
                                &paths,
                                credentials.as_ref(),
                            )
                            .await,
                        )
                    }
                    Err(e) => {
                        problems.push(format!("registry {address} not listed: {e}"));
                        None
                    }
                },
                None => None,
            };
            let input = NamesInput {
                wanted,
                pushed,
                registry: listing,
                registry_address: registry,
            };
            Ok((input, problems))
        }
    }
}

impl super::Check for ImageNames {
    fn id(&self) -> CheckId {
        CheckId(CHECK_ID.to_string())
    }

    fn target(&self) -> Target {
        Target {
            kind: TargetKind::Registry,
            name: self
                .registry
                .clone()
                .unwrap_or_else(|| "workload images".to_string()),
        }
    }

    fn run(&self, ctx: super::CheckContext) -> super::CheckFuture {
        let this = self.clone();
        Box::pin(async move {
            let (input, mut problems) = match this.gather(&ctx).await {
                Ok(g) => g,
                Err(e) => {
                    return super::CheckOutcome::without_findings(
                        crate::model::CheckStatus::Skipped {
                            reason: format!("no workloads to compare: {e}"),
                        },
                    );
                }
            };
            let listing = input.registry.clone();
            let verdicts = evaluate(&input);
            if verdicts.is_empty() && input.pushed.is_none() && input.registry.is_none() {
                // only the names themselves were checked
                return super::CheckOutcome::without_findings(crate::model::CheckStatus::Skipped {
                    reason: format!(
                        "nothing to compare the workloads' images with: give --job-log (CI pushes) or a [registry] address{}",
                        if problems.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", problems.join("; "))
                        }
                    ),
                });
            }
            // wanted repositories the listing could not decide on: not a pass
            if let Some(l) = &listing {
                let undecided: BTreeSet<String> = input
                    .wanted
                    .iter()
                    .filter_map(|u| ImageRef::parse(&u.image).ok())
                    .filter(|r| related(&r.domain, &l.registry))
                    .filter(|r| l.has_repository(&r.path).is_none())
                    .map(|r| match l.tags.get(&r.path) {
                        Some(TagListing::Unknown(why)) => format!("{}: {why}", r.path),
                        _ => r.path,
                    })
                    .collect();
                if !undecided.is_empty() {
                    problems.push(format!(
                        "the registry {} could not be listed for {}",
                        l.registry,
                        undecided.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            let fixes: Vec<crate::model::FixRef> = ctx
                .classifier
                .catalog()
                .get(Class::ImageNotFound)
                .map(super::catalog::Signature::fix_refs)
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f.id == "deployment-image")
                .collect();
            let mut found = findings_with_fixes(&verdicts, listing.as_ref(), &fixes);
            for f in &mut found {
                for e in &mut f.evidence {
                    e.text = ctx.redactor.redact(&e.text).into_owned();
                }
            }
            let status = if !found.is_empty() {
                crate::model::CheckStatus::Failed
            } else if problems.is_empty() {
                crate::model::CheckStatus::Passed
            } else {
                crate::model::CheckStatus::Errored {
                    error: ctx.redactor.redact(&problems.join("; ")).into_owned(),
                }
            };
            super::CheckOutcome {
                status,
                findings: found,
                unclassified: Vec::new(),
                input: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(images: &[&str]) -> Vec<ImageUse> {
        images
            .iter()
            .map(|i| ImageUse {
                image: (*i).to_string(),
                object: "Deployment/gition/x".into(),
                container: "x".into(),
                origin: "k8s.yaml".into(),
                line: Some(3),
                from_command: false,
            })
            .collect()
    }

    fn pushed(images: &[&str]) -> Vec<PushedImage> {
        images
            .iter()
            .map(|i| PushedImage {
                image: (*i).to_string(),
                text: format!("docker push {i}"),
                source: PushSource::JobLog {
                    path: "job.log".into(),
                    line: 1,
                },
            })
            .collect()
    }

    /// The incident: api → backend, react → frontend, from CI's pushes alone.
    #[test]
    fn incident_names_from_ci() {
        let input = NamesInput {
            wanted: uses(&[
                "172.100.100.9:5050/root/gition/api:latest",
                "172.100.100.9:5050/root/gition/react:latest",
                "postgres:16.2",
            ]),
            pushed: Some(pushed(&[
                "172.100.100.9:5050/root/gition/backend:latest",
                "172.100.100.9:5050/root/gition/backend:$CI_COMMIT_SHA",
                "172.100.100.9:5050/root/gition/frontend:latest",
                "gition-backend:dev",
            ])),
            registry: None,
            registry_address: Some("172.100.100.9:5050".into()),
        };
        let v = evaluate(&input);
        let near: Vec<(&str, Option<&str>)> = v
            .iter()
            .map(|v| match &v.problem {
                Problem::NoRepository { nearest, .. } => (v.image.as_str(), nearest.as_deref()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            near,
            vec![
                (
                    "172.100.100.9:5050/root/gition/api:latest",
                    Some("root/gition/backend")
                ),
                (
                    "172.100.100.9:5050/root/gition/react:latest",
                    Some("root/gition/frontend")
                ),
            ]
        );
        let f = findings(&v, None);
        assert!(
            f[0].title.contains("did you mean root/gition/backend"),
            "{}",
            f[0].title
        );
        assert_eq!(f[0].confidence, Confidence::Inferred);
    }

    /// The registry decides: missing tag vs missing repository; the host:port mismatch; case.
    #[test]
    fn registry_listing_decides() {
        let mut reg = RegistryContents {
            registry: "10.0.0.5:5050".into(),
            catalog: Some(vec![
                "root/gition/backend".into(),
                "root/gition/frontend".into(),
            ]),
            ..RegistryContents::default()
        };
        reg.tags.insert(
            "root/gition/backend".into(),
            TagListing::Tags {
                tags: vec!["latest".into(), "abc123".into()],
                truncated: false,
            },
        );
        let input = NamesInput {
            wanted: uses(&[
                "10.0.0.5:5050/root/gition/backend:v2",
                "10.0.0.5:5050/root/gition/backend:latest",
                "gitlab.example:5050/root/gition/frontend:latest",
                "10.0.0.5:5050/Root/Gition/frontend:latest",
                "10.0.0.5:5050/root/gition/api",
                "postgres:16",
            ]),
            pushed: None,
            registry: Some(reg.clone()),
            registry_address: Some("10.0.0.5:5050".into()),
        };
        let v = evaluate(&input);
        let kinds: Vec<(&str, String)> = v
            .iter()
            .map(|v| {
                (
                    v.image.as_str(),
                    format!("{:?}", v.problem)
                        .split([' ', '{'])
                        .next()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "10.0.0.5:5050/Root/Gition/frontend:latest",
                    "Invalid".to_string()
                ),
                ("10.0.0.5:5050/root/gition/api", "NoRepository".to_string()),
                ("10.0.0.5:5050/root/gition/backend:v2", "NoTag".to_string()),
                (
                    "gitlab.example:5050/root/gition/frontend:latest",
                    "WrongRegistry".to_string()
                ),
            ]
        );
        assert!(matches!(
            &v[0].problem,
            Problem::Invalid {
                lower_exists: true,
                ..
            }
        ));
        let f = findings(&v, Some(&reg));
        assert!(f.iter().all(|f| f.class == Class::ImageNotFound));
        assert!(
            f[3].title.contains("but the registry is at 10.0.0.5:5050"),
            "{}",
            f[3].title
        );
        assert!(
            f[2].explanation.contains("latest, abc123"),
            "{}",
            f[2].explanation
        );
        assert_eq!(
            f[1].evidence[0].source,
            EvidenceSource::File {
                path: "k8s.yaml".into(),
                line: 3
            }
        );
    }

    /// Job logs: echoed commands with variables, docker's and BuildKit's and kaniko's output.
    #[test]
    fn job_log_pushes() {
        let vars = CiVariables::gitlab("172.100.100.9:5050", "Root/Gition");
        let log = "\u{1b}[32;1m$ docker build -t $CI_REGISTRY_IMAGE/backend:$CI_COMMIT_SHA -t \"${CI_REGISTRY_IMAGE}/backend:latest\" .\u{1b}[0;m\n\
#12 naming to 172.100.100.9:5050/root/gition/backend:latest done\n\
$ docker push $CI_REGISTRY_IMAGE/frontend:latest\n\
The push refers to repository [172.100.100.9:5050/root/gition/worker]\n\
5f70bf18a086: Pushed\n\
v3: digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef size: 528\n\
/kaniko/executor --context . --destination=registry.example.com/team/app:1.0\n";
        let p: Vec<String> = pushed_from_job_log(log, "job.log", &vars)
            .into_iter()
            .map(|p| p.image)
            .collect();
        assert_eq!(
            p,
            vec![
                "172.100.100.9:5050/root/gition/backend:$CI_COMMIT_SHA",
                "172.100.100.9:5050/root/gition/backend:latest",
                "172.100.100.9:5050/root/gition/frontend:latest",
                "172.100.100.9:5050/root/gition/worker:v3",
                "registry.example.com/team/app:1.0",
            ]
        );
    }

    /// Link headers: relative and absolute, other hosts refused.
    #[test]
    fn link_headers() {
        let base = "http://127.0.0.1:5000";
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#, base).as_deref(),
            Some("http://127.0.0.1:5000/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(r#"<http://evil/v2/x>; rel="next""#, base), None);
        assert_eq!(next_link(r#"</v2/x>; rel="prev""#, base), None);
    }

    /// Distances over components prefer a changed last component to a changed project.
    #[test]
    fn distances() {
        assert!(
            path_distance("root/gition/api", "root/gition/backend")
                < path_distance("root/gition/api", "other/thing/api")
        );
        assert_eq!(path_distance("a/b", "a/b"), 0);
        assert_eq!(path_distance("root/Gition/x", "root/gition/x"), 1);
    }
}
