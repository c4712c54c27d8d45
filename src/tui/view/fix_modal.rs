//! The fix plan of the selected finding: for each fix, its steps (the catalog's commands, or the
//! finding's next steps), the hosts it touches and its risk; `y` is shown disabled with the
//! reason, because applying arrives with the fix engine.

use super::super::app::App;
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
    lines.push(Line::from(vec![
        Span::styled("risk: ", t.heading()),
        Span::raw("not assessed yet — every step below is for a person to run; pulldoctor changes nothing"),
    ]));
    lines.push(Line::default());
    if f.fixes.is_empty() {
        lines.push(Line::from(Span::styled(
            "No fix is known; the next steps:",
            t.heading(),
        )));
        steps(&mut lines, &f.next_steps);
    }
    for fix in &f.fixes {
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
    lines.push(Line::from(vec![
        Span::styled("y apply: ", t.dim()),
        Span::styled(format!("disabled — {}", app.apply_refusal()), t.dim()),
    ]));
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
