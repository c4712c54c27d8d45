//! The one keymap: which key does what, in which context. The same table handles keys, draws the
//! footer hints and the `?` help, so they cannot disagree.

use super::action::Action;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where the person is, which decides what a key means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The dashboard: path map, checks, findings, logs.
    Main,
    /// A finding's detail.
    Detail,
    /// The fix plan modal.
    FixModal,
    /// The help overlay.
    Help,
}

/// One key chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chord {
    /// The key.
    pub code: KeyCode,
    /// Modifiers that must be held (Shift is implied by upper-case characters).
    pub modifiers: KeyModifiers,
}

const fn key(code: KeyCode) -> Chord {
    Chord {
        code,
        modifiers: KeyModifiers::NONE,
    }
}

const fn ch(c: char) -> Chord {
    key(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Chord {
    Chord {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::CONTROL,
    }
}

/// One row of the keymap.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys, first one shown.
    pub keys: &'static [Chord],
    /// What they do.
    pub action: Action,
    /// Where they work.
    pub contexts: &'static [Context],
    /// The footer's word for it; empty keeps it out of the footer.
    pub hint: &'static str,
    /// The help's sentence.
    pub help: &'static str,
}

const MAIN_DETAIL: &[Context] = &[Context::Main, Context::Detail];
const EVERYWHERE: &[Context] = &[
    Context::Main,
    Context::Detail,
    Context::FixModal,
    Context::Help,
];

/// The keymap.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[key(KeyCode::Up), ch('k')],
        action: Action::Up,
        contexts: MAIN_DETAIL,
        hint: "",
        help: "move up (scroll in the detail)",
    },
    Binding {
        keys: &[key(KeyCode::Down), ch('j')],
        action: Action::Down,
        contexts: MAIN_DETAIL,
        hint: "move",
        help: "move down (scroll in the detail)",
    },
    Binding {
        keys: &[key(KeyCode::PageUp)],
        action: Action::PageUp,
        contexts: MAIN_DETAIL,
        hint: "",
        help: "a page up",
    },
    Binding {
        keys: &[key(KeyCode::PageDown)],
        action: Action::PageDown,
        contexts: MAIN_DETAIL,
        hint: "",
        help: "a page down",
    },
    Binding {
        keys: &[key(KeyCode::Home), ch('g')],
        action: Action::Top,
        contexts: MAIN_DETAIL,
        hint: "",
        help: "to the top",
    },
    Binding {
        keys: &[key(KeyCode::End), ch('G')],
        action: Action::Bottom,
        contexts: MAIN_DETAIL,
        hint: "",
        help: "to the bottom",
    },
    Binding {
        keys: &[key(KeyCode::Enter)],
        action: Action::Open,
        contexts: &[Context::Main],
        hint: "open",
        help: "on a check: its findings; on a finding: its detail",
    },
    Binding {
        keys: &[key(KeyCode::Tab)],
        action: Action::NextPane,
        contexts: &[Context::Main],
        hint: "pane",
        help: "next pane: checks, findings, logs",
    },
    Binding {
        keys: &[key(KeyCode::BackTab)],
        action: Action::PrevPane,
        contexts: &[Context::Main],
        hint: "",
        help: "previous pane",
    },
    Binding {
        keys: &[key(KeyCode::Esc)],
        action: Action::Back,
        contexts: &[Context::Detail, Context::FixModal, Context::Help],
        hint: "back",
        help: "close the detail, the fix plan or the help",
    },
    Binding {
        keys: &[ch('r')],
        action: Action::Rerun,
        contexts: MAIN_DETAIL,
        hint: "re-run",
        help: "re-run the selected check (repeats coalesce)",
    },
    Binding {
        keys: &[ch('R')],
        action: Action::RerunAll,
        contexts: MAIN_DETAIL,
        hint: "",
        help: "re-run every check",
    },
    Binding {
        keys: &[ch('f')],
        action: Action::FixPlan,
        contexts: MAIN_DETAIL,
        hint: "fix",
        help: "show the fix plan of the selected finding",
    },
    Binding {
        keys: &[ch('y')],
        action: Action::ApplyFix,
        contexts: &[Context::FixModal],
        hint: "apply",
        help: "in the fix plan: apply the plans shown, verify, roll back on failure",
    },
    Binding {
        keys: &[ch('/')],
        action: Action::Filter,
        contexts: &[Context::Main],
        hint: "filter",
        help: "filter checks and findings by text",
    },
    Binding {
        keys: &[ch('F')],
        action: Action::FailuresOnly,
        contexts: &[Context::Main],
        hint: "failures",
        help: "show only checks that did not pass",
    },
    Binding {
        keys: &[ch('e')],
        action: Action::ExportRunbook,
        contexts: MAIN_DETAIL,
        hint: "export",
        help: "write the runbook (RUNBOOK.md)",
    },
    Binding {
        keys: &[ch('J')],
        action: Action::WriteJson,
        contexts: MAIN_DETAIL,
        hint: "json",
        help: "write the JSON report",
    },
    Binding {
        keys: &[ch('?')],
        action: Action::Help,
        contexts: &[Context::Main, Context::Detail, Context::Help],
        hint: "help",
        help: "show or hide this help",
    },
    Binding {
        keys: &[ch('q'), ctrl('c')],
        action: Action::Quit,
        contexts: EVERYWHERE,
        hint: "quit",
        help: "quit (Ctrl-C too)",
    },
];

/// The action a key means in a context, if any.
#[must_use]
pub fn action_for(context: Context, event: KeyEvent) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.contexts.contains(&context))
        .find(|b| b.keys.iter().any(|k| matches(*k, event)))
        .map(|b| b.action)
}

fn matches(chord: Chord, event: KeyEvent) -> bool {
    // Terminals report Shift with upper-case letters and symbols inconsistently: compare the
    // character and only the modifiers that change its meaning.
    let significant = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
    chord.code == event.code && chord.modifiers == significant
}

/// A chord as the help and footer write it.
#[must_use]
pub fn chord_label(chord: Chord) -> String {
    let base = match chord.code {
        KeyCode::Up => "↑".to_string(),
        KeyCode::Down => "↓".to_string(),
        KeyCode::PageUp => "PgUp".to_string(),
        KeyCode::PageDown => "PgDn".to_string(),
        KeyCode::Home => "Home".to_string(),
        KeyCode::End => "End".to_string(),
        KeyCode::Enter => "Enter".to_string(),
        KeyCode::Tab => "Tab".to_string(),
        KeyCode::BackTab => "S-Tab".to_string(),
        KeyCode::Esc => "Esc".to_string(),
        KeyCode::Char(c) => c.to_string(),
        other => format!("{other:?}"),
    };
    if chord.modifiers.contains(KeyModifiers::CONTROL) {
        format!("C-{base}")
    } else {
        base
    }
}

/// All keys of a binding, joined (`↑/k`).
#[must_use]
pub fn keys_label(binding: &Binding) -> String {
    binding
        .keys
        .iter()
        .map(|k| chord_label(*k))
        .collect::<Vec<_>>()
        .join("/")
}

/// The footer's hints for a context: (keys, word), in table order.
#[must_use]
pub fn footer_hints(context: Context) -> Vec<(String, &'static str)> {
    // Help and quit first: on a narrow terminal the end of the footer is cut.
    let first = |b: &&Binding| !matches!(b.action, Action::Help | Action::Quit);
    let mut bindings: Vec<&Binding> = BINDINGS
        .iter()
        .filter(|b| b.contexts.contains(&context) && !b.hint.is_empty())
        .collect();
    bindings.sort_by_key(first);
    bindings
        .into_iter()
        .map(|b| {
            let keys = if b.action == Action::Down {
                "↑↓/jk".to_string()
            } else {
                chord_label(b.keys[0])
            };
            (keys, b.hint)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key means at most one thing in each context.
    #[test]
    fn no_key_is_bound_twice_in_a_context() {
        for ctx in [
            Context::Main,
            Context::Detail,
            Context::FixModal,
            Context::Help,
        ] {
            let mut seen = Vec::new();
            for b in BINDINGS.iter().filter(|b| b.contexts.contains(&ctx)) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{k:?} bound twice in {ctx:?}");
                    seen.push(*k);
                }
            }
        }
    }

    /// Upper-case letters match whether or not the terminal reports Shift; Ctrl-C quits.
    #[test]
    fn shift_and_ctrl() {
        let shifted = KeyEvent::new(KeyCode::Char('R'), KeyModifiers::SHIFT);
        assert_eq!(action_for(Context::Main, shifted), Some(Action::RerunAll));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(Context::FixModal, ctrl_c), Some(Action::Quit));
        let plain_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(action_for(Context::Main, plain_c), None);
    }
}
