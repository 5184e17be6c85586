//! The real pinned `claude`, `codex` and `gemini` (`.ci/install-agent-clis`) run by the real
//! binary against the stub model, cut off from every network but loopback: a plan completes
//! with worktrees and commits; pause, resume, kill and stop reach every process a CLI starts;
//! after a coordinator SIGKILL each CLI continues its own conversation; and the dashboard shows
//! it all in a real terminal. Without the CLIs each test says it is skipped (under CI=true it
//! fails).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;
use common::{
    Env, journal, require_agent_clis, session_id, shell_line, stub_log, text, wait_for,
    worker_procs,
};
use orchestrate::event::EventType;
use orchestrate::worker::WorkerSummary;
use orchestrate::worker::process::WorkerProcs;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

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

/// One task per CLI, all at once.
const TRIO: &str = r#"
[[tasks]]
id = "x"
agent = "claude"
prompt = "first part"

[[tasks]]
id = "y"
agent = "codex"
prompt = "second part"

[[tasks]]
id = "z"
agent = "gemini"
prompt = "third part"
"#;

const WORKERS: [&str; 3] = ["claude-x", "codex-y", "gemini-z"];

fn procs(env: &Env, id: &str, worker: &str) -> Option<WorkerProcs> {
    worker_procs(&journal(
        &env.session_dir(id).join(format!("events/{worker}.jsonl")),
    ))
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

#[test]
fn a_three_task_plan_completes_with_the_real_clis_against_the_stub() {
    let Some(clis) = require_agent_clis("a_three_task_plan_completes_with_the_real_clis") else {
        return;
    };
    let env = Env::real(clis);
    let out = env.run(&env.plan(CHAIN), &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let dir = env.session_dir(&id);
    let stdout = text(&out);
    for line in [
        "tier 1 (gemini + claude + codex)",
        "task a succeeded",
        "task b succeeded",
        "task c succeeded",
        "session done",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from\n{stdout}");
    }

    // Each CLI did the story's work in its own worktree, and the coordinator committed it on
    // the task's branch; b started from a's branch.
    for (task, cli) in [("a", "claude"), ("b", "gemini"), ("c", "codex")] {
        let branch = format!("orchestrate/{id}/{task}");
        let files = git(&env.target, &["ls-tree", "-r", "--name-only", &branch]);
        assert!(
            files
                .lines()
                .any(|f| f.starts_with(&format!("notes/{cli}-"))),
            "{branch} lacks {cli}'s notes: {files}"
        );
        let note = std::fs::read_dir(dir.join(format!("runs/{task}/notes")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(cli))
            .unwrap();
        assert!(
            std::fs::read_to_string(note)
                .unwrap()
                .contains("- [x] reviewed the change"),
            "{cli} wrote the file, then edited it"
        );
    }
    let b_files = git(
        &env.target,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            &format!("orchestrate/{id}/b"),
        ],
    );
    assert!(b_files.contains("notes/claude-"), "{b_files}");

    // Journals: every worker said who it is, finished its run and exited 0.
    for worker in ["claude-a", "gemini-b", "codex-c"] {
        let events = journal(&dir.join(format!("events/{worker}.jsonl")));
        assert!(
            events
                .iter()
                .any(|e| e.phase() == Some("init") && e.str_field("session_id").is_some()),
            "{worker} has no init"
        );
        assert!(
            events
                .iter()
                .any(|e| e.kind == EventType::Milestone && e.bool_field("final")),
            "{worker} has no final milestone"
        );
        assert!(
            !events.iter().any(|e| e.kind == EventType::Error),
            "{worker} journaled an error: {:?}",
            events
                .iter()
                .filter(|e| e.kind == EventType::Error)
                .collect::<Vec<_>>()
        );
    }
    let status = env.status(&id);
    assert_eq!(status["state"], "done");
    for worker in status["workers"].as_array().unwrap() {
        assert_eq!(worker["state"], "done", "{worker}");
        assert_eq!(worker["exit_code"], 0, "{worker}");
        assert!(worker["input_tokens"].as_i64().unwrap() > 0, "{worker}");
    }

    // The stub saw every CLI, and only the stub was asked anything: the operator's home holds
    // nothing of theirs.
    let apis: Vec<String> = stub_log(&dir)
        .iter()
        .filter_map(|r| r["api"].as_str().map(str::to_string))
        .collect();
    for api in ["anthropic", "openai", "gemini"] {
        assert!(apis.iter().any(|a| a == api), "no {api} request: {apis:?}");
    }
    for own in [".claude", ".claude.json", ".codex", ".gemini"] {
        assert!(
            !env.home.join(own).exists(),
            "{own} appeared in the operator's home"
        );
    }
}

#[test]
fn pause_resume_kill_and_stop_reach_every_process_a_real_cli_starts() {
    let Some(clis) = require_agent_clis("pause_resume_kill_and_stop_reach_every_process") else {
        return;
    };
    let env = Env::real(clis);
    let out = env.run(
        &env.plan(TRIO),
        &[],
        &[("ORCHESTRATE_SIM_SCENARIO", "hang")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    // Each CLI is running the story's long command; Codex and Gemini run it in a session of
    // its own, outside the worker's process group.
    let mut workers: Vec<WorkerProcs> = Vec::new();
    wait_for("every CLI running its long command", LIMIT, || {
        workers = WORKERS.iter().filter_map(|w| procs(&env, &id, w)).collect();
        workers.len() == 3
            && workers
                .iter()
                .all(|w| w.members().iter().any(|p| p.name == "sleep"))
    });
    assert!(
        workers.iter().any(|w| w
            .members()
            .iter()
            .any(|p| p.name == "sleep" && p.group != w.leader)),
        "no CLI started its command outside its group: this test would not test that case"
    );

    let control = |args: &[&str]| {
        let out = env.cmd(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    };
    assert!(control(&["control", &id, "pause"]).contains("session paused"));
    wait_for("every process of every worker stopped", LIMIT, || {
        workers
            .iter()
            .all(|w| w.members().iter().all(|p| p.state == 'T'))
    });
    assert_eq!(env.status(&id)["state"], "paused");
    control(&["control", &id, "resume"]);
    wait_for("every process running again", LIMIT, || {
        workers
            .iter()
            .all(|w| w.members().iter().all(|p| p.state != 'T'))
    });

    // Kill one worker: all of its processes go, the others stay.
    let codex = &workers[1];
    control(&["kill", &id, "codex-y"]);
    wait_for("codex's processes gone, its sleep included", LIMIT, || {
        !codex.alive()
    });
    assert!(workers[0].alive() && workers[2].alive());

    control(&["control", &id, "stop"]);
    wait_for("the session to stop", LIMIT, || {
        env.status(&id)["state"] == "stopped"
    });
    wait_for("no process of the session left", LIMIT, || {
        workers.iter().all(|w| !w.alive())
    });
}

#[test]
fn after_a_coordinator_sigkill_each_real_cli_continues_its_own_conversation() {
    let Some(clis) = require_agent_clis("after_a_coordinator_sigkill_each_real_cli_continues")
    else {
        return;
    };
    let env = Env::real(clis);
    let out = env.run(
        &env.plan(TRIO),
        &[],
        &[("ORCHESTRATE_SIM_SCENARIO", "slow")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let dir = env.session_dir(&id);
    // Killed once every CLI is mid-conversation: the stub has answered a tool result of each,
    // and none has had its final answer.
    wait_for("every CLI mid-conversation", LIMIT, || {
        let log = stub_log(&dir);
        WORKERS.iter().all(|w| {
            log.iter()
                .any(|r| r["worker"] == *w && r["tool_results"].as_u64() >= Some(1))
        })
    });
    let log = stub_log(&dir);
    let finished: Vec<&str> = WORKERS
        .iter()
        .copied()
        .filter(|w| {
            log.iter()
                .any(|r| r["worker"] == *w && r["reply"] == "answer")
        })
        .collect();
    assert!(
        finished.is_empty(),
        "{finished:?} finished before the others started: the slow story is too fast here"
    );
    let before = stub_log(&dir).len();
    let sessions_before: Vec<Option<String>> = WORKERS
        .iter()
        .map(|w| WorkerSummary::of(&journal(&dir.join(format!("events/{w}.jsonl")))).agent_session)
        .collect();
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    assert_eq!(env.status(&id)["state"], "interrupted");

    let out = env
        .cmd(&["resume", &id, "--no-dashboard"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("session done"), "{}", text(&out));

    let after = &stub_log(&dir)[before..];
    for (worker, session) in WORKERS.iter().zip(&sessions_before) {
        // The first request of the resumed CLI already carries the tool results of before.
        let first = after
            .iter()
            .find(|r| r["worker"] == *worker && r["reply"] != "side")
            .unwrap_or_else(|| panic!("{worker} asked the stub nothing after the resume"));
        assert!(
            first["tool_results"].as_u64() >= Some(1),
            "{worker} started its conversation over: {first}"
        );
        let journal = journal(&dir.join(format!("events/{worker}.jsonl")));
        let last = WorkerSummary::of(&journal).agent_session;
        assert!(
            session.is_some(),
            "{worker} had no session id before the kill"
        );
        assert_eq!(&last, session, "{worker} continued the same conversation");
    }
    let status = env.status(&id);
    assert!(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "succeeded"),
        "{status:#}"
    );
}

#[test]
fn the_dashboard_shows_a_real_cli_session_in_a_real_terminal() {
    let Some(clis) = require_agent_clis("the_dashboard_shows_a_real_cli_session") else {
        return;
    };
    let env = Env::real(clis);
    let plan = env.plan(TRIO);
    let mut cmd = env.cmd(&[
        "run",
        "--stub-model",
        "--target",
        env.target.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
        "build the thing",
    ]);
    cmd.env("ORCHESTRATE_SIM_SCENARIO", "slow");
    let tmux = Tmux::new();
    tmux.start("real", &format!("{}; sleep 60", shell_line(&cmd)));
    wait_for("the three real CLIs' panes", LIMIT, || {
        let screen = tmux.screen("real");
        WORKERS.iter().all(|w| screen.contains(w)) && screen.contains("● running")
    });
    assert!(tmux.alternate_screen("real"));
    // Without todo lists, the panes still say what each agent is doing.
    wait_for("a real tool call as current activity", LIMIT, || {
        let screen = tmux.screen("real");
        screen.contains("› Bash: ")
            || screen.contains("› $ ")
            || screen.contains("› run_shell_command")
    });
    wait_for("the session to finish", LIMIT, || {
        tmux.screen("real").contains("● done")
    });
    let screen = tmux.screen("real");
    // The three workers, then the agents that reviewed each one's work.
    let done: Vec<&str> = screen.split("✓ ").skip(1).collect();
    for w in WORKERS {
        assert!(
            done.iter().any(|d| d.starts_with(w)),
            "{w} done on screen:\n{screen}"
        );
    }
    // As cards (`· reviewer`) or, when they do not all fit, as rows of the list.
    assert!(
        screen.matches("· reviewer").count() >= 2 || screen.matches("✓ review-").count() >= 2,
        "the reviewers on screen:\n{screen}"
    );
    tmux.keys("real", "q");
    wait_for("the dashboard to leave", LIMIT, || {
        tmux.screen("real").contains("left the dashboard")
    });
    let status: Value = env.status(&session_of(&env));
    assert_eq!(status["state"], "done");
}

fn session_of(env: &Env) -> String {
    let out = env.cmd(&["status", "latest", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["session"].as_str().unwrap().to_string()
}

#[test]
fn a_cli_that_cannot_reach_its_api_is_retrying_then_held_with_the_reason() {
    let Some(clis) = require_agent_clis("a_cli_that_cannot_reach_its_api") else {
        return;
    };
    let env = Env::real(clis);
    // Each CLI gets the failure it retries: Claude a 529, Codex a 500, Gemini a 429. Recovery
    // with no budget holds each task at once (tests/recovery.rs covers its retries).
    let config = env.home.join(".config/orchestrate/orchestrate.toml");
    std::fs::write(
        &config,
        "agent_unreachable_secs = 4\n\
         [recovery]\nbudget = 0\n\
         [agents.claude]\nenv = { IS_SANDBOX = \"1\", ORCHESTRATE_SIM_SCENARIO = \"api-529\" }\n\
         [agents.codex]\nenv = { ORCHESTRATE_SIM_SCENARIO = \"api-500\" }\n\
         [agents.gemini]\nenv = { ORCHESTRATE_SIM_SCENARIO = \"api-429\" }\n",
    )
    .unwrap();
    let out = env.run(&env.plan(TRIO), &["--retries", "0"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let mut seen = std::collections::BTreeSet::new();
    wait_for("each worker to show it is retrying", LIMIT, || {
        for w in env.status(&id)["workers"].as_array().unwrap() {
            if w["state"] == "retrying" && w["retrying"].is_string() {
                seen.insert(w["name"].as_str().unwrap().to_string());
            }
        }
        seen.len() == 3
    });
    wait_for("every task held for the operator", LIMIT, || {
        env.status(&id)["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["state"] == "escalated"))
    });
    let journal = journal(&env.session_dir(&id).join("orchestrator.jsonl"));
    for task in ["x", "y", "z"] {
        let stopped = journal
            .iter()
            .find(|e| e.phase() == Some("agent_unreachable") && e.task.as_deref() == Some(task))
            .unwrap_or_else(|| panic!("task {task} was not stopped as unreachable"));
        let reason = stopped.str_field("reason").unwrap();
        assert!(
            reason.starts_with("cannot reach its model API: still retrying ("),
            "{task}: {reason}"
        );
    }
    let _ = env.cmd(&["kill", &id]).output();
    // No error per attempt: the retries are one state, not a flood.
    for worker in WORKERS {
        let events = journal_of(&env, &id, worker);
        let errors = events
            .iter()
            .filter(|e| e.kind == EventType::Error && e.phase() != Some("exited"))
            .count();
        assert!(errors <= 1, "{worker}: {errors} errors");
    }
}

fn journal_of(env: &Env, id: &str, worker: &str) -> Vec<orchestrate::event::AgentEvent> {
    journal(&env.session_dir(id).join(format!("events/{worker}.jsonl")))
}

#[test]
fn codex_in_edit_mode_edits_and_commits_in_its_worktree_and_no_change_is_flagged() {
    let Some(clis) = require_agent_clis("codex_in_edit_mode_edits_and_commits") else {
        return;
    };
    let env = Env::real(clis);
    // Codex under --sandbox workspace-write, committing its own work; and a reviewer (Codex
    // too) that only reads: a writing task that changed nothing.
    std::fs::write(
        env.home.join(".config/orchestrate/orchestrate.toml"),
        "[agents.codex]\nautonomy = \"edit\"\nenv = { ORCHESTRATE_SIM_SCENARIO = \"commit\" }\n\
         [agents.reviewer]\nkind = \"codex\"\ncommand = [\"codex\"]\n\
         env = { ORCHESTRATE_SIM_SCENARIO = \"approve\" }\n",
    )
    .unwrap();
    let plan = env.plan(
        "[[tasks]]\nid = \"e\"\nagent = \"codex\"\nprompt = \"note it\"\n\n\
         [[tasks]]\nid = \"r\"\nagent = \"reviewer\"\nprompt = \"review it\"\n",
    );
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let log = git(
        &env.target,
        &["log", "--format=%s", &format!("orchestrate/{id}/e")],
    );
    assert!(
        log.lines().any(|l| l == "notes from the agent"),
        "codex's own commit is on the task's branch: {log}"
    );
    let journal = journal(&env.session_dir(&id).join("orchestrator.jsonl"));
    let flagged: Vec<&str> = journal
        .iter()
        .filter(|e| e.phase() == Some("no_change"))
        .filter_map(|e| e.task.as_deref())
        .collect();
    assert_eq!(
        flagged,
        ["r"],
        "only the task that changed nothing is flagged"
    );
    let stdout = text(&out);
    assert!(
        stdout.contains("task r finished without changing anything in its directory"),
        "{stdout}"
    );
}
