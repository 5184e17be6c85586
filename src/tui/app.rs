//! The dashboard's state and its one entry point, `App::update`: messages in (journal events,
//! keys, control replies, liveness, clock ticks, raw PTY bytes), actions out (control
//! requests, quit, attach). No I/O, no clock: everything arrives as a message, so tests drive
//! it exactly as the terminal loop does.

use std::collections::VecDeque;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::theme::Theme;
use crate::coordinator::control::{ControlCommand, ControlReply, ControlRequest};
use crate::coordinator::journal::COORDINATOR;
use crate::coordinator::replay::SessionHistory;
use crate::event::{AgentEvent, EventType};
use crate::timestamp::Timestamp;
use crate::worker::{WorkerState, WorkerSummary};

/// Events kept for the log panel; older ones drop off (the journals keep everything).
pub const LOG_CAPACITY: usize = 20_000;
/// Output lines kept per worker pane.
const PANE_LINES: usize = 50;
/// Transcript lines kept per worker for the zoomed view.
const TRANSCRIPT_CAPACITY: usize = 5_000;
/// Scrollback of the zoomed PTY screen.
const SCREEN_SCROLLBACK: usize = 2_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Event(AgentEvent),
    Key(KeyEvent),
    Reply(ControlReply),
    /// Whether the session's coordinator is alive.
    Liveness(bool),
    Tick(Timestamp),
    /// Bytes a worker's terminal produced (for the zoomed PTY screen).
    Raw {
        worker: String,
        bytes: Vec<u8>,
    },
    /// The terminal changed size: everything is laid out again.
    Resize,
    /// Each worker's latest resource sample: (percent of one CPU, resident MiB).
    Usage(std::collections::BTreeMap<String, (f64, i64)>),
    /// When each journal began (its first line), by worker (`coordinator` for the session):
    /// the dashboard reads only the journals' tails, and durations must still be right.
    Origins(std::collections::BTreeMap<String, Timestamp>),
    /// What each worker's whole journal adds up to (see `worker::summary`), read on opening:
    /// states and totals are right however little of a journal the tail reaches.
    Summaries(std::collections::BTreeMap<String, WorkerSummary>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Control(ControlRequest),
    Quit,
    /// Hand the terminal to `orchestrate attach` for this worker.
    Attach(String),
    /// Start feeding this worker's raw output as `Msg::Raw` (zoomed screen view).
    WatchScreen(String),
    /// Start the session's coordinator again (it is dead), running these failed tasks anew.
    Resume {
        retry: Vec<String>,
    },
    /// Suspend the dashboard and run `program` (the operator's editor or shell) in `dir`.
    Open {
        program: OpenWith,
        dir: String,
    },
    /// Ring the terminal's bell: an agent waits for the operator.
    Bell,
    /// A desktop notification through the terminal (OSC 9), for terminals that show one.
    Notify(String),
}

/// What `e` and `o` open a worker's directory with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenWith {
    /// `$VISUAL`, `$EDITOR`, else `vi`.
    Editor,
    /// `$SHELL`, else `sh`.
    Shell,
}

/// The panels Tab moves between, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Workers,
    Log,
    Reviews,
    Decisions,
}

impl Focus {
    const ORDER: [Focus; 4] = [Focus::Workers, Focus::Log, Focus::Reviews, Focus::Decisions];

    fn step(self, forward: bool) -> Focus {
        let at = Focus::ORDER.iter().position(|f| *f == self).unwrap_or(0);
        let n = Focus::ORDER.len();
        Focus::ORDER[if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        }]
    }

    /// Reviews and decisions share the side of the screen.
    pub fn is_side(self) -> bool {
        matches!(self, Focus::Reviews | Focus::Decisions)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoomMode {
    Transcript,
    Screen,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help,
    /// Asks before stopping: the request to send on `y`.
    Confirm {
        question: String,
        request: ControlRequest,
    },
    /// Typing a log search.
    Search(String),
    /// One review verdict in full: its summary and findings (index into `App::reviews`).
    Review(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub time: Timestamp,
    pub worker: Arc<str>,
    pub task: Option<Arc<str>>,
    pub kind: EventType,
    pub text: String,
}

/// One worker as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct WorkerPane {
    pub name: String,
    pub agent: String,
    pub task: Option<String>,
    /// Its state and totals over its whole journal: the summary the worker keeps, then every
    /// event after it (see `adopt`).
    pub counted: WorkerSummary,
    pub progress: Option<u8>,
    /// The last tool call or command.
    pub activity: String,
    /// The last lines of what it said or printed.
    pub lines: VecDeque<String>,
    pub transcript: VecDeque<(EventType, String)>,
    pub last_event: Timestamp,
    /// Events numbered below this are in the adopted summary already (see `adopt`).
    adopted_to: u64,
}

impl WorkerPane {
    fn new(event: &AgentEvent) -> Self {
        WorkerPane {
            name: event.worker.to_string(),
            agent: event.agent.to_string(),
            task: event.task.as_deref().map(str::to_string),
            counted: WorkerSummary::default(),
            progress: None,
            activity: String::new(),
            lines: VecDeque::new(),
            transcript: VecDeque::new(),
            last_event: event.timestamp,
            adopted_to: 0,
        }
    }

    pub fn state(&self) -> WorkerState {
        self.counted.status.state()
    }

    /// What the worker is doing now: retrying its model API, or its last tool call.
    pub fn current_activity(&self) -> &str {
        match &self.counted.status.retrying {
            Some(retrying) => &retrying.text,
            None => &self.activity,
        }
    }

    /// Takes what the worker's summary says of its whole journal (state, totals, run start,
    /// tool calls): the tail read on opening may not reach back that far. Events before the
    /// summary's end still show, but are not counted again.
    fn adopt(&mut self, summary: WorkerSummary) {
        self.adopted_to = summary.next_seq;
        self.counted = summary;
    }

    fn observe(&mut self, e: &AgentEvent) {
        self.last_event = e.timestamp;
        if e.seq >= self.adopted_to {
            self.counted.observe(e);
        }
        let text = e.text().to_string();
        match e.kind {
            EventType::Progress => match e.str_field("kind") {
                Some("tool_call" | "command" | "file_change") => self.activity = text.clone(),
                // A tool's result is in the transcript; the pane keeps what was said.
                Some("tool_result") => {}
                _ => push_bounded(&mut self.lines, text.clone(), PANE_LINES),
            },
            EventType::Task => {
                if let Some(p) = e.i64_field("progress") {
                    self.progress = Some(p.clamp(0, 100) as u8);
                }
            }
            EventType::Status if e.phase() == Some("output") => {
                push_bounded(&mut self.lines, text.clone(), PANE_LINES)
            }
            EventType::Blocker | EventType::Error | EventType::Finding | EventType::Review => {
                push_bounded(&mut self.lines, text.clone(), PANE_LINES)
            }
            _ => {}
        }
        if let Some(p) = e
            .i64_field("progress")
            .filter(|_| e.kind != EventType::Task)
        {
            self.progress = Some(p.clamp(0, 100) as u8);
        }
        push_bounded(&mut self.transcript, (e.kind, text), TRANSCRIPT_CAPACITY);
    }
}

/// A review verdict from the coordinator's journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewEntry {
    /// The review's id (`r1`) and the worker whose work it reviewed.
    pub review: String,
    pub worker: String,
    pub reviewer: String,
    pub verdict: String,
    pub summary: String,
    /// `severity file:line text`, one per finding.
    pub findings: Vec<String>,
}

/// A reviewer's finding as one line: `high src/a.rs:12 the error is swallowed`.
fn finding_line(finding: &serde_json::Value) -> String {
    let text = |key: &str| finding[key].as_str().unwrap_or("").trim().to_string();
    let place = match (text("file"), finding["line"].as_u64()) {
        (file, _) if file.is_empty() => String::new(),
        (file, Some(line)) => format!("{file}:{line} "),
        (file, None) => format!("{file} "),
    };
    let severity = text("severity");
    let severity = if severity.is_empty() {
        "note".to_string()
    } else {
        severity
    };
    format!("{severity} {place}{}", text("text"))
}

/// An approval an agent waits for (a `confirm` of the sandbox).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalEntry {
    pub id: String,
    pub worker: String,
    pub what: String,
    pub reason: String,
}

/// A decision of the policy from the coordinator's journal.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionEntry {
    pub rule: String,
    pub action: String,
    pub reason: String,
    /// The worker a review decision is about.
    pub worker: Option<String>,
}

pub struct App {
    pub session: String,
    pub goal: String,
    pub theme: Theme,
    pub history: SessionHistory,
    pub coordinator_alive: bool,
    pub now: Timestamp,
    pub started: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub workers: Vec<WorkerPane>,
    pub log: VecDeque<LogEntry>,
    pub reviews: Vec<ReviewEntry>,
    pub decisions: Vec<DecisionEntry>,
    /// Open approvals, oldest first.
    pub approvals: Vec<ApprovalEntry>,
    /// A review found a blocker and the session waits for the operator: the banner's text.
    pub escalation: Option<String>,
    /// Tasks recovery holds for the operator, with the fix it suggests (until they run again).
    pub held: std::collections::BTreeMap<String, String>,
    /// The paths each worker holds a lease on (from the coordinator's `lease_*` decisions).
    pub leases: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    /// A desktop notification is due (OSC 9), with the bell.
    notify: Option<String>,
    /// When each journal began (see `Msg::Origins`).
    origins: std::collections::BTreeMap<String, Timestamp>,
    /// Summaries of workers that have no pane yet: taken when their first event arrives.
    summaries: std::collections::BTreeMap<String, WorkerSummary>,
    /// Each worker's latest resource sample, from the coordinator's database rows.
    pub usage: std::collections::BTreeMap<String, (f64, i64)>,
    /// A bell is due: set when an approval arrives live, taken by the next update.
    bell: bool,
    pub focus: Focus,
    pub selected: usize,
    /// Worker panes per row as last drawn: up and down move by a row.
    pub grid_columns: usize,
    /// The running counters as last drawn (see `view::clocks`).
    pub clock_spots: Vec<crate::tui::view::clocks::ClockSpot>,
    /// Lines scrolled in the reviews and decisions panels.
    pub reviews_scroll: usize,
    pub decisions_scroll: usize,
    pub zoom: Option<(String, ZoomMode)>,
    pub zoom_scroll: usize,
    pub overlay: Option<Overlay>,
    /// Log view: lines scrolled up from the end (0 follows the end).
    pub log_scroll: usize,
    pub log_type: Option<EventType>,
    pub log_worker: Option<String>,
    pub search: Option<String>,
    /// The last control reply or notice, shown in the footer.
    pub notice: Option<(bool, String)>,
    pub screen: Option<(String, vt100::Parser)>,
}

impl App {
    pub fn new(session: &str, goal: &str, theme: Theme, now: Timestamp) -> App {
        App {
            session: session.to_string(),
            goal: goal.to_string(),
            theme,
            history: SessionHistory::default(),
            coordinator_alive: true,
            now,
            started: None,
            finished_at: None,
            workers: Vec::new(),
            log: VecDeque::new(),
            reviews: Vec::new(),
            decisions: Vec::new(),
            approvals: Vec::new(),
            escalation: None,
            held: std::collections::BTreeMap::new(),
            leases: std::collections::BTreeMap::new(),
            notify: None,
            origins: std::collections::BTreeMap::new(),
            summaries: std::collections::BTreeMap::new(),
            usage: Default::default(),
            bell: false,
            focus: Focus::Workers,
            selected: 0,
            grid_columns: 1,
            clock_spots: Vec::new(),
            reviews_scroll: 0,
            decisions_scroll: 0,
            zoom: None,
            zoom_scroll: 0,
            overlay: None,
            log_scroll: 0,
            log_type: None,
            log_worker: None,
            search: None,
            notice: None,
            screen: None,
        }
    }

    /// The session's one-word state, as every surface says it.
    pub fn state(&self) -> &str {
        self.history.state(self.coordinator_alive)
    }

    pub fn selected_worker(&self) -> Option<&WorkerPane> {
        self.workers.get(self.selected)
    }

    /// A worker's state as shown: interrupted when its coordinator is dead.
    pub fn pane_state(&self, pane: &WorkerPane) -> WorkerState {
        pane.state().seen_with(self.coordinator_alive)
    }

    /// Applies a message; returns what the loop must do and whether the screen changed.
    pub fn update(&mut self, msg: Msg) -> (Vec<Action>, bool) {
        match msg {
            Msg::Event(e) => {
                self.on_event(e);
                let bell = std::mem::take(&mut self.bell);
                let mut actions = if bell { vec![Action::Bell] } else { Vec::new() };
                if let Some(text) = self.notify.take() {
                    actions.push(Action::Notify(text));
                }
                (actions, true)
            }
            Msg::Key(key) => {
                if key.kind != KeyEventKind::Press {
                    return (Vec::new(), false);
                }
                (self.on_key(key), true)
            }
            Msg::Reply(reply) => {
                self.notice = Some((reply.ok, reply.message));
                (Vec::new(), true)
            }
            Msg::Liveness(alive) => {
                let changed = alive != self.coordinator_alive;
                self.coordinator_alive = alive;
                if changed && !alive && self.history.finished.is_none() {
                    self.notice = Some((
                        false,
                        format!(
                            "the coordinator is not running: R resumes the session (orchestrate resume {})",
                            self.session
                        ),
                    ));
                }
                (Vec::new(), changed)
            }
            Msg::Tick(now) => {
                // Only the elapsed-time counters change with time, and only while running.
                let visible =
                    self.finished_at.is_none() && now.millis() / 1000 != self.now.millis() / 1000;
                self.now = now;
                (Vec::new(), visible)
            }
            Msg::Resize => (Vec::new(), true),
            Msg::Usage(usage) => {
                let changed = usage != self.usage;
                self.usage = usage;
                (Vec::new(), changed)
            }
            Msg::Origins(origins) => {
                if let Some(first) = origins.get(COORDINATOR) {
                    self.started = Some(self.started.map_or(*first, |s| s.min(*first)));
                }
                self.origins = origins;
                (Vec::new(), true)
            }
            Msg::Summaries(summaries) => {
                for (name, summary) in summaries {
                    match self.workers.iter_mut().find(|w| w.name == name) {
                        Some(pane) => pane.adopt(summary),
                        None => {
                            self.summaries.insert(name, summary);
                        }
                    }
                }
                (Vec::new(), true)
            }
            Msg::Raw { worker, bytes } => match &mut self.screen {
                Some((name, parser)) if *name == worker => {
                    parser.process(&bytes);
                    (Vec::new(), true)
                }
                _ => (Vec::new(), false),
            },
        }
    }

    /// When a worker's current run started: its `spawned` event, or, when the tail read on
    /// opening did not reach it, when its journal began.
    pub fn pane_started(&self, pane: &WorkerPane) -> Option<Timestamp> {
        pane.counted
            .spawned_at
            .or_else(|| self.origins.get(&pane.name).copied())
    }

    fn on_event(&mut self, e: AgentEvent) {
        if self.started.is_none() {
            self.started = Some(e.timestamp);
        }
        let from_coordinator = &*e.worker == COORDINATOR;
        if from_coordinator {
            self.history.observe(&e);
            // The operator resumed or stopped the session: the escalation is answered.
            if !self.history.paused || self.history.stopping {
                self.escalation = None;
            }
            if e.phase() == Some("session_finished") {
                self.finished_at = Some(e.timestamp);
                self.held.clear();
            }
            // A held task that runs again (or stops) is not waiting any more.
            if matches!(
                e.phase(),
                Some("task_started" | "task_restarted" | "task_stopped")
            ) && let Some(task) = e.task.as_deref()
            {
                self.held.remove(task);
            }
            match e.kind {
                // A verdict; the request itself is in the log. One kept from a review a
                // restart cut short is listed already.
                EventType::Review
                    if e.str_field("verdict").is_some() && e.str_field("kept_from").is_none() =>
                {
                    self.reviews.push(ReviewEntry {
                        review: e.str_field("review").unwrap_or("?").to_string(),
                        worker: e.str_field("worker").unwrap_or("?").to_string(),
                        reviewer: e.str_field("reviewer").unwrap_or("?").to_string(),
                        verdict: e.str_field("verdict").unwrap_or("?").to_string(),
                        summary: e.str_field("summary").unwrap_or(e.text()).to_string(),
                        findings: e
                            .payload
                            .get("findings")
                            .and_then(|f| f.as_array())
                            .into_iter()
                            .flatten()
                            .map(finding_line)
                            .collect(),
                    })
                }
                EventType::Recovery => self.observe_recovery(&e),
                EventType::Decision => {
                    self.decisions.push(DecisionEntry {
                        // The review policy numbers its rules; the sandbox names its own.
                        rule: match e.payload.get("rule") {
                            Some(serde_json::Value::String(rule)) => rule.clone(),
                            Some(serde_json::Value::Number(n)) => format!("rule {n}"),
                            _ => "?".into(),
                        },
                        action: e.str_field("action").unwrap_or("?").to_string(),
                        reason: e.str_field("reason").unwrap_or(e.text()).to_string(),
                        worker: e.str_field("worker").map(str::to_string),
                    });
                    self.observe_approval(&e);
                    self.observe_lease(&e);
                    if e.str_field("action") == Some("stop_and_escalate") {
                        self.escalation = Some(format!(
                            "a review found a blocker in {}'s work; the session is paused",
                            e.str_field("worker").unwrap_or("a worker")
                        ));
                        self.bell = self.finished_at.is_none()
                            && e.timestamp.millis() + 10_000 > self.now.millis();
                    }
                }
                _ => {}
            }
        } else {
            let index = match self.workers.iter().position(|w| *w.name == *e.worker) {
                Some(i) => i,
                None => {
                    let mut pane = WorkerPane::new(&e);
                    if let Some(summary) = self.summaries.remove(&*e.worker) {
                        pane.adopt(summary);
                    }
                    self.workers.push(pane);
                    self.workers.len() - 1
                }
            };
            self.workers[index].observe(&e);
        }
        let entry = LogEntry {
            time: e.timestamp,
            worker: e.worker.clone(),
            task: e.task.clone(),
            kind: e.kind,
            text: e.text().to_string(),
        };
        // A scrolled-back log keeps its place while new lines arrive.
        if self.log_scroll > 0 && self.shows(&entry) {
            self.log_scroll += 1;
        }
        // Journals arrive file by file; the log is one timeline, so each entry goes in at its
        // time (almost always the end: the search from the back is short).
        let at = self
            .log
            .iter()
            .rposition(|e| e.time <= entry.time)
            .map_or(0, |i| i + 1);
        if self.log.len() == LOG_CAPACITY {
            if at == 0 {
                return; // Older than everything kept.
            }
            self.log.pop_front();
            self.log.insert(at - 1, entry);
        } else {
            self.log.insert(at, entry);
        }
    }

    /// Recovery's steps fill the decisions panel; an escalation holds its task (a banner, the
    /// bell, a desktop notification) until the task runs again.
    fn observe_recovery(&mut self, e: &AgentEvent) {
        let phase = e.phase().unwrap_or("");
        let task = e.task.as_deref().unwrap_or("").to_string();
        // What recovery did; what it recognised and prepared stays in the log.
        if let Some(action) = phase.strip_prefix("recovery_")
            && !matches!(action, "detected" | "prepare")
        {
            self.decisions.push(DecisionEntry {
                rule: e.str_field("rule").unwrap_or(action).to_string(),
                action: format!("recovery: {action}"),
                reason: e.text().to_string(),
                worker: e.str_field("worker").map(str::to_string),
            });
        }
        if phase == "recovery_escalated" {
            let fix = e.str_field("fix").unwrap_or(e.text()).to_string();
            self.held.insert(task.clone(), fix.clone());
            // Only for what happens now, not for history read on opening.
            if self.finished_at.is_none() && e.timestamp.millis() + 10_000 > self.now.millis() {
                self.bell = true;
                self.notify = Some(format!("orchestrate: task {task} needs you: {fix}"));
            }
        }
    }

    /// Approvals open and close with the coordinator's `approval_*` decisions.
    fn observe_approval(&mut self, e: &AgentEvent) {
        let Some(id) = e.str_field("approval") else {
            return;
        };
        match e.phase() {
            Some("approval_requested") if !self.approvals.iter().any(|a| a.id == id) => {
                self.approvals.push(ApprovalEntry {
                    id: id.to_string(),
                    worker: e.str_field("worker").unwrap_or("?").to_string(),
                    what: e.str_field("what").unwrap_or("").to_string(),
                    reason: e.str_field("reason").unwrap_or("").to_string(),
                });
                // Rings for what happens now, not for history read on opening.
                self.bell =
                    self.finished_at.is_none() && e.timestamp.millis() + 10_000 > self.now.millis();
            }
            Some("approval_answered") => self.approvals.retain(|a| a.id != id),
            _ => {}
        }
    }

    /// Leases come with `lease_granted` and go with `lease_released`.
    fn observe_lease(&mut self, e: &AgentEvent) {
        let Some(worker) = e.str_field("worker") else {
            return;
        };
        match e.phase() {
            Some("lease_granted") => {
                if let Some(path) = e.str_field("path") {
                    self.leases
                        .entry(worker.to_string())
                        .or_default()
                        .insert(path.to_string());
                }
            }
            Some("lease_released") => {
                if let Some(held) = self.leases.get_mut(worker) {
                    for path in e
                        .payload
                        .get("paths")
                        .and_then(|p| p.as_array())
                        .into_iter()
                        .flatten()
                    {
                        held.remove(path.as_str().unwrap_or(""));
                    }
                    if held.is_empty() {
                        self.leases.remove(worker);
                    }
                }
            }
            _ => {}
        }
    }

    /// The open approval of the selected worker, oldest first.
    pub fn selected_approval(&self) -> Option<&ApprovalEntry> {
        let worker = self.selected_worker()?;
        self.approvals.iter().find(|a| a.worker == worker.name)
    }

    /// Whether the log's filters and search let `entry` through.
    pub fn shows(&self, entry: &LogEntry) -> bool {
        self.log_type.is_none_or(|t| t == entry.kind)
            && self
                .log_worker
                .as_deref()
                .is_none_or(|w| *entry.worker == *w)
            && self
                .search
                .as_deref()
                .is_none_or(|s| entry.text.to_lowercase().contains(&s.to_lowercase()))
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        // Ctrl-C always leaves, like q.
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return vec![Action::Quit];
        }
        if let Some(overlay) = self.overlay.clone() {
            return self.on_overlay_key(overlay, key);
        }
        if self.zoom.is_some()
            && let Some(actions) = self.on_zoom_key(key)
        {
            return actions;
        }
        match key.code {
            KeyCode::Char('q') => return vec![Action::Quit],
            KeyCode::Char('?') => self.overlay = Some(Overlay::Help),
            KeyCode::Tab => self.focus = self.focus.step(true),
            KeyCode::BackTab => self.focus = self.focus.step(false),
            KeyCode::Esc
                if self.search.is_some()
                    || self.log_type.is_some()
                    || self.log_worker.is_some() =>
            {
                self.search = None;
                self.log_type = None;
                self.log_worker = None;
                self.log_scroll = 0;
            }
            KeyCode::Enter if self.focus == Focus::Reviews => {
                // The panel lists the newest first, from the one scrolled to.
                if let Some(index) = self.reviews.len().checked_sub(self.reviews_scroll + 1) {
                    self.overlay = Some(Overlay::Review(index));
                }
            }
            KeyCode::Char('c') if self.selected_awaits_clarify() => return self.clarify_key(),
            KeyCode::Enter if self.focus == Focus::Workers => {
                if let Some(w) = self.selected_worker() {
                    self.zoom = Some((w.name.clone(), ZoomMode::Transcript));
                    self.zoom_scroll = 0;
                }
            }
            KeyCode::Char('r') if self.selected_has_failed() => return self.restart_key(),
            KeyCode::Char('R') if !self.coordinator_alive => return self.resume_key(),
            KeyCode::Char(c @ ('p' | 'P' | 'r' | 'R' | 's' | 'S' | 'v' | 'V')) => {
                return self.command_key(c);
            }
            KeyCode::Char(c @ ('y' | 'n')) if self.selected_approval().is_some() => {
                return self.answer_key(c == 'y');
            }
            KeyCode::Char('e') if self.focus == Focus::Workers => {
                return self.open_key(OpenWith::Editor);
            }
            KeyCode::Char('o') if self.focus == Focus::Workers => {
                return self.open_key(OpenWith::Shell);
            }
            KeyCode::Char('/') if self.focus == Focus::Log => {
                self.overlay = Some(Overlay::Search(String::new()))
            }
            KeyCode::Char('t') if self.focus == Focus::Log => {
                self.log_type = next_type(self.log_type)
            }
            KeyCode::Char('w') if self.focus == Focus::Log => {
                self.log_worker = match &self.log_worker {
                    Some(_) => None,
                    None => self.selected_worker().map(|w| w.name.clone()),
                };
                self.log_scroll = 0;
            }
            KeyCode::Char('G') | KeyCode::End if self.focus == Focus::Log => self.log_scroll = 0,
            KeyCode::Char('g') | KeyCode::Home if self.focus == Focus::Log => {
                self.log_scroll = usize::MAX / 2
            }
            // In the grid of panes, up and down move by a row, as it is drawn.
            KeyCode::Up | KeyCode::Char('k') => self.move_up(self.row_step()),
            KeyCode::Down | KeyCode::Char('j') => self.move_down(self.row_step()),
            KeyCode::Left | KeyCode::Char('h') if self.focus == Focus::Workers => {
                self.selected = self.selected.saturating_sub(1)
            }
            KeyCode::Right | KeyCode::Char('l') if self.focus == Focus::Workers => {
                self.select(self.selected + 1)
            }
            KeyCode::PageUp => self.move_up(10),
            KeyCode::PageDown => self.move_down(10),
            _ => {}
        }
        Vec::new()
    }

    fn row_step(&self) -> usize {
        if self.focus == Focus::Workers {
            self.grid_columns.max(1)
        } else {
            1
        }
    }

    fn move_up(&mut self, n: usize) {
        match self.focus {
            // A row up from the top row stays put, as in any grid.
            Focus::Workers => self.selected = self.selected.checked_sub(n).unwrap_or(self.selected),
            Focus::Log => self.log_scroll = self.log_scroll.saturating_add(n),
            Focus::Reviews => self.reviews_scroll = self.reviews_scroll.saturating_sub(n),
            Focus::Decisions => self.decisions_scroll = self.decisions_scroll.saturating_sub(n),
        }
    }

    fn move_down(&mut self, n: usize) {
        match self.focus {
            Focus::Workers if self.selected + n < self.workers.len() => self.selected += n,
            Focus::Workers => {}
            Focus::Log => self.log_scroll = self.log_scroll.saturating_sub(n),
            Focus::Reviews => {
                self.reviews_scroll =
                    (self.reviews_scroll + n).min(self.reviews.len().saturating_sub(1))
            }
            Focus::Decisions => {
                self.decisions_scroll =
                    (self.decisions_scroll + n).min(self.decisions.len().saturating_sub(1))
            }
        }
    }

    /// True when the selected worker's task failed or was stopped: `r` runs it again.
    fn selected_has_failed(&self) -> bool {
        self.focus == Focus::Workers
            && self.selected_worker().is_some_and(|w| {
                w.task.is_some() && matches!(w.state(), WorkerState::Failed | WorkerState::Stopped)
            })
    }

    /// `r` on a failed worker: its task runs again (through the coordinator, or a new one).
    fn restart_key(&mut self) -> Vec<Action> {
        let Some(w) = self.selected_worker() else {
            return Vec::new();
        };
        let (name, task) = (w.name.clone(), w.task.clone().unwrap_or_default());
        if self.coordinator_alive {
            self.notice = Some((true, format!("restarting task {task}…")));
            return vec![Action::Control(ControlRequest::new(
                ControlCommand::Restart,
                Some(name),
            ))];
        }
        self.notice = Some((true, format!("resuming the session to run {task} again…")));
        vec![Action::Resume { retry: vec![task] }]
    }

    /// `y` / `n`: the selected worker's oldest open approval, answered.
    fn answer_key(&mut self, approve: bool) -> Vec<Action> {
        let Some(approval) = self.selected_approval().cloned() else {
            return Vec::new();
        };
        let cmd = if approve {
            ControlCommand::Approve
        } else {
            ControlCommand::Deny
        };
        self.notice = Some((
            true,
            format!(
                "{} {}: {}…",
                if approve { "approving" } else { "denying" },
                approval.id,
                approval.what
            ),
        ));
        vec![Action::Control(ControlRequest {
            data: Some(approval.id),
            ..ControlRequest::new(cmd, None)
        })]
    }

    /// True when the selected worker is paused by a review's `pause_and_clarify` and the
    /// operator has not acted yet: `c` sends it the concerns.
    pub fn selected_awaits_clarify(&self) -> bool {
        let Some(worker) = self.selected_worker() else {
            return false;
        };
        worker.state() == crate::worker::state::WorkerState::Paused
            && self
                .decisions
                .iter()
                .rev()
                .find(|d| d.worker.as_deref() == Some(worker.name.as_str()))
                .is_some_and(|d| d.action == "pause_and_clarify")
    }

    /// `c`: the reviewers' concerns go to the paused agent, which continues with them.
    fn clarify_key(&mut self) -> Vec<Action> {
        let Some(worker) = self.selected_worker().map(|w| w.name.clone()) else {
            return Vec::new();
        };
        self.notice = Some((
            true,
            format!("sending the reviewers' concerns to {worker}…"),
        ));
        vec![Action::Control(ControlRequest::new(
            ControlCommand::Clarify,
            Some(worker),
        ))]
    }

    /// `R` with the coordinator dead: start it again, unless the session is done.
    fn resume_key(&mut self) -> Vec<Action> {
        if self.history.finished.as_deref() == Some("done") {
            self.notice = Some((false, "the session is done; nothing to resume".into()));
            return Vec::new();
        }
        self.notice = Some((true, "resuming the session…".into()));
        vec![Action::Resume { retry: Vec::new() }]
    }

    /// `e` / `o`: the selected worker's directory in the editor or a shell.
    fn open_key(&mut self, with: OpenWith) -> Vec<Action> {
        match self.selected_worker().and_then(|w| w.counted.cwd.clone()) {
            Some(dir) => vec![Action::Open { program: with, dir }],
            None => {
                self.notice = Some((false, "no worker directory to open yet".into()));
                Vec::new()
            }
        }
    }

    fn select(&mut self, index: usize) {
        self.selected = index.min(self.workers.len().saturating_sub(1));
    }

    /// Lower case acts on the selected worker, upper case on the whole session.
    fn command_key(&mut self, c: char) -> Vec<Action> {
        let cmd = match c.to_ascii_lowercase() {
            'p' => ControlCommand::Pause,
            'r' => ControlCommand::Resume,
            's' => ControlCommand::Stop,
            _ => ControlCommand::Review,
        };
        let worker = if c.is_ascii_lowercase() {
            match self.selected_worker() {
                Some(w) => Some(w.name.clone()),
                None => {
                    self.notice = Some((false, "no worker selected".into()));
                    return Vec::new();
                }
            }
        } else {
            None
        };
        let request = ControlRequest::new(cmd, worker.clone());
        if cmd == ControlCommand::Stop {
            let question = match &worker {
                Some(w) => format!("Stop worker {w}? Its task will not be retried."),
                None => "Stop the whole session? Every worker gets SIGTERM.".to_string(),
            };
            self.overlay = Some(Overlay::Confirm { question, request });
            return Vec::new();
        }
        self.notice = Some((
            true,
            format!("{} {}…", cmd.name(), worker.as_deref().unwrap_or("session")),
        ));
        vec![Action::Control(request)]
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Action> {
        match overlay {
            Overlay::Review(index) => {
                match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => self.overlay = None,
                    // The next older / newer verdict, without closing.
                    KeyCode::Down | KeyCode::Char('j') if index > 0 => {
                        self.overlay = Some(Overlay::Review(index - 1))
                    }
                    KeyCode::Up | KeyCode::Char('k') if index + 1 < self.reviews.len() => {
                        self.overlay = Some(Overlay::Review(index + 1))
                    }
                    _ => {}
                }
                Vec::new()
            }
            Overlay::Help => {
                if matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter
                ) {
                    self.overlay = None;
                }
                Vec::new()
            }
            Overlay::Confirm { request, .. } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.overlay = None;
                    self.notice = Some((
                        true,
                        format!(
                            "stopping {}…",
                            request.worker.as_deref().unwrap_or("the session")
                        ),
                    ));
                    vec![Action::Control(request)]
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.overlay = None;
                    self.notice = Some((true, "nothing stopped".into()));
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Overlay::Search(mut text) => {
                match key.code {
                    KeyCode::Esc => {
                        self.overlay = None;
                    }
                    KeyCode::Enter => {
                        self.overlay = None;
                        self.search = if text.is_empty() { None } else { Some(text) };
                        self.log_scroll = 0;
                    }
                    KeyCode::Backspace => {
                        text.pop();
                        self.overlay = Some(Overlay::Search(text));
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.overlay = Some(Overlay::Search(text));
                    }
                    _ => {}
                }
                Vec::new()
            }
        }
    }

    /// Keys of the zoomed view; `None` lets the ordinary handling run.
    fn on_zoom_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        let (worker, mode) = self.zoom.clone()?;
        match key.code {
            KeyCode::Esc => {
                self.zoom = None;
                self.screen = None;
            }
            KeyCode::Char('t') => {
                let next = match mode {
                    ZoomMode::Transcript => ZoomMode::Screen,
                    ZoomMode::Screen => ZoomMode::Transcript,
                };
                self.zoom = Some((worker.clone(), next));
                if next == ZoomMode::Screen {
                    self.screen = Some((
                        worker.clone(),
                        vt100::Parser::new(non_zero(40), non_zero(120), SCREEN_SCROLLBACK),
                    ));
                    return Some(vec![Action::WatchScreen(worker)]);
                }
                self.screen = None;
            }
            KeyCode::Char('a') => {
                // Attaching needs a live worker: say so here, not in a shell for 2 s.
                let state = self
                    .workers
                    .iter()
                    .find(|w| w.name == worker)
                    .map(|w| self.pane_state(w));
                return Some(match state {
                    Some(s) if !s.is_finished() && s != WorkerState::Pending => {
                        vec![Action::Attach(worker)]
                    }
                    _ => {
                        let how = state.map_or("unknown".to_string(), |s| s.to_string());
                        self.notice = Some((
                            false,
                            format!("{worker} is {how}: there is no terminal to attach to"),
                        ));
                        Vec::new()
                    }
                });
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.zoom_scroll = self.zoom_scroll.saturating_add(1)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.zoom_scroll = self.zoom_scroll.saturating_sub(1)
            }
            KeyCode::PageUp => self.zoom_scroll = self.zoom_scroll.saturating_add(20),
            KeyCode::PageDown => self.zoom_scroll = self.zoom_scroll.saturating_sub(20),
            _ => return None,
        }
        Some(Vec::new())
    }

    /// Resizes the zoomed PTY screen to the area it is drawn in.
    pub fn fit_screen(&mut self, rows: u16, cols: u16) {
        if let Some((_, parser)) = &mut self.screen {
            let wanted = (non_zero(rows), non_zero(cols));
            if parser.screen().size() != wanted {
                parser.screen_mut().set_size(wanted.0, wanted.1);
            }
        }
    }
}

/// The log's type filter cycles: everything, then one type at a time, then everything.
fn next_type(current: Option<EventType>) -> Option<EventType> {
    match current {
        None => EventType::ALL.first().copied(),
        Some(t) => EventType::ALL
            .iter()
            .skip_while(|k| **k != t)
            .nth(1)
            .copied(),
    }
}

/// A terminal dimension of at least 1.
fn non_zero(v: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::MIN.saturating_add(v.saturating_sub(1))
}

fn push_bounded<T>(deque: &mut VecDeque<T>, item: T, capacity: usize) {
    if deque.len() == capacity {
        deque.pop_front();
    }
    deque.push_back(item);
}
