//! Applying a plan's steps, on hosts over SSH or in the local checkout, and undoing them. A file
//! is replaced the way a careful person does it: the old one copied aside first
//! (`<path>.pulldoctor-backup-<run>`), the new one written to a temp file in the same directory
//! and renamed over it, so a kill at any moment leaves either the old file or the new one, never
//! half of one. A file already right is left alone, a command whose check already passes is not
//! run (applying twice changes nothing), and an edit is refused when the file changed since the
//! plan was made.

use crate::check::remote::{privileged, shell_quote};
use crate::inventory::Host;
use crate::model::FixStep;
use crate::probe::Probes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::time::Duration;

/// Where a step ran.
pub const LOCAL: &str = "local";

/// Seconds a local command (kubectl) may run.
const LOCAL_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What one applied step did, enough to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The host, or [`LOCAL`].
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
    /// The command that undoes a command step.
    pub undo: Option<String>,
    /// The command that restarted a service (run again after a rollback).
    pub restart: Option<String>,
    /// `changed`, `unchanged` (already right), `manual` (shown, not run).
    pub outcome: String,
}

impl Applied {
    /// A restart that failed: nothing to undo, but it may have stopped the service, so a
    /// rollback starts it again once the files are back.
    #[must_use]
    pub fn failed_restart(host: &str, service: &str, command: &str) -> Self {
        let mut a = Self::new(host, format!("restart {service}"), "failed");
        a.restart = Some(command.to_string());
        a
    }

    fn new(host: &str, step: String, outcome: &str) -> Self {
        Self {
            host: host.to_string(),
            step,
            path: None,
            before: None,
            after: None,
            backup: None,
            undo: None,
            restart: None,
            outcome: outcome.to_string(),
        }
    }
}

/// SHA-256 in lower-case hex, as `sha256sum` prints it.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The backup name of `path` for the apply run `stamp`.
#[must_use]
pub fn backup_path(path: &str, stamp: &str) -> String {
    format!("{path}.pulldoctor-backup-{stamp}")
}

/// Lines the remote scripts print, parsed.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// How the new file gets its mode and owner.
enum Attrs<'a> {
    /// Set these (a new file, or one written whole).
    Set { mode: &'a str, owner: &'a str },
    /// Keep the old file's, and refuse unless it still has this SHA-256 (an edit).
    Keep { expect: &'a str },
}

/// The script that replaces `path` with `content` (base64, so any byte survives the shell).
fn write_script(path: &str, content: &str, stamp: &str, attrs: &Attrs<'_>) -> String {
    let b64 = crate::parse::jwt::base64_encode(content.as_bytes(), false);
    let (guard, set_attrs) = match attrs {
        Attrs::Set { mode, owner } => (
            String::new(),
            format!(
                "chmod {} \"$t\"; chown {} \"$t\" 2>/dev/null || true;",
                shell_quote(mode),
                shell_quote(owner)
            ),
        ),
        Attrs::Keep { expect } => (
            format!(
                "if [ ! -e \"$p\" ] || [ \"$(sha256sum \"$p\" | cut -d' ' -f1)\" != {} ]; then \
                 echo \"$p changed since the plan was made; nothing was written\" >&2; exit 3; fi;",
                shell_quote(expect)
            ),
            "chmod --reference=\"$p\" \"$t\"; chown --reference=\"$p\" \"$t\" 2>/dev/null || true;"
                .to_string(),
        ),
    };
    format!(
        "set -e; p={p}; d=$(dirname \"$p\"); {guard} mkdir -p \"$d\"; \
         new=$(printf '%s' {b64} | base64 -d | sha256sum | cut -d' ' -f1); \
         if [ -e \"$p\" ]; then old=$(sha256sum \"$p\" | cut -d' ' -f1); echo before=$old; \
           if [ \"$old\" = \"$new\" ]; then echo after=$new; echo outcome=unchanged; exit 0; fi; \
           cp -p \"$p\" {backup}; echo backup={backup}; fi; \
         t=$(mktemp \"$d/.pulldoctor.XXXXXX\"); printf '%s' {b64} | base64 -d > \"$t\"; \
         {set_attrs} sync \"$t\" 2>/dev/null || true; \
         mv -f \"$t\" \"$p\"; echo after=$(sha256sum \"$p\" | cut -d' ' -f1); echo outcome=changed",
        p = shell_quote(path),
        b64 = shell_quote(&b64),
        backup = shell_quote(&backup_path(path, stamp)),
    )
}

/// Run `script` on `host` (privileged when the inventory says so); its stdout, or what failed.
async fn run_remote(
    probes: &dyn Probes,
    host: &Host,
    what: &str,
    script: &str,
) -> Result<String, String> {
    let cmd = privileged(host, &format!("sh -c {}", shell_quote(script)));
    let out = probes
        .exec(&host.name, host.destination(), &cmd)
        .await
        .map_err(|e| format!("{}: {what}: {e}", host.name))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.exit_status == Some(0) {
        Ok(stdout)
    } else {
        Err(format!(
            "{}: {what} failed (exit {}): {}",
            host.name,
            out.exit_status
                .map_or_else(|| "unknown".to_string(), |c| c.to_string()),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Write a file on a host and say what changed.
async fn write_remote(
    probes: &dyn Probes,
    host: &Host,
    path: &str,
    content: &str,
    stamp: &str,
    attrs: &Attrs<'_>,
) -> Result<Applied, String> {
    let what = format!("writing {path}");
    let stdout = run_remote(
        probes,
        host,
        &what,
        &write_script(path, content, stamp, attrs),
    )
    .await?;
    let outcome = field(&stdout, "outcome")
        .ok_or_else(|| format!("{}: {what}: the script said nothing", host.name))?;
    let mut a = Applied::new(&host.name, format!("write {path}"), outcome);
    a.path = Some(path.to_string());
    a.before = field(&stdout, "before").map(str::to_string);
    a.after = field(&stdout, "after").map(str::to_string);
    a.backup = field(&stdout, "backup").map(str::to_string);
    Ok(a)
}

/// Replace a local file the same careful way, refusing when it changed since planning.
fn write_local(path: &str, content: &str, expect: &str, stamp: &str) -> Result<Applied, String> {
    let p = Path::new(path);
    let old = std::fs::read(p).map_err(|e| format!("reading {path}: {e}"))?;
    let before = sha256_hex(&old);
    if before != expect {
        return Err(format!(
            "{path} changed since the plan was made; nothing was written"
        ));
    }
    let mut a = Applied::new(LOCAL, format!("edit {path}"), "unchanged");
    a.path = Some(path.to_string());
    a.before = Some(before);
    a.after = Some(sha256_hex(content.as_bytes()));
    if old == content.as_bytes() {
        return Ok(a);
    }
    let backup = backup_path(path, stamp);
    std::fs::copy(p, &backup).map_err(|e| format!("keeping {path} as {backup}: {e}"))?;
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("a temp file next to {path}: {e}"))?;
    std::io::Write::write_all(&mut tmp, content.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("writing the new {path}: {e}"))?;
    if let Ok(meta) = std::fs::metadata(p) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(p)
        .map_err(|e| format!("renaming the new {path} into place: {}", e.error))?;
    a.backup = Some(backup);
    a.outcome = "changed".into();
    Ok(a)
}

/// Run a local shell command (kubectl), bounded in time; its stdout, or what failed.
async fn run_local(command: &str) -> Result<String, String> {
    let child = tokio::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LOCAL_COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| format!("{command}: no answer in {LOCAL_COMMAND_TIMEOUT:?}"))?
        .map_err(|e| format!("{command}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{command} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Apply one step (`host` is the step's host, `None` for local steps). Manual steps are not
/// run: they come back as `manual`.
///
/// # Errors
/// The host, the step and what failed.
pub async fn apply_step(
    probes: &dyn Probes,
    host: Option<&Host>,
    step: &FixStep,
    stamp: &str,
) -> Result<Applied, String> {
    let need_host = || host.ok_or_else(|| "the step's host is not in the inventory".to_string());
    match step {
        FixStep::WriteRemoteFile {
            path,
            mode,
            owner,
            content,
            ..
        } => {
            let attrs = Attrs::Set { mode, owner };
            write_remote(probes, need_host()?, path, content, stamp, &attrs).await
        }
        FixStep::EditRemoteFile {
            path,
            content,
            before,
            ..
        } => {
            let attrs = Attrs::Keep { expect: before };
            let mut a = write_remote(probes, need_host()?, path, content, stamp, &attrs).await?;
            a.step = format!("edit {path}");
            Ok(a)
        }
        FixStep::RunRemoteCommand {
            command,
            check,
            undo,
            ..
        } => {
            let host = need_host()?;
            let script = match check {
                Some(check) => format!(
                    "if {check}; then echo outcome=unchanged; else {command} && echo outcome=changed; fi"
                ),
                None => format!("{command} && echo outcome=changed"),
            };
            let stdout = run_remote(probes, host, command, &script).await?;
            let mut a = Applied::new(
                &host.name,
                format!("run {command}"),
                field(&stdout, "outcome").unwrap_or("changed"),
            );
            a.undo.clone_from(undo);
            Ok(a)
        }
        FixStep::RestartService {
            service, command, ..
        } => {
            let host = need_host()?;
            run_remote(probes, host, &format!("restarting {service}"), command).await?;
            let mut a = Applied::new(&host.name, format!("restart {service}"), "changed");
            a.restart = Some(command.clone());
            Ok(a)
        }
        FixStep::EditLocalFile {
            path,
            content,
            before,
            ..
        } => write_local(path, content, before, stamp),
        FixStep::RunLocalCommand {
            command,
            needs_env,
            undo,
        } => {
            if let Some(missing) = needs_env.iter().find(|v| std::env::var_os(v).is_none()) {
                return Err(format!(
                    "{command}: set {missing} first (it is read from the environment so it is never shown)"
                ));
            }
            run_local(command).await?;
            let mut a = Applied::new(LOCAL, format!("run {command}"), "changed");
            a.undo.clone_from(undo);
            Ok(a)
        }
        FixStep::Manual { text, .. } => Ok(Applied::new(
            host.map_or(LOCAL, |h| h.name.as_str()),
            format!("manual: {text}"),
            "manual",
        )),
    }
}

/// Undo an applied step: the backup goes back, a file that did not exist is removed, a command
/// is undone by its undo command. Restarts are not undone here: the caller restarts again once
/// every file is back.
///
/// # Errors
/// The host and what failed (the backup, if any, is still there).
pub async fn undo(
    probes: &dyn Probes,
    host: Option<&Host>,
    applied: &Applied,
) -> Result<(), String> {
    if applied.outcome != "changed" {
        return Ok(());
    }
    if applied.host == LOCAL {
        return match (&applied.path, &applied.backup, &applied.undo) {
            (Some(path), Some(backup), _) => std::fs::rename(backup, path)
                .map_err(|e| format!("restoring {path} from {backup}: {e}")),
            (_, _, Some(undo)) => run_local(undo).await.map(|_| ()),
            _ => Ok(()),
        };
    }
    let host = host.ok_or_else(|| format!("{}: not in the inventory", applied.host))?;
    let script = match (&applied.path, &applied.backup, &applied.undo) {
        (Some(path), Some(b), _) => {
            format!("set -e; mv -f {} {}", shell_quote(b), shell_quote(path))
        }
        (Some(path), None, _) => format!("set -e; rm -f {}", shell_quote(path)),
        (None, _, Some(undo)) => undo.clone(),
        (None, _, None) => return Ok(()),
    };
    run_remote(probes, host, &format!("undoing {}", applied.step), &script)
        .await
        .map(|_| ())
}

/// Put a backup left by an interrupted apply back in place (`host` `None`: a local file).
///
/// # Errors
/// What failed; nothing is changed when the backup is gone.
pub async fn restore_backup(
    probes: &dyn Probes,
    host: Option<&Host>,
    path: &str,
    backup: &str,
) -> Result<(), String> {
    match host {
        None => std::fs::rename(backup, path)
            .map_err(|e| format!("restoring {path} from {backup}: {e}")),
        Some(host) => {
            let script = format!(
                "set -e; [ -e {b} ] || {{ echo 'the backup is gone' >&2; exit 3; }}; mv -f {b} {p}",
                b = shell_quote(backup),
                p = shell_quote(path)
            );
            run_remote(probes, host, &format!("restoring {path}"), &script)
                .await
                .map(|_| ())
        }
    }
}

/// Whether a backup left by an interrupted apply is still there.
pub async fn backup_exists(probes: &dyn Probes, host: Option<&Host>, backup: &str) -> bool {
    match host {
        None => Path::new(backup).exists(),
        Some(host) => run_remote(
            probes,
            host,
            "looking for a backup",
            &format!("test -e {}", shell_quote(backup)),
        )
        .await
        .is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_sh(script: &str) -> (bool, String) {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn the_write_script_runs_in_sh() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("a/b/hosts.toml");
        let path = p.display().to_string();
        let set = Attrs::Set {
            mode: "0644",
            owner: "root:root",
        };
        let run = |content: &str, stamp: &str| {
            let (ok, out) = run_sh(&write_script(&path, content, stamp, &set));
            assert!(ok);
            out
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

    #[test]
    fn an_edit_is_refused_when_the_file_changed_since_planning() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "a = 1\n").unwrap_or_else(|e| panic!("{e}"));
        let path = p.display().to_string();
        let stale = sha256_hex(b"a = 0\n");
        let (ok, _) = run_sh(&write_script(
            &path,
            "a = 2\n",
            "1",
            &Attrs::Keep { expect: &stale },
        ));
        assert!(!ok);
        assert_eq!(std::fs::read_to_string(&p).unwrap_or_default(), "a = 1\n");
        let fresh = sha256_hex(b"a = 1\n");
        let (ok, out) = run_sh(&write_script(
            &path,
            "a = 2\n",
            "2",
            &Attrs::Keep { expect: &fresh },
        ));
        assert!(ok);
        assert_eq!(field(&out, "outcome"), Some("changed"));
        assert_eq!(std::fs::read_to_string(&p).unwrap_or_default(), "a = 2\n");
    }

    #[test]
    fn a_local_edit_keeps_a_backup_and_refuses_a_stale_plan() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join(".gitlab-ci.yml");
        std::fs::write(&p, "image: docker:24\n").unwrap_or_else(|e| panic!("{e}"));
        let path = p.display().to_string();
        let before = sha256_hex(b"image: docker:24\n");
        assert!(write_local(&path, "image: docker:25\n", "0000", "1").is_err());
        let a = write_local(&path, "image: docker:25\n", &before, "1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.outcome, "changed");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap_or_default(),
            "image: docker:25\n"
        );
        assert_eq!(
            std::fs::read_to_string(a.backup.as_deref().unwrap_or_default()).unwrap_or_default(),
            "image: docker:24\n"
        );
        let after = sha256_hex(b"image: docker:25\n");
        let again =
            write_local(&path, "image: docker:25\n", &after, "2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.outcome, "unchanged");
    }
}
