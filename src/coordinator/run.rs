//! The coordinator's life: take the session's lock, serve the control socket, plan (or load
//! the plan), run the tasks as workers under the scheduler, react to their events and to
//! control commands, and journal all of it. One thread decides; workers, the control socket
//! and signals only send it messages.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::control::{self, ControlCommand, ControlReply, ControlRequest};
use super::journal::CoordinatorJournal;
use super::lock::CoordinatorLock;
use super::plan::{self, Plan, PlannedTask};
use super::replay::replay;
use super::runs::{self, Base};
use super::schedule::{AttemptOutcome, Limits, Scheduler, SessionOutcome, TaskStatus};
use super::tiers::Availability;
use crate::agents::{AgentKind, Autonomy, Draft, LaunchSpec};
use crate::config::Config;
use crate::event::{AgentEvent, EventType, read_journal, repair_torn_tail};
use crate::session::store::{TaskRow, WorkerRow};
use crate::session::{SessionDir, SessionInfo, Store, Workspace};
use crate::timestamp::Timestamp;
use crate::worker::{Worker, WorkerSpec, WorkerStatus};

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
}

struct RunningTask {
    worker: Arc<Worker>,
    name: String,
    status: WorkerStatus,
    started: Timestamp,
    /// Why the operator or a timeout ended it, if they did.
    ended_by: Option<EndedBy>,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EndedBy {
    Operator,
    Timeout,
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
    target_is_git: bool,
    paused: bool,
    stopping: bool,
    _lock: CoordinatorLock,
}

/// Runs the coordinator of `session_id` to the end; `resume` continues an interrupted session.
pub fn run_coordinator(
    workspace: &Workspace,
    session_id: &str,
    resume: bool,
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
    let available = Availability::detect(&settings.config, settings.simulate, &info.target, None);
    let target_is_git = runs::is_git_repo(&info.target);
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
        target_is_git,
        paused: false,
        stopping: false,
        _lock: lock,
    };
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
        let limits = Limits {
            parallelism: self.settings.config.parallelism,
            retries: self.settings.config.retries,
            backoff_ms: self.settings.config.retry_backoff_ms,
        };
        let mut sched = Scheduler::new(&plan, limits);
        if let Some(history) = &history {
            self.kill_leftovers(history);
            for (id, h) in &history.tasks {
                // Unfinished work (running, waiting to retry, stopped) runs again; what
                // succeeded or failed for good stays so.
                let status = match &h.status {
                    Some(s @ (TaskStatus::Succeeded | TaskStatus::Failed { .. })) => s.clone(),
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
                sched.restore(id, status, h.attempts);
            }
        }
        for task in &plan.tasks {
            self.save_task(&sched, task.id.as_str(), &plan);
        }
        self.run_tasks(&plan, &mut sched, history.is_some())
    }

    /// The plan: saved from an earlier run of this session, given with --plan, or asked of the
    /// planner agent (falling back to design -> implement -> review). `None` if stopped while
    /// planning.
    fn plan(&mut self) -> Result<Option<Plan>> {
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
                Ok(Inbox::Event(_)) | Err(RecvTimeoutError::Timeout) => {}
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

    fn run_tasks(
        &mut self,
        plan: &Plan,
        sched: &mut Scheduler,
        resumed: bool,
    ) -> Result<SessionOutcome> {
        let mut running: BTreeMap<String, RunningTask> = BTreeMap::new();
        let timeout_ms = (self.settings.config.task_timeout_secs * 1000) as i64;
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
            if sched.is_finished() && running.is_empty() {
                break;
            }
            for (id, r) in running.iter_mut() {
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
            }
            let wait = sched
                .next_retry()
                .map(|at| {
                    Duration::from_millis(
                        (at.millis() - now.millis()).clamp(1, TICK.as_millis() as i64) as u64,
                    )
                })
                .unwrap_or(TICK);
            match self.inbox.recv_timeout(wait) {
                Ok(Inbox::Event(event)) => self.on_worker_event(event, plan, sched, &mut running),
                Ok(Inbox::Control(request, reply)) => {
                    let answer = self.on_control(&request, sched, &mut running);
                    let _ = reply.send(answer);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Ok(self.finish(sched.outcome()))
    }

    fn start_task(
        &mut self,
        plan: &Plan,
        task: &plan::Task,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
        resumed: bool,
    ) {
        let branch = runs::branch_name(&self.session.id, &task.id);
        let run_dir = self.session.run_dir(&task.id);
        let base = match task.depends_on.first() {
            Some(dep) => Base::Task {
                branch: runs::branch_name(&self.session.id, dep),
                dir: self.session.run_dir(dep),
            },
            None => Base::Target,
        };
        let attempt = sched.start(&task.id);
        let name = worker_name(task);
        // Continue the agent's own conversation when resuming a task that had started.
        let agent_session = if resumed {
            last_agent_session(&self.session.events_path(&name))
        } else {
            None
        };
        let started = runs::prepare(&self.info.target, &run_dir, &branch, &base, self.settings.config.copy_limit_mb)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                let prompt = format!(
                    "{}\n\n(You are task \"{}\" of a session with the goal: {}. Work in the current directory.)",
                    task.prompt, task.title, self.info.prompt
                );
                self.spawn_worker(&name, Some(&task.id), &task.agent, &prompt, &run_dir, Vec::new(), self.profile_autonomy(&task.agent), agent_session.clone())
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
                running.insert(
                    task.id.clone(),
                    RunningTask {
                        worker: Arc::new(worker),
                        name,
                        status: WorkerStatus::default(),
                        started: Timestamp::now(),
                        ended_by: None,
                        last_error: None,
                    },
                );
                self.save_task(sched, &task.id, plan);
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
    fn spawn_worker(
        &mut self,
        name: &str,
        task: Option<&str>,
        agent: &str,
        prompt: &str,
        workdir: &std::path::Path,
        extra_dirs: Vec<PathBuf>,
        autonomy: Autonomy,
        resume: Option<String>,
    ) -> Result<Worker> {
        let profile = self
            .settings
            .config
            .profile(agent)
            .with_context(|| format!("no profile for agent {agent}"))?
            .clone();
        let program = if self.settings.simulate && profile.kind != AgentKind::Events {
            vec![
                self.exe.display().to_string(),
                "sim".into(),
                profile.kind.name().into(),
            ]
        } else {
            profile.command.clone()
        };
        let spec = LaunchSpec {
            program,
            prompt: prompt.to_string(),
            workdir: workdir.to_path_buf(),
            extra_dirs,
            model: profile.model.clone(),
            autonomy,
            mcp: None,
            resume,
            extra_args: profile.args.clone(),
            state_dir: self.session.path.join("state").join(name),
        };
        let mut launch = profile.kind.launch(&spec);
        launch
            .env
            .extend(profile.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if self.settings.simulate {
            launch.env.push((
                "ORCHESTRATE_SIM_SPEED".into(),
                self.settings.config.sim_speed.to_string(),
            ));
            // The simulated Claude, like the real one, refuses bypass mode as root without it.
            launch.env.push(("IS_SANDBOX".into(), "1".into()));
        }
        let events_path = self.session.events_path(name);
        let first_seq = read_journal(&events_path)
            .ok()
            .and_then(|(events, _)| events.last().map(|e| e.seq + 1))
            .unwrap_or(0);
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
            first_seq,
            stop_grace: Duration::from_secs(self.settings.config.stop_grace_secs),
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

    fn profile_autonomy(&self, agent: &str) -> Autonomy {
        self.settings
            .config
            .profile(agent)
            .map_or(Autonomy::Full, |p| p.autonomy)
    }

    fn on_worker_event(
        &mut self,
        event: AgentEvent,
        plan: &Plan,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
    ) {
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
        let Some(r) = running.remove(&task_id) else {
            return;
        };
        // Whatever the worker left in its process group (a child that ignored TERM) goes too.
        let pgid = r.worker.pid();
        if crate::worker::process::group_alive(pgid) {
            let _ = crate::worker::process::signal_group(pgid, libc::SIGKILL);
        }
        self.save_worker(&task_id, &r, &event);
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
        } else {
            r.last_error
                .clone()
                .unwrap_or_else(|| format!("{} ({})", event.text(), state))
        };
        if succeeded
            && let Ok(Some(commit)) = runs::commit_work(
                &self.session.run_dir(&task_id),
                &format!("orchestrate: {task_id}"),
            )
        {
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
        let outcome = sched.finish(&task_id, succeeded, &reason, Timestamp::now());
        self.after_attempt(&task_id, outcome, &reason, plan, sched);
    }

    fn after_attempt(
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

    fn on_control(
        &mut self,
        request: &ControlRequest,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
    ) -> ControlReply {
        let targets: Vec<(String, Arc<Worker>)> = match &request.worker {
            None => running
                .values()
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
                let failed: Vec<String> = targets
                    .iter()
                    .filter_map(|(n, w)| w.pause().err().map(|e| format!("{n}: {e}")))
                    .collect();
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
                let failed: Vec<String> = targets
                    .iter()
                    .filter_map(|(n, w)| w.resume().err().map(|e| format!("{n}: {e}")))
                    .collect();
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
            ControlCommand::Review => ControlReply::refused(
                "reviews are not available yet: the review engine is still to be built",
            ),
            ControlCommand::Status => {
                let tasks: Vec<String> = sched
                    .statuses()
                    .map(|(id, s)| format!("{id}={s}"))
                    .collect();
                ControlReply::done(format!(
                    "{}{}: {}",
                    if self.paused { "paused" } else { "running" },
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

    fn stop_session(
        &mut self,
        sched: &mut Scheduler,
        running: &mut BTreeMap<String, RunningTask>,
        kill: bool,
    ) {
        self.stopping = true;
        sched.stop();
        for r in running.values_mut() {
            r.ended_by = Some(EndedBy::Operator);
            stop_in_background(&r.worker, kill);
        }
    }

    /// On resume: a worker the dead coordinator left behind (its journal never says it
    /// exited, and its process group is still there) is killed before its task runs again.
    fn kill_leftovers(&mut self, history: &super::replay::SessionHistory) {
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
            if crate::worker::process::proc_info(pid).is_some_and(|p| p.group == pid)
                && crate::worker::process::group_alive(pid)
            {
                let _ = crate::worker::process::signal_group(pid, libc::SIGKILL);
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

    fn journal_control(&mut self, request: &ControlRequest, took_effect: bool, message: &str) {
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

    fn record(&mut self, task: Option<&str>, draft: Draft) {
        if let Err(e) = self.journal.record(task, draft) {
            eprintln!(
                "{}: cannot write the coordinator journal: {e}",
                Timestamp::now()
            );
        }
    }

    fn save_all(&self, sched: &Scheduler, plan: &Plan) {
        for task in &plan.tasks {
            self.save_task(sched, &task.id, plan);
        }
    }

    fn save_task(&self, sched: &Scheduler, id: &str, plan: &Plan) {
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

    fn save_worker(&self, task: &str, r: &RunningTask, exited: &AgentEvent) {
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

enum PlannerAnswer {
    Plan(Vec<PlannedTask>),
    Unusable(String),
    Stopped,
}

pub fn worker_name(task: &plan::Task) -> String {
    format!("{}-{}", task.agent, task.id)
}

fn stop_in_background(worker: &Arc<Worker>, kill: bool) {
    let worker = Arc::clone(worker);
    std::thread::spawn(move || {
        if kill {
            worker.kill();
        } else {
            worker.stop();
        }
    });
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
