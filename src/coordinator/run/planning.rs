//! Planning a session: the saved plan of an earlier run, the plan file, or the planner
//! agent's answer (falling back to design -> implement -> review when it is unusable).

use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;

use anyhow::{Context, Result, bail};

use super::{Coordinator, Inbox, PLANNER_TIMEOUT, TERMINATE, TICK};
use crate::agents::{Autonomy, Draft};
use crate::coordinator::control::{ControlCommand, ControlReply, EXPIRED};
use crate::coordinator::plan::{self, Plan, PlannedTask};
use crate::event::EventType;
use crate::timestamp::Timestamp;
use crate::worker::WorkerStatus;

impl Coordinator {
    /// The plan: saved from an earlier run of this session, given with --plan, or asked of the
    /// planner agent (falling back to design -> implement -> review). `None` if stopped while
    /// planning.
    pub(super) fn plan(&mut self) -> Result<Option<Plan>> {
        let saved = self.session.path.join("plan.json");
        if let Ok(text) = std::fs::read_to_string(&saved) {
            return Ok(Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a plan", saved.display()))?,
            ));
        }
        let (tasks, source) = match self.settings.plan.clone() {
            Some(tasks) => (tasks, "the plan file".to_string()),
            None => match self.ask_planner()? {
                PlannerAnswer::Stopped => return Ok(None),
                PlannerAnswer::Plan(tasks) => (
                    tasks,
                    format!("the planner ({})", self.settings.config.planner),
                ),
                PlannerAnswer::Unusable(why) => {
                    self.record(None, Draft::new(EventType::Status, format!("planner answer unusable ({why}); using design -> implement -> review"))
                        .with("phase", "planner_fallback").with("reason", why));
                    (
                        plan::fallback_plan(&self.info.prompt),
                        "the fallback roles".to_string(),
                    )
                }
            },
        };
        // A task that names neither agent nor role goes to the role of the router target its
        // prompt routes to (`[router.targets.NAME] role`).
        let tasks = match crate::meta::router::Router::new(&self.settings.config.router) {
            Ok(router) => plan::route_roles(tasks, |prompt| {
                let target = router.route(prompt).target;
                self.settings
                    .config
                    .router
                    .targets
                    .get(&target)
                    .and_then(|t| t.role.clone())
            }),
            Err(_) => tasks,
        };
        let plan = match plan::validate(tasks, &self.available) {
            Ok(plan) => plan,
            Err(e) if source.starts_with("the planner") => {
                self.record(
                    None,
                    Draft::new(
                        EventType::Status,
                        format!(
                            "planner's plan invalid ({e}); using design -> implement -> review"
                        ),
                    )
                    .with("phase", "planner_fallback")
                    .with("reason", e.to_string()),
                );
                plan::validate(plan::fallback_plan(&self.info.prompt), &self.available)?
            }
            Err(e) => bail!("invalid plan: {e}"),
        };
        for task in plan.tasks.iter().filter(|t| t.reassigned.is_some()) {
            let why = task.reassigned.clone().unwrap_or_default();
            self.record(
                Some(&task.id),
                Draft::new(EventType::Status, format!("task {}: {why}", task.id))
                    .with("phase", "task_reassigned")
                    .with("agent", task.agent.clone()),
            );
        }
        let summary: Vec<String> = plan
            .tasks
            .iter()
            .map(|t| format!("{} ({})", t.id, t.agent))
            .collect();
        self.record(
            None,
            Draft::new(
                EventType::Status,
                format!(
                    "planned {} tasks from {source}: {}",
                    plan.tasks.len(),
                    summary.join(", ")
                ),
            )
            .with("phase", "planned")
            .with("tasks", serde_json::to_value(&plan.tasks)?)
            .with("tier", self.available.tier().to_string()),
        );
        crate::session::layout::write_atomically(&saved, &serde_json::to_string_pretty(&plan)?)
            .with_context(|| format!("cannot write {}", saved.display()))?;
        Ok(Some(plan))
    }

    fn ask_planner(&mut self) -> Result<PlannerAnswer> {
        let name = self.settings.config.planner.clone();
        let agent = if self.available.is_present(&name) {
            name
        } else {
            match self.available.agent_for(plan::Role::Design) {
                Some(a) => a,
                None => return Ok(PlannerAnswer::Unusable("no planner available".into())),
            }
        };
        let scratch = self.session.path.join("planning");
        std::fs::create_dir_all(&scratch)?;
        let prompt = plan::planner_prompt(&self.info.prompt);
        let worker_name = "planner".to_string();
        let worker = self.spawn_worker(
            &worker_name,
            None,
            &agent,
            &prompt,
            &scratch,
            vec![self.info.target.clone()],
            Autonomy::ReadOnly,
            None,
            None,
        )?;
        self.record(
            None,
            Draft::new(EventType::Status, format!("asking {agent} for a plan"))
                .with("phase", "planning")
                .with("worker", worker_name.clone()),
        );
        let deadline = Timestamp(Timestamp::now().millis() + PLANNER_TIMEOUT.as_millis() as i64);
        let mut status = WorkerStatus::default();
        let mut answer = String::new();
        loop {
            if TERMINATE.load(Ordering::SeqCst) || Timestamp::now() > deadline {
                worker.kill();
                if TERMINATE.load(Ordering::SeqCst) {
                    return Ok(PlannerAnswer::Stopped);
                }
                return Ok(PlannerAnswer::Unusable("the planner took too long".into()));
            }
            match self.inbox.recv_timeout(TICK) {
                Ok(Inbox::Event(e)) if *e.worker == *worker_name => {
                    status.observe(&e);
                    if e.kind == EventType::Milestone && e.bool_field("final") {
                        if let Some(result) = e.str_field("result").filter(|r| !r.is_empty()) {
                            answer = result.to_string();
                        }
                    } else if e.kind == EventType::Progress
                        && e.str_field("kind") == Some("message")
                    {
                        answer = e.str_field("message").unwrap_or(e.text()).to_string();
                    }
                    if e.phase() == Some("exited") {
                        break;
                    }
                }
                Ok(Inbox::Event(_) | Inbox::Checked { .. }) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Inbox::Control(request, _)) if request.expired(Timestamp::now()) => {
                    self.journal_control(&request, false, EXPIRED);
                }
                // The planner's own tool calls are checked like any worker's.
                Ok(Inbox::Control(request, reply)) if request.cmd == ControlCommand::Evaluate => {
                    self.on_evaluate(&request, reply, &std::collections::BTreeMap::new());
                }
                Ok(Inbox::Control(request, reply)) => {
                    if matches!(request.cmd, ControlCommand::Stop | ControlCommand::Kill)
                        && request.worker.is_none()
                    {
                        self.journal_control(&request, true, "stopping while planning");
                        let _ = reply.send(ControlReply::done("stopping: the planner is killed"));
                        worker.kill();
                        return Ok(PlannerAnswer::Stopped);
                    }
                    let _ = reply.send(ControlReply::refused("the session is still planning"));
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if !status.reported_success() {
            return Ok(PlannerAnswer::Unusable(format!(
                "the planner {}",
                status.state()
            )));
        }
        Ok(match plan::parse_planner_answer(&answer) {
            Ok(tasks) => PlannerAnswer::Plan(tasks),
            Err(e) => PlannerAnswer::Unusable(e.to_string()),
        })
    }
}

enum PlannerAnswer {
    Plan(Vec<PlannedTask>),
    Unusable(String),
    Stopped,
}
