//! Following a session headless: one readable line per significant event until the session
//! ends, then the exit code says how (0 done, 1 failed, 3 stopped, 4 the coordinator died, 5
//! every remaining task waits for the operator: the session stays open).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::coordinator::journal::COORDINATOR;
use crate::coordinator::lock;
use crate::coordinator::replay::SessionHistory;
use crate::coordinator::schedule::TaskStatus;
use crate::event::{AgentEvent, EventType};
use crate::session::SessionDir;
use crate::session::tailer::follow_session;

pub const EXIT_DONE: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_STOPPED: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 4;
/// Nothing runs and a task recovery escalated waits for the operator: a headless caller is
/// told so rather than left waiting; the coordinator keeps the session open for the fix.
pub const EXIT_HELD: u8 = 5;

/// The exit code for a session outcome (`done`, `failed`, `stopped`).
pub fn exit_code(outcome: &str) -> u8 {
    match outcome {
        "done" => EXIT_DONE,
        "stopped" => EXIT_STOPPED,
        _ => EXIT_FAILED,
    }
}

/// How often the follower checks that the coordinator is still alive.
const LIVENESS_CHECK: Duration = Duration::from_millis(500);

pub fn follow(session: &SessionDir) -> Result<u8> {
    let (tx, rx) = mpsc::channel::<AgentEvent>();
    // Watching starts before the history is read, so nothing falls between the two; what
    // both see is told once (each journal's sequence numbers only grow).
    let _tailer = follow_session(session, None, move |event| {
        let _ = tx.send(event);
    })
    .context("cannot watch the session's journals")?;
    let (history, mut told) = history_in_time_order(session);
    for event in &history {
        if let Some(line) = describe(event) {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").is_err() {
                return Ok(EXIT_DONE);
            }
        }
    }
    // Finished already, and no coordinator to start it again (a resumed session's history
    // holds the end of its earlier run).
    if let Some(finished) = history.iter().rev().find(|e| is_session_end(e))
        && lock::holder(&session.lock_path()).is_none()
    {
        return Ok(exit_code(finished.str_field("outcome").unwrap_or("failed")));
    }
    let mut tasks = SessionHistory::default();
    history
        .iter()
        .filter(|e| &*e.worker == COORDINATOR)
        .for_each(|e| tasks.observe(e));
    let (mut dead_checks, mut held_checks) = (0, 0);
    let mut last_check = Instant::now();
    loop {
        match rx.recv_timeout(LIVENESS_CHECK) {
            Ok(event) => {
                let last = told.entry(event.worker.to_string()).or_insert(None);
                if last.is_some_and(|seq| event.seq <= seq) {
                    continue;
                }
                *last = Some(event.seq);
                if &*event.worker == COORDINATOR {
                    tasks.observe(&event);
                }
                if let Some(line) = describe(&event) {
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "{line}").is_err() {
                        return Ok(EXIT_DONE); // stdout closed (| head): nothing more to show.
                    }
                }
                if is_session_end(&event) {
                    wait_for_exit(session);
                    return Ok(exit_code(event.str_field("outcome").unwrap_or("failed")));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(EXIT_INTERRUPTED),
        }
        if last_check.elapsed() >= LIVENESS_CHECK {
            last_check = Instant::now();
            // Two checks in a row, so the last lines the coordinator wrote are read first.
            dead_checks = if lock::holder(&session.lock_path()).is_none() {
                dead_checks + 1
            } else {
                0
            };
            // Held: two checks in a row, so a task about to start is not missed.
            held_checks = if dead_checks == 0 && waits_for_operator(&tasks) {
                held_checks + 1
            } else {
                0
            };
            if held_checks >= 2 {
                eprintln!(
                    "orchestrate: nothing runs and a task waits for you (see the lines above); the session stays open: fix it, then `orchestrate control {id} restart --worker W` (or `orchestrate kill {id}`)",
                    id = session.id
                );
                return Ok(EXIT_HELD);
            }
            // A coordinator that finished may have ended before its last lines reached us.
            if dead_checks >= 2
                && let Some(outcome) = finished_outcome(session)
            {
                return Ok(outcome);
            }
            if dead_checks >= 4 {
                eprintln!(
                    "orchestrate: the coordinator of {} stopped without finishing (see {}); `orchestrate resume {}` continues it",
                    session.id,
                    session.log_path().display(),
                    session.id
                );
                return Ok(EXIT_INTERRUPTED);
            }
        }
    }
}

/// Whether the session only waits for the operator: a task recovery escalated, none running
/// or due to run again, and the session not paused (a pause is the operator's own).
fn waits_for_operator(history: &SessionHistory) -> bool {
    let statuses = || history.tasks.values().filter_map(|t| t.status.as_ref());
    !history.paused
        && history.finished.is_none()
        && statuses().any(|s| matches!(s, TaskStatus::Escalated { .. }))
        && !statuses().any(|s| matches!(s, TaskStatus::Running { .. } | TaskStatus::RetryAt { .. }))
}

/// A coordinator that journaled the end still tidies up for a moment; what comes next (a
/// `resume`, an `rm`) must find it gone.
pub fn wait_for_exit(session: &SessionDir) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock::holder(&session.lock_path()).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_session_end(event: &AgentEvent) -> bool {
    event.phase() == Some("session_finished")
        && &*event.worker == crate::coordinator::journal::COORDINATOR
}

/// Every journal of the session merged in time order (a resumed session's history reads
/// as it happened), with the last sequence number seen per journal.
pub fn history_in_time_order(
    session: &SessionDir,
) -> (Vec<AgentEvent>, BTreeMap<String, Option<u64>>) {
    let mut files = vec![session.orchestrator_journal()];
    files.extend(
        super::lookup::worker_names(session)
            .iter()
            .map(|w| session.events_path(w)),
    );
    let mut events = Vec::new();
    let mut told = BTreeMap::new();
    for path in files {
        let (journal, _) = crate::event::read_journal(&path).unwrap_or_default();
        for e in &journal {
            told.insert(e.worker.to_string(), Some(e.seq));
        }
        events.extend(journal);
    }
    // Stable: events of one journal stamped in the same millisecond keep their order.
    events.sort_by_key(|e| e.timestamp);
    (events, told)
}

/// The exit code of a session its journal says is finished, after printing its last line.
fn finished_outcome(session: &SessionDir) -> Option<u8> {
    let (events, _) = crate::event::read_journal(&session.orchestrator_journal()).ok()?;
    let last = events
        .iter()
        .rev()
        .find(|e| e.phase() == Some("session_finished"))?;
    if let Some(line) = describe(last) {
        println!("{line}");
    }
    Some(exit_code(last.str_field("outcome").unwrap_or("failed")))
}

/// The line shown for an event, or `None` for the noise (progress, ordinary status).
pub fn describe(event: &AgentEvent) -> Option<String> {
    let from_coordinator = &*event.worker == crate::coordinator::journal::COORDINATOR;
    let significant = from_coordinator
        || match event.kind {
            EventType::Blocker | EventType::Task | EventType::Finding | EventType::Review => true,
            EventType::Error => !event.bool_field("tentative") && event.phase() != Some("exited"),
            EventType::Milestone => !event.bool_field("final"),
            _ => false,
        };
    if !significant {
        return None;
    }
    let c = event.timestamp.civil();
    let who = if from_coordinator {
        event.task.as_deref().unwrap_or("session").to_string()
    } else {
        event.worker.to_string()
    };
    let mark = match event.kind {
        EventType::Error => "!",
        EventType::Blocker => "?",
        EventType::Control => ">",
        _ => " ",
    };
    Some(format!(
        "{:02}:{:02}:{:02} {mark} {who:<20} {}",
        c.hour,
        c.minute,
        c.second,
        event.text()
    ))
}
