//! The `?` help: every binding of the keymap table, with the contexts it works in.

use super::super::app::App;
use super::super::keymap::{BINDINGS, Context, keys_label};
use super::{centered, pane_block};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let popup = centered(area, 78, area.height.saturating_sub(2));
    let block = pane_block(app, None, "keys".to_string()).border_style(t.focus_border());
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            let only = if b.contexts.len() == 1 {
                match b.contexts[0] {
                    Context::Main => " (dashboard)",
                    Context::Detail => " (detail)",
                    Context::FixModal => " (fix plan)",
                    Context::Help => " (help)",
                }
            } else {
                ""
            };
            Line::from(vec![
                Span::styled(format!(" {:<12}", keys_label(b)), t.key()),
                Span::raw(b.help),
                Span::styled(only, t.dim()),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        " While filtering (/): type to filter, Backspace deletes, Enter keeps, Esc clears.",
        t.dim(),
    )));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: false }),
        popup,
    );
}
