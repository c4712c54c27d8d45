//! `docker.api-skew`: the Docker CLI in each CI job's `image:` against the daemon it talks to —
//! the job's `docker:*-dind` service when it has one, otherwise the runner host's daemon (read
//! with `GET /version`). Which API versions each side speaks and accepts, and how the client
//! negotiates, are DOMAIN.md §1.1–§1.5; the release table is [`super::advice::DOCKER_API`].
//!
//! The analysis is pure: [`docker_image`] reads an image reference, [`negotiate`] decides one
//! client against one daemon, [`analyse_job`] does a job, [`finding`] explains it.

use super::advice::{
    DOCKER_API, DOCKER_LINE_NEWEST, api, api_of_release, default_min_api, release_number,
};
use crate::model::{
    CheckId, Class, Confidence, Evidence, EvidenceSource, Finding, FixRef, Severity, Subject,
    Target, TargetKind,
};
use crate::parse::gitlab_ci::{ImageRef, Job, Loc};
use serde::Serialize;

/// The check's id.
pub const CHECK_ID: &str = "docker.api-skew";

/// What a `docker:<tag>` image carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerImage {
    /// The reference as written in the CI file.
    pub reference: String,
    /// The Docker release it carries (`24.0.5`, `27.5.1` for `docker:27`).
    pub release: String,
    /// Its API version.
    pub api: String,
    /// Whether the tag names a version (a floating tag moves: `latest`, `dind`, `stable`).
    pub pinned: bool,
    /// A remark about the tag (`docker:stable` is frozen at 19.03).
    pub note: Option<String>,
}

/// Read `docker:<tag>` (with or without `docker.io/library/`, any suffix such as `-dind` or
/// `-cli`). `None` for other images or tags pulldoctor does not know.
#[must_use]
pub fn docker_image(reference: &str) -> Option<DockerImage> {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let (path, tag) = match no_digest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, t),
        _ => (no_digest, "latest"),
    };
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        // a registry host: Docker Hub and its mirrors keep the library/ path
        parts.remove(0);
    }
    if !(parts == ["docker"] || parts == ["library", "docker"]) {
        return None;
    }
    let head = tag.split('-').next().unwrap_or(tag);
    let current = DOCKER_LINE_NEWEST[DOCKER_LINE_NEWEST.len() - 1];
    let (release, pinned, note) = match head {
        "stable" | "test" => (
            "19.03.15".to_string(),
            false,
            Some(format!(
                "docker:{tag} was frozen at 19.03 in 2021 (API 1.40); it is not the current stable release"
            )),
        ),
        "latest" | "dind" | "cli" | "git" | "windowsservercore" => (
            current.2.to_string(),
            false,
            Some(format!(
                "docker:{tag} floats; it carried {} when pulldoctor's table was written, and moves with every release",
                current.2
            )),
        ),
        v if v.chars().all(|c| c.is_ascii_digit() || c == '.') && !v.is_empty() => {
            if v.contains('.') {
                (v.to_string(), true, None)
            } else {
                let line = DOCKER_LINE_NEWEST.iter().find(|(m, _, _)| *m == v)?;
                (
                    line.2.to_string(),
                    true,
                    Some(format!(
                        "docker:{v} follows the {v}.x line (newest {})",
                        line.2
                    )),
                )
            }
        }
        _ => return None,
    };
    Some(DockerImage {
        reference: reference.to_string(),
        api: api_of_release(&release)?.to_string(),
        release,
        pinned,
        note,
    })
}

/// A Docker daemon: what it says about itself (`GET /version`) or what its image implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Daemon {
    /// `Version`.
    pub version: String,
    /// `ApiVersion` (its maximum).
    pub api_version: String,
    /// `MinAPIVersion`.
    pub min_api_version: String,
    /// Where it was read: `GET /version on runner-1 (unix socket …)`, or the dind service.
    pub source: String,
    /// Read from the daemon itself (not inferred from an image tag).
    pub probed: bool,
    /// Where the service was written (for a dind service).
    pub loc: Option<Loc>,
}

/// One client against one daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// They agree on this API version.
    Ok {
        /// The version used.
        api: String,
    },
    /// The daemon refuses the client's version as too old.
    TooOld {
        /// The version the client sends.
        client: String,
        /// The daemon's minimum.
        min: String,
    },
    /// The daemon refuses the client's version as too new.
    TooNew {
        /// The version the client sends.
        client: String,
        /// The daemon's maximum.
        max: String,
    },
}

fn lower(a: &str, b: &str) -> String {
    if api(a) <= api(b) { a } else { b }.to_string()
}

/// What a client of `release` (API `client_api`, or pinned with `DOCKER_API_VERSION`) sends to a
/// daemon accepting `[min, max]`, and whether the daemon takes it (DOMAIN.md §1.4): clients up to
/// 28.x and from 29.3 negotiate down to the daemon's maximum; 29.0–29.2 give up below 1.44 and
/// send their own; a pinned version is sent as is.
#[must_use]
pub fn negotiate(
    release: &str,
    client_api: &str,
    pinned: Option<&str>,
    max: &str,
    min: &str,
) -> Verdict {
    let sent = match pinned {
        Some(p) => p.to_string(),
        None => {
            let floor = match release_number(release) {
                Some(r) if ((29, 0)..(29, 3)).contains(&r) => Some("1.44"),
                Some(r) if r >= (29, 3) => Some("1.40"),
                _ => None,
            };
            match floor {
                Some(f) if api(max) < api(f) => client_api.to_string(),
                _ => lower(client_api, max),
            }
        }
    };
    if api(&sent) > api(max) {
        Verdict::TooNew {
            client: sent,
            max: max.to_string(),
        }
    } else if api(&sent) < api(min) {
        Verdict::TooOld {
            client: sent,
            min: min.to_string(),
        }
    } else {
        Verdict::Ok { api: sent }
    }
}

/// The oldest `docker:<major.minor>` image whose client this daemon accepts.
#[must_use]
pub fn smallest_working(max: &str, min: &str) -> Option<&'static str> {
    DOCKER_API
        .iter()
        .find(|(r, a)| matches!(negotiate(r, a, None, max, min), Verdict::Ok { .. }))
        .map(|(r, _)| *r)
}

/// The daemon of a job's dind service, from its image tag, and the minimum it is told to accept
/// (`DOCKER_MIN_API_VERSION` on the service or the job, read from 25.0 on).
#[must_use]
pub fn dind_daemon(service: &ImageRef, job: &Job) -> Option<Daemon> {
    let img = docker_image(&service.name)?;
    let tag = service.name.rsplit(':').next().unwrap_or("");
    let is_dind = tag.contains("dind") || !tag.contains("cli");
    if !is_dind {
        return None;
    }
    let override_min = service
        .variables
        .get("DOCKER_MIN_API_VERSION")
        .or_else(|| job.variables.get("DOCKER_MIN_API_VERSION"))
        .filter(|_| release_number(&img.release) >= Some((25, 0)));
    let min = override_min
        .cloned()
        .or_else(|| default_min_api(&img.release).map(str::to_string))?;
    Some(Daemon {
        version: img.release.clone(),
        api_version: img.api.clone(),
        min_api_version: min,
        source: format!(
            "service {} of job {} (daemon {} from the image tag)",
            service.name, job.name, img.release
        ),
        probed: false,
        loc: Some(service.loc.clone()),
    })
}

/// One job's client against its daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSkew {
    /// The job.
    pub job: String,
    /// The job's `image:` (the client).
    pub client: DockerImage,
    /// Where the image was written.
    pub client_loc: Option<Loc>,
    /// `DOCKER_API_VERSION` set on the job.
    pub pinned: Option<String>,
    /// The daemon it talks to.
    pub daemon: Daemon,
    /// The outcome.
    pub verdict: Verdict,
    /// The oldest `docker:` image the daemon accepts.
    pub smallest_working: Option<String>,
}

/// A job's client against the daemon it talks to: its dind service when it has one, else the
/// runner host's daemon. `None` when the job's image is not a Docker image pulldoctor knows or
/// no daemon is known.
#[must_use]
pub fn analyse_job(job: &Job, host_daemon: Option<&Daemon>) -> Option<JobSkew> {
    let image = job.image.as_ref()?;
    let client = docker_image(&image.name)?;
    let daemon = job
        .services
        .iter()
        .find_map(|s| dind_daemon(s, job))
        .or_else(|| host_daemon.cloned())?;
    let pinned = job.variables.get("DOCKER_API_VERSION").cloned();
    let verdict = negotiate(
        &client.release,
        &client.api,
        pinned.as_deref(),
        &daemon.api_version,
        &daemon.min_api_version,
    );
    Some(JobSkew {
        job: job.name.clone(),
        smallest_working: smallest_working(&daemon.api_version, &daemon.min_api_version)
            .map(str::to_string),
        client,
        client_loc: Some(image.loc.clone()),
        pinned,
        daemon,
        verdict,
    })
}

/// The finding for a job whose client the daemon refuses (None when they agree).
#[must_use]
pub fn finding(skew: &JobSkew, fixes: &[FixRef]) -> Option<Finding> {
    let d = &skew.daemon;
    let c = &skew.client;
    let (title, direction) = match &skew.verdict {
        Verdict::Ok { .. } => return None,
        Verdict::TooOld { client, min } => (
            format!(
                "Job {}: the Docker client is too old for the daemon (API {client} < {min})",
                skew.job
            ),
            format!(
                "The job's image {} carries Docker {} (API {}); the daemon (Docker {}) accepts API {} to {}. The client sends {client}, below the daemon's minimum {min}, so every docker command fails with \"client version {client} is too old. Minimum supported API version is {min}\".",
                c.reference, c.release, c.api, d.version, d.min_api_version, d.api_version
            ),
        ),
        Verdict::TooNew { client, max } => (
            format!(
                "Job {}: the Docker client is too new for the daemon (API {client} > {max})",
                skew.job
            ),
            format!(
                "The job's image {} carries Docker {} (API {}); the daemon (Docker {}) speaks at most API {max}. The client sends {client} without negotiating down, so commands fail with \"client version {client} is too new. Maximum supported API version is {max}\".",
                c.reference, c.release, c.api, d.version
            ),
        ),
    };
    let mut explanation = direction;
    if let Some(p) = &skew.pinned {
        explanation.push_str(&format!(
            " DOCKER_API_VERSION={p} is set on the job, which turns negotiation off."
        ));
    }
    if let Some(note) = &c.note {
        explanation.push_str(&format!(" Note: {note}."));
    }
    explanation.push_str(&format!(" Daemon read from: {}.", d.source));
    let mut next = Vec::new();
    if let Some(r) = &skew.smallest_working {
        let newest = DOCKER_LINE_NEWEST
            .iter()
            .find(|(_, line, _)| *line == r.as_str())
            .map_or_else(String::new, |(_, _, patch)| {
                format!(" (newest patch {patch})")
            });
        next.push(format!(
            "Smallest working CI image: image: docker:{r}{newest} or newer, and its dind service of the same version (docker:{r}-dind) if the job has one{}.",
            skew.client_loc.as_ref().map_or_else(String::new, |l| format!("; the image is set at {}:{}", l.file, l.line))
        ));
    }
    match &skew.verdict {
        Verdict::TooOld { client, .. } => next.push(format!(
            "Or lower the daemon's minimum to {client}: DOCKER_MIN_API_VERSION={client} in dockerd's environment (Docker 25.0+), or \"min-api-version\": \"{client}\" in daemon.json (29.0+), then restart dockerd. Trade-off: every client on that daemon may use the old API again, which Docker 29.0 refused on purpose; on a dind service set it as a service variable instead."
        )),
        Verdict::TooNew { max, .. } => next.push(format!(
            "Or pin the client: variables: DOCKER_API_VERSION: \"{max}\" on the job. Trade-off: it turns negotiation off, so the next daemon upgrade or downgrade breaks the job again; a client of 29.3 or newer negotiates down by itself."
        )),
        Verdict::Ok { .. } => {}
    }
    let mut evidence = vec![Evidence::new(
        match &d.loc {
            Some(l) if !d.probed => EvidenceSource::File {
                path: l.file.clone(),
                line: l.line,
            },
            _ => EvidenceSource::Probe {
                request: d.source.clone(),
            },
        },
        format!(
            "Version={} ApiVersion={} MinAPIVersion={}",
            d.version, d.api_version, d.min_api_version
        ),
    )];
    if let Some(l) = &skew.client_loc {
        evidence.push(Evidence::file_line(
            l.file.clone(),
            l.line,
            format!(
                "image: {} (Docker {}, API {})",
                c.reference, c.release, c.api
            ),
        ));
    }
    let ids: &[&str] = match skew.verdict {
        Verdict::TooOld { .. } => &["bump-ci-docker-image", "daemon-min-api-version"],
        _ => &["bump-ci-docker-image"],
    };
    let target = Target {
        kind: TargetKind::Job,
        name: skew.job.clone(),
    };
    let key = [skew.job.as_str(), d.source.as_str()];
    Some(Finding {
        subject: Subject {
            job: Some(skew.job.clone()),
            image: Some(c.reference.clone()),
            ..Subject::default()
        },
        explanation,
        next_steps: next,
        evidence,
        confidence: if d.probed {
            Confidence::Confirmed
        } else {
            Confidence::Inferred
        },
        fixes: FixRef::among(fixes, ids),
        ..Finding::new(
            CHECK_ID,
            Class::DockerApiSkew,
            Severity::Error,
            target,
            &key,
            title,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        let i = docker_image("docker:24.0.5").unwrap();
        assert_eq!(
            (i.release.as_str(), i.api.as_str(), i.pinned),
            ("24.0.5", "1.43", true)
        );
        assert_eq!(docker_image("docker:27").unwrap().api, "1.47");
        assert_eq!(docker_image("docker:24.0.5-dind").unwrap().api, "1.43");
        assert_eq!(
            docker_image("docker.io/library/docker:20.10.16-dind-rootless")
                .unwrap()
                .api,
            "1.41"
        );
        let s = docker_image("docker:stable").unwrap();
        assert_eq!((s.api.as_str(), s.pinned), ("1.40", false));
        assert_eq!(
            docker_image("docker:stable-dind").unwrap().release,
            "19.03.15"
        );
        assert_eq!(docker_image("docker").unwrap().release, "29.7.2");
        assert!(docker_image("alpine:3.20").is_none());
        assert!(docker_image("mirror.example.com:5000/library/docker:25.0").is_some());
        assert!(docker_image("docker:nonsense").is_none());
    }

    /// DOMAIN.md §1.4's compatibility table, row by row.
    #[test]
    fn compatibility_table() {
        let ok = |v: Verdict| matches!(v, Verdict::Ok { .. });
        // daemons: (max, min)
        let d2010 = ("1.41", "1.12");
        let d29_0 = ("1.52", "1.44");
        let d29_3 = ("1.54", "1.40");
        // 19.03 client
        assert!(ok(negotiate("19.03", "1.40", None, d2010.0, d2010.1)));
        assert_eq!(
            negotiate("19.03", "1.40", None, d29_0.0, d29_0.1),
            Verdict::TooOld {
                client: "1.40".into(),
                min: "1.44".into()
            }
        );
        assert!(ok(negotiate("19.03", "1.40", None, d29_3.0, d29_3.1)));
        // 24 client: the incident
        assert_eq!(
            negotiate("24.0.5", "1.43", None, d29_0.0, d29_0.1),
            Verdict::TooOld {
                client: "1.43".into(),
                min: "1.44".into()
            }
        );
        // 25-28 downgrade to 20.10
        assert_eq!(
            negotiate("27.5.1", "1.47", None, d2010.0, d2010.1),
            Verdict::Ok { api: "1.41".into() }
        );
        // 29.0 client against 20.10: too new; 29.3 negotiates down
        assert_eq!(
            negotiate("29.0.0", "1.52", None, d2010.0, d2010.1),
            Verdict::TooNew {
                client: "1.52".into(),
                max: "1.41".into()
            }
        );
        assert!(ok(negotiate("29.3.0", "1.54", None, d2010.0, d2010.1)));
        // a pin above the daemon's max
        assert_eq!(
            negotiate("27.5.1", "1.47", Some("1.99"), d2010.0, d2010.1),
            Verdict::TooNew {
                client: "1.99".into(),
                max: "1.41".into()
            }
        );
        assert_eq!(smallest_working(d29_0.0, d29_0.1), Some("25.0"));
        assert_eq!(smallest_working(d29_3.0, d29_3.1), Some("19.03"));
        assert_eq!(smallest_working(d2010.0, d2010.1), Some("19.03"));
    }

    /// A job with a dind service talks to that daemon (its tag gives the version); its
    /// DOCKER_MIN_API_VERSION counts from 25.0 on.
    #[test]
    fn dind_service_is_the_daemon() {
        use crate::parse::gitlab_ci::{ProjectContext, evaluate_text};
        let text = "a:\n  image: docker:24.0.5\n  services: [docker:29.1-dind]\n  script: [docker info]\nb:\n  image: docker:24.0.5\n  services:\n    - name: docker:29.1-dind\n      variables: {DOCKER_MIN_API_VERSION: \"1.24\"}\n  script: [docker info]\nc:\n  image: docker:stable\n  services: [docker:stable-dind]\n  script: [docker info]\n";
        let cfg = evaluate_text(".gitlab-ci.yml", text, &ProjectContext::default()).unwrap();
        let a = analyse_job(cfg.job("a").unwrap(), None).unwrap();
        assert_eq!(
            a.verdict,
            Verdict::TooOld {
                client: "1.43".into(),
                min: "1.44".into()
            }
        );
        assert!(!a.daemon.probed);
        let f = finding(&a, &[]).unwrap();
        assert_eq!(f.confidence, Confidence::Inferred);
        assert_eq!(
            f.evidence[0].source,
            EvidenceSource::File {
                path: ".gitlab-ci.yml".into(),
                line: 3
            }
        );
        let b = analyse_job(cfg.job("b").unwrap(), None).unwrap();
        assert_eq!(b.verdict, Verdict::Ok { api: "1.43".into() });
        let c = analyse_job(cfg.job("c").unwrap(), None).unwrap();
        assert_eq!(c.verdict, Verdict::Ok { api: "1.40".into() });
        assert!(
            c.client
                .note
                .as_deref()
                .unwrap()
                .contains("frozen at 19.03")
        );
    }
}

/// A daemon to read `/version` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonTarget {
    /// A socket on this machine.
    Local {
        /// Its path.
        socket: String,
    },
    /// A runner host from the inventory, over SSH.
    Host {
        /// The host.
        host: crate::inventory::Host,
        /// The socket on it.
        socket: String,
    },
}

/// `docker.api-skew` bound to a CI file and the daemons its jobs reach.
pub struct ApiSkewCheck {
    /// The CI file.
    pub ci: super::runner_tags::CiSource,
    /// Runner daemons to read.
    pub daemons: Vec<DaemonTarget>,
}

impl super::Check for ApiSkewCheck {
    fn id(&self) -> CheckId {
        CheckId(CHECK_ID.to_string())
    }

    fn target(&self) -> Target {
        Target {
            kind: TargetKind::Gitlab,
            name: self.ci.label(),
        }
    }

    fn run(&self, ctx: super::CheckContext) -> super::CheckFuture {
        let ci = self.ci.clone();
        let targets = self.daemons.clone();
        Box::pin(async move {
            let fixes = ctx
                .classifier
                .catalog()
                .get(Class::DockerApiSkew)
                .map(super::catalog::Signature::fix_refs)
                .unwrap_or_default();
            let config = match ci.load(ctx.probes.as_ref(), &ci.context) {
                Ok(c) => c,
                Err(e) => return super::CheckOutcome::errored(format!("the CI file: {e}")),
            };
            let (daemons, problems) = read_daemons(&ctx, &targets).await;
            let mut findings = Vec::new();
            let mut analysed = 0usize;
            for job in &config.jobs {
                let hosts: Vec<Option<&(Daemon, Option<String>)>> = if daemons.is_empty() {
                    vec![None]
                } else {
                    daemons.iter().map(Some).collect()
                };
                for host in hosts {
                    let Some(skew) = analyse_job(job, host.map(|(d, _)| d)) else {
                        continue;
                    };
                    analysed += 1;
                    let Some(mut f) = finding(&skew, &fixes) else {
                        continue;
                    };
                    // ask the daemon itself whether it refuses that version, for the verbatim answer
                    let sent = match &skew.verdict {
                        Verdict::TooOld { client, .. } | Verdict::TooNew { client, .. } => {
                            client.clone()
                        }
                        Verdict::Ok { .. } => continue,
                    };
                    if skew.daemon.probed
                        && let Some((_, Some(socket))) = host
                        && let Ok(answer) =
                            crate::probe::docker::try_api_local(ctx.probes.as_ref(), socket, &sent)
                                .await
                    {
                        use crate::probe::docker::ApiAnswer;
                        if let ApiAnswer::TooOld { message } | ApiAnswer::TooNew { message } =
                            answer
                        {
                            f.evidence.push(Evidence::new(
                                EvidenceSource::Probe {
                                    request: format!("GET /v{sent}/version (unix socket {socket})"),
                                },
                                message,
                            ));
                        }
                    }
                    findings.push(f);
                }
            }
            for f in &mut findings {
                for e in &mut f.evidence {
                    e.text = ctx.redactor.redact(&e.text).into_owned();
                }
            }
            if !findings.is_empty() {
                if !problems.is_empty()
                    && let Some(first) = findings.first_mut()
                {
                    first
                        .explanation
                        .push_str(&format!("\nNot read: {}.", problems.join("; ")));
                }
                return super::runner_tags::outcome(findings);
            }
            if analysed > 0 {
                return super::runner_tags::outcome(findings);
            }
            if !problems.is_empty() {
                return super::CheckOutcome::errored(problems.join("; "));
            }
            super::CheckOutcome::without_findings(crate::model::CheckStatus::Skipped {
                reason: "no job pairs a docker:<version> image with a known daemon (a dind service, or a runner host or --docker-socket to read /version from)".into(),
            })
        })
    }
}

/// Read `/version` from each daemon: the daemons read (with the local socket, for asking a local
/// one again), and what could not be read (redacted).
pub async fn read_daemons(
    ctx: &super::CheckContext,
    targets: &[DaemonTarget],
) -> (Vec<(Daemon, Option<String>)>, Vec<String>) {
    let mut daemons: Vec<(Daemon, Option<String>)> = Vec::new();
    let mut problems = Vec::new();
    for t in targets {
        let read = match t {
            DaemonTarget::Local { socket } => {
                crate::probe::docker::version_local(ctx.probes.as_ref(), socket)
                    .await
                    .map(|d| (d, Some(socket.clone())))
            }
            DaemonTarget::Host { host, socket } => {
                let prefix = if host.sudo { "sudo -n " } else { "" };
                crate::probe::docker::version_remote(
                    ctx.probes.as_ref(),
                    &host.name,
                    host.destination(),
                    prefix,
                    socket,
                )
                .await
                .map(|d| (d, None))
            }
        };
        match read {
            Ok(d) => daemons.push(d),
            Err(e) => problems.push(ctx.redactor.redact(&e.to_string()).into_owned()),
        }
    }
    (daemons, problems)
}

/// The daemons a run reads: the local socket given on the command line, then the Docker socket
/// of every inventory host with the `runner` role.
#[must_use]
pub fn daemon_targets(
    socket: Option<&String>,
    inv: Option<&crate::inventory::Inventory>,
) -> Vec<DaemonTarget> {
    let mut out: Vec<DaemonTarget> = socket
        .map(|s| DaemonTarget::Local { socket: s.clone() })
        .into_iter()
        .collect();
    out.extend(
        inv.into_iter()
            .flat_map(|i| i.hosts_with(crate::inventory::Role::Runner))
            .map(|h| DaemonTarget::Host {
                host: h.clone(),
                socket: crate::probe::docker::DEFAULT_SOCKET.to_string(),
            }),
    );
    out
}
