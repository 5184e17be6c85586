//! Each task's working directory, `runs/<task>/`: a git worktree of the target on branch
//! `orchestrate/<session>/<task>` when the target is a git repository (a task that depends on
//! another starts from that task's branch), otherwise a copy of the target, refused past a
//! size limit. A finished task's changes are committed on its branch so dependents see them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("git {args}: {reason}")]
    Git { args: String, reason: String },
    #[error("{} is {} MiB, over the {limit} MiB copy limit; make it a git repository (worktrees cost nothing) or raise copy_limit_mb", target.display(), size >> 20)]
    TooLarge {
        target: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("the work of {branch} conflicts with {into}; resolve it there and resume ({reason})")]
    MergeConflict {
        branch: String,
        into: String,
        reason: String,
    },
    #[error("cannot copy {} to {}: {source}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
}

/// Where a task starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// The target as it is (its HEAD, for git).
    Target,
    /// A dependency's run: its branch (git) or its directory (copies). With git, the branches
    /// of further dependencies are merged in, so the task sees all their work.
    Task {
        branch: String,
        dir: PathBuf,
        merge: Vec<String>,
    },
}

pub fn branch_name(session: &str, task: &str) -> String {
    format!("orchestrate/{session}/{task}")
}

/// True when `dir` is inside a git work tree.
pub fn is_git_repo(dir: &Path) -> bool {
    git(dir, &["rev-parse", "--is-inside-work-tree"]).is_ok_and(|out| out.trim() == "true")
}

/// Creates (or, on resume, reuses) the run directory of one task.
pub fn prepare(
    target: &Path,
    run_dir: &Path,
    branch: &str,
    base: &Base,
    copy_limit_mb: u64,
) -> Result<(), RunError> {
    if is_git_repo(target) {
        if run_dir.join(".git").exists() {
            return Ok(()); // Resumed: the worktree is already there, with the task's work in it.
        }
        if let Some(parent) = run_dir.parent() {
            std::fs::create_dir_all(parent).map_err(|source| RunError::Copy {
                from: target.into(),
                to: parent.into(),
                source,
            })?;
        }
        let run = run_dir.display().to_string();
        let branch_exists = git(
            target,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ],
        )
        .is_ok();
        if branch_exists {
            git(target, &["worktree", "add", &run, branch])?;
        } else {
            let start = match base {
                Base::Target => "HEAD".to_string(),
                Base::Task { branch, .. } => branch.clone(),
            };
            git(target, &["worktree", "add", "-b", branch, &run, &start])?;
            if let Base::Task { merge, .. } = base {
                for other in merge {
                    if let Err(e) = merge_into(run_dir, other, branch) {
                        // No half-prepared worktree: a retry meets the same conflict again.
                        let _ = git(target, &["worktree", "remove", "--force", &run]);
                        let _ = git(target, &["branch", "-D", branch]);
                        return Err(e);
                    }
                }
            }
            if let Some(start) = head(run_dir) {
                let _ = std::fs::write(base_file(run_dir), format!("{start}\n"));
            }
        }
        return Ok(());
    }
    if run_dir.exists() {
        return Ok(());
    }
    let source = match base {
        Base::Target => target.to_path_buf(),
        Base::Task { dir, .. } => dir.clone(),
    };
    let size = tree_size(&source);
    let limit = copy_limit_mb << 20;
    if size > limit {
        return Err(RunError::TooLarge {
            target: source,
            size,
            limit: copy_limit_mb,
        });
    }
    copy_tree(&source, run_dir)
}

/// Merges `other` into the worktree at `run_dir`; a conflict is undone and reported.
pub(crate) fn merge_into(run_dir: &Path, other: &str, into: &str) -> Result<(), RunError> {
    let mut args = vec!["merge", "--no-edit", "-q", other];
    with_identity(run_dir, &mut args);
    git(run_dir, &args).map(|_| ()).map_err(|e| {
        let _ = git(run_dir, &["merge", "--abort"]);
        RunError::MergeConflict {
            branch: other.to_string(),
            into: into.to_string(),
            reason: e.to_string(),
        }
    })
}

/// Where the commit a task's work started from is kept (beside its run directory): the
/// diff reviewers see is against it, the task's own commits included.
fn base_file(run_dir: &Path) -> std::path::PathBuf {
    let name = run_dir.file_name().unwrap_or_default().to_string_lossy();
    run_dir.with_file_name(format!("{name}.base"))
}

/// The commit a task's work started from; `HEAD` when it was not recorded.
pub fn base_commit(run_dir: &Path) -> String {
    std::fs::read_to_string(base_file(run_dir))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "HEAD".to_string())
}

/// Commits everything the task changed on its branch; returns the new commit, if any.
pub fn commit_work(run_dir: &Path, message: &str) -> Result<Option<String>, RunError> {
    if !is_git_repo(run_dir) {
        return Ok(None);
    }
    git(run_dir, &["add", "-A"])?;
    if git(run_dir, &["diff", "--cached", "--quiet"]).is_ok() {
        return Ok(None); // Nothing changed.
    }
    let mut args = vec!["commit", "-q", "-m", message];
    with_identity(run_dir, &mut args);
    git(run_dir, &args)?;
    Ok(Some(
        git(run_dir, &["rev-parse", "HEAD"])?.trim().to_string(),
    ))
}

/// The commit checked out in `run_dir`, if it is a git working tree.
pub fn head(run_dir: &Path) -> Option<String> {
    if !is_git_repo(run_dir) {
        return None;
    }
    git(run_dir, &["rev-parse", "HEAD"])
        .ok()
        .map(|h| h.trim().to_string())
}

/// Where a commit made inside the worktree `run_dir` writes, outside it: the worktree's own git
/// directory and the repository's shared objects, refs and logs. Codex's `workspace-write`
/// sandbox keeps any `.git` read-only, even one given with `--add-dir`; these directories
/// added one by one let the agent commit. Empty when `run_dir` is not a worktree.
pub fn commit_dirs(run_dir: &Path) -> Vec<PathBuf> {
    let dir = |flag: &str| {
        git(run_dir, &["rev-parse", "--path-format=absolute", flag])
            .ok()
            .map(|d| PathBuf::from(d.trim()))
    };
    match (dir("--git-dir"), dir("--git-common-dir")) {
        (Some(own), Some(common)) if own != common => {
            let mut dirs = vec![own];
            dirs.extend(["objects", "refs", "logs"].map(|d| common.join(d)));
            dirs
        }
        _ => Vec::new(),
    }
}

/// Commits made here work with or without a configured identity: when git has none, the
/// commit is the orchestrator's.
pub(crate) fn with_identity(dir: &Path, args: &mut Vec<&str>) {
    if git(dir, &["config", "user.email"]).is_err() {
        args.splice(
            0..0,
            [
                "-c",
                "user.name=orchestrate",
                "-c",
                "user.email=orchestrate@localhost",
            ],
        );
    }
}

/// Runs git in `dir`; its stdout, or its stderr as the error.
pub(crate) fn git(dir: &Path, args: &[&str]) -> Result<String, RunError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RunError::Git {
            args: args.join(" "),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        // All of it: git's first line is often only progress ("Preparing worktree ..."),
        // the reason ("fatal: ...") comes after.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let reason = if lines.is_empty() {
            format!("failed ({})", out.status)
        } else {
            lines.join("; ")
        };
        Err(RunError::Git {
            args: args.join(" "),
            reason,
        })
    }
}

fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), RunError> {
    let fail = |source| RunError::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(to).map_err(fail)?;
    for entry in std::fs::read_dir(from).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(fail)?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&src).map_err(fail)?;
            std::os::unix::fs::symlink(link, &dst).map_err(fail)?;
        } else {
            std::fs::copy(&src, &dst).map_err(fail)?;
        }
    }
    Ok(())
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

    #[test]
    fn a_dependent_task_starts_from_its_dependencys_branch() {
        let target = repo();
        let runs = tempfile::tempdir().unwrap();
        let (a, b) = (runs.path().join("a"), runs.path().join("b"));
        let branch_a = branch_name("orch_1", "a");
        prepare(target.path(), &a, &branch_a, &Base::Target, 1).unwrap();
        std::fs::write(a.join("design.md"), "the design").unwrap();
        assert!(commit_work(&a, "orchestrate: a").unwrap().is_some());
        assert_eq!(commit_work(&a, "nothing new").unwrap(), None);
        let base = Base::Task {
            branch: branch_a.clone(),
            dir: a.clone(),
            merge: Vec::new(),
        };
        prepare(target.path(), &b, &branch_name("orch_1", "b"), &base, 1).unwrap();
        assert_eq!(
            std::fs::read_to_string(b.join("design.md")).unwrap(),
            "the design"
        );
        let branches = git(target.path(), &["branch", "--list", "orchestrate/*"]).unwrap();
        assert!(
            branches.contains("orchestrate/orch_1/a") && branches.contains("orchestrate/orch_1/b"),
            "{branches}"
        );
        // Resuming reuses the worktree as it is.
        prepare(target.path(), &b, &branch_name("orch_1", "b"), &base, 1).unwrap();
    }

    #[test]
    fn a_git_failure_keeps_its_whole_reason() {
        let target = repo();
        let runs = tempfile::tempdir().unwrap();
        let (a, b) = (runs.path().join("a"), runs.path().join("b"));
        let branch = branch_name("orch_1", "a");
        prepare(target.path(), &a, &branch, &Base::Target, 1).unwrap();
        // The same branch again, in a second directory: git says why only on its second line.
        let err = prepare(target.path(), &b, &branch, &Base::Target, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Preparing worktree"), "{err}");
        assert!(err.contains("fatal:") && err.contains("already"), "{err}");
    }

    #[test]
    fn a_task_with_two_dependencies_sees_both_and_a_conflict_is_refused() {
        let target = repo();
        let runs = tempfile::tempdir().unwrap();
        let run = |name: &str| runs.path().join(name);
        for (task, file, text) in [
            ("a", "a.md", "from a"),
            ("b", "b.md", "from b"),
            ("c", "a.md", "not a"),
        ] {
            prepare(
                target.path(),
                &run(task),
                &branch_name("s", task),
                &Base::Target,
                1,
            )
            .unwrap();
            std::fs::write(run(task).join(file), text).unwrap();
            commit_work(&run(task), task).unwrap();
        }
        let both = Base::Task {
            branch: branch_name("s", "a"),
            dir: run("a"),
            merge: vec![branch_name("s", "b")],
        };
        prepare(target.path(), &run("d"), &branch_name("s", "d"), &both, 1).unwrap();
        assert!(run("d").join("a.md").is_file() && run("d").join("b.md").is_file());
        let clash = Base::Task {
            branch: branch_name("s", "a"),
            dir: run("a"),
            merge: vec![branch_name("s", "c")],
        };
        let err = prepare(target.path(), &run("e"), &branch_name("s", "e"), &clash, 1).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the work of orchestrate/s/c conflicts with orchestrate/s/e"),
            "{err}"
        );
        assert!(!run("e").exists(), "no half-prepared worktree is left");
        assert!(
            git(
                target.path(),
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    "refs/heads/orchestrate/s/e"
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn a_plain_directory_is_copied_within_the_limit() {
        let target = tempfile::tempdir().unwrap();
        std::fs::create_dir(target.path().join("src")).unwrap();
        std::fs::write(target.path().join("src/main.rs"), "fn main() {}").unwrap();
        let run = tempfile::tempdir().unwrap().path().join("t");
        prepare(target.path(), &run, "b", &Base::Target, 1).unwrap();
        assert!(run.join("src/main.rs").is_file());
        std::fs::write(target.path().join("big"), vec![0u8; 2 << 20]).unwrap();
        let err = prepare(
            target.path(),
            &run.with_extension("2"),
            "b",
            &Base::Target,
            1,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("over the 1 MiB copy limit"),
            "{err}"
        );
    }

    #[test]
    fn a_worktree_commits_into_its_own_git_dir_and_the_shared_objects_refs_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let run = |args: &[&str]| {
            assert!(
                Command::new("git")
                    .arg("-C")
                    .arg(&repo)
                    .args(args)
                    .output()
                    .unwrap()
                    .status
                    .success()
            )
        };
        run(&["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("a"), "a").unwrap();
        run(&["add", "a"]);
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ]);
        assert!(
            commit_dirs(&repo).is_empty(),
            "a plain checkout is not a worktree"
        );
        let wt = dir.path().join("wt");
        run(&["worktree", "add", "-q", wt.to_str().unwrap(), "-b", "t"]);
        let git = std::fs::canonicalize(repo.join(".git")).unwrap();
        assert_eq!(
            commit_dirs(&wt),
            [
                git.join("worktrees/wt"),
                git.join("objects"),
                git.join("refs"),
                git.join("logs")
            ]
        );
    }
}
