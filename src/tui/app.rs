//! `App`: the dashboard's state — the run (the engine's [`RunState`], reduced from the same
//! events the headless face reads) plus view state (focus, selection, filter, modal). Keys arrive
//! as [`Action`]s; `update` changes state and returns the I/O to do as [`Effect`]s, so every
//! transition is testable without a terminal.

use super::action::{Action, CheckKey, Effect};
use super::keymap::{self, Context};
use super::path::{Stage, stage_of_check};
use super::theme::Theme;
use crate::engine::state::CheckEntry;
use crate::engine::{RunEvent, RunState};
use crate::model::{CheckStatus, EvidenceSource, Finding, FindingId};
use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::{BTreeMap, BTreeSet};

/// The panes Tab moves between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// Every check and its status.
    Checks,
    /// The findings, worst first.
    Findings,
    /// The lines behind the findings.
    Logs,
}

/// An overlay that takes the keys first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modal {
    /// The keys.
    Help,
    /// The selected finding's fix plan.
    FixPlan,
}

/// A row of the check list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckRow<'a> {
    /// A stage heading.
    Stage(Stage),
    /// A check on a target.
    Check(&'a CheckKey, &'a CheckEntry),
}

/// One line of the logs pane: an evidence line, where it came from, and the findings it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `file:line` or `host$ command` or the probe.
    pub source: String,
    /// The time the line gives.
    pub time: Option<String>,
    /// The line, verbatim (secrets redacted).
    pub text: String,
    /// The part a signature matched.
    pub matched: Option<[usize; 2]>,
    /// The findings it is evidence of (empty: a failure-looking line nothing explained).
    pub findings: Vec<FindingId>,
}

/// Rows a page moves.
pub const PAGE: usize = 10;

/// The fix engine's side of the fix modal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixPanel {
    /// Not asked yet.
    Idle,
    /// Reading the hosts to plan.
    Planning,
    /// The plans, as `pulldoctor fix` shows them; how many.
    Ready {
        /// The rendered plans (redacted).
        text: String,
        /// How many.
        plans: usize,
    },
    /// Planning failed.
    Failed(String),
    /// `y` was pressed: applying.
    Applying,
    /// Applied: one line per plan.
    Done(Vec<String>),
}

/// The dashboard state.
#[derive(Debug)]
pub struct App {
    /// The run, as the engine reported it.
    pub state: RunState,
    /// What the run reads (`replay incident.bundle.json`, `2 inputs, 5 hosts`).
    pub source: String,
    /// The clock the elapsed times are measured against (set by the loop; fixed in tests).
    pub now: DateTime<Utc>,
    /// Colours or not.
    pub theme: Theme,
    /// The focused pane.
    pub focus: Pane,
    /// The finding detail is open.
    pub detail: bool,
    /// An overlay.
    pub modal: Option<Modal>,
    /// The filter text.
    pub filter: String,
    /// Keys go to the filter.
    pub editing_filter: bool,
    /// Show only checks that did not pass.
    pub failures_only: bool,
    /// Selected check, among the visible ones.
    pub check_sel: usize,
    /// Selected finding, among the visible ones.
    pub finding_sel: usize,
    /// First logs line shown when scrolled by hand; `None` follows the selected finding.
    pub log_scroll: Option<usize>,
    /// Scroll of the detail.
    pub detail_scroll: u16,
    /// The last message for the footer (a file written, a key that did nothing).
    pub status: Option<String>,
    /// `--read-only`: fixes are refused.
    pub read_only: bool,
    /// Commands of each fix, by fix id, from the signature catalog.
    pub fix_commands: BTreeMap<String, Vec<String>>,
    /// Why this run cannot apply fixes (a replay; no inventory), or `None` when it can.
    pub fixes_unavailable: Option<String>,
    /// What the fix engine says about the finding in the fix modal.
    pub fix_panel: FixPanel,
    /// Spinner frame.
    pub frame: usize,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// Re-runs started and not yet finished.
    launched: BTreeSet<CheckKey>,
    /// Re-runs asked for while the check was busy: at most one each.
    queued: BTreeSet<CheckKey>,
    logs: Vec<LogLine>,
}

impl App {
    /// A dashboard for a run that has not started.
    #[must_use]
    pub fn new(source: String, theme: Theme) -> Self {
        App {
            state: RunState::default(),
            source,
            now: Utc::now(),
            theme,
            focus: Pane::Checks,
            detail: false,
            modal: None,
            filter: String::new(),
            editing_filter: false,
            failures_only: false,
            check_sel: 0,
            finding_sel: 0,
            log_scroll: None,
            detail_scroll: 0,
            status: None,
            read_only: false,
            fix_commands: BTreeMap::new(),
            fixes_unavailable: None,
            fix_panel: FixPanel::Idle,
            frame: 0,
            dirty: true,
            launched: BTreeSet::new(),
            queued: BTreeSet::new(),
            logs: Vec::new(),
        }
    }

    /// Which keymap context applies.
    #[must_use]
    pub fn context(&self) -> Context {
        match self.modal {
            Some(Modal::Help) => Context::Help,
            Some(Modal::FixPlan) => Context::FixModal,
            None if self.detail => Context::Detail,
            None => Context::Main,
        }
    }

    /// True while something on screen moves by itself (a running check's spinner and time):
    /// the loop ticks only then, so an idle dashboard uses no CPU.
    #[must_use]
    pub fn animating(&self) -> bool {
        self.state
            .checks
            .values()
            .any(|c| c.status == CheckStatus::Running)
    }

    /// Advance the spinner and the clock.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = now;
        self.frame = self.frame.wrapping_add(1);
        self.dirty = true;
    }

    /// Reduce one engine event; returns a queued re-run to start, if one is due.
    pub fn apply(&mut self, event: RunEvent) -> Vec<Effect> {
        let finished = match &event {
            RunEvent::CheckFinished { check, target, .. } => Some((check.clone(), target.clone())),
            _ => None,
        };
        self.state.apply(event);
        self.dirty = true;
        let mut effects = Vec::new();
        if let Some(key) = finished {
            self.launched.remove(&key);
            self.rebuild_logs();
            if self.queued.remove(&key) {
                self.status = Some(format!("re-running {} on {} (queued)", key.0, key.1));
                self.launched.insert(key.clone());
                effects.push(Effect::Rerun(vec![key]));
            }
        }
        self.clamp();
        effects
    }

    /// Handle a key: the filter takes typing first, then the keymap decides.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        if self.editing_filter {
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            match key.code {
                KeyCode::Char('c') if ctrl => return vec![Effect::Quit],
                KeyCode::Char(c) if !ctrl => self.filter.push(c),
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.filter.clear();
                    self.editing_filter = false;
                }
                _ => {}
            }
            self.check_sel = 0;
            self.finding_sel = 0;
            self.clamp();
            return Vec::new();
        }
        match keymap::action_for(self.context(), key) {
            Some(action) => self.update(action),
            None => Vec::new(),
        }
    }

    /// Carry out one action.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.dirty = true;
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(PAGE as isize)),
            Action::PageDown => self.move_by(PAGE as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::NextPane | Action::PrevPane => {
                let order = [Pane::Checks, Pane::Findings, Pane::Logs];
                let i = order.iter().position(|p| *p == self.focus).unwrap_or(0);
                let step = if action == Action::NextPane { 1 } else { 2 };
                self.focus = order[(i + step) % 3];
            }
            Action::Open => self.open(),
            Action::Back => {
                if self.modal.is_some() {
                    self.modal = None;
                } else {
                    self.detail = false;
                }
            }
            Action::Help => {
                self.modal = if self.modal == Some(Modal::Help) {
                    None
                } else {
                    Some(Modal::Help)
                };
            }
            Action::Filter => {
                self.editing_filter = true;
                self.status = None;
            }
            Action::FailuresOnly => {
                self.failures_only = !self.failures_only;
                self.check_sel = 0;
            }
            Action::FixPlan => {
                let Some(f) = self.selected_finding() else {
                    self.status =
                        Some("no finding selected: a fix plan belongs to a finding".into());
                    return Vec::new();
                };
                // the finding's own id first, then the hosts it names
                let mut selectors = vec![f.id.0.clone(), f.target.name.clone()];
                selectors.extend(f.subject.nodes.iter().cloned());
                self.modal = Some(Modal::FixPlan);
                if self.fixes_unavailable.is_none() && self.fix_panel != FixPanel::Applying {
                    self.fix_panel = FixPanel::Planning;
                    return vec![Effect::PlanFixes(selectors)];
                }
            }
            Action::ApplyFix => {
                if let Some(why) = self.apply_refusal() {
                    self.status = Some(why);
                } else {
                    self.fix_panel = FixPanel::Applying;
                    return vec![Effect::ApplyFixes];
                }
            }
            Action::Rerun => {
                return match self.selected_check() {
                    Some(key) => self.request_reruns(vec![key]),
                    None => {
                        self.status = Some("no check selected".into());
                        Vec::new()
                    }
                };
            }
            Action::RerunAll => {
                let keys = self.state.checks.keys().cloned().collect();
                return self.request_reruns(keys);
            }
            Action::WriteJson => return vec![Effect::WriteJson],
            Action::ExportRunbook => return vec![Effect::ExportRunbook],
        }
        self.clamp();
        Vec::new()
    }

    /// Why `y` would not apply anything now (`None`: it applies the plans shown).
    #[must_use]
    pub fn apply_refusal(&self) -> Option<String> {
        if self.read_only {
            return Some("not applied: --read-only refuses every fix".into());
        }
        if let Some(why) = &self.fixes_unavailable {
            return Some(format!("not applied: {why}"));
        }
        match &self.fix_panel {
            FixPanel::Ready { plans, .. } if *plans > 0 => None,
            FixPanel::Planning => Some("not yet: the hosts are still being read".into()),
            FixPanel::Applying => Some("already applying".into()),
            _ => Some("nothing to apply: pulldoctor has no plan for this finding".into()),
        }
    }

    /// The plans for the finding in the fix modal arrived (rendered and redacted), or planning
    /// failed.
    pub fn fixes_planned(&mut self, planned: Result<(String, usize), String>) {
        self.fix_panel = match planned {
            Ok((text, plans)) => FixPanel::Ready { text, plans },
            Err(e) => FixPanel::Failed(e),
        };
        self.dirty = true;
    }

    /// The applied plans' outcomes, one line each; every check runs again to show the result.
    pub fn fixes_applied(&mut self, lines: Vec<String>) -> Vec<Effect> {
        self.fix_panel = FixPanel::Done(lines);
        self.dirty = true;
        let keys = self.state.checks.keys().cloned().collect();
        self.request_reruns(keys)
    }

    /// Start what can start now; queue (once) what is still running.
    fn request_reruns(&mut self, keys: Vec<CheckKey>) -> Vec<Effect> {
        let mut start = Vec::new();
        let mut queued = 0;
        for key in keys {
            let busy = self.launched.contains(&key)
                || self.state.checks.get(&key).is_some_and(|c| {
                    matches!(c.status, CheckStatus::Pending | CheckStatus::Running)
                });
            if busy {
                self.queued.insert(key);
                queued += 1;
            } else {
                self.launched.insert(key.clone());
                start.push(key);
            }
        }
        self.status = Some(match (start.len(), queued) {
            (1, 0) => format!("re-running {} on {}", start[0].0, start[0].1),
            (n, 0) => format!("re-running {n} checks"),
            (0, q) => format!("{q} re-run(s) queued behind the run in progress"),
            (n, q) => format!("re-running {n} checks, {q} queued behind the run in progress"),
        });
        if start.is_empty() {
            Vec::new()
        } else {
            vec![Effect::Rerun(start)]
        }
    }

    /// Re-runs waiting for a busy check (for tests and the header).
    #[must_use]
    pub fn queued_reruns(&self) -> usize {
        self.queued.len()
    }

    fn open(&mut self) {
        match self.focus {
            Pane::Checks => {
                let Some(key) = self
                    .visible_checks()
                    .get(self.check_sel)
                    .map(|(k, _)| (*k).clone())
                else {
                    return;
                };
                match self
                    .visible_findings()
                    .iter()
                    .position(|f| f.check == key.0 && f.target == key.1)
                {
                    Some(i) => {
                        self.finding_sel = i;
                        self.focus = Pane::Findings;
                        self.log_scroll = None;
                    }
                    None => {
                        self.status = Some(format!("{} on {}: no findings", key.0, key.1));
                    }
                }
            }
            Pane::Findings | Pane::Logs => {
                if self.selected_finding().is_some() {
                    self.detail = true;
                    self.detail_scroll = 0;
                }
            }
        }
    }

    fn move_by(&mut self, delta: isize) {
        let shift = |v: usize, len: usize| -> usize {
            let max = len.saturating_sub(1) as isize;
            (v as isize).saturating_add(delta).clamp(0, max.max(0)) as usize
        };
        if self.detail {
            let d = (self.detail_scroll as isize)
                .saturating_add(delta)
                .clamp(0, u16::MAX as isize);
            self.detail_scroll = d as u16;
            return;
        }
        match self.focus {
            Pane::Checks => self.check_sel = shift(self.check_sel, self.visible_checks().len()),
            Pane::Findings => {
                self.finding_sel = shift(self.finding_sel, self.visible_findings().len());
                self.log_scroll = None;
            }
            Pane::Logs => {
                let from = self.log_scroll.unwrap_or_else(|| self.log_anchor());
                self.log_scroll = Some(shift(from, self.logs.len()));
            }
        }
    }

    fn clamp(&mut self) {
        self.check_sel = self
            .check_sel
            .min(self.visible_checks().len().saturating_sub(1));
        self.finding_sel = self
            .finding_sel
            .min(self.visible_findings().len().saturating_sub(1));
        if self.detail && self.selected_finding().is_none() {
            self.detail = false;
        }
        if self.modal == Some(Modal::FixPlan) && self.selected_finding().is_none() {
            self.modal = None;
        }
    }

    fn matches_filter(&self, hay: &[&str]) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let needle = self.filter.to_lowercase();
        hay.iter().any(|h| h.to_lowercase().contains(&needle))
    }

    /// The checks shown, in path order (stage, then check and target).
    #[must_use]
    pub fn visible_checks(&self) -> Vec<(&CheckKey, &CheckEntry)> {
        let mut v: Vec<(&CheckKey, &CheckEntry)> = self
            .state
            .checks
            .iter()
            .filter(|(_, e)| {
                !self.failures_only
                    || !matches!(
                        e.status,
                        CheckStatus::Passed | CheckStatus::Pending | CheckStatus::Running
                    )
            })
            .filter(|((c, t), e)| self.matches_filter(&[&c.0, &t.name, status_word(&e.status)]))
            .collect();
        // The state's map is already sorted by key: a stable sort by stage keeps that order within.
        v.sort_by_key(|((c, t), _)| stage_of_check(c, t));
        v
    }

    /// The check list with a heading before each stage.
    #[must_use]
    pub fn check_rows(&self) -> Vec<CheckRow<'_>> {
        let mut rows = Vec::new();
        let mut last = None;
        for (key, entry) in self.visible_checks() {
            let stage = stage_of_check(&key.0, &key.1);
            if last != Some(stage) {
                rows.push(CheckRow::Stage(stage));
                last = Some(stage);
            }
            rows.push(CheckRow::Check(key, entry));
        }
        rows
    }

    /// The findings shown, worst first.
    #[must_use]
    pub fn visible_findings(&self) -> Vec<&Finding> {
        self.filter_findings(self.state.findings_sorted())
    }

    /// The findings of `all` (sorted) that the filter lets through.
    #[must_use]
    pub fn filter_findings<'a>(&self, all: Vec<&'a Finding>) -> Vec<&'a Finding> {
        if self.filter.is_empty() {
            return all;
        }
        all.into_iter()
            .filter(|f| {
                let nodes = f.subject.nodes.join(" ");
                self.matches_filter(&[&f.title, f.class.id(), &f.check.0, &f.target.name, &nodes])
            })
            .collect()
    }

    /// The finding selected (in the findings pane, or the one whose detail is open).
    #[must_use]
    pub fn selected_finding(&self) -> Option<&Finding> {
        self.visible_findings().get(self.finding_sel).copied()
    }

    /// The check a re-run applies to: the focused finding's, else the check list's selection.
    #[must_use]
    pub fn selected_check(&self) -> Option<CheckKey> {
        if (self.detail || self.focus != Pane::Checks)
            && let Some(f) = self.selected_finding()
        {
            return Some((f.check.clone(), f.target.clone()));
        }
        self.visible_checks()
            .get(self.check_sel)
            .map(|(k, _)| (*k).clone())
    }

    /// Every evidence line, by source and line number.
    #[must_use]
    pub fn log_lines(&self) -> &[LogLine] {
        &self.logs
    }

    /// The first logs line shown: where the hand left it, else the selected finding's first line.
    #[must_use]
    pub fn log_top(&self, selected: Option<&Finding>) -> usize {
        self.log_scroll
            .unwrap_or_else(|| self.first_log_line_of(selected))
    }

    fn log_anchor(&self) -> usize {
        self.first_log_line_of(self.selected_finding())
    }

    fn first_log_line_of(&self, finding: Option<&Finding>) -> usize {
        finding
            .and_then(|f| self.logs.iter().position(|l| l.findings.contains(&f.id)))
            .unwrap_or(0)
    }

    fn rebuild_logs(&mut self) {
        let mut by_place: BTreeMap<(String, u64, String), LogLine> = BTreeMap::new();
        let evidence = self
            .state
            .findings_sorted()
            .into_iter()
            .flat_map(|f| f.evidence.iter().map(move |e| (Some(f.id.clone()), e)))
            .chain(self.state.unclassified.iter().map(|e| (None, e)));
        for (finding, e) in evidence {
            let (source, line) = match &e.source {
                EvidenceSource::File { path, line } => (format!("{path}:{line}"), *line),
                EvidenceSource::Command { host, command } => (format!("{host}$ {command}"), 0),
                EvidenceSource::Probe { request } => (request.clone(), 0),
            };
            let place = match &e.source {
                EvidenceSource::File { path, .. } => path.clone(),
                _ => source.clone(),
            };
            let entry = by_place
                .entry((place, line, e.text.clone()))
                .or_insert_with(|| LogLine {
                    source,
                    time: e.time.clone(),
                    text: e.text.clone(),
                    matched: e.matched,
                    findings: Vec::new(),
                });
            if let Some(id) = finding
                && !entry.findings.contains(&id)
            {
                entry.findings.push(id);
            }
        }
        self.logs = by_place.into_values().collect();
    }
}

/// A status in one word (also what the filter matches).
#[must_use]
pub fn status_word(status: &CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pending => "pending",
        CheckStatus::Running => "running",
        CheckStatus::Passed => "pass",
        CheckStatus::Failed => "fail",
        CheckStatus::Skipped { .. } => "skipped",
        CheckStatus::Errored { .. } => "error",
        CheckStatus::TimedOut { .. } => "timed out",
    }
}
