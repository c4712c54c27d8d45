//! `iptables-save` output (and, best effort, `nft list ruleset`) of a forwarding hop, parsed into
//! the chains that decide whether a port is forwarded, plus a small netfilter walker that follows a
//! packet through them (DOMAIN.md §7).
//!
//! Both formats land in one shape, [`Ruleset`] → [`Table`] → [`Chain`] → [`Rule`], so the hop walk
//! (`check::hops`) evaluates iptables-legacy, iptables-nft and native nftables rules alike. What a
//! rule says that we do not model is kept as [`Cond::Unknown`]: such a rule matches "maybe", and
//! [`evaluate`] then gives the packet the benefit of the doubt (an unknown ACCEPT is taken, an
//! unknown DROP is not) and reports the rule as unsure, so an option we cannot read never raises a
//! false alarm on its own. Malformed structure is an error with its line number, never a panic.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 network (`10.88.2.2/32`, `10.0.0.0/8`; a bare address is a /32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    /// The address as written (host bits are kept; matching masks them).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Net {
    /// Parse `a.b.c.d[/len]`; `None` for anything else (names, IPv6, bad lengths).
    #[must_use]
    pub fn parse(text: &str) -> Option<Net> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().ok()?),
            None => (text, 32),
        };
        if prefix > 32 {
            return None;
        }
        Some(Net {
            addr: addr.parse().ok()?,
            prefix,
        })
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// Whether `ip` lies in this network.
    #[must_use]
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(self.addr) & self.mask()) == (u32::from(ip) & self.mask())
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An inclusive port range (`5050`, `8000:8080`, `8000-8080`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    fn parse(text: &str) -> Option<PortRange> {
        let text = text.trim();
        let (lo, hi) = match text.split_once([':', '-']) {
            Some((a, b)) => (
                if a.is_empty() { 0 } else { a.parse().ok()? },
                if b.is_empty() {
                    u16::MAX
                } else {
                    b.parse().ok()?
                },
            ),
            None => {
                let p = text.parse().ok()?;
                (p, p)
            }
        };
        Some(PortRange { lo, hi })
    }

    fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// Connection-tracking states a rule can test (`--ctstate`, `ct state`, `ct status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtState {
    /// First packet of a connection.
    New,
    /// A packet of a known connection.
    Established,
    /// Related to a known connection (ICMP errors, FTP data).
    Related,
    /// Not part of any known connection.
    Invalid,
    /// Not tracked (raw `NOTRACK`).
    Untracked,
    /// The connection's destination was translated.
    Dnat,
    /// The connection's source was translated.
    Snat,
}

impl CtState {
    fn parse(word: &str) -> Option<CtState> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "new" => CtState::New,
            "established" => CtState::Established,
            "related" => CtState::Related,
            "invalid" => CtState::Invalid,
            "untracked" => CtState::Untracked,
            "dnat" => CtState::Dnat,
            "snat" => CtState::Snat,
            _ => return None,
        })
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// `-i NAME` / `iifname "NAME"` (a trailing `+` or `*` is a prefix wildcard).
    InIface(Vec<String>),
    /// `-o NAME` / `oifname "NAME"`.
    OutIface(Vec<String>),
    /// `-s NET` / `ip saddr NET`.
    Src(Vec<Net>),
    /// `-d NET` / `ip daddr NET`.
    Dst(Vec<Net>),
    /// `-p tcp` / `meta l4proto tcp` / `tcp dport …` (implies tcp).
    Proto(Vec<String>),
    /// `--dport`, `--dports`, `tcp dport`.
    DPort(Vec<PortRange>),
    /// `--sport`, `--sports`, `tcp sport`.
    SPort(Vec<PortRange>),
    /// `--ctstate`, `--state`, `ct state`, `ct status`.
    CtState(Vec<CtState>),
    /// `-m addrtype --dst-type TYPE` / `fib daddr type TYPE` (only `LOCAL` is evaluated).
    DstType(String),
    /// Anything we do not model, verbatim. Matches "maybe".
    Unknown(String),
}

/// A condition, possibly negated (`! -d 127.0.0.0/8`, `ip daddr != …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// `!` / `!=`.
    pub negated: bool,
    /// What is tested.
    pub cond: Cond,
}

/// What a REJECT sends back, which decides the client's error (DOMAIN.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectWith {
    /// ICMP port-unreachable: iptables' default; the client sees "connection refused".
    PortUnreachable,
    /// TCP RST: "connection refused".
    TcpReset,
    /// ICMP host-unreachable: "no route to host".
    HostUnreachable,
    /// ICMP host-prohibited (code 10): "no route to host".
    HostProhibited,
    /// ICMP admin-prohibited / packet filtered (code 13): "no route to host".
    AdminProhibited,
    /// ICMP net-unreachable: "network is unreachable".
    NetUnreachable,
    /// ICMP net-prohibited: "network is unreachable".
    NetProhibited,
    /// ICMP protocol-unreachable: "protocol not available".
    ProtoUnreachable,
    /// Something else, verbatim.
    Other(String),
}

impl RejectWith {
    fn parse(word: &str) -> RejectWith {
        match word
            .trim()
            .trim_start_matches("icmp-")
            .to_ascii_lowercase()
            .as_str()
        {
            "port-unreachable" | "port-unreach" => RejectWith::PortUnreachable,
            "tcp-reset" | "tcp-rst" | "reset" => RejectWith::TcpReset,
            "host-unreachable" | "host-unreach" => RejectWith::HostUnreachable,
            "host-prohibited" => RejectWith::HostProhibited,
            "admin-prohibited" | "admin-prohib" => RejectWith::AdminProhibited,
            "net-unreachable" | "net-unreach" | "no-route" => RejectWith::NetUnreachable,
            "net-prohibited" => RejectWith::NetProhibited,
            "proto-unreachable" | "prot-unreachable" => RejectWith::ProtoUnreachable,
            other => RejectWith::Other(other.to_string()),
        }
    }

    /// The name iptables uses (`icmp-host-unreachable`, `tcp-reset`, …).
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            RejectWith::PortUnreachable => "icmp-port-unreachable".into(),
            RejectWith::TcpReset => "tcp-reset".into(),
            RejectWith::HostUnreachable => "icmp-host-unreachable".into(),
            RejectWith::HostProhibited => "icmp-host-prohibited".into(),
            RejectWith::AdminProhibited => "icmp-admin-prohibited".into(),
            RejectWith::NetUnreachable => "icmp-net-unreachable".into(),
            RejectWith::NetProhibited => "icmp-net-prohibited".into(),
            RejectWith::ProtoUnreachable => "icmp-proto-unreachable".into(),
            RejectWith::Other(s) => s.clone(),
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `-j ACCEPT` / `accept`.
    Accept,
    /// `-j DROP` / `drop`.
    Drop,
    /// `-j REJECT [--reject-with K]` / `reject [with …]`.
    Reject(RejectWith),
    /// `-j RETURN` / `return`.
    Return,
    /// `-j CHAIN` / `jump CHAIN`.
    Jump(String),
    /// `-g CHAIN` / `goto CHAIN`.
    Goto(String),
    /// `-j DNAT --to-destination A[:P]` / `dnat to A[:P]`. `to` is `None` when unreadable.
    Dnat {
        /// New destination address.
        to: Option<Ipv4Addr>,
        /// New destination port, if it changes.
        port: Option<u16>,
        /// The target as written.
        raw: String,
    },
    /// `-j SNAT --to-source A` / `snat to A`.
    Snat {
        /// New source address.
        to: Option<Ipv4Addr>,
    },
    /// `-j MASQUERADE` / `masquerade`.
    Masquerade,
    /// `-j REDIRECT` / `redirect`: to the hop itself.
    Redirect,
    /// A non-terminating target (LOG, MARK, counter only, no `-j` at all): the walk goes on.
    Continue(String),
    /// A target we do not know (NFQUEUE, a chain that is not declared, …), verbatim.
    Unknown(String),
}

/// One rule, with its verbatim text and line for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1-based line in the parsed text.
    pub line: usize,
    /// The line as written (trimmed; nft counters kept).
    pub text: String,
    /// All conditions (AND).
    pub matches: Vec<Match>,
    /// What it does.
    pub action: Action,
}

/// Which kind of base chain: filtering (filter, mangle, raw, security) or address translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainKind {
    /// Accept/drop decisions.
    Filter,
    /// DNAT/SNAT/MASQUERADE.
    Nat,
}

/// The netfilter hook a base chain is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Before routing (DNAT happens here).
    Prerouting,
    /// For the host itself.
    Input,
    /// Routed through the host.
    Forward,
    /// Sent by the host.
    Output,
    /// After routing (MASQUERADE happens here).
    Postrouting,
}

impl Hook {
    fn parse(word: &str) -> Option<Hook> {
        Some(match word.to_ascii_lowercase().as_str() {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            _ => return None,
        })
    }
}

/// A base chain's attachment: where it runs and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// Filter or NAT.
    pub kind: ChainKind,
    /// The hook.
    pub hook: Hook,
    /// Lower runs first (iptables: raw -300, mangle -150, dstnat -100, filter 0, srcnat 100).
    pub priority: i32,
}

/// A chain's default verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Packets that fall off the end pass.
    Accept,
    /// Packets that fall off the end are dropped silently.
    Drop,
}

/// A chain: a base chain (hooked) or a user chain (only reached by jumps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Its name (`FORWARD`, `DOCKER-USER`, `forward`).
    pub name: String,
    /// Set for base chains.
    pub base: Option<Base>,
    /// The default verdict of a base chain.
    pub policy: Option<Policy>,
    /// The line that declared the policy (`:FORWARD DROP [0:0]`, `type filter hook forward …`).
    pub policy_text: Option<String>,
    /// 1-based line of that declaration.
    pub line: usize,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// A table (`*nat`, `table inet filter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `ip`, `inet`, `ip6`… for nft; `ip` for iptables.
    pub family: String,
    /// `filter`, `nat`, `mangle`, `raw`, `security`, or an nft table name.
    pub name: String,
    /// Its chains in order.
    pub chains: Vec<Chain>,
}

impl Table {
    /// A chain by name.
    #[must_use]
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

/// Which tool wrote a ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `iptables-legacy` (x_tables).
    Legacy,
    /// `iptables-nft` (nf_tables via the iptables front end).
    IptablesNft,
    /// Native `nft` tables.
    Nft,
    /// `iptables-save` whose backend `iptables -V` did not say.
    Unknown,
}

impl Backend {
    /// A short name for reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Backend::Legacy => "iptables-legacy",
            Backend::IptablesNft => "iptables-nft",
            Backend::Nft => "nftables",
            Backend::Unknown => "iptables",
        }
    }
}

/// All tables one command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The command that printed it (`iptables-save`, `nft list ruleset`), for evidence.
    pub command: String,
    /// The backend.
    pub backend: Backend,
    /// Tables in order.
    pub tables: Vec<Table>,
    /// What the parser was unsure of (unknown syntax it skipped), in plain words.
    pub notes: Vec<String>,
}

impl Ruleset {
    /// Whether it holds any rule or any non-ACCEPT policy.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| {
            t.chains
                .iter()
                .all(|c| c.rules.is_empty() && c.policy != Some(Policy::Drop))
        })
    }

    /// Every rule with its table, in order.
    pub fn rules(&self) -> impl Iterator<Item = (&Table, &Chain, &Rule)> {
        self.tables.iter().flat_map(|t| {
            t.chains
                .iter()
                .flat_map(move |c| c.rules.iter().map(move |r| (t, c, r)))
        })
    }
}

/// A structural error, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

// ------------------------------------------------------------------------------ iptables-save

/// Split a line into words, honouring double quotes and backslash escapes as iptables-save
/// writes them (`--comment "a \"b\""`).
fn shell_words(line: &str, lineno: usize) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(err(lineno, "unterminated quote"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn iptables_base(table: &str, chain: &str) -> Option<Base> {
    let hook = Hook::parse(chain)?;
    if chain != chain.to_ascii_uppercase() {
        return None;
    }
    let (kind, priority) = match table {
        "raw" => (ChainKind::Filter, -300),
        "mangle" => (ChainKind::Filter, -150),
        "nat" => (
            ChainKind::Nat,
            match hook {
                Hook::Prerouting | Hook::Output => -100,
                _ => 100,
            },
        ),
        "filter" => (ChainKind::Filter, 0),
        "security" => (ChainKind::Filter, 50),
        _ => return None,
    };
    Some(Base {
        kind,
        hook,
        priority,
    })
}

/// Parse `iptables-save` output. `backend` is what `iptables -V` (or the command name) said.
///
/// # Errors
/// A rule or policy outside a table, a table not closed by `COMMIT` (truncated output), a rule
/// for an undeclared chain, an unterminated quote, or an option without its value.
pub fn parse_save(text: &str, command: &str, backend: Backend) -> Result<Ruleset, ParseError> {
    let mut rs = Ruleset {
        command: command.to_string(),
        backend,
        tables: Vec::new(),
        notes: Vec::new(),
    };
    let mut open: Option<(Table, usize)> = None;
    let mut last = 0;
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        last = lineno;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            if let Some((t, l)) = &open {
                return Err(err(
                    lineno,
                    format!(
                        "table *{name} starts before *{} (line {l}) has COMMIT",
                        t.name
                    ),
                ));
            }
            open = Some((
                Table {
                    family: "ip".into(),
                    name: name.trim().to_string(),
                    chains: Vec::new(),
                },
                lineno,
            ));
            continue;
        }
        if line == "COMMIT" {
            match open.take() {
                Some((t, _)) => rs.tables.push(t),
                None => return Err(err(lineno, "COMMIT outside a table")),
            }
            continue;
        }
        let Some((table, _)) = open.as_mut() else {
            return Err(err(
                lineno,
                format!(
                    "'{}' outside a table (no *filter / *nat line before it)",
                    clip(line)
                ),
            ));
        };
        if let Some(decl) = line.strip_prefix(':') {
            // `:FORWARD DROP [0:0]` or `:DOCKER-USER - [0:0]`
            let mut parts = decl.split_whitespace();
            let (Some(name), Some(pol)) = (parts.next(), parts.next()) else {
                return Err(err(lineno, format!("malformed chain declaration '{line}'")));
            };
            let base = iptables_base(&table.name, name);
            let policy = match pol {
                "ACCEPT" => Some(Policy::Accept),
                "DROP" => Some(Policy::Drop),
                "-" => None,
                other => {
                    return Err(err(lineno, format!("unknown policy '{other}' for {name}")));
                }
            };
            table.chains.push(Chain {
                name: name.to_string(),
                base,
                policy: if base.is_some() {
                    policy.or(Some(Policy::Accept))
                } else {
                    None
                },
                policy_text: Some(line.to_string()),
                line: lineno,
                rules: Vec::new(),
            });
            continue;
        }
        // `[pkts:bytes] -A …` when saved with -c
        let body = if line.starts_with('[') {
            line.split_once(']').map_or(line, |(_, r)| r.trim_start())
        } else {
            line
        };
        let words = shell_words(body, lineno)?;
        if words.first().map(String::as_str) != Some("-A") {
            rs.notes.push(format!(
                "line {lineno}: skipped '{}' (not a rule)",
                clip(line)
            ));
            continue;
        }
        let Some(chain_name) = words.get(1) else {
            return Err(err(lineno, "-A without a chain name"));
        };
        let rule = parse_rule_words(&words[2..], lineno, line)?;
        let Some(chain) = table.chains.iter_mut().find(|c| &c.name == chain_name) else {
            return Err(err(
                lineno,
                format!(
                    "rule for chain {chain_name}, which *{} does not declare",
                    table.name
                ),
            ));
        };
        chain.rules.push(rule);
    }
    if let Some((t, l)) = open {
        return Err(err(
            last.max(l),
            format!(
                "table *{} (line {l}) has no COMMIT: output truncated?",
                t.name
            ),
        ));
    }
    resolve_jumps(&mut rs);
    Ok(rs)
}

/// `-j NAME` is a jump when NAME is a chain of the same table; anything else unknown is kept as
/// an unknown target.
fn resolve_jumps(rs: &mut Ruleset) {
    for table in &mut rs.tables {
        let names: Vec<String> = table.chains.iter().map(|c| c.name.clone()).collect();
        for chain in &mut table.chains {
            for rule in &mut chain.rules {
                if let Action::Unknown(t) = &rule.action
                    && names.contains(t)
                {
                    rule.action = Action::Jump(t.clone());
                }
                if let Action::Jump(t) | Action::Goto(t) = &rule.action
                    && !names.contains(t)
                {
                    rs.notes.push(format!(
                        "line {}: jump to {t}, which table {} does not declare",
                        rule.line, table.name
                    ));
                    rule.action = Action::Unknown(t.clone());
                }
            }
        }
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 80 {
        let mut out: String = s.chars().take(77).collect();
        out.push('…');
        out
    } else {
        s.to_string()
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Parse the words of one rule after `-A CHAIN`.
fn parse_rule_words(words: &[String], lineno: usize, text: &str) -> Result<Rule, ParseError> {
    let mut matches = Vec::new();
    let mut action: Option<Action> = None;
    let mut target_opts: Vec<(String, String)> = Vec::new();
    let mut negate = false;
    let mut i = 0;
    let value = |i: usize| -> Result<&str, ParseError> {
        words
            .get(i + 1)
            .map(String::as_str)
            .ok_or_else(|| err(lineno, format!("option {} has no value", words[i])))
    };
    while i < words.len() {
        let w = words[i].as_str();
        if w == "!" {
            negate = true;
            i += 1;
            continue;
        }
        let mut push = |cond: Cond, negate: &mut bool| {
            matches.push(Match {
                negated: *negate,
                cond,
            });
            *negate = false;
        };
        if action.is_some() {
            // options after -j belong to the target
            if w.starts_with('-') {
                let v = words
                    .get(i + 1)
                    .filter(|n| !n.starts_with("--"))
                    .cloned()
                    .unwrap_or_default();
                let step = if v.is_empty() { 1 } else { 2 };
                target_opts.push((w.to_string(), v));
                i += step;
            } else {
                i += 1;
            }
            continue;
        }
        match w {
            "-i" | "--in-interface" => {
                push(Cond::InIface(vec![value(i)?.to_string()]), &mut negate);
                i += 2;
            }
            "-o" | "--out-interface" => {
                push(Cond::OutIface(vec![value(i)?.to_string()]), &mut negate);
                i += 2;
            }
            "-s" | "--source" | "-d" | "--destination" => {
                let v = value(i)?;
                let nets: Option<Vec<Net>> = v.split(',').map(Net::parse).collect();
                let cond = match nets {
                    Some(n) if w.starts_with("-s") || w == "--source" => Cond::Src(n),
                    Some(n) => Cond::Dst(n),
                    None => Cond::Unknown(format!("{w} {v}")),
                };
                push(cond, &mut negate);
                i += 2;
            }
            "-p" | "--protocol" => {
                push(
                    Cond::Proto(vec![value(i)?.to_ascii_lowercase()]),
                    &mut negate,
                );
                i += 2;
            }
            "-m" | "--match" => {
                // the module name itself decides nothing; its options do
                value(i)?;
                i += 2;
            }
            "--dport"
            | "--destination-port"
            | "--dports"
            | "--destination-ports"
            | "--sport"
            | "--source-port"
            | "--sports"
            | "--source-ports" => {
                let v = value(i)?;
                let ranges: Option<Vec<PortRange>> = v.split(',').map(PortRange::parse).collect();
                let cond = match ranges {
                    Some(r) if w.starts_with("--d") => Cond::DPort(r),
                    Some(r) => Cond::SPort(r),
                    None => Cond::Unknown(format!("{w} {v}")),
                };
                push(cond, &mut negate);
                i += 2;
            }
            "--ctstate" | "--state" => {
                let v = value(i)?;
                let states: Option<Vec<CtState>> =
                    split_list(v).iter().map(|s| CtState::parse(s)).collect();
                let cond = states.map_or_else(|| Cond::Unknown(format!("{w} {v}")), Cond::CtState);
                push(cond, &mut negate);
                i += 2;
            }
            "--dst-type" => {
                push(Cond::DstType(value(i)?.to_ascii_uppercase()), &mut negate);
                i += 2;
            }
            "--comment" => {
                value(i)?;
                i += 2;
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let t = value(i)?.to_string();
                action = Some(if w == "-g" || w == "--goto" {
                    Action::Goto(t)
                } else {
                    match t.as_str() {
                        "ACCEPT" => Action::Accept,
                        "DROP" => Action::Drop,
                        "RETURN" => Action::Return,
                        "REJECT" => Action::Reject(RejectWith::PortUnreachable),
                        "DNAT" => Action::Dnat {
                            to: None,
                            port: None,
                            raw: String::new(),
                        },
                        "SNAT" => Action::Snat { to: None },
                        "MASQUERADE" => Action::Masquerade,
                        "REDIRECT" => Action::Redirect,
                        "LOG" | "NFLOG" | "ULOG" | "MARK" | "CONNMARK" | "TRACE" | "CT"
                        | "NOTRACK" | "TCPMSS" | "CHECKSUM" | "DSCP" | "TOS" | "TTL"
                        | "CLASSIFY" | "AUDIT" | "SET" => Action::Continue(t),
                        // a user chain or something unknown; resolved once the table is read
                        _ => Action::Unknown(t),
                    }
                });
                i += 2;
            }
            _ if w.starts_with('-') => {
                // an option we do not model: keep it (with its values) as an unknown condition
                let mut j = i + 1;
                while j < words.len() && !words[j].starts_with('-') && words[j] != "!" {
                    j += 1;
                }
                push(Cond::Unknown(words[i..j].join(" ")), &mut negate);
                i = j;
            }
            _ => {
                push(Cond::Unknown(w.to_string()), &mut negate);
                i += 1;
            }
        }
    }
    let mut action = action.unwrap_or_else(|| Action::Continue("(no target)".into()));
    for (opt, v) in &target_opts {
        match (&mut action, opt.as_str()) {
            (Action::Dnat { to, port, raw }, "--to-destination") => {
                let (a, p) = split_addr_port(v);
                *to = a;
                *port = p;
                raw.clone_from(v);
            }
            (Action::Snat { to }, "--to-source") => {
                *to = split_addr_port(v).0;
            }
            (Action::Reject(kind), "--reject-with") => *kind = RejectWith::parse(v),
            _ => {}
        }
    }
    Ok(Rule {
        line: lineno,
        text: text.to_string(),
        matches,
        action,
    })
}

/// `10.0.0.5:5050`, `10.0.0.5`, `10.0.0.5-10.0.0.9:80-90` → first address, first port.
fn split_addr_port(v: &str) -> (Option<Ipv4Addr>, Option<u16>) {
    let (a, p) = match v.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let a = a.split('-').next().unwrap_or(a).trim();
    let port = p
        .and_then(|p| p.split('-').next())
        .and_then(|p| p.trim().parse().ok());
    (a.parse().ok(), port)
}

// ------------------------------------------------------------------------------ nft

/// Words of an nft line: quotes kept together, `{`, `}`, `,` and `;` as their own words, and a
/// `#` comment (handles) dropped.
fn nft_words(line: &str, lineno: usize) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        if quoted {
            cur.push(c);
            if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                cur.push(c);
            }
            '#' => break,
            '{' | '}' | ',' | ';' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                words.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(err(lineno, "unterminated quote"));
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
}

fn nft_priority(words: &[String]) -> i32 {
    // `priority dstnat`, `priority filter + 10`, `priority -100`
    let named = |w: &str| match w {
        "raw" => Some(-300),
        "mangle" => Some(-150),
        "dstnat" => Some(-100),
        "filter" => Some(0),
        "security" => Some(50),
        "srcnat" => Some(100),
        _ => w.parse().ok(),
    };
    let Some(pos) = words.iter().position(|w| w == "priority") else {
        return 0;
    };
    let base = words.get(pos + 1).and_then(|w| named(w)).unwrap_or(0);
    match (
        words.get(pos + 2).map(String::as_str),
        words.get(pos + 3).and_then(|w| w.parse::<i32>().ok()),
    ) {
        (Some("+"), Some(n)) => base + n,
        (Some("-"), Some(n)) => base - n,
        _ => base,
    }
}

/// Parse `nft list ruleset` (best effort). Tables, chains, hooks, priorities and policies are
/// read exactly; rules are read for the statements the hop walk needs (interfaces, addresses,
/// ports, `ct state`, verdicts, `dnat to`, `snat to`, `masquerade`, `reject with …`); anything
/// else in a rule becomes an unknown condition and a note.
///
/// # Errors
/// Unbalanced braces (truncated output), a rule outside a chain, or an unterminated quote.
pub fn parse_nft(text: &str, command: &str) -> Result<Ruleset, ParseError> {
    let mut rs = Ruleset {
        command: command.to_string(),
        backend: Backend::Nft,
        tables: Vec::new(),
        notes: Vec::new(),
    };
    let mut table: Option<(Table, usize)> = None;
    let mut chain: Option<Chain> = None;
    // depth of a block we skip (set, map, flowtable, …)
    let mut skip_depth = 0usize;
    let mut last = 0;
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        last = lineno;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = nft_words(line, lineno)?;
        if skip_depth > 0 {
            for w in &words {
                match w.as_str() {
                    "{" => skip_depth += 1,
                    "}" => skip_depth -= 1,
                    _ => {}
                }
                if skip_depth == 0 {
                    break;
                }
            }
            continue;
        }
        let first = words.first().map_or("", String::as_str);
        match first {
            "table" if table.is_none() => {
                // `table inet filter {`
                let (family, name) = match (words.get(1), words.get(2)) {
                    (Some(n), Some(b)) if b == "{" => ("ip".to_string(), unquote(n)),
                    (Some(f), Some(n)) => (f.clone(), unquote(n)),
                    _ => return Err(err(lineno, format!("malformed table line '{line}'"))),
                };
                table = Some((
                    Table {
                        family,
                        name,
                        chains: Vec::new(),
                    },
                    lineno,
                ));
            }
            "chain" if chain.is_none() && table.is_some() => {
                let Some(name) = words.get(1) else {
                    return Err(err(lineno, "chain without a name"));
                };
                chain = Some(Chain {
                    name: unquote(name),
                    base: None,
                    policy: None,
                    policy_text: None,
                    line: lineno,
                    rules: Vec::new(),
                });
                // one-line chain bodies are not what `nft list` prints; say so
                if words.iter().filter(|w| *w == "{").count() > 0
                    && words.last().is_some_and(|w| w == "}")
                {
                    rs.notes.push(format!(
                        "line {lineno}: one-line chain body not read: '{}'",
                        clip(line)
                    ));
                    if let (Some(c), Some((t, _))) = (chain.take(), table.as_mut()) {
                        t.chains.push(c);
                    }
                }
            }
            "set" | "map" | "flowtable" | "counter" | "quota" | "limit" | "ct" | "secmark"
            | "synproxy"
                if chain.is_none() && table.is_some() =>
            {
                let opens = words.iter().filter(|w| *w == "{").count();
                let closes = words.iter().filter(|w| *w == "}").count();
                skip_depth = opens.saturating_sub(closes);
            }
            "}" => {
                if let Some(c) = chain.take() {
                    match table.as_mut() {
                        Some((t, _)) => t.chains.push(c),
                        None => return Err(err(lineno, "'}' closes a chain outside a table")),
                    }
                } else if let Some((t, _)) = table.take() {
                    rs.tables.push(t);
                } else {
                    return Err(err(lineno, "unbalanced '}'"));
                }
            }
            "type" if chain.is_some() => {
                // `type filter hook forward priority filter; policy drop;`
                let Some(c) = chain.as_mut() else { continue };
                let kind = match words.get(1).map(String::as_str) {
                    Some("nat") => ChainKind::Nat,
                    _ => ChainKind::Filter,
                };
                let hook = words
                    .iter()
                    .position(|w| w == "hook")
                    .and_then(|p| words.get(p + 1))
                    .and_then(|h| Hook::parse(h));
                if let Some(hook) = hook {
                    c.base = Some(Base {
                        kind,
                        hook,
                        priority: nft_priority(&words),
                    });
                    c.policy = Some(Policy::Accept);
                } else {
                    rs.notes.push(format!(
                        "line {lineno}: chain {} has a hook we do not evaluate",
                        c.name
                    ));
                }
                if let Some(p) = words.iter().position(|w| w == "policy") {
                    c.policy = match words.get(p + 1).map(String::as_str) {
                        Some("drop") => Some(Policy::Drop),
                        _ => Some(Policy::Accept),
                    };
                }
                c.policy_text = Some(line.to_string());
            }
            "policy" if chain.is_some() => {
                if let Some(c) = chain.as_mut() {
                    c.policy = match words.get(1).map(String::as_str) {
                        Some("drop") => Some(Policy::Drop),
                        _ => Some(Policy::Accept),
                    };
                    c.policy_text = Some(line.to_string());
                }
            }
            _ => {
                let Some(c) = chain.as_mut() else {
                    if table.is_some() {
                        rs.notes
                            .push(format!("line {lineno}: skipped '{}'", clip(line)));
                        continue;
                    }
                    return Err(err(lineno, format!("'{}' outside a table", clip(line))));
                };
                let rule = parse_nft_rule(&words, lineno, line);
                for m in &rule.matches {
                    if let Cond::Unknown(u) = &m.cond {
                        rs.notes.push(format!(
                            "line {lineno}: not understood in a rule of {}: '{}'",
                            c.name,
                            clip(u)
                        ));
                    }
                }
                c.rules.push(rule);
            }
        }
    }
    if chain.is_some() || table.is_some() {
        return Err(err(last, "unbalanced braces: output truncated?"));
    }
    resolve_jumps(&mut rs);
    Ok(rs)
}

/// Collect a value: a single word, or a `{ a, b }` set. Returns the values and the next index.
fn nft_value(words: &[String], i: usize) -> (Vec<String>, usize) {
    match words.get(i).map(String::as_str) {
        Some("{") => {
            let mut vals = Vec::new();
            let mut j = i + 1;
            while j < words.len() && words[j] != "}" {
                if words[j] != "," {
                    vals.push(unquote(&words[j]));
                }
                j += 1;
            }
            // past the `}`; a set left open (a cut-off line) ends with the words
            (vals, (j + 1).min(words.len()))
        }
        Some(w) => {
            // `established,related` was split on the commas
            let mut vals = vec![unquote(w)];
            let mut j = i + 1;
            while words.get(j).is_some_and(|w| w == ",") && j + 1 < words.len() {
                vals.push(unquote(&words[j + 1]));
                j += 2;
            }
            (vals, j)
        }
        None => (Vec::new(), i),
    }
}

fn parse_nft_rule(words: &[String], lineno: usize, text: &str) -> Rule {
    let mut matches = Vec::new();
    let mut action: Option<Action> = None;
    let mut unknown: Vec<String> = Vec::new();
    let mut i = 0;
    let w = |k: usize| words.get(k).map_or("", String::as_str);
    // an operator after a selector: `!=` / `ne` negate; `==` / `eq` are noise
    let op = |k: usize| -> (bool, usize) {
        match words.get(k).map(String::as_str) {
            Some("!=" | "ne") => (true, k + 1),
            Some("==" | "eq") => (false, k + 1),
            _ => (false, k),
        }
    };
    while i < words.len() {
        let word = w(i);
        let mut cond = |c: Cond, neg: bool| {
            matches.push(Match {
                negated: neg,
                cond: c,
            })
        };
        match (word, w(i + 1)) {
            ("iifname" | "iif", _) | ("meta", "iifname" | "iif") => {
                let start = if word == "meta" { i + 2 } else { i + 1 };
                let (neg, k) = op(start);
                let (vals, next) = nft_value(words, k);
                cond(Cond::InIface(vals), neg);
                i = next;
            }
            ("oifname" | "oif", _) | ("meta", "oifname" | "oif") => {
                let start = if word == "meta" { i + 2 } else { i + 1 };
                let (neg, k) = op(start);
                let (vals, next) = nft_value(words, k);
                cond(Cond::OutIface(vals), neg);
                i = next;
            }
            ("ip", "saddr" | "daddr") => {
                let (neg, k) = op(i + 2);
                let (vals, next) = nft_value(words, k);
                let nets: Option<Vec<Net>> = vals.iter().map(|v| Net::parse(v)).collect();
                match nets {
                    Some(n) if w(i + 1) == "saddr" => cond(Cond::Src(n), neg),
                    Some(n) => cond(Cond::Dst(n), neg),
                    None => cond(Cond::Unknown(words[i..next].join(" ")), neg),
                }
                i = next;
            }
            ("ip", "protocol") | ("meta", "l4proto") => {
                let (neg, k) = op(i + 2);
                let (vals, next) = nft_value(words, k);
                cond(Cond::Proto(vals), neg);
                i = next;
            }
            ("tcp" | "udp" | "th", "dport" | "sport") => {
                let (neg, k) = op(i + 2);
                let (vals, next) = nft_value(words, k);
                if word != "th" {
                    cond(Cond::Proto(vec![word.to_string()]), false);
                }
                let ranges: Option<Vec<PortRange>> =
                    vals.iter().map(|v| PortRange::parse(v)).collect();
                match ranges {
                    Some(r) if w(i + 1) == "dport" => cond(Cond::DPort(r), neg),
                    Some(r) => cond(Cond::SPort(r), neg),
                    None => cond(Cond::Unknown(words[i..next].join(" ")), neg),
                }
                i = next;
            }
            ("ct", "state" | "status") => {
                let (neg, k) = op(i + 2);
                let (vals, next) = nft_value(words, k);
                let states: Option<Vec<CtState>> = vals.iter().map(|v| CtState::parse(v)).collect();
                match states {
                    Some(s) => cond(Cond::CtState(s), neg),
                    None => cond(Cond::Unknown(words[i..next].join(" ")), neg),
                }
                i = next;
            }
            ("fib", "daddr") if w(i + 2) == "type" => {
                let (neg, k) = op(i + 3);
                let (vals, next) = nft_value(words, k);
                let t = vals
                    .first()
                    .cloned()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                cond(Cond::DstType(t), neg);
                i = next;
            }
            ("counter", _) => {
                i += 1;
                while matches!(w(i), "packets" | "bytes") {
                    i += 2;
                }
            }
            ("comment", _) => i += 2,
            ("log", _) => {
                i += 1;
                while matches!(w(i), "prefix" | "level" | "group" | "snaplen" | "flags") {
                    i += 2;
                }
            }
            ("accept", _) => {
                action = Some(Action::Accept);
                i += 1;
            }
            ("drop", _) => {
                action = Some(Action::Drop);
                i += 1;
            }
            ("return", _) => {
                action = Some(Action::Return);
                i += 1;
            }
            ("continue", _) => {
                action = Some(Action::Continue("continue".into()));
                i += 1;
            }
            ("jump", t) => {
                action = Some(Action::Jump(unquote(t)));
                i += 2;
            }
            ("goto", t) => {
                action = Some(Action::Goto(unquote(t)));
                i += 2;
            }
            ("reject", _) => {
                // `reject`, `reject with icmp type host-unreachable`, `reject with icmp
                // host-unreachable`, `reject with icmpx admin-prohibited`, `reject with tcp reset`
                let mut kind = RejectWith::PortUnreachable;
                i += 1;
                if w(i) == "with" {
                    match w(i + 1) {
                        "tcp" => {
                            kind = RejectWith::TcpReset;
                            i += 3;
                        }
                        "icmp" | "icmpx" | "icmpv6" => {
                            let k = if w(i + 2) == "type" { i + 3 } else { i + 2 };
                            kind = RejectWith::parse(w(k));
                            i = k + 1;
                        }
                        other => {
                            kind = RejectWith::Other(other.to_string());
                            i += 2;
                        }
                    }
                }
                action = Some(Action::Reject(kind));
            }
            ("dnat" | "snat", _) => {
                let mut k = i + 1;
                if matches!(w(k), "ip" | "inet") {
                    k += 1;
                }
                if w(k) == "to" {
                    k += 1;
                }
                let v = w(k).to_string();
                let (a, p) = split_addr_port(&v);
                action = Some(if word == "dnat" {
                    Action::Dnat {
                        to: a,
                        port: p,
                        raw: v,
                    }
                } else {
                    Action::Snat { to: a }
                });
                if a.is_none() {
                    unknown.push(words[i..=k.min(words.len() - 1)].join(" "));
                }
                i = k + 1;
            }
            ("masquerade", _) => {
                action = Some(Action::Masquerade);
                i += 1;
                while matches!(w(i), "random" | "persistent" | "fully-random" | ",") {
                    i += 1;
                }
                if w(i) == "to" {
                    i += 2;
                }
            }
            ("redirect", _) => {
                action = Some(Action::Redirect);
                i += 1;
                if w(i) == "to" {
                    i += 2;
                }
            }
            _ => {
                unknown.push(word.to_string());
                i += 1;
            }
        }
    }
    if !unknown.is_empty() {
        matches.push(Match {
            negated: false,
            cond: Cond::Unknown(unknown.join(" ")),
        });
    }
    Rule {
        line: lineno,
        text: text.to_string(),
        matches,
        action: action.unwrap_or_else(|| Action::Continue("(no verdict)".into())),
    }
}

// ------------------------------------------------------------------------------ evaluation

/// A packet as the hop sees it at one hook. `None` fields are unknown: conditions on them match
/// "maybe".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    /// Incoming interface.
    pub iif: Option<String>,
    /// Outgoing interface (after routing).
    pub oif: Option<String>,
    /// Source address.
    pub src: Option<Ipv4Addr>,
    /// Destination address.
    pub dst: Option<Ipv4Addr>,
    /// Protocol (`tcp`).
    pub proto: String,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// Every conntrack state this packet has (`New` + `Dnat` for a forwarded first packet).
    pub states: Vec<CtState>,
    /// The hop's own addresses, for `--dst-type LOCAL`.
    pub local: Vec<Ipv4Addr>,
}

/// Three-valued match result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
        }
    }
    fn from(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
}

fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix(['+', '*']) {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn cond_matches(cond: &Cond, p: &Packet) -> Tri {
    match cond {
        Cond::InIface(names) => p.iif.as_ref().map_or(Tri::Maybe, |i| {
            Tri::from(names.iter().any(|n| iface_matches(n, i)))
        }),
        Cond::OutIface(names) => p.oif.as_ref().map_or(Tri::Maybe, |o| {
            Tri::from(names.iter().any(|n| iface_matches(n, o)))
        }),
        Cond::Src(nets) => p.src.map_or(Tri::Maybe, |a| {
            Tri::from(nets.iter().any(|n| n.contains(a)))
        }),
        Cond::Dst(nets) => p.dst.map_or(Tri::Maybe, |a| {
            Tri::from(nets.iter().any(|n| n.contains(a)))
        }),
        Cond::Proto(protos) => Tri::from(
            protos
                .iter()
                .any(|x| x == &p.proto || x == "all" || x == "6" && p.proto == "tcp"),
        ),
        Cond::DPort(r) => p
            .dport
            .map_or(Tri::Maybe, |x| Tri::from(r.iter().any(|r| r.contains(x)))),
        Cond::SPort(r) => p
            .sport
            .map_or(Tri::Maybe, |x| Tri::from(r.iter().any(|r| r.contains(x)))),
        Cond::CtState(states) => Tri::from(states.iter().any(|s| p.states.contains(s))),
        Cond::DstType(t) if t == "LOCAL" => p.dst.map_or(Tri::Maybe, |d| {
            Tri::from(p.local.contains(&d) || d.is_loopback())
        }),
        Cond::DstType(_) | Cond::Unknown(_) => Tri::Maybe,
    }
}

fn rule_matches(rule: &Rule, p: &Packet) -> Tri {
    let mut out = Tri::Yes;
    for m in &rule.matches {
        let r = cond_matches(&m.cond, p);
        let r = if m.negated { r.not() } else { r };
        match r {
            Tri::No => return Tri::No,
            Tri::Maybe => out = Tri::Maybe,
            Tri::Yes => {}
        }
    }
    out
}

/// What a hook did to a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed (an ACCEPT, or every chain's policy accepted).
    Accept,
    /// Dropped by a rule.
    Drop,
    /// Dropped by a chain's DROP policy.
    PolicyDrop,
    /// Rejected, with what the client gets back.
    Reject(RejectWith),
    /// NAT: destination rewritten.
    Dnat {
        /// New address.
        to: Option<Ipv4Addr>,
        /// New port.
        port: Option<u16>,
        /// As written.
        raw: String,
    },
    /// NAT: source rewritten to a fixed address.
    Snat(Option<Ipv4Addr>),
    /// NAT: source rewritten to the outgoing interface's address.
    Masquerade,
    /// NAT: redirected to the hop itself.
    Redirect,
    /// A NAT hook with no translation for this packet.
    NoNat,
}

/// Where a decision was taken: which table and chain (for nft: `inet firewall` / `forward`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The ruleset's backend.
    pub backend: Backend,
    /// Table family (`ip`, `inet`).
    pub family: String,
    /// Table name.
    pub table: String,
    /// Chain name (the chain holding the deciding rule, or the base chain whose policy decided).
    pub chain: String,
}

/// The outcome of [`evaluate`], with the lines that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    /// What happened.
    pub verdict: Verdict,
    /// The rule that decided, with its ruleset.
    pub rule: Option<(&'a Ruleset, &'a Rule)>,
    /// The base chain whose policy decided (for `PolicyDrop`), with its ruleset.
    pub policy: Option<(&'a Ruleset, &'a Chain)>,
    /// Rules whose conditions we could not fully evaluate and that were given the benefit of
    /// the doubt (or skipped): the decision is unsure if this is not empty.
    pub unsure: Vec<(&'a Ruleset, &'a Rule)>,
    /// Where it was decided (for drops, rejects and translations).
    pub place: Option<Place>,
}

/// How a chain walk ended.
enum Walk<'a> {
    /// A final verdict by this rule, in this chain.
    Final(Verdict, &'a Rule, &'a Chain),
    /// Fell off the end, or RETURN.
    Fallthrough,
}

/// Which outcomes get the benefit of the doubt when a rule matches only "maybe": the ones that
/// let traffic through (an ACCEPT in a filter chain, a translation in a NAT chain). A rule we
/// cannot read never blocks on its own; it is reported as unsure instead.
fn favourable(kind: ChainKind, action: &Action) -> bool {
    match kind {
        ChainKind::Filter => matches!(action, Action::Accept),
        ChainKind::Nat => matches!(
            action,
            Action::Dnat { .. } | Action::Snat { .. } | Action::Masquerade
        ),
    }
}

fn walk<'a>(
    rs: &'a Ruleset,
    table: &'a Table,
    chain: &'a Chain,
    kind: ChainKind,
    p: &Packet,
    depth: usize,
    unsure: &mut Vec<(&'a Ruleset, &'a Rule)>,
) -> Walk<'a> {
    if depth > 32 {
        return Walk::Fallthrough;
    }
    for rule in &chain.rules {
        let m = rule_matches(rule, p);
        let taken = match m {
            Tri::Yes => true,
            Tri::No => false,
            Tri::Maybe => {
                if !matches!(rule.action, Action::Continue(_)) {
                    unsure.push((rs, rule));
                }
                matches!(rule.action, Action::Jump(_) | Action::Goto(_))
                    || favourable(kind, &rule.action)
            }
        };
        if !taken {
            continue;
        }
        match &rule.action {
            Action::Accept => return Walk::Final(Verdict::Accept, rule, chain),
            Action::Drop => return Walk::Final(Verdict::Drop, rule, chain),
            Action::Reject(k) => return Walk::Final(Verdict::Reject(k.clone()), rule, chain),
            Action::Return => return Walk::Fallthrough,
            Action::Dnat { to, port, raw } => {
                return Walk::Final(
                    Verdict::Dnat {
                        to: *to,
                        port: *port,
                        raw: raw.clone(),
                    },
                    rule,
                    chain,
                );
            }
            Action::Snat { to } => return Walk::Final(Verdict::Snat(*to), rule, chain),
            Action::Masquerade => return Walk::Final(Verdict::Masquerade, rule, chain),
            Action::Redirect => return Walk::Final(Verdict::Redirect, rule, chain),
            Action::Jump(target) | Action::Goto(target) => {
                if let Some(sub) = table.chain(target)
                    && let Walk::Final(v, r, c) = walk(rs, table, sub, kind, p, depth + 1, unsure)
                {
                    return Walk::Final(v, r, c);
                }
                if matches!(rule.action, Action::Goto(_)) {
                    return Walk::Fallthrough;
                }
            }
            Action::Continue(_) => {}
            Action::Unknown(_) => unsure.push((rs, rule)),
        }
    }
    Walk::Fallthrough
}

/// Follow a packet through every base chain of `kind` at `hook`, across all rulesets (legacy and
/// nft tables both see every packet), in priority order.
///
/// Filter hooks: the first DROP/REJECT (or DROP policy) anywhere wins; otherwise `Accept`.
/// NAT hooks: the first translation wins; otherwise `NoNat`.
#[must_use]
pub fn evaluate<'a>(
    rulesets: &'a [Ruleset],
    kind: ChainKind,
    hook: Hook,
    p: &Packet,
) -> Decision<'a> {
    let mut chains: Vec<(i32, &Ruleset, &Table, &Chain)> = Vec::new();
    for rs in rulesets {
        for t in &rs.tables {
            for c in &t.chains {
                if let Some(b) = c.base
                    && b.kind == kind
                    && b.hook == hook
                {
                    chains.push((b.priority, rs, t, c));
                }
            }
        }
    }
    chains.sort_by_key(|(prio, ..)| *prio);
    let mut unsure = Vec::new();
    let mut accepted_by: Option<(&Ruleset, &Rule)> = None;
    for (_, rs, table, chain) in chains {
        let place = |c: &Chain| Place {
            backend: rs.backend,
            family: table.family.clone(),
            table: table.name.clone(),
            chain: c.name.clone(),
        };
        match walk(rs, table, chain, kind, p, 0, &mut unsure) {
            Walk::Final(Verdict::Accept, r, _) => {
                if kind == ChainKind::Filter {
                    accepted_by = Some((rs, r));
                }
                // NAT: ACCEPT ends this chain without a translation; the next chain may still
            }
            Walk::Final(v, r, c) => {
                return Decision {
                    verdict: v,
                    rule: Some((rs, r)),
                    policy: None,
                    unsure,
                    place: Some(place(c)),
                };
            }
            Walk::Fallthrough => {
                if chain.policy == Some(Policy::Drop) {
                    return Decision {
                        verdict: Verdict::PolicyDrop,
                        rule: None,
                        policy: Some((rs, chain)),
                        unsure,
                        place: Some(place(chain)),
                    };
                }
            }
        }
    }
    Decision {
        verdict: if kind == ChainKind::Filter {
            Verdict::Accept
        } else {
            Verdict::NoNat
        },
        rule: accepted_by,
        policy: None,
        unsure,
        place: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB_BASTION: &str = "\
# Generated by iptables-save v1.8.9 (nf_tables) on Fri Nov 27 18:25:57 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -d 10.88.2.2/32 -i pd-k8snode -o pd-linuxhost -p tcp -m tcp --dport 5050 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.88.1.1/32 -i pd-k8snode -p tcp -m tcp --dport 5050 -j DNAT --to-destination 10.88.2.2:5050
-A POSTROUTING -d 10.88.2.2/32 -o pd-linuxhost -p tcp -m tcp --dport 5050 -j MASQUERADE
COMMIT
";

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn pkt(dst: &str, dport: u16) -> Packet {
        Packet {
            iif: Some("pd-k8snode".into()),
            oif: Some("pd-linuxhost".into()),
            src: Some(ip("10.88.1.2")),
            dst: Some(ip(dst)),
            proto: "tcp".into(),
            sport: None,
            dport: Some(dport),
            states: vec![CtState::New, CtState::Dnat],
            local: vec![ip("10.88.1.1")],
        }
    }

    /// The lab's rules parse into tables, policies and typed rules.
    #[test]
    fn parses_lab_rules() {
        let rs = parse_save(LAB_BASTION, "iptables-save", Backend::IptablesNft).unwrap();
        assert_eq!(rs.tables.len(), 2);
        let fwd = rs.tables[0].chain("FORWARD").unwrap();
        assert_eq!(fwd.policy, Some(Policy::Drop));
        assert_eq!(fwd.policy_text.as_deref(), Some(":FORWARD DROP [0:0]"));
        assert_eq!(fwd.rules.len(), 2);
        assert_eq!(fwd.rules[1].line, 7);
        let pre = rs.tables[1].chain("PREROUTING").unwrap();
        assert_eq!(
            pre.rules[0].action,
            Action::Dnat {
                to: Some(ip("10.88.2.2")),
                port: Some(5050),
                raw: "10.88.2.2:5050".into()
            }
        );
        assert!(rs.notes.is_empty(), "{:?}", rs.notes);
    }

    /// FORWARD matches the post-DNAT address; the DROP policy decides what no rule accepts.
    #[test]
    fn forward_walk() {
        let rs = vec![parse_save(LAB_BASTION, "iptables-save", Backend::IptablesNft).unwrap()];
        let d = evaluate(
            &rs,
            ChainKind::Filter,
            Hook::Forward,
            &pkt("10.88.2.2", 5050),
        );
        assert_eq!(d.verdict, Verdict::Accept);
        let d = evaluate(&rs, ChainKind::Filter, Hook::Forward, &pkt("10.88.2.2", 80));
        assert_eq!(d.verdict, Verdict::PolicyDrop);
        let d = evaluate(
            &rs,
            ChainKind::Filter,
            Hook::Forward,
            &pkt("10.88.1.1", 5050),
        );
        assert_eq!(d.verdict, Verdict::PolicyDrop);
        let mut reply = pkt("10.88.1.2", 0);
        reply.dport = None;
        reply.states = vec![CtState::Established];
        let d = evaluate(&rs, ChainKind::Filter, Hook::Forward, &reply);
        assert_eq!(d.verdict, Verdict::Accept);
        let d = evaluate(
            &rs,
            ChainKind::Nat,
            Hook::Prerouting,
            &pkt("10.88.1.1", 5050),
        );
        assert!(matches!(d.verdict, Verdict::Dnat { to: Some(a), .. } if a == ip("10.88.2.2")));
        let d = evaluate(&rs, ChainKind::Nat, Hook::Prerouting, &pkt("10.88.1.1", 80));
        assert_eq!(d.verdict, Verdict::NoNat);
    }

    /// Negations, user chains, REJECT kinds, quoted comments and unknown options.
    #[test]
    fn negation_user_chains_reject_unknown() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
:DOCKER-USER - [0:0]\n\
-A FORWARD -j DOCKER-USER\n\
-A DOCKER-USER ! -s 10.0.0.0/8 -m comment --comment \"only \\\"lab\\\" nets\" -j DROP\n\
-A DOCKER-USER -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-admin-prohibited\n\
-A DOCKER-USER -m mark --mark 0x1 -j ACCEPT\n\
-A DOCKER-USER -j RETURN\n\
COMMIT\n";
        let rs = vec![parse_save(text, "iptables-save", Backend::Legacy).unwrap()];
        let mut p = pkt("10.88.2.2", 80);
        p.src = Some(ip("192.168.1.1"));
        let d = evaluate(&rs, ChainKind::Filter, Hook::Forward, &p);
        assert_eq!(d.verdict, Verdict::Drop);
        assert_eq!(d.rule.unwrap().1.line, 7);
        p.src = Some(ip("10.1.1.1"));
        let d = evaluate(&rs, ChainKind::Filter, Hook::Forward, &p);
        assert_eq!(d.verdict, Verdict::Reject(RejectWith::AdminProhibited));
        // the mark rule is unknown: an ACCEPT gets the benefit of the doubt, and says so
        p.dport = Some(5050);
        let d = evaluate(&rs, ChainKind::Filter, Hook::Forward, &p);
        assert_eq!(d.verdict, Verdict::Accept);
        assert_eq!(d.unsure.len(), 1);
        assert!(matches!(&d.unsure[0].1.matches[0].cond, Cond::Unknown(u) if u == "--mark 0x1"));
    }

    /// Structural errors carry the line; nothing panics on junk.
    #[test]
    fn errors_have_lines() {
        let e = parse_save("-A FORWARD -j ACCEPT\n", "x", Backend::Unknown).unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_save(
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j ACCEPT\n",
            "x",
            Backend::Unknown,
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("COMMIT"));
        let e = parse_save(
            "*filter\n-A NOPE -j ACCEPT\nCOMMIT\n",
            "x",
            Backend::Unknown,
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_save(
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -d\nCOMMIT\n",
            "x",
            Backend::Unknown,
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_save(
            "*filter\n:F - [0:0]\n-A F -m comment --comment \"x\nCOMMIT\n",
            "x",
            Backend::Unknown,
        )
        .unwrap_err();
        assert!(e.message.contains("quote"));
        for junk in [
            "",
            "\u{0}\u{1}",
            "*",
            ":",
            "*nat\n:",
            "*nat\n-A",
            "}\n{",
            "[1:2]",
            "*f\n[1:2",
        ] {
            let _ = parse_save(junk, "x", Backend::Unknown);
            let _ = parse_nft(junk, "x");
        }
    }

    /// Fuzzing regression: a set left open at the end of a rule (a line cut off mid-set) is read
    /// as far as it goes, never past the rule's words.
    #[test]
    fn nft_set_left_open() {
        let text = "table ip nat {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tiifname \"pd-k8snode\" ip daddr 0.88.1.1 tcp dport { 80at; policy accept;\n\t\tip saddr { 10.0.0.1\n\t\tct state { established\n\t}\n}\n";
        // whatever the verdict on the cut-off rules, reading them ends
        let _ = parse_nft(text, "nft list ruleset");
        let words: Vec<String> = ["tcp", "dport", "{", "80", ","]
            .iter()
            .map(ToString::to_string)
            .collect();
        let (vals, next) = nft_value(&words, 2);
        assert_eq!(vals, ["80"]);
        assert_eq!(next, words.len());
    }

    /// nft: hooks, priorities, policies, sets, dnat/masquerade and reject kinds.
    #[test]
    fn nft_ruleset() {
        let text = r#"table inet filter {
	set allowed {
		type ipv4_addr
		elements = { 10.88.3.2, 10.88.3.3 }
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state { established, related } counter packets 0 bytes 0 accept
		iifname "eth0" ip daddr 10.88.3.2 tcp dport { 80, 5050 } accept
		tcp dport 8080 reject with icmp type host-unreachable
		tcp dport 8081 reject with tcp reset
		ip saddr @blocked drop
	}
}
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "eth0" ip daddr 10.88.1.1 tcp dport 5050 counter packets 3 bytes 180 dnat to 10.88.3.2:5050 # handle 7
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth1" masquerade
	}
}
"#;
        let rs = parse_nft(text, "nft list ruleset").unwrap();
        assert_eq!(rs.tables.len(), 2);
        let fwd = rs.tables[0].chain("forward").unwrap();
        assert_eq!(fwd.policy, Some(Policy::Drop));
        assert_eq!(fwd.base.unwrap().hook, Hook::Forward);
        assert_eq!(fwd.rules.len(), 6);
        assert_eq!(
            fwd.rules[3].action,
            Action::Reject(RejectWith::HostUnreachable)
        );
        assert_eq!(fwd.rules[4].action, Action::Reject(RejectWith::TcpReset));
        assert_eq!(
            rs.tables[1]
                .chain("prerouting")
                .unwrap()
                .base
                .unwrap()
                .priority,
            -100
        );
        let all = vec![rs];
        let mut p = pkt("10.88.1.1", 5050);
        p.iif = Some("eth0".into());
        let d = evaluate(&all, ChainKind::Nat, Hook::Prerouting, &p);
        assert!(matches!(
            d.verdict,
            Verdict::Dnat {
                port: Some(5050),
                ..
            }
        ));
        p.dst = Some(ip("10.88.3.2"));
        p.oif = Some("eth1".into());
        assert_eq!(
            evaluate(&all, ChainKind::Filter, Hook::Forward, &p).verdict,
            Verdict::Accept
        );
        p.dport = Some(8080);
        assert_eq!(
            evaluate(&all, ChainKind::Filter, Hook::Forward, &p).verdict,
            Verdict::Reject(RejectWith::HostUnreachable)
        );
        p.dport = Some(9999);
        // `ip saddr @blocked drop` is unknown: not taken, so the policy decides
        let d = evaluate(&all, ChainKind::Filter, Hook::Forward, &p);
        assert_eq!(d.verdict, Verdict::PolicyDrop);
        assert!(!d.unsure.is_empty());
        let place = d.place.unwrap();
        assert_eq!(
            (place.family.as_str(), place.table.as_str()),
            ("inet", "filter")
        );
        assert_eq!(
            (place.chain.as_str(), place.backend),
            ("forward", Backend::Nft)
        );
        assert_eq!(
            evaluate(&all, ChainKind::Nat, Hook::Postrouting, &p).verdict,
            Verdict::Masquerade
        );
    }

    /// Networks and port ranges.
    #[test]
    fn nets_and_ports() {
        let n = Net::parse("10.88.0.0/16").unwrap();
        assert!(n.contains(ip("10.88.3.2")));
        assert!(!n.contains(ip("10.89.0.1")));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(PortRange::parse("8000:8080").unwrap().contains(8050));
        assert!(PortRange::parse("8000-8080").unwrap().contains(8080));
        assert_eq!(split_addr_port("10.0.0.5"), (Some(ip("10.0.0.5")), None));
    }
}
