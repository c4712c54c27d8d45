//! Planted secrets never leave: one GitLab token, one pull-secret password and one PEM private key
//! are planted in every input pulldoctor reads without root (node log, events, job log, pull
//! secret, `.gitlab-ci.yml`, stuck banner, manifests, inventory, audit log, `GITLAB_TOKEN`), and
//! in what hostile servers answer (a GitLab double and a registry/token-server double on
//! 127.0.0.1 that echo the credentials they were sent back in their error bodies). Then every
//! face is read — JSON, text report, runbook, bundle, replay, diagnostics on stderr, `fix
//! --dry-run`, and the dashboard drawn into a `TestBackend` with every finding's detail and fix
//! plan open, and the real dashboard on a pty with its `--log-file` at trace level — and none may
//! contain a secret, nor its base64 form.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use pulldoctor::parse::jwt::base64_encode;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

const TOKEN: &str = "glpat-PLANTEDhardenTok3n9x8q";
const PASSWORD: &str = "Pl4ntedPullSecretPw-7c1e";
const USER: &str = "gition-deploy";
/// The body of a PEM private key: each line alone is a secret.
const KEY_BODY: [&str; 3] = [
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACBQTEFOVEVEa2V5Ym9keWhhcmRlbnRlc3QxMjM0NTY3ODkwYWJjZGVmZ2",
    "AAAECPLANTEDprivatekeymaterialXYZ0123456789abcdefghijklmnopqrstuvwxyz",
];

fn private_key() -> String {
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
        KEY_BODY.join("\n")
    )
}

fn basic_auth() -> String {
    base64_encode(format!("{USER}:{PASSWORD}").as_bytes(), false)
}

/// Every secret, and every form of it that would still give it away.
fn forbidden() -> Vec<String> {
    let mut out = vec![
        TOKEN.to_string(),
        PASSWORD.to_string(),
        basic_auth(),
        base64_encode(TOKEN.as_bytes(), false),
        base64_encode(PASSWORD.as_bytes(), false),
        base64_encode(private_key().as_bytes(), false),
    ];
    // a base64 form inside other base64 shows from any of its three alignments: the token
    // without its first characters still gives most of it away
    out.push(TOKEN["glpat-".len()..].to_string());
    out.extend(KEY_BODY.iter().map(|l| (*l).to_string()));
    out
}

/// Fail naming the face and the secret, with the text around it.
fn assert_clean(face: &str, text: &str) {
    for secret in forbidden() {
        if let Some(at) = text.find(&secret) {
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            let to = (at + secret.len() + 200).min(text.len());
            let to = (to..=text.len())
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(text.len());
            panic!("{face} leaks '{secret}':\n…{}…", &text[from..to]);
        }
    }
}

/// An HTTP server on 127.0.0.1 that answers every request from `answer(request head)`, closing
/// each connection; it runs until the test process ends.
fn serve(answer: impl Fn(&str) -> String + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = stream.write_all(answer(&head).as_bytes());
        }
    });
    port
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

/// The value of a header in a request head.
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or("")
}

/// GitLab that refuses the token, quoting it back (as a careless proxy or old GitLab might).
fn gitlab_double() -> u16 {
    serve(|head| {
        let token = header(head, "PRIVATE-TOKEN");
        let body = format!(
            r#"{{"message":"401 Unauthorized: token {token} is revoked","private_token":"{token}"}}"#
        );
        http(
            "401 Unauthorized",
            &format!("X-Echo-Token: {token}\r\n"),
            &body,
        )
    })
}

/// A registry whose token realm refuses the pull secret's credentials and quotes them back.
fn registry_double() -> u16 {
    let port_cell = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let cell = port_cell.clone();
    let port = serve(move |head| {
        let port = cell.get().copied().unwrap_or(0);
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let auth = header(head, "Authorization");
        if target.starts_with("/jwt/auth") {
            let decoded = auth
                .strip_prefix("Basic ")
                .and_then(|b| pulldoctor::parse::jwt::base64_decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let body = format!(
                r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"bad credentials {decoded} ({auth}) for {target}"}}]}}"#
            );
            http("401 Unauthorized", "", &body)
        } else {
            http(
                "401 Unauthorized",
                &format!(
                    "Docker-Distribution-Api-Version: registry/2.0\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/jwt/auth\",service=\"container_registry\",scope=\"repository:root/gition/backend:pull\"\r\n"
                ),
                &format!(
                    r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"authentication required ({auth})"}}]}}"#
                ),
            )
        }
    });
    port_cell.set(port).unwrap();
    port
}

/// The planted inputs, written under `dir`.
struct Inputs {
    node_log: PathBuf,
    events: PathBuf,
    job_log: PathBuf,
    pull_secret: PathBuf,
    secret_manifest: PathBuf,
    manifests: PathBuf,
    ci_file: PathBuf,
    banner: PathBuf,
    inventory: PathBuf,
    audit: PathBuf,
    registry: String,
}

fn plant(dir: &Path) -> Inputs {
    let key = private_key();
    let auth = basic_auth();
    let registry = format!("127.0.0.1:{}", registry_double());
    let gitlab = format!("http://127.0.0.1:{}", gitlab_double());
    let image = format!("{registry}/root/gition/backend:latest");
    let w = |name: &str, text: &str| common::write(dir, name, text.as_bytes());

    let node_log = w(
        "node.log",
        &format!(
            "Nov 27 10:00:01 k8s-n1 containerd[812]: time=\"2026-11-27T10:00:01Z\" level=error msg=\"PullImage \\\"{image}\\\" failed\" error=\"failed to resolve reference \\\"{image}\\\": failed to authorize: failed to fetch oauth token: unexpected status from GET request to http://{registry}/jwt/auth?scope=repository%3Aroot%2Fgition%2Fbackend%3Apull&service=container_registry: 401 Unauthorized (Authorization: Basic {auth})\"\n\
             Nov 27 10:00:02 k8s-n1 containerd[812]: time=\"2026-11-27T10:00:02Z\" level=error msg=\"trying next host\" error=\"pull access denied, token {TOKEN} password {PASSWORD}\" host={registry}\n\
             Nov 27 10:00:03 k8s-n1 kubelet[900]: E1127 10:00:03.000000     900 remote_image.go:180] \"PullImage from image service failed\" err=\"rpc error: code = Unknown desc = failed to pull and unpack image \\\"{image}\\\": failed to resolve reference: unexpected status from HEAD request to https://{USER}:{PASSWORD}@{registry}/v2/root/gition/backend/manifests/latest: 401 Unauthorized\" image=\"{image}\"\n\
             {key}\n"
        ),
    );
    let events = w(
        "events.txt",
        &format!(
            "LAST SEEN   TYPE      REASON    OBJECT                MESSAGE\n\
             2m          Warning   Failed    pod/backend-7d9f-x1   Failed to pull image \"{image}\": rpc error: code = Unknown desc = failed to authorize: failed to fetch oauth token: 401 Unauthorized token={TOKEN} password={PASSWORD}\n\
             2m          Warning   Failed    pod/backend-7d9f-x1   Error: ErrImagePull {key}\n"
        ),
    );
    let job_log = w(
        "job.log",
        &format!(
            "Running with gitlab-runner 17.5.0 (abcdef12)\n\
             $ docker login -u {USER} -p {PASSWORD} {registry}\n\
             $ curl --header \"PRIVATE-TOKEN: {TOKEN}\" {gitlab}/api/v4/projects\n\
             $ echo \"$SSH_PRIVATE_KEY\"\n{key}\n\
             Error response from daemon: Get \"http://{registry}/v2/\": unauthorized: HTTP Basic: Access denied ({USER}:{PASSWORD})\n\
             $ docker push {image}\n\
             denied: requested access to the resource is denied; token {TOKEN}\n\
             ERROR: Job failed: exit code 1\n"
        ),
    );
    let docker_config = format!(
        r#"{{"auths":{{"{registry}":{{"username":"{USER}","password":"{PASSWORD}","auth":"{auth}"}}}}}}"#
    );
    let pull_secret = w("config.json", &docker_config);
    let secret_manifest = w(
        "regcred.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: gition\n  annotations:\n    note: \"{TOKEN}\"\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
            base64_encode(docker_config.as_bytes(), false)
        ),
    );
    let indented_key = key.replace('\n', "\n                  ");
    let manifests = w(
        "manifests.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: backend-7d9f-x1\n  namespace: gition\nspec:\n  nodeName: k8s-n1\n  imagePullSecrets:\n  - name: regcred\n  containers:\n  - name: backend\n    image: {image}\n    env:\n    - name: GITLAB_TOKEN\n      value: {TOKEN}\n    - name: REGISTRY_PASSWORD\n      value: {PASSWORD}\n    - name: SSH_KEY\n      value: |\n                  {indented_key}\nstatus:\n  phase: Pending\n  containerStatuses:\n  - name: backend\n    image: {image}\n    ready: false\n    restartCount: 0\n    state:\n      waiting:\n        reason: ErrImagePull\n        message: 'failed to pull \"{image}\": 401 Unauthorized token {TOKEN} ({USER}:{PASSWORD})'\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: gition\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
            base64_encode(docker_config.as_bytes(), false)
        ),
    );
    let ci_file = w(
        ".gitlab-ci.yml",
        &format!(
            "variables:\n  GITLAB_TOKEN: \"{TOKEN}\"\n  CI_REGISTRY_PASSWORD: \"{PASSWORD}\"\n  DEPLOY_KEY: |\n    {}\n\
             build-backend:\n  stage: build\n  image: docker:24.0\n  services:\n    - docker:24.0-dind\n  tags: [msi-gition, {TOKEN}]\n  script:\n    - docker login -u {USER} -p {PASSWORD} {registry}\n    - docker build -t {image} .\n    - docker push {image}\n",
            key.replace('\n', "\n    ")
        ),
    );
    let banner = w(
        "banner.txt",
        &format!(
            "This job is stuck because of one of the following problems. There are no active runners online, no runners for the protected branch, or no runners that match all of the job's tags: msi-gition {TOKEN}\nGo to project CI settings\n{key}\n"
        ),
    );
    let inventory = w(
        "pulldoctor.toml",
        &format!(
            "# the token is {TOKEN}; the deploy password is {PASSWORD}\n\
             [gitlab]\nurl = \"{gitlab}\"\nproject = \"root/gition\"\ntoken_env = \"GITLAB_TOKEN\"\n\n\
             [registry]\naddress = \"{registry}\"\nimages = [\"{image}\"]\n\n\
             [[host]]\nname = \"k8s-n1\"\nssh = \"deploy@127.0.0.1:1\"\nroles = [\"node\"]\n"
        ),
    );
    let audit = w(
        "audit.jsonl",
        &format!(
            "{}\n",
            serde_json::json!({
                "time": "2099-01-01T00:00:00Z",
                "user": "root",
                "fix": "recreate-pull-secret",
                "host": format!("k8s-n1"),
                "step": "verify",
                "outcome": "verification failed",
                "detail": format!("token {TOKEN}: login {USER}:{PASSWORD} refused; key {key}"),
            })
        ),
    );
    Inputs {
        node_log,
        events,
        job_log,
        pull_secret,
        secret_manifest,
        manifests,
        ci_file,
        banner,
        inventory,
        audit,
        registry,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn both(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every face of the real binary, on every planted input.
#[test]
fn planted_secrets_reach_no_face() {
    let dir = tempfile::tempdir().unwrap();
    let inp = plant(dir.path());
    let bundle = dir.path().join("run.bundle.json");
    let report_file = dir.path().join("report.json");
    let env = [("GITLAB_TOKEN", TOKEN), ("XDG_STATE_HOME", s(dir.path()))];
    let inputs: Vec<&str> = vec![
        "--config",
        s(&inp.inventory),
        "--log",
        s(&inp.node_log),
        "--events",
        s(&inp.events),
        "--job-log",
        s(&inp.job_log),
        "--pull-secret",
        s(&inp.pull_secret),
        "--manifests",
        s(&inp.manifests),
        "--manifests",
        s(&inp.secret_manifest),
        "--ci-file",
        s(&inp.ci_file),
        "--stuck-banner",
        s(&inp.banner),
        "--timeout",
        "20",
        "--log-level",
        "trace",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        inputs
            .iter()
            .chain(extra)
            .map(|a| (*a).to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run(&args, b"", &env)
    };

    // JSON (stdout and -o), the bundle, diagnostics at trace level on stderr
    let headless = run(with(&[
        "--headless",
        "--record",
        s(&bundle),
        "-o",
        s(&report_file),
    ]));
    assert!(
        [0, 1, 3].contains(&common::code(&headless)),
        "{}",
        both(&headless)
    );
    let report_text = std::fs::read_to_string(&report_file).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report_text)
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}):\n{report_text}"));
    common::validate(&report);
    // the planted inputs were read: the failures they hold were found
    let classes = common::classes(&report);
    assert!(
        classes
            .iter()
            .any(|c| c == "auth_denied" || c == "auth_token_fetch"),
        "{classes:?}"
    );
    assert!(
        report_text.contains(&inp.registry),
        "the registry double was asked"
    );
    assert_clean("headless JSON (-o)", &report_text);
    assert_clean(
        "headless stdout/stderr (trace diagnostics)",
        &both(&headless),
    );
    let bundle_text = std::fs::read_to_string(&bundle).unwrap();
    assert_clean("bundle", &bundle_text);

    // the replay of that bundle, JSON on stdout
    let replay = common::run(
        &["--headless", "--replay", s(&bundle), "--log-level", "trace"],
        b"",
        &[],
    );
    assert!(
        common::report(&replay)["findings"].as_array().is_some(),
        "{}",
        both(&replay)
    );
    assert_clean("replayed JSON", &both(&replay));

    // the text report and explain's JSON
    for json in [false, true] {
        let mut args = vec!["explain".to_string()];
        if json {
            args.push("--json".to_string());
        }
        args.extend(with(&[]));
        let out = run(args);
        assert!(!out.stdout.is_empty(), "{}", both(&out));
        assert_clean(
            if json { "explain JSON" } else { "text report" },
            &both(&out),
        );
    }

    // the runbook: of a fresh run (with the planted audit log), and of the report written above
    let mut args = vec![
        "runbook".to_string(),
        "--audit".to_string(),
        s(&inp.audit).to_string(),
    ];
    args.extend(with(&[]));
    let runbook = run(args);
    let text = both(&runbook);
    assert!(
        text.contains("verification failed on k8s-n1"),
        "the audit entry is shown: {text}"
    );
    assert_clean("runbook (fresh run, planted audit log)", &text);
    let from = common::run(
        &[
            "runbook",
            "--from",
            s(&report_file),
            "--audit",
            s(&inp.audit),
            // a bare password has no shape: it is known as one only from its pull secret
            "--pull-secret",
            s(&inp.pull_secret),
        ],
        b"",
        &env,
    );
    assert_clean("runbook --from", &both(&from));

    // fix --dry-run: its node cannot be reached, so it plans nothing and audits nothing (an
    // applied fix needs the lab's SSH nodes: tests/fix_lab.rs), but what it says is read
    let fix = run(with(&["fix", "--dry-run"]));
    assert_clean("fix --dry-run", &both(&fix));
    let audit_dir = dir.path().join("pulldoctor");
    if let Ok(entries) = std::fs::read_dir(&audit_dir) {
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            assert_clean(&format!("state file {}", e.path().display()), &text);
        }
    }
}

/// The dashboard: the same inputs planned and run in process, every finding opened with its
/// detail and fix plan, each screen drawn into a `TestBackend`.
#[test]
fn planted_secrets_reach_no_screen() {
    use pulldoctor::check::catalog::Catalog;
    use pulldoctor::tui::app::{App, Pane};
    use pulldoctor::tui::theme::Theme;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    let dir = tempfile::tempdir().unwrap();
    let inp = plant(dir.path());
    let args = pulldoctor::cli::RunArgs {
        config: Some(inp.inventory.clone()),
        logs: vec![s(&inp.node_log).to_string()],
        events: vec![s(&inp.events).to_string()],
        job_logs: vec![s(&inp.job_log).to_string()],
        pull_secret: Some(s(&inp.pull_secret).to_string()),
        manifests: vec![
            s(&inp.manifests).to_string(),
            s(&inp.secret_manifest).to_string(),
        ],
        ci_file: Some(inp.ci_file.clone()),
        stuck_banner: Some(s(&inp.banner).to_string()),
        concurrency: 16,
        timeout: 20,
        since: 3600,
        log_level: "warn".to_string(),
        ..Default::default()
    };
    let setup = pulldoctor::prepare(Catalog::embedded().unwrap(), &args, "dashboard").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let events = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let engine = tokio::spawn(pulldoctor::engine::run(
            setup.plan.clone(),
            setup.ctx.clone(),
            setup.limits,
            tx,
        ));
        let mut events = Vec::new();
        while let Some(ev) = rx.recv().await {
            events.push(ev);
        }
        engine.await.unwrap();
        events
    });
    let mut app = App::new("planted secrets".to_string(), Theme { color: false });
    app.fix_commands = setup.classifier.catalog().fix_commands();
    for ev in events {
        let _ = app.apply(ev);
    }
    assert!(matches!(app.state.finding_count(), n if n > 0));
    let key = |c: KeyCode| KeyEvent::new(c, KeyModifiers::NONE);
    let screen = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
        terminal
            .draw(|f| pulldoctor::tui::view::render(f, app))
            .unwrap();
        let buf = terminal.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_clean("dashboard", &screen(&app));
    // every check's log, then every finding with its detail and fix plan
    let checks = app.visible_checks().len();
    for _ in 0..checks {
        assert_clean("dashboard (a check selected)", &screen(&app));
        app.handle_key(key(KeyCode::Char('j')));
    }
    app.handle_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Findings);
    let findings = app.visible_findings().len();
    let mut seen = 0;
    for _ in 0..findings {
        app.handle_key(key(KeyCode::Enter));
        assert_clean("finding detail", &screen(&app));
        app.handle_key(key(KeyCode::Char('f')));
        assert_clean("fix plan", &screen(&app));
        app.handle_key(key(KeyCode::Esc));
        app.handle_key(key(KeyCode::Esc));
        app.handle_key(key(KeyCode::Char('j')));
        seen += 1;
    }
    assert_eq!(seen, findings);
}

/// The real dashboard on a terminal (`script` gives it a pty), with diagnostics at trace level
/// going to `--log-file`: what it drew — the whole byte stream — and the log file are clean.
#[test]
fn planted_secrets_reach_no_dashboard_log() {
    use std::io::Read as _;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let inp = plant(dir.path());
    let log_file = dir.path().join("dashboard.log");
    let quote = |p: &Path| format!("'{}'", s(p));
    let line = format!(
        "stty cols 200 rows 60; {} --config {} --log {} --events {} --job-log {} --pull-secret {} \
         --manifests {} --manifests {} --ci-file {} --stuck-banner {} --timeout 20 \
         --log-level trace --log-file {}",
        env!("CARGO_BIN_EXE_pulldoctor"),
        quote(&inp.inventory),
        quote(&inp.node_log),
        quote(&inp.events),
        quote(&inp.job_log),
        quote(&inp.pull_secret),
        quote(&inp.manifests),
        quote(&inp.secret_manifest),
        quote(&inp.ci_file),
        quote(&inp.banner),
        quote(&log_file),
    );
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("GITLAB_TOKEN", TOKEN)
        .env("XDG_STATE_HOME", dir.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script(1) runs the dashboard on a pty");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let mut wait_for = |what: &str, secs: u64, screen: &mut Vec<u8>| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !String::from_utf8_lossy(screen).contains(what) {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the dashboard never showed '{what}':\n{}",
                    String::from_utf8_lossy(screen)
                );
            }
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(200)) {
                screen.extend(b);
            }
        }
    };
    wait_for("done", 120, &mut screen);
    let stdin = child.stdin.as_mut().unwrap();
    // the findings, the first one's detail, its fix plan (planned in the background), then quit
    for keys in [&b"\t"[..], b"\r", b"f", b"\x1b", b"\x1b", b"q"] {
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(700));
    }
    let status = child.wait().unwrap();
    while let Ok(b) = rx.recv_timeout(Duration::from_millis(300)) {
        screen.extend(b);
    }
    // the exit code says what was found (README, exit codes); 2 would be a usage error, 101 a panic
    assert!(
        matches!(status.code(), Some(0 | 1 | 3)),
        "{status}: {}",
        String::from_utf8_lossy(&screen)
    );
    assert_clean("dashboard on a terminal", &String::from_utf8_lossy(&screen));
    let log = std::fs::read_to_string(&log_file).expect("the dashboard wrote its log file");
    assert!(
        log.lines().count() > 5 && log.contains(&inp.registry),
        "trace diagnostics of the run were written: {log}"
    );
    assert_clean("dashboard log file (trace)", &log);
}
