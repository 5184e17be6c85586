//! `events`: a command that already prints `AgentEvent` JSON lines (a custom agent, a script).
//! Its events pass through with their type, payload and time; identity and sequence are ours.

use serde_json::Value;

use super::draft::{Draft, one_line, owned_str, take};
use super::{Adapter, Launch, LaunchSpec, Parsed};
use crate::event::EventType;
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

#[derive(Default)]
pub struct EventsAdapter;

impl Adapter for EventsAdapter {
    fn on_json(&mut self, mut v: Value, out: &mut Vec<Draft>) -> Parsed {
        let type_name = owned_str(take(&mut v, "type"));
        // Decisions, recoveries and control belong to the coordinator, never to a worker.
        let Some(kind) = type_name
            .parse::<EventType>()
            .ok()
            .filter(|k| k.is_worker_type())
        else {
            return Parsed::Unknown(type_name);
        };
        let mut payload = match take(&mut v, "payload") {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        if !payload.get("text").is_some_and(Value::is_string) {
            let text = ["message", "summary", "title"]
                .iter()
                .find_map(|k| payload.get(*k).and_then(Value::as_str))
                .map(one_line)
                .unwrap_or_else(|| kind.to_string());
            payload.insert("text".into(), Value::String(text));
        }
        out.push(Draft {
            kind,
            payload,
            timestamp: v
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(Timestamp::parse),
        });
        Parsed::Handled
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
