//! What the coordinator keeps in the database for `status` and later readers: task rows and
//! worker rows; plus what it reads of a worker's journal (conversation id, usage) through its summary.

use serde_json::json;

use super::{Coordinator, RunningTask};
use crate::coordinator::plan::Plan;
use crate::coordinator::runs;
use crate::coordinator::schedule::{Scheduler, TaskStatus};
use crate::event::AgentEvent;
use crate::session::store::{TaskRow, WorkerRow};
use crate::timestamp::Timestamp;
use crate::worker::WorkerSummary;

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

    /// What a worker's journal adds up to, read from its summary (see `worker::summary`).
    pub(super) fn worker_summary(&self, name: &str) -> WorkerSummary {
        WorkerSummary::load(
            &self.session.summary_path(name),
            &self.session.events_path(name),
        )
        .unwrap_or_default()
    }

    pub(super) fn save_worker(&self, task: &str, r: &RunningTask, exited: &AgentEvent) {
        let summary = self.worker_summary(&r.name);
        let usage = summary.usage;
        let row = WorkerRow {
            name: r.name.clone(),
            task: Some(task.to_string()),
            agent: exited.agent.to_string(),
            pid: Some(i64::from(r.worker.pid())),
            state: r.status.state().to_string(),
            exit_code: exited.i64_field("exit_code"),
            signal: exited.i64_field("signal"),
            agent_session_id: summary.agent_session,
            input_tokens: usage.input_tokens as i64,
            output_tokens: usage.output_tokens as i64,
            cost_usd: usage.cost_usd,
        };
        let _ = self
            .store
            .upsert_worker(&self.session.id, &row, Timestamp::now());
    }
}
