//! Colours and styles of the dashboard. With `NO_COLOR` every style keeps only its modifiers
//! (bold, reversed, underlined), so severity and selection stay readable without colour.

use crate::model::Severity;
use ratatui::style::{Color, Modifier, Style};

/// The dashboard's palette, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Use colours (false under `NO_COLOR`).
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set to anything non-empty (no-color.org).
    #[must_use]
    pub fn from_env() -> Self {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// The colour of a severity (critical and error red, warning yellow, info cyan).
    #[must_use]
    pub fn severity(self, sev: Severity) -> Style {
        match sev {
            Severity::Critical => self.fg(Color::LightRed).add_modifier(Modifier::BOLD),
            Severity::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Warning => self.fg(Color::Yellow),
            Severity::Info => self.fg(Color::Cyan),
        }
    }

    /// Something that passed.
    #[must_use]
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// A check that could not run or finish.
    #[must_use]
    pub fn errored(self) -> Style {
        self.fg(Color::Magenta).add_modifier(Modifier::BOLD)
    }

    /// Running, pending, and anything not yet known.
    #[must_use]
    pub fn pending(self) -> Style {
        self.fg(Color::Blue)
    }

    /// Secondary text: sources, times, hints.
    #[must_use]
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    /// Headings.
    #[must_use]
    pub fn heading(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The part of an evidence line a signature matched.
    #[must_use]
    pub fn matched(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        }
    }

    /// The selected row of the focused pane.
    #[must_use]
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// The border of the focused pane.
    #[must_use]
    pub fn focus_border(self) -> Style {
        self.fg(Color::LightBlue).add_modifier(Modifier::BOLD)
    }

    /// Key names in the footer and help.
    #[must_use]
    pub fn key(self) -> Style {
        self.fg(Color::LightBlue).add_modifier(Modifier::BOLD)
    }
}
