//! Worker state derived from a worker's events: the single definition every surface uses.
//!
//! The supervisor journals lifecycle facts as `status` events with a `phase` (`spawned`,
//! `paused`, `resumed`, `stopping`, `exited`, `spawn_failed`); the adapter journals what the
//! agent said. Folding both in order gives the state, so the dashboard, `status` and any later
//! API agree by construction.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::{AgentEvent, EventType};
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Nothing has happened yet.
    Pending,
    Running,
    /// The agent reported a blocker (a denied permission, a question) and has not moved on.
    Waiting,
    /// The agent cannot reach its model API and is retrying; it has not moved on since.
    Retrying,
    Paused,
    Done,
    Failed,
    Stopped,
    /// Active when its coordinator died: no one watches it any more. Never derived from the
    /// journal alone; see [`WorkerState::seen_with`].
    Interrupted,
}

impl WorkerState {
    /// What to show for a worker whose journal says `self`: an active worker of a session
    /// whose coordinator is dead is interrupted, not running with a dead pid.
    pub fn seen_with(self, coordinator_alive: bool) -> WorkerState {
        if coordinator_alive || self.is_finished() || self == WorkerState::Pending {
            self
        } else {
            WorkerState::Interrupted
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Pending => "pending",
            WorkerState::Running => "running",
            WorkerState::Waiting => "waiting",
            WorkerState::Retrying => "retrying",
            WorkerState::Paused => "paused",
            WorkerState::Done => "done",
            WorkerState::Failed => "failed",
            WorkerState::Stopped => "stopped",
            WorkerState::Interrupted => "interrupted",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            WorkerState::Done
                | WorkerState::Failed
                | WorkerState::Stopped
                | WorkerState::Interrupted
        )
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How the worker's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitFacts {
    pub code: Option<i64>,
    pub signal: Option<i64>,
}

impl ExitFacts {
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none()
    }
}

/// An unbroken run of retries: since when, and the latest `retrying (n/m): reason`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrying {
    pub since: Timestamp,
    pub text: String,
}

/// Everything the fold keeps; `state()` reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    seen_any: bool,
    spawns: u32,
    blocked: bool,
    /// Approvals asked for this worker and not yet answered. The agent is held inside its hook
    /// until the answer, so only the answer ends the wait: a line it printed before asking, and
    /// journaled after the request (its reader lagging), is no sign it moved on.
    #[serde(default)]
    open_approvals: u32,
    /// Set by `retrying` events, cleared when the agent moves on.
    pub retrying: Option<Retrying>,
    paused: bool,
    stop_requested: bool,
    fatal_error: bool,
    spawn_failed: bool,
    finished_run: bool,
    pub pid: Option<i64>,
    pub exit: Option<ExitFacts>,
}

impl WorkerStatus {
    pub fn observe(&mut self, event: &AgentEvent) {
        self.seen_any = true;
        match (event.kind, event.phase()) {
            (_, Some("spawned")) => {
                // A relaunch (retry, recovery, resume) starts a fresh run in the same journal.
                *self = WorkerStatus {
                    seen_any: true,
                    spawns: self.spawns + 1,
                    pid: event.i64_field("pid"),
                    ..WorkerStatus::default()
                };
            }
            (_, Some("spawn_failed")) => self.spawn_failed = true,
            (_, Some("paused")) => self.paused = true,
            (_, Some("resumed")) => self.paused = false,
            (_, Some("stopping")) => self.stop_requested = true,
            (_, Some("exited")) => {
                self.paused = false;
                self.exit = Some(ExitFacts {
                    code: event.i64_field("exit_code"),
                    signal: event.i64_field("signal"),
                });
            }
            (_, Some("retrying")) => {
                let since = self.retrying.as_ref().map_or(event.timestamp, |r| r.since);
                self.retrying = Some(Retrying {
                    since,
                    text: event.text().to_string(),
                });
            }
            (EventType::Blocker, phase) => {
                self.blocked = true;
                self.retrying = None;
                if phase == Some("approval_requested") {
                    self.open_approvals += 1;
                }
            }
            (_, Some("approval_answered")) => {
                self.open_approvals = self.open_approvals.saturating_sub(1);
                self.blocked = false;
                self.retrying = None;
            }
            (EventType::Error, _) if event.bool_field("fatal") => {
                // The retries ended, in failure.
                self.fatal_error = true;
                self.retrying = None;
            }
            (EventType::Milestone, _) => {
                self.blocked = false;
                self.retrying = None;
                if event.bool_field("final") {
                    self.finished_run = true;
                }
            }
            (EventType::Progress | EventType::Task | EventType::Finding, _) => {
                self.blocked = false;
                self.retrying = None;
            }
            _ => {}
        }
    }

    pub fn state(&self) -> WorkerState {
        if self.spawn_failed {
            return WorkerState::Failed;
        }
        if let Some(exit) = self.exit {
            let succeeded = exit.success() && !self.fatal_error;
            return if self.stop_requested && !(succeeded && self.finished_run) {
                WorkerState::Stopped
            } else if succeeded {
                WorkerState::Done
            } else {
                WorkerState::Failed
            };
        }
        if !self.seen_any {
            WorkerState::Pending
        } else if self.paused {
            WorkerState::Paused
        } else if self.blocked || self.open_approvals > 0 {
            WorkerState::Waiting
        } else if self.retrying.is_some() {
            WorkerState::Retrying
        } else {
            WorkerState::Running
        }
    }

    /// The agent said it finished (its final milestone) and reported no fatal error.
    pub fn reported_success(&self) -> bool {
        self.finished_run && !self.fatal_error
    }

    /// Relaunches after the first spawn.
    pub fn retries(&self) -> u32 {
        self.spawns.saturating_sub(1)
    }
}

/// The state after all of `events`, in journal order.
pub fn derive_state<'a>(events: impl IntoIterator<Item = &'a AgentEvent>) -> WorkerState {
    let mut status = WorkerStatus::default();
    for event in events {
        status.observe(event);
    }
    status.state()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ev(kind: EventType, payload: Value) -> AgentEvent {
        AgentEvent {
            kind,
            agent: "claude".into(),
            worker: "w".into(),
            task: None,
            seq: 0,
            timestamp: Timestamp(0),
            payload: payload.as_object().unwrap().clone().into(),
        }
    }
    fn phase(p: &str) -> AgentEvent {
        ev(EventType::Status, json!({"phase": p, "pid": 42}))
    }
    fn exited(code: i64) -> AgentEvent {
        ev(
            EventType::Status,
            json!({"phase": "exited", "exit_code": code}),
        )
    }
    fn killed(signal: i64) -> AgentEvent {
        ev(
            EventType::Error,
            json!({"phase": "exited", "signal": signal}),
        )
    }
    fn progress() -> AgentEvent {
        ev(EventType::Progress, json!({"text": "x"}))
    }
    fn blocker() -> AgentEvent {
        ev(EventType::Blocker, json!({"text": "denied"}))
    }
    fn fatal() -> AgentEvent {
        ev(EventType::Error, json!({"fatal": true}))
    }
    fn final_milestone() -> AgentEvent {
        ev(EventType::Milestone, json!({"final": true}))
    }

    #[test]
    fn no_events_is_pending() {
        assert_eq!(derive_state([]), WorkerState::Pending);
    }

    #[test]
    fn a_clean_run_is_done() {
        let run = [phase("spawned"), progress(), final_milestone(), exited(0)];
        assert_eq!(derive_state(&run[..2]), WorkerState::Running);
        assert_eq!(derive_state(&run), WorkerState::Done);
    }

    #[test]
    fn a_blocker_waits_until_the_agent_moves_on() {
        let run = [phase("spawned"), blocker()];
        assert_eq!(derive_state(&run), WorkerState::Waiting);
        let run = [phase("spawned"), blocker(), progress()];
        assert_eq!(derive_state(&run), WorkerState::Running);
        // A status line (say a rate-limit notice) is not the agent moving on.
        let run = [phase("spawned"), blocker(), phase("init")];
        assert_eq!(derive_state(&run), WorkerState::Waiting);
    }

    #[test]
    fn an_approval_wait_ends_with_its_answer_not_with_a_late_line() {
        let asked = ev(
            EventType::Blocker,
            json!({"phase": "approval_requested", "approval": "a1"}),
        );
        let answered = ev(
            EventType::Progress,
            json!({"phase": "approval_answered", "approval": "a1"}),
        );
        let run = [phase("spawned"), asked.clone(), progress()];
        assert_eq!(derive_state(&run), WorkerState::Waiting);
        let run = [
            phase("spawned"),
            asked.clone(),
            progress(),
            answered.clone(),
        ];
        assert_eq!(derive_state(&run), WorkerState::Running);
        let run = [phase("spawned"), asked, answered, blocker()];
        assert_eq!(
            derive_state(&run),
            WorkerState::Waiting,
            "a later blocker still waits"
        );
    }

    #[test]
    fn retries_are_one_state_from_the_first_until_the_agent_moves_on() {
        let retry = |at: i64, text: &str| {
            let mut e = ev(
                EventType::Status,
                json!({"phase": "retrying", "text": text}),
            );
            e.timestamp = Timestamp(at);
            e
        };
        let mut status = WorkerStatus::default();
        for e in [
            phase("spawned"),
            retry(10, "retrying (1/5): a"),
            retry(50, "retrying (2/5): b"),
        ] {
            status.observe(&e);
        }
        assert_eq!(status.state(), WorkerState::Retrying);
        let r = status.retrying.clone().unwrap();
        assert_eq!(
            (r.since, r.text.as_str()),
            (Timestamp(10), "retrying (2/5): b")
        );
        // A log line between retries (a stack trace) is not the agent moving on.
        status.observe(&phase("output"));
        assert_eq!(status.state(), WorkerState::Retrying);
        status.observe(&progress());
        assert_eq!(status.state(), WorkerState::Running);
        assert_eq!(status.retrying, None);
    }

    #[test]
    fn pause_wins_over_waiting_and_resume_restores_it() {
        let run = [phase("spawned"), blocker(), phase("paused")];
        assert_eq!(derive_state(&run), WorkerState::Paused);
        let run = [
            phase("spawned"),
            blocker(),
            phase("paused"),
            phase("resumed"),
        ];
        assert_eq!(derive_state(&run), WorkerState::Waiting);
    }

    #[test]
    fn failures_come_from_exit_codes_signals_and_fatal_errors() {
        assert_eq!(
            derive_state(&[phase("spawned"), exited(1)]),
            WorkerState::Failed
        );
        assert_eq!(
            derive_state(&[phase("spawned"), killed(6)]),
            WorkerState::Failed
        );
        // Claude can report an API error with exit code 0: the error decides.
        assert_eq!(
            derive_state(&[phase("spawned"), fatal(), exited(0)]),
            WorkerState::Failed
        );
        assert_eq!(
            derive_state(&[ev(EventType::Error, json!({"phase": "spawn_failed"}))]),
            WorkerState::Failed
        );
    }

    #[test]
    fn a_requested_stop_is_stopped_unless_the_run_had_already_finished() {
        let run = [phase("spawned"), phase("stopping"), killed(15)];
        assert_eq!(derive_state(&run), WorkerState::Stopped);
        let run = [
            phase("spawned"),
            final_milestone(),
            phase("stopping"),
            exited(0),
        ];
        assert_eq!(derive_state(&run), WorkerState::Done);
    }

    #[test]
    fn a_relaunch_starts_over_and_counts_as_a_retry() {
        let mut status = WorkerStatus::default();
        for e in [phase("spawned"), exited(1), phase("spawned"), progress()] {
            status.observe(&e);
        }
        assert_eq!(status.state(), WorkerState::Running);
        assert_eq!(status.retries(), 1);
        assert_eq!(status.pid, Some(42));
    }
}
