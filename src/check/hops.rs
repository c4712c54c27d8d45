//! `path.hops`: for every route and port, which hop forwards and which is the first to break,
//! from TCP probes at each vantage and each hop's NAT rules and `ip_forward`.
//!
//! Three parts, all pure except the shell text they hand to whoever runs it:
//!
//! * [`probe_script`] / [`parse_probe`]: a POSIX `sh` snippet run on a vantage (node or hop) that
//!   tries one TCP connect and prints one `pulldoctor-probe …` line telling open, refused, no route
//!   to host, network unreachable and timeout apart (LAB.md "How each break looks from k8snode").
//! * [`HOP_GATHER_SCRIPT`] / [`parse_hop_gathered`]: what a forwarding hop says about itself
//!   (iptables backend and rules, nft, `ip_forward`, addresses, routes, listening ports).
//! * [`evaluate_route`] walks each port from the node outward through the hops' rules as a packet
//!   would (PREROUTING DNAT → `ip_forward` → route → FORWARD on the post-DNAT address → the return
//!   path: ESTABLISHED accept, MASQUERADE only where the reply would not come back), names the
//!   first hop that breaks and why, and checks that against what the probes saw. [`findings`] turns
//!   that into [`Finding`]s; a healthy route gives none.
//!
//! The walk trusts rules only as far as it can read them: a rule with options it does not model
//! never causes a break on its own (see `parse::iptables`), and when the probes say the port is
//! open the rules are overruled and only a note remains.

use crate::model::{
    Class, Confidence, Evidence, EvidenceSource, Finding, FindingId, FixRef, Hop, HopVerdict,
    Severity, Subject, Target, TargetKind,
};
use crate::parse::iptables::{
    self, Action, Backend, ChainKind, CtState, Decision, Hook, Net, Packet, Place, RejectWith,
    Ruleset, Verdict,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The check id.
pub const CHECK_ID: &str = "path.hops";

/// Fix id and title for the registry port (checks/other_network.toml).
const FIX_HOP_FORWARDING: (&str, &str) = (
    "hop-forwarding",
    "Restore forwarding on the broken hop (DNAT, FORWARD accept, MASQUERADE, ip_forward=1)",
);
/// Fix id and title for the token realm's port (checks/token_realm_unreachable.toml).
const FIX_FORWARD_REALM: (&str, &str) = (
    "forward-realm-port",
    "Forward the realm's port through every hop, like the registry port (DNAT + FORWARD + MASQUERADE)",
);

// ==================================================================================== probes

/// What a TCP connect attempt saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// Connected.
    Open,
    /// ECONNREFUSED: a RST or ICMP port-unreachable came back.
    Refused,
    /// EHOSTUNREACH: ICMP host-unreachable/prohibited, or no ARP answer.
    NoRoute,
    /// ENETUNREACH: no route (locally, or a router said net-unreachable).
    NetUnreachable,
    /// Nothing came back in time: a silent drop.
    Timeout,
    /// The probe could not run or said something else.
    Error,
}

impl ProbeOutcome {
    /// The word the probe line uses.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            ProbeOutcome::Open => "open",
            ProbeOutcome::Refused => "refused",
            ProbeOutcome::NoRoute => "noroute",
            ProbeOutcome::NetUnreachable => "netunreach",
            ProbeOutcome::Timeout => "timeout",
            ProbeOutcome::Error => "error",
        }
    }

    fn from_id(s: &str) -> Option<ProbeOutcome> {
        Some(match s {
            "open" => ProbeOutcome::Open,
            "refused" => ProbeOutcome::Refused,
            "noroute" => ProbeOutcome::NoRoute,
            "netunreach" => ProbeOutcome::NetUnreachable,
            "timeout" => ProbeOutcome::Timeout,
            "error" | "invalid" => ProbeOutcome::Error,
            _ => return None,
        })
    }

    /// How a client prints it (the words of LAB.md's table).
    #[must_use]
    pub fn client_text(self) -> &'static str {
        match self {
            ProbeOutcome::Open => "connected",
            ProbeOutcome::Refused => "connection refused",
            ProbeOutcome::NoRoute => "no route to host",
            ProbeOutcome::NetUnreachable => "network is unreachable",
            ProbeOutcome::Timeout => "timeout",
            ProbeOutcome::Error => "an error",
        }
    }

    /// As a [`HopVerdict`].
    #[must_use]
    pub fn hop_verdict(self) -> HopVerdict {
        match self {
            ProbeOutcome::Open => HopVerdict::Forwards,
            ProbeOutcome::Refused => HopVerdict::Refused,
            ProbeOutcome::NoRoute | ProbeOutcome::NetUnreachable => HopVerdict::NoRoute,
            ProbeOutcome::Timeout => HopVerdict::Timeout,
            ProbeOutcome::Error => HopVerdict::Unknown,
        }
    }

    fn failed(self) -> bool {
        !matches!(self, ProbeOutcome::Open | ProbeOutcome::Error)
    }

    /// Classify free text (a probe's detail, a curl/bash/Go error).
    fn from_text(text: &str) -> Option<ProbeOutcome> {
        let t = text.to_ascii_lowercase();
        if t.contains("connection refused") || t.contains("econnrefused") {
            Some(ProbeOutcome::Refused)
        } else if t.contains("no route to host")
            || t.contains("host is unreachable")
            || t.contains("ehostunreach")
        {
            Some(ProbeOutcome::NoRoute)
        } else if t.contains("network is unreachable") || t.contains("enetunreach") {
            Some(ProbeOutcome::NetUnreachable)
        } else if t.contains("timed out")
            || t.contains("i/o timeout")
            || t.contains("timeout was reached")
            || t.contains("operation now in progress")
        {
            Some(ProbeOutcome::Timeout)
        } else if t.contains("connected to") || t.contains("succeeded") || t.contains(" open") {
            Some(ProbeOutcome::Open)
        } else {
            None
        }
    }
}

/// The parsed result of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeVerdict {
    /// What happened.
    pub outcome: ProbeOutcome,
    /// The address dialled, as the line says.
    pub host: Option<String>,
    /// The port dialled.
    pub port: Option<u16>,
    /// How it connected: `bash-devtcp`, `nc`, `curl`, `bash-devtcp-watchdog`, `none`.
    pub tool: Option<String>,
    /// The timeout it used, in seconds.
    pub timeout_secs: Option<u32>,
    /// The tool's own words, one line.
    pub detail: String,
    /// The whole probe line, verbatim, for evidence.
    pub line: String,
}

impl ProbeVerdict {
    /// The command the probe effectively ran, for evidence.
    #[must_use]
    pub fn command(&self) -> String {
        let h = self.host.as_deref().unwrap_or("?");
        let p = self.port.map_or_else(|| "?".to_string(), |p| p.to_string());
        let t = self.timeout_secs.unwrap_or(0);
        let hu = if h.contains(':') {
            format!("[{h}]")
        } else {
            h.to_string()
        };
        match self.tool.as_deref() {
            Some("bash-devtcp") => format!("timeout {t} bash -c 'exec 3<>/dev/tcp/{h}/{p}'"),
            Some("bash-devtcp-watchdog") => {
                format!("bash -c 'exec 3<>/dev/tcp/{h}/{p}' (killed after {t} s)")
            }
            Some("nc") => format!("nc -z -v -w {t} {h} {p}"),
            Some("curl") => format!("curl -v --connect-timeout {t} http://{hu}:{p}/"),
            _ => format!("tcp connect {hu}:{p}"),
        }
    }
}

/// Why a probe could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeArgError {
    /// Not an IPv4/IPv6 address or a DNS host name.
    #[error("'{0}' is not an IP address or a host name")]
    Host(String),
    /// Port 0.
    #[error("port must be 1..65535")]
    Port,
    /// Timeout outside 1..=300 s.
    #[error("timeout must be 1..300 seconds (got {0})")]
    Timeout(u32),
}

/// Whether `host` is an IPv4 or IPv6 address or an RFC 1123 host name: only letters, digits,
/// `-`, `.` (and `:` for IPv6), never a leading `-`, so it is safe inside single quotes and as a
/// command argument.
#[must_use]
pub fn valid_host(host: &str) -> bool {
    if host.parse::<Ipv4Addr>().is_ok() || host.parse::<Ipv6Addr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The probe as shell text, or why the arguments are refused.
///
/// # Errors
/// A host that is not an address or host name, port 0, or a timeout outside 1..=300 s.
pub fn try_probe_script(host: &str, port: u16, timeout_secs: u32) -> Result<String, ProbeArgError> {
    if !valid_host(host) {
        return Err(ProbeArgError::Host(host.to_string()));
    }
    if port == 0 {
        return Err(ProbeArgError::Port);
    }
    if !(1..=300).contains(&timeout_secs) {
        return Err(ProbeArgError::Timeout(timeout_secs));
    }
    // Only validated values are spliced in, inside single quotes; everything else is fixed text.
    Ok(PROBE_TEMPLATE
        .replace("@HOST@", host)
        .replace("@PORT@", &port.to_string())
        .replace("@TIMEOUT@", &timeout_secs.to_string()))
}

/// A POSIX `sh` script (run it with `sh -c SCRIPT` or feed it to `sh -s`) that tries one TCP
/// connect to `host:port` and prints exactly one line:
///
/// `pulldoctor-probe v=1 host=H port=P timeout=T result=R tool=TOOL rc=N secs=S detail=…`
///
/// with `R` one of `open refused noroute netunreach timeout error`. It prefers bash's
/// `/dev/tcp` under `timeout` (present on nearly every node), then `nc`, then `curl`, then bash
/// with a shell watchdog. Invalid arguments give a script that prints `result=invalid` and runs
/// nothing; use [`try_probe_script`] to get the reason instead.
#[must_use]
pub fn probe_script(host: &str, port: u16, timeout_secs: u32) -> String {
    try_probe_script(host, port, timeout_secs).unwrap_or_else(|e| {
        // the refused argument is not echoed into the shell text
        let why = match e {
            ProbeArgError::Host(_) => "host is not an IP address or a host name",
            ProbeArgError::Port => "port must be 1..65535",
            ProbeArgError::Timeout(_) => "timeout must be 1..300 seconds",
        };
        format!(
            "printf '%s\\n' 'pulldoctor-probe v=1 result=invalid tool=none rc=2 detail={why}'\n"
        )
    })
}

const PROBE_TEMPLATE: &str = r#"LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"; export PATH
pd_h='@HOST@'; pd_p='@PORT@'; pd_t='@TIMEOUT@'
pd_tool=none; pd_rc=127; pd_out='no bash+timeout, nc or curl on this host'
pd_s0=$(date +%s 2>/dev/null || echo 0)
if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
  pd_tool=bash-devtcp
  pd_out=$(timeout "$pd_t" bash -c 'exec 3<>"/dev/tcp/$1/$2"' pd "$pd_h" "$pd_p" 2>&1 </dev/null); pd_rc=$?
elif command -v nc >/dev/null 2>&1; then
  pd_tool=nc
  pd_out=$(nc -z -v -w "$pd_t" "$pd_h" "$pd_p" 2>&1 </dev/null); pd_rc=$?
elif command -v curl >/dev/null 2>&1; then
  pd_tool=curl
  case "$pd_h" in *:*) pd_u="[$pd_h]" ;; *) pd_u="$pd_h" ;; esac
  pd_out=$(curl -v -s -o /dev/null --connect-timeout "$pd_t" --max-time "$((pd_t + 2))" "http://$pd_u:$pd_p/" 2>&1 </dev/null); pd_rc=$?
elif command -v bash >/dev/null 2>&1; then
  pd_tool=bash-devtcp-watchdog
  pd_out=$( { bash -c 'exec 3<>"/dev/tcp/$1/$2"' pd "$pd_h" "$pd_p" 2>&1 </dev/null & pd_pid=$!
    ( sleep "$pd_t"; kill -9 "$pd_pid" ) >/dev/null 2>&1 & pd_w=$!
    wait "$pd_pid"; pd_r=$?; kill "$pd_w" >/dev/null 2>&1; echo "pd_rc=$pd_r"; } 2>/dev/null )
  pd_rc=$(printf '%s\n' "$pd_out" | sed -n 's/^pd_rc=//p' | tail -n 1)
  pd_out=$(printf '%s\n' "$pd_out" | sed '/^pd_rc=/d')
fi
pd_s1=$(date +%s 2>/dev/null || echo 0)
case "$pd_tool:$pd_rc:$pd_out" in
  curl:*'Connected to'*) pd_res=open ;;
  none:*) pd_res=error ;;
  *:0:*) pd_res=open ;;
  *:124:*|*:137:*) pd_res=timeout ;;
  *'onnection refused'*) pd_res=refused ;;
  *'o route to host'*|*'ost is unreachable'*) pd_res=noroute ;;
  *'etwork is unreachable'*) pd_res=netunreach ;;
  *'timed out'*|*'Timeout was reached'*|*'Operation now in progress'*) pd_res=timeout ;;
  *) pd_res=error ;;
esac
pd_d=$(printf '%s' "$pd_out" | tr '\n\r\t' '|  ' | cut -c1-300)
printf 'pulldoctor-probe v=1 host=%s port=%s timeout=%s result=%s tool=%s rc=%s secs=%s detail=%s\n' "$pd_h" "$pd_p" "$pd_t" "$pd_res" "$pd_tool" "$pd_rc" "$((pd_s1 - pd_s0))" "$pd_d"
"#;

/// Read a probe's output: the last `pulldoctor-probe` line; failing that, the text is
/// classified by its error words (so a pasted curl or Go error also reads). Never fails: what
/// cannot be read is [`ProbeOutcome::Error`].
#[must_use]
pub fn parse_probe(output: &str) -> ProbeVerdict {
    let Some(line) = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("pulldoctor-probe "))
    else {
        let text = output.trim();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return ProbeVerdict {
            outcome: ProbeOutcome::from_text(text).unwrap_or(ProbeOutcome::Error),
            host: None,
            port: None,
            tool: None,
            timeout_secs: None,
            detail: first.chars().take(300).collect(),
            line: first.to_string(),
        };
    };
    let (head, detail) = match line.split_once(" detail=") {
        Some((h, d)) => (h, d.to_string()),
        None => (line, String::new()),
    };
    let mut fields = BTreeMap::new();
    for word in head.split_whitespace().skip(1) {
        if let Some((k, v)) = word.split_once('=') {
            fields.insert(k, v);
        }
    }
    let outcome = fields
        .get("result")
        .and_then(|r| ProbeOutcome::from_id(r))
        .or_else(|| ProbeOutcome::from_text(&detail))
        .unwrap_or(ProbeOutcome::Error);
    ProbeVerdict {
        outcome,
        host: fields.get("host").map(|s| (*s).to_string()),
        port: fields.get("port").and_then(|p| p.parse().ok()),
        tool: fields.get("tool").map(|s| (*s).to_string()),
        timeout_secs: fields.get("timeout").and_then(|t| t.parse().ok()),
        detail,
        line: line.to_string(),
    }
}

/// One probe: from which vantage or hop, to which address and port, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The node or hop name the probe ran on.
    pub from: String,
    /// The address dialled.
    pub address: String,
    /// The port dialled.
    pub port: u16,
    /// What it saw.
    pub verdict: ProbeVerdict,
}

/// All probes of a run, looked up by (from, address, port).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSet {
    /// The probes, in the order added.
    pub records: Vec<ProbeRecord>,
}

impl ProbeSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a probe result; a later one for the same key replaces the earlier.
    pub fn add(&mut self, from: &str, address: &str, port: u16, verdict: ProbeVerdict) {
        self.records
            .retain(|r| !(r.from == from && r.address == address && r.port == port));
        self.records.push(ProbeRecord {
            from: from.to_string(),
            address: address.to_string(),
            port,
            verdict,
        });
    }

    /// Add a probe's raw output, keyed by the host and port its line names. Returns false (and
    /// adds nothing) when the line names neither.
    pub fn add_output(&mut self, from: &str, output: &str) -> bool {
        let v = parse_probe(output);
        match (v.host.clone(), v.port) {
            (Some(h), Some(p)) => {
                self.add(from, &h, p, v);
                true
            }
            _ => false,
        }
    }

    /// The probe from `from` to `address:port`.
    #[must_use]
    pub fn get(&self, from: &str, address: &str, port: u16) -> Option<&ProbeVerdict> {
        self.records
            .iter()
            .find(|r| r.from == from && r.address == address && r.port == port)
            .map(|r| &r.verdict)
    }
}

// ==================================================================================== gather

/// One script for a forwarding hop (POSIX `sh`; run with `sh -c` or `sh -s`). It prints
/// delimited sections (`##pulldoctor## begin NAME: COMMAND` … `##pulldoctor## end NAME rc=N`):
/// `iptables -V`, `iptables-save`, `iptables-legacy-save` and `iptables-nft-save` when both exist,
/// `nft list ruleset`, `sysctl net.ipv4.ip_forward` (or `/proc`), `ip -4 -o addr`, `ip -4 route`,
/// `ss -ltnH`. Each command runs under `timeout 10` when present, with stdin closed, through
/// `sudo -n` when not root and passwordless sudo works; each section is cut at 1 MiB.
pub const HOP_GATHER_SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"; export PATH
pd_max=1048576
pd_to=''
if command -v timeout >/dev/null 2>&1; then pd_to='timeout 10'; fi
pd_sudo=''
if [ "$(id -u 2>/dev/null)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then pd_sudo='sudo -n'; fi
pd_sec() {
  pd_n=$1; shift
  printf '##pulldoctor## begin %s: %s\n' "$pd_n" "$*"
  if command -v "$1" >/dev/null 2>&1; then
    pd_o=$($pd_to $pd_sudo "$@" 2>&1 </dev/null); pd_r=$?
    if [ "${#pd_o}" -gt "$pd_max" ]; then
      printf '%s\n' "$pd_o" | head -c "$pd_max"; printf '\n##pulldoctor## truncated %s\n' "$pd_n"
    elif [ -n "$pd_o" ]; then
      printf '%s\n' "$pd_o"
    fi
  else
    pd_r=127; printf '##pulldoctor## missing %s\n' "$1"
  fi
  printf '##pulldoctor## end %s rc=%s\n' "$pd_n" "$pd_r"
}
pd_host=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null)
printf '##pulldoctor## gather v=1 host=%s uid=%s sudo=%s\n' "$pd_host" "$(id -u 2>/dev/null)" "${pd_sudo:-no}"
pd_sec iptables-version iptables -V
pd_sec iptables-save iptables-save
if command -v iptables-legacy-save >/dev/null 2>&1 && command -v iptables-nft-save >/dev/null 2>&1; then
  pd_sec iptables-legacy-save iptables-legacy-save
  pd_sec iptables-nft-save iptables-nft-save
fi
pd_sec nft nft list ruleset
if command -v sysctl >/dev/null 2>&1; then
  pd_sec ip_forward sysctl net.ipv4.ip_forward
else
  pd_sec ip_forward cat /proc/sys/net/ipv4/ip_forward
fi
pd_sec addr ip -4 -o addr show
pd_sec route ip -4 route show
pd_sec listen ss -ltnH
printf '##pulldoctor## done\n'
"#;

/// One section of the gather output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// The command that printed it.
    pub command: String,
    /// Its lines.
    pub lines: Vec<String>,
    /// Its exit code, when the section was closed.
    pub rc: Option<i32>,
    /// The command does not exist there.
    pub missing: bool,
    /// The output was cut.
    pub truncated: bool,
}

impl Section {
    fn text(&self) -> String {
        self.lines.join("\n")
    }
    fn ok(&self) -> bool {
        !self.missing && self.rc == Some(0)
    }
}

/// An IPv4 address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name.
    pub iface: String,
    /// Address and prefix.
    pub net: Net,
}

/// What kind of route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// A normal route.
    Unicast,
    /// `unreachable`: ICMP host-unreachable ("no route to host").
    Unreachable,
    /// `prohibit`: ICMP admin-prohibited ("no route to host").
    Prohibit,
    /// `blackhole`: silent drop (timeout).
    Blackhole,
    /// Anything else (`throw`, `nat`, …).
    Other,
}

/// One line of `ip -4 route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// Kind.
    pub kind: RouteKind,
    /// Destination (`default` = 0.0.0.0/0).
    pub dest: Net,
    /// Gateway.
    pub via: Option<Ipv4Addr>,
    /// Interface.
    pub dev: Option<String>,
    /// Metric (0 when absent).
    pub metric: u32,
    /// The line, verbatim (trimmed).
    pub text: String,
}

/// A listening TCP socket (`ss -ltn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Local address as printed (`*`, `0.0.0.0`, `[::]`, `10.0.0.1`).
    pub addr: String,
    /// Port.
    pub port: u16,
    /// The line, verbatim.
    pub text: String,
}

/// What one host (a hop, or the target, or a node) said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HopFacts {
    /// Its hostname.
    pub hostname: Option<String>,
    /// `iptables -V`.
    pub iptables_version: Option<String>,
    /// Parsed rulesets: one per iptables backend in use, plus native nft tables.
    pub rulesets: Vec<Ruleset>,
    /// Whether any rules could be read at all.
    pub rules_read: bool,
    /// `net.ipv4.ip_forward`.
    pub ip_forward: Option<bool>,
    /// The line that said so.
    pub ip_forward_text: Option<String>,
    /// The command that printed it.
    pub ip_forward_command: String,
    /// Its IPv4 addresses.
    pub addresses: Vec<IfAddr>,
    /// Its main routing table.
    pub routes: Vec<RouteEntry>,
    /// Listening TCP sockets, when `ss` ran.
    pub listening: Option<Vec<Listen>>,
    /// What could not be read, and what the parsers were unsure of.
    pub notes: Vec<String>,
}

impl HopFacts {
    fn iface_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.net.addr == addr)
            .map(|a| a.iface.as_str())
    }

    fn addr_on(&self, iface: &str) -> Option<Ipv4Addr> {
        self.addresses
            .iter()
            .find(|a| a.iface == iface)
            .map(|a| a.net.addr)
    }

    fn local_addrs(&self) -> Vec<Ipv4Addr> {
        self.addresses.iter().map(|a| a.net.addr).collect()
    }

    fn net_of_iface(&self, iface: &str) -> Option<Net> {
        self.addresses
            .iter()
            .find(|a| a.iface == iface)
            .map(|a| a.net)
    }

    /// The route the kernel would pick for `ip` (longest prefix, then lowest metric).
    #[must_use]
    pub fn route_to(&self, ip: Ipv4Addr) -> Option<&RouteEntry> {
        self.routes
            .iter()
            .filter(|r| r.dest.contains(ip))
            .max_by(|a, b| {
                a.dest
                    .prefix
                    .cmp(&b.dest.prefix)
                    .then(b.metric.cmp(&a.metric))
            })
    }

    fn listens_on(&self, addr: Ipv4Addr, port: u16) -> Option<&Listen> {
        let a = addr.to_string();
        self.listening.as_ref()?.iter().find(|l| {
            l.port == port
                && (l.addr == a
                    || matches!(l.addr.as_str(), "*" | "0.0.0.0" | "[::]" | "::")
                    || l.addr == format!("[::ffff:{a}]"))
        })
    }
}

fn split_sections(output: &str) -> (BTreeMap<String, Section>, Option<String>) {
    let mut sections = BTreeMap::new();
    let mut header = None;
    let mut cur: Option<(String, Section)> = None;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("##pulldoctor## ") {
            if let Some(h) = rest.strip_prefix("gather ") {
                header = Some(h.to_string());
                continue;
            }
            if let Some(b) = rest.strip_prefix("begin ") {
                if let Some((name, s)) = cur.take() {
                    sections.insert(name, s);
                }
                let (name, cmd) = b.split_once(": ").unwrap_or((b, ""));
                cur = Some((
                    name.to_string(),
                    Section {
                        command: cmd.to_string(),
                        ..Section::default()
                    },
                ));
                continue;
            }
            if let Some(e) = rest.strip_prefix("end ") {
                if let Some((name, mut s)) = cur.take() {
                    s.rc = e
                        .rsplit_once("rc=")
                        .and_then(|(_, rc)| rc.trim().parse().ok());
                    sections.insert(name, s);
                }
                continue;
            }
            if let Some((_, s)) = cur.as_mut() {
                if rest.starts_with("missing ") {
                    s.missing = true;
                    continue;
                }
                if rest.starts_with("truncated ") {
                    s.truncated = true;
                    continue;
                }
            }
            continue;
        }
        if let Some((_, s)) = cur.as_mut() {
            s.lines.push(line.to_string());
        }
    }
    if let Some((name, s)) = cur.take() {
        // the output stopped inside a section: keep what there is, unclosed (rc None)
        sections.insert(name, s);
    }
    (sections, header)
}

fn parse_route_line(line: &str) -> Option<RouteEntry> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (kind, rest) = match words.first().copied()? {
        "unreachable" => (RouteKind::Unreachable, &words[1..]),
        "prohibit" => (RouteKind::Prohibit, &words[1..]),
        "blackhole" => (RouteKind::Blackhole, &words[1..]),
        "unicast" => (RouteKind::Unicast, &words[1..]),
        "throw" | "nat" | "local" | "broadcast" | "multicast" | "anycast" => {
            (RouteKind::Other, &words[1..])
        }
        _ => (RouteKind::Unicast, &words[..]),
    };
    let dest = match rest.first().copied()? {
        "default" => Net {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        },
        d => Net::parse(d)?,
    };
    let value = |key: &str| {
        rest.iter()
            .position(|w| *w == key)
            .and_then(|p| rest.get(p + 1))
            .copied()
    };
    Some(RouteEntry {
        kind,
        dest,
        via: value("via").and_then(|v| v.parse().ok()),
        dev: value("dev").map(String::from),
        metric: value("metric").and_then(|m| m.parse().ok()).unwrap_or(0),
        text: line.trim().to_string(),
    })
}

fn parse_addr_line(line: &str) -> Option<IfAddr> {
    // `2: pd-k8snode    inet 10.88.1.1/24 scope global pd-k8snode\       valid_lft …`
    let words: Vec<&str> = line.split_whitespace().collect();
    let pos = words.iter().position(|w| *w == "inet")?;
    let iface = words.get(pos.checked_sub(1)?)?;
    let iface = iface
        .split('@')
        .next()
        .unwrap_or(iface)
        .trim_end_matches(':');
    Some(IfAddr {
        iface: iface.to_string(),
        net: Net::parse(words.get(pos + 1)?)?,
    })
}

fn parse_listen_line(line: &str) -> Option<Listen> {
    // `LISTEN 0 128 10.88.1.1:22 0.0.0.0:*` (state column present with -l)
    let words: Vec<&str> = line.split_whitespace().collect();
    let local = if words.first() == Some(&"LISTEN") {
        words.get(3)?
    } else {
        words.get(2)?
    };
    let (addr, port) = local.rsplit_once(':')?;
    let addr = addr.split('%').next().unwrap_or(addr);
    Some(Listen {
        addr: addr.to_string(),
        port: port.parse().ok()?,
        text: line.trim().to_string(),
    })
}

/// Read [`HOP_GATHER_SCRIPT`]'s output. Never fails: what is missing, failed or could not be
/// parsed is said in `notes` (and `rules_read` is false when no ruleset could be read).
#[must_use]
pub fn parse_hop_gathered(output: &str) -> HopFacts {
    let (sections, header) = split_sections(output);
    let mut f = HopFacts::default();
    if header.is_none() && sections.is_empty() {
        f.notes
            .push("no pulldoctor gather sections in the output".to_string());
        return f;
    }
    if let Some(h) = &header {
        f.hostname = h
            .split_whitespace()
            .find_map(|w| w.strip_prefix("host="))
            .filter(|s| !s.is_empty())
            .map(String::from);
    }
    for (name, s) in &sections {
        if s.truncated {
            f.notes.push(format!(
                "{name}: output cut at 1 MiB; what follows is unsure"
            ));
        }
        if s.rc.is_none() {
            f.notes.push(format!(
                "{name}: the section never finished (gather cut short?)"
            ));
        }
    }
    // --- iptables backend
    let version = sections
        .get("iptables-version")
        .filter(|s| s.ok())
        .and_then(|s| s.lines.iter().find(|l| l.starts_with("iptables")).cloned());
    let backend = match &version {
        Some(v) if v.contains("nf_tables") => Backend::IptablesNft,
        Some(v) if v.contains("legacy") => Backend::Legacy,
        // iptables before 1.8 has only the legacy backend and does not say so
        Some(v) if v.contains("v1.4") || v.contains("v1.6") => Backend::Legacy,
        _ => Backend::Unknown,
    };
    f.iptables_version = version;
    let mut rulesets: Vec<Ruleset> = Vec::new();
    // a view of the rules that ran but could not be read makes every other view incomplete:
    // then the hop's rules are not trusted at all (the probes decide), rather than half-read
    let incomplete = std::cell::Cell::new(false);
    let parse_ipt = |name: &str, backend: Backend, f: &mut HopFacts| -> Option<Ruleset> {
        let s = sections.get(name)?;
        if s.missing {
            f.notes.push(format!("{name}: not installed"));
            return None;
        }
        if !s.ok() {
            f.notes.push(format!(
                "{name} failed (rc {}): {}",
                s.rc.map_or_else(|| "?".into(), |r| r.to_string()),
                s.lines.first().map_or("", String::as_str)
            ));
            incomplete.set(true);
            return None;
        }
        match iptables::parse_save(&s.text(), name, backend) {
            Ok(rs) => {
                f.notes
                    .extend(rs.notes.iter().map(|n| format!("{name}: {n}")));
                Some(rs)
            }
            Err(e) => {
                f.notes.push(format!("{name}: cannot parse: {e}"));
                incomplete.set(true);
                None
            }
        }
    };
    let legacy = parse_ipt("iptables-legacy-save", Backend::Legacy, &mut f);
    let nft_ipt = parse_ipt("iptables-nft-save", Backend::IptablesNft, &mut f);
    if legacy.is_some() || nft_ipt.is_some() {
        // both backends captured by name: `iptables-save` is one of them again
        let both_used = legacy.as_ref().is_some_and(|r| !r.is_empty())
            && nft_ipt.as_ref().is_some_and(|r| !r.is_empty());
        if both_used {
            f.notes.push(
                "rules in both iptables backends (legacy and nf_tables): the kernel runs both, \
                 both are evaluated"
                    .to_string(),
            );
        }
        for rs in [legacy, nft_ipt].into_iter().flatten() {
            // an empty backend next to a used one is just the other tool's view
            if !rs.is_empty() || rulesets.is_empty() {
                rulesets.push(rs);
            }
        }
        if rulesets.len() == 2 && rulesets[0].is_empty() {
            rulesets.remove(0);
        }
    } else if let Some(rs) = parse_ipt("iptables-save", backend, &mut f) {
        rulesets.push(rs);
    }
    let iptables_nft_used = rulesets
        .iter()
        .any(|r| r.backend == Backend::IptablesNft || r.backend == Backend::Unknown);
    // --- native nft
    if let Some(s) = sections.get("nft") {
        if s.missing {
            // nothing: most hops have no nft binary
        } else if !s.ok() {
            f.notes.push(format!(
                "nft list ruleset failed (rc {}): {}",
                s.rc.map_or_else(|| "?".into(), |r| r.to_string()),
                s.lines.first().map_or("", String::as_str)
            ));
            incomplete.set(true);
        } else {
            match iptables::parse_nft(&s.text(), "nft list ruleset") {
                Ok(mut rs) => {
                    if iptables_nft_used {
                        // iptables-nft's own tables appear in `nft list ruleset` too; they were
                        // read from iptables-save already
                        let before = rs.tables.len();
                        rs.tables.retain(|t| {
                            !(t.family == "ip"
                                && matches!(
                                    t.name.as_str(),
                                    "filter" | "nat" | "mangle" | "raw" | "security"
                                ))
                        });
                        if before != rs.tables.len() {
                            rs.notes.push(
                                "tables ip filter/nat/… are iptables-nft's: read from iptables-save"
                                    .to_string(),
                            );
                        }
                    }
                    f.notes.extend(rs.notes.iter().map(|n| format!("nft: {n}")));
                    if !rs.tables.is_empty() {
                        rulesets.push(rs);
                    }
                }
                Err(e) => {
                    f.notes.push(format!("nft list ruleset: cannot parse: {e}"));
                    incomplete.set(true);
                }
            }
        }
    }
    f.rules_read = !rulesets.is_empty() && !incomplete.get();
    if incomplete.get() && !rulesets.is_empty() {
        f.notes.push(
            "some firewall rules could not be read: the hop's rules are not evaluated, the probes decide"
                .to_string(),
        );
    }
    f.rulesets = rulesets;
    // --- ip_forward
    if let Some(s) = sections.get("ip_forward") {
        f.ip_forward_command.clone_from(&s.command);
        let line = s.lines.iter().map(|l| l.trim()).find(|l| !l.is_empty());
        let value = line
            .and_then(|l| l.rsplit(['=', ' ']).next())
            .map(str::trim);
        match value {
            Some("1") if s.ok() => f.ip_forward = Some(true),
            Some("0") if s.ok() => f.ip_forward = Some(false),
            _ => f.notes.push(format!(
                "ip_forward unreadable: {}",
                line.unwrap_or("(no output)")
            )),
        }
        f.ip_forward_text = line.map(String::from);
    }
    // --- addresses, routes, listening sockets
    if let Some(s) = sections.get("addr").filter(|s| s.ok()) {
        f.addresses = s.lines.iter().filter_map(|l| parse_addr_line(l)).collect();
    } else {
        f.notes.push("ip -4 addr not read".to_string());
    }
    if let Some(s) = sections.get("route").filter(|s| s.ok()) {
        f.routes = s.lines.iter().filter_map(|l| parse_route_line(l)).collect();
    } else {
        f.notes.push("ip -4 route not read".to_string());
    }
    if let Some(s) = sections.get("listen").filter(|s| s.ok()) {
        f.listening = Some(
            s.lines
                .iter()
                .filter_map(|l| parse_listen_line(l))
                .collect(),
        );
    }
    f
}

// ==================================================================================== route

/// What a port on a route is for; decides the finding's class and fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortRole {
    /// The registry's port (`:5050`): failures are `other_network`, fix `hop-forwarding`.
    Registry,
    /// The token realm's port (`:80` for GitLab's `/jwt/auth`): `token_realm_unreachable`,
    /// fix `forward-realm-port`.
    TokenRealm,
    /// Anything else: `other_network`.
    Other,
}

impl PortRole {
    fn class(self) -> Class {
        match self {
            PortRole::TokenRealm => Class::TokenRealmUnreachable,
            PortRole::Registry | PortRole::Other => Class::OtherNetwork,
        }
    }
    fn words(self) -> &'static str {
        match self {
            PortRole::Registry => "the registry",
            PortRole::TokenRealm => "the token realm",
            PortRole::Other => "the service",
        }
    }
    /// The fix a break on this port calls for.
    #[must_use]
    pub fn fix(self) -> FixRef {
        let (id, title) = match self {
            PortRole::TokenRealm => FIX_FORWARD_REALM,
            PortRole::Registry | PortRole::Other => FIX_HOP_FORWARDING,
        };
        FixRef {
            id: id.to_string(),
            title: title.to_string(),
        }
    }
}

/// A port forwarded along a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The port (the same on every link, as in the incident).
    pub port: u16,
    /// What it is for.
    pub role: PortRole,
}

/// A node the route starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vantage {
    /// Inventory name.
    pub name: String,
    /// Its address as the first hop sees it, when known (makes the return-path check exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// One host on the route: a hop, or the final target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopSpec {
    /// Inventory name.
    pub name: String,
    /// The address the previous step dials (IPv4 for rule analysis).
    pub address: String,
}

/// A forwarded service: from the nodes, through the hops in order, to the target, per port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Route name (`registry`).
    pub name: String,
    /// Where pulls start.
    pub vantages: Vec<Vantage>,
    /// Forwarding hops, from the nodes outward.
    pub hops: Vec<HopSpec>,
    /// The host the service runs on.
    pub target: HopSpec,
    /// Ports and their roles.
    pub ports: Vec<PortSpec>,
}

/// Why a port breaks where it breaks. The id is stable (part of finding ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    /// No PREROUTING DNAT for the dialled address and port.
    NoDnat {
        /// `address:port` dialled.
        dialled: String,
        /// DNAT rules for this port that exist but do not match (wrong `-i`, wrong `-d`), why.
        near_miss: Vec<String>,
        /// What the hop does with the packet instead (local delivery: what INPUT says).
        local: String,
    },
    /// DNAT sends the port somewhere other than the next hop.
    DnatWrongTarget {
        /// Where it goes.
        to: String,
        /// Where it should go.
        expected: String,
    },
    /// `net.ipv4.ip_forward = 0`.
    IpForwardOff,
    /// The hop has no usable route to the next hop.
    NoRouteToNext {
        /// The next address.
        next: String,
        /// The route that matched, if any.
        route: Option<String>,
    },
    /// Dropped before NAT (raw/mangle PREROUTING).
    DroppedBeforeNat {
        /// How (`DROP`, `REJECT …`).
        how: String,
    },
    /// FORWARD drops the new connection (a DROP rule, or policy DROP with no ACCEPT).
    ForwardDropped {
        /// The chain that drops (`FORWARD`, `DOCKER-ISOLATION-STAGE-2`, `nft chain inet fw forward`).
        chain: String,
        /// Post-DNAT `address:port` FORWARD sees.
        post_dnat: String,
        /// By the policy (true) or a DROP rule (false).
        by_policy: bool,
        /// An ACCEPT exists for the pre-DNAT address (a classic mistake).
        pre_dnat_accept: Option<String>,
    },
    /// FORWARD rejects the new connection.
    ForwardRejected {
        /// The chain holding the REJECT.
        chain: String,
        /// Post-DNAT `address:port`.
        post_dnat: String,
        /// `--reject-with`.
        with: String,
    },
    /// FORWARD lets the connection out but not the replies back (no ESTABLISHED,RELATED accept).
    ReturnDropped {
        /// How (`policy DROP`, a rule).
        how: String,
    },
    /// The hop cannot route replies back to the client.
    NoReturnRoute {
        /// The client address (or its network).
        client: String,
    },
    /// No MASQUERADE/SNAT, and the next step's replies to the client would not come back through
    /// this hop (asymmetric return path).
    MasqueradeMissing {
        /// The source the next step sees.
        source: String,
        /// The next step's name.
        next: String,
        /// The next step's route for that source, or why it is unknown.
        next_route: String,
    },
    /// Nothing listens on the target's port: the last hop's probe was refused.
    ServiceDown {
        /// `address:port`.
        endpoint: String,
    },
    /// The last hop cannot reach the target's port (not refused).
    TargetUnreachable {
        /// `address:port`.
        endpoint: String,
        /// What the probe saw.
        seen: ProbeOutcome,
    },
    /// The node itself has no route to the first hop.
    NodeNoRoute {
        /// The first hop's address.
        first: String,
    },
    /// The probes put the break here, and the rules we read do not explain it.
    Unexplained {
        /// What the probe into this hop saw.
        seen: ProbeOutcome,
        /// Whether the hop's rules were read at all.
        rules_read: bool,
    },
}

impl Cause {
    /// Stable id.
    #[must_use]
    pub fn id(&self) -> &'static str {
        match self {
            Cause::NoDnat { .. } => "no-dnat",
            Cause::DnatWrongTarget { .. } => "dnat-wrong-target",
            Cause::IpForwardOff => "ip-forward-off",
            Cause::NoRouteToNext { .. } => "no-route-to-next",
            Cause::DroppedBeforeNat { .. } => "dropped-before-nat",
            Cause::ForwardDropped { .. } => "forward-dropped",
            Cause::ForwardRejected { .. } => "forward-rejected",
            Cause::ReturnDropped { .. } => "return-dropped",
            Cause::NoReturnRoute { .. } => "no-return-route",
            Cause::MasqueradeMissing { .. } => "masquerade-missing",
            Cause::ServiceDown { .. } => "service-down",
            Cause::TargetUnreachable { .. } => "target-unreachable",
            Cause::NodeNoRoute { .. } => "node-no-route",
            Cause::Unexplained { .. } => "unexplained",
        }
    }

    /// One short phrase.
    #[must_use]
    pub fn summary(&self) -> String {
        match self {
            Cause::NoDnat { dialled, .. } => format!("no DNAT for {dialled}"),
            Cause::DnatWrongTarget { to, expected } => {
                format!("DNAT goes to {to}, not the next hop {expected}")
            }
            Cause::IpForwardOff => "net.ipv4.ip_forward = 0".to_string(),
            Cause::NoRouteToNext { next, .. } => format!("no route to the next hop {next}"),
            Cause::DroppedBeforeNat { how } => format!("dropped before NAT ({how})"),
            Cause::ForwardDropped {
                chain,
                post_dnat,
                by_policy: true,
                ..
            } => format!("{chain} policy DROP, no ACCEPT for {post_dnat}"),
            Cause::ForwardDropped {
                chain, post_dnat, ..
            } => format!("a rule in {chain} drops {post_dnat}"),
            Cause::ForwardRejected {
                chain,
                post_dnat,
                with,
            } => format!("a rule in {chain} rejects {post_dnat} with {with}"),
            Cause::ReturnDropped { .. } => {
                "replies are dropped: no ESTABLISHED,RELATED accept in FORWARD".to_string()
            }
            Cause::NoReturnRoute { client } => format!("no route back to the client {client}"),
            Cause::MasqueradeMissing { next, .. } => {
                format!("no MASQUERADE, and {next} does not send replies back through this hop")
            }
            Cause::ServiceDown { endpoint } => format!("nothing listens on {endpoint}"),
            Cause::TargetUnreachable { endpoint, seen } => {
                format!(
                    "{endpoint} unreachable from the last hop ({})",
                    seen.client_text()
                )
            }
            Cause::NodeNoRoute { first } => format!("the node has no route to {first}"),
            Cause::Unexplained { seen, .. } => {
                format!(
                    "the probes stop here ({}), the rules do not say why",
                    seen.client_text()
                )
            }
        }
    }
}

/// Which firewall table and chain a break sits in, so advice uses the right tool (`iptables`
/// or `nft`) and names the chain that really decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallPlace {
    /// `iptables-nft`, `iptables-legacy`, `iptables` or `nftables`.
    pub backend: String,
    /// Table family (`ip`, `inet`).
    pub family: String,
    /// Table (`filter`, `nat`, or an nft table name).
    pub table: String,
    /// Chain (`FORWARD`, `DOCKER-USER`, `forward`).
    pub chain: String,
}

impl FirewallPlace {
    fn from_place(p: &Place) -> Self {
        FirewallPlace {
            backend: p.backend.name().to_string(),
            family: p.family.clone(),
            table: p.table.clone(),
            chain: p.chain.clone(),
        }
    }

    /// Native nftables (not the iptables front end).
    #[must_use]
    pub fn is_nft(&self) -> bool {
        self.backend == Backend::Nft.name()
    }

    /// How to name it in a sentence: `FORWARD`, or `nft chain inet firewall forward`.
    #[must_use]
    pub fn label(&self) -> String {
        if self.is_nft() {
            format!("nft chain {} {} {}", self.family, self.table, self.chain)
        } else {
            self.chain.clone()
        }
    }

    /// `inet firewall forward`, as nft commands take it.
    fn nft_spec(&self) -> String {
        format!("{} {} {}", self.family, self.table, self.chain)
    }
}

fn chain_label(d: &Decision<'_>) -> String {
    d.place.as_ref().map_or_else(
        || "FORWARD".to_string(),
        |p| FirewallPlace::from_place(p).label(),
    )
}

/// The first break of one port, as one vantage sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    /// 0 = the vantage itself, 1..=n = hop n, n+1 = the target.
    pub position: usize,
    /// Host name of the broken element.
    pub host: String,
    /// The address dialled at that element.
    pub address: String,
    /// The port.
    pub port: u16,
    /// Why.
    pub cause: Cause,
    /// What a client should see for this cause.
    pub expected: Vec<ProbeOutcome>,
    /// What the vantage's probe saw, if it ran.
    pub observed: Option<ProbeOutcome>,
    /// A probe backs it (the node's error matches, or the hop probes put the break here).
    pub confirmed: bool,
    /// Rule lines, sysctl values, routes and probe lines that prove it.
    pub evidence: Vec<Evidence>,
    /// Further problems seen at the same hop, and things we were unsure of.
    pub notes: Vec<String>,
    /// The outgoing interface at the hop, when known (for fix commands).
    pub out_iface: Option<String>,
    /// The post-DNAT next address.
    pub next: Option<String>,
    /// The table and chain that decided, when one did.
    pub firewall: Option<FirewallPlace>,
}

/// One vantage's view of one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageVerdict {
    /// Vantage name.
    pub vantage: String,
    /// Its probe to the first hop, if it ran.
    pub probe: Option<ProbeVerdict>,
    /// What each element of the route looked like to the probe into it (index 1 = first hop,
    /// the last = the target).
    pub links: Vec<Hop>,
    /// The first break, or none.
    pub brk: Option<Break>,
    /// The chain drawn for a terminal, the break marked `✗`.
    pub drawing: String,
    /// What the walk was unsure of.
    pub notes: Vec<String>,
}

/// One port of the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortVerdict {
    /// Port.
    pub port: u16,
    /// Its role.
    pub role: PortRole,
    /// Per vantage.
    pub vantages: Vec<VantageVerdict>,
}

/// The result of [`evaluate_route`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteVerdict {
    /// Route name.
    pub route: String,
    /// The route as given.
    pub spec: RouteSpec,
    /// Per port.
    pub ports: Vec<PortVerdict>,
    /// Route-wide notes (addresses that are not IPv4, hosts without facts).
    pub notes: Vec<String>,
}

impl RouteVerdict {
    /// Every break, with its port and role.
    pub fn breaks(&self) -> impl Iterator<Item = (&PortVerdict, &VantageVerdict, &Break)> {
        self.ports.iter().flat_map(|p| {
            p.vantages
                .iter()
                .filter_map(move |v| v.brk.as_ref().map(|b| (p, v, b)))
        })
    }
}

// ------------------------------------------------------------------------------ the walk

fn rule_evidence(host: &str, rs: &Ruleset, text: &str) -> Evidence {
    Evidence {
        source: EvidenceSource::Command {
            host: host.to_string(),
            command: rs.command.clone(),
        },
        time: None,
        host: Some(host.to_string()),
        text: text.to_string(),
        matched: None,
    }
}

fn cmd_evidence(host: &str, command: &str, text: &str) -> Evidence {
    Evidence {
        source: EvidenceSource::Command {
            host: host.to_string(),
            command: command.to_string(),
        },
        time: None,
        host: Some(host.to_string()),
        text: text.to_string(),
        matched: None,
    }
}

fn probe_evidence(from: &str, v: &ProbeVerdict) -> Evidence {
    cmd_evidence(from, &v.command(), &v.line)
}

fn decision_evidence(host: &str, d: &Decision<'_>) -> Vec<Evidence> {
    let mut ev = Vec::new();
    if let Some((rs, rule)) = d.rule {
        ev.push(rule_evidence(host, rs, &rule.text));
    }
    if let Some((rs, chain)) = d.policy
        && let Some(t) = &chain.policy_text
    {
        ev.push(rule_evidence(host, rs, t));
    }
    ev
}

fn unsure_notes(host: &str, d: &Decision<'_>) -> Vec<String> {
    d.unsure
        .iter()
        .map(|(rs, r)| {
            format!(
                "{host}: {} line {} not fully understood, given the benefit of the doubt: {}",
                rs.command, r.line, r.text
            )
        })
        .collect()
}

/// Where NAT rules for `hook` belong on a hop that uses native nftables only (no iptables
/// rules), so the advice can speak nft; `None` on iptables hops.
fn nat_place(f: &HopFacts, hook: Hook) -> Option<FirewallPlace> {
    if f.rulesets.is_empty() || f.rulesets.iter().any(|r| r.backend != Backend::Nft) {
        return None;
    }
    f.rulesets.iter().find_map(|rs| {
        rs.tables.iter().find_map(|t| {
            t.chains
                .iter()
                .find(|c| {
                    c.base
                        .is_some_and(|b| b.kind == ChainKind::Nat && b.hook == hook)
                })
                .map(|c| FirewallPlace {
                    backend: Backend::Nft.name().to_string(),
                    family: t.family.clone(),
                    table: t.name.clone(),
                    chain: c.name.clone(),
                })
        })
    })
}

/// On a Docker-managed hop, the lines that show it (`:DOCKER-USER - [0:0]`, `-A FORWARD -j
/// DOCKER-USER`): Docker owns FORWARD's policy, and accepts belong in DOCKER-USER.
fn docker_evidence(host: &str, f: &HopFacts) -> Vec<Evidence> {
    let mut ev = Vec::new();
    for rs in &f.rulesets {
        for t in &rs.tables {
            if let Some(c) = t.chain("DOCKER-USER")
                && let Some(decl) = &c.policy_text
            {
                ev.push(rule_evidence(host, rs, decl));
            }
            for c in &t.chains {
                if c.base.is_some_and(|b| b.hook == Hook::Forward) {
                    for r in &c.rules {
                        if matches!(&r.action, Action::Jump(j) if j == "DOCKER-USER") {
                            ev.push(rule_evidence(host, rs, &r.text));
                        }
                    }
                }
            }
        }
    }
    ev
}

fn reject_outcome(k: &RejectWith) -> Vec<ProbeOutcome> {
    match k {
        RejectWith::PortUnreachable | RejectWith::TcpReset => vec![ProbeOutcome::Refused],
        RejectWith::HostUnreachable | RejectWith::HostProhibited | RejectWith::AdminProhibited => {
            vec![ProbeOutcome::NoRoute]
        }
        RejectWith::NetUnreachable | RejectWith::NetProhibited => {
            vec![ProbeOutcome::NetUnreachable]
        }
        RejectWith::ProtoUnreachable | RejectWith::Other(_) => vec![
            ProbeOutcome::Refused,
            ProbeOutcome::NoRoute,
            ProbeOutcome::NetUnreachable,
            ProbeOutcome::Error,
        ],
    }
}

fn route_outcome(r: Option<&RouteEntry>) -> Vec<ProbeOutcome> {
    match r.map(|r| r.kind) {
        None => vec![ProbeOutcome::NetUnreachable],
        Some(RouteKind::Unreachable | RouteKind::Prohibit) => vec![ProbeOutcome::NoRoute],
        Some(RouteKind::Blackhole) => vec![ProbeOutcome::Timeout],
        Some(RouteKind::Unicast | RouteKind::Other) => {
            vec![ProbeOutcome::Timeout, ProbeOutcome::NoRoute]
        }
    }
}

/// What happens at one hop.
enum HopStep {
    /// Forwarded; the source the next step sees, and a masquerade doubt to settle later.
    Pass {
        src: Option<Ipv4Addr>,
        masq_doubt: Option<String>,
    },
    /// Broken here.
    Break(Box<Break>),
}

struct HopInput<'a> {
    position: usize,
    name: &'a str,
    addr: Ipv4Addr,
    facts: &'a HopFacts,
    next_name: &'a str,
    next_addr: Ipv4Addr,
    next_facts: Option<&'a HopFacts>,
    port: u16,
    src: Option<Ipv4Addr>,
    /// An address standing for the client's network when its own address is unknown.
    src_hint: Option<Ipv4Addr>,
}

fn new_break(h: &HopInput<'_>, cause: Cause, expected: Vec<ProbeOutcome>) -> Break {
    Break {
        position: h.position,
        host: h.name.to_string(),
        address: h.addr.to_string(),
        port: h.port,
        cause,
        expected,
        observed: None,
        confirmed: false,
        evidence: Vec::new(),
        notes: Vec::new(),
        out_iface: None,
        next: Some(h.next_addr.to_string()),
        firewall: None,
    }
}

/// DNAT rules for this port (or to the next hop) that exist but did not match, and why.
fn dnat_near_misses(h: &HopInput<'_>, pkt: &Packet) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rs in &h.facts.rulesets {
        for (_, chain, rule) in rs.rules() {
            let Action::Dnat { to, port, .. } = &rule.action else {
                continue;
            };
            // DNAT for forwarded traffic lives in PREROUTING (or a chain it jumps to)
            if chain.base.is_some_and(|b| b.hook != Hook::Prerouting) {
                continue;
            }
            let port_hit = rule.matches.iter().any(|m| {
                matches!(&m.cond, iptables::Cond::DPort(r) if !m.negated && r.iter().any(|r| r.lo <= h.port && h.port <= r.hi))
            });
            let to_next = *to == Some(h.next_addr) && port.is_none_or(|p| p == h.port);
            if !port_hit && !to_next {
                continue;
            }
            let mut why = Vec::new();
            for m in &rule.matches {
                let single = iptables::Rule {
                    line: rule.line,
                    text: String::new(),
                    matches: vec![m.clone()],
                    action: Action::Accept,
                };
                let one = Ruleset {
                    command: String::new(),
                    backend: rs.backend,
                    tables: vec![iptables::Table {
                        family: "ip".into(),
                        name: "filter".into(),
                        chains: vec![iptables::Chain {
                            name: "X".into(),
                            base: Some(iptables::Base {
                                kind: ChainKind::Filter,
                                hook: Hook::Input,
                                priority: 0,
                            }),
                            policy: Some(iptables::Policy::Drop),
                            policy_text: None,
                            line: 0,
                            rules: vec![single],
                        }],
                    }],
                    notes: Vec::new(),
                };
                let rss = [one];
                let d = iptables::evaluate(&rss, ChainKind::Filter, Hook::Input, pkt);
                if d.verdict != Verdict::Accept {
                    let what = match &m.cond {
                        iptables::Cond::InIface(i) => format!(
                            "it needs in-interface {} but {} arrives on {}",
                            i.join(","),
                            h.addr,
                            pkt.iif.as_deref().unwrap_or("?")
                        ),
                        iptables::Cond::Dst(d) => format!(
                            "it needs destination {} but the node dials {}",
                            d.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(","),
                            h.addr
                        ),
                        iptables::Cond::DPort(_) => {
                            format!("it is for another port, not {}", h.port)
                        }
                        iptables::Cond::Src(s) => format!(
                            "it needs source {}",
                            s.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                        other => format!("its condition {other:?} does not match"),
                    };
                    why.push(what);
                }
            }
            if !why.is_empty() {
                out.push((rs.command.clone(), rule.text.clone(), why.join("; ")));
            }
        }
    }
    out
}

#[allow(clippy::too_many_lines)] // one packet's path through one hop, in kernel order
fn check_hop(h: &HopInput<'_>) -> (HopStep, Vec<String>) {
    let mut notes = Vec::new();
    let f = h.facts;
    let iif = f.iface_of(h.addr).map(String::from);
    if iif.is_none() && !f.addresses.is_empty() {
        notes.push(format!(
            "{}: {} is not one of its addresses (ip addr); in-interface unknown",
            h.name, h.addr
        ));
    }
    let local = f.local_addrs();
    let mut pkt = Packet {
        iif: iif.clone(),
        oif: None,
        src: h.src,
        dst: Some(h.addr),
        proto: "tcp".into(),
        sport: None,
        dport: Some(h.port),
        states: vec![CtState::New],
        local: local.clone(),
    };
    let rs = &f.rulesets;

    // 1. raw/mangle PREROUTING, before any NAT
    let d = iptables::evaluate(rs, ChainKind::Filter, Hook::Prerouting, &pkt);
    notes.extend(unsure_notes(h.name, &d));
    match &d.verdict {
        Verdict::Drop | Verdict::PolicyDrop | Verdict::Reject(_) => {
            let (how, exp) = match &d.verdict {
                Verdict::Reject(k) => (format!("REJECT {}", k.name()), reject_outcome(k)),
                _ => ("DROP".to_string(), vec![ProbeOutcome::Timeout]),
            };
            let mut b = new_break(h, Cause::DroppedBeforeNat { how }, exp);
            b.evidence = decision_evidence(h.name, &d);
            b.firewall = d.place.as_ref().map(FirewallPlace::from_place);
            return (HopStep::Break(Box::new(b)), notes);
        }
        _ => {}
    }

    // 2. nat PREROUTING: the DNAT for this address and port
    let d = iptables::evaluate(rs, ChainKind::Nat, Hook::Prerouting, &pkt);
    notes.extend(unsure_notes(h.name, &d));
    let mut evidence = decision_evidence(h.name, &d);
    match &d.verdict {
        Verdict::Dnat { to, port, raw } => {
            let to_port = port.unwrap_or(h.port);
            match to {
                Some(a) if *a == h.next_addr && to_port == h.port => {}
                Some(a) => {
                    let where_to = f.route_to(*a);
                    let mut exp = route_outcome(where_to);
                    if *a == h.next_addr {
                        exp = vec![ProbeOutcome::Refused, ProbeOutcome::Timeout];
                    }
                    let mut b = new_break(
                        h,
                        Cause::DnatWrongTarget {
                            to: format!("{a}:{to_port}"),
                            expected: format!("{}:{}", h.next_addr, h.port),
                        },
                        exp,
                    );
                    b.evidence = evidence;
                    return (HopStep::Break(Box::new(b)), notes);
                }
                None => notes.push(format!(
                    "{}: DNAT target '{raw}' not understood; assumed to be the next hop",
                    h.name
                )),
            }
        }
        Verdict::Redirect => {
            let mut b = new_break(
                h,
                Cause::DnatWrongTarget {
                    to: format!("{} itself (REDIRECT)", h.name),
                    expected: format!("{}:{}", h.next_addr, h.port),
                },
                vec![ProbeOutcome::Refused, ProbeOutcome::Timeout],
            );
            b.evidence = evidence;
            return (HopStep::Break(Box::new(b)), notes);
        }
        Verdict::Drop | Verdict::PolicyDrop | Verdict::Reject(_) => {
            let (how, exp) = match &d.verdict {
                Verdict::Reject(k) => (format!("REJECT {}", k.name()), reject_outcome(k)),
                _ => (
                    "DROP in a nat chain".to_string(),
                    vec![ProbeOutcome::Timeout],
                ),
            };
            let mut b = new_break(h, Cause::DroppedBeforeNat { how }, exp);
            b.evidence = evidence;
            return (HopStep::Break(Box::new(b)), notes);
        }
        _ => {
            if !f.rules_read {
                notes.push(format!(
                    "{}: its rules could not be read; forwarding assumed, the probes decide",
                    h.name
                ));
                return (
                    HopStep::Pass {
                        src: None,
                        masq_doubt: None,
                    },
                    notes,
                );
            }
            if let Some(l) = f.listens_on(h.addr, h.port) {
                notes.push(format!(
                    "{}: no DNAT for {}:{}, but it listens there itself (`{}`; a proxy?): not a \
                     NAT hop for this port; unsure what it forwards to",
                    h.name, h.addr, h.port, l.text
                ));
                return (
                    HopStep::Pass {
                        src: None,
                        masq_doubt: None,
                    },
                    notes,
                );
            }
            let misses = dnat_near_misses(h, &pkt);
            // what a packet that is not translated meets: local delivery, INPUT decides
            let input = iptables::evaluate(rs, ChainKind::Filter, Hook::Input, &pkt);
            let (local_words, exp) = match &input.verdict {
                Verdict::Drop | Verdict::PolicyDrop => (
                    "it is delivered to the hop itself and INPUT drops it".to_string(),
                    vec![ProbeOutcome::Timeout],
                ),
                Verdict::Reject(k) => (
                    format!(
                        "it is delivered to the hop itself and INPUT rejects it ({})",
                        k.name()
                    ),
                    reject_outcome(k),
                ),
                _ => (
                    format!(
                        "it is delivered to {} itself, where nothing listens on :{}, so the kernel answers with a reset",
                        h.name, h.port
                    ),
                    vec![ProbeOutcome::Refused],
                ),
            };
            let mut b = new_break(
                h,
                Cause::NoDnat {
                    dialled: format!("{}:{}", h.addr, h.port),
                    near_miss: misses
                        .iter()
                        .map(|(_, t, why)| format!("{t} ({why})"))
                        .collect(),
                    local: local_words,
                },
                exp,
            );
            for (cmd, text, _) in &misses {
                b.evidence.push(cmd_evidence(h.name, cmd, text));
            }
            // show what the PREROUTING chain does hold, so the gap is visible
            for rs in &f.rulesets {
                for (_, chain, rule) in rs.rules() {
                    if chain
                        .base
                        .is_some_and(|b| b.kind == ChainKind::Nat && b.hook == Hook::Prerouting)
                        && matches!(rule.action, Action::Dnat { .. })
                        && !b.evidence.iter().any(|e| e.text == rule.text)
                    {
                        b.evidence.push(rule_evidence(h.name, rs, &rule.text));
                    }
                }
            }
            b.firewall = nat_place(f, Hook::Prerouting);
            if matches!(
                input.verdict,
                Verdict::Drop | Verdict::PolicyDrop | Verdict::Reject(_)
            ) {
                b.evidence.extend(decision_evidence(h.name, &input));
            }
            return (HopStep::Break(Box::new(b)), notes);
        }
    }

    // 3. ip_forward
    match f.ip_forward {
        Some(false) => {
            let mut b = new_break(h, Cause::IpForwardOff, vec![ProbeOutcome::Timeout]);
            b.evidence.extend(evidence);
            if let Some(t) = &f.ip_forward_text {
                b.evidence
                    .insert(0, cmd_evidence(h.name, &f.ip_forward_command, t));
            }
            return (HopStep::Break(Box::new(b)), notes);
        }
        Some(true) => {}
        None => notes.push(format!("{}: ip_forward unknown", h.name)),
    }

    // 4. the route to the post-DNAT destination
    let oif = if f.routes.is_empty() {
        notes.push(format!("{}: routes unknown", h.name));
        None
    } else {
        let r = f.route_to(h.next_addr);
        match r {
            Some(r) if r.kind == RouteKind::Unicast => r.dev.clone(),
            _ => {
                let mut b = new_break(
                    h,
                    Cause::NoRouteToNext {
                        next: h.next_addr.to_string(),
                        route: r.map(|r| r.text.clone()),
                    },
                    route_outcome(r),
                );
                b.evidence.extend(evidence);
                if let Some(r) = r {
                    b.evidence
                        .push(cmd_evidence(h.name, "ip -4 route show", &r.text));
                }
                return (HopStep::Break(Box::new(b)), notes);
            }
        }
    };
    pkt.oif.clone_from(&oif);

    // 5. FORWARD, on the post-DNAT destination
    let mut fwd = pkt.clone();
    fwd.dst = Some(h.next_addr);
    fwd.states = vec![CtState::New, CtState::Dnat];
    let d = iptables::evaluate(rs, ChainKind::Filter, Hook::Forward, &fwd);
    notes.extend(unsure_notes(h.name, &d));
    let post = format!("{}:{}", h.next_addr, h.port);
    match &d.verdict {
        Verdict::Drop | Verdict::PolicyDrop => {
            // an ACCEPT written for the pre-DNAT address never matches in FORWARD
            let mut pre = pkt.clone();
            pre.states = vec![CtState::New, CtState::Dnat];
            let dp = iptables::evaluate(rs, ChainKind::Filter, Hook::Forward, &pre);
            let pre_accept = match (&dp.verdict, dp.rule) {
                (Verdict::Accept, Some((_, r))) => Some(r.text.clone()),
                _ => None,
            };
            let mut b = new_break(
                h,
                Cause::ForwardDropped {
                    chain: chain_label(&d),
                    post_dnat: post,
                    by_policy: d.verdict == Verdict::PolicyDrop,
                    pre_dnat_accept: pre_accept.clone(),
                },
                vec![ProbeOutcome::Timeout],
            );
            b.evidence = evidence;
            b.evidence.extend(decision_evidence(h.name, &d));
            if let (Some(t), Some((rs, _))) = (pre_accept, dp.rule) {
                b.evidence.push(rule_evidence(h.name, rs, &t));
            }
            b.evidence.extend(docker_evidence(h.name, f));
            b.out_iface = oif;
            b.firewall = d.place.as_ref().map(FirewallPlace::from_place);
            return (HopStep::Break(Box::new(b)), notes);
        }
        Verdict::Reject(k) => {
            let mut b = new_break(
                h,
                Cause::ForwardRejected {
                    chain: chain_label(&d),
                    post_dnat: post,
                    with: k.name(),
                },
                reject_outcome(k),
            );
            b.evidence = evidence;
            b.evidence.extend(decision_evidence(h.name, &d));
            b.out_iface = oif;
            b.firewall = d.place.as_ref().map(FirewallPlace::from_place);
            return (HopStep::Break(Box::new(b)), notes);
        }
        _ => {
            if let Some((rs, r)) = d.rule {
                evidence.push(rule_evidence(h.name, rs, &r.text));
            }
        }
    }

    // 6. nat POSTROUTING: does the source change?
    let d = iptables::evaluate(rs, ChainKind::Nat, Hook::Postrouting, &fwd);
    notes.extend(unsure_notes(h.name, &d));
    let (src_out, snat) = match &d.verdict {
        Verdict::Masquerade => (oif.as_deref().and_then(|o| f.addr_on(o)), true),
        Verdict::Snat(to) => (*to, true),
        _ => (h.src, false),
    };

    // 7. FORWARD for the replies (conntrack restores the client's address before FORWARD)
    let client = h.src.or(h.src_hint);
    let mut reply = Packet {
        iif: oif.clone(),
        oif: iif.clone(),
        src: Some(h.next_addr),
        dst: h.src,
        proto: "tcp".into(),
        sport: Some(h.port),
        dport: None,
        states: vec![CtState::Established, CtState::Dnat],
        local,
    };
    if snat {
        reply.states.push(CtState::Snat);
    }
    let d = iptables::evaluate(rs, ChainKind::Filter, Hook::Forward, &reply);
    notes.extend(unsure_notes(h.name, &d));
    if d.verdict != Verdict::Accept {
        let how = match &d.verdict {
            Verdict::PolicyDrop => format!("{} policy DROP", chain_label(&d)),
            Verdict::Reject(k) => format!("a REJECT ({})", k.name()),
            _ => "a DROP rule".to_string(),
        };
        let exp = match &d.verdict {
            Verdict::Reject(k) => reject_outcome(k),
            _ => vec![ProbeOutcome::Timeout],
        };
        let mut b = new_break(h, Cause::ReturnDropped { how }, exp);
        b.evidence = evidence;
        b.evidence.extend(decision_evidence(h.name, &d));
        b.evidence.extend(docker_evidence(h.name, f));
        b.out_iface = oif;
        b.firewall = d.place.as_ref().map(FirewallPlace::from_place);
        return (HopStep::Break(Box::new(b)), notes);
    }

    // 8. can this hop route the replies back to the client?
    if let Some(c) = client
        && !f.routes.is_empty()
    {
        let r = f.route_to(c);
        if !matches!(r.map(|r| r.kind), Some(RouteKind::Unicast)) {
            let mut b = new_break(
                h,
                Cause::NoReturnRoute {
                    client: if h.src.is_some() {
                        c.to_string()
                    } else {
                        format!("{c} (the client's network)")
                    },
                },
                vec![ProbeOutcome::Timeout],
            );
            if let Some(r) = r {
                b.evidence
                    .push(cmd_evidence(h.name, "ip -4 route show", &r.text));
            }
            b.out_iface = oif;
            return (HopStep::Break(Box::new(b)), notes);
        }
    }

    // 9. without SNAT the next step must send its replies back through this hop
    let mut masq_doubt = None;
    if !snat && let Some(c) = client {
        let mine = |g: Ipv4Addr| f.local_addrs().contains(&g);
        match h.next_facts.filter(|n| !n.routes.is_empty()) {
            Some(n) => {
                let r = n.route_to(c);
                let back_through_me =
                    r.is_some_and(|r| r.kind == RouteKind::Unicast && r.via.is_some_and(mine));
                if !back_through_me {
                    let route_words =
                        r.map_or_else(|| format!("no route to {c}"), |r| r.text.clone());
                    let mut b = new_break(
                        h,
                        Cause::MasqueradeMissing {
                            source: c.to_string(),
                            next: h.next_name.to_string(),
                            next_route: route_words,
                        },
                        vec![ProbeOutcome::Timeout],
                    );
                    b.evidence = evidence;
                    // the POSTROUTING rules that are there, for other ports
                    for rs in &f.rulesets {
                        for (_, chain, rule) in rs.rules() {
                            if chain.base.is_some_and(|b| {
                                b.kind == ChainKind::Nat && b.hook == Hook::Postrouting
                            }) && matches!(rule.action, Action::Masquerade | Action::Snat { .. })
                            {
                                b.evidence.push(rule_evidence(h.name, rs, &rule.text));
                            }
                        }
                    }
                    if let Some(r) = r {
                        b.evidence
                            .push(cmd_evidence(h.next_name, "ip -4 route show", &r.text));
                    }
                    b.out_iface = oif;
                    b.firewall = nat_place(f, Hook::Postrouting);
                    return (HopStep::Break(Box::new(b)), notes);
                }
            }
            None => {
                masq_doubt = Some(format!(
                    "{}: no MASQUERADE for {}; whether {} routes {c} back through {} is unknown \
                     (its routes were not read)",
                    h.name, post, h.next_name, h.name
                ));
            }
        }
    }
    (
        HopStep::Pass {
            src: src_out,
            masq_doubt,
        },
        notes,
    )
}

/// A probe into element `k` of the chain (1 = first hop; the target is `n+1`).
fn probe_into<'a>(
    route: &RouteSpec,
    probes: &'a ProbeSet,
    vantage: &str,
    k: usize,
    port: u16,
) -> Option<(String, &'a ProbeVerdict)> {
    let from = if k == 1 {
        vantage.to_string()
    } else {
        route.hops.get(k - 2)?.name.clone()
    };
    let addr = element_addr(route, k)?;
    probes.get(&from, addr, port).map(|p| (from, p))
}

fn element_addr(route: &RouteSpec, k: usize) -> Option<&str> {
    let n = route.hops.len();
    if k >= 1 && k <= n {
        Some(route.hops[k - 1].address.as_str())
    } else if k == n + 1 {
        Some(route.target.address.as_str())
    } else {
        None
    }
}

fn element_name(route: &RouteSpec, k: usize) -> &str {
    let n = route.hops.len();
    if k >= 1 && k <= n {
        &route.hops[k - 1].name
    } else {
        &route.target.name
    }
}

/// Draw the chain like INCIDENT.md, marking the link that breaks with `✗`.
fn draw(route: &RouteSpec, vantages: &str, port: u16, brk: Option<&Break>) -> String {
    let n = route.hops.len();
    let at = brk.map(|b| b.position);
    let arrow = |from_pos: usize| {
        if at == Some(from_pos) {
            "─✗─►"
        } else {
            "─►"
        }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "{vantages} ─:{port}{}",
        if at == Some(0) {
            "─✗─► "
        } else {
            "─► "
        }
    );
    for (i, hop) in route.hops.iter().enumerate() {
        let _ = write!(s, "{} {} {} ", hop.name, hop.address, arrow(i + 1));
    }
    let _ = write!(s, "{} {}:{port}", route.target.name, route.target.address);
    if at == Some(n + 1) {
        s.push_str(" ✗");
    }
    if let Some(b) = brk {
        let _ = write!(s, "\n✗ at {}: {}", b.host, b.cause.summary());
    }
    s
}

#[allow(clippy::too_many_lines)] // the walk, then the probes, then the reconciliation
fn walk_vantage(
    route: &RouteSpec,
    facts: &BTreeMap<String, HopFacts>,
    probes: &ProbeSet,
    spec: PortSpec,
    vantage: &Vantage,
) -> VantageVerdict {
    let n = route.hops.len();
    let port = spec.port;
    let mut notes = Vec::new();
    let node_probe = route
        .hops
        .first()
        .map(|h| h.address.as_str())
        .or(Some(route.target.address.as_str()))
        .and_then(|a| probes.get(&vantage.name, a, port))
        .cloned();

    // --- the rules, hop by hop, from the node outward
    let mut src: Option<Ipv4Addr> = vantage.address.as_deref().and_then(|a| a.parse().ok());
    let mut src_hint: Option<Ipv4Addr> = None;
    let mut rule_break: Option<Break> = None;
    let mut masq_doubts: Vec<(usize, String)> = Vec::new();
    let mut unread: Option<usize> = None;
    // the node's own route to the first hop, when the node's facts were gathered
    if let (Some(nf), Some(first)) = (
        facts.get(&vantage.name),
        element_addr(route, 1).and_then(|a| a.parse::<Ipv4Addr>().ok()),
    ) && !nf.routes.is_empty()
        && !matches!(nf.route_to(first).map(|r| r.kind), Some(RouteKind::Unicast))
    {
        let r = nf.route_to(first);
        rule_break = Some(Break {
            position: 0,
            host: vantage.name.clone(),
            address: first.to_string(),
            port,
            cause: Cause::NodeNoRoute {
                first: first.to_string(),
            },
            expected: route_outcome(r),
            observed: None,
            confirmed: false,
            evidence: r
                .map(|r| vec![cmd_evidence(&vantage.name, "ip -4 route show", &r.text)])
                .unwrap_or_default(),
            notes: Vec::new(),
            out_iface: None,
            next: None,
            firewall: None,
        });
    }
    if rule_break.is_none() {
        for k in 1..=n {
            let hop = &route.hops[k - 1];
            let next_name = element_name(route, k + 1);
            let (Some(addr), Some(next_addr)) = (
                hop.address.parse::<Ipv4Addr>().ok(),
                element_addr(route, k + 1).and_then(|a| a.parse::<Ipv4Addr>().ok()),
            ) else {
                notes.push(format!(
                    "{}: '{}' or the next address is not IPv4; its rules were not evaluated",
                    hop.name, hop.address
                ));
                unread.get_or_insert(k);
                src = None;
                continue;
            };
            let Some(hf) = facts.get(&hop.name) else {
                notes.push(format!(
                    "{}: no facts gathered; the probes decide",
                    hop.name
                ));
                unread.get_or_insert(k);
                src = None;
                continue;
            };
            if !hf.rules_read {
                unread.get_or_insert(k);
            }
            if src.is_none() && src_hint.is_none() {
                // the client's own address is unknown: stand in its network, as the hop sees it
                src_hint = hf
                    .iface_of(addr)
                    .and_then(|i| hf.net_of_iface(i))
                    .map(|net| {
                        let mask = if net.prefix == 0 {
                            0
                        } else {
                            u32::MAX << (32 - u32::from(net.prefix))
                        };
                        Ipv4Addr::from(u32::from(net.addr) & mask)
                    });
            }
            let input = HopInput {
                position: k,
                name: &hop.name,
                addr,
                facts: hf,
                next_name,
                next_addr,
                next_facts: facts.get(next_name),
                port,
                src,
                src_hint,
            };
            let (step, hop_notes) = check_hop(&input);
            notes.extend(hop_notes);
            match step {
                HopStep::Pass { src: s, masq_doubt } => {
                    if let Some(d) = masq_doubt {
                        masq_doubts.push((k, d));
                    }
                    if s.is_some() {
                        src_hint = None;
                    }
                    src = s;
                }
                HopStep::Break(b) => {
                    rule_break = Some(*b);
                    break;
                }
            }
        }
    }
    // the target: nothing listening, when its sockets were read
    if rule_break.is_none()
        && let Some(tf) = facts.get(&route.target.name)
        && let Ok(taddr) = route.target.address.parse::<Ipv4Addr>()
        && tf.listening.is_some()
        && tf.listens_on(taddr, port).is_none()
    {
        rule_break = Some(Break {
            position: n + 1,
            host: route.target.name.clone(),
            address: route.target.address.clone(),
            port,
            cause: Cause::ServiceDown {
                endpoint: format!("{}:{port}", route.target.address),
            },
            expected: vec![ProbeOutcome::Refused],
            observed: None,
            confirmed: false,
            // the sockets that do listen, verbatim: the port is not among them
            evidence: tf
                .listening
                .iter()
                .flatten()
                .take(12)
                .map(|l| cmd_evidence(&route.target.name, "ss -ltnH", &l.text))
                .collect(),
            notes: Vec::new(),
            out_iface: None,
            next: None,
            firewall: None,
        });
    }

    // --- the probes: where do they stop?
    let mut links = Vec::new();
    for k in 1..=n + 1 {
        let seen = probe_into(route, probes, &vantage.name, k, port).map(|(_, p)| p.outcome);
        links.push(Hop {
            index: u32::try_from(k).unwrap_or(u32::MAX),
            host: element_name(route, k).to_string(),
            address: element_addr(route, k).unwrap_or("").to_string(),
            port,
            verdict: seen.map_or(HopVerdict::Unknown, ProbeOutcome::hop_verdict),
        });
    }
    // element k is where the probes stop if the probe into it fails and the one out of it works
    let probe_stop: Option<usize> = (1..=n + 1).find(|&k| {
        let into_failed = probe_into(route, probes, &vantage.name, k, port)
            .is_some_and(|(_, p)| p.outcome.failed());
        let out_ok = k == n + 1
            || probe_into(route, probes, &vantage.name, k + 1, port)
                .is_some_and(|(_, p)| p.outcome == ProbeOutcome::Open);
        into_failed && out_ok
    });
    let observed = node_probe.as_ref().map(|p| p.outcome);

    if observed == Some(ProbeOutcome::Open) {
        if let Some(b) = &rule_break {
            notes.push(format!(
                "the rules suggest {} breaks :{port} ({}), but {} connects: the rules read are \
                 not the whole story (another backend, a proxy, rules changed since)",
                b.host,
                b.cause.summary(),
                vantage.name
            ));
        }
        return VantageVerdict {
            vantage: vantage.name.clone(),
            drawing: draw(route, &vantage.name, port, None),
            probe: node_probe,
            links,
            brk: None,
            notes,
        };
    }

    let mut brk = rule_break;
    if brk.is_none() {
        let failed = observed.is_some_and(ProbeOutcome::failed) || probe_stop.is_some();
        if failed {
            let seen_at = |k: usize| {
                probe_into(route, probes, &vantage.name, k, port)
                    .map(|(_, p)| p.outcome)
                    .or(observed)
                    .unwrap_or(ProbeOutcome::Error)
            };
            // where to put it: where the probes stop; else the first hop we could not read;
            // else the end of the route
            let k = probe_stop.or(unread).unwrap_or(n + 1);
            let seen = seen_at(k);
            let cause = if k == n + 1 {
                let endpoint = format!("{}:{port}", route.target.address);
                if seen == ProbeOutcome::Refused {
                    Cause::ServiceDown { endpoint }
                } else {
                    Cause::TargetUnreachable { endpoint, seen }
                }
            } else if let Some((j, d)) = masq_doubts.iter().find(|(j, _)| *j >= k) {
                notes.push(d.clone());
                let hop = &route.hops[*j - 1];
                brk = Some(Break {
                    position: *j,
                    host: hop.name.clone(),
                    address: hop.address.clone(),
                    port,
                    cause: Cause::MasqueradeMissing {
                        source: "the client".to_string(),
                        next: element_name(route, j + 1).to_string(),
                        next_route: "unknown (not gathered); the probes point at the return path"
                            .to_string(),
                    },
                    expected: vec![ProbeOutcome::Timeout],
                    observed: None,
                    confirmed: false,
                    evidence: Vec::new(),
                    notes: Vec::new(),
                    out_iface: None,
                    next: element_addr(route, j + 1).map(String::from),
                    firewall: None,
                });
                Cause::Unexplained {
                    seen,
                    rules_read: true,
                }
            } else {
                Cause::Unexplained {
                    seen,
                    rules_read: facts
                        .get(element_name(route, k))
                        .is_some_and(|f| f.rules_read),
                }
            };
            if brk.is_none() {
                brk = Some(Break {
                    position: k,
                    host: element_name(route, k).to_string(),
                    address: element_addr(route, k).unwrap_or("").to_string(),
                    port,
                    expected: vec![seen],
                    cause,
                    observed: None,
                    confirmed: false,
                    evidence: Vec::new(),
                    notes: Vec::new(),
                    out_iface: None,
                    next: element_addr(route, k + 1).map(String::from),
                    firewall: None,
                });
            }
        }
    }

    if let Some(b) = brk.as_mut() {
        b.observed = observed;
        let kind_matches = observed.is_some_and(|o| b.expected.contains(&o));
        let located = probe_stop == Some(b.position)
            || (b.position == n + 1
                && probe_into(route, probes, &vantage.name, n + 1, port)
                    .is_some_and(|(_, p)| p.outcome.failed()));
        b.confirmed = kind_matches || (located && observed.is_none_or(ProbeOutcome::failed));
        if let Some(o) = observed
            && !b.expected.contains(&o)
        {
            b.notes.push(format!(
                "{} saw {}, while this cause usually gives {}",
                vantage.name,
                o.client_text(),
                b.expected
                    .iter()
                    .map(|e| e.client_text())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        // the probe lines that show it: from the node, into the broken element, out of it
        if let Some(p) = &node_probe {
            b.evidence.push(probe_evidence(&vantage.name, p));
        }
        for k in [b.position, b.position + 1] {
            if k >= 2
                && let Some((from, p)) = probe_into(route, probes, &vantage.name, k, port)
            {
                let e = probe_evidence(&from, p);
                if !b.evidence.contains(&e) {
                    b.evidence.push(e);
                }
            }
        }
        if let Some(k) = probe_stop
            && k != b.position
        {
            b.notes.push(format!(
                "the hop probes stop at {} instead; fix {} first, then look again",
                element_name(route, k),
                b.host
            ));
        }
    }
    let drawing = draw(route, &vantage.name, port, brk.as_ref());
    VantageVerdict {
        vantage: vantage.name.clone(),
        probe: node_probe,
        links,
        brk,
        drawing,
        notes,
    }
}

/// Walk every port of `route` from every vantage: the hops' rules (`facts`, keyed by host
/// name; the target's and the nodes' facts are used when present) and the probes (`probes`:
/// vantage → first hop, hop → next hop, last hop → target). Pure.
#[must_use]
pub fn evaluate_route(
    route: &RouteSpec,
    facts: &BTreeMap<String, HopFacts>,
    probes: &ProbeSet,
) -> RouteVerdict {
    let mut notes = Vec::new();
    for h in route.hops.iter().chain(std::iter::once(&route.target)) {
        if let Some(f) = facts.get(&h.name) {
            notes.extend(f.notes.iter().map(|n| format!("{}: {n}", h.name)));
        }
    }
    let ports = route
        .ports
        .iter()
        .map(|spec| PortVerdict {
            port: spec.port,
            role: spec.role,
            vantages: route
                .vantages
                .iter()
                .map(|v| walk_vantage(route, facts, probes, *spec, v))
                .collect(),
        })
        .collect();
    RouteVerdict {
        route: route.name.clone(),
        spec: route.clone(),
        ports,
        notes,
    }
}

// ==================================================================================== findings

fn client_sees(cause: &Cause, expected: &[ProbeOutcome]) -> String {
    let words = expected
        .iter()
        .map(|e| match e {
            ProbeOutcome::Timeout => "a timeout".to_string(),
            other => format!("\"{}\"", other.client_text()),
        })
        .collect::<Vec<_>>()
        .join(" or ");
    let why = match cause {
        Cause::ForwardDropped { .. }
        | Cause::IpForwardOff
        | Cause::ReturnDropped { .. }
        | Cause::MasqueradeMissing { .. }
        | Cause::NoReturnRoute { .. } => {
            "packets vanish silently, so clients wait out their dial timeout (containerd: `dial tcp …: i/o timeout`, 30 s per host entry)"
        }
        Cause::ForwardRejected { .. } => "the REJECT answers at once",
        Cause::NoDnat { .. } => "the hop answers for itself",
        Cause::ServiceDown { .. } => "the target's kernel answers with a reset",
        _ => "",
    };
    if why.is_empty() {
        format!("A node sees {words}.")
    } else {
        format!("A node sees {words}: {why}.")
    }
}

fn explain(b: &Break, role: PortRole) -> String {
    match &b.cause {
        Cause::NoDnat {
            dialled,
            near_miss,
            local,
        } => {
            let mut s = format!(
                "{} has no PREROUTING DNAT rule for {dialled}, so {} is never passed on to {}; {local}.",
                b.host,
                words_port(b.port, role),
                b.next.as_deref().unwrap_or("the next hop")
            );
            for m in near_miss {
                let _ = write!(s, " A DNAT rule exists but does not match: {m}.");
            }
            s
        }
        Cause::DnatWrongTarget { to, expected } => format!(
            "{}'s DNAT for :{} sends it to {to}, but the next hop on the route is {expected}.",
            b.host, b.port
        ),
        Cause::IpForwardOff => format!(
            "{} translates :{} (DNAT) but does not route it on: net.ipv4.ip_forward is 0, so the \
             kernel drops every forwarded packet without an answer.",
            b.host, b.port
        ),
        Cause::NoRouteToNext { next, route } => format!(
            "{} has no usable route to the next hop {next}{}.",
            b.host,
            route
                .as_ref()
                .map(|r| format!(" (the route that matches is `{r}`)"))
                .unwrap_or_default()
        ),
        Cause::DroppedBeforeNat { how } => format!(
            "{} drops :{} before NAT, in a raw/mangle/nat PREROUTING chain ({how}).",
            b.host, b.port
        ),
        Cause::ForwardDropped {
            chain,
            post_dnat,
            by_policy,
            pre_dnat_accept,
        } => {
            let mut s = if *by_policy {
                format!(
                    "{} DNATs :{} to {post_dnat}, but {chain} has policy DROP and no rule \
                     accepts {post_dnat}. Forwarding filters see the packet after DNAT, so \
                     the rule must name the post-DNAT address and port.",
                    b.host, b.port
                )
            } else {
                format!(
                    "{} DNATs :{} to {post_dnat}, and a rule in {chain} drops it.",
                    b.host, b.port
                )
            };
            if b.firewall.as_ref().is_some_and(FirewallPlace::is_nft) {
                s.push_str(
                    " That chain is native nftables: the kernel runs every base chain on the \
                     forward hook, so an ACCEPT in iptables' FORWARD does not help; it must be \
                     accepted there too.",
                );
            }
            if let Some(r) = pre_dnat_accept {
                let _ = write!(
                    s,
                    " There is an ACCEPT for the pre-DNAT address (`{r}`), which never matches in FORWARD."
                );
            }
            if docker_managed(b) {
                s.push_str(
                    " Docker manages this hop's firewall: it sets FORWARD to DROP and re-applies \
                     it, so the accept belongs in DOCKER-USER.",
                );
            }
            s
        }
        Cause::ForwardRejected {
            chain,
            post_dnat,
            with,
        } => format!(
            "{} DNATs :{} to {post_dnat}, and a rule in {chain} rejects it with {with}.",
            b.host, b.port
        ),
        Cause::ReturnDropped { how } => {
            let mut s = format!(
                "{} forwards the first packet of :{} but FORWARD has no ESTABLISHED,RELATED \
                 accept for the replies, so they die ({how}).",
                b.host, b.port
            );
            if docker_managed(b) {
                s.push_str(
                    " Docker's own ESTABLISHED accept covers only its bridge (`-o docker0`); \
                     forwarded traffic needs its own, in DOCKER-USER.",
                );
            }
            s
        }
        Cause::NoReturnRoute { client } => format!(
            "{} forwards :{} but has no route back to {client}, so the replies are dropped.",
            b.host, b.port
        ),
        Cause::MasqueradeMissing {
            source,
            next,
            next_route,
        } => format!(
            "{} forwards :{} without MASQUERADE/SNAT, so {next} sees the client's address \
             {source} and answers it by its own route ({next_route}), not through {}: the \
             replies never reach the connection's NAT state.",
            b.host, b.port, b.host
        ),
        Cause::ServiceDown { endpoint } => format!(
            "every hop forwards :{}, but nothing listens on {endpoint} on {}: {} is down or \
             listens elsewhere.",
            b.port,
            b.host,
            role.words()
        ),
        Cause::TargetUnreachable { endpoint, seen } => format!(
            "every hop forwards :{}, but even the last hop gets {} from {endpoint}: a firewall on \
             {} or the service's own address.",
            b.port,
            seen.client_text(),
            b.host
        ),
        Cause::NodeNoRoute { first } => {
            format!("{} has no route to the first hop {first}.", b.host)
        }
        Cause::Unexplained { seen, rules_read } => {
            if *rules_read {
                format!(
                    "the probes stop at {} ({}), but its NAT and FORWARD rules look right: look \
                     at what was not read (INPUT or raw/mangle rules in another backend, \
                     rp_filter, a cloud security group).",
                    b.host,
                    seen.client_text()
                )
            } else {
                format!(
                    "the probes stop at {} ({}); its rules could not be read, so the cause is \
                     not known.",
                    b.host,
                    seen.client_text()
                )
            }
        }
    }
}

fn words_port(port: u16, role: PortRole) -> String {
    format!(":{port} ({})", role.words())
}

fn next_steps(b: &Break, role: PortRole) -> Vec<String> {
    let host = &b.host;
    let p = b.port;
    let next = b.next.as_deref().unwrap_or("<next>");
    let oif = b.out_iface.as_deref().unwrap_or("<out-if>");
    let mut steps = Vec::new();
    if let Some(fw) = b.firewall.as_ref().filter(|f| f.is_nft())
        && let Some(step) = nft_step(b, fw)
    {
        steps.extend(step);
        steps.push("Run pulldoctor's path.hops check again to confirm.".to_string());
        return steps;
    }
    match &b.cause {
        Cause::NoDnat { dialled, .. } => {
            let addr = dialled.split(':').next().unwrap_or(dialled);
            steps.push(format!(
                "On {host}: `iptables -t nat -A PREROUTING -d {addr} -p tcp --dport {p} -j DNAT --to-destination {next}:{p}`"
            ));
            steps.push(format!("Check on {host}: `iptables -t nat -L PREROUTING -n -v` (the DNAT counter must rise)"));
        }
        Cause::DnatWrongTarget { .. } => {
            steps.push(format!(
                "On {host}: replace the DNAT so it reads `--to-destination {next}:{p}` (`iptables -t nat -S PREROUTING` shows it; delete with -D, add the right one)"
            ));
        }
        Cause::IpForwardOff => {
            steps.push(format!("On {host}: `sysctl -w net.ipv4.ip_forward=1`"));
            steps.push(format!(
                "Make it stick on {host}: `echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-forward.conf`"
            ));
        }
        Cause::NoRouteToNext { next, .. } => {
            steps.push(format!(
                "On {host}: `ip route get {next}`; add a route to {next}"
            ));
        }
        Cause::DroppedBeforeNat { .. } => {
            steps.push(format!("On {host}: `iptables -t raw -S; iptables -t mangle -S; iptables -t nat -S PREROUTING` and remove the rule that drops :{p}"));
        }
        Cause::ForwardDropped { .. } => {
            steps.push(format!(
                "On {host}: `iptables -I FORWARD -d {next} -p tcp --dport {p} -m conntrack --ctstate NEW -j ACCEPT`{}",
                if docker_managed(b) {
                    format!(" (on a Docker host put it in DOCKER-USER instead: `iptables -I DOCKER-USER -d {next} -p tcp --dport {p} -j ACCEPT`; Docker resets FORWARD to DROP)")
                } else {
                    String::new()
                }
            ));
            steps.push(format!(
                "Check on {host}: `iptables -L FORWARD -n -v` (the ACCEPT counter must rise)"
            ));
        }
        Cause::ForwardRejected { .. } => {
            if let Some(rule) = b.evidence.iter().find(|e| e.text.contains("REJECT")) {
                steps.push(format!(
                    "On {host}: remove the REJECT: `iptables {}`",
                    rule.text.replacen("-A ", "-D ", 1)
                ));
            }
            steps.push(format!(
                "Then accept it: `iptables -I FORWARD -d {next} -p tcp --dport {p} -j ACCEPT`"
            ));
        }
        Cause::ReturnDropped { .. } => {
            let chain = if docker_managed(b) {
                "DOCKER-USER"
            } else {
                "FORWARD"
            };
            steps.push(format!(
                "On {host}: `iptables -I {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`"
            ));
        }
        Cause::NoReturnRoute { client } => {
            steps.push(format!(
                "On {host}: `ip route get {client}`; add a route back to the nodes"
            ));
        }
        Cause::MasqueradeMissing { .. } => {
            steps.push(format!(
                "On {host}: `iptables -t nat -A POSTROUTING -o {oif} -d {next} -p tcp --dport {p} -j MASQUERADE`"
            ));
            steps.push(format!(
                "Or route the nodes' addresses back through {host} on {next}"
            ));
        }
        Cause::ServiceDown { endpoint } => {
            steps.push(format!(
                "On {host}: is {} running? `ss -ltn | grep :{p}` must show it listening ({endpoint})",
                role.words()
            ));
            if role == PortRole::TokenRealm {
                steps.push(format!(
                    "For GitLab: `gitlab-ctl status` on {host} (nginx/workhorse serve /jwt/auth)"
                ));
            }
        }
        Cause::TargetUnreachable { .. } => {
            steps.push(format!(
                "On {host}: `iptables -S INPUT` / `nft list ruleset` and `ss -ltn | grep :{p}`"
            ));
        }
        Cause::NodeNoRoute { first } => {
            steps.push(format!(
                "On {host}: `ip route get {first}`; add a route or a default gateway"
            ));
        }
        Cause::Unexplained { .. } => {
            steps.push(format!(
                "On {host}: `conntrack -L -p tcp --dport {p}` (a flow stuck in SYN_SENT/[UNREPLIED] means the return path) and `tcpdump -ni any tcp port {p}`"
            ));
            steps.push(format!(
                "On {host}: `iptables-legacy-save`, `iptables-nft-save`, `nft list ruleset`, `sysctl net.ipv4.conf.all.rp_filter`"
            ));
        }
    }
    steps.push("Run pulldoctor's path.hops check again to confirm.".to_string());
    steps
}

/// The same advice in nft words, for breaks that sit in a native nftables chain.
fn nft_step(b: &Break, fw: &FirewallPlace) -> Option<Vec<String>> {
    let host = &b.host;
    let p = b.port;
    let next = b.next.as_deref().unwrap_or("<next>");
    let spec = fw.nft_spec();
    let oif = b.out_iface.as_deref().unwrap_or("<out-if>");
    Some(match &b.cause {
        Cause::ForwardDropped { .. } => vec![
            format!(
                "On {host}: `nft insert rule {spec} ip daddr {next} tcp dport {p} ct state new accept`"
            ),
            format!("Check on {host}: `nft list chain {spec}`"),
        ],
        Cause::ForwardRejected { .. } | Cause::DroppedBeforeNat { .. } => vec![
            format!(
                "On {host}: `nft -a list chain {spec}` to find the rule's handle, then `nft delete rule {} {} handle <N>`",
                fw.family, fw.table
            ),
            format!(
                "Then accept it: `nft insert rule {spec} ip daddr {next} tcp dport {p} accept`"
            ),
        ],
        Cause::ReturnDropped { .. } => vec![format!(
            "On {host}: `nft insert rule {spec} ct state established,related accept`"
        )],
        Cause::NoDnat { dialled, .. } => {
            let addr = dialled.split(':').next().unwrap_or(dialled);
            vec![format!(
                "On {host}: `nft add rule {spec} ip daddr {addr} tcp dport {p} dnat to {next}:{p}`"
            )]
        }
        Cause::MasqueradeMissing { .. } => vec![format!(
            "On {host}: `nft add rule {spec} oifname \"{oif}\" ip daddr {next} tcp dport {p} masquerade`"
        )],
        _ => return None,
    })
}

/// Whether the hop is Docker-managed (accepts belong in DOCKER-USER, not FORWARD).
#[must_use]
pub fn docker_managed(b: &Break) -> bool {
    b.evidence.iter().any(|e| e.text.contains("DOCKER-USER"))
}

fn is_forwarding_cause(c: &Cause) -> bool {
    !matches!(
        c,
        Cause::ServiceDown { .. } | Cause::TargetUnreachable { .. } | Cause::NodeNoRoute { .. }
    )
}

/// The id of the finding a break gives (vantages that break the same way share it).
#[must_use]
pub fn finding_id(route: &str, role: PortRole, b: &Break) -> FindingId {
    FindingId::derive(&[
        CHECK_ID,
        role.class().id(),
        route,
        &b.host,
        &b.port.to_string(),
        b.cause.id(),
    ])
}

/// Findings for a route: one per port and first break (vantages that break the same way are
/// grouped). Nothing at all for a healthy route.
#[must_use]
pub fn findings(verdict: &RouteVerdict) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let route = &verdict.spec;
    let first_addr = route
        .hops
        .first()
        .map_or(route.target.address.as_str(), |h| h.address.as_str());
    let registry_port = route
        .ports
        .iter()
        .find(|p| p.role == PortRole::Registry)
        .map(|p| p.port);
    for pv in &verdict.ports {
        // group vantages by (position, cause)
        let mut groups: Vec<(&Break, Vec<&VantageVerdict>)> = Vec::new();
        for v in &pv.vantages {
            let Some(b) = &v.brk else { continue };
            match groups
                .iter_mut()
                .find(|(g, _)| g.position == b.position && g.cause == b.cause)
            {
                Some((_, vs)) => vs.push(v),
                None => groups.push((b, vec![v])),
            }
        }
        for (b, vs) in groups {
            let class = pv.role.class();
            let mut nodes: Vec<String> = vs.iter().map(|v| v.vantage.clone()).collect();
            nodes.sort();
            nodes.dedup();
            let vantage_words = nodes.join(", ");
            let observed = vs.iter().find_map(|v| v.probe.as_ref()).map(|p| p.outcome);
            let seen = match observed {
                Some(o) => format!(
                    "From {vantage_words}, a TCP connect to {first_addr}:{} ({}) {}.",
                    pv.port,
                    pv.role.words(),
                    match o {
                        ProbeOutcome::Timeout => "times out".to_string(),
                        o => format!("gives \"{}\"", o.client_text()),
                    }
                ),
                None => format!(
                    "{vantage_words} reach{} {} through {first_addr}:{} (not probed from the node).",
                    if nodes.len() == 1 { "es" } else { "" },
                    pv.role.words(),
                    pv.port
                ),
            };
            let where_words = if b.position == 0 {
                format!("It breaks on the node {}", b.host)
            } else if b.position > route.hops.len() {
                format!("It breaks at the end, on {} ({})", b.host, b.address)
            } else {
                format!("The first hop that breaks it is {} ({})", b.host, b.address)
            };
            let mut explanation = format!(
                "{seen} {where_words}: {} {}",
                explain(b, pv.role),
                client_sees(&b.cause, &b.expected)
            );
            if b.confirmed {
                explanation.push_str(" The probes confirm it.");
            } else {
                explanation.push_str(" Read from the rules; no probe confirms it yet.");
            }
            for note in &b.notes {
                let _ = write!(explanation, " Note: {note}.");
            }
            let drawing = vs.first().map_or_else(String::new, |v| {
                draw(route, &vantage_words, pv.port, v.brk.as_ref())
            });
            let _ = write!(explanation, "\n\n{drawing}");
            let title = format!(
                "{} breaks :{} ({}): {}",
                b.host,
                pv.port,
                pv.role.words(),
                b.cause.summary()
            );
            let mut evidence: Vec<Evidence> = Vec::new();
            for v in &vs {
                if let Some(vb) = &v.brk {
                    for e in &vb.evidence {
                        if !evidence.contains(e) {
                            evidence.push(e.clone());
                        }
                    }
                }
            }
            let id = finding_id(&route.name, pv.role, b);
            out.push(Finding {
                subject: Subject {
                    image: None,
                    registry: registry_port.map(|p| format!("{first_addr}:{p}")),
                    endpoint: Some(format!("{}:{}", b.address, pv.port)),
                    nodes,
                    job: None,
                    tags: Vec::new(),
                },
                explanation,
                next_steps: next_steps(b, pv.role),
                evidence,
                confidence: if b.confirmed {
                    Confidence::Confirmed
                } else {
                    Confidence::Inferred
                },
                fixes: if is_forwarding_cause(&b.cause) {
                    vec![pv.role.fix()]
                } else {
                    Vec::new()
                },
                ..Finding::with_id(
                    id,
                    CHECK_ID,
                    class,
                    Severity::Error,
                    Target {
                        kind: if b.position == 0 {
                            TargetKind::Node
                        } else {
                            TargetKind::Hop
                        },
                        name: b.host.clone(),
                    },
                    title,
                )
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hosts are addresses or DNS names; anything a shell could read differently is refused.
    #[test]
    fn host_validation() {
        for ok in [
            "10.88.1.1",
            "::1",
            "fe80::1",
            "registry.example.com",
            "gitlab-vm",
            "a.b.",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "", "-x", "a b", "a;b", "$(id)", "`id`", "a'b", "a\"b", "a\nb", "x/y", "a..b", "-rf",
            "a&b", "a|b", "*", "bad-.x",
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
        assert!(try_probe_script("10.0.0.1", 0, 2).is_err());
        assert!(try_probe_script("10.0.0.1", 80, 0).is_err());
        let s = probe_script("$(reboot)", 80, 2);
        assert!(!s.contains("reboot"));
        assert!(s.contains("result=invalid"));
        let s = probe_script("10.88.1.1", 5050, 2);
        assert!(s.contains("pd_h='10.88.1.1'; pd_p='5050'; pd_t='2'"));
        assert!(!s.contains('@'));
    }

    /// The probe line reads back; raw tool output is classified by its words.
    #[test]
    fn probe_lines() {
        let v = parse_probe(
            "pulldoctor-probe v=1 host=10.88.1.1 port=5050 timeout=2 result=refused tool=bash-devtcp rc=1 secs=0 detail=bash: connect: Connection refused|x\n",
        );
        assert_eq!(v.outcome, ProbeOutcome::Refused);
        assert_eq!(v.host.as_deref(), Some("10.88.1.1"));
        assert_eq!(v.port, Some(5050));
        assert_eq!(
            v.command(),
            "timeout 2 bash -c 'exec 3<>/dev/tcp/10.88.1.1/5050'"
        );
        assert_eq!(v.detail, "bash: connect: Connection refused|x");
        for (text, want) in [
            (
                "dial tcp 10.0.0.1:80: connect: no route to host",
                ProbeOutcome::NoRoute,
            ),
            (
                "curl: (28) Connection timed out after 2001 milliseconds",
                ProbeOutcome::Timeout,
            ),
            (
                "connect: network is unreachable",
                ProbeOutcome::NetUnreachable,
            ),
            ("", ProbeOutcome::Error),
        ] {
            assert_eq!(parse_probe(text).outcome, want, "{text}");
        }
    }

    /// Routes: longest prefix wins; `unreachable` routes are kept as such.
    #[test]
    fn routes() {
        let f = HopFacts {
            routes: [
                "unreachable 10.88.0.0/16 ",
                "10.88.1.0/24 dev pd-k8snode proto kernel scope link src 10.88.1.1",
                "default via 10.0.0.1 dev eth0 metric 100",
            ]
            .iter()
            .filter_map(|l| parse_route_line(l))
            .collect(),
            ..HopFacts::default()
        };
        let r = f.route_to("10.88.1.2".parse().unwrap()).unwrap();
        assert_eq!(r.dev.as_deref(), Some("pd-k8snode"));
        assert_eq!(
            f.route_to("10.88.3.2".parse().unwrap()).unwrap().kind,
            RouteKind::Unreachable
        );
        assert_eq!(
            f.route_to("8.8.8.8".parse().unwrap()).unwrap().via,
            Some("10.0.0.1".parse().unwrap())
        );
    }

    /// The gather parser finds sections, missing tools and truncation, and never panics.
    #[test]
    fn gather_sections() {
        let out = "##pulldoctor## gather v=1 host=hop uid=0 sudo=no\n\
##pulldoctor## begin iptables-version: iptables -V\niptables v1.8.9 (legacy)\n##pulldoctor## end iptables-version rc=0\n\
##pulldoctor## begin iptables-save: iptables-save\n*filter\n:FORWARD ACCEPT [0:0]\n##pulldoctor## truncated iptables-save\n##pulldoctor## end iptables-save rc=0\n\
##pulldoctor## begin nft: nft list ruleset\n##pulldoctor## missing nft\n##pulldoctor## end nft rc=127\n\
##pulldoctor## begin ip_forward: sysctl net.ipv4.ip_forward\nnet.ipv4.ip_forward = 0\n##pulldoctor## end ip_forward rc=0\n";
        let f = parse_hop_gathered(out);
        assert_eq!(f.hostname.as_deref(), Some("hop"));
        assert_eq!(f.ip_forward, Some(false));
        assert!(!f.rules_read);
        assert!(
            f.notes.iter().any(|n| n.contains("cut at 1 MiB")),
            "{:?}",
            f.notes
        );
        assert!(
            f.notes.iter().any(|n| n.contains("COMMIT")),
            "{:?}",
            f.notes
        );
        for junk in [
            "",
            "##pulldoctor## ",
            "##pulldoctor## begin x",
            "##pulldoctor## end",
            "\u{0}",
        ] {
            let _ = parse_hop_gathered(junk);
        }
    }

    /// The drawing marks the broken link.
    #[test]
    fn drawing() {
        let route = RouteSpec {
            name: "registry".into(),
            vantages: vec![Vantage {
                name: "k8snode".into(),
                address: None,
            }],
            hops: vec![
                HopSpec {
                    name: "bastion".into(),
                    address: "10.88.1.1".into(),
                },
                HopSpec {
                    name: "linuxhost".into(),
                    address: "10.88.2.2".into(),
                },
            ],
            target: HopSpec {
                name: "gitlabvm".into(),
                address: "10.88.3.2".into(),
            },
            ports: vec![],
        };
        assert_eq!(
            draw(&route, "k8snode", 5050, None),
            "k8snode ─:5050─► bastion 10.88.1.1 ─► linuxhost 10.88.2.2 ─► gitlabvm 10.88.3.2:5050"
        );
        let b = Break {
            position: 2,
            host: "linuxhost".into(),
            address: "10.88.2.2".into(),
            port: 5050,
            cause: Cause::IpForwardOff,
            expected: vec![ProbeOutcome::Timeout],
            observed: None,
            confirmed: false,
            evidence: vec![],
            notes: vec![],
            out_iface: None,
            next: None,
            firewall: None,
        };
        assert_eq!(
            draw(&route, "k8snode", 5050, Some(&b)),
            "k8snode ─:5050─► bastion 10.88.1.1 ─► linuxhost 10.88.2.2 ─✗─► gitlabvm 10.88.3.2:5050\n✗ at linuxhost: net.ipv4.ip_forward = 0"
        );
    }
}
