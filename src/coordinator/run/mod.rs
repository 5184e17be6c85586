//! The coordinator's life: take the session's lock, serve the control socket, plan (or load
//! the plan), run the tasks as workers under the scheduler, react to their events and to
//! control commands, and journal all of it. One thread decides; workers, the control socket
//! and signals only send it messages.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::control::{self, ControlCommand, ControlReply, ControlRequest};
use super::journal::CoordinatorJournal;
use super::lock::CoordinatorLock;
use super::plan::{Plan, PlannedTask};
use super::replay::replay;
use super::result;
use super::runs;
use super::schedule::{Limits, Scheduler, SessionOutcome, TaskStatus};
use super::tiers::Availability;
use crate::agents::Draft;
use crate::config::Config;
use crate::event::{AgentEvent, EventType, read_journal, repair_torn_tail};
use crate::safety::SandboxPolicy;
use crate::scenario::Scenario;
use crate::session::{SessionDir, SessionInfo, Store, Workspace};
use crate::stub::{StubConfig, StubModel};
use crate::timestamp::Timestamp;
use crate::worker::{Worker, WorkerStatus};

mod commands;
mod disk;
mod leases;
mod planning;
mod records;
mod recovery;
mod resources;
mod reviews;
mod sandbox;
mod tasks;

pub use sandbox::ApprovalView;
use tasks::stop_in_background;
pub use tasks::worker_name;

/// What `run` decided, stored in `session.json` so the coordinator (and a resume) read it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Every agent runs as `orchestrate sim <cli>`.
    pub simulate: bool,
    pub config: Config,
    /// The plan given with `--plan`, if any.
    pub plan: Option<Vec<PlannedTask>>,
}

/// How long the planner may think.
const PLANNER_TIMEOUT: Duration = Duration::from_secs(600);
/// The loop's longest sleep: it also polls the termination flag and task timeouts.
const TICK: Duration = Duration::from_millis(250);

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// A detached coordinator must outlive the terminal: hang-ups are ignored; TERM and INT
/// stop the session cleanly.
fn install_signal_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_terminate;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

enum Inbox {
    Event(AgentEvent),
    Control(ControlRequest, Sender<ControlReply>),
    /// The orchestrator's checks of a review are done.
    Checked {
        review: String,
        verdict: crate::review::Verdict,
        summary: String,
    },
}

struct RunningTask {
    worker: Arc<Worker>,
    name: String,
    status: WorkerStatus,
    started: Timestamp,
    /// Why the operator or a timeout ended it, if they did.
    ended_by: Option<EndedBy>,
    last_error: Option<String>,
    /// The commit its worktree started from, when the task may write: a run that ends on it
    /// with nothing to commit changed nothing.
    start_head: Option<String>,
    /// Its exit, kept back while some of its events wait for the disk: a task is settled
    /// only on what its journal holds.
    pending_exit: Option<AgentEvent>,
    /// Its stream, watched for a forbidden tool call that ran anyway.
    watch: crate::safety::watch::StreamWatch,
    /// Its shell commands still running, for their time limit.
    commands: resources::RunningCommands,
    /// Samples its process tree and holds it to its CPU share.
    limiter: Option<crate::worker::limits::Limiter>,
}

#[derive(Debug, Clone, PartialEq)]
enum EndedBy {
    Operator,
    Timeout,
    /// Its CLI could not reach the model API for `agent_unreachable_secs`; its last words.
    Unreachable(String),
    /// It ran a tool call the sandbox forbids (past the CLI's hook); what.
    Sandbox(String),
    /// It went over a resource limit; which.
    Limit(String),
    /// A review found a blocker: no retry.
    Review(String),
    /// The operator sent the reviewers' concerns: it runs again with them.
    Clarify,
    /// Recovery stopped it mid-run to launch it again with a fix (a directory Gemini needs).
    Recovery,
}

pub struct Coordinator {
    session: SessionDir,
    info: SessionInfo,
    settings: RunSettings,
    store: Store,
    journal: CoordinatorJournal,
    inbox: Receiver<Inbox>,
    inbox_tx: Sender<Inbox>,
    available: Availability,
    exe: PathBuf,
    /// The in-process stub model the real CLIs talk to, when the session runs against it.
    stub: Option<StubModel>,
    target_is_git: bool,
    paused: bool,
    stopping: bool,
    /// Why the session is paused for a full disk, while it is.
    disk_blocked: Option<String>,
    /// A write failure not yet acted on (see `disk.rs`).
    write_failure: Option<String>,
    /// The plan being run, once there is one (control commands name its tasks).
    current_plan: Option<Plan>,
    /// Failed tasks the operator asked to run again on this resume.
    retry: Vec<String>,
    /// The sandbox every tool call of every worker is checked against.
    policy: SandboxPolicy,
    pending_approvals: Vec<sandbox::PendingApproval>,
    /// (worker, command) the operator approved: the same again runs without asking.
    approved: BTreeSet<(String, String)>,
    approval_count: u32,
    /// When worker samples last went to the database.
    last_usage_save: Timestamp,
    /// When work is reviewed, and the reviews under way.
    triggers: crate::review::Triggers,
    reviews: BTreeMap<String, reviews::ReviewInFlight>,
    review_count: u32,
    /// Tasks a review stopped: they fail without a retry.
    stopped_by_review: BTreeSet<String>,
    /// Tasks whose end a review's pause holds until the operator resumes.
    clarify_holds: BTreeSet<String>,
    /// Concerns of a `pause_and_clarify` review, by task, until the operator acts, and the
    /// prompt a task runs again with once the operator sends them.
    clarify_concerns: BTreeMap<String, String>,
    clarify_prompts: BTreeMap<String, String>,
    /// The recovery rules, and each task's recovery state (budgets used, launch changes).
    recovery_rules: crate::recovery::RecoveryRules,
    recovery: BTreeMap<String, recovery::TaskRecovery>,
    /// Reviews the previous coordinator left unfinished, run again when their task does.
    interrupted_reviews: Vec<(crate::review::Trigger, Vec<serde_json::Value>)>,
    /// The workers' path leases (meta locks).
    leases: leases::Leases,
    _lock: CoordinatorLock,
}

/// Runs the coordinator of `session_id` to the end; `resume` continues an interrupted session.
pub fn run_coordinator(
    workspace: &Workspace,
    session_id: &str,
    resume: bool,
    retry: &[String],
) -> Result<SessionOutcome> {
    let session = workspace.open_session(session_id)?;
    let lock = CoordinatorLock::acquire(&session.lock_path())?;
    install_signal_handlers();
    let info = session.read_info()?;
    let settings: RunSettings = serde_json::from_value(info.config.clone())
        .with_context(|| format!("{}: no run settings", session.info_path().display()))?;
    let store = Store::open(&workspace.db_path())?;
    let mut repaired = Vec::new();
    if resume {
        for path in journal_files(&session) {
            let dropped = repair_torn_tail(&path)
                .with_context(|| format!("cannot repair {}", path.display()))?;
            if dropped > 0 {
                repaired.push((path, dropped));
            }
        }
    }
    let journal = CoordinatorJournal::open(&session.orchestrator_journal())
        .with_context(|| format!("cannot open {}", session.orchestrator_journal().display()))?;
    let (inbox_tx, inbox) = mpsc::channel();
    let control_tx = inbox_tx.clone();
    control::serve(&session.control_socket(), move |(request, reply)| {
        let _ = control_tx.send(Inbox::Control(request, reply));
    })
    .with_context(|| format!("cannot serve {}", session.control_socket().display()))?;
    let exe = std::env::current_exe().context("cannot find the orchestrate executable")?;
    // Writable: the workspace (run directories, the session's own files) and the target.
    let recovery_rules = crate::recovery::RecoveryRules::new(&settings.config.recovery)?;
    let policy = SandboxPolicy::new(
        &settings.config.sandbox,
        &[workspace.root().to_path_buf(), info.target.clone()],
    )
    .context("the [sandbox] policy")?;
    let available = Availability::detect(&settings.config, settings.simulate, &info.target, None);
    let target_is_git = runs::is_git_repo(&info.target);
    let stub = if settings.config.stub_model {
        let config = StubConfig {
            port: 0,
            scenario: Scenario::Success,
            log: Some(session.stub_log_path()),
        };
        Some(StubModel::start(config).context("cannot start the stub model")?)
    } else {
        None
    };
    let triggers = crate::review::Triggers::new(crate::review::TriggerLimits {
        idle_ms: (settings.config.review.idle_minutes * 60_000.0) as i64,
        max_per_task: settings.config.review.max_per_task,
    });
    let settings_config = settings.config.clone();
    let mut c = Coordinator {
        session,
        info,
        settings,
        store,
        journal,
        inbox,
        inbox_tx,
        available,
        exe,
        stub,
        target_is_git,
        paused: false,
        stopping: false,
        disk_blocked: None,
        write_failure: None,
        current_plan: None,
        retry: retry.to_vec(),
        policy,
        pending_approvals: Vec::new(),
        approved: BTreeSet::new(),
        approval_count: 0,
        last_usage_save: Timestamp(0),
        triggers,
        reviews: BTreeMap::new(),
        review_count: 0,
        stopped_by_review: BTreeSet::new(),
        clarify_holds: BTreeSet::new(),
        interrupted_reviews: Vec::new(),
        clarify_concerns: BTreeMap::new(),
        clarify_prompts: BTreeMap::new(),
        recovery_rules,
        recovery: BTreeMap::new(),
        leases: leases::Leases::new(
            crate::meta::Meta::open(&settings_config, &workspace.db_path())
                .map_err(|e| e.to_string()),
        ),
        _lock: lock,
    };
    c.make_reserve();
    c.store.set_session_state(
        &c.session.id,
        "running",
        Some(i64::from(std::process::id())),
        Timestamp::now(),
    )?;
    for (path, dropped) in repaired {
        c.record(
            None,
            Draft::new(
                EventType::Recovery,
                format!(
                    "repaired a torn last line in {} ({dropped} bytes dropped)",
                    path.display()
                ),
            )
            .with("phase", "torn_line_repaired")
            .with("file", path.display().to_string())
            .with("bytes", dropped),
        );
    }
    let outcome = c.run(resume);
    let state = match &outcome {
        Ok(o) => o.name().to_string(),
        Err(e) => {
            c.record(
                None,
                Draft::new(EventType::Error, format!("coordinator failed: {e:#}"))
                    .with("phase", "coordinator_failed")
                    .with("fatal", true),
            );
            "failed".to_string()
        }
    };
    let _ = c
        .store
        .set_session_state(&c.session.id, &state, None, Timestamp::now());
    let _ = std::fs::remove_file(c.session.control_socket());
    outcome
}

fn journal_files(session: &SessionDir) -> Vec<PathBuf> {
    let mut files = vec![session.orchestrator_journal()];
    if let Ok(entries) = std::fs::read_dir(session.events_dir()) {
        files.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl")),
        );
    }
    files.into_iter().filter(|p| p.is_file()).collect()
}

impl Coordinator {
    fn run(&mut self, resume: bool) -> Result<SessionOutcome> {
        let tier = self.available.tier();
        if tier.level == 0 {
            bail!(
                "no agent CLI is installed (looked for {}); install claude, codex or gemini, or use --simulate",
                self.available.profile_names().join(", ")
            );
        }
        let history = if resume {
            let (events, _) =
                read_journal(&self.session.orchestrator_journal()).unwrap_or_default();
            let history = replay(&events);
            self.restore_approvals(&events);
            self.restore_reviews(&events);
            self.restore_recovery(&events);
            if let Some(outcome) = history.finished.as_deref().filter(|o| *o == "done") {
                bail!(
                    "session {} already finished ({outcome}); nothing to resume",
                    self.session.id
                );
            }
            self.record(
                None,
                Draft::new(
                    EventType::Status,
                    format!("coordinator resumed (pid {})", std::process::id()),
                )
                .with("phase", "resumed")
                .with("pid", std::process::id())
                .with("tier", tier.to_string()),
            );
            Some(history)
        } else {
            self.record(
                None,
                Draft::new(
                    EventType::Status,
                    format!("session started: {}", self.info.prompt),
                )
                .with("phase", "session_started")
                .with("pid", std::process::id())
                .with("tier", tier.to_string())
                .with("agents", self.available.present())
                .with("simulate", self.settings.simulate),
            );
            None
        };
        let Some(plan) = self.plan()? else {
            return Ok(self.finish(SessionOutcome::Stopped));
        };
        self.current_plan = Some(plan.clone());
        let limits = Limits {
            parallelism: self.settings.config.parallelism,
            retries: self.settings.config.retries,
            backoff_ms: self.settings.config.retry_backoff_ms,
        };
        let mut sched = Scheduler::new(&plan, limits);
        if let Some(history) = &history {
            self.kill_leftovers(history);
            self.release_leftover_leases();
            for (id, h) in &history.tasks {
                // Unfinished work (running, stopped) runs again; what succeeded or failed for
                // good stays so; a retry keeps its time (a usage limit's wait goes on), and a
                // task recovery holds still waits for the operator.
                let status = match &h.status {
                    Some(
                        s @ (TaskStatus::Succeeded
                        | TaskStatus::Failed { .. }
                        | TaskStatus::RetryAt { .. }
                        | TaskStatus::Escalated { .. }),
                    ) => s.clone(),
                    Some(TaskStatus::Skipped { because })
                        if matches!(
                            history.tasks.get(because).and_then(|d| d.status.as_ref()),
                            Some(TaskStatus::Failed { .. })
                        ) =>
                    {
                        TaskStatus::Skipped {
                            because: because.clone(),
                        }
                    }
                    _ => TaskStatus::Pending,
                };
                // Only the task's own failures use up its retries: an attempt cut short by
                // the coordinator's death runs again as the same attempt.
                sched.restore(id, status, h.failures);
            }
        }
        for id in std::mem::take(&mut self.retry) {
            match sched.restart(&id) {
                Ok(unskipped) => self.record_restart(&id, &unskipped),
                Err(why) => self.record(
                    Some(&id),
                    Draft::new(EventType::Error, format!("cannot run {id} again: {why}"))
                        .with("phase", "restart_refused")
                        .with("fatal", false),
                ),
            }
        }
        for task in &plan.tasks {
            self.save_task(&sched, task.id.as_str(), &plan);
        }
        self.run_tasks(&plan, &mut sched, history.is_some())
    }

    fn run_tasks(
        &mut self,
        plan: &Plan,
        sched: &mut Scheduler,
        resumed: bool,
    ) -> Result<SessionOutcome> {
        let mut running: BTreeMap<String, RunningTask> = BTreeMap::new();
        // A worker's run time is bounded by the task's timeout and the sandbox's runtime_secs.
        let config = &self.settings.config;
        let timeout_ms = (config.task_timeout_secs.min(config.sandbox.runtime_secs) * 1000) as i64;
        loop {
            let now = Timestamp::now();
            if TERMINATE.swap(false, Ordering::SeqCst) && !self.stopping {
                self.record(
                    None,
                    Draft::new(
                        EventType::Control,
                        "coordinator asked to terminate: stopping the session",
                    )
                    .with("phase", "control")
                    .with("command", "stop"),
                );
                self.stop_session(sched, &mut running, false);
            }
            self.block_on_disk(&running);
            if !self.paused && !self.stopping {
                for id in sched.startable(now) {
                    let task = plan
                        .tasks
                        .iter()
                        .find(|t| t.id == id)
                        .expect("the scheduler only knows plan tasks");
                    self.start_task(plan, task, sched, &mut running, resumed);
                }
            }
            if self.settings.config.review.enabled {
                self.time_out_reviews();
                for trigger in self.triggers.idle(now) {
                    self.start_review(trigger, Vec::new(), &mut running);
                }
            }
            if sched.is_finished() && running.is_empty() && self.reviews.is_empty() {
                break;
            }
            for (id, r) in running.iter_mut().filter(|(_, r)| r.pending_exit.is_none()) {
                if r.ended_by.is_none() && now.millis() - r.started.millis() > timeout_ms {
                    r.ended_by = Some(EndedBy::Timeout);
                    self.record(
                        Some(id),
                        Draft::new(
                            EventType::Status,
                            format!(
                                "task {id} timed out after {}s; stopping {}",
                                timeout_ms / 1000,
                                r.name
                            ),
                        )
                        .with("phase", "task_timeout"),
                    );
                    stop_in_background(&r.worker, false);
                }
                let unreachable_ms = self.settings.config.agent_unreachable_secs as i64 * 1000;
                if let Some(retrying) = r.status.retrying.clone().filter(|_| r.ended_by.is_none())
                    && now.millis() - retrying.since.millis() > unreachable_ms
                {
                    let why = format!(
                        "cannot reach its model API: still {} after {}s",
                        retrying.text,
                        unreachable_ms / 1000
                    );
                    self.stop_unreachable(id, r, why);
                }
            }
            let wait = sched
                .next_retry()
                .map(|at| {
                    Duration::from_millis(
                        (at.millis() - now.millis()).clamp(1, TICK.as_millis() as i64) as u64,
                    )
                })
                .unwrap_or(TICK);
            self.expire_approvals(&running);
            self.check_resources(&mut running);
            match self.inbox.recv_timeout(wait) {
                Ok(Inbox::Event(event)) => self.on_worker_event(event, plan, sched, &mut running),
                Ok(Inbox::Checked {
                    review,
                    verdict,
                    summary,
                }) => self.on_checked(&review, verdict, summary, &mut running),
                Ok(Inbox::Control(request, reply))
                    if request.cmd == ControlCommand::Evaluate
                        && !request.expired(Timestamp::now()) =>
                {
                    self.on_evaluate(&request, reply, &running);
                }
                Ok(Inbox::Control(request, reply))
                    if matches!(
                        request.cmd,
                        ControlCommand::Approvals | ControlCommand::Approve | ControlCommand::Deny
                    ) =>
                {
                    let answer = self.on_approval_command(&request, &running);
                    let _ = reply.send(answer);
                }
                Ok(Inbox::Control(request, reply)) => {
                    let answer = self.on_control(&request, sched, &mut running);
                    let _ = reply.send(answer);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let outcome = sched.outcome();
        if outcome == SessionOutcome::Done {
            self.record_result(plan);
        }
        Ok(self.finish(outcome))
    }

    /// Where the work of a finished session is: one branch, what it adds, how to take it.
    fn record_result(&mut self, plan: &Plan) {
        let id = self.session.id.clone();
        if !self.target_is_git {
            let text = format!(
                "result: the target is not a git repository; each task's work is in {}/<task>/",
                self.session.runs_dir().display()
            );
            self.record(
                None,
                Draft::new(EventType::Milestone, text).with("phase", "result"),
            );
            return;
        }
        let last: Vec<String> = plan
            .tasks
            .iter()
            .filter(|t| !plan.tasks.iter().any(|o| o.depends_on.contains(&t.id)))
            .map(|t| t.id.clone())
            .collect();
        let scratch = self.session.runs_dir().join(".result");
        let draft = match result::make_result(&self.info.target, &id, &last, &scratch) {
            Ok(r) => {
                let into = result::current_branch(&self.info.target);
                Draft::new(
                    EventType::Milestone,
                    format!(
                        "result: branch {} ({} commit(s) ahead of {into}); see it: orchestrate diff {id}; take it: orchestrate merge {id}",
                        r.branch, r.ahead
                    ),
                )
                .with("phase", "result")
                .with("branch", r.branch)
                .with("ahead", r.ahead)
                .with("commits", r.commits)
            }
            Err(e) => Draft::new(
                EventType::Error,
                format!(
                    "result: the last tasks' branches ({}) do not merge into one: {e}",
                    last.join(", ")
                ),
            )
            .with("phase", "result")
            .with("fatal", false),
        };
        self.record(None, draft);
    }

    /// On resume: a worker the dead coordinator left behind (its journal never says it
    /// exited, and its processes are still there) is killed before its task runs again. Its
    /// mark finds what it started outside its group; the leader's pid counts only while it is
    /// still the worker's (not a reused pid).
    fn kill_leftovers(&mut self, history: &super::replay::SessionHistory) {
        use crate::worker::process::{WorkerProcs, carries_mark, proc_info};
        for h in history.tasks.values() {
            let Some(name) = &h.worker else { continue };
            let Ok((events, _)) = read_journal(&self.session.events_path(name)) else {
                continue;
            };
            let mut status = WorkerStatus::default();
            events.iter().for_each(|e| status.observe(e));
            let (Some(pid), None) = (status.pid, status.exit) else {
                continue;
            };
            let pid = pid as i32;
            let mark = events
                .iter()
                .rev()
                .find(|e| e.phase() == Some("spawned"))
                .and_then(|e| e.str_field("mark"))
                .map(str::to_string);
            let leader_is_ours = proc_info(pid).is_some_and(|p| p.group == pid)
                && mark.as_deref().is_none_or(|m| carries_mark(pid, m));
            let procs = WorkerProcs {
                leader: if leader_is_ours { pid } else { 0 },
                mark,
            };
            if procs.alive() {
                let _ = procs.signal(libc::SIGKILL);
                self.record(
                    None,
                    Draft::new(
                        EventType::Recovery,
                        format!(
                            "killed {name} (pid {pid}), left running by the previous coordinator"
                        ),
                    )
                    .with("phase", "leftover_killed")
                    .with("worker", name.clone())
                    .with("pid", pid),
                );
            }
        }
    }

    fn finish(&mut self, outcome: SessionOutcome) -> SessionOutcome {
        let kind = if outcome == SessionOutcome::Done {
            EventType::Status
        } else {
            EventType::Error
        };
        self.record(
            None,
            Draft::new(kind, format!("session {}", outcome.name()))
                .with("phase", "session_finished")
                .with("outcome", outcome.name()),
        );
        outcome
    }

    /// Journals one event. A refused write holds it in memory and pauses the session.
    fn record(&mut self, task: Option<&str>, draft: Draft) {
        // Recovery's steps are rows too, for queries across sessions.
        if draft.kind == EventType::Recovery {
            let _ = self.store.insert_recovery(
                &self.session.id,
                task,
                &draft.payload,
                Timestamp::now(),
            );
        }
        if let Err(e) = self.journal.record(task, draft) {
            let reason = format!("cannot write the coordinator journal: {e}");
            disk::log_line(&reason);
            self.note_write_failure(reason);
        }
    }
}
