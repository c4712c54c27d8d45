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

/// A readable input, streamed.
pub type InputStream = Box<dyn Read + Send>;

/// What checks may ask of the outside world.
pub trait Probes: Send + Sync {
    /// Open a text input: a path, or `-` for standard input.
    ///
    /// # Errors
    /// The path and the OS error, or a replay that did not record it.
    fn open_input(&self, name: &str) -> Result<InputStream, ProbeError>;
}

/// Reads the real files.
#[derive(Debug, Default)]
pub struct LiveProbes;

impl Probes for LiveProbes {
    fn open_input(&self, name: &str) -> Result<InputStream, ProbeError> {
        if name == "-" {
            return Ok(Box::new(std::io::stdin()));
        }
        std::fs::File::open(name)
            .map(|f| Box::new(f) as InputStream)
            .map_err(|e| ProbeError::Read {
                path: name.to_string(),
                message: e.to_string(),
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
    fn open_input(&self, name: &str) -> Result<InputStream, ProbeError> {
        // Recording needs the whole text (redacted before it is stored), so it is read here.
        let read = self.inner.open_input(name).and_then(|mut r| {
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes).map_err(|e| ProbeError::Read {
                path: name.to_string(),
                message: e.to_string(),
            })?;
            Ok(bytes)
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
                Ok(Box::new(std::io::Cursor::new(redacted.into_bytes())))
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
    fn open_input(&self, name: &str) -> Result<InputStream, ProbeError> {
        for rec in &self.bundle.probes {
            let ProbeRecord::Input { name: n, result } = rec;
            if n == name {
                return match result {
                    Ok(text) => Ok(Box::new(std::io::Cursor::new(text.clone().into_bytes()))),
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
