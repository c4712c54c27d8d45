//! pulldoctor: diagnose why a container image will not build, push or pull along GitLab CI →
//! Docker daemon → registry → network hops → containerd → kubelet.
//!
//! The library is the whole tool; `main.rs` only parses the command line. Data flows
//! collect → analyse → present: [`probe`] is the only I/O, [`check`] turns evidence into
//! [`model::Finding`]s, [`engine`] runs checks and reduces their events into one state, and
//! [`report`] presents it (JSON, text).

#![forbid(unsafe_code)]

pub mod check;
pub mod cli;
pub mod engine;
pub mod fix;
pub mod inventory;
pub mod model;
pub mod parse;
pub mod probe;
pub mod redact;
pub mod report;
pub mod ssh;
pub mod tui;

use anyhow::Context as _;
use check::catalog::Catalog;
use check::classify::Classifier;
use check::{Check, CheckContext};
use cli::{Cli, Command, RunArgs};
use inventory::Inventory;
use probe::bundle::Bundle;
use probe::{LiveProbes, Probes, RecordingProbes, ReplayProbes};
use std::io::IsTerminal as _;
use std::sync::Arc;

/// A mistake in how pulldoctor was called or configured (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Run the command line; returns the exit code.
///
/// # Errors
/// [`UsageError`] for bad usage or configuration (exit 2); anything else means the run could
/// not complete (exit 3).
pub fn run(mut cli: Cli) -> anyhow::Result<u8> {
    if matches!(cli.command, Some(Command::Demo)) {
        // the demo is a replay of the shipped bundle, in whichever face was asked for
        cli.run.replay = Some(demo_bundle()?);
        // its findings are the recording's, not this machine's: they do not fail the command
        cli.run.fail_on = cli::SeverityArg::Critical;
        if !cli.headless && !std::io::stdout().is_terminal() {
            // no terminal for the dashboard: the text report of the same run
            init_logging(&cli.run.log_level);
            let catalog =
                Catalog::load(&cli.run.checks_dirs).map_err(|e| UsageError(e.to_string()))?;
            return execute(catalog, &cli.run, "headless", Face::Text);
        }
    }
    let dashboard = matches!(cli.command, None | Some(Command::Demo)) && !cli.headless;
    if cli.run.apply.is_some() && (!cli.headless || cli.command.is_some()) {
        return Err(UsageError(
            "--apply works with --headless (use `pulldoctor fix` to apply fixes by hand)"
                .to_string(),
        )
        .into());
    }
    if cli.run.apply.is_some() && cli.run.replay.is_some() {
        return Err(
            UsageError("a replay changes nothing: --apply needs live hosts".to_string()).into(),
        );
    }
    if dashboard {
        // The dashboard owns the terminal: diagnostics go to a file, never to the screen.
        tui::init_file_logging(&cli.run)?;
    } else {
        init_logging(&cli.run.log_level);
    }
    let catalog = Catalog::load(&cli.run.checks_dirs).map_err(|e| UsageError(e.to_string()))?;
    match cli.command {
        Some(Command::Signatures(args)) => signatures(&catalog, &args),
        Some(Command::Init(args)) => init(&args),
        Some(Command::Fix(args)) => fix_command(catalog, &args, &cli.run),
        Some(Command::Runbook(args)) => match &args.from {
            Some(path) => runbook_from(path, args.audit.as_deref(), &cli.run),
            None => execute(
                catalog,
                &cli.run,
                "headless",
                Face::Runbook(args.audit.clone()),
            ),
        },
        Some(Command::Explain(args)) => {
            let mut run = cli.run;
            let files = if args.files.is_empty() && run.replay.is_none() {
                vec!["-".to_string()]
            } else {
                args.files
            };
            run.logs.extend(files);
            let mode = if args.json { Face::Json } else { Face::Text };
            execute(catalog, &run, "explain", mode)
        }
        Some(Command::Demo) | None if cli.headless => {
            execute(catalog, &cli.run, "headless", Face::Json)
        }
        Some(Command::Demo) | None => {
            if !std::io::stdout().is_terminal() {
                return Err(UsageError(
                    "the dashboard needs a terminal; use --headless for the JSON report"
                        .to_string(),
                )
                .into());
            }
            tui::run(&cli.run, || prepare(catalog, &cli.run, "dashboard"))
        }
    }
}

/// How a run presents its report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Face {
    Json,
    Text,
    /// With the audit log to read, if given.
    Runbook(Option<std::path::PathBuf>),
}

/// `fix`: plan from fresh facts, show, confirm, apply host by host, verify, roll back, audit.
fn fix_command(catalog: Catalog, args: &cli::FixArgs, run: &RunArgs) -> anyhow::Result<u8> {
    use std::io::Write as _;
    if run.read_only {
        return Err(UsageError("--read-only: every fix is refused".to_string()).into());
    }
    if run.replay.is_some() {
        return Err(
            UsageError("a replay changes nothing: fix needs live hosts".to_string()).into(),
        );
    }
    let session = FixSession::new(catalog, run)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let redactor = session.ctx.redactor.clone();
    let confirm = |question: &str| -> anyhow::Result<bool> {
        if args.yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "not confirmed: run in a terminal to answer, or pass --yes".to_string(),
            )
            .into());
        }
        print!("{question} [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
    };
    runtime.block_on(async {
        // what a killed apply left behind comes first: it is offered back before anything new
        let leftovers = session.leftovers().await;
        if args.restore {
            if leftovers.is_empty() {
                println!("Nothing to restore: every apply in the audit log finished.");
                return Ok(report::exit::OK);
            }
            for l in &leftovers {
                println!("restore {} on {} from {}", l.path, l.host, l.backup);
            }
            if args.dry_run || !confirm(&format!("Restore {} file(s)?", leftovers.len()))? {
                println!("Nothing was changed.");
                return Ok(report::exit::OK);
            }
            let failed = session
                .restore(&leftovers, |host, what, r| match r {
                    Ok(()) => println!("{host}: {what}"),
                    Err(e) => println!("{host}: {}", redactor.redact(e)),
                })
                .await;
            return Ok(if failed == 0 {
                report::exit::OK
            } else {
                report::exit::FINDINGS
            });
        }
        if !leftovers.is_empty() {
            println!("An earlier apply did not finish; its backups are still in place:");
            for l in &leftovers {
                println!("  {} on {} (backup {})", l.path, l.host, l.backup);
            }
            println!("Put them back with: pulldoctor fix --restore\n");
        }
        let (plans, errors) = session.plan(&args.only).await;
        for e in &errors {
            eprintln!("{}", redactor.redact(e));
        }
        if plans.is_empty() {
            println!("Nothing to fix: every fix pulldoctor knows finds its subject already right.");
            return Ok(if errors.is_empty() {
                report::exit::OK
            } else {
                report::exit::FINDINGS
            });
        }
        for (_, p) in &plans {
            print!("{}", redactor.redact(&fix::render_plan(p)));
        }
        if args.dry_run {
            println!("Dry run: nothing was changed.");
            return Ok(report::exit::OK);
        }
        if !confirm(&format!("Apply {} fix(es)?", plans.len()))? {
            println!("Nothing was changed.");
            return Ok(report::exit::OK);
        }
        let outcomes = session
            .apply(&plans, |p, o| {
                println!(
                    "{} on {}: {}",
                    p.plan.id,
                    subject_of(p),
                    redactor.redact(&o.summary())
                );
            })
            .await;
        println!("Audit log: {}", fix::audit::path().display());
        Ok(if outcomes.iter().all(|o| o.verified) {
            report::exit::OK
        } else {
            report::exit::FINDINGS
        })
    })
}

/// `--headless --apply LEVEL`: plan every fix from fresh facts, apply those of an allowed risk
/// one at a time with verification, and say on stderr what happens (stdout is the report).
/// Returns the applied fixes and whether every one was verified.
fn apply_unattended(
    catalog: Catalog,
    args: &RunArgs,
    level: cli::ApplyLevel,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<(Vec<report::AppliedFix>, bool)> {
    let session = FixSession::new(catalog, args)?;
    let redactor = session.ctx.redactor.clone();
    let all = level == cli::ApplyLevel::All;
    let outcomes = runtime.block_on(async {
        let (plans, errors) = session.plan(&[]).await;
        for e in &errors {
            eprintln!("{e}");
        }
        let (allowed, held): (Vec<_>, Vec<_>) = plans
            .into_iter()
            .partition(|(_, p)| fix::risk_allowed(p.plan.risk, all));
        for (_, p) in &held {
            eprintln!(
                "not applied ({} needs a person to confirm it): {} on {}",
                fix::risk_word(p.plan.risk),
                p.plan.id,
                subject_of(p)
            );
        }
        session
            .apply(&allowed, |p, o| {
                eprintln!(
                    "{} on {}: {}",
                    p.plan.id,
                    subject_of(p),
                    redactor.redact(&o.summary())
                );
            })
            .await
            .into_iter()
            .zip(allowed.iter().map(|(_, p)| p.plan.clone()))
            .collect::<Vec<_>>()
    });
    let all_verified = outcomes.iter().all(|(o, _)| o.verified);
    let fixes = outcomes
        .into_iter()
        .map(|(o, plan)| report::AppliedFix {
            id: plan.id,
            title: redactor.redact(&plan.title).into_owned(),
            hosts: plan.hosts,
            risk: fix::risk_word(plan.risk).to_string(),
            steps: o
                .applied
                .iter()
                .map(|a| report::AppliedStep {
                    host: a.host.clone(),
                    step: redactor.redact(&a.step).into_owned(),
                    outcome: a.outcome.clone(),
                })
                .collect(),
            verified: o.verified,
            rolled_back: o.rolled_back,
            error: o.error.map(|e| redactor.redact(&e).into_owned()),
        })
        .collect();
    Ok((fixes, all_verified))
}

/// Where a plan applies, in words.
fn subject_of(p: &fix::Planned) -> String {
    if p.plan.hosts.is_empty() {
        "this machine".to_string()
    } else {
        p.plan.hosts.join(", ")
    }
}

/// What every face needs to plan and apply fixes: the checks' context on live probes, the
/// fixers the inputs allow, and the inventory's hosts by name.
pub struct FixSession {
    /// The checks' context (live probes, never a replay).
    pub ctx: CheckContext,
    /// The fixers.
    pub fixers: Vec<Arc<dyn fix::Fixer>>,
    /// Inventory hosts by name.
    pub hosts: std::collections::BTreeMap<String, inventory::Host>,
}

impl FixSession {
    /// Build it from the command line (the inventory, the checkout's files).
    ///
    /// # Errors
    /// A bad inventory or catalog, or SSH settings that cannot be used.
    pub fn new(catalog: Catalog, run: &RunArgs) -> anyhow::Result<Self> {
        let inventory = load_inventory(run)?.map(|(inv, _)| inv);
        let mut redactor = redact::Redactor::from_env();
        if let Some(inv) = &inventory
            && let Ok(token) = std::env::var(&inv.gitlab.token_env)
        {
            redactor.add_literal(&token);
        }
        // the audit log and the plans shown never carry the pull secret's passwords either
        if let Some(secret) = run.pull_secret.as_ref().or(inventory
            .as_ref()
            .and_then(|inv| inv.registry.as_ref())
            .and_then(|r| r.pull_secret.as_ref()))
        {
            redactor.add_pull_secret_file(secret);
        }
        // the new pull-secret token is read by the command, never shown
        if let Ok(password) = std::env::var(fix::pull_secret::PASSWORD_ENV) {
            redactor.add_literal(&password);
        }
        let ssh = inventory
            .as_ref()
            .filter(|inv| !inv.hosts.is_empty())
            .map(|inv| ssh_pool(inv, run))
            .transpose()?;
        let probes: Arc<dyn Probes> = Arc::new(LiveProbes::new(ssh));
        let classifier = Arc::new(Classifier::new(catalog).map_err(|e| UsageError(e.to_string()))?);
        let hosts = inventory
            .iter()
            .flat_map(|inv| inv.hosts.iter())
            .map(|h| (h.name.clone(), h.clone()))
            .collect();
        let inputs = fix::FixInputs {
            ci: ci_source(inventory.as_ref(), run),
            gitlab: inventory
                .as_ref()
                .and_then(check::runner_tags::GitlabTarget::from_inventory),
            daemons: check::api_skew::daemon_targets(
                run.docker_socket.as_ref(),
                inventory.as_ref(),
            ),
            cluster: cluster_source(
                inventory.as_ref(),
                run,
                check::cluster::local_kubectl_available(),
            ),
            job_logs: run.job_logs.clone(),
            registry: check::registry::RegistryPlan::merge(
                inventory.as_ref().and_then(|i| i.registry.as_ref()),
                &run.images,
                run.pull_secret.as_deref(),
                run.registry_ca.as_deref(),
            ),
            inventory,
        };
        Ok(Self {
            ctx: CheckContext {
                probes,
                classifier,
                redactor: Arc::new(redactor),
                workers: 1,
            },
            fixers: fix::fixers(&inputs),
            hosts,
        })
    }

    /// Plan every fixer from what its subject shows now; only the plans `only` selects (all
    /// when empty). Errors are redacted.
    pub async fn plan(
        &self,
        only: &[String],
    ) -> (Vec<(Arc<dyn fix::Fixer>, fix::Planned)>, Vec<String>) {
        let (mut plans, errors) = fix::plan_all(&self.ctx, &self.fixers).await;
        plans.retain(|(_, p)| only.is_empty() || only.iter().any(|o| p.selected_by(o)));
        let errors = errors
            .iter()
            .map(|e| self.ctx.redactor.redact(e).into_owned())
            .collect();
        (plans, errors)
    }

    /// Apply plans, one at a time, under one run stamp.
    pub async fn apply(
        &self,
        plans: &[(Arc<dyn fix::Fixer>, fix::Planned)],
        each: impl FnMut(&fix::Planned, &fix::Outcome),
    ) -> Vec<fix::Outcome> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        fix::apply_all(&self.ctx, plans, &self.hosts, &stamp, each).await
    }

    /// Backups left by applies that never finished and are still there.
    pub async fn leftovers(&self) -> Vec<fix::recover::Leftover> {
        let text = std::fs::read_to_string(fix::audit::path()).unwrap_or_default();
        let records = fix::audit::read_since(&text, "");
        let mut out = Vec::new();
        for l in fix::recover::leftovers(&records) {
            let host = self.hosts.get(&l.host);
            if (l.host == fix::apply::LOCAL || host.is_some())
                && fix::apply::backup_exists(self.ctx.probes.as_ref(), host, &l.backup).await
            {
                out.push(l);
            }
        }
        out
    }

    /// Put leftovers back, then restart again each service the interrupted apply restarted on
    /// those hosts (so it runs on the restored files); the number that failed. Each is audited
    /// and told to `each(host, what, result)`.
    pub async fn restore(
        &self,
        leftovers: &[fix::recover::Leftover],
        mut each: impl FnMut(&str, &str, &Result<(), String>),
    ) -> usize {
        let audit = |l: &fix::recover::Leftover, step: &str, r: &Result<(), String>, ok: &str| {
            let entry = fix::audit::Entry {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                user: fix::audit::user(),
                run: &l.run,
                fix: &l.fix,
                host: &l.host,
                step,
                path: Some(&l.path),
                backup: Some(&l.backup),
                before: None,
                after: None,
                outcome: if r.is_ok() { ok } else { "restore failed" },
                detail: r.as_ref().err().cloned(),
            };
            let _ = fix::audit::append(&entry, &self.ctx.redactor);
        };
        let mut failed = 0;
        let mut restarts: Vec<(&fix::recover::Leftover, &str)> = Vec::new();
        for l in leftovers {
            let host = self.hosts.get(&l.host);
            let r = fix::apply::restore_backup(self.ctx.probes.as_ref(), host, &l.path, &l.backup)
                .await;
            audit(l, &format!("restore {}", l.path), &r, "restored");
            failed += usize::from(r.is_err());
            each(&l.host, &format!("{} restored", l.path), &r);
            if let Some(cmd) = &l.restart
                && !restarts.iter().any(|(o, c)| o.host == l.host && c == cmd)
            {
                restarts.push((l, cmd));
            }
        }
        for (l, cmd) in restarts {
            let step = fix::FixStep::RestartService {
                host: l.host.clone(),
                service: "the service".into(),
                command: cmd.to_string(),
                sudo: self.hosts.get(&l.host).is_some_and(|h| h.sudo),
            };
            let r = fix::apply::apply_step(
                self.ctx.probes.as_ref(),
                self.hosts.get(&l.host),
                &step,
                &l.run,
            )
            .await
            .map(|_| ());
            audit(l, &format!("restart after restore: {cmd}"), &r, "restored");
            failed += usize::from(r.is_err());
            each(&l.host, &format!("restarted ({cmd})"), &r);
        }
        failed
    }
}

/// `runbook --from REPORT.json`: the runbook of a report written earlier.
/// The demo: a run of the lab with the incident's five faults, recorded by
/// `tests/lab/record-demo.sh`.
pub const DEMO_BUNDLE: &str = include_str!("../assets/demo.bundle.json");

/// The demo bundle written where a replay can read it (named so the dashboard and the report say
/// it is the recorded demo).
fn demo_bundle() -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join("pulldoctor-recorded-demo.bundle.json");
    std::fs::write(&path, DEMO_BUNDLE)
        .with_context(|| format!("cannot write the demo bundle to '{}'", path.display()))?;
    Ok(path)
}

/// On `--replay`, the bundle (read once) and the arguments with the plan-shaping ones the bundle
/// recorded filling those not given again.
fn with_recorded_plan_args(args: &RunArgs) -> anyhow::Result<(RunArgs, Option<Bundle>)> {
    let mut args = args.clone();
    let Some(path) = &args.replay else {
        return Ok((args, None));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read bundle '{}': {e}", path.display())))?;
    let bundle = Bundle::from_json(&text)
        .map_err(|e| UsageError(format!("bundle '{}': {e}", path.display())))?;
    if let Some(p) = bundle.plan_args.clone() {
        if args.ci_file.is_none() {
            args.ci_file = p.ci_file.map(std::path::PathBuf::from);
        }
        args.stuck_banner = args.stuck_banner.or(p.stuck_banner);
        args.docker_socket = args.docker_socket.or(p.docker_socket);
        if args.manifests.is_empty() {
            args.manifests = p.manifests;
        }
        args.kube_namespace = args.kube_namespace.or(p.kube_namespace);
    }
    Ok((args, Some(bundle)))
}

/// The audit log's entries since the report's run began: the given file (which must be readable),
/// else the default one if it exists.
fn read_audit(
    path: Option<&std::path::Path>,
    report: &report::Report,
) -> anyhow::Result<Vec<fix::audit::Record>> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| UsageError(format!("cannot read audit log '{}': {e}", p.display())))?,
        None => std::fs::read_to_string(fix::audit::path()).unwrap_or_default(),
    };
    Ok(fix::audit::read_since(&text, &report.run.started_at))
}

fn runbook_from(
    path: &std::path::Path,
    audit: Option<&std::path::Path>,
    args: &RunArgs,
) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read report '{}': {e}", path.display())))?;
    let report: report::Report = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "'{}' is not a pulldoctor JSON report (line {}, column {}: {})",
            path.display(),
            e.line(),
            e.column(),
            parse::json_error_category(&e)
        ))
    })?;
    let mut redactor = redact::Redactor::from_env();
    if let Some(secret) = &args.pull_secret {
        redactor.add_pull_secret_file(secret);
    }
    let rendered = redactor
        .redact(&report::runbook::render_with(
            &report,
            &read_audit(audit, &report)?,
        ))
        .into_owned();
    match &args.output {
        Some(out) => std::fs::write(out, rendered)
            .with_context(|| format!("cannot write '{}'", out.display()))?,
        None => print!("{rendered}"),
    }
    Ok(report::exit::OK)
}

/// What a run reads from: its probes, the recorder if recording, the text inputs, and the
/// inventory (with its text, for the bundle).
type RunSources = (
    Arc<dyn Probes>,
    Option<Arc<RecordingProbes>>,
    Vec<String>,
    Option<(Inventory, String)>,
    Option<check::registry::RegistryPlan>,
);

/// Everything a run needs, built once for every face (headless, `explain`, the dashboard), so
/// they all run the same plan over the same probes.
pub struct RunSetup {
    /// The checks to run.
    pub plan: Vec<Arc<dyn Check>>,
    /// What every check may use.
    pub ctx: CheckContext,
    /// Engine limits.
    pub limits: engine::Limits,
    /// The recorder, when `--record` was given.
    pub recorder: Option<Arc<RecordingProbes>>,
    /// The compiled catalog (the report needs it).
    pub classifier: Arc<Classifier>,
    /// The last line of defence before anything is written.
    pub redactor: Arc<redact::Redactor>,
}

impl RunSetup {
    /// The report of a state produced by this setup.
    #[must_use]
    pub fn report(&self, state: &engine::RunState, args: &RunArgs, mode: &str) -> report::Report {
        let replayed = args.replay.as_ref().map(|p| p.display().to_string());
        report::Report::new(
            state,
            self.classifier.catalog(),
            mode,
            replayed,
            args.fail_on.into(),
        )
    }

    /// Write the recorded bundle, if recording.
    ///
    /// # Errors
    /// When the bundle cannot be serialised or written.
    pub fn write_bundle(&self, args: &RunArgs) -> anyhow::Result<()> {
        if let (Some(rec), Some(path)) = (&self.recorder, &args.record) {
            let json = serde_json::to_string_pretty(&rec.bundle())
                .context("cannot serialise the bundle")?;
            std::fs::write(path, json)
                .with_context(|| format!("cannot write bundle '{}'", path.display()))?;
        }
        Ok(())
    }
}

/// Build the plan, probes and context of a run. `mode` is `explain` (text inputs only) or a
/// face that also runs the inventory's checks (`headless`, `dashboard`).
///
/// # Errors
/// [`UsageError`] for bad inputs, bundles or inventories.
pub fn prepare(catalog: Catalog, args: &RunArgs, mode: &str) -> anyhow::Result<RunSetup> {
    let (replayed_args, replayed) = with_recorded_plan_args(args)?;
    let args = &replayed_args;
    let mut redactor = Arc::new(redact::Redactor::from_env());
    let classifier = Arc::new(Classifier::new(catalog).map_err(|e| UsageError(e.to_string()))?);
    let mut replay_kubectl = false;
    let (probes, recorder, inputs, inventory, registry): RunSources = if let Some(bundle) = replayed
    {
        replay_kubectl = bundle.probes.iter().any(|p| {
            matches!(p, probe::bundle::ProbeRecord::Local { argv, .. }
                if argv.first().is_some_and(|a| a == "kubectl"))
        });
        // manifests are read by the cluster view, not classified as logs; an input is read once
        let mut inputs: Vec<String> = Vec::new();
        for name in bundle.input_names() {
            if !args.manifests.contains(&name) && !inputs.contains(&name) {
                inputs.push(name);
            }
        }
        let inventory = match &bundle.inventory {
            Some(text) => Some((
                Inventory::parse(text, "the bundle's inventory")
                    .map_err(|e| UsageError(e.to_string()))?,
                text.clone(),
            )),
            None => None,
        };
        let registry = bundle.registry.clone();
        (
            Arc::new(ReplayProbes::new(bundle)),
            None,
            inputs,
            inventory,
            registry,
        )
    } else {
        let inputs: Vec<String> = args
            .logs
            .iter()
            .chain(&args.events)
            .chain(&args.job_logs)
            .cloned()
            .collect();
        if inputs.iter().filter(|i| *i == "-").count() > 1 {
            return Err(
                UsageError("standard input ('-') can be read only once".to_string()).into(),
            );
        }
        // The inventory drives the live checks of a headless run; explain reads text only.
        let inventory = if mode == "explain" {
            None
        } else {
            load_inventory(args)?
        };
        // the inventory's GitLab token, when kept in a variable of its own name, is a secret too
        if let Some((inv, _)) = &inventory
            && let Ok(token) = std::env::var(&inv.gitlab.token_env)
        {
            Arc::make_mut(&mut redactor).add_literal(&token);
        }
        let ci_planned = args.ci_file.is_some()
            || args.stuck_banner.is_some()
            || inventory
                .as_ref()
                .is_some_and(|(inv, _)| inv.repo.is_some() || inv.gitlab.project.is_some());
        // The registry checks run in a headless run, from the inventory and the command line.
        let registry = if mode != "explain" {
            check::registry::RegistryPlan::merge(
                inventory
                    .as_ref()
                    .and_then(|(inv, _)| inv.registry.as_ref()),
                &args.images,
                args.pull_secret.as_deref(),
                args.registry_ca.as_deref(),
            )
        } else {
            None
        };
        // the pull secret's passwords are secrets wherever they are echoed (a job log, a
        // server's error body); read here for the redactor only, never kept
        // (explain plans no registry checks, but was given the secret all the same)
        if let Some(path) = registry
            .as_ref()
            .and_then(|r| r.pull_secret.as_ref())
            .or(args.pull_secret.as_ref())
        {
            Arc::make_mut(&mut redactor).add_pull_secret_file(path);
        }
        if inputs.is_empty()
            && args.manifests.is_empty()
            && args.kube_namespace.is_none()
            && registry.is_none()
            && !ci_planned
            && inventory
                .as_ref()
                .is_none_or(|(inv, _)| inv.hosts.is_empty())
        {
            return Err(UsageError(
                    "no input: give --log, --events or --job-log, --image, --manifests or --kube-namespace, an inventory with hosts (pulldoctor init writes one), or --replay a bundle".to_string(),
                )
                .into());
        }
        let ssh = inventory
            .as_ref()
            .filter(|(inv, _)| !inv.hosts.is_empty())
            .map(|(inv, _)| ssh_pool(inv, args))
            .transpose()?;
        let live: Arc<dyn Probes> = Arc::new(LiveProbes::new(ssh));
        match &args.record {
            Some(_) => {
                let rec = Arc::new(RecordingProbes::new(live, (*redactor).clone()));
                if let Some((_, text)) = &inventory {
                    rec.set_inventory(redactor.redact(text).into_owned());
                }
                rec.set_registry(registry.clone());
                rec.set_plan_args(probe::bundle::PlanArgs {
                    ci_file: args.ci_file.as_ref().map(|p| p.display().to_string()),
                    stuck_banner: args.stuck_banner.clone(),
                    docker_socket: args.docker_socket.clone(),
                    manifests: args.manifests.clone(),
                    kube_namespace: args.kube_namespace.clone(),
                });
                (
                    rec.clone() as Arc<dyn Probes>,
                    Some(rec),
                    inputs,
                    inventory,
                    registry,
                )
            }
            None => (live, None, inputs, inventory, registry),
        }
    };
    let mut plan: Vec<Arc<dyn Check>> = inputs
        .iter()
        .map(|i| Arc::new(check::logs::LogsCheck { input: i.clone() }) as Arc<dyn Check>)
        .collect();
    if let Some((inv, _)) = &inventory {
        plan.extend(plan_inventory(inv, args));
    }
    if mode != "explain" {
        let local_kubectl = if args.replay.is_some() {
            replay_kubectl
        } else {
            check::cluster::local_kubectl_available()
        };
        plan.extend(plan_cluster(
            inventory.as_ref().map(|(inv, _)| inv),
            args,
            local_kubectl,
            &inputs,
        ));
    }
    if let Some(registry) = &registry {
        let nodes: Vec<inventory::Host> = inventory
            .as_ref()
            .map(|(inv, _)| inv.hosts_with(inventory::Role::Node).cloned().collect())
            .unwrap_or_default();
        plan.extend(registry.checks(&nodes));
    }
    plan.extend(plan_ci(inventory.as_ref().map(|(inv, _)| inv), args));
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let ctx = CheckContext {
        probes,
        classifier: classifier.clone(),
        redactor: redactor.clone(),
        workers,
    };
    let limits = engine::Limits {
        concurrency: usize::from(args.concurrency),
        check_timeout: std::time::Duration::from_secs(args.timeout),
    };
    Ok(RunSetup {
        plan,
        ctx,
        limits,
        recorder,
        classifier,
        redactor,
    })
}

fn execute(catalog: Catalog, args: &RunArgs, mode: &str, face: Face) -> anyhow::Result<u8> {
    let fix_catalog = args.apply.map(|_| catalog.clone());
    let setup = prepare(catalog, args, mode)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let state = runtime.block_on(engine::run_to_state(
        setup.plan.clone(),
        setup.ctx.clone(),
        setup.limits,
    ));
    setup.write_bundle(args)?;
    let mut report = setup.report(&state, args, mode);
    if let (Some(level), Some(catalog)) = (args.apply, fix_catalog) {
        let (fixes, all_verified) = apply_unattended(catalog, args, level, &runtime)?;
        report.fixes = fixes;
        if !all_verified {
            report.summary.exit_code = report.summary.exit_code.max(report::exit::FINDINGS);
        }
    }
    let rendered = match face {
        Face::Json => {
            serde_json::to_string_pretty(&report).context("cannot serialise the report")? + "\n"
        }
        Face::Runbook(audit) => {
            report::runbook::render_with(&report, &read_audit(audit.as_deref(), &report)?)
        }
        Face::Text => {
            let color = args.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            report::text::render(&report, report::text::Style { color })
        }
    };
    // The last line of defence: nothing leaves with a known secret in it.
    let rendered = setup.redactor.redact(&rendered).into_owned();
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write '{}'", path.display()))?,
        None => print!("{rendered}"),
    }
    Ok(report.summary.exit_code)
}

/// `pulldoctor init`: write the commented example inventory.
fn init(args: &cli::InitArgs) -> anyhow::Result<u8> {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(inventory::FILE_NAME));
    if path.exists() && !args.force {
        return Err(UsageError(format!(
            "'{}' exists; use --force to overwrite it",
            path.display()
        ))
        .into());
    }
    std::fs::write(&path, inventory::EXAMPLE)
        .with_context(|| format!("cannot write '{}'", path.display()))?;
    eprintln!(
        "wrote {}: edit the hosts, routes and registry, then run pulldoctor --headless",
        path.display()
    );
    Ok(report::exit::OK)
}

fn signatures(catalog: &Catalog, args: &cli::SignaturesArgs) -> anyhow::Result<u8> {
    let classifier = Classifier::new(catalog.clone()).map_err(|e| UsageError(e.to_string()))?;
    if args.patterns {
        for p in classifier.failure_patterns() {
            println!("{p}");
        }
        return Ok(report::exit::OK);
    }
    if args.test {
        let failures = check::catalog::run_examples(&classifier);
        for f in &failures {
            println!("FAIL {f}");
        }
        let total = catalog
            .signatures()
            .iter()
            .map(|s| s.examples.len() + s.counterexamples.len())
            .sum::<usize>();
        println!(
            "{} passed, {} failed",
            total - failures.len(),
            failures.len()
        );
        return Ok(if failures.is_empty() {
            report::exit::OK
        } else {
            report::exit::FINDINGS
        });
    }
    for sig in catalog.signatures() {
        println!(
            "{:<24} priority {:>4}  {:>2} patterns  {:>2} examples  {}",
            sig.class.id(),
            sig.priority,
            sig.patterns.len(),
            sig.examples.len() + sig.counterexamples.len(),
            sig.origin.join(" + ")
        );
    }
    Ok(report::exit::OK)
}

/// Find and load the inventory (`--config`, `./pulldoctor.toml`, `~/.config/pulldoctor/`).
fn load_inventory(args: &RunArgs) -> anyhow::Result<Option<(Inventory, String)>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")));
    let Some(path) = Inventory::discover(args.config.as_deref(), &cwd, config_home.as_deref())
    else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("cannot read inventory '{}': {e}", path.display())))?;
    let inv = Inventory::parse(&text, &path.display().to_string())
        .map_err(|e| UsageError(e.to_string()))?;
    Ok(Some((inv, text)))
}

/// The SSH pool for the inventory's hosts: `~/.ssh/config`, known_hosts, keys and agent as OpenSSH
/// would, then the inventory's `[ssh]` settings, then the command line.
fn ssh_pool(inv: &Inventory, args: &RunArgs) -> anyhow::Result<Arc<ssh::SshPool>> {
    let mut opts = ssh::SshOptions::from_env();
    let s = &inv.ssh;
    if let Some(cfg) = &s.config {
        let path = ssh::config::expand_tilde(cfg);
        opts.config = ssh::config::SshConfig::load(&path)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    }
    if !s.known_hosts.is_empty() {
        opts.known_hosts = s
            .known_hosts
            .iter()
            .map(|k| ssh::config::expand_tilde(k))
            .collect();
    }
    opts.accept_new_host_keys = s.accept_new_host_keys || args.accept_new_host_keys;
    opts.connect_timeout = std::time::Duration::from_secs(s.connect_timeout);
    opts.command_timeout = std::time::Duration::from_secs(s.command_timeout);
    opts.per_host_limit = s.per_host;
    opts.global_limit = s.concurrency;
    opts.connect_limit = s.connecting;
    Ok(Arc::new(ssh::SshPool::new(opts)))
}

/// The checks an inventory asks for.
fn plan_inventory(inv: &Inventory, args: &RunArgs) -> Vec<Arc<dyn Check>> {
    let mut plan: Vec<Arc<dyn Check>> = Vec::new();
    for host in &inv.hosts {
        plan.push(Arc::new(check::remote::SshReachable { host: host.clone() }));
    }
    for node in inv.hosts_with(inventory::Role::Node) {
        plan.push(Arc::new(check::remote::NodeJournal {
            host: node.clone(),
            since_secs: args.since,
        }));
        if let Some(registry) = &inv.registry {
            plan.push(Arc::new(check::remote::RegistryScheme {
                host: node.clone(),
                registry: registry.address.clone(),
            }));
        }
    }
    for route in &inv.routes {
        if let Some(check) = route_check(inv, route) {
            plan.push(Arc::new(check));
        }
    }
    plan
}

/// Where the workloads are read: `--manifests`, else kubectl on a control-plane host of the
/// inventory, else a local kubectl (when there is one and the run has an inventory or
/// `--kube-namespace`).
fn cluster_source(
    inv: Option<&Inventory>,
    args: &RunArgs,
    local_kubectl: bool,
) -> Option<check::cluster::ClusterSource> {
    use check::cluster::ClusterSource;
    let namespace = args
        .kube_namespace
        .clone()
        .or_else(|| inv.and_then(|i| i.kubernetes.namespace.clone()));
    let control_plane = inv.and_then(|i| i.hosts_with(inventory::Role::ControlPlane).next());
    if !args.manifests.is_empty() {
        Some(ClusterSource::Manifests(args.manifests.clone()))
    } else if let Some(host) = control_plane {
        Some(ClusterSource::Ssh {
            host: host.clone(),
            namespace,
        })
    } else if local_kubectl && (inv.is_some() || args.kube_namespace.is_some()) {
        Some(ClusterSource::Local { namespace })
    } else {
        None
    }
}

/// The cluster's own view and the image-name comparison: from `--manifests`, else kubectl on a
/// control-plane host of the inventory, else a local kubectl (when there is one, with a
/// kubeconfig, and the run has an inventory or `--kube-namespace`).
fn plan_cluster(
    inv: Option<&Inventory>,
    args: &RunArgs,
    local_kubectl: bool,
    inputs: &[String],
) -> Vec<Arc<dyn Check>> {
    use check::cluster::{ClusterPulls, ClusterReader};
    let Some(source) = cluster_source(inv, args, local_kubectl) else {
        return Vec::new();
    };
    let reader = Arc::new(ClusterReader::new(source));
    let registry = inv
        .and_then(|i| i.registry.as_ref())
        .map(|r| r.address.clone());
    let vars = match (&registry, inv.and_then(|i| i.gitlab.project.as_deref())) {
        (Some(r), Some(p)) => check::image_names::CiVariables::gitlab(r, p),
        _ => check::image_names::CiVariables::default(),
    };
    // job logs say what CI pushed; a replay does not know which inputs were job logs, and the
    // push patterns match nothing else, so it reads them all
    let job_logs = if args.replay.is_some() {
        inputs.to_vec()
    } else {
        args.job_logs.clone()
    };
    vec![
        Arc::new(ClusterPulls {
            reader: reader.clone(),
            known_hosts: inv
                .map(|i| {
                    i.hosts
                        .iter()
                        .flat_map(|h| [Some(h.name.clone()), h.address.clone(), h.ssh.clone()])
                        .flatten()
                        .collect()
                })
                .unwrap_or_default(),
        }),
        Arc::new(check::image_names::ImageNames {
            cluster: reader,
            job_logs,
            ci: ci_source(inv, args),
            pushed: Vec::new(),
            vars,
            registry,
        }),
    ]
}

/// The hop walk of one inventory route: its nodes, hops (with the addresses each step dials)
/// and ports with their roles (the registry's port; the token realm's, given or 80/443 beside it).
pub(crate) fn route_check(
    inv: &Inventory,
    route: &inventory::Route,
) -> Option<check::remote::PathHops> {
    use check::hops::{HopSpec, PortRole, PortSpec, RouteSpec, Vantage};
    let (last, hops) = route.hops.split_last()?;
    let step = |name: &String| {
        inv.host(name).map(|h| HopSpec {
            name: name.clone(),
            address: h.address.clone().unwrap_or_default(),
        })
    };
    let from: Vec<String> = if route.from.is_empty() {
        inv.hosts_with(inventory::Role::Node)
            .map(|h| h.name.clone())
            .collect()
    } else {
        route.from.clone()
    };
    let registry_port = inv
        .registry
        .as_ref()
        .and_then(|r| r.address.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let realm_port = route.realm_port.or_else(|| {
        registry_port
            .filter(|p| route.ports.contains(p))
            .and_then(|_| route.ports.iter().copied().find(|p| matches!(p, 80 | 443)))
    });
    let ports = route
        .ports
        .iter()
        .map(|&port| PortSpec {
            port,
            role: if Some(port) == realm_port {
                PortRole::TokenRealm
            } else if Some(port) == registry_port {
                PortRole::Registry
            } else {
                PortRole::Other
            },
        })
        .collect();
    let spec = RouteSpec {
        name: route.name.clone(),
        vantages: from
            .iter()
            .map(|n| Vantage {
                name: n.clone(),
                address: inv.host(n).and_then(|h| h.address.clone()),
            })
            .collect(),
        hops: hops.iter().filter_map(step).collect(),
        target: step(last)?,
        ports,
    };
    let hosts = from
        .iter()
        .chain(&route.hops)
        .filter_map(|n| inv.host(n).map(|h| (n.clone(), h.clone())))
        .collect();
    Some(check::remote::PathHops {
        spec,
        hosts,
        probe_timeout: 3,
    })
}

/// The `.gitlab-ci.yml` to read (`--ci-file`, else the inventory checkout's), with the project
/// context its variables expand from. Shared by the CI checks and `image.names` (CI's pushes).
fn ci_source(inv: Option<&Inventory>, args: &RunArgs) -> Option<check::runner_tags::CiSource> {
    use check::runner_tags::CiSource;
    let repo_root = inv.and_then(|i| i.repo.as_ref()).map(|r| r.path.clone());
    // the inventory's checkout may have no CI file: then there is nothing to check (a replay
    // answers from its bundle, so the disk is not asked)
    let ci_file = args.ci_file.clone().or_else(|| {
        repo_root
            .as_ref()
            .map(|r| r.join(".gitlab-ci.yml"))
            .filter(|f| args.replay.is_some() || f.exists())
    });
    let mut context = parse::gitlab_ci::ProjectContext::default();
    if let Some(inv) = inv {
        if let Some(p) = &inv.gitlab.project {
            context.project_path.clone_from(p);
        }
        context.registry = inv.registry.as_ref().map(|r| r.address.clone());
    }
    ci_file.map(|file| {
        let root = match &repo_root {
            Some(r) if file.starts_with(r) => r.clone(),
            _ => file
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default(),
        };
        CiSource {
            file,
            root,
            context,
        }
    })
}

/// The CI checks (`gitlab.runner-tags`, `docker.api-skew`): the CI file from `--ci-file` or the
/// inventory's `[repo]`, GitLab from `[gitlab]`, the runner daemons from hosts with the `runner`
/// role and `--docker-socket`.
fn plan_ci(inv: Option<&Inventory>, args: &RunArgs) -> Vec<Arc<dyn Check>> {
    use check::api_skew::{ApiSkewCheck, DaemonTarget};
    use check::runner_tags::{GitlabTarget, RunnerTagsCheck};
    let ci = ci_source(inv, args);
    let gitlab = inv.and_then(|i| match (&i.gitlab.url, &i.gitlab.project) {
        (Some(url), Some(project)) => Some(GitlabTarget {
            url: url.clone(),
            project: project.clone(),
            token_env: i.gitlab.token_env.clone(),
        }),
        _ => None,
    });
    let mut plan: Vec<Arc<dyn Check>> = Vec::new();
    if ci.is_some() || gitlab.is_some() || args.stuck_banner.is_some() {
        plan.push(Arc::new(RunnerTagsCheck {
            ci: ci.clone(),
            gitlab,
            banner: args.stuck_banner.clone(),
        }));
    }
    if let Some(ci) = ci {
        let mut daemons: Vec<DaemonTarget> = args
            .docker_socket
            .iter()
            .map(|s| DaemonTarget::Local { socket: s.clone() })
            .collect();
        daemons.extend(
            inv.into_iter()
                .flat_map(|i| i.hosts_with(inventory::Role::Runner))
                .map(|h| DaemonTarget::Host {
                    host: h.clone(),
                    socket: probe::docker::DEFAULT_SOCKET.to_string(),
                }),
        );
        plan.push(Arc::new(ApiSkewCheck { ci, daemons }));
    }
    plan
}

/// Diagnostics go to stderr (stdout carries the report), filtered by `--log-level`.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
