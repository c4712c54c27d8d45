//! One-key fixes: a plan built from fresh facts (never from a stale report), shown before it runs,
//! confirmed, applied host by host with a backup of every file it replaces, verified by re-running
//! the check that found the fault, rolled back when verification fails, and written to an
//! append-only audit log.
//!
//! * [`Fixer`] is one kind of fix bound to its subject (a node, a hop, a file); it plans from what
//!   it reads now and verifies by re-running the check that found the fault.
//! * [`fixers`] lists the fixers a run's inputs allow; [`node`] is the node side (`hosts.toml`,
//!   `config_path`), [`hops`] the forwarding hops (iptables rules, `ip_forward`).
//! * [`apply`] runs steps (over SSH or locally) and undoes them; [`audit`] is the JSON-lines log;
//!   [`recover`] finds what a killed apply left behind.

pub mod apply;
pub mod audit;
pub mod ci;
pub mod diff;
pub mod gitlab_rb;
pub mod hops;
pub mod lines;
pub mod manifests;
pub mod node;
pub mod pull_secret;
pub mod recover;
pub mod rerun;

pub use crate::model::{FixPlan, FixStep};

use crate::check::CheckContext;
use crate::inventory::Host;
use crate::model::FixRisk;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A plan, and the facts it was made from (shown with it).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan.
    pub plan: FixPlan,
    /// Why, in plain words (the check's reasoning).
    pub why: Vec<String>,
    /// The ids of the findings it answers (so `pulldoctor fix FINDING_ID` selects it).
    pub findings: Vec<String>,
}

impl Planned {
    /// Whether `pulldoctor fix SELECTOR` means this plan: its fix id, a finding it answers, a
    /// host it touches, or a local file it edits.
    #[must_use]
    pub fn selected_by(&self, selector: &str) -> bool {
        self.plan.id == selector
            || self.findings.iter().any(|f| f == selector)
            || self.plan.hosts.iter().any(|h| h == selector)
            || self.plan.steps.iter().any(|s| match s {
                FixStep::EditLocalFile { path, .. } => path == selector,
                _ => false,
            })
    }
}

/// How a re-run check judged an applied fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The fault is gone.
    pub ok: bool,
    /// What the check said.
    pub detail: String,
}

/// A plan being made.
pub type PlanFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Planned>, String>> + Send + 'a>>;
/// A verification being run.
pub type VerifyFuture<'a> = Pin<Box<dyn Future<Output = Verification> + Send + 'a>>;

/// One kind of fix bound to its subject.
pub trait Fixer: Send + Sync {
    /// What it is about, for messages (`k8snode`, `.gitlab-ci.yml`).
    fn subject(&self) -> String;
    /// Read the subject now and plan what that reading shows is needed (`None`: nothing).
    fn plan<'a>(&'a self, ctx: &'a CheckContext) -> PlanFuture<'a>;
    /// Re-run the check that found the fault.
    fn verify<'a>(&'a self, ctx: &'a CheckContext, planned: &'a Planned) -> VerifyFuture<'a>;
}

/// What a run knows that fixers are made from.
#[derive(Debug, Clone, Default)]
pub struct FixInputs {
    /// The inventory.
    pub inventory: Option<crate::inventory::Inventory>,
    /// The `.gitlab-ci.yml` of the local checkout.
    pub ci: Option<crate::check::runner_tags::CiSource>,
    /// GitLab, for the runners (`[gitlab]` url and project).
    pub gitlab: Option<crate::check::runner_tags::GitlabTarget>,
    /// The Docker daemons the CI jobs talk to.
    pub daemons: Vec<crate::check::api_skew::DaemonTarget>,
    /// Where the workloads are read (manifest files, or kubectl).
    pub cluster: Option<crate::check::cluster::ClusterSource>,
    /// CI job logs (what CI pushed).
    pub job_logs: Vec<String>,
    /// The registry, its images and pull secret.
    pub registry: Option<crate::check::registry::RegistryPlan>,
}

/// Every fixer the inputs allow.
#[must_use]
pub fn fixers(inputs: &FixInputs) -> Vec<Arc<dyn Fixer>> {
    let mut out: Vec<Arc<dyn Fixer>> = Vec::new();
    if let Some(inv) = &inputs.inventory
        && let Some(registry) = &inv.registry
    {
        for host in inv.hosts_with(crate::inventory::Role::Node) {
            out.push(Arc::new(node::NodeRegistry {
                host: host.clone(),
                registry: registry.address.clone(),
            }));
        }
    }
    if let Some(inv) = &inputs.inventory {
        for route in &inv.routes {
            if let Some(walk) = crate::route_check(inv, route) {
                out.push(Arc::new(hops::HopForwarding::new(walk)));
            }
        }
    }
    if let Some(source) = &inputs.cluster {
        let inv = inputs.inventory.as_ref();
        let registry = inv
            .and_then(|i| i.registry.as_ref())
            .map(|r| r.address.clone());
        let vars = match (&registry, inv.and_then(|i| i.gitlab.project.as_deref())) {
            (Some(r), Some(p)) => crate::check::image_names::CiVariables::gitlab(r, p),
            _ => crate::check::image_names::CiVariables::default(),
        };
        out.push(Arc::new(manifests::DeploymentImage {
            source: source.clone(),
            names: crate::check::image_names::ImageNames {
                cluster: Arc::new(crate::check::cluster::ClusterReader::new(source.clone())),
                job_logs: inputs.job_logs.clone(),
                ci: inputs.ci.clone(),
                pushed: Vec::new(),
                vars,
                registry,
            },
        }));
    }
    // the realm matters as the nodes see it: without nodes there is nobody to test it from
    let nodes: Vec<Host> = inputs
        .inventory
        .iter()
        .flat_map(|i| i.hosts_with(crate::inventory::Role::Node))
        .cloned()
        .collect();
    if let Some(plan) = &inputs.registry
        && !nodes.is_empty()
    {
        let inv = inputs.inventory.as_ref();
        out.push(Arc::new(gitlab_rb::GitlabRealm {
            registry: crate::check::registry::RegistryTarget {
                address: plan.address.clone(),
                ca_file: plan.ca.clone(),
            },
            nodes,
            gitlab: inv
                .and_then(|i| i.hosts_with(crate::inventory::Role::Gitlab).next())
                .cloned(),
        }));
    }
    if let Some(plan) = &inputs.registry
        && let Some(secret) = &plan.pull_secret
        && !plan.images.is_empty()
    {
        out.push(Arc::new(pull_secret::PullSecret {
            registry: crate::check::registry::RegistryTarget {
                address: plan.address.clone(),
                ca_file: plan.ca.clone(),
            },
            images: plan.images.clone(),
            secret: secret.clone(),
        }));
    }
    if let Some(ci) = &inputs.ci {
        out.push(Arc::new(ci::CiImageBump {
            ci: ci.clone(),
            daemons: inputs.daemons.clone(),
        }));
        if let Some(gitlab) = &inputs.gitlab {
            out.push(Arc::new(ci::CiRunnerTags {
                ci: ci.clone(),
                gitlab: gitlab.clone(),
            }));
        }
    }
    out
}

/// Plan every fixer at once, from what each subject shows now. Plans come back sorted by fix id
/// then host; subjects that could not be read come back as errors (redacted by the caller).
pub async fn plan_all(
    ctx: &CheckContext,
    fixers: &[Arc<dyn Fixer>],
) -> (Vec<(Arc<dyn Fixer>, Planned)>, Vec<String>) {
    let mut set = tokio::task::JoinSet::new();
    for fixer in fixers {
        let (fixer, ctx) = (fixer.clone(), ctx.clone());
        set.spawn(async move {
            let planned = fixer.plan(&ctx).await;
            (fixer, planned)
        });
    }
    let (mut plans, mut errors) = (Vec::new(), Vec::new());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((fixer, Ok(Some(p)))) => plans.push((fixer, p)),
            Ok((_, Ok(None))) => {}
            Ok((fixer, Err(e))) => errors.push(format!("{}: cannot plan: {e}", fixer.subject())),
            Err(e) => errors.push(format!("a plan failed: {e}")),
        }
    }
    plans.sort_by(|a, b| (&a.1.plan.id, &a.1.plan.hosts).cmp(&(&b.1.plan.id, &b.1.plan.hosts)));
    errors.sort();
    (plans, errors)
}

/// A plan as the person confirming it reads it: what, where, how risky, each step with the
/// exact file content, diff or command, why, and how it will be verified.
#[must_use]
pub fn render_plan(planned: &Planned) -> String {
    let p = &planned.plan;
    let mut out = String::new();
    let _ = writeln!(out, "Fix {}: {}", p.id, p.title);
    let _ = writeln!(
        out,
        "  hosts: {}; risk: {}{}; verified by: {}",
        if p.hosts.is_empty() {
            "this machine".to_string()
        } else {
            p.hosts.join(", ")
        },
        risk_word(p.risk),
        if p.restarts_service {
            ", restarts a service"
        } else {
            ""
        },
        p.verify
    );
    for why in &planned.why {
        let _ = writeln!(out, "  why: {why}");
    }
    for (i, step) in p.steps.iter().enumerate() {
        let n = i + 1;
        let sudo_word = |sudo: bool| if sudo { "sudo " } else { "" };
        match step {
            FixStep::WriteRemoteFile {
                host,
                path,
                mode,
                owner,
                content,
            } => {
                let _ = writeln!(
                    out,
                    "  {n}. write {path} on {host} (mode {mode}, owner {owner}; the old file, if any, is kept as {path}.pulldoctor-backup-<time>):"
                );
                for line in content.lines() {
                    let _ = writeln!(out, "       | {line}");
                }
            }
            FixStep::EditRemoteFile {
                host, path, diff, ..
            } => {
                let _ = writeln!(
                    out,
                    "  {n}. edit {path} on {host} (the old file is kept as {path}.pulldoctor-backup-<time>):"
                );
                write_indented(&mut out, diff);
            }
            FixStep::RunRemoteCommand {
                host,
                command,
                sudo,
                check,
                undo,
            } => {
                let _ = writeln!(out, "  {n}. run on {host}: {}{command}", sudo_word(*sudo));
                if let Some(check) = check {
                    let _ = writeln!(out, "       (skipped when this succeeds: {check})");
                }
                if let Some(undo) = undo {
                    let _ = writeln!(out, "       (undone on rollback by: {undo})");
                }
            }
            FixStep::RestartService {
                host,
                service,
                command,
                sudo,
            } => {
                let _ = writeln!(
                    out,
                    "  {n}. restart {service} on {host}: {}{command}",
                    sudo_word(*sudo)
                );
            }
            FixStep::EditLocalFile { path, diff, .. } => {
                let _ = writeln!(
                    out,
                    "  {n}. edit {path} (the old file is kept as {path}.pulldoctor-backup-<time>):"
                );
                write_indented(&mut out, diff);
            }
            FixStep::RunLocalCommand {
                command,
                needs_env,
                undo,
            } => {
                let _ = writeln!(out, "  {n}. run here: {command}");
                if !needs_env.is_empty() {
                    let _ = writeln!(
                        out,
                        "       (reads {} from the environment; the value is never shown)",
                        needs_env.join(", ")
                    );
                }
                if let Some(undo) = undo {
                    let _ = writeln!(out, "       (undone on rollback by: {undo})");
                }
            }
            FixStep::Manual { text, commands } => {
                let _ = writeln!(out, "  {n}. by hand (not run): {text}");
                for c in commands {
                    let _ = writeln!(out, "       $ {c}");
                }
            }
        }
    }
    out
}

fn write_indented(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "       {line}");
    }
}

/// The risk in words.
#[must_use]
pub fn risk_word(risk: FixRisk) -> &'static str {
    match risk {
        FixRisk::Safe => "safe",
        FixRisk::Disruptive => "disruptive",
        FixRisk::Destructive => "destructive",
    }
}

/// How applying one plan ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The fix id.
    pub fix: String,
    /// The hosts it touched.
    pub hosts: Vec<String>,
    /// What each step did.
    pub applied: Vec<apply::Applied>,
    /// The re-run check found nothing wrong.
    pub verified: bool,
    /// Everything that was changed was put back.
    pub rolled_back: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Outcome {
    /// One line for the terminal.
    #[must_use]
    pub fn summary(&self) -> String {
        let changed = self
            .applied
            .iter()
            .filter(|a| a.outcome == "changed")
            .count();
        let steps = self
            .applied
            .iter()
            .map(|a| format!("{} ({})", a.step, a.outcome))
            .collect::<Vec<_>>()
            .join("; ");
        match (&self.error, self.verified) {
            (None, true) if changed == 0 => format!("already right, nothing changed: {steps}"),
            (None, true) => format!("fixed and verified: {steps}"),
            (Some(e), _) if self.rolled_back => format!("{e}; rolled back: {steps}"),
            (Some(e), _) => format!("{e}; NOT rolled back, the backups are kept: {steps}"),
            (None, false) => format!("not verified: {steps}"),
        }
    }
}

/// Whether `--apply LEVEL` lets a plan of this risk run (`safe`: safe only; `all`: safe and
/// disruptive; destructive plans are never applied without a person confirming them).
#[must_use]
pub fn risk_allowed(risk: FixRisk, all: bool) -> bool {
    match risk {
        FixRisk::Safe => true,
        FixRisk::Disruptive => all,
        FixRisk::Destructive => false,
    }
}

/// Apply plans one at a time, each verified before the next (so a restart goes one node at a
/// time). When a plan that restarts a service fails on one host, the same fix is not applied to
/// the hosts after it: a bad restart stops at the first node. `each` sees every outcome as it
/// comes.
pub async fn apply_all(
    ctx: &CheckContext,
    plans: &[(Arc<dyn Fixer>, Planned)],
    hosts: &BTreeMap<String, Host>,
    stamp: &str,
    mut each: impl FnMut(&Planned, &Outcome),
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut stopped: Vec<String> = Vec::new();
    for (fixer, planned) in plans {
        let outcome = if stopped.contains(&planned.plan.id) {
            Outcome {
                fix: planned.plan.id.clone(),
                hosts: planned.plan.hosts.clone(),
                applied: Vec::new(),
                verified: false,
                rolled_back: true,
                error: Some(format!(
                    "not applied: {} failed on an earlier host, and it restarts a service",
                    planned.plan.id
                )),
            }
        } else {
            apply_and_verify(ctx, fixer.as_ref(), planned, hosts, stamp).await
        };
        if !outcome.verified && planned.plan.restarts_service {
            stopped.push(planned.plan.id.clone());
        }
        each(planned, &outcome);
        outcomes.push(outcome);
    }
    outcomes
}

/// The host a step runs on (`None`: this machine).
fn step_host(step: &FixStep) -> Option<&str> {
    match step {
        FixStep::WriteRemoteFile { host, .. }
        | FixStep::EditRemoteFile { host, .. }
        | FixStep::RunRemoteCommand { host, .. }
        | FixStep::RestartService { host, .. } => Some(host),
        FixStep::EditLocalFile { .. }
        | FixStep::RunLocalCommand { .. }
        | FixStep::Manual { .. } => None,
    }
}

/// The file a step changes.
fn step_path(step: &FixStep) -> Option<&str> {
    match step {
        FixStep::WriteRemoteFile { path, .. }
        | FixStep::EditRemoteFile { path, .. }
        | FixStep::EditLocalFile { path, .. } => Some(path),
        _ => None,
    }
}

/// Apply `planned`, re-run the fixer's check, and undo every change (then restart again what was
/// restarted) if it still finds the fault. `stamp` names this apply run (and its backups). Each
/// step is audited before it runs (so a kill is found by [`recover`]) and after.
pub async fn apply_and_verify(
    ctx: &CheckContext,
    fixer: &dyn Fixer,
    planned: &Planned,
    hosts: &BTreeMap<String, Host>,
    stamp: &str,
) -> Outcome {
    let plan = &planned.plan;
    let audit = |host: &str,
                 step: &str,
                 a: Option<&apply::Applied>,
                 path: Option<&str>,
                 backup: Option<&str>,
                 outcome: &str,
                 detail: Option<String>| {
        let entry = audit::Entry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            user: audit::user(),
            run: stamp,
            fix: &plan.id,
            host,
            step,
            path,
            backup,
            before: a.and_then(|a| a.before.as_deref()),
            after: a.and_then(|a| a.after.as_deref()),
            outcome,
            detail,
        };
        audit::append(&entry, &ctx.redactor)
    };
    let subject = plan.hosts.first().map_or(apply::LOCAL, String::as_str);
    let mut outcome = Outcome {
        fix: plan.id.clone(),
        hosts: plan.hosts.clone(),
        applied: Vec::new(),
        verified: false,
        rolled_back: false,
        error: None,
    };
    for step in &plan.steps {
        let host_name = step_host(step);
        let host = host_name.and_then(|h| hosts.get(h));
        let shown_host = host_name.unwrap_or(apply::LOCAL);
        let path = step_path(step);
        let backup = path.map(|p| apply::backup_path(p, stamp));
        // the intent first: a kill during the step leaves this line and maybe a backup
        if let Err(e) = audit(
            shown_host,
            &step_title(step),
            None,
            path,
            backup.as_deref(),
            "started",
            // a restart's command is kept so a restore after a kill can restart again
            match step {
                FixStep::RestartService { command, .. } => Some(command.clone()),
                _ => None,
            },
        ) {
            outcome.error = Some(format!(
                "cannot write the audit log, nothing more is changed: {e}"
            ));
            break;
        }
        match apply::apply_step(ctx.probes.as_ref(), host, step, stamp).await {
            Ok(a) => {
                let _ = audit(
                    &a.host,
                    &a.step,
                    Some(&a),
                    a.path.as_deref(),
                    a.backup.as_deref(),
                    &a.outcome,
                    None,
                );
                outcome.applied.push(a);
            }
            Err(e) => {
                let _ = audit(
                    shown_host,
                    &step_title(step),
                    None,
                    path,
                    None,
                    "failed",
                    Some(e.clone()),
                );
                if let FixStep::RestartService {
                    host,
                    service,
                    command,
                    ..
                } = step
                {
                    outcome
                        .applied
                        .push(apply::Applied::failed_restart(host, service, command));
                }
                outcome.error = Some(e);
                break;
            }
        }
    }
    if outcome.error.is_none() {
        let v = match test_hook_verification() {
            Some(v) => v,
            None => fixer.verify(ctx, planned).await,
        };
        let _ = audit(
            subject,
            "verify",
            None,
            None,
            None,
            if v.ok {
                "verified"
            } else {
                "verification failed"
            },
            Some(v.detail.clone()),
        );
        outcome.verified = v.ok;
        if !v.ok {
            outcome.error = Some(format!("verification failed: {}", v.detail));
        }
    }
    if outcome.error.is_some() {
        outcome.rolled_back = roll_back(ctx, &outcome.applied, hosts, &audit).await;
    }
    outcome
}

/// An audit writer as [`apply_and_verify`] builds it.
type AuditFn<'a> = dyn Fn(
        &str,
        &str,
        Option<&apply::Applied>,
        Option<&str>,
        Option<&str>,
        &str,
        Option<String>,
    ) -> std::io::Result<()>
    + Send
    + Sync
    + 'a;

/// Undo `applied` in reverse, then restart again every service that was restarted (so it runs
/// on the restored files). True when everything was put back.
async fn roll_back(
    ctx: &CheckContext,
    applied: &[apply::Applied],
    hosts: &BTreeMap<String, Host>,
    audit: &AuditFn<'_>,
) -> bool {
    let mut all_back = true;
    for a in applied.iter().rev() {
        let undone = apply::undo(ctx.probes.as_ref(), hosts.get(&a.host), a).await;
        let _ = audit(
            &a.host,
            &format!("rollback {}", a.step),
            Some(a),
            a.path.as_deref(),
            a.backup.as_deref(),
            if undone.is_ok() {
                "rolled back"
            } else {
                "rollback failed"
            },
            undone.as_ref().err().cloned(),
        );
        all_back &= undone.is_ok();
    }
    let mut restarted: Vec<(&str, &str)> = Vec::new();
    // a restart that failed is started again too: it may have stopped the service
    for a in applied
        .iter()
        .filter(|a| a.outcome == "changed" || a.outcome == "failed")
    {
        if let Some(cmd) = &a.restart
            && !restarted.contains(&(a.host.as_str(), cmd.as_str()))
        {
            restarted.push((&a.host, cmd));
        }
    }
    for (host, cmd) in restarted {
        let again = match hosts.get(host) {
            Some(h) => {
                apply::apply_step(
                    ctx.probes.as_ref(),
                    Some(h),
                    &FixStep::RestartService {
                        host: host.to_string(),
                        service: "the service".into(),
                        command: cmd.to_string(),
                        sudo: h.sudo,
                    },
                    "rollback",
                )
                .await
            }
            None => Err(format!("{host}: not in the inventory")),
        };
        let _ = audit(
            host,
            &format!("restart after rollback: {cmd}"),
            None,
            None,
            None,
            if again.is_ok() {
                "rolled back"
            } else {
                "rollback failed"
            },
            again.as_ref().err().cloned(),
        );
        all_back &= again.is_ok();
    }
    all_back
}

/// The step in words, before it ran.
fn step_title(step: &FixStep) -> String {
    match step {
        FixStep::WriteRemoteFile { path, .. } => format!("write {path}"),
        FixStep::EditRemoteFile { path, .. } | FixStep::EditLocalFile { path, .. } => {
            format!("edit {path}")
        }
        FixStep::RunRemoteCommand { command, .. } | FixStep::RunLocalCommand { command, .. } => {
            format!("run {command}")
        }
        FixStep::RestartService { service, .. } => format!("restart {service}"),
        FixStep::Manual { text, .. } => format!("manual: {text}"),
    }
}

/// A test hook: the lab's rollback tests make verification fail on purpose.
fn test_hook_verification() -> Option<Verification> {
    std::env::var_os("PULLDOCTOR_TEST_FAIL_VERIFY").map(|_| Verification {
        ok: false,
        detail: "failed on purpose (PULLDOCTOR_TEST_FAIL_VERIFY)".into(),
    })
}
