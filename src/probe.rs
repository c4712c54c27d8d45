//! Probes: the only I/O seam. A check asks a [`Probes`] implementation for what it needs; the live
//! implementation reads files (and, as issues land, runs SSH commands and network probes), the
//! recording one also writes every answer into a [`bundle::Bundle`], and the replaying one answers
//! from a bundle with no I/O at all.

pub mod bundle;

use crate::redact::Redactor;
use bundle::{Bundle, ProbeRecord};
use std::io::Read;
use std::sync::{Arc, Mutex};

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

    /// Run `command` on inventory host `host`, reached at SSH `destination`.
    fn exec<'a>(&'a self, host: &'a str, destination: &'a str, command: &'a str) -> ExecFuture<'a>;
}

/// What [`Probes::exec`] returns.
pub type ExecFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<CommandOutput, ProbeError>> + Send + 'a>,
>;

pub use crate::ssh::CommandOutput;

/// Reads the real files and runs commands over SSH.
#[derive(Default)]
pub struct LiveProbes {
    ssh: Option<Arc<crate::ssh::SshPool>>,
}

impl LiveProbes {
    /// Live probes that reach hosts through `ssh` (without it, every `exec` says SSH is not set up).
    #[must_use]
    pub fn new(ssh: Option<Arc<crate::ssh::SshPool>>) -> Self {
        LiveProbes { ssh }
    }
}

impl Probes for LiveProbes {
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
            let Some(pool) = &self.ssh else {
                return Err(ProbeError::Ssh(crate::ssh::SshError {
                    host: host.to_string(),
                    step: crate::ssh::Step::Config,
                    message: "SSH is not set up for this run".to_string(),
                }));
            };
            pool.exec(destination, command).await.map_err(|mut e| {
                // name the host as the inventory does
                e.host = host.to_string();
                ProbeError::Ssh(e)
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

    /// The bundle recorded so far.
    #[must_use]
    pub fn bundle(&self) -> Bundle {
        self.bundle
            .lock()
            .map(|b| b.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn record(&self, rec: ProbeRecord) {
        match self.bundle.lock() {
            Ok(mut b) => b.probes.push(rec),
            Err(p) => p.into_inner().probes.push(rec),
        }
    }
}

impl Probes for RecordingProbes {
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
                let redacted: String = text
                    .split_inclusive('\n')
                    .map(|l| self.redactor.redact(l).into_owned())
                    .collect();
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
            let recorded = match &result {
                Ok(out) => Ok(bundle::RecordedOutput {
                    exit_status: out.exit_status,
                    stdout: self
                        .redactor
                        .redact(&String::from_utf8_lossy(&out.stdout))
                        .into_owned(),
                    stderr: self
                        .redactor
                        .redact(&String::from_utf8_lossy(&out.stderr))
                        .into_owned(),
                    duration_ms: out.duration_ms,
                }),
                Err(e) => Err(self.redactor.redact(&e.to_string()).into_owned()),
            };
            self.record(ProbeRecord::Exec {
                host: host.to_string(),
                command: command.to_string(),
                result: recorded.clone(),
            });
            // what the run goes on with is what was recorded, so a replay gives the same report
            recorded
                .map(|r| r.into_output())
                .map_err(|message| ProbeError::Recorded { message })
        })
    }
}

/// Answers from a recorded bundle; touches nothing.
pub struct ReplayProbes {
    bundle: Bundle,
}

impl ReplayProbes {
    /// Replay this bundle.
    #[must_use]
    pub fn new(bundle: Bundle) -> Self {
        ReplayProbes { bundle }
    }
}

impl Probes for ReplayProbes {
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
}
