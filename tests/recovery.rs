//! Recovery through the real binary: a task whose first launch fails with a known error is
//! launched again with the fix and completes, and the recovery events say why; a failure
//! only the operator can fix holds the task with the fix, and nothing retries in a loop.
//! With the simulated CLIs, and with the real ones against the stub model.

mod common;

use std::time::Duration;

use common::{Env, journal, session_id, text, wait_for};

const LIMIT: Duration = Duration::from_secs(90);

/// A session of one task run by `agent`, with `config` added to orchestrate.toml; `follow`
/// waits for its end.
fn session(
    env: &Env,
    agent: &str,
    config: &str,
    follow: bool,
    extra_env: &[(&str, &str)],
) -> String {
    add_local_config(env, config);
    let plan = one_task(env, agent);
    let args: &[&str] = if follow { &["--no-dashboard"] } else { &[] };
    let out = env.run(&plan, args, extra_env);
    let id = session_id(&out);
    assert!(
        env.status(&id)["state"] != "running" || out.status.success(),
        "{}",
        text(&out)
    );
    id
}

/// A plan of one task, `t`, for `agent`.
fn one_task(env: &Env, agent: &str) -> std::path::PathBuf {
    env.plan(&format!(
        "[[tasks]]\nid = \"t\"\nagent = \"{agent}\"\nprompt = \"add the endpoint\"\n"
    ))
}

/// Adds `text` to the configuration beside the workspace (read after the user's).
fn add_local_config(env: &Env, text: &str) {
    append(&env.workspace.with_file_name("orchestrate.toml"), text);
}

/// Adds `text` to the user's configuration (where `Env::real` declares the sandbox to Claude).
fn add_user_config(env: &Env, text: &str) {
    append(&env.home.join(".config/orchestrate/orchestrate.toml"), text);
}

fn append(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut config = std::fs::read_to_string(path).unwrap_or_default();
    config.push_str(text);
    std::fs::write(path, config).unwrap();
}

fn orchestrator(env: &Env, id: &str) -> Vec<orchestrate::event::AgentEvent> {
    journal(&env.session_dir(id).join("orchestrator.jsonl"))
}

fn spawned_argvs(env: &Env, id: &str, worker: &str) -> Vec<String> {
    journal(&env.session_dir(id).join(format!("events/{worker}.jsonl")))
        .iter()
        .filter(|e| e.phase() == Some("spawned"))
        .map(|e| e.payload["argv"].to_string())
        .collect()
}

/// The first launch failed on `flag`; the second, without it, finished the task.
fn relaunched_without(env: &Env, id: &str, worker: &str, rule: &str, flag: &str) {
    let events = orchestrator(env, id);
    let relaunch = events
        .iter()
        .find(|e| e.phase() == Some("recovery_relaunch"))
        .unwrap_or_else(|| {
            panic!(
                "no relaunch in {:#?}",
                events.iter().map(|e| e.text()).collect::<Vec<_>>()
            )
        });
    assert_eq!(relaunch.str_field("rule"), Some(rule));
    assert_eq!(relaunch.payload["change"]["remove_args"][0], flag);
    assert!(relaunch.payload["argv_before"].to_string().contains(flag));
    let argvs = spawned_argvs(env, id, worker);
    assert_eq!(argvs.len(), 2, "{argvs:#?}");
    assert!(
        argvs[0].contains(flag) && !argvs[1].contains(flag),
        "{argvs:#?}"
    );
    assert_eq!(env.status(id)["tasks"][0]["state"], "succeeded");
    // A recovery relaunch is not a retry.
    assert_eq!(env.status(id)["tasks"][0]["retries"], 0);
}

#[test]
fn a_profile_with_a_removed_codex_flag_is_relaunched_without_it() {
    let env = Env::new();
    let id = session(
        &env,
        "codex",
        "[agents.codex]\nargs = [\"--full-auto\"]\n",
        true,
        &[],
    );
    relaunched_without(
        &env,
        &id,
        "codex-t",
        "codex-removed-argument",
        "--full-auto",
    );
}

#[test]
fn a_profile_with_gemini_yolo_beside_approval_mode_is_relaunched_without_it() {
    let env = Env::new();
    let id = session(
        &env,
        "gemini",
        "[agents.gemini]\nargs = [\"--yolo\"]\n",
        true,
        &[],
    );
    relaunched_without(
        &env,
        &id,
        "gemini-t",
        "gemini-yolo-and-approval-mode",
        "--yolo",
    );
}

#[test]
fn a_login_failure_holds_the_task_with_the_command_that_fixes_it_and_never_loops() {
    let env = Env::new();
    let id = session(
        &env,
        "claude",
        "",
        false,
        &[("ORCHESTRATE_SIM_SCENARIO", "api-401")],
    );
    let escalated = |env: &Env| {
        orchestrator(env, &id)
            .into_iter()
            .filter(|e| e.phase() == Some("recovery_escalated"))
            .collect::<Vec<_>>()
    };
    wait_for("the escalation", LIMIT, || !escalated(&env).is_empty());
    let e = &escalated(&env)[0];
    assert_eq!(e.str_field("rule"), Some("claude-not-logged-in"));
    assert!(
        e.str_field("fix").unwrap().contains("claude /login"),
        "{e:?}"
    );
    let status = env.status(&id);
    assert_eq!(status["tasks"][0]["state"], "escalated", "{status:#}");
    let shown = text(&env.cmd(&["status", &id]).output().unwrap());
    assert!(
        shown.contains("! task t needs you: run `claude /login`")
            && shown.contains(&format!(
                "orchestrate control {id} restart --worker claude-t"
            )),
        "{shown}"
    );
    // The list of sessions says the running session waits for the operator.
    let sessions = text(&env.cmd(&["ls"]).output().unwrap());
    let row = sessions
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_default();
    assert!(row.contains("needs you"), "{sessions}");
    let listed = text(&env.cmd(&["recoveries", &id]).output().unwrap());
    assert!(
        listed.contains("escalated") && listed.contains("fix: run `claude /login`"),
        "{listed}"
    );
    let json = env.cmd(&["recoveries", &id, "--json"]).output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.last().unwrap()["payload"]["phase"],
        "recovery_escalated"
    );
    // And in the database.
    let store =
        orchestrate::session::store::Store::open_read_only(&env.workspace.join("orchestrate.db"))
            .unwrap();
    let rows = store.recoveries(&id).unwrap();
    assert!(
        rows.iter()
            .any(|(task, phase, rule, _)| task.as_deref() == Some("t")
                && phase == "recovery_escalated"
                && rule.as_deref() == Some("claude-not-logged-in")),
        "{rows:?}"
    );
    // The session waits for the operator; nothing runs it again by itself.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(spawned_argvs(&env, &id, "claude-t").len(), 1);
    assert_eq!(env.status(&id)["state"], "running");
    // The operator fixed it (here: not) and runs it again: one more launch, escalated again.
    let out = env
        .cmd(&["control", &id, "restart", "--worker", "claude-t"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the second escalation", LIMIT, || {
        escalated(&env).len() == 2
    });
    assert_eq!(spawned_argvs(&env, &id, "claude-t").len(), 2);
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn a_usage_limit_with_no_reset_time_backs_off_then_escalates() {
    let env = Env::new();
    let id = session(
        &env,
        "codex",
        "[recovery]\nbackoff_ms = 100\n\n[agents.codex]\nenv = { ORCHESTRATE_SIM_SCENARIO = \"usage-limit\" }\n",
        false,
        &[],
    );
    wait_for("the escalation", LIMIT, || {
        orchestrator(&env, &id)
            .iter()
            .any(|e| e.phase() == Some("recovery_escalated"))
    });
    let events = orchestrator(&env, &id);
    let waits: Vec<_> = events
        .iter()
        .filter(|e| e.phase() == Some("recovery_wait"))
        .collect();
    assert_eq!(waits.len(), 2, "the rule's budget");
    assert!(
        waits[0].text().contains("no reset time given"),
        "{}",
        waits[0].text()
    );
    let escalated = events
        .iter()
        .find(|e| e.phase() == Some("recovery_escalated"))
        .unwrap();
    assert!(
        escalated
            .str_field("fix")
            .unwrap()
            .contains("usage-limit already acted 2")
    );
    assert_eq!(spawned_argvs(&env, &id, "codex-t").len(), 3);
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

/// A usage limit that lifts 3 s after it is first hit: `agent` is held until the reset the
/// CLI names, then continues its own conversation and finishes.
fn waits_out_its_usage_limit_and_continues_its_conversation(env: Env, agent: &str) {
    let worker = format!("{agent}-t");
    add_user_config(
        &env,
        &format!(
            "\n[review]\nenabled = false\n\n[agents.{agent}]\nenv = {{ ORCHESTRATE_SIM_SCENARIO = \"usage-limit-3s\" }}\n"
        ),
    );
    let plan = one_task(&env, agent);
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    let id = session_id(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events = orchestrator(&env, &id);
    let wait = events
        .iter()
        .find(|e| e.phase() == Some("recovery_wait"))
        .unwrap_or_else(|| panic!("{}", text(&out)));
    assert_eq!(wait.str_field("rule"), Some("usage-limit"));
    let until = wait.i64_field("until_ms").unwrap();
    let relaunched = events
        .iter()
        .filter(|e| e.phase() == Some("task_started"))
        .nth(1)
        .unwrap();
    assert!(
        relaunched.timestamp.millis() >= until,
        "waited until the reset"
    );
    // The second launch continued the agent's own conversation.
    assert!(
        relaunched.str_field("resumed_conversation").is_some(),
        "{relaunched:?}"
    );
    let argvs = spawned_argvs(&env, &id, &worker);
    assert!(argvs[1].contains("resume"), "{argvs:#?}");
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
}

#[test]
fn a_real_codex_waits_out_its_usage_limit_and_continues_its_conversation() {
    let Some(clis) = common::require_agent_clis("a_real_codex_waits_out_its_usage_limit") else {
        return;
    };
    // Codex names the minute the limit lifts in.
    waits_out_its_usage_limit_and_continues_its_conversation(Env::real(clis), "codex");
}

#[test]
fn a_claude_waits_out_its_usage_limit_and_continues_its_conversation() {
    // The real claude with an API key retries the stub's 429 itself (the usage-limit message
    // with its reset time comes with a subscription login, which the stub cannot play): the
    // sim prints what the real one prints then.
    waits_out_its_usage_limit_and_continues_its_conversation(Env::new(), "claude");
}

#[test]
fn a_gemini_waits_out_its_usage_limit_and_continues_its_conversation() {
    waits_out_its_usage_limit_and_continues_its_conversation(Env::new(), "gemini");
}

#[test]
fn a_real_codex_profile_with_a_removed_flag_is_relaunched_without_it() {
    let Some(clis) = common::require_agent_clis("a_real_codex_profile_with_a_removed_flag") else {
        return;
    };
    let env = Env::real(clis);
    add_user_config(
        &env,
        "\n[review]\nenabled = false\n\n[agents.codex]\nargs = [\"--full-auto\"]\n",
    );
    let plan = one_task(&env, "codex");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    relaunched_without(
        &env,
        &id,
        "codex-t",
        "codex-removed-argument",
        "--full-auto",
    );
}

/// Claude refuses bypass mode only as root; elsewhere the root cases have nothing to show.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED: Claude refuses bypass mode only as root");
    }
    root
}

/// Replaces the user's configuration (and so `Env::real`'s sandbox declaration) with `text`.
fn set_user_config(env: &Env, text: &str) {
    let dir = env.home.join(".config/orchestrate");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("orchestrate.toml"), text).unwrap();
}

/// A profile carrying the bypass flag itself, which Claude refuses as root on a machine not
/// declared a sandbox (`IS_SANDBOX=0`, which also stops the sim's launch declaring one):
/// recovery drops it and the hooks make the safe mode work.
fn claude_as_root_runs_in_the_safe_mode_instead_of_bypass(env: Env) {
    set_user_config(
        &env,
        "[review]\nenabled = false\n\n[agents.claude]\nautonomy = \"edit\"\nargs = [\"--dangerously-skip-permissions\"]\nenv = { IS_SANDBOX = \"0\" }\n",
    );
    let plan = one_task(&env, "claude");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = orchestrator(&env, &id);
    let relaunch = events
        .iter()
        .find(|e| e.phase() == Some("recovery_relaunch"))
        .unwrap_or_else(|| panic!("{}", text(&out)));
    assert_eq!(relaunch.str_field("rule"), Some("claude-bypass-as-root"));
    assert_eq!(relaunch.payload["change"]["safe_mode"], true);
    let argvs = spawned_argvs(&env, &id, "claude-t");
    assert!(
        argvs[0].contains("--dangerously-skip-permissions"),
        "{argvs:#?}"
    );
    assert!(
        !argvs[1].contains("--dangerously-skip-permissions"),
        "{argvs:#?}"
    );
    // Its tools ran: the hook said allow out loud.
    let settings = std::fs::read_to_string(
        env.session_dir(&id)
            .join("state/claude-t/claude-settings.json"),
    )
    .unwrap();
    assert!(settings.contains("--explicit-allow"), "{settings}");
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
}

#[test]
fn a_claude_as_root_runs_in_the_safe_mode_instead_of_bypass() {
    if running_as_root() {
        claude_as_root_runs_in_the_safe_mode_instead_of_bypass(Env::new());
    }
}

#[test]
fn a_real_claude_as_root_runs_in_the_safe_mode_instead_of_bypass() {
    let Some(clis) = common::require_agent_clis("a_real_claude_as_root_runs_in_the_safe_mode")
    else {
        return;
    };
    if running_as_root() {
        claude_as_root_runs_in_the_safe_mode_instead_of_bypass(Env::real(clis));
    }
}

/// With the default autonomy (bypass) as root, preparation picks the safe mode before the
/// first launch: one launch, never the refused flag.
fn claude_as_root_with_the_default_bypass_is_prepared_before_its_launch(env: Env) {
    set_user_config(
        &env,
        "[review]\nenabled = false\n\n[agents.claude]\nenv = { IS_SANDBOX = \"0\" }\n",
    );
    let plan = one_task(&env, "claude");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = orchestrator(&env, &id);
    assert!(
        events.iter().any(|e| e.phase() == Some("recovery_prepare")
            && e.str_field("step") == Some("claude_safe_mode")),
        "{}",
        text(&out)
    );
    let argvs = spawned_argvs(&env, &id, "claude-t");
    assert_eq!(argvs.len(), 1, "{argvs:#?}");
    assert!(
        argvs[0].contains("acceptEdits") && !argvs[0].contains("--dangerously-skip-permissions")
    );
    // The agent's writes and commands happened: the task committed work.
    assert!(
        events.iter().any(|e| e.phase() == Some("task_committed")),
        "{}",
        text(&out)
    );
}

#[test]
fn a_claude_as_root_with_the_default_bypass_is_prepared_before_its_launch() {
    if running_as_root() {
        claude_as_root_with_the_default_bypass_is_prepared_before_its_launch(Env::new());
    }
}

#[test]
fn a_real_claude_as_root_with_the_default_bypass_is_prepared_before_its_launch() {
    let Some(clis) = common::require_agent_clis("a_real_claude_as_root_is_prepared") else {
        return;
    };
    if running_as_root() {
        claude_as_root_with_the_default_bypass_is_prepared_before_its_launch(Env::real(clis));
    }
}

#[test]
fn a_coordinator_crash_keeps_the_pending_wait_and_the_rules_budget() {
    let env = Env::new();
    let id = session(
        &env,
        "codex",
        "[recovery]\nbackoff_ms = 2000\n\n[agents.codex]\nenv = { ORCHESTRATE_SIM_SCENARIO = \"usage-limit\" }\n",
        false,
        &[],
    );
    wait_for("the first wait", LIMIT, || {
        orchestrator(&env, &id)
            .iter()
            .any(|e| e.phase() == Some("recovery_wait"))
    });
    let until = orchestrator(&env, &id)
        .iter()
        .find(|e| e.phase() == Some("recovery_wait"))
        .and_then(|e| e.i64_field("until_ms"))
        .unwrap();
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    assert!(env.cmd(&["resume", &id]).output().unwrap().status.success());
    wait_for("the escalation", LIMIT, || {
        orchestrator(&env, &id)
            .iter()
            .any(|e| e.phase() == Some("recovery_escalated"))
    });
    let events = orchestrator(&env, &id);
    let starts: Vec<_> = events
        .iter()
        .filter(|e| e.phase() == Some("task_started"))
        .collect();
    assert!(
        starts[1].timestamp.millis() >= until,
        "the wait went on after the crash"
    );
    // The budget (2) counted the wait before the crash: one more wait, then the escalation.
    let waits = events
        .iter()
        .filter(|e| e.phase() == Some("recovery_wait"))
        .count();
    assert_eq!(waits, 2);
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn a_failing_api_is_backed_off_and_continued_then_held_past_the_budget() {
    let env = Env::new();
    let id = session(
        &env,
        "codex",
        "[recovery]\nbackoff_ms = 100\n\n[agents.codex]\nenv = { ORCHESTRATE_SIM_SCENARIO = \"api-500\" }\n",
        false,
        &[],
    );
    wait_for("the escalation", LIMIT, || {
        orchestrator(&env, &id)
            .iter()
            .any(|e| e.phase() == Some("recovery_escalated"))
    });
    let events = orchestrator(&env, &id);
    let waits: Vec<_> = events
        .iter()
        .filter(|e| e.phase() == Some("recovery_wait"))
        .collect();
    assert_eq!(waits.len(), 2);
    assert!(
        waits
            .iter()
            .all(|w| w.str_field("rule") == Some("transient-api-error"))
    );
    // The backoff doubles.
    let delay = |e: &orchestrate::event::AgentEvent| {
        e.i64_field("until_ms").unwrap() - e.timestamp.millis()
    };
    assert!(
        delay(waits[1]) > delay(waits[0]),
        "{} then {}",
        delay(waits[0]),
        delay(waits[1])
    );
    // Each relaunch continued codex's own conversation.
    let argvs = spawned_argvs(&env, &id, "codex-t");
    assert_eq!(argvs.len(), 3);
    assert!(
        argvs[1].contains("\"resume\"") && argvs[2].contains("\"resume\""),
        "{argvs:#?}"
    );
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn a_path_outside_gemini_s_workspace_but_inside_the_sandbox_relaunches_it_with_the_directory() {
    let env = Env::new();
    let shared = env.workspace.with_file_name("shared");
    std::fs::create_dir_all(&shared).unwrap();
    // First run: the refusal Gemini reports (as the adapter journals it), then it keeps going;
    // the relaunch finds its marker and finishes.
    let blocker = format!(
        r#"{{"type":"blocker","payload":{{"text":"write_file refused","reason":"path_not_in_workspace","path":"{}/notes.md","message":"Path not in workspace: Attempted path \"{}/notes.md\" resolves outside the allowed workspace directories"}}}}"#,
        shared.display(),
        shared.display()
    );
    let done = r#"{"type":"milestone","payload":{"text":"done","final":true}}"#;
    let script = format!(
        "if [ -f .relaunched ]; then echo '{done}'; else touch .relaunched; echo '{}'; sleep 30; fi",
        blocker.replace('\'', "'\\''")
    );
    let id = session(
        &env,
        "work",
        &format!(
            "[review]\nenabled = false\n\n[sandbox]\nextra_dirs = [{:?}]\n\n[agents.work]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {:?}]\n",
            shared.display().to_string(),
            script
        ),
        true,
        &[],
    );
    let events = orchestrator(&env, &id);
    let relaunch = events
        .iter()
        .find(|e| e.phase() == Some("recovery_relaunch"))
        .unwrap_or_else(|| panic!("{:#?}", events.iter().map(|e| e.text()).collect::<Vec<_>>()));
    assert_eq!(
        relaunch.str_field("rule"),
        Some("gemini-path-outside-workspace")
    );
    assert_eq!(
        relaunch.payload["change"]["include_dirs"][0],
        shared.display().to_string()
    );
    assert_eq!(spawned_argvs(&env, &id, "work-t").len(), 2);
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
    assert_eq!(env.status(&id)["tasks"][0]["retries"], 0);
}

#[test]
fn a_real_gemini_profile_with_yolo_is_relaunched_without_it() {
    let Some(clis) = common::require_agent_clis("a_real_gemini_profile_with_yolo") else {
        return;
    };
    let env = Env::real(clis);
    add_user_config(
        &env,
        "\n[review]\nenabled = false\n\n[agents.gemini]\nargs = [\"--yolo\"]\n",
    );
    let plan = one_task(&env, "gemini");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    relaunched_without(
        &env,
        &id,
        "gemini-t",
        "gemini-yolo-and-approval-mode",
        "--yolo",
    );
}

#[test]
fn gemini_refusing_an_untrusted_folder_is_relaunched_trusting_it() {
    let env = Env::new();
    // A profile that turns the trust off, as an operator's environment might.
    let id = session(
        &env,
        "gemini",
        "[review]\nenabled = false\n\n[agents.gemini]\nenv = { GEMINI_CLI_TRUST_WORKSPACE = \"false\" }\n",
        true,
        &[],
    );
    let events = orchestrator(&env, &id);
    let relaunch = events
        .iter()
        .find(|e| e.phase() == Some("recovery_relaunch"))
        .unwrap_or_else(|| panic!("{:#?}", events.iter().map(|e| e.text()).collect::<Vec<_>>()));
    assert_eq!(relaunch.str_field("rule"), Some("gemini-untrusted-folder"));
    assert_eq!(relaunch.payload["change"]["trust_folder"], true);
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
}

/// A profile with `--max-turns=3`: the run stops at its turn limit, recovery continues the
/// conversation and the task completes.
fn claude_stopped_at_its_turn_limit_continues_its_conversation(env: Env) {
    set_user_config(
        &env,
        "[review]\nenabled = false\n\n[agents.claude]\nenv = { IS_SANDBOX = \"1\" }\nargs = [\"--max-turns=3\"]\n",
    );
    let plan = one_task(&env, "claude");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = orchestrator(&env, &id);
    assert!(
        events.iter().any(|e| e.phase() == Some("recovery_continue")
            && e.str_field("rule") == Some("claude-max-turns")),
        "{}",
        text(&out)
    );
    let argvs = spawned_argvs(&env, &id, "claude-t");
    assert!(
        argvs.len() >= 2 && argvs[1].contains("--resume"),
        "{argvs:#?}"
    );
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
}

#[test]
fn a_claude_stopped_at_its_turn_limit_continues_its_conversation() {
    claude_stopped_at_its_turn_limit_continues_its_conversation(Env::new());
}

#[test]
fn a_real_claude_stopped_at_its_turn_limit_continues_its_conversation() {
    let Some(clis) = common::require_agent_clis("a_real_claude_stopped_at_its_turn_limit") else {
        return;
    };
    claude_stopped_at_its_turn_limit_continues_its_conversation(Env::real(clis));
}

/// A session of one task for the real `cli` against the stub playing `scenario`; returns the
/// env, the session and the coordinator's recovery events once it escalated or finished.
fn real_session_against(
    clis: std::path::PathBuf,
    cli: &str,
    scenario: &str,
) -> (Env, String, Vec<orchestrate::event::AgentEvent>) {
    let env = Env::real(clis);
    add_local_config(
        &env,
        "agent_unreachable_secs = 5\n\n[review]\nenabled = false\n\n[recovery]\nbackoff_ms = 100\n",
    );
    let plan = one_task(&env, cli);
    let out = env.run(&plan, &[], &[("ORCHESTRATE_SIM_SCENARIO", scenario)]);
    let id = session_id(&out);
    wait_for("the escalation", LIMIT, || {
        orchestrator(&env, &id)
            .iter()
            .any(|e| e.phase() == Some("recovery_escalated"))
    });
    let recoveries = orchestrator(&env, &id)
        .into_iter()
        .filter(|e| {
            e.phase()
                .is_some_and(|p| p.starts_with("recovery_") && p != "recovery_prepare")
        })
        .collect();
    (env, id, recoveries)
}

#[test]
fn real_clis_whose_key_is_refused_are_held_with_the_command_that_fixes_it() {
    let Some(clis) = common::require_agent_clis("real_clis_whose_key_is_refused") else {
        return;
    };
    for (cli, rule, fix) in [
        ("claude", "claude-not-logged-in", "claude /login"),
        ("codex", "codex-unauthorized", "codex login"),
        ("gemini", "gemini-auth", "GEMINI_API_KEY"),
    ] {
        let (env, id, recoveries) = real_session_against(clis.clone(), cli, "api-401");
        let phases: Vec<_> = recoveries.iter().filter_map(|e| e.phase()).collect();
        assert_eq!(phases, ["recovery_detected", "recovery_escalated"], "{cli}");
        let escalated = &recoveries[1];
        assert_eq!(escalated.str_field("rule"), Some(rule), "{cli}");
        assert!(
            escalated.str_field("fix").unwrap().contains(fix),
            "{cli}: {escalated:?}"
        );
        if cli == "claude" {
            // Claude retries even a 401: it is stopped at its first retry, not after
            // agent_unreachable_secs of retrying a key that cannot work.
            assert!(
                recoveries[0]
                    .str_field("matched")
                    .unwrap()
                    .contains("its model API refuses it"),
                "{:?}",
                recoveries[0]
            );
        }
        assert_eq!(env.status(&id)["tasks"][0]["state"], "escalated", "{cli}");
        for a in spawned_argvs(&env, &id, &format!("{cli}-t")) {
            eprintln!("  argv {a}");
        }
        for e in journal(&env.session_dir(&id).join(format!("events/{cli}-t.jsonl")))
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    orchestrate::event::EventType::Error | orchestrate::event::EventType::Blocker
                ) || e.phase() == Some("output")
            })
        {
            eprintln!("  ev {:?} {}", e.kind, e.text());
        }
        let _ = env.cmd(&["kill", &id]).output();
    }
}

/// A real CLI whose API keeps failing with 500s: retried by recovery with its backoff, twice,
/// then held for the operator (not failed).
fn a_failing_api_is_retried_then_escalated(cli: &str) {
    let Some(clis) = common::require_agent_clis("a_failing_api_is_retried") else {
        return;
    };
    let (env, id, recoveries) = real_session_against(clis, cli, "api-500");
    let waits = recoveries
        .iter()
        .filter(|e| e.phase() == Some("recovery_wait"))
        .count();
    assert_eq!(waits, 2, "{cli}: the rule's budget");
    assert!(
        recoveries
            .iter()
            .all(|e| e.str_field("rule") == Some("transient-api-error")),
        "{recoveries:#?}"
    );
    assert_eq!(env.status(&id)["tasks"][0]["state"], "escalated");
    let _ = env.cmd(&["kill", &id]).output();
}

#[test]
fn a_real_claude_whose_api_keeps_failing_is_retried_then_escalated() {
    a_failing_api_is_retried_then_escalated("claude");
}

#[test]
fn a_real_gemini_whose_api_keeps_failing_is_retried_then_escalated() {
    a_failing_api_is_retried_then_escalated("gemini");
}

/// A real gemini whose first request hits its quota never saved a conversation: the wait for
/// the quota continues nothing, gemini says it cannot resume, and the task starts over.
#[test]
fn a_real_gemini_that_cannot_resume_after_its_quota_starts_over() {
    let Some(clis) = common::require_agent_clis("a_real_gemini_that_cannot_resume") else {
        return;
    };
    let env = Env::real(clis);
    add_local_config(
        &env,
        "[review]\nenabled = false\n\n[recovery]\nbackoff_ms = 100\n",
    );
    let plan = one_task(&env, "gemini");
    let out = env.run(
        &plan,
        &["--no-dashboard"],
        &[("ORCHESTRATE_SIM_SCENARIO", "usage-limit-3s")],
    );
    let id = session_id(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rules: Vec<_> = orchestrator(&env, &id)
        .iter()
        .filter(|e| e.phase() == Some("recovery_detected"))
        .filter_map(|e| e.str_field("rule").map(str::to_string))
        .collect();
    assert_eq!(rules, ["usage-limit", "conversation-not-found"]);
    let argvs = spawned_argvs(&env, &id, "gemini-t");
    assert_eq!(argvs.len(), 3, "{argvs:#?}");
    assert!(argvs[1].contains("--resume"), "{argvs:#?}");
    assert!(
        !argvs[2].contains("--resume") && argvs[2].contains("add the endpoint"),
        "{argvs:#?}"
    );
    let status = env.status(&id);
    assert_eq!(status["tasks"][0]["state"], "succeeded");
    assert_eq!(status["tasks"][0]["retries"], 0, "recovery is not a retry");
}

/// A real gemini in a folder it does not trust (a profile that says so) exits 55; the run
/// directory is trusted and the task goes on.
#[test]
fn a_real_gemini_refusing_an_untrusted_folder_is_relaunched_trusting_it() {
    let Some(clis) = common::require_agent_clis("a_real_gemini_refusing_an_untrusted_folder")
    else {
        return;
    };
    let env = Env::real(clis);
    add_local_config(&env, "[review]\nenabled = false\n");
    add_user_config(
        &env,
        "\n[agents.gemini]\nenv = { GEMINI_CLI_TRUST_WORKSPACE = \"false\" }\n",
    );
    let plan = one_task(&env, "gemini");
    let out = env.run(&plan, &[], &[]);
    let id = session_id(&out);
    wait_for("the task to end", LIMIT, || {
        matches!(
            env.status(&id)["tasks"][0]["state"].as_str(),
            Some("succeeded" | "escalated" | "failed")
        )
    });
    let events = orchestrator(&env, &id);
    let relaunch = events
        .iter()
        .find(|e| e.phase() == Some("recovery_relaunch"))
        .unwrap_or_else(|| panic!("{:#?}", events.iter().map(|e| e.text()).collect::<Vec<_>>()));
    assert_eq!(relaunch.str_field("rule"), Some("gemini-untrusted-folder"));
    assert_eq!(relaunch.payload["change"]["trust_folder"], true);
    assert_eq!(env.status(&id)["tasks"][0]["state"], "succeeded");
}

#[test]
fn a_headless_run_whose_only_task_is_held_says_so_and_exits_5() {
    let env = Env::new();
    let plan = env.plan(
        "[[tasks]]\nid = \"t\"\nagent = \"claude\"\nprompt = \"add a health endpoint\"\n\n\
         [[tasks]]\nid = \"after\"\nagent = \"codex\"\nprompt = \"document it\"\ndepends_on = [\"t\"]\n",
    );
    let out = env.run(
        &plan,
        &["--no-dashboard"],
        &[("ORCHESTRATE_SIM_SCENARIO", "api-401")],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("claude /login"), "{said}");
    assert!(
        said.contains("nothing runs and a task waits for you"),
        "{said}"
    );
    // The session stays open for the fix.
    let id = session_id(&out);
    let status = env.status(&id);
    assert_eq!(status["coordinator"]["alive"], true, "{status:#}");
    assert_eq!(status["tasks"][0]["state"], "escalated", "{status:#}");
}
