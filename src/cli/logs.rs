//! `orchestrate logs SESSION [WORKER] [--follow] [--raw] [--json]`: a worker's events as
//! readable lines (or as AgentEvent JSON), or the exact bytes its terminal produced; without a
//! worker, every worker and the coordinator merged in time order. `--follow` keeps printing
//! until the session's coordinator is gone and everything is read.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::follow::history_in_time_order;
use super::lookup;
use crate::coordinator::lock;
use crate::event::{AgentEvent, SharedNames, trim_line_end};
use crate::session::tailer::follow_session;
use crate::session::{SessionDir, Workspace};

const POLL: Duration = Duration::from_millis(100);

pub struct LogsRequest<'a> {
    pub session: &'a str,
    pub worker: Option<&'a str>,
    pub follow: bool,
    pub raw: bool,
    pub json: bool,
}

pub fn logs(workspace: &Workspace, request: LogsRequest) -> Result<u8> {
    if let Some(w) = request.worker {
        crate::session::check_name("worker", w)?;
    }
    let session = lookup::session(workspace, request.session)?;
    let Some(worker) = request.worker else {
        if request.raw {
            anyhow::bail!(
                "--raw shows one worker's terminal: name it (workers: {})",
                lookup::worker_names(&session).join(", ")
            );
        }
        return merged(&session, request.follow, request.json);
    };
    let worker = lookup::worker(&session, worker)?;
    let (follow, raw, json) = (request.follow, request.raw, request.json);
    let path = if raw {
        session.raw_path(&worker)
    } else {
        session.events_path(&worker)
    };
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut offset = 0u64;
    let mut carry = Vec::new();
    loop {
        let coordinator_gone = lock::holder(&session.lock_path()).is_none();
        let mut chunk = Vec::new();
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut chunk)?;
        offset += chunk.len() as u64;
        if !print(&chunk, raw, json, &mut carry) {
            return Ok(0); // stdout closed.
        }
        if !follow || coordinator_gone {
            break;
        }
        std::thread::sleep(POLL);
    }
    if !raw && !carry.is_empty() {
        print(b"\n", raw, json, &mut carry);
    }
    Ok(0)
}

/// Every journal of the session in time order, then (with `follow`) what comes, until the
/// coordinator is gone.
fn merged(session: &SessionDir, follow: bool, json: bool) -> Result<u8> {
    let (tx, rx) = mpsc::channel::<AgentEvent>();
    // Watching starts before the history is read; the overlap is told once (see follow.rs).
    let _tailer = if follow {
        Some(
            follow_session(session, None, move |e| {
                let _ = tx.send(e);
            })
            .context("cannot watch the session's journals")?,
        )
    } else {
        None
    };
    let (history, mut told) = history_in_time_order(session);
    let mut out = std::io::stdout().lock();
    for event in &history {
        if !write_event(&mut out, event, json) {
            return Ok(0);
        }
    }
    if !follow {
        return Ok(0);
    }
    let mut quiet_since_gone = 0;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(event) => {
                let last = told.entry(event.worker.to_string()).or_insert(None);
                if last.is_some_and(|seq| event.seq <= seq) {
                    continue;
                }
                *last = Some(event.seq);
                if !write_event(&mut out, &event, json) {
                    return Ok(0);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Gone, and nothing new for a few polls: everything it wrote is read.
                if lock::holder(&session.lock_path()).is_none() {
                    quiet_since_gone += 1;
                    if quiet_since_gone >= 3 {
                        return Ok(0);
                    }
                }
                let _ = out.flush();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
        }
    }
}

/// One event, as a readable line naming its worker or as JSON; false when stdout is closed.
fn write_event(out: &mut impl Write, event: &AgentEvent, json: bool) -> bool {
    if json {
        return out.write_all(&event.to_line()).is_ok();
    }
    let line = readable(event);
    let (time, rest) = line.split_at(line.find(' ').unwrap_or(0));
    writeln!(out, "{time} {:<20}{rest}", event.worker).is_ok()
}

/// Writes what was read; false when stdout is closed.
fn print(chunk: &[u8], raw: bool, json: bool, carry: &mut Vec<u8>) -> bool {
    let mut out = std::io::stdout().lock();
    if raw {
        return out.write_all(chunk).and_then(|_| out.flush()).is_ok();
    }
    carry.extend_from_slice(chunk);
    // Whole lines are read where they lie and cut off the front once, at the end: cutting each
    // line off as it is read moved the rest of a big chunk every time (a 10 MB journal took
    // seconds).
    let mut names = SharedNames::default();
    let mut start = 0;
    let mut written = true;
    while let Some(at) = memchr::memchr(b'\n', &carry[start..]) {
        let line = trim_line_end(&carry[start..start + at + 1]);
        start += at + 1;
        let text = match AgentEvent::from_line(line, &mut names) {
            Ok(event) if json => {
                if out.write_all(&event.to_line()).is_err() {
                    written = false;
                    break;
                }
                continue;
            }
            Ok(event) => readable(&event),
            Err(_) => format!("(unreadable line) {}", String::from_utf8_lossy(line)),
        };
        if writeln!(out, "{text}").is_err() {
            written = false;
            break;
        }
    }
    carry.drain(..start);
    written
}

/// `HH:MM:SS.mmm type      text`
pub fn readable(event: &AgentEvent) -> String {
    let c = event.timestamp.civil();
    format!(
        "{:02}:{:02}:{:02}.{:03} {:<9} {}",
        c.hour,
        c.minute,
        c.second,
        c.millis,
        event.kind,
        event.text()
    )
}
