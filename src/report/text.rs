//! The readable summary `pulldoctor explain` prints: each failure with what it means, the lines
//! that prove it, what to do next and the fixes that apply. Colour only on a terminal and never
//! with `NO_COLOR`.

use super::Report;
use crate::model::{Evidence, EvidenceSource, Finding, Severity};
use std::fmt::Write as _;

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Use colours.
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\u{1b}[{code}m{s}\u{1b}[0m")
        } else {
            s.to_string()
        }
    }
    fn severity(self, sev: Severity) -> String {
        let code = match sev {
            Severity::Critical | Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        self.paint(code, sev.id())
    }
}

/// Render the report as text.
#[must_use]
pub fn render(report: &Report, style: Style) -> String {
    let mut out = String::new();
    let lines: u64 = report.inputs.iter().map(|i| i.lines).sum();
    let names: Vec<&str> = report.inputs.iter().map(|i| i.name.as_str()).collect();
    // what was looked at: the text inputs, and the checks that probed hosts and services
    let probed = report
        .checks
        .iter()
        .filter(|c| c.check != "logs.classify")
        .count();
    let mut looked_at = Vec::new();
    if !names.is_empty() {
        looked_at.push(format!("{} ({lines} lines)", names.join(", ")));
    }
    if probed > 0 {
        looked_at.push(format!(
            "{probed} probing check{}",
            if probed == 1 { "" } else { "s" }
        ));
    }
    let _ = writeln!(
        out,
        "{} {} in {}\n",
        style.paint("1", "pulldoctor:"),
        match report.findings.len() {
            0 => "no pull or CI failure found".to_string(),
            1 => "1 failure".to_string(),
            n => format!("{n} distinct failures"),
        },
        if looked_at.is_empty() {
            "no input".to_string()
        } else {
            looked_at.join(" and ")
        },
    );
    for (i, f) in report.findings.iter().enumerate() {
        finding(&mut out, i + 1, f, style);
    }
    for c in &report.checks {
        if let crate::model::CheckStatus::Errored { error } = &c.status {
            let _ = writeln!(
                out,
                "{} {}: {error}\n",
                style.paint("1;31", "could not run"),
                c.check
            );
        }
        if let crate::model::CheckStatus::TimedOut { after_ms } = &c.status {
            let _ = writeln!(
                out,
                "{} {} on {} after {after_ms} ms\n",
                style.paint("1;31", "timed out"),
                c.check,
                c.target
            );
        }
    }
    let unexplained: u64 = report.inputs.iter().map(|i| i.unclassified).sum();
    if unexplained > 0 {
        let _ = writeln!(
            out,
            "{} {unexplained} failure line(s) match no signature; the first:",
            style.paint("1;33", "unexplained:")
        );
        for e in report.unclassified.iter().take(5) {
            let _ = writeln!(out, "    {}", evidence_line(e, style));
        }
        out.push('\n');
    }
    for i in &report.inputs {
        if i.skipped_long_lines + i.skipped_binary_lines > 0 {
            let _ = writeln!(
                out,
                "{} {}: skipped {} line(s) longer than 64 KiB and {} binary line(s)\n",
                style.paint("1;33", "note:"),
                i.name,
                i.skipped_long_lines,
                i.skipped_binary_lines
            );
        }
    }
    let s = &report.summary;
    let counts: Vec<String> = s
        .by_severity
        .iter()
        .rev()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let _ = writeln!(
        out,
        "summary: {} finding(s){}; primary class: {}",
        s.findings,
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        },
        style.paint("1", s.primary_class.id())
    );
    out
}

fn finding(out: &mut String, n: usize, f: &Finding, style: Style) {
    let times = match (&f.first_seen, &f.last_seen) {
        (Some(a), Some(b)) if a != b && f.count > 1 => format!(", {a} → {b}"),
        (Some(a), _) => format!(", {a}"),
        _ => String::new(),
    };
    let nodes = if f.subject.nodes.is_empty() {
        String::new()
    } else {
        format!(", on {}", f.subject.nodes.join(", "))
    };
    let _ = writeln!(
        out,
        "{n}. [{}] {} — {}",
        style.severity(f.severity),
        style.paint("1", f.class.id()),
        f.title
    );
    let _ = writeln!(out, "   seen {}×{times}{nodes}", f.count);
    wrap(out, "   ", &f.explanation, 96);
    let _ = writeln!(out, "   {}", style.paint("1", "evidence:"));
    for e in &f.evidence {
        let _ = writeln!(out, "     {}", evidence_line(e, style));
    }
    if !f.next_steps.is_empty() {
        let _ = writeln!(out, "   {}", style.paint("1", "next:"));
        for (i, step) in f.next_steps.iter().enumerate() {
            wrap(out, &format!("     {}. ", i + 1), step, 96);
        }
    }
    if !f.fixes.is_empty() {
        let _ = writeln!(out, "   {}", style.paint("1", "fixes:"));
        for fix in &f.fixes {
            let _ = writeln!(out, "     - {} ({})", fix.title, fix.id);
        }
    }
    out.push('\n');
}

fn evidence_line(e: &Evidence, style: Style) -> String {
    let place = match &e.source {
        EvidenceSource::File { path, line } => format!("{path}:{line}"),
        EvidenceSource::Command { host, command } => format!("{host}$ {command}"),
        EvidenceSource::Probe { request } => request.clone(),
    };
    let mut text = e.text.clone();
    if let Some([a, b]) = e.matched
        && let (Some(pre), Some(mid), Some(post)) =
            (e.text.get(..a), e.text.get(a..b), e.text.get(b..))
    {
        text = format!("{pre}{}{post}", style.paint("1;31", mid));
    }
    const MAX: usize = 600;
    if e.text.len() > MAX && e.matched.is_none() {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text = format!("{}…", &text[..cut]);
    }
    format!("{} {text}", style.paint("2", &place))
}

/// Word-wrap `text` at `width`, the first line after `first`, the rest indented to match.
fn wrap(out: &mut String, first: &str, text: &str, width: usize) {
    let indent = " ".repeat(first.chars().count());
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            let _ = writeln!(out, "{line}");
            line.clone_from(&indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    let _ = writeln!(out, "{line}");
}
