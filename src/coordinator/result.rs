//! A finished session's result, for a git target: one branch holding the work of every task
//! (the branch of the last task, or `orchestrate/<session>-result` merging the last tasks of
//! independent chains), what it adds to the target's current branch, and merging it there.

use std::path::Path;

use super::runs::{self, RunError, git, merge_into, with_identity};

/// The result branch and the commits it adds to the target's HEAD.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionResult {
    pub branch: String,
    /// `hash subject`, newest first, at most [`SHOWN_COMMITS`].
    pub commits: Vec<String>,
    pub ahead: usize,
}

pub const SHOWN_COMMITS: usize = 10;

/// The branch holding a whole session's work (it never collides with a task's branch,
/// `orchestrate/<session>/<task>`).
pub fn result_branch_name(session: &str) -> String {
    format!("orchestrate/{session}-result")
}

/// Builds the result from the branches of `last_tasks` (tasks nothing depends on): the one
/// branch itself, or a new branch merging them all in a scratch worktree at `scratch`.
pub fn make_result(
    target: &Path,
    session: &str,
    last_tasks: &[String],
    scratch: &Path,
) -> Result<SessionResult, RunError> {
    let branches: Vec<String> = last_tasks
        .iter()
        .map(|t| runs::branch_name(session, t))
        .collect();
    let branch = match branches.as_slice() {
        [] => {
            return Err(RunError::Git {
                args: "result".into(),
                reason: "the plan has no task".into(),
            });
        }
        [only] => only.clone(),
        [first, others @ ..] => {
            let branch = result_branch_name(session);
            let dir = scratch.display().to_string();
            let _ = git(target, &["worktree", "remove", "--force", &dir]);
            let _ = git(target, &["branch", "-D", &branch]);
            git(
                target,
                &["worktree", "add", "-q", "-b", &branch, &dir, first],
            )?;
            let merged = others
                .iter()
                .try_for_each(|other| merge_into(scratch, other, &branch));
            let _ = git(target, &["worktree", "remove", "--force", &dir]);
            if let Err(e) = merged {
                let _ = git(target, &["branch", "-D", &branch]);
                return Err(e);
            }
            branch
        }
    };
    describe(target, &branch)
}

/// What `branch` adds to the target's current branch.
pub fn describe(target: &Path, branch: &str) -> Result<SessionResult, RunError> {
    let range = format!("HEAD..{branch}");
    let log = git(target, &["log", "--format=%h %s", &range])?;
    let all: Vec<String> = log.lines().map(str::to_string).collect();
    Ok(SessionResult {
        branch: branch.to_string(),
        ahead: all.len(),
        commits: all.into_iter().take(SHOWN_COMMITS).collect(),
    })
}

/// `git diff` from where `branch` left `base` to `branch` (three dots: only the branch's side).
pub fn diff(target: &Path, base: &str, branch: &str, colour: bool) -> Result<String, RunError> {
    let range = format!("{base}...{branch}");
    let colour = if colour {
        "--color=always"
    } else {
        "--color=never"
    };
    git(
        target,
        &["--no-pager", "diff", colour, "--stat", "-p", &range],
    )
}

/// The branch checked out in the target (`HEAD` when detached).
pub fn current_branch(target: &Path) -> String {
    git(target, &["rev-parse", "--abbrev-ref", "HEAD"])
        .map(|b| b.trim().to_string())
        .unwrap_or_else(|_| "HEAD".into())
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "{} has uncommitted changes ({}); commit or stash them, then merge again",
        target.display(), files.join(", ")
    )]
    Dirty {
        target: std::path::PathBuf,
        files: Vec<String>,
    },
    #[error(
        "{branch} conflicts with {into} in {}; nothing was changed. Merge it by hand: git -C {} merge {branch}",
        files.join(", "), target.display()
    )]
    Conflict {
        branch: String,
        into: String,
        target: std::path::PathBuf,
        files: Vec<String>,
    },
    #[error(transparent)]
    Git(#[from] RunError),
}

/// Merges `branch` into the target's current branch; on a conflict the merge is undone, so
/// the target is exactly as it was.
pub fn merge(target: &Path, branch: &str) -> Result<String, MergeError> {
    let dirty: Vec<String> = git(target, &["status", "--porcelain", "--untracked-files=no"])?
        .lines()
        .map(|l| l.get(3..).unwrap_or(l).to_string())
        .collect();
    if !dirty.is_empty() {
        return Err(MergeError::Dirty {
            target: target.to_path_buf(),
            files: dirty,
        });
    }
    let into = current_branch(target);
    let message = format!("Merge {branch} (orchestrate)");
    let mut args = vec![
        "merge",
        "--no-ff",
        "--no-edit",
        "-q",
        "-m",
        &message,
        branch,
    ];
    with_identity(target, &mut args);
    if git(target, &args).is_err() {
        let files: Vec<String> = git(target, &["diff", "--name-only", "--diff-filter=U"])
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let _ = git(target, &["merge", "--abort"]);
        return Err(MergeError::Conflict {
            branch: branch.to_string(),
            into,
            target: target.to_path_buf(),
            files,
        });
    }
    Ok(into)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for args in [
            vec!["init", "-q", "-b", "main"],
            vec![
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "root",
            ],
        ] {
            git(dir.path(), &args).unwrap();
        }
        dir
    }

    fn commit_on(target: &Path, runs: &Path, session: &str, task: &str, file: &str, text: &str) {
        let dir = runs.join(task);
        runs::prepare(
            target,
            &dir,
            &runs::branch_name(session, task),
            &runs::Base::Target,
            1,
        )
        .unwrap();
        std::fs::write(dir.join(file), text).unwrap();
        runs::commit_work(&dir, &format!("orchestrate: {task}")).unwrap();
    }

    #[test]
    fn independent_last_tasks_are_merged_into_one_result_branch_then_into_the_target() {
        let target = repo();
        let runs = tempfile::tempdir().unwrap();
        commit_on(target.path(), runs.path(), "s", "a", "a.txt", "a");
        commit_on(target.path(), runs.path(), "s", "b", "b.txt", "b");
        let result = make_result(
            target.path(),
            "s",
            &["a".into(), "b".into()],
            &runs.path().join(".result"),
        )
        .unwrap();
        assert_eq!(result.branch, "orchestrate/s-result");
        assert_eq!(result.ahead, 3, "{:?}", result.commits);
        let shown = diff(target.path(), "HEAD", &result.branch, false).unwrap();
        assert!(
            shown.contains("a.txt") && shown.contains("b.txt"),
            "{shown}"
        );
        assert_eq!(merge(target.path(), &result.branch).unwrap(), "main");
        assert!(target.path().join("a.txt").is_file() && target.path().join("b.txt").is_file());
        assert_eq!(describe(target.path(), &result.branch).unwrap().ahead, 0);
    }

    #[test]
    fn a_conflicting_merge_leaves_the_target_as_it_was() {
        let target = repo();
        let runs = tempfile::tempdir().unwrap();
        commit_on(target.path(), runs.path(), "s", "a", "same.txt", "from a");
        std::fs::write(target.path().join("same.txt"), "from main").unwrap();
        git(target.path(), &["add", "-A"]).unwrap();
        git(
            target.path(),
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "main",
            ],
        )
        .unwrap();
        let head = runs::head(target.path());
        let err = merge(target.path(), "orchestrate/s/a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("conflicts with main in same.txt"), "{err}");
        assert_eq!(runs::head(target.path()), head);
        assert_eq!(
            std::fs::read_to_string(target.path().join("same.txt")).unwrap(),
            "from main"
        );
        std::fs::write(target.path().join("same.txt"), "edited").unwrap();
        let err = merge(target.path(), "orchestrate/s/a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("uncommitted changes (same.txt)"), "{err}");
    }
}
