//! One-key fixes in the lab, for real: a node without hosts.toml cannot pull from the plain-HTTP
//! registry; `pulldoctor fix` plans the file, `--dry-run` and `--read-only` change nothing,
//! `--yes` writes it (audited), the re-check passes and a real CRI pull through the hops succeeds;
//! a second run has nothing to do; a fix whose verification fails is rolled back byte for byte.
//!
//! Needs root and the lab's packages (tests/run-all.sh installs them); skips and says so
//! otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod common;

use common::lab::{Lab, available};

const PASS: &str = "fix-deploy-pass";

fn inventory(lab: &Lab) -> std::path::PathBuf {
    let s = lab.state.display();
    let text = format!(
        "[registry]\naddress = \"10.88.1.1:5050\"\n[ssh]\nconfig = \"{s}/ssh/config\"\nknown_hosts = [\"{s}/ssh/known_hosts\"]\nconnect_timeout = 5\n\n\
         [[host]]\nname = \"k8snode\"\nroles = [\"node\"]\n"
    );
    let p = lab.state.join("fix-inventory.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn hosts_toml_digest(lab: &Lab) -> String {
    let dir = lab
        .state
        .join("k8snode/etc-containerd/certs.d/10.88.1.1:5050");
    lab.sh(
        "k8snode",
        &format!("cat '{}/hosts.toml' 2>/dev/null | sha256sum", dir.display()),
    )
}

#[test]
fn fixes_apply_verify_and_roll_back_in_the_lab() {
    if let Err(why) = available() {
        eprintln!("SKIP fixes_apply_verify_and_roll_back_in_the_lab: {why}");
        return;
    }
    let lab = Lab::up("pdx-", PASS).expect("lab up");
    let inv = inventory(&lab);
    let pull = |lab: &Lab| lab.cmd(&["pull", "backend", "--user", "gition-deploy", "--pass", PASS]);
    lab.ok(&["fault", "no-hosts-toml"]);
    assert!(
        !pull(&lab).status.success(),
        "the fault must break the pull"
    );

    // shown, not applied
    let dry = lab.fix(&inv, &["--dry-run"], &[]);
    assert_eq!(dry.status.code(), Some(0), "{}", common::output_text(&dry));
    assert!(
        common::output_text(&dry).contains("10.88.1.1:5050/hosts.toml"),
        "{}",
        common::output_text(&dry)
    );
    assert!(common::output_text(&dry).contains("server = \"http://10.88.1.1:5050\""));
    let ro = lab.cmd(&[
        "exec",
        "gitlabvm",
        env!("CARGO_BIN_EXE_pulldoctor"),
        "--read-only",
        "--config",
        inv.to_str().unwrap(),
        "fix",
        "--yes",
    ]);
    assert_eq!(ro.status.code(), Some(2), "{}", common::output_text(&ro));
    let no_tty = lab.fix(&inv, &[], &[]);
    assert_eq!(
        no_tty.status.code(),
        Some(2),
        "unconfirmed: {}",
        common::output_text(&no_tty)
    );
    assert!(!pull(&lab).status.success(), "nothing may have changed");

    // the report of the broken state, for the runbook afterwards
    let broken = lab.cmd(&[
        "exec",
        "gitlabvm",
        env!("CARGO_BIN_EXE_pulldoctor"),
        "--headless",
        "--config",
        inv.to_str().unwrap(),
    ]);
    let report_path = lab.state.join("broken-report.json");
    std::fs::write(&report_path, &broken.stdout).unwrap();

    // applied, verified, and the real pull works
    let fixed = lab.fix(&inv, &["--yes"], &[]);
    common::assert_outcome(&fixed, 0, "fixed and verified");
    let pulled = pull(&lab);
    assert!(
        pulled.status.success(),
        "the real pull after the fix: {}",
        common::output_text(&pulled)
    );
    let audit = std::fs::read_to_string(lab.state.join("pd-state/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"outcome\":\"changed\"") && audit.contains("\"outcome\":\"verified\""),
        "{audit}"
    );
    assert!(!audit.contains(PASS));

    // the runbook of the broken run shows the fix as applied and verified, from the audit log
    let runbook = common::run(
        &[
            "runbook",
            "--from",
            report_path.to_str().unwrap(),
            "--audit",
            lab.state.join("pd-state/audit.jsonl").to_str().unwrap(),
        ],
        b"",
        &[],
    );
    let md = String::from_utf8_lossy(&runbook.stdout);
    assert!(md.contains("fixed and verified on k8snode"), "{md}");
    assert!(md.contains("### Applied (problem"), "{md}");

    // idempotent
    let again = lab.fix(&inv, &["--yes"], &[]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        common::output_text(&again).contains("Nothing to fix"),
        "{}",
        common::output_text(&again)
    );

    // a fix whose verification fails is rolled back: the file is byte-identical afterwards
    lab.ok(&["heal", "no-hosts-toml"]);
    lab.ok(&["fault", "server-only"]);
    let before = hosts_toml_digest(&lab);
    let failed = lab.fix(&inv, &["--yes"], &["PULLDOCTOR_TEST_FAIL_VERIFY=1"]);
    common::assert_outcome(&failed, 1, "rolled back");
    assert_eq!(
        hosts_toml_digest(&lab),
        before,
        "the original hosts.toml is back"
    );
    let audit = std::fs::read_to_string(lab.state.join("pd-state/audit.jsonl")).unwrap();
    assert!(audit.contains("\"outcome\":\"rolled back\""), "{audit}");
    lab.ok(&["heal", "all"]);
}
