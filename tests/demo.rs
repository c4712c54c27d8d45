//! The shipped demo (`assets/demo.bundle.json`, recorded from the lab by
//! `tests/lab/record-demo.sh`): replay is exact — `pulldoctor demo --headless` gives the findings
//! and summary of the recorded run (`assets/demo.report.json`) — it shows the incident's five
//! faults, and its runbook covers them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod common;

const FIVE: [&str; 5] = [
    "runner_tags",
    "docker_api_skew",
    "http_vs_https",
    "token_realm_unreachable",
    "image_not_found",
];

#[test]
fn demo_replays_exactly_and_shows_the_five_faults() {
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("assets/demo.report.json")).unwrap(),
    )
    .unwrap();
    let out = common::run(&["demo", "--headless"], b"", &[]);
    assert_eq!(
        common::code(&out),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = common::report(&out);
    assert_eq!(replayed["findings"], recorded["findings"]);
    // the demo does not fail on its recording's findings: the summary differs only there
    let mut summary = replayed["summary"].clone();
    summary["fail_on"] = recorded["summary"]["fail_on"].clone();
    summary["exit_code"] = recorded["summary"]["exit_code"].clone();
    assert_eq!(summary, recorded["summary"]);
    // without a terminal, the text report of the same run
    let text = common::run(&["demo"], b"", &[]);
    assert_eq!(common::code(&text), 0);
    assert!(String::from_utf8_lossy(&text.stdout).contains("token_realm_unreachable"));
    assert_eq!(replayed["unclassified"], recorded["unclassified"]);
    // every check on every target ended the same way (the order follows the target kinds)
    let statuses = |r: &serde_json::Value| -> std::collections::BTreeSet<(String, String, String)> {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["check"].as_str().unwrap().to_string(),
                    c["target"].as_str().unwrap().to_string(),
                    c["status"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(statuses(&replayed), statuses(&recorded));
    for class in FIVE {
        assert!(
            common::classes(&replayed).iter().any(|c| c == class),
            "{class} missing from the demo"
        );
    }
    assert!(
        replayed["run"]["replayed_from"]
            .as_str()
            .is_some_and(|p| p.contains("recorded-demo")),
        "labelled as the recorded demo"
    );

    let out = common::run(
        &["runbook", "--replay", "assets/demo.bundle.json"],
        b"",
        &[],
    );
    let md = String::from_utf8_lossy(&out.stdout);
    for class in FIVE {
        assert!(md.contains(&format!("`{class}`")), "runbook lacks {class}");
    }
}
