//! `orchestrate logs SESSION WORKER [--follow] [--raw]`: a worker's events as readable lines,
//! or the exact bytes its terminal produced. `--follow` keeps printing until the session's
//! coordinator is gone and everything is read.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::{Context, Result};

use super::lookup;
use crate::coordinator::lock;
use crate::event::{AgentEvent, trim_line_end};
use crate::session::Workspace;

const POLL: Duration = Duration::from_millis(100);

pub fn logs(
    workspace: &Workspace,
    session: &str,
    worker: &str,
    follow: bool,
    raw: bool,
) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let worker = lookup::worker(&session, worker)?;
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
        if !print(&chunk, raw, &mut carry) {
            return Ok(0); // stdout closed.
        }
        if !follow || coordinator_gone {
            break;
        }
        std::thread::sleep(POLL);
    }
    if !raw && !carry.is_empty() {
        print(b"\n", raw, &mut carry);
    }
    Ok(0)
}

/// Writes what was read; false when stdout is closed.
fn print(chunk: &[u8], raw: bool, carry: &mut Vec<u8>) -> bool {
    let mut out = std::io::stdout().lock();
    if raw {
        return out.write_all(chunk).and_then(|_| out.flush()).is_ok();
    }
    carry.extend_from_slice(chunk);
    while let Some(end) = carry.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = carry.drain(..=end).collect();
        let text = match serde_json::from_slice::<AgentEvent>(trim_line_end(&line)) {
            Ok(event) => readable(&event),
            Err(_) => format!(
                "(unreadable line) {}",
                String::from_utf8_lossy(trim_line_end(&line))
            ),
        };
        if writeln!(out, "{text}").is_err() {
            return false;
        }
    }
    true
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
