//! The post-incident runbook: Markdown written from a report (live, replayed, or read back from
//! JSON) that renders on GitLab and GitHub — a summary table, the path with its broken links (a
//! Mermaid flowchart and an ASCII drawing), one section per problem with its verbatim evidence,
//! a timeline, the commands to verify by hand, and what remains open. It passes markdownlint
//! with line length (MD013) off: tables and evidence lines cannot wrap.

use super::Report;
use crate::fix::audit::Record as AuditRecord;
use crate::model::{Class, EvidenceSource, Finding, Severity};
use std::fmt::Write as _;

/// The Markdown runbook for `report`, with no fix applied.
#[must_use]
pub fn render(report: &Report) -> String {
    render_with(report, &[])
}

/// What the audit log says was done about a finding: the entries for its fixes on its hosts.
fn applied_to<'a>(f: &Finding, audit: &'a [AuditRecord]) -> Vec<&'a AuditRecord> {
    audit
        .iter()
        .filter(|r| f.fixes.iter().any(|x| x.id == r.fix))
        .filter(|r| r.host == f.target.name || f.subject.nodes.contains(&r.host))
        // an intent line is followed by the step's outcome; only a killed apply leaves it alone
        .filter(|r| r.outcome != "started")
        .collect()
}

/// A finding's status from the audit log: open, or fixed and verified (per host).
fn status(f: &Finding, audit: &[AuditRecord]) -> String {
    let entries = applied_to(f, audit);
    if entries.is_empty() {
        return "open".to_string();
    }
    let mut hosts: Vec<&str> = entries.iter().map(|r| r.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let per_host: Vec<String> = hosts
        .iter()
        .map(|h| {
            let last = entries
                .iter()
                .rfind(|r| r.host == *h && (r.step == "verify" || r.outcome == "rolled back"));
            match last {
                Some(r) if r.outcome == "verified" => {
                    format!("fixed and verified on {h} ({})", r.time)
                }
                Some(r) if r.outcome == "rolled back" => format!("fix rolled back on {h}"),
                Some(r) => format!("{} on {h}", r.outcome),
                None => format!("fix started on {h}, not verified"),
            }
        })
        .collect();
    let mut text = per_host.join("; ");
    let open: Vec<&String> = f
        .subject
        .nodes
        .iter()
        .filter(|n| !hosts.contains(&n.as_str()))
        .collect();
    if !open.is_empty() {
        let _ = write!(
            text,
            "; open on {}",
            open.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    text
}

/// The Markdown runbook for `report`, with the fixes the audit log records since the run began.
#[must_use]
pub fn render_with(report: &Report, audit: &[AuditRecord]) -> String {
    let problems: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    // One problem per failure class: the journal, the probes and the hop walk often see the same
    // fault from different sides, and a write-up names it once with all its evidence.
    let mut groups: Vec<Vec<&Finding>> = Vec::new();
    for f in &problems {
        match groups.iter_mut().find(|g| g[0].class == f.class) {
            Some(g) => g.push(f),
            None => groups.push(vec![f]),
        }
    }
    let mut out = String::new();
    title(&mut out, report, &groups, problems.len());
    summary_table(&mut out, &groups, audit);
    path(&mut out, report, &problems);
    for (i, g) in groups.iter().enumerate() {
        problem(&mut out, i + 1, g, audit);
    }
    timeline(&mut out, report, &groups, audit);
    verify_by_hand(&mut out, &problems);
    let still_open: Vec<&Vec<&Finding>> = groups
        .iter()
        .filter(|g| {
            let st = group_status(g, audit);
            st == "open" || st.contains("open on") || !st.contains("verified")
        })
        .collect();
    remains_open(&mut out, report, &still_open);
    // one trailing newline, no run of blank lines (MD012, MD047)
    let mut tidy = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.trim_end();
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank <= 1 {
            tidy.push_str(line);
            tidy.push('\n');
        }
    }
    while tidy.ends_with("\n\n") {
        tidy.pop();
    }
    tidy
}

/// The finding that states a problem best: one a probe confirmed, else the first (worst).
fn lead<'a>(group: &[&'a Finding]) -> &'a Finding {
    group
        .iter()
        .find(|f| f.confidence == crate::model::Confidence::Confirmed)
        .unwrap_or(&group[0])
}

/// A problem's status: its findings' statuses, said once each.
fn group_status(group: &[&Finding], audit: &[AuditRecord]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for f in group {
        let st = status(f, audit);
        if !parts.contains(&st) {
            parts.push(st);
        }
    }
    if parts.len() > 1 {
        parts.retain(|p| p != "open");
    }
    parts.join("; ")
}

fn title(out: &mut String, report: &Report, groups: &[Vec<&Finding>], findings: usize) {
    let _ = writeln!(out, "# Image pull incident: runbook\n");
    let source = match &report.run.replayed_from {
        Some(b) => format!("the replayed bundle `{b}`"),
        None => format!("a {} run", report.run.mode),
    };
    let _ = writeln!(
        out,
        "Written by {} {} from {source} ({} to {}). {} problem{} found ({findings} finding{}); {} check{} ran.\n",
        report.tool.name,
        report.tool.version,
        report.run.started_at,
        report.run.finished_at,
        groups.len(),
        if groups.len() == 1 { "" } else { "s" },
        if findings == 1 { "" } else { "s" },
        report.checks.len(),
        if report.checks.len() == 1 { "" } else { "s" },
    );
}

/// Text for a table cell: one line, pipes escaped, URLs in code spans (MD034).
fn cell(text: &str) -> String {
    prose(&text.replace('\n', " ")).replace('|', "\\|")
}

/// Prose with bare URLs put in code spans (MD034) unless they already are, and `<` escaped
/// outside code spans.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for word in text.split_inclusive(' ') {
        let ticks = word.matches('`').count();
        let bare = !in_code && (word.contains("http://") || word.contains("https://"));
        if bare && ticks == 0 {
            let core = word.trim_end();
            let (body, punct) = match core.strip_suffix(['.', ',', ';', ')']) {
                Some(b) => (b, &core[b.len()..]),
                None => (core, ""),
            };
            let _ = write!(out, "`{body}`{punct}{}", &word[core.len()..]);
        } else if !in_code && ticks == 0 {
            // `<host:port>` would be read as an autolink or HTML
            out.push_str(&word.replace('<', "&lt;"));
        } else {
            out.push_str(word);
        }
        if ticks % 2 == 1 {
            in_code = !in_code;
        }
    }
    out
}

fn fix_text(f: &Finding) -> String {
    if !f.fixes.is_empty() {
        f.fixes
            .iter()
            .map(|x| x.title.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        f.next_steps.first().cloned().unwrap_or_default()
    }
}

fn place(f: &Finding) -> String {
    let mut p = f.target.name.clone();
    let others: Vec<&String> = f.subject.nodes.iter().filter(|n| **n != p).collect();
    if !others.is_empty() {
        let _ = write!(
            p,
            " ({})",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    p
}

fn summary_table(out: &mut String, groups: &[Vec<&Finding>], audit: &[AuditRecord]) {
    let _ = writeln!(out, "## Summary\n");
    if groups.is_empty() {
        let _ = writeln!(
            out,
            "Nothing on the path is broken: no finding at warning level or above.\n"
        );
        return;
    }
    let _ = writeln!(out, "| # | Problem | Cause | Where | Fix | Status |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (i, g) in groups.iter().enumerate() {
        let f = lead(g);
        let mut places: Vec<String> = Vec::new();
        let mut fixes: Vec<String> = Vec::new();
        for m in g {
            let p = place(m);
            if !places.contains(&p) {
                places.push(p);
            }
            let x = fix_text(m);
            for part in x.split("; ") {
                if !part.is_empty() && !fixes.iter().any(|f| f == part) {
                    fixes.push(part.to_string());
                }
            }
        }
        let _ = writeln!(
            out,
            "| {} | {} | `{}` ({}) | {} | {} | {} |",
            i + 1,
            cell(&f.title),
            f.class.id(),
            f.severity.id(),
            cell(&places.join("; ")),
            cell(&fixes.join("; ")),
            cell(&group_status(g, audit)),
        );
    }
    out.push('\n');
}

/// The links of the path, in order: (from, to, label). Which problems break which link is
/// decided by [`link_of`].
const LINKS: [(&str, &str, &str); 6] = [
    ("job", "runner", "runs on"),
    ("runner", "registry", "push"),
    ("kubelet", "nodes", "asks to pull"),
    ("nodes", "hops", "pull"),
    ("hops", "registry", "forward"),
    ("nodes", "realm", "token"),
];

/// The link a problem breaks.
fn link_of(f: &Finding) -> usize {
    if f.check.0 == "path.hops" {
        return if f.class == Class::TokenRealmUnreachable {
            5
        } else {
            3
        };
    }
    match f.class {
        Class::RunnerTags | Class::DockerApiSkew => 0,
        Class::TokenRealmUnreachable => 5,
        Class::Dns | Class::OtherNetwork => 3,
        Class::ImageNotFound if f.subject.job.is_some() => 1,
        Class::HttpVsHttps
        | Class::TlsCert
        | Class::AuthDenied
        | Class::ImageNotFound
        | Class::RateLimit => 4,
        Class::None => 2,
    }
}

fn path(out: &mut String, report: &Report, problems: &[&Finding]) {
    let registry = report
        .findings
        .iter()
        .find_map(|f| f.subject.registry.clone())
        .unwrap_or_else(|| "registry".to_string());
    let mut nodes: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.check == "node.journal")
        .map(|c| c.target.clone())
        .chain(
            problems
                .iter()
                .flat_map(|f| f.subject.nodes.iter().cloned()),
        )
        .collect();
    nodes.sort();
    nodes.dedup();
    let hops: Vec<String> = problems
        .iter()
        .filter(|f| f.check.0 == "path.hops")
        .map(|f| f.target.name.clone())
        .collect();
    let realm = problems
        .iter()
        .find(|f| f.class == Class::TokenRealmUnreachable)
        .and_then(|f| f.subject.endpoint.clone())
        .unwrap_or_else(|| "GitLab /jwt/auth".to_string());
    let names = [
        ("job", "CI job".to_string()),
        ("runner", "Runner Docker daemon".to_string()),
        ("registry", format!("Registry {registry}")),
        (
            "nodes",
            if nodes.is_empty() {
                "Node containerd".to_string()
            } else {
                format!("containerd on {}", nodes.join(", "))
            },
        ),
        ("kubelet", "kubelet".to_string()),
        (
            "hops",
            if hops.is_empty() {
                "Network hops".to_string()
            } else {
                format!("Network hops (broken at {})", hops.join(", "))
            },
        ),
        ("realm", format!("Token realm {realm}")),
    ];
    let name = |id: &str| {
        names
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let broken: Vec<Vec<&str>> = (0..LINKS.len())
        .map(|i| {
            let mut classes: Vec<&str> = problems
                .iter()
                .filter(|f| link_of(f) == i)
                .map(|f| f.class.id())
                .collect();
            classes.sort_unstable();
            classes.dedup();
            classes
        })
        .collect();
    let _ = writeln!(out, "## The path\n");
    let _ = writeln!(
        out,
        "Broken links are drawn in red and marked with the failure class.\n"
    );
    let _ = writeln!(out, "```mermaid\nflowchart LR");
    for (id, label) in &names {
        let _ = writeln!(out, "  {id}[\"{}\"]", label.replace('"', "'"));
    }
    for (i, (from, to, label)) in LINKS.iter().enumerate() {
        if broken[i].is_empty() {
            let _ = writeln!(out, "  {from} -->|{label}| {to}");
        } else {
            let _ = writeln!(
                out,
                "  {from} -->|\"{label}: ✗ {}\"| {to}",
                broken[i].join(", ")
            );
        }
    }
    for (i, b) in broken.iter().enumerate() {
        if !b.is_empty() {
            let _ = writeln!(out, "  linkStyle {i} stroke:#d00,stroke-width:3px");
        }
    }
    let _ = writeln!(out, "```\n");
    let _ = writeln!(out, "```text");
    for (i, (from, to, label)) in LINKS.iter().enumerate() {
        let mark = if broken[i].is_empty() {
            format!("--{label}-->")
        } else {
            format!("--{label} ✗ {}-->", broken[i].join(", "))
        };
        let _ = writeln!(out, "{} {mark} {}", name(from), name(to));
    }
    let _ = writeln!(out, "```\n");
}

fn problem(out: &mut String, n: usize, group: &[&Finding], audit: &[AuditRecord]) {
    let head = lead(group);
    let _ = writeln!(out, "## Problem {n}: {}\n", prose(&head.title));
    if group.len() > 1 {
        let _ = writeln!(out, "Seen from {} sides:\n", group.len());
        for (k, f) in group.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}. `{}` on {}: {}",
                k + 1,
                f.check.0,
                prose(&place(f)),
                prose(&f.title)
            );
        }
        out.push('\n');
    }
    for (k, f) in group.iter().enumerate() {
        let label = if group.len() > 1 {
            format!("{n}.{}", k + 1)
        } else {
            n.to_string()
        };
        if group.len() > 1 {
            let _ = writeln!(
                out,
                "### {label}: `{}` on {}\n",
                f.check.0,
                prose(&f.target.name)
            );
        }
        finding_section(out, &label, f, audit);
    }
}

/// One finding of a problem: its facts, why, evidence, fixes and what was applied.
fn finding_section(out: &mut String, n: &str, f: &Finding, audit: &[AuditRecord]) {
    let _ = writeln!(
        out,
        "- Class: `{}`, severity {}, confidence {}",
        f.class.id(),
        f.severity.id(),
        match f.confidence {
            crate::model::Confidence::Confirmed => "confirmed by a probe",
            crate::model::Confidence::Inferred => "inferred from logs",
        }
    );
    let _ = writeln!(out, "- Where: {} (check `{}`)", prose(&place(f)), f.check.0);
    if f.count > 1 {
        let _ = writeln!(out, "- Seen {} times", f.count);
    }
    if let (Some(a), Some(b)) = (&f.first_seen, &f.last_seen) {
        let _ = writeln!(out, "- First seen {a}, last seen {b}");
    }
    out.push('\n');
    let _ = writeln!(out, "### Why (problem {n})\n");
    for para in f.explanation.split('\n').filter(|l| !l.trim().is_empty()) {
        let para = para.trim();
        if let Some(item) = para.strip_prefix("- ") {
            let _ = writeln!(out, "- {}", prose(item));
        } else {
            let _ = writeln!(out, "\n{}\n", prose(para));
        }
    }
    out.push('\n');
    if !f.evidence.is_empty() {
        let _ = writeln!(out, "### Evidence (problem {n})\n");
        for e in &f.evidence {
            let source = match &e.source {
                EvidenceSource::File { path, line } => format!("`{path}` line {line}"),
                EvidenceSource::Command { host, command } => {
                    format!("`{}` on {host}", short(command))
                }
                EvidenceSource::Probe { request } => format!("probe `{}`", short(request)),
            };
            let when = e
                .time
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default();
            let _ = writeln!(out, "From {source}{when}:\n");
            let _ = writeln!(out, "```text\n{}\n```\n", e.text.replace("```", "'''"));
        }
    }
    if !f.fixes.is_empty() || !f.next_steps.is_empty() {
        let _ = writeln!(out, "### Fix (problem {n})\n");
        for x in &f.fixes {
            let _ = writeln!(out, "- {} (`{}`)", prose(&x.title), x.id);
        }
        for s in &f.next_steps {
            let _ = writeln!(out, "- {}", prose(s));
        }
        let applied = applied_to(f, audit);
        if applied.is_empty() {
            let _ = writeln!(
                out,
                "\nStatus: open. No fix was applied by pulldoctor in this run.\n"
            );
        } else {
            let _ = writeln!(out, "\n### Applied (problem {n})\n");
            let _ = writeln!(
                out,
                "| Time | Host | Step | Before (sha256) | After (sha256) | Outcome |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|");
            for r in applied {
                let digest = |d: &Option<String>| {
                    d.as_deref().map_or_else(
                        || "-".to_string(),
                        |d| format!("`{}`", &d[..d.len().min(12)]),
                    )
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    cell(&r.time),
                    cell(&r.host),
                    cell(&r.step),
                    digest(&r.before),
                    digest(&r.after),
                    cell(&match &r.detail {
                        Some(d) => format!("{}: {d}", r.outcome),
                        None => r.outcome.clone(),
                    })
                );
            }
            let _ = writeln!(out, "\nStatus: {}.\n", prose(&status(f, audit)));
        }
    }
}

/// A command or request shortened for a heading line (the full text is in the JSON report).
fn short(text: &str) -> String {
    let one = text.replace('\n', " ").replace('`', "'");
    if one.chars().count() > 100 {
        format!("{}…", one.chars().take(100).collect::<String>())
    } else {
        one
    }
}

fn timeline(out: &mut String, report: &Report, groups: &[Vec<&Finding>], audit: &[AuditRecord]) {
    let _ = writeln!(out, "## Timeline\n");
    let mut rows: Vec<(String, String)> = Vec::new();
    for (i, f) in groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.iter().map(move |f| (i, f)))
    {
        if let Some(t) = &f.first_seen {
            rows.push((t.clone(), format!("problem {}: first seen", i + 1)));
        }
        if let Some(t) = f
            .last_seen
            .as_ref()
            .filter(|t| Some(*t) != f.first_seen.as_ref())
        {
            rows.push((t.clone(), format!("problem {}: last seen", i + 1)));
        }
    }
    for (i, f) in groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.iter().map(move |f| (i, f)))
    {
        for r in applied_to(f, audit) {
            if r.step == "verify" || r.outcome == "rolled back" {
                rows.push((
                    r.time.clone(),
                    format!("problem {}: {} on {} ({})", i + 1, r.outcome, r.host, r.fix),
                ));
            }
        }
    }
    rows.push((
        report.run.started_at.clone(),
        "pulldoctor run started".into(),
    ));
    rows.push((
        report.run.finished_at.clone(),
        format!("pulldoctor run finished: {} problems found", groups.len()),
    ));
    rows.sort();
    rows.dedup();
    let _ = writeln!(out, "| Time | Event |");
    let _ = writeln!(out, "|---|---|");
    for (t, what) in rows {
        let _ = writeln!(out, "| {} | {} |", cell(&t), cell(&what));
    }
    out.push('\n');
}

fn verify_by_hand(out: &mut String, problems: &[&Finding]) {
    let mut commands: Vec<String> = problems
        .iter()
        .flat_map(|f| f.next_steps.iter())
        .flat_map(|s| s.split('`').skip(1).step_by(2).map(str::to_string))
        .filter(|c| c.contains(' '))
        .collect();
    commands.dedup();
    let mut seen = std::collections::HashSet::new();
    commands.retain(|c| seen.insert(c.clone()));
    let _ = writeln!(out, "## Verify by hand\n");
    if commands.is_empty() {
        let _ = writeln!(
            out,
            "Re-run `pulldoctor --headless` with the same inventory: every problem above must be gone.\n"
        );
        return;
    }
    let _ = writeln!(out, "```sh");
    for c in commands {
        let _ = writeln!(out, "{c}");
    }
    let _ = writeln!(out, "```\n");
    let _ = writeln!(
        out,
        "Then re-run `pulldoctor --headless` with the same inventory: every problem above must be gone.\n"
    );
}

fn remains_open(out: &mut String, report: &Report, groups: &[&Vec<&Finding>]) {
    let _ = writeln!(out, "## What remains open\n");
    let mut items: Vec<String> = groups
        .iter()
        .map(|g| {
            let f = lead(g);
            format!("{} (`{}`)", prose(&f.title), f.class.id())
        })
        .collect();
    for c in &report.checks {
        use crate::model::CheckStatus;
        let why = match &c.status {
            CheckStatus::Skipped { reason } => format!("skipped: {reason}"),
            CheckStatus::Errored { error } => format!("could not run: {error}"),
            CheckStatus::TimedOut { after_ms } => format!("timed out after {after_ms} ms"),
            _ => continue,
        };
        items.push(format!(
            "Check `{}` on {}: {}",
            c.check,
            c.target,
            prose(&why)
        ));
    }
    if !report.unclassified.is_empty() {
        items.push(format!(
            "{} failure-looking line{} no signature explained (see the JSON report's `unclassified`)",
            report.unclassified.len(),
            if report.unclassified.len() == 1 { "" } else { "s" }
        ));
    }
    if items.is_empty() {
        let _ = writeln!(out, "Nothing.");
        return;
    }
    for i in items {
        let _ = writeln!(out, "- {i}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_urls_go_in_code_spans() {
        assert_eq!(
            prose("dial http://10.0.0.1/jwt/auth, then `curl http://x` stays."),
            "dial `http://10.0.0.1/jwt/auth`, then `curl http://x` stays."
        );
        assert_eq!(cell("a | b\nc"), "a \\| b c");
    }
}
