//! The signature catalog: `checks/<class>.toml`, embedded at build time, extended or overridden
//! by `--checks-dir DIR`. Loading validates everything a signature author can get wrong and says
//! where (file, line, column, pattern id).

use crate::model::{Class, FixRef, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/catalog.rs"));
}

/// A catalog problem, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file could not be read.
    #[error("cannot read signature file '{path}': {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid TOML or has unknown/missing keys (the message has line and column).
    #[error("signature file '{path}': {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A pattern, guard or context regex does not compile, or is outside the portable subset.
    #[error("signature file '{path}', {what}: {message}")]
    Regex {
        /// The file.
        path: String,
        /// Which regex (`pattern 'id'`, `guard 2`, …).
        what: String,
        /// Why.
        message: String,
    },
    /// A required field is missing after merging.
    #[error("signature for class '{class}' ({path}): {message}")]
    Invalid {
        /// The class.
        class: Class,
        /// The file that defined it last.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A fix a signature points to.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FixSpec {
    /// Stable id.
    pub id: String,
    /// One line.
    pub title: String,
    /// The commands a person would run (shown, never run from here).
    #[serde(default)]
    pub commands: Vec<String>,
}

/// One recognising regex.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PatternSpec {
    /// Stable id within the class (`go-http-response`).
    pub id: String,
    /// The regex, in the subset shared by Rust's `regex` and POSIX ERE (so the benchmark can hand
    /// the same patterns to `grep -E`): no `(?…)` groups, no `\d`, no lazy quantifiers.
    pub regex: String,
    /// Severity for this pattern, when it differs from the class's.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// True when the match alone proves the class: the class's `context` is not required.
    #[serde(default)]
    pub standalone: bool,
}

/// A regex that must not match for the class to apply, and why.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// The regex.
    pub regex: String,
    /// Why a match means it is not this class.
    pub why: String,
}

/// Text that must classify to this class.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExampleSpec {
    /// The text (one or more lines, as pasted).
    pub text: String,
    /// Where it came from.
    #[serde(default)]
    pub source: Option<String>,
}

/// Text that must not classify to this class (and, if given, must classify to `class`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CounterSpec {
    /// The text.
    pub text: String,
    /// The class it must get instead (`none` for benign text); any other class if absent.
    #[serde(default)]
    pub class: Option<Class>,
    /// Where it came from.
    #[serde(default)]
    pub source: Option<String>,
}

/// How a `--checks-dir` file combines with an entry that already exists for its class.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Add patterns, guards, context, examples and fixes; replace a pattern with the same id;
    /// replace the text fields that are given.
    #[default]
    Extend,
    /// Replace the whole entry.
    Replace,
}

/// One `checks/<class>.toml` file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    class: Class,
    #[serde(default)]
    mode: MergeMode,
    title: Option<String>,
    severity: Option<Severity>,
    priority: Option<u32>,
    explanation: Option<String>,
    #[serde(default)]
    next: Vec<String>,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    refs: Vec<String>,
    #[serde(default)]
    context: Vec<String>,
    #[serde(default, rename = "fix")]
    fixes: Vec<FixSpec>,
    #[serde(default, rename = "pattern")]
    patterns: Vec<PatternSpec>,
    #[serde(default, rename = "guard")]
    guards: Vec<GuardSpec>,
    #[serde(default, rename = "example")]
    examples: Vec<ExampleSpec>,
    #[serde(default, rename = "counterexample")]
    counterexamples: Vec<CounterSpec>,
}

/// A class's complete, validated signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The class it recognises (`none`: known benign look-alikes that must never alarm).
    pub class: Class,
    /// One line for the person at the terminal.
    pub title: String,
    /// Default severity of its findings.
    pub severity: Severity,
    /// When several classes match one line, the highest priority wins.
    pub priority: u32,
    /// What it means, in plain words.
    pub explanation: String,
    /// What to check next, in order.
    pub next: Vec<String>,
    /// Check ids that confirm or refute it with a probe.
    pub checks: Vec<String>,
    /// Where the facts behind it come from.
    pub refs: Vec<String>,
    /// Regexes of which at least one must match the same line, unless a pattern is standalone:
    /// evidence that the line is about an image, a registry or CI at all.
    pub context: Vec<String>,
    /// Fixes it points to.
    pub fixes: Vec<FixSpec>,
    /// Recognising regexes.
    pub patterns: Vec<PatternSpec>,
    /// Vetoes.
    pub guards: Vec<GuardSpec>,
    /// Must classify to this class.
    pub examples: Vec<ExampleSpec>,
    /// Must not classify to this class.
    pub counterexamples: Vec<CounterSpec>,
    /// The files it was assembled from (embedded files are `checks/<name>`).
    pub origin: Vec<String>,
}

impl Signature {
    /// The fixes as references for a finding.
    #[must_use]
    pub fn fix_refs(&self) -> Vec<FixRef> {
        self.fixes
            .iter()
            .map(|f| FixRef {
                id: f.id.clone(),
                title: f.title.clone(),
            })
            .collect()
    }
}

/// `checks/contexts.toml`: named sets of regexes that signatures require with `context = [...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextFile {
    #[serde(default)]
    context: Vec<ContextSpec>,
}

/// One named context.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextSpec {
    name: String,
    any: Vec<String>,
}

/// The file name that holds contexts instead of a class.
const CONTEXTS_FILE: &str = "contexts.toml";

/// The loaded catalog: one signature per class that has one, in taxonomy order, and the named
/// contexts they require.
#[derive(Debug, Clone)]
pub struct Catalog {
    signatures: Vec<Signature>,
    contexts: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    /// The embedded catalog only.
    ///
    /// # Errors
    /// If an embedded file is invalid (a test keeps that from shipping).
    pub fn embedded() -> Result<Self, CatalogError> {
        Self::load(&[])
    }

    /// The embedded catalog, then every `*.toml` in each directory (sorted by name), later
    /// files extending or replacing earlier entries.
    ///
    /// # Errors
    /// The first unreadable or invalid file, with its path and the line and column.
    pub fn load(extra_dirs: &[PathBuf]) -> Result<Self, CatalogError> {
        let mut by_class: BTreeMap<Class, Signature> = BTreeMap::new();
        let mut contexts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut add = |path: &str, name: &str, text: &str| {
            if name == CONTEXTS_FILE {
                merge_contexts(&mut contexts, path, text)
            } else {
                merge(&mut by_class, path, text)
            }
        };
        for (name, text) in embedded::EMBEDDED {
            add(&format!("checks/{name}"), name, text)?;
        }
        for dir in extra_dirs {
            for path in toml_files(dir)? {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Read {
                    path: shown.clone(),
                    source,
                })?;
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                add(&shown, name, &text)?;
            }
        }
        let signatures: Vec<Signature> = by_class.into_values().collect();
        for sig in &signatures {
            validate(sig, &contexts)?;
        }
        Ok(Catalog {
            signatures,
            contexts,
        })
    }

    /// The regexes of a named context.
    #[must_use]
    pub fn context(&self, name: &str) -> Option<&[String]> {
        self.contexts.get(name).map(Vec::as_slice)
    }

    /// All signatures, in taxonomy order.
    #[must_use]
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Every fix id with the commands a person would run (what the dashboard shows beside a
    /// finding's fixes).
    #[must_use]
    pub fn fix_commands(&self) -> BTreeMap<String, Vec<String>> {
        self.signatures
            .iter()
            .flat_map(|s| s.fixes.iter().map(|f| (f.id.clone(), f.commands.clone())))
            .collect()
    }

    /// The signature for a class, if the catalog has one.
    #[must_use]
    pub fn get(&self, class: Class) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.class == class)
    }
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let rd = std::fs::read_dir(dir).map_err(|source| CatalogError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn merge(
    by_class: &mut BTreeMap<Class, Signature>,
    path: &str,
    text: &str,
) -> Result<(), CatalogError> {
    let file: SignatureFile = parse_toml(path, text)?;
    let replace = file.mode == MergeMode::Replace || !by_class.contains_key(&file.class);
    if replace {
        by_class.insert(
            file.class,
            Signature {
                class: file.class,
                title: file.title.unwrap_or_default(),
                severity: file.severity.unwrap_or(Severity::Error),
                priority: file.priority.unwrap_or(50),
                explanation: file.explanation.unwrap_or_default(),
                next: file.next,
                checks: file.checks,
                refs: file.refs,
                context: file.context,
                fixes: file.fixes,
                patterns: file.patterns,
                guards: file.guards,
                examples: file.examples,
                counterexamples: file.counterexamples,
                origin: vec![path.to_string()],
            },
        );
        return Ok(());
    }
    let Some(sig) = by_class.get_mut(&file.class) else {
        return Ok(());
    };
    if let Some(t) = file.title {
        sig.title = t;
    }
    if let Some(s) = file.severity {
        sig.severity = s;
    }
    if let Some(p) = file.priority {
        sig.priority = p;
    }
    if let Some(e) = file.explanation {
        sig.explanation = e;
    }
    sig.next.extend(file.next);
    sig.checks.extend(file.checks);
    sig.refs.extend(file.refs);
    sig.context.extend(file.context);
    for fix in file.fixes {
        sig.fixes.retain(|f| f.id != fix.id);
        sig.fixes.push(fix);
    }
    for pat in file.patterns {
        sig.patterns.retain(|p| p.id != pat.id);
        sig.patterns.push(pat);
    }
    sig.guards.extend(file.guards);
    sig.examples.extend(file.examples);
    sig.counterexamples.extend(file.counterexamples);
    sig.origin.push(path.to_string());
    Ok(())
}

fn merge_contexts(
    contexts: &mut BTreeMap<String, Vec<String>>,
    path: &str,
    text: &str,
) -> Result<(), CatalogError> {
    let file: ContextFile = parse_toml(path, text)?;
    for ctx in file.context {
        for (i, re) in ctx.any.iter().enumerate() {
            check_regex(path, &format!("context '{}' regex {}", ctx.name, i + 1), re)?;
        }
        contexts.entry(ctx.name).or_default().extend(ctx.any);
    }
    Ok(())
}

/// Parse a catalog file; errors name the file, line and column.
fn parse_toml<T: serde::de::DeserializeOwned>(path: &str, text: &str) -> Result<T, CatalogError> {
    toml::from_str(text).map_err(|e| CatalogError::Parse {
        path: path.to_string(),
        message: toml_message(&e, text),
    })
}

/// The toml crate's message already names line and column; keep it on one line.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let mut msg = e.message().to_string();
    if let Some(span) = e.span() {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        msg = format!("line {line}, column {col}: {msg}");
    }
    msg
}

fn validate(sig: &Signature, contexts: &BTreeMap<String, Vec<String>>) -> Result<(), CatalogError> {
    let path = sig.origin.last().cloned().unwrap_or_default();
    let invalid = |message: &str| CatalogError::Invalid {
        class: sig.class,
        path: path.clone(),
        message: message.to_string(),
    };
    if sig.title.trim().is_empty() {
        return Err(invalid("'title' is missing"));
    }
    if sig.explanation.trim().is_empty() {
        return Err(invalid("'explanation' is missing"));
    }
    if sig.patterns.is_empty() {
        return Err(invalid(
            "no [[pattern]]: a signature must recognise something",
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for p in &sig.patterns {
        if !ids.insert(&p.id) {
            return Err(invalid(&format!("pattern id '{}' is used twice", p.id)));
        }
        check_regex(&path, &format!("pattern '{}'", p.id), &p.regex)?;
    }
    for (i, g) in sig.guards.iter().enumerate() {
        check_regex(&path, &format!("guard {}", i + 1), &g.regex)?;
    }
    for name in &sig.context {
        if !contexts.contains_key(name) {
            return Err(invalid(&format!(
                "context '{name}' is not defined in {CONTEXTS_FILE}"
            )));
        }
    }
    Ok(())
}

/// A regex must compile and stay inside the subset shared with POSIX ERE.
fn check_regex(path: &str, what: &str, re: &str) -> Result<(), CatalogError> {
    let err = |message: String| CatalogError::Regex {
        path: path.to_string(),
        what: what.to_string(),
        message,
    };
    if let Some(bad) = non_portable(re) {
        return Err(err(format!(
            "'{bad}' is not portable to POSIX ERE (write it without; see README 'Adding a signature')"
        )));
    }
    regex::Regex::new(re)
        .map(|_| ())
        .map_err(|e| err(e.to_string()))
}

/// The first construct in `re` that GNU `grep -E` would not read the same way: `(?…)` groups and
/// flags, `\d`/`\D`, lazy quantifiers, Unicode classes. Escaped characters are skipped.
#[must_use]
pub fn non_portable(re: &str) -> Option<&'static str> {
    let b = re.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'd')) => return Some("\\d"),
            (b'\\', Some(b'D')) => return Some("\\D"),
            (b'\\', Some(b'p' | b'P')) => return Some("\\p"),
            (b'\\', Some(_)) => i += 1,
            (b'(', Some(b'?')) => return Some("(?"),
            (b'*' | b'+' | b'?' | b'}', Some(b'?')) => return Some("lazy quantifier"),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Run every example and counterexample through the classifier; the failures, described.
#[must_use]
pub fn run_examples(classifier: &super::classify::Classifier) -> Vec<String> {
    let mut failures = Vec::new();
    for sig in classifier.catalog().signatures() {
        for ex in &sig.examples {
            let got = classifier.classify_text(&ex.text);
            if got != sig.class {
                failures.push(format!(
                    "{}: example classified as {got}, expected {}: {}",
                    sig.class,
                    sig.class,
                    ex.text.trim()
                ));
            }
        }
        for ex in &sig.counterexamples {
            let got = classifier.classify_text(&ex.text);
            let wrong = got == sig.class || ex.class.is_some_and(|c| c != got);
            if wrong {
                let want = ex
                    .class
                    .map_or_else(|| format!("anything but {}", sig.class), |c| c.to_string());
                failures.push(format!(
                    "{}: counterexample classified as {got}, expected {want}: {}",
                    sig.class,
                    ex.text.trim()
                ));
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded catalog loads and has a signature for every failure class.
    #[test]
    fn embedded_catalog_covers_the_taxonomy() {
        let cat = Catalog::embedded().unwrap();
        for class in Class::ALL {
            assert!(cat.get(class).is_some(), "no signature file for {class}");
        }
    }

    /// Errors name the file and give line and column.
    #[test]
    fn parse_errors_have_line_and_column() {
        let mut map = BTreeMap::new();
        let err = merge(
            &mut map,
            "x.toml",
            "class = \"dns\"\ntitle = \"t\"\npriority = \"high\"\n",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("x.toml") && msg.contains("line 3, column 12"),
            "{msg}"
        );
        let err = merge(&mut map, "y.toml", "class = \"dnss\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("dnss"), "{err}");
    }

    /// Non-portable regex constructs are refused with the construct named.
    #[test]
    fn non_portable_regexes_are_refused() {
        assert_eq!(non_portable(r"(?i)x"), Some("(?"));
        assert_eq!(non_portable(r"[0-9]+ x"), None);
        assert_eq!(non_portable(r"429 \(?Too"), None);
        assert_eq!(non_portable(r"a.*?b"), Some("lazy quantifier"));
        let err = check_regex("f", "pattern 'p'", r"a\d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pattern 'p'") && err.contains("\\d"), "{err}");
    }
}
