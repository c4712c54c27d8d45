//! A fleet of real sshd hosts for the fleet benchmark and the fault-load test: one sshd per host
//! (each on its own address), an inventory naming them, and network namespaces of the test's own
//! (veth link, optional `netem` delay, iptables rules inside the namespace only), all torn down
//! when dropped, even when an assertion fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sshd binary, if installed.
pub fn sshd_binary() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Why this machine cannot run a fleet (root, sshd, ssh-keygen, ip), if it cannot.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (sshd hosts and network namespaces need root)".into());
    }
    if sshd_binary().is_none() {
        return Some("sshd is not installed (tests/run-all.sh installs it as root)".into());
    }
    for tool in ["ssh-keygen", "ssh", "ip", "unshare"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    if std::fs::create_dir_all("/run/sshd").is_err() {
        return Some("sshd needs /run/sshd and it cannot be created".into());
    }
    None
}

/// A new ed25519 key pair at `path` (and `path.pub`); the public key as `type base64`.
pub fn keygen(path: &Path) -> String {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen {}", path.display());
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Child processes killed (and reaped) when dropped.
#[derive(Default)]
pub struct Procs(pub Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A network namespace of the test's own, deleted when dropped (its veth pair goes with it).
pub struct Netns {
    /// Its name (`ip netns` name).
    pub name: String,
}

impl Netns {
    /// Create `name` (deleting a leftover of the same name first) with its loopback up.
    pub fn new(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip ARGS` inside the namespace; must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// A veth pair `outer`–`inner`: `outer` in the root namespace with `outer_addr` (CIDR),
    /// `inner` in this namespace with every address of `inner_addrs` (CIDR); `delay_ms` of netem
    /// delay on each end's egress (so a round trip costs twice that), none when 0.
    pub fn veth(
        &self,
        outer: &str,
        outer_addr: &str,
        inner: &str,
        inner_addrs: &[String],
        delay_ms: u32,
    ) {
        let _ = Command::new("ip").args(["link", "del", outer]).output();
        ip(&["link", "add", outer, "type", "veth", "peer", "name", inner]);
        ip(&["link", "set", inner, "netns", &self.name]);
        ip(&["addr", "add", outer_addr, "dev", outer]);
        ip(&["link", "set", outer, "up"]);
        for a in inner_addrs {
            self.ip(&["addr", "add", a, "dev", inner]);
        }
        self.ip(&["link", "set", inner, "up"]);
        if delay_ms > 0 {
            let delay = format!("{delay_ms}ms");
            // a large queue: netem's default of 1000 packets would drop a burst of handshakes
            let netem = ["root", "netem", "delay", &delay, "limit", "100000"];
            let mut outer_tc = vec!["qdisc", "add", "dev", outer];
            outer_tc.extend_from_slice(&netem);
            run_ok("tc", &outer_tc);
            let mut inner_tc = vec![
                "netns", "exec", &self.name, "tc", "qdisc", "add", "dev", inner,
            ];
            inner_tc.extend_from_slice(&netem);
            run_ok("ip", &inner_tc);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn ip(args: &[&str]) {
    run_ok("ip", args);
}

fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One fleet host as the inventory and the ssh loop see it.
#[derive(Debug, Clone)]
pub struct FleetHost {
    /// Inventory name.
    pub name: String,
    /// Address sshd listens on.
    pub addr: String,
    /// Port.
    pub port: u16,
}

/// Keys and files shared by a fleet: one host key for every host (their known_hosts lines),
/// one client key in every host's authorized_keys, an ssh_config naming it.
pub struct FleetKeys {
    /// Where everything lives.
    pub dir: PathBuf,
    /// The hosts' key (private).
    pub host_key: PathBuf,
    /// Its public half, `type base64`.
    pub host_pub: String,
    /// The client key (private).
    pub client_key: PathBuf,
    /// Give the hosts' root shell an empty `~/.bashrc` (default); `false` keeps this machine's.
    pub clean_rc: bool,
}

impl FleetKeys {
    /// New keys under `dir`.
    pub fn new(dir: &Path) -> FleetKeys {
        let host_key = dir.join("host");
        let host_pub = keygen(&host_key);
        let client_key = dir.join("id");
        keygen(&client_key);
        std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).expect("authorized_keys");
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n",
                client_key.display()
            ),
        )
        .expect("ssh_config");
        FleetKeys {
            dir: dir.to_path_buf(),
            host_key,
            host_pub,
            client_key,
            clean_rc: true,
        }
    }

    /// Start sshd for `host` with `host_key` (the fleet's unless given), in `netns` if given;
    /// `extra` is appended to its config (e.g. a `ForceCommand`).
    pub fn sshd(
        &self,
        host: &FleetHost,
        host_key: Option<&Path>,
        netns: Option<&Netns>,
        extra: &str,
    ) -> Child {
        let cfg = self.dir.join(format!("sshd_{}", host.name));
        std::fs::write(
            &cfg,
            format!(
                "Port {port}\nListenAddress {addr}\nHostKey {h}\nAuthorizedKeysFile {ak}\nUsePAM no\nStrictModes no\nPidFile {d}/sshd_{name}.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin yes\nMaxStartups 200\n{extra}",
                port = host.port,
                addr = host.addr,
                name = host.name,
                h = host_key.unwrap_or(&self.host_key).display(),
                ak = self.dir.join("authorized_keys").display(),
                d = self.dir.display()
            ),
        )
        .expect("sshd config");
        let sshd = sshd_binary().expect("sshd");
        let empty_rc = self.dir.join("empty_bashrc");
        std::fs::write(&empty_rc, "").expect("empty rc");
        let mount = if self.clean_rc {
            format!(
                "mount --bind '{}' \"$HOME/.bashrc\" 2>/dev/null; ",
                empty_rc.display()
            )
        } else {
            String::new()
        };
        // A node's root shell starts clean; this machine's root ~/.bashrc may not (a developer's
        // pyenv or conda init costs 0.2 s of CPU per command, more than the SSH handshake).
        // bash reads ~/.bashrc for every command sshd runs, so the hosts get an empty one, in a
        // mount namespace of their own: the machine's file is untouched.
        let mut cmd = match netns {
            Some(ns) => ns.command("unshare"),
            None => Command::new("unshare"),
        };
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{mount}exec \"$0\" \"$@\""))
            .arg(&sshd)
            .arg("-D")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sshd")
    }

    /// known_hosts lines for `hosts`, all with the fleet's host key.
    pub fn known_hosts(&self, hosts: &[FleetHost]) -> String {
        hosts
            .iter()
            .map(|h| format!("[{}]:{} {}\n", h.addr, h.port, self.host_pub))
            .collect()
    }

    /// The `[ssh]` section of an inventory for this fleet.
    pub fn inventory_ssh(&self, connect_timeout: u64, command_timeout: u64) -> String {
        format!(
            "[ssh]\nconfig = \"{d}/ssh_config\"\nknown_hosts = [\"{d}/known_hosts\"]\nconnect_timeout = {connect_timeout}\ncommand_timeout = {command_timeout}\n\n",
            d = self.dir.display()
        )
    }

    /// An `ssh` command line for the sequential loop: same key, same known_hosts, batch mode.
    pub fn ssh_command(&self, host: &FleetHost, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(self.dir.join("ssh_config"))
            .args(["-o", "BatchMode=yes", "-o"])
            .arg(format!(
                "UserKnownHostsFile={}/known_hosts",
                self.dir.display()
            ))
            .args([
                "-p",
                &host.port.to_string(),
                &format!("root@{}", host.addr),
                remote,
            ]);
        c
    }
}

/// Wait until `addr:port` accepts a TCP connection (at most `within`); whether it did.
pub fn wait_listening(addr: &str, port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let sa = std::net::SocketAddr::new(ip, port);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&sa, Duration::from_millis(500)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Peak resident memory of a running child, polled from `/proc/PID/status` (`VmHWM`, the kernel's
/// high-water mark) until it exits; returns its output and the peak in KiB.
pub fn wait_with_peak_rss(child: Child) -> (std::process::Output, u64) {
    let pid = child.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            while !done.load(Ordering::SeqCst) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    let hwm = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                    if let Some(kb) = hwm {
                        peak.fetch_max(kb, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = child.wait_with_output().expect("wait");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = poller.join();
    (out, peak.load(std::sync::atomic::Ordering::SeqCst))
}

/// A TCP relay that adds network latency: connections to `listen` reach `upstream` after one
/// round trip (the TCP handshake a real link costs), and every chunk of data is delivered
/// `one_way` later than it was sent, in each direction, in order. It stands in for `tc netem
/// delay` where the kernel has no netem (the delay is per chunk, like netem's per packet;
/// bandwidth is not limited). Its threads end with the test process.
pub fn delay_proxy(listen: (&str, u16), upstream: std::net::SocketAddr, one_way: Duration) {
    let listener = std::net::TcpListener::bind(listen).expect("bind the delay proxy");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            std::thread::spawn(move || {
                std::thread::sleep(one_way * 2);
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (c2, s2) = (client.try_clone(), server.try_clone());
                if let (Ok(c2), Ok(s2)) = (c2, s2) {
                    delayed_pipe(client, s2, one_way);
                    delayed_pipe(server, c2, one_way);
                }
            });
        }
    });
}

/// Copy `from` to `to`, each chunk `delay` after it was read; the write side is shut down at
/// the end of `from`.
fn delayed_pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream, delay: Duration) {
    use std::io::{Read as _, Write as _};
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((due, data)) = rx.recv() {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&data).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
