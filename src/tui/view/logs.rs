//! The logs pane: every journal, events and job-log line behind the findings (and the
//! failure-looking lines nothing explained), in source order; the selected finding's lines are
//! marked and the part each signature matched is highlighted.

use super::super::app::{App, LogLine, Pane};
use super::super::theme::Theme;
use super::{FrameData, pane_block, truncate};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, data: &FrameData) {
    let t = app.theme;
    let lines = app.log_lines();
    let block = pane_block(
        app,
        Some(Pane::Logs),
        format!("logs ({} lines)", lines.len()),
    );
    let inner = block.inner(area);
    let selected = data.selected.map(|f| f.id.clone());
    let width = usize::from(inner.width);
    let top = app
        .log_top(data.selected)
        .min(lines.len().saturating_sub(1));
    let shown: Vec<Line> = lines
        .iter()
        .skip(top)
        .take(usize::from(inner.height))
        .map(|l| {
            let mine = selected.as_ref().is_some_and(|id| l.findings.contains(id));
            log_line(l, mine, t, width)
        })
        .collect();
    let body = if shown.is_empty() {
        vec![Line::from(Span::styled("no evidence lines yet", t.dim()))]
    } else {
        shown
    };
    frame.render_widget(Paragraph::new(body).block(block), area);
}

fn log_line(l: &LogLine, mine: bool, t: Theme, width: usize) -> Line<'static> {
    let marker = if mine {
        Span::styled("▶", t.key())
    } else if l.findings.is_empty() {
        Span::styled("?", t.dim())
    } else {
        Span::raw(" ")
    };
    let source = format!("{} ", truncate(&l.source, 28));
    let mut spans = vec![marker, Span::styled(source.clone(), t.dim())];
    let room = width.saturating_sub(1 + source.chars().count());
    spans.extend(highlighted(&l.text, l.matched, t, room));
    Line::from(spans)
}

/// The text with the matched byte range highlighted; when the line is too long, it is cut so
/// the match stays in view.
pub(super) fn highlighted(
    text: &str,
    matched: Option<[usize; 2]>,
    t: Theme,
    room: usize,
) -> Vec<Span<'static>> {
    let Some([a, b]) = matched else {
        return vec![Span::raw(truncate(text, room))];
    };
    let (Some(pre), Some(mid), Some(post)) = (text.get(..a), text.get(a..b), text.get(b..)) else {
        return vec![Span::raw(truncate(text, room))];
    };
    let mut pre = pre.to_string();
    let pre_len = pre.chars().count();
    let mid_len = mid.chars().count();
    if room > 0 && pre_len + mid_len > room {
        // Keep the end of the prefix so the match is on screen.
        let keep = room.saturating_sub(mid_len.min(room / 2)).saturating_sub(1);
        let skip = pre_len.saturating_sub(keep);
        pre = format!("…{}", pre.chars().skip(skip).collect::<String>());
    }
    let pre_w = pre.chars().count();
    let mid_s = truncate(mid, room.saturating_sub(pre_w));
    let post_s = truncate(post, room.saturating_sub(pre_w + mid_s.chars().count()));
    vec![
        Span::raw(pre),
        Span::styled(mid_s, t.matched()),
        Span::raw(post_s),
    ]
}
