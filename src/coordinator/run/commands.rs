//! Control commands from the socket: pause, resume, stop, kill, input, review and status,
//! for one worker or the whole session. Every reply says whether the command took effect,
//! and every command is journaled.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::tasks::stop_in_background;
use super::{Coordinator, EndedBy, RunningTask};
use crate::agents::Draft;
use crate::coordinator::control::{ControlCommand, ControlReply, ControlRequest, EXPIRED};
use crate::coordinator::schedule::Scheduler;
use crate::event::EventType;
use crate::timestamp::Timestamp;
use crate::worker::Worker;

impl Coordinator {
    pub(super) fn on_control(
        &mut self,
        request: &ControlRequest,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
    ) -> ControlReply {
        if request.expired(Timestamp::now()) {
            self.journal_control(request, false, EXPIRED);
            return ControlReply::refused(EXPIRED);
        }
        if request.cmd == ControlCommand::Clarify {
            let reply = self.clarify(request.worker.as_deref(), running);
            self.journal_control(request, reply.ok, &reply.message);
            return reply;
        }
        if request.cmd == ControlCommand::Restart {
            let reply = self.restart_task(request.worker.as_deref(), sched);
            self.journal_control(request, reply.ok, &reply.message);
            return reply;
        }
        if request.cmd == ControlCommand::Resume
            && request.worker.is_none()
            && let Err(reply) = self.unblock_disk(running)
        {
            self.journal_control(request, false, &reply.message);
            return reply;
        }
        // A worker that exited while its journal waits for the disk has nothing to signal.
        let targets: Vec<(String, Arc<Worker>)> = match &request.worker {
            None => running
                .values()
                .filter(|r| r.pending_exit.is_none())
                .map(|r| (r.name.clone(), Arc::clone(&r.worker)))
                .collect(),
            Some(name) => match running.values().find(|r| &r.name == name) {
                Some(r) => vec![(r.name.clone(), Arc::clone(&r.worker))],
                None => {
                    let names: Vec<&str> = running.values().map(|r| r.name.as_str()).collect();
                    let reply = ControlReply::refused(format!(
                        "no running worker named {name:?} (running: {})",
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ));
                    self.journal_control(request, false, &reply.message);
                    return reply;
                }
            },
        };
        // The whole session paused or resumed: its reviewers too.
        let mut targets = targets;
        if request.worker.is_none()
            && matches!(request.cmd, ControlCommand::Pause | ControlCommand::Resume)
        {
            targets.extend(self.reviewer_workers());
        }
        let names = || {
            targets
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let reply = match request.cmd {
            ControlCommand::Pause => {
                if request.worker.is_none() {
                    self.paused = true;
                }
                let failed = failures(&targets, Worker::pause);
                if failed.is_empty() {
                    let scope = if request.worker.is_none() {
                        "session paused; no new task starts"
                    } else {
                        "paused"
                    };
                    ControlReply::done(format!(
                        "{scope} ({} worker(s) stopped: {})",
                        targets.len(),
                        names()
                    ))
                } else {
                    ControlReply::refused(format!("could not pause {}", failed.join("; ")))
                }
            }
            ControlCommand::Resume => {
                if request.worker.is_none() {
                    self.paused = false;
                }
                // A review's pause held these tasks' ends: the operator has looked.
                let held: Vec<String> = self.clarify_holds.iter().cloned().collect();
                for task in held {
                    if let Some(r) = running
                        .get_mut(&task)
                        .filter(|r| request.worker.as_ref().is_none_or(|w| *w == r.name))
                    {
                        self.clarify_holds.remove(&task);
                        if let Some(exit) = r.pending_exit.take() {
                            let _ = self.inbox_tx.send(super::Inbox::Event(exit));
                        }
                    }
                }
                let failed = failures(&targets, Worker::resume);
                if failed.is_empty() {
                    ControlReply::done(format!("resumed {} worker(s): {}", targets.len(), names()))
                } else {
                    ControlReply::refused(format!("could not resume {}", failed.join("; ")))
                }
            }
            ControlCommand::Stop | ControlCommand::Kill => {
                let kill = request.cmd == ControlCommand::Kill;
                match &request.worker {
                    None => {
                        let n = running.len();
                        self.stop_session(sched, running, kill);
                        ControlReply::done(format!(
                            "stopping the session ({n} worker(s) {})",
                            if kill {
                                "killed"
                            } else {
                                "get SIGTERM, then SIGKILL after the grace period"
                            }
                        ))
                    }
                    Some(name) => {
                        for r in running.values_mut().filter(|r| &r.name == name) {
                            r.ended_by = Some(EndedBy::Operator);
                            stop_in_background(&r.worker, kill);
                        }
                        ControlReply::done(format!(
                            "{} {name}",
                            if kill { "killing" } else { "stopping" }
                        ))
                    }
                }
            }
            ControlCommand::Input => match (&request.worker, &request.data) {
                (Some(_), Some(data)) => match targets[0].1.write_input(data.as_bytes()) {
                    Ok(()) => {
                        ControlReply::done(format!("{} byte(s) sent to {}", data.len(), names()))
                    }
                    Err(e) => ControlReply::refused(format!("cannot write to {}: {e}", names())),
                },
                _ => ControlReply::refused("input needs a worker and data"),
            },
            ControlCommand::Review if !self.settings.config.review.enabled => {
                ControlReply::refused(
                    "reviews are off in this session ([review] enabled = false in orchestrate.toml)",
                )
            }
            ControlCommand::Review => {
                let wanted: Vec<(String, String)> = running
                    .iter()
                    .filter(|(_, r)| request.worker.as_ref().is_none_or(|w| *w == r.name))
                    .map(|(task, r)| (task.clone(), r.name.clone()))
                    .collect();
                let mut started = Vec::new();
                for (task, worker) in &wanted {
                    if let Some(trigger) = self.triggers.manual(worker, Some(task)) {
                        started.push(trigger);
                    }
                }
                let queued = wanted.len() - started.len();
                for trigger in started {
                    self.start_review(trigger, Vec::new(), running);
                }
                ControlReply::done(format!(
                    "review requested for {} ({queued} after the review under way)",
                    names()
                ))
            }
            // Handled before the targets are chosen, or by the loop itself.
            ControlCommand::Restart => ControlReply::refused("restart needs a worker"),
            ControlCommand::Evaluate
            | ControlCommand::Clarify
            | ControlCommand::Approvals
            | ControlCommand::Approve
            | ControlCommand::Deny => {
                ControlReply::refused("not now: the session is not running tasks")
            }
            ControlCommand::Status => {
                let tasks: Vec<String> = sched
                    .statuses()
                    .map(|(id, s)| format!("{id}={s}"))
                    .collect();
                let state = match &self.disk_blocked {
                    Some(reason) => format!("paused (disk: {reason})"),
                    None if self.paused => "paused".into(),
                    None => "running".into(),
                };
                ControlReply::done(format!(
                    "{state}{}: {}",
                    if self.stopping { " (stopping)" } else { "" },
                    tasks.join(" ")
                ))
            }
        };
        if request.cmd != ControlCommand::Status {
            self.journal_control(request, reply.ok, &reply.message);
        }
        reply
    }

    /// The task of `worker` runs again, if it failed or was stopped.
    fn restart_task(&mut self, worker: Option<&str>, sched: &mut Scheduler) -> ControlReply {
        if self.stopping {
            return ControlReply::refused("the session is stopping");
        }
        let Some(worker) = worker else {
            return ControlReply::refused("restart needs the worker whose task runs again");
        };
        let plan = self.current_plan.clone();
        let Some(task) = plan
            .iter()
            .flat_map(|p| &p.tasks)
            .find(|t| super::worker_name(t) == worker)
        else {
            return ControlReply::refused(format!("no task is run by worker {worker:?}"));
        };
        match sched.restart(&task.id) {
            Ok(unskipped) => {
                // The operator fixed what recovery could not: its budgets start again (the
                // launch changes stay).
                if let Some(state) = self.recovery.get_mut(&task.id) {
                    state.used.clear();
                }
                self.record_restart(&task.id, &unskipped);
                ControlReply::done(format!("task {} will run again", task.id))
            }
            Err(why) => ControlReply::refused(why),
        }
    }

    /// Journals that `task` (and what it had skipped) is pending again.
    pub(super) fn record_restart(&mut self, task: &str, unskipped: &[String]) {
        for id in std::iter::once(task).chain(unskipped.iter().map(String::as_str)) {
            self.record(
                Some(id),
                Draft::new(EventType::Status, format!("task {id} will run again"))
                    .with("phase", "task_restarted"),
            );
        }
    }

    pub(super) fn stop_session(
        &mut self,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
        kill: bool,
    ) {
        self.stopping = true;
        sched.stop();
        for (_, reviewer) in self.reviewer_workers() {
            stop_in_background(&reviewer, kill);
        }
        for r in running.values_mut() {
            r.ended_by = Some(EndedBy::Operator);
            match r.pending_exit.take() {
                // Gone already, its journal waiting for the disk: settled as stopped now.
                Some(exit) => {
                    let _ = self.inbox_tx.send(super::Inbox::Event(exit));
                }
                None => stop_in_background(&r.worker, kill),
            }
        }
    }

    pub(super) fn journal_control(
        &mut self,
        request: &ControlRequest,
        took_effect: bool,
        message: &str,
    ) {
        let what = match &request.worker {
            Some(w) => format!("{} {w}", request.cmd.name()),
            None => format!("{} session", request.cmd.name()),
        };
        self.record(
            None,
            Draft::new(EventType::Control, format!("{what}: {message}"))
                .with("phase", "control")
                .with("command", request.cmd.name())
                .with_some("target", request.worker.clone())
                .with("took_effect", took_effect),
        );
    }
}

/// Does `act` to every target; what failed, by worker.
fn failures(
    targets: &[(String, Arc<Worker>)],
    act: impl Fn(&Worker) -> std::io::Result<()>,
) -> Vec<String> {
    targets
        .iter()
        .filter_map(|(name, worker)| act(worker).err().map(|e| format!("{name}: {e}")))
        .collect()
}
