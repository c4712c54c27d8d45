//! The inventory (`pulldoctor.toml`): the hosts pulldoctor may reach over SSH and their roles, the
//! routes from the nodes through the forwarding hops to the registry, the registry address as the
//! nodes pull it, and GitLab. Found in the working directory, `~/.config/pulldoctor/`, or given
//! with `--config`. Errors name the file, line and column.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The commented example `pulldoctor init` writes (and a test parses).
pub const EXAMPLE: &str = include_str!("../assets/pulldoctor.example.toml");

/// The file name looked for.
pub const FILE_NAME: &str = "pulldoctor.toml";

/// A host's part in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A Kubernetes node (containerd, kubelet).
    Node,
    /// A forwarding hop (bastion, NAT host).
    Hop,
    /// A GitLab runner host (its Docker daemon).
    Runner,
    /// The GitLab host (registry, token realm).
    Gitlab,
    /// A Kubernetes control-plane host where `kubectl` works: the cluster's own view is read there.
    #[serde(rename = "control-plane", alias = "control_plane")]
    ControlPlane,
}

/// `[gitlab]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gitlab {
    /// GitLab's `external_url` as the nodes see it.
    pub url: Option<String>,
    /// `group/project`.
    pub project: Option<String>,
    /// The environment variable holding the API token (never the token itself).
    #[serde(default = "default_token_env")]
    pub token_env: String,
}

fn default_token_env() -> String {
    "GITLAB_TOKEN".to_string()
}

/// `[registry]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// `host:port` as the nodes pull it.
    pub address: String,
    /// A PEM file with the CA the nodes trust for it (hosts.toml `ca`), when it speaks HTTPS.
    #[serde(default)]
    pub ca: Option<String>,
    /// Images to check end to end (token flow, manifest), `host:port/path:tag`.
    #[serde(default)]
    pub images: Vec<String>,
    /// The pull secret the workloads use: a Secret manifest, `kubectl get secret -o json`
    /// output, or a docker `config.json`.
    #[serde(default)]
    pub pull_secret: Option<String>,
}

/// `[repo]`: a checkout with `.gitlab-ci.yml` and manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// The checkout.
    #[serde(default = "default_repo_path")]
    pub path: PathBuf,
    /// Manifest globs, relative to `path`.
    #[serde(default)]
    pub manifests: Vec<String>,
}

fn default_repo_path() -> PathBuf {
    PathBuf::from(".")
}

/// `[kubernetes]`: how to read the cluster's own view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// The namespace of the workloads (default: all namespaces).
    pub namespace: Option<String>,
}

/// `[ssh]`: how to reach the hosts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// `ssh_config` to read (default `~/.ssh/config`).
    pub config: Option<String>,
    /// known_hosts files (default `~/.ssh/known_hosts`).
    #[serde(default)]
    pub known_hosts: Vec<String>,
    /// Accept and record unknown host keys.
    #[serde(default)]
    pub accept_new_host_keys: bool,
    /// Seconds to connect and authenticate, per hop.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
    /// Seconds per command.
    #[serde(default = "default_command_timeout")]
    pub command_timeout: u64,
    /// Commands at once on one host.
    #[serde(default = "default_per_host")]
    pub per_host: usize,
    /// Commands at once in all.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// SSH handshakes at once (each costs CPU here and on the host).
    #[serde(default = "default_connecting")]
    pub connecting: usize,
}

fn default_connect_timeout() -> u64 {
    10
}
fn default_command_timeout() -> u64 {
    60
}
fn default_per_host() -> usize {
    4
}
fn default_concurrency() -> usize {
    64
}
fn default_connecting() -> usize {
    16
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            config: None,
            known_hosts: Vec::new(),
            accept_new_host_keys: false,
            connect_timeout: default_connect_timeout(),
            command_timeout: default_command_timeout(),
            per_host: default_per_host(),
            concurrency: default_concurrency(),
            connecting: default_connecting(),
        }
    }
}

/// `[[host]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Its name in reports.
    pub name: String,
    /// SSH destination: an alias from `~/.ssh/config` or `[user@]host[:port]` (default: `name`).
    pub ssh: Option<String>,
    /// What it is.
    pub roles: Vec<Role>,
    /// The address the previous step of a route dials to reach it (hops, the registry host).
    pub address: Option<String>,
    /// Run privileged commands through `sudo -n`.
    #[serde(default)]
    pub sudo: bool,
    /// Log files to read besides the journal (containerd without systemd, k3s's
    /// `/var/lib/rancher/k3s/agent/containerd/containerd.log`).
    #[serde(default)]
    pub log_files: Vec<String>,
    /// How a fix restarts containerd here; it must exit 0 only once containerd runs again
    /// (default `systemctl restart containerd`).
    pub containerd_restart: Option<String>,
}

/// The restart a host's containerd gets when no `containerd_restart` is set.
pub const DEFAULT_CONTAINERD_RESTART: &str = "systemctl restart containerd";

impl Host {
    /// The SSH destination.
    #[must_use]
    pub fn destination(&self) -> &str {
        self.ssh.as_deref().unwrap_or(&self.name)
    }
}

/// `[[route]]`: a forwarded service, from nodes, through hops, to ports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Its name.
    pub name: String,
    /// The nodes it starts from (default: every node).
    #[serde(default)]
    pub from: Vec<String>,
    /// The hosts it goes through, in order; the last is where the service runs.
    pub hops: Vec<String>,
    /// The forwarded ports.
    pub ports: Vec<u16>,
    /// Which of the ports is the token realm's (default: 80 or 443 when listed).
    pub realm_port: Option<u16>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// GitLab.
    #[serde(default)]
    pub gitlab: Gitlab,
    /// The registry.
    pub registry: Option<Registry>,
    /// A checkout.
    pub repo: Option<Repo>,
    /// The cluster.
    #[serde(default)]
    pub kubernetes: Kubernetes,
    /// SSH settings.
    #[serde(default)]
    pub ssh: SshSettings,
    /// Hosts.
    #[serde(default, rename = "host")]
    pub hosts: Vec<Host>,
    /// Routes.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
}

/// An inventory problem, located.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{path}: {message}")]
pub struct InventoryError {
    /// The file.
    pub path: String,
    /// What and where (line, column).
    pub message: String,
}

impl Inventory {
    /// Parse and validate inventory text.
    ///
    /// # Errors
    /// Invalid TOML, unknown keys, bad values or references, with line and column.
    pub fn parse(text: &str, path: &str) -> Result<Self, InventoryError> {
        let located = |span: Option<std::ops::Range<usize>>, msg: String| {
            let message = match span {
                Some(s) => {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {col}: {msg}")
                }
                None => msg,
            };
            InventoryError {
                path: path.to_string(),
                message,
            }
        };
        let inv: Inventory =
            toml::from_str(text).map_err(|e| located(e.span(), e.message().to_string()))?;
        // references and values, located at their first mention in the text
        let find = |needle: &str| text.find(needle).map(|i| i..i + needle.len());
        let mut names = BTreeSet::new();
        for h in &inv.hosts {
            if h.name.trim().is_empty() {
                return Err(located(find("name"), "a host has an empty name".into()));
            }
            if !names.insert(h.name.as_str()) {
                return Err(located(
                    find(&format!("\"{}\"", h.name)),
                    format!("host '{}' is defined twice", h.name),
                ));
            }
            if let Some(bad) = h
                .log_files
                .iter()
                .find(|f| !f.starts_with('/') || f.contains('\'') || f.contains('\n'))
            {
                return Err(located(
                    find(bad),
                    format!(
                        "log file '{bad}' of host '{}' must be an absolute path without quotes",
                        h.name
                    ),
                ));
            }
            if h.roles.is_empty() {
                return Err(located(
                    find(&format!("\"{}\"", h.name)),
                    format!(
                        "host '{}' has no roles (node, hop, runner, gitlab, control-plane)",
                        h.name
                    ),
                ));
            }
        }
        let host_chars = |h: &str| {
            h.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')
            })
        };
        if let Some(r) = &inv.registry
            && r.address
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || !host_chars(h) || p.parse::<u16>().is_err())
        {
            return Err(located(
                find(&r.address),
                format!(
                    "registry address '{}' must be host:port, as the nodes pull it",
                    r.address
                ),
            ));
        }
        for route in &inv.routes {
            for name in route.from.iter().chain(&route.hops) {
                if !names.contains(name.as_str()) {
                    return Err(located(
                        find(&format!("\"{name}\"")),
                        format!(
                            "route '{}' names host '{name}', which is not a [[host]]",
                            route.name
                        ),
                    ));
                }
            }
            if let Some(h) = route
                .hops
                .iter()
                .filter_map(|n| inv.host(n))
                .find(|h| h.address.is_none())
            {
                return Err(located(
                    find(&format!("\"{}\"", h.name)),
                    format!(
                        "host '{}' is on route '{}' and needs the `address` the previous step dials",
                        h.name, route.name
                    ),
                ));
            }
            if route.hops.is_empty() || route.ports.is_empty() {
                return Err(located(
                    find(&format!("\"{}\"", route.name)),
                    format!("route '{}' needs hops and ports", route.name),
                ));
            }
        }
        Ok(inv)
    }

    /// Read and validate a file.
    ///
    /// # Errors
    /// Unreadable, or invalid (see [`Inventory::parse`]).
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| InventoryError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Where the inventory is: `--config`, else `./pulldoctor.toml`, else
    /// `$XDG_CONFIG_HOME/pulldoctor/pulldoctor.toml` (or `~/.config/…`). `None` when there is none.
    #[must_use]
    pub fn discover(
        explicit: Option<&Path>,
        cwd: &Path,
        config_home: Option<&Path>,
    ) -> Option<PathBuf> {
        if let Some(p) = explicit {
            return Some(p.to_path_buf());
        }
        let here = cwd.join(FILE_NAME);
        if here.is_file() {
            return Some(here);
        }
        let home = config_home.map(|c| c.join("pulldoctor").join(FILE_NAME))?;
        home.is_file().then_some(home)
    }

    /// Hosts with a role.
    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.roles.contains(&role))
    }

    /// A host by name.
    #[must_use]
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example `pulldoctor init` writes is a valid inventory.
    #[test]
    fn example_parses() {
        let inv = Inventory::parse(EXAMPLE, "example").unwrap();
        assert_eq!(inv.registry.as_ref().unwrap().address, "172.100.100.9:5050");
        assert_eq!(inv.hosts_with(Role::Node).count(), 4);
        assert_eq!(inv.routes.len(), 1);
    }

    /// `control-plane` hosts and the `[kubernetes]` namespace.
    #[test]
    fn kubernetes_section() {
        let inv = Inventory::parse(
            "[kubernetes]\nnamespace = \"gition\"\n[[host]]\nname = \"k8s-m\"\nroles = [\"node\", \"control-plane\"]\n",
            "inv.toml",
        )
        .unwrap();
        assert_eq!(inv.kubernetes.namespace.as_deref(), Some("gition"));
        assert_eq!(inv.hosts_with(Role::ControlPlane).count(), 1);
    }

    /// Errors name line and column.
    #[test]
    fn located_errors() {
        let e = Inventory::parse("[registry]\naddress = 5050\n", "inv.toml").unwrap_err();
        assert!(e.message.starts_with("line 2, column 11"), "{e}");
        let e = Inventory::parse("[[host]]\nname = \"a\"\nroles = [\"nod\"]\n", "inv.toml")
            .unwrap_err();
        assert!(
            e.message.contains("line 3") && e.message.contains("nod"),
            "{e}"
        );
        let e = Inventory::parse("[[host]]\nname = \"a\"\nroles = [\"node\"]\n[[route]]\nname = \"r\"\nhops = [\"b\"]\nports = [80]\n", "inv.toml").unwrap_err();
        assert!(
            e.message.contains("'b'") && e.message.contains("line 6"),
            "{e}"
        );
        let e = Inventory::parse("[registry]\naddress = \"10.0.0.1\"\n", "inv.toml").unwrap_err();
        assert!(
            e.message.contains("host:port") && e.message.contains("line 2"),
            "{e}"
        );
    }
}
