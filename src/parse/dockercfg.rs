//! Image pull secrets as kubelet reads them (DOMAIN.md §6.1): a Kubernetes Secret (JSON from
//! `kubectl get secret -o json`, or a YAML manifest), a raw `.dockerconfigjson` /
//! `~/.docker/config.json`, or the legacy `.dockercfg` map, turned into credential entries with
//! what kubelet would make of each, and the keyring lookup that picks entries for an image.
//!
//! YAML is read line by line, with no YAML library: top-level `type:` and `kind:`, and the
//! `.dockerconfigjson` / `.dockercfg` key under top-level `data:` (base64) or `stringData:`
//! (raw JSON). The value may be a plain, single- or double-quoted scalar on one line, or a
//! `|`/`>` block or plain continuation lines indented below the key. Flow mappings
//! (`data: {…}`), anchors, tags and multi-document files with several Secrets are not
//! understood: the first matching key wins. `kubectl get secret -o json` output is exact.

use super::jwt::base64_decode;
use serde_json::{Map, Value};

/// Largest input accepted: a Secret holds at most 1 MiB of data, which base64 and a manifest
/// around it bring to under 2 MiB.
pub const MAX_SECRET_LEN: usize = 4 * 1024 * 1024;

const TYPE_DOCKERCONFIGJSON: &str = "kubernetes.io/dockerconfigjson";
const TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
const KEY_DOCKERCONFIGJSON: &str = ".dockerconfigjson";
const KEY_DOCKERCFG: &str = ".dockercfg";

/// A password or token. `Debug` and `Display` print `[REDACTED]` and it is deliberately not
/// `Serialize`, so it cannot reach a log or a report by accident; [`Secret::expose`] is the one
/// way to read it, and greppable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Only for sending it where it belongs (an `Authorization` header).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True if there is no secret.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// What the input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A Secret as JSON (`kubectl get secret -o json`).
    SecretJson,
    /// A Secret as a YAML manifest (read line by line; see the module comment).
    SecretYaml,
    /// A `.dockerconfigjson` / `~/.docker/config.json` (`{"auths": {…}}`), possibly base64.
    DockerConfigJson,
    /// A legacy `.dockercfg` (registry keys at the top level), possibly base64.
    DockerCfg,
}

/// One registry key of the config, with the credentials kubelet would use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The `auths` key as written (`gitlab.example.com:5050`, `https://index.docker.io/v1/`).
    pub key: String,
    /// The effective username: from `auth` when present, else the `username` field.
    pub username: Option<String>,
    /// The effective password, likewise.
    pub password: Secret,
    /// True when the credentials came from `auth`, which kubelet prefers over `username` and
    /// `password`; a disagreement between them is listed in `problems`.
    pub auth_overrode: bool,
    /// What would stop or mislead kubelet, in plain words. Never contains a password.
    pub problems: Vec<String>,
}

/// A parsed pull secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// One entry per registry key, in key order.
    pub entries: Vec<Entry>,
    /// What the input was.
    pub source: Source,
    /// Problems with the secret as a whole (wrong `type`, missing `auths` wrapper, credential
    /// helpers). Per-entry problems are on the entries.
    pub problems: Vec<String>,
}

/// Why no config could be read. Messages never quote the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerCfgError {
    /// Nothing to read.
    #[error("pull secret: empty input")]
    Empty,
    /// Larger than [`MAX_SECRET_LEN`].
    #[error("pull secret: input is {len} bytes, larger than {MAX_SECRET_LEN}")]
    TooLarge {
        /// Length in bytes.
        len: usize,
    },
    /// Neither JSON, a YAML Secret manifest nor base64 of a docker config.
    #[error("pull secret: not a Secret (JSON or YAML), a docker config JSON, or base64 of one")]
    Unrecognised,
    /// Invalid JSON.
    #[error("pull secret: {what} is not valid JSON ({category} at line {line}, column {column})")]
    Json {
        /// Which document.
        what: &'static str,
        /// serde_json's category.
        category: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// JSON, but not an object where one was needed.
    #[error("pull secret: {what} is not a JSON object")]
    NotObject {
        /// Which document.
        what: &'static str,
    },
    /// A `List` of objects rather than one Secret.
    #[error(
        "pull secret: a List of {count} items; pass one Secret (`kubectl get secret NAME -o json`)"
    )]
    List {
        /// Number of items.
        count: usize,
    },
    /// A Secret without `.dockerconfigjson` or `.dockercfg` data.
    #[error("pull secret: the Secret has no `.dockerconfigjson` or `.dockercfg` data")]
    NoDockerConfigKey,
    /// The data value is not base64.
    #[error("pull secret: `{key}` data is not base64 ({reason} at character {offset})")]
    Base64 {
        /// The data key.
        key: &'static str,
        /// Byte offset inside the value, whitespace removed.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// The decoded data is not UTF-8 text.
    #[error("pull secret: `{key}` data is not UTF-8 text")]
    NotText {
        /// The data key.
        key: &'static str,
    },
}

/// Read a pull secret in any of the forms in the module comment.
///
/// # Errors
/// [`DockerCfgError`] when the input is none of them or its docker config cannot be read at
/// all. Problems kubelet would trip on but that leave something readable are reported in
/// [`DockerConfig::problems`] and [`Entry::problems`] instead.
pub fn parse_secret(text: &str) -> Result<DockerConfig, DockerCfgError> {
    if text.len() > MAX_SECRET_LEN {
        return Err(DockerCfgError::TooLarge { len: text.len() });
    }
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return Err(DockerCfgError::Empty);
    }
    if t.starts_with('{') {
        return from_json_document(json_object(t, "input")?);
    }
    if looks_like_yaml(t) {
        return from_yaml(t);
    }
    // `kubectl get secret -o jsonpath='{.data.\.dockerconfigjson}'` prints bare base64.
    let compact: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if let Ok(bytes) = base64_decode(&compact)
        && let Ok(decoded) = String::from_utf8(bytes)
        && decoded.trim_start().starts_with('{')
    {
        let map = json_object(&decoded, "decoded base64")?;
        return Ok(from_config_map(&map, None));
    }
    Err(DockerCfgError::Unrecognised)
}

fn json_object(text: &str, what: &'static str) -> Result<Map<String, Value>, DockerCfgError> {
    // serde_json's messages can quote the input, which may hold a password: keep the position.
    let value: Value = serde_json::from_str(text).map_err(|e| DockerCfgError::Json {
        what,
        category: super::json_error_category(&e),
        line: e.line(),
        column: e.column(),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(DockerCfgError::NotObject { what }),
    }
}

/// Go's `encoding/json` matches field names case-insensitively (an exact match first), and
/// kubelet decodes with it, so `"Auths"` and `"Username"` count.
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn from_json_document(doc: Map<String, Value>) -> Result<DockerConfig, DockerCfgError> {
    let kind = doc.get("kind").and_then(Value::as_str);
    if kind.is_some_and(|k| k.ends_with("List"))
        || (kind.is_none() && doc.get("items").is_some_and(Value::is_array))
    {
        let count = doc
            .get("items")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        return Err(DockerCfgError::List { count });
    }
    let is_secret = kind == Some("Secret")
        || (doc.contains_key("apiVersion")
            && (doc.contains_key("data") || doc.contains_key("stringData")));
    if !is_secret {
        return Ok(from_config_map(&doc, None));
    }
    let type_ = doc.get("type").and_then(Value::as_str);
    let strings = |name: &str| -> Vec<(String, String)> {
        doc.get(name)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    from_secret_parts(
        type_,
        &strings("data"),
        &strings("stringData"),
        Source::SecretJson,
    )
}

/// The common tail of the JSON and YAML Secret readers: pick the data key kubelet would read
/// for this `type`, decode it and parse the config inside.
fn from_secret_parts(
    type_: Option<&str>,
    data: &[(String, String)],
    string_data: &[(String, String)],
    source: Source,
) -> Result<DockerConfig, DockerCfgError> {
    // `stringData` is merged over `data` by the API server, so it wins.
    let lookup = |key: &'static str| -> Option<Result<String, DockerCfgError>> {
        if let Some((_, v)) = string_data.iter().find(|(k, _)| k == key) {
            return Some(Ok(v.clone()));
        }
        let (_, v) = data.iter().find(|(k, _)| k == key)?;
        let compact: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        Some(
            base64_decode(&compact)
                .map_err(|e| DockerCfgError::Base64 {
                    key,
                    offset: e.offset,
                    reason: e.reason,
                })
                .and_then(|b| String::from_utf8(b).map_err(|_| DockerCfgError::NotText { key })),
        )
    };
    let legacy_type = type_ == Some(TYPE_DOCKERCFG);
    let (first, second) = if legacy_type {
        (KEY_DOCKERCFG, KEY_DOCKERCONFIGJSON)
    } else {
        (KEY_DOCKERCONFIGJSON, KEY_DOCKERCFG)
    };
    let (key, json) = match lookup(first) {
        Some(v) => (first, v?),
        None => match lookup(second) {
            Some(v) => (second, v?),
            None => return Err(DockerCfgError::NoDockerConfigKey),
        },
    };
    let mut problems = Vec::new();
    let wanted_type = if key == KEY_DOCKERCFG {
        TYPE_DOCKERCFG
    } else {
        TYPE_DOCKERCONFIGJSON
    };
    match type_ {
        Some(t) if t == wanted_type => {}
        Some(t) => problems.push(format!(
            "the Secret's type is `{t}`, but kubelet reads `{key}` only from a Secret of type \
             `{wanted_type}`: it ignores this secret"
        )),
        None => problems.push(format!(
            "the Secret has no `type`, so the API server makes it `Opaque` and kubelet ignores \
             it; set `type: {wanted_type}`"
        )),
    }
    let what = if key == KEY_DOCKERCFG {
        "`.dockercfg` data"
    } else {
        "`.dockerconfigjson` data"
    };
    let map = json_object(&json, what)?;
    let mut cfg = from_config_map(&map, Some(key));
    cfg.source = source;
    problems.append(&mut cfg.problems);
    cfg.problems = problems;
    Ok(cfg)
}

/// A docker config object. `key` says which Secret data key it came from, if any; without one
/// the layout decides (`auths` → `.dockerconfigjson`, otherwise legacy).
fn from_config_map(map: &Map<String, Value>, key: Option<&str>) -> DockerConfig {
    let mut problems = Vec::new();
    let auths = field(map, "auths");
    let helpers = ["credsStore", "credHelpers"]
        .into_iter()
        .filter(|h| field(map, h).is_some())
        .collect::<Vec<_>>();
    if !helpers.is_empty() {
        problems.push(format!(
            "`{}` is set: `docker login` kept credentials in a helper, which kubelet never runs; \
             only what is in `auths` counts",
            helpers.join("`, `")
        ));
    }
    let (source, entries_map) = match (key, auths) {
        (Some(KEY_DOCKERCFG), Some(Value::Object(inner))) => {
            problems.push(
                "`.dockercfg` data has an `auths` wrapper: kubelet reads legacy data without \
                 one and takes `auths` for a registry name; use type \
                 `kubernetes.io/dockerconfigjson` with key `.dockerconfigjson`"
                    .to_string(),
            );
            (Source::DockerCfg, Some(inner))
        }
        (Some(KEY_DOCKERCFG), _) => (Source::DockerCfg, None),
        (_, Some(Value::Object(inner))) => (Source::DockerConfigJson, Some(inner)),
        (_, Some(Value::Null)) => (Source::DockerConfigJson, None),
        (_, Some(_)) => {
            problems.push(
                "`auths` is not a JSON object: kubelet fails to read the whole secret".to_string(),
            );
            (Source::DockerConfigJson, None)
        }
        (Some(_), None) => {
            problems.push(
                "`.dockerconfigjson` data has no `auths` wrapper, so kubelet finds no \
                 credentials in it (this is the legacy `.dockercfg` layout)"
                    .to_string(),
            );
            (Source::DockerConfigJson, None)
        }
        (None, None) => (Source::DockerCfg, None),
    };
    let helper_hint = !helpers.is_empty();
    let entries: Vec<Entry> = match (source, entries_map) {
        (_, Some(inner)) => inner
            .iter()
            .map(|(k, v)| entry(k, v, helper_hint))
            .collect(),
        // Legacy layout: every top-level key is a registry, except config.json's own settings.
        (Source::DockerCfg, None) => map
            .iter()
            .filter(|(k, _)| !is_config_setting(k))
            .map(|(k, v)| entry(k, v, helper_hint))
            .collect(),
        // `.dockerconfigjson` without `auths`: show what is there, kubelet would not use it.
        (_, None) if key.is_some() => map
            .iter()
            .filter(|(k, _)| !is_config_setting(k))
            .map(|(k, v)| entry(k, v, helper_hint))
            .collect(),
        _ => Vec::new(),
    };
    // serde_json's map order depends on a crate feature; sort so output never does.
    let mut entries = entries;
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    if entries.is_empty() {
        problems.push("no registry entries: kubelet has no credentials from this secret".into());
    }
    DockerConfig {
        entries,
        source,
        problems,
    }
}

/// Top-level keys of `~/.docker/config.json` that are settings, not registries.
fn is_config_setting(key: &str) -> bool {
    [
        "auths",
        "credsStore",
        "credHelpers",
        "HttpHeaders",
        "psFormat",
        "imagesFormat",
        "detachKeys",
        "currentContext",
        "proxies",
        "plugins",
        "experimental",
        "stackOrchestrator",
        "kubernetes",
        "features",
        "aliases",
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(key))
}

/// One registry entry, applying `DockerConfigEntry.UnmarshalJSON`.
fn entry(key: &str, value: &Value, helper_hint: bool) -> Entry {
    let mut e = Entry {
        key: key.to_string(),
        username: None,
        password: Secret::default(),
        auth_overrode: false,
        problems: Vec::new(),
    };
    if parse_key(key).is_none() {
        e.problems.push(
            "the key is not a registry host[:port][/path] kubelet can parse; it ignores this entry"
                .into(),
        );
    } else if key.bytes().any(|b| b.is_ascii_uppercase()) {
        e.problems.push(
            "the key has upper-case letters: kubelet compares hosts case-sensitively with the \
             image name"
                .into(),
        );
    }
    let Some(obj) = value.as_object() else {
        e.problems
            .push("the entry is not a JSON object: kubelet fails to read the whole secret".into());
        return e;
    };
    let mut string = |name: &str| -> Option<String> {
        match field(obj, name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                e.problems.push(format!(
                    "`{name}` is not a string: kubelet fails to read the whole secret"
                ));
                None
            }
        }
    };
    let username = string("username");
    let password = string("password");
    let auth = string("auth");
    let identity = string("identitytoken");
    e.username.clone_from(&username);
    e.password = Secret::new(password.clone().unwrap_or_default());

    // kubelet: an empty `auth` is as good as none.
    if let Some(auth) = auth.filter(|a| !a.is_empty()) {
        match decode_auth(&auth) {
            Err(problem) => e.problems.push(problem),
            Ok((user, pass)) => {
                if username.as_deref().is_some_and(|u| u != user) {
                    e.problems.push(format!(
                        "`auth` decodes to user `{user}` but `username` says `{}`: kubelet uses \
                         `auth`",
                        username.as_deref().unwrap_or_default()
                    ));
                }
                if password.as_deref().is_some_and(|p| p != pass) {
                    e.problems.push(
                        "`auth` holds a different password from `password`: kubelet uses `auth`"
                            .into(),
                    );
                }
                if user.is_empty() {
                    e.problems
                        .push("`auth` decodes to an empty username".into());
                }
                if pass.is_empty() {
                    e.problems
                        .push("`auth` decodes to an empty password".into());
                }
                e.username = Some(user);
                e.password = Secret::new(pass);
                e.auth_overrode = true;
            }
        }
    } else if e.username.as_deref().is_none_or(str::is_empty) && e.password.is_empty() {
        let mut p = "no credentials: neither `auth` nor `username`/`password`".to_string();
        if identity.is_some() {
            p.push_str("; `identitytoken` is not used by kubelet");
        } else if helper_hint {
            p.push_str(" (they are in a credential helper kubelet does not run)");
        }
        e.problems.push(p);
    } else if e.username.as_deref().is_none_or(str::is_empty) {
        e.problems.push("`password` without a `username`".into());
    } else if e.password.is_empty() {
        e.problems.push("`username` without a `password`".into());
    }
    if e.username.as_deref() == Some("gitlab-ci-token") {
        e.problems.push(
            "user `gitlab-ci-token` is a CI job token, valid only while that job runs: pulls \
             fail once it ends (use a deploy token)"
                .into(),
        );
    }
    e
}

/// kubelet's `decodeDockerConfigFieldAuth`: padded → `StdEncoding`, unpadded →
/// `RawStdEncoding`, then split at the first `:`. The error says what kubelet would do.
fn decode_auth(auth: &str) -> Result<(String, String), String> {
    const WHOLE: &str = "kubelet fails to read the whole secret";
    if auth.contains(['-', '_']) {
        return Err(format!(
            "`auth` uses URL-safe base64 (`-`/`_`); kubelet decodes standard base64 only, so \
             {WHOLE}"
        ));
    }
    let bytes = base64_decode(auth.trim_end_matches(['\r', '\n']))
        .map_err(|e| format!("`auth` is not valid base64 ({e}): {WHOLE}"))?;
    let text = String::from_utf8_lossy(&bytes);
    match text.split_once(':') {
        Some((u, p)) => Ok((u.to_string(), p.to_string())),
        None => Err(format!(
            "unable to parse auth field, must be formatted as base64(username:password): {WHOLE}"
        )),
    }
}

fn looks_like_yaml(t: &str) -> bool {
    t.lines().any(|l| {
        ["apiVersion:", "kind:", "data:", "stringData:", "type:"]
            .iter()
            .any(|p| l.starts_with(p))
    })
}

/// Strip YAML quoting from a one-line scalar and a trailing ` # comment` from a plain one.
fn yaml_scalar(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('\'') {
        let end = inner.rfind('\'').unwrap_or(inner.len());
        return inner[..end].replace("''", "'");
    }
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        return out;
    }
    let v = v.find(" #").map_or(v, |i| &v[..i]);
    v.trim().to_string()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn from_yaml(text: &str) -> Result<DockerConfig, DockerCfgError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut type_ = None;
    let mut kind = None;
    let mut section = "";
    let mut data = Vec::new();
    let mut string_data = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        i += 1;
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line == "---" || line.starts_with("--- ") {
            section = "";
            continue;
        }
        let ind = indent(line);
        let Some((raw_key, raw_value)) = line.trim_start().split_once(':') else {
            continue;
        };
        let key = yaml_scalar(raw_key);
        if ind == 0 {
            section = "";
            match key.as_str() {
                "type" if type_.is_none() => type_ = Some(yaml_scalar(raw_value)),
                "kind" if kind.is_none() => kind = Some(yaml_scalar(raw_value)),
                "data" => section = "data",
                "stringData" => section = "stringData",
                _ => {}
            }
            continue;
        }
        if section.is_empty() || (key != KEY_DOCKERCONFIGJSON && key != KEY_DOCKERCFG) {
            continue;
        }
        let value = raw_value.trim();
        let block = value.is_empty() || value.starts_with('|') || value.starts_with('>');
        let value = if block {
            // Continuation lines: everything indented deeper than the key.
            let mut parts = Vec::new();
            while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > ind) {
                parts.push(lines[i].trim());
                i += 1;
            }
            if section == "data" || value.starts_with('>') || value.is_empty() {
                parts.join(if section == "data" { "" } else { " " })
            } else {
                parts.join("\n")
            }
        } else {
            yaml_scalar(value)
        };
        let target = if section == "data" {
            &mut data
        } else {
            &mut string_data
        };
        if !target.iter().any(|(k, _): &(String, String)| *k == key) {
            target.push((key, value));
        }
    }
    if let Some(k) = kind.as_deref()
        && k.ends_with("List")
    {
        return Err(DockerCfgError::List { count: 0 });
    }
    if data.is_empty() && string_data.is_empty() {
        return Err(if kind.is_some() || type_.is_some() {
            DockerCfgError::NoDockerConfigKey
        } else {
            DockerCfgError::Unrecognised
        });
    }
    from_secret_parts(type_.as_deref(), &data, &string_data, Source::SecretYaml)
}

impl DockerConfig {
    /// The entries kubelet would try for `image`, in entry order (kubelet's `Lookup`): every
    /// entry whose key `URLsMatch`es the image; if none does and the image is on Docker Hub,
    /// the entry keyed `index.docker.io` (or `https://index.docker.io/v1/`).
    ///
    /// The image is normalised first, as kubelet does: `nginx` → `docker.io/library/nginx`,
    /// `index.docker.io/x` → `docker.io/x`; its tag and digest are dropped.
    #[must_use]
    pub fn matching(&self, image: &str) -> Vec<&Entry> {
        let target = normalize_image(image);
        let Some((t_host, t_path)) = split_target(&target) else {
            return Vec::new();
        };
        let keyed: Vec<(&Entry, (String, String))> = self
            .entries
            .iter()
            .filter_map(|e| parse_key(&e.key).map(|k| (e, k)))
            .collect();
        let matched: Vec<&Entry> = keyed
            .iter()
            .filter(|(_, (host, path))| urls_match(host, path, t_host, t_path))
            .map(|(e, _)| *e)
            .collect();
        if !matched.is_empty() || !is_default_registry_match(&target) {
            return matched;
        }
        keyed
            .iter()
            .filter(|(_, (host, path))| host == "index.docker.io" && path.is_empty())
            .map(|(e, _)| *e)
            .collect()
    }
}

/// kubelet's `BasicDockerKeyring.Add` key form: scheme stripped, `/v1/` or `/v2/` path prefix
/// dropped (Docker's convention), a bare `/` path dropped. Returns (host[:port], path).
fn parse_key(key: &str) -> Option<(String, String)> {
    let key = key.trim();
    let lower = key.get(..8).unwrap_or(key).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &key[8..]
    } else if lower.starts_with("http://") {
        &key[7..]
    } else {
        key
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.is_empty() || !valid_authority(authority) {
        return None;
    }
    let path = if path.starts_with("/v2/") || path.starts_with("/v1/") {
        &path[3..]
    } else {
        path
    };
    let path = if path == "/" { "" } else { path };
    Some((authority.to_string(), path.to_string()))
}

/// What Go's `url.Parse` accepts as a host: no spaces or controls, and a port of digits.
fn valid_authority(a: &str) -> bool {
    if a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let port = if let Some(inner) = a.strip_prefix('[') {
        match inner.split_once(']') {
            Some((_, "")) => None,
            Some((_, after)) => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
            None => return false,
        }
    } else {
        a.rsplit_once(':').map(|(_, p)| p)
    };
    port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Docker reference normalisation (`ParseNormalizedNamed` + `Name()`): Docker Hub domain and
/// `library/` added, `index.docker.io` → `docker.io`, tag and digest dropped.
fn normalize_image(image: &str) -> String {
    use super::image_ref::{DOCKER_HUB, split_domain, split_name_tag_digest};
    let (name, _, _) = split_name_tag_digest(image.trim());
    match split_domain(name) {
        (None | Some(DOCKER_HUB), rest) if !rest.contains('/') => {
            format!("{DOCKER_HUB}/library/{rest}")
        }
        (domain, rest) => format!("{}/{rest}", domain.unwrap_or(DOCKER_HUB)),
    }
}

fn split_target(target: &str) -> Option<(&str, &str)> {
    let (host, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, ""),
    };
    (!host.is_empty()).then_some((host, path))
}

/// kubelet's `isDefaultRegistryMatch`, on a normalised name.
fn is_default_registry_match(image: &str) -> bool {
    match image.split_once('/') {
        None => !image.is_empty(),
        Some(("", _)) => false,
        Some((first, _)) => {
            first == "docker.io" || first == "index.docker.io" || !first.contains(['.', ':'])
        }
    }
}

/// Go's `net.SplitHostPort`, falling back to (whole, "") where it errors, as `SplitURL` does.
fn split_host_port(hostport: &str) -> (&str, &str) {
    if let Some(inner) = hostport.strip_prefix('[')
        && let Some((ip, after)) = inner.split_once(']')
        && let Some(port) = after.strip_prefix(':')
    {
        return (ip, port);
    }
    match hostport.split_once(':') {
        Some((h, p)) if !p.contains(':') => (h, p),
        _ => (hostport, ""),
    }
}

/// kubelet's `URLsMatch`: same port, same number of host labels, each label glob-matched, and
/// the key's path a (string) prefix of the image's path.
fn urls_match(key_host: &str, key_path: &str, host: &str, path: &str) -> bool {
    let (kh, kp) = split_host_port(key_host);
    let (th, tp) = split_host_port(host);
    if kp != tp {
        return false;
    }
    let kl: Vec<&str> = kh.split('.').collect();
    let tl: Vec<&str> = th.split('.').collect();
    kl.len() == tl.len()
        && path.starts_with(key_path)
        && kl.iter().zip(&tl).all(|(g, t)| glob_match(g, t))
}

/// Go's `filepath.Match` for one host label: `*`, `?`, `[…]` classes with ranges and `^`
/// negation, `\` escapes. A malformed pattern matches nothing (kubelet treats the error as
/// no match).
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => match class_match(&p, pi, n[ni]) {
                    None => return false,
                    Some((true, next)) => {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                },
                '\\' => {
                    if pi + 1 >= p.len() {
                        return false;
                    }
                    if p[pi + 1] == n[ni] {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against the class starting at `p[start] == '['`: `Some((matched, index after ]))`,
/// `None` if the class is malformed.
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut ranges = 0;
    loop {
        if *p.get(i)? == ']' && ranges > 0 {
            i += 1;
            break;
        }
        let lo = class_char(p, &mut i)?;
        let hi = if p.get(i) == Some(&'-') {
            i += 1;
            class_char(p, &mut i)?
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
        ranges += 1;
    }
    Some((matched != negate, i))
}

/// Go's `getEsc`: one class character, `\` escaping; a bare `-` or `]` is a bad pattern.
fn class_char(p: &[char], i: &mut usize) -> Option<char> {
    let mut c = *p.get(*i)?;
    if c == '-' || c == ']' {
        return None;
    }
    if c == '\\' {
        *i += 1;
        c = *p.get(*i)?;
    }
    *i += 1;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard padded base64, as Kubernetes writes Secret data.
    fn b64(data: &[u8]) -> String {
        crate::parse::jwt::base64_encode(data, false)
    }

    fn ok(text: &str) -> DockerConfig {
        parse_secret(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn cfg_json(auths: &str) -> String {
        format!(r#"{{"auths":{{{auths}}}}}"#)
    }

    fn keys<'a>(cfg: &'a DockerConfig, image: &str) -> Vec<&'a str> {
        cfg.matching(image).iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn secret_redacts() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(s.expose(), "hunter2");
        let e = Entry {
            key: "k".into(),
            username: Some("u".into()),
            password: s,
            auth_overrode: false,
            problems: vec![],
        };
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    /// A GitLab deploy token secret as `kubectl create secret docker-registry` makes it.
    #[test]
    fn kubectl_json_secret() {
        let cfg = cfg_json(&format!(
            r#""gitlab.example.com:5050":{{"username":"gitlab+deploy-token-1","password":"gldt-abc","auth":"{}"}}"#,
            b64(b"gitlab+deploy-token-1:gldt-abc")
        ));
        let secret = format!(
            r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"regcred","namespace":"default"}},"type":"kubernetes.io/dockerconfigjson","data":{{".dockerconfigjson":"{}"}}}}"#,
            b64(cfg.as_bytes())
        );
        let c = ok(&secret);
        assert_eq!(c.source, Source::SecretJson);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.entries.len(), 1);
        let e = &c.entries[0];
        assert_eq!(e.key, "gitlab.example.com:5050");
        assert_eq!(e.username.as_deref(), Some("gitlab+deploy-token-1"));
        assert_eq!(e.password.expose(), "gldt-abc");
        assert!(e.auth_overrode);
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        assert_eq!(
            keys(&c, "gitlab.example.com:5050/group/app:v1"),
            ["gitlab.example.com:5050"]
        );
        assert!(keys(&c, "gitlab.example.com/group/app:v1").is_empty());
    }

    /// §6.1: a stale `auth` beside correct username/password: kubelet uses `auth`.
    #[test]
    fn stale_auth_overrides() {
        let c = ok(&cfg_json(&format!(
            r#""registry.example.com":{{"username":"new","password":"right","auth":"{}"}}"#,
            b64(b"old:wrong")
        )));
        let e = &c.entries[0];
        assert!(e.auth_overrode);
        assert_eq!(e.username.as_deref(), Some("old"));
        assert_eq!(e.password.expose(), "wrong");
        assert_eq!(e.problems.len(), 2, "{:?}", e.problems);
        assert!(e.problems[0].contains("`old`") && e.problems[0].contains("`new`"));
        assert!(
            e.problems
                .iter()
                .all(|p| !p.contains("right") && !p.contains("wrong"))
        );
    }

    #[test]
    fn auth_only_and_fields_only() {
        let c = ok(&cfg_json(&format!(
            r#""a.example.com":{{"auth":"{}"}},"b.example.com":{{"username":"u","password":"p:w"}},"c.example.com":{{"username":"u","password":"p","auth":""}}"#,
            b64(b"user:pa:ss")
        )));
        let a = &c.entries[0];
        assert_eq!(
            (a.username.as_deref(), a.password.expose()),
            (Some("user"), "pa:ss")
        );
        assert!(a.auth_overrode && a.problems.is_empty());
        let b = &c.entries[1];
        assert_eq!(
            (b.username.as_deref(), b.password.expose()),
            (Some("u"), "p:w")
        );
        assert!(!b.auth_overrode && b.problems.is_empty());
        // an empty `auth` is ignored, as kubelet does
        let cc = &c.entries[2];
        assert!(!cc.auth_overrode && cc.problems.is_empty());
        assert_eq!(cc.password.expose(), "p");
    }

    #[test]
    fn unparsable_auth() {
        let c = ok(&cfg_json(&format!(
            r#""a":{{"auth":"{}","username":"u","password":"p"}},"b":{{"auth":"!!!"}},"c":{{"auth":"dXNlcjpwYXNz"}},"d":{{"auth":"{}"}},"e":{{"auth":"Pz8_"}}"#,
            b64(b"no-colon-here"),
            b64(b"user:pass").trim_end_matches('=')
        )));
        let a = &c.entries[0];
        assert!(!a.auth_overrode);
        assert_eq!(a.username.as_deref(), Some("u"));
        assert!(
            a.problems[0].starts_with("unable to parse auth field"),
            "{:?}",
            a.problems
        );
        assert!(c.entries[1].problems[0].contains("not valid base64"));
        assert!(c.entries[2].auth_overrode);
        assert!(
            c.entries[3].auth_overrode,
            "unpadded auth is fine (RawStdEncoding)"
        );
        assert!(c.entries[4].problems[0].contains("URL-safe"));
    }

    #[test]
    fn empty_credentials_and_gitlab_job_token() {
        let c = ok(&cfg_json(
            r#""a":{},"b":{"username":"u"},"c":{"password":"p"},"d":{"username":"gitlab-ci-token","password":"x"},"e":"str","f":{"username":5}"#,
        ));
        let p = |i: usize| c.entries[i].problems.join("|");
        assert!(p(0).contains("no credentials"));
        assert!(p(1).contains("without a `password`"));
        assert!(p(2).contains("without a `username`"));
        assert!(p(3).contains("CI job token"));
        assert!(p(4).contains("not a JSON object"));
        assert!(p(5).contains("`username` is not a string"));
    }

    #[test]
    fn go_json_is_case_insensitive() {
        let c = ok(&format!(
            r#"{{"Auths":{{"h.example.com":{{"Username":"u","PASSWORD":"p","Auth":"{}"}}}}}}"#,
            b64(b"a:b")
        ));
        assert_eq!(c.source, Source::DockerConfigJson);
        assert_eq!(c.entries[0].username.as_deref(), Some("a"));
        assert!(c.entries[0].auth_overrode);
    }

    #[test]
    fn docker_config_json_with_helpers() {
        let c = ok(
            r#"{"auths":{"https://index.docker.io/v1/":{},"gitlab.example.com:5050":{"auth":"dTpw"}},"credsStore":"desktop","HttpHeaders":{"User-Agent":"x"}}"#,
        );
        assert_eq!(c.source, Source::DockerConfigJson);
        assert!(c.problems[0].contains("credsStore"));
        let hub = c
            .entries
            .iter()
            .find(|e| e.key.contains("index"))
            .map(|e| e.problems.join(""));
        assert!(hub.unwrap_or_default().contains("credential helper"));
    }

    #[test]
    fn legacy_dockercfg() {
        let raw = format!(
            r#"{{"gitlab.example.com:5050":{{"auth":"{}","email":"x@y"}}}}"#,
            b64(b"u:p")
        );
        let c = ok(&raw);
        assert_eq!(c.source, Source::DockerCfg);
        assert_eq!(c.entries[0].username.as_deref(), Some("u"));
        let secret = format!(
            r#"{{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/dockercfg","data":{{".dockercfg":"{}"}}}}"#,
            b64(raw.as_bytes())
        );
        let c = ok(&secret);
        assert_eq!(c.source, Source::SecretJson);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.entries[0].password.expose(), "p");
    }

    #[test]
    fn secret_type_problems() {
        let data = b64(cfg_json(r#""h":{"auth":"dTpw"}"#).as_bytes());
        let opaque = format!(
            r#"{{"apiVersion":"v1","kind":"Secret","type":"Opaque","data":{{".dockerconfigjson":"{data}"}}}}"#
        );
        let c = ok(&opaque);
        assert!(c.problems[0].contains("`Opaque`"), "{:?}", c.problems);
        assert_eq!(c.entries.len(), 1);
        let untyped = format!(
            r#"{{"apiVersion":"v1","kind":"Secret","data":{{".dockerconfigjson":"{data}"}}}}"#
        );
        assert!(ok(&untyped).problems[0].contains("no `type`"));
        // legacy type with the new key: kubelet reads neither
        let mixed = format!(
            r#"{{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/dockercfg","data":{{".dockerconfigjson":"{data}"}}}}"#
        );
        assert!(ok(&mixed).problems[0].contains("kubernetes.io/dockerconfigjson"));
        // `.dockerconfigjson` without `auths`
        let bare = b64(br#"{"h":{"auth":"dTpw"}}"#);
        let c = ok(&format!(
            r#"{{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/dockerconfigjson","data":{{".dockerconfigjson":"{bare}"}}}}"#
        ));
        assert!(
            c.problems[0].contains("no `auths` wrapper"),
            "{:?}",
            c.problems
        );
        assert_eq!(c.entries.len(), 1);
        // `.dockercfg` with an `auths` wrapper
        let c = ok(&format!(
            r#"{{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/dockercfg","data":{{".dockercfg":"{data}"}}}}"#
        ));
        assert!(
            c.problems[0].contains("`auths` wrapper"),
            "{:?}",
            c.problems
        );
    }

    #[test]
    fn string_data_wins() {
        let s = r#"{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"e30="},"stringData":{".dockerconfigjson":"{\"auths\":{\"h\":{\"auth\":\"dTpw\"}}}"}}"#;
        assert_eq!(ok(s).entries.len(), 1);
    }

    #[test]
    fn yaml_manifest() {
        let cfg = cfg_json(&format!(
            r#""gitlab.example.com:5050":{{"auth":"{}"}}"#,
            b64(b"gitlab+deploy-token-3:tok")
        ));
        let data = b64(cfg.as_bytes());
        for value in [
            data.clone(),
            format!("\"{data}\""),
            format!("'{data}'"),
            format!("{data} # comment"),
        ] {
            let y = format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  # type: Opaque\n  namespace: apps\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {value}\n"
            );
            let c = ok(&y);
            assert_eq!(c.source, Source::SecretYaml);
            assert!(c.problems.is_empty(), "{:?}", c.problems);
            assert_eq!(
                c.entries[0].username.as_deref(),
                Some("gitlab+deploy-token-3")
            );
        }
        // `data` before `type`, quoted key, block scalar split over lines
        let (a, b) = data.split_at(data.len() / 2);
        let y = format!(
            "kind: Secret\ndata:\n  \".dockerconfigjson\": |\n    {a}\n    {b}\ntype: \"kubernetes.io/dockerconfigjson\"\n"
        );
        assert_eq!(ok(&y).entries.len(), 1);
        // stringData with raw JSON
        let y = format!(
            "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{cfg}'\n"
        );
        assert_eq!(ok(&y).entries[0].password.expose(), "tok");
        let y = "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: |\n    {\"auths\": {\n      \"h\": {\"username\": \"u\", \"password\": \"p\"}}}\n";
        assert_eq!(ok(y).entries[0].key, "h");
        // type missing from the manifest
        let y = format!("apiVersion: v1\nkind: Secret\ndata:\n  .dockerconfigjson: {data}\n");
        assert!(ok(&y).problems[0].contains("no `type`"));
    }

    #[test]
    fn yaml_errors() {
        assert_eq!(
            parse_secret("apiVersion: v1\nkind: Secret\ntype: Opaque\ndata:\n  password: eA==\n"),
            Err(DockerCfgError::NoDockerConfigKey)
        );
        assert!(matches!(
            parse_secret("kind: Secret\ndata:\n  .dockerconfigjson: not*base64\n"),
            Err(DockerCfgError::Base64 {
                key: ".dockerconfigjson",
                ..
            })
        ));
        assert!(matches!(
            parse_secret("kind: Secret\ndata:\n  .dockerconfigjson: bm90IGpzb24=\n"),
            Err(DockerCfgError::Json { .. })
        ));
        assert!(matches!(
            parse_secret("kind: Secret\ndata:\n  .dockerconfigjson: //79\n"),
            Err(DockerCfgError::NotText { .. })
        ));
        assert!(matches!(
            parse_secret("apiVersion: v1\nkind: List\nitems: []\n"),
            Err(DockerCfgError::List { .. })
        ));
        assert_eq!(
            parse_secret("data: {.dockerconfigjson: e30=}\n"),
            Err(DockerCfgError::Unrecognised)
        );
    }

    #[test]
    fn bare_base64_of_config() {
        let cfg = cfg_json(r#""h:5000":{"auth":"dTpw"}"#);
        let c = ok(&format!("{}\n", b64(cfg.as_bytes())));
        assert_eq!(c.source, Source::DockerConfigJson);
        assert_eq!(c.entries[0].key, "h:5000");
    }

    #[test]
    fn errors_and_garbage() {
        assert_eq!(parse_secret(""), Err(DockerCfgError::Empty));
        assert_eq!(parse_secret(" \n\u{feff}"), Err(DockerCfgError::Empty));
        assert_eq!(
            parse_secret("hello world"),
            Err(DockerCfgError::Unrecognised)
        );
        assert_eq!(
            parse_secret("\u{0}\u{1}\u{fffd}"),
            Err(DockerCfgError::Unrecognised)
        );
        assert!(matches!(
            parse_secret("{"),
            Err(DockerCfgError::Json { .. })
        ));
        assert!(matches!(
            parse_secret(r#"{"auths":{"h":{"password":"hunter2"}"#),
            Err(DockerCfgError::Json { .. })
        ));
        assert!(matches!(
            parse_secret(r#"{"kind":"List","items":[{},{}]}"#),
            Err(DockerCfgError::List { count: 2 })
        ));
        assert!(matches!(
            parse_secret(r#"{"apiVersion":"v1","kind":"Secret","data":{}}"#),
            Err(DockerCfgError::NoDockerConfigKey)
        ));
        let c = ok("{}");
        assert!(c.entries.is_empty() && c.problems[0].contains("no registry entries"));
        assert!(ok(r#"{"auths":5}"#).problems[0].contains("not a JSON object"));
        assert!(matches!(
            parse_secret(&"{".repeat(1 << 20)),
            Err(DockerCfgError::Json { .. })
        ));
        assert!(matches!(
            parse_secret(&"x".repeat(MAX_SECRET_LEN + 1)),
            Err(DockerCfgError::TooLarge { .. })
        ));
        assert_eq!(
            parse_secret(&"A".repeat(1 << 20)),
            Err(DockerCfgError::Unrecognised)
        );
        assert_eq!(
            parse_secret(&"kind: Secret\n".repeat(50_000)),
            Err(DockerCfgError::NoDockerConfigKey)
        );
        for g in [
            "{\"auths\":{\"h\":{\"auth\":\"\u{0}\"}}}",
            "type:\n",
            "data:\n  .dockercfg:",
            "data:\n  .dockercfg: '",
            "data:\n  .dockercfg: \"\\",
            "kind: \"",
            ":",
            "data:\n  .dockerconfigjson: |\n",
        ] {
            let _ = parse_secret(g);
        }
    }

    #[test]
    fn errors_never_quote_passwords() {
        for bad in [
            r#"{"auths":{"h":{"password":"hunter2"}"#.to_string(),
            r#"{"auths":{"h":{"password":hunter2}}}"#.to_string(),
            format!(
                "kind: Secret\ndata:\n  .dockerconfigjson: {}\n",
                b64(br#"{"auths":{"h":{"password":"hunter2""#)
            ),
        ] {
            let e = parse_secret(&bad)
                .err()
                .map(|e| format!("{e} {e:?}"))
                .unwrap_or_default();
            assert!(!e.is_empty() && !e.contains("hunter2"), "{e}");
        }
        let c = ok(&cfg_json(&format!(
            r#""h":{{"username":"u","password":"hunter2","auth":"{}"}}"#,
            b64(b"u:hunter3")
        )));
        assert!(!format!("{c:?}").contains("hunter"));
    }

    #[test]
    fn url_matching_rules() {
        let c = ok(&cfg_json(
            r#""gitlab.example.com":{"auth":"dTpw"},"gitlab.example.com:5050":{"auth":"dTpw"},"*.example.com":{"auth":"dTpw"},"https://reg.example.com:5050/team":{"auth":"dTpw"},"http://[::1]:5000":{"auth":"dTpw"},"10.0.0.5:5000/v2/":{"auth":"dTpw"},"bad host":{"auth":"dTpw"}"#,
        ));
        // the port must match exactly
        assert_eq!(
            keys(&c, "gitlab.example.com:5050/g/app:1"),
            ["gitlab.example.com:5050"]
        );
        assert_eq!(
            keys(&c, "gitlab.example.com/g/app"),
            ["*.example.com", "gitlab.example.com"]
        );
        // labels glob, but the label count must match
        assert_eq!(keys(&c, "a.example.com/x"), ["*.example.com"]);
        assert!(keys(&c, "example.com/x").is_empty());
        assert!(keys(&c, "a.b.example.com/x").is_empty());
        // path prefix (a plain string prefix, as kubelet does)
        assert_eq!(
            keys(&c, "reg.example.com:5050/team/app@sha256:abc"),
            ["https://reg.example.com:5050/team"]
        );
        assert_eq!(
            keys(&c, "reg.example.com:5050/teamx/app"),
            ["https://reg.example.com:5050/team"]
        );
        assert!(keys(&c, "reg.example.com:5050/other/app").is_empty());
        // IPv6 and /v2/ stripped
        assert_eq!(keys(&c, "[::1]:5000/app"), ["http://[::1]:5000"]);
        assert_eq!(keys(&c, "10.0.0.5:5000/app:latest"), ["10.0.0.5:5000/v2/"]);
        // hosts compare case-sensitively
        assert!(keys(&c, "GITLAB.example.com:5050/g/app").is_empty());
        let bad = c
            .entries
            .iter()
            .find(|e| e.key == "bad host")
            .map(|e| e.problems.join(""));
        assert!(bad.unwrap_or_default().contains("ignores this entry"));
        assert!(keys(&c, "").is_empty());
    }

    #[test]
    fn docker_hub_aliases() {
        for key in [
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "https://index.docker.io/v2/",
        ] {
            let c = ok(&cfg_json(&format!(
                r#""{key}":{{"auth":"dTpw"}},"other.example.com":{{"auth":"dTpw"}}"#
            )));
            for image in [
                "nginx",
                "nginx:1.27",
                "library/nginx",
                "docker.io/library/nginx",
                "index.docker.io/library/nginx:latest",
                "bitnami/redis",
                "docker.io/bitnami/redis@sha256:00",
            ] {
                assert_eq!(keys(&c, image), [key], "{key} {image}");
            }
            assert!(
                keys(&c, "other.example.com/x")
                    .iter()
                    .all(|k| *k == "other.example.com")
            );
            assert!(keys(&c, "quay.io/x/y").is_empty(), "{key}");
        }
        // docker.io matches directly, so the index.docker.io fallback is not used beside it
        let c = ok(&cfg_json(
            r#""docker.io":{"auth":"dTpw"},"index.docker.io":{"auth":"dTpw"}"#,
        ));
        assert_eq!(keys(&c, "nginx"), ["docker.io"]);
        // a key with a path only matches under it
        let c = ok(&cfg_json(r#""docker.io/myorg":{"auth":"dTpw"}"#));
        assert_eq!(keys(&c, "myorg/app"), ["docker.io/myorg"]);
        assert!(keys(&c, "nginx").is_empty());
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx");
        assert_eq!(
            normalize_image("nginx:1@sha256:0"),
            "docker.io/library/nginx"
        );
        assert_eq!(normalize_image("localhost/app"), "localhost/app");
        assert_eq!(
            normalize_image("localhost:5000/app:v1"),
            "localhost:5000/app"
        );
        assert_eq!(
            normalize_image("index.docker.io/nginx"),
            "docker.io/library/nginx"
        );
        assert_eq!(
            normalize_image("gitlab.example.com:5050/g/p/img:tag"),
            "gitlab.example.com:5050/g/p/img"
        );
        assert_eq!(
            parse_key("https://index.docker.io/v1/"),
            Some(("index.docker.io".into(), String::new()))
        );
        assert_eq!(
            parse_key("HTTP://h:5000/v2/team"),
            Some(("h:5000".into(), "/team".into()))
        );
        assert_eq!(parse_key("h:50x0"), None);
        assert_eq!(parse_key("https://"), None);
        assert_eq!(parse_key("é"), Some(("é".into(), String::new())));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("*", ""));
        assert!(glob_match("gitlab*", "gitlab-1"));
        assert!(glob_match("g?t", "git"));
        assert!(!glob_match("g?t", "gt"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("[^a-c]x", "dx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b", "a"));
        assert!(!glob_match("[a-", "a"));
        assert!(!glob_match("[", "a"));
        assert!(!glob_match("x\\", "x"));
        assert!(!glob_match("[]a]", "]"));
        assert!(!glob_match("[a-]", "a"));
        assert!(glob_match("[\\]]", "]"));
        assert!(glob_match("x[0-9][0-9]", "x42"));
        assert!(!glob_match(&"*a".repeat(50), &"a".repeat(40)));
    }
}
