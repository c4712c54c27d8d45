//! A finding's detail: title, what it means, the evidence lines verbatim with the matched part
//! highlighted and where each came from (host or file, time), confidence, next steps, fixes.

use super::super::app::App;
use super::logs::highlighted;
use super::{FrameData, pane_block};
use crate::model::{Confidence, EvidenceSource, Finding};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, data: &FrameData) {
    let Some(f) = data.selected else {
        return;
    };
    let block =
        pane_block(app, None, format!("finding {} ", f.id)).border_style(app.theme.focus_border());
    let width = usize::from(block.inner(area).width);
    let lines = detail_lines(app, f, width);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((app.detail_scroll, 0)),
        area,
    );
}

fn detail_lines(app: &App, f: &Finding, width: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut out = vec![Line::from(vec![
        Span::styled(
            format!("{} ", f.severity.id().to_uppercase()),
            t.severity(f.severity),
        ),
        Span::styled(format!("{} ", f.class.id()), t.heading()),
        Span::styled(f.title.clone(), t.heading()),
    ])];
    let confidence = match f.confidence {
        Confidence::Confirmed => "confirmed by a probe",
        Confidence::Inferred => "inferred from text",
    };
    let mut facts = format!(
        "{} on {} · {confidence} · seen {}×",
        f.check, f.target.name, f.count
    );
    match (&f.first_seen, &f.last_seen) {
        (Some(a), Some(b)) if a != b => facts.push_str(&format!(" {a} → {b}")),
        (Some(a), _) => facts.push_str(&format!(" {a}")),
        _ => {}
    }
    if !f.subject.nodes.is_empty() {
        facts.push_str(&format!(" · on {}", f.subject.nodes.join(", ")));
    }
    out.push(Line::from(Span::styled(facts, t.dim())));
    for (k, v) in [
        ("image", &f.subject.image),
        ("registry", &f.subject.registry),
        ("endpoint", &f.subject.endpoint),
        ("job", &f.subject.job),
    ] {
        if let Some(v) = v {
            out.push(Line::from(vec![
                Span::styled(format!("{k}: "), t.dim()),
                Span::raw(v.clone()),
            ]));
        }
    }
    out.push(Line::default());
    out.push(Line::from(Span::styled("What it means", t.heading())));
    for l in f.explanation.lines() {
        out.push(Line::from(l.to_string()));
    }
    out.push(Line::default());
    out.push(Line::from(Span::styled(
        format!("Evidence ({} lines)", f.evidence.len()),
        t.heading(),
    )));
    for e in &f.evidence {
        let mut place = match &e.source {
            EvidenceSource::File { path, line } => format!("{path}:{line}"),
            EvidenceSource::Command { host, command } => format!("{host}$ {command}"),
            EvidenceSource::Probe { request } => format!("probe {request}"),
        };
        if let Some(h) = &e.host {
            place.push_str(&format!(" · host {h}"));
        }
        if let Some(time) = &e.time {
            place.push_str(&format!(" · {time}"));
        }
        out.push(Line::from(Span::styled(format!("  {place}"), t.dim())));
        let mut spans = vec![Span::raw("    ")];
        // Verbatim: the detail wraps instead of cutting, so no room limit.
        spans.extend(highlighted(&e.text, e.matched, t, usize::MAX / 2));
        out.push(Line::from(spans));
    }
    if !f.error_chain.is_empty() {
        out.push(Line::default());
        out.push(Line::from(Span::styled("Error chain", t.heading())));
        for c in &f.error_chain {
            out.push(Line::from(format!("  ← {c}")));
        }
    }
    if !f.next_steps.is_empty() {
        out.push(Line::default());
        out.push(Line::from(Span::styled("Next steps", t.heading())));
        for (i, s) in f.next_steps.iter().enumerate() {
            out.push(Line::from(format!("  {}. {s}", i + 1)));
        }
    }
    out.push(Line::default());
    if f.fixes.is_empty() {
        out.push(Line::from(Span::styled(
            "No fix is known for this finding: follow the next steps.",
            t.dim(),
        )));
    } else {
        out.push(Line::from(Span::styled(
            "Fixes (f shows the plan)",
            t.heading(),
        )));
        for fix in &f.fixes {
            out.push(Line::from(format!("  - {} ({})", fix.title, fix.id)));
        }
    }
    let _ = width;
    out
}
