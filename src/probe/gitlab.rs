//! GitLab REST v4 over the [`Probes::http`] seam (DOMAIN.md §2.5): the project and its runner
//! settings, the runners it can use with their details, pending jobs with their `tag_list`,
//! protected branches, and CI lint's `merged_yaml`. Lists follow `Link: rel="next"` or
//! `X-Next-Page`. The token goes in `PRIVATE-TOKEN` and nowhere else (the seam redacts it from
//! recordings; errors name the request, never the header).

use super::Probes;
use super::http::{HttpRequest, HttpResponse};
use crate::check::runner_tags::Runner;
use crate::parse::dockercfg::Secret;
use serde::Deserialize;
use std::time::Duration;

/// Pages read from one list before giving up (100 items a page).
pub const MAX_PAGES: usize = 50;

/// A failed GitLab request: which, and what came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("GitLab {request}: {message}")]
pub struct GitlabError {
    /// Method and URL.
    pub request: String,
    /// What went wrong.
    pub message: String,
}

/// A GitLab project reached through the API.
pub struct GitlabClient<'a> {
    probes: &'a dyn Probes,
    base: String,
    project: String,
    token: Option<Secret>,
}

/// `GET /projects/:id`, the fields that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Project {
    /// `path_with_namespace`.
    #[serde(default)]
    pub path_with_namespace: String,
    /// `default_branch`.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// `shared_runners_enabled`.
    #[serde(default)]
    pub shared_runners_enabled: Option<bool>,
    /// `group_runners_enabled`.
    #[serde(default)]
    pub group_runners_enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
struct RunnerJson {
    id: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    online: Option<bool>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    runner_type: Option<String>,
    #[serde(default)]
    tag_list: Option<Vec<String>>,
    #[serde(default)]
    run_untagged: Option<bool>,
    #[serde(default)]
    access_level: Option<String>,
    #[serde(default)]
    contacted_at: Option<String>,
}

/// A job from `GET /projects/:id/jobs?scope[]=pending`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PendingJob {
    /// `id`.
    pub id: u64,
    /// `name`.
    pub name: String,
    /// `ref`.
    #[serde(rename = "ref", default)]
    pub ref_name: String,
    /// `tag`: whether the ref is a git tag (not the runner tags).
    #[serde(default)]
    pub tag: bool,
    /// `tag_list`: the runner tags.
    #[serde(default)]
    pub tag_list: Vec<String>,
    /// `status`.
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ProtectedBranch {
    name: String,
}

/// `GET /projects/:id/ci/lint`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Lint {
    /// `valid`.
    #[serde(default)]
    pub valid: bool,
    /// `errors`.
    #[serde(default)]
    pub errors: Vec<String>,
    /// `merged_yaml`.
    #[serde(default)]
    pub merged_yaml: Option<String>,
    /// `jobs` (with `include_jobs=true`): name and effective `tag_list`.
    #[serde(default)]
    pub jobs: Vec<LintJob>,
}

/// One job of the lint answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LintJob {
    /// `name`.
    pub name: String,
    /// `tag_list`.
    #[serde(default)]
    pub tag_list: Vec<String>,
}

/// Percent-encode a project path for `/projects/:id` (`group/sub/project` → `group%2Fsub%2Fproject`).
#[must_use]
pub fn encode_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The next page of a list: `Link: <…>; rel="next"` (keyset pagination), else `X-Next-Page`.
#[must_use]
pub fn next_page(resp: &HttpResponse, current_url: &str) -> Option<String> {
    for link in resp.headers_named("link") {
        for part in link.split(',') {
            let mut pieces = part.split(';');
            let url = pieces
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            if pieces.any(|p| p.trim().trim_start_matches("rel=").trim_matches('"') == "next") {
                return Some(url.to_string());
            }
        }
    }
    let next = resp.header("x-next-page")?.trim();
    if next.is_empty() || !next.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (base, query) = current_url.split_once('?').unwrap_or((current_url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page="))
        .map(str::to_string)
        .collect();
    params.push(format!("page={next}"));
    Some(format!("{base}?{}", params.join("&")))
}

impl<'a> GitlabClient<'a> {
    /// A client for `project` on the GitLab at `url` (its `external_url`).
    #[must_use]
    pub fn new(probes: &'a dyn Probes, url: &str, project: &str, token: Option<Secret>) -> Self {
        GitlabClient {
            probes,
            base: url.trim_end_matches('/').to_string(),
            project: encode_path(project.trim_matches('/')),
            token,
        }
    }

    /// The request for a path (`/projects/…`), with the token.
    #[must_use]
    pub fn request(&self, path_and_query: &str) -> HttpRequest {
        let url = if path_and_query.starts_with("http://") || path_and_query.starts_with("https://")
        {
            path_and_query.to_string()
        } else {
            format!("{}/api/v4{path_and_query}", self.base)
        };
        let mut req = HttpRequest::get(url).header("Accept", "application/json");
        req.timeout = Duration::from_secs(15);
        req.max_body = 4 * 1024 * 1024;
        if let Some(t) = &self.token {
            req = req.header("PRIVATE-TOKEN", t.expose());
        }
        req
    }

    /// How a request is named in evidence.
    #[must_use]
    pub fn describe(&self, path_and_query: &str) -> String {
        format!("GET {}/api/v4{path_and_query}", self.base)
    }

    async fn get(&self, req: &HttpRequest) -> Result<HttpResponse, GitlabError> {
        let resp = self.probes.http(req).await.map_err(|e| GitlabError {
            request: req.describe(),
            message: e.to_string(),
        })?;
        match resp.status {
            200..=299 => Ok(resp),
            401 => Err(GitlabError {
                request: req.describe(),
                message: format!(
                    "{}: the token is missing, wrong or expired",
                    resp.status_text()
                ),
            }),
            403 => Err(GitlabError {
                request: req.describe(),
                message: format!(
                    "{}: the token lacks the rights (runner details need Maintainer)",
                    resp.status_text()
                ),
            }),
            _ => Err(GitlabError {
                request: req.describe(),
                message: format!(
                    "{}: {}",
                    resp.status_text(),
                    resp.body.chars().take(300).collect::<String>()
                ),
            }),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, GitlabError> {
        let req = self.request(path);
        let resp = self.get(&req).await?;
        serde_json::from_str(&resp.body).map_err(|e| GitlabError {
            request: req.describe(),
            message: format!(
                "the answer is not the JSON GitLab sends ({} at line {}, column {})",
                crate::parse::json_error_category(&e),
                e.line(),
                e.column()
            ),
        })
    }

    async fn get_list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, GitlabError> {
        let mut out = Vec::new();
        let mut req = self.request(path);
        for _ in 0..MAX_PAGES {
            let resp = self.get(&req).await?;
            let page: Vec<T> = serde_json::from_str(&resp.body).map_err(|e| GitlabError {
                request: req.describe(),
                message: format!(
                    "the answer is not the JSON list GitLab sends ({})",
                    crate::parse::json_error_category(&e)
                ),
            })?;
            out.extend(page);
            match next_page(&resp, &req.url) {
                Some(next) if next != req.url => req = self.request(&next),
                _ => return Ok(out),
            }
        }
        Err(GitlabError {
            request: req.describe(),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// The project (default branch, runner settings).
    ///
    /// # Errors
    /// The request and GitLab's answer.
    pub async fn project(&self) -> Result<Project, GitlabError> {
        self.get_json(&format!("/projects/{}", self.project)).await
    }

    /// The path of the runners list request.
    #[must_use]
    pub fn runners_path(&self) -> String {
        format!("/projects/{}/runners?per_page=100", self.project)
    }

    /// Every runner the project can see, with its details (`GET /runners/:id` for each).
    ///
    /// # Errors
    /// The request and GitLab's answer.
    pub async fn runners(&self) -> Result<Vec<Runner>, GitlabError> {
        let list: Vec<RunnerJson> = self.get_list(&self.runners_path()).await?;
        let mut out = Vec::with_capacity(list.len());
        for brief in list {
            let detail: RunnerJson = match self.get_json(&format!("/runners/{}", brief.id)).await {
                Ok(d) => d,
                // a runner of another group may not be readable: keep what the list said
                Err(e) if e.message.starts_with("403") => brief.clone(),
                Err(e) => return Err(e),
            };
            let pick = |a: Option<bool>, b: Option<bool>| a.or(b);
            out.push(Runner {
                id: brief.id,
                description: detail.description.or(brief.description).unwrap_or_default(),
                tags: detail.tag_list.or(brief.tag_list).unwrap_or_default(),
                run_untagged: detail.run_untagged.unwrap_or(false),
                paused: pick(detail.paused, brief.paused)
                    .or(pick(detail.active, brief.active).map(|a| !a))
                    .unwrap_or(false),
                online: pick(detail.online, brief.online),
                status: detail.status.or(brief.status),
                contacted_at: detail.contacted_at.or(brief.contacted_at),
                protected_only: detail.access_level.as_deref() == Some("ref_protected"),
                runner_type: detail.runner_type.or(brief.runner_type),
            });
        }
        Ok(out)
    }

    /// Pending jobs with their runner tags.
    ///
    /// # Errors
    /// The request and GitLab's answer.
    pub async fn pending_jobs(&self) -> Result<Vec<PendingJob>, GitlabError> {
        self.get_list(&format!(
            "/projects/{}/jobs?scope%5B%5D=pending&per_page=100",
            self.project
        ))
        .await
    }

    /// Protected branch names (patterns such as `release/*` included).
    ///
    /// # Errors
    /// The request and GitLab's answer.
    pub async fn protected_branches(&self) -> Result<Vec<String>, GitlabError> {
        let list: Vec<ProtectedBranch> = self
            .get_list(&format!(
                "/projects/{}/protected_branches?per_page=100",
                self.project
            ))
            .await?;
        Ok(list.into_iter().map(|b| b.name).collect())
    }

    /// CI lint of the repository's file on `reference`, with jobs (their effective `tag_list`).
    ///
    /// # Errors
    /// The request and GitLab's answer.
    pub async fn lint(&self, reference: &str) -> Result<Lint, GitlabError> {
        self.get_json(&format!(
            "/projects/{}/ci/lint?content_ref={}&include_jobs=true",
            self.project,
            encode_path(reference)
        ))
        .await
    }
}

/// Whether a branch is protected by any of these names or `*` patterns.
#[must_use]
pub fn is_protected(branch: &str, protected: &[String]) -> bool {
    protected.iter().any(|p| wildcard_match(p, branch))
}

fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_headers() {
        let resp = |headers: Vec<(&str, &str)>| HttpResponse {
            status: 200,
            headers: headers
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            body: "[]".into(),
            body_truncated: false,
            duration_ms: 0,
        };
        let url = "http://g/api/v4/projects/1/runners?per_page=100";
        assert_eq!(
            next_page(&resp(vec![("x-next-page", "2")]), url).as_deref(),
            Some("http://g/api/v4/projects/1/runners?per_page=100&page=2")
        );
        assert_eq!(next_page(&resp(vec![("x-next-page", "")]), url), None);
        assert_eq!(
            next_page(
                &resp(vec![(
                    "link",
                    "<http://g/api/v4/x?id_after=5>; rel=\"next\", <http://g/first>; rel=\"first\""
                )]),
                url
            )
            .as_deref(),
            Some("http://g/api/v4/x?id_after=5")
        );
        assert_eq!(encode_path("Root/Gition"), "Root%2FGition");
        assert!(is_protected(
            "release/1.2",
            &["main".into(), "release/*".into()]
        ));
        assert!(!is_protected("feature", &["main".into()]));
    }
}
