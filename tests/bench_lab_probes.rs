//! Benchmark: the probes of one registry and four nodes on the healthy lab (`tests/lab/lab.sh`
//! with `PD_LAB_NODES=4`), against the promise that they finish in under 2 s. `pulldoctor
//! --headless --config <state>/inventory-lab.toml` runs in gitlabvm, where an operator would be,
//! as tests/lab_e2e.rs and tests/fix_lab_node.rs run it: each node reached over SSH through two
//! ProxyJumps (linuxhost, then bastion), its journal and hosts.toml read, the registry's scheme
//! and token realm probed, the route's hops walked. Not a timed test: it prints wall times and
//! ratios against baselines measured in the same run, on the same lab:
//!
//! - `--concurrency 1`: the same run with one check at a time (what running checks side by side
//!   buys);
//! - one node: the same lab with an inventory that keeps `k8snode` alone (how the run grows with
//!   nodes).
//!
//! Each variant runs `PULLDOCTOR_BENCH_RUNS` times (3 by default), interleaved, after one
//! warm-up run that is printed and not counted; medians give the ratios. Wall time and CPU are
//! the process's (`/usr/bin/time` around pulldoctor inside gitlabvm); the report's `duration_ms`
//! gives each check's time, printed slowest first for the median four-node run. The lab's hosts
//! run on the same cores as pulldoctor, so the bench also prints the CPU they spent serving the
//! run (their sshd listeners' reaped children: each connection's sshd, shell and commands). A check without
//! a verdict (skipped, errored, timed out) or an error finding on the healthy lab fails the bench:
//! a fast wrong answer is not a result.
//!
//! The hosts' root shells start with an empty `~/.bashrc` (bound over it in each lab host's own
//! mount namespace, gone with the lab): the lab's hosts share this machine's /root, whose
//! `.bashrc` runs pyenv's init and `pyenv rehash`, about 0.2 s of CPU per SSH command (measured
//! here: 0.22–0.29 s of the node's sshd and shell for one `ssh k8snode true`, 0.04–0.06 s
//! without it), which a node's root account does not. `PULLDOCTOR_BENCH_HOST_RC=keep` measures
//! with it.
//!
//! Run (root, the lab's packages: `tests/lab/lab.sh install`):
//! `cargo test --release --test bench_lab_probes -- --ignored --nocapture`
//! (`PULLDOCTOR_BENCH_BIN` times another pulldoctor binary with the same harness.)

// benchmark harness: a setup step that fails is a failed run
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::lab::Lab;
use std::path::{Path, PathBuf};

const PASS: &str = "bench-probes-pass";
const NODES: [&str; 4] = ["k8snode", "k8snode2", "k8snode3", "k8snode4"];
const HOPS_AND_GITLAB: [&str; 3] = ["bastion", "linuxhost", "gitlabvm"];

fn runs_wanted() -> usize {
    std::env::var("PULLDOCTOR_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// One headless run: its wall time and CPU (from `/usr/bin/time`), the CPU the lab's hosts
/// spent serving it, and its report.
struct Timed {
    wall: f64,
    cpu: f64,
    hosts_cpu: f64,
    report: serde_json::Value,
}

/// Give every lab host's root shell an empty `~/.bashrc` (see the module's header), unless
/// `PULLDOCTOR_BENCH_HOST_RC=keep`; which one the hosts have, in words.
fn host_rc(lab: &Lab) -> &'static str {
    let rc = std::path::Path::new("/root/.bashrc");
    if std::env::var("PULLDOCTOR_BENCH_HOST_RC").as_deref() == Ok("keep") || !rc.exists() {
        return "this machine's root ~/.bashrc";
    }
    let empty = lab.state.join("empty-bashrc");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.display().to_string();
    for host in NODES.iter().chain(&HOPS_AND_GITLAB) {
        lab.ok(&["exec", host, "mount", "--bind", &empty, "/root/.bashrc"]);
    }
    "an empty root ~/.bashrc"
}

/// The lab's sshd listeners: what they reap holds every connection's sshd, shell and command.
fn sshd_pids(lab: &Lab) -> Vec<u32> {
    NODES
        .iter()
        .chain(&HOPS_AND_GITLAB)
        .map(|h| {
            let pid = lab.state.join(format!("pids/sshd-{h}.pid"));
            std::fs::read_to_string(&pid)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}

/// Wait (2 s at most) until the listeners have reaped every connection's process, so that
/// their CPU is counted.
fn wait_reaped(pids: &[u32]) {
    let busy = |p: &u32| {
        let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"));
        !children.unwrap_or_default().trim().is_empty()
    };
    for _ in 0..40 {
        if !pids.iter().any(busy) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `pulldoctor --headless --config INVENTORY EXTRA...` in gitlabvm, timed there.
fn headless(lab: &Lab, binary: &str, inventory: &Path, extra: &[&str]) -> Timed {
    let times = lab.state.join("headless.time");
    let (times_arg, inventory_arg) = (times.display().to_string(), inventory.display().to_string());
    let mut argv = vec![
        "exec",
        "gitlabvm",
        "/usr/bin/time",
        "-o",
        &times_arg,
        "-f",
        "%e %U %S",
        binary,
        "--headless",
        "--config",
        &inventory_arg,
    ];
    argv.extend(extra);
    let sshd = sshd_pids(lab);
    let hosts_before = common::cpu_seconds(&sshd);
    let out = lab.cmd(&argv);
    wait_reaped(&sshd);
    let hosts_cpu = common::cpu_seconds(&sshd) - hosts_before;
    let report = common::report(&out);
    let fields: Vec<f64> = std::fs::read_to_string(&times)
        .unwrap()
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields.len(), 3, "/usr/bin/time output: {fields:?}");
    Timed {
        wall: fields[0],
        cpu: fields[1] + fields[2],
        hosts_cpu,
        report,
    }
}

/// The lab's inventory with only its first `nodes` nodes (and the route from those).
fn inventory_with_nodes(lab: &Lab, nodes: usize) -> PathBuf {
    let full = lab.state.join("inventory-lab.toml");
    let mut inv: toml::Table = std::fs::read_to_string(&full).unwrap().parse().unwrap();
    let kept = &NODES[..nodes];
    let hosts = inv
        .get_mut("host")
        .and_then(toml::Value::as_array_mut)
        .unwrap();
    hosts.retain(|h| {
        let name = h["name"].as_str().unwrap();
        !NODES.contains(&name) || kept.contains(&name)
    });
    for route in inv
        .get_mut("route")
        .and_then(toml::Value::as_array_mut)
        .unwrap()
    {
        let from = kept.iter().map(|n| toml::Value::from(*n)).collect();
        route
            .as_table_mut()
            .unwrap()
            .insert("from".into(), toml::Value::Array(from));
    }
    let path = lab.state.join(format!("inventory-{nodes}-nodes.toml"));
    std::fs::write(&path, toml::to_string(&inv).unwrap()).unwrap();
    path
}

/// Every check got a verdict, every node was checked, and the healthy lab shows no error.
fn assert_healthy(label: &str, run: &Timed, nodes: &[&str]) {
    let r = &run.report;
    let checks = r["checks"].as_array().unwrap();
    // from gitlabvm the registry's address (bastion's 10.88.1.1, the nodes' side) is out of
    // reach by design: the registry side of registry.scheme skips and says so, and each node's
    // registry.scheme, required below, gives the verdict from where the pulls happen
    let deferred_to_nodes = |c: &serde_json::Value| {
        c["check"] == "registry.scheme"
            && c["status"]["state"] == "skipped"
            && c["status"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("each node's registry.scheme probes it"))
    };
    let no_verdict: Vec<String> = checks
        .iter()
        .filter(|c| !matches!(c["status"]["state"].as_str(), Some("passed" | "failed")))
        .filter(|c| !deferred_to_nodes(c))
        .map(|c| format!("{} on {}: {}", c["check"], c["target"], c["status"]))
        .collect();
    assert!(
        no_verdict.is_empty(),
        "{label}: checks without a verdict: {no_verdict:#?}"
    );
    for node in nodes {
        for check in ["ssh.reachable", "node.journal", "registry.scheme"] {
            assert!(
                checks
                    .iter()
                    .any(|c| c["check"] == check && c["target"] == *node),
                "{label}: no {check} on {node}: {r}"
            );
        }
    }
    let errors: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("error" | "critical")))
        .map(|f| format!("{} on {}: {}", f["check"], f["target"]["name"], f["title"]))
        .collect();
    assert!(
        errors.is_empty(),
        "{label}: error findings on the healthy lab: {errors:#?}"
    );
    assert_eq!(r["summary"]["exit_code"], 0, "{label}: {}", r["summary"]);
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The checks of a run, slowest first: (check, target, milliseconds).
fn check_times(report: &serde_json::Value) -> Vec<(String, String, u64)> {
    let mut rows: Vec<(String, String, u64)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap_or("").to_string(),
                c["target"].as_str().unwrap_or("").to_string(),
                c["duration_ms"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.2));
    rows
}

/// The run's own time (the engine's start to finish, from the report), in seconds.
fn engine_seconds(report: &serde_json::Value) -> f64 {
    let at =
        |k: &str| chrono::DateTime::parse_from_rfc3339(report["run"][k].as_str().unwrap()).unwrap();
    (at("finished_at") - at("started_at")).as_seconds_f64()
}

#[test]
#[ignore = "benchmark: run as root with --release -- --ignored --nocapture"]
fn four_nodes_probes_against_sequential_and_one_node() {
    let lab = match Lab::up_nodes("pdq-", PASS, 4) {
        Ok(lab) => lab,
        Err(why) => return eprintln!("SKIPPED: {why}"),
    };
    // a real pull through each node first: the lab is healthy end to end, and each node's
    // journal holds a pull, as a working node's does
    for node in NODES {
        let pull = lab.pull_backend(node, PASS, "20");
        assert!(
            pull.status.success(),
            "pull through {node}: {}",
            String::from_utf8_lossy(&pull.stderr)
        );
    }
    let binary = std::env::var("PULLDOCTOR_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_pulldoctor").to_string());
    let four = inventory_with_nodes(&lab, 4);
    let one = inventory_with_nodes(&lab, 1);
    type Variant<'a> = (&'a str, &'a Path, &'a [&'a str], &'a [&'a str]);
    let variants: [Variant; 3] = [
        (
            "4 nodes, concurrent (default --concurrency 16)",
            &four,
            &[],
            &NODES,
        ),
        (
            "4 nodes, --concurrency 1",
            &four,
            &["--concurrency", "1"],
            &NODES,
        ),
        ("1 node, concurrent", &one, &[], &NODES[..1]),
    ];
    let rc = host_rc(&lab);
    println!("pulldoctor binary: {binary}; the lab hosts' shells: {rc}");
    let warm = headless(&lab, &binary, &four, &[]);
    assert_healthy("warm-up", &warm, &NODES);
    println!(
        "warm-up (not counted): 4 nodes, concurrent: {:.2} s wall, {:.2} s CPU, hosts {:.2} s CPU",
        warm.wall, warm.cpu, warm.hosts_cpu
    );
    for f in warm.report["findings"].as_array().unwrap() {
        println!(
            "  finding ({}): {} on {}: {}",
            f["severity"].as_str().unwrap_or(""),
            f["check"].as_str().unwrap_or(""),
            f["target"]["name"].as_str().unwrap_or(""),
            f["title"].as_str().unwrap_or("")
        );
    }
    let mut results: Vec<Vec<Timed>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 1..=runs_wanted() {
        for (i, (label, inventory, extra, nodes)) in variants.iter().enumerate() {
            let run = headless(&lab, &binary, inventory, extra);
            assert_healthy(label, &run, nodes);
            println!(
                "run {round}: {label:<48} {:>6.2} s wall ({:.2} s in the engine), CPU {:.2} s pulldoctor + {:.2} s hosts, {} checks, {} findings",
                run.wall,
                engine_seconds(&run.report),
                run.cpu,
                run.hosts_cpu,
                run.report["checks"].as_array().unwrap().len(),
                run.report["findings"].as_array().unwrap().len(),
            );
            results[i].push(run);
        }
    }
    let medians: Vec<f64> = results
        .iter()
        .map(|runs| median(runs.iter().map(|r| r.wall).collect()))
        .collect();
    println!("medians over {} runs:", runs_wanted());
    for ((label, ..), m) in variants.iter().zip(&medians) {
        println!("  {label:<48} {m:>6.2} s");
    }
    println!(
        "  ratio --concurrency 1 / concurrent (4 nodes): {:.2}x",
        medians[1] / medians[0]
    );
    println!(
        "  ratio 4 nodes / 1 node (concurrent):          {:.2}x",
        medians[0] / medians[2]
    );
    println!(
        "  promise: 4 nodes under 2 s: {}",
        if medians[0] < 2.0 { "kept" } else { "NOT kept" }
    );
    println!("checks of the median 4-node concurrent run, slowest first (duration_ms):");
    print_checks(nearest(&results[0], medians[0]), usize::MAX);
    let sequential = nearest(&results[1], medians[1]);
    let sum: u64 = check_times(&sequential.report).iter().map(|c| c.2).sum();
    println!(
        "the median --concurrency 1 run: checks' durations add up to {:.2} s of its {:.2} s; slowest:",
        sum as f64 / 1000.0,
        sequential.wall
    );
    print_checks(sequential, 8);
}

/// The run whose wall time is nearest `wall` (the median's own run).
fn nearest(runs: &[Timed], wall: f64) -> &Timed {
    runs.iter()
        .min_by(|a, b| (a.wall - wall).abs().total_cmp(&(b.wall - wall).abs()))
        .unwrap()
}

/// The `most` slowest checks of a run.
fn print_checks(run: &Timed, most: usize) {
    for (check, target, ms) in check_times(&run.report).into_iter().take(most) {
        println!("  {ms:>6} ms  {check} on {target}");
    }
}
