//! Workers in real PTYs, driven by the real binary's simulated agents and by plain commands:
//! journals, process-group signals, exit reporting and clean failure.

mod common;

use std::time::Duration;

use common::*;
use orchestrate::agents::AgentKind;
use orchestrate::event::EventType;
use orchestrate::worker::process::{group_alive, group_members};
use orchestrate::worker::{
    ExitFacts, Worker, WorkerError, WorkerState, channel_observer, derive_state,
};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_successful_claude_run_journals_its_events_and_ends_done() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let launch = sim_launch(
        AgentKind::Claude,
        &work,
        "add a health endpoint",
        "success",
        "0",
    );
    let spec = worker_spec(dir.path(), "claude-1", AgentKind::Claude, launch);
    let events_path = spec.events_path.clone();
    let raw_path = spec.raw_path.clone();
    let worker = Worker::spawn(spec, None).unwrap();
    assert_eq!(
        worker.wait(),
        ExitFacts {
            code: Some(0),
            signal: None
        }
    );

    let events = journal(&events_path);
    assert_eq!(phases(&events).first().map(String::as_str), Some("spawned"));
    assert_eq!(phases(&events).last().map(String::as_str), Some("exited"));
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "one journal, one sequence"
    );
    assert!(events.iter().all(|e| &*e.worker == "claude-1"
        && &*e.agent == "claude"
        && e.task.as_deref() == Some("t1")));
    let kinds = types(&events);
    for expected in [EventType::Status, EventType::Progress, EventType::Milestone] {
        assert!(
            kinds.contains(&expected),
            "no {expected} event in {kinds:?}"
        );
    }
    let init = events.iter().find(|e| e.phase() == Some("init")).unwrap();
    assert!(init.str_field("session_id").is_some_and(|s| s.len() == 36));
    // Claude 2.1.330 offers no todo tool in -p mode; neither does the sim that follows it.
    assert!(!kinds.contains(&EventType::Task));
    let done = events
        .iter()
        .find(|e| e.kind == EventType::Milestone)
        .unwrap();
    assert!(done.bool_field("final"));
    assert!(done.payload["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(done.payload["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(derive_state(&events), WorkerState::Done);

    // The agent did real work where it was told to, and the raw bytes are all kept.
    let notes = std::fs::read_dir(work.join("notes")).unwrap().count();
    assert_eq!(notes, 1);
    let raw = std::fs::read_to_string(&raw_path).unwrap();
    assert!(raw.contains("\"type\":\"result\""));
    assert!(
        raw.contains("\r\n"),
        "a PTY turns \\n into \\r\\n; the adapter must cope"
    );
}

#[test]
fn every_cli_simulation_runs_to_done_through_its_adapter() {
    for agent in [AgentKind::Codex, AgentKind::Gemini] {
        let dir = tempfile::tempdir().unwrap();
        let launch = sim_launch(agent, dir.path(), "write the docs", "success", "0");
        let spec = worker_spec(dir.path(), &format!("{agent}-1"), agent, launch);
        let path = spec.events_path.clone();
        let worker = Worker::spawn(spec, None).unwrap();
        assert_eq!(worker.wait().code, Some(0), "{agent}");
        let events = journal(&path);
        assert_eq!(
            derive_state(&events),
            WorkerState::Done,
            "{agent}: {events:#?}"
        );
        assert!(types(&events).contains(&EventType::Milestone), "{agent}");
    }
}

#[test]
fn pause_stops_every_process_of_the_group_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let launch = sim_launch(AgentKind::Codex, dir.path(), "run the tests", "hang", "0");
    let spec = worker_spec(dir.path(), "codex-1", AgentKind::Codex, launch);
    let path = spec.events_path.clone();
    let worker = Worker::spawn(spec, None).unwrap();
    let pgid = worker.pid();
    // The hang scenario runs `sleep` as a child of the agent: a grandchild of ours.
    wait_for("the agent's child process", LIMIT, || {
        group_members(pgid).iter().any(|p| p.name == "sleep")
    });

    worker.pause().unwrap();
    wait_for("every process stopped", LIMIT, || {
        group_members(pgid).iter().all(|p| p.state == 'T')
    });
    let members = group_members(pgid);
    assert!(members.len() >= 2, "{members:?}");
    assert_eq!(derive_state(&journal(&path)), WorkerState::Paused);

    worker.resume().unwrap();
    wait_for("every process running again", LIMIT, || {
        group_members(pgid).iter().all(|p| p.state != 'T')
    });
    assert_eq!(derive_state(&journal(&path)), WorkerState::Running);

    let exit = worker.stop();
    assert_eq!(exit.signal, Some(i64::from(libc::SIGTERM)));
    assert!(!group_alive(pgid), "nothing of the group survives a stop");
    assert_eq!(derive_state(&journal(&path)), WorkerState::Stopped);
}

#[test]
fn stop_escalates_to_kill_and_takes_grandchildren_with_it() {
    let dir = tempfile::tempdir().unwrap();
    // The shell and its children ignore SIGTERM; only SIGKILL ends them.
    let script = "trap '' TERM; sleep 1000 & sleep 1000 & echo ready; wait";
    let launch = command_launch(dir.path(), &["sh", "-c", script]);
    let mut spec = worker_spec(dir.path(), "stubborn", AgentKind::Events, launch);
    spec.stop_grace = Duration::from_millis(300);
    let raw = spec.raw_path.clone();
    let worker = Worker::spawn(spec, None).unwrap();
    let pgid = worker.pid();
    wait_for("both children", LIMIT, || {
        std::fs::read_to_string(&raw).is_ok_and(|r| r.contains("ready"))
            && group_members(pgid)
                .iter()
                .filter(|p| p.name == "sleep")
                .count()
                == 2
    });
    let exit = worker.stop();
    assert_eq!(exit.signal, Some(i64::from(libc::SIGKILL)));
    wait_for("the group to be gone", LIMIT, || !group_alive(pgid));
}

#[test]
fn exit_codes_and_signals_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let launch = command_launch(dir.path(), &["sh", "-c", "exit 3"]);
    let spec = worker_spec(dir.path(), "exit3", AgentKind::Events, launch);
    let path = spec.events_path.clone();
    assert_eq!(
        Worker::spawn(spec, None).unwrap().wait(),
        ExitFacts {
            code: Some(3),
            signal: None
        }
    );
    let events = journal(&path);
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind, last.phase(), last.i64_field("exit_code")),
        (EventType::Error, Some("exited"), Some(3))
    );
    assert_eq!(last.text(), "exited with code 3");
    assert_eq!(derive_state(&events), WorkerState::Failed);

    // The crash scenario dies by SIGABRT in the middle of a line.
    let launch = sim_launch(AgentKind::Claude, dir.path(), "anything", "crash", "0");
    let spec = worker_spec(dir.path(), "crasher", AgentKind::Claude, launch);
    let path = spec.events_path.clone();
    let exit = Worker::spawn(spec, None).unwrap().wait();
    assert_eq!(
        exit,
        ExitFacts {
            code: None,
            signal: Some(i64::from(libc::SIGABRT))
        }
    );
    let events = journal(&path);
    assert_eq!(
        events.last().unwrap().text(),
        "killed by SIGABRT (signal 6)"
    );
    assert!(
        events.iter().any(|e| e.text().contains("half a li")),
        "the torn line is kept as a log line"
    );
    assert_eq!(derive_state(&events), WorkerState::Failed);
}

#[test]
fn the_sims_failure_scenario_is_a_failed_worker_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let launch = sim_launch(AgentKind::Codex, dir.path(), "build", "fail", "0");
    let spec = worker_spec(dir.path(), "codex-f", AgentKind::Codex, launch);
    let path = spec.events_path.clone();
    assert_eq!(Worker::spawn(spec, None).unwrap().wait().code, Some(1));
    let events = journal(&path);
    let fatal = events
        .iter()
        .find(|e| e.kind == EventType::Error && e.bool_field("fatal") && e.phase().is_none())
        .unwrap();
    // Codex's own words for the API's 400: the body, as the real CLI prints it.
    assert!(
        fatal
            .text()
            .contains("The request was refused by the model API."),
        "{}",
        fatal.text()
    );
    assert_eq!(derive_state(&events), WorkerState::Failed);
}

#[test]
fn a_blocked_agent_shows_as_waiting_until_it_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    // At speed 0.2 the blocker scenario stays blocked about four seconds.
    let launch = sim_launch(AgentKind::Gemini, dir.path(), "publish", "blocker", "0.2");
    let spec = worker_spec(dir.path(), "gemini-b", AgentKind::Gemini, launch);
    let path = spec.events_path.clone();
    let worker = Worker::spawn(spec, None).unwrap();
    wait_for("the blocker", LIMIT, || {
        journal(&path).iter().any(|e| e.kind == EventType::Blocker)
    });
    let events = journal(&path);
    let blocker = events
        .iter()
        .find(|e| e.kind == EventType::Blocker)
        .unwrap();
    assert_eq!(blocker.str_field("reason"), Some("policy_violation"));
    assert_eq!(derive_state(&events), WorkerState::Waiting);
    assert_eq!(worker.wait().code, Some(0));
    assert_eq!(derive_state(&journal(&path)), WorkerState::Done);
}

#[test]
fn a_missing_binary_fails_cleanly_with_an_error_event() {
    let dir = tempfile::tempdir().unwrap();
    let launch = command_launch(dir.path(), &["no-such-agent-cli", "-p", "hi"]);
    let spec = worker_spec(dir.path(), "ghost", AgentKind::Claude, launch);
    let path = spec.events_path.clone();
    let err = Worker::spawn(spec, None).err().expect("spawn must fail");
    assert!(matches!(err, WorkerError::Spawn { .. }));
    assert_eq!(
        err.to_string(),
        "worker ghost: `no-such-agent-cli` was not found on PATH; install it or set its command in the agent profile"
    );
    let events = journal(&path);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].phase()),
        (EventType::Error, Some("spawn_failed"))
    );
    assert_eq!(derive_state(&events), WorkerState::Failed);
}

#[test]
fn input_reaches_the_worker_and_resize_reaches_its_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"read line; echo "{\"type\":\"progress\",\"payload\":{\"text\":\"got $line\"}}"; read x; stty size"#;
    let launch = command_launch(dir.path(), &["sh", "-c", script]);
    let spec = worker_spec(dir.path(), "echo", AgentKind::Events, launch);
    let (path, raw) = (spec.events_path.clone(), spec.raw_path.clone());
    let worker = Worker::spawn(spec, None).unwrap();
    worker.write_input(b"hello\n").unwrap();
    wait_for("the echoed event", LIMIT, || {
        journal(&path).iter().any(|e| e.text() == "got hello")
    });
    worker.resize(50, 132).unwrap();
    worker.write_input(b"\n").unwrap();
    assert_eq!(worker.wait().code, Some(0));
    assert!(std::fs::read_to_string(raw).unwrap().contains("50 132"));
}

#[test]
fn events_reach_an_in_process_observer_in_journal_order() {
    let dir = tempfile::tempdir().unwrap();
    let launch = sim_launch(AgentKind::Gemini, dir.path(), "observe", "success", "0");
    let spec = worker_spec(dir.path(), "gemini-o", AgentKind::Gemini, launch);
    let path = spec.events_path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    Worker::spawn(spec, Some(channel_observer(tx)))
        .unwrap()
        .wait();
    let observed: Vec<_> = rx.try_iter().collect();
    assert_eq!(observed, journal(&path));
}

#[test]
fn a_full_disk_neither_blocks_nor_kills_the_worker_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let launch = sim_launch(AgentKind::Claude, dir.path(), "write a lot", "chatty", "0");
    let mut spec = worker_spec(dir.path(), "full", AgentKind::Claude, launch);
    // Every write to /dev/full fails with ENOSPC, like a full disk.
    spec.events_path = "/dev/full".into();
    spec.raw_path = "/dev/full".into();
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = Worker::spawn(spec, Some(channel_observer(tx))).unwrap();
    assert_eq!(worker.wait().code, Some(0), "the PTY kept being drained");
    let events: Vec<_> = rx.try_iter().collect();
    assert!(events.len() > 2000, "events still reach in-process readers");
    let exit = events.last().unwrap();
    assert_eq!(exit.phase(), Some("exited"));
    let error = exit.str_field("journal_error").unwrap();
    assert!(error.contains("No space left on device"), "{error}");
}

#[test]
fn keys_typed_into_a_worker_are_not_echoed_into_its_json_stream() {
    let dir = tempfile::tempdir().unwrap();
    // Reads one line, then prints an event: with echo on, the typed line would sit in front
    // of the JSON on the same terminal line and that event would be lost.
    let script = r#"read line; printf '{"type":"progress","payload":{"text":"got %s"}}\n' "$line""#;
    let launch = command_launch(dir.path(), &["sh", "-c", script]);
    let spec = worker_spec(dir.path(), "typed", AgentKind::Events, launch);
    let (events_path, raw_path) = (spec.events_path.clone(), spec.raw_path.clone());
    let worker = Worker::spawn(spec, None).unwrap();
    worker.write_input(b"secret-keys\r").unwrap();
    assert_eq!(worker.wait().code, Some(0));
    let raw = std::fs::read_to_string(&raw_path).unwrap();
    assert!(
        raw.starts_with("{\"type\":\"progress\""),
        "nothing echoed before the JSON: {raw:?}"
    );
    let events = journal(&events_path);
    assert!(
        events.iter().any(|e| e.text() == "got secret-keys"),
        "{events:?}"
    );
}
