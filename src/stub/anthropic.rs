//! The Anthropic Messages API as Claude Code calls it (`POST /v1/messages?beta=true`, streamed):
//! what a request says, a story turn as SSE (`message_start`, `content_block_*` with
//! `text_delta`, `thinking_delta` and `input_json_delta`, `message_delta` with usage,
//! `message_stop`), and the API's error bodies.

use serde_json::{Value, json};

use super::conversation::{Ending, Facts, HttpError, OVER_TEXT, Rendered, value_after};
use crate::scenario::{Action, ApiError, Step};

/// Reads a Messages request.
pub fn facts(body: &Value) -> Facts {
    let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let tools: Vec<String> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    let prompt = messages
        .iter()
        .find(|m| m["role"] == "user")
        .map(|m| user_text(&m["content"]))
        .unwrap_or_default();
    let tool_results = messages
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .count();
    // Claude states it in the system prompt (some versions in a system-role message).
    let workdir = std::iter::once(texts(&body["system"]))
        .chain(messages.iter().map(|m| texts(&m["content"])))
        .find_map(|t| value_after(&t, "Primary working directory:").map(str::to_string));
    Facts {
        model: body["model"].as_str().unwrap_or("claude").to_string(),
        prompt,
        workdir,
        tool_results,
        main: !tools.is_empty(),
        tools,
        stream: body["stream"].as_bool().unwrap_or(false),
    }
}

/// The user's own words: text blocks that are not the CLI's `<system-reminder>` context.
fn user_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .filter(|t| !t.trim_start().starts_with("<system-reminder>"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Every text in a string-or-blocks value, joined.
fn texts(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// One content block of the reply.
enum Block {
    Thinking(String),
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// The turn's content blocks, how it stops, and how the stream ends.
fn blocks(steps: &[Step], facts: &Facts, seed: u64) -> (Vec<Block>, &'static str, Ending) {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Think(t) => out.push(Block::Thinking(t.clone())),
            // Under `--json-schema` Claude offers a StructuredOutput tool and insists the model
            // call it: a JSON answer goes there, and the next turn closes the story.
            Step::Answer(t) if facts.offers("StructuredOutput") => {
                match serde_json::from_str::<Value>(t) {
                    Ok(input) if input.is_object() => {
                        let id = format!("toolu_stub{seed:06}{i:02}");
                        out.push(Block::ToolUse {
                            id,
                            name: "StructuredOutput".into(),
                            input,
                        });
                        return (out, "tool_use", Ending::Complete);
                    }
                    _ => out.push(Block::Text(t.clone())),
                }
            }
            Step::Say(t) | Step::Answer(t) => out.push(Block::Text(t.clone())),
            Step::Act(action) | Step::Blocked(action) => {
                let (name, input) = tool(action, facts);
                let id = format!("toolu_stub{seed:06}{i:02}");
                out.push(Block::ToolUse {
                    id,
                    name: name.into(),
                    input,
                });
                return (out, "tool_use", Ending::Complete);
            }
            // Claude names an MCP server's tools `mcp__SERVER__TOOL`.
            Step::Mcp { tool, arguments } => {
                let id = format!("toolu_stub{seed:06}{i:02}");
                out.push(Block::ToolUse {
                    id,
                    name: format!("mcp__{}__{tool}", crate::agents::ORCH_MCP_SERVER),
                    input: arguments.clone(),
                });
                return (out, "tool_use", Ending::Complete);
            }
            Step::Hang => return (out, "end_turn", Ending::Hang),
            Step::Crash => return (out, "end_turn", Ending::Crash),
            Step::Wait { .. } | Step::Fail { .. } => {}
        }
    }
    if out.is_empty() {
        out.push(Block::Text(OVER_TEXT.into()));
    }
    (out, "end_turn", Ending::Complete)
}

/// Claude Code's tool for an action.
fn tool(action: &Action, facts: &Facts) -> (&'static str, Value) {
    match action {
        Action::Run { command } => (
            "Bash",
            json!({"command": command, "description": format!("Run {command}")}),
        ),
        Action::Write { path, content } => (
            "Write",
            json!({"file_path": facts.absolute(path), "content": content}),
        ),
        Action::Edit { path, old, new } => (
            "Edit",
            json!({"file_path": facts.absolute(path), "old_string": old, "new_string": new, "replace_all": false}),
        ),
        Action::Read { path } => ("Read", json!({"file_path": facts.absolute(path)})),
    }
}

fn usage(facts: &Facts, output: usize) -> Value {
    json!({"input_tokens": 100 + facts.prompt.len() / 4 + 60 * facts.tool_results,
           "output_tokens": output, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

fn sse(event: &str, data: Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// A turn as the streamed Messages API sends it.
pub fn stream(steps: &[Step], facts: &Facts, seed: u64) -> Rendered {
    let (blocks, stop_reason, ending) = blocks(steps, facts, seed);
    let mut frames = vec![
        sse(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": format!("msg_stub{seed:06}"), "type": "message", "role": "assistant",
                "model": facts.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": usage(facts, 1)}}),
        ),
        sse("ping", json!({"type": "ping"})),
    ];
    let mut words = 0;
    for (index, block) in blocks.iter().enumerate() {
        let delta = |delta: Value| {
            sse(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            )
        };
        let start = |block: Value| {
            sse(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": block}),
            )
        };
        match block {
            Block::Thinking(text) => {
                frames.push(start(
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                ));
                frames.push(delta(json!({"type": "thinking_delta", "thinking": text})));
                frames.push(delta(
                    json!({"type": "signature_delta", "signature": "stub"}),
                ));
            }
            Block::Text(text) => {
                frames.push(start(json!({"type": "text", "text": ""})));
                for piece in pieces(text) {
                    words += 1;
                    frames.push(delta(json!({"type": "text_delta", "text": piece})));
                }
            }
            Block::ToolUse { id, name, input } => {
                frames.push(start(
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                ));
                let text = input.to_string();
                let half = text
                    .char_indices()
                    .nth(text.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                for part in [&text[..half], &text[half..]] {
                    frames.push(delta(
                        json!({"type": "input_json_delta", "partial_json": part}),
                    ));
                }
            }
        }
        frames.push(sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    if ending == Ending::Complete {
        frames.push(sse(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                   "usage": {"output_tokens": 10 + words}}),
        ));
        frames.push(sse("message_stop", json!({"type": "message_stop"})));
    }
    Rendered { frames, ending }
}

/// A turn as one JSON message (`stream: false`).
pub fn message(steps: &[Step], facts: &Facts, seed: u64) -> Value {
    let (blocks, stop_reason, _) = blocks(steps, facts, seed);
    let content: Vec<Value> = blocks
        .into_iter()
        .map(|b| match b {
            Block::Thinking(t) => json!({"type": "thinking", "thinking": t, "signature": "stub"}),
            Block::Text(t) => json!({"type": "text", "text": t}),
            Block::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        })
        .collect();
    json!({"id": format!("msg_stub{seed:06}"), "type": "message", "role": "assistant",
           "model": facts.model, "content": content, "stop_reason": stop_reason,
           "stop_sequence": null, "usage": usage(facts, 12)})
}

/// Text in the small pieces a model streams: a few words at a time.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    words.chunks(4).map(|c| c.concat()).collect()
}

/// The answer to a side request (a title, a summary): a short JSON text.
pub fn side_message(facts: &Facts, seed: u64) -> Value {
    message(
        &[Step::Answer(r#"{"title": "Stub session"}"#.into())],
        facts,
        seed,
    )
}

/// The `error.type` and message of the API's error body for `error`.
pub fn error_type_and_message(error: ApiError) -> (&'static str, &'static str) {
    match error {
        ApiError::BadRequest => (
            "invalid_request_error",
            "The request was refused by the model API.",
        ),
        ApiError::Unauthorized => ("authentication_error", "invalid x-api-key"),
        ApiError::RateLimited { .. } => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization. Please wait and try again.",
        ),
        ApiError::ServerError => ("api_error", "Internal server error"),
        ApiError::Overloaded => ("overloaded_error", "Overloaded"),
        ApiError::UsageLimit { .. } => (
            "rate_limit_error",
            "You have reached your usage limit for this period.",
        ),
    }
}

/// The HTTP answer for `error`, with the headers Claude Code reads.
pub fn error(error: ApiError, now_secs: u64) -> HttpError {
    let (kind, message) = error_type_and_message(error);
    let mut headers = vec![("request-id".to_string(), "req_stub".to_string())];
    if let Some(secs) = error.retry_after_secs() {
        headers.push(("retry-after".into(), secs.to_string()));
    }
    if let ApiError::UsageLimit { resets_in_secs } = error {
        headers.push((
            "anthropic-ratelimit-unified-status".into(),
            "rejected".into(),
        ));
        headers.push((
            "anthropic-ratelimit-unified-reset".into(),
            (now_secs + resets_in_secs).to_string(),
        ));
    }
    HttpError {
        status: error.http_status(),
        headers,
        body: json!({"type": "error", "error": {"type": kind, "message": message}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Value {
        json!({
            "model": "claude-opus-5-5", "stream": true,
            "system": [{"type": "text", "text": "# Environment\n - Primary working directory: /tmp/w\n - Is a git repository: true"}],
            "tools": [{"name": "Bash"}, {"name": "Write"}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>\ncontext\n</system-reminder>"},
                    {"type": "text", "text": "add a health endpoint"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}
            ]
        })
    }

    #[test]
    fn reads_the_prompt_workdir_and_tool_results() {
        let f = facts(&request());
        assert_eq!(f.prompt, "add a health endpoint");
        assert_eq!(f.workdir.as_deref(), Some("/tmp/w"));
        assert_eq!(f.tool_results, 1);
        assert_eq!(f.tools, ["Bash", "Write"]);
        assert!(f.main && f.stream);
    }

    #[test]
    fn a_tool_turn_streams_a_tool_use_block_and_stops_for_its_result() {
        let f = facts(&request());
        let steps = [
            Step::Say("I'll write it.".into()),
            Step::Act(Action::Write {
                path: "notes/a.md".into(),
                content: "x".into(),
            }),
        ];
        let r = stream(&steps, &f, 7);
        assert_eq!(r.ending, Ending::Complete);
        let all = r.frames.concat();
        assert!(all.starts_with("event: message_start\n"));
        assert!(all.contains(r#""name":"Write""#));
        let input: String = r
            .frames
            .iter()
            .filter_map(|f| f.split_once("data: "))
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d.trim()).ok())
            .filter_map(|d| d["delta"]["partial_json"].as_str().map(str::to_string))
            .collect();
        let input: Value = serde_json::from_str(&input).unwrap();
        assert_eq!(input["file_path"], "/tmp/w/notes/a.md");
        assert!(all.contains(r#""stop_reason":"tool_use""#));
        assert!(all.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    }

    #[test]
    fn errors_carry_the_status_type_and_retry_after() {
        let e = error(
            ApiError::RateLimited {
                retry_after_secs: 3,
            },
            0,
        );
        assert_eq!(e.status, 429);
        assert_eq!(e.body["error"]["type"], "rate_limit_error");
        assert!(e.headers.contains(&("retry-after".into(), "3".into())));
        assert_eq!(error(ApiError::Overloaded, 0).status, 529);
    }
}
