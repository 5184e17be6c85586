//! The DAG scheduler: which tasks may start now, and what a finished attempt means (success,
//! a retry after a backoff that doubles, or failure that skips every dependent). Pure: time is
//! passed in, nothing is spawned here.

use std::fmt;

use serde::Serialize;

use super::plan::Plan;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running {
        attempt: u32,
    },
    /// Failed attempt `attempt`; the next starts at `at`.
    RetryAt {
        attempt: u32,
        at: Timestamp,
    },
    Succeeded,
    Failed {
        reason: String,
    },
    /// Never ran because a task it depends on failed or was stopped.
    Skipped {
        because: String,
    },
    Stopped,
    /// Recovery gave up on a failure it knows needs the operator (a login, a permission): the
    /// task waits, its dependents with it, until the operator runs it again or stops.
    Escalated {
        reason: String,
    },
}

impl TaskStatus {
    pub fn name(&self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running { .. } => "running",
            TaskStatus::RetryAt { .. } => "retrying",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed { .. } => "failed",
            TaskStatus::Skipped { .. } => "skipped",
            TaskStatus::Stopped => "stopped",
            TaskStatus::Escalated { .. } => "escalated",
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded
                | TaskStatus::Failed { .. }
                | TaskStatus::Skipped { .. }
                | TaskStatus::Stopped
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub parallelism: usize,
    pub retries: u32,
    pub backoff_ms: u64,
}

/// What a finished attempt led to.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Succeeded,
    Retry { attempt: u32, at: Timestamp },
    Failed { skipped: Vec<String> },
}

/// How the whole session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionOutcome {
    Done,
    Failed,
    Stopped,
}

impl SessionOutcome {
    pub fn name(self) -> &'static str {
        match self {
            SessionOutcome::Done => "done",
            SessionOutcome::Failed => "failed",
            SessionOutcome::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    deps: Vec<String>,
    status: TaskStatus,
    attempts: u32,
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    entries: Vec<Entry>,
    limits: Limits,
}

impl Scheduler {
    pub fn new(plan: &Plan, limits: Limits) -> Self {
        let entries = plan
            .tasks
            .iter()
            .map(|t| Entry {
                id: t.id.clone(),
                deps: t.depends_on.clone(),
                status: TaskStatus::Pending,
                attempts: 0,
            })
            .collect();
        Scheduler {
            entries,
            limits: Limits {
                parallelism: limits.parallelism.max(1),
                ..limits
            },
        }
    }

    /// Sets a task's state from the journal (resume); attempts made so far count toward retries.
    pub fn restore(&mut self, id: &str, status: TaskStatus, attempts: u32) {
        if let Some(e) = self.entry_mut(id) {
            e.status = status;
            e.attempts = attempts;
        }
    }

    pub fn status(&self, id: &str) -> Option<&TaskStatus> {
        self.entries.iter().find(|e| e.id == id).map(|e| &e.status)
    }

    pub fn attempts(&self, id: &str) -> u32 {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .map_or(0, |e| e.attempts)
    }

    pub fn statuses(&self) -> impl Iterator<Item = (&str, &TaskStatus)> {
        self.entries.iter().map(|e| (e.id.as_str(), &e.status))
    }

    pub fn running(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| matches!(e.status, TaskStatus::Running { .. }))
            .map(|e| e.id.clone())
            .collect()
    }

    /// Tasks that may start at `now`, in plan order, within the parallelism limit.
    pub fn startable(&self, now: Timestamp) -> Vec<String> {
        let free = self.limits.parallelism.saturating_sub(self.running().len());
        self.entries
            .iter()
            .filter(|e| match e.status {
                TaskStatus::Pending => true,
                TaskStatus::RetryAt { at, .. } => at <= now,
                _ => false,
            })
            .filter(|e| {
                e.deps
                    .iter()
                    .all(|d| self.status(d) == Some(&TaskStatus::Succeeded))
            })
            .take(free)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Marks `id` running; returns its attempt number (1 for the first).
    pub fn start(&mut self, id: &str) -> u32 {
        let Some(e) = self.entry_mut(id) else {
            return 0;
        };
        e.attempts += 1;
        e.status = TaskStatus::Running {
            attempt: e.attempts,
        };
        e.attempts
    }

    /// Records how the running attempt of `id` ended.
    pub fn finish(
        &mut self,
        id: &str,
        succeeded: bool,
        reason: &str,
        now: Timestamp,
    ) -> AttemptOutcome {
        let limits = self.limits;
        let Some(e) = self.entry_mut(id) else {
            return AttemptOutcome::Failed {
                skipped: Vec::new(),
            };
        };
        if succeeded {
            e.status = TaskStatus::Succeeded;
            return AttemptOutcome::Succeeded;
        }
        if e.attempts <= limits.retries {
            let delay = limits
                .backoff_ms
                .saturating_mul(1 << (e.attempts - 1).min(16));
            let at = Timestamp(now.millis() + delay as i64);
            e.status = TaskStatus::RetryAt {
                attempt: e.attempts,
                at,
            };
            return AttemptOutcome::Retry {
                attempt: e.attempts + 1,
                at,
            };
        }
        e.status = TaskStatus::Failed {
            reason: reason.to_string(),
        };
        AttemptOutcome::Failed {
            skipped: self.skip_dependents_of(id),
        }
    }

    /// Stops everything not yet finished: pending and retrying tasks become stopped; running
    /// tasks are the caller's to stop, then `finish_stopped`.
    pub fn stop(&mut self) {
        for e in &mut self.entries {
            if matches!(
                e.status,
                TaskStatus::Pending | TaskStatus::RetryAt { .. } | TaskStatus::Escalated { .. }
            ) {
                e.status = TaskStatus::Stopped;
            }
        }
    }

    /// A running task was stopped by the operator; what depends on it cannot run. Returns the
    /// dependents skipped.
    pub fn finish_stopped(&mut self, id: &str) -> Vec<String> {
        if let Some(e) = self.entry_mut(id) {
            e.status = TaskStatus::Stopped;
        }
        self.skip_dependents_of(id)
    }

    /// The earliest pending retry, for the caller's wake-up.
    pub fn next_retry(&self) -> Option<Timestamp> {
        self.entries
            .iter()
            .filter_map(|e| match e.status {
                TaskStatus::RetryAt { at, .. } => Some(at),
                _ => None,
            })
            .min()
    }

    pub fn is_finished(&self) -> bool {
        self.entries.iter().all(|e| e.status.is_final())
    }

    pub fn outcome(&self) -> SessionOutcome {
        let any = |f: fn(&TaskStatus) -> bool| self.entries.iter().any(|e| f(&e.status));
        if any(|s| matches!(s, TaskStatus::Stopped)) {
            SessionOutcome::Stopped
        } else if any(|s| matches!(s, TaskStatus::Failed { .. } | TaskStatus::Skipped { .. })) {
            SessionOutcome::Failed
        } else {
            SessionOutcome::Done
        }
    }

    /// A running task fails for good, whatever its retries (a review found a blocker);
    /// returns what that skips, as `finish` does.
    pub fn fail_now(&mut self, id: &str, reason: &str) -> AttemptOutcome {
        if let Some(e) = self.entry_mut(id) {
            e.status = TaskStatus::Failed {
                reason: reason.to_string(),
            };
        }
        AttemptOutcome::Failed {
            skipped: self.skip_dependents_of(id),
        }
    }

    /// A running attempt ended in a failure recovery knows how to get past: the task runs
    /// again at `at` (at once, or after a usage limit's reset), and the attempt does not count
    /// against its retries.
    pub fn again_at(&mut self, id: &str, at: Timestamp) {
        if let Some(e) = self.entry_mut(id) {
            e.attempts = e.attempts.saturating_sub(1);
            e.status = TaskStatus::RetryAt {
                attempt: e.attempts,
                at,
            };
        }
    }

    /// A running attempt ended in a failure only the operator can fix: the task waits for
    /// them (nothing is skipped; the session is not finished while it waits).
    pub fn escalate(&mut self, id: &str, reason: &str) {
        if let Some(e) = self.entry_mut(id) {
            e.status = TaskStatus::Escalated {
                reason: reason.to_string(),
            };
        }
    }

    /// The operator asks a failed, stopped or escalated task to run again: it is pending with
    /// a fresh retry budget, and what was skipped because of it is pending too. Returns those.
    pub fn restart(&mut self, id: &str) -> Result<Vec<String>, String> {
        let Some(e) = self.entry_mut(id) else {
            return Err(format!("no task {id:?} in the plan"));
        };
        if !matches!(
            e.status,
            TaskStatus::Failed { .. } | TaskStatus::Stopped | TaskStatus::Escalated { .. }
        ) {
            return Err(format!(
                "task {id} is {}: only a failed, stopped or escalated task runs again",
                e.status.name()
            ));
        }
        e.status = TaskStatus::Pending;
        e.attempts = 0;
        let mut freed = vec![id.to_string()];
        let mut unskipped = Vec::new();
        for e in &mut self.entries {
            if let TaskStatus::Skipped { because } = &e.status
                && freed.contains(because)
            {
                e.status = TaskStatus::Pending;
                freed.push(e.id.clone());
                unskipped.push(e.id.clone());
            }
        }
        Ok(unskipped)
    }

    fn skip_dependents_of(&mut self, failed: &str) -> Vec<String> {
        let mut blocked = vec![failed.to_string()];
        let mut skipped = Vec::new();
        // Plan order puts dependencies first, so one pass reaches every transitive dependent.
        for e in &mut self.entries {
            if e.status.is_final() || matches!(e.status, TaskStatus::Running { .. }) {
                continue;
            }
            if let Some(dep) = e.deps.iter().find(|d| blocked.contains(d)) {
                e.status = TaskStatus::Skipped {
                    because: dep.clone(),
                };
                blocked.push(e.id.clone());
                skipped.push(e.id.clone());
            }
        }
        skipped
    }

    fn entry_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::plan::Task;

    fn plan(edges: &[(&str, &[&str])]) -> Plan {
        Plan {
            tasks: edges
                .iter()
                .map(|(id, deps)| Task {
                    id: id.to_string(),
                    title: id.to_string(),
                    prompt: "p".into(),
                    agent: "claude".into(),
                    role: None,
                    depends_on: deps.iter().map(|d| d.to_string()).collect(),
                    reassigned: None,
                })
                .collect(),
        }
    }
    const LIMITS: Limits = Limits {
        parallelism: 2,
        retries: 2,
        backoff_ms: 1000,
    };

    #[test]
    fn starts_what_is_ready_within_the_parallelism_limit() {
        let mut s = Scheduler::new(
            &plan(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &["a", "b"])]),
            LIMITS,
        );
        assert_eq!(s.startable(Timestamp(0)), ["a", "b"]);
        s.start("a");
        s.start("b");
        assert!(s.startable(Timestamp(0)).is_empty(), "both slots taken");
        s.finish("a", true, "", Timestamp(0));
        assert_eq!(s.startable(Timestamp(0)), ["c"], "d still waits for b");
        s.finish("b", true, "", Timestamp(0));
        assert_eq!(s.startable(Timestamp(0)), ["c", "d"]);
    }

    #[test]
    fn failures_retry_with_doubling_backoff_then_fail_and_skip_dependents() {
        let mut s = Scheduler::new(
            &plan(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("x", &[])]),
            LIMITS,
        );
        assert_eq!(s.start("a"), 1);
        assert_eq!(
            s.finish("a", false, "exit 1", Timestamp(0)),
            AttemptOutcome::Retry {
                attempt: 2,
                at: Timestamp(1000)
            }
        );
        assert!(!s.startable(Timestamp(999)).contains(&"a".to_string()));
        assert_eq!(s.next_retry(), Some(Timestamp(1000)));
        assert!(s.startable(Timestamp(1000)).contains(&"a".to_string()));
        assert_eq!(s.start("a"), 2);
        assert_eq!(
            s.finish("a", false, "exit 1", Timestamp(5000)),
            AttemptOutcome::Retry {
                attempt: 3,
                at: Timestamp(7000)
            }
        );
        s.start("a");
        assert_eq!(
            s.finish("a", false, "exit 1", Timestamp(9000)),
            AttemptOutcome::Failed {
                skipped: vec!["b".into(), "c".into()]
            }
        );
        assert_eq!(
            s.status("c"),
            Some(&TaskStatus::Skipped {
                because: "b".into()
            })
        );
        assert!(!s.is_finished(), "x has not run");
        s.start("x");
        s.finish("x", true, "", Timestamp(0));
        assert!(s.is_finished());
        assert_eq!(s.outcome(), SessionOutcome::Failed);
    }

    #[test]
    fn stopping_leaves_nothing_to_start() {
        let mut s = Scheduler::new(&plan(&[("a", &[]), ("b", &["a"])]), LIMITS);
        s.start("a");
        s.stop();
        assert!(s.startable(Timestamp(0)).is_empty());
        s.finish_stopped("a");
        assert!(s.is_finished());
        assert_eq!(s.outcome(), SessionOutcome::Stopped);
    }

    #[test]
    fn a_failed_task_restarts_with_a_fresh_budget_and_frees_what_it_skipped() {
        let mut s = Scheduler::new(&plan(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]), LIMITS);
        for _ in 0..3 {
            s.start("a");
            s.finish("a", false, "broke", Timestamp(0));
        }
        assert!(matches!(s.status("a"), Some(TaskStatus::Failed { .. })));
        assert!(matches!(s.status("c"), Some(TaskStatus::Skipped { .. })));
        assert_eq!(s.restart("a").unwrap(), ["b", "c"]);
        assert_eq!(s.status("c"), Some(&TaskStatus::Pending));
        assert_eq!(s.startable(Timestamp(0)), ["a"]);
        assert_eq!(s.start("a"), 1, "a fresh retry budget");
        assert!(s.restart("a").unwrap_err().contains("is running"));
    }

    #[test]
    fn restored_tasks_keep_their_state_and_attempts() {
        let mut s = Scheduler::new(&plan(&[("a", &[]), ("b", &["a"])]), LIMITS);
        s.restore("a", TaskStatus::Succeeded, 1);
        assert_eq!(s.startable(Timestamp(0)), ["b"]);
        s.restore("b", TaskStatus::Pending, 2);
        assert_eq!(s.start("b"), 3);
    }
}
