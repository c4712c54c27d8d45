//! The runbook: written from a report (JSON read back) and from a run; every problem gets its
//! section with verbatim evidence; no secret survives; markdownlint passes (line length off:
//! tables and evidence lines cannot wrap) when npm can install it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod common;

use std::path::PathBuf;
use std::process::Command;

/// markdownlint-cli, installed once into the target directory; `None` (and a note) without npm.
fn markdownlint() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("markdownlint");
    let bin = dir.join("node_modules/.bin/markdownlint");
    if bin.exists() {
        return Some(bin);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let ok = Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg("markdownlint-cli@0.45")
        .status()
        .is_ok_and(|s| s.success());
    if ok && bin.exists() {
        Some(bin)
    } else {
        eprintln!("NOTE: npm could not install markdownlint-cli; the lint step is not run");
        None
    }
}

#[test]
fn runbook_from_report_and_from_run() {
    let dir = tempfile::tempdir().unwrap();
    // plant secrets in the input
    let mut input = std::fs::read_to_string(common::root().join("assets/incident.log")).unwrap();
    input.push_str(
        "docker login -u gitlab-ci-token -p glcbt-64_SECRETsecretSECRETsecret 172.100.100.9:5050\n",
    );
    let log = common::write(dir.path(), "incident.log", input.as_bytes());
    let log = log.to_str().unwrap();
    let out = common::run(&["--headless", "--log", log], b"", &[]);
    let report = common::report(&out);
    let json = common::write(dir.path(), "report.json", &out.stdout);
    let md_path = dir.path().join("RUNBOOK.md");
    let out = common::run(
        &[
            "runbook",
            "--from",
            json.to_str().unwrap(),
            "-o",
            md_path.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(
        common::code(&out),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(
        !md.contains("SECRETsecret"),
        "a planted token reached the runbook"
    );
    // one section per problem, each with its evidence, and the five incident classes in the table
    // one problem per failure class, each finding of it with its own evidence
    let findings: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    let classes: std::collections::BTreeSet<&str> = findings
        .iter()
        .map(|f| f["class"].as_str().unwrap())
        .collect();
    let problems = classes.len();
    assert_eq!(md.matches("\n## Problem ").count(), problems);
    assert_eq!(
        md.matches("\n### Evidence (problem ").count(),
        findings.len()
    );
    for class in [
        "runner_tags",
        "docker_api_skew",
        "http_vs_https",
        "token_realm_unreachable",
        "image_not_found",
    ] {
        assert!(md.contains(&format!("`{class}`")), "{class} missing");
    }
    assert!(md.contains("```mermaid\nflowchart LR"));
    assert!(md.contains("linkStyle"), "broken links are marked");
    assert!(md.contains("## Timeline") && md.contains("## What remains open"));
    // the evidence is verbatim: a line of the input appears as is
    assert!(md.contains("client version 1.43 is too old. Minimum supported API version is 1.44"));

    // the same runbook from a run (runbook without --from runs the checks)
    let out = common::run(&["runbook", "--log", log], b"", &[]);
    let from_run = String::from_utf8_lossy(&out.stdout);
    assert_eq!(from_run.matches("\n## Problem ").count(), problems);
    assert!(!from_run.contains("SECRETsecret"));

    if let Some(lint) = markdownlint() {
        let cfg = common::write(dir.path(), "lint.json", br#"{"MD013": false}"#);
        let out = Command::new(lint)
            .arg("-c")
            .arg(&cfg)
            .arg(&md_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "markdownlint: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_bad_report_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = common::write(
        dir.path(),
        "r.json",
        b"{\"schema_version\": 1,\n \"tool\": 3}",
    );
    let out = common::run(&["runbook", "--from", bad.to_str().unwrap()], b"", &[]);
    assert_eq!(common::code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
}
