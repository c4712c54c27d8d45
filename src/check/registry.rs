//! Registry checks over the real protocol, from where pulldoctor runs (and, for the token realm,
//! from every node): `registry.scheme` (what the registry speaks and what its certificate says),
//! `registry.token-realm` (where the Bearer challenge sends clients, and who can reach it) and
//! `registry.auth` (the pull secret's credentials through the token flow to the manifest).

use super::{Check, CheckContext, CheckFuture, CheckOutcome};
use crate::inventory::Host;
use crate::model::{
    CheckId, CheckStatus, Class, Confidence, Evidence, EvidenceSource, Finding, Severity, Subject,
    Target, TargetKind,
};
use crate::parse::dockercfg;
use crate::parse::www_auth::{self, Challenge};
use crate::probe::http::{TlsReport, TlsTrust};
use crate::probe::registry::{Credentials, Endpoint, Exchange, Session, registry_errors};
use crate::probe::{ProbeError, Probes, TlsProbe};
use std::time::Duration;

/// Deadline of one registry request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds a node's TCP probe of the realm may take.
const NODE_PROBE_SECS: u32 = 3;

/// How pulldoctor reaches the registry: its `host:port` and the CA the nodes trust for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTarget {
    /// `host:port` as the nodes pull it.
    pub address: String,
    /// A PEM file of the CA the nodes are given (hosts.toml `ca`), if any.
    pub ca_file: Option<String>,
}

impl RegistryTarget {
    fn host_port(&self) -> (String, u16) {
        split_host_port(&self.address, 443)
    }

    /// The trust the nodes have: the system's roots, plus the CA file when one is given.
    fn trust(&self, probes: &dyn Probes) -> Result<TlsTrust, String> {
        match &self.ca_file {
            None => Ok(TlsTrust::System),
            Some(path) => probes
                .read_file(path)
                .map(|b| TlsTrust::Ca(String::from_utf8_lossy(&b).into_owned()))
                .map_err(|e| format!("the registry CA file: {e}")),
        }
    }

    fn target(&self) -> Target {
        Target {
            kind: TargetKind::Registry,
            name: self.address.clone(),
        }
    }

    /// Ask the registry for TLS; what answers decides the scheme the other checks speak.
    async fn inspect(
        &self,
        probes: &dyn Probes,
        trust: &TlsTrust,
    ) -> Result<TlsReport, ProbeError> {
        let (host, port) = self.host_port();
        probes
            .tls(&TlsProbe {
                server_name: host.trim_matches(['[', ']']).to_string(),
                host: host.trim_matches(['[', ']']).to_string(),
                port,
                trust: trust.clone(),
                timeout: REQUEST_TIMEOUT,
            })
            .await
    }

    /// The endpoint to talk to, from what the TLS probe saw. An untrusted certificate is not
    /// this check's concern (`registry.scheme` reports it), so the conversation goes on without
    /// verification and says so.
    fn endpoint(&self, report: &TlsReport, trust: &TlsTrust) -> (Endpoint, Option<String>) {
        let (scheme, trust, note) = match report {
            TlsReport::PlainHttp { .. } => ("http", TlsTrust::System, None),
            TlsReport::Tls {
                untrusted: Some(why),
                ..
            } => (
                "https",
                TlsTrust::Insecure,
                Some(format!(
                    "the registry's certificate is not trusted ({why}); the conversation went on without verification"
                )),
            ),
            _ => ("https", trust.clone(), None),
        };
        (
            Endpoint {
                base: format!("{scheme}://{}", self.address),
                trust,
                timeout: REQUEST_TIMEOUT,
            },
            note,
        )
    }
}

/// What the registry checks look at, from the inventory's `[registry]` and the command line;
/// kept in a bundle so a replay plans the same checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryPlan {
    /// `host:port` (from the inventory, else from the first image).
    pub address: String,
    /// CA file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Images to check end to end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Pull secret file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
}

impl RegistryPlan {
    /// Merge the inventory's registry with the command line's images, secret and CA; `None`
    /// when neither names a registry.
    #[must_use]
    pub fn merge(
        inventory: Option<&crate::inventory::Registry>,
        images: &[String],
        pull_secret: Option<&str>,
        ca: Option<&str>,
    ) -> Option<Self> {
        let mut all: Vec<String> = inventory.map(|r| r.images.clone()).unwrap_or_default();
        for i in images {
            if !all.contains(i) {
                all.push(i.clone());
            }
        }
        let address = inventory.map(|r| r.address.clone()).or_else(|| {
            all.iter()
                .find_map(|i| crate::parse::extract::image_domain(i))
        })?;
        Some(RegistryPlan {
            address,
            ca: ca
                .map(str::to_string)
                .or_else(|| inventory.and_then(|r| r.ca.clone())),
            images: all,
            pull_secret: pull_secret
                .map(str::to_string)
                .or_else(|| inventory.and_then(|r| r.pull_secret.clone())),
        })
    }

    /// The checks: the registry's scheme and token realm (tested from `nodes` too), and the
    /// pull of every image.
    #[must_use]
    pub fn checks(&self, nodes: &[Host]) -> Vec<std::sync::Arc<dyn Check>> {
        let target = RegistryTarget {
            address: self.address.clone(),
            ca_file: self.ca.clone(),
        };
        let mut out: Vec<std::sync::Arc<dyn Check>> = vec![
            std::sync::Arc::new(RegistryServes {
                registry: target.clone(),
                nodes_probe_it: !nodes.is_empty(),
            }),
            std::sync::Arc::new(TokenRealm {
                registry: target.clone(),
                nodes: nodes.to_vec(),
            }),
        ];
        for image in &self.images {
            out.push(std::sync::Arc::new(PullAuth {
                registry: target.clone(),
                image: image.clone(),
                pull_secret: self.pull_secret.clone(),
            }));
        }
        out
    }
}

/// `host:port` → (host, port); a missing port is `default`.
fn split_host_port(address: &str, default: u16) -> (String, u16) {
    let (host, port) = crate::parse::image_ref::split_host_port(address);
    (host.to_string(), port.unwrap_or(default))
}

fn probe_evidence(request: String, text: String) -> Evidence {
    Evidence {
        source: EvidenceSource::Probe { request },
        time: None,
        host: None,
        text,
        matched: None,
    }
}

fn exchange_evidence(exchanges: &[Exchange]) -> Vec<Evidence> {
    exchanges
        .iter()
        .map(|x| probe_evidence(x.request.clone(), x.answer.clone()))
        .collect()
}

/// The message of a failed probe (step and cause), for evidence and titles.
fn probe_failure(e: &ProbeError) -> String {
    match e {
        ProbeError::Net(n) => format!("{}: {}", n.step, n.message),
        other => other.to_string(),
    }
}

/// Findings → outcome: failed when any is a warning or worse, passed otherwise (facts at info
/// level ride along), every evidence line redacted.
fn outcome(mut findings: Vec<Finding>, ctx: &CheckContext) -> CheckOutcome {
    for f in &mut findings {
        for e in &mut f.evidence {
            e.text = ctx.redactor.redact(&e.text).into_owned();
        }
        f.explanation = ctx.redactor.redact(&f.explanation).into_owned();
    }
    let status = if findings.iter().any(|f| f.severity >= Severity::Warning) {
        CheckStatus::Failed
    } else {
        CheckStatus::Passed
    };
    CheckOutcome {
        status,
        findings,
        unclassified: Vec::new(),
        input: None,
    }
}

// ---------------------------------------------------------------------------------------------
// registry.scheme (registry side)

/// `registry.scheme`, registry side: send a TLS ClientHello and report what the registry speaks
/// — plain HTTP, or HTTPS with a certificate for which names, by which issuer, valid until when,
/// and whether the nodes' trust accepts it. The node side (`registry.scheme` on each node) says
/// what each containerd will try; together they are the verdict per node.
pub struct RegistryServes {
    /// The registry.
    pub registry: RegistryTarget,
    /// Nodes probe it too: then a registry out of reach from here is not a finding (the
    /// engineer's machine is often outside the nodes' network), only a reason to skip.
    pub nodes_probe_it: bool,
}

const SCHEME_ID: &str = "registry.scheme";

impl Check for RegistryServes {
    fn id(&self) -> CheckId {
        CheckId(SCHEME_ID.into())
    }

    fn target(&self) -> Target {
        self.registry.target()
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let registry = self.registry.clone();
        let nodes_probe = self.nodes_probe_it;
        Box::pin(async move {
            let trust = match registry.trust(ctx.probes.as_ref()) {
                Ok(t) => t,
                Err(e) => return CheckOutcome::errored(e),
            };
            let report = registry.inspect(ctx.probes.as_ref(), &trust).await;
            if let (Err(e), true) = (&report, nodes_probe) {
                return CheckOutcome::without_findings(CheckStatus::Skipped {
                    reason: format!(
                        "{} cannot be reached from here ({}); each node's registry.scheme probes it from the node",
                        registry.address,
                        probe_failure(e)
                    ),
                });
            }
            let findings = scheme_findings(&registry, &report, chrono::Utc::now());
            outcome(findings, &ctx)
        })
    }
}

fn scheme_findings(
    registry: &RegistryTarget,
    report: &Result<TlsReport, ProbeError>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Finding> {
    let addr = &registry.address;
    let (host, _) = registry.host_port();
    let request = format!("TLS ClientHello to {addr} (server name {host})");
    let new = |class, severity, title: String| {
        let mut f = Finding::new(
            SCHEME_ID,
            class,
            severity,
            registry.target(),
            &[addr],
            title,
        );
        f.subject = Subject {
            registry: Some(addr.clone()),
            ..Subject::default()
        };
        f
    };
    match report {
        Err(e) => {
            let stalled =
                matches!(e, ProbeError::Net(n) if n.step == crate::probe::http::NetStep::Timeout);
            let mut f = new(
                Class::OtherNetwork,
                Severity::Error,
                if stalled {
                    format!("The registry {addr} accepts connections but does not answer")
                } else {
                    format!("Cannot reach the registry {addr} from here")
                },
            );
            f.explanation = format!(
                "A TCP connection to {addr} from the machine pulldoctor runs on failed ({}). The \
                 nodes may still reach it (their own checks say); if they cannot either, nothing \
                 can be pulled.",
                probe_failure(e)
            );
            f.next_steps = vec![
                format!(
                    "Is the registry running and listening on {addr}? (on the GitLab host: ss -ltnp | grep {})",
                    registry.host_port().1
                ),
                "Walk the path: the path.hops check names the first hop that drops the port."
                    .into(),
            ];
            f.evidence = vec![probe_evidence(request, probe_failure(e))];
            vec![f]
        }
        Ok(TlsReport::PlainHttp { status_line }) => {
            let mut f = new(
                Class::None,
                Severity::Info,
                format!("The registry {addr} speaks plain HTTP"),
            );
            f.explanation = format!(
                "{addr} answered a TLS ClientHello with an HTTP response ('{status_line}'). \
                 containerd tries HTTPS first for every registry except localhost; each node \
                 needs a hosts.toml for {addr} with server = \"http://{addr}\" (the node checks \
                 say which have one)."
            );
            f.evidence = vec![probe_evidence(request, status_line.clone())];
            vec![f]
        }
        Ok(TlsReport::Other { detail }) => {
            let mut f = new(
                Class::OtherNetwork,
                Severity::Warning,
                format!("The registry {addr} answered neither TLS nor HTTP"),
            );
            f.explanation = format!(
                "A TLS ClientHello to {addr} got no certificate and no HTTP answer ({detail}). \
                 Something other than a registry may be listening, or a middlebox cut the \
                 connection."
            );
            f.evidence = vec![probe_evidence(request, detail.clone())];
            vec![f]
        }
        Ok(TlsReport::Tls {
            version,
            certificates,
            untrusted,
        }) => tls_findings(
            registry,
            &request,
            version.as_deref(),
            certificates,
            untrusted.as_deref(),
            now,
            &new,
        ),
    }
}

fn tls_findings(
    registry: &RegistryTarget,
    request: &str,
    version: Option<&str>,
    certificates: &[crate::probe::http::CertInfo],
    untrusted: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
    new: &dyn Fn(Class, Severity, String) -> Finding,
) -> Vec<Finding> {
    let addr = &registry.address;
    let (host, port) = registry.host_port();
    let Some(leaf) = certificates.first() else {
        return Vec::new();
    };
    let described = format!(
        "certificate for {} (subject {}), issued by {}, valid {} to {}{}",
        if leaf.names.is_empty() {
            "no subjectAltName".to_string()
        } else {
            leaf.names.join(", ")
        },
        leaf.subject,
        leaf.issuer,
        leaf.not_before,
        leaf.not_after,
        if leaf.self_signed {
            " (self-signed)"
        } else {
            ""
        }
    );
    let evidence = vec![probe_evidence(
        request.to_string(),
        match untrusted {
            Some(why) => format!("{described}; not trusted: {why}"),
            None => format!("{described}; trusted ({})", version.unwrap_or("TLS")),
        },
    )];
    let ca_path = format!("/etc/containerd/certs.d/{addr}/ca.crt");
    if let Some(why) = untrusted {
        let expired = leaf.outside_validity(now);
        let name_mismatch = why.contains("NotValidForName")
            || !leaf
                .names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(host.trim_matches(['[', ']'])));
        let mut reasons = Vec::new();
        if expired {
            reasons.push(format!(
                "it is outside its validity ({} to {})",
                leaf.not_before, leaf.not_after
            ));
        }
        if name_mismatch {
            reasons.push(format!(
                "it is not valid for '{host}' (it names {}); an IP address needs an IP subjectAltName",
                if leaf.names.is_empty() { "nothing".to_string() } else { leaf.names.join(", ") }
            ));
        }
        if why.contains("UnknownIssuer") || leaf.self_signed {
            reasons.push(format!(
                "its issuer '{}' is not among the trusted roots{}",
                leaf.issuer,
                if registry.ca_file.is_some() {
                    " or the CA given"
                } else {
                    ""
                }
            ));
        }
        if reasons.is_empty() {
            reasons.push(why.to_string());
        }
        let mut f = new(
            Class::TlsCert,
            Severity::Error,
            format!("The registry {addr} presents a certificate the nodes will not trust"),
        );
        f.explanation = format!(
            "{addr} speaks HTTPS, but {}. containerd refuses the connection with 'x509: …' and \
             no image is pulled.",
            reasons.join("; ")
        );
        f.next_steps = if name_mismatch || expired {
            vec![
                format!(
                    "Re-issue the registry certificate with subjectAltName {} and a current validity (Omnibus: registry_nginx['ssl_certificate'] for registry_external_url).",
                    if host.parse::<std::net::IpAddr>().is_ok() {
                        format!("IP:{host}")
                    } else {
                        format!("DNS:{host}")
                    }
                ),
                format!(
                    "Or, knowing the risk, set skip_verify = true in {addr}'s hosts.toml on each node."
                ),
            ]
        } else {
            vec![
                format!(
                    "Give every node the CA: copy it to {ca_path} and add ca = \"{ca_path}\" under the [host.\"https://{addr}\"] table of /etc/containerd/certs.d/{addr}/hosts.toml."
                ),
                format!(
                    "Check: openssl s_client -connect {host}:{port} -servername {host} -showcerts </dev/null"
                ),
            ]
        };
        f.evidence = evidence;
        return vec![f];
    }
    let days_left = chrono::DateTime::parse_from_rfc3339(&leaf.not_after)
        .map(|na| (na.with_timezone(&chrono::Utc) - now).num_days())
        .unwrap_or(i64::MAX);
    let (class, severity, title) = if days_left < 14 {
        (
            Class::TlsCert,
            Severity::Warning,
            format!("The registry {addr}'s certificate expires in {days_left} days"),
        )
    } else {
        (
            Class::None,
            Severity::Info,
            format!("The registry {addr} speaks HTTPS with a trusted certificate"),
        )
    };
    let mut f = new(class, severity, title);
    f.explanation = format!("{addr} speaks HTTPS: {described}.");
    f.evidence = evidence;
    vec![f]
}

// ---------------------------------------------------------------------------------------------
// registry.token-realm

/// `registry.token-realm`: `GET /v2/`, read the Bearer challenge, resolve the realm's host and
/// port, and test that address from here and from every node. On GitLab the realm is
/// `external_url` + `/jwt/auth` (DOMAIN.md §3.1): a realm the nodes cannot reach fails every
/// pull at the token step even when the registry's own port is open (the incident's fault 4).
pub struct TokenRealm {
    /// The registry.
    pub registry: RegistryTarget,
    /// The nodes that pull (the realm is tested from each over SSH).
    pub nodes: Vec<Host>,
}

const REALM_ID: &str = "registry.token-realm";

impl Check for TokenRealm {
    fn id(&self) -> CheckId {
        CheckId(REALM_ID.into())
    }

    fn target(&self) -> Target {
        self.registry.target()
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let registry = self.registry.clone();
        let nodes = self.nodes.clone();
        Box::pin(async move { token_realm(registry, nodes, ctx).await })
    }
}

/// What one vantage saw when it dialled the realm.
#[derive(Debug, Clone)]
struct RealmReach {
    vantage: String,
    reachable: Option<bool>,
    detail: String,
    request: String,
}

async fn token_realm(
    registry: RegistryTarget,
    nodes: Vec<Host>,
    ctx: CheckContext,
) -> CheckOutcome {
    let probes = ctx.probes.clone();
    let addr = registry.address.clone();
    let new = |class, severity, key: &str, title: String| {
        let mut f = Finding::new(
            REALM_ID,
            class,
            severity,
            registry.target(),
            &[&addr, key],
            title,
        );
        f.subject.registry = Some(addr.clone());
        f
    };
    let trust = match registry.trust(probes.as_ref()) {
        Ok(t) => t,
        Err(e) => return CheckOutcome::errored(e),
    };
    // The challenge comes from here; when the registry cannot be reached from here (the
    // engineer's machine is often outside the nodes' network), from a node.
    let (here, not_here) = match registry.inspect(probes.as_ref(), &trust).await {
        Ok(report) => (Some(report), None),
        Err(e) if !nodes.is_empty() => (None, Some(probe_failure(&e))),
        Err(e) => {
            return CheckOutcome::without_findings(CheckStatus::Skipped {
                reason: format!(
                    "the registry {addr} cannot be reached from here ({}); registry.scheme reports it",
                    probe_failure(&e)
                ),
            });
        }
    };
    let endpoint = match &here {
        Some(report) => registry.endpoint(report, &trust).0,
        None => Endpoint {
            base: format!("http://{addr}"),
            trust: TlsTrust::System,
            timeout: REQUEST_TIMEOUT,
        },
    };
    let mut session = Session::new(probes.as_ref(), endpoint);
    let (ping, challenges, evidence) = if here.is_some() {
        match session.ping().await {
            Ok((p, c)) => (p, c, exchange_evidence(&session.exchanges)),
            Err(e) => {
                // it answered the TLS probe, so the API itself is what fails
                let mut f = new(
                    Class::OtherNetwork,
                    Severity::Error,
                    "api",
                    format!("The registry {addr} gives no usable answer to GET /v2/"),
                );
                f.explanation = format!(
                    "GET {}/v2/ failed: {}. Every client starts with this request (or a \
                     manifest request that fails the same way), so nothing can be pulled.",
                    session.endpoint.base,
                    probe_failure(&e)
                );
                f.evidence = exchange_evidence(&session.exchanges);
                return outcome(vec![f], &ctx);
            }
        }
    } else {
        match challenge_from_nodes(&registry, &nodes, probes.as_ref()).await {
            Some((resp, ev)) => {
                let c = crate::probe::registry::challenges(&resp);
                (resp, c, vec![ev])
            }
            None => {
                return CheckOutcome::without_findings(CheckStatus::Skipped {
                    reason: format!(
                        "the registry {addr} cannot be reached from here ({}) and no node got a plain-HTTP answer to GET /v2/ from it",
                        not_here.unwrap_or_default()
                    ),
                });
            }
        }
    };
    if ping.status == 200 {
        let mut f = new(
            Class::None,
            Severity::Info,
            "open",
            format!("The registry {addr} asks for no token"),
        );
        f.explanation = format!(
            "GET /v2/ on {addr} answered 200: no authentication, so there is no token realm to reach."
        );
        f.evidence = evidence.clone();
        return outcome(vec![f], &ctx);
    }
    let bearer = challenges.iter().find(|c| c.is_bearer());
    let Some(challenge) = bearer else {
        let raw: Vec<&str> = ping.headers_named("www-authenticate").collect();
        let (class, severity, title, explanation) = if challenges.iter().any(Challenge::is_basic) {
            (
                Class::None,
                Severity::Info,
                format!("The registry {addr} uses Basic authentication (no token realm)"),
                format!(
                    "GET /v2/ answered {} with a Basic challenge: clients send the pull secret's username and password on every request; there is no token service to reach.",
                    ping.status_text()
                ),
            )
        } else if ping.status == 401 {
            (
                Class::AuthDenied,
                Severity::Error,
                format!("The registry {addr} asks for authentication it does not describe"),
                if raw.is_empty() {
                    format!(
                        "GET /v2/ answered {} without a WWW-Authenticate header; containerd cannot know where to get a token.",
                        ping.status_text()
                    )
                } else {
                    let problems: Vec<String> = raw
                        .iter()
                        .filter_map(|h| www_auth::parse(h).err().map(|e| e.to_string()))
                        .collect();
                    format!(
                        "GET /v2/ answered {} with a WWW-Authenticate header containerd cannot use ({}).",
                        ping.status_text(),
                        if problems.is_empty() {
                            "no Bearer or Basic challenge".to_string()
                        } else {
                            problems.join("; ")
                        }
                    )
                },
            )
        } else {
            (
                Class::OtherNetwork,
                Severity::Warning,
                format!(
                    "The registry {addr} answered GET /v2/ with {}",
                    ping.status_text()
                ),
                format!(
                    "A registry answers GET /v2/ with 200 or 401; {} suggests something else is listening on {addr} (a proxy, another service).",
                    ping.status_text()
                ),
            )
        };
        let mut f = new(class, severity, "challenge", title);
        f.explanation = explanation;
        f.evidence = evidence.clone();
        return outcome(vec![f], &ctx);
    };
    let realm = challenge.realm().unwrap_or_default().to_string();
    let Some((realm_host, realm_port)) = www_auth::realm_host_port(&realm) else {
        let mut f = new(
            Class::TokenRealmUnreachable,
            Severity::Error,
            "realm",
            format!("The registry {addr} names a token realm nobody can use: '{realm}'"),
        );
        f.explanation = "The Bearer challenge's realm is not an absolute http(s) URL, so no client can ask it for a token. On GitLab the realm is external_url + /jwt/auth: external_url must be a full URL.".into();
        f.evidence = evidence.clone();
        return outcome(vec![f], &ctx);
    };
    let realm_addr = format!("{realm_host}:{realm_port}");
    // From here: any HTTP answer from the realm means it is reachable.
    let service = challenge
        .service()
        .unwrap_or("container_registry")
        .to_string();
    let mut reach = Vec::new();
    let here_req = format!("GET {realm}?service={service}");
    let from_here = if here.is_some() {
        Some(session.fetch_token(challenge, "", None).await)
    } else {
        None
    };
    match from_here {
        None => reach.push(RealmReach {
            vantage: "here".into(),
            reachable: None,
            detail: "not tested: the registry itself is not reachable from here".into(),
            request: here_req,
        }),
        Some(Ok(reply)) => reach.push(RealmReach {
            vantage: "here".into(),
            reachable: Some(true),
            detail: format!("answered {}", reply.response.status_text()),
            request: here_req,
        }),
        Some(Err(e)) => reach.push(RealmReach {
            vantage: "here".into(),
            reachable: Some(false),
            detail: probe_failure(&e),
            request: here_req,
        }),
    }
    // From every node at once: a TCP connect, the way containerd dials it.
    let script = super::hops::probe_script(&realm_host, realm_port, NODE_PROBE_SECS);
    let mut set = tokio::task::JoinSet::new();
    for node in nodes {
        let (probes, script) = (probes.clone(), script.clone());
        set.spawn(async move {
            let out = probes.exec(&node.name, node.destination(), &script).await;
            (node.name, out)
        });
    }
    let mut node_reach = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok((name, out)) = joined else { continue };
        node_reach.push(match out {
            Ok(out) => {
                let v = super::hops::parse_probe(&String::from_utf8_lossy(&out.stdout));
                RealmReach {
                    vantage: name,
                    reachable: match v.outcome {
                        super::hops::ProbeOutcome::Open => Some(true),
                        super::hops::ProbeOutcome::Error => None,
                        _ => Some(false),
                    },
                    detail: format!("{:?}: {}", v.outcome, v.detail).to_lowercase(),
                    request: v.command(),
                }
            }
            Err(e) => RealmReach {
                vantage: name,
                reachable: None,
                detail: format!("not tested: {e}"),
                request: format!("tcp connect {realm_addr}"),
            },
        });
    }
    node_reach.sort_by(|a, b| a.vantage.cmp(&b.vantage));
    reach.extend(node_reach);
    let mut findings = realm_findings(
        &registry,
        &realm,
        &realm_host,
        realm_port,
        evidence,
        &reach,
        &new,
    );
    attach_fixes(&mut findings, &ctx, Class::TokenRealmUnreachable, |_| true);
    outcome(findings, &ctx)
}

/// Point the findings of `class` that `answered` picks at the catalog's fixes for that class.
fn attach_fixes(
    findings: &mut [Finding],
    ctx: &CheckContext,
    class: Class,
    answered: impl Fn(&Finding) -> bool,
) {
    let refs = ctx
        .classifier
        .catalog()
        .get(class)
        .map(super::catalog::Signature::fix_refs)
        .unwrap_or_default();
    for f in findings
        .iter_mut()
        .filter(|f| f.class == class && answered(f))
    {
        f.fixes.clone_from(&refs);
    }
}

/// `GET /v2/` in plain HTTP from a node (bash's `/dev/tcp`), for when the registry cannot be
/// reached from here: the first node that gets an HTTP answer gives the challenge. An HTTPS
/// registry gives none (its challenge then stays unknown and the check says so).
async fn challenge_from_nodes(
    registry: &RegistryTarget,
    nodes: &[Host],
    probes: &dyn Probes,
) -> Option<(crate::probe::http::HttpResponse, Evidence)> {
    let (host, port) = registry.host_port();
    let host = host.trim_matches(['[', ']']);
    // only a validated address is spliced into the shell text
    if !super::hops::valid_host(host) {
        return None;
    }
    let command = format!(
        "timeout 5 bash -c 'exec 3<>/dev/tcp/{host}/{port} && printf \"GET /v2/ HTTP/1.0\\r\\nHost: {host}:{port}\\r\\n\\r\\n\" >&3 && head -c 16384 <&3'"
    );
    for node in nodes {
        let Ok(out) = probes.exec(&node.name, node.destination(), &command).await else {
            continue;
        };
        if let Some(resp) = crate::probe::http::parse_response(&out.stdout) {
            let head: String = String::from_utf8_lossy(&out.stdout)
                .split("\r\n\r\n")
                .next()
                .unwrap_or("")
                .replace("\r\n", "\n");
            let evidence = Evidence {
                source: EvidenceSource::Command {
                    host: node.name.clone(),
                    command: command.clone(),
                },
                time: None,
                host: Some(node.name.clone()),
                text: head,
                matched: None,
            };
            return Some((resp, evidence));
        }
    }
    None
}

fn realm_findings(
    registry: &RegistryTarget,
    realm: &str,
    realm_host: &str,
    realm_port: u16,
    mut evidence: Vec<Evidence>,
    reach: &[RealmReach],
    new: &dyn Fn(Class, Severity, &str, String) -> Finding,
) -> Vec<Finding> {
    let addr = &registry.address;
    let (reg_host, _) = registry.host_port();
    let realm_addr = format!("{realm_host}:{realm_port}");
    for r in reach.iter().filter(|r| r.vantage != "here") {
        evidence.push(Evidence {
            source: EvidenceSource::Command {
                host: r.vantage.clone(),
                command: r.request.clone(),
            },
            time: None,
            host: Some(r.vantage.clone()),
            text: r.detail.clone(),
            matched: None,
        });
    }
    let blocked: Vec<&RealmReach> = reach
        .iter()
        .filter(|r| r.reachable == Some(false))
        .collect();
    let untested: Vec<&RealmReach> = reach.iter().filter(|r| r.reachable.is_none()).collect();
    let node_count = reach.iter().filter(|r| r.vantage != "here").count();
    let same_host = realm_host.eq_ignore_ascii_case(reg_host.trim_matches(['[', ']']));
    let link = format!(
        "The registry {addr} sends every client to {realm} for a token (its WWW-Authenticate \
         realm). On GitLab the realm is external_url + /jwt/auth (Omnibus: registry['token_realm'] \
         defaults to external_url){}.",
        if same_host {
            String::new()
        } else {
            format!(", so the nodes must reach {realm_addr} as well as the registry's own address")
        }
    );
    let nodes_blocked: Vec<String> = blocked
        .iter()
        .filter(|r| r.vantage != "here")
        .map(|r| r.vantage.clone())
        .collect();
    // Seen from the nodes, the path is what matters; "here" alone only decides without nodes.
    if blocked.is_empty() || (nodes_blocked.is_empty() && node_count > 0) {
        let mut f = new(
            Class::None,
            Severity::Info,
            "realm",
            format!("The token realm {realm_addr} is reachable"),
        );
        f.explanation = format!(
            "{link} It answered from {}{}.",
            reach
                .iter()
                .filter(|r| r.reachable == Some(true))
                .map(|r| r.vantage.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if untested.is_empty() {
                String::new()
            } else {
                format!(
                    "; not tested from {}",
                    untested
                        .iter()
                        .map(|r| r.vantage.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        if node_count == 0 {
            f.explanation
                .push_str(" No node is in the inventory, so it was tested from here only.");
        }
        f.subject.endpoint = Some(realm.to_string());
        f.evidence = evidence;
        return vec![f];
    }
    let names: Vec<&str> = blocked.iter().map(|r| r.vantage.as_str()).collect();
    let only_here = nodes_blocked.is_empty();
    let mut f = new(
        Class::TokenRealmUnreachable,
        Severity::Error,
        "realm",
        format!(
            "The token realm {realm_addr} cannot be reached from {}",
            if only_here {
                "here".to_string()
            } else {
                nodes_blocked.join(", ")
            }
        ),
    );
    f.explanation = format!(
        "{link} {} could not open a connection to {realm_addr} ({}). containerd asks the realm \
         for a token before every pull, so {} fails with 'failed to fetch anonymous token' or \
         'failed to fetch oauth token' even while {addr} itself answers.",
        names.join(", "),
        blocked
            .iter()
            .map(|r| format!("{}: {}", r.vantage, r.detail))
            .collect::<Vec<_>>()
            .join("; "),
        if only_here {
            "a pull from here"
        } else {
            "every pull on those nodes"
        }
    );
    f.subject.endpoint = Some(realm.to_string());
    f.subject.nodes = nodes_blocked;
    f.next_steps = vec![
        format!(
            "Either forward port {realm_port} to the GitLab host on the hop the nodes go through, as {} is forwarded (the path.hops check shows which hop drops it): iptables -t nat -A PREROUTING -p tcp --dport {realm_port} -j DNAT --to-destination <gitlab>:{realm_port}, with its FORWARD accept.",
            registry.host_port().1
        ),
        "Or point the realm at an address the nodes reach: set external_url (or registry['token_realm']) in /etc/gitlab/gitlab.rb, then gitlab-ctl reconfigure.".into(),
        format!("Check from a node: curl -sv '{realm}?service=container_registry' -o /dev/null"),
    ];
    f.evidence = evidence;
    vec![f]
}

// ---------------------------------------------------------------------------------------------
// registry.auth

/// `registry.auth`: read the pull secret, run the token flow with its credentials as containerd
/// does, decode the token's `access` claim, then ask for the image's manifest. Tells apart bad
/// credentials, credentials without rights, expired job tokens, a denied request, and a missing
/// repository or tag.
pub struct PullAuth {
    /// The registry.
    pub registry: RegistryTarget,
    /// The image, `host:port/path:tag` or `@digest`.
    pub image: String,
    /// The pull secret (a Secret manifest, `kubectl get secret -o json`, or a docker config),
    /// read through the probes.
    pub pull_secret: Option<String>,
}

const AUTH_ID: &str = "registry.auth";

impl Check for PullAuth {
    fn id(&self) -> CheckId {
        CheckId(AUTH_ID.into())
    }

    fn target(&self) -> Target {
        Target {
            kind: TargetKind::Image,
            name: self.image.clone(),
        }
    }

    fn run(&self, ctx: CheckContext) -> CheckFuture {
        let (registry, image, secret) = (
            self.registry.clone(),
            self.image.clone(),
            self.pull_secret.clone(),
        );
        Box::pin(async move { pull_auth(registry, image, secret, ctx).await })
    }
}

/// `host:port/name:tag` → (name, reference); the domain must be the registry's.
/// The repository and the reference a pull of `image` asks for: the digest when there is one
/// (containerd pulls by digest then), else the tag, else `latest`.
fn repository_and_reference(image: &str) -> Result<(String, String), String> {
    let parsed = crate::parse::image_ref::ImageRef::parse(image).map_err(|e| e.to_string())?;
    let reference = parsed
        .digest
        .clone()
        .or_else(|| parsed.effective_tag().map(str::to_string))
        .unwrap_or_else(|| "latest".to_string());
    Ok((parsed.path, reference))
}

async fn pull_auth(
    registry: RegistryTarget,
    image: String,
    secret_path: Option<String>,
    ctx: CheckContext,
) -> CheckOutcome {
    let probes = ctx.probes.clone();
    let addr = registry.address.clone();
    let target = Target {
        kind: TargetKind::Image,
        name: image.clone(),
    };
    let new = |class, severity, key: &str, title: String| {
        let mut f = Finding::new(
            AUTH_ID,
            class,
            severity,
            target.clone(),
            &[&image, key],
            title,
        );
        f.subject = Subject {
            image: Some(image.clone()),
            registry: Some(addr.clone()),
            ..Subject::default()
        };
        f
    };
    let (name, reference) = match repository_and_reference(&image) {
        Ok(r) => r,
        Err(e) => return CheckOutcome::errored(e),
    };
    if crate::parse::extract::image_domain(&image).as_deref() != Some(addr.as_str()) {
        let mut f = new(
            Class::ImageNotFound,
            Severity::Error,
            "host",
            format!("{image} names another registry than {addr}"),
        );
        f.explanation = format!(
            "The image's registry part is '{}', but the registry is {addr}. containerd pulls from exactly the host:port the image names (and looks for hosts.toml and pull-secret keys under that name), so it will not reach {addr}.",
            crate::parse::extract::image_domain(&image).unwrap_or_default()
        );
        f.next_steps = vec![format!(
            "Use {addr}/{name}:{reference} in the workload (and in CI's push)."
        )];
        // the reference as configured is the proof: its registry part is not the registry
        let domain = crate::parse::extract::image_domain(&image).unwrap_or_default();
        let mut e = probe_evidence(
            format!("image reference (registry part '{domain}', registry {addr})"),
            image.clone(),
        );
        e.matched = image
            .find(domain.as_str())
            .filter(|_| !domain.is_empty())
            .map(|at| [at, at + domain.len()]);
        f.evidence.push(e);
        return outcome(vec![f], &ctx);
    }
    let mut findings = Vec::new();
    // The pull secret, read the way kubelet reads it.
    let mut credentials: Option<Credentials> = None;
    let mut secret_note = None;
    if let Some(path) = &secret_path {
        let text = match probes.read_file(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return CheckOutcome::errored(format!("pull secret: {e}")),
        };
        match dockercfg::parse_secret(&text) {
            Err(e) => return CheckOutcome::errored(format!("pull secret '{path}': {e}")),
            Ok(cfg) => {
                let matching = cfg.matching(&image);
                match matching.first() {
                    Some(entry) => {
                        credentials = entry.username.clone().map(|username| Credentials {
                            username,
                            password: entry.password.clone(),
                        });
                        secret_note = Some(format!(
                            "pull secret '{path}': entry '{}' (user {})",
                            entry.key,
                            entry.username.as_deref().unwrap_or("none")
                        ));
                        if !entry.problems.is_empty() {
                            let mut f = new(
                                Class::AuthDenied,
                                Severity::Warning,
                                "secret-entry",
                                format!("The pull secret's entry for {} has problems", entry.key),
                            );
                            f.explanation = entry.problems.join(" ");
                            f.evidence = vec![Evidence::new(
                                EvidenceSource::File {
                                    path: path.clone(),
                                    line: line_of(&text, &entry.key),
                                },
                                format!("auths key '{}'", entry.key),
                            )];
                            findings.push(f);
                        }
                    }
                    None => {
                        let keys: Vec<&str> = cfg.entries.iter().map(|e| e.key.as_str()).collect();
                        let mut f = new(
                            Class::AuthDenied,
                            Severity::Error,
                            "secret-key",
                            format!(
                                "The pull secret has no entry for {addr}: kubelet will pull {image} anonymously"
                            ),
                        );
                        f.explanation = format!(
                            "kubelet picks credentials by matching the image's registry against the secret's auths keys, host and port exactly. The secret has {}, none of which is {addr}, so the pull goes without credentials.",
                            if keys.is_empty() {
                                "no keys".to_string()
                            } else {
                                format!("keys {}", keys.join(", "))
                            }
                        );
                        f.next_steps = vec![format!(
                            "Re-create the secret keyed by {addr}: kubectl create secret docker-registry NAME --docker-server={addr} --docker-username=… --docker-password=\"$TOKEN\" --dry-run=client -o yaml | kubectl apply -f -"
                        )];
                        f.evidence = vec![Evidence::new(
                            EvidenceSource::File {
                                path: path.clone(),
                                line: keys.first().map_or(1, |k| line_of(&text, k)),
                            },
                            format!("auths keys: {}", keys.join(", ")),
                        )];
                        findings.push(f);
                    }
                }
                for p in &cfg.problems {
                    secret_note = Some(format!("{}; {p}", secret_note.unwrap_or_default()));
                }
            }
        }
    }
    let trust = match registry.trust(probes.as_ref()) {
        Ok(t) => t,
        Err(e) => return CheckOutcome::errored(e),
    };
    let report = match registry.inspect(probes.as_ref(), &trust).await {
        Ok(r) => r,
        Err(e) => {
            return CheckOutcome::without_findings(CheckStatus::Skipped {
                reason: format!(
                    "the registry {addr} cannot be reached from here ({}); registry.scheme reports it",
                    probe_failure(&e)
                ),
            });
        }
    };
    let (endpoint, tls_note) = registry.endpoint(&report, &trust);
    let mut session = Session::new(probes.as_ref(), endpoint);
    let first = match session.head_manifest(&name, &reference, None).await {
        Ok(r) => r,
        Err(e) => {
            // the registry answers but its API does not: registry.token-realm's finding says so
            return CheckOutcome::without_findings(CheckStatus::Skipped {
                reason: format!(
                    "HEAD {}/v2/{name}/manifests/{reference} failed ({}); registry.token-realm reports the registry's API",
                    session.endpoint.base,
                    probe_failure(&e)
                ),
            });
        }
    };
    let notes: Vec<String> = secret_note.into_iter().chain(tls_note).collect();
    let verdict = if first.status == 401 {
        let challenges = crate::probe::registry::challenges(&first);
        if let Some(challenge) = challenges.iter().find(|c| c.is_bearer()).cloned() {
            let scope = challenge
                .scope()
                .map_or_else(|| format!("repository:{name}:pull"), str::to_string);
            match session
                .fetch_token(&challenge, &scope, credentials.as_ref())
                .await
            {
                Err(e) => AuthVerdict::RealmUnreachable(probe_failure(&e)),
                Ok(reply) => {
                    judge_token(
                        &reply,
                        &name,
                        credentials.as_ref(),
                        &mut session,
                        &reference,
                    )
                    .await
                }
            }
        } else if challenges.iter().any(Challenge::is_basic) {
            match &credentials {
                None => AuthVerdict::NoCredentials {
                    status: first.status,
                },
                Some(c) => {
                    let basic = format!(
                        "Basic {}",
                        crate::parse::jwt::base64_encode(
                            format!("{}:{}", c.username, c.password.expose()).as_bytes(),
                            false
                        )
                    );
                    let mut req = crate::probe::http::HttpRequest::new(
                        "HEAD",
                        format!("{}/v2/{name}/manifests/{reference}", session.endpoint.base),
                    );
                    req.trust = session.endpoint.trust.clone();
                    req = req
                        .header("Accept", crate::probe::registry::MANIFEST_ACCEPT)
                        .header("Authorization", basic);
                    match probes.http(&req).await {
                        Ok(r) if r.status == 401 => AuthVerdict::BadCredentials {
                            at: "registry (Basic)".into(),
                            status: r.status_text(),
                        },
                        Ok(r) => manifest_verdict(&r),
                        Err(e) => AuthVerdict::Unreached(probe_failure(&e)),
                    }
                }
            }
        } else {
            AuthVerdict::Unusable("the registry answered 401 without a usable challenge".into())
        }
    } else {
        manifest_verdict(&first)
    };
    findings.extend(auth_findings(
        &verdict,
        &image,
        &addr,
        &name,
        &reference,
        credentials.as_ref(),
        &session.exchanges,
        &notes,
        &new,
    ));
    if let AuthVerdict::Unreached(why) = &verdict {
        return CheckOutcome::without_findings(CheckStatus::Skipped {
            reason: format!("the registry conversation for {image} broke off: {why}"),
        });
    }
    // the credentials are wrong or keyed wrongly: re-creating the secret answers it
    let recreate: Vec<String> = ["bad-credentials", "expired-job-token", "secret-key"]
        .iter()
        .map(|k| crate::model::FindingId::derive(&[AUTH_ID, Class::AuthDenied.id(), &image, k]).0)
        .collect();
    attach_fixes(&mut findings, &ctx, Class::AuthDenied, |f| {
        recreate.contains(&f.id.0)
    });
    outcome(findings, &ctx)
}

/// The 1-based line of the first mention of `needle` (1 when the text does not show it, as in
/// base64 `data`).
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i as u64 + 1)
}

/// What the conversation proved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthVerdict {
    /// The manifest is there and the credentials (or none) may pull it.
    Pullable,
    /// The realm refused the credentials.
    BadCredentials { at: String, status: String },
    /// The realm refused an anonymous request (no credentials matched).
    NoCredentials { status: u16 },
    /// 403 at the realm with credentials: valid, but without registry rights.
    Forbidden { at: String, message: String },
    /// A token was issued without pull access to the repository.
    NoAccess { granted: String },
    /// The token was refused by the registry (expired, wrong issuer).
    TokenRefused { detail: String },
    /// The repository is unknown.
    NoRepository,
    /// The tag or digest is unknown.
    NoTag,
    /// The token realm could not be reached from here.
    RealmUnreachable(String),
    /// The answers made no sense for a registry.
    Unusable(String),
    /// A request failed mid-conversation.
    Unreached(String),
}

fn manifest_verdict(resp: &crate::probe::http::HttpResponse) -> AuthVerdict {
    let errors = registry_errors(&resp.body);
    let code = errors.first().map(|e| e.code.as_str()).unwrap_or("");
    match resp.status {
        200 => AuthVerdict::Pullable,
        404 if code == "NAME_UNKNOWN" => AuthVerdict::NoRepository,
        404 => AuthVerdict::NoTag,
        403 => AuthVerdict::Forbidden {
            at: "registry".into(),
            message: errors.first().map_or_else(
                || resp.status_text(),
                |e| format!("{}: {}", e.code, e.message),
            ),
        },
        401 => {
            let challenge = crate::probe::registry::challenges(resp);
            let err = challenge
                .iter()
                .find_map(|c| c.error().map(str::to_string))
                .unwrap_or_default();
            if err == "insufficient_scope" {
                AuthVerdict::NoAccess {
                    granted: "the registry answered insufficient_scope".into(),
                }
            } else {
                AuthVerdict::TokenRefused {
                    detail: if err.is_empty() {
                        resp.status_text()
                    } else {
                        err
                    },
                }
            }
        }
        _ => AuthVerdict::Unusable(format!(
            "the manifest request answered {}",
            resp.status_text()
        )),
    }
}

async fn judge_token(
    reply: &crate::probe::registry::TokenReply,
    name: &str,
    credentials: Option<&Credentials>,
    session: &mut Session<'_>,
    reference: &str,
) -> AuthVerdict {
    let status = reply.response.status;
    let at = format!("the token realm ({} {})", reply.method, reply.request);
    match status {
        200 => {}
        401 if credentials.is_some() => {
            return AuthVerdict::BadCredentials {
                at,
                status: reply.response.status_text(),
            };
        }
        401 | 403 if credentials.is_none() => return AuthVerdict::NoCredentials { status },
        403 => {
            let message = registry_errors(&reply.response.body).first().map_or_else(
                || reply.response.status_text(),
                |e| format!("{}: {}", e.code, e.message),
            );
            return AuthVerdict::Forbidden { at, message };
        }
        _ => {
            return AuthVerdict::Unusable(format!(
                "the token realm answered {}",
                reply.response.status_text()
            ));
        }
    }
    let Some(token) = &reply.token else {
        return AuthVerdict::Unusable(
            reply
                .token_problem
                .clone()
                .unwrap_or_else(|| "no token".into()),
        );
    };
    if let Some(claims) = &reply.claims {
        let now = chrono::Utc::now().timestamp();
        if !claims.grants(name, "pull") {
            let granted = if claims.access.is_empty() {
                "the token's access claim is empty".to_string()
            } else {
                format!(
                    "the token grants {}",
                    claims
                        .access
                        .iter()
                        .map(|a| format!("{}:{}:{}", a.type_, a.name, a.actions.join(",")))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            };
            // containerd would still try; the registry's answer completes the evidence
            let _ = session.head_manifest(name, reference, Some(token)).await;
            return AuthVerdict::NoAccess { granted };
        }
        if claims.expired_at(now) {
            return AuthVerdict::TokenRefused {
                detail: "the issued token is already expired (clock skew between GitLab and here?)"
                    .into(),
            };
        }
    }
    match session.head_manifest(name, reference, Some(token)).await {
        Ok(r) => manifest_verdict(&r),
        Err(e) => AuthVerdict::Unreached(probe_failure(&e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn auth_findings(
    verdict: &AuthVerdict,
    image: &str,
    addr: &str,
    name: &str,
    reference: &str,
    credentials: Option<&Credentials>,
    exchanges: &[Exchange],
    notes: &[String],
    new: &dyn Fn(Class, Severity, &str, String) -> Finding,
) -> Vec<Finding> {
    let user = credentials.map(|c| c.username.as_str());
    let who = user.map_or_else(|| "anonymous".to_string(), |u| format!("user '{u}'"));
    let job_token = user == Some("gitlab-ci-token");
    let (class, key, title, explanation, steps): (Class, &str, String, String, Vec<String>) = match verdict {
        AuthVerdict::Pullable | AuthVerdict::Unreached(_) => return Vec::new(),
        AuthVerdict::BadCredentials { at, status } if job_token => (
            Class::AuthDenied, "expired-job-token",
            format!("The pull secret holds a CI job token, which expired when its job ended ({status})"),
            format!("{at} refused user 'gitlab-ci-token' with {status}. A job token (CI_JOB_TOKEN / CI_REGISTRY_PASSWORD) is valid only while its job runs; a pull secret made from it works at deploy time and fails on the next reschedule."),
            vec!["Create a deploy token with read_registry (Settings → Repository → Deploy tokens) and re-create the pull secret with it.".into()],
        ),
        AuthVerdict::BadCredentials { at, status } => (
            Class::AuthDenied, "bad-credentials",
            format!("The registry's token service refuses the pull secret's credentials ({status})"),
            format!("{at} answered {status} for {who}: the username or password (token) is wrong, revoked or expired. containerd logs 'failed to fetch oauth token: unexpected status … 401 Unauthorized'."),
            vec!["Check the token in GitLab (revoked? expired?) and that the username matches it (a deploy token's username is gitlab+deploy-token-N unless set).".into(),
                 "Re-create the secret: kubectl create secret docker-registry NAME --docker-server=… --docker-username=… --docker-password=\"$TOKEN\" --dry-run=client -o yaml | kubectl apply -f -".into()],
        ),
        AuthVerdict::NoCredentials { status } => (
            Class::AuthDenied, "anonymous",
            format!("{image} needs credentials and the pull has none"),
            format!("The token service refused an anonymous request ({status}). This is containerd's 'failed to fetch anonymous token: … 403 Forbidden': no imagePullSecret, or its auths key does not match {addr} exactly."),
            vec![format!("Add an imagePullSecret keyed by {addr} to the workload (or its service account).")],
        ),
        AuthVerdict::Forbidden { at, message } => (
            Class::AuthDenied, "forbidden",
            format!("{who} may not use the registry ({message})"),
            format!("{at} answered 403 ({message}) for {who}: the credentials are valid but carry no registry rights — a token without the read_registry scope, or a user without a role on the project."),
            vec!["Give the token read_registry (deploy token) or read_registry/read_api (personal, project or group token) and the user Reporter or higher on the project.".into()],
        ),
        AuthVerdict::NoAccess { granted } => (
            Class::AuthDenied, "no-access",
            format!("{who} got a token without pull access to {name}"),
            format!("The token service answered 200, but {granted}, so the registry refuses the manifest with insufficient_scope (containerd: 'pull access denied, repository does not exist or may require authorization'). GitLab answers the same way when the project does not exist, so check the path '{name}' too."),
            vec![format!("Check that the project '{name}' exists (the path is lower-case) and that the token's user is a member with at least Reporter."),
                 "The image.names check compares the name with what CI pushed.".into()],
        ),
        AuthVerdict::TokenRefused { detail } => (
            Class::AuthDenied, "token-refused",
            format!("The registry refuses the token it was given ({detail})"),
            format!("A token was issued, but the registry answered 401 ({detail}): the registry and GitLab disagree on the token (issuer, signing certificate, expiry)."),
            vec!["Compare registry['rootcertbundle'] with GitLab's registry key, and the clocks of both hosts.".into()],
        ),
        AuthVerdict::NoRepository => (
            Class::ImageNotFound, "repository",
            format!("The repository {name} does not exist in {addr}"),
            format!("The registry answered 404 NAME_UNKNOWN for {name}: nothing was ever pushed under that name. A pull of {image} fails with 'not found'."),
            vec!["Compare with what CI pushed (image.names lists the nearest existing name) and fix the workload's image: or CI's push.".into()],
        ),
        AuthVerdict::NoTag => (
            Class::ImageNotFound, "tag",
            format!("{name} has no tag or digest '{reference}' in {addr}"),
            format!("The repository exists but the registry answered 404 MANIFEST_UNKNOWN for '{reference}'."),
            vec![format!("List the tags: GET /v2/{name}/tags/list; push '{reference}' or deploy a tag that exists.")],
        ),
        AuthVerdict::RealmUnreachable(why) => (
            Class::TokenRealmUnreachable, "realm",
            format!("The token realm cannot be reached from here ({why})"),
            format!("The registry sent the request to its token realm, which did not answer from here: {why}. registry.token-realm tests it from every node."),
            Vec::new(),
        ),
        AuthVerdict::Unusable(why) => (
            Class::AuthDenied, "unusable",
            format!("The registry conversation for {image} went wrong: {why}"),
            format!("{why}. containerd would fail the same way."),
            Vec::new(),
        ),
    };
    let mut f = new(class, Severity::Error, key, title);
    f.explanation = if notes.is_empty() {
        explanation
    } else {
        format!("{explanation} ({})", notes.join("; "))
    };
    f.next_steps = steps;
    f.evidence = exchange_evidence(exchanges);
    f.confidence = Confidence::Confirmed;
    vec![f]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_images() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            repository_and_reference("10.0.0.5:5050/root/gition/backend:latest"),
            Ok(("root/gition/backend".into(), "latest".into()))
        );
        assert_eq!(
            repository_and_reference("10.0.0.5:5050/root/app"),
            Ok(("root/app".into(), "latest".into()))
        );
        assert_eq!(
            repository_and_reference(&format!("r:5050/a/b:v1@{digest}")),
            Ok(("a/b".into(), digest.clone()))
        );
        assert!(repository_and_reference("r:5050/Root/App").is_err());
        assert_eq!(
            split_host_port("10.0.0.5:5050", 443),
            ("10.0.0.5".into(), 5050)
        );
        assert_eq!(split_host_port("registry", 443), ("registry".into(), 443));
    }
}
