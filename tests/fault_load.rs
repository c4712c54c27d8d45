//! Faults under load: a 100-host inventory where most hosts are real sshd and the rest refuse
//! (closed port), drop (iptables DROP inside a network namespace of the test's own,
//! `pdf-fault`), accept and stall (silent, or a banner and then silence), drop the connection in
//! the middle of a command (an sshd whose command kills its own session after printing a line),
//! or present a host key other than the one in known_hosts. pulldoctor opens one session per host
//! and run, so a key that changes "mid-run" is met at that host's connect: what is checked is
//! that it is refused there, with the host and the step. The real binary, headless, with a
//! registry that floods (its token realm answers with 1 GB) and a pull secret: it ends within
//! its deadline, every host gets a verdict with a reason, its peak RSS (VmHWM) stays under
//! 100 MB, and stdout/stderr hold no panic and not the secret. Then the dashboard over the same
//! hosts with a registry that stalls: while checks still run, a key is on screen within a second.
//!
//! Needs root (sshd, `ip netns`, iptables inside the namespace) and tmux for the dashboard part;
//! without them it says so and checks nothing. About 20 s on this 2-core machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fleet::{FleetHost, FleetKeys, Netns, Procs, unavailable, wait_listening};
use common::hostile::{Hostile, hostile};
use common::tmux::{Tmux, tmux_installed};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds to connect (per host) and per command, and per check, as the run is configured.
const CONNECT_TIMEOUT: u64 = 3;
const COMMAND_TIMEOUT: u64 = 10;
const CHECK_TIMEOUT: u64 = 30;

/// The password of the pull secret: must never leave the process.
const SECRET: &str = "pdf-Fault-Load-s3cret-9f2c";

/// What is wrong with a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Healthy,
    Refuses,
    Drops,
    Stalls,
    BannerThenStalls,
    DropsMidCommand,
    ChangedHostKey,
}

impl Fault {
    /// The words the host's `ssh.reachable` verdict must contain (none: it passes).
    fn expected(self) -> Option<&'static str> {
        match self {
            Fault::Healthy | Fault::DropsMidCommand => None,
            Fault::Refuses => Some("(connect)"),
            Fault::Drops | Fault::Stalls | Fault::BannerThenStalls => Some("did not answer within"),
            Fault::ChangedHostKey => Some("CHANGED"),
        }
    }
}

/// Accept and hold every connection, never answering (or only with an SSH banner).
fn stalling_listener(addr: &str, port: u16, banner: bool) {
    let listener = TcpListener::bind((addr, port)).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            if banner {
                let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n");
            }
            held.push(conn);
        }
    });
}

struct Setup {
    _dir: tempfile::TempDir,
    _procs: Procs,
    _ns: Option<Netns>,
    inventory: std::path::PathBuf,
    faults: BTreeMap<String, Fault>,
    /// An image on the registry whose token realm floods (a 1 GB answer).
    flooding_image: String,
    /// An image on a registry that accepts and never answers.
    stalled_image: String,
    /// A pull secret for the flooding registry, holding [`SECRET`].
    pull_secret: std::path::PathBuf,
}

/// The fleet: `healthy` real hosts, three of each fault, the hostile registries.
fn setup(ns_name: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keys = FleetKeys::new(dir.path());
    let port = std::net::TcpListener::bind("127.0.5.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut hosts: Vec<(FleetHost, Fault)> = Vec::new();
    let at = |i: usize| FleetHost {
        name: format!("node-{i}"),
        addr: format!("127.0.5.{i}"),
        port,
    };
    let faulty = [
        (Fault::Refuses, 101),
        (Fault::Stalls, 111),
        (Fault::BannerThenStalls, 114),
        (Fault::DropsMidCommand, 121),
        (Fault::ChangedHostKey, 131),
    ];
    for i in 1..=82 {
        hosts.push((at(i), Fault::Healthy));
    }
    for (fault, first) in faulty {
        for i in first..first + 3 {
            hosts.push((at(i), fault));
        }
    }
    // silently dropped: addresses of our own namespace, iptables DROP inside it
    let ns = Netns::new(ns_name);
    let dropped: Vec<FleetHost> = (1..=3)
        .map(|i| FleetHost {
            name: format!("node-drop-{i}"),
            addr: format!("10.214.0.{i}"),
            port: 22,
        })
        .collect();
    let inner: Vec<String> = dropped.iter().map(|h| format!("{}/16", h.addr)).collect();
    ns.veth(
        &format!("{ns_name}-o"),
        "10.214.255.254/16",
        &format!("{ns_name}-i"),
        &inner,
        0,
    );
    let out = ns
        .command("iptables")
        .args(["-A", "INPUT", "-p", "tcp", "-j", "DROP"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "iptables in {ns_name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hosts.extend(dropped.into_iter().map(|h| (h, Fault::Drops)));
    assert_eq!(hosts.len(), 100);

    let other_key = dir.path().join("other_host");
    common::fleet::keygen(&other_key);
    // the journal command prints a little, then its session dies under it; `true` still works
    let kill_session = "ForceCommand if [ \"$SSH_ORIGINAL_COMMAND\" = true ]; then exit 0; fi; echo 'level=info msg=\"partial\"'; sleep 0.2; kill -9 $PPID\n";
    let mut procs = Procs::default();
    for (h, fault) in &hosts {
        match fault {
            Fault::Healthy => procs.0.push(keys.sshd(h, None, None, "")),
            Fault::DropsMidCommand => procs.0.push(keys.sshd(h, None, None, kill_session)),
            Fault::ChangedHostKey => procs.0.push(keys.sshd(h, Some(&other_key), None, "")),
            Fault::Stalls => stalling_listener(&h.addr, h.port, false),
            Fault::BannerThenStalls => stalling_listener(&h.addr, h.port, true),
            Fault::Refuses | Fault::Drops => {}
        }
    }
    for (h, fault) in &hosts {
        if matches!(
            fault,
            Fault::Healthy | Fault::DropsMidCommand | Fault::ChangedHostKey
        ) {
            assert!(
                wait_listening(&h.addr, h.port, Duration::from_secs(20)),
                "sshd of {} did not listen",
                h.name
            );
        }
    }
    let fleet: Vec<FleetHost> = hosts.iter().map(|(h, _)| h.clone()).collect();
    std::fs::write(dir.path().join("known_hosts"), keys.known_hosts(&fleet)).unwrap();

    // the registry floods (its token realm answers with 1 GB); another image's registry stalls
    let flood = hostile(Hostile::HugeBody);
    let stall = hostile(Hostile::Silent);
    let secret = dir.path().join("pull-secret.json");
    let auth = common::base64(&format!("deploy:{SECRET}"));
    std::fs::write(
        &secret,
        format!(r#"{{"auths":{{"127.0.0.1:{flood}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    // the nodes' own registry reads (containerd's config) are not what this test is about, so
    // the registry comes from the command line, not an inventory `[registry]`
    let mut inventory = keys.inventory_ssh(CONNECT_TIMEOUT, COMMAND_TIMEOUT);
    for h in &fleet {
        inventory.push_str(&format!(
            "[[host]]\nname = \"{}\"\nssh = \"root@{}:{}\"\nroles = [\"node\"]\n\n",
            h.name, h.addr, h.port
        ));
    }
    let path = dir.path().join("pulldoctor.toml");
    std::fs::write(&path, inventory).unwrap();
    Setup {
        faults: hosts.iter().map(|(h, f)| (h.name.clone(), *f)).collect(),
        _dir: dir,
        _procs: procs,
        _ns: Some(ns),
        inventory: path,
        flooding_image: format!("127.0.0.1:{flood}/root/app:latest"),
        stalled_image: format!("127.0.0.1:{stall}/root/app:latest"),
        pull_secret: secret,
    }
}

/// The host a check's target names (`kind name` or `name`).
fn target_host(target: &str) -> &str {
    target.rsplit([' ', ':', '/']).next().unwrap_or(target)
}

/// One fleet for both faces: the headless run, then the dashboard.
#[test]
fn faults_under_load() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED faults_under_load: {why}");
        return;
    }
    let s = setup("pdf-fault");
    headless_run(&s);
    if tmux_installed() {
        dashboard_run(&s);
    } else {
        eprintln!("SKIPPED the dashboard part of faults_under_load: tmux is not installed");
    }
}

/// Headless: the deadline, a verdict for every host, peak RSS, nothing secret, no panic.
fn headless_run(s: &Setup) {
    let args = [
        "--headless",
        "--timeout",
        &CHECK_TIMEOUT.to_string(),
        "--image",
        &s.flooding_image,
        "--pull-secret",
        &s.pull_secret.to_string_lossy(),
    ];
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_pulldoctor"))
        .args(args)
        .arg("--config")
        .arg(&s.inventory)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, peak_kib) = common::fleet::wait_with_peak_rss(child);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "faults under load: {} hosts, run {:.1} s, peak RSS {:.1} MB, exit {:?}",
        s.faults.len(),
        took.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        out.status.code()
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the pull secret's password leaked"
    );
    let report = common::report(&out);
    // some checks could not complete (the sessions cut mid-command): the run says so
    assert_eq!(out.status.code(), Some(3), "exit code: {stderr}");

    // the deadline: every check is bounded by --timeout and they run side by side, so the run
    // fits in one check's deadline (plus the margin of a loaded 2-core machine)
    assert!(
        took < Duration::from_secs(CHECK_TIMEOUT + 10),
        "the run took {took:?}, its checks' deadline is {CHECK_TIMEOUT} s"
    );
    assert!(
        peak_kib < 100 * 1024,
        "peak RSS {peak_kib} KiB is over 100 MB"
    );

    // every host: each of its checks ended with a verdict, and its reachability says the fault
    let checks = report["checks"].as_array().unwrap();
    let findings = report["findings"].as_array().unwrap();
    let mut covered = 0;
    for (host, fault) in &s.faults {
        let mine: Vec<&serde_json::Value> = checks
            .iter()
            .filter(|c| target_host(c["target"].as_str().unwrap_or("")) == host)
            .collect();
        assert!(!mine.is_empty(), "{host}: no check at all");
        for c in &mine {
            let state = c["status"]["state"].as_str().unwrap_or("");
            assert!(
                matches!(
                    state,
                    "passed" | "failed" | "skipped" | "errored" | "timed_out"
                ),
                "{host} ({fault:?}): {} ended {state}",
                c["check"]
            );
        }
        let reachable = mine
            .iter()
            .find(|c| c["check"] == "ssh.reachable")
            .unwrap_or_else(|| panic!("{host}: no ssh.reachable"));
        match fault.expected() {
            None => assert_eq!(
                reachable["status"]["state"], "passed",
                "{host} ({fault:?}) is reachable"
            ),
            Some(words) => {
                let f = findings
                    .iter()
                    .find(|f| f["check"] == "ssh.reachable" && f["subject"]["nodes"][0] == *host)
                    .unwrap_or_else(|| panic!("{host} ({fault:?}): no ssh.reachable finding"));
                let text = format!("{} {}", f["title"], f["explanation"]);
                assert!(text.contains(words), "{host} ({fault:?}): {text}");
                // its other checks were skipped with that reason, not run into more timeouts
                for c in mine.iter().filter(|c| c["check"] != "ssh.reachable") {
                    assert_eq!(c["status"]["state"], "skipped", "{host}: {c}");
                }
            }
        }
        if *fault == Fault::DropsMidCommand {
            let journal = mine.iter().find(|c| c["check"] == "node.journal").unwrap();
            assert_eq!(
                journal["status"]["state"], "errored",
                "{host}: a journal cut off mid-read is not a clean read: {journal}"
            );
        }
        covered += 1;
    }
    println!("verdicts: {covered} of {} hosts", s.faults.len());
    assert_eq!(covered, 100);
    // the registry's flood ends with a finding, not a 1 GB read
    let registry_findings: Vec<String> = findings
        .iter()
        .filter(|f| {
            f["check"]
                .as_str()
                .is_some_and(|c| c.starts_with("registry."))
        })
        .map(|f| f["title"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        registry_findings.iter().any(|t| t.contains("went wrong")),
        "the flooding registry: {registry_findings:?}"
    );
}

/// The dashboard over the same inventory, the image's registry stalling: while the checks still
/// run, `?` opens the help and Esc closes it, each on screen within a second; `q` quits.
fn dashboard_run(s: &Setup) {
    let tmux = Tmux {
        socket: format!("pdf-fault-{}", std::process::id()),
    };
    let script = format!(
        "NO_COLOR=1 SSH_AUTH_SOCK= '{bin}' --config '{inv}' --timeout {CHECK_TIMEOUT} --image '{img}' --log-file '{log}'; echo \"EXIT=$?\"; sleep 60",
        bin = env!("CARGO_BIN_EXE_pulldoctor"),
        inv = s.inventory.display(),
        img = s.stalled_image,
        log = s.inventory.with_file_name("tui.log").display(),
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "160",
        "-y",
        "45",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "tmux new-session: {out:?}");
    // checks in flight: the header counts some running
    tmux.wait_for(&[" running"]);

    let latency = |key: &str, shown: &dyn Fn(&str) -> bool| -> Duration {
        let sent = Instant::now();
        tmux.cmd(&["send-keys", "-t", "tui", key]);
        loop {
            let screen = tmux.capture();
            if shown(&screen) {
                return sent.elapsed();
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "{key} not on screen after 5 s:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let help = latency("?", &|s| s.contains("Filtering (/)"));
    let close = latency("Escape", &|s| !s.contains("Filtering (/)"));
    let screen = tmux.capture();
    println!(
        "dashboard under faults: help on screen in {} ms, closed in {} ms",
        help.as_millis(),
        close.as_millis()
    );
    assert!(
        screen.contains(" running") || screen.contains(" pending"),
        "the checks were still running:\n{screen}"
    );
    assert!(help < Duration::from_secs(1), "? took {help:?}");
    assert!(close < Duration::from_secs(1), "Esc took {close:?}");
    let quit = latency("q", &|s| s.contains("EXIT="));
    println!(
        "dashboard under faults: quit while running in {} ms",
        quit.as_millis()
    );
    assert!(quit < Duration::from_secs(3), "q took {quit:?}");
}

/// A host whose key changes between two commands of one run (sshd restarted with another key
/// after the first session died): the second command connects again and is refused at the host
/// key, naming the change, instead of failing on the dead session or trusting the new key.
#[tokio::test]
async fn host_key_changes_mid_run() {
    use pulldoctor::ssh::{SshOptions, SshPool, Step};
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED host_key_changes_mid_run: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = FleetKeys::new(dir.path());
    let port = std::net::TcpListener::bind("127.0.5.250:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = FleetHost {
        name: "rekeyed".into(),
        addr: "127.0.5.250".into(),
        port,
    };
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, keys.known_hosts(std::slice::from_ref(&host))).unwrap();
    let first = Procs(vec![keys.sshd(&host, None, None, "")]);
    assert!(wait_listening(&host.addr, port, Duration::from_secs(20)));

    let mut opts = SshOptions::from_env();
    opts.known_hosts = vec![known_hosts];
    opts.default_identities = vec![keys.client_key.clone()];
    opts.use_agent = false;
    opts.default_user = "root".into();
    opts.connect_timeout = Duration::from_secs(10);
    opts.command_timeout = Duration::from_secs(10);
    let pool = SshPool::new(opts);
    let dest = format!("root@{}:{port}", host.addr);
    let out = pool.exec(&dest, "echo first").await.unwrap();
    assert_eq!(out.stdout, b"first\n");

    // the session dies (its sshd process is killed) and the host comes back with another key
    let cut = pool.exec(&dest, "kill -9 $PPID").await;
    assert!(cut.is_err(), "{cut:?}");
    drop(first);
    let other_key = dir.path().join("other_host");
    common::fleet::keygen(&other_key);
    let _second = Procs(vec![keys.sshd(&host, Some(&other_key), None, "")]);
    assert!(wait_listening(&host.addr, port, Duration::from_secs(20)));

    let again = pool.exec(&dest, "echo second").await;
    let e = again.expect_err("a changed key is refused");
    assert_eq!(e.step, Step::HostKey, "{e}");
    assert!(e.message.contains("CHANGED"), "{e}");
}
