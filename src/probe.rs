//! Probes: the only I/O seam. A check asks a [`Probes`] implementation for what it needs; the live
//! implementation reads files (and, as issues land, runs SSH commands and network probes), the
//! recording one also writes every answer into a [`bundle::Bundle`], and the replaying one answers
//! from a bundle with no I/O at all.

pub mod bundle;
pub mod docker;
pub mod gitlab;
pub mod http;
pub mod registry;

use crate::redact::Redactor;
use bundle::{Bundle, ProbeRecord};
use http::{HttpRequest, HttpResponse, NetError, TlsReport, TlsTrust};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a probe failed, with what was asked.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// A local file could not be read.
    #[error("cannot read '{path}': {message}")]
    Read {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// An SSH step failed (connect, host key, auth, command).
    #[error("{0}")]
    Ssh(crate::ssh::SshError),
    /// An HTTP or TLS probe failed (connect, TLS, response, timeout).
    #[error("{0}")]
    Net(NetError),
    /// A command run on this machine could not be started or did not finish.
    #[error("running '{command}' here: {message}")]
    Local {
        /// The command line.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// A recorded failure, replayed.
    #[error("{message}")]
    Recorded {
        /// The error as recorded (redacted).
        message: String,
    },
    /// A replayed run asked for something the bundle did not record.
    #[error("the bundle has no recording of {what}")]
    NotRecorded {
        /// What was asked.
        what: String,
    },
}

/// An opened input. Files and in-memory text can be read at any offset, so large ones are
/// scanned by several threads at once; a pipe is read front to back.
pub enum Input {
    /// A regular file.
    File(std::fs::File),
    /// Text already in memory (a replayed or recorded input).
    Bytes(Vec<u8>),
    /// A pipe or terminal (standard input).
    Stream(Box<dyn Read + Send>),
}

impl Input {
    /// Read the whole input into memory.
    ///
    /// # Errors
    /// The read error.
    pub fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        match self {
            Input::Bytes(b) => Ok(b),
            Input::File(mut f) => {
                let mut v = Vec::new();
                f.read_to_end(&mut v)?;
                Ok(v)
            }
            Input::Stream(mut r) => {
                let mut v = Vec::new();
                r.read_to_end(&mut v)?;
                Ok(v)
            }
        }
    }
}

/// What checks may ask of the outside world.
pub trait Probes: Send + Sync {
    /// Open a text input: a path, or `-` for standard input.
    ///
    /// # Errors
    /// The path and the OS error, or a replay that did not record it.
    fn open_input(&self, name: &str) -> Result<Input, ProbeError>;

    /// Read a local file that is not a log to classify: a pull secret, a CA bundle, a manifest,
    /// a `.gitlab-ci.yml`. At most [`MAX_FILE`] bytes.
    ///
    /// # Errors
    /// The path and the OS error, a file too large, or a replay that did not record it.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, ProbeError>;

    /// Run `command` on inventory host `host`, reached at SSH `destination`.
    fn exec<'a>(&'a self, host: &'a str, destination: &'a str, command: &'a str) -> ExecFuture<'a>;

    /// Reach inventory host `host` at SSH `destination`: connect, verify its host key,
    /// authenticate, and keep the session for its commands, without running one (every command
    /// costs the host a shell start, its rc files included). A bundle records it as the command
    /// `true`, so bundles recorded before this existed replay the same.
    fn reach<'a>(&'a self, host: &'a str, destination: &'a str) -> ExecFuture<'a> {
        self.exec(host, destination, REACH_COMMAND)
    }

    /// Send an HTTP request from here (the registry, its token realm, the GitLab API, a Docker
    /// socket).
    fn http<'a>(&'a self, request: &'a HttpRequest) -> HttpFuture<'a>;

    /// Send a TLS ClientHello for `server_name` to `host:port` and report what answers.
    fn tls<'a>(&'a self, probe: &'a TlsProbe) -> TlsFuture<'a>;

    /// Run a program on this machine (`kubectl`), without a shell: `argv[0]` found on `PATH`.
    /// Probes that cannot run local commands say so.
    fn run_local<'a>(&'a self, argv: &'a [String]) -> ExecFuture<'a> {
        Box::pin(async move {
            Err(ProbeError::Local {
                command: argv.join(" "),
                message: "these probes do not run local commands".to_string(),
            })
        })
    }
}

/// The command a reach is recorded as (and was run as, before sessions were reached without one).
pub const REACH_COMMAND: &str = "true";

/// Seconds a local command may run.
pub const LOCAL_TIMEOUT_SECS: u64 = 60;
/// Bytes of a local command's stdout kept (a namespace's `kubectl get -o json` is a few MiB).
pub const LOCAL_MAX_OUTPUT: usize = 64 << 20;

/// Run `argv` here, without a shell, reading at most [`LOCAL_MAX_OUTPUT`] bytes of each stream;
/// killed after [`LOCAL_TIMEOUT_SECS`].
fn run_local_blocking(argv: &[String]) -> Result<CommandOutput, ProbeError> {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let command = argv.join(" ");
    let err = |message: String| ProbeError::Local {
        command: command.clone(),
        message,
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| err("no program given".into()))?;
    let started = std::time::Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    let read_capped = |stream: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(s) = stream {
                let _ = s.take(LOCAL_MAX_OUTPUT as u64).read_to_end(&mut kept);
            }
            kept
        })
    };
    let stdout = read_capped(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    );
    let stderr = read_capped(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    );
    let deadline = started + std::time::Duration::from_secs(LOCAL_TIMEOUT_SECS);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!(
                    "no answer within {LOCAL_TIMEOUT_SECS} s; stopped"
                )));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(err(e.to_string())),
        }
    };
    Ok(CommandOutput {
        exit_status: status.code().and_then(|c| u32::try_from(c).ok()),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// What [`Probes::tls`] is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProbe {
    /// Address to connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The name to ask for (SNI) and to verify the certificate against.
    pub server_name: String,
    /// Which certificates count as trusted.
    pub trust: TlsTrust,
    /// Deadline for connect and handshake.
    pub timeout: Duration,
}

impl TlsProbe {
    fn describe(&self) -> String {
        let trust = match &self.trust {
            TlsTrust::System => "system roots",
            TlsTrust::Ca(_) => "system roots + given CA",
            TlsTrust::Insecure => "no verification",
        };
        format!(
            "TLS {}:{} as {} ({trust})",
            self.host, self.port, self.server_name
        )
    }
}

/// What [`Probes::http`] returns.
pub type HttpFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpResponse, ProbeError>> + Send + 'a>,
>;

/// What [`Probes::tls`] returns.
pub type TlsFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<TlsReport, ProbeError>> + Send + 'a>>;

/// The largest file [`Probes::read_file`] reads.
pub const MAX_FILE: u64 = 64 << 20;

/// What [`Probes::exec`] returns.
pub type ExecFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<CommandOutput, ProbeError>> + Send + 'a>,
>;

pub use crate::ssh::CommandOutput;

/// Reads the real files and runs commands over SSH.
#[derive(Default)]
pub struct LiveProbes {
    ssh: Option<Arc<crate::ssh::SshPool>>,
    http: http::HttpClients,
}

impl LiveProbes {
    /// Live probes that reach hosts through `ssh` (without it, every `exec` says SSH is not set up).
    #[must_use]
    pub fn new(ssh: Option<Arc<crate::ssh::SshPool>>) -> Self {
        LiveProbes {
            ssh,
            http: http::HttpClients::default(),
        }
    }
}

impl LiveProbes {
    /// The SSH pool, or the error every SSH read of a run without one gets.
    fn ssh_pool(&self, host: &str) -> Result<&crate::ssh::SshPool, ProbeError> {
        self.ssh.as_deref().ok_or_else(|| {
            ProbeError::Ssh(crate::ssh::SshError {
                host: host.to_string(),
                step: crate::ssh::Step::Config,
                message: "SSH is not set up for this run".to_string(),
            })
        })
    }
}

/// An SSH failure, naming the host as the inventory does.
fn ssh_error_of(host: &str, mut e: crate::ssh::SshError) -> ProbeError {
    e.host = host.to_string();
    ProbeError::Ssh(e)
}

impl Probes for LiveProbes {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, ProbeError> {
        let err = |message: String| ProbeError::Read {
            path: path.to_string(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| err(e.to_string()))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(err(format!("larger than {} MiB", MAX_FILE >> 20)));
        }
        Ok(bytes)
    }

    fn open_input(&self, name: &str) -> Result<Input, ProbeError> {
        if name == "-" {
            return Ok(Input::Stream(Box::new(std::io::stdin())));
        }
        let err = |e: std::io::Error| ProbeError::Read {
            path: name.to_string(),
            message: e.to_string(),
        };
        let file = std::fs::File::open(name).map_err(err)?;
        // A FIFO or character device given by path is read like standard input.
        if file.metadata().map_err(err)?.is_file() {
            Ok(Input::File(file))
        } else {
            Ok(Input::Stream(Box::new(file)))
        }
    }

    fn exec<'a>(&'a self, host: &'a str, destination: &'a str, command: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            self.ssh_pool(host)?
                .exec(destination, command)
                .await
                .map_err(|e| ssh_error_of(host, e))
        })
    }

    fn reach<'a>(&'a self, host: &'a str, destination: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            self.ssh_pool(host)?
                .connect(destination)
                .await
                .map_err(|e| ssh_error_of(host, e))?;
            Ok(CommandOutput {
                exit_status: Some(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
        })
    }

    fn http<'a>(&'a self, request: &'a HttpRequest) -> HttpFuture<'a> {
        Box::pin(async move { self.http.send(request).await.map_err(ProbeError::Net) })
    }

    fn tls<'a>(&'a self, probe: &'a TlsProbe) -> TlsFuture<'a> {
        Box::pin(async move {
            http::inspect_tls(
                &probe.host,
                probe.port,
                &probe.server_name,
                &probe.trust,
                probe.timeout,
            )
            .await
            .map_err(ProbeError::Net)
        })
    }

    fn run_local<'a>(&'a self, argv: &'a [String]) -> ExecFuture<'a> {
        Box::pin(async move {
            let owned = argv.to_vec();
            tokio::task::spawn_blocking(move || run_local_blocking(&owned))
                .await
                .unwrap_or_else(|e| {
                    Err(ProbeError::Local {
                        command: argv.join(" "),
                        message: e.to_string(),
                    })
                })
        })
    }
}

/// Wraps live probes and records every answer, redacted, into a bundle.
pub struct RecordingProbes {
    inner: Arc<dyn Probes>,
    redactor: Redactor,
    bundle: Mutex<Bundle>,
}

impl RecordingProbes {
    /// Record what `inner` answers.
    #[must_use]
    pub fn new(inner: Arc<dyn Probes>, redactor: Redactor) -> Self {
        RecordingProbes {
            inner,
            redactor,
            bundle: Mutex::new(Bundle::new()),
        }
    }

    /// Keep the (redacted) inventory in the bundle, so a replay plans the same checks.
    pub fn set_inventory(&self, text: String) {
        match self.bundle.lock() {
            Ok(mut b) => b.inventory = Some(text),
            Err(p) => p.into_inner().inventory = Some(text),
        }
    }

    /// Keep the plan-shaping arguments in the bundle, for the same reason.
    pub fn set_plan_args(&self, args: bundle::PlanArgs) {
        let args = (args != bundle::PlanArgs::default()).then_some(args);
        match self.bundle.lock() {
            Ok(mut b) => b.plan_args = args,
            Err(p) => p.into_inner().plan_args = args,
        }
    }

    /// Keep the registry checks' targets in the bundle, for the same reason.
    pub fn set_registry(&self, plan: Option<crate::check::registry::RegistryPlan>) {
        match self.bundle.lock() {
            Ok(mut b) => b.registry = plan,
            Err(p) => p.into_inner().registry = plan,
        }
    }

    /// The bundle recorded so far.
    #[must_use]
    pub fn bundle(&self) -> Bundle {
        self.bundle
            .lock()
            .map(|b| b.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// A command's answer as it is recorded: redacted, and Kubernetes Secret values in it masked
    /// (`kubectl get secrets -o json` prints them base64-encoded, out of the redactor's sight).
    /// Record what a command on a host returned; what the run goes on with is what was
    /// recorded, so a replay gives the same report.
    fn record_exec(
        &self,
        host: &str,
        command: &str,
        result: &Result<CommandOutput, ProbeError>,
    ) -> Result<CommandOutput, ProbeError> {
        let recorded = self.recorded_output(result);
        self.record(ProbeRecord::Exec {
            host: host.to_string(),
            command: command.to_string(),
            result: recorded.clone(),
        });
        recorded
            .map(|r| r.into_output())
            .map_err(|message| ProbeError::Recorded { message })
    }

    fn recorded_output(
        &self,
        result: &Result<CommandOutput, ProbeError>,
    ) -> Result<bundle::RecordedOutput, String> {
        match result {
            Ok(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stdout = crate::parse::kube::mask_secret_data(&stdout, &self.redactor);
                Ok(bundle::RecordedOutput {
                    exit_status: out.exit_status,
                    stdout: self.redactor.redact(&stdout).into_owned(),
                    stderr: self
                        .redactor
                        .redact(&String::from_utf8_lossy(&out.stderr))
                        .into_owned(),
                    duration_ms: out.duration_ms,
                })
            }
            Err(e) => Err(self.redactor.redact(&e.to_string()).into_owned()),
        }
    }

    /// A file as it may be kept: a pull secret becomes a docker config with the same keys and
    /// usernames and masked passwords (its base64 `data` would hide them from the redactor, and a
    /// replay still needs to know who was asking); anything else is redacted.
    fn sanitize_file(&self, text: &str) -> String {
        if let Ok(cfg) = crate::parse::dockercfg::parse_secret(text) {
            let auths: serde_json::Map<String, serde_json::Value> = cfg
                .entries
                .iter()
                .map(|e| {
                    let mut entry = serde_json::Map::new();
                    if let Some(u) = &e.username {
                        entry.insert("username".into(), u.clone().into());
                    }
                    entry.insert("password".into(), REDACTED_PASSWORD.into());
                    (e.key.clone(), serde_json::Value::Object(entry))
                })
                .collect();
            return serde_json::json!({ "auths": auths }).to_string();
        }
        // whole, not line by line: a private key's body lines are secrets only after its header
        self.redactor.redact(text).into_owned()
    }

    fn record(&self, rec: ProbeRecord) {
        match self.bundle.lock() {
            Ok(mut b) => b.probes.push(rec),
            Err(p) => p.into_inner().probes.push(rec),
        }
    }
}

impl Probes for RecordingProbes {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, ProbeError> {
        let result = self.inner.read_file(path);
        let recorded = match &result {
            Ok(bytes) => Ok(self.sanitize_file(&String::from_utf8_lossy(bytes))),
            Err(e) => Err(self.redactor.redact(&e.to_string()).into_owned()),
        };
        self.record(ProbeRecord::File {
            path: path.to_string(),
            result: recorded.clone(),
        });
        recorded
            .map(String::into_bytes)
            .map_err(|message| ProbeError::Recorded { message })
    }

    fn open_input(&self, name: &str) -> Result<Input, ProbeError> {
        // Recording needs the whole text (redacted before it is stored), so it is read here.
        let read = self.inner.open_input(name).and_then(|input| {
            input.into_bytes().map_err(|e| ProbeError::Read {
                path: name.to_string(),
                message: e.to_string(),
            })
        });
        match read {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                // a manifest's Secret data is base64, out of the line redactor's sight
                let text = crate::parse::kube::mask_secret_data(&text, &self.redactor);
                // whole, not line by line: a private key's body lines are secrets only after its
                // header (the redactor keeps every line a line, so line numbers replay the same)
                let redacted = self.redactor.redact(&text).into_owned();
                self.record(ProbeRecord::Input {
                    name: name.to_string(),
                    result: Ok(redacted.clone()),
                });
                Ok(Input::Bytes(redacted.into_bytes()))
            }
            Err(e) => {
                self.record(ProbeRecord::Input {
                    name: name.to_string(),
                    result: Err(e.to_string()),
                });
                Err(e)
            }
        }
    }

    fn exec<'a>(&'a self, host: &'a str, destination: &'a str, command: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            let result = self.inner.exec(host, destination, command).await;
            self.record_exec(host, command, &result)
        })
    }

    fn reach<'a>(&'a self, host: &'a str, destination: &'a str) -> ExecFuture<'a> {
        Box::pin(async move {
            let result = self.inner.reach(host, destination).await;
            self.record_exec(host, REACH_COMMAND, &result)
        })
    }

    fn run_local<'a>(&'a self, argv: &'a [String]) -> ExecFuture<'a> {
        Box::pin(async move {
            let result = self.inner.run_local(argv).await;
            let recorded = self.recorded_output(&result);
            self.record(ProbeRecord::Local {
                argv: argv.to_vec(),
                result: recorded.clone(),
            });
            recorded
                .map(|r| r.into_output())
                .map_err(|message| ProbeError::Recorded { message })
        })
    }

    fn http<'a>(&'a self, request: &'a HttpRequest) -> HttpFuture<'a> {
        Box::pin(async move {
            let result = self.inner.http(request).await;
            let redact = |t: &str| self.redactor.redact(t).into_owned();
            // Request headers and bodies carry the credentials: only method and URL are kept.
            let recorded = match result {
                Ok(mut resp) => {
                    resp.body = redact(&resp.body);
                    for (name, value) in &mut resp.headers {
                        *value = redact(&format!("{name}: {value}"))
                            .split_once(": ")
                            .map(|(_, v)| v.to_string())
                            .unwrap_or_default();
                    }
                    Ok(resp)
                }
                Err(e) => Err(redact_probe_error(e, &redact)),
            };
            self.record(ProbeRecord::Http {
                request: redact(&request.describe()),
                result: recorded.clone(),
            });
            recorded.map_err(ProbeError::Net)
        })
    }

    fn tls<'a>(&'a self, probe: &'a TlsProbe) -> TlsFuture<'a> {
        Box::pin(async move {
            let result = self.inner.tls(probe).await;
            let recorded = result
                .map_err(|e| redact_probe_error(e, &|t| self.redactor.redact(t).into_owned()));
            self.record(ProbeRecord::Tls {
                probe: probe.describe(),
                result: recorded.clone(),
            });
            recorded.map_err(ProbeError::Net)
        })
    }
}

/// A network failure as it is recorded: its message redacted (URLs can carry credentials).
fn redact_probe_error(e: ProbeError, redact: &dyn Fn(&str) -> String) -> NetError {
    match e {
        ProbeError::Net(mut n) => {
            n.target = redact(&n.target);
            n.message = redact(&n.message);
            n
        }
        other => NetError {
            target: String::new(),
            step: http::NetStep::Request,
            message: redact(&other.to_string()),
        },
    }
}

/// What a recorded pull secret's passwords become.
const REDACTED_PASSWORD: &str = "[REDACTED]";

/// Answers from a recorded bundle; touches nothing.
pub struct ReplayProbes {
    bundle: Bundle,
    /// How many answers to each network request were used: the nth identical request gets the
    /// nth recorded answer (a retried token request may have been answered differently).
    used: Mutex<std::collections::HashMap<String, usize>>,
}

impl ReplayProbes {
    /// Replay this bundle.
    #[must_use]
    pub fn new(bundle: Bundle) -> Self {
        ReplayProbes {
            bundle,
            used: Mutex::default(),
        }
    }

    /// The next recorded answer for `key` among `answers` (the last one once they run out).
    fn next_answer<T: Clone>(&self, key: &str, answers: &[&T]) -> Option<T> {
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = used.entry(key.to_string()).or_insert(0);
        let answer = answers.get(*n).or(answers.last()).map(|a| (*a).clone());
        *n += 1;
        answer
    }
}

impl Probes for ReplayProbes {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, ProbeError> {
        for rec in &self.bundle.probes {
            if let ProbeRecord::File { path: p, result } = rec
                && p == path
            {
                return result.clone().map(String::into_bytes).map_err(|message| {
                    ProbeError::Read {
                        path: path.to_string(),
                        message,
                    }
                });
            }
        }
        Err(ProbeError::NotRecorded {
            what: format!("file '{path}'"),
        })
    }

    fn open_input(&self, name: &str) -> Result<Input, ProbeError> {
        for rec in &self.bundle.probes {
            let ProbeRecord::Input { name: n, result } = rec else {
                continue;
            };
            if n == name {
                return match result {
                    Ok(text) => Ok(Input::Bytes(text.clone().into_bytes())),
                    Err(message) => Err(ProbeError::Read {
                        path: name.to_string(),
                        message: message.clone(),
                    }),
                };
            }
        }
        Err(ProbeError::NotRecorded {
            what: format!("input '{name}'"),
        })
    }

    fn exec<'a>(
        &'a self,
        host: &'a str,
        _destination: &'a str,
        command: &'a str,
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            for rec in &self.bundle.probes {
                if let ProbeRecord::Exec {
                    host: h,
                    command: c,
                    result,
                } = rec
                    && h == host
                    && c == command
                {
                    return result
                        .clone()
                        .map(bundle::RecordedOutput::into_output)
                        .map_err(|message| ProbeError::Recorded { message });
                }
            }
            Err(ProbeError::NotRecorded {
                what: format!("'{command}' on {host}"),
            })
        })
    }

    fn http<'a>(&'a self, request: &'a HttpRequest) -> HttpFuture<'a> {
        Box::pin(async move {
            // Recorded requests were redacted; so is the key they are found by.
            let key = Redactor::default().redact(&request.describe()).into_owned();
            let answers: Vec<&Result<HttpResponse, NetError>> = self
                .bundle
                .probes
                .iter()
                .filter_map(|p| match p {
                    ProbeRecord::Http { request, result } if *request == key => Some(result),
                    _ => None,
                })
                .collect();
            match self.next_answer(&key, &answers) {
                Some(r) => r.map_err(ProbeError::Net),
                None => Err(ProbeError::NotRecorded { what: key }),
            }
        })
    }

    fn tls<'a>(&'a self, probe: &'a TlsProbe) -> TlsFuture<'a> {
        Box::pin(async move {
            let key = probe.describe();
            let answers: Vec<&Result<TlsReport, NetError>> = self
                .bundle
                .probes
                .iter()
                .filter_map(|p| match p {
                    ProbeRecord::Tls { probe, result } if *probe == key => Some(result),
                    _ => None,
                })
                .collect();
            match self.next_answer(&key, &answers) {
                Some(r) => r.map_err(ProbeError::Net),
                None => Err(ProbeError::NotRecorded { what: key }),
            }
        })
    }

    fn run_local<'a>(&'a self, argv: &'a [String]) -> ExecFuture<'a> {
        Box::pin(async move {
            for rec in &self.bundle.probes {
                if let ProbeRecord::Local { argv: a, result } = rec
                    && a.as_slice() == argv
                {
                    return result
                        .clone()
                        .map(bundle::RecordedOutput::into_output)
                        .map_err(|message| ProbeError::Recorded { message });
                }
            }
            Err(ProbeError::NotRecorded {
                what: format!("'{}' run here", argv.join(" ")),
            })
        })
    }
}
