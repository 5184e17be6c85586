//! The sandbox enforced through each real CLI's own channel (their pre-tool hooks, with the
//! static rules behind them), against the stub model: a blocked command never runs, a write
//! outside the allowed directories is refused, and a command that needs approval waits, runs
//! after `approve` and not after `deny`. Without the pinned CLIs each test says it is skipped
//! (under CI=true it fails).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Env, journal, require_agent_clis, session_id, text, wait_for};

const LIMIT: Duration = Duration::from_secs(90);
const OUTSIDE: &str = orchestrate::scenario::stories::OUTSIDE_NOTE;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A plan of one task per CLI named in `clis`, each playing `scenario`.
fn plan(env: &Env, clis: &[&str]) -> std::path::PathBuf {
    let tasks: String = clis
        .iter()
        .map(|cli| format!("[[tasks]]\nid = \"{cli}\"\nagent = \"{cli}\"\nprompt = \"do it\"\n\n"))
        .collect();
    env.plan(&tasks)
}

/// A `victim/keep.txt` committed in the target, so every worktree has one to lose.
fn with_victim(env: &Env) {
    std::fs::create_dir_all(env.target.join("victim")).unwrap();
    std::fs::write(env.target.join("victim/keep.txt"), "keep me\n").unwrap();
    git(&env.target, &["add", "-A"]);
    git(
        &env.target,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "victim",
        ],
    );
}

#[test]
fn blocked_commands_and_outside_writes_never_happen_with_the_real_clis() {
    let Some(clis) =
        require_agent_clis("blocked_commands_and_outside_writes_never_happen_with_the_real_clis")
    else {
        return;
    };
    blocked_commands_and_outside_writes_never_happen(&Env::real(clis));
}

#[test]
fn blocked_commands_and_outside_writes_never_happen_with_the_sim_agents() {
    blocked_commands_and_outside_writes_never_happen(&Env::new());
}

#[test]
fn a_push_waits_for_approval_and_runs_only_when_approved_with_the_real_clis() {
    let Some(clis) = require_agent_clis(
        "a_push_waits_for_approval_and_runs_only_when_approved_with_the_real_clis",
    ) else {
        return;
    };
    a_push_waits_for_approval_and_runs_only_when_approved(&Env::real(clis));
}

#[test]
fn a_push_waits_for_approval_and_runs_only_when_approved_with_the_sim_agents() {
    a_push_waits_for_approval_and_runs_only_when_approved(&Env::new());
}

fn blocked_commands_and_outside_writes_never_happen(env: &Env) {
    with_victim(env);
    let _ = std::fs::remove_file(OUTSIDE);
    let out = env.run(
        &plan(env, &["claude", "codex", "gemini"]),
        &["--no-dashboard"],
        &[("ORCHESTRATE_SIM_SCENARIO", "risky")],
    );
    let id = session_id(&out);
    for cli in ["claude", "codex", "gemini"] {
        let run = env.session_dir(&id).join("runs").join(cli);
        assert!(
            run.join("victim/keep.txt").is_file(),
            "{cli}: rm -rf victim ran\n{}",
            text(&out)
        );
    }
    assert!(
        !Path::new(OUTSIDE).exists(),
        "a write outside the workspace happened"
    );
    let decisions: Vec<_> = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
        .into_iter()
        .filter(|e| e.str_field("rule") == Some("sandbox") && e.str_field("action") == Some("deny"))
        .collect();
    for cli in ["claude", "codex", "gemini"] {
        let worker = format!("{cli}-{cli}");
        let refused = |what: &str| {
            decisions
                .iter()
                .any(|d| d.str_field("worker") == Some(&worker) && d.text().contains(what))
        };
        let raw = std::fs::read_to_string(env.session_dir(&id).join(format!("raw/{worker}.log")))
            .unwrap_or_default();
        // Gemini's own policy (the static layer we give it) denies before its hooks run.
        assert!(
            refused("rm -rf")
                || (cli == "gemini" && raw.contains("orchestrate sandbox: rm -rf is blocked")),
            "{worker}: the hook asked and was refused: {decisions:#?}\n{raw}"
        );
        assert!(
            !raw.contains("Policy file error"),
            "{worker}: its policy was refused:\n{raw}"
        );
        // Gemini refuses a path outside its own workspace before its hooks run.
        assert!(
            refused(OUTSIDE) || (cli == "gemini" && raw.contains("Path not in workspace")),
            "{worker}: the write outside was refused: {decisions:#?}\n{raw}"
        );
    }
}

fn a_push_waits_for_approval_and_runs_only_when_approved(env: &Env) {
    let remote = env.workspace.with_file_name("remote.git");
    git(
        env.target.parent().unwrap(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(
        &env.target,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let out = env.run(
        &plan(env, &["claude"]),
        &[],
        &[("ORCHESTRATE_SIM_SCENARIO", "push")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let approvals = || {
        let out = env.cmd(&["approvals", &id, "--json"]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    let mut first = serde_json::Value::Null;
    wait_for("an approval for the push", LIMIT, || {
        first = approvals()[0].clone();
        !first.is_null()
    });
    assert_eq!(first["worker"], "claude-claude");
    assert!(
        first["what"].as_str().unwrap().contains("git push"),
        "{first}"
    );
    wait_for("the worker to wait", LIMIT, || {
        env.status(&id)["workers"][0]["state"] == "waiting"
    });
    assert!(
        git(&remote, &["branch", "--list"]).is_empty(),
        "nothing pushed yet"
    );
    let approval = first["id"].as_str().unwrap().to_string();
    let out = env.cmd(&["approve", &id, &approval]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the session to finish", LIMIT, || {
        env.status(&id)["state"] == "done"
    });
    assert!(
        git(&remote, &["branch", "--list"]).contains(&format!("orchestrate/{id}/claude")),
        "the approved push ran"
    );

    // Denied: nothing is pushed and the agent is told why.
    let out = env.run(
        &plan(env, &["claude"]),
        &[],
        &[("ORCHESTRATE_SIM_SCENARIO", "push")],
    );
    let id = session_id(&out);
    let mut pending = serde_json::Value::Null;
    wait_for("the second approval", LIMIT, || {
        pending = approvals_of(env, &id)[0].clone();
        !pending.is_null()
    });
    let out = env
        .cmd(&[
            "deny",
            &id,
            pending["id"].as_str().unwrap(),
            "--reason",
            "not today",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the second session to finish", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    assert!(
        !git(&remote, &["branch", "--list"]).contains(&format!("orchestrate/{id}/claude")),
        "the denied push did not run"
    );
    let raw = std::fs::read_to_string(env.session_dir(&id).join("raw/claude-claude.log")).unwrap();
    assert!(raw.contains("not today"), "the agent was told the reason");
}

fn approvals_of(env: &Env, id: &str) -> serde_json::Value {
    let out = env.cmd(&["approvals", id, "--json"]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

#[test]
fn a_forbidden_command_that_slips_past_the_hook_stops_its_worker() {
    let env = Env::new();
    // An agent with no hook at all: it reports a command the policy blocks as running.
    let line = r#"{"type":"progress","payload":{"kind":"command","item_id":"i1","command":"rm -rf victim","text":"$ rm -rf victim"}}"#;
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        format!(
            "[agents.rogue]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {:?}]\n",
            format!("echo '{line}'; sleep 30")
        ),
    )
    .unwrap();
    let plan = env.plan("[[tasks]]\nid = \"r\"\nagent = \"rogue\"\nprompt = \"p\"\n");
    let out = env.run(&plan, &["--retries", "0", "--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let id = session_id(&out);
    let breach = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
        .into_iter()
        .find(|e| e.phase() == Some("sandbox_breach"))
        .expect("the breach is journaled");
    assert!(breach.text().contains("rm -rf"), "{}", breach.text());
    let worker = &env.status(&id)["workers"][0];
    assert_eq!(
        worker["signal"], 9,
        "killed, not left to finish its sleep: {worker}"
    );
    assert!(
        text(&out).contains("the sandbox's rule was broken"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_open_approval_survives_a_coordinator_crash_and_answering_it_after_resume_works() {
    let env = Env::new();
    let remote = env.workspace.with_file_name("remote.git");
    git(
        env.target.parent().unwrap(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(
        &env.target,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let push = [("ORCHESTRATE_SIM_SCENARIO", "push")];
    let out = env.run(&plan(&env, &["claude"]), &[], &push);
    let id = session_id(&out);
    wait_for("approval a1", LIMIT, || {
        approvals_of(&env, &id)[0]["id"] == "a1"
    });
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    let mut resume = env.cmd(&["resume", &id]);
    resume.env("ORCHESTRATE_SIM_SCENARIO", "push");
    assert!(resume.output().unwrap().status.success());
    // Still listed, and the agent (its task run again) waits on it once more.
    wait_for("a1 waited on again", LIMIT, || {
        let open = approvals_of(&env, &id);
        open.as_array().is_some_and(|a| a.len() == 1)
            && open[0]["id"] == "a1"
            && open[0]["waiting"] == true
    });
    let out = env.cmd(&["approve", &id, "a1"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the session to finish", LIMIT, || {
        env.status(&id)["state"] == "done"
    });
    assert!(
        git(&remote, &["branch", "--list"]).contains(&format!("orchestrate/{id}/claude")),
        "the push approved after the restart ran"
    );
}

#[test]
fn an_unanswered_approval_is_a_deny_after_its_timeout() {
    let env = Env::new();
    let remote = env.workspace.with_file_name("remote.git");
    git(
        env.target.parent().unwrap(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(
        &env.target,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        "[sandbox]\napproval_timeout_secs = 1\n",
    )
    .unwrap();
    let out = env.run(
        &plan(&env, &["claude"]),
        &["--no-dashboard"],
        &[("ORCHESTRATE_SIM_SCENARIO", "push")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let answered = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
        .into_iter()
        .find(|e| e.phase() == Some("approval_answered"))
        .expect("the approval was answered");
    assert_eq!(answered.str_field("action"), Some("denied"));
    assert_eq!(answered.str_field("by"), Some("timeout"));
    assert!(
        answered.text().contains("no answer within 1s"),
        "{}",
        answered.text()
    );
    assert!(
        !git(&remote, &["branch", "--list"]).contains("orchestrate/"),
        "nothing was pushed"
    );
}
