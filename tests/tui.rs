//! Dashboard tests: every view drawn into a `TestBackend` at 80×24 and 160×48 and snapshotted
//! with insta (colours asserted on key cells, since text snapshots carry none), plus a flow test
//! that feeds engine events and keys step by step.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone as _, Utc};
use pulldoctor::check::catalog::Catalog;
use pulldoctor::check::classify::Classifier;
use pulldoctor::check::{Check, CheckContext, CheckOutcome};
use pulldoctor::engine::RunEvent;
use pulldoctor::model::{
    CheckId, CheckStatus, Class, Confidence, Evidence, EvidenceSource, Finding, FindingId,
    Severity, Subject, Target, TargetKind,
};
use pulldoctor::probe::LiveProbes;
use pulldoctor::redact::Redactor;
use pulldoctor::tui::action::{Action, Effect};
use pulldoctor::tui::app::{App, Pane};
use pulldoctor::tui::theme::Theme;
use pulldoctor::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
}

fn ms(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds(n)
}

/// What the real text check finds in the shipped incident sample (computed once).
fn incident_outcome() -> CheckOutcome {
    static OUTCOME: std::sync::OnceLock<CheckOutcome> = std::sync::OnceLock::new();
    OUTCOME.get_or_init(run_incident_check).clone()
}

fn run_incident_check() -> CheckOutcome {
    let ctx = CheckContext {
        probes: Arc::new(LiveProbes::default()),
        classifier: Arc::new(Classifier::new(Catalog::embedded().unwrap()).unwrap()),
        redactor: Arc::new(Redactor::default()),
        workers: 1,
    };
    let check = pulldoctor::check::logs::LogsCheck {
        input: "assets/incident.log".to_string(),
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(check.run(ctx))
}

fn node(name: &str) -> Target {
    Target {
        kind: TargetKind::Node,
        name: name.to_string(),
    }
}

fn id(s: &str) -> CheckId {
    CheckId(s.to_string())
}

/// A hop finding as `path.hops` reports one: bastion does not forward the realm's port.
fn hop_finding() -> Finding {
    Finding {
        id: FindingId::derive(&["path.hops", "bastion", "80"]),
        check: id("path.hops"),
        class: Class::TokenRealmUnreachable,
        severity: Severity::Error,
        target: Target {
            kind: TargetKind::Hop,
            name: "bastion".to_string(),
        },
        subject: Subject {
            endpoint: Some("172.100.100.9:80".to_string()),
            nodes: vec!["k8s-n1".to_string(), "k8s-n2".to_string()],
            ..Subject::default()
        },
        title: "bastion breaks :80 (token realm): no DNAT for the port".to_string(),
        explanation: "The nodes reach bastion on :80, but bastion has no DNAT rule for it.\n\nk8s-n1 ──:80──> bastion ✗ linux-host".to_string(),
        next_steps: vec!["On bastion: add the DNAT for :80 to linux-host".to_string()],
        error_chain: Vec::new(),
        evidence: vec![Evidence {
            source: EvidenceSource::Command {
                host: "bastion".to_string(),
                command: "iptables-save -t nat".to_string(),
            },
            time: None,
            host: Some("bastion".to_string()),
            text: "-A PREROUTING -p tcp --dport 5050 -j DNAT --to-destination 10.0.0.2:5050"
                .to_string(),
            matched: Some([14, 27]),
        }],
        count: 1,
        first_seen: None,
        last_seen: None,
        confidence: Confidence::Confirmed,
        fixes: vec![pulldoctor::model::FixRef {
            id: "dnat-realm-port".to_string(),
            title: "Forward the token realm's port on every hop".to_string(),
        }],
    }
}

fn logs_key() -> (CheckId, Target) {
    (id("logs.classify"), Target::input("assets/incident.log"))
}

/// The incident run, with an inventory's node and hop checks around the text check.
fn planned() -> Vec<(CheckId, Target)> {
    vec![
        logs_key(),
        (id("ssh.reachable"), node("k8s-n1")),
        (id("ssh.reachable"), node("k8s-n2")),
        (id("registry.scheme"), node("k8s-n1")),
        (id("node.journal"), node("k8s-n2")),
        (
            id("path.hops"),
            Target {
                kind: TargetKind::Hop,
                name: "registry".to_string(),
            },
        ),
    ]
}

fn finished(key: (CheckId, Target), outcome: CheckOutcome, duration_ms: u64) -> RunEvent {
    RunEvent::CheckFinished {
        check: key.0,
        target: key.1,
        outcome,
        duration_ms,
    }
}

fn started(key: &(CheckId, Target), at: i64) -> RunEvent {
    RunEvent::CheckStarted {
        check: key.0.clone(),
        target: key.1.clone(),
        at: ms(at),
    }
}

/// Mid-run: the text check and the hop walk have finished, one check still runs.
fn mid_run(theme: Theme) -> App {
    let mut app = App::new("replay incident.bundle.json".to_string(), theme);
    let p = planned();
    app.apply(RunEvent::RunStarted {
        at: t0(),
        planned: p.clone(),
    });
    for (i, k) in p.iter().enumerate() {
        app.apply(started(k, i as i64 * 10));
    }
    app.apply(finished(p[0].clone(), incident_outcome(), 412));
    app.apply(finished(
        p[1].clone(),
        CheckOutcome::without_findings(CheckStatus::Passed),
        85,
    ));
    app.apply(finished(
        p[2].clone(),
        CheckOutcome::without_findings(CheckStatus::Passed),
        91,
    ));
    app.apply(finished(
        p[4].clone(),
        CheckOutcome::without_findings(CheckStatus::Skipped {
            reason: "k8s-n2 logs to a file: set log_files in the inventory".to_string(),
        }),
        3,
    ));
    let mut hops = CheckOutcome::without_findings(CheckStatus::Failed);
    hops.findings.push(hop_finding());
    app.apply(finished(p[5].clone(), hops, 2040));
    app.now = ms(2350);
    app.frame = 3;
    app
}

/// The run complete: the last check has finished.
fn complete(theme: Theme) -> App {
    let mut app = mid_run(theme);
    app.apply(finished(
        planned()[3].clone(),
        CheckOutcome::errored(
            "k8s-n1: reading /etc/containerd/config.toml: permission denied".to_string(),
        ),
        1200,
    ));
    app.apply(RunEvent::RunFinished { at: ms(2600) });
    app
}

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::render(f, app)).unwrap();
    terminal
}

/// The position of the first cell of `needle` on screen.
fn find(buf: &Buffer, needle: &str) -> (u16, u16) {
    let area = buf.area;
    for y in 0..area.height {
        let row: String = (0..area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(byte) = row.find(needle) {
            let x = row[..byte].chars().count() as u16;
            return (x, y);
        }
    }
    panic!("'{needle}' not on screen");
}

fn screen(buf: &Buffer) -> String {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

/// The main view mid-run: the map colours each stage by its worst finding and marks the first
/// broken one; a running check shows a spinner and its elapsed time; a skipped one its reason.
#[test]
fn main_view_mid_run() {
    let app = mid_run(Theme { color: true });
    for (w, h) in SIZES {
        let term = draw(&app, w, h);
        insta::assert_snapshot!(format!("main_mid_run_{w}x{h}"), term.backend());
        let buf = term.backend().buffer();
        let (x, y) = find(buf, "✗ CI job");
        assert_eq!(
            buf[(x, y)].fg,
            Color::Red,
            "CI job stage in the error colour"
        );
        assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
        let (x, y) = find(buf, "first broken: CI job");
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let (x, y) = find(buf, "✓ pass");
        assert_eq!(buf[(x, y)].fg, Color::Green, "a passed check is green");
        let (x, y) = find(buf, "⠸ 2.3s");
        assert_eq!(
            buf[(x, y)].fg,
            Color::Blue,
            "the running check's spinner and time"
        );
        assert!(screen(buf).contains("– skipped"));
        let (x, y) = find(buf, "▶ ");
        assert!(
            buf[(x + 1, y)].modifier.contains(Modifier::REVERSED),
            "the focused pane's selection is reversed"
        );
    }
}

/// The main view at the end of the run, with the findings pane focused; under 160 columns the
/// skipped check's reason and the errored check's error are on its row.
#[test]
fn main_view_complete() {
    let mut app = complete(Theme { color: true });
    app.update(Action::NextPane);
    for (w, h) in SIZES {
        let term = draw(&app, w, h);
        insta::assert_snapshot!(format!("main_complete_{w}x{h}"), term.backend());
        let buf = term.backend().buffer();
        let (x, y) = find(buf, "! error");
        assert_eq!(
            buf[(x, y)].fg,
            Color::Magenta,
            "a check that could not finish"
        );
        if w >= 160 {
            assert!(screen(buf).contains("done 2.6s"));
        }
    }
}

/// A finding's detail: explanation, evidence with the matched part highlighted and its source.
#[test]
fn detail_view() {
    let mut app = complete(Theme { color: true });
    app.update(Action::NextPane);
    app.update(Action::Down);
    app.update(Action::Open);
    assert!(app.detail);
    for (w, h) in SIZES {
        let term = draw(&app, w, h);
        insta::assert_snapshot!(format!("detail_{w}x{h}"), term.backend());
        let buf = term.backend().buffer();
        let text = screen(buf);
        assert!(
            text.contains("What it means") && text.contains("Evidence"),
            "{text}"
        );
        assert!(
            text.contains("assets/incident.log:22"),
            "evidence names file and line"
        );
        let (x, y) = find(buf, "client version 1.43 is too old");
        assert_eq!(
            buf[(x, y)].fg,
            Color::LightRed,
            "the matched part is highlighted"
        );
        assert!(buf[(x, y)].modifier.contains(Modifier::UNDERLINED));
    }
}

/// The fix plan modal: `f` asks the fix engine for plans; they are shown as `pulldoctor fix`
/// shows them and `y` applies them; `--read-only` refuses.
#[test]
fn fix_modal_view() {
    let mut app = complete(Theme { color: true });
    app.update(Action::NextPane);
    // The hop finding (bastion) sorts among the errors by check id: find it.
    while app
        .selected_finding()
        .is_some_and(|f| f.check.0 != "path.hops")
    {
        app.update(Action::Down);
    }
    let effects = app.update(Action::FixPlan);
    let Some(f) = app.selected_finding() else {
        panic!("no finding selected")
    };
    assert_eq!(
        effects,
        vec![Effect::PlanFixes(vec![
            f.id.0.clone(),
            "bastion".into(),
            "k8s-n1".into(),
            "k8s-n2".into()
        ])],
        "f plans from fresh facts: the finding's id first, then its hosts"
    );
    let text = screen(draw(&app, 80, 24).backend().buffer());
    assert!(text.contains("reading the hosts"), "{text}");
    assert!(text.contains("disabled"), "{text}");
    let plan = pulldoctor::fix::Planned {
        plan: pulldoctor::model::FixPlan {
            id: "dnat-realm-port".into(),
            title: "Forward :80 on bastion to linux-host".into(),
            hosts: vec!["bastion".into()],
            risk: pulldoctor::model::FixRisk::Disruptive,
            restarts_service: false,
            verify: "path.hops for :80".into(),
            steps: vec![pulldoctor::model::FixStep::RunRemoteCommand {
                host: "bastion".into(),
                command: "iptables -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80".into(),
                sudo: true,
                check: Some("iptables -t nat -C PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80".into()),
                undo: Some("iptables -t nat -D PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80".into()),
            }],
        },
        why: vec!["bastion has no DNAT rule for :80".into()],
        findings: Vec::new(),
    };
    app.fixes_planned(Ok((pulldoctor::fix::render_plan(&plan), 1)));
    for (w, h) in SIZES {
        let term = draw(&app, w, h);
        insta::assert_snapshot!(format!("fix_modal_{w}x{h}"), term.backend());
        let text = screen(term.backend().buffer());
        assert!(text.contains("hosts: bastion"), "{text}");
        assert!(text.contains("y apply the plans above"), "{text}");
    }
    assert_eq!(app.update(Action::ApplyFix), vec![Effect::ApplyFixes]);
    let reruns = app.fixes_applied(vec![
        "dnat-realm-port on bastion: fixed and verified".into(),
    ]);
    assert!(
        matches!(reruns.as_slice(), [Effect::Rerun(keys)] if !keys.is_empty()),
        "after applying, the checks run again: {reruns:?}"
    );
    let text = screen(draw(&app, 160, 48).backend().buffer());
    assert!(text.contains("fixed and verified"), "{text}");

    // --read-only: the plan is shown, `y` refuses
    app.read_only = true;
    app.fixes_planned(Ok((pulldoctor::fix::render_plan(&plan), 1)));
    assert_eq!(app.update(Action::ApplyFix), Vec::new());
    assert!(
        app.status
            .as_deref()
            .unwrap_or_default()
            .contains("--read-only"),
        "{:?}",
        app.status
    );
}

/// The help, rendered from the keymap table.
#[test]
fn help_view() {
    let mut app = complete(Theme { color: true });
    app.update(Action::Help);
    for (w, h) in SIZES {
        let term = draw(&app, w, h);
        insta::assert_snapshot!(format!("help_{w}x{h}"), term.backend());
        let buf = term.backend().buffer();
        for b in pulldoctor::tui::keymap::BINDINGS {
            assert!(
                screen(buf).contains(b.help.split(' ').next().unwrap()),
                "{}",
                b.help
            );
        }
        let (x, y) = find(buf, "q/C-c");
        assert_eq!(buf[(x, y)].fg, Color::LightBlue);
    }
}

/// Filter and failures-only narrow the check list and findings; the footer says so.
#[test]
fn filtered_view() {
    let mut app = complete(Theme { color: true });
    app.update(Action::FailuresOnly);
    app.handle_key(key('/'));
    for c in "k8s".chars() {
        app.handle_key(key(c));
    }
    app.handle_key(code(KeyCode::Enter));
    assert_eq!(app.filter, "k8s");
    for (w, h) in SIZES {
        let term = draw(&app, w, h);
        insta::assert_snapshot!(format!("filtered_{w}x{h}"), term.backend());
        let text = screen(term.backend().buffer());
        assert!(text.contains("failures only"));
        assert!(!text.contains("✓ pass"), "passed checks hidden: {text}");
    }
}

/// Fifty nodes stay readable at 80×24: the worst are named, the rest counted.
#[test]
fn fifty_nodes_at_80x24() {
    let mut app = App::new("50 nodes".to_string(), Theme { color: true });
    let planned: Vec<(CheckId, Target)> = (1..=50)
        .map(|i| (id("ssh.reachable"), node(&format!("k8s-n{i:02}"))))
        .collect();
    app.apply(RunEvent::RunStarted {
        at: t0(),
        planned: planned.clone(),
    });
    for (i, k) in planned.iter().enumerate() {
        let outcome = if i % 17 == 3 {
            let mut o = CheckOutcome::without_findings(CheckStatus::Failed);
            let mut f = hop_finding();
            f.id = FindingId::derive(&["ssh", &k.1.name]);
            f.check = id("ssh.reachable");
            f.class = Class::OtherNetwork;
            f.target = k.1.clone();
            f.subject = Subject::default();
            f.title = format!("{} does not answer over SSH", k.1.name);
            o.findings.push(f);
            o
        } else {
            CheckOutcome::without_findings(CheckStatus::Passed)
        };
        app.apply(finished(k.clone(), outcome, 50));
    }
    app.apply(RunEvent::RunFinished { at: ms(900) });
    let term = draw(&app, 80, 24);
    insta::assert_snapshot!("fifty_nodes_80x24", term.backend());
    let text = screen(term.backend().buffer());
    assert!(text.contains("nodes 50 (3✗)"), "{text}");
    assert!(text.contains("k8s-n04✗"), "the worst node is named: {text}");
    assert!(text.contains('+'), "the rest are counted: {text}");
}

/// Under `NO_COLOR` no cell carries a colour; severity and selection keep their modifiers.
#[test]
fn no_color() {
    let app = complete(Theme { color: false });
    let term = draw(&app, 160, 48);
    let buf = term.backend().buffer();
    for cell in buf.content() {
        assert_eq!(cell.fg, Color::Reset, "no foreground colour");
        assert_eq!(cell.bg, Color::Reset, "no background colour");
    }
    let (x, y) = find(buf, "✗ CI job");
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
}

/// Events and keys, step by step: the run fills in, the person navigates to a failure, opens its
/// detail and fix plan, re-runs coalesce, and quit is an effect.
#[test]
fn flow() {
    let mut app = App::new("flow".to_string(), Theme { color: true });
    let p = planned();
    assert!(!app.animating(), "nothing to animate before the run");
    app.apply(RunEvent::RunStarted {
        at: t0(),
        planned: p.clone(),
    });
    let text = screen(draw(&app, 80, 24).backend().buffer());
    assert!(text.contains("6 checks ·6"), "{text}");
    assert!(text.contains("· pending"));
    assert!(!app.animating(), "pending checks do not animate");

    app.apply(started(&p[0], 0));
    assert!(app.animating(), "a running check ticks");
    app.tick(ms(1200));
    let text = screen(draw(&app, 80, 24).backend().buffer());
    assert!(
        text.contains("1.2s"),
        "elapsed time of the running check: {text}"
    );

    // r on a running check queues one re-run, however often it is pressed.
    assert_eq!(app.update(Action::Rerun), Vec::new());
    assert_eq!(app.update(Action::Rerun), Vec::new());
    assert_eq!(app.queued_reruns(), 1);

    let effects = app.apply(finished(p[0].clone(), incident_outcome(), 400));
    assert_eq!(
        effects,
        vec![Effect::Rerun(vec![logs_key()])],
        "the queued re-run starts"
    );
    assert_eq!(app.queued_reruns(), 0);
    assert_eq!(
        app.update(Action::Rerun),
        Vec::new(),
        "launched and not back yet: queued"
    );
    assert_eq!(app.queued_reruns(), 1);
    app.apply(started(&p[0], 500));
    let effects = app.apply(finished(p[0].clone(), incident_outcome(), 400));
    assert_eq!(
        effects.len(),
        1,
        "one more run for the presses while it ran"
    );
    app.apply(started(&p[0], 900));
    assert!(
        app.apply(finished(p[0].clone(), incident_outcome(), 400))
            .is_empty()
    );
    assert_eq!(
        app.state.finding_count(),
        5,
        "a re-run replaces findings, never duplicates"
    );

    // Navigate to a failure: Enter on the text check jumps to its findings.
    assert_eq!(app.focus, Pane::Checks);
    app.handle_key(code(KeyCode::Enter));
    assert_eq!(app.focus, Pane::Findings);
    app.handle_key(key('j'));
    assert_eq!(app.finding_sel, 1);
    let text = screen(draw(&app, 80, 24).backend().buffer());
    assert!(text.contains("api skew"), "{text}");

    app.handle_key(code(KeyCode::Enter));
    assert!(app.detail);
    let text = screen(draw(&app, 160, 48).backend().buffer());
    assert!(text.contains("client version 1.43"), "{text}");

    app.handle_key(key('f'));
    let text = screen(draw(&app, 80, 24).backend().buffer());
    assert!(text.contains("fix plan"), "{text}");
    app.handle_key(code(KeyCode::Esc));
    assert!(app.modal.is_none() && app.detail);
    app.handle_key(code(KeyCode::Esc));
    assert!(!app.detail);

    // R re-runs everything that is not busy; the rest queue.
    let effects = app.update(Action::RerunAll);
    match effects.as_slice() {
        [Effect::Rerun(keys)] => assert_eq!(keys.len(), 1, "only the idle text check starts"),
        other => panic!("{other:?}"),
    }
    assert_eq!(app.queued_reruns(), 5);

    assert_eq!(app.handle_key(key('J')), vec![Effect::WriteJson]);
    assert_eq!(app.handle_key(key('e')), vec![Effect::ExportRunbook]);
    assert_eq!(
        app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        vec![Effect::Quit]
    );
    assert_eq!(app.handle_key(key('q')), vec![Effect::Quit]);
}

/// Dump the main views as cell grids (symbol, colours, modifiers) for
/// `assets/screenshots/render.py`, which draws the README's PNGs:
/// `PULLDOCTOR_SCREENSHOTS=target/screens cargo test --test tui screenshots -- --ignored`, then
/// `python3 assets/screenshots/render.py target/screens assets/screenshots`.
#[test]
#[ignore = "writes screenshot dumps; see the doc comment"]
fn screenshots() {
    let dir = std::path::PathBuf::from(
        std::env::var("PULLDOCTOR_SCREENSHOTS").unwrap_or_else(|_| "target/screens".to_string()),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let dump = |name: &str, app: &App, w: u16, h: u16| {
        let term = draw(app, w, h);
        let buf = term.backend().buffer();
        let cells: Vec<Vec<serde_json::Value>> = (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| {
                        let c = &buf[(x, y)];
                        serde_json::json!([
                            c.symbol(),
                            format!("{:?}", c.fg),
                            format!("{:?}", c.bg),
                            format!("{:?}", c.modifier),
                        ])
                    })
                    .collect()
            })
            .collect();
        let json = serde_json::json!({ "width": w, "height": h, "cells": cells });
        std::fs::write(dir.join(format!("{name}.json")), json.to_string()).unwrap();
    };
    let mid = mid_run(Theme { color: true });
    dump("dashboard-running", &mid, 160, 48);
    let mut app = complete(Theme { color: true });
    app.update(Action::NextPane);
    dump("dashboard", &app, 160, 48);
    app.update(Action::Down);
    app.update(Action::Open);
    dump("finding-detail", &app, 160, 48);
    let mut app = complete(Theme { color: true });
    app.update(Action::NextPane);
    while app
        .selected_finding()
        .is_some_and(|f| f.check.0 != "path.hops")
    {
        app.update(Action::Down);
    }
    app.update(Action::FixPlan);
    dump("fix-plan", &app, 160, 48);
    let small = complete(Theme { color: true });
    dump("dashboard-80x24", &small, 80, 24);
}

/// Tiny and odd terminal sizes draw every view without a panic.
#[test]
fn tiny_terminals() {
    let mut app = complete(Theme { color: true });
    let mut views: Vec<fn(&mut App)> = vec![
        |_| {},
        |a| {
            a.update(Action::NextPane);
            a.update(Action::Open);
        },
        |a| {
            a.update(Action::FixPlan);
        },
        |a| {
            a.update(Action::Back);
            a.update(Action::Back);
            a.update(Action::Help);
        },
    ];
    for step in views.drain(..) {
        step(&mut app);
        for (w, h) in [
            (1, 1),
            (5, 2),
            (20, 5),
            (40, 10),
            (80, 12),
            (200, 8),
            (12, 60),
        ] {
            draw(&app, w, h);
        }
    }
}
