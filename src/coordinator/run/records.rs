//! What the coordinator keeps in the database for `status` and later readers: task rows and
//! worker rows; plus the lookups it makes in worker journals (conversation ids, usage).

use serde_json::json;

use super::{Coordinator, RunningTask};
use crate::coordinator::plan::Plan;
use crate::coordinator::runs;
use crate::coordinator::schedule::{Scheduler, TaskStatus};
use crate::event::{AgentEvent, read_journal};
use crate::session::store::{TaskRow, WorkerRow};
use crate::timestamp::Timestamp;

impl Coordinator {
    pub(super) fn save_all(&self, sched: &Scheduler, plan: &Plan) {
        for task in &plan.tasks {
            self.save_task(sched, &task.id, plan);
        }
    }

    pub(super) fn save_task(&self, sched: &Scheduler, id: &str, plan: &Plan) {
        let Some(task) = plan.tasks.iter().find(|t| t.id == id) else {
            return;
        };
        let row = TaskRow {
            id: task.id.clone(),
            title: task.title.clone(),
            prompt: task.prompt.clone(),
            agent: Some(task.agent.clone()),
            role: task.role.map(|r| r.name().to_string()),
            depends_on: json!(task.depends_on).to_string(),
            state: sched
                .status(id)
                .map_or("pending", TaskStatus::name)
                .to_string(),
            retries: i64::from(sched.attempts(id).saturating_sub(1)),
            branch: self
                .target_is_git
                .then(|| runs::branch_name(&self.session.id, id)),
        };
        let _ = self.store.upsert_task(&self.session.id, &row);
    }

    pub(super) fn save_worker(&self, task: &str, r: &RunningTask, exited: &AgentEvent) {
        let (events, _) = read_journal(&self.session.events_path(&r.name)).unwrap_or_default();
        let usage = usage_of(&events);
        let row = WorkerRow {
            name: r.name.clone(),
            task: Some(task.to_string()),
            agent: exited.agent.to_string(),
            pid: Some(i64::from(r.worker.pid())),
            state: r.status.state().to_string(),
            exit_code: exited.i64_field("exit_code"),
            signal: exited.i64_field("signal"),
            agent_session_id: last_agent_session(&self.session.events_path(&r.name)),
            input_tokens: usage.0,
            output_tokens: usage.1,
            cost_usd: usage.2,
        };
        let _ = self
            .store
            .upsert_worker(&self.session.id, &row, Timestamp::now());
    }
}

/// The agent's own conversation id from its journal's last `init`.
pub fn last_agent_session(events_path: &std::path::Path) -> Option<String> {
    let (events, _) = read_journal(events_path).ok()?;
    events
        .iter()
        .rev()
        .find(|e| e.phase() == Some("init"))
        .and_then(|e| e.str_field("session_id"))
        .map(str::to_string)
}

/// Token totals and cost from a worker's journal: each run's final report, summed.
pub fn usage_of(events: &[AgentEvent]) -> (i64, i64, f64) {
    events
        .iter()
        .filter(|e| e.bool_field("final"))
        .fold((0, 0, 0.0), |(i, o, c), e| {
            let usage = &e.payload.get("usage");
            let get = |k: &str| {
                usage
                    .and_then(|u| u.get(k))
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0)
            };
            let cost = e
                .payload
                .get("cost_usd")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            (i + get("input_tokens"), o + get("output_tokens"), c + cost)
        })
}
