//! When a worker's work is reviewed: its milestones (the final one included), its blockers,
//! an event that asks (`"review_requested": true`), the operator (manual), and a worker
//! silent for too long (idle). One review of a worker at a time: triggers meanwhile become
//! one follow-up. `max_per_task` bounds the automatic ones. Pure: events and an injected
//! clock in, triggers out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{AgentEvent, EventType};
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Milestone,
    Blocker,
    Requested,
    Manual,
    Idle,
}

impl TriggerKind {
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::Milestone => "milestone",
            TriggerKind::Blocker => "blocker",
            TriggerKind::Requested => "requested",
            TriggerKind::Manual => "manual",
            TriggerKind::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub worker: String,
    pub task: Option<String>,
    pub kind: TriggerKind,
    /// What happened, in a few words (the milestone's text, the blocker...).
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerLimits {
    /// A running worker with no event this long is reviewed.
    pub idle_ms: i64,
    /// Automatic reviews per task at most; manual ones do not count against it.
    pub max_per_task: u32,
}

#[derive(Debug, Default)]
struct WorkerState {
    task: Option<String>,
    in_flight: bool,
    follow_up: Option<Trigger>,
    last_event: Option<Timestamp>,
    /// The idle trigger fired since the last event.
    idle_fired: bool,
    ended: bool,
}

#[derive(Debug)]
pub struct Triggers {
    limits: TriggerLimits,
    workers: BTreeMap<String, WorkerState>,
    /// Automatic reviews started per task.
    per_task: BTreeMap<String, u32>,
}

impl Triggers {
    pub fn new(limits: TriggerLimits) -> Triggers {
        Triggers {
            limits,
            workers: BTreeMap::new(),
            per_task: BTreeMap::new(),
        }
    }

    /// A reviewed worker's event; the review to start now, if any.
    pub fn on_event(&mut self, e: &AgentEvent) -> Option<Trigger> {
        let state = self.workers.entry(e.worker.to_string()).or_default();
        state.task = e.task.as_deref().map(str::to_string).or(state.task.take());
        state.last_event = Some(e.timestamp);
        state.idle_fired = false;
        if e.phase() == Some("exited") {
            state.ended = true;
        }
        let kind = if e.bool_field("review_requested") {
            TriggerKind::Requested
        } else {
            match e.kind {
                EventType::Milestone => TriggerKind::Milestone,
                EventType::Blocker => TriggerKind::Blocker,
                _ => return None,
            }
        };
        let trigger = Trigger {
            worker: e.worker.to_string(),
            task: e.task.as_deref().map(str::to_string),
            kind,
            reason: e.text().to_string(),
        };
        self.start(trigger, false)
    }

    /// The operator asks: never capped, coalesced like any other.
    pub fn manual(&mut self, worker: &str, task: Option<&str>) -> Option<Trigger> {
        let trigger = Trigger {
            worker: worker.to_string(),
            task: task.map(str::to_string),
            kind: TriggerKind::Manual,
            reason: "requested by the operator".into(),
        };
        self.start(trigger, true)
    }

    /// The review of `worker` is over; the follow-up to start, if triggers came meanwhile.
    pub fn finished(&mut self, worker: &str) -> Option<Trigger> {
        let state = self.workers.get_mut(worker)?;
        state.in_flight = false;
        let next = state.follow_up.take()?;
        state.in_flight = true;
        Some(next)
    }

    /// Running workers silent for `idle_ms` at `now`, once per silence.
    pub fn idle(&mut self, now: Timestamp) -> Vec<Trigger> {
        let quiet: Vec<(String, Option<String>)> = self
            .workers
            .iter()
            .filter(|(_, s)| {
                !s.ended
                    && !s.idle_fired
                    && s.last_event
                        .is_some_and(|at| now.millis() - at.millis() >= self.limits.idle_ms)
            })
            .map(|(w, s)| (w.clone(), s.task.clone()))
            .collect();
        let mut started = Vec::new();
        for (worker, task) in quiet {
            if let Some(state) = self.workers.get_mut(&worker) {
                state.idle_fired = true;
            }
            let trigger = Trigger {
                worker,
                task,
                kind: TriggerKind::Idle,
                reason: format!("no event for {}s", self.limits.idle_ms / 1000),
            };
            started.extend(self.start(trigger, false));
        }
        started
    }

    fn start(&mut self, trigger: Trigger, manual: bool) -> Option<Trigger> {
        let task_key = trigger.task.clone().unwrap_or_default();
        if !manual && self.per_task.get(&task_key).copied().unwrap_or(0) >= self.limits.max_per_task
        {
            return None;
        }
        let state = self.workers.entry(trigger.worker.clone()).or_default();
        if state.in_flight {
            // One follow-up, whatever comes meanwhile; a manual request wins the seat.
            if manual || state.follow_up.is_none() {
                state.follow_up = Some(trigger);
            }
            return None;
        }
        state.in_flight = true;
        if !manual {
            *self.per_task.entry(task_key).or_default() += 1;
        }
        Some(trigger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ev(kind: EventType, secs: i64, payload: Value) -> AgentEvent {
        AgentEvent {
            kind,
            agent: "claude".into(),
            worker: "claude-a".into(),
            task: Some("a".into()),
            seq: 0,
            timestamp: Timestamp(secs * 1000),
            payload: payload.as_object().unwrap().clone().into(),
        }
    }

    fn triggers(max: u32) -> Triggers {
        Triggers::new(TriggerLimits {
            idle_ms: 60_000,
            max_per_task: max,
        })
    }

    #[test]
    fn milestones_blockers_and_requests_trigger_and_progress_does_not() {
        let mut t = triggers(6);
        assert_eq!(
            t.on_event(&ev(EventType::Progress, 1, json!({"text": "x"}))),
            None
        );
        let m = t
            .on_event(&ev(EventType::Milestone, 2, json!({"text": "tests pass"})))
            .unwrap();
        assert_eq!(
            (m.kind, m.reason.as_str()),
            (TriggerKind::Milestone, "tests pass")
        );
        t.finished("claude-a");
        let b = t
            .on_event(&ev(EventType::Blocker, 3, json!({"text": "need help"})))
            .unwrap();
        assert_eq!(b.kind, TriggerKind::Blocker);
        t.finished("claude-a");
        let r = t
            .on_event(&ev(
                EventType::Progress,
                4,
                json!({"text": "x", "review_requested": true}),
            ))
            .unwrap();
        assert_eq!(r.kind, TriggerKind::Requested);
    }

    #[test]
    fn triggers_during_a_review_become_one_follow_up() {
        let mut t = triggers(6);
        assert!(
            t.on_event(&ev(EventType::Milestone, 1, json!({"text": "one"})))
                .is_some()
        );
        assert_eq!(
            t.on_event(&ev(EventType::Milestone, 2, json!({"text": "two"}))),
            None
        );
        assert_eq!(
            t.on_event(&ev(EventType::Blocker, 3, json!({"text": "three"}))),
            None
        );
        let next = t.finished("claude-a").unwrap();
        assert_eq!(next.reason, "two", "the first one waiting");
        assert_eq!(t.finished("claude-a"), None, "only one follow-up");
    }

    #[test]
    fn the_cap_bounds_automatic_reviews_but_not_manual_ones() {
        let mut t = triggers(2);
        for i in 0..2 {
            assert!(
                t.on_event(&ev(EventType::Milestone, i, json!({"text": "m"})))
                    .is_some()
            );
            t.finished("claude-a");
        }
        assert_eq!(
            t.on_event(&ev(EventType::Milestone, 5, json!({"text": "m"}))),
            None
        );
        let manual = t.manual("claude-a", Some("a")).unwrap();
        assert_eq!(manual.kind, TriggerKind::Manual);
        // While it runs, a second manual one waits as the follow-up.
        assert_eq!(t.manual("claude-a", Some("a")), None);
        assert_eq!(t.finished("claude-a").unwrap().kind, TriggerKind::Manual);
    }

    #[test]
    fn a_silent_worker_is_reviewed_once_per_silence() {
        let mut t = triggers(6);
        t.on_event(&ev(EventType::Progress, 0, json!({"text": "working"})));
        assert!(t.idle(Timestamp(59_000)).is_empty());
        let idle = t.idle(Timestamp(60_000));
        assert_eq!(idle.len(), 1);
        assert_eq!(idle[0].kind, TriggerKind::Idle);
        t.finished("claude-a");
        assert!(t.idle(Timestamp(200_000)).is_empty(), "same silence");
        t.on_event(&ev(EventType::Progress, 201, json!({"text": "back"})));
        assert_eq!(t.idle(Timestamp(262_000)).len(), 1, "a new silence");
        t.finished("claude-a");
        t.on_event(&ev(
            EventType::Status,
            300,
            json!({"phase": "exited", "text": "exited"}),
        ));
        assert!(
            t.idle(Timestamp(900_000)).is_empty(),
            "an ended worker is not idle"
        );
    }
}
