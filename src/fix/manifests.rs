//! The workload side of `image.names`: a Deployment (or any workload) asking for an image CI
//! never pushed gets the name CI does push. In manifest files the `image:` line is edited in
//! place (quotes, comments and layout kept); for a workload read from the live cluster the fix is
//! `kubectl set image`, undone by setting the old image back.

use super::lines::{LineEdit, line_at, local_edit_step};
use super::{Fixer, PlanFuture, Planned, VerifyFuture};
use crate::check::CheckContext;
use crate::check::cluster::{ClusterReader, ClusterSource};
use crate::check::image_names::{self, ImageNames, NameVerdict, corrected, evaluate};
use crate::check::remote::shell_quote;
use crate::model::{FixPlan, FixRisk, FixStep};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The fix id (the catalog's `image_not_found` fix).
pub const FIX_ID: &str = "deployment-image";

/// Lines a manifest's `image:` may sit below the line the parser gave (none: it gives that line).
const IMAGE_LINE_SLACK: u64 = 0;

/// The `kubectl set image` command for one container of a workload labelled `Kind/ns/name` (or
/// `Kind/name`), and the one that sets `old` back. `None` for kinds kubectl cannot set an image
/// on, or a pod a controller owns.
#[must_use]
pub fn set_image_commands(
    object: &str,
    container: &str,
    new: &str,
    old: &str,
) -> Option<(String, String)> {
    let parts: Vec<&str> = object.split('/').collect();
    let (kind, ns, name) = match parts.as_slice() {
        [kind, ns, name] => (*kind, Some(*ns), *name),
        [kind, name] => (*kind, None, *name),
        _ => return None,
    };
    let kind = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "CronJob" | "ReplicaSet" | "Pod" | "Job" => {
            kind.to_ascii_lowercase()
        }
        _ => return None,
    };
    let container = container.strip_suffix(" (init)").unwrap_or(container);
    let command = |image: &str| {
        let mut c = format!(
            "kubectl set image {} {}",
            shell_quote(&format!("{kind}/{name}")),
            shell_quote(&format!("{container}={image}"))
        );
        if let Some(ns) = ns {
            c.push_str(&format!(" -n {}", shell_quote(ns)));
        }
        c
    };
    Some((command(new), command(old)))
}

/// The edit of the manifest line at `line` naming `old`, to `new`.
#[must_use]
pub fn image_line_edit(text: &str, line: u64, old: &str, new: &str) -> Option<LineEdit> {
    (line..=line + IMAGE_LINE_SLACK).find_map(|n| {
        let l = line_at(text, n)?;
        let at = l.find("image:")? + "image:".len();
        let pos = at + l[at..].find(old)?;
        // the whole reference, not a prefix of a longer one
        let end = pos + old.len();
        let next = l[end..].chars().next();
        if next.is_some_and(|c| !(c.is_whitespace() || c == '"' || c == '\'' || c == '#')) {
            return None;
        }
        let mut replaced = l.to_string();
        replaced.replace_range(pos..end, new);
        Some(LineEdit {
            line: n,
            old: l.to_string(),
            new: Some(replaced),
        })
    })
}

/// `image.names`' fixer for the workloads of one source (manifest files or a cluster).
#[derive(Clone)]
pub struct DeploymentImage {
    /// Where the workloads are read.
    pub source: ClusterSource,
    /// The comparison's other inputs (its cluster reader is replaced by a fresh one each time).
    pub names: ImageNames,
}

impl DeploymentImage {
    /// The check on a fresh reading of the workloads.
    fn check(&self) -> ImageNames {
        ImageNames {
            cluster: Arc::new(ClusterReader::new(self.source.clone())),
            ..self.names.clone()
        }
    }

    async fn plan_now(&self, ctx: &CheckContext) -> Result<Option<Planned>, String> {
        let (input, _problems) = self.check().gather(ctx).await?;
        let verdicts: Vec<NameVerdict> = evaluate(&input);
        let mut file_edits: BTreeMap<String, Vec<LineEdit>> = BTreeMap::new();
        let mut commands: Vec<(String, String)> = Vec::new();
        let (mut findings, mut why) = (Vec::new(), Vec::new());
        for v in &verdicts {
            let Some(new) = corrected(v) else { continue };
            let mut answered = false;
            for u in &v.uses {
                if u.from_command {
                    if let Some(c) = set_image_commands(&u.object, &u.container, &new, &v.image)
                        && !commands.contains(&c)
                    {
                        commands.push(c);
                        answered = true;
                    }
                    continue;
                }
                let Some(line) = u.line else { continue };
                let text = ctx
                    .probes
                    .read_file(&u.origin)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        String::from_utf8(b).map_err(|_| format!("{} is not UTF-8", u.origin))
                    })?;
                if let Some(e) = image_line_edit(&text, line, &v.image, &new) {
                    let list = file_edits.entry(u.origin.clone()).or_default();
                    if !list.contains(&e) {
                        list.push(e);
                    }
                    answered = true;
                }
            }
            if answered {
                findings.push(image_names::finding_id(v));
                let who: Vec<String> = v
                    .uses
                    .iter()
                    .map(|u| format!("{} ({})", u.object, u.container))
                    .collect();
                why.push(format!(
                    "{} asks for {}, which is not there; it becomes {new}",
                    who.join(", "),
                    v.image
                ));
            }
        }
        if findings.is_empty() {
            return Ok(None);
        }
        let mut steps = Vec::new();
        for (path, edits) in &file_edits {
            let text = ctx
                .probes
                .read_file(path)
                .map_err(|e| e.to_string())
                .and_then(|b| String::from_utf8(b).map_err(|_| format!("{path} is not UTF-8")))?;
            steps.push(local_edit_step(path, &text, edits)?);
        }
        let live = !commands.is_empty();
        for (command, undo) in commands {
            steps.push(match &self.source {
                ClusterSource::Ssh { host, .. } => FixStep::RunRemoteCommand {
                    host: host.name.clone(),
                    command,
                    sudo: false,
                    check: None,
                    undo: Some(undo),
                },
                _ => FixStep::RunLocalCommand {
                    command,
                    needs_env: Vec::new(),
                    undo: Some(undo),
                },
            });
        }
        let hosts = match &self.source {
            ClusterSource::Ssh { host, .. } if live => vec![host.name.clone()],
            _ => Vec::new(),
        };
        Ok(Some(Planned {
            findings,
            why,
            plan: FixPlan {
                id: FIX_ID.into(),
                title: if live {
                    "Point the workloads at the images CI pushes (kubectl set image)".into()
                } else {
                    format!(
                        "Point the workloads at the images CI pushes, in {}",
                        file_edits.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                },
                hosts,
                // a new image rolls the workload's pods; an edited file changes nothing running
                risk: if live {
                    FixRisk::Disruptive
                } else {
                    FixRisk::Safe
                },
                restarts_service: false,
                verify: format!(
                    "{} on the workloads as they are then",
                    image_names::CHECK_ID
                ),
                steps,
            },
        }))
    }
}

impl Fixer for DeploymentImage {
    fn subject(&self) -> String {
        match &self.source {
            ClusterSource::Manifests(paths) => paths.join(", "),
            ClusterSource::Local { .. } => "the cluster (kubectl)".into(),
            ClusterSource::Ssh { host, .. } => format!("the cluster (kubectl on {})", host.name),
        }
    }

    fn plan<'a>(&'a self, ctx: &'a CheckContext) -> PlanFuture<'a> {
        Box::pin(self.plan_now(ctx))
    }

    fn verify<'a>(&'a self, ctx: &'a CheckContext, planned: &'a Planned) -> VerifyFuture<'a> {
        Box::pin(async move { super::rerun::verify_by_check(ctx, &self.check(), planned).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITION: &str = include_str!("../../tests/fixtures/kube/gition.yaml");

    #[test]
    fn the_image_line_keeps_its_quotes_and_indentation() {
        let e = image_line_edit(
            GITION,
            63,
            "172.100.100.9:5050/root/gition/react:latest",
            "172.100.100.9:5050/root/gition/frontend:latest",
        )
        .unwrap();
        assert_eq!(
            e.old,
            "        image: \"172.100.100.9:5050/root/gition/react:latest\""
        );
        assert_eq!(
            e.new.as_deref(),
            Some("        image: \"172.100.100.9:5050/root/gition/frontend:latest\"")
        );
        // a longer reference that starts with the same text is not this one
        assert!(image_line_edit("image: a/b:latest2\n", 1, "a/b:latest", "x").is_none());
        // another line is not edited
        assert!(
            image_line_edit(
                GITION,
                62,
                "172.100.100.9:5050/root/gition/react:latest",
                "x"
            )
            .is_none()
        );
    }

    #[test]
    fn kubectl_set_image_and_its_undo() {
        let (set, undo) = set_image_commands(
            "Deployment/gition/api",
            "api",
            "10.0.0.5:5050/root/gition/backend:latest",
            "10.0.0.5:5050/root/gition/api:latest",
        )
        .unwrap();
        assert_eq!(
            set,
            "kubectl set image 'deployment/api' 'api=10.0.0.5:5050/root/gition/backend:latest' -n 'gition'"
        );
        assert_eq!(
            undo,
            "kubectl set image 'deployment/api' 'api=10.0.0.5:5050/root/gition/api:latest' -n 'gition'"
        );
        let (init, _) =
            set_image_commands("StatefulSet/db", "migrate (init)", "a:1", "b:1").unwrap();
        assert_eq!(init, "kubectl set image 'statefulset/db' 'migrate=a:1'");
        assert!(set_image_commands("Service/gition/api", "api", "a", "b").is_none());
    }
}
