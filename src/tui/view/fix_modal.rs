//! The fix plan of the selected finding: the plans the fix engine made from the hosts as they
//! are now (exact files, diffs and commands, risk, verification), applied with `y`; while it
//! plans, or when it has no plan, the catalog's steps for a person to run.

use super::super::app::{App, FixPanel};
use super::{FrameData, centered, pane_block};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, data: &FrameData) {
    let Some(f) = data.selected else {
        return;
    };
    let t = app.theme;
    let block =
        pane_block(app, None, format!("fix plan: {}", f.class.id())).border_style(t.focus_border());
    let mut lines = vec![
        Line::from(Span::styled(f.title.clone(), t.severity(f.severity))),
        Line::default(),
    ];
    let hosts = if f.subject.nodes.is_empty() {
        f.target.name.clone()
    } else {
        f.subject.nodes.join(", ")
    };
    lines.push(Line::from(vec![
        Span::styled("hosts: ", t.heading()),
        Span::raw(hosts),
    ]));
    lines.push(Line::default());
    let engine_plans = match &app.fix_panel {
        FixPanel::Ready { text, plans } if *plans > 0 => Some(text.as_str()),
        _ => None,
    };
    match (&app.fixes_unavailable, &app.fix_panel) {
        (Some(why), _) => note(&mut lines, app, format!("pulldoctor applies nothing here: {why}")),
        (None, FixPanel::Planning | FixPanel::Idle) => {
            note(&mut lines, app, "reading the hosts to plan the fix…".into());
        }
        (None, FixPanel::Failed(e)) => note(&mut lines, app, format!("cannot plan: {e}")),
        (None, FixPanel::Ready { plans: 0, .. }) => note(
            &mut lines,
            app,
            "pulldoctor has no fix it can apply for this finding (or it is already right); the steps for a person:".into(),
        ),
        (None, FixPanel::Applying) => note(
            &mut lines,
            app,
            "applying, one host at a time, each verified…".into(),
        ),
        (None, FixPanel::Done(outcomes)) => {
            lines.push(Line::from(Span::styled("applied:", t.heading())));
            for o in outcomes {
                lines.push(Line::from(format!("  {o}")));
            }
            lines.push(Line::default());
        }
        (None, FixPanel::Ready { .. }) => {}
    }
    if let Some(text) = engine_plans {
        for l in text.lines() {
            lines.push(Line::from(l.to_string()));
        }
        lines.push(Line::default());
    } else if f.fixes.is_empty() {
        lines.push(Line::from(Span::styled(
            "No fix is known; the next steps:",
            t.heading(),
        )));
        steps(&mut lines, &f.next_steps);
    }
    for fix in f.fixes.iter().filter(|_| engine_plans.is_none()) {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", fix.title), t.heading()),
            Span::styled(format!("({})", fix.id), t.dim()),
        ]));
        match app.fix_commands.get(&fix.id) {
            Some(cmds) if !cmds.is_empty() => steps(&mut lines, cmds),
            _ => steps(&mut lines, &f.next_steps),
        }
        lines.push(Line::default());
    }
    match app.apply_refusal() {
        None => lines.push(Line::from(vec![
            Span::styled("y", t.key()),
            Span::raw(
                " apply the plans above (backups kept; rolled back if the re-run check fails)",
            ),
        ])),
        Some(why) => lines.push(Line::from(vec![
            Span::styled("y apply: ", t.dim()),
            Span::styled(format!("disabled — {why}"), t.dim()),
        ])),
    }
    lines.push(Line::from(vec![
        Span::styled("Esc", t.key()),
        Span::raw(" close  "),
        Span::styled("q", t.key()),
        Span::raw(" quit"),
    ]));
    // As tall as the plan (with room for wrapped lines), never taller than the screen allows.
    let wanted = u16::try_from(lines.len() + 6).unwrap_or(u16::MAX);
    let popup = centered(
        area,
        area.width.saturating_sub(6).max(40),
        wanted.min(area.height.saturating_sub(2)).max(10),
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        popup,
    );
}

fn steps(lines: &mut Vec<Line<'static>>, steps: &[String]) {
    for (i, s) in steps.iter().enumerate() {
        lines.push(Line::from(format!("  {}. {s}", i + 1)));
    }
}

fn note(lines: &mut Vec<Line<'static>>, app: &App, text: String) {
    lines.push(Line::from(Span::styled(text, app.theme.dim())));
    lines.push(Line::default());
}
