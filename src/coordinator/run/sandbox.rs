//! The sandbox in the coordinator: the hook each CLI runs before a tool asks here, the policy
//! answers, and a `confirm` waits for the operator (`approve` / `deny`, the dashboard, or the
//! approval timeout, which denies). Every verdict but a plain allow is journaled as a
//! `decision` of rule `sandbox`; watched patterns become `finding`s.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;

use serde::Serialize;

use super::{Coordinator, RunningTask};
use crate::agents::guard::{Guard, shell_quote};
use crate::agents::{AgentKind, Draft, hook};
use crate::coordinator::control::{ControlCommand, ControlReply, ControlRequest};
use crate::event::EventType;
use crate::safety::{Decision, ToolCall};
use crate::timestamp::Timestamp;

/// An approval waiting for the operator.
pub(super) struct PendingApproval {
    pub id: String,
    pub worker: String,
    pub task: Option<String>,
    pub what: String,
    pub reason: String,
    pub requested: Timestamp,
    pub deadline: Timestamp,
    /// Where the waiting hook's answer goes; gone after a coordinator restart.
    pub reply: Option<Sender<ControlReply>>,
    /// The call waiting, whose writes still need their leases once approved; with `reply`.
    pub call: Option<ToolCall>,
}

/// An approval as `orchestrate approvals` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ApprovalView {
    pub id: String,
    pub worker: String,
    pub task: Option<String>,
    pub what: String,
    pub reason: String,
    pub requested: Timestamp,
    pub deadline: Timestamp,
    /// False once the hook that asked is gone (the coordinator restarted): approving then
    /// lets the agent's next try of the same command through.
    pub waiting: bool,
}

impl Coordinator {
    /// The hook and static rules the worker `name`'s CLI is launched with.
    pub(super) fn guard(&self, kind: AgentKind, name: &str) -> Guard {
        let sandbox = &self.settings.config.sandbox;
        Guard {
            hook: format!(
                "{} hook {} --socket {} --worker {} --timeout {}",
                shell_quote(&self.exe.display().to_string()),
                kind.name(),
                shell_quote(&self.session.control_socket().display().to_string()),
                shell_quote(name),
                sandbox.approval_timeout_secs + 30,
            ),
            blocked: sandbox.blocked.clone(),
            hook_timeout_secs: sandbox.approval_timeout_secs + 60,
        }
    }

    /// A hook asks about a tool call. Allow and deny answer at once; confirm keeps `reply`
    /// until the operator answers or the approval times out.
    pub(super) fn on_evaluate(
        &mut self,
        request: &ControlRequest,
        reply: Sender<ControlReply>,
        running: &BTreeMap<String, RunningTask>,
    ) {
        let worker = request.worker.clone().unwrap_or_default();
        let input: serde_json::Value = match request.data.as_deref().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => {
                let _ = reply.send(ControlReply::refused("the hook sent no tool call"));
                return;
            }
        };
        let call = hook::tool_call(&input);
        let verdict = self.policy.evaluate(&call);
        let task = running
            .iter()
            .find(|(_, r)| r.name == worker)
            .map(|(id, _)| id.clone());
        let what = describe(&call);
        for finding in &verdict.findings {
            self.record(
                task.as_deref(),
                Draft::new(
                    EventType::Finding,
                    format!("{worker} ran a watched command: {finding}"),
                )
                .with("phase", "sandbox_watch")
                .with("worker", worker.clone())
                .with("severity", "warning"),
            );
        }
        let allowed = match verdict.verdict {
            Decision::Allow => Some("allow"),
            Decision::Confirm if self.approved.contains(&(worker.clone(), what.clone())) => {
                Some("allow (approved before)")
            }
            _ => None,
        };
        // A write the sandbox allows still needs the path's lease.
        if let Some(allow) = allowed {
            let answer = match self.lease_for_write(&worker, task.as_deref(), &call) {
                Ok(()) => ControlReply::done(allow),
                Err(reason) => ControlReply::refused(reason),
            };
            let _ = reply.send(answer);
            return;
        }
        let answer = match verdict.verdict {
            Decision::Allow => ControlReply::done("allow"),
            Decision::Confirm if self.approved.contains(&(worker.clone(), what.clone())) => {
                ControlReply::done("allow (approved before)")
            }
            Decision::Deny => {
                self.record_decision(task.as_deref(), &worker, "deny", &verdict.reason, &what);
                ControlReply::refused(verdict.reason)
            }
            Decision::Confirm => {
                self.ask_operator(&worker, task, (what, call), verdict.reason, reply, running);
                return;
            }
        };
        let _ = reply.send(answer);
    }

    /// Raises an approval: journaled, shown on the worker (waiting), answered later.
    fn ask_operator(
        &mut self,
        worker: &str,
        task: Option<String>,
        (what, call): (String, ToolCall),
        reason: String,
        reply: Sender<ControlReply>,
        running: &BTreeMap<String, RunningTask>,
    ) {
        // The same call, asked before the coordinator restarted: the operator sees one
        // approval, and answering it now reaches the agent asking again.
        if let Some(open) = self
            .pending_approvals
            .iter_mut()
            .find(|a| a.reply.is_none() && a.worker == worker && a.what == what)
        {
            open.reply = Some(reply);
            open.call = Some(call);
            return;
        }
        self.approval_count += 1;
        let id = format!("a{}", self.approval_count);
        let now = Timestamp::now();
        let timeout = self.settings.config.sandbox.approval_timeout_secs;
        let deadline = Timestamp(now.millis() + timeout as i64 * 1000);
        self.record(
            task.as_deref(),
            Draft::new(
                EventType::Decision,
                format!("{worker} waits for approval {id}: {what} ({reason})"),
            )
            .with("phase", "approval_requested")
            .with("rule", "sandbox")
            .with("action", "confirm")
            .with("reason", reason.clone())
            .with("approval", id.clone())
            .with("worker", worker.to_string())
            .with("what", what.clone())
            .with("deadline_ms", deadline.millis()),
        );
        if let Some(r) = running.values().find(|r| r.name == worker) {
            r.worker.note(
                Draft::new(
                    EventType::Blocker,
                    format!(
                        "waiting for approval {id}: {what} (orchestrate approve {} {id})",
                        self.session.id
                    ),
                )
                .with("phase", "approval_requested")
                .with("approval", id.clone())
                .with("reason", reason.clone()),
            );
        }
        self.pending_approvals.push(PendingApproval {
            id,
            worker: worker.to_string(),
            task,
            what,
            reason,
            requested: now,
            deadline,
            reply: Some(reply),
            call: Some(call),
        });
    }

    /// `approve` / `deny` / `approvals` from the socket.
    pub(super) fn on_approval_command(
        &mut self,
        request: &ControlRequest,
        running: &BTreeMap<String, RunningTask>,
    ) -> ControlReply {
        if request.cmd == ControlCommand::Approvals {
            let open: Vec<ApprovalView> = self.pending_approvals.iter().map(view).collect();
            return ControlReply::done(serde_json::to_string(&open).unwrap_or_default());
        }
        let id = request.data.clone().unwrap_or_default();
        let Some(at) = self.pending_approvals.iter().position(|a| a.id == id) else {
            let open: Vec<&str> = self
                .pending_approvals
                .iter()
                .map(|a| a.id.as_str())
                .collect();
            return ControlReply::refused(format!(
                "no open approval {id:?} (open: {})",
                if open.is_empty() {
                    "none".into()
                } else {
                    open.join(", ")
                }
            ));
        };
        let approval = self.pending_approvals.remove(at);
        let by = request.by.clone().unwrap_or_else(|| "operator".into());
        let approve = request.cmd == ControlCommand::Approve;
        let why = request
            .reason
            .clone()
            .unwrap_or_else(|| format!("denied by {by}"));
        self.answer(approval, approve, &by, &why, running)
    }

    /// Answers one approval: the waiting hook, the journals, and for an approve a standing
    /// permission for that worker and command (the agent's retry after a restart).
    fn answer(
        &mut self,
        approval: PendingApproval,
        approve: bool,
        by: &str,
        why: &str,
        running: &BTreeMap<String, RunningTask>,
    ) -> ControlReply {
        let (action, text) = if approve {
            (
                "approved",
                format!(
                    "approval {} approved by {by}: {}",
                    approval.id, approval.what
                ),
            )
        } else {
            (
                "denied",
                format!("approval {} denied ({why}): {}", approval.id, approval.what),
            )
        };
        if approve {
            self.approved
                .insert((approval.worker.clone(), approval.what.clone()));
        }
        // Approved by the operator, a write still needs its path's lease.
        let hook_answer = match (&approval.call, approve) {
            (Some(call), true) => {
                match self.lease_for_write(&approval.worker, approval.task.as_deref(), call) {
                    Ok(()) => ControlReply::done("allow (approved)"),
                    Err(reason) => ControlReply::refused(reason),
                }
            }
            (None, true) => ControlReply::done("allow (approved)"),
            (_, false) => ControlReply::refused(format!("{why} (approval {})", approval.id)),
        };
        let delivered = approval
            .reply
            .as_ref()
            .is_some_and(|tx| tx.send(hook_answer).is_ok());
        self.record(
            approval.task.as_deref(),
            Draft::new(EventType::Decision, text.clone())
                .with("phase", "approval_answered")
                .with("rule", "sandbox")
                .with("action", action)
                .with(
                    "reason",
                    if approve {
                        format!("by {by}")
                    } else {
                        why.to_string()
                    },
                )
                .with("approval", approval.id.clone())
                .with("worker", approval.worker.clone())
                .with("what", approval.what.clone())
                .with("by", by.to_string())
                .with("delivered", delivered),
        );
        if let Some(r) = running.values().find(|r| r.name == approval.worker) {
            r.worker.note(
                Draft::new(EventType::Progress, text.clone())
                    .with("phase", "approval_answered")
                    .with("approval", approval.id.clone()),
            );
        }
        let note = if delivered {
            ""
        } else {
            " (the agent had stopped waiting; its next try of the same command runs)"
        };
        ControlReply::done(format!("{text}{note}"))
    }

    /// Approvals nobody answered in time are denied.
    pub(super) fn expire_approvals(&mut self, running: &BTreeMap<String, RunningTask>) {
        let now = Timestamp::now();
        while let Some(at) = self
            .pending_approvals
            .iter()
            .position(|a| a.deadline.millis() <= now.millis())
        {
            let approval = self.pending_approvals.remove(at);
            let why = format!(
                "no answer within {}s",
                self.settings.config.sandbox.approval_timeout_secs
            );
            self.answer(approval, false, "timeout", &why, running);
        }
    }

    fn record_decision(
        &mut self,
        task: Option<&str>,
        worker: &str,
        action: &str,
        reason: &str,
        what: &str,
    ) {
        self.record(
            task,
            Draft::new(
                EventType::Decision,
                format!("sandbox {action}: {worker}: {reason}"),
            )
            .with("phase", "sandbox")
            .with("rule", "sandbox")
            .with("action", action.to_string())
            .with("reason", reason.to_string())
            .with("worker", worker.to_string())
            .with("what", what.to_string()),
        );
    }

    /// On resume: approvals still open in the journal are open again (without a hook
    /// waiting); their deadline stands.
    pub(super) fn restore_approvals(&mut self, events: &[crate::event::AgentEvent]) {
        let mut open: BTreeMap<String, PendingApproval> = BTreeMap::new();
        for e in events {
            let Some(id) = e.str_field("approval") else {
                continue;
            };
            match e.phase() {
                Some("approval_requested") => {
                    self.approval_count = self
                        .approval_count
                        .max(id.trim_start_matches('a').parse().unwrap_or(0));
                    open.insert(
                        id.to_string(),
                        PendingApproval {
                            id: id.to_string(),
                            worker: e.str_field("worker").unwrap_or("").to_string(),
                            task: e.task.as_deref().map(str::to_string),
                            what: e.str_field("what").unwrap_or("").to_string(),
                            reason: e.str_field("reason").unwrap_or("").to_string(),
                            requested: e.timestamp,
                            deadline: Timestamp(e.i64_field("deadline_ms").unwrap_or(0)),
                            reply: None,
                            call: None,
                        },
                    );
                }
                Some("approval_answered") => {
                    open.remove(id);
                    if e.str_field("action") == Some("approved")
                        && let (Some(w), Some(what)) = (e.str_field("worker"), e.str_field("what"))
                    {
                        self.approved.insert((w.to_string(), what.to_string()));
                    }
                }
                _ => {}
            }
        }
        self.pending_approvals = open.into_values().collect();
    }
}

fn view(a: &PendingApproval) -> ApprovalView {
    ApprovalView {
        id: a.id.clone(),
        worker: a.worker.clone(),
        task: a.task.clone(),
        what: a.what.clone(),
        reason: a.reason.clone(),
        requested: a.requested,
        deadline: a.deadline,
        waiting: a.reply.is_some(),
    }
}

/// The tool call in a few words: the command, or what is written.
fn describe(call: &ToolCall) -> String {
    match call {
        ToolCall::Shell { command, .. } => command.clone(),
        ToolCall::Write { path, .. } => format!("write {}", path.display()),
        ToolCall::Patch { patch, .. } => format!(
            "patch {}",
            crate::safety::policy::patch_paths(patch).join(", ")
        ),
        ToolCall::Other => "a tool".into(),
    }
}
