//! Helpers shared by the integration tests: run the real binary, validate JSON against the
//! published schema.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod fleet;
pub mod hostile;
pub mod lab;
pub mod tmux;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A command's stdout then its stderr, as one text (what a person at the terminal sees).
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The command exited with `code` and said `phrase`; when not, the failure shows all it said.
pub fn assert_outcome(out: &Output, code: i32, phrase: &str) {
    let text = output_text(out);
    assert_eq!(out.status.code(), Some(code), "{text}");
    assert!(text.contains(phrase), "{text}");
}

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `pulldoctor ARGS` with `stdin` and extra environment; colour off.
pub fn run(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulldoctor"));
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("PULLDOCTOR_CHECKS_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pulldoctor");
    {
        let mut sin = child.stdin.take().expect("stdin");
        // a closed pipe is fine: the program may not read stdin
        let _ = sin.write_all(stdin);
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "pulldoctor panicked: {stderr}"
    );
    out
}

/// The exit code.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// stdout as JSON, validated against `assets/report.schema.json`.
pub fn report(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    validate(&value);
    value
}

/// Validate a report against the published schema.
pub fn validate(value: &serde_json::Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("assets/report.schema.json")).expect("schema"),
        )
        .expect("schema JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    });
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match assets/report.schema.json:\n{}",
        errors.join("\n")
    );
}

/// Classes of the findings in a report.
pub fn classes(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["class"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// CPU seconds (user + system) of these processes and of the children they reaped (an sshd
/// listener reaps the process of every connection it served), from `/proc/PID/stat`.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|p| stat_ticks(&format!("/proc/{p}/stat"), &[13, 14, 15, 16]))
        .sum::<u64>() as f64
        / 100.0
}

/// CPU seconds of this process's reaped children (the ssh clients of the loop).
pub fn children_cpu_seconds() -> f64 {
    stat_ticks("/proc/self/stat", &[15, 16]) as f64 / 100.0
}

/// The sum of these fields (0-based, after the command name) of a `stat` file, in clock ticks
/// (100 a second on Linux).
pub fn stat_ticks(path: &str, fields: &[usize]) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // the command name is in parentheses and may hold spaces
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let values: Vec<&str> = after.split_whitespace().collect();
    fields
        .iter()
        .filter_map(|&i| values.get(i - 2).and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

/// Write a file under a temp dir.
pub fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write");
    p
}

/// Standard base64 of `s` (coreutils' `base64`, so the tests share no encoder of their own).
pub fn base64(s: &str) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("base64");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
