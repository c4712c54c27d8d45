//! The node side of `registry.scheme`: a `hosts.toml` where containerd will read it, and a
//! `config_path` containerd will honour (the key in the plugin table this version reads, a single
//! directory where a `:` list is one path), then a restart. Planned from the node as it is now,
//! so a second run after a successful fix plans nothing.

use super::{Fixer, PlanFuture, Planned, Verification, VerifyFuture};
use crate::check::node_registry::{self, NodeFault, NodeVerdict, PullPath};
use crate::check::remote::{RegistryScheme, privileged, shell_quote, speaks_http};
use crate::check::{Check, CheckContext};
use crate::inventory::{DEFAULT_CONTAINERD_RESTART, Host};
use crate::model::{CheckStatus, FixPlan, FixRisk, FixStep, Severity};
use crate::parse::containerd::{self as ctd, ContainerdConfig};
use crate::probe::Probes;

/// Where containerd looks when nothing else is configured.
const DEFAULT_CERTS_D: &str = "/etc/containerd/certs.d";

/// The fix id.
pub const FIX_ID: &str = "hosts-toml-http";

/// `registry.scheme`'s fixer on one node.
#[derive(Debug, Clone)]
pub struct NodeRegistry {
    /// The node.
    pub host: Host,
    /// The registry `host:port`.
    pub registry: String,
}

impl Fixer for NodeRegistry {
    fn subject(&self) -> String {
        self.host.name.clone()
    }

    fn plan<'a>(&'a self, ctx: &'a CheckContext) -> PlanFuture<'a> {
        Box::pin(
            async move { node_hosts_toml(ctx.probes.as_ref(), &self.host, &self.registry).await },
        )
    }

    fn verify<'a>(&'a self, ctx: &'a CheckContext, _planned: &'a Planned) -> VerifyFuture<'a> {
        Box::pin(async move {
            let check = RegistryScheme {
                host: self.host.clone(),
                registry: self.registry.clone(),
            };
            let out = check.run(ctx.clone()).await;
            let problems: Vec<String> = out
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Warning)
                .map(|f| f.title.clone())
                .collect();
            match (&out.status, problems.is_empty()) {
                (CheckStatus::Passed, _) | (CheckStatus::Failed, true) => Verification {
                    ok: true,
                    detail: format!("registry.scheme on {} finds nothing wrong", self.host.name),
                },
                (CheckStatus::Failed, false) => Verification {
                    ok: false,
                    detail: problems.join("; "),
                },
                (other, _) => Verification {
                    ok: false,
                    detail: format!("registry.scheme could not run: {other:?}"),
                },
            }
        })
    }
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
    if speaks.is_none()
        && !matches!(
            verdict.scheme,
            node_registry::Scheme::Http | node_registry::Scheme::HttpsThenHttp
        )
    {
        // not knowing is not "nothing to fix": say so, so the run does not pass
        return Err(format!(
            "cannot tell whether {registry} answers plain HTTP from {} (the probe got no answer), so no hosts.toml is planned",
            host.name
        ));
    }
    let edit = match config_edit(&verdict, &facts.config, facts.config_file.is_some()) {
        Some(edit) => {
            // the edit is made on the file as it is, not on the redacted copy the check reads
            let raw = read_raw(probes, host, &facts.config_path_file).await?;
            Some(edit.apply(&facts.config_path_file, raw.as_deref())?)
        }
        None => None,
    };
    let finding = node_registry::finding_id(&host.name, registry).0;
    Ok(
        plan_from_verdict(&verdict, host, registry, speaks, edit).map(|mut p| {
            p.findings.push(finding);
            p
        }),
    )
}

/// A file on the node as it is (no redaction: it is written back), `None` when it does not exist.
pub(crate) async fn read_raw(
    probes: &dyn Probes,
    host: &Host,
    path: &str,
) -> Result<Option<String>, String> {
    let cmd = privileged(
        host,
        &format!(
            "sh -c {}",
            shell_quote(&format!(
                "if [ -e {p} ]; then echo present; cat {p}; else echo absent; fi",
                p = shell_quote(path)
            ))
        ),
    );
    let out = probes
        .exec(&host.name, host.destination(), &cmd)
        .await
        .map_err(|e| format!("reading {path}: {e}"))?;
    let text = String::from_utf8(out.stdout).map_err(|_| format!("{path} is not UTF-8"))?;
    match text.split_once('\n') {
        Some(("present", rest)) if out.exit_status == Some(0) => Ok(Some(rest.to_string())),
        Some(("absent", _)) => Ok(None),
        _ => Err(format!(
            "reading {path} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// What must change in `config.toml` for containerd to read one `hosts.toml` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEdit {
    /// The table (path of keys) that must hold `config_path`.
    pub table: Vec<String>,
    /// The value to set.
    pub value: String,
    /// Tables whose `config_path` this containerd ignores (removed, so nobody is misled).
    pub remove_from: Vec<Vec<String>>,
    /// The file's layout version to write when there is no file.
    pub file_version: i64,
    /// Why, in words.
    pub why: String,
}

/// The edited file: the step that writes it, and the directory containerd will then read.
#[derive(Debug, Clone)]
pub struct EditedConfig {
    /// The step.
    pub step_path: String,
    /// The whole new text.
    pub text: String,
    /// SHA-256 of the old text (`None`: there was no file).
    pub before: Option<String>,
    /// The diff shown.
    pub diff: String,
    /// The directory `config_path` will name.
    pub root: String,
    /// Why, in words.
    pub why: String,
}

impl ConfigEdit {
    /// Make the edit on `old` (the file's text; `None`: no file), keeping every other line and
    /// comment as it is.
    ///
    /// # Errors
    /// The file is not TOML (it would not have loaded either).
    pub fn apply(&self, path: &str, old: Option<&str>) -> Result<EditedConfig, String> {
        let mut doc: toml_edit::DocumentMut = match old {
            Some(text) => text
                .parse()
                .map_err(|e| format!("{path} is not valid TOML: {e}"))?,
            None => {
                let mut d = toml_edit::DocumentMut::new();
                d["version"] = toml_edit::value(self.file_version);
                d
            }
        };
        for table in &self.remove_from {
            if let Some(t) = table_mut(&mut doc, table, false) {
                t.remove("config_path");
            }
        }
        let t = table_mut(&mut doc, &self.table, true)
            .ok_or_else(|| format!("{path}: {} is not a table", self.table.join(".")))?;
        match t
            .get_mut("config_path")
            .and_then(toml_edit::Item::as_value_mut)
        {
            // the key keeps its place, indentation and comments; only the value changes
            Some(v) => {
                let decor = v.decor().clone();
                *v = toml_edit::Value::from(self.value.clone());
                *v.decor_mut() = decor;
            }
            None => {
                t.insert("config_path", toml_edit::value(self.value.clone()));
            }
        }
        let text = doc.to_string();
        Ok(EditedConfig {
            step_path: path.to_string(),
            diff: super::diff::unified(path, old.unwrap_or(""), &text),
            before: old.map(|o| super::apply::sha256_hex(o.as_bytes())),
            text,
            root: self.value.clone(),
            why: self.why.clone(),
        })
    }
}

/// The table at `keys`, created (as implicit parents and a real leaf) when `create`.
fn table_mut<'d>(
    doc: &'d mut toml_edit::DocumentMut,
    keys: &[String],
    create: bool,
) -> Option<&'d mut toml_edit::Table> {
    let mut t = doc.as_table_mut();
    for (i, k) in keys.iter().enumerate() {
        if !t.contains_key(k) {
            if !create {
                return None;
            }
            let mut new = toml_edit::Table::new();
            // parents stay implicit so the file gains one `[a."b".c]` header, not three
            new.set_implicit(i + 1 < keys.len());
            t.insert(k, toml_edit::Item::Table(new));
        }
        t = t.get_mut(k)?.as_table_mut()?;
    }
    Some(t)
}

/// The plugin table whose `registry.config_path` this containerd honours, for this file layout:
/// 1.x reads `cri` in a version-1 file and the URI otherwise; 2.x reads the images plugin, and
/// migrates a version-1/2 file's CRI table into it (DOMAIN.md §5).
fn registry_table(major: u32, file_version: i64) -> Vec<String> {
    let plugin = match (major >= 2, file_version) {
        (false, v) if v <= 1 => ctd::SHORT_CRI,
        (false, _) => ctd::GRPC_CRI,
        (true, v) if v <= 1 => ctd::SHORT_CRI,
        (true, 2) => ctd::GRPC_CRI,
        (true, _) => ctd::CRI_IMAGES,
    };
    vec!["plugins".into(), plugin.into(), "registry".into()]
}

/// The `config.toml` change a verdict calls for, if any (`has_file`: the node has a config
/// file; without one a new file in this version's own layout is written).
#[must_use]
pub fn config_edit(
    verdict: &NodeVerdict,
    config: &ContainerdConfig,
    has_file: bool,
) -> Option<ConfigEdit> {
    let major = verdict.version.as_ref()?.major;
    let fv = match (has_file, major >= 2) {
        (true, _) => config.file_version(),
        (false, false) => 2,
        (false, true) => 3,
    };
    let table = registry_table(major, fv);
    let others = |keep: &[String]| -> Vec<Vec<String>> {
        [ctd::SHORT_CRI, ctd::GRPC_CRI, ctd::CRI_IMAGES]
            .into_iter()
            .map(|p| vec!["plugins".to_string(), p.to_string(), "registry".to_string()])
            .filter(|t| t.as_slice() != keep)
            .collect()
    };
    let first_root = |v: &str| {
        v.split(':')
            .find(|s| !s.is_empty())
            .unwrap_or(DEFAULT_CERTS_D)
            .to_string()
    };
    for fault in &verdict.faults {
        let (value, why) = match fault {
            NodeFault::IgnoredConfigPathKey { table: ignored } => {
                let value = config_path_in(config, ignored).unwrap_or(DEFAULT_CERTS_D.into());
                (
                    first_root(&value),
                    format!(
                        "config_path is set under [{ignored}], which containerd {} does not read; it moves to [{}]",
                        verdict
                            .version
                            .as_ref()
                            .map_or_else(String::new, ToString::to_string),
                        table_display(&table)
                    ),
                )
            }
            NodeFault::NoConfigPath => (
                DEFAULT_CERTS_D.to_string(),
                format!(
                    "no config_path is set, so containerd reads no hosts.toml; [{}] gets {DEFAULT_CERTS_D}",
                    table_display(&table)
                ),
            ),
            NodeFault::TransferServiceMultiPath { config_path } => (
                first_root(config_path),
                format!(
                    "containerd {} pulls through its transfer service, which takes \"{config_path}\" as one path; it becomes the single directory {}",
                    verdict
                        .version
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                    first_root(config_path)
                ),
            ),
            _ => continue,
        };
        return Some(ConfigEdit {
            remove_from: others(&table),
            table,
            value,
            file_version: fv,
            why,
        });
    }
    None
}

/// `[a."b".c]` as a person reads it.
fn table_display(keys: &[String]) -> String {
    ctd::table_name(&keys[1..keys.len() - 1].join(".")) + "." + &keys[keys.len() - 1]
}

/// The `config_path` written under the table named `table` (as `registry_table()` spells it).
fn config_path_in(config: &ContainerdConfig, table: &str) -> Option<String> {
    [&config.cri_short, &config.grpc_cri, &config.cri_images]
        .into_iter()
        .flatten()
        .find(|s| s.registry_table() == table)
        .and_then(|s| s.config_path.as_ref())
        .map(|c| c.value.clone())
}

/// The plan for one node's verdict (pure, so it is tested without a node). `edit` is the
/// `config.toml` change [`config_edit`] asked for, already made on the node's file.
#[must_use]
pub fn plan_from_verdict(
    verdict: &NodeVerdict,
    host: &Host,
    registry: &str,
    speaks_http: Option<bool>,
    edit: Option<EditedConfig>,
) -> Option<Planned> {
    use node_registry::Scheme;
    // Only a registry seen answering plain HTTP gets an http:// hosts.toml.
    if speaks_http != Some(true) || matches!(verdict.scheme, Scheme::Http | Scheme::HttpsThenHttp) {
        return None;
    }
    let multi_on_transfer =
        verdict.pull_path == PullPath::TransferService && verdict.config_path.contains(':');
    // the directory containerd will use for the registry once the plan is applied: the one that
    // wins now (it shadows the others), else under the first root
    let dir = match (&edit, &verdict.host_dir) {
        (Some(e), _) => Some(format!("{}/{registry}", e.root)),
        (None, Some(dir)) => Some(dir.clone()),
        (None, None) if multi_on_transfer => None,
        (None, None) => Some(format!(
            "{}/{registry}",
            verdict
                .roots
                .first()
                .map_or(DEFAULT_CERTS_D, String::as_str)
        )),
    };
    let mut steps = Vec::new();
    let mut why = verdict.reasons.clone();
    if let Some(dir) = &dir {
        steps.push(FixStep::WriteRemoteFile {
            host: host.name.clone(),
            path: format!("{dir}/hosts.toml"),
            mode: "0644".into(),
            owner: "root:root".into(),
            content: http_hosts_toml(registry),
        });
    }
    if let Some(NodeFault::Shadowed { winner, hidden }) = verdict
        .faults
        .iter()
        .find(|f| matches!(f, NodeFault::Shadowed { .. }))
    {
        why.push(format!(
            "{winner} shadows {hidden}: containerd stops at the first directory for the registry, so the hosts.toml goes there"
        ));
    }
    let restarts = edit.is_some();
    if let Some(edit) = edit {
        why.push(edit.why.clone());
        steps.push(match &edit.before {
            Some(before) => FixStep::EditRemoteFile {
                host: host.name.clone(),
                path: edit.step_path.clone(),
                diff: edit.diff.clone(),
                content: edit.text.clone(),
                before: before.clone(),
            },
            None => FixStep::WriteRemoteFile {
                host: host.name.clone(),
                path: edit.step_path.clone(),
                mode: "0644".into(),
                owner: "root:root".into(),
                content: edit.text.clone(),
            },
        });
        steps.push(FixStep::RestartService {
            host: host.name.clone(),
            service: "containerd".into(),
            command: host
                .containerd_restart
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTAINERD_RESTART.to_string()),
            sudo: host.sudo,
        });
    } else if dir.is_none() {
        return None;
    }
    Some(Planned {
        findings: Vec::new(),
        why,
        plan: FixPlan {
            id: FIX_ID.into(),
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn the_table_follows_the_version_and_the_file_layout() {
        assert_eq!(registry_table(1, 1)[1], ctd::SHORT_CRI);
        assert_eq!(registry_table(1, 2)[1], ctd::GRPC_CRI);
        // 2.x migrates a version-2 file's CRI table into the images plugin
        assert_eq!(registry_table(2, 2)[1], ctd::GRPC_CRI);
        assert_eq!(registry_table(2, 3)[1], ctd::CRI_IMAGES);
    }

    #[test]
    fn a_key_in_the_wrong_table_moves_and_comments_stay() {
        let old = "version = 2\n\n# keep this comment\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\" # 2.x spelling\n";
        let edit = ConfigEdit {
            table: keys(&["plugins", ctd::GRPC_CRI, "registry"]),
            value: "/etc/containerd/certs.d".into(),
            remove_from: vec![
                keys(&["plugins", ctd::CRI_IMAGES, "registry"]),
                keys(&["plugins", ctd::SHORT_CRI, "registry"]),
            ],
            file_version: 2,
            why: String::new(),
        };
        let out = edit
            .apply("/etc/containerd/config.toml", Some(old))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.text.contains("# keep this comment"), "{}", out.text);
        assert!(
            out.text.contains("sandbox_image = \"pause:3.9\""),
            "{}",
            out.text
        );
        let cfg = ctd::parse_config("config.toml", &out.text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cfg.grpc_cri
                .and_then(|s| s.config_path)
                .map(|c| c.value)
                .as_deref(),
            Some("/etc/containerd/certs.d")
        );
        assert!(
            cfg.cri_images.and_then(|s| s.config_path).is_none(),
            "{}",
            out.text
        );
        assert!(
            out.diff
                .contains("+[plugins.\"io.containerd.grpc.v1.cri\".registry]"),
            "{}",
            out.diff
        );
        assert_eq!(
            out.before,
            Some(crate::fix::apply::sha256_hex(old.as_bytes()))
        );
    }

    #[test]
    fn no_file_gets_a_minimal_one_in_this_versions_layout() {
        let edit = ConfigEdit {
            table: registry_table(2, 3),
            value: DEFAULT_CERTS_D.into(),
            remove_from: Vec::new(),
            file_version: 3,
            why: String::new(),
        };
        let out = edit
            .apply("/etc/containerd/config.toml", None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.before, None);
        let cfg = ctd::parse_config("config.toml", &out.text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.file_version(), 3);
        assert_eq!(
            cfg.cri_images
                .and_then(|s| s.config_path)
                .map(|c| c.value)
                .as_deref(),
            Some(DEFAULT_CERTS_D)
        );
    }

    #[test]
    fn a_file_that_is_not_toml_is_not_edited() {
        let edit = ConfigEdit {
            table: registry_table(1, 2),
            value: DEFAULT_CERTS_D.into(),
            remove_from: Vec::new(),
            file_version: 2,
            why: String::new(),
        };
        let err = edit
            .apply("/etc/containerd/config.toml", Some("[plugins\n"))
            .err()
            .unwrap_or_default();
        assert!(err.contains("not valid TOML"), "{err}");
    }
}
