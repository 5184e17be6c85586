//! Peer review through the real binary: a worker reaches a milestone, the other agents (here
//! the simulated CLIs, told their verdicts) review it read-only, and the decision policy's
//! action reaches the reviewed worker's processes. One test per rule.

mod common;

use std::time::Duration;

use common::{Env, journal, session_id, text, wait_for};
use orchestrate::worker::process::group_members;

const LIMIT: Duration = Duration::from_secs(60);

/// A worker that says it reached a milestone, then keeps working (sleeps).
fn reviewed_session(env: &Env, verdicts: &[(&str, &str)]) -> String {
    let line = r#"{"type":"milestone","payload":{"text":"the endpoint answers"}}"#;
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        format!(
            "[review]\nenabled = true\n\n[agents.work]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {:?}, \"sh\"]\nargs = [\"{{prompt}}\"]\n",
            format!("echo '{line}'; sleep 60")
        ),
    )
    .unwrap();
    // A second task waits its turn (one worker at a time): after a blocker it must not start.
    let plan = env.plan(
        "[[tasks]]\nid = \"t\"\nagent = \"work\"\nprompt = \"add the endpoint\"\n\n[[tasks]]\nid = \"u\"\nagent = \"work\"\nprompt = \"later\"\n",
    );
    let out = env.run(&plan, &["--retries", "2", "--parallelism", "1"], verdicts);
    assert!(out.status.success(), "{}", text(&out));
    session_id(&out)
}

fn decision(env: &Env, id: &str) -> orchestrate::event::AgentEvent {
    let path = env.session_dir(id).join("orchestrator.jsonl");
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let events = journal(&path);
        if let Some(found) = events.iter().find(|e| e.phase() == Some("review_decision")) {
            return found.clone();
        }
        if std::time::Instant::now() > deadline {
            let said: Vec<&str> = events.iter().map(|e| e.text()).collect();
            panic!(
                "no review decision; the coordinator said:\n{}",
                said.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn worker_pid(env: &Env, id: &str) -> i32 {
    env.status(id)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "work-t")
        .and_then(|w| w["pid"].as_i64())
        .unwrap() as i32
}

fn review_record(env: &Env, id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(env.session_dir(id).join("reviews/r1.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn rule_1_a_blocker_stops_the_worker_fails_its_task_without_retry_and_pauses_the_session() {
    let env = Env::new();
    let id = reviewed_session(&env, &[("ORCHESTRATE_SIM_VERDICT_GEMINI", "blocker")]);
    let d = decision(&env, &id);
    assert_eq!(
        (d.i64_field("rule"), d.str_field("action")),
        (Some(1), Some("stop_and_escalate"))
    );
    wait_for("the task to fail", LIMIT, || {
        env.status(&id)["tasks"][0]["state"] == "failed"
    });
    let status = env.status(&id);
    assert_eq!(
        status["tasks"][0]["retries"], 0,
        "no retry after a review's blocker"
    );
    assert_eq!(
        status["state"], "paused",
        "the operator decides what comes next"
    );
    assert_eq!(status["tasks"][1]["state"], "pending", "no new task starts");
    let failed = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
        .into_iter()
        .find(|e| e.phase() == Some("task_failed"))
        .unwrap();
    assert_eq!(failed.str_field("reason"), Some("stopped by review"));
    let record = review_record(&env, &id);
    assert_eq!(record["decision"]["action"], "stop_and_escalate");
    assert_eq!(record["responses"].as_array().unwrap().len(), 3);
    let _ = env.cmd(&["kill", &id]).output();
}

#[test]
fn rule_2_two_concerns_pause_the_worker() {
    let env = Env::new();
    let id = reviewed_session(
        &env,
        &[
            ("ORCHESTRATE_SIM_VERDICT_CLAUDE", "concern"),
            ("ORCHESTRATE_SIM_VERDICT_CODEX", "concern"),
        ],
    );
    let d = decision(&env, &id);
    assert_eq!(
        (d.i64_field("rule"), d.str_field("action")),
        (Some(2), Some("pause_and_clarify"))
    );
    let pid = worker_pid(&env, &id);
    wait_for("the worker's processes stopped", LIMIT, || {
        let members = group_members(pid);
        !members.is_empty() && members.iter().all(|m| m.state == 'T')
    });
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn rule_3_one_concern_is_a_warning_and_work_goes_on() {
    let env = Env::new();
    let id = reviewed_session(&env, &[("ORCHESTRATE_SIM_VERDICT_CODEX", "garbage")]);
    let d = decision(&env, &id);
    assert_eq!(
        (d.i64_field("rule"), d.str_field("action")),
        (Some(3), Some("log_warning"))
    );
    let record = review_record(&env, &id);
    let codex = record["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reviewer"] == "codex")
        .unwrap()
        .clone();
    assert_eq!(
        codex["verdict"], "concern",
        "a reviewer with no verdict never approves"
    );
    assert!(
        codex["summary"]
            .as_str()
            .unwrap()
            .starts_with("reviewer gave no verdict")
    );
    let spawns = journal(&env.session_dir(&id).join("events/review-r1-codex.jsonl"))
        .iter()
        .filter(|e| e.phase() == Some("spawned"))
        .count();
    assert_eq!(spawns, 2, "asked once more before counting it a concern");
    assert_eq!(codex["attempts"], 2, "{codex:#}");
    // The database holds the same review, its verdicts and its decision.
    let store =
        orchestrate::session::store::Store::open_read_only(&env.workspace.join("orchestrate.db"))
            .unwrap();
    let reviews = store.reviews(&id).unwrap();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    let decided = reviews[0].decision.as_ref().expect("decided");
    assert_eq!((decided.rule, decided.action.as_str()), (3, "log_warning"));
    assert_eq!(reviews[0].trigger, "milestone");
    let mut verdicts: Vec<(&str, &str)> = reviews[0]
        .verdicts
        .iter()
        .map(|v| (v.reviewer.as_str(), v.verdict.as_str()))
        .collect();
    verdicts.sort();
    assert_eq!(
        verdicts,
        [
            ("claude", "approved"),
            ("codex", "concern"),
            ("gemini", "approved")
        ]
    );
    assert!(reviews[0].verdicts.iter().all(|v| v.duration_ms > 0));
    assert_eq!(store.decision_count(&id).unwrap(), 1);
    let pid = worker_pid(&env, &id);
    assert!(
        group_members(pid).iter().all(|m| m.state != 'T'),
        "still running"
    );
    let listed = env.cmd(&["reviews", &id]).output().unwrap();
    let shown = String::from_utf8_lossy(&listed.stdout);
    assert!(
        shown.starts_with("r1  work-t (milestone: the endpoint answers)  -> log_warning (rule 3"),
        "{shown}"
    );
    assert!(
        shown.contains("codex    concern   reviewer gave no verdict"),
        "{shown}"
    );
    let json = env.cmd(&["reviews", &id, "--json"]).output().unwrap();
    let records: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(records[0]["decision"]["rule"], 3);
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn rule_4_all_approved_continues_and_manual_review_works() {
    let env = Env::new();
    let id = reviewed_session(&env, &[]);
    let d = decision(&env, &id);
    assert_eq!(
        (d.i64_field("rule"), d.str_field("action")),
        (Some(4), Some("continue"))
    );
    let pid = worker_pid(&env, &id);
    assert!(group_members(pid).iter().all(|m| m.state != 'T'));
    // The operator asks for another.
    let out = env.cmd(&["control", &id, "review"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the second review", LIMIT, || {
        env.session_dir(&id).join("reviews/r2.json").is_file()
    });
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn real_codex_and_gemini_review_a_real_claude_read_only() {
    let Some(clis) =
        common::require_agent_clis("real_codex_and_gemini_review_a_real_claude_read_only")
    else {
        return;
    };
    let env = Env::real(clis);
    let config = env.home.join(".config/orchestrate/orchestrate.toml");
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    text_config.push_str("\n[review]\nenabled = true\n");
    std::fs::write(&config, text_config).unwrap();
    let plan =
        env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"add the endpoint\"\n");
    let out = env.run(
        &plan,
        &["--no-dashboard"],
        &[
            ("ORCHESTRATE_SIM_VERDICT_CODEX", "approved"),
            ("ORCHESTRATE_SIM_VERDICT_GEMINI", "concern"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let record = review_record(&env, &id);
    assert_eq!(record["decision"]["action"], "log_warning", "{record:#}");
    let verdict_of = |cli: &str| {
        record["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reviewer"] == cli)
            .map(|r| r["verdict"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        verdict_of("codex").as_deref(),
        Some("approved"),
        "{record:#}"
    );
    assert_eq!(
        verdict_of("gemini").as_deref(),
        Some("concern"),
        "{record:#}"
    );
    // Each in its read-only mode, Codex with its structured-output option.
    for (cli, flag) in [
        ("codex", "read-only"),
        ("codex", "--output-schema"),
        ("gemini", "--approval-mode=default"),
    ] {
        let spawned = journal(
            &env.session_dir(&id)
                .join(format!("events/review-r1-{cli}.jsonl")),
        )
        .into_iter()
        .find(|e| e.phase() == Some("spawned"))
        .unwrap();
        let argv = spawned.payload["argv"].to_string();
        assert!(argv.contains(flag), "{cli}: {argv}");
    }
}

#[test]
fn a_real_claude_reviews_a_real_codex_through_its_structured_output() {
    let Some(clis) = common::require_agent_clis(
        "a_real_claude_reviews_a_real_codex_through_its_structured_output",
    ) else {
        return;
    };
    let env = Env::real(clis);
    let config = env.home.join(".config/orchestrate/orchestrate.toml");
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    text_config.push_str("\n[review]\nenabled = true\n");
    std::fs::write(&config, text_config).unwrap();
    let plan =
        env.plan("[[tasks]]\nid = \"a\"\nagent = \"codex\"\nprompt = \"add the endpoint\"\n");
    let out = env.run(
        &plan,
        &["--no-dashboard"],
        &[
            ("ORCHESTRATE_SIM_VERDICT_CLAUDE", "concern"),
            ("ORCHESTRATE_SIM_VERDICT_GEMINI", "approved"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let record = review_record(&env, &id);
    assert_eq!(record["decision"]["action"], "log_warning", "{record:#}");
    let claude = record["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reviewer"] == "claude")
        .unwrap()
        .clone();
    assert_eq!(claude["verdict"], "concern", "{record:#}");
    assert!(claude["input_tokens"].as_u64().unwrap() > 0, "{claude:#}");
    // The diff reviewers saw: the files codex wrote, new ones included.
    assert!(record["diff"]["files"].as_u64().unwrap() >= 1, "{record:#}");
    let events = journal(&env.session_dir(&id).join("events/review-r1-claude.jsonl"));
    let argv = events
        .iter()
        .find(|e| e.phase() == Some("spawned"))
        .unwrap()
        .payload["argv"]
        .to_string();
    assert!(
        argv.contains("--permission-mode")
            && argv.contains("plan")
            && argv.contains("--json-schema="),
        "{argv}"
    );
    // The verdict came back as the result's structured_output.
    let structured = events
        .iter()
        .find_map(|e| e.payload.get("structured_output"))
        .unwrap_or_else(|| panic!("no structured_output in the reviewer's journal"));
    assert_eq!(structured["verdict"], "concern");
}

/// `[review]` settings and an agent `work` that reports a final milestone and ends.
fn finishing_agent(env: &Env, review: &str) {
    let line = r#"{"type":"milestone","payload":{"text":"done","final":true}}"#;
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        format!(
            "[review]\nenabled = true\n{review}\n\n[agents.work]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {:?}]\n",
            format!("echo '{line}'")
        ),
    )
    .unwrap();
}

#[test]
fn the_gate_holds_a_dependent_until_the_review_decides() {
    let env = Env::new();
    finishing_agent(&env, "");
    let plan = env.plan(
        "[[tasks]]\nid = \"a\"\nagent = \"work\"\nprompt = \"first\"\n\n[[tasks]]\nid = \"b\"\nagent = \"work\"\nprompt = \"then\"\ndepends_on = [\"a\"]\n",
    );
    // Reviewers that take a moment, so an ungated b would start first.
    let out = env.run(
        &plan,
        &["--no-dashboard"],
        &[("ORCHESTRATE_SIM_SPEED", "0.5")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let events = journal(&env.session_dir(&id).join("orchestrator.jsonl"));
    let at = |phase: &str, task: &str| {
        events
            .iter()
            .position(|e| e.phase() == Some(phase) && e.task.as_deref() == Some(task))
            .unwrap_or_else(|| panic!("no {phase} for {task}"))
    };
    assert!(at("review_decision", "a") < at("task_succeeded", "a"));
    assert!(at("task_succeeded", "a") < at("task_started", "b"));
}

#[test]
fn with_one_other_agent_the_orchestrators_checks_take_the_second_seat() {
    let env = Env::new();
    finishing_agent(&env, "checks = [\"test -f marker.txt\"]");
    let plan = env.plan("[[tasks]]\nid = \"a\"\nagent = \"work\"\nprompt = \"first\"\n");
    let out = env.run(&plan, &["--agents", "work,claude", "--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let record = review_record(&env, &id);
    assert_eq!(record["decision"]["action"], "log_warning", "{record:#}");
    let responses = record["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 2, "claude and the checks: {record:#}");
    let checks = responses
        .iter()
        .find(|r| r["reviewer"] == "orchestrator")
        .unwrap();
    assert_eq!(checks["verdict"], "concern");
    assert!(
        checks["summary"]
            .as_str()
            .unwrap()
            .starts_with("`test -f marker.txt` failed"),
        "{checks}"
    );
}

#[test]
fn a_silent_worker_is_reviewed_after_the_idle_time() {
    let env = Env::new();
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        "[review]\nenabled = true\nidle_minutes = 0.02\n\n[agents.work]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", \"echo '{\\\"type\\\":\\\"progress\\\",\\\"payload\\\":{\\\"text\\\":\\\"thinking\\\"}}'; sleep 60\"]\n",
    )
    .unwrap();
    let plan = env.plan("[[tasks]]\nid = \"t\"\nagent = \"work\"\nprompt = \"p\"\n");
    let out = env.run(&plan, &[], &[]);
    let id = session_id(&out);
    let d = decision(&env, &id);
    assert_eq!(d.str_field("action"), Some("continue"));
    let record = review_record(&env, &id);
    assert_eq!(record["trigger"]["kind"], "idle", "{record:#}");
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn a_review_cut_short_by_a_crash_runs_again_after_resume_and_is_never_decided_twice() {
    let env = Env::new();
    // Slow reviewers, so the crash lands while they work.
    let id = reviewed_session(&env, &[("ORCHESTRATE_SIM_SPEED", "1")]);
    let orchestrator = env.session_dir(&id).join("orchestrator.jsonl");
    wait_for("the review to start", LIMIT, || {
        journal(&orchestrator)
            .iter()
            .any(|e| e.phase() == Some("review_requested"))
    });
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    assert!(env.cmd(&["resume", &id]).output().unwrap().status.success());
    wait_for("a review decided after the restart", LIMIT, || {
        journal(&orchestrator)
            .iter()
            .any(|e| e.phase() == Some("review_decision"))
    });
    let events = journal(&orchestrator);
    let decided: Vec<&str> = events
        .iter()
        .filter(|e| e.phase() == Some("review_decision"))
        .filter_map(|e| e.str_field("review"))
        .collect();
    assert!(!decided.contains(&"r1"), "r1 was cut short: {decided:?}");
    assert!(
        events
            .iter()
            .any(|e| e.phase() == Some("review_interrupted") && e.str_field("review") == Some("r1"))
    );
    assert!(!env.session_dir(&id).join("reviews/r1.json").exists());
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn verdicts_journaled_before_a_crash_are_kept_and_their_reviewers_not_asked_again() {
    let env = Env::new();
    let line = r#"{"type":"milestone","payload":{"text":"the endpoint answers"}}"#;
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        format!(
            "[review]\nenabled = true\ntimeout_secs = 3\n\n[agents.work]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {:?}]\n",
            format!("echo '{line}'; sleep 60")
        ),
    )
    .unwrap();
    let plan = env.plan("[[tasks]]\nid = \"t\"\nagent = \"work\"\nprompt = \"p\"\n");
    // Claude and Codex answer at once; Gemini never does.
    let verdicts = [
        ("ORCHESTRATE_SIM_VERDICT_CODEX", "concern"),
        ("ORCHESTRATE_SIM_VERDICT_GEMINI", "hang"),
    ];
    let out = env.run(&plan, &[], &verdicts);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let orchestrator = env.session_dir(&id).join("orchestrator.jsonl");
    wait_for("two verdicts journaled", LIMIT, || {
        journal(&orchestrator)
            .iter()
            .filter(|e| e.phase() == Some("review_verdict"))
            .count()
            == 2
    });
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(&id)["coordinator"]["alive"] == false
    });
    let mut resume = env.cmd(&["resume", &id]);
    for (k, v) in verdicts {
        resume.env(k, v);
    }
    assert!(resume.output().unwrap().status.success());
    wait_for("the review decided after the restart", LIMIT, || {
        env.session_dir(&id).join("reviews/r2.json").exists()
    });
    let text = std::fs::read_to_string(env.session_dir(&id).join("reviews/r2.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Claude's approval and Codex's concern were kept; Gemini timed out again: two concerns.
    assert_eq!(
        record["decision"]["action"], "pause_and_clarify",
        "{record:#}"
    );
    let mut kept: Vec<&str> = record["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kept_from"] == "r1")
        .map(|r| r["reviewer"].as_str().unwrap())
        .collect();
    // Kept in the order the reviewers answered the first time, which they do concurrently.
    kept.sort_unstable();
    assert_eq!(kept, ["claude", "codex"], "{record:#}");
    assert!(
        !env.session_dir(&id)
            .join("events/review-r2-claude.jsonl")
            .exists()
    );
    assert!(
        !env.session_dir(&id)
            .join("events/review-r2-codex.jsonl")
            .exists()
    );
    assert!(
        env.session_dir(&id)
            .join("events/review-r2-gemini.jsonl")
            .exists()
    );
    // The record is written just before the decision is journaled.
    let decisions = || {
        journal(&orchestrator)
            .iter()
            .filter(|e| e.phase() == Some("review_decision"))
            .count()
    };
    wait_for("the decision", LIMIT, || decisions() > 0);
    assert_eq!(decisions(), 1);
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn clarify_sends_the_concerns_to_the_paused_worker_which_runs_again_with_them() {
    let env = Env::new();
    let id = reviewed_session(
        &env,
        &[
            ("ORCHESTRATE_SIM_VERDICT_CLAUDE", "concern"),
            ("ORCHESTRATE_SIM_VERDICT_CODEX", "concern"),
        ],
    );
    assert_eq!(
        decision(&env, &id).str_field("action"),
        Some("pause_and_clarify")
    );
    let out = env
        .cmd(&["control", &id, "clarify", "--worker", "work-t"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("runs again with the reviewers' concerns"),
        "{}",
        text(&out)
    );
    let journal_path = env.session_dir(&id).join("events/work-t.jsonl");
    wait_for("the worker to run again", LIMIT, || {
        journal(&journal_path)
            .iter()
            .filter(|e| e.phase() == Some("spawned"))
            .count()
            == 2
    });
    let orchestrator_path = env.session_dir(&id).join("orchestrator.jsonl");
    wait_for("the task started again", LIMIT, || {
        journal(&orchestrator_path)
            .iter()
            .filter(|e| e.phase() == Some("task_started"))
            .count()
            == 2
    });
    let orchestrator = journal(&orchestrator_path);
    assert!(
        orchestrator
            .iter()
            .any(|e| e.phase() == Some("task_clarify"))
    );
    let starts = orchestrator
        .iter()
        .filter(|e| e.phase() == Some("task_started"))
        .count();
    assert_eq!(starts, 2);
    let relaunch = journal(&journal_path)
        .into_iter()
        .filter(|e| e.phase() == Some("spawned"))
        .nth(1)
        .unwrap();
    let argv = relaunch.payload["argv"].to_string();
    assert!(
        argv.contains("Reviewers of your work raised these concerns")
            && argv.contains("no test for the error path"),
        "{argv}"
    );
    // Not a failure: no retry was used.
    assert_eq!(env.status(&id)["tasks"][0]["retries"], 0);
    let again = env
        .cmd(&["control", &id, "clarify", "--worker", "work-t"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "nothing left to clarify");
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn reviewers_past_the_time_limit_are_stopped_counted_as_concerns_and_not_asked_again() {
    let env = Env::new();
    let line = r#"{"type":"milestone","payload":{"text":"the endpoint answers"}}"#;
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        format!(
            "[review]\nenabled = true\ntimeout_secs = 2\n\n[agents.work]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {:?}]\n",
            format!("echo '{line}'; sleep 60")
        ),
    )
    .unwrap();
    let plan = env.plan("[[tasks]]\nid = \"t\"\nagent = \"work\"\nprompt = \"p\"\n");
    let out = env.run(&plan, &[], &[("ORCHESTRATE_SIM_VERDICT", "hang")]);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    // Two silent reviewers are two concerns.
    assert_eq!(
        decision(&env, &id).str_field("action"),
        Some("pause_and_clarify")
    );
    let record = review_record(&env, &id);
    for response in record["responses"].as_array().unwrap() {
        assert_eq!(response["verdict"], "concern", "{record:#}");
        assert!(
            response["summary"]
                .as_str()
                .unwrap()
                .contains("review.timeout_secs (2s)"),
            "{record:#}"
        );
        let worker = response["worker"].as_str().unwrap();
        let spawns = journal(&env.session_dir(&id).join(format!("events/{worker}.jsonl")))
            .iter()
            .filter(|e| e.phase() == Some("spawned"))
            .count();
        assert_eq!(spawns, 1, "{worker} was asked again");
    }
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}
