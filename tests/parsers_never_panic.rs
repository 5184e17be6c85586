//! Property tests: no input can panic a parser. Arbitrary bytes, and arbitrary JSON shaped
//! like each CLI's messages (real type names, wrong field types), through every adapter.

use orchestrate::agents::{AgentKind, Normalizer};
use orchestrate::timestamp::Timestamp;
use proptest::prelude::*;
use serde_json::{Map, Value};

const NATIVE_TYPES: &[&str] = &[
    "system",
    "assistant",
    "user",
    "result",
    "stream_event",
    "tool_progress",
    "rate_limit_event",
    "thread.started",
    "turn.started",
    "turn.completed",
    "turn.failed",
    "item.started",
    "item.updated",
    "item.completed",
    "error",
    "request_user_input",
    "init",
    "message",
    "tool_use",
    "tool_result",
    "status",
    "progress",
    "finding",
    "milestone",
    "blocker",
    "task",
    "review",
];
const FIELD_NAMES: &[&str] = &[
    "subtype",
    "message",
    "content",
    "item",
    "type",
    "item_type",
    "text",
    "is_error",
    "usage",
    "todos",
    "items",
    "input",
    "parameters",
    "tool_use_id",
    "tool_id",
    "tool_name",
    "name",
    "id",
    "status",
    "error",
    "msg",
    "payload",
    "mcp_servers",
    "permission_denials",
    "errors",
    "event",
    "delta",
    "role",
    "changes",
    "command",
    "server",
    "tool",
    "arguments",
    "stats",
    "timestamp",
    "result",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(NATIVE_TYPES).prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELD_NAMES), inner), 0..6).prop_map(
                |fields| {
                    Value::Object(
                        fields
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect::<Map<_, _>>(),
                    )
                }
            ),
        ]
    })
}

fn native_message() -> impl Strategy<Value = Value> {
    (prop::sample::select(NATIVE_TYPES), json_value()).prop_map(|(kind, body)| {
        let mut map = match body {
            Value::Object(map) => map,
            other => Map::from_iter([("message".to_string(), other)]),
        };
        map.insert("type".into(), Value::String(kind.into()));
        Value::Object(map)
    })
}

fn run_all(bytes: &[u8], splits: &[usize]) {
    for kind in AgentKind::ALL {
        let mut n = Normalizer::with_limit(kind, "w", None, 256);
        let (mut events, mut issues) = (Vec::new(), Vec::new());
        let mut start = 0;
        for &split in splits {
            let end = (start + split).min(bytes.len());
            n.push(&bytes[start..end], Timestamp(0), &mut events, &mut issues);
            start = end;
        }
        n.push(&bytes[start..], Timestamp(0), &mut events, &mut issues);
        n.finish(None, Timestamp(0), &mut events, &mut issues);
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.seq, i as u64);
            assert!(
                event.payload.get("text").is_some_and(Value::is_string),
                "{kind}: {event:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048),
                                   splits in prop::collection::vec(0usize..300, 0..8)) {
        run_all(&bytes, &splits);
    }

    #[test]
    fn arbitrary_messages_never_panic(messages in prop::collection::vec(native_message(), 1..12),
                                      splits in prop::collection::vec(0usize..500, 0..6)) {
        let mut bytes = Vec::new();
        for m in &messages {
            bytes.extend_from_slice(m.to_string().as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        run_all(&bytes, &splits);
    }

    #[test]
    fn legacy_codex_envelopes_never_panic(body in json_value()) {
        let line = serde_json::json!({"id": "1", "msg": body}).to_string();
        run_all(line.as_bytes(), &[]);
    }
}
