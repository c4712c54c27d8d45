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
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let dashboard = cli.command.is_none() && !cli.headless;
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
        None if cli.headless => execute(catalog, &cli.run, "headless", Face::Json),
        None => {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Json,
    Text,
}

/// What a run reads from: its probes, the recorder if recording, the text inputs, and the
/// inventory (with its text, for the bundle).
type RunSources = (
    Arc<dyn Probes>,
    Option<Arc<RecordingProbes>>,
    Vec<String>,
    Option<(Inventory, String)>,
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
    let redactor = Arc::new(redact::Redactor::from_env());
    let classifier = Arc::new(Classifier::new(catalog).map_err(|e| UsageError(e.to_string()))?);
    let (probes, recorder, inputs, inventory): RunSources = if let Some(path) = &args.replay {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read bundle '{}': {e}", path.display())))?;
        let bundle = Bundle::from_json(&text)
            .map_err(|e| UsageError(format!("bundle '{}': {e}", path.display())))?;
        let inputs = bundle.input_names();
        let inventory = match &bundle.inventory {
            Some(text) => Some((
                Inventory::parse(text, "the bundle's inventory")
                    .map_err(|e| UsageError(e.to_string()))?,
                text.clone(),
            )),
            None => None,
        };
        (Arc::new(ReplayProbes::new(bundle)), None, inputs, inventory)
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
        if inputs.is_empty()
            && inventory
                .as_ref()
                .is_none_or(|(inv, _)| inv.hosts.is_empty())
        {
            return Err(UsageError(
                    "no input: give --log, --events or --job-log, an inventory with hosts (pulldoctor init writes one), or --replay a bundle".to_string(),
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
                (rec.clone() as Arc<dyn Probes>, Some(rec), inputs, inventory)
            }
            None => (live, None, inputs, inventory),
        }
    };
    let mut plan: Vec<Arc<dyn Check>> = inputs
        .iter()
        .map(|i| Arc::new(check::logs::LogsCheck { input: i.clone() }) as Arc<dyn Check>)
        .collect();
    if let Some((inv, _)) = &inventory {
        plan.extend(plan_inventory(inv, args));
    }
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
    let report = setup.report(&state, args, mode);
    let rendered = match face {
        Face::Json => {
            serde_json::to_string_pretty(&report).context("cannot serialise the report")? + "\n"
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

/// The hop walk of one inventory route: its nodes, hops (with the addresses each step dials)
/// and ports with their roles (the registry's port; the token realm's, given or 80/443 beside it).
fn route_check(inv: &Inventory, route: &inventory::Route) -> Option<check::remote::PathHops> {
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
