//! Benchmark: node checks over SSH on a fleet of real sshd hosts (127.0.2.x), against a
//! sequential `for n in …; do ssh $n …; done` loop doing the same reads, in the same run. Not a
//! timed test: it prints wall times and the ratio (and checks every node got its verdict).
//!
//! Run (root, sshd installed): `cargo test --release --test bench_fleet -- --ignored --nocapture`
//! (`PULLDOCTOR_BENCH_HOSTS=100` by default).

// benchmark harness: a setup step that fails is a failed run
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn keygen(path: &Path) {
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    );
}

/// `--headless` over N nodes versus a sequential ssh loop doing the same reads.
#[test]
#[ignore = "benchmark: run as root with --release -- --ignored --nocapture"]
fn fleet_node_checks_vs_ssh_loop() {
    if !Path::new("/usr/sbin/sshd").exists() || std::fs::create_dir_all("/run/sshd").is_err() {
        eprintln!("SKIPPED: needs root and sshd");
        return;
    }
    let n: usize = std::env::var("PULLDOCTOR_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(&d.join("host"));
    keygen(&d.join("id"));
    std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
    let host_pub = std::fs::read_to_string(d.join("host.pub")).unwrap();
    let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let journal = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/lab/no-hosts-toml.log"
    ))
    .unwrap();
    let port = 2222;
    let (mut known, mut inventory) = (String::new(), String::new());
    inventory.push_str(&format!("[ssh]\nconfig = \"{0}/ssh_config\"\nknown_hosts = [\"{0}/known_hosts\"]\nconnect_timeout = 10\n\n", d.display()));
    let mut children = Vec::new();
    for i in 1..=n {
        let addr = format!("127.0.2.{i}");
        let cfg = d.join(format!("sshd_{i}"));
        std::fs::write(
            &cfg,
            format!(
                "Port {port}\nListenAddress {addr}\nHostKey {h}\nAuthorizedKeysFile {ak}\nUsePAM no\nStrictModes no\nPidFile {d}/sshd_{i}.pid\nPasswordAuthentication no\nPermitRootLogin yes\nMaxStartups 100\n",
                h = d.join("host").display(),
                ak = d.join("authorized_keys").display(),
                d = d.display()
            ),
        )
        .unwrap();
        children.push(
            Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-f")
                .arg(&cfg)
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        known.push_str(&format!(
            "[{addr}]:{port} {} {}\n",
            host_pub[0], host_pub[1]
        ));
        let log = d.join(format!("node-{i}.log"));
        std::fs::write(&log, &journal).unwrap();
        inventory.push_str(&format!("[[host]]\nname = \"node-{i}\"\nssh = \"root@{addr}:{port}\"\nroles = [\"node\"]\nlog_files = [\"{}\"]\n\n", log.display()));
    }
    let _fleet = Fleet(children);
    std::fs::write(d.join("known_hosts"), &known).unwrap();
    std::fs::write(
        d.join("ssh_config"),
        format!(
            "Host *\n  IdentityFile {}/id\n  IdentitiesOnly yes\n",
            d.display()
        ),
    )
    .unwrap();
    std::fs::write(d.join("inventory.toml"), &inventory).unwrap();
    for i in 1..=n {
        let addr = format!("127.0.2.{i}");
        for _ in 0..200 {
            if std::net::TcpStream::connect((addr.as_str(), port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "pulldoctor cpu: %U s user, %S s system"])
        .arg(env!("CARGO_BIN_EXE_pulldoctor"))
        .args(["--headless", "--config"])
        .arg(d.join("inventory.toml"))
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
    let command = format!(
        "journalctl -u containerd -u kubelet --since=-3600s --no-pager -o short-iso; tail -c 67108864 '{}/node-N.log'",
        d.display()
    );
    let started = Instant::now();
    for i in 1..=n {
        let st = Command::new("ssh")
            .args(["-F"])
            .arg(d.join("ssh_config"))
            .args(["-o", "BatchMode=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}/known_hosts", d.display()))
            .args([
                "-p",
                &port.to_string(),
                &format!("root@127.0.2.{i}"),
                &command.replace("node-N", &format!("node-{i}")),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ssh loop failed on node {i}");
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
    println!("fleet: {n} nodes (real sshd on 127.0.2.1-{n}), node.journal + ssh.reachable on each");
    println!(
        "pulldoctor --headless:   {:>7.2} s  ({verdicts} nodes with their journal finding)",
        ours.as_secs_f64()
    );
    println!("  {cpu}; the rest is the hosts' sshd on the same cores");
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
