//! The path map: one cell per stage from CI job to kubelet, each coloured by its worst finding,
//! the link into the first broken stage marked, then the broken stage's headline and the nodes
//! and hops grouped (worst first, the rest counted) so 1 node and 50 read the same way.

use super::super::app::App;
use super::super::path::{Member, PathView, StageView, path_view};
use super::super::theme::Theme;
use super::{pane_block, truncate};
use crate::model::Severity;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let view = path_view(&app.state);
    let block = pane_block(app, None, "path".to_string());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let t = app.theme;
    let width = usize::from(inner.width);
    let n = view.stages.len();
    let cell = (width / n).max(4);
    let mut names = Vec::new();
    let mut notes = Vec::new();
    for (i, sv) in view.stages.iter().enumerate() {
        let (mark, style) = mark(sv, t);
        let broken_here = view.first_broken == Some(i);
        // The connector into a stage carries that stage's colour: the link that breaks is red.
        let connector = match (i, broken_here) {
            (0, _) => String::new(),
            (_, true) => "━━▶".to_string(),
            _ => "───".to_string(),
        };
        let link_style = if broken_here { style } else { t.dim() };
        let label_width = cell.saturating_sub(connector.chars().count());
        names.push(Span::styled(connector.clone(), link_style));
        names.push(Span::styled(
            pad(&format!("{mark} {}", sv.stage.label()), label_width),
            style,
        ));
        notes.push(Span::raw(" ".repeat(connector.chars().count())));
        notes.push(Span::styled(
            pad(
                &truncate(&note(sv), label_width.saturating_sub(1)),
                label_width,
            ),
            if sv.worst.is_some() { style } else { t.dim() },
        ));
    }
    let mut lines = vec![Line::from(names), Line::from(notes)];
    if inner.height >= 3 {
        lines.push(broken_line(&view, t, width));
    }
    if inner.height >= 4 {
        lines.push(members_line(&view, t, width));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The symbol and style of a stage: never a tick for a stage nothing checked.
fn mark(sv: &StageView, t: Theme) -> (&'static str, Style) {
    match sv.worst {
        Some(sev @ (Severity::Critical | Severity::Error)) => ("✗", t.severity(sev)),
        Some(sev @ Severity::Warning) => ("!", t.severity(sev)),
        Some(sev @ Severity::Info) => ("i", t.severity(sev)),
        None if sv.busy > 0 => ("…", t.pending()),
        None if sv.passed + sv.failed > 0 && sv.not_run == 0 => ("✓", t.ok()),
        None if sv.not_run > 0 => ("?", t.errored()),
        None => ("·", t.dim()),
    }
}

fn note(sv: &StageView) -> String {
    if !sv.notes.is_empty() {
        sv.notes.join(",")
    } else if sv.busy > 0 {
        "checking".to_string()
    } else if sv.passed + sv.failed > 0 && sv.not_run == 0 {
        "ok".to_string()
    } else if sv.not_run > 0 {
        "not run".to_string()
    } else {
        "no check".to_string()
    }
}

fn broken_line(view: &PathView, t: Theme, width: usize) -> Line<'static> {
    match view.first_broken.map(|i| &view.stages[i]) {
        Some(sv) => {
            let sev = sv.worst.unwrap_or(Severity::Error);
            let head = format!("✗ first broken: {} — ", sv.stage.label());
            let rest = truncate(
                sv.headline.as_deref().unwrap_or_default(),
                width.saturating_sub(head.chars().count()),
            );
            Line::from(vec![Span::styled(head, t.severity(sev)), Span::raw(rest)])
        }
        None => {
            let busy: usize = view.stages.iter().map(|s| s.busy).sum();
            let text = if busy > 0 {
                "no broken link yet (checks still running)"
            } else {
                "no broken link found by the checks that ran"
            };
            Line::from(Span::styled(text, t.dim()))
        }
    }
}

/// `nodes 50 (3✗): k8s-n03✗ k8s-n17✗ k8s-n44✗ +47 │ hops 1 (1✗): bastion✗`, cut to the width.
fn members_line(view: &PathView, t: Theme, width: usize) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0usize;
    let groups: Vec<&StageView> = view
        .stages
        .iter()
        .filter(|s| !s.members.is_empty())
        .collect();
    if groups.is_empty() {
        return Line::from(Span::styled(
            "no nodes or hops in this run (an inventory adds them)",
            t.dim(),
        ));
    }
    // Each group gets an equal share of what is left, so hops stay visible beside 50 nodes
    // and a short group leaves its room to the next.
    for (gi, sv) in groups.iter().enumerate() {
        let mut budget = width.saturating_sub(used) / (groups.len() - gi);
        let bad = sv.members.iter().filter(|m| m.worst.is_some()).count();
        let head = format!(
            "{}{} {}{}: ",
            if gi > 0 { "│ " } else { "" },
            sv.stage.label(),
            sv.members.len(),
            if bad > 0 {
                format!(" ({bad}✗)")
            } else {
                String::new()
            }
        );
        budget = budget.saturating_sub(head.chars().count());
        used += head.chars().count();
        spans.push(Span::styled(head, t.heading()));
        for (shown, m) in sv.members.iter().enumerate() {
            let text = member(m);
            let rest = sv.members.len() - shown;
            let more = format!("+{rest} ");
            // The last member needs no room for a "+N" after it.
            let reserve = if rest > 1 { more.chars().count() } else { 0 };
            if text.chars().count() + reserve > budget {
                spans.push(Span::styled(more.clone(), t.dim()));
                used += more.chars().count();
                break;
            }
            budget -= text.chars().count();
            used += text.chars().count();
            let style = match m.worst {
                Some(s) => t.severity(s),
                None if m.checked => t.ok(),
                None => t.pending(),
            };
            spans.push(Span::styled(text, style));
        }
    }
    Line::from(spans)
}

fn member(m: &Member) -> String {
    let mark = match m.worst {
        Some(Severity::Critical | Severity::Error) => "✗",
        Some(Severity::Warning) => "!",
        Some(Severity::Info) => "i",
        None if m.checked => "✓",
        None => "?",
    };
    format!("{}{mark} ", m.name)
}

fn pad(s: &str, width: usize) -> String {
    let s = truncate(s, width);
    let len = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(len)))
}
