//! The one event model every surface speaks: `AgentEvent`, its types, and JSONL read/write.
//!
//! Payload conventions (what readers may rely on; adapters fill them):
//! - `text`: a one-line human summary, present on every event.
//! - `native`: the native message type the event came from (`system/init`, `item.completed`).
//! - `phase`: for `status` events, which lifecycle step (`spawned`, `init`, `exited`, ...).
//! - `session_id`, `model`: the agent's own conversation id and model, when known.
//! - `usage {input_tokens, output_tokens, cached_input_tokens}`, `cost_usd`: totals so far.
//! - `fatal`, `tentative`: on `error` events; a fatal error means the run failed.
//! - `final`: on the `milestone` that closes a run.

use std::borrow::Cow;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod borrowed;
mod payload;

pub use borrowed::optional_str;
pub use payload::{Key, Payload};

use crate::session::append::HeldAppender;
use crate::timestamp::Timestamp;

/// What an event means. Workers produce the first eight; the coordinator adds the last three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Status,
    Progress,
    Finding,
    Task,
    Blocker,
    Milestone,
    Review,
    Error,
    Decision,
    Recovery,
    Control,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::Status,
        EventType::Progress,
        EventType::Finding,
        EventType::Task,
        EventType::Blocker,
        EventType::Milestone,
        EventType::Review,
        EventType::Error,
        EventType::Decision,
        EventType::Recovery,
        EventType::Control,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Status => "status",
            EventType::Progress => "progress",
            EventType::Finding => "finding",
            EventType::Task => "task",
            EventType::Blocker => "blocker",
            EventType::Milestone => "milestone",
            EventType::Review => "review",
            EventType::Error => "error",
            EventType::Decision => "decision",
            EventType::Recovery => "recovery",
            EventType::Control => "control",
        }
    }

    /// Types a worker may report about itself (the coordinator owns the others).
    pub fn is_worker_type(self) -> bool {
        !matches!(
            self,
            EventType::Decision | EventType::Recovery | EventType::Control
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type {s:?}"))
    }
}

/// One normalised event, one JSON object per line in a journal. Identity fields are shared
/// (`Arc<str>`): every event of a worker carries the same three, so stamping one is cheap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub agent: Arc<str>,
    pub worker: Arc<str>,
    pub task: Option<Arc<str>>,
    pub seq: u64,
    pub timestamp: Timestamp,
    pub payload: Payload,
}

/// An event line as read, its identity borrowed from the line: [`AgentEvent::from_line`] turns
/// it into shared names. `AgentEvent`'s own `Deserialize` reads through it too, so the two
/// read the same fields the same way (and name the same struct in their errors).
#[derive(Deserialize)]
#[serde(rename = "AgentEvent")]
struct EventLine<'a> {
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(borrow)]
    agent: Cow<'a, str>,
    #[serde(borrow)]
    worker: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    task: Option<Cow<'a, str>>,
    seq: u64,
    timestamp: Timestamp,
    payload: Payload,
}

/// The names the last line read carried, shared with the next: a journal names the same agent,
/// worker and task on every line, so a reader allocates them once per run of lines, not per
/// line.
#[derive(Debug, Default)]
pub struct SharedNames {
    agent: Option<Arc<str>>,
    worker: Option<Arc<str>>,
    task: Option<Arc<str>>,
}

impl SharedNames {
    fn share(slot: &mut Option<Arc<str>>, name: &str) -> Arc<str> {
        match slot {
            Some(shared) if **shared == *name => Arc::clone(shared),
            _ => Arc::clone(slot.insert(Arc::from(name))),
        }
    }
}

impl EventLine<'_> {
    fn into_event(self, names: &mut SharedNames) -> AgentEvent {
        AgentEvent {
            kind: self.kind,
            agent: SharedNames::share(&mut names.agent, &self.agent),
            worker: SharedNames::share(&mut names.worker, &self.worker),
            task: self
                .task
                .map(|task| SharedNames::share(&mut names.task, &task)),
            seq: self.seq,
            timestamp: self.timestamp,
            payload: self.payload,
        }
    }
}

impl<'de> Deserialize<'de> for AgentEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EventLine::deserialize(deserializer)
            .map(|read| read.into_event(&mut SharedNames::default()))
    }
}

impl AgentEvent {
    /// One journal line (no newline) as an event, its names shared through `names` with the
    /// lines read before it. The same event `serde_json::from_slice` gives, with fewer copies.
    pub fn from_line(line: &[u8], names: &mut SharedNames) -> serde_json::Result<AgentEvent> {
        let read: EventLine<'_> = serde_json::from_slice(line)?;
        Ok(read.into_event(names))
    }

    pub fn text(&self) -> &str {
        self.str_field("text").unwrap_or("")
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }

    pub fn bool_field(&self, key: &str) -> bool {
        self.payload
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn i64_field(&self, key: &str) -> Option<i64> {
        self.payload.get(key).and_then(Value::as_i64)
    }

    pub fn phase(&self) -> Option<&str> {
        self.str_field("phase")
    }

    /// One JSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(256);
        self.write_line(&mut line)
            .expect("AgentEvent always serialises into memory");
        line
    }

    /// Writes the event as one JSONL line straight into `out` (no line buffer of its own).
    pub fn write_line(&self, out: &mut impl io::Write) -> io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")
    }
}

/// A worker's token and cost totals: the sum of each run's final report (`usage` and
/// `cost_usd` on the event marked `final`). One rule for every surface that shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl UsageTotals {
    pub fn observe(&mut self, event: &AgentEvent) {
        if !event.bool_field("final") {
            return;
        }
        let usage = event.payload.get("usage");
        let count = |key: &str| {
            usage
                .and_then(|u| u.get(key))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        self.input_tokens += count("input_tokens");
        self.output_tokens += count("output_tokens");
        self.cost_usd += event
            .payload
            .get("cost_usd")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
    }

    pub fn of(events: &[AgentEvent]) -> UsageTotals {
        let mut totals = UsageTotals::default();
        events.iter().for_each(|e| totals.observe(e));
        totals
    }
}

/// Appends events to a JSONL journal, whole lines per `write`; on a full disk they are held in
/// memory, in order, and written by a later append or [`JournalWriter::flush`] (see
/// `session::append`).
pub struct JournalWriter {
    log: HeldAppender,
    /// The lines of one batch, reused from batch to batch.
    batch: Vec<u8>,
}

impl JournalWriter {
    /// A batch buffer that grew past this (one huge burst) is not kept for the next.
    const KEPT_BATCH_BYTES: usize = 1 << 20;

    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(JournalWriter {
            log: HeldAppender::open(path)?,
            batch: Vec::new(),
        })
    }

    /// `Err`: the event is held, not lost; `held()` says how many wait.
    pub fn append(&mut self, event: &AgentEvent) -> io::Result<()> {
        self.append_all(std::slice::from_ref(event))
    }

    /// Appends `events` with one `write`: under a busy agent, a write (and a wake-up of every
    /// reader watching the file) per batch of a PTY read instead of per event. `Err`: the
    /// batch is held whole, not lost.
    pub fn append_all(&mut self, events: &[AgentEvent]) -> io::Result<()> {
        if events.is_empty() {
            return self.log.flush();
        }
        self.batch.clear();
        for event in events {
            event
                .write_line(&mut self.batch)
                .expect("AgentEvent always serialises into memory");
        }
        let written = self.log.append_bytes(&self.batch);
        if self.batch.capacity() > Self::KEPT_BATCH_BYTES {
            self.batch = Vec::new();
        }
        written
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.log.flush()
    }

    pub fn held(&self) -> usize {
        self.log.held()
    }

    /// The journal's length in bytes: everything written, nothing held.
    pub fn written_len(&self) -> u64 {
        self.log.written_len()
    }

    pub fn dropped(&self) -> u64 {
        self.log.dropped()
    }

    pub fn sync(&self) -> io::Result<()> {
        self.log.sync()
    }
}

/// A line of a journal that could not be read as an event.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line_number: usize,
    pub reason: String,
}

/// Reads a whole journal. A line that is not an event is reported, not fatal; a last line
/// with no newline (a torn write) is reported as such.
pub fn read_journal(path: &Path) -> io::Result<(Vec<AgentEvent>, Vec<BadLine>)> {
    let mut events = Vec::new();
    let mut bad = Vec::new();
    scan_journal(path, 0, |line| match line {
        Ok(event) => events.push(event),
        Err(line) => bad.push(line),
    })?;
    Ok((events, bad))
}

/// Reads a journal from byte `offset` (the end of a whole line), handing each line to `each`
/// in order, and returns the offset just past the last whole line: where a later scan goes on.
/// A torn last line is reported and not passed, so a later scan reads it once it is whole.
/// Line numbers count from `offset`.
pub fn scan_journal(
    path: &Path,
    offset: u64,
    mut each: impl FnMut(Result<AgentEvent, BadLine>),
) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    // Only what the file holds now: a journal on a device (`/dev/full`, `/dev/zero` in tests)
    // or one that grows while it is read must not be read without end.
    if !meta.is_file() || meta.len() <= offset {
        return Ok(offset);
    }
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
    let mut reader = BufReader::with_capacity(1 << 16, io::Read::take(file, meta.len() - offset));
    let mut buf = Vec::new();
    let mut line_number = 0;
    let mut end = offset;
    let mut names = SharedNames::default();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_number += 1;
        let complete = buf.last() == Some(&b'\n');
        if complete {
            end += buf.len() as u64;
        }
        let body = trim_line_end(&buf);
        if body.is_empty() {
            continue;
        }
        if !complete {
            each(Err(BadLine {
                line_number,
                reason: "torn last line (no newline)".into(),
            }));
            continue;
        }
        each(
            AgentEvent::from_line(body, &mut names).map_err(|err| BadLine {
                line_number,
                reason: err.to_string(),
            }),
        );
    }
    Ok(end)
}

/// Cuts a torn last line (a write interrupted by a crash) off the end of a journal. Returns
/// how many bytes were dropped. Every complete line is kept, so no event is lost; the torn one
/// was never written whole, so no event is invented.
pub fn repair_torn_tail(path: &Path) -> io::Result<u64> {
    let bytes = std::fs::read(path)?;
    if bytes.is_empty() || bytes.last() == Some(&b'\n') {
        return Ok(0);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(keep as u64)?;
    Ok((bytes.len() - keep) as u64)
}

/// Strips a trailing `\n` and any `\r` before it (PTYs turn `\n` into `\r\n`).
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> AgentEvent {
        AgentEvent {
            kind: EventType::Progress,
            agent: "claude".into(),
            worker: "claude-1".into(),
            task: Some("t2".into()),
            seq: 17,
            timestamp: Timestamp::parse("2026-11-21T18:00:00Z").unwrap(),
            payload: json!({"text": "Editing src/auth.rs", "progress": 45})
                .as_object()
                .unwrap()
                .clone()
                .into(),
        }
    }

    #[test]
    fn matches_the_design_shape_and_round_trips() {
        let event = sample();
        let line = String::from_utf8(event.to_line()).unwrap();
        assert!(line.starts_with(r#"{"type":"progress","agent":"claude","worker":"claude-1","task":"t2","seq":17,"timestamp":"2026-11-21T18:00:00.000Z","payload":{"#));
        let back: AgentEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn reads_the_design_example_verbatim() {
        let text = r#"{"type":"progress","agent":"claude","worker":"claude-1","task":"t2","seq":17,
 "timestamp":"2026-11-21T18:00:00Z","payload":{"text":"Editing src/auth.rs","progress":45}}"#;
        let event: AgentEvent = serde_json::from_str(text).unwrap();
        assert_eq!(event, sample());
    }

    #[test]
    fn every_type_round_trips_by_name() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
        assert!("nonsense".parse::<EventType>().is_err());
    }

    #[test]
    fn usage_totals_sum_each_runs_final_report_only() {
        let with = |payload: Value| AgentEvent {
            payload: payload.as_object().unwrap().clone().into(),
            ..sample()
        };
        let events = [
            with(json!({"text": "partial", "usage": {"input_tokens": 999, "output_tokens": 999}})),
            with(json!({"text": "run 1", "final": true, "cost_usd": 0.25,
                        "usage": {"input_tokens": 100, "output_tokens": 10}})),
            with(
                json!({"text": "run 2 (a retry)", "final": true, "usage": {"input_tokens": 50, "output_tokens": 5}}),
            ),
        ];
        let totals = UsageTotals::of(&events);
        assert_eq!(
            (totals.input_tokens, totals.output_tokens, totals.cost_usd),
            (150, 15, 0.25)
        );
    }

    #[test]
    fn a_line_read_with_shared_names_is_the_event_serde_reads() {
        let lines = [
            r#"{"type":"progress","agent":"claude","worker":"w1","task":"t1","seq":0,"timestamp":"2026-11-21T18:00:00.123Z","payload":{"text":"a","kind":"message"}}"#,
            r#"{"type":"status","agent":"claude","worker":"w1","task":"t1","seq":1,"timestamp":"2026-11-21T18:00:01Z","payload":{"text":"b"},"extra":1}"#,
            r#"{"type":"status","agent":"claude","worker":"w\u00e92","task":null,"seq":2,"timestamp":"2026-11-21T18:00:02Z","payload":{}}"#,
            r#"{"payload":{"text":"c"},"timestamp":"2026-11-21T18:00:03Z","seq":3,"worker":"w1","agent":"claude","type":"error"}"#,
            r#"{"type":"status","agent":"claude","worker":"w1","seq":4,"timestamp":"yesterday","payload":{}}"#,
            r#"{"type":"sparkle","agent":"claude","worker":"w1","seq":5,"timestamp":"2026-11-21T18:00:03Z","payload":{}}"#,
            r#"{"type":"status","agent":"claude","worker":"w1","seq":6,"payload":{}}"#,
            r#"{"type":"status","agent":"claude","worker":"w1","worker":"w2","seq":7,"timestamp":"2026-11-21T18:00:03Z","payload":{}}"#,
        ];
        let mut names = SharedNames::default();
        let shared: Vec<_> = lines
            .iter()
            .map(|l| AgentEvent::from_line(l.as_bytes(), &mut names).map_err(|e| e.to_string()))
            .collect();
        let plain: Vec<_> = lines
            .iter()
            .map(|l| serde_json::from_str::<AgentEvent>(l).map_err(|e| e.to_string()))
            .collect();
        assert_eq!(shared, plain);
        assert_eq!(shared.iter().filter(|e| e.is_ok()).count(), 4, "{shared:?}");
        let (first, second) = (shared[0].as_ref().unwrap(), shared[1].as_ref().unwrap());
        assert!(
            Arc::ptr_eq(&first.worker, &second.worker),
            "one name, shared"
        );
        assert_eq!(&*shared[2].as_ref().unwrap().worker, "wé2");
    }

    #[test]
    fn a_batch_is_journaled_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.jsonl");
        let mut writer = JournalWriter::open(&path).unwrap();
        let batch: Vec<AgentEvent> = (0..3).map(|seq| AgentEvent { seq, ..sample() }).collect();
        writer.append_all(&batch).unwrap();
        writer.append(&AgentEvent { seq: 3, ..sample() }).unwrap();
        writer.append_all(&[]).unwrap();
        let (events, bad) = read_journal(&path).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(
            writer.written_len(),
            std::fs::metadata(&path).unwrap().len()
        );
    }

    #[test]
    fn journal_reports_bad_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.jsonl");
        let mut writer = JournalWriter::open(&path).unwrap();
        writer.append(&sample()).unwrap();
        drop(writer);
        use std::io::Write;
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"not json\r\n\n").unwrap();
        file.write_all(&sample().to_line()[..40]).unwrap();
        let (events, bad) = read_journal(&path).unwrap();
        assert_eq!(events, vec![sample()]);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line_number, 2);
        assert_eq!(bad[1].line_number, 4);
        assert!(bad[1].reason.contains("torn"));
        assert_eq!(repair_torn_tail(&path).unwrap(), 40);
        let (events, bad) = read_journal(&path).unwrap();
        assert_eq!(
            (events.len(), bad.len()),
            (1, 1),
            "only the non-JSON line is left to report"
        );
        assert_eq!(repair_torn_tail(&path).unwrap(), 0);
    }
}
