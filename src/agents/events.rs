//! `events`: a command that already prints `AgentEvent` JSON lines (a custom agent, a script).
//! Its events pass through with their type, payload and time; identity and sequence are ours.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::draft::{Draft, one_line, owned_str, take};
use super::{Adapter, Launch, LaunchSpec, Parsed};
use crate::event::{EventType, Payload, optional_str};
use crate::timestamp::Timestamp;

/// Replaced by the prompt in the profile's arguments; the prompt is also in `ORCHESTRATE_PROMPT`.
pub const PROMPT_PLACEHOLDER: &str = "{prompt}";

pub fn launch(spec: &LaunchSpec) -> Launch {
    let mut l = Launch::new(spec);
    l.args(
        spec.extra_args
            .iter()
            .map(|a| a.replace(PROMPT_PLACEHOLDER, &spec.prompt)),
    );
    l.env
        .push(("ORCHESTRATE_PROMPT".into(), spec.prompt.clone()));
    l.env.push((
        "ORCHESTRATE_WORKDIR".into(),
        spec.workdir.display().to_string(),
    ));
    l
}

/// An event line, typed: its type, payload and time; identity and sequence (ours to stamp)
/// skipped unread.
#[derive(Deserialize)]
struct EventLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// Anything but an object (or null) fails the typed read: the general way reads it.
    #[serde(default)]
    payload: Option<Payload>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    timestamp: Option<Cow<'a, str>>,
}

#[derive(Default)]
pub struct EventsAdapter;

impl Adapter for EventsAdapter {
    fn on_line(&mut self, line: &str, out: &mut Vec<Draft>) -> Option<Parsed> {
        let parsed = serde_json::from_str::<EventLine<'_>>(line).ok()?;
        let Some(kind) = worker_type(&parsed.kind) else {
            return Some(Parsed::Unknown(parsed.kind.into_owned()));
        };
        out.push(draft(
            kind,
            parsed.payload.unwrap_or_default(),
            parsed.timestamp.as_deref(),
        ));
        Some(Parsed::Handled)
    }

    fn on_json(&mut self, mut v: Value, out: &mut Vec<Draft>) -> Parsed {
        let type_name = owned_str(take(&mut v, "type"));
        let Some(kind) = worker_type(&type_name) else {
            return Parsed::Unknown(type_name);
        };
        let payload = match take(&mut v, "payload") {
            Value::Object(map) => map.into(),
            _ => Payload::new(),
        };
        out.push(draft(
            kind,
            payload,
            v.get("timestamp").and_then(Value::as_str),
        ));
        Parsed::Handled
    }
}

/// Decisions, recoveries and control belong to the coordinator, never to a worker.
fn worker_type(name: &str) -> Option<EventType> {
    name.parse::<EventType>()
        .ok()
        .filter(|k| k.is_worker_type())
}

fn draft(kind: EventType, mut payload: Payload, timestamp: Option<&str>) -> Draft {
    if !payload.get("text").is_some_and(Value::is_string) {
        let text = ["message", "summary", "title"]
            .iter()
            .find_map(|k| payload.get(k).and_then(Value::as_str))
            .map(one_line)
            .unwrap_or_else(|| kind.to_string());
        payload.insert("text", Value::String(text));
    }
    Draft {
        kind,
        payload,
        timestamp: timestamp.and_then(Timestamp::parse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passes_type_payload_and_time_through() {
        let mut out = Vec::new();
        let line = json!({"type":"finding","agent":"x","worker":"y","seq":9,
                          "timestamp":"2026-11-21T18:00:00Z","payload":{"text":"t","severity":"high"}});
        assert_eq!(EventsAdapter.on_json(line, &mut out), Parsed::Handled);
        assert_eq!(out[0].kind, EventType::Finding);
        assert_eq!(out[0].payload["severity"], json!("high"));
        assert_eq!(out[0].timestamp, Timestamp::parse("2026-11-21T18:00:00Z"));
        assert_eq!(
            EventsAdapter.on_json(json!({"type":"weird"}), &mut out),
            Parsed::Unknown("weird".into())
        );
    }

    #[test]
    fn the_prompt_fills_the_placeholder() {
        let spec = LaunchSpec {
            program: vec!["./agent.sh".into()],
            prompt: "p".into(),
            extra_args: vec!["--task={prompt}".into()],
            ..LaunchSpec::default()
        };
        let l = launch(&spec);
        assert_eq!(l.argv, ["./agent.sh", "--task=p"]);
        assert_eq!(l.env_value("ORCHESTRATE_PROMPT"), Some("p"));
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn event_lines_read_typed_give_what_the_general_way_gives() {
        let fixture = include_str!("../../tests/fixtures/events-stream.jsonl");
        let mut lines: Vec<&str> = fixture.lines().collect();
        lines.extend([
            r#"{"type":"finding","payload":null,"timestamp":7}"#,
            r#"{"type":"finding","payload":[1],"timestamp":"2026-11-21T18:00:00Z"}"#,
            r#"{"type":"progress","payload":{"text":5,"title":"t\u00e9"},"timestamp":"not a time"}"#,
            r#"{"type":"progress","type":"finding","payload":{}}"#,
            r#"{"type":"task","payload":{"text":"a"},"payload":{"text":"b"}}"#,
            r#"{"payload":{"message":"keys after"},"type":"blocker"}"#,
            r#"{"type":"control","payload":{}}"#,
        ]);
        let (mut by_value, mut by_line) = (Vec::new(), Vec::new());
        let (mut unknown, mut unknown_read_typed) = (0, 0);
        for line in lines {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                continue; // The fixture's malformed line: neither way reads it.
            };
            let general_answer = EventsAdapter.on_json(value.clone(), &mut by_value);
            let typed_answer = EventsAdapter.on_line(line, &mut by_line);
            if let Parsed::Unknown(_) = &general_answer {
                unknown += 1;
            }
            if let Some(Parsed::Unknown(_)) = &typed_answer {
                unknown_read_typed += 1;
            }
            let typed_answer =
                typed_answer.unwrap_or_else(|| EventsAdapter.on_json(value, &mut by_line));
            assert_eq!(general_answer, typed_answer, "{line}");
        }
        // A type a worker may not send, or none of ours, is answered without a second parse.
        assert!(unknown >= 3);
        assert_eq!(unknown_read_typed, unknown);
        assert!(by_value.len() >= 9, "{by_value:#?}");
        assert_eq!(by_value, by_line);
    }
}
