//! Dashboard benchmarks (ignored: numbers, not pass/fail on a shared machine). Run them with
//!
//! ```sh
//! cargo test --release --test tui_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! * first frame: from spawning the binary (in tmux, on a recorded bundle) to the first frame on
//!   screen, polled every 2 ms, so it includes tmux's own latency (an upper bound);
//! * frame render time with 500 findings (and 500 checks) into a 160×48 `TestBackend`;
//! * idle CPU: the finished dashboard's user+system time over a 10 s window, extrapolated to 60 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeZone as _, Utc};
use pulldoctor::check::CheckOutcome;
use pulldoctor::engine::RunEvent;
use pulldoctor::model::{
    CheckId, CheckStatus, Class, Confidence, Evidence, EvidenceSource, Finding, FindingId,
    Severity, Subject, Target, TargetKind,
};
use pulldoctor::tui::app::App;
use pulldoctor::tui::theme::Theme;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(socket: &str, args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux")
}

fn bundle(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("incident.bundle.json");
    let out = common::run(
        &[
            "--headless",
            "--log",
            "assets/incident.log",
            "--record",
            path.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(common::code(&out), 1);
    path
}

fn start(socket: &str, dir: &std::path::Path) -> Instant {
    let script = format!(
        "exec '{}' --replay '{}' --log-file '{}'",
        env!("CARGO_BIN_EXE_pulldoctor"),
        bundle(dir).display(),
        dir.join("tui.log").display()
    );
    let t = Instant::now();
    let out = tmux(
        socket,
        &[
            "new-session",
            "-d",
            "-s",
            "b",
            "-x",
            "160",
            "-y",
            "48",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    t
}

/// Time from spawning the binary to its first frame on screen.
#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn first_frame() {
    let mut samples = Vec::new();
    for i in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!("pulldoctor-bench-ff-{}-{i}", std::process::id());
        let t = start(&socket, dir.path());
        loop {
            let screen = tmux(&socket, &["capture-pane", "-p", "-t", "b"]);
            if String::from_utf8_lossy(&screen.stdout).contains(" pulldoctor ") {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no frame in 10 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        samples.push(t.elapsed());
        let _ = tmux(&socket, &["kill-server"]);
    }
    samples.sort();
    println!(
        "first frame (spawn → on screen, via tmux): median {:?}, best {:?}, worst {:?} over {} runs",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
}

fn big_app() -> App {
    let mut app = App::new("bench".to_string(), Theme { color: true });
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    let planned: Vec<(CheckId, Target)> = (0..500)
        .map(|i| {
            (
                CheckId("node.journal".to_string()),
                Target {
                    kind: TargetKind::Node,
                    name: format!("k8s-n{i:03}"),
                },
            )
        })
        .collect();
    app.apply(RunEvent::RunStarted {
        at,
        planned: planned.clone(),
    });
    for (i, (check, target)) in planned.into_iter().enumerate() {
        let mut outcome = CheckOutcome::without_findings(CheckStatus::Failed);
        outcome.findings.push(Finding {
            id: FindingId::derive(&["bench", &target.name]),
            check: check.clone(),
            class: Class::HttpVsHttps,
            severity: if i % 3 == 0 { Severity::Error } else { Severity::Warning },
            target: target.clone(),
            subject: Subject { nodes: vec![target.name.clone()], ..Subject::default() },
            title: format!("{}: HTTPS spoken to a plain-HTTP registry", target.name),
            explanation: "containerd tried HTTPS; the registry answers plain HTTP.".to_string(),
            next_steps: vec!["write hosts.toml".to_string()],
            error_chain: Vec::new(),
            evidence: (0..3)
                .map(|l| Evidence {
                    source: EvidenceSource::Command {
                        host: target.name.clone(),
                        command: "journalctl -u containerd".to_string(),
                    },
                    time: Some(format!("10:00:0{l}")),
                    host: Some(target.name.clone()),
                    text: format!("level=error msg=\"pull failed\" error=\"http: server gave HTTP response to HTTPS client\" n={l}"),
                    matched: Some([35, 80]),
                })
                .collect(),
            count: 3,
            first_seen: None,
            last_seen: None,
            confidence: Confidence::Inferred,
            fixes: Vec::new(),
        });
        app.apply(RunEvent::CheckFinished {
            check,
            target,
            outcome,
            duration_ms: 10,
        });
    }
    app.apply(RunEvent::RunFinished { at });
    app
}

/// One frame with 500 findings and 500 checks.
#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn frame_with_500_findings() {
    let mut app = big_app();
    assert_eq!(app.state.finding_count(), 500);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).unwrap();
    let mut times = Vec::new();
    for i in 0..200 {
        // Move the selection so each frame differs (and the logs pane follows it).
        app.update(pulldoctor::tui::action::Action::NextPane);
        if i % 3 == 0 {
            app.update(pulldoctor::tui::action::Action::Down);
        }
        let t = Instant::now();
        terminal
            .draw(|f| pulldoctor::tui::view::render(f, &app))
            .unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "frame render, 500 findings + 500 checks at 160x48: median {:?}, p99 {:?}, max {:?} over {} frames",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1],
        times.len()
    );
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) — utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// CPU used by the idle dashboard (run finished, no input).
#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn idle_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("pulldoctor-bench-idle-{}", std::process::id());
    start(&socket, dir.path());
    let pid: u32 = String::from_utf8_lossy(
        &tmux(
            &socket,
            &["display-message", "-p", "-t", "b", "#{pane_pid}"],
        )
        .stdout,
    )
    .trim()
    .parse()
    .unwrap();
    // Wait for the run to finish, then settle.
    let t = Instant::now();
    while !String::from_utf8_lossy(&tmux(&socket, &["capture-pane", "-p", "-t", "b"]).stdout)
        .contains("│ done ")
    {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let hz = 100.0; // USER_HZ on Linux
    let window = Duration::from_secs(10);
    let before = cpu_ticks(pid);
    std::thread::sleep(window);
    let used = cpu_ticks(pid) - before;
    let _ = tmux(&socket, &["kill-server"]);
    let pct = used as f64 / hz / window.as_secs_f64() * 100.0;
    println!(
        "idle CPU: {used} ticks (1/{hz} s) in {:?} = {pct:.3}% of one core; over 60 s that is {:.2} s of CPU (tick resolution 10 ms: the true figure is below {:.3}%)",
        window,
        used as f64 / hz * 6.0,
        (used + 1) as f64 / hz / window.as_secs_f64() * 100.0
    );
}
