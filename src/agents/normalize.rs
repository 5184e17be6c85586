//! Bytes of one worker's stream -> stamped `AgentEvent`s. Frames lines, cleans them (CRLF,
//! invalid UTF-8, terminal escapes), parses JSON once, hands it to the CLI's adapter and stamps
//! agent, worker, task, sequence number and time on what comes back. No input can make it
//! panic; what it cannot read becomes a `LineIssue` and, where useful, an event.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::draft::Draft;
use super::framing::{Frame, LineFramer, MAX_LINE_BYTES};
use super::{Adapter, AgentKind, Parsed};
use crate::event::{AgentEvent, EventType, trim_line_end};
use crate::timestamp::Timestamp;
use crate::worker::state::ExitFacts;

/// Something about one input line worth telling the person who fed it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineIssue {
    pub line_number: usize,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Plain text; kept as a log line.
    NotJson,
    /// Looked like JSON but did not parse; kept as a log line.
    Malformed(String),
    /// Longer than the line limit; dropped, reported as an `error` event.
    Oversize { bytes: usize },
    /// Bytes that are not UTF-8 were replaced with U+FFFD.
    InvalidUtf8,
    /// Text glued before a JSON object (keys a terminal echoed, say): the text is kept as a
    /// log line and the object read.
    LeadingText,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotJson => write!(f, "not JSON, kept as a log line"),
            Problem::Malformed(why) => write!(f, "malformed JSON ({why}), kept as a log line"),
            Problem::Oversize { bytes } => write!(
                f,
                "line of {bytes} bytes is over the {MAX_LINE_BYTES}-byte limit, dropped"
            ),
            Problem::InvalidUtf8 => write!(f, "invalid UTF-8 replaced with U+FFFD"),
            Problem::LeadingText => write!(
                f,
                "text before the JSON object, kept as a log line; the object was read"
            ),
        }
    }
}

impl fmt::Display for LineIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line_number, self.problem)
    }
}

/// Counts for a summary line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NormalizeStats {
    pub lines: u64,
    pub events: u64,
    pub blank: u64,
    pub not_json: u64,
    pub malformed: u64,
    pub oversize: u64,
    /// Native message types the adapter does not know, ignored, by name.
    pub unknown: BTreeMap<String, u64>,
}

impl NormalizeStats {
    pub fn unknown_total(&self) -> u64 {
        self.unknown.values().sum()
    }
}

pub struct Normalizer {
    framer: LineFramer,
    lines: LineHandler,
}

struct LineHandler {
    adapter: Box<dyn Adapter>,
    agent: Arc<str>,
    worker: Arc<str>,
    task: Option<Arc<str>>,
    next_seq: u64,
    line_number: usize,
    stats: NormalizeStats,
    drafts: Vec<Draft>,
    /// The lines so far of a pretty-printed JSON document (Gemini's `--output-format json`):
    /// from a lone `{` or `[` at column 0 until a closing line at column 0 makes them parse.
    document: Vec<String>,
    document_bytes: usize,
}

impl Normalizer {
    pub fn new(kind: AgentKind, worker: &str, task: Option<&str>) -> Self {
        Normalizer::with_limit(kind, worker, task, MAX_LINE_BYTES)
    }

    pub fn with_limit(kind: AgentKind, worker: &str, task: Option<&str>, max_line: usize) -> Self {
        Normalizer {
            framer: LineFramer::new(max_line),
            lines: LineHandler {
                adapter: kind.adapter(),
                agent: kind.name().into(),
                worker: worker.into(),
                task: task.map(Into::into),
                next_seq: 0,
                line_number: 0,
                stats: NormalizeStats::default(),
                drafts: Vec::new(),
                document: Vec::new(),
                document_bytes: 0,
            },
        }
    }

    /// Continue numbering after events already in a journal.
    pub fn starting_at(mut self, seq: u64) -> Self {
        self.lines.next_seq = seq;
        self
    }

    pub fn next_seq(&self) -> u64 {
        self.lines.next_seq
    }

    pub fn stats(&self) -> &NormalizeStats {
        &self.lines.stats
    }

    /// Feeds raw bytes; completed lines become events in `events`.
    pub fn push(
        &mut self,
        chunk: &[u8],
        now: Timestamp,
        events: &mut Vec<AgentEvent>,
        issues: &mut Vec<LineIssue>,
    ) {
        let lines = &mut self.lines;
        self.framer
            .push(chunk, |frame| lines.handle(frame, now, events, issues));
    }

    /// The stream ended: flushes a last line without newline and lets the adapter conclude.
    pub fn finish(
        &mut self,
        exit: Option<&ExitFacts>,
        now: Timestamp,
        events: &mut Vec<AgentEvent>,
        issues: &mut Vec<LineIssue>,
    ) {
        let lines = &mut self.lines;
        self.framer
            .finish(|frame| lines.handle(frame, now, events, issues));
        lines.spill_document();
        lines.adapter.finish(exit, &mut lines.drafts);
        lines.flush(now, events);
    }

    /// Stamps an event that did not come from the stream (the supervisor's lifecycle events),
    /// so one journal has one sequence.
    pub fn stamp(&mut self, draft: Draft, now: Timestamp) -> AgentEvent {
        self.lines.stamp(draft, now)
    }
}

impl LineHandler {
    fn handle(
        &mut self,
        frame: Frame<'_>,
        now: Timestamp,
        events: &mut Vec<AgentEvent>,
        issues: &mut Vec<LineIssue>,
    ) {
        self.line_number += 1;
        self.stats.lines += 1;
        let line_number = self.line_number;
        let mut report = |problem| {
            issues.push(LineIssue {
                line_number,
                problem,
            })
        };
        match frame {
            Frame::Oversize { bytes } => {
                self.stats.oversize += 1;
                let problem = Problem::Oversize { bytes };
                self.drafts.push(
                    Draft::new(EventType::Error, format!("output {problem}"))
                        .with("message", problem.to_string())
                        .with("fatal", false)
                        .with("bytes", bytes),
                );
                report(problem);
            }
            Frame::Line(raw) => {
                let raw = trim_line_end(raw);
                // Strict validation is fast; the lossy walk runs only when it fails.
                let decoded = match std::str::from_utf8(raw) {
                    Ok(text) => std::borrow::Cow::Borrowed(text),
                    Err(_) => {
                        report(Problem::InvalidUtf8);
                        String::from_utf8_lossy(raw)
                    }
                };
                let cleaned = if decoded.contains('\u{1b}') {
                    std::borrow::Cow::Owned(strip_terminal_escapes(&decoded))
                } else {
                    decoded
                };
                let line = cleaned.trim();
                if line.is_empty() {
                    self.stats.blank += 1;
                    return;
                }
                let at_column_0 = !cleaned.starts_with(char::is_whitespace);
                if !self.document.is_empty() || (at_column_0 && matches!(line, "{" | "[")) {
                    self.document_line(line, at_column_0 && matches!(line, "}" | "]"));
                    self.flush(now, events);
                    return;
                }
                if let Some(problem) = self.dispatch(line) {
                    report(problem);
                }
            }
        }
        self.flush(now, events);
    }

    /// One line of a pretty-printed document; at its closing line the whole parses as one.
    fn document_line(&mut self, line: &str, closing: bool) {
        self.document_bytes += line.len() + 1;
        self.document.push(line.to_string());
        if closing {
            match serde_json::from_str::<Value>(&self.document.join("\n")) {
                Ok(value) => {
                    self.document.clear();
                    self.document_bytes = 0;
                    self.dispatch_value(value);
                }
                Err(_) => self.spill_document(),
            }
        } else if self.document_bytes > MAX_LINE_BYTES {
            self.spill_document();
        }
    }

    /// A document that never parsed: its lines are kept as log lines, nothing is lost.
    fn spill_document(&mut self) {
        self.document_bytes = 0;
        for line in std::mem::take(&mut self.document) {
            self.stats.not_json += 1;
            self.adapter.on_text(&line, &mut self.drafts);
        }
    }

    fn dispatch_value(&mut self, value: Value) {
        match value {
            // Claude `--output-format json` with verbose on: every message in one array.
            Value::Array(items) => items.into_iter().for_each(|item| self.on_json(item)),
            other => self.on_json(other),
        }
    }

    /// Parses a line and hands it to the adapter; returns what was wrong with it, if anything.
    fn dispatch(&mut self, line: &str) -> Option<Problem> {
        if !looks_like_json(line) {
            if let Some((text, value)) = object_after_text(line) {
                self.adapter.on_text(text, &mut self.drafts);
                self.dispatch_value(value);
                return Some(Problem::LeadingText);
            }
            self.stats.not_json += 1;
            self.adapter.on_text(line, &mut self.drafts);
            return Some(Problem::NotJson);
        }
        if let Some(parsed) = self.adapter.on_line(line, &mut self.drafts) {
            self.count(parsed);
            return None;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value @ (Value::Array(_) | Value::Object(_))) => {
                self.dispatch_value(value);
                None
            }
            Ok(_) => {
                self.stats.not_json += 1;
                self.adapter.on_text(line, &mut self.drafts);
                Some(Problem::NotJson)
            }
            Err(err) => {
                self.stats.malformed += 1;
                self.adapter.on_text(line, &mut self.drafts);
                Some(Problem::Malformed(err.to_string()))
            }
        }
    }

    fn on_json(&mut self, value: Value) {
        let parsed = self.adapter.on_json(value, &mut self.drafts);
        self.count(parsed);
    }

    fn count(&mut self, parsed: Parsed) {
        if let Parsed::Unknown(kind) = parsed {
            *self.stats.unknown.entry(kind).or_default() += 1;
        }
    }

    fn flush(&mut self, now: Timestamp, events: &mut Vec<AgentEvent>) {
        let mut drafts = std::mem::take(&mut self.drafts);
        for draft in drafts.drain(..) {
            let event = self.stamp(draft, now);
            events.push(event);
        }
        // Hand the emptied buffer back so its allocation is reused for the next line.
        self.drafts = drafts;
    }

    fn stamp(&mut self, draft: Draft, now: Timestamp) -> AgentEvent {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.events += 1;
        AgentEvent {
            kind: draft.kind,
            agent: self.agent.clone(),
            worker: self.worker.clone(),
            task: self.task.clone(),
            seq,
            timestamp: draft.timestamp.unwrap_or(now),
            payload: draft.payload,
        }
    }
}

/// A line that ends in a stream event (a JSON object with a `type`, as every CLI's events
/// have) with text before it: the text and the object. A log line quoting some other object
/// (Gemini's `_ApiError: {"error":...}`) stays a log line. Tries the first few `{` only.
fn object_after_text(line: &str) -> Option<(&str, Value)> {
    if !line.ends_with('}') {
        return None;
    }
    line.match_indices('{')
        .take(8)
        .filter(|(at, _)| *at > 0)
        .find_map(|(at, _)| match serde_json::from_str::<Value>(&line[at..]) {
            Ok(value @ Value::Object(_)) if value.get("type").is_some_and(Value::is_string) => {
                Some((line[..at].trim(), value))
            }
            _ => None,
        })
}

/// An object, or an array of values; not a bracketed tag such as `[SandboxDebug]` or `[ERROR]`.
fn looks_like_json(line: &str) -> bool {
    match line.as_bytes().first() {
        Some(b'{') => true,
        Some(b'[') => matches!(
            line[1..].trim_start().as_bytes().first(),
            Some(b'{' | b'[' | b']' | b'"') | None
        ),
        _ => false,
    }
}

/// Removes ANSI/VT escape sequences (CSI, OSC, two-byte escapes) that a CLI writing to a
/// terminal may put around its JSON lines.
pub fn strip_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // CSI: parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: ends at BEL or ESC \.
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: AgentKind, input: &[u8]) -> (Vec<AgentEvent>, Vec<LineIssue>, NormalizeStats) {
        let mut n = Normalizer::with_limit(kind, "w1", Some("t1"), 64);
        let (mut events, mut issues) = (Vec::new(), Vec::new());
        n.push(input, Timestamp(5), &mut events, &mut issues);
        n.finish(None, Timestamp(6), &mut events, &mut issues);
        (events, issues, n.stats().clone())
    }

    #[test]
    fn stamps_identity_and_sequence() {
        let (events, issues, _) = run(
            AgentKind::Gemini,
            b"{\"type\":\"init\",\"session_id\":\"s\",\"model\":\"m\"}\r\n\r\nhello\n",
        );
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].seq, events[1].seq, events[0].timestamp),
            (0, 1, Timestamp(5))
        );
        assert_eq!(&*events[0].worker, "w1");
        assert_eq!(events[0].task.as_deref(), Some("t1"));
        assert_eq!(&*events[0].agent, "gemini");
        assert_eq!(
            issues,
            vec![LineIssue {
                line_number: 3,
                problem: Problem::NotJson
            }]
        );
    }

    #[test]
    fn bad_lines_are_reported_and_kept() {
        let (events, issues, stats) = run(
            AgentKind::Codex,
            b"{\"type\":\"turn.started\"\n\xff\xfeplain\n{\"type\":\"brand.new\"}\n",
        );
        assert!(matches!(issues[0].problem, Problem::Malformed(_)));
        assert_eq!(issues[1].problem, Problem::InvalidUtf8);
        assert_eq!(stats.unknown.get("brand.new"), Some(&1));
        assert_eq!(
            events.len(),
            2,
            "malformed and non-JSON lines are kept as log lines"
        );
    }

    #[test]
    fn keys_echoed_before_a_json_line_do_not_lose_its_event() {
        let (events, issues, stats) = run(
            AgentKind::Claude,
            b"yes\r{\"type\":\"result\",\"subtype\":\"success\",\"result\":\"done\"}\nab{c {\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s\"}\n",
        );
        assert_eq!(
            issues.iter().map(|i| &i.problem).collect::<Vec<_>>(),
            [&Problem::LeadingText, &Problem::LeadingText]
        );
        assert_eq!(stats.not_json + stats.malformed, 0);
        assert!(events.iter().any(|e| e.text() == "yes"), "{events:?}");
        assert!(
            events.iter().any(|e| e.phase() == Some("init")),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e.str_field("result") == Some("done") || e.text().contains("done")),
            "{events:?}"
        );
    }

    #[test]
    fn oversize_lines_become_one_error_event() {
        let mut long = vec![b'{'; 200];
        long.push(b'\n');
        let (events, issues, stats) = run(AgentKind::Claude, &long);
        assert_eq!(stats.oversize, 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventType::Error);
        assert_eq!(issues[0].problem, Problem::Oversize { bytes: 200 });
    }

    #[test]
    fn a_pretty_printed_document_is_read_as_one() {
        let doc = b"warning first\n{\n  \"type\": \"init\",\n  \"nested\": {\n    \"a\": 1\n  }\n}\nafter\n";
        let (events, issues, stats) = run(AgentKind::Gemini, doc);
        let kinds: Vec<EventType> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventType::Status, EventType::Status, EventType::Status]
        );
        assert_eq!(events[1].phase(), Some("init"));
        assert_eq!(stats.not_json, 2, "only the two plain lines: {issues:?}");
        // One that never closes is kept line by line.
        let (events, _, _) = run(AgentKind::Gemini, b"{\n  \"a\": 1,\n");
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn terminal_escapes_around_json_are_removed() {
        assert_eq!(
            strip_terminal_escapes("\u{1b}[?25l{\"a\":1}\u{1b}]0;title\u{7}\u{1b}[0m"),
            "{\"a\":1}"
        );
    }
}
