//! The command line (clap derive). Every option that has an environment variable says so in
//! `--help`; the help carries examples and the exit codes.

use crate::model::Severity;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Examples:
  pulldoctor demo                                  the dashboard on a recorded run of the incident
  pulldoctor explain incident.log                  classify a pasted journal, events or job log
  kubectl describe pod api-7d9f -n gition | pulldoctor explain -
  journalctl -u containerd --since '10 min ago' | pulldoctor explain --json -
  pulldoctor --headless --log node1.log --events events.txt > report.json
  pulldoctor --headless --log node1.log --record incident.bundle.json
  pulldoctor --headless --replay incident.bundle.json
  pulldoctor --replay incident.bundle.json         the dashboard on a recorded run (? for keys)
  pulldoctor signatures --test --checks-dir ./my-checks
  pulldoctor init && $EDITOR pulldoctor.toml && pulldoctor --headless
  pulldoctor runbook --replay incident.bundle.json -o RUNBOOK.md
  pulldoctor fix --dry-run                         show what would be fixed, change nothing
  pulldoctor fix k8s-n1                            plan one host's fixes, confirm, apply, verify
  pulldoctor fix --restore                         put back what an interrupted apply left
  pulldoctor --headless --apply safe > report.json apply configuration-only fixes unattended

Exit codes:
  0  nothing at or above --fail-on      2  usage or configuration error
  1  findings at or above --fail-on     3  the run could not complete";

/// Diagnose why a container image will not build, push or pull: GitLab CI → Docker daemon →
/// registry → network hops → containerd → kubelet.
#[derive(Debug, Parser)]
#[command(name = "pulldoctor", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do; without a command the dashboard opens (or `--headless` prints the JSON report).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Run the checks and print the JSON report on stdout (exit code by worst finding).
    #[arg(long, global = true)]
    pub headless: bool,

    /// Inputs and engine options shared by every mode.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of a run.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// A containerd/kubelet journal or any log to classify (repeatable; `-` is stdin).
    #[arg(long = "log", value_name = "FILE", global = true)]
    pub logs: Vec<String>,

    /// `kubectl describe pod` or `kubectl get events` output (repeatable).
    #[arg(long = "events", value_name = "FILE", global = true)]
    pub events: Vec<String>,

    /// A GitLab CI job log, raw or as shown (repeatable).
    #[arg(long = "job-log", value_name = "FILE", global = true)]
    pub job_logs: Vec<String>,

    /// Kubernetes manifests (YAML, multi-document, or JSON) to read the workloads from when the
    /// cluster cannot be asked (repeatable; with --replay, give them again).
    #[arg(long = "manifests", value_name = "FILE", global = true)]
    pub manifests: Vec<String>,

    /// The namespace kubectl reads (default: the inventory's [kubernetes] namespace, else all);
    /// also asks for the cluster view through a local kubectl.
    #[arg(long = "kube-namespace", value_name = "NS", global = true)]
    pub kube_namespace: Option<String>,

    /// Add or override signatures from `*.toml` files in DIR (repeatable).
    #[arg(
        long = "checks-dir",
        value_name = "DIR",
        env = "PULLDOCTOR_CHECKS_DIR",
        global = true
    )]
    pub checks_dirs: Vec<PathBuf>,

    /// Record every probe answer, secrets redacted, into a bundle FILE.
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "replay")]
    pub record: Option<PathBuf>,

    /// Re-run the analysis of a recorded bundle, touching no network and no file.
    #[arg(long, value_name = "FILE", global = true)]
    pub replay: Option<PathBuf>,

    /// Exit 1 when a finding is at or above this severity.
    #[arg(
        long,
        value_enum,
        value_name = "SEVERITY",
        default_value = "error",
        env = "PULLDOCTOR_FAIL_ON",
        global = true
    )]
    pub fail_on: SeverityArg,

    /// Checks running at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024), global = true)]
    pub concurrency: u16,

    /// Seconds one check may take.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub timeout: u64,

    /// The inventory (default: ./pulldoctor.toml, then ~/.config/pulldoctor/pulldoctor.toml).
    #[arg(long, value_name = "FILE", env = "PULLDOCTOR_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Accept and record unknown SSH host keys (changed keys are always refused).
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,

    /// How far back to read node journals, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600, global = true)]
    pub since: u64,

    /// An image to check end to end against its registry: scheme, token realm, pull secret,
    /// manifest (repeatable; adds to the inventory's `[registry] images`).
    #[arg(long = "image", value_name = "IMAGE", global = true)]
    pub images: Vec<String>,

    /// The pull secret to try the images with (a Secret manifest, `kubectl get secret -o json`,
    /// or a docker config.json).
    #[arg(long, value_name = "FILE", global = true)]
    pub pull_secret: Option<String>,

    /// A PEM file with the CA the nodes trust for the registry.
    #[arg(long, value_name = "FILE", global = true)]
    pub registry_ca: Option<String>,

    /// Refuse every fix.
    #[arg(long, global = true)]
    pub read_only: bool,

    /// With --headless: after the checks, apply the fixes of this risk (safe: configuration
    /// only; all: also those that restart a service), verify each, and add them to the report
    /// under "fixes". Without it a headless run changes nothing.
    #[arg(
        long,
        value_enum,
        value_name = "LEVEL",
        global = true,
        conflicts_with = "read_only"
    )]
    pub apply: Option<ApplyLevel>,

    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE", global = true)]
    pub output: Option<PathBuf>,

    /// The `.gitlab-ci.yml` to check for runner tags and Docker API skew (default: the one in the
    /// inventory's [repo] path). Local includes are read relative to its directory, or to
    /// [repo] path when the file is inside it.
    #[arg(long, value_name = "FILE", global = true)]
    pub ci_file: Option<PathBuf>,

    /// A file holding GitLab's pasted "This job is stuck" banner: names the job and its tags
    /// even without API access.
    #[arg(long, value_name = "FILE", global = true)]
    pub stuck_banner: Option<String>,

    /// A Docker daemon socket on this machine (the runner's daemon) to read /version from.
    #[arg(long, value_name = "PATH", global = true)]
    pub docker_socket: Option<String>,

    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(
        long,
        value_name = "LEVEL",
        env = "PULLDOCTOR_LOG",
        default_value = "warn",
        global = true
    )]
    pub log_level: String,

    /// Where the dashboard writes its diagnostics (default:
    /// $XDG_STATE_HOME/pulldoctor/pulldoctor.log, or ~/.local/state/pulldoctor/pulldoctor.log).
    #[arg(long, value_name = "FILE", env = "PULLDOCTOR_LOG_FILE", global = true)]
    pub log_file: Option<PathBuf>,
}

/// Which fixes `--headless --apply` may run unattended (destructive ones never are).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ApplyLevel {
    /// configuration changes that restart nothing
    Safe,
    /// also fixes that restart a service (one node at a time)
    All,
}

/// Severity as a command-line value.
#[derive(Debug, Clone, Copy, Default, ValueEnum, PartialEq, Eq)]
pub enum SeverityArg {
    /// info and above
    Info,
    /// warning and above
    Warning,
    /// error and above
    #[default]
    Error,
    /// critical only
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Info => Severity::Info,
            SeverityArg::Warning => Severity::Warning,
            SeverityArg::Error => Severity::Error,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify every failure in pasted text: a journal, `kubectl` events, a job log, docker output.
    Explain(ExplainArgs),
    /// List the signature catalog, print its patterns, or run its examples.
    Signatures(SignaturesArgs),
    /// Write a commented example inventory (pulldoctor.toml) to start from.
    Init(InitArgs),
    /// Write the post-incident runbook (Markdown): from a JSON report, a replayed bundle, or a
    /// fresh run of the inventory's checks.
    Runbook(RunbookArgs),
    /// Open the dashboard on a recorded run of the incident (five faults, pulled for real in the
    /// lab); with --headless, print its JSON report; without a terminal, its text report.
    /// Touches no network; exits 0 (the findings are the recording's, not this machine's).
    Demo,
    /// Plan the fixes the inventory's hosts need, show them, and apply them after confirmation:
    /// backup, write, verify by re-running the check, roll back on failure, audit.
    Fix(FixArgs),
}

/// `fix` options.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// Only these findings (ids from the report) or hosts (inventory names).
    #[arg(value_name = "FINDING_ID|HOST")]
    pub only: Vec<String>,

    /// Apply without asking (a terminal asks; anything else needs --yes).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Show the plans and stop.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,

    /// Put back the backups an interrupted apply left (the audit log lists them).
    #[arg(long)]
    pub restore: bool,
}

/// `runbook` options.
#[derive(Debug, Args)]
pub struct RunbookArgs {
    /// A JSON report written by `--headless` (instead of running the checks).
    #[arg(long, value_name = "REPORT.json", conflicts_with = "replay")]
    pub from: Option<PathBuf>,

    /// The fix audit log to read applied fixes from (default: the state directory's
    /// audit.jsonl, when it exists).
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
}

/// `init` options.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it (default: ./pulldoctor.toml).
    #[arg(value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `explain` options.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Files to read (`-` or nothing: standard input).
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,

    /// Print the JSON report instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `signatures` options.
#[derive(Debug, Args)]
pub struct SignaturesArgs {
    /// Print every failure pattern, one per line (POSIX ERE; what the benchmark hands to grep).
    #[arg(long, conflicts_with = "test")]
    pub patterns: bool,

    /// Run every example and counterexample of the catalog (with --checks-dir) and report failures.
    #[arg(long)]
    pub test: bool,
}
