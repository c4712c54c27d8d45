//! Kubernetes objects as the cluster reports them (`kubectl get pods,deploy,events,secrets,nodes
//! -o json`: a `List` with `items`, or one object, or several objects one after another) and as
//! manifest files hold them (multi-document YAML split at `---`, or JSON): the workloads and the
//! images and pull secrets they use, pods and why their containers wait, events, nodes and their
//! addresses, and `kubernetes.io/dockerconfigjson` Secrets read by [`super::dockercfg`].
//!
//! Objects of other kinds are counted and skipped. A file that is not YAML or JSON is an error
//! with its line and column. Secret values never leave this module except inside
//! [`super::dockercfg::DockerConfig`], whose passwords are [`super::dockercfg::Secret`]s.

use super::dockercfg::{self, DockerCfgError, DockerConfig};
use serde_json::Value;

/// Largest input read (a whole namespace's `kubectl get -o json` is a few MiB).
pub const MAX_INPUT: usize = 64 * 1024 * 1024;
/// YAML events aliases may replay in one document (the parser's default is a million).
const MAX_ALIAS_EVENTS: usize = 20_000;
/// How deep `List`s may nest inside `List`s.
const MAX_LIST_DEPTH: usize = 4;

/// The kinds whose pod template names images.
pub const WORKLOAD_KINDS: [&str; 7] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
];

/// Which object, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ObjectRef {
    /// `Deployment`, `Pod`, …
    pub kind: String,
    /// Its namespace (`None` when the object does not say: a manifest applied with `-n`).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// 1-based line where the object starts, for manifest files.
    pub line: Option<u64>,
}

impl ObjectRef {
    /// `kind/namespace/name` (`kind/name` without a namespace).
    #[must_use]
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// One container's image in a pod template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerImage {
    /// The container's name.
    pub container: String,
    /// True for an init container.
    pub init: bool,
    /// The image as written.
    pub image: String,
    /// 1-based line of the `image:` in a manifest file.
    pub line: Option<u64>,
}

/// A workload (or a bare Pod): what it runs and with which pull secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Workload {
    /// Which object.
    pub object: ObjectRef,
    /// Its containers and init containers.
    pub containers: Vec<ContainerImage>,
    /// `imagePullSecrets` names.
    pub pull_secrets: Vec<String>,
    /// `serviceAccountName` (its secrets are added to pods at admission).
    pub service_account: Option<String>,
    /// The controller that owns it (`ReplicaSet/api-7d9f`), from `ownerReferences`.
    pub owner: Option<String>,
}

/// A container that is not running, and what kubelet says about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Waiting {
    /// The container's name.
    pub container: String,
    /// The image it runs.
    pub image: Option<String>,
    /// `ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`, …
    pub reason: String,
    /// kubelet's message (for pulls: `Back-off pulling image "…"` or the pull error).
    pub message: Option<String>,
}

/// A pod's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodState {
    /// Which pod.
    pub object: ObjectRef,
    /// `Pending`, `Running`, …
    pub phase: Option<String>,
    /// The node it was scheduled on.
    pub node: Option<String>,
    /// Containers (and init containers) that wait.
    pub waiting: Vec<Waiting>,
}

impl PodState {
    /// The containers that wait because their image cannot be pulled.
    pub fn pull_failures(&self) -> impl Iterator<Item = &Waiting> {
        self.waiting.iter().filter(|w| is_pull_failure(&w.reason))
    }
}

/// True for the waiting reasons of a failed pull.
#[must_use]
pub fn is_pull_failure(reason: &str) -> bool {
    matches!(
        reason,
        "ErrImagePull"
            | "ImagePullBackOff"
            | "ErrImageNeverPull"
            | "InvalidImageName"
            | "RegistryUnavailable"
            | "SignatureValidationFailed"
    )
}

/// An event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// The object it is about.
    pub involved: ObjectRef,
    /// `Failed`, `BackOff`, `Pulling`, …
    pub reason: Option<String>,
    /// `Normal` or `Warning`.
    pub kind: Option<String>,
    /// The message.
    pub message: String,
    /// The node that reported it (`source.host`, or `reportingInstance`).
    pub host: Option<String>,
    /// How many times it happened.
    pub count: u64,
    /// First time (`firstTimestamp`, else `eventTime`).
    pub first: Option<String>,
    /// Last time (`lastTimestamp`, else `series.lastObservedTime`, else `eventTime`).
    pub last: Option<String>,
    /// 1-based line in a manifest file.
    pub line: Option<u64>,
}

/// A node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its `InternalIP` address.
    pub internal_ip: Option<String>,
    /// True when labelled `node-role.kubernetes.io/control-plane` (or `master`).
    pub control_plane: bool,
}

/// A Secret: its type, and for pull secrets what kubelet would read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretObject {
    /// Which Secret.
    pub object: ObjectRef,
    /// Its `type`.
    pub type_: Option<String>,
    /// For `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg` Secrets: the config,
    /// or why it cannot be read.
    pub docker_config: Option<Result<DockerConfig, DockerCfgError>>,
}

/// Everything read from one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    /// Workloads and bare pods.
    pub workloads: Vec<Workload>,
    /// Pods' states (from `kubectl get pods` output; manifests have none).
    pub pods: Vec<PodState>,
    /// Events.
    pub events: Vec<Event>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Secrets.
    pub secrets: Vec<SecretObject>,
    /// Objects of other kinds, or without `kind`, skipped (kind or a note, with the line).
    pub skipped: Vec<String>,
}

impl Objects {
    /// Fold in another input's objects.
    pub fn extend(&mut self, other: Objects) {
        self.workloads.extend(other.workloads);
        self.pods.extend(other.pods);
        self.events.extend(other.events);
        self.nodes.extend(other.nodes);
        self.secrets.extend(other.secrets);
        self.skipped.extend(other.skipped);
    }

    /// True when nothing was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty()
            && self.pods.is_empty()
            && self.events.is_empty()
            && self.nodes.is_empty()
            && self.secrets.is_empty()
    }
}

/// Why an input could not be read. Messages never quote the input (a Secret's data may be in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeError {
    /// Larger than [`MAX_INPUT`].
    #[error("{origin}: {len} bytes, larger than the {MAX_INPUT}-byte limit")]
    TooLarge {
        /// The input's name.
        origin: String,
        /// Its length.
        len: usize,
    },
    /// Not valid JSON.
    #[error("{origin}: line {line}, column {column}: not valid JSON ({category})")]
    Json {
        /// The input's name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's category.
        category: &'static str,
    },
    /// Not valid YAML.
    #[error("{origin}: line {line}, column {column}: not valid YAML ({message})")]
    Yaml {
        /// The input's name.
        origin: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What the parser said (without a snippet of the input).
        message: String,
    },
}

/// Read Kubernetes objects from `text` (JSON or YAML; see the module comment). `origin` names the
/// input in errors.
///
/// # Errors
/// [`KubeError`] when the text is too large or not valid JSON/YAML, with line and column.
pub fn parse_objects(text: &str, origin: &str) -> Result<Objects, KubeError> {
    if text.len() > MAX_INPUT {
        return Err(KubeError::TooLarge {
            origin: origin.to_string(),
            len: text.len(),
        });
    }
    let body = text.trim_start_matches('\u{feff}');
    if body.trim_start().starts_with(['{', '[']) {
        let mut out = Objects::default();
        let mut json_error = None;
        for value in serde_json::Deserializer::from_str(body).into_iter::<Value>() {
            match value {
                Ok(value) => add_value(&mut out, &value, None, 0),
                Err(e) => {
                    json_error = Some(KubeError::Json {
                        origin: origin.to_string(),
                        line: e.line(),
                        column: e.column(),
                        category: super::json_error_category(&e),
                    });
                    break;
                }
            }
        }
        match json_error {
            None => return Ok(out),
            // YAML documents may start with a JSON one (a recorded Secret is one line of JSON)
            Some(e) if body.lines().any(|l| l.starts_with("---")) => {
                return parse_yaml(body, origin).map_err(|_| e);
            }
            Some(e) => return Err(e),
        }
    }
    parse_yaml(body, origin)
}

fn parse_yaml(body: &str, origin: &str) -> Result<Objects, KubeError> {
    let mut out = Objects::default();
    for doc in split_documents(body) {
        if doc.text.trim().is_empty() || is_comment_only(doc.text) {
            continue;
        }
        // manifests barely use aliases: a small replay budget refuses an alias bomb quickly
        let mut alias_limits = serde_saphyr::options::AliasLimits::default();
        alias_limits.max_total_replayed_events = MAX_ALIAS_EVENTS;
        let mut budget = serde_saphyr::Budget::default();
        budget.max_recorded_anchor_events = MAX_ALIAS_EVENTS;
        let options = serde_saphyr::options! {
            with_snippet: false,
            alias_limits: alias_limits,
            budget: Some(budget),
        };
        let value: Value = serde_saphyr::from_str_with_options(doc.text, options).map_err(|e| {
            let (line, column) = e.location().map_or((doc.first_line, 1), |l| {
                (doc.first_line + l.line() - 1, l.column())
            });
            KubeError::Yaml {
                origin: origin.to_string(),
                line,
                column,
                message: first_line_of(&e.to_string()),
            }
        })?;
        let locator = Locator {
            text: doc.text,
            first_line: doc.first_line,
        };
        add_value(&mut out, &value, Some(&locator), 0);
    }
    Ok(out)
}

/// One YAML document of a file.
struct Document<'a> {
    text: &'a str,
    /// 1-based line of its first line in the file.
    first_line: u64,
}

/// Split at document markers: a line that is `---` (optionally followed by a space and more) or
/// `...`. YAML forbids these at the start of a line inside any scalar, so the split is exact.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut first_line = 1u64;
    let mut offset = 0;
    for (line_no, line) in (1u64..).zip(text.split_inclusive('\n')) {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker =
            bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t") || bare == "...";
        if marker {
            docs.push(Document {
                text: &text[start..offset],
                first_line,
            });
            // content after `--- ` on the marker line belongs to the next document
            let rest = if bare.starts_with("--- ") || bare.starts_with("---\t") {
                offset + 4
            } else {
                offset + line.len()
            };
            start = rest.min(text.len());
            first_line = if rest < offset + line.len() {
                line_no
            } else {
                line_no + 1
            };
        }
        offset += line.len();
    }
    docs.push(Document {
        text: &text[start..],
        first_line,
    });
    docs
}

fn is_comment_only(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.starts_with('%'))
}

fn first_line_of(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Finds the lines of values inside one manifest document, front to back.
struct Locator<'a> {
    text: &'a str,
    first_line: u64,
}

impl Locator<'_> {
    /// The line where the document's first non-comment content starts.
    fn start(&self) -> u64 {
        let skipped = self
            .text
            .lines()
            .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            .count();
        self.first_line + skipped as u64
    }

    /// The line of the first `key: …value…` not already `taken`, which it then takes.
    fn find(&self, key: &str, value: &str, taken: &mut Vec<u64>) -> Option<u64> {
        for (i, line) in self.text.lines().enumerate() {
            let line_no = self.first_line + i as u64;
            let keyed = line.contains(&format!("{key}:"))
                || line.contains(&format!("\"{key}\":"))
                || line.contains(&format!("'{key}':"));
            if keyed && line.contains(value) && !taken.contains(&line_no) {
                taken.push(line_no);
                return Some(line_no);
            }
        }
        None
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn object_ref(v: &Value, kind: &str, line: Option<u64>) -> ObjectRef {
    ObjectRef {
        kind: kind.to_string(),
        namespace: str_at(v, &["metadata", "namespace"]).map(str::to_string),
        name: str_at(v, &["metadata", "name"]).unwrap_or("").to_string(),
        line,
    }
}

fn add_value(out: &mut Objects, v: &Value, loc: Option<&Locator<'_>>, depth: usize) {
    let line = loc.map(Locator::start);
    let Some(kind) = str_at(v, &["kind"]) else {
        if let Some(items) = v.as_array() {
            // a bare JSON array of objects
            for item in items {
                add_value(out, item, None, depth + 1);
            }
        } else if !v.is_null() {
            out.skipped.push(match line {
                Some(l) => format!("line {l}: an object without `kind`"),
                None => "an object without `kind`".to_string(),
            });
        }
        return;
    };
    if kind.ends_with("List")
        && let Some(items) = v.get("items").and_then(Value::as_array)
    {
        if depth >= MAX_LIST_DEPTH {
            out.skipped
                .push(format!("{kind} nested deeper than {MAX_LIST_DEPTH} lists"));
            return;
        }
        // list items carry no apiVersion/kind when the list is typed (`PodList`)
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        for item in items {
            match (item.get("kind"), item_kind) {
                (None, Some(k)) => {
                    let mut item = item.clone();
                    if let Some(m) = item.as_object_mut() {
                        m.insert("kind".into(), Value::String(k.to_string()));
                    }
                    add_value(out, &item, None, depth + 1);
                }
                _ => add_value(out, item, None, depth + 1),
            }
        }
        return;
    }
    let object = object_ref(v, kind, line);
    match kind {
        k if WORKLOAD_KINDS.contains(&k) => {
            let spec = match k {
                "Pod" => v.get("spec"),
                "CronJob" => at(v, &["spec", "jobTemplate", "spec", "template", "spec"]),
                _ => at(v, &["spec", "template", "spec"]),
            };
            out.workloads.push(workload(object.clone(), spec, v, loc));
            if k == "Pod" && v.get("status").is_some() {
                out.pods.push(pod_state(object, v));
            }
        }
        "Event" => out.events.push(event(v, line)),
        "Node" => out.nodes.push(node(v)),
        "Secret" => out.secrets.push(secret(v, object)),
        other => out.skipped.push(match line {
            Some(l) => format!("line {l}: {other}/{}", object.name),
            None => format!("{other}/{}", object.name),
        }),
    }
}

fn workload(
    object: ObjectRef,
    spec: Option<&Value>,
    whole: &Value,
    loc: Option<&Locator<'_>>,
) -> Workload {
    let mut containers = Vec::new();
    let mut pull_secrets = Vec::new();
    let mut service_account = None;
    if let Some(spec) = spec {
        // two containers may run the same image: each takes the first `image:` line not taken
        let mut taken = Vec::new();
        for (field, init) in [("initContainers", true), ("containers", false)] {
            for c in spec
                .get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(image) = c.get("image").and_then(Value::as_str) else {
                    continue;
                };
                let line = loc.and_then(|l| l.find("image", image, &mut taken));
                containers.push(ContainerImage {
                    container: c
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    init,
                    image: image.to_string(),
                    line,
                });
            }
        }
        for s in spec
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = s.get("name").and_then(Value::as_str) {
                pull_secrets.push(name.to_string());
            }
        }
        service_account = spec
            .get("serviceAccountName")
            .or_else(|| spec.get("serviceAccount"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let owner = at(whole, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .and_then(|o| o.first())
        .and_then(|o| {
            Some(format!(
                "{}/{}",
                str_at(o, &["kind"])?,
                str_at(o, &["name"])?
            ))
        });
    Workload {
        object,
        containers,
        pull_secrets,
        service_account,
        owner,
    }
}

fn pod_state(object: ObjectRef, v: &Value) -> PodState {
    let mut waiting = Vec::new();
    for field in ["initContainerStatuses", "containerStatuses"] {
        for s in at(v, &["status", field])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(w) = at(s, &["state", "waiting"]) else {
                continue;
            };
            waiting.push(Waiting {
                container: str_at(s, &["name"]).unwrap_or("").to_string(),
                image: str_at(s, &["image"]).map(str::to_string),
                reason: str_at(w, &["reason"]).unwrap_or("").to_string(),
                message: str_at(w, &["message"]).map(str::to_string),
            });
        }
    }
    PodState {
        object,
        phase: str_at(v, &["status", "phase"]).map(str::to_string),
        node: str_at(v, &["spec", "nodeName"]).map(str::to_string),
        waiting,
    }
}

fn event(v: &Value, line: Option<u64>) -> Event {
    // core/v1 Event, or events.k8s.io/v1 (`regarding`, `note`)
    let involved = v
        .get("involvedObject")
        .or_else(|| v.get("regarding"))
        .unwrap_or(&Value::Null);
    let count = v
        .get("count")
        .and_then(Value::as_u64)
        .or_else(|| at(v, &["series", "count"]).and_then(Value::as_u64))
        .or_else(|| v.get("deprecatedCount").and_then(Value::as_u64))
        .unwrap_or(1)
        .max(1);
    let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    Event {
        involved: ObjectRef {
            kind: str_at(involved, &["kind"]).unwrap_or("").to_string(),
            namespace: str_at(involved, &["namespace"]).map(str::to_string),
            name: str_at(involved, &["name"]).unwrap_or("").to_string(),
            line: None,
        },
        reason: str_at(v, &["reason"]).map(str::to_string),
        kind: str_at(v, &["type"]).map(str::to_string),
        message: str_at(v, &["message"])
            .or_else(|| str_at(v, &["note"]))
            .unwrap_or("")
            .to_string(),
        host: nonempty(str_at(v, &["source", "host"]))
            .or_else(|| nonempty(str_at(v, &["reportingInstance"]))),
        count,
        first: nonempty(str_at(v, &["firstTimestamp"]))
            .or_else(|| nonempty(str_at(v, &["eventTime"]))),
        last: nonempty(str_at(v, &["lastTimestamp"]))
            .or_else(|| nonempty(str_at(v, &["series", "lastObservedTime"])))
            .or_else(|| nonempty(str_at(v, &["eventTime"]))),
        line,
    }
}

fn node(v: &Value) -> Node {
    let internal_ip = at(v, &["status", "addresses"])
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|x| str_at(x, &["type"]) == Some("InternalIP"))
                .and_then(|x| str_at(x, &["address"]))
        })
        .map(str::to_string);
    let labels = at(v, &["metadata", "labels"]).and_then(Value::as_object);
    let control_plane = labels.is_some_and(|l| {
        l.contains_key("node-role.kubernetes.io/control-plane")
            || l.contains_key("node-role.kubernetes.io/master")
    });
    Node {
        name: str_at(v, &["metadata", "name"]).unwrap_or("").to_string(),
        internal_ip,
        control_plane,
    }
}

fn secret(v: &Value, object: ObjectRef) -> SecretObject {
    let type_ = str_at(v, &["type"]).map(str::to_string);
    let is_pull_secret = matches!(
        type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson" | "kubernetes.io/dockercfg")
    );
    let docker_config = is_pull_secret.then(|| {
        // the existing reader takes a Secret as JSON text; only this Secret is handed over
        let json = serde_json::to_string(v).unwrap_or_default();
        dockercfg::parse_secret(&json)
    });
    SecretObject {
        object,
        type_,
        docker_config,
    }
}

/// `kubectl -o json` output or a manifest file (JSON, or YAML documents) with every Secret's
/// values masked, for what is recorded: a docker config keeps its registry keys and usernames
/// (evidence) while `redactor` masks its `auth` and `password`; any other Secret value is
/// replaced. A YAML Secret document becomes one line of JSON (valid YAML) followed by blank lines,
/// so every later line keeps its number. Text with no Secret, or that cannot be read, comes back
/// unchanged (the line redactor still runs over it).
#[must_use]
pub fn mask_secret_data<'a>(
    text: &'a str,
    redactor: &crate::redact::Redactor,
) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow;
    if !text.contains("Secret") || text.len() > MAX_INPUT {
        return Cow::Borrowed(text);
    }
    if text.trim_start().starts_with(['{', '[']) {
        let mut values = Vec::new();
        for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            match v {
                Ok(v) => values.push(v),
                Err(_) => return Cow::Borrowed(text),
            }
        }
        let mut changed = false;
        for v in &mut values {
            changed |= mask_value(v, redactor, 0);
        }
        if !changed {
            return Cow::Borrowed(text);
        }
        let out: Vec<String> = values
            .iter()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
            .collect();
        return Cow::Owned(out.join("\n") + "\n");
    }
    // YAML: replace each Secret document in place, keeping its line count
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for doc in split_documents(text) {
        if !doc.text.contains("Secret") {
            continue;
        }
        let options = serde_saphyr::options! { with_snippet: false };
        let Ok(mut value) = serde_saphyr::from_str_with_options::<Value>(doc.text, options) else {
            continue;
        };
        if !mask_value(&mut value, redactor, 0) {
            continue;
        }
        let start = doc.text.as_ptr() as usize - text.as_ptr() as usize;
        let end = start + doc.text.len();
        let lines = doc.text.matches('\n').count();
        out.push_str(&text[copied..start]);
        out.push_str(&serde_json::to_string(&value).unwrap_or_default());
        out.push_str(&"\n".repeat(lines.max(1)));
        copied = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn mask_value(v: &mut Value, redactor: &crate::redact::Redactor, depth: usize) -> bool {
    if depth > MAX_LIST_DEPTH {
        return false;
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        let mut changed = false;
        for item in items {
            changed |= mask_value(item, redactor, depth + 1);
        }
        return changed;
    }
    if str_at(v, &["kind"]) != Some("Secret") {
        return false;
    }
    let mut changed = false;
    for (field, encoded) in [("data", true), ("stringData", false)] {
        let Some(map) = v.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (key, value) in map.iter_mut() {
            let Some(s) = value.as_str() else { continue };
            let docker_config = key == ".dockerconfigjson" || key == ".dockercfg";
            let masked = match (docker_config, encoded) {
                (true, true) => super::jwt::base64_decode(s.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .map(|json| {
                        super::jwt::base64_encode(redactor.redact(&json).as_bytes(), false)
                    }),
                (true, false) => Some(redactor.redact(s).into_owned()),
                (false, _) => None,
            };
            changed = true;
            *value = Value::String(masked.unwrap_or_else(|| {
                if encoded {
                    super::jwt::base64_encode(crate::redact::MASK.as_bytes(), false)
                } else {
                    crate::redact::MASK.to_string()
                }
            }));
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multi-document YAML: documents, kinds, images with their lines, pull secrets.
    #[test]
    fn manifest_lines() {
        let text = "# app\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: gition\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: migrate\n        image: r:5050/g/api:latest\n      containers:\n      - name: api\n        image: \"r:5050/g/api:latest\"\n      imagePullSecrets:\n      - name: gitlab-registry\n--- # second\nkind: CronJob\nmetadata: {name: nightly}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - {name: job, image: busybox}\n...\n";
        let o = parse_objects(text, "k8s.yaml").unwrap();
        assert_eq!(o.workloads.len(), 2);
        let d = &o.workloads[0];
        assert_eq!(d.object.line, Some(3));
        assert_eq!(d.object.namespace.as_deref(), Some("gition"));
        assert_eq!(d.pull_secrets, vec!["gitlab-registry"]);
        let lines: Vec<_> = d.containers.iter().map(|c| (c.init, c.line)).collect();
        assert_eq!(lines, vec![(true, Some(13)), (false, Some(16))]);
        let c = &o.workloads[1];
        assert_eq!(
            (c.object.kind.as_str(), c.object.line),
            ("CronJob", Some(20))
        );
        assert_eq!(c.containers[0].image, "busybox");
        assert_eq!(c.containers[0].line, Some(28));
    }

    /// Bad YAML and JSON give the file's line and column, not a snippet of it.
    #[test]
    fn located_errors() {
        let e = parse_objects(
            "kind: Pod\n---\nkind: Pod\nmetadata:\n  name: [a\n",
            "m.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("m.yaml: line "), "{e}");
        let line: u64 = e["m.yaml: line ".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((5..=6).contains(&line), "{e}");
        let e = parse_objects(
            "{\"kind\": \"Pod\",\n \"metadata\": {\"name\": x}}\n",
            "p.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("p.json: line 2"), "{e}");
        let e = parse_objects(
            "kind: Secret\ndata: {\".dockerconfigjson\": s3cr3t\n",
            "s.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    /// An alias bomb is refused within the parser's budget.
    #[test]
    fn alias_bomb() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let start = std::time::Instant::now();
        let e = parse_objects(&text, "bomb.yaml").unwrap_err().to_string();
        assert!(e.contains("budget"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    /// Recorded Secrets keep their registry keys and usernames, never a password or token.
    #[test]
    fn masked_secrets() {
        let cfg = r#"{"auths":{"r:5050":{"username":"u","password":"hunter2pw","auth":"dTpodW50ZXIycHc="}}}"#;
        let data = crate::parse::jwt::base64_encode(cfg.as_bytes(), false);
        let token = crate::parse::jwt::base64_encode(b"sa-token-value", false);
        let text = format!(
            r#"{{"kind":"List","items":[{{"kind":"Secret","metadata":{{"name":"s"}},"type":"kubernetes.io/dockerconfigjson","data":{{".dockerconfigjson":"{data}"}}}},{{"kind":"Secret","metadata":{{"name":"t"}},"data":{{"token":"{token}"}}}}]}}"#
        );
        let masked = mask_secret_data(&text, &crate::redact::Redactor::default()).into_owned();
        assert!(!masked.contains(&data) && !masked.contains(&token));
        let o = parse_objects(&masked, "-").unwrap();
        let cfg = o.secrets[0].docker_config.clone().unwrap().unwrap();
        assert_eq!(cfg.entries[0].key, "r:5050");
        assert_eq!(cfg.entries[0].username.as_deref(), Some("u"));
        let v: Value = serde_json::from_str(&masked).unwrap();
        let recorded = v
            .pointer("/items/0/data/.dockerconfigjson")
            .unwrap()
            .as_str()
            .unwrap();
        let recorded =
            String::from_utf8(crate::parse::jwt::base64_decode(recorded).unwrap()).unwrap();
        assert!(
            !recorded.contains("hunter2pw") && !recorded.contains("dTpodW50ZXIycHc="),
            "{recorded}"
        );
        let yaml = format!(
            "# app\nkind: Deployment\nmetadata: {{name: a}}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {data}\n---\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - {{name: c, image: r/x}}\n"
        );
        let masked = mask_secret_data(&yaml, &crate::redact::Redactor::default()).into_owned();
        assert!(!masked.contains(&data), "{masked}");
        assert_eq!(masked.lines().count(), yaml.lines().count());
        let o = parse_objects(&masked, "m.yaml").unwrap();
        assert_eq!(o.secrets[0].object.name, "s");
        assert_eq!(o.workloads[1].containers[0].line, Some(17));
        let plain = "not json Secret";
        assert_eq!(
            mask_secret_data(plain, &crate::redact::Redactor::default()),
            plain
        );
    }

    /// Typed lists (`PodList`) give their items a kind; lists nest only so deep.
    #[test]
    fn lists() {
        let o = parse_objects(
            r#"{"kind":"PodList","items":[{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"a/b"}]},"status":{"phase":"Pending"}}]}"#,
            "-",
        )
        .unwrap();
        assert_eq!(o.workloads[0].object.kind, "Pod");
        assert_eq!(o.pods[0].phase.as_deref(), Some("Pending"));
        let mut deep = String::from(r#"{"kind":"Pod","metadata":{"name":"x"}}"#);
        for _ in 0..10 {
            deep = format!(r#"{{"kind":"List","items":[{deep}]}}"#);
        }
        let o = parse_objects(&deep, "-").unwrap();
        assert!(o.workloads.is_empty());
        assert_eq!(o.skipped.len(), 1);
    }
}
