//! The part of OpenSSH's `ssh_config` pulldoctor honours: `Host` blocks (patterns with `*`, `?`
//! and `!`), `HostName`, `User`, `Port`, `IdentityFile`, `ProxyJump`, `UserKnownHostsFile`,
//! `ConnectTimeout`. As in OpenSSH the first value obtained wins, except `IdentityFile`, which
//! accumulates. `Include` and `Match` are not followed (a note says so).

use std::path::{Path, PathBuf};

/// One `Host` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Block {
    patterns: Vec<String>,
    options: Vec<(String, String, usize)>,
}

/// A parsed `~/.ssh/config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfig {
    blocks: Vec<Block>,
    /// Directives that were read but not followed (`Include`, `Match`), with their line.
    pub notes: Vec<String>,
}

/// What the config says for one host alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName` (the alias itself when absent).
    pub hostname: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// Every `IdentityFile`, in order, `~` expanded.
    pub identity_files: Vec<PathBuf>,
    /// `ProxyJump` hops, in order (empty for `none`).
    pub proxy_jump: Vec<String>,
    /// `UserKnownHostsFile`, `~` expanded.
    pub known_hosts: Vec<PathBuf>,
    /// `ConnectTimeout`, seconds.
    pub connect_timeout: Option<u64>,
}

/// A config error with its line.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("ssh config line {line}: {message}")]
pub struct ConfigError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl SshConfig {
    /// Parse config text.
    ///
    /// # Errors
    /// A `Port` or `ConnectTimeout` that is not a number, with its line.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut cfg = SshConfig::default();
        // options before the first Host apply to every host
        let mut current = Block {
            patterns: vec!["*".to_string()],
            options: Vec::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = split_directive(line);
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "host" => {
                    cfg.blocks.push(std::mem::take(&mut current));
                    current.patterns = value.split_whitespace().map(str::to_string).collect();
                }
                "match" | "include" => {
                    cfg.notes.push(format!(
                        "line {line_no}: '{key}' is not followed by pulldoctor"
                    ));
                    if key == "match" {
                        // options under Match must not leak into the previous Host block
                        cfg.blocks.push(std::mem::take(&mut current));
                        current.patterns = vec!["!*".to_string()];
                    }
                }
                "port" | "connecttimeout" if value.trim().parse::<u64>().is_err() => {
                    return Err(ConfigError {
                        line: line_no,
                        message: format!("{key} '{value}' is not a number"),
                    });
                }
                _ => current
                    .options
                    .push((key, unquote(value).to_string(), line_no)),
            }
        }
        cfg.blocks.push(current);
        Ok(cfg)
    }

    /// Read `path`; a missing file is an empty config.
    ///
    /// # Errors
    /// An unreadable file or a parse error.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ConfigError {
                line: 0,
                message: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }

    /// The settings for `alias`.
    #[must_use]
    pub fn host(&self, alias: &str) -> HostConfig {
        let mut out = HostConfig::default();
        let mut jump_seen = false;
        for block in self
            .blocks
            .iter()
            .filter(|b| matches_patterns(&b.patterns, alias))
        {
            for (key, value, _) in &block.options {
                match key.as_str() {
                    "hostname" if out.hostname.is_none() => {
                        out.hostname = Some(value.replace("%h", alias))
                    }
                    "user" if out.user.is_none() => out.user = Some(value.clone()),
                    "port" if out.port.is_none() => out.port = value.parse().ok(),
                    "identityfile" => out.identity_files.push(expand_tilde(value)),
                    "proxyjump" if !jump_seen => {
                        jump_seen = true;
                        if !value.eq_ignore_ascii_case("none") {
                            out.proxy_jump = value
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect();
                        }
                    }
                    "userknownhostsfile" if out.known_hosts.is_empty() => {
                        out.known_hosts = value.split_whitespace().map(expand_tilde).collect();
                    }
                    "connecttimeout" if out.connect_timeout.is_none() => {
                        out.connect_timeout = value.parse().ok()
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

/// `Key value`, `Key=value`, `Key = value`.
fn split_directive(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let key = &line[..end];
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (key, rest)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

/// `~/x` → `$HOME/x`.
#[must_use]
pub fn expand_tilde(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// OpenSSH semantics: the host matches if any positive pattern matches and no negated one does.
fn matches_patterns(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, host) {
                return false;
            }
        } else if glob(p, host) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` glob, case-insensitive like OpenSSH host matching.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (
        pattern.to_ascii_lowercase().chars().collect(),
        text.to_ascii_lowercase().chars().collect(),
    );
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First value wins, IdentityFile accumulates, negation and wildcards work.
    #[test]
    fn openssh_semantics() {
        let cfg = SshConfig::parse(
            "User global\n\nHost k8s-*\n  HostName %h.lab\n  ProxyJump bastion,linux-host\n  IdentityFile ~/.ssh/lab\n\nHost k8s-m !k8s-n9\n  Port 2222\n\nHost *\n  User ops\n  IdentityFile ~/.ssh/id_ed25519\n  Port=22\n",
        )
        .unwrap();
        let h = cfg.host("k8s-m");
        assert_eq!(h.hostname.as_deref(), Some("k8s-m.lab"));
        assert_eq!(h.user.as_deref(), Some("global"));
        assert_eq!(h.port, Some(2222));
        assert_eq!(h.proxy_jump, ["bastion", "linux-host"]);
        assert_eq!(h.identity_files.len(), 2);
        assert_eq!(cfg.host("k8s-n9").port, Some(22));
        assert!(cfg.host("other").proxy_jump.is_empty());
    }

    /// Bad numbers are errors with their line; Include is noted, not followed.
    #[test]
    fn errors_and_notes() {
        let err = SshConfig::parse("Host a\n  Port twenty\n").unwrap_err();
        assert_eq!(err.line, 2);
        let cfg =
            SshConfig::parse("Include ~/.ssh/config.d/*\nHost a\n  ProxyJump none\n").unwrap();
        assert_eq!(cfg.notes.len(), 1);
        assert!(cfg.host("a").proxy_jump.is_empty());
    }
}
