//! `include:` as GitLab's external processor applies it: every included file is loaded (its own
//! anchors resolved inside it), its own includes first; the included files are deep-merged in
//! order and the including file is merged last, so it wins (`External::Processor`). Only
//! `local` files are read; `remote`, `project`, `template` and `component` includes, and
//! wildcards, become notes saying they were not followed.

use super::extend::deep_merge;
use super::rules::expand;
use super::yaml::{self, Loc, Node, Value};
use super::{CiError, Note, ProjectContext, ReadFile};

/// GitLab's limit on included files per pipeline (`ci_max_includes`, 150 by default).
pub const MAX_INCLUDES: usize = 150;
/// How deep includes may nest (GitLab allows 100 levels).
pub const MAX_DEPTH: usize = 100;

struct Walk<'a> {
    read: ReadFile<'a>,
    ctx: &'a ProjectContext,
    files: &'a mut Vec<String>,
    notes: &'a mut Vec<Note>,
    stack: Vec<String>,
}

/// Load `file` and everything it includes locally, merged as GitLab merges them.
///
/// # Errors
/// Invalid YAML in any file, a local include that cannot be read, an include cycle, or more
/// includes than GitLab allows.
pub fn load_with_includes(
    file: &str,
    text: &str,
    read: ReadFile<'_>,
    ctx: &ProjectContext,
    files: &mut Vec<String>,
    notes: &mut Vec<Note>,
) -> Result<Node, CiError> {
    let mut walk = Walk {
        read,
        ctx,
        files,
        notes,
        stack: Vec::new(),
    };
    walk.file(file, text)
}

/// Split off a `spec:` header (a file with `inputs`): the configuration is the second document.
/// Returns the configuration text and how many lines precede it.
fn config_document(text: &str) -> (&str, u64) {
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if !first.is_some_and(|l| l.starts_with("spec:")) {
        return (text, 0);
    }
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        offset += line.len();
        if line.trim_end() == "---" {
            return (&text[offset..], (i + 1) as u64);
        }
    }
    (text, 0)
}

impl Walk<'_> {
    fn file(&mut self, file: &str, text: &str) -> Result<Node, CiError> {
        self.files.push(file.to_string());
        self.stack.push(file.to_string());
        let (doc, offset) = config_document(text);
        if offset > 0 {
            self.notes.push(Note {
                loc: Loc {
                    file: file.to_string(),
                    line: 1,
                    column: 1,
                },
                text:
                    "the file has a spec: header; its inputs ($[[ inputs.* ]]) are not interpolated"
                        .into(),
            });
        }
        let mut node = yaml::parse_part(doc, file, offset)?;
        if let Value::Null = node.value {
            node.value = Value::Map(Vec::new());
        }
        let Value::Map(entries) = &mut node.value else {
            return Err(CiError {
                loc: node.loc.clone(),
                message: "the file is not a mapping of keywords and jobs".into(),
            });
        };
        let include = entries
            .iter()
            .position(|(k, _)| k == "include")
            .map(|i| entries.remove(i).1);
        let mut merged: Option<Node> = None;
        if let Some(include) = include {
            let items: Vec<Node> = match include.value {
                Value::Seq(items) => items,
                _ => vec![include],
            };
            for item in items {
                if let Some(included) = self.include(&item)? {
                    merged = Some(match merged {
                        Some(m) => deep_merge(m, included),
                        None => included,
                    });
                }
            }
        }
        self.stack.pop();
        Ok(match merged {
            Some(m) => deep_merge(m, node),
            None => node,
        })
    }

    /// One `include:` entry: the merged content of a local file, or a note and nothing.
    fn include(&mut self, item: &Node) -> Result<Option<Node>, CiError> {
        let not_followed = |notes: &mut Vec<Note>, what: String| {
            notes.push(Note {
                loc: item.loc.clone(),
                text: format!("include not followed: {what}"),
            });
        };
        let path = match (&item.value, item.scalar_text()) {
            (Value::Str(_), Some(s)) => {
                if s.starts_with("http://") || s.starts_with("https://") {
                    not_followed(self.notes, format!("remote file {s}"));
                    return Ok(None);
                }
                s
            }
            (Value::Map(_), _) => {
                if item.get("rules").is_some() {
                    self.notes.push(Note {
                        loc: item.loc.clone(),
                        text: "include has rules:; the model includes the file unconditionally"
                            .into(),
                    });
                }
                if let Some(local) = item.get("local").and_then(Node::scalar_text) {
                    local
                } else if let Some(project) = item.get("project").and_then(Node::scalar_text) {
                    let file = item
                        .get("file")
                        .map(|f| match &f.value {
                            Value::Seq(v) => v
                                .iter()
                                .filter_map(Node::scalar_text)
                                .collect::<Vec<_>>()
                                .join(", "),
                            _ => f.scalar_text().unwrap_or_default(),
                        })
                        .unwrap_or_default();
                    not_followed(
                        self.notes,
                        format!("file {file} of project {project} (another repository)"),
                    );
                    return Ok(None);
                } else if let Some(remote) = item.get("remote").and_then(Node::scalar_text) {
                    not_followed(self.notes, format!("remote file {remote}"));
                    return Ok(None);
                } else if let Some(t) = item.get("template").and_then(Node::scalar_text) {
                    not_followed(self.notes, format!("GitLab template {t}"));
                    return Ok(None);
                } else if let Some(c) = item.get("component").and_then(Node::scalar_text) {
                    not_followed(self.notes, format!("CI/CD component {c}"));
                    return Ok(None);
                } else {
                    return Err(CiError {
                        loc: item.loc.clone(),
                        message: "include entry names no local, project, remote, template or component file".into(),
                    });
                }
            }
            _ => {
                return Err(CiError {
                    loc: item.loc.clone(),
                    message: "include entry must be a path or a mapping".into(),
                });
            }
        };
        // only predefined project variables are expanded in include paths
        let path = expand(&path, &self.ctx.predefined());
        let path = path.trim_start_matches('/').to_string();
        if path.contains('*') {
            not_followed(self.notes, format!("wildcard {path}"));
            return Ok(None);
        }
        if !(path.ends_with(".yml") || path.ends_with(".yaml")) {
            return Err(CiError {
                loc: item.loc.clone(),
                message: format!("Included file `{path}` does not have YAML extension!"),
            });
        }
        if self.stack.contains(&path) {
            return Err(CiError {
                loc: item.loc.clone(),
                message: format!(
                    "include cycle: {} includes {path} again",
                    self.stack.join(" → ")
                ),
            });
        }
        if self.files.contains(&path) {
            self.notes.push(Note {
                loc: item.loc.clone(),
                text: format!("{path} is included more than once; its content is merged once"),
            });
            return Ok(None);
        }
        if self.files.len() >= MAX_INCLUDES || self.stack.len() >= MAX_DEPTH {
            return Err(CiError {
                loc: item.loc.clone(),
                message: format!(
                    "Maximum of {MAX_INCLUDES} nested includes are allowed (GitLab's limit)"
                ),
            });
        }
        let text = (self.read)(&path).map_err(|e| CiError {
            loc: item.loc.clone(),
            message: format!("Local file `{path}` does not exist! ({e})"),
        })?;
        self.file(&path, &text).map(Some)
    }
}
