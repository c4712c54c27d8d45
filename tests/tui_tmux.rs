//! End to end: the real binary in tmux on a bundle recorded at test time from the shipped
//! incident sample. Navigate to a failure, open its detail and its fix plan, quit; the terminal is
//! restored (out of the alternate screen, line discipline back to canonical with echo).
//! Skipped, saying so, when tmux is not installed (tests/run-all.sh installs it as root).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::tmux::{Tmux, tmux_installed};
use std::path::Path;

fn record_bundle(dir: &Path) -> std::path::PathBuf {
    let bundle = dir.join("incident.bundle.json");
    let out = common::run(
        &[
            "--headless",
            "--log",
            "assets/incident.log",
            "--record",
            bundle.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(common::code(&out), 1, "the sample has error findings");
    bundle
}

/// Start on a recorded bundle, open a failure's detail and fix plan, quit: the terminal is back.
#[test]
fn dashboard_in_tmux() {
    if !tmux_installed() {
        eprintln!(
            "SKIPPED dashboard_in_tmux: tmux is not installed (tests/run-all.sh installs it as root)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = record_bundle(dir.path());
    let tmux = Tmux {
        socket: format!("pulldoctor-tui-{}", std::process::id()),
    };
    // After the dashboard quits, the shell reports its exit code and the terminal's mode.
    let script = format!(
        "cd '{cwd}' && NO_COLOR=1 '{bin}' --replay '{bundle}' --log-level info --log-file '{log}'; echo \"EXIT=$?\"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; echo STTY-DONE; sleep 60",
        cwd = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_pulldoctor"),
        bundle = bundle.display(),
        log = dir.path().join("tui.log").display(),
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        common::root().to_str().unwrap(),
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "tmux new-session: {out:?}");

    let screen = tmux.wait_for(&["findings (5)", "first broken: CI job", "1 checks ✗1"]);
    assert!(screen.contains("replay incident"), "{screen}");
    let alt = tmux.cmd(&["display-message", "-p", "-t", "tui", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alt.stdout).trim(),
        "1",
        "the dashboard uses the alternate screen"
    );

    // To the findings, down to the Docker API skew, open it.
    tmux.keys(&["Tab", "j", "Enter"]);
    let screen = tmux.wait_for(&["What it means", "docker_api_skew"]);
    assert!(screen.contains("ERROR docker_api_skew"), "{screen}");

    // Its fix plan: steps shown, applying refused with the reason.
    tmux.keys(&["f"]);
    let screen = tmux.wait_for(&["fix plan: docker_api_skew", "y apply"]);
    assert!(screen.contains("disabled"), "{screen}");
    tmux.keys(&["y"]);
    tmux.wait_for(&["not applied"]);

    // The JSON report and the export land in the working directory.
    tmux.keys(&["Escape", "J"]);
    tmux.wait_for(&["wrote the JSON report"]);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("pulldoctor-report.json")).unwrap(),
    )
    .unwrap();
    common::validate(&report);
    assert_eq!(report["run"]["mode"], "dashboard");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(5));
    tmux.keys(&["e"]);
    tmux.wait_for(&["wrote the runbook"]);
    let export = std::fs::read_to_string(dir.path().join("RUNBOOK.md")).unwrap();
    assert!(
        export.starts_with("# Image pull incident: runbook"),
        "the runbook: {export}"
    );
    assert!(export.contains("docker_api_skew"), "{export}");

    tmux.keys(&["q"]);
    // the terminal modes are printed after the exit code: wait for the line after them
    let screen = tmux.wait_for(&["STTY-DONE"]);
    assert!(
        screen.contains("EXIT=1"),
        "exit code of the run (error findings): {screen}"
    );
    assert!(
        screen.contains("icanon echo"),
        "raw mode is off again (canonical input, echo): {screen}"
    );
    let alt = tmux.cmd(&["display-message", "-p", "-t", "tui", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alt.stdout).trim(),
        "0",
        "back on the main screen"
    );
    let log = std::fs::read_to_string(dir.path().join("tui.log")).unwrap_or_default();
    assert!(
        log.contains("dashboard started"),
        "diagnostics go to the log file: {log}"
    );
    assert!(
        !screen.contains("dashboard started"),
        "and never to the screen"
    );
}

/// A run that cannot be prepared (a missing bundle) leaves the dashboard with the terminal
/// restored, the error on the normal screen and exit code 2.
#[test]
fn preparation_error_restores_terminal() {
    if !tmux_installed() {
        eprintln!("SKIPPED preparation_error_restores_terminal: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: format!("pulldoctor-tui-err-{}", std::process::id()),
    };
    let script = format!(
        "'{bin}' --replay '{missing}' --log-file '{log}'; echo \"EXIT=$?\"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; echo STTY-DONE; sleep 60",
        bin = env!("CARGO_BIN_EXE_pulldoctor"),
        missing = dir.path().join("missing.bundle.json").display(),
        log = dir.path().join("tui.log").display(),
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "100",
        "-y",
        "20",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "tmux new-session: {out:?}");
    // the terminal modes are printed after the exit code: wait for the line after them
    let screen = tmux.wait_for(&["STTY-DONE"]);
    assert!(screen.contains("EXIT=2"), "{screen}");
    assert!(screen.contains("cannot read bundle"), "{screen}");
    assert!(screen.contains("icanon echo"), "{screen}");
    let alt = tmux.cmd(&["display-message", "-p", "-t", "tui", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alt.stdout).trim(), "0");
}

/// `pulldoctor demo` in a real terminal: the dashboard on the shipped recording, the five faults
/// there, a failure's detail and fix plan one key away, and a clean exit (0: the demo's findings
/// are the recording's).
#[test]
fn demo_in_tmux() {
    if !tmux_installed() {
        eprintln!(
            "SKIPPED demo_in_tmux: tmux is not installed (tests/run-all.sh installs it as root)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: format!("pulldoctor-demo-{}", std::process::id()),
    };
    let script = format!(
        "cd '{cwd}' && NO_COLOR=1 '{bin}' demo --log-file '{log}'; echo \"EXIT=$?\"; sleep 60",
        cwd = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_pulldoctor"),
        log = dir.path().join("tui.log").display(),
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "160",
        "-y",
        "48",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "tmux new-session: {out:?}");
    let screen = tmux.wait_for(&["findings (9)", "first broken"]);
    // the five faults, by their short labels in the findings list
    for label in ["tags ", "api skew", "scheme ", "realm ", "image "] {
        assert!(
            screen.contains(label),
            "{label} not on the demo's screen:\n{screen}"
        );
    }
    tmux.keys(&["Tab", "Enter"]);
    tmux.wait_for(&["What it means"]);
    tmux.keys(&["f"]);
    tmux.wait_for(&["fix plan"]);
    tmux.keys(&["Escape", "q"]);
    let screen = tmux.wait_for(&["EXIT="]);
    assert!(screen.contains("EXIT=0"), "{screen}");
}
