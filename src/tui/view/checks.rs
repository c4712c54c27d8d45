//! The check list: every check × target grouped by stage, with its live status — a spinner and
//! the elapsed time while running, the reason when skipped, the error when it could not finish.

use super::super::app::{App, CheckRow, Pane};
use super::header::ms_between;
use super::{FrameData, duration, pane_block, truncate, window};
use crate::engine::state::CheckEntry;
use crate::model::{CheckId, CheckStatus, Severity, Target};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};
use std::collections::BTreeMap;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, data: &FrameData) {
    let t = app.theme;
    let rows = app.check_rows();
    let total = app.state.checks.len();
    let shown = rows
        .iter()
        .filter(|r| matches!(r, CheckRow::Check(..)))
        .count();
    let title = if shown == total {
        format!("checks ({total})")
    } else {
        format!("checks ({shown} of {total})")
    };
    let block = pane_block(app, Some(Pane::Checks), title);
    // The highlight symbol takes one column of every row.
    let width = usize::from(block.inner(area).width).saturating_sub(1);
    let mut worst_of: BTreeMap<(&CheckId, &Target), Severity> = BTreeMap::new();
    for f in &data.all {
        let w = worst_of.entry((&f.check, &f.target)).or_insert(f.severity);
        *w = (*w).max(f.severity);
    }
    // Which row holds the selected check (rows include the stage headings).
    let mut check_index = 0usize;
    let mut selected_row = None;
    for (ri, row) in rows.iter().enumerate() {
        if let CheckRow::Check(..) = row {
            if check_index == app.check_sel {
                selected_row = Some(ri);
            }
            check_index += 1;
        }
    }
    let height = usize::from(block.inner(area).height);
    let (start, end) = window(rows.len(), selected_row, height);
    let items: Vec<ListItem> = rows[start..end]
        .iter()
        .map(|row| match row {
            CheckRow::Stage(stage) => ListItem::new(Line::from(Span::styled(
                format!("─ {} ", stage.label()),
                t.heading(),
            ))),
            CheckRow::Check((check, target), entry) => {
                let worst = worst_of.get(&(check, target)).copied();
                let (status, style) = status_cell(app, entry, worst);
                let name = format!(" {} {}", check.0, target.name);
                let mut spans = vec![
                    Span::styled(format!(" {status:<10}"), style),
                    Span::raw(truncate(&name, width.saturating_sub(11))),
                ];
                let why = match &entry.status {
                    CheckStatus::Skipped { reason } => Some(reason.as_str()),
                    CheckStatus::Errored { error } => Some(error.as_str()),
                    _ => None,
                };
                if let Some(why) = why {
                    let left = width.saturating_sub(11 + name.chars().count() + 3);
                    spans.push(Span::styled(format!(" — {}", truncate(why, left)), t.dim()));
                }
                ListItem::new(Line::from(spans))
            }
        })
        .collect();
    let focused = app.focus == Pane::Checks && !app.detail;
    let list = List::new(items)
        .block(block)
        .highlight_style(if focused { t.selected() } else { Style::new() })
        .highlight_symbol(if focused { "▶" } else { " " });
    let mut state = ListState::default().with_selected(selected_row.map(|r| r - start));
    frame.render_stateful_widget(list, area, &mut state);
}

/// The status column: word (or spinner and time) and colour.
fn status_cell(app: &App, entry: &CheckEntry, worst: Option<Severity>) -> (String, Style) {
    let t = app.theme;
    match &entry.status {
        CheckStatus::Pending => ("· pending".to_string(), t.pending()),
        CheckStatus::Running => {
            let ms = entry.started_at.map_or(0, |s| ms_between(s, app.now));
            (
                format!("{} {}", SPINNER[app.frame % SPINNER.len()], duration(ms)),
                t.pending(),
            )
        }
        CheckStatus::Passed => ("✓ pass".to_string(), t.ok()),
        CheckStatus::Failed => {
            let sev = worst.unwrap_or(Severity::Error);
            let word = if sev >= Severity::Error {
                "✗ fail"
            } else {
                "! warn"
            };
            (word.to_string(), t.severity(sev))
        }
        CheckStatus::Skipped { .. } => ("– skipped".to_string(), t.dim()),
        CheckStatus::Errored { .. } => ("! error".to_string(), t.errored()),
        CheckStatus::TimedOut { after_ms } => (format!("⏱ {}", duration(*after_ms)), t.errored()),
    }
}
