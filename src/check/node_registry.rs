//! `registry.scheme`, node side: from what a node's containerd version, `config.toml` and
//! `certs.d` say, what containerd will do for the registry, and why a pull will try HTTPS.
//!
//! Three steps, each pure except the first, which only produces text to run elsewhere:
//!
//! 1. [`GATHER_SCRIPT`] runs on the node (over SSH, as root) and prints everything needed, in
//!    delimited sections: the running containerd's version and `--config`, the config file and
//!    `containerd config dump`, and for every directory that could be a `config_path` root, the
//!    registry's candidate directories with their `hosts.toml`. The shell parses no TOML.
//! 2. [`parse_gathered`] turns that output back into [`NodeFacts`].
//! 3. [`evaluate`] applies containerd's rules for its version (DOMAIN.md §5, LAB.md) and says which
//!    scheme containerd will use and why, in plain words with the lines that prove it;
//!    [`findings`] turns a wrong scheme into a `http_vs_https` finding for the node.

use crate::model::{
    Class, Evidence, EvidenceSource, Finding, FindingId, FixRef, Severity, Subject, Target,
    TargetKind,
};
use crate::parse::containerd::{
    CRI_IMAGES, ContainerdConfig, CriSection, GRPC_CRI, HostTree, HostsToml, Located, Mirror,
    SHORT_CRI, TomlError, parse_config, parse_hosts_toml, table_name,
};
use std::fmt;

/// The check id.
pub const CHECK_ID: &str = "registry.scheme";

/// The `config_path` containerd 2.2+ uses when none is set (Linux).
pub const DEFAULT_CONFIG_PATH_22: &str = "/etc/containerd/certs.d:/etc/docker/certs.d";

/// The single directory the `single-config-path` fix sets.
const SINGLE_ROOT: &str = "/etc/containerd/certs.d";

/// One POSIX `sh` script, run on a node as root (or through sudo), with the registry as images
/// name it in `PD_REGISTRY` (`host:port`). Optional `PD_CONTAINERD_CONFIG` overrides the config
/// file (otherwise: the running daemon's `--config`, else `/etc/containerd/config.toml`).
///
/// Read-only; reads nothing from stdin; each file capped at 64 KiB, each listing at 200 lines;
/// `containerd` invocations under `timeout` when the node has one. Works with dash, bash and
/// BusyBox `sh` (GNU or BusyBox coreutils). Secrets in the config (`password`, `auth`,
/// `identitytoken`, `Authorization` headers) are replaced before they leave the node.
pub const GATHER_SCRIPT: &str = r##"# pulldoctor gather v1: registry.scheme, node side. POSIX sh, read-only, bounded, never prompts.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
LC_ALL=C
export PATH LC_ALL
exec </dev/null
M="@@pulldoctor.$$"
CAP=65536
printf '%s gather v1\n' "$M"
# markers: arguments joined by spaces whatever IFS is
b() { printf '%s begin' "$M"; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; }
# a section body always ends with one extra newline, which the parser removes
e() { printf '\n%s end' "$M"; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; }
# timeout(1): coreutils and new BusyBox take SECS, old BusyBox takes -t SECS
if timeout 5 true >/dev/null 2>&1; then T="timeout 15"
elif timeout -t 5 true >/dev/null 2>&1; then T="timeout -t 15"
else T=""; fi
# registry credentials and auth headers never leave the node
redact() {
  sed -e 's/^\([[:space:]]*["'\'']\{0,1\}password["'\'']\{0,1\}[[:space:]]*=\).*/\1 "<redacted>"/' \
      -e 's/^\([[:space:]]*["'\'']\{0,1\}auth["'\'']\{0,1\}[[:space:]]*=\).*/\1 "<redacted>"/' \
      -e 's/^\([[:space:]]*["'\'']\{0,1\}identitytoken["'\'']\{0,1\}[[:space:]]*=\).*/\1 "<redacted>"/' \
      -e 's/^\([[:space:]]*["'\'']\{0,1\}registry_token["'\'']\{0,1\}[[:space:]]*=\).*/\1 "<redacted>"/' \
      -e 's/^\([[:space:]]*["'\'']\{0,1\}[Aa]uthorization["'\'']\{0,1\}[[:space:]]*=\).*/\1 "<redacted>"/'
}
mtime() { stat -c %Y "$1" 2>/dev/null || date -r "$1" +%s 2>/dev/null || echo '?'; }
# file SECTION PATH: the first CAP bytes of a regular file, redacted
file() {
  if [ -f "$2" ]; then
    s=$(wc -c <"$2" 2>/dev/null | tr -d ' \t')
    t=0; [ "${s:-0}" -gt "$CAP" ] 2>/dev/null && t=1
    b "$1" "size=${s:-?}" "mtime=$(mtime "$2")" "truncated=$t" "path=$2"
    dd if="$2" bs="$CAP" count=1 2>/dev/null | redact
    e "$1" "rc=0"
  else
    b "$1" "missing=1" "path=$2"
    ls -ld "$2" 2>&1 | head -n 5
    e "$1" "rc=1"
  fi
}

R=${PD_REGISTRY:-}
case "$R" in *[!]A-Za-z0-9._:[-]*|.*) R_BAD=1 ;; *) R_BAD=0 ;; esac
H=""; U=""
if [ -n "$R" ] && [ "$R_BAD" = 0 ]; then
  H=${R%:*}
  # containerd's hostDirectory(): the last ":port" becomes "_port_"
  if [ "$H" != "$R" ] && [ -n "$H" ]; then U="${H}_${R##*:}_"; else H=""; fi
fi
b meta
echo "registry=$R"
echo "registry_valid=$((1 - R_BAD))"
echo "uid=$(id -u 2>/dev/null)"
echo "hostname=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null)"
echo "now=$(date +%s 2>/dev/null)"
echo "btime=$(sed -n 's/^btime //p' /proc/stat 2>/dev/null)"
echo "clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)"
e meta

# the running daemons: which binary, which --config (k3s, RKE2 and others move both), since when
MYNS=$(readlink /proc/self/ns/mnt 2>/dev/null)
CFG=${PD_CONTAINERD_CONFIG:-}
BIN=""
n=0
b process
for d in /proc/[0-9]*; do
  # 2>/dev/null first: the process may be gone, and the redirection error must not show
  c=""; read -r c 2>/dev/null <"$d/comm" || continue
  [ "$c" = containerd ] || continue
  n=$((n + 1)); [ "$n" -le 8 ] || break
  p=${d#/proc/}
  ns=$(readlink "$d/ns/mnt" 2>/dev/null)
  same=0; [ -n "$ns" ] && [ "$ns" = "$MYNS" ] && same=1
  exe=$(readlink "$d/exe" 2>/dev/null)
  st=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f20)
  args=$(tr '\0' '\n' 2>/dev/null <"$d/cmdline" | head -n 40)
  echo "pid=$p same_mnt_ns=$same starttime=$st exe=$exe"
  echo "cmdline=$(printf '%s' "$args" | tr '\n' ' ')"
  if [ "$same" = 1 ] && [ -z "$BIN" ]; then
    case "$exe" in *" (deleted)"|"") ;; *) BIN=$exe ;; esac
    if [ -z "${PD_CONTAINERD_CONFIG:-}" ]; then
      nextcfg=0
      for a in $(printf '%s\n' "$args" | tr ' ' '\n'); do
        if [ "$nextcfg" = 1 ]; then CFG=$a; nextcfg=0; continue; fi
        case "$a" in
          --config|-c) nextcfg=1 ;;
          --config=*) CFG=${a#--config=} ;;
        esac
      done
    fi
  fi
done
e process "count=$n"
[ -n "$BIN" ] || BIN=$(command -v containerd 2>/dev/null)
[ -n "$CFG" ] || CFG=/etc/containerd/config.toml

b version "path=$BIN"
if [ -n "$BIN" ]; then $T "$BIN" --version 2>&1 | head -n 5; rc=$?; else echo "containerd: not found"; rc=127; fi
e version "rc=$rc"

file config-file "$CFG"

# what containerd itself makes of the file: imports merged, defaults filled, 2.x migrations done
out=""
if [ -n "$BIN" ]; then
  out=$($T "$BIN" --config "$CFG" config dump 2>/dev/null); rc=$?
  b config-dump "rc=$rc" "path=$CFG"
  if [ "$rc" = 0 ]; then printf '%s\n' "$out" | dd bs="$CAP" count=1 2>/dev/null | redact
  else out=""; $T "$BIN" --config "$CFG" config dump 2>&1 >/dev/null | head -n 20; fi
  e config-dump "rc=$rc"
fi

# every config_path value written in the file or the dump (the TOML is parsed by pulldoctor, not
# here); each ':'-separated part is a candidate root, as are the two usual directories
vals=$( { [ -f "$CFG" ] && dd if="$CFG" bs="$CAP" count=1 2>/dev/null; printf '\n%s\n' "$out"; } |
  sed -n 's/^[[:space:]]*[A-Za-z0-9_."'\''-]*config_path[[:space:]]*=[[:space:]]*//p' |
  sed -e 's/^"\([^"]*\)".*/\1/' -e "s/^'\\([^']*\\)'.*/\\1/" | sort -u | head -n 20)
b config-paths
printf '%s\n' "$vals"
e config-paths
NL='
'
roots="/etc/containerd/certs.d${NL}/etc/docker/certs.d"
OLDIFS=$IFS
IFS=$NL
for v in $vals; do
  IFS=:
  for r in $v; do
    r=${r%/}
    [ -n "$r" ] || continue
    case "$NL$roots$NL" in *"$NL$r$NL"*) ;; *) roots="$roots$NL$r" ;; esac
  done
  IFS=$NL
done
# containerd 2.1+'s transfer service takes the whole string as one directory (2.2+ defaults to
# the two usual directories, which the config need not spell out)
for v in $(printf '%s\n%s\n' "$vals" "/etc/containerd/certs.d:/etc/docker/certs.d" | sort -u); do
  case "$v" in *:*) ;; *) continue ;; esac
  b whole-path "path=$v"
  for x in "$U" "$R" _default; do
    [ -n "$x" ] || continue
    if [ -e "$v/$x" ]; then echo "exists $x"; else echo "missing $x"; fi
  done
  e whole-path
done
IFS=$OLDIFS

hostdir() { # KIND DIR
  if [ -e "$2" ]; then
    ty=other; [ -d "$2" ] && ty=dir; [ -f "$2" ] && ty=file
    b hostdir "kind=$1" "exists=1" "type=$ty" "path=$2"
    ls -la "$2" 2>&1 | head -n 100
    e hostdir
    if [ -d "$2" ] && [ -e "$2/hosts.toml" ]; then
      file hosts-toml "$2/hosts.toml"
      # CA and client files named in hosts.toml: containerd fails the pull when one is missing
      b tls-files "path=$2"
      dd if="$2/hosts.toml" bs="$CAP" count=1 2>/dev/null |
        grep -E '^[[:space:]]*(ca|client)[[:space:]]*=' |
        awk -F'"' '{ for (i = 2; i <= NF; i += 2) print $i }' | head -n 20 |
        while IFS= read -r f; do
          case "$f" in /*) q=$f ;; *) q="$2/$f" ;; esac
          if [ -r "$q" ]; then echo "exists $q"; elif [ -e "$q" ]; then echo "unreadable $q"; else echo "missing $q"; fi
        done
      e tls-files
    fi
  else
    b hostdir "kind=$1" "exists=0" "path=$2"
    ls -ld "$2" 2>&1 | head -n 5
    e hostdir
  fi
}
IFS=$NL
for r in $roots; do
  IFS=$OLDIFS
  if [ -d "$r" ]; then b root "exists=1" "path=$r"; ls -la "$r" 2>&1 | head -n 200; e root
  else b root "exists=0" "path=$r"; ls -ld "$r" 2>&1 | head -n 5; e root; fi
  if [ -n "$R" ] && [ "$R_BAD" = 0 ]; then
    [ -n "$U" ] && hostdir host-underscore "$r/$U"
    hostdir host "$r/$R"
    hostdir default "$r/_default"
    [ -n "$H" ] && hostdir bare-host "$r/$H"
  fi
  IFS=$NL
done
IFS=$OLDIFS
printf '%s done\n' "$M"
"##;

// ------------------------------------------------------------------------------------ the facts

/// A file the script printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatheredFile {
    /// Its path on the node.
    pub path: String,
    /// Its text (at most 64 KiB, secrets redacted).
    pub text: String,
    /// Its size in bytes, when known.
    pub size: Option<u64>,
    /// Modification time (seconds since the epoch), when known.
    pub mtime: Option<i64>,
    /// Longer than what was printed.
    pub truncated: bool,
}

/// A running containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessFacts {
    /// Process id.
    pub pid: u32,
    /// In the same mount namespace as the shell that gathered (so its files are the ones read).
    pub same_mount_ns: bool,
    /// When it started, in seconds since the epoch (from `/proc/<pid>/stat`), when known.
    pub started: Option<i64>,
    /// Its binary.
    pub exe: String,
    /// Its command line.
    pub cmdline: String,
}

/// A containerd version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerdVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl ContainerdVersion {
    /// Parse `containerd --version` output (`containerd github.com/containerd/containerd/v2
    /// v2.1.0 061792f…`, `… 1.6.20~ds1 1.6.20~ds1-1+deb12u3`, `… v1.7.11-k3s2`).
    #[must_use]
    pub fn parse(output: &str) -> Option<Self> {
        let line = output.lines().find(|l| l.contains("containerd"))?;
        line.split_whitespace().skip(1).find_map(|tok| {
            let tok = tok.strip_prefix('v').unwrap_or(tok);
            let numeric: String = tok
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = numeric.split('.').filter(|p| !p.is_empty());
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            Some(ContainerdVersion {
                major,
                minor,
                patch,
            })
        })
    }

    fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }

    /// 2.1 and later pull through the transfer service by default.
    fn transfer_service_default(&self) -> bool {
        self.at_least(2, 1, 0)
    }

    /// An `http` host with a TLS setting is tried over HTTPS first, then HTTP (containerd PR
    /// #9182, backported to 1.6.25 and 1.7.7; all of 2.x).
    fn tls_fallback(&self) -> bool {
        match (self.major, self.minor) {
            (1, 6) => self.patch >= 25,
            (1, 7) => self.patch >= 7,
            (1, m) => m > 7,
            (major, _) => major >= 2,
        }
    }

    /// A `hosts.toml` without a `host` table is accepted (go-toml v2 in 2.x; 1.7.32 fixed 1.7).
    fn accepts_hostless_file(&self) -> bool {
        self.major >= 2 || self.at_least(1, 7, 32)
    }
}

impl fmt::Display for ContainerdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Which candidate directory of a root a [`HostDirFacts`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    /// `<root>/<host>_<port>_`, tried first.
    HostUnderscore,
    /// `<root>/<host:port>`.
    Host,
    /// `<root>/_default`.
    Default,
    /// `<root>/<host>` without the port: never matched for a registry with a port.
    BareHost,
}

impl DirKind {
    fn from_id(id: &str) -> Option<Self> {
        Some(match id {
            "host-underscore" => DirKind::HostUnderscore,
            "host" => DirKind::Host,
            "default" => DirKind::Default,
            "bare-host" => DirKind::BareHost,
            _ => return None,
        })
    }
}

/// What a CA or client file named in `hosts.toml` looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFileState {
    /// Readable.
    Exists,
    /// Present, not readable by the gathering user.
    Unreadable,
    /// Not there.
    Missing,
}

/// One candidate directory of one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDirFacts {
    /// The root it is under.
    pub root: String,
    /// Which candidate it is.
    pub kind: DirKind,
    /// Its path.
    pub path: String,
    /// It exists (a directory, or anything else `stat` finds).
    pub exists: bool,
    /// It is a directory.
    pub is_dir: bool,
    /// `ls -la` of it (or `ls -ld`'s error when it does not exist).
    pub listing: Vec<String>,
    /// Its `hosts.toml`, if there is one.
    pub hosts_toml: Option<GatheredFile>,
    /// CA and client files `hosts.toml` names.
    pub tls_files: Vec<(String, TlsFileState)>,
}

/// One candidate `config_path` root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFacts {
    /// Its path.
    pub path: String,
    /// It is a directory.
    pub exists: bool,
    /// `ls -la` of it (or `ls -ld`'s error).
    pub listing: Vec<String>,
}

/// What `containerd config dump` printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpFacts {
    /// Its exit status.
    pub rc: i32,
    /// Its output (the config) or its error.
    pub text: String,
    /// The output parsed, when it ran.
    pub config: Option<Result<ContainerdConfig, TomlError>>,
}

/// Everything the gather script found on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// `PD_REGISTRY` as the script saw it.
    pub registry: String,
    /// The script accepted it as a `host[:port]` (and so listed its directories).
    pub registry_valid: bool,
    /// The gathering user's uid.
    pub uid: Option<u32>,
    /// The node's hostname.
    pub hostname: String,
    /// Running containerd processes (at most 8).
    pub processes: Vec<ProcessFacts>,
    /// The binary whose version was asked.
    pub binary: String,
    /// `containerd --version` output.
    pub version_output: String,
    /// Its exit status.
    pub version_rc: i32,
    /// The version, when it could be read.
    pub version: Option<ContainerdVersion>,
    /// The config file (absent when the node has none: containerd then runs on defaults).
    pub config_file: Option<GatheredFile>,
    /// The path the config file was looked for at.
    pub config_path_file: String,
    /// `config_file` parsed (an invalid file is a [`GatherError::Config`]).
    pub config: ContainerdConfig,
    /// `containerd config dump`.
    pub dump: Option<DumpFacts>,
    /// Every `config_path` value written in the file or the dump.
    pub config_path_values: Vec<String>,
    /// For `:`-separated values: which candidates exist under the whole string taken as one path.
    pub whole_paths: Vec<(String, Vec<(String, bool)>)>,
    /// Candidate roots.
    pub roots: Vec<RootFacts>,
    /// Candidate directories under them.
    pub dirs: Vec<HostDirFacts>,
}

/// Why gathered output could not be turned into facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatherError {
    /// The text does not come from [`GATHER_SCRIPT`].
    #[error(
        "not the output of pulldoctor's node gather script (no `@@pulldoctor.<id> gather v1` line)"
    )]
    NotGatherOutput,
    /// The output stops in the middle.
    #[error(
        "the node gather output stops early, inside section `{0}` (the command was cut off or timed out)"
    )]
    Truncated(String),
    /// containerd's config file is not valid: containerd refuses to start with it.
    #[error("{0} (containerd refuses to start with this file: `failed to load TOML`)")]
    Config(TomlError),
}

struct Section {
    name: String,
    attrs: Vec<(String, String)>,
    end_attrs: Vec<(String, String)>,
    body: String,
}

impl Section {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .chain(&self.end_attrs)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.attr(key) == Some("1")
    }

    fn lines(&self) -> Vec<String> {
        self.body
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn file(&self) -> GatheredFile {
        GatheredFile {
            path: self.attr("path").unwrap_or("").to_string(),
            text: self.body.clone(),
            size: self.attr("size").and_then(|s| s.parse().ok()),
            mtime: self.attr("mtime").and_then(|s| s.parse().ok()),
            truncated: self.flag("truncated"),
        }
    }
}

/// `k=v k=v path=rest of line`
fn attrs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if let Some(path) = rest.strip_prefix("path=") {
            out.push(("path".to_string(), path.to_string()));
            break;
        }
        let (tok, after) = rest.split_once(' ').unwrap_or((rest, ""));
        if let Some((k, v)) = tok.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
        rest = after.trim_start();
    }
    out
}

fn sections(output: &str) -> Result<Vec<Section>, GatherError> {
    let mut lines = output.lines().map(|l| l.trim_end_matches('\r'));
    let marker = lines
        .by_ref()
        .find_map(|l| {
            let (m, rest) = l.trim().split_once(' ')?;
            (m.starts_with("@@pulldoctor.") && rest == "gather v1").then(|| m.to_string())
        })
        .ok_or(GatherError::NotGatherOutput)?;
    let begin = format!("{marker} begin ");
    let end = format!("{marker} end ");
    let mut out = Vec::new();
    let mut open: Option<(Section, Vec<&str>)> = None;
    for line in lines {
        if let Some((mut section, body)) = open.take() {
            if let Some(rest) = line.strip_prefix(&end) {
                let (_, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                section.end_attrs = attrs(tail);
                section.body = body.join("\n");
                out.push(section);
            } else {
                let mut body = body;
                body.push(line);
                open = Some((section, body));
            }
        } else if let Some(rest) = line.strip_prefix(&begin) {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            open = Some((
                Section {
                    name: name.to_string(),
                    attrs: attrs(tail),
                    end_attrs: Vec::new(),
                    body: String::new(),
                },
                Vec::new(),
            ));
        }
    }
    if let Some((section, _)) = open {
        return Err(GatherError::Truncated(section.name));
    }
    Ok(out)
}

fn key_values(body: &str) -> impl Iterator<Item = (&str, &str)> {
    body.lines().filter_map(|l| l.split_once('='))
}

/// Turn [`GATHER_SCRIPT`]'s output back into facts.
///
/// # Errors
/// Text that is not the script's output, output cut off in the middle, or a `config.toml` that
/// is not valid TOML (the error names the line and column; containerd does not start with it).
/// An invalid `hosts.toml` is not an error here: containerd ignores it, and [`evaluate`] says so.
pub fn parse_gathered(output: &str) -> Result<NodeFacts, GatherError> {
    let sections = sections(output)?;
    let mut facts = NodeFacts {
        registry: String::new(),
        registry_valid: false,
        uid: None,
        hostname: String::new(),
        processes: Vec::new(),
        binary: String::new(),
        version_output: String::new(),
        version_rc: -1,
        version: None,
        config_file: None,
        config_path_file: String::new(),
        config: ContainerdConfig::default(),
        dump: None,
        config_path_values: Vec::new(),
        whole_paths: Vec::new(),
        roots: Vec::new(),
        dirs: Vec::new(),
    };
    let (mut btime, mut clk_tck): (Option<i64>, i64) = (None, 100);
    let mut current_root = String::new();
    for s in &sections {
        match s.name.as_str() {
            "meta" => {
                for (k, v) in key_values(&s.body) {
                    match k {
                        "registry" => facts.registry = v.to_string(),
                        "registry_valid" => facts.registry_valid = v.trim() == "1",
                        "uid" => facts.uid = v.trim().parse().ok(),
                        "hostname" => facts.hostname = v.trim().to_string(),
                        "btime" => btime = v.trim().parse().ok(),
                        "clk_tck" => clk_tck = v.trim().parse().unwrap_or(100).max(1),
                        _ => {}
                    }
                }
            }
            "process" => {
                let mut lines = s.body.lines().peekable();
                while let Some(line) = lines.next() {
                    let Some(rest) = line.strip_prefix("pid=") else {
                        continue;
                    };
                    let a = attrs(&format!("pid={rest}"));
                    let get = |k: &str| {
                        a.iter()
                            .find(|(key, _)| key == k)
                            .map_or("", |(_, v)| v.as_str())
                    };
                    let cmdline = match lines.peek() {
                        Some(next) if next.starts_with("cmdline=") => lines
                            .next()
                            .and_then(|l| l.strip_prefix("cmdline="))
                            .unwrap_or("")
                            .trim()
                            .to_string(),
                        _ => String::new(),
                    };
                    // exe may contain spaces (" (deleted)"): everything after "exe="
                    let exe = rest.split_once(" exe=").map_or("", |(_, e)| e).to_string();
                    let ticks: Option<i64> = get("starttime").parse().ok();
                    facts.processes.push(ProcessFacts {
                        pid: get("pid").parse().unwrap_or(0),
                        same_mount_ns: get("same_mnt_ns") == "1",
                        started: btime.zip(ticks).map(|(b, t)| b + t / clk_tck),
                        exe,
                        cmdline,
                    });
                }
            }
            "version" => {
                facts.binary = s.attr("path").unwrap_or("").to_string();
                facts.version_output = s.body.trim().to_string();
                facts.version_rc = s.attr("rc").and_then(|r| r.parse().ok()).unwrap_or(-1);
                facts.version = ContainerdVersion::parse(&facts.version_output);
            }
            "config-file" => {
                let file = s.file();
                facts.config_path_file.clone_from(&file.path);
                if !s.flag("missing") {
                    facts.config =
                        parse_config(&file.path, &file.text).map_err(GatherError::Config)?;
                    facts.config_file = Some(file);
                }
            }
            "config-dump" => {
                let rc = s.attr("rc").and_then(|r| r.parse().ok()).unwrap_or(-1);
                let config = (rc == 0).then(|| parse_config("containerd config dump", &s.body));
                facts.dump = Some(DumpFacts {
                    rc,
                    text: s.body.clone(),
                    config,
                });
            }
            "config-paths" => {
                facts.config_path_values = s.body.lines().map(str::to_string).collect();
                facts.config_path_values.retain(|v| !v.is_empty());
            }
            "whole-path" => {
                let present = s
                    .body
                    .lines()
                    .filter_map(|l| {
                        let (state, name) = l.split_once(' ')?;
                        Some((name.to_string(), state == "exists"))
                    })
                    .collect();
                facts
                    .whole_paths
                    .push((s.attr("path").unwrap_or("").to_string(), present));
            }
            "root" => {
                current_root = s.attr("path").unwrap_or("").to_string();
                facts.roots.push(RootFacts {
                    path: current_root.clone(),
                    exists: s.flag("exists"),
                    listing: s.lines(),
                });
            }
            "hostdir" => {
                let Some(kind) = s.attr("kind").and_then(DirKind::from_id) else {
                    continue;
                };
                facts.dirs.push(HostDirFacts {
                    root: current_root.clone(),
                    kind,
                    path: s.attr("path").unwrap_or("").to_string(),
                    exists: s.flag("exists"),
                    is_dir: s.attr("type") == Some("dir"),
                    listing: s.lines(),
                    hosts_toml: None,
                    tls_files: Vec::new(),
                });
            }
            "hosts-toml" => {
                if let Some(dir) = facts.dirs.last_mut()
                    && !s.flag("missing")
                {
                    dir.hosts_toml = Some(s.file());
                }
            }
            "tls-files" => {
                if let Some(dir) = facts.dirs.last_mut() {
                    dir.tls_files = s
                        .body
                        .lines()
                        .filter_map(|l| {
                            let (state, path) = l.split_once(' ')?;
                            let state = match state {
                                "exists" => TlsFileState::Exists,
                                "unreadable" => TlsFileState::Unreadable,
                                "missing" => TlsFileState::Missing,
                                _ => return None,
                            };
                            Some((path.to_string(), state))
                        })
                        .collect();
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

// ------------------------------------------------------------------------------------ the verdict

/// What containerd will speak to the registry for a tag lookup (the first step of a pull).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTPS only: a plain-HTTP registry fails with `server gave HTTP response to HTTPS client`.
    Https,
    /// HTTPS first, then HTTP when the answer is not TLS: works with either kind of registry.
    HttpsThenHttp,
    /// Not known (containerd not found, or its CRI image plugin fails to load).
    Unknown,
}

impl Scheme {
    /// In words.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Scheme::Http => "HTTP",
            Scheme::Https => "HTTPS",
            Scheme::HttpsThenHttp => "HTTPS, then HTTP",
            Scheme::Unknown => "an unknown scheme",
        }
    }
}

/// How the CRI pulls images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPath {
    /// The CRI's own client pull (1.x, 2.0, or 2.1+ with local pull forced): splits `config_path`.
    Local,
    /// The transfer service (2.1+ default): takes `config_path` as one directory.
    TransferService,
}

/// What is wrong (or notable) on the node, as data: tests and fixes key on these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeFault {
    /// `containerd --version` gave nothing usable.
    VersionUnknown,
    /// `config_path` is set only under a table this containerd does not read.
    IgnoredConfigPathKey {
        /// The table that sets it.
        table: String,
    },
    /// `config_path` is empty: no `hosts.toml` is read at all.
    NoConfigPath,
    /// 2.1+ transfer service with a `:`-separated `config_path`: every `hosts.toml` ignored.
    TransferServiceMultiPath {
        /// The value.
        config_path: String,
    },
    /// An earlier root's directory for the registry hides a later root's `hosts.toml`.
    Shadowed {
        /// The directory that wins.
        winner: String,
        /// The `hosts.toml` that is never read.
        hidden: String,
    },
    /// No directory for the registry under any root.
    NoHostDir,
    /// A directory named without the port exists; it never matches.
    DirWithoutPort {
        /// That directory.
        dir: String,
    },
    /// The winning directory has no `hosts.toml`.
    NoHostsToml {
        /// The directory.
        dir: String,
    },
    /// containerd rejects the `hosts.toml` and falls back to HTTPS.
    HostsTomlRejected {
        /// The file.
        path: String,
        /// containerd's reason.
        why: String,
    },
    /// The `hosts.toml` is read but sends tag lookups over HTTPS.
    HostsTomlHttps {
        /// The file.
        path: String,
    },
    /// A plain-HTTP host lacks `resolve` and nothing else resolves over HTTP.
    NoResolve {
        /// The host table.
        host: String,
    },
    /// A CA or client file named in `hosts.toml` is missing: every pull fails.
    MissingTlsFile {
        /// The file.
        path: String,
    },
    /// The CRI image plugin does not load with this config: every pull fails.
    PluginFails {
        /// containerd's error.
        error: String,
    },
    /// `config.toml` changed after containerd started; it only applies after a restart.
    ConfigChangedSinceStart,
}

/// One endpoint containerd tries for the registry, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL (scheme, host, `/v2` path).
    pub url: String,
    /// What it speaks.
    pub scheme: Scheme,
    /// Used for tag lookups.
    pub resolve: bool,
    /// Used for blobs and manifests by digest.
    pub pull: bool,
    /// Where it comes from (`[host."…"]` line 3, `server` line 1, default).
    pub from: String,
}

/// A verbatim line that proves a step, and the command that printed it on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvidence {
    /// The command (what the gather script ran, as a person would type it).
    pub command: String,
    /// The line.
    pub text: String,
}

/// What containerd on one node will do for one registry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVerdict {
    /// The registry, `host[:port]`.
    pub registry: String,
    /// containerd's version.
    pub version: Option<ContainerdVersion>,
    /// How the CRI pulls.
    pub pull_path: PullPath,
    /// The `config_path` in effect.
    pub config_path: String,
    /// The roots as containerd uses them (one whole string on the transfer-service path).
    pub roots: Vec<String>,
    /// The directory containerd uses for the registry, if any.
    pub host_dir: Option<String>,
    /// The `hosts.toml` containerd applies, if any (a rejected file is not applied).
    pub hosts_toml: Option<String>,
    /// Endpoints in the order containerd tries them.
    pub endpoints: Vec<Endpoint>,
    /// The conclusion.
    pub scheme: Scheme,
    /// What containerd would use with `config_path = "/etc/containerd/certs.d"` and the files
    /// as they are (what the `single-config-path` fix alone would give).
    pub single_root_scheme: Scheme,
    /// What is wrong or notable.
    pub faults: Vec<NodeFault>,
    /// The reasoning, step by step, in plain words.
    pub reasons: Vec<String>,
    /// The lines that prove it.
    pub evidence: Vec<NodeEvidence>,
}

impl NodeVerdict {
    /// The fault of a kind, if present.
    #[must_use]
    pub fn has(&self, pred: impl Fn(&NodeFault) -> bool) -> bool {
        self.faults.iter().any(pred)
    }
}

/// `host[:port]` of a registry given as `host:port`, `http://host:port/` or an image prefix.
fn registry_host(registry: &str) -> String {
    let r = registry.trim();
    let r = r.split_once("://").map_or(r, |(_, rest)| rest);
    r.split('/').next().unwrap_or("").to_string()
}

/// containerd's `hostDirectory`: the last `:port` becomes `_port_`.
fn underscore_dir(host: &str) -> Option<String> {
    let idx = host.rfind(':')?;
    (idx > 0).then(|| format!("{}_{}_", &host[..idx], &host[idx + 1..]))
}

fn split_host_port(hostport: &str) -> (&str, &str) {
    // [v6]:port, host:port, host
    if let Some(rest) = hostport.strip_prefix('[')
        && let Some((h, p)) = rest.split_once(']')
    {
        return (h, p.strip_prefix(':').unwrap_or(""));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p),
        _ => (hostport, ""),
    }
}

/// `docker.IsLocalhost`: `localhost` or a loopback address.
fn is_localhost(hostport: &str) -> bool {
    let (host, _) = split_host_port(hostport);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn join(root: &str, name: &str) -> String {
    format!("{}/{name}", root.trim_end_matches('/'))
}

/// Where the effective registry settings come from, for one parsed config.
struct Effective<'a> {
    /// The table containerd reads the registry from (after 2.x's migration).
    read_table: String,
    /// The section providing `registry` (config_path, mirrors, configs, auths).
    registry: Option<&'a CriSection>,
    /// `config_path` as written (None: not written).
    written: Option<&'a Located<String>>,
    /// config_path tables this version ignores, with their lines.
    ignored: Vec<(String, &'a Located<String>)>,
    /// Settings that force local pull, after migration: (what, the line that sets it).
    local_pull: Vec<(String, String)>,
    /// `use_local_image_pull = true`.
    use_local: Option<String>,
    /// How the 2.x migration was applied (for reasons).
    migrated_from: Option<String>,
}

fn mirrors_of<'a>(e: &Effective<'a>) -> &'a [Mirror] {
    e.registry.map_or(&[], |r| r.mirrors.as_slice())
}

fn effective<'a>(cfg: &'a ContainerdConfig, v: &ContainerdVersion) -> Effective<'a> {
    let fv = cfg.file_version();
    let with_path = |s: &'a Option<CriSection>| {
        s.as_ref()
            .and_then(|s| s.config_path.as_ref().map(|c| (s.registry_table(), c)))
    };
    let mut e = Effective {
        read_table: String::new(),
        registry: None,
        written: None,
        ignored: Vec::new(),
        local_pull: Vec::new(),
        use_local: None,
        migrated_from: None,
    };
    if v.major < 2 {
        // 1.x looks plugins up by short id in a version-1 file, by URI otherwise
        let (read, others): (&Option<CriSection>, [&Option<CriSection>; 2]) = if fv <= 1 {
            (&cfg.cri_short, [&cfg.grpc_cri, &cfg.cri_images])
        } else {
            (&cfg.grpc_cri, [&cfg.cri_short, &cfg.cri_images])
        };
        e.read_table = if fv <= 1 {
            table_name(SHORT_CRI)
        } else {
            table_name(GRPC_CRI)
        } + ".registry";
        e.registry = read.as_ref();
        e.written = read.as_ref().and_then(|s| s.config_path.as_ref());
        e.ignored = others.into_iter().filter_map(with_path).collect();
        return e;
    }
    // 2.x: a version 1 or 2 file is migrated; the registry table moves to the images plugin
    e.read_table = table_name(CRI_IMAGES) + ".registry";
    let images = cfg.cri_images.as_ref();
    let old = if fv <= 1 {
        cfg.cri_short.as_ref()
    } else {
        cfg.grpc_cri.as_ref()
    };
    let mut knobs: Vec<&CriSection> = images.into_iter().collect();
    if fv <= 2 {
        if let Some(old) = old.filter(|o| has_registry(o)) {
            e.registry = Some(old);
            e.migrated_from = Some(old.registry_table());
        } else {
            e.registry = images;
        }
        // migrated knobs override the images plugin's own
        knobs.extend(old);
    } else {
        e.registry = images;
        e.ignored = [&cfg.grpc_cri, &cfg.cri_short]
            .into_iter()
            .filter_map(with_path)
            .collect();
    }
    e.written = e.registry.and_then(|s| s.config_path.as_ref());
    // what forces local image pull (internal/cri/config CheckLocalImagePullConfigs)
    let last = |f: fn(&CriSection) -> Option<String>| knobs.iter().rev().find_map(|s| f(s));
    if let Some(line) = images
        .and_then(|s| s.use_local_image_pull.as_ref())
        .filter(|u| u.value)
    {
        e.use_local = Some(line.text.trim().to_string());
    }
    let reg = e.registry;
    if let Some(r) = reg {
        if !r.mirrors.is_empty() {
            e.local_pull
                .push(("registry.mirrors".into(), r.mirrors[0].text.clone()));
        }
        if !r.configs.is_empty() {
            e.local_pull
                .push(("registry.configs".into(), r.configs[0].text.clone()));
        }
        if !r.auths.is_empty() {
            e.local_pull
                .push(("registry.auths".into(), r.auths[0].text.clone()));
        }
    }
    // settings whose non-default value forces local pull; the last section that sets one wins
    let knobs: [(&str, SettingLine); 4] = [
        ("discard_unpacked_layers = true", |s| {
            s.discard_unpacked_layers
                .as_ref()
                .filter(|d| d.value)
                .map(|d| d.text.clone())
        }),
        ("a non-default max_concurrent_downloads", |s| {
            s.max_concurrent_downloads
                .as_ref()
                .filter(|d| d.value != 3)
                .map(|d| d.text.clone())
        }),
        ("image_pull_with_sync_fs = true", |s| {
            s.image_pull_with_sync_fs
                .as_ref()
                .filter(|d| d.value)
                .map(|d| d.text.clone())
        }),
        ("disable_snapshot_annotations = false", |s| {
            s.disable_snapshot_annotations
                .as_ref()
                .filter(|d| !d.value)
                .map(|d| d.text.clone())
        }),
    ];
    for (label, setting) in knobs {
        if let Some(t) = last(setting) {
            e.local_pull.push((label.into(), t));
        }
    }
    e
}

/// Reads one setting's line from a CRI section, when its value matters.
type SettingLine = fn(&CriSection) -> Option<String>;

fn has_registry(s: &CriSection) -> bool {
    s.config_path.is_some() || !s.mirrors.is_empty() || !s.configs.is_empty() || !s.auths.is_empty()
}

/// Collects reasons and evidence while evaluating.
struct Story {
    reasons: Vec<String>,
    evidence: Vec<NodeEvidence>,
    faults: Vec<NodeFault>,
}

impl Story {
    fn say(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
    }

    fn show(&mut self, command: &str, text: &str) {
        let text = text.trim_end().to_string();
        if text.is_empty() {
            return;
        }
        if !self
            .evidence
            .iter()
            .any(|e| e.command == command && e.text == text)
        {
            self.evidence.push(NodeEvidence {
                command: command.to_string(),
                text,
            });
        }
    }

    fn fault(&mut self, fault: NodeFault) {
        if !self.faults.contains(&fault) {
            self.faults.push(fault);
        }
    }
}

/// How a directory looks in the facts: exists, and the facts if gathered.
fn dir_facts<'a>(facts: &'a NodeFacts, path: &str) -> Option<&'a HostDirFacts> {
    facts.dirs.iter().find(|d| d.path == path)
}

/// containerd's `hostPaths(root, host)`: candidates in lookup order.
fn host_paths(root: &str, host: &str) -> Vec<(DirKind, String)> {
    let mut out = Vec::new();
    if let Some(u) = underscore_dir(host) {
        out.push((DirKind::HostUnderscore, join(root, &u)));
    }
    out.push((DirKind::Host, join(root, host)));
    out.push((DirKind::Default, join(root, "_default")));
    out
}

/// The first existing candidate of a root (what `HostDirFromRoot` returns), and whether every
/// candidate was gathered.
fn lookup_root(facts: &NodeFacts, root: &str, host: &str) -> (Option<String>, bool) {
    let mut gathered = true;
    for (_, path) in host_paths(root, host) {
        match dir_facts(facts, &path) {
            Some(d) if d.exists => return (Some(path), true),
            Some(_) => {}
            None => gathered = false,
        }
    }
    (None, gathered)
}

/// The same lookup under a `:`-separated string taken whole (the transfer service).
fn lookup_whole(facts: &NodeFacts, value: &str, host: &str) -> Option<String> {
    let (_, present) = facts.whole_paths.iter().find(|(v, _)| v == value)?;
    host_paths(value, host).into_iter().find_map(|(_, path)| {
        let name = path.rsplit('/').next().unwrap_or("");
        present
            .iter()
            .any(|(n, exists)| n == name && *exists)
            .then_some(path)
    })
}

fn listing_line<'a>(listing: &'a [String], name: &str) -> Option<&'a String> {
    listing
        .iter()
        .find(|l| l.split_whitespace().last() == Some(name))
}

/// Show the root's listing line for `name`, or the `ls` error when the root is missing.
fn show_root_entry(story: &mut Story, facts: &NodeFacts, root: &str, name: &str) {
    if let Some(r) = facts.roots.iter().find(|r| r.path == root) {
        let cmd = format!("ls -la {root}");
        match listing_line(&r.listing, name) {
            Some(line) => story.show(&cmd, line),
            None if !r.exists => {
                if let Some(l) = r.listing.first() {
                    story.show(&format!("ls -ld {root}"), l);
                }
            }
            None => {}
        }
    }
}

/// Show a config line together with the `[table]` header it sits under.
fn show_with_header(story: &mut Story, command: &str, text: &str, line: &Located<String>) {
    let header = text
        .lines()
        .take(line.line.saturating_sub(1))
        .filter(|l| l.trim_start().starts_with('['))
        .last();
    if let Some(h) = header
        && !line.text.trim_start().starts_with('[')
    {
        story.show(command, h);
    }
    story.show(command, &line.text);
}

/// Show `ls -ld`'s error for a candidate directory that does not exist.
fn show_missing(story: &mut Story, facts: &NodeFacts, path: &str) {
    if let Some(d) = dir_facts(facts, path)
        && !d.exists
        && let Some(l) = d.listing.first()
    {
        story.show(&format!("ls -ld {path}"), l);
    }
}

struct HostsOutcome {
    accepted: Option<HostsToml>,
    path: String,
}

/// What containerd makes of the winning directory's `hosts.toml`.
fn read_hosts_toml(
    story: &mut Story,
    v: &ContainerdVersion,
    dir: &HostDirFacts,
) -> Option<HostsOutcome> {
    let file = dir.hosts_toml.as_ref()?;
    let path = file.path.clone();
    let cat = format!("cat {path}");
    let reject = |story: &mut Story, why: String, line: Option<&str>| {
        if let Some(l) = line {
            story.show(&cat, l);
        }
        story.say(format!(
            "containerd {v} rejects {path} ({why}): at every pull it logs `failed to decode hosts.toml` and falls back to the directory's certificate files only, with the default https:// endpoint"
        ));
        story.fault(NodeFault::HostsTomlRejected {
            path: path.clone(),
            why,
        });
        Some(HostsOutcome {
            accepted: None,
            path: path.clone(),
        })
    };
    if file.text.trim().is_empty() {
        // an empty hosts.toml reads like a missing one: certificate files only
        story.say(format!(
            "{path} is empty, so containerd treats the directory as having no hosts.toml"
        ));
        return None;
    }
    let parsed = match parse_hosts_toml(&path, &file.text) {
        Ok(h) => h,
        Err(e) => {
            let why = format!(
                "invalid TOML at line {}, column {}: {}",
                e.line, e.column, e.message
            );
            return reject(story, why, Some(&e.source_line));
        }
    };
    if parsed.host_tree != HostTree::Table && !v.accepts_hostless_file() {
        let line = parsed.server.as_ref().map(|s| s.text.clone());
        story.say(format!(
            "{path} has {}: containerd before 1.7.32 (go-toml v1) needs at least one [host.\"…\"] table, even when `server` is set",
            parsed.host_tree
        ));
        return reject(story, "invalid `host` tree".to_string(), line.as_deref());
    }
    let all_fields = std::iter::once(&parsed.fields).chain(parsed.hosts.iter().map(|h| &h.fields));
    for f in all_fields.clone() {
        if let Some(p) = f.problems.first() {
            return reject(story, p.value.clone(), Some(&p.text));
        }
    }
    let known: &[&str] = if v.at_least(2, 1, 0) {
        &["pull", "resolve", "push", "referrers"]
    } else {
        &["pull", "resolve", "push"]
    };
    for f in all_fields {
        if let Some(c) = &f.capabilities
            && let Some(bad) = c
                .value
                .iter()
                .find(|cap| !known.contains(&cap.to_lowercase().as_str()))
        {
            return reject(story, format!("unknown capability {bad}"), Some(&c.text));
        }
    }
    Some(HostsOutcome {
        accepted: Some(parsed),
        path,
    })
}

/// `(scheme, host)` of a `server`/`[host]` URL as containerd reads it (no scheme: `https://`).
fn url_parts(url: &str) -> (String, String) {
    let full = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    let (scheme, rest) = full.split_once("://").unwrap_or(("https", &full));
    let host = rest.split('/').next().unwrap_or("").to_string();
    (scheme.to_lowercase(), host)
}

fn endpoint_scheme(v: &ContainerdVersion, scheme: &str, host: &str, tls: bool) -> Scheme {
    if scheme != "http" {
        return Scheme::Https;
    }
    let (_, port) = split_host_port(host);
    if tls && port != "80" && v.tls_fallback() {
        Scheme::HttpsThenHttp
    } else {
        Scheme::Http
    }
}

/// The default endpoint containerd fills in when no `server` is given (or no config at all).
fn default_endpoint(v: &ContainerdVersion, host: &str, tls: bool, hosts_dir: bool) -> Endpoint {
    let (url_host, scheme) = if host == "docker.io" {
        ("registry-1.docker.io".to_string(), Scheme::Https)
    } else if is_localhost(host) {
        let (_, port) = split_host_port(host);
        let scheme = if hosts_dir && !v.at_least(1, 6, 9) {
            // before 1.6.9 the hosts-directory path had no localhost rule
            Scheme::Https
        } else if v.major >= 2 && (port.is_empty() || port == "443") {
            Scheme::Https
        } else if port == "80" || !hosts_dir {
            Scheme::Http
        } else {
            // http with TLS verification skipped: a TLS setting, so HTTPS first where supported
            endpoint_scheme(v, "http", host, true)
        };
        (host.to_string(), scheme)
    } else {
        (host.to_string(), endpoint_scheme(v, "https", host, tls))
    };
    let proto = if scheme == Scheme::Http {
        "http"
    } else {
        "https"
    };
    Endpoint {
        url: format!("{proto}://{url_host}/v2"),
        scheme,
        resolve: true,
        pull: true,
        from: if is_localhost(host) {
            "default (localhost)".to_string()
        } else {
            "default".to_string()
        },
    }
}

fn url_with_path(url: &str, override_path: bool) -> String {
    let (scheme, host) = url_parts(url);
    let path = url
        .split_once("://")
        .map_or(url, |(_, r)| r)
        .split_once('/')
        .map_or(String::new(), |(_, p)| {
            format!("/{}", p.trim_end_matches('/'))
        });
    let path = if override_path || path.ends_with("/v2") {
        path
    } else {
        format!("{path}/v2")
    };
    format!("{scheme}://{host}{path}")
}

/// Endpoints from an accepted `hosts.toml`, in containerd's order: hosts, then `server`.
fn hosts_endpoints(v: &ContainerdVersion, host: &str, h: &HostsToml) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for entry in &h.hosts {
        if v.major >= 2 && !entry.from_header {
            continue;
        }
        let (scheme, ehost) = url_parts(&entry.url);
        out.push(Endpoint {
            url: url_with_path(&entry.url, entry.fields.override_path.unwrap_or(false)),
            scheme: endpoint_scheme(v, &scheme, &ehost, entry.fields.has_tls()),
            resolve: entry.fields.can("resolve"),
            pull: entry.fields.can("pull"),
            from: format!("[host.\"{}\"] line {}", entry.url, entry.line),
        });
    }
    match h.server.as_ref().filter(|s| !s.value.is_empty()) {
        Some(server) => {
            let (scheme, shost) = url_parts(&server.value);
            out.push(Endpoint {
                url: url_with_path(&server.value, h.fields.override_path.unwrap_or(false)),
                scheme: endpoint_scheme(v, &scheme, &shost, h.fields.has_tls()),
                resolve: h.fields.can("resolve"),
                pull: h.fields.can("pull"),
                from: format!("server line {}", server.line),
            });
        }
        None => out.push(default_endpoint(v, host, h.fields.has_tls(), true)),
    }
    out
}

/// Endpoints of the legacy path (`config_path` empty): `mirrors` then the default.
fn legacy_endpoints(v: &ContainerdVersion, host: &str, mirrors: &[Mirror]) -> Vec<Endpoint> {
    let mirror = mirrors
        .iter()
        .find(|m| m.host == host)
        .or_else(|| mirrors.iter().find(|m| m.host == "*"));
    let mut out = Vec::new();
    if let Some(m) = mirror {
        for ep in &m.endpoints {
            let full = if ep.contains("://") {
                ep.clone()
            } else if is_localhost(ep) {
                format!("http://{ep}")
            } else {
                format!("https://{ep}")
            };
            let (scheme, ehost) = url_parts(&full);
            out.push(Endpoint {
                url: url_with_path(&full, false),
                scheme: if scheme == "http" {
                    Scheme::Http
                } else {
                    Scheme::Https
                },
                resolve: true,
                pull: true,
                from: format!("registry.mirrors.\"{}\" line {}", m.host, m.line),
            });
            if ehost == host {
                return out;
            }
        }
    }
    out.push(default_endpoint(v, host, false, false));
    out
}

/// The scheme of a tag lookup: resolve-capable endpoints in order; an HTTPS failure moves on to
/// the next ("trying next host").
fn conclude(endpoints: &[Endpoint]) -> Scheme {
    let mut resolvers = endpoints.iter().filter(|e| e.resolve).map(|e| e.scheme);
    match resolvers.next() {
        None => Scheme::Unknown,
        Some(Scheme::Https) => {
            if resolvers.any(|s| matches!(s, Scheme::Http | Scheme::HttpsThenHttp)) {
                Scheme::HttpsThenHttp
            } else {
                Scheme::Https
            }
        }
        Some(s) => s,
    }
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decide what containerd on the node will do for `registry`, and why (DOMAIN.md §5, LAB.md).
#[must_use]
#[allow(clippy::too_many_lines)] // one linear story, step by step, reads best in one place
pub fn evaluate(facts: &NodeFacts, registry: &str) -> NodeVerdict {
    let host = registry_host(registry);
    let mut story = Story {
        reasons: Vec::new(),
        evidence: Vec::new(),
        faults: Vec::new(),
    };
    let mut verdict = NodeVerdict {
        registry: host.clone(),
        version: facts.version.clone(),
        pull_path: PullPath::Local,
        config_path: String::new(),
        roots: Vec::new(),
        host_dir: None,
        hosts_toml: None,
        endpoints: Vec::new(),
        scheme: Scheme::Unknown,
        single_root_scheme: Scheme::Unknown,
        faults: Vec::new(),
        reasons: Vec::new(),
        evidence: Vec::new(),
    };
    if !facts.registry_valid {
        story.say(format!(
            "the gather script was not given a usable registry (PD_REGISTRY=\"{}\"), so no certs.d directory was listed; they count as absent",
            facts.registry
        ));
    } else if registry_host(&facts.registry) != host {
        story.say(format!(
            "the node's files were gathered for {} but {host} is asked about; its certs.d directories were not listed, so they count as absent",
            facts.registry
        ));
    }
    let version_cmd = "containerd --version";
    let Some(v) = facts.version.clone() else {
        story.show(version_cmd, &facts.version_output);
        story.say(format!(
            "`containerd --version` gave no version ({}), so what containerd does cannot be decided",
            if facts.version_output.is_empty() {
                "no output"
            } else {
                facts.version_output.as_str()
            }
        ));
        story.fault(NodeFault::VersionUnknown);
        return finish(verdict, story);
    };
    if let Some(line) = facts.version_output.lines().next() {
        story.show(version_cmd, line);
    }

    // 1. config_path, per version and file layout
    let cfg_cmd = format!(
        "cat {}",
        if facts.config_path_file.is_empty() {
            "/etc/containerd/config.toml"
        } else {
            &facts.config_path_file
        }
    );
    if facts.config_file.is_none() {
        story.say(format!(
            "{} does not exist, so containerd {v} runs on its defaults",
            if facts.config_path_file.is_empty() {
                "/etc/containerd/config.toml"
            } else {
                &facts.config_path_file
            }
        ));
    }
    let file_eff = effective(&facts.config, &v);
    let dump_cfg = facts
        .dump
        .as_ref()
        .and_then(|d| d.config.as_ref())
        .and_then(|c| c.as_ref().ok());
    let dump_eff = dump_cfg.map(|c| effective(c, &v));
    if let Some(version) = &facts.config.version {
        story.show(&cfg_cmd, &version.text);
    }
    let file_version = facts.config.file_version();
    let file_path = file_eff.written.map(|w| w.value.clone());
    let cfg_text = facts.config_file.as_ref().map_or("", |f| f.text.as_str());
    if let Some(from) = &file_eff.migrated_from {
        story.say(format!(
            "containerd {v} migrates the `version = {file_version}` file: [{from}] becomes [{}]",
            file_eff.read_table
        ));
    }
    let mut config_path = file_path.clone().unwrap_or_default();
    let mut eff = &file_eff;
    match file_eff.written {
        Some(w) => {
            show_with_header(&mut story, &cfg_cmd, cfg_text, w);
            story.say(format!(
                "containerd {v} reads config_path from [{}]; line {} sets it to \"{}\"",
                file_eff.read_table, w.line, w.value
            ));
        }
        None => story.say(format!(
            "containerd {v} reads config_path from [{}], which the file does not set",
            file_eff.read_table
        )),
    }
    for (table, line) in &file_eff.ignored {
        show_with_header(&mut story, &cfg_cmd, cfg_text, line);
        let why = if v.major < 2 && table.contains(CRI_IMAGES) {
            format!("the 2.x key [{table}], which containerd {v} ignores")
        } else if v.major < 2 && file_version <= 1 {
            format!(
                "[{table}], which containerd {v} ignores in a file without `version = 2` (a version-1 file names plugins by short id: [plugins.cri.registry])"
            )
        } else {
            format!("[{table}], which containerd {v} ignores in a `version = {file_version}` file")
        };
        story.say(format!(
            "line {} sets config_path = \"{}\" under {why}{}",
            line.line,
            line.value,
            if file_path.as_deref().unwrap_or("").is_empty() {
                ", so config_path is empty"
            } else {
                ""
            }
        ));
        story.fault(NodeFault::IgnoredConfigPathKey {
            table: table.clone(),
        });
    }
    if let (Some(d), Some(de)) = (dump_cfg, dump_eff.as_ref()) {
        let dump_path = de.written.map(|w| w.value.clone());
        let differs = dump_path.clone().unwrap_or_default() != config_path
            || mirrors_of(de).len() != mirrors_of(&file_eff).len();
        // the dump fills in defaults: an absent key shows up with its default value, which only
        // matters when it differs from what the file alone gives
        let default_fill =
            file_path.is_none() && dump_path.as_deref() == Some(default_for(&v).as_str());
        if differs && !default_fill {
            if let Some(w) = de.written {
                story.show("containerd config dump", &w.text);
            }
            story.say(format!(
                "`containerd config dump`, which merges imports{} and fills in defaults, says config_path = \"{}\"; that is what containerd runs with",
                if d.imports.is_empty() && facts.config.imports.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", quote_list(&facts.config.imports))
                },
                dump_path.clone().unwrap_or_default()
            ));
            config_path = dump_path.unwrap_or_default();
            eff = de;
        }
    } else if !facts.config.imports.is_empty() {
        story.say(format!(
            "the file imports {} and `containerd config dump` did not run, so settings in those files are not seen",
            quote_list(&facts.config.imports)
        ));
    }
    // defaults (2.2+)
    let written_at_all = eff.written.is_some();
    if !written_at_all && v.at_least(2, 2, 0) && !v.at_least(2, 2, 2) {
        config_path = DEFAULT_CONFIG_PATH_22.to_string();
        if let Some(w) = dump_eff.as_ref().and_then(|d| d.written) {
            story.show("containerd config dump", &w.text);
        }
        story.say(format!(
            "containerd 2.2.0 and 2.2.1 default config_path to \"{DEFAULT_CONFIG_PATH_22}\" when it is not set"
        ));
    }
    let mirrors = mirrors_of(eff);
    if config_path.is_empty() && mirrors.is_empty() && v.at_least(2, 2, 2) {
        config_path = DEFAULT_CONFIG_PATH_22.to_string();
        story.say(format!(
            "containerd {v} sets config_path to \"{DEFAULT_CONFIG_PATH_22}\" at start-up on Linux when neither config_path nor registry.mirrors is set"
        ));
    }
    verdict.config_path.clone_from(&config_path);

    // restart needed?
    if let (Some(file), Some(p)) = (
        &facts.config_file,
        facts
            .processes
            .iter()
            .find(|p| p.same_mount_ns)
            .or_else(|| facts.processes.first()),
    ) && let (Some(mtime), Some(started)) = (file.mtime, p.started)
    {
        // both clocks have one-second granularity (and btime is rounded): allow 2 s
        if mtime > started + 2 {
            story.say(format!(
                    "{} changed {} s after containerd (pid {}) started: config.toml changes, config_path included, only apply after `systemctl restart containerd`, so the running daemon may still use older settings",
                    file.path,
                    mtime - started,
                    p.pid
                ));
            story.fault(NodeFault::ConfigChangedSinceStart);
        }
    }

    // 2. fatal combinations: the CRI (image) plugin does not load. Both were seen on 1.6.20
    // (`failed to load plugin io.containerd.grpc.v1.cri` error="invalid plugin config: …"); 2.x
    // refuses only `mirrors` (internal/cri/config ValidateImageConfig)
    let plugin_error = |error: &str| {
        if v.major < 2 {
            format!(
                "`failed to load plugin io.containerd.grpc.v1.cri` error=\"invalid plugin config: {error}\""
            )
        } else {
            format!("`invalid cri image config: {error}`")
        }
    };
    if !config_path.is_empty() && !mirrors.is_empty() {
        story.show(&cfg_cmd, &mirrors[0].text);
        let error = "`mirrors` cannot be set when `config_path` is provided".to_string();
        story.say(format!(
            "registry.mirrors (line {}) together with config_path makes the CRI plugin fail to load ({}): every pull fails, whatever the scheme",
            mirrors[0].line,
            plugin_error(&error)
        ));
        story.fault(NodeFault::PluginFails { error });
        return finish(verdict, story);
    }
    if v.major == 1
        && !config_path.is_empty()
        && let Some(c) = eff.registry.and_then(|r| r.configs.iter().find(|c| c.tls))
    {
        story.show(&cfg_cmd, &c.text);
        let error = "`configs.tls` cannot be set when `config_path` is provided".to_string();
        story.say(format!(
            "registry.configs.\"{}\".tls (line {}) together with config_path makes the CRI plugin fail to load ({}): every pull fails",
            c.host,
            c.line,
            plugin_error(&error)
        ));
        story.fault(NodeFault::PluginFails { error });
        return finish(verdict, story);
    }

    // 3. pull path
    if v.transfer_service_default() {
        if let Some(line) = &eff.use_local {
            story.show(&cfg_cmd, line);
            story.say(format!(
                "`{line}` makes containerd {v} pull locally (not through the transfer service)"
            ));
            verdict.pull_path = PullPath::Local;
        } else if let Some((what, line)) = eff.local_pull.first() {
            story.show(&cfg_cmd, line);
            story.say(format!(
                "{what} is incompatible with the transfer service, so containerd {v} falls back to local image pull"
            ));
            verdict.pull_path = PullPath::Local;
        } else {
            story.say(format!(
                "containerd {v} pulls through the transfer service (2.1+ default; nothing in the config forces local pull: no use_local_image_pull, registry.mirrors/configs/auths or other incompatible setting)"
            ));
            verdict.pull_path = PullPath::TransferService;
        }
    }

    // 4. which directory
    if config_path.is_empty() {
        story.fault(NodeFault::NoConfigPath);
        let legacy = legacy_endpoints(&v, &host, mirrors);
        if legacy.len() > 1 {
            story.say(format!(
                "config_path is empty, so containerd uses the deprecated registry.mirrors entry for {host}: {}",
                legacy
                    .iter()
                    .map(|e| e.url.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else {
            story.say(format!(
                "config_path is empty, so no hosts.toml is read at all{}",
                if facts.dirs.iter().any(|d| d.hosts_toml.is_some()) {
                    " (the certs.d files on this node are not used)"
                } else {
                    ""
                }
            ));
        }
        verdict.endpoints = legacy;
    } else {
        let split: Vec<String> = config_path
            .split(':')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        let mut winner: Option<(String, String)> = None; // (root, dir)
        let mut not_gathered = false;
        if verdict.pull_path == PullPath::TransferService && config_path.contains(':') {
            verdict.roots = vec![config_path.clone()];
            let found = lookup_whole(facts, &config_path, &host);
            // what the split list would have found: the hosts.toml that is silently ignored
            // what the split list holds: a hosts.toml that is silently ignored
            let would = split.iter().find_map(|r| {
                host_paths(r, &host).into_iter().find_map(|(_, d)| {
                    dir_facts(facts, &d)
                        .filter(|f| f.hosts_toml.is_some())
                        .map(|_| (r.clone(), d))
                })
            });
            story.fault(NodeFault::TransferServiceMultiPath {
                config_path: config_path.clone(),
            });
            match &found {
                Some(d) => winner = Some((config_path.clone(), d.clone())),
                None => {
                    let ignored = would.as_ref().map_or(String::new(), |(r, d)| {
                        show_root_entry(&mut story, facts, r, d.rsplit('/').next().unwrap_or(""));
                        match dir_facts(facts, d).and_then(|f| f.hosts_toml.as_ref()) {
                            Some(h) => format!(" ({} is one of them)", h.path),
                            None => String::new(),
                        }
                    });
                    story.say(format!(
                        "the transfer service takes config_path \"{config_path}\" as ONE directory name (it does not split on ':'), so it looks for \"{}\", which does not exist: every hosts.toml is silently ignored{ignored} and nothing is logged",
                        join(&config_path, &host)
                    ));
                }
            }
        } else {
            verdict.roots.clone_from(&split);
            if split.len() > 1 {
                story.say(format!(
                    "config_path lists {} directories; containerd {v} tries them in order and uses the first that has anything for {host} (including _default), without merging",
                    split.len()
                ));
            }
            for (i, root) in split.iter().enumerate() {
                let (found, gathered) = lookup_root(facts, root, &host);
                not_gathered |= !gathered;
                if let Some(dir) = found {
                    let name = dir.rsplit('/').next().unwrap_or("").to_string();
                    show_root_entry(&mut story, facts, root, &name);
                    // a later root's hosts.toml that this one hides
                    for later in &split[i + 1..] {
                        if let (Some(ld), _) = lookup_root(facts, later, &host)
                            && let Some(h) =
                                dir_facts(facts, &ld).and_then(|f| f.hosts_toml.as_ref())
                        {
                            show_root_entry(
                                &mut story,
                                facts,
                                later,
                                ld.rsplit('/').next().unwrap_or(""),
                            );
                            let empty = dir_facts(facts, &dir).is_some_and(|f| {
                                f.hosts_toml.is_none()
                                    && f.listing
                                        .iter()
                                        .filter(|l| {
                                            let n = l.split_whitespace().last().unwrap_or("");
                                            !matches!(n, "." | "..") && !l.starts_with("total")
                                        })
                                        .count()
                                        == 0
                            });
                            story.say(format!(
                                "{dir}{} comes first, so it wins and {} is never read",
                                if empty { " (an empty directory)" } else { "" },
                                h.path
                            ));
                            story.fault(NodeFault::Shadowed {
                                winner: dir.clone(),
                                hidden: h.path.clone(),
                            });
                            break;
                        }
                    }
                    winner = Some((root.clone(), dir));
                    break;
                }
            }
        }
        if not_gathered {
            story.say(
                "some candidate directories were not in the gathered output; they count as absent",
            );
        }
        match winner {
            None => {
                if !story
                    .faults
                    .iter()
                    .any(|f| matches!(f, NodeFault::TransferServiceMultiPath { .. }))
                {
                    story.fault(NodeFault::NoHostDir);
                    for root in &split {
                        for (_, path) in host_paths(root, &host) {
                            if path.ends_with(&format!("/{host}")) {
                                show_missing(&mut story, facts, &path);
                            }
                        }
                    }
                    story.say(format!(
                        "no directory for {host} ({}, {host} or _default) exists under {}",
                        underscore_dir(&host).unwrap_or_else(|| host.clone()),
                        quote_list(&split)
                    ));
                }
                // a directory named without the port
                if let Some(bare) = facts
                    .dirs
                    .iter()
                    .find(|d| d.kind == DirKind::BareHost && d.exists && split.contains(&d.root))
                {
                    let (h, _) = split_host_port(&host);
                    show_root_entry(&mut story, facts, &bare.root, h);
                    story.say(format!(
                        "there is {} but containerd looks for {}: a directory named without the port never matches {host}",
                        bare.path,
                        join(&bare.root, &host)
                    ));
                    story.fault(NodeFault::DirWithoutPort {
                        dir: bare.path.clone(),
                    });
                }
                verdict.endpoints = vec![default_endpoint(&v, &host, false, true)];
            }
            Some((_, dir)) => {
                verdict.host_dir = Some(dir.clone());
                let facts_dir = dir_facts(facts, &dir);
                let outcome = facts_dir.and_then(|d| read_hosts_toml(&mut story, &v, d));
                match outcome {
                    Some(HostsOutcome {
                        accepted: Some(h),
                        path,
                    }) => {
                        verdict.hosts_toml = Some(path.clone());
                        story.say(format!("containerd reads {path}"));
                        if let Some(d) = facts_dir {
                            for (f, state) in &d.tls_files {
                                if *state == TlsFileState::Missing {
                                    story.say(format!(
                                        "{path} names {f}, which does not exist: containerd fails every pull from {host} (`unable to read CA cert` / `unable to read CERT file`)"
                                    ));
                                    story.fault(NodeFault::MissingTlsFile { path: f.clone() });
                                }
                            }
                        }
                        let eps = hosts_endpoints(&v, &host, &h);
                        describe_hosts(&mut story, &v, &host, &path, &h, &eps);
                        verdict.endpoints = eps;
                    }
                    Some(HostsOutcome { accepted: None, .. }) => {
                        verdict.endpoints = vec![default_endpoint(&v, &host, false, true)];
                    }
                    None => {
                        if let Some(d) = facts_dir
                            && let Some(l) = listing_line(&d.listing, ".")
                        {
                            story.show(&format!("ls -la {dir}"), l);
                        }
                        story.say(format!(
                            "{dir} has no hosts.toml, so containerd only loads certificate files from it and uses the default endpoint"
                        ));
                        story.fault(NodeFault::NoHostsToml { dir: dir.clone() });
                        let tls = facts_dir.is_some_and(|d| {
                            d.listing.iter().any(|l| {
                                let n = l.split_whitespace().last().unwrap_or("");
                                n.ends_with(".crt") || n.ends_with(".cert")
                            })
                        });
                        verdict.endpoints = vec![default_endpoint(&v, &host, tls, true)];
                    }
                }
            }
        }
    }
    verdict.single_root_scheme = single_root_scheme(facts, &v, &host);

    // 5. conclusion
    verdict.scheme = conclude(&verdict.endpoints);
    let first = verdict.endpoints.iter().find(|e| e.resolve);
    match (verdict.scheme, first) {
        (Scheme::Unknown, _) => story.say(format!(
            "no endpoint for {host} has the `resolve` capability, so pulls by tag cannot resolve at all"
        )),
        (scheme, Some(ep)) => story.say(format!(
            "so containerd {v} will use {} for {host} (tag lookups go to {}{})",
            scheme.describe(),
            ep.url,
            if ep.from.starts_with("default") {
                ", by default"
            } else {
                ""
            }
        )),
        _ => {}
    }
    if verdict.scheme == Scheme::Https
        && verdict.hosts_toml.is_some()
        && let Some(path) = verdict.hosts_toml.clone()
        && !story
            .faults
            .iter()
            .any(|f| matches!(f, NodeFault::NoResolve { .. }))
    {
        story.fault(NodeFault::HostsTomlHttps { path });
    }
    finish(verdict, story)
}

/// The scheme with `config_path = "/etc/containerd/certs.d"` and the node's files as they are.
fn single_root_scheme(facts: &NodeFacts, v: &ContainerdVersion, host: &str) -> Scheme {
    let mut scratch = Story {
        reasons: Vec::new(),
        evidence: Vec::new(),
        faults: Vec::new(),
    };
    let dir = lookup_root(facts, SINGLE_ROOT, host).0;
    let accepted = dir
        .as_deref()
        .and_then(|d| dir_facts(facts, d))
        .and_then(|d| read_hosts_toml(&mut scratch, v, d))
        .and_then(|o| o.accepted);
    let endpoints = match accepted {
        Some(h) => hosts_endpoints(v, host, &h),
        None => vec![default_endpoint(v, host, false, true)],
    };
    conclude(&endpoints)
}

/// The `config_path` default a version uses when the key is absent.
fn default_for(v: &ContainerdVersion) -> String {
    if v.at_least(2, 2, 0) && !v.at_least(2, 2, 2) {
        DEFAULT_CONFIG_PATH_22.to_string()
    } else {
        String::new()
    }
}

/// Say what the applied `hosts.toml` means: entries, `resolve`, `server`.
fn describe_hosts(
    story: &mut Story,
    v: &ContainerdVersion,
    host: &str,
    path: &str,
    h: &HostsToml,
    eps: &[Endpoint],
) {
    let cat = format!("cat {path}");
    if let Some(s) = &h.server {
        story.show(&cat, &s.text);
    }
    for entry in &h.hosts {
        story.show(&cat, &entry.text);
        if v.major >= 2 && !entry.from_header {
            story.say(format!(
                "[host.\"{}\"] (line {}) is not a [host.\"…\"] table header; containerd {v} only orders, and so only uses, host tables written as headers",
                entry.url, entry.line
            ));
            continue;
        }
        if let Some(c) = &entry.fields.capabilities {
            story.show(&cat, &c.text);
        }
        let (scheme, _) = url_parts(&entry.url);
        if !entry.fields.can("resolve") {
            // not a fault when another endpoint still resolves over plain HTTP (LAB.md)
            let http_resolver = eps
                .iter()
                .find(|e| e.resolve && e.scheme != Scheme::Https)
                .filter(|_| conclude(eps) != Scheme::Https);
            if let (true, Some(resolver)) = (scheme == "http", http_resolver) {
                story.say(format!(
                    "[host.\"{}\"] (line {}) has capabilities {} without \"resolve\", so it is skipped for tag lookups; but {} is plain HTTP too and resolves them: not a fault",
                    entry.url,
                    entry.line,
                    entry
                        .fields
                        .capabilities
                        .as_ref()
                        .map_or("[]".to_string(), |c| format!("[{}]", quote_list(&c.value))),
                    resolver.from.split(" line").next().unwrap_or("an endpoint")
                ));
            } else if scheme == "http" {
                story.say(format!(
                    "[host.\"{}\"] (line {}) has capabilities {} without \"resolve\", so it is skipped for tag lookups{}",
                    entry.url,
                    entry.line,
                    entry
                        .fields
                        .capabilities
                        .as_ref()
                        .map_or("[]".to_string(), |c| format!("[{}]", quote_list(&c.value))),
                    if h.server.is_none() {
                        format!("; with no `server` line, tag lookups go to https://{host}")
                    } else {
                        String::new()
                    }
                ));
                story.fault(NodeFault::NoResolve {
                    host: entry.url.clone(),
                });
            }
        }
    }
    if h.server.is_none() && h.hosts.is_empty() {
        story.say(format!(
            "{path} sets neither `server` nor a [host] table, so containerd uses the default endpoint"
        ));
    }
    for e in eps {
        if e.scheme == Scheme::HttpsThenHttp && !e.from.starts_with("default") {
            story.say(format!(
                "{} is http:// with a TLS setting (ca, client or skip_verify), so containerd {v} tries HTTPS first and falls back to HTTP (it logs `host will try HTTPS first since it is configured for HTTP with a TLS configuration`)",
                e.from
            ));
        }
    }
}

fn finish(mut verdict: NodeVerdict, story: Story) -> NodeVerdict {
    verdict.faults = story.faults;
    verdict.reasons = story.reasons;
    verdict.evidence = story.evidence;
    verdict
}

// ------------------------------------------------------------------------------------ findings

fn fix(id: &str) -> FixRef {
    let title = match id {
        "hosts-toml-http" => {
            "Write certs.d/<host:port>/hosts.toml with server = \"http://<host:port>\" on every node"
        }
        "single-config-path" => {
            "Set a single directory in config_path (containerd 2.1+ ignores a ':'-separated list) and restart containerd"
        }
        _ => "",
    };
    FixRef {
        id: id.to_string(),
        title: title.to_string(),
    }
}

fn fixes_for(verdict: &NodeVerdict) -> Vec<FixRef> {
    let mut ids: Vec<&str> = Vec::new();
    let config_path_fault = verdict.has(|f| {
        matches!(
            f,
            NodeFault::TransferServiceMultiPath { .. } | NodeFault::IgnoredConfigPathKey { .. }
        )
    }) || (verdict.has(|f| matches!(f, NodeFault::NoConfigPath)));
    if config_path_fault {
        ids.push("single-config-path");
    }
    let hosts_fault = verdict.has(|f| {
        matches!(
            f,
            NodeFault::NoHostDir
                | NodeFault::DirWithoutPort { .. }
                | NodeFault::NoHostsToml { .. }
                | NodeFault::HostsTomlRejected { .. }
                | NodeFault::HostsTomlHttps { .. }
                | NodeFault::NoResolve { .. }
                | NodeFault::Shadowed { .. }
        )
    });
    // after the config_path fix, /etc/containerd/certs.d must hold a good hosts.toml too
    let needs_hosts_after_single =
        config_path_fault && matches!(verdict.single_root_scheme, Scheme::Https | Scheme::Unknown);
    if hosts_fault || needs_hosts_after_single {
        ids.insert(0, "hosts-toml-http");
    }
    if verdict.has(|f| matches!(f, NodeFault::Shadowed { .. }))
        && !ids.contains(&"single-config-path")
    {
        // a ':'-list also breaks on an upgrade to 2.1+
        ids.push("single-config-path");
    }
    ids.into_iter().map(fix).collect()
}

fn next_steps(verdict: &NodeVerdict, registry: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let dir = verdict
        .host_dir
        .clone()
        .unwrap_or_else(|| format!("{SINGLE_ROOT}/{registry}"));
    steps.push(format!(
        "On the node: `grep -n config_path /etc/containerd/config.toml` and `cat {dir}/hosts.toml`."
    ));
    if verdict.has(|f| matches!(f, NodeFault::HostsTomlRejected { .. })) {
        steps.push(
            "`journalctl -u containerd | grep 'failed to decode hosts.toml'` shows containerd rejecting the file at each pull."
                .to_string(),
        );
    }
    if verdict.has(|f| {
        matches!(
            f,
            NodeFault::TransferServiceMultiPath { .. } | NodeFault::IgnoredConfigPathKey { .. }
        )
    }) {
        steps.push(
            "After changing config.toml, `systemctl restart containerd` (hosts.toml changes need no restart); `crictl info | grep -i configPath` shows what the CRI uses."
                .to_string(),
        );
    }
    steps.push(format!(
        "Verify with `crictl pull {registry}/<image>:<tag>` on the node (it goes through the CRI like the kubelet)."
    ));
    steps
}

/// The id of the scheme finding for `node` and `registry` (the fix that answers it derives the
/// same one, so `pulldoctor fix FINDING_ID` selects it).
#[must_use]
pub fn finding_id(node: &str, registry: &str) -> FindingId {
    FindingId::derive(&[
        CHECK_ID,
        Class::HttpVsHttps.id(),
        "node",
        node,
        &registry_host(registry),
    ])
}

/// Findings of `registry.scheme` for one node: one `http_vs_https` finding when containerd will
/// speak HTTPS to a plain-HTTP registry (or HTTP to an HTTPS one), a warning when it will use
/// HTTPS and what the registry speaks is not known, nothing when everything is right.
#[must_use]
pub fn findings(
    verdict: &NodeVerdict,
    node: &str,
    registry: &str,
    registry_speaks_http: Option<bool>,
) -> Vec<Finding> {
    let registry = registry_host(registry);
    let (severity, title, lead) = match (verdict.scheme, registry_speaks_http) {
        (Scheme::Https, Some(true)) => (
            Severity::Error,
            format!(
                "containerd on {node} will speak HTTPS to {registry}, which answers plain HTTP"
            ),
            format!(
                "The registry {registry} speaks plain HTTP, but containerd on {node} will try only HTTPS: pulls fail with `http: server gave HTTP response to HTTPS client`."
            ),
        ),
        (Scheme::Https, None) => (
            Severity::Warning,
            format!("containerd on {node} will use HTTPS for {registry}"),
            format!(
                "containerd on {node} will use HTTPS for {registry}. That is only a problem if the registry speaks plain HTTP (then pulls fail with `http: server gave HTTP response to HTTPS client`); what the registry speaks was not probed."
            ),
        ),
        (Scheme::Http, Some(false)) => (
            Severity::Error,
            format!(
                "containerd on {node} will speak plain HTTP to {registry}, which answers HTTPS"
            ),
            format!(
                "The registry {registry} speaks HTTPS, but containerd on {node} will use plain HTTP for it: pulls fail (`HTTP request to an HTTPS server` / 400)."
            ),
        ),
        _ => return Vec::new(),
    };
    let mut explanation = lead;
    explanation.push_str("\nWhy:\n");
    for r in &verdict.reasons {
        explanation.push_str("- ");
        explanation.push_str(r);
        explanation.push('\n');
    }
    let evidence = verdict
        .evidence
        .iter()
        .map(|e| Evidence {
            source: EvidenceSource::Command {
                host: node.to_string(),
                command: e.command.clone(),
            },
            time: None,
            host: Some(node.to_string()),
            text: e.text.clone(),
            matched: None,
        })
        .collect();
    vec![Finding {
        subject: Subject {
            registry: Some(registry.clone()),
            endpoint: verdict
                .endpoints
                .iter()
                .find(|e| e.resolve)
                .map(|e| e.url.clone()),
            nodes: vec![node.to_string()],
            ..Subject::default()
        },
        explanation: explanation.trim_end().to_string(),
        next_steps: next_steps(verdict, &registry),
        evidence,
        fixes: fixes_for(verdict),
        ..Finding::with_id(
            finding_id(node, &registry),
            CHECK_ID,
            Class::HttpVsHttps,
            severity,
            Target {
                kind: TargetKind::Node,
                name: node.to_string(),
            },
            title,
        )
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        let v = |s: &str| ContainerdVersion::parse(s).map(|v| v.to_string());
        assert_eq!(
            v("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3")
                .as_deref(),
            Some("1.6.20")
        );
        assert_eq!(
            v("containerd github.com/containerd/containerd/v2 v2.1.0 061792f0ecf3684fb30a3a0eb006799b8c6638a7")
                .as_deref(),
            Some("2.1.0")
        );
        assert_eq!(
            v("containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da")
                .as_deref(),
            Some("1.7.27")
        );
        assert_eq!(
            v("containerd github.com/k3s-io/containerd v1.7.11-k3s2").as_deref(),
            Some("1.7.11")
        );
        assert_eq!(v("sh: containerd: not found"), None);
        assert_eq!(v(""), None);
    }

    #[test]
    fn version_rules() {
        let v = |a, b, c| ContainerdVersion {
            major: a,
            minor: b,
            patch: c,
        };
        assert!(!v(1, 6, 20).tls_fallback());
        assert!(v(1, 6, 25).tls_fallback());
        assert!(!v(1, 7, 6).tls_fallback());
        assert!(v(1, 7, 7).tls_fallback());
        assert!(v(2, 0, 0).tls_fallback());
        assert!(!v(1, 7, 31).accepts_hostless_file());
        assert!(v(1, 7, 32).accepts_hostless_file());
        assert!(v(2, 0, 0).accepts_hostless_file());
        assert!(!v(2, 0, 5).transfer_service_default());
        assert!(v(2, 1, 0).transfer_service_default());
    }

    #[test]
    fn host_directory_names() {
        assert_eq!(
            underscore_dir("10.88.1.1:5050").as_deref(),
            Some("10.88.1.1_5050_")
        );
        assert_eq!(underscore_dir("registry.example.com"), None);
        assert_eq!(registry_host("http://10.88.1.1:5050/"), "10.88.1.1:5050");
        assert_eq!(
            registry_host("10.88.1.1:5050/root/gition/backend"),
            "10.88.1.1:5050"
        );
        assert!(is_localhost("localhost:5000"));
        assert!(is_localhost("127.0.0.1:5000"));
        assert!(is_localhost("[::1]:5000"));
        assert!(!is_localhost("10.88.1.1:5050"));
        assert_eq!(
            host_paths("/etc/containerd/certs.d/", "10.88.1.1:5050")
                .into_iter()
                .map(|(_, p)| p)
                .collect::<Vec<_>>(),
            [
                "/etc/containerd/certs.d/10.88.1.1_5050_",
                "/etc/containerd/certs.d/10.88.1.1:5050",
                "/etc/containerd/certs.d/_default"
            ]
        );
    }

    #[test]
    fn section_parser_keeps_bodies_exact() {
        let out = "noise\n@@pulldoctor.7 gather v1\n@@pulldoctor.7 begin hosts-toml size=3 mtime=5 truncated=0 path=/a b/hosts.toml\nx=1\n\n@@pulldoctor.7 end hosts-toml rc=0\n@@pulldoctor.7 begin meta\nno newline at end\n@@pulldoctor.7 end meta\n@@pulldoctor.7 done\n";
        let s = sections(out).unwrap();
        assert_eq!(s[0].body, "x=1\n");
        assert_eq!(s[0].attr("path"), Some("/a b/hosts.toml"));
        assert_eq!(s[0].attr("size"), Some("3"));
        assert_eq!(s[0].attr("rc"), Some("0"));
        assert_eq!(s[1].body, "no newline at end");
        assert_eq!(sections("hello").err(), Some(GatherError::NotGatherOutput));
        assert!(matches!(
            sections("@@pulldoctor.1 gather v1\n@@pulldoctor.1 begin meta\nx=1\n"),
            Err(GatherError::Truncated(s)) if s == "meta"
        ));
    }

    #[test]
    fn conclusion_order() {
        let ep = |scheme, resolve| Endpoint {
            url: String::new(),
            scheme,
            resolve,
            pull: true,
            from: String::new(),
        };
        assert_eq!(
            conclude(&[ep(Scheme::Http, false), ep(Scheme::Https, true)]),
            Scheme::Https
        );
        assert_eq!(
            conclude(&[ep(Scheme::Https, true), ep(Scheme::Http, true)]),
            Scheme::HttpsThenHttp
        );
        assert_eq!(
            conclude(&[ep(Scheme::Http, true), ep(Scheme::Https, true)]),
            Scheme::Http
        );
        assert_eq!(conclude(&[ep(Scheme::Http, false)]), Scheme::Unknown);
    }

    /// The fix ids and titles are the catalog's.
    #[test]
    fn fixes_match_the_catalog() {
        let catalog = crate::check::catalog::Catalog::embedded().unwrap();
        let sig = catalog.get(Class::HttpVsHttps).unwrap();
        for id in ["hosts-toml-http", "single-config-path"] {
            let ours = fix(id);
            let theirs = sig.fixes.iter().find(|f| f.id == id).unwrap();
            assert_eq!(ours.title, theirs.title, "{id}");
        }
    }
}
