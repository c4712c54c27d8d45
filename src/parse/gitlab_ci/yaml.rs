//! The YAML layer of the `.gitlab-ci.yml` model: one file parsed into a located, tagged value
//! tree with anchors, aliases and `<<` merge keys already resolved (as GitLab's loader does, per
//! file), under budgets that turn an alias bomb or a huge file into an error, not a hang.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Spanned, Tagged};
use std::fmt;

/// Where a value was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Loc {
    /// The file, relative to the repository root as the include named it.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// A value with its location and explicit tag (`!reference`).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// The explicit tag, if any (`!reference`).
    pub tag: Option<String>,
    /// Where it was written.
    pub loc: Loc,
}

/// A YAML value. Mapping keys are kept as text, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A value made by the model (a default, a predefined value), located at `loc`.
    #[must_use]
    pub fn new(value: Value, loc: Loc) -> Self {
        Node {
            value,
            tag: None,
            loc,
        }
    }

    /// The entry `key` of a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The mapping's entries, or none.
    #[must_use]
    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(m) => m,
            _ => &[],
        }
    }

    /// A scalar as text (how GitLab reads a string-typed field: numbers and booleans as written).
    #[must_use]
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// Whether this is a `!reference [...]` that has not been resolved yet.
    #[must_use]
    pub fn is_reference(&self) -> bool {
        self.tag.as_deref() == Some("!reference")
    }

    fn relocate(&mut self, file: &str, line_offset: u64) {
        self.loc.file = file.to_string();
        if self.loc.line > 0 {
            self.loc.line += line_offset;
        }
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.relocate(file, line_offset)),
            Value::Map(entries) => entries
                .iter_mut()
                .for_each(|(_, n)| n.relocate(file, line_offset)),
            _ => {}
        }
    }
}

/// The untagged, unlocated value as the deserializer sees it; every child is a [`Node`].
struct RawValue(Value);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue(Value::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue(
            i64::try_from(v).map_or_else(|_| Value::Str(v.to_string()), Value::Int),
        ))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(v.to_string())))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue(Value::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(v)))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(
            String::from_utf8_lossy(v).into_owned(),
        )))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<NodeDe>()? {
            items.push(n.0);
        }
        Ok(RawValue(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<RawValue>()? {
            let key = match key.0 {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom(
                        "a mapping key must be a scalar (GitLab keys are strings)",
                    ));
                }
            };
            let value = map.next_value::<NodeDe>()?.0;
            // GitLab's loader keeps the last of duplicate keys
            if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                entries.push((key, value));
            }
        }
        Ok(RawValue(Value::Map(entries)))
    }
}

/// A node as deserialized: value, tag and location (the file is filled in afterwards).
struct NodeDe(Node);

impl<'de> Deserialize<'de> for NodeDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Tagged<RawValue>>::deserialize(d)?;
        let Tagged(RawValue(value), tag) = spanned.value;
        Ok(NodeDe(Node {
            value,
            tag,
            loc: Loc {
                file: String::new(),
                line: spanned.referenced.line(),
                column: spanned.referenced.column(),
            },
        }))
    }
}

/// The largest file read: GitLab's own default `max_yaml_size_bytes` (2 MB since gitlab-org/gitlab
/// MR 160826). A bigger file is refused before parsing, so a 50 MB paste costs nothing.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;

/// Why a file could not be loaded, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct YamlError {
    /// Where.
    pub loc: Loc,
    /// What.
    pub message: String,
}

/// Parse one file's text into a node tree. Anchors, aliases and `<<` are resolved here; an alias
/// bomb, deep nesting or an oversized file is an error within the budgets below.
///
/// # Errors
/// Invalid YAML, a budget exceeded, or a file over [`MAX_FILE_BYTES`], with file, line and column.
pub fn parse(text: &str, file: &str) -> Result<Node, YamlError> {
    parse_part(text, file, 0)
}

/// Parse a part of a file that starts `line_offset` lines into it (the document after a `spec:`
/// header), so locations still point into the whole file.
///
/// # Errors
/// As [`parse`].
pub fn parse_part(text: &str, file: &str, line_offset: u64) -> Result<Node, YamlError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            loc: Loc {
                file: file.to_string(),
                ..Loc::default()
            },
            message: format!(
                "the file is {} bytes; pulldoctor reads CI files up to {} bytes (GitLab's own max_yaml_size_bytes, 2 MB by default)",
                text.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    options.alias_limits.max_total_replayed_events = 25_000;
    options.alias_limits.max_replay_stack_depth = 32;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 300_000;
    budget.max_nodes = 300_000;
    budget.max_depth = 100;
    budget.max_total_scalar_bytes = 16 * 1024 * 1024;
    options.budget = Some(budget);
    let parsed: Result<Option<NodeDe>, _> = serde_saphyr::from_str_with_options(text, options);
    match parsed {
        Ok(Some(NodeDe(mut node))) => {
            node.relocate(file, line_offset);
            Ok(node)
        }
        Ok(None) => Ok(Node::new(
            Value::Null,
            Loc {
                file: file.to_string(),
                line: 1,
                column: 1,
            },
        )),
        Err(e) => {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = e.without_snippet().to_string();
            // the library's message may repeat the position; keep the first line only
            let message = message.lines().next().unwrap_or("invalid YAML").to_string();
            Err(YamlError {
                loc: Loc {
                    file: file.to_string(),
                    line: if line > 0 { line + line_offset } else { 0 },
                    column,
                },
                message,
            })
        }
    }
}
