//! The findings list, worst first: severity, failure class, title.

use super::super::app::{App, Pane};
use super::super::path::short_class;
use super::{FrameData, pane_block, truncate, window};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, data: &FrameData) {
    let t = app.theme;
    let findings = &data.visible;
    let block = pane_block(
        app,
        Some(Pane::Findings),
        format!("findings ({})", findings.len()),
    );
    if findings.is_empty() {
        let text = if app.state.checks.is_empty() || !app.state.complete() {
            "none yet"
        } else if app.filter.is_empty() {
            "nothing found by the checks that ran"
        } else {
            "none match the filter"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, t.dim())).block(block),
            area,
        );
        return;
    }
    let inner = block.inner(area);
    let width = usize::from(inner.width);
    let (start, end) = window(
        findings.len(),
        Some(app.finding_sel),
        usize::from(inner.height),
    );
    let items: Vec<ListItem> = findings[start..end]
        .iter()
        .map(|f| {
            let sev = format!(" {:<8}", f.severity.id());
            let class = format!("{:<9}", truncate(short_class(f.class), 9));
            let title = truncate(&f.title, width.saturating_sub(19));
            ListItem::new(Line::from(vec![
                Span::styled(sev, t.severity(f.severity)),
                Span::styled(class, t.dim()),
                Span::raw(format!(" {title}")),
            ]))
        })
        .collect();
    let focused = app.focus == Pane::Findings && !app.detail;
    let list = List::new(items)
        .block(block)
        .highlight_style(if focused { t.selected() } else { Style::new() })
        .highlight_symbol(if focused { "▶" } else { " " });
    let mut state = ListState::default().with_selected(app.finding_sel.checked_sub(start));
    frame.render_stateful_widget(list, area, &mut state);
}
