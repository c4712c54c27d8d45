//! `image.names` against the real CNCF registry (`docker-registry`, plain HTTP on 127.0.0.1 at a
//! free port, images pushed over the registry API by tests/lab/labtool.py): catalog and tags
//! listing with `Link` pagination, and the headless verdicts for a missing repository (with the
//! nearest name), a missing tag, upper case, and a wrong host:port; recorded and replayed.
//! Skipped, saying so, when docker-registry is not installed (tests/run-all.sh installs it as root).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use pulldoctor::check::image_names::{TagListing, list_registry_paged};
use pulldoctor::probe::LiveProbes;
use pulldoctor::probe::http::TlsTrust;
use pulldoctor::probe::registry::Endpoint;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A registry process, killed when dropped (also when an assertion fails).
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry_binary() -> Option<String> {
    ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
        .iter()
        .find(|p| Path::new(p).is_file())
        .map(|p| (*p).to_string())
}

/// Start a plain-HTTP registry on a free loopback port, or say why not.
fn start_registry() -> Option<Registry> {
    let Some(bin) = registry_binary() else {
        eprintln!(
            "SKIPPED: docker-registry is not installed (apt-get install docker-registry, or run tests/run-all.sh as root)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    let config_path = common::write(dir.path(), "config.yml", config.as_bytes());
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(reg)
}

fn push(reg: &Registry, repo: &str, tag: &str) {
    let out = Command::new("python3")
        .arg(common::root().join("tests/lab/labtool.py"))
        .args([
            "push",
            "--registry",
            &format!("http://127.0.0.1:{}", reg.port),
            "--token",
            "unused",
            "--repo",
            repo,
            "--tag",
            tag,
            "--text",
            repo,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "push {repo}:{tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gition(reg: &Registry) {
    push(reg, "root/gition/backend", "latest");
    push(reg, "root/gition/backend", "4f2c9e1a");
    push(reg, "root/gition/frontend", "latest");
}

/// The listing follows `Link` pages of the catalog and of tags/list, and tells a missing
/// repository (404 NAME_UNKNOWN) from an existing one.
#[test]
fn lists_catalog_and_tags_with_pagination() {
    let Some(reg) = start_registry() else { return };
    gition(&reg);
    let probes = LiveProbes::new(None);
    let paths: BTreeSet<String> = ["root/gition/backend", "root/gition/api"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = Endpoint {
        base: format!("http://127.0.0.1:{}", reg.port),
        trust: TlsTrust::System,
        timeout: Duration::from_secs(5),
    };
    let contents = rt.block_on(list_registry_paged(&probes, endpoint, &paths, None, 1));
    assert_eq!(
        contents.catalog.as_deref(),
        Some(
            &[
                "root/gition/backend".to_string(),
                "root/gition/frontend".to_string()
            ][..]
        ),
        "{contents:?}"
    );
    let catalog_pages = contents
        .requests
        .iter()
        .filter(|r| r.contains("/v2/_catalog"))
        .count();
    assert!(catalog_pages >= 2, "{:?}", contents.requests);
    match &contents.tags["root/gition/backend"] {
        TagListing::Tags { tags, truncated } => {
            let mut tags = tags.clone();
            tags.sort();
            assert_eq!(tags, vec!["4f2c9e1a", "latest"]);
            assert!(!truncated);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(contents.tags["root/gition/api"], TagListing::NoRepository);
    assert_eq!(contents.has_repository("root/gition/api"), Some(false));
}

/// Headless, against the real registry: each kind of name mismatch is one finding with its
/// evidence; a healthy image gives none; the recorded bundle replays to the same findings.
#[test]
fn headless_verdicts_and_replay() {
    let Some(reg) = start_registry() else { return };
    gition(&reg);
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", reg.port);
    let inventory = common::write(
        dir.path(),
        "pulldoctor.toml",
        format!("[gitlab]\nproject = \"root/gition\"\n[registry]\naddress = \"{addr}\"\n")
            .as_bytes(),
    );
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: gition\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n        image: {addr}/root/gition/api:latest\n      - name: worker\n        image: {addr}/root/gition/backend:v2\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: react\n  namespace: gition\nspec:\n  template:\n    spec:\n      containers:\n      - name: react\n        image: {addr}/root/gition/frontend:latest\n      - name: admin\n        image: {addr}/Root/Gition/frontend:latest\n      - name: old\n        image: localhost:{}/root/gition/frontend:latest\n",
        reg.port
    );
    let manifest = common::write(dir.path(), "k8s.yaml", manifest.as_bytes());
    let bundle = dir.path().join("bundle.json");
    let args = [
        "--headless",
        "--config",
        inventory.to_str().unwrap(),
        "--manifests",
        manifest.to_str().unwrap(),
    ];
    let mut recording = args.to_vec();
    recording.extend(["--record", bundle.to_str().unwrap()]);
    let out = common::run(&recording, b"", &[]);
    assert_eq!(
        common::code(&out),
        1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::report(&out);
    let titles = |report: &serde_json::Value| -> Vec<String> {
        let mut t: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "image.names")
            .map(|f| f["title"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    let found = titles(&report);
    let expect = vec![
        format!("{addr}/Root/Gition/frontend:latest is not a valid image name"),
        format!("{addr}/root/gition/api:latest does not exist (did you mean root/gition/backend?)"),
        format!("{addr}/root/gition/backend:v2 has no tag 'v2'"),
        format!(
            "localhost:{}/root/gition/frontend:latest names registry localhost:{}, but the registry is at {addr}",
            reg.port, reg.port
        ),
    ];
    assert_eq!(found, expect, "{report:#}");
    let api = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().contains("/api:latest"))
        .unwrap();
    assert_eq!(api["class"], "image_not_found");
    assert_eq!(api["confidence"], "confirmed");
    assert_eq!(api["evidence"][0]["source"]["line"], 11);
    assert!(
        api["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"]["kind"] == "probe"
                && e["text"]
                    .as_str()
                    .unwrap()
                    .contains("root/gition/api: NAME_UNKNOWN")),
        "{api:#}"
    );
    let upper = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().contains("Root/Gition"))
        .unwrap();
    assert!(
        upper["explanation"]
            .as_str()
            .unwrap()
            .contains("lower-case")
    );
    // the registry is gone: the replay answers from the bundle alone
    drop(reg);
    let replay = common::run(
        &[
            "--headless",
            "--replay",
            bundle.to_str().unwrap(),
            "--manifests",
            manifest.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(common::code(&replay), 1);
    assert_eq!(titles(&common::report(&replay)), expect);
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes killed when dropped.
struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Like GitLab: the registry in token mode behind a `/jwt/auth` server that grants the catalog to
/// no one but an administrator. With the workloads' pull secret (a deploy user with pull on
/// root/gition), the catalog is refused, the tags lists are read through the token flow, and the
/// verdicts are the same as with an open registry; the password appears nowhere.
#[test]
fn token_mode_listing_with_the_pull_secret() {
    if registry_binary().is_none() || !have("htpasswd") || !have("openssl") {
        eprintln!(
            "SKIPPED: docker-registry, htpasswd (apache2-utils) or openssl missing (tests/run-all.sh installs them as root)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (token_port, reg_port) = (free(), free());
    let password = "deploy-Secr3t-91c2";
    run_sh(&format!(
        "cd {d} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=token -keyout t.key -out t.crt 2>/dev/null \
         && htpasswd -cbB users gition-deploy {password} 2>/dev/null"
    ));
    std::fs::write(
        dir.path().join("token.json"),
        format!(
            r#"{{"issuer":"gitlab-issuer","service":"container_registry","key":"{d}/t.key","cert":"{d}/t.crt","htpasswd":"{d}/users","lifetime":300,"users":{{"gition-deploy":{{"rights":{{"root/gition":["pull"]}}}},"admin":{{"rights":{{"*":["pull","push"]}},"registry":["*"]}}}}}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("registry.yml"),
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\nhttp:\n  addr: 127.0.0.1:{reg_port}\nauth:\n  token:\n    realm: http://127.0.0.1:{token_port}/jwt/auth\n    service: container_registry\n    issuer: gitlab-issuer\n    rootcertbundle: {d}/t.crt\n"
        ),
    )
    .unwrap();
    let tool = common::root()
        .join("tests/lab/labtool.py")
        .display()
        .to_string();
    let spawn = |argv: &[&str]| {
        Command::new(argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let _procs = Killed(vec![
        spawn(&[
            "python3",
            &tool,
            "token-server",
            "--config",
            &format!("{d}/token.json"),
            "--listen",
            &format!("127.0.0.1:{token_port}"),
        ]),
        spawn(&["docker-registry", "serve", &format!("{d}/registry.yml")]),
    ]);
    wait_for(token_port);
    wait_for(reg_port);
    let addr = format!("127.0.0.1:{reg_port}");
    for (repo, tag) in [
        ("root/gition/backend", "latest"),
        ("root/gition/frontend", "latest"),
    ] {
        let token = run_sh(&format!(
            "python3 {tool} mint --config {d}/token.json --sub admin --scope repository:{repo}:pull,push"
        ));
        run_sh(&format!(
            "python3 {tool} push --registry http://{addr} --token {} --repo {repo} --tag {tag} --text {repo}",
            token.trim()
        ));
    }
    let auth = run_sh(&format!(
        "printf '%s' 'gition-deploy:{password}' | base64 -w0"
    ));
    let cfg = format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#);
    let cfg64 = run_sh(&format!("printf '%s' '{cfg}' | base64 -w0"));
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gitlab-registry\n  namespace: gition\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {cfg64}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: gition\nspec:\n  template:\n    spec:\n      imagePullSecrets: [{{name: gitlab-registry}}]\n      containers:\n      - name: api\n        image: {addr}/root/gition/api:latest\n      - name: web\n        image: {addr}/root/gition/frontend:v9\n      - name: ok\n        image: {addr}/root/gition/backend:latest\n"
    );
    let manifest = common::write(dir.path(), "k8s.yaml", manifest.as_bytes());
    let inventory = common::write(
        dir.path(),
        "pulldoctor.toml",
        format!("[registry]\naddress = \"{addr}\"\n").as_bytes(),
    );
    let args = [
        "--headless",
        "--config",
        inventory.to_str().unwrap(),
        "--manifests",
        manifest.to_str().unwrap(),
    ];
    let out = common::run(&args, b"", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(password) && !stdout.contains(&auth));
    // a recording keeps no credential, so the run goes on without them, and says so
    let bundle = dir.path().join("bundle.json");
    let mut recording = args.to_vec();
    recording.extend(["--record", bundle.to_str().unwrap()]);
    let rec = common::report(&common::run(&recording, b"", &[]));
    let recorded = std::fs::read_to_string(&bundle).unwrap();
    assert!(
        !recorded.contains(password) && !recorded.contains(&auth) && !recorded.contains(&cfg64),
        "the bundle keeps the pull secret"
    );
    assert!(recorded.contains("gitlab-registry") && recorded.contains(&addr));
    let names = rec["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "image.names")
        .unwrap();
    assert_eq!(names["status"]["state"], "errored", "{names:#}");
    assert!(
        names["status"]["error"]
            .as_str()
            .unwrap()
            .contains("could not be listed for root/gition/api: 401"),
        "{names:#}"
    );
    let report = common::report(&out);
    let mut titles: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "image.names")
        .map(|f| {
            format!(
                "{} [{}]",
                f["title"].as_str().unwrap(),
                f["confidence"].as_str().unwrap()
            )
        })
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        vec![
            format!(
                "{addr}/root/gition/api:latest does not exist (did you mean root/gition/backend?) [confirmed]"
            ),
            format!("{addr}/root/gition/frontend:v9 has no tag 'v9' [confirmed]"),
        ],
        "{report:#}"
    );
    let api = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().contains("/api:latest"))
        .unwrap();
    let evidence = serde_json::to_string(&api["evidence"]).unwrap();
    assert!(evidence.contains("catalog not readable: 401"), "{evidence}");
    assert!(evidence.contains("jwt/auth"), "{evidence}");
}

/// CI's pushes read from the `.gitlab-ci.yml` model (the incident's file): `$CI_REGISTRY_IMAGE`
/// expanded from the inventory, compared with the manifests when the registry cannot be listed;
/// the evidence names the job.
#[test]
fn pushes_from_the_ci_model() {
    let dir = tempfile::tempdir().unwrap();
    // a closed loopback port: the registry cannot be listed, CI's pushes decide
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let inventory = common::write(
        dir.path(),
        "pulldoctor.toml",
        format!("[gitlab]\nproject = \"Root/Gition\"\n[registry]\naddress = \"{addr}\"\n")
            .as_bytes(),
    );
    let manifest = std::fs::read_to_string(common::root().join("tests/fixtures/kube/gition.yaml"))
        .unwrap()
        .replace("172.100.100.9:5050", &addr);
    let manifest = common::write(dir.path(), "gition.yaml", manifest.as_bytes());
    let ci = common::root().join("tests/fixtures/gitlab_ci/incident/.gitlab-ci.yml");
    let out = common::run(
        &[
            "--headless",
            "--config",
            inventory.to_str().unwrap(),
            "--ci-file",
            ci.to_str().unwrap(),
            "--manifests",
            manifest.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    let report = common::report(&out);
    let names: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "image.names")
        .collect();
    let titles: Vec<&str> = names.iter().map(|f| f["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        vec![
            format!(
                "{addr}/root/gition/api:latest does not exist (did you mean root/gition/backend?)"
            ),
            format!(
                "{addr}/root/gition/react:latest does not exist (did you mean root/gition/frontend?)"
            ),
        ],
        "{report:#}"
    );
    assert_eq!(names[0]["confidence"], "inferred");
    let evidence = serde_json::to_string(&names[0]["evidence"]).unwrap();
    assert!(
        evidence.contains(".gitlab-ci.yml") && evidence.contains("docker build -t"),
        "{evidence}"
    );
}

/// The issue's fix, workload side, against the real registry: the incident's manifests ask for
/// `…/api` and `…/react` while the registry holds `…/backend` and `…/frontend`. `fix --dry-run`
/// shows the two `image:` lines changing and writes nothing; `fix --yes` edits exactly those two
/// lines (quotes kept, the old file kept as a backup) and verifies by re-running `image.names`,
/// which then passes; a second run has nothing to do.
#[test]
fn fix_points_the_manifests_at_the_pushed_images() {
    let Some(reg) = start_registry() else { return };
    gition(&reg);
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", reg.port);
    let inventory = common::write(
        dir.path(),
        "pulldoctor.toml",
        format!("[gitlab]\nproject = \"root/gition\"\n[registry]\naddress = \"{addr}\"\n")
            .as_bytes(),
    );
    let original = std::fs::read_to_string(common::root().join("tests/fixtures/kube/gition.yaml"))
        .unwrap()
        .replace("172.100.100.9:5050", &addr);
    let manifest = common::write(dir.path(), "gition.yaml", original.as_bytes());
    let state = dir.path().join("state");
    let state_s = state.to_str().unwrap();
    let fix = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            inventory.to_str().unwrap(),
            "--manifests",
            manifest.to_str().unwrap(),
            "fix",
        ];
        args.extend_from_slice(extra);
        let out = common::run(&args, b"", &[("PULLDOCTOR_STATE_DIR", state_s)]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (common::code(&out), text)
    };
    let (code, shown) = fix(&["--dry-run"]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("Fix deployment-image"), "{shown}");
    assert!(
        shown.contains(&format!(
            "+          image: {addr}/root/gition/backend:latest\n"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "+        image: \"{addr}/root/gition/frontend:latest\"\n"
        )),
        "{shown}"
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), original);

    let (code, shown) = fix(&["--yes"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("deployment-image on this machine: fixed and verified"),
        "{shown}"
    );
    let expected = original
        .replace("/root/gition/api:latest", "/root/gition/backend:latest")
        .replace("/root/gition/react:latest", "/root/gition/frontend:latest");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), expected);
    let backup = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.to_str()
                .unwrap()
                .contains("gition.yaml.pulldoctor-backup-")
        })
        .expect("a backup");
    assert_eq!(std::fs::read_to_string(backup).unwrap(), original);
    let recheck = common::report(&common::run(
        &[
            "--headless",
            "--config",
            inventory.to_str().unwrap(),
            "--manifests",
            manifest.to_str().unwrap(),
        ],
        b"",
        &[],
    ));
    let status = recheck["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "image.names")
        .unwrap()["status"]
        .clone();
    assert_eq!(status["state"], "passed", "{recheck:#}");
    let (_, again) = fix(&["--yes"]);
    assert!(again.contains("Nothing to fix"), "{again}");
}
