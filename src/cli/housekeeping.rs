//! `orchestrate rm SESSION` and `orchestrate prune [--older-than 7d] [--dry-run]`: removing
//! sessions with everything they made: the session directory, the task worktrees and
//! branches in the target, the database rows, and a demo's temporary repository.

use anyhow::{Result, bail};

use super::lookup;
use crate::coordinator::result::result_branch_name;
use crate::coordinator::runs::{git, is_git_repo};
use crate::session::{SessionDir, Store, Workspace};
use crate::timestamp::Timestamp;

/// The file that marks a directory as the demo's own temporary repository (safe to delete).
pub const DEMO_MARK: &str = ".orchestrate-demo";

#[derive(Debug, Default)]
struct Removed {
    worktrees: usize,
    branches: usize,
    demo_repo: bool,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} worktree(s), {} branch(es)",
            self.worktrees, self.branches
        )?;
        if self.demo_repo {
            write!(f, ", the demo repository")?;
        }
        Ok(())
    }
}

pub fn rm(workspace: &Workspace, name: &str) -> Result<u8> {
    let session = lookup::session(workspace, name)?;
    let removed = remove(workspace, &session)?;
    println!("removed session {} ({removed})", session.id);
    Ok(0)
}

pub fn prune(workspace: &Workspace, older_than_secs: u64, dry_run: bool) -> Result<u8> {
    let now = Timestamp::now();
    let mut count = 0;
    for id in workspace.session_ids() {
        let Ok(session) = workspace.open_session(&id) else {
            continue;
        };
        let Ok(info) = session.read_info() else {
            continue;
        };
        let age_secs = (now.millis() - info.created_at.millis()).max(0) as u64 / 1000;
        let (history, alive) = lookup::history(&session);
        if alive.is_some() || age_secs < older_than_secs {
            continue;
        }
        let state = history.state(false).to_string();
        let days = age_secs as f64 / 86_400.0;
        if dry_run {
            println!("would remove {id} ({state}, {days:.1} days old)");
        } else {
            let removed = remove(workspace, &session)?;
            println!("removed {id} ({state}, {days:.1} days old: {removed})");
        }
        count += 1;
    }
    if count == 0 {
        println!("nothing to prune");
    }
    Ok(0)
}

/// Removes one session that no coordinator runs.
fn remove(workspace: &Workspace, session: &SessionDir) -> Result<Removed> {
    if let Some(pid) = crate::coordinator::lock::holder(&session.lock_path()) {
        bail!(
            "session {} is running (coordinator pid {pid}); stop it first: orchestrate control {} stop",
            session.id,
            session.id
        );
    }
    let mut removed = Removed::default();
    if let Ok(info) = session.read_info() {
        let target = info.target;
        if is_git_repo(&target) {
            for run in std::fs::read_dir(session.runs_dir())
                .into_iter()
                .flatten()
                .flatten()
            {
                let dir = run.path().display().to_string();
                if git(&target, &["worktree", "remove", "--force", &dir]).is_ok() {
                    removed.worktrees += 1;
                }
            }
            let _ = git(&target, &["worktree", "prune"]);
            let prefix = format!("refs/heads/orchestrate/{}/", session.id);
            let mut branches: Vec<String> = git(
                &target,
                &["for-each-ref", "--format=%(refname:short)", &prefix],
            )
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
            branches.push(result_branch_name(&session.id));
            for branch in branches {
                if git(&target, &["branch", "-D", &branch]).is_ok() {
                    removed.branches += 1;
                }
            }
        }
        // The demo's repository lives in a directory of its own, marked as the demo's.
        if let Some(root) = target.parent().filter(|r| r.join(DEMO_MARK).is_file()) {
            removed.demo_repo = std::fs::remove_dir_all(root).is_ok();
        }
    }
    std::fs::remove_dir_all(&session.path)
        .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", session.path.display()))?;
    if workspace.db_path().is_file() {
        Store::open(&workspace.db_path())?.delete_session(&session.id)?;
    }
    Ok(removed)
}
