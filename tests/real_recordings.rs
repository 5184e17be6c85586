//! The adapters on what the pinned real CLIs printed in a PTY, byte for byte
//! (`tests/fixtures/real/`, recorded by `scripts/record-real-fixtures` through orchestrate's own
//! argv and PTY path against the stub model). Each case is one of the real-CLI report's
//! findings: what a worker's journal must say when the real CLI does that.

use std::path::Path;

use orchestrate::agents::{AgentKind, Normalizer};
use orchestrate::event::{AgentEvent, EventType};
use orchestrate::timestamp::Timestamp;
use orchestrate::worker::{ExitFacts, WorkerState, WorkerStatus};

use EventType::{Blocker, Error, Milestone, Progress, Status};

/// The events of recording `name` (`<cli>-<case>`), concluded with its recorded exit code.
fn replay(name: &str) -> Vec<AgentEvent> {
    let dir = Path::new("tests/fixtures/real");
    let kind: AgentKind = name.split('-').next().unwrap().parse().unwrap();
    let bytes = std::fs::read(dir.join(format!("{name}.pty"))).unwrap();
    let exit = std::fs::read_to_string(dir.join(format!("{name}.exit")))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .map(|code| ExitFacts {
            code: Some(code),
            signal: None,
        });
    let mut n = Normalizer::new(kind, name, Some("t"));
    let (mut events, mut issues) = (Vec::new(), Vec::new());
    for chunk in bytes.chunks(512) {
        n.push(chunk, Timestamp(1), &mut events, &mut issues);
    }
    n.finish(exit.as_ref(), Timestamp(2), &mut events, &mut issues);
    assert_eq!(
        n.stats().unknown_total(),
        0,
        "{name}: {:?}",
        n.stats().unknown
    );
    events
}

fn of(events: &[AgentEvent], kind: EventType) -> Vec<&AgentEvent> {
    events.iter().filter(|e| e.kind == kind).collect()
}

fn state(events: &[AgentEvent]) -> WorkerState {
    let mut status = WorkerStatus::default();
    events.iter().for_each(|e| status.observe(e));
    status.state()
}

#[test]
fn successful_runs_of_every_cli_end_done_with_usage_and_no_error() {
    for name in [
        "claude-success",
        "claude-flaky",
        "codex-success",
        "codex-edit",
        "gemini-success",
    ] {
        let events = replay(name);
        assert!(
            of(&events, Error).is_empty(),
            "{name}: {:?}",
            of(&events, Error)
        );
        let done = of(&events, Milestone);
        let last = done
            .last()
            .unwrap_or_else(|| panic!("{name}: no milestone"));
        assert!(last.bool_field("final"), "{name}");
        assert!(
            last.payload["usage"]["input_tokens"].as_u64() > Some(0),
            "{name}: {:?}",
            last.payload
        );
        assert!(
            events
                .iter()
                .any(|e| e.phase() == Some("init") && e.str_field("session_id").is_some()),
            "{name}: no conversation id to resume"
        );
    }
}

#[test]
fn progress_reads_well_from_tool_calls_alone() {
    // In -p mode none of the pinned CLIs offers a todo tool: activity comes from tool calls.
    for (name, calls) in [
        (
            "claude-success",
            ["Bash: ls -la", "Write: ", "Edit: ", "Bash: wc -l"],
        ),
        (
            "codex-success",
            [
                "$ /bin/bash -lc 'ls -la'",
                "files: add ",
                "files: update ",
                "$ /bin/bash -lc 'wc -l",
            ],
        ),
        (
            "gemini-success",
            [
                "run_shell_command: ls -la",
                "write_file: ",
                "replace: ",
                "run_shell_command: wc -l",
            ],
        ),
    ] {
        let events = replay(name);
        assert!(of(&events, EventType::Task).is_empty(), "{name}");
        let texts: Vec<&str> = of(&events, Progress).iter().map(|e| e.text()).collect();
        for call in calls {
            assert!(
                texts.iter().any(|t| t.starts_with(call)),
                "{name}: no progress starting {call:?} in {texts:#?}"
            );
        }
    }
}

#[test]
fn claude_one_denial_is_one_blocker() {
    // Plan mode denies the Write: system/permission_denied, then the rejected tool result,
    // then result.permission_denials all name it.
    let events = replay("claude-readonly");
    let blockers = of(&events, Blocker);
    assert_eq!(blockers.len(), 1, "{blockers:#?}");
    assert_eq!(blockers[0].str_field("tool"), Some("Write"));
    assert!(
        !of(&events, Progress)
            .iter()
            .any(|e| e.text() == "Write failed")
    );
    // acceptEdits refuses `git push` with "This command requires approval".
    let events = replay("claude-edit");
    let blockers = of(&events, Blocker);
    assert_eq!(blockers.len(), 1, "{blockers:#?}");
    assert_eq!(blockers[0].str_field("tool"), Some("Bash"));
    assert_eq!(
        blockers[0].str_field("message"),
        Some("This command requires approval")
    );
}

#[test]
fn claude_api_retries_are_one_retrying_state_and_one_error() {
    let events = replay("claude-api-529");
    let retries: Vec<&AgentEvent> = events
        .iter()
        .filter(|e| e.phase() == Some("retrying"))
        .collect();
    assert_eq!(retries.len(), 10);
    assert_eq!(retries[2].text(), "retrying (3/10): HTTP 529 overloaded");
    let before_the_end = &events[..events.len() - 1];
    assert_eq!(state(before_the_end), WorkerState::Retrying);
    let errors = of(&events, Error);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].bool_field("fatal"));
    assert!(
        errors[0].text().starts_with("API Error: 529 Overloaded"),
        "{}",
        errors[0].text()
    );
    assert_eq!(errors[0].payload["http_status"], 529);
}

#[test]
fn codex_refusals_on_stderr_are_blockers() {
    // Under --sandbox read-only the patch is refused; the JSON stream says nothing of it.
    let events = replay("codex-readonly");
    let blockers = of(&events, Blocker);
    assert!(!blockers.is_empty());
    assert_eq!(blockers[0].str_field("reason"), Some("sandbox"));
    assert!(
        blockers[0]
            .text()
            .contains("writing is blocked by read-only sandbox"),
        "{}",
        blockers[0].text()
    );
    assert!(of(&events, Error).is_empty(), "{:#?}", of(&events, Error));
}

#[test]
fn codex_reports_each_file_change_once() {
    let events = replay("codex-edit");
    let changes: Vec<&str> = of(&events, Progress)
        .iter()
        .filter(|e| e.text().starts_with("files:"))
        .map(|e| e.text())
        .collect();
    assert_eq!(changes.len(), 2, "{changes:#?}");
}

#[test]
fn codex_reconnects_are_the_retrying_state_and_turn_failed_is_final() {
    let events = replay("codex-api-500");
    let retries = events
        .iter()
        .filter(|e| e.phase() == Some("retrying"))
        .count();
    assert_eq!(retries, 5);
    let errors = of(&events, Error);
    assert_eq!(errors.len(), 1, "one failure, one error: {errors:#?}");
    assert!(errors[0].bool_field("fatal") && errors[0].bool_field("final"));
    assert_ne!(
        state(&events),
        WorkerState::Retrying,
        "the retries ended in failure"
    );
}

#[test]
fn gemini_warnings_and_echoes_on_stderr_stay_log_lines() {
    for name in ["gemini-success", "gemini-outside", "gemini-edit"] {
        let events = replay(name);
        assert!(
            of(&events, Error).is_empty(),
            "{name}: {:#?}",
            of(&events, Error)
        );
        assert!(
            events[0].kind == Status && events[0].text().starts_with("Warning:"),
            "{name}: the terminal warning comes first: {:?}",
            events[0]
        );
    }
}

#[test]
fn gemini_tools_its_mode_does_not_offer_and_paths_outside_are_blockers() {
    // auto_edit offers no run_shell_command: the call is refused with tool_not_registered.
    let events = replay("gemini-edit");
    let blockers = of(&events, Blocker);
    assert!(!blockers.is_empty());
    assert!(
        blockers
            .iter()
            .all(|b| b.str_field("reason") == Some("tool_not_offered")),
        "{blockers:#?}"
    );
    assert!(
        !of(&events, Progress)
            .iter()
            .any(|e| e.text().contains("not found"))
    );
    // Read-only runs in `default` mode: neither the shell nor the write tools are offered.
    let events = replay("gemini-readonly");
    let refused: Vec<&str> = of(&events, Blocker)
        .iter()
        .filter(|b| b.str_field("reason") == Some("tool_not_offered"))
        .filter_map(|b| b.str_field("tool"))
        .collect();
    assert_eq!(
        refused,
        [
            "run_shell_command",
            "write_file",
            "replace",
            "run_shell_command"
        ]
    );
    let events = replay("gemini-outside");
    let outside = of(&events, Blocker);
    assert_eq!(outside.len(), 1, "{outside:#?}");
    assert_eq!(
        outside[0].str_field("reason"),
        Some("path_not_in_workspace")
    );
    assert_eq!(outside[0].str_field("path"), Some("/etc/hostname"));
}

#[test]
fn gemini_failures_name_the_http_status_of_the_exit_code() {
    for (name, status, code) in [("gemini-fail", 400, 144), ("gemini-usage", 429, 173)] {
        let events = replay(name);
        let errors = of(&events, Error);
        assert_eq!(
            errors.len(),
            1,
            "{name}: one failure, one error: {errors:#?}"
        );
        let text = errors[0].text();
        assert!(
            text.starts_with(&format!(
                "the Gemini API answered HTTP {status} (exit code {code})"
            )),
            "{name}: {text}"
        );
        assert!(errors[0].bool_field("fatal") && errors[0].bool_field("final"));
    }
}

#[test]
fn gemini_retries_on_stderr_are_the_retrying_state() {
    // 429s are retried with nothing on stdout; stderr says so, and that is the state.
    let events = replay("gemini-api-429");
    let retries: Vec<&AgentEvent> = events
        .iter()
        .filter(|e| e.phase() == Some("retrying"))
        .collect();
    assert_eq!(retries.len(), 9);
    assert!(
        retries[0]
            .text()
            .starts_with("retrying (1/10): Resource has been exhausted")
    );
    let errors = of(&events, Error);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].text().contains("HTTP 429"),
        "{}",
        errors[0].text()
    );
}

#[test]
fn gemini_json_output_is_one_document() {
    let bytes = std::fs::read("tests/fixtures/real/gemini-json.out").unwrap();
    let mut n = Normalizer::new(AgentKind::Gemini, "g", None);
    let (mut events, mut issues) = (Vec::new(), Vec::new());
    n.push(&bytes, Timestamp(1), &mut events, &mut issues);
    n.finish(None, Timestamp(2), &mut events, &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    let kinds: Vec<EventType> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Status, Progress, Milestone]);
    assert!(events[0].str_field("session_id").is_some());
    assert!(events[2].bool_field("final"));
    assert!(events[2].payload["usage"]["input_tokens"].as_u64() > Some(1000));
}

#[test]
fn usage_limits_fail_with_the_clis_own_words() {
    for (name, words) in [
        ("claude-usage", "You have reached your usage limit"),
        ("codex-usage", "hit your usage limit"),
        ("gemini-usage", "exhausted your daily quota"),
    ] {
        let events = replay(name);
        let fatal: Vec<&AgentEvent> = of(&events, Error)
            .into_iter()
            .filter(|e| e.bool_field("fatal"))
            .collect();
        assert_eq!(fatal.len(), 1, "{name}: {fatal:#?}");
        assert!(
            fatal[0].text().contains(words),
            "{name}: {}",
            fatal[0].text()
        );
    }
}
