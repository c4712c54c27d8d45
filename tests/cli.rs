//! The binary end to end: `explain` and `--headless` on real text, exit codes, the JSON schema,
//! malformed input, record/replay, `--checks-dir`, and secrets that must never leave.

mod common;
use common::{classes, code, report, run, write};

/// The five faults of INCIDENT.md, each from its verbatim text, classify to their classes.
#[test]
fn incident_faults_verbatim() {
    let cases = [
        (
            "build-backend: Pending\nThis job is stuck because of one of the following problems: - No runners for the protected branch - No runners that match all of the job's tags: mz-win-vm, msi-gition",
            "runner_tags",
        ),
        (
            "Error response from daemon: client version 1.43 is too old. Minimum supported API version is 1.44",
            "docker_api_skew",
        ),
        (
            "Failed to pull image: http: server gave HTTP response to HTTPS client",
            "http_vs_https",
        ),
        (
            "failed to fetch anonymous token: dial tcp 192.168.5.8:80: connect: no route to host",
            "token_realm_unreachable",
        ),
        (
            "Failed to pull image \"172.100.100.9:5050/root/gition/api:latest\": rpc error: code = NotFound desc = failed to pull and unpack image \"172.100.100.9:5050/root/gition/api:latest\": failed to resolve reference \"172.100.100.9:5050/root/gition/api:latest\": 172.100.100.9:5050/root/gition/api:latest: not found",
            "image_not_found",
        ),
    ];
    for (text, class) in cases {
        let out = run(&["explain", "--json", "-"], text.as_bytes(), &[]);
        assert_eq!(code(&out), 1, "{text}");
        let r = report(&out);
        assert_eq!(r["summary"]["primary_class"], class, "{text}");
    }
}

/// The shipped sample incident: all five faults, grouped, with nodes and repeat counts.
#[test]
fn sample_incident_report() {
    let out = run(&["explain", "--json", "assets/incident.log"], b"", &[]);
    assert_eq!(code(&out), 1);
    let r = report(&out);
    let mut got = classes(&r);
    got.sort();
    assert_eq!(
        got,
        [
            "docker_api_skew",
            "http_vs_https",
            "image_not_found",
            "runner_tags",
            "token_realm_unreachable"
        ]
    );
    let find = |class: &str| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["class"] == class)
            .unwrap()
            .clone()
    };
    let https = find("http_vs_https");
    assert_eq!(https["count"], 3);
    assert_eq!(
        https["subject"]["nodes"],
        serde_json::json!(["k8s-n1", "k8s-n2"])
    );
    assert_eq!(https["subject"]["registry"], "172.100.100.9:5050");
    let realm = find("token_realm_unreachable");
    assert_eq!(realm["subject"]["endpoint"], "192.168.5.8:80");
    assert!(
        realm["explanation"]
            .as_str()
            .unwrap()
            .contains("http://192.168.5.8/jwt/auth")
    );
    let missing = find("image_not_found");
    assert_eq!(missing["count"], 4, "x4 in the event row");
    assert_eq!(missing["subject"]["nodes"], serde_json::json!(["k8s-n3"]));
    let tags = find("runner_tags");
    assert_eq!(
        tags["subject"]["tags"],
        serde_json::json!(["mz-win-vm", "msi-gition"])
    );
    assert!(
        find("docker_api_skew")["explanation"]
            .as_str()
            .unwrap()
            .contains("docker:25.0")
    );
    // the evidence highlights the part that matched
    let ev = &https["evidence"][0];
    let [a, b] = [
        ev["matched"][0].as_u64().unwrap() as usize,
        ev["matched"][1].as_u64().unwrap() as usize,
    ];
    assert_eq!(
        &ev["text"].as_str().unwrap()[a..b],
        "server gave HTTP response to HTTPS client"
    );
    assert_eq!(r["summary"]["by_severity"]["error"], 5);
}

/// The text summary names class, evidence line and fixes; `NO_COLOR` keeps it free of escapes.
#[test]
fn explain_text_summary() {
    let out = run(&["explain", "assets/incident.log"], b"", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("token_realm_unreachable"), "{text}");
    assert!(text.contains("assets/incident.log:31"), "{text}");
    assert!(text.contains("forward-realm-port"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour with NO_COLOR set");
}

/// Benign text: exit 0, class none, nothing unexplained.
#[test]
fn benign_text_is_quiet() {
    let text = "time=\"2025-03-04T10:12:01Z\" level=info msg=\"PullImage \\\"a/b:1\\\" returns image reference \\\"sha256:ab\\\"\"\nLogin Succeeded\n  Normal  Pulled  2m  kubelet  Successfully pulled image \"a/b:1\" in 1.2s\n";
    let out = run(&["explain", "--json"], text.as_bytes(), &[]);
    assert_eq!(code(&out), 0);
    let r = report(&out);
    assert_eq!(r["summary"]["primary_class"], "none");
    assert_eq!(r["findings"].as_array().unwrap().len(), 0);
}

/// `--headless` with several inputs prints one schema-valid report; `--fail-on` sets the exit.
#[test]
fn headless_report_and_fail_on() {
    let dir = tempfile::tempdir().unwrap();
    let events = write(dir.path(), "events.txt", b"  Warning  Failed  1m  kubelet  Failed to pull image \"r:5000/a:1\": rpc error: code = Unknown desc = failed to pull and unpack image \"r:5000/a:1\": failed to resolve reference \"r:5000/a:1\": unexpected status from HEAD request to https://r:5000/v2/a/manifests/1: 401 Unauthorized\n");
    let ev = events.to_str().unwrap();
    let out = run(
        &["--headless", "--log", "assets/incident.log", "--events", ev],
        b"",
        &[],
    );
    assert_eq!(code(&out), 1);
    let r = report(&out);
    assert_eq!(r["run"]["mode"], "headless");
    assert_eq!(r["inputs"].as_array().unwrap().len(), 2);
    assert!(classes(&r).contains(&"auth_denied".to_string()));
    let out = run(
        &["--headless", "--events", ev, "--fail-on", "critical"],
        b"",
        &[],
    );
    assert_eq!(code(&out), 0, "error findings below --fail-on critical");
}

/// Malformed input is skipped with a count or read as text: never a panic.
#[test]
fn malformed_input_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut garbage = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        garbage.push((x >> 16) as u8);
    }
    let mut long = b"level=error msg=\"x\" error=\"".to_vec();
    long.extend(std::iter::repeat_n(b'a', 10 << 20));
    long.extend(b" connection refused\"\n");
    let invalid_utf8 = b"Error response from daemon: Get \"https://r\xff\xfe:5000/v2/\": dial tcp: lookup r on 1.1.1.1:53: no such host\n".to_vec();
    let truncated = br#"{"__REALTIME_TIMESTAMP":"1","_HOSTNAME":"n1","MESSAGE":"time=\"x\" level=error msg=\"PullImage \\\"a:1\\\" failed\" error=\"failed to pull and unpack image \\\"a:1\\\": failed to do request: Head \\\"https://r/v2/a/manifests/1\\\": http: server gave"#.to_vec();
    for (name, data) in [
        ("garbage.bin", garbage),
        ("long.log", long),
        ("invalid.log", invalid_utf8),
        ("truncated.json", truncated),
    ] {
        let p = write(dir.path(), name, &data);
        let out = run(&["explain", "--json", p.to_str().unwrap()], b"", &[]);
        assert!(matches!(code(&out), 0 | 1), "{name}: exit {}", code(&out));
        let r = report(&out);
        match name {
            "long.log" => assert_eq!(r["inputs"][0]["skipped_long_lines"], 1),
            "invalid.log" => assert_eq!(r["summary"]["primary_class"], "dns"),
            _ => {}
        }
    }
}

/// A missing file is an errored check with the path (exit 3), not a crash.
#[test]
fn missing_input_is_reported() {
    let out = run(
        &["--headless", "--log", "/nonexistent/pulldoctor.log"],
        b"",
        &[],
    );
    assert_eq!(code(&out), 3);
    let r = report(&out);
    let status = &r["checks"][0]["status"];
    assert_eq!(status["state"], "errored");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/pulldoctor.log")
    );
}

/// Usage errors exit 2 with a message; `--help` has examples and exit codes.
#[test]
fn usage() {
    let out = run(&["--headless"], b"", &[]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no input"));
    assert_eq!(code(&run(&["--bogus"], b"", &[])), 2);
    assert_eq!(
        code(&run(
            &["--headless", "--log", "-", "--events", "-"],
            b"",
            &[]
        )),
        2
    );
    // --apply is for an unattended headless run on live hosts only
    for (args, says) in [
        (
            &["--apply", "safe", "--log", "-"][..],
            "--apply works with --headless",
        ),
        (
            &["--headless", "--apply", "all", "--replay", "x.json"][..],
            "a replay changes nothing",
        ),
        (
            &["--headless", "--apply", "safe", "--read-only", "--log", "-"][..],
            "cannot be used with",
        ),
        (
            &["fix", "--apply", "safe"][..],
            "--apply works with --headless",
        ),
    ] {
        let out = run(args, b"", &[]);
        assert_eq!(code(&out), 2, "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let help = run(&["--help"], b"", &[]);
    assert_eq!(code(&help), 0);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Examples:") && text.contains("Exit codes:"),
        "{text}"
    );
}

/// `--checks-dir` extends a class; a broken file is a usage error naming line and column.
#[test]
fn checks_dir_extends_and_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "dns.toml",
        b"class = \"dns\"\n\n[[pattern]]\nid = \"corp-resolver\"\nregex = 'corp resolver gave up on'\nstandalone = true\n\n[[example]]\ntext = \"corp resolver gave up on registry.corp\"\n",
    );
    let d = dir.path().to_str().unwrap();
    let out = run(
        &["explain", "--json", "--checks-dir", d],
        b"corp resolver gave up on registry.corp\n",
        &[],
    );
    assert_eq!(report(&out)["summary"]["primary_class"], "dns");
    let out = run(&["signatures", "--test", "--checks-dir", d], b"", &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let bad = tempfile::tempdir().unwrap();
    write(
        bad.path(),
        "x.toml",
        b"class = \"dns\"\npriority = \"high\"\n",
    );
    let out = run(
        &["explain", "--checks-dir", bad.path().to_str().unwrap()],
        b"x",
        &[],
    );
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("x.toml") && err.contains("line 2, column 12"),
        "{err}"
    );
}

/// Record a run into a bundle, replay it with the input gone: the same findings.
#[test]
fn record_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.log",
        &std::fs::read(common::root().join("assets/incident.log")).unwrap(),
    );
    let bundle = dir.path().join("b.json");
    let rec = run(
        &[
            "--headless",
            "--log",
            input.to_str().unwrap(),
            "--record",
            bundle.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    std::fs::remove_file(&input).unwrap();
    let rep = run(
        &["--headless", "--replay", bundle.to_str().unwrap()],
        b"",
        &[],
    );
    let (a, b) = (report(&rec), report(&rep));
    assert_eq!(a["findings"], b["findings"]);
    assert_eq!(a["summary"], b["summary"]);
    assert_eq!(b["run"]["replayed_from"], bundle.to_str().unwrap());
    let out = run(
        &["--headless", "--replay", input.to_str().unwrap()],
        b"",
        &[],
    );
    assert_eq!(code(&out), 2, "a missing bundle is a usage error");
}

/// Secrets planted in the input and the environment appear in no output: text, JSON, bundle.
#[test]
fn secrets_never_leave() {
    let token = "glpat-PLANTEDtoken1234567890";
    let password = "Pl4nted-Pull-Secret-Pw";
    let input = format!(
        "$ docker login -u deploy -p {password} registry.example.com:5050\n\
         Error response from daemon: Get \"https://registry.example.com:5050/v2/\": unauthorized: HTTP Basic: Access denied\n\
         curl --header \"PRIVATE-TOKEN: {token}\" https://gitlab.example.com/api/v4/projects\n\
         level=error msg=\"PullImage failed\" error=\"failed to fetch oauth token: Post \\\"https://deploy:{password}@gitlab.example.com/jwt/auth\\\": dial tcp 10.0.0.1:443: connect: connection refused\"\n\
         Error response from daemon: Get \"https://r:5000/v2/\": x509: certificate signed by unknown authority {token}\n\
         -----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "secret.log", input.as_bytes());
    let bundle = dir.path().join("b.json");
    let env = [("GITLAB_TOKEN", token)];
    let outputs = [
        run(&["explain", p.to_str().unwrap()], b"", &env),
        run(&["explain", "--json", p.to_str().unwrap()], b"", &env),
        run(
            &[
                "--headless",
                "--log",
                p.to_str().unwrap(),
                "--record",
                bundle.to_str().unwrap(),
            ],
            b"",
            &env,
        ),
    ];
    let bundle_text = std::fs::read_to_string(&bundle).unwrap();
    for text in outputs
        .iter()
        .flat_map(|o| {
            [
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ]
        })
        .chain([bundle_text])
    {
        for secret in [token, password, "b3BlbnNzaC1rZXktdjEAAAAA"] {
            assert!(!text.contains(secret), "secret {secret} leaked:\n{text}");
        }
    }
    // and the findings are still there
    assert!(classes(&report(&outputs[1])).contains(&"auth_denied".to_string()));
}

/// `init` writes the example inventory and will not overwrite one; a broken inventory is a usage
/// error naming line and column.
#[test]
fn init_and_inventory_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pulldoctor.toml");
    let p = path.to_str().unwrap();
    assert_eq!(code(&run(&["init", p], b"", &[])), 0);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("[[route]]")
    );
    let again = run(&["init", p], b"", &[]);
    assert_eq!(code(&again), 2);
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    std::fs::write(
        &path,
        "[[host]]\nname = \"n1\"\nroles = [\"node\"]\nsudo = \"yes\"\n",
    )
    .unwrap();
    let out = run(&["--headless", "--config", p], b"", &[]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pulldoctor.toml") && err.contains("line 4, column 8"),
        "{err}"
    );
}

/// An image that names another registry than the run's is a finding with its proof: the
/// reference as configured, its registry part marked (the report stays valid to the schema).
#[test]
fn image_naming_another_registry_has_evidence() {
    // port 9 on loopback: nothing listens, nothing leaves the machine
    let out = run(
        &[
            "--headless",
            "--image",
            "127.0.0.1:9/team/a:1",
            "--image",
            "127.0.0.2:9/team/b:1",
        ],
        b"",
        &[],
    );
    let r = report(&out);
    let f = r["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| {
            f["title"]
                .as_str()
                .unwrap_or("")
                .contains("names another registry")
        })
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["evidence"][0]["text"], "127.0.0.2:9/team/b:1");
    assert_eq!(f["evidence"][0]["matched"], serde_json::json!([0, 11]));
}
