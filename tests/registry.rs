//! The registry checks against the real CNCF registry (`docker-registry`) on loopback, in token
//! mode behind the lab's GitLab-like `/jwt/auth` server and in TLS mode with a self-made CA; each
//! verdict is compared with what a real containerd pull (`ctr images pull`) does.
//!
//! Needs docker-registry, openssl, htpasswd, python3 and (for the pull comparison) containerd and
//! ctr; `tests/run-all.sh` installs them as root. Without them the tests say so and pass nothing
//! off as checked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod common;

use common::hostile::{Hostile, hostile};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn missing_tools(tools: &[&str]) -> Option<String> {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn labtool() -> PathBuf {
    common::root().join("tests/lab/labtool.py")
}

/// Processes that die with the fixture, even when an assertion fails.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(dir: &Path, log: &str, argv: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join(log)).expect("log");
    Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]))
}

/// A registry in token mode, its token server, and two images pushed.
struct TokenRegistry {
    dir: tempfile::TempDir,
    procs: Procs,
    registry: String,
    token_port: u16,
    deploy_pass: String,
    outsider_pass: String,
}

impl TokenRegistry {
    fn start(realm_port_override: Option<u16>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let token_port = free_port();
        let reg_port = free_port();
        let deploy_pass = "deploy-Pa55-7f3a9c".to_string();
        let outsider_pass = "outsider-Pa55-1b2c3d".to_string();
        sh(&format!(
            "cd {d} && openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=token \
             -keyout token.key -out token.crt 2>/dev/null && \
             htpasswd -cbB users.htpasswd gition-deploy {deploy_pass} 2>/dev/null && \
             htpasswd -bB users.htpasswd outsider {outsider_pass} 2>/dev/null && \
             htpasswd -bB users.htpasswd root rootpass 2>/dev/null"
        ));
        std::fs::write(
            dir.path().join("token-server.json"),
            format!(
                r#"{{"issuer":"omnibus-gitlab-issuer","service":"container_registry","key":"{d}/token.key","cert":"{d}/token.crt","htpasswd":"{d}/users.htpasswd","lifetime":300,
"users":{{"gition-deploy":{{"rights":{{"root/gition":["pull"]}}}},"outsider":{{"rights":{{}}}},"root":{{"rights":{{"*":["pull","push","*"]}},"registry":["*"]}}}}}}"#
            ),
        )
        .expect("token config");
        let realm_port = realm_port_override.unwrap_or(token_port);
        std::fs::write(
            dir.path().join("registry.yml"),
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\nhttp:\n  addr: 127.0.0.1:{reg_port}\n  secret: test-secret\nauth:\n  token:\n    realm: http://127.0.0.1:{realm_port}/jwt/auth\n    service: container_registry\n    issuer: omnibus-gitlab-issuer\n    rootcertbundle: {d}/token.crt\n"
            ),
        )
        .expect("registry config");
        let tool = labtool().display().to_string();
        let cfg = format!("{d}/token-server.json");
        let listen = format!("127.0.0.1:{token_port}");
        let yml = format!("{d}/registry.yml");
        let procs = Procs(vec![
            spawn(
                dir.path(),
                "token.log",
                &[
                    "python3",
                    &tool,
                    "token-server",
                    "--config",
                    &cfg,
                    "--listen",
                    &listen,
                ],
            ),
            spawn(
                dir.path(),
                "registry.log",
                &["docker-registry", "serve", &yml],
            ),
        ]);
        wait_port(token_port, "token server");
        wait_port(reg_port, "registry");
        let registry = format!("127.0.0.1:{reg_port}");
        let token = sh(&format!(
            "python3 {tool} mint --config {cfg} --sub root --scope repository:root/gition/backend:pull,push"
        ));
        sh(&format!(
            "python3 {tool} push --registry http://{registry} --token {} --repo root/gition/backend --tag latest --text backend",
            token.trim()
        ));
        TokenRegistry {
            dir,
            procs,
            registry,
            token_port,
            deploy_pass,
            outsider_pass,
        }
    }

    /// A pull secret (a Secret manifest with base64 `.dockerconfigjson`) for `user`.
    fn secret(&self, name: &str, user: &str, password: &str) -> PathBuf {
        let auth = common::base64(&format!("{user}:{password}"));
        let cfg = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.registry);
        let manifest = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
            common::base64(&cfg)
        );
        common::write(
            self.dir.path(),
            &format!("secret-{name}.yaml"),
            manifest.as_bytes(),
        )
    }
}

/// Run a headless check of `image` (no inventory) and return the report.
fn doctor(image: &str, secret: Option<&Path>, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--headless", "--image", image];
    let secret = secret.map(|p| p.display().to_string());
    if let Some(s) = &secret {
        args.extend(["--pull-secret", s]);
    }
    args.extend_from_slice(extra);
    let out = common::run(&args, b"", &[("XDG_CONFIG_HOME", "/nonexistent")]);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    common::report(&out)
}

/// The findings of `check` as (class, severity, title).
fn findings_of(report: &serde_json::Value, check: &str) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["check"] == check)
        .map(|f| {
            (
                f["class"].as_str().unwrap_or("").to_string(),
                f["severity"].as_str().unwrap_or("").to_string(),
                f["title"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A real containerd with its own root, state and socket.
struct Containerd {
    _procs: Procs,
    socket: String,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Option<Self> {
        if let Some(m) = missing_tools(&["containerd", "ctr"]) {
            eprintln!("SKIP the real-pull comparison: {m} not installed");
            return None;
        }
        if sh("id -u").trim() != "0" {
            eprintln!("SKIP the real-pull comparison: containerd needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let socket = format!("{d}/containerd.sock");
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n[grpc]\n  address = \"{socket}\"\n[ttrpc]\n  address = \"{d}/ttrpc.sock\"\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        )
        .expect("containerd config");
        let cfg = format!("{d}/config.toml");
        let procs = Procs(vec![spawn(
            dir.path(),
            "containerd.log",
            &["containerd", "--config", &cfg],
        )]);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !Path::new(&socket).exists() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Containerd {
            _procs: procs,
            socket,
            dir,
        })
    }

    /// `ctr images pull` with a hosts dir holding `hosts_toml` for `registry`: Ok or the error.
    fn pull(
        &self,
        registry: &str,
        hosts_toml: &str,
        image: &str,
        user: Option<&str>,
    ) -> Result<(), String> {
        let hosts = self.dir.path().join("certs.d").join(registry);
        std::fs::create_dir_all(&hosts).expect("hosts dir");
        std::fs::write(hosts.join("hosts.toml"), hosts_toml).expect("hosts.toml");
        let hosts_dir = self.dir.path().join("certs.d").display().to_string();
        let mut args = vec![
            "-a",
            &self.socket,
            "images",
            "pull",
            "--hosts-dir",
            &hosts_dir,
        ];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        args.push(image);
        let out = Command::new("ctr").args(&args).output().expect("ctr");
        let _ = Command::new("ctr")
            .args(["-a", &self.socket, "images", "rm", image])
            .output();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn plain_http_hosts(registry: &str) -> String {
    format!(
        "server = \"http://{registry}\"\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    )
}

/// Every token-mode scenario: pulldoctor's verdict, then the real pull's outcome, which must agree.
#[test]
fn token_mode_verdicts_agree_with_real_pulls() {
    if let Some(m) = missing_tools(&["docker-registry", "openssl", "htpasswd", "python3"]) {
        eprintln!(
            "SKIP token_mode_verdicts_agree_with_real_pulls: {m} not installed (tests/run-all.sh installs them as root)"
        );
        return;
    }
    let reg = TokenRegistry::start(None);
    let ctrd = Containerd::start();
    let r = &reg.registry;
    let hosts = plain_http_hosts(r);
    let backend = format!("{r}/root/gition/backend:latest");
    let deploy = reg.secret("deploy", "gition-deploy", &reg.deploy_pass);
    let outsider = reg.secret("outsider", "outsider", &reg.outsider_pass);
    let wrong = reg.secret("wrong", "gition-deploy", "not-the-password");

    let deploy_user = format!("gition-deploy:{}", reg.deploy_pass);
    let outsider_user = format!("outsider:{}", reg.outsider_pass);
    // (scenario, pull secret, image, the class registry.auth must name (None: a pass), the real
    // pull's --user)
    type Case<'a> = (
        &'a str,
        Option<&'a PathBuf>,
        String,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "healthy",
            Some(&deploy),
            backend.clone(),
            None,
            Some(&deploy_user),
        ),
        (
            "wrong password",
            Some(&wrong),
            backend.clone(),
            Some("auth_denied"),
            Some("gition-deploy:not-the-password"),
        ),
        (
            "valid user without access",
            Some(&outsider),
            backend.clone(),
            Some("auth_denied"),
            Some(&outsider_user),
        ),
        (
            "missing tag",
            Some(&deploy),
            format!("{r}/root/gition/backend:v9"),
            Some("image_not_found"),
            Some(&deploy_user),
        ),
        (
            "missing repository",
            Some(&deploy),
            format!("{r}/root/gition/api:latest"),
            Some("image_not_found"),
            Some(&deploy_user),
        ),
        (
            "no credentials",
            None,
            backend.clone(),
            Some("auth_denied"),
            None,
        ),
    ];
    for (name, secret, image, expected, user) in cases {
        let report = doctor(&image, secret.map(PathBuf::as_path), &[]);
        let got = findings_of(&report, "registry.auth");
        let classes: Vec<&str> = got
            .iter()
            .filter(|(_, sev, _)| sev == "error")
            .map(|(c, _, _)| c.as_str())
            .collect();
        match expected {
            None => assert!(
                classes.is_empty(),
                "{name}: expected a pass, got {got:?}\n{}",
                std::fs::read_to_string(reg.dir.path().join("token.log")).unwrap_or_default()
            ),
            Some(class) => assert_eq!(classes, vec![class], "{name}: {got:?}"),
        }
        // no credential ever appears in the report
        let text = report.to_string();
        for secret in [
            &reg.deploy_pass,
            &reg.outsider_pass,
            &"not-the-password".to_string(),
        ] {
            assert!(!text.contains(secret.as_str()), "{name}: a password leaked");
        }
        if let Some(c) = &ctrd {
            let pulled = c.pull(r, &hosts, &image, user);
            assert_eq!(
                pulled.is_ok(),
                expected.is_none(),
                "{name}: pulldoctor said {got:?}, the real pull said {pulled:?}"
            );
        }
    }

    // Record a run, replay it: the same findings, and no password in the bundle.
    for secret in [&deploy, &outsider, &wrong] {
        let bundle = reg.dir.path().join("run.bundle.json");
        let b = bundle.display().to_string();
        let recorded = doctor(&backend, Some(secret), &["--record", &b]);
        let text = std::fs::read_to_string(&bundle).unwrap();
        for pass in [
            reg.deploy_pass.as_str(),
            reg.outsider_pass.as_str(),
            "not-the-password",
        ] {
            assert!(!text.contains(pass), "a password is in the bundle");
        }
        let out = common::run(
            &["--headless", "--replay", &b],
            b"",
            &[("XDG_CONFIG_HOME", "/nonexistent")],
        );
        let replayed = common::report(&out);
        assert_eq!(
            recorded["findings"],
            replayed["findings"],
            "replay of {}",
            secret.display()
        );
        assert_eq!(recorded["summary"], replayed["summary"]);
    }

    // The realm: reachable here, and the healthy run reports it as such.
    let report = doctor(&backend, Some(&deploy), &[]);
    let realm = findings_of(&report, "registry.token-realm");
    assert!(
        realm.iter().all(|(c, _, _)| c == "none"),
        "healthy realm: {realm:?}"
    );
    let scheme = findings_of(&report, "registry.scheme");
    assert!(
        scheme.iter().any(|(_, _, t)| t.contains("plain HTTP")),
        "scheme: {scheme:?}"
    );
    // exit code 0 when healthy
    let _ = reg.token_port;
    drop(reg.procs);
}

/// The realm points at a port nothing listens on (GitLab's external_url on an address the
/// registry's clients cannot reach): token-realm and auth both name it; the real pull fails.
#[test]
fn unreachable_realm_is_named() {
    if let Some(m) = missing_tools(&["docker-registry", "openssl", "htpasswd", "python3"]) {
        eprintln!("SKIP unreachable_realm_is_named: {m} not installed");
        return;
    }
    let dead = free_port();
    let reg = TokenRegistry::start(Some(dead));
    let r = &reg.registry;
    let backend = format!("{r}/root/gition/backend:latest");
    let deploy = reg.secret("deploy", "gition-deploy", &reg.deploy_pass);
    let report = doctor(&backend, Some(&deploy), &[]);
    let realm = findings_of(&report, "registry.token-realm");
    assert!(
        realm.iter().any(|(c, s, t)| c == "token_realm_unreachable"
            && s == "error"
            && t.contains(&format!("127.0.0.1:{dead}"))),
        "{realm:?}"
    );
    let auth = findings_of(&report, "registry.auth");
    assert!(
        auth.iter().any(|(c, _, _)| c == "token_realm_unreachable"),
        "{auth:?}"
    );
    assert_eq!(report["summary"]["exit_code"], 1);
    if let Some(c) = Containerd::start() {
        let pulled = c.pull(
            r,
            &plain_http_hosts(r),
            &backend,
            Some(&format!("gition-deploy:{}", reg.deploy_pass)),
        );
        assert!(pulled.is_err(), "the real pull should fail: {pulled:?}");
    }
}

/// TLS with a self-made CA: without the CA the certificate is untrusted (and the real pull fails
/// with x509); with it, trusted (and the pull works).
#[test]
fn tls_registry_with_unknown_ca() {
    if let Some(m) = missing_tools(&["docker-registry", "openssl", "python3"]) {
        eprintln!("SKIP tls_registry_with_unknown_ca: {m} not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let port = free_port();
    let registry = format!("127.0.0.1:{port}");
    sh(&format!(
        "cd {d} && openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=pd-test-ca \
         -keyout ca.key -out ca.crt 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -subj /CN=registry -keyout reg.key -out reg.csr 2>/dev/null && \
         printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && \
         openssl x509 -req -in reg.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
         -extfile ext.cnf -out reg.crt 2>/dev/null"
    ));
    std::fs::write(
        dir.path().join("registry.yml"),
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\nhttp:\n  addr: {registry}\n  tls:\n    certificate: {d}/reg.crt\n    key: {d}/reg.key\n"
        ),
    )
    .expect("config");
    let yml = format!("{d}/registry.yml");
    let _procs = Procs(vec![spawn(
        dir.path(),
        "registry.log",
        &["docker-registry", "serve", &yml],
    )]);
    wait_port(port, "TLS registry");
    let image = format!("{registry}/root/gition/backend:latest");

    let report = doctor(&image, None, &[]);
    let scheme = findings_of(&report, "registry.scheme");
    assert!(
        scheme
            .iter()
            .any(|(c, s, _)| c == "tls_cert" && s == "error"),
        "without the CA: {scheme:?}"
    );
    let ca = format!("{d}/ca.crt");
    let report = doctor(&image, None, &["--registry-ca", &ca]);
    let scheme = findings_of(&report, "registry.scheme");
    assert!(
        scheme
            .iter()
            .all(|(c, _, t)| c == "none" && t.contains("trusted")),
        "with the CA: {scheme:?}"
    );
    // the repository is empty: the auth check gets as far as the manifest
    let auth = findings_of(&report, "registry.auth");
    assert!(
        auth.iter().any(|(c, _, _)| c == "image_not_found"),
        "{auth:?}"
    );

    if let Some(c) = Containerd::start() {
        let https = |ca: &str| {
            format!(
                "server = \"https://{registry}\"\n[host.\"https://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n{ca}"
            )
        };
        let without = c.pull(&registry, &https(""), &image, None);
        assert!(
            without
                .as_ref()
                .is_err_and(|e| e.contains("x509") || e.contains("certificate")),
            "{without:?}"
        );
        // with the CA the TLS handshake succeeds and the pull gets as far as the missing manifest
        // (containerd then also tries the `server` fallback, which has no CA)
        let with = c.pull(
            &registry,
            &https(&format!("  ca = \"{ca}\"\n")),
            &image,
            None,
        );
        assert!(
            with.as_ref()
                .is_err_and(|e| e.contains("StatusNotFound") || e.contains(": not found")),
            "{with:?}"
        );
    }
}

/// Hostile servers cannot hang or crash a run: each ends within the request deadline with a
/// finding that says what went wrong.
#[test]
fn hostile_registries_end_with_a_finding() {
    let modes = [
        Hostile::Silent,
        Hostile::EndlessHeader,
        Hostile::HugeBody,
        Hostile::MalformedChallenge,
        Hostile::OpaqueToken,
    ];
    let runs: Vec<_> = modes
        .iter()
        .map(|&mode| {
            std::thread::spawn(move || {
                let port = hostile(mode);
                let started = Instant::now();
                let report = doctor(&format!("127.0.0.1:{port}/root/app:latest"), None, &[]);
                (mode, started.elapsed(), report)
            })
        })
        .collect();
    for run in runs {
        let (mode, took, report) = run.join().unwrap();
        assert!(took < Duration::from_secs(30), "{mode:?} took {took:?}");
        let findings: Vec<(String, String, String)> =
            ["registry.scheme", "registry.token-realm", "registry.auth"]
                .iter()
                .flat_map(|c| findings_of(&report, c))
                .filter(|(_, sev, _)| sev == "error" || sev == "warning")
                .collect();
        assert!(!findings.is_empty(), "{mode:?}: no finding: {report:#}");
        let titles = findings
            .iter()
            .map(|f| f.2.as_str())
            .collect::<Vec<_>>()
            .join(" | ");
        let expect = match mode {
            Hostile::Silent => "does not answer",
            Hostile::EndlessHeader => "no usable answer",
            Hostile::HugeBody => "went wrong",
            Hostile::MalformedChallenge => "does not describe",
            Hostile::OpaqueToken => "refuses the token",
        };
        assert!(titles.contains(expect), "{mode:?}: {titles}");
        assert_eq!(report["summary"]["exit_code"], 1, "{mode:?}");
    }
}
