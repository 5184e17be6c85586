//! `orchestrate run`, `orchestrate resume` and the hidden `orchestrate coordinator`: create a
//! session, start its coordinator detached, then follow it headless or say how to follow it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::follow;
use super::lookup;
use crate::config::Config;
use crate::coordinator::daemon::spawn_detached;
use crate::coordinator::plan::{self, PlannedTask};
use crate::coordinator::run::{RunSettings, run_coordinator};
use crate::coordinator::schedule::TaskStatus;
use crate::coordinator::tiers::Availability;
use crate::session::{SessionDir, Store, Workspace};
use crate::timestamp::Timestamp;

/// Everything `run` needs besides the workspace.
pub struct RunRequest {
    pub goal: String,
    pub target: Option<PathBuf>,
    pub agents: Option<Vec<String>>,
    pub plan_file: Option<PathBuf>,
    pub simulate: bool,
    /// Real CLIs against the in-process stub model.
    pub stub_model: bool,
    pub no_dashboard: bool,
    pub parallelism: Option<usize>,
    pub retries: Option<u32>,
    /// Overrides the configured simulated pacing (the demo).
    pub sim_speed: Option<f64>,
    /// Turns peer review on whatever the configuration says (the demo).
    pub review: bool,
}

/// The goal from the argument, from `--goal-file`, or from standard input for `-`.
pub fn read_goal(goal: Option<&str>, goal_file: Option<&Path>) -> Result<String> {
    use std::io::Read;
    match (goal, goal_file) {
        (_, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the goal from {}", path.display())),
        (Some("-"), None) => {
            let mut goal = String::new();
            std::io::stdin()
                .read_to_string(&mut goal)
                .context("cannot read the goal from standard input")?;
            Ok(goal)
        }
        (Some(goal), None) => Ok(goal.to_string()),
        (None, None) => bail!(
            "give a goal: orchestrate run \"GOAL\", --goal-file FILE, or - to read it from standard input"
        ),
    }
}

pub fn run(workspace: &Workspace, request: RunRequest) -> Result<u8> {
    if request.goal.trim().is_empty() {
        bail!(
            "the goal is empty; say what the agents should achieve, e.g. orchestrate run \"add a /health endpoint\""
        );
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let target = request.target.clone().unwrap_or_else(|| cwd.clone());
    let target = std::fs::canonicalize(&target)
        .with_context(|| format!("target {} does not exist", target.display()))?;
    if !target.is_dir() {
        bail!("target {} is not a directory", target.display());
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut config = Config::load(&Config::default_files(&cwd, &env), &env)?;
    if let Some(p) = request.parallelism {
        config.parallelism = p;
    }
    if let Some(r) = request.retries {
        config.retries = r;
    }
    if let Some(speed) = request.sim_speed {
        config.sim_speed = speed;
    }
    if request.stub_model {
        config.stub_model = true;
    }
    if request.review {
        config.review.enabled = true;
    }
    if let Some((key, reason)) = config.first_problem() {
        let flag = match key.as_str() {
            "parallelism" => "--parallelism",
            "retries" => "--retries",
            "sim_speed" => "--speed",
            other => other,
        };
        bail!("{flag}: {reason}");
    }
    if request.simulate && config.stub_model {
        bail!(
            "--simulate and the stub model exclude each other: the stub model is for the real CLIs (set stub_model = false, or drop --simulate)"
        );
    }
    if let Some(agents) = &request.agents {
        for name in agents {
            if config.profile(name).is_none() {
                bail!(
                    "--agents: no profile named {name:?} (known: {})",
                    config.agents.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        config.agents.retain(|name, _| agents.contains(name));
    }
    let available = Availability::detect(&config, request.simulate, &target, None);
    if available.tier().level == 0 {
        bail!(
            "no agent CLI is installed (looked for {} on PATH); install one, or try it out with --simulate",
            available.profile_names().join(", ")
        );
    }
    let plan = match &request.plan_file {
        Some(path) => Some(read_plan(path, &available)?),
        None => None,
    };
    let settings = RunSettings {
        simulate: request.simulate,
        config,
        plan,
    };
    let session = workspace.create_session(
        &request.goal,
        &target,
        serde_json::to_value(&settings)?,
        Timestamp::now(),
    )?;
    let started = Store::open(&workspace.db_path())
        .map_err(anyhow::Error::from)
        .and_then(|store| {
            store.insert_session(&session.read_info()?)?;
            let pid = spawn_detached(workspace, &session, false, &[]);
            if pid.is_err() {
                let _ = store.delete_session(&session.id);
            }
            pid
        });
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            // Nothing half-made stays: the session never ran.
            let _ = std::fs::remove_dir_all(&session.path);
            return Err(e);
        }
    };
    println!(
        "session {} started (coordinator pid {pid}, {})",
        session.id,
        available.tier()
    );
    finish_start(workspace, &session, request.no_dashboard)
}

/// Reads and checks a plan file now, so a bad plan is refused before anything starts.
fn read_plan(path: &Path, available: &Availability) -> Result<Vec<PlannedTask>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read plan {}", path.display()))?;
    let tasks = plan::parse_plan_file(path, &text)?;
    plan::validate(tasks.clone(), available).with_context(|| format!("plan {}", path.display()))?;
    Ok(tasks)
}

pub fn resume(
    workspace: &Workspace,
    name: &str,
    retry: &[String],
    no_dashboard: bool,
) -> Result<u8> {
    for task in retry {
        crate::session::check_name("task", task)?;
    }
    let session = lookup::session(workspace, name)?;
    let (mut history, mut alive) = lookup::history(&session);
    if alive.is_some() && history.finished.is_some() {
        // It journaled its end and is on its way out.
        follow::wait_for_exit(&session);
        (history, alive) = lookup::history(&session);
    }
    if let Some(pid) = alive {
        bail!(
            "session {} is running (coordinator pid {pid}); nothing to resume",
            session.id
        );
    }
    if history.finished.as_deref() == Some("done") {
        bail!(
            "session {} already finished (done); nothing to resume",
            session.id
        );
    }
    let failed: Vec<&str> = history
        .tasks
        .iter()
        .filter(|(_, t)| matches!(t.status, Some(TaskStatus::Failed { .. })))
        .map(|(id, _)| id.as_str())
        .collect();
    if let Some(task) = retry.iter().find(|t| !history.tasks.contains_key(*t)) {
        bail!(
            "--retry: no task {task:?} in session {} (tasks: {})",
            session.id,
            history.tasks.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if history.finished.as_deref() == Some("failed") && retry.is_empty() {
        bail!(
            "session {} failed ({} failed for good); `orchestrate resume {} --retry TASK` runs a task again",
            session.id,
            failed.join(", "),
            session.id
        );
    }
    let pid = spawn_detached(workspace, &session, true, retry)?;
    println!("session {} resumed (coordinator pid {pid})", session.id);
    finish_start(workspace, &session, no_dashboard)
}

fn finish_start(workspace: &Workspace, session: &SessionDir, no_dashboard: bool) -> Result<u8> {
    if no_dashboard {
        return follow::follow(session);
    }
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        return super::dashboard::open(workspace, session, None);
    }
    println!("The session runs in the background; closing this terminal does not stop it.");
    println!(
        "  watch it:   orchestrate dashboard {id}   (in a terminal)   |   orchestrate status {id} --watch",
        id = session.id
    );
    println!("  its events: orchestrate logs {} --follow", session.id);
    println!(
        "  control it: orchestrate control {} pause|resume|stop",
        session.id
    );
    Ok(0)
}

/// The hidden `coordinator` command the detached process runs.
pub fn coordinator(
    workspace: &Workspace,
    session: &str,
    resume: bool,
    retry: &[String],
) -> Result<u8> {
    let outcome = run_coordinator(workspace, session, resume, retry)?;
    Ok(follow::exit_code(outcome.name()))
}
