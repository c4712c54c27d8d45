//! The cluster's own view (`cluster.pulls`): what Kubernetes says about pulls, read the way the
//! engineer would with `kubectl get … -o json` — here when kubectl and a kubeconfig exist, over SSH
//! on a control-plane host of the inventory, or from manifest files (`--manifests`) offline.
//!
//! From it: pods whose containers wait in `ErrImagePull`/`ImagePullBackOff`, their events
//! classified by the signature catalog (through the same scanner as logs) and attributed to the
//! node the pod was scheduled on, so node checks look where the failure happened; the pull secrets
//! each workload names, missing from the namespace or without an `auths` key for the image's
//! `host:port`; and the nodes' InternalIPs as a source of node hosts.
//!
//! The read is shared: [`ClusterReader`] runs kubectl (or reads the files) once for every check
//! that needs the cluster (this one and `image.names`).

use super::logs::{RemoteOrigin, scan_input};
use super::{Check, CheckContext, CheckFuture, CheckOutcome};
use crate::inventory::Host;
use crate::model::{
    CheckId, CheckStatus, Class, Evidence, EvidenceSource, Finding, FindingId, Severity, Subject,
    Target, TargetKind,
};
use crate::parse::kube::{Objects, parse_objects};
use crate::probe::Input;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The check id.
pub const CHECK_ID: &str = "cluster.pulls";

/// The resources read, in one `kubectl get` (nodes are read apart: cluster-scoped, and a user
/// allowed to read pods is not always allowed to read nodes).
pub const RESOURCES: &str =
    "pods,deployments,statefulsets,daemonsets,replicasets,jobs,cronjobs,events,secrets";

/// Where the cluster view comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSource {
    /// `kubectl` on this machine.
    Local {
        /// The namespace (`None`: all namespaces).
        namespace: Option<String>,
    },
    /// `kubectl` on an inventory host (a control-plane node), over SSH.
    Ssh {
        /// The host.
        host: Host,
        /// The namespace (`None`: all namespaces).
        namespace: Option<String>,
    },
    /// Manifest files (YAML or JSON), read offline.
    Manifests(Vec<String>),
}

impl ClusterSource {
    /// The `kubectl get` argument lists this source runs (none for manifests).
    #[must_use]
    pub fn kubectl_argvs(&self) -> Vec<Vec<String>> {
        let ns = match self {
            ClusterSource::Local { namespace } | ClusterSource::Ssh { namespace, .. } => namespace,
            ClusterSource::Manifests(_) => return Vec::new(),
        };
        let scope = match ns {
            Some(n) => vec!["-n".to_string(), n.clone()],
            None => vec!["-A".to_string()],
        };
        let mut main: Vec<String> = ["kubectl", "get", RESOURCES]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        main.extend(scope);
        main.extend(["-o".to_string(), "json".to_string()]);
        let nodes = ["kubectl", "get", "nodes", "-o", "json"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        vec![main, nodes]
    }

    /// Where kubectl runs, for evidence (`local`, or the host's name).
    #[must_use]
    pub fn host_name(&self) -> &str {
        match self {
            ClusterSource::Ssh { host, .. } => &host.name,
            _ => "local",
        }
    }
}

/// `argv` as one shell command line (for SSH), each argument quoted unless it is plainly safe.
#[must_use]
pub fn shell_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let safe = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ",._/=:@-".contains(c));
            if safe {
                a.clone()
            } else {
                super::remote::shell_quote(a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What was read: one entry per input (a kubectl command or a manifest file).
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// (origin, read from a command, objects). The origin is `host: command` for commands and the
    /// path for files.
    pub parts: Vec<(String, bool, Objects)>,
    /// Inputs that could not be read, and why (the view is partial, not wrong).
    pub problems: Vec<String>,
}

impl ClusterView {
    /// Every object read.
    #[must_use]
    pub fn objects(&self) -> Objects {
        let mut all = Objects::default();
        for (_, _, o) in &self.parts {
            all.extend(o.clone());
        }
        all
    }

    /// The nodes as `(name, InternalIP)`: a source of node hosts, so nodes need not be listed by
    /// hand.
    #[must_use]
    pub fn node_hosts(&self) -> Vec<(String, Option<String>)> {
        self.parts
            .iter()
            .flat_map(|(_, _, o)| o.nodes.iter())
            .map(|n| (n.name.clone(), n.internal_ip.clone()))
            .collect()
    }
}

/// Reads the cluster once and hands the same view to every check that asks.
pub struct ClusterReader {
    /// Where from.
    pub source: ClusterSource,
    cell: tokio::sync::OnceCell<Result<Arc<ClusterView>, String>>,
}

impl ClusterReader {
    /// A reader for `source`.
    #[must_use]
    pub fn new(source: ClusterSource) -> Self {
        ClusterReader {
            source,
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// The view (read on first call). An error when nothing at all could be read.
    ///
    /// # Errors
    /// Every input failed; the reasons, joined.
    pub async fn view(&self, ctx: &CheckContext) -> Result<Arc<ClusterView>, String> {
        self.cell
            .get_or_init(|| async { read_view(&self.source, ctx).await.map(Arc::new) })
            .await
            .clone()
    }
}

async fn read_view(source: &ClusterSource, ctx: &CheckContext) -> Result<ClusterView, String> {
    let mut view = ClusterView::default();
    match source {
        ClusterSource::Manifests(paths) => {
            for path in paths {
                let text = ctx
                    .probes
                    .open_input(path)
                    .map_err(|e| e.to_string())
                    .and_then(|i| i.into_bytes().map_err(|e| format!("reading '{path}': {e}")));
                match text {
                    Ok(bytes) => match parse_objects(&String::from_utf8_lossy(&bytes), path) {
                        Ok(o) => view.parts.push((path.clone(), false, o)),
                        Err(e) => view.problems.push(e.to_string()),
                    },
                    Err(e) => view.problems.push(e),
                }
            }
        }
        ClusterSource::Local { .. } | ClusterSource::Ssh { .. } => {
            for argv in source.kubectl_argvs() {
                let command = shell_command(&argv);
                let origin = format!("{}: {command}", source.host_name());
                let out = match source {
                    ClusterSource::Ssh { host, .. } => {
                        ctx.probes
                            .exec(&host.name, host.destination(), &command)
                            .await
                    }
                    _ => ctx.probes.run_local(&argv).await,
                };
                let out = match out {
                    Ok(o) => o,
                    Err(e) => {
                        view.problems
                            .push(ctx.redactor.redact(&e.to_string()).into_owned());
                        continue;
                    }
                };
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if out.stdout.iter().all(u8::is_ascii_whitespace) {
                    view.problems.push(format!(
                        "{origin} exited {}: {}",
                        out.exit_status
                            .map_or_else(|| "without a status".to_string(), |s| s.to_string()),
                        ctx.redactor.redact(&stderr)
                    ));
                    continue;
                }
                if !stderr.is_empty() {
                    // kubectl prints what it could read and names what it could not (RBAC)
                    view.problems
                        .push(format!("{origin}: {}", ctx.redactor.redact(&stderr)));
                }
                match parse_objects(&String::from_utf8_lossy(&out.stdout), &origin) {
                    Ok(o) => view.parts.push((origin, true, o)),
                    Err(e) => view.problems.push(e.to_string()),
                }
            }
        }
    }
    if view.parts.is_empty() {
        return Err(if view.problems.is_empty() {
            "nothing to read".to_string()
        } else {
            view.problems.join("; ")
        });
    }
    Ok(view)
}

/// A pull-failure row for one event, in `kubectl describe`'s Events layout, so the scanner reads
/// its count and node the same way it reads a pasted `describe`.
fn event_row(e: &crate::parse::kube::Event, node: Option<&str>) -> String {
    let age = match (&e.first, &e.last) {
        (Some(f), Some(l)) if f != l => format!("{l} (x{} over {f})", e.count),
        (_, Some(t)) | (Some(t), None) => format!("{t} (x{})", e.count),
        (None, None) => format!("- (x{})", e.count),
    };
    let from = match e.host.as_deref().or(node) {
        Some(n) => format!("kubelet, {n}"),
        None => "kubelet".to_string(),
    };
    // rows are one line: a message with newlines is joined
    let message = e.message.replace(['\n', '\r'], " ");
    format!(
        "  {}  {}  {age}  {from}  {message}",
        e.kind.as_deref().unwrap_or("Warning"),
        e.reason.as_deref().unwrap_or("Unknown")
    )
}

/// What the pods that cannot pull say, per node: the rows to classify (events, or the waiting
/// message when the events have expired).
#[must_use]
pub fn failing_pod_rows(objects: &Objects) -> BTreeMap<String, Vec<String>> {
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in &objects.pods {
        let failures: Vec<_> = pod.pull_failures().collect();
        if failures.is_empty() {
            continue;
        }
        let node = pod
            .node
            .clone()
            .unwrap_or_else(|| "(unscheduled)".to_string());
        let rows = by_node.entry(node.clone()).or_default();
        let events: Vec<_> = objects
            .events
            .iter()
            .filter(|e| {
                e.involved.kind == "Pod"
                    && e.involved.name == pod.object.name
                    && (e.involved.namespace.is_none()
                        || pod.object.namespace.is_none()
                        || e.involved.namespace == pod.object.namespace)
            })
            .collect();
        if events.is_empty() {
            for w in failures {
                rows.push(format!(
                    "  Warning  {}  -  kubelet, {node}  {}",
                    w.reason,
                    w.message
                        .as_deref()
                        .unwrap_or("")
                        .replace(['\n', '\r'], " ")
                ));
            }
        } else {
            rows.extend(events.iter().map(|e| event_row(e, Some(&node))));
        }
    }
    by_node
}

/// The pods on `node` that cannot pull, each with its image, owner and pull secrets: what the
/// engineer reads next to the events.
#[must_use]
pub fn failing_pods_on(objects: &Objects, node: &str) -> Vec<String> {
    objects
        .pods
        .iter()
        .filter(|p| p.node.as_deref().unwrap_or("(unscheduled)") == node)
        .filter(|p| p.pull_failures().next().is_some())
        .map(|p| {
            let w = objects
                .workloads
                .iter()
                .find(|w| w.object.kind == "Pod" && w.object.name == p.object.name);
            let images: Vec<String> = p
                .pull_failures()
                .map(|f| {
                    format!(
                        "{} ({}, {})",
                        f.image.as_deref().unwrap_or("?"),
                        f.container,
                        f.reason
                    )
                })
                .collect();
            let secrets = w.map_or_else(String::new, |w| {
                if w.pull_secrets.is_empty() {
                    "no imagePullSecrets".to_string()
                } else {
                    format!("imagePullSecrets [{}]", w.pull_secrets.join(", "))
                }
            });
            let owner = w
                .and_then(|w| w.owner.clone())
                .map_or_else(String::new, |o| format!(" of {o}"));
            format!(
                "pod {}{owner}: {}; {secrets}",
                p.object.label().trim_start_matches("Pod/"),
                images.join(", ")
            )
        })
        .collect()
}

/// Pull secrets a workload names that the namespace does not have, or whose `auths` keys do not
/// cover an image's `host:port` (kubelet matches the port exactly: DOMAIN.md §6.1). Only where
/// the input listed the namespace's Secrets.
#[must_use]
pub fn pull_secret_findings(view: &ClusterView) -> Vec<Finding> {
    let objects = view.objects();
    // namespaces whose Secrets were listed (a manifest without namespace counts as any)
    let listed: std::collections::BTreeSet<Option<String>> = objects
        .secrets
        .iter()
        .map(|s| s.object.namespace.clone())
        .collect();
    if listed.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (origin, from_command, part) in &view.parts {
        for w in &part.workloads {
            if w.owner.is_some() {
                continue; // the controller's template says the same
            }
            for name in &w.pull_secrets {
                let found = objects.secrets.iter().find(|s| {
                    &s.object.name == name
                        && (s.object.namespace == w.object.namespace
                            || s.object.namespace.is_none()
                            || w.object.namespace.is_none())
                });
                let evidence = Evidence::new(
                    if *from_command {
                        let (host, command) = origin.split_once(": ").unwrap_or(("local", origin));
                        EvidenceSource::Command {
                            host: host.to_string(),
                            command: command.to_string(),
                        }
                    } else {
                        EvidenceSource::File {
                            path: origin.clone(),
                            line: w.object.line.unwrap_or(0),
                        }
                    },
                    format!(
                        "{}: imagePullSecrets: [{}]",
                        w.object.label(),
                        w.pull_secrets.join(", ")
                    ),
                );
                let ns = w
                    .object
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let mut problem = None;
                match found {
                    None if listed.contains(&w.object.namespace) || listed.contains(&None) => {
                        problem = Some((
                            format!("Pull secret '{name}' does not exist in namespace {ns}"),
                            format!(
                                "{} names the pull secret '{name}', which namespace {ns} does not have: kubelet pulls without credentials (event FailedToRetrieveImagePullSecret), and a private registry answers 401/403. The Secret must be in the pod's namespace.",
                                w.object.label()
                            ),
                            None,
                        ));
                    }
                    Some(s) => {
                        if let Some(Ok(cfg)) = &s.docker_config {
                            for c in &w.containers {
                                let Ok(image) = crate::parse::image_ref::ImageRef::parse(&c.image)
                                else {
                                    continue;
                                };
                                if image.domain == crate::parse::image_ref::DOCKER_HUB {
                                    continue;
                                }
                                if cfg.matching(&c.image).is_empty() {
                                    let keys: Vec<&str> =
                                        cfg.entries.iter().map(|e| e.key.as_str()).collect();
                                    problem = Some((
                                        format!(
                                            "Pull secret '{name}' has no credentials for {}",
                                            image.domain
                                        ),
                                        format!(
                                            "{} pulls {} with pull secret '{name}', whose `auths` keys are [{}]. kubelet uses an entry only when its host and port match the image's exactly, so the pull goes out anonymously and the token service answers 403 (`failed to fetch anonymous token`).",
                                            w.object.label(),
                                            c.image,
                                            keys.join(", ")
                                        ),
                                        Some(c.image.clone()),
                                    ));
                                    break;
                                }
                            }
                        }
                    }
                    None => {}
                }
                if let Some((title, explanation, image)) = problem {
                    let target = Target {
                        kind: TargetKind::Image,
                        name: image.clone().unwrap_or_else(|| w.object.label()),
                    };
                    out.push(Finding {
                        subject: Subject {
                            image,
                            ..Subject::default()
                        },
                        explanation,
                        next_steps: vec![
                            format!("kubectl create secret docker-registry {name} -n {ns} --docker-server=<registry host:port as in the image> --docker-username=<deploy token user> --docker-password=<token>"),
                        ],
                        evidence: vec![evidence],
                        ..Finding::with_id(
                            FindingId::derive(&[CHECK_ID, "pull-secret", &w.object.label(), name]),
                            CHECK_ID,
                            Class::AuthDenied,
                            Severity::Error,
                            target,
                            title,
                        )
                    });
                }
            }
        }
    }
    out
}

/// `cluster.pulls` over one source.
pub struct ClusterPulls {
    /// The shared reader.
    pub reader: Arc<ClusterReader>,
    /// Names and addresses of the inventory's hosts: nodes the cluster reports beyond these are
    /// offered as `[[host]]` entries.
    pub known_hosts: Vec<String>,
}

/// An info finding offering the nodes `kubectl get nodes` reports that the inventory lacks, as
/// `[[host]]` entries to paste, so node checks can run there.
#[must_use]
pub fn node_offer(view: &ClusterView, known_hosts: &[String]) -> Option<Finding> {
    let missing: Vec<(String, Option<String>)> = view
        .node_hosts()
        .into_iter()
        .filter(|(name, ip)| {
            !known_hosts.contains(name) && ip.as_ref().is_none_or(|i| !known_hosts.contains(i))
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    let toml: Vec<String> = missing
        .iter()
        .map(|(name, ip)| {
            format!(
                "[[host]]\nname = \"{name}\"\nssh = \"{}\"\nroles = [\"node\"]",
                ip.as_deref().unwrap_or(name)
            )
        })
        .collect();
    let listed: Vec<String> = missing
        .iter()
        .map(|(n, ip)| match ip {
            Some(ip) => format!("{n} ({ip})"),
            None => n.clone(),
        })
        .collect();
    let origin = view
        .parts
        .iter()
        .find(|(_, _, o)| !o.nodes.is_empty())
        .map_or_else(String::new, |(o, _, _)| o.clone());
    let (host, command) = origin
        .split_once(": ")
        .unwrap_or(("local", origin.as_str()));
    Some(Finding {
        subject: Subject {
            nodes: missing.iter().map(|(n, _)| n.clone()).collect(),
            ..Subject::default()
        },
        explanation: "kubectl get nodes reports these nodes with their InternalIP; add them to pulldoctor.toml so the node checks (journal, containerd configuration, hops) run on them too.".to_string(),
        next_steps: toml,
        evidence: vec![Evidence::new(EvidenceSource::Command {
                host: host.to_string(),
                command: command.to_string(),
            }, listed.join(", "))],
        count: missing.len() as u64,
        ..Finding::with_id(
            FindingId::derive(&[CHECK_ID, "nodes", &listed.join(",")]),
            CHECK_ID,
            Class::None,
            Severity::Info,
            Target {
                kind: TargetKind::Node,
                name: "cluster nodes".to_string(),
            },
            format!(
                "The cluster has {} node(s) the inventory does not list: {}",
                missing.len(),
                listed.join(", ")
            ),
        )
    })
}

impl Check for ClusterPulls {
    fn id(&self) -> CheckId {
        CheckId(CHECK_ID.to_string())
    }

    fn target(&self) -> Target {
        Target {
            kind: TargetKind::Input,
            name: match &self.reader.source {
                ClusterSource::Manifests(p) => p.join(", "),
                other => format!("kubectl on {}", other.host_name()),
            },
        }
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let reader = self.reader.clone();
        let known_hosts = self.known_hosts.clone();
        Box::pin(async move {
            let view = match reader.view(&ctx).await {
                Ok(v) => v,
                Err(e) => return CheckOutcome::errored(format!("reading the cluster: {e}")),
            };
            let objects = view.objects();
            let command = reader
                .source
                .kubectl_argvs()
                .first()
                .map_or_else(|| "manifests".to_string(), |a| shell_command(a));
            let rows = failing_pod_rows(&objects);
            let mut findings = pull_secret_findings(&view);
            let mut unclassified = Vec::new();
            for (node, rows) in rows {
                let text = rows.join("\n") + "\n";
                let origin = RemoteOrigin {
                    check: CheckId(CHECK_ID.to_string()),
                    host: node.clone(),
                    command: format!("{command} (events of the pods on {node})"),
                };
                let classifier = ctx.classifier.clone();
                let redactor = ctx.redactor.clone();
                let name = format!("{node}: pod events");
                let scanned = tokio::task::spawn_blocking(move || {
                    scan_input(&classifier, Input::Bytes(text.into_bytes()), &name, 1).map(|o| {
                        let o = o.from_remote(origin);
                        (
                            o.findings(&classifier, &redactor),
                            o.unclassified(&redactor),
                        )
                    })
                })
                .await;
                match scanned {
                    Ok(Ok((mut f, u))) => {
                        let pods = failing_pods_on(&objects, &node);
                        for finding in &mut f {
                            finding.explanation =
                                format!("{} On {node}: {}.", finding.explanation, pods.join("; "));
                        }
                        findings.extend(f);
                        unclassified.extend(u);
                    }
                    Ok(Err(e)) => return CheckOutcome::errored(format!("scanning events: {e}")),
                    Err(e) => return CheckOutcome::errored(format!("the event scan stopped: {e}")),
                }
            }
            let failed = !findings.is_empty();
            findings.extend(node_offer(&view, &known_hosts));
            let status = if failed {
                CheckStatus::Failed
            } else if objects.pods.is_empty() {
                // manifests say what should run, not what failed: nothing was checked
                CheckStatus::Skipped {
                    reason: "no pod states to read (manifests describe workloads, not their pods); the images were compared by image.names".to_string(),
                }
            } else if view.problems.is_empty() {
                CheckStatus::Passed
            } else {
                // part of the view is missing: not a pass
                CheckStatus::Errored {
                    error: format!(
                        "part of the cluster could not be read: {}",
                        view.problems.join("; ")
                    ),
                }
            };
            CheckOutcome {
                status,
                findings,
                unclassified,
                input: None,
            }
        })
    }
}

/// True when `kubectl` is on `PATH` and a kubeconfig exists (`$KUBECONFIG`, else
/// `~/.kube/config`): the local source can be tried.
#[must_use]
pub fn local_kubectl_available() -> bool {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("kubectl").is_file()));
    let config = match std::env::var_os("KUBECONFIG") {
        Some(k) => std::env::split_paths(&k).any(|p| p.is_file()),
        None => std::env::var_os("HOME")
            .is_some_and(|h| std::path::Path::new(&h).join(".kube/config").is_file()),
    };
    on_path && config
}
