//! What a killed apply left behind: steps the audit log saw start but never saw verified or
//! rolled back, with the backups they made, so the next run can offer to put them back.

use super::audit::Record;

/// A file step of an apply run that never finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The apply run.
    pub run: String,
    /// The fix.
    pub fix: String,
    /// The host (`local` for the checkout).
    pub host: String,
    /// The file.
    pub path: String,
    /// Its backup (it may or may not exist: the kill may have come before the copy).
    pub backup: String,
    /// The restart the same apply started on that host (run again once the files are back, so
    /// the service does not keep running on the new ones).
    pub restart: Option<String>,
}

/// Outcomes that close a (run, fix, host): after one of these, nothing is left to restore.
const CLOSING: [&str; 5] = [
    "verified",
    "verification failed",
    "rolled back",
    "rollback failed",
    "restored",
];

/// The file steps of runs that started and never closed, newest run first.
#[must_use]
pub fn leftovers(records: &[Record]) -> Vec<Leftover> {
    let closed = |r: &Record| {
        records.iter().any(|c| {
            c.run == r.run
                && c.fix == r.fix
                && (c.host == r.host || c.step == "verify")
                && CLOSING.contains(&c.outcome.as_str())
                && c.path
                    .as_deref()
                    .is_none_or(|p| Some(p) == r.path.as_deref())
        })
    };
    let mut out: Vec<Leftover> = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.outcome == "started" && !r.run.is_empty())
    {
        let (Some(path), Some(backup)) = (&r.path, &r.backup) else {
            continue;
        };
        // a step that found its file already right made no backup
        let unchanged = records.iter().any(|c| {
            c.run == r.run && c.host == r.host && c.path == r.path && c.outcome == "unchanged"
        });
        if closed(r) || unchanged {
            continue;
        }
        let restart = records
            .iter()
            .find(|c| {
                c.run == r.run
                    && c.host == r.host
                    && c.outcome == "started"
                    && c.step.starts_with("restart ")
            })
            .and_then(|c| c.detail.clone());
        let l = Leftover {
            run: r.run.clone(),
            fix: r.fix.clone(),
            host: r.host.clone(),
            path: path.clone(),
            backup: backup.clone(),
            restart,
        };
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out.sort_by(|a, b| b.run.cmp(&a.run).then(a.host.cmp(&b.host)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(run: &str, host: &str, step: &str, path: Option<&str>, outcome: &str) -> Record {
        Record {
            time: "2026-11-27T00:00:00Z".into(),
            user: "u".into(),
            run: run.into(),
            fix: "hosts-toml-http".into(),
            host: host.into(),
            step: step.into(),
            path: path.map(str::to_string),
            backup: path.map(|p| format!("{p}.pulldoctor-backup-{run}")),
            before: None,
            after: None,
            outcome: outcome.into(),
            detail: None,
        }
    }

    #[test]
    fn a_run_killed_before_verification_leaves_its_backups() {
        let p = Some("/etc/containerd/config.toml");
        let records = vec![
            // run 1 finished: nothing left
            rec("1", "n1", "edit", p, "started"),
            rec("1", "n1", "edit", p, "changed"),
            rec("1", "n1", "verify", None, "verified"),
            // run 2 was killed after the edit on n1 and during the write on n2
            rec("2", "n1", "edit", p, "started"),
            rec("2", "n1", "edit", p, "changed"),
            rec("2", "n2", "edit", p, "started"),
            Record {
                detail: Some("systemctl restart containerd".into()),
                ..rec("2", "n1", "restart containerd", None, "started")
            },
            // run 3 found the file already right
            rec("3", "n3", "edit", p, "started"),
            rec("3", "n3", "edit", p, "unchanged"),
        ];
        let left = leftovers(&records);
        let hosts: Vec<&str> = left.iter().map(|l| l.host.as_str()).collect();
        assert_eq!(hosts, ["n1", "n2"]);
        assert!(left.iter().all(|l| l.run == "2"));
        assert_eq!(
            left[0].backup,
            "/etc/containerd/config.toml.pulldoctor-backup-2"
        );
        assert_eq!(
            left[0].restart.as_deref(),
            Some("systemctl restart containerd")
        );
        assert_eq!(left[1].restart, None);
    }
}
