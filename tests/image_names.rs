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
