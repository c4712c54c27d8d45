//! The footer: the filter being typed, the last message, and the keys of the current context
//! (from the keymap table).

use super::super::app::App;
use super::super::keymap;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let mut spans = Vec::new();
    if app.editing_filter {
        spans.push(Span::styled(" filter: ", t.key()));
        spans.push(Span::raw(format!("{}▏", app.filter)));
        spans.push(Span::styled("  Enter keep · Esc clear", t.dim()));
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    }
    if let Some(msg) = &app.status {
        spans.push(Span::styled(format!(" {msg} │"), t.heading()));
    }
    if !app.filter.is_empty() {
        spans.push(Span::styled(
            format!(" filter '{}' │", app.filter),
            t.pending(),
        ));
    }
    if app.failures_only {
        spans.push(Span::styled(" failures only │", t.pending()));
    }
    for (keys, hint) in keymap::footer_hints(app.context()) {
        spans.push(Span::styled(format!(" {keys}"), t.key()));
        spans.push(Span::raw(format!(" {hint}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
