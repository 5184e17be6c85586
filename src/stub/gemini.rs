//! The Gemini API (generativelanguage v1beta) as Gemini CLI calls it:
//! `models/{model}:streamGenerateContent?alt=sse` for the conversation, `:generateContent` for
//! side calls (the routing classifier, the next-speaker check), `:countTokens`; and its error
//! bodies (`google.rpc.Status`).

use serde_json::{Value, json};

use super::anthropic::pieces;
use super::conversation::{Ending, Facts, HttpError, OVER_TEXT, Rendered, value_after};
use crate::scenario::{Action, ApiError, Step};

/// Reads a generateContent request; the model is in the path.
pub fn facts(body: &Value, model: &str, stream: bool) -> Facts {
    let contents = body["contents"].as_array().map_or(&[][..], Vec::as_slice);
    let tools: Vec<String> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["functionDeclarations"].as_array())
        .flatten()
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    let user_texts: Vec<&str> = contents
        .iter()
        .filter(|c| c["role"] == "user")
        .filter_map(|c| c["parts"].as_array())
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect();
    let prompt = user_texts
        .iter()
        .find(|t| !t.trim_start().starts_with("<session_context>"))
        .map(|t| t.to_string())
        .unwrap_or_default();
    let workdir = user_texts.iter().find_map(|t| workspace_dir(t));
    let tool_results = contents
        .iter()
        .filter_map(|c| c["parts"].as_array())
        .flatten()
        .filter(|p| p.get("functionResponse").is_some())
        .count();
    Facts {
        model: model.to_string(),
        prompt,
        workdir,
        tool_results,
        main: !tools.is_empty(),
        tools,
        stream,
    }
}

/// The first workspace directory in Gemini's session context.
fn workspace_dir(text: &str) -> Option<String> {
    if let Some(at) = text.find("Workspace Directories:") {
        return value_after(&text[at..], "\n  - ").map(str::to_string);
    }
    value_after(text, "I'm currently working in the directory:").map(str::to_string)
}

/// Gemini CLI's tool for an action.
fn function_call(action: &Action, facts: &Facts) -> Value {
    let (name, args) = match action {
        Action::Run { command } => (
            "run_shell_command",
            json!({"command": command, "description": format!("Run {command}")}),
        ),
        Action::Write { path, content } => (
            "write_file",
            json!({"file_path": facts.absolute(path), "content": content}),
        ),
        Action::Edit { path, old, new } => (
            "replace",
            json!({"file_path": facts.absolute(path), "old_string": old, "new_string": new,
                   "instruction": format!("Replace {old:?} with {new:?}.")}),
        ),
        Action::Read { path } => ("read_file", json!({"file_path": facts.absolute(path)})),
    };
    json!({"functionCall": {"name": name, "args": args}})
}

fn chunk(parts: Vec<Value>, model: &str) -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
           "modelVersion": model})
}

fn usage(facts: &Facts) -> Value {
    let prompt = 150 + facts.prompt.len() / 4 + 70 * facts.tool_results;
    json!({"promptTokenCount": prompt, "candidatesTokenCount": 20,
           "totalTokenCount": prompt + 20, "cachedContentTokenCount": 0})
}

/// The turn as response chunks, and how the stream ends.
fn chunks(steps: &[Step], facts: &Facts) -> (Vec<Value>, Ending) {
    let mut out = Vec::new();
    let mut ending = Ending::Complete;
    for step in steps {
        match step {
            Step::Think(text) => out.push(chunk(
                vec![json!({"text": text, "thought": true})],
                &facts.model,
            )),
            Step::Say(text) | Step::Answer(text) => {
                let mut text = text.clone();
                if matches!(step, Step::Say(_)) {
                    text.push('\n');
                }
                for piece in pieces(&text) {
                    out.push(chunk(vec![json!({"text": piece})], &facts.model));
                }
            }
            Step::Act(action) | Step::Blocked(action) => {
                out.push(chunk(vec![function_call(action, facts)], &facts.model));
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
    if out.is_empty() && ending == Ending::Complete {
        out.push(chunk(vec![json!({"text": OVER_TEXT})], &facts.model));
    }
    if ending == Ending::Complete
        && let Some(last) = out.last_mut()
    {
        last["candidates"][0]["finishReason"] = json!("STOP");
        last["usageMetadata"] = usage(facts);
    }
    (out, ending)
}

/// A turn as `streamGenerateContent?alt=sse` sends it.
pub fn stream(steps: &[Step], facts: &Facts) -> Rendered {
    let (chunks, ending) = chunks(steps, facts);
    Rendered {
        frames: chunks
            .into_iter()
            .map(|c| format!("data: {c}\r\n\r\n"))
            .collect(),
        ending,
    }
}

/// A turn as one `generateContent` response.
pub fn response(steps: &[Step], facts: &Facts) -> Value {
    let (chunks, _) = chunks(steps, facts);
    let parts: Vec<Value> = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"].as_array())
        .flatten()
        .cloned()
        .collect();
    json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
           "usageMetadata": usage(facts), "modelVersion": facts.model})
}

/// The answer to a side call: the routing classifier and the next-speaker check both read
/// their fields from one JSON text (without the complexity fields, Gemini CLI logs a ZodError).
pub fn side_response(facts: &Facts) -> Value {
    let text = json!({"reasoning": "stub model", "model_choice": "flash",
                      "complexity_reasoning": "stub model", "complexity_score": 10,
                      "next_speaker": "user"})
    .to_string();
    response(&[Step::Answer(text)], facts)
}

/// The HTTP status Google uses for `error` (it has no 529).
pub fn http_status(error: ApiError) -> u16 {
    match error {
        ApiError::Overloaded => 503,
        other => other.http_status(),
    }
}

/// The JSON error body (`google.rpc.Status`) for `error`.
pub fn error_body(error: ApiError) -> Value {
    let code = http_status(error);
    let (status, message) = match error {
        ApiError::BadRequest => (
            "INVALID_ARGUMENT",
            "The request was refused by the model API.",
        ),
        ApiError::Unauthorized => (
            "UNAUTHENTICATED",
            "API key not valid. Please pass a valid API key.",
        ),
        ApiError::RateLimited { .. } => (
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        ApiError::ServerError => ("INTERNAL", "An internal error has occurred."),
        ApiError::Overloaded => (
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        ApiError::UsageLimit { .. } => (
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
        ),
    };
    let mut details = Vec::new();
    if let ApiError::UsageLimit { .. } = error {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}));
    }
    if let Some(secs) = error.retry_after_secs() {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": format!("{secs}s")}));
    }
    let mut body = json!({"error": {"code": code, "message": message, "status": status}});
    if !details.is_empty() {
        body["error"]["details"] = json!(details);
    }
    body
}

/// The HTTP answer for `error`.
pub fn error(error: ApiError) -> HttpError {
    HttpError {
        status: http_status(error),
        headers: Vec::new(),
        body: error_body(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Value {
        json!({"contents": [
                {"role": "user", "parts": [
                    {"text": "<session_context>\n- **Workspace Directories:**\n  - /tmp/w\n- **Directory Structure:**\n</session_context>"},
                    {"text": "add a health endpoint"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "run_shell_command", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command", "response": {}}}]}],
               "tools": [{"functionDeclarations": [{"name": "read_file"}, {"name": "write_file"}]}]})
    }

    #[test]
    fn reads_the_prompt_workdir_and_tool_results() {
        let f = facts(&request(), "gemini-3.8-flash", true);
        assert_eq!(f.prompt, "add a health endpoint");
        assert_eq!(f.workdir.as_deref(), Some("/tmp/w"));
        assert_eq!(f.tool_results, 1);
        assert_eq!(f.tools, ["read_file", "write_file"]);
    }

    #[test]
    fn the_last_chunk_stops_with_usage() {
        let f = facts(&request(), "m", true);
        let r = stream(&[Step::Answer("All done now.".into())], &f);
        let last = r.frames.last().unwrap();
        assert!(last.starts_with("data: {") && last.ends_with("\r\n\r\n"));
        assert!(last.contains(r#""finishReason":"STOP""#));
        assert!(last.contains("usageMetadata"));
    }

    #[test]
    fn errors_are_rpc_statuses() {
        let e = error(ApiError::RateLimited {
            retry_after_secs: 2,
        });
        assert_eq!(e.status, 429);
        assert_eq!(e.body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(e.body["error"]["details"][0]["retryDelay"], "2s");
        assert_eq!(http_status(ApiError::Overloaded), 503);
    }
}
