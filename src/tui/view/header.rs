//! The header: what the run reads, check counts by status, findings by severity, run time.

use super::super::app::App;
use super::{FrameData, duration};
use crate::model::{CheckStatus, Severity};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, data: &FrameData) {
    let t = app.theme;
    let mut counts = [0usize; 7];
    for c in app.state.checks.values() {
        let i = match c.status {
            CheckStatus::Passed => 0,
            CheckStatus::Failed => 1,
            CheckStatus::Running => 2,
            CheckStatus::Pending => 3,
            CheckStatus::Skipped { .. } => 4,
            CheckStatus::Errored { .. } => 5,
            CheckStatus::TimedOut { .. } => 6,
        };
        counts[i] += 1;
    }
    let source = if area.width >= 120 {
        app.source.clone()
    } else {
        super::truncate(&app.source, 16)
    };
    let mut spans = vec![
        Span::styled(" pulldoctor ", t.heading()),
        Span::styled(format!("{source} "), t.dim()),
        Span::raw(format!(
            "│ {} checks{}",
            app.state.checks.len(),
            if area.width >= 120 { ":" } else { "" }
        )),
    ];
    // Below 120 columns the counts go by symbol (the check list's), so the line still fits.
    let wide = area.width >= 120;
    let parts = [
        (counts[0], "pass", "✓", t.ok()),
        (counts[1], "fail", "✗", t.severity(Severity::Error)),
        (counts[2], "running", "…", t.pending()),
        (counts[3], "pending", "·", t.pending()),
        (counts[4], "skipped", "–", t.dim()),
        (counts[5], "error", "!", t.errored()),
        (counts[6], "timed out", "⏱", t.errored()),
    ];
    for (n, word, symbol, style) in parts {
        if n > 0 {
            let text = if wide {
                format!(" {n} {word}")
            } else {
                format!(" {symbol}{n}")
            };
            spans.push(Span::styled(text, style));
        }
    }
    let mut by_sev = [0usize; 4];
    let findings = &data.all;
    for f in findings {
        by_sev[f.severity as usize] += 1;
    }
    spans.push(Span::raw(if wide {
        format!(" │ {} findings", findings.len())
    } else {
        format!(" │ {} found:", findings.len())
    }));
    for sev in Severity::ALL.iter().rev() {
        let n = by_sev[*sev as usize];
        if n > 0 {
            let word = match (wide, sev) {
                (true, _) => sev.id(),
                (false, Severity::Critical) => "crit",
                (false, Severity::Error) => "err",
                (false, Severity::Warning) => "warn",
                (false, Severity::Info) => "info",
            };
            spans.push(Span::styled(format!(" {n} {word}"), t.severity(*sev)));
        }
    }
    let elapsed = match (app.state.started_at, app.state.finished_at) {
        (Some(a), Some(b)) if !app.animating() => {
            Some(format!(" │ done {}", duration(ms_between(a, b))))
        }
        (Some(a), _) => Some(format!(" │ {}", duration(ms_between(a, app.now)))),
        (None, _) => Some(" │ starting".to_string()),
    };
    if let Some(e) = elapsed {
        spans.push(Span::styled(e, t.dim()));
    }
    if let Some(why) = &app.state.aborted {
        spans.push(Span::styled(format!(" │ aborted: {why}"), t.errored()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Milliseconds from `a` to `b` (0 if `b` is earlier).
pub(super) fn ms_between(
    a: chrono::DateTime<chrono::Utc>,
    b: chrono::DateTime<chrono::Utc>,
) -> u64 {
    u64::try_from((b - a).num_milliseconds()).unwrap_or(0)
}
