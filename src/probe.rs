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
}

/// Reads the real files.
#[derive(Debug, Default)]
pub struct LiveProbes;

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
            let ProbeRecord::Input { name: n, result } = rec;
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
}
