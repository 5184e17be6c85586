//! The operator's daily path through the real binary with simulated agents: finding sessions
//! from any directory, reading them (merged logs, JSON, watch), their result (diff, merge),
//! housekeeping (ls, rm, prune), long goals, configuration, completions and the man page.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, binary, journal, session_id, text, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

const CHAIN: &str = r#"
[[tasks]]
id = "a"
agent = "claude"
prompt = "write the design"

[[tasks]]
id = "b"
agent = "gemini"
prompt = "build on the design"
depends_on = ["a"]

[[tasks]]
id = "c"
agent = "codex"
prompt = "write tests"
"#;

/// `orchestrate ARGS` in `dir` with no workspace flag or variable: found as a user would.
fn bare(env: &Env, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env("HOME", &env.home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("ORCHESTRATE_WORKSPACE")
        .env_remove("ORCHESTRATOR_WORKSPACE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn done_session(env: &Env, plan: &str) -> String {
    let out = env.run(&env.plan(plan), &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    session_id(&out)
}

#[test]
fn sessions_are_found_from_any_directory_and_status_says_where() {
    let env = Env::new();
    let id = done_session(&env, CHAIN);
    // The project's `workspace/` (here a link to the test's workspace).
    let project = env.workspace.parent().unwrap();
    std::os::unix::fs::symlink(&env.workspace, project.join("workspace")).unwrap();
    let deep = project.join("some/sub/dir");
    std::fs::create_dir_all(&deep).unwrap();
    for dir in [project, deep.as_path(), env.workspace.as_path()] {
        let out = bare(&env, dir, &["status"]);
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let ws = std::fs::canonicalize(&env.workspace).unwrap();
        assert!(
            stdout.starts_with(&format!("workspace {}\n", ws.display())),
            "{stdout}"
        );
        assert!(stdout.contains(&id), "{stdout}");
    }
    // Elsewhere: the user's data directory, or ORCHESTRATE_WORKSPACE.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = bare(&env, elsewhere.path(), &["status"]);
    assert!(
        text(&out).contains(".local/share/orchestrate/workspace"),
        "{}",
        text(&out)
    );
    let mut cmd = Command::new(binary());
    cmd.args(["status", &id])
        .current_dir(elsewhere.path())
        .env("ORCHESTRATE_WORKSPACE", &env.workspace)
        .env_remove("ORCHESTRATOR_WORKSPACE");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn texts_without_a_terminal_name_what_exists() {
    let env = Env::new();
    let out = env.run(&env.plan(CHAIN), &[], &[]);
    let id = session_id(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("not built yet"), "{stdout}");
    assert!(
        stdout.contains(&format!("orchestrate dashboard {id}")),
        "{stdout}"
    );
    let out = env.cmd(&["dashboard", &id]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr.contains("--no-dashboard"), "{stderr}");
    assert!(stderr.contains("status"), "{stderr}");
}

#[test]
fn resume_replays_the_history_in_time_order() {
    let env = Env::new();
    let plan = env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"p\"\n");
    // The blocker story waits 20 s at human pace (0.2 here) after its blocker.
    let out = env.run(
        &plan,
        &[],
        &[
            ("ORCHESTRATE_SIM_SCENARIO", "blocker"),
            ("ORCHESTRATE_SIM_SPEED", "0.2"),
        ],
    );
    let id = session_id(&out);
    let events = env.session_dir(&id).join("events/claude-a.jsonl");
    wait_for("the worker's blocker", LIMIT, || {
        journal(&events)
            .iter()
            .any(|e| e.kind == orchestrate::event::EventType::Blocker)
    });
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    let out = env
        .cmd(&["resume", &id, "--no-dashboard"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line_of = |needle: &str| {
        stdout
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{stdout}"))
    };
    assert!(
        line_of("claude-a") < line_of("coordinator resumed"),
        "the blocker came before the crash:\n{stdout}"
    );
}

#[test]
fn logs_merge_every_worker_in_time_order_and_print_json() {
    let env = Env::new();
    let id = done_session(&env, CHAIN);
    let out = env.cmd(&["logs", &id, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let events: Vec<orchestrate::event::AgentEvent> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The tasks' workers, the coordinator, and the agents that reviewed their work.
    let (reviewers, workers): (std::collections::BTreeSet<&str>, _) = events
        .iter()
        .map(|e| &*e.worker)
        .partition(|w| w.starts_with("review-"));
    assert_eq!(
        workers.into_iter().collect::<Vec<_>>(),
        ["claude-a", "codex-c", "coordinator", "gemini-b"]
    );
    assert!(!reviewers.is_empty());
    assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    let readable = env.cmd(&["logs", &id]).output().unwrap();
    let stdout = String::from_utf8_lossy(&readable.stdout);
    assert_eq!(stdout.lines().count(), events.len());
    assert!(stdout.lines().any(|l| l.contains(" gemini-b ")), "{stdout}");
    let one = env
        .cmd(&["logs", &id, "codex-c", "--json"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&one.stdout)
            .lines()
            .all(|l| l.contains("\"worker\":\"codex-c\""))
    );
    let out = env.cmd(&["logs", &id, "--raw"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("--raw shows one worker"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_end_of_a_run_names_its_result_which_diff_shows_and_merge_takes() {
    let env = Env::new();
    let out = env.run(&env.plan(CHAIN), &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let branch = format!("orchestrate/{id}-result");
    assert!(
        text(&out).contains(&format!("result: branch {branch}")),
        "{}",
        text(&out)
    );
    let diff = env.cmd(&["diff", &id]).output().unwrap();
    let shown = String::from_utf8_lossy(&diff.stdout);
    assert!(diff.status.success(), "{}", text(&diff));
    assert!(
        shown.contains("notes/claude-")
            && shown.contains("notes/gemini-")
            && shown.contains("notes/codex-"),
        "{shown}"
    );
    let task = env.cmd(&["diff", &id, "b"]).output().unwrap();
    let shown = String::from_utf8_lossy(&task.stdout);
    assert!(
        shown.contains("notes/gemini-") && !shown.contains("notes/claude-"),
        "b's own work, against a's branch: {shown}"
    );
    let out = env.cmd(&["merge", &id]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("merged {branch} into main")),
        "{}",
        text(&out)
    );
    assert!(
        std::fs::read_dir(env.target.join("notes")).unwrap().count() >= 3,
        "the work is in the target"
    );
    let again = env.cmd(&["merge", &id]).output().unwrap();
    assert!(text(&again).contains("already merged"), "{}", text(&again));
}

#[test]
fn ls_rm_and_prune_remove_sessions_worktrees_and_branches() {
    let env = Env::new();
    let first = done_session(&env, CHAIN);
    let second = done_session(&env, CHAIN);
    let out = env.cmd(&["ls"]).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(" AGE "), "{listing}");
    assert!(
        listing.contains(&first) && listing.contains(&second),
        "{listing}"
    );

    let out = env.cmd(&["rm", &first]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("3 worktree(s), 4 branch(es)"),
        "{}",
        text(&out)
    );
    assert!(!env.session_dir(&first).exists());
    assert!(!git(&env.target, &["branch", "--list"]).contains(&first));
    assert!(!git(&env.target, &["worktree", "list"]).contains(&first));

    let dry = env
        .cmd(&["prune", "--older-than", "0s", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        text(&dry).contains(&format!("would remove {second}")),
        "{}",
        text(&dry)
    );
    assert!(env.session_dir(&second).exists());
    let week = env.cmd(&["prune"]).output().unwrap();
    assert!(text(&week).contains("nothing to prune"), "{}", text(&week));
    let out = env.cmd(&["prune", "--older-than", "0s"]).output().unwrap();
    assert!(
        text(&out).contains(&format!("removed {second}")),
        "{}",
        text(&out)
    );
    assert!(!env.session_dir(&second).exists());
    let out = env.cmd(&["status", "--json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert!(!git(&env.target, &["branch", "--list"]).contains("orchestrate/"));

    let bad = env
        .cmd(&["prune", "--older-than", "soon"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn rm_refuses_a_running_session_and_removes_the_demos_repository() {
    let env = Env::new();
    let (id, _) = common::hanging_session(&env);
    let out = env.cmd(&["rm", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("stop it first"), "{}", text(&out));
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());

    let demo = env
        .cmd(&["demo", "--no-dashboard", "--speed", "0"])
        .output()
        .unwrap();
    assert_eq!(demo.status.code(), Some(0), "{}", text(&demo));
    let stdout = String::from_utf8_lossy(&demo.stdout);
    let repo = stdout
        .split("fresh repository at ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    assert!(Path::new(&repo).is_dir());
    let out = env.cmd(&["rm", &session_id(&demo)]).output().unwrap();
    assert!(text(&out).contains("the demo repository"), "{}", text(&out));
    assert!(!Path::new(&repo).exists());
}

#[test]
fn a_long_goal_comes_from_a_file_or_standard_input() {
    let env = Env::new();
    let plan = env.plan(CHAIN);
    let goal_file = env.workspace.with_file_name("goal.md");
    let long_goal = format!("# The goal\n\n{}\n", "Make it better. ".repeat(200));
    std::fs::write(&goal_file, &long_goal).unwrap();
    let out = env
        .cmd(&[
            "run",
            "--simulate",
            "--target",
            env.target.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
            "--no-dashboard",
            "--goal-file",
            goal_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.status(&session_id(&out))["goal"], long_goal.as_str());

    let mut child = env
        .cmd(&[
            "run",
            "--simulate",
            "--target",
            env.target.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
            "--no-dashboard",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"goal from a pipe")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.status(&session_id(&out))["goal"], "goal from a pipe");

    let none = env.cmd(&["run", "--simulate"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
}

#[test]
fn status_watch_ends_with_the_session_and_its_exit_code() {
    let env = Env::new();
    let id = done_session(&env, CHAIN);
    let out = env
        .cmd(&["status", &id, "--watch", "--interval", "0.2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("state    done"), "{}", text(&out));
    let out = env
        .cmd(&["status", &id, "--watch", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_show_and_path_completions_and_the_man_page() {
    let env = Env::new();
    let out = env.cmd(&["config", "path"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{}/.config/orchestrate/orchestrate.toml  (absent)",
            env.home.display()
        )),
        "{stdout}"
    );
    let out = env
        .cmd(&["config", "show"])
        .env("ORCHESTRATE_PARALLELISM", "5")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("# parallelism = 5 comes from ORCHESTRATE_PARALLELISM"),
        "{stdout}"
    );
    assert!(stdout.contains("\nparallelism = 5\n"), "{stdout}");
    assert!(stdout.contains("sim_speed = 0"), "{stdout}");
    let shown: toml::Table = stdout.parse().unwrap();
    assert!(shown.contains_key("agents"));

    for shell in ["bash", "zsh", "fish"] {
        let out = env.cmd(&["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("orchestrate") && script.contains("prune"),
            "{shell}"
        );
    }
    let man = env.cmd(&["man"]).output().unwrap();
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH orchestrate"),
        "{page}"
    );
}

#[test]
fn a_failed_task_runs_again_by_control_restart_or_resume_retry() {
    let env = Env::new();
    // Live: a fails for good while c keeps the coordinator busy.
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        "[agents.codex]\nenv = { ORCHESTRATE_SIM_SCENARIO = \"hang\" }\n",
    )
    .unwrap();
    let plan = env.plan(CHAIN);
    let out = env.run(
        &plan,
        &["--retries", "0"],
        &[("ORCHESTRATE_SIM_SCENARIO", "fail")],
    );
    let id = session_id(&out);
    let orchestrator = env.session_dir(&id).join("orchestrator.jsonl");
    let phase_count = |phase: &str, task: &str| {
        journal(&orchestrator)
            .iter()
            .filter(|e| e.phase() == Some(phase) && e.task.as_deref() == Some(task))
            .count()
    };
    wait_for("a to fail and b to be skipped", LIMIT, || {
        phase_count("task_failed", "a") == 1 && phase_count("task_skipped", "b") == 1
    });
    let out = env
        .cmd(&["control", &id, "restart", "--worker", "claude-a"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("task a will run again"),
        "{}",
        text(&out)
    );
    wait_for("a to run again and fail again", LIMIT, || {
        phase_count("task_failed", "a") == 2
    });
    assert_eq!(phase_count("task_restarted", "b"), 1, "b is pending again");
    let refused = env
        .cmd(&["control", &id, "restart", "--worker", "codex-c"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    // Running, or still pending under load: either way not something to run again.
    assert!(
        text(&refused).contains("only a failed, stopped or escalated task runs again"),
        "{}",
        text(&refused)
    );
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
    wait_for("the session to stop", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });

    // Finished: resume says how to run it again, and --retry does.
    std::fs::remove_file(env.workspace.with_file_name("orchestrate.toml")).unwrap();
    let out = env.run(
        &plan,
        &["--retries", "0", "--no-dashboard"],
        &[("ORCHESTRATE_SIM_SCENARIO", "fail")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let id = session_id(&out);
    let out = env
        .cmd(&["resume", &id, "--no-dashboard"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--retry TASK"), "{}", text(&out));
    let out = env
        .cmd(&[
            "resume",
            &id,
            "--retry",
            "a",
            "--retry",
            "c",
            "--no-dashboard",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let states: Vec<String> = env.status(&id)["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["succeeded"; 3]);
}
