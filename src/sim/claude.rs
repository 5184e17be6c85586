//! Simulated `claude`: Commander-style argv (variadic flags swallow what follows unless written
//! `--flag=value`), the real refusals, and stream-json / json / text output.

use serde_json::{Value, json};

use super::argv::ArgWalker;
use super::{
    ApiError, ArgError, CheckedArgs, Dialect, Emitter, Host, Invocation, Refusal, RetryPolicy,
    RunEnd, StdinUse, ToolCall, ToolResult, absolute, print_document, session_uuid,
};

/// The pinned version (`.ci/agent-clis.pins`) and the model it reports.
pub const VERSION: &str = "2.1.330 (Claude Code)";
const MODEL: &str = "claude-opus-5-5";
/// What 2.1.330 lists in `init.tools` in -p mode: no TodoWrite, Glob or Grep.
const TOOLS: [&str; 22] = [
    "Task",
    "Bash",
    "CronCreate",
    "CronDelete",
    "CronList",
    "Edit",
    "EnterWorktree",
    "ExitWorktree",
    "ListAgents",
    "Monitor",
    "NotebookEdit",
    "Read",
    "ReportFindings",
    "ScheduleWakeup",
    "SendMessage",
    "Skill",
    "TaskStop",
    "ToolSearch",
    "WebFetch",
    "WebSearch",
    "Workflow",
    "Write",
];

const BOOLEAN_FLAGS: [&str; 24] = [
    "--strict-mcp-config",
    "--include-partial-messages",
    "--replay-user-messages",
    "-c",
    "--continue",
    "--fork-session",
    "--include-hook-events",
    "--no-session-persistence",
    "--bare",
    "--safe-mode",
    "--bg",
    "--background",
    "--brief",
    "--chrome",
    "--no-chrome",
    "--ide",
    "--disable-slash-commands",
    "--forward-subagent-text",
    "--exclude-dynamic-system-prompt-sections",
    "--restricted",
    "--ax-screen-reader",
    "--tmux",
    "--desktop",
    "--verbose",
];
/// Commander `[value]` options: they take the next argument unless it looks like an option.
const OPTIONAL_VALUE_FLAGS: [&str; 11] = [
    "-w",
    "-d",
    "--debug",
    "-r",
    "--resume",
    "--prompt-suggestions",
    "--from-pr",
    "--cloud",
    "--remote-control",
    "--teleport",
    "--worktree",
];
const VALUE_FLAGS: [&str; 29] = [
    "--output-format",
    "--input-format",
    "--permission-mode",
    "--model",
    "--fallback-model",
    "--max-turns",
    "--max-budget-usd",
    "--system-prompt",
    "--system-prompt-file",
    "--append-system-prompt",
    "--append-system-prompt-file",
    "--session-id",
    "--settings",
    "--setting-sources",
    "--permission-prompt-tool",
    "--effort",
    "--json-schema",
    "--agents",
    "--agent",
    "--max-thinking-tokens",
    "--autocompact",
    "--debug-file",
    "--environment",
    "-n",
    "--name",
    "--permission-prompts",
    "--plugin-dir",
    "--plugin-url",
    "--system-prompt-snapshot",
];
/// Commander `<values...>` options: written `--flag a b`, they swallow the prompt too.
const VARIADIC_FLAGS: [&str; 9] = [
    "--allowedTools",
    "--allowed-tools",
    "--disallowedTools",
    "--disallowed-tools",
    "--mcp-config",
    "--add-dir",
    "--tools",
    "--betas",
    "--file",
];
const PERMISSION_MODES: [&str; 6] = [
    "acceptEdits",
    "auto",
    "bypassPermissions",
    "manual",
    "dontAsk",
    "plan",
];

/// Commander's refusal of an option's value.
fn invalid(option: &str, value: &str, why: &str) -> ArgError {
    ArgError::new(
        format!("error: option '{option}' argument '{value}' is invalid. {why}"),
        1,
    )
}

pub fn check_args(args: &[String], host: &Host) -> Result<CheckedArgs, ArgError> {
    let mut print = false;
    let mut flags: Vec<&str> = Vec::new();
    let mut values: Vec<(String, String)> = Vec::new();
    let mut positional: Vec<String> = Vec::new();
    let mut walker = ArgWalker::new(args);
    while let Some((name, inline, raw)) = walker.next_option(&mut positional) {
        match name {
            "-p" | "--print" => print = true,
            "-v" | "--version" => return Ok(CheckedArgs::Version(VERSION.into())),
            "-h" | "--help" => {
                return Ok(CheckedArgs::Version(
                    "Usage: claude [options] [command] [prompt]\n\n(simulated by orchestrate sim)"
                        .into(),
                ));
            }
            "--dangerously-skip-permissions" | "--allow-dangerously-skip-permissions" => {
                flags.push("bypass")
            }
            _ if BOOLEAN_FLAGS.contains(&name) => flags.push(name),
            _ if OPTIONAL_VALUE_FLAGS.contains(&name) => {
                let value = inline.or_else(|| walker.take_plain()).unwrap_or("");
                values.push((name.to_string(), value.to_string()));
            }
            _ if VALUE_FLAGS.contains(&name) => {
                let value = walker.value(inline).ok_or_else(|| {
                    ArgError::new(
                        format!("error: option '{name} <value>' argument missing"),
                        1,
                    )
                })?;
                // Commander checks choices and numbers as it parses, in argv order.
                match name {
                    "--output-format" if !matches!(value, "text" | "json" | "stream-json") => {
                        return Err(invalid(
                            "--output-format <format>",
                            value,
                            "Allowed choices are text, json, stream-json.",
                        ));
                    }
                    "--permission-mode" if !PERMISSION_MODES.contains(&value) => {
                        return Err(invalid(
                            "--permission-mode <mode>",
                            value,
                            &format!("Allowed choices are {}.", PERMISSION_MODES.join(", ")),
                        ));
                    }
                    "--max-turns" if value.parse::<f64>().is_err() => {
                        return Err(invalid("--max-turns <turns>", value, "must be a number"));
                    }
                    _ => {}
                }
                values.push((name.to_string(), value.to_string()));
            }
            // Commander: `--flag=value` takes one value; `--flag a b c` takes every following
            // non-option argument, the prompt included.
            _ if VARIADIC_FLAGS.contains(&name) => match inline {
                Some(v) => values.push((name.to_string(), v.to_string())),
                None => {
                    while let Some(v) = walker.take_plain() {
                        values.push((name.to_string(), v.to_string()));
                    }
                }
            },
            _ => return Err(ArgError::new(format!("error: unknown option '{raw}'"), 1)),
        }
    }
    let value = |flag: &str| {
        values
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    };
    let has = |flag: &str| flags.contains(&flag);
    let verbose = has("--verbose");
    let output_format = value("--output-format").unwrap_or("text").to_string();
    if print && output_format == "stream-json" && !verbose {
        return Err(ArgError::new(
            "Error: When using --print, --output-format=stream-json requires --verbose",
            1,
        ));
    }
    if value("--input-format") == Some("stream-json") && output_format != "stream-json" {
        return Err(ArgError::new(
            "Error: --input-format=stream-json requires output-format=stream-json.",
            1,
        ));
    }
    if has("--include-partial-messages") && !(print && output_format == "stream-json") {
        return Err(ArgError::new(
            "Error: --include-partial-messages requires --print and --output-format=stream-json.",
            1,
        ));
    }
    let resume = value("--resume").or(value("-r")).map(str::to_string);
    if let Some(id) = value("--session-id") {
        if !is_uuid(id) {
            return Err(ArgError::new(
                "Error: Invalid session ID. Must be a valid UUID.",
                1,
            ));
        }
        if (resume.is_some() || has("-c") || has("--continue")) && !has("--fork-session") {
            return Err(ArgError::new(
                "Error: --session-id with --continue or --resume also needs --fork-session.",
                1,
            ));
        }
    }
    let bypass = has("bypass") || value("--permission-mode") == Some("bypassPermissions");
    if bypass && host.is_root && host.env("IS_SANDBOX") != Some("1") {
        return Err(ArgError::new(
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons",
            1,
        ));
    }
    if !print {
        return Err(ArgError::new(
            "orchestrate sim claude: only headless runs (-p) are simulated",
            1,
        ));
    }
    let prompt = positional.join(" ");
    let no_input = ArgError::new(
        "Error: Input must be provided either through stdin or as a prompt argument when using --print",
        1,
    );
    if prompt.trim().is_empty() && host.stdin_is_tty {
        return Err(no_input);
    }
    let extra_dirs = values
        .iter()
        .filter(|(f, _)| f == "--add-dir")
        .map(|(_, d)| absolute(&host.cwd, d))
        .collect();
    let model = value("--model").unwrap_or(MODEL).to_string();
    let session_id = resume
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| value("--session-id").map(str::to_string))
        .unwrap_or_else(|| session_uuid("claude"));
    let permission_mode = if bypass {
        "bypassPermissions".to_string()
    } else {
        value("--permission-mode").unwrap_or("default").to_string()
    };
    let invocation = Invocation {
        prompt,
        workdir: host.cwd.clone(),
        extra_dirs,
        resume: resume.filter(|r| !r.is_empty()),
        streaming: output_format == "stream-json",
        model: model.clone(),
        no_input,
        stdin: StdinUse::default(),
        hooks: value("--settings")
            .map(|s| {
                super::hooks::from_settings(&super::hooks::read_settings(s), "PreToolUse", false)
            })
            .unwrap_or_default(),
        // `--mcp-config` takes JSON or a file, once or more.
        mcp: values
            .iter()
            .filter(|(f, _)| f == "--mcp-config")
            .flat_map(|(_, v)| {
                let text = if v.trim_start().starts_with('{') {
                    v.clone()
                } else {
                    std::fs::read_to_string(absolute(&host.cwd, v)).unwrap_or_default()
                };
                serde_json::from_str::<Value>(&text)
                    .map(|c| super::mcp::from_mcp_servers(&c))
                    .unwrap_or_default()
            })
            .collect(),
    };
    let dialect = ClaudeDialect {
        session_id,
        model,
        cwd: host.cwd.display().to_string(),
        output_format,
        verbose,
        permission_mode,
        json_schema: value("--json-schema").is_some(),
        structured: None,
        turn_texts: Vec::new(),
        // Commander took any number; Claude keeps its whole part.
        max_turns: value("--max-turns")
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v.max(0.0) as u32),
    };
    Ok(CheckedArgs::Run(Box::new(invocation), Box::new(dialect)))
}

/// 8-4-4-4-12 hexadecimal digits.
fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub struct ClaudeDialect {
    session_id: String,
    model: String,
    cwd: String,
    output_format: String,
    verbose: bool,
    permission_mode: String,
    /// `--json-schema`: the model must answer through the StructuredOutput tool.
    json_schema: bool,
    /// The object it answered with that way.
    structured: Option<Value>,
    /// What the model said since its last tool call: said again when Claude insists on the
    /// StructuredOutput tool and the model answers in text anyway.
    turn_texts: Vec<String>,
    /// `--max-turns`: the run stops with `error_max_turns` after this many tool rounds.
    max_turns: Option<u32>,
}

/// The tool result Claude gives the model's StructuredOutput call.
const STRUCTURED_DONE: &str = "Structured output provided successfully";
/// What Claude tells a model that answered without the StructuredOutput tool, once.
const STRUCTURED_ENFORCE: &str = "[structured-output-enforce] You MUST call the StructuredOutput tool to complete this request. Call this tool now.";

impl ClaudeDialect {
    fn assistant(&self, out: &mut Emitter, block: Value) {
        out.emit(json!({
            "type": "assistant",
            "message": {"id": format!("msg_{}", &self.session_id[..8]), "type": "message",
                        "role": "assistant", "model": self.model, "content": [block],
                        "stop_reason": null, "usage": {"input_tokens": 3, "output_tokens": 12}},
            "parent_tool_use_id": null,
            "session_id": self.session_id,
            "uuid": session_uuid("assistant"),
        }));
    }

    fn tool_result(&self, out: &mut Emitter, id: &str, content: &str, is_error: bool) {
        out.emit(json!({
            "type": "user",
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use_id(id),
                                                      "content": content, "is_error": is_error}]},
            "parent_tool_use_id": null,
            "session_id": self.session_id,
            "uuid": session_uuid("user"),
        }));
    }
}

fn tool_use_id(id: &str) -> String {
    format!("toolu_01{id}")
}

/// The tool and its input as the model (the stub) asks for them, which the real CLI echoes in
/// its stream and hands to its hooks.
fn tool_name_and_input(call: &ToolCall) -> (&'static str, Value) {
    match call {
        ToolCall::Command { command } => (
            "Bash",
            json!({"command": command, "description": format!("Run {command}")}),
        ),
        ToolCall::Write { path, content } => (
            "Write",
            json!({"file_path": path.display().to_string(), "content": content}),
        ),
        ToolCall::Edit { path, old, new } => (
            "Edit",
            json!({"file_path": path.display().to_string(), "old_string": old, "new_string": new,
                   "replace_all": false}),
        ),
        ToolCall::Read { path } => ("Read", json!({"file_path": path.display().to_string()})),
    }
}

impl Dialect for ClaudeDialect {
    fn name(&self) -> &'static str {
        "claude"
    }

    fn hook_input(&self, call: &ToolCall, cwd: &std::path::Path) -> Value {
        let (tool, input) = tool_name_and_input(call);
        json!({"session_id": self.session_id, "cwd": cwd.display().to_string(),
               "permission_mode": self.permission_mode, "hook_event_name": "PreToolUse",
               "tool_name": tool, "tool_input": input})
    }

    fn session_id(&self) -> &str {
        &self.session_id
    }

    fn unknown_session(&mut self, out: &mut Emitter, id: &str) -> i32 {
        let text = format!("No conversation found with session ID: {id}");
        let result = json!({"type": "result", "subtype": "error_during_execution",
            "is_error": true, "duration_ms": 0, "num_turns": 0, "session_id": self.session_id,
            "total_cost_usd": 0, "errors": [text], "uuid": session_uuid("result")});
        if self.output_format != "text" {
            out.emit(result.clone());
            if self.output_format == "json" {
                print_document(&result.to_string());
            }
        }
        eprintln!("{text}");
        1
    }

    fn start(&mut self, out: &mut Emitter) {
        out.emit(json!({
            "type": "system", "subtype": "init",
            "cwd": self.cwd, "session_id": self.session_id,
            "tools": TOOLS,
            "mcp_servers": [], "model": self.model, "permissionMode": self.permission_mode,
            "apiKeySource": "none", "claude_code_version": VERSION.split(' ').next(),
            "output_style": "default", "slash_commands": [], "uuid": session_uuid("init"),
        }));
    }

    fn thinking(&mut self, out: &mut Emitter, text: &str) {
        self.assistant(
            out,
            json!({"type": "thinking", "thinking": text, "signature": ""}),
        );
    }

    fn message(&mut self, out: &mut Emitter, text: &str) {
        // Under `--json-schema` an answer that is an object goes through StructuredOutput.
        if self.json_schema
            && self.structured.is_none()
            && let Ok(object @ Value::Object(_)) = serde_json::from_str::<Value>(text)
        {
            let id = "structured";
            self.assistant(
                out,
                json!({"type": "tool_use", "id": tool_use_id(id), "name": "StructuredOutput", "input": object}),
            );
            self.tool_result(out, id, STRUCTURED_DONE, false);
            self.structured = Some(object);
            return;
        }
        self.turn_texts.push(text.to_string());
        self.assistant(out, json!({"type": "text", "text": text}));
    }

    fn tool_started(&mut self, out: &mut Emitter, id: &str, call: &ToolCall) {
        self.turn_texts.clear();
        let (name, input) = tool_name_and_input(call);
        self.assistant(
            out,
            json!({"type": "tool_use", "id": tool_use_id(id), "name": name, "input": input}),
        );
    }

    fn tool_finished(
        &mut self,
        out: &mut Emitter,
        id: &str,
        _call: &ToolCall,
        result: &ToolResult,
    ) {
        let content = match result.exit_code {
            Some(code) if !result.ok => format!("Exit code {code}\n{}", result.output),
            _ => result.output.clone(),
        };
        self.tool_result(out, id, &content, !result.ok);
    }

    fn mcp_call(
        &mut self,
        out: &mut Emitter,
        id: &str,
        server: &str,
        tool: &str,
        arguments: &Value,
        answer: &Result<String, String>,
    ) {
        self.turn_texts.clear();
        self.assistant(
            out,
            json!({"type": "tool_use", "id": tool_use_id(id), "name": format!("mcp__{server}__{tool}"), "input": arguments}),
        );
        let (text, failed) = match answer {
            Ok(text) => (text.as_str(), false),
            Err(text) => (text.as_str(), true),
        };
        self.tool_result(out, id, text, failed);
    }

    fn tool_refused(&mut self, out: &mut Emitter, id: &str, call: &ToolCall, why: &Refusal) {
        if let Refusal::Hook { reason } = why {
            let tool = match call {
                ToolCall::Command { .. } => "Bash",
                ToolCall::Write { .. } => "Write",
                ToolCall::Edit { .. } => "Edit",
                ToolCall::Read { .. } => "Read",
            };
            self.tool_result(
                out,
                id,
                &format!("PreToolUse:{tool} hook error: {reason}"),
                true,
            );
            return;
        }
        let what = match call {
            ToolCall::Write { path, .. } | ToolCall::Edit { path, .. } => {
                format!("write to {}", path.display())
            }
            ToolCall::Read { path } => format!("read {}", path.display()),
            ToolCall::Command { .. } => "use Bash".to_string(),
        };
        let text =
            format!("Claude requested permissions to {what}, but you haven't granted it yet.");
        self.tool_result(out, id, &text, true);
    }

    fn retry_policy(&self, error: ApiError) -> RetryPolicy {
        // 2.1.330 retries everything but a malformed request and a usage limit, even a 401.
        let visible = match error {
            ApiError::BadRequest | ApiError::UsageLimit { .. } => 0,
            _ => 10,
        };
        RetryPolicy { silent: 0, visible }
    }

    fn api_retry(&mut self, out: &mut Emitter, error: ApiError, attempt: u32, max: u32) -> u64 {
        // About 0.6 s doubling up to ~35 s: ten retries take three minutes.
        let delay = (600u64 << (attempt - 1).min(6)).min(38_000);
        let kind = match error {
            ApiError::Unauthorized => "authentication_failed",
            ApiError::RateLimited { .. } | ApiError::UsageLimit { .. } => "rate_limit",
            ApiError::Overloaded => "overloaded",
            ApiError::BadRequest | ApiError::ServerError => "server_error",
        };
        out.emit(json!({
            "type": "system", "subtype": "api_retry", "attempt": attempt, "max_retries": max,
            "retry_delay_ms": delay, "error_status": error.http_status(), "error": kind,
            "session_id": self.session_id, "uuid": session_uuid("retry"),
        }));
        delay
    }

    fn api_failed(&mut self, out: &mut Emitter, error: ApiError, end: &RunEnd) -> i32 {
        let (api_type, message) = crate::stub::anthropic::error_type_and_message(error);
        let status = error.http_status();
        let server_side = "This is a server-side issue, usually temporary \u{2014} try again in a moment. If it persists, check your inference gateway (api.anthropic.com).";
        let (text, kind) = match error {
            ApiError::BadRequest => (format!("API Error: {status} {message}"), "unknown"),
            ApiError::Unauthorized => (
                "Invalid API key \u{b7} Fix external API key".to_string(),
                "authentication_failed",
            ),
            ApiError::RateLimited { .. } | ApiError::UsageLimit { .. } => (
                format!("API Error: Request rejected ({status}) \u{b7} {message}"),
                "rate_limit",
            ),
            ApiError::ServerError => (
                format!("API Error: {status} Internal server error. {server_side}"),
                "server_error",
            ),
            ApiError::Overloaded => (
                format!("API Error: {status} Overloaded. {server_side}"),
                "server_error",
            ),
        };
        out.emit(json!({
            "type": "assistant",
            "message": {"id": session_uuid("err"), "type": "message", "role": "assistant",
                        "model": "<synthetic>", "content": [{"type": "text", "text": text}],
                        "stop_reason": "stop_sequence", "stop_sequence": "",
                        "usage": {"input_tokens": 0, "output_tokens": 0}},
            "parent_tool_use_id": null, "session_id": self.session_id,
            "uuid": session_uuid("assistant"), "error": kind, "request_id": "req_sim",
            "is_api_error_message": true, "api_error_status": status, "api_error_type": api_type,
        }));
        let mut result = self.result_line(end, "success", true, &text, "api_error");
        result["api_error_status"] = json!(status);
        result["api_error_type"] = json!(api_type);
        self.print_result(out, result, end, &text)
    }

    fn finish(&mut self, out: &mut Emitter, end: &RunEnd) -> i32 {
        let subtype = if end.ok {
            "success"
        } else {
            "error_during_execution"
        };
        let reason = if end.ok { "completed" } else { "aborted_tools" };
        let insisted = end.ok && self.json_schema && self.structured.is_none();
        if insisted {
            // The model answered in text: Claude insists once, the model says it again.
            out.emit(json!({
                "type": "user",
                "message": {"role": "user", "content": [{"type": "text", "text": STRUCTURED_ENFORCE}]},
                "parent_tool_use_id": null,
                "session_id": self.session_id,
                "uuid": session_uuid("user"),
                "isSynthetic": true,
            }));
            for text in std::mem::take(&mut self.turn_texts) {
                self.assistant(out, json!({"type": "text", "text": text}));
            }
        }
        let mut result = self.result_line(end, subtype, !end.ok, &end.summary, reason);
        if let Some(object) = &self.structured {
            result["structured_output"] = object.clone();
        }
        // The StructuredOutput round, or the one Claude insisted on, is a turn of its own.
        if self.structured.is_some() || insisted {
            result["num_turns"] = json!(end.turns + 1);
        }
        self.print_result(out, result, end, &end.summary)
    }

    fn max_turns(&self) -> Option<u32> {
        self.max_turns
    }

    fn out_of_turns(&mut self, out: &mut Emitter, end: &RunEnd, max: u32) -> i32 {
        let text = format!("Reached maximum number of turns ({max})");
        let mut result = self.result_line(end, "error_max_turns", true, &text, "max_turns");
        result["num_turns"] = json!(max + 1);
        self.print_result(out, result, end, &text)
    }
}

impl ClaudeDialect {
    /// The `result` line that ends every run.
    fn result_line(
        &self,
        end: &RunEnd,
        subtype: &str,
        is_error: bool,
        text: &str,
        terminal_reason: &str,
    ) -> Value {
        let denials: Vec<Value> = end
            .denials
            .iter()
            .map(|(id, call)| {
                let (name, input) = tool_name_and_input(call);
                json!({"tool_name": name, "tool_use_id": tool_use_id(id), "tool_input": input})
            })
            .collect();
        let mut result = json!({
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": end.duration_ms, "duration_api_ms": end.duration_ms * 2 / 3,
            "num_turns": end.turns,
            "session_id": self.session_id,
            "total_cost_usd": end.cost_usd,
            "usage": {"input_tokens": end.input_tokens - end.cached_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": end.cached_tokens, "output_tokens": end.output_tokens},
            "permission_denials": denials,
            "terminal_reason": terminal_reason,
            "uuid": session_uuid("result"),
        });
        if subtype == "success" {
            result["result"] = json!(text);
        } else {
            result["errors"] = json!([text]);
        }
        result
    }

    /// Prints the result in the chosen output format; returns the exit code.
    fn print_result(&self, out: &mut Emitter, result: Value, end: &RunEnd, text: &str) -> i32 {
        let is_error = result["is_error"].as_bool().unwrap_or(!end.ok);
        match self.output_format.as_str() {
            "stream-json" => out.emit(result),
            "json" if self.verbose => {
                let mut all = out.kept().to_vec();
                all.push(result);
                print_document(&Value::Array(all).to_string());
            }
            "json" => print_document(&result.to_string()),
            _ if !is_error => print_document(text),
            _ => eprintln!("Error: {text}"),
        }
        if is_error { 1 } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn host(root: bool, tty: bool) -> Host {
        Host {
            cwd: PathBuf::from("/w"),
            is_root: root,
            stdin_is_tty: tty,
            env: vec![],
        }
    }
    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }
    fn refused(s: &str, host: &Host) -> ArgError {
        match check_args(&args(s), host) {
            Err(e) => e,
            Ok(_) => panic!("{s} should be refused"),
        }
    }
    fn invocation(s: &str, host: &Host) -> Invocation {
        match check_args(&args(s), host) {
            Ok(CheckedArgs::Run(inv, _)) => *inv,
            Ok(CheckedArgs::Version(v)) => panic!("version {v}"),
            Err(e) => panic!("{s}: {}", e.message),
        }
    }

    #[test]
    fn stream_json_without_verbose_is_refused() {
        let e = refused("-p --output-format stream-json hi", &host(false, true));
        assert_eq!(
            e.message,
            "Error: When using --print, --output-format=stream-json requires --verbose"
        );
        assert_eq!(e.code, 1);
    }

    #[test]
    fn bypass_as_root_needs_is_sandbox() {
        let e = refused("-p --dangerously-skip-permissions hi", &host(true, true));
        assert!(
            e.message
                .contains("cannot be used with root/sudo privileges")
        );
        let e = refused(
            "-p --permission-mode bypassPermissions hi",
            &host(true, true),
        );
        assert_eq!(e.code, 1);
        let mut sandboxed = host(true, true);
        sandboxed.env.push(("IS_SANDBOX".into(), "1".into()));
        assert_eq!(
            invocation("-p --dangerously-skip-permissions hi", &sandboxed).prompt,
            "hi"
        );
        assert_eq!(
            invocation("-p --dangerously-skip-permissions hi", &host(false, true)).prompt,
            "hi"
        );
    }

    #[test]
    fn a_variadic_flag_swallows_the_prompt_unless_written_with_equals() {
        let e = refused("-p --add-dir /a fix-it", &host(false, true));
        assert!(e.message.starts_with("Error: Input must be provided"));
        let inv = invocation("-p --add-dir=/a fix-it", &host(false, true));
        assert_eq!(
            (inv.prompt.as_str(), inv.extra_dirs.clone()),
            ("fix-it", vec![PathBuf::from("/a")])
        );
        assert_eq!(
            invocation("-p --add-dir /a -- fix-it", &host(false, true)).prompt,
            "fix-it"
        );
    }

    #[test]
    fn unknown_options_are_refused_like_commander() {
        let e = refused("-p --frobnicate hi", &host(false, true));
        assert_eq!(e.message, "error: unknown option '--frobnicate'");
    }
}
