//! One attempt of a task: preparing its run directory, launching its agent as a worker, and
//! what its end means for the scheduler (success, a retry, or failure that skips dependents).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Coordinator, EndedBy, Inbox, RunningTask};
use crate::agents::{Autonomy, Draft};
use crate::coordinator::launch::{AgentSource, WorkerLaunch};
use crate::coordinator::plan::{self, Plan};
use crate::coordinator::runs::{self, Base};
use crate::coordinator::schedule::{AttemptOutcome, Scheduler};
use crate::event::{AgentEvent, EventType};
use crate::session::store::WorkerRow;
use crate::timestamp::Timestamp;
use crate::worker::{Worker, WorkerSpec, WorkerStatus};

impl Coordinator {
    pub(super) fn start_task(
        &mut self,
        plan: &Plan,
        task: &plan::Task,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
        resumed: bool,
    ) {
        let branch = runs::branch_name(&self.session.id, &task.id);
        let run_dir = self.session.run_dir(&task.id);
        let base = match task.depends_on.split_first() {
            Some((dep, others)) => Base::Task {
                branch: runs::branch_name(&self.session.id, dep),
                dir: self.session.run_dir(dep),
                merge: others
                    .iter()
                    .map(|d| runs::branch_name(&self.session.id, d))
                    .collect(),
            },
            None => Base::Target,
        };
        let attempt = sched.start(&task.id);
        let name = worker_name(task);
        // Continue the agent's own conversation when resuming a task that had started.
        // Sent back with the reviewers' concerns: the agent continues its own conversation.
        let concerns = self.clarify_prompts.remove(&task.id);
        // After a usage limit, an API failure or the turn limit: it continues too.
        let continues = self.take_continue(&task.id);
        let agent_session = if resumed || concerns.is_some() || continues {
            self.worker_summary(&name).agent_session
        } else {
            None
        };
        let started = runs::prepare(&self.info.target, &run_dir, &branch, &base, self.settings.config.copy_limit_mb)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                let prompt = concerns.clone().unwrap_or_else(|| {
                    if continues && agent_session.is_some() {
                        super::recovery::CONTINUE_PROMPT.to_string()
                    } else {
                        format!(
                            "{}\n\n(You are task \"{}\" of a session with the goal: {}. Work in the current directory.)",
                            task.prompt, task.title, self.info.prompt
                        )
                    }
                });
                self.spawn_worker(&name, Some(&task.id), &task.agent, &prompt, &run_dir, Vec::new(), self.profile_autonomy(&task.agent), agent_session.clone(), None)
            });
        match started {
            Ok(worker) => {
                self.record(
                    Some(&task.id),
                    Draft::new(
                        EventType::Status,
                        format!("task {} started: {} (attempt {attempt})", task.id, name),
                    )
                    .with("phase", "task_started")
                    .with("attempt", attempt)
                    .with("worker", name.clone())
                    .with("agent", task.agent.clone())
                    .with("pid", worker.pid())
                    .with(
                        "branch",
                        if self.target_is_git {
                            branch.clone()
                        } else {
                            String::new()
                        },
                    )
                    .with_some("resumed_conversation", agent_session),
                );
                let writes = self.profile_autonomy(&task.agent) != Autonomy::ReadOnly;
                let worker = Arc::new(worker);
                let limiter = Some(self.limit_worker(&worker));
                running.insert(
                    task.id.clone(),
                    RunningTask {
                        worker,
                        commands: Default::default(),
                        limiter,
                        name,
                        status: WorkerStatus::default(),
                        started: Timestamp::now(),
                        ended_by: None,
                        pending_exit: None,
                        watch: Default::default(),
                        last_error: None,
                        start_head: runs::head(&run_dir).filter(|_| writes),
                    },
                );
                self.save_task(sched, &task.id, plan);
                if self.settings.config.review.enabled {
                    self.resume_reviews_of(&task.id, running);
                }
            }
            Err(e) => {
                let reason = format!("{e:#}");
                self.record(
                    Some(&task.id),
                    Draft::new(
                        EventType::Error,
                        format!("task {} could not start: {reason}", task.id),
                    )
                    .with("phase", "task_start_failed")
                    .with("message", reason.clone()),
                );
                let outcome = sched.finish(&task.id, false, &reason, Timestamp::now());
                self.after_attempt(&task.id, outcome, &reason, plan, sched);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn spawn_worker(
        &mut self,
        name: &str,
        task: Option<&str>,
        agent: &str,
        prompt: &str,
        workdir: &std::path::Path,
        extra_dirs: Vec<PathBuf>,
        autonomy: Autonomy,
        resume: Option<String>,
        output_schema: Option<&str>,
    ) -> Result<Worker> {
        let mut profile = self
            .settings
            .config
            .profile(agent)
            .with_context(|| format!("no profile for agent {agent}"))?
            .clone();
        // What recovery changed for this task's launches, and what is prepared before any.
        let change = self.recovery_change(task);
        profile.args = change.apply_to_args(&profile.args);
        if !change.remove_args.is_empty() {
            let removal = crate::recovery::Change {
                remove_args: change.remove_args.clone(),
                ..Default::default()
            };
            let (program, rest) = profile
                .command
                .split_first()
                .map_or((None, &[][..]), |(p, r)| (Some(p.clone()), r));
            profile.command = program
                .into_iter()
                .chain(removal.apply_to_args(rest))
                .collect();
        }
        if change.trust_folder {
            profile
                .env
                .insert("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into());
        }
        let mut extra_dirs = extra_dirs;
        extra_dirs.extend(change.include_dirs.iter().map(PathBuf::from));
        let safe_mode =
            change.safe_mode || self.needs_safe_mode(profile.kind, autonomy, &profile.env);
        let autonomy = if safe_mode && autonomy == Autonomy::Full {
            if !change.safe_mode {
                self.record(
                    task,
                    Draft::new(
                        EventType::Recovery,
                        format!("{name}: Claude refuses bypass mode as root; it runs in acceptEdits mode, the sandbox's hook allowing what the policy allows (set IS_SANDBOX=1 in its env if this machine is a sandbox)"),
                    )
                    .with("phase", "recovery_prepare")
                    .with("kind", "prepare")
                    .with("worker", name.to_string())
                    .with("step", "claude_safe_mode"),
                );
            }
            Autonomy::Edit
        } else {
            autonomy
        };
        if let Err(e) = writable(workdir) {
            anyhow::bail!("{} is not writable before launch: {e}", workdir.display());
        }
        self.journal_preparation(task, name, profile.kind, workdir, &extra_dirs);
        let source = if self.settings.simulate {
            AgentSource::Simulated {
                exe: self.exe.clone(),
                speed: self.settings.config.sim_speed,
            }
        } else if let Some(stub) = &self.stub {
            AgentSource::Stub { addr: stub.addr() }
        } else {
            AgentSource::Installed
        };
        let launch = WorkerLaunch {
            profile: &profile,
            name,
            prompt,
            workdir,
            extra_dirs,
            autonomy,
            commit_dirs: runs::commit_dirs(workdir),
            resume,
            state_dir: self.session.state_dir(name),
            source,
            guard: Some({
                let mut guard = self.guard(profile.kind, name);
                if safe_mode {
                    // The hook answers allow out loud, so Claude runs what the policy allows
                    // without bypass mode.
                    guard.hook.push_str(" --explicit-allow");
                }
                guard
            }),
            output_schema: output_schema.map(str::to_string),
            mcp: self.mcp_server(name, workdir),
        }
        .build()?;
        let events_path = self.session.events_path(name);
        let tx = self.inbox_tx.clone();
        let spec = WorkerSpec {
            name: name.to_string(),
            agent: profile.kind,
            task: task.map(str::to_string),
            launch,
            events_path,
            raw_path: self.session.raw_path(name),
            rows: 40,
            cols: 120,
            // The worker goes on from its journal's next number, which its summary knows.
            first_seq: 0,
            stop_grace: Duration::from_secs(self.settings.config.stop_grace_secs),
            summary_path: Some(self.session.summary_path(name)),
        };
        let worker = Worker::spawn(
            spec,
            Some(Box::new(move |e| {
                let _ = tx.send(Inbox::Event(e));
            })),
        )?;
        let _ = self.store.upsert_worker(
            &self.session.id,
            &WorkerRow {
                name: name.into(),
                task: task.map(str::to_string),
                agent: agent.into(),
                pid: Some(i64::from(worker.pid())),
                state: "running".into(),
                ..WorkerRow::default()
            },
            Timestamp::now(),
        );
        Ok(worker)
    }

    pub(super) fn profile_autonomy(&self, agent: &str) -> Autonomy {
        self.settings
            .config
            .profile(agent)
            .map_or(Autonomy::Full, |p| p.autonomy)
    }

    pub(super) fn on_worker_event(
        &mut self,
        event: AgentEvent,
        plan: &Plan,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
    ) {
        if self.on_reviewer_event(&event, running) {
            return;
        }
        if self.settings.config.review.enabled
            && running.values().any(|r| *r.name == *event.worker)
            && let Some(trigger) = self.triggers.on_event(&event)
        {
            self.start_review(trigger, Vec::new(), running);
        }
        let Some(task_id) = event.task.as_deref().map(str::to_string) else {
            return;
        };
        let Some(r) = running.get_mut(&task_id) else {
            return;
        };
        if *r.name != *event.worker {
            return;
        }
        r.status.observe(&event);
        r.commands.observe(&event);
        self.recover_mid_run(&task_id, r, &event);
        self.on_limit_event(&task_id, r, &event);
        let run_dir = self.session.run_dir(&task_id);
        if let Some(breach) = r.watch.observe(&event, &run_dir, &self.policy)
            && r.ended_by.is_none()
        {
            let why = format!("the sandbox's rule was broken: {breach}");
            self.record(
                Some(&task_id),
                Draft::new(
                    EventType::Error,
                    format!(
                        "{} ran what the sandbox forbids, past its CLI's hook ({breach}); stopping it",
                        r.name
                    ),
                )
                .with("phase", "sandbox_breach")
                .with("worker", r.name.clone())
                .with("reason", breach)
                .with("fatal", true),
            );
            r.ended_by = Some(EndedBy::Sandbox(why));
            stop_in_background(&r.worker, true);
        }
        if event.phase() == Some("journal_blocked") {
            let reason = format!(
                "{}: {}",
                r.name,
                event
                    .str_field("reason")
                    .unwrap_or("cannot write its journal")
            );
            self.note_write_failure(reason);
        }
        // The agent's own fatal error is the reason; the exit event only says how it ended.
        if event.kind == EventType::Error
            && event.bool_field("fatal")
            && event.phase() != Some("exited")
        {
            r.last_error = Some(event.text().to_string());
        }
        if event.phase() != Some("exited") {
            return;
        }
        // The gate: a review of this worker decides before its task ends (and its
        // dependents start).
        if (r.worker.journal_held() || self.gate_holds(&r.name)) && !self.stopping {
            r.pending_exit = Some(event);
            return;
        }
        let Some(mut r) = running.remove(&task_id) else {
            return;
        };
        // Whatever the worker left behind (a child that ignored TERM, a tool command in a
        // session of its own) goes too.
        let procs = r.worker.procs();
        if procs.alive() {
            let _ = procs.signal(libc::SIGKILL);
        }
        self.save_worker(&task_id, &r, &event);
        self.release_leases(&r.name, Some(&task_id));
        if let Some(review) = self.review_stop(&task_id) {
            r.ended_by = Some(review);
        }
        let state = r.status.state();
        if r.ended_by == Some(EndedBy::Operator) || (self.stopping && !r.status.reported_success())
        {
            self.record(
                Some(&task_id),
                Draft::new(EventType::Status, format!("task {task_id} stopped"))
                    .with("phase", "task_stopped")
                    .with("worker", r.name.clone()),
            );
            for skipped in sched.finish_stopped(&task_id) {
                self.record(
                    Some(&skipped),
                    Draft::new(
                        EventType::Status,
                        format!("task {skipped} skipped: {task_id} was stopped"),
                    )
                    .with("phase", "task_skipped")
                    .with("because", task_id.clone()),
                );
            }
            self.save_all(sched, plan);
            return;
        }
        let succeeded = state == crate::worker::WorkerState::Done
            && r.status.reported_success()
            && r.ended_by.is_none();
        let reason = if succeeded {
            String::new()
        } else if r.ended_by == Some(EndedBy::Timeout) {
            format!(
                "timed out after {}s",
                self.settings.config.task_timeout_secs
            )
        } else if let Some(
            EndedBy::Unreachable(why)
            | EndedBy::Sandbox(why)
            | EndedBy::Limit(why)
            | EndedBy::Review(why),
        ) = &r.ended_by
        {
            why.clone()
        } else {
            r.last_error
                .clone()
                .unwrap_or_else(|| format!("{} ({})", event.text(), state))
        };
        let run_dir = self.session.run_dir(&task_id);
        let committed = if succeeded {
            runs::commit_work(&run_dir, &format!("orchestrate: {task_id}"))
        } else {
            Ok(None)
        };
        if succeeded
            && matches!(committed, Ok(None))
            && r.start_head.is_some()
            && runs::head(&run_dir) == r.start_head
        {
            // A sandbox can refuse every write and the turn still end "completed" (Codex
            // says so only on stderr): a writing task that changed nothing is worth a look.
            self.record(
                Some(&task_id),
                Draft::new(
                    EventType::Error,
                    format!(
                        "task {task_id} finished without changing anything in its directory (did its sandbox refuse the writes?)"
                    ),
                )
                .with("phase", "no_change")
                .with("fatal", false)
                .with("severity", "warning")
                .with("worker", r.name.clone()),
            );
        }
        if let Ok(Some(commit)) = committed {
            self.record(
                Some(&task_id),
                Draft::new(
                    EventType::Status,
                    format!(
                        "task {task_id}: work committed ({})",
                        &commit[..commit.len().min(10)]
                    ),
                )
                .with("phase", "task_committed")
                .with("commit", commit),
            );
        }
        // Stopped by recovery to launch it again with its fix: not an attempt that counts.
        if r.ended_by == Some(EndedBy::Recovery) && !self.stopping {
            sched.again_at(&task_id, Timestamp::now());
            self.save_all(sched, plan);
            return;
        }
        // A failure recovery knows: it acts (relaunch, wait, escalate), not the retries.
        // An agent that could not reach its API counts too: its reason says why (a refused
        // key, a server error), and the rules know those.
        let recoverable = matches!(r.ended_by, None | Some(EndedBy::Unreachable(_)));
        if !succeeded
            && recoverable
            && !self.stopping
            && self.try_recover(&task_id, &r, &event, sched, plan)
        {
            return;
        }
        let outcome = if matches!(r.ended_by, Some(EndedBy::Review(_))) {
            sched.fail_now(&task_id, &reason)
        } else if r.ended_by == Some(EndedBy::Clarify) {
            // Not a failure: it runs again at once, told the concerns.
            sched.finish_stopped(&task_id);
            let _ = sched.restart(&task_id);
            self.record(
                Some(&task_id),
                Draft::new(
                    EventType::Status,
                    format!("task {task_id} continues with the reviewers' concerns"),
                )
                .with("phase", "task_clarify"),
            );
            self.save_all(sched, plan);
            return;
        } else {
            sched.finish(&task_id, succeeded, &reason, Timestamp::now())
        };
        self.after_attempt(&task_id, outcome, &reason, plan, sched);
    }

    pub(super) fn after_attempt(
        &mut self,
        task_id: &str,
        outcome: AttemptOutcome,
        reason: &str,
        plan: &Plan,
        sched: &Scheduler,
    ) {
        match outcome {
            AttemptOutcome::Succeeded => {
                self.record(
                    Some(task_id),
                    Draft::new(EventType::Status, format!("task {task_id} succeeded"))
                        .with("phase", "task_succeeded"),
                );
            }
            AttemptOutcome::Retry { attempt, at } => {
                let delay = (at.millis() - Timestamp::now().millis()).max(0);
                self.record(
                    Some(task_id),
                    Draft::new(
                        EventType::Status,
                        format!(
                            "task {task_id} failed ({reason}); attempt {attempt} in {:.1}s",
                            delay as f64 / 1000.0
                        ),
                    )
                    .with("phase", "task_retry")
                    .with("reason", reason)
                    .with("next_attempt", attempt)
                    .with("retry_at_ms", at.millis()),
                );
            }
            AttemptOutcome::Failed { skipped } => {
                self.record(
                    Some(task_id),
                    Draft::new(EventType::Error, format!("task {task_id} failed: {reason}"))
                        .with("phase", "task_failed")
                        .with("reason", reason)
                        .with("fatal", true),
                );
                for s in skipped {
                    self.record(
                        Some(&s),
                        Draft::new(
                            EventType::Status,
                            format!("task {s} skipped: {task_id} failed"),
                        )
                        .with("phase", "task_skipped")
                        .with("because", task_id),
                    );
                }
            }
        }
        self.save_all(sched, plan);
    }
}

pub fn worker_name(task: &plan::Task) -> String {
    format!("{}-{}", task.agent, task.id)
}

pub(super) fn stop_in_background(worker: &Arc<Worker>, kill: bool) {
    let worker = Arc::clone(worker);
    std::thread::spawn(move || {
        if kill {
            worker.kill();
        } else {
            worker.stop();
        }
    });
}

/// Whether a worker can write `dir` (a root-owned or read-only run directory is reported
/// before the launch, not after).
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".orchestrate-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}
