//! The hop fix's plans, from the hop walks recorded in the lab (`tests/fixtures/hops/<case>/`)
//! and the hand-written nft and Docker hops: which hop, which exact commands with their checks
//! and undos, which finding each plan answers, what is left to a person, and how a walk after
//! the fix is judged. The same plans run for real in tests/fix_lab_hops.rs.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test harness

use pulldoctor::check::hops::{
    HopFacts, HopSpec, PortRole, PortSpec, ProbeSet, RouteSpec, Vantage, evaluate_route, findings,
    parse_hop_gathered,
};
use pulldoctor::check::remote::HopWalk;
use pulldoctor::fix::hops::{SYSCTL_FILE, plan_from_walk, verify_walk};
use pulldoctor::fix::{FixStep, Planned};
use pulldoctor::inventory::{Host, Role};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn route() -> RouteSpec {
    let hop = |name: &str, address: &str| HopSpec {
        name: name.into(),
        address: address.into(),
    };
    RouteSpec {
        name: "registry".into(),
        vantages: vec![Vantage {
            name: "k8snode".into(),
            address: Some("10.88.1.2".into()),
        }],
        hops: vec![hop("bastion", "10.88.1.1"), hop("linuxhost", "10.88.2.2")],
        target: hop("gitlabvm", "10.88.3.2"),
        ports: vec![
            PortSpec {
                port: 5050,
                role: PortRole::Registry,
            },
            PortSpec {
                port: 80,
                role: PortRole::TokenRealm,
            },
        ],
    }
}

fn hosts(sudo: bool) -> BTreeMap<String, Host> {
    ["k8snode", "bastion", "linuxhost", "gitlabvm"]
        .into_iter()
        .map(|n| {
            (
                n.to_string(),
                Host {
                    name: n.into(),
                    ssh: None,
                    roles: vec![Role::Hop],
                    address: None,
                    sudo,
                    log_files: Vec::new(),
                    containerd_restart: None,
                },
            )
        })
        .collect()
}

/// A recorded case walked as `path.hops` walks it.
fn walk(case: &str) -> HopWalk {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hops")
        .join(case);
    let mut facts: BTreeMap<String, HopFacts> = BTreeMap::new();
    let mut probes = ProbeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if let Some(host) = name.strip_suffix(".gather") {
            facts.insert(host.to_string(), parse_hop_gathered(&text));
        } else if name == "probes.txt" {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let (from, out) = line.split_once(' ').unwrap();
                assert!(probes.add_output(from, out), "{line}");
            }
        }
    }
    HopWalk {
        verdict: evaluate_route(&route(), &facts, &probes),
        facts,
    }
}

fn plan(case: &str) -> Option<(Planned, Vec<(String, u16)>)> {
    plan_from_walk(&walk(case), &hosts(false))
}

/// Every command step as (host, command, check, undo).
fn commands(p: &Planned) -> Vec<(String, String, Option<String>, Option<String>)> {
    p.plan
        .steps
        .iter()
        .filter_map(|s| match s {
            FixStep::RunRemoteCommand {
                host,
                command,
                check,
                undo,
                ..
            } => Some((host.clone(), command.clone(), check.clone(), undo.clone())),
            _ => None,
        })
        .collect()
}

/// The plan answers the finding `path.hops` gives for the same walk.
fn answers_the_finding(case: &str, p: &Planned) {
    let found = findings(&walk(case).verdict);
    assert!(!found.is_empty());
    for f in &found {
        assert!(
            p.findings.contains(&f.id.0),
            "{case}: {} not answered",
            f.id.0
        );
    }
    // one plan may answer the registry's port and the realm's: its id is one of their fixes
    assert!(
        found
            .iter()
            .any(|f| f.fixes.iter().any(|x| x.id == p.plan.id)),
        "{case}: {}",
        p.plan.id
    );
}

#[test]
fn healthy_and_unfixable_walks_plan_nothing() {
    assert!(plan("healthy").is_none());
    // the service itself is down: that is not a hop's rules
    assert!(plan("registry-stopped").is_none());
    assert!(plan("token-server-stopped").is_none());
    // a hop the inventory does not know cannot be changed
    let mut known = hosts(false);
    known.remove("bastion");
    assert!(plan_from_walk(&walk("forward-removed-bastion-5050"), &known).is_none());
}

#[test]
fn forward_accept_goes_on_top_of_forward_with_its_check_and_undo() {
    let (p, pairs) = plan("forward-removed-bastion-5050").unwrap();
    assert_eq!(p.plan.id, "hop-forwarding");
    assert_eq!(p.plan.hosts, vec!["bastion".to_string()]);
    assert_eq!(pairs, vec![("bastion".to_string(), 5050)]);
    let rule = "FORWARD -d 10.88.2.2/32 -p tcp -m tcp --dport 5050 -j ACCEPT";
    assert_eq!(
        commands(&p),
        vec![(
            "bastion".to_string(),
            format!("iptables -w -I {rule}"),
            Some(format!("iptables -w -C {rule}")),
            Some(format!("iptables -w -D {rule}")),
        )]
    );
    // saving the rules is left to a person, with the commands
    assert!(
        p.plan
            .steps
            .iter()
            .any(|s| matches!(s, FixStep::Manual { commands, .. }
        if commands.iter().any(|c| c == "iptables-save > /etc/iptables/rules.v4")))
    );
    answers_the_finding("forward-removed-bastion-5050", &p);
}

#[test]
fn missing_dnat_is_added_for_the_realm_port_as_forward_realm_port() {
    let (p, _) = plan("dnat-removed-bastion-80").unwrap();
    assert_eq!(p.plan.id, "forward-realm-port");
    let rule =
        "PREROUTING -d 10.88.1.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.88.2.2:80";
    let c = commands(&p);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].1, format!("iptables -w -t nat -I {rule}"));
    assert_eq!(
        c[0].2.as_deref(),
        Some(format!("iptables -w -t nat -C {rule}").as_str())
    );
    assert_eq!(
        c[0].3.as_deref(),
        Some(format!("iptables -w -t nat -D {rule}").as_str())
    );
    answers_the_finding("dnat-removed-bastion-80", &p);
    let (p, _) = plan("dnat-removed-linuxhost-5050").unwrap();
    assert_eq!(p.plan.hosts, vec!["linuxhost".to_string()]);
    assert!(commands(&p)[0].1.contains(
        "-d 10.88.2.2/32 -p tcp -m tcp --dport 5050 -j DNAT --to-destination 10.88.3.2:5050"
    ));
}

#[test]
fn a_reject_is_deleted_and_put_back_at_its_place_on_rollback() {
    let case = "reject-host-unreachable-bastion-5050";
    let (p, _) = plan(case).unwrap();
    let c = commands(&p);
    assert_eq!(c.len(), 2, "{c:#?}");
    let reject = "-d 10.88.2.2/32 -i pd-k8snode -o pd-linuxhost -p tcp -m tcp --dport 5050 -j REJECT --reject-with icmp-host-unreachable";
    assert_eq!(c[0].1, format!("iptables -w -D FORWARD {reject}"));
    assert_eq!(
        c[0].2.as_deref(),
        Some(format!("! iptables -w -C FORWARD {reject}").as_str())
    );
    // its position in the recorded FORWARD chain
    let facts = &walk(case).facts["bastion"];
    let position = facts.rulesets[0]
        .tables
        .iter()
        .find(|t| t.name == "filter")
        .unwrap()
        .chain("FORWARD")
        .unwrap()
        .rules
        .iter()
        .position(|r| r.text.contains("-j REJECT"))
        .unwrap()
        + 1;
    assert_eq!(
        c[0].3.as_deref(),
        Some(format!("iptables -w -I FORWARD {position} {reject}").as_str())
    );
    assert!(
        c[1].1
            .ends_with("-I FORWARD -d 10.88.2.2/32 -p tcp -m tcp --dport 5050 -j ACCEPT")
    );
    answers_the_finding(case, &p);
}

#[test]
fn ip_forward_is_switched_on_and_made_to_stick() {
    let (p, pairs) = plan("ip-forward-off-linuxhost").unwrap();
    // both ports break there, one plan repairs both
    assert_eq!(
        pairs,
        vec![
            ("linuxhost".to_string(), 5050),
            ("linuxhost".to_string(), 80)
        ]
    );
    let c = commands(&p);
    assert_eq!(c.len(), 1, "one sysctl for both ports: {c:#?}");
    assert_eq!(c[0].1, "sysctl -qw net.ipv4.ip_forward=1");
    assert_eq!(
        c[0].2.as_deref(),
        Some("[ \"$(cat /proc/sys/net/ipv4/ip_forward)\" = 1 ]")
    );
    assert_eq!(c[0].3.as_deref(), Some("sysctl -qw net.ipv4.ip_forward=0"));
    assert!(p.plan.steps.iter().any(
        |s| matches!(s, FixStep::WriteRemoteFile { path, content, .. }
        if path == SYSCTL_FILE && content.contains("net.ipv4.ip_forward = 1\n"))
    ));
    // no iptables rule changed: nothing to save by hand
    assert!(
        !p.plan
            .steps
            .iter()
            .any(|s| matches!(s, FixStep::Manual { .. }))
    );
    answers_the_finding("ip-forward-off-linuxhost", &p);
}

#[test]
fn masquerade_names_the_outgoing_interface() {
    let (p, _) = plan("masquerade-removed-bastion-5050").unwrap();
    let c = commands(&p);
    assert_eq!(
        c[0].1,
        "iptables -w -t nat -I POSTROUTING -o pd-linuxhost -d 10.88.2.2/32 -p tcp -m tcp --dport 5050 -j MASQUERADE"
    );
}

#[test]
fn docker_hops_get_their_accepts_in_docker_user() {
    let (p, _) = plan("docker-hop-no-established").unwrap();
    let c = commands(&p);
    assert_eq!(c.len(), 1, "one rule answers both ports: {c:#?}");
    assert!(
        c[0].1
            .ends_with("-I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        "{c:#?}"
    );
    let (p, _) = plan("docker-hop").unwrap();
    assert!(commands(&p)[0].1.contains("-I DOCKER-USER -d 10.88.3.2/32"));
}

#[test]
fn native_nftables_hops_are_left_to_the_findings_advice() {
    // the break sits in an nft chain: no iptables command would reach it
    assert!(plan("nft-native").is_none());
    assert!(plan("nft-mixed").is_none());
}

#[test]
fn sudo_comes_from_the_inventory_host() {
    let (p, _) = plan_from_walk(&walk("forward-removed-bastion-5050"), &hosts(true)).unwrap();
    assert!(
        p.plan
            .steps
            .iter()
            .any(|s| matches!(s, FixStep::RunRemoteCommand { sudo, .. } if *sudo))
    );
}

#[test]
fn verification_judges_only_the_repaired_hop_and_port() {
    let pairs = vec![("bastion".to_string(), 5050)];
    assert!(verify_walk(&walk("healthy"), &pairs).ok);
    let v = verify_walk(&walk("forward-removed-bastion-5050"), &pairs);
    assert!(!v.ok);
    assert!(v.detail.contains("bastion breaks :5050"), "{}", v.detail);
    // a break further along is another hop's: reported, not a failure of this fix
    let v = verify_walk(&walk("forward-removed-linuxhost-80"), &pairs);
    assert!(v.ok, "{}", v.detail);
    assert!(
        v.detail.contains("further along: linuxhost breaks :80"),
        "{}",
        v.detail
    );
}
