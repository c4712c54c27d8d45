//! Parsers for the text people paste and the files pulldoctor reads: containerd/kubelet journal
//! lines, `kubectl` events, GitLab job logs and the "job is stuck" banner, docker CLI output.
//!
//! The unit they share is the [`Record`]: one logical line with its verbatim text, a normalised
//! form for matching, and what its prefix said about time and host. [`extract`] then pulls image
//! references, registries, dialled endpoints and the error chain out of a record.

pub mod banner;
pub mod containerd;
pub mod dockercfg;
pub mod events;
pub mod extract;
pub mod gitlab_ci;
pub mod image_ref;
pub mod iptables;
pub mod journal;
pub mod jwt;
pub mod kube;
pub mod text;
pub mod www_auth;

pub use extract::{Extracted, extract};

/// What kind of JSON error it was, without serde_json's message: that message can quote the
/// input, which may hold a password or a token.
pub(crate) fn json_error_category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// How a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    /// logrus text (`time="…" level=… msg="…"`), as containerd writes it.
    Logrus,
    /// `journalctl -o json` (one JSON object per line).
    JournalJson,
    /// klog (`E0301 10:00:00.123456  1234 file.go:12] …`), as kubelet writes it.
    Klog,
    /// A `kubectl describe` Events row or a `kubectl get events` row.
    Event,
    /// Anything else: docker CLI output, job log lines, free text.
    Plain,
}

/// One logical line of input, ready to classify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in the input.
    pub line: u64,
    /// The line as shown to people: terminal escapes and job-log markers removed, otherwise
    /// verbatim (secrets are redacted later, before anything leaves).
    pub display: String,
    /// The text to match: the message with its error fields, quotes unescaped.
    pub text: String,
    /// The time the line's prefix or fields gave, as written.
    pub time: Option<String>,
    /// The host the line's prefix named (syslog hostname, journald `_HOSTNAME`, event source).
    pub host: Option<String>,
    /// How it was written.
    pub format: RecordFormat,
    /// How many times the source says it happened (`kubectl` events: `(x4 over 5m)`), at least 1.
    pub repeat: u64,
}

/// Per-input state carried from line to line: what earlier lines said about later ones
/// (`kubectl describe` headers name the node and pod once, above the Events block).
#[derive(Debug, Clone, Default)]
pub struct InputContext {
    /// `Node:` of a `kubectl describe pod` header.
    pub node: Option<String>,
    /// `Name:` of a `kubectl describe pod` header.
    pub pod: Option<String>,
}

impl InputContext {
    /// Remember what a header line says. Returns true if the line was a header.
    pub fn observe_header(&mut self, line: &str) -> bool {
        if let Some(rest) = line.strip_prefix("Node:") {
            // `Node:         k8s-n1/172.100.100.11`
            let node = rest.trim().split('/').next().unwrap_or("").trim();
            if !node.is_empty() && node != "<none>" {
                self.node = Some(node.to_string());
            }
            return true;
        }
        if let Some(rest) = line.strip_prefix("Name:") {
            let pod = rest.trim();
            if !pod.is_empty() {
                self.pod = Some(pod.to_string());
            }
            return true;
        }
        false
    }
}

/// Turn one raw input line into a record, detecting its format. Never fails: what cannot be
/// parsed is kept as plain text.
#[must_use]
pub fn record(raw: &str, line: u64, ctx: &InputContext) -> Record {
    let cleaned = text::clean_line(raw);
    let mut rec = journal::parse_line(&cleaned, line)
        .or_else(|| events::parse_row(&cleaned, line))
        .unwrap_or_else(|| Record {
            line,
            text: cleaned.clone(),
            display: cleaned.clone(),
            time: text::leading_timestamp(&cleaned),
            host: None,
            format: RecordFormat::Plain,
            repeat: 1,
        });
    if rec.host.is_none() {
        rec.host.clone_from(&ctx.node);
    }
    rec
}
