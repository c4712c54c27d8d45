//! The classifier compiled from the catalog: which failure class (if any) one record shows.
//!
//! Two passes keep the cost flat as signatures are added:
//! 1. [`Classifier::next_candidate`]: one regex (the alternation of every pattern, run over whole
//!    blocks of input, not line by line) finds the few lines worth a closer look.
//! 2. [`Classifier::classify`]: a `RegexSet` over one record says which patterns match; guards
//!    and the class's required context veto; the `none` class vetoes the whole record (known
//!    benign look-alikes); the highest priority wins.

use super::catalog::{Catalog, CatalogError, Signature};
use crate::model::{Class, Severity};
use regex::{Regex, RegexSet};

/// Lines that look like a failure even when no signature explains them: reported as
/// "unclassified" so nothing that failed is silently dropped.
const FAILURE_LIKE: &str = r"level=(error|fatal)|Failed to pull image|Error response from daemon|^E[0-9]{4} |^(ERRO|FATA)\[|^[Ee]rror: ";

/// Lines that say a pull or job failed without saying why (the cause is elsewhere): reported only
/// when nothing in the input explains the failure.
const SYMPTOM: &str = r"ErrImagePull|ImagePullBackOff|Back-off pulling image|ERROR: Job failed";

/// Lines that carry context for later lines (`kubectl describe` headers).
const HEADERS: &str = r"^(Node|Name):[ \t]";

/// One compiled pattern.
#[derive(Debug)]
struct Compiled {
    sig: usize,
    id: String,
    regex: Regex,
    severity: Severity,
    standalone: bool,
}

/// Why a record got its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The class.
    pub class: Class,
    /// Index of the signature in the catalog.
    pub signature: usize,
    /// The pattern id that decided it.
    pub pattern: String,
    /// Severity of the finding.
    pub severity: Severity,
    /// Byte range of the deciding match in the record text.
    pub span: [usize; 2],
}

/// The outcome of classifying one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A failure of this class.
    Failure(Verdict),
    /// Says a pull or job failed, not why.
    Symptom,
    /// Looks like a failure, but no signature explains it.
    Unclassified,
    /// Nothing wrong here (or a known benign look-alike).
    Benign,
}

/// The catalog, compiled.
#[derive(Debug)]
pub struct Classifier {
    catalog: Catalog,
    prefilter: regex::bytes::Regex,
    set: RegexSet,
    /// The `none` patterns alone, for whole lines (see [`Classifier::is_benign_line`]).
    benign: RegexSet,
    patterns: Vec<Compiled>,
    guards: Vec<Vec<Regex>>,
    contexts: Vec<Option<Regex>>,
    failure_like: Regex,
    symptom: Regex,
}

impl Classifier {
    /// Compile a catalog.
    ///
    /// # Errors
    /// A regex the catalog validation let through but the combined prefilter cannot hold
    /// (for example a size limit), named.
    pub fn new(catalog: Catalog) -> Result<Self, CatalogError> {
        let compile_err = |what: &str, e: &dyn std::fmt::Display| CatalogError::Regex {
            path: "checks/".to_string(),
            what: what.to_string(),
            message: e.to_string(),
        };
        let mut patterns = Vec::new();
        let mut guards = Vec::new();
        let mut contexts = Vec::new();
        for (i, sig) in catalog.signatures().iter().enumerate() {
            for p in &sig.patterns {
                let regex = Regex::new(&p.regex)
                    .map_err(|e| compile_err(&format!("pattern '{}'", p.id), &e))?;
                patterns.push(Compiled {
                    sig: i,
                    id: p.id.clone(),
                    regex,
                    severity: p.severity.unwrap_or(sig.severity),
                    standalone: p.standalone,
                });
            }
            let g: Result<Vec<Regex>, _> =
                sig.guards.iter().map(|g| Regex::new(&g.regex)).collect();
            guards.push(g.map_err(|e| compile_err("guard", &e))?);
            contexts.push(compile_context(&catalog, sig).map_err(|e| compile_err("context", &e))?);
        }
        let set = RegexSet::new(patterns.iter().map(|p| p.regex.as_str()))
            .map_err(|e| compile_err("pattern set", &e))?;
        // The prefilter: every pattern that can raise a failure, plus the unclassified and header
        // lines, as one alternation run over whole blocks; `^` and `$` are line anchors there, as
        // they are in a record (a pattern anchored at the line's end matched only a block's end).
        let mut alternatives: Vec<String> = patterns
            .iter()
            .filter(|p| catalog.signatures()[p.sig].class != Class::None)
            .map(|p| p.regex.as_str().to_string())
            .collect();
        alternatives.push(FAILURE_LIKE.to_string());
        alternatives.push(SYMPTOM.to_string());
        alternatives.push(HEADERS.to_string());
        let alt = alternatives
            .iter()
            .map(|a| format!("(?:{a})"))
            .collect::<Vec<_>>()
            .join("|");
        let prefilter = regex::bytes::RegexBuilder::new(&alt)
            .multi_line(true)
            .crlf(true)
            .unicode(false)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| compile_err("prefilter", &e))?;
        let failure_like = Regex::new(FAILURE_LIKE).map_err(|e| compile_err("failure-like", &e))?;
        let symptom = Regex::new(SYMPTOM).map_err(|e| compile_err("symptom", &e))?;
        let benign = RegexSet::new(
            patterns
                .iter()
                .filter(|p| catalog.signatures()[p.sig].class == Class::None)
                .map(|p| p.regex.as_str()),
        )
        .map_err(|e| compile_err("benign set", &e))?;
        Ok(Classifier {
            catalog,
            prefilter,
            set,
            benign,
            patterns,
            guards,
            contexts,
            failure_like,
            symptom,
        })
    }

    /// The catalog it was built from.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The signature a verdict points at.
    #[must_use]
    pub fn signature(&self, verdict: &Verdict) -> &Signature {
        &self.catalog.signatures()[verdict.signature]
    }

    /// The first offset at or after `from` in `block` where a line may be worth classifying.
    #[must_use]
    pub fn next_candidate(&self, block: &[u8], from: usize) -> Option<usize> {
        if from >= block.len() {
            return None;
        }
        self.prefilter.find_at(block, from).map(|m| m.start())
    }

    /// Does a `none` pattern match the line as written? A journal or klog record's text drops
    /// its header, and the header can be what says the line is benign (kubelet's source file).
    #[must_use]
    pub fn is_benign_line(&self, line: &str) -> bool {
        self.benign.is_match(line)
    }

    /// Classify one record's text.
    #[must_use]
    pub fn classify(&self, text: &str) -> Outcome {
        self.classify_near(text, "")
    }

    /// Classify one record whose context may also come from the lines just before it: a
    /// command's output line (`HTTP code 502 while uploading`) often says what it is about only in
    /// the command or progress lines above it. Only the context rule looks at `nearby`.
    #[must_use]
    pub fn classify_near(&self, text: &str, nearby: &str) -> Outcome {
        let hits = self.set.matches(text);
        let mut best: Option<(u32, usize, Verdict)> = None;
        for idx in hits.iter() {
            let p = &self.patterns[idx];
            let sig = &self.catalog.signatures()[p.sig];
            if sig.class == Class::None {
                return Outcome::Benign;
            }
            if self.guards[p.sig].iter().any(|g| g.is_match(text)) {
                continue;
            }
            if !p.standalone
                && let Some(ctx) = &self.contexts[p.sig]
                && !ctx.is_match(text)
                && !self.gives_context(ctx, nearby)
            {
                continue;
            }
            let Some(m) = p.regex.find(text) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((prio, start, _)) => {
                    sig.priority > *prio || (sig.priority == *prio && m.start() < *start)
                }
            };
            if better {
                best = Some((
                    sig.priority,
                    m.start(),
                    Verdict {
                        class: sig.class,
                        signature: p.sig,
                        pattern: p.id.clone(),
                        severity: p.severity,
                        span: [m.start(), m.end()],
                    },
                ));
            }
        }
        match best {
            Some((_, _, v)) => Outcome::Failure(v),
            None if self.symptom.is_match(text) => Outcome::Symptom,
            None if self.failure_like.is_match(text) => Outcome::Unclassified,
            None => Outcome::Benign,
        }
    }

    /// Does a line above give this record its context? Not one a `none` pattern claims: a line
    /// about a Terraform registry or a package index does not make the next line a registry's.
    fn gives_context(&self, ctx: &Regex, nearby: &str) -> bool {
        nearby
            .lines()
            .any(|line| ctx.is_match(line) && !self.benign.is_match(line))
    }

    /// The class of a whole text (a paste): the most important failure in it, or `none`.
    /// Convenience for tests and the catalog's examples; `explain` reports every failure.
    #[must_use]
    pub fn classify_text(&self, text: &str) -> Class {
        let outcome = super::logs::scan_bytes(self, text.as_bytes(), "-");
        outcome.primary_class(self)
    }

    /// The regex source of every pattern that can raise a failure, one per line (for the
    /// benchmark's `grep -E -f` baseline).
    #[must_use]
    pub fn failure_patterns(&self) -> Vec<&str> {
        self.patterns
            .iter()
            .filter(|p| self.catalog.signatures()[p.sig].class != Class::None)
            .map(|p| p.regex.as_str())
            .collect()
    }
}

fn compile_context(catalog: &Catalog, sig: &Signature) -> Result<Option<Regex>, regex::Error> {
    let mut alts = Vec::new();
    for name in &sig.context {
        for re in catalog.context(name).unwrap_or(&[]) {
            alts.push(format!("(?:{re})"));
        }
    }
    if alts.is_empty() {
        return Ok(None);
    }
    Regex::new(&alts.join("|")).map(Some)
}
