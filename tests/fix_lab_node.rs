//! One-key fixes that restart containerd, in a two-node lab, for real: the same `config_path`
//! fault on both nodes is fixed by one `fix --yes` (two plans, one node at a time, each verified
//! and followed by a real CRI pull through the hops); a shadowing `certs.d` directory is fixed;
//! a fix whose verification fails, and one whose restart breaks containerd, are rolled back
//! byte for byte with containerd running again (and the twin on the second node is not touched);
//! a `fix` killed (SIGKILL) in the middle of its restart leaves every file old or new, never
//! half-written, and the next run offers the backups back and `--restore` puts them back.
//!
//! Needs root and the lab's packages (tests/run-all.sh installs them); skips and says so
//! otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod common;

use common::lab::{Lab, available};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const PASS: &str = "fix-node-pass";
const NODES: [&str; 2] = ["k8snode", "k8snode2"];

fn pull(lab: &Lab, node: &str) -> Output {
    lab.pull_backend(node, PASS, "20")
}

fn cri_answers(lab: &Lab, node: &str) -> bool {
    lab.cmd(&["--node", node, "cri-status"]).status.success()
}

/// The node's files, as this machine sees them (the node's /etc/containerd is bound from here).
fn etc(lab: &Lab, node: &str) -> PathBuf {
    lab.state.join(node).join("etc-containerd")
}

fn config_toml(lab: &Lab, node: &str) -> PathBuf {
    etc(lab, node).join("config.toml")
}

fn hosts_toml(lab: &Lab, node: &str) -> PathBuf {
    etc(lab, node).join("certs.d/10.88.1.1:5050/hosts.toml")
}

fn sha(path: &Path) -> String {
    use sha2::Digest as _;
    match std::fs::read(path) {
        Ok(bytes) => format!("{:x}", sha2::Sha256::digest(&bytes)),
        Err(_) => "absent".into(),
    }
}

fn containerd_pid(lab: &Lab, node: &str) -> String {
    let name = if node == "k8snode" {
        "containerd".to_string()
    } else {
        format!("containerd-{node}")
    };
    std::fs::read_to_string(lab.state.join(format!("pids/{name}.pid"))).unwrap_or_default()
}

/// Temp files a write left behind (`.pulldoctor.XXXXXX` next to the file it replaces).
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with(".pulldoctor.") {
                out.push(p);
            }
        }
    }
    out
}

fn audit(lab: &Lab) -> String {
    std::fs::read_to_string(lab.state.join("pd-state/audit.jsonl")).unwrap_or_default()
}

#[test]
fn restarting_fixes_twins_rollbacks_and_a_kill_in_a_two_node_lab() {
    if let Err(why) = available() {
        eprintln!("SKIP restarting_fixes_twins_rollbacks_and_a_kill_in_a_two_node_lab: {why}");
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::up_nodes("pdxn-", PASS, 2).expect("lab up");
    let inv = std::fs::read_to_string(lab.inventory()).unwrap();
    for node in NODES {
        assert!(
            inv.contains(&format!(
                "containerd_restart = \"{}/{node}/restart-containerd\"",
                lab.state.display()
            )),
            "{inv}"
        );
    }

    // the healthy two-node lab: nothing to fix (k8snode2 comes in on its own link to bastion,
    // and the hop walk from it finds nothing wrong either)
    let healthy = lab.fix(&lab.inventory(), &["--dry-run"], &[]);
    assert!(
        common::output_text(&healthy).contains("Nothing to fix"),
        "{}",
        common::output_text(&healthy)
    );

    // 1. the same fault on both nodes: one apply fixes both, one node at a time
    for node in NODES {
        lab.ok(&["--node", node, "fault", "v2-key-on-v1"]);
        assert!(
            !pull(&lab, node).status.success(),
            "{node}: the fault must break the pull"
        );
    }
    let fixed = lab.fix(&lab.inventory(), &["--yes"], &[]);
    let out = common::output_text(&fixed);
    assert_eq!(fixed.status.code(), Some(0), "{out}");
    let first = out
        .find("hosts-toml-http on k8snode: fixed and verified")
        .unwrap_or_else(|| panic!("{out}"));
    let second = out
        .find("hosts-toml-http on k8snode2: fixed and verified")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(first < second, "{out}");
    // one node at a time: k8snode was verified before anything started on k8snode2
    let log = audit(&lab);
    let verified_1 = log
        .lines()
        .position(|l| l.contains("\"host\":\"k8snode\"") && l.contains("\"outcome\":\"verified\""))
        .unwrap_or_else(|| panic!("{log}"));
    let started_2 = log
        .lines()
        .position(|l| l.contains("\"host\":\"k8snode2\"") && l.contains("\"outcome\":\"started\""))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(verified_1 < started_2, "{log}");
    for node in NODES {
        let pulled = pull(&lab, node);
        assert!(
            pulled.status.success(),
            "{node}: {}",
            common::output_text(&pulled)
        );
    }
    eprintln!("twins fixed: {:?}", t0.elapsed());
    lab.ok(&["heal", "all"]);

    // 1b. a hop fault and its twin on k8snode2's own link: one rule on bastion fixes both
    for node in NODES {
        lab.ok(&[
            "--node",
            node,
            "fault",
            "forward-removed",
            "bastion",
            "5050",
        ]);
    }
    let fixed = lab.fix(&lab.inventory(), &["--yes"], &[]);
    let out = common::output_text(&fixed);
    assert_eq!(fixed.status.code(), Some(0), "{out}");
    assert!(
        out.contains("why: bastion breaks :5050 for k8snode, k8snode2 (route registry)"),
        "{out}"
    );
    assert_eq!(
        out.matches("  1. run on bastion: iptables").count(),
        1,
        "{out}"
    );
    assert!(
        out.contains("hop-forwarding on bastion: fixed and verified"),
        "{out}"
    );
    for node in NODES {
        let pulled = pull(&lab, node);
        assert!(
            pulled.status.success(),
            "{node}: {}",
            common::output_text(&pulled)
        );
    }
    eprintln!("hop twins fixed: {:?}", t0.elapsed());
    lab.ok(&["heal", "all"]);

    // 2. a shadowing first certs.d directory; no config_path at all (config_path = "")
    for (fault, shows) in [
        ("config-path-shadowed", "hosts.toml"),
        (
            "no-config-path",
            "+      config_path = \"/etc/containerd/certs.d\"",
        ),
    ] {
        lab.ok(&["fault", fault]);
        assert!(!pull(&lab, "k8snode").status.success(), "{fault}");
        let fixed = lab.fix(&lab.inventory(), &["--yes", "k8snode"], &[]);
        let out = common::output_text(&fixed);
        assert_eq!(fixed.status.code(), Some(0), "{fault}: {out}");
        assert!(out.contains(shows), "{fault}: {out}");
        assert!(
            out.contains("hosts-toml-http on k8snode: fixed and verified"),
            "{fault}: {out}"
        );
        let pulled = pull(&lab, "k8snode");
        assert!(
            pulled.status.success(),
            "{fault}: {}",
            common::output_text(&pulled)
        );
        eprintln!("{fault} fixed: {:?}", t0.elapsed());
        lab.ok(&["heal", "all"]);
    }

    // 3. verification fails: config.toml byte-identical, containerd restarted on it and running
    lab.ok(&["fault", "v2-key-on-v1"]);
    let before = sha(&config_toml(&lab, "k8snode"));
    let pid_before = containerd_pid(&lab, "k8snode");
    let failed = lab.fix(
        &lab.inventory(),
        &["--yes", "k8snode"],
        &["PULLDOCTOR_TEST_FAIL_VERIFY=1"],
    );
    common::assert_outcome(&failed, 1, "rolled back");
    assert_eq!(sha(&config_toml(&lab, "k8snode")), before);
    assert!(cri_answers(&lab, "k8snode"), "containerd runs again");
    assert_ne!(
        containerd_pid(&lab, "k8snode"),
        pid_before,
        "it was restarted"
    );
    let log = audit(&lab);
    assert!(log.contains("restart after rollback"), "{log}");
    eprintln!("verify-failed rollback: {:?}", t0.elapsed());

    // 4. the restart breaks containerd (it refuses its config and exits): the files go back,
    //    containerd is started again on them, and the twin on k8snode2 is not touched
    lab.ok(&["--node", "k8snode2", "fault", "v2-key-on-v1"]);
    let before: Vec<String> = NODES.iter().map(|n| sha(&config_toml(&lab, n))).collect();
    let hosts_before = sha(&hosts_toml(&lab, "k8snode"));
    std::fs::write(lab.state.join("k8snode/break-next-restart"), "").unwrap();
    let broken = lab.fix(&lab.inventory(), &["--yes"], &[]);
    let out = common::output_text(&broken);
    assert_eq!(broken.status.code(), Some(1), "{out}");
    assert!(out.contains("containerd on k8snode exited"), "{out}");
    assert!(out.contains("rolled back"), "{out}");
    assert!(
        out.contains("not applied: hosts-toml-http failed on an earlier host"),
        "{out}"
    );
    let after: Vec<String> = NODES.iter().map(|n| sha(&config_toml(&lab, n))).collect();
    assert_eq!(after, before, "both config.toml files as they were");
    assert_eq!(sha(&hosts_toml(&lab, "k8snode")), hosts_before);
    assert!(cri_answers(&lab, "k8snode"), "containerd runs again");
    assert!(!lab.state.join("k8snode/break-next-restart").exists());
    eprintln!("broken-restart rollback: {:?}", t0.elapsed());

    // 5. killed during the restart: every file old or new, never partial; the next run offers
    //    the backups; --restore puts them back
    std::fs::write(lab.state.join("k8snode/restart-delay"), "6").unwrap();
    let config_before = sha(&config_toml(&lab, "k8snode"));
    let hosts_before = sha(&hosts_toml(&lab, "k8snode"));
    let argv = lab.fix_argv(&lab.inventory(), &["--yes", "k8snode"], &[]);
    let mut child = std::process::Command::new("bash")
        .arg(lab.script())
        .args(&argv)
        .envs(lab.env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines_before = audit(&lab).lines().count();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = audit(&lab);
        if log.lines().skip(lines_before).any(|l| {
            l.contains("\"step\":\"restart containerd\"") && l.contains("\"outcome\":\"started\"")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restart never started: {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = pulldoctor_pid(&lab.inventory()).expect("the running pulldoctor");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait();
    let log = audit(&lab);
    let after_of = |path: &str| -> Vec<String> {
        log.lines()
            .skip(lines_before)
            .filter(|l| l.contains(&format!("\"path\":\"{path}\"")))
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["after"].as_str().map(str::to_string)
            })
            .collect()
    };
    let config_now = sha(&config_toml(&lab, "k8snode"));
    assert!(
        config_now == config_before
            || after_of("/etc/containerd/config.toml").contains(&config_now),
        "config.toml is neither the old nor the new file"
    );
    let hosts_now = sha(&hosts_toml(&lab, "k8snode"));
    assert!(
        hosts_now == hosts_before
            || after_of("/etc/containerd/certs.d/10.88.1.1:5050/hosts.toml").contains(&hosts_now),
        "hosts.toml is neither the old nor the new file"
    );
    assert!(config_now != config_before, "the kill came after the edit");
    assert_eq!(temp_files(&etc(&lab, "k8snode")), Vec::<PathBuf>::new());
    // the next run sees the backups and offers them back
    let next = lab.fix(&lab.inventory(), &["--dry-run"], &[]);
    let out = common::output_text(&next);
    assert!(out.contains("An earlier apply did not finish"), "{out}");
    assert!(
        out.contains("/etc/containerd/config.toml on k8snode (backup /etc/containerd/config.toml.pulldoctor-backup-"),
        "{out}"
    );
    assert!(out.contains("pulldoctor fix --restore"), "{out}");
    let restored = lab.fix(&lab.inventory(), &["--restore", "--yes"], &[]);
    common::assert_outcome(
        &restored,
        0,
        "k8snode: /etc/containerd/config.toml restored",
    );
    assert_eq!(sha(&config_toml(&lab, "k8snode")), config_before);
    assert_eq!(sha(&hosts_toml(&lab, "k8snode")), hosts_before);
    let again = lab.fix(&lab.inventory(), &["--restore", "--yes"], &[]);
    assert!(
        common::output_text(&again).contains("Nothing to restore"),
        "{}",
        common::output_text(&again)
    );
    eprintln!("kill and restore: {:?}", t0.elapsed());
    // the killed apply's restart finishes on its own; then the lab is healed
    std::fs::remove_file(lab.state.join("k8snode/restart-delay")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cri_answers(&lab, "k8snode") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.ok(&["heal", "all"]);
}

/// The pid of the pulldoctor this test started (its command line names the lab's inventory).
fn pulldoctor_pid(inventory: &Path) -> Option<u32> {
    let inv = inventory.display().to_string();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_pulldoctor"));
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().map(PathBuf::from) == Some(exe.clone()) && args.contains(&inv) {
            return Some(pid);
        }
    }
    None
}
