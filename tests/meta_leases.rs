//! Path leases through the real binary: workers take `nexus_lock` through their MCP server
//! before they write, the sandbox hook holds each write to its lease, a contended path goes
//! to the conflict resolver, and the loser's write is denied naming the holder. With the
//! simulated CLIs, and with the real Claude against the stub model.

mod common;

use std::time::Duration;

use common::{Env, journal, session_id, text, wait_for};
use orchestrate::event::AgentEvent;
use serde_json::Value;

/// Two tasks of `agent` with the same prompt: they write the same notes file.
///
/// They run at a fifth of human pace, so each holds its lease for a while after writing and
/// the two overlap (at full speed one may end before the other writes: no contention).
const OVERLAPPING: (&str, &str) = ("ORCHESTRATE_SIM_SPEED", "0.2");
fn contending_plan(env: &Env, agent: &str) -> std::path::PathBuf {
    env.plan(&format!(
        "[[tasks]]\nid = \"t1\"\nagent = \"{agent}\"\nprompt = \"add the endpoint\"\n\n\
         [[tasks]]\nid = \"t2\"\nagent = \"{agent}\"\nprompt = \"add the endpoint\"\n"
    ))
}

fn set_config(env: &Env, text: &str) {
    std::fs::write(env.workspace.with_file_name("orchestrate.toml"), text).unwrap();
}

fn orchestrator(env: &Env, id: &str) -> Vec<AgentEvent> {
    journal(&env.session_dir(id).join("orchestrator.jsonl"))
}

fn with_phase<'a>(events: &'a [AgentEvent], phase: &str) -> Vec<&'a AgentEvent> {
    events.iter().filter(|e| e.phase() == Some(phase)).collect()
}

fn texts(events: &[AgentEvent]) -> Vec<String> {
    events.iter().map(|e| e.text().to_string()).collect()
}

/// The worker's nexus_lock calls and what the server answered, in order.
fn lock_answers(env: &Env, id: &str, worker: &str) -> Vec<Value> {
    journal(&env.session_dir(id).join(format!("events/{worker}.jsonl")))
        .iter()
        .filter(|e| e.str_field("kind") == Some("tool_result"))
        .filter_map(|e| e.str_field("output"))
        .filter_map(|out| serde_json::from_str::<Value>(out).ok())
        .filter(|v| v.get("success").is_some())
        .collect()
}

#[test]
fn two_simulated_workers_contend_for_a_file_and_the_journal_shows_grant_denial_and_resolution() {
    let env = Env::new();
    set_config(&env, "[review]\nenabled = false\n");
    let plan = contending_plan(&env, "claude");
    let out = env.run(&plan, &["--no-dashboard"], &[OVERLAPPING]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = orchestrator(&env, &id);
    let all = texts(&events);
    // The first grant is the holder's; the other may get the lease once it is released.
    let granted = with_phase(&events, "lease_granted");
    let holder = granted[0].str_field("worker").unwrap().to_string();
    let loser = if holder == "claude-t1" {
        "claude-t2"
    } else {
        "claude-t1"
    };
    let path = "notes/claude-add-the-endpoint-you-are.md";
    assert_eq!(granted[0].str_field("path"), Some(path));
    let resolved = with_phase(&events, "conflict_resolved");
    assert!(!resolved.is_empty(), "{all:#?}");
    assert_eq!(resolved[0].str_field("winner"), Some(holder.as_str()));
    assert_eq!(resolved[0].payload["losers"][0], loser);
    let denied = with_phase(&events, "lease_denied");
    assert!(!denied.is_empty(), "{all:#?}");
    assert_eq!(denied[0].str_field("worker"), Some(loser));
    assert_eq!(denied[0].str_field("holder"), Some(holder.as_str()));
    assert!(
        denied[0]
            .str_field("reason")
            .unwrap()
            .contains(&format!("leased by {holder}")),
        "{all:#?}"
    );
    // The holder's leases went with its task.
    let released = with_phase(&events, "lease_released");
    assert_eq!(released[0].str_field("worker"), Some(holder.as_str()));
    assert_eq!(released[0].payload["paths"][0], path);
    // Both asked the MCP server first: the holder was granted, the loser told who holds it.
    let holder_answers = lock_answers(&env, &id, &holder);
    assert_eq!(holder_answers[0]["success"], true, "{holder_answers:?}");
    assert_eq!(holder_answers[0]["lock"]["resource"], path);
    let loser_answers = lock_answers(&env, &id, loser);
    assert_eq!(loser_answers[0]["success"], false, "{loser_answers:?}");
    assert_eq!(loser_answers[0]["holder"], holder.as_str());
    // One wrote the file, the other was refused and changed nothing.
    assert!(
        with_phase(&events, "no_change")
            .iter()
            .any(|e| e.str_field("worker") == Some(loser)),
        "{all:#?}"
    );
    // Nothing is left locked.
    let locks = env.cmd(&["meta", "locks", "--json"]).output().unwrap();
    let locks: Value = serde_json::from_slice(&locks.stdout).unwrap();
    assert_eq!(locks["locks"], serde_json::json!([]), "{locks}");
}

#[test]
fn a_writer_the_matrix_ranks_higher_takes_the_lease_from_its_holder() {
    let env = Env::new();
    set_config(
        &env,
        "[review]\nenabled = false\n\n[meta.conflicts.priorities]\nfile_creation = [\"claude-t2\"]\n",
    );
    let plan = contending_plan(&env, "claude");
    let out = env.run(&plan, &["--no-dashboard"], &[OVERLAPPING]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = orchestrator(&env, &id);
    let all = texts(&events);
    // Whoever wrote first, claude-t2 ends with the file: it keeps its lease, or takes it.
    for resolution in with_phase(&events, "conflict_resolved") {
        assert_eq!(
            resolution.str_field("winner"),
            Some("claude-t2"),
            "{all:#?}"
        );
        assert!(
            resolution
                .str_field("reason")
                .unwrap()
                .contains("file_creation priority")
        );
    }
    for denial in with_phase(&events, "lease_denied") {
        assert_eq!(denial.str_field("worker"), Some("claude-t1"), "{all:#?}");
    }
    let revoked = events
        .iter()
        .filter(|e| e.phase() == Some("lease_released") && e.str_field("action") == Some("revoke"))
        .count();
    let denied = with_phase(&events, "lease_denied").len();
    assert!(revoked + denied > 0, "no contention at all: {all:#?}");
}

#[test]
fn status_shows_the_leases_a_running_session_holds() {
    let env = Env::new();
    set_config(&env, "[review]\nenabled = false\n");
    let plan =
        env.plan("[[tasks]]\nid = \"t1\"\nagent = \"codex\"\nprompt = \"add the endpoint\"\n");
    // Human pace: the task holds its lease for seconds after writing.
    let out = env.run(&plan, &[], &[("ORCHESTRATE_SIM_SPEED", "1")]);
    let id = session_id(&out);
    let mut status = Value::Null;
    wait_for("a lease in status --json", Duration::from_secs(60), || {
        status = env.status(&id);
        status["leases"].as_array().is_some_and(|l| !l.is_empty())
    });
    let lease = &status["leases"][0];
    assert_eq!(
        lease["path"], "notes/codex-add-the-endpoint-you-are.md",
        "{status:#}"
    );
    assert_eq!(lease["worker"], "codex-t1");
    assert!(lease["token"].as_u64().unwrap() >= 1);
    let worker = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "codex-t1")
        .unwrap();
    assert_eq!(
        worker["leases"][0],
        "notes/codex-add-the-endpoint-you-are.md"
    );
    let shown = env.cmd(&["status", &id]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout)
            .contains("leases: notes/codex-add-the-endpoint-you-are.md"),
        "{}",
        text(&shown)
    );
    let _ = env.cmd(&["kill", &id]).output();
}

#[test]
fn a_real_claude_takes_its_lock_through_orchestrate_s_mcp_server_before_writing() {
    let Some(clis) = common::require_agent_clis("a_real_claude_takes_its_lock") else {
        return;
    };
    let env = Env::real(clis);
    set_config(&env, "[review]\nenabled = false\n");
    let plan =
        env.plan("[[tasks]]\nid = \"t\"\nagent = \"claude\"\nprompt = \"add the endpoint\"\n");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let calls: Vec<AgentEvent> = journal(&env.session_dir(&id).join("events/claude-t.jsonl"))
        .into_iter()
        .filter(|e| e.str_field("tool") == Some("mcp__orch__nexus_lock"))
        .collect();
    assert!(!calls.is_empty(), "claude never called nexus_lock");
    let answers = lock_answers(&env, &id, "claude-t");
    assert_eq!(answers[0]["success"], true, "{answers:?}");
    assert_eq!(answers[0]["lock"]["holder"], "claude-t");
    let path = answers[0]["lock"]["resource"].as_str().unwrap().to_string();
    // The write that followed held the same lease: granted once, released at the end.
    let events = orchestrator(&env, &id);
    let granted = with_phase(&events, "lease_granted");
    assert_eq!(granted.len(), 1, "{:#?}", texts(&events));
    assert_eq!(granted[0].str_field("path"), Some(path.as_str()));
    assert_eq!(granted[0].payload["token"], answers[0]["lock"]["token"]);
    assert_eq!(with_phase(&events, "lease_released").len(), 1);
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
}

/// With the shipped matrix, workers are ranked as the router target their task's prompt goes
/// to: for a file, the implementer (bolt) outranks the designer (bmad), whoever wrote first.
#[test]
fn the_shipped_matrix_ranks_workers_by_the_target_their_task_routes_to() {
    let env = Env::new();
    set_config(&env, "[review]\nenabled = false\n");
    let plan = env.plan(
        "[[tasks]]\nid = \"design\"\nagent = \"claude\"\nprompt = \"Design the endpoint. Record it in `docs/api.md`.\"\n\n\
         [[tasks]]\nid = \"build\"\nagent = \"claude\"\nprompt = \"Implement the endpoint. Record it in `docs/api.md`.\"\n",
    );
    let out = env.run(&plan, &["--no-dashboard"], &[OVERLAPPING]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = orchestrator(&env, &id);
    let all = texts(&events);
    let resolved = with_phase(&events, "conflict_resolved");
    assert!(!resolved.is_empty(), "no contention at all: {all:#?}");
    for resolution in resolved {
        assert_eq!(
            resolution.str_field("winner"),
            Some("claude-build"),
            "{all:#?}"
        );
        let reason = resolution.str_field("reason").unwrap();
        assert!(
            reason.contains("claude-build as bolt") && reason.contains("claude-design as bmad"),
            "{reason}"
        );
    }
    for denial in with_phase(&events, "lease_denied") {
        assert_eq!(
            denial.str_field("worker"),
            Some("claude-design"),
            "{all:#?}"
        );
    }
}

/// A lease that lapsed (its TTL passed while the task ran on) is still journaled as ended
/// with its task, so the dashboard and whoever reads the journal stop listing it.
#[test]
fn a_lease_that_lapsed_is_journaled_as_released_when_its_task_ends() {
    let env = Env::new();
    set_config(
        &env,
        "[review]\nenabled = false\n\n[meta]\nlock_ttl_secs = 1\n",
    );
    let plan =
        env.plan("[[tasks]]\nid = \"t1\"\nagent = \"codex\"\nprompt = \"add the endpoint\"\n");
    // Human pace: the task goes on for seconds after its write, past the 1 s lease.
    let out = env.run(
        &plan,
        &["--no-dashboard"],
        &[("ORCHESTRATE_SIM_SPEED", "1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events = orchestrator(&env, &session_id(&out));
    let all = texts(&events);
    let granted = with_phase(&events, "lease_granted");
    assert!(!granted.is_empty(), "{all:#?}");
    let path = granted[0].str_field("path").unwrap();
    let released = with_phase(&events, "lease_released");
    let ended = released
        .iter()
        .find(|e| e.str_field("worker") == Some("codex-t1") && e.payload["paths"][0] == path)
        .unwrap_or_else(|| panic!("{all:#?}"));
    // It had lapsed by then: the store no longer held it to release.
    assert!(
        ended.timestamp.millis() - granted[0].timestamp.millis() > 1_000,
        "{all:#?}"
    );
}

/// A store that cannot be reached does not hold the work up: the operator is told once, the
/// writes go on unleased, and the session ends as it would have.
#[test]
fn an_unreachable_store_is_said_once_and_the_writes_go_on() {
    let env = Env::new();
    set_config(
        &env,
        "[review]\nenabled = false\n\n[meta]\nstore = \"redis://127.0.0.1:1\"\n",
    );
    let plan = contending_plan(&env, "claude");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = orchestrator(&env, &id);
    let all = texts(&events);
    let off = with_phase(&events, "leases_unavailable");
    assert_eq!(off.len(), 1, "{all:#?}");
    assert!(
        off[0].text().contains("redis://127.0.0.1:1") && off[0].text().contains("unleased"),
        "{all:#?}"
    );
    assert!(with_phase(&events, "lease_granted").is_empty(), "{all:#?}");
    assert!(with_phase(&events, "lease_denied").is_empty(), "{all:#?}");
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
    assert_eq!(env.status(&id)["tasks"][1]["state"], "succeeded");
}

/// A write the operator approves still needs its path's lease: approved, a shell write to a
/// file another worker holds is refused, naming the holder. Through the real hook binary and
/// the coordinator's socket, as an agent's hook would ask.
#[test]
fn an_approved_write_to_a_leased_path_is_still_refused() {
    let env = Env::new();
    set_config(
        &env,
        "[review]\nenabled = false\n\n[sandbox]\nconfirm = [\"tee\"]\n",
    );
    let plan = env.plan(
        "[[tasks]]\nid = \"h1\"\nagent = \"claude\"\nprompt = \"p\"\n\n\
         [[tasks]]\nid = \"h2\"\nagent = \"claude\"\nprompt = \"p\"\n",
    );
    let out = env.run(&plan, &[], &[("ORCHESTRATE_SIM_SCENARIO", "hang")]);
    let id = session_id(&out);
    wait_for("both workers running", Duration::from_secs(60), || {
        let status = env.status(&id);
        status["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 2 && w.iter().all(|w| w["state"] == "running"))
    });
    // claude-h1 holds docs/a.md, as its own write or nexus_lock would have taken it.
    let resource = format!("{id}:docs/a.md");
    let held = env
        .cmd(&[
            "meta",
            "lock",
            "acquire",
            &resource,
            "--holder",
            "claude-h1",
        ])
        .output()
        .unwrap();
    assert!(held.status.success(), "{}", text(&held));
    // claude-h2's hook asks about `tee docs/a.md`, which waits for the operator.
    let session = env.session_dir(&id);
    let call = serde_json::json!({
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "echo x | tee docs/a.md"},
        "cwd": session.join("runs/h2"),
    });
    let mut hook = env
        .cmd(&["hook", "claude", "--socket"])
        .arg(session.join("control.sock"))
        .args(["--worker", "claude-h2", "--timeout", "60"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = hook.stdin.take().unwrap();
        stdin.write_all(call.to_string().as_bytes()).unwrap();
    }
    let mut approval = String::new();
    wait_for("the approval", Duration::from_secs(30), || {
        let out = env.cmd(&["approvals", &id, "--json"]).output().unwrap();
        let open: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        approval = open[0]["id"].as_str().unwrap_or_default().to_string();
        !approval.is_empty()
    });
    let approved = env.cmd(&["approve", &id, &approval]).output().unwrap();
    assert!(approved.status.success(), "{}", text(&approved));
    let answer = hook.wait_with_output().unwrap();
    let said = text(&answer);
    assert!(!said.contains("\"allow\""), "{said}");
    assert!(said.contains("docs/a.md is leased by claude-h1"), "{said}");
    let events = orchestrator(&env, &id);
    let denied = with_phase(&events, "lease_denied");
    assert_eq!(denied.len(), 1, "{:#?}", texts(&events));
    assert_eq!(denied[0].str_field("worker"), Some("claude-h2"));
    let _ = env.cmd(&["kill", &id]).output();
}
