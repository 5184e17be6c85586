//! Claude Code (`claude -p --output-format stream-json --verbose`): argv and stream-json
//! parser (formats doc §1; mapping table §1.12). Also reads `--output-format json` (one result
//! object, or an array of every message when verbose).

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::draft::{
    Draft, claude_usage, one_line, owned_str, raw_value, reported_event, retrying, shorten, str_of,
    tail_excerpt, take, text_line,
};
use super::stream_state::{PendingTools, TextDeltas};
use super::todo::{Todo, TodoList};
use super::{Adapter, Autonomy, Launch, LaunchSpec, ORCH_MCP_SERVER, Parsed, REPORT_TOOL};
use crate::event::{EventType, optional_str};
use crate::worker::state::ExitFacts;

/// Tool-result text that means the headless run denied a permission (§1.6, and what 2.1.330
/// says for Bash and in plan mode).
const PERMISSION_MARKERS: [&str; 5] = [
    "requested permissions to",
    "haven't granted it yet",
    "needs approval",
    "requires approval",
    "while in plan mode",
];

const DELTA_NATIVE: &str = "stream_event/text_delta";

/// A block of an assistant message, however it was read.
enum Block<'a> {
    Text(Cow<'a, str>),
    Thinking(Cow<'a, str>),
    ToolUse {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        input: Value,
    },
}

/// An assistant line, typed: what `on_assistant` reads of it, the rest skipped unread.
#[derive(Deserialize)]
struct AssistantLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<AssistantMessage<'a>>,
    /// Present and not null: a subagent's message.
    #[serde(default)]
    parent_tool_use_id: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct AssistantMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Vec<AssistantBlock<'a>>>,
}

#[derive(Deserialize)]
struct AssistantBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
}

pub fn launch(spec: &LaunchSpec) -> Launch {
    let mut l = Launch::new(spec);
    // stream-json under -p needs --verbose, or the CLI exits 1 (§1.1).
    l.args(["-p", "--output-format", "stream-json", "--verbose"]);
    match spec.autonomy {
        Autonomy::ReadOnly => l.args(["--permission-mode", "plan"]),
        Autonomy::Edit => l.args(["--permission-mode", "acceptEdits"]),
        Autonomy::Full => l.arg("--dangerously-skip-permissions"),
    };
    if let Some(model) = &spec.model {
        l.arg(format!("--model={model}"));
    }
    // The answer comes back as the result's `structured_output` (Claude has the model call
    // its StructuredOutput tool).
    if let Some(schema) = &spec.output_schema {
        l.arg(format!("--json-schema={schema}"));
    }
    // Variadic flags take the `=` form so they cannot swallow the prompt (§1.1).
    if let Some(mcp) = &spec.mcp {
        let env: serde_json::Map<String, Value> = mcp
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let config = json!({"mcpServers": {mcp.name.clone(): {
            "type": "stdio", "command": mcp.command, "args": mcp.args, "env": env,
        }}});
        let arg = format!("--mcp-config={config}");
        if mcp.env.is_empty() {
            l.arg(arg);
        } else {
            l.secret_arg(arg);
        }
        if mcp.exclusive {
            l.arg("--strict-mcp-config");
        }
        // Claude defers MCP tools behind its ToolSearch tool by default: the model would have
        // to search before it could take a lock. Orchestrate's tools are few and meant to be
        // used, so they are offered outright (a profile's own ENABLE_TOOL_SEARCH wins).
        l.env.push(("ENABLE_TOOL_SEARCH".into(), "false".into()));
        l.arg(format!("--allowedTools=mcp__{}", mcp.name));
    }
    for dir in &spec.extra_dirs {
        l.arg(format!("--add-dir={}", dir.display()));
    }
    if let Some(id) = &spec.resume {
        l.arg(format!("--resume={id}"));
    }
    l.args(spec.extra_args.iter().cloned());
    // After `--` nothing is read as a flag, even a prompt that starts with a dash.
    l.arg("--").arg(spec.prompt.clone());
    l
}

#[derive(Default)]
pub struct ClaudeAdapter {
    pending_tools: PendingTools,
    /// Tool calls already reported as blockers: one denial is one blocker, whether it shows up
    /// in `system/permission_denied`, the tool result or `result.permission_denials`.
    blocked_tools: HashSet<String>,
    /// The API's failure as the CLI's synthetic assistant message said it; the `result` that
    /// follows reports it, or `finish` does when the run died first.
    api_error: Option<String>,
    saw_result: bool,
    todos: TodoList,
    deltas: TextDeltas,
}

impl Adapter for ClaudeAdapter {
    fn on_line(&mut self, line: &str, out: &mut Vec<Draft>) -> Option<Parsed> {
        self.on_assistant_line(line, out).then_some(Parsed::Handled)
    }

    fn on_json(&mut self, mut v: Value, out: &mut Vec<Draft>) -> Parsed {
        let kind = owned_str(take(&mut v, "type"));
        if kind != "stream_event" {
            self.flush_delta(out);
        }
        match kind.as_str() {
            "system" => return self.on_system(v, out),
            "assistant" => self.on_assistant(v, out),
            "user" => self.on_user(v, out),
            "result" => self.on_result(v, out),
            "stream_event" => self.on_stream_event(&v, out),
            "tool_progress" => out.push(
                Draft::new(
                    EventType::Progress,
                    format!("{} running", str_of(&v, "tool_name")),
                )
                .native("tool_progress")
                .with("tool", str_of(&v, "tool_name"))
                .with_some("elapsed_seconds", v.get("elapsed_time_seconds").cloned()),
            ),
            "tool_use_summary" => out.push(
                Draft::new(EventType::Progress, str_of(&v, "summary")).native("tool_use_summary"),
            ),
            "rate_limit_event" => {
                let info = take(&mut v, "rate_limit_info");
                out.push(
                    Draft::new(
                        EventType::Status,
                        format!("rate limit: {}", str_of(&info, "status")),
                    )
                    .native("rate_limit_event")
                    .with("phase", "rate_limit")
                    .with("rate_limit", info),
                );
            }
            "auth_status" => {
                if let Some(error) = v.get("error").and_then(Value::as_str) {
                    out.push(
                        Draft::new(EventType::Error, format!("authentication: {error}"))
                            .native("auth_status")
                            .with("message", error)
                            .with("fatal", false),
                    );
                }
            }
            "conversation_reset" => out.push(
                Draft::new(EventType::Status, "conversation reset")
                    .native("conversation_reset")
                    .with("phase", "reset")
                    .with_some("session_id", v.get("new_conversation_id").cloned()),
            ),
            "keep_alive" | "control_request" | "control_response" | "control_cancel_request" => {}
            _ => return Parsed::Unknown(kind),
        }
        Parsed::Handled
    }

    fn on_text(&mut self, line: &str, out: &mut Vec<Draft>) {
        self.flush_delta(out);
        out.push(text_line(line, &[]));
    }

    fn finish(&mut self, _exit: Option<&ExitFacts>, out: &mut Vec<Draft>) {
        self.flush_delta(out);
        if let Some(message) = self.api_error.take().filter(|_| !self.saw_result) {
            out.push(
                Draft::new(EventType::Error, message.clone())
                    .native("assistant/error")
                    .with("message", message)
                    .with("fatal", false),
            );
        }
    }
}

impl ClaudeAdapter {
    fn on_system(&mut self, mut v: Value, out: &mut Vec<Draft>) -> Parsed {
        let subtype = owned_str(take(&mut v, "subtype"));
        let native = format!("system/{subtype}");
        let status = |text: String, phase: &str| {
            Draft::new(EventType::Status, text)
                .native(&native)
                .with("phase", phase)
        };
        match subtype.as_str() {
            "init" => {
                let model = str_of(&v, "model").to_string();
                let servers = take(&mut v, "mcp_servers");
                out.push(
                    status(format!("session started ({model})"), "init")
                        .with_some("session_id", v.get("session_id").cloned())
                        .with("model", model)
                        .with_some("cwd", v.get("cwd").cloned())
                        .with_some("permission_mode", v.get("permissionMode").cloned())
                        .with_some("version", v.get("claude_code_version").cloned())
                        .with(
                            "tools",
                            v.get("tools").and_then(Value::as_array).map_or(0, Vec::len),
                        )
                        .with("mcp_servers", servers.clone()),
                );
                for server in servers.as_array().into_iter().flatten() {
                    let state = str_of(server, "status");
                    if matches!(state, "failed" | "needs-auth") {
                        let name = str_of(server, "name");
                        out.push(
                            Draft::new(EventType::Error, format!("MCP server {name} is {state}"))
                                .native(&native)
                                .with("message", format!("MCP server {name} is {state}"))
                                .with("mcp_server", name)
                                .with("fatal", false),
                        );
                    }
                }
            }
            "status" => {
                let state = v.get("status").and_then(Value::as_str).unwrap_or("idle");
                out.push(status(format!("status: {state}"), "status"));
            }
            "api_retry" => {
                let reason = match v["error_status"].as_u64() {
                    Some(status) => format!("HTTP {status} {}", str_of(&v, "error")),
                    None => str_of(&v, "error").to_string(),
                };
                out.push(
                    retrying(v["attempt"].as_u64(), v["max_retries"].as_u64(), &reason)
                        .native(&native)
                        .with_some("retry_delay_ms", v.get("retry_delay_ms").cloned()),
                );
            }
            "compact_boundary" => {
                out.push(status("compacting the conversation".into(), "compacting"))
            }
            "session_state_changed" => match str_of(&v, "state") {
                "requires_action" => out.push(
                    Draft::new(
                        EventType::Blocker,
                        "the agent needs an answer or an approval",
                    )
                    .native(&native)
                    .with("reason", "requires_action"),
                ),
                state => out.push(status(format!("session {state}"), "session_state")),
            },
            "permission_denied" => {
                let tool = str_of(&v, "tool_name").to_string();
                if let Some(id) = v.get("tool_use_id").and_then(Value::as_str) {
                    self.blocked_tools.insert(id.to_string());
                }
                out.push(
                    Draft::new(EventType::Blocker, format!("permission denied for {tool}"))
                        .native(&native)
                        .with("reason", "permission_denied")
                        .with("tool", tool)
                        .with_some("message", v.get("message").cloned()),
                );
            }
            "task_started" | "task_updated" | "task_notification" => {
                let description = str_of(&v, "description").to_string();
                let state = match subtype.as_str() {
                    "task_started" => "started",
                    "task_updated" => v["patch"]["status"].as_str().unwrap_or("updated"),
                    _ => v
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("finished"),
                };
                let what = [
                    description.as_str(),
                    str_of(&v, "summary"),
                    str_of(&v, "task_id"),
                ]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("subagent");
                out.push(
                    Draft::new(EventType::Task, format!("subagent {state}: {what}"))
                        .native(&native)
                        .with("subagent", true)
                        .with_some("task_id", v.get("task_id").cloned())
                        .with("state", state),
                );
            }
            "task_progress" => out.push(
                Draft::new(
                    EventType::Progress,
                    format!("subagent: {}", str_of(&v, "description")),
                )
                .native(&native)
                .with("subagent", true)
                .with_some("tool", v.get("last_tool_name").cloned()),
            ),
            "informational" => {
                let content = str_of(&v, "content").to_string();
                if str_of(&v, "level") == "warning" {
                    out.push(
                        Draft::new(EventType::Error, content.clone())
                            .native(&native)
                            .with("message", content)
                            .with("fatal", false)
                            .with("severity", "warning"),
                    );
                } else {
                    out.push(status(content, "info"));
                }
            }
            "hook_response" => {
                let hook = str_of(&v, "hook_name").to_string();
                if str_of(&v, "outcome") == "error" {
                    out.push(
                        Draft::new(EventType::Error, format!("hook {hook} failed"))
                            .native(&native)
                            .with("message", tail_excerpt(str_of(&v, "stderr")))
                            .with("fatal", false),
                    );
                } else {
                    out.push(status(format!("hook {hook} ran"), "hook"));
                }
            }
            "notification" => out.push(status(str_of(&v, "text").to_string(), "notification")),
            "hook_started"
            | "thinking_tokens"
            | "commands_changed"
            | "plugin_install"
            | "elicitation_complete"
            | "background_tasks_changed" => {}
            _ => return Parsed::Unknown(native),
        }
        Parsed::Handled
    }

    fn on_assistant(&mut self, mut v: Value, out: &mut Vec<Draft>) {
        let subagent = v.get("parent_tool_use_id").is_some_and(|p| !p.is_null());
        let mut message = take(&mut v, "message");
        if let Some(error) = v.get("error").and_then(Value::as_str) {
            // A synthetic message that only says the API call failed; the result repeats it.
            let text = result_text(&message["content"]);
            self.api_error = Some(if text.is_empty() {
                format!("API error: {error}")
            } else {
                text
            });
            return;
        }
        let Value::Array(blocks) = take(&mut message, "content") else {
            return;
        };
        for mut block in blocks {
            let block = match str_of(&block, "type") {
                "text" => Block::Text(Cow::Borrowed(str_of(&block, "text"))),
                "thinking" => Block::Thinking(Cow::Borrowed(str_of(&block, "thinking"))),
                "tool_use" | "server_tool_use" => Block::ToolUse {
                    id: str_of(&block, "id").to_string().into(),
                    name: str_of(&block, "name").to_string().into(),
                    input: take(&mut block, "input"),
                },
                _ => continue,
            };
            self.on_block(block, subagent, out);
        }
    }

    /// One block of an assistant message.
    fn on_block(&mut self, block: Block<'_>, subagent: bool, out: &mut Vec<Draft>) {
        let draft = match block {
            Block::Text(text) => Draft::new(EventType::Progress, text.as_ref())
                .native("assistant/text")
                .with("kind", "message")
                .with("message", shorten(&text, 2000)),
            Block::Thinking(text) => Draft::new(EventType::Progress, text.as_ref())
                .native("assistant/thinking")
                .with("kind", "thinking"),
            Block::ToolUse { id, name, input } => match self.on_tool_use(&id, &name, input) {
                Some(draft) => draft,
                None => return,
            },
        };
        out.push(if subagent {
            draft.with("subagent", true)
        } else {
            draft
        });
    }

    /// The hottest line by far, an assistant message, read typed and borrowed instead of as a
    /// `Value`. False when the line is anything else, or anything unusual for one (an API
    /// error, a field of an unexpected type, a repeated key): the general way reads it then.
    fn on_assistant_line(&mut self, line: &str, out: &mut Vec<Draft>) -> bool {
        if !line.contains(r#""type":"assistant""#) {
            return false;
        }
        let Ok(parsed) = serde_json::from_str::<AssistantLine<'_>>(line) else {
            return false;
        };
        if parsed.kind != "assistant" || parsed.error.is_some() {
            return false;
        }
        self.flush_delta(out);
        let subagent = parsed.parent_tool_use_id.is_some();
        let Some(blocks) = parsed.message.and_then(|m| m.content) else {
            return true;
        };
        for block in blocks {
            let block = match block.kind.as_ref() {
                "text" => Block::Text(block.text.unwrap_or_default()),
                "thinking" => Block::Thinking(block.thinking.unwrap_or_default()),
                "tool_use" | "server_tool_use" => Block::ToolUse {
                    id: block.id.unwrap_or_default(),
                    name: block.name.unwrap_or_default(),
                    input: raw_value(block.input),
                },
                _ => continue,
            };
            self.on_block(block, subagent, out);
        }
        true
    }

    /// A tool call: todo lists and questions are their own events, report_event waits for its
    /// result, everything else is progress.
    fn on_tool_use(&mut self, id: &str, name: &str, input: Value) -> Option<Draft> {
        if name == "TodoWrite" {
            // Its result only acknowledges the list; the task event says everything.
            self.pending_tools.insert(id, name, Value::Null);
            let todos: Vec<Todo> = input["todos"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Todo::new(str_of(t, "content"), str_of(t, "status")))
                .collect();
            return self.todos.replace(todos, "assistant/tool_use");
        }
        if name == "AskUserQuestion" {
            let question = input["questions"][0]["question"]
                .as_str()
                .or_else(|| input["question"].as_str())
                .unwrap_or("the agent asked a question")
                .to_string();
            // Its result tells whether anyone was asked (a tool this mode does not offer gives
            // "No such tool available", which is progress and ends the wait).
            self.pending_tools.insert(id, name, Value::Null);
            self.blocked_tools.insert(id.to_string());
            return Some(
                Draft::new(EventType::Blocker, format!("question: {question}"))
                    .native("assistant/tool_use")
                    .with("reason", "question")
                    .with("tool", name)
                    .with("question", question),
            );
        }
        let summary = tool_summary(name, &input);
        // Whole, for the sandbox's second look at what ran (the summary may be cut).
        let command = input["command"].as_str().map(str::to_string);
        let path = input["file_path"]
            .as_str()
            .or_else(|| input["notebook_path"].as_str())
            .map(str::to_string);
        self.pending_tools.insert(id, name, input);
        if is_report_tool(name) {
            return None;
        }
        let text = if summary.is_empty() {
            name.to_string()
        } else {
            format!("{name}: {summary}")
        };
        Some(
            Draft::new(EventType::Progress, text)
                .native("assistant/tool_use")
                .with("kind", "tool_call")
                .with("tool", name)
                .with("tool_id", id)
                .with("detail", summary)
                .with_some("command", command)
                .with_some("path", path),
        )
    }

    fn on_user(&mut self, mut v: Value, out: &mut Vec<Draft>) {
        let mut message = take(&mut v, "message");
        let Value::Array(blocks) = take(&mut message, "content") else {
            return; // A plain string is the prompt echoed back.
        };
        // 2.1.330 says which results its permission check rejected.
        let rejected: Vec<String> = v["tool_result_meta"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["permission_decision"]["decision"] == "reject")
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        for block in blocks {
            if str_of(&block, "type") != "tool_result" {
                continue;
            }
            let id = str_of(&block, "tool_use_id").to_string();
            let is_error = block
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let output = result_text(&block["content"]);
            let (tool, input) = self.pending_tools.take(&id);
            let denied = rejected.contains(&id)
                || (is_error && PERMISSION_MARKERS.iter().any(|m| output.contains(m)));
            if denied && self.blocked_tools.contains(&id) {
                continue; // Already reported by `system/permission_denied`.
            }
            if denied {
                self.blocked_tools.insert(id.clone());
                out.push(
                    Draft::new(EventType::Blocker, format!("permission denied: {output}"))
                        .native("user/tool_result")
                        .with("reason", "permission_denied")
                        .with("tool", tool)
                        .with("tool_id", id)
                        .with("message", one_line(&output)),
                );
                continue;
            }
            if tool == "TodoWrite" && !is_error {
                continue;
            }
            if is_report_tool(&tool) {
                if let Some(draft) = reported_event(&input).filter(|_| !is_error) {
                    out.push(draft.native("mcp__orch__report_event"));
                }
                continue;
            }
            let verdict = if is_error { "failed" } else { "done" };
            out.push(
                Draft::new(EventType::Progress, format!("{tool} {verdict}"))
                    .native("user/tool_result")
                    .with("kind", "tool_result")
                    .with("tool", tool)
                    .with("tool_id", id)
                    .with("ok", !is_error)
                    .with("output", tail_excerpt(&output)),
            );
        }
    }

    fn on_result(&mut self, mut v: Value, out: &mut Vec<Draft>) {
        self.saw_result = true;
        let subtype = owned_str(take(&mut v, "subtype"));
        // Some versions report API failures as subtype "success" with is_error: true (§1.3).
        let is_error = v
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(subtype != "success");
        let usage = claude_usage(&v["usage"]);
        let cost = v
            .get("total_cost_usd")
            .or_else(|| v.get("cost_usd"))
            .cloned();
        for denial in v["permission_denials"].as_array().into_iter().flatten() {
            let id = str_of(denial, "tool_use_id");
            if self.blocked_tools.contains(id) {
                continue;
            }
            let tool = str_of(denial, "tool_name");
            out.push(
                Draft::new(EventType::Blocker, format!("permission denied for {tool}"))
                    .native("result/permission_denials")
                    .with("reason", "permission_denied")
                    .with("tool", tool)
                    .with("tool_id", id),
            );
        }
        let result_text = str_of(&v, "result").to_string();
        let errors = take(&mut v, "errors");
        let common = |draft: Draft| {
            draft
                .native(&format!("result/{subtype}"))
                .with("final", true)
                .with("subtype", subtype.as_str())
                .with_some("usage", usage.clone())
                .with_some("cost_usd", cost.clone())
                .with_some("num_turns", v.get("num_turns").cloned())
                .with_some("duration_ms", v.get("duration_ms").cloned())
                .with_some("session_id", v.get("session_id").cloned())
        };
        if is_error {
            let joined: Vec<&str> = errors
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let message = if !joined.is_empty() {
                joined.join("; ")
            } else if !result_text.is_empty() {
                result_text.clone()
            } else {
                format!("run ended with {subtype}")
            };
            out.push(
                common(Draft::new(EventType::Error, message.clone()))
                    .with("message", message)
                    .with("fatal", true)
                    .with_some("http_status", v.get("api_error_status").cloned())
                    .with("errors", errors)
                    .with_some("terminal_reason", v.get("terminal_reason").cloned())
                    .with_some(
                        "startup_failure_reason",
                        v.get("startup_failure_reason").cloned(),
                    ),
            );
        } else {
            let text = if result_text.is_empty() {
                "run complete".to_string()
            } else {
                result_text.clone()
            };
            out.push(
                common(Draft::new(EventType::Milestone, text))
                    .with("result", shorten(&result_text, 2000))
                    // `--json-schema`: the answer as the object the schema asked for.
                    .with_some("structured_output", v.get("structured_output").cloned()),
            );
        }
    }

    fn on_stream_event(&mut self, v: &Value, out: &mut Vec<Draft>) {
        let event = &v["event"];
        match str_of(event, "type") {
            "content_block_delta" => {
                if let Some(text) = event["delta"]["text"].as_str() {
                    self.deltas.push(text, DELTA_NATIVE, out);
                }
            }
            "content_block_stop" | "message_stop" => self.flush_delta(out),
            _ => {}
        }
    }

    fn flush_delta(&mut self, out: &mut Vec<Draft>) {
        self.deltas.flush(DELTA_NATIVE, out);
    }
}

fn is_report_tool(name: &str) -> bool {
    name == format!("mcp__{ORCH_MCP_SERVER}__{REPORT_TOOL}")
}

/// The part of a tool's input a person wants to see: the command, the file, the pattern.
pub(crate) fn tool_summary(name: &str, input: &Value) -> String {
    let keys: &[&str] = match name {
        "Bash" => &["command"],
        "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => &["file_path", "notebook_path"],
        "Grep" | "Glob" => &["pattern"],
        "WebFetch" => &["url"],
        "WebSearch" => &["query"],
        "Task" | "Agent" => &["description"],
        _ => &[
            "command",
            "file_path",
            "path",
            "pattern",
            "query",
            "url",
            "description",
        ],
    };
    keys.iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))
        .map(one_line)
        .unwrap_or_default()
}

/// A tool_result's content: a string, or blocks of text.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::McpServer;
    use std::path::PathBuf;

    fn spec() -> LaunchSpec {
        LaunchSpec {
            program: vec!["claude".into()],
            prompt: "-fix the bug".into(),
            workdir: PathBuf::from("/w"),
            extra_dirs: vec![PathBuf::from("/shared")],
            ..LaunchSpec::default()
        }
    }

    #[test]
    fn argv_follows_every_rule() {
        let mut s = spec();
        s.mcp = Some(McpServer {
            name: "orch".into(),
            command: "/bin/orch".into(),
            args: vec!["mcp".into()],
            env: vec![],
            exclusive: true,
        });
        s.resume = Some("-abc".into());
        let l = launch(&s);
        let argv = l.argv.join(" ");
        assert!(argv.starts_with("claude -p --output-format stream-json --verbose"));
        assert!(argv.contains("--dangerously-skip-permissions"));
        assert!(argv.contains("--add-dir=/shared"));
        assert!(argv.contains("--resume=-abc"));
        assert!(argv.contains("--strict-mcp-config --allowedTools=mcp__orch"));
        assert!(
            l.argv
                .iter()
                .any(|a| a.starts_with("--mcp-config={\"mcpServers\""))
        );
        assert_eq!(&l.argv[l.argv.len() - 2..], ["--", "-fix the bug"]);
        assert_eq!(l.cwd, PathBuf::from("/w"));
    }

    #[test]
    fn autonomy_maps_to_permission_modes() {
        let mut s = spec();
        s.autonomy = Autonomy::Edit;
        assert!(
            launch(&s)
                .argv
                .join(" ")
                .contains("--permission-mode acceptEdits")
        );
        s.autonomy = Autonomy::ReadOnly;
        assert!(launch(&s).argv.join(" ").contains("--permission-mode plan"));
    }

    #[test]
    fn is_error_wins_over_a_success_subtype() {
        let mut a = ClaudeAdapter::default();
        let mut out = Vec::new();
        let line = json!({"type":"result","subtype":"success","is_error":true,
                          "result":"API Error: Rate limit reached","session_id":"s"});
        assert_eq!(a.on_json(line, &mut out), Parsed::Handled);
        assert_eq!(out[0].kind, EventType::Error);
        assert_eq!(out[0].payload["fatal"], json!(true));
        assert_eq!(out[0].text(), "API Error: Rate limit reached");
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// Drafts of `lines` read the general way (parsed, then `on_json`), and read with the
    /// typed path first: they must be the same, line for line.
    fn both_ways(lines: &[&str]) -> (Vec<Draft>, Vec<Draft>) {
        let (mut general, mut fast) = (ClaudeAdapter::default(), ClaudeAdapter::default());
        let (mut by_value, mut by_line) = (Vec::new(), Vec::new());
        for line in lines {
            let value: Value = serde_json::from_str(line).unwrap();
            let general_answer = general.on_json(value.clone(), &mut by_value);
            let fast_answer = match fast.on_line(line, &mut by_line) {
                Some(answer) => answer,
                None => fast.on_json(value, &mut by_line),
            };
            assert_eq!(general_answer, fast_answer, "{line}");
        }
        (by_value, by_line)
    }

    #[test]
    fn an_assistant_line_read_typed_gives_what_the_general_way_gives() {
        let lines = [
            r#"{"type":"system","subtype":"init","session_id":"s","model":"m","tools":[]}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"plain"}]},"parent_tool_use_id":null}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"esc \"q\" \u00e9 \n line"},{"type":"thinking","thinking":"hm"}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls -la","description":"list"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t2","name":"TodoWrite","input":{"todos":[{"content":"a","status":"pending"}]}}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"from a subagent"}]},"parent_tool_use_id":"toolu_9"}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"server_tool_use","id":"t3","name":"WebSearch","input":{"query":"x"}},{"type":"image"}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"API Error: 529"}]},"error":"overloaded"}"#,
            r#"{"type":"assistant","message":{"content":"a string, not blocks"}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":7}]}}"#,
            r#"{"type":"assistant","type":"assistant","message":{"content":[{"type":"text","text":"twice"}]}}"#,
            r#"{"type":"assistant"}"#,
            r#"{"message":{"content":[{"text":"keys sorted","type":"text"}]},"type":"assistant"}"#,
            r#"{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":1,"output_tokens":2},"total_cost_usd":0.1}"#,
        ];
        let (general, fast) = both_ways(&lines);
        assert!(general.len() >= 9, "{general:#?}");
        assert_eq!(general, fast);
    }
}
