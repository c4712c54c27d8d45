//! The `logs.classify` check: scan text (a containerd/kubelet journal, `kubectl` events, a GitLab
//! job log, docker output), classify every failure in it, and group repeats (same class, image
//! and endpoint) into findings with counts and first/last times.
//!
//! Scanning is block-wise: the classifier's prefilter runs over whole blocks and only the lines it
//! points at are parsed and classified, so benign lines cost one regex scan and nothing else.
//! Large inputs are read in blocks by one thread and classified by several.

use super::advice;
use super::classify::{Classifier, Outcome, Verdict};
use crate::model::{
    Class, Confidence, Evidence, EvidenceSource, Finding, FindingId, Subject, Target,
};
use crate::parse::{self, InputContext, banner, extract};
use crate::redact::Redactor;
use memchr::{memchr, memchr_iter, memrchr};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Lines longer than this are skipped (and counted): no real log line is this long, and a
/// pasted binary or minified blob must not stall the scan.
pub const MAX_LINE: usize = 64 * 1024;
/// How many lines a wrapped record may span (pastes wrap long error chains).
const MAX_RECORD_LINES: usize = 4;
/// Evidence kept per group: the first few occurrences, plus the last one.
const FIRST_KEPT: usize = 3;
/// Unclassified failure lines kept for the report.
const UNCLASSIFIED_KEPT: usize = 20;
/// Lines above a free-text record that may give it its context.
const NEARBY_LINES: usize = 3;
/// Distinct failure texts remembered per block (a journal repeats the same few).
const MEMO_ENTRIES: usize = 1024;
/// Block size for large inputs.
const BLOCK: usize = 8 << 20;

/// What a scan counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    /// Bytes read.
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Failure records classified.
    pub failures: u64,
    /// Records that looked like failures but matched no signature.
    pub unclassified: u64,
    /// Records that say a pull or job failed without saying why.
    pub symptoms: u64,
    /// Lines longer than the limit, skipped.
    pub skipped_long_lines: u64,
    /// Lines that were binary (NUL or control bytes), skipped.
    pub skipped_binary_lines: u64,
}

impl ScanStats {
    fn add(&mut self, o: &ScanStats) {
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.failures += o.failures;
        self.unclassified += o.unclassified;
        self.symptoms += o.symptoms;
        self.skipped_long_lines += o.skipped_long_lines;
        self.skipped_binary_lines += o.skipped_binary_lines;
    }
}

/// One occurrence of a failure (or unclassified line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// 1-based line.
    pub line: u64,
    /// Shown text (not yet redacted).
    pub display: String,
    /// Time, as written.
    pub time: Option<String>,
    /// Host or node.
    pub host: Option<String>,
    /// Highlight range in `display`.
    pub matched: Option<[usize; 2]>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    class: Class,
    image: Option<String>,
    endpoint: Option<String>,
}

#[derive(Debug, Clone)]
struct Group {
    verdict: Verdict,
    count: u64,
    first: Vec<Occurrence>,
    last: Option<Occurrence>,
    nodes: BTreeSet<String>,
    tags: Vec<String>,
    extracted: extract::Extracted,
    record_text: String,
}

impl Group {
    /// Count occurrences (a record may stand for several) and keep it if it is among the first
    /// or the last.
    fn add(&mut self, occ: Occurrence, repeat: u64) {
        self.count += repeat;
        self.keep(occ);
    }

    /// Keep an occurrence as evidence if it is among the first few or the last (no counting).
    fn keep(&mut self, occ: Occurrence) {
        if let Some(h) = &occ.host
            && !self.nodes.contains(h)
        {
            self.nodes.insert(h.clone());
        }
        let pos = self.first.partition_point(|o| o.line < occ.line);
        if pos < FIRST_KEPT && self.first.get(pos).is_none_or(|o| o.line != occ.line) {
            self.first.insert(pos, occ.clone());
            self.first.truncate(FIRST_KEPT);
        }
        if self.last.as_ref().is_none_or(|l| occ.line > l.line) {
            self.last = Some(occ);
        }
    }

    /// Fold in the same group from another block.
    fn merge(&mut self, other: Group) {
        if other.first.first().map(|o| o.line) < self.first.first().map(|o| o.line) {
            self.verdict = other.verdict.clone();
            self.extracted = other.extracted.clone();
            self.record_text = other.record_text.clone();
        }
        self.count += other.count;
        for t in other.tags {
            if !self.tags.contains(&t) {
                self.tags.push(t);
            }
        }
        self.nodes.extend(other.nodes);
        for occ in other.first.into_iter().chain(other.last) {
            self.keep(occ);
        }
    }
}

/// The result of scanning one input.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// The input's name (a path, or `-`).
    pub input: String,
    /// Counts.
    pub stats: ScanStats,
    groups: BTreeMap<GroupKey, Group>,
    unclassified: Vec<Occurrence>,
    symptoms: Vec<Occurrence>,
    remote: Option<RemoteOrigin>,
}

/// Where a scanned text came from when it is a command's output on a host (a node's journal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOrigin {
    /// The check that read it.
    pub check: crate::model::CheckId,
    /// The inventory host.
    pub host: String,
    /// The command that printed it.
    pub command: String,
}

impl ScanOutcome {
    fn new(input: &str) -> Self {
        ScanOutcome {
            input: input.to_string(),
            ..Default::default()
        }
    }

    fn add_failure(
        &mut self,
        verdict: Verdict,
        rec: parse::Record,
        ex: extract::Extracted,
        tags: Vec<String>,
    ) {
        self.stats.failures += 1;
        let key = GroupKey {
            class: verdict.class,
            image: ex.image.clone(),
            endpoint: ex.dialled.clone().or_else(|| ex.url.clone()),
        };
        let matched_text = rec.text.get(verdict.span[0]..verdict.span[1]).unwrap_or("");
        let matched = (!matched_text.is_empty())
            .then(|| {
                rec.display
                    .find(matched_text)
                    .map(|s| [s, s + matched_text.len()])
            })
            .flatten();
        let repeat = rec.repeat;
        let record_text = rec.text;
        let occ = Occurrence {
            line: rec.line,
            display: rec.display,
            time: rec.time,
            host: rec.host,
            matched,
        };
        let group = self.groups.entry(key).or_insert_with(|| Group {
            verdict,
            count: 0,
            first: Vec::new(),
            last: None,
            nodes: BTreeSet::new(),
            tags: Vec::new(),
            extracted: ex,
            record_text,
        });
        for t in tags {
            if !group.tags.contains(&t) {
                group.tags.push(t);
            }
        }
        group.add(occ, repeat);
    }

    /// Mark the outcome as a command's output on a host: findings then belong to `check` on that
    /// node, and evidence names the host and command instead of a file.
    #[must_use]
    pub fn from_remote(mut self, origin: RemoteOrigin) -> Self {
        self.remote = Some(origin);
        self
    }

    /// Add `n` to every line number (a region scanned on its own, placed after earlier ones).
    fn shift_lines(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        let groups = self
            .groups
            .values_mut()
            .flat_map(|g| g.first.iter_mut().chain(g.last.iter_mut()));
        for occ in groups
            .chain(self.unclassified.iter_mut())
            .chain(self.symptoms.iter_mut())
        {
            occ.line += n;
        }
    }

    /// Fold in the outcome of a later block (line numbers already absolute).
    fn merge(&mut self, other: ScanOutcome) {
        self.stats.add(&other.stats);
        for (key, group) in other.groups {
            match self.groups.get_mut(&key) {
                Some(g) => g.merge(group),
                None => {
                    self.groups.insert(key, group);
                }
            }
        }
        for (mine, theirs) in [
            (&mut self.unclassified, other.unclassified),
            (&mut self.symptoms, other.symptoms),
        ] {
            mine.extend(theirs);
            mine.sort_by_key(|o| o.line);
            mine.truncate(UNCLASSIFIED_KEPT);
        }
    }

    /// The most important failure class in the input (by severity, then signature priority, then
    /// how often it was seen), or `none`.
    #[must_use]
    pub fn primary_class(&self, classifier: &Classifier) -> Class {
        self.groups
            .values()
            .max_by_key(|g| {
                (
                    g.verdict.severity,
                    classifier.signature(&g.verdict).priority,
                    g.count,
                    std::cmp::Reverse(g.first.first().map(|o| o.line)),
                )
            })
            .map_or(Class::None, |g| g.verdict.class)
    }

    /// Failure-looking lines nothing explained (the first few), redacted; and, when no failure
    /// was classified at all, the lines that only say a pull or job failed.
    #[must_use]
    pub fn unclassified(&self, redactor: &Redactor) -> Vec<Evidence> {
        let symptoms = if self.groups.is_empty() {
            self.symptoms.as_slice()
        } else {
            &[]
        };
        let mut all: Vec<&Occurrence> = self.unclassified.iter().chain(symptoms).collect();
        all.sort_by_key(|o| o.line);
        all.into_iter()
            .take(UNCLASSIFIED_KEPT)
            .map(|o| self.evidence(o, redactor))
            .collect()
    }

    fn evidence(&self, o: &Occurrence, redactor: &Redactor) -> Evidence {
        let text = redactor.redact(&o.display);
        // Redaction can move the highlighted part; keep the range only where it still holds.
        let matched = o.matched.filter(|_| text.len() == o.display.len());
        let (source, host) = match &self.remote {
            Some(r) => (
                EvidenceSource::Command {
                    host: r.host.clone(),
                    command: r.command.clone(),
                },
                o.host.clone().or_else(|| Some(r.host.clone())),
            ),
            None => (
                EvidenceSource::File {
                    path: self.input.clone(),
                    line: o.line,
                },
                o.host.clone(),
            ),
        };
        Evidence {
            source,
            time: o.time.clone(),
            host,
            text: text.into_owned(),
            matched,
        }
    }

    /// How many failure-looking lines nothing explained (symptoms count when nothing else did).
    #[must_use]
    pub fn unexplained_count(&self) -> u64 {
        self.stats.unclassified
            + if self.groups.is_empty() {
                self.stats.symptoms
            } else {
                0
            }
    }

    /// One finding per group, redacted, in input order.
    #[must_use]
    pub fn findings(&self, classifier: &Classifier, redactor: &Redactor) -> Vec<Finding> {
        let check = self
            .remote
            .as_ref()
            .map_or_else(super::logs_check_id, |r| r.check.clone());
        let target = self.remote.as_ref().map_or_else(
            || Target::input(&self.input),
            |r| Target {
                kind: crate::model::TargetKind::Node,
                name: r.host.clone(),
            },
        );
        let mut out: Vec<(u64, Finding)> = self
            .groups
            .iter()
            .map(|(key, g)| {
                let sig = classifier.signature(&g.verdict);
                let endpoint = key
                    .endpoint
                    .as_deref()
                    .map(|e| redactor.redact(e).into_owned());
                let subject = Subject {
                    image: key
                        .image
                        .as_deref()
                        .map(|i| redactor.redact(i).into_owned()),
                    registry: g.extracted.registry.clone(),
                    endpoint,
                    nodes: match (&self.remote, g.nodes.is_empty()) {
                        (Some(r), true) => vec![r.host.clone()],
                        _ => g.nodes.iter().cloned().collect(),
                    },
                    job: None,
                    tags: g.tags.clone(),
                };
                let extra =
                    advice::explain(g.verdict.class, &g.record_text, &g.extracted, &subject);
                let mut explanation = parse::text::collapse_whitespace(&sig.explanation);
                if !extra.is_empty() {
                    explanation = format!("{} {explanation}", extra.join(" "));
                }
                let mut evidence: Vec<Evidence> =
                    g.first.iter().map(|o| self.evidence(o, redactor)).collect();
                if let Some(last) = &g.last
                    && !g.first.iter().any(|o| o.line == last.line)
                {
                    evidence.push(self.evidence(last, redactor));
                }
                let id = FindingId::derive(&[
                    &check.0,
                    g.verdict.class.id(),
                    &self.input,
                    subject.image.as_deref().unwrap_or(""),
                    subject.endpoint.as_deref().unwrap_or(""),
                ]);
                let first_line = g.first.first().map_or(0, |o| o.line);
                let title = advice::title(&sig.title, &subject);
                let finding = Finding {
                    explanation,
                    next_steps: sig.next.clone(),
                    error_chain: g
                        .extracted
                        .chain
                        .iter()
                        .map(|c| redactor.redact(c).into_owned())
                        .collect(),
                    evidence,
                    count: g.count,
                    first_seen: g.first.first().and_then(|o| o.time.clone()),
                    last_seen: g.last.as_ref().and_then(|o| o.time.clone()),
                    confidence: Confidence::Inferred,
                    fixes: sig.fix_refs(),
                    subject,
                    ..Finding::with_id(
                        id,
                        &check.0,
                        g.verdict.class,
                        g.verdict.severity,
                        target.clone(),
                        title,
                    )
                };
                (first_line, finding)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        out.into_iter().map(|(_, f)| f).collect()
    }
}

/// Scan an in-memory input on this thread.
#[must_use]
pub fn scan_bytes(classifier: &Classifier, data: &[u8], input: &str) -> ScanOutcome {
    let mut out = ScanOutcome::new(input);
    let mut ctx = InputContext::default();
    scan_block(classifier, data, 0, &mut ctx, &mut out);
    out.stats.bytes = data.len() as u64;
    out
}

/// Scan a stream: one reader thread cuts it into blocks at line ends, `workers` threads classify
/// them, and the results are merged in input order (the outcome does not depend on `workers`).
///
/// # Errors
/// A read error, with what was read before it discarded.
pub fn scan_reader<R: Read + Send>(
    classifier: &Classifier,
    mut reader: R,
    input: &str,
    workers: usize,
) -> std::io::Result<ScanOutcome> {
    let workers = workers.max(1);
    let (block_tx, block_rx) = std::sync::mpsc::sync_channel::<(usize, u64, Vec<u8>)>(workers * 2);
    let block_rx = std::sync::Mutex::new(block_rx);
    let (result_tx, result_rx) = std::sync::mpsc::channel::<(usize, ScanOutcome)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let result_tx = result_tx.clone();
            let block_rx = &block_rx;
            scope.spawn(move || {
                loop {
                    let next = match block_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((index, first_line, block)) = next else {
                        return;
                    };
                    let mut out = ScanOutcome::new(input);
                    // Context (describe headers) does not cross blocks: it only matters for pastes.
                    let mut ctx = InputContext::default();
                    scan_block(classifier, &block, first_line, &mut ctx, &mut out);
                    out.stats.bytes = block.len() as u64;
                    if result_tx.send((index, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        let read_result = read_blocks(&mut reader, |index, first_line, block| {
            block_tx.send((index, first_line, block)).is_ok()
        });
        drop(block_tx);
        let mut parts: Vec<(usize, ScanOutcome)> = result_rx.iter().collect();
        parts.sort_by_key(|(i, _)| *i);
        let mut total = ScanOutcome::new(input);
        for (_, part) in parts {
            total.merge(part);
        }
        read_result.map(|(giant_lines, bytes)| {
            total.stats.skipped_long_lines += giant_lines;
            total.stats.lines += giant_lines;
            total.stats.bytes = bytes;
            total
        })
    })
}

/// Read the stream in blocks that end at a line end, handing each to `emit` with its index and
/// the number of lines before it. A line longer than a whole block is dropped as it streams by;
/// returns how many such lines there were, and the bytes read.
fn read_blocks<R: Read>(
    reader: &mut R,
    mut emit: impl FnMut(usize, u64, Vec<u8>) -> bool,
) -> std::io::Result<(u64, u64)> {
    let mut bytes = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    let mut index = 0;
    let mut lines_before = 0u64;
    let mut giant_lines = 0u64;
    let mut in_giant_line = false;
    loop {
        let mut block = std::mem::take(&mut carry);
        let start = block.len();
        block.resize(start + BLOCK, 0);
        let mut filled = start;
        while filled < block.len() {
            match reader.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    bytes += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        block.truncate(filled);
        let eof = filled < start + BLOCK;
        if in_giant_line {
            // drop the rest of a line that did not fit in a block
            match memchr(b'\n', &block) {
                Some(nl) => {
                    block.drain(..=nl);
                    in_giant_line = false;
                    giant_lines += 1;
                    lines_before += 1;
                }
                None if eof => return Ok((giant_lines + 1, bytes)),
                None => continue,
            }
        }
        if block.is_empty() {
            return Ok((giant_lines, bytes));
        }
        if !eof {
            match memrchr(b'\n', &block) {
                // keep the partial last line for the next block
                Some(nl) => {
                    carry = block[nl + 1..].to_vec();
                    block.truncate(nl + 1);
                }
                // one line fills the whole block: too long to classify
                None => {
                    in_giant_line = true;
                    continue;
                }
            }
        }
        let lines = memchr_iter(b'\n', &block).count() as u64;
        if !emit(index, lines_before, block) {
            return Ok((giant_lines, bytes));
        }
        index += 1;
        lines_before += lines;
        if eof {
            return Ok((giant_lines, bytes));
        }
    }
}

/// Scan an opened input: files and in-memory text in `workers` regions at once (each worker
/// reads its own region, so no thread copies for another), pipes through [`scan_reader`].
///
/// # Errors
/// A read error, with what was read before it discarded.
pub fn scan_input(
    classifier: &Classifier,
    input: crate::probe::Input,
    name: &str,
    workers: usize,
) -> std::io::Result<ScanOutcome> {
    match input {
        crate::probe::Input::File(file) => {
            let len = file.metadata()?.len();
            scan_positional(classifier, &FileAt(file), len, name, workers)
        }
        crate::probe::Input::Bytes(bytes) => {
            let len = bytes.len() as u64;
            scan_positional(classifier, bytes.as_slice(), len, name, workers)
        }
        crate::probe::Input::Stream(reader) => scan_reader(classifier, reader, name, workers),
    }
}

/// Something that can be read at any offset from several threads.
trait ReadAt: Sync {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}

struct FileAt(std::fs::File);

impl ReadAt for FileAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Inputs smaller than this are scanned by one thread.
const PARALLEL_MIN: u64 = 4 << 20;

fn scan_positional<S: ReadAt + ?Sized>(
    classifier: &Classifier,
    src: &S,
    len: u64,
    name: &str,
    workers: usize,
) -> std::io::Result<ScanOutcome> {
    let workers = if len < PARALLEL_MIN {
        1
    } else {
        workers.max(1) as u64
    };
    // Region i covers the lines that start in [start_i, start_{i+1}); a boundary moves forward to
    // the start of the next line, so every worker computes the same boundaries.
    let mut starts = vec![0u64];
    for i in 1..workers {
        starts
            .push(next_line_start(src, len * i / workers, len)?.max(*starts.last().unwrap_or(&0)));
    }
    starts.push(len);
    let parts: Vec<std::io::Result<(ScanOutcome, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = starts
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0], w[1]);
                scope.spawn(move || scan_region(classifier, src, start, end, name))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a scan thread stopped")))
            })
            .collect()
    });
    let mut total = ScanOutcome::new(name);
    let mut lines_before = 0;
    for part in parts {
        let (mut outcome, lines) = part?;
        outcome.shift_lines(lines_before);
        lines_before += lines;
        total.merge(outcome);
    }
    total.stats.bytes = len;
    Ok(total)
}

/// The offset of the first line that starts at or after `at`.
fn next_line_start<S: ReadAt + ?Sized>(src: &S, at: u64, len: u64) -> std::io::Result<u64> {
    if at == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = at - 1;
    while pos < len {
        let n = src.read_at(&mut buf, pos)?;
        if n == 0 {
            break;
        }
        if let Some(i) = memchr(b'\n', &buf[..n]) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
    Ok(len)
}

/// Scan the lines in `[start, end)` (both line starts); returns the outcome with line numbers
/// counted from the region's start, and the number of lines in it.
fn scan_region<S: ReadAt + ?Sized>(
    classifier: &Classifier,
    src: &S,
    start: u64,
    end: u64,
    name: &str,
) -> std::io::Result<(ScanOutcome, u64)> {
    let mut out = ScanOutcome::new(name);
    let mut ctx = InputContext::default();
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
    let mut offset = start;
    let mut lines = 0u64;
    let mut in_giant_line = false;
    while offset < end {
        let keep = buf.len();
        let want = usize::try_from((end - offset).min(BLOCK as u64)).unwrap_or(BLOCK);
        buf.resize(keep + want, 0);
        let n = src.read_at(&mut buf[keep..], offset)?;
        buf.truncate(keep + n);
        if n == 0 {
            break;
        }
        offset += n as u64;
        let at_end = offset >= end;
        if in_giant_line {
            match memchr(b'\n', &buf) {
                Some(nl) => {
                    buf.drain(..=nl);
                    in_giant_line = false;
                    out.stats.skipped_long_lines += 1;
                    lines += 1;
                }
                None => {
                    buf.clear();
                    if at_end {
                        out.stats.skipped_long_lines += 1;
                        lines += 1;
                    }
                    continue;
                }
            }
        }
        let cut = if at_end {
            buf.len()
        } else {
            match memrchr(b'\n', &buf) {
                Some(nl) => nl + 1,
                None if buf.len() >= BLOCK => {
                    // one line fills a whole block: too long to classify; drop it as it streams by
                    in_giant_line = true;
                    buf.clear();
                    continue;
                }
                None => continue,
            }
        };
        let block = &buf[..cut];
        scan_block(classifier, block, lines, &mut ctx, &mut out);
        lines += memchr_iter(b'\n', block).count() as u64
            + u64::from(at_end && !block.is_empty() && block.last() != Some(&b'\n'));
        buf.drain(..cut);
    }
    Ok((out, lines))
}

/// Classify the candidate lines of one block (complete lines). `first_line` = lines before it.
fn scan_block(
    classifier: &Classifier,
    block: &[u8],
    first_line: u64,
    ctx: &mut InputContext,
    out: &mut ScanOutcome,
) {
    out.stats.lines += memchr_iter(b'\n', block).count() as u64
        + u64::from(!block.is_empty() && block.last() != Some(&b'\n'));
    // cursor for line numbers: (byte offset, 1-based line number of the line starting there)
    let mut cursor = (0usize, first_line + 1);
    let mut next_free = 0usize;
    // Records already classified in this block, by text: journals repeat the same failure with
    // only the time changing, and the time is not part of a record's text.
    let mut seen: std::collections::HashMap<String, (Outcome, Option<extract::Extracted>)> =
        std::collections::HashMap::new();
    while let Some(cand) = classifier.next_candidate(block, next_free) {
        let line_start = memrchr(b'\n', &block[..cand]).map_or(0, |i| i + 1);
        let line_end = memchr(b'\n', &block[cand..]).map_or(block.len(), |i| cand + i);
        if line_start >= cursor.0 {
            cursor.1 += memchr_iter(b'\n', &block[cursor.0..line_start]).count() as u64;
            cursor.0 = line_start;
        }
        let line = &block[line_start..line_end];
        if line.len() > MAX_LINE {
            out.stats.skipped_long_lines += 1;
            next_free = line_end + 1;
            continue;
        }
        if is_binary(line) {
            out.stats.skipped_binary_lines += 1;
            next_free = line_end + 1;
            continue;
        }
        let (rec_start, rec_end) = record_bounds(block, line_start, line_end, next_free);
        let line_no = cursor.1 - memchr_iter(b'\n', &block[rec_start..line_start]).count() as u64;
        next_free = rec_end + 1;
        let raw = join_lines(&block[rec_start..rec_end]);
        if ctx.observe_header(&raw) {
            continue;
        }
        let rec = parse::record(&raw, line_no, ctx);
        let (outcome, extracted) = if let Some(known) = seen.get(&rec.text) {
            known.clone()
        } else if rec.format == parse::RecordFormat::Plain {
            // free text (command output) may take its context from the lines above it; journal
            // lines carry their own, and are memoised
            let nearby = String::from_utf8_lossy(preceding_lines(block, rec_start, NEARBY_LINES));
            let outcome = classifier.classify_near(&rec.text, &nearby);
            let ex = matches!(outcome, Outcome::Failure(_)).then(|| extract::extract(&rec.text));
            (outcome, ex)
        } else {
            // memoised by text: records that differ only in their header (time, pid) share one
            // outcome; the header's benign marks are rare enough to ride along
            let outcome = if classifier.is_benign_line(&raw) {
                Outcome::Benign
            } else {
                classifier.classify(&rec.text)
            };
            let ex = matches!(outcome, Outcome::Failure(_)).then(|| extract::extract(&rec.text));
            if seen.len() >= MEMO_ENTRIES {
                seen.clear();
            }
            seen.insert(rec.text.clone(), (outcome.clone(), ex.clone()));
            (outcome, ex)
        };
        match outcome {
            Outcome::Failure(verdict) => {
                let ex = extracted.unwrap_or_else(|| extract::extract(&rec.text));
                let tags = if verdict.class == Class::RunnerTags {
                    // The banner is a paragraph (its tags follow on their own lines): read it
                    // whole, and do not classify its other lines again.
                    let tail = &block[rec_start..block.len().min(rec_start + 4096)];
                    let para_end =
                        memchr::memmem::find(tail, b"\n\n").map_or(tail.len(), |i| i + 1);
                    next_free = next_free.max(rec_start + para_end);
                    let tail = &tail[..para_end];
                    banner::parse_stuck(
                        &parse::text::strip_ansi(&String::from_utf8_lossy(tail)).replace('\r', ""),
                    )
                    .map(|b| b.tags)
                    .unwrap_or_default()
                } else {
                    Vec::new()
                };
                out.add_failure(verdict, rec, ex, tags);
            }
            Outcome::Unclassified | Outcome::Symptom => {
                let symptom = matches!(outcome, Outcome::Symptom);
                let (count, kept) = if symptom {
                    (&mut out.stats.symptoms, &mut out.symptoms)
                } else {
                    (&mut out.stats.unclassified, &mut out.unclassified)
                };
                *count += 1;
                if kept.len() < UNCLASSIFIED_KEPT {
                    kept.push(Occurrence {
                        line: rec.line,
                        display: rec.display,
                        time: rec.time,
                        host: rec.host,
                        matched: None,
                    });
                }
            }
            Outcome::Benign => {}
        }
    }
}

/// Up to `n` lines before `start` in `block`.
fn preceding_lines(block: &[u8], start: usize, n: usize) -> &[u8] {
    let mut from = start;
    for _ in 0..n {
        if from == 0 {
            break;
        }
        from = memrchr(b'\n', &block[..from - 1]).map_or(0, |i| i + 1);
    }
    &block[from..start.min(block.len())]
}

/// NUL bytes or many control bytes: not text.
fn is_binary(line: &[u8]) -> bool {
    if memchr(0, line).is_some() {
        return true;
    }
    let control = line
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\r' | 0x1b))
        .count();
    control * 10 > line.len().max(1)
}

/// Does this line go on in the next one? Pastes wrap long error chains: a line ending in `:`
/// (more of the chain follows), in `?`/`&`/`=`/`,` (a URL or list cut short), or inside an open
/// quote.
fn continues(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii_end();
    if trimmed.is_empty() {
        return false;
    }
    matches!(trimmed.last(), Some(b':' | b'?' | b'&' | b'=' | b',')) || open_quote(trimmed)
}

fn open_quote(line: &[u8]) -> bool {
    let mut open = false;
    let mut escaped = false;
    for &b in line {
        match b {
            b'\\' if !escaped => escaped = true,
            b'"' if !escaped => open = !open,
            _ => escaped = false,
        }
        if b != b'\\' {
            escaped = false;
        }
    }
    open
}

/// Extend a candidate line to the wrapped record it belongs to: earlier lines that continue into
/// it (not before `floor`), and later lines it continues into.
fn record_bounds(block: &[u8], line_start: usize, line_end: usize, floor: usize) -> (usize, usize) {
    let (mut start, mut end) = (line_start, line_end);
    for _ in 1..MAX_RECORD_LINES {
        if start == 0 || start <= floor {
            break;
        }
        let prev_start = memrchr(b'\n', &block[..start - 1]).map_or(0, |i| i + 1);
        if prev_start < floor || !continues(&block[prev_start..start - 1]) {
            break;
        }
        start = prev_start;
    }
    let mut lines = memchr_iter(b'\n', &block[start..end]).count() + 1;
    while lines < MAX_RECORD_LINES
        && end < block.len()
        && continues(&block[end.saturating_sub(MAX_LINE).max(start)..end])
    {
        let next_end = memchr(b'\n', &block[end + 1..]).map_or(block.len(), |i| end + 1 + i);
        if block[end + 1..next_end].trim_ascii().is_empty() || next_end - start > MAX_LINE {
            break;
        }
        end = next_end;
        lines += 1;
    }
    (start, end)
}

/// Join a wrapped record's lines: with nothing inside an open quote (a URL or word cut by the
/// wrap), with a space otherwise.
fn join_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut in_quote = false;
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_end();
        if i > 0 {
            if !in_quote {
                out.push(' ');
            }
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
        if open_quote(line.as_bytes()) {
            in_quote = !in_quote;
        }
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wrapped records are joined; complete lines are not.
    #[test]
    fn record_bounds_follow_wraps() {
        let text = b"first line\nfailed to fetch anonymous token: \nGet \"https://a/token?x\": \ndial tcp 1.2.3.4:443: connect: network is unreachable\nnext";
        let start = 11;
        let end = start + memchr(b'\n', &text[start..]).unwrap();
        let (s, e) = record_bounds(text, start, end, 0);
        assert_eq!(s, 11);
        assert!(
            std::str::from_utf8(&text[s..e])
                .unwrap()
                .ends_with("unreachable")
        );
        let plain = b"a complete line\nanother";
        assert_eq!(record_bounds(plain, 0, 15, 0), (0, 15));
    }

    /// A URL cut inside its quotes is glued back without a space.
    #[test]
    fn join_inside_quotes() {
        assert_eq!(
            join_lines(b"Get \"https://a/token?scope=x%3A\npull&y=1\": EOF"),
            "Get \"https://a/token?scope=x%3Apull&y=1\": EOF"
        );
        assert_eq!(join_lines(b"token: \ndial tcp"), "token: dial tcp");
    }

    /// A pattern anchored at the end of a line (`: EOF$`) finds its line in the middle of a
    /// paste, not only at the end of the input; CRLF line ends too.
    #[test]
    fn line_end_anchors_hold_inside_a_block() {
        let classifier = crate::check::classify::Classifier::new(
            crate::check::catalog::Catalog::embedded().unwrap(),
        )
        .unwrap();
        for text in [
            "Step 1/19 : FROM calico/bpftool:v5.3\nGet https://registry-1.docker.io/v2/: EOF\nStep 2/19\n",
            "Step 1/19 : FROM calico/bpftool:v5.3\r\nGet https://registry-1.docker.io/v2/: EOF\r\nStep 2/19\r\n",
        ] {
            assert_eq!(
                classifier.classify_text(text),
                Class::OtherNetwork,
                "{text:?}"
            );
        }
    }

    /// Binary detection.
    #[test]
    fn binary_lines() {
        assert!(is_binary(b"ab\0cd"));
        assert!(is_binary(&[1, 2, 3, 4, 5, b'a']));
        assert!(!is_binary(b"time=\"x\" level=error\tmsg=y"));
    }
}

/// The `logs.classify` check bound to one input.
#[derive(Debug, Clone)]
pub struct LogsCheck {
    /// The input's name: a path, or `-` for standard input.
    pub input: String,
}

impl super::Check for LogsCheck {
    fn id(&self) -> crate::model::CheckId {
        super::logs_check_id()
    }

    fn target(&self) -> Target {
        Target::input(&self.input)
    }

    fn run(&self, ctx: super::CheckContext) -> super::CheckFuture {
        let input = self.input.clone();
        Box::pin(async move {
            let work = tokio::task::spawn_blocking(move || {
                let stream = match ctx.probes.open_input(&input) {
                    Ok(s) => s,
                    Err(e) => return super::CheckOutcome::errored(e.to_string()),
                };
                let outcome = match scan_input(&ctx.classifier, stream, &input, ctx.workers) {
                    Ok(o) => o,
                    Err(e) => {
                        return super::CheckOutcome::errored(format!("reading '{input}': {e}"));
                    }
                };
                let findings = outcome.findings(&ctx.classifier, &ctx.redactor);
                let s = &outcome.stats;
                let status = if findings.is_empty() {
                    crate::model::CheckStatus::Passed
                } else {
                    crate::model::CheckStatus::Failed
                };
                super::CheckOutcome {
                    status,
                    unclassified: outcome.unclassified(&ctx.redactor),
                    findings,
                    input: Some(super::InputSummary {
                        name: input.clone(),
                        bytes: s.bytes,
                        lines: s.lines,
                        failures: s.failures,
                        unclassified: outcome.unexplained_count(),
                        skipped_long_lines: s.skipped_long_lines,
                        skipped_binary_lines: s.skipped_binary_lines,
                    }),
                }
            });
            match work.await {
                Ok(outcome) => outcome,
                Err(e) => {
                    super::CheckOutcome::errored(format!("the scan of the input stopped: {e}"))
                }
            }
        })
    }
}
