//! Checks that run on inventory hosts over SSH: `ssh.reachable` (one finding for a host that
//! cannot be reached; its other checks are skipped with that reason) and `node.journal`
//! (containerd's and kubelet's journal on a node, classified with the signature catalog).

use super::logs::{RemoteOrigin, scan_input};
use super::{Check, CheckContext, CheckFuture, CheckOutcome};
use crate::inventory::Host;
use crate::model::{
    CheckId, CheckStatus, Class, Evidence, EvidenceSource, Finding, FindingId, Severity, Subject,
    Target, TargetKind,
};
use crate::probe::{Input, ProbeError};
use crate::ssh::Step;

fn node_target(host: &Host) -> Target {
    Target {
        kind: TargetKind::Node,
        name: host.name.clone(),
    }
}

/// A host as the target of a check about the host itself (reachability): a node, else a hop,
/// else the GitLab host, so each shows where it sits on the path.
fn host_target(host: &Host) -> Target {
    use crate::inventory::Role;
    let kind = if host.roles.contains(&Role::Node) {
        TargetKind::Node
    } else if host.roles.contains(&Role::Hop) {
        TargetKind::Hop
    } else if host.roles.contains(&Role::Gitlab) {
        TargetKind::Gitlab
    } else {
        TargetKind::Node
    };
    Target {
        kind,
        name: host.name.clone(),
    }
}

/// How a check that needed a host ends when the host could not be reached: skipped, naming the
/// reason (the `ssh.reachable` finding says the rest), not one more timeout.
#[must_use]
pub fn unreachable_outcome(error: &ProbeError) -> CheckOutcome {
    match error {
        ProbeError::Ssh(e) if e.step != Step::Command => {
            CheckOutcome::without_findings(CheckStatus::Skipped {
                reason: format!("host not reachable over SSH: {e}"),
            })
        }
        other => CheckOutcome::errored(other.to_string()),
    }
}

/// `text` as one single-quoted shell word (a `'` inside becomes `'\''`).
#[must_use]
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Prefix a privileged command with `sudo -n` when the inventory says so (`-n`: never prompt).
#[must_use]
pub fn privileged(host: &Host, command: &str) -> String {
    if host.sudo {
        format!("sudo -n {command}")
    } else {
        command.to_string()
    }
}

/// A probing check's outcome: its findings with evidence redacted (what a host printed can hold
/// secrets), failed if there are any.
fn probed_outcome(mut findings: Vec<Finding>, ctx: &CheckContext) -> CheckOutcome {
    for e in findings.iter_mut().flat_map(|f| f.evidence.iter_mut()) {
        e.text = ctx.redactor.redact(&e.text).into_owned();
    }
    let status = if findings.is_empty() {
        CheckStatus::Passed
    } else {
        CheckStatus::Failed
    };
    CheckOutcome {
        status,
        findings,
        unclassified: Vec::new(),
        input: None,
    }
}

/// `ssh.reachable`: connect, verify the host key, authenticate; the session is the one the
/// host's other checks use. No command of its own: each costs the host a shell start (and its
/// rc files), as much as the handshake on a fleet benchmark.
pub struct SshReachable {
    /// The host.
    pub host: Host,
}

impl Check for SshReachable {
    fn id(&self) -> CheckId {
        CheckId("ssh.reachable".into())
    }

    fn target(&self) -> Target {
        host_target(&self.host)
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let host = self.host.clone();
        Box::pin(async move {
            match ctx.probes.reach(&host.name, host.destination()).await {
                Ok(_) => CheckOutcome::without_findings(CheckStatus::Passed),
                Err(e) => {
                    let (class, step) = match &e {
                        ProbeError::Ssh(s) => (
                            if s.step == Step::Connect {
                                Class::OtherNetwork
                            } else {
                                Class::None
                            },
                            s.step.to_string(),
                        ),
                        _ => (Class::None, "probe".to_string()),
                    };
                    let message = ctx.redactor.redact(&e.to_string()).into_owned();
                    let finding = Finding {
                        subject: Subject { nodes: vec![host.name.clone()], endpoint: Some(host.destination().to_string()), ..Subject::default() },
                        explanation: format!(
                            "pulldoctor could not run commands on {} ({}), so its other checks were skipped. {message}",
                            host.name,
                            host.destination()
                        ),
                        next_steps: vec![
                            format!("Try it by hand: ssh {} true", host.destination()),
                            "Check ~/.ssh/config (HostName, User, Port, ProxyJump) and that the key is in the host's authorized_keys.".into(),
                        ],
                        evidence: vec![Evidence {
                            source: EvidenceSource::Probe { request: format!("ssh {} true", host.destination()) },
                            time: None,
                            host: Some(host.name.clone()),
                            text: message,
                            matched: None,
                        }],
                        ..Finding::with_id(
                            FindingId::derive(&["ssh.reachable", &host.name]),
                            "ssh.reachable",
                            class,
                            Severity::Error,
                            host_target(&host),
                            format!("Cannot reach {} over SSH ({step})", host.name),
                        )
                    };
                    CheckOutcome {
                        status: CheckStatus::Failed,
                        findings: vec![finding],
                        unclassified: Vec::new(),
                        input: None,
                    }
                }
            }
        })
    }
}

/// `node.journal`: what containerd and kubelet logged on a node in the window, classified.
pub struct NodeJournal {
    /// The node.
    pub host: Host,
    /// How far back, in seconds.
    pub since_secs: u64,
}

impl NodeJournal {
    /// The command it runs.
    #[must_use]
    pub fn command(&self) -> String {
        let mut cmd = privileged(
            &self.host,
            &format!(
                "journalctl -u containerd -u kubelet --since=-{}s --no-pager -o short-iso",
                self.since_secs
            ),
        );
        // the inventory validated these paths (absolute, no quotes); the last 64 MiB of each
        for file in &self.host.log_files {
            cmd.push_str(&format!(
                "; {}",
                privileged(&self.host, &format!("tail -c 67108864 '{file}'"))
            ));
        }
        cmd
    }
}

impl Check for NodeJournal {
    fn id(&self) -> CheckId {
        CheckId("node.journal".into())
    }

    fn target(&self) -> Target {
        node_target(&self.host)
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let host = self.host.clone();
        let command = self.command();
        Box::pin(async move {
            let out = match ctx
                .probes
                .exec(&host.name, host.destination(), &command)
                .await
            {
                Ok(out) => out,
                Err(e) => return unreachable_outcome(&e),
            };
            if out.exit_status != Some(0) && out.stdout.is_empty() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return CheckOutcome::errored(format!(
                    "{}: '{command}' exited {}: {}",
                    host.name,
                    out.exit_status
                        .map_or_else(|| "without a status".to_string(), |s| s.to_string()),
                    ctx.redactor.redact(stderr.trim())
                ));
            }
            let name = format!("{}: {command}", host.name);
            let origin = RemoteOrigin {
                check: CheckId("node.journal".into()),
                host: host.name.clone(),
                command: command.clone(),
            };
            let work = tokio::task::spawn_blocking(move || {
                let outcome = match scan_input(
                    &ctx.classifier,
                    Input::Bytes(out.stdout),
                    &name,
                    ctx.workers,
                ) {
                    Ok(o) => o.from_remote(origin),
                    Err(e) => {
                        return CheckOutcome::errored(format!(
                            "reading the journal of {name}: {e}"
                        ));
                    }
                };
                let findings = outcome.findings(&ctx.classifier, &ctx.redactor);
                let status = if findings.is_empty() {
                    CheckStatus::Passed
                } else {
                    CheckStatus::Failed
                };
                CheckOutcome {
                    status,
                    unclassified: outcome.unclassified(&ctx.redactor),
                    findings,
                    input: None,
                }
            });
            work.await
                .unwrap_or_else(|e| CheckOutcome::errored(format!("the journal scan stopped: {e}")))
        })
    }
}

/// `registry.scheme`, node side: what the node's containerd will speak to the registry (from its
/// version, `config.toml` and `certs.d`), against what the registry speaks as seen from the node.
pub struct RegistryScheme {
    /// The node.
    pub host: Host,
    /// The registry `host:port` as the nodes pull it (validated by the inventory).
    pub registry: String,
}

impl RegistryScheme {
    /// The gather command (the script of [`super::node_registry::GATHER_SCRIPT`], quoted).
    #[must_use]
    pub fn gather_command(&self) -> String {
        let env = format!("env PD_REGISTRY='{}'", self.registry);
        privileged(
            &self.host,
            &format!(
                "{env} sh -c {}",
                shell_quote(super::node_registry::GATHER_SCRIPT)
            ),
        )
    }

    /// A plain-HTTP request to the registry from the node: an `HTTP/` answer means it speaks
    /// plain HTTP; a TLS alert (0x15) means HTTPS.
    #[must_use]
    pub fn scheme_probe_command(&self) -> String {
        let (host, port) = self
            .registry
            .rsplit_once(':')
            .unwrap_or((&self.registry, "443"));
        format!(
            "timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port} && printf \"GET /v2/ HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n\" >&3 && head -c 16 <&3'"
        )
    }
}

/// What the first bytes of the registry's answer to a plain-HTTP request say it speaks.
#[must_use]
pub fn speaks_http(answer: &[u8]) -> Option<bool> {
    if answer.starts_with(b"HTTP/") {
        Some(true)
    } else if answer.first() == Some(&0x15) {
        Some(false)
    } else {
        None
    }
}

impl Check for RegistryScheme {
    fn id(&self) -> CheckId {
        CheckId(super::node_registry::CHECK_ID.into())
    }

    fn target(&self) -> Target {
        node_target(&self.host)
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let host = self.host.clone();
        let registry = self.registry.clone();
        let (gather, probe) = (self.gather_command(), self.scheme_probe_command());
        Box::pin(async move {
            // both reads at once: the probe may wait out a dropped path
            let (gathered, probed) = tokio::join!(
                ctx.probes.exec(&host.name, host.destination(), &gather),
                ctx.probes.exec(&host.name, host.destination(), &probe)
            );
            let out = match gathered {
                Ok(out) => out,
                Err(e) => return unreachable_outcome(&e),
            };
            let text = String::from_utf8_lossy(&out.stdout);
            let facts = match super::node_registry::parse_gathered(&text) {
                Ok(f) => f,
                Err(e) => {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    return CheckOutcome::errored(format!(
                        "{}: reading containerd's configuration: {e} {}",
                        host.name,
                        ctx.redactor.redact(stderr.trim())
                    ));
                }
            };
            let verdict = super::node_registry::evaluate(&facts, &registry);
            let speaks = match probed {
                Ok(o) => speaks_http(&o.stdout),
                Err(_) => None,
            };
            let found = super::node_registry::findings(&verdict, &host.name, &registry, speaks);
            probed_outcome(found, &ctx)
        })
    }
}

/// `path.hops` for one route: each hop's NAT rules and `ip_forward`, and TCP probes from every
/// node to the first hop and from every hop to the next, for every port; the first hop where the
/// chain breaks, and why.
#[derive(Debug, Clone)]
pub struct PathHops {
    /// The route, with the addresses each step dials.
    pub spec: super::hops::RouteSpec,
    /// The inventory hosts on it (vantages, hops, target), by name.
    pub hosts: std::collections::BTreeMap<String, Host>,
    /// Seconds each TCP probe may wait (a silent drop costs this once per probe).
    pub probe_timeout: u32,
}

/// What one SSH read of the hop walk was for.
enum Read {
    Facts(String),
    Probe(String),
}

impl Check for PathHops {
    fn id(&self) -> CheckId {
        CheckId(super::hops::CHECK_ID.into())
    }

    fn target(&self) -> Target {
        Target {
            kind: TargetKind::Hop,
            name: self.spec.name.clone(),
        }
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let check = self.clone();
        Box::pin(async move {
            match check.walk(&ctx).await {
                Ok(walk) => probed_outcome(super::hops::findings(&walk.verdict), &ctx),
                Err(reason) => CheckOutcome::without_findings(CheckStatus::Skipped { reason }),
            }
        })
    }
}

/// What one hop walk read and concluded (the fixer plans from it, then walks again to verify).
#[derive(Debug, Clone)]
pub struct HopWalk {
    /// The verdict per port and vantage.
    pub verdict: super::hops::RouteVerdict,
    /// What each host that answered said about itself, by name.
    pub facts: std::collections::BTreeMap<String, super::hops::HopFacts>,
}

impl PathHops {
    /// Read every hop and probe every link now, and walk the route.
    ///
    /// # Errors
    /// No host of the route could be read (the reason, redacted).
    pub async fn walk(&self, ctx: &CheckContext) -> Result<HopWalk, String> {
        // every read at once: one gather per hop (and the target), one probe per link and port
        let mut reads: Vec<(Host, Read, String)> = Vec::new();
        let gather = format!("sh -c {}", shell_quote(super::hops::HOP_GATHER_SCRIPT));
        for step in self
            .spec
            .hops
            .iter()
            .chain(std::iter::once(&self.spec.target))
        {
            if let Some(h) = self.hosts.get(&step.name) {
                reads.push((h.clone(), Read::Facts(step.name.clone()), gather.clone()));
            }
        }
        let steps: Vec<&super::hops::HopSpec> = self
            .spec
            .hops
            .iter()
            .chain(std::iter::once(&self.spec.target))
            .collect();
        for port in &self.spec.ports {
            if let Some(first) = steps.first() {
                for v in &self.spec.vantages {
                    if let Some(h) = self.hosts.get(&v.name) {
                        reads.push((
                            h.clone(),
                            Read::Probe(v.name.clone()),
                            super::hops::probe_script(
                                &first.address,
                                port.port,
                                self.probe_timeout,
                            ),
                        ));
                    }
                }
            }
            for pair in steps.windows(2) {
                if let Some(h) = self.hosts.get(&pair[0].name) {
                    reads.push((
                        h.clone(),
                        Read::Probe(pair[0].name.clone()),
                        super::hops::probe_script(&pair[1].address, port.port, self.probe_timeout),
                    ));
                }
            }
        }
        let mut set = tokio::task::JoinSet::new();
        for (host, what, command) in reads {
            let probes = ctx.probes.clone();
            set.spawn(async move {
                let out = probes.exec(&host.name, host.destination(), &command).await;
                (what, out)
            });
        }
        let mut facts = std::collections::BTreeMap::new();
        let mut probes = super::hops::ProbeSet::new();
        let mut unreachable = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((what, out)) = joined else { continue };
            match (what, out) {
                (Read::Facts(name), Ok(o)) => {
                    facts.insert(
                        name,
                        super::hops::parse_hop_gathered(&String::from_utf8_lossy(&o.stdout)),
                    );
                }
                (Read::Probe(from), Ok(o)) => {
                    probes.add_output(&from, &String::from_utf8_lossy(&o.stdout));
                }
                (_, Err(e)) => unreachable.push(e.to_string()),
            }
        }
        if facts.is_empty() && probes.records.is_empty() {
            unreachable.sort();
            unreachable.dedup();
            return Err(format!(
                "no host of route '{}' could be read: {}",
                self.spec.name,
                ctx.redactor.redact(&unreachable.join("; "))
            ));
        }
        let verdict = super::hops::evaluate_route(&self.spec, &facts, &probes);
        Ok(HopWalk { verdict, facts })
    }
}
