//! Recorded native streams (tests/fixtures/, one per CLI and outcome, covering every row of the
//! mapping tables in the formats doc) replayed through the adapters.

use std::path::Path;

use orchestrate::agents::{AgentKind, LineIssue, NormalizeStats, Normalizer, Problem};
use orchestrate::event::{AgentEvent, EventType};
use orchestrate::timestamp::Timestamp;
use orchestrate::worker::{ExitFacts, WorkerState, derive_state};
use serde_json::json;

use EventType::{Blocker, Error, Finding, Milestone, Progress, Review, Status, Task};

struct Replay {
    events: Vec<AgentEvent>,
    issues: Vec<LineIssue>,
    stats: NormalizeStats,
}

fn replay(fixture: &str, kind: AgentKind, exit: Option<ExitFacts>) -> Replay {
    let bytes = std::fs::read(Path::new("tests/fixtures").join(fixture)).unwrap();
    let mut n = Normalizer::new(kind, "w1", Some("t1"));
    let (mut events, mut issues) = (Vec::new(), Vec::new());
    // Feed in small uneven chunks, as a PTY would deliver them.
    for chunk in bytes.chunks(97) {
        n.push(chunk, Timestamp(1), &mut events, &mut issues);
    }
    n.finish(exit.as_ref(), Timestamp(2), &mut events, &mut issues);
    Replay {
        events,
        issues,
        stats: n.stats().clone(),
    }
}

fn kinds(events: &[AgentEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.kind).collect()
}

fn find<'a>(events: &'a [AgentEvent], kind: EventType, text: &str) -> &'a AgentEvent {
    events
        .iter()
        .find(|e| e.kind == kind && e.text().contains(text))
        .unwrap_or_else(|| panic!("no {kind} event containing {text:?}"))
}

#[test]
fn claude_stream_json_covers_every_mapping_row() {
    let r = replay("claude-stream.jsonl", AgentKind::Claude, None);
    assert_eq!(
        kinds(&r.events),
        vec![
            Status, Error, Status, // init, failed MCP server, [SandboxDebug] line
            Status, Status, Status, Status,
            Status, // status, api_retry, rate limit, compaction, running
            Progress, Progress, Progress, // thinking, text, coalesced deltas
            Task,     // TodoWrite (its acknowledgement is not repeated)
            Progress, Progress, Progress,
            Progress, // Bash call, tool_progress, result, summary
            Task, Progress, Task, Task,    // subagent started, progress, updated, notification
            Finding, // mcp__orch__report_event
            Progress, Blocker, Blocker, Blocker,
            Blocker, // Write denied, question, requires_action, permission_denied
            Progress, Progress, // a failing tool is progress, not a blocker
            // warning, hook error; an assistant message carrying an API `error` is the CLI
            // saying its call failed, and the result that follows says it once
            Error, Error, Blocker,
            Milestone, // a denial only in permission_denials, the result
        ]
    );
    let e = &r.events;
    let init = &e[0];
    assert_eq!(
        init.str_field("session_id"),
        Some("0b1f3c8e-7a41-4d2b-9e55-1c2d3e4f5a6b")
    );
    assert_eq!(init.str_field("model"), Some("claude-sonnet-4-5"));
    assert!(find(e, Error, "MCP server docs").str_field("mcp_server") == Some("docs"));
    assert_eq!(
        find(e, Progress, "Checking the").text(),
        "Checking the middleware order"
    );
    let todo = find(e, Task, "todo");
    assert_eq!(
        todo.payload["todos"],
        json!([{"text": "Read the handler", "status": "in_progress"}, {"text": "Add the limiter", "status": "pending"}])
    );
    assert_eq!(
        find(e, Progress, "Bash: cargo test").str_field("tool"),
        Some("Bash")
    );
    assert_eq!(
        find(e, Progress, "Bash done").payload["output"],
        json!("test result: ok. 12 passed")
    );
    let finding = find(e, Finding, "Login has no rate limit");
    assert_eq!(
        (
            finding.str_field("severity"),
            finding.bool_field("reported")
        ),
        (Some("high"), true)
    );
    assert_eq!(
        find(e, Blocker, "write to /etc/limits.conf").str_field("reason"),
        Some("permission_denied")
    );
    assert_eq!(
        find(e, Blocker, "question").str_field("question"),
        Some("Which limit: 5 or 10 per minute?")
    );
    let failed_tool = find(e, Progress, "Bash failed");
    assert_eq!(failed_tool.payload["ok"], json!(false));
    let done = e.last().unwrap();
    assert!(done.bool_field("final"));
    assert_eq!(done.payload["cost_usd"], json!(0.2143));
    assert_eq!(
        done.payload["usage"],
        json!({"input_tokens": 49200, "output_tokens": 2100, "cached_input_tokens": 45000})
    );
    assert_eq!(done.payload["num_turns"], json!(9));
    // Unknown types are ignored and counted; the text line is kept, and reported.
    assert_eq!(r.stats.unknown_total(), 2);
    assert_eq!(r.stats.unknown.get("system/brand_new_subtype"), Some(&1));
    assert_eq!(
        r.issues,
        vec![LineIssue {
            line_number: 2,
            problem: Problem::NotJson
        }]
    );
    assert_eq!(r.stats.blank, 1);
}

#[test]
fn claude_error_results_are_fatal_whatever_the_subtype() {
    let r = replay("claude-error.jsonl", AgentKind::Claude, None);
    assert_eq!(kinds(&r.events), vec![Status, Error]);
    let err = &r.events[1];
    assert!(err.bool_field("fatal"));
    assert_eq!(err.str_field("subtype"), Some("error_max_turns"));
    assert_eq!(err.str_field("terminal_reason"), Some("max_turns"));
    assert_eq!(err.text(), "Reached maximum number of turns (2)");

    // is_error with subtype "success" (an API error that exits 0) is still an error.
    let r = replay("claude-json-object.json", AgentKind::Claude, None);
    assert_eq!(kinds(&r.events), vec![Error]);
    assert_eq!(r.events[0].text(), "API Error: Rate limit reached");
    let mut with_exit = r.events.clone();
    with_exit.push(exit_event(0));
    assert_eq!(derive_state(&with_exit), WorkerState::Failed);
}

#[test]
fn claude_json_array_output_is_read_message_by_message() {
    let r = replay("claude-json-array.json", AgentKind::Claude, None);
    assert_eq!(kinds(&r.events), vec![Status, Progress, Milestone]);
    assert_eq!(
        r.events[2].payload["cost_usd"],
        json!(0.003),
        "old CLIs call it cost_usd"
    );
}

#[test]
fn codex_json_covers_every_mapping_row() {
    let r = replay("codex-stream.jsonl", AgentKind::Codex, None);
    assert_eq!(
        kinds(&r.events),
        vec![
            Status, Status, Status,   // thread.started, turn.started, a stderr line
            Progress, // reasoning (the empty one is dropped)
            Task,     // todo_list started
            Progress, Progress, // command started, completed (its update is not repeated)
            Task,     // todo_list updated
            Progress, Progress, Progress, Progress,
            Progress, // file_change, web_search x2, other MCP x2
            Review,   // report_event through the orch MCP server
            Task,     // collab_tool_call
            Blocker, Blocker,  // declined, sandbox-refused
            Progress, // an ordinary failed command
            Blocker, Blocker, // request_user_input, "not supported in exec mode" on stderr
            Error,   // warning item
            Status,  // a reconnect: the retrying state, not an error
            Progress, Milestone, // agent_message, turn.completed
        ]
    );
    let e = &r.events;
    assert_eq!(
        e[0].str_field("session_id"),
        Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
    );
    assert_eq!(find(e, Task, "todo 1/2").i64_field("progress"), Some(50));
    assert_eq!(
        find(e, Progress, "(exit 0)").i64_field("exit_code"),
        Some(0)
    );
    assert_eq!(find(e, Progress, "exit 101").payload["ok"], json!(false));
    assert_eq!(
        find(e, Review, "per-process").str_field("verdict"),
        Some("concern")
    );
    assert_eq!(
        find(e, Blocker, "git push").str_field("reason"),
        Some("declined")
    );
    assert_eq!(
        find(e, Blocker, "touch /etc/x").str_field("reason"),
        Some("sandbox")
    );
    let retrying = find(e, Status, "retrying (1/5)");
    assert_eq!(retrying.phase(), Some("retrying"));
    assert!(!find(e, Error, "rerouted").bool_field("fatal"));
    let done = e.last().unwrap();
    assert_eq!(done.text(), "Added a per-user rate limiter to login.");
    assert_eq!(
        done.payload["usage"],
        json!({"input_tokens": 24763, "output_tokens": 122, "cached_input_tokens": 24448})
    );
    assert_eq!(r.stats.unknown.get("thread.brand_new"), Some(&1));
}

#[test]
fn codex_stream_errors_stay_tentative_until_turn_failed_or_the_exit_code() {
    let r = replay(
        "codex-failed.jsonl",
        AgentKind::Codex,
        Some(ExitFacts {
            code: Some(1),
            signal: None,
        }),
    );
    // The stream's error and turn.failed say one failure: one fatal, final error.
    assert_eq!(kinds(&r.events), vec![Status, Status, Error]);
    assert!(r.events[2].bool_field("fatal") && r.events[2].bool_field("final"));

    // A run that recovered from its stream error and exited 0 has no fatal error.
    let ok = replay(
        "codex-stream.jsonl",
        AgentKind::Codex,
        Some(ExitFacts {
            code: Some(0),
            signal: None,
        }),
    );
    assert!(!ok.events.iter().any(|e| e.bool_field("fatal")));
}

#[test]
fn codex_legacy_and_preview_formats_are_still_read() {
    let r = replay("codex-legacy.jsonl", AgentKind::Codex, None);
    assert_eq!(
        kinds(&r.events),
        vec![
            Status, Status, Progress, Progress, Progress, Progress, Progress, Progress, Status,
            Error, Error, Milestone
        ]
    );
    assert_eq!(r.events[0].str_field("model"), Some("gpt-5"));
    assert_eq!(
        find(&r.events, Progress, "command exited 0").payload["output"],
        json!("test result: ok")
    );
    assert_eq!(r.events.last().unwrap().text(), "Done: tests pass.");

    let r = replay("codex-preview.jsonl", AgentKind::Codex, None);
    assert_eq!(
        kinds(&r.events),
        vec![Status, Progress, Progress, Milestone]
    );
    assert_eq!(
        r.events[0].str_field("session_id"),
        Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
    );
    assert_eq!(
        r.events[2].text(),
        "All done.",
        "assistant_message is agent_message"
    );
    assert_eq!(r.stats.unknown_total(), 0);
}

#[test]
fn gemini_stream_json_covers_every_mapping_row() {
    let r = replay("gemini-stream.jsonl", AgentKind::Gemini, None);
    assert_eq!(
        kinds(&r.events),
        vec![
            Status, Status, Progress, // init, user echo, coalesced assistant deltas
            Task,     // write_todos
            Progress, Progress, // read_file and its result
            Task, Task,      // tracker_create_task, invoke_agent
            Milestone, // mcp_orch_report_event
            Progress, Blocker, // policy_violation
            Progress, Blocker, // requires user confirmation
            Progress, Blocker, // path_not_in_workspace (v0.27+ text)
            Progress, Blocker, // path outside the workspace (older text)
            Progress, Progress, // an ordinary tool failure
            Error, Status, Error,     // loop detected, other warning, severity error
            Milestone, // result
        ]
    );
    let e = &r.events;
    assert_eq!(
        e[0].str_field("session_id"),
        Some("c0ffee00-1234-4abc-9def-0123456789ab")
    );
    assert_eq!(e[2].text(), "I'll sketch the design first.");
    assert!(find(e, Milestone, "ADR-7").bool_field("reported"));
    let outside = find(e, Blocker, "Attempted path");
    assert_eq!(outside.str_field("reason"), Some("path_not_in_workspace"));
    assert_eq!(
        outside.str_field("path"),
        Some("/srv/shared/spec.md"),
        "recovery needs the path"
    );
    assert_eq!(
        find(e, Blocker, "Path must be within").str_field("path"),
        Some("/opt/x")
    );
    assert_eq!(
        find(e, Blocker, "requires user confirmation").str_field("reason"),
        Some("policy_violation")
    );
    let done = e.last().unwrap();
    assert!(done.bool_field("final"));
    assert_eq!(
        done.payload["usage"],
        json!({"input_tokens": 1200, "output_tokens": 300, "cached_input_tokens": 400})
    );
    // The source's own timestamps are not the journal's: stamping is ours.
    assert!(
        e.iter()
            .all(|ev| ev.timestamp == Timestamp(1) || ev.timestamp == Timestamp(2))
    );
}

#[test]
fn gemini_fatal_results_and_stderr_errors() {
    let r = replay("gemini-failed.jsonl", AgentKind::Gemini, None);
    assert_eq!(kinds(&r.events), vec![Status, Error, Error]);
    assert!(
        !r.events[1].bool_field("fatal"),
        "a stderr line is not the verdict"
    );
    assert!(r.events[2].bool_field("fatal"));
    assert_eq!(
        r.events[2].str_field("error_type"),
        Some("FatalAuthenticationError")
    );
}

#[test]
fn events_format_passes_through_and_rejects_what_a_worker_may_not_say() {
    let r = replay("events-stream.jsonl", AgentKind::Events, None);
    assert_eq!(kinds(&r.events), vec![Status, Finding, Milestone, Status]);
    assert_eq!(r.events[1].text(), "Unused dependency: left-pad");
    assert_eq!(
        r.events[1].timestamp,
        Timestamp::parse("2026-11-21T18:00:01Z").unwrap()
    );
    assert_eq!(
        &*r.events[0].worker, "w1",
        "identity is ours, not the line's"
    );
    assert_eq!(r.stats.unknown.get("decision"), Some(&1));
    assert_eq!(r.stats.unknown.get("sparkle"), Some(&1));
    assert!(matches!(r.issues[0].problem, Problem::Malformed(_)));
    assert_eq!(r.issues[0].line_number, 6);
}

#[test]
fn chunking_never_changes_the_result() {
    let bytes = std::fs::read("tests/fixtures/claude-stream.jsonl").unwrap();
    let whole = {
        let mut n = Normalizer::new(AgentKind::Claude, "w1", Some("t1"));
        let (mut ev, mut is) = (Vec::new(), Vec::new());
        n.push(&bytes, Timestamp(1), &mut ev, &mut is);
        n.finish(None, Timestamp(1), &mut ev, &mut is);
        ev
    };
    for size in [1, 2, 7, 4096] {
        let mut n = Normalizer::new(AgentKind::Claude, "w1", Some("t1"));
        let (mut ev, mut is) = (Vec::new(), Vec::new());
        for chunk in bytes.chunks(size) {
            n.push(chunk, Timestamp(1), &mut ev, &mut is);
        }
        n.finish(None, Timestamp(1), &mut ev, &mut is);
        assert_eq!(ev, whole, "chunk size {size}");
    }
}

fn exit_event(code: i64) -> AgentEvent {
    AgentEvent {
        kind: Status,
        agent: "claude".into(),
        worker: "w1".into(),
        task: None,
        seq: 99,
        timestamp: Timestamp(3),
        payload: json!({"phase": "exited", "exit_code": code})
            .as_object()
            .unwrap()
            .clone()
            .into(),
    }
}
