//! The dashboard face: the same plan and probes as a headless run (see [`crate::prepare`]), the
//! engine in background tasks, its [`RunEvent`]s reduced into the same [`crate::engine::RunState`],
//! drawn with ratatui.
//!
//! The loop never blocks: `tokio::select!` waits on engine events, terminal input
//! (crossterm's `EventStream`) and a tick that runs only while a check is running, so an idle
//! dashboard sleeps. `ratatui::init` installs the panic hook that restores the terminal; a guard
//! restores it on every other way out. Diagnostics go to a file, never to the screen.

pub mod action;
pub mod app;
pub mod keymap;
pub mod path;
pub mod theme;
pub mod view;

use crate::RunSetup;
use crate::check::Check;
use crate::cli::RunArgs;
use crate::engine::{self, RunEvent};
use action::{CheckKey, Effect};
use anyhow::Context as _;
use app::App;
use futures_util::StreamExt as _;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the spinner and elapsed times move while a check runs.
const TICK: Duration = Duration::from_millis(100);

/// Where `J` writes the JSON report when `-o` is not given.
pub const REPORT_FILE: &str = "pulldoctor-report.json";
/// Where `e` writes the runbook.
pub const EXPORT_FILE: &str = "RUNBOOK.md";

/// Send diagnostics to a file (`--log-file`, else the state directory), since the dashboard owns
/// the screen.
///
/// # Errors
/// When the log file cannot be created.
pub fn init_file_logging(args: &RunArgs) -> anyhow::Result<()> {
    let path = match &args.log_file {
        Some(p) => p.clone(),
        None => default_log_path(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the log directory '{}'", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open the log file '{}'", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
    Ok(())
}

fn default_log_path() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("pulldoctor").join("pulldoctor.log")
}

/// What the header says the run reads.
fn describe_source(setup: &RunSetup, args: &RunArgs) -> String {
    if let Some(p) = &args.replay {
        let name = p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        return format!("replay {name}");
    }
    format!("{} checks planned", setup.plan.len())
}

/// Open the dashboard, then prepare the run with `prepare` (the same setup a headless run uses):
/// the first frame is on screen before the catalog is compiled and the inputs are read. Returns
/// the exit code of the run as it stood at quit.
///
/// # Errors
/// When the terminal or the async runtime cannot be set up, or `prepare` fails (the terminal is
/// restored before the error is returned, so it prints on the normal screen).
pub fn run(
    args: &RunArgs,
    prepare: impl FnOnce() -> anyhow::Result<RunSetup>,
) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut terminal = ratatui::init();
    let restore = RestoreGuard;
    let mut app = App::new("preparing the run".to_string(), theme::Theme::from_env());
    terminal
        .draw(|f| view::render(f, &app))
        .context("cannot draw the dashboard")?;
    let setup = prepare()?;
    app.source = describe_source(&setup, args);
    app.read_only = args.read_only;
    if args.replay.is_some() {
        app.fixes_unavailable =
            Some("this dashboard replays a bundle; fixes need live hosts".into());
    }
    app.fix_commands = setup.classifier.catalog().fix_commands();
    let app = runtime.block_on(async {
        tracing::info!(checks = setup.plan.len(), "dashboard started");
        let result = event_loop(&mut terminal, app, &setup, args).await;
        tracing::info!("dashboard closed");
        result
    })?;
    drop(restore);
    // Checks still running (a slow SSH host) must not hold the exit.
    runtime.shutdown_background();
    setup.write_bundle(args)?;
    Ok(setup
        .report(&app.state, args, "dashboard")
        .summary
        .exit_code)
}

/// Restores the terminal however the loop ends (the panic hook covers panics).
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut app: App,
    setup: &RunSetup,
    args: &RunArgs,
) -> anyhow::Result<App> {
    let (tx, mut rx) = mpsc::channel::<RunEvent>(1024);
    let checks: BTreeMap<CheckKey, Arc<dyn Check>> = setup
        .plan
        .iter()
        .map(|c| ((c.id(), c.target()), c.clone()))
        .collect();
    tokio::spawn(engine::run(
        setup.plan.clone(),
        setup.ctx.clone(),
        setup.limits,
        tx.clone(),
    ));
    let (fix_tx, mut fix_rx) = mpsc::channel::<FixDone>(4);
    // built on the first `f`: its SSH sessions are the fixes' own
    let mut fix_session: Option<Arc<crate::FixSession>> = None;
    let mut plans: Arc<Vec<Planned>> = Arc::new(Vec::new());
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if app.dirty {
            terminal
                .draw(|f| view::render(f, &app))
                .context("cannot draw the dashboard")?;
            app.dirty = false;
        }
        let animating = app.animating();
        let effects = tokio::select! {
            Some(ev) = rx.recv() => {
                app.now = chrono::Utc::now();
                let mut effects = app.apply(ev);
                // Drain what is already queued, so a burst of events costs one frame.
                while let Ok(ev) = rx.try_recv() {
                    effects.extend(app.apply(ev));
                }
                effects
            }
            maybe = input.next() => match maybe {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    app.now = chrono::Utc::now();
                    app.handle_key(key)
                }
                Some(Ok(Event::Resize(..))) => {
                    app.dirty = true;
                    Vec::new()
                }
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => return Err(e).context("cannot read the terminal"),
                None => vec![Effect::Quit],
            },
            Some(done) = fix_rx.recv() => match done {
                FixDone::Planned(result) => {
                    let shown = result.map(|(text, made)| {
                        let n = made.len();
                        plans = Arc::new(made);
                        (text, n)
                    });
                    app.fixes_planned(shown);
                    Vec::new()
                }
                FixDone::Applied(lines) => app.fixes_applied(lines),
            },
            _ = tick.tick(), if animating => {
                app.tick(chrono::Utc::now());
                Vec::new()
            }
        };
        for effect in effects {
            match effect {
                Effect::Quit => return Ok(app),
                Effect::Rerun(keys) => {
                    let plan: Vec<Arc<dyn Check>> =
                        keys.iter().filter_map(|k| checks.get(k).cloned()).collect();
                    spawn_rerun(plan, setup, tx.clone());
                }
                Effect::WriteJson => app.status = Some(write_json(&app, setup, args)),
                Effect::ExportRunbook => app.status = Some(export(&app, setup, args)),
                Effect::PlanFixes(selectors) => {
                    plans = Arc::new(Vec::new());
                    match fix_session_for(&mut fix_session, setup, args) {
                        Ok(session) => spawn_plan(session, selectors, fix_tx.clone()),
                        Err(e) => app.fixes_planned(Err(e)),
                    }
                }
                Effect::ApplyFixes => {
                    if let Some(session) = fix_session.clone() {
                        spawn_apply(session, plans.clone(), fix_tx.clone());
                    }
                }
            }
            app.dirty = true;
        }
    }
}

/// A fix session's answer to the loop.
enum FixDone {
    /// The plans for the modal: rendered (redacted) and kept for `y`.
    Planned(Result<(String, Vec<Planned>), String>),
    /// One line per applied plan.
    Applied(Vec<String>),
}

/// A plan and the fixer that made it.
type Planned = (Arc<dyn crate::fix::Fixer>, crate::fix::Planned);

/// The fix session, made once.
fn fix_session_for(
    slot: &mut Option<Arc<crate::FixSession>>,
    setup: &RunSetup,
    args: &RunArgs,
) -> Result<Arc<crate::FixSession>, String> {
    if let Some(s) = slot {
        return Ok(s.clone());
    }
    let session = crate::FixSession::new(setup.classifier.catalog().clone(), args)
        .map(Arc::new)
        .map_err(|e| setup.redactor.redact(&e.to_string()).into_owned())?;
    *slot = Some(session.clone());
    Ok(session)
}

/// Plan in the background: the finding's own plans when some answer its id, else the plans of
/// the hosts it names.
fn spawn_plan(session: Arc<crate::FixSession>, selectors: Vec<String>, tx: mpsc::Sender<FixDone>) {
    tokio::spawn(async move {
        let (all, errors) = session.plan(&[]).await;
        let (by_id, rest): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|(_, p)| selectors.first().is_some_and(|id| p.selected_by(id)));
        let made: Vec<Planned> = if by_id.is_empty() {
            rest.into_iter()
                .filter(|(_, p)| selectors.iter().skip(1).any(|s| p.selected_by(s)))
                .collect()
        } else {
            by_id
        };
        let mut text: String = made
            .iter()
            .map(|(_, p)| crate::fix::render_plan(p))
            .collect::<Vec<_>>()
            .join("\n");
        for e in &errors {
            text.push_str(&format!("\n{e}"));
        }
        let text = session.ctx.redactor.redact(&text).into_owned();
        let _ = tx.send(FixDone::Planned(Ok((text, made)))).await;
    });
}

/// Apply in the background, one plan at a time, and report one line per plan.
fn spawn_apply(
    session: Arc<crate::FixSession>,
    plans: Arc<Vec<Planned>>,
    tx: mpsc::Sender<FixDone>,
) {
    tokio::spawn(async move {
        let mut lines = Vec::new();
        session
            .apply(&plans, |p, o| {
                lines.push(format!(
                    "{} on {}: {}",
                    p.plan.id,
                    p.plan.hosts.join(", "),
                    session.ctx.redactor.redact(&o.summary())
                ));
            })
            .await;
        let _ = tx.send(FixDone::Applied(lines)).await;
    });
}

/// Run some checks again through the engine, forwarding only their check events: the run as a
/// whole keeps its own start and end.
fn spawn_rerun(plan: Vec<Arc<dyn Check>>, setup: &RunSetup, tx: mpsc::Sender<RunEvent>) {
    let (rtx, mut rrx) = mpsc::channel::<RunEvent>(256);
    tokio::spawn(engine::run(plan, setup.ctx.clone(), setup.limits, rtx));
    tokio::spawn(async move {
        while let Some(ev) = rrx.recv().await {
            if matches!(
                ev,
                RunEvent::CheckStarted { .. } | RunEvent::CheckFinished { .. }
            ) && tx.send(ev).await.is_err()
            {
                break;
            }
        }
    });
}

fn write_json(app: &App, setup: &RunSetup, args: &RunArgs) -> String {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(REPORT_FILE));
    let report = setup.report(&app.state, args, "dashboard");
    let written = serde_json::to_string_pretty(&report)
        .map_err(|e| e.to_string())
        .and_then(|json| {
            let json = setup.redactor.redact(&json).into_owned() + "\n";
            std::fs::write(&path, json).map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => format!("wrote the JSON report to {}", path.display()),
        Err(e) => format!("cannot write '{}': {e}", path.display()),
    }
}

/// `e` writes the post-incident runbook of the run as it stands, with the fixes the audit log
/// records since the run began.
fn export(app: &App, setup: &RunSetup, args: &RunArgs) -> String {
    let path = PathBuf::from(EXPORT_FILE);
    let report = setup.report(&app.state, args, "dashboard");
    let audit = std::fs::read_to_string(crate::fix::audit::path()).unwrap_or_default();
    let audit = crate::fix::audit::read_since(&audit, &report.run.started_at);
    let doc = crate::report::runbook::render_with(&report, &audit);
    let doc = setup.redactor.redact(&doc).into_owned();
    match std::fs::write(&path, doc) {
        Ok(()) => format!("wrote the runbook to {}", path.display()),
        Err(e) => format!("cannot write '{}': {e}", path.display()),
    }
}
