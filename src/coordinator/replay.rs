//! The coordinator's state rebuilt from its journal: which tasks finished and how, how many
//! attempts each made, and whether the session ended. `resume` starts from this; `status`
//! shows it. Pure: events in, facts out.
//!
//! The journal's vocabulary (the `phase` of the coordinator's events): `planned`,
//! `task_started`, `task_succeeded`, `task_retry`, `task_failed`, `task_skipped`,
//! `task_stopped`, `task_restarted`, `session_finished`.

use std::collections::BTreeMap;

use super::schedule::TaskStatus;
use crate::event::AgentEvent;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskHistory {
    pub attempts: u32,
    /// Attempts that ended in a failure of the task itself (`task_retry`, `task_failed`).
    /// A coordinator that died mid-attempt, or an operator's stop, is not one: only these
    /// count against the retry budget on resume.
    pub failures: u32,
    /// The last thing that happened to the task, as a scheduler state. A task that was running
    /// when the coordinator died is `Running`.
    pub status: Option<TaskStatus>,
    pub worker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionHistory {
    pub tasks: BTreeMap<String, TaskHistory>,
    /// `done`, `failed` or `stopped` once the coordinator finished the session.
    pub finished: Option<String>,
    pub tier: Option<String>,
    /// The operator paused the whole session and has not resumed it.
    pub paused: bool,
    /// A stop of the whole session was accepted.
    pub stopping: bool,
    /// Why the coordinator paused the session itself: its journals could not be written.
    pub disk_full: Option<String>,
    pub started: bool,
}

impl SessionHistory {
    /// The one word every surface shows: running, paused, stopping, done, failed, stopped,
    /// interrupted (the coordinator died before finishing) or created.
    pub fn state(&self, coordinator_alive: bool) -> &str {
        match (&self.finished, coordinator_alive) {
            (Some(outcome), _) => outcome,
            (None, true) if self.stopping => "stopping",
            (None, true) if self.paused => "paused",
            (None, true) => "running",
            (None, false) if self.started => "interrupted",
            (None, false) => "created",
        }
    }
}

pub fn replay(events: &[AgentEvent]) -> SessionHistory {
    let mut history = SessionHistory::default();
    for e in events {
        history.observe(e);
    }
    history
}

impl SessionHistory {
    /// Folds one event of the coordinator's journal in.
    pub fn observe(&mut self, e: &AgentEvent) {
        if let Some(tier) = e.str_field("tier") {
            self.tier = Some(tier.to_string());
        }
        let phase = e.phase().unwrap_or("");
        if matches!(phase, "session_started" | "resumed" | "planned") {
            self.started = true;
        }
        if phase == "control"
            && e.task.is_none()
            && e.str_field("target").is_none()
            && e.bool_field("took_effect")
        {
            match e.str_field("command") {
                Some("pause") => {
                    self.paused = true;
                    if e.bool_field("disk_full") {
                        self.disk_full = e.str_field("reason").map(str::to_string);
                    }
                }
                Some("resume") => {
                    self.paused = false;
                    self.disk_full = None;
                }
                Some("stop" | "kill") => self.stopping = true,
                _ => {}
            }
        }
        if phase == "session_finished" {
            self.finished = e.str_field("outcome").map(str::to_string);
            return;
        }
        if phase == "resumed" {
            self.finished = None;
            self.paused = false;
            self.disk_full = None;
            self.stopping = false;
            return;
        }
        let Some(task) = e.task.as_deref() else {
            return;
        };
        let entry = self.tasks.entry(task.to_string()).or_default();
        let status = match phase {
            "task_started" => {
                entry.attempts = e
                    .i64_field("attempt")
                    .map_or(entry.attempts + 1, |a| a as u32);
                entry.worker = e.str_field("worker").map(str::to_string);
                TaskStatus::Running {
                    attempt: entry.attempts,
                }
            }
            "task_succeeded" => TaskStatus::Succeeded,
            "task_retry" => {
                entry.failures += 1;
                TaskStatus::RetryAt {
                    attempt: entry.attempts,
                    at: Timestamp(e.i64_field("retry_at_ms").unwrap_or(0)),
                }
            }
            "task_failed" => {
                entry.failures += 1;
                TaskStatus::Failed {
                    reason: e.str_field("reason").unwrap_or("").to_string(),
                }
            }
            "task_skipped" => TaskStatus::Skipped {
                because: e.str_field("because").unwrap_or("").to_string(),
            },
            "task_stopped" => TaskStatus::Stopped,
            // Recovery launches it again (now or after a wait) without counting a failure.
            "recovery_relaunch" | "recovery_wait" | "recovery_continue" => TaskStatus::RetryAt {
                attempt: entry.attempts.saturating_sub(1),
                at: Timestamp(e.i64_field("retry_at_ms").unwrap_or(0)),
            },
            "recovery_escalated" => TaskStatus::Escalated {
                reason: e.str_field("fix").unwrap_or("").to_string(),
            },
            // The operator asked for it again: a fresh retry budget.
            "task_restarted" => {
                entry.failures = 0;
                TaskStatus::Pending
            }
            _ => return,
        };
        entry.status = Some(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use serde_json::{Value, json};

    fn ev(task: Option<&str>, payload: Value) -> AgentEvent {
        AgentEvent {
            kind: EventType::Status,
            agent: "orchestrator".into(),
            worker: "coordinator".into(),
            task: task.map(Into::into),
            seq: 0,
            timestamp: Timestamp(0),
            payload: payload.as_object().unwrap().clone().into(),
        }
    }

    #[test]
    fn rebuilds_task_states_and_attempts() {
        let events = [
            ev(
                None,
                json!({"phase": "planned", "tier": "tier 1 (gemini + claude + codex)"}),
            ),
            ev(
                Some("a"),
                json!({"phase": "task_started", "attempt": 1, "worker": "gemini-a"}),
            ),
            ev(Some("a"), json!({"phase": "task_retry", "retry_at_ms": 99})),
            ev(
                Some("a"),
                json!({"phase": "task_started", "attempt": 2, "worker": "gemini-a"}),
            ),
            ev(Some("a"), json!({"phase": "task_succeeded"})),
            ev(
                Some("b"),
                json!({"phase": "task_started", "attempt": 1, "worker": "claude-b"}),
            ),
        ];
        let h = replay(&events);
        assert_eq!(h.tasks["a"].attempts, 2);
        assert_eq!(h.tasks["a"].failures, 1);
        assert_eq!(
            h.tasks["b"].failures, 0,
            "an attempt cut short by the coordinator's death is not a failure"
        );
        assert_eq!(h.tasks["a"].status, Some(TaskStatus::Succeeded));
        assert_eq!(
            h.tasks["b"].status,
            Some(TaskStatus::Running { attempt: 1 }),
            "running when the coordinator died"
        );
        assert_eq!(h.tasks["b"].worker.as_deref(), Some("claude-b"));
        assert_eq!(h.finished, None);
        assert_eq!(h.tier.as_deref(), Some("tier 1 (gemini + claude + codex)"));
        let mut done = events.to_vec();
        done.push(ev(
            None,
            json!({"phase": "session_finished", "outcome": "done"}),
        ));
        assert_eq!(replay(&done).finished.as_deref(), Some("done"));
    }
}
