//! The GitLab side of `registry.token-realm`: the realm (`external_url` + `/jwt/auth`, or
//! `registry['token_realm']` when set) moved to the host the nodes already reach the registry on,
//! by editing that one Ruby assignment in `/etc/gitlab/gitlab.rb` (every other byte kept) and
//! running `gitlab-ctl reconfigure`. Over SSH when the inventory has a `gitlab` host; otherwise
//! the exact line and command are shown for a person to apply.

use super::lines::{LineEdit, local_edit_step};
use super::{Fixer, PlanFuture, Planned, VerifyFuture};
use crate::check::registry::{RegistryTarget, TokenRealm};
use crate::check::{Check, CheckContext};
use crate::inventory::Host;
use crate::model::{Class, FindingId, FixPlan, FixRisk, FixStep};
use regex::Regex;
use std::sync::LazyLock;

/// The fix id (the catalog's `token_realm_unreachable` fix).
pub const FIX_ID: &str = "gitlab-external-url";

/// Omnibus GitLab's configuration file.
pub const GITLAB_RB: &str = "/etc/gitlab/gitlab.rb";

/// The command that applies it.
const RECONFIGURE: &str = "gitlab-ctl reconfigure";

#[allow(clippy::expect_used)] // constant patterns, covered by tests
static TOKEN_REALM_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(\s*registry\[\s*['"]token_realm['"]\s*\]\s*=\s*)(['"])([^'"]*)(['"].*)$"#)
        .expect("token_realm line")
});
#[allow(clippy::expect_used)] // constant patterns, covered by tests
static EXTERNAL_URL_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(\s*external_url\s*\(?\s*)(['"])([^'"]*)(['"].*)$"#).expect("external_url line")
});

/// The realm's base URL with its host replaced by `host` (scheme and port kept). `None` when the
/// realm is not an absolute http(s) URL or already names `host`.
#[must_use]
pub fn realm_base_on(realm: &str, host: &str) -> Option<String> {
    let (scheme, rest) = realm.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit('@').next()?;
    let (old_host, port) = crate::parse::image_ref::split_host_port(authority);
    if old_host.eq_ignore_ascii_case(host) {
        return None;
    }
    Some(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The edit of `gitlab.rb` that makes the realm `base`: an active `registry['token_realm']`
/// line when there is one (it overrides external_url for the realm), else the `external_url`
/// line; only the quoted value changes.
///
/// # Errors
/// The file has neither assignment.
pub fn realm_edit(gitlab_rb: &str, base: &str) -> Result<LineEdit, String> {
    for re in [&*TOKEN_REALM_LINE, &*EXTERNAL_URL_LINE] {
        for (i, line) in gitlab_rb.lines().enumerate() {
            if let Some(c) = re.captures(line) {
                let new = format!("{}{}{base}{}", &c[1], &c[2], &c[4]);
                return Ok(LineEdit {
                    line: i as u64 + 1,
                    old: line.to_string(),
                    new: Some(new),
                });
            }
        }
    }
    Err(format!(
        "{GITLAB_RB} has no active external_url or registry['token_realm'] line"
    ))
}

/// `registry.token-realm`'s fixer on the GitLab side.
#[derive(Debug, Clone)]
pub struct GitlabRealm {
    /// The registry.
    pub registry: RegistryTarget,
    /// The nodes the realm is tested from.
    pub nodes: Vec<Host>,
    /// The GitLab host (role `gitlab`), when the inventory has one.
    pub gitlab: Option<Host>,
}

impl GitlabRealm {
    fn check(&self) -> TokenRealm {
        TokenRealm {
            registry: self.registry.clone(),
            nodes: self.nodes.clone(),
        }
    }

    async fn plan_now(&self, ctx: &CheckContext) -> Result<Option<Planned>, String> {
        let id = FindingId::derive(&[
            "registry.token-realm",
            Class::TokenRealmUnreachable.id(),
            &self.registry.address,
            "realm",
        ])
        .0;
        let out = self.check().run(ctx.clone()).await;
        let Some(finding) = out.findings.iter().find(|f| f.id.0 == id) else {
            return Ok(None);
        };
        let Some(realm) = finding.subject.endpoint.clone() else {
            return Ok(None);
        };
        let (reg_host, _) = crate::parse::image_ref::split_host_port(&self.registry.address);
        let Some(base) = realm_base_on(&realm, reg_host) else {
            return Ok(None);
        };
        let why = vec![
            finding.title.clone(),
            format!(
                "the nodes reach the registry at {reg_host}, so the realm moves there: {base}/jwt/auth (the realm's port must be open on that address too, as the registry's is)"
            ),
        ];
        let (hosts, steps) = match &self.gitlab {
            Some(host) => {
                let text = super::node::read_raw(ctx.probes.as_ref(), host, GITLAB_RB)
                    .await?
                    .ok_or_else(|| format!("{}: {GITLAB_RB} does not exist", host.name))?;
                let edit = realm_edit(&text, &base)?;
                let FixStep::EditLocalFile {
                    diff,
                    content,
                    before,
                    ..
                } = local_edit_step(GITLAB_RB, &text, &[edit])?
                else {
                    return Err("the edit was not a file edit".into());
                };
                (
                    vec![host.name.clone()],
                    vec![
                        FixStep::EditRemoteFile {
                            host: host.name.clone(),
                            path: GITLAB_RB.into(),
                            diff,
                            content,
                            before,
                        },
                        FixStep::RestartService {
                            host: host.name.clone(),
                            service: "GitLab (reconfigure)".into(),
                            command: RECONFIGURE.into(),
                            sudo: host.sudo,
                        },
                    ],
                )
            }
            None => (
                Vec::new(),
                vec![FixStep::Manual {
                    text: format!(
                        "on the GitLab host, set external_url (or registry['token_realm'] if it is set) in {GITLAB_RB} to '{base}', then reconfigure (no host with role gitlab in the inventory)"
                    ),
                    commands: vec![
                        format!("sudo sed -n '/^external_url/p;/token_realm/p' {GITLAB_RB}"),
                        format!("sudo {RECONFIGURE}"),
                    ],
                }],
            ),
        };
        Ok(Some(Planned {
            findings: vec![id],
            why,
            plan: FixPlan {
                id: FIX_ID.into(),
                title: format!("Move GitLab's token realm to {base}"),
                restarts_service: !hosts.is_empty(),
                hosts,
                risk: FixRisk::Disruptive,
                verify: "registry.token-realm from every node".into(),
                steps,
            },
        }))
    }
}

impl Fixer for GitlabRealm {
    fn subject(&self) -> String {
        self.gitlab
            .as_ref()
            .map_or_else(|| "GitLab".to_string(), |h| h.name.clone())
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

    const RB: &str = "## GitLab configuration\n# external_url 'http://commented.example'\nexternal_url 'http://192.168.122.10' # the VM's own address\nregistry_external_url 'http://172.100.100.9:5050'\n# registry['token_realm'] = \"http://old\"\n";

    #[test]
    fn the_realm_host_becomes_the_registry_host() {
        assert_eq!(
            realm_base_on("http://192.168.122.10/jwt/auth", "172.100.100.9").as_deref(),
            Some("http://172.100.100.9")
        );
        assert_eq!(
            realm_base_on("https://gitlab.internal:8443/jwt/auth", "10.0.0.5").as_deref(),
            Some("https://10.0.0.5:8443")
        );
        assert!(realm_base_on("http://10.0.0.5/jwt/auth", "10.0.0.5").is_none());
        assert!(realm_base_on("/jwt/auth", "10.0.0.5").is_none());
    }

    /// Only the active external_url's quoted value changes; comments and the registry's own
    /// line stay.
    #[test]
    fn only_the_external_url_value_changes() {
        let e = realm_edit(RB, "http://172.100.100.9").unwrap();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.new.as_deref(),
            Some("external_url 'http://172.100.100.9' # the VM's own address")
        );
        let new = super::super::lines::apply_line_edits(RB, &[e]).unwrap();
        assert_eq!(
            new,
            RB.replace(
                "external_url 'http://192.168.122.10'",
                "external_url 'http://172.100.100.9'"
            )
        );
    }

    /// An active token_realm overrides external_url for the realm, so it is the line edited.
    #[test]
    fn an_active_token_realm_is_edited_instead() {
        let rb = format!("{RB}registry['token_realm'] = \"http://192.168.122.10\"\n");
        let e = realm_edit(&rb, "http://172.100.100.9").unwrap();
        assert_eq!(e.line, 6);
        assert_eq!(
            e.new.as_deref(),
            Some("registry['token_realm'] = \"http://172.100.100.9\"")
        );
        assert!(realm_edit("# nothing\n", "http://x").is_err());
    }
}
