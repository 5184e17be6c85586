//! The coordinator through the real binary with simulated agents: plans, worktrees, failure
//! exit codes, pause/resume/stop on real process groups, surviving a hang-up, resuming after
//! SIGKILL without losing or repeating an event, and one coordinator per session.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, binary, hanging_session, journal, session_id, text, wait_for};
use orchestrate::worker::process::{group_alive, group_members};

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
    // Claude's own text for the API's 400, as the real CLI prints it.
    let reason = "API Error: 400 The request was refused by the model API.";
    assert!(
        stdout.contains(&format!("task a failed ({reason}); attempt 2 in")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("task a failed: {reason}")),
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
    // Killed while b's agent is mid-conversation: it has said who it is (its init).
    wait_for("task b's agent to be running", LIMIT, || {
        journal(&dir.join("events/gemini-b.jsonl"))
            .iter()
            .any(|e| e.phase() == Some("init"))
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
    // b was running at the kill: it is relaunched continuing gemini's own conversation.
    let b_starts: Vec<_> = journal(&dir.join("orchestrator.jsonl"))
        .into_iter()
        .filter(|e| e.phase() == Some("task_started") && e.task.as_deref() == Some("b"))
        .collect();
    assert_eq!(b_starts.len(), 2);
    let conversation = b_starts[1]
        .str_field("resumed_conversation")
        .expect("the relaunch continues the conversation")
        .to_string();
    let inits: Vec<String> = journal(&dir.join("events/gemini-b.jsonl"))
        .iter()
        .filter(|e| e.phase() == Some("init"))
        .filter_map(|e| e.str_field("session_id").map(String::from))
        .collect();
    assert_eq!(inits.first(), Some(&conversation));
    assert_eq!(
        inits.last(),
        Some(&conversation),
        "gemini --resume <id> continued the same session"
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

#[test]
fn attach_shows_the_worker_forwards_keys_and_detaches_with_ctrl_bracket() {
    use orchestrate::agents::{AgentKind, Launch};
    use orchestrate::worker::{Worker, WorkerSpec};

    let env = Env::new();
    let project = env.workspace.with_file_name("project");
    std::fs::create_dir_all(&project).unwrap();
    common::write_echo_agent(&project);
    let plan = env.plan("[[tasks]]\nid = \"t\"\nagent = \"echo\"\nprompt = \"p\"\n");
    let out = env
        .cmd(&[
            "run",
            "--simulate",
            "--target",
            env.target.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
            "talk",
        ])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    wait_for("the echo worker", LIMIT, || {
        env.status(&id)["workers"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["name"] == "echo-t"))
    });

    // `orchestrate attach` in a real terminal of its own.
    let scratch = tempfile::tempdir().unwrap();
    let exe = binary();
    let argv = [
        exe.to_str().unwrap(),
        "--workspace",
        env.workspace.to_str().unwrap(),
        "attach",
        &id,
        "echo-t",
    ];
    let spec = WorkerSpec {
        name: "attach".into(),
        agent: AgentKind::Events,
        task: None,
        launch: Launch {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: scratch.path().into(),
            ..Launch::default()
        },
        events_path: scratch.path().join("attach.jsonl"),
        raw_path: scratch.path().join("attach.log"),
        rows: 24,
        cols: 80,
        first_seq: 0,
        stop_grace: Duration::from_secs(2),
        summary_path: None,
    };
    let screen = spec.raw_path.clone();
    let attached = Worker::spawn(spec, None).unwrap();
    let shown = || std::fs::read_to_string(&screen).unwrap_or_default();
    wait_for("the attach banner", LIMIT, || {
        shown().contains("attached to echo-t")
    });
    attached.write_input(b"hello\r").unwrap();
    wait_for(
        "the worker's answer on the attached terminal",
        LIMIT,
        || shown().contains("got hello"),
    );
    assert!(
        journal(&env.session_dir(&id).join("events/echo-t.jsonl"))
            .iter()
            .any(|e| e.text() == "got hello")
    );
    attached.write_input(&[0x1d]).unwrap();
    assert_eq!(attached.wait().code, Some(0));
    assert!(
        shown().contains("detached from echo-t; it keeps running"),
        "{}",
        shown()
    );
    let worker = env.status(&id)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "echo-t")
        .unwrap()
        .clone();
    assert_eq!(
        worker["state"], "running",
        "detaching leaves the worker running"
    );
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
    wait_for("the session to stop", LIMIT, || {
        env.status(&id)["state"] == "stopped"
    });
}

#[test]
fn without_a_plan_the_planner_agent_plans_and_an_unusable_answer_falls_back() {
    let env = Env::new();
    let goal_run = |scenario: &str| {
        env.cmd(&[
            "run",
            "--simulate",
            "--no-dashboard",
            "--target",
            env.target.to_str().unwrap(),
            "add caching",
        ])
        .env("ORCHESTRATE_SIM_SCENARIO", scenario)
        .output()
        .unwrap()
    };
    let out = goal_run("success");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = text(&out);
    assert!(stdout.contains("planned 3 tasks from the planner (claude): design (gemini), implement (claude), review (codex)"), "{stdout}");
    let status = env.status(&session_id(&out));
    assert!(
        status["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "planner"),
        "the planner ran as a worker"
    );

    // A planner that answers in prose: the three roles of seed 003 take over.
    let out = goal_run("blocker");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = text(&out);
    assert!(
        stdout.contains("planner answer unusable (no JSON object in the planner's answer)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("planned 3 tasks from the fallback roles"),
        "{stdout}"
    );
}

#[test]
fn bad_names_and_dead_coordinators_get_one_clear_line() {
    let env = Env::new();
    let out = env.run(&env.plan(CHAIN), &["--no-dashboard"], &[]);
    assert!(out.status.success());
    let id = session_id(&out);
    let cases: [(&[&str], &str); 8] = [
        (
            &["status", "orch_nope"],
            "orchestrate: no session \"orch_nope\" in",
        ),
        (
            &["logs", &id, "nobody"],
            "orchestrate: no worker \"nobody\" in session",
        ),
        (
            &["attach", &id, "claude-a"],
            "orchestrate: the coordinator of",
        ),
        (
            &["control", &id, "pause"],
            "is finished (done); there is nothing left to pause",
        ),
        (
            &["kill", "orch_nope"],
            "orchestrate: no session \"orch_nope\"",
        ),
        (
            &["resume", &id],
            "already finished (done); nothing to resume",
        ),
        (
            &["control", &id, "stop", "--worker", "ghost"],
            "orchestrate: session",
        ),
        (&["logs", "orch_nope", "w"], "orchestrate: no session"),
    ];
    for (args, expected) in cases {
        let out = env.cmd(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {stderr}"
        );
    }
}

#[test]
fn a_task_past_its_timeout_is_stopped_and_fails() {
    let env = Env::new();
    let plan = env.plan("[[tasks]]\nid = \"slow\"\nagent = \"codex\"\nprompt = \"p\"\n");
    let out = env.run(
        &plan,
        &["--no-dashboard", "--retries", "0"],
        &[
            ("ORCHESTRATE_SIM_SCENARIO", "hang"),
            ("ORCHESTRATE_TASK_TIMEOUT_SECS", "1"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("task slow failed: timed out after 1s"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_plain_directory_target_is_copied_per_task() {
    let env = Env::new();
    let plain = env.workspace.with_file_name("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("input.txt"), "keep me").unwrap();
    let plan = env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"p\"\n\n[[tasks]]\nid = \"b\"\nagent = \"codex\"\nprompt = \"q\"\ndepends_on = [\"a\"]\n");
    let out = env
        .cmd(&[
            "run",
            "--simulate",
            "--no-dashboard",
            "--target",
            plain.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
            "g",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runs = env.session_dir(&session_id(&out)).join("runs");
    assert_eq!(
        std::fs::read_to_string(runs.join("a/input.txt")).unwrap(),
        "keep me"
    );
    // b starts from a's copy, so it has what a wrote.
    assert!(std::fs::read_dir(runs.join("b/notes")).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("claude-")
    }));
    assert!(
        !plain.join("notes").exists(),
        "the target itself is untouched"
    );
}

#[test]
fn with_only_one_cli_installed_every_role_moves_to_it() {
    let env = Env::new();
    let bin = env.workspace.with_file_name("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude = bin.join("claude");
    std::fs::write(
        &claude,
        format!("#!/bin/sh\nexec {} sim claude \"$@\"\n", binary().display()),
    )
    .unwrap();
    std::fs::set_permissions(&claude, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = env
        .cmd(&[
            "run",
            "--no-dashboard",
            "--target",
            env.target.to_str().unwrap(),
            "add caching",
        ])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("IS_SANDBOX", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = text(&out);
    assert!(stdout.contains("tier 5 (claude alone)"), "{stdout}");
    assert!(
        stdout.contains("gemini is not installed; claude takes the design role"),
        "{stdout}"
    );
    assert!(stdout.contains("planned 3 tasks from the planner (claude): design (claude), implement (claude), review (claude)"), "{stdout}");
    assert_eq!(
        env.status(&session_id(&out))["tier"],
        "tier 5 (claude alone)"
    );
}

#[test]
fn an_agent_that_crashes_fails_its_task_with_the_signal_as_the_reason() {
    let env = Env::new();
    let plan = env.plan("[[tasks]]\nid = \"boom\"\nagent = \"claude\"\nprompt = \"p\"\n");
    let out = env.run(
        &plan,
        &["--no-dashboard", "--retries", "0"],
        &[("ORCHESTRATE_SIM_SCENARIO", "crash")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("task boom failed: killed by SIGABRT (signal 6)"),
        "{}",
        text(&out)
    );
    let worker = &env.status(&session_id(&out))["workers"][0];
    assert_eq!(
        (worker["state"].as_str(), worker["signal"].as_i64()),
        (Some("failed"), Some(6))
    );
}

#[test]
fn following_works_with_a_relative_workspace() {
    let env = Env::new();
    let parent = env.workspace.parent().unwrap().to_path_buf();
    let plan = env.plan(CHAIN);
    let out = Command::new(binary())
        .args([
            "--workspace",
            "ws",
            "run",
            "--simulate",
            "--no-dashboard",
            "--plan",
            plan.to_str().unwrap(),
        ])
        .args(["--target", env.target.to_str().unwrap(), "relative"])
        .current_dir(&parent)
        .env("ORCHESTRATE_SIM_SPEED", "0.05")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = text(&out);
    assert!(
        stdout.contains("task b succeeded") && stdout.contains("session done"),
        "{stdout}"
    );
}
