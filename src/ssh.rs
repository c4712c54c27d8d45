//! SSH to every host, the way OpenSSH would: `~/.ssh/config` aliases, ssh-agent or key files,
//! host keys verified against known_hosts (unknown refused unless `--accept-new-host-keys`,
//! changed always refused), `ProxyJump` chains of any length.
//!
//! One session per host, opened on first use and shared by all of that host's commands; a host
//! that cannot be reached fails once and every later command on it gets the same error at once,
//! so a dead host costs one connect timeout, not one per check. A session that closes (the host
//! restarted sshd) is opened again on next use, with its host key checked again. A global and a per-host limit
//! bound the commands running at once.

pub mod config;

use config::SshConfig;
use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// Largest stdout or stderr kept from one command.
const MAX_OUTPUT: usize = 16 << 20;

/// Which step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Reading the destination or the config.
    Config,
    /// TCP connect (or the jump host's forwarding).
    Connect,
    /// Host key verification.
    HostKey,
    /// Authentication.
    Auth,
    /// Running the command.
    Command,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Config => "config",
            Step::Connect => "connect",
            Step::HostKey => "host key",
            Step::Auth => "authentication",
            Step::Command => "command",
        })
    }
}

/// An SSH failure: which host, which step, what happened.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{host}: {step}: {message}")]
pub struct SshError {
    /// The destination as given (alias or `user@host:port`).
    pub host: String,
    /// The step that failed.
    pub step: Step,
    /// What happened, for a person.
    pub message: String,
}

/// What a command returned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommandOutput {
    /// Exit status (`None` if the server sent none, e.g. killed by a signal).
    pub exit_status: Option<u32>,
    /// Standard output (at most 16 MiB).
    pub stdout: Vec<u8>,
    /// Standard error (at most 16 MiB).
    pub stderr: Vec<u8>,
    /// Wall time.
    pub duration_ms: u64,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Parsed `~/.ssh/config` (or `-F`).
    pub config: SshConfig,
    /// known_hosts files to check (OpenSSH's default: `~/.ssh/known_hosts`).
    pub known_hosts: Vec<PathBuf>,
    /// Accept and record unknown host keys (never changed ones).
    pub accept_new_host_keys: bool,
    /// Key files tried when the config names none.
    pub default_identities: Vec<PathBuf>,
    /// Try ssh-agent (`SSH_AUTH_SOCK`) first.
    pub use_agent: bool,
    /// Login name when neither the destination nor the config gives one.
    pub default_user: String,
    /// TCP connect + handshake + auth, per hop.
    pub connect_timeout: Duration,
    /// One command.
    pub command_timeout: Duration,
    /// Commands at once, all hosts.
    pub global_limit: usize,
    /// Commands at once on one host (channels of one session).
    pub per_host_limit: usize,
    /// Handshakes at once (key exchange and authentication cost CPU on both ends; like
    /// OpenSSH's `MaxStartups`, too many at once only makes them all time out).
    pub connect_limit: usize,
}

impl SshOptions {
    /// OpenSSH's defaults for the current user.
    #[must_use]
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let ssh = home.join(".ssh");
        SshOptions {
            config: SshConfig::load(&ssh.join("config")).unwrap_or_default(),
            known_hosts: vec![ssh.join("known_hosts")],
            accept_new_host_keys: false,
            default_identities: ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|k| ssh.join(k))
                .collect(),
            use_agent: std::env::var_os("SSH_AUTH_SOCK").is_some(),
            default_user: std::env::var("USER").unwrap_or_else(|_| "root".to_string()),
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            global_limit: 64,
            per_host_limit: 4,
            connect_limit: 16,
        }
    }
}

/// Where to connect, after the config is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    user: String,
    host: String,
    port: u16,
    identities: Vec<PathBuf>,
    jumps: Vec<String>,
    known_hosts: Vec<PathBuf>,
    connect_timeout: Duration,
}

/// Split `[user@]host[:port]` (or `ssh://user@host:port`); IPv6 in brackets.
fn split_destination(dest: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let d = dest.strip_prefix("ssh://").unwrap_or(dest);
    let (user, rest) = match d.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, d),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| format!("'{dest}': unclosed '['"))?;
        let port = after
            .strip_prefix(':')
            .map(str::parse::<u16>)
            .transpose()
            .map_err(|_| format!("'{dest}': bad port"))?;
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (
                h.to_string(),
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("'{dest}': bad port '{p}'"))?,
                ),
            ),
            _ => (rest.to_string(), None),
        }
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    if !valid {
        return Err(format!("'{dest}' is not a host name or address"));
    }
    Ok((user, host, port))
}

/// What the host key check concluded, kept for the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyVerdict {
    Unknown {
        fingerprint: String,
    },
    Changed {
        file: PathBuf,
        line: usize,
        fingerprint: String,
    },
    Unreadable {
        message: String,
    },
}

/// The russh handler: host key verification against known_hosts.
struct Verifier {
    host: String,
    port: u16,
    known_hosts: Vec<PathBuf>,
    accept_new: bool,
    verdict: Arc<Mutex<Option<KeyVerdict>>>,
}

impl Verifier {
    fn check(&self, key: &PublicKey) -> Result<(), KeyVerdict> {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        for file in &self.known_hosts {
            match russh::keys::check_known_hosts_path(&self.host, self.port, key, file) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(russh::keys::Error::KeyChanged { line }) => {
                    return Err(KeyVerdict::Changed {
                        file: file.clone(),
                        line,
                        fingerprint,
                    });
                }
                // a missing file is simply no entry
                Err(russh::keys::Error::IO(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(KeyVerdict::Unreadable {
                        message: format!("{}: {e}", file.display()),
                    });
                }
            }
        }
        if self.accept_new {
            let file = self
                .known_hosts
                .first()
                .cloned()
                .unwrap_or_else(|| PathBuf::from("known_hosts"));
            return russh::keys::known_hosts::learn_known_hosts_path(
                &self.host, self.port, key, &file,
            )
            .map_err(|e| KeyVerdict::Unreadable {
                message: format!("cannot record the new key in {}: {e}", file.display()),
            });
        }
        Err(KeyVerdict::Unknown { fingerprint })
    }
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let result = match server_key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => self.check(key),
            russh::keys::PublicKeyOrCertificate::Certificate(_) => Err(KeyVerdict::Unreadable {
                message: "host certificates are not supported; pin the host key in known_hosts"
                    .into(),
            }),
        };
        match result {
            Ok(()) => Ok(true),
            Err(v) => {
                if let Ok(mut slot) = self.verdict.lock() {
                    *slot = Some(v);
                }
                Ok(false)
            }
        }
    }
}

/// An authenticated session, keeping its jump host's session alive.
struct Session {
    handle: Handle<Verifier>,
    _jump: Option<Arc<Session>>,
}

type SessionCell = Arc<OnceCell<Result<Arc<Session>, SshError>>>;

/// Sessions to many hosts, opened on demand and reused.
pub struct SshPool {
    opts: SshOptions,
    sessions: Mutex<HashMap<String, SessionCell>>,
    host_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    global: Semaphore,
    connecting: Semaphore,
}

impl SshPool {
    /// A pool with these options.
    #[must_use]
    pub fn new(opts: SshOptions) -> Self {
        let global = Semaphore::new(opts.global_limit.max(1));
        let connecting = Semaphore::new(opts.connect_limit.max(1));
        SshPool {
            connecting,
            opts,
            sessions: Mutex::new(HashMap::new()),
            host_limits: Mutex::new(HashMap::new()),
            global,
        }
    }

    /// Run `command` on `destination` (an alias from the SSH config or `[user@]host[:port]`).
    ///
    /// # Errors
    /// Which host, which step, what happened; the same error for every command on a host that
    /// could not be reached.
    pub async fn exec(&self, destination: &str, command: &str) -> Result<CommandOutput, SshError> {
        let session = self.session(destination).await?;
        let host_limit = self.host_limit(destination);
        let _global = self
            .global
            .acquire()
            .await
            .map_err(|e| err(destination, Step::Command, e.to_string()))?;
        let _host = host_limit
            .acquire()
            .await
            .map_err(|e| err(destination, Step::Command, e.to_string()))?;
        let started = Instant::now();
        let run = async {
            let mut channel = session.handle.channel_open_session().await.map_err(|e| {
                err(
                    destination,
                    Step::Command,
                    format!("cannot open a channel: {e}"),
                )
            })?;
            channel
                .exec(true, command)
                .await
                .map_err(|e| err(destination, Step::Command, format!("exec: {e}")))?;
            let (mut stdout, mut stderr, mut exit_status) = (Vec::new(), Vec::new(), None);
            let mut closed = false;
            // the exit status can arrive before the last data: read until the channel closes
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => append(&mut stdout, &data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => append(&mut stderr, &data),
                    ChannelMsg::ExitStatus { exit_status: s } => exit_status = Some(s),
                    ChannelMsg::Close => closed = true,
                    _ => {}
                }
            }
            // the server closes a channel whose command ended; without that close the connection
            // went away under the command, and what it printed so far is not the whole answer
            if !closed {
                return Err(err(
                    destination,
                    Step::Command,
                    format!(
                        "the connection dropped before the command finished ({} bytes of output read)",
                        stdout.len()
                    ),
                ));
            }
            Ok::<_, SshError>((stdout, stderr, exit_status))
        };
        let (stdout, stderr, exit_status) = tokio::time::timeout(self.opts.command_timeout, run)
            .await
            .map_err(|_| {
                err(
                    destination,
                    Step::Command,
                    format!("no answer within {} s", self.opts.command_timeout.as_secs()),
                )
            })??;
        Ok(CommandOutput {
            exit_status,
            stdout,
            stderr,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Open (once) or reuse the session to a destination.
    ///
    /// # Errors
    /// The connect, host key or auth failure, cached for the host.
    pub async fn connect(&self, destination: &str) -> Result<(), SshError> {
        self.session(destination).await.map(|_| ())
    }

    fn host_limit(&self, destination: &str) -> Arc<Semaphore> {
        let mut limits = self
            .host_limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        limits
            .entry(destination.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.opts.per_host_limit.max(1))))
            .clone()
    }

    async fn session(&self, destination: &str) -> Result<Arc<Session>, SshError> {
        self.session_at(destination, 0).await
    }

    fn session_at<'a>(
        &'a self,
        destination: &'a str,
        depth: usize,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Arc<Session>, SshError>> + Send + 'a>,
    > {
        // boxed: a ProxyJump chain recurses through this function
        Box::pin(async move {
            let cell = {
                let mut sessions = self
                    .sessions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let entry = sessions.entry(destination.to_string()).or_default();
                // a session that has since closed (sshd restarted, the link dropped) is opened
                // again, host key checked again; a failure stays cached, so a dead host still
                // costs one timeout
                if let Some(Ok(open)) = entry.get()
                    && open.handle.is_closed()
                {
                    *entry = SessionCell::default();
                }
                entry.clone()
            };
            cell.get_or_init(|| self.open(destination, depth))
                .await
                .clone()
        })
    }

    fn resolve(&self, destination: &str) -> Result<Resolved, SshError> {
        let (user, alias, port) =
            split_destination(destination).map_err(|m| err(destination, Step::Config, m))?;
        let hc = self.opts.config.host(&alias);
        Ok(Resolved {
            user: user
                .or(hc.user)
                .unwrap_or_else(|| self.opts.default_user.clone()),
            host: hc.hostname.unwrap_or_else(|| alias.clone()),
            port: port.or(hc.port).unwrap_or(22),
            identities: if hc.identity_files.is_empty() {
                self.opts.default_identities.clone()
            } else {
                hc.identity_files
            },
            jumps: hc.proxy_jump,
            known_hosts: if hc.known_hosts.is_empty() {
                self.opts.known_hosts.clone()
            } else {
                hc.known_hosts
            },
            connect_timeout: hc
                .connect_timeout
                .map_or(self.opts.connect_timeout, Duration::from_secs),
        })
    }

    /// Refuse a ProxyJump chain that comes back to a host already on it (it would wait on
    /// itself forever).
    fn check_jump_loop(&self, destination: &str, path: &mut Vec<String>) -> Result<(), SshError> {
        if path.iter().any(|p| p == destination) || path.len() > 16 {
            path.push(destination.to_string());
            return Err(err(
                destination,
                Step::Config,
                format!("ProxyJump loop: {}", path.join(" -> ")),
            ));
        }
        path.push(destination.to_string());
        for jump in self.resolve(destination)?.jumps {
            self.check_jump_loop(&jump, path)?;
        }
        path.pop();
        Ok(())
    }

    /// Open a session to `destination`, through its ProxyJump chain if the config gives one.
    async fn open(&self, destination: &str, depth: usize) -> Result<Arc<Session>, SshError> {
        if depth == 0 {
            self.check_jump_loop(destination, &mut Vec::new())?;
        }
        let r = self.resolve(destination)?;
        let jump = match r.jumps.split_first() {
            None => None,
            // `ProxyJump a,b,c`: a is reached as the config says; b through a; c through b
            Some((first, rest)) => {
                let mut current = self
                    .session_at(first, depth + 1)
                    .await
                    .map_err(|e| err(destination, Step::Connect, format!("via jump host {e}")))?;
                for hop in rest {
                    current = self
                        .connect_over(Some(current), hop, depth + 1)
                        .await
                        .map_err(|e| {
                            err(destination, Step::Connect, format!("via jump host {e}"))
                        })?;
                }
                Some(current)
            }
        };
        self.connect_over(jump, destination, depth).await
    }

    /// Connect, verify the host key and authenticate, directly or through an open jump session.
    async fn connect_over(
        &self,
        jump: Option<Arc<Session>>,
        destination: &str,
        depth: usize,
    ) -> Result<Arc<Session>, SshError> {
        if depth > 16 {
            return Err(err(
                destination,
                Step::Config,
                "ProxyJump chain longer than 16 hops (a loop?)".into(),
            ));
        }
        let r = self.resolve(destination)?;
        let verdict = Arc::new(Mutex::new(None));
        let handler = Verifier {
            host: r.host.clone(),
            port: r.port,
            known_hosts: r.known_hosts.clone(),
            accept_new: self.opts.accept_new_host_keys,
            verdict: verdict.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(300)),
            keepalive_interval: Some(Duration::from_secs(30)),
            ..Default::default()
        });
        let connect = async {
            let handle = match &jump {
                None => client::connect(config, (r.host.as_str(), r.port), handler).await,
                Some(j) => {
                    let channel = j
                        .handle
                        .channel_open_direct_tcpip(
                            r.host.clone(),
                            u32::from(r.port),
                            "127.0.0.1",
                            0,
                        )
                        .await
                        .map_err(|e| {
                            err(
                                destination,
                                Step::Connect,
                                format!("the jump host could not open {}:{}: {e}", r.host, r.port),
                            )
                        })?;
                    client::connect_stream(config, channel.into_stream(), handler).await
                }
            };
            let mut handle = handle.map_err(|e| connect_error(destination, &r, &verdict, &e))?;
            self.authenticate(&mut handle, destination, &r).await?;
            Ok::<_, SshError>(handle)
        };
        // the timeout counts from our turn to connect, not from the queue
        let _turn = self
            .connecting
            .acquire()
            .await
            .map_err(|e| err(destination, Step::Connect, e.to_string()))?;
        let handle = tokio::time::timeout(r.connect_timeout, connect)
            .await
            .map_err(|_| {
                err(
                    destination,
                    Step::Connect,
                    format!(
                        "{}:{} did not answer within {} s",
                        r.host,
                        r.port,
                        r.connect_timeout.as_secs()
                    ),
                )
            })??;
        Ok(Arc::new(Session {
            handle,
            _jump: jump,
        }))
    }

    async fn authenticate(
        &self,
        handle: &mut Handle<Verifier>,
        destination: &str,
        r: &Resolved,
    ) -> Result<(), SshError> {
        let mut tried = Vec::new();
        if self.opts.use_agent
            && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
        {
            let identities = agent.request_identities().await.unwrap_or_default();
            for id in identities {
                let key = id.public_key().into_owned();
                let hash = rsa_hash(handle, &key).await;
                if let Ok(res) = handle
                    .authenticate_publickey_with(r.user.clone(), key.clone(), hash, &mut agent)
                    .await
                    && res.success()
                {
                    return Ok(());
                }
                tried.push("an ssh-agent key".to_string());
            }
        }
        for path in &r.identities {
            if !path.exists() {
                continue;
            }
            let key = match russh::keys::load_secret_key(path, None) {
                Ok(k) => k,
                Err(e) => {
                    tried.push(format!("{} (unusable: {e})", path.display()));
                    continue;
                }
            };
            let hash = rsa_hash(handle, key.public_key()).await;
            let res = handle
                .authenticate_publickey(
                    r.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|e| err(destination, Step::Auth, e.to_string()))?;
            if res.success() {
                return Ok(());
            }
            tried.push(path.display().to_string());
        }
        let what = if tried.is_empty() {
            "no key found (ssh-agent or IdentityFile)".to_string()
        } else {
            format!("tried {}", tried.join(", "))
        };
        Err(err(
            destination,
            Step::Auth,
            format!("{}@{}:{} refused every key: {what}", r.user, r.host, r.port),
        ))
    }
}

async fn rsa_hash(handle: &Handle<Verifier>, key: &PublicKey) -> Option<HashAlg> {
    if key.algorithm().is_rsa() {
        handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten()
    } else {
        None
    }
}

fn append(buf: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_OUTPUT.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

fn err(host: &str, step: Step, message: String) -> SshError {
    SshError {
        host: host.to_string(),
        step,
        message,
    }
}

/// Turn a connect failure into the message a person needs: a refused host key says which file
/// and line (changed) or how to accept it (unknown).
fn connect_error(
    destination: &str,
    r: &Resolved,
    verdict: &Mutex<Option<KeyVerdict>>,
    e: &russh::Error,
) -> SshError {
    let v = verdict.lock().ok().and_then(|mut g| g.take());
    match v {
        Some(KeyVerdict::Changed {
            file,
            line,
            fingerprint,
        }) => err(
            destination,
            Step::HostKey,
            format!(
                "REFUSED: the host key of {}:{} CHANGED ({fingerprint}) and does not match {} line {line}. This can be an attack; if the host was really reinstalled, remove that line (ssh-keygen -R {}) and verify the new key out of band.",
                r.host,
                r.port,
                file.display(),
                r.host
            ),
        ),
        Some(KeyVerdict::Unknown { fingerprint }) => err(
            destination,
            Step::HostKey,
            format!(
                "refused: {}:{} is not in known_hosts (key {fingerprint}); verify it and add it, or run with --accept-new-host-keys",
                r.host, r.port
            ),
        ),
        Some(KeyVerdict::Unreadable { message }) => err(destination, Step::HostKey, message),
        None => err(
            destination,
            Step::Connect,
            format!("{}:{}: {e}", r.host, r.port),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Destinations in every form OpenSSH accepts.
    #[test]
    fn destinations() {
        assert_eq!(
            split_destination("admin@10.0.0.9:2222").unwrap(),
            (Some("admin".into()), "10.0.0.9".into(), Some(2222))
        );
        assert_eq!(
            split_destination("k8s-n1").unwrap(),
            (None, "k8s-n1".into(), None)
        );
        assert_eq!(
            split_destination("ssh://u@[fe80::1]:22").unwrap(),
            (Some("u".into()), "fe80::1".into(), Some(22))
        );
        assert!(split_destination("a;rm -rf /").is_err());
        assert!(split_destination("h:port").is_err());
    }
}
