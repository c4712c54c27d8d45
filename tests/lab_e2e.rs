//! End to end against the real lab (`tests/lab/`): real containerd 1.6 pulls, through real NAT
//! hops, from a real CNCF registry with a GitLab-like token server. For each fault, what the node's
//! containerd logged and what the CRI call returned must classify to the fault's class.
//!
//! Needs root and the lab's packages (`tests/lab/lab.sh install`, which the README's test command
//! runs); without them it says so and passes nothing off as tested.

// test harness: a lab command that cannot even start is a failed test
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
use common::lab::Lab;
use common::{code, report, run};

/// `pulldoctor --headless --config INV` run where an operator would be (the GitLab VM); its report.
fn headless(lab: &Lab, inv: &std::path::Path) -> serde_json::Value {
    let out = lab.cmd(&[
        "exec",
        "gitlabvm",
        env!("CARGO_BIN_EXE_pulldoctor"),
        "--headless",
        "--config",
        inv.to_str().unwrap(),
    ]);
    report(&out)
}

/// `pulldoctor --headless` with an inventory, run where an operator would be (the GitLab VM),
/// reaching the node through two ProxyJump hops with the lab's own ssh config and known_hosts:
/// the node's containerd log shows the injected fault, and a host that does not exist is one
/// finding, its journal check skipped.
fn headless_over_ssh(lab: &Lab) {
    let state = lab.state.clone();
    let inventory = format!(
        "[registry]\naddress = \"10.88.1.1:5050\"\n[ssh]\nconfig = \"{s}/ssh/config\"\nknown_hosts = [\"{s}/ssh/known_hosts\"]\nconnect_timeout = 5\n\n\
         [[host]]\nname = \"k8snode\"\nroles = [\"node\"]\nlog_files = [\"{s}/k8snode/containerd.log\"]\n\n\
         [[host]]\nname = \"bastion\"\nroles = [\"hop\"]\naddress = \"10.88.1.1\"\n\n\
         [[host]]\nname = \"linuxhost\"\nroles = [\"hop\"]\naddress = \"10.88.2.2\"\n\n\
         [[host]]\nname = \"gitlabvm\"\nroles = [\"gitlab\"]\naddress = \"10.88.3.2\"\n\n\
         [[host]]\nname = \"ghost\"\nssh = \"root@10.88.3.77\"\nroles = [\"node\"]\n\n\
         [[route]]\nname = \"registry\"\nfrom = [\"k8snode\"]\nhops = [\"bastion\", \"linuxhost\", \"gitlabvm\"]\nports = [5050, 80]\nrealm_port = 80\n",
        s = state.display()
    );
    let inv = state.join("inventory.toml");
    std::fs::write(&inv, inventory).unwrap();
    lab.ok(&["fault", "no-hosts-toml"]);
    let _ = lab.cmd(&[
        "pull",
        "backend",
        "--user",
        "gition-deploy",
        "--pass",
        "e2e-deploy-pass",
    ]);
    let r = headless(lab, &inv);
    lab.ok(&["heal", "no-hosts-toml"]);
    let findings = r["findings"].as_array().unwrap();
    // the node's log also holds the earlier cases' pulls: look for this one's class
    let journal = findings
        .iter()
        .find(|f| f["check"] == "node.journal" && f["class"] == "http_vs_https")
        .unwrap_or_else(|| panic!("no http_vs_https node.journal finding: {r}"));
    assert_eq!(journal["target"]["name"], "k8snode");
    assert_eq!(journal["evidence"][0]["source"]["kind"], "command");
    // the node's own configuration explains it: no hosts.toml, so containerd speaks HTTPS to a
    // registry the node sees answering plain HTTP
    let scheme = findings
        .iter()
        .find(|f| f["check"] == "registry.scheme" && f["target"]["name"] == "k8snode")
        .unwrap_or_else(|| panic!("no registry.scheme finding: {r}"));
    assert_eq!(scheme["class"], "http_vs_https");
    assert_eq!(scheme["severity"], "error");
    let ghost: Vec<_> = findings
        .iter()
        .filter(|f| f["target"]["name"] == "ghost")
        .collect();
    assert_eq!(
        ghost.len(),
        1,
        "one finding for the unreachable host: {ghost:?}"
    );
    assert_eq!(ghost[0]["check"], "ssh.reachable");
    let skipped = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "node.journal" && c["target"] == "ghost")
        .unwrap();
    assert_eq!(skipped["status"]["state"], "skipped");
    // healed: the node's configuration is right again
    let healed = headless(lab, &inv);
    assert!(
        !healed["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "registry.scheme" && f["severity"] != "info"),
        "no registry.scheme finding on the healthy node: {healed}"
    );
    assert!(
        !healed["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "path.hops"),
        "no path.hops finding on the healthy route: {healed}"
    );

    // the realm's port rejected on the second hop: the hop walk names linuxhost and port 80
    lab.ok(&["fault", "reject-host-unreachable", "linuxhost", "80"]);
    let broken = headless(lab, &inv);
    lab.ok(&["heal", "reject-host-unreachable"]);
    let hop = broken["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "path.hops")
        .unwrap_or_else(|| panic!("no path.hops finding: {broken}"));
    assert_eq!(hop["class"], "token_realm_unreachable");
    assert_eq!(hop["target"]["name"], "linuxhost");
    assert_eq!(hop["subject"]["endpoint"], "10.88.2.2:80");
    // the realm check reads the challenge from the node (the registry's address is not reachable
    // from the GitLab VM) and finds the realm out of the node's reach
    let realm = broken["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "registry.token-realm")
        .unwrap_or_else(|| panic!("no registry.token-realm finding: {broken}"));
    assert_eq!(realm["class"], "token_realm_unreachable", "{realm}");
    assert_eq!(realm["subject"]["nodes"][0], "k8snode", "{realm}");
    for host in ["k8snode", "bastion"] {
        let c = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "ssh.reachable" && c["target"] == host)
            .unwrap();
        assert_eq!(c["status"]["state"], "passed", "{host}: {c}");
    }
}

fn class_of(text: &str) -> String {
    let out = run(&["explain", "--json", "-"], text.as_bytes(), &[]);
    assert!(matches!(code(&out), 0 | 1));
    report(&out)["summary"]["primary_class"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Every fault of the lab, pulled for real, classifies to its class from the journal and from
/// the CRI error.
#[test]
fn lab_pull_failures_are_classified() {
    let lab = match Lab::up("pdt-", "e2e-deploy-pass") {
        Ok(lab) => lab,
        Err(why) => {
            eprintln!("SKIPPED lab end-to-end test: {why}");
            return;
        }
    };
    let creds = ["--user", "gition-deploy", "--pass", "e2e-deploy-pass"];
    // (fault to inject, image, credentials?, expected class)
    let cases: [(&[&str], &str, bool, &str); 7] = [
        (&[], "backend", true, "none"),
        (&["no-hosts-toml"], "backend", true, "http_vs_https"),
        (
            &["realm-unreachable"],
            "backend",
            true,
            "token_realm_unreachable",
        ),
        (
            &["realm-unreachable"],
            "backend",
            false,
            "token_realm_unreachable",
        ),
        (&[], "api", true, "image_not_found"),
        (
            &["reject-host-unreachable", "bastion", "5050"],
            "backend",
            true,
            "other_network",
        ),
        (
            &["dnat-removed", "bastion", "5050"],
            "backend",
            true,
            "other_network",
        ),
    ];
    for (fault, image, with_creds, want) in cases {
        if !fault.is_empty() {
            lab.ok(&[&["fault"][..], fault].concat());
        }
        let _ = lab.cmd(&["rmi", image]);
        let mut args = vec!["pull", image, "--timeout", "20"];
        if with_creds {
            args.extend(creds);
        }
        let pull = lab.cmd(&args);
        let journal = lab.ok(&["journal", "--last"]);
        let cri_error = String::from_utf8_lossy(&pull.stderr).into_owned();
        assert_eq!(
            class_of(&journal),
            want,
            "journal for {fault:?} {image}:\n{journal}"
        );
        if want == "none" {
            assert!(pull.status.success(), "healthy pull failed: {cri_error}");
        } else {
            assert_eq!(
                class_of(&cri_error),
                want,
                "CRI error for {fault:?} {image}:\n{cri_error}"
            );
        }
        if !fault.is_empty() {
            lab.ok(&["heal", fault[0]]);
        }
    }
    headless_over_ssh(&lab);

    // a wrong password is refused at the realm: auth_denied
    let pull = lab.cmd(&[
        "pull",
        "backend",
        "--user",
        "gition-deploy",
        "--pass",
        "wrong-password-123",
    ]);
    assert_eq!(
        class_of(&String::from_utf8_lossy(&pull.stderr)),
        "auth_denied"
    );
    assert_eq!(class_of(&lab.ok(&["journal", "--last"])), "auth_denied");
}
