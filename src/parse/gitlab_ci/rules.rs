//! The job-level evaluation after `extends`: `default:` inheritance (and `inherit:`), variables
//! (GitLab's `ExpandVariables.expand_existing`: an undefined variable stays literal), and
//! `workflow:rules`, `only/except` and `rules:` evaluated for a push to the default branch and
//! to an unprotected branch.

use super::extend::{chain, is_job_key, origin_of};
use super::yaml::{Loc, Node, Value};
use super::{CiError, DEFAULT_KEYS, ImageRef, Job, Note, Origin, ProjectContext, RunsOn, Tag, Tri};
use regex::Regex;
use std::collections::BTreeMap;

/// Expand `$VAR`, `${VAR}` and `%VAR%` where `vars` defines them; anything else stays as
/// written (`ExpandVariables.expand_existing`).
#[must_use]
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    if !text.contains('$') && !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let name_end = |from: usize| {
        let mut j = from;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
            j += 1;
        }
        j
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'$' && i + 1 < bytes.len() && bytes[i + 1] == b'{' {
            if let Some(close) = text[i + 2..].find('}') {
                let name = &text[i + 2..i + 2 + close];
                if let Some(v) = vars.get(name) {
                    out.push_str(v);
                    i += close + 3;
                    continue;
                }
            }
        } else if c == b'$' {
            let end = name_end(i + 1);
            if end > i + 1
                && let Some(v) = vars.get(&text[i + 1..end])
            {
                out.push_str(v);
                i = end;
                continue;
            }
        } else if c == b'%' {
            let end = name_end(i + 1);
            if end > i + 1
                && end < bytes.len()
                && bytes[end] == b'%'
                && let Some(v) = vars.get(&text[i + 1..end])
            {
                out.push_str(v);
                i = end + 1;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A `variables:` mapping as name → value (`{value: …}` mappings read for their value).
fn variables_of(node: Option<&Node>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in node.map(Node::entries).unwrap_or_default() {
        let value = match &v.value {
            Value::Map(_) => v.get("value").and_then(Node::scalar_text),
            _ => v.scalar_text(),
        };
        out.insert(k.clone(), value.unwrap_or_default());
    }
    out
}

/// Strings of a sequence (nested sequences, as from `!reference`, flattened), or a lone scalar.
fn strings(node: &Node) -> Vec<(String, Loc)> {
    fn walk(node: &Node, depth: usize, out: &mut Vec<(String, Loc)>) {
        match &node.value {
            Value::Seq(items) if depth < 10 => {
                for i in items {
                    walk(i, depth + 1, out);
                }
            }
            _ => {
                if let Some(s) = node.scalar_text() {
                    out.push((s, node.loc.clone()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(node, 0, &mut out);
    out
}

/// What `inherit: default:` lets through for `key`.
fn inherits_default(job: &Node, key: &str) -> bool {
    match job.get("inherit").and_then(|i| i.get("default")) {
        None => true,
        Some(n) => match &n.value {
            Value::Bool(b) => *b,
            Value::Seq(items) => items
                .iter()
                .any(|i| i.scalar_text().as_deref() == Some(key)),
            _ => true,
        },
    }
}

/// Which global variables `inherit: variables:` lets through.
fn inherited_variables(job: &Node, global: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    match job.get("inherit").and_then(|i| i.get("variables")) {
        Some(Node {
            value: Value::Bool(false),
            ..
        }) => BTreeMap::new(),
        Some(Node {
            value: Value::Seq(items),
            ..
        }) => {
            let allowed: Vec<String> = items.iter().filter_map(Node::scalar_text).collect();
            global
                .iter()
                .filter(|(k, _)| allowed.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
        _ => global.clone(),
    }
}

fn image_ref(node: &Node, vars: &BTreeMap<String, String>) -> Option<ImageRef> {
    let (name, alias, command, variables) = match &node.value {
        Value::Map(_) => (
            node.get("name").and_then(Node::scalar_text)?,
            node.get("alias").and_then(Node::scalar_text),
            node.get("command")
                .map(|c| strings(c).into_iter().map(|(s, _)| s).collect())
                .unwrap_or_default(),
            variables_of(node.get("variables")),
        ),
        _ => (node.scalar_text()?, None, Vec::new(), BTreeMap::new()),
    };
    Some(ImageRef {
        name: expand(&name, vars),
        alias,
        command,
        variables,
        loc: node.loc.clone(),
    })
}

/// The branch a push pipeline runs for.
struct RefCase<'a> {
    branch: &'a str,
    protected: bool,
}

impl ProjectContext {
    fn pipeline_variables(&self, case: &RefCase<'_>) -> BTreeMap<String, String> {
        let mut v = self.predefined();
        v.insert("CI_COMMIT_BRANCH".into(), case.branch.into());
        v.insert("CI_COMMIT_REF_NAME".into(), case.branch.into());
        v.insert(
            "CI_COMMIT_REF_SLUG".into(),
            super::slug(&case.branch.to_ascii_lowercase()),
        );
        v.insert("CI_PIPELINE_SOURCE".into(), "push".into());
        v.insert("CI_COMMIT_REF_PROTECTED".into(), case.protected.to_string());
        v
    }
}

/// Build every visible job from the resolved configuration.
///
/// # Errors
/// A job that is not a mapping.
pub fn build_jobs(
    entries: &[(String, Node)],
    resolved: &[(String, Node)],
    ctx: &ProjectContext,
    notes: &mut Vec<Note>,
) -> Result<Vec<Job>, CiError> {
    let get = |k: &str| resolved.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v);
    let default = get("default");
    let global_vars = variables_of(get("variables"));
    let predefined = ctx.predefined();
    let workflow = get("workflow").and_then(|w| w.get("rules"));
    let unprotected = RefCase {
        branch: "feature/pulldoctor-any-branch",
        protected: false,
    };
    let default_case = RefCase {
        branch: &ctx.default_branch,
        protected: ctx.default_branch_protected,
    };
    let mut jobs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, node) in resolved.iter().rev() {
        // a later duplicate job name replaces an earlier one; keep the last, in file order below
        if !is_job_key(name) || name.starts_with('.') || !seen.insert(name.clone()) {
            continue;
        }
        if !matches!(node.value, Value::Map(_)) {
            notes.push(Note {
                loc: node.loc.clone(),
                text: format!("top-level key `{name}` is not a job (its value is not a mapping)"),
            });
            continue;
        }
        if node.get("script").is_none()
            && node.get("trigger").is_none()
            && node.get("run").is_none()
        {
            notes.push(Note {
                loc: node.loc.clone(),
                text: format!(
                    "jobs:{name} config should implement the script:, run:, or trigger: keyword (GitLab rejects the file)"
                ),
            });
        }
        let inherited = |key: &str| -> Option<(Node, Origin)> {
            if let Some(n) = node.get(key) {
                let origin = match origin_of(entries, name, key) {
                    Some(o) if o == *name => Origin::Job,
                    Some(o) => Origin::Extends { from: o },
                    None => Origin::Job,
                };
                return Some((n.clone(), origin));
            }
            if !DEFAULT_KEYS.contains(&key) || !inherits_default(node, key) {
                return None;
            }
            let from_default = default.and_then(|d| d.get(key));
            // deprecated root-level image/services/before_script/after_script/cache
            let from_root = || {
                matches!(
                    key,
                    "image" | "services" | "before_script" | "after_script" | "cache"
                )
                .then(|| get(key))
                .flatten()
            };
            from_default
                .or_else(from_root)
                .map(|n| (n.clone(), Origin::Default))
        };
        let mut vars = inherited_variables(node, &global_vars);
        vars.extend(variables_of(node.get("variables")));
        let mut all_vars = predefined.clone();
        all_vars.extend(
            vars.iter()
                .map(|(k, v)| (k.clone(), expand(v, &predefined))),
        );
        let (tags, tags_origin) = match inherited("tags") {
            Some((n, o)) => {
                if let Value::Seq(items) = &n.value
                    && items.iter().any(|i| matches!(i.value, Value::Seq(_)))
                {
                    notes.push(Note {
                        loc: n.loc.clone(),
                        text: format!(
                            "{name}: tags holds a nested list (a !reference inside the list); the model flattens it, GitLab may reject it"
                        ),
                    });
                }
                let tags = strings(&n)
                    .into_iter()
                    .map(|(raw, loc)| Tag {
                        value: expand(&raw, &all_vars),
                        raw,
                        loc,
                    })
                    .collect();
                (tags, o)
            }
            None => (Vec::new(), Origin::Unset),
        };
        let (image, image_origin) = match inherited("image") {
            Some((n, o)) => (image_ref(&n, &all_vars), o),
            None => (None, Origin::Unset),
        };
        let (services, services_origin) = match inherited("services") {
            Some((n, o)) => {
                let list = match &n.value {
                    // an entry may itself be a list (a `!reference` to a list of services)
                    Value::Seq(items) => items
                        .iter()
                        .flat_map(|i| match &i.value {
                            Value::Seq(inner) => inner.iter().collect::<Vec<_>>(),
                            _ => vec![i],
                        })
                        .filter_map(|i| image_ref(i, &all_vars))
                        .collect(),
                    _ => image_ref(&n, &all_vars).into_iter().collect(),
                };
                (list, o)
            }
            None => (Vec::new(), Origin::Unset),
        };
        let mut script = Vec::new();
        for key in ["before_script", "script", "after_script"] {
            let n = if key == "script" {
                node.get(key).cloned()
            } else {
                inherited(key).map(|(n, _)| n)
            };
            if let Some(n) = n {
                script.extend(strings(&n).into_iter().map(|(s, _)| expand(&s, &all_vars)));
            }
        }
        let runs_on = runs_on(node, workflow, ctx, &vars, &default_case, &unprotected);
        // `type:` is the deprecated spelling of `stage:`
        let stage = node
            .get("stage")
            .or_else(|| node.get("type"))
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| "test".to_string());
        jobs.push(Job {
            name: name.clone(),
            loc: node.loc.clone(),
            stage,
            tags,
            tags_origin,
            image,
            image_origin,
            services,
            services_origin,
            extends: chain(entries, name),
            variables: vars,
            script,
            runs_on,
        });
    }
    jobs.reverse();
    Ok(jobs)
}

fn runs_on(
    job: &Node,
    workflow: Option<&Node>,
    ctx: &ProjectContext,
    job_vars: &BTreeMap<String, String>,
    default_case: &RefCase<'_>,
    unprotected: &RefCase<'_>,
) -> RunsOn {
    let decide = |case: &RefCase<'_>| -> (Tri, String) {
        let mut vars = ctx.pipeline_variables(case);
        vars.extend(job_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(w) = workflow {
            let (t, why) = eval_rules(w, &vars, "workflow:rules");
            if t != Tri::Yes {
                return (t, why);
            }
        }
        if let Some(rules) = job.get("rules") {
            return eval_rules(rules, &vars, "rules");
        }
        eval_only_except(job, case, &vars)
    };
    let (default_branch, why_default) = decide(default_case);
    let (unprotected_branch, why_other) = decide(unprotected);
    let because = if why_default == why_other {
        why_default
    } else {
        format!("default branch: {why_default}; other branches: {why_other}")
    };
    RunsOn {
        default_branch,
        unprotected_branch,
        because,
    }
}

fn and(a: Tri, b: Tri) -> Tri {
    match (a, b) {
        (Tri::No, _) | (_, Tri::No) => Tri::No,
        (Tri::Yes, Tri::Yes) => Tri::Yes,
        _ => Tri::Unknown,
    }
}

fn or(a: Tri, b: Tri) -> Tri {
    match (a, b) {
        (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
        (Tri::No, Tri::No) => Tri::No,
        _ => Tri::Unknown,
    }
}

fn not(a: Tri) -> Tri {
    match a {
        Tri::Yes => Tri::No,
        Tri::No => Tri::Yes,
        Tri::Unknown => Tri::Unknown,
    }
}

/// `rules:` (or `workflow:rules:`): the first rule whose clauses all hold decides; none → not
/// created. A clause the model cannot evaluate (`changes`, `exists`) makes the answer unknown.
fn eval_rules(rules: &Node, vars: &BTreeMap<String, String>, what: &str) -> (Tri, String) {
    let Value::Seq(items) = &rules.value else {
        return (Tri::Unknown, format!("{what} is not a list"));
    };
    for (i, rule) in items.iter().enumerate() {
        let mut holds = Tri::Yes;
        if let Some(cond) = rule.get("if").and_then(Node::scalar_text) {
            holds = and(holds, eval_if(&cond, vars));
        }
        for clause in ["changes", "exists"] {
            if rule.get(clause).is_some() {
                holds = and(holds, Tri::Unknown);
            }
        }
        let when = rule
            .get("when")
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| "on_success".into());
        let why = format!("{what}[{i}] (when: {when})");
        match holds {
            Tri::No => continue,
            Tri::Unknown => return (Tri::Unknown, format!("{why} cannot be evaluated here")),
            Tri::Yes => return (if when == "never" { Tri::No } else { Tri::Yes }, why),
        }
    }
    (Tri::No, format!("no {what} entry matches"))
}

/// `only:`/`except:` for a push to a branch.
fn eval_only_except(
    job: &Node,
    case: &RefCase<'_>,
    vars: &BTreeMap<String, String>,
) -> (Tri, String) {
    let matches = |node: &Node| -> Tri {
        // the simple form is the list of refs
        let (refs, variables, changes) = match &node.value {
            Value::Map(_) => (node.get("refs"), node.get("variables"), node.get("changes")),
            _ => (Some(node), None, None),
        };
        let mut t = match refs {
            Some(r) => strings(r)
                .iter()
                .map(|(p, _)| ref_matches(p, case.branch))
                .fold(Tri::No, or),
            None => Tri::Yes,
        };
        if let Some(v) = variables {
            t = and(
                t,
                strings(v)
                    .iter()
                    .map(|(e, _)| eval_if(e, vars))
                    .fold(Tri::No, or),
            );
        }
        if changes.is_some() || node.get("kubernetes").is_some() {
            t = and(t, Tri::Unknown);
        }
        t
    };
    let only = job.get("only");
    let except = job.get("except");
    let only_t = only.map_or(Tri::Yes, &matches); // default only: [branches, tags]
    let except_t = except.map_or(Tri::No, &matches);
    let t = and(only_t, not(except_t));
    let why = match (only, except) {
        (None, None) => "no only/except/rules: runs on every branch".to_string(),
        (Some(o), None) => format!("only: {}", describe(o)),
        (None, Some(e)) => format!("except: {}", describe(e)),
        (Some(o), Some(e)) => format!("only: {}; except: {}", describe(o), describe(e)),
    };
    (t, why)
}

fn describe(node: &Node) -> String {
    let refs = match &node.value {
        Value::Map(_) => node.get("refs").map(strings).unwrap_or_default(),
        _ => strings(node),
    };
    let list: Vec<String> = refs.into_iter().map(|(s, _)| s).collect();
    if list.is_empty() {
        "(variables/changes)".to_string()
    } else {
        format!("[{}]", list.join(", "))
    }
}

/// One `only`/`except` ref pattern against a branch pushed.
fn ref_matches(pattern: &str, branch: &str) -> Tri {
    // `main@group/project` restricts to a project; the model evaluates this project only
    let pattern = pattern.split('@').next().unwrap_or(pattern);
    match pattern {
        "branches" | "pushes" => Tri::Yes,
        "tags"
        | "api"
        | "external"
        | "pipelines"
        | "schedules"
        | "triggers"
        | "web"
        | "merge_requests"
        | "external_pull_requests"
        | "chat" => Tri::No,
        p if p.len() >= 2 && p.starts_with('/') => match regex_literal(p) {
            Some(re) => {
                if re.is_match(branch) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            None => Tri::Unknown,
        },
        p => {
            if p == branch {
                Tri::Yes
            } else {
                Tri::No
            }
        }
    }
}

/// `/re/flags` as a regex (GitLab uses RE2 syntax, which the `regex` crate follows).
fn regex_literal(lit: &str) -> Option<Regex> {
    let body = lit.strip_prefix('/')?;
    let close = body.rfind('/')?;
    let (re, flags) = (&body[..close], &body[close + 1..]);
    let prefix = if flags.contains('i') { "(?i)" } else { "" };
    Regex::new(&format!("{prefix}{re}")).ok()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Var(String),
    Str(String),
    Re(String),
    Null,
    Eq,
    Ne,
    Match,
    NoMatch,
    And,
    Or,
    Open,
    Close,
}

fn tokenize(expr: &str) -> Option<Vec<Tok>> {
    let b = expr.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' => i += 1,
            b'$' => {
                let braced = b.get(i + 1) == Some(&b'{');
                let start = if braced { i + 2 } else { i + 1 };
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push(Tok::Var(expr[start..j].to_string()));
                i = if braced { j + 1 } else { j };
            }
            b'"' | b'\'' => {
                let end = expr[i + 1..].find(c as char)? + i + 1;
                out.push(Tok::Str(expr[i + 1..end].to_string()));
                i = end + 1;
            }
            b'/' => {
                // a regex literal runs to the last unescaped '/' before an operator or the end
                let mut j = i + 1;
                while j < b.len() && !(b[j] == b'/' && b[j - 1] != b'\\') {
                    j += 1;
                }
                let mut k = j + 1;
                while k < b.len() && b[k].is_ascii_alphabetic() {
                    k += 1;
                }
                out.push(Tok::Re(expr[i..k.min(b.len())].to_string()));
                i = k;
            }
            b'=' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Eq);
                i += 2;
            }
            b'=' if b.get(i + 1) == Some(&b'~') => {
                out.push(Tok::Match);
                i += 2;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Ne);
                i += 2;
            }
            b'!' if b.get(i + 1) == Some(&b'~') => {
                out.push(Tok::NoMatch);
                i += 2;
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                out.push(Tok::And);
                i += 2;
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                out.push(Tok::Or);
                i += 2;
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            _ if expr[i..].starts_with("null") => {
                out.push(Tok::Null);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A `rules:if` / `only:variables` expression, evaluated with `vars` (an undefined variable is
/// null, as in GitLab). Unparseable expressions are unknown.
#[must_use]
pub fn eval_if(expr: &str, vars: &BTreeMap<String, String>) -> Tri {
    let Some(tokens) = tokenize(expr) else {
        return Tri::Unknown;
    };
    let mut p = Parser {
        toks: &tokens,
        pos: 0,
        vars,
        depth: 0,
    };
    match p.or() {
        Some(t) if p.pos == tokens.len() => t,
        _ => Tri::Unknown,
    }
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    vars: &'a BTreeMap<String, String>,
    depth: usize,
}

#[derive(Debug, Clone)]
enum Operand {
    Text(Option<String>),
    Re(String),
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Option<Tri> {
        let mut t = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            t = or(t, self.and()?);
        }
        Some(t)
    }

    fn and(&mut self) -> Option<Tri> {
        let mut t = self.primary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            t = and(t, self.primary()?);
        }
        Some(t)
    }

    fn operand(&mut self) -> Option<Operand> {
        let tok = self.peek()?.clone();
        self.pos += 1;
        Some(match tok {
            Tok::Var(name) => Operand::Text(self.vars.get(&name).cloned()),
            Tok::Str(s) => Operand::Text(Some(s)),
            Tok::Null => Operand::Text(None),
            Tok::Re(r) => Operand::Re(r),
            _ => return None,
        })
    }

    fn primary(&mut self) -> Option<Tri> {
        if self.peek() == Some(&Tok::Open) {
            self.depth += 1;
            if self.depth > 50 {
                return None;
            }
            self.pos += 1;
            let t = self.or()?;
            if self.peek() != Some(&Tok::Close) {
                return None;
            }
            self.pos += 1;
            return Some(t);
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Eq | Tok::Ne | Tok::Match | Tok::NoMatch) => self.peek().cloned(),
            _ => None,
        };
        let Some(op) = op else {
            return Some(match left {
                Operand::Text(Some(s)) if !s.is_empty() => Tri::Yes,
                Operand::Text(_) => Tri::No,
                Operand::Re(_) => Tri::Unknown,
            });
        };
        self.pos += 1;
        let right = self.operand()?;
        let text = |o: &Operand| match o {
            Operand::Text(t) => t.clone(),
            Operand::Re(r) => Some(r.clone()),
        };
        let bool_tri = |b: bool| if b { Tri::Yes } else { Tri::No };
        Some(match op {
            Tok::Eq => bool_tri(text(&left) == text(&right)),
            Tok::Ne => bool_tri(text(&left) != text(&right)),
            Tok::Match | Tok::NoMatch => {
                // the pattern may come from a variable holding `/re/`
                let pattern = match &right {
                    Operand::Re(r) => Some(r.clone()),
                    Operand::Text(Some(t)) if t.starts_with('/') => Some(t.clone()),
                    _ => None,
                };
                let Some(re) = pattern.as_deref().and_then(regex_literal) else {
                    return Some(Tri::Unknown);
                };
                let hit = text(&left).is_some_and(|s| re.is_match(&s));
                bool_tri(if op == Tok::Match { hit } else { !hit })
            }
            _ => Tri::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Defined variables expand in every spelling; undefined ones stay literal, as in GitLab.
    #[test]
    fn expand_existing_keeps_undefined() {
        let v = vars(&[("RUNNER", "msi-gition"), ("OS", "linux")]);
        assert_eq!(expand("$RUNNER", &v), "msi-gition");
        assert_eq!(expand("${OS}-docker", &v), "linux-docker");
        assert_eq!(expand("%OS%", &v), "linux");
        assert_eq!(expand("$UNDEFINED", &v), "$UNDEFINED");
        assert_eq!(expand("a$", &v), "a$");
        assert_eq!(expand("50%", &v), "50%");
    }

    /// The `rules:if` forms projects write.
    #[test]
    fn if_expressions() {
        let v = vars(&[
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_PIPELINE_SOURCE", "push"),
        ]);
        assert_eq!(
            eval_if("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", &v),
            Tri::Yes
        );
        assert_eq!(eval_if("$CI_COMMIT_BRANCH == \"dev\"", &v), Tri::No);
        assert_eq!(eval_if("$CI_COMMIT_TAG", &v), Tri::No);
        assert_eq!(eval_if("$CI_COMMIT_TAG == null", &v), Tri::Yes);
        assert_eq!(
            eval_if(
                "$CI_PIPELINE_SOURCE == 'merge_request_event' || $CI_COMMIT_BRANCH =~ /^ma/",
                &v
            ),
            Tri::Yes
        );
        assert_eq!(
            eval_if(
                "($CI_COMMIT_BRANCH !~ /^release/i) && $CI_PIPELINE_SOURCE == \"push\"",
                &v
            ),
            Tri::Yes
        );
        assert_eq!(eval_if("$X ==", &v), Tri::Unknown);
        assert_eq!(eval_if(&"(".repeat(5000), &v), Tri::Unknown);
    }
}
