//! `Draft`: an event as an adapter produces it, before the normaliser stamps identity, order
//! and time on it; plus the payload pieces every adapter builds the same way.

use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::{EventType, Payload};
use crate::timestamp::Timestamp;

/// Longest text kept in a payload field; the raw log keeps everything.
pub const EXCERPT_CHARS: usize = 400;

#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub kind: EventType,
    pub payload: Payload,
    /// Set when the source carries its own trustworthy time (the `events` format).
    pub timestamp: Option<Timestamp>,
}

impl Draft {
    /// `text` is cut to its first line and `EXCERPT_CHARS`; borrowed, only what is kept is
    /// copied.
    pub fn new<'t>(kind: EventType, text: impl Into<Cow<'t, str>>) -> Self {
        // Most payloads have a handful of fields (a finished command eight): sized once, not grown.
        let mut payload = Payload::with_capacity(8);
        let text = text.into();
        let text = if is_short_single_line(&text) {
            text.into_owned()
        } else {
            one_line(&text)
        };
        payload.insert("text", Value::String(text));
        Draft {
            kind,
            payload,
            timestamp: None,
        }
    }

    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.payload.insert(key, value.into());
        self
    }

    /// Adds `key` only when `value` is present and not null.
    pub fn with_some(mut self, key: &'static str, value: Option<impl Into<Value>>) -> Self {
        if let Some(value) = value.map(Into::into).filter(|v| !v.is_null()) {
            self.payload.insert(key, value);
        }
        self
    }

    pub fn native(self, native: &str) -> Self {
        self.with("native", native)
    }

    pub fn text(&self) -> &str {
        self.payload
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// Already what `one_line` would return: no surrounding space, no newline, short enough.
fn is_short_single_line(text: &str) -> bool {
    text.len() <= EXCERPT_CHARS
        && memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none()
        && text.trim().len() == text.len()
}

/// First line of `text`, shortened to `EXCERPT_CHARS` characters.
pub fn one_line(text: &str) -> String {
    let first = text.trim().lines().next().unwrap_or("").trim_end();
    shorten(first, EXCERPT_CHARS)
}

/// `text` cut to at most `max` characters, marking the cut with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    // No more bytes than `max`, so no more characters either: nothing to count.
    if text.len() <= max {
        return text.to_string();
    }
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The last `EXCERPT_CHARS` characters of a tool's output, where the interesting part usually is.
pub fn tail_excerpt(text: &str) -> String {
    let trimmed = text.trim_end();
    if trimmed.len() <= EXCERPT_CHARS {
        return trimmed.to_string();
    }
    // Walked from the end: a long output costs its last characters, not a count of all.
    match trimmed.char_indices().rev().nth(EXCERPT_CHARS) {
        None => trimmed.to_string(),
        Some((at, cut)) => format!("…{}", &trimmed[at + cut.len_utf8()..]),
    }
}

/// Moves `key` out of an object value.
pub fn take(value: &mut Value, key: &str) -> Value {
    value
        .as_object_mut()
        .and_then(|m| m.remove(key))
        .unwrap_or(Value::Null)
}

/// A field a typed read kept as its text, parsed; null when it was absent. The line it came
/// from parsed already, so the text is valid JSON and the parse cannot fail.
pub fn raw_value(raw: Option<&RawValue>) -> Value {
    raw.map_or(Value::Null, |raw| {
        serde_json::from_str(raw.get()).unwrap_or(Value::Null)
    })
}

/// A string value moved out, or empty when it is not a string.
pub fn owned_str(value: Value) -> String {
    match value {
        Value::String(s) => s,
        _ => String::new(),
    }
}

/// Borrows a string field, empty when missing.
pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A token count from any of `keys` that is present.
fn count(value: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter()
        .find_map(|k| value.get(*k).and_then(Value::as_u64))
}

/// Token usage in the one shape readers use: `{input_tokens, output_tokens, cached_input_tokens}`.
/// `input_tokens` includes cached tokens for every CLI.
pub fn usage(input: u64, output: u64, cached: u64) -> Value {
    serde_json::json!({
        "input_tokens": input,
        "output_tokens": output,
        "cached_input_tokens": cached,
    })
}

/// Claude counts cache reads and writes apart from `input_tokens`.
pub fn claude_usage(native: &Value) -> Option<Value> {
    native.as_object()?;
    let fresh = count(native, &["input_tokens"]).unwrap_or(0);
    let created = count(native, &["cache_creation_input_tokens"]).unwrap_or(0);
    let read = count(native, &["cache_read_input_tokens"]).unwrap_or(0);
    let output = count(native, &["output_tokens"]).unwrap_or(0);
    Some(usage(fresh + created + read, output, read))
}

/// Codex's `turn.completed.usage` and Gemini's `result.stats` share field names.
pub fn plain_usage(native: &Value) -> Option<Value> {
    native.as_object()?;
    let input = count(native, &["input_tokens", "input"]).unwrap_or(0);
    let output = count(native, &["output_tokens"]).unwrap_or(0);
    let cached = count(native, &["cached_input_tokens", "cached"]).unwrap_or(0);
    Some(usage(input, output, cached))
}

/// A worker's report through the orchestrator's MCP tool: `{"type": "finding", "payload": {...}}`
/// or the same with the payload fields inline. Authoritative when the call completed.
pub fn reported_event(input: &Value) -> Option<Draft> {
    let kind: EventType = str_of(input, "type").parse().ok()?;
    if !kind.is_worker_type() {
        return None;
    }
    let mut payload: Payload = match input.get("payload") {
        Some(Value::Object(map)) => map.clone().into(),
        _ => {
            let mut map = input.as_object()?.clone();
            map.remove("type");
            map.into()
        }
    };
    let text = ["text", "summary", "title", "message"]
        .iter()
        .find_map(|k| payload.get(k).and_then(Value::as_str))
        .map(one_line)
        .unwrap_or_else(|| format!("{kind} reported"));
    payload.insert("text", Value::String(text));
    payload.insert("reported", Value::Bool(true));
    Some(Draft {
        kind,
        payload,
        timestamp: None,
    })
}

/// The CLI cannot reach its model API and retries: one `retrying` status per attempt, which
/// the worker's state shows as `retrying (n/m): reason` until the agent moves on.
pub fn retrying(attempt: Option<u64>, max: Option<u64>, reason: &str) -> Draft {
    let count = match (attempt, max) {
        (Some(n), Some(m)) => format!(" ({n}/{m})"),
        (Some(n), None) => format!(" ({n})"),
        _ => String::new(),
    };
    Draft::new(
        EventType::Status,
        format!("retrying{count}: {}", one_line(reason)),
    )
    .with("phase", "retrying")
    .with_some("attempt", attempt)
    .with_some("max_attempts", max)
    .with("reason", one_line(reason))
}

/// A non-JSON line: an `error` when it reads like one (so recovery can match it), otherwise a
/// `status` line of output. `blocker_markers` are phrases that mean the agent is stuck.
pub fn text_line(line: &str, blocker_markers: &[&str]) -> Draft {
    let trimmed = line.trim();
    if blocker_markers.iter().any(|m| trimmed.contains(m)) {
        return Draft::new(EventType::Blocker, trimmed)
            .with("message", trimmed)
            .with("source", "output");
    }
    if looks_like_error(trimmed) {
        return Draft::new(EventType::Error, trimmed)
            .with("message", trimmed)
            .with("fatal", false)
            .with("source", "output");
    }
    Draft::new(EventType::Status, trimmed)
        .with("phase", "output")
        .with("line", shorten(trimmed, EXCERPT_CHARS))
}

fn looks_like_error(line: &str) -> bool {
    const PREFIXES: [&str; 7] = [
        "Error", "error:", "error[", "ERROR", "[ERROR]", "fatal:", "FATAL",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
        || line.contains("panicked at")
        || line.contains("cannot be used with root/sudo privileges")
        || line.contains("Not inside a trusted directory")
        || line.contains("is not running in a trusted directory")
        || line.contains("Cannot use both --yolo")
        || line.contains("Please set an Auth method")
        || line.contains("Invalid auth method selected")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn excerpts_stay_bounded_and_keep_char_boundaries() {
        let long = "é".repeat(EXCERPT_CHARS * 2);
        assert_eq!(one_line(&long).chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(tail_excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(one_line("  first\nsecond"), "first");
        let exact = "é".repeat(EXCERPT_CHARS);
        assert_eq!(tail_excerpt(&format!("{exact}\n")), exact);
        let over = format!("ab{exact}");
        assert_eq!(tail_excerpt(&over), format!("…{exact}"));
    }

    #[test]
    fn reported_events_accept_both_shapes() {
        let nested = json!({"type": "finding", "payload": {"summary": "SQL injection in login"}});
        let inline = json!({"type": "finding", "summary": "SQL injection in login"});
        for input in [nested, inline] {
            let draft = reported_event(&input).unwrap();
            assert_eq!(draft.kind, EventType::Finding);
            assert_eq!(draft.text(), "SQL injection in login");
            assert_eq!(draft.payload["reported"], json!(true));
        }
        assert!(reported_event(&json!({"type": "decision"})).is_none());
        assert!(reported_event(&json!({"type": "nope"})).is_none());
    }

    #[test]
    fn text_lines_are_classified() {
        let e = text_line(
            "Error: When using --print, --output-format=stream-json requires --verbose",
            &[],
        );
        assert_eq!(e.kind, EventType::Error);
        assert_eq!(e.payload["fatal"], json!(false));
        let s = text_line("[SandboxDebug] hello", &[]);
        assert_eq!(s.kind, EventType::Status);
        assert_eq!(s.payload["phase"], json!("output"));
        let b = text_line(
            "x approval is not supported in exec mode",
            &["not supported in exec mode"],
        );
        assert_eq!(b.kind, EventType::Blocker);
    }

    #[test]
    fn usage_is_normalised() {
        let claude = json!({"input_tokens": 10, "cache_creation_input_tokens": 5,
                            "cache_read_input_tokens": 100, "output_tokens": 7});
        assert_eq!(claude_usage(&claude).unwrap(), usage(115, 7, 100));
        let codex =
            json!({"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122});
        assert_eq!(plain_usage(&codex).unwrap(), usage(24763, 122, 24448));
    }
}
