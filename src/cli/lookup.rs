//! Finding what a command names: the session (`latest` works too) and a worker in it, with
//! one clear line when it does not exist.

use anyhow::{Result, bail};

use crate::coordinator::lock;
use crate::coordinator::replay::{SessionHistory, replay};
use crate::event::read_journal;
use crate::session::{SessionDir, Workspace, check_name};

pub fn session(workspace: &Workspace, name: &str) -> Result<SessionDir> {
    let ids = workspace.session_ids();
    let id = if name == "latest" {
        match ids.last() {
            Some(id) => id.clone(),
            None => bail!(
                "no sessions in {} yet; start one with `orchestrate run` or `orchestrate demo`",
                workspace.root().display()
            ),
        }
    } else {
        name.to_string()
    };
    check_name("session", &id)?;
    match workspace.open_session(&id) {
        Ok(session) => Ok(session),
        Err(_) if ids.is_empty() => bail!(
            "no session {id:?}: {} has no sessions yet",
            workspace.root().display()
        ),
        Err(_) => bail!(
            "no session {id:?} in {} (latest: {})",
            workspace.root().display(),
            ids.last().map_or("none", String::as_str)
        ),
    }
}

/// The workers of a session: every journal in `events/`, by name.
pub fn worker_names(session: &SessionDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(session.events_dir())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".jsonl")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

pub fn worker(session: &SessionDir, name: &str) -> Result<String> {
    check_name("worker", name)?;
    let names = worker_names(session);
    if names.iter().any(|n| n == name) {
        return Ok(name.to_string());
    }
    let known = if names.is_empty() {
        "none yet".to_string()
    } else {
        names.join(", ")
    };
    bail!(
        "no worker {name:?} in session {} (workers: {known})",
        session.id
    )
}

/// The session's history from its coordinator journal, and whether its coordinator is alive.
pub fn history(session: &SessionDir) -> (SessionHistory, Option<i64>) {
    let (events, _) = read_journal(&session.orchestrator_journal()).unwrap_or_default();
    (replay(&events), lock::holder(&session.lock_path()))
}
