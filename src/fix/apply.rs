//! Applying a plan's steps on a host over SSH, and undoing them. A file is replaced the way a
//! careful person does it: the old one copied aside first (`<path>.pulldoctor-backup-<stamp>`),
//! the new one written to a temp file in the same directory and renamed over it, so a kill at any
//! moment leaves either the old file or the new one, never half of one. A file whose content is
//! already right is left alone (applying twice changes nothing).

use crate::check::remote::{privileged, shell_quote};
use crate::inventory::Host;
use crate::model::FixStep;
use crate::probe::Probes;
use serde::{Deserialize, Serialize};

/// What one applied step did, enough to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The host.
    pub host: String,
    /// What was done, in words (`write /etc/…/hosts.toml`).
    pub step: String,
    /// The file, for file steps.
    pub path: Option<String>,
    /// SHA-256 of the file before (`None`: there was none).
    pub before: Option<String>,
    /// SHA-256 after.
    pub after: Option<String>,
    /// Where the old file was copied.
    pub backup: Option<String>,
    /// `changed`, `unchanged` (already right), `manual` (shown, not run).
    pub outcome: String,
}

/// Lines the write script prints, parsed.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The script that replaces `path` with `content` (base64, so any byte survives the shell).
fn write_script(path: &str, mode: &str, owner: &str, content: &str, stamp: &str) -> String {
    let b64 = crate::parse::jwt::base64_encode(content.as_bytes(), false);
    format!(
        "set -e; p={p}; d=$(dirname \"$p\"); mkdir -p \"$d\"; \
         new=$(printf '%s' {b64} | base64 -d | sha256sum | cut -d' ' -f1); \
         if [ -e \"$p\" ]; then old=$(sha256sum \"$p\" | cut -d' ' -f1); echo before=$old; \
           if [ \"$old\" = \"$new\" ]; then echo after=$new; echo outcome=unchanged; exit 0; fi; \
           cp -p \"$p\" \"$p.pulldoctor-backup-{stamp}\"; echo backup=$p.pulldoctor-backup-{stamp}; fi; \
         t=$(mktemp \"$d/.pulldoctor.XXXXXX\"); printf '%s' {b64} | base64 -d > \"$t\"; \
         chmod {mode} \"$t\"; chown {owner} \"$t\" 2>/dev/null || true; sync \"$t\" 2>/dev/null || true; \
         mv -f \"$t\" \"$p\"; echo after=$(sha256sum \"$p\" | cut -d' ' -f1); echo outcome=changed",
        p = shell_quote(path),
        b64 = shell_quote(&b64),
        mode = shell_quote(mode),
        owner = shell_quote(owner),
    )
}

/// Apply one step on its host. Manual steps are not run: they come back as `manual`.
///
/// # Errors
/// The host, the step and what failed.
pub async fn apply_step(
    probes: &dyn Probes,
    host: &Host,
    step: &FixStep,
    stamp: &str,
) -> Result<Applied, String> {
    match step {
        FixStep::WriteRemoteFile {
            path,
            mode,
            owner,
            content,
            ..
        } => {
            let script = privileged(
                host,
                &format!(
                    "sh -c {}",
                    shell_quote(&write_script(path, mode, owner, content, stamp))
                ),
            );
            let out = probes
                .exec(&host.name, host.destination(), &script)
                .await
                .map_err(|e| format!("{}: writing {path}: {e}", host.name))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if out.exit_status != Some(0) || field(&stdout, "outcome").is_none() {
                return Err(format!(
                    "{}: writing {path} failed (exit {:?}): {}",
                    host.name,
                    out.exit_status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(Applied {
                host: host.name.clone(),
                step: format!("write {path}"),
                path: Some(path.clone()),
                before: field(&stdout, "before").map(str::to_string),
                after: field(&stdout, "after").map(str::to_string),
                backup: field(&stdout, "backup").map(str::to_string),
                outcome: field(&stdout, "outcome").unwrap_or("changed").to_string(),
            })
        }
        FixStep::RunRemoteCommand { command, sudo, .. } => {
            let cmd = if *sudo {
                format!("sudo -n {command}")
            } else {
                command.clone()
            };
            let out = probes
                .exec(&host.name, host.destination(), &cmd)
                .await
                .map_err(|e| format!("{}: {command}: {e}", host.name))?;
            if out.exit_status != Some(0) {
                return Err(format!(
                    "{}: {command} exited {:?}: {}",
                    host.name,
                    out.exit_status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(Applied {
                host: host.name.clone(),
                step: format!("run {command}"),
                path: None,
                before: None,
                after: None,
                backup: None,
                outcome: "changed".into(),
            })
        }
        FixStep::Manual { text, .. } => Ok(Applied {
            host: host.name.clone(),
            step: format!("manual: {text}"),
            path: None,
            before: None,
            after: None,
            backup: None,
            outcome: "manual".into(),
        }),
        FixStep::EditRemoteFile { path, .. } | FixStep::EditLocalFile { path, .. } => Err(format!(
            "{}: editing {path} in place is not supported by this build; nothing was changed",
            host.name
        )),
    }
}

/// Undo an applied step: the backup goes back, or a file that did not exist is removed.
///
/// # Errors
/// The host and what failed (the backup, if any, is still on the host).
pub async fn undo(probes: &dyn Probes, host: &Host, applied: &Applied) -> Result<(), String> {
    let Some(path) = &applied.path else {
        return Ok(());
    };
    if applied.outcome != "changed" {
        return Ok(());
    }
    let script = match &applied.backup {
        Some(b) => format!("set -e; mv -f {} {}", shell_quote(b), shell_quote(path)),
        None => format!("set -e; rm -f {}", shell_quote(path)),
    };
    let cmd = privileged(host, &format!("sh -c {}", shell_quote(&script)));
    let out = probes
        .exec(&host.name, host.destination(), &cmd)
        .await
        .map_err(|e| format!("{}: restoring {path}: {e}", host.name))?;
    if out.exit_status == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "{}: restoring {path} failed: {}",
            host.name,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_script_runs_in_sh() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("a/b/hosts.toml");
        let path = p.display().to_string();
        let run = |content: &str, stamp: &str| {
            let out = std::process::Command::new("sh")
                .args([
                    "-c",
                    &write_script(&path, "0644", "root:root", content, stamp),
                ])
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let first = run("x = 'it''s'\n", "1");
        assert_eq!(field(&first, "outcome"), Some("changed"));
        assert_eq!(field(&first, "before"), None);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap_or_default(),
            "x = 'it''s'\n"
        );
        let again = run("x = 'it''s'\n", "2");
        assert_eq!(field(&again, "outcome"), Some("unchanged"));
        let third = run("y\n", "3");
        let backup = field(&third, "backup").unwrap_or_default().to_string();
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap_or_default(),
            "x = 'it''s'\n"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap_or_default(), "y\n");
    }
}
