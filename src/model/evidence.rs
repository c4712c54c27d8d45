//! Evidence: the verbatim lines (or probe results) that prove a finding, and where they came from.

use serde::{Deserialize, Serialize};

/// Where a piece of evidence was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvidenceSource {
    /// A line of an input file (or `-` for standard input).
    File {
        /// The path as given on the command line.
        path: String,
        /// 1-based line number.
        line: u64,
    },
    /// Output of a command run on a host.
    Command {
        /// The host the command ran on (`local` for this machine).
        host: String,
        /// The command line, secrets redacted.
        command: String,
    },
    /// A network probe made by pulldoctor itself.
    Probe {
        /// What was asked of whom, e.g. `GET http://10.0.0.5:5050/v2/`.
        request: String,
    },
}

/// One verbatim line (secrets redacted) that supports a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Where it came from.
    pub source: EvidenceSource,
    /// When the line says it happened (as written in the input), if it says.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time: Option<String>,
    /// The host or node the line names, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host: Option<String>,
    /// The text, verbatim except for redacted secrets and stripped terminal escapes.
    pub text: String,
    /// Byte range in `text` of the part that matched the signature, for highlighting.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub matched: Option<[usize; 2]>,
}

impl Evidence {
    /// Evidence with no time, host or highlight: what a check read or was told itself.
    #[must_use]
    pub fn new(source: EvidenceSource, text: impl Into<String>) -> Self {
        Evidence {
            source,
            time: None,
            host: None,
            text: text.into(),
            matched: None,
        }
    }

    /// Line `line` (1-based) of the input file `path`.
    #[must_use]
    pub fn file_line(path: impl Into<String>, line: u64, text: impl Into<String>) -> Self {
        Self::new(
            EvidenceSource::File {
                path: path.into(),
                line,
            },
            text,
        )
    }
}
