//! `extends:` and `!reference` as GitLab resolves them (`lib/gitlab/ci/config/extendable/entry.rb`,
//! `lib/gitlab/ci/config/yaml/tags/reference.rb`): a job is its parents deep-merged in order
//! (a later parent wins over an earlier one), then itself on top ("closest scope wins"); hashes
//! merge and everything else, arrays included, is replaced. `!reference [job, key, …]` is looked
//! up in the configuration after `extends`.

use super::yaml::{Loc, Node, Value};
use super::{CiError, ROOT_KEYWORDS};
use std::collections::BTreeMap;

/// GitLab's `MAX_NESTING_LEVELS` for `extends` and for nested `!reference`s.
pub const MAX_NESTING: usize = 10;

/// References resolved in one configuration before it is called hostile.
const MAX_REFERENCE_EXPANSIONS: usize = 20_000;

/// Rails `deep_merge`: `over` wins; where both are mappings, they merge key by key.
#[must_use]
pub fn deep_merge(base: Node, over: Node) -> Node {
    if base.tag.is_some() || over.tag.is_some() {
        return over;
    }
    match (base.value, over.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (k, v) in o {
                if let Some(slot) = b.iter_mut().find(|(bk, _)| *bk == k) {
                    let old =
                        std::mem::replace(&mut slot.1, Node::new(Value::Null, Loc::default()));
                    slot.1 = deep_merge(old, v);
                } else {
                    b.push((k, v));
                }
            }
            Node {
                value: Value::Map(b),
                tag: None,
                loc: over.loc,
            }
        }
        (_, o) => Node {
            value: o,
            tag: over.tag,
            loc: over.loc,
        },
    }
}

/// The names a job `extends`, in the order written.
#[must_use]
pub fn parents(node: &Node) -> Vec<String> {
    match node.get("extends") {
        Some(n) => match &n.value {
            Value::Seq(items) => items.iter().filter_map(Node::scalar_text).collect(),
            _ => n.scalar_text().into_iter().collect(),
        },
        None => Vec::new(),
    }
}

/// Whether a top-level key is a job or hidden job (anything but a root keyword).
#[must_use]
pub fn is_job_key(key: &str) -> bool {
    !ROOT_KEYWORDS.contains(&key)
}

struct Resolver<'a> {
    entries: &'a [(String, Node)],
    done: BTreeMap<String, Node>,
}

impl Resolver<'_> {
    fn raw(&self, name: &str) -> Option<&Node> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn extend(&mut self, name: &str, stack: &mut Vec<String>) -> Result<Node, CiError> {
        if let Some(done) = self.done.get(name) {
            return Ok(done.clone());
        }
        let Some(node) = self.raw(name).cloned() else {
            return Err(CiError {
                loc: Loc::default(),
                message: format!("unknown key in `extends` ({name})"),
            });
        };
        let extends_loc = node.get("extends").map(|n| n.loc.clone());
        let parents = parents(&node);
        stack.push(name.to_string());
        let mut merged: Option<Node> = None;
        for parent in &parents {
            let at = || extends_loc.clone().unwrap_or_else(|| node.loc.clone());
            if stack.contains(parent) {
                let mut chain = stack.clone();
                chain.push(parent.clone());
                return Err(CiError {
                    loc: at(),
                    message: format!(
                        "{}: circular dependency detected in `extends` ({})",
                        stack[0],
                        chain.join(" → ")
                    ),
                });
            }
            if stack.len() > MAX_NESTING {
                return Err(CiError {
                    loc: at(),
                    message: format!(
                        "{}: nesting too deep in `extends` (more than {MAX_NESTING} levels: {})",
                        stack[0],
                        stack.join(" → ")
                    ),
                });
            }
            match self.raw(parent) {
                None => {
                    return Err(CiError {
                        loc: at(),
                        message: format!("{name}: unknown key in `extends` ({parent})"),
                    });
                }
                Some(p) if !matches!(p.value, Value::Map(_)) => {
                    return Err(CiError {
                        loc: at(),
                        message: format!(
                            "{name}: invalid base hash in `extends` ({parent} is not a mapping)"
                        ),
                    });
                }
                Some(_) => {}
            }
            let base = self.extend(parent, stack)?;
            merged = Some(match merged {
                Some(m) => deep_merge(m, base),
                None => base,
            });
        }
        stack.pop();
        let mut own = node;
        if let Value::Map(m) = &mut own.value {
            m.retain(|(k, _)| k != "extends");
        }
        let result = match merged {
            Some(m) => deep_merge(m, own),
            None => own,
        };
        self.done.insert(name.to_string(), result.clone());
        Ok(result)
    }
}

/// Every top-level entry with `extends` applied (jobs and hidden jobs) and every `!reference`
/// resolved, in file order.
///
/// # Errors
/// An unknown or non-mapping `extends` target, a cycle, nesting deeper than
/// [`MAX_NESTING`], or a `!reference` that cannot be found, each located.
pub fn resolve(entries: &[(String, Node)]) -> Result<Vec<(String, Node)>, CiError> {
    let mut resolver = Resolver {
        entries,
        done: BTreeMap::new(),
    };
    let mut extended: Vec<(String, Node)> = Vec::new();
    for (key, node) in entries {
        let value = if is_job_key(key) && matches!(node.value, Value::Map(_)) {
            resolver.extend(key, &mut Vec::new())?
        } else {
            node.clone()
        };
        extended.push((key.clone(), value));
    }
    let mut budget = MAX_REFERENCE_EXPANSIONS;
    let mut out = Vec::with_capacity(extended.len());
    for (key, node) in &extended {
        out.push((key.clone(), references(node, &extended, 0, &mut budget)?));
    }
    Ok(out)
}

/// Replace every `!reference [a, b, …]` in `node` by what it points to (itself resolved).
fn references(
    node: &Node,
    config: &[(String, Node)],
    depth: usize,
    budget: &mut usize,
) -> Result<Node, CiError> {
    if node.is_reference() {
        if depth >= MAX_NESTING || *budget == 0 {
            return Err(CiError {
                loc: node.loc.clone(),
                message: format!(
                    "!reference nested more than {MAX_NESTING} levels deep (or too many references): is it circular?"
                ),
            });
        }
        *budget -= 1;
        let path: Vec<String> = match &node.value {
            Value::Seq(items) => items.iter().filter_map(Node::scalar_text).collect(),
            _ => Vec::new(),
        };
        let shown = format!(
            "!reference [{}]",
            path.iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut parts = path.iter();
        let found = parts
            .next()
            .and_then(|first| {
                config
                    .iter()
                    .rev()
                    .find(|(k, _)| k == first)
                    .map(|(_, v)| v)
            })
            .and_then(|mut cur| {
                for part in parts {
                    // a list is indexed by number (`!reference [.services, 0]`)
                    cur = match (&cur.value, part.parse::<usize>()) {
                        (Value::Seq(items), Ok(i)) => items.get(i)?,
                        _ => cur.get(part)?,
                    };
                }
                Some(cur)
            });
        let Some(target) = found else {
            return Err(CiError {
                loc: node.loc.clone(),
                message: format!("{shown} could not be found"),
            });
        };
        let mut resolved = references(target, config, depth + 1, budget)?;
        // the value stands where the reference was written
        resolved.loc = node.loc.clone();
        return Ok(resolved);
    }
    let value = match &node.value {
        Value::Seq(items) => Value::Seq(
            items
                .iter()
                .map(|n| references(n, config, depth, budget))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, n)| Ok((k.clone(), references(n, config, depth, budget)?)))
                .collect::<Result<_, CiError>>()?,
        ),
        other => other.clone(),
    };
    Ok(Node {
        value,
        tag: node.tag.clone(),
        loc: node.loc.clone(),
    })
}

/// Which job (the job itself or one it extends, nearest winning as in the merge) writes `key`.
#[must_use]
pub fn origin_of(entries: &[(String, Node)], name: &str, key: &str) -> Option<String> {
    fn walk(entries: &[(String, Node)], name: &str, key: &str, depth: usize) -> Option<String> {
        if depth > MAX_NESTING {
            return None;
        }
        let node = entries
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)?;
        if node.get(key).is_some() {
            return Some(name.to_string());
        }
        parents(node)
            .iter()
            .rev()
            .find_map(|p| walk(entries, p, key, depth + 1))
    }
    walk(entries, name, key, 0)
}

/// The `extends` chain of a job, nearest first, each name once.
#[must_use]
pub fn chain(entries: &[(String, Node)], name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut queue: Vec<(String, usize)> = vec![(name.to_string(), 0)];
    while let Some((n, depth)) = queue.pop() {
        if depth > MAX_NESTING {
            continue;
        }
        let Some(node) = entries.iter().rev().find(|(k, _)| *k == n).map(|(_, v)| v) else {
            continue;
        };
        for p in parents(node).into_iter().rev() {
            if !out.contains(&p) && p != name {
                out.push(p.clone());
                queue.push((p, depth + 1));
            }
        }
    }
    out
}
