//! `orchestrate diff SESSION [TASK]` and `orchestrate merge SESSION`: what a session did to
//! the target, and taking it into the target's current branch.

use std::io::IsTerminal;

use anyhow::{Result, bail};

use super::lookup;
use crate::coordinator::result;
use crate::coordinator::runs::{self, is_git_repo};
use crate::event::read_journal;
use crate::session::{SessionDir, Store, Workspace, check_name};

/// The result branch the coordinator recorded when the session finished.
fn result_branch(session: &SessionDir) -> Result<String> {
    let (events, _) = read_journal(&session.orchestrator_journal()).unwrap_or_default();
    let recorded = events
        .iter()
        .rev()
        .find(|e| e.phase() == Some("result"))
        .and_then(|e| e.str_field("branch").map(str::to_string));
    let (history, alive) = lookup::history(session);
    match recorded {
        Some(branch) => Ok(branch),
        None => bail!(
            "session {} has no result yet ({}); `orchestrate diff {} TASK` shows one task's work",
            session.id,
            history.state(alive.is_some()),
            session.id
        ),
    }
}

fn git_target(session: &SessionDir) -> Result<std::path::PathBuf> {
    let target = session.read_info()?.target;
    if !is_git_repo(&target) {
        bail!(
            "{} is not a git repository: each task's work is in {}/<task>/",
            target.display(),
            session.runs_dir().display()
        );
    }
    Ok(target)
}

pub fn diff(workspace: &Workspace, session: &str, task: Option<&str>) -> Result<u8> {
    if let Some(t) = task {
        check_name("task", t)?;
    }
    let session = lookup::session(workspace, session)?;
    let target = git_target(&session)?;
    let (base, branch) = match task {
        None => ("HEAD".to_string(), result_branch(&session)?),
        Some(task) => {
            let store = Store::open_read_only(&workspace.db_path())?;
            let tasks = store.tasks(&session.id)?;
            let Some(row) = tasks.iter().find(|t| t.id == task) else {
                let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
                bail!(
                    "no task {task:?} in session {} (tasks: {})",
                    session.id,
                    ids.join(", ")
                );
            };
            // Its own work: against the dependency it started from, else the target.
            let deps: Vec<String> = serde_json::from_str(&row.depends_on).unwrap_or_default();
            let base = deps
                .first()
                .map_or("HEAD".to_string(), |d| runs::branch_name(&session.id, d));
            (base, runs::branch_name(&session.id, task))
        }
    };
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", result::diff(&target, &base, &branch, colour)?);
    Ok(0)
}

pub fn merge(workspace: &Workspace, session: &str) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let (history, alive) = lookup::history(&session);
    if history.state(alive.is_some()) != "done" {
        bail!(
            "session {} is {}: only a finished (done) session is merged",
            session.id,
            history.state(alive.is_some())
        );
    }
    let target = git_target(&session)?;
    let branch = result_branch(&session)?;
    let adds = result::describe(&target, &branch)?;
    if adds.ahead == 0 {
        println!(
            "{branch} adds nothing to {}: already merged",
            result::current_branch(&target)
        );
        return Ok(0);
    }
    let into = result::merge(&target, &branch)?;
    println!(
        "merged {branch} into {into} in {} ({} commit(s))",
        target.display(),
        adds.ahead
    );
    Ok(0)
}
