//! Gemini CLI (`gemini -p ... --output-format stream-json`): argv and JSONL parser (formats
//! doc §3; mapping table §3.12). Workspace-path and policy denials are blockers that name the
//! path, so recovery can relaunch with `--include-directories`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::draft::{
    Draft, one_line, owned_str, plain_usage, raw_value, reported_event, retrying, str_of,
    tail_excerpt, take, text_line,
};
use super::stream_state::{PendingTools, TextDeltas};
use super::todo::{Todo, TodoList};
use super::{
    Adapter, Autonomy, Launch, LaunchSpec, ORCH_MCP_SERVER, Parsed, REPORT_TOOL, type_among,
};
use crate::event::{EventType, optional_str};
use crate::worker::state::ExitFacts;

/// Messages of a tool call refused because a path lies outside the workspace, by version (§3.8).
pub const PATH_NOT_IN_WORKSPACE_MARKERS: [&str; 5] = [
    "Path not in workspace",
    "must be within one of the workspace directories",
    "not within any workspace director",
    "not within any of the registered workspace director",
    "is outside the workspace",
];

pub fn launch(spec: &LaunchSpec) -> Launch {
    let mut l = Launch::new(spec);
    l.args(["--output-format", "stream-json"]);
    // What each mode offers the model, headless (0.61): `default` the read tools only,
    // `auto_edit` those and write_file/replace, `yolo` everything (run_shell_command too).
    // `plan` offers the write tools as well, limited to its plan files.
    l.arg(match spec.autonomy {
        Autonomy::ReadOnly => "--approval-mode=default",
        Autonomy::Edit => "--approval-mode=auto_edit",
        Autonomy::Full => "--approval-mode=yolo",
    });
    if let Some(model) = &spec.model {
        l.args(["-m", model]);
    }
    if !spec.extra_dirs.is_empty() {
        let dirs: Vec<String> = spec
            .extra_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        l.arg(format!("--include-directories={}", dirs.join(",")));
    }
    if let Some(id) = &spec.resume {
        l.args(["--resume", id]);
    }
    // Headless Gemini refuses an untrusted folder (exit 55); the worker's folder is ours (§3.9).
    l.env
        .push(("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into()));
    if let Some(mcp) = &spec.mcp {
        // Gemini takes MCP servers only from settings files. A system settings file of our own
        // merges with the user's settings, so their auth keeps working.
        let env: serde_json::Map<String, Value> = mcp
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let settings = json!({"mcpServers": {mcp.name.clone(): {
            "command": mcp.command, "args": mcp.args, "env": env, "trust": true,
        }}});
        let path = spec.state_dir.join("gemini-system-settings.json");
        l.env.push((
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH".into(),
            path.display().to_string(),
        ));
        l.files.push((path, format!("{settings:#}\n")));
    }
    l.args(spec.extra_args.iter().cloned());
    l.arg(format!("--prompt={}", spec.prompt));
    l
}

/// A stream-json line, typed: what the hot lines (messages, tool calls, tool successes) need
/// of it, the rest skipped unread.
#[derive(Deserialize)]
struct StreamLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    delta: Option<bool>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    tool_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    tool_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    parameters: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    output: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<ToolError<'a>>,
}

/// A line of one of the rarer kinds, typed: the session's start, an error, the result. Apart
/// from `StreamLine`, so the commonest lines' struct stays small.
#[derive(Deserialize)]
struct OtherLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    session_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    severity: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stats: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<ToolError<'a>>,
}

/// The line types read typed (`on_line`): the first `STREAM_LINE_TYPES` by `StreamLine`, the
/// rest by `OtherLine`.
const TYPED_TYPES: [&str; 6] = [
    "message",
    "tool_use",
    "tool_result",
    "init",
    "error",
    "result",
];
const STREAM_LINE_TYPES: usize = 3;

/// A failed tool call's `error` (or a failed run's), typed.
#[derive(Deserialize, Default)]
struct ToolError<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "optional_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_str")]
    message: Option<Cow<'a, str>>,
}

#[derive(Default)]
pub struct GeminiAdapter {
    pending_tools: PendingTools,
    todos: TodoList,
    deltas: TextDeltas,
    /// The text of the run's fatal error, for the exit code to complete.
    fatal_seen: Option<String>,
    /// The result's error, said at the exit, which names its HTTP status: one failure, one
    /// error.
    held_result: Option<Draft>,
    /// The assistant's text since its last tool call, whole: the run's answer, put on the
    /// final milestone as `result` (as Claude's and Codex's carry theirs). Its message events
    /// carry it a line or 200 bytes at a time, trimmed, which no reader can join back (a
    /// reviewer's JSON verdict split inside a string, say).
    answer: String,
}

/// The longest answer kept for the final milestone; the raw log keeps everything.
const ANSWER_LIMIT: usize = 64 << 10;

impl Adapter for GeminiAdapter {
    /// The `TYPED_TYPES`, read typed; any other line (or anything unusual about one of them)
    /// goes the general way.
    fn on_line(&mut self, line: &str, out: &mut Vec<Draft>) -> Option<Parsed> {
        let handled = match type_among(line, &TYPED_TYPES)? {
            at if at >= STREAM_LINE_TYPES => self.on_other_line(line, out),
            _ => self.on_stream_line(line, out),
        };
        handled.then_some(Parsed::Handled)
    }

    fn on_json(&mut self, mut v: Value, out: &mut Vec<Draft>) -> Parsed {
        let kind = owned_str(take(&mut v, "type"));
        let is_delta = kind == "message" && str_of(&v, "role") == "assistant";
        if !is_delta {
            self.flush_delta(out);
        }
        match kind.as_str() {
            "init" => out.push(session_init(
                str_of(&v, "model"),
                v.get("session_id").cloned(),
                v.get("model").cloned(),
            )),
            "message" if is_delta => {
                let delta = v.get("delta").and_then(Value::as_bool).unwrap_or(false);
                self.on_assistant_message(str_of(&v, "content"), delta, out);
            }
            "message" => out.push(prompt_echo(str_of(&v, "content"))),
            "tool_use" => {
                let name = str_of(&v, "tool_name").to_string();
                let id = str_of(&v, "tool_id").to_string();
                let params = take(&mut v, "parameters");
                if let Some(draft) = self.on_tool_use(&id, &name, params) {
                    out.push(draft);
                }
            }
            "tool_result" => self.on_tool_result(&v, out),
            "error" => {
                let severity = v.get("severity").and_then(Value::as_str).unwrap_or("error");
                out.push(error_line(str_of(&v, "message"), severity));
            }
            "result" => {
                let stats = take(&mut v, "stats");
                let success = str_of(&v, "status") == "success";
                let error_type = v["error"].get("type").cloned();
                let message = v["error"]["message"].as_str();
                self.on_result(success, stats, message, error_type, out);
            }
            // `--output-format json`: one document, no type (see `on_document`).
            "" if v.get("response").is_some() || v.get("error").is_some() => {
                self.on_document(v, out)
            }
            _ => return Parsed::Unknown(kind),
        }
        Parsed::Handled
    }

    fn on_text(&mut self, line: &str, out: &mut Vec<Draft>) {
        self.flush_delta(out);
        if let Some(draft) = stderr_line(line) {
            out.push(draft.native("stderr"));
        } else {
            out.push(text_line(line, &[]));
        }
    }

    fn finish(&mut self, exit: Option<&ExitFacts>, out: &mut Vec<Draft>) {
        self.flush_delta(out);
        let meaning = exit.and_then(|e| exit_meaning(e, self.fatal_seen.as_deref()));
        match (self.held_result.take(), meaning) {
            (Some(mut held), Some(meaning)) => {
                // The result's error, in the words that name its HTTP status.
                for (key, value) in meaning.payload {
                    if key != "native" {
                        held.payload.insert(key, value);
                    }
                }
                out.push(held);
            }
            (Some(held), None) => out.push(held),
            (None, Some(meaning)) => out.push(meaning),
            (None, None) => {}
        }
    }
}

/// Token usage summed over the models of a json document's `stats.models`.
fn document_usage(stats: &Value) -> Option<Value> {
    let models = stats["models"].as_object()?;
    let sum = |key: &str| {
        models
            .values()
            .filter_map(|m| m["tokens"][key].as_u64())
            .sum::<u64>()
    };
    Some(super::draft::usage(
        sum("prompt"),
        sum("candidates"),
        sum("cached"),
    ))
}

/// How many attempts Gemini CLI makes at one request before it gives up (its default).
const GEMINI_MAX_ATTEMPTS: u64 = 10;

/// What Gemini writes on stderr, merged into the PTY before and between its JSON lines: retry
/// attempts become the retrying state; its echo of a failure the JSON stream reports anyway
/// (`Error executing tool`, `Error when talking to Gemini API`) and its warnings stay log
/// lines, never errors.
fn stderr_line(line: &str) -> Option<Draft> {
    if let Some(rest) = line.strip_prefix("Attempt ") {
        let (number, tail) = rest.split_once(' ')?;
        let attempt: u64 = number.parse().ok()?;
        // The last attempt is not a retry (Gemini says "Max attempts reached" after it).
        if attempt >= GEMINI_MAX_ATTEMPTS || tail.contains("Max attempts reached") {
            return Some(log_line(line));
        }
        let reason = if let Some(status) = tail
            .strip_prefix("failed with status ")
            .and_then(|t| t.split(['.', ' ']).next())
        {
            format!("HTTP {status}")
        } else {
            tail.strip_prefix("failed: ").unwrap_or(tail).to_string()
        };
        return Some(retrying(Some(attempt), Some(GEMINI_MAX_ATTEMPTS), &reason));
    }
    let echo = ["Error executing tool ", "Error when talking to Gemini API"]
        .iter()
        .any(|p| line.starts_with(p));
    let warning = [
        "Warning: ",
        "YOLO mode is enabled",
        "Ripgrep is not available",
    ]
    .iter()
    .any(|p| line.starts_with(p));
    (echo || warning).then(|| log_line(line))
}

fn log_line(line: &str) -> Draft {
    Draft::new(EventType::Status, line.trim())
        .with("phase", "output")
        .with("line", line.trim())
}

/// What Gemini's exit code says that its stream may not: an API error ends the run with the
/// HTTP status modulo 256 (400 gives 144), and 41 is a missing or refused auth method.
fn exit_meaning(exit: &ExitFacts, fatal: Option<&str>) -> Option<Draft> {
    let code = exit.code?;
    if code == 41 {
        let message = "Gemini has no usable credentials: set GEMINI_API_KEY (or GOOGLE_API_KEY), or choose an auth method in ~/.gemini/settings.json";
        return Some(
            Draft::new(EventType::Error, message)
                .native("exit")
                .with("message", message)
                .with("reason", "authentication")
                .with("fatal", true)
                .with("exit_code", code),
        );
    }
    let status = http_status_of_exit(code)?;
    let detail = fatal.map_or(String::new(), |f| format!(": {f}"));
    let message = format!("the Gemini API answered HTTP {status} (exit code {code}){detail}");
    Some(
        Draft::new(EventType::Error, message.clone())
            .native("exit")
            .with("message", message)
            .with("http_status", status)
            .with("fatal", true)
            .with("exit_code", code),
    )
}

/// The HTTP status behind an exit code, for the statuses an API answers with.
fn http_status_of_exit(code: i64) -> Option<i64> {
    [
        400, 401, 403, 404, 408, 409, 413, 429, 500, 502, 503, 504, 529,
    ]
    .into_iter()
    .find(|status| status % 256 == code)
}

impl GeminiAdapter {
    /// A message, tool call or tool result, read typed; false sends it the general way.
    fn on_stream_line(&mut self, line: &str, out: &mut Vec<Draft>) -> bool {
        let Ok(parsed) = serde_json::from_str::<StreamLine<'_>>(line) else {
            return false;
        };
        let content = parsed.content.as_deref().unwrap_or("");
        match parsed.kind.as_ref() {
            "message" if parsed.role.as_deref() == Some("assistant") => {
                self.on_assistant_message(content, parsed.delta.unwrap_or(false), out);
            }
            "message" => {
                self.flush_delta(out);
                out.push(prompt_echo(content));
            }
            "tool_use" => {
                let params = raw_value(parsed.parameters);
                self.flush_delta(out);
                let name = parsed.tool_name.as_deref().unwrap_or("");
                let id = parsed.tool_id.as_deref().unwrap_or("");
                if let Some(draft) = self.on_tool_use(id, name, params) {
                    out.push(draft);
                }
            }
            "tool_result" => {
                self.flush_delta(out);
                let id = parsed.tool_id.map(Cow::into_owned).unwrap_or_default();
                let output = parsed.output.as_deref();
                if parsed.status.as_deref() == Some("success") {
                    self.tool_succeeded(id, output.unwrap_or(""), out);
                } else {
                    let error = parsed.error.unwrap_or_default();
                    let message = error.message.as_deref().or(output).unwrap_or("");
                    self.tool_failed(id, error.kind.as_deref().unwrap_or(""), message, out);
                }
            }
            _ => return false,
        }
        true
    }

    /// A line of one of the rarer `TYPED_TYPES`, read typed; false sends it the general way.
    fn on_other_line(&mut self, line: &str, out: &mut Vec<Draft>) -> bool {
        let Ok(parsed) = serde_json::from_str::<OtherLine<'_>>(line) else {
            return false;
        };
        let kind = parsed.kind.as_ref();
        if !matches!(kind, "init" | "error" | "result") {
            return false;
        }
        self.flush_delta(out);
        match kind {
            "init" => {
                let model = parsed.model.as_deref().unwrap_or("");
                let value = |s: &Option<Cow<'_, str>>| s.as_deref().map(Value::from);
                out.push(session_init(
                    model,
                    value(&parsed.session_id),
                    value(&parsed.model),
                ));
            }
            "error" => {
                let message = parsed.message.as_deref().unwrap_or("");
                out.push(error_line(
                    message,
                    parsed.severity.as_deref().unwrap_or("error"),
                ));
            }
            _ => {
                let stats = raw_value(parsed.stats);
                let success = parsed.status.as_deref() == Some("success");
                let error = parsed.error.unwrap_or_default();
                let error_type = error.kind.map(|k| Value::String(k.into_owned()));
                self.on_result(success, stats, error.message.as_deref(), error_type, out);
            }
        }
        true
    }

    /// The run's `result`: a success says so now; a failure is held for the exit code to name.
    fn on_result(
        &mut self,
        success: bool,
        stats: Value,
        message: Option<&str>,
        error_type: Option<Value>,
        out: &mut Vec<Draft>,
    ) {
        let usage = plain_usage(&stats);
        if success {
            let answer = std::mem::take(&mut self.answer);
            out.push(
                Draft::new(EventType::Milestone, "run complete")
                    .native("result/success")
                    .with("final", true)
                    .with_some("usage", usage)
                    .with("stats", stats)
                    .with_some("result", Some(answer).filter(|a| !a.trim().is_empty())),
            );
            return;
        }
        let message = message.unwrap_or("run failed").to_string();
        self.fatal_seen = Some(one_line(&message));
        self.held_result = Some(
            Draft::new(EventType::Error, message.clone())
                .native("result/error")
                .with("final", true)
                .with("message", message)
                .with("fatal", true)
                .with_some("error_type", error_type)
                .with_some("usage", usage),
        );
    }

    /// The one object `--output-format json` prints at the end: `session_id`, `response`,
    /// `stats.models.<model>.tokens`, and `error` when the run failed.
    fn on_document(&mut self, mut v: Value, out: &mut Vec<Draft>) {
        if let Some(id) = v.get("session_id").cloned() {
            out.push(
                Draft::new(EventType::Status, "session started")
                    .native("json")
                    .with("phase", "init")
                    .with("session_id", id),
            );
        }
        let response = owned_str(take(&mut v, "response"));
        if !response.trim().is_empty() {
            out.push(
                Draft::new(EventType::Progress, response.as_str())
                    .native("json/response")
                    .with("kind", "message"),
            );
        }
        let usage = document_usage(&v["stats"]);
        let error = take(&mut v, "error");
        if let Some(message) = error["message"].as_str() {
            self.fatal_seen = Some(one_line(message));
            out.push(
                Draft::new(EventType::Error, message)
                    .native("json/error")
                    .with("final", true)
                    .with("message", message)
                    .with("fatal", true)
                    .with_some("error_type", error.get("type").cloned())
                    .with_some("usage", usage),
            );
        } else {
            let text = if response.trim().is_empty() {
                "run complete".to_string()
            } else {
                one_line(&response)
            };
            out.push(
                Draft::new(EventType::Milestone, text)
                    .native("json/response")
                    .with("final", true)
                    .with("result", response)
                    .with_some("usage", usage),
            );
        }
    }

    fn on_tool_use(&mut self, id: &str, name: &str, params: Value) -> Option<Draft> {
        // What the model said before a tool call was not its answer.
        self.answer.clear();
        if name == "write_todos" {
            // Its result only acknowledges the list; the task event says everything.
            self.pending_tools.insert(id, name, Value::Null);
            let todos: Vec<Todo> = params["todos"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Todo::new(str_of(t, "description"), str_of(t, "status")))
                .collect();
            return self.todos.replace(todos, "tool_use/write_todos");
        }
        if name.starts_with("tracker_") || name == "invoke_agent" {
            let what = ["title", "description", "name", "agent_name", "prompt"]
                .iter()
                .find_map(|k| params.get(*k).and_then(Value::as_str))
                .map(one_line)
                .unwrap_or_default();
            return Some(
                Draft::new(EventType::Task, [name, ": ", &what].concat())
                    .native(&["tool_use/", name].concat())
                    .with("subagent", name == "invoke_agent")
                    .with("tool", name),
            );
        }
        let detail = [
            "command",
            "file_path",
            "absolute_path",
            "path",
            "dir_path",
            "pattern",
            "query",
            "url",
        ]
        .iter()
        .find_map(|k| params.get(*k).and_then(Value::as_str))
        .map(one_line)
        .unwrap_or_default();
        let command = params["command"].as_str().map(str::to_string);
        let path = params["file_path"].as_str().map(str::to_string);
        self.pending_tools.insert(id, name, params);
        if is_report_tool(name) {
            return None;
        }
        let text = if detail.is_empty() {
            name.to_string()
        } else {
            [name, ": ", &detail].concat()
        };
        Some(
            Draft::new(EventType::Progress, text)
                .native("tool_use")
                .with("kind", "tool_call")
                .with("tool", name)
                .with("tool_id", id)
                .with("detail", detail)
                .with_some("command", command)
                .with_some("path", path),
        )
    }

    /// An assistant message, whole or a delta of one.
    fn on_assistant_message(&mut self, content: &str, delta: bool, out: &mut Vec<Draft>) {
        if self.answer.len() + content.len() <= ANSWER_LIMIT {
            self.answer.push_str(content);
        }
        if delta {
            self.deltas.push(content, "message", out);
        } else {
            self.flush_delta(out);
            out.push(
                Draft::new(EventType::Progress, content)
                    .native("message")
                    .with("kind", "message"),
            );
        }
    }

    fn tool_succeeded(&mut self, id: String, output: &str, out: &mut Vec<Draft>) {
        let (tool, params) = self.pending_tools.take(&id);
        if tool == "write_todos" {
            return;
        }
        if is_report_tool(&tool) {
            if let Some(draft) = reported_event(&params) {
                out.push(draft.native("tool_result/report_event"));
            }
            return;
        }
        out.push(
            Draft::new(EventType::Progress, [&tool, " done"].concat())
                .native("tool_result")
                .with("kind", "tool_result")
                .with("tool", tool)
                .with("tool_id", id)
                .with("ok", true)
                .with("output", tail_excerpt(output)),
        );
    }

    fn on_tool_result(&mut self, v: &Value, out: &mut Vec<Draft>) {
        let id = str_of(v, "tool_id").to_string();
        if str_of(v, "status") == "success" {
            return self.tool_succeeded(id, str_of(v, "output"), out);
        }
        let error_type = v["error"]["type"].as_str().unwrap_or("");
        let message = v["error"]["message"]
            .as_str()
            .or_else(|| v.get("output").and_then(Value::as_str))
            .unwrap_or("");
        self.tool_failed(id, error_type, message, out);
    }

    /// A tool call that did not succeed, read either way.
    fn tool_failed(&mut self, id: String, error_type: &str, message: &str, out: &mut Vec<Draft>) {
        let (tool, params) = self.pending_tools.take(&id);
        // Every marker says "workspace": one search rules them all out for most failures.
        let outside_workspace = error_type == "path_not_in_workspace"
            || (message.contains("workspace")
                && PATH_NOT_IN_WORKSPACE_MARKERS
                    .iter()
                    .any(|m| message.contains(m)));
        let denied =
            error_type == "policy_violation" || message.contains("requires user confirmation");
        // The mode does not offer the tool (headless `default` and `auto_edit` hide the shell):
        // the agent cannot do what it tried, however often it tries.
        let not_offered = error_type == "tool_not_registered";
        if outside_workspace || denied || not_offered {
            let reason = if outside_workspace {
                "path_not_in_workspace"
            } else if not_offered {
                "tool_not_offered"
            } else {
                "policy_violation"
            };
            let path = attempted_path(message).or_else(|| {
                ["absolute_path", "file_path", "path", "dir_path"]
                    .iter()
                    .find_map(|k| params.get(*k).and_then(Value::as_str).map(str::to_string))
            });
            out.push(
                Draft::new(
                    EventType::Blocker,
                    [&tool, " refused: ", &one_line(message)].concat(),
                )
                .native("tool_result/error")
                .with("reason", reason)
                .with("tool", tool)
                .with("tool_id", id)
                .with("error_type", error_type)
                .with("message", message)
                .with_some("path", path),
            );
            return;
        }
        out.push(
            Draft::new(
                EventType::Progress,
                [&tool, " failed: ", &one_line(message)].concat(),
            )
            .native("tool_result/error")
            .with("kind", "tool_result")
            .with("tool", tool)
            .with("tool_id", id)
            .with("ok", false)
            .with("error_type", error_type)
            .with("output", tail_excerpt(message)),
        );
    }

    fn flush_delta(&mut self, out: &mut Vec<Draft>) {
        self.deltas.flush("message", out);
    }
}

/// `init`: the session's id and model.
fn session_init(model_name: &str, session_id: Option<Value>, model: Option<Value>) -> Draft {
    Draft::new(EventType::Status, format!("session started ({model_name})"))
        .native("init")
        .with("phase", "init")
        .with_some("session_id", session_id)
        .with_some("model", model)
}

/// An `error` line: a warning is a status, unless it says a loop was detected.
fn error_line(message: &str, severity: &str) -> Draft {
    if severity == "warning" && !message.contains("Loop detected") {
        return Draft::new(EventType::Status, message)
            .native("error/warning")
            .with("phase", "warning");
    }
    Draft::new(EventType::Error, message)
        .native(&["error/", severity].concat())
        .with("message", message)
        .with("fatal", false)
        .with("severity", severity)
}

/// The user's prompt, as Gemini echoes it at the start.
fn prompt_echo(content: &str) -> Draft {
    Draft::new(EventType::Status, format!("prompt: {}", one_line(content)))
        .native("message/user")
        .with("phase", "prompt")
}

fn is_report_tool(name: &str) -> bool {
    // `report_event`, or `mcp_<server>_report_event`; read without building the name (this
    // runs for every tool call).
    let qualified = name
        .strip_prefix("mcp_")
        .and_then(|rest| rest.strip_prefix(ORCH_MCP_SERVER))
        .and_then(|rest| rest.strip_prefix('_'));
    name == REPORT_TOOL || qualified == Some(REPORT_TOOL)
}

/// The path in `Attempted path "<path>" resolves outside ...` (v0.27+).
fn attempted_path(message: &str) -> Option<String> {
    let start = message.find("Attempted path \"")? + "Attempted path \"".len();
    let len = message[start..].find('"')?;
    Some(message[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The real CLI relays the model's text a few words at a time; the adapter's message
    /// events release it a line or 200 bytes at a time, trimmed. The final milestone carries
    /// the answer whole, what the model said after its last tool call.
    #[test]
    fn the_final_milestone_carries_the_answer_whole() {
        let verdict = format!(
            r#"{{"verdict":"blocker","summary":"{}","findings":[]}}"#,
            "words in a long summary ".repeat(12).trim_end()
        );
        let mut lines = vec![
            r#"{"type":"message","role":"assistant","content":"I'll look first.\n","delta":true}"#
                .to_string(),
            r#"{"type":"tool_use","tool_name":"read_file","tool_id":"t1","parameters":{"file_path":"a"}}"#
                .to_string(),
            r#"{"type":"tool_result","tool_id":"t1","status":"success","output":"x"}"#.to_string(),
        ];
        for piece in crate::stub::anthropic::pieces(&verdict) {
            let line = serde_json::json!({"type": "message", "role": "assistant",
                                          "content": piece, "delta": true});
            lines.push(line.to_string());
        }
        lines.push(r#"{"type":"result","status":"success","stats":{}}"#.to_string());
        let mut adapter = GeminiAdapter::default();
        let mut out = Vec::new();
        for line in &lines {
            adapter.on_json(serde_json::from_str(line).unwrap(), &mut out);
        }
        let messages = out
            .iter()
            .filter(|d| d.payload["kind"] == "message")
            .count();
        assert!(messages >= 3, "the answer came in several events: {out:#?}");
        let milestone = out.last().unwrap();
        assert_eq!(milestone.kind, EventType::Milestone);
        assert_eq!(milestone.payload["result"], Value::String(verdict.clone()));
    }

    #[test]
    fn every_path_marker_says_workspace() {
        // `tool_failed` looks for the markers only in messages that say it.
        assert!(
            PATH_NOT_IN_WORKSPACE_MARKERS
                .iter()
                .all(|m| m.contains("workspace"))
        );
    }

    #[test]
    fn argv_trusts_the_folder_and_joins_include_directories() {
        let spec = LaunchSpec {
            program: vec!["gemini".into()],
            prompt: "-design it".into(),
            workdir: PathBuf::from("/w"),
            extra_dirs: vec![PathBuf::from("/a"), PathBuf::from("/b")],
            state_dir: PathBuf::from("/state"),
            mcp: Some(super::super::McpServer {
                name: "orch".into(),
                command: "/o".into(),
                args: vec![],
                env: vec![],
                exclusive: false,
            }),
            ..LaunchSpec::default()
        };
        let l = launch(&spec);
        assert_eq!(
            l.argv.join(" "),
            "gemini --output-format stream-json --approval-mode=yolo \
             --include-directories=/a,/b --prompt=-design it"
        );
        assert_eq!(l.env_value("GEMINI_CLI_TRUST_WORKSPACE"), Some("true"));
        assert_eq!(
            l.files[0].0,
            PathBuf::from("/state/gemini-system-settings.json")
        );
        assert!(l.files[0].1.contains("\"trust\": true"));
    }

    #[test]
    fn stderr_retries_are_the_retrying_state_and_echoes_are_log_lines() {
        let r =
            stderr_line("Attempt 3 failed with status 503. Retrying with backoff... _ApiError: {}")
                .unwrap();
        assert_eq!(r.text(), "retrying (3/10): HTTP 503");
        let r = stderr_line("Attempt 2 failed: Resource has been exhausted (e.g. check quota).")
            .unwrap();
        assert_eq!(
            r.text(),
            "retrying (2/10): Resource has been exhausted (e.g. check quota)."
        );
        let echo = stderr_line("Error executing tool read_file: Path not in workspace").unwrap();
        assert_eq!(echo.kind, EventType::Status);
        assert!(stderr_line("Error: something else").is_none());
    }

    #[test]
    fn exit_codes_name_the_http_status_and_the_auth_fix() {
        let exit = |code| ExitFacts {
            code: Some(code),
            signal: None,
        };
        let e = exit_meaning(&exit(144), Some("[API Error: bad]")).unwrap();
        assert_eq!(
            e.text(),
            "the Gemini API answered HTTP 400 (exit code 144): [API Error: bad]"
        );
        assert_eq!(
            exit_meaning(&exit(173), None).unwrap().payload["http_status"],
            429
        );
        assert!(
            exit_meaning(&exit(41), None)
                .unwrap()
                .text()
                .contains("GEMINI_API_KEY")
        );
        assert!(exit_meaning(&exit(0), None).is_none());
        assert!(exit_meaning(&exit(1), None).is_none());
    }

    #[test]
    fn the_attempted_path_is_extracted() {
        let m = "Path not in workspace: Attempted path \"/etc/x\" resolves outside the allowed workspace directories: /w";
        assert_eq!(attempted_path(m).as_deref(), Some("/etc/x"));
        assert_eq!(attempted_path("nothing"), None);
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// Drafts of `lines` read the general way (parsed, then `on_json`), and read with the
    /// typed path first: they must be the same, line for line.
    fn both_ways(lines: &[&str]) -> (Vec<Draft>, Vec<Draft>) {
        let (mut general, mut fast) = (GeminiAdapter::default(), GeminiAdapter::default());
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
        general.finish(None, &mut by_value);
        fast.finish(None, &mut by_line);
        (by_value, by_line)
    }

    #[test]
    fn hot_lines_read_typed_give_what_the_general_way_gives() {
        let fixture = include_str!("../../tests/fixtures/gemini-stream.jsonl");
        let mut lines: Vec<&str> = fixture.lines().filter(|l| l.starts_with('{')).collect();
        lines.extend([
            r#"{"type":"message","role":"assistant","content":"half a "}"#,
            r#"{"type":"tool_use","tool_name":"glob","tool_id":"g1","parameters":null}"#,
            r#"{"type":"message","role":"assistant","content":"esc \"q\" \u00e9\n","delta":true}"#,
            r#"{"type":"tool_use","tool_name":"glob","tool_id":"g2"}"#,
            r#"{"type":"tool_result","tool_id":"g2","status":"success"}"#,
            r#"{"type":"message","role":"assistant","content":5,"delta":true}"#,
            r#"{"type":"message","role":"assistant","content":"x","delta":"yes"}"#,
            r#"{"type":"message","role":"assistant","content":"dup","content":"twice","delta":true}"#,
            r#"{"type":"tool_use","tool_name":"mcp_orch_report_event","tool_id":"r1","parameters":{"type":"finding","payload":{"text":"f"}}}"#,
            r#"{"type":"tool_result","tool_id":"r1","status":"success","output":"recorded"}"#,
            r#"{"content":"keys sorted","delta":true,"role":"assistant","type":"message"}"#,
            r#"{"type":"message","role":"user","content":"again"}"#,
            r#"{"type":"tool_use","tool_name":"read_file","tool_id":"e1","parameters":{"file_path":"/etc/x"}}"#,
            r#"{"type":"tool_result","tool_id":"e1","status":"error","error":{"type":"path_not_in_workspace","message":"Path not in workspace: /etc/x"}}"#,
            r#"{"type":"tool_result","tool_id":"e2","status":"error","error":null,"output":"from the output"}"#,
            r#"{"type":"tool_result","tool_id":"e3","status":"error","error":{"message":null},"output":"no message"}"#,
            r#"{"type":"tool_result","tool_id":"e4","status":"error","error":"a string"}"#,
            r#"{"type":"tool_result","tool_id":"e5","status":"error","error":{"type":7,"message":"odd type"}}"#,
            r#"{"type":"tool_result","tool_id":"e6","error":{"type":"policy_violation"}}"#,
            r#"{"type":"tool_result","tool_id":"e7","status":"error","error":{"type":"x","type":"y","message":"twice"}}"#,
            r#"{"type":"message","role":"assistant","content":"a delta before an error","delta":true}"#,
            r#"{"type":"error","message":"no severity"}"#,
            r#"{"type":"error","severity":"warning"}"#,
            r#"{"type":"error","severity":3,"message":"odd severity"}"#,
            r#"{"type":"error","severity":"warning","message":null}"#,
            r#"{"type":"init","session_id":"s1"}"#,
            r#"{"type":"init","model":"m","session_id":null}"#,
            r#"{"type":"init","model":7}"#,
            r#"{"type":"result","status":"error","error":{"type":"FatalTurnLimitedError","message":"Reached max turns"},"stats":{"input_tokens":5,"output_tokens":1}}"#,
            r#"{"type":"result","status":"error"}"#,
            r#"{"type":"result","status":"error","error":{"type":null,"message":5}}"#,
            r#"{"type":"result","status":"success"}"#,
            r#"{"type":"result","status":"success","stats":null}"#,
        ]);
        let (general, fast) = both_ways(&lines);
        assert!(general.len() >= 25, "{general:#?}");
        assert_eq!(general, fast);
        // And the typed way does read them (a line it declined would pass the check above).
        let mut typed = GeminiAdapter::default();
        let read_typed = [
            r#"{"type":"init","#,
            r#""severity":"warning","message":"Loop"#,
            r#"{"type":"error","message":"no severity"}"#,
            r#"{"type":"result","timestamp"#,
            r#"{"type":"result","status":"error"}"#,
            r#"{"type":"tool_result","tool_id":"e1""#,
        ];
        for marker in read_typed {
            let line = lines.iter().find(|l| l.contains(marker)).unwrap();
            assert_eq!(
                typed.on_line(line, &mut Vec::new()),
                Some(Parsed::Handled),
                "{line}"
            );
        }
    }
}
