//! The hop fix in the lab, for real: each hop fault (FORWARD accept removed, DNAT removed, a
//! REJECT, `ip_forward = 0`) breaks the node's pull; `pulldoctor fix --yes` plans the missing
//! rule (or sysctl) at the hop the walk names, applies it, walks the route again to verify, and a
//! real CRI pull from the node through both hops succeeds. A hop fix whose verification fails is
//! rolled back: the hop's rules are as they were, the REJECT back at its place.
//!
//! Needs root and the lab's packages (tests/run-all.sh installs them); skips and says so
//! otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod common;

use common::lab::{Lab, available};
use std::process::Output;
use std::time::Instant;

const PASS: &str = "fix-hops-pass";

fn pull(lab: &Lab, timeout: &str) -> Output {
    lab.pull_backend("k8snode", PASS, timeout)
}

/// A hop's rules, without counters (`iptables -S` for filter and nat).
fn rules(lab: &Lab, hop: &str) -> String {
    lab.sh(hop, "iptables -w -S; iptables -w -t nat -S")
}

#[test]
fn hop_faults_are_fixed_verified_and_rolled_back_in_the_lab() {
    if let Err(why) = available() {
        eprintln!("SKIP hop_faults_are_fixed_verified_and_rolled_back_in_the_lab: {why}");
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::up("pdxh-", PASS).expect("lab up");
    let cases: &[(&[&str], &str, &str)] = &[
        // fault, the hop named, what the plan runs there
        (
            &["forward-removed", "bastion", "5050"],
            "bastion",
            "iptables -w -I FORWARD -d 10.88.2.2/32 -p tcp -m tcp --dport 5050 -j ACCEPT",
        ),
        (
            &["dnat-removed", "linuxhost", "80"],
            "linuxhost",
            "iptables -w -t nat -I PREROUTING -d 10.88.2.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.88.3.2:80",
        ),
        (
            &["reject-host-unreachable", "bastion", "5050"],
            "bastion",
            "iptables -w -D FORWARD -d 10.88.2.2/32 -i pd-k8snode -o pd-linuxhost -p tcp -m tcp --dport 5050 -j REJECT --reject-with icmp-host-unreachable",
        ),
        (
            &["ip-forward-off", "linuxhost"],
            "linuxhost",
            "sysctl -qw net.ipv4.ip_forward=1",
        ),
    ];
    for (fault, hop, command) in cases {
        let mut args = vec!["fault"];
        args.extend_from_slice(fault);
        lab.ok(&args);
        assert!(
            !pull(&lab, "4").status.success(),
            "{fault:?} must break the pull"
        );
        let fixed = lab.fix(&lab.inventory(), &["--yes"], &[]);
        let out = common::output_text(&fixed);
        assert_eq!(fixed.status.code(), Some(0), "{fault:?}: {out}");
        assert!(out.contains(&format!("run on {hop}: {command}")), "{out}");
        assert!(
            out.contains(&format!(" on {hop}: fixed and verified")),
            "{out}"
        );
        let pulled = pull(&lab, "20");
        assert!(
            pulled.status.success(),
            "{fault:?}: the real pull after the fix: {}",
            common::output_text(&pulled)
        );
        eprintln!("{fault:?} fixed: {:?}", t0.elapsed());
        lab.ok(&["heal", "all"]);
    }
    // ip_forward=1 was made to stick in the hop's own /etc/sysctl.d (the lab's private copy)
    let conf = lab.sh(
        "linuxhost",
        "cat /etc/sysctl.d/99-pulldoctor-ip-forward.conf",
    );
    assert!(conf.contains("net.ipv4.ip_forward = 1"), "{conf}");
    assert!(
        lab.state
            .join("linuxhost/etc-sysctl.d/99-pulldoctor-ip-forward.conf")
            .exists()
    );

    // a second run finds nothing to do
    let again = lab.fix(&lab.inventory(), &["--yes"], &[]);
    assert!(
        common::output_text(&again).contains("Nothing to fix"),
        "{}",
        common::output_text(&again)
    );

    // verification fails: the REJECT goes back where it was, the ACCEPT goes away
    lab.ok(&["fault", "reject-host-unreachable", "bastion", "5050"]);
    let before = rules(&lab, "bastion");
    let failed = lab.fix(
        &lab.inventory(),
        &["--yes"],
        &["PULLDOCTOR_TEST_FAIL_VERIFY=1"],
    );
    common::assert_outcome(&failed, 1, "rolled back");
    assert_eq!(
        rules(&lab, "bastion"),
        before,
        "bastion's rules as they were"
    );
    assert!(!pull(&lab, "4").status.success(), "still broken, as before");
    eprintln!("rollback: {:?}", t0.elapsed());
    lab.ok(&["heal", "all"]);
}
