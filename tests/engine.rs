//! The engine: concurrency limit, per-check timeout, a panicking check, and the reducer's
//! deterministic order, with checks that sleep, hang, panic and find things.

// helpers build fixed test data; a failure there is a failed test
#![allow(clippy::unwrap_used)]

use pulldoctor::check::catalog::Catalog;
use pulldoctor::check::classify::Classifier;
use pulldoctor::check::{Check, CheckContext, CheckFuture, CheckOutcome};
use pulldoctor::engine::{self, Limits, RunEvent};
use pulldoctor::model::{
    CheckId, CheckStatus, Class, Confidence, Evidence, EvidenceSource, Finding, FindingId,
    Severity, Subject, Target,
};
use pulldoctor::probe::LiveProbes;
use pulldoctor::redact::Redactor;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Clone, Copy)]
enum Behaviour {
    Find(Severity),
    Sleep(u64),
    Panic,
}

struct FakeCheck {
    name: String,
    behaviour: Behaviour,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

fn finding(target: &str, severity: Severity) -> Finding {
    Finding {
        id: FindingId::derive(&["fake", target]),
        check: CheckId("fake.check".into()),
        class: Class::OtherNetwork,
        severity,
        target: Target::input(target),
        subject: Subject::default(),
        title: format!("found on {target}"),
        explanation: "x".into(),
        next_steps: vec![],
        error_chain: vec![],
        evidence: vec![Evidence {
            source: EvidenceSource::Probe {
                request: "GET /".into(),
            },
            time: None,
            host: None,
            text: "x".into(),
            matched: None,
        }],
        count: 1,
        first_seen: None,
        last_seen: None,
        confidence: Confidence::Confirmed,
        fixes: vec![],
    }
}

impl Check for FakeCheck {
    fn id(&self) -> CheckId {
        CheckId("fake.check".into())
    }
    fn target(&self) -> Target {
        Target::input(&self.name)
    }
    fn run(&self, _ctx: CheckContext) -> CheckFuture {
        let (name, behaviour, running, peak) = (
            self.name.clone(),
            self.behaviour,
            self.running.clone(),
            self.peak.clone(),
        );
        Box::pin(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = match behaviour {
                Behaviour::Find(sev) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    CheckOutcome {
                        status: CheckStatus::Failed,
                        findings: vec![finding(&name, sev)],
                        unclassified: vec![],
                        input: None,
                    }
                }
                Behaviour::Sleep(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    CheckOutcome::without_findings(CheckStatus::Passed)
                }
                Behaviour::Panic => panic!("a check that panics"),
            };
            running.fetch_sub(1, Ordering::SeqCst);
            out
        })
    }
}

fn ctx() -> CheckContext {
    CheckContext {
        probes: Arc::new(LiveProbes::default()),
        classifier: Arc::new(Classifier::new(Catalog::embedded().unwrap()).unwrap()),
        redactor: Arc::new(Redactor::default()),
        workers: 1,
    }
}

/// At most `concurrency` checks run at once; a hung check times out; a panic is an error, not a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_timeouts_and_panics() {
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut plan: Vec<Arc<dyn Check>> = Vec::new();
    let mut add = |name: &str, behaviour| {
        plan.push(Arc::new(FakeCheck {
            name: name.into(),
            behaviour,
            running: running.clone(),
            peak: peak.clone(),
        }))
    };
    for i in 0..8 {
        add(
            &format!("ok-{i}"),
            Behaviour::Find(if i % 2 == 0 {
                Severity::Warning
            } else {
                Severity::Error
            }),
        );
    }
    add("hang", Behaviour::Sleep(60_000));
    add("boom", Behaviour::Panic);
    let limits = Limits {
        concurrency: 3,
        // long enough for a panic's backtrace to be printed on a loaded machine (it once took
        // longer than 300 ms here and the panic was reported as a timeout)
        check_timeout: Duration::from_millis(3000),
    };
    let state = engine::run_to_state(plan, ctx(), limits).await;
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    let status = |name: &str| {
        state
            .checks
            .iter()
            .find(|((_, t), _)| t.name == name)
            .map(|(_, e)| e.status.clone())
            .unwrap()
    };
    assert_eq!(status("hang"), CheckStatus::TimedOut { after_ms: 3000 });
    assert!(matches!(status("boom"), CheckStatus::Errored { error } if error.contains("panic")));
    assert_eq!(status("ok-3"), CheckStatus::Failed);
    assert_eq!(state.checks.len(), 10);
    // worst first, then by target: deterministic
    let order: Vec<String> = state
        .findings_sorted()
        .iter()
        .map(|f| f.target.name.clone())
        .collect();
    assert_eq!(
        order,
        [
            "ok-1", "ok-3", "ok-5", "ok-7", "ok-0", "ok-2", "ok-4", "ok-6"
        ]
    );
    let report = pulldoctor::report::Report::new(
        &state,
        &Catalog::embedded().unwrap(),
        "headless",
        None,
        Severity::Error,
    );
    assert_eq!(
        report.summary.exit_code, 3,
        "a timed-out or errored check means the run did not complete"
    );
    assert_eq!(report.summary.checks_not_completed, 2);
}

/// Events arrive in order: RunStarted first, each check's Started before its Finished, RunFinished last.
#[tokio::test]
async fn event_order() {
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let plan: Vec<Arc<dyn Check>> = (0..3)
        .map(|i| {
            Arc::new(FakeCheck {
                name: format!("c{i}"),
                behaviour: Behaviour::Sleep(5),
                running: running.clone(),
                peak: peak.clone(),
            }) as Arc<dyn Check>
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(engine::run(plan, ctx(), Limits::default(), tx));
    let mut events = Vec::new();
    while let Some(ev) = rx.recv().await {
        events.push(ev);
    }
    assert!(
        matches!(events.first(), Some(RunEvent::RunStarted { planned, .. }) if planned.len() == 3)
    );
    assert!(matches!(events.last(), Some(RunEvent::RunFinished { .. })));
    for i in 0..3 {
        let name = format!("c{i}");
        let started = events
            .iter()
            .position(|e| matches!(e, RunEvent::CheckStarted { target, .. } if target.name == name))
            .unwrap();
        let finished = events
            .iter()
            .position(
                |e| matches!(e, RunEvent::CheckFinished { target, .. } if target.name == name),
            )
            .unwrap();
        assert!(started < finished);
    }
}
