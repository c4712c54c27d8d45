//! The CI checks end to end, through the real binary: `gitlab.runner-tags` against a GitLab REST
//! double on 127.0.0.1 (GitLab's documented JSON shapes and pagination headers), and
//! `docker.api-skew` against daemon doubles that answer like moby 29.0–29.2 (minimum API 1.44)
//! and 29.3+ (minimum 1.40), and against the real Docker 20.10 daemon from Debian when this runs
//! as root with `docker.io` installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One request as the doubles see it.
#[derive(Debug, Clone)]
struct Request {
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One answer: status line, headers, body.
struct Answer {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: String,
}

fn json(status: &'static str, body: String) -> Answer {
    Answer {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
    }
}

type Handler = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

/// Read one HTTP/1.1 request head, answer it, close.
fn serve_one(stream: &mut (impl std::io::Read + std::io::Write), handler: &Handler) {
    let mut reader = BufReader::new(&mut *stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((n, v)) = h.trim_end().split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let answer = handler(&Request { target, headers });
    let mut out = format!("HTTP/1.1 {}\r\n", answer.status);
    for (n, v) in &answer.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        answer.body.len(),
        answer.body
    ));
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

/// A TCP double on 127.0.0.1; returns its base URL. It lives as long as the test process.
fn tcp_double(handler: Handler) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || serve_one(&mut stream, &h));
        }
    });
    format!("http://{addr}")
}

/// A unix-socket double at `path`.
fn unix_double(path: &Path, handler: Handler) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || serve_one(&mut stream, &h));
        }
    });
}

const TOKEN: &str = "glpat-Zq8xW2vN4rT6yU1pK3sD";
const TOKEN_ENV: &str = "PULLDOCTOR_CI_TEST_TOKEN";
/// A registry password planted in the environment of the fix runs.
const REGISTRY_PASSWORD: &str = "rp-Wq7Lm2Xc9Vb4";

fn rfc3339_ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// GitLab v4 as `lib/api/entities/ci/runner*.rb`, `job_basic.rb` and the lint endpoint shape
/// them; lists are paged one item a page with `X-Page`/`X-Next-Page`/`X-Total-Pages`.
fn gitlab_double(seen: Arc<Mutex<Vec<Request>>>) -> Handler {
    let runner1_detail = format!(
        r#"{{"id":1,"description":"msi","ip_address":null,"active":true,"paused":false,"is_shared":false,"runner_type":"project_type","name":"gitlab-runner","online":true,"status":"online","tag_list":["msi-gition"],"run_untagged":false,"locked":true,"maximum_timeout":null,"access_level":"not_protected","version":"17.5.0","revision":"6b7e4a5a","platform":"linux","architecture":"amd64","contacted_at":"{}","maintenance_note":null,"projects":[{{"id":1,"name":"gition","path_with_namespace":"root/gition"}}],"groups":[]}}"#,
        rfc3339_ago(300)
    );
    let runner2_detail = format!(
        r#"{{"id":2,"description":"shared-docker","ip_address":null,"active":false,"paused":true,"is_shared":true,"runner_type":"instance_type","name":null,"online":false,"status":"offline","tag_list":["docker","linux"],"run_untagged":true,"locked":false,"maximum_timeout":3600,"access_level":"not_protected","version":"17.1.0","revision":"fe451d5a","platform":"linux","architecture":"amd64","contacted_at":"{}","maintenance_note":null,"projects":[],"groups":[]}}"#,
        rfc3339_ago(3 * 3600)
    );
    Arc::new(move |req: &Request| {
        seen.lock().unwrap().push(req.clone());
        if req.header("PRIVATE-TOKEN") != Some(TOKEN) {
            return json(
                "401 Unauthorized",
                r#"{"message":"401 Unauthorized"}"#.into(),
            );
        }
        let page = |items: &[&str], n: usize| {
            let mut a = json(
                "200 OK",
                format!("[{}]", items.get(n - 1).copied().unwrap_or("")),
            );
            let next = if n < items.len() {
                (n + 1).to_string()
            } else {
                String::new()
            };
            for (k, v) in [
                ("X-Page", n.to_string()),
                ("X-Per-Page", "1".into()),
                ("X-Next-Page", next),
                ("X-Total", items.len().to_string()),
                ("X-Total-Pages", items.len().to_string()),
            ] {
                a.headers.push((k.into(), v));
            }
            a
        };
        let page_no = req
            .target
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("page="))
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let path = req.target.split('?').next().unwrap_or("");
        match path {
            "/api/v4/projects/root%2Fgition" => json("200 OK", r#"{"id":1,"name":"gition","path":"gition","path_with_namespace":"root/gition","default_branch":"main","shared_runners_enabled":true,"group_runners_enabled":true,"visibility":"private"}"#.into()),
            "/api/v4/projects/root%2Fgition/runners" => page(
                &[
                    r#"{"id":1,"description":"msi","ip_address":null,"active":true,"paused":false,"is_shared":false,"runner_type":"project_type","name":"gitlab-runner","online":true,"status":"online"}"#,
                    r#"{"id":2,"description":"shared-docker","ip_address":null,"active":false,"paused":true,"is_shared":true,"runner_type":"instance_type","name":null,"online":false,"status":"offline"}"#,
                ],
                page_no,
            ),
            "/api/v4/runners/1" => json("200 OK", runner1_detail.clone()),
            "/api/v4/runners/2" => json("200 OK", runner2_detail.clone()),
            "/api/v4/projects/root%2Fgition/protected_branches" => page(&[r#"{"id":1,"name":"main","push_access_levels":[],"merge_access_levels":[],"allow_force_push":false}"#], page_no),
            "/api/v4/projects/root%2Fgition/jobs" => page(
                &[
                    r#"{"id":101,"status":"pending","stage":"build","name":"build-backend","ref":"main","tag":false,"coverage":null,"allow_failure":false,"created_at":"2026-11-27T09:00:00.000Z","started_at":null,"finished_at":null,"duration":null,"queued_duration":3600.5,"user":{"id":1,"username":"root"},"commit":{"id":"0f1e2d3c","short_id":"0f1e2d3c"},"pipeline":{"id":7,"project_id":1,"ref":"main","sha":"0f1e2d3c","status":"pending"},"web_url":"http://gitlab/root/gition/-/jobs/101","project":{"ci_job_token_scope_enabled":false},"artifacts":[],"runner":null,"runner_manager":null,"artifacts_expire_at":null,"tag_list":["msi-gition","mz-win-vm"]}"#,
                ],
                page_no,
            ),
            "/api/v4/projects/root%2Fgition/ci/lint" => json("200 OK", r#"{"valid":true,"errors":[],"warnings":[],"merged_yaml":"---\n.docker-build:\n  tags:\n  - mz-win-vm\n  - msi-gition\n","includes":[],"jobs":[{"name":"build-frontend","stage":"build","tag_list":["msi-gition","mz-win-vm"],"only":{"refs":["main"]},"except":null,"when":"on_success","allow_failure":false,"needs":null},{"name":"build-backend","stage":"build","tag_list":["msi-gition","mz-win-vm"],"only":{"refs":["main"]},"except":null,"when":"on_success","allow_failure":false,"needs":null}]}"#.into()),
            _ => json("404 Not Found", r#"{"message":"404 Not Found"}"#.into()),
        }
    })
}

/// A repository checkout holding the incident's CI file, and an inventory pointing at it.
fn incident_repo(dir: &Path, gitlab_url: &str) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::copy(
        common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml"),
        repo.join(".gitlab-ci.yml"),
    )
    .unwrap();
    let inv = dir.join("pulldoctor.toml");
    std::fs::write(
        &inv,
        format!(
            "[gitlab]\nurl = \"{gitlab_url}\"\nproject = \"root/gition\"\ntoken_env = \"{TOKEN_ENV}\"\n\n[registry]\naddress = \"172.100.100.9:5050\"\n\n[repo]\npath = \"{}\"\n",
            repo.display()
        ),
    )
    .unwrap();
    inv
}

fn findings_of<'a>(report: &'a serde_json::Value, check: &str) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

fn status_of(report: &serde_json::Value, check: &str) -> serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .map(|c| c["status"].clone())
        .unwrap_or_else(|| panic!("no {check} in {report}"))
}

/// The issue's acceptance test, GitLab side: the job, the missing tag `mz-win-vm`, the runner
/// that would match, and the one-line change; the token never leaves (report or bundle).
#[test]
fn incident_runner_tags_against_gitlab_double() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = tcp_double(gitlab_double(seen.clone()));
    let dir = tempfile::tempdir().unwrap();
    let inv = incident_repo(dir.path(), &url);
    let bundle = dir.path().join("bundle.json");
    let out = common::run(
        &[
            "--headless",
            "--config",
            inv.to_str().unwrap(),
            "--record",
            bundle.to_str().unwrap(),
        ],
        b"",
        &[(TOKEN_ENV, TOKEN)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains(TOKEN), "token in the report");
    let recorded = std::fs::read_to_string(&bundle).unwrap();
    assert!(!recorded.contains(TOKEN), "token in the bundle");
    let report = common::report(&out);
    let tags = findings_of(&report, "gitlab.runner-tags");
    assert_eq!(tags.len(), 1, "{report:#}");
    let f = tags[0];
    assert_eq!(f["subject"]["job"], "build-backend");
    assert_eq!(f["confidence"], "confirmed");
    assert_eq!(
        f["title"],
        "Job build-backend is stuck: runner #1 \"msi\" lacks tag mz-win-vm"
    );
    assert_eq!(
        f["next_steps"][0],
        ".gitlab-ci.yml:11 (in .docker-build, which build-backend extends): delete the line `- mz-win-vm`"
    );
    assert_eq!(
        f["next_steps"][1],
        "add tag mz-win-vm to runner #1 \"msi\" (tag_list becomes msi-gition, mz-win-vm)"
    );
    let explanation = f["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("runner #2 \"shared-docker\""),
        "{explanation}"
    );
    assert!(explanation.contains("is paused"), "{explanation}");
    assert!(
        explanation.contains("lacks tags mz-win-vm, msi-gition"),
        "{explanation}"
    );
    assert!(
        explanation.contains("It runs on main (protected)"),
        "{explanation}"
    );
    let fixes: Vec<&str> = f["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(fixes, ["job-tags-to-runner", "runner-add-tag"]);
    // pagination was followed, the token was sent, the lint agreed (no warning finding)
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter()
            .any(|r| r.target.contains("/runners?per_page=100&page=2")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|r| r.header("PRIVATE-TOKEN") == Some(TOKEN))
    );
    assert!(
        seen.iter()
            .any(|r| r.target.contains("/ci/lint?content_ref=main"))
    );
    // replaying the bundle gives the same finding with no network
    let replay = common::run(
        &["--headless", "--replay", bundle.to_str().unwrap()],
        b"",
        &[],
    );
    let replayed = common::report(&replay);
    let again = findings_of(&replayed, "gitlab.runner-tags");
    assert_eq!(again.len(), 1, "{replayed:#}");
    assert_eq!(again[0]["next_steps"], f["next_steps"]);
}

/// A wrong token is an error naming the request, never a pass or a silent skip.
#[test]
fn wrong_token_is_an_error() {
    let url = tcp_double(gitlab_double(Arc::new(Mutex::new(Vec::new()))));
    let dir = tempfile::tempdir().unwrap();
    let inv = incident_repo(dir.path(), &url);
    let out = common::run(
        &["--headless", "--config", inv.to_str().unwrap()],
        b"",
        &[(TOKEN_ENV, "glpat-not-the-right-one-000")],
    );
    let report = common::report(&out);
    let status = status_of(&report, "gitlab.runner-tags");
    assert_eq!(status["state"], "errored", "{status}");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("401 Unauthorized: the token is missing, wrong or expired"),
        "{error}"
    );
    assert!(error.contains("/api/v4/projects/root%2Fgition"), "{error}");
}

/// Offline: the CI file and the pasted banner name the jobs and where their tags are written.
#[test]
fn offline_banner_names_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let banner = common::write(
        dir.path(),
        "banner.txt",
        b"This job is stuck because of one of the following problems: - No runners for the protected branch - No runners that match all of the job's tags: mz-win-vm, msi-gition\n",
    );
    let ci = common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml");
    let out = common::run(
        &[
            "--headless",
            "--ci-file",
            ci.to_str().unwrap(),
            "--stuck-banner",
            banner.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    let report = common::report(&out);
    let f = findings_of(&report, "gitlab.runner-tags");
    assert_eq!(f.len(), 1, "{report:#}");
    assert_eq!(
        f[0]["title"],
        "Jobs build-frontend, build-backend stuck waiting for a runner with tags mz-win-vm, msi-gition"
    );
    assert_eq!(f[0]["confidence"], "inferred");
    assert!(
        f[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("inherited from .docker-build via extends (.gitlab-ci.yml:11)")
    );
}

/// A daemon double answering as moby does: `/version` with `MinAPIVersion`, and a refused
/// version as HTTP 400 with JSON `{"message": …}` (plain text below 1.24), headers
/// `Api-Version`, `Server: Docker/<v> (linux)`, `Ostype`.
fn moby_double(version: &'static str, max: &'static str, min: &'static str) -> Handler {
    Arc::new(move |req: &Request| {
        let headers = vec![
            ("Api-Version".to_string(), max.to_string()),
            ("Docker-Experimental".into(), "false".into()),
            ("Ostype".into(), "linux".into()),
            ("Server".into(), format!("Docker/{version} (linux)")),
        ];
        let path = req.target.split('?').next().unwrap_or("");
        let api = path
            .strip_prefix("/v")
            .and_then(|r| r.split_once('/'))
            .map(|(v, _)| v.to_string());
        let key = |v: &str| {
            let (a, b) = v.split_once('.').unwrap_or((v, "0"));
            (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0))
        };
        let refusal = api.as_deref().and_then(|v| {
            if key(v) < key(min) {
                Some(format!("client version {v} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version"))
            } else if key(v) > key(max) {
                Some(format!("client version {v} is too new. Maximum supported API version is {max}"))
            } else {
                None
            }
        });
        let mut answer = match (refusal, api.as_deref()) {
            (Some(msg), Some(v)) if key(v) < (1, 24) => Answer {
                status: "400 Bad Request",
                headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
                body: format!("{msg}\n"),
            },
            (Some(msg), _) => json(
                "400 Bad Request",
                format!("{{\"message\":{}}}\n", serde_json::to_string(&msg).unwrap()),
            ),
            (None, _) if path == "/_ping" => Answer {
                status: "200 OK",
                headers: Vec::new(),
                body: "OK".into(),
            },
            (None, _) if path.ends_with("/version") => json(
                "200 OK",
                format!(
                    "{{\"Platform\":{{\"Name\":\"Docker Engine - Community\"}},\"Components\":[{{\"Name\":\"Engine\",\"Version\":\"{version}\",\"Details\":{{\"ApiVersion\":\"{max}\",\"Arch\":\"amd64\",\"MinAPIVersion\":\"{min}\",\"Os\":\"linux\"}}}}],\"Version\":\"{version}\",\"ApiVersion\":\"{max}\",\"MinAPIVersion\":\"{min}\",\"GitCommit\":\"d7d6a7b\",\"GoVersion\":\"go1.25.4\",\"Os\":\"linux\",\"Arch\":\"amd64\",\"KernelVersion\":\"6.1.0-28-amd64\",\"BuildTime\":\"2025-11-10T10:00:00.000000000+00:00\"}}\n"
                ),
            ),
            (None, _) => json("404 Not Found", "{\"message\":\"page not found\"}\n".into()),
        };
        answer.headers.extend(headers);
        answer
    })
}

fn skew_run(socket: &Path, ci: &Path) -> serde_json::Value {
    let out = common::run(
        &[
            "--headless",
            "--ci-file",
            ci.to_str().unwrap(),
            "--docker-socket",
            socket.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    common::report(&out)
}

/// The issue's acceptance test, Docker side: docker:24.0.5 against a 29.0 daemon is 1.43 < 1.44,
/// the smallest working image is docker:25.0, and the daemon's own refusal is the evidence.
#[test]
fn incident_api_skew_against_moby_29_0() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker-29.0.sock");
    unix_double(&sock, moby_double("29.0.0", "1.52", "1.44"));
    let ci = common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml");
    let report = skew_run(&sock, &ci);
    let f = findings_of(&report, "docker.api-skew");
    assert_eq!(f.len(), 2, "{report:#}");
    let backend = f
        .iter()
        .find(|f| f["subject"]["job"] == "build-backend")
        .unwrap();
    assert_eq!(
        backend["title"],
        "Job build-backend: the Docker client is too old for the daemon (API 1.43 < 1.44)"
    );
    assert_eq!(backend["confidence"], "confirmed");
    let first = backend["next_steps"][0].as_str().unwrap();
    assert!(
        first.starts_with(
            "Smallest working CI image: image: docker:25.0 (newest patch 25.0.5) or newer"
        ),
        "{first}"
    );
    assert!(first.contains(".gitlab-ci.yml:14"), "{first}");
    assert!(
        backend["next_steps"][1]
            .as_str()
            .unwrap()
            .contains("DOCKER_MIN_API_VERSION=1.43")
    );
    let evidence: Vec<&str> = backend["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        evidence.contains(&"Version=29.0.0 ApiVersion=1.52 MinAPIVersion=1.44"),
        "{evidence:?}"
    );
    assert!(
        evidence.contains(&"client version 1.43 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"),
        "{evidence:?}"
    );
}

/// The same job against 29.3 (minimum lowered to 1.40): no skew, the check passes.
#[test]
fn moby_29_3_accepts_docker_24() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker-29.3.sock");
    unix_double(&sock, moby_double("29.3.0", "1.54", "1.40"));
    let ci = common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml");
    let report = skew_run(&sock, &ci);
    assert!(
        findings_of(&report, "docker.api-skew").is_empty(),
        "{report:#}"
    );
    assert_eq!(status_of(&report, "docker.api-skew")["state"], "passed");
}

/// A socket nobody listens on: errored with the socket named, not passed.
#[test]
fn unreachable_daemon_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ci = common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml");
    let report = skew_run(&dir.path().join("nobody.sock"), &ci);
    let status = status_of(&report, "docker.api-skew");
    assert_eq!(status["state"], "errored", "{status}");
    assert!(
        status["error"].as_str().unwrap().contains("nobody.sock"),
        "{status}"
    );
}

/// The real dockerd from Debian (20.10), started on its own socket and directories.
struct Dockerd {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dockerd() -> Option<Dockerd> {
    let dockerd = Path::new("/usr/bin/dockerd");
    // root, read from /proc without libc
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root || !dockerd.exists() {
        eprintln!(
            "SKIPPED: the real Docker daemon test needs root and /usr/bin/dockerd (apt-get install docker.io; tests/run-all.sh does it as root)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let child = std::process::Command::new(dockerd)
        .arg(format!("--host=unix://{}", socket.display()))
        .arg(format!("--data-root={}", dir.path().join("data").display()))
        .arg(format!("--exec-root={}", dir.path().join("exec").display()))
        .arg(format!(
            "--pidfile={}",
            dir.path().join("docker.pid").display()
        ))
        .args([
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--ip-forward=false",
            "--storage-driver=vfs",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dockerd");
    let d = Dockerd {
        child,
        socket,
        _dir: dir,
    };
    for _ in 0..100 {
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&d.socket) {
            let _ = s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.contains("200") {
                return Some(d);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "dockerd did not answer on {} within 10 s",
        d.socket.display()
    );
}

/// Against the real 20.10 daemon: its /version range, both refusal bodies (plain text below 1.24,
/// JSON above the maximum), and a 29.0 CLI image found too new with the daemon's own words.
#[test]
fn real_docker_20_10_daemon() {
    let Some(d) = start_dockerd() else { return };
    let sock = d.socket.to_str().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let probes = pulldoctor::probe::LiveProbes::new(None);
    let daemon = rt
        .block_on(pulldoctor::probe::docker::version_local(&probes, &sock))
        .unwrap();
    assert!(daemon.version.starts_with("20.10"), "{daemon:?}");
    assert_eq!(
        (daemon.api_version.as_str(), daemon.min_api_version.as_str()),
        ("1.41", "1.12")
    );
    use pulldoctor::probe::docker::{ApiAnswer, try_api_local};
    let old = rt.block_on(try_api_local(&probes, &sock, "1.11")).unwrap();
    assert_eq!(
        old,
        ApiAnswer::TooOld {
            message: "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version".into()
        }
    );
    let new = rt.block_on(try_api_local(&probes, &sock, "1.99")).unwrap();
    assert_eq!(
        new,
        ApiAnswer::TooNew {
            message: "client version 1.99 is too new. Maximum supported API version is 1.41".into()
        }
    );
    assert_eq!(
        rt.block_on(try_api_local(&probes, &sock, "1.41")).unwrap(),
        ApiAnswer::Accepted
    );
    // a CI job whose CLI is 29.0 (does not negotiate below 1.44) against this daemon
    let dir = tempfile::tempdir().unwrap();
    let ci = common::write(
        dir.path(),
        ".gitlab-ci.yml",
        b"build:\n  image: docker:29.0.0\n  script: [docker info]\n",
    );
    let report = skew_run(&d.socket, &ci);
    let f = findings_of(&report, "docker.api-skew");
    assert_eq!(f.len(), 1, "{report:#}");
    assert_eq!(
        f[0]["title"],
        "Job build: the Docker client is too new for the daemon (API 1.52 > 1.41)"
    );
    let evidence: Vec<&str> = f[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        evidence.contains(&"client version 1.52 is too new. Maximum supported API version is 1.41"),
        "{evidence:?}"
    );
    assert!(
        f[0]["next_steps"][1]
            .as_str()
            .unwrap()
            .contains("DOCKER_API_VERSION: \"1.41\"")
    );
}

/// `pulldoctor fix` on the CI file of a temp checkout, the audit log in `state`.
fn fix_run(state: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let state = state.display().to_string();
    let mut all = vec![("PULLDOCTOR_STATE_DIR", state.as_str())];
    all.extend_from_slice(env);
    common::run(args, b"", &all)
}

/// The backups `fix` left next to `file`.
fn backups_of(file: &Path) -> Vec<PathBuf> {
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{name}.pulldoctor-backup-"))
        })
        .collect()
}

/// The issue's fix, Docker side: against a 29.0 daemon, `fix --dry-run` shows the one-line
/// diff and changes nothing; `fix --yes` moves the image to docker:25.0 (every other byte kept,
/// the old file kept as a backup) and verifies by re-running `docker.api-skew`, which then
/// passes; a second `fix --yes` finds nothing to do. The report's finding id selects the fix.
#[test]
fn fix_moves_the_ci_image_to_the_lowest_working_release() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker-29.0.sock");
    unix_double(&sock, moby_double("29.0.0", "1.52", "1.44"));
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let ci = repo.join(".gitlab-ci.yml");
    let original = std::fs::read_to_string(
        common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml"),
    )
    .unwrap();
    std::fs::write(&ci, &original).unwrap();
    let state = dir.path().join("state");
    let (ci_s, sock_s) = (ci.to_str().unwrap(), sock.to_str().unwrap());
    let base = ["--ci-file", ci_s, "--docker-socket", sock_s, "fix"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        fix_run(&state, &a, &[])
    };

    let report = skew_run(&sock, &ci);
    let id = findings_of(&report, "docker.api-skew")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dry = with(&["--dry-run", &id]);
    let shown = common::output_text(&dry);
    assert_eq!(common::code(&dry), 0, "{shown}");
    assert!(
        shown.contains("Fix bump-ci-docker-image: Move the CI image docker:24.0.5 to docker:25.0"),
        "{shown}"
    );
    assert!(shown.contains("-  image: docker:24.0.5\n"), "{shown}");
    assert!(shown.contains("+  image: docker:25.0\n"), "{shown}");
    assert!(shown.contains("Dry run: nothing was changed."), "{shown}");
    assert_eq!(std::fs::read_to_string(&ci).unwrap(), original);
    assert!(backups_of(&ci).is_empty());

    let yes = with(&["--yes"]);
    let shown = common::output_text(&yes);
    assert_eq!(common::code(&yes), 0, "{shown}");
    assert!(
        shown.contains("bump-ci-docker-image on this machine: fixed and verified"),
        "{shown}"
    );
    let after = std::fs::read_to_string(&ci).unwrap();
    assert_eq!(
        after,
        original.replace("image: docker:24.0.5", "image: docker:25.0")
    );
    let backups = backups_of(&ci);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), original);
    assert_eq!(
        status_of(&skew_run(&sock, &ci), "docker.api-skew")["state"],
        "passed"
    );
    let audit = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"verified\""), "{audit}");

    let again = with(&["--yes"]);
    let shown = common::output_text(&again);
    assert_eq!(common::code(&again), 0, "{shown}");
    assert!(shown.contains("Nothing to fix"), "{shown}");
    assert_eq!(std::fs::read_to_string(&ci).unwrap(), after);
}

/// A plan shown, then the file changed before the person said yes: the edit is refused and the
/// file keeps the newer text. The confirmation is answered on a real terminal (`script`).
#[test]
fn a_stale_ci_plan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker-29.0.sock");
    unix_double(&sock, moby_double("29.0.0", "1.52", "1.44"));
    let ci = dir.path().join(".gitlab-ci.yml");
    let original = std::fs::read_to_string(
        common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml"),
    )
    .unwrap();
    std::fs::write(&ci, &original).unwrap();
    let state = dir.path().join("state");
    let line = format!(
        "{} --ci-file {} --docker-socket {} fix",
        env!("CARGO_BIN_EXE_pulldoctor"),
        ci.display(),
        sock.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("PULLDOCTOR_STATE_DIR", &state)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !seen.contains("[y/N]") {
        assert!(std::time::Instant::now() < deadline, "no prompt: {seen}");
        if let Ok(s) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push_str(&s);
        }
    }
    assert!(seen.contains("+  image: docker:25.0"), "{seen}");
    let newer = format!("{original}# edited while the plan was on screen\n");
    std::fs::write(&ci, &newer).unwrap();
    child.stdin.as_mut().unwrap().write_all(b"y\n").unwrap();
    let status = child.wait().unwrap();
    while let Ok(s) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
        seen.push_str(&s);
    }
    assert!(!status.success() || seen.contains("changed since the plan was made"));
    assert!(seen.contains("changed since the plan was made"), "{seen}");
    assert_eq!(std::fs::read_to_string(&ci).unwrap(), newer);
    assert!(backups_of(&ci).is_empty());
}

/// The issue's fix, GitLab side: the runner has `msi-gition` only, so the line `- mz-win-vm`
/// of `.docker-build` goes (the runners-API alternative is named); verified against the runners
/// as GitLab describes them; the token appears in no output and not in the audit log.
#[test]
fn fix_changes_the_stuck_jobs_tags_to_the_runners() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = tcp_double(gitlab_double(seen));
    let dir = tempfile::tempdir().unwrap();
    let inv = incident_repo(dir.path(), &url);
    let ci = dir.path().join("repo/.gitlab-ci.yml");
    let original = std::fs::read_to_string(&ci).unwrap();
    let state = dir.path().join("state");
    let inv_s = inv.to_str().unwrap();
    // planted: the project token, and the registry password a pull-secret fix would read
    let env = [
        (TOKEN_ENV, TOKEN),
        ("GITLAB_TOKEN", TOKEN),
        ("PULLDOCTOR_REGISTRY_PASSWORD", REGISTRY_PASSWORD),
    ];
    let dry = fix_run(&state, &["--config", inv_s, "fix", "--dry-run"], &env);
    let shown = common::output_text(&dry);
    assert_eq!(common::code(&dry), 0, "{shown}");
    assert!(shown.contains("Fix job-tags-to-runner"), "{shown}");
    assert!(shown.contains(" -    - mz-win-vm\n"), "{shown}");
    assert!(shown.contains("(fix runner-add-tag)"), "{shown}");
    assert_eq!(std::fs::read_to_string(&ci).unwrap(), original);

    let yes = fix_run(&state, &["--config", inv_s, "fix", "--yes"], &env);
    let shown_yes = common::output_text(&yes);
    assert_eq!(common::code(&yes), 0, "{shown_yes}");
    assert!(
        shown_yes.contains("job-tags-to-runner on this machine: fixed and verified"),
        "{shown_yes}"
    );
    let expected: String = original
        .split_inclusive('\n')
        .filter(|l| *l != "    - mz-win-vm\n")
        .collect();
    assert_eq!(std::fs::read_to_string(&ci).unwrap(), expected);
    let again = common::output_text(&fix_run(&state, &["--config", inv_s, "fix", "--yes"], &env));
    assert!(again.contains("Nothing to fix"), "{again}");
    let audit = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    for out in [&shown, &shown_yes, &again, &audit] {
        assert!(!out.contains(TOKEN), "the token leaked: {out}");
        assert!(
            !out.contains(REGISTRY_PASSWORD),
            "the password leaked: {out}"
        );
    }
}
