//! A worker's journal summed up, so that `status`, the session list and the dashboard never
//! re-read a long journal to show a worker's state, totals and times.
//!
//! The worker folds every event it journals into a [`WorkerSummary`] and saves it now and then
//! (`summaries/<worker>.json`) with the byte offset of the journal it covers. A reader loads the
//! saved copy and folds only what the journal holds past that offset, so the figures always
//! equal a fold of the whole journal, however stale or missing the saved copy is: a crash costs
//! a longer read, never a wrong figure.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::agents::FILE_WRITING_TOOLS;
use crate::event::{AgentEvent, EventType, UsageTotals, scan_journal};
use crate::timestamp::Timestamp;
use crate::worker::WorkerStatus;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// How many bytes of the journal are folded in: always the end of a whole line.
    pub offset: u64,
    pub events: u64,
    /// The sequence number the next event continues with.
    pub next_seq: u64,
    /// From the first event: who the worker is and what it works on.
    pub agent: Option<String>,
    pub task: Option<String>,
    pub first_at: Option<Timestamp>,
    pub last_at: Option<Timestamp>,
    /// The current run: when it was spawned, and in which directory.
    pub spawned_at: Option<Timestamp>,
    pub cwd: Option<String>,
    /// The agent's own conversation id, from its latest `init`: what a relaunch resumes.
    pub agent_session: Option<String>,
    /// Tool calls so far, and how many of them changed files: progress for agents that keep
    /// no todo list (none of the pinned CLIs offers one in headless mode).
    pub tool_calls: u32,
    pub edits: u32,
    pub status: WorkerStatus,
    pub usage: UsageTotals,
}

impl WorkerSummary {
    pub fn observe(&mut self, event: &AgentEvent) {
        if self.events == 0 {
            self.agent = Some(event.agent.to_string());
            self.task = event.task.as_deref().map(str::to_string);
            self.first_at = Some(event.timestamp);
        }
        self.events += 1;
        self.next_seq = event.seq + 1;
        self.last_at = Some(event.timestamp);
        match event.phase() {
            Some("init") => self.agent_session = event.str_field("session_id").map(str::to_string),
            Some("spawned") => {
                self.spawned_at = Some(event.timestamp);
                self.cwd = event.str_field("cwd").map(str::to_string);
            }
            _ => {}
        }
        let (call, edit) = tool_call(event);
        self.tool_calls += u32::from(call);
        self.edits += u32::from(edit);
        self.status.observe(event);
        self.usage.observe(event);
    }

    /// The fold of `events`, a whole journal's.
    pub fn of(events: &[AgentEvent]) -> WorkerSummary {
        let mut summary = WorkerSummary::default();
        events.iter().for_each(|e| summary.observe(e));
        summary
    }

    /// The summary of the whole journal at `journal`: the saved copy at `saved` (if any, and if
    /// it fits the journal) brought up to date from the journal itself. No journal yet: the
    /// empty summary.
    pub fn load(saved: &Path, journal: &Path) -> io::Result<WorkerSummary> {
        let journal_len = match std::fs::metadata(journal) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(WorkerSummary::default()),
            Err(e) => return Err(e),
        };
        let summary = std::fs::read(saved)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<WorkerSummary>(&bytes).ok())
            .filter(|s| s.offset <= journal_len)
            .unwrap_or_default();
        summary.caught_up(journal)
    }

    /// This summary with whatever `journal` holds past its offset folded in.
    pub fn caught_up(mut self, journal: &Path) -> io::Result<WorkerSummary> {
        let from = self.offset;
        self.offset = scan_journal(journal, from, |line| {
            if let Ok(event) = line {
                self.observe(&event);
            }
        })?;
        Ok(self)
    }

    /// Writes the summary to `path` whole or not at all (a temporary file renamed over it), so
    /// a reader never sees half of one. Unlike `session::layout::write_atomically`, no fsync: it
    /// is written every quarter second under load, and a summary a crash leaves empty or stale
    /// only makes its readers fold more of the journal.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec(self)?)?;
        std::fs::rename(&temporary, path)
    }
}

/// Whether an event is a tool call, and whether that call changed files.
fn tool_call(e: &AgentEvent) -> (bool, bool) {
    if e.kind != EventType::Progress {
        return (false, false);
    }
    match e.str_field("kind") {
        Some("tool_call") => (
            true,
            e.str_field("tool")
                .is_some_and(|t| FILE_WRITING_TOOLS.contains(&t)),
        ),
        // Codex: a command is announced, then completed with its outcome.
        Some("command") => (!e.payload.contains_key("ok"), false),
        Some("file_change") => (true, true),
        _ => (false, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{JournalWriter, read_journal};
    use serde_json::json;

    fn event(seq: u64, payload: serde_json::Value) -> AgentEvent {
        serde_json::from_value(json!({"type": payload["type"], "agent": "claude", "worker": "w",
            "task": "t1", "seq": seq, "timestamp": Timestamp(1_000 + seq as i64), "payload": payload["payload"]}))
        .unwrap()
    }

    fn story() -> Vec<AgentEvent> {
        vec![
            event(
                0,
                json!({"type": "status", "payload": {"text": "started", "phase": "spawned", "pid": 7}}),
            ),
            event(
                1,
                json!({"type": "status", "payload": {"text": "init", "phase": "init", "session_id": "abc"}}),
            ),
            event(
                2,
                json!({"type": "milestone", "payload": {"text": "done", "final": true,
                "usage": {"input_tokens": 10, "output_tokens": 4}, "cost_usd": 0.5}}),
            ),
            event(
                3,
                json!({"type": "status", "payload": {"text": "exited", "phase": "exited", "exit_code": 0}}),
            ),
        ]
    }

    fn whole_fold(journal: &Path) -> WorkerSummary {
        let (events, _) = read_journal(journal).unwrap();
        let mut summary = WorkerSummary::of(&events);
        summary.offset = std::fs::metadata(journal).unwrap().len();
        summary
    }

    #[test]
    fn a_stale_or_missing_or_bogus_saved_copy_still_gives_the_whole_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("w.jsonl");
        let saved = dir.path().join("w.json");
        let mut writer = JournalWriter::open(&journal).unwrap();
        let events = story();
        let mut kept = WorkerSummary::default();
        for e in &events[..2] {
            writer.append(e).unwrap();
            kept.observe(e);
        }
        kept.offset = writer.written_len();
        kept.save(&saved).unwrap();
        for e in &events[2..] {
            writer.append(e).unwrap();
        }
        let expected = whole_fold(&journal);
        assert_eq!(expected.usage.output_tokens, 4);
        assert_eq!(expected.agent_session.as_deref(), Some("abc"));

        assert_eq!(
            WorkerSummary::load(&saved, &journal).unwrap(),
            expected,
            "stale"
        );
        std::fs::remove_file(&saved).unwrap();
        assert_eq!(
            WorkerSummary::load(&saved, &journal).unwrap(),
            expected,
            "missing"
        );
        std::fs::write(&saved, b"{not json").unwrap();
        assert_eq!(
            WorkerSummary::load(&saved, &journal).unwrap(),
            expected,
            "bogus"
        );
        let mut beyond = expected.clone();
        beyond.offset += 1_000;
        beyond.save(&saved).unwrap();
        assert_eq!(
            WorkerSummary::load(&saved, &journal).unwrap(),
            expected,
            "longer than the journal"
        );
    }

    #[test]
    fn a_torn_last_line_is_left_for_the_next_catch_up() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("w.jsonl");
        let events = story();
        let whole = events[0].to_line();
        let second = events[1].to_line();
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&second[..10]);
        std::fs::write(&journal, &bytes).unwrap();
        let summary = WorkerSummary::default().caught_up(&journal).unwrap();
        assert_eq!((summary.events, summary.offset), (1, whole.len() as u64));
        bytes.extend_from_slice(&second[10..]);
        std::fs::write(&journal, &bytes).unwrap();
        let summary = summary.caught_up(&journal).unwrap();
        assert_eq!(summary.events, 2);
        assert_eq!(summary, whole_fold(&journal));
    }
}
