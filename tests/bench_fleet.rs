//! Benchmark: node checks over SSH on a fleet of real sshd hosts, against a sequential
//! `for n in …; do ssh $n …; done` loop doing the same reads, in the same run. Not a timed test:
//! it prints wall times and the ratio (and checks every node got its verdict). Two variants:
//!
//! - `fleet_loopback`: 100 sshd on 127.0.2.1-100, no network latency. On loopback every cost is
//!   CPU (key exchanges, sshd's fork and re-exec per connection, the remote shells), both for
//!   pulldoctor and for the loop, so the ratio is bounded by the number of cores.
//! - `fleet_with_latency`: 100 sshd inside a network namespace of the test's own (`pdf-fleet`),
//!   on 10.213.0.1-100 behind a veth link with `netem` delay on both ends: 40 ms round trip by
//!   default (`PULLDOCTOR_BENCH_RTT_MS`), the middle of 20–50 ms, what an engineer's laptop sees
//!   over a VPN to a data centre. Each SSH connection costs about eight round trips (TCP, banners,
//!   key exchange, auth, channel, exec, output), which a sequential loop pays one host after the
//!   other and pulldoctor pays in parallel.
//!
//! Run (root, sshd, ip, tc):
//! `cargo test --release --test bench_fleet -- --ignored --nocapture --test-threads 1`
//! (`PULLDOCTOR_BENCH_HOSTS=100` by default).

// benchmark harness: a setup step that fails is a failed run
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fleet::{FleetHost, FleetKeys, Netns, Procs, unavailable, wait_listening};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hosts_wanted() -> usize {
    std::env::var("PULLDOCTOR_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// Write the node logs and the inventory for `hosts`; the inventory's path.
fn write_inventory(keys: &FleetKeys, hosts: &[FleetHost]) -> std::path::PathBuf {
    let journal = std::fs::read(common::root().join("tests/corpus/lab/no-hosts-toml.log")).unwrap();
    let mut inventory = keys.inventory_ssh(10, 60);
    for h in hosts {
        let log = keys.dir.join(format!("{}.log", h.name));
        std::fs::write(&log, &journal).unwrap();
        inventory.push_str(&format!(
            "[[host]]\nname = \"{}\"\nssh = \"root@{}:{}\"\nroles = [\"node\"]\nlog_files = [\"{}\"]\n\n",
            h.name,
            h.addr,
            h.port,
            log.display()
        ));
    }
    std::fs::write(keys.dir.join("known_hosts"), keys.known_hosts(hosts)).unwrap();
    let path = keys.dir.join("inventory.toml");
    std::fs::write(&path, inventory).unwrap();
    path
}

/// Run pulldoctor over the fleet, then the ssh loop; print both and the ratio.
fn compare(label: &str, keys: &FleetKeys, hosts: &[FleetHost]) {
    let inventory = write_inventory(keys, hosts);
    for h in hosts {
        assert!(
            wait_listening(&h.addr, h.port, Duration::from_secs(20)),
            "sshd of {} did not listen on {}:{}",
            h.name,
            h.addr,
            h.port
        );
    }
    let n = hosts.len();

    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "pulldoctor cpu: %U s user, %S s system, %M KiB peak RSS",
        ])
        .arg(env!("CARGO_BIN_EXE_pulldoctor"))
        .args(["--headless", "--config"])
        .arg(&inventory)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let ours = started.elapsed();
    let cpu = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("pulldoctor cpu:"))
        .collect::<Vec<_>>()
        .join("");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let verdicts = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "node.journal" && f["class"] == "http_vs_https")
        .count();

    // the same reads, one host after the other, as an engineer's shell loop would
    let started = Instant::now();
    for h in hosts {
        let log = keys.dir.join(format!("{}.log", h.name));
        let command = format!(
            "journalctl -u containerd -u kubelet --since=-3600s --no-pager -o short-iso; tail -c 67108864 '{}'",
            log.display()
        );
        let st = keys
            .ssh_command(h, &command)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ssh loop failed on {}", h.name);
    }
    let sequential = started.elapsed();

    let mut trouble: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !matches!(c["status"]["state"].as_str(), Some("passed" | "failed")))
        .map(|c| format!("{} {}: {}", c["check"], c["target"], c["status"]))
        .collect();
    trouble.truncate(5);
    for t in &trouble {
        println!("  not completed: {t}");
    }
    println!("fleet ({label}): {n} nodes, node.journal + ssh.reachable on each");
    println!(
        "pulldoctor --headless:   {:>7.2} s  ({verdicts} nodes with their journal finding)",
        ours.as_secs_f64()
    );
    println!("  {cpu}");
    println!(
        "sequential ssh loop:     {:>7.2} s",
        sequential.as_secs_f64()
    );
    println!(
        "ratio loop/pulldoctor:   {:>7.1}x",
        sequential.as_secs_f64() / ours.as_secs_f64()
    );
    assert_eq!(verdicts, n, "every node's journal was read and classified");
}

/// `--headless` over N loopback sshd hosts versus a sequential ssh loop doing the same reads.
#[test]
#[ignore = "benchmark: run as root with --release -- --ignored --nocapture"]
fn fleet_loopback() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = FleetKeys::new(dir.path());
    let hosts: Vec<FleetHost> = (1..=hosts_wanted())
        .map(|i| FleetHost {
            name: format!("node-{i}"),
            addr: format!("127.0.2.{i}"),
            port: 2222,
        })
        .collect();
    let _fleet = Procs(hosts.iter().map(|h| keys.sshd(h, None, None, "")).collect());
    compare("loopback, 127.0.2.x", &keys, &hosts);
}

/// The same over a link with a real fleet's round-trip time: hosts in a namespace behind veth
/// with netem delay.
#[test]
#[ignore = "benchmark: run as root with --release -- --ignored --nocapture"]
fn fleet_with_latency() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let rtt_ms: u32 = std::env::var("PULLDOCTOR_BENCH_RTT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let n = hosts_wanted().min(250);
    let dir = tempfile::tempdir().unwrap();
    let keys = FleetKeys::new(dir.path());
    let hosts: Vec<FleetHost> = (1..=n)
        .map(|i| FleetHost {
            name: format!("node-{i}"),
            addr: format!("10.213.0.{i}"),
            port: 22,
        })
        .collect();
    // declared before the sshd processes so it is deleted after they are killed
    let ns = Netns::new("pdf-fleet");
    let inner: Vec<String> = hosts.iter().map(|h| format!("{}/16", h.addr)).collect();
    ns.veth(
        "pdf-fleet-o",
        "10.213.255.254/16",
        "pdf-fleet-i",
        &inner,
        rtt_ms / 2,
    );
    let _fleet = Procs(
        hosts
            .iter()
            .map(|h| keys.sshd(h, None, Some(&ns), ""))
            .collect(),
    );
    compare(
        &format!("{rtt_ms} ms round trip, netns pdf-fleet, 10.213.0.x"),
        &keys,
        &hosts,
    );
}
