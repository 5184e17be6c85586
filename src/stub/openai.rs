//! The OpenAI Responses API as Codex calls it (`POST /v1/responses`, streamed): what a request
//! says, a story turn as SSE (`response.created`, `response.output_item.added`/`done`,
//! `response.output_text.delta`, function and custom tool calls, `response.completed` with
//! usage, or `response.failed`), and the API's error bodies.

use serde_json::{Value, json};

use super::anthropic::pieces;
use super::conversation::{Ending, Facts, HttpError, OVER_TEXT, Rendered, value_after};
use crate::scenario::{Action, ApiError, Step};

/// Input items that carry a tool's result back to the model.
const OUTPUT_ITEMS: [&str; 3] = [
    "function_call_output",
    "custom_tool_call_output",
    "local_shell_call_output",
];

/// Reads a Responses request.
pub fn facts(body: &Value) -> Facts {
    let input = body["input"].as_array().map_or(&[][..], Vec::as_slice);
    let tools: Vec<String> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t["name"]
                .as_str()
                .or_else(|| t["function"]["name"].as_str())
                .or_else(|| t["type"].as_str())
                .map(str::to_string)
        })
        .collect();
    let user_texts: Vec<String> = input
        .iter()
        .filter(|i| i["type"] == "message" && i["role"] == "user")
        .map(|i| item_text(&i["content"]))
        .collect();
    // Codex sends its context (environment, AGENTS.md) as user messages too.
    let prompt = user_texts
        .iter()
        .find(|t| !t.starts_with('<') && !t.starts_with("# AGENTS.md"))
        .cloned()
        .unwrap_or_default();
    let workdir = user_texts
        .iter()
        .find_map(|t| value_after(t, "<cwd>").map(str::to_string));
    let tool_results = input
        .iter()
        .filter(|i| OUTPUT_ITEMS.iter().any(|k| i["type"] == *k))
        .count();
    Facts {
        model: body["model"].as_str().unwrap_or("gpt").to_string(),
        prompt,
        workdir,
        tool_results,
        main: !tools.is_empty(),
        tools,
        stream: body["stream"].as_bool().unwrap_or(false),
    }
}

fn item_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn sse(data: Value) -> String {
    let event = data["type"].as_str().unwrap_or("message").to_string();
    format!("event: {event}\ndata: {data}\n\n")
}

/// Codex's tool call for an action, as an output item.
fn tool_item(action: &Action, facts: &Facts, call_id: &str) -> Value {
    let patch = |body: String| {
        let text = format!("*** Begin Patch\n{body}*** End Patch\n");
        if facts.offers("apply_patch") {
            Some(
                json!({"type": "custom_tool_call", "name": "apply_patch", "call_id": call_id, "input": text}),
            )
        } else {
            None
        }
    };
    let via_patch = match action {
        Action::Write { path, content } => {
            patch(format!("*** Add File: {path}\n{}", prefixed(content, "+")))
        }
        Action::Edit { path, old, new } => patch(format!(
            "*** Update File: {path}\n@@\n{}{}",
            prefixed(old, "-"),
            prefixed(new, "+")
        )),
        _ => None,
    };
    if let Some(item) = via_patch {
        return item;
    }
    let command = match action {
        Action::Run { command } => command.clone(),
        Action::Read { path } => format!("cat {}", quoted(path)),
        Action::Write { path, content } => format!(
            "mkdir -p \"$(dirname {p})\" && printf '%s' {} > {p}",
            quoted(content),
            p = quoted(path)
        ),
        Action::Edit { path, old, new } => format!(
            "python3 -c 'import sys; p=sys.argv[1]; t=open(p).read(); open(p,\"w\").write(t.replace(sys.argv[2], sys.argv[3], 1))' {} {} {}",
            quoted(path),
            quoted(old),
            quoted(new)
        ),
    };
    let (name, arguments) = if facts.offers("exec_command") || !facts.offers("shell") {
        ("exec_command", json!({"cmd": command}))
    } else {
        ("shell", json!({"command": ["bash", "-lc", command]}))
    };
    json!({"type": "function_call", "name": name, "call_id": call_id,
           "arguments": arguments.to_string()})
}

/// Every line of `text` with `mark` in front, as a patch hunk wants it.
fn prefixed(text: &str, mark: &str) -> String {
    text.lines().map(|l| format!("{mark}{l}\n")).collect()
}

/// `text` as one shell word.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn message_item(id: &str, text: &str) -> Value {
    json!({"type": "message", "id": id, "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn usage(facts: &Facts) -> Value {
    let input = 200 + facts.prompt.len() / 4 + 80 * facts.tool_results;
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": input / 4},
           "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 5},
           "total_tokens": input + 30})
}

/// A turn as the streamed Responses API sends it.
pub fn stream(steps: &[Step], facts: &Facts, seed: u64) -> Rendered {
    let base = json!({"id": format!("resp_stub{seed:06}"), "object": "response",
                      "created_at": 1_700_000_000, "model": facts.model,
                      "status": "in_progress", "output": []});
    let mut frames = vec![sse(
        json!({"type": "response.created", "sequence_number": 0, "response": base}),
    )];
    let mut seq = 1;
    let mut push = |frames: &mut Vec<String>, mut event: Value| {
        event["sequence_number"] = json!(seq);
        seq += 1;
        frames.push(sse(event));
    };
    let mut items: Vec<Value> = Vec::new();
    let mut ending = Ending::Complete;
    let mut said = false;
    for (i, step) in steps.iter().enumerate() {
        let index = items.len();
        match step {
            Step::Think(text) => {
                let item = json!({"type": "reasoning", "id": format!("rs_stub{seed:06}{i:02}"),
                                  "summary": [{"type": "summary_text", "text": text}]});
                push(
                    &mut frames,
                    json!({"type": "response.output_item.done", "output_index": index, "item": item}),
                );
                items.push(item);
            }
            Step::Say(text) | Step::Answer(text) => {
                said = true;
                let id = format!("msg_stub{seed:06}{i:02}");
                let mut added = message_item(&id, "");
                added["status"] = json!("in_progress");
                added["content"] = json!([]);
                push(
                    &mut frames,
                    json!({"type": "response.output_item.added", "output_index": index, "item": added}),
                );
                for piece in pieces(text) {
                    push(
                        &mut frames,
                        json!({"type": "response.output_text.delta", "item_id": id,
                                             "output_index": index, "content_index": 0, "delta": piece}),
                    );
                }
                let item = message_item(&id, text);
                push(
                    &mut frames,
                    json!({"type": "response.output_item.done", "output_index": index, "item": item}),
                );
                items.push(item);
            }
            Step::Act(action) | Step::Blocked(action) => {
                let item = tool_item(action, facts, &format!("call_stub{seed:06}{i:02}"));
                push(
                    &mut frames,
                    json!({"type": "response.output_item.added", "output_index": index, "item": item}),
                );
                push(
                    &mut frames,
                    json!({"type": "response.output_item.done", "output_index": index, "item": item}),
                );
                items.push(item);
                break;
            }
            Step::Hang => {
                ending = Ending::Hang;
                break;
            }
            Step::Crash => {
                ending = Ending::Crash;
                break;
            }
            // Only stories for a CLI that offers orchestrate's tools hold these (Claude).
            Step::Wait { .. } | Step::Fail { .. } | Step::Mcp { .. } => {}
        }
    }
    if ending != Ending::Complete {
        return Rendered { frames, ending };
    }
    if !said && items.iter().all(|i| i["type"] == "reasoning") {
        let item = message_item(&format!("msg_stub{seed:06}"), OVER_TEXT);
        push(
            &mut frames,
            json!({"type": "response.output_item.done", "output_index": items.len(), "item": item}),
        );
        items.push(item);
    }
    let mut done = base.clone();
    done["status"] = json!("completed");
    done["output"] = json!(items);
    done["usage"] = usage(facts);
    push(
        &mut frames,
        json!({"type": "response.completed", "response": done}),
    );
    Rendered { frames, ending }
}

/// The HTTP status OpenAI uses for `error`.
pub fn http_status(error: ApiError) -> u16 {
    match error {
        ApiError::Overloaded => 503,
        other => other.http_status(),
    }
}

/// The standard reason phrase of an HTTP status, as Codex quotes it.
pub fn status_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The JSON error body for `error`.
pub fn error_body(error: ApiError) -> Value {
    let (kind, code, message) = match error {
        ApiError::BadRequest => (
            "invalid_request_error",
            "invalid_request",
            "The request was refused by the model API.",
        ),
        ApiError::Unauthorized => (
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        ),
        ApiError::RateLimited { .. } => (
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached. Please try again in 2s.",
        ),
        ApiError::ServerError => (
            "server_error",
            "server_error",
            "The server had an error while processing your request.",
        ),
        ApiError::Overloaded => (
            "server_error",
            "server_is_overloaded",
            "The server is overloaded.",
        ),
        ApiError::UsageLimit { .. } => (
            "usage_limit_reached",
            "usage_limit_reached",
            "The usage limit has been reached",
        ),
    };
    let mut body =
        json!({"error": {"message": message, "type": kind, "code": code, "param": null}});
    if let ApiError::UsageLimit { resets_in_secs } = error {
        body["error"]["resets_in_seconds"] = json!(resets_in_secs);
    }
    body
}

/// The HTTP answer for `error`.
pub fn error(error: ApiError, now_secs: u64) -> HttpError {
    let mut headers = vec![("x-request-id".to_string(), "req_stub".to_string())];
    if let Some(secs) = error.retry_after_secs() {
        headers.push(("retry-after".into(), secs.to_string()));
    }
    let mut body = error_body(error);
    if let ApiError::UsageLimit { resets_in_secs } = error {
        body["error"]["resets_at"] = json!(now_secs + resets_in_secs);
    }
    HttpError {
        status: http_status(error),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Value {
        json!({"model": "gpt-5.5", "stream": true,
        "tools": [{"type": "function", "name": "exec_command"}, {"type": "custom", "name": "apply_patch"}],
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>\n  <cwd>/tmp/w</cwd>\n</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "add a health endpoint"}]},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"}
        ]})
    }

    #[test]
    fn reads_the_prompt_workdir_and_tool_results() {
        let f = facts(&request());
        assert_eq!(f.prompt, "add a health endpoint");
        assert_eq!(f.workdir.as_deref(), Some("/tmp/w"));
        assert_eq!(f.tool_results, 1);
        assert!(f.offers("apply_patch") && f.main);
    }

    #[test]
    fn edits_go_through_apply_patch_and_commands_through_exec_command() {
        let f = facts(&request());
        let edit = tool_item(
            &Action::Edit {
                path: "n.md".into(),
                old: "- [ ] x".into(),
                new: "- [x] x".into(),
            },
            &f,
            "c",
        );
        assert_eq!(edit["type"], "custom_tool_call");
        assert_eq!(
            edit["input"],
            "*** Begin Patch\n*** Update File: n.md\n@@\n-- [ ] x\n+- [x] x\n*** End Patch\n"
        );
        let run = tool_item(
            &Action::Run {
                command: "ls".into(),
            },
            &f,
            "c",
        );
        assert_eq!(run["name"], "exec_command");
        assert_eq!(run["arguments"], r#"{"cmd":"ls"}"#);
    }

    #[test]
    fn a_final_turn_completes_with_usage() {
        let f = facts(&request());
        let r = stream(&[Step::Answer("Done.".into())], &f, 1);
        let last = r.frames.last().unwrap();
        assert!(last.starts_with("event: response.completed\n"));
        assert!(last.contains(r#""input_tokens""#));
        assert_eq!(error(ApiError::Overloaded, 0).status, 503);
    }
}
