//! The coordinator through the real binary with simulated agents: plans, worktrees, failure
//! exit codes, pause/resume/stop on real process groups, surviving a hang-up, resuming after
//! SIGKILL without losing or repeating an event, and one coordinator per session.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{binary, journal, wait_for};
use orchestrate::worker::process::{group_alive, group_members};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

struct Env {
    _dir: tempfile::TempDir,
    workspace: PathBuf,
    target: PathBuf,
}

impl Env {
    /// A workspace and a target git repository with one commit.
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        let target = dir.path().join("repo");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("README.md"), "# repo\n").unwrap();
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "-A"],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "init",
            ],
        ] {
            assert!(
                Command::new("git")
                    .arg("-C")
                    .arg(&target)
                    .args(args)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        Env {
            _dir: dir,
            workspace,
            target,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.arg("--workspace")
            .arg(&self.workspace)
            .args(args)
            .stdin(Stdio::null());
        cmd.env("ORCHESTRATE_SIM_SPEED", "0")
            .env("ORCHESTRATE_RETRY_BACKOFF_MS", "50")
            .env_remove("ORCHESTRATE_SIM_SCENARIO");
        cmd
    }

    fn plan(&self, toml: &str) -> PathBuf {
        let path = self.workspace.with_file_name("plan.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// `run --simulate --plan ...` with extra arguments; returns the output.
    fn run(&self, plan: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = vec![
            "run",
            "--simulate",
            "--target",
            self.target.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push("build the thing");
        let mut cmd = self.cmd(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn status(&self, session: &str) -> Value {
        let out = self.cmd(&["status", session, "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn session_dir(&self, session: &str) -> PathBuf {
        self.workspace.join(session)
    }
}

fn session_id(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("session "))
        .unwrap_or_else(|| {
            panic!(
                "no session line in {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    line.split_whitespace().nth(1).unwrap().to_string()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

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

#[test]
fn a_three_task_plan_with_a_dependency_completes_headless_in_worktrees() {
    let env = Env::new();
    let out = env.run(&env.plan(CHAIN), &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let stdout = text(&out);
    for line in [
        "task a succeeded",
        "task b succeeded",
        "task c succeeded",
        "session done",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from\n{stdout}");
    }
    let branches = Command::new("git")
        .arg("-C")
        .arg(&env.target)
        .args(["branch", "--list"])
        .output()
        .unwrap();
    let branches = String::from_utf8_lossy(&branches.stdout);
    for task in ["a", "b", "c"] {
        assert!(
            branches.contains(&format!("orchestrate/{id}/{task}")),
            "{branches}"
        );
        assert!(
            env.session_dir(&id)
                .join("runs")
                .join(task)
                .join(".git")
                .exists(),
            "runs/{task} is a worktree"
        );
    }
    // b started from a's branch, so a's work is in b's worktree.
    let notes: Vec<String> = std::fs::read_dir(env.session_dir(&id).join("runs/b/notes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("claude-write-the-design")),
        "b's worktree lacks a's commit: {notes:?}"
    );
    let status = env.status(&id);
    assert_eq!(status["state"], "done");
    assert!(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "succeeded"),
        "{status:#}"
    );
    assert!(
        status["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["state"] == "done"),
        "{status:#}"
    );
    assert_eq!(status["coordinator"]["alive"], false);
}

#[test]
fn a_failing_agent_is_retried_then_fails_with_exit_1_and_a_reason() {
    let env = Env::new();
    let out = env.run(
        &env.plan(CHAIN),
        &["--no-dashboard", "--retries", "1"],
        &[("ORCHESTRATE_SIM_SCENARIO", "fail")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = text(&out);
    assert!(stdout.contains("task a failed (Command failed with exit code 2: the build script is missing); attempt 2 in"), "{stdout}");
    assert!(
        stdout.contains("task a failed: Command failed with exit code 2"),
        "{stdout}"
    );
    assert!(stdout.contains("task b skipped: a failed"), "{stdout}");
    assert!(stdout.contains("session failed"), "{stdout}");
    let status = env.status(&session_id(&out));
    let a = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "a")
        .unwrap()
        .clone();
    assert_eq!(
        (a["state"].as_str(), a["retries"].as_i64()),
        (Some("failed"), Some(1))
    );
}

#[test]
fn a_bad_plan_is_refused_before_anything_starts() {
    let env = Env::new();
    let cycle = "[[tasks]]\nid = \"a\"\nprompt = \"p\"\ndepends_on = [\"b\"]\n\n[[tasks]]\nid = \"b\"\nprompt = \"p\"\ndepends_on = [\"a\"]\n";
    let out = env.run(&env.plan(cycle), &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("tasks a -> b -> a depend on each other in a cycle"),
        "{}",
        text(&out)
    );
    assert!(
        !env.workspace.exists() || std::fs::read_dir(&env.workspace).unwrap().count() == 0,
        "no session was created"
    );
}

/// Starts a session whose two workers never finish; returns its id and the workers' pids.
fn hanging_session(env: &Env) -> (String, Vec<i32>) {
    let plan = env.plan("[[tasks]]\nid = \"x\"\nagent = \"claude\"\nprompt = \"p\"\n\n[[tasks]]\nid = \"y\"\nagent = \"codex\"\nprompt = \"q\"\n");
    let out = env.run(&plan, &[], &[("ORCHESTRATE_SIM_SCENARIO", "hang")]);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let mut pids = Vec::new();
    wait_for("two workers with their children", LIMIT, || {
        let status = env.status(&id);
        pids = status["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["pid"].as_i64())
            .map(|p| p as i32)
            .collect();
        pids.len() == 2
            && pids
                .iter()
                .all(|p| group_members(*p).iter().any(|m| m.name == "sleep"))
    });
    (id, pids)
}

#[test]
fn pause_resume_and_stop_act_on_every_worker_process() {
    let env = Env::new();
    let (id, pids) = hanging_session(&env);
    let out = env.cmd(&["control", &id, "pause"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("session paused"), "{}", text(&out));
    wait_for("every process stopped", LIMIT, || {
        pids.iter()
            .all(|p| group_members(*p).iter().all(|m| m.state == 'T'))
    });
    assert_eq!(env.status(&id)["state"], "paused");

    assert!(
        env.cmd(&["control", &id, "resume"])
            .output()
            .unwrap()
            .status
            .success()
    );
    wait_for("every process running", LIMIT, || {
        pids.iter()
            .all(|p| group_members(*p).iter().all(|m| m.state != 'T'))
    });
    assert_eq!(env.status(&id)["state"], "running");

    let out = env.cmd(&["control", &id, "stop"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the session to stop", LIMIT, || {
        env.status(&id)["state"] == "stopped"
    });
    wait_for("no process of the session left", LIMIT, || {
        pids.iter().all(|p| !group_alive(*p))
    });
    let control_events: Vec<_> = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
        .into_iter()
        .filter(|e| e.phase() == Some("control"))
        .collect();
    assert_eq!(
        control_events.len(),
        3,
        "every accepted command is journaled"
    );
}

#[test]
fn a_second_coordinator_for_the_same_session_refuses() {
    let env = Env::new();
    let (id, _) = hanging_session(&env);
    let out = env.cmd(&["coordinator", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("another coordinator (pid"),
        "{}",
        text(&out)
    );
    let out = env.cmd(&["resume", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("is running (coordinator pid"),
        "{}",
        text(&out)
    );
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
    wait_for("the session to stop", LIMIT, || {
        env.status(&id)["state"] == "stopped"
    });
}

#[test]
fn the_session_survives_a_hangup_of_the_terminal_that_started_it() {
    let env = Env::new();
    let plan = env.plan(CHAIN);
    // `run --no-dashboard` in its own process group, as a terminal's foreground job.
    let mut cmd = env.cmd(&[
        "run",
        "--simulate",
        "--no-dashboard",
        "--target",
        env.target.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
        "slow goal",
    ]);
    cmd.env("ORCHESTRATE_SIM_SPEED", "0.1")
        .stdout(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    wait_for("the session to start", LIMIT, || {
        std::fs::read_dir(&env.workspace).is_ok_and(|mut d| d.next().is_some())
    });
    let id = std::fs::read_dir(&env.workspace)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().unwrap())
        .find(|n| n.starts_with("orch_"))
        .unwrap();
    wait_for("a task to run", LIMIT, || {
        env.status(&id)["workers"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    });
    // What a closing terminal does: SIGHUP to its foreground process group.
    orchestrate::worker::process::signal_group(child.id() as i32, libc::SIGHUP).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGHUP)
    );
    wait_for("the session to complete anyway", LIMIT, || {
        env.status(&id)["state"] == "done"
    });
}

#[test]
fn a_killed_coordinator_is_interrupted_and_resume_completes_without_losing_events() {
    let env = Env::new();
    let plan = env.plan(CHAIN);
    let out = env.run(&plan, &[], &[("ORCHESTRATE_SIM_SPEED", "0.2")]);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let dir = env.session_dir(&id);
    wait_for("task b to start", LIMIT, || {
        journal(&dir.join("orchestrator.jsonl"))
            .iter()
            .any(|e| e.phase() == Some("task_started") && e.task.as_deref() == Some("b"))
    });
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    assert_eq!(env.status(&id)["state"], "interrupted");

    let journals = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = vec![dir.join("orchestrator.jsonl")];
        files.extend(
            std::fs::read_dir(dir.join("events"))
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path()),
        );
        files
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                (p, bytes[..complete].to_vec())
            })
            .collect()
    };
    let before = journals(&dir);

    let out = env
        .cmd(&["resume", &id, "--no-dashboard"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("session done"), "{}", text(&out));
    assert_eq!(env.status(&id)["state"], "done");
    for (path, old) in before {
        let new = std::fs::read(&path).unwrap();
        assert!(
            new.starts_with(&old),
            "{} lost events written before the kill",
            path.display()
        );
        let events = journal(&path);
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{}: sequence repeats: {seqs:?}",
            path.display()
        );
    }
    let started: Vec<_> = journal(&dir.join("orchestrator.jsonl"))
        .into_iter()
        .filter(|e| e.phase() == Some("task_started") && e.task.as_deref() == Some("a"))
        .collect();
    assert_eq!(
        started.len(),
        1,
        "a finished before the kill and did not run again"
    );
}

#[test]
fn demo_completes_with_no_agent_cli_installed() {
    let env = Env::new();
    let out = env
        .cmd(&["demo", "--no-dashboard", "--speed", "0"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = text(&out);
    assert!(
        stdout.contains("tier 1 (gemini + claude + codex)"),
        "{stdout}"
    );
    assert!(stdout.contains("session done"), "{stdout}");
    let status = env.status("latest");
    assert_eq!(status["tasks"].as_array().unwrap().len(), 4);
    assert!(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "succeeded")
    );
}

#[test]
fn without_simulate_and_without_any_agent_cli_run_says_what_to_do() {
    let env = Env::new();
    let out = env
        .cmd(&["run", "--target", env.target.to_str().unwrap(), "x"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no agent CLI is installed"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--simulate"));
}
