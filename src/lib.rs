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
pub mod model;
pub mod parse;
pub mod probe;
pub mod redact;
pub mod report;
pub mod ssh;

use anyhow::Context as _;
use check::catalog::Catalog;
use check::classify::Classifier;
use check::{Check, CheckContext};
use cli::{Cli, Command, RunArgs};
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
    init_logging(&cli.run.log_level);
    let catalog = Catalog::load(&cli.run.checks_dirs).map_err(|e| UsageError(e.to_string()))?;
    match cli.command {
        Some(Command::Signatures(args)) => signatures(&catalog, &args),
        Some(Command::Explain(args)) => {
            let mut run = cli.run;
            let files = if args.files.is_empty() && run.replay.is_none() { vec!["-".to_string()] } else { args.files };
            run.logs.extend(files);
            let mode = if args.json { Face::Json } else { Face::Text };
            execute(catalog, &run, "explain", mode)
        }
        None if cli.headless => execute(catalog, &cli.run, "headless", Face::Json),
        None => Err(UsageError(
            "nothing to do: give a command (explain, signatures) or --headless with inputs; see --help".to_string(),
        )
        .into()),
    }
}

/// How a run presents its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Json,
    Text,
}

fn execute(catalog: Catalog, args: &RunArgs, mode: &str, face: Face) -> anyhow::Result<u8> {
    let redactor = Arc::new(redact::Redactor::from_env());
    let classifier = Arc::new(Classifier::new(catalog).map_err(|e| UsageError(e.to_string()))?);
    let (probes, recorder, inputs): (Arc<dyn Probes>, Option<Arc<RecordingProbes>>, Vec<String>) =
        if let Some(path) = &args.replay {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read bundle '{}': {e}", path.display())))?;
            let bundle = Bundle::from_json(&text)
                .map_err(|e| UsageError(format!("bundle '{}': {e}", path.display())))?;
            let inputs = bundle.input_names();
            (Arc::new(ReplayProbes::new(bundle)), None, inputs)
        } else {
            let inputs: Vec<String> = args
                .logs
                .iter()
                .chain(&args.events)
                .chain(&args.job_logs)
                .cloned()
                .collect();
            if inputs.is_empty() {
                return Err(UsageError(
                    "no input: give --log, --events or --job-log (or --replay a bundle)"
                        .to_string(),
                )
                .into());
            }
            if inputs.iter().filter(|i| *i == "-").count() > 1 {
                return Err(
                    UsageError("standard input ('-') can be read only once".to_string()).into(),
                );
            }
            match &args.record {
                Some(_) => {
                    let rec = Arc::new(RecordingProbes::new(
                        Arc::new(LiveProbes),
                        (*redactor).clone(),
                    ));
                    (rec.clone() as Arc<dyn Probes>, Some(rec), inputs)
                }
                None => (Arc::new(LiveProbes), None, inputs),
            }
        };
    let plan: Vec<Arc<dyn Check>> = inputs
        .iter()
        .map(|i| Arc::new(check::logs::LogsCheck { input: i.clone() }) as Arc<dyn Check>)
        .collect();
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let state = runtime.block_on(engine::run_to_state(plan, ctx, limits));
    if let (Some(rec), Some(path)) = (recorder, &args.record) {
        let json =
            serde_json::to_string_pretty(&rec.bundle()).context("cannot serialise the bundle")?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write bundle '{}'", path.display()))?;
    }
    let replayed = args.replay.as_ref().map(|p| p.display().to_string());
    let report = report::Report::new(
        &state,
        classifier.catalog(),
        mode,
        replayed,
        args.fail_on.into(),
    );
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
    let rendered = redactor.redact(&rendered).into_owned();
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write '{}'", path.display()))?,
        None => print!("{rendered}"),
    }
    Ok(report.summary.exit_code)
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
