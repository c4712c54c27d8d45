//! containerd's `config.toml` (1.x `version = 2` and 2.x `version = 3` layouts) and
//! `certs.d/<host:port>/hosts.toml`, parsed into what decides how a registry is reached.
//!
//! Parsing here is layout only: which keys are written where, with their line numbers (for
//! evidence) and file order (for `[host."…"]` tables). What containerd makes of them depends on its
//! version and lives in `check::node_registry`. Both parsers go through `toml`'s spanned document
//! parser, because the evidence must quote the exact line and the default `toml::Table` neither
//! keeps spans nor file order.

use std::fmt;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The 1.x CRI plugin table (config `version = 2`; containerd 2.x migrates it).
pub const GRPC_CRI: &str = "io.containerd.grpc.v1.cri";
/// The 1.x CRI plugin table in a `version = 1` (or unversioned) file: plugins by short id.
pub const SHORT_CRI: &str = "cri";
/// The 2.x CRI image plugin table (config `version = 3`).
pub const CRI_IMAGES: &str = "io.containerd.cri.v1.images";

/// A TOML file that could not be read: where and why. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}, column {column}: {message}")]
pub struct TomlError {
    /// The file, as the node names it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The offending line, verbatim.
    pub source_line: String,
}

/// A value and the line that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// 1-based line of the value.
    pub line: usize,
    /// That line, verbatim (without its newline).
    pub text: String,
}

/// Byte offsets to lines and columns of one text.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { text, starts }
    }

    /// 1-based line and column of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let idx = self.starts.partition_point(|&s| s <= offset).max(1) - 1;
        let start = self.starts[idx];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (idx + 1, column)
    }

    /// The text of a 1-based line.
    fn line(&self, line: usize) -> &'a str {
        let Some(&start) = self.starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let rest = self.text.get(start..).unwrap_or("");
        rest.split('\n').next().unwrap_or("").trim_end_matches('\r')
    }

    fn located<T>(&self, value: T, offset: usize) -> Located<T> {
        let (line, _) = self.position(offset);
        Located {
            value,
            line,
            text: self.line(line).to_string(),
        }
    }

    fn error(&self, file: &str, offset: usize, message: impl Into<String>) -> TomlError {
        let (line, column) = self.position(offset);
        TomlError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            source_line: self.line(line).to_string(),
        }
    }
}

fn parse_document<'i>(file: &str, text: &'i str) -> Result<DeTable<'i>, TomlError> {
    match DeTable::parse(text) {
        Ok(doc) => Ok(doc.into_inner()),
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            Err(Lines::new(text).error(file, offset, e.message().trim().to_string()))
        }
    }
}

fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    table.get(key)
}

fn subtable<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a DeTable<'i>> {
    get(table, key).and_then(|v| v.get_ref().as_table())
}

fn integer(value: &DeValue<'_>) -> Option<i64> {
    let int = value.as_integer()?;
    i64::from_str_radix(&int.as_str().replace('_', ""), int.radix()).ok()
}

/// The keys of a table, in the order they first appear in the file.
fn keys_in_order<'a>(table: &'a DeTable<'_>) -> Vec<(&'a str, usize)> {
    let mut keys: Vec<(&str, usize)> = table
        .iter()
        .map(|(k, _)| (k.get_ref().as_ref(), k.span().start))
        .collect();
    keys.sort_by_key(|&(_, at)| at);
    keys
}

// ---------------------------------------------------------------------------------- config.toml

/// A legacy `registry.mirrors."host"` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry host the mirror is for (`*` for all).
    pub host: String,
    /// `endpoint = [...]`, in order.
    pub endpoints: Vec<String>,
    /// Where it was written.
    pub line: usize,
    /// That line.
    pub text: String,
}

/// A legacy `registry.configs."host"` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The registry host.
    pub host: String,
    /// It has a `tls` table (containerd 1.7 refuses that together with `config_path`).
    pub tls: bool,
    /// Where it was written.
    pub line: usize,
    /// That line.
    pub text: String,
}

/// One CRI plugin table of `config.toml`, with what decides registry access and the pull path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriSection {
    /// The plugin key (`io.containerd.grpc.v1.cri`, `cri` or `io.containerd.cri.v1.images`).
    pub plugin: String,
    /// `registry.config_path`.
    pub config_path: Option<Located<String>>,
    /// Deprecated `registry.mirrors` (non-empty entries only; an empty table sets nothing).
    pub mirrors: Vec<Mirror>,
    /// Deprecated `registry.configs`.
    pub configs: Vec<RegistryConfig>,
    /// Deprecated `registry.auths` (hosts only).
    pub auths: Vec<Located<String>>,
    /// `use_local_image_pull` (2.1+, images plugin only).
    pub use_local_image_pull: Option<Located<bool>>,
    /// `disable_snapshot_annotations` (`containerd.` subtable in the 1.x layout).
    pub disable_snapshot_annotations: Option<Located<bool>>,
    /// `discard_unpacked_layers` (`containerd.` subtable in the 1.x layout).
    pub discard_unpacked_layers: Option<Located<bool>>,
    /// `max_concurrent_downloads`.
    pub max_concurrent_downloads: Option<Located<i64>>,
    /// `image_pull_with_sync_fs`.
    pub image_pull_with_sync_fs: Option<Located<bool>>,
}

impl CriSection {
    /// The table that holds `config_path`, as written in a config file.
    #[must_use]
    pub fn registry_table(&self) -> String {
        table_name(&self.plugin) + ".registry"
    }
}

/// `plugins."<plugin>"` as TOML writes it.
#[must_use]
pub fn table_name(plugin: &str) -> String {
    if plugin.contains('.') {
        format!("plugins.\"{plugin}\"")
    } else {
        format!("plugins.{plugin}")
    }
}

/// What `config.toml` says about registries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerdConfig {
    /// `version = N`; absent means 1.
    pub version: Option<Located<i64>>,
    /// `imports = [...]` (other files merged in).
    pub imports: Vec<String>,
    /// `[plugins.cri]`, the `version = 1` spelling of the 1.x CRI plugin.
    pub cri_short: Option<CriSection>,
    /// `[plugins."io.containerd.grpc.v1.cri"]`, the 1.x CRI plugin.
    pub grpc_cri: Option<CriSection>,
    /// `[plugins."io.containerd.cri.v1.images"]`, the 2.x CRI image plugin.
    pub cri_images: Option<CriSection>,
}

impl ContainerdConfig {
    /// The file's layout version (absent = 1).
    #[must_use]
    pub fn file_version(&self) -> i64 {
        self.version.as_ref().map_or(1, |v| v.value)
    }
}

fn located_str(
    lines: &Lines<'_>,
    file: &str,
    table: &DeTable<'_>,
    key: &str,
) -> Result<Option<Located<String>>, TomlError> {
    let Some(v) = get(table, key) else {
        return Ok(None);
    };
    match v.get_ref().as_str() {
        Some(s) => Ok(Some(lines.located(s.to_string(), v.span().start))),
        None => Err(lines.error(
            file,
            v.span().start,
            format!("`{key}` must be a string, not {}", v.get_ref().type_str()),
        )),
    }
}

fn located_bool(
    lines: &Lines<'_>,
    file: &str,
    table: &DeTable<'_>,
    key: &str,
) -> Result<Option<Located<bool>>, TomlError> {
    let Some(v) = get(table, key) else {
        return Ok(None);
    };
    match v.get_ref().as_bool() {
        Some(b) => Ok(Some(lines.located(b, v.span().start))),
        None => Err(lines.error(
            file,
            v.span().start,
            format!("`{key}` must be a boolean, not {}", v.get_ref().type_str()),
        )),
    }
}

fn located_int(
    lines: &Lines<'_>,
    file: &str,
    table: &DeTable<'_>,
    key: &str,
) -> Result<Option<Located<i64>>, TomlError> {
    let Some(v) = get(table, key) else {
        return Ok(None);
    };
    match integer(v.get_ref()) {
        Some(i) => Ok(Some(lines.located(i, v.span().start))),
        None => Err(lines.error(
            file,
            v.span().start,
            format!("`{key}` must be an integer, not {}", v.get_ref().type_str()),
        )),
    }
}

fn cri_section(
    lines: &Lines<'_>,
    file: &str,
    plugin: &str,
    table: &DeTable<'_>,
) -> Result<CriSection, TomlError> {
    let mut section = CriSection {
        plugin: plugin.to_string(),
        ..CriSection::default()
    };
    // In the 1.x layout the snapshot settings live under `containerd`; 2.x's migration copies
    // them from there, so read them where the layout puts them.
    let snap = if plugin == CRI_IMAGES {
        Some(table)
    } else {
        subtable(table, "containerd")
    };
    if let Some(snap) = snap {
        section.disable_snapshot_annotations =
            located_bool(lines, file, snap, "disable_snapshot_annotations")?;
        section.discard_unpacked_layers =
            located_bool(lines, file, snap, "discard_unpacked_layers")?;
    }
    section.max_concurrent_downloads = located_int(lines, file, table, "max_concurrent_downloads")?;
    section.image_pull_with_sync_fs = located_bool(lines, file, table, "image_pull_with_sync_fs")?;
    section.use_local_image_pull = located_bool(lines, file, table, "use_local_image_pull")?;
    let Some(registry) = get(table, "registry") else {
        return Ok(section);
    };
    let Some(registry) = registry.get_ref().as_table() else {
        return Err(lines.error(file, registry.span().start, "`registry` must be a table"));
    };
    section.config_path = located_str(lines, file, registry, "config_path")?;
    if let Some(mirrors) = subtable(registry, "mirrors") {
        for (host, at) in keys_in_order(mirrors) {
            let Some(entry) = get(mirrors, host) else {
                continue;
            };
            let endpoints: Vec<String> = entry
                .get_ref()
                .as_table()
                .and_then(|t| get(t, "endpoint"))
                .and_then(|e| e.get_ref().as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.get_ref().as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let loc = lines.located((), at);
            section.mirrors.push(Mirror {
                host: host.to_string(),
                endpoints,
                line: loc.line,
                text: loc.text,
            });
        }
    }
    if let Some(configs) = subtable(registry, "configs") {
        for (host, at) in keys_in_order(configs) {
            let tls = get(configs, host)
                .and_then(|c| c.get_ref().as_table())
                .is_some_and(|t| get(t, "tls").is_some());
            let loc = lines.located((), at);
            section.configs.push(RegistryConfig {
                host: host.to_string(),
                tls,
                line: loc.line,
                text: loc.text,
            });
        }
    }
    if let Some(auths) = subtable(registry, "auths") {
        for (host, at) in keys_in_order(auths) {
            section.auths.push(lines.located(host.to_string(), at));
        }
    }
    Ok(section)
}

/// Parse containerd's `config.toml`. `file` names it in errors.
///
/// # Errors
/// Invalid TOML, or a registry key of the wrong type (containerd refuses to start with either):
/// the message says where, by line and column.
pub fn parse_config(file: &str, text: &str) -> Result<ContainerdConfig, TomlError> {
    let doc = parse_document(file, text)?;
    let lines = Lines::new(text);
    let mut config = ContainerdConfig {
        version: located_int(&lines, file, &doc, "version")?,
        ..ContainerdConfig::default()
    };
    if let Some(imports) = get(&doc, "imports").and_then(|v| v.get_ref().as_array()) {
        config.imports = imports
            .iter()
            .filter_map(|v| v.get_ref().as_str().map(str::to_string))
            .collect();
    }
    if let Some(plugins) = subtable(&doc, "plugins") {
        for (key, slot) in [
            (SHORT_CRI, &mut config.cri_short),
            (GRPC_CRI, &mut config.grpc_cri),
            (CRI_IMAGES, &mut config.cri_images),
        ] {
            if let Some(table) = subtable(plugins, key) {
                *slot = Some(cri_section(&lines, file, key, table)?);
            }
        }
    }
    Ok(config)
}

// ----------------------------------------------------------------------------------- hosts.toml

/// Whether `hosts.toml` has a `host` tree (containerd before 1.7.32 refuses a file without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTree {
    /// No `host` key at all.
    Absent,
    /// `host` is a table (possibly empty: `[host]`).
    Table,
    /// `host` is something else.
    NotTable,
}

/// The keys valid both at the top level of `hosts.toml` and in each `[host."…"]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFields {
    /// `capabilities = [...]` as written (empty or absent means all).
    pub capabilities: Option<Located<Vec<String>>>,
    /// `ca` paths (a string or a list), as written.
    pub ca: Vec<String>,
    /// `client` paths (a string, a list, or a list of `[cert, key]` pairs), flattened.
    pub client: Vec<String>,
    /// `skip_verify`.
    pub skip_verify: Option<Located<bool>>,
    /// `override_path`.
    pub override_path: Option<bool>,
    /// A `header` table is set (it gives the host its own HTTP client).
    pub header: bool,
    /// `dial_timeout` (2.x).
    pub dial_timeout: Option<String>,
    /// Values containerd refuses (wrong type): the whole file is then rejected.
    pub problems: Vec<Located<String>>,
}

impl HostFields {
    /// The capabilities in effect: what is written, or all of them when nothing (or `[]`) is.
    #[must_use]
    pub fn capability_names(&self) -> Vec<String> {
        match &self.capabilities {
            Some(c) if !c.value.is_empty() => c.value.iter().map(|s| s.to_lowercase()).collect(),
            _ => ["pull", "resolve", "push", "referrers"]
                .map(str::to_string)
                .to_vec(),
        }
    }

    /// Whether the capabilities in effect include `name`.
    #[must_use]
    pub fn can(&self, name: &str) -> bool {
        self.capability_names().iter().any(|c| c == name)
    }

    /// TLS settings are present (`ca`, `client` or `skip_verify`).
    #[must_use]
    pub fn has_tls(&self) -> bool {
        !self.ca.is_empty() || !self.client.is_empty() || self.skip_verify.is_some()
    }
}

/// One `[host."url"]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The table's key: a URL, or a `host[:port]` that containerd prefixes with `https://`.
    pub url: String,
    /// Line of its first `[host."…"]` header (or of the key).
    pub line: usize,
    /// That line.
    pub text: String,
    /// It was defined by a `[host."…"]` table header (containerd 2.x orders, and so uses, only
    /// those; a dotted or inline definition is not seen there).
    pub from_header: bool,
    /// Its settings.
    pub fields: HostFields,
}

/// What a `hosts.toml` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsToml {
    /// Top-level `server`.
    pub server: Option<Located<String>>,
    /// Top-level settings (they apply to `server`).
    pub fields: HostFields,
    /// Shape of the `host` key.
    pub host_tree: HostTree,
    /// `[host."…"]` tables in file order.
    pub hosts: Vec<HostEntry>,
}

fn strings(value: &DeValue<'_>) -> Option<Vec<String>> {
    match value {
        DeValue::String(s) => Some(vec![s.to_string()]),
        DeValue::Array(a) => a
            .iter()
            .map(|v| v.get_ref().as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

fn host_fields(lines: &Lines<'_>, table: &DeTable<'_>) -> HostFields {
    let mut f = HostFields::default();
    let problem = |f: &mut HostFields, at: usize, msg: String| {
        f.problems.push(lines.located(msg, at));
    };
    if let Some(v) = get(table, "capabilities") {
        match v.get_ref() {
            DeValue::Array(a) => {
                let caps: Option<Vec<String>> = a
                    .iter()
                    .map(|c| c.get_ref().as_str().map(str::to_string))
                    .collect();
                match caps {
                    Some(caps) => f.capabilities = Some(lines.located(caps, v.span().start)),
                    None => problem(
                        &mut f,
                        v.span().start,
                        "`capabilities` must be a list of strings".to_string(),
                    ),
                }
            }
            other => problem(
                &mut f,
                v.span().start,
                format!("`capabilities` must be a list, not {}", other.type_str()),
            ),
        }
    }
    if let Some(v) = get(table, "ca") {
        match strings(v.get_ref()) {
            Some(ca) => f.ca = ca,
            None => problem(
                &mut f,
                v.span().start,
                format!("invalid type {} for \"ca\"", v.get_ref().type_str()),
            ),
        }
    }
    if let Some(v) = get(table, "client") {
        let flat: Option<Vec<String>> = match v.get_ref() {
            DeValue::String(s) => Some(vec![s.to_string()]),
            DeValue::Array(a) => a
                .iter()
                .map(|item| strings(item.get_ref()))
                .collect::<Option<Vec<_>>>()
                .map(|v| v.into_iter().flatten().collect()),
            _ => None,
        };
        match flat {
            Some(c) => f.client = c,
            None => problem(
                &mut f,
                v.span().start,
                format!("invalid type {} for \"client\"", v.get_ref().type_str()),
            ),
        }
    }
    if let Some(v) = get(table, "skip_verify") {
        match v.get_ref().as_bool() {
            Some(b) => f.skip_verify = Some(lines.located(b, v.span().start)),
            None => problem(
                &mut f,
                v.span().start,
                format!(
                    "`skip_verify` must be a boolean, not {}",
                    v.get_ref().type_str()
                ),
            ),
        }
    }
    if let Some(v) = get(table, "override_path") {
        match v.get_ref().as_bool() {
            Some(b) => f.override_path = Some(b),
            None => problem(
                &mut f,
                v.span().start,
                format!(
                    "`override_path` must be a boolean, not {}",
                    v.get_ref().type_str()
                ),
            ),
        }
    }
    if let Some(v) = get(table, "header") {
        if v.get_ref().is_table() {
            f.header = true;
        } else {
            problem(
                &mut f,
                v.span().start,
                format!("`header` must be a table, not {}", v.get_ref().type_str()),
            );
        }
    }
    if let Some(v) = get(table, "dial_timeout") {
        match v.get_ref().as_str() {
            Some(s) => f.dial_timeout = Some(s.to_string()),
            None => problem(
                &mut f,
                v.span().start,
                format!(
                    "`dial_timeout` must be a string, not {}",
                    v.get_ref().type_str()
                ),
            ),
        }
    }
    f
}

/// One key of a dotted table header, and the rest of the header after it.
fn header_key(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((out, &rest[i + 1..])),
                '\\' => {
                    // keep escapes simple: \" and \\ are all a URL key needs
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                }
                _ => out.push(c),
            }
        }
        None
    } else if let Some(rest) = s.strip_prefix('\'') {
        let end = rest.find('\'')?;
        Some((rest[..end].to_string(), &rest[end + 1..]))
    } else {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((s[..end].to_string(), &s[end..]))
    }
}

/// The dotted key of a `[table]` header line (not `[[array]]`), or None.
fn table_header(line: &str) -> Option<Vec<String>> {
    let inner = line.trim_start().strip_prefix('[')?;
    if inner.starts_with('[') {
        return None;
    }
    let mut parts = Vec::new();
    let mut rest = inner;
    loop {
        let (key, after) = header_key(rest)?;
        parts.push(key);
        let after = after.trim_start();
        if let Some(r) = after.strip_prefix('.') {
            rest = r;
        } else if after.starts_with(']') {
            return Some(parts);
        } else {
            return None;
        }
    }
}

/// `[host."…"]` keys by their first table header, in file order, with the header's line. Both
/// containerd generations order hosts by where their table first appears.
fn host_headers(text: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut in_multiline: Option<&str> = None;
    for (idx, line) in text.lines().enumerate() {
        // skip the inside of multi-line strings, where a `[host.…]` line is only text
        for delim in ["\"\"\"", "'''"] {
            let n = line.matches(delim).count();
            if n % 2 == 1 {
                in_multiline = match in_multiline {
                    Some(d) if d == delim => None,
                    None => Some(delim),
                    other => other,
                };
            }
        }
        if in_multiline.is_some() {
            continue;
        }
        if let Some(parts) = table_header(line)
            && parts.len() >= 2
            && parts[0] == "host"
            && !out.iter().any(|(h, _)| *h == parts[1])
        {
            out.push((parts[1].clone(), idx + 1));
        }
    }
    out
}

/// Parse a `hosts.toml`. `file` names it in errors.
///
/// # Errors
/// Invalid TOML (containerd logs `failed to decode hosts.toml` and ignores the file): the message
/// says where, by line and column. Values of the wrong type are not errors here; they are listed
/// in [`HostFields::problems`], because whether they matter depends on the containerd version.
pub fn parse_hosts_toml(file: &str, text: &str) -> Result<HostsToml, TomlError> {
    let doc = parse_document(file, text)?;
    let lines = Lines::new(text);
    let mut fields = host_fields(&lines, &doc);
    let server = match get(&doc, "server") {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            Some(s) => Some(lines.located(s.to_string(), v.span().start)),
            None => {
                fields.problems.push(lines.located(
                    format!("`server` must be a string, not {}", v.get_ref().type_str()),
                    v.span().start,
                ));
                None
            }
        },
    };
    let (host_tree, mut hosts) = match get(&doc, "host") {
        None => (HostTree::Absent, Vec::new()),
        Some(v) => match v.get_ref().as_table() {
            None => (HostTree::NotTable, Vec::new()),
            Some(table) => {
                let headers = host_headers(text);
                let mut hosts: Vec<(usize, HostEntry)> = Vec::new();
                for (key, at) in keys_in_order(table) {
                    let Some(value) = get(table, key) else {
                        continue;
                    };
                    let mut entry_fields = match value.get_ref().as_table() {
                        Some(t) => host_fields(&lines, t),
                        None => HostFields::default(),
                    };
                    if !value.get_ref().is_table() {
                        entry_fields.problems.push(lines.located(
                            format!("host \"{key}\" must be a table"),
                            value.span().start,
                        ));
                    }
                    let (line, from_header) = match headers.iter().find(|(h, _)| h == key) {
                        Some((_, line)) => (*line, true),
                        None => (lines.position(at).0, false),
                    };
                    hosts.push((
                        line,
                        HostEntry {
                            url: key.to_string(),
                            line,
                            text: lines.line(line).to_string(),
                            from_header,
                            fields: entry_fields,
                        },
                    ));
                }
                hosts.sort_by_key(|(line, _)| *line);
                (HostTree::Table, hosts.into_iter().map(|(_, h)| h).collect())
            }
        },
    };
    hosts.dedup_by(|a, b| a.url == b.url);
    Ok(HostsToml {
        server,
        fields,
        host_tree,
        hosts,
    })
}

impl fmt::Display for HostTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostTree::Absent => "no `host` table",
            HostTree::Table => "a `host` table",
            HostTree::NotTable => "a `host` key that is not a table",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB_HEALTHY: &str = "server = \"http://10.88.1.1:5050\"\n\n[host.\"http://10.88.1.1:5050\"]\n  capabilities = [\"pull\", \"resolve\"]\n";

    /// The lab's healthy hosts.toml: server, one host, its capabilities and lines.
    #[test]
    fn hosts_toml_healthy() {
        let h = parse_hosts_toml("hosts.toml", LAB_HEALTHY).unwrap();
        let server = h.server.unwrap();
        assert_eq!(server.value, "http://10.88.1.1:5050");
        assert_eq!(server.line, 1);
        assert_eq!(h.host_tree, HostTree::Table);
        assert_eq!(h.hosts.len(), 1);
        let host = &h.hosts[0];
        assert_eq!(host.url, "http://10.88.1.1:5050");
        assert_eq!(host.line, 3);
        assert_eq!(host.text, "[host.\"http://10.88.1.1:5050\"]");
        assert!(host.from_header);
        assert!(host.fields.can("resolve"));
        assert!(!host.fields.can("push"));
        assert_eq!(host.fields.capabilities.as_ref().unwrap().line, 4);
        // the top level has no capabilities: all of them
        assert!(h.fields.can("push"));
    }

    /// Hosts come back in file order, not sorted, and a `.header` subtable places its host.
    #[test]
    fn hosts_in_file_order() {
        let text = "[host.\"https://zz.example:5000\"]\n  capabilities = [\"pull\"]\n\n\
                    [host.'http://aa.example:5000'.header]\n  x = \"1\"\n\n\
                    [host.\"http://aa.example:5000\"]\n  skip_verify = true\n\n\
                    [host.\"https://mm.example\"]\n";
        let h = parse_hosts_toml("h", text).unwrap();
        let urls: Vec<_> = h.hosts.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://zz.example:5000",
                "http://aa.example:5000",
                "https://mm.example"
            ]
        );
        assert_eq!(h.hosts[1].line, 4);
        assert!(h.hosts[1].fields.header);
        assert_eq!(
            h.hosts[1].fields.skip_verify.as_ref().map(|s| s.value),
            Some(true)
        );
        assert_eq!(h.host_tree, HostTree::Table);
        assert!(h.server.is_none());
    }

    /// A dotted definition is a host too, but not one from a header.
    #[test]
    fn dotted_host_is_flagged() {
        let h = parse_hosts_toml("h", "host.\"http://a:1\".capabilities = [\"pull\"]\n").unwrap();
        assert_eq!(h.hosts.len(), 1);
        assert!(!h.hosts[0].from_header);
        assert_eq!(h.hosts[0].line, 1);
    }

    /// `server =` only: no host tree (containerd before 1.7.32 rejects that).
    #[test]
    fn server_only() {
        let h = parse_hosts_toml("h", "server = \"http://10.88.1.1:5050\"\n").unwrap();
        assert_eq!(h.host_tree, HostTree::Absent);
        assert!(h.hosts.is_empty());
        let h = parse_hosts_toml("h", "server = \"http://x\"\n[host]\n").unwrap();
        assert_eq!(h.host_tree, HostTree::Table);
    }

    /// `ca`/`client` shapes, wrong types become problems, `[]` capabilities mean all.
    #[test]
    fn field_shapes_and_problems() {
        let text = "ca = [\"a.crt\", \"/abs/b.crt\"]\nclient = [[\"c.cert\", \"c.key\"]]\ncapabilities = []\n\
                    [host.\"https://x\"]\n  ca = 5\n  skip_verify = \"yes\"\n  capabilities = [\"pull\", 3]\n";
        let h = parse_hosts_toml("h", text).unwrap();
        assert_eq!(h.fields.ca, ["a.crt", "/abs/b.crt"]);
        assert_eq!(h.fields.client, ["c.cert", "c.key"]);
        assert!(h.fields.can("resolve"));
        assert!(h.fields.problems.is_empty());
        let p: Vec<_> = h.hosts[0]
            .fields
            .problems
            .iter()
            .map(|p| (p.line, p.value.as_str()))
            .collect();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p.contains(&(5, "invalid type integer for \"ca\"")), "{p:?}");
        assert!(
            p.contains(&(7, "`capabilities` must be a list of strings")),
            "{p:?}"
        );
    }

    /// Invalid TOML: a clear message with line and column, never a panic.
    #[test]
    fn invalid_hosts_toml_has_position() {
        let text = "server = \"http://10.88.1.1:5050\"\n[host.\"http://10.88.1.1:5050\"\n  capabilities = [\"pull\"]\n";
        let e = parse_hosts_toml("/etc/containerd/certs.d/10.88.1.1:5050/hosts.toml", text)
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.column > 1);
        assert_eq!(e.source_line, "[host.\"http://10.88.1.1:5050\"");
        let shown = e.to_string();
        assert!(
            shown.starts_with("/etc/containerd/certs.d/10.88.1.1:5050/hosts.toml: line 2, column"),
            "{shown}"
        );
    }

    /// The three CRI tables, config_path lines, empty legacy tables set nothing.
    #[test]
    fn config_keys_and_lines() {
        let text = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    max_concurrent_downloads = 3\n\
                    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      disable_snapshot_annotations = true\n\
                    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n      config_path = \"/etc/containerd/certs.d\"\n\
                    [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors]\n\
                    [plugins.\"io.containerd.grpc.v1.cri\".registry.configs]\n\
                    [plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r:5000\".tls]\n      insecure_skip_verify = true\n\
                    [plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = '/x'\n";
        let c = parse_config("config.toml", text).unwrap();
        assert_eq!(c.file_version(), 2);
        let g = c.grpc_cri.unwrap();
        let cp = g.config_path.unwrap();
        assert_eq!(cp.value, "/etc/containerd/certs.d");
        assert_eq!(cp.line, 9);
        assert_eq!(cp.text.trim(), "config_path = \"/etc/containerd/certs.d\"");
        assert!(g.mirrors.is_empty());
        assert_eq!(g.configs.len(), 1);
        assert!(g.configs[0].tls);
        assert_eq!(g.max_concurrent_downloads.unwrap().value, 3);
        assert!(g.disable_snapshot_annotations.unwrap().value);
        assert_eq!(c.cri_images.unwrap().config_path.unwrap().value, "/x");
        assert!(c.cri_short.is_none());
        assert_eq!(
            g.plugin.as_str(),
            GRPC_CRI,
            "the section knows its plugin key"
        );
    }

    /// An unversioned file and the short `cri` id; mirrors with endpoints in order.
    #[test]
    fn config_v1_and_mirrors() {
        let text = "[plugins.cri.registry.mirrors.\"10.0.0.5:5000\"]\n  endpoint = [\"http://10.0.0.5:5000\"]\n";
        let c = parse_config("c", text).unwrap();
        assert_eq!(c.file_version(), 1);
        let s = c.cri_short.unwrap();
        assert_eq!(s.registry_table(), "plugins.cri.registry");
        assert_eq!(s.mirrors[0].host, "10.0.0.5:5000");
        assert_eq!(s.mirrors[0].endpoints, ["http://10.0.0.5:5000"]);
        assert_eq!(s.mirrors[0].line, 1);
    }

    /// Invalid config.toml, and a config_path of the wrong type: line and column.
    #[test]
    fn invalid_config_has_position() {
        let e = parse_config(
            "/etc/containerd/config.toml",
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry\n  config_path = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.file.as_str()),
            (2, "/etc/containerd/config.toml")
        );
        let e = parse_config(
            "c",
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = 5\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (3, 17));
        assert!(e.message.contains("must be a string"), "{}", e.message);
    }

    /// Odd inputs never panic.
    #[test]
    fn odd_inputs_do_not_panic() {
        for text in [
            "",
            "\u{feff}",
            "[",
            "[[host]]\nx=1",
            "host = 3",
            "host = { \"a\" = 1 }",
            "a = \"\"\"\n[host.\"x\"]\n\"\"\"\n",
            "\r\n\r\n[host.\"é\"]\r\n",
        ] {
            let _ = parse_hosts_toml("h", text);
            let _ = parse_config("c", text);
        }
        let h = parse_hosts_toml("h", "host = 3\n").unwrap();
        assert_eq!(h.host_tree, HostTree::NotTable);
        let h = parse_hosts_toml("h", "a = \"\"\"\n[host.\"x\"]\n\"\"\"\n").unwrap();
        assert_eq!(h.host_tree, HostTree::Absent);
    }
}
