//! Fix plans from fresh facts: each reads the host again the way its check does, and plans only
//! what that reading shows is needed (so a second run after a successful fix plans nothing).

use crate::check::node_registry::{self, NodeFault, NodeVerdict, PullPath};
use crate::check::remote::{RegistryScheme, speaks_http};
use crate::inventory::Host;
use crate::model::{FixPlan, FixRisk, FixStep};
use crate::probe::Probes;

/// Where containerd looks when nothing else is configured.
const DEFAULT_CERTS_D: &str = "/etc/containerd/certs.d";

/// A plan, and the facts it was made from (shown with it).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan.
    pub plan: FixPlan,
    /// Why, in plain words (the check's reasoning).
    pub why: Vec<String>,
}

/// The `hosts.toml` for a plain-HTTP registry, as containerd reads it (DOMAIN.md §5.1).
#[must_use]
pub fn http_hosts_toml(registry: &str) -> String {
    format!(
        "# Written by pulldoctor: {registry} speaks plain HTTP, so containerd must be told to\n\
         # use http:// for it (it tries HTTPS first for every registry but localhost).\n\
         server = \"http://{registry}\"\n\
         \n\
         [host.\"http://{registry}\"]\n\
         \x20 capabilities = [\"pull\", \"resolve\"]\n"
    )
}

/// `registry.scheme` on `host`: read the node again and, when containerd will not speak plain
/// HTTP to a registry that speaks only that, plan the `hosts.toml` where containerd will find it.
///
/// # Errors
/// The host could not be read (SSH, or the gather output).
pub async fn node_hosts_toml(
    probes: &dyn Probes,
    host: &Host,
    registry: &str,
) -> Result<Option<Planned>, String> {
    let check = RegistryScheme {
        host: host.clone(),
        registry: registry.to_string(),
    };
    let (gather, probe) = (check.gather_command(), check.scheme_probe_command());
    let (gathered, probed) = tokio::join!(
        probes.exec(&host.name, host.destination(), &gather),
        probes.exec(&host.name, host.destination(), &probe)
    );
    let out = gathered.map_err(|e| e.to_string())?;
    let facts = node_registry::parse_gathered(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("{}: reading containerd's configuration: {e}", host.name))?;
    let verdict = node_registry::evaluate(&facts, registry);
    let speaks = probed.ok().and_then(|o| speaks_http(&o.stdout));
    Ok(plan_from_verdict(&verdict, host, registry, speaks))
}

/// The plan for one node's verdict (pure, so it is tested without a node).
#[must_use]
pub fn plan_from_verdict(
    verdict: &NodeVerdict,
    host: &Host,
    registry: &str,
    speaks_http: Option<bool>,
) -> Option<Planned> {
    use node_registry::Scheme;
    // Only a registry seen answering plain HTTP gets an http:// hosts.toml.
    if speaks_http != Some(true) || matches!(verdict.scheme, Scheme::Http | Scheme::HttpsThenHttp) {
        return None;
    }
    let multi_on_transfer =
        verdict.pull_path == PullPath::TransferService && verdict.config_path.contains(':');
    let root = if multi_on_transfer {
        // 2.1+ takes the whole list as one path: nothing written there is read
        None
    } else {
        Some(
            verdict
                .roots
                .first()
                .cloned()
                .unwrap_or_else(|| DEFAULT_CERTS_D.to_string()),
        )
    };
    let mut steps = Vec::new();
    let mut restarts = false;
    if let Some(root) = &root {
        steps.push(FixStep::WriteRemoteFile {
            host: host.name.clone(),
            path: format!("{root}/{registry}/hosts.toml"),
            mode: "0644".into(),
            owner: "root:root".into(),
            content: http_hosts_toml(registry),
        });
    }
    if verdict.has(|f| matches!(f, NodeFault::NoConfigPath)) || multi_on_transfer {
        restarts = true;
        steps.push(FixStep::Manual {
            text: format!(
                "containerd on {} does not read {DEFAULT_CERTS_D} for this registry ({}). Set a single directory as config_path in /etc/containerd/config.toml under the CRI registry section of this version, then restart containerd; the edit is left to you because config.toml layouts differ.",
                host.name,
                if multi_on_transfer { "a ':' list is one path to 2.1+'s transfer service" } else { "no config_path is set" }
            ),
            commands: vec![
                "grep -n config_path /etc/containerd/config.toml".into(),
                format!("mkdir -p {DEFAULT_CERTS_D}/{registry}"),
                format!(
                    "printf '%s' {} > {DEFAULT_CERTS_D}/{registry}/hosts.toml",
                    crate::check::remote::shell_quote(&http_hosts_toml(registry))
                ),
                "systemctl restart containerd".into(),
            ],
        });
    }
    if steps.is_empty() {
        return None;
    }
    Some(Planned {
        plan: FixPlan {
            id: "hosts-toml-http".into(),
            title: format!(
                "Tell containerd on {} to use http:// for {registry}",
                host.name
            ),
            hosts: vec![host.name.clone()],
            risk: if restarts {
                FixRisk::Disruptive
            } else {
                FixRisk::Safe
            },
            restarts_service: restarts,
            verify: format!("registry.scheme on {}", host.name),
            steps,
        },
        why: verdict.reasons.clone(),
    })
}
