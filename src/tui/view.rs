//! Drawing: a pure function of [`App`] (no I/O, no state changes), one region per file.
//!
//! ```text
//! ┌ header: source · check counts · findings by severity · run time ──────────────┐
//! ┌ path map: CI job ─ runner ─ registry ─ hops ─ nodes ─ kubelet ────────────────┐
//! │ each stage coloured by its worst finding; the first broken link marked        │
//! └───────────────────────────────────────────────────────────────────────────────┘
//! ┌ checks, by stage ───────────────┐┌ findings, worst first ─────────────────────┐
//! │ (or, full width, a finding's detail)                                          │
//! └─────────────────────────────────┘└────────────────────────────────────────────┘
//! ┌ logs: the lines behind the findings, matches highlighted ─────────────────────┐
//! └───────────────────────────────────────────────────────────────────────────────┘
//!  footer: keys from the keymap, or the last message
//! ```
//! The fix plan and the help are modals drawn over the rest.

mod checks;
mod detail;
mod findings;
mod fix_modal;
mod footer;
mod header;
mod help;
mod logs;
mod path_map;

use super::app::{App, Modal, Pane};
use crate::model::Finding;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, BorderType};

/// What a frame needs, gathered once so each sort and filter runs once per frame (oxker's
/// `FrameData`).
struct FrameData<'a> {
    /// Every finding, worst first.
    all: Vec<&'a Finding>,
    /// Those the filter lets through.
    visible: Vec<&'a Finding>,
    /// The selected one.
    selected: Option<&'a Finding>,
}

/// Draw the whole dashboard.
pub fn render(frame: &mut Frame, app: &App) {
    let all = app.state.findings_sorted();
    let visible = app.filter_findings(all.clone());
    let selected = visible.get(app.finding_sel).copied();
    let data = FrameData {
        all,
        visible,
        selected,
    };
    let area = frame.area();
    // A short terminal gives the open detail the map's rows.
    let map_height = match (app.detail, area.height) {
        (true, h) if h < 30 => 0,
        (_, h) if h >= 20 => 6,
        _ => 4,
    };
    let [header_area, map_area, body_area, footer_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(map_height),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame, header_area, app, &data);
    if map_area.height > 0 {
        path_map::render(frame, map_area, app);
    }
    if app.detail {
        detail::render(frame, body_area, app, &data);
    } else {
        let logs_height = (body_area.height / 3).clamp(3, 14);
        let [lists, logs_area] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(logs_height)])
                .areas(body_area);
        let [checks_area, findings_area] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(lists);
        checks::render(frame, checks_area, app, &data);
        findings::render(frame, findings_area, app, &data);
        logs::render(frame, logs_area, app, &data);
    }
    footer::render(frame, footer_area, app);
    match app.modal {
        Some(Modal::FixPlan) => fix_modal::render(frame, area, app, &data),
        Some(Modal::Help) => help::render(frame, area, app),
        None => {}
    }
}

/// A pane's frame, highlighted when it has the focus.
fn pane_block<'a>(app: &App, pane: Option<Pane>, title: String) -> Block<'a> {
    let focused = pane.is_some_and(|p| p == app.focus) && !app.detail && app.modal.is_none();
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(format!(" {title} "));
    if focused {
        block
            .border_style(app.theme.focus_border())
            .border_type(BorderType::Thick)
    } else {
        block.border_style(app.theme.dim())
    }
}

/// The rows of a list of `len` that fit in `height` with the selection in view: only these are
/// built, so a frame costs the same with 5 rows or 5000.
fn window(len: usize, selected: Option<usize>, height: usize) -> (usize, usize) {
    let height = height.max(1);
    let start = selected.map_or(0, |s| (s + 1).saturating_sub(height));
    (start, (start + height).min(len))
}

/// A centred rectangle of at most `width`×`height` inside `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Shorten `s` to `max` characters, marking the cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else if max == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Milliseconds as a short duration (`850ms`, `1.2s`, `2m05s`).
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
