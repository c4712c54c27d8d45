//! The Docker Engine's own account of its API range: `GET /version` (no version in the path, so
//! it never fails the version check) over the daemon's unix socket here, or over SSH on a runner
//! host (`curl --unix-socket`, falling back to `docker version --format '{{json .}}'`). And
//! `GET /v<api>/version` to ask the daemon whether it takes one client version: a refusal comes
//! back as 400 with JSON `{"message": …}`, or plain text for versions below 1.24
//! (DOMAIN.md §1.3).

use super::Probes;
use super::http::HttpRequest;
use crate::check::api_skew::Daemon;
use serde::Deserialize;
use std::time::Duration;

/// The default socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A daemon probe that failed: where, which step, what came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target}: {step}: {message}")]
pub struct DockerProbeError {
    /// The socket or host.
    pub target: String,
    /// What was being done.
    pub step: String,
    /// What happened.
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct VersionJson {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "ApiVersion")]
    api_version: String,
    #[serde(rename = "MinAPIVersion", default)]
    min_api_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CliVersionJson {
    #[serde(rename = "Server")]
    server: Option<VersionJson>,
}

/// Read a `/version` body.
///
/// # Errors
/// Not the JSON the Engine API returns.
pub fn parse_version(body: &str, source: &str) -> Result<Daemon, String> {
    let v: VersionJson = serde_json::from_str(body.trim()).map_err(|e| {
        format!(
            "not a /version answer ({})",
            crate::parse::json_error_category(&e)
        )
    })?;
    Ok(daemon(v, source))
}

fn daemon(v: VersionJson, source: &str) -> Daemon {
    // daemons before MinAPIVersion existed (1.25) accepted down to 1.12
    let min = v.min_api_version.unwrap_or_else(|| "1.12".to_string());
    Daemon {
        version: v.version,
        api_version: v.api_version,
        min_api_version: min,
        source: source.to_string(),
        probed: true,
        loc: None,
    }
}

/// What the daemon said to a request made with a client API version in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAnswer {
    /// It answered normally.
    Accepted,
    /// `client version X is too old. Minimum supported API version is Y…`
    TooOld {
        /// The message, verbatim.
        message: String,
    },
    /// `client version X is too new. Maximum supported API version is Y`
    TooNew {
        /// The message, verbatim.
        message: String,
    },
    /// Something else.
    Other {
        /// Status.
        status: u16,
        /// The message or body.
        message: String,
    },
}

/// Classify a daemon's answer: JSON `{"message": …}` or the plain text it sends for very old
/// versions.
#[must_use]
pub fn classify_answer(status: u16, body: &str) -> ApiAnswer {
    if (200..300).contains(&status) {
        return ApiAnswer::Accepted;
    }
    #[derive(Deserialize)]
    struct Msg {
        message: String,
    }
    let message = serde_json::from_str::<Msg>(body.trim())
        .map(|m| m.message)
        .unwrap_or_else(|_| body.trim().to_string());
    if message.contains("is too old") {
        ApiAnswer::TooOld { message }
    } else if message.contains("is too new") {
        ApiAnswer::TooNew { message }
    } else {
        ApiAnswer::Other { status, message }
    }
}

fn socket_request(path: &str, socket: &str) -> HttpRequest {
    let mut req = HttpRequest::get(format!("http://localhost{path}"));
    req.unix_socket = Some(socket.to_string());
    req.timeout = Duration::from_secs(10);
    req.max_body = 64 * 1024;
    req
}

/// `GET /version` on a local socket.
///
/// # Errors
/// The socket could not be reached, or the answer was not a version.
pub async fn version_local(probes: &dyn Probes, socket: &str) -> Result<Daemon, DockerProbeError> {
    let req = socket_request("/version", socket);
    let err = |step: &str, message: String| DockerProbeError {
        target: format!("unix socket {socket}"),
        step: step.to_string(),
        message,
    };
    let resp = probes
        .http(&req)
        .await
        .map_err(|e| err("GET /version", e.to_string()))?;
    if resp.status != 200 {
        return Err(err(
            "GET /version",
            format!("{}: {}", resp.status_text(), resp.body.trim()),
        ));
    }
    parse_version(&resp.body, &req.describe()).map_err(|m| err("GET /version", m))
}

/// `GET /v<api>/version` on a local socket: does the daemon take a client speaking `api`?
///
/// # Errors
/// The socket could not be reached.
pub async fn try_api_local(
    probes: &dyn Probes,
    socket: &str,
    api: &str,
) -> Result<ApiAnswer, DockerProbeError> {
    let req = socket_request(&format!("/v{api}/version"), socket);
    let resp = probes.http(&req).await.map_err(|e| DockerProbeError {
        target: format!("unix socket {socket}"),
        step: format!("GET /v{api}/version"),
        message: e.to_string(),
    })?;
    Ok(classify_answer(resp.status, &resp.body))
}

/// The commands run on a runner host, in order: curl on the socket, then the docker CLI.
#[must_use]
pub fn remote_commands(socket: &str) -> [String; 2] {
    [
        format!("curl -sS --max-time 10 --unix-socket '{socket}' http://localhost/version"),
        format!("DOCKER_HOST='unix://{socket}' docker version --format '{{{{json .}}}}'"),
    ]
}

/// `/version` of the daemon on an inventory host, over SSH.
///
/// # Errors
/// Both commands failed (the SSH error, or each command's exit status and stderr).
pub async fn version_remote(
    probes: &dyn Probes,
    host: &str,
    destination: &str,
    command_prefix: &str,
    socket: &str,
) -> Result<Daemon, DockerProbeError> {
    let [curl, cli] = remote_commands(socket);
    let mut failures = Vec::new();
    for (i, cmd) in [curl, cli].iter().enumerate() {
        let full = format!("{command_prefix}{cmd}");
        let out = probes
            .exec(host, destination, &full)
            .await
            .map_err(|e| DockerProbeError {
                target: host.to_string(),
                step: full.clone(),
                message: e.to_string(),
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let source = format!("{full} on {host}");
        if out.exit_status == Some(0) {
            let parsed = if i == 0 {
                parse_version(&stdout, &source)
            } else {
                serde_json::from_str::<CliVersionJson>(stdout.trim())
                    .ok()
                    .and_then(|c| c.server)
                    .map(|v| daemon(v, &source))
                    .ok_or_else(|| "docker version printed no Server part".to_string())
            };
            match parsed {
                Ok(d) => return Ok(d),
                Err(m) => failures.push(format!("{full}: {m}")),
            }
        } else {
            failures.push(format!(
                "{full}: exit {}: {}",
                out.exit_status
                    .map_or_else(|| "?".into(), |s| s.to_string()),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Err(DockerProbeError {
        target: host.to_string(),
        step: "read the daemon's /version".into(),
        message: failures.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both error bodies a daemon sends (LAB.md: Docker 20.10), and a moby 29.0 one.
    #[test]
    fn answers() {
        assert_eq!(
            classify_answer(400, "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version\n"),
            ApiAnswer::TooOld { message: "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version".into() }
        );
        assert!(matches!(
            classify_answer(
                400,
                "{\"message\":\"client version 1.99 is too new. Maximum supported API version is 1.41\"}\n"
            ),
            ApiAnswer::TooNew { .. }
        ));
        assert_eq!(classify_answer(200, "{}"), ApiAnswer::Accepted);
        let d = parse_version("{\"Version\":\"29.0.0\",\"ApiVersion\":\"1.52\",\"MinAPIVersion\":\"1.44\",\"Os\":\"linux\"}", "x").unwrap();
        assert_eq!(
            (d.api_version.as_str(), d.min_api_version.as_str()),
            ("1.52", "1.44")
        );
        assert!(parse_version("<html>", "x").is_err());
    }

    /// Over SSH: a runner host without curl falls back to `docker version`'s JSON; a host where
    /// both fail says why, per command.
    #[test]
    fn remote_fallback() {
        use crate::probe::bundle::{Bundle, ProbeRecord, RecordedOutput};
        let [curl, cli] = remote_commands(DEFAULT_SOCKET);
        let out = |status: u32, stdout: &str, stderr: &str| {
            Ok(RecordedOutput {
                exit_status: Some(status),
                stdout: stdout.into(),
                stderr: stderr.into(),
                duration_ms: 1,
            })
        };
        let mut bundle = Bundle::new();
        bundle.probes = vec![
            ProbeRecord::Exec {
                host: "runner".into(),
                command: curl.clone(),
                result: out(127, "", "bash: curl: command not found"),
            },
            ProbeRecord::Exec {
                host: "runner".into(),
                command: cli.clone(),
                result: out(
                    0,
                    "{\"Client\":{\"Version\":\"29.0.1\",\"ApiVersion\":\"1.52\"},\"Server\":{\"Version\":\"29.0.1\",\"ApiVersion\":\"1.52\",\"MinAPIVersion\":\"1.44\",\"Os\":\"linux\"}}\n",
                    "",
                ),
            },
            ProbeRecord::Exec {
                host: "broken".into(),
                command: curl,
                result: out(7, "", "curl: (7) Couldn't connect to server"),
            },
            ProbeRecord::Exec {
                host: "broken".into(),
                command: cli,
                result: out(
                    1,
                    "",
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                ),
            },
        ];
        let probes = crate::probe::ReplayProbes::new(bundle);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let d = rt
            .block_on(version_remote(
                &probes,
                "runner",
                "runner",
                "",
                DEFAULT_SOCKET,
            ))
            .unwrap();
        assert_eq!(
            (d.version.as_str(), d.min_api_version.as_str()),
            ("29.0.1", "1.44")
        );
        assert!(
            d.source.contains("docker version") && d.source.ends_with("on runner"),
            "{}",
            d.source
        );
        let e = rt
            .block_on(version_remote(
                &probes,
                "broken",
                "broken",
                "",
                DEFAULT_SOCKET,
            ))
            .unwrap_err();
        assert!(
            e.message.contains("Couldn't connect")
                && e.message.contains("Is the docker daemon running?"),
            "{e}"
        );
    }
}
