//! The SSH layer against real OpenSSH `sshd` processes on 127.0.0.x: commands keep stdout, stderr
//! and exit status; host keys are verified (unknown refused unless accepted, changed always
//! refused); ProxyJump through two hops; one session per host; an unreachable host fails once.
//! Needs `sshd` and `ssh-keygen` (the README's test command installs them as root); skipped with
//! a printed reason otherwise.

// test harness: failing to set up a real sshd is a failed test
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pulldoctor::ssh::config::SshConfig;
use pulldoctor::ssh::{SshOptions, SshPool, Step};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A real sshd on `addr:port`, killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    host_pub: String,
    log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_binary() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port(addr: &str) -> u16 {
    std::net::TcpListener::bind((addr, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

fn start_sshd(dir: &Path, name: &str, addr: &str, client_pub: &Path) -> Sshd {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    keygen(&d.join("host"));
    std::fs::copy(client_pub, d.join("authorized_keys")).unwrap();
    let port = free_port(addr);
    let log = d.join("sshd.log");
    let config = format!(
        "Port {port}\nListenAddress {addr}\nHostKey {h}\nAuthorizedKeysFile {ak}\nUsePAM no\nStrictModes no\nPidFile {pid}\nAllowTcpForwarding yes\nLogLevel DEBUG1\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin yes\n",
        h = d.join("host").display(),
        ak = d.join("authorized_keys").display(),
        pid = d.join("sshd.pid").display()
    );
    std::fs::write(d.join("sshd_config"), config).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new(sshd_binary().unwrap())
        .arg("-D")
        .arg("-f")
        .arg(d.join("sshd_config"))
        .arg("-E")
        .arg(&log)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect((addr, port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let host_pub = std::fs::read_to_string(d.join("host.pub"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    Sshd {
        child,
        port,
        host_pub,
        log,
    }
}

struct Env {
    dir: tempfile::TempDir,
    key: PathBuf,
}

fn env() -> Option<Env> {
    if sshd_binary().is_none() || Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!(
            "SKIPPED: sshd/ssh-keygen not installed (tests/run-all.sh installs them as root)"
        );
        return None;
    }
    if !Path::new("/run/sshd").exists() && std::fs::create_dir_all("/run/sshd").is_err() {
        eprintln!("SKIPPED: sshd needs /run/sshd and it cannot be created (not root)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    keygen(&key);
    Some(Env { dir, key })
}

fn options(env: &Env, config: &str, known_hosts: &str) -> SshOptions {
    let kh = env
        .dir
        .path()
        .join(format!("known_hosts_{}", rand_suffix()));
    std::fs::write(&kh, known_hosts).unwrap();
    let mut o = SshOptions::from_env();
    o.config = SshConfig::parse(config).unwrap();
    o.known_hosts = vec![kh];
    o.default_identities = vec![env.key.clone()];
    o.use_agent = false;
    o.default_user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    o.connect_timeout = Duration::from_secs(5);
    o.command_timeout = Duration::from_secs(10);
    o
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn kh_line(addr: &str, s: &Sshd) -> String {
    format!("[{addr}]:{} {}\n", s.port, s.host_pub)
}

/// stdout, stderr and a non-zero exit are kept; several commands share one session.
#[tokio::test]
async fn exec_output_and_session_reuse() {
    let Some(env) = env() else { return };
    let sshd = start_sshd(
        env.dir.path(),
        "a",
        "127.0.0.1",
        &env.key.with_extension("pub"),
    );
    let pool = SshPool::new(options(&env, "", &kh_line("127.0.0.1", &sshd)));
    let dest = format!("127.0.0.1:{}", sshd.port);
    let out = pool
        .exec(&dest, "echo out; echo err >&2; exit 3")
        .await
        .unwrap();
    assert_eq!(out.exit_status, Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    for _ in 0..3 {
        assert_eq!(pool.exec(&dest, "true").await.unwrap().exit_status, Some(0));
    }
    let log = std::fs::read_to_string(&sshd.log).unwrap();
    assert_eq!(
        log.matches("Accepted publickey").count(),
        1,
        "one session for four commands:\n{log}"
    );
}

/// An unknown host key is refused, unless new keys are accepted (then it is recorded); a changed
/// key is refused even then, naming the known_hosts line.
#[tokio::test]
async fn host_keys_are_verified() {
    let Some(env) = env() else { return };
    let sshd = start_sshd(
        env.dir.path(),
        "b",
        "127.0.0.1",
        &env.key.with_extension("pub"),
    );
    let dest = format!("127.0.0.1:{}", sshd.port);
    let e = SshPool::new(options(&env, "", ""))
        .exec(&dest, "true")
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::HostKey, "{e}");
    assert!(e.message.contains("not in known_hosts"), "{e}");

    let mut o = options(&env, "", "");
    o.accept_new_host_keys = true;
    let kh = o.known_hosts[0].clone();
    SshPool::new(o).exec(&dest, "true").await.unwrap();
    assert!(
        std::fs::read_to_string(&kh)
            .unwrap()
            .contains(sshd.host_pub.split_whitespace().nth(1).unwrap())
    );

    // another host's key recorded for this address: a changed key
    let other = start_sshd(
        env.dir.path(),
        "c",
        "127.0.0.1",
        &env.key.with_extension("pub"),
    );
    let mut o = options(
        &env,
        "",
        &format!("[127.0.0.1]:{} {}\n", sshd.port, other.host_pub),
    );
    o.accept_new_host_keys = true;
    let e = SshPool::new(o).exec(&dest, "true").await.unwrap_err();
    assert_eq!(e.step, Step::HostKey, "{e}");
    assert!(
        e.message.contains("CHANGED") && e.message.contains("line 1"),
        "{e}"
    );
}

/// `ProxyJump hop1,hop2` reaches the target through both hops (their sshd logs show the
/// forwarding), with host keys checked at every step.
#[tokio::test]
async fn proxy_jump_two_hops() {
    let Some(env) = env() else { return };
    let pubkey = env.key.with_extension("pub");
    let hop1 = start_sshd(env.dir.path(), "hop1", "127.0.0.2", &pubkey);
    let hop2 = start_sshd(env.dir.path(), "hop2", "127.0.0.3", &pubkey);
    let target = start_sshd(env.dir.path(), "target", "127.0.0.4", &pubkey);
    let config = format!(
        "Host hop1\n  HostName 127.0.0.2\n  Port {}\nHost hop2\n  HostName 127.0.0.3\n  Port {}\nHost target\n  HostName 127.0.0.4\n  Port {}\n  ProxyJump hop1,hop2\n",
        hop1.port, hop2.port, target.port
    );
    let kh =
        kh_line("127.0.0.2", &hop1) + &kh_line("127.0.0.3", &hop2) + &kh_line("127.0.0.4", &target);
    let pool = SshPool::new(options(&env, &config, &kh));
    let out = pool.exec("target", "echo through").await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through\n");
    let log1 = std::fs::read_to_string(&hop1.log).unwrap();
    let log2 = std::fs::read_to_string(&hop2.log).unwrap();
    assert!(
        log1.contains("127.0.0.3"),
        "hop1 forwarded to hop2:\n{log1}"
    );
    assert!(
        log2.contains("127.0.0.4"),
        "hop2 forwarded to the target:\n{log2}"
    );
}

/// A host that never answers costs one connect timeout: the next command on it fails at once
/// with the same error, without dialling again.
#[tokio::test]
async fn unreachable_host_fails_once() {
    let Some(env) = env() else { return };
    // accepts TCP and never speaks SSH: a hung host
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    let mut o = options(&env, "", "");
    o.connect_timeout = Duration::from_secs(1);
    let pool = SshPool::new(o);
    let dest = format!("127.0.0.1:{port}");
    let first = pool.exec(&dest, "true").await.unwrap_err();
    assert_eq!(first.step, Step::Connect, "{first}");
    assert!(first.message.contains("did not answer"), "{first}");
    let second = pool.exec(&dest, "true").await.unwrap_err();
    assert_eq!(first, second);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "dialled once"
    );
    // a refused port names the address
    let closed = free_port("127.0.0.1");
    let e = pool
        .exec(&format!("127.0.0.1:{closed}"), "true")
        .await
        .unwrap_err();
    assert!(e.message.contains(&format!("127.0.0.1:{closed}")), "{e}");
}

/// A headless run over SSH recorded into a bundle replays to the same findings with no host
/// reachable, and a secret in what the host printed never reaches the bundle or the report.
#[test]
fn record_and_replay_over_ssh() {
    let Some(env) = env() else { return };
    let sshd = start_sshd(
        env.dir.path(),
        "rec",
        "127.0.0.1",
        &env.key.with_extension("pub"),
    );
    let d = env.dir.path();
    let token = "glpat-PlantedInNodeLog123456";
    let log = d.join("containerd.log");
    std::fs::write(
        &log,
        format!(
            "time=\"2025-03-04T10:00:00Z\" level=error msg=\"PullImage \\\"r.example:5050/a/b:1\\\" failed\" error=\"failed to pull and unpack image \\\"r.example:5050/a/b:1\\\": failed to resolve reference \\\"r.example:5050/a/b:1\\\": r.example:5050/a/b:1: not found\" token={token}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("ssh_config"),
        format!("Host *\n  IdentityFile {}\n", env.key.display()),
    )
    .unwrap();
    std::fs::write(d.join("known_hosts"), kh_line("127.0.0.1", &sshd)).unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let inventory = format!(
        "[ssh]\nconfig = \"{d}/ssh_config\"\nknown_hosts = [\"{d}/known_hosts\"]\n\n[[host]]\nname = \"n1\"\nssh = \"{user}@127.0.0.1:{port}\"\nroles = [\"node\"]\nlog_files = [\"{log}\"]\n",
        d = d.display(),
        port = sshd.port,
        log = log.display()
    );
    let inv = d.join("inventory.toml");
    std::fs::write(&inv, inventory).unwrap();
    let bundle = d.join("bundle.json");
    let bin = env!("CARGO_BIN_EXE_pulldoctor");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .env_remove("SSH_AUTH_SOCK")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let live = run(&[
        "--headless",
        "--config",
        inv.to_str().unwrap(),
        "--record",
        bundle.to_str().unwrap(),
    ]);
    drop(sshd);
    let replay = run(&["--headless", "--replay", bundle.to_str().unwrap()]);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&live.stdout).unwrap(),
        serde_json::from_slice(&replay.stdout).unwrap(),
    );
    let journal = a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "node.journal")
        .unwrap_or_else(|| panic!("{a}"));
    assert_eq!(journal["class"], "image_not_found");
    assert_eq!(
        a["findings"], b["findings"],
        "the replay gives the same findings"
    );
    assert_eq!(a["summary"], b["summary"]);
    for text in [
        String::from_utf8_lossy(&live.stdout).into_owned(),
        std::fs::read_to_string(&bundle).unwrap(),
    ] {
        assert!(!text.contains(token), "the planted token leaked");
    }
}
