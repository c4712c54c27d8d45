//! The cluster side of `registry.auth`: a pull secret whose credentials the registry refuses (a
//! wrong or revoked token, an expired CI job token) or whose key does not name the registry's
//! `host:port` is re-created for that `host:port`, the token read from an environment variable
//! so it is never shown or logged. The old Secret is saved first (mode 600) so a rollback puts
//! it back with `kubectl apply`.

use super::{Fixer, PlanFuture, Planned, Verification, VerifyFuture};
use crate::check::registry::{PullAuth, RegistryTarget};
use crate::check::remote::shell_quote;
use crate::check::{Check, CheckContext};
use crate::model::{CheckStatus, Class, FindingId, FixPlan, FixRisk, FixStep};

/// The fix id (the catalog's `auth_denied` fix).
pub const FIX_ID: &str = "recreate-pull-secret";

/// The environment variable the new token is read from.
pub const PASSWORD_ENV: &str = "PULLDOCTOR_REGISTRY_PASSWORD";

/// The `registry.auth` finding keys this fix answers: credentials refused, a job token that
/// expired, a secret keyed by another address than the registry's.
const ANSWERS: [&str; 3] = ["bad-credentials", "expired-job-token", "secret-key"];

/// The Secret to re-create and what goes in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recreate {
    /// The Secret's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The registry `host:port` (the key kubelet matches).
    pub server: String,
    /// The username to keep.
    pub username: String,
}

/// The sed program that drops the metadata pinning a Secret's version from `kubectl get -o yaml`.
const STRIP_VERSION_SED: &str = "/^  (resourceVersion|uid|creationTimestamp|selfLink):/d";

/// The steps: save the Secret (metadata that pins a version removed, so it applies again), then
/// re-create it from the environment; the undo applies the saved copy.
#[must_use]
pub fn recreate_steps(r: &Recreate, backup: &str) -> Vec<FixStep> {
    let (name, ns, file) = (
        shell_quote(&r.name),
        shell_quote(&r.namespace),
        shell_quote(backup),
    );
    let raw = shell_quote(&format!("{backup}.raw"));
    vec![
        FixStep::RunLocalCommand {
            command: format!(
                "umask 077 && kubectl get secret {name} -n {ns} -o yaml > {raw} && sed -E {} {raw} > {file} && rm -f {raw}",
                shell_quote(STRIP_VERSION_SED)
            ),
            needs_env: Vec::new(),
            undo: None,
        },
        FixStep::RunLocalCommand {
            command: format!(
                "kubectl create secret docker-registry {name} --docker-server={} --docker-username={} --docker-password=\"${PASSWORD_ENV}\" -n {ns} --dry-run=client -o yaml | kubectl apply -f -",
                shell_quote(&r.server),
                shell_quote(&r.username),
            ),
            needs_env: vec![PASSWORD_ENV.to_string()],
            undo: Some(format!("kubectl apply -f {file}")),
        },
    ]
}

/// The id `registry.auth` gives its finding for `image` and `key`.
fn auth_finding_id(image: &str, key: &str) -> String {
    FindingId::derive(&["registry.auth", Class::AuthDenied.id(), image, key]).0
}

/// The Secret named in the pull-secret input, and the username its entries carry (`None`: the
/// input is a docker config, which names no Secret).
#[must_use]
pub fn secret_in(
    text: &str,
    origin: &str,
    server: &str,
) -> Option<(String, String, Option<String>)> {
    let objects = crate::parse::kube::parse_objects(text, origin).ok()?;
    let s = objects.secrets.first()?;
    let cfg = s.docker_config.as_ref()?.as_ref().ok();
    let username = cfg.and_then(|c| {
        c.matching(&format!("{server}/x"))
            .first()
            .and_then(|e| e.username.clone())
            .or_else(|| c.entries.iter().find_map(|e| e.username.clone()))
    });
    Some((
        s.object.name.clone(),
        s.object
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        username,
    ))
}

/// `registry.auth`'s fixer for one pull secret and the images pulled with it.
#[derive(Debug, Clone)]
pub struct PullSecret {
    /// The registry.
    pub registry: RegistryTarget,
    /// The images.
    pub images: Vec<String>,
    /// The pull-secret input (a Secret manifest or `kubectl get secret -o json` output).
    pub secret: String,
}

impl PullSecret {
    fn checks(&self, secret: &str) -> Vec<PullAuth> {
        self.images
            .iter()
            .map(|image| PullAuth {
                registry: self.registry.clone(),
                image: image.clone(),
                pull_secret: Some(secret.to_string()),
            })
            .collect()
    }

    async fn plan_now(&self, ctx: &CheckContext) -> Result<Option<Planned>, String> {
        let mut findings = Vec::new();
        let mut why = Vec::new();
        for check in self.checks(&self.secret) {
            let out = check.run(ctx.clone()).await;
            for f in out.findings {
                if let Some(key) = ANSWERS
                    .iter()
                    .find(|k| f.id.0 == auth_finding_id(&check.image, k))
                {
                    findings.push(f.id.0.clone());
                    why.push(format!("{} ({key})", f.title));
                }
            }
        }
        if findings.is_empty() {
            return Ok(None);
        }
        let text = ctx
            .probes
            .read_file(&self.secret)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string())?;
        let server = self.registry.address.clone();
        let (steps, risk) = match secret_in(&text, &self.secret, &server) {
            Some((name, namespace, Some(username))) => {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                let backup = super::audit::path()
                    .with_file_name(format!("pull-secret-{namespace}-{name}-{stamp}.yaml"))
                    .display()
                    .to_string();
                let r = Recreate {
                    name,
                    namespace,
                    server,
                    username,
                };
                why.push(format!(
                    "the Secret {}/{} is re-created for {} with the token in ${PASSWORD_ENV}; the old one is saved to {backup} first",
                    r.namespace, r.name, r.server
                ));
                (recreate_steps(&r, &backup), FixRisk::Disruptive)
            }
            other => (
                vec![FixStep::Manual {
                    text: format!(
                        "{} names no Secret with a username: re-create the pull secret for {server} by hand, the token in ${PASSWORD_ENV}",
                        self.secret
                    ),
                    commands: vec![format!(
                        "kubectl create secret docker-registry {} --docker-server={server} --docker-username=USER --docker-password=\"${PASSWORD_ENV}\" -n {} --dry-run=client -o yaml | kubectl apply -f -",
                        other.as_ref().map_or("NAME", |o| o.0.as_str()),
                        other.as_ref().map_or("NAMESPACE", |o| o.1.as_str()),
                    )],
                }],
                FixRisk::Safe,
            ),
        };
        Ok(Some(Planned {
            findings,
            why,
            plan: FixPlan {
                id: FIX_ID.into(),
                title: format!("Re-create the pull secret for {}", self.registry.address),
                hosts: Vec::new(),
                risk,
                restarts_service: false,
                verify: "registry.auth with the Secret as the cluster then holds it".into(),
                steps,
            },
        }))
    }

    /// The Secret as the cluster holds it now, in a private temp file, checked again.
    async fn verify_now(&self, ctx: &CheckContext, planned: &Planned) -> Verification {
        let text = ctx
            .probes
            .read_file(&self.secret)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let Some((name, namespace, _)) = secret_in(&text, &self.secret, &self.registry.address)
        else {
            return Verification {
                ok: false,
                detail: "the Secret is re-created by hand; run pulldoctor again to check it".into(),
            };
        };
        let live = tokio::process::Command::new("kubectl")
            .args(["get", "secret", &name, "-n", &namespace, "-o", "json"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = match tokio::time::timeout(std::time::Duration::from_secs(60), live).await {
            Ok(Ok(o)) if o.status.success() => o.stdout,
            Ok(Ok(o)) => {
                return Verification {
                    ok: false,
                    detail: format!(
                        "kubectl get secret {name} -n {namespace}: {}",
                        ctx.redactor
                            .redact(String::from_utf8_lossy(&o.stderr).trim())
                    ),
                };
            }
            Ok(Err(e)) => {
                return Verification {
                    ok: false,
                    detail: format!("kubectl: {e}"),
                };
            }
            Err(_) => {
                return Verification {
                    ok: false,
                    detail: "kubectl get secret: no answer in 60s".into(),
                };
            }
        };
        // tempfile creates the file readable by its owner only
        let file = match tempfile::NamedTempFile::new()
            .and_then(|mut f| std::io::Write::write_all(&mut f, &out).map(|()| f))
        {
            Ok(f) => f,
            Err(e) => {
                return Verification {
                    ok: false,
                    detail: format!("a temp file for the Secret: {e}"),
                };
            }
        };
        let path = file.path().display().to_string();
        let mut left = Vec::new();
        for check in self.checks(&path) {
            let out = check.run(ctx.clone()).await;
            if !matches!(out.status, CheckStatus::Passed | CheckStatus::Failed) {
                return Verification {
                    ok: false,
                    detail: format!("registry.auth could not run: {:?}", out.status),
                };
            }
            left.extend(
                out.findings
                    .into_iter()
                    .filter(|f| planned.findings.contains(&f.id.0))
                    .map(|f| f.title),
            );
        }
        if left.is_empty() {
            Verification {
                ok: true,
                detail: "registry.auth accepts the re-created Secret".into(),
            }
        } else {
            Verification {
                ok: false,
                detail: format!("registry.auth still finds: {}", left.join("; ")),
            }
        }
    }
}

impl Fixer for PullSecret {
    fn subject(&self) -> String {
        self.secret.clone()
    }

    fn plan<'a>(&'a self, ctx: &'a CheckContext) -> PlanFuture<'a> {
        Box::pin(self.plan_now(ctx))
    }

    fn verify<'a>(&'a self, ctx: &'a CheckContext, planned: &'a Planned) -> VerifyFuture<'a> {
        Box::pin(self.verify_now(ctx, planned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gitlab-registry\n  namespace: gition\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\":{\"172.100.100.9\":{\"username\":\"gitlab+deploy-token-3\",\"password\":\"gldt-Sekr3tValue\"}}}'\n";

    #[test]
    fn the_secret_and_its_user_are_read_from_the_manifest() {
        let (name, ns, user) = secret_in(SECRET, "secret.yaml", "172.100.100.9:5050").unwrap();
        assert_eq!((name.as_str(), ns.as_str()), ("gitlab-registry", "gition"));
        assert_eq!(user.as_deref(), Some("gitlab+deploy-token-3"));
        assert!(secret_in("{\"auths\":{}}", "config.json", "x:1").is_none());
    }

    /// The token comes from the environment, never the command; the old Secret is saved with
    /// umask 077 before it is replaced, and the undo applies the saved copy.
    #[test]
    fn recreate_reads_the_token_from_the_environment() {
        let r = Recreate {
            name: "gitlab-registry".into(),
            namespace: "gition".into(),
            server: "172.100.100.9:5050".into(),
            username: "gitlab+deploy-token-3".into(),
        };
        let steps = recreate_steps(&r, "/state/pull-secret.yaml");
        let FixStep::RunLocalCommand { command, .. } = &steps[0] else {
            panic!("{steps:?}")
        };
        assert!(command.starts_with("umask 077 && kubectl get secret 'gitlab-registry' -n 'gition' -o yaml > '/state/pull-secret.yaml.raw'"), "{command}");
        let FixStep::RunLocalCommand {
            command,
            needs_env,
            undo,
        } = &steps[1]
        else {
            panic!("{steps:?}")
        };
        assert_eq!(
            command,
            "kubectl create secret docker-registry 'gitlab-registry' --docker-server='172.100.100.9:5050' --docker-username='gitlab+deploy-token-3' --docker-password=\"$PULLDOCTOR_REGISTRY_PASSWORD\" -n 'gition' --dry-run=client -o yaml | kubectl apply -f -"
        );
        assert_eq!(needs_env, &[PASSWORD_ENV.to_string()]);
        assert_eq!(
            undo.as_deref(),
            Some("kubectl apply -f '/state/pull-secret.yaml'")
        );
    }

    /// The saved copy loses what pins the old version, so `kubectl apply` takes it again (the
    /// sed program run on a Secret as `kubectl get -o yaml` prints it).
    #[test]
    fn the_saved_secret_applies_again() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.yaml");
        std::fs::write(
            &raw,
            "apiVersion: v1\nkind: Secret\nmetadata:\n  creationTimestamp: \"2026-11-27T09:00:00Z\"\n  name: gitlab-registry\n  namespace: gition\n  resourceVersion: \"4711\"\n  uid: 0f1e\ntype: kubernetes.io/dockerconfigjson\n",
        )
        .unwrap();
        let out = std::process::Command::new("sed")
            .args(["-E", STRIP_VERSION_SED])
            .arg(&raw)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gitlab-registry\n  namespace: gition\ntype: kubernetes.io/dockerconfigjson\n"
        );
    }
}
