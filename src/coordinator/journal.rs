//! `orchestrator.jsonl`: the coordinator's own events (task lifecycle, control commands,
//! recoveries, decisions), in the same `AgentEvent` shape as the workers' journals, so every
//! reader follows it the same way. On resume its sequence continues where it stopped.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::agents::Draft;
use crate::event::{AgentEvent, JournalWriter, read_journal};
use crate::timestamp::Timestamp;

pub const COORDINATOR: &str = "coordinator";
pub const ORCHESTRATOR: &str = "orchestrator";

pub struct CoordinatorJournal {
    writer: JournalWriter,
    next_seq: u64,
    agent: Arc<str>,
    worker: Arc<str>,
}

impl CoordinatorJournal {
    /// Opens for appending, continuing the sequence of what is already there.
    pub fn open(path: &Path) -> io::Result<CoordinatorJournal> {
        let next_seq = match read_journal(path) {
            Ok((events, _)) => events.last().map_or(0, |e| e.seq + 1),
            Err(_) => 0,
        };
        Ok(CoordinatorJournal {
            writer: JournalWriter::open(path)?,
            next_seq,
            agent: ORCHESTRATOR.into(),
            worker: COORDINATOR.into(),
        })
    }

    /// Writes what a full disk held back.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Appends one event about `task` (if any); returns it. `Err`: it is held in memory,
    /// with its sequence number taken, until a later append or `flush` writes it.
    pub fn record(&mut self, task: Option<&str>, draft: Draft) -> io::Result<AgentEvent> {
        let event = AgentEvent {
            kind: draft.kind,
            agent: Arc::clone(&self.agent),
            worker: Arc::clone(&self.worker),
            task: task.map(Into::into),
            seq: self.next_seq,
            timestamp: Timestamp::now(),
            payload: draft.payload,
        };
        self.next_seq += 1;
        self.writer.append(&event)?;
        Ok(event)
    }
}
