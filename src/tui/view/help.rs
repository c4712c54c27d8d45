//! The `?` help: every binding of the keymap table, with the contexts it works in.

use super::super::app::App;
use super::super::keymap::{BINDINGS, keys_label};
use super::{centered, pane_block};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let popup = centered(area, 80, area.height);
    let block = pane_block(app, None, "keys".to_string()).border_style(t.focus_border());
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:<12}", keys_label(b)), t.key()),
                Span::raw(b.help),
            ])
        })
        .collect();
    lines.push(Line::from(Span::styled(
        " Filtering (/): type, Backspace deletes, Enter keeps, Esc clears.",
        t.dim(),
    )));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        popup,
    );
}
