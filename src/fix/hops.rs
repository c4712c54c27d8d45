//! The hop fix: the iptables rules and `ip_forward` a forwarding hop is missing, planned at the
//! first hop that breaks each port (as the `path.hops` walk names it and says why), applied as
//! commands that check before they run and know their undo, and verified by walking the route
//! again.
//!
//! Only what the walk can name exactly is planned: a missing DNAT (or one to the wrong next hop:
//! a right one goes in front of it), a FORWARD drop or REJECT (the REJECT is deleted, and put back
//! at its place on rollback), replies dropped, a missing MASQUERADE, `ip_forward = 0`. Routes,
//! stopped services and native nftables rulesets stay advice: the finding already says what to do.

use super::{FixPlan, FixStep, Fixer, PlanFuture, Planned, Verification, VerifyFuture};
use crate::check::CheckContext;
use crate::check::hops::{Break, Cause, HopFacts, PortRole, docker_managed, finding_id};
use crate::check::remote::{HopWalk, PathHops};
use crate::inventory::Host;
use crate::model::FixRisk;
use crate::parse::iptables::Backend;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Where `ip_forward = 1` is made to survive a reboot (a file pulldoctor owns, so it is backed
/// up and rolled back like any other).
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/99-pulldoctor-ip-forward.conf";

/// The hop fix for one inventory route.
pub struct HopForwarding {
    /// The route's hop walk (its spec and inventory hosts).
    pub check: PathHops,
    /// The (hop, port) pairs the last plan repaired, which verification walks again.
    planned: Mutex<Vec<(String, u16)>>,
}

impl HopForwarding {
    /// The fixer for a route's walk.
    #[must_use]
    pub fn new(check: PathHops) -> Self {
        Self {
            check,
            planned: Mutex::new(Vec::new()),
        }
    }
}

impl Fixer for HopForwarding {
    fn subject(&self) -> String {
        format!("route {}", self.check.spec.name)
    }

    fn plan<'a>(&'a self, ctx: &'a CheckContext) -> PlanFuture<'a> {
        Box::pin(async move {
            let walk = self.check.walk(ctx).await?;
            let planned = plan_from_walk(&walk, &self.check.hosts);
            if let (Some(p), Ok(mut pairs)) = (&planned, self.planned.lock()) {
                pairs.clone_from(&p.1);
            }
            Ok(planned.map(|p| p.0))
        })
    }

    fn verify<'a>(&'a self, ctx: &'a CheckContext, _planned: &'a Planned) -> VerifyFuture<'a> {
        Box::pin(async move {
            let pairs = self.planned.lock().map(|p| p.clone()).unwrap_or_default();
            match self.check.walk(ctx).await {
                Ok(walk) => verify_walk(&walk, &pairs),
                Err(e) => Verification {
                    ok: false,
                    detail: format!("path.hops could not walk the route again: {e}"),
                },
            }
        })
    }
}

/// Whether a break is this fixer's to repair: at a forwarding hop (not the node, not the
/// service's own host) that the inventory can reach.
fn at_hop(walk: &HopWalk, b: &Break) -> bool {
    b.position >= 1 && b.position <= walk.verdict.spec.hops.len()
}

/// The plan for a walk's breaks at hops, and the (hop, port) pairs it repairs. Pure.
#[must_use]
pub fn plan_from_walk(
    walk: &HopWalk,
    hosts: &BTreeMap<String, Host>,
) -> Option<(Planned, Vec<(String, u16)>)> {
    let route = &walk.verdict.spec.name;
    let mut steps: Vec<FixStep> = Vec::new();
    // (hop, port, cause) → the nodes that see it, for the reasons shown
    let mut seen: Vec<(String, u16, String, Vec<String>)> = Vec::new();
    let mut findings: Vec<String> = Vec::new();
    let mut pairs: Vec<(String, u16)> = Vec::new();
    let mut hop_names: Vec<String> = Vec::new();
    let mut realm_only = true;
    for (pv, v, b) in walk.verdict.breaks() {
        if !at_hop(walk, b) {
            continue;
        }
        let Some(host) = hosts.get(&b.host) else {
            continue;
        };
        let Some(found) = steps_for(b, walk.facts.get(&b.host), host) else {
            continue;
        };
        let cause = b.cause.summary();
        match seen
            .iter_mut()
            .find(|(h, p, c, _)| *h == b.host && *p == b.port && *c == cause)
        {
            Some((_, _, _, nodes)) if !nodes.contains(&v.vantage) => nodes.push(v.vantage.clone()),
            Some(_) => {}
            None => seen.push((b.host.clone(), b.port, cause, vec![v.vantage.clone()])),
        }
        for s in found {
            if !steps.contains(&s) {
                steps.push(s);
            }
        }
        let id = finding_id(route, pv.role, b).0;
        if !findings.contains(&id) {
            findings.push(id);
        }
        let pair = (b.host.clone(), b.port);
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
        if !hop_names.contains(&b.host) {
            hop_names.push(b.host.clone());
        }
        realm_only &= pv.role == PortRole::TokenRealm;
    }
    if steps.is_empty() {
        return None;
    }
    let why = seen
        .iter()
        .map(|(hop, port, cause, nodes)| {
            format!(
                "{hop} breaks :{port} for {} (route {route}): {cause}",
                nodes.join(", ")
            )
        })
        .collect();
    // iptables rules live in memory only: saving them is the hop owner's call (see below)
    let iptables_hosts: Vec<&String> = hop_names
        .iter()
        .filter(|h| {
            steps.iter().any(|s| {
                matches!(s, FixStep::RunRemoteCommand { host, command, .. }
                    if host == *h && command.contains("iptables"))
            })
        })
        .collect();
    for h in iptables_hosts {
        steps.push(FixStep::Manual {
            text: format!(
                "the iptables rules above on {h} last until its next reboot; keep them the way {h} stores its firewall (with iptables-persistent: save, then check the file: it holds every live rule, also those Docker or kube-proxy add at run time)"
            ),
            commands: vec![
                "iptables-save > /etc/iptables/rules.v4".to_string(),
                "netfilter-persistent save".to_string(),
            ],
        });
    }
    let mut ports: Vec<String> = pairs.iter().map(|(_, p)| format!(":{p}")).collect();
    ports.dedup();
    let fix = if realm_only {
        PortRole::TokenRealm.fix()
    } else {
        PortRole::Registry.fix()
    };
    let plan = FixPlan {
        id: fix.id,
        title: format!(
            "Forward {} through {} again (route {route})",
            ports.join(", "),
            hop_names.join(", ")
        ),
        hosts: hop_names,
        risk: FixRisk::Disruptive,
        restarts_service: false,
        verify: format!("path.hops on route {route}"),
        steps,
    };
    Some((
        Planned {
            plan,
            why,
            findings,
        },
        pairs,
    ))
}

/// Whether the walk again finds none of the repaired (hop, port) pairs broken. A break further
/// along the route is another hop's fault: it is reported, and does not fail this fix.
#[must_use]
pub fn verify_walk(walk: &HopWalk, pairs: &[(String, u16)]) -> Verification {
    let mut still = Vec::new();
    let mut further = Vec::new();
    for (_, v, b) in walk.verdict.breaks() {
        let line = format!(
            "{} breaks :{} from {}: {}",
            b.host,
            b.port,
            v.vantage,
            b.cause.summary()
        );
        let target = if pairs.iter().any(|(h, p)| *h == b.host && *p == b.port) {
            &mut still
        } else {
            &mut further
        };
        if !target.contains(&line) {
            target.push(line);
        }
    }
    if still.is_empty() {
        let mut detail = format!(
            "path.hops: {} forward{} now",
            pairs
                .iter()
                .map(|(h, p)| format!("{h} :{p}"))
                .collect::<Vec<_>>()
                .join(", "),
            if pairs.len() == 1 { "s" } else { "" }
        );
        if !further.is_empty() {
            detail.push_str(&format!("; further along: {}", further.join("; ")));
        }
        Verification { ok: true, detail }
    } else {
        Verification {
            ok: false,
            detail: format!("path.hops still finds {}", still.join("; ")),
        }
    }
}

/// The iptables command for the backend that holds the hop's rules: plain `iptables` when that
/// is the backend `iptables -V` reports, else the backend's own name. `None` on a hop whose
/// rules are native nftables only (the finding's nft advice stands).
fn iptables_command(facts: Option<&HopFacts>, b: &Break) -> Option<&'static str> {
    let Some(f) = facts else {
        return Some("iptables");
    };
    let backend = match &b.firewall {
        Some(fw) if fw.is_nft() => return None,
        Some(fw) if fw.backend == Backend::Legacy.name() => Backend::Legacy,
        Some(fw) if fw.backend == Backend::IptablesNft.name() => Backend::IptablesNft,
        _ => match f.rulesets.iter().find(|r| r.backend != Backend::Nft) {
            Some(r) => r.backend,
            None if f.rulesets.is_empty() => Backend::Unknown,
            None => return None,
        },
    };
    let plain = f.iptables_version.as_deref().unwrap_or("");
    Some(match backend {
        Backend::Legacy if !plain.contains("legacy") => "iptables-legacy",
        Backend::IptablesNft if !plain.contains("nf_tables") => "iptables-nft",
        _ => "iptables",
    })
}

/// Rule text that is safe to hand to the shell as it is (what `iptables-save` prints for the
/// rules a hop walk names); anything else is left to a person.
fn plain_rule(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ./:_,!-+=".contains(c))
}

/// One rule added at the top of a chain: skipped when it is already there, deleted on rollback.
fn add_rule(host: &Host, ipt: &str, table: &str, chain: &str, rule: &str) -> FixStep {
    let t = if table == "filter" {
        String::new()
    } else {
        format!(" -t {table}")
    };
    FixStep::RunRemoteCommand {
        host: host.name.clone(),
        command: format!("{ipt} -w{t} -I {chain} {rule}"),
        sudo: host.sudo,
        check: Some(format!("{ipt} -w{t} -C {chain} {rule}")),
        undo: Some(format!("{ipt} -w{t} -D {chain} {rule}")),
    }
}

/// The chain a forwarding accept goes into: DOCKER-USER on a Docker host (Docker resets FORWARD).
fn accept_chain(b: &Break) -> &'static str {
    if docker_managed(b) {
        "DOCKER-USER"
    } else {
        "FORWARD"
    }
}

/// The REJECT rule a break names, as `iptables-save` printed it (`-A CHAIN …`), and its
/// 1-based position in its chain, from the facts the walk read.
fn reject_rule<'a>(b: &'a Break, facts: Option<&HopFacts>) -> Option<(&'a str, &'a str, usize)> {
    let text = b
        .evidence
        .iter()
        .map(|e| e.text.trim())
        .find(|t| t.starts_with("-A ") && t.contains("-j REJECT"))?;
    let rest = text.strip_prefix("-A ")?;
    let (chain, rule) = rest.split_once(' ')?;
    let position = facts?
        .rulesets
        .iter()
        .filter(|r| r.backend != Backend::Nft)
        .flat_map(|r| r.tables.iter().filter(|t| t.name == "filter"))
        .find_map(|t| {
            t.chain(chain)?
                .rules
                .iter()
                .position(|r| r.text.trim() == text)
        })?;
    (plain_rule(rule) && plain_rule(chain)).then_some((chain, rule, position + 1))
}

/// The steps that repair one break, or `None` when this fixer does not repair its cause.
fn steps_for(b: &Break, facts: Option<&HopFacts>, host: &Host) -> Option<Vec<FixStep>> {
    let p = b.port;
    let next = b.next.as_deref().filter(|n| plain_rule(n))?;
    let here = b.address.as_str();
    if !plain_rule(here) {
        return None;
    }
    let dnat =
        format!("-d {here}/32 -p tcp -m tcp --dport {p} -j DNAT --to-destination {next}:{p}");
    let accept = format!("-d {next}/32 -p tcp -m tcp --dport {p} -j ACCEPT");
    let steps = match &b.cause {
        Cause::IpForwardOff => vec![
            FixStep::RunRemoteCommand {
                host: host.name.clone(),
                command: "sysctl -qw net.ipv4.ip_forward=1".into(),
                sudo: host.sudo,
                check: Some("[ \"$(cat /proc/sys/net/ipv4/ip_forward)\" = 1 ]".into()),
                undo: Some("sysctl -qw net.ipv4.ip_forward=0".into()),
            },
            FixStep::WriteRemoteFile {
                host: host.name.clone(),
                path: SYSCTL_FILE.into(),
                mode: "0644".into(),
                owner: "root:root".into(),
                content: "# Written by pulldoctor: this host forwards the registry's ports \
                          (DNAT), which needs IP forwarding.\nnet.ipv4.ip_forward = 1\n"
                    .into(),
            },
        ],
        Cause::NoDnat { .. } | Cause::DnatWrongTarget { .. } => {
            // a DNAT at the top of PREROUTING wins over a wrong one further down (left in place:
            // it may serve something else; the finding names it)
            vec![add_rule(
                host,
                iptables_command(facts, b)?,
                "nat",
                "PREROUTING",
                &dnat,
            )]
        }
        Cause::ForwardDropped { .. } => {
            vec![add_rule(
                host,
                iptables_command(facts, b)?,
                "filter",
                accept_chain(b),
                &accept,
            )]
        }
        Cause::ForwardRejected { .. } => {
            let ipt = iptables_command(facts, b)?;
            let mut steps = Vec::new();
            if let Some((chain, rule, position)) = reject_rule(b, facts) {
                steps.push(FixStep::RunRemoteCommand {
                    host: host.name.clone(),
                    command: format!("{ipt} -w -D {chain} {rule}"),
                    sudo: host.sudo,
                    check: Some(format!("! {ipt} -w -C {chain} {rule}")),
                    undo: Some(format!("{ipt} -w -I {chain} {position} {rule}")),
                });
            }
            steps.push(add_rule(host, ipt, "filter", accept_chain(b), &accept));
            steps
        }
        Cause::ReturnDropped { .. } => vec![add_rule(
            host,
            iptables_command(facts, b)?,
            "filter",
            accept_chain(b),
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        )],
        Cause::MasqueradeMissing { .. } => {
            let oif = b.out_iface.as_deref().filter(|o| plain_rule(o))?;
            vec![add_rule(
                host,
                iptables_command(facts, b)?,
                "nat",
                "POSTROUTING",
                &format!("-o {oif} -d {next}/32 -p tcp -m tcp --dport {p} -j MASQUERADE"),
            )]
        }
        Cause::NoRouteToNext { .. }
        | Cause::DroppedBeforeNat { .. }
        | Cause::NoReturnRoute { .. }
        | Cause::ServiceDown { .. }
        | Cause::TargetUnreachable { .. }
        | Cause::NodeNoRoute { .. }
        | Cause::Unexplained { .. } => return None,
    };
    Some(steps)
}
