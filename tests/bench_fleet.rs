//! Benchmark: node checks over SSH on a fleet of real sshd hosts, against a sequential
//! `for n in …; do ssh $n …; done` loop doing the same reads, in the same run. Not a timed test:
//! it prints wall times, CPU (pulldoctor's, the loop's ssh clients', the hosts' sshd and shells')
//! and the ratio, and checks every node got its verdict. Two variants:
//!
//! - `fleet_loopback`: 100 sshd on 127.0.2.1-100, no network latency. Every cost is CPU (key
//!   exchanges, sshd's fork and re-exec per connection, the remote shells) on the same 2 cores.
//! - `fleet_with_latency`: 100 sshd inside a network namespace of the test's own (`pdf-fleet`),
//!   on 10.213.0.1-100 behind a veth link, with 40 ms of round trip (`PULLDOCTOR_BENCH_RTT_MS`):
//!   the middle of the 20–50 ms an engineer's laptop sees over a VPN to a data centre, and far
//!   enough from loopback that the round trips, not the CPU, set the loop's pace. The delay is
//!   `tc netem` on both veth ends when the kernel has netem; otherwise (this machine's kernel has
//!   none) relays on 127.0.3.x add it: one round trip to connect, then each chunk of data half a
//!   round trip later in each direction. An SSH command costs about eight round trips (TCP,
//!   banners, key exchange, auth, channel, exec, output), which the loop pays one host after the
//!   other and pulldoctor pays side by side.
//!
//! The hosts' root shells start with an empty `~/.bashrc` (in a mount namespace of their own):
//! this machine's runs pyenv's init and `pyenv rehash`, 0.2 s of CPU per command that takes a
//! lock, so parallel commands queue on it; a node's root account has no such rc.
//! `PULLDOCTOR_BENCH_HOST_RC=keep` measures with it.
//!
//! Run (root, sshd, ip, unshare):
//! `cargo test --release --test bench_fleet -- --ignored --nocapture --test-threads 1`
//! (`PULLDOCTOR_BENCH_HOSTS=100` by default; `PULLDOCTOR_BENCH_BIN` times another pulldoctor
//! binary with the same harness; `PULLDOCTOR_BENCH_ARGS` adds options to pulldoctor's command
//! line and `PULLDOCTOR_BENCH_CONNECTING` sets `[ssh] connecting`, to try them against the
//! defaults).

// benchmark harness: a setup step that fails is a failed run
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fleet::{FleetHost, FleetKeys, Netns, Procs, unavailable, wait_listening};
use common::{children_cpu_seconds, cpu_seconds};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hosts_wanted() -> usize {
    std::env::var("PULLDOCTOR_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// The fleet's keys; the hosts' shells start with an empty `~/.bashrc` unless
/// `PULLDOCTOR_BENCH_HOST_RC=keep`.
fn fleet_keys(dir: &std::path::Path) -> FleetKeys {
    let mut keys = FleetKeys::new(dir);
    keys.clean_rc = std::env::var("PULLDOCTOR_BENCH_HOST_RC").as_deref() != Ok("keep");
    keys
}

/// Write the node logs and the inventory for `hosts`; the inventory's path.
fn write_inventory(keys: &FleetKeys, hosts: &[FleetHost]) -> std::path::PathBuf {
    let journal = std::fs::read(common::root().join("tests/corpus/lab/no-hosts-toml.log")).unwrap();
    let mut inventory = keys.inventory_ssh(10, 60);
    // `[ssh] connecting` (handshakes at once) to try against the default
    if let Ok(n) = std::env::var("PULLDOCTOR_BENCH_CONNECTING") {
        inventory = inventory.replacen("[ssh]\n", &format!("[ssh]\nconnecting = {n}\n"), 1);
    }
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
fn compare(label: &str, keys: &FleetKeys, hosts: &[FleetHost], sshd: &Procs) {
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

    // another build can be measured with the same harness (e.g. a release binary from a debug
    // test build)
    let binary = std::env::var("PULLDOCTOR_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_pulldoctor").to_string());
    // options to try against the defaults (e.g. `--concurrency 64`)
    let extra_args = std::env::var("PULLDOCTOR_BENCH_ARGS").unwrap_or_default();
    let sshd_pids: Vec<u32> = sshd.0.iter().map(std::process::Child::id).collect();
    let (hosts_before, clients_before) = (cpu_seconds(&sshd_pids), children_cpu_seconds());
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "pulldoctor cpu: %U s user, %S s system, %M KiB peak RSS",
        ])
        .arg(&binary)
        .args(["--headless", "--config"])
        .arg(&inventory)
        .args(extra_args.split_whitespace())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let ours = started.elapsed();
    let hosts_ours = cpu_seconds(&sshd_pids) - hosts_before;
    let clients_before_loop = children_cpu_seconds();
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
    let hosts_loop = cpu_seconds(&sshd_pids) - hosts_before - hosts_ours;
    let ssh_clients = children_cpu_seconds() - clients_before_loop;
    let _ = clients_before;

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
    let rc = if keys.clean_rc {
        "empty root ~/.bashrc"
    } else {
        "this machine's root ~/.bashrc"
    };
    println!(
        "fleet ({label}): {n} nodes, node.journal + ssh.reachable on each; hosts' shells: {rc}"
    );
    println!("  pulldoctor binary: {binary} {extra_args}");
    println!(
        "pulldoctor --headless:   {:>7.2} s  ({verdicts} nodes with their journal finding)",
        ours.as_secs_f64()
    );
    println!("  {cpu}; the hosts' sshd and shells: {hosts_ours:.2} s CPU");
    println!(
        "sequential ssh loop:     {:>7.2} s",
        sequential.as_secs_f64()
    );
    println!(
        "  ssh clients: {ssh_clients:.2} s CPU; the hosts' sshd and shells: {hosts_loop:.2} s CPU"
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
    let keys = fleet_keys(dir.path());
    let hosts: Vec<FleetHost> = (1..=hosts_wanted())
        .map(|i| FleetHost {
            name: format!("node-{i}"),
            addr: format!("127.0.2.{i}"),
            port: 2222,
        })
        .collect();
    let fleet = Procs(hosts.iter().map(|h| keys.sshd(h, None, None, "")).collect());
    compare("loopback, 127.0.2.x", &keys, &hosts, &fleet);
}

/// The same over links with a real fleet's round-trip time: hosts in a network namespace behind
/// veth, reached through relays that add the latency (`tc netem` when the kernel has it, else
/// [`common::fleet::delay_proxy`]).
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
    let keys = fleet_keys(dir.path());
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
    let netem = netem_available();
    let delay = if netem { rtt_ms / 2 } else { 0 };
    ns.veth(
        "pdf-fleet-o",
        "10.213.255.254/16",
        "pdf-fleet-i",
        &inner,
        delay,
    );
    let fleet = Procs(
        hosts
            .iter()
            .map(|h| keys.sshd(h, None, Some(&ns), ""))
            .collect(),
    );
    let (reached, how) = if netem {
        (hosts.clone(), "tc netem on the veth")
    } else {
        // the kernel has no netem: the inventory and the loop dial relays on 127.0.3.x that add
        // the same latency on the way to each host
        let port = std::net::TcpListener::bind("127.0.3.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let one_way = Duration::from_millis(u64::from(rtt_ms / 2));
        let relays: Vec<FleetHost> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let relay = FleetHost {
                    name: h.name.clone(),
                    addr: format!("127.0.3.{}", i + 1),
                    port,
                };
                let upstream = format!("{}:{}", h.addr, h.port).parse().unwrap();
                common::fleet::delay_proxy((relay.addr.as_str(), port), upstream, one_way);
                relay
            })
            .collect();
        for h in &hosts {
            assert!(wait_listening(&h.addr, h.port, Duration::from_secs(20)));
        }
        (relays, "delay relays (this kernel has no netem)")
    };
    compare(
        &format!("{rtt_ms} ms round trip by {how}, sshd in netns pdf-fleet"),
        &keys,
        &reached,
        &fleet,
    );
}

/// Whether this kernel has the netem qdisc (tried on a dummy link in a scratch namespace).
fn netem_available() -> bool {
    let ns = Netns::new("pdf-fleet-probe");
    let ok = |args: &[&str]| {
        ns.command(args[0])
            .args(&args[1..])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ok(&["ip", "link", "add", "pdf-probe", "type", "dummy"])
        && ok(&[
            "tc",
            "qdisc",
            "add",
            "dev",
            "pdf-probe",
            "root",
            "netem",
            "delay",
            "1ms",
        ])
}
