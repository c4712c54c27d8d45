//! The bundle: every probe answer of a run, recorded (`--record FILE`) so the run can be replayed
//! (`--replay FILE`) with no network and no files. Versioned; secrets are redacted before they
//! are recorded.
//!
//! Format (JSON): `{"format": "pulldoctor-bundle", "version": 1, "tool": {...}, "recorded_at":
//! RFC 3339, "probes": [{"kind": "input", "name": "...", "ok": "<text>"} | {..., "error": "..."}]}`.

use serde::{Deserialize, Serialize};

/// The only format name a bundle may carry.
pub const FORMAT: &str = "pulldoctor-bundle";
/// The bundle version this build writes and reads.
pub const VERSION: u32 = 1;

/// The plan-shaping arguments of a recorded run (paths as given; the files themselves are in
/// the bundle's records).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanArgs {
    /// `--ci-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_file: Option<String>,
    /// `--stuck-banner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_banner: Option<String>,
    /// `--docker-socket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_socket: Option<String>,
    /// `--manifests`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    /// `--kube-namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_namespace: Option<String>,
}

/// One recorded probe answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeRecord {
    /// A text input (file or standard input), redacted.
    Input {
        /// The name it was opened by.
        name: String,
        /// Its text, or the error that opening it gave.
        #[serde(flatten, with = "result_repr")]
        result: Result<String, String>,
    },
    /// A command run on a host over SSH: its output (redacted), or the SSH error.
    Exec {
        /// The inventory host.
        host: String,
        /// The command line.
        command: String,
        /// What came back.
        #[serde(flatten, with = "result_repr")]
        result: Result<RecordedOutput, String>,
    },
    /// A local file read for what it says (a pull secret, a CA, a manifest), not classified
    /// as a log; pull secrets are kept with masked passwords.
    File {
        /// The path as given.
        path: String,
        /// The text (redacted) or the error.
        #[serde(flatten, with = "result_repr")]
        result: Result<String, String>,
    },
    /// An HTTP request (method and URL only: headers and body carry credentials) and its answer
    /// (headers and body redacted), or the failure with its step.
    Http {
        /// `METHOD URL`, redacted.
        request: String,
        /// The answer or the failure.
        #[serde(flatten, with = "result_repr")]
        result: Result<super::http::HttpResponse, super::http::NetError>,
    },
    /// A program run on this machine (`kubectl`): its output (redacted, Secret values masked), or
    /// why it could not run.
    Local {
        /// The program and its arguments.
        argv: Vec<String>,
        /// What came back.
        #[serde(flatten, with = "result_repr")]
        result: Result<RecordedOutput, String>,
    },
    /// A TLS inspection and what answered.
    Tls {
        /// Address, name asked and trust used.
        probe: String,
        /// What answered, or the failure.
        #[serde(flatten, with = "result_repr")]
        result: Result<super::http::TlsReport, super::http::NetError>,
    },
}

/// A command's output as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedOutput {
    /// Exit status.
    pub exit_status: Option<u32>,
    /// Standard output, redacted.
    pub stdout: String,
    /// Standard error, redacted.
    pub stderr: String,
    /// Wall time.
    pub duration_ms: u64,
}

impl RecordedOutput {
    /// Back into the probe's answer.
    #[must_use]
    pub fn into_output(self) -> crate::ssh::CommandOutput {
        crate::ssh::CommandOutput {
            exit_status: self.exit_status,
            stdout: self.stdout.into_bytes(),
            stderr: self.stderr.into_bytes(),
            duration_ms: self.duration_ms,
        }
    }
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always `pulldoctor-bundle`.
    pub format: String,
    /// The format version.
    pub version: u32,
    /// The pulldoctor that recorded it.
    pub tool: String,
    /// When recording started.
    pub recorded_at: String,
    /// The inventory the run used (redacted), so a replay plans the same checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// The command-line arguments that shape the plan (`--ci-file`, `--manifests`, …), so a
    /// replay plans the same checks without them being given again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_args: Option<PlanArgs>,
    /// The registry checks' targets (inventory and command line merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<crate::check::registry::RegistryPlan>,
    /// Every probe answer, in the order asked.
    pub probes: Vec<ProbeRecord>,
}

impl Bundle {
    /// An empty bundle for this build.
    #[must_use]
    pub fn new() -> Self {
        Bundle {
            format: FORMAT.to_string(),
            version: VERSION,
            tool: format!("pulldoctor {}", env!("CARGO_PKG_VERSION")),
            recorded_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            inventory: None,
            registry: None,
            plan_args: None,
            probes: Vec::new(),
        }
    }

    /// Read and check a bundle.
    ///
    /// # Errors
    /// Not JSON (with line and column), not a bundle, or a version this build cannot read.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let b: Bundle =
            serde_json::from_str(text).map_err(|e| format!("not a pulldoctor bundle: {e}"))?;
        if b.format != FORMAT {
            return Err(format!(
                "not a pulldoctor bundle (format is '{}')",
                b.format
            ));
        }
        if b.version != VERSION {
            return Err(format!(
                "bundle version {} is not supported (this build reads version {VERSION})",
                b.version
            ));
        }
        Ok(b)
    }

    /// The names of the inputs it recorded, in order.
    #[must_use]
    pub fn input_names(&self) -> Vec<String> {
        self.probes
            .iter()
            .filter_map(|p| match p {
                ProbeRecord::Input { name, .. } => Some(name.clone()),
                ProbeRecord::Exec { .. }
                | ProbeRecord::Local { .. }
                | ProbeRecord::File { .. }
                | ProbeRecord::Http { .. }
                | ProbeRecord::Tls { .. } => None,
            })
            .collect()
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

/// `Result<T, E>` as `{"ok": …}` / `{"error": …}` (inputs: text or a message; commands:
/// [`RecordedOutput`] or a message; network probes: the answer or a `NetError`).
mod result_repr {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Repr<T, E> {
        #[serde(skip_serializing_if = "Option::is_none", default = "Option::default")]
        ok: Option<T>,
        #[serde(skip_serializing_if = "Option::is_none", default = "Option::default")]
        error: Option<E>,
    }

    pub fn serialize<T: Serialize + Clone, E: Serialize + Clone, S: Serializer>(
        r: &Result<T, E>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match r {
            Ok(v) => Repr {
                ok: Some(v.clone()),
                error: None,
            },
            Err(e) => Repr {
                ok: None,
                error: Some(e.clone()),
            },
        }
        .serialize(s)
    }

    pub fn deserialize<'de, T: DeserializeOwned, E: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<T, E>, D::Error> {
        let r = Repr::<T, E>::deserialize(d)?;
        match (r.ok, r.error) {
            (Some(v), None) => Ok(Ok(v)),
            (None, Some(e)) => Ok(Err(e)),
            _ => Err(serde::de::Error::custom(
                "a probe record needs exactly one of 'ok' and 'error'",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle survives a JSON round trip; wrong format and version are refused by name.
    #[test]
    fn round_trip_and_version() {
        let mut b = Bundle::new();
        b.probes.push(ProbeRecord::Input {
            name: "a.log".into(),
            result: Ok("x\n".into()),
        });
        b.probes.push(ProbeRecord::Input {
            name: "b.log".into(),
            result: Err("gone".into()),
        });
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(Bundle::from_json(&json).unwrap(), b);
        let bad = json.replace("\"version\":1", "\"version\":9");
        assert!(Bundle::from_json(&bad).unwrap_err().contains("version 9"));
        assert!(Bundle::from_json("{").unwrap_err().contains("line 1"));
    }
}
